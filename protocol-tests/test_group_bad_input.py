"""Group protocol misuse with raw requests (a tiny non-flexible encoder):
unknown groups / members / generations, bad session timeouts, inconsistent
protocols, 2 MB member metadata, and one group's rebalance never blocking
another group."""

from __future__ import annotations

import socket
import struct
import threading
import time
import uuid

import pytest

NONE = 0
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
MEMBER_ID_REQUIRED = 79


def s16(v):
    return struct.pack(">h", v)


def s32(v):
    return struct.pack(">i", v)


def s64(v):
    return struct.pack(">q", v)


def string(s):
    if s is None:
        return s16(-1)
    b = s.encode()
    return s16(len(b)) + b


def bytes_(b):
    return s32(len(b)) + b


def array(items):
    return s32(len(items)) + b"".join(items)


class Resp:
    def __init__(self, data):
        self.b, self.i = data, 0

    def take(self, n):
        out = self.b[self.i:self.i + n]
        assert len(out) == n, "short response"
        self.i += n
        return out

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def str(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes(self):
        n = self.i32()
        return None if n < 0 else self.take(n)


class Conn:
    def __init__(self, bootstrap, timeout=30):
        host, port = bootstrap.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=timeout)
        self.corr = 0

    def call(self, key, version, body) -> Resp:
        self.corr += 1
        msg = s16(key) + s16(version) + s32(self.corr) + string("raw-test") + body
        self.s.sendall(s32(len(msg)) + msg)
        n = struct.unpack(">i", self._recv(4))[0]
        data = self._recv(n)
        assert struct.unpack(">i", data[:4])[0] == self.corr
        return Resp(data[4:])

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            buf += chunk
        return buf

    def close(self):
        self.s.close()

    # -- group requests -----------------------------------------------------
    def join(self, group, member_id="", session=6000, rebalance=10000, ptype="consumer",
             protocols=None, instance=None):
        protocols = protocols if protocols is not None else [("range", b"\x00\x00\x00\x00\x00\x00")]
        body = (string(group) + s32(session) + s32(rebalance) + string(member_id) +
                string(instance) + string(ptype) +
                array([string(n) + bytes_(m) for n, m in protocols]))
        r = self.call(11, 5, body)
        r.i32()
        out = dict(error=r.i16(), generation=r.i32(), protocol=r.str(), leader=r.str(),
                   member_id=r.str())
        out["members"] = [(r.str(), r.str(), r.bytes()) for _ in range(r.i32())]
        return out

    def join_full(self, group, **kw):
        """MEMBER_ID_REQUIRED, then the real join."""
        first = self.join(group, **kw)
        if first["error"] != MEMBER_ID_REQUIRED:
            return first
        kw["member_id"] = first["member_id"]
        return self.join(group, **kw)

    def sync(self, group, generation, member_id, assignments=(), instance=None):
        body = (string(group) + s32(generation) + string(member_id) + string(instance) +
                array([string(m) + bytes_(a) for m, a in assignments]))
        r = self.call(14, 3, body)
        r.i32()
        return dict(error=r.i16(), assignment=r.bytes())

    def heartbeat(self, group, generation, member_id, instance=None):
        r = self.call(12, 3, string(group) + s32(generation) + string(member_id) + string(instance))
        r.i32()
        return r.i16()

    def leave(self, group, member_id):
        r = self.call(13, 3, string(group) + array([string(member_id) + string(None)]))
        r.i32()
        top = r.i16()
        members = [(r.str(), r.str(), r.i16()) for _ in range(r.i32())]
        return top, members

    def commit(self, group, generation, member_id, topic, partition=0, offset=1):
        body = (string(group) + s32(generation) + string(member_id) + string(None) +
                array([string(topic) + array([s32(partition) + s64(offset) + s32(-1) +
                                              string("")])]))
        r = self.call(8, 7, body)
        r.i32()
        errs = []
        for _ in range(r.i32()):
            r.str()
            for _ in range(r.i32()):
                r.i32()
                errs.append(r.i16())
        return errs


def gid(prefix="raw"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def conn(shared_broker):
    c = Conn(shared_broker.bootstrap)
    # Make sure __consumer_offsets exists before timing anything.
    c.heartbeat(gid(), 1, "warm-up")
    yield c
    c.close()


def stable_member(conn, group, **kw):
    j = conn.join_full(group, **kw)
    assert j["error"] == NONE, j
    s = conn.sync(group, j["generation"], j["member_id"], [(j["member_id"], b"")])
    assert s["error"] == NONE, s
    return j


def test_unknown_group_requests(conn, shared_broker):
    import kclients

    topic = kclients.create_topic(shared_broker.bootstrap, partitions=1)
    g = gid()
    assert conn.heartbeat(g, 1, "nobody") == UNKNOWN_MEMBER_ID
    assert conn.sync(g, 1, "nobody")["error"] == UNKNOWN_MEMBER_ID
    assert conn.commit(g, 1, "nobody", topic) == [ILLEGAL_GENERATION]
    assert conn.join(g, member_id="nobody")["error"] == UNKNOWN_MEMBER_ID
    top, members = conn.leave(g, "nobody")
    assert top == NONE and members[0][2] == UNKNOWN_MEMBER_ID, (top, members)
    shared_broker.assert_alive()


def test_unknown_member_and_bad_generation(conn, shared_broker):
    import kclients

    topic = kclients.create_topic(shared_broker.bootstrap, partitions=1)
    g = gid()
    j = stable_member(conn, g)
    me, gen = j["member_id"], j["generation"]
    assert gen >= 1 and j["leader"] == me
    assert conn.heartbeat(g, gen, me) == NONE
    assert conn.heartbeat(g, gen, "stranger") == UNKNOWN_MEMBER_ID
    assert conn.heartbeat(g, gen + 1, me) == ILLEGAL_GENERATION
    assert conn.heartbeat(g, gen - 1, me) == ILLEGAL_GENERATION
    assert conn.sync(g, gen + 5, me)["error"] == ILLEGAL_GENERATION
    assert conn.sync(g, gen, "stranger")["error"] == UNKNOWN_MEMBER_ID
    assert conn.commit(g, gen, "stranger", topic) == [UNKNOWN_MEMBER_ID]
    assert conn.commit(g, gen + 1, me, topic) == [ILLEGAL_GENERATION]
    assert conn.commit(g, -1, "", topic) == [UNKNOWN_MEMBER_ID]  # not a simple group
    assert conn.commit(g, gen, me, topic, offset=1) == [NONE]
    assert conn.join(g, member_id="stranger")["error"] == UNKNOWN_MEMBER_ID
    # Other protocol type / no common protocol.
    assert conn.join(g, ptype="connect")["error"] == INCONSISTENT_GROUP_PROTOCOL
    assert conn.join(g, protocols=[("nope", b"")])["error"] == INCONSISTENT_GROUP_PROTOCOL
    assert conn.join(g, session=10)["error"] == INVALID_SESSION_TIMEOUT
    assert conn.join(g, session=10 ** 9)["error"] == INVALID_SESSION_TIMEOUT
    top, members = conn.leave(g, "stranger")
    assert members[0][2] == UNKNOWN_MEMBER_ID
    top, members = conn.leave(g, me)
    assert top == NONE and members[0][2] == NONE
    assert conn.heartbeat(g, gen, me) == UNKNOWN_MEMBER_ID
    shared_broker.assert_alive()


def test_two_megabyte_member_metadata(conn, shared_broker):
    g = gid("fat")
    meta = b"\x00\x00" + b"\x00\x00\x00\x00" + b"\x00" * 4 + b"m" * (2 * 1024 * 1024)
    j = conn.join_full(g, protocols=[("range", meta)])
    assert j["error"] == NONE, j["error"]
    assert len(j["members"]) == 1 and j["members"][0][2] == meta
    conn.sync(g, j["generation"], j["member_id"], [(j["member_id"], b"")])
    shared_broker.assert_alive()
    # The broker still serves other groups promptly.
    c2 = Conn(shared_broker.bootstrap)
    try:
        t0 = time.monotonic()
        stable_member(c2, gid())
        assert time.monotonic() - t0 < 5
    finally:
        c2.close()
    conn.leave(g, j["member_id"])
    shared_broker.assert_alive()


def test_rebalancing_group_does_not_block_other_groups(conn, shared_broker):
    b = shared_broker.bootstrap
    stuck = gid("stuck")
    # a1: a stable member that will never rejoin (no heartbeats either).
    a1 = stable_member(conn, stuck, session=6000, rebalance=20000)
    result = {}

    def second_member():
        c = Conn(b, timeout=40)
        try:
            t0 = time.monotonic()
            result["join"] = c.join_full(stuck, session=6000, rebalance=20000)
            result["took"] = time.monotonic() - t0
        except Exception as e:  # noqa: BLE001
            result["error"] = e
        finally:
            c.close()

    th = threading.Thread(target=second_member, daemon=True)
    th.start()
    time.sleep(0.5)
    assert "join" not in result, "the join should wait for a1 to rejoin"
    # Meanwhile other groups complete whole join/sync rounds promptly.
    other = Conn(b)
    try:
        for _ in range(3):
            t0 = time.monotonic()
            j = stable_member(other, gid("free"))
            assert time.monotonic() - t0 < 2.0, "another group's rebalance blocked this group"
    finally:
        other.close()
    # The stuck rebalance ends when a1's session expires: a2 alone in a new generation.
    th.join(35)
    assert "join" in result, f"second member never got a JoinGroup answer: {result}"
    j2 = result["join"]
    assert j2["error"] == NONE, j2
    assert j2["generation"] > a1["generation"]
    assert [m[0] for m in j2["members"]] == [j2["member_id"]]
    assert result["took"] < 20, result


def test_fat_group_sync_is_durable_or_refused(broker):
    """A SyncGroup that succeeds has stored the group (Kafka writes the
    GroupMetadata record before answering; when the record cannot be stored,
    e.g. larger than __consumer_offsets' max message size, Kafka fails the
    SyncGroup).  Either way committed offsets survive a restart."""
    import kclients

    b = broker.bootstrap
    topic = kclients.create_topic(b, partitions=1)
    c = Conn(b)
    g = gid("fat")
    meta = b"\x00\x00" + b"\x00\x00\x00\x00" + b"\x00" * 4 + b"m" * (2 * 1024 * 1024)
    j = c.join_full(g, protocols=[("range", meta)], session=30000)
    assert j["error"] == NONE
    s = c.sync(g, j["generation"], j["member_id"], [(j["member_id"], b"asg")])
    commit = c.commit(g, j["generation"], j["member_id"], topic, offset=5)
    c.close()
    broker.restart()
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    a = AdminClient({"bootstrap.servers": b})
    if commit == [NONE]:
        res = a.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(g, [TopicPartition(topic, 0)])])[g].result(timeout=15)
        assert res.topic_partitions[0].offset == 5
    if s["error"] == NONE:
        d = a.describe_consumer_groups([g])[g].result(timeout=15)
        assert [m.member_id for m in d.members] == [j["member_id"]], \
            f"SyncGroup succeeded but the group was not stored: after a restart it is " \
            f"{d.state} with members {[m.member_id for m in d.members]}"
