#!/usr/bin/env python3
"""Transactions benchmark (issue 13): what a transaction costs a producer and a consumer.

    .venv/bin/python scripts/bench-txn.py [--bin PATH] [--records 1000000] [--size 100]
                                          [--partitions 3] [--commit-ms 100] [--rounds 3] [--keep]

One standalone broker (the release binary: --bin, else $ODRADEK_BIN, else
${CARGO_TARGET_DIR:-target}/release/odradek), started by this script on a free loopback port with a
fresh data dir under a temporary directory (removed at the end unless --keep).

1. Produce, --rounds times, alternating which goes first: an idempotent confluent-kafka producer
   (acks=all) and a transactional one that commits every --commit-ms (begin, produce, commit when
   the transaction is that old, begin again; the last one committed at the end), the same number
   of records of the same size, each run into a topic of its own. Timed from the first produce to
   the last delivery (the idempotent producer's flush, the transactional one's last commit).
2. Consume the first transactional topic (committed transactions, no aborts: data records and
   commit markers) from the beginning, --rounds times each with isolation.level read_committed and
   read_uncommitted, alternating, with a confluent-kafka consumer; every run must read every record.

Prints records/s and MB/s (10^6 bytes of values) of each run, the medians, the broker's CPU seconds
per run, and the ratios against the targets of issue 13: transactional >= 70% of idempotent produce
throughput; read_committed within 10% of read_uncommitted. Nothing asserts on timing: a missed
target is reported, the exit status is 0 unless the harness itself broke. Uses scripts/bench.py
for the broker and confluent-kafka from the protocol tests' venv (scripts/install-deps.sh).
"""
import argparse
import os
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

try:
    import confluent_kafka
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
except ImportError:  # pragma: no cover
    sys.exit("bench-txn.py needs confluent-kafka: run it with .venv/bin/python "
             "(scripts/install-deps.sh makes .venv)")

MB = 1_000_000


def producer_conf(port, extra):
    conf = {
        "bootstrap.servers": f"127.0.0.1:{port}",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "none",
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "message.timeout.ms": 60_000,  # <= transaction.timeout.ms (librdkafka requires it)
    }
    conf.update(extra)
    return conf


def payloads(size):
    """Distinct values of `size` bytes (a counter in front of filler), made lazily."""
    filler = b"x" * size

    def value(i):
        head = b"%010d" % i
        return (head + filler)[:size] if size >= len(head) else head[:size]
    return value


def _produce_loop(p, topic, n, parts, value, failures, on_tick=None):
    def cb(err, _msg):
        if err is not None:
            failures.append(err)

    for i in range(n):
        while True:
            try:
                p.produce(topic, value(i), partition=i % parts, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.01)
        if i % 1000 == 0:
            p.poll(0)
            if on_tick:
                on_tick()


def produce_idempotent(port, topic, n, size, parts):
    p = Producer(producer_conf(port, {}))
    failures = []
    value = payloads(size)
    t0 = time.monotonic()
    _produce_loop(p, topic, n, parts, value, failures)
    left = p.flush(300)
    dt = time.monotonic() - t0
    if left or failures:
        raise RuntimeError(f"idempotent produce: {left} undelivered, {len(failures)} failed "
                           f"(e.g. {failures[:2]})")
    return {"records_s": n / dt, "mb_s": n * size / MB / dt, "seconds": dt}


def produce_transactional(port, topic, n, size, parts, commit_ms, tid):
    p = Producer(producer_conf(port, {"transactional.id": tid, "transaction.timeout.ms": 60_000}))
    p.init_transactions(60)
    failures, commits = [], []
    value = payloads(size)
    state = {"since": 0.0}

    def commit():
        c0 = time.monotonic()
        p.commit_transaction(120)
        commits.append(time.monotonic() - c0)

    def tick():
        now = time.monotonic()
        if now - state["since"] >= commit_ms / 1000:
            commit()
            p.begin_transaction()
            state["since"] = time.monotonic()

    t0 = time.monotonic()
    p.begin_transaction()
    state["since"] = t0
    try:
        _produce_loop(p, topic, n, parts, value, failures, on_tick=tick)
        commit()
    except KafkaException as e:
        raise RuntimeError(f"transactional produce failed after {len(commits)} commits: {e}")
    dt = time.monotonic() - t0
    if failures:
        raise RuntimeError(f"transactional produce: {len(failures)} failed (e.g. {failures[:2]})")
    return {"records_s": n / dt, "mb_s": n * size / MB / dt, "seconds": dt, "commits": len(commits),
            "commit_ms_median": statistics.median(commits) * 1000 if commits else 0.0}


def consume(port, topic, n, size, parts, isolation):
    c = Consumer({
        "bootstrap.servers": f"127.0.0.1:{port}",
        "group.id": f"bench-txn-{isolation}-{time.monotonic_ns()}",
        "enable.auto.commit": False,
        "isolation.level": isolation,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
    })
    got = nbytes = 0
    try:
        t0 = time.monotonic()
        c.assign([TopicPartition(topic, q, OFFSET_BEGINNING) for q in range(parts)])
        deadline = t0 + 600
        while got < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{isolation}: {got} of {n} records after 600 s")
            for m in c.consume(num_messages=10_000, timeout=1.0):
                if m.error():
                    raise RuntimeError(f"{isolation}: consumer error {m.error()}")
                got += 1
                nbytes += len(m.value())
        dt = time.monotonic() - t0
    finally:
        c.close()
    if got != n or nbytes != n * size:
        raise RuntimeError(f"{isolation}: read {got} records / {nbytes} bytes, want {n} / {n * size}")
    return {"records_s": n / dt, "mb_s": nbytes / MB / dt, "seconds": dt}


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def fmt(runs, key):
    xs = [r[key] for r in runs]
    return f"{statistics.median(xs):.4g} ({min(xs):.4g}-{max(xs):.4g})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=bench.default_binary(), help="the broker binary")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100, help="value bytes per record")
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--commit-ms", type=int, default=100, help="commit interval of the transactional producer")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each producer and each consumer")
    ap.add_argument("--keep", action="store_true", help="keep the data dir and the broker's log")
    args = ap.parse_args()

    if not (os.path.isfile(args.bin) and os.access(args.bin, os.X_OK)):
        sys.exit(f"no broker binary at {args.bin}: cargo build --release, or --bin / ODRADEK_BIN")
    n, size, parts = args.records, args.size, args.partitions
    cmd = " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], os.getcwd())] + sys.argv[1:])
    print(f"# command: {cmd}")
    print(f"# broker: {os.path.abspath(args.bin)} (standalone, fresh data dir)")
    print(f"# clients: confluent-kafka {confluent_kafka.version()}, librdkafka "
          f"{confluent_kafka.libversion()[0]}; python {platform.python_version()}")
    print(f"# machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    print(f"# {n} records x {size} B into {parts} partitions per run; transactional commits every "
          f"{args.commit_ms} ms; {args.rounds} rounds, alternating order", flush=True)

    work = tempfile.mkdtemp(prefix="odradek-bench-txn.")
    b = bench.Broker("odradek", os.path.abspath(args.bin), work, name="broker", extra=[
        "transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1",
        "offsets.topic.replication.factor=1"])
    idem, txn, rc, ru = [], [], [], []
    try:
        b.start()
        b.wait_ready()
        for rnd in range(args.rounds):
            sides = ["idempotent", "transactional"]
            if rnd % 2:
                sides.reverse()
            for side in sides:
                topic = f"{side[:3]}-{rnd}"
                b.create_topics([(topic, parts)])
                if side == "idempotent":
                    r = bench.measured(b, lambda: produce_idempotent(b.port, topic, n, size, parts))
                    idem.append(r)
                    extra = ""
                else:
                    r = bench.measured(b, lambda: produce_transactional(b.port, topic, n, size, parts,
                                                                  args.commit_ms, f"bench-txn-{rnd}"))
                    txn.append(r)
                    extra = f", {r['commits']} commits (median {r['commit_ms_median']:.1f} ms)"
                bench.log(f"round {rnd + 1} produce {side}: {r['records_s']:.4g} records/s, "
                          f"{r['mb_s']:.4g} MB/s, broker cpu {r['cpu_s']:.2f} s{extra}")
        for rnd in range(args.rounds):
            sides = ["read_committed", "read_uncommitted"]
            if rnd % 2:
                sides.reverse()
            for iso in sides:
                r = bench.measured(b, lambda: consume(b.port, "tra-0", n, size, parts, iso))
                (rc if iso == "read_committed" else ru).append(r)
                bench.log(f"round {rnd + 1} consume {iso}: {r['records_s']:.4g} records/s, "
                          f"{r['mb_s']:.4g} MB/s, broker cpu {r['cpu_s']:.2f} s")
    finally:
        b.stop()
        if args.keep:
            print(f"# kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'workload':<34} {'records/s':<34} {'MB/s':<26} {'broker cpu s':<22}")
    for name, runs in (("produce idempotent", idem), (f"produce transactional ({args.commit_ms} ms)", txn),
                       ("consume read_uncommitted", ru), ("consume read_committed", rc)):
        print(f"{name:<34} {fmt(runs, 'records_s'):<34} {fmt(runs, 'mb_s'):<26} {fmt(runs, 'cpu_s'):<22}")
    print(f"(medians of {args.rounds} runs, min-max in brackets; transactional: "
          f"{statistics.median(r['commits'] for r in txn):.0f} commits per run, median commit "
          f"{statistics.median(r['commit_ms_median'] for r in txn):.1f} ms)")
    busy = {name: med(runs, "cpu_s") / med(runs, "seconds") for name, runs in
            (("idempotent", idem), ("transactional", txn), ("read_uncommitted", ru), ("read_committed", rc))}
    print("broker CPU per run second (1.0 = one core busy; far below 1 means the Python client, not "
          "the broker, bounds the rate): " + ", ".join(f"{k} {v:.2f}" for k, v in busy.items()))
    p_ratio = med(txn, "records_s") / med(idem, "records_s")
    c_ratio = med(rc, "records_s") / med(ru, "records_s")
    print(f"\ntransactional / idempotent produce records/s: {p_ratio:.3f} "
          f"(issue 13 target >= 0.70: {'pass' if p_ratio >= 0.70 else 'MISS'})")
    print(f"read_committed / read_uncommitted consume records/s: {c_ratio:.3f} "
          f"(issue 13 target within 10%: {'pass' if abs(c_ratio - 1) <= 0.10 else 'MISS'})")


if __name__ == "__main__":
    main()
