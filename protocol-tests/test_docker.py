"""The broker image and the compose cluster of docker/ (only with ODRADEK_DOCKER_TESTS=1).

Builds the stand-in base images when absent (docker/build-standins.sh: a machine without an
image registry), the broker image from $ODRADEK_BIN, then:

- one standalone container: the entrypoint's KAFKA_* mapping (values with spaces and "="), a
  key set that way seen through DescribeConfigs, non-root, the health check turning healthy;
- docker/compose.yaml under a project name of its own, on host ports 28092-28094 (HTTP
  28644-28646): produce and consume through every broker, a topic of replication factor 3
  written with acks=all while one broker container is stopped, the broker back in every
  ISR, `down` keeping the volumes and `up` again with every acknowledged record present;
  `down -v` at the end whatever happened.

Takes several minutes (image builds, three JVMs); needs root for the stand-ins' debootstrap.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from brokers import REPO, broker_binary

pytestmark = [
    pytest.mark.skipif(os.environ.get("ODRADEK_DOCKER_TESTS") != "1",
                       reason="docker tests run only with ODRADEK_DOCKER_TESTS=1"),
    pytest.mark.timeout(1200),
]

DOCKER_DIR = REPO / "docker"
IMAGE = f"odradek-test:{uuid.uuid4().hex[:8]}"
PROJECT = f"odradek-test-{uuid.uuid4().hex[:8]}"
BROKER_PORTS = {1: 28092, 2: 28093, 3: 28094}
HTTP_PORTS = {1: 28644, 2: 28645, 3: 28646}
STANDALONE_PORT = 28095
ALL = ",".join(f"127.0.0.1:{p}" for p in BROKER_PORTS.values())


def run(*args: str, env: dict | None = None, timeout: float = 600, check: bool = True,
        cwd: Path = REPO) -> subprocess.CompletedProcess:
    p = subprocess.run(list(args), cwd=cwd, env=env, timeout=timeout, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {p.returncode}:\n{p.stdout[-4000:]}")
    return p


def compose_command() -> list[str]:
    """`docker compose` (v2) when the docker CLI has it, else `docker-compose` (v1)."""
    if run("docker", "compose", "version", check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed")


def wait_until(cond, timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except Exception as e:  # a broker still starting answers with errors
            last = e
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def health(container: str) -> str:
    out = run("docker", "inspect", "--format", "{{json .State.Health}}", container, check=False)
    if out.returncode != 0 or out.stdout.strip() in ("", "null"):
        return "none"
    return json.loads(out.stdout)["Status"]


def produce(bootstrap: str, topic: str, values: list[bytes], acks: str = "all") -> list[tuple]:
    """(partition, offset, value) of every acknowledged record; fails on any delivery error."""
    acked, failed = [], []

    def cb(err, msg):
        (failed if err else acked).append((err, msg.partition(), msg.offset(), msg.value()))

    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "enable.idempotence": True,
                  "message.timeout.ms": 60000, "linger.ms": 5})
    for v in values:
        p.produce(topic, v, on_delivery=cb)
        p.poll(0)
    assert p.flush(90) == 0, "records still in flight after 90 s"
    assert not failed, f"delivery failed: {failed[:3]}"
    return [(part, off, val) for _, part, off, val in acked]


def consume_all(bootstrap: str, topic: str, partitions: int, timeout: float = 60) -> set:
    """Every (partition, offset, value) from the start to the high watermark."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        ends = {}
        for p in range(partitions):
            _, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=20)
            ends[p] = hi
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        got: set = set()
        deadline = time.monotonic() + timeout
        while any(sum(1 for g in got if g[0] == p) < hi for p, hi in ends.items()):
            assert time.monotonic() < deadline, f"read {len(got)} of {sum(ends.values())}"
            msg = c.poll(1.0)
            if msg is None or msg.error():
                continue
            got.add((msg.partition(), msg.offset(), msg.value()))
        return got
    finally:
        c.close()


def partition_isrs(bootstrap: str, topic: str) -> dict:
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=20)
    t = md.topics[topic]
    if t.error is not None:
        raise KafkaException(t.error)
    return {p: sorted(pm.isrs) for p, pm in t.partitions.items()}


# ---------------------------------------------------------------- images ----

@pytest.fixture(scope="module")
def image():
    """The stand-ins (when absent) and the broker image built from $ODRADEK_BIN."""
    binary = broker_binary()
    assert binary.is_file(), f"no broker binary at {binary} (cargo build --release)"
    run(str(DOCKER_DIR / "build-standins.sh"), timeout=1800)
    dist = DOCKER_DIR / "dist"
    dist.mkdir(exist_ok=True)
    shutil.copy2(binary, dist / "odradek")
    run("docker", "build", "-q", "-f", "docker/Dockerfile", "--build-arg",
        "ODRADEK_BIN=docker/dist/odradek", "-t", IMAGE, ".", timeout=900)
    yield IMAGE
    run("docker", "image", "rm", "-f", IMAGE, check=False)


def test_entrypoint_maps_kafka_variables(image, tmp_path):
    # A stand-in `odradek` first on PATH prints the arguments the entrypoint hands it.
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "odradek").write_text('#!/bin/sh\nfor a in "$@"; do printf "[%s]\\n" "$a"; done\n')
    (fake / "odradek").chmod(0o755)
    out = run("docker", "run", "--rm", "-v", f"{fake}:/fake:ro",
              "-e", "PATH=/fake:/usr/local/bin:/usr/bin:/bin",
              "-e", "KAFKA_LOG_RETENTION_MS=60000",
              "-e", "KAFKA_SOME___DASHED__KEY_NAME=a b=c, d",
              "-e", "KAFKA_HEAP_OPTS=-Xmx1g",
              image, "serve", "--override", "num.partitions=2").stdout
    args = [line[1:-1] for line in out.splitlines() if line.startswith("[")]
    assert args[:3] == ["serve", "--config", "/etc/odradek/server.properties"], out
    assert ["--override", "log.retention.ms=60000"] == args[args.index("log.retention.ms=60000") - 1:
                                                             args.index("log.retention.ms=60000") + 1]
    assert "some-dashed_key.name=a b=c, d" in args, out
    assert not any("heap" in a for a in args), out
    assert args[-2:] == ["--override", "num.partitions=2"], out


def test_standalone_container(image):
    name = f"{PROJECT}-standalone"
    volume = f"{PROJECT}-standalone-data"
    try:
        run("docker", "run", "-d", "--name", name, "-v", f"{volume}:/var/lib/odradek",
            "-p", f"127.0.0.1:{STANDALONE_PORT}:9092",
            "-e", f"KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://127.0.0.1:{STANDALONE_PORT}",
            "-e", "KAFKA_LOG_RETENTION_MS=4321000",
            "--health-interval", "1s", image)
        wait_until(lambda: health(name) == "healthy", 90, "a healthy standalone container")
        assert run("docker", "exec", name, "id", "-u").stdout.strip() != "0"
        assert run("docker", "exec", name, "odradek", "healthcheck").returncode == 0
        bootstrap = f"127.0.0.1:{STANDALONE_PORT}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        res = ConfigResource(ConfigResource.Type.BROKER, "1")
        configs = admin.describe_configs([res])[res].result(timeout=20)
        assert configs["log.retention.ms"].value == "4321000"
        acked = produce(bootstrap, "standalone", [b"one", b"two"])
        assert {v for _, _, v in acked} == {b"one", b"two"}
        data = run("docker", "exec", name, "ls", "/var/lib/odradek").stdout.split()
        assert "standalone-0" in data, data
        logs = run("docker", "logs", name).stdout
        assert "log.retention.ms from $KAFKA_LOG_RETENTION_MS" in logs, logs[-2000:]
        # The health check fails once nothing answers on the port.
        assert run("docker", "exec", name, "odradek", "healthcheck", "--bootstrap",
                   "127.0.0.1:1", check=False).returncode != 0
    finally:
        run("docker", "rm", "-f", "-v", name, check=False)
        run("docker", "volume", "rm", "-f", volume, check=False)


# --------------------------------------------------------------- compose ----

class Compose:
    """docker/compose.yaml under this test's project name and ports."""

    def __init__(self, image: str):
        self.cmd = compose_command() + ["-p", PROJECT, "-f", str(DOCKER_DIR / "compose.yaml")]
        self.env = dict(os.environ, ODRADEK_IMAGE=image, ODRADEK_DOCKER_BIN="docker/dist/odradek")
        for n in BROKER_PORTS:
            self.env[f"ODRADEK_PORT_{n}"] = str(BROKER_PORTS[n])
            self.env[f"ODRADEK_HTTP_PORT_{n}"] = str(HTTP_PORTS[n])

    def __call__(self, *args: str, check: bool = True) -> str:
        return run(*self.cmd, *args, env=self.env, check=check, timeout=900).stdout

    def container(self, service: str) -> str:
        return self("ps", "-q", service).strip()

    def wait_healthy(self, timeout: float = 180):
        def all_healthy():
            states = {s: health(self.container(s)) for s in ("broker1", "broker2", "broker3")}
            return all(v == "healthy" for v in states.values())

        wait_until(all_healthy, timeout, "three healthy brokers", every=2)


@pytest.fixture(scope="module")
def compose(image):
    c = Compose(image)
    try:
        # The image is already built (under ODRADEK_IMAGE): no build here.
        c("up", "-d", "--no-build")
        c.wait_healthy()
        yield c
    finally:
        if os.environ.get("ODRADEK_DOCKER_KEEP") != "1":
            print(c("logs", "--tail", "30", check=False)[-6000:])
            c("down", "-v", "--remove-orphans", check=False)


ACKED: dict = {}


def test_produce_and_consume_through_every_broker(compose):
    for n, port in BROKER_PORTS.items():
        bootstrap = f"127.0.0.1:{port}"
        topic = f"via-broker{n}"
        acked = produce(bootstrap, topic, [f"{topic}-{i}".encode() for i in range(50)])
        assert len(acked) == 50
        ACKED[topic] = set(acked)
        # Read back through another broker: every record written through this one.
        other = BROKER_PORTS[n % 3 + 1]
        got = wait_until(lambda: consume_all(f"127.0.0.1:{other}", topic, 3), 60,
                         f"{topic} through broker on port {other}")
        assert set(acked) <= got


def test_acks_all_with_one_broker_stopped(compose):
    topic = "replicated"
    admin = AdminClient({"bootstrap.servers": ALL})
    admin.create_topics([NewTopic(topic, 3, 3)])[topic].result(timeout=30)
    wait_until(lambda: all(len(i) == 3 for i in partition_isrs(ALL, topic).values()), 60,
               "full ISRs")
    acked = produce(ALL, topic, [f"before-{i}".encode() for i in range(100)])
    compose("stop", "broker2")
    # Two of three replicas are left: acks=all with min.insync.replicas=2 still succeeds.
    acked += produce(ALL, topic, [f"during-{i}".encode() for i in range(300)])
    assert len(acked) == 400
    # The survivors' published HTTP listeners say so.
    wait_until(lambda: sum(metric(HTTP_PORTS[n], "kafka_server_replicamanager_underreplicatedpartitions")
                           for n in (1, 3)) > 0, 60, "under-replicated partitions in /metrics")
    compose("start", "broker2")
    compose.wait_healthy()
    wait_until(lambda: all(2 in isr and len(isr) == 3
                           for isr in partition_isrs(ALL, topic).values()),
               120, "broker 2 back in every ISR", every=2)
    acked += produce(ALL, topic, [f"after-{i}".encode() for i in range(100)])
    ACKED[topic] = set(acked)
    assert {v for _, _, v in acked} == {
        *(f"before-{i}".encode() for i in range(100)),
        *(f"during-{i}".encode() for i in range(300)),
        *(f"after-{i}".encode() for i in range(100))}


def metric(port: int, name: str) -> float:
    """The value of an unlabelled sample in a broker's /metrics, through its published port."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not in the metrics of port {port}")


def test_metrics_and_console_on_every_broker(compose):
    assert sum(metric(HTTP_PORTS[n], "kafka_controller_kafkacontroller_activecontrollercount")
               for n in HTTP_PORTS) == 1
    for n, port in HTTP_PORTS.items():
        assert metric(port, "kafka_server_replicamanager_partitioncount") > 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            overview = r.read().decode()
        # Every broker with both of its endpoints, as registered in ZooKeeper.
        for b in (1, 2, 3):
            assert f"INTERNAL://broker{b}:19092" in overview, f"console of broker {n}"
            assert f"EXTERNAL://127.0.0.1:{BROKER_PORTS[b]}" in overview, f"console of broker {n}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/topics/replicated", timeout=10) as r:
            assert r.status == 200 and "replicated" in r.read().decode()


def test_down_and_up_keeps_every_acked_record(compose):
    assert ACKED, "the tests before this one wrote nothing"
    compose("down")  # the named volumes stay
    compose("up", "-d", "--no-build")
    compose.wait_healthy()
    for topic, acked in ACKED.items():
        got = wait_until(lambda: consume_all(ALL, topic, 3), 90, f"{topic} after down/up")
        missing = acked - got
        assert not missing, f"{topic}: {len(missing)} acked records missing, e.g. {sorted(missing)[:3]}"
