"""The classifier's frame pass two ways, timed in turns: its hidden features as oneDNN convolutions
(:meth:`Classifier._hidden`, 4x4 stride-4 then three 1x1) and as four matrix products over the 4x4 blocks
(:meth:`Classifier._hidden_blocks`, what :meth:`Classifier.grid_scores` runs). Windows as the engine classifies
them (each frame's ×S LR, replicate-padded to whole cells).

    python scripts/classifier_speed.py B100 SunHays80 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from classsr_cli import bench, zoo
from classsr_cli.engine.defaults import DEFAULT_STEP, PATCH


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", nargs="+", help="set names under the validation folder, or folders")
    ap.add_argument("--model", default=None)
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clf = zoo.load(args.model, args.scale).net.classifier.eval()
    k, st = PATCH // 4, DEFAULT_STEP // 4
    ways = {"convolutions": lambda w: F.avg_pool2d(clf._hidden(w), k, st),
            "matrix products": lambda w: F.avg_pool2d(clf._hidden_blocks(w), k, st)}
    out = {}
    for name in args.sets:
        pairs = bench.load_pairs(bench.find_inputs([name])[0], args.scale)
        wins = []
        for p in pairs:
            x = torch.from_numpy(p.lr).permute(2, 0, 1)[None].float().div(255)
            h, w = x.shape[2:]
            rows, cols = -(-h // DEFAULT_STEP), -(-w // DEFAULT_STEP)
            m = (PATCH - DEFAULT_STEP) // 2
            pad = F.pad(x, (m, cols * DEFAULT_STEP - w + m, m, rows * DEFAULT_STEP - h + m), mode="replicate")
            wins.append(pad[:, :, : (rows - 1) * DEFAULT_STEP + PATCH, : (cols - 1) * DEFAULT_STEP + PATCH])
        times: dict[str, list[float]] = {way: [] for way in ways}
        with torch.inference_mode():
            diff = max(float((ways["convolutions"](w) - ways["matrix products"](w)).abs().max()) for w in wins)
            for _ in range(args.rounds + 1):  # the first round warms up and is dropped
                for way, fn in ways.items():
                    t = time.perf_counter()
                    for w in wins:
                        fn(w)
                    times[way].append((time.perf_counter() - t) / len(wins) * 1e3)
        out[name] = {way: round(statistics.median(v[1:]), 3) for way, v in times.items()}
        out[name]["max_abs_diff"] = diff
        sys.stderr.write(f"{name}: {out[name]} (ms a frame)\n")
    sys.stdout.write(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
