"""Seams where a DDS cube map's faces meet, upscaled alone and grown by their neighbours' texels
(``pipeline.CUBE_PAD``), with the shipped default model (CPU).

1. A photo cut in two halves, each upscaled alone with ``pad`` LR columns of the other half beside it (then
   cropped), against the photo upscaled whole: the mean step across the cut (between the two output columns that
   meet there) and the mean difference from the whole in the 16 output columns around it; pad 0 is each half alone.
2. Cube maps whose +Z and +X faces are the two halves of a strip of ``examples/baby.png`` (the other faces other
   crops of it), upscaled by ``classsr_cli.pipeline.upscale_file`` as shipped and with the faces alone: how far the
   output's columns at the seam, and 20-40 columns away from it, are from the strip upscaled whole.

    python scripts/cube_seams.py --json docs/results/seventythird/cube_seams.json
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
from PIL import Image

from classsr_cli import pipeline, zoo
from classsr_cli.io.image import read_image
from classsr_cli.pipeline import Upscaler, upscale_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def halves(up: Upscaler, name: str, pads: list[int]) -> list[dict[str, object]]:
    px = read_image(EXAMPLES / name).pixels
    cut = (px.shape[1] // 2) // 4 * 4
    at = 4 * cut
    whole = up.upscale_array(px).pixels.astype(int)
    rows = []
    for pad in pads:
        left = up.upscale_array(np.ascontiguousarray(px[:, :cut + pad])).pixels.astype(int)[:, :at]
        right = up.upscale_array(np.ascontiguousarray(px[:, cut - pad:])).pixels.astype(int)[:, 4 * pad:]
        joined = np.concatenate([left, right], axis=1)
        rows.append({"picture": name, "pad": pad,
                     "step": round(float(np.abs(joined[:, at] - joined[:, at - 1]).mean()), 3),
                     "whole_step": round(float(np.abs(whole[:, at] - whole[:, at - 1]).mean()), 3),
                     "off_near_cut": round(float(np.abs(joined - whole)[:, at - 8:at + 8].mean()), 3)})
    return rows


def cube(up: Upscaler, n: int, y: int, x: int, folder: Path) -> dict[str, object]:
    photo = np.asarray(Image.open(EXAMPLES / "baby.png").convert("RGB"))
    strip = photo[y:y + n, x:x + 2 * n]
    faces = [photo[k * (n // 2):k * (n // 2) + n, :n] for k in range(6)]
    faces[4], faces[0] = strip[:, :n], strip[:, n:]  # +Z, then +X to its right
    Image.fromarray(faces[0]).convert("RGBA").save(folder / "face.dds")
    head = bytearray((folder / "face.dds").read_bytes()[:128])
    struct.pack_into("<I", head, 112, 0x200 | 0xFC00)  # DDSCAPS2_CUBEMAP, all six faces
    src = folder / "sky.dds"
    src.write_bytes(bytes(head) + b"".join(np.dstack([f[..., ::-1], np.full((n, n), 255, np.uint8)]).tobytes()
                                           for f in faces))  # fmt: skip
    whole = up.upscale_array(np.ascontiguousarray(strip)).pixels.astype(int)
    row: dict[str, object] = {"face": n, "strip_at": [y, x]}
    for how, cut in (("grown", pipeline._cube_cut), ("alone", lambda *a: None)):
        with mock.patch.object(pipeline, "_cube_cut", cut):
            upscale_file(up, src, folder / f"{how}.dds", overwrite=True)
        got = read_image(folder / f"{how}.dds")
        assert got.texture is not None
        ups = [got.pixels.astype(int)] + [p.astype(int) for p, _ in got.texture.faces]
        off = np.abs(np.concatenate([ups[4], ups[0]], axis=1) - whole).mean(axis=(0, 2))
        seam = 4 * n
        row[how] = {"at_seam": round(float(off[seam - 2:seam + 2].mean()), 3),
                    "away": round(float(np.r_[off[seam - 40:seam - 20], off[seam + 20:seam + 40]].mean()), 3)}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pads", type=int, nargs="+", default=[0, 4, 8, 12, 16, 24, 32])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    up = Upscaler.of(zoo.load(None, 4))
    rows: list[dict[str, object]] = []
    for name in ("lighthouse.jpg", "baby.png", "bridge.png"):
        rows += halves(up, name, args.pads)
    with tempfile.TemporaryDirectory() as tmp:
        for n, y, x in ((64, 200, 160), (64, 100, 100), (128, 100, 0), (96, 300, 50), (64, 400, 300)):
            rows.append(cube(up, n, y, x, Path(tmp)))
    text = "".join(json.dumps(r) + "\n" for r in rows)
    sys.stdout.write(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
