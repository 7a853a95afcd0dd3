"""classsr_cli.io.dds: DDS textures written as games load them, the source's block compression where Pillow encodes
it and a full mip chain where the source had one, read back by Pillow and by ffmpeg's own DDS decoder."""

from __future__ import annotations

import io
import struct
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classsr_cli.errors import InputError
from classsr_cli.io import dds
from classsr_cli.io.image import read_image, write_image
from classsr_cli.io.video import ffmpeg_exe

_Y, _X = np.mgrid[0:40, 0:52]
SMOOTH = np.dstack([_X * 4, _Y * 5, (_X + _Y) * 2]).astype(np.uint8)
RGBA = np.dstack([SMOOTH, (128 + _X).astype(np.uint8)])


def _header(path: Path) -> tuple[int, int, int, int, bytes]:
    """A DDS file's flags, mip level count, capabilities and file size, and its FourCC."""
    raw = path.read_bytes()
    flags, mips, caps = (struct.unpack_from("<I", raw, at)[0] for at in (8, 28, 108))
    return flags, mips, caps, len(raw), raw[84:88]


def _by_ffmpeg(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgba", "-"],
                         capture_output=True, check=True).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(*shape[:2], 4)


def test_mip_chain_halves_down_to_one_pixel() -> None:
    assert dds.mip_sizes(52, 40) == [(52, 40), (26, 20), (13, 10), (6, 5), (3, 2), (1, 1)]
    assert dds.mip_sizes(8, 1) == [(8, 1), (4, 1), (2, 1), (1, 1)]
    assert dds.mip_sizes(1, 1) == [(1, 1)]


@pytest.mark.parametrize(("kind", "mips", "block"), [("DXT5", True, 16), ("DXT1", False, 8), ("DXT3", True, 16),
                                                      (None, True, 0)])  # fmt: skip
def test_a_texture_keeps_its_compression_and_mip_levels(tmp_path: Path, kind: str | None, mips: bool,
                                                        block: int) -> None:
    """Written from a picture read from a DDS, the output is compressed as the source was and has a full chain of
    mip levels where it had one (each level's data in turn after the header, which counts them): Pillow and ffmpeg
    read its largest level alike, and each smaller level is that level's area average."""
    source = tmp_path / "src.dds"
    dds.write(source, Image.fromarray(RGBA), dds.Texture(kind, mips))
    pic = read_image(source)
    assert pic.texture == dds.Texture(kind, mips)
    out = tmp_path / "out.dds"
    assert write_image(out, pic) == []
    flags, count, caps, size, fourcc = _header(out)
    sizes = dds.mip_sizes(52, 40) if mips else [(52, 40)]
    assert count == (len(sizes) if mips else 0) and bool(flags & 0x20000) == mips and bool(caps & 0x400000) == mips
    per_level = [((w + 3) // 4) * ((h + 3) // 4) * block if block else w * h * 4 for w, h in sizes]
    assert size == 128 + sum(per_level) and fourcc == (kind.encode() if kind else b"\0\0\0\0")
    with Image.open(out) as im:
        assert getattr(im, "pixel_format", None) == kind
        top = np.asarray(im.convert("RGBA"))
    assert np.abs(top.astype(int) - _by_ffmpeg(out, top.shape)).max() <= 1  # an independent decoder agrees
    assert np.abs(top[..., :3].astype(int) - SMOOTH).mean() < (4 if kind else 0.01)
    if mips and kind is None:  # the second level, uncompressed: the area average of the first, weighted by alpha
        raw = np.frombuffer(out.read_bytes()[128 + per_level[0]:][: per_level[1]], np.uint8).reshape(20, 26, 4)
        bgr, alpha = RGBA[..., [2, 1, 0]].astype(float), RGBA[..., 3:].astype(float)

        def quads(a: np.ndarray) -> np.ndarray:
            return a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]

        mean = np.concatenate([quads(bgr * alpha) / quads(alpha), quads(alpha) / 4], axis=2)
        assert np.abs(raw - mean).max() <= 2  # Pillow premultiplies in 8 bits


def test_a_picture_of_another_format_becomes_a_texture_with_mip_levels(tmp_path: Path) -> None:
    """``-f dds`` from a PNG: uncompressed (lossless), with a full mip chain, alpha kept."""
    Image.fromarray(RGBA).save(tmp_path / "in.png")
    assert write_image(tmp_path / "o.dds", read_image(tmp_path / "in.png")) == []
    _, count, _, _, fourcc = _header(tmp_path / "o.dds")
    assert count == 6 and fourcc == b"\0\0\0\0"
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.dds")), RGBA)


@pytest.mark.parametrize("dxgi", [80, None])  # BC4_UNORM under a DX10 header; ATI1's FourCC
def test_a_one_channel_texture_stays_bc4(tmp_path: Path, dxgi: int | None) -> None:
    """A BC4 texture (one channel: a roughness or height map; Pillow reads it and has no BC4 encoder) is written as
    BC4, from BC3's alpha blocks, under the source's own header, with its mip levels: Pillow and ffmpeg's decoder
    read it alike, within BC4's eight levels a block of the picture."""
    gray = (_X * 4 + _Y).astype(np.uint8)
    level0 = dds._bc4(Image.fromarray(gray))
    assert len(level0) == 13 * 10 * 8  # 8 bytes a 4 x 4 block
    mips = [dds._bc4(Image.fromarray(gray).resize(s, Image.Resampling.BOX)) for s in dds.mip_sizes(52, 40)[1:]]
    src = tmp_path / "src.dds"
    src.write_bytes(dds._dx10_header((52, 40), dxgi, 6, len(level0), fourcc=b"ATI1") + level0 + b"".join(mips))
    pic = read_image(src)
    assert pic.texture == dds.Texture("BC4", True, dxgi) and pic.gray
    assert np.abs(pic.pixels[..., 0].astype(int) - gray).max() <= 4
    out = tmp_path / "out.dds"
    assert write_image(out, pic) == []
    raw = out.read_bytes()
    assert raw[:148 if dxgi else 128] == src.read_bytes()[:148 if dxgi else 128] and len(raw) == len(src.read_bytes())
    with Image.open(out) as im:
        assert im.mode == "L" and getattr(im, "pixel_format", None) == "BC4"
        top = np.asarray(im)
    assert np.abs(top.astype(int) - _by_ffmpeg(out, top.shape)[..., 0]).max() <= 1
    up = tmp_path / "up.dds"  # a picture of its own (the upscaled one): BC4 of it
    pic.pixels = np.repeat(np.repeat(pic.pixels, 2, axis=0), 2, axis=1)
    assert write_image(up, pic) == []
    with Image.open(up) as im:
        assert im.size == (104, 80) and getattr(im, "pixel_format", None) == "BC4"
        assert np.abs(np.asarray(im).astype(int) - np.repeat(np.repeat(gray, 2, 0), 2, 1)).mean() < 2
    _, count, _, size, fourcc = _header(up)
    assert count == 7 and fourcc == (b"DX10" if dxgi else b"ATI1")
    assert size == (148 if dxgi else 128) + sum(((w + 3) // 4) * ((h + 3) // 4) * 8 for w, h in dds.mip_sizes(104, 80))


def _without_etcpak(monkeypatch: pytest.MonkeyPatch) -> None:
    """As where the optional etcpak (``classsr[textures]``) is not installed."""
    import importlib.util

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "etcpak" else find(name, *a))


def test_a_compression_pillow_cannot_encode_is_written_uncompressed_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A BC7 texture where etcpak is not installed (Pillow decodes BC7 and does not encode it; here 4x4 blocks of mode
    6, all clear black): the output is an uncompressed DDS, with a note that says why and what to do."""
    _without_etcpak(monkeypatch)
    src = _dx10(tmp_path / "bc7.dds", (8, 8), 98, (bytes([0x40]) + bytes(15)) * 4)  # BC7_UNORM
    pic = read_image(src)
    assert pic.texture == dds.Texture("BC7", False, 98)
    notes = write_image(tmp_path / "o.dds", pic)
    assert notes == ["DDS written uncompressed: Pillow encodes no BC7 (the source's compression); pip install "
                     "'classsr[textures]' (etcpak) keeps it, or compress it with the game's own tool"]
    with Image.open(tmp_path / "o.dds") as im:
        assert getattr(im, "pixel_format", None) is None and not np.asarray(im).any()
    hdr = read_image(_dx10(tmp_path / "bc6h.dds", (8, 8), 95, bytes(64)))  # BC6H_UF16: HDR, which Pillow clips
    assert hdr.notes == ["DDS BC6H holds HDR light: read at 8 bits per channel (Pillow's decoder), light above 1.0 "
                         "clipped; an OpenEXR of it keeps that light through classsr"]
    assert write_image(tmp_path / "o6.dds", hdr) == ["DDS written uncompressed: Pillow encodes no BC6H (the source's "
                                                     "compression); compress it with the game's own tool"]


@pytest.mark.parametrize("dxgi", [98, 99])  # BC7_UNORM, BC7_UNORM_SRGB
def test_a_bc7_texture_stays_bc7(tmp_path: Path, dxgi: int) -> None:
    """With etcpak (``classsr[textures]``), a BC7 texture is written as BC7 under its own DXGI format (sRGB stays
    sRGB), with its mip levels; a level whose sides are not multiples of 4 fills its partial blocks."""
    pytest.importorskip("etcpak")
    levels = [Image.fromarray(RGBA).resize(s, Image.Resampling.BOX) for s in dds.mip_sizes(52, 40)]
    data = [dds._bc7(level) for level in levels]
    assert [len(d) for d in data] == [((w + 3) // 4) * ((h + 3) // 4) * 16 for w, h in dds.mip_sizes(52, 40)]
    src = tmp_path / "src.dds"
    src.write_bytes(dds._dx10_header((52, 40), dxgi, 6, len(data[0])) + b"".join(data))
    pic = read_image(src)
    assert pic.texture == dds.Texture("BC7", True, dxgi)
    assert np.abs(pic.pixels.astype(int) - SMOOTH).mean() < 2  # BC7 keeps a smooth picture within a level or two
    out = tmp_path / "out.dds"
    assert write_image(out, pic) == []
    raw = out.read_bytes()
    assert raw[:148] == src.read_bytes()[:148] and len(raw) == len(src.read_bytes())
    assert struct.unpack_from("<I", raw, 128)[0] == dxgi
    with Image.open(out) as im:
        assert getattr(im, "pixel_format", None) == "BC7" and im.mode == "RGBA"
        assert np.abs(np.asarray(im).astype(int) - RGBA).mean() < 2


def _dx10(path: Path, size: tuple[int, int], dxgi: int, data: bytes, mips: int = 1) -> Path:
    """A DDS file under a DX10 header (one level of blocks, or levels of R8G8B8A8, whose pitch is a row's)."""
    path.write_bytes(dds._dx10_header(size, dxgi, mips, 4 * size[0] if dxgi == 29 else len(data)) + data)
    return path


def test_a_dx10_texture_keeps_its_own_format(tmp_path: Path) -> None:
    """A source under a DX10 header keeps its DXGI format (UNORM, not the TYPELESS Pillow writes; BC1 under DX10, not
    DXT1's FourCC): the same blocks, which ffmpeg's decoder reads alike."""
    for kind, dxgi in (("DXT5", 77), ("DXT1", 71)):  # BC3_UNORM, BC1_UNORM
        buf = tmp_path / "legacy.dds"
        Image.fromarray(RGBA).save(buf, pixel_format=kind)
        src = _dx10(tmp_path / f"{dxgi}.dds", (52, 40), dxgi, buf.read_bytes()[128:])
        pic = read_image(src)
        assert pic.texture is not None and pic.texture.dxgi == dxgi
        out = tmp_path / f"{dxgi}_out.dds"
        assert write_image(out, pic) == []
        raw = out.read_bytes()
        assert raw[84:88] == b"DX10" and struct.unpack_from("<I", raw, 128)[0] == dxgi
        assert len(raw) == len(src.read_bytes())  # one level, the same block layout
        with Image.open(out) as im:
            top = np.asarray(im.convert("RGBA"))
        assert np.abs(top.astype(int) - _by_ffmpeg(out, top.shape)).max() <= 1


def test_an_srgb_texture_stays_srgb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An sRGB texture nothing here encodes (BC7_UNORM_SRGB without etcpak; here one of 4x4 blocks of mode 6, all
    clear black) is written uncompressed as R8G8B8A8_UNORM_SRGB, so that a game still reads its colours as sRGB, with
    its mip levels; an R8G8B8A8_UNORM_SRGB source keeps its format and its pixels exactly."""
    _without_etcpak(monkeypatch)
    src = _dx10(tmp_path / "bc7.dds", (8, 8), 99, (bytes([0x40]) + bytes(15)) * 4)
    pic = read_image(src)
    assert pic.texture == dds.Texture("BC7", False, 99)
    out = tmp_path / "bc7_out.dds"
    assert write_image(out, pic) == ["DDS written uncompressed: Pillow encodes no BC7 (the source's compression); "
                                     "pip install 'classsr[textures]' (etcpak) keeps it, or compress it with the "
                                     "game's own tool"]
    raw = out.read_bytes()
    assert raw[84:88] == b"DX10" and struct.unpack_from("<I", raw, 128)[0] == 29 and len(raw) == 148 + 8 * 8 * 4
    with Image.open(out) as im:
        assert im.info.get("gamma") == pytest.approx(1 / 2.2) and im.mode == "RGBA" and not np.asarray(im).any()
    level0 = RGBA.tobytes()
    mips = [Image.fromarray(RGBA).resize(s, Image.Resampling.BOX).tobytes() for s in dds.mip_sizes(52, 40)[1:]]
    src = _dx10(tmp_path / "srgb.dds", (52, 40), 29, level0 + b"".join(mips), mips=6)
    pic = read_image(src)
    assert pic.texture == dds.Texture(None, True, 29) and np.array_equal(pic.pixels, SMOOTH)
    assert write_image(tmp_path / "srgb_out.dds", pic) == []
    assert (tmp_path / "srgb_out.dds").read_bytes() == src.read_bytes()  # header, every level: as the source


def test_formats_pillow_does_not_read_are_read_as_the_ones_of_the_same_data(tmp_path: Path) -> None:
    """BC1-3 in sRGB (DXGI 72, 75, 78: a game's colour maps), and B8G8R8A8 and B8G8R8X8 (87, 88, and their sRGB 91,
    93), were "a kind of DDS this Pillow does not decode" (OpenImageIO's test textures): now read as the formats of
    the same data Pillow reads, blue and red put back, X not taken for alpha. A BC3 sRGB one keeps its format (its
    blocks those of the UNORM one's output); a BGRA sRGB one is written as R8G8B8A8 sRGB, the same pixels."""
    legacy = tmp_path / "legacy.dds"
    Image.fromarray(RGBA).save(legacy, pixel_format="DXT5")
    blocks = legacy.read_bytes()[128:]
    unorm = read_image(_dx10(tmp_path / "77.dds", (52, 40), 77, blocks))
    srgb = read_image(_dx10(tmp_path / "78.dds", (52, 40), 78, blocks))
    assert srgb.texture is not None and srgb.texture.dxgi == 78 and np.array_equal(srgb.pixels, unorm.pixels)
    assert write_image(tmp_path / "78_out.dds", srgb) == [] and write_image(tmp_path / "77_out.dds", unorm) == []
    raw = (tmp_path / "78_out.dds").read_bytes()
    assert struct.unpack_from("<I", raw, 128)[0] == 78 and raw[148:] == (tmp_path / "77_out.dds").read_bytes()[148:]
    bgra = RGBA[..., [2, 1, 0, 3]].tobytes()
    for dxgi in (87, 91):
        pic = read_image(_dx10(tmp_path / f"{dxgi}.dds", (52, 40), dxgi, bgra))
        assert np.array_equal(pic.pixels, SMOOTH) and np.array_equal(pic.alpha, RGBA[..., 3]), dxgi
    bgrx = np.dstack([SMOOTH[..., ::-1], np.zeros(SMOOTH.shape[:2], np.uint8)]).tobytes()  # (X: 0, not clear)
    pic = read_image(_dx10(tmp_path / "93.dds", (52, 40), 93, bgrx))
    assert np.array_equal(pic.pixels, SMOOTH) and pic.alpha is None
    srgb_bgra = read_image(tmp_path / "91.dds")
    assert write_image(tmp_path / "91_out.dds", srgb_bgra) == []
    raw = (tmp_path / "91_out.dds").read_bytes()
    assert struct.unpack_from("<I", raw, 128)[0] == 29 and raw[148:] == RGBA.tobytes()  # R8G8B8A8_UNORM_SRGB


def test_rgb10a2_and_rxgb_are_read(tmp_path: Path) -> None:
    """R10G10B10A2 (DXGI 24; "Unimplemented DXGI format 24"): each 10-bit level rounded to 8 bits, the 2-bit alpha
    stretched (OpenImageIO's test texture reads as its 8-bit ones' colours); RXGB (Doom 3's normal maps, "Unimplemented
    pixel format"): DXT5 blocks whose alpha holds red, read as RGB (within 1 level of ffmpeg's decoder, checked by
    hand), its cube map's other faces too."""
    rng = np.random.default_rng(6)
    levels = rng.integers(0, 1024, (40, 52, 3))
    alpha = rng.integers(0, 4, (40, 52))
    words = levels[..., 0] | (levels[..., 1] << 10) | (levels[..., 2] << 20) | (alpha << 30)
    pic = read_image(_dx10(tmp_path / "24.dds", (52, 40), 24, words.astype("<u4").tobytes()))
    assert np.array_equal(pic.pixels, ((levels * 255 + 511) // 1023).astype(np.uint8))
    assert pic.alpha is not None and np.array_equal(pic.alpha, (alpha * 85).astype(np.uint8))
    cube = [(words + k * 4).astype("<u4").tobytes() for k in range(6)]  # six faces, told apart by their red
    head = bytearray(dds._dx10_header((52, 40), 24, 1, 4 * 52))
    struct.pack_into("<I", head, 112, 0x200 | 0xFC00)  # DDSCAPS2_CUBEMAP, six faces
    struct.pack_into("<2I", head, 136, 0x4, 1)  # TEXTURECUBE, one cube
    (tmp_path / "cube.dds").write_bytes(bytes(head) + b"".join(cube))
    pic = read_image(tmp_path / "cube.dds")
    assert pic.texture is not None and len(pic.texture.faces) == 5
    for k, (pixels, face_alpha) in enumerate(pic.texture.faces, 1):
        red = (levels[..., 0] + k * 4) & 1023  # (carried into green where above 1023)
        assert np.array_equal(pixels[..., 0], ((red * 255 + 511) // 1023).astype(np.uint8)), k
        assert face_alpha is not None and np.array_equal(face_alpha, (alpha * 85).astype(np.uint8))
    swizzled = np.dstack([np.full(SMOOTH.shape[:2], 255, np.uint8), SMOOTH[..., 1:], SMOOTH[..., :1]])  # X G B R
    Image.fromarray(swizzled).save(tmp_path / "dxt5.dds", pixel_format="DXT5")
    raw = bytearray((tmp_path / "dxt5.dds").read_bytes())
    raw[84:88] = b"RXGB"
    (tmp_path / "rxgb.dds").write_bytes(raw)
    with Image.open(tmp_path / "dxt5.dds") as im:
        want = np.asarray(im.convert("RGBA"))[..., [3, 1, 2]]
    pic = read_image(tmp_path / "rxgb.dds")
    assert pic.alpha is None and np.array_equal(pic.pixels, want)
    assert np.abs(pic.pixels.astype(int) - SMOOTH).mean() < 3  # (DXT5's own loss)


def _faces(n: int) -> list[Image.Image]:
    """``n`` RGBA pictures told apart by their colour (each the gradient, its channels turned and shifted)."""
    return [Image.fromarray(np.dstack([np.roll(SMOOTH, k, axis=2) // 2 + 20 * k, RGBA[..., 3]])) for k in range(n)]


def _levels(face: Image.Image, kind: str | None, mips: bool) -> bytes:
    """A face's data as Pillow writes each of its levels alone (the largest first)."""
    sizes = dds.mip_sizes(*face.size) if mips else [face.size]
    data = b""
    for size in sizes:
        buf = io.BytesIO()
        face.resize(size, Image.Resampling.BOX).save(buf, format="DDS", **({"pixel_format": kind} if kind else {}))
        data += buf.getvalue()[128:]
    return data


@pytest.mark.parametrize(("kind", "mips"), [("DXT1", True), (None, False)])
def test_a_cube_map_keeps_its_six_faces(tmp_path: Path, kind: str | None, mips: bool) -> None:
    """A cube map's six faces (a skybox's) are read, each as Pillow reads it alone, and written back in their order
    under the cube map's header, each with its mip levels; another format takes the first face, said."""
    faces = _faces(6)
    buf = io.BytesIO()
    faces[0].save(buf, format="DDS", **({"pixel_format": kind} if kind else {}))
    head = bytearray(buf.getvalue()[:128])
    struct.pack_into("<I", head, 112, 0x200 | 0xFC00)  # DDSCAPS2_CUBEMAP, all six faces
    if mips:
        struct.pack_into("<I", head, 8, struct.unpack_from("<I", head, 8)[0] | 0x20000)
        struct.pack_into("<I", head, 28, 6)
    src = tmp_path / "sky.dds"
    src.write_bytes(bytes(head) + b"".join(_levels(face, kind, mips) for face in faces))
    pic = read_image(src)
    assert pic.notes == [] and pic.texture is not None and len(pic.texture.faces) == 5
    for k, (pixels, alpha) in enumerate(pic.texture.faces, 1):
        alone = tmp_path / f"face{k}.dds"
        faces[k].save(alone, **({"pixel_format": kind} if kind else {}))
        with Image.open(alone) as im:
            want = np.asarray(im.convert("RGBA"))
        assert np.array_equal(pixels, want[..., :3])
        assert (alpha is None) if kind == "DXT1" else np.array_equal(alpha, want[..., 3])  # DXT1: 1-bit, here opaque
    out = tmp_path / "out.dds"
    assert write_image(out, pic) == []
    raw = out.read_bytes()
    assert struct.unpack_from("<I", raw, 112)[0] & 0xFE00 == 0xFE00 and raw[84:88] == (kind or "\0\0\0\0").encode()
    assert len(raw) == 128 + 6 * len(_levels(faces[0], kind, mips))
    again = read_image(out)
    assert again.texture is not None and len(again.texture.faces) == 5
    for (pixels, _), face in zip(again.texture.faces, faces[1:], strict=True):
        assert np.abs(pixels.astype(int) - np.asarray(face)[..., :3]).mean() < (4 if kind else 0.01)
    assert write_image(tmp_path / "out.png", pic) == ["DDS cube map: PNG holds one picture, its first face; its other "
                                                      "5 faces are written only to a .dds output"]


@pytest.mark.parametrize(("dxgi", "kind"), [(71, "DXT1"), (72, "DXT1"), (28, None)])  # BC1_UNORM, its sRGB; R8G8B8A8
def test_a_cube_map_array_keeps_every_cube(tmp_path: Path, dxgi: int, kind: str | None) -> None:
    """A cube map array (DX10: TEXTURECUBE, two cubes: reflection probes) is read face by face, all twelve, and
    written back under a DX10 header that says two cubes, each face with its mip levels (before, its first face); in
    BC1 sRGB, which Pillow reads as BC1 UNORM, too."""
    faces = _faces(12)
    sizes = dds.mip_sizes(*faces[0].size)
    levels = [_levels(face, kind, True) if kind else  # R8G8B8A8: each level's bytes as they are
              b"".join(face.resize(size, Image.Resampling.BOX).tobytes() for size in sizes) for face in faces]
    head = bytearray(dds._dx10_header(faces[0].size, dxgi, len(dds.mip_sizes(*faces[0].size)),
                                      len(levels[0]) if kind else 4 * faces[0].width))  # fmt: skip
    struct.pack_into("<I", head, 112, 0x200 | 0xFC00)  # DDSCAPS2_CUBEMAP, six faces
    struct.pack_into("<2I", head, 136, 0x4, 2)  # TEXTURECUBE, two cubes
    src = tmp_path / "probes.dds"
    src.write_bytes(bytes(head) + b"".join(levels))
    pic = read_image(src)
    assert pic.notes == [] and pic.texture is not None and pic.texture.count == 12 and len(pic.texture.faces) == 11
    for k, (pixels, _) in enumerate(pic.texture.faces, 1):  # each as Pillow reads it alone
        alone = tmp_path / f"face{k}.dds"
        alone.write_bytes(dds._dx10_header(faces[k].size, 71 if dxgi == 72 else dxgi, len(sizes), len(levels[k]) if
                                           kind else 4 * faces[k].width) + levels[k])  # fmt: skip
        with Image.open(alone) as im:
            assert np.array_equal(pixels, np.asarray(im.convert("RGB")))
    out = tmp_path / "out.dds"
    assert write_image(out, pic) == []
    raw = out.read_bytes()
    assert raw[84:88] == b"DX10" and struct.unpack_from("<3I", raw, 128)[0] == dxgi
    assert struct.unpack_from("<2I", raw, 136) == (0x4, 2) and len(raw) == 148 + 12 * len(levels[0])
    again = read_image(out)
    assert again.texture is not None and len(again.texture.faces) == 11
    for (pixels, _), (want, _) in zip(again.texture.faces, pic.texture.faces, strict=True):
        assert np.abs(pixels.astype(int) - want).mean() < (4 if kind else 0.01)


def test_a_cube_map_face_grows_into_the_faces_it_meets() -> None:
    """Each face grown by its neighbours' texels: inside, itself; past an edge, the face D3D puts there, unfolded as
    the cross draws it (+Z's right edge meets +X's left, rows aligned; +Z's top meets +Y's bottom, columns aligned;
    the ring +Z, +X, -Z, -X closes); and every edge the same from both sides: the texel past face f's edge is face
    g's edge texel, and the texel past g's edge there is f's own."""
    n, pad = 8, 3
    grown = list(dds.cube_neighbours(n, pad))
    inside = slice(pad, pad + n)
    for f, (face, row, col) in enumerate(grown):
        assert face.shape == (n + 2 * pad, n + 2 * pad) and (face[inside, inside] == f).all()
        assert (row[inside, inside] == np.arange(n)[:, None]).all() and (col[inside, inside] == np.arange(n)).all()
    for left, right in ((4, 0), (0, 5), (5, 1), (1, 4)):  # +Z | +X | -Z | -X | +Z
        face, row, col = grown[left]
        assert (face[inside, pad + n:] == right).all() and (row[inside, pad + n] == np.arange(n)).all()
        assert (col[inside, pad + n:] == np.arange(pad)).all()
    face, row, col = grown[4]
    assert (face[:pad, inside] == 2).all() and (row[:pad, pad] == np.arange(n - pad, n)).all()
    assert (col[pad - 1, inside] == np.arange(n)).all()
    for f, (face, row, col) in enumerate(grown):
        for i, j in [(pad - 1, k) for k in range(pad, pad + n)] + [(pad + n, k) for k in range(pad, pad + n)] + [
                (k, pad - 1) for k in range(pad, pad + n)] + [(k, pad + n) for k in range(pad, pad + n)]:  # fmt: skip
            g, r, c = int(face[i, j]), int(row[i, j]), int(col[i, j])
            assert g != f and (r in (0, n - 1) or c in (0, n - 1))  # an edge texel of another face
            back = [(r + pad + dr, c + pad + dc) for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))]
            own = (min(max(i, pad), pad + n - 1) - pad, min(max(j, pad), pad + n - 1) - pad)
            assert any(grown[g][0][b] == f and (grown[g][1][b], grown[g][2][b]) == own for b in back)


def test_cube_faces_with_and_without_alpha_share_one_layout(tmp_path: Path) -> None:
    """An uncompressed cube map whose faces differ in alpha (one made transparent, as an upscaled face may come back)
    is written with every face in one layout (RGBA), so each face reads back as it was."""
    faces = _faces(6)
    src = tmp_path / "sky.dds"
    buf = io.BytesIO()
    faces[0].convert("RGB").save(buf, format="DDS")
    head = bytearray(buf.getvalue()[:128])
    struct.pack_into("<I", head, 112, 0x200 | 0xFC00)
    src.write_bytes(bytes(head) + b"".join(_levels(face.convert("RGB"), None, False) for face in faces))
    pic = read_image(src)
    assert pic.texture is not None and all(a is None for _, a in pic.texture.faces)
    others = list(pic.texture.faces)
    others[1] = (others[1][0], np.full((40, 52), 100, np.uint8))
    pic = replace(pic, texture=replace(pic.texture, faces=tuple(others)))
    assert write_image(tmp_path / "out.dds", pic) == []
    assert len((tmp_path / "out.dds").read_bytes()) == 128 + 6 * 52 * 40 * 4
    again = read_image(tmp_path / "out.dds").texture
    assert again is not None
    for (pixels, alpha), (want, want_alpha) in zip(again.faces, others, strict=True):
        assert np.array_equal(pixels, want) and (alpha is None if want_alpha is None else (alpha == 100).all())


def test_a_texture_array_keeps_its_textures(tmp_path: Path) -> None:
    """A DX10 texture array (here three BC1_UNORM textures) keeps its size and format."""
    faces = _faces(3)
    data = b"".join(_levels(face, "DXT1", False) for face in faces)
    src = tmp_path / "array.dds"
    head = bytearray(dds._dx10_header((52, 40), 71, 1, len(data) // 3))
    struct.pack_into("<I", head, 140, 3)  # arraySize
    src.write_bytes(bytes(head) + data)
    pic = read_image(src)
    assert pic.notes == [] and pic.texture is not None and len(pic.texture.faces) == 2
    out = tmp_path / "out.dds"
    assert write_image(out, pic) == []
    raw = out.read_bytes()
    assert struct.unpack_from("<2I", raw, 136) == (0, 3) and struct.unpack_from("<I", raw, 128)[0] == 71
    assert len(raw) == len(src.read_bytes())
    last = read_image(out).texture
    assert last is not None and np.abs(last.faces[1][0].astype(int) - np.asarray(faces[2])[..., :3]).mean() < 4


def test_a_cube_map_cut_short_says_only_its_first_face_is_upscaled(tmp_path: Path) -> None:
    """A cube map whose file holds fewer faces than its header says (here one): its first face, said, the output one
    2D texture."""
    buf = tmp_path / "face.dds"
    Image.fromarray(RGBA).save(buf, pixel_format="DXT5")
    raw = bytearray(buf.read_bytes())
    assert read_image(buf).notes == []
    struct.pack_into("<I", raw, 112, 0x200 | 0xFC00)  # DDSCAPS2_CUBEMAP and its six faces (only the first stored here)
    (tmp_path / "cube.dds").write_bytes(bytes(raw))
    assert read_image(tmp_path / "cube.dds").notes == ["DDS cube map: only its first face is upscaled, written as one "
                                                        "2D texture"]
    block = buf.read_bytes()[128:]
    head = bytearray(dds._dx10_header((52, 40), 77, 1, len(block)))
    struct.pack_into("<I", head, 128 + 12, 6)  # an array of six
    (tmp_path / "array.dds").write_bytes(bytes(head) + block)
    assert read_image(tmp_path / "array.dds").notes == ["DDS texture array: only its first texture is upscaled, "
                                                         "written as one 2D texture"]



def _legacy(path: Path, size: tuple[int, int], pfflags: int, bits: int, masks: tuple[int, ...], data: bytes) -> Path:
    """A DDS file under a legacy header of one uncompressed level: its pixel format's flags, bits and masks."""
    width, height = size
    head = struct.pack("<4s7I44x", b"DDS ", 124, 0x100F, height, width, width * bits // 8, 0, 0)
    head += struct.pack("<2I4x5I", 32, pfflags, bits, *masks, *(0,) * (4 - len(masks))) + struct.pack("<4I4x", 0x1000, 0, 0, 0)
    path.write_bytes(head + data)
    return path


def test_luminance_flagged_rgb_too_is_gray_and_a_palettes_alpha_is_kept(tmp_path: Path) -> None:
    """Luminance flagged RGB too (DDPF_LUMINANCE | DDPF_RGB, KDE's gray8.dds), which Pillow reads as red, is gray (with
    its alpha, 16 bits a pixel); an 8-bit palette of RGBA colours (DDPF_PALETTEINDEXED8, KDE's indexed.dds) keeps its
    alpha, which was dropped."""
    gray = SMOOTH[..., 0]
    pic = read_image(_legacy(tmp_path / "l8.dds", (52, 40), 0x20040, 8, (0xFF,), gray.tobytes()))
    assert pic.gray and pic.alpha is None and np.array_equal(pic.pixels[..., 0], gray)
    la = np.dstack([gray, RGBA[..., 3]])
    pic = read_image(_legacy(tmp_path / "la8.dds", (52, 40), 0x20041, 16, (0xFF, 0, 0, 0xFF00), la.tobytes()))
    assert pic.gray and np.array_equal(pic.pixels[..., 0], gray)
    assert pic.alpha is not None and np.array_equal(pic.alpha, RGBA[..., 3])
    palette = np.zeros((256, 4), np.uint8)
    palette[:, 0], palette[:, 1], palette[:, 2], palette[:, 3] = np.arange(256), 255 - np.arange(256), 7, np.arange(256)
    index = (SMOOTH[..., 0] // 2).astype(np.uint8)
    pic = read_image(_legacy(tmp_path / "p8.dds", (52, 40), 0x20, 8, (), palette.tobytes() + index.tobytes()))
    assert np.array_equal(pic.pixels, palette[index][..., :3])
    assert pic.alpha is not None and np.array_equal(pic.alpha, palette[index][..., 3])


def test_a_normal_map_and_gimps_ycocg_are_said_and_keep_their_layout(tmp_path: Path) -> None:
    """A DXT5 normal map (DDPF_NORMAL: X in alpha, Y in green: OpenImageIO's dds_bc3nm.dds) and GIMP's DXT5 of YCoCg
    (its YCG1 marker: dds_bc3ycocg.dds) were read as colour and alpha without a word, and a DDS output lost the flag
    and the marker: said, upscaled as stored, both kept in a DDS output. RXGB (read as RGB since the eighty-fifth
    pass) was written back as plain DXT5: as RXGB now."""
    Image.fromarray(RGBA).save(tmp_path / "dxt5.dds", pixel_format="DXT5")
    plain = (tmp_path / "dxt5.dds").read_bytes()
    normal = bytearray(plain)
    struct.pack_into("<I", normal, 80, struct.unpack_from("<I", normal, 80)[0] | 0x80000000)
    marked = bytearray(plain)
    marked[32:48] = b"GIMP-DDS" + struct.pack("<I", 0x3095C) + b"YCG1"
    for name, data, said in (("nm", normal, "DDS normal map (DXT5nm: X in its alpha, Y in green)"),
                             ("ycocg", marked, "DDS of YCoCg (GIMP's)")):  # fmt: skip
        (tmp_path / f"{name}.dds").write_bytes(bytes(data))
        pic = read_image(tmp_path / f"{name}.dds")
        assert pic.notes and pic.notes[0].startswith(said) and pic.alpha is not None
        write_image(tmp_path / f"{name}_out.dds", pic)
        out = (tmp_path / f"{name}_out.dds").read_bytes()
        assert out[84:88] == b"DXT5" and out[80:84] == bytes(data[80:84]) and out[32:48] == bytes(data[32:48])
    assert read_image(tmp_path / "dxt5.dds").notes == []
    rxgb = bytearray(normal)
    rxgb[84:88] = b"RXGB"  # Doom 3's (GIMP flags it a normal map too): red in alpha, read as RGB
    (tmp_path / "rxgb.dds").write_bytes(bytes(rxgb))
    pic = read_image(tmp_path / "rxgb.dds")
    assert pic.alpha is None and pic.notes == [] and np.abs(pic.pixels[..., 0].astype(int) - RGBA[..., 3]).max() <= 8
    write_image(tmp_path / "rxgb_out.dds", pic)  # written back as RXGB (it was plain DXT5: red where Doom 3 reads none)
    out = (tmp_path / "rxgb_out.dds").read_bytes()
    assert out[84:88] == b"RXGB" and out[80:84] == bytes(rxgb[80:84])
    assert np.abs(read_image(tmp_path / "rxgb_out.dds").pixels.astype(int) - pic.pixels).mean() < 4


def test_float_textures_are_read_as_linear_light(tmp_path: Path) -> None:
    """DDS of floats (HDR textures: R16G16B16A16_FLOAT, R32_FLOAT, the legacy A16B16G16R16F; KDE's rgba16dx10.dds,
    r32.dds, rgba_f16.dds, ...) were "a kind of DDS this Pillow does not decode": read as an EXR's light, kept above
    1.0 into an OpenEXR output (straight alpha and premultiplied alike), one channel as gray, two as red and green."""
    from classsr_cli.io import exr

    rng = np.random.default_rng(8)
    light = (rng.random((12, 16, 3)) * 3).astype(np.float16).astype(np.float32)  # up to 3.0
    alpha = np.linspace(0.25, 1, 16, dtype=np.float16).astype(np.float32)[None].repeat(12, 0)
    straight = np.dstack([light, alpha])
    premultiplied = np.dstack([light * alpha[..., None], alpha])
    for name, mode, values in (("straight", 1, straight), ("premultiplied", 2, premultiplied)):
        head = bytearray(dds._dx10_header((16, 12), 10, 1, 16 * 8))
        struct.pack_into("<I", head, 144, mode)  # the DX10 header's alpha mode
        (tmp_path / f"{name}.dds").write_bytes(bytes(head) + values.astype("<f2").tobytes())
        pic = read_image(tmp_path / f"{name}.dds")
        assert pic.linear is not None and pic.alpha is not None and pic.notes[0].startswith("DDS of floats")
        write_image(tmp_path / f"{name}.exr", pic)
        back = exr.decode(ffmpeg_exe(), tmp_path / f"{name}.exr")
        assert np.abs(back[..., :3] - premultiplied[..., :3]).max() < 0.02, name  # (EXR stores it premultiplied)
        assert np.abs(back[..., 3] - alpha).max() < 1e-3
    gray = (rng.random((12, 16)) * 2).astype(np.float32)
    legacy = bytearray((tmp_path / "straight.dds").read_bytes()[:128])
    struct.pack_into("<I", legacy, 84, 114)  # D3DFMT_R32F under a legacy header
    (tmp_path / "r32.dds").write_bytes(bytes(legacy) + gray.astype("<f4").tobytes())
    pic = read_image(tmp_path / "r32.dds")
    assert pic.gray and pic.alpha is None and pic.linear is not None
    write_image(tmp_path / "r32.exr", pic)
    assert np.abs(exr.decode(ffmpeg_exe(), tmp_path / "r32.exr")[..., 0] - gray).max() < 0.01
    rg = bytearray(legacy)
    struct.pack_into("<I", rg, 84, 112)  # G16R16F: red and green
    (tmp_path / "rg.dds").write_bytes(bytes(rg) + np.dstack([gray, gray / 2]).astype("<f2").tobytes())
    pic = read_image(tmp_path / "rg.dds")
    assert pic.mode == "RGB" and not pic.pixels[..., 2].any()
    (tmp_path / "cut.dds").write_bytes((tmp_path / "straight.dds").read_bytes()[:400])
    with pytest.raises(InputError, match=r"cut\.dds: truncated or corrupt image \(cut short"):
        read_image(tmp_path / "cut.dds")


def test_16_bit_levels_and_alpha_alone_are_read(tmp_path: Path) -> None:
    """R16_UNORM (a height map: OpenImageIO's dds_dxgi_r16.dds), R16G16B16A16_UNORM, the legacy A16B16G16R16, and A8
    (an alpha-only texture, DDPF_ALPHA: its dds_a8.dds) were "a kind of DDS this Pillow does not decode": read, 16-bit
    levels at 16 bits (kept into PNG), A8's alpha as gray."""
    rng = np.random.default_rng(9)
    height = rng.integers(0, 65536, (12, 16)).astype("<u2")
    (tmp_path / "r16.dds").write_bytes(dds._dx10_header((16, 12), 56, 1, 32) + height.tobytes())
    pic = read_image(tmp_path / "r16.dds")
    assert pic.gray and pic.bits == 16 and np.array_equal(pic.pixels[..., 0], height) and pic.notes == []
    write_image(tmp_path / "r16.png", pic)
    assert np.array_equal(read_image(tmp_path / "r16.png").pixels[..., 0], height)
    rgba = rng.integers(0, 65536, (12, 16, 4)).astype("<u2")
    (tmp_path / "rgba16.dds").write_bytes(dds._dx10_header((16, 12), 11, 1, 128) + rgba.tobytes())
    pic = read_image(tmp_path / "rgba16.dds")
    assert pic.bits == 16 and np.array_equal(pic.pixels, rgba[..., :3]) and np.array_equal(pic.alpha, rgba[..., 3])
    legacy = bytearray(_legacy(tmp_path / "x.dds", (16, 12), 0x4, 0, (), b"").read_bytes())
    legacy[84:88] = struct.pack("<I", 36)  # D3DFMT_A16B16G16R16, as its FourCC
    (tmp_path / "legacy16.dds").write_bytes(bytes(legacy) + rgba.tobytes())
    assert np.array_equal(read_image(tmp_path / "legacy16.dds").pixels, rgba[..., :3])
    gray16 = height.astype("<u2")
    for name, flags, fourcc in (("l16.dds", 0x20000, 0), ("l16cc.dds", 0x4, 81)):  # DDPF_LUMINANCE 16-bit; FourCC 81
        masks = (0xFFFF,) if not fourcc else ()
        data = bytearray(_legacy(tmp_path / name, (16, 12), flags, 16, masks, gray16.tobytes()).read_bytes())
        data[84:88] = struct.pack("<I", fourcc) if fourcc else data[84:88]
        (tmp_path / name).write_bytes(bytes(data))
        assert np.array_equal(read_image(tmp_path / name).pixels[..., 0], gray16), name
    mask = RGBA[..., 3]
    pic = read_image(_legacy(tmp_path / "a8.dds", (52, 40), 0x2, 8, (0, 0, 0, 0xFF), mask.tobytes()))
    assert pic.gray and np.array_equal(pic.pixels[..., 0], mask)
    assert pic.notes == ["DDS of alpha alone (A8): its alpha read as gray"]
