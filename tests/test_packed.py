"""TIFF pictures of 9 to 15 bits a sample, packed (classsr_cli/io/packed.py), read through ``read_image``."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from classsr_cli.errors import InputError
from classsr_cli.io.image import read_image


def packed_tiff(levels: np.ndarray, bits: int, *, photometric: int | None = None, predictor: int = 1,
                planar: bool = False, deflate: bool = False, rows_per_strip: int | None = None,
                compression: int | None = None) -> bytes:  # fmt: skip
    """A TIFF of ``levels`` ((H, W) gray or (H, W, 3) RGB) packed at ``bits`` a sample (most significant bit first,
    each row starting on a byte), as scanners and scientific cameras write 10, 12 and 14-bit ones: in strips of
    ``rows_per_strip`` rows, the samples of a pixel together or in ``planar`` planes, differenced along each row where
    ``predictor`` is 2, ``deflate``-compressed; ``compression``: the tag's value where the data is stored otherwise
    (PackBits' 32773, written here as literal runs)."""
    lv = levels if levels.ndim == 3 else levels[..., None]
    h, w, n = lv.shape
    planes = [lv[..., k] for k in range(n)] if planar else [lv.reshape(h, w * n)]
    per = rows_per_strip or h
    strips = []
    for plane in planes:
        stored = plane.astype(np.int64)
        if predictor == 2:  # each sample as its difference from the one before it of its own kind, in its row
            step = 1 if planar else n
            stored = stored.copy()
            stored[:, step:] = (plane[:, step:].astype(np.int64) - plane[:, :-step]) % (1 << bits)
        rows = []
        for row in stored.tolist():
            stream = "".join(format(v, f"0{bits}b") for v in row)
            stream += "0" * (-len(stream) % 8)
            rows.append(bytes(int(stream[k : k + 8], 2) for k in range(0, len(stream), 8)))
        for first in range(0, h, per):
            data = b"".join(rows[first : first + per])
            if deflate:
                data = zlib.compress(data)
            elif compression == 32773:  # PackBits: literal runs of up to 128 bytes
                data = b"".join(bytes([len(data[k : k + 128]) - 1]) + data[k : k + 128] for k in range(0, len(data), 128))
            strips.append(data)
    code = 8 if deflate else compression or 1
    white = photometric if photometric is not None else (1 if n == 1 else 2)
    count = len(strips)
    tags = [(256, 3, [w]), (257, 3, [h]), (258, 3, [bits] * n), (259, 3, [code]), (262, 3, [white]),
            (273, 4, [0] * count), (277, 3, [n]), (278, 3, [per]), (279, 4, [len(s) for s in strips]),
            (284, 3, [2 if planar else 1]), (317, 3, [predictor])]  # fmt: skip
    ifd_size = 2 + 12 * len(tags) + 4
    extra_at = 8 + ifd_size
    extras = b""
    entries = []
    data_at = extra_at + sum(len(v) * (2 if kind == 3 else 4) for _, kind, v in tags if len(v) * (2 if kind == 3 else 4) > 4)
    offsets = []
    for s in strips:
        offsets.append(data_at)
        data_at += len(s)
    for tag, kind, values in tags:
        values = offsets if tag == 273 else values
        raw = struct.pack(f"<{len(values)}{'H' if kind == 3 else 'I'}", *values)
        if len(raw) <= 4:
            entries.append(struct.pack("<HHI", tag, kind, len(values)) + raw.ljust(4, b"\0"))
        else:
            entries.append(struct.pack("<HHII", tag, kind, len(values), extra_at + len(extras)))
            extras += raw
    ifd = struct.pack("<H", len(tags)) + b"".join(entries) + bytes(4)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + extras + b"".join(strips)


def _stretched(levels: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    return (levels.astype(np.int64) * 65535 + top // 2) // top


@pytest.mark.parametrize("bits", [10, 12, 14])
@pytest.mark.parametrize(("kind", "options"), [
    ("gray", {}), ("gray", {"predictor": 2}), ("gray", {"photometric": 0}), ("gray", {"deflate": True, "rows_per_strip": 3}),
    ("rgb", {}), ("rgb", {"planar": True, "rows_per_strip": 2}), ("rgb", {"predictor": 2, "deflate": True}),
    ("rgb", {"planar": True, "predictor": 2}),
])  # fmt: skip
def test_packed_samples_read_at_their_levels(tmp_path: Path, bits: int, kind: str, options: dict) -> None:
    """A packed TIFF of 10, 12 or 14 bits a sample, gray or RGB, the samples together or in planes, with or without
    the horizontal predictor, stored or Deflate-compressed, white as 0 or as its top: refused before (tifffile needs
    imagecodecs; ffmpeg reads no 10 or 14 bits, and gets a 12-bit predictor or white as 0 wrong): now every level as
    stored, stretched to 0-65535 (image-tiff's ``hpredict-1c-12b.tiff`` and ``miniswhite-1c-12b.tiff``: the values
    its tests give)."""
    rng = np.random.default_rng(bits)
    levels = rng.integers(0, 1 << bits, (7, 5) if kind == "gray" else (7, 5, 3))
    (tmp_path / "p.tif").write_bytes(packed_tiff(levels, bits, **options))
    pic = read_image(tmp_path / "p.tif")
    want = _stretched(levels, bits)
    if options.get("photometric") == 0:
        want = 65535 - want
    assert pic.pixels.dtype == np.uint16 and np.array_equal(pic.pixels, want if kind == "rgb" else want[..., None])


def test_a_cut_strip_or_a_layout_left_to_others_is_refused_in_one_line(tmp_path: Path) -> None:
    """A strip cut short is "truncated or corrupt"; a 10-bit one in PackBits (neither this reader's nor ffmpeg's) says
    what it is."""
    levels = np.arange(35).reshape(7, 5) * 20
    data = packed_tiff(levels, 10)
    (tmp_path / "cut.tif").write_bytes(data[:-10])
    with pytest.raises(InputError, match=r"cut\.tif: truncated or corrupt image \(strip 0 cut short: "):
        read_image(tmp_path / "cut.tif")
    (tmp_path / "bits.tif").write_bytes(packed_tiff(levels, 10, compression=32773))
    with pytest.raises(InputError, match=r"bits\.tif: a TIFF of 10-bit samples, PackBits-compressed, which neither "
                                         r"tifffile \(without imagecodecs\) nor the bundled ffmpeg decodes"):  # fmt: skip
        read_image(tmp_path / "bits.tif")
