#!/usr/bin/env bash
# THE one command that runs every test:
#   1. installs what is missing (Debian packages, .venv with the Python clients)
#   2. cargo build --release
#   3. cargo test --all-targets
#   4. pytest protocol-tests against ${CARGO_TARGET_DIR:-target}/release/odradek
# Exits non-zero on any failure.  Extra arguments go to pytest
# (e.g. scripts/test.sh -x -k codecs).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

step() { printf '\n==== %s (%s)\n' "$*" "$(date +%H:%M:%S)"; }

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

step "install dependencies"
bash scripts/install-deps.sh

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$REPO/$TARGET_DIR" ;; esac

step "cargo build --release"
cargo build --release

# Always the binary just built (an ODRADEK_BIN exported in the caller's shell
# is for running pytest by hand, not for this script).
BIN="$TARGET_DIR/release/odradek"
if [ ! -x "$BIN" ]; then
    echo "broker binary $BIN not found after build" >&2
    exit 1
fi
export ODRADEK_BIN="$BIN"

# From here on a failing stage does not stop the later ones (one run reports
# everything); the script still exits non-zero if any stage failed.
failed=()

step "cargo test --all-targets"
if ! cargo test --all-targets; then
    failed+=("cargo test")
fi

step "pytest protocol-tests (broker: $BIN)"
# Every test has its own timeout (pytest.ini); this is only a backstop so a
# wedged run cannot eat the whole CI budget.
set +e
timeout --signal=TERM --kill-after=60 "${PYTEST_RUN_TIMEOUT:-2400}" \
    "$REPO/.venv/bin/python" -m pytest protocol-tests "$@"
rc=$?
set -e
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "pytest run exceeded ${PYTEST_RUN_TIMEOUT:-2400}s and was stopped" >&2
fi
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure" >&2
fi
if [ "$rc" -ne 0 ]; then
    failed+=("pytest (exit $rc)")
fi

if [ "${#failed[@]}" -gt 0 ]; then
    echo >&2
    echo "FAILED stages: ${failed[*]}" >&2
    exit 1
fi
