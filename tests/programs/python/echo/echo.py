"""Prints `ready`, then `echo: <line>` for each line of stdin until end of input."""

import sys

print("ready", flush=True)
for line in sys.stdin:
    print("echo: " + line.rstrip("\n"), flush=True)
