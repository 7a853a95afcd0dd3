"""classsr_cli.io.radiance and Radiance HDR in classsr_cli.io.image: the header read as Radiance lays it out, a file
made byte by byte read as RGBE means it, its light split and joined as an EXR's is, its header's lines kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classsr_cli.errors import InputError
from classsr_cli.io import radiance
from classsr_cli.io.icc import srgb_decode
from classsr_cli.io.image import Picture, peek_size, read_image, write_image


def flat(width: int, height: int, pixel: bytes, *, lines: str = "FORMAT=32-bit_rle_rgbe\n", size: str = "") -> bytes:
    """A Radiance file laid out by hand: a header, the resolution line, ``pixel`` (R, G, B mantissas and the shared
    exponent) repeated, stored flat (without run-length coding, which the format allows)."""
    head = f"#?RADIANCE\n{lines}\n{size or f'-Y {height} +X {width}'}\n".encode()
    return head + pixel * (width * height)


def test_the_header_is_read_as_radiance_lays_it_out() -> None:
    head = radiance.header(flat(7, 5, b"\x80\x40\x20\x81",
                                lines="EXPOSURE=2\nFORMAT=32-bit_rle_rgbe\nSOFTWARE=x\nPIXASPECT=0.84375\n"))  # fmt: skip
    # the pixel shape holds (an upscale grows both sides alike); the format and the software are written anew
    assert (head.width, head.height) == (7, 5) and head.carried == ("EXPOSURE=2", "PIXASPECT=0.84375")
    padded = radiance.header(flat(7, 5, b"\x80\x40\x20\x81", size="-Y      5 +X      7"))  # (libvips's sample.hdr)
    assert (padded.width, padded.height) == (7, 5)  # its numbers padded with spaces, as Radiance's own reader takes
    for bad, why in ((b"\x89PNG", "not a Radiance"), (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n", "cut short"),
                     (flat(2, 2, b"\0" * 4, size="+Y 2 +X 2"), "only -Y H \\+X W"),
                     (flat(2, 2, b"\0" * 4, lines="FORMAT=32-bit_rle_xyze\n"), "only RGBE")):  # fmt: skip
        with pytest.raises(ValueError, match=why):
            radiance.header(bad)


@pytest.mark.slow
def test_a_file_made_by_hand_reads_as_rgbe_means_it(tmp_path: Path) -> None:
    """Mantissas 128, 64, 32 under exponent 129 are 1.0, 0.5 and 0.25 (m * 2^(e - 136)); 255, 0, 0 under 130 is
    3.98: light above 1.0, kept apart from the 16-bit pixels; its size read before decoding."""
    path = tmp_path / "made.hdr"
    path.write_bytes(flat(5, 3, b"\x80\x40\x20\x81"))
    picture = read_image(path)
    assert picture.source_format == "HDR" and picture.pixels.shape == (3, 5, 3) and peek_size(path) == (3, 5)
    assert np.allclose(srgb_decode(picture.pixels[0, 0] / 65535.0), (1.0, 0.5, 0.25), atol=1e-5)
    assert picture.linear is not None and picture.linear.outside is None
    bright = tmp_path / "bright.hdr"
    bright.write_bytes(flat(4, 2, b"\xff\x00\x00\x82"))
    lit = read_image(bright)  # all of it above 1.0: read 2 stops darker, within 0-1
    assert lit.linear is not None and lit.linear.outside is None and lit.linear.stops == 2
    assert srgb_decode(lit.pixels[0, 0, 0] / 65535.0) == pytest.approx(255 / 64 / 4, abs=1e-4)
    cut = tmp_path / "cut.hdr"
    cut.write_bytes(flat(50, 40, b"\x80\x40\x20\x81")[:500])
    with pytest.raises(InputError, match=r"truncated or corrupt image \(38 of its 40 rows missing\)"):  # counted first
        read_image(cut)
    huge = tmp_path / "huge.hdr"
    huge.write_bytes(flat(1, 1, b"").replace(b"-Y 1 +X 1", b"-Y 20000 +X 20000"))
    with pytest.raises(InputError, match="above the 100,000,000-pixel limit"):
        read_image(huge)


@pytest.mark.slow
def test_light_lines_and_the_record_are_kept(tiny_model_path: Path, tmp_path: Path) -> None:
    """An upscaled Radiance picture holds what an EXR output of the same run holds, within RGBE's precision (a
    mantissa of 8 bits, shared); its header's lines are carried, the record of the upscale added, an older one
    replaced; gray written as RGB."""
    from classsr_cli import zoo
    from classsr_cli.io import exr
    from classsr_cli.pipeline import Upscaler, upscale_file
    from classsr_cli.runtime import resolve_device

    rng = np.random.default_rng(0)
    light = (rng.random((40, 48, 3)) ** 2 * 3).astype(np.float32)
    planes = np.stack([light[..., 1], light[..., 2], light[..., 0]])
    from classsr_cli.io.video import ffmpeg_exe

    src = tmp_path / "env.hdr"
    src.write_bytes(radiance.encode(ffmpeg_exe(), planes, ("EXPOSURE=0.5", "CLASSSR=old"), "maker"))
    upscaler = Upscaler.of(zoo.load(str(tiny_model_path), 4, device=resolve_device("cpu")))
    upscale_file(upscaler, src, tmp_path / "out.hdr")
    upscale_file(upscaler, src, tmp_path / "out.exr")
    head = radiance.header((tmp_path / "out.hdr").read_bytes())
    assert head.carried[0] == "EXPOSURE=0.5" and head.carried[1].startswith('CLASSSR={"version"') and len(head.carried) == 2
    hdr = radiance.decode(ffmpeg_exe(), tmp_path / "out.hdr")
    ref = exr.decode(ffmpeg_exe(), tmp_path / "out.exr")
    top = np.max(np.maximum(ref, 0), axis=-1, keepdims=True)
    assert hdr.shape == ref.shape == (160, 192, 3)
    assert np.all(np.abs(hdr - np.maximum(ref, 0)) <= top / 64 + 1e-6)  # RGBE: within a few of 256 steps of the top
    veiled = Picture(pixels=np.full((4, 6, 3), 200, np.uint8), alpha=np.full((4, 6), 51, np.uint8))
    assert write_image(tmp_path / "veiled.hdr", veiled) == ["HDR holds no alpha: written premultiplied (on black), as "
                                                             "EXR stores colour"]  # fmt: skip
    assert np.allclose(radiance.decode(ffmpeg_exe(), tmp_path / "veiled.hdr"), srgb_decode(200 / 255) * 0.2, rtol=1 / 128)
    write_image(tmp_path / "gray.hdr", Picture(pixels=np.full((4, 6, 1), 128, np.uint8)))
    gray = radiance.decode(ffmpeg_exe(), tmp_path / "gray.hdr")
    assert np.allclose(gray, srgb_decode(128 / 255), rtol=1 / 128)


@pytest.mark.slow
def test_the_cli_takes_it_from_a_pipe_and_video_names_it_an_image(tiny_model_path: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from classsr_cli.cli import app

    src = tmp_path / "sky.hdr"
    src.write_bytes(flat(16, 12, b"\x80\x40\x20\x81"))
    runner = CliRunner()
    r = runner.invoke(app, ["upscale", "-", "-o", "-", "--model", str(tiny_model_path)], input=src.read_bytes())
    assert r.exit_code == 0 and radiance.header(r.stdout_bytes)[:2] == (64, 48), r.stderr
    r = runner.invoke(app, ["video", str(src), str(tmp_path / "v.mp4")])
    assert r.exit_code != 0 and "is a Radiance HDR image, not a video; use `classsr upscale`" in r.stderr


@pytest.mark.slow
def test_a_radiance_sequence_is_read_and_written_by_classsr_video_as_upscale_does_each_frame(tmp_path: Path) -> None:
    """Radiance HDR frames (an HDRI time-lapse) are read as `classsr upscale` reads each picture, the sequence at its
    first frame's stops; written as Radiance frames (the first frame's header lines kept) the first is, value for
    value, the Radiance file upscale writes of it. A frame of another size is refused, named."""
    from typer.testing import CliRunner

    from classsr_cli.cli import app
    from classsr_cli.io.video import ffmpeg_exe

    runner = CliRunner()
    folder = tmp_path / "hdri"
    folder.mkdir()
    y, x = np.mgrid[0:24, 0:32]
    for k in range(3):
        light = np.stack([(x + k) / 8.0, y / 6.0, (x + y) / 20.0], axis=-1).astype(np.float32)  # to 4.4: 2 stops
        path = folder / f"sky_{k + 1:03d}.hdr"
        path.write_bytes(radiance.encode(ffmpeg_exe(), np.ascontiguousarray(light[..., [1, 2, 0]].transpose(2, 0, 1)),
                                         ("EXPOSURE=1.5",)))  # fmt: skip
    out = tmp_path / "up" / "%03d.hdr"
    r = runner.invoke(app, ["video", str(folder), str(out), "--threads", "2"])
    assert r.exit_code == 0, r.output
    assert "Radiance HDR frames are linear light: upscaled 2 stops darker" in r.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["001.hdr", "002.hdr", "003.hdr"]
    r = runner.invoke(app, ["upscale", str(folder / "sky_001.hdr"), "-o", str(tmp_path / "still.hdr"), "--threads", "2"])
    assert r.exit_code == 0, r.output
    video, still = (radiance.decode(ffmpeg_exe(), p) for p in (out.parent / "001.hdr", tmp_path / "still.hdr"))
    assert video.shape == still.shape == (96, 128, 3) and np.array_equal(video, still) and video.max() > 2
    assert b"EXPOSURE=1.5\n" in (out.parent / "001.hdr").read_bytes()[:400]
    cut = (folder / "sky_003.hdr").read_bytes()
    (folder / "sky_003.hdr").write_bytes(cut[:-40])  # a frame still being written: ffmpeg would give zeros, exit 0
    r = runner.invoke(app, ["video", str(folder), str(tmp_path / "cut" / "%03d.png")])
    assert r.exit_code == 1 and "sky_003.hdr: truncated or corrupt image (1 of its 24 rows missing)" in r.stderr
    assert not (tmp_path / "cut").exists()
    (folder / "sky_003.hdr").write_bytes(cut)
    odd = np.ones((12, 32, 3), np.float32)
    (folder / "sky_004.hdr").write_bytes(radiance.encode(ffmpeg_exe(), np.ascontiguousarray(odd.transpose(2, 0, 1))))
    r = runner.invoke(app, ["video", str(folder), str(tmp_path / "odd" / "%03d.png")])
    assert r.exit_code == 1 and "sky_004.hdr: a frame unlike the sequence's first (32x12" in r.stderr


def rle_row(width: int, *components: bytes) -> bytes:
    """One row run-length coded as Radiance writes it: ``2 2``, the width, then each component's runs as given."""
    return bytes([2, 2, width >> 8, width & 0xFF]) + b"".join(components)


def test_a_cut_or_miscounted_picture_is_refused_before_decoding(tmp_path: Path) -> None:
    """ffmpeg's decoder gives the rows a cut Radiance file lacks as zeros and says nothing (an interrupted download
    was upscaled with a black strip, exit 0): every row's runs are counted first. Runs of 130 - 128 = 2 equal bytes and
    of literal bytes make up each component; a row a byte short, one whose runs overrun its width, one that names
    another width and a whole file are each told apart; flat rows and the old run-length code are counted too."""
    runs = bytes([130, 7]) + bytes([6]) + b"abcdef"  # a run of 2, then 6 literal bytes: 8 pixels
    row = rle_row(8, runs, runs, runs, bytes([136, 0x81]))
    assert radiance.cut_short(row * 3, 8, 3) is None
    assert radiance.cut_short((row * 3)[:-1], 8, 3) == "1 of its 3 rows missing"
    assert radiance.cut_short(row, 8, 3) == "2 of its 3 rows missing"
    over = rle_row(8, bytes([137, 7]), runs, runs, runs)  # 9 pixels in an 8-pixel row
    assert radiance.cut_short(row + over, 8, 2) == "row 2 of 2 runs past its 8 pixels"
    assert radiance.cut_short(rle_row(9, runs, runs, runs, runs), 8, 1) == "row 1 of 1 says 9 pixels, not 8"
    # Flat pixels (which the format allows; any width) are counted, and so are the old run-length code's repeats
    # (1 1 1 n: the pixel before n more times, n shifted 8 bits further for each marker right after another), as
    # ffmpeg's decoder reads them.
    pixel = b"\x80\x40\x20\x81"
    assert radiance.cut_short(pixel * 24, 8, 3) is None and radiance.cut_short(pixel * 12, 4, 3) is None
    assert radiance.cut_short(pixel * 20, 8, 3) == "1 of its 3 rows missing"
    assert radiance.cut_short(pixel * 5, 4, 3) == "2 of its 3 rows missing"
    old = pixel + b"\x01\x01\x01\x07" + pixel * 8  # a pixel and 7 repeats, then 8 flat: two rows of 8
    assert radiance.cut_short(old, 8, 2) is None and radiance.cut_short(old[:-4], 8, 2) == "1 of its 2 rows missing"
    longer = pixel + b"\x01\x01\x01\x02" + b"\x01\x01\x01\x01"  # 1 + 2 + (1 << 8) pixels
    assert radiance.cut_short(longer, 259, 1) is None and radiance.cut_short(longer, 259, 2) == "1 of its 2 rows missing"
    (tmp_path / "flat_cut.hdr").write_bytes(flat(8, 3, pixel)[:-8])
    with pytest.raises(InputError, match=r"flat_cut\.hdr: truncated or corrupt image \(1 of its 3 rows missing\)"):
        read_image(tmp_path / "flat_cut.hdr")
    whole = flat(8, 3, b"") + row * 3  # the header and resolution line, then the coded rows
    (tmp_path / "ok.hdr").write_bytes(whole)
    assert read_image(tmp_path / "ok.hdr").pixels.shape == (3, 8, 3)
    (tmp_path / "cut.hdr").write_bytes(whole[:-3])
    with pytest.raises(InputError, match=r"cut\.hdr: truncated or corrupt image \(1 of its 3 rows missing\)"):
        read_image(tmp_path / "cut.hdr")



def test_a_pictures_primaries_line_brings_its_colours_into_srgbs_for_other_formats(tmp_path: Path) -> None:
    """A Radiance picture whose PRIMARIES line says ACEScg's primaries into PNG: its colours in sRGB's (the published
    ACEScg-to-sRGB matrix), not as stored; sRGB's own PRIMARIES line changes nothing."""
    from classsr_cli.io.image import primaries_of
    from classsr_cli.io.video import ffmpeg_exe

    light = np.zeros((8, 8, 3), np.float32)
    light[...] = (0.6, 0.2, 0.05)
    planes = np.stack([light[..., 1], light[..., 2], light[..., 0]])
    for name, line in (("aces", "PRIMARIES= 0.713 0.293 0.165 0.830 0.128 0.044 0.32168 0.33767"),
                       ("srgb", "PRIMARIES= 0.640 0.330 0.300 0.600 0.150 0.060 0.3127 0.3290")):  # fmt: skip
        (tmp_path / f"{name}.hdr").write_bytes(radiance.encode(ffmpeg_exe(), planes, (line,), "maker"))
    aces, srgb = read_image(tmp_path / "aces.hdr"), read_image(tmp_path / "srgb.hdr")
    assert primaries_of(aces.linear) is not None and primaries_of(srgb.linear) is None
    write_image(tmp_path / "aces.png", aces)
    write_image(tmp_path / "srgb.png", srgb)
    lin = np.array([[1.70505, -0.62179, -0.08326], [-0.13026, 1.14080, -0.01055],
                    [-0.02400, -0.12897, 1.15297]]) @ (0.6, 0.2, 0.05)  # fmt: skip
    assert np.abs(srgb_decode(read_image(tmp_path / "aces.png").pixels[4, 4] / 65535.0) - lin).max() < 0.01
    assert np.abs(srgb_decode(read_image(tmp_path / "srgb.png").pixels[4, 4] / 65535.0) - (0.6, 0.2, 0.05)).max() < 0.01


def test_primaries_that_describe_no_colours_are_read_as_srgbs(tmp_path: Path) -> None:
    """A PRIMARIES line of zeros (KDE's rgb.hdr) or of three primaries on a line made every output fail with a
    ZeroDivisionError (a singular matrix): read as sRGB's, said; the line is kept in a Radiance output as it was. The
    note on primaries other than sRGB's, left out until now (said before the header's lines were attached), is said."""
    from classsr_cli.io.image import primaries_of
    from classsr_cli.io.video import ffmpeg_exe

    planes = np.full((3, 8, 8), 0.25, np.float32)
    for name, line in (("zeros", "PRIMARIES=0 0 0 0 0 0 0 0"), ("line", "PRIMARIES=0.1 0.1 0.2 0.2 0.3 0.3 0.3127 0.329")):
        (tmp_path / f"{name}.hdr").write_bytes(radiance.encode(ffmpeg_exe(), planes, (line,), "maker"))
        pic = read_image(tmp_path / f"{name}.hdr")
        assert primaries_of(pic.linear) is None
        numbers = " ".join(line.split("=")[1].split())
        assert pic.notes == [f"Radiance HDR whose primaries ({numbers}) describe no colours: read as sRGB's"]
        write_image(tmp_path / f"{name}.png", pic)
        assert np.abs(srgb_decode(read_image(tmp_path / f"{name}.png").pixels / 65535.0) - 0.25).max() < 0.01
        write_image(tmp_path / f"{name}_out.hdr", pic)
        assert line in (tmp_path / f"{name}_out.hdr").read_bytes().decode("latin-1")
    (tmp_path / "aces.hdr").write_bytes(radiance.encode(ffmpeg_exe(), planes, (
        "PRIMARIES= 0.713 0.293 0.165 0.830 0.128 0.044 0.32168 0.33767",), "maker"))  # fmt: skip
    assert any("primaries other than sRGB's" in n for n in read_image(tmp_path / "aces.hdr").notes)
