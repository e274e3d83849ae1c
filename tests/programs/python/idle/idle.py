"""Prints `ready`, then sleeps forever without using CPU."""

import time

print("ready", flush=True)
while True:
    time.sleep(3600)
