"""Prints `hello` (the latency benchmark's program)."""

print("hello", flush=True)
