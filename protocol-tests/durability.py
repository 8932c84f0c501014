"""What a fault test checks: every record a producer saw acknowledged is read
back exactly once, at its acknowledged offset, in order per partition; and the
replicas of each partition end up with identical logs (no replica keeps records
its leader never committed).

- ``ContinuousProducer``: an idempotent acks=all confluent-kafka producer in a
  thread, writing unique sequential payloads (``<tag>-<seq>``, partition
  ``seq % partitions``) and recording every delivery report.
- ``read_back``: a fresh consumer reads each partition from the beginning up
  to its high watermark.
- ``verify``: acknowledged vs. read back.
- ``replica_log`` / ``converged_log``: the records in each replica's segment
  files (uncompressed v2 batches, as this producer writes), compared.
- ``finish_and_verify``: all of it, at the end of a fault test.
"""

from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from cluster import Cluster, poll

RETRIABLE_NAMES = {
    "NOT_LEADER_FOR_PARTITION", "NOT_LEADER_OR_FOLLOWER", "LEADER_NOT_AVAILABLE",
    "NOT_ENOUGH_REPLICAS", "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "REQUEST_TIMED_OUT",
    "_TRANSPORT", "_MSG_TIMED_OUT", "_TIMED_OUT", "NETWORK_EXCEPTION", "_ALL_BROKERS_DOWN",
}


@dataclass
class Ack:
    partition: int
    offset: int
    payload: bytes


_RUNNING: list = []


def abandon_all():
    """Stop every producer a test left running (called at cluster teardown)."""
    while _RUNNING:
        p = _RUNNING.pop()
        try:
            p.abandon()
        except Exception:  # noqa: BLE001
            pass


@dataclass
class ContinuousProducer:
    bootstrap: str
    topic: str
    partitions: int
    tag: str = "r"
    conf: dict = field(default_factory=dict)
    # Records per second at most (the 2-core CI machine also runs the brokers).
    rate: float = 1500.0
    acked: list = field(default_factory=list)     # Ack, in delivery-report order
    failed: list = field(default_factory=list)    # (payload, error name, error str)
    sent: int = 0

    def __post_init__(self):
        from confluent_kafka import Producer

        c = {
            "bootstrap.servers": self.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "none",
            "message.timeout.ms": 90000,
            "request.timeout.ms": 10000,
            "retry.backoff.ms": 100,
            "retry.backoff.max.ms": 500,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
            "topic.metadata.refresh.interval.ms": 1000,
            "metadata.max.age.ms": 3000,
        }
        c.update(self.conf)
        self._p = Producer(c)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.fatal: Optional[str] = None

    def payload(self, seq: int) -> bytes:
        return f"{self.tag}-{seq:09d}".encode()

    def _cb(self, err, msg):
        with self._lock:
            if err is not None:
                self.failed.append((msg.value(), err.name(), str(err)))
                if err.fatal():
                    self.fatal = str(err)
            else:
                self.acked.append(Ack(msg.partition(), msg.offset(), msg.value()))

    def _run(self):
        seq, t0 = 0, time.monotonic()
        while not self._stop.is_set():
            if seq > (time.monotonic() - t0) * self.rate:
                self._p.poll(0.01)
                continue
            try:
                self._p.produce(self.topic, value=self.payload(seq),
                                partition=seq % self.partitions, on_delivery=self._cb)
                seq += 1
                self.sent = seq
            except BufferError:
                self._p.poll(0.05)
                continue
            self._p.poll(0)

    def start(self) -> "ContinuousProducer":
        _RUNNING.append(self)
        self._thread = threading.Thread(target=self._run, name=f"producer-{self.tag}", daemon=True)
        self._thread.start()
        return self

    def n_acked(self) -> int:
        with self._lock:
            return len(self.acked)

    def wait_acked(self, more: int, timeout: float = 30.0, what: str = "") -> int:
        """Until ``more`` records beyond the current count are acknowledged."""
        goal = self.n_acked() + more
        poll(lambda: self.n_acked() >= goal or self._check_fatal(), timeout,
             f"{more} more acknowledged records {what}(have {self.n_acked()}, "
             f"errors {self.error_summary()})", interval=0.05)
        return self.n_acked()

    def _check_fatal(self):
        if self.fatal:
            raise AssertionError(f"fatal producer error: {self.fatal}")
        return False

    def abandon(self):
        """Stop producing, drop what is queued (a failed test's teardown)."""
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        if self._p is not None:
            self._p.purge()
            self._p.flush(0)
            self._p = None

    def stop(self, flush_timeout: float = 60.0):
        """Stop producing and wait for every outstanding delivery report."""
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        left = self._p.flush(flush_timeout)
        assert left == 0, f"{left} records without a delivery report after {flush_timeout}s"
        self._p = None  # librdkafka closes its connections now, not at some later GC

    def error_summary(self) -> dict:
        with self._lock:
            out: dict = {}
            for _, name, _ in self.failed:
                out[name] = out.get(name, 0) + 1
            return out

    def non_retriable_errors(self) -> list:
        with self._lock:
            return [f for f in self.failed if f[1] not in RETRIABLE_NAMES]


# ------------------------------------------------------------ read back ----

def read_back(bootstrap: str, topic: str, partitions: int, timeout: float = 60.0) -> dict:
    """partition -> [(offset, value)] from the log start to the high watermark
    (taken when this starts), read by a fresh confluent consumer."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "odradek-cluster-readback",
                  "enable.auto.commit": False, "enable.partition.eof": False,
                  "auto.offset.reset": "error", "fetch.wait.max.ms": 100,
                  "isolation.level": "read_uncommitted"})
    out = {}
    try:
        for p in range(partitions):
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
            got: list = []
            if hi > lo:
                c.assign([TopicPartition(topic, p, OFFSET_BEGINNING)])
                deadline = time.monotonic() + timeout
                while (not got or got[-1][0] < hi - 1) and time.monotonic() < deadline:
                    for m in c.consume(num_messages=1000, timeout=0.5):
                        if m.error():
                            raise AssertionError(f"consumer error on {topic}-{p}: {m.error()}")
                        if m.offset() < hi:
                            got.append((m.offset(), m.value()))
                assert got and got[-1][0] == hi - 1, \
                    f"{topic}-{p}: read up to {got[-1][0] if got else None}, high watermark {hi}"
            out[p] = got
    finally:
        c.close()
    return out


def _seq(payload: bytes, tag: str) -> Optional[int]:
    prefix = tag.encode() + b"-"
    if payload is None or not payload.startswith(prefix):
        return None
    return int(payload[len(prefix):])


def verify(prod: ContinuousProducer, got: dict) -> dict:
    """Every acknowledged record is at its acknowledged offset; every payload in
    the log was produced and appears once; per partition the sequence numbers
    grow with the offsets.  Returns counts for the test's log."""
    problems = []
    where = {}  # payload -> (partition, offset)
    for p, recs in got.items():
        prev = None
        for off, val in recs:
            s = _seq(val, prod.tag)
            if s is None or s >= prod.sent or s % prod.partitions != p:
                problems.append(f"{prod.topic}-{p}@{off}: {val!r} was never produced to this partition")
                continue
            if val in where:
                problems.append(f"{val!r} twice: {where[val]} and ({p}, {off})")
            where[val] = (p, off)
            if prev is not None and s <= prev:
                problems.append(f"{prod.topic}-{p}@{off}: seq {s} after seq {prev} (out of order)")
            prev = s
    acked_at = {}
    for a in prod.acked:
        if a.payload in acked_at:
            problems.append(f"{a.payload!r} acknowledged twice")
        acked_at[a.payload] = (a.partition, a.offset)
        if where.get(a.payload) != (a.partition, a.offset):
            problems.append(f"acked {a.payload!r} at ({a.partition}, {a.offset}) but the log has it "
                            f"at {where.get(a.payload)}")
    assert not problems, (f"{len(problems)} problems ({len(prod.acked)} acked, "
                          f"{sum(len(r) for r in got.values())} read back, {prod.sent} sent, errors "
                          f"{prod.error_summary()}); first ones:\n  " + "\n  ".join(problems[:25]))
    return {"sent": prod.sent, "acked": len(prod.acked), "read": len(where),
            "unacked_but_written": len(where) - len(acked_at), "errors": prod.error_summary()}


# ------------------------------------------------- replicas' on-disk logs ----

def _varint(b: bytes, i: int):
    shift = result = 0
    while True:
        byte = b[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    return (result >> 1) ^ -(result & 1), i


def parse_segment(data: bytes) -> list:
    """(offset, value) of every data record in a segment file of v2 batches
    (control batches skipped; compressed batches are not expected here)."""
    out, pos = [], 0
    while pos + 61 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        end = pos + 12 + length
        if length <= 0 or end > len(data):
            break  # a torn tail (a follower mid-write): not yet data
        magic = data[pos + 16]
        attrs = struct.unpack_from(">h", data, pos + 21)[0]
        count = struct.unpack_from(">i", data, pos + 57)[0]
        assert magic == 2, f"magic {magic} at file position {pos}"
        assert attrs & 0x7 == 0, "compressed batch (the test producer writes uncompressed)"
        i = pos + 61
        for _ in range(count):
            _len, i = _varint(data, i)
            rec_end = i + _len
            i += 1  # attributes
            _, i = _varint(data, i)          # timestamp delta
            odelta, i = _varint(data, i)     # offset delta
            klen, i = _varint(data, i)
            i += max(klen, 0)
            vlen, i = _varint(data, i)
            value = data[i:i + vlen] if vlen >= 0 else None
            if not attrs & 0x20:
                out.append((base + odelta, value))
            i = rec_end
        pos = end
    return out


def replica_log(broker, topic: str, p: int) -> list:
    d = Path(broker.data_dir) / f"{topic}-{p}"
    out = []
    for seg in sorted(d.glob("*.log")):
        out.extend(parse_segment(seg.read_bytes()))
    return out


def converged_log(cluster: Cluster, topic: str, partitions: int, timeout: float = 45.0) -> dict:
    """Until, for every partition, all replicas' on-disk logs are identical and
    equal to what a consumer reads up to the high watermark; returns that log
    (partition -> [(offset, value)]).  A replica that keeps records its leader
    never committed, or lacks committed ones, never converges: the error names
    the first difference."""
    replicas = {p: cluster.partition(topic, p).replicas for p in range(partitions)}

    def cond():
        logs = {p: {r: replica_log(cluster.broker(r), topic, p) for r in replicas[p]}
                for p in range(partitions)}
        got = read_back(cluster.bootstrap, topic, partitions, timeout=20)
        bad = []
        for p in range(partitions):
            want = got[p]
            for r, have in logs[p].items():
                if have != want:
                    diff = next((i for i, (x, y) in enumerate(zip(have, want)) if x != y),
                                min(len(have), len(want)))
                    bad.append(f"{topic}-{p} on broker {r}: {len(have)} records on disk, {len(want)}"
                               f" read by consumers; first difference at index {diff}: disk "
                               f"{have[diff:diff + 2]} vs read {want[diff:diff + 2]}")
        if bad:
            raise AssertionError("; ".join(bad[:6]))
        return got

    return poll(cond, timeout, "replica logs identical to what consumers read", interval=0.5)


# ----------------------------------------------------------- whole runs ----

def served_by(broker, topic: str, partitions: int, timeout: float = 15.0):
    """What a consumer bootstrapped at this broker alone reads right now (it
    follows that broker's own, possibly stale, view of who leads).  None when
    it cannot read (refused, redirected to an unreachable leader...)."""
    try:
        return read_back(broker.bootstrap, topic, partitions, timeout=timeout)
    except Exception as e:  # noqa: BLE001
        return f"<unreadable: {e!r}>"


def acks1_write_accepted(broker, topic: str, partition: int, timeout_s: float = 4.0) -> bool:
    """Whether this broker alone (its own, possibly stale, view of who leads)
    acknowledges an acks=1 write to the partition within the timeout."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": 1,
                  "enable.idempotence": False, "linger.ms": 0,
                  "message.timeout.ms": int(timeout_s * 1000),
                  "retry.backoff.ms": 100, "topic.metadata.refresh.interval.ms": 500})
    outcome = []
    p.produce(topic, b"acks1-probe", partition=partition,
              on_delivery=lambda err, _msg: outcome.append(err))
    p.flush(timeout_s + 5)
    return bool(outcome) and outcome[0] is None


def assert_served_were_committed(served, final: dict, who: str):
    """Every record that was served (see ``served_by``) is in the final log at the
    same offset: nothing a consumer saw was later lost or replaced."""
    if not isinstance(served, dict):
        return
    bad = []
    for p, recs in served.items():
        final_at = dict(final.get(p, []))
        bad += [(p, o, v, final_at.get(o)) for o, v in recs if final_at.get(o) != v]
    assert not bad, (f"{who} served {len(bad)} records that are not in the final log at that "
                     f"offset (partition, offset, served, final): {bad[:10]}")


def finish_and_verify(cluster: Cluster, prod: ContinuousProducer, topic: str, partitions: int,
                      allowed_failures: tuple = ()) -> tuple:
    """Stop the producer, then: no delivery failures (except the named error
    kinds), every acknowledged record read back once in order, replica logs
    identical.  Returns (final log per partition, stats)."""
    prod.stop()
    failed = [f for f in prod.failed if f[1] not in allowed_failures]
    assert not failed, f"delivery failures: {prod.error_summary()}, e.g. {failed[:3]}"
    try:
        got = converged_log(cluster, topic, partitions)
    except AssertionError:
        verify(prod, read_back(cluster.bootstrap, topic, partitions))  # a loss explains more
        raise
    stats = verify(prod, got)
    print(f"{topic}: {stats}")
    return got, stats
