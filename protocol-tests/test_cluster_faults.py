"""Cluster fault injection (slow: minutes).  Runs only with ODRADEK_FAULT_TESTS=1:

    ODRADEK_FAULT_TESTS=1 .venv/bin/python -m pytest protocol-tests/test_cluster_faults.py

Each test keeps an idempotent acks=all producer writing while something breaks,
then checks (durability.py) that every acknowledged record is read back exactly
once, at its offset, in order, and that all replicas end with identical logs.
The network-partition test needs root (network namespaces, iptables)."""

import os
import threading
import time

import pytest

import kclients
from cluster import SESSION_TIMEOUT_MS, poll
from durability import (ContinuousProducer, acks1_write_accepted, assert_served_were_committed,
                        finish_and_verify, served_by)
from kclients import Rec

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(os.environ.get("ODRADEK_FAULT_TESTS") != "1",
                       reason="cluster fault injection is slow: set ODRADEK_FAULT_TESTS=1"),
    pytest.mark.timeout(300),
]

MIN_ISR2 = {"min.insync.replicas": "2"}
SESSION_S = SESSION_TIMEOUT_MS / 1000


def _summary(served):
    if isinstance(served, dict):
        return {p: len(r) for p, r in served.items()}
    return served


def _start(c, partitions=3, tag="f"):
    topic = c.create_topic(partitions=partitions, rf=3, config=MIN_ISR2)
    prod = ContinuousProducer(c.bootstrap, topic, partitions, tag=tag).start()
    prod.wait_acked(1000, what="before the fault ")
    return topic, prod


def test_sigstop_leader_past_session_timeout_then_sigcont(cluster_factory):
    """A leader frozen (SIGSTOP) longer than its ZooKeeper session is replaced;
    when it thaws it must not serve or acknowledge as leader, and it rejoins as
    a follower (truncating whatever it had beyond the new leader's log)."""
    c = cluster_factory(3)
    topic, prod = _start(c)
    victim = c.broker(c.leader(topic, 0))
    others = [i for i in (1, 2, 3) if i != victim.broker_id]
    try:
        victim.suspend()
        c.wait_registered(others, timeout=SESSION_S + 25)  # its session expired
        new = c.leader(topic, 0, exclude=(victim.broker_id,), timeout=30)
        prod.wait_acked(1000, timeout=60, what=f"with broker {victim.broker_id} frozen ")
        victim.resume()
        served = served_by(victim, topic, 3)  # right after the thaw
        c.wait_registered([1, 2, 3], timeout=40)
        c.wait_isr_full(topic, timeout=60)
        prod.wait_acked(500, timeout=40, what="after the thaw ")
    finally:
        if victim.suspended:
            victim.resume()
    final, _ = finish_and_verify(c, prod, topic, 3)
    assert_served_were_committed(served, final, f"thawed broker {victim.broker_id}")
    print(f"leader {victim.broker_id} -> {new}; thawed broker served {_summary(served)}")


def test_controller_killed_another_takes_over(cluster_factory):
    c = cluster_factory(3)
    topic, prod = _start(c)
    ctrl = c.controller()
    c.broker(ctrl).kill9()
    new_ctrl = c.controller(exclude=(ctrl,), timeout=SESSION_S + 25)
    survivors = c.bootstrap_without(ctrl)
    # the new controller creates topics and elects leaders
    t2 = c.create_topic(partitions=2, rf=2, via=survivors)
    recs = [Rec(value=f"t2-{i}".encode(), partition=i % 2) for i in range(40)]
    kclients.produce_confluent(survivors, t2, recs, conf={"enable.idempotence": True}, timeout=30)
    for p in (0, 1):
        got = kclients.consume("confluent", survivors, t2, 20, partition=p, timeout=30)
        assert [g.value for g in got] == [r.value for r in recs if r.partition == p]
    prod.wait_acked(1000, timeout=60, what="after the controller's crash ")
    c.broker(ctrl).start()
    c.wait_registered([1, 2, 3], timeout=30)
    c.wait_isr_full(topic, timeout=60)
    assert c.controller() == new_ctrl, "the restarted broker took the controller back"
    prod.wait_acked(500, what="after the old controller's restart ")
    finish_and_verify(c, prod, topic, 3)


def test_zookeeper_quick_restart(zk_factory, cluster_factory):
    """ZooKeeper killed and restarted within the session timeout: the sessions
    survive, every broker stays registered, writes go on, nothing is lost."""
    zk = zk_factory()
    c = cluster_factory(3, zk=zk)
    topic, prod = _start(c)
    zk.restart()
    prod.wait_acked(1000, timeout=40, what="after a ZooKeeper restart ")
    c.wait_registered([1, 2, 3], timeout=30)
    c.create_topic(partitions=1, rf=3)
    prod.wait_acked(500)
    finish_and_verify(c, prod, topic, 3)


def test_zookeeper_outage_longer_than_session(zk_factory, cluster_factory):
    """ZooKeeper down for longer than the session timeout.  As in Kafka,
    ZooKeeper is not in the data path: with an unchanged ISR, acks=all writes
    keep being acknowledged during the outage.  Afterwards the brokers
    re-register (new sessions), topic creation works and nothing is lost.
    (The progress during the outage is asserted last, so a broker that stalls
    still has its recovery checked.)"""
    zk = zk_factory()
    c = cluster_factory(3, zk=zk)
    topic, prod = _start(c)
    zk.stop()
    down_at, acked_at_stop = time.monotonic(), prod.n_acked()
    # an outage longer than the session timeout is the point: no condition to poll
    time.sleep(SESSION_S + 3)
    during = prod.n_acked() - acked_at_stop
    outage = time.monotonic() - down_at
    zk.start()
    c.wait_registered([1, 2, 3], timeout=45)
    c.create_topic(partitions=1, rf=3)
    c.wait_isr_full(topic, timeout=45)
    prod.wait_acked(1000, timeout=45, what="after ZooKeeper is back ")
    finish_and_verify(c, prod, topic, 3)
    assert during >= 1000, \
        f"only {during} records acknowledged during a {outage:.0f}s ZooKeeper outage " \
        "(Kafka keeps serving produce while ZooKeeper is away and the ISR does not change)"


def test_sigterm_leader_moves_leadership_before_exit(cluster_factory):
    """Controlled shutdown: on SIGTERM the broker hands its leaderships over
    (the other brokers' Metadata show new leaders) before it exits 0; the
    producer sees no delivery failure."""
    c = cluster_factory(3)
    topic, prod = _start(c)
    victim = c.broker(c.leader(topic, 0))
    others = [i for i in (1, 2, 3) if i != victim.broker_id]
    moved_at = []
    stop = threading.Event()

    def watch():
        while not stop.is_set() and not moved_at:
            try:
                views = c.views([topic], among=others)
                if all(pv.leader not in (victim.broker_id, -1)
                       for v in views.values() for pv in v.topics[topic].partitions.values()):
                    moved_at.append(time.monotonic())
            except Exception:  # noqa: BLE001
                pass
            time.sleep(0.02)

    w = threading.Thread(target=watch, daemon=True)
    w.start()
    rc = victim.stop(timeout=40)
    exited_at = time.monotonic()
    poll(lambda: moved_at, 10, "leaders moved off the stopped broker")
    stop.set()
    w.join(5)
    assert rc == 0, f"controlled shutdown exited {rc}"
    # 0.5 s: the other brokers learn the new leaders through ZooKeeper watches
    assert moved_at[0] <= exited_at + 0.5, \
        f"leaderships moved {moved_at[0] - exited_at:.1f}s after the broker exited " \
        "(no controlled shutdown: moved only when its registration vanished)"
    print(f"leaders moved {exited_at - moved_at[0]:.2f}s before the exit")
    prod.wait_acked(1000, timeout=40, what="after the controlled shutdown ")
    victim.start()
    c.wait_isr_full(topic, timeout=60)
    prod.wait_acked(300)
    finish_and_verify(c, prod, topic, 3)


def test_preferred_leader_returns_after_restart(cluster_factory):
    """auto.leader.rebalance.enable: after a crashed preferred leader rejoins the
    ISR, leadership moves back to it (checked every 5 s here)."""
    c = cluster_factory(3, overrides={"leader.imbalance.check.interval.seconds": 5,
                                      "auto.leader.rebalance.enable": "true"})
    topic, prod = _start(c)
    preferred = {p: c.partition(topic, p).replicas[0] for p in range(3)}
    assert c.leaders(topic) == preferred, "a new topic's leaders are its preferred replicas"
    victim = c.broker(preferred[0])
    victim.kill9()
    c.leader(topic, 0, exclude=(victim.broker_id,), timeout=SESSION_S + 25)
    prod.wait_acked(500, timeout=40, what="after the crash ")
    victim.start()
    c.wait_isr_full(topic, timeout=60)
    poll(lambda: c.leaders(topic, timeout=5) == preferred, 45,
         f"preferred leaders {preferred} restored")
    prod.wait_acked(500, what="after the preferred leader returned ")
    finish_and_verify(c, prod, topic, 3)


# ------------------------------------------------------ network partition ----

@pytest.fixture
def network():
    import netns

    why = netns.available()
    if why:
        pytest.fail(f"network-partition test cannot run here: {why}")
    n = netns.Network()
    yield n
    n.close()


def test_leader_partitioned_from_zookeeper_and_brokers(network, zk_factory, cluster_factory):
    """The leader of partition 0 loses ZooKeeper and the other brokers but still
    reaches the producer.  It must not acknowledge acks=all writes it cannot
    replicate; the others elect a new leader; after the heal it truncates and
    follows.  Every acknowledged record survives; what the isolated broker
    served to a consumer was committed; the replicas converge."""
    zk = zk_factory(host=network.add_node("zk", 2), prefix=network.prefix("zk"))
    ips = {i: network.add_node(f"b{i}", 10 + i) for i in (1, 2, 3)}
    c = cluster_factory(3, zk=zk, broker_kw=lambda i: {
        "host": ips[i], "port": 9092, "prefix": network.prefix(f"b{i}")})
    topic, prod = _start(c, partitions=2, tag="np")
    victim = c.broker(c.leader(topic, 0))
    others = [i for i in (1, 2, 3) if i != victim.broker_id]
    network.cut(f"b{victim.broker_id}", ["zk"] + [f"b{i}" for i in others])
    try:
        new = c.leader(topic, 0, exclude=(victim.broker_id,), among=others,
                       timeout=SESSION_S + 30)
        # Never two leaders taking writes: with a new leader elected, the
        # isolated one must not even acknowledge acks=1.
        assert not acks1_write_accepted(victim, topic, 0), \
            f"isolated broker {victim.broker_id} acknowledged an acks=1 write while {new} leads"
        prod.wait_acked(1000, timeout=90, what="with the old leader partitioned ")
        served = served_by(victim, topic, 2)
    finally:
        network.heal(f"b{victim.broker_id}")
    c.wait_registered([1, 2, 3], timeout=60)
    c.wait_isr_full(topic, timeout=90)
    prod.wait_acked(500, timeout=60, what="after the heal ")
    final, stats = finish_and_verify(c, prod, topic, 2, allowed_failures=("_MSG_TIMED_OUT",))
    assert_served_were_committed(served, final, f"partitioned broker {victim.broker_id}")
    print(f"leader {victim.broker_id} -> {new}; partitioned broker served {_summary(served)}")
