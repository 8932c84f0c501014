"""kcat (Debian's kcat 1.7.1 on librdkafka 2.0.2): metadata, produce, consume."""

import json
import subprocess

import kclients
from kclients import Rec, assert_same_records, consume, create_topic, produce


def _kcat(*args, input=None, timeout=30):
    p = subprocess.run([kclients.kcat_bin(), *args], input=input, capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, f"kcat {' '.join(args)} -> rc {p.returncode}: {p.stderr[-2000:]}"
    return p.stdout


def test_kcat_version_is_old_librdkafka():
    out = subprocess.run([kclients.kcat_bin(), "-V"], capture_output=True, text=True, timeout=10)
    assert "librdkafka" in out.stdout + out.stderr


def test_kcat_metadata_json(shared_broker):
    bs = shared_broker.bootstrap
    topic = create_topic(bs, partitions=3)
    md = json.loads(_kcat("-b", bs, "-L", "-J"))
    brokers = {b["id"]: b["name"] for b in md["brokers"]}
    assert brokers == {1: f"127.0.0.1:{shared_broker.port}"}
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic in topics
    t = topics[topic]
    assert "error" not in t or not t["error"], t
    parts = sorted(t["partitions"], key=lambda p: p["partition"])
    assert [p["partition"] for p in parts] == [0, 1, 2]
    for p in parts:
        assert p["leader"] == 1
        assert [r["id"] for r in p["replicas"]] == [1]
        assert [r["id"] for r in p["isrs"]] == [1]


def test_kcat_metadata_text_single_topic(shared_broker):
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    out = _kcat("-b", bs, "-L", "-t", topic)
    assert "1 brokers:" in out
    assert f'topic "{topic}" with 1 partitions:' in out
    assert "partition 0, leader 1" in out


def test_kcat_produce_consume(shared_broker):
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    lines = [f"line {i} of kcat input" for i in range(50)]
    _kcat("-b", bs, "-P", "-t", topic, input="\n".join(lines) + "\n")
    out = _kcat("-b", bs, "-C", "-t", topic, "-o", "beginning", "-e", "-q")
    assert out.splitlines() == lines
    # offset/count options
    out = _kcat("-b", bs, "-C", "-t", topic, "-o", "10", "-c", "5", "-e", "-q",
                "-f", "%o:%s\\n")
    assert out.splitlines() == [f"{i}:{lines[i]}" for i in range(10, 15)]
    # relative offset from the end
    out = _kcat("-b", bs, "-C", "-t", topic, "-o", "-3", "-e", "-q")
    assert out.splitlines() == lines[-3:]
    # and a different client agrees
    got = consume("confluent", bs, topic, 50)
    assert [g.value.decode() for g in got] == lines


def test_kcat_keys_partitions_and_format(shared_broker):
    bs = shared_broker.bootstrap
    topic = create_topic(bs, partitions=2)
    _kcat("-b", bs, "-P", "-t", topic, "-p", "1", "-K", ":", input="ka:va\nkb:vb\n")
    out = _kcat("-b", bs, "-C", "-t", topic, "-p", "1", "-e", "-q",
                "-f", "%p|%o|%k|%s|%T\\n")
    rows = [line.split("|") for line in out.splitlines()]
    assert [r[:4] for r in rows] == [["1", "0", "ka", "va"], ["1", "1", "kb", "vb"]]
    assert all(int(r[4]) > 1_600_000_000_000 for r in rows)  # CreateTime set by librdkafka
    out = _kcat("-b", bs, "-C", "-t", topic, "-p", "0", "-e", "-q")
    assert out == ""


def test_kcat_reads_what_python_clients_wrote(shared_broker):
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    a = [Rec(value=f"cf{i}".encode(), key=b"c") for i in range(5)]
    b = [Rec(value=f"kp{i}".encode(), key=b"k") for i in range(5)]
    c = [Rec(value=f"aio{i}".encode(), key=b"a") for i in range(5)]
    produce("confluent", bs, topic, a)
    produce("kafka-python", bs, topic, b, compression="gzip")
    produce("aiokafka", bs, topic, c, compression="zstd")
    assert_same_records(consume("kcat", bs, topic, 15), a + b + c)


def test_kcat_consume_timestamps_and_end(shared_broker):
    bs = shared_broker.bootstrap
    topic = create_topic(bs)
    base = kclients.now_ms() - 86_400_000
    recs = [Rec(value=f"t{i}".encode(), key=None, timestamp=base + i) for i in range(4)]
    produce("confluent", bs, topic, recs)
    got = consume("kcat", bs, topic, 4)
    assert [g.timestamp for g in got] == [r.timestamp for r in recs]
    assert [g.offset for g in got] == [0, 1, 2, 3]
