"""Cluster-mode harness: a real ZooKeeper and N ``odradek`` brokers sharing one chroot.

- ``ZooKeeper``: Debian's ZooKeeper server on a free 127.0.0.1 port (or another
  address), its own dataDir; stop (SIGKILL) / start / restart keep port and data.
- ``metadata()``: a raw Metadata v5 request to ONE broker (no client cache, no
  bootstrap fan-out), so "what does broker 2 think" has an exact answer.
- ``Cluster``: brokers 1..N (``brokers.Broker``) with cluster overrides; waits
  for registration, partition leaders, the controller, full ISRs; creates topics.

Every wait polls a condition against a deadline and fails with the last state
seen; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import atexit
import socket
import struct
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from brokers import Broker, die_with_parent, free_port

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
ZK_START_TIMEOUT = 45.0
# zookeeper.jar's manifest names its dependencies; add log4j and its slf4j
# binding (not all of /usr/share/java: slf4j-nop there would swallow every line)
# and Debian's log4j.properties from /etc/zookeeper/conf.
ZK_CLASSPATH = ("/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:"
                "/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar")

# Cluster defaults for tests: fast failure detection (Kafka's are 18 s / 30 s).
SESSION_TIMEOUT_MS = 6000
REPLICA_LAG_MS = 4000


def poll(cond: Callable, timeout: float, what: str, interval: float = 0.1):
    """Call ``cond()`` until it returns something truthy; return that.  On
    timeout raise AssertionError naming ``what`` and the last value or error."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = cond()
            if v:
                return v
            last = v
        except Exception as e:  # noqa: BLE001
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


# ------------------------------------------------------------ zookeeper ----

class ZooKeeper:
    """One standalone ZooKeeper server.  ``stop()`` is a SIGKILL (a crash; its
    data dir survives), ``start()`` brings it back on the same port."""

    def __init__(self, root: Path, port: int | None = None, host: str = "127.0.0.1",
                 prefix: list | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port()
        self.prefix = list(prefix or [])
        self.log_file = self.root / "zookeeper.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        (self.root / "data").mkdir(exist_ok=True)
        (self.root / "zoo.cfg").write_text(
            "tickTime=500\ninitLimit=20\nsyncLimit=10\n"
            f"dataDir={self.root / 'data'}\nclientPort={self.port}\nclientPortAddress={host}\n"
            "minSessionTimeout=1000\nmaxSessionTimeout=60000\nadmin.enableServer=false\n"
            "4lw.commands.whitelist=*\npreAllocSize=1024\nsnapCount=1000\n")
        _ALL_ZK.append(self)

    def connect(self, chroot: str = "") -> str:
        return f"{self.host}:{self.port}{chroot}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def four_letter(self, word: str, timeout: float = 2.0) -> str:
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout) as s:
                s.settimeout(timeout)
                s.sendall(word.encode())
                chunks = []
                while True:
                    b = s.recv(4096)
                    if not b:
                        break
                    chunks.append(b)
                return b"".join(chunks).decode(errors="replace")
        except OSError:
            return ""

    def ephemerals(self) -> dict:
        """Ephemeral znode path -> whether its owner session has a live connection
        now, from the 'dump' four-letter word: the ground truth of who is
        registered, whatever the brokers' caches say.  (After a restart ZooKeeper
        restores old sessions and their ephemerals until they time out: those
        show as not connected.)"""
        owner, owners, connected, section = None, {}, set(), None
        for ln in self.four_letter("dump").splitlines():
            if ln.startswith("Sessions with Ephemerals"):
                section = "eph"
            elif ln.startswith("Connections dump"):
                section = "conn"
            elif section == "eph" and ln.startswith("0x"):
                owner = ln.strip().rstrip(":")
            elif section == "eph" and ln.startswith("\t/"):
                owners[ln.strip()] = owner
            elif section == "conn" and "sessionId: " in ln:
                connected.add(ln.split("sessionId: ")[1].strip())
        return {path: sess in connected for path, sess in owners.items()}

    def serving(self) -> bool:
        return "Mode: " in self.four_letter("srvr")

    def start(self, timeout: float = ZK_START_TIMEOUT) -> "ZooKeeper":
        if self.alive():
            raise AssertionError("ZooKeeper already running")
        if not ZOOKEEPER_JAR.exists():
            raise AssertionError(f"{ZOOKEEPER_JAR} missing: install Debian's zookeeper "
                                 "(scripts/install-deps.sh does)")
        self.starts += 1
        cmd = self.prefix + [
            "java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Dzookeeper.admin.enableServer=false", "-Dzookeeper.root.logger=INFO,CONSOLE",
            "-cp", ZK_CLASSPATH,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(self.root / "zoo.cfg")]
        with open(self.log_file, "ab") as log:
            log.write(f"\n==== start #{self.starts}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.root,
                                         start_new_session=True, preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while not self.serving():
            if self.proc.poll() is not None:
                raise AssertionError(f"ZooKeeper exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"ZooKeeper not serving after {timeout}s:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def stop(self):
        """SIGKILL (ZooKeeper's own shutdown is no cleaner for our purpose)."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)

    def restart(self):
        self.stop()
        return self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"<no ZooKeeper log: {e}>"

    def failure_sections(self):
        state = "alive" if self.alive() else "down"
        return [(f"zookeeper {self.connect()} ({state}) log tail", self.log_tail())]

    def __repr__(self):
        return f"ZooKeeper({self.connect()}, pid={self.proc.pid if self.proc else None})"


_ALL_ZK: list = []


@atexit.register
def _kill_leftover_zookeepers():
    for z in _ALL_ZK:
        try:
            z.stop()
        except Exception:  # noqa: BLE001
            pass


# -------------------------------------------------------- raw Metadata ----

@dataclass
class PartitionView:
    error: int
    leader: int
    replicas: list
    isr: list
    offline: list


@dataclass
class TopicView:
    error: int
    internal: bool
    partitions: dict  # index -> PartitionView


@dataclass
class MetadataView:
    brokers: dict  # id -> (host, port)
    cluster_id: Optional[str]
    controller_id: int
    topics: dict = field(default_factory=dict)  # name -> TopicView


class _Reader:
    def __init__(self, b: bytes):
        self.b, self.i = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.i)
        self.i += struct.calcsize(fmt)
        return v[0]

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.b[self.i:self.i + n].decode()
        self.i += n
        return s

    def array(self, item):
        n = self.take(">i")
        return [item() for _ in range(max(n, 0))]


def recv_exact(s, n):
    """Exactly ``n`` bytes from socket ``s`` (ConnectionError if it closes first)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        buf += chunk
    return bytes(buf)


def established_to(host: str, port: int) -> bool:
    """Whether some TCP connection on this machine is established to host:port."""
    want = "%08X:%04X" % (int.from_bytes(bytes(map(int, host.split("."))), "little"), port)
    with open("/proc/net/tcp") as f:
        return any(cols[2] == want and cols[3] == "01"
                   for cols in (line.split() for line in list(f)[1:]))


def raw_call(broker: Broker, request, version: int, response_cls, timeout: float = 20.0):
    """One request, framed by kafka-python's protocol classes, to exactly this
    broker on a fresh connection (no client that might pick another broker to
    refresh its metadata); the decoded response."""
    request.with_header(correlation_id=11, client_id="odradek-cluster-tests")
    frame = bytes(request.encode(version=version, header=True, framed=True))
    with socket.create_connection((broker.host, broker.port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(frame)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        data = recv_exact(s, size)
    resp = response_cls.decode(data, version=version, header=True)
    assert resp.header.correlation_id == 11, "correlation id mismatch"
    return resp


def metadata(host: str, port: int, topics: Optional[list] = None,
             timeout: float = 5.0) -> MetadataView:
    """Metadata v5 to exactly this broker; ``topics=None`` asks for all topics.
    Never auto-creates a topic."""
    client = b"odradek-cluster-tests"
    body = struct.pack(">i", -1) if topics is None else \
        struct.pack(">i", len(topics)) + b"".join(struct.pack(">h", len(t)) + t.encode()
                                                   for t in topics)
    body += b"\x00"  # allow_auto_topic_creation = false
    req = struct.pack(">hhih", 3, 5, 7, len(client)) + client + body
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(req)) + req)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        r = _Reader(recv_exact(s, size))
    assert r.take(">i") == 7, "correlation id mismatch"
    r.take(">i")  # throttle
    brokers = {}
    for _ in range(r.take(">i")):
        node, bhost, bport = r.take(">i"), r.string(), r.take(">i")
        r.string()  # rack
        brokers[node] = (bhost, bport)
    cluster_id = r.string()
    controller = r.take(">i")
    view = MetadataView(brokers, cluster_id, controller)
    for _ in range(r.take(">i")):
        err, name, internal = r.take(">h"), r.string(), bool(r.take(">b"))
        parts = {}
        for _ in range(r.take(">i")):
            perr, idx, leader = r.take(">h"), r.take(">i"), r.take(">i")
            ints = lambda: r.take(">i")  # noqa: E731
            replicas, isr, offline = r.array(ints), r.array(ints), r.array(ints)
            parts[idx] = PartitionView(perr, leader, replicas, isr, offline)
        view.topics[name] = TopicView(err, internal, parts)
    return view


# -------------------------------------------------------------- cluster ----

def cluster_overrides(zk_connect: str, n: int) -> dict:
    rf = min(3, n)
    return {
        "zookeeper.connect": zk_connect,
        "zookeeper.session.timeout.ms": SESSION_TIMEOUT_MS,
        "zookeeper.connection.timeout.ms": 10000,
        "replica.lag.time.max.ms": REPLICA_LAG_MS,
        "default.replication.factor": rf,
        "offsets.topic.replication.factor": rf,
        "offsets.topic.num.partitions": 5,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": min(2, rf),
        "leader.imbalance.check.interval.seconds": 5,
        "num.partitions": 1,
        # Brokers' own connections are User:ANONYMOUS (PLAINTEXT); under an authorizer they
        # need CLUSTER_ACTION, as in Kafka. No effect without authorizer.class.name.
        "super.users": "User:ANONYMOUS",
    }


class Cluster:
    """Brokers 1..n on one ZooKeeper chroot.  ``broker_cls`` / ``broker_kw``
    let a test place brokers elsewhere (e.g. network namespaces)."""

    def __init__(self, base: Path, zk: ZooKeeper, n: int = 3, overrides: dict | None = None,
                 chroot: str | None = None, broker_kw: Callable[[int], dict] | None = None):
        self.base = Path(base)
        self.zk = zk
        self.n = n
        self.chroot = chroot or f"/odradek-{uuid.uuid4().hex[:8]}"
        self.overrides = cluster_overrides(zk.connect(self.chroot), n)
        self.overrides.update(overrides or {})
        self.brokers: list[Broker] = []
        for i in range(1, n + 1):
            kw = broker_kw(i) if broker_kw else {}
            self.brokers.append(Broker(self.base / f"broker-{i}", overrides=dict(self.overrides),
                                       broker_id=i, **kw))

    # -- lookup ---------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers)

    def broker(self, broker_id: int) -> Broker:
        (b,) = [b for b in self.brokers if b.broker_id == broker_id]
        return b

    def alive(self) -> list:
        """Running and not SIGSTOPped (see ``suspend``)."""
        return [b for b in self.brokers if b.alive() and not b.suspended]

    def alive_ids(self) -> list:
        return sorted(b.broker_id for b in self.alive())

    def bootstrap_without(self, *ids) -> str:
        return ",".join(b.bootstrap for b in self.brokers if b.broker_id not in ids)

    # -- lifecycle ------------------------------------------------------
    def start(self, wait: bool = True, timeout: float = 30.0) -> "Cluster":
        for b in self.brokers:
            if not b.alive():
                b.start()
        if wait:
            self.wait_registered(timeout=timeout)
        return self

    def close(self):
        for b in self.brokers:
            try:
                b.kill9()
            except Exception:  # noqa: BLE001
                pass

    # -- views ----------------------------------------------------------
    def metadata(self, via: Broker | int, topics: Optional[list] = None) -> MetadataView:
        b = self.broker(via) if isinstance(via, int) else via
        return metadata(b.host, b.port, topics)

    def views(self, topics: Optional[list] = None, among: Optional[list] = None) -> dict:
        """broker id -> MetadataView, from every live broker (each must answer), or
        only from the brokers in ``among`` (e.g. the majority side of a partition)."""
        return {b.broker_id: self.metadata(b, topics) for b in self.alive()
                if among is None or b.broker_id in among}

    def wait_registered(self, ids: Optional[list] = None, timeout: float = 30.0,
                        among: Optional[list] = None) -> dict:
        """Until every live broker's Metadata lists exactly ``ids`` (default: the
        live brokers) and names a live controller, and ZooKeeper itself holds
        exactly those /brokers/ids/<id> ephemerals and a /controller (a broker's
        cached view alone could be stale, e.g. after a ZooKeeper outage)."""
        want = sorted(ids) if ids is not None else self.alive_ids()

        def cond():
            if self.zk is not None and self.zk.alive():
                eph = self.zk.ephemerals()
                prefix = f"{self.chroot}/brokers/ids/"
                in_zk = sorted(int(e[len(prefix):]) for e, live in eph.items()
                               if e.startswith(prefix) and live)
                ctrl = eph.get(f"{self.chroot}/controller", False)
                if in_zk != want or not ctrl:
                    raise AssertionError(f"want brokers {want}; ZooKeeper has {in_zk} registered "
                                         f"by connected sessions, controller znode live: {ctrl}")
            views = self.views(among=among)
            bad = {i: (sorted(v.brokers), v.controller_id) for i, v in views.items()
                   if sorted(v.brokers) != want or v.controller_id not in want}
            if bad:
                raise AssertionError(f"want brokers {want}; (brokers, controller) per broker: {bad}")
            return views
        return poll(cond, timeout, f"brokers {want} registered in every live broker's Metadata")

    def controller(self, timeout: float = 30.0, exclude: tuple = (),
                   among: Optional[list] = None) -> int:
        """The controller id all live brokers (or those in ``among``) agree on (a live
        one, not in ``exclude``)."""
        def cond():
            ids = {v.controller_id for v in self.views(among=among).values()}
            if len(ids) != 1:
                raise AssertionError(f"brokers disagree on the controller: {ids}")
            (c,) = ids
            if c not in self.alive_ids() or c in exclude:
                raise AssertionError(f"controller {c} is not a live candidate")
            return c
        return poll(cond, timeout, "an agreed live controller")

    def partition(self, topic: str, p: int, via: Broker | int | None = None) -> PartitionView:
        via = via or self.alive()[0]
        t = self.metadata(via, [topic]).topics[topic]
        return t.partitions[p]

    def leader(self, topic: str, p: int = 0, timeout: float = 30.0, exclude: tuple = (),
               among: Optional[list] = None) -> int:
        """The leader id all live brokers (or those in ``among``) agree on; it must be
        live and not excluded."""
        def cond():
            leaders = {i: v.topics[topic].partitions[p].leader
                       for i, v in self.views([topic], among).items()}
            ls = set(leaders.values())
            if len(ls) != 1:
                raise AssertionError(f"leader per broker: {leaders}")
            (lead,) = ls
            if lead not in self.alive_ids() or lead in exclude:
                raise AssertionError(f"leader {lead} is not a live candidate ({leaders})")
            return lead
        return poll(cond, timeout, f"an agreed live leader of {topic}-{p}")

    def leaders(self, topic: str, timeout: float = 30.0, among: Optional[list] = None) -> dict:
        """partition -> leader id, agreed by every live broker (or those in
        ``among``), all leaders live."""
        def cond():
            per = {i: {p: pv.leader for p, pv in v.topics[topic].partitions.items()}
                   for i, v in self.views([topic], among).items()}
            first = next(iter(per.values()))
            if any(x != first for x in per.values()):
                raise AssertionError(f"brokers disagree on leaders: {per}")
            if not first or any(lead not in self.alive_ids() for lead in first.values()):
                raise AssertionError(f"leaders not all live: {first}")
            return first
        return poll(cond, timeout, f"agreed live leaders of {topic}")

    def wait_isr_full(self, topic: str, partitions: Optional[list] = None,
                      timeout: float = 30.0) -> dict:
        """Until, in every live broker's Metadata, each partition's ISR equals its
        replica set and its leader is live.  Returns partition -> PartitionView."""
        def cond():
            result = None
            for i, v in self.views([topic]).items():
                t = v.topics.get(topic)
                if t is None or t.error or not t.partitions:
                    raise AssertionError(f"broker {i}: topic {topic} not ready ({t})")
                ps = partitions if partitions is not None else sorted(t.partitions)
                for p in ps:
                    pv = t.partitions[p]
                    if sorted(pv.isr) != sorted(pv.replicas) or pv.leader not in self.alive_ids():
                        raise AssertionError(f"broker {i}: {topic}-{p} leader {pv.leader} "
                                             f"replicas {pv.replicas} isr {pv.isr}")
                result = {p: t.partitions[p] for p in ps}
            return result
        return poll(cond, timeout, f"full ISRs of {topic}")

    def create_topic(self, name: str | None = None, partitions: int = 1, rf: int = 3,
                     config: dict | None = None, via: str | None = None,
                     timeout: float = 30.0) -> str:
        """CreateTopics through confluent's AdminClient, then wait until every live
        broker shows a live leader and a full ISR for every partition."""
        from confluent_kafka.admin import AdminClient, NewTopic

        name = name or f"c-{uuid.uuid4().hex[:10]}"
        admin = AdminClient({"bootstrap.servers": via or self.bootstrap, "socket.timeout.ms": 10000})
        futs = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=rf, config=config or {})],
            operation_timeout=15, request_timeout=20)
        futs[name].result(timeout=30)
        views = self.wait_isr_full(name, timeout=timeout)
        assert len(views) == partitions, f"{name}: {len(views)} partitions, want {partitions}"
        return name

    # -- reporting ------------------------------------------------------
    def failure_sections(self):
        out = self.zk.failure_sections() if self.zk else []
        try:
            out.append(("cluster metadata per live broker", "\n".join(
                f"broker {i}: brokers {sorted(v.brokers)} controller {v.controller_id} topics " +
                ", ".join(f"{t}:{{" + ", ".join(f"{p}: L{pv.leader} R{pv.replicas} I{pv.isr}"
                                               for p, pv in sorted(tv.partitions.items())) + "}"
                          for t, tv in v.topics.items() if not t.startswith("__"))
                for i, v in self.views().items())))
        except Exception as e:  # noqa: BLE001
            out.append(("cluster metadata per live broker", f"<unavailable: {e!r}>"))
        for b in self.brokers:
            state = "alive" if b.alive() else f"exited {b.proc.returncode if b.proc else None}"
            out.append((f"broker {b.broker_id} {b.bootstrap} ({state}) log tail", b.log_tail(40)))
        return out

    def __repr__(self):
        return f"Cluster({self.bootstrap}, zk={self.zk.connect(self.chroot)})"


class ClusterFactory:
    """``cluster_factory(n=3, overrides=None, zk=None, start=True)``; kills all at teardown."""

    def __init__(self, base: Path, zk_provider: Callable[[], ZooKeeper]):
        self.base = Path(base)
        self.zk_provider = zk_provider
        self.clusters: list[Cluster] = []

    def __call__(self, n: int = 3, overrides: dict | None = None, zk: ZooKeeper | None = None,
                 start: bool = True, **kw) -> Cluster:
        c = Cluster(self.base / f"cluster{len(self.clusters)}", zk or self.zk_provider(), n,
                    overrides, **kw)
        self.clusters.append(c)
        if start:
            c.start()
        return c

    def close(self):
        for c in self.clusters:
            c.close()

    def failure_sections(self):
        return [s for c in self.clusters for s in c.failure_sections()]


def start_expect_exit(b: Broker, within: float) -> int:
    """Start ``b`` expecting it to give up: returns its exit code once it has
    exited, or (after killing it) fails if it still runs after ``within`` s."""
    b.start(wait=False)
    try:
        return b.proc.wait(within)
    except subprocess.TimeoutExpired:
        b.kill9()
        raise AssertionError(f"broker still running {within:.0f}s after start:\n{b.log_tail()}")
