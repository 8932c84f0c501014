"""One consumer-group member in its own process, driven by groupclients.Member.

Usage: python group_member.py '<json spec>'

spec: {"client": "confluent"|"kafka-python"|"aiokafka", "bootstrap": ..., "group": ...,
       "topics": [...] or "pattern": "^re.*", "conf": {client config}, "commit_on_stop": bool,
       "assignor": "range"|"roundrobin"|"sticky"|"cooperative-sticky"|None}

stdout: one JSON event per line:
  {"ev": "assignment", "parts": [[t, p], ...]}     current assignment, whenever it changes
  {"ev": "assigned"/"revoked", "parts": [...]}       rebalance callbacks (incremental with
                                                     cooperative protocols)
  {"ev": "rec", "t": t, "p": p, "o": offset, "v": value}
  {"ev": "committed"} / {"ev": "error", "msg": ...} / {"ev": "closed"}
stdin commands (one per line): "commit" (synchronous commit of the consumed positions),
  "stop" (commit if commit_on_stop, close, exit).
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time

OUT_LOCK = threading.Lock()


def emit(**ev):
    with OUT_LOCK:
        sys.stdout.write(json.dumps(ev) + "\n")
        sys.stdout.flush()


def stdin_commands() -> "queue.Queue[str]":
    q: "queue.Queue[str]" = queue.Queue()

    def reader():
        for line in sys.stdin:
            q.put(line.strip())
        q.put("stop")  # parent went away

    threading.Thread(target=reader, daemon=True).start()
    return q


def parts_of(tps):
    return sorted([tp.topic, tp.partition] for tp in tps)


def run_confluent(spec, cmds):
    from confluent_kafka import Consumer, KafkaError

    conf = {
        "bootstrap.servers": spec["bootstrap"],
        "group.id": spec["group"],
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "fetch.wait.max.ms": 100,
        "topic.metadata.refresh.interval.ms": 1000,
    }
    if spec.get("assignor"):
        conf["partition.assignment.strategy"] = spec["assignor"]
    conf.update(spec.get("conf") or {})
    c = Consumer(conf)

    def on_assign(cons, parts):
        emit(ev="assigned", parts=parts_of(parts))

    def on_revoke(cons, parts):
        emit(ev="revoked", parts=parts_of(parts))

    subs = [spec["pattern"]] if spec.get("pattern") else spec["topics"]
    c.subscribe(subs, on_assign=on_assign, on_revoke=on_revoke)
    last = None
    try:
        while True:
            try:
                cmd = cmds.get_nowait()
            except queue.Empty:
                cmd = None
            if cmd == "commit":
                try:
                    c.commit(asynchronous=False)
                    emit(ev="committed")
                except Exception as e:  # noqa: BLE001
                    emit(ev="error", msg=f"commit: {e}")
            elif cmd == "stop":
                if spec.get("commit_on_stop"):
                    try:
                        c.commit(asynchronous=False)
                        emit(ev="committed")
                    except Exception as e:  # noqa: BLE001
                        emit(ev="error", msg=f"commit: {e}")
                break
            for m in c.consume(num_messages=100, timeout=0.2):
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        emit(ev="error", msg=str(m.error()))
                    continue
                emit(ev="rec", t=m.topic(), p=m.partition(), o=m.offset(),
                     v=(m.value() or b"").decode(errors="replace"))
            now = parts_of(c.assignment())
            if now != last:
                last = now
                emit(ev="assignment", parts=now)
    finally:
        c.close()
        emit(ev="closed")


def kp_assignors(name):
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

    return {None: None, "range": (RangePartitionAssignor,),
            "roundrobin": (RoundRobinPartitionAssignor,),
            "sticky": (StickyPartitionAssignor,)}[name]


def run_kafka_python(spec, cmds):
    from kafka import KafkaConsumer
    from kafka.consumer.subscription_state import ConsumerRebalanceListener

    conf = dict(bootstrap_servers=spec["bootstrap"], group_id=spec["group"],
                auto_offset_reset="earliest", enable_auto_commit=False,
                session_timeout_ms=6000, heartbeat_interval_ms=500, fetch_max_wait_ms=100,
                metadata_max_age_ms=1000)
    a = kp_assignors(spec.get("assignor"))
    if a:
        conf["partition_assignment_strategy"] = a
    conf.update(spec.get("conf") or {})
    c = KafkaConsumer(**conf)

    class L(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            emit(ev="revoked", parts=parts_of(revoked))

        def on_partitions_assigned(self, assigned):
            emit(ev="assigned", parts=parts_of(assigned))

    if spec.get("pattern"):
        c.subscribe(pattern=spec["pattern"], listener=L())
    else:
        c.subscribe(spec["topics"], listener=L())
    last = None
    try:
        while True:
            try:
                cmd = cmds.get_nowait()
            except queue.Empty:
                cmd = None
            if cmd == "commit" or (cmd == "stop" and spec.get("commit_on_stop")):
                try:
                    c.commit()
                    emit(ev="committed")
                except Exception as e:  # noqa: BLE001
                    emit(ev="error", msg=f"commit: {e!r}")
            if cmd == "stop":
                break
            # 1 s, not 200 ms: kafka-python 3.0.12 can abandon a rebalance when
            # poll()'s timeout expires while it completes a join as leader (it
            # has already cleared rejoin_needed, never assigns, stops
            # heartbeating); a longer poll makes that client race rare.
            for tp, msgs in c.poll(timeout_ms=1000).items():
                for m in msgs:
                    emit(ev="rec", t=m.topic, p=m.partition, o=m.offset,
                         v=(m.value or b"").decode(errors="replace"))
            now = parts_of(c.assignment())
            if now != last:
                last = now
                emit(ev="assignment", parts=now)
    finally:
        c.close()
        emit(ev="closed")


def run_aiokafka(spec, cmds):
    import asyncio

    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

    async def main():
        conf = dict(bootstrap_servers=spec["bootstrap"], group_id=spec["group"],
                    auto_offset_reset="earliest", enable_auto_commit=False,
                    session_timeout_ms=6000, heartbeat_interval_ms=500, fetch_max_wait_ms=100,
                    metadata_max_age_ms=1000)
        a = {None: None, "range": (RangePartitionAssignor,),
             "roundrobin": (RoundRobinPartitionAssignor,),
             "sticky": (StickyPartitionAssignor,)}[spec.get("assignor")]
        if a:
            conf["partition_assignment_strategy"] = a
        conf.update(spec.get("conf") or {})
        c = AIOKafkaConsumer(**conf)

        class L(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                emit(ev="revoked", parts=parts_of(revoked))

            def on_partitions_assigned(self, assigned):
                emit(ev="assigned", parts=parts_of(assigned))

        if spec.get("pattern"):
            c.subscribe(pattern=spec["pattern"], listener=L())
        else:
            c.subscribe(spec["topics"], listener=L())
        await c.start()
        last = None
        try:
            while True:
                try:
                    cmd = cmds.get_nowait()
                except queue.Empty:
                    cmd = None
                if cmd == "commit" or (cmd == "stop" and spec.get("commit_on_stop")):
                    try:
                        await c.commit()
                        emit(ev="committed")
                    except Exception as e:  # noqa: BLE001
                        emit(ev="error", msg=f"commit: {e!r}")
                if cmd == "stop":
                    break
                for tp, msgs in (await c.getmany(timeout_ms=200)).items():
                    for m in msgs:
                        emit(ev="rec", t=m.topic, p=m.partition, o=m.offset,
                             v=(m.value or b"").decode(errors="replace"))
                now = parts_of(c.assignment())
                if now != last:
                    last = now
                    emit(ev="assignment", parts=now)
        finally:
            await c.stop()
            emit(ev="closed")

    asyncio.run(main())


def main():
    import logging

    # Client logs go to stderr; groupclients.Member shows their tail on failures.
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Group and wire traffic at DEBUG for kafka-python, to tell a lost broker
    # response from a client stall when a rebalance hangs.
    for name in ("kafka.coordinator", "kafka.net.connection", "kafka.protocol.parser"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    spec = json.loads(sys.argv[1])
    cmds = stdin_commands()
    try:
        {"confluent": run_confluent, "kafka-python": run_kafka_python,
         "aiokafka": run_aiokafka}[spec["client"]](spec, cmds)
    except Exception as e:  # noqa: BLE001
        emit(ev="error", msg=f"fatal: {e!r}")
        raise


if __name__ == "__main__":
    main()
