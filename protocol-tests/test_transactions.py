"""Transactions with the real clients on one standalone broker (KIP-98, KIP-447):
confluent-kafka and kafka-python transactional producers; commits visible to
read_committed, aborts hidden from it and visible to read_uncommitted, read by
every client that has an isolation level (confluent, kafka-python, aiokafka,
kcat); one transaction over 20 partitions; consume-transform-produce with
send_offsets_to_transaction; a zombie producer fenced; a transaction left open
past its timeout aborted by the coordinator, after which the LSO moves on; a
producer restarted after a crash aborting its predecessor's transaction.

The module's broker keeps the default 50 ``__transaction_state`` partitions and
aborts timed-out transactions every 500 ms."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import pytest

import kclients
import txnclients as tx
from brokers import BrokerFactory
from cluster import poll
from kclients import Rec, consume, create_topic
from txnclients import READ_COMMITTED, READ_UNCOMMITTED, TxnProducer

PRODUCERS = ("confluent", "kafka-python")
READERS = ("confluent", "kafka-python", "aiokafka", "kcat")


@pytest.fixture(scope="module")
def _txn_module_broker(tmp_path_factory):
    f = BrokerFactory(tmp_path_factory.mktemp("txnbroker"))
    b = f({"transaction.abort.timed.out.transaction.cleanup.interval.ms": 500})
    yield b
    f.close()


@pytest.fixture
def txn_broker(_txn_module_broker):
    """One broker for the module (tests use unique topics and transactional ids)."""
    _txn_module_broker.assert_alive()
    yield _txn_module_broker
    _txn_module_broker.assert_alive()


def recs(prefix: str, n: int, partition: int = 0) -> list:
    return [Rec(value=f"{prefix}-{i:04d}".encode(), key=f"k{i}".encode(), partition=partition)
            for i in range(n)]


def isolation_conf(reader: str, isolation: str) -> dict:
    if reader in ("confluent", "kcat"):
        return {"isolation.level": isolation}
    return {"isolation_level": isolation}


def run_txn(client, bs, topic, tid, batches):
    """One producer, one transaction per (records, commit?) in ``batches``;
    the producer's acks [(value, partition, offset)] per batch."""
    p = TxnProducer(client, bs, tid)
    out = []
    try:
        p.init()
        for rs, commit in batches:
            p.begin()
            p.send_all(topic, rs)
            p.flush()
            before = len(p.acks)
            p.commit() if commit else p.abort()
            out.append(p.acks[before - len(rs):before] if rs else [])
    finally:
        p.close()
    return out


# --------------------------------------------------- commit / abort ----

@pytest.mark.timeout(150)
@pytest.mark.parametrize("writer", PRODUCERS)
def test_commit_visible_abort_hidden_every_reader(txn_broker, writer):
    """Committed A, aborted B, committed C in one partition: read_committed
    readers get exactly A then C at the producer's offsets; read_uncommitted
    readers get A, B, C; the markers take one offset each and are never
    returned."""
    bs = txn_broker.bootstrap
    topic = create_topic(bs)
    a, b, c = recs("A", 5), recs("B", 5), recs("C", 5)
    acks = run_txn(writer, bs, topic, tx.unique_tid(), [(a, True), (b, False), (c, True)])
    offs = [[o for _, _, o in batch] for batch in acks]
    # Each transaction's records are contiguous; one control record after each.
    assert offs == [list(range(0, 5)), list(range(6, 11)), list(range(12, 17))], offs
    assert tx.wait_lso_at_end(txn_broker, topic, 1) == {0: 18}
    want_committed = [(r.value, o) for r, o in zip(a + c, offs[0] + offs[2])]
    want_all = [(r.value, o) for r, o in zip(a + b + c, offs[0] + offs[1] + offs[2])]
    for reader in READERS:
        got = consume(reader, bs, topic, 10, conf=isolation_conf(reader, READ_COMMITTED))
        assert [(g.value, g.offset) for g in got] == want_committed, \
            f"{reader} read_committed after a {writer} abort"
        got = consume(reader, bs, topic, 15, conf=isolation_conf(reader, READ_UNCOMMITTED))
        assert [(g.value, g.offset) for g in got] == want_all, f"{reader} read_uncommitted"
    # Nothing past C for either level (the two whole-topic readers stop at the end).
    for client in ("confluent", "kafka-python"):
        assert tx.values(tx.read_to_end(client, bs, topic, 1, READ_COMMITTED)) == \
            [r.value for r in a + c], client
        assert tx.values(tx.read_to_end(client, bs, topic, 1, READ_UNCOMMITTED)) == \
            [r.value for r in a + b + c], client


@pytest.mark.parametrize("writer", PRODUCERS)
def test_many_partitions_in_one_transaction(txn_broker, writer):
    """One transaction writes to 20 partitions and commits, the next writes to
    all 20 and aborts, a third commits: read_committed sees the first and
    third on every partition; the LSO equals the high watermark everywhere."""
    bs = txn_broker.bootstrap
    n = 20
    topic = create_topic(bs, partitions=n)
    first = [r for p in range(n) for r in recs(f"one-p{p}", 3, p)]
    aborted = [r for p in range(n) for r in recs(f"two-p{p}", 2, p)]
    third = [r for p in range(n) for r in recs(f"three-p{p}", 1, p)]
    run_txn(writer, bs, topic, tx.unique_tid(), [(first, True), (aborted, False), (third, True)])
    ends = tx.wait_lso_at_end(txn_broker, topic, n)
    # 3 + marker + 2 + marker + 1 + marker per partition.
    assert ends == {p: 9 for p in range(n)}
    for client in ("confluent", "kafka-python"):
        got = tx.by_partition(tx.read_to_end(client, bs, topic, n, READ_COMMITTED))
        assert got == {p: [r.value for r in first + third if r.partition == p] for p in range(n)}, \
            client
    got = tx.by_partition(tx.read_to_end("confluent", bs, topic, n, READ_UNCOMMITTED))
    assert got == {p: [r.value for r in first + aborted + third if r.partition == p]
                   for p in range(n)}
    # ListOffsets through the clients' own offset APIs: READ_COMMITTED = the end.
    from confluent_kafka import IsolationLevel, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    admin = kclients.admin_client(bs)
    req = {TopicPartition(topic, p): OffsetSpec.latest() for p in range(n)}
    res = admin.list_offsets(req, isolation_level=IsolationLevel.READ_COMMITTED,
                             request_timeout=15)
    assert {tp.partition: f.result(timeout=20).offset for tp, f in res.items()} == ends


@pytest.mark.timeout(120)
def test_interleaved_producers_every_reader(txn_broker):
    """A confluent and a kafka-python transactional producer interleave their
    transactions in one partition for three rounds, one committing and the
    other aborting in turn: every reader at read_committed returns exactly
    the committed records at their offsets (the aborted-transaction lists
    name the right producer), at read_uncommitted all of them."""
    bs = txn_broker.bootstrap
    topic = create_topic(bs)
    p1 = TxnProducer("confluent", bs, tx.unique_tid("il1"))
    p2 = TxnProducer("kafka-python", bs, tx.unique_tid("il2"))
    committed: set = set()
    try:
        p1.init()
        p2.init()
        for rnd in range(3):
            p1.begin()
            p2.begin()
            for part in range(2):
                for p, name in ((p1, "cf"), (p2, "kp")):
                    p.send_all(topic, recs(f"{name}-r{rnd}-{part}", 2))
                    p.flush()
            first_commits = rnd % 2 == 0
            for p, name, commit in ((p1, "cf", first_commits), (p2, "kp", not first_commits)):
                p.commit() if commit else p.abort()
                if commit:
                    committed |= {f"{name}-r{rnd}-{part}-{i:04d}".encode()
                                  for part in range(2) for i in range(2)}
    finally:
        p1.close()
        p2.close()
    acks = sorted(p1.acks + p2.acks, key=lambda a: a[2])
    assert len(acks) == 24
    want_committed = [(v, o) for v, _, o in acks if v in committed]
    want_all = [(v, o) for v, _, o in acks]
    assert len(want_committed) == 12
    tx.wait_lso_at_end(txn_broker, topic, 1)
    for reader in READERS:
        got = consume(reader, bs, topic, 12, conf=isolation_conf(reader, READ_COMMITTED))
        assert [(g.value, g.offset) for g in got] == want_committed, f"{reader} read_committed"
        got = consume(reader, bs, topic, 24, conf=isolation_conf(reader, READ_UNCOMMITTED))
        assert [(g.value, g.offset) for g in got] == want_all, f"{reader} read_uncommitted"


# --------------------------------------------- consume-transform-produce ----

def _group_consumer(client: str, bs: str, group: str, topic: str):
    if client == "confluent":
        from confluent_kafka import Consumer

        c = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "isolation.level": READ_COMMITTED,
                      "session.timeout.ms": 10000})
        c.subscribe([topic])
    else:
        from kafka import KafkaConsumer

        c = KafkaConsumer(topic, bootstrap_servers=bs, group_id=group, enable_auto_commit=False,
                          auto_offset_reset="earliest", isolation_level=READ_COMMITTED,
                          session_timeout_ms=10000)
    return c


def _poll_n(client, consumer, n):
    """Exactly the next ``n`` records of the consumer's one partition (it may
    fetch more; the rest are left for later calls through ``_poll_n.buf``)."""
    buf = _poll_n.buf.setdefault(id(consumer), [])

    def have():
        if len(buf) >= n:
            return True
        if client == "confluent":
            for m in consumer.consume(num_messages=n, timeout=0.5):
                assert not m.error(), m.error()
                buf.append((m.value(), m.offset()))
        else:
            for msgs in consumer.poll(timeout_ms=500).values():
                buf.extend((m.value, m.offset) for m in msgs)
        return len(buf) >= n

    poll(have, 30, f"{n} input records")
    out = buf[:n]
    del buf[:n]
    return out


_poll_n.buf = {}


def _committed(client, consumer, topic):
    if client == "confluent":
        from confluent_kafka import TopicPartition

        return consumer.committed([TopicPartition(topic, 0)], timeout=15)[0].offset
    from kafka import TopicPartition

    return consumer.committed(TopicPartition(topic, 0))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("client", PRODUCERS)
def test_consume_transform_produce(txn_broker, client):
    """A group member reads 10 input records; transaction 1 writes the first 5
    transformed and sends offset 5 with send_offsets_to_transaction, commits;
    transaction 2 writes the next 5, sends offset 10, aborts.  Then the group's
    committed offset is 5 (committed() and OffsetFetch), the output holds only
    the first 5 for read_committed, and a successor in the group resumes at 5."""
    bs = txn_broker.bootstrap
    src, dst = create_topic(bs), create_topic(bs)
    group = f"ctp-{uuid.uuid4().hex[:8]}"
    kclients.produce("confluent", bs, src, recs("in", 10))
    tid = tx.unique_tid("ctp")
    p = TxnProducer(client, bs, tid)
    consumer = _group_consumer(client, bs, group, src)
    try:
        p.init()
        for start, commit in ((0, True), (5, False)):
            got = _poll_n(client, consumer, 5)
            assert [o for _, o in got] == list(range(start, start + 5))
            p.begin()
            for v, _ in got:
                p.send(dst, v.replace(b"in-", b"out-"), 0)
            p.send_offsets({(src, 0): got[-1][1] + 1}, consumer)
            p.flush()
            if commit:
                p.commit()
                assert poll(lambda: _committed(client, consumer, src) == 5, 30,
                            "offset 5 committed by the transaction")
            else:
                p.abort()
        tx.wait_txn_state(txn_broker, tid, "CompleteAbort")
        assert _committed(client, consumer, src) == 5, \
            "the aborted transaction's offset 10 was committed"
        err, offs = tx.offset_fetch(txn_broker, group, src, [0], require_stable=True)
        assert (err, offs) == (0, {0: (5, 0)})
    finally:
        p.close()
        consumer.close()
        _poll_n.buf.pop(id(consumer), None)
    out = tx.read_to_end("kafka-python", bs, dst, 1, READ_COMMITTED)
    assert tx.values(out) == [f"out-{i:04d}".encode() for i in range(5)]
    succ = _group_consumer(client, bs, group, src)
    try:
        assert [o for _, o in _poll_n(client, succ, 5)] == list(range(5, 10))
    finally:
        succ.close()
        _poll_n.buf.pop(id(succ), None)


# --------------------------------------------------------------- fencing ----

@pytest.mark.parametrize("client", PRODUCERS)
def test_zombie_producer_fenced(txn_broker, client):
    """Producer 1 opens a transaction and writes; producer 2 with the same
    transactional id initialises (fencing 1 and aborting its transaction),
    writes and commits.  Producer 1's next send/commit fails as fenced; its
    records are never visible to read_committed, producer 2's are."""
    bs = txn_broker.bootstrap
    topic = create_topic(bs)
    tid = tx.unique_tid("zombie")
    zombie = TxnProducer(client, bs, tid)
    fresh = TxnProducer(client, bs, tid)
    try:
        zombie.init()
        zombie.begin()
        zombie.send_all(topic, recs("zombie", 4))
        zombie.flush()
        first_epoch = tx.describe_txns(txn_broker, [tid])[tid].producer_epoch
        fresh.init()
        d = tx.describe_txns(txn_broker, [tid])[tid]
        assert d.producer_epoch > first_epoch, d
        fresh.begin()
        fresh.send_all(topic, recs("fresh", 3))
        fresh.flush()
        fresh.commit()
        failures = []
        try:
            zombie.send_all(topic, recs("late", 2))
            zombie.flush(raise_errors=False)
        except Exception as e:  # noqa: BLE001
            # confluent-kafka 2.16's flush() can surface the fatal error as a
            # SystemError of the binding; commit_transaction reports it cleanly.
            failures.append(e)
        failures += zombie.errors
        try:
            zombie.commit()
            committed = True
        except Exception as e:  # noqa: BLE001
            committed = False
            failures.append(e)
        assert not committed, "the zombie producer committed after being fenced"
        assert any(tx.is_fenced(f) for f in failures), \
            f"the zombie failed, but not as fenced: {failures!r}"
    finally:
        zombie.close()
        fresh.close()
    tx.wait_lso_at_end(txn_broker, topic, 1)
    assert tx.values(tx.read_to_end("confluent", bs, topic, 1, READ_COMMITTED)) == \
        [r.value for r in recs("fresh", 3)]
    all_vals = tx.values(tx.read_to_end("kafka-python", bs, topic, 1, READ_UNCOMMITTED))
    assert all_vals == [r.value for r in recs("zombie", 4) + recs("fresh", 3)], \
        "the fenced producer's late records were appended"


# --------------------------------------------------------------- timeout ----

@pytest.mark.parametrize("client", PRODUCERS)
def test_open_transaction_aborted_after_timeout(txn_broker, client):
    """A producer (transaction.timeout.ms=2000) writes in a transaction and then
    does nothing.  The coordinator aborts it (state CompleteAbort, epoch
    bumped), the LSO reaches the high watermark, a read_committed consumer
    reaches data committed after it, and the stale producer cannot commit."""
    bs = txn_broker.bootstrap
    topic = create_topic(bs)
    tid = tx.unique_tid("timeout")
    stale = TxnProducer(client, bs, tid, timeout_ms=2000)
    try:
        stale.init()
        epoch0 = tx.describe_txns(txn_broker, [tid])[tid].producer_epoch
        stale.begin()
        stale.send_all(topic, recs("stale", 5))
        stale.flush()
        lso, hw = tx.lso_and_hw(txn_broker, topic, 1)
        d = tx.describe_txns(txn_broker, [tid])[tid]
        assert d.transaction_timeout_ms == 2000, d
        if d.transaction_state == "Ongoing":
            # Still open after the LSO was read, so no marker was written before.
            assert (lso, hw) == ({0: 0}, {0: 5}), "the open transaction does not hold the LSO"
        d = tx.wait_txn_state(txn_broker, tid, "CompleteAbort")
        assert d.producer_epoch > epoch0, "a timed-out transaction's abort bumps the epoch"
        assert tx.wait_lso_at_end(txn_broker, topic, 1) == {0: 6}
        run_txn("confluent", bs, topic, tx.unique_tid(), [(recs("after", 3), True)])
        got = consume("kafka-python", bs, topic, 3,
                      conf={"isolation_level": READ_COMMITTED})
        assert [(g.value, g.offset) for g in got] == \
            [(r.value, 6 + i) for i, r in enumerate(recs("after", 3))]
        # kafka-python's own offsets API (ListOffsets READ_COMMITTED) = the end.
        from kafka import KafkaConsumer, TopicPartition

        kc = KafkaConsumer(bootstrap_servers=bs, isolation_level=READ_COMMITTED)
        try:
            assert kc.end_offsets([TopicPartition(topic, 0)]) == {TopicPartition(topic, 0): 10}
        finally:
            kc.close()
        with pytest.raises(Exception):
            stale.send_all(topic, recs("stale-late", 1))
            stale.flush()
            stale.commit()
    finally:
        stale.close()
    assert tx.values(tx.read_to_end("confluent", bs, topic, 1, READ_COMMITTED)) == \
        [r.value for r in recs("after", 3)]


# ------------------------------------------------------ crash and restart ----

_CRASHER = textwrap.dedent("""
    import sys, time
    client, bs, topic, tid = sys.argv[1:5]
    sys.path.insert(0, sys.argv[5])
    from txnclients import TxnProducer
    from kclients import Rec
    p = TxnProducer(client, bs, tid, timeout_ms=60000)
    p.init()
    p.begin()
    p.send_all(topic, [Rec(value=f"crashed-{i:04d}".encode(), partition=0) for i in range(6)])
    p.flush()
    print("ready", flush=True)
    time.sleep(300)
""")


@pytest.mark.parametrize("client", PRODUCERS)
def test_restarted_producer_aborts_crashed_transaction(txn_broker, client):
    """A producer process with an open transaction (timeout 60 s) is SIGKILLed;
    a new producer with the same transactional id initialises, which aborts
    the old transaction at once (not after its timeout), and commits its own
    records: read_committed shows only those, read_uncommitted both."""
    from pathlib import Path

    bs = txn_broker.bootstrap
    topic = create_topic(bs)
    tid = tx.unique_tid("crash")
    here = str(Path(__file__).resolve().parent)
    proc = subprocess.Popen([sys.executable, "-c", _CRASHER, client, bs, topic, tid, here],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", f"crasher: {line!r} {proc.stderr.read()[-2000:] if proc.poll() is not None else ''}"
        assert tx.txn_state(txn_broker, tid) == "Ongoing"
    finally:
        proc.kill()
        proc.wait(10)
    new = TxnProducer(client, bs, tid, timeout_ms=60000)
    try:
        new.init()
        assert tx.txn_state(txn_broker, tid) in ("CompleteAbort", "Empty"), \
            "init_transactions returned before the crashed transaction was aborted"
        new.begin()
        new.send_all(topic, recs("new", 4))
        new.flush()
        new.commit()
    finally:
        new.close()
    assert tx.wait_lso_at_end(txn_broker, topic, 1, timeout=20) == {0: 12}
    assert tx.values(tx.read_to_end("confluent", bs, topic, 1, READ_COMMITTED)) == \
        [r.value for r in recs("new", 4)]
    assert tx.values(tx.read_to_end("kafka-python", bs, topic, 1, READ_UNCOMMITTED)) == \
        [f"crashed-{i:04d}".encode() for i in range(6)] + [r.value for r in recs("new", 4)]
