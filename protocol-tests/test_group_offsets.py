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
    # The two formulas agree on non-negative hashes (and on a few negative ones).
    while ot.java_hash(group) >= 0 or \
            ot.partition_for(group) == (ot.java_hash(group) & 0x7FFFFFFF) % 50:
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


def test_offsets_topic_is_compacted_and_internal(shared_broker):
    from confluent_kafka.admin import AdminClient, ConfigResource

    b = shared_broker.bootstrap
    from test_group_bad_input import Conn

    c = Conn(b)
    c.heartbeat(gid(), 1, "x")  # makes the coordinator create __consumer_offsets
    c.close()
    a = AdminClient({"bootstrap.servers": b})
    md = a.list_topics(topic="__consumer_offsets", timeout=10)
    assert len(md.topics["__consumer_offsets"].partitions) == 50
    res = ConfigResource(ConfigResource.Type.TOPIC, "__consumer_offsets")
    cfg = a.describe_configs([res])[res].result(timeout=15)
    assert cfg["cleanup.policy"].value == "compact"
    assert cfg["segment.bytes"].value == "104857600"
    assert cfg["compression.type"].value == "producer"
    from kafka import KafkaAdminClient

    ka = KafkaAdminClient(bootstrap_servers=b)
    try:
        topics = ka.describe_topics(["__consumer_offsets"])
        assert topics[0]["is_internal"] is True, topics[0]
    finally:
        ka.close()


def test_compacted_offsets_topic_keeps_latest_commits(broker_factory):
    """Many commits of one partition, small __consumer_offsets segments, a fast
    cleaner: compaction drops superseded commits, keeps the latest one and the
    tombstones of a deleted group, and a kill -9 restart reloads them."""
    from test_group_bad_input import Conn

    br = broker_factory({"offsets.topic.segment.bytes": 2048, "log.cleaner.backoff.ms": 200,
                         "log.cleaner.min.cleanable.ratio": 0.01})
    b = br.bootstrap
    topic = kclients.create_topic(b, partitions=1)
    group = gid("compact")
    gone = gid("gone")
    c = Conn(b)
    try:
        assert c.commit(gone, -1, "", topic, offset=42) == [0]
        for i in range(1, 301):
            assert c.commit(group, -1, "", topic, offset=i) == [0]
    finally:
        c.close()
    from confluent_kafka.admin import AdminClient

    a = AdminClient({"bootstrap.servers": b})
    a.delete_consumer_groups([gone])[gone].result(timeout=15)
    deadline = time.monotonic() + 40
    while True:
        mine = [r for r in ot.read_all(b) if r[2].group == group]
        if len(mine) < 300:
            break
        assert time.monotonic() < deadline, f"__consumer_offsets never compacted: {len(mine)} records"
        time.sleep(1)
    assert mine[-1][3].offset == 300
    assert committed(b, group, topic, 1) == {0: 300}
    br.restart(kill=True)
    assert committed(b, group, topic, 1) == {0: 300}
    assert committed(b, gone, topic, 1) == {0: -1001}, "a deleted group's offsets came back"
    # Keys stay unique per (group, topic, partition) after cleaning, newest last.
    recs = [r for r in ot.read_all(b) if r[2].group == group]
    assert recs[-1][3].offset == 300
