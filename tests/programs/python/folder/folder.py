"""A program of several files: imports lib/helper.py and reads data/greeting.txt."""

from lib.helper import greeting

print("helper says " + greeting(), flush=True)
