#!/usr/bin/env bash
# stdout and stderr of a module go to their own topics.
source "$(dirname "$0")/lib.sh"
e2e_start

module="$(e2e_uuid)"
e2e_create "$(e2e_uuid)" "$module" stderr.wasm
e2e_expect_line "$module" "to stdout" stdout
e2e_expect_line "$module" "to stderr" stderr
e2e_expect_exited "$module" >/dev/null
[[ "$(e2e_output "$module" stdout)" == "to stdout" ]] \
    || e2e_fail "stdout topic carried '$(e2e_output "$module" stdout)', expected only 'to stdout'"
[[ "$(e2e_output "$module" stderr)" == "to stderr" ]] \
    || e2e_fail "stderr topic carried '$(e2e_output "$module" stderr)', expected only 'to stderr'"

e2e_pass
