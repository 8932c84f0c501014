"""DeleteRecords and DescribeLogDirs with real clients: confluent-kafka's
``AdminClient.delete_records`` and kafka-python's ``KafkaAdminClient.delete_records``
/ ``describe_log_dirs`` against a standalone broker (a consumer that resets to
earliest starts at the new low watermark; bad input gets Kafka's codes and changes
nothing; kill -9 and restart keep the log start), and on three brokers with
ZooKeeper (every replica's log start moves and its segments go; a leader killed
with SIGKILL hands over a log that still starts there)."""

import time
from pathlib import Path

import pytest

import kclients
from kclients import Rec, create_topic

# Small segments (a few batches each) so that deleting records removes files.
SMALL_SEGMENTS = {"segment.bytes": "2048"}


def _fill(bs, topic, n, partition=0):
    """``n`` records, small batches (linger 0, at most 10 a batch)."""
    recs = [Rec(value=f"r{i:04d}".encode() + b"." * 100, key=None, partition=partition)
            for i in range(n)]
    kclients.produce("confluent", bs, topic, recs,
                     conf={"linger.ms": 0, "batch.num.messages": 10})
    return recs


def _watermarks(bs, topic, partition=0):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bs, "group.id": "odradek-tests-no-group",
                  "enable.auto.commit": False})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=15)
    finally:
        c.close()


def _confluent_delete(bs, topic, offsets: dict, timeout=20):
    """partition -> offset; returns partition -> low watermark or the KafkaError."""
    from confluent_kafka import KafkaException, TopicPartition

    admin = kclients.admin_client(bs)
    futs = admin.delete_records([TopicPartition(topic, p, o) for p, o in offsets.items()],
                                request_timeout=timeout, operation_timeout=timeout)
    out = {}
    for tp, f in futs.items():
        try:
            out[tp.partition] = f.result(timeout=timeout + 5).low_watermark
        except KafkaException as e:
            out[tp.partition] = e.args[0]
    return out


def _segment_bases(partition_dir: Path) -> list:
    return sorted(int(p.stem) for p in partition_dir.glob("*.log"))


def _segments_below(partition_dir: Path, start: int) -> list:
    """Segments wholly below ``start`` (the next segment begins at or before it)."""
    bases = _segment_bases(partition_dir)
    return [b for b, nxt in zip(bases, bases[1:]) if nxt <= start]


def _checkpointed_start(data_dir: Path, topic: str, partition: int = 0):
    path = data_dir / "log-start-offset-checkpoint"
    for line in path.read_text().splitlines()[2:]:
        t, p, o = line.split(" ")
        if t == topic and int(p) == partition:
            return int(o)
    return None


def _first_offset_after_reset(bs, topic, assigned_offset):
    """A confluent consumer assigned at ``assigned_offset`` with
    auto.offset.reset=earliest: the offset of the first record it gets."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bs, "group.id": f"g-{topic}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "fetch.wait.max.ms": 100})
    try:
        c.assign([TopicPartition(topic, 0, assigned_offset)])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                return m.offset()
        raise AssertionError("no record read after the reset")
    finally:
        c.close()


def test_confluent_delete_records_and_consumers_reset_to_the_low_watermark(shared_broker):
    bs = shared_broker.bootstrap
    topic = create_topic(bs, partitions=2, config=SMALL_SEGMENTS)
    recs = _fill(bs, topic, 300)
    pdir = shared_broker.partition_dir(topic)
    assert len(_segment_bases(pdir)) > 4
    assert _confluent_delete(bs, topic, {0: 120, 1: 0}) == {0: 120, 1: 0}
    assert _watermarks(bs, topic) == (120, 300)
    # Durable when acknowledged, and whole segments below the start are gone.
    assert _checkpointed_start(shared_broker.data_dir, topic) == 120
    assert _segments_below(pdir, 120) == []
    assert _segment_bases(pdir)[0] <= 120
    # A consumer whose position was deleted resets to the low watermark.
    assert _first_offset_after_reset(bs, topic, 5) == 120
    got = kclients.consume("kafka-python", bs, topic, 180, offset=120)
    kclients.assert_same_records(got, recs[120:], first_offset=120, check_keys=False)
    # A group member with no committed offset and auto.offset.reset=earliest starts there too.
    from kafka import KafkaConsumer

    kc = KafkaConsumer(topic, bootstrap_servers=bs, group_id=f"kp-{topic}",
                       auto_offset_reset="earliest", enable_auto_commit=False,
                       consumer_timeout_ms=20000)
    try:
        first = next(m for m in kc if m.partition == 0)
        assert first.offset == 120
    finally:
        kc.close()
    # OFFSET_END (-1): everything up to the high watermark.
    assert _confluent_delete(bs, topic, {0: -1}) == {0: 300}
    assert _watermarks(bs, topic) == (300, 300)
    assert len(_segment_bases(pdir)) == 1


def test_kafka_python_delete_records_and_bad_input(shared_broker):
    from kafka import KafkaAdminClient, TopicPartition
    from kafka import errors as Errors

    bs = shared_broker.bootstrap
    topic = create_topic(bs, config=SMALL_SEGMENTS)
    recs = _fill(bs, topic, 100)
    admin = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=20000)
    try:
        tp = TopicPartition(topic, 0)
        result = admin.delete_records({tp: 30}, timeout_ms=15000)
        assert result[tp]["low_watermark"] == 30 and result[tp]["error_code"] == 0
        before = sorted(p.name for p in shared_broker.partition_dir(topic).iterdir())

        def refused(offsets, **kw):
            with pytest.raises(Errors.BrokerResponseError) as e:
                admin.delete_records(offsets, timeout_ms=15000, **kw)
            return e.value.errno

        # Kafka's codes: OFFSET_OUT_OF_RANGE beyond the high watermark and for negative
        # offsets other than -1; UNKNOWN_TOPIC_OR_PARTITION for partitions it does not have.
        assert refused({tp: 101}) == 1
        assert refused({tp: -2}) == 1
        node = shared_broker.broker_id
        assert refused({TopicPartition(topic, 7): 1}, partition_leader_id=node) == 3
        assert refused({TopicPartition("no-such-topic", 0): 1}, partition_leader_id=node) == 3
        # Nothing changed.
        assert _watermarks(bs, topic) == (30, 100)
        assert sorted(p.name for p in shared_broker.partition_dir(topic).iterdir()) == before
        got = kclients.consume("confluent", bs, topic, 70, offset=30)
        kclients.assert_same_records(got, recs[30:], first_offset=30, check_keys=False)
        # confluent-kafka reports the broker's code as well.
        from confluent_kafka import KafkaError

        (err,) = _confluent_delete(bs, topic, {0: 1000}).values()
        assert err.code() == KafkaError.OFFSET_OUT_OF_RANGE
        assert _watermarks(bs, topic) == (30, 100)
    finally:
        admin.close()


def test_describe_log_dirs_sizes_match_the_files(broker):
    from kafka import KafkaAdminClient

    bs = broker.bootstrap
    a = create_topic(bs, partitions=2, config=SMALL_SEGMENTS)
    b = create_topic(bs)
    _fill(bs, a, 100, partition=0)
    _fill(bs, a, 7, partition=1)
    _fill(bs, b, 30)
    admin = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=20000)
    try:
        (answer,) = admin.describe_log_dirs()
        (d,) = answer["log_dirs"]
        assert d["error_code"] == 0
        assert Path(d["log_dir"]) == broker.data_dir.absolute()
        assert d["total_bytes"] > 0 and 0 <= d["usable_bytes"] <= d["total_bytes"]
        sizes = {(t["name"], p["partition_index"]): (p["partition_size"], p["offset_lag"],
                                                      p["is_future_key"])
                 for t in d["topics"] for p in t["partitions"]}
        want = {}
        for topic, p in [(a, 0), (a, 1), (b, 0)]:
            on_disk = sum(f.stat().st_size for f in broker.partition_dir(topic, p).glob("*.log"))
            assert on_disk > 0
            want[(topic, p)] = (on_disk, 0, False)
        assert sizes == want
        # A filter: only what was asked for and exists here.
        (answer,) = admin.describe_log_dirs({a: [1, 9], "no-such-topic": [0]})
        (d,) = answer["log_dirs"]
        assert [(t["name"], [p["partition_index"] for p in t["partitions"]])
                for t in d["topics"]] == [(a, [1])]
    finally:
        admin.close()


@pytest.mark.parametrize("kill", [True, False], ids=["kill9", "sigterm"])
def test_deleted_records_stay_deleted_across_restarts(broker, kill):
    bs = broker.bootstrap
    topic = create_topic(bs, config=SMALL_SEGMENTS)
    _fill(bs, topic, 200)
    assert _confluent_delete(bs, topic, {0: 77}) == {0: 77}
    broker.restart(kill=kill)
    assert _watermarks(bs, topic) == (77, 200)
    assert _segments_below(broker.partition_dir(topic), 77) == []
    got = kclients.consume("confluent", bs, topic, 1, offset=0,
                           conf={"auto.offset.reset": "earliest"})
    assert got[0].offset == 77


@pytest.mark.cluster
@pytest.mark.timeout(180)
def test_cluster_replicas_follow_the_leaders_log_start(cluster_factory):
    """RF 3: delete_records answers once every replica moved its log start
    (each broker's checkpoint and segment files show it); a SIGKILLed leader's
    successor starts there; the killed broker, restarted, too."""
    c = cluster_factory(3)
    topic = c.create_topic(partitions=1, rf=3,
                           config=dict(SMALL_SEGMENTS, **{"min.insync.replicas": "2"}))
    recs = _fill(c.bootstrap, topic, 300)
    assert _confluent_delete(c.bootstrap, topic, {0: 150}) == {0: 150}
    for b in c.brokers:
        assert _checkpointed_start(b.data_dir, topic) == 150, f"broker {b.broker_id}"
        assert _segments_below(b.partition_dir(topic), 150) == [], f"broker {b.broker_id}"
        assert _segment_bases(b.partition_dir(topic))[0] <= 150

    leader = c.broker(c.leader(topic))
    leader.kill9()
    new_leader = c.leader(topic, exclude=(leader.broker_id,), timeout=40)
    survivors = c.bootstrap_without(leader.broker_id)
    assert _watermarks(survivors, topic) == (150, 300), f"via new leader {new_leader}"
    more = _fill(survivors, topic, 20)
    leader.start()
    c.wait_isr_full(topic, timeout=45)
    # Another leader change, by a clean stop of the current leader.
    current = c.broker(c.leader(topic))
    current.stop()
    third = c.leader(topic, exclude=(current.broker_id,), timeout=40)
    assert _watermarks(c.bootstrap_without(current.broker_id), topic) == (150, 320), \
        f"via leader {third}"
    current.start()
    c.wait_isr_full(topic, timeout=45)
    got = kclients.consume("kafka-python", c.bootstrap, topic, 170, offset=150)
    kclients.assert_same_records(got, recs[150:] + more, first_offset=150, check_keys=False)
    for b in c.brokers:
        assert _segments_below(b.partition_dir(topic), 150) == [], f"broker {b.broker_id}"
