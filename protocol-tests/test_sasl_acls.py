"""Authenticated users under Kafka's AclAuthorizer (port 24820): one broker whose only
listener is SASL_PLAINTEXT, PLAIN users admin (a super user), alice and bob from the JAAS line,
SCRAM users added and removed through AlterUserScramCredentials. ACLs allow alice to create,
produce, consume (group join) and describe under a prefixed pattern, which also covers topics
created later; bob is refused each of those; admin needs no ACL. A SCRAM user added through the
admin API logs in without a restart, and once deleted no longer can."""

import time

import pytest

import kclients
from kclients import Rec

PORT = 24820
USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
JAAS = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="admin" password="admin-secret" '
        + " ".join(f'user_{u}="{p}"' for u, p in USERS.items()) + ";")
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
BOOTSTRAP = f"127.0.0.1:{PORT}"


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory):
    from brokers import BrokerFactory

    factory = BrokerFactory(tmp_path_factory.mktemp("saslacls"))
    listeners = f"SASL_PLAINTEXT://127.0.0.1:{PORT}"
    b = factory(overrides={
        "listeners": listeners,
        "advertised.listeners": listeners,
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": SCRAM_JAAS,
        "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
        "super.users": "User:admin",
        "offsets.topic.replication.factor": 1,
    }, port=PORT)
    yield b
    factory.close()


def _conf(user, mechanism="PLAIN", password=None):
    return {"security.protocol": "sasl_plaintext", "sasl.mechanism": mechanism,
            "sasl.username": user, "sasl.password": password or USERS[user]}


def _admin(user):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": BOOTSTRAP, "socket.timeout.ms": 10000,
                        **_conf(user)})


def _allow(principal, resource_type, name, pattern, operation):
    from confluent_kafka.admin import AclBinding, AclPermissionType

    return AclBinding(resource_type, name, pattern, principal, "*", operation,
                      AclPermissionType.ALLOW)


def _create_topic(user, name):
    """None, or the error code CreateTopics answered."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    admin = _admin(user)  # kept alive until the answer
    fut = admin.create_topics([NewTopic(name, 1, 1)], request_timeout=15)[name]
    try:
        fut.result(timeout=20)
        return None
    except KafkaException as e:
        return e.args[0].name()


def _listed(user):
    return set(_admin(user).list_topics(timeout=10).topics)


def _produce_fails(user, topic):
    out = kclients.produce_confluent(BOOTSTRAP, topic, [Rec(value=b"nope", key=None)],
                                     conf={**_conf(user), "message.timeout.ms": 5000},
                                     raise_errors=False, timeout=5)
    return [e.name() for e in out if not isinstance(e, tuple)]


def _group_consume(user, group, topic, n):
    """Joins `group` (subscribe) as `user`: the values read, or the first error."""
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  **_conf(user)})
    c.subscribe([topic])
    values = []
    try:
        deadline = time.monotonic() + 20
        while len(values) < n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error() is not None:
                return m.error()
            values.append(m.value())
        return values
    finally:
        c.close()


def test_acls_allow_one_user_and_refuse_another(acl_broker):
    from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

    prefixed = ResourcePatternType.PREFIXED
    acls = [_allow("User:alice", ResourceType.TOPIC, "alice-", prefixed, op)
            for op in (AclOperation.CREATE, AclOperation.WRITE, AclOperation.READ)]
    acls.append(_allow("User:alice", ResourceType.GROUP, "alice-", prefixed, AclOperation.READ))
    admin = _admin("admin")  # kept alive until the answers: destroying it fails the futures
    for fut in admin.create_acls(acls, request_timeout=15).values():
        fut.result(timeout=20)

    # The prefixed ACL covers a topic that did not exist when it was made.
    assert _create_topic("alice", "alice-orders") is None
    assert _create_topic("bob", "alice-other") == "TOPIC_AUTHORIZATION_FAILED"
    assert _create_topic("bob", "bobs") == "TOPIC_AUTHORIZATION_FAILED"
    assert "alice-orders" in _listed("alice"), "alice may describe (WRITE implies DESCRIBE)"
    assert "alice-orders" not in _listed("bob"), "bob sees nothing"

    recs = [Rec(value=f"a{i}".encode(), key=None) for i in range(5)]
    kclients.produce_confluent(BOOTSTRAP, "alice-orders", recs, conf=_conf("alice"))
    assert _group_consume("alice", "alice-readers", "alice-orders", 5) == [r.value for r in recs]

    assert _produce_fails("bob", "alice-orders") == ["TOPIC_AUTHORIZATION_FAILED"]
    refused = _group_consume("bob", "alice-readers", "alice-orders", 5)
    assert not isinstance(refused, list), f"bob read {refused}"
    assert refused.name() in ("GROUP_AUTHORIZATION_FAILED", "TOPIC_AUTHORIZATION_FAILED"), refused

    # The super user needs no ACL.
    more = [Rec(value=b"from admin", key=None)]
    kclients.produce_confluent(BOOTSTRAP, "alice-orders", more, conf=_conf("admin"))
    assert _create_topic("admin", "admins") is None


def test_a_scram_user_added_through_the_admin_api_logs_in_until_deleted(acl_broker):
    from confluent_kafka import KafkaError, Producer
    from confluent_kafka.admin import (ScramCredentialInfo, ScramMechanism,
                                       UserScramCredentialDeletion, UserScramCredentialUpsertion)

    admin = _admin("admin")
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096)
    admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion("carol", info, b"carol-secret")],
        request_timeout=15)["carol"].result(timeout=20)
    carol = _conf("carol", "SCRAM-SHA-256", "carol-secret")
    md = _admin_as(carol).list_topics(timeout=10)
    assert md.brokers, "carol is authenticated and answered"

    admin.alter_user_scram_credentials(
        [UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_256)],
        request_timeout=15)["carol"].result(timeout=20)
    errors = []
    p = Producer({"bootstrap.servers": BOOTSTRAP, "error_cb": errors.append, **carol})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any(
            e.code() == KafkaError._AUTHENTICATION for e in errors):
        p.poll(0.2)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors


def _admin_as(conf):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": BOOTSTRAP, "socket.timeout.ms": 10000, **conf})
