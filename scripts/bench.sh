#!/usr/bin/env bash
# Prints the runtime's numbers, each with its unit and how it was measured:
#   cold release build time (with --cold-build: a fresh target folder, slow),
#   stripped release binary size, idle memory after registration, create-to-first-
#   output latency (hello.wasm), stdin-to-echo latency (echo.wasm), delete-to-exited
#   latency of a module spinning without host calls (spin.wasm), stdout throughput
#   (noisy.wasm), peak memory.
# Python section (run when a container engine answers and the runner image is there,
# or alone with --python): create-to-first-output latency of a Python module
# (python/hello) beside a bare `docker run` of the same image and program, stdout
# throughput of python/printer (lines arrived in order), runtime RSS with 10
# python/idle modules running.
# Runs everything locally: a private mosquitto on a free port and the release binary
# (tests/e2e/lib.sh does the set-up); the MQTT side is scripts/mqtt_bench.py (Python's
# standard library only).
#
# Usage: scripts/bench.sh [--cold-build] [--runs N] [--lines N] [--python | --no-python]
#   --python     only the Python section (fails when the engine or image is missing)
#   --no-python  skip the Python section
# Environment: SIDELOAD_BIN (measure this binary instead of building one),
# SIDELOAD_RUNNER_IMAGE (default slframework/slruntime-python-runner:latest).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

cold_build=no
runs=20
lines=20000
python=auto
while [[ $# -gt 0 ]]; do
    case "$1" in
    --cold-build) cold_build=yes ;;
    --runs) runs="$2"; shift ;;
    --lines) lines="$2"; shift ;;
    --python) python=only ;;
    --no-python) python=no ;;
    *)
        echo "usage: scripts/bench.sh [--cold-build] [--runs N] [--lines N] [--python | --no-python]" >&2
        exit 2
        ;;
    esac
    shift
done

scripts/setup.sh >/dev/null
runner_image="${SIDELOAD_RUNNER_IMAGE:-slframework/slruntime-python-runner:latest}"
if [[ "$python" != no ]]; then
    why_not=""
    if ! timeout 20 docker info >/dev/null 2>&1; then
        why_not="the docker engine does not answer (make engine)"
    elif ! timeout 20 docker image inspect "$runner_image" >/dev/null 2>&1; then
        why_not="the runner image '$runner_image' is missing (make engine)"
    fi
    if [[ -n "$why_not" ]]; then
        [[ "$python" == only ]] && { echo "bench: --python: $why_not" >&2; exit 1; }
        echo "bench: skipping the Python section: $why_not"
        python=no
    fi
fi
results=()
result() {
    printf '%-28s %12s %-8s %s\n' "$1" "$2" "$3" "$4"
    results+=("$(printf '%-28s %12s %s' "$1" "$2" "$3")")
}
echo "bench: $(nproc) cores, $(uname -m), $(rustc --version)"

target_dir="$(cargo metadata --no-deps --format-version 1 | jq -r .target_directory)"

if [[ "$cold_build" == yes && "$python" != only ]]; then
    cold_dir="$target_dir/bench-cold-build"
    rm -rf "$cold_dir"
    echo "bench: cold release build into $cold_dir (dependencies already downloaded) ..."
    start=$(date +%s.%N)
    CARGO_TARGET_DIR="$cold_dir" cargo build --release --quiet --bin sideload
    end=$(date +%s.%N)
    rm -rf "$cold_dir"
    result cold_release_build "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')" s \
        "cargo build --release in an empty target folder, wall clock, $(nproc) cores"
fi

if [[ -n "${SIDELOAD_BIN:-}" ]]; then
    binary="$SIDELOAD_BIN"
else
    cargo build --release --quiet --bin sideload
    binary="$target_dir/release/sideload"
fi
if [[ "$python" != only ]]; then
    stripped="$(mktemp)"
    strip -o "$stripped" "$binary" 2>/dev/null || cp "$binary" "$stripped"
    result binary_size "$(( $(stat -c %s "$stripped") / 1024 ))" KiB "release binary after strip: $binary"
    rm -f "$stripped"
fi

export SIDELOAD_BIN="$binary"
# shellcheck source=../tests/e2e/lib.sh
source "$root/tests/e2e/lib.sh"
e2e_start >/dev/null

rss_kib() { awk -v key="$1:" '$1 == key { print $2 }' "/proc/$E2E_RUNTIME_PID/status"; }
measure() {
    python3 scripts/mqtt_bench.py --port "$E2E_PORT" --realm "$E2E_REALM" \
        --runtime "$E2E_RUNTIME_UUID" "$@"
}

if [[ "$python" != only ]]; then
    # registration is answered: let start-up allocations settle before reading memory
    sleep 2
    result idle_rss "$(rss_kib VmRSS)" KiB "VmRSS of the runtime 2 s after registration, no modules"

    for measurement in "create-latency --runs $runs" "echo-latency --runs $runs" \
        "stop-latency --runs 10" "throughput --lines $lines"; do
        # shellcheck disable=SC2086 # the options are split on purpose
        line="$(measure $measurement)"
        read -r name value unit how <<<"$line"
        result "$name" "$value" "$unit" "$how"
    done

    result peak_rss "$(rss_kib VmHWM)" KiB "VmHWM of the runtime after all the above"
fi

if [[ "$python" != no ]]; then
    echo "bench: Python modules in containers (image $runner_image)"
    # A failed Python measurement is reported and the others still run.
    python_failed=0
    for measurement in "py-create-latency --runs 10" \
        "docker-run-latency --runs 10 --image $runner_image --folder $root/tests/programs/python/hello" \
        "py-throughput --lines 20000" "py-rss --modules 10 --pid $E2E_RUNTIME_PID"; do
        # shellcheck disable=SC2086 # the options are split on purpose
        if line="$(measure $measurement)"; then
            read -r name value unit how <<<"$line"
            result "$name" "$value" "$unit" "$how"
        else
            python_failed=1
            echo "bench: '${measurement%% *}' failed (its error is above)" >&2
        fi
    done
fi

echo
echo "bench: summary"
printf '  %s\n' "${results[@]}"
[[ "${python_failed:-0}" == 0 ]]
