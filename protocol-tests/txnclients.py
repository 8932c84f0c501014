"""Helpers for the transaction tests (test_transactions.py, test_txn_recovery.py,
test_txn_protocol.py): transactional producers of confluent-kafka and
kafka-python behind one small interface, readers that read every visible record
of a topic at one isolation level, the last stable offset through ListOffsets,
and raw transaction requests framed by kafka-python's protocol classes and sent
to exactly one broker (``cluster.raw_call``).

Every wait is bounded; nothing here asserts on how long anything took.
"""

from __future__ import annotations

import time
import uuid
from typing import Optional

from cluster import poll, raw_call
from kclients import TIMEOUT, Rec

READ_COMMITTED = "read_committed"
READ_UNCOMMITTED = "read_uncommitted"

# Kafka's error codes used by the transaction tests.
NONE = 0
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
ILLEGAL_GENERATION = 22
UNKNOWN_MEMBER_ID = 25
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
INVALID_TRANSACTION_TIMEOUT = 50
CONCURRENT_TRANSACTIONS = 51
TRANSACTION_COORDINATOR_FENCED = 52
UNSTABLE_OFFSET_COMMIT = 88
PRODUCER_FENCED = 90
TRANSACTIONAL_ID_NOT_FOUND = 105
TRANSACTION_ABORTABLE = 120

# Retriable answers of a transaction coordinator that is starting up or busy
# completing an earlier transaction.
_RETRIABLE = {COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR,
              CONCURRENT_TRANSACTIONS}


def unique_tid(prefix: str = "txn") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ------------------------------------------------- transactional producers ----

class TxnProducer:
    """A transactional producer of one client ("confluent" or "kafka-python"):
    init / begin / send / flush / commit / abort / send_offsets / close."""

    def __init__(self, client: str, bootstrap: str, tid: str, timeout_ms: int = 60000,
                 conf: Optional[dict] = None):
        self.client, self.tid = client, tid
        self.acks: list = []  # (value, partition, offset) of every delivered record
        self.errors: list = []
        if client == "confluent":
            from confluent_kafka import Producer

            c = {"bootstrap.servers": bootstrap, "transactional.id": tid,
                 "transaction.timeout.ms": timeout_ms, "linger.ms": 5, "acks": "all",
                 "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500}
            c.update(conf or {})
            self.p = Producer(c)
        elif client == "kafka-python":
            from kafka import KafkaProducer

            c = dict(bootstrap_servers=bootstrap, transactional_id=tid,
                     transaction_timeout_ms=timeout_ms, linger_ms=5, acks="all",
                     max_block_ms=int(TIMEOUT * 1000), request_timeout_ms=int(TIMEOUT * 1000))
            c.update(conf or {})
            self.p = KafkaProducer(**c)
            self._futs: list = []
        else:
            raise ValueError(client)

    def init(self):
        if self.client == "confluent":
            self.p.init_transactions(TIMEOUT)
        else:
            self.p.init_transactions()

    def begin(self):
        self.p.begin_transaction()

    def send(self, topic: str, value: bytes, partition: int, key: Optional[bytes] = None):
        if self.client == "confluent":
            def cb(err, msg, value=value):
                if err is not None:
                    self.errors.append(err)
                else:
                    self.acks.append((value, msg.partition(), msg.offset()))
            while True:
                try:
                    self.p.produce(topic, value=value, key=key, partition=partition,
                                   on_delivery=cb)
                    break
                except BufferError:
                    self.p.poll(0.05)
            self.p.poll(0)
        else:
            f = self.p.send(topic, value=value, key=key, partition=partition)
            self._futs.append((value, f))

    def send_all(self, topic: str, recs: list):
        for r in recs:
            self.send(topic, r.value, r.partition or 0, r.key)

    def flush(self, raise_errors: bool = True):
        """Wait until every record sent so far is acknowledged (still inside the
        transaction); raises if any delivery failed (failures are kept in
        ``errors`` either way)."""
        if self.client == "confluent":
            left = self.p.flush(TIMEOUT)
            assert left == 0 or not raise_errors, f"{left} records undelivered"
        else:
            self.p.flush(timeout=TIMEOUT)
            futs, self._futs = self._futs, []
            for value, f in futs:
                try:
                    md = f.get(timeout=TIMEOUT)
                    self.acks.append((value, md.partition, md.offset))
                except Exception as e:  # noqa: BLE001
                    self.errors.append(e)
        if self.errors and raise_errors:
            raise AssertionError(f"{self.client}: delivery errors {self.errors[:3]}")

    def commit(self):
        if self.client == "confluent":
            self.p.commit_transaction(TIMEOUT)
        else:
            self.p.commit_transaction()
            self._collect()

    def abort(self):
        if self.client == "confluent":
            self.p.abort_transaction(TIMEOUT)
        else:
            self.p.abort_transaction()
            self._futs = []

    def _collect(self):
        futs, self._futs = self._futs, []
        for value, f in futs:
            md = f.get(timeout=TIMEOUT)
            self.acks.append((value, md.partition, md.offset))

    def send_offsets(self, offsets: dict, consumer):
        """``offsets`` {(topic, partition): next offset}; ``consumer`` is the
        group member of the same client whose group metadata is sent."""
        if self.client == "confluent":
            from confluent_kafka import TopicPartition

            tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            self.p.send_offsets_to_transaction(tps, consumer.consumer_group_metadata(), TIMEOUT)
        else:
            from kafka import TopicPartition
            from kafka.structs import OffsetAndMetadata

            om = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
            self.p.send_offsets_to_transaction(om, consumer.group_metadata())

    def close(self):
        try:
            if self.client == "confluent":
                self.p.flush(1)
            else:
                self.p.close(timeout=2)
        except Exception:  # noqa: BLE001
            pass


def is_fenced(exc) -> bool:
    """Whether a client error says the producer was fenced (a newer epoch of
    its transactional id exists): confluent's _FENCED / PRODUCER_FENCED /
    INVALID_PRODUCER_EPOCH (a KafkaError or a KafkaException carrying one),
    kafka-python's ProducerFencedError / InvalidProducerEpochError (possibly
    wrapped)."""
    from confluent_kafka import KafkaError

    fenced_codes = (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)
    if isinstance(exc, KafkaError):
        return exc.code() in fenced_codes
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        args = getattr(exc, "args", ())
        if args and isinstance(args[0], KafkaError) and args[0].code() in fenced_codes:
            return True
        if type(exc).__name__ in ("ProducerFencedError", "InvalidProducerEpochError"):
            return True
        if any(s in str(exc) for s in ("ProducerFenced", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH")):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


# ----------------------------------------------------------------- readers ----

def read_to_end(client: str, bootstrap: str, topic: str, partitions: int, isolation: str,
                timeout: float = TIMEOUT) -> list:
    """Every record of ``topic`` visible at ``isolation``, read from offset 0 of
    each partition up to its end (the last stable offset for read_committed),
    as ``Rec``s in partition then offset order.  Clients: "confluent" (stops at
    partition EOF) or "kafka-python" (stops at ``end_offsets``, which honour
    the isolation level)."""
    if client == "confluent":
        out = _read_to_end_confluent(bootstrap, topic, partitions, isolation, timeout)
    elif client == "kafka-python":
        out = _read_to_end_kafka_python(bootstrap, topic, partitions, isolation, timeout)
    else:
        raise ValueError(client)
    return sorted(out, key=lambda r: (r.partition, r.offset))


def _read_to_end_confluent(bootstrap, topic, partitions, isolation, timeout):
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "odradek-txn-tests-no-group",
                  "enable.auto.commit": False, "enable.auto.offset.store": False,
                  "auto.offset.reset": "error", "enable.partition.eof": True,
                  "isolation.level": isolation, "fetch.wait.max.ms": 100})
    out, eof = [], set()
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while len(eof) < partitions:
            assert time.monotonic() < deadline, \
                f"confluent {isolation}: no EOF on partitions {sorted(set(range(partitions)) - eof)}"
            for m in c.consume(num_messages=500, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                        continue
                    raise AssertionError(f"confluent consumer error: {m.error()}")
                eof.discard(m.partition())
                out.append(Rec(value=m.value(), key=m.key(), partition=m.partition(),
                               offset=m.offset()))
    finally:
        c.close()
    return out


def _read_to_end_kafka_python(bootstrap, topic, partitions, isolation, timeout):
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", fetch_max_wait_ms=100,
                      isolation_level=isolation, request_timeout_ms=int(timeout * 1000) + 5000)
    out = []
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, 0)
        ends = c.end_offsets(tps)
        deadline = time.monotonic() + timeout
        while any(c.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, \
                f"kafka-python {isolation}: positions {[c.position(tp) for tp in tps]} " \
                f"short of ends {[ends[tp] for tp in tps]}"
            for msgs in c.poll(timeout_ms=300).values():
                out.extend(Rec(value=m.value, key=m.key, partition=m.partition, offset=m.offset)
                           for m in msgs)
    finally:
        c.close()
    return out


def values(recs) -> list:
    return [r.value for r in recs]


def by_partition(recs) -> dict:
    out: dict = {}
    for r in recs:
        out.setdefault(r.partition, []).append(r.value)
    return out


# ------------------------------------------------------------ raw requests ----

def find_txn_coordinator(broker, tid: str, version: int = 4):
    """FindCoordinator key_type=1 until the coordinator answers without a
    retriable error; the response's (error, node_id, host, port)."""
    from kafka.protocol.metadata.find_coordinator import (FindCoordinatorRequest,
                                                          FindCoordinatorResponse)

    def once():
        if version >= 4:
            r = raw_call(broker, FindCoordinatorRequest(key_type=1, coordinator_keys=[tid]),
                         version, FindCoordinatorResponse)
            c = r.coordinators[0]
            assert c.key == tid, r
            return c.error_code, c.node_id, c.host, c.port
        r = raw_call(broker, FindCoordinatorRequest(key=tid, key_type=1), version,
                     FindCoordinatorResponse)
        return r.error_code, r.node_id, r.host, r.port

    return poll(lambda: (lambda res: res if res[0] not in _RETRIABLE else None)(once()),
                30, f"a transaction coordinator for {tid}", interval=0.2)


def init_pid(broker, tid: Optional[str], timeout_ms: int = 60000, version: int = 3,
             producer_id: int = -1, producer_epoch: int = -1, retry: bool = True):
    """InitProducerId, after FindCoordinator as a client does (the first
    FindCoordinator for a transaction creates ``__transaction_state``; before
    it the broker is nobody's coordinator); retried while the coordinator
    answers a retriable error (loading, or CONCURRENT_TRANSACTIONS while it
    aborts an open transaction).  Returns (error, producer_id, producer_epoch)."""
    from kafka.protocol.producer.transaction import InitProducerIdRequest, InitProducerIdResponse

    if tid is not None:
        find_txn_coordinator(broker, tid)

    def once():
        req = InitProducerIdRequest(transactional_id=tid, transaction_timeout_ms=timeout_ms,
                                    producer_id=producer_id, producer_epoch=producer_epoch)
        r = raw_call(broker, req, version, InitProducerIdResponse)
        return r.error_code, r.producer_id, r.producer_epoch

    if not retry:
        return once()
    return poll(lambda: (lambda res: res if res[0] not in _RETRIABLE else None)(once()),
                30, f"InitProducerId for {tid}", interval=0.2)


def add_partitions(broker, tid: str, pid: int, epoch: int, parts: dict, version: int = 3) -> dict:
    """AddPartitionsToTxn (client form, v0-v3) of ``parts`` {topic: [partitions]};
    {(topic, partition): error}.  A top-level error (v3 has none) is folded in."""
    from kafka.protocol.producer.transaction import (AddPartitionsToTxnRequest as Req,
                                                     AddPartitionsToTxnResponse as Resp)

    req = Req(v3_and_below_transactional_id=tid, v3_and_below_producer_id=pid,
              v3_and_below_producer_epoch=epoch,
              v3_and_below_topics=[Req.AddPartitionsToTxnTopic(name=t, partitions=list(ps))
                                   for t, ps in parts.items()])
    r = raw_call(broker, req, version, Resp)
    return {(t.name, p.partition_index): p.partition_error_code
            for t in r.results_by_topic_v3_and_below for p in t.results_by_partition}


def add_offsets(broker, tid: str, pid: int, epoch: int, group: str, version: int = 3) -> int:
    from kafka.protocol.producer.transaction import AddOffsetsToTxnRequest, AddOffsetsToTxnResponse

    r = raw_call(broker, AddOffsetsToTxnRequest(transactional_id=tid, producer_id=pid,
                                                producer_epoch=epoch, group_id=group),
                 version, AddOffsetsToTxnResponse)
    return r.error_code


def end_txn(broker, tid: str, pid: int, epoch: int, commit: bool, version: int = 3,
            retry_concurrent: bool = True) -> int:
    """EndTxn; CONCURRENT_TRANSACTIONS (the previous one still completing) is
    retried unless ``retry_concurrent`` is false."""
    from kafka.protocol.producer.transaction import EndTxnRequest, EndTxnResponse

    def once():
        return raw_call(broker, EndTxnRequest(transactional_id=tid, producer_id=pid,
                                              producer_epoch=epoch, committed=commit),
                        version, EndTxnResponse).error_code

    if not retry_concurrent:
        return once()
    res = []

    def attempt():
        res.append(once())
        return res[-1] != CONCURRENT_TRANSACTIONS

    poll(attempt, 30, "EndTxn without CONCURRENT_TRANSACTIONS", interval=0.2)
    return res[-1]


def txn_offset_commit(broker, tid: str, pid: int, epoch: int, group: str, offsets: dict,
                      generation: int = -1, member: str = "", version: int = 3) -> dict:
    """TxnOffsetCommit of ``offsets`` {(topic, partition): offset}; {(topic, p): error}."""
    from kafka.protocol.producer.transaction import (TxnOffsetCommitRequest as Req,
                                                     TxnOffsetCommitResponse as Resp)

    by_topic: dict = {}
    for (t, p), o in offsets.items():
        by_topic.setdefault(t, []).append(Req.TxnOffsetCommitRequestTopic.TxnOffsetCommitRequestPartition(
            partition_index=p, committed_offset=o, committed_leader_epoch=-1,
            committed_metadata=""))
    req = Req(transactional_id=tid, group_id=group, producer_id=pid, producer_epoch=epoch,
              generation_id=generation, member_id=member, group_instance_id=None,
              topics=[Req.TxnOffsetCommitRequestTopic(name=t, partitions=ps)
                      for t, ps in by_topic.items()])
    r = raw_call(broker, req, version, Resp)
    return {(t.name, p.partition_index): p.error_code for t in r.topics for p in t.partitions}


def offset_fetch(broker, group: str, topic: str, partitions, require_stable: bool = False,
                 version: int = 7):
    """OffsetFetch v7: (top-level error, {partition: (offset, error)})."""
    from kafka.protocol.consumer.group import OffsetFetchRequest as Req, OffsetFetchResponse as Resp

    req = Req(group_id=group, require_stable=require_stable,
              topics=[Req.OffsetFetchRequestTopic(name=topic, partition_indexes=list(partitions))])
    r = raw_call(broker, req, version, Resp)
    return r.error_code, {p.partition_index: (p.committed_offset, p.error_code)
                          for t in r.topics for p in t.partitions}


def write_markers(broker, markers: list, version: int = 1) -> dict:
    """WriteTxnMarkers; ``markers`` [(producer_id, epoch, commit, coordinator_epoch,
    {topic: [partitions]})]; {(producer_id, topic, partition): error}."""
    from kafka.protocol.producer.transaction import (WriteTxnMarkersRequest as Req,
                                                     WriteTxnMarkersResponse as Resp)

    ms = [Req.WritableTxnMarker(producer_id=pid, producer_epoch=epoch, transaction_result=commit,
                                coordinator_epoch=cepoch,
                                topics=[Req.WritableTxnMarker.WritableTxnMarkerTopic(
                                    name=t, partition_indexes=list(ps)) for t, ps in parts.items()])
          for pid, epoch, commit, cepoch, parts in markers]
    r = raw_call(broker, Req(markers=ms), version, Resp)
    return {(m.producer_id, t.name, p.partition_index): p.error_code
            for m in r.markers for t in m.topics for p in t.partitions}


def describe_txns(broker, tids: list) -> dict:
    """DescribeTransactions v0: {transactional_id: TransactionState}."""
    from kafka.protocol.admin.transactions import (DescribeTransactionsRequest,
                                                   DescribeTransactionsResponse)

    r = raw_call(broker, DescribeTransactionsRequest(transactional_ids=list(tids)), 0,
                 DescribeTransactionsResponse)
    return {s.transactional_id: s for s in r.transaction_states}


def txn_state(broker, tid: str) -> str:
    s = describe_txns(broker, [tid])[tid]
    assert s.error_code == NONE, f"DescribeTransactions {tid}: error {s.error_code}"
    return s.transaction_state


def wait_txn_state(broker, tid: str, states, timeout: float = 30.0):
    """Poll DescribeTransactions until ``tid`` is in one of ``states``; its description."""
    states = {states} if isinstance(states, str) else set(states)

    def check():
        s = describe_txns(broker, [tid])[tid]
        return s if s.error_code == NONE and s.transaction_state in states else None

    return poll(check, timeout, f"{tid} in {sorted(states)}", interval=0.2)


def list_txns(broker, states=(), pids=(), version: int = 0):
    """ListTransactions: (error, unknown state filters, {tid: (producer id, state)})."""
    from kafka.protocol.admin.transactions import ListTransactionsRequest, ListTransactionsResponse

    r = raw_call(broker, ListTransactionsRequest(state_filters=list(states),
                                                 producer_id_filters=list(pids)),
                 version, ListTransactionsResponse)
    return r.error_code, list(r.unknown_state_filters), \
        {s.transactional_id: (s.producer_id, s.transaction_state) for s in r.transaction_states}


def describe_producers(broker, topic: str, partition: int = 0):
    """DescribeProducers v0 of one partition: (error, [ProducerState])."""
    from kafka.protocol.admin.transactions import (DescribeProducersRequest as Req,
                                                   DescribeProducersResponse as Resp)

    r = raw_call(broker, Req(topics=[Req.TopicRequest(name=topic, partition_indexes=[partition])]),
                 0, Resp)
    p = r.topics[0].partitions[0]
    return p.error_code, list(p.active_producers)


def list_offsets(broker, topic: str, partitions, committed: bool, version: int = 5) -> dict:
    """ListOffsets (latest) at READ_COMMITTED (the LSO) or READ_UNCOMMITTED (the
    high watermark): {partition: offset}; fails on a partition error."""
    from kafka.protocol.consumer.offsets import ListOffsetsRequest as Req, ListOffsetsResponse as Resp

    req = Req(replica_id=-1, isolation_level=1 if committed else 0,
              topics=[Req.ListOffsetsTopic(name=topic, partitions=[
                  Req.ListOffsetsTopic.ListOffsetsPartition(partition_index=p, timestamp=-1,
                                                            current_leader_epoch=-1)
                  for p in partitions])])
    r = raw_call(broker, req, version, Resp)
    out = {}
    for t in r.topics:
        for p in t.partitions:
            assert p.error_code == NONE, f"ListOffsets {topic}-{p.partition_index}: {p.error_code}"
            out[p.partition_index] = p.offset
    return out


def lso_and_hw(broker, topic: str, partitions) -> tuple:
    parts = list(range(partitions)) if isinstance(partitions, int) else list(partitions)
    return list_offsets(broker, topic, parts, True), list_offsets(broker, topic, parts, False)


def wait_lso_at_end(broker, topic: str, partitions, timeout: float = 30.0) -> dict:
    """Poll until ListOffsets READ_COMMITTED equals READ_UNCOMMITTED on every
    partition (no open transaction holds the LSO back); the end offsets."""
    def check():
        lso, hw = lso_and_hw(broker, topic, partitions)
        return hw if lso == hw else None

    return poll(check, timeout, f"LSO == high watermark on {topic}", interval=0.2)


def txn_batch(pid: int, epoch: int, seq: int, values_: list, transactional: bool = True) -> bytes:
    """One v2 record batch of ``values_`` for ``pid``/``epoch`` from ``seq``."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=transactional,
                                  producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                                  batch_size=1 << 20)
    now = int(time.time() * 1000)
    for i, v in enumerate(values_):
        b.append(i, timestamp=now, key=None, value=v, headers=[])
    return bytes(b.build())


def produce_raw(broker, topic: str, partition: int, batch: bytes, tid: Optional[str],
                version: int = 8):
    """Produce v``version`` acks=-1 of one batch: (error, base offset)."""
    from kafka.protocol.producer.produce import ProduceRequest as Req, ProduceResponse as Resp

    req = Req(transactional_id=tid, acks=-1, timeout_ms=15000, topic_data=[
        Req.TopicProduceData(name=topic, partition_data=[
            Req.TopicProduceData.PartitionProduceData(index=partition, records=batch)])])
    r = raw_call(broker, req, version, Resp)
    p = r.responses[0].partition_responses[0]
    return p.error_code, p.base_offset


def fetch_raw(broker, topic: str, partition: int, offset: int, committed: bool,
              version: int = 11):
    """Fetch v``version`` of one partition from ``offset`` at READ_COMMITTED or
    READ_UNCOMMITTED: (error, high watermark, last stable offset, aborted
    transactions [(producer id, first offset)], batches [(base offset, last
    offset, producer id, transactional, control)])."""
    from kafka.protocol.consumer.fetch import FetchRequest as Req, FetchResponse as Resp
    from kafka.record import MemoryRecords

    req = Req(replica_id=-1, max_wait_ms=100, min_bytes=0, max_bytes=4 << 20,
              isolation_level=1 if committed else 0, session_id=0, session_epoch=-1,
              topics=[Req.FetchTopic(topic=topic, partitions=[Req.FetchTopic.FetchPartition(
                  partition=partition, current_leader_epoch=-1, fetch_offset=offset,
                  log_start_offset=-1, partition_max_bytes=4 << 20)])],
              forgotten_topics_data=[], rack_id="")
    r = raw_call(broker, req, version, Resp)
    p = r.responses[0].partitions[0]
    batches = []
    if p.records:
        mr = MemoryRecords(bytes(p.records))
        while True:
            b = mr.next_batch()
            if b is None:
                break
            batches.append((b.base_offset, b.last_offset, b.producer_id, b.is_transactional,
                            b.is_control_batch))
    aborted = [(a.producer_id, a.first_offset) for a in (p.aborted_transactions or [])]
    return p.error_code, p.high_watermark, p.last_stable_offset, aborted, batches
