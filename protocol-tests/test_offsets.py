"""ListOffsets: beginning/end offsets, offsets_for_times; consuming one
partition of a multi-partition topic from a given offset."""

import asyncio
import subprocess

import pytest

import kclients
from kclients import (READERS, Rec, assert_same_records, consume, create_topic, now_ms, produce)

N = 10


@pytest.fixture
def timed_topic(shared_broker):
    """A topic with N records at CreateTime base + i*1000 ms (i = offset)."""
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    base = now_ms() - 3600_000
    recs = [Rec(value=f"t{i}".encode(), key=b"k", timestamp=base + i * 1000) for i in range(N)]
    produce("confluent", bs, topic, recs, conf={"linger.ms": 0})
    return bs, topic, base


def test_watermarks_empty_topic(shared_broker):
    from confluent_kafka import Consumer, TopicPartition

    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    c = Consumer({"bootstrap.servers": bs, "group.id": "odradek-tests-no-group",
                  "enable.auto.commit": False})
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 0)
    finally:
        c.close()


def test_confluent_watermarks_and_offsets_for_times(timed_topic):
    from confluent_kafka import Consumer, TopicPartition

    bs, topic, base = timed_topic
    c = Consumer({"bootstrap.servers": bs, "group.id": "odradek-tests-no-group",
                  "enable.auto.commit": False})
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, N)

        def lookup(ts):
            (r,) = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert r.error is None, r.error
            return r.offset

        assert lookup(base) == 0
        assert lookup(base - 10_000) == 0
        assert lookup(base + 3500) == 4     # first record with ts >= target
        assert lookup(base + 4000) == 4     # exact match
        assert lookup(base + (N - 1) * 1000) == N - 1
        assert lookup(base + N * 1000) == -1  # nothing that late
        assert lookup(-2) == 0   # OFFSET_BEGINNING
        assert lookup(-1) == N   # OFFSET_END
    finally:
        c.close()


def test_kafka_python_offsets(timed_topic):
    from kafka import KafkaConsumer, TopicPartition

    bs, topic, base = timed_topic
    tp = TopicPartition(topic, 0)
    c = KafkaConsumer(bootstrap_servers=bs, group_id=None, enable_auto_commit=False,
                      request_timeout_ms=15000)
    try:
        assert c.beginning_offsets([tp], timeout_ms=10000) == {tp: 0}
        assert c.end_offsets([tp], timeout_ms=10000) == {tp: N}
        res = c.offsets_for_times({tp: base + 3500}, timeout_ms=10000)
        assert res[tp] is not None
        assert res[tp].offset == 4
        assert res[tp].timestamp == base + 4000
        assert c.offsets_for_times({tp: base - 1}, timeout_ms=10000)[tp].offset == 0
        assert c.offsets_for_times({tp: base + N * 1000}, timeout_ms=10000)[tp] is None
    finally:
        c.close()


def test_aiokafka_offsets(timed_topic):
    from aiokafka import AIOKafkaConsumer, TopicPartition

    bs, topic, base = timed_topic
    tp = TopicPartition(topic, 0)

    async def run():
        c = AIOKafkaConsumer(bootstrap_servers=bs, group_id=None, enable_auto_commit=False)
        await c.start()
        try:
            assert await c.beginning_offsets([tp]) == {tp: 0}
            assert await c.end_offsets([tp]) == {tp: N}
            res = await c.offsets_for_times({tp: base + 7200})
            assert res[tp].offset == 8 and res[tp].timestamp == base + 8000
        finally:
            await c.stop()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_kcat_query_offset_by_time(timed_topic):
    bs, topic, base = timed_topic
    out = subprocess.run([kclients.kcat_bin(), "-b", bs, "-Q", "-t", f"{topic}:0:{base + 5500}"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "offset 6" in out.stdout, out.stdout


def test_offsets_after_more_produce(timed_topic):
    """End offset follows new writes; offsets_for_times finds new records."""
    from kafka import KafkaConsumer, TopicPartition

    bs, topic, base = timed_topic
    late = now_ms() + 60_000
    produce("aiokafka", bs, topic, [Rec(value=b"late", key=b"k", timestamp=late)])
    tp = TopicPartition(topic, 0)
    c = KafkaConsumer(bootstrap_servers=bs, group_id=None, enable_auto_commit=False)
    try:
        assert c.end_offsets([tp], timeout_ms=10000) == {tp: N + 1}
        assert c.offsets_for_times({tp: late - 1}, timeout_ms=10000)[tp].offset == N
    finally:
        c.close()


@pytest.fixture
def multi_partition_topic(shared_broker):
    """4 partitions; partition p holds 6 + p records "p{p}-{i}"."""
    bs = shared_broker.bootstrap
    topic = create_topic(bs, partitions=4)
    content = {}
    for p in range(4):
        content[p] = [Rec(value=f"p{p}-{i}".encode(), key=f"k{p}-{i}".encode(), partition=p)
                      for i in range(6 + p)]
    # each partition written by a different client
    for p, writer in zip(range(4), ("confluent", "kafka-python", "aiokafka", "kcat")):
        produce(writer, bs, topic, content[p])
    return bs, topic, content


@pytest.mark.parametrize("reader", READERS)
def test_consume_one_partition_from_offset(multi_partition_topic, reader):
    bs, topic, content = multi_partition_topic
    want = content[2][3:]
    got = consume(reader, bs, topic, len(want), partition=2, offset=3, extra_wait=0.5)
    assert all(g.partition == 2 for g in got)
    assert_same_records(got, want, first_offset=3)


def test_multi_partition_watermarks(multi_partition_topic):
    from confluent_kafka import Consumer, TopicPartition

    bs, topic, content = multi_partition_topic
    c = Consumer({"bootstrap.servers": bs, "group.id": "odradek-tests-no-group",
                  "enable.auto.commit": False})
    try:
        for p in range(4):
            assert c.get_watermark_offsets(TopicPartition(topic, p), timeout=10) == (0, 6 + p)
    finally:
        c.close()
    md = kclients.topic_partitions(bs, topic)
    assert sorted(md.partitions) == [0, 1, 2, 3]


def test_produce_to_nonexistent_partition_fails(shared_broker):
    bs = shared_broker.bootstrap
    topic = create_topic(bs, partitions=2)
    with pytest.raises(Exception):
        kclients.produce_kafka_python(bs, topic, [Rec(value=b"x", partition=5)], timeout=5)
    # the topic is still usable
    assert kclients.produce_kafka_python(bs, topic, [Rec(value=b"x", partition=1)]) == [(1, 0)]
