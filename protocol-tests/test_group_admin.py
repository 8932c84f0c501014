"""Group administration: ListGroups, DescribeGroups, OffsetFetch (committed
offsets and lag), DeleteGroups through confluent's AdminClient and
kafka-python's KafkaAdminClient."""

from __future__ import annotations

import time
import uuid

import pytest

import kclients
from groupclients import Members, balanced, wait_all
from kclients import Rec


def gid(prefix="adm"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def spread(n, partitions, prefix="v"):
    return [Rec(value=f"{prefix}-{i:05d}".encode(), key=f"k{i}".encode(), partition=i % partitions)
            for i in range(n)]


_ADMINS: dict = {}


def cadmin(b):
    """One AdminClient per broker, kept alive: a temporary one is destroyed
    (and its futures fail with _DESTROY) before .result() returns."""
    from confluent_kafka.admin import AdminClient

    if b not in _ADMINS:
        _ADMINS[b] = AdminClient({"bootstrap.servers": b})
    return _ADMINS[b]


def kpadmin(b):
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=b, request_timeout_ms=15000)


def c_offsets(b, group, topic, parts):
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(parts)])
    res = cadmin(b).list_consumer_group_offsets([req])[group].result(timeout=15)
    return {tp.partition: tp.offset for tp in res.topic_partitions}


def end_offsets(b, topic, parts):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": b, "group.id": "watermarks-only"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(parts)}
    finally:
        c.close()


def c_state(b, group):
    d = cadmin(b).describe_consumer_groups([group])[group].result(timeout=15)
    return d


def wait_state(b, group, state, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        d = c_state(b, group)
        if str(d.state).upper().endswith(state):
            return d
        assert time.monotonic() < deadline, f"group {group} state {d.state}, want {state}"
        time.sleep(0.3)


def test_list_describe_offsets_lag_delete(shared_broker):
    from confluent_kafka import ConsumerGroupState, KafkaException

    b = shared_broker.bootstrap
    topic = kclients.create_topic(b, partitions=4)
    group = gid()
    kclients.produce("confluent", b, topic, spread(40, 4))
    with Members() as ms:
        m1 = ms.add("confluent", b, group, topics=[topic], name="cf",
                    conf={"client.id": "cf-client"})
        m2 = ms.add("kafka-python", b, group, topics=[topic], name="kp",
                    conf={"client_id": "kp-client"})
        wait_all([m1, m2], balanced(topic, 4, per_member=2), what="2 + 2")
        wait_all([m1, m2], lambda x: sum(len(m.records(topic)) for m in x) >= 40, what="40 recs")
        m1.commit()
        m2.commit()
        kclients.produce("confluent", b, topic, spread(8, 4, "more"))

        # --- confluent AdminClient
        a = cadmin(b)
        listed = a.list_consumer_groups(request_timeout=15).result(timeout=20)
        mine = [g for g in listed.valid if g.group_id == group]
        assert len(mine) == 1, f"{group} not listed: {[g.group_id for g in listed.valid]}"
        assert mine[0].state == ConsumerGroupState.STABLE and not mine[0].is_simple_consumer_group
        stable_only = a.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(timeout=20)
        assert group in {g.group_id for g in stable_only.valid}
        empty_only = a.list_consumer_groups(states={ConsumerGroupState.EMPTY}).result(timeout=20)
        assert group not in {g.group_id for g in empty_only.valid}

        d = wait_state(b, group, "STABLE")
        assert d.partition_assignor == "range"
        assert not d.is_simple_consumer_group
        assert sorted(x.client_id for x in d.members) == ["cf-client", "kp-client"]
        assigned = sorted((tp.topic, tp.partition) for x in d.members
                          for tp in x.assignment.topic_partitions)
        assert assigned == [(topic, p) for p in range(4)]
        for x in d.members:
            assert x.host, x
            assert len(x.assignment.topic_partitions) == 2

        committed = c_offsets(b, group, topic, 4)
        assert committed == {p: 10 for p in range(4)}
        ends = end_offsets(b, topic, 4)
        assert {p: ends[p] - committed[p] for p in range(4)} == {p: 2 for p in range(4)}

        # --- kafka-python KafkaAdminClient
        ka = kpadmin(b)
        try:
            groups = ka.list_groups()
            row = [g for g in groups if g["group_id"] == group]
            assert row and row[0]["protocol_type"] == "consumer", groups
            desc = ka.describe_groups([group])[group]
            assert desc["group_state"] == "Stable", desc
            assert desc["protocol_type"] == "consumer" and desc["protocol_data"] == "range"
            assert len(desc["members"]) == 2
            offs = ka.list_group_offsets(group)[group]
            assert {tp.partition: om.offset for tp, om in offs.items() if tp.topic == topic} == \
                {p: 10 for p in range(4)}
            res = ka.delete_groups([group])
            assert res[group] == "NonEmptyGroupError", res
        finally:
            ka.close()

        # --- deleting a non-empty group fails (confluent)
        fut = a.delete_consumer_groups([group], request_timeout=15)[group]
        with pytest.raises(KafkaException) as ei:
            fut.result(timeout=20)
        assert ei.value.args[0].name() == "NON_EMPTY_GROUP", ei.value
        assert c_offsets(b, group, topic, 4) == {p: 10 for p in range(4)}

        m1.stop()
        m2.stop()
    wait_state(b, group, "EMPTY")
    listed = cadmin(b).list_consumer_groups(states={ConsumerGroupState.EMPTY}).result(timeout=20)
    assert group in {g.group_id for g in listed.valid}
    # Empty now: deleting works and the offsets are gone.
    cadmin(b).delete_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
    assert c_offsets(b, group, topic, 4) == {p: -1001 for p in range(4)}
    listed = cadmin(b).list_consumer_groups().result(timeout=20)
    assert group not in {g.group_id for g in listed.valid}
    # A new member of the same group id starts from the beginning again.
    with Members() as ms:
        m = ms.add("kafka-python", b, group, topics=[topic])
        m.wait_for(lambda m: len(m.records(topic)) >= 48, what="all 48 records from the start")
        m.stop()


def test_kafka_python_delete_empty_group(shared_broker):
    b = shared_broker.bootstrap
    topic = kclients.create_topic(b, partitions=2)
    group = gid()
    kclients.produce("confluent", b, topic, spread(6, 2))
    with Members() as ms:
        m = ms.add("aiokafka", b, group, topics=[topic])
        m.wait_for(lambda m: len(m.records(topic)) >= 6, what="6 records")
        m.commit()
        m.stop()
    ka = kpadmin(b)
    try:
        assert ka.describe_groups([group])[group]["group_state"] == "Empty"
        assert ka.delete_groups([group]) == {group: "OK"}
        offs = ka.list_group_offsets(group)[group]
        assert not [tp for tp, om in offs.items() if om.offset >= 0], offs
        assert group not in {g["group_id"] for g in ka.list_groups()}
    finally:
        ka.close()


def test_delete_unknown_group_is_group_id_not_found(shared_broker):
    """Kafka answers DeleteGroups for a group it does not know with
    GROUP_ID_NOT_FOUND (69)."""
    from confluent_kafka import KafkaException

    b = shared_broker.bootstrap
    group = gid("never-existed")
    fut = cadmin(b).delete_consumer_groups([group], request_timeout=15)[group]
    with pytest.raises(KafkaException) as ei:
        fut.result(timeout=20)
    assert ei.value.args[0].name() == "GROUP_ID_NOT_FOUND"


def test_simple_consumer_commit_lists_as_empty_group(shared_broker):
    """Offsets committed without membership (assign + commit, generation -1)
    make a simple group: listed, described Empty, its offsets fetchable."""
    from confluent_kafka import Consumer, TopicPartition

    b = shared_broker.bootstrap
    topic = kclients.create_topic(b, partitions=2)
    group = gid("simple")
    c = Consumer({"bootstrap.servers": b, "group.id": group, "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        c.commit(offsets=[TopicPartition(topic, 0, 5), TopicPartition(topic, 1, 7)],
                 asynchronous=False)
    finally:
        c.close()
    assert c_offsets(b, group, topic, 2) == {0: 5, 1: 7}
    listed = cadmin(b).list_consumer_groups().result(timeout=20)
    row = [g for g in listed.valid if g.group_id == group]
    assert row and row[0].is_simple_consumer_group, row
    d = c_state(b, group)
    assert str(d.state).endswith("EMPTY") and not d.members


def test_alter_and_delete_group_offsets(shared_broker):
    """AlterConsumerGroupOffsets (OffsetCommit without membership) and
    OffsetDelete: refused while members are subscribed, allowed otherwise."""
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
    from kafka import TopicPartition as KTP
    from kafka.errors import GroupSubscribedToTopicError, NoError

    b = shared_broker.bootstrap
    ta = kclients.create_topic(b, partitions=2)
    tb = kclients.create_topic(b, partitions=1)
    group = gid("alter")
    kclients.produce("confluent", b, ta, spread(20, 2))
    a = cadmin(b)
    res = a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        group, [TopicPartition(ta, 0, 7), TopicPartition(ta, 1, 9), TopicPartition(tb, 0, 1)])])
    res[group].result(timeout=20)
    assert c_offsets(b, group, ta, 2) == {0: 7, 1: 9}
    ka = kpadmin(b)
    try:
        with Members() as ms:
            m = ms.add("kafka-python", b, group, topics=[ta])
            m.wait_for(lambda m: len(m.records(ta)) >= 4, what="records after the altered offsets")
            time.sleep(1)
            assert sorted((p, o) for _, p, o, _ in m.records(ta)) == \
                [(0, 7), (0, 8), (0, 9), (1, 9)], "did not resume at the altered offsets"
            # Active member: altering is refused (UNKNOWN_MEMBER_ID in Kafka).
            fut = a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
                group, [TopicPartition(ta, 0, 0)])])[group]
            try:
                out = fut.result(timeout=20)
                errs = [tp.error for tp in out.topic_partitions]
            except KafkaException as e:
                errs = [e.args[0]]
            assert errs and all(e is not None for e in errs), \
                f"altering the offsets of an active group was accepted: {errs}"
            assert c_offsets(b, group, ta, 2)[0] == 7
            # OffsetDelete: subscribed topic refused, unsubscribed topic allowed.
            r = ka.delete_group_offsets(group, [KTP(ta, 0)])
            assert r[KTP(ta, 0)] is GroupSubscribedToTopicError, r
            r = ka.delete_group_offsets(group, [KTP(tb, 0)])
            assert r[KTP(tb, 0)] is NoError, r
            assert c_offsets(b, group, tb, 1) == {0: -1001}
            m.stop()
        wait_state(b, group, "EMPTY")
        r = ka.delete_group_offsets(group, [KTP(ta, 1)])
        assert r[KTP(ta, 1)] is NoError, r
        assert c_offsets(b, group, ta, 2) == {0: 7, 1: -1001}
    finally:
        ka.close()


def test_offset_fetch_several_groups_at_once(shared_broker):
    """OffsetFetch v8+ (KIP-709): one request for several groups, with and
    without a partition list."""
    from kafka import TopicPartition as KTP
    from kafka.admin import KafkaAdminClient
    from kafka.structs import OffsetAndMetadata

    b = shared_broker.bootstrap
    topic = kclients.create_topic(b, partitions=2)
    g1, g2, g3 = gid("multi"), gid("multi"), gid("never")
    ka = KafkaAdminClient(bootstrap_servers=b, request_timeout_ms=15000)
    try:
        for g, base in ((g1, 10), (g2, 20)):
            res = ka.alter_group_offsets(g, {KTP(topic, p): OffsetAndMetadata(base + p, f"m{p}", -1)
                                             for p in range(2)})
            assert all(e.__name__ == "NoError" for e in res.values()), res
        out = ka.list_group_offsets({g1: None, g2: [KTP(topic, 1)], g3: None})
        assert {tp.partition: (om.offset, om.metadata) for tp, om in out[g1].items()} == \
            {0: (10, "m0"), 1: (11, "m1")}
        assert {tp.partition: om.offset for tp, om in out[g2].items()} == {1: 21}
        assert not [om for om in out[g3].values() if om.offset >= 0]
    finally:
        ka.close()
