"""Tried (thirty-fifth and thirty-seventh passes): classifier labels without the HR's noise. Do they route the easy
cells light?

A sub-image's measured deficit (a cheaper branch's luma squared error minus the heavy branch's, ``RUN/deficits.npy``)
carries the part of the HR that no network can see in the LR. Were the heavy branch the conditional mean of the HR
given the LR, a branch's expected deficit would be the squared difference between its output and the heavy
branch's, a function of the LR alone that a classifier could learn without noise.

``make``: in a run folder seeded with a model's branches (``scripts/run_from_weights.py``), rank it if needed
(``classsr train rank``: the measured deficits), keep those in ``RUN/deficits_measured.npy``, and replace the light
column of ``RUN/deficits.npy`` (``--columns 0 1``: the medium one too) by the heavy branch's error plus that squared
difference (in the error the labels measure, ``classifier_error``: luma in the default recipe; border = scale), so
that ``classsr train all`` on the folder trains and calibrates the classifier on them. ``--over-medium`` (tried in
the thirty-seventh pass) replaces the light label by the medium's measured error plus the light branch's squared
difference from heavy's output less the medium's: the light branch's expected error over the medium's, were heavy
the conditional mean, on top of the medium's measured one (which stays). Prints each label's median and the correlation of its log10 with the measured one's.
``screen``: each MODEL's classifier on the run's held-out sub-images (those training holds out), decided at its own
price and at 1.25 and 1.5 times it: the share of the easiest third (least gain of heavy over bicubic, measured) and
of the hardest third decided light, the decided shares, and the mean measured deficit of the decisions (levels²).

    python scripts/run_from_weights.py weights/classsr_residual_x4.safetensors configs/residual_x4.toml runs/explight_x4
    python scripts/expected_labels.py make runs/explight_x4 --data runs/fitted_x4/data \\
        --config configs/residual_x4.toml [--columns 0 1]
    classsr train all --hr ../shared/data/train/T91 --hr ../shared/data/train/BSD200 \\
        --config configs/residual_x4.toml --out runs/explight_x4 --data runs/fitted_x4/data --threads 2
    python scripts/expected_labels.py screen runs/explight_x4 --data runs/fitted_x4/data \\
        weights/classsr_residual_x4.safetensors runs/explight_x4/classsr.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from report import emit  # scripts/

from classsr_cli.checkpoint import load_checkpoint
from classsr_cli.errors import ClassSRError
from classsr_cli.models.classsr import DEFICIT_EPS, priced_classes
from classsr_cli.train.config import load_train_config
from classsr_cli.train.loop import init_distributed
from classsr_cli.train.stages import Trainer, bicubic_gains, squared_error


def branch_nets(trainer: Trainer) -> list[torch.nn.Module]:
    return [load_checkpoint(p, expect_kind="branch").module.eval() for p in trainer.branches()]


def measured_errors(run: Path) -> np.ndarray:
    """The run's measured errors ``(N, 3)``: kept aside once ``make`` has replaced the labels."""
    kept = run / "deficits_measured.npy"
    return np.load(kept if kept.exists() else run / "deficits.npy")


@torch.no_grad()
def differences(trainer: Trainer) -> np.ndarray:
    """``(N, 2)``: the light and medium branches' squared difference from the heavy branch's output, in the error
    the run's labels measure (``classifier_error``), border = scale."""
    data, b, kind = trainer.data, trainer.data.scale, trainer.cfg.classifier_error
    nets = branch_nets(trainer)
    rows = []
    for c in torch.arange(len(data.patches)).split(256):
        out = [net(data.batch(c)[0])[..., b:-b, b:-b] for net in nets]
        rows.append(torch.stack([squared_error(o - out[2], kind) for o in out[:2]], 1))
    return torch.cat(rows).numpy().astype(np.float32)


def make(args: argparse.Namespace, trainer: Trainer) -> None:
    trainer.rank()
    mse = measured_errors(args.run)
    np.save(args.run / "deficits_measured.npy", mse)
    diff = differences(trainer)
    out = mse.copy()
    report = {}
    for k in args.columns:
        if args.over_medium:  # the light label: the medium's measured error plus the expected step from it to light
            out[:, 0] = mse[:, 1] + diff[:, 0] - diff[:, 1]
        else:
            out[:, k] = mse[:, 2] + diff[:, k]
        expected = np.maximum(out[:, k] - mse[:, 2], 0)
        measured = np.maximum(mse[:, k] - mse[:, 2], 0)
        report[("light", "medium")[k]] = {
            "median_expected": round(float(np.median(expected)), 4),
            "median_measured": round(float(np.median(measured)), 4),
            "corr_log10": round(float(np.corrcoef(np.log10(DEFICIT_EPS + expected),
                                                   np.log10(DEFICIT_EPS + measured))[0, 1]), 4)}
    np.save(args.run / "deficits.npy", out)
    emit({"run": str(args.run), "columns": args.columns, "labels": report}, args.json)


@torch.no_grad()
def screen(args: argparse.Namespace, trainer: Trainer) -> None:
    data = trainer.data
    mse = measured_errors(args.run)
    idx = data.val_index
    gain = bicubic_gains(data, idx, branch_nets(trainer)[2], trainer.cfg.classifier_error).numpy()
    easy, hard = gain <= np.quantile(gain, 1 / 3), gain >= np.quantile(gain, 2 / 3)
    measured = np.maximum(mse[idx.numpy(), :2] - mse[idx.numpy(), 2:3], 0)
    rows = []
    for path in args.models:
        model = load_checkpoint(path, expect_kind="classsr").module.eval()
        scores = torch.cat([model.classifier(data.batch(c)[0]) for c in idx.split(256)])
        for factor in (1.0, 1.25, 1.5):
            price = model.cfg.cell_price * factor
            dec = priced_classes(scores, price, model.branch_costs).numpy()
            rows.append({"model": str(path), "price": round(price, 3),
                         "easiest_third_light": round(float(np.mean(dec[easy] == 0)), 4),
                         "hardest_third_light": round(float(np.mean(dec[hard] == 0)), 4),
                         "decided": [round(float(np.mean(dec == k)), 4) for k in range(3)],
                         "mean_deficit_levels2": round(float(np.choose(dec, [measured[:, 0], measured[:, 1],
                                                                             np.zeros(len(dec))]).mean()), 4)})
    emit({"run": str(args.run), "sub_images": len(idx), "rows": rows}, args.json)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["make", "screen"])
    ap.add_argument("run", type=Path, help="a run folder seeded with a model's branches")
    ap.add_argument("models", nargs="*", type=Path, help="screen: the models whose classifiers to compare")
    ap.add_argument("--data", type=Path, help="the run's prepared sub-images (default RUN/data)")
    ap.add_argument("--config", type=Path, help="the run's recipe (default RUN/config.json, which training writes)")
    ap.add_argument("--columns", type=int, nargs="+", choices=[0, 1], default=[0], help="make: the labels to replace")
    ap.add_argument("--over-medium", action="store_true",
                    help="make: the light label is the medium's measured error plus the light branch's squared "
                         "difference from heavy's output less the medium's (thirty-seventh pass)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_intermixed_args()
    if args.over_medium and args.columns != [0]:
        ap.error("--over-medium replaces the light label alone (--columns 0)")
    torch.set_num_threads(args.threads)
    try:
        trainer = Trainer(load_train_config(args.config or args.run / "config.json"), args.run,
                          args.data or args.run / "data", init_distributed(torch.device("cpu")))
    except ClassSRError as e:
        raise SystemExit(f"{args.run}: {e}") from None
    (make if args.what == "make" else screen)(args, trainer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
