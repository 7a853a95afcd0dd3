"""What a top-and-bottom stereo frame's eyes give each other where they meet, with the shipped default x4 model (CPU,
2 threads): the top eye's last row (a 360° eye's south pole) lies on the bottom eye's first (its north pole).
``classsr video`` upscaled the frame whole until the seventy-ninth pass (``pipeline.wrapped`` grows columns only), so
the cells across that row saw the other eye's pixels; it now grows each eye there by its own rows, mirrored
(``pipeline.apart``; the output rows kept: ``pipeline.kept``).

Each example photo, mod-cropped, is the HR of both eyes (a stereo pair's two views are nearly the same: the top eye's
ground lies on the bottom eye's sky); its LR (bicubic, ``degrade.make_pair``) stacked twice is upscaled ``whole`` (as
the video did), ``apart`` (as it does), ``copies`` (grown by copies of each eye's edge row instead, the alternative
not chosen), and the LR ``alone`` (as a frame of one eye). Routed as shipped, and with
the heavy branch on every cell. The RMSE (8-bit RGB levels) against the HR on the 16 output rows where the eyes meet
(8 each side), and the mean difference from ``alone`` there and elsewhere (the bottom eye's cells lie on another grid
in the stacked frame, so some are routed otherwise).

    python scripts/stereo_poles.py --json docs/results/seventyninth/stereo_poles.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from report import emit

from classsr_cli import pipeline, zoo
from classsr_cli.degrade import load_rgb, make_pair
from classsr_cli.pipeline import Upscaler

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def poles(up: Upscaler, name: str) -> dict[str, object]:
    hr, lr = make_pair(load_rgb(EXAMPLES / name), 4)
    meet = hr.shape[0]
    truth = np.concatenate([hr, hr]).astype(float)
    eye = up.upscale_array(lr).pixels
    alone = np.concatenate([eye, eye]).astype(float)
    stacked = np.concatenate([lr, lr])
    cut = pipeline.apart_cut(up, *stacked.shape[:2], 0)
    assert cut is not None
    half = lr.shape[0]
    copies = np.concatenate([lr, np.repeat(lr[-1:], pipeline.WRAP_PAD, 0), np.repeat(lr[:1], pipeline.WRAP_PAD, 0), lr])
    assert copies.shape[0] == 2 * half + 2 * pipeline.WRAP_PAD
    own = pipeline.kept(cut, 2 * meet)
    got = {"alone": alone, "whole": up.upscale_array(stacked).pixels.astype(float),
           "apart": up.upscale_array(pipeline.apart(stacked, 0)).pixels[own].astype(float),
           "copies": up.upscale_array(copies).pixels[own].astype(float)}
    near = slice(meet - 8, meet + 8)
    row: dict[str, object] = {}
    for how, out in got.items():
        off = np.abs(out - alone)
        rest = np.concatenate([off[: meet - 40], off[meet + 40 :]])
        row[how] = {"rmse_near": round(float(np.sqrt(((out - truth)[near] ** 2).mean())), 3),
                    "off_alone_near": round(float(off[near].mean()), 3), "off_alone_elsewhere": round(float(rest.mean()), 4)}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    loaded = zoo.load(None, 4)
    rows = []
    for name in ("lighthouse.jpg", "baby.png", "bridge.png"):
        row: dict[str, object] = {"picture": name}
        for how, force in (("routed", None), ("heavy", "heavy")):
            row[how] = poles(Upscaler.of(loaded, force_branch=force), name)
        rows.append(row)
    emit(rows, args.json)


if __name__ == "__main__":
    main()
