#!/bin/bash
# The parts of ZooKeeper's zkServer.sh that the official image's users call, for the stand-in:
# `start-foreground` runs the server on $ZOO_CONF_DIR/zoo.cfg with its log on stdout;
# `status` asks the local server for its mode ("srvr", whitelisted by default) and exits 0
# when it serves.
set -euo pipefail
JARS=/usr/share/java
CLASSPATH="/etc/zookeeper/conf:$JARS/zookeeper.jar:$JARS/slf4j-log4j12.jar:$JARS/log4j-1.2.jar"
CONFIG="${ZOOCFGDIR:-$ZOO_CONF_DIR}/zoo.cfg"

client_port() {
    # clientPort=, or the ";port" tail of a dynamic server entry.
    local port
    port=$(sed -n 's/^clientPort=\([0-9]*\).*/\1/p' "$CONFIG" | head -1)
    [ -n "$port" ] || port=$(sed -n 's/^server\.[0-9]*=.*;\([^;]*:\)\{0,1\}\([0-9]*\)$/\2/p' "$CONFIG" | head -1)
    echo "${port:-2181}"
}

case "${1:-}" in
start-foreground)
    # shellcheck disable=SC2086 # JVMFLAGS is a list of flags, as in zkServer.sh
    exec java ${JVMFLAGS:-} -Dzookeeper.log.dir="$ZOO_LOG_DIR" -Dzookeeper.root.logger=INFO,CONSOLE \
        -cp "$CLASSPATH" org.apache.zookeeper.server.quorum.QuorumPeerMain "$CONFIG"
    ;;
status)
    out=$(java -cp "$CLASSPATH" org.apache.zookeeper.client.FourLetterWordMain localhost "$(client_port)" srvr 2>&1) || true
    mode=$(echo "$out" | sed -n 's/^Mode: //p')
    if [ -n "$mode" ]; then
        echo "Mode: $mode"
        exit 0
    fi
    echo "Error contacting service. It is probably not running." >&2
    exit 1
    ;;
*)
    echo "usage: zkServer.sh start-foreground|status (stand-in)" >&2
    exit 2
    ;;
esac
