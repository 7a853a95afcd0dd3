"""How well a deficit classifier predicts each branch's error increase over heavy, on the held-out training
sub-images of a ``classsr train`` run (never the validation sets), binned by the true increase.

    python scripts/classifier_eval.py runs/residual_x4 weights/classsr_residual_x4.safetensors OTHER.safetensors

For every model: the held-out L1 of log10(0.1 + increase) (the training loss), and per bin of the light
branch's true increase (8-bit levels², from the run's ``deficits.npy``) the median prediction and the share
predicted within 3.16 levels² (the shipped ×4 model's calibrated tolerance). A classifier that floors flat
sub-images predicts several levels² where the truth is about 0, and sends none of them to the light branch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from classsr_cli.checkpoint import load_checkpoint
from classsr_cli.models.classsr import DEFICIT_EPS
from classsr_cli.train.data import PatchData

BINS = ((-np.inf, 0.0), (0.0, 1.0), (1.0, 3.0), (3.0, 10.0), (10.0, 30.0), (30.0, np.inf))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a classsr train run folder (its data/ and deficits.npy)")
    ap.add_argument("models", nargs="+", help="deficit-routing checkpoints trained on that run's branches")
    ap.add_argument("--threshold", type=float, default=3.16)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = PatchData(args.run / "data")
    mse = np.load(args.run / "deficits.npy")
    held = data.val_index
    true = (mse - mse[:, 2:3])[held.numpy()]
    target = np.log10(DEFICIT_EPS + np.clip(true, 0, None))
    out = sys.stdout
    out.write(f"{args.run}: {len(held)} held-out sub-images\n")
    for spec in args.models:
        model = load_checkpoint(spec, expect_kind="classsr").module.eval()
        with torch.no_grad():
            scores = torch.cat([model.classifier(data.batch(c)[0]) for c in held.split(1024)]).double().numpy()
        pred = 10.0**scores - DEFICIT_EPS
        l1 = np.abs(scores[:, :2] - target[:, :2]).mean()
        out.write(f"\n{spec}\n  held-out L1 of log10 (light, medium): {l1:.3f}\n")
        out.write("  light's true increase | sub-images | median true | median predicted | predicted <= "
                  f"{args.threshold:g}\n")
        for lo, hi in BINS:
            sel = (true[:, 0] > lo) & (true[:, 0] <= hi)
            if sel.any():
                out.write(f"  ({lo:g}, {hi:g}] | {int(sel.sum())} | {np.median(true[sel, 0]):.2f} | "
                          f"{np.median(pred[sel, 0]):.2f} | {np.mean(pred[sel, 0] <= args.threshold):.0%}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
