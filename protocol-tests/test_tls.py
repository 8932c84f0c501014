"""SSL listeners with Kafka's keys: certificates made with openssl at set-up (subjectAltName
IP:127.0.0.1, as librdkafka checks hostnames). One broker, three listeners: PLAINTEXT, SSL with a
PKCS12 keystore, and MTLS (mapped to SSL) with a PEM keystore and client certificates required,
configured through listener-prefixed keys. Each client produces and consumes over both; bad input
on either kind of port closes that connection only. (The mapped principal is checked in the Rust
tests: nothing shows it to a client yet.) Two brokers on ZooKeeper replicate over an SSL
inter-broker listener with client certificates required. Ports 24760-24769, 24771-24772."""

import socket
import ssl
import struct
import subprocess

import pytest

import kclients
from kclients import Rec

CLIENTS = ["confluent", "kafka-python", "aiokafka", "kcat"]
PLAIN_PORT, SSL_PORT, MTLS_PORT = 24760, 24761, 24762


def _openssl(*args, cwd):
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"openssl {' '.join(args)}: {p.stderr}"


def _make_certs(d):
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "2", "-subj", "/CN=odradek-test-ca", cwd=d)
    # 127.0.0.11-13: the brokers of the inter-broker tests (here and test_sasl.py).
    (d / "san.ext").write_text(
        "subjectAltName=IP:127.0.0.1,IP:127.0.0.11,IP:127.0.0.12,IP:127.0.0.13,DNS:localhost\n")
    for name, subj in [("server", "/CN=localhost"), ("client", "/C=US/O=Acme/OU=eng/CN=client")]:
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", "-subj", subj, cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                 "-extfile", "san.ext", cwd=d)
    _openssl("pkcs12", "-export", "-in", "server.crt", "-inkey", "server.key",
             "-certfile", "ca.pem", "-out", "server.p12", "-passout", "pass:p12-secret", cwd=d)
    (d / "server.pem").write_text((d / "server.crt").read_text() + (d / "server.key").read_text())


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    from brokers import BrokerFactory

    d = tmp_path_factory.mktemp("certs")
    _make_certs(d)
    factory = BrokerFactory(tmp_path_factory.mktemp("tlsbroker"))
    listeners = (f"PLAINTEXT://127.0.0.1:{PLAIN_PORT},SSL://127.0.0.1:{SSL_PORT},"
                 f"MTLS://127.0.0.1:{MTLS_PORT}")
    b = factory(overrides={
        "listeners": listeners,
        "advertised.listeners": listeners,
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL",
        "inter.broker.listener.name": "PLAINTEXT",
        # SSL: PKCS12 under Kafka's default type (JKS), read as PKCS12 as Java would.
        "listener.name.ssl.ssl.keystore.location": d / "server.p12",
        "listener.name.ssl.ssl.keystore.password": "p12-secret",
        # MTLS: PEM keystore, PEM truststore, client certificates required.
        "listener.name.mtls.ssl.keystore.type": "PEM",
        "listener.name.mtls.ssl.keystore.location": d / "server.pem",
        "listener.name.mtls.ssl.truststore.type": "PEM",
        "listener.name.mtls.ssl.truststore.location": d / "ca.pem",
        "listener.name.mtls.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+),OU=eng,.*$/$1/L,DEFAULT",
    }, port=PLAIN_PORT)
    yield b, d
    factory.close()


def _conf(client, d, mutual):
    ca, crt, key = str(d / "ca.pem"), str(d / "client.crt"), str(d / "client.key")
    if client in ("confluent", "kcat"):
        c = {"security.protocol": "ssl", "ssl.ca.location": ca}
        if mutual:
            c.update({"ssl.certificate.location": crt, "ssl.key.location": key})
        return c
    if client == "kafka-python":
        c = {"security_protocol": "SSL", "ssl_cafile": ca}
        if mutual:
            c.update({"ssl_certfile": crt, "ssl_keyfile": key})
        return c
    ctx = ssl.create_default_context(cafile=ca)
    if mutual:
        ctx.load_cert_chain(crt, key)
    return {"security_protocol": "SSL", "ssl_context": ctx}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("mutual", [False, True], ids=["ssl-pkcs12", "mtls-pem"])
def test_produce_and_consume_over_ssl(tls_broker, client, mutual):
    b, d = tls_broker
    bootstrap = f"127.0.0.1:{MTLS_PORT if mutual else SSL_PORT}"
    topic = kclients.unique_topic(f"tls-{client}")
    kclients.create_topic(b.bootstrap, topic, partitions=1)
    recs = [Rec(key=f"k{i}".encode(), value=f"over tls {i}".encode()) for i in range(20)]
    conf = _conf(client, d, mutual)
    kclients.produce(client, bootstrap, topic, recs, conf=conf)
    got = kclients.consume(client, bootstrap, topic, 20, conf=_conf(client, d, mutual))
    assert [r.value for r in got] == [r.value for r in recs]


def test_mtls_refuses_a_client_without_a_certificate(tls_broker):
    _, d = tls_broker
    ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
    with socket.create_connection(("127.0.0.1", MTLS_PORT), timeout=10) as raw:
        try:
            s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        except (ssl.SSLError, OSError):
            return  # refused in the handshake
        with s:
            # TLS 1.3: the client's side finishes first; the refusal comes on the next read.
            try:
                s.sendall(_api_versions_frame())
                answer = _read_frame(s)
            except (ssl.SSLError, OSError):
                answer = None
            assert answer is None, "no answer without a client certificate"


def _api_versions_frame():
    client_id = b"tls-test"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    return struct.pack(">i", len(body)) + body


def _read_frame(s):
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    (n,) = struct.unpack(">i", head)
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _closed(s):
    """True when the peer closes `s` (after whatever it sends first, e.g. a TLS alert)."""
    s.settimeout(10)
    try:
        while s.recv(4096):
            pass
        return True
    except (ConnectionError, socket.timeout):
        return False


def test_bad_input_closes_only_that_connection(tls_broker):
    b, d = tls_broker
    ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
    kept = ctx.wrap_socket(socket.create_connection(("127.0.0.1", SSL_PORT), timeout=10),
                           server_hostname="127.0.0.1")
    kept.sendall(_api_versions_frame())
    assert _read_frame(kept) is not None
    # Plain Kafka bytes to the TLS port.
    with socket.create_connection(("127.0.0.1", SSL_PORT), timeout=10) as plain:
        plain.sendall(_api_versions_frame())
        assert _closed(plain), "plaintext to the TLS port is closed"
    # A TLS ClientHello to the plaintext port.
    with socket.create_connection(("127.0.0.1", PLAIN_PORT), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    # Both the TLS client and a plaintext one keep being served.
    kept.sendall(_api_versions_frame())
    assert _read_frame(kept) is not None
    kept.close()
    with socket.create_connection(("127.0.0.1", PLAIN_PORT), timeout=10) as plain:
        plain.sendall(_api_versions_frame())
        assert _read_frame(plain) is not None
    assert b.alive()


INTERNAL_SSL_PORT = 24770


@pytest.mark.cluster
def test_brokers_replicate_over_an_ssl_inter_broker_listener(cluster_factory, tmp_path):
    """INTERNAL is SSL with client certificates required (each broker's keystore is its
    client certificate, its truststore checks the peer, hostnames checked: the certificate
    names 127.0.0.11 and .12); clients use PLAINTEXT. acks=all records reach both replicas
    and the followers' fetchers hold TLS connections to their leaders' INTERNAL ports."""
    from cluster import established_to, poll

    _make_certs(tmp_path)
    c = cluster_factory(n=2, start=False)
    internal = {}
    for b in c.brokers:
        ihost, iport = f"127.0.0.{10 + b.broker_id}", INTERNAL_SSL_PORT + b.broker_id
        internal[b.broker_id] = (ihost, iport)
        b.overrides.update({
            "listeners": f"INTERNAL://{ihost}:{iport},EXTERNAL://{b.host}:{b.port}",
            "advertised.listeners": f"INTERNAL://{ihost}:{iport},EXTERNAL://{b.host}:{b.port}",
            "listener.security.protocol.map": "INTERNAL:SSL,EXTERNAL:PLAINTEXT",
            "inter.broker.listener.name": "INTERNAL",
            "listener.name.internal.ssl.keystore.location": tmp_path / "server.p12",
            "listener.name.internal.ssl.keystore.password": "p12-secret",
            "listener.name.internal.ssl.truststore.type": "PEM",
            "listener.name.internal.ssl.truststore.location": tmp_path / "ca.pem",
            "listener.name.internal.ssl.client.auth": "required",
        })
    c.start()
    topic = c.create_topic(partitions=2, rf=2)
    recs = [Rec(value=f"s-{i:04d}".encode(), key=None, partition=i % 2) for i in range(200)]
    kclients.produce_confluent(c.bootstrap, topic, recs, acks="all")
    leaders = {pv.leader for pv in c.wait_isr_full(topic).values()}
    for leader in leaders:
        poll(lambda: established_to(*internal[leader]) or None, 15,
             f"a replica fetcher connected to broker {leader}'s SSL INTERNAL listener")
    for p in (0, 1):
        got = kclients.consume("confluent", c.bootstrap, topic, 100, partition=p)
        assert [r.value for r in got] == [r.value for r in recs if r.partition == p]
