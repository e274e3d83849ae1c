"""Prints `bye` and exits with the code in argv[1] (default 3)."""

import sys

print("bye", flush=True)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
