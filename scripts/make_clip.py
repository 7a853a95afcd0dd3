"""A short test clip from photos: each photo resized to SIZE and panned a pixel a frame for FRAMES frames, H.264
through the bundled ffmpeg. Frames of one size, one after another, as ``classsr video`` meets them. With ``--fade N``
each photo fades in from black over its first N frames and out to black over its last N, as ffmpeg's ``fade`` filter
does (the first frame of a fade-in and the last of a fade-out black): photos joined by fades, not cuts.

    python scripts/make_clip.py ../shared/data/val/SunHays80 clip.mp4 [--photos 4 --frames 15 --size 320 240]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import imageio.v2 as iio
import numpy as np
from PIL import Image

from classsr_cli.io.files import IMAGE_SUFFIXES


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos", type=Path, help="a folder of photos (the first --photos by name)")
    ap.add_argument("out", type=Path)
    ap.add_argument("--photos", type=int, default=4, dest="count")
    ap.add_argument("--frames", type=int, default=15, help="frames per photo")
    ap.add_argument("--size", type=int, nargs=2, default=(320, 240), metavar=("W", "H"))
    ap.add_argument("--fps", type=float, default=24.0)
    ap.add_argument("--fade", type=int, default=0, help="frames of each photo's fade in from and out to black")
    args = ap.parse_args()
    if not args.photos.is_dir():
        ap.error(f"{args.photos}: not a folder")
    files = sorted(p for p in args.photos.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)[: args.count]
    if not files:
        ap.error(f"{args.photos}: no images")
    writer = iio.get_writer(args.out, fps=args.fps, codec="libx264", quality=9, macro_block_size=16)
    try:
        for f in files:
            frame = np.asarray(Image.open(f).convert("RGB").resize(tuple(args.size), Image.BICUBIC))
            for k in range(args.frames):
                level = min(1.0, k / args.fade, (args.frames - 1 - k) / args.fade) if args.fade else 1.0
                writer.append_data(np.round(np.roll(frame, k, axis=1) * level).astype(np.uint8))
    finally:
        writer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
