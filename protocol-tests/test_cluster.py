"""Cluster mode (ZooKeeper): three brokers on one ZooKeeper chroot, topics with
replicas, failover without loss.  The default run's cluster tests: the seeds'
workflow, a leader crash under an idempotent producer, min.insync.replicas,
and brokers that must refuse to start.  Harsher faults: test_cluster_faults.py
(ODRADEK_FAULT_TESTS=1)."""

import re
import time

import pytest

import kclients
import offsets_topic
from brokers import Broker, free_port
from cluster import poll, start_expect_exit
from durability import ContinuousProducer, converged_log, finish_and_verify, read_back
from kclients import Rec

pytestmark = pytest.mark.cluster


def _recs(tag, n, partitions):
    return [Rec(value=f"{tag}-{i:05d}".encode(), key=None, partition=i % partitions)
            for i in range(n)]


def _produce(bs, topic, recs, **conf):
    c = {"enable.idempotence": True, "message.timeout.ms": 40000}
    c.update(conf)
    return kclients.produce_confluent(bs, topic, recs, conf=c, timeout=40)


def _own_output(b):
    """What the broker itself wrote: without the harness's '==== start' lines
    (they quote the command line, so every config key) and without the
    backtrace that RUST_BACKTRACE=1 appends to an error."""
    text = b.log_file.read_text(errors="replace").split("Stack backtrace:")[0]
    return "\n".join(ln for ln in text.splitlines() if not ln.startswith("==== start"))


def _assert_partitions(bs, topic, want_by_partition):
    """Read each partition through ``bs`` and compare with what was written."""
    for p, want in want_by_partition.items():
        got = kclients.consume("kafka-python", bs, topic, len(want), partition=p, timeout=30,
                               extra_wait=0.2)
        kclients.assert_same_records(got, want, check_keys=False)


@pytest.mark.timeout(180)
def test_seed_workflow_rf3_kill_one_and_rejoin(cluster_factory):
    """The seeds' workflow: RF 3 / 5 partitions / min.insync.replicas=2; Metadata
    through each broker shows all three, spread leaders and full ISRs; produce and
    consume through any broker; kill -9 one; keep going; bring it back: it rejoins
    every ISR."""
    from confluent_kafka.admin import AdminClient

    c = cluster_factory(3)
    topic = c.create_topic(partitions=5, rf=3, config={"min.insync.replicas": "2"})

    for b in c.brokers:  # what a real client sees through each broker's address
        md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(topic, timeout=15)
        assert sorted(md.brokers) == [1, 2, 3], f"via broker {b.broker_id}: {md.brokers}"
        parts = md.topics[topic].partitions
        assert sorted(parts) == [0, 1, 2, 3, 4]
        for p in parts.values():
            assert sorted(p.replicas) == [1, 2, 3], f"via {b.broker_id}: {p.id} replicas {p.replicas}"
            assert sorted(p.isrs) == [1, 2, 3], f"via {b.broker_id}: {p.id} isr {p.isrs}"
    leaders = c.leaders(topic)
    assert set(leaders.values()) == {1, 2, 3}, f"leaders not spread: {leaders}"
    assert len({tuple(c.partition(topic, p).replicas) for p in range(5)}) > 1, \
        "every partition has the same replica order (preferred leaders not spread)"

    written = {p: [] for p in range(5)}
    for b in c.brokers:  # produce through each broker's address alone
        recs = _recs(f"via{b.broker_id}", 50, 5)
        _produce(b.bootstrap, topic, recs)
        for r in recs:
            written[r.partition].append(r)
    for b in c.brokers:
        _assert_partitions(b.bootstrap, topic, written)

    victim = c.broker(leaders[0])
    victim.kill9()
    survivors = c.bootstrap_without(victim.broker_id)
    new_leaders = c.leaders(topic, timeout=40)  # all live: none on the victim any more
    assert victim.broker_id not in new_leaders.values()
    recs = _recs("after-kill", 200, 5)
    _produce(survivors, topic, recs)
    for r in recs:
        written[r.partition].append(r)
    _assert_partitions(survivors, topic, written)

    victim.start()
    c.wait_registered([1, 2, 3], timeout=30)
    c.wait_isr_full(topic, timeout=45)
    recs = _recs("after-rejoin", 100, 5)
    _produce(victim.bootstrap, topic, recs)
    for r in recs:
        written[r.partition].append(r)
    for b in c.brokers:
        _assert_partitions(b.bootstrap, topic, written)


def _offsets_partition(group: str, partitions: int = 5) -> int:
    """Kafka's placement of a group: Utils.abs(String.hashCode) % partitions."""
    return offsets_topic.partition_for(group, partitions)


def _consume_group(bootstrap, topic, group, n, timeout=60):
    """A confluent-kafka group member reads ``n`` records, commits them
    synchronously, leaves; returns their values."""
    from confluent_kafka import Consumer

    cons = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "session.timeout.ms": 6000})
    cons.subscribe([topic])
    got, deadline = [], time.monotonic() + timeout
    try:
        while len(got) < n and time.monotonic() < deadline:
            m = cons.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m.value())
        assert len(got) >= n, f"group member read {len(got)} of {n} records"
        cons.commit(asynchronous=False)
    finally:
        cons.close()
    return got


@pytest.mark.timeout(180)
def test_consumer_group_resumes_after_its_coordinator_dies(cluster_factory):
    """Group coordination follows the leadership of __consumer_offsets: a group
    reads part of a topic and commits; the broker coordinating it is killed;
    a new member of the group, through the survivors, resumes at the committed
    positions: the commit was on the ISR before it was acknowledged."""
    c = cluster_factory(3)
    topic = c.create_topic(partitions=3, rf=3, config={"min.insync.replicas": "2"})
    recs = _recs("g", 300, 3)
    _produce(c.bootstrap, topic, recs)
    group = f"group-{topic}"
    first = _consume_group(c.bootstrap, topic, group, 120)
    coordinator = c.leader("__consumer_offsets", _offsets_partition(group))
    c.broker(coordinator).kill9()
    rest = _consume_group(c.bootstrap_without(coordinator), topic, group, 300 - len(first))
    all_values = sorted(r.value for r in recs)
    assert sorted(first + rest) == all_values, \
        f"after the coordinator {coordinator} died the group re-read or skipped records " \
        f"({len(first)} + {len(rest)} read, {len(set(first) & set(rest))} twice)"


@pytest.mark.timeout(180)
def test_topic_recreated_while_a_replica_was_down_does_not_reuse_its_old_log(cluster_factory):
    """A topic is deleted while broker 3 is down and created again under the
    same name; the new topic has records before broker 3 (frozen meanwhile)
    first hosts it.  Broker 3's directory of the old topic (another topic id in
    partition.metadata) must be deleted, not taken for the new topic: leader
    epochs alone cannot tell the old records from the new ones."""
    from confluent_kafka.admin import AdminClient, NewTopic

    c = cluster_factory(3)
    topic = c.create_topic(partitions=1, rf=3)
    # One record per batch: a follower truncates whole batches, so only then
    # would old records survive a truncation to the new leader's offset.
    _produce(c.bootstrap, topic, _recs("old", 60, 1), **{"batch.num.messages": 1})
    converged_log(c, topic, 1)
    c.broker(3).kill9()
    admin = AdminClient({"bootstrap.servers": c.bootstrap_without(3)})
    admin.delete_topics([topic])[topic].result(30)
    poll(lambda: topic not in admin.list_topics(timeout=10).topics, 30, f"{topic} deleted")
    c.broker(3).start()
    c.wait_registered([1, 2, 3], timeout=30)
    c.broker(3).suspend()
    try:
        # Broker 1 leads (first in the assignment), so nothing waits for broker 3.
        admin.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[1, 2, 3]])],
                            operation_timeout=15)[topic].result(30)
        assert c.leader(topic, 0, among=[1, 2]) == 1
        _produce(c.bootstrap_without(3), topic, _recs("new", 10, 1),
                 **{"enable.idempotence": False, "acks": 1})
    finally:
        c.broker(3).resume()
    c.wait_registered([1, 2, 3], timeout=30)
    final = converged_log(c, topic, 1)
    assert [v for _, v in final[0]] == [r.value for r in _recs("new", 10, 1)]


@pytest.mark.timeout(180)
def test_leader_kill9_under_idempotent_producer_loses_nothing(cluster_factory):
    """An idempotent acks=all producer writes continuously while the leader of
    partition 0 is SIGKILLed and later restarted: every acknowledged record is
    read back once, at its offset, in order; the replicas' logs converge; the
    restarted broker rejoins the ISR."""
    c = cluster_factory(3)
    topic = c.create_topic(partitions=3, rf=3, config={"min.insync.replicas": "2"})
    prod = ContinuousProducer(c.bootstrap, topic, 3, tag="k9").start()
    prod.wait_acked(1500, what="before the crash ")
    victim = c.broker(c.leader(topic, 0))
    victim.kill9()
    t0 = time.monotonic()
    new = c.leader(topic, 0, exclude=(victim.broker_id,), timeout=40)
    failover = time.monotonic() - t0
    prod.wait_acked(1500, timeout=45, what="after the leader's crash ")
    victim.start()
    c.wait_isr_full(topic, timeout=45)
    prod.wait_acked(500, what="after the restart ")
    _, stats = finish_and_verify(c, prod, topic, 3)
    print(f"leader {victim.broker_id} -> {new} in {failover:.1f}s; {stats}")


@pytest.mark.timeout(150)
def test_acks_all_refused_below_min_insync_replicas(cluster_factory):
    """Two of three brokers down: acks=all writes to a min.insync.replicas=2
    topic are refused (NOT_ENOUGH_REPLICAS, or a timeout), never acknowledged;
    acks=1 still works; once the brokers are back acks=all succeeds again."""
    c = cluster_factory(3)
    topic = c.create_topic(partitions=1, rf=3, config={"min.insync.replicas": "2"})
    before = _recs("before", 20, 1)
    _produce(c.bootstrap, topic, before)
    leader = c.broker(c.leader(topic, 0))
    others = [b for b in c.brokers if b is not leader]
    for b in others:
        b.kill9()
    # The controller (or the leader) drops the dead followers from the ISR.
    from cluster import poll
    poll(lambda: c.partition(topic, 0, via=leader).isr == [leader.broker_id], 40,
         f"ISR of {topic}-0 shrunk to [{leader.broker_id}]")

    refused = kclients.produce_confluent(
        leader.bootstrap, topic, _recs("refused", 5, 1), acks="all", raise_errors=False,
        conf={"enable.idempotence": False, "retries": 0, "message.timeout.ms": 10000}, timeout=10)
    acked = [r for r in refused if isinstance(r, tuple)]
    assert not acked, f"acks=all acknowledged with ISR below min.insync.replicas: {acked}"
    names = {e.name() for e in refused}
    assert names <= {"NOT_ENOUGH_REPLICAS", "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "_MSG_TIMED_OUT",
                     "REQUEST_TIMED_OUT"}, f"unexpected errors {names}"
    # min.insync.replicas does not apply to acks=1 (as in Kafka)
    one = kclients.produce_confluent(leader.bootstrap, topic, [Rec(value=b"acks1", partition=0)],
                                     acks="1", conf={"enable.idempotence": False}, timeout=15)
    assert isinstance(one[0], tuple)

    for b in others:
        b.start()
    c.wait_isr_full(topic, timeout=45)
    after = _recs("after", 20, 1)
    offs = _produce(c.bootstrap, topic, after)
    assert all(isinstance(o, tuple) for o in offs)
    got = read_back(c.bootstrap, topic, 1)[0]
    values = [v for _, v in got]
    assert values[:20] == [r.value for r in before]
    assert b"acks1" in values and values[-20:] == [r.value for r in after]


@pytest.mark.timeout(90)
def test_duplicate_broker_id_refused(cluster_factory, tmp_path):
    """A second broker with a broker.id already registered exits non-zero with a
    clear error; the registered one stays."""
    c = cluster_factory(2)
    dup = Broker(tmp_path / "dup", overrides=dict(c.overrides), broker_id=1)
    try:
        rc = start_expect_exit(dup, 30)
    finally:
        dup.kill9()
    log = _own_output(dup)
    assert rc != 0, f"duplicate broker.id 1 exited with {rc}:\n{log}"
    assert re.search(r"broker\.id|/brokers/ids/1", log, re.I) and \
        re.search(r"already|exists|registered|in use", log, re.I), \
        f"no clear message about broker.id 1 being registered:\n{log}"
    c.wait_registered([1, 2], timeout=20)
    c.broker(1).assert_alive()


@pytest.mark.timeout(60)
def test_unreachable_zookeeper_fails_startup_in_bounded_time(broker_factory):
    """With nothing at zookeeper.connect the broker gives up after
    zookeeper.connection.timeout.ms (as Kafka does) and exits non-zero with a
    message about ZooKeeper."""
    b = broker_factory({"zookeeper.connect": f"127.0.0.1:{free_port()}/odradek",
                        "zookeeper.connection.timeout.ms": 3000,
                        "zookeeper.session.timeout.ms": 6000}, start=False)
    rc = start_expect_exit(b, 25)
    log = _own_output(b)
    assert rc != 0, f"exit code {rc}:\n{log}"
    assert re.search(r"zookeeper", log, re.I) and \
        re.search(r"time(d)? ?out|connect|reach|refused", log, re.I), \
        f"no clear message about ZooKeeper:\n{log}"
