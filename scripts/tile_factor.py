"""How the tile planner's price of a tile pixel against a whole band's (:data:`cells.TILE_FACTOR`) changes routed
time, on training photos only (never the validation sets): each factor's routed run of every frame, timed in turns
frame by frame with the heavy branch on the whole frame, at several tolerances. ``--call-pixels`` also sweeps the
price of a call (:data:`cells.CALL_PIXELS`), ``--blocks`` the side of the planner's blocks (``FrameRun(block=)``,
:data:`DEFAULT_BLOCK`; 1: no block raising).

Frames: the first N photos of a training folder, as LR = bicubic ÷scale of the mod-cropped photo (what ``bench``
feeds; ``--downscales`` other divisors) and, with ``--native``, the photos as given (what ``upscale`` feeds).

    python scripts/tile_factor.py --factors 1 1.25 1.5 2 --tolerances default 0.1 0.2 --native --json out.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from report import emit  # scripts/

from classsr_cli import zoo
from classsr_cli.degrade import load_rgb, make_pair
from classsr_cli.engine import Argmax, FrameRun, Router, cells
from classsr_cli.engine.defaults import DEFAULT_BLOCK, DEFAULT_STEP


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--photos", type=Path, default=Path("../shared/data/train/BSD200"))
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--native", action="store_true", help="also the photos as given")
    ap.add_argument("--downscales", type=int, nargs="+", default=None,
                    help="LR frames at these divisors of the photos (default: the scale; 2 at x4 gives frames of "
                         "SunHays80's LR size from BSD200)")
    ap.add_argument("--factors", type=float, nargs="+", default=[1.0, 1.25, 1.5, 2.0])
    ap.add_argument("--call-pixels", type=int, nargs="+", default=None,
                    help="also sweep the CPU's price of a call (cells.CALL_PIXELS; default: as it is)")
    ap.add_argument("--blocks", type=int, nargs="+", default=None,
                    help="also sweep the planner's block side (default: DEFAULT_BLOCK)")
    ap.add_argument("--tolerances", nargs="+", default=["default"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--step", type=int, default=DEFAULT_STEP, help="cell side in LR pixels (the engine's --step)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net = zoo.load(args.model, args.scale).net.eval()
    photos = [load_rgb(p) for p in sorted(args.photos.glob("*"))[: args.count]]
    groups = {("lr" if d == args.scale else f"lr/{d}"): [make_pair(img, d)[1] for img in photos]
              for d in (args.downscales or [args.scale])}
    if args.native:
        groups["native"] = photos
    saved, saved_calls = dict(cells.TILE_FACTOR), dict(cells.CALL_PIXELS)
    settings = [(f, c, b) for f in args.factors for c in (args.call_pixels or [cells.CALL_PIXELS["cpu"]])
                for b in (args.blocks or [DEFAULT_BLOCK])]
    out: dict = {"model": args.model or "default", "scale": args.scale, "step": args.step, "photos": str(args.photos),
                 "count": len(photos), "threads": args.threads, "rows": []}
    try:
        for group, images in groups.items():
            xs = [torch.from_numpy(a).permute(2, 0, 1)[None].float().div(255).contiguous() for a in images]
            for tol in args.tolerances:
                t = None if tol == "default" else float(tol)
                times: dict[tuple[float, int, int], list[float]] = {k: [] for k in settings}
                heavy: list[float] = []
                flops: dict[tuple[float, int, int], float] = {}
                with torch.inference_mode():
                    for r in range(args.rounds + 1):  # round 0 warms up
                        # frame by frame, every factor and the heavy branch in turns: this machine's drift
                        # falls on all of them alike
                        total = dict.fromkeys(settings, 0.0)
                        used = dict.fromkeys(settings, 0)
                        whole = dict.fromkeys(settings, 0)
                        total_heavy = 0.0
                        for i, x in enumerate(xs):
                            turn = (i + r) % len(settings)  # each setting in every place of the turn alike
                            for k in settings[turn:] + settings[:turn]:
                                cells.TILE_FACTOR["cpu"], cells.CALL_PIXELS["cpu"], block = k
                                s = time.perf_counter()
                                run = FrameRun(net, x, router=Router(Argmax(t)), step=args.step, block=block)
                                for _ in run:  # one band: the whole frame, as upscale_tensor
                                    pass
                                res = run.result
                                total[k] += time.perf_counter() - s
                                used[k], whole[k] = used[k] + res.flops.used, whole[k] + res.flops.whole
                            s = time.perf_counter()
                            net.branches[2](x)
                            total_heavy += time.perf_counter() - s
                        if r:
                            for k in settings:
                                times[k].append(total[k])
                            heavy.append(total_heavy)
                        flops = {k: used[k] / whole[k] for k in settings}
                h = statistics.median(heavy)
                for k in settings:
                    row = {"frames": group, "tolerance": tol, "factor": k[0], "call_pixels": k[1], "block": k[2],
                           "heavy_s": round(h, 3), "routed_s": round(statistics.median(times[k]), 3),
                           "time_vs_heavy": round(statistics.median(times[k]) / h, 3),
                           "flops_vs_heavy": round(flops[k], 3)}
                    out["rows"].append(row)
                    sys.stderr.write(f"{row}\n")
    finally:
        cells.TILE_FACTOR.update(saved)
        cells.CALL_PIXELS.update(saved_calls)
    emit(out, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
