#!/usr/bin/env bash
# Orphan sweep: the runtime is killed with SIGKILL while a Python module that ignores
# SIGTERM runs; its container survives. Started again with the same uuid, the runtime
# removes that container, names it in its log, and removes the crashed run's work
# folder. A container without our labels is never touched.
# Containers start slower than WebAssembly modules, more so on a loaded machine.
E2E_TIMEOUT="${E2E_TIMEOUT:-30}"
source "$(dirname "$0")/lib.sh"
e2e_require_engine

bystander="sideload-e2e-bystander-$RANDOM$RANDOM"
E2E_EXTRA_CONTAINERS+=("$bystander")
timeout 60 "$E2E_ENGINE" run -d --network none --name "$bystander" "$E2E_PY_IMAGE" \
    python3 -c 'import time; time.sleep(3600)' >/dev/null \
    || e2e_fail "could not start the bystander container '$bystander'"

e2e_start
module="$(e2e_uuid)"
request="$(e2e_uuid)"
e2e_say "create python/stubborn as module $module"
e2e_create_py "$request" "$module" stubborn
e2e_expect_response "$request" >/dev/null
e2e_expect_line "$module" ready
container="$(e2e_containers "$module")"
[[ -n "$container" ]] || e2e_fail "no container labelled with module $module"

e2e_say "kill -9 the runtime (pid $E2E_RUNTIME_PID)"
kill -KILL "$E2E_RUNTIME_PID"
wait "$E2E_RUNTIME_PID" 2>/dev/null || true
E2E_RUNTIME_PID=""
[[ "$(e2e_containers "$module")" == "$container" ]] \
    || e2e_fail "the module's container '$container' went with the runtime; the test needs it left over"
[[ -d "$(e2e_work_dir "$module")" ]] \
    || e2e_fail "the module's work folder went with the runtime; the test needs it left over"

e2e_say "start the runtime again with uuid $E2E_RUNTIME_UUID"
mv "$E2E_RUNTIME_LOG" "$E2E_TMP/runtime-killed.log"
: >"$E2E_MESSAGES"
e2e_start_runtime
e2e_register

no_container() { [[ -z "$(e2e_containers "$module")" ]]; }
e2e_wait_until "the left-over container '$container' removed" no_container
no_work_dir() { [[ ! -e "$(e2e_work_dir "$module")" ]]; }
e2e_wait_until "the crashed run's work folder '$(e2e_work_dir "$module")' removed" no_work_dir
names_container() { grep -q -E "container.*(sideload-$module|${container:0:12})" "$E2E_RUNTIME_LOG"; }
e2e_wait_until "a line of the runtime's log naming the removed container 'sideload-$module' (${container:0:12})" \
    names_container
e2e_say "log: $(grep -m 1 -E "container.*(sideload-$module|${container:0:12})" "$E2E_RUNTIME_LOG")"

[[ "$(timeout 20 "$E2E_ENGINE" inspect -f '{{.State.Running}}' "$bystander" 2>&1)" == true ]] \
    || e2e_fail "the bystander container '$bystander' (no labels) does not run any more"

e2e_pass
