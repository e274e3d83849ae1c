#!/usr/bin/env bash
# Python modules run in containers: argv_env.py's one JSON line carries its arguments,
# the request's env and PROGRAM_OBJECT_ID, and its program folder; it ends on its own
# with an `exited` notice. echo.py answers a stdin line on stdout; a delete ends it
# with `exited`. Afterwards no container labelled with the runtime's uuid is left and
# the modules' work folders are gone.
# Containers start slower than WebAssembly modules, more so on a loaded machine.
E2E_TIMEOUT="${E2E_TIMEOUT:-30}"
source "$(dirname "$0")/lib.sh"
e2e_require_engine
e2e_start

module="$(e2e_uuid)"
request="$(e2e_uuid)"
e2e_say "create python/argv_env as module $module"
e2e_create_py "$request" "$module" argv_env '["one", "two words"]' '["SL_GREETING=hi there"]'
e2e_expect_response "$request" >/dev/null
report="$(e2e_expect_line_matching "$module" '\{.*\}')"
e2e_say "argv_env wrote $report"
check() {
    [[ "$(jq -c "$1" <<<"$report")" == "$2" ]] \
        || e2e_fail "argv_env's $1 is '$(jq -c "$1" <<<"$report")', expected '$2'"
}
check .argv '["one","two words"]'
check .env.SL_GREETING '"hi there"'
check .env.PROGRAM_OBJECT_ID "\"$module\""
check '.files | index("argv_env.py") != null' true
# The shipped conf has no MQTT credentials: the file is there, with nulls.
check '.files | index(".arena_mqtt_auth") != null' true
check .auth_user null
check .auth_token_set false
e2e_expect_exited "$module" >/dev/null

echo_module="$(e2e_uuid)"
request="$(e2e_uuid)"
e2e_say "create python/echo as module $echo_module"
e2e_create_py "$request" "$echo_module" echo
e2e_expect_response "$request" >/dev/null
e2e_expect_line "$echo_module" ready
e2e_publish "$(stdin_topic "$echo_module")" "hello from mqtt"
e2e_expect_line "$echo_module" "echo: hello from mqtt"
[[ -d "$(e2e_work_dir "$echo_module")" ]] \
    || e2e_fail "the running module has no work folder '$(e2e_work_dir "$echo_module")'"

delete_request="$(e2e_uuid)"
e2e_delete "$delete_request" "$echo_module"
e2e_expect_response "$delete_request" >/dev/null
e2e_expect_exited "$echo_module" >/dev/null

no_containers() { [[ -z "$(e2e_containers "")" ]]; }
no_work_dirs() { [[ ! -e "$(e2e_work_dir "$module")" && ! -e "$(e2e_work_dir "$echo_module")" ]]; }
e2e_wait_until "no container labelled $E2E_LABEL_RUNTIME=$E2E_RUNTIME_UUID" no_containers
e2e_wait_until "the work folders of both modules removed" no_work_dirs

e2e_pass
