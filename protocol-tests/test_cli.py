"""The command-line contract: `odradek serve --config server.properties
--override key=value`, Kafka key names, start-up failures, the data-dir lock
and clean shutdown under load."""

import subprocess
import threading
import time

import pytest

import kclients
from brokers import BrokerError, broker_binary
from kclients import Rec, create_topic, unique_topic, wait_for_topic


def _broker_config(bs):
    from confluent_kafka.admin import ConfigResource, ResourceType

    admin = kclients.admin_client(bs)
    res = ConfigResource(ResourceType.BROKER, "1")
    return admin.describe_configs([res], request_timeout=15)[res].result(timeout=20)


def test_config_file_and_override_precedence(tmp_path, broker_factory):
    props = tmp_path / "server.properties"
    props.write_text("# Kafka-style properties\n"
                     "num.partitions=2\n"
                     "message.max.bytes=2000000\n"
                     "log.retention.hours=24\n")
    b = broker_factory({"num.partitions": "3"}, config_file=props)
    topic = unique_topic("cfgfile")
    kclients.produce_confluent(b.bootstrap, topic, [Rec(value=b"x")])
    wait_for_topic(b.bootstrap, topic, 3)  # --override beats the file
    cfg = _broker_config(b.bootstrap)
    assert cfg["message.max.bytes"].value == "2000000"  # from the file
    assert cfg["num.partitions"].value == "3"


def test_invalid_config_value_stops_startup(broker_factory):
    b = broker_factory({"num.partitions": "not-a-number"}, start=False)
    with pytest.raises(BrokerError):
        b.start(timeout=20)
    assert b.proc.poll() is not None and b.proc.returncode != 0
    assert "num.partitions" in b.log_file.read_text(errors="replace")


def test_second_broker_on_same_data_dir_refused(broker_factory):
    first = broker_factory()
    topic = create_topic(first.bootstrap)
    kclients.produce_confluent(first.bootstrap, topic, [Rec(value=b"mine")])
    second = broker_factory(start=False, data_dir=first.data_dir)
    with pytest.raises(BrokerError):
        second.start(timeout=20)
    assert second.proc.returncode not in (None, 0)
    first.assert_alive()
    got = kclients.consume("kafka-python", first.bootstrap, topic, 1)
    assert got[0].value == b"mine"


def test_sigterm_with_busy_clients_exits_promptly(broker):
    """SIGTERM while a consumer long-polls and a producer sends: clean exit
    (code 0) well within 30 s, and the data is intact afterwards."""
    from confluent_kafka import Producer

    bs = broker.bootstrap
    topic = create_topic(bs)
    kclients.produce_confluent(bs, topic, [Rec(value=f"{i}".encode()) for i in range(100)])
    stop = threading.Event()

    def poller():
        from kafka import KafkaConsumer, TopicPartition
        c = KafkaConsumer(bootstrap_servers=bs, group_id=None, enable_auto_commit=False,
                          fetch_max_wait_ms=5000, reconnect_backoff_max_ms=200)
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 100)
        while not stop.is_set():
            try:
                c.poll(timeout_ms=200)
            except Exception:  # noqa: BLE001
                time.sleep(0.1)
        c.close(autocommit=False)

    th = threading.Thread(target=poller, daemon=True)
    th.start()
    p = Producer({"bootstrap.servers": bs, "linger.ms": 5})
    for i in range(200):
        p.produce(topic, value=b"busy")
        p.poll(0)
    time.sleep(1.0)
    t0 = time.monotonic()
    rc = broker.stop(timeout=30)
    took = time.monotonic() - t0
    stop.set()
    p.flush(1)
    th.join(10)
    assert rc == 0, f"exit code {rc}"
    assert took < 15, f"shutdown took {took:.1f}s"
    broker.start()
    lo, hi = None, None
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bs, "group.id": "odradek-tests-no-group",
                  "enable.auto.commit": False})
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        c.close()
    assert lo == 0 and hi >= 100
    got = kclients.consume("kafka-python", bs, topic, hi)
    assert [g.offset for g in got] == list(range(hi))


def test_help_and_unknown_subcommand():
    binary = str(broker_binary())
    out = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    assert "--override" in out.stdout and "--config" in out.stdout
    bad = subprocess.run([binary, "no-such-command"], capture_output=True, text=True, timeout=10)
    assert bad.returncode != 0
