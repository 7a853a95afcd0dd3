"""At a photo's own size there is no HR reference: how far is the routed output from the heavy branch's on the
whole image, and how far are the medium branch alone and plain bicubic? PSNR-Y between outputs (border = scale),
per photo.

    python scripts/native_agreement.py examples/baby.png examples/lighthouse.jpg [--model M] [--tolerance T]

High routed-vs-heavy and bicubic-vs-heavy figures together mean the heavy branch adds little over bicubic
there, which is what deficit routing predicts when it sends cells to bicubic. The medium branch alone is the
routed model's nearest rival in seconds (results.md, "Everyday photos").
"""

from __future__ import annotations

import argparse
import sys

import torch

from classsr_cli import zoo
from classsr_cli.degrade import load_rgb
from classsr_cli.engine import upscale_tensor
from classsr_cli.metrics import psnr, quantize


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("images", nargs="+")
    ap.add_argument("--model", default=None)
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--tolerance", type=float, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = zoo.load(args.model, args.scale).net.eval()
    s = model.cfg.scale
    for path in args.images:
        x = torch.from_numpy(load_rgb(path)).permute(2, 0, 1)[None].float().div(255)
        with torch.inference_mode():
            routed, res = upscale_tensor(model, x, tolerance=args.tolerance)
            bicubic, medium, heavy = (quantize(branch(x)) for branch in model.branches)
        sys.stdout.write(f"{path}: cells L/M/H {res.counts}, PSNR-Y routed vs heavy "
                         f"{psnr(quantize(routed), heavy, s, y_channel=True):.2f} dB, medium vs heavy "
                         f"{psnr(medium, heavy, s, y_channel=True):.2f} dB, bicubic vs heavy "
                         f"{psnr(bicubic, heavy, s, y_channel=True):.2f} dB\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
