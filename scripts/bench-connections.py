#!/usr/bin/env python3
"""Connections benchmark (issue 14, item 3): broker memory under connection churn and with many
idle connections, and client throughput while those are held.

    .venv/bin/python scripts/bench-connections.py [--bin PATH] [--rounds 10] [--churn 2000]
                                                  [--idle 10000] [--records 300000] [--size 100]
                                                  [--no-throughput] [--keep]

One standalone broker (the release binary: --bin, else $ODRADEK_BIN, else
${CARGO_TARGET_DIR:-target}/release/odradek), started by this script on a free loopback port with a
fresh data dir under a temporary directory, with this process's file-descriptor limit raised
(the broker inherits it). RSS is VmRSS from /proc/<pid>/status.

Broker 1 (churn): idle RSS after start and one Metadata request, then --rounds rounds of: open
--churn TCP connections, send one ApiVersions on each and read the answer (odd rounds) or send
nothing (even rounds), close them all, wait until the broker holds no client socket, read RSS.

Broker 2 (idle connections, fresh): a produce/consume run (below); RSS; open --idle connections,
each sending one ApiVersions and reading the answer, and hold them; RSS with them held and
(RSS with them - RSS before) / --idle bytes per connection; a produce/consume run while they are
held; close them; RSS; a last produce/consume run. A produce/consume run is a confluent-kafka
producer (--records x --size B into a new one-partition topic, acks=1) and a consumer reading them
back; the ratio compares the run with the idle connections to the mean of the two without.

Targets of issue 14: RSS after the ten rounds within 32 MiB of idle; at most 16 KiB per idle
connection; throughput kept. Nothing asserts on timing: a missed target is reported, the exit
status is 0 unless the harness itself broke.
"""
import argparse
import os
import platform
import resource
import shlex
import socket
import struct
import sys
import tempfile
import shutil
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

try:
    import confluent_kafka
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
except ImportError:  # pragma: no cover
    confluent_kafka = None

MIB = 1024 * 1024
MB = 1_000_000


def rss(pid):
    return bench.proc_status(pid)["VmRSS"]


def api_versions_frame(correlation):
    client = b"bench-conns"
    body = struct.pack(">hhih", 18, 0, correlation, len(client)) + client
    return struct.pack(">i", len(body)) + body


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return bytes(buf)


def open_connections(port, count, api_versions):
    socks = []
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        socks.append(s)
        if api_versions:
            s.sendall(api_versions_frame(i))
    if api_versions:
        for s in socks:
            (size,) = struct.unpack(">i", recv_exact(s, 4))
            recv_exact(s, size)
    return socks


def close_all(socks):
    for s in socks:
        s.close()


def broker_connections(pid):
    """Sockets the broker process holds open (its listening socket included)."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def wait_sockets_at_most(pid, limit, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if broker_connections(pid) <= limit:
            return True
        time.sleep(0.05)
    return False


def produce(port, topic, n, size):
    p = Producer({"bootstrap.servers": f"127.0.0.1:{port}", "acks": 1, "linger.ms": 5,
                  "queue.buffering.max.messages": 1_000_000, "queue.buffering.max.kbytes": 1_048_576})
    value = b"x" * size
    failures = []

    def cb(err, _msg):
        if err is not None:
            failures.append(err)

    t0 = time.monotonic()
    for i in range(n):
        while True:
            try:
                p.produce(topic, value, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.01)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(300)
    dt = time.monotonic() - t0
    if left or failures:
        raise RuntimeError(f"produce: {left} undelivered, {len(failures)} failed ({failures[:2]})")
    return n * size / MB / dt


def consume(port, topic, n, size):
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{port}", "group.id": f"bench-conns-{time.monotonic_ns()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    got = 0
    try:
        t0 = time.monotonic()
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = t0 + 300
        while got < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"consume: {got} of {n} records after 300 s")
            for m in c.consume(num_messages=10_000, timeout=1.0):
                if m.error():
                    raise RuntimeError(f"consumer error {m.error()}")
                got += 1
        dt = time.monotonic() - t0
    finally:
        c.close()
    return n * size / MB / dt


def throughput(b, tag, args):
    topic = f"bench-{tag}"
    b.create_topics([(topic, 1)])
    cpu0 = bench.proc_cpu_seconds(b.pid)
    p = produce(b.port, topic, args.records, args.size)
    cpu1 = bench.proc_cpu_seconds(b.pid)
    c = consume(b.port, topic, args.records, args.size)
    cpu2 = bench.proc_cpu_seconds(b.pid)
    # Broker CPU per run is the steadier figure on a busy machine (MB/s is bounded by the client).
    bench.log(f"{tag}: produce {p:.1f} MB/s (broker CPU {cpu1 - cpu0:.2f} s), "
              f"consume {c:.1f} MB/s (broker CPU {cpu2 - cpu1:.2f} s)")
    return p, c


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=bench.default_binary())
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--churn", type=int, default=2000)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--extra", action="append", default=[], help="broker --override key=value")
    args = ap.parse_args()
    if not os.path.exists(args.bin):
        sys.exit(f"no broker binary at {args.bin}: cargo build --release (or --bin PATH)")
    do_tp = not args.no_throughput and confluent_kafka is not None

    # Raise this process's descriptor limit (the broker inherits it).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.idle + args.churn + 1024
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        except (ValueError, OSError):
            sys.exit(f"the descriptor limit is {hard}, need {want}: run as root or raise ulimit -n")
    else:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want) if hard == resource.RLIM_INFINITY
                                                    else hard, hard))

    cmd = " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], os.getcwd())] + sys.argv[1:])
    print(f"# command: {cmd}")
    print(f"# broker: {os.path.abspath(args.bin)} (standalone, fresh data dir)")
    if do_tp:
        print(f"# clients: confluent-kafka {confluent_kafka.version()}, librdkafka "
              f"{confluent_kafka.libversion()[0]}; python {platform.python_version()}")
    print(f"# machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; "
          f"descriptor limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}", flush=True)

    work = tempfile.mkdtemp(prefix="odradek-bench-conns.")
    try:
        churn_phase(args, work)
        idle_phase(args, work, do_tp)
    finally:
        if args.keep:
            print(f"# kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def churn_phase(args, work):
    b = bench.Broker("odradek", os.path.abspath(args.bin), work, name="churn", extra=args.extra)
    try:
        b.start()
        b.wait_ready()
        time.sleep(1.0)
        base_socks = broker_connections(b.pid)
        idle = rss(b.pid)
        print(f"[broker 1: churn] idle RSS: {idle / MIB:.1f} MiB", flush=True)
        after = idle
        for r in range(args.rounds):
            av = r % 2 == 0
            socks = open_connections(b.port, args.churn, av)
            held = rss(b.pid)
            close_all(socks)
            if not wait_sockets_at_most(b.pid, base_socks):
                bench.log("warning: the broker still holds sockets 30 s after the clients closed")
            time.sleep(0.5)
            after = rss(b.pid)
            print(f"churn round {r + 1:2} ({args.churn} connections, "
                  f"{'one ApiVersions each' if av else 'no request'}): RSS {held / MIB:.1f} MiB while open, "
                  f"{after / MIB:.1f} MiB after close", flush=True)
        grown = (after - idle) / MIB
        print(f"after {args.rounds} rounds: {grown:+.1f} MiB over idle "
              f"(target: within 32 MiB) -> {'met' if grown <= 32 else 'MISSED'}", flush=True)
    finally:
        b.stop()


def idle_phase(args, work, do_tp):
    b = bench.Broker("odradek", os.path.abspath(args.bin), work, name="idle", extra=args.extra)
    try:
        b.start()
        b.wait_ready()
        tps = []
        if do_tp:
            tps.append(throughput(b, "without-idle-1", args))
        time.sleep(1.0)
        base_socks = broker_connections(b.pid)
        before_hold = rss(b.pid)
        print(f"[broker 2: idle connections] RSS {before_hold / MIB:.1f} MiB before they open"
              f"{' (after one produce/consume run)' if do_tp else ''}", flush=True)
        t0 = time.monotonic()
        held_socks = open_connections(b.port, args.idle, True)
        time.sleep(1.0)
        with_idle = rss(b.pid)
        per = (with_idle - before_hold) / args.idle
        print(f"{args.idle} idle connections (each sent one ApiVersions; opened in "
              f"{time.monotonic() - t0:.1f} s): RSS {with_idle / MIB:.1f} MiB, "
              f"{per / 1024:.1f} KiB per connection (target: <= 16 KiB) -> "
              f"{'met' if per <= 16384 else 'MISSED'}", flush=True)
        if do_tp:
            tps.append(throughput(b, "with-idle", args))
            print(f"RSS with {args.idle} idle connections after the produce/consume run: "
                  f"{rss(b.pid) / MIB:.1f} MiB")
        close_all(held_socks)
        wait_sockets_at_most(b.pid, base_socks)
        time.sleep(0.5)
        print(f"RSS after the idle connections closed: {rss(b.pid) / MIB:.1f} MiB", flush=True)
        if do_tp:
            tps.append(throughput(b, "without-idle-2", args))
            wo_p = (tps[0][0] + tps[2][0]) / 2
            wo_c = (tps[0][1] + tps[2][1]) / 2
            w_p, w_c = tps[1]
            print(f"throughput ({args.records} x {args.size} B, one partition, acks=1; without = mean "
                  f"of the runs before and after the idle connections): produce {wo_p:.1f} MB/s "
                  f"without, {w_p:.1f} MB/s with {args.idle} idle connections (ratio "
                  f"{w_p / wo_p:.2f}); consume {wo_c:.1f} MB/s without, {w_c:.1f} MB/s with "
                  f"(ratio {w_c / wo_c:.2f})")
    finally:
        b.stop()


if __name__ == "__main__":
    main()
