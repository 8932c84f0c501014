"""Replication throttles (Kafka's KIP-73) in a three-broker ZooKeeper cluster:
the rates are dynamic broker configs set and reset with kafka-python's admin
client (``alter_configs`` / ``reset_configs``: IncrementalAlterConfigs SET and
DELETE), the throttled replicas are the topic's ``*`` lists.  A follower that was down
while data was written is out of the ISR when it comes back: throttled on the
leader side and on its own side, it does not catch up while the throttles are
in force (one replica fetch of 64 KiB per quota window at most), and rejoins
the ISR once they are lifted.  In-sync followers are never throttled, so
producing with acks=all keeps working throughout."""

import time

import pytest

import kclients
from cluster import poll
from kclients import Rec

pytestmark = pytest.mark.cluster

RATE = "1000"  # bytes/s: far below what catching up needs
LEADER_RATE = "leader.replication.throttled.rate"
FOLLOWER_RATE = "follower.replication.throttled.rate"
PAYLOAD = 3 * 1024 * 1024


def _admin(bs):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=15000)


def _broker(broker_id, configs=None):
    from kafka.admin import ConfigResource, ConfigResourceType

    return ConfigResource(ConfigResourceType.BROKER, str(broker_id), configs=configs)


def _set_rate(admin, broker_id, key, value):
    """IncrementalAlterConfigs SET of one key of one broker (kafka-python sends a
    broker resource to that broker)."""
    out = admin.alter_configs([_broker(broker_id, {key: value})])
    assert out["broker"][str(broker_id)] == "OK", out


def _reset(admin, broker_id, key):
    """IncrementalAlterConfigs DELETE: the key is back at its default."""
    out = admin.reset_configs([_broker(broker_id, [key])])
    assert out["broker"][str(broker_id)] == "OK", out


def _described(admin, broker_id, key):
    """(value, source) of one key in DescribeConfigs of a broker."""
    res = _broker(broker_id)
    out = admin.describe_configs([res], config_filter="all")
    e = out["broker"][str(broker_id)][key]
    return e["value"], e["config_source"]


def _isr(c, topic):
    return sorted(c.partition(topic, 0).isr)


@pytest.mark.timeout(300)
def test_out_of_sync_follower_is_throttled_until_the_rates_are_lifted(cluster_factory):
    c = cluster_factory(3, overrides={"replica.fetch.max.bytes": "65536"})
    topic = c.create_topic(partitions=1, rf=3, config={
        "min.insync.replicas": "1",
        "leader.replication.throttled.replicas": "*",
        "follower.replication.throttled.replicas": "*",
    })
    leader = c.leader(topic)
    victim = c.broker(next(i for i in (1, 2, 3) if i != leader))
    admin = _admin(c.bootstrap)
    try:
        _set_rate(admin, leader, LEADER_RATE, RATE)
        _set_rate(admin, victim.broker_id, FOLLOWER_RATE, RATE)
        assert _described(admin, leader, LEADER_RATE) == (RATE, "DYNAMIC_BROKER_CONFIG")
        assert _described(admin, victim.broker_id, FOLLOWER_RATE) == \
            (RATE, "DYNAMIC_BROKER_CONFIG")
        assert _described(admin, victim.broker_id, LEADER_RATE) == \
            (str(2**63 - 1), "DEFAULT_CONFIG")

        victim.kill9()
        poll(lambda: victim.broker_id not in _isr(c, topic) or None, 60,
             "the dead follower out of the ISR")
        recs = [Rec(value=b"x" * 100_000, key=None, partition=0)
                for _ in range(PAYLOAD // 100_000)]
        kclients.produce_confluent(c.bootstrap_without(victim.broker_id), topic, recs,
                                   acks="1", timeout=60)
        victim.start()
        c.wait_registered([1, 2, 3], timeout=30)
        # Throttled on both sides: 3 MiB cannot be fetched in 64 KiB answers, each
        # exceeding 1000 bytes/s for its quota window, within these seconds.
        time.sleep(6)
        assert victim.broker_id not in _isr(c, topic), "the throttled follower caught up"

        # In-sync followers are not throttled: acks=all still succeeds.
        kclients.produce_confluent(c.bootstrap, topic,
                                   [Rec(value=b"after", key=None, partition=0)],
                                   acks="all", timeout=30)

        _reset(admin, leader, LEADER_RATE)
        _reset(admin, victim.broker_id, FOLLOWER_RATE)
        c.wait_isr_full(topic, timeout=90)
    finally:
        admin.close()
