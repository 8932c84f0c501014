#!/usr/bin/env python3
"""Interleaved A/B of the consume path of two Odradek binaries over the SAME stored data.

    scripts/bench-consume-ab.py --base OLD_BIN --new NEW_BIN --rdkafka-perf PATH [--rounds 6]

Produces once (5 M x 100 B into topics p1 (1 partition) and p6 (6 partitions), 1 M x 1 KiB into
k1) with the base broker, then for each round restarts the data dir under the base binary and
under the new binary (order alternating) and consumes every topic from the beginning with
rdkafka_performance, recording msgs/s and the broker's CPU seconds for each consume. Produce
variance and data layout are thus identical for both sides; what differs is only the broker's
read and send path. Prints median (min-max) per topic and side, and new/base ratios.
The load generator path is printed by scripts/bench-tools.sh (RDKAFKA_PERF=...).
Standard library only; imports scripts/bench.py for the broker and rdkafka_performance drivers.
"""
import argparse
import os
import shlex
import shutil
import signal
import subprocess
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

TOPICS = [("p1", 1, 5_000_000, 100), ("p6", 6, 5_000_000, 100), ("k1", 1, 1_000_000, 1024)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--rdkafka-perf", required=True)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the record counts")
    ap.add_argument("--profile-cmd", help="run around each consume, e.g. 'perf record -g -o "
                    "/tmp/{side}-{topic}-{round}.data -p {pid}' (stopped with SIGINT)")
    args = ap.parse_args()
    topics = [(t, p, max(1000, int(n * args.scale)), s) for t, p, n, s in TOPICS]
    work = tempfile.mkdtemp(prefix="odradek-consume-ab.")
    perf = bench.Perf(args.rdkafka_perf, work)
    results = {}  # (topic, side, metric) -> [values]
    try:
        b = bench.Broker("odradek", args.base, work, name="broker").start()
        try:
            b.wait_ready()
            b.create_topics([(t, p) for t, p, _, _ in topics])
            for t, _, n, size in topics:
                r = perf.produce(b.port, t, n, size)
                bench.log(f"produced {t}: {r['msgs_s']:.4g} msg/s")
        finally:
            b.stop()
        for rnd in range(args.rounds):
            sides = [("base", args.base), ("new", args.new)]
            if rnd % 2:
                sides.reverse()
            for side, binary in sides:
                b = bench.Broker("odradek", binary, work, name="broker", port=b.port)
                b.start()
                try:
                    b.wait_ready()
                    for t, parts, n, size in topics:
                        prof = None
                        if args.profile_cmd:
                            cmd = args.profile_cmd.format(side=side, topic=t, round=rnd + 1, pid=b.pid)
                            prof = subprocess.Popen(shlex.split(cmd), stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL)
                            time.sleep(0.5)
                        try:
                            r = bench.measured(b, lambda: perf.consume(b.port, t, range(parts), n, size))
                        finally:
                            if prof:
                                prof.send_signal(signal.SIGINT)
                                prof.wait()
                        if "error" in r:
                            bench.log(f"{side} {t}: {r['error']}")
                            continue
                        bench.log(f"round {rnd + 1} {side} {t}: {r['msgs_s']:.4g} msg/s, cpu {r['cpu_s']:.3f} s")
                        for m in ("msgs_s", "cpu_s"):
                            results.setdefault((t, side, m), []).append(r[m])
                finally:
                    b.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def fmt(xs):
        return f"{statistics.median(xs):.4g} ({min(xs):.4g}-{max(xs):.4g})"

    print(f"{'topic':<6} {'metric':<7} {'base':<28} {'new':<28} new/base")
    for t, _, _, _ in topics:
        for m in ("msgs_s", "cpu_s"):
            b_, n_ = results.get((t, "base", m)), results.get((t, "new", m))
            if b_ and n_:
                print(f"{t:<6} {m:<7} {fmt(b_):<28} {fmt(n_):<28} {statistics.median(n_) / statistics.median(b_):.3f}")


if __name__ == "__main__":
    main()
