"""The classifier's frame pass two ways, timed in turns through the engine's own :func:`classify_cells` on every
frame of a set (×S LR, padded and cut into windows as a routed run does): its hidden features as oneDNN
convolutions (:meth:`Classifier._hidden`, 4x4 stride-4 then three 1x1) and as four matrix products over the 4x4
blocks (:meth:`Classifier._hidden_blocks`, what :meth:`Classifier.grid_scores` runs). With ``--models``, the
frame pass as shipped of several checkpoints instead, in turns (e.g. classifiers of different widths).

    python scripts/classifier_speed.py B100 SunHays80 --threads 2
    python scripts/classifier_speed.py B100 SunHays80 --threads 2 --models old_x4.safetensors weights/classsr_residual_x4.safetensors
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from classsr_cli import bench, zoo
from classsr_cli.engine.cells import band_input, classify_cells, pad_frame, plan_cells
from classsr_cli.engine.defaults import DEFAULT_STEP, PATCH
from classsr_cli.models.classifier import Classifier


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", nargs="+", help="set names under the validation folder, or folders")
    ap.add_argument("--model", default=None)
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--models", nargs="+", default=[], help="checkpoints whose frame passes to time in turns")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    blocks = Classifier._hidden_blocks
    if args.models:  # several checkpoints, each its shipped frame pass
        ways = {path: (zoo.load(path, args.scale).net.eval(), blocks) for path in args.models}
    else:  # one checkpoint, its frame pass two ways
        net = zoo.load(args.model, args.scale).net.eval()
        ways = {"convolutions": (net, Classifier._hidden), "matrix products": (net, blocks)}
    out = {}
    for name in args.sets:
        lrs = [torch.from_numpy(p.lr).permute(2, 0, 1)[None].float().div(255).contiguous()
               for p in bench.load_pairs(bench.find_inputs([name])[0], args.scale)]
        frames = {}  # each model's bands as the engine cuts them (a frame-context classifier's with its context)
        for way, (model, _) in ways.items():
            plans = [plan_cells(x.shape[2], x.shape[3], step=DEFAULT_STEP, patch=PATCH, halo=0,
                                context=model.classifier.margin) for x in lrs]
            frames[way] = [(band_input(pad_frame(x, plan), plan, 0, plan.rows), plan) for x, plan in zip(lrs, plans, strict=True)]
        times: dict[str, list[float]] = {way: [] for way in ways}
        classes: dict[str, list[torch.Tensor]] = {}
        try:
            for _ in range(args.rounds + 1):  # the first round warms up and is dropped
                for way, (model, hidden) in ways.items():
                    Classifier._hidden_blocks = hidden  # type: ignore[method-assign]
                    t = time.perf_counter()
                    classes[way] = [classify_cells(model, band, plan) for band, plan in frames[way]]
                    times[way].append((time.perf_counter() - t) / len(lrs) * 1e3)
        finally:
            Classifier._hidden_blocks = blocks  # type: ignore[method-assign]
        out[name] = {way: round(statistics.median(v[1:]), 3) for way, v in times.items()}
        if not args.models:  # two ways of one classifier: they must agree
            out[name]["same_classes"] = all(torch.equal(a, b) for a, b in zip(*classes.values(), strict=True))
        sys.stderr.write(f"{name}: {out[name]} (ms a frame)\n")
    sys.stdout.write(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
