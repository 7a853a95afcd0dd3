"""Peak resident memory of `classsr upscale` on generated images of several sizes (issue 7: memory bounds).

Each run is its own process; its peak RSS comes from ``wait4``. ``--mode banded`` is the CLI as shipped (outputs
of 16 MP or more are computed and written in bands); ``--mode whole`` calls ``upscale_file`` with banding off,
the behaviour before it; ``--mode video`` runs ``classsr video`` on a one-frame lossless (ffv1) clip of the
same picture, encoding ffv1 (the encoder is another process: its memory is not in the figure). The model is a seeded untrained FSRCNN ClassSR: ``--widths 4,6,8`` (tiny, extra s=4,
m=1) or ``--widths 16,36,56`` (the paper's widths). Prints one JSON line per size.

    python scripts/peak_rss.py 750x500 1500x1000 3000x2000 6000x4000 --mode banded
    python scripts/peak_rss.py 750x500 1500x1000 --mode whole
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WHOLE = """
import sys
from classsr_cli import zoo
from classsr_cli.pipeline import Upscaler, upscale_file
up = Upscaler.of(zoo.load(sys.argv[1], 4))
upscale_file(up, sys.argv[2], sys.argv[3], stream_pixels=None)
"""


def make_image(path: Path, width: int, height: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    img = np.empty((height, width, 3), np.uint8)
    for c, (a, b) in enumerate(((1.0, 0.0), (0.0, 1.0), (0.5, 0.5))):
        plane = a * y + b * x
        plane[:, width // 2 :] += rng.normal(0, 30, (height, width - width // 2)).astype(np.float32)
        img[..., c] = np.clip(plane, 0, 255)
    Image.fromarray(img).save(path, compress_level=1)


def make_model(path: Path, widths: tuple[int, ...]) -> None:
    import torch

    from classsr_cli.checkpoint import save_checkpoint
    from classsr_cli.config import ClassSRConfig
    from classsr_cli.models import build_model

    torch.manual_seed(0)
    extra = {"s": 4, "m": 1} if widths == (4, 6, 8) else {}
    cfg = ClassSRConfig(family="fsrcnn", scale=4, widths=widths, extra=extra)
    save_checkpoint(build_model(cfg).eval(), path)


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def measure(cmd: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed with {os.waitstatus_to_exitcode(status)}")
    return usage.ru_maxrss / 1024, seconds  # ru_maxrss is KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="+", help="LR sizes WxH")
    ap.add_argument("--mode", choices=("banded", "whole", "video"), default="banded",
                    help="video: `classsr video` on a one-frame lossless clip of the same picture")
    ap.add_argument("--widths", default="4,6,8")
    ap.add_argument("--out", default=None, help="folder for the images (default: a temporary one)")
    args = ap.parse_args()
    widths = tuple(int(w) for w in args.widths.split(","))
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        d = Path(tmp)
        model = d / "model.safetensors"
        make_model(model, widths)
        for size in args.sizes:
            w, h = (int(v) for v in size.lower().split("x"))
            src, dst = d / f"in_{w}x{h}.png", d / f"out_{w}x{h}.png"
            make_image(src, w, h)
            if args.mode == "video":
                clip, dst = d / f"in_{w}x{h}.mkv", d / f"out_{w}x{h}.mkv"
                subprocess.run([_ffmpeg(), "-v", "error", "-y", "-i", str(src), "-c:v", "ffv1", str(clip)], check=True)
                src.unlink()
                src = clip
                cmd = [sys.executable, "-m", "classsr_cli", "video", str(src), str(dst), "--model", str(model),
                       "--codec", "ffv1", "--pix-fmt", "yuv444p"]
            elif args.mode == "banded":
                cmd = [sys.executable, "-m", "classsr_cli", "upscale", str(src), "-o", str(dst), "--model", str(model)]
            else:
                cmd = [sys.executable, "-c", WHOLE, str(model), str(src), str(dst)]
            rss, seconds = measure(cmd)
            sys.stdout.write(json.dumps({
                "lr": [w, h], "hr": [4 * w, 4 * h], "mode": args.mode, "widths": list(widths),
                "peak_rss_mib": round(rss), "seconds": round(seconds, 1),
                "input_mib": round(src.stat().st_size / 2**20, 1), "output_mib": round(dst.stat().st_size / 2**20, 1),
            }) + "\n")
            sys.stdout.flush()
            src.unlink()
            dst.unlink()


if __name__ == "__main__":
    main()
