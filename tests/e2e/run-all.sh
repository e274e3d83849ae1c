#!/usr/bin/env bash
# Runs every end-to-end test in tests/e2e/ (each against its own broker and runtime)
# and ends with the line "N passed, N failed" (", N skipped" when tests of Python
# modules were skipped for want of a container engine); exits non-zero when any failed.
# A failing test's output (runtime log, messages seen) is printed.
#
# Usage: tests/e2e/run-all.sh [test-name ...]   (default: all)
# Environment: SIDELOAD_BIN (default: a debug build made here once), E2E_TIMEOUT,
# SIDELOAD_REQUIRE_ENGINE=1 (run python_* tests even when the engine is not there).
set -euo pipefail

cd "$(dirname "$0")/../.."

if [[ -z "${SIDELOAD_BIN:-}" ]]; then
    echo "e2e: building the runtime (cargo build, debug)"
    cargo build --quiet --bin sideload
    SIDELOAD_BIN="$(cargo metadata --no-deps --format-version 1 | jq -r .target_directory)/debug/sideload"
fi
export SIDELOAD_BIN

tests=()
if [[ $# -gt 0 ]]; then
    for name in "$@"; do
        tests+=("tests/e2e/${name%.sh}.sh")
    done
else
    for file in tests/e2e/*.sh; do
        case "$(basename "$file")" in
        lib.sh | run-all.sh) ;;
        *) tests+=("$file") ;;
        esac
    done
fi

# Tests of Python modules (python_*) need a container engine and the runner image:
# without them they are skipped, unless SIDELOAD_REQUIRE_ENGINE=1 (as `make test` sets).
engine_missing=""
runner_image="${SIDELOAD_RUNNER_IMAGE:-slframework/slruntime-python-runner:latest}"
if ! timeout 20 docker info >/dev/null 2>&1; then
    engine_missing="the docker engine does not answer 'docker info'"
elif ! timeout 20 docker image inspect "$runner_image" >/dev/null 2>&1; then
    engine_missing="the runner image '$runner_image' is missing"
fi

passed=0
failed=0
skipped=0
failures=()
log="$(mktemp "${TMPDIR:-/tmp}/sideload-e2e-run.XXXXXX")"
trap 'rm -f "$log"' EXIT

for test in "${tests[@]}"; do
    name="$(basename "$test" .sh)"
    if [[ "$name" == python_* && -n "$engine_missing" && "${SIDELOAD_REQUIRE_ENGINE:-0}" != 1 ]]; then
        skipped=$((skipped + 1))
        echo "e2e: SKIP $name ($engine_missing; scripts/engine.sh start sets it up)"
        continue
    fi
    start=$SECONDS
    if bash "$test" >"$log" 2>&1; then
        passed=$((passed + 1))
        echo "e2e: PASS $name ($((SECONDS - start)) s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "e2e: FAIL $name ($((SECONDS - start)) s); its output:"
        sed 's/^/    /' "$log"
    fi
done

if [[ $failed -gt 0 ]]; then
    echo "e2e: failed: ${failures[*]}"
fi
if [[ $skipped -gt 0 ]]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[[ $failed -eq 0 ]]
