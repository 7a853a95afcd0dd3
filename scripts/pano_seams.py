"""Seams where a 360° panorama's edges meet, upscaled alone and grown by columns of its other side
(``pipeline.WRAP_PAD``), with the shipped default model (CPU, 2 threads).

Each example photo rolled by half its width (so its right edge meets its left where the photo is continuous), with
Photo Sphere XMP (equirectangular, the whole circle), upscaled by ``classsr_cli.pipeline.upscale_file`` as shipped
and with the panorama alone (``wrap_cut`` giving none), against the photo upscaled whole and rolled alike: the mean
step across the seam (between the output's last and first columns) and the whole's step there, the mean and largest
difference from the whole in the 8 output columns on each side of the seam, and the mean elsewhere.

    python scripts/pano_seams.py --json docs/results/seventyseventh/pano_seams.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
from PIL import Image, PngImagePlugin

from classsr_cli import pipeline, zoo
from classsr_cli.io.image import read_image
from classsr_cli.pipeline import Upscaler, upscale_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def seam(up: Upscaler, name: str, folder: Path) -> dict[str, object]:
    px = np.asarray(Image.open(EXAMPLES / name).convert("RGB"))
    h, w = px.shape[:2]
    k = w // 2
    xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           '<rdf:Description rdf:about="" xmlns:GPano="http://ns.google.com/photos/1.0/panorama/" '
           f'GPano:ProjectionType="equirectangular" GPano:FullPanoWidthPixels="{w}" '
           f'GPano:CroppedAreaImageWidthPixels="{w}"/></rdf:RDF></x:xmpmeta>')
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    src = folder / "pano.png"
    Image.fromarray(np.roll(px, -k, axis=1)).save(src, pnginfo=info)
    whole = np.roll(up.upscale_array(px).pixels.astype(int), -4 * k, axis=1)
    row: dict[str, object] = {"picture": name, "size": [w, h], "pad": pipeline.WRAP_PAD,
                              "whole_step": round(float(np.abs(whole[:, 0] - whole[:, -1]).mean()), 3)}
    for how, cut in (("round", pipeline.wrap_cut), ("alone", lambda *a: None)):
        with mock.patch.object(pipeline, "wrap_cut", cut):
            upscale_file(up, src, folder / f"{how}.png", overwrite=True)
        got = read_image(folder / f"{how}.png").pixels.astype(int)
        off = np.abs(got - whole)
        near = np.concatenate([off[:, :8], off[:, -8:]], axis=1)
        row[how] = {"step": round(float(np.abs(got[:, 0] - got[:, -1]).mean()), 3),
                    "off_near_seam": round(float(near.mean()), 3), "max_near_seam": int(near.max()),
                    "off_elsewhere": round(float(off[:, 40:-40].mean()), 4)}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    up = Upscaler.of(zoo.load(None, 4))
    with tempfile.TemporaryDirectory() as tmp:
        rows = [seam(up, name, Path(tmp)) for name in ("lighthouse.jpg", "baby.png", "bridge.png")]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    sys.stdout.write(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)


if __name__ == "__main__":
    main()
