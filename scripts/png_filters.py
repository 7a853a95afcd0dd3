"""Which PNG filter and deflate to write upscaled images with: each input upscaled by the default model, then its
output encoded at level 1 by Pillow (its adaptive choice per row among the five filters, zlib) and by one fixed
filter for every row (None, Sub, Up, Average: the rows filtered with NumPy, then zlib; Up also with ISA-L's
deflate, ``up_isal``, where ``isal`` is installed), timed in turns. Seconds (median) and megabytes per input;
every fixed filter is checked to decode to the same pixels.

    python scripts/png_filters.py examples/lighthouse.jpg examples/baby.png [-x 4] [--threads 2] [--rounds 5]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

try:
    from isal import isal_zlib
except ImportError:
    isal_zlib = None

from classsr_cli import zoo
from classsr_cli.io.image import PNG_LEVEL, Picture, read_image, write_image
from classsr_cli.pipeline import Upscaler

FILTERS = {"none": 0, "sub": 1, "up": 2, "average": 3}


def filtered(raw: np.ndarray, kind: int, bpp: int) -> np.ndarray:
    """PNG scanlines ``(rows, 1 + row bytes)`` of ``raw`` ``(rows, row bytes)``, every row filtered by ``kind``."""
    out = np.empty((raw.shape[0], raw.shape[1] + 1), np.uint8)
    out[:, 0] = kind
    left = np.zeros_like(raw)
    left[:, bpp:] = raw[:, :-bpp]
    above = np.zeros_like(raw)
    above[1:] = raw[:-1]
    if kind == 0:
        out[:, 1:] = raw
    elif kind == 1:
        np.subtract(raw, left, out=out[:, 1:])
    elif kind == 2:
        np.subtract(raw, above, out=out[:, 1:])
    else:
        out[:, 1:] = (raw.astype(np.int16) - ((left.astype(np.int16) + above) >> 1)).astype(np.uint8)
    return out


def png_bytes(pixels: np.ndarray, kind: int, deflate: Callable[[memoryview, int], bytes] = zlib.compress) -> bytes:
    h, w, c = pixels.shape
    rows = filtered(pixels.reshape(h, w * c), kind, c)
    parts = [b"\x89PNG\r\n\x1a\n"]
    for tag, data in ((b"IHDR", w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, {1: 0, 3: 2}[c], 0, 0, 0])),
                      (b"IDAT", deflate(rows.data, PNG_LEVEL)), (b"IEND", b"")):
        parts.append(len(data).to_bytes(4, "big") + tag + data + zlib.crc32(tag + data).to_bytes(4, "big"))
    return b"".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", type=Path)
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    up = Upscaler(zoo.load(None, args.scale, device="cpu", dtype=torch.float32).net)
    report: dict = {"scale": args.scale, "threads": args.threads, "rounds": args.rounds, "level": PNG_LEVEL,
                    "torch": torch.__version__, "inputs": []}
    tmp = Path(tempfile.mkdtemp(prefix="png_filters_"))
    for path in args.inputs:
        pixels = up.upscale_array(read_image(path).pixels).pixels
        ways: dict[str, Callable[[], bytes]] = {}

        def pillow(px: np.ndarray = pixels) -> bytes:
            buf = io.BytesIO()
            Image.fromarray(px[..., 0] if px.shape[2] == 1 else px).save(buf, format="PNG", compress_level=PNG_LEVEL)
            return buf.getvalue()

        ways["pillow"] = pillow
        for name, kind in FILTERS.items():
            ways[name] = lambda px=pixels, k=kind: png_bytes(px, k)
        if isal_zlib is not None:
            ways["up_isal"] = lambda px=pixels: png_bytes(px, FILTERS["up"], isal_zlib.compress)
        sizes, times = {}, {k: [] for k in ways}
        for i in range(args.rounds):
            order = list(ways)[i % len(ways):] + list(ways)[: i % len(ways)]
            for name in order:
                t = time.perf_counter()
                data = ways[name]()
                times[name].append(time.perf_counter() - t)
                sizes[name] = len(data)
        for name in [w for w in ways if w != "pillow"]:  # each fixed filter decodes to the same pixels
            check = tmp / f"{name}.png"
            check.write_bytes(ways[name]())
            assert np.array_equal(read_image(check).pixels, pixels), name
            check.unlink()
        shipped = tmp / "shipped.png"  # the writer classsr ships
        t = time.perf_counter()
        write_image(shipped, Picture(pixels), overwrite=True)
        row = {"input": str(path), "output": list(pixels.shape), "shipped_writer_s": round(time.perf_counter() - t, 3),
               "shipped_writer_mb": round(shipped.stat().st_size / 1e6, 3),
               "seconds": {k: round(statistics.median(v), 3) for k, v in times.items()},
               "mb": {k: round(v / 1e6, 3) for k, v in sizes.items()}}
        shipped.unlink()
        report["inputs"].append(row)
        sys.stderr.write(f"{row}\n")
    tmp.rmdir()
    sys.stdout.write(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
