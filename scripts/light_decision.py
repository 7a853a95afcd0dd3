"""Can the light decision be learned better than the deficit regression makes it? Screens on a trained run.

The default decides per patch by the price rule (:func:`~classsr_cli.models.classsr.priced_classes`) on the
classifier's regressed deficits. On the run's own sub-images (``RUN/deficits.npy``: each branch's luma squared
error, levels²), the priced decision with the measured deficits is the oracle; a decision's regret is the
price-rule total (deficit plus price times compute) it pays above the oracle's.

``regret``: fine-tune the run's classifier on the L1 of its log10 labels plus ``--weight`` times a differentiable
regret (the softmin over its predicted totals, at ``--temperature`` levels², of the measured totals above the
oracle's), and report, before and every 1,000 iterations, the mean regret, the light recall (the share of the
oracle's light sub-images decided light) and the decided shares on the held-out sub-images and on 2,000 training
ones. ``binary``: a classifier of the same shape trained from scratch with a logistic loss on "light within the
price" alone, against the regression's own ranking (light deficit minus medium's, predicted), as the area under
the ROC curve on the held-out sub-images; ``--arch context`` trains the classifier with 3x3 middle convolutions
(each 4x4 block sees its neighbours) at ``--width`` instead, ``--arch cnn`` a plain CNN of ``--width`` channels at
the LR sub-image's full resolution (four 3x3 convolutions, two of stride 2; far too dear to route with: an upper
bound on what the LR sub-image tells). ``base``: for a run whose light branch is a fitted base alone
(``extra.fitted_base = 2``), refit that base on the easiest ``--share`` of the training sub-images (by the light
branch's measured deficit) and write the model with it to ``--out``, for ``scripts/routing_eval.py``.
``calibrate``: the run's branches with the classifier state ``--state`` (``regret --out``), its price calibrated
as the run's recipe (``RUN/config.json``) calibrates (every training photo and its downscales), written to ``--out`` for
``classsr bench``.

    python scripts/light_decision.py regret runs/fitted_x4 --iterations 3000 --weight 1 --temperature 0.05
    python scripts/light_decision.py binary runs/fitted_x4 --iterations 4000 [--arch context|cnn --width 32]
    python scripts/light_decision.py regret runs/fittedlight_x4 --data runs/fitted_x4/data
    # runs/shipped_x4: python scripts/run_from_weights.py weights/classsr_residual_x4.safetensors
    #   configs/residual_x4.toml runs/shipped_x4, then classsr train rank --out runs/shipped_x4
    #   --data runs/fitted_x4/data --config configs/residual_x4.toml (its deficits.npy)
    python scripts/light_decision.py regret runs/shipped_x4 --data runs/fitted_x4/data \\
        --model weights/classsr_residual_x4.safetensors --out regret.pt
    python scripts/light_decision.py calibrate runs/shipped_x4 --data runs/fitted_x4/data \\
        --state regret.pt --out regret.safetensors
    python scripts/light_decision.py base runs/fittedlight_x4 --data runs/fitted_x4/data --share 0.33 --out easy.safetensors
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import torch
from report import emit  # scripts/

from classsr_cli.checkpoint import load_checkpoint, save_checkpoint
from classsr_cli.errors import ClassSRError
from classsr_cli.models.classsr import _levels, priced_classes
from classsr_cli.train.config import load_train_config
from classsr_cli.train.loop import init_distributed
from classsr_cli.train.stages import Trainer


def auc(score: torch.Tensor, positive: torch.Tensor) -> float:
    """Area under the ROC curve of ``score`` (higher = more likely positive) for the boolean ``positive`` (the
    Mann-Whitney statistic; ties count half)."""
    from scipy.stats import rankdata

    rank = torch.from_numpy(rankdata(score.double().numpy()) - 1)
    n1, n0 = int(positive.sum()), int((~positive).sum())
    return float((rank[positive].sum() - n1 * (n1 - 1) / 2) / max(1, n1 * n0))


def binary_net(arch: str, width: int, classifier: torch.nn.Module) -> torch.nn.Module:
    """The binary screen's network: the run's classifier shape (``same``), that classifier with 3x3 middle
    convolutions at ``width`` (``context``), or a plain full-resolution CNN (``cnn``); logits in column 0."""
    from torch import nn

    from classsr_cli.models.classifier import Classifier

    if arch == "same":
        net = copy.deepcopy(classifier)
    elif arch == "context":
        net = Classifier(width=width, kernel=3, hidden=64, zero_mean=True)
    else:
        act = nn.LeakyReLU(0.1)
        net = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), act, nn.Conv2d(width, width, 3, padding=1), act,
                            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), act,
                            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), act,
                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 64), act, nn.Linear(64, 1))
    if hasattr(net, "init_weights"):
        net.init_weights("kaiming")
    return net


def refit_base(args: argparse.Namespace, trainer: Trainer, model: torch.nn.Module, d: torch.Tensor) -> None:
    from classsr_cli.models.residual import fit_base

    src = args.model or args.run / "classsr.safetensors"
    light = model.branches[0]
    if getattr(light, "fitted_base", None) is None or model.branches[2].fitted_base is not None or args.out is None:
        raise SystemExit(f"{src}: no fitted base of the light branch alone (extra.fitted_base = 2), or no --out")
    index = trainer.data.train_index
    cut = torch.quantile(d[index, 0].double(), args.share).item()
    easy = index[d[index, 0] <= cut]
    w = fit_base((trainer.data.batch(c) for c in easy.split(256)), trainer.cfg.scale)
    change = float((light.fitted_base - w).abs().max())
    light.fitted_base = w
    save_checkpoint(model, args.out, provenance={"stage": "base", "share": args.share, "sub_images": len(easy),
                                                 "from": str(src)})
    emit({"run": str(args.run), "screen": "base", "share": args.share, "sub_images": len(easy),
          "largest_weight_change": round(change, 5), "out": str(args.out)}, args.json)


def calibrate(args: argparse.Namespace, trainer: Trainer) -> None:
    if args.state is None or args.out is None:
        raise SystemExit("calibrate needs --state and --out")
    model = trainer._assemble()
    model.classifier.load_state_dict(torch.load(args.state, weights_only=True))
    model.eval()
    calib = trainer._calibrated(model)
    save_checkpoint(model, args.out, provenance={"stage": "classifier", "calibration": calib, "state": str(args.state)})
    emit({"run": str(args.run), "screen": "calibrate", "state": str(args.state), "out": str(args.out),
          "calibration": calib}, args.json)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("screen", choices=["regret", "binary", "base", "calibrate"])
    ap.add_argument("run", type=Path, help="a training run folder (data/, deficits.npy, classsr.safetensors)")
    ap.add_argument("--data", type=Path, help="the run's prepared sub-images (default RUN/data)")
    ap.add_argument("--model", type=Path, help="the run's model (default RUN/classsr.safetensors)")
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--weight", type=float, default=1.0)
    ap.add_argument("--temperature", type=float, default=0.05)
    ap.add_argument("--arch", choices=["same", "context", "cnn"], default="same", help="binary: the network")
    ap.add_argument("--width", type=int, default=32, help="binary: channels of --arch context or cnn")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--share", type=float, default=1 / 3, help="base: the easiest share of the sub-images")
    ap.add_argument("--out", type=Path, help="base: the model file to write; regret: the fine-tuned classifier's state")
    ap.add_argument("--state", type=Path, help="calibrate: a classifier state saved by regret --out")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)

    # the run's own recipe (RUN/config.json), data and labels, as its classifier stage has them
    try:
        trainer = Trainer(load_train_config(args.run / "config.json"), args.run, args.data or args.run / "data",
                          init_distributed(torch.device("cpu")))
    except ClassSRError as e:
        raise SystemExit(f"{args.run}: {e}") from None
    if args.screen == "calibrate":
        calibrate(args, trainer)
        return
    data = trainer.data
    model = load_checkpoint(args.model or args.run / "classsr.safetensors", expect_kind="classsr").module.eval()
    price, costs = model.cfg.cell_price, model.branch_costs
    if price <= 0:
        raise SystemExit(f"{args.run}: not a model that decides at a price")
    charge = torch.tensor(costs) / max(costs) * price
    mse = torch.from_numpy(np.load(args.run / "deficits.npy"))
    d = (mse - mse[:, 2:3]).clamp_min(0)
    target = trainer._deficit_targets()
    total = torch.cat([d[:, :2], torch.zeros(len(d), 1)], 1) + charge
    oracle = total.argmin(1)
    best = total.min(1).values
    held = data.val_index
    seen = data.train_index[torch.randperm(len(data.train_index), generator=g)[:2000]]

    def outputs(net: torch.nn.Module, index: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([net(data.batch(c)[0]) for c in index.split(256)])

    def score(net: torch.nn.Module) -> dict[str, dict[str, object]]:
        out = {}
        for name, index in [("held_out", held), ("training", seen)]:
            p = outputs(net, index)
            dec, o = priced_classes(p, price, costs), oracle[index]
            out[name] = {"regret_levels2": round(float((total[index].gather(1, dec[:, None])[:, 0] - best[index]).mean()), 4),
                         "light_recall": round(float(((dec == 0) & (o == 0)).sum() / max(1, int((o == 0).sum()))), 4),
                         "decided": [round(float((dec == k).float().mean()), 4) for k in range(3)],
                         "oracle": [round(float((o == k).float().mean()), 4) for k in range(3)],
                         "l1_log10": round(float((p - target[index]).abs().mean()), 4)}
        return out

    if args.screen == "base":
        refit_base(args, trainer, model, d)
        return
    net = (copy.deepcopy(model.classifier) if args.screen == "regret"
           else binary_net(args.arch, args.width, model.classifier)).train()
    log: list[dict[str, object]] = []
    light_ok = total[:, 0] <= total[:, 1]  # light within the price against medium
    if args.screen == "regret":
        log.append({"iteration": 0, **score(model.classifier)})
        opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=2e-3)
        p = outputs(model.classifier, held)
        levels = _levels(p[:, :2])
        log.append({"iteration": 0, "regression_auc": round(auc(levels[:, 1] - levels[:, 0], light_ok[held]), 4),
                    "positive_share": round(float(light_ok[held].float().mean()), 4)})
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.iterations)
    pool, start = data.train_index, time.perf_counter()
    for it in range(1, args.iterations + 1):
        pick = pool[torch.randint(0, len(pool), (64,), generator=g)]
        p = net(data.batch(pick, g, augment=True)[0])
        if args.screen == "regret":
            levels = _levels(p[:, :2])
            predicted = torch.cat([levels, torch.zeros(len(p), 1)], 1) + charge
            weights = torch.softmax(-predicted / args.temperature, 1)
            regret = (weights * (total[pick] - best[pick, None])).sum(1).mean()
            loss = (p - target[pick]).abs().mean() + args.weight * regret
        else:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(p[:, 0], light_ok[pick].float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if it % 1000 == 0 or it == args.iterations:
            net.eval()
            row: dict[str, object] = {"iteration": it, "seconds": round(time.perf_counter() - start, 1)}
            if args.screen == "regret":
                row.update(score(net))
            else:
                row["binary_auc"] = round(auc(outputs(net, held)[:, 0], light_ok[held]), 4)
            log.append(row)
            net.train()
    if args.screen == "regret" and args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), args.out)
    emit({"run": str(args.run), "screen": args.screen, "price": price, "iterations": args.iterations,
          "weight": args.weight, "temperature": args.temperature, "arch": args.arch,
          "width": args.width if args.arch != "same" else None, "held_out": len(held), "log": log}, args.json)


if __name__ == "__main__":
    main()
