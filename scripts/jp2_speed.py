"""How long classsr takes to write and read a JPEG 2000 the size of a ×4 output: 16 bits through each of the bundled
ffmpeg's encoders (OpenJPEG's, which classsr uses where ffmpeg has it, and ffmpeg's native one), read back through
ffmpeg's decoder; 8 bits through Pillow (OpenJPEG), read back through Pillow.

The picture is ``examples/lighthouse.jpg`` resized by Pillow's bicubic to 4096x3072 (its levels × 257 at 16 bits).
Each case runs ``--repeat`` times; prints one JSON line a case: the best seconds to write and to read, the file's size,
and whether the read gives the written levels back (lossless).

    python scripts/jp2_speed.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    from classsr_cli.io import image

    root = Path(__file__).resolve().parents[1]
    with Image.open(root / "examples" / "lighthouse.jpg") as im:
        eight = np.asarray(im.convert("RGB").resize((4096, 3072), Image.Resampling.BICUBIC))
    sixteen = eight.astype(np.uint16) * 257
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "big.jp2"
        for name, pixels, encoder in (("16-bit, OpenJPEG", sixteen, "libopenjpeg"), ("16-bit, native", sixteen, "jpeg2000"),
                                      ("8-bit, Pillow", eight, None)):  # fmt: skip
            write, read, same = float("inf"), float("inf"), True
            for _ in range(args.repeat):
                t = time.perf_counter()
                if encoder is None:
                    image.write_image(out, image.Picture(pixels), overwrite=True)
                else:  # the writer write_image uses for 16 bits, with the encoder named
                    image._atomic_write(out, lambda tmp, e=encoder: image._jp2_writer16(tmp, sixteen, None, encoder=e),
                                        True)  # fmt: skip
                write = min(write, time.perf_counter() - t)
                t = time.perf_counter()
                back = image.read_image(out)
                read = min(read, time.perf_counter() - t)
                same = same and np.array_equal(back.pixels, pixels)
            sys.stdout.write(json.dumps({"case": name, "size": "4096x3072", "write_s": round(write, 3),
                                         "read_s": round(read, 3), "bytes": out.stat().st_size, "lossless": same}) + "\n")


if __name__ == "__main__":
    main()
