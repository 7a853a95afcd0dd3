"""Every recorded timing run of one model file on one set, read back from the JSON under ``docs/results``: how many,
their range, and how many are under a line (time over the heavy branch's time on the whole image). These are the
counts README.md and docs/results.md quote for the ×4 default on SunHays80, so a reader can recount them.

    PYTHONPATH=scripts python scripts/run_ledger.py [--set SunHays80] [-x 4] [--psnr-y 29.71492097691476]
        [--under 0.5] [--root docs/results] [--list] [--json out.json]
    PYTHONPATH=scripts python scripts/run_ledger.py --set B100 --under 1

A run counts when it is either of these:
- a ``classsr bench ... --json`` record with both methods, ``heavy`` and ``classsr``: its time is ``classsr``'s
  seconds over ``heavy``'s in the same run;
- the default point of a ``scripts/dial_curve.py`` record (``tolerance`` null, ``default`` true).
It must also be of the set (``images`` and ``inputs``, or the file's name), scale and thread count asked for, in
float32. A run belongs to the model file when its routed PSNR-Y equals ``--psnr-y`` to 1e-9 dB. The routed output over
a whole set identifies the weights together with their decisions. So an engine change that keeps the classes and
pixels keeps the runs, and a rebuilt or retrained file, another precision or a tolerance leaves them out. The default
is the shipped ×4 default's PSNR-Y on the set (:data:`SHIPPED_X4`: SunHays80, B100 and Urban100).

:data:`NOT_COUNTED` lists the runs the docs set aside, each with the reason the docs give.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from report import emit  # scripts/

#: PSNR-Y (dB) of the shipped ×4 default (``weights/classsr_residual_x4.safetensors``, since the thirty-third pass)
#: routed over each set at ×4: the runs of that file.
SHIPPED_X4 = {"SunHays80": 29.71492097691476, "B100": 27.014493892681994, "Urban100": 24.49531574775926}

#: Runs the docs set aside (paths relative to the results folder), with the docs' reason.
NOT_COUNTED = {
    "thirtythird/final2/SunHays80_x4.json": "both methods slowed in two of their three passes, as docs/results.md says",
    "thirtyfifth/malloc/SunHays80_before_2.json": "a round whose heavy passes were disturbed, as docs/results.md says",
}

#: The images each set has (a record of another count is of another set or a part of one).
SET_IMAGES = {"Set5": 5, "Set14": 14, "B100": 100, "Urban100": 80, "SunHays80": 80}


def _of_set(record: dict, path: Path, name: str) -> bool:
    if name in SET_IMAGES and record.get("images") != SET_IMAGES[name]:
        return False
    inputs = record.get("inputs")
    if isinstance(inputs, list) and inputs:
        return all(f"/{name}/" in str(p) for p in inputs)
    return name.lower() in path.name.lower()


def runs_in(record: Any, path: Path, *, name: str, scale: int, threads: int) -> Iterator[tuple[float, float]]:
    """``(time over heavy, routed PSNR-Y)`` of each run ``record`` (a loaded JSON file at ``path``) holds."""
    if not isinstance(record, dict) or record.get("threads") != threads or not _of_set(record, path, name):
        return
    methods = record.get("methods")
    if isinstance(methods, dict) and "heavy" in methods and "classsr" in methods:  # classsr bench
        if record.get("scale") != scale or record.get("precision", "fp32") != "fp32" or record.get("native"):
            return
        routed, heavy = methods["classsr"], methods["heavy"]
        yield routed["seconds"] / heavy["seconds"], routed["psnr_y"]
    elif isinstance(record.get("points"), list):  # scripts/dial_curve.py (always fp32, the model's own scale)
        if f"_x{scale}" not in path.name:
            return
        for point in record["points"]:
            if point.get("default") and point.get("tolerance") is None:
                yield point["time_vs_heavy"], point["psnr_y"]


def ledger(root: Path, *, name: str = "SunHays80", scale: int = 4, threads: int = 2,
           psnr_y: float | None = None, under: float = 0.5) -> dict:
    """The runs of the file under ``root``, sorted by path: counted ones and those set aside. ``psnr_y`` defaults
    to the shipped ×4 default's on the set."""
    if psnr_y is None:
        if scale != 4 or name not in SHIPPED_X4:
            raise ValueError(f"no PSNR-Y of the shipped x4 default on {name} x{scale}: give psnr_y")
        psnr_y = SHIPPED_X4[name]
    counted: list[dict] = []
    set_aside: list[dict] = []
    for path in sorted(root.rglob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        for ratio, psnr in runs_in(record, path, name=name, scale=scale, threads=threads):
            if abs(psnr - psnr_y) > 1e-9:
                continue
            rel = path.relative_to(root).as_posix()
            row = {"file": rel, "time_vs_heavy": round(ratio, 6)}
            if rel in NOT_COUNTED:
                set_aside.append({**row, "why": NOT_COUNTED[rel]})
            else:
                counted.append(row)
    ratios = [r["time_vs_heavy"] for r in counted]
    return {
        "set": name, "scale": scale, "threads": threads, "psnr_y": psnr_y, "under": under,
        "runs": len(ratios), "under_count": sum(r < under for r in ratios),
        "min": min(ratios, default=None), "max": max(ratios, default=None),
        "counted": counted, "set_aside": set_aside,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", default="SunHays80")
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--psnr-y", type=float, default=None, help="the file's routed PSNR-Y on the set (default: the "
                    "shipped x4 default's)")
    ap.add_argument("--under", type=float, default=0.5)
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "results")
    ap.add_argument("--list", action="store_true", help="print every run, not only the summary")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    try:
        found = ledger(args.root, name=args.set, scale=args.scale, threads=args.threads, psnr_y=args.psnr_y,
                       under=args.under)
    except ValueError as e:
        ap.error(str(e))  # one line, exit 2
    if not found["runs"]:
        sys.stderr.write(f"no runs of that file on {args.set} x{args.scale} under {args.root}\n")
        return 1
    lines = []
    if args.list:
        lines += [f"{row['time_vs_heavy']:.3f}  {row['file']}" for row in found["counted"]]
        lines += [f"{row['time_vs_heavy']:.3f}  {row['file']}  (not counted: {row['why']})" for row in found["set_aside"]]
    lines.append(f"{args.set} x{args.scale}, {args.threads} threads: {found['runs']} runs, "
                 f"{found['min']:.3f}–{found['max']:.3f}x heavy's time, {found['under_count']} under {args.under}")
    sys.stdout.write("\n".join(lines) + "\n")
    emit(found, args.json, echo=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
