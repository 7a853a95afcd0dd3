"""What ``classsr upscale --model auto`` gives on a set whose LR is clean, noisy or compressed: for every picture, the
model :func:`classsr_cli.pipeline.suited_model` picks from the LR (as ``upscale`` reads it: its pixels, and the JPEG
quality it was saved at), against running each shipped model on every picture.

LR as ``classsr bench SET --noise S --jpeg Q`` makes it (noise, then JPEG); each model's routed output scored as bench
scores it (PSNR-Y against the HR, border = scale). Prints one JSON line per (set, condition): each model's mean PSNR-Y,
auto's, and how many pictures auto gave each model.

    PYTHONPATH=scripts python scripts/auto_model.py SunHays80 B100 --conditions clean q60 s8 s8q75 --threads 2

With ``--as-given``, no LR is made and nothing upscaled: one JSON line per set, the model auto picks for each of
its pictures as ``classsr upscale`` reads it (at its own size, its JPEG quality read from its file), and why.

With ``--bins``, also one JSON line per (set, condition, band of the noise estimate): how many pictures fall in it
and each model's mean PSNR-Y there, to see where a model pays (run it on training photos, never to tune on the
validation sets).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import time

import numpy as np
import torch


def main() -> int:
    from classsr_cli import bench, zoo
    from classsr_cli.io.image import Picture
    from classsr_cli.pipeline import suited_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", nargs="+", help="set names under ../shared/data/val, or folders")
    ap.add_argument("--conditions", nargs="+", default=["clean", "q60", "s8", "s8q75"],
                    help="clean, qQ (saved as JPEG at quality Q), sS (noise of S levels), sSqQ (both)")
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bins", type=float, nargs="*", default=None,
                    help="edges of the noise estimate's bands, levels (e.g. 0.5 1 1.5 2 3 4)")
    ap.add_argument("--as-given", action="store_true", help="only the picks on the pictures as given")
    args = ap.parse_args()
    from classsr_cli.metrics import noise_level

    if args.as_given:
        from classsr_cli.io.image import read_image

        for set_name in args.sets:
            picks = {path.name: suited_model(read_image(path), args.scale) for path in bench.find_images([set_name])}
            counts: dict[str, int] = {}
            for name, _ in picks.values():
                counts[name or "default"] = counts.get(name or "default", 0) + 1
            sys.stdout.write(json.dumps({"set": set_name, "scale": args.scale, "images": len(picks), "auto_picked": counts,
                                         "not_default": {k: why for k, (name, why) in picks.items() if name}}) + "\n")
        return 0

    torch.set_num_threads(args.threads)
    names = {None: zoo.default_model_name(args.scale), "jpeg": zoo.jpeg_model_name(args.scale),
             "noisy": zoo.noisy_model_name(args.scale)}  # fmt: skip
    nets = {name: zoo.load(name, args.scale).net.eval() for name in names.values() if name}
    for set_name in args.sets:
        paths = bench.find_images([set_name])
        for condition in args.conditions:
            m = re.fullmatch(r"(?:s([\d.]+))?(?:q(\d+))?", "" if condition == "clean" else condition)
            if m is None:
                raise SystemExit(f"{condition}: not clean, qQ, sS or sSqQ")
            noise, quality = (float(m[1]) if m[1] else None), (int(m[2]) if m[2] else None)
            started = time.strftime("%H:%M:%S", time.gmtime())
            pairs = bench.load_pairs(paths, args.scale, jpeg=quality, noise=noise)
            scores = {}
            for name, net in nets.items():
                r = bench.run_bench(net, pairs, repeat=1, warmup=0, methods=("classsr",), threads=args.threads,
                                    model_name=name, scale=args.scale)
                scores[name] = [row["psnr_y"] for row in r.methods["classsr"].per_image]
            picked = [suited_model(Picture(pixels=p.lr, jpeg_quality=quality, source_mode="RGB"), args.scale)[0]
                      or names[None] for p in pairs]
            auto = [scores[name][k] for k, name in enumerate(picked)]
            record = {"set": set_name, "images": len(pairs), "noise": noise, "jpeg": quality, "started_utc": started,
                      "load_average": round(__import__("os").getloadavg()[0], 2), "threads": args.threads,
                      "psnr_y": {**{name: round(float(np.mean(v)), 3) for name, v in scores.items()},
                                 "auto": round(float(np.mean(auto)), 3)},
                      "auto_picked": {name: picked.count(name) for name in nets if picked.count(name)}}
            sys.stdout.write(json.dumps(record) + "\n")
            if args.bins is not None:
                level = np.array([noise_level(p.lr) for p in pairs])
                edges = [0.0, *args.bins, float("inf")]
                for lo, hi in itertools.pairwise(edges):
                    inside = (level >= lo) & (level < hi)
                    if inside.any():
                        sys.stdout.write(json.dumps({
                            "set": set_name, "noise": noise, "jpeg": quality, "estimate": [lo, hi],
                            "images": int(inside.sum()),
                            "psnr_y": {n: round(float(np.mean(np.array(v)[inside])), 3) for n, v in scores.items()},
                        }) + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
