#!/usr/bin/env bash
# Rebuilds the WebAssembly test programs tests/programs/*.wasm from their C sources
# in tests/programs/src/ with Debian's clang, lld and wasi-libc (installed when
# missing). The .wasm files are committed, so this is needed only after a change.
#
# Usage: scripts/build-test-programs.sh [program ...]   (default: all)
set -euo pipefail

cd "$(dirname "$0")/.."
src_dir=tests/programs/src
out_dir=tests/programs

toolchain_works() {
    local probe
    probe="$(mktemp -d)"
    printf 'int main(void) { return 0; }\n' >"$probe/probe.c"
    if clang --target=wasm32-wasi -O2 "$probe/probe.c" -o "$probe/probe.wasm" >/dev/null 2>&1; then
        rm -rf "$probe"
        return 0
    fi
    rm -rf "$probe"
    return 1
}

if ! command -v clang >/dev/null || ! toolchain_works; then
    echo "build-test-programs: the WebAssembly toolchain (clang, lld, wasi-libc) is missing; installing it"
    scripts/setup.sh --with-wasm-toolchain
fi

if [[ $# -gt 0 ]]; then
    programs=("$@")
else
    programs=()
    for source in "$src_dir"/*.c; do
        programs+=("$(basename "$source" .c)")
    done
fi

for program in "${programs[@]}"; do
    program="${program%.c}"
    program="${program%.wasm}"
    echo "build-test-programs: $src_dir/$program.c -> $out_dir/$program.wasm"
    clang --target=wasm32-wasi -O2 -Wall -Wextra -Werror \
        "$src_dir/$program.c" -o "$out_dir/$program.wasm" -Wl,--strip-all
done
echo "build-test-programs: built ${#programs[@]} program(s)"
