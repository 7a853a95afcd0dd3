"""Does the bench and train loader (``classsr_cli.degrade.load_rgb``, upscale's reader since the ninety-third pass)
read each picture as the loader before it did (Pillow's ``Image.open(path).convert("RGB")``)? Pixel for pixel, every
image of the folders given (recursive): what a change of the loader changes in the training data and bench figures.

    python scripts/loader_agreement.py ../shared/data/train ../shared/data/val examples

Prints one line for each picture that differs (its shapes and the largest difference in levels, or why one loader
refused it) and, last, how many read the same; exit 1 where any differs.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from classsr_cli.degrade import load_rgb
from classsr_cli.errors import InputError
from classsr_cli.io.files import images_in


def pillow_rgb(path: Path) -> np.ndarray:
    """The loader before: Pillow's own conversion to RGB (16-bit levels clipped, EXIF orientation not applied)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)


def compare(path: Path) -> str | None:
    """``None`` where both loaders read ``path`` to the same pixels, else what differs."""
    try:
        old = pillow_rgb(path)
    except Exception as e:  # whatever Pillow raises: the old loader refused it
        old = f"refused ({type(e).__name__})"
    try:
        new = load_rgb(path)
    except InputError as e:
        new = f"refused ({e})"
    if isinstance(old, str) or isinstance(new, str):
        if isinstance(old, str) and isinstance(new, str):
            return None
        return f"before: {old if isinstance(old, str) else old.shape}, now: {new if isinstance(new, str) else new.shape}"
    if old.shape != new.shape:
        return f"shape {old.shape} before, {new.shape} now"
    if not np.array_equal(old, new):
        return f"up to {int(np.abs(old.astype(int) - new.astype(int)).max())} levels apart"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    args = ap.parse_args()
    files = [f for d in args.folders for f in images_in(d, recursive=True)]
    differ = 0
    for f in files:
        said = compare(f)
        if said is not None:
            differ += 1
            sys.stdout.write(f"{f}: {said}\n")
    sys.stdout.write(f"{len(files)} pictures: {len(files) - differ} read the same, {differ} differ\n")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
