#!/usr/bin/env bash
# A local Odradek cluster: one ZooKeeper and N brokers on 127.0.0.1.
#
#   scripts/cluster.sh up [N]        start ZooKeeper and brokers 1..N (default 3); print the bootstrap list
#   scripts/cluster.sh down          SIGTERM every broker (SIGKILL after $ODRADEK_STOP_TIMEOUT s), then ZooKeeper
#   scripts/cluster.sh status        what runs, with pids and ports
#   scripts/cluster.sh stop  <id>    SIGTERM one broker (controlled shutdown), SIGKILL after the timeout
#   scripts/cluster.sh kill  <id>    SIGKILL one broker (a crash)
#   scripts/cluster.sh start <id>    start one broker again (same config, data and port)
#
# State (configs, data, logs, pid files) lives in $ODRADEK_CLUSTER_DIR (default ./cluster):
#   zookeeper/{zoo.cfg,data/,zookeeper.log,pid}   broker-<id>/{server.properties,data/,broker.log,pid}
# Ports: ZooKeeper $ODRADEK_ZK_PORT (default 12181), broker <id> $ODRADEK_BASE_PORT+<id> (default 19092+id),
# broker <id>'s HTTP listener (/metrics, console) $ODRADEK_HTTP_BASE_PORT+<id> (default 19644+id).
# The broker binary is $ODRADEK_BIN, else ${CARGO_TARGET_DIR:-target}/release/odradek (built if missing).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${ODRADEK_CLUSTER_DIR:-./cluster}"
ZK_PORT="${ODRADEK_ZK_PORT:-12181}"
BASE_PORT="${ODRADEK_BASE_PORT:-19092}"
HTTP_BASE_PORT="${ODRADEK_HTTP_BASE_PORT:-19644}"
STOP_TIMEOUT="${ODRADEK_STOP_TIMEOUT:-30}"
START_TIMEOUT="${ODRADEK_START_TIMEOUT:-30}"
CHROOT=/odradek
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
case "$TARGET" in /*) ;; *) TARGET="$REPO/$TARGET" ;; esac
BIN="${ODRADEK_BIN:-$TARGET/release/odradek}"

die() { echo "cluster.sh: $*" >&2; exit 1; }
say() { echo "cluster.sh: $*" >&2; }

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"

port_of() { echo $((BASE_PORT + $1)); }
pid_of() { cat "$1/pid" 2>/dev/null || true; }
running() { local pid; pid="$(pid_of "$1")"; [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

zk_answers() {
    # ZooKeeper answers the four-letter word "srvr" with its mode once it serves.
    local out
    out="$( (exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT" && printf srvr >&3 && timeout 2 cat <&3) 2>/dev/null || true)"
    [[ "$out" == *"Mode: "* ]]
}

wait_for() { # wait_for <what> <dir> <command...>: poll until command succeeds, the process dies, or timeout
    local what="$1" d="$2"; shift 2
    local deadline=$((SECONDS + START_TIMEOUT))
    until "$@"; do
        running "$d" || { tail -n 20 "$d"/*.log >&2 || true; die "$what exited during start-up (log: $d)"; }
        [ "$SECONDS" -lt "$deadline" ] || { tail -n 20 "$d"/*.log >&2 || true; die "$what not ready after ${START_TIMEOUT}s"; }
        sleep 0.2
    done
}

ensure_binary() {
    [ -x "$BIN" ] && return
    [ -z "${ODRADEK_BIN:-}" ] || die "ODRADEK_BIN=$ODRADEK_BIN is not an executable"
    say "building $BIN (cargo build --release)"
    (cd "$REPO" && cargo build --release)
    [ -x "$BIN" ] || die "no broker binary at $BIN after the build"
}

zk_start() {
    local d="$DIR/zookeeper"
    running "$d" && return
    [ -f /usr/share/java/zookeeper.jar ] || die "ZooKeeper is not installed (scripts/install-deps.sh, or apt-get install zookeeper)"
    mkdir -p "$d/data"
    cat > "$d/zoo.cfg" <<EOF
tickTime=500
initLimit=20
syncLimit=10
dataDir=$d/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
minSessionTimeout=1000
maxSessionTimeout=60000
admin.enableServer=false
4lw.commands.whitelist=*
EOF
    port_open "$ZK_PORT" && die "port $ZK_PORT is taken (set ODRADEK_ZK_PORT)"
    # zookeeper.jar's manifest names its dependencies; log4j (and its slf4j binding) for the log
    local j=/usr/share/java
    setsid java -Xmx256m -XX:+UseSerialGC -Dzookeeper.admin.enableServer=false \
        -Dzookeeper.root.logger=INFO,CONSOLE \
        -cp "/etc/zookeeper/conf:$j/zookeeper.jar:$j/slf4j-log4j12.jar:$j/log4j-1.2.jar" \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" \
        >>"$d/zookeeper.log" 2>&1 </dev/null &
    echo $! > "$d/pid"
    wait_for "ZooKeeper" "$d" zk_answers
    say "ZooKeeper serving on 127.0.0.1:$ZK_PORT"
}

write_broker_config() { # write_broker_config <id> <cluster size>
    local id="$1" n="$2" d="$DIR/broker-$1" rf isr
    rf=$((n < 3 ? n : 3))
    isr=$((rf > 2 ? 2 : 1))
    mkdir -p "$d/data"
    cat > "$d/server.properties" <<EOF
# Written by scripts/cluster.sh up $n (edit it freely: 'up' only writes a missing file)
broker.id=$id
listeners=PLAINTEXT://127.0.0.1:$(port_of "$id")
advertised.listeners=PLAINTEXT://127.0.0.1:$(port_of "$id")
log.dirs=$d/data
http.listener=127.0.0.1:$((HTTP_BASE_PORT + id))
zookeeper.connect=127.0.0.1:$ZK_PORT$CHROOT
zookeeper.session.timeout.ms=6000
num.partitions=1
default.replication.factor=$rf
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
min.insync.replicas=$isr
EOF
}

broker_start() {
    local id="$1" d="$DIR/broker-$1" port
    [ -f "$d/server.properties" ] || die "no broker $id in $DIR (run: $0 up N)"
    running "$d" && { say "broker $id already running (pid $(pid_of "$d"))"; return; }
    port="$(port_of "$id")"
    port_open "$port" && die "port $port is taken by something else"
    ensure_binary
    echo "==== $(date '+%F %T') start: $BIN serve --config $d/server.properties" >> "$d/broker.log"
    (cd "$d" && exec setsid "$BIN" serve --config "$d/server.properties" >>"$d/broker.log" 2>&1 </dev/null) &
    echo $! > "$d/pid"
    wait_for "broker $id" "$d" port_open "$port"
    say "broker $id up on 127.0.0.1:$port (pid $(pid_of "$d"))"
}

stop_dir() { # stop_dir <dir> <name> [signal]: signal, wait, SIGKILL after the timeout
    local d="$1" name="$2" sig="${3:-TERM}" pid deadline
    if ! running "$d"; then rm -f "$d/pid"; return; fi
    pid="$(pid_of "$d")"
    kill "-$sig" "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "$name ignored SIG$sig for ${STOP_TIMEOUT}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.2
    done
    rm -f "$d/pid"
    say "$name stopped (SIG$sig)"
}

broker_ids() {
    local d
    for d in "$DIR"/broker-*; do
        [ -d "$d" ] && echo "${d##*/broker-}"
    done | sort -n
}

bootstrap() {
    local id out=()
    for id in $(broker_ids); do out+=("127.0.0.1:$(port_of "$id")"); done
    (IFS=,; echo "${out[*]}")
}

cmd_up() {
    local n="${1:-3}" id
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "up: N must be a positive number, not '$n'"
    ensure_binary
    zk_start
    for ((id = 1; id <= n; id++)); do
        [ -f "$DIR/broker-$id/server.properties" ] || write_broker_config "$id" "$n"
        broker_start "$id"
    done
    echo "bootstrap.servers=$(bootstrap)"
}

cmd_down() {
    local id
    for id in $(broker_ids); do stop_dir "$DIR/broker-$id" "broker $id"; done
    stop_dir "$DIR/zookeeper" "ZooKeeper"
}

cmd_status() {
    local id d state
    if running "$DIR/zookeeper"; then state="running (pid $(pid_of "$DIR/zookeeper"))"; else state=stopped; fi
    echo "zookeeper  127.0.0.1:$ZK_PORT  $state"
    for id in $(broker_ids); do
        d="$DIR/broker-$id"
        if running "$d"; then state="running (pid $(pid_of "$d"))"; else state=stopped; fi
        echo "broker $id   127.0.0.1:$(port_of "$id")  http://127.0.0.1:$((HTTP_BASE_PORT + id))/  $state  log: $d/broker.log"
    done
    echo "bootstrap.servers=$(bootstrap)"
}

need_id() { [[ "${1:-}" =~ ^[0-9]+$ ]] || die "$2 needs a broker id"; [ -d "$DIR/broker-$1" ] || die "no broker $1 in $DIR"; }

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    start) need_id "${2:-}" start; zk_start; broker_start "$2" ;;
    stop) need_id "${2:-}" stop; stop_dir "$DIR/broker-$2" "broker $2" TERM ;;
    kill) need_id "${2:-}" kill; stop_dir "$DIR/broker-$2" "broker $2" KILL ;;
    *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 2 ;;
esac
