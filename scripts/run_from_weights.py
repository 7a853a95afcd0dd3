"""Seed a training run folder with a shipped model's branch stages, so that ``classsr train all`` on it reruns
only what follows them (ranking, the classifier stage, calibration, export) on the same branches.
``--retrain K`` leaves branch K out (the config may give it another width), so the run trains that branch again
and keeps the others: a branch tried in place of a shipped one.

    python scripts/run_from_weights.py weights/classsr_residual_x4.safetensors configs/residual_x4.toml runs/x4
    classsr train all --hr ../shared/data/train/T91 --hr ../shared/data/train/BSD200 \\
        --config configs/residual_x4.toml --out runs/x4 --data runs/residual_x4/data --threads 2

Writes ``baseline.safetensors`` and ``branch{0,1,2}.safetensors`` (the heavy branch is the baseline, as the
``deficit``/``budget`` recipes train it) and the branch stages' records of ``metrics.jsonl`` from the model's
provenance (iterations, seconds, validation, machine), so the export reports what they were trained with. The
config must be the model's recipe but for what follows the branches (classifier, calibration) and the widths (and
``luma``) of retrained branches, and ``extra.fitted_base = 2`` (a fitted base of the light branch alone) with
``--retrain 0``; a run folder that already holds stages is refused.

    python scripts/run_from_weights.py weights/classsr_residual_x4.safetensors \\
        configs/experimental/residual_light8_x4.toml runs/light8_x4 --retrain 0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from classsr_cli.checkpoint import load_checkpoint, save_checkpoint
from classsr_cli.errors import ClassSRError
from classsr_cli.models.classsr import ClassSR
from classsr_cli.train.config import load_train_config

BRANCH_STAGES = ("baseline", "branches")  # must match the model's recipe; the classifier's stages may differ


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("config", type=Path)
    ap.add_argument("run", type=Path)
    ap.add_argument("--retrain", type=int, action="append", default=[], choices=(0, 1),
                    help="a cheaper branch to leave out, so the run trains it again (repeatable)")
    args = ap.parse_args()
    try:  # validated before anything is written
        cfg = load_train_config(args.config)
        loaded = load_checkpoint(args.model, expect_kind="classsr")
    except ClassSRError as e:
        ap.error(str(e))
    model, prov = loaded.module, loaded.provenance
    assert isinstance(model, ClassSR)
    if "recipe" not in prov:
        ap.error(f"{args.model}: no training recipe in its provenance (not made by classsr train)")
    recipe = prov["recipe"]
    mine = cfg.to_dict()
    retrain = set(args.retrain)
    if cfg.routing not in ("deficit", "budget") and retrain:
        ap.error("--retrain needs deficit or budget routing (their branches train on every sub-image)")
    kept = [w for k, w in enumerate(recipe.get("widths") or []) if k not in retrain]
    if kept != [w for k, w in enumerate(mine.get("widths") or []) if k not in retrain]:
        ap.error(f"{args.config}: widths are {mine.get('widths')!r}, the model was trained with {recipe.get('widths')!r}")
    luma = [bool(v) for v in (recipe.get("luma") or [False] * 3)]  # recipes before luma branches: none
    wanted = list(cfg.model_config().luma)
    if [v for k, v in enumerate(luma) if k not in retrain] != [v for k, v in enumerate(wanted) if k not in retrain]:
        ap.error(f"{args.config}: luma is {wanted!r}, the model was trained with {luma!r}")
    if 0 in retrain and (mine.get("extra") or {}).get("fitted_base") == 2:  # a base of the retrained light alone
        mine["extra"] = {k: v for k, v in mine["extra"].items() if k != "fitted_base"}
    for key in ("family", "scale", "extra", "patch", "data_step", "factors", "val_fraction", "seed",
                "random_crops", "routing", *BRANCH_STAGES):
        if json.dumps(recipe.get(key), sort_keys=True) != json.dumps(mine.get(key), sort_keys=True):
            ap.error(f"{args.config}: {key} is {mine.get(key)!r}, the model was trained with {recipe.get(key)!r}")
    if args.run.exists() and any(args.run.iterdir()):
        ap.error(f"{args.run}: not empty")
    args.run.mkdir(parents=True, exist_ok=True)
    mcfg = cfg.model_config()
    stages = prov.get("stages", {})
    save_checkpoint(model.branches[2], args.run / "baseline.safetensors", config=mcfg.branch(2),
                    provenance={"stage": "baseline", "from": str(args.model), "val": stages.get("baseline", {}).get("val", {})})
    for k in sorted({0, 1, 2} - retrain):
        save_checkpoint(model.branches[k], args.run / f"branch{k}.safetensors", config=mcfg.branch(k),
                        provenance={"stage": f"branch{k}", "from": str(args.model)})
    machine = (prov.get("trained_on") or [{}])[0]
    lines = []
    for name, entry in stages.items():
        if name in ("classifier", "finetune") or name in {f"branch{k}" for k in retrain}:
            continue
        if "iterations" in entry:
            lines.append({"stage": name, "iteration": entry["iterations"]})
        if "val" in entry:
            lines.append({"stage": name, "event": "val", **entry["val"]})
        if "seconds" in entry:
            lines.append({"stage": name, "event": "done", "seconds": entry["seconds"], **machine})
    with (args.run / "metrics.jsonl").open("w") as f:
        f.writelines(json.dumps({**rec, "from": str(args.model)}) + "\n" for rec in lines)
    copied = ", ".join(f"branch{k}" for k in sorted({0, 1, 2} - retrain))
    sys.stderr.write(f"{args.run}: baseline, {copied} and {len(lines)} metrics records from {args.model}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
