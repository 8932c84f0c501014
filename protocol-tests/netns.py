"""A private network of Linux network namespaces for partition tests (root only).

    host (the test: producers, consumers)  10.N.M.1 ─┐
    ns <tag>-zk  (ZooKeeper)               10.N.M.2 ─┤  bridge in its own
    ns <tag>-b1  (broker 1)                10.N.M.11 ─┤  namespace <tag>-sw
    ns <tag>-b2  ...                       10.N.M.12 ─┘

The bridge lives in a namespace of its own, so the host's firewall (e.g.
Docker's FORWARD policy DROP with br_netfilter) never sees the traffic between
nodes.  ``cut(node, peers)`` drops, inside the node's namespace, every packet
to and from the peers' addresses (iptables); ``heal(node)`` removes that.
The host stays reachable from every node: a partitioned leader still talks to
the producer.
"""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import subprocess
import uuid


def _run(*cmd, check=True):
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


def ensure_tools():
    """``ip`` and ``iptables``: installed with apt-get when missing (root)."""
    missing = [pkg for tool, pkg in (("ip", "iproute2"), ("iptables", "iptables"))
               if not shutil.which(tool)]
    if missing:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise RuntimeError(f"need {missing} (root with apt-get to install them)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        opts = ["-o", "DPkg::Lock::Timeout=300", "-qq"]
        subprocess.run(["apt-get", *opts, "update"], check=True, env=env, capture_output=True)
        subprocess.run(["apt-get", *opts, "install", "-y", "--no-install-recommends", *missing],
                       check=True, env=env, capture_output=True)


def available() -> str | None:
    """None when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    try:
        ensure_tools()
        probe = f"odrp{uuid.uuid4().hex[:6]}"
        _run("ip", "netns", "add", probe)
        _run("ip", "netns", "del", probe)
    except Exception as e:  # noqa: BLE001
        return f"cannot create network namespaces: {e}"
    return None


def _free_subnet() -> ipaddress.IPv4Network:
    used = _run("ip", "-4", "route", "show").stdout + _run("ip", "-4", "addr", "show").stdout
    for _ in range(100):
        a, b = random.randint(100, 250), random.randint(1, 250)
        if f"10.{a}.{b}." not in used:
            return ipaddress.ip_network(f"10.{a}.{b}.0/24")
    raise RuntimeError("no free 10.x.y.0/24 subnet")


class Network:
    def __init__(self):
        self.tag = f"o{uuid.uuid4().hex[:5]}"  # interface names must stay <= 15 chars
        self.net = _free_subnet()
        self.sw = f"{self.tag}-sw"
        self.nodes: dict = {}  # name -> (netns, ip)
        self.host_ip = str(self.net.network_address + 1)
        self.cuts: dict = {}  # node -> [rule args]
        _run("ip", "netns", "add", self.sw)
        self._ns(self.sw, "ip", "link", "set", "lo", "up")
        self._ns(self.sw, "ip", "link", "add", "br0", "type", "bridge")
        self._ns(self.sw, "ip", "link", "set", "br0", "up")
        # the host's own leg
        host_if = f"{self.tag}h"
        _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", "p-host",
             "netns", self.sw)
        _run("ip", "addr", "add", f"{self.host_ip}/{self.net.prefixlen}", "dev", host_if)
        _run("ip", "link", "set", host_if, "up")
        self._ns(self.sw, "ip", "link", "set", "p-host", "master", "br0", "up")
        self.host_if = host_if

    def _ns(self, ns, *cmd, check=True):
        return _run("ip", "netns", "exec", ns, *cmd, check=check)

    def add_node(self, name: str, host_octet: int) -> str:
        """A namespace ``<tag>-<name>`` with address 10.N.M.<host_octet>; returns the address."""
        ns = f"{self.tag}-{name}"
        ip = str(self.net.network_address + host_octet)
        _run("ip", "netns", "add", ns)
        self._ns(ns, "ip", "link", "set", "lo", "up")
        _run("ip", "link", "add", f"{self.tag}{name}"[:15], "type", "veth", "peer", "name", "eth0",
             "netns", ns)
        _run("ip", "link", "set", f"{self.tag}{name}"[:15], "netns", self.sw)
        self._ns(self.sw, "ip", "link", "set", f"{self.tag}{name}"[:15], "master", "br0", "up")
        self._ns(ns, "ip", "addr", "add", f"{ip}/{self.net.prefixlen}", "dev", "eth0")
        self._ns(ns, "ip", "link", "set", "eth0", "up")
        self.nodes[name] = (ns, ip)
        return ip

    def prefix(self, name: str) -> list:
        """Command prefix that runs a program inside the node (ip netns exec execs it)."""
        return ["ip", "netns", "exec", self.nodes[name][0]]

    def ip(self, name: str) -> str:
        return self.nodes[name][1]

    def cut(self, name: str, peers: list):
        """Drop all traffic between ``name`` and each of ``peers`` (both directions,
        filtered inside ``name``'s namespace; established connections stall)."""
        ns, _ = self.nodes[name]
        rules = []
        for peer in peers:
            pip = self.ip(peer)
            rules += [("INPUT", "-s", pip), ("OUTPUT", "-d", pip)]
        for chain, flag, addr in rules:
            self._ns(ns, "iptables", "-w", "-I", chain, flag, addr, "-j", "DROP")
        self.cuts.setdefault(name, []).extend(rules)

    def heal(self, name: str):
        ns, _ = self.nodes[name]
        for chain, flag, addr in self.cuts.pop(name, []):
            self._ns(ns, "iptables", "-w", "-D", chain, flag, addr, "-j", "DROP", check=False)

    def close(self):
        for ns, _ in self.nodes.values():
            _run("ip", "netns", "del", ns, check=False)
        _run("ip", "link", "del", self.host_if, check=False)
        _run("ip", "netns", "del", self.sw, check=False)
        self.nodes.clear()
