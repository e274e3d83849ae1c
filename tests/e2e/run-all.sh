#!/usr/bin/env bash
# Runs every end-to-end test in tests/e2e/ (each against its own broker and runtime)
# and ends with the line "N passed, N failed"; exits non-zero when any failed.
# A failing test's output (runtime log, messages seen) is printed.
#
# Usage: tests/e2e/run-all.sh [test-name ...]   (default: all)
# Environment: SIDELOAD_BIN (default: a debug build made here once), E2E_TIMEOUT.
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

passed=0
failed=0
failures=()
log="$(mktemp "${TMPDIR:-/tmp}/sideload-e2e-run.XXXXXX")"
trap 'rm -f "$log"' EXIT

for test in "${tests[@]}"; do
    name="$(basename "$test" .sh)"
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
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
