#!/usr/bin/env bash
# A module that traps or exits with an error status ends with an `exited` notice and
# leaves the runtime running; a module spinning without host calls is stopped by a
# delete.
source "$(dirname "$0")/lib.sh"
e2e_start

trapping="$(e2e_uuid)"
e2e_say "create trap.wasm as module $trapping"
e2e_create "$(e2e_uuid)" "$trapping" trap.wasm
e2e_expect_line "$trapping" "about to trap"
e2e_expect_exited "$trapping" >/dev/null

failing="$(e2e_uuid)"
e2e_say "create exit_code.wasm 7 as module $failing"
e2e_create "$(e2e_uuid)" "$failing" exit_code.wasm '["7"]'
e2e_expect_line "$failing" "exiting with 7"
e2e_expect_exited "$failing" >/dev/null

spinning="$(e2e_uuid)"
e2e_say "create spin.wasm as module $spinning, then delete it"
e2e_create "$(e2e_uuid)" "$spinning" spin.wasm
e2e_expect_line "$spinning" "spinning"
e2e_delete "$(e2e_uuid)" "$spinning"
E2E_TIMEOUT=5 e2e_expect_exited "$spinning" >/dev/null

kill -0 "$E2E_RUNTIME_PID" 2>/dev/null || e2e_fail "the runtime is no longer running"
e2e_pass
