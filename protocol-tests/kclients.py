"""Thin, uniform wrappers around the real Kafka clients used by the tests.

Every wrapper produces or consumes a list of records represented as ``Rec``
and bounds every wait, so that a broken broker makes a test fail quickly
instead of hanging.  Consumers never join a consumer group: partitions are
assigned by hand and offsets are never committed.

Clients: ``confluent`` (confluent-kafka / librdkafka), ``kafka-python``,
``aiokafka`` and ``kcat`` (Debian's kcat binary, old librdkafka).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterable, Optional

# Upper bound for any single client operation (seconds).
TIMEOUT = 20.0

WRITERS = ("confluent", "kafka-python", "aiokafka", "kcat")
READERS = ("confluent", "kafka-python", "aiokafka", "kcat")
CODECS = ("gzip", "snappy", "lz4", "zstd")

CREATE_TIME = "create"
LOG_APPEND_TIME = "log_append"


@dataclass
class Rec:
    value: Optional[bytes]
    key: Optional[bytes] = None
    headers: list = field(default_factory=list)  # [(str, bytes)]
    timestamp: Optional[int] = None  # ms
    partition: Optional[int] = None
    offset: Optional[int] = None
    ts_type: Optional[str] = None  # CREATE_TIME / LOG_APPEND_TIME


class ProduceFailed(Exception):
    """A produce call failed; ``.errors`` holds the per-record errors."""

    def __init__(self, msg, errors=None):
        super().__init__(msg)
        self.errors = errors or []


def unique_topic(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def now_ms() -> int:
    return int(time.time() * 1000)


def text_records(n: int, prefix: str = "v", keyed: bool = True, big_every: int = 0) -> list:
    """Compressible ASCII records (safe for kcat's line-based input)."""
    out = []
    for i in range(n):
        body = f"{prefix}-{i:05d}-" + ("lorem ipsum dolor sit amet " * (1 + i % 7))
        if big_every and i % big_every == big_every - 1:
            body += "abcdefghij" * 6500  # ~64 KiB: several snappy/lz4 blocks
        out.append(Rec(value=body.encode(), key=(f"k-{i:05d}".encode() if keyed else None)))
    return out


# --------------------------------------------------------------- admin ----

def admin_client(bootstrap: str):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def create_topic(bootstrap: str, name: Optional[str] = None, partitions: int = 1,
                 config: Optional[dict] = None, wait: bool = True) -> str:
    """Create a topic through CreateTopics (confluent AdminClient) and wait
    until the metadata shows a leader for every partition."""
    from confluent_kafka.admin import NewTopic

    name = name or unique_topic()
    admin = admin_client(bootstrap)
    futs = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=10, request_timeout=15)
    futs[name].result(timeout=TIMEOUT)
    if wait:
        wait_for_topic(bootstrap, name, partitions)
    return name


def wait_for_topic(bootstrap: str, name: str, partitions: int, timeout: float = TIMEOUT):
    admin = admin_client(bootstrap)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            md = admin.list_topics(topic=name, timeout=5)
            t = md.topics.get(name)
            if t is not None and t.error is None and len(t.partitions) == partitions and \
                    all(p.leader >= 0 for p in t.partitions.values()):
                return md
            last = t.error if t is not None else "absent"
        except Exception as e:  # noqa: BLE001
            last = e
        time.sleep(0.1)
    raise AssertionError(f"topic {name} not ready with {partitions} partitions: {last}")


def topic_partitions(bootstrap: str, name: str) -> dict:
    md = admin_client(bootstrap).list_topics(topic=name, timeout=10)
    t = md.topics[name]
    return t


# ------------------------------------------------------------- produce ----

def produce(client: str, bootstrap: str, topic: str, recs: list, compression: Optional[str] = None,
            **kw) -> list:
    """Produce ``recs`` in order; return a list of (partition, offset) per record."""
    fn = {
        "confluent": produce_confluent,
        "kafka-python": produce_kafka_python,
        "aiokafka": produce_aiokafka,
        "kcat": produce_kcat,
    }[client]
    return fn(bootstrap, topic, recs, compression=compression, **kw)


def produce_confluent(bootstrap, topic, recs, compression=None, acks="all", conf=None,
                      timeout=TIMEOUT, raise_errors=True):
    from confluent_kafka import Producer

    c = {
        "bootstrap.servers": bootstrap,
        "acks": acks,
        "linger.ms": 5,
        "compression.type": compression or "none",
        "message.timeout.ms": int(timeout * 1000),
        "enable.idempotence": False,
    }
    c.update(conf or {})
    p = Producer(c)
    results: list = [None] * len(recs)

    def make_cb(i):
        def cb(err, msg):
            results[i] = err if err is not None else (msg.partition(), msg.offset(), msg.timestamp())
        return cb

    for i, r in enumerate(recs):
        kwargs = {"value": r.value, "key": r.key, "on_delivery": make_cb(i)}
        if r.headers:
            kwargs["headers"] = list(r.headers)
        if r.timestamp is not None:
            kwargs["timestamp"] = r.timestamp
        if r.partition is not None:
            kwargs["partition"] = r.partition
        while True:
            try:
                p.produce(topic, **kwargs)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(timeout + 5)
    if left:
        raise ProduceFailed(f"confluent: {left} messages still undelivered after flush")
    errors = [r for r in results if not isinstance(r, tuple)]
    if errors and raise_errors:
        raise ProduceFailed(f"confluent: {len(errors)} delivery errors, first: {errors[0]}", errors)
    produce_confluent.last_results = results
    return [(r[0], r[1]) if isinstance(r, tuple) else r for r in results]


def produce_kafka_python(bootstrap, topic, recs, compression=None, acks="all", conf=None,
                         timeout=TIMEOUT, raise_errors=True):
    from kafka import KafkaProducer

    c = dict(
        bootstrap_servers=bootstrap,
        acks=acks if acks == "all" else int(acks),
        linger_ms=5,
        compression_type=compression,
        request_timeout_ms=int(timeout * 1000),
        delivery_timeout_ms=int(timeout * 1000) + 1000,
        max_block_ms=int(timeout * 1000),
        enable_idempotence=False,
    )
    c.update(conf or {})
    p = KafkaProducer(**c)
    try:
        futs = []
        for r in recs:
            futs.append(p.send(topic, value=r.value, key=r.key, headers=list(r.headers) or None,
                               partition=r.partition, timestamp_ms=r.timestamp))
        p.flush(timeout=timeout + 5)
        out, errors = [], []
        for f in futs:
            try:
                md = f.get(timeout=timeout)
                out.append((md.partition, md.offset))
            except Exception as e:  # noqa: BLE001
                errors.append(e)
                out.append(e)
        if errors and raise_errors:
            raise ProduceFailed(f"kafka-python: {len(errors)} errors, first: {errors[0]!r}", errors)
        return out
    finally:
        p.close(timeout=5)


def _run_async(coro, timeout):
    async def runner():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(runner())


def produce_aiokafka(bootstrap, topic, recs, compression=None, acks="all", conf=None,
                     timeout=TIMEOUT, raise_errors=True):
    from aiokafka import AIOKafkaProducer

    async def run():
        c = dict(bootstrap_servers=bootstrap, acks=(-1 if acks == "all" else int(acks)),
                 linger_ms=5, compression_type=compression,
                 request_timeout_ms=int(timeout * 1000), enable_idempotence=False)
        c.update(conf or {})
        p = AIOKafkaProducer(**c)
        await p.start()
        try:
            futs = []
            for r in recs:
                futs.append(await p.send(topic, value=r.value, key=r.key, partition=r.partition,
                                         timestamp_ms=r.timestamp,
                                         headers=list(r.headers) or None))
            await p.flush()
            out, errors = [], []
            for f in futs:
                try:
                    md = await f
                    # acks=0: aiokafka resolves the future with None
                    out.append((md.partition, md.offset) if md is not None else (None, None))
                except Exception as e:  # noqa: BLE001
                    errors.append(e)
                    out.append(e)
            if errors and raise_errors:
                raise ProduceFailed(f"aiokafka: {len(errors)} errors, first: {errors[0]!r}", errors)
            return out
        finally:
            await p.stop()

    return _run_async(run(), timeout + 10)


def kcat_bin() -> str:
    path = shutil.which("kcat") or shutil.which("kafkacat")
    assert path, "kcat is not installed (scripts/install-deps.sh installs it)"
    return path


def produce_kcat(bootstrap, topic, recs, compression=None, acks="all", conf=None,
                 timeout=TIMEOUT, raise_errors=True):
    """kcat -P: one record per line, key before a TAB.  All records must share
    the same headers (kcat's -H applies to every message) and have text
    values without newlines/tabs.  Offsets are not reported by kcat: they are
    returned as None."""
    partitions = {r.partition for r in recs}
    assert len(partitions) == 1, "kcat writes one partition per call"
    (partition,) = partitions
    headers = {tuple(r.headers) for r in recs}
    assert len(headers) == 1, "kcat applies the same headers to every message"
    keyed = recs[0].key is not None
    lines = []
    for r in recs:
        assert r.timestamp is None, "kcat cannot set timestamps"
        v = r.value.decode()
        assert "\n" not in v and "\t" not in v
        if keyed:
            lines.append(r.key.decode() + "\t" + v)
        else:
            lines.append(v)
    cmd = [kcat_bin(), "-b", bootstrap, "-P", "-t", topic, "-q",
           "-X", f"message.timeout.ms={int(timeout * 1000)}",
           "-X", f"request.required.acks={-1 if acks == 'all' else acks}"]
    if partition is not None:
        cmd += ["-p", str(partition)]
    if compression:
        cmd += ["-z", compression]
    if keyed:
        cmd += ["-K", "\t"]
    for k, v in recs[0].headers:
        cmd += ["-H", f"{k}={v.decode()}"]
    for k, v in (conf or {}).items():
        cmd += ["-X", f"{k}={v}"]
    proc = subprocess.run(cmd, input="\n".join(lines) + "\n", text=True, capture_output=True,
                          timeout=timeout + 15)
    if proc.returncode != 0 or "delivery failed" in proc.stderr.lower():
        raise ProduceFailed(f"kcat -P failed rc={proc.returncode}: {proc.stderr[-2000:]}")
    return [(partition, None) for _ in recs]


# ------------------------------------------------------------- consume ----

def consume(client: str, bootstrap: str, topic: str, n: int, partition: int = 0, offset: int = 0,
            **kw) -> list:
    """Read exactly ``n`` records from one partition starting at ``offset``
    (fails if fewer arrive within the timeout)."""
    fn = {
        "confluent": consume_confluent,
        "kafka-python": consume_kafka_python,
        "aiokafka": consume_aiokafka,
        "kcat": consume_kcat,
    }[client]
    return fn(bootstrap, topic, n, partition=partition, offset=offset, **kw)


def _short(recs, n):
    return AssertionError(f"expected {n} records, got {len(recs)}: "
                          f"offsets {[r.offset for r in recs][:20]}...")


def consume_confluent(bootstrap, topic, n, partition=0, offset=0, timeout=TIMEOUT, conf=None,
                      extra_wait=0.0):
    from confluent_kafka import Consumer, TopicPartition, TIMESTAMP_LOG_APPEND_TIME, KafkaError

    c = {
        "bootstrap.servers": bootstrap,
        # librdkafka insists on a group.id, but assign() never joins the group
        # and nothing is ever committed.
        "group.id": "odradek-tests-no-group",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 100,
    }
    c.update(conf or {})
    cons = Consumer(c)
    out = []
    try:
        cons.assign([TopicPartition(topic, partition, offset)])
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            for m in cons.consume(num_messages=max(1, n - len(out)), timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"confluent consumer error: {m.error()}")
                tstype, ts = m.timestamp()
                out.append(Rec(value=m.value(), key=m.key(), headers=list(m.headers() or []),
                               timestamp=ts, partition=m.partition(), offset=m.offset(),
                               ts_type=LOG_APPEND_TIME if tstype == TIMESTAMP_LOG_APPEND_TIME
                               else CREATE_TIME))
        if extra_wait:
            end = time.monotonic() + extra_wait
            while time.monotonic() < end:
                for m in cons.consume(num_messages=100, timeout=0.2):
                    if not m.error():
                        out.append(Rec(value=m.value(), key=m.key(), offset=m.offset(),
                                       partition=m.partition()))
    finally:
        cons.close()
    if len(out) < n:
        raise _short(out, n)
    return out


def consume_kafka_python(bootstrap, topic, n, partition=0, offset=0, timeout=TIMEOUT, conf=None,
                         extra_wait=0.0):
    from kafka import KafkaConsumer, TopicPartition

    c = dict(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
             auto_offset_reset="earliest", fetch_max_wait_ms=100,
             request_timeout_ms=int(timeout * 1000) + 5000)
    c.update(conf or {})
    cons = KafkaConsumer(**c)
    out = []
    try:
        tp = TopicPartition(topic, partition)
        cons.assign([tp])
        cons.seek(tp, offset)
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            batch = cons.poll(timeout_ms=500)
            for msgs in batch.values():
                for m in msgs:
                    out.append(Rec(value=m.value, key=m.key, headers=list(m.headers or []),
                                   timestamp=m.timestamp, partition=m.partition, offset=m.offset,
                                   ts_type=LOG_APPEND_TIME if m.timestamp_type == 1 else CREATE_TIME))
        end = time.monotonic() + extra_wait
        while time.monotonic() < end:
            for msgs in cons.poll(timeout_ms=200).values():
                out.extend(Rec(value=m.value, key=m.key, offset=m.offset, partition=m.partition)
                           for m in msgs)
    finally:
        cons.close()
    if len(out) < n:
        raise _short(out, n)
    return out


def consume_aiokafka(bootstrap, topic, n, partition=0, offset=0, timeout=TIMEOUT, conf=None,
                     extra_wait=0.0):
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run():
        c = dict(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                 auto_offset_reset="earliest", fetch_max_wait_ms=100,
                 request_timeout_ms=int(timeout * 1000) + 5000)
        c.update(conf or {})
        cons = AIOKafkaConsumer(**c)
        await cons.start()
        out = []
        try:
            tp = TopicPartition(topic, partition)
            cons.assign([tp])
            cons.seek(tp, offset)
            deadline = time.monotonic() + timeout
            while len(out) < n and time.monotonic() < deadline:
                batch = await cons.getmany(tp, timeout_ms=500)
                for msgs in batch.values():
                    for m in msgs:
                        out.append(Rec(value=m.value, key=m.key, headers=list(m.headers or []),
                                       timestamp=m.timestamp, partition=m.partition,
                                       offset=m.offset,
                                       ts_type=LOG_APPEND_TIME if m.timestamp_type == 1
                                       else CREATE_TIME))
            end = time.monotonic() + extra_wait
            while time.monotonic() < end:
                for msgs in (await cons.getmany(tp, timeout_ms=200)).values():
                    out.extend(Rec(value=m.value, key=m.key, offset=m.offset,
                                   partition=m.partition) for m in msgs)
        finally:
            await cons.stop()
        return out

    out = _run_async(run(), timeout + extra_wait + 15)
    if len(out) < n:
        raise _short(out, n)
    return out


def consume_kcat(bootstrap, topic, n, partition=0, offset=0, timeout=TIMEOUT, conf=None,
                 extra_wait=0.0):
    """kcat -C -e -J: reads to the end of the partition.  Values are text."""
    cmd = [kcat_bin(), "-b", bootstrap, "-C", "-t", topic, "-p", str(partition),
           "-o", "beginning" if offset == 0 else str(offset), "-e", "-J", "-q"]
    for k, v in (conf or {}).items():
        cmd += ["-X", f"{k}={v}"]
    deadline = time.monotonic() + timeout
    out = []
    while True:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout + 10)
        if proc.returncode != 0:
            raise AssertionError(f"kcat -C failed rc={proc.returncode}: {proc.stderr[-2000:]!r}")
        out = [kcat_json_rec(json.loads(line)) for line in proc.stdout.splitlines() if line.strip()]
        if len(out) >= n or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if len(out) < n:
        raise _short(out, n)
    return out


def kcat_json_rec(j: dict) -> Rec:
    hdrs = j.get("headers") or []
    pairs = [(hdrs[i], hdrs[i + 1].encode() if hdrs[i + 1] is not None else None)
             for i in range(0, len(hdrs), 2)]
    tstype = j.get("tstype")
    return Rec(value=None if j.get("payload") is None else j["payload"].encode(),
               key=None if j.get("key") is None else j["key"].encode(),
               headers=pairs, timestamp=j.get("ts"), partition=j.get("partition"),
               offset=j.get("offset"),
               ts_type=LOG_APPEND_TIME if tstype == "logappend" else CREATE_TIME)


# ------------------------------------------------------------- asserts ----

def assert_same_records(got: Iterable[Rec], want: Iterable[Rec], first_offset: int = 0,
                        check_keys: bool = True, check_headers: bool = False):
    got, want = list(got), list(want)
    assert len(got) == len(want), f"got {len(got)} records, want {len(want)}"
    offsets = [r.offset for r in got]
    assert offsets == list(range(first_offset, first_offset + len(want))), \
        f"offsets not contiguous from {first_offset}: {offsets[:50]}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.value == w.value, f"record {i}: value mismatch ({(g.value or b'')[:60]!r} != " \
                                   f"{(w.value or b'')[:60]!r})"
        if check_keys:
            assert g.key == w.key, f"record {i}: key {g.key!r} != {w.key!r}"
        if check_headers:
            assert list(g.headers) == list(w.headers), f"record {i}: headers {g.headers} != {w.headers}"
