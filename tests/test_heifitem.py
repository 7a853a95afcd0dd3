"""HEIF pictures coded as JPEG, JPEG 2000, uncompressed samples or H.264 (classsr_cli.io.heifitem), which pillow-heif's
libheif here does not decode: read through classsr's own decoding, turned as their properties say, their colour,
alpha, EXIF and XMP kept; a layout it does not read said as such, damaged data as damaged."""

from __future__ import annotations

import io
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from classsr_cli.errors import InputError
from classsr_cli.io import heifbox, heifitem
from classsr_cli.io.bmff import box, full_box
from classsr_cli.io.image import Nclx, read_image

RNG = np.random.default_rng(7)
SMOOTH = np.stack([*np.meshgrid(np.linspace(0, 255, 24), np.linspace(40, 200, 16)), np.full((16, 24), 90.0)],
                  axis=-1).round().astype(np.uint8)  # fmt: skip


def _ispe(width: int, height: int) -> bytes:
    return full_box(b"ispe", struct.pack(">II", width, height))


def _pixi(*bits: int) -> bytes:
    return full_box(b"pixi", bytes([len(bits), *bits]))


def _heif(items: list[tuple[bytes, bytes, list[bytes]]], refs: list[tuple[bytes, int, int]] = ()) -> bytes:  # type: ignore[assignment]
    """A HEIF file of ``items`` (type, data, properties: item 1 the primary picture, then 2, 3, ...) and item
    references (type, from, to), their data in one ``mdat``, as libheif lays one out."""
    ftyp = box(b"ftyp", b"mif1" + bytes(4) + b"mif1heic")
    infe = b"".join(full_box(b"infe", struct.pack(">HH", n, 0) + kind + b"\x00" + (b"application/rdf+xml\x00" if kind == b"mime" else b""), 2)
                    for n, (kind, _, _) in enumerate(items, 1))  # fmt: skip
    props = [p for _, _, ps in items for p in ps]
    ipma, at = bytearray(struct.pack(">I", len(items))), 1
    for n, (_, _, ps) in enumerate(items, 1):
        ipma += struct.pack(">HB", n, len(ps)) + bytes(0x80 | (at + k) for k in range(len(ps)))
        at += len(ps)
    iprp = box(b"iprp", box(b"ipco", b"".join(props)) + full_box(b"ipma", bytes(ipma)))
    iref = full_box(b"iref", b"".join(box(kind, struct.pack(">HHH", a, 1, b)) for kind, a, b in refs)) if refs else b""

    def meta(offsets: list[int]) -> bytes:
        iloc = bytes([0x44, 0]) + struct.pack(">H", len(items)) + b"".join(
            struct.pack(">HHHII", n, 0, 1, offsets[n - 1], len(data)) for n, (_, data, _) in enumerate(items, 1))
        return full_box(b"meta", full_box(b"hdlr", bytes(4) + b"pict" + bytes(13)) + full_box(b"pitm", b"\x00\x01")
                        + full_box(b"iloc", iloc) + full_box(b"iinf", struct.pack(">H", len(items)) + infe) + iprp + iref)  # fmt: skip

    start = len(ftyp) + len(meta([0] * len(items))) + 8
    offsets = list(np.cumsum([start] + [len(d) for _, d, _ in items[:-1]]))
    mdat = b"".join(d for _, d, _ in items)
    return ftyp + meta([int(o) for o in offsets]) + box(b"mdat", mdat)


def _jpeg(levels: np.ndarray, **options: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(levels).save(buf, "JPEG", quality=95, **options)
    return buf.getvalue()


def test_a_jpeg_heif_is_read_turned_as_its_properties_say_with_its_profile_exif_and_xmp(tmp_path: Path) -> None:
    """A HEIF of a JPEG (KDE's heif/jpeg.heif; libheif here decodes none: it was refused) is read; its clean
    aperture, rotation and mirroring applied in the order listed; its ICC profile, EXIF (without an orientation,
    which a HEIF's transforms replace) and XMP kept."""
    levels = RNG.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    jpeg = _jpeg(levels)
    plain = np.asarray(Image.open(io.BytesIO(jpeg)))
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "Maker", 6
    clap = box(b"clap", struct.pack(">IIIIiIiI", 20, 1, 12, 1, 1, 1, 0, 1))  # 20x12, one to the right of the centre
    props = [box(b"colr", b"prof" + profile), _ispe(24, 16), clap, box(b"irot", b"\x01"), box(b"imir", b"\x01")]
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>'
    items = [(b"jpeg", jpeg, props), (b"Exif", bytes(4) + exif.tobytes()[6:], []), (b"mime", xmp, [])]
    (tmp_path / "a.heic").write_bytes(_heif(items, [(b"cdsc", 2, 1), (b"cdsc", 3, 1)]))
    pic = read_image(tmp_path / "a.heic")
    want = np.rot90(plain[2:14, 3:23], 1)[:, ::-1]  # cropped (left 3 = 1 + 23/2 - 19/2), a quarter turn, left-right
    assert pic.pixels.shape == (20, 12, 3) and np.array_equal(pic.pixels, want)
    assert pic.icc == profile and pic.xmp == xmp and pic.alpha is None and pic.notes == [] and pic.source_format == "HEIF"
    back = Image.Exif()
    back.load(pic.exif)
    assert back[0x010F] == "Maker" and 0x0112 not in back
    mirrored = _heif([(b"jpeg", jpeg, [_ispe(24, 16), box(b"imir", b"\x00")])])
    (tmp_path / "b.heic").write_bytes(mirrored)
    assert np.array_equal(read_image(tmp_path / "b.heic").pixels, plain[::-1])  # axis 0: top and bottom exchanged


def test_the_transforms_are_libheifs() -> None:
    """The rotation and mirroring this applies are the ones libheif applies to a HEVC picture (pillow-heif): each
    property given to a HEIC pillow-heif wrote, read by it, equals the plain picture turned here."""
    pytest.importorskip("pillow_heif")
    buf = io.BytesIO()
    Image.fromarray(SMOOTH).save(buf, "HEIF", quality=-1)
    plain = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    for prop in (box(b"irot", b"\x01"), box(b"irot", b"\x03"), box(b"imir", b"\x00"), box(b"imir", b"\x01")):
        heic = heifbox.with_properties(buf.getvalue(), [prop])
        libheif = np.asarray(Image.open(io.BytesIO(heic)).convert("RGB"))
        coded = heifbox.primary_coded(heic)
        assert np.array_equal(heifitem.transformed(plain, coded), libheif), prop


def test_uncompressed_heifs_are_read_stored_or_deflated_at_8_or_16_bits(tmp_path: Path) -> None:
    """``unci`` pictures (libheif's ``heif-enc --uncompressed``: KDE's uncompressed, deflate and zlib.heif): a version
    1 ``uncC``'s RGBA profile, stored or deflated (raw deflate, zlib), its alpha kept; a version 0 one of 16-bit
    RGB components, big-endian, one plane after another, read at 16 bits (kept in HEIC outputs); a Brotli-compressed
    one said as such, not as damaged; samples cut short said as damaged."""
    rgba = RNG.integers(0, 256, (16, 24, 4), dtype=np.uint8)
    v1 = [full_box(b"uncC", b"rgba", 1), _ispe(24, 16), _pixi(8, 8, 8, 8)]
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    stored = {"stored": (rgba.tobytes(), None),
              "defl": (deflate.compress(rgba.tobytes()) + deflate.flush(), b"defl"),
              "zlib": (zlib.compress(rgba.tobytes()), b"zlib")}  # fmt: skip
    for name, (data, kind) in stored.items():
        props = v1 + ([full_box(b"cmpC", kind + b"\x00")] if kind else [])
        (tmp_path / f"{name}.heif").write_bytes(_heif([(b"unci", data, props)]))
        pic = read_image(tmp_path / f"{name}.heif")
        assert np.array_equal(pic.pixels, rgba[..., :3]) and np.array_equal(pic.alpha, rgba[..., 3]), name
    deep = RNG.integers(0, 65536, (16, 24, 3), dtype=np.uint16)
    cmpd = box(b"cmpd", struct.pack(">I3H", 3, 4, 5, 6))
    fields = b"".join(struct.pack(">HBBB", k, 15, 0, 0) for k in range(3))
    uncc = full_box(b"uncC", b"\x00" * 4 + struct.pack(">I", 3) + fields + bytes(4) + bytes(20))  # planes, big-endian
    planes = np.moveaxis(deep, -1, 0).astype(">u2").tobytes()
    (tmp_path / "deep.heif").write_bytes(_heif([(b"unci", planes, [cmpd, uncc, _ispe(24, 16), _pixi(16, 16, 16)])]))
    pic = read_image(tmp_path / "deep.heif")
    assert pic.pixels.dtype == np.uint16 and np.array_equal(pic.pixels, deep) and pic.depth == 16
    (tmp_path / "brotli.heif").write_bytes(_heif([(b"unci", b"\x00" * 64, [*v1, full_box(b"cmpC", b"brot\x00")])]))
    with pytest.raises(InputError, match=r"brotli\.heif: a HEIF whose picture is coded as uncompressed .*: its samples "
                                         r"are Brotli-compressed, which Python has no decoder for; save it as HEVC"):  # fmt: skip
        read_image(tmp_path / "brotli.heif")
    (tmp_path / "cut.heif").write_bytes(_heif([(b"unci", rgba.tobytes()[:-100], v1)]))
    with pytest.raises(InputError, match=r"cut\.heif: truncated or corrupt image \(its uncompressed .*cut short"):
        read_image(tmp_path / "cut.heif")


def test_a_jpeg_2000_heif_is_read_from_ycbcr_with_its_alpha(tmp_path: Path) -> None:
    """A ``.hej2`` (JPEG 2000 codestreams: KDE's and Krita's): its components Y, Cb and Cr as its ``nclx`` matrix says
    (BT.601, full range: libheif's reading; they were read as RGB, every colour wrong), converted to RGB; its alpha
    image (an ``auxl`` item whose ``auxC`` names alpha) kept."""
    rgb = SMOOTH.astype(np.float64)
    y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    ycbcr = np.stack([y, (rgb[..., 2] - y) / 1.772 + 128, (rgb[..., 0] - y) / 1.402 + 128], -1).round().clip(0, 255)
    alpha = np.tile(np.linspace(0, 255, 24).round().astype(np.uint8), (16, 1))

    def j2k(levels: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(levels).save(buf, "JPEG2000", no_jp2=True, irreversible=False)
        return buf.getvalue()

    nclx = box(b"colr", b"nclx" + struct.pack(">3HB", 1, 13, 6, 0x80))
    aux = full_box(b"auxC", b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha\x00")
    items = [(b"j2k1", j2k(ycbcr.astype(np.uint8)), [_ispe(24, 16), nclx]), (b"j2k1", j2k(alpha), [_ispe(24, 16), aux])]
    (tmp_path / "a.hej2").write_bytes(_heif(items, [(b"auxl", 2, 1)]))
    pic = read_image(tmp_path / "a.hej2")
    assert np.abs(pic.pixels.astype(int) - SMOOTH).max() <= 2 and np.array_equal(pic.alpha, alpha)
    assert pic.nclx is None  # (sRGB's)


def _annex_b_nals(stream: bytes) -> list[bytes]:
    return [nal.lstrip(b"\x00") for nal in stream.split(b"\x00\x00\x01") if nal.strip(b"\x00")]


def _avc_item(stream: bytes) -> tuple[bytes, bytes]:
    """An H.264 Annex B ``stream`` as a HEIF item holds it: its ``avcC`` (the parameter sets) and its length-prefixed
    picture data."""
    nals = [n for n in _annex_b_nals(stream) if n[0] & 31 in (1, 5, 7, 8)]
    sps, pps = next(n for n in nals if n[0] & 31 == 7), next(n for n in nals if n[0] & 31 == 8)
    avcc = box(b"avcC", bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]) + struct.pack(">H", len(sps)) + sps + b"\x01"
               + struct.pack(">H", len(pps)) + pps)  # fmt: skip
    return avcc, b"".join(struct.pack(">I", len(n)) + n for n in nals if n[0] & 31 in (1, 5))


def test_an_h264_heif_is_read_by_ffmpeg(tmp_path: Path) -> None:
    """An ``.avci`` (H.264: KDE's eco_kde_gray.avci) is decoded by the bundled ffmpeg from its ``avcC``'s parameter
    sets and its data, lossless here; damaged data said as damaged."""
    from classsr_cli.io.video import ffmpeg_exe

    stream = subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "24x16", "-i", "-",
                             "-c:v", "libx264rgb", "-qp", "0", "-f", "h264", "-"], input=SMOOTH.tobytes(),
                            capture_output=True, check=True).stdout  # fmt: skip
    avcc, data = _avc_item(stream)
    identity = box(b"colr", b"nclx" + struct.pack(">3HB", 1, 13, 0, 0x80))  # (GBR: libx264rgb's)
    (tmp_path / "a.avci").write_bytes(_heif([(b"avc1", data, [avcc, _ispe(24, 16), _pixi(8, 8, 8), identity])]))
    pic = read_image(tmp_path / "a.avci")
    assert np.array_equal(pic.pixels, SMOOTH) and pic.nclx is None
    (tmp_path / "cut.avci").write_bytes(_heif([(b"avc1", data[: len(data) // 3], [avcc, _ispe(24, 16), _pixi(8, 8, 8)])]))
    with pytest.raises(InputError, match=r"cut\.avci: truncated or corrupt image \(its H\.264 \('avc1' item\): its H\.264"):
        read_image(tmp_path / "cut.avci")


def test_a_10_bit_h264_heif_is_read_with_white_at_65535(tmp_path: Path) -> None:
    """A 10-bit H.264 HEIF of limited range: the bundled ffmpeg's swscale gives its white at 65283 of 65535 in 16-bit
    RGB, stretched back (fails on the code before)."""
    from classsr_cli.io.video import ffmpeg_exe

    luma = np.append(np.arange(64, 941), [940] * (1024 - 877)).reshape(32, 32)  # every 10-bit limited-range code
    planes = np.concatenate([luma.ravel(), np.full(2 * 16 * 16, 512)]).astype("<u2")
    stream = subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p10le", "-s", "32x32",
                             "-i", "-", "-c:v", "libx264", "-qp", "0", "-f", "h264", "-"], input=planes.tobytes(),
                            capture_output=True, check=True).stdout  # fmt: skip
    avcc, data = _avc_item(stream)
    bt709 = box(b"colr", b"nclx" + struct.pack(">3HB", 1, 1, 1, 0))  # (limited range)
    (tmp_path / "a.avci").write_bytes(_heif([(b"avc1", data, [avcc, _ispe(32, 32), _pixi(10, 10, 10), bt709])]))
    pic = read_image(tmp_path / "a.avci")
    assert pic.pixels.dtype == np.uint16 and pic.pixels[-1, -1].tolist() == [65535] * 3
    assert np.abs(pic.pixels[..., 1] - (luma - 64) / 876 * 65535).max() < 2


def test_a_heif_of_a_linear_wide_gamut_and_the_nclx_is_kept(tmp_path: Path) -> None:
    """Code points a HEIF's ``colr`` gives without a profile are the picture's (:class:`Nclx`): Display P3 kept as
    such (tagged in HEIC, JPEG XL, PNG outputs)."""
    rgba = RNG.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    p3 = box(b"colr", b"nclx" + struct.pack(">3HB", 12, 13, 0, 0x80))
    (tmp_path / "p3.heif").write_bytes(_heif([(b"unci", rgba.tobytes(), [full_box(b"uncC", b"rgb3", 1), _ispe(24, 16), p3])]))
    pic = read_image(tmp_path / "p3.heif")
    assert pic.nclx == Nclx(12, 13, 6, True) and np.array_equal(pic.pixels, rgba)
