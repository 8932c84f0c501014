"""Consumer groups with real clients: membership, rebalances, assignors, commits.

Every member runs in its own process (groupclients.Member), so the three
Python clients run concurrently and a member can be SIGKILLed.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest

import groupclients as gc
import kclients
from groupclients import CLIENTS, Members, balanced, wait_all
from kclients import Rec


def gid(prefix="g"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def spread(n, partitions, prefix="v"):
    return [Rec(value=f"{prefix}-{i:05d}".encode(), key=f"k{i}".encode(), partition=i % partitions)
            for i in range(n)]


def describe(bootstrap, group):
    from confluent_kafka.admin import AdminClient

    a = AdminClient({"bootstrap.servers": bootstrap})
    res = a.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    del a
    return res


# 1 ---------------------------------------------------------------------------

def test_three_clients_share_partitions_and_read_each_record_once(shared_broker):
    b = shared_broker.bootstrap
    topic = kclients.create_topic(b, partitions=6)
    group = gid()
    with Members() as ms:
        members = [ms.add(c, b, group, topics=[topic]) for c in CLIENTS]
        wait_all(members, balanced(topic, 6, per_member=2), what="2 partitions each")
        # Stable: nobody rejoins any more.
        time.sleep(1.0)
        assert balanced(topic, 6, per_member=2)(members)
        recs = spread(600, 6)
        kclients.produce("confluent", b, topic, recs)
        wait_all(members, lambda ms_: sum(len(m.records(topic)) for m in ms_) >= 600,
                 what="600 records")
        time.sleep(1.0)
        got = []
        for m in members:
            mine = m.records(topic)
            parts = {p for _, p, _, _ in mine}
            assert parts <= {p for _, p in m.assignment}, \
                f"{m.name} read partitions {parts} outside its assignment {m.assignment}"
            got += mine
        assert len(got) == 600, f"{len(got)} records read, duplicates: " \
                                f"{len(got) - len(set(got))}"
        assert sorted(v for *_, v in got) == sorted(r.value.decode() for r in recs)
        for m in members:
            assert not m.errors(), f"{m.name}: {m.errors()}"
        d = describe(b, group)
        assert len(d.members) == 3
        assert str(d.state).endswith("STABLE"), d.state
        for m in members:
            m.stop()


# 2 ---------------------------------------------------------------------------

def test_leave_and_kill_rebalance_to_survivors(shared_broker):
    b = shared_broker.bootstrap
    topic = kclients.create_topic(b, partitions=6)
    group = gid()
    with Members() as ms:
        kp = ms.add("kafka-python", b, group, topics=[topic])
        cf = ms.add("confluent", b, group, topics=[topic])
        ak = ms.add("aiokafka", b, group, topics=[topic])
        wait_all([kp, cf, ak], balanced(topic, 6, per_member=2), what="initial balance")
        kp.stop()  # close(): LeaveGroup
        t0 = time.monotonic()
        wait_all([cf, ak], balanced(topic, 6, per_member=3), timeout=15,
                 what="rebalance after close()")
        assert time.monotonic() - t0 < 10, "a LeaveGroup should rebalance at once"
        cf.kill9()  # no LeaveGroup: the session (6 s) has to expire
        t0 = time.monotonic()
        wait_all([ak], balanced(topic, 6, per_member=6), timeout=25,
                 what="rebalance after SIGKILL")
        took = time.monotonic() - t0
        assert took > 3, f"survivor took over after {took:.1f}s, before the session could expire"
        # The survivor really reads the whole topic now.
        kclients.produce("confluent", b, topic, spread(60, 6, "after"))
        ak.wait_for(lambda m: sum(1 for r in m.records(topic) if r[3].startswith("after")) >= 60,
                    what="60 records after the rebalances")
        d = describe(b, group)
        assert len(d.members) == 1
        ak.stop()


# 3 ---------------------------------------------------------------------------

@pytest.mark.parametrize("client", CLIENTS)
def test_commit_close_resume(shared_broker, client):
    b = shared_broker.bootstrap
    topic = kclients.create_topic(b, partitions=3)
    group = gid()
    first = spread(30, 3, "first")
    kclients.produce("confluent", b, topic, first)
    with Members() as ms:
        m1 = ms.add(client, b, group, topics=[topic])
        m1.wait_for(lambda m: len(m.records(topic)) >= 30, what="30 records")
        m1.commit()
        m1.stop()
        assert len(m1.records(topic)) == 30
        second = spread(21, 3, "second")
        kclients.produce("confluent", b, topic, second)
        m2 = ms.add(client, b, group, topics=[topic])
        m2.wait_for(lambda m: len(m.records(topic)) >= 21, what="21 records after resume")
        time.sleep(1.5)
        vals = sorted(r[3] for r in m2.records(topic))
        assert vals == sorted(r.value.decode() for r in second), \
            f"resumed member re-read or skipped records: {vals[:10]}"
        assert min(r[2] for r in m2.records(topic)) == 10  # 30/3 per partition before
        m2.stop()


# 6 ---------------------------------------------------------------------------

@pytest.mark.parametrize("client", CLIENTS)
def test_pattern_subscription_picks_up_new_topic(shared_broker, client):
    b = shared_broker.bootstrap
    prefix = f"pat-{uuid.uuid4().hex[:8]}"
    t1 = kclients.create_topic(b, name=f"{prefix}-a", partitions=2)
    group = gid()
    with Members() as ms:
        m = ms.add(client, b, group, pattern=f"^{prefix}-.*")
        m.wait_for(lambda m: {(t1, 0), (t1, 1)} <= m.assignment, what="first topic assigned")
        t2 = kclients.create_topic(b, name=f"{prefix}-b", partitions=2)
        m.wait_for(lambda m: {(t2, 0), (t2, 1)} <= m.assignment, timeout=30,
                   what="topic created later assigned")
        kclients.produce("confluent", b, t2, spread(10, 2, "late"))
        m.wait_for(lambda m: len(m.records(t2)) >= 10, what="records of the new topic")
        m.stop()


# 7 ---------------------------------------------------------------------------

def test_cooperative_sticky_incremental_revoke(shared_broker):
    b = shared_broker.bootstrap
    topic = kclients.create_topic(b, partitions=6)
    group = gid()
    with Members() as ms:
        c1 = ms.add("confluent", b, group, topics=[topic], assignor="cooperative-sticky", name="c1")
        c1.wait_for(lambda m: len(m.assignment) == 6, what="c1 owns all 6")
        n_cb = len(c1.callbacks())
        c2 = ms.add("confluent", b, group, topics=[topic], assignor="cooperative-sticky", name="c2")
        wait_all([c1, c2], balanced(topic, 6, per_member=3), what="3 + 3")
        time.sleep(2)
        assert balanced(topic, 6, per_member=3)([c1, c2])
        later = c1.callbacks()[n_cb:]
        revoked = set().union(*[p for ev, p in later if ev == "revoked"] or [set()])
        assert revoked, f"c1 saw no revoke: {later}"
        assert len(revoked) == 3 and revoked.isdisjoint(c1.assignment), \
            f"c1 revoked {sorted(revoked)}, kept {sorted(c1.assignment)}: not incremental ({later})"
        assert revoked == c2.assignment
        for ev, parts in c1.callbacks():
            if ev == "revoked":
                assert len(parts) < 6, f"eager-style revoke of everything: {c1.callbacks()}"
        d = describe(b, group)
        assert d.partition_assignor == "cooperative-sticky"
        c1.stop()
        c2.stop()


# 8 ---------------------------------------------------------------------------

@pytest.mark.parametrize("client,assignor", [
    ("kafka-python", "range"), ("kafka-python", "roundrobin"), ("kafka-python", "sticky"),
    ("aiokafka", "roundrobin"), ("aiokafka", "sticky"),
    ("confluent", "range"), ("confluent", "roundrobin"),
])
def test_assignors(shared_broker, client, assignor):
    b = shared_broker.bootstrap
    ta = kclients.create_topic(b, partitions=3)
    tb = kclients.create_topic(b, partitions=3)
    group = gid()
    with Members() as ms:
        m = [ms.add(client, b, group, topics=[ta, tb], assignor=assignor, name=f"{client}{i}")
             for i in range(2)]

        def ok(members):
            if not (balanced(ta, 3)(members) and balanced(tb, 3)(members)):
                return False
            sizes = sorted(len(x.assignment) for x in members)
            return sizes == ([2, 4] if assignor == "range" else [3, 3])

        wait_all(m, ok, what=f"{assignor} assignment")
        d = describe(b, group)
        assert d.partition_assignor == assignor
        assert len(d.members) == 2
        for x in m:
            x.stop()


# 9 ---------------------------------------------------------------------------

def _kcat_group(b, group, topic, timeout=40):
    cmd = [kclients.kcat_bin(), "-b", b, "-G", group, topic, "-e", "-q",
           "-f", "%p %o %s\\n", "-X", "auto.offset.reset=earliest",
           "-X", "session.timeout.ms=6000", "-X", "auto.commit.interval.ms=200"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"kcat -G rc={proc.returncode}: {proc.stderr[-2000:]}"
    return [tuple(line.split(" ", 2)) for line in proc.stdout.splitlines() if line.strip()]


def test_kcat_balanced_consumer_resumes(shared_broker):
    b = shared_broker.bootstrap
    topic = kclients.create_topic(b, partitions=2)
    group = gid("kcat")
    kclients.produce("confluent", b, topic, spread(20, 2, "one"))
    got = _kcat_group(b, group, topic)
    assert sorted(v for *_, v in got) == sorted(f"one-{i:05d}" for i in range(20))
    kclients.produce("confluent", b, topic, spread(8, 2, "two"))
    got2 = _kcat_group(b, group, topic)
    assert sorted(v for *_, v in got2) == sorted(f"two-{i:05d}" for i in range(8)), \
        f"kcat -G did not resume at its committed offsets: {got2[:5]}"
    # The python clients resume from kcat's commits too.
    with Members() as ms:
        m = ms.add("kafka-python", b, group, topics=[topic])
        kclients.produce("confluent", b, topic, spread(4, 2, "three"))
        m.wait_for(lambda m: len(m.records(topic)) >= 4, what="4 new records")
        time.sleep(1)
        assert sorted(r[3] for r in m.records(topic)) == [f"three-{i:05d}" for i in range(4)]
        m.stop()


# 10 --------------------------------------------------------------------------

def test_static_membership_restart_keeps_assignment(shared_broker):
    b = shared_broker.bootstrap
    topic = kclients.create_topic(b, partitions=6)
    group = gid("static")
    conf = lambda inst: {"group.instance.id": inst, "session.timeout.ms": 15000}  # noqa: E731
    with Members() as ms:
        a = ms.add("confluent", b, group, topics=[topic], conf=conf("inst-a"), name="a")
        bb = ms.add("confluent", b, group, topics=[topic], conf=conf("inst-b"), name="b")
        wait_all([a, bb], balanced(topic, 6, per_member=3), what="3 + 3")
        time.sleep(1.5)
        before_a, before_b = a.assignment, bb.assignment
        b_callbacks = len(bb.callbacks())
        a.kill9()
        a2 = ms.add("confluent", b, group, topics=[topic], conf=conf("inst-a"), name="a2")
        a2.wait_for(lambda m: len(m.assignment) == 3, what="restarted static member assigned")
        time.sleep(3)
        assert a2.assignment == before_a, f"{a2.assignment} != {before_a}"
        assert bb.assignment == before_b
        assert bb.callbacks()[b_callbacks:] == [], \
            f"the other member was rebalanced: {bb.callbacks()[b_callbacks:]}"
        d = describe(b, group)
        assert sorted(x.group_instance_id for x in d.members) == ["inst-a", "inst-b"]
        a2.stop()
        bb.stop()
