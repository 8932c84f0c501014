"""Broker-side compression (a topic's ``compression.type``, KIP-390 levels) and
per-record produce errors (KIP-467) as real clients see them.

The stored codec is read from the batches themselves: a raw Fetch v10 request
(no client library in between) returns the stored record batches, whose
attributes bits 0-2 name the codec."""

import socket
import struct

import pytest

import kclients
import offsets_topic
from kclients import READERS, Rec, assert_same_records, consume, create_topic, now_ms, text_records

CODEC_IDS = {"uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
COMPRESSION_TYPES = ("uncompressed", "gzip", "snappy", "lz4", "zstd", "producer")
# What each producer writes: never the topic's own codec, so the broker has to convert.
PRODUCER_CODECS = {"uncompressed": ("gzip", "lz4"), "gzip": ("zstd", None),
                   "snappy": ("gzip", None), "lz4": (None, "snappy"),
                   "zstd": ("lz4", "gzip"), "producer": ("lz4", "gzip")}
INVALID_CONFIG = 40


# ------------------------------------------------------ raw Fetch v10 ----

def _str(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def raw_fetch(port: int, topic: str, partition: int = 0, offset: int = 0) -> tuple:
    """Fetch v10 of one partition: (error_code, high_watermark, record bytes)."""
    body = struct.pack(">iiiibii", -1, 0, 1, 8 << 20, 0, 0, -1)
    body += struct.pack(">i", 1) + _str(topic) + struct.pack(">i", 1)
    body += struct.pack(">iiqqi", partition, -1, offset, -1, 4 << 20)
    body += struct.pack(">i", 0)  # forgotten topics
    req = struct.pack(">hhi", 1, 10, 7) + _str("odradek-tests") + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack(">i", len(req)) + req)
        (size,) = struct.unpack(">i", _recv_exact(s, 4))
        data = _recv_exact(s, size)
    pos = 4 + 4 + 2 + 4  # correlation id, throttle, error code, session id
    (n_topics,) = struct.unpack_from(">i", data, pos)
    assert n_topics == 1
    (tlen,) = struct.unpack_from(">h", data, pos + 4)
    pos += 4 + 2 + tlen + 4  # topics count, name, partitions count
    _, err, hw, _, _ = struct.unpack_from(">ihqqq", data, pos)
    pos += 4 + 2 + 8 * 3
    (n_aborted,) = struct.unpack_from(">i", data, pos)
    pos += 4 + max(n_aborted, 0) * 16
    (rlen,) = struct.unpack_from(">i", data, pos)
    records = data[pos + 4:pos + 4 + rlen] if rlen > 0 else b""
    return err, hw, records


def stored_batches(port: int, topic: str, partition: int = 0) -> list:
    """(codec id, base offset, records count) of every whole batch stored in a partition."""
    err, hw, records = raw_fetch(port, topic, partition)
    assert err == 0, f"fetch error {err}"
    out, pos = [], 0
    while pos + 61 <= len(records):
        base, length = struct.unpack_from(">qi", records, pos)
        if pos + 12 + length > len(records):
            break
        (attributes,) = struct.unpack_from(">h", records, pos + 21)
        (count,) = struct.unpack_from(">i", records, pos + 57)
        out.append((attributes & 0x07, base, count))
        pos += 12 + length
    return out


# -------------------------------------------------------------- tests ----

@pytest.mark.parametrize("ctype", COMPRESSION_TYPES)
def test_stored_codec_follows_compression_type(shared_broker, ctype):
    """confluent (idempotent) and kafka-python produce with codecs other than
    the topic's; the stored batches carry the topic's codec (the producers'
    with ``producer``) and every client reads the records back."""
    b = shared_broker
    topic = create_topic(b.bootstrap, config={"compression.type": ctype})
    cf_codec, kp_codec = PRODUCER_CODECS[ctype]
    first = text_records(30, prefix=f"{ctype}-confluent", big_every=15)
    second = text_records(20, prefix=f"{ctype}-kafka-python")
    kclients.produce("confluent", b.bootstrap, topic, first, compression=cf_codec,
                     conf={"enable.idempotence": True, "linger.ms": 50})
    kclients.produce("kafka-python", b.bootstrap, topic, second, compression=kp_codec,
                     conf={"linger_ms": 50})
    batches = stored_batches(b.port, topic)
    assert sum(n for _, _, n in batches) == 50, batches
    codecs = {c for c, _, _ in batches}
    if ctype == "producer":
        want = {CODEC_IDS[c or "uncompressed"] for c in (cf_codec, kp_codec)}
    else:
        want = {CODEC_IDS[ctype]}
    assert codecs == want, f"{ctype}: stored codecs {batches}"
    for reader in READERS:
        assert_same_records(consume(reader, b.bootstrap, topic, 50), first + second)


def test_every_compression_value_and_level_at_creation(shared_broker):
    """Topic creation takes every Kafka compression.type and each level key
    within Kafka 3.9's ranges; anything else is INVALID_CONFIG."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ConfigResource, NewTopic

    bs = shared_broker.bootstrap
    admin = kclients.admin_client(bs)
    good = [{"compression.type": t} for t in COMPRESSION_TYPES] + [
        {"compression.type": "gzip", "compression.gzip.level": "9"},
        {"compression.gzip.level": "-1"},
        {"compression.type": "lz4", "compression.lz4.level": "17"},
        {"compression.lz4.level": "1"},
        {"compression.type": "zstd", "compression.zstd.level": "-131072"},
        {"compression.zstd.level": "22"},
    ]
    names = [kclients.unique_topic("cfg") for _ in good]
    futs = admin.create_topics([NewTopic(n, 1, 1, config=c) for n, c in zip(names, good)],
                               request_timeout=15)
    for n in names:
        futs[n].result(timeout=20)
    res = ConfigResource("topic", names[-2])
    entries = admin.describe_configs([res], request_timeout=15)[res].result(timeout=20)
    assert entries["compression.type"].value == "zstd"
    assert entries["compression.zstd.level"].value == "-131072"
    assert entries["compression.lz4.level"].value == "9", "Kafka's default"
    assert entries["compression.gzip.level"].value == "-1", "Kafka's default"

    bad = [{"compression.type": v} for v in ("none", "LZ4", "brotli", "")] + [
        {"compression.gzip.level": "0"}, {"compression.gzip.level": "10"},
        {"compression.lz4.level": "0"}, {"compression.lz4.level": "18"},
        {"compression.zstd.level": "23"}, {"compression.zstd.level": "-131073"},
        {"compression.zstd.level": "fast"},
    ]
    names = [kclients.unique_topic("bad") for _ in bad]
    futs = admin.create_topics([NewTopic(n, 1, 1, config=c) for n, c in zip(names, bad)],
                               request_timeout=15)
    for n, c in zip(names, bad):
        with pytest.raises(KafkaException) as ei:
            futs[n].result(timeout=20)
        assert ei.value.args[0].code() == INVALID_CONFIG, c
    assert not set(names) & set(admin.list_topics(timeout=10).topics)


def test_broker_default_compression_spares_consumer_offsets(broker_factory):
    """The broker's compression.type (and level) is the default of every
    topic; __consumer_offsets is created with compression.type=producer and
    keeps the coordinator's uncompressed batches."""
    from confluent_kafka import Consumer, TopicPartition

    b = broker_factory({"compression.type": "gzip", "compression.gzip.level": "9",
                        "offsets.topic.num.partitions": "1"})
    topic = create_topic(b.bootstrap)
    recs = text_records(10, prefix="default-gzip")
    kclients.produce("kafka-python", b.bootstrap, topic, recs)
    assert {c for c, _, _ in stored_batches(b.port, topic)} == {CODEC_IDS["gzip"]}
    assert_same_records(consume("aiokafka", b.bootstrap, topic, 10), recs)

    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "compression-group",
                  "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 7)], asynchronous=False)
    finally:
        c.close()
    assert offsets_topic.partition_for("compression-group", 1) == 0
    batches = stored_batches(b.port, "__consumer_offsets")
    assert batches, "the commit is stored"
    assert {codec for codec, _, _ in batches} == {0}, batches


def test_keyless_records_on_a_compacted_topic_as_clients_see_them(shared_broker):
    """KIP-467 record errors for keyless records on a compacted topic: librdkafka
    fails the named records with INVALID_RECORD and the others of the batch
    with _INVALID_DIFFERENT_RECORD (with more than one named record; a single one
    fails the whole batch with INVALID_RECORD); kafka-python raises Kafka's
    per-record message for the named ones; aiokafka only has the error code,
    which it does not know (UnknownError). Nothing is stored."""
    bs = shared_broker.bootstrap
    topic = create_topic(bs, config={"cleanup.policy": "compact"})
    keyless = {1, 3, 4}
    recs = [Rec(value=f"v{i}".encode(), key=None if i in keyless else f"k{i}".encode())
            for i in range(6)]
    tp = f"{topic}-0"

    out = kclients.produce_confluent(bs, topic, recs, raise_errors=False,
                                     conf={"linger.ms": 200})
    names = [e.name() for e in out]
    assert names == ["INVALID_RECORD" if i in keyless else "_INVALID_DIFFERENT_RECORD"
                     for i in range(6)], names
    assert all(not e.retriable() for e in out)

    out = kclients.produce_kafka_python(bs, topic, recs, raise_errors=False,
                                        conf={"linger_ms": 200})
    for i, e in enumerate(out):
        if i in keyless:
            assert type(e).__name__ == "InvalidRecordError", e
            assert str(e).endswith("Compacted topic cannot accept message without key in "
                                   f"topic partition {tp}"), e
        else:
            assert "part of a batch which had one more more invalid records" in str(e), e

    out = kclients.produce_aiokafka(bs, topic, recs, raise_errors=False,
                                    conf={"linger_ms": 200})
    assert {type(e).__name__ for e in out} == {"UnknownError"}, out

    assert raw_fetch(shared_broker.port, topic)[1] == 0, "nothing stored"
    keyed = [r for r in recs if r.key is not None]
    kclients.produce("confluent", bs, topic, keyed)
    assert_same_records(consume("kcat", bs, topic, len(keyed)), keyed)


def test_timestamps_out_of_bounds_as_clients_see_them(shared_broker):
    """KIP-937 bounds: records too old or too new are INVALID_TIMESTAMP, named in the
    record errors: kafka-python raises Kafka's message for each, librdkafka fails them
    as it does other named records (see above), aiokafka fails the batch with the code.
    Nothing is stored."""
    bs = shared_broker.bootstrap
    topic = create_topic(bs, config={"message.timestamp.before.max.ms": "3600000",
                                     "message.timestamp.after.max.ms": "60000"})
    now = now_ms()
    stamps = [now, now - 2 * 3600_000, now + 1000, now + 600_000]
    bad = {1, 3}
    recs = [Rec(value=f"t{i}".encode(), key=b"k", timestamp=t) for i, t in enumerate(stamps)]

    out = kclients.produce_kafka_python(bs, topic, recs, raise_errors=False,
                                        conf={"linger_ms": 200})
    for i, e in enumerate(out):
        if i in bad:
            # kafka-python names one record with the response's error class, several with
            # InvalidRecordError
            assert type(e).__name__ == "InvalidRecordError", e
            assert f"Timestamp {stamps[i]} of message with offset {i} is out of range" in str(e)
        else:
            assert "part of a batch" in str(e), e
    out = kclients.produce_confluent(bs, topic, recs, raise_errors=False,
                                     conf={"linger.ms": 200})
    # several named records: librdkafka reports them as INVALID_RECORD, whatever the code
    assert [e.name() for e in out] == ["INVALID_RECORD" if i in bad else "_INVALID_DIFFERENT_RECORD"
                                       for i in range(4)]
    out = kclients.produce_confluent(bs, topic, recs[:2], raise_errors=False,
                                     conf={"linger.ms": 200})
    assert [e.name() for e in out] == ["INVALID_TIMESTAMP"] * 2, "one named: the batch's code"
    out = kclients.produce_aiokafka(bs, topic, recs, raise_errors=False,
                                    conf={"linger_ms": 200})
    assert {type(e).__name__ for e in out} == {"InvalidTimestampError"}
    assert raw_fetch(shared_broker.port, topic)[1] == 0, "nothing stored"

    fine = [r for i, r in enumerate(recs) if i not in bad]
    kclients.produce("kafka-python", bs, topic, fine)
    got = consume("confluent", bs, topic, len(fine))
    assert_same_records(got, fine)
    assert [r.timestamp for r in got] == [r.timestamp for r in fine]
