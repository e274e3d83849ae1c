#!/usr/bin/env bash
# The whole loop in one command, for a newcomer: install the broker if needed, start it,
# build and start the runtime, play the orchestrator's part over MQTT (answer the
# registration, create modules, delete one), show what comes back, then shut down.
#
# Usage: scripts/demo.sh        (make demo)
# Environment: PORT (broker port, default 1883), DEMO_RUNTIME_UUID (the runtime uuid;
#   a new one each run, so that two demos on one engine never sweep each other's containers),
#   SIDELOAD_BIN (a runtime binary to use instead of building one).
set -euo pipefail

cd "$(dirname "$0")/.."

port="${PORT:-1883}"
realm=realm
runtime_uuid="${DEMO_RUNTIME_UUID:-$(cat /proc/sys/kernel/random/uuid)}"
reg_topic="$realm/proc/reg/$runtime_uuid"
control_topic="$realm/proc/control/$runtime_uuid"
work="$(mktemp -d "${TMPDIR:-/tmp}/sideload-demo.XXXXXX")"
messages="$work/messages.jsonl"
runtime_log="$work/runtime.log"
runtime_pid=""
recorder_pid=""
broker_started=no

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
note() { echo "    $*"; }

cleanup() {
    local status=$?
    set +e
    if [[ -n "$runtime_pid" ]] && kill -0 "$runtime_pid" 2>/dev/null; then
        kill -TERM "$runtime_pid"
        wait "$runtime_pid" 2>/dev/null
    fi
    if [[ -n "$recorder_pid" ]]; then
        kill "$recorder_pid" 2>/dev/null
        wait "$recorder_pid" 2>/dev/null
    fi
    if [[ "$broker_started" == yes ]]; then
        PORT="$port" scripts/broker.sh stop >/dev/null
    fi
    if [[ $status -ne 0 ]]; then
        echo
        echo "demo: something went wrong; the runtime's last log lines:" >&2
        tail -n 30 "$runtime_log" 2>/dev/null | sed 's/^/    /' >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "demo: $*" >&2
    exit 1
}

publish() { mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 -t "$1" -m "$2"; }
new_uuid() { cat /proc/sys/kernel/random/uuid; }

# wait_for DESCRIPTION SECONDS [jq options] FILTER: polls the recorded messages until
# FILTER yields output; prints the first output.
wait_for() {
    local description="$1" seconds="$2" match deadline
    shift 2
    deadline=$((SECONDS + seconds))
    while :; do
        match="$(jq -c "$@" "$messages" 2>/dev/null | head -n 1)"
        if [[ -n "$match" ]]; then
            echo "$match"
            return 0
        fi
        ((SECONDS < deadline)) || fail "no $description within $seconds s"
        sleep 0.1
    done
}

module_output() {
    jq -rj --arg topic "$realm/proc/stdio/$1" 'select(.topic == $topic) | .payload' "$messages"
}

wait_exited() {
    wait_for "'exited' notice for module $1" "$2" --arg topic "$control_topic" --arg uuid "$1" \
        'select(.topic == $topic) | .payload | fromjson? | select(.action == "exited" and .data.uuid == $uuid)'
}

# create_request UUID NAME FILE ARGV ENV [FILETYPE]
create_request() {
    jq -nc --arg id "$(new_uuid)" --arg uuid "$1" --arg name "$2" --arg file "$3" \
        --argjson argv "$4" --argjson env "$5" --arg parent "$runtime_uuid" \
        --arg filetype "${6:-WA}" \
        '{object_id: $id, action: "create", type: "req",
          data: {type: "module", uuid: $uuid, name: $name, parent: $parent, file: $file,
                 filetype: $filetype, args: {argv: $argv, env: $env},
                 channels: [], status: "A"}}'
}

delete_request() {
    jq -nc --arg id "$(new_uuid)" --arg uuid "$1" \
        '{object_id: $id, action: "delete", type: "req", data: {type: "module", uuid: $uuid}}'
}

step "1. install what is missing (mosquitto, mosquitto-clients, jq)"
scripts/setup.sh | sed 's/^/    /'

step "2. start a local MQTT broker on 127.0.0.1:$port"
broker_says="$(PORT="$port" scripts/broker.sh start)"
printf '%s\n' "$broker_says" | sed 's/^/    /'
[[ "$broker_says" == *started ]] && broker_started=yes

if [[ -n "${SIDELOAD_BIN:-}" ]]; then
    step "3. use the runtime binary \$SIDELOAD_BIN"
    binary="$SIDELOAD_BIN"
else
    step "3. build the runtime (cargo build --release)"
    cargo build --release --bin sideload
    binary="$(cargo metadata --no-deps --format-version 1 | jq -r .target_directory)/release/sideload"
fi
note "binary: $binary ($(stat -c %s "$binary") bytes)"

step "4. listen to everything under '$realm/#' (the demo plays the orchestrator)"
mosquitto_sub -h 127.0.0.1 -p "$port" -q 1 -t "$realm/#" -F '%j' >"$messages" 2>/dev/null &
recorder_pid=$!
for _ in $(seq 1 50); do
    publish "$realm/demo-probe" ready
    grep -q '"topic":"realm/demo-probe"' "$messages" && break
    sleep 0.1
done
note "try it yourself in another terminal: mosquitto_sub -p $port -t '$realm/#' -v"

step "5. start the runtime with conf/ and the uuid $runtime_uuid"
SIDELOAD__RUNTIME__UUID="$runtime_uuid" SIDELOAD__MQTT__PORT="$port" \
    "$binary" --config-dir conf >"$runtime_log" 2>&1 &
runtime_pid=$!
note "pid $runtime_pid; its log goes to $runtime_log while the demo runs"
note "waiting for its registration on '$reg_topic' ..."
registration="$(wait_for "registration request" 20 --arg topic "$reg_topic" \
    'select(.topic == $topic) | .payload | fromjson? | select(.action == "create" and .type == "req")')"
jq . <<<"$registration" | sed 's/^/    /'
note "answering it as the orchestrator does: result ok, same object_id"
publish "$reg_topic" "$(jq -nc --arg id "$(jq -r .object_id <<<"$registration")" --arg uuid "$runtime_uuid" \
    '{object_id: $id, type: "resp", data: {result: "ok", details: {uuid: $uuid, name: "sideload1", ka_interval_sec: 60, status: "A"}}}')"

step "6. run hello.wasm: publish a create request on '$control_topic'"
hello="$(new_uuid)"
request="$(create_request "$hello" demo-hello hello.wasm '["from", "the", "demo"]' '["DEMO=1"]')"
jq . <<<"$request" | sed 's/^/    /'
publish "$control_topic" "$request"
note "its stdout arrives on '$realm/proc/stdio/$hello':"
wait_exited "$hello" 20 >/dev/null
module_output "$hello" | sed 's/^/    | /'
note "then it exited, and the runtime said so on the control topic"

step "7. run counter.wasm, which counts once a second until stopped"
counter="$(new_uuid)"
publish "$control_topic" "$(create_request "$counter" demo-counter counter.wasm '[]' '[]')"
wait_for "'count 3' from counter.wasm" 20 --arg topic "$realm/proc/stdio/$counter" \
    'select(.topic == $topic and (.payload | test("count 3")))' >/dev/null
module_output "$counter" | sed 's/^/    | /'

step "8. delete it: publish a delete request"
publish "$control_topic" "$(delete_request "$counter")"
exited="$(wait_exited "$counter" 15)"
note "the runtime's 'exited' notice:"
jq . <<<"$exited" | sed 's/^/    /'

runner_image="slframework/slruntime-python-runner"
if docker info >/dev/null 2>&1 && docker image inspect "$runner_image" >/dev/null 2>&1; then
    step "8b. run python/echo/echo.py in a container, talk to it on stdin, delete it"
    echo_py="$(new_uuid)"
    publish "$control_topic" "$(create_request "$echo_py" demo-echo-py python/echo/echo.py '[]' '[]' PY)"
    wait_for "'ready' from echo.py" 60 --arg topic "$realm/proc/stdio/$echo_py" \
        'select(.topic == $topic and (.payload | test("ready")))' >/dev/null
    note "its folder was fetched into a work folder of its own and mounted into a container:"
    docker ps --filter "label=org.silverline.sideload.module=$echo_py" \
        --format '{{.Names}}  {{.Image}}  {{.Status}}' | sed 's/^/    /'
    publish "$realm/proc/stdio/$echo_py/stdin" "hello from the demo"
    wait_for "the echo" 20 --arg topic "$realm/proc/stdio/$echo_py" \
        'select(.topic == $topic and (.payload | test("echo: hello")))' >/dev/null
    module_output "$echo_py" | sed 's/^/    | /'
    publish "$control_topic" "$(delete_request "$echo_py")"
    wait_exited "$echo_py" 20 >/dev/null
    left="$(docker ps -a -q --filter "label=org.silverline.sideload.module=$echo_py" | wc -l)"
    note "deleted: 'exited' reported, $left containers left"
else
    step "8b. (skipped: no container engine with the runner image; 'make engine' sets it up)"
fi

step "9. stop the runtime with SIGTERM; it unregisters before it exits"
kill -TERM "$runtime_pid"
status=0
wait "$runtime_pid" || status=$?
runtime_pid=""
unregister="$(wait_for "unregistration" 5 --arg topic "$reg_topic" \
    'select(.topic == $topic) | .payload | fromjson? | select(.action == "delete" and .data.type == "runtime")')"
jq . <<<"$unregister" | sed 's/^/    /'
note "the runtime exited with status $status"

step "10. clean up"
if [[ "$broker_started" == yes ]]; then
    note "stopping the broker the demo started"
else
    note "leaving the broker running: the demo did not start it"
fi
note "done. Next: 'make run' keeps a runtime running; tests/programs/README.md lists programs to try."
