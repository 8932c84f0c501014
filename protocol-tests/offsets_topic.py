"""Decoder for the records of __consumer_offsets, written from Kafka's
group-coordinator schemas (OffsetCommitKey/Value, GroupMetadataKey/Value).

Keys:   int16 version; 0/1 = offset commit: group, topic (int16-length strings), int32 partition;
        2 = group metadata: group.
OffsetCommitValue v0-v4: int64 offset, [v3+ int32 leaderEpoch], metadata string,
        int64 commitTimestamp, [v1 only int64 expireTimestamp]; v4+ flexible (compact strings,
        tagged fields).
GroupMetadataValue v0-v4: protocolType string, generation int32, protocol nullable string,
        leader nullable string, [v2+ currentStateTimestamp int64], members array of
        {memberId, [v3+ groupInstanceId nullable], clientId, clientHost, [v1+ rebalanceTimeout],
        sessionTimeout, subscription bytes, assignment bytes}; v4+ flexible.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Optional


class DecodeError(ValueError):
    pass


class Reader:
    def __init__(self, data: bytes, flexible: bool = False):
        self.b = bytes(data)
        self.i = 0
        self.flexible = flexible

    def _take(self, n):
        if n < 0 or self.i + n > len(self.b):
            raise DecodeError(f"need {n} bytes at {self.i}, have {len(self.b) - self.i}")
        out = self.b[self.i:self.i + n]
        self.i += n
        return out

    def int16(self):
        return struct.unpack(">h", self._take(2))[0]

    def int32(self):
        return struct.unpack(">i", self._take(4))[0]

    def int64(self):
        return struct.unpack(">q", self._take(8))[0]

    def uvarint(self):
        shift = result = 0
        while True:
            byte = self._take(1)[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 35:
                raise DecodeError("varint too long")

    def nullable_string(self) -> Optional[str]:
        if self.flexible:
            n = self.uvarint() - 1
        else:
            n = self.int16()
        if n < 0:
            return None
        return self._take(n).decode("utf-8")

    def string(self) -> str:
        s = self.nullable_string()
        if s is None:
            raise DecodeError("null where a string is required")
        return s

    def bytes_(self) -> bytes:
        n = self.uvarint() - 1 if self.flexible else self.int32()
        if n < 0:
            raise DecodeError("null bytes")
        return self._take(n)

    def array_len(self) -> int:
        n = self.uvarint() - 1 if self.flexible else self.int32()
        if n < 0:
            raise DecodeError("null array")
        return n

    def tagged_fields(self):
        if not self.flexible:
            return {}
        out = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            out[tag] = self._take(self.uvarint())
        return out

    def done(self):
        if self.i != len(self.b):
            raise DecodeError(f"{len(self.b) - self.i} trailing bytes")


@dataclass
class OffsetKey:
    version: int
    group: str
    topic: str
    partition: int


@dataclass
class GroupKey:
    version: int
    group: str


@dataclass
class OffsetValue:
    version: int
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int
    expire_timestamp: Optional[int]


@dataclass
class MemberMetadata:
    member_id: str
    group_instance_id: Optional[str]
    client_id: str
    client_host: str
    rebalance_timeout: int
    session_timeout: int
    subscription: bytes
    assignment: bytes


@dataclass
class GroupValue:
    version: int
    protocol_type: str
    generation: int
    protocol: Optional[str]
    leader: Optional[str]
    current_state_timestamp: Optional[int]
    members: list = field(default_factory=list)


def decode_key(data: bytes):
    r = Reader(data)
    version = r.int16()
    if version in (0, 1):
        k = OffsetKey(version, r.string(), r.string(), r.int32())
    elif version == 2:
        k = GroupKey(version, r.string())
    else:
        raise DecodeError(f"unknown key version {version}")
    r.done()
    return k


def decode_offset_value(data: bytes) -> OffsetValue:
    version = struct.unpack(">h", data[:2])[0]
    if not 0 <= version <= 4:
        raise DecodeError(f"unknown OffsetCommitValue version {version}")
    r = Reader(data[2:], flexible=version >= 4)
    offset = r.int64()
    epoch = r.int32() if version >= 3 else -1
    metadata = r.string()
    ts = r.int64()
    expire = r.int64() if version == 1 else None
    r.tagged_fields()
    r.done()
    return OffsetValue(version, offset, epoch, metadata, ts, expire)


def decode_group_value(data: bytes) -> GroupValue:
    version = struct.unpack(">h", data[:2])[0]
    if not 0 <= version <= 4:
        raise DecodeError(f"unknown GroupMetadataValue version {version}")
    r = Reader(data[2:], flexible=version >= 4)
    protocol_type = r.string()
    generation = r.int32()
    protocol = r.nullable_string()
    leader = r.nullable_string()
    cst = r.int64() if version >= 2 else None
    members = []
    for _ in range(r.array_len()):
        member_id = r.string()
        instance = r.nullable_string() if version >= 3 else None
        client_id = r.string()
        client_host = r.string()
        rebalance = r.int32() if version >= 1 else -1
        session = r.int32()
        sub = r.bytes_()
        asg = r.bytes_()
        r.tagged_fields()
        members.append(MemberMetadata(member_id, instance, client_id, client_host, rebalance,
                                      session, sub, asg))
    r.tagged_fields()
    r.done()
    return GroupValue(version, protocol_type, generation, protocol, leader, cst, members)


def decode_record(key: bytes, value: Optional[bytes]):
    """(key, value) with value None for a tombstone."""
    k = decode_key(key)
    if value is None:
        return k, None
    if isinstance(k, OffsetKey):
        return k, decode_offset_value(value)
    return k, decode_group_value(value)


def decode_assignment(data: bytes) -> dict:
    """ConsumerProtocolAssignment: int16 version, [topic string, [int32 partition]], userdata."""
    if not data:
        return {}
    r = Reader(data)
    r.int16()
    out = {}
    for _ in range(r.int32()):
        t = r.string()
        out[t] = sorted(r.int32() for _ in range(r.int32()))
    return out


def decode_subscription_topics(data: bytes) -> list:
    r = Reader(data)
    r.int16()
    return [r.string() for _ in range(r.int32())]


def read_all(bootstrap: str, partitions: int = 50, timeout: float = 20.0) -> list:
    """Every record of __consumer_offsets, read with kafka-python (all partitions assigned,
    from the beginning, up to the end offsets taken at the start).  Returns
    [(partition, offset, key, value_or_None, raw_key, raw_value)]."""
    import time

    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", exclude_internal_topics=False,
                      fetch_max_wait_ms=100)
    try:
        tps = [TopicPartition("__consumer_offsets", p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        ends = c.end_offsets(tps)
        out = []
        pos = {tp: 0 for tp in tps}
        deadline = time.monotonic() + timeout
        while any(pos[tp] < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read __consumer_offsets to its end: {pos} {ends}")
            for tp, msgs in c.poll(timeout_ms=300).items():
                for m in msgs:
                    pos[tp] = m.offset + 1
                    if m.offset >= ends[tp]:
                        continue
                    k, v = decode_record(m.key, m.value)
                    out.append((m.partition, m.offset, k, v, m.key, m.value))
        return out
    finally:
        c.close()


def java_hash(s: str) -> int:
    h = 0
    for ch in s.encode("utf-16-be").decode("utf-16-be"):
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(group: str, partitions: int = 50) -> int:
    """Kafka: Utils.abs(groupId.hashCode) % groupMetadataTopicPartitionCount."""
    h = java_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % partitions
