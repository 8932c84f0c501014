"""Running one ``odradek serve`` process: ``Broker``, ``BrokerFactory`` and helpers.

The broker binary is ``$ODRADEK_BIN`` or ``${CARGO_TARGET_DIR:-target}/release/odradek``
(relative to the repository root).  Each broker gets its own data dir
(``log.dirs``), a free port and a log file (``log_tail()``, attached by
conftest.py to the report of any failing test that used it).

Every broker started here is SIGKILLed when the test process exits
(``kill_leftover_brokers``, registered with atexit) or dies (``die_with_parent``).

Import order of the helper modules (test_layout.py checks it):
brokers <- cluster <- durability <- conftest; nothing imports conftest.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0
_PR_SET_PDEATHSIG = 1


def die_with_parent():
    """In the child before exec: SIGKILL the broker if pytest dies, so no
    broker outlives a killed test run (brokers run in their own session)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # noqa: BLE001
        pass


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
            # No HTTP listener (its default port would collide between brokers) unless a
            # test gives this broker its own with the override http.listener=host:port.
            "http.listener": "",
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
                                         preexec_fn=die_with_parent)
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
def kill_leftover_brokers():
    """SIGKILL every broker this process made.  Brokers run in their own
    session; never leave one behind."""
    for b in _ALL_BROKERS:
        try:
            b.kill9()
        except Exception:  # noqa: BLE001
            pass


class BrokerFactory:
    """Brokers in subdirectories of ``base``, made on demand; ``close()`` stops them all."""

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


def brokers_in(values) -> list:
    """The brokers among ``values`` (a test's fixture values): each ``Broker``
    and every broker of each ``BrokerFactory``, once each, in order."""
    seen = []
    for v in values:
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
