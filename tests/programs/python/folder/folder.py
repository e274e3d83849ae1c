"""A program of several files: imports lib/helper.py and reads data/greeting.txt,
then says whether the import left compiled files in the mounted program folder."""

import os

from lib.helper import greeting

print("helper says " + greeting(), flush=True)
print("lib holds " + " ".join(sorted(os.listdir("lib"))), flush=True)
