#!/usr/bin/env bash
# Installs what building, running and testing sideload needs from Debian's packages,
# and nothing that is already there: mosquitto (the local MQTT broker),
# mosquitto-clients (mosquitto_pub, mosquitto_sub) and jq (for the end-to-end tests).
# Safe to run again: it only reports when everything is present.
#
# Usage: scripts/setup.sh [--with-wasm-toolchain] [--with-shellcheck] [--only PACKAGE...]
#   --with-wasm-toolchain  also clang, lld, wasi-libc and the wasm32 compiler runtime,
#                          to rebuild tests/programs/*.wasm
#   --with-shellcheck      also shellcheck, to lint the scripts
#   --only PACKAGE...      just these Debian packages (used by other scripts)
#
# Runs as root (as CI does) or through sudo when it is present.
set -euo pipefail

packages=(mosquitto mosquitto-clients jq)
if [[ "${1:-}" == --only ]]; then
    shift
    packages=("$@")
    set --
fi
for arg in "$@"; do
    case "$arg" in
    --with-wasm-toolchain) packages+=(clang lld wasi-libc libclang-rt-14-dev-wasm32) ;;
    --with-shellcheck) packages+=(shellcheck) ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
        exit 0
        ;;
    *)
        echo "setup: unknown option '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done

missing=()
for package in "${packages[@]}"; do
    if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
        echo "setup: $package is installed"
    else
        missing+=("$package")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "setup: nothing to install"
    exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null; then
    as_root=(sudo)
else
    echo "setup: need to install ${missing[*]} but I am not root and sudo is missing;" \
        "install them yourself: apt-get install ${missing[*]}" >&2
    exit 1
fi

echo "setup: installing ${missing[*]} (apt-get update first)"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: installed ${missing[*]}"
