"""Idempotent producers (InitProducerId + sequence numbers): no duplicates,
contiguous offsets, order kept — also across a broker restart mid-run."""

import threading
import time

import pytest

import kclients
from kclients import Rec, assert_same_records, consume, create_topic


def _values(n, prefix):
    return [Rec(value=f"{prefix}-{i:06d}".encode(), key=f"k{i % 7}".encode()) for i in range(n)]


def test_confluent_idempotent(shared_broker):
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    recs = _values(3000, "cf")
    acks = kclients.produce_confluent(bs, topic, recs, conf={
        "enable.idempotence": True, "linger.ms": 2, "batch.num.messages": 200,
        "max.in.flight.requests.per.connection": 5})
    assert [o for _, o in acks] == list(range(len(recs)))
    got = consume("kafka-python", bs, topic, len(recs), extra_wait=0.5)
    assert_same_records(got, recs)


def test_kafka_python_idempotent(shared_broker):
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    recs = _values(1000, "kp")
    acks = kclients.produce_kafka_python(bs, topic, recs, conf={"enable_idempotence": True,
                                                                 "batch_size": 4096})
    assert [o for _, o in acks] == list(range(len(recs)))
    got = consume("confluent", bs, topic, len(recs), extra_wait=0.5)
    assert_same_records(got, recs)


def test_describe_producers_shows_the_idempotent_producers(shared_broker):
    """DescribeProducers (KIP-664) through kafka-python's admin client: the two
    producers that wrote partition 0, each with its epoch and last sequence;
    none on partition 1; no open transaction."""
    from kafka import KafkaAdminClient, TopicPartition

    bs = shared_broker.bootstrap
    topic = create_topic(bs, partitions=2)
    for n, prefix in ((10, "one"), (25, "two")):
        recs = [Rec(value=f"{prefix}-{i}".encode(), key=None, partition=0) for i in range(n)]
        kclients.produce_confluent(bs, topic, recs, conf={"enable.idempotence": True})
    admin = KafkaAdminClient(bootstrap_servers=bs)
    try:
        got = admin.describe_producers([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    finally:
        admin.close()
    p0 = got[TopicPartition(topic, 0)]
    producers = sorted(p0.active_producers, key=lambda p: p.last_sequence)
    assert [(p.producer_epoch, p.last_sequence) for p in producers] == [(0, 9), (0, 24)], p0
    assert all(p.current_transaction_start_offset == -1 for p in producers)
    assert len({p.producer_id for p in producers}) == 2
    assert not got[TopicPartition(topic, 1)].active_producers


def test_aiokafka_idempotent(shared_broker):
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    recs = _values(1000, "aio")
    acks = kclients.produce_aiokafka(bs, topic, recs, conf={"enable_idempotence": True,
                                                             "max_batch_size": 4096})
    assert [o for _, o in acks] == list(range(len(recs)))
    got = consume("kafka-python", bs, topic, len(recs), extra_wait=0.5)
    assert_same_records(got, recs)


def test_idempotent_compressed_multi_partition(shared_broker):
    bs = shared_broker.bootstrap
    topic = create_topic(bs, partitions=3)
    recs = [Rec(value=f"mp-{i:05d}".encode(), key=None, partition=i % 3) for i in range(1500)]
    acks = kclients.produce_confluent(bs, topic, recs, compression="zstd",
                                      conf={"enable.idempotence": True, "linger.ms": 5})
    for p in range(3):
        mine = [r for r in recs if r.partition == p]
        assert sorted(o for pp, o in acks if pp == p) == list(range(len(mine)))
        got = consume("aiokafka", bs, topic, len(mine), partition=p, extra_wait=0.3)
        assert_same_records(got, mine, check_keys=False)


def test_two_idempotent_producers_interleaved(shared_broker):
    """Two producers (two producer ids) writing the same partition at once."""
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    a, b = _values(800, "A"), _values(800, "B")
    errs = []

    def run(recs):
        try:
            kclients.produce_confluent(bs, topic, recs, conf={"enable.idempotence": True})
        except Exception as e:  # noqa: BLE001
            errs.append(e)

    ts = [threading.Thread(target=run, args=(r,)) for r in (a, b)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(40)
    assert not errs, errs
    got = consume("kafka-python", bs, topic, 1600, extra_wait=0.5)
    assert [g.offset for g in got] == list(range(1600))
    vals = [g.value for g in got]
    assert len(set(vals)) == 1600
    # per-producer order is preserved
    assert [v for v in vals if v.startswith(b"A-")] == [r.value for r in a]
    assert [v for v in vals if v.startswith(b"B-")] == [r.value for r in b]


@pytest.mark.timeout(150)
def test_idempotent_across_clean_restart(broker):
    """An idempotent producer keeps sending while the broker restarts
    (SIGTERM): once everything is acked there are no duplicates or gaps."""
    from confluent_kafka import Producer

    bs = broker.bootstrap
    topic = create_topic(bs)
    total = 6000
    acked, errors = {}, []
    p = Producer({"bootstrap.servers": bs, "enable.idempotence": True, "acks": "all",
                  "linger.ms": 2, "message.timeout.ms": 60000,
                  "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})

    def cb(err, msg):
        if err is not None:
            errors.append(err)
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
                time.sleep(0.02)  # ~5k msgs/s: the run spans the restart

    th = threading.Thread(target=produce_all)
    th.start()
    deadline = time.monotonic() + 30
    while len(acked) < 1000 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(acked) >= 1000, f"only {len(acked)} acked before restart"
    assert th.is_alive(), "the producer finished before the restart"
    broker.restart()
    th.join(60)
    assert p.flush(70) == 0, "messages left undelivered"
    assert not errors, errors[:5]
    assert sorted(acked) == list(range(total)), "acked offsets not exactly 0..total-1"
    assert all(len(v) == 1 for v in acked.values())
    got = consume("kafka-python", bs, topic, total, timeout=40, extra_wait=0.5)
    assert [g.offset for g in got] == list(range(total))
    assert [g.value for g in got] == [f"r{i:06d}".encode() for i in range(total)], \
        "duplicates, gaps or reordering after restart"
