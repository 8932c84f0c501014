"""Leader elections on request and refused partition moves, on three brokers
(ZooKeeper): ElectLeaders (KIP-460) PREFERRED and UNCLEAN through kafka-python's
KafkaAdminClient and confluent-kafka's AdminClient, the ZooKeeper-era
``/admin/preferred_replica_election`` znode written with kazoo, and bad
AlterPartitionReassignments input answered with Kafka's error codes while
nothing moves.  The data moves themselves: test_reassignment.py.

One cluster for the module (``auto.leader.rebalance.enable=false``, so only a
request moves a leader back); every test makes its own topics and starts by
bringing all three brokers back.  Requests a client will not send (an empty
replica list, a request to a broker that is not the controller, a null
partition list) are framed with kafka-python's protocol classes and sent on a
raw socket to exactly one broker.
"""

from __future__ import annotations

import json
import uuid

import pytest

import kclients
from cluster import Cluster, poll, raw_call
from kclients import Rec

pytestmark = pytest.mark.cluster

# Kafka's error codes.
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_REPLICATION_FACTOR = 38
INVALID_REPLICA_ASSIGNMENT = 39
NOT_CONTROLLER = 41
PREFERRED_LEADER_NOT_AVAILABLE = 80
ELIGIBLE_LEADERS_NOT_AVAILABLE = 83
ELECTION_NOT_NEEDED = 84
NO_REASSIGNMENT_IN_PROGRESS = 85

PREFERRED, UNCLEAN = 0, 1


# ------------------------------------------------------------ fixtures ----

@pytest.fixture(scope="module")
def _elect_cluster(zookeeper, tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("elect"), zookeeper, 3,
                overrides={"auto.leader.rebalance.enable": "false"})
    c.start()
    yield c
    c.close()


@pytest.fixture
def ec(_elect_cluster) -> Cluster:
    """The module's cluster with brokers 1-3 running and registered (a test
    before may have left one stopped).  Its failure_sections go into reports."""
    c = _elect_cluster
    for b in c.brokers:
        if b.alive() and b.suspended:
            b.resume()
        if not b.alive():
            b.start()
    c.wait_registered([1, 2, 3], timeout=40)
    return c


# ------------------------------------------------------------- helpers ----

def _topic(prefix="el"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_assigned(c: Cluster, assignment: list, config: dict | None = None) -> str:
    """A topic with an explicit replica assignment (preferred replica first),
    once every live broker shows a full ISR led by the preferred replicas."""
    from confluent_kafka.admin import AdminClient, NewTopic

    name = _topic()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    futs = admin.create_topics([NewTopic(name, num_partitions=len(assignment),
                                         replica_assignment=assignment, config=config or {})],
                               operation_timeout=15, request_timeout=20)
    futs[name].result(timeout=30)
    c.wait_isr_full(name, timeout=30)
    want = {p: r[0] for p, r in enumerate(assignment)}
    assert c.leaders(name) == want, "a new topic is led by its preferred replicas"
    return name


def leader_everywhere(c: Cluster, topic: str, p: int, want: int, timeout: float = 20.0,
                      isr: list | None = None):
    """Until every live broker's Metadata names ``want`` as the leader of
    topic-p (and, if given, ``isr`` as its ISR, in any order)."""
    def cond():
        seen = {i: (v.topics[topic].partitions[p].leader, sorted(v.topics[topic].partitions[p].isr))
                for i, v in c.views([topic]).items()}
        ok = all(lead == want and (isr is None or got_isr == sorted(isr))
                 for lead, got_isr in seen.values())
        if not ok:
            raise AssertionError(f"(leader, isr) of {topic}-{p} per broker: {seen}")
        return seen
    return poll(cond, timeout, f"leader {want} (isr {isr}) of {topic}-{p} on every live broker")


def take_leadership_away(c: Cluster, topic: str, p: int, preferred: int):
    """Stop the preferred replica cleanly, wait until another replica leads, start
    it again and wait until it is back in the ISR.  With automatic rebalancing off,
    it stays a follower."""
    victim = c.broker(preferred)
    victim.stop()
    new = c.leader(topic, p, exclude=(preferred,), timeout=30)
    victim.start()
    c.wait_registered([1, 2, 3], timeout=30)
    c.wait_isr_full(topic, timeout=40)
    leader_everywhere(c, topic, p, new)
    return new


def kp_admin(c: Cluster):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=c.bootstrap, request_timeout_ms=20000,
                            client_id="elections-test")


def cf_admin(c: Cluster):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": c.bootstrap, "socket.timeout.ms": 20000})


def kp_results(resp) -> dict:
    """(topic, partition) -> error code of a kafka-python ElectLeadersResponse."""
    return {(t.topic, r.partition_id): r.error_code
            for t in resp.replica_election_results for r in t.partition_result}


def cf_code(v) -> int:
    """confluent's per-partition result: None, a KafkaError or a KafkaException."""
    if v is None:
        return NONE
    if hasattr(v, "code"):
        return v.code()
    return v.args[0].code()


def cf_elect(c: Cluster, kind: int, tps) -> dict:
    """confluent AdminClient.elect_leaders: (topic, partition) -> error code."""
    from confluent_kafka import ElectionType, TopicPartition

    et = ElectionType.PREFERRED if kind == PREFERRED else ElectionType.UNCLEAN
    parts = None if tps is None else [TopicPartition(t, p) for t, p in tps]
    # No request_timeout / operation_timeout: confluent-kafka 2.16's elect_leaders
    # raises SystemError on either keyword (its argument format string is wrong);
    # both default to socket.timeout.ms.
    admin = cf_admin(c)  # kept referenced: a collected client fails its futures (_DESTROY)
    res = admin.elect_leaders(et, parts).result(timeout=40)
    return {(tp.topic, tp.partition): cf_code(v) for tp, v in res.items()}


def raw(c: Cluster, broker_id: int, request, version: int, response_cls, timeout: float = 20.0):
    """One request to exactly this broker (``cluster.raw_call``)."""
    return raw_call(c.broker(broker_id), request, version, response_cls, timeout)


def raw_elect(c: Cluster, broker_id: int, kind: int, topic_partitions, version: int = 2):
    """ElectLeaders to one broker; ``topic_partitions`` None (every partition) or
    {topic: [partitions]}."""
    from kafka.protocol.admin import ElectLeadersRequest, ElectLeadersResponse

    tps = None if topic_partitions is None else [
        ElectLeadersRequest.TopicPartitions(topic=t, partitions=list(ps))
        for t, ps in topic_partitions.items()]
    req = ElectLeadersRequest(election_type=kind, topic_partitions=tps, timeout_ms=15000)
    return raw(c, broker_id, req, version, ElectLeadersResponse)


def raw_alter(c: Cluster, broker_id: int, moves: dict, version: int = 0,
              allow_rf_change: bool = True):
    """AlterPartitionReassignments to one broker: ``moves`` {(topic, p): replicas
    or None}, sent as given (an empty list too).  Returns (top-level error,
    {(topic, p): error code})."""
    from kafka.protocol.admin import (AlterPartitionReassignmentsRequest as Req,
                                      AlterPartitionReassignmentsResponse as Resp)

    by_topic: dict = {}
    for (t, p), replicas in moves.items():
        by_topic.setdefault(t, []).append(
            Req.ReassignableTopic.ReassignablePartition(partition_index=p, replicas=replicas))
    req = Req(timeout_ms=15000, allow_replication_factor_change=allow_rf_change,
              topics=[Req.ReassignableTopic(name=t, partitions=ps) for t, ps in by_topic.items()])
    resp = raw(c, broker_id, req, version, Resp)
    return resp.error_code, {(t.name, p.partition_index): p.error_code
                             for t in resp.responses for p in t.partitions}


def raw_list_reassignments(c: Cluster, broker_id: int):
    """ListPartitionReassignments (every partition) to one broker: (error, topics)."""
    from kafka.protocol.admin import (ListPartitionReassignmentsRequest as Req,
                                      ListPartitionReassignmentsResponse as Resp)

    resp = raw(c, broker_id, Req(timeout_ms=15000, topics=None), 0, Resp)
    return resp.error_code, [(t.name, [(p.partition_index, list(p.replicas)) for p in t.partitions])
                             for t in resp.topics]


def not_preferred(c: Cluster, via: int) -> dict:
    """(topic, partition) -> (leader, preferred, isr) of every partition, in
    broker ``via``'s Metadata, whose leader is not its preferred replica."""
    out = {}
    for name, t in c.metadata(via).topics.items():
        for p, pv in t.partitions.items():
            if pv.replicas and pv.leader != pv.replicas[0]:
                out[(name, p)] = (pv.leader, pv.replicas[0], sorted(pv.isr))
    return out


def zk_client(c: Cluster):
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=c.zk.connect(c.chroot), timeout=10)
    zk.start(timeout=15)
    return zk


# --------------------------------------------------------------- tests ----

@pytest.mark.timeout(120)
def test_preferred_election_through_the_api(ec):
    """PREFERRED through kafka-python and confluent-kafka: the preferred replica
    leads again on every broker; a second election is ELECTION_NOT_NEEDED; an
    unknown topic or partition UNKNOWN_TOPIC_OR_PARTITION; the preferred replica
    stopped: PREFERRED_LEADER_NOT_AVAILABLE; a null partition list answers only
    the partitions that needed an election; a broker that is not the controller
    answers NOT_CONTROLLER."""
    c = ec
    # Partitions 0 and 1 prefer broker 1, partition 2 broker 2.
    topic = create_assigned(c, [[1, 2, 3], [1, 3, 2], [2, 3, 1]])
    take_leadership_away(c, topic, 0, preferred=1)
    stand_in = {p: c.partition(topic, p).leader for p in (0, 1)}
    assert 1 not in stand_in.values(), stand_in
    leader_everywhere(c, topic, 2, 2)

    # kafka-python: partition 0.
    admin = kp_admin(c)
    try:
        got = kp_results(admin.elect_leaders(PREFERRED, {topic: [0]}, timeout_ms=15000,
                                             raise_errors=False))
        assert got == {(topic, 0): NONE}
        # The answer waits until the new leader shows in the controller's metadata.
        ctrl = c.controller()
        assert c.partition(topic, 0, via=ctrl).leader == 1
        leader_everywhere(c, topic, 0, 1, isr=[1, 2, 3])
        leader_everywhere(c, topic, 1, stand_in[1])  # only the partition asked for
        got = kp_results(admin.elect_leaders(PREFERRED, {topic: [0, 2]}, timeout_ms=15000,
                                             raise_errors=False))
        assert got == {(topic, 0): ELECTION_NOT_NEEDED, (topic, 2): ELECTION_NOT_NEEDED}
        # v0 (no election type: preferred) and v1 (top-level error) say the same.
        assert kp_results(raw_elect(c, ctrl, PREFERRED, {topic: [0]}, version=0)) == \
            {(topic, 0): ELECTION_NOT_NEEDED}
        r = raw_elect(c, ctrl, PREFERRED, {topic: [0]}, version=1)
        assert (r.error_code, kp_results(r)) == (NONE, {(topic, 0): ELECTION_NOT_NEEDED})
        missing = _topic("missing")
        got = kp_results(admin.elect_leaders(PREFERRED, {missing: [0], topic: [7]},
                                             timeout_ms=15000, raise_errors=False))
        assert got == {(missing, 0): UNKNOWN_TOPIC_OR_PARTITION,
                       (topic, 7): UNKNOWN_TOPIC_OR_PARTITION}
    finally:
        admin.close()

    # confluent-kafka: partition 1.
    assert cf_elect(c, PREFERRED, [(topic, 1)]) == {(topic, 1): NONE}
    assert c.partition(topic, 1, via=c.controller()).leader == 1
    leader_everywhere(c, topic, 1, 1, isr=[1, 2, 3])
    assert cf_elect(c, PREFERRED, [(topic, 1), (topic, 2)]) == {
        (topic, 1): ELECTION_NOT_NEEDED, (topic, 2): ELECTION_NOT_NEEDED}
    missing = _topic("missing")
    assert cf_elect(c, PREFERRED, [(missing, 0), (topic, 9)]) == {
        (missing, 0): UNKNOWN_TOPIC_OR_PARTITION, (topic, 9): UNKNOWN_TOPIC_OR_PARTITION}

    # Not the controller: NOT_CONTROLLER (v1+: top level; v0: each named partition).
    ctrl = c.controller()
    other = next(i for i in (1, 2, 3) if i != ctrl)
    r = raw_elect(c, other, PREFERRED, {topic: [0]}, version=2)
    assert r.error_code == NOT_CONTROLLER
    r = raw_elect(c, other, PREFERRED, {topic: [0]}, version=0)
    assert kp_results(r) == {(topic, 0): NOT_CONTROLLER}

    # The preferred replica stopped (out of the ISR): PREFERRED_LEADER_NOT_AVAILABLE,
    # from both clients; nothing changes.
    c.broker(1).stop()
    c.wait_registered([2, 3], timeout=30)
    lead = {p: c.leader(topic, p, exclude=(1,)) for p in (0, 1)}
    poll(lambda: all(1 not in v.topics[topic].partitions[p].isr
                     for v in c.views([topic]).values() for p in (0, 1)),
         20, "broker 1 out of the ISRs")
    assert cf_elect(c, PREFERRED, [(topic, 0)]) == {(topic, 0): PREFERRED_LEADER_NOT_AVAILABLE}
    admin = kp_admin(c)
    try:
        got = kp_results(admin.elect_leaders(PREFERRED, {topic: [1]}, timeout_ms=15000,
                                             raise_errors=False))
    finally:
        admin.close()
    assert got == {(topic, 1): PREFERRED_LEADER_NOT_AVAILABLE}
    for p in (0, 1):
        leader_everywhere(c, topic, p, lead[p])

    # Null partition list with the preferred replica down: exactly the partitions
    # not led by their preferred replica are answered, partitions 0 and 1 with
    # PREFERRED_LEADER_NOT_AVAILABLE; partition 2 (its preferred leads) is not.
    ctrl = c.controller()
    before = not_preferred(c, ctrl)
    assert {(topic, 0), (topic, 1)} <= set(before) and (topic, 2) not in before, before
    r = raw_elect(c, ctrl, PREFERRED, None, version=2)
    assert r.error_code == NONE
    got = kp_results(r)
    assert set(got) == set(before), f"answered {got}, not led by the preferred replica: {before}"
    for tp, (leader, preferred, isr) in before.items():
        want = NONE if preferred in isr and preferred in c.alive_ids() \
            else PREFERRED_LEADER_NOT_AVAILABLE
        assert got[tp] == want, f"{tp}: leader {leader} preferred {preferred} isr {isr}: {got[tp]}"
    assert got[(topic, 0)] == got[(topic, 1)] == PREFERRED_LEADER_NOT_AVAILABLE

    # Broker 1 back in the ISRs: confluent with a null list elects it; partitions
    # already led by their preferred replica are left out of the answer.
    c.broker(1).start()
    c.wait_registered([1, 2, 3], timeout=30)
    c.wait_isr_full(topic, timeout=40)
    for p in (0, 1):
        leader_everywhere(c, topic, p, lead[p])
    before = not_preferred(c, c.controller())
    assert {(topic, 0), (topic, 1)} <= set(before) and (topic, 2) not in before, before
    got = cf_elect(c, PREFERRED, None)
    assert set(got) == set(before), f"answered {got}, not led by the preferred replica: {before}"
    assert got[(topic, 0)] == got[(topic, 1)] == NONE
    for p, want in ((0, 1), (1, 1), (2, 2)):
        leader_everywhere(c, topic, p, want, isr=[1, 2, 3])
    # Everything is led by its preferred replica now: an empty answer.
    poll(lambda: not not_preferred(c, c.controller()), 20, "every partition preferred-led")
    assert cf_elect(c, PREFERRED, None) == {}


@pytest.mark.timeout(120)
def test_unclean_election_through_the_api(ec):
    """A partition whose only ISR member is dead stays offline (unclean election
    disabled) when an out-of-sync replica returns; UNCLEAN elects that replica
    (ISR = itself), the records it never got are gone, and the partition serves
    produce and consume again.  UNCLEAN with a live leader: ELECTION_NOT_NEEDED;
    nothing eligible: ELIGIBLE_LEADERS_NOT_AVAILABLE."""
    c = ec
    topic = create_assigned(c, [[1, 2]], config={"unclean.leader.election.enable": "false",
                                                  "min.insync.replicas": "1"})
    leader, follower = c.broker(1), c.broker(2)

    # UNCLEAN with a live leader: nothing to do (both clients).
    assert cf_elect(c, UNCLEAN, [(topic, 0)]) == {(topic, 0): ELECTION_NOT_NEEDED}
    admin = kp_admin(c)
    try:
        got = kp_results(admin.elect_leaders(UNCLEAN, {topic: [0]}, timeout_ms=15000,
                                             raise_errors=False))
    finally:
        admin.close()
    assert got == {(topic, 0): ELECTION_NOT_NEEDED}
    leader_everywhere(c, topic, 0, 1, isr=[1, 2])

    kept = [Rec(value=f"kept-{i}".encode(), partition=0) for i in range(10)]
    kclients.produce_confluent(c.bootstrap, topic, kept, acks="all", timeout=30)

    # The follower stops; the ISR shrinks to the leader, which takes more records.
    follower.stop()
    leader_everywhere(c, topic, 0, 1, isr=[1])
    lost = [Rec(value=f"lost-{i}".encode(), partition=0) for i in range(5)]
    kclients.produce_confluent(leader.bootstrap, topic, lost, acks="all", timeout=30)

    # The leader dies: offline.  No replica alive: ELIGIBLE_LEADERS_NOT_AVAILABLE.
    leader.kill9()
    c.wait_registered([3], timeout=30)
    leader_everywhere(c, topic, 0, -1)
    assert cf_elect(c, UNCLEAN, [(topic, 0)]) == {(topic, 0): ELIGIBLE_LEADERS_NOT_AVAILABLE}
    leader_everywhere(c, topic, 0, -1)

    # The old follower returns: still offline (unclean election is disabled).
    follower.start()
    c.wait_registered([2, 3], timeout=30)
    seen = leader_everywhere(c, topic, 0, -1)
    assert all(isr == [1] for _, isr in seen.values()), seen

    # UNCLEAN through kafka-python elects the out-of-sync replica, alone in the ISR.
    admin = kp_admin(c)
    try:
        got = kp_results(admin.elect_leaders(UNCLEAN, {topic: [0]}, timeout_ms=15000,
                                             raise_errors=False))
    finally:
        admin.close()
    assert got == {(topic, 0): NONE}
    assert c.partition(topic, 0, via=c.controller()).leader == 2
    leader_everywhere(c, topic, 0, 2, isr=[2])
    assert cf_elect(c, UNCLEAN, [(topic, 0)]) == {(topic, 0): ELECTION_NOT_NEEDED}

    # It serves again: what it had, then new records; the 5 it never got are lost.
    after = [Rec(value=f"after-{i}".encode(), partition=0) for i in range(5)]
    kclients.produce_confluent(c.bootstrap_without(1), topic, after, acks="all", timeout=30)
    got = kclients.consume("kafka-python", c.bootstrap_without(1), topic, 15, partition=0,
                           timeout=30)
    kclients.assert_same_records(got, kept + after, check_keys=False)

    # The old leader returns as a follower of the new one and catches up.
    leader.start()
    c.wait_registered([1, 2, 3], timeout=30)
    leader_everywhere(c, topic, 0, 2, isr=[1, 2], timeout=40)


@pytest.mark.timeout(90)
def test_preferred_replica_election_znode(ec):
    """``/admin/preferred_replica_election`` in Kafka's JSON, written with kazoo
    as kafka-preferred-replica-election.sh did: the preferred replica leads again
    on every broker, the controller deletes the znode, and partitions already
    led by their preferred replica (or unknown ones) do not stop it."""
    c = ec
    topic = create_assigned(c, [[3, 1, 2], [1, 2, 3]])
    take_leadership_away(c, topic, 0, preferred=3)

    zk = zk_client(c)
    try:
        path = "/admin/preferred_replica_election"
        assert zk.exists(path) is None
        body = {"version": 1, "partitions": [{"topic": topic, "partition": 0},
                                             {"topic": topic, "partition": 1},
                                             {"topic": _topic("missing"), "partition": 0}]}
        zk.create(path, json.dumps(body).encode(), makepath=True)
        leader_everywhere(c, topic, 0, 3, isr=[1, 2, 3], timeout=30)
        leader_everywhere(c, topic, 1, 1, isr=[1, 2, 3])
        poll(lambda: zk.exists(path) is None, 20, f"{path} deleted by the controller")
    finally:
        zk.stop()
        zk.close()


@pytest.mark.timeout(90)
def test_bad_reassignment_input_moves_nothing(ec):
    """AlterPartitionReassignments refused with Kafka's codes: a broker that does
    not exist or is not alive, duplicate replicas, an empty list, a negative id
    → INVALID_REPLICA_ASSIGNMENT; unknown topic or partition →
    UNKNOWN_TOPIC_OR_PARTITION; cancelling with no move in progress →
    NO_REASSIGNMENT_IN_PROGRESS; v1 with allow_replication_factor_change=false
    and another size → INVALID_REPLICATION_FACTOR; to a broker that is not the
    controller → NOT_CONTROLLER.  Afterwards every broker shows the same replicas
    and ListPartitionReassignments is empty."""
    from kafka import TopicPartition
    from kafka import errors as Errors

    c = ec
    topic = create_assigned(c, [[1, 2], [2, 3], [3, 1]])
    before = {p: (pv.leader, list(pv.replicas), sorted(pv.isr))
              for p, pv in c.wait_isr_full(topic).items()}

    # Nothing in progress before (empty listing, both ways).
    admin = kp_admin(c)
    try:
        assert admin.list_partition_reassignments() == {}
        missing = _topic("missing")
        tp = lambda p, t=topic: TopicPartition(t, p)  # noqa: E731
        got = admin.alter_partition_reassignments({
            tp(0): [1, 99],          # broker 99 does not exist
            tp(1): [2, 2],           # duplicate replicas
            tp(2): None,             # cancel: nothing in progress
            tp(7): [1, 2],           # partition beyond the topic's
            tp(0, missing): [1, 2],  # unknown topic
        })
        assert got == {
            tp(0): Errors.InvalidReplicationAssignmentError,
            tp(1): Errors.InvalidReplicationAssignmentError,
            tp(2): Errors.NoReassignmentInProgressError,
            tp(7): Errors.UnknownTopicOrPartitionError,
            tp(0, missing): Errors.UnknownTopicOrPartitionError,
        }, got
        with pytest.raises(ValueError):  # kafka-python refuses an empty list itself
            admin.alter_partition_reassignments({tp(0): []})
    finally:
        admin.close()

    ctrl = c.controller()
    # The requests kafka-python will not send, straight to the controller.
    err, got = raw_alter(c, ctrl, {(topic, 0): [], (topic, 1): [-1, 2], (topic, 2): [3, 1, 1]})
    assert err == NONE
    assert got == {(topic, 0): INVALID_REPLICA_ASSIGNMENT, (topic, 1): INVALID_REPLICA_ASSIGNMENT,
                   (topic, 2): INVALID_REPLICA_ASSIGNMENT}
    # v1 without allow_replication_factor_change: another size is refused.
    err, got = raw_alter(c, ctrl, {(topic, 0): [1, 2, 3], (topic, 1): [2]}, version=1,
                         allow_rf_change=False)
    assert err == NONE
    assert got == {(topic, 0): INVALID_REPLICATION_FACTOR, (topic, 1): INVALID_REPLICATION_FACTOR}

    # A broker that is registered no more: not alive.
    c.broker(3).stop()
    c.wait_registered([1, 2], timeout=30)
    ctrl = c.controller()
    err, got = raw_alter(c, ctrl, {(topic, 0): [1, 3]})
    assert (err, got) == (NONE, {(topic, 0): INVALID_REPLICA_ASSIGNMENT})
    c.broker(3).start()
    c.wait_registered([1, 2, 3], timeout=30)
    c.wait_isr_full(topic, timeout=40)

    # Not the controller: NOT_CONTROLLER, for a request that would be valid.
    ctrl = c.controller()
    other = next(i for i in (1, 2, 3) if i != ctrl)
    err, got = raw_alter(c, other, {(topic, 0): [2, 1]})
    assert err == NOT_CONTROLLER, (err, got)
    err, got = raw_alter(c, other, {(topic, 0): [2, 1]}, version=1)
    assert err == NOT_CONTROLLER, (err, got)
    assert raw_list_reassignments(c, other)[0] == NOT_CONTROLLER

    # Nothing moved: same replicas on every broker, nothing listed in progress.
    for i, v in c.views([topic]).items():
        now = {p: list(pv.replicas) for p, pv in v.topics[topic].partitions.items()}
        assert now == {p: r for p, (_, r, _) in before.items()}, f"via broker {i}: {now}"
    assert raw_list_reassignments(c, c.controller()) == (NONE, [])
    admin = kp_admin(c)
    try:
        assert admin.list_partition_reassignments() == {}
        assert admin.list_partition_reassignments({topic: [0, 1, 2]}) == {}
    finally:
        admin.close()
    for b in c.brokers:  # no replica was created anywhere it was not assigned
        for p, (_, replicas, _) in before.items():
            assert b.partition_dir(topic, p).exists() == (b.broker_id in replicas), \
                f"broker {b.broker_id}: {topic}-{p} dir, replicas {replicas}"
