#!/bin/bash
# Entrypoint of the broker image.
#
#   serve [odradek serve options]   (the default) run the broker on $ODRADEK_CONFIG (when the file
#                                   exists) with one --override per KAFKA_* variable
#   --option ...                    the same as `serve --option ...`
#   anything else                   run as given (`odradek healthcheck`, `bash`, ...)
#
# KAFKA_* variables map to keys as in the apache/kafka image: KAFKA_ stripped, "___" -> "-",
# "__" -> "_", "_" -> ".", lowercased; KAFKA_LOG_RETENTION_MS -> log.retention.ms,
# KAFKA_LISTENER_SECURITY_PROTOCOL_MAP -> listener.security.protocol.map. Values are passed as
# one argument each, spaces and "=" included. The variables that image keeps for the JVM are
# skipped.
set -euo pipefail

# The image's variables that are not broker configuration.
EXCLUDED=" KAFKA_VERSION KAFKA_HOME KAFKA_DEBUG KAFKA_OPTS KAFKA_HEAP_OPTS KAFKA_LOG4J_OPTS \
KAFKA_JMX_OPTS KAFKA_JMX_PORT KAFKA_JMX_HOSTNAME KAFKA_JVM_PERFORMANCE_OPTS KAFKA_GC_LOG_OPTS \
KAFKA_LOG4J_ROOT_LOGLEVEL KAFKA_LOG4J_LOGGERS KAFKA_TOOLS_LOG4J_LOGLEVEL "

# kafka_key KAFKA_NAME: the configuration key a variable names ("@" cannot occur in a name).
kafka_key() {
    local key=${1#KAFKA_}
    key=${key//___/-}
    key=${key//__/@}
    key=${key//_/.}
    key=${key//@/_}
    printf '%s' "${key,,}"
}

serve() {
    local args=(serve) config=${ODRADEK_CONFIG:-/etc/odradek/server.properties} name key
    if [ -f "$config" ]; then
        args+=(--config "$config")
    else
        echo "docker-entrypoint: no $config, starting from the built-in defaults"
    fi
    for name in $(compgen -e | grep '^KAFKA_' | sort); do
        [[ $EXCLUDED == *" $name "* ]] && continue
        key=$(kafka_key "$name")
        echo "docker-entrypoint: $key from \$$name"
        args+=(--override "$key=${!name}")
    done
    exec odradek "${args[@]}" "$@"
}

case "${1:-serve}" in
serve)
    shift || true
    serve "$@"
    ;;
-*) serve "$@" ;;
*) exec "$@" ;;
esac
