#!/usr/bin/env bash
# Interleaved A/B load benchmark of two Odradek binaries on one (possibly busy) machine:
#   scripts/bench-ab.sh BASE_BIN NEW_BIN ROUNDS [scripts/bench.py options...]
#   e.g. scripts/bench-ab.sh /tmp/odradek-main target/release/odradek 5 --quick --only consume-1p,consume-6p
# Each round runs scripts/bench.py (Odradek only) once with BASE_BIN, then once with NEW_BIN, so
# background load hits both alike; at the end it prints, per workload, the median (min-max) of
# msgs/s and broker CPU seconds of each binary and the ratio NEW/BASE of the medians.
# The load generator comes from scripts/bench-tools.sh (built on first use); nothing is built here.
set -euo pipefail

[ $# -ge 3 ] || { sed -n 2,8p "$0" >&2; exit 2; }
BASE="$1"; NEW="$2"; ROUNDS="$3"; shift 3
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
tools="$(bash "$REPO/scripts/bench-tools.sh")"
RDKAFKA_PERF="$(printf '%s\n' "$tools" | sed -n 's/^RDKAFKA_PERF=//p')"
TANSU="$(printf '%s\n' "$tools" | sed -n 's/^TANSU=//p')"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/odradek-ab.XXXXXX")"

for round in $(seq 1 "$ROUNDS"); do
    for side in base new; do
        bin="$BASE"; [ "$side" = new ] && bin="$NEW"
        echo "[ab] round $round/$ROUNDS: $side ($bin)" >&2
        "$PY" "$REPO/scripts/bench.py" --odradek "$bin" --tansu "$TANSU" --rdkafka-perf "$RDKAFKA_PERF" \
            --brokers odradek --json "$OUT/$side-$round.json" "$@" >/dev/null
    done
done

"$PY" - "$OUT" <<'EOF'
import glob, json, os, statistics, sys

out = sys.argv[1]
vals = {}  # (workload, metric, side) -> [values]
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    side = os.path.basename(path).split("-")[0]
    with open(path) as f:
        data = json.load(f)
    for run in data["runs"]:
        for workload, res in run.get("odradek", {}).items():
            if not isinstance(res, dict) or "error" in res:
                continue
            for metric in ("msgs_s", "cpu_s"):
                if isinstance(res.get(metric), (int, float)):
                    vals.setdefault((workload, metric, side), []).append(res[metric])
    if data.get("startup"):
        for r in data["startup"]:
            vals.setdefault(("startup", "t_open", side), []).append(r["t_open"])

def fmt(xs):
    return f"{statistics.median(xs):.4g} ({min(xs):.4g}-{max(xs):.4g}, n={len(xs)})"

print(f"{'workload':<16} {'metric':<8} {'base':<32} {'new':<32} new/base")
for (w, m) in sorted({(w, m) for (w, m, _) in vals}):
    b, n = vals.get((w, m, "base")), vals.get((w, m, "new"))
    if not b or not n:
        continue
    ratio = statistics.median(n) / statistics.median(b) if statistics.median(b) else float("nan")
    print(f"{w:<16} {m:<8} {fmt(b):<32} {fmt(n):<32} {ratio:.3f}")
print(f"raw results: {out}")
EOF
