"""A residual branch with another output convolution, trained alone: held-out PSNR for the same recipe.

Does a branch of the default family spend its FLOPs well? The residual's output convolution (width -> 3*s*s
channels, 3x3) is 42 % of the width-16 medium branch's weights; this trains the medium branch of a config's
branch recipe (``[branches]``, its iterations replaced by ``--iterations``) with that convolution 1x1 instead
(``--tail 1``, usually with one more body convolution, ``--depth``) or as shipped (``--tail 3``), on prepared
data (``classsr train prepare``), and prints the multiply-adds per LR pixel and the held-out PSNR (the training
photos' held-out sub-images, as every branch stage reports it). Not an engine option: the engine's tiles
assume 3x3 convolutions. A research check; its run folder is a scratch one.

    python scripts/branch_variant.py --width 16 --depth 5 --tail 1 --iterations 6000 --out runs/tail1
    python scripts/branch_variant.py --width 16 --depth 4 --tail 3 --iterations 6000 --out runs/tail3
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import torch
from torch import nn

from classsr_cli.models.residual import ResidualSR
from classsr_cli.train.config import load_train_config
from classsr_cli.train.loop import init_distributed
from classsr_cli.train.stages import Trainer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=Path("configs/residual_x4.toml"))
    ap.add_argument("--data", type=Path, default=Path("runs/residual_x4/data"))
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--tail", type=int, choices=(1, 3), default=3, help="output convolution's kernel size")
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
    net = ResidualSR(width=args.width, depth=args.depth, scale=cfg.scale)
    if args.tail != 3:
        net.tail = nn.Conv2d(args.width, 3 * cfg.scale**2, args.tail, padding=args.tail // 2)
        nn.init.zeros_(net.tail.weight)
        nn.init.zeros_(net.tail.bias)
        net.__dict__.pop("_convs", None)
    macs = sum(p.numel() for p in net.parameters() if p.dim() == 4)
    extras = trainer._train_branch("branch1", net, trainer.data.train_index, trainer.data.val_index)
    out = {"width": args.width, "depth": args.depth, "tail": args.tail, "iterations": args.iterations,
           "macs_per_lr_pixel": macs, "val": extras.get("val", {})}
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
