"""`classsr upscale` end to end with a git ref's package against the working tree's: each input (a file or a
folder, as the command takes it) upscaled by ``python -m classsr_cli upscale ... --json`` with one tree or the
other first on ``PYTHONPATH``, in turns (the order alternating by round), from a scratch folder: run from the
repository, ``python -m`` would put its ``classsr_cli`` first on ``sys.path`` and both sides would run the working
tree. Reports the summed ``seconds`` (read, model, write) and ``model_seconds`` of every run, per input and side.

    python scripts/upscale_ab.py REF INPUT [INPUT ...] [--against REF2] [-x 4] [--rounds 5] [--threads 2]
        [--json out.json]

``--against REF2``: REF2's package instead of the working tree's.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from report import emit  # scripts/

ROOT = Path(__file__).resolve().parent.parent


def export(ref: str, dest: Path) -> str:
    """``ref``'s ``classsr_cli`` (and the weights it ships) under ``dest``; returns the commit."""
    commit = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    if not commit:
        sys.stderr.write(f"upscale_ab: {ref!r} names no commit\n")
        raise SystemExit(2)
    tar = subprocess.run(["git", "archive", commit, "classsr_cli", "weights"], cwd=ROOT, capture_output=True,
                         check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(dest, filter="data")
    return commit


def run(tree: Path, src: Path, out: Path, scale: int, threads: int, scratch: Path) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    got = subprocess.run(
        [sys.executable, "-m", "classsr_cli", "upscale", str(src), "-x", str(scale), "-o", str(out), "--overwrite",
         "--json", "--threads", str(threads)],
        cwd=scratch, env=env, capture_output=True, text=True, check=True,
    ).stdout
    records = [json.loads(line) for line in got.splitlines() if line.startswith("{")]
    return sum(r["seconds"] for r in records), sum(r["model_seconds"] for r in records)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ref", help="the git ref to compare the working tree with")
    ap.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--against", default=None, help="a second git ref instead of the working tree")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    report: dict = {"scale": args.scale, "rounds": args.rounds, "threads": args.threads, "inputs": {}}
    with tempfile.TemporaryDirectory(prefix="upscale_ab_") as tmp:
        scratch = Path(tmp)
        trees = {"ref": scratch / "ref", "tree": ROOT}
        report["ref"] = export(args.ref, trees["ref"])
        if args.against:
            trees["tree"] = scratch / "against"
            report["against"] = export(args.against, trees["tree"])
        for src in args.inputs:
            src = src.resolve()
            out = scratch / ("out" if src.is_dir() else f"out{src.suffix if src.suffix == '.png' else '.png'}")
            sides: dict[str, dict[str, list[float]]] = {k: {"seconds": [], "model_seconds": []} for k in trees}
            for i in range(args.rounds):
                for name in list(trees) if i % 2 == 0 else list(trees)[::-1]:
                    seconds, model = run(trees[name], src, out, args.scale, args.threads, scratch)
                    sides[name]["seconds"].append(round(seconds, 3))
                    sides[name]["model_seconds"].append(round(model, 3))
            report["inputs"][str(src)] = sides
            sys.stderr.write(f"{src.name}: {sides}\n")
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
