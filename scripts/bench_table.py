"""Turn `classsr bench --json` files into Markdown tables (one per scale), for the README.

    python scripts/bench_table.py results/bench/*.json > results/bench/bench.md

Each JSON's file name (``<set>_x<scale>.json``, as scripts/bench_val.sh writes them) names its set. The full table
gives each method's ``spread`` (its slowest timed pass over its fastest) and, under each scale's table, the load
average each run recorded before it started and after its last timed pass (files written before `bench` recorded
them show a dash and no load line).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _f(x: float | None, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def table(reports: list[tuple[str, dict]]) -> str:
    lines = []
    by_scale: dict[int, list[tuple[str, dict]]] = {}
    for name, r in reports:
        by_scale.setdefault(r["scale"], []).append((name, r))
    for scale in sorted(by_scale, reverse=True):
        group = by_scale[scale]
        first = group[0][1]
        lines.append(
            f"**×{scale}** · {first['device']} ({first['device_name']}) · {first['threads']} thread(s) · "
            f"{first['precision']} · median of {first['repeat']} pass(es) · step {first['step']} · "
            f"model `{Path(first['model']).name}` · torch {first['torch']}"
        )
        lines.append("")
        lines.append(
            "| set (images) | method | PSNR-Y | ΔPSNR-Y | SSIM-Y | PSNR-RGB | FLOPs × heavy | paper FLOPs × heavy "
            "| seconds | time × heavy | spread | MP/s | ClassSR split L/M/H |"
        )
        lines.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
        for name, r in group:
            heavy = r["methods"].get("heavy", {})
            for method, m in r["methods"].items():
                split = ""
                if "patches" in m:
                    n = sum(m["patches"].values()) or 1
                    split = " / ".join(f"{100 * v / n:.0f}%" for v in m["patches"].values())
                dy = None if m["psnr_y"] is None or heavy.get("psnr_y") is None else m["psnr_y"] - heavy["psnr_y"]
                lines.append(
                    f"| {name} ({r['images']}) | {method} | {_f(m['psnr_y'], '.2f')} | {_f(dy, '+.2f')} "
                    f"| {_f(m['ssim_y'], '.4f')} | {_f(m['psnr_rgb'], '.2f')} "
                    f"| {_f(_ratio(m['flops'], heavy.get('flops')), '.2f')} "
                    f"| {_f(_ratio(m['flops_paper'], heavy.get('flops_paper')), '.2f')} "
                    f"| {_f(m['seconds'], '.3f')} | {_f(_ratio(m['seconds'], heavy.get('seconds')), '.2f')} "
                    f"| {_f(m.get('spread'), '.2f')} | {_f(m['mp_per_s'], '.2f')} | {split} |"
                )
        lines.append("")
        loads = [f"{name} {r['load_average'][0]:g} → {r['load_average'][1]:g}" for name, r in group
                 if r.get("load_average")]
        if loads:  # files from before bench recorded it have none
            lines += [f"Load average before → after each run: {', '.join(loads)}.", ""]
    return "\n".join(lines)


def summary(reports: list[tuple[str, dict]]) -> str:
    """One row per set and scale: bicubic, medium, heavy (whole image), classsr, the split, and classsr's FLOPs and
    time as multiples of heavy's (the docs' summary; the full rows come from :func:`table`)."""
    lines = []
    for scale in sorted({r["scale"] for _, r in reports}, reverse=True):
        lines += [f"**×{scale}**", "",
                  "| set (images) | bicubic | medium alone | heavy, whole image | classsr | classsr − heavy "
                  "| split L / M / H | FLOPs × heavy | time × heavy |", "|---|---|---|---|---|---|---|---|---|"]
        for name, r in reports:
            if r["scale"] != scale:
                continue
            m = r["methods"]
            h, c = m["heavy"], m["classsr"]
            n = sum(c["patches"].values()) or 1
            split = " / ".join(f"{100 * v / n:.0f}" for v in c["patches"].values())
            lines.append(
                f"| {name} ({r['images']}) | {m['bicubic']['psnr_y']:.2f} | {m['medium']['psnr_y']:.2f} "
                f"| {h['psnr_y']:.2f} | {c['psnr_y']:.2f} | {c['psnr_y'] - h['psnr_y']:+.2f} | {split} % "
                f"| {c['flops'] / h['flops']:.2f}× | {c['seconds'] / h['seconds']:.2f}× |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    short = "--summary" in argv
    argv = [a for a in argv if a != "--summary"]
    if "-h" in argv or "--help" in argv:
        sys.stdout.write(f"usage: python scripts/bench_table.py [--summary] RESULT.json ...\n\n{__doc__}")
        return 0
    if not argv:
        sys.stderr.write("usage: python scripts/bench_table.py [--summary] RESULT.json ...\n")
        return 2
    reports = []
    for arg in argv:
        path = Path(arg)
        reports.append((path.stem.rsplit("_x", 1)[0], json.loads(path.read_text())))
    sys.stdout.write((summary(reports) if short else table(reports)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
