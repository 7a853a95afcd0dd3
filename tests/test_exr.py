"""classsr_cli.io.exr and OpenEXR in classsr_cli.io.image: the header read as OpenEXR lays it out; classsr's writer
checked value for value by an independent reader (the bundled ffmpeg's decoder); scene-linear light split into the
16-bit pixels the models run on and the light outside 0-1, and joined back; attributes and alpha kept."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classsr_cli.errors import InputError
from classsr_cli.io import exr
from classsr_cli.io.icc import srgb_decode, srgb_encode
from classsr_cli.io.image import Picture, peek_size, read_image, write_image, write_image_rows


def attribute(name: str, kind: str, value: bytes) -> bytes:
    return name.encode() + b"\x00" + kind.encode() + b"\x00" + struct.pack("<i", len(value)) + value


def handmade(width: int, height: int, *, channels: str | list[str] = "BGR", version: int = 2, display: tuple[int, ...] | None = None,
             extra: bytes = b"", types: str = "", compression: int = 3) -> bytes:  # fmt: skip
    """An EXR header laid out by hand from OpenEXR's file layout (not by classsr's writer); ``types`` the channels'
    pixel types (1 half, 2 float; half where not given)."""
    kinds = [int(t) for t in types.ljust(len(channels), "1")]
    chlist = b"".join(c.encode() + b"\x00" + struct.pack("<iB3xii", k, 0, 1, 1)
                      for c, k in zip(channels, kinds, strict=True)) + b"\x00"  # fmt: skip
    data = struct.pack("<4i", 0, 0, width - 1, height - 1)
    return (exr.MAGIC + struct.pack("<I", version) + attribute("channels", "chlist", chlist)
            + attribute("compression", "compression", bytes([compression])) + attribute("dataWindow", "box2i", data)
            + attribute("displayWindow", "box2i", struct.pack("<4i", *(display or (0, 0, width - 1, height - 1))))
            + attribute("lineOrder", "lineOrder", b"\x00") + extra + b"\x00")  # fmt: skip


def test_the_header_is_read_as_openexr_lays_it_out() -> None:
    chroma = struct.pack("<8f", 0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767)  # ACES AP1
    head = exr.header(handmade(1920, 1080, channels="ABGRZ", extra=attribute("chromaticities", "chromaticities", chroma)))
    assert (head.width, head.height, head.half, head.tiled, head.deep, head.multipart) == (1920, 1080, True, False, False, False)
    assert [n for n, _ in head.channels] == list("ABGRZ") and head.others == ("Z",)
    assert head.chromaticities() == pytest.approx((0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767))
    assert exr.header(handmade(8, 8, version=2 | 0x1000)).multipart and exr.header(handmade(8, 8, version=2 | 0x800)).deep
    framed = exr.header(handmade(100, 50, display=(10, 0, 89, 49)))  # data wider than its frame
    assert (framed.width, framed.height, framed.overscan) == (80, 50, True)
    for bad in (b"\x89PNG\r\n\x1a\n", handmade(8, 8)[:40], handmade(8, 8, display=(5, 5, 0, 0))):
        with pytest.raises(ValueError):
            exr.header(bad)


@pytest.mark.slow
@pytest.mark.parametrize("half", [True, False])
@pytest.mark.parametrize(("channels", "height"), [(1, 16), (3, 37), (4, 1), (4, 33)])
def test_the_writer_is_read_back_value_for_value_by_ffmpeg(channels: int, height: int, half: bool, tmp_path: Path) -> None:
    """Bands of uneven height, several threads, a last block short of 16 lines: every stored value as written (half
    floats rounded as numpy rounds them), attributes and the record kept."""
    from classsr_cli.io.video import ffmpeg_exe

    rng = np.random.default_rng(channels * 100 + height)
    x = (rng.standard_normal((height, 23, channels)) * 3).astype(np.float32)
    path = tmp_path / "w.exr"
    with path.open("wb") as f:
        exr.write(f, (x[i : i + 7] for i in range(0, height, 7)), width=23, height=height, channels=channels, half=half,
                  attributes={"owner": ("string", b"Ada"), "dataWindow": ("box2i", bytes(16))}, made_by='{"m": 1}',
                  workers=2)  # fmt: skip
    got = exr.decode(ffmpeg_exe(), path)
    assert np.array_equal(got, x.astype(np.float16).astype(np.float32) if half else x)
    head = exr.header(path.read_bytes())
    assert head.half == half and head.attributes["owner"] == ("string", b"Ada")  # carried; the layout's own kept
    assert head.attributes["classsr"] == ("string", b'{"m": 1}') and (head.width, head.height) == (23, height)


def test_linear_light_is_split_and_joined_back() -> None:
    """Light within 0-1 becomes 16-bit sRGB-encoded pixels, within a 16-bit level; the rest is kept exactly and added
    back; colour premultiplied by alpha is divided by it, then multiplied again; non-finite values counted. Light
    mostly above 1 is made darker by whole stops until 99 % of the visible pixels lie within 0-1, and brought back;
    shown in a format of levels 0-1 as bright as it was, clipped."""
    rng = np.random.default_rng(0)
    for scale, stops in ((0.9, 0), (2.5, 2), (7.0, 3)):
        light = (rng.random((6, 9, 3)) * scale - 0.1).astype(np.float32)
        light[0, 0, 0] = np.nan
        alpha = rng.random((6, 9)).astype(np.float32)
        alpha[1, 1] = 0.0
        stored = light * alpha[..., None]
        pixels, a16, linear, bad = exr.split(stored.copy(), alpha, half=True)
        assert pixels.dtype == np.uint16 and a16 is not None and bad == 1 and linear.stops == stops
        want = np.nan_to_num(light)
        held = np.where(alpha[..., None] > 0, want, 0)  # colour under alpha 0 stays as stored: 0
        assert linear.share == pytest.approx(np.mean(np.any((held < 0) | (held > 1), axis=-1)))
        back = exr.linear_rows(pixels, a16, linear, 0, half=True)
        seen = alpha > 1e-3
        assert np.abs(back[..., :3] - want * alpha[..., None])[seen].max() < 2e-4 * scale  # 16-bit levels, not more
        assert np.abs(back[..., 3] - alpha).max() <= 0.5 / 65535 + 1e-7
        darker = np.clip(want * 2.0**-stops, 0, 1)
        assert np.abs(srgb_decode(pixels / 65535.0) - darker)[seen].max() < 1e-4
        as_shown = srgb_decode(exr.shown(pixels, linear) / 65535.0)
        assert np.abs(as_shown - np.clip(want, 0, 1))[seen].max() < 2e-4 * 2**stops
    assert np.allclose(srgb_decode(srgb_encode(np.linspace(0, 1, 101))), np.linspace(0, 1, 101), atol=1e-12)


@pytest.mark.slow
def test_an_exr_within_0_1_reads_as_the_same_picture_in_16_bit_png(tmp_path: Path) -> None:
    """A float EXR of light within 0-1 gives the pixels a 16-bit PNG of the same encoded levels gives, no rest, no
    notes; written back as EXR, the same floats within 16-bit precision, in float (as it came)."""
    rng = np.random.default_rng(1)
    levels = rng.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    light = srgb_decode(levels / 65535.0).astype(np.float32)
    path = tmp_path / "in.exr"
    with path.open("wb") as f:
        exr.write(f, [light], width=30, height=20, channels=3, half=False)
    picture = read_image(path)
    assert picture.source_format == "EXR" and picture.mode == "RGB" and picture.bits == 16 and not picture.notes
    assert np.abs(picture.pixels.astype(int) - levels).max() <= 1 and picture.linear is not None
    assert picture.linear.outside is None and not picture.linear.half
    assert peek_size(path) == (20, 30)
    write_image(tmp_path / "out.exr", picture)
    again = read_image(tmp_path / "out.exr")
    assert np.abs(again.pixels.astype(int) - picture.pixels).max() <= 1 and again.linear and not again.linear.half


@pytest.mark.slow
def test_highlights_keep_their_level_through_an_upscale(tiny_model_path: Path, tmp_path: Path) -> None:
    """A lamp at 3.0 over a seventh of the picture, and a sun at 40 on four pixels: the light is upscaled 2 stops darker
    (the lamp at 0.75, within the model's range; the sun at 10, its 9.0 above 1 enlarged by bicubic interpolation) and
    brought back: an EXR output holds what the model makes of the pixels (as from a 16-bit PNG of them) plus bicubic's
    enlargement of the rest, four times as bright; a PNG output shows it as bright as it was, clipped, and says so,
    its colours brought from the EXR's primaries (ACEScg's chromaticities) into sRGB's; written in bands too, the same
    file; chromaticities and the owner carried, with the record of the upscale."""
    from classsr_cli.pipeline import upscale_file

    light = np.full((40, 48, 3), 0.18, np.float32)
    light[8:24, 8:24] = 3.0
    light[30:32, 30:32] = 40.0
    chroma = struct.pack("<8f", 0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767)
    path = tmp_path / "lamp.exr"
    with path.open("wb") as f:
        exr.write(f, [light], width=48, height=40, channels=3, half=True,
                  attributes={"chromaticities": ("chromaticities", chroma), "owner": ("string", b"Ada")})  # fmt: skip
    picture = read_image(path)
    assert any("primaries other than sRGB's" in n for n in picture.notes) and picture.linear is not None
    assert picture.linear.stops == 2 and any("upscaled 2 stops darker" in n for n in picture.notes)
    from classsr_cli import zoo
    from classsr_cli.pipeline import Upscaler
    from classsr_cli.runtime import resolve_device

    upscaler = Upscaler.of(zoo.load(str(tiny_model_path), 4, device=resolve_device("cpu")))
    upscale_file(upscaler, path, tmp_path / "whole.exr", stream_pixels=None)
    banded = upscale_file(upscaler, path, tmp_path / "banded.exr", stream_pixels=1)
    assert any("in bands of rows" in n for n in banded.notes)
    assert (tmp_path / "whole.exr").read_bytes() == (tmp_path / "banded.exr").read_bytes()
    from classsr_cli.io.video import ffmpeg_exe

    write_image(tmp_path / "clipped.png", Picture(pixels=picture.pixels))  # the light within 0-1, as a 16-bit PNG
    upscale_file(upscaler, tmp_path / "clipped.png", tmp_path / "model.png")
    model = read_image(tmp_path / "model.png").pixels
    above = picture.linear.resized(192, 160).band(0, 160)
    assert above is not None and not above[40:88, 40:88].any() and above[122, 122, 0] > 5  # the sun alone: 10 - 1
    whole = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(picture.linear.outside[..., c]), "F").resize(
        (192, 160), Image.Resampling.BICUBIC)) for c in range(3)], axis=-1)  # fmt: skip
    assert np.abs(above - whole).max() < 1e-5  # made from the rows bicubic reaches, as the whole picture resized
    for start, rows in ((0, 7), (100, 13), (118, 10), (150, 10)):
        got = picture.linear.resized(192, 160).band(start, rows)
        part = whole[start : start + rows]
        assert (got is None and not part.any()) or (got is not None and np.abs(got - part).max() < 1e-5)
    want = (srgb_decode(model / 65535.0) + above) * 4
    stored = exr.decode(ffmpeg_exe(), tmp_path / "whole.exr")
    assert stored.shape == (160, 192, 3) and np.all(np.abs(stored - want) <= np.maximum(1e-3, np.abs(want) * 2**-10))
    head = exr.header((tmp_path / "whole.exr").read_bytes())
    assert head.attributes["chromaticities"][1] == chroma and head.attributes["owner"] == ("string", b"Ada")
    assert head.attributes["classsr"][1].startswith(b'{"version"')
    png = upscale_file(upscaler, path, tmp_path / "lamp.png")
    assert any("light outside 0-1" in n and "is clipped" in n for n in png.notes)
    shown = srgb_decode(read_image(tmp_path / "lamp.png").pixels / 65535.0)  # as bright as it was, clipped at 1,
    acescg_to_srgb = np.array([[1.70505, -0.62179, -0.08326], [-0.13026, 1.14080, -0.01055],  # its colours in sRGB's
                               [-0.02400, -0.12897, 1.15297]])  # primaries (ACEScg's to sRGB's, Bradford)  # fmt: skip
    assert np.abs(shown - np.clip(np.clip(want, 0, 1) @ acescg_to_srgb.T, 0, 1)).max() < 2e-3
    upscale_file(upscaler, path, tmp_path / "lamp_bands.png", stream_pixels=1)  # written in bands: the same pixels
    assert np.array_equal(read_image(tmp_path / "lamp_bands.png").pixels, read_image(tmp_path / "lamp.png").pixels)


@pytest.mark.slow
def test_alpha_is_premultiplied_as_exr_stores_it(tmp_path: Path) -> None:
    """EXR's colour is premultiplied: read straight (divided by alpha), written premultiplied again; gray as Y."""
    from classsr_cli.io.video import ffmpeg_exe

    rng = np.random.default_rng(2)
    colour = rng.random((17, 19, 3)).astype(np.float32)
    alpha = rng.uniform(0.2, 1.0, (17, 19)).astype(np.float32)
    path = tmp_path / "a.exr"
    with path.open("wb") as f:
        exr.write(f, [np.concatenate([colour * alpha[..., None], alpha[..., None]], axis=2)], width=19, height=17,
                  channels=4, half=False)  # fmt: skip
    picture = read_image(path)
    assert picture.mode == "RGBA" and picture.alpha is not None
    assert np.abs(srgb_decode(picture.pixels / 65535.0) - colour).max() < 1e-4  # straight
    write_image(tmp_path / "b.exr", picture)
    stored = exr.decode(ffmpeg_exe(), tmp_path / "b.exr")
    assert np.abs(stored[..., :3] - colour * alpha[..., None]).max() < 1e-4 and np.abs(stored[..., 3] - alpha).max() < 1e-4
    gray = Picture(pixels=np.arange(256, dtype=np.uint8).reshape(16, 16, 1))
    write_image(tmp_path / "g.exr", gray)
    head = exr.header((tmp_path / "g.exr").read_bytes())
    assert [n for n, _ in head.channels] == ["Y"] and head.half
    back = read_image(tmp_path / "g.exr")
    assert back.mode == "L" and np.abs(back.pixels.astype(int) // 257 - gray.pixels).max() <= 1  # 8-bit levels kept
    rows = write_image_rows(tmp_path / "r.exr", (16, 16), 1, np.uint8, [gray.pixels[:5], gray.pixels[5:]])
    assert rows == [] and (tmp_path / "r.exr").read_bytes() == (tmp_path / "g.exr").read_bytes()
    veiled = Picture(pixels=gray.pixels, alpha=np.full((16, 16), 128, np.uint8))  # gray and alpha: Y and A
    write_image(tmp_path / "ya.exr", veiled)
    assert [n for n, _ in exr.header((tmp_path / "ya.exr").read_bytes()).channels] == ["A", "Y"]
    back = read_image(tmp_path / "ya.exr")
    assert back.mode == "LA" and back.alpha is not None and np.abs(back.alpha.astype(int) // 257 - 128).max() <= 1
    assert np.abs(back.pixels.astype(int) // 257 - gray.pixels).max() <= 1


def test_an_exr_is_refused_before_decoding_where_it_must_be(tmp_path: Path) -> None:
    """A header claiming too many pixels, a deep EXR, one without colour channels: refused from the header alone."""
    huge = tmp_path / "huge.exr"
    huge.write_bytes(handmade(100_000, 100_000) + bytes(64))
    with pytest.raises(InputError, match="above the 100,000,000-pixel limit"):
        read_image(huge)
    with pytest.raises(InputError, match="above the"):
        peek_size(huge)
    deep = tmp_path / "deep.exr"
    deep.write_bytes(handmade(8, 8, version=2 | 0x800) + bytes(64))
    with pytest.raises(InputError, match="deep EXR"):
        read_image(deep)
    depth = tmp_path / "z.exr"
    depth.write_bytes(handmade(8, 8, channels="Z") + bytes(64))
    with pytest.raises(InputError, match="without R, G, B or Y channels"):
        read_image(depth)
    mixed = tmp_path / "mixed.exr"
    mixed.write_bytes(handmade(8, 8, types="212") + bytes(64))
    with pytest.raises(InputError, match=r"R, G and B channels differ in pixel type \(half and float\)"):
        read_image(mixed)
    for channels, why in ((["BY", "RY", "Y"], "stored as luminance and chroma"), ("GR", r"without B \(it has R, G\)")):
        odd = tmp_path / f"{''.join(channels)}.exr"
        odd.write_bytes(handmade(8, 8, channels=channels) + bytes(64))
        with pytest.raises(InputError, match=why):
            read_image(odd)
    cut = tmp_path / "cut.exr"
    cut.write_bytes(handmade(8, 8)[:30])
    with pytest.raises(InputError, match="truncated or corrupt image"):
        read_image(cut)
    # A file cut short after its header: ffmpeg's decoder gives zeros for the chunks it lacks, and nothing says so.
    whole = (DATA / "tiled_piz_rgba.exr").read_bytes()
    for keep, why in ((700, "3 of its 4 chunks missing"), (len(whole) - 10, "its last chunk ends past the file's"),
                      (390, "its offset table ends")):  # fmt: skip
        cut.write_bytes(whole[:keep])
        with pytest.raises(InputError, match=rf"truncated or corrupt image \({why}"):
            read_image(cut)
    assert exr.cut_short(DATA / "tiled_piz_rgba.exr", exr.header(whole)) is None
    for name in ("dwaa.exr", "two_parts.exr", "layers.exr", "window.exr"):
        assert exr.cut_short(DATA / name, exr.header((DATA / name).read_bytes())) is None
    # A whole file with a byte of a chunk's data damaged: ffmpeg's decoder logs an error, gives the chunk's rows as
    # zeros and exits 0 (it was upscaled so); the error it logged now refuses the picture.
    light = np.linspace(0, 2, 48 * 64 * 3, dtype=np.float32).reshape(48, 64, 3)
    buf = io.BytesIO()
    exr.write(buf, [light], width=64, height=48, channels=3, half=True)
    damaged = bytearray(buf.getvalue())
    damaged[len(damaged) // 2] ^= 0xFF
    cut.write_bytes(bytes(damaged))
    with pytest.raises(InputError, match=r"truncated or corrupt image \(a chunk's data does not decode: "):
        read_image(cut)
    cut.write_bytes(buf.getvalue())
    assert read_image(cut).pixels.shape == (48, 64, 3)


DATA = Path(__file__).parent / "data" / "exr"  # written by OpenEXR 3.5.3 (scripts/exr_fixtures.py)


def tiled(width: int, height: int, levels: list[tuple[int, int, int, int]], mode: int, up: bool = False) -> bytes:
    """An uncompressed tiled RGB EXR in 8x8 half-float tiles laid out by hand from OpenEXR's file layout: ``levels``
    ``(lx, ly, width, height)`` in the file's order, each level's tiles row by row; B, G, R 0.25, 0.5 and 0.75."""
    tiles = attribute("tiles", "tiledesc", struct.pack("<IIB", 8, 8, mode | up << 4))
    head = handmade(width, height, version=2 | 0x200, extra=tiles, compression=0)
    chunks = []
    for lx, ly, w, h in levels:
        for ty in range(-(-h // 8)):
            for tx in range(-(-w // 8)):
                tw, th = min(8, w - 8 * tx), min(8, h - 8 * ty)
                data = b"".join(np.full(tw, 0.25 * (c + 1), np.float16).tobytes() for _ in range(th) for c in range(3))
                chunks.append(struct.pack("<4ii", tx, ty, lx, ly, len(data)) + data)
    at, offsets = len(head) + 8 * len(chunks), []
    for chunk in chunks:
        offsets.append(at)
        at += len(chunk)
    return head + struct.pack(f"<{len(chunks)}Q", *offsets) + b"".join(chunks)


@pytest.mark.slow
def test_a_mipmapped_or_ripmapped_exr_is_checked_whole_and_read_at_its_top_level(tmp_path: Path) -> None:
    """Textures' EXRs hold every level of a mipmap (or ripmap): the offset table lists their tiles, counted as OpenEXR
    lays them out (each level's size rounded down or up), so a file cut in its smallest levels is refused; the whole
    file reads as its full-size level."""
    down = [(0, 0, 17, 12), (1, 1, 8, 6), (2, 2, 4, 3), (3, 3, 2, 1), (4, 4, 1, 1)]  # 6 + 1 + 1 + 1 + 1 tiles
    up = [(0, 0, 17, 12), (1, 1, 9, 6), (2, 2, 5, 3), (3, 3, 3, 2), (4, 4, 2, 1), (5, 5, 1, 1)]  # 6 + 2 + 1 + 1 + 1 + 1
    rip = [(lx, ly, w, h) for ly, h in enumerate((12, 6, 3, 1)) for lx, w in enumerate((16, 8, 4, 2, 1))]
    for name, data, chunks in (("down", tiled(17, 12, down, 1), 10), ("up", tiled(17, 12, up, 1, up=True), 12),
                               ("rip", tiled(16, 12, rip, 2), 30)):  # fmt: skip
        head = exr.header(data)
        assert head.chunks == chunks, name
        path = tmp_path / f"{name}.exr"
        path.write_bytes(data)
        assert exr.cut_short(path, head) is None
        picture = read_image(path)
        assert picture.pixels.shape == (12, head.width, 3)
        assert np.allclose(srgb_decode(picture.pixels / 65535.0), [0.75, 0.5, 0.25], atol=1e-3)
        path.write_bytes(data[:-20])  # the last level's last tile cut
        with pytest.raises(InputError, match=r"truncated or corrupt image \(its last chunk ends past"):
            read_image(path)


def test_every_frame_of_a_sequence_is_checked_before_one_is_decoded(tmp_path: Path) -> None:
    """exr_frames: a frame cut short (ffmpeg's decoder would fill it with zeros) and a frame unlike the first (its
    size, channels, pixel type: the video reader reads every frame as the first) are named; alike whole frames pass."""
    from classsr_cli.io.image import exr_frames

    def frame(name: str, height: int = 12, channels: int = 3, half: bool = True) -> Path:
        path = tmp_path / name
        with path.open("wb") as f:
            exr.write(f, [np.full((height, 16, channels), 0.5, np.float32)], width=16, height=height,
                      channels=channels, half=half)  # fmt: skip
        return path

    frames = [frame(f"shot_{k}.exr") for k in range(4)]
    exr_frames(frames)
    whole = frames[2].read_bytes()
    frames[2].write_bytes(whole[:-5])
    with pytest.raises(InputError, match=r"shot_2\.exr: truncated or corrupt image \(its last chunk ends past"):
        exr_frames(frames)
    frames[2].write_bytes(whole)
    for odd, why in ((frame("tall.exr", height=20), r"16x20, the first frame \(shot_0.exr\) 16x12"),
                     (frame("alpha.exr", channels=4), r"R\+G\+B\+A, the first frame \(shot_0.exr\) R\+G\+B"),
                     (frame("float.exr", half=False), r"float pixels, the first frame \(shot_0.exr\) half")):  # fmt: skip
        with pytest.raises(InputError, match=rf"{odd.name}: a frame unlike the sequence's first \({why}\)"):
            exr_frames([*frames, odd])


def layered(data: bytes, layer: str) -> bytes:
    """The EXR ``data`` (one part, scanlines) with its channels put in ``layer`` (``R`` as ``layer.R``: Photoshop's
    and Blender's naming), its offset table moved on by as much as its header grew."""
    head = exr.header(data)
    chlist = b"".join(f"{layer}.{name}".encode() + b"\x00" + struct.pack("<iB3xii", kind, 0, 1, 1)
                      for name, kind in head.channels) + b"\x00"  # fmt: skip
    attributes = {**head.attributes, "channels": ("chlist", chlist)}
    header = data[:8] + b"".join(attribute(k, kind, v) for k, (kind, v) in attributes.items()) + b"\x00"
    assert head.chunks is not None
    offsets = struct.unpack_from(f"<{head.chunks}Q", data, head.table)
    moved = len(header) - head.table
    return header + struct.pack(f"<{head.chunks}Q", *(o + moved for o in offsets)) + data[head.table + 8 * head.chunks :]


def test_an_exr_whose_colour_is_in_a_layer_reads_that_layer(tmp_path: Path) -> None:
    """An EXR without R, G and B of its own, its colour in one layer (Photoshop 2026's ``Livello 1.R``, KDE's
    ps2026_testcard_rgb.exr), was refused as without colour channels: that layer is read, said; among several layers,
    Blender's finished picture (``ViewLayer.Combined``) is; a file whose layers leave it open is refused, and a
    sequence of layered frames, which `classsr video` does not read, is said to be."""
    from classsr_cli.io.image import exr_frames

    light = np.random.default_rng(5).random((12, 16, 4)).astype(np.float32) * 2
    path = tmp_path / "plain.exr"
    with path.open("wb") as f:
        exr.write(f, [light], width=16, height=12, channels=4, half=True)
    plain = read_image(path)
    (tmp_path / "layer.exr").write_bytes(layered(path.read_bytes(), "Livello 1"))
    pic = read_image(tmp_path / "layer.exr")
    assert np.array_equal(pic.pixels, plain.pixels) and np.array_equal(pic.alpha, plain.alpha)
    assert pic.notes == [*plain.notes, "EXR of layers: layer 'Livello 1' read (the file has no R, G and B of its own)"]
    with pytest.raises(InputError, match=r"layer\.exr: an EXR of layers \(its colour in layer 'Livello 1'\)"):
        exr_frames([tmp_path / "layer.exr"])
    names = [f"ViewLayer.{p}.{c}" for p in ("Combined", "Diffuse") for c in "BGR"] + ["ViewLayer.Depth.Z"]
    blender = exr.header(handmade(8, 8, channels=names) + bytes(64))
    assert blender.layer == "ViewLayer.Combined" and blender.half
    assert blender.others == ("ViewLayer.Diffuse.B", "ViewLayer.Diffuse.G", "ViewLayer.Diffuse.R", "ViewLayer.Depth.Z")
    two = tmp_path / "two.exr"
    two.write_bytes(handmade(8, 8, channels=[f"{p}.{c}" for p in ("left", "right") for c in "BGR"]) + bytes(64))
    assert exr.header(two.read_bytes()).layer is None
    with pytest.raises(InputError, match=r"without R, G, B or Y channels, of its own or in one layer"):
        read_image(two)


def fixture_values() -> tuple[np.ndarray, np.ndarray]:
    """scripts/exr_fixtures.py's values: straight colour with light above 1.0, and alpha."""
    y, x = np.mgrid[0:12, 0:16]
    rgb = np.stack([(x + 2 * y + 5 * c) / 16 for c in range(3)], axis=-1).astype(np.float32)
    return rgb, (((x + y) % 4 + 1) / 4).astype(np.float32)


def stored_light(picture: Picture) -> np.ndarray:
    """The linear light a read picture stands for: its pixels decoded by sRGB's curve, plus what lies outside 0-1,
    made brighter by the stops it was made darker."""
    assert picture.linear is not None
    outside = picture.linear.outside
    return (srgb_decode(picture.pixels / 65535.0) + (0 if outside is None else outside)) * 2.0**picture.linear.stops


@pytest.mark.slow
def test_files_written_by_openexr_itself_are_read(tmp_path: Path) -> None:
    """Files of the reference library: tiled PIZ with premultiplied alpha, DWAA (lossy), two parts, a layer and depth
    beside RGB, a data window inside the display window: read as OpenEXR means them; ZSTD (newer than ffmpeg's
    decoder) refused with what to do, before anything is decoded."""
    rgb, alpha = fixture_values()
    half = rgb.astype(np.float16).astype(np.float32)
    tiled = read_image(DATA / "tiled_piz_rgba.exr")
    share = 100 * np.mean(np.any(rgb > 1, axis=-1))  # 92 %: the 99th percentile, 2.9, takes 2 stops
    darker = f"EXR light above 1.0 in {share:.1f} % of the pixels: upscaled 2 stops darker, within the model's range, and brought back"
    assert tiled.mode == "RGBA" and tiled.alpha is not None and tiled.notes == [darker]
    assert np.abs(tiled.alpha / 65535.0 - alpha).max() < 1e-4
    assert np.abs(stored_light(tiled) - rgb).max() < 4e-3  # straight again, within half floats' precision of 3.0
    assert np.abs(stored_light(read_image(DATA / "dwaa.exr")) - rgb).max() < 0.05  # DWAA is lossy
    two = read_image(DATA / "two_parts.exr")
    assert two.notes == [darker, "EXR of several parts: only the first is upscaled"]
    assert np.abs(stored_light(two) - half).max() < 1e-4
    layers = read_image(DATA / "layers.exr")
    assert layers.notes == [darker, "EXR channels besides R, G, B, A and Y not read (Z, diffuse.R)"]
    framed = read_image(DATA / "window.exr")  # data at x 2-13, y 1-10 of a 16x12 frame: zeros around it
    assert framed.pixels.shape == (12, 16, 3) and framed.linear and framed.linear.stops == 2
    assert np.abs(stored_light(framed)[1:11, 2:14] - half[1:11, 2:14]).max() < 1e-4
    assert not framed.pixels[0].any() and not framed.pixels[:, :2].any()
    with pytest.raises(InputError, match=r"compressed with ZSTD .* save it with ZIP, PIZ or DWAA"):
        read_image(DATA / "zstd.exr")


@pytest.mark.slow
def test_the_frame_encoder_writes_a_numbered_file_a_frame_in_linear_light(tmp_path: Path) -> None:
    """FrameFiles with exr.frame_encoder: frames given row by row (16-bit levels, alpha last) become numbered EXRs, in
    linear light with each frame's stops and light outside 0-1 added back, half or float as asked, gray as Y; a frame
    stopped midway is an error."""
    from classsr_cli.io.frames import FrameFiles
    from classsr_cli.io.video import ffmpeg_exe

    rng = np.random.default_rng(0)
    writer = FrameFiles(tmp_path / "f_%03d.exr", 8, 6, channels=4, encode=exr.frame_encoder(alpha=True, half=False),
                        first_number=7, linear=True)  # fmt: skip
    levels = rng.integers(0, 65536, (6, 8, 4), dtype=np.uint16)
    outside = np.zeros((3, 4, 3), np.float32)
    outside[1, 2] = 3.0  # a highlight, enlarged x2 by bicubic
    for k, linear in enumerate((None, exr.Linear(half=False, outside=outside, size=(8, 6), stops=1))):
        writer.begin_frame(k, 1, linear)
        writer.write_rows(levels[:4])
        writer.write_rows(levels[4:])
        writer.close()  # written on a thread of its own: close waits for it
        got = exr.decode(ffmpeg_exe(), tmp_path / f"f_{7 + k:03d}.exr")
        want = exr.linear_rows(levels[..., :3], levels[..., 3], linear, 0, half=False)
        assert np.allclose(got, want, rtol=1e-6, atol=1e-6) and got.max() > 1.5 * k, k  # bands: float rounding
    assert writer.frames_written == 2 and exr.header((tmp_path / "f_008.exr").read_bytes()).half is False
    writer.begin_frame(2, 1)
    with pytest.raises(ValueError, match=r"expected \(n, 8, 4\) uint16 rows"):
        writer.write_rows(levels[..., :3])
    writer.write_rows(levels[:2])
    with pytest.raises(ValueError, match="stopped at row 2 of 6"):
        writer.close()
    gray = FrameFiles(tmp_path / "y_%d.exr", 8, 6, channels=3, encode=exr.frame_encoder(gray=True), linear=True)
    gray.begin_frame(0, None)  # a gray source's frames come as three equal channels
    gray.write_rows(np.repeat(levels[..., :1], 3, axis=2))
    gray.close()
    assert exr.header((tmp_path / "y_1.exr").read_bytes()).channels == (("Y", 1),)
    assert np.array_equal(exr.decode(ffmpeg_exe(), tmp_path / "y_1.exr"),
                          exr.linear_rows(levels[..., :1], None, None, 0, half=True).astype(np.float16))  # fmt: skip


@pytest.mark.slow
def test_a_sequence_upscaled_picture_by_picture_at_different_stops_is_told_of_classsr_video(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    """`classsr upscale` reads each EXR at its own stops; frames of a numbered sequence at different ones get a note
    naming `classsr video`, which reads them at one; the JSON records say each picture's stops."""
    import json

    from typer.testing import CliRunner

    from classsr_cli.cli import app

    rgb, _ = fixture_values()
    for k, gain in enumerate((0.05, 1.0, 4.0)):  # within 0-1, then mostly above (to 2.9, 11.8): 0, 2 and 4 stops
        with (tmp_path / f"shot_{1001 + k}.exr").open("wb") as f:
            exr.write(f, [rgb * gain], width=16, height=12, channels=3, half=True)
    r = CliRunner().invoke(app, ["upscale", str(tmp_path), "-o", str(tmp_path / "out") + "/", "--model",
                                 str(tiny_model_path), "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert [json.loads(line)["stops"] for line in r.stdout.splitlines()] == [0, 2, 4]
    assert "shot_%04d.exr upscaled at 0 to 4 stops darker, each picture at its own exposure; `classsr video" in r.stderr


def test_a_header_longer_than_the_first_read_is_read_on(tmp_path: Path) -> None:
    """The header is read from the first 4 KB, and further where it runs past them (a 100 KB comment, as a preview
    would): the same size and attributes; a file whose header never ends is truncated, whatever its length."""
    from classsr_cli.io.image import exr_attributes

    path = tmp_path / "long.exr"
    comment = ("a" * 100_000).encode()
    with path.open("wb") as f:
        exr.write(f, [np.zeros((12, 16, 3), np.float32)], width=16, height=12, channels=3, half=True,
                  attributes={"comments": ("string", comment)})  # fmt: skip
    assert peek_size(path) == (12, 16) and exr_attributes(path)["comments"] == ("string", comment)
    cut = tmp_path / "cut.exr"
    cut.write_bytes(path.read_bytes()[:50_000])  # inside the comment
    with pytest.raises(InputError, match="truncated or corrupt image"):
        peek_size(cut)


def test_strip_metadata_drops_an_exrs_owner_place_and_date_and_a_radiance_files_commands(
    tiny_model_path: Path, tmp_path: Path,
) -> None:
    """``--strip-metadata`` keeps what says how the picture looks (an EXR's chromaticities, a Radiance file's
    exposure) and drops who made it, where and when (an EXR's owner, latitude, capture date; a Radiance file's
    capture date, place and the command that rendered it), as it drops a photo's EXIF; without it all are carried."""
    from classsr_cli import zoo
    from classsr_cli.io import radiance
    from classsr_cli.io.video import ffmpeg_exe
    from classsr_cli.pipeline import Upscaler, upscale_file
    from classsr_cli.runtime import resolve_device

    chroma = struct.pack("<8f", 0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767)
    said = {"chromaticities": ("chromaticities", chroma), "owner": ("string", b"Ada"),
            "latitude": ("float", struct.pack("<f", 48.85)), "capDate": ("string", b"2026:05:01 12:00:00")}
    light = np.full((12, 16, 3), 0.18, np.float32)
    src = tmp_path / "shot.exr"
    with src.open("wb") as f:
        exr.write(f, [light], width=16, height=12, channels=3, half=True, attributes=said)
    lines = ("# rpict -vf /home/ada/view.vf", "EXPOSURE=0.5", "CAPDATE=2026:05:01 12:00:00", "LATLONG= 48.85 -2.29")
    hdr = tmp_path / "shot.hdr"
    hdr.write_bytes(radiance.encode(ffmpeg_exe(), np.stack([light[..., 1], light[..., 2], light[..., 0]]), lines))
    upscaler = Upscaler.of(zoo.load(str(tiny_model_path), 4, device=resolve_device("cpu")))
    for strip in (False, True):
        upscale_file(upscaler, src, tmp_path / f"{strip}.exr", strip_metadata=strip)
        kept = exr.header((tmp_path / f"{strip}.exr").read_bytes()).attributes
        assert {k for k in said if k in kept} == ({"chromaticities"} if strip else set(said)), strip
        assert kept["chromaticities"][1] == chroma and ("classsr" in kept) != strip
        upscale_file(upscaler, hdr, tmp_path / f"{strip}.hdr", strip_metadata=strip)
        carried = radiance.header((tmp_path / f"{strip}.hdr").read_bytes()).carried
        assert [ln for ln in carried if not ln.startswith("CLASSSR=")] == (["EXPOSURE=0.5"] if strip else list(lines))
