#!/usr/bin/env bash
# Bad requests never stop the runtime; each is reported on its log topic:
# a non-JSON payload (error with a new object_id), a create with an unknown filetype
# and a create for a missing program (errors carrying the request's object_id).
# Afterwards the runtime still runs modules.
source "$(dirname "$0")/lib.sh"
e2e_start

e2e_say "publish a non-JSON payload on the control topic"
e2e_publish "$E2E_CONTROL_TOPIC" "this is not json {"
error="$(e2e_expect_error "error for a non-JSON request" \
    '(.object_id | type) == "string" and (.object_id | length) > 0')"
[[ -n "$(jq -r '.data.details.desc // empty' <<<"$error")" ]] \
    || e2e_fail "the error for a non-JSON request has no data.details.desc: $error"

request="$(e2e_uuid)"
e2e_say "create with filetype 'XX' (request $request)"
e2e_create "$request" "$(e2e_uuid)" hello.wasm '[]' '[]' XX
error="$(e2e_expect_error "error for request '$request' (filetype 'XX')" \
    '.object_id == $id' --arg id "$request")"
grep -q XX <<<"$error" || e2e_fail "the error does not name the filetype 'XX': $error"

request="$(e2e_uuid)"
absent="$(e2e_uuid)"
e2e_say "create for a program that does not exist (request $request)"
e2e_create "$request" "$absent" no-such-program.wasm
e2e_expect "error for request '$request' (missing program) on the log or control topic" \
    --arg id "$request" --arg log "$E2E_LOG_TOPIC" --arg control "$E2E_CONTROL_TOPIC" \
    'select(.topic == $log or .topic == $control) | .payload | fromjson?
     | select(.object_id == $id and .data.result == "error")' >/dev/null
exited="$(e2e_find --arg topic "$E2E_CONTROL_TOPIC" --arg uuid "$absent" \
    'select(.topic == $topic) | .payload | fromjson? | select(.action == "exited" and .data.uuid == $uuid)')"
[[ -z "$exited" ]] || e2e_fail "a module that never started got an 'exited' notice: $exited"

e2e_say "the runtime still runs hello.wasm"
module="$(e2e_uuid)"
e2e_create "$(e2e_uuid)" "$module" hello.wasm
e2e_expect_line "$module" "hello from wasm"
e2e_expect_exited "$module" >/dev/null
kill -0 "$E2E_RUNTIME_PID" 2>/dev/null || e2e_fail "the runtime is no longer running"

e2e_pass
