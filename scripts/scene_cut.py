"""How far apart frames are, for the scene-cut threshold of `classsr video` (``classsr_cli.scenes.SCENE_CUT``).

Photos from a folder (default: the first 60 of the training set's BSD200), resized to 320x240, stand for frames:
two different photos for a cut, a photo and itself moved ``s`` pixels to the left for motion within a scene. Prints
one JSON line with percentiles of the mean absolute luma difference (8-bit levels, on the thumbnails
``classsr_cli.scenes.thumbnail`` takes) of every pair of different photos, and of each photo moved by each shift;
and, for the flat frames that end a fade (``classsr_cli.scenes.FLAT``), of the luma standard deviation of each photo
darkened to each brightness (``std_at_1`` is the photos as they are, ``std_at_0.1`` a tenth of their levels: the
frames near the end of a fade to black); and of the difference with the mean levels matched
(``classsr_cli.scenes.matched_difference``, ``MATCHED``) of the pairs of different photos and of each photo and
itself at three quarters and at half of its levels (steps of a fast fade). For dissolves (``BLEND``, ``SAME``, on
``classsr_cli.scenes.small`` thumbnails): the correlation of the pairs of different photos and of each photo and
itself moved; the blend residue (``classsr_cli.scenes.blend_residue``) of the middle of a dissolve between each photo
and the next, still or with both panned ``2k`` pixels across the window (``dissolve_moved_{2k}px``), and of a pan of
``2k`` pixels and a zoom whose ends the test would weigh (MAFD at least half ``SCENE_CUT``, correlation below
``SAME``): the least of them, which a dissolve's must stay under.

    python scripts/scene_cut.py [--photos ../shared/data/train/BSD200] [--count 60]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from classsr_cli.scenes import (
    SAME,
    SCENE_CUT,
    blend_residue,
    correlation,
    matched_difference,
    small,
    thumbnail,
)

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
    out.update(_dissolves(frames, still))
    sys.stdout.write(json.dumps(out) + "\n")


def _pct(values: list[float], qs: tuple[int, ...] = PERCENTILES) -> dict[str, float] | None:
    return {str(q): round(float(np.percentile(values, q)), 3) for q in qs} if values else None


def _dissolves(frames: list[np.ndarray], still: list[np.ndarray]) -> dict[str, object]:
    """The correlations and blend residues the dissolve test weighs (see the module's docstring)."""
    def view(f: np.ndarray, x: int) -> np.ndarray:
        return small(thumbnail(np.round(f[:, x : x + 320]).astype(np.uint8)))

    tiny = [small(t) for t in still]
    out: dict[str, object] = {"corr_different": _pct([correlation(a, b) for i, a in enumerate(tiny) for b in tiny[i + 1 :]])}
    for s in (4, 8, 16, 32):
        out[f"corr_moved_{s}px"] = _pct([correlation(view(f, s), t) for f, t in zip(frames, tiny, strict=True)])
    floats = [f.astype(np.float64) for f in frames]
    for k in (0, 2, 4, 8):  # a dissolve's middle, the photos panned 2k pixels across the window
        out[f"dissolve_moved_{2 * k}px"] = _pct([blend_residue(view(a, 0), view(0.5 * a + 0.5 * b, k), view(b, 2 * k))[1]
                                                 for a, b in itertools.pairwise(floats)])  # fmt: skip
    def candidate(a: np.ndarray, b: np.ndarray) -> bool:  # ends the dissolve test weighs a middle frame between
        return float(np.abs(a - b).mean()) >= SCENE_CUT / 2 and correlation(a, b) < SAME

    for k in (2, 4, 8, 16):
        residues = [blend_residue(view(f, 0), view(f, k), view(f, 2 * k))[1] for f in frames
                    if candidate(view(f, 0), view(f, 2 * k))]  # fmt: skip
        out[f"pan_{2 * k}px_candidates"] = {"n": len(residues), "min": round(min(residues), 3) if residues else None}
    zooms = []
    for f in frames:
        im = Image.fromarray(f[:, :320])
        for z in (1.2, 1.5, 2.0):
            a, m, b = (small(thumbnail(np.asarray(im.crop((160 - 160 / q, 120 - 120 / q, 160 + 160 / q, 120 + 120 / q))
                                                 .resize((320, 240), Image.BILINEAR)))) for q in (1.0, (1 + z) / 2, z))
            if candidate(a, b):
                zooms.append(blend_residue(a, m, b)[1])
    out["zoom_candidates"] = {"n": len(zooms), "min": round(min(zooms), 3) if zooms else None}
    return out


if __name__ == "__main__":
    main()
