#!/usr/bin/env python3
"""Load benchmark of Odradek against two baselines, driven by librdkafka's rdkafka_performance.

Run through scripts/bench.sh (which builds everything this needs); see README.md, section
"Load benchmark". Standard library only.

Brokers compared in every run (each started fresh, on its own port, data under a temp dir):
  odradek  target/release/odradek serve, data on disk
  ceiling  Tansu 0.6 with null:// storage (discards records): what the client side can reach
  peer     Tansu 0.6 with memory:// storage: a broker that keeps records, in memory

Every figure in the table is the median of --runs runs, with min-max in brackets. Nothing here
asserts: a missed target is reported, the exit status is 0 unless the harness itself broke.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# A minimal Kafka client for the few admin requests the harness needs (non-flexible versions).
# --------------------------------------------------------------------------------------------


def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


class Reader:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0]

    def i8(self):
        return self.take(">b")

    def i16(self):
        return self.take(">h")

    def i32(self):
        return self.take(">i")

    def i64(self):
        return self.take(">q")

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        s = self.buf[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def array(self, item):
        n = self.i32()
        return [item() for _ in range(max(n, 0))]


class KafkaConn:
    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.cid = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _recv(self, n):
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("connection closed by broker")
            out += chunk
        return bytes(out)

    def request(self, key, version, body):
        self.cid += 1
        msg = struct.pack(">hhi", key, version, self.cid) + kstr("odradek-bench") + body
        self.sock.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", self._recv(4))[0]
        r = Reader(self._recv(size))
        if r.i32() != self.cid:
            raise ConnectionError("correlation id mismatch")
        return r

    def metadata(self, topics=None):
        """Metadata v1. Returns (broker ids, {topic: (error, {partition: (error, leader, replicas)})})."""
        if topics is None:
            body = struct.pack(">i", -1)
        else:
            body = struct.pack(">i", len(topics)) + b"".join(kstr(t) for t in topics)
        r = self.request(3, 1, body)
        brokers = r.array(lambda: (r.i32(), r.string(), r.i32(), r.string()))
        r.i32()  # controller id

        def partition():
            err, idx, leader = r.i16(), r.i32(), r.i32()
            replicas = r.array(r.i32)
            r.array(r.i32)  # isr
            return idx, (err, leader, replicas)

        def topic():
            err, name = r.i16(), r.string()
            r.i8()  # is_internal
            return name, (err, dict(r.array(partition)))

        return [b[0] for b in brokers], dict(r.array(topic))

    def create_topics(self, topics, timeout_ms=30000):
        """CreateTopics v2: topics = [(name, partitions, replication factor)] -> {name: (error, message)}."""
        body = struct.pack(">i", len(topics))
        for name, parts, rf in topics:
            body += kstr(name) + struct.pack(">ihii", parts, rf, 0, 0)
        body += struct.pack(">ib", timeout_ms, 0)
        r = self.request(19, 2, body)
        r.i32()  # throttle
        return dict(r.array(lambda: (r.string(), (r.i16(), r.string()))))

    def list_offsets(self, topic, partitions, timestamp=-1):
        """ListOffsets v1 -> {partition: (error, offset)}."""
        body = struct.pack(">ii", -1, 1) + kstr(topic) + struct.pack(">i", len(partitions))
        for p in partitions:
            body += struct.pack(">iq", p, timestamp)
        r = self.request(2, 1, body)
        out = {}
        for _ in range(r.i32()):
            r.string()
            for _ in range(r.i32()):
                p, err = r.i32(), r.i16()
                r.i64()
                out[p] = (err, r.i64())
        return out


def default_binary():
    """The broker binary: $ODRADEK_BIN, else the release build of this checkout."""
    env = os.environ.get("ODRADEK_BIN")
    if env:
        return env
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(repo, "target")
    return os.path.join(target, "release", "odradek")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# Broker processes and their /proc figures
# --------------------------------------------------------------------------------------------


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon"):
                out[k] = int(v.split()[0]) * 1024
    return out


class Broker:
    def __init__(self, kind, binary, workdir, extra=(), port=None, name=None):
        self.kind = kind  # odradek | ceiling | peer
        self.binary = binary
        self.name = name or kind
        self.dir = os.path.join(workdir, self.name)
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data, exist_ok=True)
        self.port = port or free_port()
        self.extra = list(extra)
        self.proc = None
        self.logf = None

    def command(self):
        if self.kind == "odradek":
            cmd = [self.binary, "serve",
                   "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
                   "--override", f"log.dirs={self.data}",
                   # No HTTP listener: its default port would collide between brokers.
                   "--override", "http.listener="]
            for kv in self.extra:
                cmd += ["--override", kv]
            return cmd
        storage = {"ceiling": "null://sink", "peer": "memory://tansu/"}[self.kind]
        url = f"tcp://127.0.0.1:{self.port}"
        return [self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", storage] + self.extra

    def start(self):
        self.logf = open(os.path.join(self.dir, "broker.log"), "ab")
        env = dict(os.environ)
        env.pop("RUST_LOG", None)
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(self.command(), stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=self.dir)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout=60.0, topic=None, partitions=0):
        """Waits until the port answers and Metadata answers (listing `partitions` partitions of
        `topic`, all with a leader, when given). Returns (seconds to port, seconds to metadata)
        from process start."""
        deadline = self.t_start + timeout
        t_port = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.dir}/broker.log")
            if t_port is None:
                if port_answers(self.port):
                    t_port = time.monotonic() - self.t_start
                else:
                    time.sleep(0.002)
                    continue
            try:
                with KafkaConn(self.port, timeout=2.0) as c:
                    _, topics = c.metadata([topic] if topic else [])
                if topic is None:
                    return t_port, time.monotonic() - self.t_start
                err, parts = topics.get(topic, (-1, {}))
                if err == 0 and len(parts) >= partitions and all(
                        e == 0 and leader >= 0 for e, leader, _ in parts.values()):
                    return t_port, time.monotonic() - self.t_start
            except (OSError, struct.error, ConnectionError):
                pass
            time.sleep(0.002)
        raise RuntimeError(f"{self.name} not ready after {timeout}s; see {self.dir}/broker.log")

    def stop(self, timeout=30.0):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop within {timeout}s after SIGTERM: killing")
                self.proc.kill()
                self.proc.wait()
        if self.logf:
            self.logf.close()
            self.logf = None

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self.logf:
            self.logf.close()
            self.logf = None

    def reset_peak_rss(self):
        # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass

    def create_topics(self, topics, rf=1):
        with KafkaConn(self.port, timeout=60.0) as c:
            res = c.create_topics([(t, p, rf) for t, p in topics])
        bad = {t: v for t, v in res.items() if v[0] != 0}
        if bad:
            raise RuntimeError(f"{self.name}: CreateTopics failed: {bad}")
        for t, p in topics:
            self.wait_ready(timeout=60.0 + time.monotonic() - self.t_start, topic=t, partitions=p)


class Sampler:
    """Samples the broker's RssAnon every 50 ms while a workload runs (the kernel keeps a peak
    for the whole RSS, VmHWM, but none for RssAnon)."""

    def __init__(self, pid):
        self.pid, self.max_anon, self._stop = pid, 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.max_anon = max(self.max_anon, proc_status(self.pid).get("RssAnon", 0))
            except OSError:
                return
            self._stop.wait(0.05)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def measured(broker, fn):
    """Runs fn() and adds the broker's CPU seconds, peak RSS and RssAnon figures to its result."""
    broker.reset_peak_rss()
    cpu0 = proc_cpu_seconds(broker.pid)
    with Sampler(broker.pid) as s:
        res = fn()
    st = proc_status(broker.pid)
    res["cpu_s"] = proc_cpu_seconds(broker.pid) - cpu0
    res["peak_rss_mib"] = st.get("VmHWM", 0) / MIB
    res["rss_anon_mib"] = max(s.max_anon, st.get("RssAnon", 0)) / MIB
    res["rss_anon_end_mib"] = st.get("RssAnon", 0) / MIB
    return res


# --------------------------------------------------------------------------------------------
# rdkafka_performance
# --------------------------------------------------------------------------------------------

PRODUCED = re.compile(r"(\d+) messages produced \((\d+) bytes\), (\d+) delivered \(offset (-?\d+), "
                      r"(\d+) failed\) in (\d+)ms")
CONSUMED = re.compile(r"(\d+) messages \((\d+) bytes\) consumed in (\d+)ms")


class Perf:
    def __init__(self, binary, workdir):
        self.binary, self.workdir, self.n = binary, workdir, 0

    def _run(self, args, timeout, tag):
        self.n += 1
        out_path = os.path.join(self.workdir, f"perf-{self.n:03d}-{tag}.out")
        cmd = [self.binary] + args
        with open(out_path, "w") as out:
            out.write(" ".join(cmd) + "\n")
            out.flush()
            try:
                p = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
                rc = p.returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        with open(out_path) as f:
            text = f.read()
        return rc, text, out_path

    def start_consumer(self, port, topic, partitions, count, latency_file=None, tag="consume"):
        self.n += 1
        out_path = os.path.join(self.workdir, f"perf-{self.n:03d}-{tag}.out")
        # No -e here: the topic is still empty when this consumer starts.
        args = [a for a in self._consumer_args(port, topic, partitions, count, latency_file) if a != "-e"]
        out = open(out_path, "w")
        p = subprocess.Popen([self.binary] + args, stdout=out, stderr=subprocess.STDOUT)
        return p, out, out_path

    def _consumer_args(self, port, topic, partitions, count, latency_file):
        args = ["-C", "-t", topic, "-b", f"127.0.0.1:{port}", "-o", "beginning", "-c", str(count),
                "-e", "-q"]
        for p in partitions:
            args += ["-p", str(p)]
        if latency_file:
            args += ["-l", "-A", latency_file]
        return args

    def produce(self, port, topic, count, size, acks=1, linger_ms=5, partition=None, rate=None,
                latency_file=None, timeout=600, brokers=None, extra=()):
        args = ["-P", "-t", topic, "-b", brokers or f"127.0.0.1:{port}", "-s", str(size),
                "-c", str(count), "-a", str(acks), "-X", f"linger.ms={linger_ms}", "-q"]
        if partition is not None:
            args += ["-p", str(partition)]
        if rate:
            args += ["-r", str(rate)]
        if latency_file:
            args += ["-l", "-A", latency_file]
        args += list(extra)
        rc, text, path = self._run(args, timeout, "produce")
        m = PRODUCED.search(text)
        if not m:
            raise RuntimeError(f"rdkafka_performance producer (exit {rc}) printed no summary: {path}")
        delivered, failed, ms = int(m.group(3)), int(m.group(5)), max(int(m.group(6)), 1)
        res = {"msgs_s": delivered / (ms / 1000), "mb_s": delivered * size / 1e6 / (ms / 1000),
               "delivered": delivered, "failed": failed, "seconds": ms / 1000}
        if failed or delivered < count:
            res["error"] = f"{delivered}/{count} delivered, {failed} failed ({path})"
        return res

    def consume(self, port, topic, partitions, count, size, timeout=600, extra=()):
        args = self._consumer_args(port, topic, partitions, count, None) + list(extra)
        rc, text, path = self._run(args, timeout, "consume")
        m = CONSUMED.search(text)
        got = int(m.group(1)) if m else 0
        ms = max(int(m.group(3)), 1) if m else 1
        res = {"msgs_s": got / (ms / 1000), "mb_s": got * size / 1e6 / (ms / 1000),
               "consumed": got, "seconds": ms / 1000}
        if got < count:
            res["error"] = f"consumed {got}/{count} (exit {rc}; {path})"
        return res


def percentiles(path, ps=(50, 99, 99.9)):
    with open(path) as f:
        vals = sorted(int(line) for line in f if line.strip())
    if not vals:
        return None
    out = {}
    for p in ps:
        k = max(0, min(len(vals) - 1, int(-(-p * len(vals) // 100)) - 1))  # nearest rank
        out[p] = vals[k] / 1000.0  # microseconds -> ms
    out["n"] = len(vals)
    return out


# --------------------------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------------------------


class Sizes:
    def __init__(self, quick, recovery_mb):
        self.quick = quick
        # Records per produce/consume workload: at a few M msg/s a run of 1 M lasts well under a
        # second, so the full size is 5 M (the memory target is stated for >= 2 M records).
        self.n = 1_000_000 if quick else 5_000_000  # 100-byte records
        self.n_1k = 200_000 if quick else 1_000_000  # 1 KiB records
        self.e2e_seconds = 5 if quick else 20
        self.recovery_mb = recovery_mb
        self.startup_partitions = 1000


def run_throughput_set(broker, perf, sizes, selected):
    """Produce and consume workloads on one fresh broker. Returns {workload: result}."""
    results = {}
    topics = [("p1", 1), ("p6", 6), ("k1", 1)]
    broker.create_topics(topics)
    keeps = broker.kind != "ceiling"

    def want(w):
        return selected is None or w in selected

    if want("produce-1p") or want("consume-1p"):
        results["produce-1p"] = measured(broker, lambda: perf.produce(broker.port, "p1", sizes.n, 100, partition=0))
        results["memory-after-produce"] = {"rss_anon_mib": proc_status(broker.pid).get("RssAnon", 0) / MIB,
                                           "rss_mib": proc_status(broker.pid).get("VmRSS", 0) / MIB}
    if want("produce-6p") or want("consume-6p"):
        results["produce-6p"] = measured(broker, lambda: perf.produce(broker.port, "p6", sizes.n, 100))
    if want("consume-1p"):
        results["consume-1p"] = (measured(broker, lambda: perf.consume(broker.port, "p1", [0], sizes.n, 100))
                                 if keeps else {"na": "null:// keeps no records"})
    if want("consume-6p"):
        results["consume-6p"] = (measured(broker, lambda: perf.consume(broker.port, "p6", range(6), sizes.n, 100))
                                 if keeps else {"na": "null:// keeps no records"})
    if want("produce-1k") or want("consume-1k"):
        results["produce-1k"] = measured(broker, lambda: perf.produce(broker.port, "k1", sizes.n_1k, 1024, partition=0))
    if want("consume-1k"):
        results["consume-1k"] = (measured(broker, lambda: perf.consume(broker.port, "k1", [0], sizes.n_1k, 1024))
                                 if keeps else {"na": "null:// keeps no records"})
    for rate in (1000, 10000):
        w = f"e2e-{rate // 1000}k"
        if not want(w):
            continue
        if not keeps:
            # No records come back from null://; the producer-ack latency is still meaningful.
            pass
        topic = f"lat{rate}"
        broker.create_topics([(topic, 1)])
        count = rate * sizes.e2e_seconds
        lat_dir = perf.workdir
        pfile = os.path.join(lat_dir, f"{broker.name}-{topic}-{perf.n}-producer.lat")
        cfile = os.path.join(lat_dir, f"{broker.name}-{topic}-{perf.n}-consumer.lat")

        def e2e():
            cons = None
            if keeps:
                cons = perf.start_consumer(broker.port, topic, [0], count, cfile, tag="e2e-consume")
                time.sleep(1.0)  # let the consumer connect and start fetching
            res = perf.produce(broker.port, topic, count, 100, acks=1, linger_ms=0, partition=0,
                               rate=rate, latency_file=pfile, timeout=sizes.e2e_seconds * 4 + 60)
            if cons:
                p, out, path = cons
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                    res["error"] = f"consumer did not receive all {count} messages ({path})"
                out.close()
            res["lat_producer"] = percentiles(pfile)
            res["lat_e2e"] = percentiles(cfile) if keeps and os.path.exists(cfile) else None
            return res

        results[w] = measured(broker, e2e)
    return results


def run_startup(odradek_bin, workdir, perf, sizes, restarts, keep=False):
    """Start-up with 1,000 partitions: create them, produce a little into each, stop cleanly,
    then time `restarts` restarts from process start until Metadata lists every partition with
    a leader. Also the idle RSS right after such a start."""
    b = Broker("odradek", odradek_bin, workdir, name="odradek-startup").start()
    nparts = sizes.startup_partitions
    try:
        b.wait_ready()
        t0 = time.monotonic()
        b.create_topics([("many", nparts)])
        log(f"start-up: CreateTopics with {nparts} partitions took {time.monotonic() - t0:.2f} s")
        t0 = time.monotonic()
        # sticky.partitioning.linger.ms=0: a random partition per record, so most partitions get some.
        perf.produce(b.port, "many", 20 * nparts, 100, linger_ms=5,
                     extra=["-X", "sticky.partitioning.linger.ms=0"])
        log(f"start-up: producing {20 * nparts} records took {time.monotonic() - t0:.2f} s")
    finally:
        b.stop()
    out = []
    for _ in range(restarts):
        b.start()
        try:
            t_port, t_meta = b.wait_ready(timeout=120, topic="many", partitions=nparts)
            # Metadata may come from cluster metadata alone; ListOffsets(latest) of every
            # partition needs each partition's log opened.
            while True:
                try:
                    with KafkaConn(b.port, timeout=60) as c:
                        offs = c.list_offsets("many", list(range(nparts)))
                    if len(offs) == nparts and all(e == 0 for e, _ in offs.values()):
                        break
                except (OSError, ConnectionError, struct.error):
                    pass
                if time.monotonic() - b.t_start > 120:
                    raise RuntimeError("ListOffsets of all partitions failed for 120 s")
                time.sleep(0.002)
            t_open = time.monotonic() - b.t_start
            time.sleep(1.0)
            st = proc_status(b.pid)
            out.append({"t_port": t_port, "t_meta": t_meta, "t_open": t_open, "idle_rss_mib": st.get("VmRSS", 0) / MIB,
                        "idle_rss_anon_mib": st.get("RssAnon", 0) / MIB})
        finally:
            b.stop()
    if not keep:
        shutil.rmtree(b.dir, ignore_errors=True)
    return out


def read_checkpoint(path):
    """Kafka's checkpoint file format: version, count, then 'topic partition offset' lines."""
    out = {}
    try:
        with open(path) as f:
            lines = f.read().split("\n")
        for line in lines[2:]:
            parts = line.split()
            if len(parts) == 3:
                out[(parts[0], int(parts[1]))] = int(parts[2])
    except OSError:
        pass
    return out


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            if f.endswith(".log"):
                total += os.path.getsize(os.path.join(root, f))
    return total


def run_recovery(odradek_bin, workdir, perf, sizes, kills, keep=False):
    """Fills one partition with recovery_mb MiB of 1 KiB records, then `kills` times: kill -9,
    restart, time until ListOffsets(latest) answers the log end offset of before the kill.
    One clean restart (SIGTERM) of the same data is timed for comparison."""
    b = Broker("odradek", odradek_bin, workdir, name="odradek-recovery").start()
    count = sizes.recovery_mb * MIB // 1024
    runs = []
    try:
        b.wait_ready()
        b.create_topics([("big", 1)])
        log(f"recovery: producing {sizes.recovery_mb} MiB ({count} x 1 KiB records)")
        res = perf.produce(b.port, "big", count, 1024, linger_ms=5, partition=0, timeout=3600)
        if "error" in res:
            raise RuntimeError(res["error"])

        def leo():
            with KafkaConn(b.port, timeout=120) as c:
                err, off = c.list_offsets("big", [0])[0]
            if err:
                raise RuntimeError(f"ListOffsets error {err}")
            return off

        end = leo()
        log_bytes = dir_bytes(b.data)

        def restart_timed():
            b.start()
            t_port, t_meta = b.wait_ready(timeout=600)
            while True:
                try:
                    if leo() == end:
                        return t_port, t_meta, time.monotonic() - b.t_start
                except (OSError, RuntimeError, ConnectionError, struct.error):
                    pass
                if time.monotonic() - b.t_start > 600:
                    raise RuntimeError("log end offset not back after 600 s")
                time.sleep(0.005)

        for _ in range(kills):
            b.kill9()
            rp = read_checkpoint(os.path.join(b.data, "recovery-point-offset-checkpoint")).get(("big", 0), 0)
            tail = (end - rp) / end * log_bytes if end else 0
            t_port, t_meta, t_ready = restart_timed()
            runs.append({"kind": "kill -9", "t_port": t_port, "t_meta": t_meta, "t_ready": t_ready,
                         "recovery_point": rp, "end": end, "tail_mib": tail / MIB, "log_mib": log_bytes / MIB})
        b.stop()
        t_port, t_meta, t_ready = restart_timed()
        runs.append({"kind": "clean", "t_port": t_port, "t_meta": t_meta, "t_ready": t_ready,
                     "log_mib": log_bytes / MIB})
    finally:
        b.stop()
        if not keep:
            shutil.rmtree(b.dir, ignore_errors=True)
    return runs


ZK_JAR = "/usr/share/java/zookeeper.jar"


def run_cluster(odradek_bin, workdir, perf, sizes, runs):
    """acks=all into a replication-factor-3 topic on three Odradek brokers sharing a ZooKeeper
    started here. Returns a result, or {"skipped": reason}."""
    if not (os.path.exists(ZK_JAR) and shutil.which("java")):
        return {"skipped": "cluster mode unavailable: no ZooKeeper here (apt-get install zookeeper)"}
    zdir = os.path.join(workdir, "zookeeper")
    os.makedirs(os.path.join(zdir, "data"), exist_ok=True)
    zport = free_port()
    with open(os.path.join(zdir, "zoo.cfg"), "w") as f:
        f.write(f"tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={zdir}/data\nclientPort={zport}\n"
                "clientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxSessionTimeout=60000\n")
    zlog = open(os.path.join(zdir, "zookeeper.log"), "wb")
    zk = subprocess.Popen(["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                           "-Dzookeeper.admin.enableServer=false", "-cp",
                           f"{ZK_JAR}:/usr/share/java/*:/etc/zookeeper/conf",
                           "org.apache.zookeeper.server.quorum.QuorumPeerMain", os.path.join(zdir, "zoo.cfg")],
                          stdout=zlog, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=zdir)
    brokers = []
    try:
        deadline = time.monotonic() + 30
        while not port_answers(zport):
            if zk.poll() is not None or time.monotonic() > deadline:
                return {"skipped": "cluster mode unavailable: ZooKeeper did not start"}
            time.sleep(0.1)
        for i in (1, 2, 3):
            b = Broker("odradek", odradek_bin, workdir, name=f"odradek-cluster-{i}",
                       extra=[f"broker.id={i}", f"zookeeper.connect=127.0.0.1:{zport}/odradek-bench"])
            brokers.append(b.start())
        for b in brokers:
            b.wait_ready(timeout=60)
        # Give registrations a moment, then look at what the cluster says about itself.
        deadline = time.monotonic() + 5
        while True:
            with KafkaConn(brokers[0].port) as c:
                ids, _ = c.metadata([])
            if len(ids) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if len(ids) < 3:
            return {"skipped": f"cluster mode unavailable: Metadata lists {len(ids)} broker(s), need 3"}
        bootstrap = ",".join(f"127.0.0.1:{b.port}" for b in brokers)
        results = []
        for i in range(runs):
            topic = f"rf3-{i}"
            with KafkaConn(brokers[0].port, timeout=60) as c:
                res = c.create_topics([(topic, 1, 3)])
            err, msg = res.get(topic, (-1, "no answer"))
            if err:
                return {"skipped": f"cluster mode unavailable: CreateTopics RF=3 -> error {err} {msg or ''}".strip()}
            brokers[0].wait_ready(timeout=60, topic=topic, partitions=1)
            with KafkaConn(brokers[0].port) as c:
                _, topics = c.metadata([topic])
            leader = topics[topic][1][0][1]
            lb = next((b for b in brokers if b.extra[0] == f"broker.id={leader}"), brokers[0])
            others = [b for b in brokers if b is not lb]
            cpu0 = [proc_cpu_seconds(b.pid) for b in others]
            res = measured(lb, lambda: perf.produce(lb.port, topic, sizes.n, 100, acks=-1, partition=0,
                                                    brokers=bootstrap))
            # CPU of the whole cluster (leader + both followers); RSS figures stay the leader's.
            res["cpu_s"] += sum(proc_cpu_seconds(b.pid) - c for b, c in zip(others, cpu0))
            # Every replica must hold the records: compare the three copies of the partition.
            deadline = time.monotonic() + 15
            while True:
                on_disk = [dir_bytes(os.path.join(b.data, f"{topic}-0")) for b in brokers]
                if len(set(on_disk)) == 1 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if len(set(on_disk)) != 1 or not on_disk[0]:
                res["error"] = f"replicas differ after acks=all produce: log bytes {on_disk}"
            log(f"  cluster acks=all run {i + 1}/{runs}: {res['msgs_s']:.4g} msgs/s, cluster CPU {res['cpu_s']:.2f} s")
            results.append(res)
        return results
    finally:
        for b in brokers:
            b.stop()
        zk.terminate()
        try:
            zk.wait(20)
        except subprocess.TimeoutExpired:
            zk.kill()
            zk.wait()
        zlog.close()


# --------------------------------------------------------------------------------------------
# Table
# --------------------------------------------------------------------------------------------


def med(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def fmt_num(v, unit=""):
    if v is None:
        return "-"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f}M{unit}"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.0f}k{unit}"
    if abs(v) >= 100:
        return f"{v:.0f}{unit}"
    if abs(v) >= 10:
        return f"{v:.1f}{unit}"
    return f"{v:.2f}{unit}"


def fmt_med(m, unit=""):
    if m is None:
        return "-"
    mid, lo, hi = m
    if lo == hi:
        return fmt_num(mid, unit)
    return f"{fmt_num(mid, unit)} ({fmt_num(lo)}–{fmt_num(hi)})"


WORKLOADS = [
    ("produce-1p", "produce 100 B, 1 partition, acks=1 linger 5 ms"),
    ("produce-6p", "produce 100 B, 6 partitions, acks=1 linger 5 ms"),
    ("consume-1p", "consume 100 B from beginning, 1 partition"),
    ("consume-6p", "consume 100 B from beginning, 6 partitions"),
    ("produce-1k", "produce 1 KiB, 1 partition, acks=1 linger 5 ms"),
    ("consume-1k", "consume 1 KiB from beginning, 1 partition"),
    ("e2e-1k", "1,000 msg/s linger 0"),
    ("e2e-10k", "10,000 msg/s linger 0"),
    ("cluster-acks-all", "produce 100 B acks=all, RF=3, 3 brokers (CPU: all 3)"),
]
BROKERS = ["odradek", "ceiling", "peer"]


def build_rows(all_runs, sizes):
    """all_runs: list of {broker: {workload: result}} (one per run). Returns table rows."""
    rows = []
    def series(broker, w, key, sub=None):
        vals = []
        for run in all_runs:
            r = run.get(broker, {}).get(w)
            if not r or "na" in r or "skipped" in r:
                continue
            v = r.get(key)
            if sub is not None:
                v = v.get(sub) if v else None
            vals.append(v)
        return vals

    def ratio(w, other):
        a = med(series("odradek", w, "msgs_s"))
        b = med(series(other, w, "msgs_s"))
        if not a or not b or not b[0]:
            return "-"
        return f"{a[0] / b[0]:.2f}"

    for w, desc in WORKLOADS:
        for broker in BROKERS:
            present = [run.get(broker, {}).get(w) for run in all_runs if run.get(broker, {}).get(w)]
            if not present:
                continue
            first = present[0]
            if "skipped" in first:
                rows.append({"workload": w, "desc": desc, "broker": broker, "skipped": "skipped: " + first["skipped"]})
                continue
            if "na" in first:
                rows.append({"workload": w, "desc": desc, "broker": broker, "skipped": "n/a: " + first["na"]})
                continue
            errors = [r["error"] for r in present if "error" in r]
            if w.startswith("e2e"):
                for which, label in (("lat_producer", "producer ack"), ("lat_e2e", "produce→consume")):
                    if which == "lat_e2e" and broker == "ceiling":
                        continue
                    rows.append({
                        "workload": w, "desc": f"{desc}, {label} latency", "broker": broker,
                        "msgs_s": med(series(broker, w, "msgs_s")), "mb_s": med(series(broker, w, "mb_s")),
                        "p50": med(series(broker, w, which, 50)), "p99": med(series(broker, w, which, 99)),
                        "p999": med(series(broker, w, which, 99.9)),
                        "cpu": med(series(broker, w, "cpu_s")), "hwm": med(series(broker, w, "peak_rss_mib")),
                        "anon": med(series(broker, w, "rss_anon_mib")), "errors": errors, "lat": which,
                    })
                continue
            rows.append({
                "workload": w, "desc": desc, "broker": broker,
                "msgs_s": med(series(broker, w, "msgs_s")), "mb_s": med(series(broker, w, "mb_s")),
                "cpu": med(series(broker, w, "cpu_s")), "hwm": med(series(broker, w, "peak_rss_mib")),
                "anon": med(series(broker, w, "rss_anon_mib")), "errors": errors,
                "vs_ceiling": ratio(w, "ceiling") if broker == "odradek" else "",
                "vs_peer": ratio(w, "peer") if broker == "odradek" else "",
            })
    return rows


def add_targets(rows, all_runs, startup, recovery, sizes):
    def find(w, broker, lat=None):
        for r in rows:
            if r["workload"] == w and r["broker"] == broker and r.get("lat") == lat and "skipped" not in r:
                return r
        return None

    def verdict(ok):
        return "pass" if ok else "MISS"

    r = find("produce-1p", "odradek")
    c = find("produce-1p", "ceiling")
    if r and c and r["msgs_s"] and c["msgs_s"]:
        x = r["msgs_s"][0] / c["msgs_s"][0]
        r["target"], r["verdict"] = "≥ 0.67 × ceiling", verdict(x >= 0.67)
    for w in ("consume-1p", "consume-6p"):
        r = find(w, "odradek")
        if r and r["msgs_s"]:
            r["target"], r["verdict"] = "≥ 2 M msg/s", verdict(r["msgs_s"][0] >= 2e6)
    r = find("e2e-1k", "odradek", "lat_e2e")
    if r and r["p50"] and r["p99"]:
        r["target"] = "p50 < 1 ms, p99 < 5 ms"
        r["verdict"] = verdict(r["p50"][0] < 1 and r["p99"][0] < 5)

    extra = []
    mem = [run.get("odradek", {}).get("memory-after-produce") for run in all_runs]
    mem = [m for m in mem if m]
    if mem:
        m = med([x["rss_anon_mib"] for x in mem])
        note = f" ({sizes.n:,} records into 1 partition" + ("" if sizes.n >= 2_000_000 else ", < 2 M: --quick") + ")"
        extra.append({"name": "RssAnon after producing 100 B records" + note, "value": fmt_med(m, " MiB"),
                      "target": "< 64 MiB after 2 M records", "verdict": verdict(m[0] < 64)})
    idle = [run.get("odradek", {}).get("idle") for run in all_runs]
    idle = [i for i in idle if i]
    if idle:
        m = med([x["rss_mib"] for x in idle])
        extra.append({"name": "idle RSS after start (empty data dir)", "value": fmt_med(m, " MiB"),
                      "target": "< 20 MiB", "verdict": verdict(m[0] < 20)})
    if startup:
        m = med([x["t_meta"] for x in startup])
        p = med([x["t_port"] for x in startup])
        extra.append({"name": f"start-up, {sizes.startup_partitions} partitions: port answers",
                      "value": fmt_med(p, " s"), "target": "", "verdict": ""})
        extra.append({"name": f"start-up, {sizes.startup_partitions} partitions: Metadata lists all",
                      "value": fmt_med(m, " s"), "target": "< 1 s", "verdict": verdict(m[0] < 1)})
        o = med([x["t_open"] for x in startup])
        extra.append({"name": f"start-up, {sizes.startup_partitions} partitions: ListOffsets answers for all",
                      "value": fmt_med(o, " s"), "target": "< 1 s", "verdict": verdict(o[0] < 1)})
        i = med([x["idle_rss_mib"] for x in startup])
        extra.append({"name": f"idle RSS with {sizes.startup_partitions} partitions", "value": fmt_med(i, " MiB"),
                      "target": "", "verdict": ""})
    if recovery and not isinstance(recovery, dict):
        dirty = [x for x in recovery if x["kind"] == "kill -9"]
        clean = [x for x in recovery if x["kind"] == "clean"]
        if dirty:
            t = med([x["t_ready"] for x in dirty])
            tail = med([x["tail_mib"] for x in dirty])
            logm = dirty[0]["log_mib"]
            tc = clean[0]["t_ready"] if clean else 0.0
            # "Proportional to the unflushed tail": the extra time over a clean restart must be
            # explained by scanning the tail at >= 100 MiB/s (plus 0.25 s of slack).
            allowed = tc + 0.25 + tail[0] / 100.0
            extra.append({"name": f"recovery after kill -9, {logm:.0f} MiB log, unflushed tail "
                                  f"{fmt_med(tail, ' MiB')}: until ListOffsets = end",
                          "value": fmt_med(t, " s"),
                          "target": f"≤ clean + tail/100 MiB/s + 0.25 s = {allowed:.2f} s",
                          "verdict": verdict(t[0] <= allowed)})
        if clean:
            extra.append({"name": "clean restart, same log: until ListOffsets = end",
                          "value": fmt_num(clean[0]["t_ready"], " s"), "target": "", "verdict": ""})
    elif isinstance(recovery, dict) and recovery.get("error"):
        extra.append({"name": "recovery after kill -9", "value": "error: " + recovery["error"],
                      "target": "", "verdict": ""})
    return extra


def render(rows, extra, sizes, runs, notes):
    cols = [("workload", 44), ("broker", 8), ("msgs/s", 20), ("MB/s", 20), ("p50 ms", 18), ("p99 ms", 18),
            ("p99.9 ms", 18), ("CPU s", 18), ("peak RSS MiB", 18), ("RssAnon MiB", 18),
            ("/ceiling", 8), ("/peer", 6), ("target", 24), ("result", 6)]
    lines = []
    head = " | ".join(name.ljust(w) for name, w in cols)
    lines.append(head)
    lines.append("-+-".join("-" * w for _, w in cols))
    for r in rows:
        if "skipped" in r:
            cells = [r["desc"], r["broker"], r["skipped"]]
            lines.append(" | ".join([cells[0].ljust(44), cells[1].ljust(8), cells[2]]))
            continue
        cells = [r["desc"], r["broker"], fmt_med(r["msgs_s"]), fmt_med(r["mb_s"]),
                 fmt_med(r.get("p50")), fmt_med(r.get("p99")), fmt_med(r.get("p999")),
                 fmt_med(r["cpu"]), fmt_med(r["hwm"]), fmt_med(r["anon"]),
                 r.get("vs_ceiling", ""), r.get("vs_peer", ""), r.get("target", ""), r.get("verdict", "")]
        lines.append(" | ".join(str(c).ljust(w) for c, (_, w) in zip(cells, cols)))
        if r["errors"]:
            lines.append("    ! " + "; ".join(r["errors"][:3]))
    lines.append("")
    for e in extra:
        t = f"   target {e['target']}: {e['verdict']}" if e["target"] else ""
        lines.append(f"{e['name']}: {e['value']}{t}")
    lines.append("")
    lines.append(f"runs: {runs}; {sizes.n:,} x 100 B records per produce/consume workload, {sizes.n_1k:,} x 1 KiB; "
                 f"e2e {sizes.e2e_seconds} s per rate. Figures: median (min–max). MB = 10^6 bytes.")
    lines.append("ceiling = Tansu 0.6 null:// (discards records), peer = Tansu 0.6 memory://. "
                 "CPU s, peak RSS (VmHWM, reset per workload) and RssAnon (max sampled) are the broker's.")
    lines.extend(notes)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--odradek", required=True)
    ap.add_argument("--tansu", required=True)
    ap.add_argument("--rdkafka-perf", required=True)
    ap.add_argument("--quick", action="store_true", help="1 run of small sizes (unless --runs is given)")
    ap.add_argument("--runs", type=int, help="runs per workload (default 3, --quick 1)")
    ap.add_argument("--recovery-mb", type=int, help="log size for the kill -9 recovery timing (MiB; default 2048, --quick 256)")
    ap.add_argument("--only", help="comma-separated workloads (" + ",".join(w for w, _ in WORKLOADS)
                    + ",startup,recovery)")
    ap.add_argument("--brokers", default=",".join(BROKERS), help="comma-separated subset of odradek,ceiling,peer")
    ap.add_argument("--work-dir", help="parent of the temporary work dir (default $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (broker logs, rdkafka_performance output)")
    ap.add_argument("--json", help="also write all raw results to this file")
    ap.add_argument("--profile-cmd", help="run around the Odradek broker's pid during produce-1p/consume-1p, "
                    "e.g. 'perf record -g -o OUT -p {pid}' ({pid} and {workload} are substituted)")
    args = ap.parse_args()

    runs = args.runs or (1 if args.quick else 3)
    recovery_mb = args.recovery_mb or (256 if args.quick else 2048)
    sizes = Sizes(args.quick, recovery_mb)
    selected = set(args.only.split(",")) if args.only else None
    brokers = [b for b in args.brokers.split(",") if b]
    workdir = tempfile.mkdtemp(prefix="odradek-bench.", dir=args.work_dir)
    log(f"work dir {workdir}")
    perf = Perf(args.rdkafka_perf, workdir)
    notes = []
    all_runs = []
    startup = recovery = None
    live = []

    def cleanup(*_):
        for b in live:
            b.kill9()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *a: (cleanup(), sys.exit(143)))
    try:
        for run in range(runs):
            this = {}
            for kind in brokers:
                binary = args.odradek if kind == "odradek" else args.tansu
                b = Broker(kind, binary, workdir, name=f"{kind}-run{run}")
                live.append(b)
                b.start()
                b.wait_ready()
                time.sleep(1.0)
                st = proc_status(b.pid)
                res = {"idle": {"rss_mib": st.get("VmRSS", 0) / MIB, "rss_anon_mib": st.get("RssAnon", 0) / MIB}}
                log(f"run {run + 1}/{runs}: {kind} on port {b.port} (idle RSS {res['idle']['rss_mib']:.1f} MiB)")
                prof = None
                try:
                    if args.profile_cmd and kind == "odradek":
                        prof = args.profile_cmd
                    res.update(run_throughput_set_profiled(b, perf, sizes, selected, prof))
                except Exception as e:  # one broker failing must not hide the others' figures
                    log(f"{kind}: {e}")
                    notes.append(f"! run {run + 1} {kind}: {e}")
                finally:
                    b.stop()
                    live.remove(b)
                    if not args.keep:
                        shutil.rmtree(b.dir, ignore_errors=True)
                for w, r in res.items():
                    if w not in ("idle", "memory-after-produce"):
                        log(f"  {kind} {w}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                          for k, v in r.items() if k in ("msgs_s", "mb_s", "cpu_s", "error", "na")))
                this[kind] = res
            all_runs.append(this)
        if "odradek" in brokers and (selected is None or "cluster-acks-all" in selected):
            log("cluster: acks=all on 3 brokers with RF=3")
            try:
                cl = run_cluster(args.odradek, workdir, perf, sizes, runs)
            except Exception as e:
                cl = {"skipped": f"cluster run failed: {e}"}
            if isinstance(cl, dict):
                log(cl["skipped"])
                cl = [cl] * len(all_runs)
            for run, r in zip(all_runs, cl):
                run.setdefault("odradek", {})["cluster-acks-all"] = r
        if "odradek" in brokers and (selected is None or "startup" in selected):
            log(f"start-up timing with {sizes.startup_partitions} partitions ({max(runs, 3)} restarts)")
            startup = run_startup(args.odradek, workdir, perf, sizes, max(runs, 3), args.keep)
        if "odradek" in brokers and (selected is None or "recovery" in selected):
            log(f"recovery timing after kill -9 ({sizes.recovery_mb} MiB log)")
            try:
                recovery = run_recovery(args.odradek, workdir, perf, sizes, runs, args.keep)
            except Exception as e:
                recovery = {"error": str(e)}
    finally:
        cleanup()

    rows = build_rows(all_runs, sizes)
    extra = add_targets(rows, all_runs, startup, recovery, sizes)
    print(render(rows, extra, sizes, runs, notes))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": all_runs, "startup": startup, "recovery": recovery,
                       "sizes": vars(sizes)}, f, indent=1, default=str)


def run_throughput_set_profiled(broker, perf, sizes, selected, profile_cmd):
    if not profile_cmd:
        return run_throughput_set(broker, perf, sizes, selected)
    # Profile each of produce-1p and consume-1p separately: a profiler process attached to the
    # broker's pid for exactly that workload.
    results = {}
    broker.create_topics([("p1", 1)])
    for w, fn in (("produce-1p", lambda: perf.produce(broker.port, "p1", sizes.n, 100, partition=0)),
                  ("consume-1p", lambda: perf.consume(broker.port, "p1", [0], sizes.n, 100))):
        # No shell: the SIGINT below must reach the profiler itself (a shell would die and
        # leave it recording until the broker exits).
        cmd = [a.format(pid=broker.pid, workload=w) for a in shlex.split(profile_cmd)]
        prof = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        results[w] = measured(broker, fn)
        prof.send_signal(signal.SIGINT)
        try:
            prof.wait(60)
        except subprocess.TimeoutExpired:
            prof.kill()
            prof.wait()
    return results


if __name__ == "__main__":
    main()
