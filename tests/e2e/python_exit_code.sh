#!/usr/bin/env bash
# A Python module that ends on its own with a non-zero status: its output arrives,
# then the `exited` notice carries the exit code, and its container is removed.
# Containers start slower than WebAssembly modules, more so on a loaded machine.
E2E_TIMEOUT="${E2E_TIMEOUT:-30}"
source "$(dirname "$0")/lib.sh"
e2e_require_engine
e2e_start

module="$(e2e_uuid)"
request="$(e2e_uuid)"
e2e_say "create python/exit_code 7 as module $module"
e2e_create_py "$request" "$module" exit_code '["7"]'
e2e_expect_response "$request" >/dev/null
e2e_expect_line "$module" bye

exited="$(e2e_expect_exited "$module")"
code="$(jq '[.. | objects | to_entries[] | select(.key | test("code")) | .value | numbers] | first' <<<"$exited")"
[[ "$code" == 7 ]] || e2e_fail "the exited notice carries exit code '$code', expected 7: $exited"
(($(jq .index <<<"$exited") > $(e2e_last_output_index "$module"))) \
    || e2e_fail "the 'exited' notice came before the module's last output"

no_container() { [[ -z "$(e2e_containers "$module")" ]]; }
e2e_wait_until "no container left for module $module" no_container

e2e_pass
