"""Client byte-rate quotas under librdkafka: a producer and a consumer, each over its
client-id quota, are throttled (the broker's throttle_time_ms shows in librdkafka's
statistics, ``brokers.<b>.throttle``) and still move every record, in order.

The quotas are set while the broker runs, with AlterClientQuotas (kafka-python's protocol
classes: no client library has a quota admin call), and read back with DescribeClientQuotas.

Windows of 2 x 1 s (``quota.window.num=2``) keep the throttles short: a burst of S bytes
over a quota of Q bytes/s is throttled for about (S - Q) / Q seconds."""

import json
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from cluster import raw_call

PORT = 25100
QUOTA = 100_000  # bytes/s
RECORDS = 300
VALUE = 1_000  # bytes per record: ~3 quota-seconds in all
PRODUCER_ID = "quota-producer"
CONSUMER_ID = "quota-consumer"


def _set_quotas(broker):
    """AlterClientQuotas v1: the producer's and the consumer's client-id quotas."""
    from kafka.protocol.admin import (AlterClientQuotasRequest as A, AlterClientQuotasResponse,
                                      DescribeClientQuotasRequest as D,
                                      DescribeClientQuotasResponse)

    def entry(client, key):
        return A.EntryData(entity=[A.EntryData.EntityData(entity_type="client-id",
                                                          entity_name=client)],
                           ops=[A.EntryData.OpData(key=key, value=float(QUOTA), remove=False)])

    req = A(entries=[entry(PRODUCER_ID, "producer_byte_rate"),
                     entry(CONSUMER_ID, "consumer_byte_rate")], validate_only=False)
    resp = raw_call(broker, req, 1, AlterClientQuotasResponse)
    assert [e.error_code for e in resp.entries] == [0, 0], resp
    described = raw_call(broker, D(components=[D.ComponentData(entity_type="client-id",
                                                               match_type=2, match=None)],
                                   strict=True), 1, DescribeClientQuotasResponse)
    assert {(e.entity[0].entity_name, v.key, v.value)
            for e in described.entries for v in e.values} == {
        (PRODUCER_ID, "producer_byte_rate", QUOTA), (CONSUMER_ID, "consumer_byte_rate", QUOTA)}


def _max_throttle(stats):
    """The largest throttle time (ms) librdkafka reports for any broker in one statistics
    emission."""
    s = json.loads(stats)
    return max((b.get("throttle", {}).get("max", 0) for b in s.get("brokers", {}).values()),
               default=0)


@pytest.mark.timeout(90)
def test_throttled_producer_and_consumer_still_move_every_record(broker_factory, topic_name):
    b = broker_factory({"quota.window.num": "2", "quota.window.size.seconds": "1"}, port=PORT)
    _set_quotas(b)
    throttles = []

    p = Producer({
        "bootstrap.servers": b.bootstrap, "client.id": PRODUCER_ID,
        # Batches well below what a consumer may fetch in one window (quota x (2 - 1) x 1 s):
        # a larger one could never be fetched under the quota, in Kafka as here.
        "statistics.interval.ms": 100, "linger.ms": 5, "batch.size": 16384,
        "stats_cb": lambda s: throttles.append(("produce", _max_throttle(s))),
    })
    values = [(b"%06d" % i) + b"x" * (VALUE - 6) for i in range(RECORDS)]
    for v in values:
        p.produce(topic_name, v, partition=0)
        p.poll(0)
    assert p.flush(40) == 0, "every record delivered"
    deadline = time.time() + 2
    while time.time() < deadline:
        p.poll(0.1)
    assert any(t > 0 for kind, t in throttles if kind == "produce"), throttles

    c = Consumer({
        "bootstrap.servers": b.bootstrap, "client.id": CONSUMER_ID, "group.id": "quotas",
        "enable.auto.commit": False, "statistics.interval.ms": 100,
        "fetch.max.bytes": 1_000_000, "max.partition.fetch.bytes": 1_000_000,
        "stats_cb": lambda s: throttles.append(("fetch", _max_throttle(s))),
    })
    c.assign([TopicPartition(topic_name, 0, 0)])
    got = []
    deadline = time.time() + 40
    while len(got) < RECORDS and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append(m.value())
    end = time.time() + 1
    while time.time() < end:
        c.poll(0.1)
    c.close()
    assert got == values, f"{len(got)} of {RECORDS} records read back"
    assert any(t > 0 for kind, t in throttles if kind == "fetch"), throttles
