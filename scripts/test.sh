#!/usr/bin/env bash
# THE one command that runs every test:
#   1. installs what is missing (Debian packages, .venv with the Python clients)
#   2. cargo build --release
#   3. cargo test --all-targets
#   4. pytest protocol-tests against ${CARGO_TARGET_DIR:-target}/release/odradek
# Exits non-zero on any failure.  Extra args are passed to pytest.
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

step "cargo test --all-targets"
cargo test --all-targets

BIN="${ODRADEK_BIN:-$TARGET_DIR/release/odradek}"
if [ ! -x "$BIN" ]; then
    echo "broker binary $BIN not found after build" >&2
    exit 1
fi
export ODRADEK_BIN="$BIN"

step "pytest protocol-tests (broker: $BIN)"
set +e
"$REPO/.venv/bin/python" -m pytest protocol-tests "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit "$rc"
