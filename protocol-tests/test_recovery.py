"""Durability and log recovery: clean restarts (SIGTERM), crashes (SIGKILL)
in the middle of a produce run, and a torn/corrupt tail of the newest
segment."""

import os
import threading
import time
from pathlib import Path

import pytest

import kclients
from kclients import Rec, assert_same_records, consume, create_topic


def _end_offset(bs, topic, partition=0):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bs, "group.id": "odradek-tests-no-group",
                  "enable.auto.commit": False})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        c.close()


def _read_all(bs, topic, partition=0, timeout=40):
    lo, hi = _end_offset(bs, topic, partition)
    assert lo == 0, f"log start offset {lo}"
    got = consume("kafka-python", bs, topic, hi, partition=partition, timeout=timeout,
                  extra_wait=0.3) if hi else []
    assert [g.offset for g in got] == list(range(hi)), "offsets not contiguous"
    return got


def test_clean_restart_keeps_everything(broker):
    bs = broker.bootstrap
    t1 = create_topic(bs)
    t2 = create_topic(bs, partitions=3)
    r1 = [Rec(value=f"one-{i}".encode(), key=b"k") for i in range(500)]
    r2 = [Rec(value=f"two-{i}".encode(), key=b"k", partition=i % 3) for i in range(300)]
    kclients.produce_kafka_python(bs, t1, r1)
    kclients.produce_confluent(bs, t2, r2, compression="lz4")
    rc = broker.stop()
    assert rc == 0, f"clean shutdown should exit 0, got {rc}:\n{broker.log_tail()}"
    broker.start()
    kclients.wait_for_topic(bs, t2, 3)
    assert_same_records(_read_all(bs, t1), r1)
    for p in range(3):
        assert_same_records(_read_all(bs, t2, p), [r for r in r2 if r.partition == p])
    # new writes continue the offsets
    assert kclients.produce_confluent(bs, t1, [Rec(value=b"after")]) == [(0, 500)]


def test_repeated_restarts_continue_offsets(broker):
    bs = broker.bootstrap
    topic = create_topic(bs)
    want = []
    for cycle in range(4):
        recs = [Rec(value=f"c{cycle}-{i}".encode(), key=None) for i in range(25)]
        acks = kclients.produce_confluent(bs, topic, recs)
        assert [o for _, o in acks] == list(range(len(want), len(want) + 25))
        want += recs
        broker.restart(kill=(cycle % 2 == 1))
    assert_same_records(_read_all(bs, topic), want, check_keys=False)


@pytest.mark.timeout(150)
@pytest.mark.parametrize("acks", ["all", "1"])
def test_kill9_mid_produce_keeps_acked_records(broker, acks):
    """A producer runs while the broker is SIGKILLed and restarted: every
    acknowledged record is present, exactly at its acknowledged offset, and
    the log's offsets are contiguous.  (Without idempotence a retried batch
    that was written but not acked may legitimately appear twice.)"""
    from confluent_kafka import Producer

    bs = broker.bootstrap
    topic = create_topic(bs)
    total = 15000
    acked, errors = {}, []
    p = Producer({"bootstrap.servers": bs, "acks": acks, "enable.idempotence": False,
                  "linger.ms": 2, "message.timeout.ms": 60000,
                  "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500,
                  "retry.backoff.ms": 100})

    def cb(err, msg):
        if err is not None:
            errors.append((msg.value(), err))
        else:
            acked.setdefault(msg.offset(), []).append(msg.value())

    def produce_all():
        for i in range(total):
            while True:
                try:
                    p.produce(topic, value=f"r{i:06d}".encode(), on_delivery=cb)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
            if i % 100 == 99:
                time.sleep(0.02)

    th = threading.Thread(target=produce_all)
    th.start()
    deadline = time.monotonic() + 30
    while len(acked) < 2000 and time.monotonic() < deadline:
        time.sleep(0.005)
    before_kill = len(acked)
    assert before_kill >= 2000, f"only {before_kill} acked before the crash"
    assert th.is_alive(), "the producer finished before the crash: not a mid-run kill"
    broker.kill9()
    time.sleep(0.3)
    broker.start()
    th.join(60)
    assert p.flush(70) == 0
    assert not errors, f"{len(errors)} delivery errors, first {errors[:3]}"
    assert len(acked) > before_kill, "nothing acked after the restart"
    dup = {o: v for o, v in acked.items() if len(v) > 1}
    assert not dup, f"offsets acked twice: {list(dup.items())[:5]}"

    got = _read_all(bs, topic)
    by_offset = {g.offset: g.value for g in got}
    missing = [(o, v[0]) for o, v in sorted(acked.items()) if by_offset.get(o) != v[0]]
    assert not missing, f"{len(missing)} acked records lost/changed, first {missing[:5]}"
    # every produced value is in the log (all were acked)
    assert {f"r{i:06d}".encode() for i in range(total)} <= set(by_offset.values())
    # and the log accepts new writes right after the last offset
    hi = len(got)
    assert kclients.produce_confluent(bs, topic, [Rec(value=b"tail")]) == [(0, hi)]


def test_kill9_with_many_segments(broker_factory):
    """Small segments: data spread over many segment files survives a crash;
    fetch from the middle and timestamp lookup still work."""
    b = broker_factory({"log.segment.bytes": "16384"})
    bs = b.bootstrap
    topic = create_topic(bs)
    base = kclients.now_ms() - 1000_000
    recs = [Rec(value=(f"s{i:05d}-" + "y" * 200).encode(), key=b"k", timestamp=base + i)
            for i in range(1200)]
    kclients.produce_confluent(bs, topic, recs, conf={"batch.num.messages": 20})
    segs = sorted(b.partition_dir(topic).glob("*.log"))
    assert len(segs) > 5, f"expected several segments, have {segs}"
    b.kill9()
    b.start()
    assert_same_records(_read_all(bs, topic), recs)
    got = consume("confluent", bs, topic, 10, offset=777)
    assert_same_records(got[:10], recs[777:787], first_offset=777)

    from kafka import KafkaConsumer, TopicPartition
    tp = TopicPartition(topic, 0)
    c = KafkaConsumer(bootstrap_servers=bs, group_id=None, enable_auto_commit=False)
    try:
        assert c.offsets_for_times({tp: base + 555}, timeout_ms=10000)[tp].offset == 555
    finally:
        c.close()
    assert kclients.produce_confluent(bs, topic, [Rec(value=b"next")]) == [(0, 1200)]


def _newest_segment(pdir: Path) -> Path:
    segs = list(pdir.glob("*.log"))
    assert segs, f"no *.log segments in {pdir}"
    return max(segs, key=lambda p: (p.name, p.stat().st_mtime))


@pytest.mark.parametrize("damage", ["truncate-single", "truncate-batch", "corrupt-batch"])
def test_recovery_of_damaged_last_segment(broker, damage):
    """Crash, then damage the tail of the newest segment (a torn write):
    the broker drops only the damaged last batch, serves everything before
    it, and new produce continues at the next offset."""
    bs = broker.bootstrap
    topic = create_topic(bs)
    good = [Rec(value=f"good-{i}-".encode() + os.urandom(50), key=f"k{i}".encode())
            for i in range(60)]
    # several batches of good data
    for i in range(0, 60, 15):
        kclients.produce_confluent(bs, topic, good[i:i + 15])
    if damage == "truncate-single":
        tail = [Rec(value=os.urandom(3000), key=b"tail")]
        kclients.produce_confluent(bs, topic, tail)
    else:
        # one compressed batch of 20 records: compression makes it one unit
        tail = [Rec(value=f"tail-{i}-".encode() * 20, key=b"tail") for i in range(20)]
        kclients.produce_confluent(bs, topic, tail, compression="gzip",
                                   conf={"linger.ms": 200})
    broker.kill9()

    seg = _newest_segment(broker.partition_dir(topic))
    size = seg.stat().st_size
    if damage == "corrupt-batch":
        with open(seg, "r+b") as f:  # flip bytes near the end, length unchanged
            f.seek(size - 40)
            chunk = f.read(8)
            f.seek(size - 40)
            f.write(bytes(b ^ 0xFF for b in chunk))
    else:
        os.truncate(seg, size - 37)
    broker.start()

    lo, hi = _end_offset(bs, topic)
    got = _read_all(bs, topic)
    assert got[:len(good)] and [g.value for g in got[:len(good)]] == [r.value for r in good], \
        "records before the damaged batch must all be readable"
    if damage == "truncate-single":
        assert hi == len(good), f"end offset {hi}, expected {len(good)}"
    else:
        # librdkafka may have split the tail into more than one batch: only the
        # last (damaged) one may go, whatever survives is an intact prefix.
        assert len(good) <= hi < len(good) + len(tail), hi
        assert [g.value for g in got[len(good):]] == [r.value for r in tail[:hi - len(good)]]
    acks = kclients.produce_confluent(bs, topic, [Rec(value=b"after-recovery")])
    assert acks == [(0, hi)]
    got2 = consume("aiokafka", bs, topic, hi + 1, extra_wait=0.3)
    assert [g.offset for g in got2] == list(range(hi + 1))
    assert got2[-1].value == b"after-recovery"


def test_log_directory_that_cannot_be_written_stops_the_broker(broker_factory):
    """A write the log directory refuses (here a file-size limit: EFBIG) fails
    the directory: the write is not acknowledged, the broker says why and exits
    non-zero without a clean shutdown; restarted without the limit it recovers
    every acknowledged record, in order, at its offset."""
    from confluent_kafka import Producer

    from durability import read_back

    limit = 8 << 20
    b = broker_factory({"log.index.size.max.bytes": 1 << 20},
                       prefix=["prlimit", f"--fsize={limit}", "--"])
    topic = create_topic(b.bootstrap, partitions=1)
    acked, failed = [], []

    def report(err, msg):
        (failed if err else acked).append(err or (msg.offset(), msg.value()))

    p = Producer({"bootstrap.servers": b.bootstrap, "acks": 1, "enable.idempotence": False,
                  "linger.ms": 0, "message.timeout.ms": 8000, "retries": 0})
    for i in range(120):  # 100 KiB records: 12 MiB, past the limit
        p.produce(topic, f"{i:05d}".encode() + b"x" * (100 << 10), partition=0, on_delivery=report)
        p.poll(0)
    p.flush(30)
    rc = b.proc.wait(30)
    log = b.log_file.read_text(errors="replace")
    assert rc != 0, "the broker kept running on a failed log directory"
    assert "log directory failed" in log and "panicked" not in log
    assert failed and acked, f"{len(acked)} acknowledged, {len(failed)} failed"
    assert sum(len(v) for _, v in acked) < limit

    b.prefix = []
    b.start()
    got = read_back(b.bootstrap, topic, 1, timeout=30)[0]
    assert [o for o, _ in got] == list(range(len(got))), "offsets not contiguous after recovery"
    have = dict(got)
    lost = [o for o, v in acked if have.get(o) != v]
    assert not lost, f"acknowledged records lost or changed after recovery: offsets {lost[:10]}"
