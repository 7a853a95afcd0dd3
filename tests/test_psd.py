"""classsr_cli.io.psd: a Photoshop document's flattened picture at 8, 16 and 32 bits, raw and PackBits, PSD and PSB,
its transparency, CMYK, resources, and what it refuses; through `classsr upscale` as a TIFF."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from classsr_cli.errors import InputError
from classsr_cli.io.image import peek_size, read_image, write_image

_Y, _X = np.mgrid[0:20, 0:30]
RGB = np.stack([_X * 8, _Y * 12, (_X + _Y) * 5], 0)  # (3, 20, 30) levels of 0-255


def packbits(row: bytes) -> bytes:
    """PackBits as Photoshop codes a row: runs of three or more equal bytes as repeats, the rest as literals."""
    out, i = bytearray(), 0
    while i < len(row):
        j = i
        while j < len(row) and j - i < 128 and row[j] == row[i]:
            j += 1
        if j - i >= 3:
            out += bytes([257 - (j - i), row[i]])
            i = j
            continue
        j = i
        while j < len(row) and j - i < 128 and not (j + 2 < len(row) and row[j] == row[j + 1] == row[j + 2]):
            j += 1
        out += bytes([j - i - 1]) + row[i:j]
        i = j
    return bytes(out)


def resource(rid: int, data: bytes) -> bytes:
    return b"8BIM" + struct.pack(">H", rid) + b"\x00\x00" + struct.pack(">I", len(data)) + data + b"\x00" * (len(data) % 2)


def make_psd(path: Path, planes: np.ndarray, *, depth: int = 8, mode: int = 3, rle: bool = False, psb: bool = False,
             layers: int = 0, resources: bytes = b"", tagged: bytes = b"", colour_data: bytes = b"") -> Path:
    """A Photoshop document whose flattened picture is ``planes`` (``(C, H, W)``; at ``depth`` 1, bits, each row
    packed), as Photoshop lays one out: its colour mode data (an Indexed one's palette), its layer count (``layers``,
    no layer records) and ``tagged`` blocks in the layers and masks section."""
    c, h, w = planes.shape
    wide = 8 if psb else 4
    if depth == 1:
        planes = np.packbits(planes.astype(np.uint8), axis=2)
    kind = {1: "u1", 8: "u1", 16: ">u2", 32: ">f4"}[depth]
    head = b"8BPS" + struct.pack(">H6xHIIHH", 2 if psb else 1, c, h, w, depth, mode)
    counted = struct.pack(">h", layers) if layers else b""
    layer_info = len(counted).to_bytes(wide, "big") + counted + b"\x00" * 4 + tagged if layers or tagged else b""
    body = (len(colour_data).to_bytes(4, "big") + colour_data + len(resources).to_bytes(4, "big") + resources
            + len(layer_info).to_bytes(wide, "big") + layer_info)  # fmt: skip
    rows = [np.ascontiguousarray(planes[k, y], kind).tobytes() for k in range(c) for y in range(h)]
    if rle:
        coded = [packbits(r) for r in rows]
        table = b"".join(len(r).to_bytes(4 if psb else 2, "big") for r in coded)
        data = b"\x00\x01" + table + b"".join(coded)
    else:
        data = b"\x00\x00" + b"".join(rows)
    path.write_bytes(head + body + data)
    return path


@pytest.mark.parametrize(("depth", "rle", "psb"), [(8, False, False), (8, True, False), (16, True, False),
                                                  (16, False, True), (16, True, True)])
def test_the_flattened_picture_is_read_at_its_depth(tmp_path: Path, depth: int, rle: bool, psb: bool) -> None:
    """RGB at 8 or 16 bits, raw or PackBits, PSD or PSB: the picture as stored; 8-bit ones as Pillow reads them."""
    planes = RGB * (257 if depth == 16 else 1)
    path = make_psd(tmp_path / ("a.psb" if psb else "a.psd"), planes, depth=depth, rle=rle, psb=psb)
    pic = read_image(path)
    assert pic.source_format == "PSD" and pic.mode == "RGB" and pic.bits == depth and pic.alpha is None
    assert np.array_equal(pic.pixels, np.moveaxis(planes, 0, -1))
    assert peek_size(path) == (20, 30)
    if depth == 8 and not psb:
        assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), pic.pixels)


def test_gray_and_the_transparency_matted_on_white(tmp_path: Path) -> None:
    """A negative layer count says the first channel after the colour ones is the flattened picture's transparency:
    its colours, stored matted on white, are read straight; without it, an extra channel (a saved selection) is left
    out."""
    gray = make_psd(tmp_path / "g.psd", RGB[:1] * 257, depth=16, mode=1, rle=True)
    pic = read_image(gray)
    assert pic.mode == "L" and pic.bits == 16 and np.array_equal(pic.pixels[..., 0], RGB[0] * 257)
    alpha = np.clip(_X * 10, 0, 255)
    matted = np.rint(RGB * alpha / 255 + 255 * (1 - alpha / 255))
    clear = make_psd(tmp_path / "t.psd", np.concatenate([matted, alpha[None]]), rle=True, layers=-1)
    pic = read_image(clear)
    assert pic.mode == "RGBA" and np.array_equal(pic.alpha, alpha)
    seen = alpha >= 64  # where the matting's rounding is small against the colour
    assert np.abs(pic.pixels.astype(int) - np.moveaxis(RGB, 0, -1))[seen].max() <= 4
    saved = make_psd(tmp_path / "s.psd", np.concatenate([RGB, alpha[None]]), layers=2)
    assert read_image(saved).mode == "RGB"
    # A 16-bit document keeps its layers in an Lr16 block (the layer info left empty) and says Mt16, after a block
    # that is skipped; in a PSB the lengths of these blocks take 8 bytes.
    deep = np.concatenate([matted, alpha[None]]) * 257
    for psb in (False, True):
        n = 8 if psb else 4
        other = b"8BIMluni" + (4).to_bytes(4, "big") + b"name"
        for block in (b"8BIMMt16" + (0).to_bytes(n, "big"),
                      b"8BIMLr16" + (2).to_bytes(n, "big") + struct.pack(">h", -3)):  # fmt: skip
            pic = read_image(make_psd(tmp_path / "d.psd", deep, depth=16, rle=True, psb=psb, tagged=other + block))
            assert pic.mode == "RGBA" and np.array_equal(pic.alpha, alpha * 257)
        pic = read_image(make_psd(tmp_path / "d.psd", deep, depth=16, psb=psb, tagged=other))
        assert pic.mode == "RGB"


def test_cmyk_is_converted_as_pillow_converts_it(tmp_path: Path) -> None:
    ink = np.stack([RGB[0], RGB[1], RGB[2], RGB[0] // 2])
    path = make_psd(tmp_path / "c.psd", 255 - ink, mode=4)  # stored as 255 - ink
    pic = read_image(path)
    assert pic.mode == "RGB" and any("CMYK converted" in n for n in pic.notes)
    assert np.array_equal(pic.pixels, np.asarray(Image.open(path).convert("RGB")))


def test_16_bit_cmyk_and_lab_are_read(tmp_path: Path) -> None:
    """16-bit CMYK (KDE's cmyk16_testcard.psd) and Lab, 8 and 16 bits (its laba_8bit.psd), were refused: CMYK as its
    8-bit levels are, Lab (L* 0-100, a* and b* about 128, D50's white: Photoshop's) into sRGB, its transparency
    unmatted from Lab's white, where a* and b* are 128."""
    ink = np.stack([RGB[0], RGB[1], RGB[2], RGB[0] // 2])
    eight = read_image(make_psd(tmp_path / "c8.psd", 255 - ink, mode=4))
    deep = read_image(make_psd(tmp_path / "c16.psd", (255 - ink) * 257, depth=16, mode=4, rle=True))
    assert np.array_equal(deep.pixels, eight.pixels) and "16-bit CMYK converted to RGB at 8 bits" in deep.notes
    h, w = RGB.shape[1:]
    lab = np.zeros((3, h, w), np.uint8)
    lab[0], lab[1:] = np.linspace(0, 255, w, dtype=np.uint8)[None], 128  # a gray ramp, black to white
    lab[:, 0, :3] = np.array([[138], [209], [198]])  # Lab(54.3, 80.8, 69.9) in D50: sRGB's red
    for depth in (8, 16):
        pic = read_image(make_psd(tmp_path / f"lab{depth}.psd", lab.astype(np.uint16) * (257 if depth == 16 else 1),
                                  depth=depth, mode=9))  # fmt: skip
        ramp = pic.pixels[1:].astype(int)
        assert pic.mode == "RGB" and "Lab converted to sRGB" in pic.notes
        assert np.abs(ramp - ramp[..., :1]).max() <= 1 and ramp[0, 0, 0] <= 1 and ramp[0, -1, 0] >= 254  # neutral
        assert np.all(np.diff(ramp[0, :, 0]) >= 0)
        assert np.abs(pic.pixels[0, :3].astype(int) - [255, 0, 0]).max() <= 6  # (Lab in whole levels)
    alpha = np.clip(_X * 10, 0, 255)
    matted = np.rint(lab * alpha / 255 + np.array([255, 128, 128])[:, None, None] * (1 - alpha / 255))
    clear = read_image(make_psd(tmp_path / "laba.psd", np.concatenate([matted, alpha[None]]), mode=9, layers=-1))
    plain = read_image(tmp_path / "lab8.psd")
    seen = alpha >= 64
    assert clear.mode == "RGBA" and np.abs(clear.pixels.astype(int) - plain.pixels)[seen].max() <= 4


def test_multichannel_is_read_as_cmyk_inks_or_gray(tmp_path: Path) -> None:
    """A Multichannel document (KDE's mch*.psd) was refused: one channel reads as gray at its depth, two to four as
    the CMYK inks they are stored as (the missing ones none), more than four with the others (spot inks) left out,
    said."""
    gray = read_image(make_psd(tmp_path / "one.psd", RGB[:1] * 257, depth=16, mode=7))
    assert gray.mode == "L" and gray.bits == 16 and np.array_equal(gray.pixels[..., 0], RGB[0] * 257)
    two = read_image(make_psd(tmp_path / "two.psd", 255 - RGB[:2], mode=7))  # stored as 255 - ink
    inks = np.stack([RGB[0], RGB[1], np.zeros_like(RGB[0]), np.zeros_like(RGB[0])], -1).astype(np.uint8)
    assert np.array_equal(two.pixels, np.asarray(Image.frombytes("CMYK", (30, 20), inks.tobytes()).convert("RGB")))
    assert two.notes == ["Multichannel document's inks converted to RGB as CMYK's (without a profile)"]
    five = read_image(make_psd(tmp_path / "five.psd", np.concatenate([255 - RGB, 255 - RGB[:2]]), mode=7))
    assert five.notes[0] == "Multichannel document of 5 channels: its first four read as CMYK, the others (spot inks) left out"


def test_a_32_bit_document_is_linear_light_kept_above_1(tmp_path: Path) -> None:
    """Photoshop's 32-bit mode holds linear light (an HDR merge): read as an EXR's is, a highlight at 4.0 kept into a
    linear output (PFM here)."""
    from classsr_cli.io import pnm

    light = (RGB / 255.0).astype(np.float32)
    light[:, 2:5, 20:26] = 4.0
    pic = read_image(make_psd(tmp_path / "hdr.psd", light, depth=32))
    assert pic.linear is not None and pic.bits == 16
    write_image(tmp_path / "out.pfm", pic)
    back = pnm.load_pfm(tmp_path / "out.pfm")
    assert np.allclose(back, np.moveaxis(light, 0, -1), rtol=1e-3, atol=1e-4)


def test_its_profile_exif_xmp_iptc_and_print_size_are_carried_into_a_tiff(tmp_path: Path) -> None:
    from PIL import IptcImagePlugin

    iptc = b"\x1c\x02\x78" + struct.pack(">H", 6) + b"Harbor"  # 2:120, the caption
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "Camera maker", 6  # the orientation: Photoshop has turned the pixels
    tiff = exif.tobytes()[6:]  # resource 1058 holds the TIFF structure without JPEG's "Exif\0\0"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    resolution = struct.pack(">IHHIHH", 300 << 16, 1, 1, 300 << 16, 1, 1)
    blocks = resource(1039, icc) + resource(1058, tiff) + resource(1060, xmp) + resource(1005, resolution)
    blocks += resource(1028, iptc)
    pic = read_image(make_psd(tmp_path / "m.psd", RGB, resources=blocks, rle=True))
    assert pic.icc == icc and pic.xmp == xmp and pic.dpi == (300.0, 300.0) and pic.iptc == iptc
    shown_in_cm = struct.pack(">IHHIHH", int(56.6929 * 65536), 2, 2, int(56.6929 * 65536), 2, 2)  # (KDE's 32-bit one)
    in_cm = read_image(make_psd(tmp_path / "cm.psd", RGB, resources=resource(1005, shown_in_cm)))
    assert in_cm.dpi is not None and np.allclose(in_cm.dpi, 56.6929, atol=1e-3)  # pixels per inch: 22.32 per cm
    got = Image.Exif()
    got.load(pic.exif)
    assert got[0x010F] == "Camera maker" and 0x0112 not in got
    write_image(tmp_path / "m.tif", pic)
    with Image.open(tmp_path / "m.tif") as im:
        assert im.info["icc_profile"] == icc and im.getexif()[0x010F] == "Camera maker"
        assert IptcImagePlugin.getiptcinfo(im) == {(2, 120): b"Harbor"}


@pytest.mark.parametrize("rle", [False, True])
def test_indexed_through_its_palette_with_its_transparent_colour(tmp_path: Path, rle: bool) -> None:
    """Indexed: the colour mode data's 256 reds, greens and blues; resource 1047's index shown as transparent."""
    rng = np.random.default_rng(8)
    palette = rng.integers(0, 256, (256, 3)).astype(np.uint8)
    index = rng.integers(0, 256, (1, 20, 30)).astype(np.uint8)
    index[0, :4, :5] = 7
    colour_data = palette.T.tobytes()
    pic = read_image(make_psd(tmp_path / "i.psd", index, mode=2, rle=rle, colour_data=colour_data))
    assert np.array_equal(pic.pixels, palette[index[0]]) and pic.alpha is None and pic.source_mode == "Indexed"
    keyed = read_image(make_psd(tmp_path / "t.psd", index, mode=2, rle=rle, colour_data=colour_data,
                                resources=resource(1047, struct.pack(">H", 7))))  # fmt: skip
    assert keyed.alpha is not None and np.array_equal(keyed.alpha, np.where(index[0] == 7, 0, 255))


def test_bitmap_and_duotone_read_as_gray(tmp_path: Path) -> None:
    """Bitmap: 1 bit a pixel, 1 black, rows padded to a byte (a width of 30); Duotone: its one channel, as gray."""
    bits = np.random.default_rng(9).integers(0, 2, (1, 20, 30))
    pic = read_image(make_psd(tmp_path / "b.psd", bits, depth=1, mode=0))
    assert pic.mode == "L" and np.array_equal(pic.pixels[..., 0], np.where(bits[0] == 1, 0, 255))
    duo = read_image(make_psd(tmp_path / "d.psd", RGB[:1] * 257, depth=16, mode=8, colour_data=b"\x00" * 10))
    assert duo.mode == "L" and np.array_equal(duo.pixels[..., 0], RGB[0] * 257)


def test_what_it_cannot_read_is_said_in_one_line(tmp_path: Path) -> None:
    flat = resource(1057, struct.pack(">I", 1) + b"\x00")  # hasRealMergedData false
    with pytest.raises(InputError, match=r"saved without Maximize Compatibility holds no flattened picture"):
        read_image(make_psd(tmp_path / "layers.psd", RGB, resources=flat))
    with pytest.raises(InputError, match=r"a 32-bit Photoshop document in Multichannel mode: classsr reads RGB, Gray"):
        read_image(make_psd(tmp_path / "mch.psd", RGB / 255, depth=32, mode=7))
    with pytest.raises(InputError, match=r"32-bit Photoshop document in CMYK mode"):
        read_image(make_psd(tmp_path / "cmyk32.psd", np.concatenate([RGB, RGB[:1]]) / 255, depth=32, mode=4))
    cut = make_psd(tmp_path / "cut.psd", RGB * 257, depth=16, rle=True)
    cut.write_bytes(cut.read_bytes()[:-50])
    with pytest.raises(InputError, match=r"cut\.psd: truncated or corrupt image \(cut short: "):
        read_image(cut)
    (tmp_path / "head.psd").write_bytes(b"8BPS\x00\x01" + b"\x00" * 10)
    with pytest.raises(InputError, match=r"head\.psd: truncated or corrupt image \(not a Photoshop document\)"):
        read_image(tmp_path / "head.psd")


def test_upscale_writes_a_photoshop_document_as_a_tiff_at_its_depth(tiny_model_path: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from classsr_cli.cli import app

    path = make_psd(tmp_path / "edit.psd", RGB * 257, depth=16, rle=True)
    r = CliRunner().invoke(app, ["upscale", str(path), "--model", str(tiny_model_path)])
    assert r.exit_code == 0, r.output
    out = read_image(tmp_path / "edit_x4.tif")
    assert out.bits == 16 and out.pixels.shape == (80, 120, 3)
    r = CliRunner().invoke(app, ["upscale", "-", "-o", "-", "--model", str(tiny_model_path)], input=path.read_bytes())
    assert r.exit_code == 0 and Image.open(io.BytesIO(r.stdout_bytes)).format == "TIFF"
