"""What the models gain over bicubic on clean LR and on the same LR saved as JPEG: they are trained on clean bicubic
downscales, as the published SR benchmarks are, and do not remove compression artefacts (Real-ESRGAN's models,
trained on degraded LR, do). PSNR-Y against the HR (border = scale), mean over the images.

    PYTHONPATH=scripts python scripts/compressed_input.py ../shared/data/val/SunHays80 --count 10 --quality 40 \
        --json docs/results/fiftythird/compressed_input.json

Per image: the LR is made as ``bench`` makes it (mod-crop, antialiased bicubic), then JPEG-encoded at ``--quality``
(4:2:0, Pillow) for the compressed case; the default model (routed, as ``classsr upscale`` runs) and ``bench``'s
bicubic upscale each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from report import emit

from classsr_cli import zoo
from classsr_cli.degrade import bicubic_resize, jpeg_roundtrip, load_rgb, make_pair
from classsr_cli.engine import upscale_tensor
from classsr_cli.io.files import IMAGE_SUFFIXES
from classsr_cli.metrics import psnr, quantize


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--count", type=int, default=10, help="the first N images of the folder, sorted")
    ap.add_argument("--quality", type=int, default=40, help="JPEG quality of the compressed LR")
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = zoo.load(args.model, args.scale).net.eval()
    s = model.cfg.scale
    paths = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[: args.count]
    rows = []
    for path in paths:
        hr, lr = make_pair(load_rgb(path), s)
        row: dict[str, object] = {"image": path.name}
        for case, src in (("clean", lr), ("jpeg", jpeg_roundtrip(lr, args.quality))):
            x = torch.from_numpy(np.array(src)).permute(2, 0, 1)[None].float().div(255)
            with torch.inference_mode():
                sr, _ = upscale_tensor(model, x)
            out = quantize(sr)
            bic = bicubic_resize(src, hr.shape[0], hr.shape[1])
            row[f"{case}_model"] = round(psnr(out, hr, s, y_channel=True), 3)
            row[f"{case}_bicubic"] = round(psnr(bic, hr, s, y_channel=True), 3)
        rows.append(row)

    def mean(key: str) -> float:
        return round(float(np.mean([float(r[key]) for r in rows])), 3)  # type: ignore[arg-type]

    summary = {k: mean(k) for k in ("clean_model", "clean_bicubic", "jpeg_model", "jpeg_bicubic")}
    summary["clean_gain"] = round(summary["clean_model"] - summary["clean_bicubic"], 3)
    summary["jpeg_gain"] = round(summary["jpeg_model"] - summary["jpeg_bicubic"], 3)
    emit({"folder": str(args.folder), "images": len(rows), "scale": s, "jpeg_quality": args.quality,
          "model": str(zoo.resolve_model(args.model, s)), "psnr_y_mean": summary, "per_image": rows}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
