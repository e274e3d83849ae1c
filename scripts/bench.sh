#!/usr/bin/env bash
# Prints the runtime's numbers, each with its unit and how it was measured:
#   cold release build time (with --cold-build: a fresh target folder, slow),
#   stripped release binary size, idle memory after registration, create-to-first-
#   output latency (hello.wasm), stdin-to-echo latency (echo.wasm), delete-to-exited
#   latency of a module spinning without host calls (spin.wasm), stdout throughput
#   (noisy.wasm), peak memory.
# Runs everything locally: a private mosquitto on a free port and the release binary
# (tests/e2e/lib.sh does the set-up); the MQTT side is scripts/mqtt_bench.py (Python's
# standard library only).
#
# Usage: scripts/bench.sh [--cold-build] [--runs N] [--lines N]
# Environment: SIDELOAD_BIN (measure this binary instead of building one).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

cold_build=no
runs=20
lines=20000
while [[ $# -gt 0 ]]; do
    case "$1" in
    --cold-build) cold_build=yes ;;
    --runs) runs="$2"; shift ;;
    --lines) lines="$2"; shift ;;
    *)
        echo "usage: scripts/bench.sh [--cold-build] [--runs N] [--lines N]" >&2
        exit 2
        ;;
    esac
    shift
done

scripts/setup.sh >/dev/null
results=()
result() {
    printf '%-28s %12s %-8s %s\n' "$1" "$2" "$3" "$4"
    results+=("$(printf '%-28s %12s %s' "$1" "$2" "$3")")
}
echo "bench: $(nproc) cores, $(uname -m), $(rustc --version)"

target_dir="$(cargo metadata --no-deps --format-version 1 | jq -r .target_directory)"

if [[ "$cold_build" == yes ]]; then
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
stripped="$(mktemp)"
strip -o "$stripped" "$binary" 2>/dev/null || cp "$binary" "$stripped"
result binary_size "$(( $(stat -c %s "$stripped") / 1024 ))" KiB "release binary after strip: $binary"
rm -f "$stripped"

export SIDELOAD_BIN="$binary"
# shellcheck source=../tests/e2e/lib.sh
source "$root/tests/e2e/lib.sh"
e2e_start >/dev/null

# registration is answered: let start-up allocations settle before reading memory
sleep 2
rss_kib() { awk -v key="$1:" '$1 == key { print $2 }' "/proc/$E2E_RUNTIME_PID/status"; }
result idle_rss "$(rss_kib VmRSS)" KiB "VmRSS of the runtime 2 s after registration, no modules"

measure() {
    python3 scripts/mqtt_bench.py --port "$E2E_PORT" --realm "$E2E_REALM" \
        --runtime "$E2E_RUNTIME_UUID" "$@"
}
for measurement in "create-latency --runs $runs" "echo-latency --runs $runs" \
    "stop-latency --runs 10" "throughput --lines $lines"; do
    # shellcheck disable=SC2086 # the options are split on purpose
    line="$(measure $measurement)"
    read -r name value unit how <<<"$line"
    result "$name" "$value" "$unit" "$how"
done

result peak_rss "$(rss_kib VmHWM)" KiB "VmHWM of the runtime after all the above"

echo
echo "bench: summary"
printf '  %s\n' "${results[@]}"
