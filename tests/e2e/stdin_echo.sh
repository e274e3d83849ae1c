#!/usr/bin/env bash
# Lines published on a module's stdin topic reach the program in order (a newline is
# added to a payload without one); echo.wasm's answers come back on its stdout topic.
source "$(dirname "$0")/lib.sh"
e2e_start

module="$(e2e_uuid)"
request="$(e2e_uuid)"
e2e_say "create echo.wasm as module $module"
e2e_create "$request" "$module" echo.wasm
e2e_expect_response "$request" >/dev/null

for line in "first line" "second  line, two spaces" "third: ünïcödé"; do
    e2e_publish "$(stdin_topic "$module")" "$line"
    e2e_expect_line "$module" "echo: $line"
done
e2e_publish "$(stdin_topic "$module")" $'with newline\n'
e2e_expect_line "$module" "echo: with newline"

expected=$'echo: first line\necho: second  line, two spaces\necho: third: ünïcödé\necho: with newline'
[[ "$(e2e_output "$module")" == "$expected" ]] \
    || e2e_fail "output is '$(e2e_output "$module")', expected '$expected'"

e2e_delete "$(e2e_uuid)" "$module"
e2e_expect_exited "$module" >/dev/null

e2e_pass
