"""Partition reassignment (KIP-455) on a three-broker cluster: a loaded partition
moves from brokers {1,2} to {2,3} under an idempotent acks=all producer; a move
is cancelled half way; the controller dies in the middle of a move and the next
one finishes it; the ZooKeeper-era ``/admin/reassign_partitions`` znode; a
move under replication throttles.

A move cannot finish while a replica being added is suspended (SIGSTOP): it
cannot catch up.  That is how these tests hold a move "half way" without
relying on timing.  A throttled move is seen copying in steps; durations of a
1 GiB move come from scripts/bench-reassign.py."""

import json
import time
import pytest

from cluster import poll, raw_call
from durability import ContinuousProducer, finish_and_verify

pytestmark = pytest.mark.cluster


def _create(c, replicas: list, config: dict | None = None) -> str:
    """A topic with an explicit replica assignment (one partition per list)."""
    import uuid

    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"mv-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    fut = admin.create_topics([NewTopic(name, num_partitions=len(replicas), replica_assignment=replicas,
                                       config=config or {})],
                              operation_timeout=15, request_timeout=20)
    fut[name].result(timeout=30)
    c.wait_isr_full(name, timeout=30)
    return name


def _raw_reassign(broker, topic: str, partition: int, replicas) -> int:
    """AlterPartitionReassignments v0 for one partition, sent to ``broker``;
    returns the partition's error code (or the top-level one)."""
    from kafka.protocol.admin import AlterPartitionReassignmentsRequest as Req
    from kafka.protocol.admin import AlterPartitionReassignmentsResponse as Resp

    req = Req(timeout_ms=15000, topics=[Req.ReassignableTopic(
        name=topic, partitions=[Req.ReassignableTopic.ReassignablePartition(
            partition_index=partition, replicas=replicas)])])
    r = raw_call(broker, req, 0, Resp)
    if r.error_code:
        return r.error_code
    return r.responses[0].partitions[0].error_code


def _raw_ongoing(broker) -> dict:
    from kafka.protocol.admin import ListPartitionReassignmentsRequest as Req
    from kafka.protocol.admin import ListPartitionReassignmentsResponse as Resp

    r = raw_call(broker, Req(timeout_ms=15000, topics=None), 0, Resp)
    assert r.error_code == 0, r
    return {(t.name, p.partition_index): {"replicas": list(p.replicas),
                                           "adding_replicas": list(p.adding_replicas),
                                           "removing_replicas": list(p.removing_replicas)}
            for t in r.topics for p in t.partitions}


def _admin(c):
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=c.bootstrap, request_timeout_ms=20000)


def _reassign(c, topic: str, partition: int, replicas):
    """Through kafka-python's admin client (not while a broker is suspended: it
    may pick that broker to look up the controller)."""
    from kafka import TopicPartition

    admin = _admin(c)
    try:
        return admin.alter_partition_reassignments({TopicPartition(topic, partition): replicas})
    finally:
        admin.close()


def _ongoing(c) -> dict:
    admin = _admin(c)
    try:
        return {(tp.topic, tp.partition): v for tp, v in admin.list_partition_reassignments().items()}
    finally:
        admin.close()


def _settled(c, topic: str, partition: int, replicas: list, among=None):
    """Every live broker's metadata shows ``replicas`` (in that order), a leader
    among them and an ISR of exactly them; no move in progress."""
    def cond():
        for b in among or c.alive():
            v = c.partition(topic, partition, via=b)
            if v.replicas != replicas or v.leader not in replicas or sorted(v.isr) != sorted(replicas):
                raise AssertionError(f"broker {b}: {v}")
        ongoing = _ongoing(c)
        assert not ongoing, f"moves listed: {ongoing}"
        return True
    return poll(cond, 60, f"{topic}-{partition} settled on {replicas}", interval=0.3)


def _gone(broker, topic: str, partition: int, timeout: float = 30):
    d = broker.partition_dir(topic, partition)
    poll(lambda: not d.exists(), timeout, f"{d} deleted on broker {broker.broker_id}")


@pytest.mark.timeout(240)
def test_move_a_loaded_partition_under_an_idempotent_producer(cluster_factory):
    """{1,2} -> {2,3} while an idempotent acks=all producer writes: every acked
    record is present once, at its offset, on 2 and 3, and 1 deleted its copy."""
    from kafka import TopicPartition

    c = cluster_factory(3)
    topic = _create(c, [[1, 2]])
    prod = ContinuousProducer(c.bootstrap, topic, 1, tag="mv").start()
    prod.wait_acked(3000, what="before the move")

    result = _reassign(c, topic, 0, [2, 3])
    assert result == {TopicPartition(topic, 0): None}, result
    _settled(c, topic, 0, [2, 3])
    _gone(c.broker(1), topic, 0)
    prod.wait_acked(1000, what="after the move")

    got, stats = finish_and_verify(c, prod, topic, 1)
    assert stats["acked"] >= 4000, stats
    assert not c.broker(1).partition_dir(topic, 0).exists()


@pytest.mark.timeout(180)
def test_cancel_a_move_half_way(cluster_factory):
    """A move {a,b} -> {b,x} cannot finish while x is suspended; cancelling it
    puts the replicas back to {a,b}, and x deletes what it had copied once it
    runs again.  (x is not the controller, which must answer.)"""
    from kafka import TopicPartition
    from kafka.errors import NoReassignmentInProgressError

    c = cluster_factory(3)
    ctrl = c.broker(c.controller())
    x = next(b for b in (3, 2, 1) if b != ctrl.broker_id)
    a, b = [i for i in (1, 2, 3) if i != x]
    topic = _create(c, [[a, b]])
    prod = ContinuousProducer(c.bootstrap_without(x), topic, 1, tag="cx").start()
    prod.wait_acked(1000)

    c.broker(x).suspend()
    try:
        assert _raw_reassign(ctrl, topic, 0, [b, x]) == 0
        ongoing = poll(lambda: _raw_ongoing(ctrl).get((topic, 0)), 20, "the move listed as ongoing")
        assert ongoing == {"replicas": [b, x, a], "adding_replicas": [x],
                           "removing_replicas": [a]}, ongoing
        for via in (a, b):  # Metadata shows the full replica set during the move
            poll(lambda: c.partition(topic, 0, via=via).replicas == [b, x, a], 20,
                 f"broker {via} sees the full replica set")
        assert _raw_reassign(ctrl, topic, 0, None) == 0
        # Back to the original replicas, in the order Kafka restores (the move's
        # full list without the added ones: [b, a]).
        poll(lambda: all(c.partition(topic, 0, via=i).replicas == [b, a] for i in (a, b))
             and not _raw_ongoing(ctrl), 30, "the replicas back to [b, a]")
    finally:
        c.broker(x).resume()
    _gone(c.broker(x), topic, 0, timeout=60)
    prod.wait_acked(500, what="after the cancel")
    finish_and_verify(c, prod, topic, 1)
    assert _reassign(c, topic, 0, None) == {TopicPartition(topic, 0): NoReassignmentInProgressError}


@pytest.mark.timeout(240)
def test_the_next_controller_finishes_a_move(cluster_factory):
    """The move's state lives in the topic znode: kill -9 the controller in the
    middle of a move and the next controller completes it."""
    from kafka import TopicPartition

    c = cluster_factory(3)
    controller = c.controller()
    others = [b for b in (1, 2, 3) if b != controller]
    keep, add = others
    topic = _create(c, [[keep, controller]])
    prod = ContinuousProducer(c.bootstrap_without(add), topic, 1, tag="fo").start()
    prod.wait_acked(1000)

    c.broker(add).suspend()
    try:
        assert _raw_reassign(c.broker(controller), topic, 0, [keep, add]) == 0
        poll(lambda: c.partition(topic, 0, via=keep).replicas == [keep, add, controller], 20,
             "the move started")
        c.broker(controller).kill9()
    finally:
        c.broker(add).resume()
    new = c.controller(exclude=(controller,), timeout=60)
    assert new != controller
    _settled(c, topic, 0, [keep, add], among=[c.broker(keep), c.broker(add)])
    prod.wait_acked(500, what="after the failover")
    c.broker(controller).start()
    _gone(c.broker(controller), topic, 0, timeout=60)
    finish_and_verify(c, prod, topic, 1)


@pytest.mark.timeout(180)
def test_reassign_partitions_znode(cluster_factory):
    """A ZooKeeper-era tool writes /admin/reassign_partitions in Kafka's JSON; the
    controller makes the moves and deletes the znode once they are done."""
    from kazoo.client import KazooClient

    c = cluster_factory(3)
    topic = _create(c, [[1, 2], [2, 3]])
    zk = KazooClient(hosts=c.zk.connect(c.chroot), timeout=10)
    zk.start(timeout=15)
    try:
        request = {"version": 1, "partitions": [
            {"topic": topic, "partition": 0, "replicas": [3, 1]},
            {"topic": topic, "partition": 1, "replicas": [2, 3]},   # already there: no move
        ]}
        zk.create("/admin/reassign_partitions", json.dumps(request).encode(), makepath=True)
        _settled(c, topic, 0, [3, 1])
        poll(lambda: not zk.exists("/admin/reassign_partitions"), 30, "the znode deleted")
        stored = json.loads(zk.get(f"/brokers/topics/{topic}")[0])
        assert stored["partitions"] == {"0": [3, 1], "1": [2, 3]}, stored
        assert stored["adding_replicas"] == {} and stored["removing_replicas"] == {}, stored
    finally:
        zk.stop()
        zk.close()
    _gone(c.broker(2), topic, 0)


@pytest.mark.timeout(180)
def test_a_throttled_move_copies_at_the_throttled_rate(cluster_factory):
    """{1,2} -> {2,3} of a 4 MiB partition with the leader and follower rates at
    1 MiB/s and the topic's throttled-replica lists naming the senders (1, 2)
    and the receiver (3), as kafka-reassign-partitions --throttle sets them.
    Unthrottled, loopback copies 4 MiB in a few fetches within milliseconds;
    throttled, the new replica's log grows in steps, seen at many sizes between
    empty and full while the move runs.  The duration is printed, not asserted."""
    from confluent_kafka import Producer
    from kafka.admin import ConfigResource, ConfigResourceType

    c = cluster_factory(3)
    topic = _create(c, [[1, 2]])
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 5})
    for _ in range(64):
        p.produce(topic, b"x" * 65536, partition=0)
    assert p.flush(30) == 0

    admin = _admin(c)
    rate = str(1024 * 1024)
    for b in (1, 2, 3):
        admin.alter_configs([ConfigResource(ConfigResourceType.BROKER, str(b), configs={
            "leader.replication.throttled.rate": rate,
            "follower.replication.throttled.rate": rate})])
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={
        "leader.replication.throttled.replicas": "0:1,0:2",
        "follower.replication.throttled.replicas": "0:3"})])
    admin.close()

    full = sum(f.stat().st_size for f in c.broker(1).partition_dir(topic, 0).glob("*.log"))
    copy = c.broker(3).partition_dir(topic, 0)
    sizes = set()
    start = time.monotonic()
    _reassign(c, topic, 0, [2, 3])
    while time.monotonic() - start < 60:
        size = sum(f.stat().st_size for f in copy.glob("*.log")) if copy.exists() else 0
        sizes.add(size)
        if size >= full and c.partition(topic, 0, via=c.broker(2)).replicas == [2, 3]:
            break
        time.sleep(0.05)
    took = time.monotonic() - start
    _settled(c, topic, 0, [2, 3])
    between = sorted(s for s in sizes if 0 < s < full)
    print(f"throttled move of {full} bytes at 1 MiB/s took {took:.1f} s; sizes seen: {between}")
    assert len(between) >= 2, f"the copy was not throttled: sizes seen {sorted(sizes)} of {full}"
