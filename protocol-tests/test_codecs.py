"""Compression: every codec written by every client and read back by every
client (so each codec is covered by many distinct writer/reader pairs).
None of these tests may skip: the venv carries every codec library."""

import pytest

import kclients
from kclients import (CODECS, READERS, WRITERS, Rec, assert_same_records, consume, create_topic,
                      produce, text_records)


def test_codec_libraries_present():
    """Guard: the clients really have every codec (no silent skips)."""
    from kafka import codec as kc
    from aiokafka import codec as ac

    for name in CODECS + ("gzip",):
        assert getattr(kc, f"has_{name}")(), f"kafka-python lacks {name}"
        assert getattr(ac, f"has_{name}")(), f"aiokafka lacks {name}"
    kclients.kcat_bin()


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("codec", CODECS)
def test_codec_matrix(shared_broker, codec, writer):
    """``writer`` produces ``codec``-compressed batches (including ~64 KiB
    records spanning several snappy/lz4 blocks); all four clients read them."""
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    recs = text_records(40, prefix=f"{codec}-{writer}", big_every=20)
    acks = produce(writer, bs, topic, recs, compression=codec)
    if writer != "kcat":
        assert [o for _, o in acks] == list(range(len(recs)))
    for reader in READERS:
        got = consume(reader, bs, topic, len(recs))
        assert_same_records(got, recs), reader


def test_mixed_codecs_in_one_partition(shared_broker):
    """Batches with different codecs interleaved in one partition."""
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    plan = [("confluent", "gzip"), ("kafka-python", "snappy"), ("aiokafka", "lz4"),
            ("kcat", "zstd"), ("confluent", None), ("aiokafka", "gzip"),
            ("kafka-python", "zstd"), ("confluent", "lz4"), ("kcat", "snappy")]
    all_recs = []
    for i, (writer, codec) in enumerate(plan):
        recs = text_records(7, prefix=f"mix{i}-{writer}-{codec}")
        produce(writer, bs, topic, recs, compression=codec)
        all_recs += recs
    for reader in READERS:
        got = consume(reader, bs, topic, len(all_recs))
        assert_same_records(got, all_recs)


@pytest.mark.parametrize("reader", ["confluent", "kafka-python", "aiokafka"])
@pytest.mark.parametrize("codec", CODECS)
def test_codec_consume_from_middle_of_batch(shared_broker, codec, reader):
    """Fetching from an offset inside a compressed batch returns records from
    exactly that offset (clients skip the earlier ones of the batch)."""
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    recs = text_records(30, prefix=f"mid-{codec}")
    produce("confluent", bs, topic, recs, compression=codec,
            conf={"linger.ms": 50, "batch.num.messages": 1000})
    got = consume(reader, bs, topic, 13, offset=17)
    assert_same_records(got[:13], recs[17:], first_offset=17)


@pytest.mark.parametrize("codec", CODECS)
def test_compressed_batches_stored_compressed(broker, codec):
    """With the default topic compression.type=producer the broker keeps the
    producer's compressed batches: the segment is much smaller than the
    uncompressed payload."""
    bs = broker.bootstrap
    topic = create_topic(bs)
    recs = [Rec(value=(b"odradek-compressible-" * 3000) + str(i).encode(), key=b"k")
            for i in range(40)]
    raw = sum(len(r.value) for r in recs)
    produce("kafka-python", bs, topic, recs, compression=codec, conf={"linger_ms": 50})
    assert_same_records(consume("confluent", bs, topic, len(recs)), recs)
    pdir = broker.partition_dir(topic)
    logs = list(pdir.glob("*.log"))
    assert logs, f"no *.log segment in {pdir}: {list(pdir.iterdir()) if pdir.exists() else 'missing'}"
    stored = sum(p.stat().st_size for p in logs)
    assert stored < raw / 10, f"{codec}: {stored} bytes on disk for {raw} raw bytes"
