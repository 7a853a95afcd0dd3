"""Read every file in a folder with classsr's image I/O and write each picture back in several formats: list what ends
otherwise than in a picture or in one of classsr's own errors (an exception a run would report as "internal error").

Each file is read by ``read_image``; a picture is written by ``write_image`` into each of ``--formats`` (and the
format of its default output, :func:`~classsr_cli.io.image.output_suffix`'s, as a run writes it) and read back. A
JSON line on stdout for each problem: the file, the stage (``read``, ``write FMT``; ``(typed)`` where it is one of
classsr's errors on writing, which a run says in one line) and the error; on stderr, how many files were read,
refused in one line, and the problems. Meant for collections of odd and damaged files (Pillow's
``Tests/images``: ``python scripts/read_sweep.py Pillow/Tests/images``), which are not shipped.

    python scripts/read_sweep.py FOLDER [--formats png jpg tif webp heic avif bmp tga qoi ppm exr jp2 dds jxl]
        [--timeout 60 --memory 6]   # each file in a process of its own: a fuzzer's files
        [--check]   # each picture written checked by its format's reference tools (scripts/output_check.py)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

import output_check

from classsr_cli.errors import ClassSRError
from classsr_cli.io.image import output_suffix, read_image, write_image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--formats", nargs="+", default=["png", "jpg", "tif"])
    parser.add_argument("--timeout", type=float, default=None,
                        help="each file in a process of its own, stopped after this many seconds (a problem: timed out)")
    parser.add_argument("--memory", type=float, default=None, help="with --timeout: each process's memory, GiB at most")
    parser.add_argument("--check", action="store_true",
                        help="each picture written checked by its format's reference tools (output_check.py)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # (the process of one file, FOLDER it)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # (what a run says of them is its notes: read_image makes Pillow's warnings notes)
    if args.one:
        verdict, said = _sweep(args.folder, args.formats, args.check)
        sys.stdout.write("".join(json.dumps(p) + "\n" for p in said) + json.dumps({"verdict": verdict}) + "\n")
        return 0
    counts = {"read": 0, "refused": 0}
    problems = 0
    for src in sorted(p for p in args.folder.rglob("*") if p.is_file()):
        verdict, said = _sweep(src, args.formats, args.check) if args.timeout is None else _apart(src, args)
        counts[verdict] = counts.get(verdict, 0) + 1
        for p in said:
            sys.stdout.write(json.dumps(p) + "\n")
        problems += len(said)
    sys.stderr.write(f"read {counts['read']}, refused in one line {counts['refused']}, problems {problems}\n")
    return 1 if problems else 0


def _sweep(src: Path, formats: list[str], checked: bool = False) -> tuple[str, list[dict[str, object]]]:
    """One file read, and its picture written into each format and read back (and, where ``checked``, checked by
    the format's reference tools: :func:`output_check.check`): ``read``, ``refused`` (one of classsr's errors on
    reading) or ``problem``, and the problems."""
    try:
        pic = read_image(src)
    except ClassSRError:
        return "refused", []
    except Exception as e:
        return "problem", [_problem(src, "read", e)]
    said: list[dict[str, object]] = []
    own = output_suffix(src.suffix).lower().lstrip(".")  # (what a run writes beside it)
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in dict.fromkeys([*formats, own]):
            try:
                write_image(Path(tmp) / f"out.{fmt}", pic, overwrite=True)
                read_image(Path(tmp) / f"out.{fmt}")
                if checked:
                    said.extend({"file": str(src), "stage": f"check {fmt}", **{k: v for k, v in p.items() if k != "file"}}
                                for p in output_check.check(Path(tmp) / f"out.{fmt}")[1])  # fmt: skip
            except ClassSRError as e:
                said.append(_problem(src, f"write {fmt} (typed)", e))
            except Exception as e:
                said.append(_problem(src, f"write {fmt}", e))
    return "read", said


def _apart(src: Path, args: argparse.Namespace) -> tuple[str, list[dict[str, object]]]:
    """:func:`_sweep` of ``src`` in a process of its own (a fuzzer's file that loops or eats memory stops there)."""
    import resource
    import subprocess

    def limit() -> None:
        if args.memory:
            size = int(args.memory * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    cmd = [sys.executable, __file__, str(src), "--one", *(["--check"] if args.check else []), "--formats", *args.formats]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=args.timeout, preexec_fn=limit, check=False)
    except subprocess.TimeoutExpired:
        return "problem", [{"file": str(src), "stage": "timed out", "error": f"past {args.timeout:g} s", "where": None}]
    lines = done.stdout.decode(errors="replace").splitlines()
    if done.returncode or not lines or "verdict" not in (last := json.loads(lines[-1])):
        why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        return "problem", [{"file": str(src), "stage": "process", "error": why[0][:300], "where": None}]
    return last["verdict"], [json.loads(line) for line in lines[:-1]]


def _problem(src: Path, stage: str, e: Exception) -> dict[str, object]:
    frames = traceback.extract_tb(e.__traceback__)
    return {"file": str(src), "stage": stage, "error": f"{type(e).__name__}: {e}"[:300],
            "where": frames[-1].name if frames else None}  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
