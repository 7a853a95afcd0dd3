"""The OpenEXR files ``tests/test_exr.py`` reads, written by the reference library (``pip install OpenEXR``, not a
dependency of classsr), and classsr's own EXR writer checked by that library's reader.

Writes into ``tests/data/exr/`` (16x12 pictures whose values follow :func:`values`, the tests rebuild them): a tiled
PIZ RGBA (premultiplied, as EXR stores colour), a DWAA (lossy) RGB, a two-part file (the picture, then depth), one
with a layer and depth beside RGB, one whose data window lies inside its display window, one ZSTD (a compression newer
than ffmpeg's decoder). Then writes EXRs with ``classsr_cli.io.exr.write`` (half and float; Y, RGB, RGBA; attributes
and the record) and prints one JSON line a file: whether OpenEXR reads every value and attribute as written.

    pip install --target /tmp/openexr OpenEXR && PYTHONPATH=/tmp/openexr python scripts/exr_fixtures.py
"""

from __future__ import annotations

import io
import json
import struct
import sys
from pathlib import Path

import numpy as np
import OpenEXR

from classsr_cli.io import exr

HEIGHT, WIDTH = 12, 16


def values() -> tuple[np.ndarray, np.ndarray]:
    """The fixtures' straight colour, ``(12, 16, 3)`` float32 with light above 1.0, and alpha (a quarter to one)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    rgb = np.stack([(x + 2 * y + 5 * c) / 16 for c in range(3)], axis=-1).astype(np.float32)
    return rgb, (((x + y) % 4 + 1) / 4).astype(np.float32)


def fixtures(folder: Path) -> None:
    """The files, from C-contiguous arrays (the library's Python binding reads a strided view's buffer as though it
    were contiguous)."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb, alpha = values()
    half = rgb.astype(np.float16)
    tiles = OpenEXR.TileDescription()
    tiles.xSize, tiles.ySize, tiles.mode = 8, 8, OpenEXR.ONE_LEVEL
    premultiplied = np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=-1).astype(np.float16)
    OpenEXR.File({"compression": OpenEXR.PIZ_COMPRESSION, "type": OpenEXR.tiledimage, "tiles": tiles},
                 {"RGBA": premultiplied}).write(str(folder / "tiled_piz_rgba.exr"))  # fmt: skip
    OpenEXR.File({"compression": OpenEXR.DWAA_COMPRESSION}, {"RGB": half}).write(str(folder / "dwaa.exr"))
    parts = [OpenEXR.Part({"compression": OpenEXR.ZIP_COMPRESSION}, {"RGB": half}, name="beauty"),
             OpenEXR.Part({"compression": OpenEXR.ZIP_COMPRESSION}, {"Z": np.ones((HEIGHT, WIDTH), np.float32)},
                          name="depth")]  # fmt: skip
    OpenEXR.File(parts).write(str(folder / "two_parts.exr"))
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION},
                 {"RGB": half, "diffuse.R": np.ascontiguousarray(half[..., 0]), "Z": np.ones((HEIGHT, WIDTH), np.float32)}).write(
        str(folder / "layers.exr"))  # fmt: skip
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "dataWindow": ((2, 1), (13, 10)),
                  "displayWindow": ((0, 0), (WIDTH - 1, HEIGHT - 1))},
                 {"RGB": np.ascontiguousarray(half[1:11, 2:14])}).write(str(folder / "window.exr"))  # fmt: skip
    OpenEXR.File({"compression": OpenEXR.ZSTD_COMPRESSION}, {"RGB": half}).write(str(folder / "zstd.exr"))


def check_writer() -> None:
    rng = np.random.default_rng(0)
    chroma = struct.pack("<8f", 0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767)
    for channels in (1, 3, 4):
        for half in (True, False):
            x = (rng.standard_normal((37, 23, channels)) * 3).astype(np.float32)
            buf = io.BytesIO()
            exr.write(buf, [x[:10], x[10:]], width=23, height=37, channels=channels, half=half,
                      attributes={"chromaticities": ("chromaticities", chroma), "owner": ("string", b"Ada")},
                      made_by='{"m": 1}', workers=2)  # fmt: skip
            buf.seek(0)
            with OpenEXR.File(buf) as f:  # what it gives is the file's: read before it is closed
                header, read = dict(f.header()), f.channels()
                got = read["Y"].pixels[..., None] if channels == 1 else read["RGBA" if channels == 4 else "RGB"].pixels
                got = got.copy()
            want = x.astype(np.float16) if half else x
            same = bool(np.array_equal(got, want) and got.dtype == want.dtype)
            attributes = (header.get("owner") == "Ada" and header.get("classsr") == '{"m": 1}'
                          and np.allclose(header.get("chromaticities"), struct.unpack("<8f", chroma)))  # fmt: skip
            sys.stdout.write(json.dumps({"channels": channels, "half": half, "openexr": OpenEXR.__version__,
                                         "values_as_written": same, "attributes_as_written": bool(attributes)}) + "\n")


if __name__ == "__main__":
    fixtures(Path(__file__).resolve().parents[1] / "tests" / "data" / "exr")
    check_writer()
