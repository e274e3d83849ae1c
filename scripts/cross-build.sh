#!/usr/bin/env bash
# Release builds of sideload for other targets, installing what is missing:
#   musl     x86_64-unknown-linux-musl: a static binary for any x86_64 Linux
#            (C parts built with musl-gcc from musl-tools)
#   aarch64  aarch64-unknown-linux-musl: a static binary for 64-bit Raspberry Pi OS
#            and ARM gateways (gcc-aarch64-linux-gnu as C compiler and linker)
#   armv7    armv7-unknown-linux-gnueabihf with +crt-static: a static binary for
#            32-bit Raspberry Pi OS on ARMv7 (Pi 2 and later)
#
# Usage: scripts/cross-build.sh musl|aarch64|armv7
# Prints where the binary is, its size and its type.
set -euo pipefail

cd "$(dirname "$0")/.."

say() { echo "cross-build: $*"; }

case "${1:-}" in
musl)
    target=x86_64-unknown-linux-musl
    debian_packages=(musl-tools)
    compiler=musl-gcc
    export CC_x86_64_unknown_linux_musl=musl-gcc
    ;;
aarch64)
    target=aarch64-unknown-linux-musl
    debian_packages=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
    compiler=aarch64-linux-gnu-gcc
    export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
    ;;
armv7)
    target=armv7-unknown-linux-gnueabihf
    debian_packages=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross)
    compiler=arm-linux-gnueabihf-gcc
    export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc
    export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
    export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUSTFLAGS="-C target-feature=+crt-static"
    ;;
*)
    echo "usage: scripts/cross-build.sh musl|aarch64|armv7" >&2
    exit 2
    ;;
esac

if rustup target list --installed | grep -qx "$target"; then
    say "rust target $target is installed"
else
    say "adding rust target $target (rustup target add)"
    rustup target add "$target"
fi

if command -v "$compiler" >/dev/null; then
    say "C compiler $compiler is installed"
else
    say "installing ${debian_packages[*]} for the C compiler $compiler"
    scripts/setup.sh --only "${debian_packages[@]}"
fi

say "cargo build --release --target $target"
cargo build --release --target "$target"

target_dir="${CARGO_TARGET_DIR:-target}"
binary="$target_dir/$target/release/sideload"
say "built $binary ($(stat -c %s "$binary") bytes)"
if command -v file >/dev/null; then
    file -b "$binary" | sed 's/^/cross-build: /'
fi
