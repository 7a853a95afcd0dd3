"""How long Pillow takes to write an AVIF at each encoder speed, for ``classsr_cli.io.image.AVIF_SPEED``; with
``--format HEIF``, a HEIC (pillow-heif, x265) at each x265 preset, for ``HEIF_PRESET``, in :data:`HEIF_TILE` tiles as
classsr writes it.

The picture is ``examples/lighthouse.jpg`` resized by Pillow's bicubic to the size of its ×4 upscale (4096x3072),
standing for an output. Each speed is written ``--repeat`` times at ``--quality``; prints one JSON line a speed:
the best seconds, the file's size and the PSNR (RGB, 8-bit) of the file decoded against the picture.

    python scripts/avif_speed.py [--speeds 4 6 8 10] [--quality 95] [--repeat 2]
    python scripts/avif_speed.py --format HEIF --speeds ultrafast superfast veryfast medium
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--format", choices=["AVIF", "HEIF"], default="AVIF")
    ap.add_argument("--speeds", nargs="+", default=None, help="AVIF: 0-10 (default 4 6 8 10); HEIF: x265 presets")
    ap.add_argument("--quality", type=int, default=95)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    heif = args.format == "HEIF"
    speeds = args.speeds or (["ultrafast", "superfast", "veryfast", "medium"] if heif else ["4", "6", "8", "10"])
    if heif:
        import pillow_heif

        from classsr_cli.io.image import HEIF_TILE

        pillow_heif.register_heif_opener()
    with Image.open(Path(__file__).parent.parent / "examples" / "lighthouse.jpg") as im:
        big = im.convert("RGB").resize((im.width * 4, im.height * 4), Image.BICUBIC)
    for speed in speeds:
        options: dict[str, object] = (
            {"enc_params": {"preset": speed}, "tile_size": HEIF_TILE} if heif else {"speed": int(speed)}
        )
        best, size = float("inf"), 0
        for _ in range(args.repeat):
            buf = io.BytesIO()
            t = time.perf_counter()
            big.save(buf, format=args.format, quality=args.quality, **options)
            best, size = min(best, time.perf_counter() - t), buf.tell()
        buf.seek(0)
        with Image.open(buf) as back:
            err = np.asarray(back.convert("RGB"), np.float64) - np.asarray(big, np.float64)
        psnr = 10 * np.log10(255**2 / float(np.mean(err**2)))
        record = {"format": args.format, "speed": speed if heif else int(speed), "quality": args.quality,
                  "seconds": round(best, 3), "bytes": size, "psnr": round(psnr, 3), "size": list(big.size)}
        sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
