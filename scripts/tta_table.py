"""What ``--tta`` buys and costs, read back from pairs of ``classsr bench --json`` records: one run without the
self-ensemble and one with, per model and set. Prints a markdown table: PSNR-Y of the heavy branch and of the routed
model without and with it, the gain, and each method's time and FLOPs with it over without; then, per set, the first
model's routed run with the self-ensemble against the second model's without it (both routed: PSNR-Y and seconds).

    python scripts/tta_table.py docs/results/fiftyninth/tta_{MODEL}_{SET}_t{TTA}.json
    python scripts/tta_table.py --root docs/results/fiftyninth --models classsr_residual_x4 classsr_residual64_x4 \\
        --sets Set5 Set14 B100 Urban100 SunHays80 --tta 8
    python scripts/tta_table.py --root docs/results/fiftyninth docs/results/sixtieth \\
        --models classsr_residual_x2 classsr_residual64_x2 --sets Set5 Set14 B100

The records were made by ``classsr bench SET -x 4 --model MODEL --threads 2 --methods bicubic,heavy,classsr
--repeat 2 --tta T --json`` (T = 1, then 8).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def row(plain: dict[str, Any], tta: dict[str, Any]) -> dict[str, float]:
    """The figures of one model and set: PSNR-Y (dB) without and with, time and FLOPs ratios with over without."""
    if plain.get("tta", 1) != 1 or tta.get("tta", 1) <= 1:
        raise ValueError("the first record must be without --tta, the second with it")
    if plain["inputs"] != tta["inputs"] or plain["model"] != tta["model"]:
        raise ValueError("the two records are not of the same images and model")
    out: dict[str, float] = {"images": plain["images"], "passes": tta["tta"]}
    for m in ("heavy", "classsr"):
        a, b = plain["methods"][m], tta["methods"][m]
        out[f"{m}_psnr"], out[f"{m}_psnr_tta"] = a["psnr_y"], b["psnr_y"]
        out[f"{m}_gain"] = b["psnr_y"] - a["psnr_y"]
        out[f"{m}_time"] = b["seconds"] / a["seconds"]
        out[f"{m}_flops"] = b["flops"] / a["flops"]
    out["classsr_vs_heavy_tta_time"] = tta["methods"]["classsr"]["seconds"] / tta["methods"]["heavy"]["seconds"]
    out["classsr_vs_heavy_tta_psnr"] = tta["methods"]["classsr"]["psnr_y"] - tta["methods"]["heavy"]["psnr_y"]
    return out


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, nargs="+", default=[Path("docs/results/fiftyninth")],
                   help="folders of the records; each is looked for in the first that has it")
    p.add_argument("--models", nargs="+", default=["classsr_residual_x4", "classsr_residual64_x4"])
    p.add_argument("--sets", nargs="+", default=["Set5", "Set14", "B100", "Urban100", "SunHays80"])
    p.add_argument("--tta", type=int, default=8)
    args = p.parse_args(argv)

    def found(name: str) -> Path:
        return next((root / name for root in args.root if (root / name).exists()), args.root[0] / name)

    say("| model | set | heavy PSNR-Y → with --tta (gain) | routed PSNR-Y → with --tta (gain) | routed − heavy, both "
          "with --tta | time × (heavy, routed) | FLOPs × (heavy, routed) | routed time / heavy's, both with --tta |")
    say("|---|---|---|---|---|---|---|---|")
    for model in args.models:
        for name in args.sets:
            files = [found(f"tta_{model}_{name}_t{t}.json") for t in (1, args.tta)]
            if not all(f.exists() for f in files):
                continue
            r = row(*(json.loads(f.read_text()) for f in files))
            say(f"| {model} | {name} ({r['images']:g}) | {r['heavy_psnr']:.2f} → {r['heavy_psnr_tta']:.2f} "
                  f"({r['heavy_gain']:+.3f}) | {r['classsr_psnr']:.2f} → {r['classsr_psnr_tta']:.2f} "
                  f"({r['classsr_gain']:+.3f}) | {r['classsr_vs_heavy_tta_psnr']:+.3f} | {r['heavy_time']:.1f}, "
                  f"{r['classsr_time']:.1f} | {r['heavy_flops']:.2f}, {r['classsr_flops']:.2f} | "
                  f"{r['classsr_vs_heavy_tta_time']:.2f} |")
    if len(args.models) < 2:
        return
    first, second = args.models[:2]
    say()
    say(f"| set | {first} with --tta {args.tta}: PSNR-Y, s | {second}: PSNR-Y, s | difference (dB), time × |")
    say("|---|---|---|---|")
    for name in args.sets:
        files = [found(f"tta_{first}_{name}_t{args.tta}.json"), found(f"tta_{second}_{name}_t1.json")]
        if not all(f.exists() for f in files):
            continue
        a, b = (json.loads(f.read_text())["methods"]["classsr"] for f in files)
        say(f"| {name} | {a['psnr_y']:.2f}, {a['seconds']:.2f} | {b['psnr_y']:.2f}, {b['seconds']:.2f} | "
              f"{b['psnr_y'] - a['psnr_y']:+.3f}, {b['seconds'] / a['seconds']:.2f} |")


if __name__ == "__main__":
    main()
