#!/usr/bin/env python3
"""Produce and consume throughput over SSL and SASL_SSL against PLAINTEXT, on one broker, in one run.

    python3 scripts/bench-security.py [--odradek target/release/odradek] [--rounds 5]
        [--count 2000000] [--size 100] [--rdkafka-perf PATH] [--kinds PLAINTEXT,SSL,SASL_SSL]

One Odradek broker (release build) with three listeners: PLAINTEXT, SSL (PKCS12 keystore made
here with openssl, subjectAltName IP:127.0.0.1) and SASL_SSL (SCRAM-SHA-512, its user added with
`odradek add-scram` before the start; PLAIN when that command does not exist). librdkafka's
rdkafka_performance (built with OpenSSL by scripts/bench-tools.sh) produces COUNT records of
SIZE bytes (acks=1, linger.ms=5) to a fresh topic over each listener in turn, then consumes them
back; the rounds interleave the three, so background load hits each alike. Printed: per listener
the median (min-max) msgs/s of each direction and the ratio to PLAINTEXT's median. The broker's
CPU seconds per run are printed too (from /proc). Nothing asserts; the target of issue 15 is TLS
produce >= 60% of PLAINTEXT at 100-byte records.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the load benchmark's broker and rdkafka_performance wrappers)

PASSWORD = "bench-secret"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(d):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=odradek-bench-ca", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost", cwd=d)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext", cwd=d)
    openssl("pkcs12", "-export", "-in", "server.crt", "-inkey", "server.key", "-certfile", "ca.pem",
            "-out", "server.p12", "-passout", f"pass:{PASSWORD}", cwd=d)


def has_add_scram(binary):
    p = subprocess.run([binary, "add-scram", "--help"], capture_output=True, timeout=30)
    return p.returncode == 0


def write_config(d, kinds, ports, mechanism):
    plain_users = f'user_bench="{PASSWORD}"' if mechanism == "PLAIN" else ""
    module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mechanism == "PLAIN"
              else "org.apache.kafka.common.security.scram.ScramLoginModule")
    listeners = ",".join(f"{k}://127.0.0.1:{p}" for k, p in zip(kinds, ports))
    lines = [
        f"listeners={listeners}",
        f"log.dirs={os.path.join(d, 'data')}",
        "http.listener=",
        "num.partitions=1",
        "offsets.topic.replication.factor=1",
        "ssl.keystore.type=PKCS12",
        f"ssl.keystore.location={os.path.join(d, 'server.p12')}",
        f"ssl.keystore.password={PASSWORD}",
        f"ssl.key.password={PASSWORD}",
    ]
    if "SASL_SSL" in kinds:
        lines += [
            f"sasl.enabled.mechanisms={mechanism}",
            f"listener.name.sasl_ssl.{mechanism.lower()}.sasl.jaas.config={module} required "
            f"{plain_users};",
        ]
    path = os.path.join(d, "server.properties")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def start_broker(binary, d, config):
    log = open(os.path.join(d, "broker.log"), "w")
    p = subprocess.Popen([binary, "serve", "--config", config], stdout=log, stderr=subprocess.STDOUT,
                         cwd=d)
    return p


def wait_port(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}")
        if bench.port_answers(port):
            return
        time.sleep(0.2)
    raise RuntimeError(f"port {port} never answered")


def client_settings(kind, d, mechanism):
    if kind == "PLAINTEXT":
        return []
    x = ["-X", f"ssl.ca.location={os.path.join(d, 'ca.pem')}"]
    if kind == "SSL":
        return ["-X", "security.protocol=SSL"] + x
    return ["-X", "security.protocol=SASL_SSL", "-X", f"sasl.mechanisms={mechanism}",
            "-X", "sasl.username=bench", "-X", f"sasl.password={PASSWORD}"] + x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--odradek", default=bench.default_binary())
    ap.add_argument("--rdkafka-perf", default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--count", type=int, default=2_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--kinds", default="PLAINTEXT,SSL,SASL_SSL",
                    help="listeners compared, PLAINTEXT first (the baseline)")
    args = ap.parse_args()
    kinds = args.kinds.split(",")
    if kinds[0] != "PLAINTEXT":
        ap.error("--kinds must start with PLAINTEXT (the baseline)")
    binary = os.path.abspath(args.odradek)
    perf_bin = args.rdkafka_perf
    if not perf_bin:
        tools = subprocess.run(["bash", os.path.join(os.path.dirname(__file__), "bench-tools.sh")],
                               check=True, capture_output=True, text=True).stdout
        perf_bin = next(line.split("=", 1)[1] for line in tools.splitlines()
                        if line.startswith("RDKAFKA_PERF="))
    d = tempfile.mkdtemp(prefix="odradek-bench-security.")
    make_certs(d)
    scram = "SASL_SSL" in kinds and has_add_scram(binary)
    mechanism = "SCRAM-SHA-512" if scram else "PLAIN"
    ports = [bench.free_port() for _ in kinds]
    config = write_config(d, kinds, ports, mechanism)
    if scram:
        subprocess.run([binary, "add-scram", "--config", config,
                        f"{mechanism}=[name=bench,password={PASSWORD}]"], check=True, timeout=60)
    broker = start_broker(binary, d, config)
    results = {(k, w): [] for k in kinds for w in ("produce", "consume", "cpu_p", "cpu_c")}
    try:
        wait_port(ports[0], broker)
        perf = bench.Perf(perf_bin, d)
        for r in range(1, args.rounds + 1):
            for kind, port in zip(kinds, ports):
                topic = f"sec-{kind.lower()}-{r}"
                extra = client_settings(kind, d, mechanism)
                bench.log(f"round {r}/{args.rounds}: {kind}")
                cpu0 = bench.proc_cpu_seconds(broker.pid)
                res = perf.produce(port, topic, args.count, args.size, extra=extra)
                cpu1 = bench.proc_cpu_seconds(broker.pid)
                if "error" in res:
                    raise RuntimeError(f"{kind} produce: {res['error']}")
                got = perf.consume(port, topic, [0], args.count, args.size, extra=extra)
                cpu2 = bench.proc_cpu_seconds(broker.pid)
                if "error" in got:
                    raise RuntimeError(f"{kind} consume: {got['error']}")
                results[(kind, "produce")].append(res["msgs_s"])
                results[(kind, "consume")].append(got["msgs_s"])
                results[(kind, "cpu_p")].append(cpu1 - cpu0)
                results[(kind, "cpu_c")].append(cpu2 - cpu1)
    finally:
        broker.terminate()
        broker.wait(timeout=60)

    sasl = f", SASL_SSL with {mechanism}" if "SASL_SSL" in kinds else ""
    print(f"{args.count} records of {args.size} B, {args.rounds} interleaved rounds{sasl}; "
          f"broker {binary}")
    print(f"{'listener':<10} {'direction':<9} {'msgs/s median (min-max)':<32} {'vs PLAINTEXT':<13}"
          f"broker CPU s (median)")
    for w, cpu in (("produce", "cpu_p"), ("consume", "cpu_c")):
        base = statistics.median(results[("PLAINTEXT", w)])
        for kind in kinds:
            xs = results[(kind, w)]
            m = statistics.median(xs)
            print(f"{kind:<10} {w:<9} {m:>12,.0f} ({min(xs):,.0f}-{max(xs):,.0f})".ljust(63)
                  + f"{m / base:<13.3f}{statistics.median(results[(kind, cpu)]):.2f}")
    print(f"work dir (perf outputs, broker log): {d}")


if __name__ == "__main__":
    main()
