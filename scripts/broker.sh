#!/usr/bin/env bash
# Starts or stops a local mosquitto MQTT broker for `make run`, `make demo` and tests.
#
# Usage: scripts/broker.sh [start|stop|status]      (default: start)
# Environment:
#   PORT        port to listen on, on 127.0.0.1 only (default 1883)
#   BROKER_DIR  folder for its config, log and pid file
#               (default ${TMPDIR:-/tmp}/sideload-broker-$PORT)
#
# start: when something already listens on the port, says so and reuses it;
#        else writes a config (anonymous access, TCP_NODELAY, no persistence),
#        starts mosquitto in the background and waits until it accepts connections.
#        Prints "started" or "reused" as the last word of its last line.
# stop:  stops the broker that `start` started (by its pid file); leaves any
#        other broker alone.
set -euo pipefail

action="${1:-start}"
port="${PORT:-1883}"
dir="${BROKER_DIR:-${TMPDIR:-/tmp}/sideload-broker-$port}"
pid_file="$dir/mosquitto.pid"

say() { echo "broker: $*"; }

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

our_pid() {
    local pid
    [[ -f "$pid_file" ]] || return 1
    pid="$(cat "$pid_file")"
    [[ -n "$pid" && -r "/proc/$pid/comm" && "$(cat "/proc/$pid/comm")" == mosquitto ]] || return 1
    echo "$pid"
}

start() {
    if pid="$(our_pid)"; then
        say "mosquitto (pid $pid) started earlier by this script listens on 127.0.0.1:$port; reused"
        return 0
    fi
    if port_open; then
        say "something already listens on 127.0.0.1:$port; using it as the broker; reused"
        return 0
    fi
    if ! command -v mosquitto >/dev/null; then
        say "mosquitto is not installed; run scripts/setup.sh first" >&2
        return 1
    fi

    mkdir -p "$dir"
    {
        echo "# written by scripts/broker.sh"
        echo "listener $port 127.0.0.1"
        echo "allow_anonymous true"
        echo "set_tcp_nodelay true"
        echo "persistence false"
        echo "max_queued_messages 100000"
        if [[ $(id -u) -eq 0 ]]; then
            # as root mosquitto would switch to the 'mosquitto' user, which cannot
            # write to this folder
            echo "user root"
        fi
    } >"$dir/mosquitto.conf"

    say "starting mosquitto on 127.0.0.1:$port (config, log and pid in $dir)"
    # A session of its own: a Ctrl-C on `make run` stops the runtime, not the broker,
    # which `make broker-stop` stops.
    setsid mosquitto -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 </dev/null &
    echo $! >"$pid_file"

    for _ in $(seq 1 100); do
        if port_open; then
            say "mosquitto (pid $(cat "$pid_file")) accepts connections on 127.0.0.1:$port; started"
            return 0
        fi
        if ! our_pid >/dev/null; then
            say "mosquitto exited at start; its log says:" >&2
            sed 's/^/  /' "$dir/mosquitto.log" >&2
            rm -f "$pid_file"
            return 1
        fi
        sleep 0.05
    done
    say "mosquitto did not accept connections on 127.0.0.1:$port within 5 s; log in $dir/mosquitto.log" >&2
    return 1
}

stop() {
    local pid
    if ! pid="$(our_pid)"; then
        say "no broker started by this script on port $port; nothing to stop"
        rm -f "$pid_file"
        return 0
    fi
    kill "$pid"
    for _ in $(seq 1 100); do
        [[ -e "/proc/$pid" ]] || break
        sleep 0.05
    done
    if [[ -e "/proc/$pid" ]]; then
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
    say "stopped mosquitto (pid $pid) on port $port"
}

status() {
    if pid="$(our_pid)"; then
        say "mosquitto (pid $pid) started by this script listens on 127.0.0.1:$port"
    elif port_open; then
        say "something not started by this script listens on 127.0.0.1:$port"
    else
        say "nothing listens on 127.0.0.1:$port"
        return 1
    fi
}

case "$action" in
start) start ;;
stop) stop ;;
status) status ;;
*)
    echo "usage: scripts/broker.sh [start|stop|status]" >&2
    exit 2
    ;;
esac
