"""User and client entity configs: SCRAM credentials through confluent-kafka's and
kafka-python's AdminClient (KIP-554), client quotas through kafka-python's
protocol classes (KIP-546; neither client has a quota admin call), the
`odradek add-scram` command on a standalone data directory, and on a two-broker
ZooKeeper cluster a change made through one broker seen by the other, the znodes
in Kafka's layout, a quota written straight into ZooKeeper by an old tool
(kazoo, as `kafka-configs --zookeeper` writes it) picked up, and `add-scram`
writing through ZooKeeper.  Ports 25000-25049."""

import json
import subprocess

import pytest

from brokers import Broker, broker_binary
from cluster import Cluster, ZooKeeper, poll, raw_call

FUT_TIMEOUT = 20
RESOURCE_NOT_FOUND, UNACCEPTABLE_CREDENTIAL = 91, 93

STANDALONE_PORT = 25001
CLI_PORT = 25002
ZK_PORT = 25040
CLUSTER_PORTS = {1: 25011, 2: 25012}


# --------------------------------------------------------------- helpers ----

def _cf_admin(bs):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bs, "socket.timeout.ms": 10000})


def _cf_upsert(bs, user, mechanism, iterations, password):
    """One upsertion through confluent-kafka; None or the Kafka error code."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (ScramCredentialInfo, ScramMechanism,
                                       UserScramCredentialUpsertion)

    alt = UserScramCredentialUpsertion(
        user, ScramCredentialInfo(getattr(ScramMechanism, mechanism), iterations), password)
    admin = _cf_admin(bs)  # kept alive until the answer: destroying it fails the future
    fut = admin.alter_user_scram_credentials([alt], request_timeout=15)[user]
    try:
        fut.result(timeout=FUT_TIMEOUT)
        return None
    except KafkaException as e:
        return e.args[0].code()


def _cf_describe_all(bs):
    """user -> sorted [(mechanism name, iterations)] through confluent-kafka."""
    admin = _cf_admin(bs)
    fut = admin.describe_user_scram_credentials(request_timeout=15)
    return {user: sorted((i.mechanism.name, i.iterations) for i in d.scram_credential_infos)
            for user, d in fut.result(timeout=FUT_TIMEOUT).items()}


def _kp_admin(bs):
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=15000)


def _quota_entity(cls, user=..., client=...):
    parts = []
    if user is not ...:
        parts.append(cls(entity_type="user", entity_name=user))
    if client is not ...:
        parts.append(cls(entity_type="client-id", entity_name=client))
    return parts


def _alter_quotas(broker, entries, validate_only=False):
    """entries: [(dict(user=.., client=..), {key: value or None})] -> error codes."""
    from kafka.protocol.admin import AlterClientQuotasRequest as A, AlterClientQuotasResponse

    req = A(entries=[
        A.EntryData(entity=_quota_entity(A.EntryData.EntityData, **who),
                    ops=[A.EntryData.OpData(key=k, value=v or 0.0, remove=v is None)
                         for k, v in ops.items()])
        for who, ops in entries], validate_only=validate_only)
    resp = raw_call(broker, req, 1, AlterClientQuotasResponse)
    return [e.error_code for e in resp.entries]


def _describe_quotas(broker, components=(), strict=False):
    """{"user=alice,client-id=c1": {key: value}} for the filter."""
    from kafka.protocol.admin import DescribeClientQuotasRequest as D, DescribeClientQuotasResponse

    req = D(components=[D.ComponentData(entity_type=t, match_type=m, match=n)
                        for t, m, n in components], strict=strict)
    resp = raw_call(broker, req, 1, DescribeClientQuotasResponse)
    assert resp.error_code == 0, resp
    return {",".join(f"{e.entity_type}={e.entity_name or '<default>'}" for e in entry.entity):
            {v.key: v.value for v in entry.values} for entry in resp.entries}


def _add_scram(overrides, *users):
    cmd = [str(broker_binary()), "add-scram"]
    for k, v in overrides.items():
        cmd += ["--override", f"{k}={v}"]
    return subprocess.run(cmd + list(users), capture_output=True, text=True, timeout=30)


# ------------------------------------------------------------ standalone ----

def test_scram_credentials_through_both_clients(broker_factory):
    from kafka.admin import ScramMechanism as KpMechanism, UserScramCredentialDeletion

    b = broker_factory(port=STANDALONE_PORT)
    bs = b.bootstrap
    assert _cf_upsert(bs, "alice", "SCRAM_SHA_256", 8192, b"alice-secret") is None
    assert _cf_upsert(bs, "alice", "SCRAM_SHA_512", 4096, b"alice-secret") is None
    assert _cf_upsert(bs, "bob", "SCRAM_SHA_512", 4096, b"bob-secret") is None
    # Out of Kafka's bounds.
    assert _cf_upsert(bs, "carol", "SCRAM_SHA_256", 100, b"x") == UNACCEPTABLE_CREDENTIAL
    assert _cf_describe_all(bs) == {
        "alice": [("SCRAM_SHA_256", 8192), ("SCRAM_SHA_512", 4096)],
        "bob": [("SCRAM_SHA_512", 4096)],
    }
    kp = _kp_admin(bs)
    try:
        described = kp.describe_user_scram_credentials(["bob", "nobody"])
        assert described["bob"]["error"] is None, described
        assert described["nobody"]["error"] is not None, described
        errors = kp.alter_user_scram_credentials(
            [UserScramCredentialDeletion("alice", KpMechanism.SCRAM_SHA_256)])
        assert errors == {"alice": None}, errors
    finally:
        kp.close()
    from confluent_kafka import KafkaException

    admin = _cf_admin(bs)
    futs = admin.describe_user_scram_credentials(["alice", "nobody"], request_timeout=15)
    alice = futs["alice"].result(timeout=FUT_TIMEOUT)
    assert [(i.mechanism.name, i.iterations) for i in alice.scram_credential_infos] == [
        ("SCRAM_SHA_512", 4096)]
    with pytest.raises(KafkaException) as e:
        futs["nobody"].result(timeout=FUT_TIMEOUT)
    assert e.value.args[0].code() == RESOURCE_NOT_FOUND


def test_client_quotas_in_raw_protocol(broker_factory):
    b = broker_factory(port=STANDALONE_PORT + 3)
    assert _alter_quotas(b, [
        (dict(user="alice"), {"producer_byte_rate": 1024.0}),
        (dict(user="alice", client="c1"), {"consumer_byte_rate": 2048.0}),
        (dict(client=None), {"request_percentage": 12.5}),
        (dict(user="bob"), {"producer_byte_rate": 1.5}),  # not a whole number
    ]) == [0, 0, 0, 42]
    assert _describe_quotas(b) == {
        "user=alice": {"producer_byte_rate": 1024.0},
        "user=alice,client-id=c1": {"consumer_byte_rate": 2048.0},
        "client-id=<default>": {"request_percentage": 12.5},
    }
    assert list(_describe_quotas(b, [("user", 0, "alice")], strict=True)) == ["user=alice"]
    assert _alter_quotas(b, [(dict(user="alice"), {"producer_byte_rate": None})]) == [0]
    assert "user=alice" not in _describe_quotas(b)


def test_add_scram_before_the_broker_runs(tmp_path):
    data = tmp_path / "data"
    # The broker's own settings (as its server.properties would give them).
    overrides = {"log.dirs": data, "listeners": f"PLAINTEXT://127.0.0.1:{CLI_PORT}",
                 "broker.id": 1, "http.listener": ""}
    r = _add_scram(overrides, "SCRAM-SHA-256=[name=admin,password=admin-secret]",
                   'SCRAM-SHA-512=[name=admin,iterations=8192,salt="c2FsdHNhbHQ=",'
                   'saltedpassword="mT0yyUUxnlJaC99HXgRTSYlbuqa4FSGtJCJfTMvjYCE="]')
    assert r.returncode == 0, r.stderr
    assert "admin-secret" not in r.stdout + r.stderr
    bad = _add_scram(overrides, "SCRAM-SHA-256=[name=x,password=y,iterations=10]")
    assert bad.returncode != 0 and "iterations" in bad.stderr, bad.stderr
    b = Broker(tmp_path / "b", port=CLI_PORT, data_dir=data).start()
    try:
        assert _cf_describe_all(b.bootstrap) == {
            "admin": [("SCRAM_SHA_256", 4096), ("SCRAM_SHA_512", 8192)]}
        # Refused while the broker holds the data directory.
        busy = _add_scram(overrides, "SCRAM-SHA-256=[name=late,password=p]")
        assert busy.returncode != 0 and "in use" in busy.stderr, busy.stderr
    finally:
        b.stop()


# --------------------------------------------------------------- cluster ----

@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_two_brokers_share_entity_configs_in_kafkas_layout(tmp_path):
    from kazoo.client import KazooClient

    zk = ZooKeeper(tmp_path / "zk", port=ZK_PORT).start()
    c = Cluster(tmp_path, zk, n=2, broker_kw=lambda i: {"port": CLUSTER_PORTS[i]})
    kz = None
    try:
        c.start()
        b1, b2 = c.broker(1), c.broker(2)
        # A quota through broker 1 is seen by broker 2.
        assert _alter_quotas(b1, [(dict(user="alice", client="c 1"),
                                   {"producer_byte_rate": 4096.0})]) == [0]
        poll(lambda: _describe_quotas(b2).get("user=alice,client-id=c 1")
             == {"producer_byte_rate": 4096.0}, 20, "broker 2 sees the quota")

        # SCRAM through the controller, described through the other broker.
        ctrl = c.controller()
        other = c.broker(2 if ctrl == 1 else 1)
        assert _cf_upsert(c.broker(ctrl).bootstrap, "dave@example", "SCRAM_SHA_256", 4096,
                          b"pw") is None
        poll(lambda: _cf_describe_all(other.bootstrap).get("dave@example")
             == [("SCRAM_SHA_256", 4096)], 20, "the other broker sees the credential")

        kz = KazooClient(hosts=zk.connect(c.chroot), timeout=10)
        kz.start(timeout=15)
        # Kafka's layout: sanitized names, version-1 configs, version-2 notifications.
        stored = json.loads(kz.get("/config/users/alice/clients/c%201")[0])
        assert stored == {"version": 1, "config": {"producer_byte_rate": "4096"}}
        dave = json.loads(kz.get("/config/users/dave%40example")[0])
        assert dave["config"]["SCRAM-SHA-256"].startswith("salt="), dave
        notes = [json.loads(kz.get(f"/config/changes/{n}")[0])
                 for n in kz.get_children("/config/changes")]
        assert {"version": 2, "entity_path": "users/alice/clients/c%201"} in notes
        assert {"version": 2, "entity_path": "users/dave%40example"} in notes

        # What kafka-configs --zookeeper writes: the znode, then a notification.
        kz.create("/config/clients/legacy-app",
                  json.dumps({"version": 1, "config": {"consumer_byte_rate": "777"}}).encode(),
                  makepath=True)
        kz.create("/config/changes/config_change_",
                  json.dumps({"version": 2, "entity_path": "clients/legacy-app"}).encode(),
                  sequence=True)
        for b in (b1, b2):
            poll(lambda b=b: _describe_quotas(b).get("client-id=legacy-app")
                 == {"consumer_byte_rate": 777.0}, 20, f"broker {b.broker_id} picks it up")

        # add-scram through ZooKeeper reaches the running brokers too.
        r = _add_scram({"zookeeper.connect": zk.connect(c.chroot), "broker.id": 9,
                        "log.dirs": tmp_path / "cli-data", "http.listener": ""},
                       "SCRAM-SHA-512=[name=erin,password=erin-secret]")
        assert r.returncode == 0, r.stderr
        poll(lambda: _cf_describe_all(b2.bootstrap).get("erin") == [("SCRAM_SHA_512", 4096)],
             20, "broker 2 sees the credential add-scram wrote")
    finally:
        if kz is not None:
            kz.stop()
        c.close()
        zk.stop()
