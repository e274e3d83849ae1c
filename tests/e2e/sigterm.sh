#!/usr/bin/env bash
# SIGTERM stops every module (each gets its `exited` notice), unregisters the runtime
# and ends the process with status 0, leaving no module files behind.
source "$(dirname "$0")/lib.sh"
e2e_start

module="$(e2e_uuid)"
e2e_create "$(e2e_uuid)" "$module" counter.wasm
e2e_expect_line "$module" "count 1"

e2e_say "send SIGTERM to the runtime (pid $E2E_RUNTIME_PID)"
kill -TERM "$E2E_RUNTIME_PID"
e2e_expect_runtime_exit
[[ "$E2E_RUNTIME_EXIT" == 0 ]] || e2e_fail "the runtime exited with status $E2E_RUNTIME_EXIT, expected 0"
e2e_expect_exited "$module" >/dev/null
e2e_expect_unregister >/dev/null
leftovers="$(e2e_leftover_files)"
[[ -z "$leftovers" ]] || e2e_fail "the runtime left files behind: $leftovers"

e2e_pass
