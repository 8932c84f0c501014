"""Consumer-group members of the real clients, each in its own process
(group_member.py), observed through the JSON events they print.

A subprocess per member gives every client its own event loop / librdkafka
instance, runs them truly concurrently, and lets a test SIGKILL one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLIENTS = ("confluent", "kafka-python", "aiokafka")
WAIT = 30.0


class Member:
    def __init__(self, client, bootstrap, group, topics=None, pattern=None, conf=None,
                 assignor=None, commit_on_stop=False, name=None):
        self.client = client
        self.name = name or client
        spec = dict(client=client, bootstrap=bootstrap, group=group, topics=topics or [],
                    pattern=pattern, conf=conf or {}, assignor=assignor,
                    commit_on_stop=commit_on_stop)
        self.events: list = []
        self.cond = threading.Condition()
        self.stderr_lines: list = []
        self.proc = subprocess.Popen([sys.executable, str(HERE / "group_member.py"), json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            ev["at"] = time.monotonic()
            with self.cond:
                self.events.append(ev)
                self.cond.notify_all()
        with self.cond:
            self.events.append({"ev": "exit", "at": time.monotonic()})
            self.cond.notify_all()

    def _read_err(self):
        import tempfile

        fd, self.log_path = tempfile.mkstemp(prefix=f"member-{self.name}-", suffix=".log")
        with os.fdopen(fd, "w") as f:
            for line in self.proc.stderr:
                self.stderr_lines.append(line)
                f.write(line)
                f.flush()

    # -- observation ---------------------------------------------------
    def wait_for(self, pred, timeout=WAIT, what="condition"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if pred(self):
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: timed out waiting for {what}; "
                                         f"last events {self.summary()}")
                self.cond.wait(min(left, 0.5))

    def summary(self):
        evs = [e for e in self.events if e["ev"] != "rec"]
        noise = ("Updated metadata", "MetadataRequest", "MetadataResponse", "FetchRequest",
                 "FetchResponse", "ListOffsets")
        log = [line[:400] for line in self.stderr_lines if not any(n in line for n in noise)]
        return (f"{evs[-12:]} recs={len(self.records())} full log {getattr(self, 'log_path', '')} "
                f"stderr={''.join(log[-40:])}")

    @property
    def assignment(self) -> set:
        cur = set()
        for e in self.events:
            if e["ev"] == "assignment":
                cur = {tuple(p) for p in e["parts"]}
        return cur

    def records(self, topic=None):
        return [(e["t"], e["p"], e["o"], e["v"]) for e in list(self.events)
                if e["ev"] == "rec" and (topic is None or e["t"] == topic)]

    def errors(self):
        return [e["msg"] for e in self.events if e["ev"] == "error"]

    def callbacks(self):
        return [(e["ev"], {tuple(p) for p in e["parts"]}) for e in self.events
                if e["ev"] in ("assigned", "revoked")]

    # -- control ---------------------------------------------------------
    def send(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def commit(self, timeout=WAIT):
        n = sum(1 for e in self.events if e["ev"] in ("committed", "error"))
        self.send("commit")
        self.wait_for(lambda m: sum(1 for e in m.events if e["ev"] in ("committed", "error")) > n,
                      timeout, "commit")
        errs = self.errors()
        assert not errs, f"{self.name}: commit errors {errs}"

    def stop(self, timeout=WAIT):
        if self.proc.poll() is None:
            try:
                self.send("stop")
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(f"{self.name}: did not close within {timeout}s: {self.summary()}")

    def kill9(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def ensure_dead(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def wait_all(members, pred, timeout=WAIT, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        if pred(members):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n" +
                                 "\n".join(f"  {m.name}: assignment={sorted(m.assignment)} "
                                           f"{m.summary()}" for m in members))
        time.sleep(0.2)


def balanced(topic, partitions, per_member=None):
    """Predicate: assignments disjoint, covering topic's partitions, optionally sizes."""
    want = {(topic, p) for p in range(partitions)}

    def pred(members):
        asg = [{tp for tp in m.assignment if tp[0] == topic} for m in members]
        union = set().union(*asg)
        if union != want or sum(len(a) for a in asg) != len(want):
            return False
        return per_member is None or all(len(a) == per_member for a in asg)

    return pred


class Members:
    """Context manager: make sure every member process is gone at the end."""

    def __init__(self):
        self.all: list = []

    def add(self, *a, **kw) -> Member:
        m = Member(*a, **kw)
        self.all.append(m)
        return m

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        for m in self.all:
            try:
                m.ensure_dead()
            except Exception:  # noqa: BLE001
                pass
        if exc_type is None:  # keep the client logs of a failing test only
            time.sleep(0.1)
            for m in self.all:
                try:
                    os.unlink(m.log_path)
                except (AttributeError, OSError):
                    pass
