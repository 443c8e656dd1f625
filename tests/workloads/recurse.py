# recurse.py - a known python3 workload for the unwinding test and benchmark
# (issue 12): Debian's interpreter, built without frame pointers, recursing
# 30 Python calls deep and spinning at the bottom, for SECONDS.
#
#   python3 tests/workloads/recurse.py SECONDS
import sys
import time


def rec(n):
    if n == 0:
        x = 0
        for i in range(20000):
            x += i * i
        return x
    return rec(n - 1)


end = time.time() + float(sys.argv[1])
while time.time() < end:
    rec(30)
