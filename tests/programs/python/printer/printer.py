"""Prints `line 0` ... `line N-1` (N = argv[1], default 20000) as fast as it can."""

import sys

count = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
sys.stdout.write("".join("line %d\n" % i for i in range(count)))
sys.stdout.flush()
