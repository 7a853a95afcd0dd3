"""classsr_cli.io.image: formats, modes, metadata, the bomb guard, bad files, atomic writes, and outputs streamed in
bands equal to whole ones."""

from __future__ import annotations

import io
import re
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import animated_webp
from PIL import Image, ImageCms, ImageOps

from classsr_cli.errors import ConfigError, InputError, OutputExistsError
from classsr_cli.io.image import (
    DEFAULT_MAX_PIXELS,
    Meta,
    Picture,
    PngText,
    check_output_size,
    peek_size,
    read_image,
    readable_formats,
    write_image,
)

readable_formats()  # registers pillow-heif's HEIC plugin with Pillow, as every read does: the tests save HEICs too

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)
_Y, _X = np.mgrid[0:32, 0:40]
SMOOTH = np.stack([_X * 6, _Y * 7, (_X + _Y) * 3], -1).astype(np.uint8)


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def bomb_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height but holds almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".avif", ".heic", ".tif", ".bmp", ".tga", ".ppm", ".qoi", ".jp2"])
def test_reads_each_format_as_rgb8(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"a{suffix}"
    Image.fromarray(RGB).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    pic = read_image(path)
    assert pic.mode == "RGB" and pic.bits == 8 and pic.pixels.shape == (12, 10, 3)
    if suffix not in (".jpg", ".avif", ".heic"):
        assert np.array_equal(pic.pixels, RGB)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".avif", ".heic", ".tif", ".bmp", ".tga", ".ppm", ".qoi", ".jp2"])
def test_write_read_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"out{suffix}"
    assert write_image(path, Picture(SMOOTH)) == []
    back = read_image(path)
    assert back.pixels.shape == SMOOTH.shape
    tol = 0 if suffix in (".png", ".tif", ".bmp", ".tga", ".ppm", ".qoi", ".jp2") else 3
    assert np.abs(back.pixels.astype(int) - SMOOTH).mean() <= tol


def test_gray_stays_gray(tmp_path: Path) -> None:
    path = tmp_path / "g.png"
    Image.fromarray(RGB[..., 0], "L").save(path)
    pic = read_image(path)
    assert pic.gray and pic.mode == "L" and pic.pixels.shape == (12, 10, 1)
    write_image(tmp_path / "g2.png", pic)
    assert Image.open(tmp_path / "g2.png").mode == "L"


def test_bilevel_becomes_gray(tmp_path: Path) -> None:
    path = tmp_path / "b.png"
    Image.fromarray(RGB[..., 0] > 128).save(path)
    assert read_image(path).mode == "L"


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_kept_apart(tmp_path: Path, mode: str) -> None:
    alpha = RNG.integers(0, 256, (12, 10), dtype=np.uint8)
    colour = RGB if mode == "RGBA" else RGB[..., :1]
    arr = np.concatenate([colour, alpha[..., None]], axis=2)
    path = tmp_path / "a.png"
    Image.fromarray(arr, mode).save(path)
    pic = read_image(path)
    assert pic.mode == mode and np.array_equal(pic.alpha, alpha)
    write_image(tmp_path / "b.png", pic)
    assert Image.open(tmp_path / "b.png").mode == mode
    back = read_image(tmp_path / "b.png")
    assert np.array_equal(back.pixels, pic.pixels) and np.array_equal(back.alpha, alpha)


def test_opaque_alpha_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(RGB).convert("RGBA").save(path)
    assert read_image(path).alpha is None


def test_palette_becomes_rgb_or_rgba(tmp_path: Path) -> None:
    p = Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    p.save(tmp_path / "p.png")
    pic = read_image(tmp_path / "p.png")
    assert pic.mode == "RGB" and any("palette" in n for n in pic.notes)
    p.save(tmp_path / "pt.png", transparency=0)
    assert read_image(tmp_path / "pt.png").mode == "RGBA"


def test_8_bit_colour_key_becomes_alpha(tmp_path: Path) -> None:
    """An 8-bit RGB or gray PNG's tRNS colour key becomes alpha, as a palette's transparency does (it was dropped:
    the keyed area came out black and opaque); a key no pixel has leaves the picture opaque."""
    rgb = RGB.copy()
    rgb[0, 0] = (0, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "k.png", transparency=(0, 0, 0))
    pic = read_image(tmp_path / "k.png")
    assert pic.mode == "RGBA" and pic.alpha is not None and np.array_equal(pic.pixels, rgb)
    assert np.array_equal(pic.alpha == 0, (rgb == 0).all(axis=2))
    gray = RGB[..., 0].copy()
    gray[0, 0] = 0
    Image.fromarray(gray).save(tmp_path / "g.png", transparency=0)
    pic = read_image(tmp_path / "g.png")
    assert pic.mode == "LA" and pic.alpha is not None and np.array_equal(pic.pixels[..., 0], gray)
    assert np.array_equal(pic.alpha == 0, gray == 0)
    Image.fromarray(np.maximum(gray, 1)).save(tmp_path / "none.png", transparency=0)
    assert read_image(tmp_path / "none.png").mode == "L"


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_low_bit_gray_colour_key_becomes_alpha(tmp_path: Path, bits: int) -> None:
    """A 1, 2 or 4-bit gray PNG keyed on white: Pillow scales the pixels to 8 bits but reports the 2 and 4-bit
    key unscaled, so the key is scaled to match before it becomes alpha."""
    import png

    top = (1 << bits) - 1
    arr = np.full((3, 4), top, np.uint8)
    arr[0, 0] = 0
    with (tmp_path / "g.png").open("wb") as f:
        png.Writer(4, 3, greyscale=True, bitdepth=bits, transparent=top).write(f, arr.tolist())
    pic = read_image(tmp_path / "g.png")
    assert pic.mode == "LA" and pic.alpha is not None
    assert np.array_equal(pic.alpha, np.where(arr == top, 0, 255)) and np.array_equal(pic.pixels[..., 0], arr * (255 // top))


def test_cmyk_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "c.jpg"
    Image.fromarray(RGB).convert("CMYK").save(path)
    pic = read_image(path)
    assert pic.mode == "RGB" and pic.icc is None and any("CMYK" in n for n in pic.notes)


@pytest.mark.parametrize("c", [1, 2, 3, 4])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_stays_16_bit(tmp_path: Path, c: int, suffix: str) -> None:
    arr = RNG.integers(0, 65536, (9, 7, c), dtype=np.uint16)
    colour, alpha = (arr[..., : c - 1], arr[..., -1]) if c in (2, 4) else (arr, None)
    write_image(tmp_path / f"w{suffix}", Picture(colour, alpha))
    pic = read_image(tmp_path / f"w{suffix}")
    assert pic.bits == 16 and np.array_equal(pic.pixels, colour)
    assert (pic.alpha is None) == (alpha is None)
    if alpha is not None:
        assert np.array_equal(pic.alpha, alpha)


def test_16_bit_png_from_pypng(tmp_path: Path) -> None:
    import png

    arr = RNG.integers(0, 65536, (6, 5, 3), dtype=np.uint16)
    png.from_array(arr.reshape(6, 15).tolist(), "RGB;16").save(str(tmp_path / "p.png"))
    pic = read_image(tmp_path / "p.png")
    assert pic.bits == 16 and np.array_equal(pic.pixels, arr)


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize(("c", "mode"), [(1, "L;16"), (2, "LA;16"), (3, "RGB;16"), (4, "RGBA;16")])
def test_16_bit_png_is_decoded_by_ffmpeg_as_pypng_decodes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, c: int, mode: str, interlace: bool
) -> None:
    """Every 16-bit colour type, plain and interlaced (pypng's own files, filter by filter as pypng writes them):
    the bundled ffmpeg gives pypng's pixels; without ffmpeg, pypng itself reads them."""
    import png

    import classsr_cli.io.image as image_io
    import classsr_cli.io.video as video_io
    from classsr_cli.errors import VideoError

    arr = RNG.integers(0, 65536, (7, 9, c), dtype=np.uint16)
    with (tmp_path / "p.png").open("wb") as f:
        png.Writer(9, 7, greyscale=c < 3, alpha=c in (2, 4), bitdepth=16, interlace=interlace).write(
            f, arr.reshape(7, 9 * c).tolist())
    colour, alpha = (arr[..., :-1], arr[..., -1]) if c in (2, 4) else (arr, None)
    calls: list[object] = []
    run = image_io.subprocess.run
    monkeypatch.setattr(image_io.subprocess, "run", lambda *a, **k: calls.append(a) or run(*a, **k))
    got = read_image(tmp_path / "p.png")
    assert calls and got.bits == 16 and np.array_equal(got.pixels, colour)
    assert (got.alpha is None) == (alpha is None) and (alpha is None or np.array_equal(got.alpha, alpha))

    def no_ffmpeg() -> str:
        raise VideoError("no ffmpeg binary")

    monkeypatch.setattr(video_io, "ffmpeg_exe", no_ffmpeg)
    calls.clear()
    again = read_image(tmp_path / "p.png")
    assert not calls and np.array_equal(again.pixels, got.pixels)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_16_bit_png_with_an_exif_orientation_is_turned_once(tmp_path: Path, orientation: int) -> None:
    """A 16-bit PNG whose eXIf says 3, 6 or 8 is turned upright once, as an 8-bit one is; before, the bundled ffmpeg
    turned it as it decoded (reading the eXIf itself), the turned rows were laid out by the header's size, and the
    picture came out scrambled, then was turned again."""
    from classsr_cli.io.image import _png_writer

    exif = Image.Exif()
    exif[0x0112] = orientation
    deep = RNG.integers(0, 65536, (6, 10, 3), dtype=np.uint16)
    _png_writer(tmp_path / "t.png", (6, 10), 3, np.dtype(np.uint16), [deep], Meta(exif=exif.tobytes()))
    pic = read_image(tmp_path / "t.png")
    assert pic.bits == 16
    turned = {3: np.rot90(deep, 2), 6: np.rot90(deep, -1), 8: np.rot90(deep, 1)}[orientation]
    assert pic.pixels.shape == turned.shape and np.array_equal(pic.pixels, turned)
    assert peek_size(tmp_path / "t.png") == turned.shape[:2]


def test_16_bit_png_with_a_colour_key_goes_to_pypng(tmp_path: Path) -> None:
    """A tRNS colour key becomes alpha (pypng's reading), and a truncated 16-bit PNG is one error naming it."""
    import png

    arr = RNG.integers(0, 65536, (6, 5, 3), dtype=np.uint16)
    arr[0, 0] = (1, 2, 3)
    keyed = png.Writer(5, 6, greyscale=False, bitdepth=16, transparent=(1, 2, 3))
    with (tmp_path / "k.png").open("wb") as f:
        keyed.write(f, arr.reshape(6, 15).tolist())
    pic = read_image(tmp_path / "k.png")
    assert np.array_equal(pic.pixels, arr) and pic.alpha is not None
    assert pic.alpha[0, 0] == 0 and pic.alpha[1:].min() == 65535
    good = tmp_path / "g.png"
    png.from_array(arr.reshape(6, 15).tolist(), "RGB;16").save(str(good))
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:-30])
    with pytest.raises(InputError, match=r"cut\.png"):
        read_image(cut)


def test_16_bit_to_8_bit_format_is_noted(tmp_path: Path) -> None:
    arr = np.full((4, 4, 3), 65535, np.uint16)
    notes = write_image(tmp_path / "o.jpg", Picture(arr))
    assert any("8" in n for n in notes) and read_image(tmp_path / "o.jpg").pixels.min() >= 250


def test_alpha_in_jpeg_is_composited_on_white(tmp_path: Path) -> None:
    notes = write_image(tmp_path / "o.jpg", Picture(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)))
    assert any("alpha" in n for n in notes) and read_image(tmp_path / "o.jpg").pixels.min() > 240


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied(tmp_path: Path, orientation: int) -> None:
    im = Image.fromarray(RGB)
    exif = im.getexif()
    exif[0x0112] = orientation
    exif[0x010F] = "classsr-test"  # Make
    path = tmp_path / "o.png"
    im.save(path, exif=exif.tobytes())
    pic = read_image(path)
    assert np.array_equal(pic.pixels, np.asarray(ImageOps.exif_transpose(Image.open(path))))
    write_image(tmp_path / "out.jpg", pic)
    carried = Image.open(tmp_path / "out.jpg").getexif()
    assert carried.get(0x010F) == "classsr-test" and 0x0112 not in carried


def test_avif_is_read_turned_by_its_exif_and_written_with_it(tmp_path: Path) -> None:
    """AVIF, as phones and the web save photos: read with its EXIF orientation applied (its header size turned alike),
    written with the EXIF (orientation dropped: the pixels are turned) and the ICC profile."""
    from classsr_cli.io.image import peek_size

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "classsr-test"
    Image.fromarray(SMOOTH).save(tmp_path / "a.avif", exif=exif.tobytes(), icc_profile=icc, quality=100)
    pic = read_image(tmp_path / "a.avif")
    assert pic.pixels.shape[:2] == peek_size(tmp_path / "a.avif") == SMOOTH.shape[1::-1]
    assert np.abs(pic.pixels.astype(int) - np.rot90(SMOOTH, -1)).mean() <= 3 and pic.icc == icc
    assert write_image(tmp_path / "b.avif", pic) == []
    with Image.open(tmp_path / "b.avif") as back:
        assert back.format == "AVIF" and back.info.get("icc_profile") == icc
        assert back.getexif().get(0x010F) == "classsr-test" and 0x0112 not in back.getexif()
    assert read_image(tmp_path / "b.avif").pixels.shape == pic.pixels.shape  # not turned again


def test_an_animated_avif_gives_its_first_frame_and_names_classsr_video(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 6), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.avif", save_all=True, append_images=frames[1:], duration=100)
    pic = read_image(tmp_path / "a.avif")
    assert np.abs(pic.pixels[2, 3].astype(int) - [255, 0, 0]).max() <= 8
    assert pic.notes == ["AVIF with 3 frames: only the first is upscaled (`classsr video` upscales every frame: e.g. "
                         "`classsr video a.avif a_x4.webp`)"]


@pytest.mark.slow
def test_a_10_or_12_bit_avif_is_read_at_16_bits_before_its_rotation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's AVIF decoder gives 8 bits whatever the file holds: a 10 or 12-bit AVIF (an HDR photo's depth) is
    decoded by the bundled ffmpeg instead, its levels stretched to 16 bits, colour or gray, as stored: its rotation
    (``irot``, which Pillow gives as EXIF orientation) applied once, as on the 8-bit path. Its alpha (an auxiliary
    image, ffmpeg's second stream) is read at 16 bits too (it was read at 8, with a note); an 8-bit one says nothing."""
    import subprocess

    from classsr_cli.io import image as io_image
    from classsr_cli.io.image import Nclx
    from classsr_cli.io.video import ffmpeg_exe

    y, x = np.mgrid[0:48, 0:64]
    deep = np.stack([x * 1000, y * 1300, (x + y) * 550], -1).astype(np.uint16)
    for pix_fmt, want in (("yuv444p10le", deep), ("yuv444p12le", deep), ("gray10le", deep[..., :1])):
        path = tmp_path / f"{pix_fmt}.avif"
        src = tmp_path / "d16.png"
        write_image(src, Picture(want), overwrite=True)
        subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(src), "-frames:v", "1", "-c:v", "libaom-av1", "-crf", "0",
                        "-pix_fmt", pix_fmt, "-still-picture", "1", "-f", "avif", str(path)], check=True, timeout=120)  # fmt: skip
        pic = read_image(path)
        assert pic.bits == 16 and pic.pixels.shape == want.shape and pic.notes == [], pix_fmt
        assert np.abs(pic.pixels.astype(int) - want).mean() < 0.5 * 257  # within half an 8-bit level
        assert (np.unique(pic.pixels) % 257 != 0).mean() > 0.5  # more levels than 8 bits hold
    pq = tmp_path / "pq.avif"  # an HDR photo: BT.2020 primaries, PQ, said and kept (a PNG output as cICP)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(src), "-frames:v", "1", "-vf",
                    "setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc", "-c:v", "libaom-av1",
                    "-crf", "0", "-pix_fmt", "yuv444p10le", "-still-picture", "1", "-f", "avif", str(pq)],
                   check=True, timeout=120)  # fmt: skip
    hdr = read_image(pq)
    assert hdr.bits == 16 and hdr.nclx == Nclx(9, 16, 9, True)
    assert hdr.notes == []  # said where an output cannot keep it
    assert write_image(tmp_path / "pq.jpg", hdr)[0] == ("the picture is HDR (PQ) in BT.2020 colours, which the JPEG "
                                                        "output cannot say: tone-mapped to SDR sRGB; a HEIC, AVIF, JPEG "
                                                        "XL or PNG output keeps it HDR")  # fmt: skip
    write_image(tmp_path / "pq.png", hdr)
    assert b"cICP\x09\x10\x00\x01" in (tmp_path / "pq.png").read_bytes()
    again = read_image(tmp_path / "pq.png")  # read back as PQ (it was read as sRGB: a PNG of it lost its tag)
    assert again.nclx == hdr.nclx and again.notes == []
    write_image(tmp_path / "pq2.png", again)
    assert b"cICP\x09\x10\x00\x01" in (tmp_path / "pq2.png").read_bytes()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(SMOOTH).save(tmp_path / "turned.avif", exif=exif.tobytes(), quality=100)  # stored as irot
    eight = read_image(tmp_path / "turned.avif")
    Image.fromarray(np.dstack([SMOOTH, SMOOTH[..., :1]])).save(tmp_path / "alpha.avif", quality=100)
    monkeypatch.setattr(io_image, "_avif_bits", lambda path: 10)  # the same files, read as a deep one is
    turned = read_image(tmp_path / "turned.avif")
    assert turned.bits == 16 and turned.pixels.shape == eight.pixels.shape == (40, 32, 3)
    assert np.abs(turned.pixels.astype(int) // 257 - eight.pixels).mean() < 1.5  # turned once, not twice or never
    alpha = read_image(tmp_path / "alpha.avif")  # (libavif's: its alpha, an auxiliary image, ffmpeg's second stream)
    assert alpha.bits == 16 and alpha.notes == [] and alpha.alpha is not None and alpha.alpha.dtype == np.uint16
    assert np.abs(alpha.alpha.astype(int) // 257 - SMOOTH[..., 0]).mean() < 1.5
    monkeypatch.undo()
    assert read_image(tmp_path / "alpha.avif").notes == []


def test_heic_is_read_upright_and_written_in_tiles_with_its_metadata(tmp_path: Path) -> None:
    """HEIC, as phones save photos: HEIF's own rotation (pillow-heif writes EXIF orientation 6 as one) applied, the
    header size turned alike, the EXIF and ICC profile carried; written back as a grid of 512-pixel tiles, as phones
    write them (one HEVC picture holds at most 142.6 million pixels), not turned again."""
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "Apple"
    Image.fromarray(SMOOTH).save(tmp_path / "a.heic", exif=exif.tobytes(), icc_profile=icc, quality=95)
    pic = read_image(tmp_path / "a.heic")
    assert pic.source_format == "HEIF" and pic.bits == 8 and pic.notes == []
    assert pic.pixels.shape[:2] == peek_size(tmp_path / "a.heic") == SMOOTH.shape[1::-1]
    assert np.abs(pic.pixels.astype(int) - np.rot90(SMOOTH, -1)).mean() < 2  # turned clockwise, as 6 asks
    big = Picture(np.repeat(np.repeat(pic.pixels, 20, 0), 20, 1), icc=pic.icc, exif=pic.exif)  # 800x640
    assert write_image(tmp_path / "b.heic", big) == []
    with Image.open(tmp_path / "b.heic") as back:
        assert back.format == "HEIF" and back.info.get("icc_profile") == icc and back.getexif()[0x010F] == "Apple"
        assert back.info["tiling"]["tile_width"] == 512 and back.size == (640, 800)
    assert read_image(tmp_path / "b.heic").pixels.shape == big.pixels.shape  # not turned again
    from classsr_cli.io import heifbox

    data = (tmp_path / "b.heic").read_bytes()  # each item placed from the file's start, as Apple's (exiv2 0.27
    meta = heifbox._primary_image(data, coded=False)[0]  # found no EXIF behind libheif's base offsets)
    assert all(loc.base == 0 for loc in meta.locations)
    exif_item = next(heifbox._infe(box)[0] for box in meta.infe if heifbox._infe(box)[1] == b"Exif")
    (_, at, length), = next(loc.extents for loc in meta.locations if loc.item == exif_item)
    assert b"Apple" in data[at : at + length]


def test_a_10_bit_heic_is_read_at_16_bits_and_written_at_10(tmp_path: Path) -> None:
    """A 10-bit HEIC (a camera's or an HDR phone photo's depth) keeps its levels: read at 16 bits, each of its 1024
    levels stretched to 0-65535 as a 16-bit PNG holds them, and written back at 10 bits (a 12-bit one at 12) without a
    note; 16 bits from elsewhere are rounded to 10, with one (Pillow's plugin alone reads and writes 8)."""
    import pillow_heif

    y, x = np.mgrid[0:48, 0:64]
    deep = np.stack([x * 1000, y * 1300, (x + y) * 550], -1).astype(np.uint16)
    pillow_heif.from_bytes(mode="RGB;16", size=(64, 48), data=deep.tobytes()).save(tmp_path / "d.heic", quality=-1)
    pic = read_image(tmp_path / "d.heic")
    assert pic.bits == 16 and pic.pixels.shape == (48, 64, 3)
    assert np.abs(pic.pixels.astype(int) - deep).mean() < 2 * 257  # HEVC's 4:2:0 chroma, even at quality -1
    levels = np.unique(pic.pixels)  # 10-bit levels stretched, not 8-bit ones (multiples of 257)
    assert np.array_equal(levels, (np.rint(np.rint(levels / 65535 * 1023) * 65535 / 1023)).astype(np.uint16))
    assert (levels % 257 != 0).mean() > 0.5 and len(levels) > 300 and int(levels.max()) > 60000
    assert pic.depth == 10 and write_image(tmp_path / "e.heic", pic) == []  # its 10 bits kept: nothing to say
    with Image.open(tmp_path / "e.heic") as back:
        assert back.info["bit_depth"] == 10
    assert np.abs(read_image(tmp_path / "e.heic").pixels.astype(int) - pic.pixels).mean() < 257
    png16 = Picture(pic.pixels)  # 16 bits from elsewhere (a 16-bit PNG): rounded to 10, and said
    assert write_image(tmp_path / "f.heic", png16) == [
        "HEIF is written at 10 bits per channel here: 16-bit output rounded to 10"]
    saved, pillow_heif.options.SAVE_HDR_TO_12_BIT = pillow_heif.options.SAVE_HDR_TO_12_BIT, True
    try:
        pillow_heif.from_bytes(mode="RGB;16", size=(64, 48), data=deep.tobytes()).save(tmp_path / "t.heic", quality=-1)
    finally:
        pillow_heif.options.SAVE_HDR_TO_12_BIT = saved
    twelve = read_image(tmp_path / "t.heic")
    assert twelve.depth == 12 and write_image(tmp_path / "u.heic", twelve) == []
    with Image.open(tmp_path / "u.heic") as back:
        assert back.info["bit_depth"] == 12  # a 12-bit source stays 12-bit


def _jxl_bomb(path: Path, side: int) -> Path:
    """A JPEG XL codestream whose SizeHeader claims ``side`` x ``side`` (a 30-bit height, ratio 1:1) and nothing more."""
    bits = [0, 1, 1] + [((side - 1) >> i) & 1 for i in range(30)] + [1, 0, 0] + [1]  # ..., all-default metadata
    bits += [0] * (-len(bits) % 8)
    path.write_bytes(b"\xff\x0a" + bytes(sum(b << i for i, b in enumerate(bits[k : k + 8])) for k in range(0, len(bits), 8)))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["rgb8", "rgba16", "gray8", "graya16"])
def test_jpeg_xl_at_quality_100_keeps_every_level_in_every_layout(tmp_path: Path, layout: str) -> None:
    """JPEG XL through the bundled ffmpeg's libjxl: lossless at ``--quality 100``, 8 or 16 bits, gray or colour,
    alpha, an ICC profile kept byte for byte, the header's size read before decoding."""
    from test_icc import gamma, profile

    deep = layout.endswith("16")
    colour = SMOOTH.astype(np.uint16) * 257 + RNG.integers(0, 257, SMOOTH.shape) if deep else SMOOTH
    colour = colour.astype(np.uint16 if deep else np.uint8)
    if layout.startswith("gray"):
        colour = colour[..., :1]
    alpha = (colour[..., 0] // 2 + 7).astype(colour.dtype) if "a" in layout.removeprefix("gray") else None
    icc = profile(((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841)), gamma(2.2))
    pic = Picture(colour, alpha=alpha, icc=None if layout.startswith("gray") else icc)
    assert write_image(tmp_path / "a.jxl", pic, quality=100) == []
    back = read_image(tmp_path / "a.jxl")
    assert back.source_format == "JXL" and back.bits == (16 if deep else 8) and back.notes == []
    assert np.array_equal(back.pixels, colour) and peek_size(tmp_path / "a.jxl") == colour.shape[:2]
    assert (back.alpha is None) == (alpha is None) and (alpha is None or np.array_equal(back.alpha, alpha))
    assert back.icc == pic.icc


@pytest.mark.slow
def test_jpeg_xl_is_lossy_by_default_and_carries_exif_and_xmp_in_its_boxes(tmp_path: Path) -> None:
    """The default quality (95, libjxl's distance 0.55) is lossy and close; the EXIF and XMP go into the container's
    own boxes (ffmpeg writes a bare codestream), their sizes brought up to date, and are read back from them."""
    from classsr_cli.io import jxl

    exif = Image.Exif()
    exif[0x010F] = "Camera"
    exif.get_ifd(0x8769).update({0xA002: 40, 0xA003: 32})
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="1" exif:PixelXDimension="40"/></x:xmpmeta>'
    big = np.repeat(np.repeat(SMOOTH, 2, 0), 2, 1)  # 80x64
    assert write_image(tmp_path / "a.jxl", Picture(big, exif=exif.tobytes(), xmp=xmp)) == []
    boxes = jxl.read_boxes((tmp_path / "a.jxl").read_bytes())
    assert boxes.exif is not None and boxes.exif[:2] in (b"II", b"MM") and boxes.xmp is not None
    back = read_image(tmp_path / "a.jxl")
    assert 0 < np.abs(back.pixels.astype(int) - big).mean() < 1.5
    loaded = Image.Exif()
    loaded.load(back.exif)
    assert loaded[0x010F] == "Camera" and loaded.get_ifd(0x8769)[0xA002] == 80  # the output's size
    assert back.xmp is not None and b'exif:PixelXDimension="80"' in back.xmp
    assert write_image(tmp_path / "q.jxl", Picture(big), quality=40) == []
    assert (tmp_path / "q.jxl").stat().st_size < (tmp_path / "a.jxl").stat().st_size
    deep = (big.astype(np.uint16) * 257 + 3).astype(np.uint16)  # libjxl boxes a 16-bit codestream itself (level 10)
    assert write_image(tmp_path / "d.jxl", Picture(deep, alpha=deep[..., 0].copy(), exif=exif.tobytes(), xmp=xmp),
                       quality=100) == []  # fmt: skip
    kinds = [kind for kind, _ in jxl._boxes((tmp_path / "d.jxl").read_bytes())]
    assert kinds == [b"JXL ", b"ftyp", b"jxll", b"Exif", b"xml ", b"jxlc"]  # (it was boxed whole into jxlc: unread)
    back = read_image(tmp_path / "d.jxl")
    assert np.array_equal(back.pixels, deep) and back.xmp is not None and back.exif is not None


@pytest.mark.slow
def test_jpeg_xl_is_read_upright_by_its_own_orientation_and_bombs_are_refused_unread(tmp_path: Path) -> None:
    """The codestream's orientation (6: a camera held upright; ``tests/data/orientation6.jxl``, a 24x16 JPEG with a
    white top-left corner recompressed by libjxl, its EXIF Brotli-compressed) is applied by libjxl, the size read from
    the header turned alike, and EXIF's orientation not applied again; a header that claims 100,000 pixels a side is
    refused before anything is decoded, a cut file as corrupt."""
    fixture = Path(__file__).parent / "data" / "orientation6.jxl"
    pic = read_image(fixture)
    assert pic.pixels.shape == (24, 16, 3) and peek_size(fixture) == (24, 16)
    assert pic.pixels[:8, 8:].min() > 200 and pic.pixels[8:].max() < 50 and pic.pixels[:8, :8].max() < 50
    loaded = Image.Exif()
    loaded.load(pic.exif)
    assert loaded[0x010F] == "Camera" and 0x0112 not in loaded
    bomb = _jxl_bomb(tmp_path / "bomb.jxl", 100_000)
    for read in (read_image, peek_size):
        with pytest.raises(InputError, match="above the 100,000,000-pixel limit"):
            read(bomb)
    cut = tmp_path / "cut.jxl"
    write_image(tmp_path / "whole.jxl", Picture(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)), quality=100)
    cut.write_bytes((tmp_path / "whole.jxl").read_bytes()[:-200])
    with pytest.raises(InputError, match=r"cut\.jxl: truncated or corrupt image"):
        read_image(cut)


@pytest.mark.slow
def test_jpeg_xl_in_wide_gamut_without_a_profile_keeps_its_tag(tmp_path: Path) -> None:
    """Display P3 described by code points (what libjxl makes of a P3 profile when it encodes lossy) is read as
    such and kept by JPEG XL and PNG outputs; a JPEG output's colours are converted to sRGB's, said; streamed in
    bands, JPEG XL is what it is whole."""
    from classsr_cli.io.image import Nclx, write_image_rows

    p3 = Nclx(12, 13, 6, True)  # RGB in Display P3, a HEIC output of it coded in BT.601's YCbCr as libheif's default
    assert write_image(tmp_path / "a.jxl", Picture(SMOOTH, nclx=p3), quality=100) == []
    back = read_image(tmp_path / "a.jxl")
    assert back.nclx == p3 and np.array_equal(back.pixels, SMOOTH) and back.gamma is None  # not ffmpeg's PNG's
    assert back.notes == []
    assert write_image(tmp_path / "p3.jpg", back) == ["the picture is in Display P3 colours without an ICC profile, "
                                                      "which the JPEG output cannot say: converted to sRGB's; a HEIC, "
                                                      "AVIF, JPEG XL or PNG output keeps them"]  # fmt: skip
    write_image(tmp_path / "b.png", back)
    assert b"cICP\x0c\x0d\x00\x01" in (tmp_path / "b.png").read_bytes()
    write_image_rows(tmp_path / "c.jxl", SMOOTH.shape[:2], 3, np.uint8, (SMOOTH[:20], SMOOTH[20:]),
                     meta=back.carried(), quality=100)  # fmt: skip
    assert read_image(tmp_path / "c.jxl").nclx == p3 and np.array_equal(read_image(tmp_path / "c.jxl").pixels, SMOOTH)


def test_a_picture_coded_in_linear_light_is_read_on_srgbs_curve(tmp_path: Path) -> None:
    """A JPEG XL or PNG (``cICP``) whose levels are linear light (H.273 transfer 8, KDE's ``gray_linear_lossy.jxl``) or
    gamma 2.2 is read with its levels on sRGB's curve, as the model was trained and as outputs without the tag show
    them (a JPEG of the linear levels was dark), said; its primaries kept, a wide gamut's as on sRGB's curve."""
    from classsr_cli.io.icc import srgb_encode
    from classsr_cli.io.image import Nclx

    light = np.linspace(0, 1, 64 * 3).reshape(8, 8, 3)
    levels = np.round(light * 65535).astype(np.uint16)
    want = srgb_encode(light) * 65535
    assert write_image(tmp_path / "a.jxl", Picture(levels, nclx=Nclx(1, 8, 6, True)), quality=100) == []
    back = read_image(tmp_path / "a.jxl")
    assert back.nclx is None and back.notes == ["JPEG XL in linear light: converted to sRGB's curve"]
    assert back.pixels.dtype == np.uint16 and np.abs(back.pixels - want).max() < 3
    assert write_image(tmp_path / "a.jpg", back)[0].startswith("JPEG holds 8 bits")  # (no note of its colours)
    assert b"cICP" not in _png_bytes(tmp_path, back).read_bytes()
    wide = read_image(_png_bytes(tmp_path, Picture(levels, nclx=Nclx(9, 8, 9, True)), "wide.png"))
    assert wide.nclx == Nclx(9, 13, 9, True) and np.abs(wide.pixels - want).max() < 3
    assert wide.notes == ["PNG in linear light: converted to sRGB's curve"]
    eight = read_image(_png_bytes(tmp_path, Picture(np.round(light * 255).astype(np.uint8), nclx=Nclx(1, 4, 6, True)),
                                  "eight.png"))  # fmt: skip
    assert eight.pixels.dtype == np.uint8 and eight.notes == ["PNG in gamma 2.2: converted to sRGB's curve"]
    assert np.abs(eight.pixels - srgb_encode((np.round(light * 255) / 255) ** 2.2) * 255).max() <= 1


def _png_bytes(tmp_path: Path, picture: Picture, name: str = "out.png") -> Path:
    """``picture`` written as the PNG ``name`` in ``tmp_path`` (its nclx as a ``cICP`` chunk); its path."""
    write_image(tmp_path / name, picture)
    return tmp_path / name


def test_jpeg_xl_of_float_colour_with_alpha_is_read(tmp_path: Path) -> None:
    """libjxl gives float colour with alpha as ``rgbaf32le``, which ffmpeg's scaler does not convert (KDE's
    testcard_rgba_fp16.jxl: "Error reinitializing filters!", said as a damaged file): read at 16 bits, its alpha
    kept; the ICC profile the planes' join drops is put back from a plane of its own."""
    from classsr_cli.io import jxl
    from classsr_cli.io.icc import srgb_decode
    from classsr_cli.io.video import ffmpeg_exe

    rgba = np.random.default_rng(2).random((24, 32, 4)).astype("<f4")
    rgba[..., 3] = np.linspace(0.2, 1, 32)[None]
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgbaf32le", "-s", "32x24", "-i", "-",
                    "-c:v", "libjxl", "-distance", "0", "-y", str(tmp_path / "f.jxl")], input=rgba.tobytes(), check=True)  # fmt: skip
    pic = read_image(tmp_path / "f.jxl")
    assert pic.bits == 16 and pic.alpha is not None  # (float given ffmpeg untagged is tagged linear light by libjxl)
    assert pic.notes == ["JPEG XL in linear light: converted to sRGB's curve"]
    assert np.abs(srgb_decode(pic.pixels / 65535) - rgba[..., :3]).max() < 1e-3 and np.abs(pic.alpha / 65535 - rgba[..., 3]).max() < 1e-4
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(SMOOTH).save(tmp_path / "p.png")
    Image.fromarray(SMOOTH[..., 0]).save(tmp_path / "icc.png", icc_profile=profile)
    jxl._with_icc_of(tmp_path / "p.png", tmp_path / "icc.png")
    with Image.open(tmp_path / "p.png") as im:
        assert im.info.get("icc_profile") == profile and np.array_equal(np.asarray(im), SMOOTH)


def test_a_jpeg_xl_animation_ffmpeg_does_not_open_in_its_container_is_read_from_its_codestream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ffmpeg's reader of JPEG XL animations finds no size in some containers (KDE's bug_496350.jxl: "unspecified
    size", said as a damaged file) and reads their codestream alone: the first frame is decoded from that (ffmpeg's
    refusal of the container simulated here: the files this ffmpeg refuses cannot be made with it)."""
    from classsr_cli.io import jxl
    from classsr_cli.io.video import ffmpeg_exe

    frames = np.random.default_rng(2).integers(0, 256, (2, 24, 32, 3), dtype=np.uint8)
    codestream = subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "32x24", "-r",
                                 "2", "-i", "-", "-c:v", "libjxl_anim", "-distance", "0", "-f", "image2pipe", "-"],
                                input=frames.tobytes(), capture_output=True, check=True).stdout  # fmt: skip
    boxed = jxl.CONTAINER + struct.pack(">I4s", 20, b"ftyp") + b"jxl \0\0\0\0jxl "
    boxed += struct.pack(">I4sI", 22, b"jxlp", 0) + codestream[:10]
    boxed += struct.pack(">I4sI", len(codestream) + 2, b"jxlp", 0x80000001) + codestream[10:]
    (tmp_path / "a.jxl").write_bytes(boxed)
    decode = jxl.decode

    def refusing(exe: str, source: Path, png: Path) -> tuple[int, int] | None:
        if source.read_bytes().startswith(jxl.CONTAINER):
            raise ValueError("Invalid argument")
        return decode(exe, source, png)

    monkeypatch.setattr(jxl, "decode", refusing)
    pic = read_image(tmp_path / "a.jxl")
    assert np.array_equal(pic.pixels, frames[0]) and pic.notes[0].startswith("JPEG XL animation: only the first frame")
    still = tmp_path / "still.jxl"
    write_image(still, Picture(SMOOTH), quality=100)
    still.write_bytes(jxl.container(jxl.read_boxes(still.read_bytes()).codestream, xmp=b"<x/>"))
    with pytest.raises(InputError, match=r"still\.jxl: truncated or corrupt image \(Invalid argument\)"):
        read_image(still)  # (a still's container is not tried again)


@pytest.mark.parametrize(("kind", "said"), [(b"vvc1", r"H\.266 \(VVC\)"), (b"evc1", "EVC"), (b"jpeg", "JPEG"),
                                            (b"j2k1", "JPEG 2000")])  # fmt: skip
def test_a_heif_coded_as_the_decoder_does_not_decode_is_said_as_such(tmp_path: Path, kind: bytes, said: str) -> None:
    """A HEIF whose picture is coded otherwise than as HEVC or AV1 was "truncated or corrupt image (its HEIF boxes do
    not read)", or "not an image classsr reads": its coding is said where classsr does not decode it (VVC, EVC),
    and where its data does not decode as that coding (HEVC data named JPEG) (test_heifitem: those it reads)."""
    from classsr_cli.io import heifbox

    write_image(tmp_path / "h.heic", Picture(SMOOTH))
    data = (tmp_path / "h.heic").read_bytes()
    at = data.find(b"hvc1", data.find(b"iinf"))
    suffix = {b"j2k1": ".hej2"}.get(kind, ".heif")
    (tmp_path / f"p{suffix}").write_bytes(data[:at] + kind + data[at + 4 :])
    assert heifbox.primary_type(data) == b"hvc1" and heifbox.primary_type((tmp_path / f"p{suffix}").read_bytes()) == kind
    coded = rf"{said} \('{kind.decode()}' item\)"
    want = (rf"p\{suffix}: a HEIF whose picture is coded as {coded}: its coding, '{kind.decode()}', is not one classsr "
            "decodes; save it as HEVC" if kind in (b"vvc1", b"evc1")
            else rf"p\{suffix}: truncated or corrupt image \(its {coded}: ")  # fmt: skip
    with pytest.raises(InputError, match=want):
        read_image(tmp_path / f"p{suffix}")


def test_heic_alpha_and_gray_are_written_as_phones_read_them(tmp_path: Path) -> None:
    """HEVC's main profiles hold no gray: a gray picture is written as RGB, its levels kept; alpha is kept (coded as
    an image of its own, so lossy like the colour)."""
    gray = SMOOTH[..., :1]
    write_image(tmp_path / "g.heic", Picture(gray))
    back = read_image(tmp_path / "g.heic")
    assert back.pixels.shape == (32, 40, 3) and np.abs(back.pixels.astype(int) - gray).mean() < 2
    alpha = np.zeros((32, 40), np.uint8)
    alpha[:, 20:] = 255
    write_image(tmp_path / "a.heic", Picture(SMOOTH, alpha=alpha))
    back = read_image(tmp_path / "a.heic")
    assert back.alpha is not None and np.abs(back.alpha.astype(int) - alpha).mean() < 8
    assert back.alpha[:, :16].max() < 64 and back.alpha[:, 24:].min() > 192


def test_a_heics_other_images_and_its_hdr_tags_are_said_and_carried_into_heic(tmp_path: Path) -> None:
    """A burst's HEIC gives its primary image with a note; an HDR one (PQ in BT.2020, told by its nclx box, no ICC
    profile) is upscaled as coded, and a HEIC output is tagged PQ (a PNG as cICP; a JPEG is tone-mapped, said)."""
    import pillow_heif

    from classsr_cli.io.image import Nclx

    two = pillow_heif.from_pillow(Image.fromarray(SMOOTH))
    two.add_from_pillow(Image.fromarray(SMOOTH[::-1].copy()))
    two.save(tmp_path / "two.heic", quality=95)
    pic = read_image(tmp_path / "two.heic")
    assert pic.notes == ["HEIF with 2 images: only the primary one is upscaled"]
    assert pic.nclx == Nclx(1, 13, 6, True)  # sRGB's, as pillow-heif writes by default: no note
    assert np.abs(pic.pixels.astype(int) - SMOOTH).mean() < 2
    nclx = {"color_primaries": 9, "transfer_characteristics": 16, "matrix_coefficients": 9, "full_range_flag": 0}
    pillow_heif.from_pillow(Image.fromarray(SMOOTH)).save(tmp_path / "pq.heic", quality=95, nclx_profile=nclx)
    pic = read_image(tmp_path / "pq.heic")
    assert pic.notes == []  # said where an output cannot keep it (tests/test_sdr.py)
    assert pic.nclx == Nclx(9, 16, 9, False) and pic.icc is None
    write_image(tmp_path / "out.heic", pic)
    with Image.open(tmp_path / "out.heic") as back:
        assert {k: back.info["nclx_profile"][k] for k in nclx} == nclx
    assert np.abs(read_image(tmp_path / "out.heic").pixels.astype(int) - pic.pixels).mean() < 2
    # A PNG holds it as its cICP chunk (PNG's third edition: BT.2020, PQ, RGB, full range), before the pixels; a JPEG
    # has no place for it; an sRGB one (pillow-heif's default) is written as no chunk at all.
    write_image(tmp_path / "out.png", pic)
    data = (tmp_path / "out.png").read_bytes()
    at = data.find(b"cICP")
    assert at > 0 and data[at + 4 : at + 8] == bytes([9, 16, 0, 1]) and at < data.find(b"IDAT")
    write_image(tmp_path / "plain.png", read_image(tmp_path / "two.heic"))
    assert b"cICP" not in (tmp_path / "plain.png").read_bytes()


def test_a_heic_libheif_cannot_decode_is_a_corrupt_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """libheif's decoder errors come as RuntimeError (Pillow's own plugins raise none): for a HEIF they are the
    one-line "truncated or corrupt image", as for any other format; a truncated HEIC is too."""
    from pillow_heif import as_plugin

    Image.fromarray(SMOOTH).save(tmp_path / "a.heic")
    data = (tmp_path / "a.heic").read_bytes()
    (tmp_path / "cut.heic").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.heic: truncated or corrupt image \("):
        read_image(tmp_path / "cut.heic")

    def fail(self: object) -> None:
        raise RuntimeError("Decoder plugin generated an error: Unsupported feature")

    monkeypatch.setattr(as_plugin.HeifImageFile, "load", fail)
    with pytest.raises(InputError, match=r"a\.heic: truncated or corrupt image \(Decoder plugin generated an error"):
        read_image(tmp_path / "a.heic")


def test_an_av1_heif_libavif_refuses_says_so_not_pillow_heifs_plugin_error(tmp_path: Path) -> None:
    """An AV1 picture in HEIF boxes Pillow's AVIF reader (libavif) refuses, here for want of AVIF's brand: pillow-heif
    opens it and has no AV1 decoder, whose "Error while loading plugin: ... not been built in: AV1" was the message."""
    import pillow_heif

    if pillow_heif.libheif_info()["AVIF"]:  # (a pillow-heif built with an AV1 decoder reads the file)
        pytest.skip("this pillow-heif decodes AV1")
    Image.fromarray(SMOOTH).save(tmp_path / "a.avif")
    (tmp_path / "b.avif").write_bytes((tmp_path / "a.avif").read_bytes().replace(b"avif", b"mif1"))
    with pytest.raises(InputError, match=r"b\.avif: truncated or corrupt image \(an AV1 picture in HEIF boxes that "
                                         r"libavif, Pillow's AVIF reader, refuses; pillow-heif, which opens them, "
                                         r"decodes no AV1\)$"):
        read_image(tmp_path / "b.avif")


def test_heic_tiles_grow_where_a_grid_of_512_would_pass_libheifs_items() -> None:
    """libheif writes at most 1000 items: a 16128x12096 output (a 12 MP phone photo ×4) is 32x24 tiles of 512, a
    20000x20000 one is written in tiles of 1024 (1,600 tiles of 512 were refused)."""
    from classsr_cli.io.image import _heif_tile

    assert _heif_tile(4096, 3072) == _heif_tile(16128, 12096) == 512 and _heif_tile(20000, 20000) == 1024
    assert _heif_tile(15360, 15360) == 512 and _heif_tile(15361, 15360) == 1024 and _heif_tile(70000, 64) == 512


def test_without_pillow_heif_a_heic_says_what_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pillow-heif is a dependency, but a broken install should say what is missing, not that a HEIC is no image."""
    from classsr_cli.io import image
    from classsr_cli.io.image import output_format

    Image.fromarray(SMOOTH).save(tmp_path / "a.heic")
    monkeypatch.setattr(image, "_heif_plugin", lambda: False)
    monkeypatch.delitem(Image.OPEN, "HEIF")
    with pytest.raises(InputError, match=r"a\.heic: reading HEIC needs pillow-heif \(pip install pillow-heif\)"):
        read_image(tmp_path / "a.heic")
    with pytest.raises(ConfigError, match=r"b\.heic: writing HEIC needs pillow-heif"):
        output_format(tmp_path / "b.heic")


def test_a_pillow_without_avif_reads_the_rest_and_says_it_cannot_write_avif(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pillow reads and writes AVIF from 11.3, where built with libavif: without it the other formats still open,
    an AVIF input says which Pillow reads it, and an AVIF output is a usage error before anything runs."""
    from classsr_cli.errors import ConfigError
    from classsr_cli.io.image import output_format

    Image.fromarray(SMOOTH).save(tmp_path / "a.avif")
    Image.fromarray(SMOOTH).save(tmp_path / "a.png")
    Image.init()
    monkeypatch.delitem(Image.OPEN, "AVIF")
    monkeypatch.delitem(Image.SAVE, "AVIF")
    assert np.array_equal(read_image(tmp_path / "a.png").pixels, SMOOTH)
    with pytest.raises(InputError, match=r"a\.avif: this Pillow \(.*\) cannot read AVIF: install Pillow 11\.3 or later"):
        read_image(tmp_path / "a.avif")
    with pytest.raises(ConfigError, match=r"b\.avif: this Pillow \(.*\) cannot write AVIF: install Pillow 11\.3 or later"):
        output_format(tmp_path / "b.avif")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".avif", ".heic", ".tif"])
def test_icc_profile_is_carried(tmp_path: Path, suffix: str) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "src.png"
    Image.fromarray(RGB).save(src, icc_profile=icc)
    pic = read_image(src)
    assert pic.icc == icc
    write_image(tmp_path / f"out{suffix}", pic)
    assert Image.open(tmp_path / f"out{suffix}").info.get("icc_profile") == icc


def test_icc_profile_is_carried_at_16_bit(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    arr = np.full((4, 4, 3), 1234, np.uint16)
    for suffix in (".png", ".tif"):
        write_image(tmp_path / f"o{suffix}", Picture(arr, icc=icc))
        assert read_image(tmp_path / f"o{suffix}").icc == icc


def _with_gamma(path: Path, gamma: int, chroma: tuple[int, ...] | None = None) -> bytes:
    """``path``'s PNG with a gAMA (and cHRM) chunk after its header; the chunks' bytes."""
    data = path.read_bytes()
    chunks = _png_chunk(b"gAMA", struct.pack(">I", gamma))
    chunks += _png_chunk(b"cHRM", struct.pack(">8I", *chroma)) if chroma else b""
    path.write_bytes(data[:33] + chunks + data[33:])  # the signature and IHDR: 8 + 25 bytes
    return chunks


@pytest.mark.parametrize("deep", [False, True])
def test_png_gamma_and_chromaticities_are_carried(tmp_path: Path, deep: bool) -> None:
    """A PNG's gAMA and cHRM (a classic Mac's 1/1.8, a linear 1.0), which browsers apply where there is no ICC
    profile, are written into a PNG output as they were (8 and 16 bits); a JPEG output says it shows the picture as
    sRGB instead, and says nothing for a gamma of 1/2.2 alone."""
    src = tmp_path / "src.png"
    if deep:
        write_image(src, Picture(SMOOTH.astype(np.uint16) * 257))
    else:
        Image.fromarray(SMOOTH).save(src)
    chroma = (31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)
    chunks = _with_gamma(src, 55556, chroma)
    pic = read_image(src)
    assert pic.gamma is not None and (pic.gamma.gamma, pic.gamma.chroma) == (55556, chroma)
    write_image(tmp_path / "out.png", pic)
    assert chunks in (tmp_path / "out.png").read_bytes()
    assert Image.open(tmp_path / "out.png").info["gamma"] == pytest.approx(0.55556)
    notes = write_image(tmp_path / "out.jpg", pic)
    assert any("holds no PNG gamma: the picture's gAMA (gamma 1/1.8) and cHRM is left out" in n for n in notes), notes
    plain = tmp_path / "plain.png"
    Image.fromarray(SMOOTH).save(plain)
    _with_gamma(plain, 45455)
    assert not [n for n in write_image(tmp_path / "plain.jpg", read_image(plain)) if "gamma" in n]


def test_animated_gif_first_frame_with_note(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 6), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    pic = read_image(tmp_path / "a.gif")
    assert pic.pixels[0, 0].tolist() == [255, 0, 0]
    assert any("3 frames" in n for n in pic.notes)


def test_a_gifs_canvas_its_first_picture_leaves_uncovered_is_clear(tmp_path: Path) -> None:
    """A GIF whose first picture is smaller than its screen (gdk-pixbuf's gif-test-suite image-inside-bg.gif): the
    rest of the canvas is clear, as browsers and gdk-pixbuf show it; Pillow filled it with the background colour."""
    Image.new("RGB", (4, 2), (255, 0, 0)).save(tmp_path / "small.gif")
    data = bytearray((tmp_path / "small.gif").read_bytes())
    data[6:10] = struct.pack("<2H", 8, 6)  # the screen: 8x6
    at = data.index(b"\x2c", 13)  # the image descriptor: the picture at (3, 2)
    data[at + 1 : at + 5] = struct.pack("<2H", 3, 2)
    (tmp_path / "inside.gif").write_bytes(bytes(data))
    pic = read_image(tmp_path / "inside.gif")
    want = np.zeros((6, 8), np.uint8)
    want[2:4, 3:7] = 255
    assert pic.pixels.shape == (6, 8, 3) and pic.alpha is not None and np.array_equal(pic.alpha, want)
    assert (pic.pixels[2:4, 3:7] == [255, 0, 0]).all()
    assert read_image(tmp_path / "small.gif").alpha is None  # (a picture that covers its screen: opaque)


def test_an_animated_webps_canvas_its_first_frame_leaves_uncovered_is_clear(tmp_path: Path) -> None:
    """An animated WebP that says it has no alpha whose first frame is smaller than its canvas (gif2webp makes them
    of such GIFs): the rest of the canvas is clear, as libwebp and browsers show it; Pillow read it as RGB, black."""
    src = animated_webp(tmp_path / "inside.webp", (32, 24), [(8, 4, (16, 16), (255, 0, 0)), (0, 0, (32, 24), (0, 255, 0))])
    pic = read_image(src)
    want = np.zeros((24, 32), np.uint8)
    want[4:20, 8:24] = 255
    assert pic.alpha is not None and np.array_equal(pic.alpha, want) and (pic.pixels[4:20, 8:24] == [255, 0, 0]).all()
    full = animated_webp(tmp_path / "full.webp", (32, 24), [(0, 0, (32, 24), (255, 0, 0)), (8, 4, (16, 16), (0, 255, 0))])
    assert read_image(full).alpha is None  # (a first frame that covers its canvas: opaque)


def _truncated_png(path: Path) -> Path:
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def _truncated_jpeg(path: Path) -> Path:
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated_avif(path: Path) -> Path:
    Image.fromarray(SMOOTH).save(path)
    return _write(path, path.read_bytes()[: path.stat().st_size // 2])


BAD = {
    "missing": lambda d: d / "nope.png",
    "empty": lambda d: _write(d / "empty.png", b""),
    "text": lambda d: _write(d / "notes.png", b"not an image\n"),
    "truncated_png": lambda d: _truncated_png(d / "cut.png"),
    "truncated_jpeg": lambda d: _truncated_jpeg(d / "cut.jpg"),
    "truncated_avif": lambda d: _truncated_avif(d / "cut.avif"),
    "bomb": lambda d: bomb_png(d / "bomb.png", 100_000, 100_000),
    "folder": lambda d: (d / "dir.png").mkdir() or d / "dir.png",
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_inputs_raise_input_error_naming_the_file(tmp_path: Path, kind: str) -> None:
    path = BAD[kind](tmp_path)
    with pytest.raises(InputError) as e:
        read_image(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_bomb_message_says_how_to_allow_it(tmp_path: Path) -> None:
    path = bomb_png(tmp_path / "b.png", 20_000, 10_000)
    with pytest.raises(InputError, match=r"--max-pixels 200000000"):
        read_image(path)
    with pytest.raises(InputError, match=r"20x10 is 200 pixels, above the 100-pixel limit"):
        read_image(bomb_png(tmp_path / "s.png", 20, 10), max_pixels=100)
    with pytest.raises(InputError, match=r"10001x10000 is 100,010,000 pixels, above the 100,000,000-pixel limit"):
        read_image(bomb_png(tmp_path / "t.png", 10_001, 10_000))  # "100.0 MP, above the 100 MP limit", it said
    assert DEFAULT_MAX_PIXELS == 100_000_000


def test_pixel_limit_can_be_lifted(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(RGB).save(path)
    with pytest.raises(InputError):
        read_image(path, max_pixels=100)
    assert read_image(path, max_pixels=0).pixels.shape == RGB.shape
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's own guard is restored


def test_existing_output_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "o.png"
    path.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_image(path, Picture(RGB))
    assert path.read_bytes() == b"precious"
    write_image(path, Picture(RGB), overwrite=True)
    assert np.array_equal(read_image(path).pixels, RGB)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png"]


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str) -> None:
    """A disk that fills up half-way, in classsr's PNG writer and in Pillow's (every other format)."""
    import classsr_cli.io.image as image_io

    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(str(fp)).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    def broken_chunk(tag: bytes, data: bytes) -> bytes:  # called once the PNG signature is on disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    monkeypatch.setattr(image_io, "_png_chunk", broken_chunk)
    from classsr_cli.errors import OutputError

    with pytest.raises(OutputError, match="No space left"):
        write_image(tmp_path / f"o{suffix}", Picture(RGB))
    assert list(tmp_path.iterdir()) == []


def test_unknown_output_suffix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.xyz"):
        write_image(tmp_path / "o.xyz", Picture(RGB))


def test_exif_sub_ifds_carried_and_dimensions_updated(tmp_path: Path) -> None:
    im = Image.new("RGB", (8, 6))
    exif = im.getexif()
    exif[0x0112] = 3
    exif.get_ifd(0x8769).update({0x9003: "2020:01:01 00:00:00", 0xA002: 8, 0xA003: 6})
    exif.get_ifd(0x8825)[1] = "N"
    im.save(tmp_path / "cam.jpg", exif=exif.tobytes())
    pic = read_image(tmp_path / "cam.jpg")
    big = Picture(np.zeros((24, 32, 3), np.uint8), exif=pic.exif)
    write_image(tmp_path / "big.jpg", big)
    out = Image.open(tmp_path / "big.jpg").getexif()
    sub = out.get_ifd(0x8769)
    assert sub[0x9003] == "2020:01:01 00:00:00" and (sub[0xA002], sub[0xA003]) == (32, 24)
    assert out.get_ifd(0x8825)[1] == "N" and 0x0112 not in out


def _camera_exif(tmp_path: Path) -> bytes:
    im = Image.new("RGB", (8, 6), (10, 20, 30))
    exif = im.getexif()
    exif[0x010F] = "classsr-cam"  # Make
    exif[0x0132] = "2021:02:03 04:05:06"  # DateTime
    exif.get_ifd(0x8769).update({0x9003: "2020:01:01 00:00:00", 0xA002: 8, 0xA003: 6, 0x9101: b"\x01\x02\x03\x00"})
    exif.get_ifd(0x8769)[0xA005] = {1: "R98", 2: b"0100"}  # the Interoperability IFD: DCF's index, its version
    exif.get_ifd(0x8825)[1] = "N"
    im.save(tmp_path / "cam.jpg", exif=exif.tobytes())
    pic = read_image(tmp_path / "cam.jpg")
    assert pic.exif is not None
    return pic.exif


def _assert_exif_in_tiff(path: Path, pillow: bool = True) -> None:
    """The camera's EXIF (:func:`_camera_exif`) in a TIFF output, without what the Exif standard allows only in a
    JPEG's (exiftool -validate: "not allowed in TIFF"): PixelXDimension and PixelYDimension, ComponentsConfiguration,
    the Interoperability IFD's InteropIndex (its version kept)."""
    import tifffile

    with tifffile.TiffFile(path) as tf:
        tags = tf.pages.first.tags
        assert tags["Make"].value == "classsr-cam" and tags["DateTime"].value == "2021:02:03 04:05:06"
        sub = tags["ExifTag"].value
        assert sub["DateTimeOriginal"] == "2020:01:01 00:00:00"
        assert not {"PixelXDimension", "PixelYDimension", "ComponentsConfiguration"} & set(sub), sorted(sub)
        assert tags["GPSTag"].value["GPSLatitudeRef"] == "N"
    if pillow:  # Pillow reads it too (it opens no 16-bit gray + alpha TIFF at all)
        with Image.open(path) as im:
            exif = im.getexif()
            assert exif[0x010F] == "classsr-cam" and exif.get_ifd(0x8769)[0x9003] == "2020:01:01 00:00:00"
            assert dict(exif.get_ifd(0xA005)) == {2: b"0100"}


@pytest.mark.parametrize(("bits", "channels", "alpha"), [(8, 3, False), (8, 1, True), (16, 3, False), (16, 1, True)])
def test_tiff_keeps_exif(tmp_path: Path, bits: int, channels: int, alpha: bool) -> None:
    # 8-bit went through libtiff, which refused the EXIF sub-IFDs ("Error setting from dictionary"); 16-bit
    # went through tifffile, which dropped the EXIF.
    rng = np.random.default_rng(1)
    dtype = np.uint8 if bits == 8 else np.uint16
    pixels = rng.integers(0, np.iinfo(dtype).max, (70, 50, channels), dtype=dtype)
    a = rng.integers(0, np.iinfo(dtype).max, (70, 50), dtype=dtype) if alpha else None
    write_image(tmp_path / "out.tif", Picture(pixels, alpha=a, exif=_camera_exif(tmp_path)))
    _assert_exif_in_tiff(tmp_path / "out.tif", pillow=not (bits == 16 and alpha))
    back = read_image(tmp_path / "out.tif")
    assert np.array_equal(back.pixels, pixels) and (a is None or np.array_equal(back.alpha, a))


@pytest.mark.parametrize("bits", [8, 16])
def test_a_tiff_outputs_resolution_is_the_pictures_not_its_exifs(tmp_path: Path, bits: int) -> None:
    """A camera's EXIF with 300 dpi where the picture says 150 (its JFIF), or with 65535 as the resolution's unit
    (Pillow's test photo ``exif_gps.jpg``, which libtiff refused on stderr, "Bad value 65535 for ResolutionUnit"):
    a TIFF output's resolution was the EXIF's; now the picture's, as its PNG and JPEG outputs have it."""
    dtype = np.uint8 if bits == 8 else np.uint16
    pixels = np.zeros((20, 30, 3), dtype)
    for unit, want in ((2, (150.0, 150.0)), (65535, (150.0, 150.0))):
        exif = Image.Exif()
        exif[0x010F] = "classsr-cam"
        exif[282], exif[283], exif[296] = 300.0, 300.0, unit
        write_image(tmp_path / "out.tif", Picture(pixels, exif=exif.tobytes(), dpi=(150.0, 150.0)), overwrite=True)
        with Image.open(tmp_path / "out.tif") as im:
            assert im.getexif()[0x010F] == "classsr-cam" and im.tag_v2.get(296) == 2
            assert (float(im.tag_v2[282]), float(im.tag_v2[283])) == want
        assert read_image(tmp_path / "out.tif").dpi == want


@pytest.mark.parametrize("bits", [8, 16])
def test_tiff_written_in_bands_keeps_exif(tmp_path: Path, bits: int) -> None:
    from classsr_cli.io.image import write_image_rows

    dtype = np.uint8 if bits == 8 else np.uint16
    pixels = np.random.default_rng(2).integers(0, np.iinfo(dtype).max, (300, 40, 3), dtype=dtype)

    bands = (pixels[y : y + 64] for y in range(0, 300, 64))  # several strips: their offsets must survive
    write_image_rows(tmp_path / "big.tif", (300, 40), 3, dtype, bands, meta=Meta(exif=_camera_exif(tmp_path)))
    _assert_exif_in_tiff(tmp_path / "big.tif")
    assert np.array_equal(read_image(tmp_path / "big.tif").pixels, pixels)


# ------------------------------------------------------------------------------ streamed files are the same


@pytest.mark.parametrize("kind", ["shaped", "imagej", "ome", "user"])
def test_tiff_description_of_the_old_shape_is_not_carried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    """tifffile's JSON shape, an ImageJ header or OME-XML describe the input's dimensions: carried to a 2x output,
    tifffile warned "shaped series shape does not match page shape" on reading it. A user's own text is kept, and
    no description of tifffile's own is written in its place."""
    import tifffile

    src, out = tmp_path / "in.tif", tmp_path / "out.tif"
    small = RNG.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    if kind == "user":
        Image.fromarray(small).save(src, description="harbour at dusk")
    else:
        tifffile.imwrite(src, small, imagej=kind == "imagej", ome=kind == "ome")
    pic = read_image(src)
    big = np.repeat(np.repeat(pic.pixels, 2, axis=0), 2, axis=1)
    write_image(out, Picture(big, exif=pic.exif))
    with caplog.at_level("WARNING", logger="tifffile"), tifffile.TiffFile(out) as tf:
        assert tf.series[0].shape == (60, 80, 3)
        description = tf.pages.first.description
    assert not caplog.records
    if kind == "user":
        assert description == "harbour at dusk"
    else:
        assert description == ""


@pytest.mark.parametrize(("suffix", "c", "bits"), [(".png", 3, 8), (".png", 1, 16), (".png", 3, 16),
                                                   (".tif", 3, 16), (".jpg", 3, 8), (".bmp", 1, 8),
                                                   (".heic", 3, 8), (".heic", 1, 16), (".tga", 3, 8),
                                                   (".ppm", 3, 16), (".pgm", 3, 8), (".jp2", 3, 8),
                                                   (".jp2", 1, 16)])
def test_streamed_output_equals_whole_output(tmp_path: Path, suffix: str, c: int, bits: int) -> None:
    from test_bands import MODELS

    from classsr_cli.pipeline import Upscaler, upscale_file

    dtype = np.uint16 if bits == 16 else np.uint8
    pixels = np.random.default_rng(1).integers(0, np.iinfo(dtype).max, (70, 50, c)).astype(dtype)
    write_image(tmp_path / "in.png", Picture(pixels, icc=b"\0" * 8 if suffix == ".png" else None))
    up = Upscaler(MODELS[4], step=20)
    whole = upscale_file(up, tmp_path / "in.png", tmp_path / f"whole{suffix}", stream_pixels=None)
    banded = upscale_file(up, tmp_path / "in.png", tmp_path / f"banded{suffix}", stream_pixels=0)
    assert "written in bands" in banded.notes[-1] and not any("bands" in n for n in whole.notes)
    a, b = read_image(whole.output), read_image(banded.output)
    assert np.array_equal(a.pixels, b.pixels) and a.pixels.shape[:2] == (280, 200)
    assert a.icc == b.icc
    assert banded.counts == whole.counts and banded.size_out == whole.size_out == (200, 280)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.png", f"whole{suffix}", f"banded{suffix}"])


def test_failed_streamed_write_leaves_nothing(tmp_path: Path) -> None:
    from classsr_cli.io.image import write_image_rows

    def rows() -> Iterator[np.ndarray]:
        yield np.zeros((3, 8, 3), np.uint8)
        raise KeyboardInterrupt

    for suffix in (".png", ".jpg"):
        with pytest.raises(KeyboardInterrupt):
            write_image_rows(tmp_path / f"o{suffix}", (10, 8), 3, np.uint8, rows())
    with pytest.raises(ValueError, match="3 rows of 10"):
        write_image_rows(tmp_path / "o.png", (10, 8), 3, np.uint8, [np.zeros((3, 8, 3), np.uint8)])
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_one_error_before_any_row_lands_in_the_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """JPEG, TIFF, WebP and BMP collect the rows in a memory-mapped file: its blocks are reserved first, so a full
    disk is ``cannot write (No space left on device)`` and nothing is left (a write into the map on a full tmpfs
    killed the process with a bus error, its 240 MB temporary left behind)."""
    import errno as errno_

    from classsr_cli.errors import OutputError
    from classsr_cli.io import image as io_image

    asked: list[int] = []

    def full(fd: int, offset: int, length: int) -> None:
        asked.append(length)
        raise OSError(errno_.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_image.os, "posix_fallocate", full, raising=False)
    landed: list[int] = []

    def rows() -> Iterator[np.ndarray]:
        landed.append(1)
        yield np.zeros((10, 8, 3), np.uint8)

    for suffix in (".jpg", ".tif"):
        with pytest.raises(OutputError, match=r"cannot write \(No space left on device\)"):
            io_image.write_image_rows(tmp_path / f"o{suffix}", (10, 8), 3, np.uint8, rows())
    assert landed == [] and asked and min(asked) >= 10 * 8 * 3 and list(tmp_path.iterdir()) == []


def _idat(path: Path) -> bytes:
    """The zlib stream of a PNG: its IDAT chunks' data, in order."""
    data, at, out = path.read_bytes(), 8, b""
    while at < len(data):
        n = int.from_bytes(data[at : at + 4], "big")
        if data[at + 4 : at + 8] == b"IDAT":
            out += data[at + 8 : at + 8 + n]
        at += 12 + n
    return out


@pytest.mark.parametrize("deflate", ["isal", "zlib"])
@pytest.mark.parametrize(("bits", "c"), [(8, 3), (16, 3), (8, 2), (16, 4)])
def test_every_png_is_written_fast_and_up_filtered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bits: int, c: int, deflate: str
) -> None:
    """Whole (:func:`write_image`) and in bands (:func:`write_image_rows`, no alpha), every PNG is compressed at
    ``PNG_LEVEL`` 1 by ISA-L where ``isal`` is installed (its zlib header's FLEVEL field reads 1, "fast") and by
    zlib where it is not (FLEVEL 0, "fastest", as OpenCV's ``imwrite``), every row Up-filtered (``PNG_FILTER``),
    and the pixels come back exactly (through Pillow and pypng, which decode with zlib)."""
    from classsr_cli.io.image import PNG_FILTER, PNG_LEVEL, write_image_rows

    assert (PNG_LEVEL, PNG_FILTER) == (1, 2)
    if deflate == "isal":
        pytest.importorskip("isal")
    else:
        monkeypatch.setitem(sys.modules, "isal", None)  # as where it has no wheel: the import fails
    pixels = SMOOTH.astype(np.uint16) * 257 if bits == 16 else SMOOTH
    colour, alpha = (pixels[..., : c - 1], pixels[..., -1]) if c in (2, 4) else (pixels, None)
    whole = tmp_path / "whole.png"
    write_image(whole, Picture(pixels=colour, alpha=alpha))
    paths = [whole]
    if alpha is None:
        paths.append(tmp_path / "rows.png")
        write_image_rows(paths[-1], pixels.shape[:2], c, pixels.dtype, [pixels[:20], pixels[20:20], pixels[20:]])
    h, w = pixels.shape[:2]
    for path in paths:
        stream = _idat(path)
        assert stream[1] >> 6 == {"isal": 1, "zlib": 0}[deflate]  # FLEVEL: 0 fastest, 1 fast, 2 default, 3 best
        rows = np.frombuffer(zlib.decompress(stream), np.uint8).reshape(h, 1 + w * c * bits // 8)
        assert (rows[:, 0] == PNG_FILTER).all()
        back = read_image(path)
        assert np.array_equal(back.pixels, colour) and (alpha is None or np.array_equal(back.alpha, alpha))


@pytest.mark.parametrize(("bits", "c"), [(8, 3), (16, 3), (8, 2), (16, 1)])
def test_every_tiff_is_written_by_tifffile_with_the_predictor(tmp_path: Path, bits: int, c: int) -> None:
    """Whole and in bands, 8 and 16 bits, with and without alpha: one TIFF writer (tifffile), deflate with the
    horizontal predictor in strips of 64 rows, the pixels back exactly through tifffile and Pillow (8-bit)."""
    import tifffile

    from classsr_cli.io.image import write_image_rows

    tall = np.concatenate([SMOOTH, SMOOTH[::-1], SMOOTH])  # 96 rows: two strips
    pixels = tall.astype(np.uint16) * 257 if bits == 16 else tall
    colour, alpha = (pixels[..., :1], pixels[..., 2]) if c == 2 else (pixels[..., :c], None)
    write_image(tmp_path / "whole.tif", Picture(pixels=colour, alpha=alpha))
    paths = [tmp_path / "whole.tif"]
    if alpha is None:
        paths.append(tmp_path / "rows.tif")
        write_image_rows(paths[-1], pixels.shape[:2], c, pixels.dtype, [colour[:20], colour[20:]])
    for path in paths:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            assert page.compression in (tifffile.COMPRESSION.ADOBE_DEFLATE, tifffile.COMPRESSION.DEFLATE)
            assert page.predictor == tifffile.PREDICTOR.HORIZONTAL and page.rowsperstrip == 64
            assert len(page.dataoffsets) == 2
            assert page.description == ""  # not tifffile's {"shape": [...]}, which viewers showed as its caption
        back = read_image(path)
        assert np.array_equal(back.pixels, colour) and (alpha is None or np.array_equal(back.alpha, alpha))
        if bits == 8:
            with Image.open(path) as im:
                assert np.array_equal(np.asarray(im.convert("RGB" if c == 3 else "LA" if c == 2 else "L")).reshape(
                    *pixels.shape[:2], -1)[..., : colour.shape[2]], colour)


def test_a_16_bit_cmyk_tiff_is_refused_with_what_to_do(tmp_path: Path) -> None:
    import tifffile

    path = tmp_path / "cmyk16.tif"
    tifffile.imwrite(path, np.zeros((6, 5, 4), np.uint16), photometric="separated")
    with pytest.raises(InputError, match=r"16-bit CMYK TIFF is not supported .*save it as 16-bit RGB or as 8-bit"):
        read_image(path)


def test_float_and_wide_integer_tiffs_are_refused_as_unsupported_not_corrupt(tmp_path: Path) -> None:
    """Scientific TIFFs (float32, 32-bit integers past 16 bits) are said to be a kind classsr does not read, not a
    damaged file; 32-bit integers within 16 bits are read at 16 bits."""
    import tifffile

    tifffile.imwrite(tmp_path / "f.tif", np.zeros((6, 5, 3), np.float32), photometric="rgb")
    tifffile.imwrite(tmp_path / "u.tif", np.full((6, 5), 70_000, np.uint32))
    Image.fromarray(np.full((6, 5), 1000, np.int32)).save(tmp_path / "i.tif")
    with pytest.raises(InputError, match=r"f\.tif: TIFF samples of type float32 are not supported \(8 or 16-bit"):
        read_image(tmp_path / "f.tif")
    with pytest.raises(InputError, match=r"u\.tif: 32-bit integer samples outside the 16-bit range are not supported"):
        read_image(tmp_path / "u.tif")
    pic = read_image(tmp_path / "i.tif")
    assert pic.bits == 16 and int(pic.pixels.max()) == 1000


@pytest.mark.parametrize(("suffix", "kept"), [(".png", True), (".webp", True), (".avif", True), (".tif", True),
                                              (".jpg", False), (".bmp", False)])  # fmt: skip
def test_alpha_is_written_where_the_format_holds_it_else_composited_on_white(tmp_path: Path, suffix: str,
                                                                           kept: bool) -> None:
    """BMP counts as holding none: Pillow and most readers ignore a 32-bit BMP's alpha (the hidden colour showed)."""
    alpha = np.zeros((12, 10), np.uint8)
    alpha[:, 5:] = 255
    path = tmp_path / f"a{suffix}"
    notes = write_image(path, Picture(np.zeros((12, 10, 3), np.uint8), alpha=alpha))
    back = read_image(path)
    if kept:
        assert notes == [] and back.alpha is not None and np.array_equal(back.alpha, alpha)
    else:
        assert back.alpha is None and notes == [f"{'JPEG' if suffix == '.jpg' else 'BMP'} holds no alpha: composited on white"]
        assert back.pixels[:, :3].min() >= 240 and back.pixels[:, 7:].max() <= 15


_XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
        b'xmlns:dc="http://purl.org/dc/elements/1.1/" tiff:Orientation="6" exif:PixelXDimension="10">'
        b'<exif:PixelYDimension>12</exif:PixelYDimension><dc:rights>Jane Doe</dc:rights></rdf:Description>'
        b'</rdf:RDF></x:xmpmeta>')


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".avif", ".heic", ".tif"])
def test_xmp_print_resolution_and_png_text_are_carried(tmp_path: Path, suffix: str) -> None:
    """A photographer's rights, keywords and print size survive: XMP into every format that holds it, with its
    orientation made 1 (the pixels are turned) and its pixel dimensions the output's; the dpi into PNG, JPEG and
    TIFF; a PNG's text chunks into PNG, an international one's language too. They were dropped (JPEG came out at
    72 dpi; the language tag until the fifty-seventh pass)."""
    from PIL import PngImagePlugin

    src = tmp_path / f"a{suffix}"
    im = Image.fromarray(RGB)
    if suffix == ".png":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", _XMP.decode())
        info.add_text("Copyright", "Jane Doe")
        info.add_itxt("Description", "a café")
        info.add_itxt("Title", "un café", lang="fr", tkey="Titre")
        im.save(src, pnginfo=info, dpi=(300, 300))
    elif suffix == ".tif":
        im.save(src, dpi=(300, 300), tiffinfo={700: _XMP})
    else:
        im.save(src, xmp=_XMP, **({"dpi": (300, 300)} if suffix == ".jpg" else {"lossless": True} if suffix == ".webp"
                                   else {}))
    pic = read_image(src)
    assert pic.xmp is not None and b"Jane Doe" in pic.xmp
    bigger = Picture(np.repeat(np.repeat(pic.pixels, 2, 0), 2, 1), xmp=pic.xmp, dpi=pic.dpi, text=pic.text)
    write_image(tmp_path / f"b{suffix}", bigger)
    back = Image.open(tmp_path / f"b{suffix}")
    xmp, (w, h) = back.info["xmp"], back.size  # Pillow reads XMP's orientation where EXIF has none: turned once
    assert sorted(back.size) == [20, 24] and b"Jane Doe" in xmp and b'tiff:Orientation="6"' not in xmp
    assert f'exif:PixelXDimension="{w}"'.encode() in xmp and f">{h}</exif:PixelYDimension>".encode() in xmp
    assert read_image(tmp_path / f"b{suffix}").pixels.shape[:2] == (h, w)  # and not turned again
    if suffix not in (".webp", ".avif", ".heic"):
        assert back.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    if suffix == ".png":
        assert {k: v for k, v in back.text.items() if k != "XML:com.adobe.xmp"} == {
            "Copyright": "Jane Doe", "Description": "a café", "Title": "un café"}
        assert (back.text["Title"].lang, back.text["Title"].tkey) == ("fr", "Titre")  # an iTXt's language kept


def test_a_tiff_without_a_print_resolution_gets_none_and_says_who_wrote_it(tmp_path: Path) -> None:
    """A TIFF that gives no print resolution (a scan, a render) is read without one (Pillow gives 1 dpi, which the
    outputs wrote: a print an inch a pixel); its TIFF output says none (XResolution 1 with no unit, as TIFF asks) and
    names classsr as its software (it said tifffile.py), its JPEG output no density; one that gives 300 dpi keeps it."""
    Image.fromarray(RGB).save(tmp_path / "scan.tif")
    with Image.open(tmp_path / "scan.tif") as im:
        assert 282 not in im.tag_v2 and im.info.get("dpi") == (1, 1)  # (Pillow's reading)
    pic = read_image(tmp_path / "scan.tif")
    assert pic.dpi is None
    write_image(tmp_path / "out.tif", pic)
    write_image(tmp_path / "out.jpg", pic)
    with Image.open(tmp_path / "out.tif") as im:
        assert im.tag_v2.get(296) == 1 and im.tag_v2.get(305, "").startswith("classsr ")  # no unit: no print size
    with Image.open(tmp_path / "out.jpg") as im:
        assert im.info.get("dpi", (72, 72)) != (1, 1)
    Image.fromarray(RGB).save(tmp_path / "print.tif", dpi=(300, 300))
    assert read_image(tmp_path / "print.tif").dpi == (300, 300)


@pytest.mark.slow
def test_an_anamorphic_frames_pixel_shape_is_carried(tmp_path: Path) -> None:
    """A frame ffmpeg extracted from a widescreen DVD (SAR 32:27: PNG pHYs or JFIF density without a unit) keeps its
    pixel shape through `classsr upscale` into PNG, JPEG and TIFF, written as ffmpeg's encoders write it, so ffmpeg
    reads the upscale back as 32:27 (it was dropped: square pixels, the picture squeezed); a print resolution is not a
    shape."""
    from classsr_cli.io.video import ffmpeg_exe

    for kind in ("png", "jpg"):
        src = tmp_path / f"dvd.{kind}"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=72x48", "-frames:v", "1",
                        "-vf", "setsar=32/27", *(["-q:v", "2"] if kind == "jpg" else []), str(src)], check=True,
                       timeout=60)  # fmt: skip
        pic = read_image(src)
        assert pic.aspect == (32, 27)
        for out in ("png", "jpg", "tif"):
            write_image(tmp_path / f"{kind}.{out}", pic)
            shown = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(tmp_path / f"{kind}.{out}")],
                                   capture_output=True, text=True, timeout=60).stderr  # fmt: skip
            assert "SAR 32:27" in shown, (kind, out)
    Image.fromarray(RGB).save(tmp_path / "print.png", dpi=(300, 150))
    assert read_image(tmp_path / "print.png").aspect is None


def test_webp_keeps_its_losslessness_and_quality_is_asked_for(tmp_path: Path) -> None:
    """A lossless WebP source gives a lossless WebP (it came out lossy at quality 95), pixel for pixel; a lossy one
    a lossy one; ``quality`` sets JPEG's, WebP's and AVIF's (smaller files at 50)."""
    from classsr_cli.io.image import webp_lossless

    Image.fromarray(SMOOTH).save(tmp_path / "l.webp", lossless=True)
    Image.fromarray(SMOOTH).save(tmp_path / "q.webp", quality=80)
    lossless, lossy = read_image(tmp_path / "l.webp"), read_image(tmp_path / "q.webp")
    assert lossless.lossless and not lossy.lossless
    write_image(tmp_path / "l2.webp", lossless)
    write_image(tmp_path / "q2.webp", lossy)
    assert webp_lossless(tmp_path / "l2.webp") and not webp_lossless(tmp_path / "q2.webp")
    assert np.array_equal(read_image(tmp_path / "l2.webp").pixels, SMOOTH)
    noisy = Picture(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    for suffix in (".jpg", ".webp", ".avif", ".heic"):
        write_image(tmp_path / f"q95{suffix}", noisy)
        write_image(tmp_path / f"q50{suffix}", noisy, quality=50)
        assert (tmp_path / f"q50{suffix}").stat().st_size < 0.8 * (tmp_path / f"q95{suffix}").stat().st_size
    write_image(tmp_path / "l50.webp", lossless, quality=50)  # asked for: lossy at that quality
    assert not webp_lossless(tmp_path / "l50.webp")


def test_imagemagick_raw_profiles_are_not_carried_stale(tmp_path: Path) -> None:
    """A PNG's `Raw profile type exif` text (ImageMagick's) with orientation 6: the pixels are turned on reading,
    and the chunk was carried as it was, so readers turned the output a second time; it is left out (the EXIF
    itself is carried, orientation dropped); IPTC and plain text are carried."""
    from PIL import PngImagePlugin

    exif = Image.Exif()
    exif[0x0112] = 6
    raw = exif.tobytes()
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", f"\nexif\n{len(raw):8d}\n{raw.hex()}\n")
    info.add_text("Raw profile type iptc", "\niptc\n       4\n1c020000\n")
    info.add_text("Title", "kept")
    Image.fromarray(RGB).save(tmp_path / "im.png", pnginfo=info)  # 10 wide, 12 high, shown turned
    pic = read_image(tmp_path / "im.png")
    assert pic.pixels.shape[:2] == (10, 12)  # turned once, on reading
    write_image(tmp_path / "out.png", pic)
    with Image.open(tmp_path / "out.png") as out:
        assert out.getexif().get(0x0112) in (None, 1) and "Raw profile type exif" not in out.text
        assert out.text["Title"] == "kept" and "Raw profile type iptc" in out.text


def test_a_16_bit_png_ffmpeg_refuses_for_its_raw_exif_profile_is_read(tmp_path: Path) -> None:
    """ffmpeg fails a whole 16-bit PNG whose ImageMagick raw EXIF profile it cannot parse (djxl writes the 4 bytes of
    a JPEG XL's Exif box before its TIFF header there): "truncated or corrupt image" for a valid PNG; read by pypng."""
    raw = bytes(4) + bytes.fromhex("49492a00080000000000000000")
    text = f"\nexif\n{len(raw):8d}\n{raw.hex()}\n".encode()
    deep = (np.arange(48, dtype=np.uint16).reshape(4, 4, 3) * 1000).astype(np.uint16)
    write_image(tmp_path / "a.png", Picture(deep))
    data = (tmp_path / "a.png").read_bytes()
    body = b"zTXt" + b"Raw profile type exif\x00\x00" + zlib.compress(text)
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    (tmp_path / "b.png").write_bytes(data[:33] + chunk + data[33:])  # (after the IHDR)
    pic = read_image(tmp_path / "b.png")
    assert pic.pixels.dtype == np.uint16 and np.array_equal(pic.pixels, deep)


def test_imagemagick_raw_profiles_are_read_to_the_length_they_give(tmp_path: Path) -> None:
    """A raw EXIF profile with bytes after the length it gives (libavif's test picture ``paris_icc_exif_xmp.png``, of a
    Pixel 4a's photo through GIMP) was "its EXIF does not read (non-hexadecimal number ...)": Pillow reads every line;
    now read to its length, the orientation applied. Its raw XMP profile, which was left, is the picture's XMP."""
    from PIL import PngImagePlugin

    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Google"
    raw = exif.tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", f"\nexif\n{len(raw):8d}\n{raw.hex()}\n$#!/\n", zip=True)
    info.add_text("Raw profile type xmp", f"\nxmp\n{len(xmp):8d}\n{xmp.hex()}\n", zip=True)
    Image.fromarray(RGB).save(tmp_path / "im.png", pnginfo=info)
    pic = read_image(tmp_path / "im.png")
    assert pic.notes == [] and pic.pixels.shape[:2] == (10, 12) and pic.xmp == xmp  # (turned: orientation 6)
    carried = Image.Exif()
    carried.load(pic.exif)
    assert carried.get(0x010F) == "Google" and 0x0112 not in carried
    assert peek_size(tmp_path / "im.png") == (10, 12)


def test_xmp_sizes_and_orientation_in_every_form_are_brought_up_to_date() -> None:
    from classsr_cli.io.image import _xmp_for_output

    xmp = (b"<d tiff:Orientation='8' exif:PixelXDimension = \"10\"><exif:PixelYDimension rdf:datatype='int'>12"
           b"</exif:PixelYDimension><tiff:ImageWidth>10</tiff:ImageWidth></d>")
    assert _xmp_for_output(xmp, 40, 48) == (
        b"<d tiff:Orientation='1' exif:PixelXDimension = \"40\"><exif:PixelYDimension rdf:datatype='int'>48"
        b"</exif:PixelYDimension><tiff:ImageWidth>40</tiff:ImageWidth></d>")


def test_a_jpegs_quality_is_read_from_its_quantisation_table(tmp_path: Path) -> None:
    """Files saved at libjpeg's quality Q read back as Q (from the luma table alone, whatever the picture); other
    formats have none."""
    pixels = (np.random.default_rng(3).random((40, 56, 3)) * 255).astype(np.uint8)
    for q in (30, 50, 62, 75, 90, 95, 100):
        path = tmp_path / f"q{q}.jpg"
        Image.fromarray(pixels).save(path, quality=q)
        assert read_image(path).jpeg_quality == q
    Image.fromarray(pixels[..., 0]).save(tmp_path / "gray.jpg", quality=70)  # one table
    assert read_image(tmp_path / "gray.jpg").jpeg_quality == 70
    Image.fromarray(pixels).save(tmp_path / "low.jpg", quality=10)  # clipped at 255: reads a little high, still low
    assert 10 <= (read_image(tmp_path / "low.jpg").jpeg_quality or 0) <= 20
    Image.fromarray(pixels).save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").jpeg_quality is None


@pytest.mark.parametrize(("suffix", "fmt", "kw", "written"), [
    (".gif", "GIF", {}, ".gif"), (".webp", "WEBP", {"lossless": True}, ".webp"), (".png", "PNG", {}, ".apng")])  # fmt: skip
def test_an_animation_reads_its_first_frame_and_names_the_video_command(
    tmp_path: Path, suffix: str, fmt: str, kw: dict[str, object], written: str
) -> None:
    """An animated GIF, WebP or PNG (APNG) gives its first frame, with a note that says so and names the command
    that upscales every frame, in the extension it writes that animation as."""
    frames = [Image.new("RGB", (8, 6), c) for c in ((250, 0, 0), (0, 250, 0), (0, 0, 250))]
    path = tmp_path / f"anim{suffix}"
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=100, **kw)
    pic = read_image(path)
    assert pic.pixels.shape[:2] == (6, 8) and pic.pixels[0, 0].tolist() == [250, 0, 0]
    note = f"{fmt} with 3 frames: only the first is upscaled (`classsr video` upscales every frame: e.g. " \
           f"`classsr video anim{suffix} anim_x4{written}`)"  # fmt: skip
    assert note in pic.notes


def test_a_camera_raw_file_is_refused_not_read_as_its_preview(tmp_path: Path) -> None:
    """A DNG (or NEF, ARW, CR2: TIFF inside) opens in Pillow as its first IFD, the embedded preview (a DNG's thumbnail
    of a few hundred pixels): it was upscaled as though it were the photo. Refused by its name, and a DNG by its
    DNGVersion tag whatever its name; a plain TIFF is still read; a folder says what to do with its RAW files."""
    import tifffile

    from classsr_cli.plan import plan_jobs

    preview = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    dng = [(50706, "B", 4, (1, 4, 0, 0), True), (254, "I", 1, 1, True)]  # DNGVersion 1.4; a reduced-size picture
    for name, tags in (("IMG_1.dng", dng), ("DSC_2.NEF", []), ("renamed.tif", dng)):
        tifffile.imwrite(tmp_path / name, preview, photometric="rgb", extratags=tags)
        kind = "DNG" if tags else "NEF"
        with pytest.raises(InputError, match=rf"{name}: a camera RAW file \({kind}\): develop it first"):
            read_image(tmp_path / name)
        with pytest.raises(InputError, match="a camera RAW file"):
            peek_size(tmp_path / name)
    tifffile.imwrite(tmp_path / "plain.tif", preview, photometric="rgb")
    assert np.array_equal(read_image(tmp_path / "plain.tif").pixels, preview)
    raws = tmp_path / "raws"
    raws.mkdir()
    (tmp_path / "DSC_2.NEF").rename(raws / "DSC_2.NEF")
    with pytest.raises(InputError, match=r"1 \.NEF not read \(camera RAW: develop them first"):
        plan_jobs([str(raws)], None, 4.0)


def test_a_float_tiff_points_to_openexr(tmp_path: Path) -> None:
    """A 32-bit float TIFF (an HDR merge from Photoshop) is refused, naming OpenEXR, which classsr reads with its light
    above 1.0 (a TIFF does not say whether its floats are linear light)."""
    import tifffile

    light = np.random.default_rng(0).random((8, 9, 3)).astype(np.float32) * 2
    tifffile.imwrite(tmp_path / "merge.tif", light, photometric="rgb")
    tifffile.imwrite(tmp_path / "gray.tif", light[..., 0])
    for name in ("merge.tif", "gray.tif"):
        with pytest.raises(InputError, match=r"not supported .*save an HDR picture as OpenEXR"):
            read_image(tmp_path / name)


# ----------------------------------------------------------------------------------------- TGA, Netpbm, DDS


def _ppm(path: Path, levels: np.ndarray, maxval: int, magic: bytes = b"P6", comment: bytes = b"") -> Path:
    h, w = levels.shape[:2]
    path.write_bytes(magic + b"\n" + comment + f"{w} {h}\n{maxval}\n".encode() + levels.astype(">u2").tobytes())
    return path


@pytest.mark.parametrize("maxval", [65535, 4095, 1023])
def test_a_deep_ppm_is_read_at_16_bits_its_levels_stretched(tmp_path: Path, maxval: int) -> None:
    """Pillow reads a raw PPM of more than 8 bits at 8; classsr keeps its 16, stretched from its maxval to 65535 as
    Pillow stretches a deep PGM's (a comment in the header skipped)."""
    levels = np.random.default_rng(2).integers(0, maxval + 1, (9, 7, 3))
    pic = read_image(_ppm(tmp_path / "a.ppm", levels, maxval, comment=b"# from a scanner\n"))
    assert pic.bits == 16 and pic.mode == "RGB" and pic.source_format == "PPM"
    want = (levels * 65535 + maxval // 2) // maxval
    assert np.array_equal(pic.pixels, want.astype(np.uint16))
    gray = read_image(_ppm(tmp_path / "g.pgm", levels[..., :1], maxval, magic=b"P5"))  # Pillow's own read
    assert gray.mode == "L" and gray.bits == 16 and np.abs(gray.pixels.astype(int) - want[..., :1]).max() <= 1


def test_an_interlaced_png_cut_short_says_it_is_truncated(tmp_path: Path) -> None:
    """Its pixels decoded once, their error said (decoded again, Pillow raised "function takes at most 3 arguments")."""
    import png

    rows = np.random.default_rng(3).integers(0, 256, (32, 96)).astype(np.uint8)
    with (tmp_path / "whole.png").open("wb") as f:
        png.Writer(32, 32, greyscale=False, interlace=True).write(f, rows.tolist())
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:1500])
    with pytest.raises(InputError, match=r"cut\.png: truncated or corrupt image \(image file is truncated\)$"):
        read_image(tmp_path / "cut.png")
    assert np.array_equal(read_image(tmp_path / "whole.png").pixels.reshape(32, 96), rows)


def test_a_ppm_cut_short_is_one_error(tmp_path: Path) -> None:
    path = _ppm(tmp_path / "cut.ppm", np.zeros((9, 7, 3), int), 65535)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(InputError, match=r"cut\.ppm: truncated or corrupt image \(cut short"):
        read_image(path)


@pytest.mark.parametrize(("suffix", "c", "magic"), [(".ppm", 1, b"P6"), (".ppm", 3, b"P6"), (".pgm", 1, b"P5"),
                                                     (".pgm", 3, b"P5"), (".pnm", 1, b"P5"), (".pnm", 3, b"P6")])
@pytest.mark.parametrize("bits", [8, 16])
def test_netpbm_outputs_as_their_names_say(tmp_path: Path, suffix: str, c: int, magic: bytes, bits: int) -> None:
    """.ppm is colour (a gray picture in three equal channels), .pgm gray (a colour picture's BT.601 luma, said), .pnm
    as the picture is; 16 bits kept; what Pillow and ffmpeg read back."""
    dtype = np.uint16 if bits == 16 else np.uint8
    pixels = (SMOOTH.astype(np.uint32) * (257 if bits == 16 else 1)).astype(dtype)[..., :c]
    path = tmp_path / f"o{suffix}"
    notes = write_image(path, Picture(pixels))
    assert path.read_bytes().startswith(magic + f"\n40 32\n{65535 if bits == 16 else 255}\n".encode())
    back = read_image(path)
    assert back.bits == bits and back.pixels.shape[2] == (3 if magic == b"P6" else 1)
    if magic == b"P6":
        assert np.array_equal(back.pixels, np.broadcast_to(pixels, back.pixels.shape))
    elif c == 1:
        assert np.array_equal(back.pixels, pixels)
    else:
        luma = np.asarray(Image.fromarray(SMOOTH).convert("L")).astype(np.float64) * (257 if bits == 16 else 1)
        assert np.abs(back.pixels[..., 0] - luma).max() <= (257 if bits == 16 else 1)
    assert notes == (["PGM holds gray: the colours written as their luma (ITU-R BT.601, as Pillow and Netpbm convert)"]
                     if suffix == ".pgm" and c == 3 else [])


@pytest.mark.slow
def test_netpbm_is_read_by_ffmpeg_as_written(tmp_path: Path) -> None:
    from classsr_cli.io.video import ffmpeg_exe

    pixels = (SMOOTH.astype(np.uint16) * 257 + 3).astype(np.uint16)
    write_image(tmp_path / "o.ppm", Picture(pixels))
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(tmp_path / "o.ppm"), "-f", "rawvideo", "-pix_fmt",
                          "rgb48le", "-"], capture_output=True, check=True).stdout  # fmt: skip
    assert np.array_equal(np.frombuffer(out, "<u2").reshape(pixels.shape), pixels)


@pytest.mark.parametrize("origin", ["top", "bottom"])
def test_tga_keeps_alpha_and_its_rows_in_order(tmp_path: Path, origin: str) -> None:
    """A TGA stored bottom-up or top-down, RLE or not, reads upright; its alpha is kept into a TGA output."""
    rgba = np.dstack([SMOOTH, (SMOOTH[..., 0] // 2 + 10)]).astype(np.uint8)
    source = tmp_path / "in.tga"
    Image.fromarray(rgba).save(source, compression="tga_rle", orientation=1 if origin == "bottom" else -1)
    pic = read_image(source)
    assert pic.source_format == "TGA" and np.array_equal(pic.pixels, SMOOTH) and np.array_equal(pic.alpha, rgba[..., 3])
    assert write_image(tmp_path / "o.tga", pic) == []
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.tga")), rgba)


def test_tga_written_run_length_coded_unless_its_source_was_not(tmp_path: Path) -> None:
    """A TGA output is run-length coded (as ffmpeg and GIMP write TGA), the same pixels in fewer bytes, unless the
    picture came from an uncompressed TGA, which it then stays, or run-length coding would make it bigger."""
    flat = np.repeat(SMOOTH, 4, axis=1)  # runs of four equal pixels
    Image.fromarray(flat).save(tmp_path / "raw.tga")  # Pillow's default: uncompressed
    write_image(tmp_path / "from_png.tga", Picture(flat))
    write_image(tmp_path / "from_raw.tga", raw := read_image(tmp_path / "raw.tga"))
    assert raw.uncompressed and not read_image(tmp_path / "from_png.tga").uncompressed
    for name, compression in (("from_png", "tga_rle"), ("from_raw", None)):
        im = Image.open(tmp_path / f"{name}.tga")
        assert im.info.get("compression") == compression and np.array_equal(np.asarray(im), flat)
    rle, plain = ((tmp_path / f"{n}.tga").stat().st_size for n in ("from_png", "from_raw"))
    assert rle < plain * 0.5
    grain = RNG.integers(0, 256, (16, 256, 3), dtype=np.uint8)  # no runs: run-length coding would grow it
    write_image(tmp_path / "grain.tga", Picture(grain))
    assert (tmp_path / "grain.tga").stat().st_size <= 18 + grain.size + 26  # header, pixels, TGA 2.0 footer
    assert np.array_equal(np.asarray(Image.open(tmp_path / "grain.tga")), grain)


def test_tga_is_opened_by_its_name_or_its_footer(tmp_path: Path) -> None:
    """TGA 1.0 has no signature: such a file is tried as one only where its name ends in .tga, so that a damaged file
    of another kind is never taken for a TGA; a TGA 2.0 file is known by its footer under any name."""
    Image.fromarray(RGB).save(tmp_path / "a.tga")
    tga = (tmp_path / "a.tga").read_bytes()
    (tmp_path / "a.png").write_bytes(tga[:-26])  # TGA 1.0: the same without TGA 2.0's footer
    (tmp_path / "b.png").write_bytes(tga)
    assert np.array_equal(read_image(tmp_path / "a.tga").pixels, RGB)
    with pytest.raises(InputError, match=r"a\.png: not an image classsr reads"):
        read_image(tmp_path / "a.png")
    assert np.array_equal(read_image(tmp_path / "b.png").pixels, RGB)
    assert peek_size(tmp_path / "a.tga") == peek_size(tmp_path / "b.png") == (12, 10)


def _tga(path: Path, pixels: bytes, flags: int, *, bits: int = 32, colour_map: bytes = b"", attributes: int | None = None) -> Path:
    """A TGA of SMOOTH's size, top-down: true colour of ``bits``, or 8-bit indices into ``colour_map`` (256 BGRA
    colours); a TGA 2.0 extension area whose attributes type is ``attributes`` where given."""
    mapped = bool(colour_map)
    head = struct.pack("<BBBHHBHHHHBB", 0, int(mapped), 1 if mapped else 2, 0, 256 if mapped else 0, 32 if mapped else 0,
                       0, 0, SMOOTH.shape[1], SMOOTH.shape[0], bits, flags | 0x20)  # fmt: skip
    data = head + colour_map + pixels
    if attributes is not None:
        at = len(data)
        data += struct.pack("<H", 495) + bytes(492) + bytes([attributes])
        data += struct.pack("<II", at, 0) + b"TRUEVISION-XFILE.\x00"
    path.write_bytes(data)
    return path


def test_a_tgas_unused_fourth_byte_is_no_alpha_and_a_colour_maps_alpha_is_kept(tmp_path: Path) -> None:
    """A 32-bit TGA whose header gives no alpha bits and whose fourth bytes are all 0 (left unused by its writer) was
    read as a wholly transparent picture: opaque; one whose TGA 2.0 extension area says it has no alpha (attributes
    type 0) is opaque whatever the bytes. One whose header gives 8 alpha bits keeps them, all 0 too, and so does one
    whose bytes vary (as stb and ffmpeg read it). A colour map of 32-bit colours (KDE's colormapped.tga) keeps its
    alpha, which was dropped."""
    bgr = SMOOTH[..., ::-1]
    ramp = (SMOOTH[..., 0] // 2 + 10).astype(np.uint8)
    zero = np.dstack([bgr, np.zeros_like(ramp)]).tobytes()
    varied = np.dstack([bgr, ramp]).tobytes()
    unused = read_image(_tga(tmp_path / "unused.tga", zero, 0))
    assert unused.alpha is None and np.array_equal(unused.pixels, SMOOTH)
    assert read_image(_tga(tmp_path / "none.tga", varied, 0, attributes=0)).alpha is None
    clear = read_image(_tga(tmp_path / "clear.tga", zero, 8))
    assert clear.alpha is not None and not clear.alpha.any()
    kept = read_image(_tga(tmp_path / "kept.tga", varied, 0))
    assert kept.alpha is not None and np.array_equal(kept.alpha, ramp)
    colours = np.stack([np.arange(256), 255 - np.arange(256), np.full(256, 9), np.arange(256)], axis=1).astype(np.uint8)
    index = (SMOOTH[..., 0] // 2).astype(np.uint8)
    mapped = read_image(_tga(tmp_path / "mapped.tga", index.tobytes(), 0, bits=8, colour_map=colours.tobytes()))
    assert np.array_equal(mapped.pixels, colours[index][..., 2::-1])
    assert mapped.alpha is not None and np.array_equal(mapped.alpha, colours[index][..., 3])


def test_a_tga_of_15_bit_colours_in_its_colour_map_or_with_a_map_it_has_no_use_for_is_read(tmp_path: Path) -> None:
    """A colour map of 15-bit colours (image-rs's b5-cmap.tga), which Pillow does not open, and a true-colour TGA with
    a colour map it has no use for (b5-unused-cmap.tga; a 24-bit map: Pillow opened it and failed) are read: the
    15-bit colours 5 bits each, their top bit no alpha."""
    colours = np.random.default_rng(3).integers(0, 1 << 15, 16).astype("<u2") | 0x8000  # the unused top bit set
    index = (SMOOTH[..., 0] % 16).astype(np.uint8)
    h, w = index.shape
    head = struct.pack("<BBBHHBHHHHBB", 0, 1, 1, 0, 16, 15, 0, 0, w, h, 8, 0x20)
    (tmp_path / "cmap.tga").write_bytes(head + colours.tobytes() + index.tobytes())
    fives = np.stack([(colours >> s) & 31 for s in (10, 5, 0)], axis=-1)
    want = ((fives * 255 + 15) // 31).astype(np.uint8)[index]
    pic = read_image(tmp_path / "cmap.tga")
    assert pic.alpha is None and np.abs(pic.pixels.astype(int) - want).max() <= 4  # (5 bits to 8: Pillow's rounding)
    for depth, size in ((15, 2), (24, 3)):
        head = struct.pack("<BBBHHBHHHHBB", 0, 1, 2, 0, 16, depth, 0, 0, w, h, 24, 0x20)
        (tmp_path / f"unused{depth}.tga").write_bytes(head + bytes(16 * size) + SMOOTH[..., ::-1].tobytes())
        assert np.array_equal(read_image(tmp_path / f"unused{depth}.tga").pixels, SMOOTH), depth


def test_dds_is_read_and_written_as_dds(tmp_path: Path) -> None:
    """A DDS texture (here DXT5, block-compressed) is read with its alpha; its default output is a DDS (io.dds,
    tests/test_dds.py), as a TGA's is a TGA, where a GIF's and a PBM's are PNG."""
    from classsr_cli.io.image import output_suffix

    rgba = np.dstack([SMOOTH, np.full(SMOOTH.shape[:2], 200, np.uint8)])
    for kind in ("DXT1", "DXT3", "DXT5", "BC5"):  # block-compressed (BC5: two channels, read as RGB)
        Image.fromarray(rgba[..., :3] if kind == "BC5" else rgba).save(tmp_path / "t.dds", pixel_format=kind)
        pic = read_image(tmp_path / "t.dds")
        assert pic.source_format == "DDS" and pic.mode == ("RGB" if kind in ("BC5", "DXT1") else "RGBA"), kind
        if kind != "BC5":
            assert np.abs(pic.pixels.astype(int) - SMOOTH).mean() < 4, kind
    Image.fromarray(rgba).save(tmp_path / "raw.dds")  # uncompressed
    assert np.array_equal(read_image(tmp_path / "raw.dds").pixels, SMOOTH)
    assert output_suffix(".pbm") == output_suffix(".gif") == ".png"
    assert output_suffix(".tga") == ".tga" and output_suffix(".PPM") == ".PPM" and output_suffix(".dds") == ".dds"


def test_every_readable_suffix_has_a_default_output_classsr_writes(tmp_path: Path) -> None:
    """The default output of every suffix classsr reads is one it writes: a ``.j2c`` codestream (exiftool's
    ``Jpeg2000.j2c``) was "cannot write .j2c; use one of ..." after reading it; now written as the ``.j2k`` codestream
    it is (``.jpc`` alike; a ``.jpf`` JPX file as ``.jp2``)."""
    from classsr_cli.io.files import IMAGE_SUFFIXES
    from classsr_cli.io.image import WRITE_FORMATS, output_suffix

    assert {s: output_suffix(s) for s in IMAGE_SUFFIXES if output_suffix(s).lower() not in WRITE_FORMATS} == {}
    assert (output_suffix(".j2c"), output_suffix(".JPC"), output_suffix(".jpf")) == (".j2k", ".j2k", ".jp2")
    write_image(tmp_path / "a.j2k", Picture(pixels=SMOOTH))
    (tmp_path / "a.j2k").rename(tmp_path / "a.j2c")
    write_image(tmp_path / f"b{output_suffix('.j2c')}", read_image(tmp_path / "a.j2c"))
    assert np.array_equal(read_image(tmp_path / "b.j2k").pixels, SMOOTH)  # (lossless)


def test_an_icon_or_a_cursor_gives_its_largest_picture_and_becomes_a_png(tmp_path: Path) -> None:
    """An ICO (a favicon, an app's icon) or a CUR was "not an image classsr reads": its largest picture is read, alpha
    kept, a note saying so where it holds several sizes; its default output is a PNG (an icon holds 256 pixels a
    side)."""
    from classsr_cli.io.image import output_suffix

    rgba = np.dstack([SMOOTH[:32, :32], np.full((32, 32), 200, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "app.ico", sizes=[(16, 16), (24, 24), (32, 32)])
    pic = read_image(tmp_path / "app.ico")
    assert pic.source_format == "ICO" and pic.pixels.shape == (32, 32, 3) and pic.alpha is not None
    assert np.array_equal(pic.pixels, SMOOTH[:32, :32]) and np.array_equal(pic.alpha, rgba[..., 3])
    assert pic.notes == ["ICO with 3 sizes: the largest (32x32) is upscaled"]
    assert peek_size(tmp_path / "app.ico") == (32, 32)
    assert output_suffix(".ico") == output_suffix(".CUR") == ".png"
    Image.fromarray(rgba).save(tmp_path / "bmp.ico", sizes=[(16, 16), (32, 32)], bitmap_format="bmp")
    cursor = bytearray((tmp_path / "bmp.ico").read_bytes())
    cursor[2] = 2  # (a cursor: the same directory, type 2, of bitmaps)
    (tmp_path / "arrow.cur").write_bytes(bytes(cursor))
    arrow = read_image(tmp_path / "arrow.cur")
    assert arrow.source_format == "CUR" and np.array_equal(arrow.pixels, SMOOTH[:32, :32])


def test_a_mac_icon_and_a_blizzard_texture_are_read(tmp_path: Path) -> None:
    """ICNS (a Mac's icons: its largest picture, as an ICO's, alpha kept) and BLP (Warcraft's textures) were "not an
    image classsr reads", and `classsr video` said "Invalid data found"; both are written as PNG by default."""
    from classsr_cli.io.image import output_suffix

    rgba = np.dstack([SMOOTH[:32, :32], np.full((32, 32), 200, np.uint8)])
    big = Image.fromarray(rgba).resize((128, 128), Image.Resampling.NEAREST)
    big.save(tmp_path / "app.icns", sizes=[(16, 16), (32, 32), (128, 128)])
    pic = read_image(tmp_path / "app.icns")
    assert pic.source_format == "ICNS" and pic.pixels.shape[2] == 3 and pic.alpha is not None
    with Image.open(tmp_path / "app.icns") as im:  # (Pillow opens an ICNS at its largest size)
        largest = im.size
    assert pic.pixels.shape[:2] == largest[::-1] and pic.notes[0].startswith("ICNS with ")
    assert np.all(pic.alpha == 200)
    palette = Image.fromarray(SMOOTH[:24, :40]).quantize(64)
    palette.save(tmp_path / "wall.blp")
    tex = read_image(tmp_path / "wall.blp")
    assert tex.source_format == "BLP" and np.array_equal(tex.pixels, np.asarray(palette.convert("RGB")))
    assert output_suffix(".icns") == output_suffix(".BLP") == ".png"
    for name, said in (("cut.icns", "an ICNS"), ("cut.blp", "a BLP")):  # damaged: said as of their kind
        (tmp_path / name).write_bytes((tmp_path / ("app.icns" if name.endswith("icns") else "wall.blp")).read_bytes()[:12])
        with pytest.raises(InputError, match=rf"{name}: truncated or corrupt image \({said} by its first bytes"):
            read_image(tmp_path / name)
    # An entry whose JPEG 2000 picture's header says a billion rows (Pillow's oom-8ed3316a test file: it decodes
    # before it compares, and the process was killed for memory): refused from the header.
    jp2 = io.BytesIO()
    Image.fromarray(SMOOTH[:32, :32]).resize((128, 128)).save(jp2, "JPEG2000")
    data = bytearray(jp2.getvalue())
    at = data.index(b"ihdr") + 4
    data[at : at + 4] = (1 << 30).to_bytes(4, "big")  # its height
    entry = b"ic07" + struct.pack(">I", 8 + len(data)) + bytes(data)
    (tmp_path / "bomb.icns").write_bytes(b"icns" + struct.pack(">I", 8 + len(entry)) + entry)
    with pytest.raises(InputError, match=r"bomb\.icns: truncated or corrupt image \(its ic07 picture says "
                                         r"128x1073741824 where its entry is 128x128\)$"):
        read_image(tmp_path / "bomb.icns")
    png = io.BytesIO()
    Image.fromarray(SMOOTH[:32, :32]).resize((128, 128)).save(png, "PNG")
    data = bytearray(png.getvalue())
    data[20:24] = (1 << 30).to_bytes(4, "big")  # its IHDR's height, and that chunk's CRC made again
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    entry = b"ic07" + struct.pack(">I", 8 + len(data)) + bytes(data)
    (tmp_path / "png.icns").write_bytes(b"icns" + struct.pack(">I", 8 + len(entry)) + entry)
    with pytest.raises(InputError, match=r"png\.icns: truncated or corrupt image \(its ic07 picture says 128x1073741824"):
        read_image(tmp_path / "png.icns")


def test_an_icon_of_one_size_in_two_depths_gives_its_deepest_picture(tmp_path: Path) -> None:
    """An icon with an 8-bit palette picture and a 32-bit one of the same size (image-rs's multiple_entries test
    icon): the 32-bit one, alpha and all, where Pillow takes the palette one."""
    rgba = np.dstack([SMOOTH[:32, :32], np.linspace(30, 255, 32, dtype=np.uint8)[None].repeat(32, 0)])
    pngs = []
    for im in (Image.fromarray(rgba).convert("RGB").quantize(16), Image.fromarray(rgba)):
        buf = io.BytesIO()
        im.save(buf, "PNG")
        pngs.append(buf.getvalue())
    head = struct.pack("<3H", 0, 1, 2)
    at = 6 + 16 * 2
    for data, bpp in zip(pngs, (8, 32), strict=True):
        head += struct.pack("<4B2H2I", 32, 32, 0, 0, 1, bpp, len(data), at)
        at += len(data)
    (tmp_path / "two.ico").write_bytes(head + b"".join(pngs))
    pic = read_image(tmp_path / "two.ico")
    assert np.array_equal(pic.pixels, SMOOTH[:32, :32]) and np.array_equal(pic.alpha, rgba[..., 3])


def _pfm(path: Path, light: np.ndarray, little: bool = True) -> Path:
    h, w, c = light.shape
    order = "<f4" if little else ">f4"
    path.write_bytes(f"{'PF' if c == 3 else 'Pf'}\n{w} {h}\n{-1.0 if little else 1.0}\n".encode()
                     + np.ascontiguousarray(light[::-1], dtype=order).tobytes())  # fmt: skip
    return path


@pytest.mark.parametrize("little", [True, False])
def test_a_pfm_is_linear_light_kept_above_1_into_a_pfm(tmp_path: Path, little: bool) -> None:
    """A PFM (rows bottom-up, either byte order) is read as linear light, as an EXR is: within 0-1 in sRGB-encoded
    16-bit pixels, a highlight above 1.0 kept apart and written back into a PFM (classsr's, little-endian, which
    ffmpeg reads alike: tests/test_image_io.py's Netpbm test); a PNG output clips it, with a note."""
    from classsr_cli.io import pnm

    light = np.dstack([SMOOTH / 255.0, np.zeros((32, 40))]).astype(np.float32)[..., :3]
    light[2:6, 30:36] = 5.0  # a lamp
    pic = read_image(_pfm(tmp_path / "in.pfm", light, little))
    assert pic.source_format == "PFM" and pic.bits == 16 and pic.linear is not None and pic.mode == "RGB"
    assert peek_size(tmp_path / "in.pfm") == (32, 40)
    assert write_image(tmp_path / "out.pfm", pic) == []
    data = (tmp_path / "out.pfm").read_bytes()
    assert data.startswith(b"PF\n40 32\n-1.0\n")
    back = pnm.read_pfm(tmp_path / "out.pfm", pnm.pfm_header(data))
    assert np.allclose(back, light, rtol=1e-3, atol=1e-4)
    assert any("light outside 0-1" in n for n in write_image(tmp_path / "out.png", pic))
    gray = read_image(_pfm(tmp_path / "g.pfm", light[..., :1], little))
    assert gray.mode == "L" and gray.gray
    write_image(tmp_path / "g_out.pfm", gray)
    assert (tmp_path / "g_out.pfm").read_bytes().startswith(b"Pf\n40 32\n")


def test_a_pfm_cut_short_or_with_a_bad_header_is_one_error(tmp_path: Path) -> None:
    path = _pfm(tmp_path / "cut.pfm", np.zeros((4, 5, 3), np.float32))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(InputError, match=r"cut\.pfm: truncated or corrupt image \(cut short: 232 of its 240 bytes"):
        read_image(path)
    (tmp_path / "bad.pfm").write_bytes(b"PF\n5 x\n-1.0\n" + bytes(240))
    with pytest.raises(InputError, match=r"bad\.pfm: truncated or corrupt image \(its PFM header does not read\)"):
        read_image(tmp_path / "bad.pfm")


@pytest.mark.parametrize("suffix", [".jp2", ".j2k"])
@pytest.mark.parametrize(("c", "bits"), [(1, 8), (3, 8), (4, 8), (3, 16), (4, 16), (1, 16)])
def test_jpeg_2000_is_written_losslessly_and_read_at_its_depth(tmp_path: Path, suffix: str, c: int, bits: int) -> None:
    """JPEG 2000 (archives' and scanners' format) in and out, lossless: at 8 bits through Pillow (OpenJPEG), at 16
    through ffmpeg's encoder and decoder (Pillow reads a colour one at 8); alpha kept; ``.j2k`` the bare codestream."""
    dtype = np.uint16 if bits == 16 else np.uint8
    levels = np.random.default_rng(c + bits).integers(0, np.iinfo(dtype).max, (24, 20, c)).astype(dtype)
    colour, alpha = (levels[..., :3], levels[..., 3]) if c == 4 else (levels, None)
    assert write_image(tmp_path / f"o{suffix}", Picture(colour, alpha=alpha)) == []
    data = (tmp_path / f"o{suffix}").read_bytes()
    assert data.startswith(b"\xff\x4f\xff\x51") if suffix == ".j2k" else data[4:8] == b"jP  "
    back = read_image(tmp_path / f"o{suffix}")
    assert back.source_format == "JPEG2000" and back.bits == bits
    assert np.array_equal(back.pixels, colour) and (alpha is None or np.array_equal(back.alpha, alpha))
    for size in ((1, 1), (2, 3), (31, 40)):  # OpenJPEG takes fewer wavelet levels where a side is under 32 pixels
        small = Picture(np.ascontiguousarray(colour[: size[0], : size[1]]))
        write_image(tmp_path / f"s{suffix}", small, overwrite=True)
        assert np.array_equal(read_image(tmp_path / f"s{suffix}").pixels, small.pixels)


@pytest.mark.slow
def test_a_12_bit_jpeg_2000_is_read_with_its_levels_stretched(tmp_path: Path) -> None:
    from classsr_cli.io.image import _jp2_bits
    from classsr_cli.io.video import ffmpeg_exe

    levels = np.random.default_rng(3).integers(0, 4096, (3, 24, 20)).astype("<u2")  # G, B, R planes
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "gbrp12le", "-s", "20x24", "-i", "-",
                    "-c:v", "jpeg2000", "-pred", "dwt53", "-f", "image2", "-update", "1", str(tmp_path / "s.jp2")],
                   input=levels.tobytes(), check=True)  # fmt: skip
    assert _jp2_bits(tmp_path / "s.jp2") == 12
    pic = read_image(tmp_path / "s.jp2")
    want = np.rint(np.moveaxis(levels[[2, 0, 1]].astype(np.float64), 0, -1) * 65535 / 4095)
    assert pic.bits == 16 and np.abs(pic.pixels.astype(int) - want).max() <= 1


def test_a_16_bit_cmyk_jpeg_2000_keeps_its_full_inks(tmp_path: Path) -> None:
    """Pillow's decoder wraps a 16-bit CMYK JPEG 2000's top levels round to 0 (KDE's testcard_cmyk16.jp2: full yellow
    ink read as none, blue as yellow): read at 16 bits by ffmpeg, then converted as an 8-bit CMYK one is."""
    from classsr_cli.io.video import ffmpeg_exe

    ink = np.random.default_rng(1).integers(0, 65536, (40, 48, 4)).astype("<u2")
    ink[0, :, 2] = 65535
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgba64le", "-s", "48x40", "-i", "-",
                    "-c:v", "libopenjpeg", "-numresolution", "3", "-format", "jp2", "-y", str(tmp_path / "c.jp2")],
                   input=ink.tobytes(), check=True)  # fmt: skip
    data = bytearray((tmp_path / "c.jp2").read_bytes())
    at = data.find(b"colr")
    data[at + 7 : at + 11] = (12).to_bytes(4, "big")  # its colour space: CMYK (the encoder says sRGB)
    (tmp_path / "cmyk.jp2").write_bytes(data)
    want = Image.frombytes("CMYK", (48, 40), ((ink.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8).tobytes())
    assert np.array_equal(read_image(tmp_path / "cmyk.jp2").pixels, np.asarray(want.convert("RGB")))


def test_qoi_keeps_alpha_and_takes_gray_as_rgb(tmp_path: Path) -> None:
    """QOI (lossless, RGB or RGBA only): alpha kept; a gray picture written in three equal channels."""
    rgba = np.dstack([SMOOTH, SMOOTH[..., 0]])
    assert write_image(tmp_path / "a.qoi", Picture(SMOOTH, alpha=SMOOTH[..., 0].copy())) == []
    back = read_image(tmp_path / "a.qoi")
    assert back.source_format == "QOI" and np.array_equal(np.dstack([back.pixels, back.alpha]), rgba)
    write_image(tmp_path / "g.qoi", Picture(SMOOTH[..., :1].copy()))
    with Image.open(tmp_path / "g.qoi") as im:
        assert im.mode == "RGB" and np.array_equal(np.asarray(im), np.repeat(SMOOTH[..., :1], 3, axis=2))


def test_a_profile_a_format_cannot_hold_is_said_to_be_left_out(tmp_path: Path) -> None:
    """A picture in a wide-gamut profile written as BMP, TGA, PPM, QOI or JPEG 2000 (formats without a profile here)
    gets a note that its colours show as sRGB's; an sRGB profile, or a format that keeps the profile, gets none."""
    from test_icc import P3, SRGB, SRGB_CURVE, para, profile

    wide = profile(P3, para(3, *SRGB_CURVE))
    said = ("output holds no colour profile: the picture's ICC profile is left out, so its colours show as sRGB's; "
            "a PNG, TIFF, JPEG, WebP, AVIF, HEIC or JPEG XL output keeps it")
    for suffix, fmt in ((".bmp", "BMP"), (".tga", "TGA"), (".ppm", "PPM"), (".qoi", "QOI"), (".jp2", "JPEG2000")):
        notes = write_image(tmp_path / f"p3{suffix}", Picture(SMOOTH, icc=wide))
        assert [n for n in notes if "profile" in n] == [f"{fmt} {said}"]
        assert write_image(tmp_path / f"srgb{suffix}", Picture(SMOOTH, icc=SRGB)) == []
    assert write_image(tmp_path / "p3.png", Picture(SMOOTH, icc=wide)) == []


def _png_texts(path: Path) -> list[tuple[str, str]]:
    """A PNG's text chunks in file order (keyword, text), every one: tEXt, zTXt and iTXt, uncompressed or not."""
    data, at, out = path.read_bytes(), 8, []
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + size]
        key, _, rest = body.partition(b"\x00")
        if kind == b"tEXt":
            out.append((key.decode("latin-1"), rest.decode("latin-1")))
        elif kind == b"zTXt":
            out.append((key.decode("latin-1"), zlib.decompress(rest[1:]).decode("latin-1")))
        elif kind == b"iTXt":
            compressed, text = rest[0], rest[2:].split(b"\x00", 2)[2]
            out.append((key.decode("latin-1"), (zlib.decompress(text) if compressed else text).decode("utf-8")))
        at += 12 + size
    return out


def _iim(*datasets: tuple[int, bytes]) -> bytes:
    """An IPTC record: each dataset 0x1C, record 2, its number, its length, its bytes."""
    return b"".join(b"\x1c\x02" + bytes([n]) + struct.pack(">H", len(v)) + v for n, v in datasets)


def test_the_iptc_record_is_carried_into_jpeg_and_tiff(tmp_path: Path) -> None:
    """A JPEG's IPTC record (Photoshop's APP13: caption, byline, keywords), which news agencies and Photo Mechanic
    read, is carried into JPEG (with its MD5 digest, which Photoshop checks) and TIFF outputs, from a TIFF too whose
    IPTC-NAA tag is stored as 32-bit integers as Photoshop writes it (read without Pillow's warning); another
    Photoshop resource (the old print resolution) is not; ``stripped`` drops it; a record too long for one segment is
    split over several, each marked as Photoshop's."""
    import hashlib
    import warnings

    import tifffile
    from PIL import IptcImagePlugin

    from classsr_cli.io.image import _app13

    iptc = _iim((0, b"\x00\x04"), (120, b"Sunset over the bay"), (80, b"Jane Doe"), (25, b"sea"), (25, b"sunset"))
    want = {(2, 0): b"\x00\x04", (2, 120): b"Sunset over the bay", (2, 80): b"Jane Doe", (2, 25): [b"sea", b"sunset"]}
    res = b"8BIM\x03\xed\x00\x00" + struct.pack(">I", 16) + bytes(16)  # ResolutionInfo, stale after an upscale
    res += b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc + b"\x00" * (len(iptc) % 2)
    buf = io.BytesIO()
    Image.fromarray(RGB).save(buf, "JPEG")
    src = tmp_path / "news.jpg"
    payload = b"Photoshop 3.0\x00" + res
    src.write_bytes(buf.getvalue()[:2] + b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload + buf.getvalue()[2:])
    picture = read_image(src)
    assert picture.iptc == iptc
    padded = iptc + b"\x00" * (-len(iptc) % 4)
    photoshop = tmp_path / "ps.tif"  # IPTC-NAA as LONGs, big-endian as a Mac Photoshop writes it
    tifffile.imwrite(photoshop, RGB, byteorder=">", photometric="rgb",
                     extratags=[(33723, 4, len(padded) // 4, struct.unpack(f">{len(padded) // 4}I", padded), True)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(photoshop).iptc == padded
    for name in ("out.jpg", "out.tif"):
        write_image(tmp_path / name, picture)
        with Image.open(tmp_path / name) as im:
            assert IptcImagePlugin.getiptcinfo(im) == want, name
            if name.endswith(".jpg"):
                assert set(im.info["photoshop"]) == {0x0404, 0x0425}
                assert im.info["photoshop"][0x0425] == hashlib.md5(iptc).digest()
        assert read_image(tmp_path / name).iptc == iptc
    # other formats hold none: said where there is no XMP, which editors fill with the same fields (IPTC Core)
    assert write_image(tmp_path / "out.webp", picture) == ["WEBP holds no IPTC record: its caption, keywords and "
                                                           "credits (IPTC-IIM) are left out; a JPEG or TIFF output "
                                                           "keeps them"]  # fmt: skip
    assert write_image(tmp_path / "xmp.webp", Picture(RGB, iptc=iptc, xmp=b"<x:xmpmeta/>")) == []
    write_image(tmp_path / "bare.jpg", picture.stripped())
    with Image.open(tmp_path / "bare.jpg") as im:
        assert "photoshop" not in im.info
    long = _iim(*[(25, b"k" * 60000)] * 3)
    segments = _app13(long)
    parts = []
    at = 0
    while at < len(segments):
        assert segments[at : at + 2] == b"\xff\xed"
        size = struct.unpack(">H", segments[at + 2 : at + 4])[0]
        assert segments[at + 4 : at + 18] == b"Photoshop 3.0\x00"
        parts.append(segments[at + 18 : at + 2 + size])
        at += 2 + size
    stream = b"".join(parts)
    assert len(parts) == 3 and stream[:4] == b"8BIM" and stream[12 : 12 + len(long)] == long


def test_a_jpegs_comments_are_kept_before_the_record_and_go_into_png_as_comment_text(tmp_path: Path) -> None:
    """A JPEG's comments (two COM segments, one Latin-1) were replaced by the record of the upscale. They are kept
    before it in a JPEG output, as one ``Comment`` text in a PNG one (and back into a JPEG from there); a record of an
    earlier upscale is not kept beside this run's; ``stripped`` drops them; a WebP output says it leaves them out, as
    it says of a PNG's other text."""
    buf = io.BytesIO()
    Image.fromarray(RGB).save(buf, "JPEG", comment=b'classsr {"version": "0.0.9"}')
    data = buf.getvalue()
    com = b"".join(b"\xff\xfe" + struct.pack(">H", len(c) + 2) + c for c in (b"Shot by Ana", b"Caf\xe9 at dawn"))
    src = tmp_path / "cafe.jpg"
    src.write_bytes(data[:2] + com + data[2:])
    picture = replace(read_image(src), made_by='{"version": "now"}')
    assert picture.comments == (b"Shot by Ana", b"Caf\xe9 at dawn")
    write_image(tmp_path / "out.jpg", picture)
    with Image.open(tmp_path / "out.jpg") as im:
        assert [s for m, s in im.applist if m == "COM"] == [b"Shot by Ana", b"Caf\xe9 at dawn", b'classsr {"version": "now"}']
    write_image(tmp_path / "out.png", picture)
    with Image.open(tmp_path / "out.png") as im:
        assert im.text["Comment"] == "Shot by Ana\nCafé at dawn"  # one chunk: readers keep one of a keyword's
    assert [c for k, c in _png_texts(tmp_path / "out.png") if k == "Comment"] == ["Shot by Ana\nCafé at dawn"]
    write_image(tmp_path / "again.jpg", read_image(tmp_path / "out.png"))
    with Image.open(tmp_path / "again.jpg") as im:
        assert [s for m, s in im.applist if m == "COM"] == ["Shot by Ana\nCafé at dawn".encode()]
    write_image(tmp_path / "bare.jpg", picture.stripped())
    with Image.open(tmp_path / "bare.jpg") as im:
        assert [m for m, _ in im.applist if m == "COM"] == []
    assert write_image(tmp_path / "out.webp", picture) == ["WEBP output holds no comment: the picture's comment is "
                                                           "left out; a JPEG or PNG output keeps it"]  # fmt: skip
    write_image(tmp_path / "long.jpg", Picture(RGB, text=(PngText("Comment", "é" * 40_000),)))  # 80,000 bytes
    with Image.open(tmp_path / "long.jpg") as im:
        parts = [s for m, s in im.applist if m == "COM"]
        assert [len(p) for p in parts] == [65532, 14468] and [p.decode() for p in parts] == ["é" * 32766, "é" * 7234]
    # a PNG's other text: said where left out (not its Software, nor ImageMagick's file times)
    texts = (PngText("Title", "Harbour"), PngText("Author", "Ana"), PngText("Comment", "dawn"),
             PngText("Software", "GIMP"), PngText("date:create", "2026-01-01T00:00:00"))  # fmt: skip
    assert write_image(tmp_path / "text.jpg", Picture(RGB, text=texts)) == [
        "JPEG output holds no PNG text: its Title and Author are left out; a PNG output keeps them"]
    assert write_image(tmp_path / "text.webp", Picture(RGB, text=texts[2:])) == [
        "WEBP output holds no PNG text: its Comment is left out; a PNG output keeps it"]
    assert write_image(tmp_path / "text.png", Picture(RGB, text=texts)) == []
    assert write_image(tmp_path / "bare.webp", Picture(RGB, text=texts[3:])) == []


@pytest.mark.parametrize("wrapped", [False, True])
def test_imagemagicks_raw_iptc_profile_in_a_png_is_carried_into_jpeg(tmp_path: Path, wrapped: bool) -> None:
    """ImageMagick keeps a JPEG's IPTC record in a PNG as "Raw profile type iptc" text (hexadecimal, compressed), the
    datasets alone or inside Photoshop's resources: read as the IPTC record, so a JPEG or TIFF output of the PNG
    carries the caption and keywords (they were said to be left out with the PNG's text); a PNG output keeps the
    text; a damaged profile is no record."""
    from PIL import IptcImagePlugin, PngImagePlugin

    iptc = _iim((0, b"\x00\x04"), (120, b"Harbour at dawn"), (25, b"sea"))
    data = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc + b"\x00" * (len(iptc) % 2) if wrapped else iptc
    hexed = data.hex()
    raw = "\niptc\n" + f"{len(data):8d}\n" + "\n".join(hexed[k : k + 72] for k in range(0, len(hexed), 72)) + "\n"
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type iptc", raw, zip=True)
    info.add_text("Title", "Harbour")
    src = tmp_path / "magick.png"
    Image.fromarray(RGB).save(src, pnginfo=info)
    picture = read_image(src)
    assert picture.iptc == iptc
    assert write_image(tmp_path / "out.jpg", picture) == [
        "JPEG output holds no PNG text: its Title is left out; a PNG output keeps it"]
    with Image.open(tmp_path / "out.jpg") as im:
        assert IptcImagePlugin.getiptcinfo(im)[(2, 120)] == b"Harbour at dawn"
    write_image(tmp_path / "out.png", picture)
    assert read_image(tmp_path / "out.png").iptc == iptc
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type iptc", raw.replace(f"{len(data):8d}", f"{len(data) + 1:8d}"), zip=True)
    Image.fromarray(RGB).save(tmp_path / "damaged.png", pnginfo=info)
    assert read_image(tmp_path / "damaged.png").iptc is None


def test_an_xmp_too_long_for_a_jpeg_header_is_split_into_standard_and_extended_xmp(tmp_path: Path) -> None:
    """A PNG's 170 kB XMP (a Photoshop document's history, photoshop:DocumentAncestors) into a JPEG, whose APP1 holds
    65,502 bytes of it: Pillow refused it ("XMP data is too long", an internal error). It is split as the XMP
    specification says: the StandardXMP keeps the title and names the ExtendedXMP by its MD5 digest; the history goes
    to the ExtendedXMP, in APP1 segments that say its length and each part's offset. XMP that cannot be split (one
    long attribute) is left out, with a note."""
    import hashlib
    from xml.parsers import expat

    from PIL import PngImagePlugin

    ancestors = b"".join(b"<rdf:li>xmp.did:%032d</rdf:li>" % i for i in range(3000))
    xmp = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
           b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
           b'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/">'
           b'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Harbor</rdf:li></rdf:Alt></dc:title><photoshop:Flag/>'
           b"<photoshop:DocumentAncestors><rdf:Bag>" + ancestors + b"</rdf:Bag></photoshop:DocumentAncestors>"
           b'</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
    assert len(xmp) > 170_000
    src = tmp_path / "doc.png"
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp.decode())
    Image.fromarray(RGB).save(src, pnginfo=info)
    assert write_image(tmp_path / "out.jpg", read_image(src)) == []
    data = (tmp_path / "out.jpg").read_bytes()
    with Image.open(tmp_path / "out.jpg") as im:
        standard = im.info["xmp"]
    assert b">Harbor<" in standard and b"<photoshop:Flag/>" in standard and b"DocumentAncestors" not in standard
    guid = re.search(rb'xmpNote:HasExtendedXMP="([0-9A-F]{32})"', standard)
    assert guid is not None
    marker = b"http://ns.adobe.com/xmp/extension/\x00" + guid.group(1)
    parts, at = {}, data.find(marker)
    while at >= 0:
        size = struct.unpack(">H", data[at - 2 : at])[0]
        total, offset = struct.unpack(">II", data[at + len(marker) : at + len(marker) + 8])
        parts[offset] = data[at + len(marker) + 8 : at - 2 + size]
        at = data.find(marker, at + 1)
    extended = b"".join(parts[k] for k in sorted(parts))
    assert len(parts) == 3 and len(extended) == total and hashlib.md5(extended).hexdigest().upper() == guid.group(1).decode()
    expat.ParserCreate().Parse(extended, True)
    assert ancestors in extended and b"Harbor" not in extended
    back = read_image(tmp_path / "out.jpg").xmp  # read back: its ExtendedXMP joined to the StandardXMP, no longer named
    assert back is not None and b">Harbor<" in back and ancestors in back and b"HasExtendedXMP" not in back
    expat.ParserCreate().Parse(back, True)
    write_image(tmp_path / "again.png", read_image(tmp_path / "out.jpg"))  # a PNG holds it whole
    with Image.open(tmp_path / "again.png") as im:
        assert im.info["xmp"] == back
    torn = data.replace(ancestors[:40], b"x" * 40, 1)  # a portion that no longer adds up to the digest: not joined
    (tmp_path / "torn.jpg").write_bytes(torn)
    assert read_image(tmp_path / "torn.jpg").xmp == standard
    write_image(tmp_path / "torn.png", read_image(tmp_path / "torn.jpg"))  # the StandardXMP, its note taken out
    with Image.open(tmp_path / "torn.png") as im:
        assert b">Harbor<" in im.info["xmp"] and b"HasExtendedXMP" not in im.info["xmp"]
    # as Photoshop writes it: a Description of attributes alone (self-closed) first, the history in another
    from classsr_cli.io.xmp import split

    rdf = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    parts2 = split(rdf + b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="PS"/>'
                   b'<rdf:Description rdf:about="" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/">'
                   b"<photoshop:DocumentAncestors><rdf:Bag>" + ancestors + b"</rdf:Bag></photoshop:DocumentAncestors>"
                   b"</rdf:Description></rdf:RDF></x:xmpmeta>")  # fmt: skip
    assert parts2 is not None and parts2[1] is not None
    assert b'xmp:CreatorTool="PS" xmlns:xmpNote="http://ns.adobe.com/xmp/note/" xmpNote:HasExtendedXMP="' in parts2[0]
    assert parts2[0].count(b"/>") == 1 and b'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"' in parts2[1]
    long = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' \
           b'<rdf:Description rdf:about="" xmlns:a="urn:a" a:b="' + b"x" * 70_000 + b'"/></rdf:RDF></x:xmpmeta>'
    notes = write_image(tmp_path / "long.jpg", Picture(RGB, xmp=long))
    assert notes == ["the XMP (70 kB) is too long for a JPEG's header and could not be split into a StandardXMP and an "
                     "ExtendedXMP: left out; a PNG, TIFF, WebP, AVIF, HEIC or JPEG XL output keeps it"]
    with Image.open(tmp_path / "long.jpg") as im:
        assert "xmp" not in im.info


def test_an_exif_too_long_for_a_jpeg_header_leaves_its_maker_note_out(tmp_path: Path) -> None:
    """A PNG's 70 kB EXIF (a camera's maker note) into a JPEG, whose APP1 holds 65,533 bytes of it: Pillow refused it
    ("EXIF data is too long", an internal error). The maker note is left out, with a note, the rest kept (the camera
    model); an EXIF too long without it is left out whole, with a note; a WebP output keeps it whole."""
    exif = Image.Exif()
    exif[0x0110] = "EOS R5"  # Model
    exif.get_ifd(0x8769)[0x927C] = b"M" * 70_000  # MakerNote
    src = tmp_path / "raw.png"
    Image.fromarray(RGB).save(src, exif=exif.tobytes())
    picture = read_image(src)
    notes = write_image(tmp_path / "out.jpg", picture)
    assert notes == ["the EXIF (70 kB) is too long for a JPEG's header (65.5 kB): its maker note left out; a PNG, TIFF, "
                     "WebP, AVIF, HEIC or JPEG XL output keeps it whole"]
    with Image.open(tmp_path / "out.jpg") as im:
        got = im.getexif()
        assert got[0x0110] == "EOS R5" and 0x927C not in got.get_ifd(0x8769)
    assert write_image(tmp_path / "out.webp", picture) == []
    with Image.open(tmp_path / "out.webp") as im:
        assert im.getexif().get_ifd(0x8769)[0x927C] == b"M" * 70_000
    huge = Image.Exif()
    huge[0x010E] = "d" * 70_000  # ImageDescription: not the camera's bulk
    notes = write_image(tmp_path / "huge.jpg", Picture(RGB, exif=huge.tobytes()))
    assert notes and notes[0].endswith("too long for a JPEG's header (65.5 kB): left out; a PNG, TIFF, WebP, AVIF, "
                                       "HEIC or JPEG XL output keeps it whole")
    with Image.open(tmp_path / "huge.jpg") as im:
        assert not im.getexif()


def test_a_panoramas_sizes_are_scaled_and_whether_it_goes_all_the_way_round() -> None:
    """Photo Sphere XMP (``GPano``), as attributes or elements: its pixel sizes scaled with the picture (across by
    the width's factor, down by the height's, the crop's place too), other properties left; it goes round where it is
    equirectangular and its cropped area is as wide as the full panorama (however the numbers are written), not a
    partial panorama, a cylinder, a malformed width or no XMP."""
    from classsr_cli.io.image import _xmp_for_output, full_circle

    def pano(projection: str, full: str, cropped: str) -> bytes:
        return ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                '<rdf:Description rdf:about="" xmlns:GPano="http://ns.google.com/photos/1.0/panorama/" '
                f'GPano:ProjectionType="{projection}" GPano:FullPanoWidthPixels="{full}" GPano:PoseHeadingDegrees="90">'
                f"<GPano:CroppedAreaImageWidthPixels>{cropped}</GPano:CroppedAreaImageWidthPixels>"
                "<GPano:CroppedAreaImageHeightPixels>1000</GPano:CroppedAreaImageHeightPixels>"
                "<GPano:FullPanoHeightPixels>2000</GPano:FullPanoHeightPixels>"
                "<GPano:CroppedAreaTopPixels>500</GPano:CroppedAreaTopPixels>"
                "</rdf:Description></rdf:RDF></x:xmpmeta>").encode()  # fmt: skip

    out = _xmp_for_output(pano("equirectangular", "4000", "3000"), 12000, 4000)
    assert out is not None
    for name, value in (("FullPanoWidthPixels", "16000"), ("PoseHeadingDegrees", "90")):
        assert f'GPano:{name}="{value}"'.encode() in out, name
    for name, value in (("CroppedAreaImageWidthPixels", 12000), ("CroppedAreaImageHeightPixels", 4000),
                        ("FullPanoHeightPixels", 8000), ("CroppedAreaTopPixels", 2000)):  # fmt: skip
        assert f"<GPano:{name}>{value}</GPano:{name}>".encode() in out, name
    assert full_circle(pano("equirectangular", "4000", "4000.0")) and full_circle(pano("Equirectangular", "8", "8"))
    assert not full_circle(pano("equirectangular", "4000", "3000")) and not full_circle(pano("cylindrical", "8", "8"))
    assert not full_circle(pano("equirectangular", "wide", "8")) and not full_circle(None)


@pytest.mark.slow
def test_a_10_bit_avifs_chroma_is_upsampled_smoothly(tmp_path: Path) -> None:
    """A 10-bit AVIF (4:2:0), which classsr reads through the bundled ffmpeg, has its chroma upsampled by bicubic
    interpolation with exact rounding, as ``classsr video`` converts frames: swscale's default repeated each chroma
    sample, more than 2 levels RMS from the picture written (smooth colour waves; this fails on the code before)."""
    y, x = np.mgrid[0:48, 0:64]
    waves = np.dstack([128 + 90 * np.sin(x / 5.0), 128 + 90 * np.cos(y / 4.0), 128 + 90 * np.sin((x + y) / 6.0)])
    deep = np.clip(np.round(waves * 257), 0, 65535).astype(np.uint16)
    write_image(tmp_path / "a.avif", Picture(deep))
    back = read_image(tmp_path / "a.avif")
    assert back.depth == 10 and float(np.sqrt(((back.pixels.astype(float) - deep) ** 2).mean())) < 2 * 257


def test_a_10_bit_avif_is_coded_and_read_at_the_levels_it_holds(tmp_path: Path) -> None:
    """swscale codes about 65280 of 16-bit RGB as white and centres full-range chroma half a code low: classsr's
    10-bit AVIFs (full range) held a level of 600 of 1023 as 602, white over white, and gray as a faint green (Cb and
    Cr 511); and it read a 10-bit AVIF's white as 65283 (limited range) or 65472 (full). Now coded as the levels are
    and read back as stored, as libavif does (both fail on the code before)."""
    from classsr_cli.io.video import ffmpeg_exe

    level = round(600 / 1023 * 65535)
    gray = np.full((32, 64, 3), level, np.uint16)
    gray[16:, 32:] = 65535
    write_image(tmp_path / "g.avif", Picture(gray), quality=100)
    coded = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(tmp_path / "g.avif"), "-f", "rawvideo", "-pix_fmt",
                            "yuv444p10le", "-"], capture_output=True, check=True, timeout=60).stdout  # fmt: skip
    y, cb, cr = np.frombuffer(coded, "<u2").reshape(3, 32, 64).astype(int)
    assert abs(int(np.median(y[:16])) - 600) <= 1 and np.median(y[16:, 32:]) == 1023
    assert np.median(cb) == np.median(cr) == 512
    for rng in ("pc", "tv"):  # every 10-bit luma code, written by ffmpeg
        black, white = (0, 1023) if rng == "pc" else (64, 940)
        luma = np.append(np.arange(black, white + 1), [white] * (1024 - (white - black + 1))).reshape(32, 32)
        planes = np.concatenate([luma.ravel(), np.full(2 * luma.size, 512)]).astype("<u2")
        subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "yuv444p10le", "-s", "32x32",
                        "-i", "-", "-vf", f"setparams=range={rng}:colorspace=bt709", "-color_range", rng, "-c:v",
                        "libaom-av1", "-crf", "0", "-still-picture", "1", "-f", "avif", str(tmp_path / f"{rng}.avif")],
                       input=planes.tobytes(), check=True, timeout=120)  # fmt: skip
        read = read_image(tmp_path / f"{rng}.avif")
        assert read.depth == 10 and read.pixels[-1, -1].tolist() == [65535] * 3, rng
        assert np.abs(read.pixels[..., 1] - (luma - black) / (white - black) * 65535).max() < 2, rng


@pytest.mark.parametrize("rows", [7, 8])
def test_a_10_bit_avif_of_7_or_8_rows_is_read_as_written(tmp_path: Path, rows: int) -> None:
    """The bundled ffmpeg's swscale gives a 4:2:0 picture of 7 or 8 rows in 16-bit RGB with every row after the first
    at full scale (gdk-pixbuf's 8x8 test picture came out green): such a picture is read right (by way of 4:4:4)."""
    y, x = np.mgrid[0:rows, 0:24]
    colour = np.dstack([60 + 8 * x, 200 - 10 * y, np.full_like(x, 90)]).astype(np.uint16) * 257
    write_image(tmp_path / "a.avif", Picture(colour))
    back = read_image(tmp_path / "a.avif")
    assert back.depth == 10 and np.abs(back.pixels.astype(int) - colour).max() < 6 * 257


def test_a_12_bit_picture_into_avif_is_written_at_12_bits(tmp_path: Path) -> None:
    """A 12-bit AVIF or HEIC (a camera's or an HDR photo's depth) into AVIF keeps its 12 bits, without a note (it was
    rounded to 10, said), its alpha at 12 too (libavif reads colour and alpha of one depth); 16 bits from elsewhere
    are written at 10, said, as before."""
    import subprocess

    import pillow_heif

    from classsr_cli.io.image import _avif_bits
    from classsr_cli.io.video import ffmpeg_exe

    ramp = (np.arange(4096) * 16).astype(np.uint16)[None, :, None].repeat(4, 0)  # every 12-bit level, gray
    write_image(tmp_path / "ramp.png", Picture(ramp))
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(tmp_path / "ramp.png"), "-frames:v", "1", "-c:v",
                    "libaom-av1", "-crf", "0", "-pix_fmt", "gray12le", "-still-picture", "1", "-f", "avif",
                    str(tmp_path / "src.avif")], check=True, timeout=120)  # fmt: skip
    src = read_image(tmp_path / "src.avif")
    assert src.depth == 12 and len(np.unique(src.pixels)) > 4000
    assert write_image(tmp_path / "out.avif", src, quality=100) == []  # nothing rounded: nothing to say
    assert _avif_bits(tmp_path / "out.avif") == 12
    back = read_image(tmp_path / "out.avif")
    assert back.depth == 12 and len(np.unique(back.pixels)) > 2000  # (10 bits hold 1,024 levels)
    assert np.abs(back.pixels.astype(int) - ramp).mean() < 0.15 * 257
    y, x = np.mgrid[0:48, 0:64]
    deep = np.stack([x * 1000, y * 1300, (x + y) * 550], -1).astype(np.uint16)
    alpha = (x * 1000 + 500).astype(np.uint16)
    assert write_image(tmp_path / "a.avif", Picture(deep, alpha=alpha, depth=12)) == []
    assert _avif_bits(tmp_path / "a.avif") == 12
    with Image.open(tmp_path / "a.avif") as im:  # (libavif: colour and alpha of one depth, or it refuses the file)
        assert im.mode == "RGBA" and np.abs(np.asarray(im)[..., 3].astype(int) - alpha // 257).max() <= 1
    withalpha = read_image(tmp_path / "a.avif")
    assert withalpha.alpha is not None and np.abs(withalpha.alpha.astype(int) - alpha).max() <= 257
    saved, pillow_heif.options.SAVE_HDR_TO_12_BIT = pillow_heif.options.SAVE_HDR_TO_12_BIT, True
    try:
        pillow_heif.from_bytes(mode="RGB;16", size=(64, 48), data=deep.tobytes()).save(tmp_path / "t.heic", quality=-1)
    finally:
        pillow_heif.options.SAVE_HDR_TO_12_BIT = saved
    assert write_image(tmp_path / "h.avif", read_image(tmp_path / "t.heic")) == []  # a 12-bit HEIC alike
    assert _avif_bits(tmp_path / "h.avif") == 12
    assert write_image(tmp_path / "p.avif", Picture(deep)) == [
        "AVIF is written at 10 bits per channel here: 16-bit output rounded to 10"]
    assert _avif_bits(tmp_path / "p.avif") == 10


def test_what_pillow_raises_or_warns_on_a_damaged_file_is_said_in_classsrs_words(tmp_path: Path) -> None:
    """Pillow's plugins raise a ``TypeError`` on a TIFF whose second page lacks its size and a
    ``NotImplementedError`` on a DDS of a DXGI format they do not decode: each an :class:`InputError` naming the file
    (they ended the run as "internal error"). What Pillow warns of while reading (a damaged EXIF) becomes the picture's
    notes, once each, not Python warnings on stderr (nor warned of when only the header is read). Found by reading
    Pillow's own test images (``scripts/read_sweep.py``)."""
    import warnings

    from classsr_cli.errors import InputError

    coded = io.BytesIO()
    Image.fromarray(RGB).save(coded, format="TIFF")
    data = bytearray(coded.getvalue())
    ifd = struct.unpack("<I", data[4:8])[0]
    after = ifd + 2 + 12 * struct.unpack("<H", data[ifd : ifd + 2])[0]
    data[after : after + 4] = struct.pack("<I", len(data))  # a second page: compression alone, no size
    (tmp_path / "pages.tif").write_bytes(bytes(data) + struct.pack("<HHHII", 1, 259, 3, 1, 1) + bytes(4))
    with pytest.raises(InputError, match=r"pages\.tif: truncated or corrupt image \(Missing dimensions\)"):
        read_image(tmp_path / "pages.tif")
    pixel_format = struct.pack("<II4s5I", 32, 0x4, b"DX10", 0, 0, 0, 0, 0)
    header = struct.pack("<7I", 124, 0x1007, 4, 4, 0, 0, 1) + bytes(44) + pixel_format + struct.pack("<5I", 0x1000, 0, 0, 0, 0)
    uint = struct.pack("<5I", 12, 3, 0, 1, 0)  # R16G16B16A16_UINT (R16_UNORM, which this example was, is read now)
    (tmp_path / "uint.dds").write_bytes(b"DDS " + header + uint + bytes(128))
    with pytest.raises(InputError, match=r"uint\.dds: a kind of DDS this Pillow .* does not decode \(Unimplemented DXGI"):
        read_image(tmp_path / "uint.dds")
    exif = Image.Exif()
    exif[0x010F] = "Camera"
    raw = bytearray(exif.tobytes())
    raw[6 + 8 : 6 + 10] = struct.pack("<H", 5)  # IFD0 says 5 entries and holds 1: Pillow's "Corrupt EXIF data"
    Image.fromarray(RGB).save(tmp_path / "bad_exif.jpg", exif=bytes(raw))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pic = read_image(tmp_path / "bad_exif.jpg")
    assert [w for w in caught if issubclass(w.category, UserWarning)] == []
    said = [n for n in pic.notes if n.startswith("Pillow warns: Corrupt EXIF data")]
    assert len(said) == 1 and len(pic.notes) == len(set(pic.notes))
    with warnings.catch_warnings(record=True) as caught:  # nor from the header alone (a dry run)
        warnings.simplefilter("always")
        assert peek_size(tmp_path / "bad_exif.jpg") == RGB.shape[:2]
    assert [w for w in caught if issubclass(w.category, UserWarning)] == []


def test_a_png_text_named_exif_is_carried_as_the_exif(tmp_path: Path) -> None:
    """A PNG whose EXIF is a text chunk named ``exif`` (which Pillow reads as its EXIF): the EXIF is carried as EXIF,
    not written back as a text chunk too, which Pillow then read as the output's EXIF and failed on (a TypeError)."""
    from PIL import PngImagePlugin

    exif = Image.Exif()
    exif[0x010F] = "Camera"
    info = PngImagePlugin.PngInfo()
    info.add_text("exif", exif.tobytes().decode("latin-1"))
    Image.fromarray(RGB).save(tmp_path / "a.png", pnginfo=info)
    pic = read_image(tmp_path / "a.png")
    assert [t.keyword for t in pic.text] == []
    write_image(tmp_path / "b.png", pic)
    back = read_image(tmp_path / "b.png")
    assert back.exif is not None and b"Camera" in back.exif and back.text == ()


def test_a_deep_gray_avif_of_limited_range_is_read_as_libavif_shows_it(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A 10-bit gray AVIF of limited ("tv") range (the AV1 test files' monochrome ones, which libavif shows black to
    white): ffmpeg gives its levels as stored (black 64, white 940 of 1,023), which classsr read as they came, washed
    out; now expanded to full range, where ffmpeg's log says the range is limited. (ffmpeg's
    libaom writes every gray AVIF as full range, so the decode is stood in for: its levels and its log line as
    ffmpeg gives them for Link-U's fox.profile0.10bpc.yuv420.monochrome.avif.)"""
    from classsr_cli.io import image as io_image

    stored = np.linspace(64, 940, 96).round()
    levels = np.rint(np.tile(stored, (8, 1)) * 65535 / 1023).astype(np.uint16)[..., None]  # (stretched, as ffmpeg's)
    log = ("  Stream #0:0[0x1]: Video: av1 (libdav1d) (Main) (av01 / 0x31307661), gray10le(tv, smpte170m/bt709/"
           "iec61966-2-1), 96x8 [SAR 1:1 DAR 12:1], 1 fps, 1 tbr, 1 tbn (default)")  # fmt: skip
    monkeypatch.setattr(io_image, "_ffmpeg16", lambda *a, **k: (levels.copy(), log))
    colour, _, _ = io_image._read_avif16(tmp_path / "gray.avif", Image.new("L", (96, 8)))  # type: ignore[misc]
    assert colour.min() == 0 and colour.max() == 65535  # black and white, not 16 and 235
    want = np.clip((np.tile(stored, (8, 1)) - 64) / 876, 0, 1) * 65535
    assert np.abs(colour[..., 0].astype(np.float64) - want).max() < 2  # (the stretch's rounding)
    full = log.replace("(tv,", "(pc,")  # full range: as it came
    monkeypatch.setattr(io_image, "_ffmpeg16", lambda *a, **k: (levels.copy(), full))
    assert np.array_equal(io_image._read_avif16(tmp_path / "gray.avif", Image.new("L", (96, 8)))[0], levels)  # type: ignore[index]


def test_a_heic_with_a_damaged_exif_is_read_without_it_and_a_heif_sequence_names_classsr_video(tmp_path: Path) -> None:
    """A HEIC whose EXIF item holds no TIFF header (the HEIF conformance files' C034) was refused as "truncated or
    corrupt" (Pillow's getexif raised): its picture is read, the EXIF left out, said. A HEIF image sequence alone
    (brand msf1: a track, no still picture; C026 and ten more), which libheif does not open, was "truncated or
    corrupt" too: refused naming `classsr video`, which reads it. A stereo group whose right eye is no image libheif
    gives (multilayer005's, a layer) is read as one picture."""
    from classsr_cli.errors import InputError
    from classsr_cli.io import bmff, heifbox

    coded = io.BytesIO()
    Image.fromarray(RGB).save(coded, format="HEIF", quality=90)
    (tmp_path / "bad.heic").write_bytes(heifbox.add_metadata(coded.getvalue(), exif=b"\x00\x05\x01\x1a" * 8))
    pic = read_image(tmp_path / "bad.heic")
    assert pic.pixels.shape == RGB.shape and pic.exif is None
    assert [n for n in pic.notes if n.startswith("its EXIF does not read (")] and len(pic.notes) == 1
    meta, start, end, _ = heifbox._primary_image(heifbox.add_metadata(coded.getvalue(), exif=Image.Exif().tobytes()),
                                                 coded=False)  # fmt: skip
    exif_item = next(i for i, kind in map(heifbox._infe, meta.infe) if kind == b"Exif")
    heifbox._grouped(meta, b"ster", (meta.primary, exif_item))  # a stereo group whose right eye is no image libheif
    data = heifbox.add_metadata(coded.getvalue(), exif=Image.Exif().tobytes())  # gives (multilayer005: a layer)
    (tmp_path / "layer.heic").write_bytes(heifbox._written(data, meta, start, end))
    one = read_image(tmp_path / "layer.heic")  # (it ended as "internal error")
    assert one.stereo is None and one.pixels.shape == RGB.shape
    sequence = bmff.box(b"ftyp", b"msf1" + bytes(4) + b"msf1hevciso8") + bmff.box(b"moov", bmff.box(b"mvhd", bytes(100)))
    (tmp_path / "burst.heic").write_bytes(sequence + bmff.box(b"mdat", bytes(64)))
    with pytest.raises(InputError, match=r"burst\.heic: a HEIF image sequence .*`classsr video burst\.heic burst_x4\.mp4`"):
        read_image(tmp_path / "burst.heic")


def lossless_jpeg(levels: np.ndarray, bits: int, app: bytes = b"") -> bytes:
    """A lossless JPEG (``SOF3``, predictor 1: the sample to the left, as DNG's and medical files' are coded) of the
    gray ``levels`` (H, W) of ``bits``; ``app``: segments before its frame header (EXIF, comments)."""
    lv = levels.astype(np.int64)
    guess = np.empty_like(lv)
    guess[0, 0], guess[0, 1:], guess[1:, 0], guess[1:, 1:] = 1 << (bits - 1), lv[0, :-1], lv[:-1, 0], lv[1:, :-1]
    diff = (lv - guess) % 65536
    code = []
    for d in np.where(diff > 32768, diff - 65536, diff).ravel().tolist():  # each: its size's code (5 bits), its bits
        size = abs(d).bit_length()
        code.append(format(size, "05b") + (format(d if d > 0 else d - 1 + (1 << size), f"0{size}b") if 0 < size < 16 else ""))
    stream = "".join(code)
    stream += "1" * (-len(stream) % 8)
    scan = bytes(int(stream[k : k + 8], 2) for k in range(0, len(stream), 8)).replace(b"\xff", b"\xff\x00")
    table = b"\xff\xc4" + struct.pack(">HB", 36, 0) + bytes([0, 0, 0, 0, 17] + [0] * 11) + bytes(range(17))
    frame = b"\xff\xc3" + struct.pack(">HBHHB", 11, bits, *lv.shape, 1) + bytes([1, 0x11, 0])
    return (b"\xff\xd8" + app + table + frame + b"\xff\xda" + struct.pack(">HB", 8, 1) + bytes([1, 0, 1, 0, 0]) + scan
            + b"\xff\xd9")


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_a_jpeg_pillow_does_not_decode_is_read_by_ffmpeg_at_its_depth(tmp_path: Path, bits: int,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A JPEG of 12 bits a sample (libjpeg-turbo's testimages/monkey12.jpg; medical pictures) or a lossless one (up to
    16 bits) was refused (Pillow does not open it), a lossless one of 8 bits "truncated or corrupt": now its pixels
    come from the bundled ffmpeg, every level as stored (stretched to 0-65535 above 8 bits), decoded once (an 8-bit
    one was decoded at 16, then again at 8), its markers from Pillow (the EXIF orientation applied, a comment
    carried), said in a note."""
    import classsr_cli.io.image as image_io

    decodes: list[bool] = []
    real = image_io._ffmpeg16

    def counted(*args: Any, **kw: Any) -> Any:
        decodes.append(bool(kw.get("eight")))
        return real(*args, **kw)

    monkeypatch.setattr(image_io, "_ffmpeg16", counted)
    levels = np.random.default_rng(bits).integers(0, 1 << bits, (6, 9))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Scanner"
    app = b"\xff\xe1" + struct.pack(">H", 2 + len(exif.tobytes())) + exif.tobytes()  # ("Exif\0\0" and its TIFF)
    app += b"\xff\xfe" + struct.pack(">H", 2 + 5) + b"ward3"
    (tmp_path / "scan.jpg").write_bytes(lossless_jpeg(levels, bits, app))
    pic = read_image(tmp_path / "scan.jpg")
    top = (1 << bits) - 1
    stored = levels if bits == 8 else (levels * 65535 + top // 2) // top
    assert pic.pixels.dtype == (np.uint8 if bits == 8 else np.uint16)
    np.testing.assert_array_equal(pic.pixels[..., 0], np.rot90(stored, -1))  # orientation 6, applied
    assert pic.source_mode == ("L" if bits == 8 else f"L;{bits}") and pic.comments == (b"ward3",)
    carried = Image.Exif()
    carried.load(pic.exif)
    assert carried.get(0x010F) == "Scanner" and 0x0112 not in carried
    assert pic.notes == [f"a lossless JPEG of {bits} bits a sample: decoded by the bundled ffmpeg (Pillow decodes "
                         f"lossy 8-bit JPEGs alone), read at {16 if bits > 8 else 8} bits"]
    assert decodes == [bits == 8]
    assert peek_size(tmp_path / "scan.jpg") == (9, 6)


def test_a_jpeg_beyond_pillow_that_does_not_decode_is_refused_in_one_line(tmp_path: Path) -> None:
    """A 12-bit JPEG ffmpeg cannot give: cut short ("truncated or corrupt", ffmpeg's reason), no scan after its frame
    header (ffmpeg gives a black picture of it: refused, not read as black), two components (no mode for them)."""
    from classsr_cli.errors import InputError

    whole = lossless_jpeg(np.full((16, 16), 3000), 12)
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"cut\.jpg: truncated or corrupt image \(ffmpeg: "):
        read_image(tmp_path / "cut.jpg")
    frame = struct.pack(">HBHHB", 11, 12, 16, 16, 1) + bytes([1, 0x11, 0])  # extended sequential, 12 bits, gray
    (tmp_path / "scan.jpg").write_bytes(b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + bytes(9)
                                        + b"\xff\xc1" + frame + b"\xff\xd9")  # fmt: skip
    with pytest.raises(InputError, match=r"scan\.jpg: truncated or corrupt image \(no scan after its frame header"):
        read_image(tmp_path / "scan.jpg")
    two = struct.pack(">HBHHB", 14, 12, 16, 16, 2) + bytes([1, 0x11, 0, 2, 0x11, 0])
    (tmp_path / "two.jpg").write_bytes(b"\xff\xd8\xff\xc1" + two + b"\xff\xd9")
    with pytest.raises(InputError, match=r"two\.jpg: a JPEG of 12 bits a sample of 2 components, which classsr does "
                                         r"not read$"):  # fmt: skip
        read_image(tmp_path / "two.jpg")


def test_a_16_bit_lzw_tiff_and_a_12_bit_one_read_at_their_levels(tmp_path: Path) -> None:
    """A 16-bit TIFF compressed with LZW (Photoshop's and scanners' choice), with or without a predictor, was
    "truncated or corrupt" (tifffile decodes LZW only with the imagecodecs package): now the bundled ffmpeg decodes it,
    every level as stored. A 12-bit gray one came through Pillow with its levels (0-4095) taken as 16-bit ones, a
    picture 16 times too dark: now stretched to 0-65535. A layout neither decodes is said as what it is (it was
    "truncated or corrupt"); 10 and 14 bits, and 12 with a predictor or white as 0: tests/test_packed.py."""
    from PIL import TiffImagePlugin
    from test_packed import packed_tiff

    from classsr_cli.io.video import ffmpeg_exe

    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 65536, (10, 12, 3), dtype=np.uint16)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", "12x10", "-i", "-",
                    "-compression_algo", "lzw", "-y", str(tmp_path / "lzw.tif")], input=rgb.tobytes(), check=True)  # fmt: skip
    pic = read_image(tmp_path / "lzw.tif")
    assert pic.pixels.dtype == np.uint16 and np.array_equal(pic.pixels, rgb)
    gray = (np.cumsum(rng.integers(0, 900, (10, 12)), axis=1) % 65536).astype(np.uint16)
    TiffImagePlugin.WRITE_LIBTIFF = True  # (libtiff writes the predictor)
    try:
        Image.fromarray(gray).save(tmp_path / "predicted.tif", compression="tiff_lzw", tiffinfo={317: 2})
    finally:
        TiffImagePlugin.WRITE_LIBTIFF = False
    assert np.array_equal(read_image(tmp_path / "predicted.tif").pixels[..., 0], gray)
    twelve = rng.integers(0, 4096, (6, 5))
    (tmp_path / "twelve.tif").write_bytes(packed_tiff(twelve, 12))
    pic = read_image(tmp_path / "twelve.tif")
    assert pic.pixels.dtype == np.uint16 and np.array_equal(pic.pixels[..., 0], (twelve * 65535 + 2047) // 4095)
    for name, data, said in (
        ("pred.tif", packed_tiff(twelve, 12, predictor=2, compression=32773), "a TIFF of 12-bit samples, "
                                                                              "PackBits-compressed, with a predictor"),
        ("white.tif", packed_tiff(twelve, 12, photometric=0, compression=32773), "a TIFF of 12-bit samples, "
                                                                                 "PackBits-compressed, white as 0"),
    ):  # (ffmpeg's decoder gets a 12-bit predictor or white as 0 wrong; classsr's own reads them stored or Deflated)
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match=re.escape(f"{name}: {said}, which classsr does not decode: save it with 8 "
                                                       "or 16-bit samples")):  # fmt: skip
            read_image(tmp_path / name)


def test_a_deep_cielab_tiff_tifffile_cannot_decode_says_its_colours(tmp_path: Path) -> None:
    """A 16-bit CIELab TIFF, LZW-compressed (a Nikon's, sharp's ``cielab-dagams.tiff``), was "a TIFF of 16-bit
    samples, LZW-compressed, which classsr does not decode: save it with 8 or 16-bit samples": it has them; its
    colours are what is not read, as an uncompressed one says."""
    from test_packed import packed_tiff

    lab = np.random.default_rng(3).integers(0, 65536, (4, 5, 3))
    (tmp_path / "lzw.tif").write_bytes(packed_tiff(lab, 16, photometric=8, compression=5))  # (stored: never decoded)
    (tmp_path / "plain.tif").write_bytes(packed_tiff(lab, 16, photometric=8))
    for name in ("lzw.tif", "plain.tif"):
        with pytest.raises(InputError, match=rf"{name}: 16-bit CIELab TIFF is not supported \(16-bit gray and RGB "
                                             r"are, and 8-bit CIELab is converted\); save it as 16-bit RGB or as 8-bit$"):
            read_image(tmp_path / name)


def test_a_tiff_in_a_compression_pillows_libtiff_lacks_says_which(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """An 8-bit TIFF compressed with WebP (a GeoTIFF's: image-tiff's ``usda_naip_256_webp_z3.tif``) was "truncated or
    corrupt image (decoder error -2)", after libtiff's "WEBP compression support is not configured" on stderr: now
    said as what it is, before libtiff is asked."""
    Image.fromarray(RGB).save(tmp_path / "plain.tif")
    data = bytearray((tmp_path / "plain.tif").read_bytes())
    at = data.index(struct.pack("<HHIH", 259, 3, 1, 1))
    data[at + 8 : at + 10] = struct.pack("<H", 50001)  # Compression: WebP
    (tmp_path / "webp.tif").write_bytes(bytes(data))
    capfd.readouterr()
    with pytest.raises(InputError, match=r"webp\.tif: a TIFF compressed with WebP, which Pillow's libtiff does not "
                                         r"decode: save it with LZW, Deflate or no compression$"):  # fmt: skip
        read_image(tmp_path / "webp.tif")
    assert capfd.readouterr().err == ""


def tga_rle(rgb: np.ndarray) -> bytes:
    """A run-length coded 24-bit TGA of ``rgb`` (H, W, 3), top row first, whose packets run on from one row into the
    next (as TGA 1.0 allowed: image-rs's test suite's ``bottom_left.tga``): a run of the first pixel repeated where
    the next ones equal it (up to 128), else raw packets of up to 7 pixels, whatever the rows."""
    h, w, _ = rgb.shape
    flat = rgb.reshape(-1, 3)[:, ::-1]  # BGR
    out, k = bytearray(), 0
    while k < len(flat):
        same = 1
        while k + same < len(flat) and same < 128 and np.array_equal(flat[k + same], flat[k]):
            same += 1
        if same > 1:
            out += bytes([0x80 | (same - 1)]) + flat[k].tobytes()
            k += same
        else:
            n = min(7, len(flat) - k)
            out += bytes([n - 1]) + flat[k : k + n].tobytes()
            k += n
    return struct.pack("<BBBHHBHHHHBB", 0, 0, 10, 0, 0, 0, 0, 0, w, h, 24, 0x20) + bytes(out)


def test_a_tga_whose_runs_cross_rows_is_read(tmp_path: Path) -> None:
    """A run-length coded TGA with a run over more than two rows, which Pillow's decoder refuses ("buffer overrun":
    it was "truncated or corrupt"), is read through the bundled ffmpeg: the same pixels."""
    rgb = RGB[:4, :5].copy()
    rgb[1:3] = RGB[0, 0]  # a run of 13 pixels over three rows (a flat sky's), and raw packets across rows
    (tmp_path / "runs.tga").write_bytes(tga_rle(rgb))
    with Image.open(tmp_path / "runs.tga") as im, pytest.raises(OSError, match="buffer overrun"):
        im.load()
    assert np.array_equal(read_image(tmp_path / "runs.tga").pixels, rgb)


def test_writing_a_picture_larger_than_its_format_holds_says_so(tmp_path: Path) -> None:
    """``write_image`` of a picture larger than its format holds (JPEG: 65500 pixels a side, image-rs's 1x65537
    ``big_g4.tif``) said "cannot write (broken data stream ...)", libjpeg's words: now what the run's check says,
    before any encoding, and nothing is written."""
    tall = Picture(pixels=np.zeros((65501, 1, 1), np.uint8))
    with pytest.raises(ConfigError, match=r"tall\.jpg: 1x65501 is more than JPEG holds \(65500 pixels a side\); "
                                          r"write tall\.png or tall\.tif instead"):  # fmt: skip
        write_image(tmp_path / "tall.jpg", tall)
    assert not list(tmp_path.iterdir())
    write_image(tmp_path / "tall.png", tall)
    # AVIF: written as one picture, which libavif (Pillow's, browsers') opens up to 32768 pixels a side and 16384^2 in
    # all; gdk-pixbuf's 65535x1 GIF was written into an AVIF that classsr could not read back ("its HEIF boxes")
    wide = Picture(pixels=np.zeros((1, 32769, 3), np.uint8))
    with pytest.raises(ConfigError, match=r"wide\.avif: 32769x1 is more than AVIF decoders open \(32768 pixels a "
                                          r"side\); write wide\.png or wide\.tif instead"):  # fmt: skip
        write_image(tmp_path / "wide.avif", wide)
    with pytest.raises(ConfigError, match=r"big\.avif: 16385x16385 is 268,468,225 pixels, more than AVIF decoders "
                                          r"open \(268,435,456\); write big\.png"):  # fmt: skip
        check_output_size(tmp_path / "big.avif", 16385, 16385)
    check_output_size(tmp_path / "big.avif", 16384, 16384)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tall.png"]


def test_an_avif_too_large_to_open_is_refused_as_a_bomb_not_as_corrupt(tmp_path: Path) -> None:
    """An AVIF whose image claims 17000x17000 (libvips's 1,340-byte ``17000x17000.avif``), which Pillow's decoder will
    not open, was "truncated or corrupt (its HEIF boxes do not read)": now the pixel limit's refusal, with the option
    that lifts it, and past it, what the decoder opens."""
    Image.fromarray(RGB).save(tmp_path / "small.avif")
    data = bytearray((tmp_path / "small.avif").read_bytes())
    at = data.index(b"ispe") + 8  # (after its version and flags)
    data[at : at + 8] = struct.pack(">II", 17000, 17000)
    (tmp_path / "bomb.avif").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"bomb\.avif: 17000x17000 is 289,000,000 pixels, above the 100,000,000-pixel "
                                         r"limit .* pass --max-pixels 289000000"):  # fmt: skip
        read_image(tmp_path / "bomb.avif")
    with pytest.raises(InputError, match=r"bomb\.avif: 17000x17000 is 289,000,000 pixels, more than the AVIF decoder "
                                         r"opens \(268,435,456\)$"):  # fmt: skip
        read_image(tmp_path / "bomb.avif", max_pixels=None)
    data[at : at + 8] = struct.pack(">II", 40000, 1)  # a side libavif does not open, as one classsr wrote (65535x1)
    (tmp_path / "long.avif").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"long\.avif: 40000x1 has a side longer than the AVIF decoder opens "
                                         r"\(32768 pixels\)$"):  # fmt: skip
        read_image(tmp_path / "long.avif")


def test_what_tifffile_logs_of_a_damaged_tiff_is_notes_and_its_bomb_is_said_once(tmp_path: Path,
                                                                              capfd: pytest.CaptureFixture[str]) -> None:
    """tifffile logs a damaged tag (gdk-pixbuf's fuzzed TIFFs have dozens) to stderr, lines of their own beside the
    run's: now notes, as Pillow's warnings are. A TIFF only tifffile opens (16-bit gray and alpha) whose header claims
    20000x20000 was "truncated or corrupt image (its path: 20000x20000 is ... above the ...-pixel limit ...)", the
    limit's message inside another: now the limit's alone."""
    import tifffile

    deep = (np.arange(40 * 48, dtype=np.uint16).reshape(40, 48) * 30)
    tifffile.imwrite(tmp_path / "junk.tif", deep, photometric="minisblack", extratags=[(65000, "H", 1, 5, True)])
    data = bytearray((tmp_path / "junk.tif").read_bytes())
    at = data.index(struct.pack("<HH", 65000, 3))
    data[at + 2 : at + 4] = struct.pack("<H", 99)  # (no TIFF data type)
    (tmp_path / "junk.tif").write_bytes(bytes(data))
    capfd.readouterr()
    pic = read_image(tmp_path / "junk.tif")
    assert np.array_equal(pic.pixels[..., 0], deep) and capfd.readouterr().err == ""
    assert len(pic.notes) == 1 and pic.notes[0].startswith("tifffile warns: ") and "invalid data type 99" in pic.notes[0]
    tifffile.imwrite(tmp_path / "la.tif", np.dstack([deep, deep]), photometric="minisblack", extrasamples=["unassalpha"])
    data = bytearray((tmp_path / "la.tif").read_bytes())
    for tag in (256, 257):  # ImageWidth, ImageLength (SHORT or LONG): 20000 each
        at = next(data.find(struct.pack("<HHI", tag, kind, 1)) for kind in (3, 4) if struct.pack("<HHI", tag, kind, 1) in data)
        data[at + 8 : at + 12] = struct.pack("<HH", 20000, 0) if data[at + 2] == 3 else struct.pack("<I", 20000)
    (tmp_path / "la.tif").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"^\S*la\.tif: 20000x20000 is 400,000,000 pixels, above the 100,000,000-pixel"):
        read_image(tmp_path / "la.tif")


def test_a_damaged_file_of_a_known_signature_is_said_corrupt_not_of_another_kind(tmp_path: Path) -> None:
    """A file that starts as a PNG (or JPEG, WebP, ...) does but that Pillow cannot open (libpng's crasher with a
    broken iCCP chunk) was "not an image classsr reads": it is a damaged PNG, said so; bytes of no such format are
    still not an image."""
    from classsr_cli.errors import InputError

    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    with pytest.raises(InputError, match=r"a\.png: truncated or corrupt image \(a PNG by its first bytes"):
        read_image(tmp_path / "a.png")
    (tmp_path / "b.webp").write_bytes(b"RIFF" + bytes(4) + b"WEBP" + bytes(20))
    with pytest.raises(InputError, match=r"b\.webp: truncated or corrupt image \(a WebP by its first bytes"):
        read_image(tmp_path / "b.webp")
    (tmp_path / "c.png").write_bytes(b"Notes on the shoot, not a picture\n" * 3)
    with pytest.raises(InputError, match=r"c\.png: not an image classsr reads"):
        read_image(tmp_path / "c.png")
    # A JPEG's start of image followed by junk before its first marker (gdk-pixbuf's bug775218.jpg: libjpeg says
    # "Corrupt JPEG data: 2 extraneous bytes before marker") is a damaged JPEG too
    (tmp_path / "d.jpg").write_bytes(b"\xff\xd8\x00\x09\xff\xe1\x009Exif\x00" + bytes(40))
    with pytest.raises(InputError, match=r"d\.jpg: truncated or corrupt image \(a JPEG by its first bytes"):
        read_image(tmp_path / "d.jpg")
