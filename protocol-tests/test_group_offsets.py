"""Committed offsets: durability across broker restarts, and the raw
__consumer_offsets records decoded with our own schema decoder."""

from __future__ import annotations

import time
import uuid

import pytest

import kclients
import offsets_topic as ot
from groupclients import Members, balanced, wait_all
from kclients import Rec


def gid(prefix="g"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def spread(n, partitions, prefix="v"):
    return [Rec(value=f"{prefix}-{i:05d}".encode(), key=f"k{i}".encode(), partition=i % partitions)
            for i in range(n)]


def committed(bootstrap, group, topic, partitions):
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    a = AdminClient({"bootstrap.servers": bootstrap})
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])
    res = a.list_consumer_group_offsets([req], request_timeout=10)[group].result(timeout=15)
    return {tp.partition: tp.offset for tp in res.topic_partitions}


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_committed_offsets_survive_restart(broker, how):
    b = broker.bootstrap
    topic = kclients.create_topic(b, partitions=3)
    group = gid()
    kclients.produce("confluent", b, topic, spread(30, 3, "first"))
    with Members() as ms:
        m1 = ms.add("confluent", b, group, topics=[topic])
        m1.wait_for(lambda m: len(m.records(topic)) >= 30, what="30 records")
        m1.commit()  # synchronous: acknowledged before the broker goes down
        assert committed(b, group, topic, 3) == {0: 10, 1: 10, 2: 10}
        m1.kill9()
        broker.restart(kill=(how == "kill9"))
        assert committed(b, group, topic, 3) == {0: 10, 1: 10, 2: 10}, \
            f"committed offsets lost by a {how} restart"
        kclients.produce("confluent", b, topic, spread(9, 3, "second"))
        m2 = ms.add("kafka-python", b, group, topics=[topic])
        m2.wait_for(lambda m: len(m.records(topic)) >= 9, timeout=40, what="resume after restart")
        time.sleep(1)
        assert sorted(r[3] for r in m2.records(topic)) == [f"second-{i:05d}" for i in range(9)]
        m2.commit()
        m2.stop()
        assert committed(b, group, topic, 3) == {0: 13, 1: 13, 2: 13}


def test_member_survives_broker_restart_and_keeps_committing(broker):
    """A live member keeps its group across a clean broker restart: after it
    the member commits again, and a successor resumes at those commits."""
    b = broker.bootstrap
    topic = kclients.create_topic(b, partitions=2)
    group = gid()
    kclients.produce("confluent", b, topic, spread(10, 2, "a"))
    with Members() as ms:
        m = ms.add("kafka-python", b, group, topics=[topic])
        m.wait_for(lambda m: len(m.records(topic)) >= 10, what="10 records")
        m.commit()
        broker.restart()
        kclients.produce("confluent", b, topic, spread(6, 2, "b"))
        m.wait_for(lambda m: len(m.records(topic)) >= 16, timeout=40, what="records after restart")
        m.commit()
        m.stop()
        assert committed(b, group, topic, 2) == {0: 8, 1: 8}


def test_consumer_offsets_records_decode(shared_broker):
    b = shared_broker.bootstrap
    topic = kclients.create_topic(b, partitions=4)
    group = gid("decode")
    kclients.produce("confluent", b, topic, spread(40, 4))
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": b})
    with Members() as ms:
        m1 = ms.add("kafka-python", b, group, topics=[topic], assignor="range", name="kp")
        m2 = ms.add("confluent", b, group, topics=[topic], assignor="range", name="cf")
        wait_all([m1, m2], balanced(topic, 4, per_member=2), what="2 + 2")
        wait_all([m1, m2], lambda x: sum(len(m.records(topic)) for m in x) >= 40, what="40 recs")
        m1.commit()
        m2.commit()
        d = admin.describe_consumer_groups([group])[group].result(timeout=15)
        live_ids = {x.member_id: x for x in d.members}
        recs = ot.read_all(b)
        mine = [r for r in recs if r[2].group == group]
        assert mine, "no __consumer_offsets records for the group"
        assert len({r[0] for r in mine}) == 1, "a group's records span several partitions"
        offs = {}
        for _, _, k, v, _, _ in mine:
            if isinstance(k, ot.OffsetKey):
                assert k.version in (0, 1) and k.topic == topic
                offs[k.partition] = v
        assert {p: v.offset for p, v in offs.items()} == {0: 10, 1: 10, 2: 10, 3: 10}
        now = time.time() * 1000
        for v in offs.values():
            assert abs(v.commit_timestamp - now) < 120_000, v
        groups = [v for _, _, k, v, _, _ in mine if isinstance(k, ot.GroupKey)]
        assert groups, "no GroupMetadata record"
        g = groups[-1]
        assert g is not None
        assert g.protocol_type == "consumer" and g.protocol == "range"
        assert {x.member_id for x in g.members} == set(live_ids), \
            f"{[x.member_id for x in g.members]} vs described {list(live_ids)}"
        assert g.leader in live_ids
        assert g.generation >= 1
        asg = {}
        for x in g.members:
            assert x.session_timeout == 6000, x
            assert x.client_id == live_ids[x.member_id].client_id
            assert ot.decode_subscription_topics(x.subscription) == [topic]
            for t, parts in ot.decode_assignment(x.assignment).items():
                assert t == topic
                asg[x.member_id] = parts
        assert sorted(p for ps in asg.values() for p in ps) == [0, 1, 2, 3]
        gen_stable = g.generation
        m1.stop()
        m2.stop()
    # Both left: an Empty group record with a later generation and no members.
    deadline = time.monotonic() + 15
    while True:
        mine = [r for r in ot.read_all(b) if r[2].group == group]
        last = [v for _, _, k, v, _, _ in mine if isinstance(k, ot.GroupKey)][-1]
        if last is not None and not last.members:
            break
        assert time.monotonic() < deadline, f"no empty-group record after leaving: {last}"
        time.sleep(0.5)
    assert last.generation > gen_stable
    assert last.protocol is None or last.protocol == ""


@pytest.mark.parametrize("group", ["orders-consumer"])
def test_group_records_in_kafkas_partition(shared_broker, group):
    """Kafka: partitionFor(group) = Utils.abs(group.hashCode) % 50, where
    Utils.abs(n) = Math.abs(n) (0 for MIN_VALUE), not n & 0x7fffffff."""
    b = shared_broker.bootstrap
    group = f"{group}-{uuid.uuid4().hex[:6]}"
    while ot.java_hash(group) >= 0:  # the two formulas agree on non-negative hashes
        group += "x"
    topic = kclients.create_topic(b, partitions=1)
    kclients.produce("confluent", b, topic, spread(3, 1))
    with Members() as ms:
        m = ms.add("confluent", b, group, topics=[topic])
        m.wait_for(lambda m: len(m.records(topic)) >= 3, what="3 records")
        m.commit()
        m.stop()
    parts = {r[0] for r in ot.read_all(b) if r[2].group == group}
    assert parts == {ot.partition_for(group)}, \
        f"group {group!r} (hashCode {ot.java_hash(group)}) stored in __consumer_offsets " \
        f"partitions {sorted(parts)}; Kafka uses {ot.partition_for(group)}"
