"""Dynamic configuration: AlterConfigs and IncrementalAlterConfigs of topics and
brokers through confluent-kafka and kafka-python, DescribeConfigs sources and
synonyms, validate_only, Kafka 3.9's error codes for bad input (nothing stored
changes), changes applied without a restart and kept across one; on a
three-broker ZooKeeper cluster a change applied by every broker, a broker
default reaching topics without override, and a config written straight into
ZooKeeper by an old tool (kazoo) picked up, all still there after every broker
restarted."""

import json
import time

import pytest

import kclients
from cluster import poll
from kclients import Rec, create_topic, unique_topic

FUT_TIMEOUT = 20
TOPIC, BROKER = 2, 4
INVALID_CONFIG, INVALID_REQUEST, UNKNOWN_TOPIC = 40, 42, 3


# --------------------------------------------------------------- helpers ----

def _cf_incremental(bs, restype, name, ops, validate_only=False):
    """IncrementalAlterConfigs through confluent-kafka; ``ops`` are
    (key, op, value) with op one of SET/APPEND/SUBTRACT/DELETE.  Returns None or
    the Kafka error code."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    entries = [ConfigEntry(k, v, incremental_operation=getattr(AlterConfigOpType, op))
               for k, op, v in ops]
    res = ConfigResource(restype, name, incremental_configs=entries)
    admin = kclients.admin_client(bs)
    fut = admin.incremental_alter_configs([res], validate_only=validate_only,
                                          request_timeout=15)[res]
    try:
        fut.result(timeout=FUT_TIMEOUT)
        return None
    except KafkaException as e:
        return e.args[0].code()


def _cf_describe(bs, restype, name):
    from confluent_kafka.admin import ConfigResource

    res = ConfigResource(restype, name)
    admin = kclients.admin_client(bs)
    return admin.describe_configs([res], request_timeout=15)[res].result(timeout=FUT_TIMEOUT)


def _source(entry):
    from confluent_kafka.admin import ConfigSource

    return ConfigSource(entry.source).name


class KpAdmin:
    """kafka-python's KafkaAdminClient, plus raw requests for what its helpers
    refuse to build (the default broker entity, another broker's id)."""

    def __init__(self, bs):
        from kafka import KafkaAdminClient

        self.a = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=15000)

    def close(self):
        self.a.close()

    def _send(self, request):
        async def send():
            return await self.a._manager.send(request)
        return self.a._manager.run(send)

    def describe(self, restype, name):
        """name -> entry dict (value, config_source, read_only, is_sensitive,
        synonyms as [(name, value, source)])."""
        from kafka.admin import ConfigResource

        res = ConfigResource(restype, name)
        if name == "":
            from kafka.admin._configs import ConfigAdminMixin

            req = ConfigAdminMixin._describe_configs_request([res], include_synonyms=True)
            resp = self._send(req)
            out = ConfigAdminMixin._describe_configs_process_responses([resp], "all")
            entries = out["broker"][""]
        else:
            entries = self.a.describe_configs([res], include_synonyms=True,
                                              config_filter="all")[res.resource_type.name.lower()][name]
        for e in entries.values():
            e["synonyms"] = [(s["name"], s["value"], s["source"]) for s in e.get("synonyms", [])]
        return entries

    def raw_alter(self, restype, name, configs, incremental=True, validate_only=False):
        """One (Incremental)AlterConfigs resource sent as is; returns its error code."""
        from kafka.admin import ConfigResource
        from kafka.admin._configs import ConfigAdminMixin

        req = ConfigAdminMixin._alter_configs_request([ConfigResource(restype, name, configs)],
                                                      validate_only, incremental)
        resp = self._send(req)
        (r,) = resp.responses
        return r.error_code


@pytest.fixture
def kp(shared_broker):
    a = KpAdmin(shared_broker.bootstrap)
    yield a
    a.close()


def _produce_sizes(bs, topic, sizes, partition=0):
    """One record per size (separate batches); per record None or the error code."""
    recs = [Rec(value=b"x" * n, partition=partition) for n in sizes]
    got = kclients.produce_confluent(bs, topic, recs, raise_errors=False, timeout=20,
                                     conf={"message.max.bytes": 3_000_000,
                                           "batch.num.messages": 1, "linger.ms": 0})
    return [None if isinstance(r, tuple) else r.code() for r in got]


# ------------------------------------------------------------ standalone ----

def test_incremental_topic_operations(shared_broker):
    from confluent_kafka.admin import ResourceType

    bs = shared_broker.bootstrap
    name = create_topic(bs, config={"cleanup.policy": "delete"})
    assert _cf_incremental(bs, ResourceType.TOPIC, name, [
        ("retention.ms", "SET", "3600000"), ("cleanup.policy", "APPEND", "compact")]) is None
    cfg = _cf_describe(bs, ResourceType.TOPIC, name)
    assert (cfg["retention.ms"].value, _source(cfg["retention.ms"])) == \
        ("3600000", "DYNAMIC_TOPIC_CONFIG")
    assert cfg["cleanup.policy"].value == "delete,compact"
    assert _cf_incremental(bs, ResourceType.TOPIC, name, [
        ("cleanup.policy", "SUBTRACT", "delete"), ("retention.ms", "DELETE", None)]) is None
    cfg = _cf_describe(bs, ResourceType.TOPIC, name)
    assert cfg["cleanup.policy"].value == "compact"
    # The broker default again; Kafka reports a static log.retention.hours as DEFAULT_CONFIG.
    assert (cfg["retention.ms"].value, _source(cfg["retention.ms"])) == \
        ("604800000", "DEFAULT_CONFIG")


def test_legacy_alter_replaces_every_override(shared_broker, kp):
    from confluent_kafka.admin import ConfigResource, ResourceType

    bs = shared_broker.bootstrap
    name = create_topic(bs, config={"retention.ms": "1000000", "segment.ms": "2000000"})
    res = ConfigResource(ResourceType.TOPIC, name, set_config={"max.message.bytes": "500000"})
    admin = kclients.admin_client(bs)  # must outlive its futures
    admin.alter_configs([res], request_timeout=15)[res].result(timeout=FUT_TIMEOUT)
    cfg = _cf_describe(bs, ResourceType.TOPIC, name)
    assert (cfg["max.message.bytes"].value, _source(cfg["max.message.bytes"])) == \
        ("500000", "DYNAMIC_TOPIC_CONFIG")
    assert _source(cfg["retention.ms"]) == "DEFAULT_CONFIG"
    assert _source(cfg["segment.ms"]) == "DEFAULT_CONFIG"

    from kafka.admin import ConfigResource as KpResource

    out = kp.a.alter_configs([KpResource("TOPIC", name, {"retention.ms": "7777"})],
                             incremental=False, raise_on_unknown=False)
    assert out["topic"][name] == "OK", out
    entries = kp.describe("TOPIC", name)
    assert (entries["retention.ms"]["value"], entries["retention.ms"]["config_source"]) == \
        ("7777", "DYNAMIC_TOPIC_CONFIG")
    # kafka-python's legacy alter sends the other modified keys along
    assert entries["max.message.bytes"]["value"] == "500000"


def test_validate_only_changes_nothing(shared_broker):
    from confluent_kafka.admin import ResourceType

    bs = shared_broker.bootstrap
    name = create_topic(bs, config={"retention.ms": "123456"})
    before_topic = {k: v.value for k, v in _cf_describe(bs, ResourceType.TOPIC, name).items()}
    before_broker = {k: v.value for k, v in _cf_describe(bs, ResourceType.BROKER, "1").items()}
    assert _cf_incremental(bs, ResourceType.TOPIC, name, [("retention.ms", "SET", "1")],
                           validate_only=True) is None
    assert _cf_incremental(bs, ResourceType.BROKER, "1", [("message.max.bytes", "SET", "1234")],
                           validate_only=True) is None
    # a bad value is still reported
    assert _cf_incremental(bs, ResourceType.TOPIC, name, [("retention.ms", "SET", "x")],
                           validate_only=True) == INVALID_CONFIG
    assert {k: v.value for k, v in _cf_describe(bs, ResourceType.TOPIC, name).items()} == before_topic
    assert {k: v.value for k, v in _cf_describe(bs, ResourceType.BROKER, "1").items()} == before_broker


def test_bad_input_gets_kafkas_codes_and_changes_nothing(shared_broker, kp):
    from confluent_kafka.admin import ResourceType

    bs = shared_broker.bootstrap
    name = create_topic(bs, config={"retention.ms": "123456"})
    before_topic = kp.describe("TOPIC", name)
    before_broker = kp.describe("BROKER", "1")
    topic_cases = [
        [("no.such.config", "SET", "1")],      # unknown key
        [("retention.ms", "SET", "abc")],      # wrong type
        [("segment.bytes", "SET", "-1")],      # negative size
        [("max.message.bytes", "SET", "-5")],
        [("retention.ms", "APPEND", "5")],     # list operation on a non-list key
        [("remote.storage.enable", "SET", "true")],
    ]
    for ops in topic_cases:
        assert _cf_incremental(bs, ResourceType.TOPIC, name, ops) == INVALID_CONFIG, ops
    assert _cf_incremental(bs, ResourceType.TOPIC, unique_topic("nope"),
                           [("retention.ms", "SET", "1")]) == UNKNOWN_TOPIC
    broker_cases = [
        [("log.retention.hours", "SET", "1")],       # not changeable live in Kafka
        [("num.partitions", "SET", "4")],
        [("message.max.bytes", "SET", "big")],       # wrong type
        [("log.retention.ms", "SET", "0")],          # Kafka: -1 or at least 1
        [("num.io.threads", "SET", "100")],          # more than double at once
        [("advertised.listeners", "SET", "PLAINTEXT://elsewhere:1")],
    ]
    for ops in broker_cases:
        assert _cf_incremental(bs, ResourceType.BROKER, "1", ops) == INVALID_REQUEST, ops
    # a per-broker resource of another broker, a broker name that is no id
    assert kp.raw_alter("BROKER", "7", {"message.max.bytes": "2000"}) == INVALID_REQUEST
    assert kp.raw_alter("BROKER", "seven", {"message.max.bytes": "2000"}) == INVALID_REQUEST
    # the legacy API: a topic's bad value, a broker's read-only key
    assert kp.raw_alter("TOPIC", name, {"segment.bytes": "-5"}, incremental=False) == INVALID_CONFIG
    assert kp.raw_alter("BROKER", "1", {"log.dirs": "/tmp/x"}, incremental=False) == INVALID_REQUEST
    assert kp.describe("TOPIC", name) == before_topic
    assert kp.describe("BROKER", "1") == before_broker
    assert kp.describe("BROKER", "") == {}


def test_broker_layers_sources_live_effect_and_restart(broker_factory):
    """Static < dynamic default < dynamic per-broker: values, sources and
    synonyms in Kafka's order, read-only and sensitive flags, the broker
    default reaching a topic without override at once, and all of it kept
    across a restart (the standalone metadata file)."""
    from confluent_kafka.admin import ResourceType

    b = broker_factory({"message.max.bytes": 1500000, "ssl.keystore.password": "hunter2"})
    bs = b.bootstrap
    kp = KpAdmin(bs)
    try:
        assert kp.raw_alter("BROKER", "", {"message.max.bytes": "1600000",
                                           "log.segment.bytes": "2000000"}) == 0
        assert _cf_incremental(bs, ResourceType.BROKER, "1", [
            ("message.max.bytes", "SET", "1700000"), ("my.plugin.secret", "SET", "abc"),
            ("num.io.threads", "SET", "4")]) is None

        def check_layers():
            e = kp.describe("BROKER", "1")
            mmb = e["message.max.bytes"]
            assert (mmb["value"], mmb["config_source"], mmb["read_only"]) == \
                ("1700000", "DYNAMIC_BROKER_CONFIG", False)
            assert mmb["synonyms"] == [
                ("message.max.bytes", "1700000", "DYNAMIC_BROKER_CONFIG"),
                ("message.max.bytes", "1600000", "DYNAMIC_DEFAULT_BROKER_CONFIG"),
                ("message.max.bytes", "1500000", "STATIC_BROKER_CONFIG"),
                ("message.max.bytes", "1048588", "DEFAULT_CONFIG")]
            assert e["log.segment.bytes"]["config_source"] == "DYNAMIC_DEFAULT_BROKER_CONFIG"
            assert (e["num.io.threads"]["value"], e["num.io.threads"]["config_source"]) == \
                ("4", "DYNAMIC_BROKER_CONFIG")
            assert (e["log.dirs"]["config_source"], e["log.dirs"]["read_only"]) == \
                ("STATIC_BROKER_CONFIG", True)
            assert e["log.retention.hours"]["config_source"] == "STATIC_BROKER_CONFIG"
            ibp = e["inter.broker.protocol.version"]
            assert (ibp["value"], ibp["read_only"]) == ("3.9-IV0", True)
            assert e["log.message.format.version"]["value"] == "3.0-IV1"
            for secret in ("ssl.keystore.password", "my.plugin.secret"):
                assert (e[secret]["value"], e[secret]["is_sensitive"]) == (None, True), secret
            default = kp.describe("BROKER", "")
            assert {k: (v["value"], v["config_source"]) for k, v in default.items()} == {
                "message.max.bytes": ("1600000", "DYNAMIC_DEFAULT_BROKER_CONFIG"),
                "log.segment.bytes": ("2000000", "DYNAMIC_DEFAULT_BROKER_CONFIG")}

        check_layers()
        name = create_topic(bs)
        cfg = _cf_describe(bs, ResourceType.TOPIC, name)
        assert (cfg["max.message.bytes"].value, _source(cfg["max.message.bytes"])) == \
            ("1700000", "DYNAMIC_BROKER_CONFIG")
        assert (cfg["segment.bytes"].value, _source(cfg["segment.bytes"])) == \
            ("2000000", "DYNAMIC_DEFAULT_BROKER_CONFIG")
        assert _produce_sizes(bs, name, [200_000]) == [None]
        # lowered live: the topic (no override) follows at once
        assert _cf_incremental(bs, ResourceType.BROKER, "1",
                               [("message.max.bytes", "SET", "100000")]) is None
        assert _produce_sizes(bs, name, [200_000, 50_000]) == [10, None]  # MSG_SIZE_TOO_LARGE

        kp.close()
        b.restart()
        kp = KpAdmin(bs)
        e = kp.describe("BROKER", "1")
        assert (e["message.max.bytes"]["value"], e["message.max.bytes"]["config_source"]) == \
            ("100000", "DYNAMIC_BROKER_CONFIG")
        assert kp.describe("BROKER", "")["log.segment.bytes"]["value"] == "2000000"
        assert _produce_sizes(bs, name, [200_000, 50_000]) == [10, None]
        metadata = json.loads((b.data_dir / "odradek-metadata.json").read_text())
        assert metadata["broker_configs"]["default"] == {"message.max.bytes": "1600000",
                                                         "log.segment.bytes": "2000000"}

        # The legacy API replaces the broker's whole dynamic set.
        from confluent_kafka.admin import ConfigResource

        res = ConfigResource(ResourceType.BROKER, "1", set_config={"message.max.bytes": "120000"})
        admin = kclients.admin_client(bs)
        admin.alter_configs([res], request_timeout=15)[res].result(timeout=FUT_TIMEOUT)
        e = kp.describe("BROKER", "1")
        assert (e["message.max.bytes"]["value"], e["message.max.bytes"]["config_source"]) == \
            ("120000", "DYNAMIC_BROKER_CONFIG")
        assert (e["num.io.threads"]["value"], e["num.io.threads"]["config_source"]) == \
            ("8", "STATIC_BROKER_CONFIG")
        assert "my.plugin.secret" not in e
        assert metadata["broker_configs"]["default"] == \
            json.loads((b.data_dir / "odradek-metadata.json").read_text())["broker_configs"]["default"]
    finally:
        kp.close()


# --------------------------------------------------------------- cluster ----

def _segments(c, topic, p):
    """broker id -> number of segment files of ``topic``-``p`` on that replica."""
    return {b.broker_id: len(list(b.partition_dir(topic, p).glob("*.log"))) for b in c.brokers}


def _kazoo(c):
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=c.zk.connect(c.chroot), timeout=10)
    zk.start(timeout=15)
    return zk


def _refused_everywhere(bs, topic, partitions, size):
    return all(_produce_sizes(bs, topic, [size], partition=p) == [10] for p in range(partitions))


@pytest.mark.cluster
@pytest.mark.timeout(240)
def test_cluster_changes_reach_every_broker_and_survive_restarts(cluster_factory):
    from confluent_kafka.admin import ResourceType

    c = cluster_factory(3, overrides={"log.retention.check.interval.ms": 300})
    bs = c.bootstrap
    topic = c.create_topic(partitions=3, rf=3, config={"segment.bytes": "1024"})
    leaders = c.leaders(topic)
    assert set(leaders.values()) == {1, 2, 3}, leaders
    recs = [Rec(value=b"r" * 200, partition=i % 3) for i in range(60)]
    kclients.produce_confluent(bs, topic, recs, conf={"batch.num.messages": 1, "linger.ms": 0})
    poll(lambda: all(n >= 4 for p in range(3) for n in _segments(c, topic, p).values()),
         30, "several segments on every replica")

    # Retention shrinks every replica's log: size first, then time.
    via2 = c.broker(2).bootstrap
    assert _cf_incremental(via2, ResourceType.TOPIC, topic, [("retention.bytes", "SET", "1500")]) is None
    poll(lambda: all(n <= 3 for p in range(3) for n in _segments(c, topic, p).values()),
         30, f"retention.bytes applied on every replica: {[_segments(c, topic, p) for p in range(3)]}")
    assert _cf_incremental(via2, ResourceType.TOPIC, topic, [("retention.ms", "SET", "1000")]) is None
    poll(lambda: all(n <= 1 for p in range(3) for n in _segments(c, topic, p).values()),
         30, "retention.ms applied on every replica")

    # max.message.bytes lowered through broker 3: whichever broker leads refuses.
    via3 = c.broker(3).bootstrap
    assert _cf_incremental(via3, ResourceType.TOPIC, topic,
                           [("max.message.bytes", "SET", "2000")]) is None
    poll(lambda: _refused_everywhere(bs, topic, 3, 5000), 20, "a 5000-byte record refused by every leader")
    assert _produce_sizes(bs, topic, [500]) == [None]

    zk = _kazoo(c)
    try:
        stored, _ = zk.get(f"/config/topics/{topic}")
        assert json.loads(stored) == {"version": 1, "config": {
            "segment.bytes": "1024", "retention.bytes": "1500", "retention.ms": "1000",
            "max.message.bytes": "2000"}}
        notes = [json.loads(zk.get(f"/config/changes/{n}")[0])
                 for n in sorted(zk.get_children("/config/changes"))]
        assert {"version": 2, "entity_path": f"topics/{topic}"} in notes

        # The cluster-wide default entity reaches a topic without override.
        plain = c.create_topic(partitions=3, rf=3)
        kp = KpAdmin(bs)
        try:
            assert kp.raw_alter("BROKER", "", {"message.max.bytes": "3000"}) == 0
        finally:
            kp.close()
        stored, _ = zk.get("/config/brokers/<default>")
        assert json.loads(stored) == {"version": 1, "config": {"message.max.bytes": "3000"}}
        poll(lambda: _refused_everywhere(bs, plain, 3, 5000), 20,
             "the broker default refused by every leader")
        assert _produce_sizes(bs, plain, [2000]) == [None]

        # What a ZooKeeper-era tool writes: the config znode, then a notification.
        old = c.create_topic(partitions=3, rf=3)
        zk.set(f"/config/topics/{old}",
               json.dumps({"version": 1, "config": {"max.message.bytes": "1500"}}).encode())
        zk.create("/config/changes/config_change_",
                  json.dumps({"version": 2, "entity_path": f"topics/{old}"}).encode(),
                  sequence=True)
        poll(lambda: _refused_everywhere(bs, old, 3, 2000), 20,
             "the tool's change applied by every leader")
    finally:
        zk.stop()
        zk.close()

    for b in c.brokers:
        b.kill9()
    for b in c.brokers:
        b.start()
    c.wait_registered([1, 2, 3], timeout=40)
    for t in (topic, plain, old):
        c.wait_isr_full(t, timeout=40)
    assert _refused_everywhere(bs, topic, 3, 5000)
    assert _refused_everywhere(bs, plain, 3, 5000)
    assert _refused_everywhere(bs, old, 3, 2000)
    for b in c.brokers:
        cfg = _cf_describe(b.bootstrap, ResourceType.TOPIC, old)
        assert (cfg["max.message.bytes"].value, _source(cfg["max.message.bytes"])) == \
            ("1500", "DYNAMIC_TOPIC_CONFIG")
        cfg = _cf_describe(b.bootstrap, ResourceType.TOPIC, plain)
        assert (cfg["max.message.bytes"].value, _source(cfg["max.message.bytes"])) == \
            ("3000", "DYNAMIC_DEFAULT_BROKER_CONFIG")
        e = _cf_describe(b.bootstrap, ResourceType.BROKER, str(b.broker_id))
        assert (e["message.max.bytes"].value, _source(e["message.max.bytes"])) == \
            ("3000", "DYNAMIC_DEFAULT_BROKER_CONFIG")
    assert all(n <= 1 for p in range(3) for n in _segments(c, topic, p).values())
