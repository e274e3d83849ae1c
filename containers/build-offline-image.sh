#!/usr/bin/env bash
# Builds the Python runner image without any image registry: debootstraps a minimal
# Debian with python3 from a Debian mirror, trims it (docs, man pages, locales, apt
# lists and caches, logs), adds the same /entrypoint.sh as the Dockerfile image and
# the program folder /usr/src/app, and imports it into the engine:
#   tar -C rootfs -c . | docker import -c 'WORKDIR /usr/src/app' -c 'CMD ["python3"]' - TAG
# For machines that reach Debian's mirror (or a local one) but no image registry; the
# test suite uses this image. Skips the build when TAG exists already, unless --force.
#
# Usage: containers/build-offline-image.sh [options]
#   --tag TAG        image to create (default slframework/slruntime-python-runner:latest)
#   --engine NAME    docker or podman (default docker)
#   --mirror URL     Debian mirror (default http://deb.debian.org/debian)
#   --suite NAME     Debian release (default bookworm)
#   --with-pip       also python3-pip, so requirements.txt works (adds about 50
#                    packages and a minute)
#   --force          build and replace TAG even when it exists
#
# Needs root (debootstrap does) and debootstrap (scripts/engine.sh start installs it).
# The temporary folder is removed on any exit, after unmounting anything debootstrap
# left mounted in it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
tag=slframework/slruntime-python-runner:latest
engine=docker
mirror=http://deb.debian.org/debian
suite=bookworm
with_pip=no
force=no

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
say() { echo "build-offline-image: $*"; }
die() {
    echo "build-offline-image: $*" >&2
    exit 1
}

while [[ $# -gt 0 ]]; do
    case "$1" in
    --tag | --engine | --mirror | --suite)
        [[ $# -ge 2 && -n "$2" ]] || die "option '$1' needs a value (try --help)"
        case "$1" in
        --tag) tag="$2" ;;
        --engine) engine="$2" ;;
        --mirror) mirror="$2" ;;
        --suite) suite="$2" ;;
        esac
        shift
        ;;
    --with-pip) with_pip=yes ;;
    --force) force=yes ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "build-offline-image: unknown option '$1' (try --help)" >&2
        exit 2
        ;;
    esac
    shift
done

command -v "$engine" >/dev/null || die "the engine '$engine' is not installed (scripts/engine.sh start installs docker)"
if [[ "$force" == no ]] && "$engine" image inspect "$tag" >/dev/null 2>&1; then
    say "image '$tag' exists already; nothing to do (--force rebuilds it)"
    exit 0
fi
[[ $(id -u) -eq 0 ]] || die "debootstrap needs root; run me as root (or through sudo)"
command -v debootstrap >/dev/null \
    || die "debootstrap is not installed (apt-get install debootstrap, or scripts/engine.sh start)"
[[ -f "$here/python-runner/entrypoint.sh" ]] || die "missing '$here/python-runner/entrypoint.sh'"

start=$SECONDS
work="$(mktemp -d "${TMPDIR:-/tmp}/sideload-runner-image.XXXXXX")"
rootfs="$work/rootfs"

cleanup() {
    local status=$? mount_point
    set +e
    # debootstrap mounts /proc and /sys inside the new system and may leave them when
    # it fails: unmount (deepest first) before removing anything.
    while read -r mount_point; do
        umount -l "$mount_point" 2>/dev/null
    done < <(awk -v root="$work/" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r)
    rm -rf --one-file-system "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

include=python3
[[ "$with_pip" == yes ]] && include+=,python3-pip
say "debootstrap $suite ($include) from $mirror into $rootfs"
if ! debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror" \
    >"$work/debootstrap.log" 2>&1; then
    tail -n 20 "$work/debootstrap.log" >&2
    [[ -f "$rootfs/debootstrap/debootstrap.log" ]] && tail -n 20 "$rootfs/debootstrap/debootstrap.log" >&2
    die "debootstrap of '$suite' from '$mirror' failed (its log is above)"
fi

say "trimming docs, man pages, locales, apt lists and caches"
rm -rf "$rootfs"/usr/share/{doc,man,info,lintian,linda}/* \
    "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/cache/apt/* \
    "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/var/lib/dpkg/*-old \
    "$rootfs"/var/log/* \
    "$rootfs"/tmp/* \
    "$rootfs"/debootstrap
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
# Packages installed later (apt-get install inside a derived image) stay trimmed too.
mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-sideload-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF

install -m 0755 "$here/python-runner/entrypoint.sh" "$rootfs/entrypoint.sh"
mkdir -p "$rootfs/usr/src/app"

say "importing into $engine as '$tag'"
tar -C "$rootfs" --numeric-owner -c . \
    | "$engine" import -c 'WORKDIR /usr/src/app' -c 'CMD ["python3"]' - "$tag" >/dev/null \
    || die "'$engine import' of '$tag' failed"

size="$("$engine" image inspect --format '{{.Size}}' "$tag")"
say "built '$tag' in $((SECONDS - start)) s; image size $((size / 1000000)) MB"
