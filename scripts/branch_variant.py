"""A residual branch with another output convolution, trained alone: held-out PSNR for the same recipe.

Does a branch of the default family spend its FLOPs well? The residual's output convolution (width -> 3*s*s
channels, 3x3) is 42 % of the width-16 medium branch's weights; this trains the medium branch of a config's
branch recipe (``[branches]``, its iterations replaced by ``--iterations``) with that convolution 1x1 instead
(``--tail 1``, usually with one more body convolution, ``--depth``) or as shipped (``--tail 3``), or with an
output convolution of ``s*s`` channels whose residual is added alike to R, G and B (``--luma``: a correction of
luma alone, chroma left to bicubic, as FSRCNN and SRCNN work on Y; a third of the output convolution), on
prepared data (``classsr train prepare``), and prints the multiply-adds per LR pixel and the held-out PSNR (the
training photos' held-out sub-images, as every branch stage reports it: RGB) and PSNR-Y (BT.601, border = scale,
on the same sub-images). ``--luma`` is the model's own ``luma`` option (trained, as the branch stage trains it,
on the L1 of luma); ``--tail 1`` is not an engine option (the engine's tiles assume 3x3 convolutions). A research
check; its run folder is a scratch one.

    python scripts/branch_variant.py --width 16 --depth 5 --tail 1 --iterations 6000 --out runs/tail1
    python scripts/branch_variant.py --width 16 --depth 4 --tail 3 --iterations 6000 --out runs/tail3
    python scripts/branch_variant.py --width 16 --depth 4 --luma --iterations 6000 --out runs/luma
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import torch
from torch import nn

from classsr_cli.metrics import luma_levels
from classsr_cli.models.residual import ResidualSR
from classsr_cli.train.config import load_train_config
from classsr_cli.train.loop import init_distributed
from classsr_cli.train.stages import Trainer


@torch.no_grad()
def val_psnr_y(trainer: Trainer, net: nn.Module) -> float:
    """Mean PSNR-Y of ``net`` on the held-out sub-images (8-bit quantised output, border = scale)."""
    s = trainer.cfg.scale
    values = []
    for lr, hr in trainer._val_batches(trainer.data.val_index):
        sr = (net(lr).clamp(0, 1) * 255).round() / 255
        diff = (luma_levels(sr) - luma_levels(hr))[..., s:-s, s:-s]
        values.append(10 * torch.log10(255.0**2 / diff.pow(2).mean(dim=(1, 2)).clamp_min(1e-10)))
    return float(torch.cat(values).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=Path("configs/residual_x4.toml"))
    ap.add_argument("--data", type=Path, default=Path("runs/residual_x4/data"))
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--tail", type=int, choices=(1, 3), default=3, help="output convolution's kernel size")
    ap.add_argument("--luma", action="store_true", help="an output convolution of s*s channels, added to R, G and B")
    ap.add_argument("--iterations", type=int, default=6000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    recipe = tomllib.loads(args.config.read_text())
    recipe["branches"]["iterations"] = args.iterations
    cfg = load_train_config(None, **recipe)
    trainer = Trainer(cfg, args.out, args.data, init_distributed(torch.device("cpu")))
    torch.manual_seed(cfg.seed + 2)  # the medium branch's seed in the branch stage
    net = ResidualSR(width=args.width, depth=args.depth, scale=cfg.scale, luma=args.luma)
    if args.tail != 3:
        out_channels = (1 if args.luma else 3) * cfg.scale**2
        net.tail = nn.Conv2d(args.width, out_channels, args.tail, padding=args.tail // 2)
        nn.init.zeros_(net.tail.weight)
        nn.init.zeros_(net.tail.bias)
        net.__dict__.pop("_convs", None)
    macs = sum(p.numel() for p in net.parameters() if p.dim() == 4)
    extras = trainer._train_branch("branch1", net, trainer.data.train_index, trainer.data.val_index)
    net.eval()
    out = {"width": args.width, "depth": args.depth, "tail": args.tail, "luma": args.luma,
           "iterations": args.iterations, "macs_per_lr_pixel": macs, "val": extras.get("val", {}),
           "val_psnr_y": round(val_psnr_y(trainer, net), 4)}
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
