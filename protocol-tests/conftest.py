"""Pytest fixtures and hooks for running the Odradek broker under real Kafka clients.

Only fixtures and hooks live here; the machinery is in the helper modules, which
never import this file (test_layout.py checks that, and that they import each
other in one direction: brokers <- cluster <- durability <- conftest):

- brokers.py: ``Broker`` (one ``odradek serve``), ``BrokerFactory``, the broker
  binary (``$ODRADEK_BIN`` or ``${CARGO_TARGET_DIR:-target}/release/odradek``);
- cluster.py: ZooKeeper and clusters of brokers;
- durability.py: producers that keep writing through faults, and their checks.

Each broker gets its own data dir (``log.dirs``), a free port and a log file
whose tail is attached to the report of any failing test that used it.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cluster  # noqa: E402
import durability  # noqa: E402
import kclients  # noqa: E402
from brokers import (Broker, BrokerError, BrokerFactory, broker_binary, brokers_in,  # noqa: E402
                     kill_leftover_brokers)


def pytest_configure(config):
    # `timeout` (scripts/test.sh's backstop) sends SIGTERM: stop brokers first.
    def on_term(signum, frame):
        kill_leftover_brokers()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)


# ------------------------------------------------------------ fixtures ----

@pytest.fixture
def broker_factory(tmp_path):
    """Make extra brokers (e.g. with overrides); all stopped at teardown."""
    f = BrokerFactory(tmp_path)
    yield f
    f.close()


@pytest.fixture
def broker(broker_factory) -> Broker:
    """A fresh broker with an empty data dir, for this test only."""
    return broker_factory()


@pytest.fixture(scope="module")
def _module_broker(tmp_path_factory):
    f = BrokerFactory(tmp_path_factory.mktemp("modbroker"))
    b = f()
    yield b
    f.close()


@pytest.fixture
def shared_broker(_module_broker) -> Broker:
    """One broker per test module (tests use unique topics).  If a test kills
    it, that test errors at teardown and the broker is restarted for the rest."""
    _module_broker.assert_alive()
    yield _module_broker
    if not _module_broker.alive():
        tail = _module_broker.log_tail()
        rc = _module_broker.proc.returncode
        _module_broker.start()
        raise BrokerError(f"shared broker died during the test (exit code {rc}):\n{tail}")


@pytest.fixture
def topic_name():
    """A fresh, unique topic name."""
    return kclients.unique_topic()


@pytest.fixture
def admin():
    """confluent_kafka AdminClient factory: admin(bootstrap)."""
    return kclients.admin_client


# ------------------------------------------------- cluster (cluster.py) ----

@pytest.fixture(scope="module")
def zookeeper(tmp_path_factory):
    """One ZooKeeper per test module; clusters on it use their own chroots."""
    zk = cluster.ZooKeeper(tmp_path_factory.mktemp("zk")).start()
    yield zk
    zk.stop()


@pytest.fixture
def zk_factory(tmp_path):
    """Fresh ZooKeeper servers for this test only (for tests that stop it)."""
    made = []

    def make(**kw):
        z = cluster.ZooKeeper(tmp_path / f"zk{len(made)}", **kw)
        made.append(z)
        return z.start()

    yield make
    for z in made:
        z.stop()


@pytest.fixture
def cluster_factory(tmp_path, request):
    """cluster_factory(n=3, overrides=None, zk=None): brokers 1..n registered in
    ZooKeeper (default: the module's shared one); all SIGKILLed at teardown."""

    def shared_zk():
        zk = request.getfixturevalue("zookeeper")
        if not zk.alive():
            zk.start()
        return zk

    f = cluster.ClusterFactory(tmp_path, shared_zk)
    yield f
    durability.abandon_all()
    f.close()


# ---------------------------------------------------- failure reporting ----

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for b in brokers_in(getattr(item, "funcargs", {}).values()):
            state = "alive" if b.alive() else f"exited {b.proc.returncode if b.proc else None}"
            rep.sections.append((f"broker {b.bootstrap} ({state}) log tail", b.log_tail()))
        # Anything else that knows what to show (ZooKeeper, clusters: cluster.py).
        for v in getattr(item, "funcargs", {}).values():
            sections = getattr(v, "failure_sections", None)
            if callable(sections):
                try:
                    rep.sections.extend(sections())
                except Exception as e:  # noqa: BLE001
                    rep.sections.append((f"{type(v).__name__} report failed", repr(e)))


def pytest_report_header(config):
    b = broker_binary()
    return f"odradek binary: {b} ({'present' if b.exists() else 'MISSING'})"
