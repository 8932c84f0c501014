"""ACLs through kafka-python's KafkaAdminClient (create_acls / describe_acls /
delete_acls) against a broker with Kafka's AclAuthorizer, and their effect on a
confluent-kafka producer."""

import pytest

import kclients
from kclients import Rec, create_topic, unique_topic

AUTHORIZER = "kafka.security.authorizer.AclAuthorizer"


def _admin(bs):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=15000)


def _acl(name, pattern, op, permission, principal="User:alice"):
    from kafka.admin import ACL, ResourcePattern, ResourceType

    return ACL(principal=principal, host="*", operation=op, permission_type=permission,
               resource_pattern=ResourcePattern(ResourceType.TOPIC, name, pattern))


def _topic_filter(name=None, pattern=None):
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType,
                             ACLResourcePatternType, ResourcePatternFilter, ResourceType)

    return ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                     permission_type=ACLPermissionType.ANY,
                     resource_pattern=ResourcePatternFilter(
                         ResourceType.TOPIC, name, pattern or ACLResourcePatternType.ANY))


def test_kafka_python_admin_round_trips_acls(broker_factory):
    from kafka.admin import ACLOperation, ACLPermissionType, ACLResourcePatternType
    from kafka.errors import NoError

    b = broker_factory({"authorizer.class.name": AUTHORIZER, "super.users": "User:ANONYMOUS"})
    admin = _admin(b.bootstrap)
    try:
        prefixed = _acl("pay", ACLResourcePatternType.PREFIXED, ACLOperation.READ,
                        ACLPermissionType.ALLOW)
        literal = _acl("orders", ACLResourcePatternType.LITERAL, ACLOperation.WRITE,
                       ACLPermissionType.DENY, principal="User:*")
        created = admin.create_acls([prefixed, literal])
        assert created["failed"] == [], created
        assert len(created["succeeded"]) == 2

        acls, error = admin.describe_acls(_topic_filter())
        assert error is NoError
        assert {(a.resource_pattern.resource_name, a.resource_pattern.pattern_type,
                 a.operation, a.permission_type, a.principal) for a in acls} == {
            ("pay", ACLResourcePatternType.PREFIXED, ACLOperation.READ, ACLPermissionType.ALLOW,
             "User:alice"),
            ("orders", ACLResourcePatternType.LITERAL, ACLOperation.WRITE, ACLPermissionType.DENY,
             "User:*"),
        }
        # MATCH: the patterns that cover the name "payments".
        acls, _ = admin.describe_acls(_topic_filter("payments", ACLResourcePatternType.MATCH))
        assert [a.resource_pattern.resource_name for a in acls] == ["pay"]

        deleted = admin.delete_acls([_topic_filter("orders")])
        (_, matched, error), = deleted
        assert error is NoError
        assert [a.resource_pattern.resource_name for a in matched] == ["orders"]
        acls, _ = admin.describe_acls(_topic_filter())
        assert [a.resource_pattern.resource_name for a in acls] == ["pay"]
    finally:
        admin.close()


def test_without_an_authorizer_acl_apis_are_disabled(broker):
    from kafka.errors import SecurityDisabledError

    admin = _admin(broker.bootstrap)
    try:
        with pytest.raises(SecurityDisabledError):
            admin.describe_acls(_topic_filter())
    finally:
        admin.close()


def test_a_deny_stops_a_real_producer(broker_factory):
    from confluent_kafka import KafkaError
    from kafka.admin import ACLOperation, ACLPermissionType, ACLResourcePatternType

    b = broker_factory({"authorizer.class.name": AUTHORIZER,
                        "allow.everyone.if.no.acl.found": "true"})
    topic = unique_topic("acl")
    create_topic(b.bootstrap, topic)
    kclients.produce("confluent", b.bootstrap, topic, [Rec(b"before", b"k")])
    admin = _admin(b.bootstrap)
    try:
        deny = _acl(topic, ACLResourcePatternType.LITERAL, ACLOperation.WRITE,
                    ACLPermissionType.DENY, principal="User:ANONYMOUS")
        assert admin.create_acls([deny])["failed"] == []
    finally:
        admin.close()
    results = kclients.produce("confluent", b.bootstrap, topic, [Rec(b"after", b"k")],
                               raise_errors=False)
    assert len(results) == 1
    assert not isinstance(results[0], tuple), results
    assert results[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, results
