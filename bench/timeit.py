#!/usr/bin/python3
"""bench/timeit.py -o FILE COMMAND [ARGS...]: /usr/bin/time -v's stand-in (stdlib only).

Runs COMMAND, waits for it with wait4() -- as GNU time does -- and writes to FILE the
lines bench/common.sh reads, in time -v's words: "User time (seconds)", "System time
(seconds)" (the command and every descendant it waited for), "Maximum resident set
size (kbytes)" (the largest single process among them), "Elapsed (wall clock) time
(seconds)", "Exit status".  Exits with COMMAND's status.  Used when the Debian package
`time` is not installed (tests/deps.sh does not install it).
"""
import os
import subprocess
import sys
import time


def main():
    if len(sys.argv) < 4 or sys.argv[1] != "-o":
        sys.exit("usage: timeit.py -o FILE COMMAND [ARGS...]")
    out, argv = sys.argv[2], sys.argv[3:]
    t0 = time.monotonic()
    p = subprocess.Popen(argv)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    with open(out, "w") as fh:
        fh.write("\tCommand being timed: \"%s\"\n" % " ".join(argv))
        fh.write("\tUser time (seconds): %.2f\n" % ru.ru_utime)
        fh.write("\tSystem time (seconds): %.2f\n" % ru.ru_stime)
        fh.write("\tElapsed (wall clock) time (seconds): %.2f\n" % wall)
        fh.write("\tMaximum resident set size (kbytes): %d\n" % ru.ru_maxrss)
        fh.write("\tExit status: %d\n" % code)
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
