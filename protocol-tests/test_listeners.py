"""Named listeners (issue 14): two brokers on ZooKeeper replicate over an INTERNAL
listener on their own loopback addresses (127.0.0.11, 127.0.0.12) while clients
bootstrap over EXTERNAL (127.0.0.1) and are only ever told EXTERNAL addresses.
Fixed INTERNAL ports 29101-29102; EXTERNAL ports are free ports."""

from types import SimpleNamespace

import pytest

import kclients
from cluster import established_to, metadata, poll, raw_call, start_expect_exit
from kclients import Rec
from txnclients import find_txn_coordinator

pytestmark = pytest.mark.cluster

INTERNAL_PORT = 29100


def _internal(b):
    return (f"127.0.0.{10 + b.broker_id}", INTERNAL_PORT + b.broker_id)


def _listener_overrides(b):
    ihost, iport = _internal(b)
    return {
        "listeners": f"INTERNAL://{ihost}:{iport},EXTERNAL://{b.host}:{b.port}",
        "advertised.listeners": f"INTERNAL://{ihost}:{iport},EXTERNAL://{b.host}:{b.port}",
        "listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
        "inter.broker.listener.name": "INTERNAL",
    }


def _find_group_coordinator(host, port, version):
    from kafka.protocol.metadata.find_coordinator import (FindCoordinatorRequest,
                                                          FindCoordinatorResponse)
    where = SimpleNamespace(host=host, port=port)
    if version >= 4:
        r = raw_call(where, FindCoordinatorRequest(key_type=0, coordinator_keys=["g"]),
                     version, FindCoordinatorResponse)
        c = r.coordinators[0]
        return c.error_code, c.node_id, c.host, c.port
    r = raw_call(where, FindCoordinatorRequest(key="g", key_type=0), version,
                 FindCoordinatorResponse)
    return r.error_code, r.node_id, r.host, r.port


def test_clients_see_external_brokers_replicate_internal(cluster_factory):
    c = cluster_factory(n=2, start=False)
    for b in c.brokers:
        b.overrides.update(_listener_overrides(b))
    c.start()
    external = {b.broker_id: (b.host, b.port) for b in c.brokers}
    internal = {b.broker_id: _internal(b) for b in c.brokers}

    # Metadata through each listener names every broker at that listener's address
    # (the peer's endpoints come from its ZooKeeper registration).
    for b in c.brokers:
        assert metadata(b.host, b.port).brokers == external
        assert metadata(*_internal(b)).brokers == internal

    topic = c.create_topic(partitions=2, rf=2)
    recs = [Rec(value=f"v-{i:04d}".encode(), key=None, partition=i % 2) for i in range(200)]
    kclients.produce_confluent(c.bootstrap, topic, recs, acks="all")
    for p in (0, 1):
        got = kclients.consume("kafka-python", c.bootstrap, topic, 100, partition=p)
        assert [r.value for r in got] == [r.value for r in recs if r.partition == p]

    # Followers fetch from their leaders' INTERNAL endpoints (one leader per broker,
    # as two partitions on two brokers are spread).
    leaders = {pv.leader for pv in c.wait_isr_full(topic).values()}
    for leader in leaders:
        poll(lambda: established_to(*internal[leader]) or None, 15,
             f"a replica fetcher connected to broker {leader}'s INTERNAL listener")

    # Coordinators are reported at the address of the listener asked.
    for b in c.brokers:
        for version in (3, 4):
            err, node, host, port = poll(
                lambda: (lambda r: r if r[0] == 0 else None)(
                    _find_group_coordinator(b.host, b.port, version)),
                20, "group coordinator via EXTERNAL")
            assert (host, port) == external[node]
            err, node, host, port = _find_group_coordinator(*_internal(b), version)
            assert (err, (host, port)) == (0, internal[node])
        err, node, host, port = find_txn_coordinator(b, "tx-listeners")
        assert (err, (host, port)) == (0, external[node])


def test_secured_listener_refused_at_start(broker_factory):
    b = broker_factory(overrides={
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "advertised.listeners": "PLAINTEXT://127.0.0.1:1",
    }, start=False)
    rc = start_expect_exit(b, 10)
    # What the broker wrote, without the harness's command-line lines.
    log = "\n".join(ln for ln in b.log_file.read_text(errors="replace").splitlines()
                    if not ln.startswith("==== start"))
    assert rc != 0, log
    # SASL listeners are served, but not with Kafka's default mechanism, GSSAPI.
    assert "GSSAPI" in log and "sasl.enabled.mechanisms" in log, log
