#!/usr/bin/env bash
# The container engine the Python modules and their tests need: Debian's docker.io,
# a running dockerd, and the Python runner image (built offline with
# containers/build-offline-image.sh when missing).
#
# Usage: scripts/engine.sh COMMAND [--background-image]
#   start       install docker.io when there is no docker, start dockerd when `docker
#               info` fails (in the background, logging to $STATE/dockerd.log), then
#               build the runner image when it is missing (installs debootstrap)
#     --background-image
#               build the image in the background (log: $STATE/image-build.log) and
#               return once the engine is up; `wait-image` waits for it
#   wait-image  wait for a background image build (bounded); build the image here when
#               none ran and it is missing; fail when the image is not there after
#   stop        stop the dockerd this script started (never one it did not start)
#   status      what is installed, running, built
#
# Environment:
#   SIDELOAD_RUNNER_IMAGE  image to make sure of (default slframework/slruntime-python-runner:latest)
#   SIDELOAD_ENGINE_STATE  pid files and logs (default /tmp/sideload-engine)
#   SIDELOAD_DOCKERD_ARGS  options for dockerd; by default none, and `--iptables=false`
#                          when dockerd cannot start with its iptables rules (containers
#                          then reach the host and each other but not the internet)
#   ENGINE_TIMEOUT         seconds to wait for dockerd (default 60)
#   IMAGE_TIMEOUT          seconds to wait for the image build (default 900)
#
# Runs as root (as CI does); installing packages goes through scripts/setup.sh.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
image="${SIDELOAD_RUNNER_IMAGE:-slframework/slruntime-python-runner:latest}"
state="${SIDELOAD_ENGINE_STATE:-/tmp/sideload-engine}"
engine_timeout="${ENGINE_TIMEOUT:-60}"
image_timeout="${IMAGE_TIMEOUT:-900}"
dockerd_pid_file="$state/dockerd.pid"
dockerd_log="$state/dockerd.log"
build_pid_file="$state/image-build.pid"
build_status_file="$state/image-build.status"
build_log="$state/image-build.log"

say() { echo "engine: $*"; }
die() {
    echo "engine: $*" >&2
    exit 1
}
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

engine_up() { docker info >/dev/null 2>&1; }
image_present() { docker image inspect "$image" >/dev/null 2>&1; }
# Whether the image's /entrypoint.sh is this checkout's (an image built before a change
# to it would test the old one).
image_current() {
    docker run --rm --network none "$image" cat /entrypoint.sh 2>/dev/null |
        cmp -s - "$root/containers/python-runner/entrypoint.sh"
}
alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

ensure_packages() {
    "$root/scripts/setup.sh" --only "$@" || die "could not install $*"
}

# Waits up to $engine_timeout seconds for `docker info`, or until the dockerd with pid
# $1 (when given) has ended.
wait_engine() {
    local pid="${1:-}" deadline=$((SECONDS + engine_timeout))
    while ! engine_up; do
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.2
    done
}

# Starts dockerd with the options given, detached from this shell; records its pid.
launch_dockerd() {
    say "starting dockerd${*:+ $*} (log: $dockerd_log)"
    {
        echo "=== $(date -u +%FT%TZ) dockerd $*"
    } >>"$dockerd_log"
    setsid dockerd "$@" </dev/null >>"$dockerd_log" 2>&1 &
    echo $! >"$dockerd_pid_file"
}

start_engine() {
    if engine_up; then
        say "docker engine is up ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
        return
    fi
    if ! command -v docker >/dev/null || ! command -v dockerd >/dev/null; then
        say "installing Debian's docker.io"
        ensure_packages docker.io
    fi
    # A dockerd may be starting already (another make, a service): wait for it first.
    if [[ -S /var/run/docker.sock ]] && pgrep -x dockerd >/dev/null; then
        say "a dockerd runs already; waiting for it to answer"
        wait_engine || die "the running dockerd does not answer 'docker info' within ${engine_timeout} s"
        return
    fi
    local pid
    if [[ -n "${SIDELOAD_DOCKERD_ARGS:-}" ]]; then
        # shellcheck disable=SC2086 # options are split on purpose
        launch_dockerd $SIDELOAD_DOCKERD_ARGS
        pid="$(cat "$dockerd_pid_file")"
        wait_engine "$pid" || fail_engine "$pid"
    else
        launch_dockerd
        pid="$(cat "$dockerd_pid_file")"
        if ! wait_engine "$pid"; then
            if kill -0 "$pid" 2>/dev/null; then
                fail_engine "$pid"
            fi
            say "dockerd ended at start-up; trying again with --iptables=false. Its last error:"
            grep -E 'level=(error|fatal)|failed to start' "$dockerd_log" | tail -n 2 | sed 's/^/    /'
            launch_dockerd --iptables=false
            pid="$(cat "$dockerd_pid_file")"
            wait_engine "$pid" || fail_engine "$pid"
        fi
    fi
    say "docker engine is up (dockerd pid $pid)"
}

fail_engine() {
    tail -n 20 "$dockerd_log" >&2
    if kill -0 "$1" 2>/dev/null; then
        kill -TERM "$1" 2>/dev/null || true
    fi
    rm -f "$dockerd_pid_file"
    die "dockerd did not come up within ${engine_timeout} s (its log: $dockerd_log, last lines above)"
}

# The tests' Python programs need the standard library (json, signal, ...): an image
# with python3-minimal alone is not enough. Fails with what to do.
check_image() {
    local out
    if ! out="$(timeout 60 docker run --rm --network none "$image" \
        python3 -c 'import json, os, signal, sys, time' 2>&1)"; then
        echo "$out" | tail -n 3 >&2
        die "image '$image' cannot run the test programs (Python's standard library is" \
            "missing, see above); rebuild it: make runner-image" \
            "(containers/build-offline-image.sh --force --tag $image)"
    fi
}

build_image() {
    "$root/containers/build-offline-image.sh" --tag "$image" "$@"
}

start_image_build() {
    local force=()
    if image_present; then
        if image_current; then
            say "image '$image' is present"
            return
        fi
        say "image '$image' has another /entrypoint.sh than containers/python-runner/; rebuilding it"
        force=(--force)
    fi
    ensure_packages debootstrap
    if [[ "${1:-}" == background ]]; then
        if alive "$build_pid_file"; then
            say "an image build runs already (pid $(cat "$build_pid_file"))"
            return
        fi
        rm -f "$build_status_file"
        say "building image '$image' in the background (log: $build_log)"
        (
            status=0
            build_image "${force[@]}" >"$build_log" 2>&1 || status=$?
            echo "$status" >"$build_status_file"
        ) </dev/null >/dev/null 2>&1 &
        echo $! >"$build_pid_file"
    else
        say "building image '$image'"
        build_image "${force[@]}"
    fi
}

wait_image() {
    if alive "$build_pid_file"; then
        local pid deadline=$((SECONDS + image_timeout))
        pid="$(cat "$build_pid_file")"
        say "waiting for the image build (pid $pid, up to ${image_timeout} s)"
        while kill -0 "$pid" 2>/dev/null; do
            ((SECONDS < deadline)) || die "the image build (pid $pid) still runs after ${image_timeout} s; its log: $build_log"
            sleep 0.5
        done
    fi
    if [[ -f "$build_status_file" ]]; then
        local status
        status="$(cat "$build_status_file")"
        sed 's/^/    /' "$build_log"
        rm -f "$build_status_file" "$build_pid_file"
        [[ "$status" == 0 ]] || die "the image build failed with status $status (its output is above)"
    fi
    if ! image_present || ! image_current; then
        engine_up || die "the docker engine is not up (scripts/engine.sh start)"
        start_image_build
    fi
    image_present || die "image '$image' is missing after the build"
    check_image
    say "image '$image' is present and runs python3 with its standard library"
}

stop_engine() {
    if ! alive "$dockerd_pid_file"; then
        rm -f "$dockerd_pid_file"
        say "no dockerd started by this script runs; nothing to stop"
        return
    fi
    local pid deadline
    pid="$(cat "$dockerd_pid_file")"
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]] \
        || die "pid $pid of $dockerd_pid_file is not a dockerd; not stopping it"
    say "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "dockerd (pid $pid) still runs after 30 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$dockerd_pid_file"
}

status() {
    if command -v docker >/dev/null; then
        say "docker CLI: $(command -v docker)"
    else
        say "docker CLI: not installed"
    fi
    if engine_up; then
        say "daemon: up, server $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')"
    else
        say "daemon: down"
    fi
    if alive "$dockerd_pid_file"; then
        say "dockerd started by this script: pid $(cat "$dockerd_pid_file") (log: $dockerd_log)"
    fi
    if alive "$build_pid_file"; then
        say "image build: running (pid $(cat "$build_pid_file"), log: $build_log)"
    elif [[ -f "$build_status_file" ]]; then
        say "image build: ended with status $(cat "$build_status_file") (log: $build_log)"
    fi
    if image_present; then
        say "image '$image': present, $(($(docker image inspect --format '{{.Size}}' "$image") / 1000000)) MB"
    else
        say "image '$image': missing"
    fi
}

command="${1:-}"
shift || true
background=no
for arg in "$@"; do
    case "$arg" in
    --background-image) background=yes ;;
    *) die "unknown option '$arg' (try --help)" ;;
    esac
done

mkdir -p "$state"
case "$command" in
start)
    start_engine
    if [[ "$background" == yes ]]; then
        start_image_build background
    else
        start_image_build
        check_image
    fi
    ;;
wait-image) wait_image ;;
stop) stop_engine ;;
status) status ;;
-h | --help | help) usage ;;
"")
    usage >&2
    exit 2
    ;;
*) die "unknown command '$command' (try --help)" ;;
esac
