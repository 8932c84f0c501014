"""Admin APIs (CreateTopics, Metadata, DescribeConfigs, CreatePartitions,
DeleteTopics) through confluent_kafka.admin.AdminClient and kafka-python's
KafkaAdminClient, including Kafka's error codes for bad requests."""

import time

import pytest

import kclients
from kclients import Rec, assert_same_records, consume, create_topic, unique_topic, wait_for_topic

FUT_TIMEOUT = 20


# ------------------------------------------------------------ confluent ----

def _cf_admin(bs):
    return kclients.admin_client(bs)


def _cf_create(bs, name, partitions=1, rf=1, config=None, validate_only=False):
    from confluent_kafka.admin import NewTopic

    admin = _cf_admin(bs)
    futs = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=rf, config=config or {})],
        operation_timeout=10, request_timeout=15, validate_only=validate_only)
    return futs[name].result(timeout=FUT_TIMEOUT)


def _cf_error_code(fn):
    from confluent_kafka import KafkaException

    with pytest.raises(KafkaException) as ei:
        fn()
    return ei.value.args[0].code()


def _topic_names(bs):
    return set(_cf_admin(bs).list_topics(timeout=10).topics)


def _describe(bs, res):
    admin = _cf_admin(bs)
    return admin.describe_configs([res], request_timeout=15)[res].result(timeout=FUT_TIMEOUT)


def _cf_call(bs, method, arg, key, **kw):
    """admin.<method>([arg], **kw)[key].result(): the AdminClient handle must
    outlive its futures (a destroyed handle fails them with _DESTROY)."""
    admin = _cf_admin(bs)
    return getattr(admin, method)([arg], **kw)[key].result(timeout=FUT_TIMEOUT)


def _source(entry):
    from confluent_kafka.admin import ConfigSource

    s = entry.source
    return s if isinstance(s, ConfigSource) else ConfigSource(s)


def test_cf_create_with_partitions_and_configs(shared_broker):
    from confluent_kafka.admin import ConfigResource, ConfigSource, ResourceType

    bs = shared_broker.bootstrap
    name = unique_topic("adm")
    _cf_create(bs, name, partitions=3, config={"retention.ms": "123456",
                                               "cleanup.policy": "delete"})
    md = wait_for_topic(bs, name, 3)
    t = md.topics[name]
    assert sorted(t.partitions) == [0, 1, 2]
    for p in t.partitions.values():
        assert p.leader == 1
        assert list(p.replicas) == [1]
        assert list(p.isrs) == [1]
    assert name in _topic_names(bs)

    res = ConfigResource(ResourceType.TOPIC, name)
    cfg = _describe(bs, res)
    assert cfg["retention.ms"].value == "123456"
    assert _source(cfg["retention.ms"]) == ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert not cfg["retention.ms"].is_default
    assert cfg["cleanup.policy"].value == "delete"
    # unset: the broker's default, reported as such
    assert cfg["max.message.bytes"].value == "1048588"
    assert _source(cfg["max.message.bytes"]) == ConfigSource.DEFAULT_CONFIG
    assert cfg["message.timestamp.type"].value == "CreateTime"


def test_cf_describe_broker_config(shared_broker):
    from confluent_kafka.admin import ConfigResource, ConfigSource, ResourceType

    bs = shared_broker.bootstrap
    res = ConfigResource(ResourceType.BROKER, "1")
    cfg = _describe(bs, res)
    assert cfg["message.max.bytes"].value == "1048588"
    assert _source(cfg["message.max.bytes"]) == ConfigSource.DEFAULT_CONFIG
    assert cfg["log.dirs"].value == str(shared_broker.data_dir)
    assert _source(cfg["log.dirs"]) == ConfigSource.STATIC_BROKER_CONFIG
    assert cfg["auto.create.topics.enable"].value == "true"
    assert cfg["num.partitions"].value == "1"


def test_cf_metadata_brokers_and_cluster(shared_broker):
    bs = shared_broker.bootstrap
    md = _cf_admin(bs).list_topics(timeout=10)
    assert list(md.brokers) == [1]
    b = md.brokers[1]
    assert (b.host, b.port) == ("127.0.0.1", shared_broker.port)
    assert md.controller_id == 1
    assert md.cluster_id  # some non-empty cluster id


def test_cf_validate_only_creates_nothing(shared_broker):
    bs = shared_broker.bootstrap
    name = unique_topic("valid")
    _cf_create(bs, name, partitions=2, validate_only=True)
    time.sleep(0.5)
    assert name not in _topic_names(bs)
    # and a validate_only request for a bad topic still reports the error
    from confluent_kafka import KafkaError
    code = _cf_error_code(lambda: _cf_create(bs, unique_topic("valid"), rf=2, validate_only=True))
    assert code == KafkaError.INVALID_REPLICATION_FACTOR


def test_cf_topic_already_exists(shared_broker):
    from confluent_kafka import KafkaError

    bs = shared_broker.bootstrap
    name = create_topic(bs)
    assert _cf_error_code(lambda: _cf_create(bs, name)) == KafkaError.TOPIC_ALREADY_EXISTS


def test_cf_replication_factor_too_large(shared_broker):
    from confluent_kafka import KafkaError

    bs = shared_broker.bootstrap
    name = unique_topic("rf2")
    assert _cf_error_code(lambda: _cf_create(bs, name, rf=2)) == \
        KafkaError.INVALID_REPLICATION_FACTOR
    assert name not in _topic_names(bs)


def test_cf_invalid_requests(shared_broker):
    from confluent_kafka import KafkaError

    bs = shared_broker.bootstrap
    assert _cf_error_code(lambda: _cf_create(bs, unique_topic("p0"), partitions=0)) == \
        KafkaError.INVALID_PARTITIONS
    assert _cf_error_code(lambda: _cf_create(bs, "bad/name")) == KafkaError.TOPIC_EXCEPTION
    assert _cf_error_code(lambda: _cf_create(bs, "x" * 250)) == KafkaError.TOPIC_EXCEPTION
    assert _cf_error_code(lambda: _cf_create(bs, unique_topic("cfg"),
                                             config={"retention.ms": "not-a-number"})) == \
        KafkaError.INVALID_CONFIG


def test_cf_create_partitions(shared_broker):
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import NewPartitions

    bs = shared_broker.bootstrap
    name = create_topic(bs, partitions=2)
    kclients.produce_confluent(bs, name, [Rec(value=b"p0", partition=0)])
    _cf_call(bs, "create_partitions", NewPartitions(name, 5), name, operation_timeout=10,
             request_timeout=15)
    wait_for_topic(bs, name, 5)
    # new partition usable, old data untouched
    assert kclients.produce_kafka_python(bs, name, [Rec(value=b"p4", partition=4)]) == [(4, 0)]
    assert_same_records(consume("aiokafka", bs, name, 1, partition=4), [Rec(value=b"p4")],
                        check_keys=False)
    assert_same_records(consume("aiokafka", bs, name, 1, partition=0), [Rec(value=b"p0")],
                        check_keys=False)
    # shrinking is refused
    code = _cf_error_code(lambda: _cf_call(bs, "create_partitions", NewPartitions(name, 3), name,
                                           request_timeout=15))
    assert code == KafkaError.INVALID_PARTITIONS
    # unknown topic
    code = _cf_error_code(lambda: _cf_call(bs, "create_partitions",
                                           NewPartitions("no-such-topic-xyz", 3),
                                           "no-such-topic-xyz", request_timeout=15))
    assert code == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_cf_delete_topic_and_recreate(shared_broker):
    from confluent_kafka import KafkaError, Consumer, TopicPartition

    bs = shared_broker.bootstrap
    name = create_topic(bs)
    kclients.produce_confluent(bs, name, [Rec(value=f"{i}".encode()) for i in range(5)])
    _cf_call(bs, "delete_topics", name, name, operation_timeout=10, request_timeout=15)
    deadline = time.monotonic() + 10
    while name in _topic_names(bs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert name not in _topic_names(bs)
    # deleting again: unknown topic
    code = _cf_error_code(lambda: _cf_call(bs, "delete_topics", name, name, request_timeout=15))
    assert code == KafkaError.UNKNOWN_TOPIC_OR_PART
    # recreating gives an empty log starting at 0
    create_topic(bs, name)
    c = Consumer({"bootstrap.servers": bs, "group.id": "odradek-tests-no-group",
                  "enable.auto.commit": False})
    try:
        assert c.get_watermark_offsets(TopicPartition(name, 0), timeout=10) == (0, 0)
    finally:
        c.close()
    assert kclients.produce_confluent(bs, name, [Rec(value=b"new")]) == [(0, 0)]


def test_cf_authorized_operations_when_asked(shared_broker):
    """With no authorizer, Kafka reports every operation a resource supports when the client
    asks (librdkafka's admin tests check this); without asking, none are reported."""
    from confluent_kafka import Consumer, TopicCollection, TopicPartition
    from confluent_kafka.admin import AclOperation as Op

    bs = shared_broker.bootstrap
    name = create_topic(bs)
    admin = _cf_admin(bs)
    topic = admin.describe_topics(TopicCollection([name]), include_authorized_operations=True)
    ops = set(topic[name].result(timeout=FUT_TIMEOUT).authorized_operations)
    assert ops == {Op.READ, Op.WRITE, Op.CREATE, Op.DELETE, Op.ALTER, Op.DESCRIBE,
                   Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS}
    plain = admin.describe_topics(TopicCollection([name]))[name].result(timeout=FUT_TIMEOUT)
    assert not plain.authorized_operations
    cluster = admin.describe_cluster(include_authorized_operations=True).result(timeout=FUT_TIMEOUT)
    assert set(cluster.authorized_operations) == {
        Op.CREATE, Op.CLUSTER_ACTION, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS,
        Op.IDEMPOTENT_WRITE, Op.ALTER, Op.DESCRIBE}
    assert not admin.describe_cluster().result(timeout=FUT_TIMEOUT).authorized_operations
    group = f"ops-{name}"
    consumer = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(name, 0, 0)], asynchronous=False)
    finally:
        consumer.close()
    described = admin.describe_consumer_groups([group], include_authorized_operations=True)
    ops = set(described[group].result(timeout=FUT_TIMEOUT).authorized_operations)
    assert ops == {Op.READ, Op.DESCRIBE, Op.DELETE}


def test_deleted_topic_data_removed_from_disk(broker):
    bs = broker.bootstrap
    name = create_topic(bs)
    kclients.produce_confluent(bs, name, [Rec(value=b"x" * 1000) for _ in range(10)])
    assert broker.partition_dir(name).exists()
    _cf_call(bs, "delete_topics", name, name, operation_timeout=10, request_timeout=15)
    deadline = time.monotonic() + 15
    while broker.partition_dir(name).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not broker.partition_dir(name).exists()
    # and it stays deleted across a restart
    broker.restart()
    assert name not in _topic_names(bs)


def test_topics_and_configs_survive_restart(broker):
    from confluent_kafka.admin import ConfigResource, ResourceType

    bs = broker.bootstrap
    name = unique_topic("persist")
    _cf_create(bs, name, partitions=3, config={"retention.ms": "777777"})
    wait_for_topic(bs, name, 3)
    broker.restart()
    wait_for_topic(bs, name, 3)
    res = ConfigResource(ResourceType.TOPIC, name)
    cfg = _describe(bs, res)
    assert cfg["retention.ms"].value == "777777"


# --------------------------------------------------------- kafka-python ----

@pytest.fixture
def kp_admin(shared_broker):
    from kafka import KafkaAdminClient

    a = KafkaAdminClient(bootstrap_servers=shared_broker.bootstrap, request_timeout_ms=15000)
    yield a
    a.close()


def test_kp_create_describe_extend_delete(shared_broker, kp_admin):
    from kafka.admin import ConfigResource

    bs = shared_broker.bootstrap
    name = unique_topic("kp")
    kp_admin.create_topics({name: {"num_partitions": 2, "replication_factor": 1,
                                   "configs": {"retention.ms": "3600000"}}})
    wait_for_topic(bs, name, 2)
    assert name in kp_admin.list_topics()
    (desc,) = kp_admin.describe_topics([name])
    assert desc["name"] == name
    assert sorted(p["partition_index"] for p in desc["partitions"]) == [0, 1]
    assert all(p["leader_id"] == 1 for p in desc["partitions"])

    cfg = kp_admin.describe_configs([ConfigResource("TOPIC", name)], config_filter="all")
    entries = cfg["topic"][name]
    assert entries["retention.ms"]["value"] == "3600000"
    assert entries["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert entries["max.message.bytes"]["config_source"] == "DEFAULT_CONFIG"
    modified = kp_admin.describe_configs([ConfigResource("TOPIC", name)])["topic"][name]
    assert "retention.ms" in modified and "max.message.bytes" not in modified

    kp_admin.create_partitions({name: 4})
    wait_for_topic(bs, name, 4)

    kp_admin.delete_topics([name])
    deadline = time.monotonic() + 10
    while name in kp_admin.list_topics() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert name not in kp_admin.list_topics()


def test_kp_validate_only(shared_broker, kp_admin):
    name = unique_topic("kpv")
    res = kp_admin.create_topics({name: {"num_partitions": 1, "replication_factor": 1}},
                                 validate_only=True)
    assert [t["error_code"] for t in res["topics"]] == [0]
    time.sleep(0.3)
    assert name not in kp_admin.list_topics()


def test_kp_errors(shared_broker, kp_admin):
    from kafka.errors import (InvalidPartitionsError, InvalidReplicationFactorError,
                              TopicAlreadyExistsError)

    name = create_topic(shared_broker.bootstrap)
    with pytest.raises(TopicAlreadyExistsError):
        kp_admin.create_topics({name: {"num_partitions": 1, "replication_factor": 1}})
    with pytest.raises(InvalidReplicationFactorError):
        kp_admin.create_topics({unique_topic("kprf"): {"num_partitions": 1,
                                                       "replication_factor": 2}})
    with pytest.raises(InvalidPartitionsError):
        kp_admin.create_partitions({name: 1})
    # error codes are per topic when not raising
    res = kp_admin.create_topics({name: {"num_partitions": 1, "replication_factor": 1}},
                                 raise_errors=False)
    assert [t["error_code"] for t in res["topics"]] == [TopicAlreadyExistsError.errno]


def test_kp_create_with_broker_defaults(shared_broker, kp_admin):
    """CreateTopics v4+ with num_partitions/replication_factor = -1 uses the
    broker defaults (num.partitions=1, default.replication.factor=1)."""
    name = unique_topic("kpdef")
    kp_admin.create_topics({name: {}})
    wait_for_topic(shared_broker.bootstrap, name, 1)
