"""Produce/consume round trips between every pair of real clients, keys,
headers, null keys/values, timestamps (CreateTime and LogAppendTime) and
topic auto-creation."""

import time

import pytest

from kclients import (CREATE_TIME, LOG_APPEND_TIME, READERS, WRITERS, Rec, assert_same_records,
                      consume, create_topic, now_ms, produce, text_records, topic_partitions,
                      unique_topic, wait_for_topic)


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("writer", WRITERS)
def test_round_trip(shared_broker, writer, reader):
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    recs = text_records(25, prefix=f"{writer}->{reader}")
    acks = produce(writer, bs, topic, recs)
    if writer != "kcat":
        assert [o for _, o in acks] == list(range(25)), f"acked offsets {acks}"
        assert {p for p, _ in acks} == {0}
    got = consume(reader, bs, topic, len(recs))
    assert_same_records(got, recs)
    shared_broker.assert_alive()


@pytest.mark.parametrize("reader", ["confluent", "kafka-python", "aiokafka"])
@pytest.mark.parametrize("writer", ["confluent", "kafka-python", "aiokafka"])
def test_headers_null_keys_and_values(shared_broker, writer, reader):
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    recs = [
        Rec(value=b"with-headers", key=b"k1",
            headers=[("h1", b"v1"), ("h2", b""), ("h1", b"dup-name"), ("bin", bytes(range(256)))]),
        Rec(value=None, key=b"tombstone"),
        Rec(value=b"no-key", key=None),
        Rec(value=bytes(range(256)) * 4, key=bytes(range(255, -1, -1))),
        Rec(value=b"one-header", key=b"k5", headers=[("only", b"x")]),
    ]
    produce(writer, bs, topic, recs)
    got = consume(reader, bs, topic, len(recs))
    assert_same_records(got, recs, check_headers=False)
    for i, (g, w) in enumerate(zip(got, recs)):
        # An empty header list may come back as [] or None.
        assert list(g.headers or []) == list(w.headers), f"record {i}: headers {g.headers}"


def test_kcat_headers(shared_broker):
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    hdrs = [("trace", b"abc123"), ("origin", b"kcat")]
    recs = [Rec(value=f"v{i}".encode(), key=f"k{i}".encode(), headers=hdrs) for i in range(5)]
    produce("kcat", bs, topic, recs)
    for reader in ("kafka-python", "kcat"):
        got = consume(reader, bs, topic, 5)
        assert_same_records(got, recs)
        for g in got:
            assert list(g.headers) == hdrs


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("writer", ["confluent", "kafka-python", "aiokafka"])
def test_create_time_preserved(shared_broker, writer, reader):
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    base = now_ms() - 3 * 24 * 3600 * 1000  # three days ago: clearly not broker time
    recs = [Rec(value=f"ts{i}".encode(), key=b"k", timestamp=base + i * 1000) for i in range(10)]
    produce(writer, bs, topic, recs)
    got = consume(reader, bs, topic, 10)
    assert_same_records(got, recs)
    assert [g.timestamp for g in got] == [r.timestamp for r in recs]
    assert all(g.ts_type == CREATE_TIME for g in got), [g.ts_type for g in got]


@pytest.mark.parametrize("writer", ["confluent", "kafka-python", "aiokafka"])
def test_log_append_time_topic(shared_broker, writer):
    bs = shared_broker.bootstrap
    topic = create_topic(bs, config={"message.timestamp.type": "LogAppendTime"})
    old = 1_000_000_000_000  # 2001: must be replaced by the broker's clock
    recs = [Rec(value=f"lat{i}".encode(), key=b"k", timestamp=old + i) for i in range(5)]
    before = now_ms()
    produce(writer, bs, topic, recs)
    after = now_ms()
    for reader in ("confluent", "kafka-python", "aiokafka", "kcat"):
        got = consume(reader, bs, topic, 5)
        assert_same_records(got, recs)
        for g in got:
            assert g.ts_type == LOG_APPEND_TIME, f"{reader}: timestamp type {g.ts_type}"
            assert before - 2000 <= g.timestamp <= after + 2000, \
                f"{reader}: timestamp {g.timestamp} not broker time in [{before}, {after}]"


def test_log_append_time_in_produce_response(shared_broker):
    """ProduceResponse carries log_append_time_ms; librdkafka reports it."""
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME

    import kclients
    bs = shared_broker.bootstrap
    topic = create_topic(bs, config={"message.timestamp.type": "LogAppendTime"})
    before = now_ms()
    kclients.produce_confluent(bs, topic, [Rec(value=b"x", timestamp=1_000_000_000_000)])
    after = now_ms()
    (_, _, (tstype, ts)), = kclients.produce_confluent.last_results
    assert tstype == TIMESTAMP_LOG_APPEND_TIME
    assert before - 2000 <= ts <= after + 2000


@pytest.mark.parametrize("writer", ["confluent", "kafka-python", "aiokafka", "kcat"])
def test_auto_create_topic_on_produce(shared_broker, writer):
    bs = shared_broker.bootstrap
    topic = unique_topic("auto")
    recs = text_records(3)
    produce(writer, bs, topic, recs)
    t = topic_partitions(bs, topic)
    assert t.error is None
    assert len(t.partitions) == 1  # num.partitions=1 by default
    assert_same_records(consume("kafka-python", bs, topic, 3), recs)


def test_auto_create_uses_num_partitions(broker_factory):
    b = broker_factory({"num.partitions": 3})
    topic = unique_topic("auto3")
    produce("confluent", b.bootstrap, topic, [Rec(value=b"x", key=b"k")])
    wait_for_topic(b.bootstrap, topic, 3)


def test_auto_create_disabled(broker_factory):
    import kclients
    b = broker_factory({"auto.create.topics.enable": "false"})
    topic = unique_topic("noauto")
    with pytest.raises(kclients.ProduceFailed):
        kclients.produce_confluent(b.bootstrap, topic, [Rec(value=b"x")], timeout=5)
    md = kclients.admin_client(b.bootstrap).list_topics(timeout=10)
    assert topic not in md.topics or md.topics[topic].error is not None
    # explicit creation still works
    create_topic(b.bootstrap, topic)
    assert kclients.produce_confluent(b.bootstrap, topic, [Rec(value=b"x")]) == [(0, 0)]


def test_many_records_many_batches(shared_broker):
    """10k records in many batches: offsets dense, order kept, nothing lost."""
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    recs = [Rec(value=f"m{i}".encode(), key=None) for i in range(10_000)]
    acks = produce("confluent", bs, topic, recs, conf={"batch.num.messages": 500})
    assert [o for _, o in acks] == list(range(10_000))
    got = consume("kafka-python", bs, topic, 10_000, timeout=40)
    assert_same_records(got, recs)


def test_consume_from_end_sees_only_new(shared_broker):
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    produce("confluent", bs, topic, text_records(5))
    more = text_records(3, prefix="later")
    produce("kafka-python", bs, topic, more)
    got = consume("aiokafka", bs, topic, 3, offset=5)
    assert_same_records(got, more, first_offset=5)


@pytest.mark.parametrize("writer", ["confluent", "kafka-python", "aiokafka"])
def test_acks_0(shared_broker, writer):
    """acks=0: the broker sends no response (a stray one would desynchronise
    the client's correlation ids), yet the records land."""
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    recs = text_records(30, prefix=f"acks0-{writer}")
    produce(writer, bs, topic, recs, acks="0")
    # the same connection keeps working afterwards
    produce(writer, bs, topic, text_records(2, prefix="after"), acks="all")
    got = consume("kafka-python", bs, topic, 32)
    assert_same_records(got[:30], recs)


@pytest.mark.parametrize("reader", ["confluent", "kafka-python", "aiokafka"])
def test_long_poll_receives_later_records(shared_broker, reader):
    """A consumer waiting at the end of an empty partition receives records
    produced after it started polling."""
    import threading

    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    recs = text_records(3, prefix="late")

    def later():
        time.sleep(1.5)
        produce("confluent", bs, topic, recs)

    th = threading.Thread(target=later)
    th.start()
    try:
        got = consume(reader, bs, topic, 3, timeout=15)
    finally:
        th.join(20)
    assert_same_records(got, recs)
