#!/usr/bin/env python3
"""How long moving a loaded partition takes on a loopback cluster, without and
with a replication throttle.

    .venv/bin/python scripts/bench-reassign.py [--mb 1024] [--rate-mb 50]

Starts a three-broker cluster with scripts/cluster.sh (in a temporary
directory, its own ports), creates a one-partition topic on brokers {1,2},
writes --mb MiB into it (acks=all), then times two moves, each until no move is
listed and every broker's metadata shows the target:

1. {1,2} -> {2,3} with no throttle (broker 3 copies the whole log);
2. {2,3} -> {3,1} throttled at --rate-mb MiB/s: the leader and follower rates
   set on every broker (dynamic per-broker configs), and the topic's
   leader/follower throttled-replica lists naming the replicas that send and
   the one that receives, as kafka-reassign-partitions --throttle does.

Prints both durations, the throttled one against what the rate implies, and
the ratio.  The cluster is torn down at the end (its directory kept with
--keep).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLUSTER = REPO / "scripts" / "cluster.sh"
TOPIC = "move-bench"


def sh(env, *args):
    return subprocess.run([str(CLUSTER), *args], env=env, check=True, capture_output=True,
                          text=True).stdout


def produce(bs: str, mib: int):
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 20,
                  "batch.size": 1_000_000, "compression.type": "none",
                  "message.max.bytes": 1_100_000, "queue.buffering.max.kbytes": 512_000})
    value = os.urandom(64 * 1024)
    n = mib * 16
    for i in range(n):
        while True:
            try:
                p.produce(TOPIC, value, partition=0)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(300)
    assert left == 0, f"{left} records not delivered"


def move(bs: str, target: list, via_brokers: list) -> float:
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=30000)
    sys.path.insert(0, str(REPO / "protocol-tests"))
    from cluster import metadata  # raw Metadata to one broker

    start = time.monotonic()
    result = admin.alter_partition_reassignments({TopicPartition(TOPIC, 0): target})
    assert list(result.values()) == [None], result
    while True:
        done = not admin.list_partition_reassignments()
        if done:
            views = [metadata("127.0.0.1", port, [TOPIC]).topics[TOPIC].partitions[0]
                     for port in via_brokers]
            done = all(v.replicas == target for v in views)
        if done:
            elapsed = time.monotonic() - start
            admin.close()
            return elapsed
        time.sleep(0.1)


def throttle(bs: str, rate: int, leaders: str, followers: str):
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bs)
    # Per broker, as kafka-reassign-partitions --throttle sets it.
    admin.alter_configs([
        ConfigResource(ConfigResourceType.BROKER, str(b), configs={
            "leader.replication.throttled.rate": str(rate),
            "follower.replication.throttled.rate": str(rate)})
        for b in (1, 2, 3)
    ])
    admin.alter_configs([
        ConfigResource(ConfigResourceType.TOPIC, TOPIC, configs={
            "leader.replication.throttled.replicas": leaders,
            "follower.replication.throttled.replicas": followers}),
    ])
    admin.close()


def create_topic(bs: str):
    from confluent_kafka.admin import AdminClient, NewTopic

    a = AdminClient({"bootstrap.servers": bs})
    a.create_topics([NewTopic(TOPIC, num_partitions=1, replica_assignment=[[1, 2]],
                              config={"max.message.bytes": "2000000"})])[TOPIC].result(30)
    time.sleep(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1024, help="MiB written before the moves")
    ap.add_argument("--rate-mb", type=float, default=50.0, help="throttle, MiB/s")
    ap.add_argument("--keep", action="store_true", help="keep the cluster directory")
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="odradek-reassign-"))
    env = dict(os.environ, ODRADEK_CLUSTER_DIR=str(workdir), ODRADEK_ZK_PORT="12281",
               ODRADEK_BASE_PORT="19192", ODRADEK_HTTP_BASE_PORT="19744")
    ports = [19193, 19194, 19195]
    bs = ",".join(f"127.0.0.1:{p}" for p in ports)
    try:
        sh(env, "up", "3")
        create_topic(bs)
        t0 = time.monotonic()
        produce(bs, args.mb)
        print(f"wrote {args.mb} MiB in {time.monotonic() - t0:.1f} s")

        plain = move(bs, [2, 3], ports)
        print(f"move {{1,2}} -> {{2,3}}, no throttle: {plain:.1f} s "
              f"({args.mb / plain:.0f} MiB/s)")

        rate = int(args.rate_mb * 1024 * 1024)
        throttle(bs, rate, leaders="0:2,0:3", followers="0:1")
        throttled = move(bs, [3, 1], ports)
        implied = args.mb / args.rate_mb
        print(f"move {{2,3}} -> {{3,1}}, throttled at {args.rate_mb:g} MiB/s: {throttled:.1f} s "
              f"(the rate implies {implied:.1f} s; {throttled / implied:.2f}x of that)")
        print(f"throttled / unthrottled: {throttled / plain:.1f}x")
    finally:
        subprocess.run([str(CLUSTER), "down"], env=env, capture_output=True)
        if not args.keep:
            subprocess.run(["rm", "-rf", str(workdir)])


if __name__ == "__main__":
    main()
