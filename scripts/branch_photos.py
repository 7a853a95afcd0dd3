"""Each branch alone, photo by photo: PSNR-Y of branch files (or a model's branches) on the ÷scale LR of HR photos.

``classsr bench`` reports a set's mean; this says which photos a branch is weak on, e.g. whether one medium branch
loses to another on a single photo or across a set. HR mod-cropped, LR = bicubic ÷scale (classsr_cli.degrade,
as in training and bench); each network runs on the whole LR image; PSNR-Y (BT.601, border = scale), uint8 output.
``--skimage`` names scikit-image's sample photos (routing_eval.py's sets), ``--held-out`` the 15 training photos
that training holds out; folders and files are taken as given.

    python scripts/branch_photos.py runs/a/branch1.safetensors runs/b/branch1.safetensors \
        --skimage camera,coins,moon,clock,text,page,grass,gravel,brick,stereo_motorcycle --json out.json
    python scripts/branch_photos.py weights/classsr_residual_x4.safetensors:1 --images ../shared/data/val/Urban100

A ``PATH:K`` names branch K of a routed model file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from report import emit  # scripts/
from routing_eval import photos, training_photos  # scripts/

from classsr_cli.checkpoint import load_checkpoint
from classsr_cli.degrade import make_pair
from classsr_cli.errors import ClassSRError
from classsr_cli.metrics import psnr, quantize


def network(spec: str) -> torch.nn.Module:
    """A branch file, or ``PATH:K`` for branch K of a routed model file."""
    path, _, k = spec.rpartition(":") if spec.rsplit(":", 1)[-1].isdigit() else (spec, "", "")
    try:
        module = load_checkpoint(path).module
    except ClassSRError as e:
        raise SystemExit(f"error: {e}") from None
    if k and not (hasattr(module, "branches") and int(k) < len(module.branches)):
        raise SystemExit(f"error: {spec}: no branch {k} in {path}")
    return (module.branches[int(k)] if k else module).eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("nets", nargs="+", help="branch files, or PATH:K for branch K of a model file")
    ap.add_argument("--images", nargs="*", default=[], help="HR image files or folders")
    ap.add_argument("--skimage", default="", help="comma-separated scikit-image photo names")
    ap.add_argument("--held-out", action="store_true", help="the held-out training photos (routing_eval.py --held-out)")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    nets = [network(s) for s in args.nets]
    names = tuple(n for n in args.skimage.split(",") if n)
    if args.held_out:
        args.images = [*args.images, *map(str, training_photos())]
    if not args.images and not names:
        raise SystemExit("error: no photos: give --images or --skimage")
    todo = (photos(args.images) if args.images else []) + (photos([], names) if names else [])
    rows = []
    for name, img in todo:
        hr, lr = make_pair(img, args.scale)
        x = torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            rows.append({"photo": name, "psnr_y": [psnr(quantize(n(x)), hr, args.scale, y_channel=True) for n in nets]})
    mean = [float(np.mean([r["psnr_y"][i] for r in rows])) for i in range(len(nets))] if rows else []
    emit({"nets": args.nets, "scale": args.scale, "photos": rows, "mean_psnr_y": mean}, args.json)


if __name__ == "__main__":
    main()
