"""classsr_cli.io.bmp: BMP layouts Pillow refuses (bit fields of any masks, 2 bits a pixel, OS/2's short header and
RLE24, an oversized palette, a PNG or JPEG inside), read through ``read_image`` as the files' own pixels."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classsr_cli.errors import InputError
from classsr_cli.io import bmp
from classsr_cli.io.image import read_image

RNG = np.random.default_rng(5)


def _file(header: bytes, rest: bytes, palette: bytes = b"") -> bytes:
    """A BMP of ``header`` (its size its first field), ``palette`` and the pixels ``rest``."""
    offset = 14 + len(header) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(rest), 0, 0, offset) + header + palette + rest


def _info(width: int, height: int, bits: int, compression: int = 0, size: int = 40, colors: int = 0,
          masks: tuple[int, ...] = ()) -> bytes:  # fmt: skip
    head = struct.pack("<IiiHHIIiiII", size, width, height, 1, bits, compression, 0, 2835, 2835, colors, 0)
    fields = struct.pack(f"<{len(masks)}I", *masks)
    return (head + fields).ljust(size, b"\0") if size > 40 else head + fields


def _rows(pixels: np.ndarray, top_down: bool) -> bytes:
    """``(H, row bytes)`` stored bottom up (unless ``top_down``), each row padded to 4 bytes."""
    stride = (pixels.shape[1] + 3) // 4 * 4
    out = np.zeros((pixels.shape[0], stride), np.uint8)
    out[:, : pixels.shape[1]] = pixels
    return (out if top_down else out[::-1]).tobytes()


def _read(tmp_path: Path, data: bytes, name: str = "a.bmp") -> tuple[np.ndarray, np.ndarray | None]:
    (tmp_path / name).write_bytes(data)
    pic = read_image(tmp_path / name)
    return pic.pixels, pic.alpha


@pytest.mark.parametrize("top_down", [False, True])
def test_16_bit_fields_4_4_4_4_with_alpha_are_scaled_to_8_bits(tmp_path: Path, top_down: bool) -> None:
    """A V3 header's A4R4G4B4 (Pillow reads 5-6-5 and 5-5-5 alone): each 4-bit level v is v * 17."""
    levels = RNG.integers(0, 16, (5, 3, 4))  # r, g, b, a
    packed = (levels[..., 3] << 12) | (levels[..., 0] << 8) | (levels[..., 1] << 4) | levels[..., 2]
    header = _info(3, -5 if top_down else 5, 16, 3, 56, masks=(0xF00, 0xF0, 0xF, 0xF000))
    pixels, alpha = _read(tmp_path, _file(header, _rows(packed.astype("<u2").view(np.uint8).reshape(5, 6), top_down)))
    assert np.array_equal(pixels, (levels[..., :3] * 17).astype(np.uint8))
    assert alpha is not None and np.array_equal(alpha, (levels[..., 3] * 17).astype(np.uint8))


def test_32_bit_fields_of_10_bits_in_any_order_without_alpha(tmp_path: Path) -> None:
    """10-10-10 with blue highest, in a 40-byte header with its three masks after it: each level rounded to 8 bits."""
    levels = RNG.integers(0, 1024, (4, 6, 3))
    packed = (levels[..., 2] << 20) | (levels[..., 1] << 10) | levels[..., 0]
    header = _info(6, 4, 32, 3, masks=(0x3FF, 0xFFC00, 0x3FF00000))
    pixels, alpha = _read(tmp_path, _file(header, _rows(packed.astype("<u4").view(np.uint8).reshape(4, 24), False)))
    assert alpha is None
    assert np.array_equal(pixels, ((levels * 255 + 511) // 1023).astype(np.uint8))


def test_alpha_bitfields_compression_gives_its_alpha(tmp_path: Path) -> None:
    """BI_ALPHABITFIELDS (6): a 40-byte header followed by four masks, the fourth alpha's (Pillow refuses the code)."""
    rgba = RNG.integers(0, 256, (3, 5, 4))
    packed = (rgba[..., 0] << 24) | (rgba[..., 1] << 16) | (rgba[..., 2] << 8) | rgba[..., 3]  # RGBA from the top
    header = _info(5, 3, 32, 6, masks=(0xFF000000, 0xFF0000, 0xFF00, 0xFF))
    pixels, alpha = _read(tmp_path, _file(header, _rows(packed.astype("<u4").view(np.uint8).reshape(3, 20), False)))
    assert np.array_equal(pixels, rgba[..., :3].astype(np.uint8))
    assert alpha is not None and np.array_equal(alpha, rgba[..., 3].astype(np.uint8))


def test_two_bits_a_pixel_read_through_its_palette(tmp_path: Path) -> None:
    palette = np.array([[0, 0, 0], [200, 10, 20], [5, 250, 60], [255, 255, 255]])
    index = RNG.integers(0, 4, (4, 7))
    packed = np.zeros((4, 2), np.uint8)
    for x in range(7):
        packed[:, x // 4] |= (index[:, x] << (6 - 2 * (x % 4))).astype(np.uint8)
    quads = b"".join(bytes([b, g, r, 0]) for r, g, b in palette)
    pixels, _ = _read(tmp_path, _file(_info(7, 4, 2, colors=4), _rows(packed, False), quads))
    assert np.array_equal(pixels, palette[index].astype(np.uint8))


def test_an_os2_header_of_16_bytes_reads_as_its_fields_say(tmp_path: Path) -> None:
    """OS/2 2.x may stop its header after the bit count: the rest read as zeros (uncompressed, a full palette)."""
    index = RNG.integers(0, 256, (3, 5)).astype(np.uint8)
    palette = RNG.integers(0, 256, (256, 3))
    quads = b"".join(bytes([b, g, r, 0]) for r, g, b in palette)
    pixels, _ = _read(tmp_path, _file(struct.pack("<IiiHH", 16, 5, 3, 1, 8), _rows(index, False), quads))
    assert np.array_equal(pixels, palette[index].astype(np.uint8))


def test_a_palette_longer_than_its_bits_index_keeps_its_first_entries(tmp_path: Path) -> None:
    index = RNG.integers(0, 2, (3, 5)).astype(np.uint8) * 255
    palette = RNG.integers(0, 256, (300, 3))
    quads = b"".join(bytes([b, g, r, 0]) for r, g, b in palette)
    pixels, _ = _read(tmp_path, _file(_info(5, 3, 8, colors=300), _rows(index, False), quads))
    assert np.array_equal(pixels, palette[index].astype(np.uint8))


def test_os2_rle24_runs_literals_deltas_and_row_ends(tmp_path: Path) -> None:
    """A run (a count, then B G R), a literal stretch of an odd length (padded to even), a move (0 2 dx dy), row ends
    (0 0) and the end (0 1); what no run reaches is black."""
    red, blue = bytes([0, 0, 255]), bytes([255, 0, 0])
    stream = (bytes([3]) + red + bytes([0, 3]) + bytes(range(1, 10)) + b"\0" + bytes([0, 0])  # bottom row: 3 red, 3 literal
              + bytes([0, 2, 2, 0]) + bytes([1]) + blue + bytes([0, 1]))  # next row: move 2 right, 1 blue; end  # fmt: skip
    header = _info(6, 3, 24, 4, size=64)
    pixels, _ = _read(tmp_path, _file(header, stream))
    want = np.zeros((3, 6, 3), np.uint8)
    want[2, :3] = (255, 0, 0)
    want[2, 3:6] = np.arange(1, 10).reshape(3, 3)[:, ::-1]  # stored B G R
    want[1, 2] = (0, 0, 255)
    assert np.array_equal(pixels, want)


def test_an_os2_huffman_bmp_is_said_as_what_it_is(tmp_path: Path) -> None:
    """OS/2's 1-bit Huffman 1D coding (its compression 3, Windows' BI_BITFIELDS) was "truncated or corrupt image
    (Unsupported BMP bitfields layout)", Pillow's word for Windows' meaning of the number."""
    palette = bytes([0, 0, 0, 0, 255, 255, 255, 0])
    (tmp_path / "fax.bmp").write_bytes(_file(_info(16, 2, 1, 3, size=64), bytes(8), palette))
    with pytest.raises(InputError, match=r"fax\.bmp: an OS/2 BMP compressed with Huffman 1D \(fax coding\), which "
                                         r"classsr does not decode: save it uncompressed or as PNG$"):
        read_image(tmp_path / "fax.bmp")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_png_or_jpeg_inside_is_that_picture(tmp_path: Path, fmt: str) -> None:
    rgb = RNG.integers(0, 256, (6, 9, 3)).astype(np.uint8)
    inside = io.BytesIO()
    Image.fromarray(rgb).save(inside, fmt, quality=100)
    header = _info(9, 6, 0, 5 if fmt == "PNG" else 4)
    pixels, _ = _read(tmp_path, _file(header, inside.getvalue()))
    assert np.abs(pixels.astype(int) - (np.asarray(Image.open(inside).convert("RGB")).astype(int))).max() == 0
    (tmp_path / "cut.bmp").write_bytes(_file(header, inside.getvalue()[:40]))
    with pytest.raises(InputError, match=rf"cut\.bmp: the {fmt} inside it: truncated or corrupt"):
        read_image(tmp_path / "cut.bmp")


def test_bit_fields_cut_short_and_a_bomb_are_one_error_each(tmp_path: Path) -> None:
    header = _info(6, 4, 16, 3, 56, masks=(0xF00, 0xF0, 0xF, 0xF000))
    (tmp_path / "cut.bmp").write_bytes(_file(header, bytes(30)))
    with pytest.raises(InputError, match=r"cut\.bmp: truncated or corrupt image \(its pixels cut short: 30 of 48"):
        read_image(tmp_path / "cut.bmp")
    (tmp_path / "bomb.bmp").write_bytes(_file(_info(40000, 40000, 16, 3, 56, masks=(0xF00, 0xF0, 0xF, 0xF000)),
                                              bytes(64)))  # fmt: skip
    with pytest.raises(InputError, match=r"bomb\.bmp: 40000x40000 is 1,600,000,000 pixels, above"):
        read_image(tmp_path / "bomb.bmp")


def test_what_pillow_reads_itself_is_left_to_it() -> None:
    """A plain 24-bit BMP, an OS/2 1.x one (12-byte header) and what is not a BMP get no copy."""
    plain = _file(_info(2, 2, 24), bytes(16))
    assert bmp.readable(plain) is None and bmp.layout(plain) is not None
    assert bmp.readable(_file(struct.pack("<IHHHH", 12, 2, 2, 1, 24), bytes(16))) is None
    assert bmp.layout(b"GIF89a" + bytes(40)) is None
