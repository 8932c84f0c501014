#!/bin/bash
# Entrypoint of the zookeeper stand-in image: writes $ZOO_CONF_DIR/zoo.cfg from the official
# image's ZOO_* variables when no zoo.cfg is there (a mounted one wins), writes myid, and runs
# the command (by default `zkServer.sh start-foreground`).
set -euo pipefail

write_config() {
    local config="$1"
    {
        echo "dataDir=$ZOO_DATA_DIR"
        echo "dataLogDir=$ZOO_DATA_LOG_DIR"
        echo "tickTime=$ZOO_TICK_TIME"
        echo "initLimit=$ZOO_INIT_LIMIT"
        echo "syncLimit=$ZOO_SYNC_LIMIT"
        echo "autopurge.snapRetainCount=$ZOO_AUTOPURGE_SNAPRETAINCOUNT"
        echo "autopurge.purgeInterval=$ZOO_AUTOPURGE_PURGEINTERVAL"
        echo "maxClientCnxns=$ZOO_MAX_CLIENT_CNXNS"
        echo "standaloneEnabled=$ZOO_STANDALONE_ENABLED"
        echo "admin.enableServer=$ZOO_ADMINSERVER_ENABLED"
        # One "server.N=host:peer:election;client" entry per word, as the official image reads it.
        local server
        for server in ${ZOO_SERVERS:-server.1=localhost:2888:3888;2181}; do
            echo "$server"
        done
        if [ -n "${ZOO_4LW_COMMANDS_WHITELIST:-}" ]; then
            echo "4lw.commands.whitelist=$ZOO_4LW_COMMANDS_WHITELIST"
        fi
        local extra
        for extra in ${ZOO_CFG_EXTRA:-}; do
            echo "$extra"
        done
    } >"$config"
}

if [ ! -f "$ZOO_CONF_DIR/zoo.cfg" ]; then
    write_config "$ZOO_CONF_DIR/zoo.cfg"
fi
if [ ! -f "$ZOO_DATA_DIR/myid" ]; then
    echo "${ZOO_MY_ID:-1}" >"$ZOO_DATA_DIR/myid"
fi
exec "$@"
