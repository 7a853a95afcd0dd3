"""A short test clip from photos: each photo resized to SIZE and panned a pixel a frame (``--step``) for FRAMES frames, H.264
through the bundled ffmpeg. Frames of one size, one after another, as ``classsr video`` meets them. With ``--fade N``
each photo fades in from black over its first N frames and out to black over its last N, as ffmpeg's ``fade`` filter
does (the first frame of a fade-in and the last of a fade-out black): photos joined by fades, not cuts. With
``--dissolve N`` each photo's last N frames dissolve into the next photo, which pans on from there: photos joined
by dissolves.

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
    ap.add_argument("--step", type=int, default=1, help="pixels each photo is panned a frame")
    ap.add_argument("--fade", type=int, default=0, help="frames of each photo's fade in from and out to black")
    ap.add_argument("--dissolve", type=int, default=0,
                    help="frames of a dissolve from each photo to the next (its last frames mixed with the next's first)")
    args = ap.parse_args()
    if not args.photos.is_dir():
        ap.error(f"{args.photos}: not a folder")
    files = sorted(p for p in args.photos.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)[: args.count]
    if not files:
        ap.error(f"{args.photos}: no images")
    if args.dissolve and (args.fade or args.dissolve >= args.frames):
        ap.error("--dissolve takes no --fade, and fewer frames than --frames")
    writer = iio.get_writer(args.out, fps=args.fps, codec="libx264", quality=9, macro_block_size=16)
    pictures = [np.asarray(Image.open(f).convert("RGB").resize(tuple(args.size), Image.BICUBIC)) for f in files]
    try:
        for i, frame in enumerate(pictures):
            for k in range(args.frames):
                level = min(1.0, k / args.fade, (args.frames - 1 - k) / args.fade) if args.fade else 1.0
                shown = np.roll(frame, k * args.step, axis=1).astype(np.float64) * level
                into = k - (args.frames - args.dissolve)  # a dissolve's step into the next photo, panned on as it is
                if args.dissolve and into >= 0 and i + 1 < len(pictures):
                    mix = (into + 1) / (args.dissolve + 1)
                    shown = shown * (1 - mix) + np.roll(pictures[i + 1], (into - args.dissolve) * args.step, axis=1) * mix
                writer.append_data(np.round(shown).astype(np.uint8))
    finally:
        writer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
