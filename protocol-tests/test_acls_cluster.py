"""ACLs in cluster mode: two brokers on a real ZooKeeper keep them where Kafka's
AclAuthorizer does (``/kafka-acl/<Type>/<name>``,
``/kafka-acl-extended/prefixed/<Type>/<name>``, change notifications under
``/kafka-acl-changes`` and ``/kafka-acl-extended-changes``) and follow each
other's changes, and those written straight into ZooKeeper as Kafka's own tools
did.  Ports 25200 (ZooKeeper), 25201-25202 (brokers).

On PLAINTEXT every client is ``User:ANONYMOUS``, and so are the brokers'
own connections (replica fetchers need CLUSTER_ACTION on the cluster).  Test
clusters make that principal a super user (cluster.py), which would exempt
every PLAINTEXT client as well; so these brokers have no super user and run
with ``allow.everyone.if.no.acl.found=true`` and no ACL on the cluster, which
gives the fetchers their CLUSTER_ACTION, and the tests deny ``User:ANONYMOUS``
WRITE on topics."""

import json
import uuid

import pytest

import kclients
from cluster import poll, raw_call
from kclients import Rec

pytestmark = pytest.mark.cluster

ZK_PORT = 25200
BROKER_PORTS = {1: 25201, 2: 25202}
AUTHORIZER = "kafka.security.authorizer.AclAuthorizer"

TOPIC, LITERAL, PREFIXED = 2, 3, 4
ANY = 1
WRITE = 4
DENY, ALLOW = 2, 3
TOPIC_AUTHORIZATION_FAILED = 29


def _cluster(zk_factory, cluster_factory):
    zk = zk_factory(port=ZK_PORT)
    return cluster_factory(
        n=2, zk=zk,
        overrides={"authorizer.class.name": AUTHORIZER, "super.users": "",
                   "allow.everyone.if.no.acl.found": "true"},
        broker_kw=lambda i: {"port": BROKER_PORTS[i]})


def _topic(c, prefix: str, replicas: list) -> str:
    """One partition with this replica list (its first broker leads)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    fut = admin.create_topics([NewTopic(name, num_partitions=1, replica_assignment=[replicas])],
                              operation_timeout=15, request_timeout=20)
    fut[name].result(timeout=30)
    c.wait_isr_full(name, timeout=30)
    return name


def _produce_error(c, topic: str):
    """None when one record is written, else the delivery error's code."""
    r = kclients.produce("confluent", c.bootstrap, topic, [Rec(b"v", b"k")],
                         raise_errors=False, timeout=10)[0]
    return None if isinstance(r, tuple) else r.code()


def _wait_produce(c, topics: list, want, what: str):
    poll(lambda: all(_produce_error(c, t) == want for t in topics) or
         {t: _produce_error(c, t) for t in topics}, 30, what, interval=0.3)


def _binding(name, pattern, op, permission, principal="User:ANONYMOUS"):
    from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType,
                                       ResourcePatternType, ResourceType)

    return AclBinding(ResourceType.TOPIC, name, ResourcePatternType(pattern), principal, "*",
                      AclOperation(op), AclPermissionType(permission))


def _admin(broker):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": broker.bootstrap, "socket.timeout.ms": 10000})


def _described(broker) -> set:
    """Every topic ACL as one broker (exactly that one) describes it:
    {(name, pattern type, principal, operation, permission)}."""
    from kafka.protocol.admin import DescribeAclsRequest, DescribeAclsResponse

    req = DescribeAclsRequest(resource_type_filter=TOPIC, resource_name_filter=None,
                              pattern_type_filter=ANY, principal_filter=None, host_filter=None,
                              operation=ANY, permission_type=ANY)
    r = raw_call(broker, req, 1, DescribeAclsResponse)
    assert r.error_code == 0, r
    return {(res.resource_name, res.pattern_type, a.principal, a.operation, a.permission_type)
            for res in r.resources for a in res.acls}


def _wait_described(c, want: set, what: str):
    poll(lambda: all(_described(b) == want for b in c.brokers) or
         {b.broker_id: _described(b) for b in c.brokers}, 30, what, interval=0.2)


def _kazoo(c):
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=c.zk.connect(c.chroot), timeout=10)
    zk.start(timeout=15)
    return zk


def _json(zk, path):
    data, _ = zk.get(path)
    return json.loads(data)


@pytest.mark.timeout(120)
def test_acls_live_in_zookeeper_and_every_broker_follows(zk_factory, cluster_factory):
    c = _cluster(zk_factory, cluster_factory)
    led_by_2 = _topic(c, "acl-", [2, 1])
    led_by_1 = _topic(c, "acl-", [1, 2])
    other = _topic(c, "free-", [1, 2])
    topics = [led_by_2, led_by_1]
    for t in topics + [other]:
        assert _produce_error(c, t) is None

    # Created through broker 1: a prefixed DENY and a literal ALLOW.
    deny = _binding("acl-", PREFIXED, WRITE, DENY)
    # Any ACL on a topic ends "no ACL found" for it: ANONYMOUS keeps writing by this ALLOW.
    allow = _binding(other, LITERAL, WRITE, ALLOW)
    admin1 = _admin(c.broker(1))  # held: a collected client fails its futures
    for f in admin1.create_acls([deny, allow], request_timeout=20).values():
        f.result(timeout=30)
    # Each broker leads one of the topics: both refuse the write, so both know the ACL.
    _wait_produce(c, topics, TOPIC_AUTHORIZATION_FAILED, "the prefixed DENY on both brokers")
    assert _produce_error(c, other) is None
    both = {("acl-", PREFIXED, "User:ANONYMOUS", WRITE, DENY),
            (other, LITERAL, "User:ANONYMOUS", WRITE, ALLOW)}
    _wait_described(c, both, "both ACLs described by each broker")

    zk = _kazoo(c)
    try:
        # Kafka's layout and JSON.
        assert _json(zk, "/kafka-acl-extended/prefixed/Topic/acl-") == {
            "version": 1, "acls": [{"principal": "User:ANONYMOUS", "permissionType": "Deny",
                                    "operation": "Write", "host": "*"}]}
        assert _json(zk, f"/kafka-acl/Topic/{other}") == {
            "version": 1, "acls": [{"principal": "User:ANONYMOUS", "permissionType": "Allow",
                                    "operation": "Write", "host": "*"}]}
        for d in ("Topic", "Group", "Cluster", "TransactionalId", "DelegationToken"):
            assert zk.exists(f"/kafka-acl/{d}") and zk.exists(f"/kafka-acl-extended/prefixed/{d}")
        extended = [_json(zk, f"/kafka-acl-extended-changes/{n}")
                    for n in zk.get_children("/kafka-acl-extended-changes")]
        assert {"version": 1, "resourceType": "TOPIC", "name": "acl-",
                "patternType": "PREFIXED"} in extended, extended
        literal = [zk.get(f"/kafka-acl-changes/{n}")[0]
                   for n in zk.get_children("/kafka-acl-changes")]
        assert f"TOPIC:{other}".encode() in literal, literal
        assert all(n.startswith("acl_changes_") for n in zk.get_children("/kafka-acl-changes"))

        # Deleted through broker 2: the znode goes, both brokers let writes through again.
        from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType, \
            ResourcePatternType, ResourceType
        flt = AclBindingFilter(ResourceType.TOPIC, "acl-", ResourcePatternType.PREFIXED, None,
                               None, AclOperation.ANY, AclPermissionType.ANY)
        admin2 = _admin(c.broker(2))
        (fut,) = admin2.delete_acls([flt], request_timeout=20).values()
        assert [b.name for b in fut.result(timeout=30)] == ["acl-"]
        assert zk.exists("/kafka-acl-extended/prefixed/Topic/acl-") is None
        _wait_produce(c, topics, None, "writes allowed on both brokers after the delete")
        _wait_described(c, {(other, LITERAL, "User:ANONYMOUS", WRITE, ALLOW)}, "the delete everywhere")

        # As Kafka's tools write it: the znode, then a notification (Kafka 3's form).
        zk.create(f"/kafka-acl/Topic/{led_by_2}", json.dumps(
            {"version": 1, "acls": [{"principal": "User:ANONYMOUS", "permissionType": "Deny",
                                     "operation": "Write", "host": "*"}]}).encode())
        zk.create("/kafka-acl-changes/acl_changes_", f"TOPIC:{led_by_2}".encode(), sequence=True)
        # And a prefixed one with its JSON event.
        zk.create("/kafka-acl-extended/prefixed/Topic/free-", json.dumps(
            {"version": 1, "acls": [{"principal": "User:*", "permissionType": "Deny",
                                     "operation": "Write", "host": "*"}]}).encode())
        zk.create("/kafka-acl-extended-changes/acl_changes_", json.dumps(
            {"version": 1, "resourceType": "TOPIC", "name": "free-",
             "patternType": "PREFIXED"}).encode(), sequence=True)
        from_tools = {(other, LITERAL, "User:ANONYMOUS", WRITE, ALLOW),
                      (led_by_2, LITERAL, "User:ANONYMOUS", WRITE, DENY),
                      ("free-", PREFIXED, "User:*", WRITE, DENY)}
        _wait_described(c, from_tools, "ACLs written with kazoo, on both brokers")
        _wait_produce(c, [led_by_2, other], TOPIC_AUTHORIZATION_FAILED,
                      "the kazoo-written DENYs enforced")
        assert _produce_error(c, led_by_1) is None
    finally:
        zk.stop()
        zk.close()

    # ACLs survive a restart: broker 2 reads them all from ZooKeeper at start.
    c.broker(2).restart()
    c.wait_registered(timeout=30)
    assert _described(c.broker(2)) == from_tools
    _wait_produce(c, [led_by_2], TOPIC_AUTHORIZATION_FAILED, "the DENY after a restart")


@pytest.mark.timeout(60)
def test_brokers_as_super_users_replicate_under_an_authorizer(zk_factory, cluster_factory):
    """The test clusters' default: the inter-broker principal a super user, nothing
    allowed when no ACL is found; replication (CLUSTER_ACTION) works."""
    zk = zk_factory(port=ZK_PORT)
    c = cluster_factory(n=2, zk=zk, overrides={"authorizer.class.name": AUTHORIZER},
                        broker_kw=lambda i: {"port": BROKER_PORTS[i]})
    t = _topic(c, "rep-", [2, 1])
    assert _produce_error(c, t) is None
    # The follower (broker 1) has the record in its own log: its fetches were authorized.
    poll(lambda: sum(f.stat().st_size for f in c.broker(1).partition_dir(t).glob("*.log")),
         30, "the record replicated to broker 1")
    got = kclients.consume("confluent", c.bootstrap, t, 1)
    assert [r.value for r in got] == [b"v"]
