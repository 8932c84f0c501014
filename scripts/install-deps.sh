#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian 12 machine (root).
# Idempotent and quiet: does nothing when everything is already present.
#   - Debian packages: kcat, zookeeper (cluster tests), iproute2 and iptables
#     (the network-partition test of the cluster fault suite), prometheus
#     (test_metrics.py scrapes a broker with it), openssl (the TLS and SASL_SSL tests make
#     their certificates with it), python3-venv
#     when the python3 on PATH cannot create a venv with pip.
#   - a Python venv at <repo>/.venv with protocol-tests/requirements.txt
#     (callers then use <repo>/.venv/bin/python).
# Set PYTHON to choose the interpreter that creates the venv.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
REQS="$REPO/protocol-tests/requirements.txt"

log() { printf '[install-deps] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ---------------------------------------------------------------- apt ----
pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

python_can_venv() {
    # ensurepip is what Debian strips out of python3 without python3-venv.
    "$1" -c 'import venv, ensurepip' >/dev/null 2>&1
}

PY="${PYTHON:-python3}"
if ! command -v "$PY" >/dev/null 2>&1; then PY=/usr/bin/python3; fi

missing=()
for p in kcat zookeeper iproute2 iptables prometheus openssl; do
    pkg_installed "$p" || missing+=("$p")
done
if ! command -v "$PY" >/dev/null 2>&1 || ! python_can_venv "$PY"; then
    # Fall back to Debian's python3 with its venv module.
    PY=/usr/bin/python3
    pkg_installed python3 || missing+=(python3)
    pkg_installed python3-venv || missing+=(python3-venv)
fi

if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        log "missing packages ${missing[*]} and no apt-get; install them by hand"
        exit 1
    fi
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt may be running (e.g. a background install): wait for the lock.
    APT_OPTS=(-o DPkg::Lock::Timeout=900 -o Acquire::Retries=3 -qq)
    as_root apt-get "${APT_OPTS[@]}" update >/dev/null
    as_root apt-get "${APT_OPTS[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

# --------------------------------------------------------------- venv ----
# Recreate the venv if it is missing or its interpreter no longer runs
# (e.g. it was made by a python that has since gone away).
# A venv whose creation failed half-way (e.g. before python3-venv was
# installed) has a python but no pip: recreate that too.
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    log "creating venv at $VENV with $PY"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi

# Re-run pip only when requirements.txt changed since the last good install
# (or the stamp is missing).  pip itself is idempotent but slow-ish.
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$REQS" | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
    log "pip-installing $(basename "$REQS") into $VENV"
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
    "$VENV/bin/python" -m pip install -q -r "$REQS"
    echo "$want" > "$STAMP"
fi

# Fail early (and loudly) if any client or codec cannot be imported: the
# codec tests must never skip for lack of a library.
"$VENV/bin/python" - <<'PY'
import importlib, sys
mods = ["pytest", "pytest_timeout", "kafka", "confluent_kafka", "aiokafka",
        "snappy", "lz4.frame", "zstandard", "crc32c", "cramjam"]
bad = []
for m in mods:
    try:
        importlib.import_module(m)
    except Exception as e:  # pragma: no cover
        bad.append(f"{m}: {e!r}")
from kafka import codec as kc
for name in ("gzip", "snappy", "lz4", "zstd"):
    if not getattr(kc, f"has_{name}")():
        bad.append(f"kafka-python lacks {name}")
from aiokafka import codec as ac
for name in ("gzip", "snappy", "lz4", "zstd"):
    if not getattr(ac, f"has_{name}")():
        bad.append(f"aiokafka lacks {name}")
if bad:
    sys.exit("[install-deps] broken python deps:\n  " + "\n  ".join(bad))
PY

for tool in kcat cargo; do
    command -v "$tool" >/dev/null 2>&1 || { log "$tool not found on PATH"; exit 1; }
done
