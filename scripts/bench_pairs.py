"""Two models side by side from `classsr bench --json` runs timed in turns: one Markdown row per scale, set and model.

Each file is named ``x<scale>_<set>_<label>_t<turn>.json``: one ``classsr bench <set> -x <scale> --model ...
--methods heavy,classsr --json`` run of the model called ``<label>``, in turn ``<turn>``. Turn 1 runs the models in
one order and turn 2 in the other, so a drift in the machine's speed falls on both. E.g. (the forty-seventh pass)::

    for s in 4 2; do for set in SunHays80 B100 Urban100; do
      for turn in 1 2; do order="shipped rebuilt"; [ $turn = 2 ] && order="rebuilt shipped"
        for who in $order; do m=weights/classsr_residual_x$s.safetensors
          [ $who = rebuilt ] && m=runs/repro46_x$s/classsr.safetensors
          classsr bench $set -x $s --model $m --threads 2 --repeat 3 --methods heavy,classsr --json \\
            > out/x${s}_${set}_${who}_t$turn.json
    done; done; done; done
    python scripts/bench_pairs.py out/*.json

Quality, FLOPs and routing do not depend on the turn (a file that disagrees with its other turns is an error);
time is the routed model's over the heavy branch's in the same run, one figure per turn, with each run's load
average before and after.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

NAME = re.compile(r"x(?P<scale>\d+)_(?P<set>.+)_(?P<label>[^_]+)_t(?P<turn>\d+)")
DETERMINISTIC = ("psnr_y", "ssim_y", "flops", "patches")


def group(files: list[Path]) -> dict[tuple[int, str], dict[str, dict[int, dict[str, Any]]]]:
    """``(scale, set) -> label -> turn -> report``, each in the order the files first name it."""
    out: dict[tuple[int, str], dict[str, dict[int, dict[str, Any]]]] = {}
    for path in files:
        m = NAME.fullmatch(path.stem)
        if m is None:
            raise ValueError(f"{path}: expected a name x<scale>_<set>_<label>_t<turn>.json")
        report = json.loads(path.read_text())
        if report["scale"] != int(m["scale"]):
            raise ValueError(f"{path}: the name says x{m['scale']}, the report x{report['scale']}")
        out.setdefault((int(m["scale"]), m["set"]), {}).setdefault(m["label"], {})[int(m["turn"])] = report
    return out


def row(scale: int, name: str, label: str, turns: dict[int, dict[str, Any]]) -> str:
    first = turns[min(turns)]["methods"]
    for turn, report in sorted(turns.items()):
        for method in ("heavy", "classsr"):
            for key in DETERMINISTIC:
                if report["methods"][method].get(key) != first[method].get(key):
                    raise ValueError(f"x{scale} {name} {label}: {method} {key} differs in turn {turn}")
    h, c = first["heavy"], first["classsr"]
    n = sum(c["patches"].values()) or 1
    split = " / ".join(f"{100 * v / n:.1f}" for v in c["patches"].values())
    times = ", ".join(f"{r['methods']['classsr']['seconds'] / r['methods']['heavy']['seconds']:.3f}"
                      for _, r in sorted(turns.items()))
    loads = ", ".join("{:g}–{:g}".format(*r["load_average"]) if r.get("load_average") else "–"
                      for _, r in sorted(turns.items()))
    return (f"| ×{scale} | {name} | {label} | {c['psnr_y']:.4f} | {c['psnr_y'] - h['psnr_y']:+.4f} "
            f"| {c['ssim_y']:.4f} | {c['flops'] / h['flops']:.4f} | {split} | {times} | {loads} |")


def table(files: list[Path]) -> str:
    lines = ["| scale | set | model | PSNR-Y | − heavy | SSIM-Y | FLOPs × heavy | split L / M / H % "
             "| time × heavy, per turn | load before–after, per turn |",
             "|---|---|---|--:|--:|--:|--:|---|---|---|"]
    for (scale, name), labels in sorted(group(files).items(), key=lambda kv: -kv[0][0]):  # ×4 first, else as given
        lines += [row(scale, name, label, turns) for label, turns in labels.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or "-h" in argv or "--help" in argv:
        out = sys.stdout if argv else sys.stderr
        out.write(f"usage: python scripts/bench_pairs.py RESULT.json ...\n\n{__doc__}")
        return 0 if argv else 2
    try:
        sys.stdout.write(table([Path(a) for a in argv]) + "\n")
    except (OSError, ValueError, KeyError) as e:
        sys.stderr.write(f"bench_pairs.py: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
