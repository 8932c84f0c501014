"""Fixtures for running the Odradek broker under real Kafka clients.

The broker binary is ``$ODRADEK_BIN`` or ``${CARGO_TARGET_DIR:-target}/release/odradek``
(relative to the repository root).  Each broker gets its own data dir
(``log.dirs``), a free port and a log file whose tail is attached to the
report of any failing test that used it.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import kclients  # noqa: E402

READY_TIMEOUT = 20.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In the child before exec: SIGKILL the broker if pytest dies, so no
    broker outlives a killed test run (brokers run in their own session)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # noqa: BLE001
        pass
STOP_TIMEOUT = 30.0


def broker_binary() -> Path:
    env = os.environ.get("ODRADEK_BIN")
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or "target")
    if not target.is_absolute():
        target = REPO / target
    return target / "release" / "odradek"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerError(AssertionError):
    pass


class Broker:
    """One ``odradek serve`` process.  restart() keeps data dir and port."""

    def __init__(self, root: Path, overrides: dict | None = None, port: int | None = None,
                 broker_id: int = 1, binary: Path | None = None,
                 config_file: Path | None = None, data_dir: Path | None = None,
                 host: str = "127.0.0.1", prefix: list | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir = Path(data_dir) if data_dir else self.root / "data"
        self.config_file = config_file
        self.log_file = self.root / "broker.log"
        self.port = port or free_port()
        # The address it listens on and advertises; `prefix` runs it inside
        # something (e.g. ["ip", "netns", "exec", "ns1"]: that must exec).
        self.host = host
        self.prefix = list(prefix or [])
        self.broker_id = broker_id
        self.overrides = dict(overrides or {})
        self.binary = Path(binary or broker_binary())
        self.proc: subprocess.Popen | None = None
        self.suspended = False
        self.starts = 0
        _ALL_BROKERS.append(self)

    # -- info ---------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def partition_dir(self, topic: str, partition: int = 0) -> Path:
        return self.data_dir / f"{topic}-{partition}"

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError as e:
            return f"<no broker log: {e}>"
        all_lines = text.splitlines()
        tail = all_lines[-lines:]
        # A panic's message is worth more than the end of its backtrace.
        panics = []
        for i, line in enumerate(all_lines[:-lines]):
            if any(m in line for m in ("panicked at", "memory allocation", "fatal runtime")):
                panics += all_lines[i:i + 3] + ["..."]
        return "\n".join(panics[-30:] + tail)

    def command(self) -> list:
        settings = {
            "listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "log.dirs": str(self.data_dir),
            "broker.id": str(self.broker_id),
        }
        settings.update({k: str(v) for k, v in self.overrides.items()})
        cmd = self.prefix + [str(self.binary), "serve"]
        if self.config_file:
            cmd += ["--config", str(self.config_file)]
        for k, v in settings.items():
            cmd += ["--override", f"{k}={v}"]
        return cmd

    # -- lifecycle ----------------------------------------------------
    def start(self, timeout: float = READY_TIMEOUT, wait: bool = True) -> "Broker":
        if self.alive():
            raise BrokerError("broker already running")
        if not (self.binary.is_file() and os.access(self.binary, os.X_OK)):
            raise BrokerError(f"broker binary {self.binary} does not exist or is not executable "
                              "(build it with cargo build --release, or set ODRADEK_BIN)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.suspended = False
        with open(self.log_file, "ab") as log:
            log.write(f"\n==== start #{self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            env = dict(os.environ)
            env.setdefault("RUST_BACKTRACE", "1")
            env.setdefault("NO_COLOR", "1")
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.root, env=env,
                                         start_new_session=True,
                                         preexec_fn=_die_with_parent)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise BrokerError(f"broker exited with {rc} during start-up:\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.kill9()
        raise BrokerError(f"broker did not accept connections on {self.port} within {timeout}s:\n"
                          f"{self.log_tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM and wait: a clean shutdown.  Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.send_signal(signal.SIGCONT)  # in case it was suspended
            self.suspended = False
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
                raise BrokerError(f"broker ignored SIGTERM for {timeout}s:\n{self.log_tail()}")
        return self.proc.returncode

    def kill9(self) -> int | None:
        """SIGKILL: a crash."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        return self.proc.returncode

    def suspend(self):
        """SIGSTOP: a process that hangs (GC pause, swapped out, VM frozen)."""
        self.assert_alive()
        self.proc.send_signal(signal.SIGSTOP)
        self.suspended = True

    def resume(self):
        """SIGCONT after suspend()."""
        self.assert_alive()
        self.proc.send_signal(signal.SIGCONT)
        self.suspended = False

    def restart(self, kill: bool = False, timeout: float = READY_TIMEOUT):
        self.kill9() if kill else self.stop()
        return self.start(timeout)

    def assert_alive(self):
        if not self.alive():
            rc = self.proc.returncode if self.proc else None
            raise BrokerError(f"broker process is gone (exit code {rc}):\n{self.log_tail()}")

    def __repr__(self):
        return f"Broker({self.bootstrap}, pid={self.pid}, dir={self.root})"


_ALL_BROKERS: list = []


@atexit.register
def _kill_leftover_brokers():
    # Brokers run in their own session; never leave one behind.
    for b in _ALL_BROKERS:
        try:
            b.kill9()
        except Exception:  # noqa: BLE001
            pass


def pytest_configure(config):
    # `timeout` (scripts/test.sh's backstop) sends SIGTERM: stop brokers first.
    def on_term(signum, frame):
        _kill_leftover_brokers()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)


class BrokerFactory:
    def __init__(self, base: Path):
        self.base = Path(base)
        self.brokers: list[Broker] = []

    def __call__(self, overrides: dict | None = None, start: bool = True, **kw) -> Broker:
        b = Broker(self.base / f"broker{len(self.brokers)}", overrides=overrides, **kw)
        self.brokers.append(b)
        if start:
            b.start()
        return b

    def close(self):
        for b in self.brokers:
            try:
                b.stop(timeout=15)
            except Exception:  # noqa: BLE001
                b.kill9()


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
    import cluster

    zk = cluster.ZooKeeper(tmp_path_factory.mktemp("zk")).start()
    yield zk
    zk.stop()


@pytest.fixture
def zk_factory(tmp_path):
    """Fresh ZooKeeper servers for this test only (for tests that stop it)."""
    import cluster

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
    import cluster

    def shared_zk():
        zk = request.getfixturevalue("zookeeper")
        if not zk.alive():
            zk.start()
        return zk

    f = cluster.ClusterFactory(tmp_path, shared_zk)
    yield f
    import durability

    durability.abandon_all()
    f.close()


# ---------------------------------------------------- failure reporting ----

def _brokers_of(item):
    seen = []
    for v in getattr(item, "funcargs", {}).values():
        if isinstance(v, Broker):
            seen.append(v)
        elif isinstance(v, BrokerFactory):
            seen.extend(v.brokers)
    out, ids = [], set()
    for b in seen:
        if id(b) not in ids:
            ids.add(id(b))
            out.append(b)
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for b in _brokers_of(item):
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
