"""message.max.bytes: a 900 KB record passes; a 2 MB record is refused by the
broker itself (clients' own limits are raised so they do not refuse first)."""

import os

import pytest

import kclients
from kclients import Rec, assert_same_records, consume, create_topic

BIG = 900 * 1024
TOO_BIG = 2 * 1024 * 1024


@pytest.mark.parametrize("writer,reader", [("confluent", "kafka-python"),
                                           ("kafka-python", "aiokafka"),
                                           ("aiokafka", "confluent")])
def test_900kb_record_round_trip(shared_broker, writer, reader):
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    recs = [Rec(value=os.urandom(BIG), key=b"big"), Rec(value=b"after", key=b"small")]
    conf = {
        "confluent": {"message.max.bytes": 2_000_000},
        "kafka-python": {"max_request_size": 2_000_000},
        "aiokafka": {"max_request_size": 2_000_000},
    }[writer]
    acks = kclients.produce(writer, bs, topic, recs, conf=conf)
    assert [o for _, o in acks] == [0, 1]
    got = consume(reader, bs, topic, 2)
    assert_same_records(got, recs)


def test_oversized_record_rejected_by_broker_confluent(shared_broker):
    from confluent_kafka import KafkaError

    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    with pytest.raises(kclients.ProduceFailed) as ei:
        kclients.produce_confluent(
            bs, topic, [Rec(value=os.urandom(TOO_BIG), key=b"huge")], timeout=15,
            conf={"message.max.bytes": 5_000_000, "batch.size": 5_000_000})
    (err,) = ei.value.errors
    assert err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    _still_serves(bs, topic)


def test_oversized_record_rejected_by_broker_kafka_python(shared_broker):
    from kafka.errors import MessageSizeTooLargeError

    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    with pytest.raises(kclients.ProduceFailed) as ei:
        kclients.produce_kafka_python(
            bs, topic, [Rec(value=os.urandom(TOO_BIG), key=b"huge")], timeout=15,
            conf={"max_request_size": 5_000_000})
    (err,) = ei.value.errors
    assert isinstance(err, MessageSizeTooLargeError), repr(err)
    _still_serves(bs, topic)


def test_topic_max_message_bytes(shared_broker):
    """Topic-level max.message.bytes is enforced too."""
    from confluent_kafka import KafkaError

    bs = shared_broker.bootstrap
    topic = create_topic(bs, config={"max.message.bytes": "10000"})
    with pytest.raises(kclients.ProduceFailed) as ei:
        kclients.produce_confluent(bs, topic, [Rec(value=os.urandom(50_000))], timeout=15)
    (err,) = ei.value.errors
    assert err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    assert kclients.produce_confluent(bs, topic, [Rec(value=b"small")]) == [(0, 0)]


def test_broker_message_max_bytes_override(broker_factory):
    """The broker-wide limit follows --override message.max.bytes."""
    from confluent_kafka import KafkaError

    b = broker_factory({"message.max.bytes": "3000000"})
    topic = create_topic(b.bootstrap)
    acks = kclients.produce_confluent(b.bootstrap, topic, [Rec(value=os.urandom(TOO_BIG))],
                                      conf={"message.max.bytes": 5_000_000,
                                            "batch.size": 5_000_000})
    assert acks == [(0, 0)]
    with pytest.raises(kclients.ProduceFailed) as ei:
        kclients.produce_confluent(b.bootstrap, topic, [Rec(value=os.urandom(3_500_000))],
                                   timeout=15,
                                   conf={"message.max.bytes": 5_000_000, "batch.size": 5_000_000})
    assert ei.value.errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE


def _still_serves(bs, topic):
    """Nothing of the refused record was appended and the log still works."""
    acks = kclients.produce_aiokafka(bs, topic, [Rec(value=b"small", key=b"k")])
    assert acks == [(0, 0)], acks
    assert_same_records(consume("kafka-python", bs, topic, 1), [Rec(value=b"small", key=b"k")])


@pytest.mark.parametrize("reader,conf", [
    ("kafka-python", {"max_partition_fetch_bytes": 1000, "fetch_max_bytes": 1000}),
    ("aiokafka", {"max_partition_fetch_bytes": 1000, "fetch_max_bytes": 1000}),
    ("confluent", {"fetch.max.bytes": 1000, "max.partition.fetch.bytes": 1000,
                   "message.max.bytes": 1000}),
])
def test_fetch_limits_smaller_than_a_batch(shared_broker, reader, conf):
    """KIP-74: a fetch returns at least the first batch even when it is larger
    than fetch.max.bytes / max.partition.fetch.bytes, so consumers progress."""
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    recs = [Rec(value=os.urandom(20_000), key=f"k{i}".encode()) for i in range(6)]
    kclients.produce_confluent(bs, topic, recs, conf={"linger.ms": 0})
    got = consume(reader, bs, topic, len(recs), conf=conf)
    assert_same_records(got, recs)
