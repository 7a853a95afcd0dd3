"""Run a command and report its peak resident memory, anonymous and file-backed apart (Linux).

``wait4``'s peak RSS (``/usr/bin/time -f %M``) counts the pages of a memory-mapped file with the process's own,
though the system can write them back and drop them; the self-ensemble's mean of a large picture lives in such a
file (``classsr_cli.pipeline.spill_buffer``). This samples ``RssAnon`` and ``RssFile`` of ``/proc/PID/status``
every 20 ms and prints one JSON line: the command, its exit status, wall seconds and both peaks in MiB.

    python scripts/anon_peak.py -- python -m classsr_cli upscale big.png -x 4 --tta 8 -o out.png --threads 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    cmd = [a for a in ap.parse_args().command if a != "--"] or sys.exit("give a command after --")
    peaks = {"RssAnon": 0, "RssFile": 0}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status", encoding="ascii") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in peaks:
                        peaks[key] = max(peaks[key], int(value.split()[0]))
        except (OSError, ValueError):
            pass  # between exit and reaping
        time.sleep(0.02)
    sys.stdout.write(json.dumps({"command": cmd, "returncode": proc.returncode,
                                 "seconds": round(time.perf_counter() - t0, 2), "anon_mib": round(peaks["RssAnon"] / 1024),
                                 "file_mib": round(peaks["RssFile"] / 1024)}) + "\n")


if __name__ == "__main__":
    main()
