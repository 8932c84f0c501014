#!/usr/bin/env python3
"""Many partitions on one standalone broker: topic creation, restart after a clean
shutdown, idle RSS.

    .venv/bin/python scripts/bench-partitions.py [--topics 20] [--partitions 1000]
        [--binary target/release/odradek] [--port 29092] [--keep] [--strace]

Starts the release broker standalone with a fresh data directory
(`odradek serve --override log.dirs=DIR --override listeners=PLAINTEXT://127.0.0.1:PORT`),
creates --topics topics of --partitions partitions each with kafka-python's admin
client (one CreateTopics a topic), timing each until the broker's Metadata shows every
partition of it with a leader. Then it stops the broker with SIGTERM (clean
shutdown), starts it again on the same directory and times until Metadata answers
with every partition led. Idle RSS (VmRSS from /proc) is read a few seconds after
each phase, and the number of open file descriptors (/proc/PID/fd).

With --strace the second start runs under `strace -c -f` and the syscall summary
is printed (slow; the time is then not meaningful).

Standard library plus kafka-python from the repository's .venv.
"""

import argparse
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


NOFILE = 65536


def raise_nofile():
    # As root the hard limit can be raised too; otherwise up to the hard limit.
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    except (ValueError, OSError):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(NOFILE, hard), hard))


def start(binary: str, data: str, port: int, log_path: str, strace: str = ""):
    cmd = [binary, "serve", "--override", f"log.dirs={data}",
           "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
           "--override", "http.listener="]
    if strace:
        cmd = ["strace", "-c", "-f", "-o", strace] + cmd
    print("$", " ".join(cmd), flush=True)
    log = open(log_path, "ab")
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "warn")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            preexec_fn=raise_nofile)


def broker_pid(proc, strace: bool) -> int:
    if not strace:
        return proc.pid
    # strace's child: the broker.
    for _ in range(100):
        try:
            kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            if kids:
                return int(kids[0])
        except OSError:
            pass
        time.sleep(0.05)
    return proc.pid


def led_partitions(port: int, topics) -> dict:
    """Partitions with a leader per topic, from one Metadata request (None if no answer)."""
    sys.path.insert(0, str(REPO / "protocol-tests"))
    from cluster import metadata  # raw Metadata to one broker

    md = metadata("127.0.0.1", port, list(topics))
    out = {}
    for t in topics:
        tm = md.topics.get(t)
        out[t] = 0 if tm is None else sum(1 for p in tm.partitions.values() if p.leader >= 0)
    return out


def wait_led(port: int, topics, partitions: int, timeout: float = 600.0, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"broker exited with {proc.returncode}; see its log")
        try:
            led = led_partitions(port, topics)
            if all(n == partitions for n in led.values()):
                return
        except (OSError, EOFError, KeyError, ValueError, AttributeError, AssertionError, struct.error):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"partitions not all led within {timeout}s")
        time.sleep(0.02)


def stop(proc, timeout: float = 600.0) -> float:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout)
    if rc not in (0, -signal.SIGTERM):
        print(f"broker exited with {rc}")
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--topics", type=int, default=20)
    ap.add_argument("--partitions", type=int, default=1000)
    ap.add_argument("--binary", default=str(REPO / "target" / "release" / "odradek"))
    ap.add_argument("--port", type=int, default=29092)
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--nofile", type=int, default=65536,
                    help="open file limit given to the broker (ulimit -n)")
    ap.add_argument("--strace", action="store_true", help="strace -c -f the restart")
    args = ap.parse_args()
    globals()["NOFILE"] = args.nofile

    from kafka.admin import KafkaAdminClient, NewTopic

    work = tempfile.mkdtemp(prefix="bench-partitions-")
    data = os.path.join(work, "data")
    log_path = os.path.join(work, "broker.log")
    topics = [f"bench-p{i}" for i in range(args.topics)]
    total = args.topics * args.partitions
    print(f"work dir {work}; {args.topics} topics x {args.partitions} partitions = {total}; "
          f"ulimit -n {NOFILE}")
    try:
        proc = start(args.binary, data, args.port, log_path)
        wait_led(args.port, [], 0, 30, proc)
        rss0 = rss_mib(proc.pid)
        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{args.port}",
                                 request_timeout_ms=600_000)
        create_times = []
        for t in topics:
            t0 = time.monotonic()
            admin.create_topics([NewTopic(t, args.partitions, 1)], timeout_ms=600_000)
            wait_led(args.port, [t], args.partitions, proc=proc)
            dt = time.monotonic() - t0
            create_times.append(dt)
            print(f"  created {t}: {dt:.2f} s", flush=True)
        admin.close()
        time.sleep(3)
        rss1, fds1 = rss_mib(proc.pid), fd_count(proc.pid)
        stop_s = stop(proc)

        strace_out = os.path.join(work, "strace.txt") if args.strace else ""
        t0 = time.monotonic()
        proc = start(args.binary, data, args.port, log_path, strace_out)
        wait_led(args.port, topics, args.partitions, proc=proc)
        open_s = time.monotonic() - t0
        time.sleep(3)
        pid = broker_pid(proc, bool(strace_out))
        rss2, fds2 = rss_mib(pid), fd_count(pid)
        stop(proc)

        print()
        print(f"partitions:                        {total}")
        print(f"idle RSS, empty broker:            {rss0:.0f} MiB")
        print(f"create, per {args.partitions}-partition topic:   "
              f"first {create_times[0]:.2f} s, last {create_times[-1]:.2f} s, "
              f"mean {sum(create_times) / len(create_times):.2f} s, "
              f"total {sum(create_times):.1f} s")
        print(f"idle RSS after creating:           {rss1:.0f} MiB, {fds1} fds open")
        print(f"clean shutdown (SIGTERM):          {stop_s:.2f} s")
        print(f"start after clean shutdown:        {open_s:.2f} s until all partitions led")
        print(f"idle RSS after restart:            {rss2:.0f} MiB, {fds2} fds open")
        if strace_out:
            print()
            print(Path(strace_out).read_text())
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
