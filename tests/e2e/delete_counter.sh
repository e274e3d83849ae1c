#!/usr/bin/env bash
# A delete request stops a running module: its `exited` notice follows and no output
# comes after it. A module can also be deleted by its name.
source "$(dirname "$0")/lib.sh"
e2e_start

module="$(e2e_uuid)"
e2e_say "create counter.wasm as module $module"
e2e_create "$(e2e_uuid)" "$module" counter.wasm
e2e_expect_line "$module" "count 2"

e2e_say "delete module $module"
e2e_delete "$(e2e_uuid)" "$module"
exited="$(e2e_expect_exited "$module")"

# counter.wasm writes a line a second: wait long enough for two more
sleep 2.5
last_output="$(e2e_last_output_index "$module")"
(($(jq .index <<<"$exited") > last_output)) \
    || e2e_fail "module $module wrote output after its 'exited' notice"
count="$(jq -n --arg topic "$E2E_CONTROL_TOPIC" --arg uuid "$module" \
    '[inputs | select(.topic == $topic) | .payload | fromjson? | select(.action == "exited" and .data.uuid == $uuid)] | length' \
    "$E2E_MESSAGES")"
[[ "$count" == 1 ]] || e2e_fail "module $module has $count 'exited' notices, expected 1"

named="$(e2e_uuid)"
e2e_say "create counter.wasm as module $named, then delete it by its name 'e2e-counter'"
e2e_create "$(e2e_uuid)" "$named" counter.wasm
e2e_expect_line "$named" "count 1"
e2e_delete "$(e2e_uuid)" "e2e-counter"
e2e_expect_exited "$named" >/dev/null

e2e_pass
