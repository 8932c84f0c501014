"""Transactions on three brokers (ZooKeeper), modelled on Kafka's own
transactions system test: transactional copiers move every record of an input
topic to an output topic (consume, begin, produce the copies,
send_offsets_to_transaction, commit; on an abortable error abort and rewind to
the committed position) while the broker that coordinates them and the leaders
of their partitions are killed and restarted.  Afterwards:

- the output equals the input: every record once, none missing, and the copy
  of input partition p is output partition p in the same order;
- a read_committed consumer that ran all along saw each record once, only
  records of committed transactions (none of the aborted ones that the log
  holds), and in the end all of them;
- every copier finished; none hit a fatal error (fenced, or librdkafka's
  idempotence giving up), and after each abort the broker's committed offset
  was the position of the copier's last committed transaction.

The default run has one short scenario (one SIGKILL of the coordinator);
the long one (several SIGKILLs and clean stops of the coordinator and of the
partition leaders, more records) runs only with ODRADEK_FAULT_TESTS=1:

    ODRADEK_FAULT_TESTS=1 .venv/bin/python -m pytest protocol-tests/test_txn_cluster.py

Each copier is a separate process: this file run as a script
(``python test_txn_cluster.py copy '<json>'``, see ``copier_main``), printing
one JSON line per event; it stops by itself at its deadline (SIGALRM, whatever
librdkafka is doing), dies with the test process (PR_SET_PDEATHSIG), and the
test kills whatever is left at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from brokers import die_with_parent  # noqa: E402
from cluster import SESSION_TIMEOUT_MS, poll, recv_exact  # noqa: E402

pytestmark = pytest.mark.cluster

SESSION_S = SESSION_TIMEOUT_MS / 1000
TXN_STATE = "__transaction_state"
TXN_STATE_PARTITIONS = 50  # transaction.state.log.num.partitions (Kafka's default)
TXN_OVERRIDES = {
    "transaction.state.log.replication.factor": 3,
    "transaction.state.log.min.isr": 2,
    "transaction.state.log.num.partitions": TXN_STATE_PARTITIONS,
}
TOPIC_CONFIG = {"min.insync.replicas": "2"}
# Longer than any fault here lasts (a dead coordinator is replaced after the
# ZooKeeper session timeout): the coordinator must not abort a transaction
# only because the fault outlived it.  As in Kafka's test (40 s there).
TXN_TIMEOUT_MS = 60000
FAULTS = os.environ.get("ODRADEK_FAULT_TESTS") == "1"


# --------------------------------------------------------- Kafka's hash ----

def java_string_hash(s: str) -> int:
    """Java's String.hashCode (over UTF-16 code units, 32-bit wrapping)."""
    h = 0
    units = s.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (31 * h + ((units[i] << 8) | units[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def txn_partition(transactional_id: str, partitions: int = TXN_STATE_PARTITIONS) -> int:
    """The __transaction_state partition of a transactional id: Kafka's
    Utils.abs(hashCode) % partitions (Utils.abs maps Integer.MIN_VALUE to 0)."""
    h = java_string_hash(transactional_id)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def find_coordinator(broker, key: str, key_type: int = 1, timeout: float = 10.0) -> tuple:
    """A raw FindCoordinator v1 to exactly this broker: (error code, node id)."""
    client = b"odradek-txn-tests"
    body = struct.pack(">h", len(key.encode())) + key.encode() + struct.pack(">b", key_type)
    req = struct.pack(">hhih", 10, 1, 17, len(client)) + client + body
    with socket.create_connection((broker.host, broker.port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(req)) + req)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        data = recv_exact(s, size)
    corr, _throttle, err = struct.unpack_from(">iih", data, 0)
    assert corr == 17, "correlation id mismatch"
    i = 10
    msg_len = struct.unpack_from(">h", data, i)[0]
    i += 2 + max(msg_len, 0)
    node = struct.unpack_from(">i", data, i)[0]
    return err, node


def coordinator_of(c, transactional_id: str, exclude: tuple = (), timeout: float = 45.0) -> int:
    """The broker coordinating ``transactional_id``: what FindCoordinator
    (key_type 1) answers at every live broker, which must agree with the
    agreed leader of its __transaction_state partition.  Polled: right after a
    fault the answers may still move."""
    part = txn_partition(transactional_id)

    def cond():
        answers = {b.broker_id: find_coordinator(b, transactional_id) for b in c.alive()}
        leader = c.leader(TXN_STATE, part, timeout=5, exclude=exclude)
        bad = {i: a for i, a in answers.items() if a != (0, leader)}
        if bad:
            raise AssertionError(f"FindCoordinator({transactional_id!r}) answers (error, node) "
                                 f"{answers}; leader of {TXN_STATE}-{part} is {leader}")
        return leader
    return poll(cond, timeout, f"the coordinator of {transactional_id!r}", interval=0.3)


# ------------------------------------------------------ the copier process ----

HUNG_CLIENT = 4  # a copier's exit code when librdkafka hung (see copier_main's watchdog)
MAX_RESTARTS = 3  # per copier, after HUNG_CLIENT
CALL_TIMEOUT_S = 10.0  # each transactional call's timeout in the copier
WATCHDOG_GRACE_S = 5.0  # a call still blocked this long after its timeout: HUNG_CLIENT

def _kafka_error(e):
    err = e.args[0] if e.args else None
    return err if hasattr(err, "retriable") else None


def copier_main(spec: dict) -> int:
    """One transactional copier (the script side of this file).  Copies input
    partition p to output partition p until the position it committed reaches
    ``end``; prints JSON events; exit 0 when done, 2 at its deadline, 3 on a
    fatal error."""
    from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                                 TopicPartition)

    COORDINATOR_MOVED = {  # noqa: N806
        KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.UNSTABLE_OFFSET_COMMIT,
        KafkaError.REQUEST_TIMED_OUT, KafkaError.NETWORK_EXCEPTION, KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT, KafkaError._WAIT_COORD,
    }

    deadline = time.monotonic() + spec["deadline_s"]
    signal.alarm(int(spec["deadline_s"]) + 15)  # the hard bound, even inside librdkafka

    def left() -> float:
        """A client call's timeout: CALL_TIMEOUT_S (a retriable timeout is
        retried), less near the deadline."""
        return max(1.0, min(CALL_TIMEOUT_S, deadline - time.monotonic()))

    def emit(event, **kw):
        kw.update(event=event, tid=spec["tid"], t=round(time.monotonic(), 3))
        print(json.dumps(kw), flush=True)

    p, end = spec["partition"], spec["end"]
    common = {
        "bootstrap.servers": spec["bootstrap"],
        "topic.metadata.refresh.interval.ms": 1000,
        "metadata.max.age.ms": 3000,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "retry.backoff.ms": 100,
        "retry.backoff.max.ms": 500,
    }
    if spec.get("debug"):
        common["debug"] = spec["debug"]  # librdkafka's own log, to the stderr file
    producer = Producer(dict(common, **{
        "transactional.id": spec["tid"],
        "transaction.timeout.ms": spec["txn_timeout_ms"],
        "request.timeout.ms": 10000,
        "linger.ms": 5,
        # several batches per partition and transaction, so several in flight
        # (Kafka's copier sets batch.size 512 for the same reason)
        "batch.num.messages": 20,
        "max.in.flight.requests.per.connection": 5,
    }))
    consumer = Consumer(dict(common, **{
        "group.id": spec["group"],
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # never a silent jump: a position out of range is an error here
        "auto.offset.reset": "error",
        "fetch.wait.max.ms": 100,
    }))
    stats = {"txns": 0, "aborts": 0, "copied": 0, "errors": {}}

    def note(err, where):
        key = f"{where}:{err.name()}"
        stats["errors"][key] = stats["errors"].get(key, 0) + 1
        emit("error", where=where, error=err.name(), detail=err.str())

    def fatal(err, where):
        emit("fatal", where=where, error=err.name(), detail=err.str(), **stats)
        return 3

    def watchdog(where):
        """librdkafka 2.16 can block in send_offsets_to_transaction past its
        timeout when the group coordinator's broker died (librdkafka issues
        #5456 and #5511: the coordinator request's timeout is never checked,
        and a broker gone from Metadata no longer wakes it up).  No call can
        be interrupted, so the process leaves with HUNG_CLIENT; the test
        starts a new copier with the same transactional id, which fences this
        one, as Kafka's test does when it bounces its copiers."""
        def fire():
            emit("client_hang", where=where, **stats)
            os._exit(HUNG_CLIENT)
        t = threading.Timer(left() + WATCHDOG_GRACE_S, fire)
        t.daemon = True
        t.start()
        return t

    def retrying(fn, where):
        """Call fn until it succeeds; retriable errors are retried (librdkafka's
        contract for the transactional calls); others are raised."""
        while True:
            dog = watchdog(where)
            try:
                return fn()
            except KafkaException as e:
                err = _kafka_error(e)
                if err is None or not err.retriable() or err.fatal() or time.monotonic() > deadline:
                    raise
                note(err, where)
            finally:
                dog.cancel()

    def committed_offset() -> int:
        """The group's committed offset of the input partition (OffsetFetch with
        require_stable, as the consumer is read_committed).  librdkafka gives
        up on a coordinator that moved (NOT_COORDINATOR...) without marking
        the error retriable; Kafka's Java consumer retries those until its
        timeout, and so does this."""
        while True:
            try:
                (got,) = consumer.committed([TopicPartition(spec["input"], p)], timeout=left())
                if got.error:
                    raise KafkaException(got.error)
                return got.offset
            except KafkaException as e:
                err = _kafka_error(e)
                if (err is None or time.monotonic() > deadline
                        or not (err.retriable() or err.code() in COORDINATOR_MOVED)):
                    raise
                note(err, "committed")
                time.sleep(0.1)

    try:
        retrying(lambda: producer.init_transactions(left()), "init")
        start = committed_offset()
        consumer.assign([TopicPartition(spec["input"], p, start if start >= 0 else OFFSET_BEGINNING)])
        emit("init", committed=start)
        t0 = time.monotonic()
        committed_pos = max(start, 0)
        attempts = 0
        while committed_pos < end:
            if time.monotonic() > deadline:
                emit("deadline", committed=committed_pos, **stats)
                return 2
            msgs = consumer.consume(num_messages=spec["txn_size"], timeout=0.3)
            bad = [m.error() for m in msgs if m.error()]
            if bad:
                for e in bad:
                    note(e, "consume")
                if any(e.code() == KafkaError._AUTO_OFFSET_RESET or e.fatal() for e in bad):
                    emit("fatal", where="consume", error=bad[0].name(), detail=bad[0].str(), **stats)
                    return 3
                msgs = [m for m in msgs if not m.error()]
            if not msgs:
                continue
            attempts += 1
            deliberate = spec["abort_every"] and attempts % spec["abort_every"] == 0
            try:
                producer.begin_transaction()
                for m in msgs:
                    while True:
                        try:
                            producer.produce(spec["output"], value=m.value(), key=m.key(), partition=p)
                            break
                        except BufferError:
                            producer.poll(0.05)
                next_pos = msgs[-1].offset() + 1
                # at most `rate` records per second, so that the copy outlasts
                # the faults; the wait is inside the transaction, so a fault
                # most likely finds one open (records written, not committed)
                while (ahead := (stats["copied"] + len(msgs)) / spec["rate"]
                        - (time.monotonic() - t0)) > 0:
                    producer.poll(min(ahead, 0.1))
                retrying(lambda: producer.send_offsets_to_transaction(
                    [TopicPartition(spec["input"], p, next_pos)],
                    consumer.consumer_group_metadata(), left()), "send_offsets")
                if deliberate:
                    # as Kafka's copier with --enable-random-aborts, but every
                    # n-th time; the records are delivered first, so the log
                    # holds them: what read_committed must never show
                    undelivered = producer.flush(left())
                    reason = ("deliberate", f"{undelivered} undelivered")
                else:
                    retrying(lambda: producer.commit_transaction(left()), "commit")
                    stats["txns"] += 1
                    stats["copied"] += len(msgs)
                    committed_pos = next_pos
                    emit("commit", committed=committed_pos, n=len(msgs), first=msgs[0].offset(),
                         **stats)
                    continue
            except KafkaException as e:
                err = _kafka_error(e)
                if err is None:
                    raise
                note(err, "txn")
                if err.fatal():
                    return fatal(err, "txn")
                # abortable (or retriable past the deadline): abort, rewind to
                # the committed position, as Kafka's copier does
                reason = (err.name(), err.str())
                undelivered = None
            try:
                retrying(lambda: producer.abort_transaction(left()), "abort")
            except KafkaException as e2:
                err2 = _kafka_error(e2)
                if err2 is not None and err2.fatal():
                    return fatal(err2, "abort")
                raise
            stats["aborts"] += 1
            got = committed_offset()
            to = TopicPartition(spec["input"], p, got if got >= 0 else OFFSET_BEGINNING)
            try:
                consumer.seek(to)
            except KafkaException:
                consumer.assign([to])
            # `committed` is this copier's own record, `broker_committed` what
            # the broker answered: the test requires them equal
            emit("abort", error=reason[0], detail=reason[1], n=len(msgs), undelivered=undelivered,
                 deliberate=bool(deliberate), broker_committed=got, committed=committed_pos,
                 **stats)
            committed_pos = max(got, 0)
        emit("done", committed=committed_pos, **stats)
        return 0
    except KafkaException as e:
        err = _kafka_error(e)
        emit("fatal", where="outside a transaction", error=err.name() if err else repr(e),
             detail=err.str() if err else repr(e), **stats)
        return 3
    finally:
        try:
            consumer.close()
        except Exception:  # noqa: BLE001
            pass
        producer.flush(2)


# -------------------------------------------------- the test's side of it ----

_COPIERS: list = []


@dataclass
class Copier:
    """One copier process and the events it printed."""
    tid: str
    partition: int
    end: int
    proc: subprocess.Popen
    stderr_path: Path
    spec: dict = field(default_factory=dict)
    workdir: Optional[Path] = None
    restarts: int = 0
    events: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def _spawn(workdir: Path, spec: dict, err_path: Path) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "copy", json.dumps(spec)],
            stdout=subprocess.PIPE, stderr=open(err_path, "ab"), stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent, cwd=workdir)

    @classmethod
    def start(cls, workdir: Path, spec: dict) -> "Copier":
        err_path = workdir / f"{spec['tid']}.stderr"
        c = cls(spec["tid"], spec["partition"], spec["end"], cls._spawn(workdir, spec, err_path),
                err_path, spec, workdir)
        _COPIERS.append(c)
        threading.Thread(target=c._read, args=(c.proc,), daemon=True, name=f"read-{c.tid}").start()
        return c

    def restart(self):
        """A new process with the same transactional id (after HUNG_CLIENT)."""
        self.restarts += 1
        self.proc = self._spawn(self.workdir, self.spec, self.stderr_path)
        threading.Thread(target=self._read, args=(self.proc,), daemon=True,
                         name=f"read-{self.tid}-{self.restarts}").start()

    def _read(self, proc):
        for line in proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"event": "garbage", "line": line.decode(errors="replace")}
            with self._lock:
                self.events.append(ev)

    def snapshot(self) -> list:
        with self._lock:
            return list(self.events)

    def committed(self) -> int:
        """The position of its last committed transaction (0 before any)."""
        for ev in reversed(self.snapshot()):
            if "committed" in ev:
                return max(ev["committed"], 0)
        return 0

    def txns(self) -> int:
        """Transactions committed, over all its processes."""
        return sum(e["event"] == "commit" for e in self.snapshot())

    def done(self) -> bool:
        return any(e["event"] == "done" for e in self.snapshot())

    def check_alive(self):
        """Raise if it exited without finishing (fatal error, deadline, crash);
        after HUNG_CLIENT start it again, at most MAX_RESTARTS times."""
        rc = self.proc.poll()
        if rc == HUNG_CLIENT and self.restarts < MAX_RESTARTS:
            self.restart()
            return
        if rc is not None and not (rc == 0 and self.done()):
            raise AssertionError(f"copier {self.tid} exited {rc}: {self.describe()}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def describe(self) -> str:
        evs = self.snapshot()
        tail = [e for e in evs if e["event"] != "commit"][-6:] + evs[-2:]
        try:
            err = self.stderr_path.read_text(errors="replace")[-1500:]
        except OSError:
            err = ""
        return (f"committed {self.committed()}/{self.end}, {self.txns()} txns; last events "
                f"{tail}" + (f"; stderr: {err}" if err.strip() else ""))


def kill_copiers():
    """Kill every copier process and stop every watcher a test left."""
    while _COPIERS:
        _COPIERS.pop().kill()
    while _WATCHERS:
        _WATCHERS.pop().stop()


_WATCHERS: list = []


class Watcher:
    """The read_committed consumer that runs all along: everything it is
    served, in order, and every error it reports."""

    def __init__(self, bootstrap: str, topic: str, partitions: int):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        self.seen: list = []      # (partition, offset, value)
        self.errors: list = []    # (name, str)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._c = Consumer({
            "bootstrap.servers": bootstrap, "group.id": f"watch-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed", "enable.auto.commit": False,
            "auto.offset.reset": "error", "fetch.wait.max.ms": 100,
            "topic.metadata.refresh.interval.ms": 1000, "metadata.max.age.ms": 3000,
            "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})
        self._c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        self._t = threading.Thread(target=self._run, daemon=True, name="watcher")
        self._t.start()
        _WATCHERS.append(self)

    def _run(self):
        while not self._stop.is_set():
            for m in self._c.consume(num_messages=500, timeout=0.2):
                with self._lock:
                    if m.error():
                        self.errors.append((m.error().name(), m.error().str()))
                    else:
                        self.seen.append((m.partition(), m.offset(), m.value()))

    def count(self) -> int:
        with self._lock:
            return len(self.seen)

    def stop(self):
        if self._stop.is_set():
            return
        self._stop.set()
        self._t.join(10)
        self._c.close()


def seed_input(bootstrap: str, topic: str, partitions: int, n: int) -> dict:
    """n unique sequential payloads ``in-<seq>`` to partition seq % partitions
    by an idempotent acks=all producer; partition -> [payload] in offset order."""
    from confluent_kafka import Producer

    prod = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                     "linger.ms": 5, "message.timeout.ms": 60000})
    acked, failed = [], []

    def cb(err, msg):
        (failed if err else acked).append((err, msg.partition(), msg.offset(), msg.value()))

    for seq in range(n):
        while True:
            try:
                prod.produce(topic, value=f"in-{seq:07d}".encode(), partition=seq % partitions,
                             on_delivery=cb)
                break
            except BufferError:
                prod.poll(0.05)
        prod.poll(0)
    left = prod.flush(60)
    assert left == 0 and not failed and len(acked) == n, \
        f"seeding {topic}: {len(acked)} acked, {len(failed)} failed (e.g. {failed[:2]}), {left} left"
    out = {p: [] for p in range(partitions)}
    for _, p, off, v in sorted(acked, key=lambda a: (a[1], a[2])):
        out[p].append(v)
    return out


def end_offsets(bootstrap: str, topic: str, partitions: int, isolation: str) -> dict:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ends-{uuid.uuid4().hex[:8]}",
                  "isolation.level": isolation, "enable.auto.commit": False})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}
    finally:
        c.close()


def read_all(bootstrap: str, topic: str, partitions: int, isolation: str,
             timeout: float = 60.0) -> dict:
    """partition -> [(offset, value)] from the beginning to the end offset of
    this isolation level (high watermark, or last stable offset) as of now."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    ends = end_offsets(bootstrap, topic, partitions, isolation)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex[:8]}",
                  "isolation.level": isolation, "enable.auto.commit": False,
                  "enable.partition.eof": True, "auto.offset.reset": "error",
                  "fetch.wait.max.ms": 100})
    out = {p: [] for p in range(partitions)}
    done = {p for p, e in ends.items() if e == 0}
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while len(done) < partitions:
            assert time.monotonic() < deadline, \
                (f"{topic} ({isolation}): not at the end offsets {ends} after {timeout:.0f}s; "
                 f"read {({p: len(r) for p, r in out.items()})}, ended {sorted(done)}")
            for m in c.consume(num_messages=1000, timeout=0.3):
                e = m.error()
                if e is not None:
                    if e.code() == KafkaError._PARTITION_EOF:
                        if m.offset() >= ends[m.partition()]:
                            done.add(m.partition())
                        continue
                    raise AssertionError(f"{topic} ({isolation}) consumer error: {e}")
                if m.offset() < ends[m.partition()]:
                    out[m.partition()].append((m.offset(), m.value()))
    finally:
        c.close()
    return out


def wait_no_open_transactions(bootstrap: str, topic: str, partitions: int,
                              timeout: float = 60.0) -> dict:
    """Until every partition's last stable offset equals its high watermark
    (all markers written); returns the end offsets."""
    def cond():
        hw = end_offsets(bootstrap, topic, partitions, "read_uncommitted")
        lso = end_offsets(bootstrap, topic, partitions, "read_committed")
        if hw != lso:
            raise AssertionError(f"high watermarks {hw}, last stable offsets {lso}")
        return hw
    return poll(cond, timeout, f"no open transaction on {topic}", interval=0.3)


def _first_difference(a: list, b: list) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def verify(inputs: dict, committed: dict, uncommitted: dict, watcher: Watcher) -> dict:
    """The checks of the module docstring, each with what it found."""
    problems = []
    n = sum(len(v) for v in inputs.values())
    for p, want in inputs.items():
        got = [v for _, v in committed[p]]
        if got != want:
            i = _first_difference(got, want)
            dups = len(got) - len(set(got))
            problems.append(
                f"output-{p}: {len(got)} committed records for {len(want)} input records, "
                f"{dups} duplicated, {len(set(want) - set(got))} missing, "
                f"{len(set(got) - set(want))} never in input-{p}; first difference at index {i}: "
                f"output {got[i:i + 3]} vs input {want[i:i + 3]}")
    committed_at = {(p, o): v for p, recs in committed.items() for o, v in recs}
    aborted = {(p, o): v for p, recs in uncommitted.items() for o, v in recs
               if (p, o) not in committed_at}
    in_log = {(p, o): v for p, recs in uncommitted.items() for o, v in recs}
    for p, recs in committed.items():
        lost = [(o, v) for o, v in recs if in_log.get((p, o)) != v]
        if lost:
            problems.append(f"output-{p}: read_committed served records that read_uncommitted "
                            f"did not serve at those offsets: {lost[:3]}")
    strays = [(p, o, v) for (p, o), v in aborted.items() if v not in set(inputs[p])]
    if strays:
        problems.append(f"aborted records in the output log that are no copy of input: {strays[:3]}")
    seen = watcher.seen
    where: dict = {}
    last: dict = {}
    for p, o, v in seen:
        if o <= last.get(p, -1):
            problems.append(f"the read_committed consumer was served output-{p}@{o} after "
                            f"output-{p}@{last[p]} (out of order)")
        last[p] = o
        if (p, o) in aborted:
            problems.append(f"the read_committed consumer was served an ABORTED record "
                            f"output-{p}@{o} {v!r}")
        elif committed_at.get((p, o)) != v:
            problems.append(f"the read_committed consumer was served output-{p}@{o} {v!r}, "
                            f"the final log has {committed_at.get((p, o))!r} there")
        if v in where:
            problems.append(f"the read_committed consumer was served {v!r} twice: "
                            f"output-{where[v][0]}@{where[v][1]} and output-{p}@{o}")
        where[v] = (p, o)
    if len(where) != n:
        problems.append(f"the read_committed consumer saw {len(where)} distinct records of {n}")
    assert not problems, (f"{len(problems)} problems ({n} input records, "
                          f"{len(committed_at)} committed in the output, {len(aborted)} aborted in "
                          f"its log, {len(seen)} served to the read_committed consumer, its "
                          f"errors {_error_counts(watcher.errors)}):\n  " + "\n  ".join(problems[:25]))
    return {"input": n, "aborted_in_log": len(aborted), "watcher_served": len(seen),
            "watcher_errors": _error_counts(watcher.errors)}


def _error_counts(errors) -> dict:
    out: dict = {}
    for name, _ in errors:
        out[name] = out.get(name, 0) + 1
    return out


@dataclass
class Scenario:
    partitions: int
    per_partition: int
    txn_size: int
    rate: float          # records per second per copier, at most
    abort_every: int     # each copier aborts every n-th transaction on purpose
    deadline_s: float    # each copier's own hard limit


class TxnRun:
    """Topics, seeded input, copiers and the watcher of one scenario."""

    def __init__(self, c, workdir: Path, sc: Scenario):
        self.c, self.sc = c, sc
        tag = uuid.uuid4().hex[:8]
        self.input = c.create_topic(f"txn-in-{tag}", partitions=sc.partitions, rf=3,
                                    config=TOPIC_CONFIG)
        self.output = c.create_topic(f"txn-out-{tag}", partitions=sc.partitions, rf=3,
                                     config=TOPIC_CONFIG)
        self.inputs = seed_input(c.bootstrap, self.input, sc.partitions,
                                 sc.partitions * sc.per_partition)
        self.tids = [f"copier-{tag}-{p}" for p in range(sc.partitions)]
        self.watcher = Watcher(c.bootstrap, self.output, sc.partitions)
        self.copiers = [Copier.start(workdir, {
            "tid": self.tids[p], "bootstrap": c.bootstrap, "input": self.input,
            "output": self.output, "partition": p, "end": len(self.inputs[p]),
            "group": f"copiers-{tag}", "txn_size": sc.txn_size, "rate": sc.rate,
            "txn_timeout_ms": TXN_TIMEOUT_MS, "deadline_s": sc.deadline_s,
            "abort_every": sc.abort_every,
            # e.g. ODRADEK_TXN_COPIER_DEBUG=eos,cgrp,protocol: librdkafka's debug log
            # in each copier's stderr file (kept with --basetemp)
            "debug": os.environ.get("ODRADEK_TXN_COPIER_DEBUG", ""),
        }) for p in range(sc.partitions)]

    def _until(self, cond, timeout: float, what: str):
        """Until cond() holds; a copier that exited without finishing fails
        the test at once (not at the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            for cp in self.copiers:
                cp.check_alive()
            if cond():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} "
                                     f"({self.status()})")
            time.sleep(0.1)

    def progress(self) -> float:
        """The least fraction of its partition any copier has committed."""
        return min(cp.committed() / cp.end for cp in self.copiers)

    def wait_progress(self, fraction: float, timeout: float = 90.0):
        self._until(lambda: self.progress() >= fraction, timeout,
                    f"every copier past {fraction:.0%}")

    def wait_each_commits_again(self, timeout: float = 60.0, what: str = ""):
        """Until every copier has committed another transaction (or finished):
        the copiers work without the broker just taken down."""
        marks = {cp.tid: cp.txns() for cp in self.copiers}
        self._until(lambda: all(cp.done() or cp.txns() > marks[cp.tid] for cp in self.copiers),
                    timeout, f"a new commit by every copier {what}")

    def wait_done(self, timeout: float):
        self._until(lambda: all(cp.done() and cp.proc.poll() == 0 for cp in self.copiers),
                    timeout, "every copier done")

    def status(self) -> str:
        return "; ".join(f"{cp.tid}: {cp.describe()}" for cp in self.copiers)

    def finish_and_verify(self) -> dict:
        """After the copiers finished: the final output read both ways, the
        watcher drained, the checks.  Returns stats for the log."""
        c, parts = self.c, self.sc.partitions
        c.wait_isr_full(self.output, timeout=60)
        wait_no_open_transactions(c.bootstrap, self.output, parts)
        committed = read_all(c.bootstrap, self.output, parts, "read_committed")
        uncommitted = read_all(c.bootstrap, self.output, parts, "read_uncommitted")
        inputs_log = read_all(c.bootstrap, self.input, parts, "read_uncommitted")
        assert {p: [v for _, v in r] for p, r in inputs_log.items()} == self.inputs, \
            "the input topic does not hold what was seeded"
        n = sum(len(v) for v in self.inputs.values())
        try:
            poll(lambda: self.watcher.count() >= n, 60,
                 f"the read_committed consumer to be served {n} records", interval=0.2)
        except AssertionError:
            pass  # verify() says what it saw and what not
        self.watcher.stop()
        for cp in self.copiers:
            bad = [e for e in cp.snapshot() if e["event"] == "abort"
                   and max(e["broker_committed"], 0) != e["committed"]]
            assert not bad, (f"copier {cp.tid}: after an abort the broker's committed offset "
                             f"differs from the position of its last committed transaction: {bad[:3]}")
        stats = verify(self.inputs, committed, uncommitted, self.watcher)
        # the deliberately aborted transactions' records were delivered before
        # the abort: the log holds at least those, hidden from read_committed
        aborts = [e for cp in self.copiers for e in cp.snapshot() if e["event"] == "abort"]
        delivered = sum(e["n"] for e in aborts if e["deliberate"] and e["undelivered"] == 0)
        assert any(e["deliberate"] for e in aborts), "no copier aborted a transaction on purpose"
        assert stats["aborted_in_log"] >= delivered, \
            (f"the copiers aborted transactions holding {delivered} delivered records, but the "
             f"output log holds only {stats['aborted_in_log']} records outside committed ones")
        stats["txns"] = {cp.tid[-1]: cp.txns() for cp in self.copiers}
        stats["restarts_after_librdkafka_hang"] = {
            cp.tid[-1]: [e["where"] for e in cp.snapshot() if e["event"] == "client_hang"]
            for cp in self.copiers if cp.restarts}
        stats["aborts"] = {cp.tid[-1]: sum(e["event"] == "abort" for e in cp.snapshot())
                           for cp in self.copiers}
        last = {cp.tid[-1]: next((e for e in reversed(cp.snapshot()) if "errors" in e), {})
                .get("errors", {}) for cp in self.copiers}
        stats["copier_errors"] = last
        # the longest wait between two of a copier's transactions: how long
        # the faults held each copier up (for the log; nothing asserts on it)
        stats["longest_stall_s"] = {
            cp.tid[-1]: round(max((b["t"] - a["t"] for a, b in zip(ev, ev[1:])), default=0), 1)
            for cp in self.copiers
            for ev in [[e for e in cp.snapshot() if e["event"] in ("commit", "abort")]]}
        return stats


@pytest.fixture
def txn_cluster(cluster_factory, tmp_path):
    c = cluster_factory(3, overrides=TXN_OVERRIDES)
    yield c
    kill_copiers()


def _bounce(c, run: TxnRun, victim: int, clean: bool, why: str, log: list):
    """Take broker ``victim`` down (SIGTERM or SIGKILL), see every copier
    commit without it, bring it back, wait for full ISRs."""
    b = c.broker(victim)
    at = {cp.tid[-1]: cp.committed() for cp in run.copiers}
    led = {t: sorted(p for p, lead in c.leaders(t).items() if lead == victim)
           for t in (run.input, run.output)}
    t_down = time.monotonic()
    if clean:
        b.stop()
    else:
        b.kill9()
    print(f"[t={t_down:.1f}] {'stopped' if clean else 'killed'} broker {victim} ({why})", flush=True)
    others = [i for i in (1, 2, 3) if i != victim]
    c.wait_registered(others, timeout=SESSION_S + 30)
    run.wait_each_commits_again(timeout=90, what=f"with broker {victim} ({why}) down ")
    b.start()
    c.wait_registered([1, 2, 3], timeout=40)
    # every partition fully replicated before the next fault (Kafka's test
    # awaits no under-replicated partitions), the internal topics too
    for t in (run.input, run.output, TXN_STATE, "__consumer_offsets"):
        c.wait_isr_full(t, timeout=90)
    log.append(f"[t={t_down:.1f}] {'stopped' if clean else 'killed'} broker {victim} ({why}; "
               f"it led input {led[run.input]}, output {led[run.output]}) with copiers at {at}; "
               f"back at t={time.monotonic():.1f}")


@pytest.mark.timeout(240)
def test_copiers_survive_a_killed_coordinator(txn_cluster, tmp_path):
    """The default run's scenario: 4 copiers of 1,000 records each; at 20 %
    the broker coordinating the first copier's transactional id is SIGKILLed;
    every copier commits again without it (its transactions moved to a new
    coordinator, which completed what the dead one left); it is restarted;
    the copy finishes; output == input, nothing aborted was ever served."""
    c = txn_cluster
    run = TxnRun(c, tmp_path, Scenario(partitions=4, per_partition=1000, txn_size=50,
                                       rate=200, abort_every=5, deadline_s=170))
    run.wait_progress(0.2, timeout=90)
    victim = coordinator_of(c, run.tids[0])
    log: list = []
    _bounce(c, run, victim, clean=False, why=f"coordinator of {run.tids[0]}", log=log)
    run.wait_done(timeout=120)
    stats = run.finish_and_verify()
    print("; ".join(log), stats)


@pytest.mark.faults
@pytest.mark.skipif(not FAULTS, reason="cluster fault injection is slow: set ODRADEK_FAULT_TESTS=1")
@pytest.mark.timeout(600)
def test_copiers_survive_repeated_coordinator_and_leader_faults(txn_cluster, tmp_path):
    """The long version: 4 copiers of 6,000 records; at fixed points of their
    progress, in turn: SIGKILL of the coordinator, of the leader of an input
    partition, a clean stop of the coordinator, SIGKILL of the leader of an
    output partition, SIGKILL of the coordinator, a clean stop of an output
    leader; each time every copier must commit without that broker, then it
    comes back.  Same checks at the end."""
    c = txn_cluster
    run = TxnRun(c, tmp_path, Scenario(partitions=4, per_partition=6000, txn_size=100,
                                       rate=40, abort_every=5, deadline_s=540))
    rounds = [("coordinator", False), ("input leader", False), ("coordinator", True),
              ("output leader", False), ("coordinator", False), ("output leader", True)]
    log: list = []
    for i, (what, clean) in enumerate(rounds):
        run.wait_progress(0.1 + 0.13 * i, timeout=240)
        k = i % len(run.copiers)
        coord = coordinator_of(c, run.tids[k])
        if what == "coordinator":
            victim = coord
        else:
            topic = run.input if what == "input leader" else run.output
            leaders = c.leaders(topic)
            # prefer a leader that is not also the coordinator: another fault
            others = [leaders[p] for p in sorted(leaders) if leaders[p] != coord]
            victim = leaders[k] if leaders[k] != coord or not others else others[0]
        _bounce(c, run, victim, clean, f"{what} for {run.tids[k]}", log)
    run.wait_done(timeout=400)
    stats = run.finish_and_verify()
    print("\n".join(log), stats)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "copy":
    sys.exit(copier_main(json.loads(sys.argv[2])))
