"""SASL listeners with real clients (ports 24800-24809). One broker with PLAINTEXT (admin and
topic creation), SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and SASL_SSL (PLAIN only,
certificates made with openssl as in test_tls.py). PLAIN users come from
`listener.name.<l>.plain.sasl.jaas.config`; SCRAM users are added with `odradek add-scram`
before the broker starts (users added later through AlterUserScramCredentials are
test_client_configs.py's and tests/sasl.rs's). confluent-kafka,
kafka-python, aiokafka and kcat each produce and consume with every mechanism; wrong passwords,
unknown users and a disabled mechanism fail cleanly; a second broker reads its PLAIN users from
a JAAS file named in KAFKA_OPTS. Three brokers on ZooKeeper replicate over SASL_SSL
(SCRAM-SHA-512 between brokers) through a broker kill (ports 24811-24813)."""

import logging
import os
import ssl
import subprocess
import time

import pytest

import kclients
from kclients import Rec
from test_tls import _make_certs

CLIENTS = ["confluent", "kafka-python", "aiokafka", "kcat"]
PLAIN_PORT, SASL_PORT, SASL_SSL_PORT = 24800, 24801, 24802
JAAS_PLAIN_PORT, JAAS_SASL_PORT = 24805, 24806
PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'username="admin" password="admin-secret" '
              'user_admin="admin-secret" user_alice="alice-secret";')
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
SCRAM_USERS = {"scram-user": "scram-secret"}


def add_scram_users(broker, users: dict):
    """Adds SCRAM users (both mechanisms) with `odradek add-scram` and the broker's own
    settings, before it starts (as `kafka-storage format --add-scram` does)."""
    cmd = broker.command()
    cmd[cmd.index("serve")] = "add-scram"
    for user, password in users.items():
        cmd += [f"{m}=[name={user},password={password}]" for m in ("SCRAM-SHA-256", "SCRAM-SHA-512")]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory):
    from brokers import BrokerFactory

    d = tmp_path_factory.mktemp("certs")
    _make_certs(d)
    factory = BrokerFactory(tmp_path_factory.mktemp("saslbroker"))
    listeners = (f"PLAINTEXT://127.0.0.1:{PLAIN_PORT},SASL_PLAINTEXT://127.0.0.1:{SASL_PORT},"
                 f"SASL_SSL://127.0.0.1:{SASL_SSL_PORT}")
    b = factory(overrides={
        "listeners": listeners,
        "advertised.listeners": listeners,
        "inter.broker.listener.name": "PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
        "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": SCRAM_JAAS,
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": SCRAM_JAAS,
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS,
        "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
        "listener.name.sasl_ssl.ssl.keystore.location": d / "server.pem",
    }, port=PLAIN_PORT, start=False)
    add_scram_users(b, SCRAM_USERS)
    b.start()
    yield b, d
    factory.close()


def _conf(client, mechanism, user, password, ca=None):
    if client in ("confluent", "kcat"):
        c = {"security.protocol": "sasl_ssl" if ca else "sasl_plaintext",
             "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}
        if ca:
            c["ssl.ca.location"] = ca
        return c
    c = {"security_protocol": "SASL_SSL" if ca else "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
         "sasl_plain_username": user, "sasl_plain_password": password}
    if ca and client == "kafka-python":
        c["ssl_cafile"] = ca
    elif ca:
        c["ssl_context"] = ssl.create_default_context(cafile=ca)
    return c


def _round_trip(b, client, bootstrap, conf_of):
    topic = kclients.unique_topic(f"sasl-{client}")
    kclients.create_topic(b.bootstrap, topic, partitions=1)
    recs = [Rec(key=f"k{i}".encode(), value=f"over sasl {i}".encode()) for i in range(10)]
    kclients.produce(client, bootstrap, topic, recs, conf=conf_of())
    got = kclients.consume(client, bootstrap, topic, 10, conf=conf_of())
    assert [r.value for r in got] == [r.value for r in recs]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_produce_and_consume_over_sasl_plaintext(sasl_broker, client, mechanism):
    b, _ = sasl_broker
    user, password = (("alice", "alice-secret") if mechanism == "PLAIN"
                      else ("scram-user", "scram-secret"))
    _round_trip(b, client, f"127.0.0.1:{SASL_PORT}",
                lambda: _conf(client, mechanism, user, password))


@pytest.mark.parametrize("client", CLIENTS)
def test_produce_and_consume_over_sasl_ssl(sasl_broker, client):
    b, d = sasl_broker
    _round_trip(b, client, f"127.0.0.1:{SASL_SSL_PORT}",
                lambda: _conf(client, "PLAIN", "alice", "alice-secret", ca=str(d / "ca.pem")))


def _confluent_fails(bootstrap, conf):
    """The errors a confluent-kafka producer reports until an authentication error comes."""
    from confluent_kafka import KafkaError, Producer

    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "error_cb": errors.append, **conf})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any(
            e.code() == KafkaError._AUTHENTICATION for e in errors):
        p.poll(0.2)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    return " ".join(str(e) for e in errors)


@pytest.mark.parametrize("mechanism,user,password", [
    ("PLAIN", "alice", "wrong"), ("PLAIN", "mallory", "x"),
    ("SCRAM-SHA-256", "scram-user", "wrong"), ("SCRAM-SHA-512", "nobody", "x"),
])
def test_bad_credentials_fail_cleanly(sasl_broker, mechanism, user, password):
    b, _ = sasl_broker
    text = _confluent_fails(f"127.0.0.1:{SASL_PORT}",
                            _conf("confluent", mechanism, user, password))
    assert "Authentication failed" in text, text
    assert b.alive()


def test_kafka_python_wrong_password(sasl_broker, caplog):
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    b, _ = sasl_broker
    # kafka-python 3.0 reports the close that follows the SASL_AUTHENTICATION_FAILED answer
    # ("socket disconnected"), not the answer: only the refusal is checked here.
    with caplog.at_level(logging.WARNING, logger="kafka"):
        with pytest.raises(KafkaError):
            KafkaConsumer(bootstrap_servers=f"127.0.0.1:{SASL_PORT}", bootstrap_timeout_ms=3000,
                          **_conf("kafka-python", "PLAIN", "alice", "wrong")).topics()
    assert "Bootstrap complete" not in caplog.text
    assert b.alive()


def test_disabled_mechanism_fails_cleanly(sasl_broker):
    b, d = sasl_broker
    conf = _conf("confluent", "SCRAM-SHA-256", "scram-user", "scram-secret",
                 ca=str(d / "ca.pem"))
    text = _confluent_fails(f"127.0.0.1:{SASL_SSL_PORT}", conf)
    assert "SCRAM-SHA-256" in text and "PLAIN" in text, text
    assert b.alive()


def test_jaas_file_through_kafka_opts(tmp_path_factory):
    from brokers import BrokerFactory

    d = tmp_path_factory.mktemp("jaas")
    jaas = d / "kafka_server_jaas.conf"
    jaas.write_text('KafkaServer {\n  org.apache.kafka.common.security.plain.PlainLoginModule '
                    'required\n  username="admin" password="admin-secret"\n'
                    '  user_frank="frank-secret";\n};\n')
    factory = BrokerFactory(tmp_path_factory.mktemp("jaasbroker"))
    listeners = f"PLAINTEXT://127.0.0.1:{JAAS_PLAIN_PORT},SASL_PLAINTEXT://127.0.0.1:{JAAS_SASL_PORT}"
    before = os.environ.get("KAFKA_OPTS")
    os.environ["KAFKA_OPTS"] = f"-Xmx1g -Djava.security.auth.login.config={jaas}"
    try:
        b = factory(overrides={
            "listeners": listeners,
            "advertised.listeners": listeners,
            "inter.broker.listener.name": "PLAINTEXT",
            "sasl.enabled.mechanisms": "PLAIN",
        }, port=JAAS_PLAIN_PORT)
    finally:
        if before is None:
            del os.environ["KAFKA_OPTS"]
        else:
            os.environ["KAFKA_OPTS"] = before
    try:
        _round_trip(b, "confluent", f"127.0.0.1:{JAAS_SASL_PORT}",
                    lambda: _conf("confluent", "PLAIN", "frank", "frank-secret"))
        text = _confluent_fails(f"127.0.0.1:{JAAS_SASL_PORT}",
                                _conf("confluent", "PLAIN", "alice", "alice-secret"))
        assert "Authentication failed" in text, text
    finally:
        factory.close()


INTERNAL_SASL_PORT = 24810  # + broker id


@pytest.mark.cluster
def test_brokers_replicate_over_sasl_ssl_through_a_broker_kill(cluster_factory, tmp_path):
    """Three brokers on ZooKeeper talk to each other over SASL_SSL with SCRAM-SHA-512 (the
    inter-broker user added with `odradek add-scram` through ZooKeeper before any broker
    starts; each broker's certificate checked against the truststore, host names too: it names
    127.0.0.11-13); clients use PLAINTEXT. With min.insync.replicas=2, acks=all records keep
    being accepted after the leader is SIGKILLed; the restarted broker logs in again and is
    back in the ISR, and every acknowledged record is there. Ports 24811-24813."""
    _make_certs(tmp_path)
    c = cluster_factory(n=3, start=False)
    jaas = ("org.apache.kafka.common.security.scram.ScramLoginModule required "
            'username="broker" password="broker-secret";')
    for b in c.brokers:
        ihost, iport = f"127.0.0.{10 + b.broker_id}", INTERNAL_SASL_PORT + b.broker_id
        b.overrides.update({
            "listeners": f"INTERNAL://{ihost}:{iport},EXTERNAL://{b.host}:{b.port}",
            "advertised.listeners": f"INTERNAL://{ihost}:{iport},EXTERNAL://{b.host}:{b.port}",
            "listener.security.protocol.map": "INTERNAL:SASL_SSL,EXTERNAL:PLAINTEXT",
            "inter.broker.listener.name": "INTERNAL",
            "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
            "listener.name.internal.sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.internal.scram-sha-512.sasl.jaas.config": jaas,
            "listener.name.internal.ssl.keystore.location": tmp_path / "server.p12",
            "listener.name.internal.ssl.keystore.password": "p12-secret",
            "listener.name.internal.ssl.truststore.type": "PEM",
            "listener.name.internal.ssl.truststore.location": tmp_path / "ca.pem",
        })
    add_scram_users(c.brokers[0], {"broker": "broker-secret"})
    c.start()
    topic = c.create_topic(partitions=1, rf=3, config={"min.insync.replicas": "2"})
    recs = [Rec(value=f"k-{i:04d}".encode(), key=None, partition=0) for i in range(200)]
    kclients.produce_confluent(c.bootstrap, topic, recs[:100], acks="all")

    victim = c.leader(topic)
    c.broker(victim).kill9()
    c.leader(topic, exclude=(victim,))
    kclients.produce_confluent(c.bootstrap_without(victim), topic, recs[100:], acks="all")

    c.broker(victim).start()
    c.wait_isr_full(topic, timeout=60)
    got = kclients.consume("confluent", c.bootstrap, topic, len(recs), partition=0)
    assert [r.value for r in got] == [r.value for r in recs]
