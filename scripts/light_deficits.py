"""How close each run's light branch comes to the heavy branch on easy content: on the training sub-images (never
the validation sets), split in thirds by how much the heavy branch gains over bicubic (the issue's measure of
difficulty), the light branch's mean error increase over heavy and the share of each third within per-patch
tolerances (what a perfect predictor of the per-patch rule would send to it). Each run's ``deficits.npy``
(written by its ranking stage) gives the branch errors; the gains come from the first run's baseline.

    python scripts/light_deficits.py runs/lumayy_x4 runs/lumalight16d0_x4 runs/lumalight16d0e_x4 \\
        --data runs/residual_x4/data --tolerances 2.15 2.61 --json out.json

The runs must share the prepared data (``--data``) and measure the same error (``classifier_error``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from classsr_cli.checkpoint import load_checkpoint
from classsr_cli.train.config import load_train_config
from classsr_cli.train.data import PatchData
from classsr_cli.train.stages import bicubic_gains


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (config.json, baseline.safetensors, deficits.npy)")
    ap.add_argument("--data", type=Path, required=True, help="the runs' prepared data")
    ap.add_argument("--tolerances", type=float, nargs="+", default=[2.15, 2.61], help="per-patch tolerances, levels²")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data = PatchData(a.data)
    kind = load_train_config(a.runs[0] / "config.json").classifier_error
    heavy = load_checkpoint(a.runs[0] / "baseline.safetensors", expect_kind="branch").module.eval()
    train = data.train_index
    gain = bicubic_gains(data, train, heavy, kind).numpy()
    order = np.argsort(gain, kind="stable")
    thirds = dict(zip(("easiest", "middle", "hardest"), np.array_split(order, 3), strict=True))
    idx = train.cpu().numpy()
    out = {"sub_images": len(idx), "error": kind, "gain_easiest_max": float(gain[thirds["easiest"]].max()), "runs": {}}
    for run in a.runs:
        mse = np.load(run / "deficits.npy")[idx]
        d = np.maximum(mse[:, 0] - mse[:, 2], 0)
        row = {name: {"mean_deficit": round(float(d[t].mean()), 3),
                      **{f"within_{tol:g}": round(float((d[t] <= tol).mean()), 4) for tol in a.tolerances}}
               for name, t in thirds.items()}
        out["runs"][str(run)] = row
        sys.stdout.write(f"{run} {json.dumps(row)}\n")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
