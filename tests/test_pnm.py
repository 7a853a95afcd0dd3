"""classsr_cli.io.pnm: Netpbm and PFM headers, a PFM's rows and byte order, and PFM sequences through `classsr video`
(PFM pictures through `classsr upscale`: tests/test_image_io.py)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from classsr_cli.io import pnm
from classsr_cli.io.image import read_image


@pytest.mark.parametrize(("data", "want"), [
    (b"P6\n7 5\n65535\n", (b"P6", 7, 5, 65535)),
    (b"P5 7 5 255 ", (b"P5", 7, 5, 255)),
    (b"P6\n# made by a scanner\n# second\n7\t5\r\n1023\n", (b"P6", 7, 5, 1023)),
    (b"P4\n7 5\n", (b"P4", 7, 5, 1)),
])  # fmt: skip
def test_netpbm_headers_read_with_their_comments(data: bytes, want: tuple[object, ...]) -> None:
    """The raster starts after the one whitespace that ends the header (its bytes may be whitespace too)."""
    assert tuple(pnm.header(data + b"\n\xff")) == (*want, len(data))


@pytest.mark.parametrize("data", [b"P7\n7 5\n255\n", b"P6\n7 x\n255\n", b"P6\n7 5\n0\n", b"P6\n7 5\n65536\n",
                                  b"P6\n0 5\n255\n", b"P6\n7 5\n255", b"PF\n7 5\n-1.0\n", b"P"])
def test_what_is_not_a_netpbm_header_reads_as_none(data: bytes) -> None:
    assert pnm.header(data) is None


def test_a_comment_right_after_the_magic_number_is_read_as_netpbm_allows(tmp_path: Path) -> None:
    """``P6#...`` (gdk-pixbuf's test file: Pillow reads the magic up to whitespace and refuses it): the header is
    rewritten plain, the raster kept; read whole through ``read_image``, 8 and 16 bits."""
    levels = np.random.default_rng(4).integers(0, 256, (3, 4, 3)).astype(np.uint8)
    data = b"P6#made\n#by hand\n4 3#w h\n \t#comment 44\n255\n" + levels.tobytes()
    assert pnm.plain(data) == b"P6\n4\n3\n255\n" + levels.tobytes()
    assert pnm.plain(b"P4#x\n8 1\n\xff") == b"P4\n8\n1\n\xff" and pnm.plain(b"P6#x\n4 z\n") is None
    (tmp_path / "a.ppm").write_bytes(data)
    assert np.array_equal(read_image(tmp_path / "a.ppm").pixels, levels)
    deep = levels.astype(">u2") * 257
    (tmp_path / "d.ppm").write_bytes(b"P6#deep\n4 3 65535\n" + deep.tobytes())
    pic = read_image(tmp_path / "d.ppm")
    assert pic.bits == 16 and np.array_equal(pic.pixels, deep.astype(np.uint16))


def test_a_pfm_is_read_top_row_first_in_either_byte_order_and_written_little_endian(tmp_path: Path) -> None:
    light = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3) / 7
    for scale, order in ((-1.0, "<f4"), (2.5, ">f4")):
        data = f"PF\n3 2\n{scale}\n".encode() + light[::-1].astype(order).tobytes()
        head = pnm.pfm_header(data)
        assert head is not None and (head.width, head.height, head.maxval) == (3, 2, -1 if scale < 0 else 1)
        (tmp_path / "a.pfm").write_bytes(data)
        assert np.array_equal(pnm.read_pfm(tmp_path / "a.pfm", head), light)
    out = io.BytesIO()
    pnm.write_pfm(out, light[..., :1])
    assert out.getvalue() == b"Pf\n3 2\n-1.0\n" + light[::-1, :, :1].astype("<f4").tobytes()
    assert pnm.pfm_header(b"PF\n3 2\n0\n") is None and pnm.pfm_header(b"Pf\n3 2\nnan\n") is None
    assert pnm.is_pfm(b"PF\n3") and pnm.is_pfm(b"Pf 3") and not pnm.is_pfm(b"P6\n3") and not pnm.is_pfm(b"PFX")


def test_photoshops_pfm_a_phm_and_comments_are_read(tmp_path: Path) -> None:
    """Photoshop's PFM, its height on a line of its own, holds its rows from the top down (KDE's testcard_rgb_ps.pfm
    read upside down); a PHM (``PH``, ``Ph``: half floats, ImageMagick's and KDE's) and comment lines after the magic
    were not read."""
    light = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3) / 7
    cases = {"ps.pfm": b"PF\n3\n2\n-1.0000\n" + light.astype("<f4").tobytes(),
             "rgb.phm": b"PH\n3 2\n-1.0\n" + light[::-1].astype("<f2").tobytes(),
             "gray.phm": b"Ph\n# made by hand\n3 2\n1.0\n" + light[::-1, :, :1].astype(">f2").tobytes()}  # fmt: skip
    for name, data in cases.items():
        head = pnm.pfm_header(data)
        assert head is not None and (head.width, head.height) == (3, 2), name
        (tmp_path / name).write_bytes(data)
        want = light.astype(np.float16).astype(np.float32) if name.endswith(".phm") else light
        assert np.array_equal(pnm.read_pfm(tmp_path / name, head), want[..., :1] if name == "gray.phm" else want)
    assert pnm.is_pfm(b"PH\n3") and pnm.is_pfm(b"Ph 3") and not pnm.is_pfm(b"PHX")
    picture = read_image(tmp_path / "ps.pfm")
    assert picture.source_format == "PFM" and picture.pixels[0, 0].sum() < picture.pixels[-1, -1].sum()  # top row first


def test_an_xv_thumbnail_is_not_taken_for_a_pam(tmp_path: Path) -> None:
    """xv's thumbnails (``P7 332``, KDE's .xv test files) share PAM's magic number: they were said to be PAMs whose
    header does not read; not an image classsr reads."""
    from classsr_cli.errors import InputError

    assert pnm.is_pam(b"P7 \nWIDTH 1") and not pnm.is_pam(b"P7 332\n#XVVERSION:Version 2.28")
    (tmp_path / "t.xv").write_bytes(b"P7 332\n#XVVERSION:Version 2.28\n#END_OF_COMMENTS\n2 1 255\n\x00\xff")
    with pytest.raises(InputError, match=r"t\.xv: not an image classsr reads"):
        read_image(tmp_path / "t.xv")


def _pfm(path: Path, light: np.ndarray) -> None:
    h, w, c = light.shape
    path.write_bytes(f"{'PF' if c == 3 else 'Pf'}\n{w} {h}\n-1.0\n".encode() + light[::-1].astype("<f4").tobytes())


@pytest.mark.slow
def test_a_pfm_sequence_is_read_and_written_by_classsr_video_as_upscale_does_each_frame(tmp_path: Path) -> None:
    """PFM frames are read as `classsr upscale` reads each (linear light, the sequence at its first frame's stops)
    and written as PFM frames, the first value for value the PFM upscale writes of it, its light above 1.0 kept; a
    cut frame and a frame of another size are refused, named, before anything is written."""
    from typer.testing import CliRunner

    from classsr_cli.cli import app

    runner = CliRunner()
    folder = tmp_path / "render"
    folder.mkdir()
    y, x = np.mgrid[0:24, 0:32]
    for k in range(3):
        _pfm(folder / f"beauty_{k + 1:03d}.pfm", np.stack([(x + k) / 8.0, y / 6.0, (x + y) / 20.0], -1))  # to 4.4
    out = tmp_path / "up" / "%03d.pfm"
    r = runner.invoke(app, ["video", str(folder), str(out), "--threads", "2"])
    assert r.exit_code == 0, r.output
    assert "PFM frames are linear light: upscaled 2 stops darker" in r.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["001.pfm", "002.pfm", "003.pfm"]
    r = runner.invoke(app, ["upscale", str(folder / "beauty_001.pfm"), "-o", str(tmp_path / "still.pfm"), "--threads", "2"])
    assert r.exit_code == 0, r.output
    video, still = (pnm.load_pfm(p) for p in (out.parent / "001.pfm", tmp_path / "still.pfm"))
    assert video.shape == still.shape == (96, 128, 3) and np.array_equal(video, still) and video.max() > 2
    cut = (folder / "beauty_003.pfm").read_bytes()
    (folder / "beauty_003.pfm").write_bytes(cut[:-40])  # a frame still being written
    r = runner.invoke(app, ["video", str(folder), str(tmp_path / "cut" / "%03d.png")])
    assert r.exit_code == 1 and "beauty_003.pfm: truncated or corrupt image (cut short: 9,176 of its 9,216 bytes" in r.stderr
    assert not (tmp_path / "cut").exists()
    (folder / "beauty_003.pfm").write_bytes(cut)
    _pfm(folder / "beauty_004.pfm", np.ones((12, 32, 1), np.float32))
    r = runner.invoke(app, ["video", str(folder), str(tmp_path / "odd" / "%03d.png")])
    assert r.exit_code == 1 and "beauty_004.pfm: a frame unlike the sequence's first (32x12 gray, the first frame" in r.stderr


@pytest.mark.parametrize(("depth", "bits"), [(1, 8), (2, 8), (3, 16), (4, 16), (4, 8)])
def test_pam_round_trips_with_alpha_and_16_bits(tmp_path: Path, depth: int, bits: int) -> None:
    """PAM (Netpbm with alpha, which ImageMagick pipes as ``pam:-`` and Pillow does not read): gray or RGB, with alpha
    where it has 2 or 4 samples, at 8 or 16 bits, through ``read_image`` and ``write_image``."""
    from classsr_cli.io.image import Picture, read_image, write_image

    dtype = np.uint16 if bits == 16 else np.uint8
    samples = np.random.default_rng(depth).integers(1, np.iinfo(dtype).max, (9, 7, depth)).astype(dtype)
    colour, alpha = (samples[..., :-1], samples[..., -1]) if depth in (2, 4) else (samples, None)
    assert write_image(tmp_path / "a.pam", Picture(np.ascontiguousarray(colour), alpha=alpha)) == []
    kind = ("GRAYSCALE", "GRAYSCALE_ALPHA", "RGB", "RGB_ALPHA")[depth - 1]
    assert (tmp_path / "a.pam").read_bytes().startswith(
        f"P7\nWIDTH 7\nHEIGHT 9\nDEPTH {depth}\nMAXVAL {np.iinfo(dtype).max}\nTUPLTYPE {kind}\nENDHDR\n".encode())
    back = read_image(tmp_path / "a.pam")
    assert back.source_format == "PAM" and back.bits == bits and np.array_equal(back.pixels, colour)
    assert (alpha is None and back.alpha is None) or np.array_equal(back.alpha, alpha)


def test_a_pam_of_another_maxval_and_a_bad_one(tmp_path: Path) -> None:
    from classsr_cli.errors import InputError
    from classsr_cli.io.image import peek_size, read_image

    levels = np.arange(2 * 3 * 2).reshape(2, 3, 2) * 90  # gray and alpha, maxval 1023
    head = b"P7\n# by hand\nWIDTH 3\nHEIGHT 2\nDEPTH 2\nMAXVAL 1023\nTUPLTYPE GRAYSCALE\nTUPLTYPE _ALPHA\nENDHDR\n"
    (tmp_path / "a.pam").write_bytes(head + levels.astype(">u2").tobytes())
    pic = read_image(tmp_path / "a.pam")
    assert pic.mode == "LA" and pic.bits == 16 and peek_size(tmp_path / "a.pam") == (2, 3)
    assert np.array_equal(pic.pixels[..., 0], (levels[..., 0] * 65535 + 511) // 1023)
    (tmp_path / "b.pam").write_bytes(head.replace(b"DEPTH 2", b"DEPTH 5") + bytes(100))
    with pytest.raises(InputError, match=r"b\.pam: truncated or corrupt image \(its PAM header does not read"):
        read_image(tmp_path / "b.pam")
    (tmp_path / "c.pam").write_bytes(head + bytes(10))
    with pytest.raises(InputError, match=r"c\.pam: truncated or corrupt image \(cut short: 10 of its 24 bytes"):
        read_image(tmp_path / "c.pam")


@pytest.mark.slow
def test_ffmpeg_reads_classsrs_pam_as_written(tmp_path: Path) -> None:
    import subprocess

    from classsr_cli.io.image import Picture, write_image
    from classsr_cli.io.video import ffmpeg_exe

    rgba = np.random.default_rng(0).integers(0, 65535, (9, 7, 4)).astype(np.uint16)
    write_image(tmp_path / "a.pam", Picture(np.ascontiguousarray(rgba[..., :3]), alpha=np.ascontiguousarray(rgba[..., 3])))
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(tmp_path / "a.pam"), "-f", "rawvideo", "-pix_fmt",
                          "rgba64le", "-"], capture_output=True, check=True).stdout  # fmt: skip
    assert np.array_equal(np.frombuffer(out, "<u2").reshape(rgba.shape), rgba)
