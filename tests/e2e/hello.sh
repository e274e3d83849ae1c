#!/usr/bin/env bash
# A create request for hello.wasm is answered ok, the module's stdout reaches its
# stdout topic line by line (arguments and environment included), and the `exited`
# notice follows all of its output.
source "$(dirname "$0")/lib.sh"
e2e_start

module="$(e2e_uuid)"
request="$(e2e_uuid)"
e2e_say "create hello.wasm as module $module"
e2e_create "$request" "$module" hello.wasm '["one", "two"]' '["GREETING=hi there"]'

e2e_expect_response "$request" >/dev/null
e2e_expect_line "$module" "hello from wasm"
e2e_expect_line "$module" "argv: one two"
e2e_expect_line "$module" "env: GREETING=hi there"

exited="$(e2e_expect_exited "$module")"
last_output="$(e2e_last_output_index "$module")"
(($(jq .index <<<"$exited") > last_output)) \
    || e2e_fail "the 'exited' notice came before the module's last output"
[[ "$(e2e_output "$module" | head -n 1)" == "hello from wasm" ]] \
    || e2e_fail "the first line of output is '$(e2e_output "$module" | head -n 1)', expected 'hello from wasm'"

e2e_pass
