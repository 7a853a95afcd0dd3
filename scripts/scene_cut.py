"""How far apart frames are, for the scene-cut threshold of `classsr video` (``classsr_cli.scenes.SCENE_CUT``).

Photos from a folder (default: the first 60 of the training set's BSD200), resized to 320x240, stand for frames:
two different photos for a cut, a photo and itself moved ``s`` pixels to the left for motion within a scene. Prints
one JSON line with percentiles of the mean absolute luma difference (8-bit levels, on the thumbnails
``classsr_cli.scenes.thumbnail`` takes) of every pair of different photos, and of each photo moved by each shift;
and, for the flat frames that end a fade (``classsr_cli.scenes.FLAT``), of the luma standard deviation of each photo
darkened to each brightness (``std_at_1`` is the photos as they are, ``std_at_0.1`` a tenth of their levels: the
frames near the end of a fade to black); and of the difference with the mean levels matched
(``classsr_cli.scenes.matched_difference``, ``MATCHED``) of the pairs of different photos and of each photo and
itself at three quarters and at half of its levels (steps of a fast fade).

    python scripts/scene_cut.py [--photos ../shared/data/train/BSD200] [--count 60]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from classsr_cli.scenes import matched_difference, thumbnail

SHIFTS = (1, 4, 8, 16, 32)
PERCENTILES = (1, 5, 10, 50, 90, 99)
BRIGHTNESS = (1.0, 0.2, 0.1, 0.05, 0.02)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=Path, default=Path("../shared/data/train/BSD200"))
    ap.add_argument("--count", type=int, default=60)
    args = ap.parse_args()
    files = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))[: args.count]
    frames = [np.asarray(Image.open(f).convert("RGB").resize((320 + max(SHIFTS), 240), Image.BILINEAR)) for f in files]
    still = [thumbnail(f[:, :320]) for f in frames]
    cuts = [float(np.abs(a - b).mean()) for i, a in enumerate(still) for b in still[i + 1 :]]
    out: dict[str, object] = {"photos": str(args.photos), "count": len(files),
                              "cut": {str(q): round(float(np.percentile(cuts, q)), 1) for q in PERCENTILES}}
    for s in SHIFTS:
        moved = [float(np.abs(thumbnail(f[:, s : s + 320]) - t).mean()) for f, t in zip(frames, still, strict=True)]
        out[f"moved_{s}px"] = {str(q): round(float(np.percentile(moved, q)), 1) for q in PERCENTILES}
    out["cut_matched"] = {str(q): round(float(np.percentile(
        [matched_difference(a, b) for i, a in enumerate(still) for b in still[i + 1 :]], q)), 1) for q in PERCENTILES}
    for k in (0.75, 0.5):
        dim = [matched_difference(thumbnail(np.round(f[:, :320] * k).astype(np.uint8)), t)
               for f, t in zip(frames, still, strict=True)]  # fmt: skip
        out[f"fade_step_{k:g}_matched"] = {str(q): round(float(np.percentile(dim, q)), 2) for q in PERCENTILES}
    for k in BRIGHTNESS:
        std = [float(thumbnail(np.round(f[:, :320] * k).astype(np.uint8)).std()) for f in frames]
        out[f"std_at_{k:g}"] = {str(q): round(float(np.percentile(std, q)), 2) for q in (0, *PERCENTILES)}
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
