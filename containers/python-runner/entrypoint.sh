#!/bin/sh
# Entrypoint of the Python runner image: the runtime starts a container as
# `/entrypoint.sh <program file> <args...>`, with the module's program folder mounted
# at launcher.PY.docker.workdir and the engine's working directory set to it (`-w`;
# the image's WORKDIR, /usr/src/app, when started by hand). It stays in that folder
# rather than `cd /usr/src/app`, so a different workdir setting works too.
# Installs requirements.txt when the folder has one (pip's output on stderr: stdout
# belongs to the program), then replaces itself with `python3 -u -B`: Python is the
# container's main process, gets the engine's signals itself, does not buffer stdout or
# stderr, and writes no `__pycache__` folders into the mounted program folder (files
# the container's root leaves there could not be removed by a runtime that is not
# root, and the folder goes with the module anyway).
set -eu

if [ -f requirements.txt ]; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
        echo "entrypoint: the program has a requirements.txt but this image has no pip;" \
            "use an image with pip (containers/python-runner/Dockerfile, or" \
            "containers/build-offline-image.sh --with-pip)" >&2
        exit 1
    fi
    # The container is the program's own environment: Debian's "externally managed"
    # guard (PEP 668) does not apply, and running as root is expected.
    PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore \
        python3 -m pip install --no-cache-dir --disable-pip-version-check -r requirements.txt >&2
fi

exec python3 -u -B "$@"
