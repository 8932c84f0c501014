"""Transactions across restarts of a standalone broker (SIGTERM and kill -9):
committed transactions stay committed, aborted ones stay aborted, a
transaction left open by a vanished producer is aborted after its timeout by
the coordinator that reloaded ``__transaction_state``, one whose producer is
still there completes, and read_committed never shows an aborted record.  A
restart right after EndTxn returned (markers possibly not all written yet)
must still end with the transaction committed everywhere.

Brokers here use 5 ``__transaction_state`` partitions (cheap start-up) and
abort timed-out transactions every 500 ms."""

from __future__ import annotations

import pytest

import txnclients as tx
from kclients import Rec, create_topic
from txnclients import READ_COMMITTED, READ_UNCOMMITTED, TxnProducer

OVERRIDES = {
    "transaction.state.log.num.partitions": 5,
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500,
}


def spread(prefix: str, n: int, partitions: int) -> list:
    return [Rec(value=f"{prefix}-{i:04d}".encode(), partition=i % partitions) for i in range(n)]


def vals(rs) -> list:
    return [r.value for r in rs]


def per_partition(rs, partitions) -> dict:
    out = {p: [] for p in range(partitions)}
    for r in rs:
        out[r.partition].append(r.value)
    return {p: v for p, v in out.items() if v}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_restart_in_the_middle_of_transactions(broker_factory, how):
    """Before the restart: A committed, B aborted, C open by a producer that
    then goes silent (timeout 3 s), D open by a producer that carries on
    (timeout 60 s).  After it: D writes more and commits; C is aborted by the
    coordinator; then read_committed shows exactly A and D, read_uncommitted
    A, B, C and D, and the LSO is the end of every partition."""
    br = broker_factory(OVERRIDES)
    bs = br.bootstrap
    n = 3
    topic = create_topic(bs, partitions=n)
    a, b, c = spread("A", 9, n), spread("B", 6, n), spread("C", 6, n)
    d1, d2 = spread("D1", 6, n), spread("D2", 3, n)
    tid_a, tid_b, tid_c, tid_d = (tx.unique_tid(x) for x in "abcd")

    pa = TxnProducer("confluent", bs, tid_a)
    pb = TxnProducer("kafka-python", bs, tid_b)
    pc = TxnProducer("confluent", bs, tid_c, timeout_ms=3000)
    pd = TxnProducer("kafka-python", bs, tid_d, timeout_ms=60000)
    try:
        for p in (pa, pb, pc, pd):
            p.init()
        pa.begin(); pa.send_all(topic, a); pa.flush(); pa.commit()  # noqa: E702
        pb.begin(); pb.send_all(topic, b); pb.flush(); pb.abort()  # noqa: E702
        pc.begin(); pc.send_all(topic, c); pc.flush()  # noqa: E702
        pd.begin(); pd.send_all(topic, d1); pd.flush()  # noqa: E702
        # C's producer stays silent from here on, its transaction open.
        br.restart(kill=(how == "kill9"))
        pd.send_all(topic, d2)
        pd.flush()
        pd.commit()
    finally:
        for p in (pa, pb, pc, pd):
            p.close()
    tx.wait_txn_state(br, tid_c, "CompleteAbort")
    ends = tx.wait_lso_at_end(br, topic, n)
    assert tx.txn_state(br, tid_a) == "CompleteCommit"
    assert tx.txn_state(br, tid_b) == "CompleteAbort"
    assert tx.txn_state(br, tid_d) == "CompleteCommit"
    want = per_partition(a + d1 + d2, n)
    for client in ("confluent", "kafka-python"):
        got = tx.by_partition(tx.read_to_end(client, bs, topic, n, READ_COMMITTED))
        assert {p: sorted(v) for p, v in got.items()} == {p: sorted(v) for p, v in want.items()}, \
            f"{client} read_committed after a {how} restart"
    every = tx.read_to_end("confluent", bs, topic, n, READ_UNCOMMITTED)
    assert {p: sorted(v) for p, v in tx.by_partition(every).items()} == \
        {p: sorted(v) for p, v in per_partition(a + b + c + d1 + d2, n).items()}, \
        "records lost or duplicated"
    # Per partition: records + at least one marker per transaction that touched
    # it (4); a marker may be written twice if the broker stopped between the
    # markers and the coordinator's Complete* record.
    assert all(ends[p] >= len([r for r in a + b + c + d1 + d2 if r.partition == p]) + 4
               for p in range(n)), ends
    # And a transaction of A's id after all that still commits.
    pa2 = TxnProducer("confluent", bs, tid_a)
    try:
        pa2.init()
        pa2.begin()
        pa2.send_all(topic, spread("E", 3, n))
        pa2.flush()
        pa2.commit()
    finally:
        pa2.close()
    got = tx.read_to_end("kafka-python", bs, topic, n, READ_COMMITTED)
    assert sorted(vals(got)) == sorted(vals(a + d1 + d2 + spread("E", 3, n)))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_restart_right_after_commit(broker_factory, how):
    """Three rounds: a transaction over 20 partitions commits and the broker is
    stopped the moment commit_transaction returns (EndTxn answered; the
    markers may or may not all be written).  After each restart the
    coordinator completes the commit: the LSO reaches the end of every
    partition, DescribeTransactions says CompleteCommit, and read_committed
    shows every round's records."""
    br = broker_factory(OVERRIDES)
    bs = br.bootstrap
    n = 20
    topic = create_topic(bs, partitions=n)
    tid = tx.unique_tid("endtxn")
    sent: list = []
    for rnd in range(3):
        p = TxnProducer("confluent", bs, tid, timeout_ms=60000)
        try:
            p.init()
            p.begin()
            rs = spread(f"r{rnd}", 40, n)
            p.send_all(topic, rs)
            p.flush()
            p.commit()
            br.kill9() if how == "kill9" else br.stop()
            sent += rs
        finally:
            p.close()
        br.start()
        tx.wait_txn_state(br, tid, "CompleteCommit")
        ends = tx.wait_lso_at_end(br, topic, n)
        # Records + at least one marker per round.  A coordinator that restarts
        # before its CompleteCommit record is written sends the markers again,
        # and a partition that already had one appends a second (as Kafka does).
        assert all(ends[q] >= 3 * (rnd + 1) for q in range(n)), ends
        got = tx.read_to_end("confluent", bs, topic, n, READ_COMMITTED)
        assert tx.by_partition(got) == per_partition(sent, n), f"round {rnd} after {how}"
        got = tx.read_to_end("kafka-python", bs, topic, n, READ_UNCOMMITTED)
        assert tx.by_partition(got) == per_partition(sent, n), \
            f"round {rnd} after {how}: records lost or duplicated"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_stop_while_end_txn_in_flight(broker_factory, how):
    """Raw requests: a transaction over 20 partitions (timeout 2 s), then
    EndTxn(commit) is sent and the broker is SIGKILLed (or SIGTERMed) without
    waiting for the answer, after a delay that differs per round (0 to 20 ms) so that the stop
    lands before, during or after the PrepareCommit record and the markers.
    Whatever was reached, after the restart the transaction ends atomically:
    CompleteCommit with every partition's records visible to read_committed,
    or CompleteAbort (after its timeout) with none; the LSO reaches the end."""
    import socket
    import time

    from kafka.protocol.producer.transaction import EndTxnRequest

    br = broker_factory(OVERRIDES)
    bs = br.bootstrap
    n = 20
    topic = create_topic(bs, partitions=n)
    visible: list = []
    delays = (0.0, 0.0005, 0.001, 0.002, 0.004, 0.02) if how == "kill9" else (0.0, 0.002, 0.02)
    for rnd, delay in enumerate(delays):
        tid = tx.unique_tid(f"inflight{rnd}")
        err, pid, epoch = tx.init_pid(br, tid, timeout_ms=2000)
        assert err == tx.NONE
        errs = tx.add_partitions(br, tid, pid, epoch, {topic: list(range(n))})
        assert set(errs.values()) == {tx.NONE}, errs
        mine = [f"r{rnd}-p{p}".encode() for p in range(n)]
        for p in range(n):
            assert tx.produce_raw(br, topic, p, tx.txn_batch(pid, epoch, 0, [mine[p]]), tid)[0] == \
                tx.NONE
        req = EndTxnRequest(transactional_id=tid, producer_id=pid, producer_epoch=epoch,
                            committed=True)
        req.with_header(correlation_id=1, client_id="odradek-txn-tests")
        frame = bytes(req.encode(version=3, header=True, framed=True))
        with socket.create_connection((br.host, br.port), timeout=10) as s:
            s.sendall(frame)
            time.sleep(delay)
            br.kill9() if how == "kill9" else br.stop()
        br.start()
        d = tx.wait_txn_state(br, tid, ("CompleteCommit", "CompleteAbort"))
        tx.wait_lso_at_end(br, topic, n)
        if d.transaction_state == "CompleteCommit":
            visible += [(p, mine[p]) for p in range(n)]
        got = tx.read_to_end("confluent", bs, topic, n, READ_COMMITTED)
        assert sorted((r.partition, r.value) for r in got) == sorted(visible), \
            f"round {rnd}: {d.transaction_state}, but read_committed does not show exactly " \
            "the committed rounds' records on every partition"
