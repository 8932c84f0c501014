"""Hostile or broken input at the socket level.  After each case the broker
process must still be running and serve a normal client."""

import random
import socket
import struct
import time

import pytest

import kclients
from kclients import Rec, assert_same_records, consume, create_topic

IO_TIMEOUT = 10.0


# -------------------------------------------------------- wire helpers ----

def kstr(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def request(api_key, api_version, correlation_id, body=b"", client_id="odradek-tests",
            flexible_header=False):
    """Request header v1 (or v2 with an empty tagged-field section)."""
    hdr = struct.pack(">hhi", api_key, api_version, correlation_id) + kstr(client_id)
    if flexible_header:
        hdr += b"\x00"
    payload = hdr + body
    return struct.pack(">i", len(payload)) + payload


def connect(broker):
    s = socket.create_connection(("127.0.0.1", broker.port), timeout=IO_TIMEOUT)
    s.settimeout(IO_TIMEOUT)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def read_response(s):
    (size,) = struct.unpack(">i", recv_exact(s, 4))
    assert 4 <= size < 64 * 1024 * 1024, size
    data = recv_exact(s, size)
    (corr,) = struct.unpack(">i", data[:4])
    return corr, data[4:]


def closed_or_answered(s, timeout=IO_TIMEOUT):
    """Wait until the broker closes the connection ("closed") or sends
    something back ("answered").  Silence for ``timeout`` is a failure."""
    s.settimeout(timeout)
    try:
        data = s.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    except socket.timeout:
        pytest.fail(f"broker neither answered nor closed the connection within {timeout}s")
    return "closed" if data == b"" else "answered"


def expect_closed(s, timeout=IO_TIMEOUT):
    """The broker must close the connection (reading returns EOF/reset)."""
    deadline = time.monotonic() + timeout
    s.settimeout(timeout)
    while True:
        try:
            data = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return
        except socket.timeout:
            pytest.fail(f"connection still open after {timeout}s")
        if data == b"":
            return
        if time.monotonic() > deadline:
            pytest.fail("broker kept sending instead of closing")


def send_quietly(s, data):
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the broker may close while we are still sending: fine


def assert_healthy(broker):
    assert broker.proc.poll() is None, f"broker exited: {broker.log_tail()}"
    bs = broker.bootstrap
    topic = create_topic(bs)
    recs = [Rec(value=f"ok-{i}".encode(), key=b"k") for i in range(5)]
    assert [o for _, o in kclients.produce_confluent(bs, topic, recs)] == list(range(5))
    assert_same_records(consume("kafka-python", bs, topic, 5), recs)
    assert broker.proc.poll() is None


def api_versions(broker):
    with connect(broker) as s:
        s.sendall(request(18, 0, 42))
        corr, body = read_response(s)
    assert corr == 42
    (err, n) = struct.unpack(">hi", body[:6])
    assert err == 0
    out = {}
    for i in range(n):
        k, lo, hi = struct.unpack(">hhh", body[6 + 6 * i: 12 + 6 * i])
        out[k] = (lo, hi)
    return out


# --------------------------------------------------------- well-formed ----

def test_api_versions_v0(shared_broker):
    apis = api_versions(shared_broker)
    # The keys every client in this suite needs, at versions that carry
    # v2 record batches / the fields the clients rely on.
    need = {0: 3, 1: 4, 2: 1, 3: 1, 18: 0, 19: 0, 20: 0, 22: 0, 32: 0, 37: 0}
    for key, min_max in need.items():
        assert key in apis, f"api key {key} not advertised: {sorted(apis)}"
        lo, hi = apis[key]
        assert lo <= hi and hi >= min_max, f"api {key}: versions {lo}..{hi}"


def test_api_versions_unsupported_version_gets_error_35(shared_broker):
    """Kafka answers an ApiVersions request of a version it does not know with
    UNSUPPORTED_VERSION (35) in a v0 body, so clients can fall back."""
    with connect(shared_broker) as s:
        s.sendall(request(18, 999, 7, flexible_header=True))
        corr, body = read_response(s)
    assert corr == 7
    (err,) = struct.unpack(">h", body[:2])
    assert err == 35
    assert_healthy(shared_broker)


def test_pipelined_requests_answered_in_order(shared_broker):
    metadata_all = struct.pack(">i", -1)  # Metadata v1: null topics = all
    frames = (request(18, 0, 1) + request(3, 1, 2, metadata_all) + request(18, 0, 3) +
              request(3, 1, 4, struct.pack(">i", 0)))
    with connect(shared_broker) as s:
        s.sendall(frames)
        corrs = [read_response(s)[0] for _ in range(4)]
    assert corrs == [1, 2, 3, 4]


# --------------------------------------------------------------- hostile ----

def test_huge_length_prefix(shared_broker):
    with connect(shared_broker) as s:
        send_quietly(s, struct.pack(">i", 0x7FFFFFFF) + b"\x00\x12\x00\x00" + b"x" * 100)
        expect_closed(s)
    assert_healthy(shared_broker)


def test_negative_length_prefix(shared_broker):
    with connect(shared_broker) as s:
        send_quietly(s, struct.pack(">i", -1) + b"\x00" * 16)
        expect_closed(s)
    assert_healthy(shared_broker)


def test_length_over_socket_request_max_bytes(broker_factory):
    b = broker_factory({"socket.request.max.bytes": "1000"})
    with connect(b) as s:
        send_quietly(s, struct.pack(">i", 5000) + b"\x00" * 5000)
        expect_closed(s)
    assert_healthy(b)


def test_metadata_claiming_2g_topics(shared_broker):
    """A 19-byte Metadata request whose topic array claims 2^31-1 entries:
    the broker must not try to allocate them; it closes or answers with an
    error, and keeps running."""
    frame = request(3, 1, 9, struct.pack(">i", 0x7FFFFFFF), client_id="tests")
    assert len(frame) == 4 + 19
    with connect(shared_broker) as s:
        s.sendall(frame)
        closed_or_answered(s)
    assert_healthy(shared_broker)


def test_produce_claiming_2g_records(shared_broker):
    """A Produce v3 request with a record batch whose record count and
    lengths lie."""
    topic = create_topic(shared_broker.bootstrap)
    batch = (struct.pack(">qi", 0, 49 + 10) + struct.pack(">ib", 0, 2) + struct.pack(">I", 0) +
             struct.pack(">hiqqqhi", 0, 0, 0, 0, -1, -1, -1) + struct.pack(">i", 0x7FFFFFFF) +
             b"\x01" * 10)
    body = (kstr(None) + struct.pack(">hi", 1, 5000) + struct.pack(">i", 1) + kstr(topic) +
            struct.pack(">i", 1) + struct.pack(">i", 0) + struct.pack(">i", len(batch)) + batch)
    with connect(shared_broker) as s:
        s.sendall(request(0, 3, 11, body))
        closed_or_answered(s)
    assert_healthy(shared_broker)
    # nothing of it was appended
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": shared_broker.bootstrap, "group.id": "odradek-tests-no-group",
                  "enable.auto.commit": False})
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 0)
    finally:
        c.close()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_garbage_frames(shared_broker, seed):
    rnd = random.Random(seed)
    payload = bytes(rnd.getrandbits(8) for _ in range(200))
    with connect(shared_broker) as s:
        send_quietly(s, struct.pack(">i", len(payload)) + payload)
        closed_or_answered(s)
    assert_healthy(shared_broker)


def test_http_request_on_kafka_port(shared_broker):
    with connect(shared_broker) as s:
        send_quietly(s, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        expect_closed(s)
    assert_healthy(shared_broker)


def test_truncated_frame_then_close(shared_broker):
    full = request(3, 1, 5, struct.pack(">i", -1))
    for cut in (2, 4, 9, len(full) - 1):
        with connect(shared_broker) as s:
            s.sendall(full[:cut])
    s2 = connect(shared_broker)  # a half-open frame left pending on another connection
    s2.sendall(struct.pack(">i", 100) + b"\x00\x03")
    assert_healthy(shared_broker)
    s2.close()
    assert_healthy(shared_broker)


def test_unknown_api_key(shared_broker):
    with connect(shared_broker) as s:
        s.sendall(request(9999, 0, 3))
        expect_closed(s)
    assert_healthy(shared_broker)


def test_unsupported_version_of_known_api(shared_broker):
    """Metadata v999: Kafka closes the connection."""
    with connect(shared_broker) as s:
        s.sendall(request(3, 999, 3, struct.pack(">i", -1)))
        closed_or_answered(s)
    assert_healthy(shared_broker)


def test_many_idle_and_aborted_connections(shared_broker):
    socks = []
    for i in range(200):
        s = connect(shared_broker)
        if i % 2:
            s.sendall(struct.pack(">i", 50) + b"\x00\x12")
        socks.append(s)
    assert_healthy(shared_broker)
    for s in socks:
        # RST instead of FIN for half of them
        if socks.index(s) % 3 == 0:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    assert_healthy(shared_broker)
