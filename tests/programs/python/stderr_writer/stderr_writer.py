"""Writes `to stderr` on stderr and `to stdout` on stdout."""

import sys

sys.stderr.write("to stderr\n")
sys.stderr.flush()
sys.stdout.write("to stdout\n")
sys.stdout.flush()
