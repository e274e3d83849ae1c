"""Prints one JSON line describing how the runtime started this program.

{"argv": arguments after the program, "env": SL_* variables and PROGRAM_OBJECT_ID,
 "files": every file in the working folder (recursive, sorted),
 "auth_user": username of .arena_mqtt_auth or null, "auth_token_set": bool}

The token itself is never printed.
"""

import json
import os
import sys


def files_here():
    found = []
    for folder, _dirs, names in os.walk("."):
        for name in names:
            found.append(os.path.relpath(os.path.join(folder, name), "."))
    return sorted(found)


def auth():
    try:
        with open(".arena_mqtt_auth", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None, False
    if not isinstance(data, dict):
        return None, False
    return data.get("username"), bool(data.get("token"))


user, token_set = auth()
print(
    json.dumps(
        {
            "argv": sys.argv[1:],
            "env": {
                k: v
                for k, v in os.environ.items()
                if k.startswith("SL_") or k == "PROGRAM_OBJECT_ID"
            },
            "files": files_here(),
            "auth_user": user,
            "auth_token_set": token_set,
        },
        sort_keys=True,
    )
)
