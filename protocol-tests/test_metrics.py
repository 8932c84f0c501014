"""The broker's HTTP listener and /metrics, seen by a real Prometheus.

- Debian's Prometheus scrapes one broker (scrape_interval 1 s, its own data dir
  in tmp) and its HTTP API answers a query for messages-in whose value moves
  after a produce, per topic and broker-wide.
- In a three-broker ZooKeeper cluster (scraped from /metrics directly): a
  group's lag, end offset minus committed offset, exported once by its
  coordinator for partitions led by every broker; exactly one active
  controller; once one broker is killed, a surviving broker reports
  under-replicated partitions.

Ports: brokers' HTTP listeners 23640-23649, Prometheus 23650 (fixed, below
32768; the Kafka listeners and ZooKeeper take free ports as elsewhere).
Prometheus is Debian's ``prometheus`` package (scripts/install-deps.sh).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import kclients
from cluster import poll
from kclients import Rec

HTTP_BASE = 23640
PROMETHEUS_PORT = 23650


def http_get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def samples(port: int) -> dict:
    """One scrape of /metrics on ``port``: ``name{labels}`` -> value."""
    out = {}
    for line in http_get(f"http://127.0.0.1:{port}/metrics").splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


class Prometheus:
    """``prometheus`` scraping the given targets every second, in ``root``."""

    def __init__(self, root: Path, targets: list):
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        if not Path(binary).exists():
            pytest.fail("prometheus is not installed (run scripts/install-deps.sh)")
        root.mkdir(parents=True, exist_ok=True)
        config = root / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: odradek\n    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n")
        self.log = open(root / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={root / 'data'}",
             f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{PROMETHEUS_PORT}"
        self.root = root
        poll(self._ready, 30, "Prometheus ready")

    def _ready(self):
        assert self.proc.poll() is None, (self.root / "prometheus.log").read_text()[-2000:]
        return "Ready" in http_get(f"{self.url}/-/ready")

    def query(self, q: str) -> list:
        """The instant vector of ``q``: a list of (labels, value)."""
        url = f"{self.url}/api/v1/query?query={urllib.parse.quote(q)}"
        body = json.loads(http_get(url))
        assert body["status"] == "success", body
        return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def prometheus(tmp_path):
    made = []

    def start(targets):
        p = Prometheus(tmp_path / "prometheus", targets)
        made.append(p)
        return p

    yield start
    for p in made:
        p.stop()


def test_prometheus_sees_messages_in_move_after_a_produce(broker_factory, prometheus):
    b = broker_factory(overrides={"http.listener": f"127.0.0.1:{HTTP_BASE}"})
    topic = kclients.create_topic(b.bootstrap, partitions=1)
    prom = prometheus([f"127.0.0.1:{HTTP_BASE}"])
    total = "kafka_server_brokertopicmetrics_messagesin_total"

    def scraped_total():
        r = [v for labels, v in prom.query(total) if "topic" not in labels]
        return r[0] if r else None

    poll(lambda: scraped_total() is not None, 30, f"Prometheus has scraped {total}")
    before = scraped_total()
    recs = [Rec(key=f"k{i}".encode(), value=f"v{i}".encode()) for i in range(7)]
    kclients.produce("confluent", b.bootstrap, topic, recs)

    def moved():
        now = scraped_total()
        per_topic = prom.query(f'{total}{{topic="{topic}"}}')
        assert now == before + 7, f"broker-wide {before} -> {now}"
        assert [v for _, v in per_topic] == [7.0], per_topic
        return True

    poll(moved, 30, "messages-in moved by the records produced, in Prometheus")
    # Rates work on it as dashboards use them.
    assert prom.query(f"rate({total}[1m])") != []


def check_lag_across_leaders(c, topic: str, http_port: dict):
    """kafka_consumergroup_lag, exported by the group's coordinator only, is the
    end offset minus the committed offset on every partition, the ones led by
    other brokers included (their leaders asked with ListOffsets)."""
    from confluent_kafka import Consumer, TopicPartition

    produced = {0: 5, 1: 8, 2: 3}
    recs = [Rec(value=f"{p}-{i}".encode(), partition=p)
            for p, n in produced.items() for i in range(n)]
    kclients.produce("confluent", c.bootstrap, topic, recs)
    committed = {0: 2, 1: 8, 2: 0}
    group = f"lag-{topic}"
    consumer = Consumer({"bootstrap.servers": c.bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in committed.items()],
                        asynchronous=False)
    finally:
        consumer.close()
    leaders = c.leaders(topic)

    def lag_everywhere():
        seen = {}
        for i, port in http_port.items():
            for key, v in samples(port).items():
                if key.startswith("kafka_consumergroup_lag{") and f'consumergroup="{group}"' in key:
                    part = int(key.split('partition="')[1].split('"')[0])
                    assert part not in seen, f"partition {part} exported twice: {key}"
                    seen[part] = (i, v)
        want = {p: produced[p] - committed[p] for p in produced}
        assert {p: v for p, (_, v) in seen.items()} == want, (seen, want)
        return seen

    seen = poll(lag_everywhere, 20, "consumer-group lag from the coordinator")
    coordinator = {i for i, _ in seen.values()}
    assert len(coordinator) == 1, seen
    assert set(leaders.values()) - coordinator, f"no partition led away from {coordinator}"
    print(f"lag exported by broker {coordinator}, leaders {leaders}: {seen}")


def test_under_replicated_partitions_after_a_broker_is_killed(cluster_factory):
    c = cluster_factory(3, start=False)
    for b in c.brokers:
        b.overrides["http.listener"] = f"127.0.0.1:{HTTP_BASE + b.broker_id}"
    c.start()
    http_port = {b.broker_id: HTTP_BASE + b.broker_id for b in c.brokers}
    topic = c.create_topic(partitions=3, rf=3)
    urp = "kafka_server_replicamanager_underreplicatedpartitions"

    def all_replicated():
        per = {i: samples(port)[urp] for i, port in http_port.items()}
        assert set(per.values()) == {0.0}, per
        return per

    poll(all_replicated, 20, "no under-replicated partitions with every broker up")
    check_lag_across_leaders(c, topic, http_port)
    controller = c.controller()
    active = {i: samples(port)["kafka_controller_kafkacontroller_activecontrollercount"]
              for i, port in http_port.items()}
    assert active == {i: float(i == controller) for i in http_port}, active

    victim = next(i for i in http_port if i != controller)
    c.broker(victim).kill9()
    survivors = [i for i in http_port if i != victim]

    def under_replicated():
        per = {i: samples(http_port[i])[urp] for i in survivors}
        assert sum(per.values()) > 0, per
        return per

    per = poll(under_replicated, 30, f"under-replicated partitions after broker {victim} died")
    print(f"broker {victim} killed; under-replicated partitions per survivor: {per}")
    ctrl = samples(http_port[controller])
    assert ctrl["kafka_controller_kafkacontroller_offlinepartitionscount"] == 0.0
