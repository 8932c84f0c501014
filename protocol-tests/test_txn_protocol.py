"""Raw transaction requests (kafka-python's protocol classes, one request per
connection to exactly this broker, ``cluster.raw_call``): FindCoordinator for
transactional ids, InitProducerId epochs and fencing (PRODUCER_FENCED for
current versions, INVALID_PRODUCER_EPOCH for old ones, KIP-360 recovery),
unknown transactional ids, EndTxn without a transaction, TxnOffsetCommit from
a stale generation, a transactional Produce to a partition never added to the
transaction (KIP-890 part 1), WriteTxnMarkers sent by hand as
``kafka-transactions abort`` does (and fenced from an older coordinator
epoch), DescribeTransactions and ListTransactions.  Errors are Kafka's codes;
after a refused request nothing is stored and the LSO is not held back."""

from __future__ import annotations

import uuid

import txnclients as tx
from cluster import poll
from kclients import create_topic
from test_group_bad_input import Conn
from txnclients import (CONCURRENT_TRANSACTIONS, ILLEGAL_GENERATION, INVALID_PRODUCER_EPOCH,
                        INVALID_PRODUCER_ID_MAPPING, INVALID_TRANSACTION_TIMEOUT,
                        INVALID_TXN_STATE, NONE, PRODUCER_FENCED,
                        TRANSACTION_COORDINATOR_FENCED, TRANSACTIONAL_ID_NOT_FOUND,
                        UNKNOWN_MEMBER_ID, UNSTABLE_OFFSET_COMMIT, READ_COMMITTED,
                        READ_UNCOMMITTED)


def init(broker, tid, timeout_ms=60000):
    err, pid, epoch = tx.init_pid(broker, tid, timeout_ms)
    assert err == NONE and pid >= 0 and epoch >= 0, (err, pid, epoch)
    return pid, epoch


def begin_with(broker, tid, pid, epoch, topic, partitions):
    """AddPartitionsToTxn (must succeed): the transaction is Ongoing."""
    errs = tx.add_partitions(broker, tid, pid, epoch, {topic: partitions})
    assert errs == {(topic, p): NONE for p in partitions}, errs


def produce(broker, topic, partition, tid, pid, epoch, seq, values):
    return tx.produce_raw(broker, topic, partition, tx.txn_batch(pid, epoch, seq, values), tid)


# ---------------------------------------------------------- coordinator ----

def test_find_coordinator_for_transactional_ids(shared_broker):
    """FindCoordinator key_type=1 (TRANSACTION): v4 (batched keys) and v3 both
    name this broker."""
    b = shared_broker
    tids = [tx.unique_tid("fc") for _ in range(3)]
    for tid in tids:
        err, node, host, port = tx.find_txn_coordinator(b, tid, version=4)
        assert (err, node, host, port) == (NONE, b.broker_id, b.host, b.port)
    err, node, host, port = tx.find_txn_coordinator(b, tids[0], version=3)
    assert (err, node, host, port) == (NONE, b.broker_id, b.host, b.port)


def test_init_producer_id_epochs_and_fencing(shared_broker):
    """Each InitProducerId bumps the epoch of the same producer id.  Requests
    with the previous epoch are fenced: PRODUCER_FENCED for AddPartitionsToTxn,
    AddOffsetsToTxn, EndTxn v2+ and InitProducerId v4+, INVALID_PRODUCER_EPOCH
    for the versions before (and for Produce).  KIP-360: InitProducerId with
    the current (id, epoch) bumps it, and a retry of that returns the same
    epoch.  None of the refused requests changes the transaction."""
    b = shared_broker
    topic = create_topic(b.bootstrap)
    tid = tx.unique_tid("epoch")
    pid, e0 = init(b, tid)
    pid2, e1 = init(b, tid)
    assert (pid2, e1) == (pid, e0 + 1), "a second InitProducerId must bump the epoch"

    tp = (topic, 0)
    assert tx.add_partitions(b, tid, pid, e0, {topic: [0]}, version=3) == {tp: PRODUCER_FENCED}
    assert tx.add_partitions(b, tid, pid, e0, {topic: [0]}, version=1) == \
        {tp: INVALID_PRODUCER_EPOCH}
    group = f"g-{uuid.uuid4().hex[:8]}"
    assert tx.add_offsets(b, tid, pid, e0, group, version=3) == PRODUCER_FENCED
    assert tx.add_offsets(b, tid, pid, e0, group, version=1) == INVALID_PRODUCER_EPOCH
    assert tx.end_txn(b, tid, pid, e0, True, version=3, retry_concurrent=False) == PRODUCER_FENCED
    assert tx.end_txn(b, tid, pid, e0, True, version=1, retry_concurrent=False) == \
        INVALID_PRODUCER_EPOCH
    err, _ = produce(b, topic, 0, tid, pid, e0, 0, [b"stale"])
    assert err == INVALID_PRODUCER_EPOCH
    d = tx.describe_txns(b, [tid])[tid]
    assert (d.error_code, d.transaction_state, d.producer_id, d.producer_epoch, list(d.topics)) == \
        (NONE, "Empty", pid, e1, []), d
    assert tx.lso_and_hw(b, topic, 1) == ({0: 0}, {0: 0}), "the fenced Produce was appended"

    # KIP-360: a stale (id, epoch) is fenced; the current one is bumped, idempotently.
    assert tx.init_pid(b, tid, producer_id=pid, producer_epoch=e0, version=4, retry=False)[0] == \
        PRODUCER_FENCED
    assert tx.init_pid(b, tid, producer_id=pid, producer_epoch=e0, version=3, retry=False)[0] == \
        INVALID_PRODUCER_EPOCH
    assert tx.init_pid(b, tid, producer_id=pid, producer_epoch=e1, version=4) == (NONE, pid, e1 + 1)
    assert tx.init_pid(b, tid, producer_id=pid, producer_epoch=e1, version=4) == \
        (NONE, pid, e1 + 1), "a retried KIP-360 InitProducerId must not bump again"

    e2 = e1 + 1
    begin_with(b, tid, pid, e2, topic, [0])
    assert produce(b, topic, 0, tid, pid, e2, 0, [b"ok"]) == (NONE, 0)
    assert tx.end_txn(b, tid, pid, e2, True) == NONE
    tx.wait_txn_state(b, tid, "CompleteCommit")
    assert tx.wait_lso_at_end(b, topic, 1) == {0: 2}


def test_transaction_timeout_above_the_maximum(shared_broker):
    """transaction_timeout_ms above transaction.max.timeout.ms (900000) is
    refused with INVALID_TRANSACTION_TIMEOUT; nothing is stored for the id."""
    b = shared_broker
    tid = tx.unique_tid("tmo")
    assert tx.init_pid(b, tid, timeout_ms=900001)[0] == INVALID_TRANSACTION_TIMEOUT
    assert tx.describe_txns(b, [tid])[tid].error_code == TRANSACTIONAL_ID_NOT_FOUND
    assert init(b, tid, timeout_ms=900000)[1] == 0


def test_unknown_transactional_id(shared_broker):
    """AddPartitionsToTxn, AddOffsetsToTxn and EndTxn for an id that was never
    initialised, or with a producer id that is not the id's:
    INVALID_PRODUCER_ID_MAPPING; nothing is created."""
    b = shared_broker
    topic = create_topic(b.bootstrap, partitions=2)
    ghost = tx.unique_tid("ghost")
    assert tx.add_partitions(b, ghost, 4242, 0, {topic: [0, 1]}) == \
        {(topic, 0): INVALID_PRODUCER_ID_MAPPING, (topic, 1): INVALID_PRODUCER_ID_MAPPING}
    assert tx.add_offsets(b, ghost, 4242, 0, "some-group") == INVALID_PRODUCER_ID_MAPPING
    assert tx.end_txn(b, ghost, 4242, 0, True, retry_concurrent=False) == \
        INVALID_PRODUCER_ID_MAPPING
    assert tx.describe_txns(b, [ghost])[ghost].error_code == TRANSACTIONAL_ID_NOT_FOUND
    assert ghost not in tx.list_txns(b)[2]

    tid = tx.unique_tid("mapped")
    pid, epoch = init(b, tid)
    assert tx.add_partitions(b, tid, pid + 1000, epoch, {topic: [0]}) == \
        {(topic, 0): INVALID_PRODUCER_ID_MAPPING}
    assert tx.end_txn(b, tid, pid + 1000, epoch, False, retry_concurrent=False) == \
        INVALID_PRODUCER_ID_MAPPING
    d = tx.describe_txns(b, [tid])[tid]
    assert (d.transaction_state, d.producer_id, list(d.topics)) == ("Empty", pid, [])


def test_end_txn_without_a_transaction(shared_broker):
    """EndTxn (commit or abort) right after InitProducerId (state Empty):
    INVALID_TXN_STATE, state and epoch unchanged.  After a completed commit a
    retried commit is answered NONE, an abort INVALID_TXN_STATE."""
    b = shared_broker
    topic = create_topic(b.bootstrap)
    tid = tx.unique_tid("empty")
    pid, epoch = init(b, tid)
    for commit in (True, False):
        assert tx.end_txn(b, tid, pid, epoch, commit, retry_concurrent=False) == INVALID_TXN_STATE
    d = tx.describe_txns(b, [tid])[tid]
    assert (d.transaction_state, d.producer_epoch) == ("Empty", epoch)

    begin_with(b, tid, pid, epoch, topic, [0])
    assert produce(b, topic, 0, tid, pid, epoch, 0, [b"a", b"b"]) == (NONE, 0)
    assert tx.end_txn(b, tid, pid, epoch, True) == NONE
    tx.wait_txn_state(b, tid, "CompleteCommit")
    assert tx.end_txn(b, tid, pid, epoch, True, retry_concurrent=False) == NONE
    assert tx.end_txn(b, tid, pid, epoch, False, retry_concurrent=False) == INVALID_TXN_STATE
    assert tx.txn_state(b, tid) == "CompleteCommit"
    assert tx.wait_lso_at_end(b, topic, 1) == {0: 3}


# ------------------------------------------------------ TxnOffsetCommit ----

def test_txn_offset_commit_from_another_generation(shared_broker):
    """A live group (one member, generation g).  In a transaction with the
    group added, TxnOffsetCommit with generation g+1 is ILLEGAL_GENERATION and
    from an unknown member UNKNOWN_MEMBER_ID; the transaction commits and
    OffsetFetch shows nothing stored.  The same with the member's own
    generation is stored once its transaction commits (and not before: plain
    OffsetFetch shows the old offset, require_stable UNSTABLE_OFFSET_COMMIT)."""
    b = shared_broker
    topic = create_topic(b.bootstrap)
    group = f"txg-{uuid.uuid4().hex[:8]}"
    conn = Conn(b.bootstrap)
    try:
        j = conn.join_full(group, session=30000, rebalance=30000)
        assert j["error"] == NONE, j
        gen, member = j["generation"], j["member_id"]
        assert conn.sync(group, gen, member, [(member, b"")])["error"] == NONE

        tid = tx.unique_tid("tgo")
        pid, epoch = init(b, tid)
        assert tx.add_offsets(b, tid, pid, epoch, group) == NONE
        tp = (topic, 0)
        assert tx.txn_offset_commit(b, tid, pid, epoch, group, {tp: 7}, gen + 1, member) == \
            {tp: ILLEGAL_GENERATION}
        assert tx.txn_offset_commit(b, tid, pid, epoch, group, {tp: 7}, gen, "nobody") == \
            {tp: UNKNOWN_MEMBER_ID}
        assert tx.end_txn(b, tid, pid, epoch, True) == NONE
        tx.wait_txn_state(b, tid, "CompleteCommit")
        assert tx.offset_fetch(b, group, topic, [0], require_stable=True) == (NONE, {0: (-1, NONE)})

        assert tx.add_offsets(b, tid, pid, epoch, group) == NONE
        assert tx.txn_offset_commit(b, tid, pid, epoch, group, {tp: 7}, gen, member) == {tp: NONE}
        assert tx.offset_fetch(b, group, topic, [0], require_stable=False) == \
            (NONE, {0: (-1, NONE)}), "a transactional offset is visible before its commit"
        assert tx.offset_fetch(b, group, topic, [0], require_stable=True) == \
            (NONE, {0: (-1, UNSTABLE_OFFSET_COMMIT)}), "require_stable with a pending commit"
        assert tx.end_txn(b, tid, pid, epoch, True) == NONE
        tx.wait_txn_state(b, tid, "CompleteCommit")
        assert tx.offset_fetch(b, group, topic, [0], require_stable=True) == (NONE, {0: (7, NONE)})
        assert conn.heartbeat(group, gen, member) == NONE, "the member lost its group"
    finally:
        conn.close()


# --------------------------------------------------- KIP-890 part 1 ----

def test_produce_to_partition_not_in_transaction(shared_broker):
    """Partition 0 is added to the transaction, partition 1 is not.  A
    transactional Produce to 1 is refused with INVALID_TXN_STATE, appends
    nothing and opens no transaction there (LSO = high watermark = 0,
    DescribeProducers shows no open transaction), while 0 takes its batch and
    holds its LSO until the commit.  After the commit a late batch of the
    finished transaction is refused the same way (KIP-890's hanging
    transaction)."""
    b = shared_broker
    topic = create_topic(b.bootstrap, partitions=2)
    tid = tx.unique_tid("unadded")
    pid, epoch = init(b, tid)
    # Before anything is added (state Empty) too.
    assert produce(b, topic, 1, tid, pid, epoch, 0, [b"x"])[0] == INVALID_TXN_STATE
    begin_with(b, tid, pid, epoch, topic, [0])
    assert produce(b, topic, 0, tid, pid, epoch, 0, [b"in-0", b"in-1", b"in-2"]) == (NONE, 0)
    assert produce(b, topic, 1, tid, pid, epoch, 0, [b"out-0", b"out-1"])[0] == INVALID_TXN_STATE
    lso, hw = tx.lso_and_hw(b, topic, 2)
    assert (lso, hw) == ({0: 0, 1: 0}, {0: 3, 1: 0})
    assert tx.describe_producers(b, topic, 1) == (NONE, []), "a refused batch left producer state"
    err, producers = tx.describe_producers(b, topic, 0)
    assert err == NONE and [(p.producer_id, p.current_txn_start_offset) for p in producers] == \
        [(pid, 0)]
    d = tx.describe_txns(b, [tid])[tid]
    assert {(t.topic, p) for t in d.topics for p in t.partitions} == {(topic, 0)}
    assert tx.end_txn(b, tid, pid, epoch, True) == NONE
    tx.wait_txn_state(b, tid, "CompleteCommit")
    assert tx.wait_lso_at_end(b, topic, 2) == {0: 4, 1: 0}
    # A late batch of the finished transaction (same epoch, next sequence) must
    # not open a new transaction in partition 0 that no coordinator would end.
    assert produce(b, topic, 0, tid, pid, epoch, 3, [b"late"])[0] == INVALID_TXN_STATE
    assert tx.lso_and_hw(b, topic, 2) == ({0: 4, 1: 0}, {0: 4, 1: 0})
    err, producers = tx.describe_producers(b, topic, 0)
    assert [(q.producer_id, q.current_txn_start_offset) for q in producers] == [(pid, -1)]
    got = tx.read_to_end("kafka-python", b.bootstrap, topic, 2, READ_COMMITTED)
    assert tx.values(got) == [b"in-0", b"in-1", b"in-2"]


# ------------------------------------------------------ WriteTxnMarkers ----

def test_write_txn_markers_abort_a_hanging_transaction(shared_broker):
    """``kafka-transactions abort`` by hand: DescribeProducers gives the open
    transaction's producer id, epoch, coordinator epoch and start offset;
    WriteTxnMarkers (abort) to the leader with those ends it in the partition:
    the LSO reaches the high watermark, DescribeProducers shows no open
    transaction, read_committed sees none of its records."""
    b = shared_broker
    topic = create_topic(b.bootstrap)
    tid = tx.unique_tid("hang")
    pid, epoch = init(b, tid, timeout_ms=600000)
    begin_with(b, tid, pid, epoch, topic, [0])
    assert produce(b, topic, 0, tid, pid, epoch, 0, [b"h0", b"h1", b"h2"]) == (NONE, 0)
    assert tx.lso_and_hw(b, topic, 1) == ({0: 0}, {0: 3})
    err, producers = tx.describe_producers(b, topic, 0)
    assert err == NONE and len(producers) == 1, producers
    p = producers[0]
    assert (p.producer_id, p.producer_epoch, p.current_txn_start_offset) == (pid, epoch, 0)
    res = tx.write_markers(b, [(p.producer_id, p.producer_epoch, False,
                                max(p.coordinator_epoch, 0), {topic: [0]})])
    assert res == {(pid, topic, 0): NONE}
    assert tx.lso_and_hw(b, topic, 1) == ({0: 4}, {0: 4})
    err, producers = tx.describe_producers(b, topic, 0)
    assert [(q.producer_id, q.current_txn_start_offset) for q in producers] == [(pid, -1)]
    assert tx.read_to_end("confluent", b.bootstrap, topic, 1, READ_COMMITTED) == []
    assert tx.values(tx.read_to_end("confluent", b.bootstrap, topic, 1, READ_UNCOMMITTED)) == \
        [b"h0", b"h1", b"h2"]
    # The coordinator still ends its own transaction normally.
    assert tx.end_txn(b, tid, pid, epoch, False) == NONE
    tx.wait_txn_state(b, tid, "CompleteAbort")
    tx.wait_lso_at_end(b, topic, 1)
    assert tx.read_to_end("kafka-python", b.bootstrap, topic, 1, READ_COMMITTED) == []


def test_write_txn_markers_from_an_older_coordinator_epoch(shared_broker):
    """After a commit completed by the coordinator, the partition knows the
    coordinator epoch E of its marker.  With a second transaction open, a
    marker of epoch E-1 is TRANSACTION_COORDINATOR_FENCED and changes
    nothing (LSO and high watermark unchanged); the coordinator's own commit
    then ends the transaction."""
    b = shared_broker
    topic = create_topic(b.bootstrap)
    tid = tx.unique_tid("cepoch")
    pid, epoch = init(b, tid)
    begin_with(b, tid, pid, epoch, topic, [0])
    assert produce(b, topic, 0, tid, pid, epoch, 0, [b"a0", b"a1"]) == (NONE, 0)
    assert tx.end_txn(b, tid, pid, epoch, True) == NONE
    tx.wait_txn_state(b, tid, "CompleteCommit")
    tx.wait_lso_at_end(b, topic, 1)
    err, producers = tx.describe_producers(b, topic, 0)
    assert err == NONE and len(producers) == 1, producers
    coord_epoch = producers[0].coordinator_epoch
    assert coord_epoch >= 0, f"the coordinator's marker left coordinator epoch {coord_epoch}"

    begin_with(b, tid, pid, epoch, topic, [0])
    assert produce(b, topic, 0, tid, pid, epoch, 2, [b"b0", b"b1"]) == (NONE, 3)
    before = tx.lso_and_hw(b, topic, 1)
    assert before == ({0: 3}, {0: 5})
    res = tx.write_markers(b, [(pid, epoch, False, coord_epoch - 1, {topic: [0]})])
    assert res == {(pid, topic, 0): TRANSACTION_COORDINATOR_FENCED}
    assert tx.lso_and_hw(b, topic, 1) == before, "a fenced marker changed the partition"
    assert tx.end_txn(b, tid, pid, epoch, True) == NONE
    tx.wait_txn_state(b, tid, "CompleteCommit")
    assert tx.wait_lso_at_end(b, topic, 1) == {0: 6}
    assert tx.values(tx.read_to_end("confluent", b.bootstrap, topic, 1, READ_COMMITTED)) == \
        [b"a0", b"a1", b"b0", b"b1"]


# --------------------------------------- DescribeTransactions / ListTransactions ----

def test_describe_and_list_transactions(shared_broker):
    """One id Ongoing over two partitions, one Empty: DescribeTransactions
    gives each state, producer id and epoch, timeout and partitions (and
    TRANSACTIONAL_ID_NOT_FOUND for an unknown id); ListTransactions filters by
    state and producer id and reports unknown state filters.  After the
    commit the first is CompleteCommit with no partitions."""
    b = shared_broker
    topic = create_topic(b.bootstrap, partitions=3)
    t1, t2, ghost = tx.unique_tid("d1"), tx.unique_tid("d2"), tx.unique_tid("ghost")
    pid1, e1 = init(b, t1, timeout_ms=45000)
    pid2, e2 = init(b, t2, timeout_ms=50000)
    assert pid1 != pid2
    begin_with(b, t1, pid1, e1, topic, [0, 2])

    d = tx.describe_txns(b, [t1, t2, ghost])
    assert set(d) == {t1, t2, ghost}
    s1, s2 = d[t1], d[t2]
    assert (s1.error_code, s1.transaction_state, s1.producer_id, s1.producer_epoch,
            s1.transaction_timeout_ms) == (NONE, "Ongoing", pid1, e1, 45000)
    assert s1.transaction_start_time_ms > 0
    assert {(t.topic, p) for t in s1.topics for p in t.partitions} == {(topic, 0), (topic, 2)}
    assert (s2.error_code, s2.transaction_state, s2.producer_id, s2.producer_epoch,
            s2.transaction_timeout_ms, list(s2.topics)) == (NONE, "Empty", pid2, e2, 50000, [])
    assert d[ghost].error_code == TRANSACTIONAL_ID_NOT_FOUND

    err, unknown, txns = tx.list_txns(b)
    assert err == NONE and unknown == []
    assert txns[t1] == (pid1, "Ongoing") and txns[t2] == (pid2, "Empty")
    err, _, txns = tx.list_txns(b, states=["Ongoing"])
    assert t1 in txns and t2 not in txns
    assert all(state == "Ongoing" for _, state in txns.values())
    assert tx.list_txns(b, pids=[pid2]) == (NONE, [], {t2: (pid2, "Empty")})
    assert tx.list_txns(b, states=["Ongoing"], pids=[pid2]) == (NONE, [], {})
    assert tx.list_txns(b, states=["Empty", "Ongoing"], pids=[pid1, pid2]) == \
        (NONE, [], {t1: (pid1, "Ongoing"), t2: (pid2, "Empty")})
    assert tx.list_txns(b, states=["Bogus"]) == (NONE, ["Bogus"], {})

    assert tx.end_txn(b, t1, pid1, e1, True) == NONE
    s1 = tx.wait_txn_state(b, t1, "CompleteCommit")
    assert (s1.producer_id, s1.producer_epoch, list(s1.topics)) == (pid1, e1, [])
    assert tx.list_txns(b, states=["CompleteCommit"], pids=[pid1]) == \
        (NONE, [], {t1: (pid1, "CompleteCommit")})


def test_init_producer_id_while_a_transaction_is_open(shared_broker):
    """InitProducerId for an id with an Ongoing transaction aborts it (the
    client sees CONCURRENT_TRANSACTIONS until the abort is complete) and
    returns a higher epoch; the old transaction's records are aborted."""
    b = shared_broker
    topic = create_topic(b.bootstrap)
    tid = tx.unique_tid("reinit")
    pid, epoch = init(b, tid)
    begin_with(b, tid, pid, epoch, topic, [0])
    assert produce(b, topic, 0, tid, pid, epoch, 0, [b"old"]) == (NONE, 0)
    first = tx.init_pid(b, tid, retry=False)
    assert first[0] in (NONE, CONCURRENT_TRANSACTIONS), first
    pid2, epoch2 = init(b, tid)
    assert pid2 == pid and epoch2 > epoch
    assert tx.wait_lso_at_end(b, topic, 1) == {0: 2}
    assert tx.read_to_end("kafka-python", b.bootstrap, topic, 1, READ_COMMITTED) == []


# ------------------------------------------------------ read_committed Fetch ----

def test_read_committed_fetch_with_interleaved_transactions(shared_broker):
    """Producers X and Y interleave transactions in one partition:
    x0 y0 x1 y1 [X aborts] [Y commits] x2 y2 [Y aborts] [X aborts].  While Y is
    open the LSO is Y's first offset and a read_committed Fetch stops there
    with X's aborted transaction listed; at the end it lists every aborted
    transaction overlapping the fetched range, sorted by first offset, and
    read_uncommitted lists none.  Consumers see y0 y1 at read_committed."""
    b = shared_broker
    topic = create_topic(b.bootstrap)
    tx_, ty = tx.unique_tid("x"), tx.unique_tid("y")
    px, ex = init(b, tx_)
    py, ey = init(b, ty)
    seq = {px: 0, py: 0}

    def write(pid, epoch, tid, value, want_offset):
        assert produce(b, topic, 0, tid, pid, epoch, seq[pid], [value]) == (NONE, want_offset)
        seq[pid] += 1

    begin_with(b, tx_, px, ex, topic, [0])
    begin_with(b, ty, py, ey, topic, [0])
    write(px, ex, tx_, b"x0", 0)
    write(py, ey, ty, b"y0", 1)
    write(px, ex, tx_, b"x1", 2)
    write(py, ey, ty, b"y1", 3)
    assert tx.end_txn(b, tx_, px, ex, False) == NONE
    tx.wait_txn_state(b, tx_, "CompleteAbort")
    assert tx.lso_and_hw(b, topic, 1) == ({0: 1}, {0: 5})
    err, hw, lso, aborted, batches = tx.fetch_raw(b, topic, 0, 0, committed=True)
    assert (err, hw, lso) == (NONE, 5, 1)
    assert [(base, last, pid) for base, last, pid, _, _ in batches] == [(0, 0, px)], \
        "a read_committed Fetch returned data past the LSO"
    assert aborted == [(px, 0)]

    assert tx.end_txn(b, ty, py, ey, True) == NONE
    tx.wait_txn_state(b, ty, "CompleteCommit")
    begin_with(b, tx_, px, ex, topic, [0])
    begin_with(b, ty, py, ey, topic, [0])
    write(px, ex, tx_, b"x2", 6)
    write(py, ey, ty, b"y2", 7)
    assert tx.end_txn(b, ty, py, ey, False) == NONE
    tx.wait_txn_state(b, ty, "CompleteAbort")
    assert tx.end_txn(b, tx_, px, ex, False) == NONE
    tx.wait_txn_state(b, tx_, "CompleteAbort")
    assert tx.wait_lso_at_end(b, topic, 1) == {0: 10}

    err, hw, lso, aborted, batches = tx.fetch_raw(b, topic, 0, 0, committed=True)
    assert (err, hw, lso) == (NONE, 10, 10)
    assert aborted == [(px, 0), (px, 6), (py, 7)], "aborted transactions, by first offset"
    controls = [(base, pid) for base, _, pid, _, control in batches if control]
    assert controls == [(4, px), (5, py), (8, py), (9, px)]
    assert all(t for _, _, _, t, _ in batches), "every batch here is transactional"
    # From offset 5 on, X's first transaction (offsets 0-4) is out of range.
    assert tx.fetch_raw(b, topic, 0, 5, committed=True)[3] == [(px, 6), (py, 7)]
    assert tx.fetch_raw(b, topic, 0, 0, committed=False)[3] == []

    for client in ("confluent", "kafka-python"):
        assert tx.values(tx.read_to_end(client, b.bootstrap, topic, 1, READ_COMMITTED)) == \
            [b"y0", b"y1"], client
        assert tx.values(tx.read_to_end(client, b.bootstrap, topic, 1, READ_UNCOMMITTED)) == \
            [b"x0", b"y0", b"x1", b"y1", b"x2", b"y2"], client


# -------------------------------------------- transactional.id.expiration.ms ----

def test_idle_transactional_ids_expire(broker_factory):
    """transactional.id.expiration.ms=2000: an id whose transaction completed
    and that then stays idle is removed (DescribeTransactions
    TRANSACTIONAL_ID_NOT_FOUND, gone from ListTransactions); an id with an
    Ongoing transaction, last updated before it, is not.  The expired id can
    be initialised again."""
    b = broker_factory({"transactional.id.expiration.ms": 2000,
                        "transaction.remove.expired.transaction.cleanup.interval.ms": 500,
                        "transaction.state.log.num.partitions": 5})
    topic = create_topic(b.bootstrap)
    busy, idle = tx.unique_tid("busy"), tx.unique_tid("idle")
    pb, eb = init(b, busy, timeout_ms=600000)
    begin_with(b, busy, pb, eb, topic, [0])  # last update of `busy`: before `idle`'s
    pi, ei = init(b, idle)
    begin_with(b, idle, pi, ei, topic, [0])
    assert tx.end_txn(b, idle, pi, ei, True) == NONE
    tx.wait_txn_state(b, idle, "CompleteCommit")
    poll(lambda: tx.describe_txns(b, [idle])[idle].error_code == TRANSACTIONAL_ID_NOT_FOUND,
         30, f"{idle} expired")
    assert idle not in tx.list_txns(b)[2]
    d = tx.describe_txns(b, [busy])[busy]
    assert (d.error_code, d.transaction_state, d.producer_id) == (NONE, "Ongoing", pb), \
        "an id with an open transaction expired"
    assert tx.list_txns(b, pids=[pb])[2] == {busy: (pb, "Ongoing")}
    assert init(b, idle)[1] >= 0
    assert tx.end_txn(b, busy, pb, eb, False) == NONE


# ------------------------------------------------------------ sequences ----

OUT_OF_ORDER_SEQUENCE_NUMBER = 45


def test_transactional_sequences(shared_broker):
    """Inside a transaction a retried batch (same sequence) is answered with
    its first offset and not appended again; a gap in the sequence is
    OUT_OF_ORDER_SEQUENCE_NUMBER.  After InitProducerId bumps the epoch the
    first batch of the new epoch must start at sequence 0.  A transactional
    batch whose producer id is not the transactional id's is refused with
    INVALID_PRODUCER_ID_MAPPING.  None of the refused batches is appended."""
    b = shared_broker
    topic = create_topic(b.bootstrap)
    tid = tx.unique_tid("seq")
    pid, epoch = init(b, tid)
    begin_with(b, tid, pid, epoch, topic, [0])
    batch = tx.txn_batch(pid, epoch, 0, [b"a", b"b"])
    assert tx.produce_raw(b, topic, 0, batch, tid) == (NONE, 0)
    assert tx.produce_raw(b, topic, 0, batch, tid) == (NONE, 0), "a retried batch"
    assert tx.lso_and_hw(b, topic, 1)[1] == {0: 2}, "the retried batch was appended again"
    assert produce(b, topic, 0, tid, pid, epoch, 5, [b"gap"])[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
    other_tid = tx.unique_tid("seq-other")
    other_pid, other_epoch = init(b, other_tid)
    assert produce(b, topic, 0, tid, other_pid, other_epoch, 0, [b"wrong"])[0] == \
        INVALID_PRODUCER_ID_MAPPING
    assert tx.lso_and_hw(b, topic, 1)[1] == {0: 2}
    assert produce(b, topic, 0, tid, pid, epoch, 2, [b"c"]) == (NONE, 2)
    assert tx.end_txn(b, tid, pid, epoch, True) == NONE
    tx.wait_txn_state(b, tid, "CompleteCommit")

    pid2, epoch2 = init(b, tid)
    assert (pid2, epoch2) == (pid, epoch + 1)
    begin_with(b, tid, pid, epoch2, topic, [0])
    assert produce(b, topic, 0, tid, pid, epoch2, 3, [b"old-seq"])[0] == \
        OUT_OF_ORDER_SEQUENCE_NUMBER
    assert produce(b, topic, 0, tid, pid, epoch2, 0, [b"d"]) == (NONE, 4)
    assert tx.end_txn(b, tid, pid, epoch2, True) == NONE
    tx.wait_txn_state(b, tid, "CompleteCommit")
    assert tx.wait_lso_at_end(b, topic, 1) == {0: 6}
    assert tx.values(tx.read_to_end("kafka-python", b.bootstrap, topic, 1, READ_UNCOMMITTED)) == \
        [b"a", b"b", b"c", b"d"]
