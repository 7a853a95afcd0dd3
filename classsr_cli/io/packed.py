"""TIFF pictures of 9 to 15 bits a sample, packed (a 12-bit scanner's or a scientific camera's), which tifffile reads
only with the imagecodecs package and ffmpeg's decoder reads wrong or not at all (10 and 14 bits; a 12-bit one with a
predictor or white as 0).

Each row holds its samples one after another, most significant bit first, and starts on a byte; the rows are in
strips (``StripOffsets``, ``StripByteCounts``, ``RowsPerStrip``), stored as they are or Deflate-compressed, the samples
of a pixel together (``PlanarConfiguration`` 1) or each in planes of its own (2). A horizontal predictor (2) stores
each sample as its difference from the one before it in the row, modulo the sample's range.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["readable", "unpack"]

#: TIFF's compression codes for Deflate (Adobe's, and the older one).
_DEFLATE = (8, 32946)


def readable(page: Any) -> bool:
    """Whether :func:`unpack` reads tifffile's ``page``: 9 to 15-bit unsigned samples, in strips, uncompressed or
    Deflate-compressed, bits in their usual order, with no predictor or the horizontal one."""
    return (9 <= int(page.bitspersample) <= 15 and int(page.sampleformat) == 1 and not page.is_tiled
            and int(page.compression) in (1, *_DEFLATE) and int(page.predictor) in (1, 2)
            and int(page.fillorder) == 1 and int(page.planarconfig) in (1, 2))  # fmt: skip


def unpack(path: Path, page: Any) -> np.ndarray:
    """The samples of tifffile's ``page`` of the TIFF ``path`` (:func:`readable`), ``(H, W, samples)``, as stored (each
    of ``bits``: 0 to 2**bits - 1), in ``uint16``. ``ValueError`` where its strips are cut short or do not inflate."""
    bits, samples = int(page.bitspersample), int(page.samplesperpixel)
    width, height = int(page.imagewidth), int(page.imagelength)
    per_strip = min(int(page.rowsperstrip or height), height)
    planes = samples if int(page.planarconfig) == 2 else 1
    across = width * (samples // planes)  # samples in a row of one plane
    row_bytes = (across * bits + 7) // 8
    strips = list(zip(page.dataoffsets, page.databytecounts, strict=True))
    per_plane = -(-height // per_strip)
    if len(strips) < planes * per_plane:
        raise ValueError(f"{len(strips)} strips where its size needs {planes * per_plane}")
    out = np.empty((planes, height, across), np.uint16)
    with path.open("rb") as f:
        for plane in range(planes):
            for k in range(per_plane):
                offset, count = strips[plane * per_plane + k]
                f.seek(int(offset))
                data = f.read(int(count))
                rows = min(per_strip, height - k * per_strip)
                if int(page.compression) in _DEFLATE:  # (no more than the strip holds: a bomb's strip inflates no further)
                    data = zlib.decompressobj().decompress(data, rows * row_bytes)
                if len(data) < rows * row_bytes:
                    raise ValueError(f"strip {plane * per_plane + k} cut short: {len(data)} of {rows * row_bytes} bytes")
                out[plane, k * per_strip : k * per_strip + rows] = _samples(data, rows, row_bytes, across, bits)
    if int(page.predictor) == 2:  # each sample its difference from the one before it in the row (of its own kind)
        step = samples // planes
        for first in range(step):  # (summed in 16 bits: modulo 2**16, so modulo 2**bits too)
            out[:, :, first::step] = np.cumsum(out[:, :, first::step], axis=2, dtype=np.uint16) & ((1 << bits) - 1)
    if planes > 1:
        return np.ascontiguousarray(np.moveaxis(out, 0, -1))
    return out[0].reshape(height, width, samples)


def _samples(data: bytes, rows: int, row_bytes: int, across: int, bits: int) -> np.ndarray:
    """``rows`` rows of ``across`` samples of ``bits``, each row ``row_bytes`` of ``data``, most significant bit first;
    a few rows at a time (a bit a byte while unpacking: a strip of a whole picture would take 8 times its size)."""
    raw = np.frombuffer(data, np.uint8, count=rows * row_bytes).reshape(rows, row_bytes)
    weights = (1 << np.arange(bits - 1, -1, -1)).astype(np.uint16)
    out = np.empty((rows, across), np.uint16)
    step = max(1, _CHUNK // max(1, row_bytes))
    for at in range(0, rows, step):
        flat = np.unpackbits(raw[at : at + step], axis=1)[:, : across * bits].reshape(-1, across, bits)
        out[at : at + step] = flat @ weights  # (each sample's bits, weighed)
    return out


#: About how many bytes of a strip are unpacked at a time.
_CHUNK = 1 << 20
