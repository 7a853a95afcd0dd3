"""Numbered image sequences (`classsr_cli.io.sequence`) and `classsr video` reading them as a video.

Frames are named files in a temporary folder (their bytes matter only where a run reads them: testsrc2 frames made
by the bundled ffmpeg, 64x48); runs use the tiny seeded model.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from classsr_cli.cli import app
from classsr_cli.errors import ConfigError, InputError
from classsr_cli.io.sequence import find_sequence, is_sequence, sequence_stem
from classsr_cli.io.video import EncodeOptions, VideoReader, ffmpeg_exe, probe
from classsr_cli.video import TemporalOptions, output_path, resume_folder, upscale_video

runner = CliRunner()


def touch(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")
    return folder


def frames(folder: Path, n: int = 12, pattern: str = "shot_%04d.png", *, first: int = 1, pix_fmt: str = "rgb24") -> Path:
    """``n`` testsrc2 frames (64x48) written by ffmpeg as ``folder/pattern`` from number ``first``."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10",
                    "-frames:v", str(n), "-pix_fmt", pix_fmt, "-start_number", str(first), str(folder / pattern)],
                   check=True, timeout=60)  # fmt: skip
    return folder


def frame_times(path: Path) -> list[float]:
    import re

    text = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-vf", "showinfo", "-f", "null",
                           "-"], capture_output=True, text=True, check=True, timeout=60).stderr  # fmt: skip
    return [float(t) for t in re.findall(r"pts_time:(-?[\d.]+)", text)]


# ------------------------------------------------------------------------------------------------------ finding


@pytest.mark.parametrize(("names", "pattern", "start", "count"), [
    ([f"shot_{k:04d}.png" for k in range(1, 13)], "shot_%04d.png", 1, 12),
    ([f"{k}.tif" for k in range(0, 12)], "%d.tif", 0, 12),  # unpadded, 0 to 11: %d
    ([f"f{k:03d}.jpg" for k in range(998, 1003)], "f%03d.jpg", 998, 5),  # past its width: 999, 1000
    ([f"a.{k:02d}.v2.dpx" for k in range(5, 9)], "a.%02d.v2.dpx", 5, 4),  # the last number before the suffix
    ([f"50%_{k:02d}.png" for k in range(1, 4)], "50%%_%02d.png", 1, 3),  # a % in the name, doubled for ffmpeg
])  # fmt: skip
def test_a_folder_names_its_one_numbered_sequence(tmp_path: Path, names: list[str], pattern: str, start: int,
                                                 count: int) -> None:
    folder = touch(tmp_path / "renders", *names, ".hidden_0001.png", "notes.txt", "cover.png")
    seq = find_sequence(folder)
    assert (seq.pattern, seq.start, seq.count, seq.first) == (folder / pattern, start, count, folder / names[0])
    assert [seq.frame(k).name for k in range(start, start + count)] == names
    assert is_sequence(folder) and is_sequence(folder / pattern) and not is_sequence(folder / names[0])
    assert find_sequence(folder / pattern) == seq  # the pattern given as it is found
    assert seq.demux(Fraction(24000, 1001)) == ("-f", "image2", "-pattern_type", "sequence", "-start_number",
                                                str(start), "-framerate", "24000/1001")  # fmt: skip


def test_a_pattern_takes_only_the_names_it_writes(tmp_path: Path) -> None:
    """%04d is 0001 ... (not 1 or 00001); %d is 1, 10 (not 01); a name with other text around the number is another
    sequence's."""
    folder = touch(tmp_path, "f0001.png", "f0002.png", "f1.png", "f00003.png", "g0003.png", "f0003.jpg")
    assert (find_sequence(folder / "f%04d.png").start, find_sequence(folder / "f%04d.png").count) == (1, 2)
    assert (find_sequence(folder / "f%d.png").start, find_sequence(folder / "f%d.png").count) == (1, 1)
    with pytest.raises(InputError, match=r"f%02d\.png: no such file \(no frame in .* is named by this pattern\)"):
        find_sequence(folder / "f%02d.png")
    with pytest.raises(InputError, match=r"no such folder"):
        find_sequence(tmp_path / "gone" / "f%04d.png")


def test_a_gap_is_an_error_that_names_the_missing_frames(tmp_path: Path) -> None:
    """ffmpeg stops at the first missing number: the video would end there, so the run is refused."""
    folder = touch(tmp_path / "gap", *(f"f{k:03d}.png" for k in (1, 2, 3, 7, 8)))
    with pytest.raises(InputError, match=r"frame 004 to 006 is missing \(frames 001-003 and 007-008 are there\)"):
        find_sequence(folder)
    touch(folder, "f004.png", "f006.png")
    with pytest.raises(InputError, match=r"frame 005 is missing"):
        find_sequence(folder / "f%03d.png")


def test_a_folder_of_several_sequences_or_none_says_what_to_give(tmp_path: Path) -> None:
    two = touch(tmp_path / "two", "a_01.png", "a_02.png", "a_03.png", "b1.jpg")
    with pytest.raises(InputError, match=r"holds 2 numbered sequences \(a_%02d\.png: 3 frames, b%d\.jpg: 1 frame\); "
                                         rf"give one as INPUT, e\.g\. {two / 'a_%02d.png'}"):
        find_sequence(two)
    none = touch(tmp_path / "none", "cover.png", "notes.txt")
    with pytest.raises(InputError, match=r"holds no numbered image sequence .*use `classsr upscale"):
        find_sequence(none)
    heic = touch(tmp_path / "heic", "f0001.heic", "f0002.heic")
    with pytest.raises(InputError, match=r"holds 2 \.heic frame\(s\): HEIC frames are not read as a sequence"):
        find_sequence(heic)


def test_outputs_are_named_after_the_sequence(tmp_path: Path) -> None:
    folder = touch(tmp_path / "renders", "shot_0001.png")
    assert sequence_stem(folder) == "renders" and sequence_stem(folder / "shot_%04d.png") == "shot"
    assert sequence_stem(folder / "%04d.png") == "renders"
    assert output_path(folder, f"{tmp_path}{os.sep}", 4) == tmp_path / "renders_x4.mkv"
    assert output_path(folder / "shot_%04d.png", f"{tmp_path}{os.sep}", 2) == tmp_path / "shot_x2.mkv"


# --------------------------------------------------------------------------------------------------- reading


@pytest.mark.slow
def test_a_sequence_reads_as_the_video_of_its_frames(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    """The frames of a PNG sequence are the frames of a lossless video of the same pictures, read at --fps (25 by
    default, as ffmpeg reads one); the run says so; --start seeks to the frame at that time."""
    seq = frames(tmp_path / "renders")
    info = probe(seq, rate=Fraction(24000, 1001))
    assert info.sequence and (info.width, info.height, info.fps) == (64, 48, pytest.approx(24000 / 1001))
    assert info.frames_estimate == 12 and info.duration == pytest.approx(12 * 1001 / 24000)
    clip = tmp_path / "same.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-frames:v", "12",
                    "-c:v", "ffv1", "-pix_fmt", "bgr0", str(clip)], check=True, timeout=60)  # fmt: skip
    with VideoReader(info) as a, VideoReader(probe(clip)) as b:
        pairs = list(zip(a, b, strict=True))
    assert all(np.array_equal(x.rgb, y.rgb) for x, y in pairs) and [x.pts for x, _ in pairs] == list(range(12))
    exact = EncodeOptions(codec="ffv1", pix_fmt="bgr0")
    r = upscale_video(tiny_model, seq, tmp_path / "o.mkv", options=replace_fps(exact, Fraction(24000, 1001)))
    v = upscale_video(tiny_model, clip, tmp_path / "v.mkv", options=exact)
    assert r.frames == 12 and r.counts == v.counts and r.notes[0] == f"{seq / 'shot_%04d.png'}: 12 frames read at 23.976 frames/s"
    assert frame_times(tmp_path / "o.mkv") == pytest.approx([k * 1001 / 24000 for k in range(12)], abs=1e-3)
    with VideoReader(probe(tmp_path / "o.mkv")) as a, VideoReader(probe(tmp_path / "v.mkv")) as b:
        assert all(np.array_equal(x.rgb, y.rgb) for x, y in zip(a, b, strict=True))
    d = upscale_video(tiny_model, seq, tmp_path / "d.mkv", options=exact)
    assert "read at 25 frames/s (ffmpeg's default; --fps sets the rate)" in d.notes[0]
    assert frame_times(tmp_path / "d.mkv")[-1] == pytest.approx(11 / 25, abs=1e-3)
    part = upscale_video(tiny_model, seq, tmp_path / "p.mkv", options=exact, start=0.2, length=0.2)
    with VideoReader(probe(tmp_path / "p.mkv")) as a, VideoReader(probe(tmp_path / "d.mkv")) as b:
        whole = [f.rgb for f in b]
        assert part.frames == 5 and all(np.array_equal(f.rgb, whole[5 + k]) for k, f in enumerate(a))


def replace_fps(options: EncodeOptions, fps: Fraction) -> EncodeOptions:
    from dataclasses import replace

    return replace(options, fps=fps)


@pytest.mark.slow
def test_a_deep_sequence_is_read_deep_and_a_frame_of_another_size_is_named(
    tmp_path: Path, tiny_model: torch.nn.Module
) -> None:
    deep = frames(tmp_path / "deep", 3, "f%02d.png", pix_fmt="rgb48be")
    r = upscale_video(tiny_model, deep, tmp_path / "deep.mkv", options=EncodeOptions(preset="ultrafast"))
    assert r.bits == 16 and r.pix_fmt == "yuv420p10le"
    mixed = frames(tmp_path / "mixed", 4, "f%02d.png")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=80x60", "-frames:v", "1",
                    str(mixed / "f03.png")], check=True, timeout=60)  # fmt: skip
    m = upscale_video(tiny_model, mixed, tmp_path / "m.mkv", options=EncodeOptions(preset="ultrafast"))
    assert m.frames == 4 and (m.out_width, m.out_height) == (256, 192)
    assert "frame 3 (80x60) not of the first frame's size (64x48): scaled to it before upscaling" in m.notes


@pytest.mark.slow
def test_a_stopped_sequence_continues_and_another_rate_is_refused(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    """A resumable run of a sequence: stopped and run again, the same frames and times as a run never stopped; read
    at another --fps, or with a frame re-rendered, it is another run."""
    seq = frames(tmp_path / "renders")
    exact = EncodeOptions(codec="ffv1", pix_fmt="bgr0", fps=Fraction(24))
    steady = TemporalOptions(hysteresis=0.0)
    straight = upscale_video(tiny_model, seq, tmp_path / "s.mkv", options=exact, temporal=steady)
    out = tmp_path / "o.mkv"
    kw: dict[str, Any] = {"temporal": steady, "resume": True, "chunk_frames": 4}

    def stop(done: int, total: int | None) -> None:
        if done == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upscale_video(tiny_model, seq, out, options=exact, progress=stop, **kw)
    state = json.loads((resume_folder(out) / "state.json").read_text())
    assert state["recipe"]["demux"][-2:] == ["-framerate", "24"] and state["recipe"]["input"]["frames"] == 12
    with pytest.raises(ConfigError, match=r"other settings \(--fps \(the rate an image sequence is read at\)\)"):
        upscale_video(tiny_model, seq, out, options=replace_fps(exact, Fraction(25)), **kw)
    done = upscale_video(tiny_model, seq, out, options=exact, **kw)
    assert (done.frames, done.resumed, done.counts) == (12, 4, straight.counts)
    assert frame_times(out) == frame_times(tmp_path / "s.mkv")
    with VideoReader(probe(out)) as a, VideoReader(probe(tmp_path / "s.mkv")) as b:
        assert all(np.array_equal(x.rgb, y.rgb) for x, y in zip(a, b, strict=True))
    with pytest.raises(KeyboardInterrupt):
        upscale_video(tiny_model, seq, tmp_path / "o2.mkv", options=exact, progress=stop, **kw)
    (seq / "shot_0012.png").write_bytes((seq / "shot_0001.png").read_bytes())  # re-rendered
    with pytest.raises(ConfigError, match=r"other settings \(the input file\)"):
        upscale_video(tiny_model, seq, tmp_path / "o2.mkv", options=exact, **kw)


@pytest.mark.slow
def test_the_cli_reads_a_folder_and_refuses_a_gap_in_one_line(tmp_path: Path, tiny_model_path: Path) -> None:
    seq = frames(tmp_path / "renders", 3)
    r = runner.invoke(app, ["video", str(seq), "--model", str(tiny_model_path), "--preset", "ultrafast", "--json"])
    assert r.exit_code == 0, r.output
    record = json.loads(r.stdout)
    assert record["output"] == str(tmp_path / "renders_x4.mkv") and record["frames"] == 3
    assert (tmp_path / "renders_x4.mkv").is_file() and "read at 25 frames/s" in record["notes"][0]
    (seq / "shot_0002.png").unlink()
    r = runner.invoke(app, ["video", str(seq / "shot_%04d.png"), str(tmp_path / "o.mp4"), "--model",
                            str(tiny_model_path)])  # fmt: skip
    assert r.exit_code == 1 and r.stderr.strip().splitlines() == [
        f"error: {seq / 'shot_%04d.png'}: frame 0002 is missing (frames 0001-0001 and 0003-0003 are there); a sequence "
        "runs without a gap"]


# --------------------------------------------------------------------------------------------------- writing


@pytest.mark.slow
def test_a_png_sequence_out_is_the_pictures_upscale_makes(tmp_path: Path) -> None:
    """Frames written as a PNG sequence are, pixel for pixel, what `classsr upscale` makes of each frame (one engine);
    a sequence read from one keeps its numbers; the class map is a sequence beside it."""
    from PIL import Image

    seq = frames(tmp_path / "renders", 3, "f_%04d.png", first=1001)
    out = tmp_path / "up" / "%05d.png"
    r = runner.invoke(app, ["video", str(seq), str(out), "--threads", "2", "--classmap", "--json"])
    assert r.exit_code == 0, r.output
    record = json.loads(r.stdout)
    assert record["output"] == str(out) and record["frames"] == 3 and record["pix_fmt"] == "rgb24"
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "01001.png", "01001_classmap.png", "01002.png", "01002_classmap.png", "01003.png", "01003_classmap.png"]
    r = runner.invoke(app, ["upscale", str(seq / "f_1002.png"), "-o", str(tmp_path / "pic.png"), "--threads", "2"])
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.asarray(Image.open(out.parent / "01002.png")), np.asarray(Image.open(tmp_path / "pic.png")))
    # Written again over it: refused, then replaced with --overwrite, and a shorter run leaves none of the longer one's.
    r = runner.invoke(app, ["video", str(seq), str(out), "--threads", "2"])
    assert r.exit_code == 1 and f"{out}: 3 frame(s) named so already exist" in r.stderr
    r = runner.invoke(app, ["video", str(seq), str(out), "--threads", "2", "--duration", "0.08", "--overwrite"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.parent.iterdir() if "classmap" not in p.name) == ["01001.png", "01002.png"]


@pytest.mark.slow
def test_an_openexr_sequence_is_read_as_upscale_reads_its_frames(tmp_path: Path) -> None:
    """OpenEXR frames (a render's linear light, a third of it above 1.0; with alpha, premultiplied) are read as
    `classsr upscale` reads each picture: the first frame's stops darker, within the model's range, then as bright as
    it was, clipped; a PNG sequence's first frame is, level for level at 16 bits, what upscale makes of it, and an
    OpenEXR sequence's first frame value for value."""
    from PIL import Image

    from classsr_cli.io import exr
    from classsr_cli.io.icc import srgb_decode
    from classsr_cli.io.image import read_image

    photo = np.asarray(Image.open(Path(__file__).parents[1] / "examples" / "baby.png").convert("RGB").resize((96, 72)))
    veil = np.ones((72, 96), np.float32)
    veil[:, :30] = 0.5
    for name, alpha in (("plain", None), ("veiled", veil)):
        folder = tmp_path / name
        folder.mkdir()
        for k in range(3):
            light = (srgb_decode(np.roll(photo, 4 * k, axis=1) / 255.0) * 2.5).astype(np.float32)
            stored = light if alpha is None else np.concatenate([light * alpha[..., None], alpha[..., None]], axis=2)
            with (folder / f"shot_{1001 + k}.exr").open("wb") as f:
                exr.write(f, [stored], width=96, height=72, channels=stored.shape[2], half=True)
        out = tmp_path / f"{name}_up" / "%05d.png"
        r = runner.invoke(app, ["video", str(folder), str(out), "--threads", "2"])
        assert r.exit_code == 0, r.output
        assert "OpenEXR frames are linear light: upscaled 2 stops darker" in r.stderr
        assert sorted(p.name for p in out.parent.iterdir()) == ["01001.png", "01002.png", "01003.png"]
        pic = tmp_path / f"{name}.png"
        r = runner.invoke(app, ["upscale", str(folder / "shot_1001.exr"), "-o", str(pic), "--threads", "2"])
        assert r.exit_code == 0, r.output
        got, want = read_image(out.parent / "01001.png"), read_image(pic)
        assert got.bits == want.bits == 16 and got.mode == want.mode == ("RGB" if alpha is None else "RGBA")
        assert np.array_equal(got.pixels, want.pixels)
        assert alpha is None or np.array_equal(got.alpha, want.alpha)
        # OpenEXR frames out: linear light, the highlights kept, each the EXR upscale writes of that frame (a
        # --resume run in chunks alike); the class map in PNG.
        for extra in ([], ["--resume", "--classmap"]):
            frames = tmp_path / f"{name}_exr{len(extra)}" / "%04d.exr"
            r = runner.invoke(app, ["video", str(folder), str(frames), "--threads", "2", *extra])
            assert r.exit_code == 0, r.output
            assert "written in linear light, the light outside 0-1 kept" in r.stderr
            made = sorted(p.name for p in frames.parent.iterdir())
            assert made == (["1001.exr", "1002.exr", "1003.exr"] if not extra else
                            ["1001.exr", "1001_classmap.png", "1002.exr", "1002_classmap.png", "1003.exr",
                             "1003_classmap.png"])  # fmt: skip
            r = runner.invoke(app, ["upscale", str(folder / "shot_1001.exr"), "-o", str(tmp_path / "still.exr"),
                                    "--threads", "2", "--overwrite"])  # fmt: skip
            assert r.exit_code == 0, r.output
            from classsr_cli.io.video import ffmpeg_exe

            video, still = (exr.decode(ffmpeg_exe(), p) for p in (frames.parent / "1001.exr", tmp_path / "still.exr"))
            assert video.shape == still.shape == (288, 384, 3 if alpha is None else 4)
            assert np.array_equal(video, still) and video.max() > 2  # the light above 1.0 too
    r = runner.invoke(app, ["video", str(tmp_path / "plain"), str(tmp_path / "out.exr")])
    assert r.exit_code == 2 and "OpenEXR frames are written as a numbered sequence" in r.stderr
    cut = tmp_path / "plain" / "shot_1003.exr"  # ffmpeg's decoder would give its missing chunks as zeros
    whole = cut.read_bytes()
    cut.write_bytes(whole[:-100])
    r = runner.invoke(app, ["video", str(tmp_path / "plain"), str(tmp_path / "cut" / "%05d.png")])
    assert r.exit_code == 1 and "shot_1003.exr: truncated or corrupt image" in r.stderr
    assert not (tmp_path / "cut").exists()
    # A whole frame with a byte of a chunk's data damaged: ffmpeg's decoder gives that chunk's rows as zeros, logs it
    # and goes on, ahead on threads, so its log does not say which frame: each frame is decoded alone to name it.
    cut.write_bytes(whole)
    damaged = bytearray((tmp_path / "plain" / "shot_1002.exr").read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (tmp_path / "plain" / "shot_1002.exr").write_bytes(bytes(damaged))
    r = runner.invoke(app, ["video", str(tmp_path / "plain"), str(tmp_path / "dmg" / "%05d.png")])
    assert r.exit_code == 3, r.output
    assert ("1 of 3 frame(s) have a chunk whose data does not decode and were upscaled with its rows black, "
            "shot_1002.exr the first") in r.stderr


@pytest.mark.slow
def test_a_video_out_as_pictures_turns_rotated_frames_and_keeps_depth_and_alpha(
    tmp_path: Path, tiny_model: torch.nn.Module
) -> None:
    from PIL import Image

    ff = ffmpeg_exe()
    clip, rot = tmp_path / "clip.mp4", tmp_path / "rot.mp4"
    subprocess.run([ff, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-f", "lavfi", "-i",
                    "sine=duration=0.4", "-t", "0.4", "-pix_fmt", "yuv420p", "-shortest", str(clip)],
                   check=True, timeout=60)  # fmt: skip
    subprocess.run([ff, "-v", "error", "-display_rotation", "90", "-i", str(clip), "-c", "copy", str(rot)], check=True,
                   timeout=60)  # fmt: skip
    r = upscale_video(tiny_model, rot, tmp_path / "r" / "%03d.png")
    assert r.frames == 4 and sorted(p.name for p in (tmp_path / "r").iterdir()) == [f"{k:03d}.png" for k in range(1, 5)]
    assert Image.open(tmp_path / "r" / "001.png").size == (192, 256)  # turned as players show it: 48x64, x4
    assert "1 audio stream(s) dropped: an image sequence holds none" in r.notes
    deep = frames(tmp_path / "deep", 2, "f%02d.png", pix_fmt="rgb48be")
    d = upscale_video(tiny_model, deep, tmp_path / "d" / "%02d.tif")
    assert (d.bits, d.pix_fmt) == (16, "rgb48le") and sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "01.tif", "02.tif"]
    # classsr's own TIFF writer, as upscale's: deflate with the predictor (ffmpeg's encoder stored them raw), the same
    # 16-bit pixels as the PNG frames (classsr's own PNG writer too).
    import tifffile

    from classsr_cli.io.image import read_image

    upscale_video(tiny_model, deep, tmp_path / "dp" / "%02d.png")
    with tifffile.TiffFile(tmp_path / "d" / "02.tif") as tif:
        page = tif.pages[0]
        assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE and page.predictor == 2
        assert np.array_equal(page.asarray(), read_image(tmp_path / "dp" / "02.png").pixels)
    clear = frames(tmp_path / "clear", 2, "%d.png", first=0)
    for k in (0, 1):  # half transparent
        rgba = np.asarray(Image.open(clear / f"{k}.png").convert("RGBA")).copy()
        rgba[:, :, 3] = 128
        Image.fromarray(rgba).save(clear / f"{k}.png")
    a = upscale_video(tiny_model, clear, tmp_path / "a" / "%d.png")
    assert a.alpha and a.pix_fmt == "rgba" and Image.open(tmp_path / "a" / "0.png").mode == "RGBA"
    j = upscale_video(tiny_model, clip, tmp_path / "j" / "%03d.jpg")
    assert j.pix_fmt == "yuvj444p" and (tmp_path / "j" / "004.jpg").is_file()
    # classsr's own JPEG writer, as upscale writes a JPEG (quality 95, 4:4:4, the record as its comment): the pixels of
    # the frame's lossless PNG saved so; a 16-bit source's levels rounded to 8 bits first; its class map JPEG too
    from PIL import JpegImagePlugin

    from classsr_cli.io.image import DEFAULT_QUALITY, to_8bit

    def as_upscale_writes(pixels: np.ndarray) -> np.ndarray:
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=DEFAULT_QUALITY, subsampling=0)
        return np.asarray(Image.open(buf))

    upscale_video(tiny_model, clip, tmp_path / "jp" / "%03d.png")
    with Image.open(tmp_path / "j" / "003.jpg") as im:
        assert JpegImagePlugin.get_sampling(im) == 0 and im.info["comment"].startswith(b'classsr {"version"')
        assert np.array_equal(np.asarray(im), as_upscale_writes(np.asarray(Image.open(tmp_path / "jp" / "003.png"))))
    dj = upscale_video(tiny_model, deep, tmp_path / "dj" / "%02d.jpg", classmap=True)
    assert (dj.bits, dj.pix_fmt) == (16, "yuvj444p")
    with Image.open(tmp_path / "dj" / "02.jpg") as im:
        assert np.array_equal(np.asarray(im), as_upscale_writes(to_8bit(read_image(tmp_path / "dp" / "02.png").pixels)))
    with Image.open(tmp_path / "dj" / "02_classmap.jpg") as im:
        assert im.size == (256, 192) and JpegImagePlugin.get_sampling(im) == 0 and "comment" not in im.info


@pytest.mark.slow
def test_quality_sets_jpeg_and_jpeg_xl_frames_and_animated_webp(tmp_path: Path) -> None:
    """`--quality` as upscale takes it: JPEG frames at that quality (classsr's writer: Pillow's at quality 60, 4:4:4, of
    the lossless frames), JPEG XL frames at libjxl's distance for it, animated WebP at it; refused, one line, exit 2,
    where it sets nothing: a video (--crf), lossless pictures, JPEG frames that ffmpeg's encoder writes (-e)."""
    from PIL import Image

    clip = tmp_path / "clip.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-frames:v", "2",
                    "-c:v", "ffv1", str(clip)], check=True, timeout=60)  # fmt: skip
    calls: list[list[str]] = []
    real = subprocess.Popen

    def spy(cmd: Any, *a: Any, **k: Any) -> Any:
        calls.append([str(c) for c in cmd])
        return real(cmd, *a, **k)

    for out, more in (("png/%d.png", []), ("q60/%d.jpg", ["--quality", "60"]), ("jxl/%d.jxl", ["--quality", "80"]),
                      ("anim.webp", ["--quality", "70"])):  # fmt: skip
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(subprocess, "Popen", spy)
            r = runner.invoke(app, ["video", str(clip), str(tmp_path / out), "--threads", "2", *more])
        assert r.exit_code == 0, r.output
    buf = io.BytesIO()
    Image.open(tmp_path / "png" / "2.png").save(buf, format="JPEG", quality=60, subsampling=0)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "q60" / "2.jpg")), np.asarray(Image.open(buf)))
    jxl = next(c for c in calls if "libjxl" in c)
    assert jxl[jxl.index("-distance:v:0") + 1] == "1.900"  # cjxl -q 80
    webp = next(c for c in calls if "libwebp_anim" in c)
    assert webp[webp.index("-quality:v:0") + 1] == "70"
    for out, more, said in (("v.mp4", [], "libx264's is --crf"), ("p/%d.png", [], "png is lossless"),
                            ("e/%d.jpg", ["-e", "q:v=3"], "give -e q:v=2 \\(best\\) .. 31 instead")):  # fmt: skip
        r = runner.invoke(app, ["video", str(clip), str(tmp_path / out), "--quality", "70", *more])
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.output
        assert re.search(said, r.stderr) and not (tmp_path / Path(out).parts[0]).exists(), r.stderr  # nothing written


@pytest.mark.slow
def test_frames_of_non_square_pixels_keep_their_shape(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    """A DVD's anamorphic frames (SAR 32:27) written as PNG, TIFF, JPEG, OpenEXR and Radiance pictures by classsr's own
    writers (before, ffmpeg's encoders wrote PNG, TIFF and JPEG ones, slowly, and EXR and Radiance frames lost the
    shape): each says its pixel shape as ffmpeg's encoder did (PNG pHYs 32:27 without a unit, TIFF 72 by 85.33 dpi,
    JFIF density 32:27 without a unit), read back as 32:27, the class map's too, or in its own terms (OpenEXR's
    pixelAspectRatio, Radiance's PIXASPECT)."""
    from PIL import Image

    from classsr_cli.io.image import exr_attributes

    clip = tmp_path / "dvd.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=72x48:rate=10", "-frames:v", "2",
                    "-vf", "setsar=32/27", "-c:v", "ffv1", str(clip)], check=True, timeout=60)  # fmt: skip
    for suffix in ("png", "tif", "jpg", "exr"):
        upscale_video(tiny_model, clip, tmp_path / suffix / f"%02d.{suffix}", classmap=True)
        for name in (f"%02d.{suffix}", f"%02d_classmap.{'png' if suffix == 'exr' else suffix}"):
            assert probe(tmp_path / suffix / name).sar == Fraction(32, 27), name
    with Image.open(tmp_path / "png" / "02.png") as im:  # classsr's writer: its record
        assert im.info["aspect"] == (32, 27) and "classsr" in im.info
    with Image.open(tmp_path / "tif" / "02.tif") as im:
        assert im.info["dpi"] == pytest.approx((72, 72 * 32 / 27))
    with Image.open(tmp_path / "jpg" / "02.jpg") as im:
        assert (im.info["jfif_unit"], im.info["jfif_density"]) == (0, (32, 27)) and "comment" in im.info
    kind, value = exr_attributes(tmp_path / "exr" / "02.exr")["pixelAspectRatio"]
    assert kind == "float" and np.float32(np.frombuffer(value, "<f4")[0]) == np.float32(32 / 27)
    upscale_video(tiny_model, clip, tmp_path / "hdr" / "%02d.hdr")  # Radiance's pixel height over width
    from classsr_cli.io import radiance

    assert "PIXASPECT=0.843750" in radiance.header((tmp_path / "hdr" / "02.hdr").read_bytes()[:4096]).lines


@pytest.mark.slow
def test_jpeg_xl_frames_are_read_and_written_as_upscale_writes_them(tmp_path: Path) -> None:
    """A numbered JPEG XL sequence reads as a video (ffmpeg's libjxl; before, such a folder was refused), and a
    JPEG XL sequence out is written at `classsr upscale`'s quality and effort (not libjxl's default effort, 7), or as
    -e asks (distance 0: lossless, as the PNG frames)."""
    from classsr_cli.io.image import read_image, write_image

    png = frames(tmp_path / "png", 3, "f_%03d.png")
    for k in (1, 2, 3):
        write_image(tmp_path / "jxl" / f"f_{k:03d}.jxl", read_image(png / f"f_{k:03d}.png"), quality=100)
    calls: list[list[str]] = []
    real = subprocess.Popen

    def spy(cmd: Any, *a: Any, **k: Any) -> Any:
        calls.append([str(c) for c in cmd])
        return real(cmd, *a, **k)

    for name, src, more in (("ref", png, []), ("lossy", tmp_path / "jxl", []),
                            ("lossless", tmp_path / "jxl", ["-e", "distance=0"])):  # fmt: skip
        out = tmp_path / name / f"%d.{'png' if name == 'ref' else 'jxl'}"
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(subprocess, "Popen", spy)
            r = runner.invoke(app, ["video", str(src), str(out), "--threads", "2", *more])
        assert r.exit_code == 0 and "3 frames read" in r.stderr, r.output
    encode = next(c for c in calls if "libjxl" in c and "-distance:v:0" in c)
    assert encode[encode.index("-distance:v:0") + 1] == "0.550" and encode[encode.index("-effort:v:0") + 1] == "3"
    assert not any("libjxl" in c and "-distance:v:0" in c for c in calls[calls.index(encode) + 1 :])  # -e's own
    ref = read_image(tmp_path / "ref" / "2.png").pixels
    assert np.array_equal(read_image(tmp_path / "lossless" / "2.jxl").pixels, ref)
    assert 0 < np.abs(read_image(tmp_path / "lossy" / "2.jxl").pixels.astype(int) - ref).mean() < 4  # testsrc2's red


@pytest.mark.slow
def test_jpeg_frames_are_written_at_q2(tmp_path: Path) -> None:
    """MJPEG's own rate control (200 kb/s) quantises an upscale's detail away: classsr writes JPEG frames by its own
    writer at quality 95 (a sequence) or by ffmpeg's at q 2 (--codec mjpeg), closer to the lossless frames, unless -e
    says otherwise (then ffmpeg's encoder; b=200k: its default)."""
    from PIL import Image

    clip = tmp_path / "clip.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-frames:v",
                    "3", "-c:v", "ffv1", str(clip)], check=True, timeout=60)  # fmt: skip
    for kind, more in (("png", []), ("jpg", []), ("b", ["-e", "b=200k"]), ("q31", ["-e", "q=31"])):
        out = tmp_path / kind / f"%d.{'png' if kind == 'png' else 'jpg'}"
        r = runner.invoke(app, ["video", str(clip), str(out), "--threads", "2", *more])
        assert r.exit_code == 0, r.output

    def err(kind: str) -> float:
        a = np.asarray(Image.open(tmp_path / kind / "2.jpg").convert("L")).astype(float)
        return float(np.abs(a - np.asarray(Image.open(tmp_path / "png" / "2.png").convert("L"))).mean())

    assert err("jpg") < err("b") < err("q31")


def test_output_patterns_and_their_refusals(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    from classsr_cli.io.video import container_of

    assert container_of(tmp_path / "%05d.png") == container_of(tmp_path / "f_%d.DPX") == "image2"
    assert output_path(tmp_path / "clip.mp4", str(tmp_path / "o" / "%04d.tif"), 4) == tmp_path / "o" / "%04d.tif"
    with pytest.raises(ConfigError, match=r"unknown video container '\.png'; .* or a numbered pattern of \.png, .*"
                                          r"pictures \(.*%05d\.png\)"):
        output_path(tmp_path / "clip.mp4", str(tmp_path / "o.png"), 4)
    with pytest.raises(ConfigError, match=r"unknown video container '\.mxf'; .* pictures \(.*%05d\.png\)"):
        output_path(tmp_path / "clip.mp4", str(tmp_path / "o.mxf"), 4)  # not a pattern of .mxf pictures
    seq = touch(tmp_path / "renders", "f_0001.png")
    for out, kw, said in (
        (tmp_path / "o" / "%04d.png", {"options": EncodeOptions(codec="libx264")},
         r"\.png pictures are written with png, not --codec libx264"),
        (seq / "f_%04d.png", {}, "the output would replace its own input"),
    ):
        with pytest.raises(ConfigError, match=said):
            upscale_video(tiny_model, seq, out, **kw)


def test_a_killed_runs_frames_are_swept(tmp_path: Path) -> None:
    """A run killed while writing a sequence leaves its hidden frames: the next run of that output removes them
    (their process is gone), not a running one's, nor anything else."""
    from classsr_cli.video import _sweep

    gone, alive = 2**22 + 12345, os.getpid()
    names = [f".{k:04d}.{gone}-0123abcd.partial.png" for k in (1, 2)] + [f".0001.{alive}-0123abcd.partial.png",
                                                                          ".0001.png", "0001.png"]  # fmt: skip
    touch(tmp_path, *names)
    assert _sweep(tmp_path / "%04d.png") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])


@pytest.mark.slow
def test_a_sequence_is_transparent_where_its_first_frame_is(tmp_path: Path) -> None:
    """ffmpeg reads a CMYK JPEG, and an opaque RGBA PNG, in alpha pixel formats: such a sequence is opaque (no note
    about an alpha not kept); one with a clear pixel in its first frame is transparent."""
    from PIL import Image

    rgb = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    for name, im in (("cmyk", Image.fromarray(rgb).convert("CMYK")), ("opaque", Image.fromarray(rgb).convert("RGBA")),
                     ("clear", Image.fromarray(np.dstack([rgb, np.full((48, 64), 128, np.uint8)])))):
        (tmp_path / name).mkdir()
        for k in (1, 2):
            im.save(tmp_path / name / f"f{k}.{'jpg' if name == 'cmyk' else 'png'}")
    assert [probe(tmp_path / n).alpha for n in ("cmyk", "opaque", "clear")] == [False, False, True]
    assert probe(tmp_path / "cmyk").pix_fmt == "gbrap"  # what the check is for


@pytest.mark.slow
def test_a_frame_or_a_globbed_sequence_given_to_video_names_the_sequence(tmp_path: Path,
                                                                          capfd: pytest.CaptureFixture[str]) -> None:
    """A user who gives one frame, or lets the shell expand a glob into every frame, is told how to give the
    sequence."""
    seq = frames(tmp_path / "renders", 3)
    r = runner.invoke(app, ["video", str(seq / "shot_0002.png"), str(tmp_path / "o.mp4")])
    assert r.exit_code == 1 and r.stderr.strip() == (
        f"error: {seq / 'shot_0002.png'}: is a PNG image, not a video; to read its sequence as a video give "
        f"{seq / 'shot_%04d.png'} (3 frames), or its folder; to upscale the picture, use `classsr upscale`")
    alone = touch(tmp_path / "alone", "cover.png")
    (alone / "cover.png").write_bytes((seq / "shot_0001.png").read_bytes())
    r = runner.invoke(app, ["video", str(alone / "cover.png"), str(tmp_path / "o.mp4")])
    assert r.exit_code == 1 and r.stderr.strip().endswith("is a PNG image, not a video; use `classsr upscale`")
    import sys
    from unittest import mock

    from classsr_cli.cli import main

    argv = ["classsr", "video", *map(str, sorted(seq.iterdir())), str(tmp_path / "o.mp4")]
    capfd.readouterr()
    with mock.patch.object(sys, "argv", argv), pytest.raises(SystemExit) as e:
        main()
    said = capfd.readouterr().err
    assert e.value.code == 2 and said.startswith("error: Got unexpected extra argument(s)")
    assert "a shell glob gives each frame as an argument: give an image sequence as its folder or quoted" in said


@pytest.mark.slow
def test_a_frame_that_does_not_decode_is_named(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    """ffmpeg goes on past a damaged frame of a sequence: the run keeps the others at their times and says which file
    was left out, counted from --start too."""
    seq = frames(tmp_path / "renders", 6, "f_%03d.png")
    (seq / "f_004.png").write_bytes((seq / "f_004.png").read_bytes()[:100])
    r = upscale_video(tiny_model, seq, tmp_path / "o.mkv", options=EncodeOptions(preset="ultrafast"))
    assert r.frames == 5 and r.lost is not None
    assert r.lost.startswith("1 of 6 frame(s) did not decode and are left out, f_004.png the first (")
    assert frame_times(tmp_path / "o.mkv") == pytest.approx([0, 0.04, 0.08, 0.16, 0.2], abs=1e-3)
    part = upscale_video(tiny_model, seq, tmp_path / "p.mkv", options=EncodeOptions(preset="ultrafast"), start=0.08)
    assert part.frames == 3 and part.lost is not None and part.lost.startswith("1 of 4 frame(s) did not decode and are "
                                                                               "left out, f_004.png the first (")


@pytest.mark.slow
def test_a_damaged_jpeg_xl_frame_costs_that_frame_alone(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    """ffmpeg's libjxl decoder fails every frame after a damaged one (it is not reset): the reader starts ffmpeg
    again at the next file, so only the damaged frames are left out, the others at their times, from --start too."""
    from classsr_cli.io.image import read_image, write_image

    png = frames(tmp_path / "png", 6, "f_%03d.png")
    seq = tmp_path / "jxl"
    for k in range(1, 7):
        write_image(seq / f"f_{k:03d}.jxl", read_image(png / f"f_{k:03d}.png"), quality=100)
    for k in (2, 4):  # bytes in the middle of the codestream flipped
        data = bytearray((seq / f"f_{k:03d}.jxl").read_bytes())
        data[len(data) // 2 : len(data) // 2 + 16] = bytes(b ^ 0x5A for b in data[len(data) // 2 : len(data) // 2 + 16])
        (seq / f"f_{k:03d}.jxl").write_bytes(bytes(data))
    def run(out: str, start: float = 0.0) -> Any:  # a decoder that spins (as it did before) fails, not hangs, the test
        done: list[Any] = []
        work = threading.Thread(target=lambda: done.append(upscale_video(
            tiny_model, seq, tmp_path / out, options=EncodeOptions(preset="ultrafast"), start=start)), daemon=True)
        work.start()
        work.join(timeout=120)
        if work.is_alive():
            subprocess.run(["pkill", "-9", "-f", str(seq)], check=False)  # it ignores SIGTERM
        assert done, "the reader did not end"
        return done[0]

    r = run("o.mkv")
    assert r.frames == 4 and r.lost is not None  # before: 1 (every frame from the first damaged one failed), or hung
    assert r.lost.startswith("2 of 6 frame(s) did not decode and are left out, f_002.jxl the first (")
    assert frame_times(tmp_path / "o.mkv") == pytest.approx([0, 0.08, 0.16, 0.2], abs=1e-3)
    part = run("p.mkv", start=0.08)
    assert part.frames == 3 and part.lost is not None and part.lost.startswith("1 of 4 frame(s) did not decode and are "
                                                                               "left out, f_004.jxl the first (")
    assert frame_times(tmp_path / "p.mkv") == pytest.approx([0, 0.08, 0.12], abs=1e-3)


@pytest.mark.slow
def test_a_variable_rate_video_out_as_pictures_is_a_picture_a_frame(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    """Each frame once (ffmpeg's default for pictures repeats frames to fill a constant rate); --fps makes one."""
    vfr = tmp_path / "vfr.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=64x48:rate=10,setpts='if(lt(N,5),N*0.1,0.5+(N-5)*0.3)/TB'", "-frames:v", "8",
                    "-fps_mode", "vfr", str(vfr)], check=True, timeout=60)  # fmt: skip
    r = upscale_video(tiny_model, vfr, tmp_path / "each" / "%02d.png")
    assert r.frames == 8 and len(list((tmp_path / "each").iterdir())) == 8
    c = upscale_video(tiny_model, vfr, tmp_path / "cfr" / "%02d.png", options=EncodeOptions(fps=Fraction(10)))
    assert c.frames == 8 and len(list((tmp_path / "cfr").iterdir())) == 12  # 0 to 1.1 s, 10 frames a second


@pytest.mark.slow
@pytest.mark.parametrize("orientation", range(1, 9))
def test_frames_are_turned_upright_by_their_exif_orientation(tmp_path: Path, orientation: int) -> None:
    """ffmpeg reads pictures as stored; a sequence's frames are turned as `classsr upscale` turns a picture (Pillow's
    exif_transpose), every frame by its first frame's orientation."""
    from PIL import Image, ImageOps

    rng = np.random.default_rng(orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    for k in (1, 2):
        Image.fromarray((rng.random((6, 10, 3)) * 255).astype(np.uint8)).save(tmp_path / f"f{k}.png", exif=exif.tobytes())
    info = probe(tmp_path)
    assert info.orientation == orientation and info.transposed == (orientation >= 5)
    with VideoReader(info) as reader:
        got = [f.rgb for f in reader]
    for k, rgb in enumerate(got, 1):
        assert np.array_equal(rgb, np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / f"f{k}.png")))), k


def wide_profile() -> bytes:
    """sRGB's profile with Adobe RGB's red (D50 XYZ 0.6097, 0.3111, 0.0195 for sRGB's 0.4361, 0.2225, 0.0139) and the
    description "Wide built-in": a wider-gamut RGB profile that LittleCMS converts to sRGB."""
    import struct

    from PIL import ImageCms

    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (count,) = struct.unpack(">I", icc[128:132])
    for k in range(count):
        sig, offset, _ = struct.unpack(">4sII", icc[132 + 12 * k : 144 + 12 * k])
        if sig == b"rXYZ":
            icc[offset + 8 : offset + 20] = struct.pack(">3i", *(round(v * 65536) for v in (0.6097, 0.3111, 0.0195)))
    return bytes(icc).replace("sRGB".encode("utf-16-be"), "Wide".encode("utf-16-be"))


@pytest.mark.slow
def test_frames_in_another_profile_than_srgb_are_converted_to_it(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    """A video holds no ICC profile, nor do the pictures ffmpeg writes from plain RGB: an 8-bit sequence in another
    profile than sRGB is read converted to sRGB, as Pillow (LittleCMS) converts it; an sRGB one, or none, as it is;
    at 16 bits too (classsr_cli.io.icc: within 1.5 levels of LittleCMS's 8 bits; not applied before, with a note)."""
    from PIL import Image, ImageCms

    srgb, wide = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(), wide_profile()
    rgb = (np.random.default_rng(0).random((6, 10, 3)) * 255).astype(np.uint8)
    for name, icc in (("srgb", srgb), ("wide", wide), ("none", None)):
        (tmp_path / name).mkdir()
        for k in (1, 2):
            Image.fromarray(rgb).save(tmp_path / name / f"f{k}.png", **({"icc_profile": icc} if icc else {}))
    assert [probe(tmp_path / n).icc for n in ("srgb", "wide", "none")] == [None, "Wide built-in", None]
    import io

    want = np.asarray(ImageCms.profileToProfile(Image.fromarray(rgb), ImageCms.ImageCmsProfile(io.BytesIO(wide)),
                                                ImageCms.createProfile("sRGB")))  # fmt: skip
    assert np.abs(want.astype(int) - rgb).max() > 20  # a real conversion
    for name, expected in (("wide", want), ("srgb", rgb), ("none", rgb)):
        with VideoReader(probe(tmp_path / name)) as reader:
            assert all(np.array_equal(f.rgb, expected) for f in reader), name
    r = upscale_video(tiny_model, tmp_path / "wide", tmp_path / "o.mkv")
    assert "the frames' ICC profile (Wide built-in) is converted to sRGB" in r.notes
    with VideoReader(probe(tmp_path / "wide"), bits=16) as reader:
        assert all(np.abs(f.rgb.astype(float) / 257 - want).max() <= 1.5 for f in reader)
    deep = upscale_video(tiny_model, tmp_path / "wide", tmp_path / "d.mkv", options=EncodeOptions(pix_fmt="yuv420p10le"))
    assert "the frames' ICC profile (Wide built-in) is converted to sRGB" in deep.notes


@pytest.mark.slow
def test_pictures_out_with_resume_continue_a_stopped_run(
    tmp_path: Path, tiny_model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--resume into a picture pattern keeps finished chunks of frames (numbered as in the output) in the hidden
    folder; run again, it goes on and writes the frames and class maps of a run never stopped; stopped while the
    frames are put in place, it puts them again; other settings are refused."""
    from PIL import Image

    from classsr_cli import video as video_module
    from classsr_cli.video import kept_frames

    seq = frames(tmp_path / "renders", 9, "f%04d.png", first=101)
    steady = TemporalOptions(hysteresis=0.0)
    straight = upscale_video(tiny_model, seq, tmp_path / "s" / "%04d.png", temporal=steady, classmap=True)
    out = tmp_path / "o" / "%04d.png"
    kw: dict[str, Any] = {"temporal": steady, "resume": True, "chunk_frames": 3, "classmap": True}

    def stop(done: int, total: int | None) -> None:
        if done == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upscale_video(tiny_model, seq, out, progress=stop, **kw)
    folder = resume_folder(out)
    assert folder == tmp_path / "o" / ".#04d.png.resume" and kept_frames(out) == 6
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("00001")) == [
        "00001_00000104.png", "00001_00000105.png", "00001_00000106.png", "00001_classmap_00000104.png",
        "00001_classmap_00000105.png", "00001_classmap_00000106.png"]
    assert sorted(p.name for p in out.parent.iterdir()) == [folder.name]  # no frame in place yet
    with pytest.raises(ConfigError, match=r"other settings \(--encoder-opt\)"):
        upscale_video(tiny_model, seq, out, options=EncodeOptions(extra=(("compression_level", "1"),)), **kw)

    def broken(src: Path, dst: Path) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:  # stopped while putting the frames in place: the chunks are kept whole
        m.setattr(video_module, "_link", broken)
        with pytest.raises(KeyboardInterrupt):
            upscale_video(tiny_model, seq, out, **kw)
    assert kept_frames(out) == 9 and sorted(p.name for p in out.parent.iterdir()) == [folder.name]
    done = upscale_video(tiny_model, seq, out, **kw)
    assert (done.frames, done.resumed, done.counts) == (9, 9, straight.counts) and not folder.exists()
    # A picture gone from a stopped run's chunk: that run cannot be continued (its frames would be missing).
    with pytest.raises(KeyboardInterrupt):
        upscale_video(tiny_model, seq, tmp_path / "g" / "%04d.png", progress=stop, **kw)
    (resume_folder(tmp_path / "g" / "%04d.png") / "00000_00000102.png").unlink()
    with pytest.raises(ConfigError, match=r"cannot be continued \(its record is unreadable, or a chunk it lists is "
                                          r"missing or empty\)"):
        upscale_video(tiny_model, seq, tmp_path / "g" / "%04d.png", **kw)
    names = [f"{k:04d}.png" for k in range(101, 110)] + [f"{k:04d}_classmap.png" for k in range(101, 110)]
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(names)
    for name in names:
        a, b = Image.open(out.parent / name), Image.open(tmp_path / "s" / name)
        assert np.array_equal(np.asarray(a), np.asarray(b)), name


def test_a_quoted_glob_names_the_sequence_it_matches_whole(tmp_path: Path) -> None:
    """A glob (quoted, so that classsr expands it) is the sequence of the frames it matches, when they are all of it:
    ffmpeg reads a sequence on to its last number, so a glob of part of one is refused (--start takes a part)."""
    folder = touch(tmp_path / "renders", *(f"shot_{k:04d}.png" for k in range(1, 6)), "cover.jpg", "notes.txt")
    seq = find_sequence(folder / "*.png")
    assert (seq.pattern, seq.start, seq.count) == (folder / "shot_%04d.png", 1, 5) and is_sequence(folder / "*.png")
    assert find_sequence(folder / "shot_*") == seq and sequence_stem(folder / "shot_*.png") == "shot"
    assert sequence_stem(folder / "*.png") == "renders"
    with pytest.raises(InputError, match=r"matches 3 of the 5 frames of .*shot_%04d\.png, which is read whole; "
                                         r"--start and --duration take a part"):
        find_sequence(folder / "shot_000[1-3].png")
    with pytest.raises(InputError, match=r"\*\.exr: matches no numbered image sequence"):
        find_sequence(folder / "*.exr")


def test_an_openexr_sequence_in_acescg_is_shown_in_srgb_primaries_as_upscale_shows_a_frame(tmp_path: Path) -> None:
    """A render's OpenEXR frames in ACEScg's primaries (their chromaticities) into PNG frames: each frame, value for
    value, what `classsr upscale` writes of it, its colours brought into sRGB's primaries (they were shown as if
    sRGB's: too saturated), said; into OpenEXR frames they stay as stored."""
    import struct

    from classsr_cli.io import exr
    from classsr_cli.io.image import read_image

    chroma = struct.pack("<8f", 0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767)
    folder = tmp_path / "render"
    folder.mkdir()
    for k in range(1, 4):
        light = np.full((32, 48, 3), 0.18, np.float32)
        light[4:20, 4:24], light[10:28, 28:44] = (0.6, 0.2, 0.05), (0.05, 0.3, 0.5)
        with (folder / f"f_{k:03d}.exr").open("wb") as f:
            exr.write(f, [light], width=48, height=32, channels=3, half=True,
                      attributes={"chromaticities": ("chromaticities", chroma)})  # fmt: skip
    out = tmp_path / "png"
    out.mkdir()
    r = runner.invoke(app, ["video", str(folder / "f_%03d.exr"), str(out / "%03d.png"), "-x", "2"])
    assert r.exit_code == 0, r.output
    assert "the frames' colours are brought from their primaries" in " ".join(r.output.split())
    r = runner.invoke(app, ["upscale", str(folder / "f_001.exr"), "-x", "2", "-o", str(tmp_path / "one.png")])
    assert r.exit_code == 0, r.output
    frame, one = read_image(out / "001.png").pixels, read_image(tmp_path / "one.png").pixels
    assert np.array_equal(frame, one)
    red = frame[16:32, 16:40].reshape(-1, 3).mean(axis=0) / 65535
    lin = np.array([[1.70505, -0.62179, -0.08326], [-0.13026, 1.14080, -0.01055],
                    [-0.02400, -0.12897, 1.15297]]) @ (0.6, 0.2, 0.05)  # ACEScg's to sRGB's primaries  # fmt: skip
    want = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.clip(lin, 0, 1) ** (1 / 2.4) - 0.055)
    assert np.abs(red - want).max() < 0.01 and np.abs(red - (0.797, 0.485, 0.248)).max() > 0.1, red  # not as stored
    exrs = tmp_path / "exr"
    exrs.mkdir()
    r = runner.invoke(app, ["video", str(folder / "f_%03d.exr"), str(exrs / "%03d.exr"), "-x", "2"])
    assert r.exit_code == 0, r.output
    assert "brought from their primaries" not in r.output
    assert exr.header((exrs / "001.exr").read_bytes()).attributes["chromaticities"][1] == chroma
