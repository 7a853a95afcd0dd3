"""Open every file in a folder the ways a run opens a file it is given, every Python warning recorded: list what ends
in an exception other than classsr's own errors (a run reports it as "internal error") or prints a warning on stderr
(Python's, which a run does not turn into a note).

Each file goes through the still reader (``read_image``, as ``classsr upscale`` reads it; its own notes are not
warnings), the video probe (``probe``, as ``classsr video`` opens it) and the bench loader (``load_native``, as
``classsr bench --native`` does). A JSON line on stdout for each problem (the file, the stage, the exception or the
warning); on stderr, for each stage, how many files it took, refused in one line, and the problems. ``read_sweep.py``
writes the pictures back; this one looks at the other ways in. Meant for collections of odd and damaged files
(Pillow's ``Tests/images``, image-rs's ``tests``, wuffs's ``test/data``), which are not shipped.

    python scripts/look_sweep.py FOLDER [FOLDER ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from classsr_cli.bench import load_native
from classsr_cli.errors import ClassSRError
from classsr_cli.io.image import read_image
from classsr_cli.io.video import probe

STAGES: dict[str, Callable[[Path], object]] = {
    "read": read_image,
    "probe": probe,
    "bench": lambda path: load_native([path], 4),
}


def look(path: Path) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Each stage's verdict on ``path`` (``took``, ``refused``: one of classsr's errors, ``problem``) and the
    problems."""
    verdicts, problems = {}, []
    for stage, open_it in STAGES.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                open_it(path)
                verdicts[stage] = "took"
            except ClassSRError:
                verdicts[stage] = "refused"
            except Exception as e:  # what a run says as "internal error"
                verdicts[stage] = "problem"
                problems.append({"file": str(path), "stage": stage, "error": f"{type(e).__name__}: {e}"[:300]})
        for w in caught:
            verdicts[stage] = "problem"
            problems.append({"file": str(path), "stage": stage, "warning": f"{w.category.__name__}: {w.message}"[:300]})
    return verdicts, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+")
    args = parser.parse_args()
    counts: Counter[tuple[str, str]] = Counter()
    files = 0
    for folder in args.folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            files += 1
            verdicts, problems = look(path)
            counts.update(verdicts.items())
            for p in problems:
                sys.stdout.write(json.dumps(p) + "\n")
    for stage in STAGES:
        took, refused, bad = (counts[stage, v] for v in ("took", "refused", "problem"))
        sys.stderr.write(f"{stage}: {files} files, took {took}, refused in one line {refused}, problems {bad}\n")
    return 1 if any(counts[stage, "problem"] for stage in STAGES) else 0


if __name__ == "__main__":
    sys.exit(main())
