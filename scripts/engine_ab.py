"""Time two engines on the same frames in one process, in turns frame by frame (the three methods in every order
alike, so each follows each other one as often): the working tree's
``classsr_cli`` against the package at a git ref (exported to a temporary folder under another name), and the
heavy branch on the whole frame. On a machine whose speed drifts between runs by more than a change is worth, a
paired comparison in one process is what can tell a few per cent apart.

    python scripts/engine_ab.py HEAD~1 --sets SunHays80 B100 [--model M] [-x 4] [--threads 2] [--rounds 5]
        [--precision fp32|bf16|fp16] [--native] [--json out.json]

``--native``: each set's images are the LR frames as given (photos at their own size, as ``classsr bench
--native`` runs them), not the ÷scale LR of their HR.

Prints, per set, the best total over the rounds of each (seconds), new/old and each against the heavy branch,
and whether the two engines' outputs are the same bits. The process runs with the memory settings of every
``classsr`` command (``timing.as_the_cli_runs``).
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from report import emit  # scripts/
from timing import as_the_cli_runs  # scripts/

from classsr_cli import bench, zoo
from classsr_cli.engine import upscale_tensor

ROOT = Path(__file__).resolve().parents[1]
OLD = "classsr_ab_old"


def export(ref: str, into: Path) -> None:
    """The package at ``ref`` as ``into/classsr_ab_old`` (its own imports renamed)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "classsr_cli"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    pkg = into / OLD
    (into / "classsr_cli").rename(pkg)
    for f in pkg.rglob("*.py"):
        f.write_text(f.read_text().replace("classsr_cli", OLD))


def turn_orders(names: list[str]) -> list[tuple[str, ...]]:
    """The orders the methods take turns in, one a frame, cycled: every order alike, so that each method runs right
    after each other one on the same frame as often. Rotations alone put "new" right after "old" in two turns of
    three, where it found that frame's buffers just freed and its data in cache: the same engine on both sides read
    2-5 % faster that way (docs/experiments.md, forty-first pass)."""
    return list(itertools.permutations(names))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ref", help="the git ref of the engine to compare with (e.g. HEAD~1)")
    ap.add_argument("--sets", nargs="+", default=["SunHays80"])
    ap.add_argument("--model", type=Path, default=None, help="default: the shipped default model of the scale")
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    ap.add_argument("--native", action="store_true", help="the images as given, not the LR of their HR")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    got = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{args.ref}^{{commit}}"],
                         capture_output=True, text=True)
    if got.returncode:
        sys.stderr.write(f"engine_ab: {args.ref!r} is not a commit of this repository\n")
        return 2
    commit = got.stdout.strip()
    as_the_cli_runs()
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
    path = args.model or zoo.choose_model(None, args.scale)
    new = zoo.load(str(path), args.scale, device=cpu, dtype=dtype).net
    report: dict = {"ref": args.ref, "commit": commit, "model": str(path), "precision": args.precision,
                    "threads": args.threads, "rounds": args.rounds, "native": args.native, "sets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        export(commit, Path(tmp))
        sys.path.insert(0, tmp)
        old_zoo = importlib.import_module(f"{OLD}.zoo")
        old_engine = importlib.import_module(f"{OLD}.engine")
        old = old_zoo.load(str(path), args.scale, device=cpu, dtype=dtype).net
        heavy = new.branches[2]
        runs = {"old": lambda x: old_engine.upscale_tensor(old, x)[0],
                "new": lambda x: upscale_tensor(new, x)[0],
                "heavy": heavy}
        for name in args.sets:
            load = bench.load_native if args.native else bench.load_pairs
            pairs = load(bench.find_images([name]), args.scale)
            lrs = [torch.from_numpy(p.lr).permute(2, 0, 1)[None].float().div(255).to(dtype) for p in pairs]
            best = {k: float("inf") for k in runs}
            with torch.inference_mode():
                same = all(torch.equal(runs["old"](x), runs["new"](x)) for x in lrs)  # and the warm-up
                for x in lrs:
                    heavy(x)
                orders = turn_orders(list(runs))
                for r in range(args.rounds):
                    total = dict.fromkeys(runs, 0.0)
                    for i, x in enumerate(lrs):
                        for k in orders[(i + r) % len(orders)]:
                            t0 = time.perf_counter()
                            runs[k](x)
                            total[k] += time.perf_counter() - t0
                    best = {k: min(best[k], total[k]) for k in runs}
            report["sets"][name] = {
                "frames": len(lrs), "seconds": {k: round(v, 4) for k, v in best.items()},
                "new_vs_old": round(best["new"] / best["old"], 4),
                "old_vs_heavy": round(best["old"] / best["heavy"], 4),
                "new_vs_heavy": round(best["new"] / best["heavy"], 4), "same_bits": same,
            }
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
