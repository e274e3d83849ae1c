# shellcheck shell=bash
# Shared helpers of the scripted end-to-end tests: each test sources this file, calls
# `e2e_start` (a private mosquitto on a free port, a recorder of every message, the
# runtime with a temporary copy of conf/, registration answered as the orchestrator
# would), then publishes requests and waits for what a user would see on MQTT.
#
# Everything a test starts is stopped and removed on exit; when a test fails, the
# runtime's log and the recorded messages are printed (kept when E2E_KEEP=1).
#
# Environment:
#   SIDELOAD_BIN  runtime binary to test (default: `cargo build`, debug profile)
#   E2E_TIMEOUT   default seconds to wait for an expected message (default 10)
#   E2E_KEEP=1    keep the temporary folder
#   SIDELOAD_RUNNER_IMAGE  Python runner image for the python_* tests (default: the
#                 one in conf/.appsettings.yaml, slframework/slruntime-python-runner)
#
# Waiting is event-driven: a single mosquitto_sub, subscribed before the runtime starts,
# records every message of the realm as one JSON line (`-F %j`); helpers poll that
# file for a matching message. So no message can be missed between two subscriptions.

set -euo pipefail

E2E_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
E2E_TEST="$(basename "$0" .sh)"
E2E_TIMEOUT="${E2E_TIMEOUT:-10}"
E2E_TMP="$(mktemp -d "${TMPDIR:-/tmp}/sideload-e2e-$E2E_TEST.XXXXXX")"
E2E_MESSAGES="$E2E_TMP/messages.jsonl"
E2E_RUNTIME_LOG="$E2E_TMP/runtime.log"
E2E_REALM="e2e"
E2E_PORT=""
E2E_RUNTIME_PID=""
E2E_RECORDER_PID=""
E2E_RUNTIME_UUID="$(cat /proc/sys/kernel/random/uuid)"
# shellcheck disable=SC2034 # read by the tests
E2E_RUNTIME_EXIT=""
# Set by e2e_require_engine: clean-up then removes the containers of this runtime and
# those named in E2E_EXTRA_CONTAINERS.
E2E_ENGINE_USED=no
E2E_EXTRA_CONTAINERS=()
E2E_ENGINE="${E2E_ENGINE:-docker}"
E2E_PY_IMAGE="${SIDELOAD_RUNNER_IMAGE:-slframework/slruntime-python-runner:latest}"
E2E_LABEL_RUNTIME="org.silverline.sideload.runtime"
E2E_LABEL_MODULE="org.silverline.sideload.module"

# Topics of the silverline dialect (conf/.appsettings.yaml).
E2E_REG_TOPIC="$E2E_REALM/proc/reg/$E2E_RUNTIME_UUID"
E2E_CONTROL_TOPIC="$E2E_REALM/proc/control/$E2E_RUNTIME_UUID"
E2E_LOG_TOPIC="$E2E_REALM/proc/log/$E2E_RUNTIME_UUID"
E2E_PROBE_TOPIC="$E2E_REALM/e2e-probe"

e2e_say() { echo "[$E2E_TEST] $*"; }

e2e_fail() {
    echo "[$E2E_TEST] FAIL: $*" >&2
    exit 1
}

e2e_uuid() { cat /proc/sys/kernel/random/uuid; }

stdout_topic() { echo "$E2E_REALM/proc/stdio/$1"; }
stderr_topic() { echo "$E2E_REALM/proc/stdio/$1/stderr"; }
stdin_topic() { echo "$E2E_REALM/proc/stdio/$1/stdin"; }

# --- set-up and clean-up ------------------------------------------------------------

e2e_cleanup() {
    local status=$?
    set +e
    if [[ -n "$E2E_RUNTIME_PID" ]] && kill -0 "$E2E_RUNTIME_PID" 2>/dev/null; then
        kill -TERM "$E2E_RUNTIME_PID" 2>/dev/null
        for _ in $(seq 1 50); do
            kill -0 "$E2E_RUNTIME_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$E2E_RUNTIME_PID" 2>/dev/null
        wait "$E2E_RUNTIME_PID" 2>/dev/null
    fi
    if [[ "$E2E_ENGINE_USED" == yes ]]; then
        e2e_remove_containers
    fi
    if [[ -n "$E2E_RECORDER_PID" ]]; then
        kill "$E2E_RECORDER_PID" 2>/dev/null
        wait "$E2E_RECORDER_PID" 2>/dev/null
    fi
    if [[ -n "$E2E_PORT" ]]; then
        PORT="$E2E_PORT" BROKER_DIR="$E2E_TMP/broker" "$E2E_ROOT/scripts/broker.sh" stop >/dev/null
    fi
    if [[ $status -ne 0 ]]; then
        echo "----- $E2E_TEST: runtime log (last 60 lines) -----" >&2
        tail -n 60 "$E2E_RUNTIME_LOG" >&2 2>/dev/null
        echo "----- $E2E_TEST: messages seen (last 40, payloads cut at 300 characters) -----" >&2
        tail -n 40 "$E2E_MESSAGES" 2>/dev/null \
            | jq -rc '"\(.topic)  \(.payload[0:300] | gsub("\n"; "\\n"))"' >&2 2>/dev/null
        echo "-----" >&2
    fi
    if [[ "${E2E_KEEP:-0}" == 1 ]]; then
        echo "[$E2E_TEST] kept $E2E_TMP" >&2
    else
        rm -rf "$E2E_TMP"
    fi
    exit "$status"
}
trap e2e_cleanup EXIT
trap 'exit 130' INT TERM

e2e_require_tools() {
    local tool missing=()
    for tool in mosquitto mosquitto_pub mosquitto_sub jq; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        e2e_fail "missing tools: ${missing[*]} (run scripts/setup.sh)"
    fi
}

# The runtime binary: $SIDELOAD_BIN, else a debug build.
e2e_runtime_bin() {
    if [[ -n "${SIDELOAD_BIN:-}" ]]; then
        echo "$SIDELOAD_BIN"
        return
    fi
    local target_dir
    (cd "$E2E_ROOT" && cargo build --quiet --bin sideload) >&2 \
        || e2e_fail "cargo build failed"
    target_dir="$(cd "$E2E_ROOT" && cargo metadata --no-deps --format-version 1 | jq -r .target_directory)"
    echo "$target_dir/debug/sideload"
}

# A port nobody listens on, below the kernel's range for the local ends of outgoing
# connections (which a connect probe cannot see, and which other tests' clients use).
e2e_free_port() {
    local port low=32768
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    ((low > 11000)) || low=32768
    for _ in $(seq 1 50); do
        port=$((10000 + RANDOM % (low - 10000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    e2e_fail "found no free port"
}

# Tests run side by side: two may pick the same port, so a start that fails is tried
# again on another.
e2e_start_broker() {
    local attempt
    for attempt in 1 2 3 4 5; do
        E2E_PORT="$(e2e_free_port)"
        if PORT="$E2E_PORT" BROKER_DIR="$E2E_TMP/broker" "$E2E_ROOT/scripts/broker.sh" start \
            >/dev/null 2>"$E2E_TMP/broker-start.err"; then
            return
        fi
        echo "[$E2E_TEST] mosquitto did not start on port $E2E_PORT (attempt $attempt)" >&2
    done
    cat "$E2E_TMP/broker-start.err" >&2
    e2e_fail "could not start mosquitto"
}

# Records every message of the realm, then proves the recorder is subscribed.
e2e_start_recorder() {
    : >"$E2E_MESSAGES"
    mosquitto_sub -h 127.0.0.1 -p "$E2E_PORT" -q 1 -t "$E2E_REALM/#" -F '%j' \
        >>"$E2E_MESSAGES" 2>"$E2E_TMP/recorder.err" &
    E2E_RECORDER_PID=$!
    for _ in $(seq 1 50); do
        mosquitto_pub -h 127.0.0.1 -p "$E2E_PORT" -t "$E2E_PROBE_TOPIC" -m ready
        if grep -q "\"topic\":\"$E2E_PROBE_TOPIC\"" "$E2E_MESSAGES"; then
            return
        fi
        sleep 0.1
    done
    e2e_fail "the message recorder did not subscribe within 5 s"
}

# Starts the runtime with a copy of conf/ and overrides; the VAR=value entries of the
# array E2E_RUNTIME_ENV are added to its environment.
E2E_RUNTIME_ENV=()
e2e_start_runtime() {
    local bin
    bin="$(e2e_runtime_bin)"
    [[ -x "$bin" ]] || e2e_fail "runtime binary '$bin' not found"
    mkdir -p "$E2E_TMP/conf"
    cp -a "$E2E_ROOT/conf/." "$E2E_TMP/conf/"
    # SIDELOAD_RUNNER_IMAGE replaces the Python runner image in the copy (no SIDELOAD__*
    # variable can: variable names are lowercased, the launcher table's keys are not).
    if [[ -n "${SIDELOAD_RUNNER_IMAGE:-}" ]]; then
        sed -i -E "s|^( *image:) slframework/slruntime-python-runner([: #].*)?$|\1 $SIDELOAD_RUNNER_IMAGE|" \
            "$E2E_TMP/conf/.appsettings.yaml"
        grep -qF "image: $SIDELOAD_RUNNER_IMAGE" "$E2E_TMP/conf/.appsettings.yaml" \
            || e2e_fail "could not set the runner image '$SIDELOAD_RUNNER_IMAGE' in the copy of conf/.appsettings.yaml"
    fi
    env \
        SIDELOAD__MQTT__HOST=127.0.0.1 \
        SIDELOAD__MQTT__PORT="$E2E_PORT" \
        SIDELOAD__RUNTIME__UUID="$E2E_RUNTIME_UUID" \
        SIDELOAD__RUNTIME__REALM="$E2E_REALM" \
        SIDELOAD__RUNTIME__NAME="e2e-$E2E_TEST" \
        SIDELOAD__REPOSITORY__URL="file://$E2E_ROOT/tests/programs" \
        "${E2E_RUNTIME_ENV[@]}" \
        "$bin" --config-dir "$E2E_TMP/conf" >"$E2E_RUNTIME_LOG" 2>&1 &
    E2E_RUNTIME_PID=$!
}

# Waits for the registration request and answers it as the orchestrator does.
e2e_register() {
    local request object_id
    request="$(e2e_expect "registration request on '$E2E_REG_TOPIC'" \
        --arg topic "$E2E_REG_TOPIC" \
        'select(.topic == $topic) | .payload | fromjson?
         | select(.action == "create" and .type == "req" and .data.type == "runtime")')"
    [[ "$(jq -r .data.uuid <<<"$request")" == "$E2E_RUNTIME_UUID" ]] \
        || e2e_fail "registration carries uuid '$(jq -r .data.uuid <<<"$request")', expected '$E2E_RUNTIME_UUID'"
    object_id="$(jq -r .object_id <<<"$request")"
    e2e_publish "$E2E_REG_TOPIC" "$(jq -nc --arg id "$object_id" --arg uuid "$E2E_RUNTIME_UUID" \
        '{object_id: $id, type: "resp",
          data: {result: "ok", details: {uuid: $uuid, name: "e2e", ka_interval_sec: 60, status: "A"}}}')"
}

# The whole set-up: broker, recorder, runtime, registration.
e2e_start() {
    e2e_require_tools
    e2e_start_broker
    e2e_start_recorder
    e2e_start_runtime
    e2e_register
    e2e_say "runtime $E2E_RUNTIME_UUID registered on port $E2E_PORT"
}

# --- publishing ---------------------------------------------------------------------

e2e_publish() {
    mosquitto_pub -h 127.0.0.1 -p "$E2E_PORT" -q 1 -t "$1" -m "$2"
}

# e2e_create OBJECT_ID MODULE_UUID FILE [ARGV_JSON [ENV_JSON [FILETYPE]]]
e2e_create() {
    local filetype="${6-WA}"
    e2e_publish "$E2E_CONTROL_TOPIC" "$(jq -nc \
        --arg id "$1" --arg uuid "$2" --arg file "$3" \
        --argjson argv "${4:-[]}" --argjson env "${5:-[]}" --arg filetype "$filetype" \
        --arg parent "$E2E_RUNTIME_UUID" \
        '{object_id: $id, action: "create", type: "req",
          data: {type: "module", uuid: $uuid, name: ("e2e-" + ($file | sub("\\.wasm$"; ""))),
                 parent: $parent, file: $file, filetype: $filetype, apis: ["wasm", "wasi"],
                 args: {argv: $argv, env: $env}, channels: [], status: "A"}}')"
}

# e2e_delete OBJECT_ID MODULE_UUID_OR_NAME
e2e_delete() {
    e2e_publish "$E2E_CONTROL_TOPIC" "$(jq -nc --arg id "$1" --arg uuid "$2" \
        '{object_id: $id, action: "delete", type: "req", data: {type: "module", uuid: $uuid}}')"
}

e2e_delete_runtime() {
    e2e_publish "$E2E_CONTROL_TOPIC" "$(jq -nc --arg id "$(e2e_uuid)" --arg uuid "$E2E_RUNTIME_UUID" \
        '{object_id: $id, action: "delete", type: "req", data: {type: "runtime", uuid: $uuid}}')"
}

# --- expectations -------------------------------------------------------------------

# e2e_find [jq options...] FILTER: the first output of FILTER over the recorded
# messages, each {tst, topic, payload, ..., index} where index is its position in the
# recording (1 = first). Empty when nothing matches.
e2e_find() {
    local filter="${*: -1}"
    jq -nc "${@:1:$#-1}" "[inputs] | to_entries[] | .value + {index: (.key + 1)} | $filter" \
        "$E2E_MESSAGES" 2>/dev/null | head -n 1
}

# e2e_expect DESCRIPTION [jq options...] FILTER: waits up to $E2E_TIMEOUT seconds for a
# recorded message for which FILTER yields output; prints that output. Gives up two
# seconds after the runtime process ended, if it did (messages still in flight).
e2e_expect() {
    local description="$1" match deadline runtime_gone=no
    shift
    deadline=$((SECONDS + E2E_TIMEOUT))
    while :; do
        match="$(e2e_find "$@")"
        if [[ -n "$match" ]]; then
            echo "$match"
            return 0
        fi
        if ((SECONDS >= deadline)); then
            if [[ "$runtime_gone" == yes ]]; then
                e2e_fail "no $description; the runtime process has ended"
            fi
            e2e_fail "no $description within ${E2E_TIMEOUT} s"
        fi
        if [[ "$runtime_gone" == no && -n "$E2E_RUNTIME_PID" ]] \
            && ! kill -0 "$E2E_RUNTIME_PID" 2>/dev/null; then
            runtime_gone=yes
            deadline=$((SECONDS + 2 < deadline ? SECONDS + 2 : deadline))
        fi
        sleep 0.1
    done
}

# All the bytes a module wrote on stdout (or stderr with `stderr`), as published.
e2e_output() {
    local topic
    if [[ "${2:-stdout}" == stderr ]]; then topic="$(stderr_topic "$1")"; else topic="$(stdout_topic "$1")"; fi
    jq -rj --arg topic "$topic" 'select(.topic == $topic) | .payload' "$E2E_MESSAGES"
}

# e2e_expect_line MODULE_UUID LINE [stdout|stderr]: waits for LINE as a whole line of
# the module's output.
e2e_expect_line() {
    local deadline=$((SECONDS + E2E_TIMEOUT))
    while :; do
        if e2e_output "$1" "${3:-stdout}" | grep -qxF -- "$2"; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            e2e_fail "module $1 did not write the line '$2' on ${3:-stdout} within ${E2E_TIMEOUT} s; it wrote: $(e2e_output "$1" "${3:-stdout}" | tail -n 5 | tr '\n' '|')"
        fi
        sleep 0.1
    done
}

# Waits for the response to request OBJECT_ID with result RESULT (default ok).
e2e_expect_response() {
    e2e_expect "'${2:-ok}' response to request '$1' on '$E2E_CONTROL_TOPIC'" \
        --arg topic "$E2E_CONTROL_TOPIC" --arg id "$1" --arg result "${2:-ok}" \
        'select(.topic == $topic) | .payload | fromjson?
         | select(.type == "resp" and .object_id == $id and .data.result == $result)'
}

# Waits for the `exited` notice of MODULE_UUID; prints it with its .index in the
# recording.
e2e_expect_exited() {
    e2e_expect "'exited' notice for module '$1' on '$E2E_CONTROL_TOPIC'" \
        --arg topic "$E2E_CONTROL_TOPIC" --arg uuid "$1" \
        'select(.topic == $topic) | . as $message | .payload | fromjson?
         | select(.action == "exited" and .type == "req" and .data.uuid == $uuid)
         | . + {index: $message.index}'
}

# Position in the recording of the last output message of MODULE_UUID (0 when none).
e2e_last_output_index() {
    jq -n --arg topic "$(stdout_topic "$1")" \
        '[[inputs] | to_entries[] | select(.value.topic == $topic) | .key + 1] | max // 0' \
        "$E2E_MESSAGES"
}

# e2e_expect_error DESCRIPTION CONDITION [jq options...]: waits for an error on the
# runtime's log topic for which the jq CONDITION holds (`.` is the parsed error);
# prints it.
e2e_expect_error() {
    e2e_expect "$1 on '$E2E_LOG_TOPIC'" --arg log_topic "$E2E_LOG_TOPIC" "${@:3}" \
        "select(.topic == \$log_topic) | .payload | fromjson?
         | select(.action == \"error\" and .type == \"resp\" and .data.result == \"error\")
         | select($2)"
}

# Waits for the runtime to unregister (runtime delete on its registration topic).
e2e_expect_unregister() {
    e2e_expect "unregistration (runtime delete) on '$E2E_REG_TOPIC'" \
        --arg topic "$E2E_REG_TOPIC" --arg uuid "$E2E_RUNTIME_UUID" \
        'select(.topic == $topic) | .payload | fromjson?
         | select(.action == "delete" and .data.type == "runtime" and .data.uuid == $uuid)'
}

# Waits up to $E2E_TIMEOUT seconds for the runtime process to end; sets
# E2E_RUNTIME_EXIT to its exit status.
e2e_expect_runtime_exit() {
    local deadline=$((SECONDS + E2E_TIMEOUT))
    while kill -0 "$E2E_RUNTIME_PID" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            e2e_fail "the runtime (pid $E2E_RUNTIME_PID) still runs ${E2E_TIMEOUT} s later"
        fi
        sleep 0.1
    done
    # shellcheck disable=SC2034 # read by the tests
    E2E_RUNTIME_EXIT=0
    # shellcheck disable=SC2034
    wait "$E2E_RUNTIME_PID" || E2E_RUNTIME_EXIT=$?
    E2E_RUNTIME_PID=""
}

# Files the runtime left in its state folder, apart from its kept uuid.
e2e_leftover_files() {
    if [[ -d "$E2E_TMP/.state" ]]; then
        find "$E2E_TMP/.state" -mindepth 1 ! -name runtime-uuid -print
    fi
}

e2e_pass() {
    e2e_say "PASS"
}

# --- Python modules in containers -----------------------------------------------------
# The container launcher (launcher.PY in conf/.appsettings.yaml) labels each container
# with the runtime's and the module's uuid and names it sideload-<module uuid>; a
# module's work folder is .state/modules/<module uuid>.

# Fails unless the engine answers and the runner image is there
# (scripts/engine.sh start sets both up); from then on clean-up removes whatever
# containers this runtime left.
e2e_require_engine() {
    command -v "$E2E_ENGINE" >/dev/null \
        || e2e_fail "the container engine '$E2E_ENGINE' is not installed (scripts/engine.sh start)"
    timeout 20 "$E2E_ENGINE" info >/dev/null 2>&1 \
        || e2e_fail "the container engine does not answer '$E2E_ENGINE info' (scripts/engine.sh start)"
    timeout 20 "$E2E_ENGINE" image inspect "$E2E_PY_IMAGE" >/dev/null 2>&1 \
        || e2e_fail "the runner image '$E2E_PY_IMAGE' is missing (scripts/engine.sh start)"
    E2E_ENGINE_USED=yes
}

# Ids of every container, running or not, labelled with this runtime's uuid (and with
# MODULE_UUID's when given), one a line.
e2e_containers() {
    local filters=(--filter "label=$E2E_LABEL_RUNTIME=$E2E_RUNTIME_UUID")
    if [[ -n "${1:-}" ]]; then
        filters+=(--filter "label=$E2E_LABEL_MODULE=$1")
    fi
    timeout 20 "$E2E_ENGINE" ps -a -q --no-trunc "${filters[@]}"
}

# Removes the containers of this runtime and those of E2E_EXTRA_CONTAINERS (clean-up).
e2e_remove_containers() {
    local ids
    ids="$(e2e_containers "" 2>/dev/null)"
    if [[ -n "$ids" ]]; then
        echo "[$E2E_TEST] removing containers left by the runtime: $(tr '\n' ' ' <<<"$ids")" >&2
        # shellcheck disable=SC2086 # one id a word
        timeout 30 "$E2E_ENGINE" rm -f $ids >/dev/null 2>&1
    fi
    if [[ ${#E2E_EXTRA_CONTAINERS[@]} -gt 0 ]]; then
        timeout 30 "$E2E_ENGINE" rm -f "${E2E_EXTRA_CONTAINERS[@]}" >/dev/null 2>&1
    fi
    return 0
}

# The work folder of MODULE_UUID under the runtime's state folder.
e2e_work_dir() { echo "$E2E_TMP/.state/modules/$1"; }

# e2e_create_py OBJECT_ID MODULE_UUID PROGRAM [ARGV_JSON [ENV_JSON]]: a create request
# for tests/programs/python/PROGRAM/PROGRAM.py (filetype PY; the whole folder is the
# program's files).
e2e_create_py() {
    e2e_publish "$E2E_CONTROL_TOPIC" "$(jq -nc \
        --arg id "$1" --arg uuid "$2" --arg program "$3" \
        --argjson argv "${4:-[]}" --argjson env "${5:-[]}" --arg parent "$E2E_RUNTIME_UUID" \
        '{object_id: $id, action: "create", type: "req",
          data: {type: "module", uuid: $uuid, name: ("e2e-py-" + $program), parent: $parent,
                 file: ("python/" + $program + "/" + $program + ".py"), filetype: "PY",
                 apis: [], args: {argv: $argv, env: $env}, channels: [], status: "A"}}')"
}

# e2e_expect_line_matching MODULE_UUID ERE [stdout|stderr]: waits for a whole line of
# the module's output matching the extended regular expression; prints the first one.
e2e_expect_line_matching() {
    local deadline=$((SECONDS + E2E_TIMEOUT)) line
    while :; do
        line="$(e2e_output "$1" "${3:-stdout}" | grep -E -m 1 -x -- "$2")" && {
            echo "$line"
            return 0
        }
        if ((SECONDS >= deadline)); then
            e2e_fail "module $1 wrote no line matching '$2' on ${3:-stdout} within ${E2E_TIMEOUT} s; it wrote: $(e2e_output "$1" "${3:-stdout}" | tail -n 5 | tr '\n' '|')"
        fi
        sleep 0.1
    done
}

# e2e_wait_until DESCRIPTION COMMAND...: waits up to $E2E_TIMEOUT seconds for COMMAND
# to succeed.
e2e_wait_until() {
    local description="$1" deadline=$((SECONDS + E2E_TIMEOUT))
    shift
    until "$@"; do
        if ((SECONDS >= deadline)); then
            e2e_fail "waited ${E2E_TIMEOUT} s in vain for: $description"
        fi
        sleep 0.2
    done
}
