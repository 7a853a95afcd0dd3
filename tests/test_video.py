"""`classsr video` and its pieces: probe, timestamps, audio/subtitle/rotation carry-over, refusals, temporal routing.

Clips are made with the bundled ffmpeg (64x48, 10-16 frames) and upscaled with the tiny seeded model.
"""

from __future__ import annotations

import functools
import io
import json
import re
import struct
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import animated_webp, unimplemented_dds
from typer.testing import CliRunner

from classsr_cli.cli import app
from classsr_cli.engine import Hysteresis, Reuse, Router, flops_report
from classsr_cli.engine.tiling import extract_patches, plan_grid
from classsr_cli.errors import ClassSRError, ConfigError, InputError, OutputExistsError, VideoError
from classsr_cli.io.video import (
    EncodeOptions,
    VideoInfo,
    VideoReader,
    VideoWriter,
    _cluster_head,
    _ebml_size,
    container_of,
    encoder_pix_fmts,
    even_size,
    ffmpeg_exe,
    probe,
)
from classsr_cli.video import TemporalOptions, classmap_path, output_path, upscale_video

runner = CliRunner()
FF = ffmpeg_exe()
TESTSRC = "testsrc=size=64x48:rate=20"


def ff(*args: str | Path) -> None:
    subprocess.run([FF, "-hide_banner", "-v", "error", "-y", *map(str, args)], check=True, timeout=120)


def frame_times(path: Path, kind: str = "v") -> list[float]:
    """pts_time of every decoded frame of the first video (``kind`` ``a``: audio) stream."""
    show = ["-vf", "showinfo"] if kind == "v" else ["-af", "ashowinfo"]
    text = subprocess.run(
        [FF, "-hide_banner", "-nostats", "-i", str(path), "-map", f"0:{kind}:0", *show, "-f", "null", "-"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stderr  # fmt: skip
    return [float(t) for t in re.findall(r"pts_time:(-?[\d.]+)", text)]


def audio_seconds(path: Path) -> float:
    raw = subprocess.run(
        [FF, "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "s16le", "-ac", "1", "-ar", "44100", "-"],
        capture_output=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    return len(raw) / 2 / 44100


def no_partials(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".partial" in p.name]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    c = {k: d / v for k, v in {
        "audio": "cfr_audio.mp4", "vfr": "vfr.mkv", "subs": "subs.mkv", "rot": "rot.mp4", "wav": "tone.wav",
        "text": "notes.mp4", "static": "static.mkv",
    }.items()}  # fmt: skip
    ff("-f", "lavfi", "-i", f"{TESTSRC}:duration=0.75", "-f", "lavfi", "-i", "sine=frequency=440:duration=0.75",
       "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", c["audio"])  # fmt: skip
    # Variable frame rate: a 0.3 s gap after frame 4, then 0.1 s steps, in a Matroska file without audio.
    ff("-f", "lavfi", "-i", f"{TESTSRC}:duration=0.6",
       "-vf", "setpts='PTS+if(gte(N,5),0.3/TB,0)+if(gte(N,8),N*0.05/TB,0)'", "-fps_mode", "passthrough",
       "-c:v", "libx264", "-pix_fmt", "yuv420p", c["vfr"])  # fmt: skip
    srt = d / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,500\nhello\n")
    ff("-f", "lavfi", "-i", f"{TESTSRC}:duration=0.5", "-f", "lavfi", "-i", "sine=duration=0.5", "-i", srt,
       "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "libopus",
       "-c:s", "srt", c["subs"])  # fmt: skip
    ff("-display_rotation", "90", "-i", c["audio"], "-c", "copy", c["rot"])
    ff("-f", "lavfi", "-i", "sine=duration=0.5", c["wav"])
    c["text"].write_text("this is not a video\n")
    # A still picture with a little noise that moves in one corner only, stored losslessly.
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1",
       "-vf", "trim=end_frame=1,loop=9:1:0,setpts=N/10/TB,noise=alls=0:allf=t", "-c:v", "ffv1", c["static"])  # fmt: skip
    return c


# ------------------------------------------------------------------------------------------- no ffmpeg needed


def test_ebml_sizes_and_cluster_layout() -> None:
    assert _ebml_size(0) == b"\x80"
    assert _ebml_size(126) == b"\xfe"
    assert _ebml_size(127) == b"\x40\x7f"  # 0x7f alone would mean "unknown size"
    head, dur = _cluster_head(1234, 50, 10)
    assert head.startswith(bytes.fromhex("1f43b675"))
    assert dur == b"\x9b\x81\x32"


def test_showinfo_lines_give_each_frame_its_pts_and_duration() -> None:
    import io
    from fractions import Fraction

    from classsr_cli.io.video import _StderrPump

    pump = _StderrPump(io.BytesIO(b""), timestamps=True)
    pump._showinfo("[Parsed_showinfo_0 @ 0x1] config in time_base: 1/1000, frame_rate: 20/1")
    pump._showinfo("[Parsed_showinfo_0 @ 0x1] n:   3 pts:    150 pts_time:0.15    duration:     50 "
                   "duration_time:0.05    fmt:yuv420p cl:left sar:1/1 s:64x48 i:P iskey:1 type:I")  # fmt: skip
    pump._showinfo("[Parsed_showinfo_0 @ 0x1] n:   4 pts:    200 pts_time:0.2     fmt:yuv420p s:64x48 i:P")
    assert pump.time_base == Fraction(1, 1000) and list(pump.stamps) == [(150, 50), (200, None)]


@pytest.mark.parametrize("size", ["64x8", "7x7", "64x48"])
def test_frames_of_7_or_8_rows_are_read_at_16_bits_as_at_8(tmp_path: Path, size: str) -> None:
    """swscale's 4:2:0 to 16-bit RGB at 7 or 8 rows (every row after the first at full scale) is avoided: a small
    video's frames read at 16 bits are its 8-bit reading's, within the rounding."""
    clip = tmp_path / "small.mkv"
    ff("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=5", "-frames:v", "1", "-c:v", "ffv1", "-pix_fmt", "yuv420p",
       clip)  # fmt: skip
    with VideoReader(probe(clip), bits=16) as reader:
        deep = next(iter(reader)).rgb.astype(int)
    with VideoReader(probe(clip)) as reader:
        eight = next(iter(reader)).rgb.astype(int)
    assert np.abs(deep / 257 - eight).max() <= 2  # (it was up to 255 at 64x8)


def test_a_decoders_error_logged_inside_a_showinfo_line_is_counted() -> None:
    """ffmpeg logs a line in pieces from its threads at once: a decoder's error can land in the middle of showinfo's
    line, without its level (as seen in runs of a sequence with a damaged frame). It is counted, and the frame's
    timestamp still read; showinfo's own words are not an error."""
    import io

    from classsr_cli.io.video import _StderrPump

    log = (b"[Parsed_showinfo_0 @ 0x1] [info] n:   1 pts:      1 pts_time:0.04    duration:      1 "
           b"duration_time:0.04    fmt:rgb24 cl:unspecified sar:1/1 s:64x48 i:P iskey:1 type:I chunk too big\n"
           b"[Parsed_showinfo_0 @ 0x1] [info] color_range:pc color_space:gbrError submitting packet to decoder: "
           b"Invalid data found when processing input\n"
           b"[Parsed_showinfo_0 @ 0x1] [info] n:   2 pts:      2 pts_time:0.08    duration:      1 "
           b"duration_time:0.04    fmt:rgb24 cl:unspecified sar:1/1 s:64x48 i:P iskey:1 type:I \n"
           b"[Parsed_showinfo_0 @ 0x1] [info] color_range:pc color_space:gbr color_primaries:unknown color_trc:unknown\n")
    pump = _StderrPump(io.BytesIO(log), timestamps=True)
    pump.run()
    assert pump.n_errors == 1 and [s[0] for s in pump.stamps] == [1, 2]
    assert pump.message() == "Error submitting packet to decoder: Invalid data found when processing input"
    clean = _StderrPump(io.BytesIO(log.replace(b"chunk too big", b"").replace(
        b"Error submitting packet to decoder: Invalid data found when processing input", b" color_primaries:unknown")),
        timestamps=True)
    clean.run()
    assert clean.n_errors == 0 and [s[0] for s in clean.stamps] == [1, 2]


def test_split_showinfo_lines_give_the_decoded_and_the_delivered_frames_apart() -> None:
    """With a select between two showinfo filters, the first's timestamps are every decoded frame's (and its sizes
    the ones told), the second's the delivered frames'."""
    import io

    from classsr_cli.io.video import _StderrPump

    pump = _StderrPump(io.BytesIO(b""), timestamps=True, split=True)
    for k in range(3):
        pump._showinfo(f"[Parsed_showinfo_2 @ 0x1] n: {k} pts: {k * 50} pts_time:0 fmt:yuv420p s:{64 + 16 * (k == 2)}x48")
    pump._showinfo("[Parsed_showinfo_4 @ 0x2] n: 0 pts: 100 pts_time:0.1 duration: 50 fmt:yuv420p s:80x48")
    assert list(pump.decoded) == [0, 50, 100] and list(pump.stamps) == [(100, 50)]
    assert pump.seen == 3 and pump.resized == [(2, 80, 48)]


@pytest.mark.slow
@pytest.mark.parametrize("first", [0, 1, 7, 14, 15, 40])
def test_frames_before_first_are_dropped_by_ffmpeg_and_the_rest_are_the_same(tmp_path: Path, first: int) -> None:
    """A resumed run or a torchrun share skips the frames before it: ffmpeg drops them (select) before converting
    and piping them. The frames delivered, their indices and timestamps, are those of a whole read; the dropped
    ones' timestamps are kept (an image sequence's lost frames are told by them)."""
    ff("-f", "lavfi", "-i", f"{TESTSRC}:duration=0.75", "-c:v", "libx264", "-pix_fmt", "yuv420p", tmp_path / "c.mp4")
    info = probe(tmp_path / "c.mp4")
    with VideoReader(info) as reader:
        whole = [(f.index, f.pts, f.duration, f.rgb.copy()) for f in reader]
    assert len(whole) == 15
    with VideoReader(info, first=first) as reader:
        got = [(f.index, f.pts, f.duration, f.rgb.copy()) for f in reader]
        assert reader.skipped_pts == [pts for _, pts, _, _ in whole[:first]] and reader.returncode == 0
        assert reader.frames_read == 15 and reader._select == first  # never read past
    assert len(got) == len(whole[first:])
    assert all(a[:3] == b[:3] and np.array_equal(a[3], b[3]) for a, b in zip(got, whole[first:], strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("first", [3, 5, 7, 11, 12])
def test_a_new_frame_size_before_or_after_first_reads_past_the_frames_instead(tmp_path: Path, first: int) -> None:
    """A frame of another size rebuilds ffmpeg's filters, and select counts afresh from it (at 7 it dropped every
    frame after the new size): the reader sees a delivered frame that is not the frame of its index, or frames
    decoded and never delivered, starts again and reads past the frames before, with the same result."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for k in range(12):
        w, h = (64, 48) if k < 5 else (80, 60)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / f"{k + 1:03d}.png")
    info = probe(tmp_path / "%03d.png")
    with VideoReader(info) as reader:
        whole = [(f.index, f.pts, f.rgb.copy()) for f in reader]
    with VideoReader(info, first=first) as reader:
        got = [(f.index, f.pts, f.rgb.copy()) for f in reader]
        assert reader.skipped_pts == [pts for _, pts, _ in whole[:first]] and reader.frames_read == 12
        assert reader._select == (first if first >= 12 else 0)  # started again without select
        assert reader.resized_message() is not None and reader.resized_message().startswith("frame 6 (80x60)")
    assert len(got) == len(whole[first:])
    assert all(a[:2] == b[:2] and np.array_equal(a[2], b[2]) for a, b in zip(got, whole[first:], strict=True))


def test_container_of() -> None:
    assert container_of("a.MKV") == "matroska"
    assert container_of("a.webm") == "webm"
    assert container_of("a.gif") == "gif" and container_of("a.apng") == "apng"
    with pytest.raises(VideoError, match="unknown video container"):
        container_of("a.png")


def test_sar_from_the_stream_line() -> None:
    from fractions import Fraction

    from classsr_cli.io.video import _sar

    assert _sar("Video: h264 (High), yuv420p(progressive), 72x48 [SAR 32:27 DAR 16:9], 10 fps") == Fraction(32, 27)
    assert _sar("Video: vp9 (Profile 0), yuv420p(tv, progressive), 72x48, SAR 85:72 DAR 85:48, 10 fps") == Fraction(
        85, 72
    )
    # AV1 in Matroska: the codec says square, the container (printed last, and the one that counts) does not
    assert _sar("Video: av1, yuv420p, 288x192 [SAR 1:1 DAR 3:2], SAR 32:27 DAR 16:9, 10 fps") == Fraction(32, 27)
    assert _sar("Video: h264, yuv420p, 64x48 [SAR 1:1 DAR 4:3], 20 fps") is None
    assert _sar("Video: rawvideo, rgb24, 64x48 [SAR 0:1 DAR 0:1]") is None and _sar("Video: h264, 64x48") is None


def test_docs_name_the_audio_fallbacks() -> None:
    """docs/cli.md says which codec audio is re-encoded to where a container cannot hold it, as the code does."""
    from classsr_cli.io.video import _AUDIO_FALLBACK, ANIMATION_MUXERS, CONTAINERS

    page = Path(__file__).resolve().parents[1] / "docs" / "cli"  # spelled so that test_docs sees no citation
    doc = " ".join(page.with_suffix(".md").read_text().split())
    said = re.search(r"it is re-encoded \(([^)]*)\)", doc)
    assert said is not None
    names = {"libopus": "Opus", "libmp3lame": "MP3", "aac": "AAC"}
    for ext, muxer in CONTAINERS.items():
        if muxer in ANIMATION_MUXERS:  # animations hold no audio
            continue
        codec = _AUDIO_FALLBACK[muxer]
        if codec != "aac":
            assert f"{names[codec]} for `{ext}`" in said.group(1), (ext, codec)
    assert said.group(1).endswith("AAC otherwise")


def route_frames(model: torch.nn.Module, frames: torch.Tensor, router: Router) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Route ``(K, n, 3, p, p)`` LR patches (0..255) of K frames; per frame ``(hr (n, 3, sp, sp), classes)``."""
    out = []
    n, s = frames.shape[1], model.cfg.scale  # type: ignore[union-attr]
    with torch.inference_mode():
        for patches in frames:
            router.start(n, patches.device)
            hr = torch.empty(n, 3, patches.shape[2] * s, patches.shape[3] * s)
            classes, _ = router.route(model, patches / 255, torch.arange(n), functools.partial(hr.index_copy_, 0))
            out.append((hr, classes))
    return out


def test_router_reuse_and_hysteresis(tiny_model: torch.nn.Module) -> None:
    grid = plan_grid(48, 64, 32, 28)
    frame = torch.rand(1, 3, 48, 64) * 255
    still = extract_patches(frame.round(), grid)
    moved = still.clone()
    moved[0] += 40  # one patch changes
    patches = torch.stack([still, still, moved.clamp(0, 255)])
    router = Router(Hysteresis(0.2), reuse=Reuse(), batch_size=64)
    out = route_frames(tiny_model, patches, router)
    n = grid.count
    stats = router.stats
    assert stats.reused == n + (n - 1)  # frame 2 all reused, frame 3 all but one
    assert sum(stats.counts) == 3 * n and stats.compared == 2 * n and sum(stats.computed) == 1 + n
    assert torch.equal(out[0][0], out[1][0])
    assert not torch.equal(out[1][0][0], out[2][0][0]) and torch.equal(out[1][0][1:], out[2][0][1:])
    flops = flops_report(tiny_model, stats.counts, 3 * 48 * 64, computed=stats.computed)
    assert flops.used < flops.heavy


def test_reuse_threshold_in_8_bit_levels_sees_16_bit_changes() -> None:
    """Threshold 0 means exactly: one 16-bit level (1/257 of an 8-bit one) is a change; a threshold of 1 keeps
    patches that moved by one 8-bit level and recomputes those that moved by two."""
    x = torch.randint(0, 254, (3, 3, 8, 8)).float() / 255
    index = torch.arange(3)
    for threshold, step, changed in ((0, 1 / 65535, [1]), (0, 1 / 255, [1]), (1, 1 / 255, []), (1, 2 / 255, [1])):
        reuse = Reuse(threshold)
        reuse.store(x, index, torch.zeros(3, 3, 32, 32), torch.zeros(3, dtype=torch.long), 3)
        y = x.clone()
        y[1, 2, 3, 4] += step
        assert reuse.changed(y, index).tolist() == changed, (threshold, step)


class _TieClassifier(torch.nn.Module):
    """Logits near a three-way tie that move with the input's noise, as an unsure classifier's do."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(5.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x[:, c].std(dim=(1, 2)) for c in range(3)], dim=1) * self.gain


def test_hysteresis_keeps_classes_on_noise(tiny_model: torch.nn.Module) -> None:
    """Noisy copies of one frame: argmax flips on the noise, hysteresis holds the classes."""
    grid = plan_grid(96, 96, 32, 28)
    base = torch.full((1, 3, 96, 96), 128.0)
    frames = torch.stack(
        [extract_patches((base + torch.randn_like(base) * 4).round(), grid) for _ in range(8)]
    )
    tiny_model.classifier = _TieClassifier()
    results = {}
    for margin in (0.0, 0.2):
        router = Router(Hysteresis(margin), batch_size=256)
        route_frames(tiny_model, frames, router)
        results[margin] = router.stats
    assert results[0.0].switches == results[0.0].switches_argmax > 0
    assert results[0.2].switches == 0 < results[0.2].switches_argmax
    assert results[0.2].held > 0


# ---------------------------------------------------------------------------------------------- with ffmpeg


@pytest.mark.slow
def test_probe(clips: dict[str, Path]) -> None:
    info = probe(clips["audio"])
    assert (info.width, info.height, info.fps) == (64, 48, 20.0)
    assert [s.codec for s in info.audio] == ["aac"] and info.frames_estimate == 15
    assert probe(clips["rot"]).rotation == 90
    subs = probe(clips["subs"])
    assert len(subs.subtitles) == 1 and subs.duration is not None
    with pytest.raises(InputError, match="no video stream"):
        probe(clips["wav"])
    with pytest.raises(InputError, match="not a readable video"):
        probe(clips["text"])
    with pytest.raises(InputError, match="no such file"):
        probe(clips["text"].with_name("missing.mp4"))
    empty = clips["text"].with_name("empty.mp4")
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.mp4: empty file$"):  # not "moov atom not found"
        probe(empty)


@pytest.mark.slow
def test_cli_mp4_keeps_frames_rate_and_audio(
    clips: dict[str, Path], tiny_model_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "up.mp4"
    result = runner.invoke(app, ["video", str(clips["audio"]), str(out), "--model", str(tiny_model_path), "--json",
                                 "--preset", "ultrafast", "--classmap"])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["frames"] == 15 and summary["output_size"] == [256, 192]
    assert (summary["pix_fmt"], summary["bits"]) == ("yuv420p", 8)
    assert summary["patches"]["total"] == 15 * 6 and summary["flops"]["real"]["used"] > 0
    assert {"fps", "seconds", "input", "output", "temporal"} <= set(summary)
    assert summary["temporal"]["hysteresis"] == 0.1  # an argmax model: the margin applies
    info = probe(out)
    assert (info.width, info.height, info.fps) == (256, 192, 20.0)
    assert frame_times(out) == frame_times(clips["audio"])
    assert info.duration == pytest.approx(probe(clips["audio"]).duration, abs=0.03)
    assert [s.codec for s in info.audio] == ["aac"]
    assert audio_seconds(out) == pytest.approx(audio_seconds(clips["audio"]), abs=1e-3)
    cmap = classmap_path(out)
    assert cmap.exists() and not probe(cmap).audio and len(frame_times(cmap)) == 15
    assert no_partials(tmp_path)
    again = runner.invoke(app, ["video", str(clips["audio"]), str(out), "--model", str(tiny_model_path),
                                "--preset", "ultrafast", "--classmap", "--overwrite", "--threads", "1"])  # fmt: skip
    assert again.exit_code == 0 and again.stdout.split() == [str(out), str(cmap)]  # like upscale: paths on stdout
    assert f"{out}: 15 frames, 64x48 -> 256x192 yuv420p," in again.stderr


@pytest.mark.slow
def test_vfr_timestamps_kept(clips: dict[str, Path], tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    src = frame_times(clips["vfr"])
    assert len(set(np.round(np.diff(src), 3))) > 1  # the source really is variable
    for name in ("up.mp4", "up.mkv"):
        res = upscale_video(tiny_model, clips["vfr"], tmp_path / name, temporal=TemporalOptions(reuse=True))
        assert res.frames == len(src) and res.lost is None
        assert frame_times(tmp_path / name) == pytest.approx(src, abs=1e-3)


@pytest.mark.slow
def test_mkv_audio_subtitles_and_rotation(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    res = upscale_video(tiny_model, clips["subs"], tmp_path / "subs.mp4")
    info = probe(tmp_path / "subs.mp4")
    assert [s.codec for s in info.audio] == ["opus"]  # copied, not re-encoded
    assert [s.codec for s in info.subtitles] == ["mov_text"] and not res.notes
    # Back into Matroska, which cannot hold mov_text: converted to srt (it was dropped).
    res = upscale_video(tiny_model, tmp_path / "subs.mp4", tmp_path / "back.mkv", options=EncodeOptions(preset="ultrafast"))
    assert res.notes == ["subtitles converted to srt: matroska cannot hold mov_text"]
    assert [s.codec for s in probe(tmp_path / "back.mkv").subtitles] == ["subrip"]
    res = upscale_video(tiny_model, clips["subs"], tmp_path / "subs.webm", options=_fast_vp9())
    info = probe(tmp_path / "subs.webm")
    assert [s.codec for s in info.audio] == ["opus"] and [s.codec for s in info.subtitles] == ["webvtt"]
    assert res.frames == 10 and (info.width, info.height) == (256, 192)
    upscale_video(tiny_model, clips["rot"], tmp_path / "rot.mkv")
    rot = probe(tmp_path / "rot.mkv")
    assert rot.rotation == 90 and (rot.width, rot.height) == (256, 192)


@pytest.mark.slow
def test_pixel_aspect_ratio_is_kept(tiny_model_path: Path, tmp_path: Path) -> None:
    """Anamorphic video (DVD's 32:27 pixels, 72x48 shown 16:9): the output and its class map keep the pixel shape,
    so the picture is shown at the source's display aspect; a webm's is as close as its integer display size allows."""
    from fractions import Fraction

    def shape(path: Path) -> tuple[int, int, Fraction]:
        """Stored size and pixel aspect ratio, as ffmpeg reports them (the container's SAR is printed last)."""
        text = subprocess.run([FF, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
        line = next(ln for ln in text.splitlines() if "Video:" in ln)
        w, h = map(int, re.search(r", (\d+)x(\d+)", line).groups())  # type: ignore[union-attr]
        return w, h, Fraction(*map(int, re.findall(r"SAR (\d+):(\d+)", line)[-1]))

    src = tmp_path / "dvd.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=size=72x48:rate=10:duration=0.3", "-vf", "setsar=32/27", "-c:v", "libx264",
       "-pix_fmt", "yuv420p", src)  # fmt: skip
    assert shape(src) == (72, 48, Fraction(32, 27))
    out = tmp_path / "dvd_x4.mp4"
    r = runner.invoke(app, ["video", str(src), str(out), "--model", str(tiny_model_path), "--preset", "ultrafast",
                            "--classmap"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert shape(out) == shape(classmap_path(out)) == (288, 192, Fraction(32, 27))
    r = runner.invoke(app, ["video", str(src), str(tmp_path / "dvd.webm"), "--model", str(tiny_model_path),
                            "-e", "deadline=realtime", "-e", "cpu-used=8"])  # fmt: skip
    assert r.exit_code == 0, r.output
    w, h, sar = shape(tmp_path / "dvd.webm")
    assert float(sar * w / h) == pytest.approx(16 / 9, abs=0.01)


def _fast_vp9():  # type: ignore[no-untyped-def]
    from classsr_cli.io.video import EncodeOptions

    return EncodeOptions(extra=(("deadline", "realtime"), ("cpu-used", "8")))


@pytest.mark.slow
def test_every_frame_bounds_the_kept_heap(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import classsr_cli.video as video

    calls: list[int] = []
    monkeypatch.setattr(video, "bound_freed_memory", lambda: calls.append(1) or False)
    res = upscale_video(tiny_model, clips["static"], tmp_path / "a.mkv")
    assert res.frames == 10 and len(calls) == 10


@pytest.mark.slow
def test_reuse_on_static_clip(clips: dict[str, Path], tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    plain = upscale_video(tiny_model, clips["static"], tmp_path / "a.mkv")
    reused = upscale_video(
        tiny_model, clips["static"], tmp_path / "b.mkv", temporal=TemporalOptions(reuse=True)
    )
    assert plain.reused == 0 and plain.frames == reused.frames == 10
    assert reused.reused == 9 * 6  # every patch after the first frame is exactly unchanged
    assert reused.flops.used < plain.flops.used / 5
    a = [f.rgb.astype(int) for f in VideoReader(probe(tmp_path / "a.mkv")).__enter__()]
    b = [f.rgb.astype(int) for f in VideoReader(probe(tmp_path / "b.mkv")).__enter__()]
    assert len(a) == len(b) == 10 and max(np.abs(x - y).max() for x, y in zip(a, b, strict=True)) <= 1


def test_even_size_crops_what_subsampled_chroma_cannot_hold() -> None:
    assert even_size("yuv420p", 723, 963) == (722, 962)
    assert even_size("nv12", 722, 963) == (722, 962) and even_size("yuv422p10le", 3, 5) == (3, 4)  # 4:2:2: width only
    assert even_size("yuv440p", 3, 5) == (2, 5) and even_size("gbrp10le", 3, 5) == (3, 5)
    assert even_size("yuv444p", 723, 963) == (723, 963) and even_size("rgb24", 723, 963) == (723, 963)


@pytest.mark.slow
def test_an_odd_output_size_loses_one_pixel_in_yuv420p(
    clips: dict[str, Path], tiny_model_path: Path, tmp_path: Path
) -> None:
    """x2.2 of a 64x48 clip is 141x106: in yuv420p (the default) it is written 140x106, with a note; in yuv444p
    whole. The class map is cropped alike."""
    out = tmp_path / "odd.mp4"
    r = runner.invoke(app, ["video", str(clips["audio"]), str(out), "--model", str(tiny_model_path), "-x", "2.2",
                            "--preset", "ultrafast", "--classmap", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["output_size"] == [140, 106]
    assert summary["notes"] == ["output 140x106: the last pixel column of 141x106 cropped, as yuv420p needs even "
                                "sizes (--pix-fmt yuv444p keeps them)"]
    for path in (out, classmap_path(out)):
        info = probe(path)
        assert (info.width, info.height) == (140, 106) and len(frame_times(path)) == 15
    whole = tmp_path / "whole.mkv"
    r = runner.invoke(app, ["video", str(clips["audio"]), str(whole), "--model", str(tiny_model_path), "-x", "2.2",
                            "--preset", "ultrafast", "--pix-fmt", "yuv444p", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["output_size"] == [141, 106] and json.loads(r.stdout)["notes"] == []
    first = next(iter(VideoReader(probe(out)).__enter__())).rgb.astype(int)
    full = next(iter(VideoReader(probe(whole)).__enter__())).rgb.astype(int)
    assert np.abs(first - full[:, :140]).mean() < 3  # the same picture, less its last column (and the codecs' loss)


@pytest.mark.slow
def test_the_default_model_reports_no_hysteresis(clips: dict[str, Path], tmp_path: Path) -> None:
    """The default models decide by predicted error, where a probability margin does not apply: the summary says
    none applied (0) and the routing is the image path's, cells of the frame (as many as `upscale` routes)."""
    from classsr_cli import zoo
    from classsr_cli.pipeline import Upscaler

    model = zoo.load(None, 4, device=torch.device("cpu"), dtype=torch.float32).net
    res = upscale_video(model, clips["static"], tmp_path / "d.mkv", temporal=TemporalOptions(hysteresis=0.3))
    temporal = res.to_dict()["temporal"]
    assert temporal["hysteresis"] == 0.0 and temporal["held"] == 0
    assert res.patches == res.frames * 3 * 2  # 64x48 LR: 3 x 2 cells of 28 (patches of 32 at 28 would be too)
    # --force-branch, as in upscale: every cell through one branch, on the cell engine, and the same pixels with
    # --reuse (which leaves the unchanged cells of this still clip out)
    for reuse in (False, True):
        up = Upscaler(model, force_branch="medium")
        forced = upscale_video(up, clips["static"], tmp_path / f"m{reuse}.mkv", temporal=TemporalOptions(reuse=reuse))
        counts = forced.to_dict()["patches"]
        assert (counts["light"], counts["heavy"], counts["medium"]) == (0, 0, forced.frames * 3 * 2)
        assert (forced.reused > 0) == reuse


@pytest.mark.slow
def test_refusals(clips: dict[str, Path], tiny_model_path: Path, tmp_path: Path) -> None:
    def run(*args: str | Path) -> tuple[int, str]:
        r = runner.invoke(app, ["video", *map(str, args), "--model", str(tiny_model_path)])
        return r.exit_code, r.output

    code, msg = run(clips["text"], tmp_path / "o.mp4")
    assert code == 1 and "not a readable video" in msg and len(msg.strip().splitlines()) == 1
    code, msg = run(clips["wav"], tmp_path / "o.mp4")
    assert code == 1 and "no video stream" in msg
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    code, msg = run(clips["audio"], existing)
    assert code == 1 and "--overwrite" in msg and existing.read_bytes() == b"keep me"
    code, msg = run(clips["audio"], clips["audio"], "--overwrite")  # a usage error, as upscale's (it was exit 1)
    assert code == 2 and "would replace its own input; choose another OUTPUT" in msg
    code, msg = run(clips["audio"], tmp_path / "o.mp4", "--codec", "no-such-codec")  # before any frame: a usage error
    assert code == 2 and "--codec no-such-codec: the bundled ffmpeg has no such encoder" in msg
    assert run(clips["audio"], tmp_path / "h.mp4", "--codec", "h264", "--preset", "ultrafast")[0] == 0  # a codec name
    for out, held in (("o.webm", "VP8, VP9 or AV1"), ("o.gif", "GIF")):  # a container that holds some codecs only
        code, msg = run(clips["audio"], tmp_path / out, "--codec", "libx265")  # said before any frame, not by ffmpeg
        assert (code, msg) == (2, f"error: --codec libx265: a {Path(out).suffix} holds {held} video only; write libx265 "
                                  "into .mkv or .mp4, or leave --codec out\n")
    code, msg = run(clips["audio"], tmp_path / "o.png")
    assert code == 2 and "unknown video container" in msg  # a usage error, as upscale's output suffixes
    code, msg = run(clips["audio"], tmp_path / "o.mp4", "--encoder-opt", "novalue")
    assert code == 2 and "KEY=VALUE" in msg
    assert not (tmp_path / "o.mp4").exists() and no_partials(tmp_path)


@pytest.mark.slow
def test_a_folder_output_gets_the_input_name(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tiny_model_path: Path, tmp_path: Path
) -> None:
    """As with `upscale -o`: an existing folder, or a path ending with /, gets INPUT_STEM_x{scale}.EXT; a new path
    without a suffix is a one-line usage error (it said "unknown video container '(none)'")."""

    def run(*args: str) -> tuple[int, str, str]:
        r = runner.invoke(app, ["video", str(clips["audio"]), *args, "--model", str(tiny_model_path),
                                "--preset", "ultrafast"])  # fmt: skip
        return r.exit_code, r.stdout, r.stderr

    existing = tmp_path / "vd"
    existing.mkdir()
    code, out, msg = run(str(existing), "--classmap")
    assert code == 0, msg
    assert out.split() == [str(existing / "cfr_audio_x4.mp4"), str(existing / "cfr_audio_x4_classmap.mp4")]
    assert probe(existing / "cfr_audio_x4.mp4").width == 256
    code, out, msg = run(f"{tmp_path / 'new'}/", "-x", "2.5")
    assert code == 0, msg
    assert out.split() == [str(tmp_path / "new" / "cfr_audio_x2.5.mp4")]
    code, out, msg = run(str(tmp_path / "bare"))
    assert code == 2 and out == "" and len(msg.strip().splitlines()) == 1, msg
    assert "OUTPUT must be a file path with a container suffix" in msg
    assert f"e.g. {tmp_path / 'bare' / 'cfr_audio_x4.mp4'}" in msg and "(none)" not in msg
    assert not (tmp_path / "bare").exists()
    code, out, msg = run("4")  # `classsr video in.mp4 4`: a scale where the output goes
    assert (code, out, msg) == (2, "", "error: 4: OUTPUT must be a file path (e.g. cfr_audio_x4.mp4); the scale is an "
                                       "option: -x 4\n"), msg
    # The library alike; an input whose suffix classsr does not write gives .mkv (it holds any audio).
    res = upscale_video(tiny_model, clips["audio"], f"{tmp_path / 'lib'}/")
    assert res.output == tmp_path / "lib" / "cfr_audio_x4.mp4" and res.output.exists()
    assert output_path("cam/clip.MOV", existing, 2) == existing / "clip_x2.MOV"
    assert output_path("cam/clip.ts", existing, 3) == existing / "clip_x3.mkv"
    assert output_path("cam/clip.ts", existing / "a.webm", 3) == existing / "a.webm"


def _split_extent(src: Path, out: Path) -> Path:
    """Pillow's AVIF ``src`` with its picture's one ``iloc`` extent cut in two (as some writers store a picture),
    the ``meta`` box 8 bytes longer and the extents' file offsets moved by as much: written to ``out``."""
    data = src.read_bytes()
    at = data.index(b"iloc") - 4
    size = int.from_bytes(data[at : at + 4], "big")
    assert data[at + 8 : at + 14] == bytes([0, 0, 0, 0, 0x44, 0]) and data[at + 14 : at + 16] == b"\0\1", "a layout"
    item, ref, count, offset, length = struct.unpack(">HHHII", data[at + 16 : at + 30])
    assert count == 1 and size == 30
    body = data[at + 8 : at + 16] + struct.pack(">HHH4I", item, ref, 2, offset + 8, length // 2,
                                                offset + 8 + length // 2, length - length // 2)
    meta = data.index(b"meta") - 4
    out.write_bytes(data[:meta] + struct.pack(">I", int.from_bytes(data[meta : meta + 4], "big") + 8)
                    + data[meta + 4 : at] + struct.pack(">I", 8 + len(body)) + b"iloc" + body + data[at + size :])
    return out


def test_parity_with_upscale(
    clips: dict[str, Path], tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from PIL import Image

    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(tiny_model_path, weights / "classsr_fsrcnn_x4.safetensors")  # x4 only, as shipped x3 is not
    monkeypatch.setattr("classsr_cli.zoo.weights_dirs", lambda: [weights])

    def video(*args: str | Path) -> tuple[int, str]:
        r = runner.invoke(app, ["video", *map(str, args)])
        return r.exit_code, r.stderr

    # Scales: what upscale takes, video takes (x4 model, then the downscale), and the same errors.
    r = runner.invoke(app, ["video", str(clips["audio"]), str(tmp_path / "o3.mp4"), "-x", "2.5",
                            "--preset", "ultrafast", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["output_size"] == [160, 120] and probe(tmp_path / "o3.mp4").width == 160
    assert runner.invoke(app, ["upscale", "-x", "17", str(clips["text"])]).exit_code == 2
    code, msg = video(clips["audio"], tmp_path / "o.mp4", "-x", "17")
    assert code == 2 and "scale must be above 1 and at most 16, got 17" in msg and "Usage" not in msg
    # A text file with an image's name is not "an image (image2)"; a real image is named as one.
    fake = tmp_path / "notes.png"
    fake.write_text("this is text\n")
    code, msg = video(fake, tmp_path / "o.mp4")
    assert code == 1 and "not a readable video, nor an image" in msg and "image2" not in msg
    real = tmp_path / "still.png"
    Image.new("RGB", (8, 8)).save(real)
    code, msg = video(real, tmp_path / "o.mp4")
    assert code == 1 and "is a PNG image, not a video; use `classsr upscale`" in msg
    # An icon, which ffmpeg opens as a video of its pictures from its first (mostly the smallest): `upscale` takes
    # its largest.
    Image.new("RGBA", (64, 64), (200, 40, 40, 255)).save(tmp_path / "icon.ico", sizes=[(16, 16), (64, 64)])
    code, msg = video(tmp_path / "icon.ico", tmp_path / "o.mp4")
    assert code == 1 and "is an ICO image, not a video; use `classsr upscale`" in msg, msg
    # Pictures ffmpeg's demuxers make a video of where `upscale` reads none (Microsoft Paint's MSP, a FITS cube, a
    # PDF's JPEG) are named, not upscaled; an MPO (Pillow opens it as a JPEG does) is one `upscale` reads.
    Image.new("1", (16, 16), 1).save(tmp_path / "paint.msp")
    cards = ["SIMPLE  =                    T", "BITPIX  =                    8", "NAXIS   =                    3",
             "NAXIS1  =                    4", "NAXIS2  =                    4", "NAXIS3  =                    3", "END"]
    (tmp_path / "cube.fits").write_bytes("".join(c.ljust(80) for c in cards).ljust(2880).encode() + bytes(2880))
    Image.new("RGB", (16, 16), (200, 90, 30)).save(tmp_path / "page.pdf")
    (tmp_path / "text.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n")
    Image.new("RGBA", (32, 32), (200, 90, 30, 255)).save(tmp_path / "app.icns")
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64), (30, 90, 200)).save(jpeg, "JPEG")
    sos = jpeg.getvalue().index(b"\xff\xda")
    cut = sos + 2 + int.from_bytes(jpeg.getvalue()[sos + 2 : sos + 4], "big")  # a BLP1's JPEG header, then its data
    head, data = jpeg.getvalue()[:cut], jpeg.getvalue()[cut:]
    (tmp_path / "jpeg.blp").write_bytes(b"BLP1" + struct.pack("<6I", 0, 0, 64, 64, 5, 0)  # JPEG, no alpha, 64x64
                                        + struct.pack("<16I", 160 + len(head), *[0] * 15)  # the one mip level's offset
                                        + struct.pack("<16I", len(data), *[0] * 15) + struct.pack("<I", len(head))
                                        + head + data)  # (ffmpeg's MJPEG demuxer finds the JPEG: a one-frame video)
    Image.new("RGB", (16, 16), (200, 90, 30)).save(tmp_path / "pair.mpo", save_all=True,
                                                   append_images=[Image.new("RGB", (16, 16))])
    for name, said in (("paint.msp", "is an MSP image, not a video, nor an image classsr reads"),
                       ("cube.fits", "is a FITS image, not a video, nor an image classsr reads"),
                       ("page.pdf", "is a PDF document, not a video, nor an image classsr reads"),
                       ("text.pdf", "is a PDF document, not a video, nor an image classsr reads"),  # (ffmpeg: none)
                       ("pair.mpo", "is an MPO image, not a video; use `classsr upscale`"),
                       ("app.icns", "is an ICNS image, not a video; use `classsr upscale`"),  # (ffmpeg: invalid data)
                       ("jpeg.blp", "is a BLP image, not a video; use `classsr upscale`")):
        code, msg = video(tmp_path / name, tmp_path / "o.mp4")
        assert code == 1 and f"{name}: {said}" in msg, msg
    # A HEIC or AVIF photo, which ffmpeg opens as a video of one frame (its HEIF container is an mp4's), is named as
    # one too; an animated AVIF is a video.
    from classsr_cli.io.image import readable_formats

    readable_formats()  # pillow-heif's plugin, to save a HEIC
    for name, kind in (("still.heic", "a HEIF"), ("still.avif", "an AVIF")):
        Image.new("RGB", (64, 48), (200, 90, 30)).save(tmp_path / name)
        code, msg = video(tmp_path / name, tmp_path / "o.mp4")
        assert code == 1 and f"is {kind} image, not a video; use `classsr upscale`" in msg, msg
    # One ffmpeg cannot open (its picture in two extents: "Not yet implemented in FFmpeg"), which `upscale` reads.
    code, msg = video(_split_extent(tmp_path / "still.avif", tmp_path / "split.avif"), tmp_path / "o.mp4")
    assert code == 1 and "split.avif: is an AVIF image, not a video; use `classsr upscale`" in msg, msg
    from classsr_cli.io.image import read_image

    assert read_image(tmp_path / "split.avif").pixels.shape == (48, 64, 3)
    frames = [Image.new("RGB", (64, 48), (k * 60, 90, 30)) for k in range(3)]
    frames[0].save(tmp_path / "moving.avif", save_all=True, append_images=frames[1:], duration=100)
    assert probe(tmp_path / "moving.avif").codec == "av1"  # not refused
    # "already exists" worded alike; class maps named alike.
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    code, msg = video(clips["audio"], existing)
    assert msg.strip() == f"error: {existing}: already exists (pass --overwrite to replace it)"
    assert classmap_path(tmp_path / "out.mp4").name == "out_classmap.mp4"
    from classsr_cli.plan import classmap_path as image_classmap

    assert image_classmap(tmp_path / "out.png").name == "out_classmap.png"


@pytest.mark.slow
def test_truncated_input_keeps_what_decodes(
    clips: dict[str, Path], tiny_model_path: Path, tmp_path: Path
) -> None:
    whole = tmp_path / "whole.mkv"
    ff(
        "-f",
        "lavfi",
        "-i",
        f"{TESTSRC}:duration=1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "5",
        whole,
    )
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    out = tmp_path / "out.mp4"
    r = runner.invoke(
        app, ["video", str(cut), str(out), "--model", str(tiny_model_path), "--preset", "ultrafast"]
    )
    assert r.exit_code == 3, r.output
    assert "did not decode is lost" in r.output
    times = frame_times(out)
    assert 0 < len(times) < 20
    # The frames kept, and where the last of them ends (its start + 1/20 s), of the header's 1 s.
    assert f"kept {len(times)} frame(s), up to {times[-1] + 0.05:.2f} s of 1.00 s;" in r.output
    # A damaged header that states less than what decoded is not set against it ("0.30 s of 0.20 s").
    data = bytearray(cut.read_bytes())
    at = data.index(bytes.fromhex("448988"))  # Matroska's Duration: 8-byte float, in ms
    assert struct.unpack(">d", data[at + 3 : at + 11]) == (1000.0,)
    data[at + 3 : at + 11] = struct.pack(">d", 200.0)
    cut.write_bytes(bytes(data))
    assert probe(cut).duration == 0.2
    r = runner.invoke(app, ["video", str(cut), str(out), "--model", str(tiny_model_path), "--preset", "ultrafast",
                            "--overwrite"])  # fmt: skip
    assert r.exit_code == 3, r.output
    assert f"kept {len(times)} frame(s), up to {times[-1] + 0.05:.2f} s;" in r.output


@pytest.mark.slow
def test_interrupt_leaves_no_output(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    def stop(done: int, total: int | None) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upscale_video(
            tiny_model, clips["audio"], tmp_path / "o.mp4", progress=stop, classmap=True
        )
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "o.mp4").write_bytes(b"x")
    with pytest.raises(OutputExistsError):
        upscale_video(tiny_model, clips["audio"], tmp_path / "o.mp4")


# ------------------------------------------------------------------- what the source has that the output keeps


def video_line(path: Path) -> str:
    text = subprocess.run([FF, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    return next(ln for ln in text.splitlines() if "Video:" in ln and "attached pic" not in ln)


@pytest.mark.slow
def test_hdr_colour_tags_and_10_bit_depth(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """A BT.2020 PQ 10-bit source: the output says BT.2020 and PQ (ffmpeg drops -color_primaries/-color_trc for
    RGB input) and stays 10-bit by default; asked for 8 bits, a note says what is lost; 10-bit decodes to the right
    levels."""
    src = tmp_path / "c2020.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=0.4",
       "-vf", "setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc:range=tv",
       "-pix_fmt", "yuv420p10le", "-c:v", "libx264", src)  # fmt: skip
    assert "yuv420p10le(tv, bt2020nc/bt2020/smpte2084" in video_line(src)
    res = upscale_video(tiny_model, src, tmp_path / "o.mp4", options=EncodeOptions(preset="ultrafast"), classmap=True)
    assert "yuv420p10le(tv, bt2020nc/bt2020/smpte2084" in video_line(tmp_path / "o.mp4")
    assert "yuv420p10le(tv, bt2020nc/bt2020/smpte2084" in video_line(tmp_path / "o_classmap.mp4")  # tagged alike
    assert "hevc (Main 10) (hvc1 /" in video_line(tmp_path / "o.mp4")  # HEVC tagged as Apple's players want it
    assert (res.notes, res.pix_fmt, res.bits) == ([], "yuv420p10le", 16)
    res = upscale_video(tiny_model, src, tmp_path / "o8.mp4", options=EncodeOptions(preset="ultrafast", pix_fmt="yuv420p"))
    assert "yuv420p(tv, bt2020nc/bt2020/smpte2084" in video_line(tmp_path / "o8.mp4")
    assert res.notes == ["the source is 10-bit; the output's yuv420p keeps 8 bits per channel (--pix-fmt yuv420p10le "
                         "keeps 10)"] and res.bits == 16
    # PNG frames (classsr's own writer): 16 bits, tagged BT.2020 PQ by their cICP chunk (ffmpeg's encoder tagged
    # none), the record of the upscale beside; the class map's 8-bit frames tagged alike (as its video is); 8-bit
    # BT.709 frames untagged (read as sRGB, as every picture).
    pictures = upscale_video(tiny_model, src, tmp_path / "frames" / "%02d.png", classmap=True)
    assert (pictures.pix_fmt, pictures.frames) == ("rgb48be", 2)
    data = (tmp_path / "frames" / "01.png").read_bytes()
    assert data[24] == 16 and b"cICP\x09\x10\x00\x01" in data and b"classsr\x00" in data  # 16 bits, PQ, the record
    tints = (tmp_path / "frames" / "01_classmap.png").read_bytes()
    assert tints[24] == 8 and b"cICP\x09\x10\x00\x01" in tints and b"classsr\x00" not in tints
    upscale_video(tiny_model, clips_709(tmp_path), tmp_path / "f709" / "%02d.png")
    assert b"cICP" not in (tmp_path / "f709" / "01.png").read_bytes()
    # 8-bit BT.709 stays BT.709 and 8-bit, now with its primaries and transfer too; no note.
    res = upscale_video(tiny_model, clips_709(tmp_path), tmp_path / "o709.mp4", options=EncodeOptions(preset="ultrafast"))
    assert "yuv420p(tv, bt709, progressive)" in video_line(tmp_path / "o709.mp4") and res.notes == []
    assert (res.pix_fmt, res.bits) == ("yuv420p", 8)
    # Grey, white and black levels of a lossless 10-bit clip decode exactly (the default scaler made them darker).
    grey = tmp_path / "grey.mkv"
    ff("-f", "lavfi", "-i", "color=c=0x808080:size=16x16:rate=5:duration=0.2", "-pix_fmt", "yuv420p10le",
       "-c:v", "libx264", "-qp", "0", grey)  # fmt: skip
    with VideoReader(probe(grey)) as reader:
        assert {int(v) for f in reader for v in np.unique(f.rgb)} == {128}


def bt709_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Limited-range BT.709 Y'CbCr (8-bit levels) -> R'G'B' in 8-bit levels, in float, unclipped."""
    kr, kb = 0.2126, 0.0722
    yy, pb, pr = (y - 16) / 219, (u - 128) / 224, (v - 128) / 224
    r, b = yy + 2 * (1 - kr) * pr, yy + 2 * (1 - kb) * pb
    return np.stack([r, (yy - kr * r - kb * b) / (1 - kr - kb), b], -1) * 255


@pytest.mark.slow
def test_8_bit_video_decodes_and_encodes_without_a_colour_bias(tmp_path: Path) -> None:
    """The default swscale conversions were biased: 8-bit BT.709 decoded about a level dark, and RGB -> yuv420p
    rounded chroma down (a flat colour came back 3 levels off). Now: no bias to 0.1 level, a flat colour within the
    one level 8-bit Y'CbCr itself costs."""
    from classsr_cli.config import ClassSRConfig
    from classsr_cli.models import build_model

    # 4:2:0 frames, each of random luma and one chroma pair (so that chroma upsampling is exact).
    rng = np.random.default_rng(0)
    y = rng.integers(40, 200, (8, 48, 64)).astype(np.uint8)
    uv = rng.integers(100, 156, (8, 2)).astype(np.uint8)  # colours inside the RGB cube
    planes = [np.concatenate([y[i].ravel(), np.full(24 * 32, uv[i, 0]), np.full(24 * 32, uv[i, 1])]) for i in range(8)]
    src = tmp_path / "yuv.mkv"
    subprocess.run([FF, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "64x48", "-r", "5",
                    "-i", "-", "-vf", "setparams=colorspace=bt709:range=tv", "-c:v", "ffv1", str(src)],
                   input=np.concatenate(planes).astype(np.uint8).tobytes(), check=True, timeout=120)  # fmt: skip
    with VideoReader(probe(src)) as reader:
        got = np.stack([f.rgb for f in reader]).astype(float)
    want = bt709_rgb(y.astype(float), *(uv[:, k, None, None].astype(float) for k in (0, 1)))
    inside = ((want >= 0) & (want <= 255)).all(-1)
    bias = (got - want)[inside].mean(0)
    assert got.shape == (8, 48, 64, 3) and np.abs(bias).max() < 0.1, bias
    assert np.abs(got - want)[inside].max() < 0.75  # rounded, each pixel (swscale's fixed point: a little past 0.5)

    flat = tmp_path / "flat.mkv"
    ff("-f", "lavfi", "-i", "color=c=0x40a0c0:size=64x48:rate=5:duration=0.4", "-c:v", "ffv1", "-pix_fmt", "bgr0", flat)
    with VideoReader(probe(flat)) as reader:
        colour = next(iter(reader)).rgb[0, 0].astype(float)  # lavfi's colour after its own YUV: (64, 159, 191)
    torch.manual_seed(0)  # exact bicubic branches: a flat colour stays that colour
    model = build_model(ClassSRConfig(family="residual", scale=2, widths=(4, 8, 16), classifier_width=8,
                                      routing="deficit")).eval()
    upscale_video(model, flat, tmp_path / "f.mkv", options=EncodeOptions(codec="ffv1", pix_fmt="yuv420p"))
    with VideoReader(probe(tmp_path / "f.mkv")) as reader:
        got = next(iter(reader)).rgb.reshape(-1, 3).astype(int)
    assert np.abs(got - colour).max() <= 1, np.unique(got, axis=0)
    # MJPEG is full range and BT.601 (JFIF), as its decoders read it.
    upscale_video(model, flat, tmp_path / "mjpeg.avi", options=EncodeOptions(codec="mjpeg", extra=(("q:v", "2"),)))
    assert "yuvj420p(pc, bt470bg" in video_line(tmp_path / "mjpeg.avi")
    with VideoReader(probe(tmp_path / "mjpeg.avi")) as reader:
        assert np.abs(next(iter(reader)).rgb[48, 64].astype(int) - colour).max() <= 3  # lossy, and yuvj's rounding
    # Gray outputs are the BT.709 luma they are tagged with (swscale's own RGB -> gray is BT.601, untagged).
    luma = colour @ [0.2126, 0.7152, 0.0722]  # 141.1; BT.601's would be 134.3
    for codec, pix_fmt in (("ffv1", "gray"), ("ffv1", "gray10le"), ("libx264", "gray")):
        out = tmp_path / f"{codec}_{pix_fmt}.mkv"
        upscale_video(model, flat, out, options=EncodeOptions(codec=codec, crf=0, pix_fmt=pix_fmt))
        assert "(pc, bt709" in video_line(out)
        with VideoReader(probe(out)) as reader:
            got = next(iter(reader)).rgb.astype(float)
        assert np.abs(got - luma).max() <= 1, (pix_fmt, np.unique(got))


@pytest.mark.slow
def test_untagged_video_is_read_as_players_read_it(tmp_path: Path) -> None:
    """A clip without colour tags is BT.709 when it is HD (1280 wide or more than 576 high) and BT.601 when it is
    SD, as players take it (ffmpeg's own default is BT.601 at any size: untagged HD came out 10-22 levels off)."""
    for (w, h, matrix) in ((1280, 720, "bt709"), (320, 240, "bt601")):
        frame = np.zeros((h, w, 3), np.uint8)
        frame[:, : w // 2], frame[:, w // 2 :] = (224, 128, 32), (255, 0, 0)
        src = tmp_path / f"untagged_{h}.mp4"
        subprocess.run([FF, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "5",
                        "-i", "-", "-vf", f"scale=out_color_matrix={matrix}:out_range=tv:flags=accurate_rnd,format=yuv444p",
                        "-c:v", "libx264", "-qp", "0", "-bsf:v",
                        "h264_metadata=matrix_coefficients=2:colour_primaries=2:transfer_characteristics=2", str(src)],
                       input=np.concatenate([frame] * 2).tobytes(), check=True, timeout=120)  # fmt: skip
        assert probe(src).color == "tv, progressive"  # no matrix, primaries or transfer
        with VideoReader(probe(src)) as reader:
            got = next(iter(reader)).rgb.astype(int)
        pair = got[h // 2, [w // 4, 3 * w // 4]]
        assert np.abs(pair - [(224, 128, 32), (255, 0, 0)]).max() <= 1, (matrix, pair)
    # A header that lists BT.709 over a stream whose own tags were cleared (a remux): read as the header says, as
    # players do (ffmpeg would read the stream as BT.601, even at SD size).
    tagged, remuxed = tmp_path / "tagged.mp4", tmp_path / "remuxed.mp4"
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:] = (255, 0, 0)
    subprocess.run([FF, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x48", "-r", "5", "-i", "-",
                    "-vf", "scale=out_color_matrix=bt709:out_range=tv:flags=accurate_rnd,format=yuv444p,"
                    "setparams=colorspace=bt709:range=tv:color_primaries=bt709:color_trc=bt709", "-c:v", "libx264",
                    "-qp", "0", str(tagged)],
                   input=np.concatenate([frame] * 2).tobytes(), check=True, timeout=120)  # fmt: skip
    ff("-i", tagged, "-c", "copy", "-bsf:v",
       "h264_metadata=matrix_coefficients=2:colour_primaries=2:transfer_characteristics=2", remuxed)
    assert "bt709" in (probe(remuxed).color or "")
    with VideoReader(probe(remuxed)) as reader:
        assert np.abs(next(iter(reader)).rgb[24, 32].astype(int) - (255, 0, 0)).max() <= 1


def test_encoder_and_pixel_format_follow_the_source_depth() -> None:
    """Unless asked: 8-bit sources libx264 yuv420p; deeper ones 10 bits in HEVC (H.264 High 10 plays in few players),
    VP9 in .webm; an encoder without yuv420p10le its first format of 10 bits or more; notes name only a deeper
    format the encoder takes; the hint for odd sizes only a 4:4:4 one it takes."""
    from classsr_cli.io.video import full_size_hint, source_notes

    def chosen(muxer: str, source: str, **kw: str) -> tuple[str | None, str | None]:
        o = EncodeOptions(**kw).for_source(muxer, source)
        return o.codec, o.pix_fmt

    assert chosen("mp4", "yuv420p") == ("libx264", "yuv420p")
    assert chosen("mp4", "yuv420p10le") == chosen("matroska", "yuv422p12le") == ("libx265", "yuv420p10le")
    assert chosen("mov", "yuv420p", pix_fmt="yuv422p10le") == ("libx265", "yuv422p10le")  # a deep output asked for
    assert chosen("webm", "yuv420p10le") == ("libvpx-vp9", "yuv420p10le")
    assert chosen("avi", "yuv420p10le") == ("libx264", "yuv420p10le")
    assert chosen("mov", "yuv422p10le", codec="dnxhd") == ("dnxhd", "yuv422p10le")
    assert chosen("mov", "yuv420p", codec="prores_ks") == ("prores_ks", "yuv422p10le")
    assert chosen("webm", "yuv420p10le", codec="libvpx") == ("libvpx", "yuv420p")
    assert chosen("avi", "yuv420p", codec="mjpeg") == ("mjpeg", "yuvj420p")  # limited range is "non-standard" there
    info = VideoInfo(path=Path("x.mkv"), format="matroska,webm", width=64, height=48, video_index=0, codec="hevc",
                     fps=25.0, duration=1.0, start=0.0, pix_fmt="yuv420p12le")
    assert source_notes(info, "yuv420p", "libvpx") == [
        "the source is 12-bit; the output's yuv420p keeps 8 bits per channel (libvpx takes no deeper format)"]
    assert source_notes(info, "yuv420p", "libx265") == [
        "the source is 12-bit; the output's yuv420p keeps 8 bits per channel (--pix-fmt yuv420p10le keeps 10)"]
    assert source_notes(info, "yuv420p10le", "libx265") == [
        "the source is 12-bit; the output's yuv420p10le keeps 10 bits per channel (--pix-fmt yuv420p12le keeps 12)"]
    # Finer chroma than the output keeps is noted for Y'CbCr sources (not for RGB ones, which every 4:2:0 delivery
    # subsamples), with a format of the source's chroma the encoder takes.
    prores = replace(info, pix_fmt="yuv422p10le")
    assert source_notes(prores, "yuv420p10le", "libx265") == [
        "the source's 4:2:2 chroma (yuv422p10le) becomes 4:2:0 in yuv420p10le (--pix-fmt yuv422p10le keeps it)"]
    assert source_notes(prores, "yuv422p10le", "prores_ks") == []
    assert source_notes(replace(info, pix_fmt="gbrp10le"), "yuv420p10le", "libx265") == []
    assert full_size_hint("yuv422p10le", "prores_ks") == " (--pix-fmt yuv444p10le keeps them)"
    assert full_size_hint("yuv420p", "libvpx") == ""


def levels(path: Path, bits: int = 10) -> int:
    """Distinct values of the first decoded frame's green channel at ``bits``."""
    raw = subprocess.run([FF, "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt",
                          "rgb48le", "-"], capture_output=True, check=True, timeout=120).stdout  # fmt: skip
    return len(np.unique(np.frombuffer(raw, "<u2")[1::3] >> (16 - bits)))


@pytest.mark.slow
def test_deep_sources_and_outputs_cross_the_pipes_at_16_bits(tmp_path: Path) -> None:
    """A 10-bit ramp is read at its own levels (not 8-bit ones), and a 10-bit output holds more levels than any
    8-bit pipe could give it (at most 256 a channel), from a 10-bit source and from an 8-bit one alike."""
    from classsr_cli.config import ClassSRConfig
    from classsr_cli.models import build_model

    torch.manual_seed(0)  # a residual model as built: its branches are exact bicubic, which interpolates the ramp
    tiny_model = build_model(ClassSRConfig(family="residual", scale=4, widths=(4, 8, 16), classifier_width=8,
                                           routing="deficit")).eval()
    ramp = tmp_path / "ramp10.mkv"
    x = np.linspace(0, 1023, 128).round().astype("<u2")
    frame = np.broadcast_to(x[None, :, None], (32, 128, 3)) << 6  # 128 levels 8 apart at 10 bits, as rgb48le
    subprocess.run([FF, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", "128x32", "-r", "5",
                    "-i", "-", "-frames:v", "2", "-c:v", "ffv1", "-pix_fmt", "gbrp10le", str(ramp)],
                   input=np.ascontiguousarray(np.stack([frame, frame])).tobytes(), check=True, timeout=120)  # fmt: skip
    with VideoReader(probe(ramp), bits=16) as reader:
        got = next(iter(reader)).rgb
    assert got.dtype == np.uint16 and np.array_equal(got[0, :, 1] >> 6, x)  # 10-bit levels, exactly
    with VideoReader(probe(ramp)) as reader:
        assert len(np.unique(next(iter(reader)).rgb[0, :, 1])) <= 128 and reader.bits == 8
    deep = EncodeOptions(codec="ffv1", pix_fmt="gbrp10le")
    res = upscale_video(tiny_model, ramp, tmp_path / "o10.mkv", options=deep)
    assert res.bits == 16 and levels(tmp_path / "o10.mkv") > 256
    # An 8-bit source into a 10-bit output: computed in float, so the upscale's levels between the 8-bit ones stay.
    ramp8 = tmp_path / "ramp8.mkv"
    ff("-f", "lavfi", "-i", "gradients=size=128x32:rate=5:duration=0.4:c0=black:c1=white:x0=0:y0=0:x1=127:y1=0",
       "-c:v", "ffv1", "-pix_fmt", "bgr0", ramp8)  # fmt: skip
    res = upscale_video(tiny_model, ramp8, tmp_path / "o8to10.mkv", options=deep)
    assert res.bits == 16 and levels(tmp_path / "o8to10.mkv") > 256
    res = upscale_video(tiny_model, ramp8, tmp_path / "o8.mkv", options=EncodeOptions(codec="ffv1", pix_fmt="bgr0"))
    assert res.bits == 8 and levels(tmp_path / "o8.mkv", 8) <= 256
    # An encoder that takes no yuv420p gets the first format it lists (it was refused without --pix-fmt).
    res = upscale_video(tiny_model, ramp8, tmp_path / "o.mov", options=EncodeOptions(codec="prores_ks"))
    assert (res.pix_fmt, res.bits) == ("yuv422p10le", 16) and "yuv422p10le" in video_line(tmp_path / "o.mov")


def side_data(path: Path) -> str:
    """showinfo's side data lines of the first frame."""
    text = subprocess.run([FF, "-hide_banner", "-i", str(path), "-frames:v", "1", "-vf", "showinfo", "-f", "null", "-"],
                          capture_output=True, text=True, timeout=120).stderr  # fmt: skip
    return "\n".join(ln for ln in text.splitlines() if "side data" in ln)


@pytest.mark.slow
def test_hdr10_metadata_is_kept_by_hevc_and_noted_otherwise(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """An HDR10 source's mastering display and light levels reach a libx265 output (merged with the user's own
    x265-params); other encoders write none, and a note says so with the values."""
    src = tmp_path / "hdr10.mp4"
    master = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=0.4", "-vf",
       "setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc", "-pix_fmt", "yuv420p10le",
       "-c:v", "libx265", "-x265-params", f"log-level=error:master-display={master}:max-cll=1000,400", src)  # fmt: skip
    info = probe(src)
    assert info.hdr10 is not None and info.hdr10.x265_params() == [f"master-display={master}", "max-cll=1000,400"]
    fast = EncodeOptions(preset="ultrafast", extra=(("x265-params", "log-level=error"),))
    assert upscale_video(tiny_model, src, tmp_path / "o.mkv", options=fast).notes == []
    kept = side_data(tmp_path / "o.mkv")
    assert "max_luminance=1000.000000" in kept and "MaxCLL=1000, MaxFALL=400" in kept
    assert probe(tmp_path / "o.mkv").hdr10 == info.hdr10
    assert upscale_video(tiny_model, src, tmp_path / "o.webm", options=EncodeOptions()).notes == [
        "the source's HDR10 metadata (mastering display 1000 cd/m², MaxCLL 1000, MaxFALL 400) is not kept: "
        "libvpx-vp9 writes none here (libx265 into .mp4, .mov or .mkv does)"]
    assert probe(clips_709(tmp_path)).hdr10 is None  # SDR: no frame decoded to look


def clips_709(tmp_path: Path) -> Path:
    src = tmp_path / "c709.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=0.4", "-vf",
       "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv",
       "-pix_fmt", "yuv420p", "-c:v", "libx264", src)  # fmt: skip
    return src


def test_an_interlaced_source_is_deinterlaced_before_it_is_upscaled(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """A bar moving across an interlaced source combs its frames (alternate rows from two moments); deinterlaced
    (bwdif) before the upscale, the output has no comb, a frame for each frame at the same times; with
    --no-deinterlace the comb is upscaled. ffmpeg's "(tv, bottom coded first (swapped))" is read whole (its nested
    parenthesis hid the pixel format and the field order). A resumable run records it, so that a run continued
    with --no-deinterlace is refused naming it."""
    from classsr_cli.video import resume_folder

    def field(t: int) -> np.ndarray:
        img = np.full((48, 64, 3), 60, np.uint8)
        img[:, 8 + 6 * t : 16 + 6 * t] = 230
        return img

    frames = []
    for k in range(8):
        frame = field(2 * k)
        frame[1::2] = field(2 * k + 1)[1::2]
        frames.append(frame)
    src = tmp_path / "bar.mkv"
    subprocess.run([FF, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x48", "-r", "25", "-i", "-",
                    "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", "-flags", "+ildct+ilme", "-x264opts", "tff=1",
                    str(src)], input=np.stack(frames).tobytes(), check=True)  # fmt: skip
    info = probe(src)
    assert info.pix_fmt == "yuv444p" and info.field_order is not None and "coded first" in info.field_order

    def comb(path: Path) -> float:  # alternate-row energy, at the source's scale
        raw = subprocess.run([FF, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                             capture_output=True, check=True).stdout  # fmt: skip
        f = np.frombuffer(raw, np.uint8).reshape(-1, 192, 256).astype(float).reshape(-1, 48, 4, 64, 4).mean(axis=(2, 4))
        return float(np.abs(f[:, 1:-1] - (f[:, :-2] + f[:, 2:]) / 2).mean())

    from classsr_cli import zoo

    shipped = zoo.load("classsr_residual_x4", 4).net  # a trained model keeps the comb it is given
    exact = EncodeOptions(codec="ffv1", pix_fmt="yuv444p")
    smooth = upscale_video(shipped, src, tmp_path / "smooth.mkv", options=exact)
    combed = upscale_video(shipped, src, tmp_path / "combed.mkv", options=exact, deinterlace=False)
    assert smooth.frames == combed.frames == 8
    assert comb(tmp_path / "smooth.mkv") < 1 < 10 < comb(tmp_path / "combed.mkv")
    assert frame_times(tmp_path / "smooth.mkv") == frame_times(tmp_path / "combed.mkv")
    out = tmp_path / "r.mkv"
    with pytest.raises(KeyboardInterrupt):
        upscale_video(tiny_model, src, out, options=exact, resume=True, chunk_frames=2, progress=stop_after(4))
    assert json.loads((resume_folder(out) / "state.json").read_text())["recipe"]["deinterlaced"] is True
    with pytest.raises(ConfigError, match=r"other settings \(--no-deinterlace\)"):
        upscale_video(tiny_model, src, out, options=exact, resume=True, chunk_frames=2, deinterlace=False)


@pytest.mark.slow
def test_alpha_and_interlacing_are_noted(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    alpha, fields = tmp_path / "alpha.mov", tmp_path / "fields.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=0.4", "-vf", "format=argb", "-c:v", "qtrle", alpha)
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=0.4", "-vf", "setfield=tff",
       "-flags", "+ildct+ilme", "-c:v", "libx264", "-pix_fmt", "yuv420p", fields)  # fmt: skip
    fast = EncodeOptions(preset="ultrafast")
    assert upscale_video(tiny_model, alpha, tmp_path / "a.mp4", options=fast).notes == [
        "the source's alpha channel (argb) is not kept (libx264 keeps none here; --codec prores_ks in .mov or .mkv, "
        "or a .webm, .gif, .webp or .apng output keeps it)"
    ]
    assert upscale_video(tiny_model, fields, tmp_path / "f.mp4", options=fast).notes == [
        "the source is interlaced (top first): deinterlaced (bwdif, a frame for each frame) before it is upscaled; "
        "--no-deinterlace upscales its fields together as frames"
    ]
    assert upscale_video(tiny_model, fields, tmp_path / "f.mp4", options=fast, overwrite=True, deinterlace=False).notes == [
        "the source is interlaced (top first); its fields are upscaled together as frames (--no-deinterlace)"
    ]
    # A GIF decodes as bgra whether or not it has transparency: an opaque one has none to lose.
    gif = tmp_path / "opaque.gif"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=0.4", gif)
    assert not probe(gif).alpha and probe(gif).pix_fmt == "bgra"
    assert upscale_video(tiny_model, gif, tmp_path / "g.mkv", options=fast).notes == []


def test_a_pixel_format_that_keeps_transparency_is_chosen_where_the_encoder_has_one() -> None:
    """A transparent source: VP9 and WebP yuva420p (8 bits: VP9's deeper alpha is experimental), ProRes 4444 in 10
    bits, APNG rgba (rgba64be for a deep source), the GIF's palette; H.264 and HEVC none (players read no alpha
    there); an opaque source, or a --pix-fmt asked for, as before."""

    def chosen(muxer: str, source: str, alpha: bool = True, **kw: str) -> str | None:
        return EncodeOptions(**kw).for_source(muxer, source, alpha=alpha).pix_fmt

    assert chosen("webm", "bgra") == chosen("webp", "argb") == chosen("webm", "yuva444p12le") == "yuva420p"
    assert chosen("mov", "yuva444p12le", codec="prores_ks") == chosen("mov", "argb", codec="prores_ks") == "yuva444p10le"
    assert chosen("apng", "rgba") == "rgba" and chosen("apng", "rgba64be") == "rgba64be" and chosen("gif", "bgra") == "pal8"
    assert chosen("mp4", "argb") == "yuv420p" and chosen("mp4", "yuva444p12le") == "yuv420p10le"
    assert chosen("webm", "bgra", alpha=False) == "yuv420p" and chosen("webm", "bgra", pix_fmt="yuv444p") == "yuv444p"


def test_frames_larger_than_a_gif_or_webp_holds_are_refused_before_the_upscale(
    tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    """A GIF's sides are 16 bits and a WebP's 14: larger frames are refused in one line before the first frame is
    upscaled (the encoder refused them after it), and nothing is written."""
    from PIL import Image

    src = tmp_path / "tall.gif"
    frames = [Image.new("RGB", (2, 16400), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100)
    for out, name, side in ((tmp_path / "o.gif", "GIF", 65535), (tmp_path / "o.webp", "WebP", 16383)):
        with pytest.raises(ConfigError, match=rf"o\.{out.suffix[1:]}: \d+x\d+ frames are more than {name} holds \({side} "):
            upscale_video(tiny_model, src, out, options=EncodeOptions())
        assert not list(tmp_path.glob("*o.*"))


def _apng(path: Path, canvas: tuple[int, int], frames: list[tuple[tuple[int, int, int, int], int, int, tuple[int, ...]]],
          *, colour: int = 2, depth: int = 8, extra: bytes = b"") -> Path:
    """An APNG of ``canvas`` (width, height) in PNG colour type ``colour`` (0 gray, 2 RGB, 6 RGBA) at ``depth`` bits,
    ``extra`` chunks (a ``tRNS``) before its frames: each frame a box (left, top, width, height) of one colour (its
    samples), its dispose op (0 kept, 1 cleared, 2 the canvas before it put back) and blend op (0 source, 1 over), a
    tenth of a second. Written by hand: Pillow's writer makes every frame the canvas's size."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">2I5B", *canvas, depth, colour, 0, 0, 0)) + extra
    png += chunk(b"acTL", struct.pack(">2I", len(frames), 0))
    sequence = 0
    for n, ((x, y, w, h), dispose, blend, samples) in enumerate(frames):
        png += chunk(b"fcTL", struct.pack(">5I2H2B", sequence, w, h, x, y, 1, 10, dispose, blend))
        pixel = b"".join(v.to_bytes(depth // 8, "big") for v in samples)
        pixels = zlib.compress((b"\x00" + pixel * w) * h)
        png += chunk(b"IDAT", pixels) if n == 0 else chunk(b"fdAT", struct.pack(">I", sequence + 1) + pixels)
        sequence += 1 if n == 0 else 2
    path.write_bytes(png + chunk(b"IEND", b""))
    return path


def test_an_apng_whose_frames_ffmpeg_does_not_blend_is_said_so(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """A 16-bit APNG whose second frame blends over the first: ffmpeg's decoder gives the first frame and says it
    does not implement the rest ("patches welcome"); the run keeps what decoded and says why, not "truncated or
    damaged file"."""
    red = (65535, 0, 0, 65535)  # opaque red, 16 bits a sample
    _apng(tmp_path / "deep.png", (4, 4), [((0, 0, 4, 4), 0, 0, red), ((0, 0, 4, 4), 0, 1, red)], colour=6, depth=16)
    res = upscale_video(tiny_model, tmp_path / "deep.png", tmp_path / "o.apng", options=EncodeOptions())
    assert res.lost is not None and res.lost.startswith(
        "the decoder failed (the bundled ffmpeg's APNG decoder does not blend this file's frames over the one before")
    assert res.frames == 1 and (tmp_path / "o.apng").exists()


def test_an_apng_of_one_or_two_frames_is_timed_by_them_not_by_ffmpegs_time_base(tiny_model: torch.nn.Module,
                                                                                tmp_path: Path) -> None:
    """ffmpeg gives an APNG of one or two frames no rate but its time base's (100,000 frames/s), which a note into an
    animation repeated ("the source runs at 1e+05 frames/s ..."): the probe takes its frames' tenths of a second."""
    frame = ((0, 0, 16, 16), 0, 0, (200, 90, 40))
    for n in (1, 2):
        src = _apng(tmp_path / f"{n}.png", (16, 16), [frame] * n)
        assert probe(src).fps == pytest.approx(10)
        res = upscale_video(tiny_model, src, tmp_path / f"{n}.gif", options=EncodeOptions())
        assert res.frames == n and not [note for note in res.notes if "frames/s" in note], res.notes


def test_transparency_is_kept_where_the_output_holds_it(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """A GIF sticker (a shape on a clear ground) keeps its transparency: an APNG's frames are those `upscale` makes
    of each frame and its alpha (one engine), a GIF's clear pixels are the APNG's under half opacity, a WebM's alpha
    (VP9) reads back with them; an .mp4 (H.264) cannot, and says so; --resume into VP9, which would lose it, is
    refused before anything is written."""
    from PIL import Image, ImageDraw, ImageSequence

    from classsr_cli.pipeline import Upscaler

    frames = []
    for i in range(3):
        im = Image.new("RGBA", (48, 40), (0, 0, 0, 0))
        ImageDraw.Draw(im).ellipse((4 + 4 * i, 6, 28 + 4 * i, 34), fill=(230, 40, 40, 255))
        frames.append(im)
    src = tmp_path / "sticker.gif"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100, loop=0, disposal=2)
    assert probe(src).alpha
    fast = EncodeOptions(preset="ultrafast")
    up = Upscaler(tiny_model)
    res = upscale_video(up, src, tmp_path / "o.apng", options=fast)
    assert res.pix_fmt == "rgba" and res.to_dict()["alpha"] is True and not res.notes
    with Image.open(src) as im:
        first = np.asarray(im.convert("RGBA"))
    want = up.upscale_array(np.ascontiguousarray(first[:, :, :3]), np.ascontiguousarray(first[:, :, 3]))
    with Image.open(tmp_path / "o.apng") as im:
        got = np.asarray(next(iter(ImageSequence.Iterator(im))).convert("RGBA"))
    assert want.alpha is not None and np.array_equal(got[:, :, 3], want.alpha)
    opaque = want.alpha == 255
    assert 0.2 < opaque.mean() < 0.5 and np.array_equal(got[:, :, :3][opaque], want.pixels[opaque])
    assert upscale_video(up, src, tmp_path / "o.gif", options=fast).pix_fmt == "pal8"
    with Image.open(tmp_path / "o.gif") as im:
        clear = np.asarray(im.convert("RGBA"))[:, :, 3] == 0
    assert np.array_equal(clear, want.alpha < 128)
    assert upscale_video(up, src, tmp_path / "o.webm", options=fast).pix_fmt == "yuva420p"
    rgba = subprocess.run([FF, "-v", "error", "-c:v", "libvpx-vp9", "-i", str(tmp_path / "o.webm"), "-frames:v", "1",
                           "-f", "rawvideo", "-pix_fmt", "rgba", "-"], capture_output=True, check=True).stdout  # fmt: skip
    alpha = np.frombuffer(rgba, np.uint8).reshape(*want.alpha.shape, 4)[:, :, 3]
    assert np.mean((alpha < 128) == (want.alpha < 128)) > 0.99
    # That WebM as a source: its alpha (beside the frames, which ffmpeg's own VP9 decoder drops) is read with libvpx.
    webm = probe(tmp_path / "o.webm")
    assert (webm.alpha, webm.pix_fmt, webm.decoder) == (True, "yuva420p", "libvpx-vp9")
    upscale_video(up, tmp_path / "o.webm", tmp_path / "again.apng", options=fast)
    with Image.open(tmp_path / "again.apng") as im:
        again = np.asarray(next(iter(ImageSequence.Iterator(im))).convert("RGBA"))[:, :, 3]
    assert again.shape == (want.alpha.shape[0] * 4, want.alpha.shape[1] * 4)
    assert abs(np.mean(again < 128) - np.mean(want.alpha < 128)) < 0.01
    res = upscale_video(up, src, tmp_path / "o.mp4", options=fast)
    assert res.to_dict()["alpha"] is False
    assert [n for n in res.notes if n.startswith("the source's alpha channel (bgra) is not kept (libx264 keeps none")]
    with pytest.raises(ConfigError, match=r"--resume cannot keep the source's transparency in VP9"):
        upscale_video(up, src, tmp_path / "r.webm", options=fast, resume=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(("r.", ".r."))]
    # ProRes 4444 (decoded at 12 bits): frames and alpha cross the pipes at 16 bits, its transparency kept, resumed too.
    prores = tmp_path / "sticker.mov"
    ff("-stream_loop", "2", "-i", src, "-c:v", "prores_ks", "-profile:v", "4444", "-pix_fmt", "yuva444p10le", prores)
    for name, kw in (("one", {}), ("chunked", {"resume": True, "chunk_frames": 3})):
        res = upscale_video(up, prores, tmp_path / f"{name}.mov", options=EncodeOptions(codec="prores_ks"), **kw)
        assert (res.pix_fmt, res.bits, res.frames) == ("yuva444p10le", 16, 9) and not [n for n in res.notes if "alpha" in n]
        rgba = subprocess.run([FF, "-v", "error", "-i", str(tmp_path / f"{name}.mov"), "-frames:v", "1", "-f", "rawvideo",
                               "-pix_fmt", "rgba", "-"], capture_output=True, check=True).stdout  # fmt: skip
        alpha = np.frombuffer(rgba, np.uint8).reshape(*want.alpha.shape, 4)[:, :, 3]
        assert np.mean((alpha < 128) == (want.alpha < 128)) > 0.99, name


def test_a_video_named_with_a_percent_d_is_written_under_that_name(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    """Only a pattern of pictures (out/%05d.png) is an image sequence: a video or animation whose name holds "%d"
    (promo_100%done.mp4) was written, then looked for as numbered frames and lost, exit 0, a hidden partial file
    left beside it; it is that one file, resumed runs too."""
    from PIL import Image

    src = tmp_path / "c.mkv"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=0.4", "-c:v", "ffv1", src)
    fast = EncodeOptions(preset="ultrafast")
    for name, kw in (("promo_100%done.mp4", {}), ("o_%03d.webp", {}), ("r_%d.mkv", {"resume": True, "chunk_frames": 1})):
        res = upscale_video(tiny_model, src, tmp_path / name, options=fast, **kw)
        assert res.frames == 2 and (tmp_path / name).is_file(), name
        if name.endswith(".webp"):  # (ffmpeg's WebP decoder reads no animation)
            with Image.open(tmp_path / name) as im:
                assert im.n_frames == 2
        else:
            assert len(frame_times(tmp_path / name)) == 2, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mkv", "o_%03d.webp", "promo_100%done.mp4", "r_%d.mkv"]


def test_an_opaque_alpha_read_at_16_bits_is_opaque(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    """swscale gives a 10-bit source's opaque alpha (1023) at 16 bits as 65472 and an 8-bit one's (255) as 65280: the
    levels are stretched, opaque 65535 (a 16-bit PNG sequence of a 10-bit source with alpha was everywhere a little
    transparent, and a fully opaque one kept an alpha channel)."""
    rgba = np.zeros((24, 48, 4), "<u2")  # (larger than the small pictures converted by way of 4:4:4)
    rgba[..., :3] = 40000
    rgba[:, 24:, 3] = 65535  # the right half opaque, the left half clear
    src = tmp_path / "a10.mkv"
    subprocess.run([FF, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgba64le", "-s", "48x24", "-r", "5", "-i", "-",
                    "-frames:v", "2", "-c:v", "ffv1", "-pix_fmt", "yuva444p10le", str(src)],
                   input=np.concatenate([rgba, rgba]).tobytes(), check=True, timeout=60)  # fmt: skip
    for name, pix_fmt in (("a10.mkv", "yuva444p10le"), ("a8.mkv", "yuva420p")):
        if name == "a8.mkv":
            ff("-i", src, "-c:v", "ffv1", "-pix_fmt", pix_fmt, tmp_path / name)
        with VideoReader(probe(tmp_path / name), bits=16, alpha=True) as reader:
            alpha = next(iter(reader)).alpha
        assert alpha is not None and set(np.unique(alpha)) == {0, 65535}, name
    (tmp_path / "seq").mkdir()
    upscale_video(tiny_model, src, tmp_path / "seq" / "o_%03d.png", options=EncodeOptions(codec="png",
                                                                                          pix_fmt="rgba64be"))
    from classsr_cli.io.image import read_image

    out = read_image(tmp_path / "seq" / "o_001.png")
    assert out.alpha is not None and out.alpha.dtype == np.uint16
    assert (out.alpha[:, 112:] == 65535).all() and (out.alpha[:, :80] == 0).all()
    # Into a 10-bit output with alpha (swscale takes 16-bit alpha as levels shifted up): a level comes out as it was
    rgba[..., 3] = 700 * 64  # (700 of 1023, shifted up as rgba64le holds a 10-bit level)
    flat = tmp_path / "flat.mkv"
    subprocess.run([FF, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgba64le", "-s", "48x24", "-r", "5", "-i", "-",
                    "-frames:v", "2", "-c:v", "ffv1", "-pix_fmt", "yuva444p10le", str(flat)],
                   input=np.concatenate([rgba, rgba]).tobytes(), check=True, timeout=60)  # fmt: skip
    upscale_video(tiny_model, flat, tmp_path / "o10.mkv", options=EncodeOptions(codec="ffv1", pix_fmt="yuva444p10le"))
    planes = subprocess.run([FF, "-v", "error", "-i", str(tmp_path / "o10.mkv"), "-frames:v", "1", "-f", "rawvideo",
                             "-pix_fmt", "yuva444p10le", "-"], capture_output=True, check=True).stdout  # fmt: skip
    assert set(np.unique(np.frombuffer(planes, "<u2").reshape(4, 96, 192)[3])) == {700}


def _luma_clip(path: Path, rng: str, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A lossless 10-bit 4:4:4 clip of range ``rng`` holding every luma code (chroma neutral), ``width`` codes a row:
    its luma codes and their ideal 16-bit levels."""
    black, white = (64, 940) if rng == "tv" else (0, 1023)
    luma = np.full(-(-(white - black + 1) // width) * width, white)
    luma[: white - black + 1] = np.arange(black, white + 1)
    luma = luma.reshape(-1, width)
    planes = np.concatenate([luma.ravel(), np.full(2 * luma.size, 512)]).astype("<u2")
    subprocess.run([FF, "-v", "error", "-f", "rawvideo", "-pix_fmt", "yuv444p10le", "-s", f"{width}x{luma.shape[0]}",
                    "-r", "5", "-i", "-", "-vf", f"setparams=range={rng}:colorspace=bt709", "-c:v", "ffv1",
                    "-color_range", rng, str(path)], input=planes.tobytes(), check=True, timeout=60)  # fmt: skip
    return luma, (luma - black) / (white - black) * 65535


def _written_codes(path: Path, rgb: np.ndarray, source: VideoInfo, time_base: Fraction) -> np.ndarray:
    """16-bit ``rgb`` written by :class:`VideoWriter` into lossless 10-bit 4:4:4 (limited range): its Y', Cb, Cr."""
    writer = VideoWriter(path, rgb.shape[1], rgb.shape[0], time_base=time_base, bits=16, source=source,
                         options=EncodeOptions(codec="ffv1", pix_fmt="yuv444p10le"))
    writer.write(np.ascontiguousarray(rgb), 0)
    writer.close()
    got = subprocess.run([FF, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "yuv444p10le", "-"],
                         capture_output=True, check=True, timeout=60).stdout  # fmt: skip
    return np.frombuffer(got, "<u2").reshape(3, *rgb.shape[:2]).astype(int)


def test_16_bit_frames_hold_white_at_65535(tmp_path: Path) -> None:
    """swscale gives a 10-bit limited-range picture's white in 16-bit RGB as 65283 (every level in proportion) and a
    full-range one's levels shifted up (1023 as 65472), and codes about 65280 as white: frames read at 16 bits are
    stretched to 0-65535 (a 16-bit PNG sequence of a 10-bit video was 0.4 % dark), and 16-bit frames written are
    brought to where swscale codes white (a full-range source came out up to 3 codes bright; a 16-bit picture's
    white was coded 943, above white). Both fail on the code before."""
    for rng, width in (("tv", 32), ("pc", 32), ("tv", 64)):  # (64: 14 rows, a small picture, by way of 4:4:4)
        src = tmp_path / f"{rng}{width}.mkv"
        luma, ideal = _luma_clip(src, rng, width)
        with VideoReader(probe(src), bits=16) as reader:
            rgb, time_base = next(iter(reader)).rgb, reader.time_base
        assert rgb[-1, -1].tolist() == [65535] * 3, (rng, width)
        assert np.abs(rgb.astype(float) - ideal[..., None]).max() < 2, (rng, width)
        if width == 32:  # written back into limited range: a limited-range source's codes as they were, gray
            codes = _written_codes(tmp_path / f"back{rng}.mkv", rgb, probe(src), time_base)
            assert (codes[0] == luma).all() if rng == "tv" else np.abs(codes[0] - (64 + ideal * 876 / 65535)).max() < 1
            assert set(np.unique(codes[1:])) == {512}
    ramp = np.repeat(np.arange(65536, dtype=np.uint16).reshape(256, 256, 1), 3, axis=2)  # every 16-bit level
    (tmp_path / "seq").mkdir()  # 8-bit RGB frames read at 16 bits (for a deep output) alike: white 255 was 65283
    for k in range(2):
        ff("-f", "lavfi", "-i", "color=c=white:size=24x24", "-frames:v", "1", tmp_path / "seq" / f"f_{k:03d}.png")
    with VideoReader(probe(tmp_path / "seq" / "f_%03d.png"), bits=16) as reader:
        assert set(np.unique(next(iter(reader)).rgb)) == {65535}
    codes = _written_codes(tmp_path / "ramp.mkv", ramp, probe(src), time_base)[0]
    assert np.abs(codes - (64 + ramp[..., 0] / 65535 * 876)).max() < 1  # (before: 4 codes over, white from 65242)
    assert codes.max() == 940 and codes.ravel()[65480] < 940 <= codes.ravel()[65510]


def test_16_bit_frames_into_shallower_rgb_keep_their_levels(tmp_path: Path) -> None:
    """swscale takes 16-bit RGB into 8-bit RGB with white at 65283 (and into 10-bit with levels shifted): 16-bit
    frames written into a GIF, or RGB of fewer bits, are brought to that white first; a 10-bit source's 65000 came
    out 254 of 255, not 253 (fails on the code before)."""
    levels = [1000, 16384, 32768, 49152, 60000, 65000, 65535]
    rgb = np.repeat(np.repeat(np.array(levels, np.uint16), 16)[None, :, None], 16, axis=0).repeat(3, axis=2)
    for pix_fmt, top in (("bgr0", 255), ("gbrp10le", 1023)):
        out = tmp_path / f"{pix_fmt}.mkv"
        writer = VideoWriter(out, rgb.shape[1], rgb.shape[0], time_base=Fraction(1, 5), bits=16,
                             options=EncodeOptions(codec="ffv1", pix_fmt=pix_fmt))
        writer.write(np.ascontiguousarray(rgb), 0)
        writer.close()
        got = subprocess.run([FF, "-v", "error", "-i", str(out), "-f", "rawvideo", "-"], capture_output=True,
                             check=True, timeout=60).stdout  # (as coded: bgr0 packed, gbrp10le planar, G first)
        n = rgb.shape[0] * rgb.shape[1]
        green = (np.frombuffer(got, "u1")[1::4] if top == 255 else np.frombuffer(got, "<u2")[:n]).reshape(rgb.shape[:2])
        means = [green[:, 16 * k : 16 * k + 16].mean() for k in range(len(levels))]  # (dither averaged)
        assert np.abs(np.array(means) - np.array(levels) * top / 65535).max() < 0.6, (pix_fmt, means)


def test_the_white_probe_works_with_an_ffmpeg_whose_scale_filter_takes_no_dither_option(tmp_path: Path) -> None:
    """The probe behind :func:`decoded_white` makes its white picture without dither (``sws_dither``); an ffmpeg that
    does not take that option gives the same white, from the median of a dithered one."""
    from classsr_cli.io.video import _decoded_white

    wrapper = tmp_path / "ffmpeg"
    wrapper.write_text(f'#!/bin/sh\ncase "$*" in *sws_dither*) echo "Option not found" >&2; exit 1;; esac\n'
                       f'exec "{FF}" "$@"\n')  # fmt: skip
    wrapper.chmod(0o755)
    for pix_fmt in ("yuv420p10le", "yuv420p", "rgb24"):
        ours = _decoded_white(FF, pix_fmt, False, 32)
        assert ours == 65283 and abs(_decoded_white(str(wrapper), pix_fmt, False, 32) - ours) <= 1, pix_fmt


def test_noisy_footage_gets_the_note_a_noisy_picture_gets(
    tiny_model: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first frame's noise is estimated as a picture's: noisy footage upscaled by a model not trained on noise
    gets one note naming the installed noisy model, from a lower estimate than a picture's where its codec smooths
    noise; clean footage, a GIF, or the noisy model itself, none; the noisy model on clean lossless footage, the note
    that the default keeps its detail; lightly grainy lossless footage, the JPEG model's note."""
    from classsr_cli.checkpoint import save_checkpoint
    from classsr_cli.pipeline import Upscaler

    weights = tmp_path / "weights"
    weights.mkdir()
    clean = save_checkpoint(tiny_model, weights / "clean_x4.safetensors", provenance={"recipe": {"jpeg_quality": []}})
    noisy = save_checkpoint(tiny_model, weights / "classsr_residual_noisy_x4.safetensors",
                            provenance={"recipe": {"jpeg_quality": [30, 95], "noise_sigma": [1, 12]}})
    monkeypatch.setenv("CLASSSR_WEIGHTS", str(weights))
    grain, plain = tmp_path / "grain.mkv", tmp_path / "plain.mkv"
    ff("-f", "lavfi", "-i", "gradients=size=64x48:rate=5:duration=0.4:speed=0", "-vf", "format=yuv420p,noise=alls=24:allf=t",
       "-c:v", "ffv1", grain)  # fmt: skip
    ff("-f", "lavfi", "-i", "gradients=size=64x48:rate=5:duration=0.4:speed=0", "-vf", "format=yuv420p", "-c:v", "ffv1",
       plain)  # fmt: skip
    said = "looks noisy: this model sharpens noise as detail; --model classsr_residual_noisy_x4 is trained to leave it out"

    def notes(model: Path, src: Path) -> list[str]:
        out = tmp_path / f"{model.stem}_{src.stem}.mkv"
        return upscale_video(Upscaler(tiny_model, model_path=model), src, out, options=EncodeOptions(codec="ffv1"),
                             overwrite=True).notes

    assert notes(clean, grain) == [said]
    assert notes(clean, plain) == [] and notes(noisy, grain) == []
    # Fainter grain through H.264 at CRF 23, which smooths much of it: the first frame reads below a lossy video's
    # threshold (3; 1 before the sixty-ninth pass, which cost on clean footage: docs/results.md, "`--model auto`"),
    # and from its light-noise threshold (1.5): the JPEG model's note, not the noisy one's. (Seeded noise on a fixed
    # ramp, one encoder thread: ffmpeg's own noise and gradients differ from run to run.)
    from classsr_cli.degrade import add_noise

    y, x = np.mgrid[0:96, 0:128]
    ramp = np.stack([40 + x, 60 + y, 200 - x // 2], axis=2).clip(0, 255).astype(np.uint8)
    faint, smooth, coarse = tmp_path / "faint.mp4", tmp_path / "smooth.mp4", tmp_path / "coarse.mp4"
    for path, sigma, crf in ((faint, 4.5, 23), (smooth, 0.0, 23), (coarse, 0.0, 36)):
        frames = b"".join((add_noise(ramp, sigma, 10 + i) if sigma else ramp).tobytes() for i in range(2))
        subprocess.run([FF, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "128x96", "-r", "5", "-i", "-",
                        "-c:v", "libx264", "-crf", str(crf), "-threads", "1", "-pix_fmt", "yuv420p", str(path)],
                       input=frames, check=True)  # fmt: skip
    from classsr_cli.io.video import VideoReader, h264_qp
    from classsr_cli.metrics import noise_level
    from classsr_cli.pipeline import (
        H264_JPEG_FROM_QP,
        LIGHT_NOISE_VIDEO_FROM,
        NOISE_NOTE_FROM,
        NOISE_NOTE_VIDEO_FROM,
    )

    with VideoReader(probe(faint)) as reader:
        assert LIGHT_NOISE_VIDEO_FROM <= noise_level(next(iter(reader)).rgb) < NOISE_NOTE_VIDEO_FROM
    light_said = ("looks lightly noisy: this model sharpens the noise as detail; --model classsr_residual_jpeg_x4 leaves "
                  "light noise out")
    assert notes(clean, faint) == [light_said] and notes(clean, smooth) == []
    # The same decoded pixels kept losslessly (FFV1) take a picture's thresholds: none; and a GIF, whose dithering
    # reads as noise where the noisy model is the worst choice, none whatever it reads.
    kept, gif = tmp_path / "kept.mkv", tmp_path / "dithered.gif"
    ff("-i", faint, "-c:v", "ffv1", kept)
    ff("-i", grain, "-vf", "split[a][b];[a]palettegen[p];[b][p]paletteuse", gif)
    with VideoReader(probe(gif)) as reader:
        assert noise_level(next(iter(reader)).rgb) >= NOISE_NOTE_FROM
    assert notes(clean, kept) == [] and notes(clean, gif) == []
    # The noisy model on clean footage a codec kept as it was (FFV1) says the default keeps its detail, as on a
    # picture; not through H.264, which hides noise from the estimate, nor on a grainy source.
    looks_clean = ("looks clean: this model is trained on noisy input and smooths fine detail away; the default model "
                   "(without --model) keeps it")
    assert notes(noisy, plain) == [looks_clean]
    assert notes(noisy, smooth) == []  # (on the grainy one: none, above)
    # Light grain kept losslessly gets the JPEG model's note, as a picture does.
    save_checkpoint(tiny_model, weights / "classsr_residual_jpeg_x4.safetensors",
                    provenance={"recipe": {"jpeg_quality": [30, 95]}})
    light = tmp_path / "light.mkv"
    subprocess.run([FF, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "128x96", "-r", "5", "-i", "-",
                    "-c:v", "ffv1", "-pix_fmt", "bgr0", str(light)],
                   input=b"".join(add_noise(ramp, 4, 10 + i).tobytes() for i in range(2)), check=True)  # fmt: skip
    assert notes(clean, light) == [light_said] and notes(noisy, light) == []
    # H.264 coded coarsely (its blocks' mean QP from H264_JPEG_FROM_QP) gets the JPEG model's note, as a JPEG below
    # quality 90 does; finer H.264 (the faint and smooth clips at CRF 23) and other codecs (HEVC here, QP unread) not;
    # nor the JPEG or noisy model, nor a GIF.
    qp = h264_qp(probe(coarse))
    assert h264_qp(probe(faint)) < H264_JPEG_FROM_QP and h264_qp(probe(smooth)) < H264_JPEG_FROM_QP <= qp
    assert H264_JPEG_FROM_QP <= h264_qp(probe(coarse).trimmed(0.2)) != qp  # a part: its own frames
    again = tmp_path / "again.mp4"  # the same path written again at another quality: read again, not kept
    read = []
    for crf in (36, 23):
        ff("-i", coarse, "-c:v", "libx264", "-crf", str(crf), "-pix_fmt", "yuv420p", again)
        read.append(h264_qp(probe(again)))
    assert read[0] > read[1] + 5
    hevc = tmp_path / "coarse_hevc.mp4"
    ff("-i", coarse, "-c:v", "libx265", "-crf", "35", "-x265-params", "log-level=error", hevc)
    assert h264_qp(probe(hevc)) is None
    jpeg = weights / "classsr_residual_jpeg_x4.safetensors"
    assert notes(clean, coarse) == [f"coded as H.264 at QP {qp:.0f}: this model sharpens the codec's blocks as detail; "
                                    "--model classsr_residual_jpeg_x4 is trained to leave them out"]
    assert notes(clean, smooth) == [] and notes(clean, hevc) == []
    assert notes(jpeg, coarse) == [] and notes(noisy, coarse) == [] and notes(clean, gif) == []
    # Grain HEVC kept where H.264's would take the noisy model's note (σ 6 at CRF 18: reads 4.1; one encoder thread):
    # the JPEG model's, said as noisy (HEVC takes the noisy model from 5: pipeline.NOISE_VIDEO_FROM_BY_CODEC)
    grain_hevc = tmp_path / "grain_hevc.mp4"
    subprocess.run([FF, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "128x96", "-r", "5", "-i", "-",
                    "-c:v", "libx265", "-crf", "18", "-x265-params", "log-level=error:pools=1:frame-threads=1",
                    "-pix_fmt", "yuv420p", str(grain_hevc)],
                   input=b"".join(add_noise(ramp, 6, 10 + i).tobytes() for i in range(2)), check=True)  # fmt: skip
    with VideoReader(probe(grain_hevc)) as reader:
        assert NOISE_NOTE_VIDEO_FROM <= noise_level(next(iter(reader)).rgb) < 5
    assert notes(clean, grain_hevc) == ["looks noisy: this model sharpens the noise as detail; --model "
                                        "classsr_residual_jpeg_x4 leaves it out"]


@pytest.mark.slow
def test_h264_qp_reads_the_blocks_quantizer(tmp_path: Path) -> None:
    """h264_qp is the blocks' mean QP, where the rate control's coarseness lies: under a bit rate libx264 sets every
    picture's initial QP to 26 whatever it spends (the sixty-ninth pass read that, so any bit rate looked coarse), and
    the blocks' QPs follow the bits; at a constant quality a coarser CRF reads higher; a 10-bit stream reads on the
    8-bit scale; the first frames only, and another codec none."""
    from classsr_cli.degrade import add_noise
    from classsr_cli.io.video import h264_frame_qps, h264_qp

    y, x = np.mgrid[0:96, 0:128]
    ramp = np.stack([40 + x, 60 + y, 200 - x // 2], axis=2).clip(0, 255).astype(np.uint8)
    raw = b"".join(add_noise(ramp, 4, 10 + i).tobytes() for i in range(10))

    def coded(name: str, *args: str, pix_fmt: str = "yuv420p") -> Path:
        path = tmp_path / name
        subprocess.run([FF, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "128x96", "-r", "5", "-i", "-",
                        "-c:v", "libx264", *args, "-threads", "1", "-pix_fmt", pix_fmt, str(path)],
                       input=raw, check=True)  # fmt: skip
        return path

    def initial_qps(path: Path) -> set[int]:  # the pictures' initial QP, which the sixty-ninth pass read
        shown = subprocess.run([FF, "-hide_banner", "-export_side_data", "venc_params", "-i", str(path), "-vf",
                                "showinfo", "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
        return {int(q) for q in re.findall(r"Video encoding parameters: type 1; qp=(\d+)", shown)}

    starved, ample = coded("starved.mp4", "-b:v", "20k"), coded("ample.mp4", "-b:v", "200k")
    assert initial_qps(starved) == initial_qps(ample) == {26}
    assert h264_qp(probe(starved)) > h264_qp(probe(ample)) + 10
    fine, coarse = coded("fine.mp4", "-crf", "20"), coded("coarse.mp4", "-crf", "30")
    assert h264_qp(probe(coarse)) > h264_qp(probe(fine)) + 5
    deep = coded("deep.mp4", "-crf", "30", pix_fmt="yuv420p10le")
    assert probe(deep).pix_fmt == "yuv420p10le"
    assert h264_qp(probe(deep)) == pytest.approx(h264_qp(probe(coarse)), abs=1.0)
    per_frame = h264_frame_qps(coarse)
    assert len(per_frame) == 10 and len(h264_frame_qps(coarse, 4)) == 4
    assert h264_qp(probe(coarse), frames=4) == pytest.approx(np.mean(per_frame[:4]), abs=1e-9)
    hevc = tmp_path / "coarse_hevc.mp4"
    ff("-i", coarse, "-c:v", "libx265", "-crf", "30", "-x265-params", "log-level=error", hevc)
    assert h264_qp(probe(hevc)) is None and h264_frame_qps(hevc) == []


def test_h264_qps_are_decoded_on_one_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ffmpeg's frame-threaded H.264 decoder now and then exports some or all of a frame's QPs as zero (frame 8 of the
    CRF 30 clip above read 14.17 and 0.61 for 27.97 in 2 of 300 reads under load; none of 900 on one thread:
    scripts/qp_read_repeat.py): the QP read decodes on one thread, an option of its input."""
    import classsr_cli.io.video as video

    seen: list[list[str]] = []
    monkeypatch.setattr(video.subprocess, "run", lambda cmd, **kw: seen.append(cmd) or subprocess.CompletedProcess(
        cmd, 0, b"", b""))  # fmt: skip
    video._frame_qps.cache_clear()
    clip = tmp_path / "c.mp4"
    clip.write_bytes(b"x")
    assert video.h264_frame_qps(clip) == []
    [cmd] = seen
    assert cmd[cmd.index("-threads") + 1] == "1" and cmd.index("-threads") < cmd.index("-i")


@pytest.mark.slow
def test_a_read_only_output_folder_is_one_line(
    clips: dict[str, Path], tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root ignores permissions, so a read-only mount is simulated: creating, writing and removing there fail."""
    import errno

    ro = tmp_path / "ro"
    ro.mkdir()

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    for name in ("mkdir", "touch", "unlink"):  # mkdir of the folder that is there already succeeds, as on a mount
        real = getattr(Path, name)
        monkeypatch.setattr(Path, name, lambda self, *a, _real=real, **k: (  # type: ignore[misc]
            refuse(self) if ro in self.parents and not self.is_dir() else _real(self, *a, **k)))  # fmt: skip
    for out in (ro / "a.mp4", ro / "new" / "a.mp4"):
        r = runner.invoke(app, ["video", str(clips["audio"]), str(out), "--model", str(tiny_model_path)])
        assert r.exit_code == 1, r.output
        assert r.output.strip() == f"error: {out}: cannot write (Read-only file system)"


@pytest.mark.slow
def test_an_hdr_or_wide_gamut_source_into_frames_without_colour_tags_is_said_to_show_as_sdr(tmp_path: Path) -> None:
    """A PQ or HLG source (an iPhone's video is HLG in BT.2020) into GIF, WebP, APNG, JPEG or TIFF frames, which hold
    no colour tags: tone-mapped to SDR in BT.709 colours, which a note says; an output that keeps the tags (HEVC in
    .mp4, PNG frames) and an SDR source get none."""
    from classsr_cli.io.video import probe, source_notes

    clips = {}
    for name, transfer in (("pq", "smpte2084"), ("hlg", "arib-std-b67"), ("sdr", "bt709")):
        prim = "bt709" if name == "sdr" else "bt2020"
        clips[name] = tmp_path / f"{name}.mp4"
        ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.2", "-c:v", "libx265", "-x265-params",
           f"log-level=error:colorprim={prim}:transfer={transfer}:colormatrix={'bt709' if name == 'sdr' else 'bt2020nc'}",
           "-pix_fmt", "yuv420p10le", clips[name])  # fmt: skip

    def said(name: str, codec: str) -> list[str]:
        return [n for n in source_notes(probe(clips[name]), codec=codec) if "colour tags" in n]

    assert said("pq", "gif") == ["the source is HDR (PQ) in BT.2020 colours; GIF frames hold no colour tags: "
                                 "tone-mapped to SDR in BT.709 colours; a .mp4, .mkv, .mov or .webm output, or PNG "
                                 "frames, keep it as it is"]  # fmt: skip
    assert "HDR (HLG) in BT.2020 colours; JPEG frames hold no colour tags: tone-mapped" in said("hlg", "mjpeg")[0]
    assert said("pq", "libwebp_anim") and said("hlg", "apng") and said("pq", "tiff")
    assert not said("pq", "libx265") and not said("pq", "png") and not said("sdr", "gif")
    # a system ffmpeg without zimg: GIF frames show the levels as coded, said; JPEG frames, classsr's own, are converted
    from classsr_cli.io import video as iov

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(iov, "ffmpeg_filters", frozenset)
        assert said("pq", "gif") == ["the source is HDR (PQ) in BT.2020 colours; GIF frames hold no colour tags, so they "
                                     "show its levels as SDR sRGB's (paler colours; not converted; this ffmpeg has no "
                                     "zscale and tonemap): a .mp4, .mkv, .mov or .webm output, or PNG frames, keep it "
                                     "as it is"]  # fmt: skip
        assert "tone-mapped" in said("hlg", "mjpeg")[0]
        assert "zscale" not in " ".join(iov._video_args(EncodeOptions().for_source("gif", "yuv420p10le"), "gif",
                                                        Fraction(1, 10), "tv, bt2020nc/bt2020/smpte2084"))  # fmt: skip


def test_hdr_and_wide_gamut_frames_are_tone_mapped_and_converted_for_frames_without_colour_tags() -> None:
    """What the encoder's filters make of an HDR source's frames on their way into APNG (as into GIF, WebP, JPEG or
    TIFF frames): HDR's reference white (BT.2408: 203 cd/m², HLG's 75 % and PQ's 58 % signal), which showed as grey
    (191 and 148 of 255), lands near SDR's white, black stays black, and a brighter highlight is brighter still; a
    Display P3 colour is converted to BT.709's primaries as a colour-managed viewer would show it (it showed paler);
    into HEVC the frames are left as they are, tagged."""
    from classsr_cli.io.video import _video_args

    def shown(color: str, rgb: list[tuple[float, float, float]], muxer: str = "apng") -> np.ndarray:
        opts = EncodeOptions().for_source(muxer, "yuv420p10le")
        args = _video_args(opts, muxer, Fraction(1, 10), color)
        pixels = np.repeat(np.round(np.array(rgb) * 65535).astype("<u2")[None], 4, 0)  # 4 rows, a column each
        coded = subprocess.run(
            [FF, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", f"{len(rgb)}x4", "-i", "-", *args,
             "-f", muxer, "-"], input=pixels.tobytes(), capture_output=True, check=True, timeout=60).stdout  # fmt: skip
        return np.frombuffer(subprocess.run(
            [FF, "-v", "error", "-i", "-", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], input=coded,
            capture_output=True, check=True, timeout=60).stdout, np.uint8).reshape(4, len(rgb), 3)[1]  # fmt: skip

    hlg = shown("tv, bt2020nc/bt2020/arib-std-b67, progressive", [(0, 0, 0), (0.75,) * 3, (0.9,) * 3])
    pq = shown("tv, bt2020nc/bt2020/smpte2084, progressive", [(0, 0, 0), (0.58,) * 3, (0.7,) * 3])
    for got in (hlg, pq):
        assert got[0].max() <= 2 and 225 <= got[1].min() <= 245 and got[2].min() > got[1].max()
        assert np.ptp(got[1].astype(int)) <= 2  # grey stays grey
    p3 = np.array([0.8, 0.4, 0.2])  # Display P3 with BT.709's transfer, in display light (BT.1886: gamma 2.4), as zimg
    to709 = np.array([[1.2249, -0.2247, 0], [-0.0420, 1.0419, 0], [-0.0197, -0.0786, 1.0979]])  # P3-D65 -> BT.709
    want = np.clip(to709 @ p3**2.4, 0, 1) ** (1 / 2.4) * 255
    got = shown("tv, bt709/smpte432/bt709, progressive", [tuple(p3)])[0]
    assert np.abs(got - want).max() <= 3 and np.abs(got - p3 * 255).max() > 15
    assert "zscale" not in " ".join(_video_args(EncodeOptions().for_source("mp4", "yuv420p10le"), "mp4", Fraction(1, 10),
                                                "tv, bt2020nc/bt2020/arib-std-b67, progressive"))  # fmt: skip


@pytest.mark.parametrize("suffix", [".jpg", ".tif", ".gif"])
def test_hlg_reference_white_lands_near_sdr_white_in_frames_without_colour_tags(tmp_path: Path, suffix: str) -> None:
    """An HLG video of HDR's reference white (75 % signal, a flat grey that showed as 191 of 255) into JPEG or TIFF
    frames, which classsr writes itself, and into a GIF, which ffmpeg's filters convert: near SDR's white in each."""
    from PIL import Image

    src = tmp_path / "hlg.mp4"
    ff("-f", "lavfi", "-i", "color=c=0xBFBFBF:size=64x48:rate=10:duration=0.2", "-c:v", "libx265", "-x265-params",
       "log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc", "-pix_fmt", "yuv420p10le", src)  # fmt: skip
    out = tmp_path / (f"out{suffix}" if suffix == ".gif" else f"%03d{suffix}")
    r = runner.invoke(app, ["video", str(src), str(out), "-x", "2"])
    assert r.exit_code == 0, r.output
    first = tmp_path / ("out.gif" if suffix == ".gif" else f"001{suffix}")
    with Image.open(first) as im:
        shown = np.asarray(im.convert("RGB"), dtype=float)[8:-8, 8:-8]
    assert 225 <= shown.mean() <= 245 and np.ptp(shown.mean(axis=(0, 1))) < 3, shown.mean(axis=(0, 1))


@pytest.mark.parametrize(("record", "said"), [
    ("profile: 8, level: 4, rpu flag: 1, el flag: 0, bl flag: 1, compatibility id: 4",
     "the source's Dolby Vision metadata (profile 8) is not kept: the output is its HLG base layer, as players without "
     "Dolby Vision show it"),
    ("profile: 5, level: 6, rpu flag: 1, el flag: 0, bl flag: 1, compatibility id: 0",
     "the source is Dolby Vision profile 5, whose frames are in Dolby's own colours (IPTPQc2), which ffmpeg decodes as "
     "they are: the output's colours will be wrong (green and purple); convert it to HDR10 first with a Dolby "
     "Vision-aware tool (dovi_tool, or ffmpeg's libplacebo)"),
])
def test_dolby_vision_is_said_to_be_left_out_and_profile_5_to_come_out_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: str, said: str
) -> None:
    """An iPhone's video is Dolby Vision 8.4 over an HLG base layer, which is upscaled (its Dolby Vision metadata is
    not: said); a streaming service's profile 5 has no base layer players without Dolby Vision can show: its frames'
    colours are Dolby's own, which come out wrong (said, with what converts them). As ffmpeg lists the record."""
    from classsr_cli.io import video as iov

    src = tmp_path / "phone.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.3", "-c:v", "libx264", "-pix_fmt", "yuv420p", src)
    listing = iov._run_probe(src)
    assert iov.probe(src).dolby_vision is None
    lines = listing.splitlines()
    at = next(i for i, line in enumerate(lines) if "Video: h264" in line)
    lines[at + 1 : at + 1] = ["      Side data:", f"        DOVI configuration record: version: 1.0, {record}"]
    monkeypatch.setattr(iov, "_run_probe", lambda path, demux=(): "\n".join(lines))
    info = iov.probe(src)
    assert info.dolby_vision is not None and (info.width, info.height) == (64, 48)
    notes = iov.plan_streams(info, "mp4", EncodeOptions())[1]
    assert [n for n in notes if "Dolby Vision" in n] == [said]


def test_an_hdr_video_into_openexr_frames_is_written_as_the_light_it_shows(tmp_path: Path) -> None:
    """A PQ video of HDR's reference white (58 % signal, 203 cd/m²) into OpenEXR frames: its light as it shows, about
    2.03 (1.0 = 100 cd/m²), said (it was refused: only 16-bit PNG frames were offered)."""
    from classsr_cli.io import exr

    src = tmp_path / "pq.mp4"
    ff("-f", "lavfi", "-i", "color=c=0x949494:size=64x48:rate=10:duration=0.2", "-c:v", "libx265", "-x265-params",
       "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc", "-pix_fmt", "yuv420p10le", src)  # fmt: skip
    r = runner.invoke(app, ["video", str(src), str(tmp_path / "%03d.exr"), "-x", "2"])
    assert r.exit_code == 0, r.output
    assert "the HDR (PQ) video's light written as it shows, in BT.709's primaries (1.0 = 100 cd/m², SDR's white)" in (
        " ".join(r.output.split()))
    light = exr.decode(FF, tmp_path / "001.exr")[8:-8, 8:-8, :3]
    assert 1.85 < light.mean() < 2.2 and np.ptp(light.mean(axis=(0, 1))) < 0.05, light.mean(axis=(0, 1))


def _odd(b: int) -> int:
    """A CEA-608 byte with its odd parity bit."""
    return b | (0x80 if bin(b).count("1") % 2 == 0 else 0)


def captioned_h264(path: Path, cues: list[tuple[int, int, str]], frames: int = 120, fps: int = 30) -> Path:
    """An MP4 of H.264 whose frames carry CEA-608 closed captions (ATSC A/53 ``cc_data`` in an SEI before each
    frame's slice, two bytes a frame on field 1, as a TV recording's): each cue ``(first frame, last frame, text)``
    loaded pop-on (resume caption loading, the text, end of caption shown at the first frame) and erased after the
    last. No B-frames, so the frames' captions come in the order they show."""
    null, per = (0x80, 0x80), [(0x80, 0x80)] * frames
    code = {name: (_odd(0x14), _odd(c)) for name, c in (("RCL", 0x20), ("ENM", 0x2E), ("EOC", 0x2F), ("EDM", 0x2C))}
    for first, last, text in cues:
        chars = [_odd(ord(c)) for c in text] + ([0x80] if len(text) % 2 else [])
        seq = [code["RCL"], code["RCL"], code["ENM"], code["ENM"],
               *zip(chars[::2], chars[1::2], strict=True), code["EOC"], code["EOC"]]  # fmt: skip
        per[first - len(seq) + 2 : first + 2] = seq
        per[last + 1 : last + 3] = [code["EDM"], code["EDM"]]
    raw = subprocess.run([FF, "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size=64x48:rate={fps}", "-frames:v",
                          str(frames), "-c:v", "libx264", "-bf", "0", "-x264-params", "slices=1", "-pix_fmt",
                          "yuv420p", "-f", "h264", "-"], capture_output=True, check=True, timeout=60).stdout  # fmt: skip
    out, at, k = bytearray(), 0, 0
    for m in re.finditer(b"\x00\x00\x01", raw):
        if raw[m.end()] & 0x1F in (1, 5):  # a slice: its frame's captions just before it
            begin = m.start() - (1 if m.start() and raw[m.start() - 1] == 0 else 0)
            payload = b"\xb5\x00\x31GA94\x03" + bytes([0xC1, 0xFF, 0xFC, *per[k], 0xFF])
            out += raw[at:begin] + b"\x00\x00\x00\x01\x06" + bytes([4, len(payload)]) + payload + b"\x80"
            at, k = begin, k + 1
    assert k == frames and null == (0x80, 0x80)
    subprocess.run([FF, "-v", "error", "-y", "-r", str(fps), "-f", "h264", "-i", "-", "-c", "copy", str(path)],
                   input=bytes(out + raw[at:]), check=True, timeout=60)  # fmt: skip
    return path


def _cues(path: Path, stream: str) -> list[tuple[str, str, str]]:
    out = subprocess.run([FF, "-v", "error", "-i", str(path), "-map", stream, "-f", "srt", "-"], capture_output=True,
                         text=True, check=True, timeout=60).stdout  # fmt: skip
    return re.findall(r"(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})\n(.+)", out)


@pytest.mark.slow
def test_closed_captions_in_the_video_stream_are_kept_as_a_subtitle_stream(tmp_path: Path) -> None:
    """An MP4 whose H.264 frames carry closed captions (ffmpeg's listing does not say so: found in its first
    frames) upscaled into .mp4 keeps them as a subtitle stream after its own subtitles, named "Closed captions", the
    cues at their times, as text; a part (--start/--duration) into .mkv keeps the cues inside it, clipped and timed
    from its start; a GIF says they are not kept. Every video frame is kept."""
    from classsr_cli.io import video as iov

    cc = captioned_h264(tmp_path / "cc.mp4", [(20, 49, "HELLO"), (70, 99, "WORLD")])
    assert ", Closed Captions" not in iov._run_probe(cc) and iov.probe(cc).captions
    (tmp_path / "own.srt").write_text("1\n00:00:00,500 --> 00:00:02,000\nSpoken\n", encoding="utf-8")
    (tmp_path / "chapters.txt").write_text(";FFMETADATA1\n" + "".join(
        f"[CHAPTER]\nTIMEBASE=1/1000\nSTART={a}\nEND={a + 2000}\ntitle={t}\n" for a, t in ((0, "One"), (2000, "Two"))))
    src = tmp_path / "tv.mp4"
    ff("-i", cc, "-f", "lavfi", "-i", "sine=duration=4", "-i", tmp_path / "own.srt", "-i", tmp_path / "chapters.txt",
       "-map", "0", "-map", "1", "-map", "2", "-map_chapters", "3", "-c:v", "copy", "-c:a", "aac", "-c:s", "mov_text",
       src)  # fmt: skip
    out = tmp_path / "tv_x2.mp4"
    r = runner.invoke(app, ["video", str(src), str(out), "-x", "2"])
    assert r.exit_code == 0, r.output
    assert "they are kept as a subtitle stream" in r.output
    listing = iov._run_probe(out)
    assert len(re.findall(r"Subtitle: mov_text", listing)) == 2 and "handler_name    : Closed captions" in listing
    # the chapters once (their text track, copied, came out twice: once as a stray "gpmd" data track)
    assert len(re.findall(r"Chapter #0:\d", listing)) == 2 and len(re.findall(r": Data: ", listing)) == 1
    assert _cues(out, "0:s:0") == [("00:00:00,500", "00:00:02,000", "Spoken")]
    assert _cues(out, "0:s:1") == [("00:00:00,667", "00:00:01,667", "HELLO"), ("00:00:02,333", "00:00:03,333", "WORLD")]
    assert iov.count_frames(out) == 120 and len(re.findall(r"Stream #0:\d.*: Audio: aac", listing)) == 1

    part = tmp_path / "part.mkv"
    r = runner.invoke(app, ["video", str(cc), str(part), "-x", "2", "--start", "1", "--duration", "2"])
    assert r.exit_code == 0, r.output
    assert "title           : Closed captions" in iov._run_probe(part)
    assert _cues(part, "0:s:0") == [("00:00:00,000", "00:00:00,667", "HELLO"), ("00:00:01,333", "00:00:02,000", "WORLD")]

    r = runner.invoke(app, ["video", str(cc), str(tmp_path / "cc.gif"), "-x", "2"])
    assert r.exit_code == 0, r.output
    assert "closed captions in the video stream (EIA-608/708) are not kept: .gif holds no subtitles" in r.output

    # a part after the last cue: the plan said them kept, the run then says they were not (no empty stream)
    late = tmp_path / "late.mp4"
    r = runner.invoke(app, ["video", str(cc), str(late), "-x", "2", "--start", "3.5"])
    assert r.exit_code == 0, r.output
    assert "the closed captions were not kept after all: ffmpeg's decoder read no CEA-608 text" in r.output
    assert "Subtitle" not in iov._run_probe(late)


def gopro_mp4(path: Path, tmp_path: Path, *extra: str) -> Path:
    """An MP4 with a GoPro telemetry track (``gpmd``: a data track, as a GoPro writes its GPS and gyro): a text track
    written by ffmpeg, its sample entry and handler retyped (``tx3g`` to ``gpmd``, ``sbtl`` to ``meta``), which
    ffmpeg then reads as GoPro's data. ``extra``: ffmpeg arguments for the source's video (another input first)."""
    (tmp_path / "t.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nAAAA\n\n2\n00:00:01,000 --> 00:00:02,000\nBB\n")
    made = tmp_path / "made.mp4"
    ff(*(extra or ("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=2")), "-i", tmp_path / "t.srt",
       "-map", "0:v", "-map", "1", "-c:v", *(("copy",) if extra else ("libx264",)), "-c:s", "mov_text", made)  # fmt: skip
    data = bytearray(made.read_bytes())
    for old, new in ((b"tx3g", b"gpmd"), (b"sbtl", b"meta")):
        at = data.index(old)
        data[at : at + 4] = new
    path.write_bytes(bytes(data))
    return path


@pytest.mark.slow
def test_a_gopros_telemetry_track_is_copied_into_mp4_and_mov(tmp_path: Path) -> None:
    """A GoPro's telemetry (``gpmd`` data) is copied into .mp4 and .mov outputs packet for packet (overlay tools read
    it), also where closed captions are added afterwards; .mkv says it is not kept and where it would be."""
    from classsr_cli.io import video as iov

    def packets(path: Path) -> list[str]:
        out = subprocess.run([FF, "-v", "error", "-i", str(path), "-map", "0:d:0", "-c", "copy", "-f", "framecrc", "-"],
                             capture_output=True, text=True, check=True, timeout=60).stdout  # fmt: skip
        return [line for line in out.splitlines() if not line.startswith("#")]

    src = gopro_mp4(tmp_path / "GX010001.MP4", tmp_path)
    assert [s.tag for s in iov.probe(src).streams if s.kind == "data"] == ["gpmd"] and len(packets(src)) == 2
    for name in ("out.mp4", "out.mov"):
        r = runner.invoke(app, ["video", str(src), str(tmp_path / name), "-x", "2"])
        assert r.exit_code == 0, r.output
        assert "data stream" not in r.output and packets(tmp_path / name) == packets(src)
    r = runner.invoke(app, ["video", str(src), str(tmp_path / "out.mkv"), "-x", "2"])
    assert "1 data stream(s) (gpmd) not kept (a GoPro's telemetry: .mp4 and .mov keep it)" in r.output
    r = runner.invoke(app, ["video", str(src), str(tmp_path / "part.mp4"), "-x", "2", "--start", "0.5"])
    assert "1 data stream(s) (gpmd) not kept (a GoPro's telemetry: a part from --start keeps none" in r.output
    r = runner.invoke(app, ["video", str(src), str(tmp_path / "first.mp4"), "-x", "2", "--duration", "1"])
    assert r.exit_code == 0 and "data stream" not in r.output and packets(tmp_path / "first.mp4") == packets(src)[:1]
    both = gopro_mp4(tmp_path / "both.mp4", tmp_path, "-i", str(captioned_h264(tmp_path / "cc.mp4", [(20, 49, "HI")])))
    r = runner.invoke(app, ["video", str(both), str(tmp_path / "both_x2.mp4"), "-x", "2"])
    assert r.exit_code == 0, r.output
    assert packets(tmp_path / "both_x2.mp4") == packets(both)
    assert _cues(tmp_path / "both_x2.mp4", "0:s:0") == [("00:00:00,667", "00:00:01,667", "HI")]


def test_a_file_name_goes_into_ffmpegs_filter_graph_escaped() -> None:
    """The movie source that reads the captions gets the source's name escaped twice (its option, then the graph)."""
    from classsr_cli.io.video import _filter_value

    assert _filter_value("plain.mp4") == "plain.mp4"
    assert _filter_value("a:b.mp4") == "a\\\\:b.mp4"  # \: for the option, its \ escaped for the graph
    assert _filter_value("x[1],y;z.mp4") == "x\\[1\\]\\,y\\;z.mp4"
    assert _filter_value("it's.mp4") == "it\\\\\\'s.mp4"


def test_streams_left_out_are_noted(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """The default video stream is the one upscaled; other video, cover art (outside .mp4, which keeps it),
    timecode tracks and attachments (outside .mkv, which keeps them) are each named in a note."""
    two, tc, att, cover, m4a = (tmp_path / n for n in ("two.mkv", "tc.mov", "att.mkv", "cover.mp4", "cover.m4a"))
    clip = ("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=0.4")
    pic = ("-f", "lavfi", "-i", "color=red:size=16x16:duration=0.04")  # one frame
    ff("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=5:duration=0.4", "-f", "lavfi", "-i",
       "testsrc=size=32x24:rate=5:duration=0.4", "-map", "0", "-map", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
       "-disposition:v:0", "0", "-disposition:v:1", "default", two)  # fmt: skip
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.4", "-timecode", "01:00:00:00", "-c:v", "libx264",
       "-pix_fmt", "yuv420p", tc)  # four frames: the MP4 muxer writes no timecode track for a two-frame clip
    font = tmp_path / "f.ttf"
    font.write_bytes(b"not really a font")
    ff(*clip, "-attach", font, "-metadata:s:t", "mimetype=font/ttf", "-c:v", "libx264", "-pix_fmt", "yuv420p", att)
    ff(*clip, *pic, "-map", "0", "-map", "1", "-c:v:0", "libx264", "-pix_fmt:v:0", "yuv420p", "-c:v:1", "png",
       "-disposition:v:1", "attached_pic", cover)  # fmt: skip
    fast = EncodeOptions(preset="ultrafast")
    res = upscale_video(tiny_model, two, tmp_path / "two_x4.mp4", options=fast)
    assert (res.width, res.height) == (32, 24)
    assert res.notes == ["video stream(s) #0 (h264) left out: only #1, the default one, is upscaled"]
    # The start timecode (01:00:00:0 as ffmpeg lists it at 10 fps) is written again where the container holds one.
    assert probe(tc).timecode == "01:00:00:0"
    for out in ("tc.mp4", "tc.mkv"):
        assert upscale_video(tiny_model, tc, tmp_path / out, options=fast).notes == []
        assert probe(tmp_path / out).timecode == "01:00:00:0"
    assert "the start timecode (01:00:00:0) is not kept: .webm holds none (.mp4, .mov, .mkv do)" in upscale_video(
        tiny_model, tc, tmp_path / "tc.webm", options=fast).notes  # with the notes of VP9's re-encoded colour
    # The cover picture is copied into .mp4, as it is (the upscaled video stays v:0 and the only one encoded).
    assert upscale_video(tiny_model, cover, tmp_path / "cover_x4.mp4", options=fast).notes == []
    kept = probe(tmp_path / "cover_x4.mp4")
    assert [(s.kind, s.codec, s.attached_pic) for s in kept.streams] == [("video", "h264", False), ("video", "png", True)]
    assert (kept.width, kept.height) == (256, 192)
    assert upscale_video(tiny_model, cover, tmp_path / "cover_x4.mkv", options=fast).notes == [
        "the cover picture (png) is not kept: only .mp4 and .m4v hold one"
    ]
    assert upscale_video(tiny_model, att, tmp_path / "att.mp4", options=fast).notes == [
        "1 attachment(s) (fonts, ...) dropped: only .mkv holds them"
    ]
    assert upscale_video(tiny_model, att, tmp_path / "att_x4.mkv", options=fast).notes == []
    assert [s.kind for s in probe(tmp_path / "att_x4.mkv").streams] == ["video", "attachment"]
    # An audio file whose only picture is its cover art is not a video, and the message says why.
    ff("-f", "lavfi", "-i", "sine=duration=0.2", *pic, "-map", "0", "-map", "1", "-c:a", "aac", "-c:v", "png",
       "-frames:v", "1", "-disposition:v", "attached_pic", m4a)  # fmt: skip
    with pytest.raises(InputError, match=r"has no video stream, only a cover picture \(audio \(aac\), video \(png\)\)"):
        probe(m4a)


def test_the_reader_decodes_the_base_layer_of_an_lcevc_stream(clips: dict[str, Path]) -> None:
    """The bundled ffmpeg (liblcevc_dec) applied an LCEVC enhancement layer: shaka-player's lcevc-sei stream, 960x540
    by its stream and ffprobe, decoded at 1920x1080, which the reader read as four frames' bytes a frame (checked by
    hand: 6 frames of 0.2 s became 8 garbled ones, the last two a minute apart). The reader asks for the base layer
    where ffmpeg knows the flag; a stream without LCEVC reads as before."""
    from classsr_cli.io.video import VideoReader, base_layer_options

    assert base_layer_options() == ("-export_side_data", "+enhancements")  # (imageio-ffmpeg's ffmpeg knows it)
    info = probe(clips["audio"])
    with VideoReader(info) as reader:
        frames = [f.rgb.shape for f in reader]
    assert frames and all(shape == (info.height, info.width, 3) for shape in frames)


@pytest.mark.parametrize("codec", [["-c:v", "libx264"], ["-c:v", "mpeg2video"]])
def test_a_stream_cut_between_keyframes_is_no_damaged_file(tiny_model: torch.nn.Module, tmp_path: Path,
                                                            codec: list[str]) -> None:  # fmt: skip
    """An MPEG-TS cut between keyframes (a TV recording, an HLS segment: shaka-player's hls-ts-muxed-ac3-h264
    segments) starts with frames that refer to parameter sets or pictures before it, which the decoder refuses
    ("non-existing PPS 0 referenced", "Invalid frame dimensions 0x0."): it was "the decoder failed (truncated or
    damaged file)", exit 3. Now a note, and the video from its first keyframe, timed as in the source; an error
    after that keyframe still counts."""
    whole = tmp_path / "whole.ts"
    ff("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=4", "-f", "lavfi", "-i", "sine=duration=4", *codec,
       "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "mp2", whole)  # (a keyframe every 2 s; audio, which stays in time)
    data = whole.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[(len(data) // 3) // 188 * 188 :])  # on a TS packet's boundary
    res = upscale_video(tiny_model, cut, tmp_path / "out.mkv")
    assert res.lost is None and res.frames > 0
    late = [n for n in res.notes if n.startswith("its frames before its first keyframe refer to what came before")]
    assert len(late) == 1, res.notes
    first = frame_times(cut)[0]
    assert f"its video starts at that keyframe, {first:.2f} s in" in late[0] and first > 0
    assert frame_times(tmp_path / "out.mkv")[0] == pytest.approx(first, abs=0.002)
    if codec[-1] == "libx264":
        damaged = bytearray(data[(len(data) // 3) // 188 * 188 :])
        for at in range(len(damaged) // 2, len(damaged) // 2 + 188 * 40, 188):  # later packets' payloads garbled
            damaged[at + 8 : at + 188] = bytes(range(180))
        (tmp_path / "damaged.ts").write_bytes(bytes(damaged))
        res = upscale_video(tiny_model, tmp_path / "damaged.ts", tmp_path / "out2.mkv")
        assert res.lost is not None and res.lost.startswith("the decoder failed (truncated or damaged file)")


def test_chapters_are_kept_and_their_track_is_not_called_a_lost_stream(
    tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    """An .mp4 with chapters lists them in a QuickTime chapter track (a data stream to ffmpeg): the chapters are kept
    in .mp4, .mkv and .webm, with no note of a data stream not kept (one was given); .avi, which holds none, says so."""
    meta = tmp_path / "meta.txt"
    meta.write_text(";FFMETADATA1\n" + "".join(f"[CHAPTER]\nTIMEBASE=1/1000\nSTART={a}\nEND={b}\ntitle={t}\n"
                                               for a, b, t in ((0, 200, "One"), (200, 400, "Two"))))  # fmt: skip
    src = tmp_path / "chapters.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.4", "-i", meta, "-map", "0", "-map_chapters", "1",
       "-c:v", "libx264", "-pix_fmt", "yuv420p", src)  # fmt: skip
    info = probe(src)
    assert info.chapters == 2 and [(s.kind, s.tag) for s in info.streams] == [("video", None), ("data", "text")]
    fast = EncodeOptions(preset="ultrafast")
    for ext in ("mp4", "mkv", "webm"):
        notes = upscale_video(tiny_model, src, tmp_path / f"out.{ext}", options=fast).notes
        assert not [n for n in notes if "data stream" in n or "chapter" in n], (ext, notes)
        assert probe(tmp_path / f"out.{ext}").chapters == 2
    notes = upscale_video(tiny_model, src, tmp_path / "out.avi", options=fast).notes
    assert "2 chapter(s) not kept: .avi holds none (.mp4, .mov, .mkv, .webm do)" in notes
    assert not [n for n in notes if "data stream" in n]


def played(path: Path) -> tuple[int, list[int], int | None, tuple[int, int]]:
    """An animation as Pillow shows it: its frames, their durations (ms), its loop count and its size."""
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        durations = []
        for frame in ImageSequence.Iterator(im):
            frame.load()  # WebP gives a frame's duration once it is decoded
            durations.append(round(frame.info["duration"]))
        return len(durations), durations, im.info.get("loop"), im.size


def test_animations_are_written_with_their_timing_and_loop_count(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """A GIF with frames of 100, 200, 50 and 1500 ms (it holds the last before it plays again) that plays three times
    comes out as a GIF, an animated WebP and an APNG four times its size, each frame with its duration, the last one
    too (ffmpeg gives an APNG's last frame the one before's, a WebP's the average frame's: classsr sets it after), and
    the same number of plays, in each format's own count (a GIF's loop counts the repeats); a GIF that plays once, and
    one that plays forever, stay so; the GIF holds one palette, the APNG every pixel."""
    from PIL import Image

    photo = np.asarray(Image.open(Path(__file__).parents[1] / "examples" / "baby.png").convert("RGB"))
    frames = [Image.fromarray(photo[60 + 4 * i : 84 + 4 * i, 40 + 8 * i : 72 + 8 * i]) for i in range(4)]
    src = tmp_path / "pan.gif"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=[100, 200, 50, 1500], loop=2)
    fast = EncodeOptions(preset="ultrafast")
    want = {".gif": 2, ".webp": 3, ".apng": 3}  # plays three times: a GIF's 2 repeats, WebP's and APNG's 3 plays
    for ext, loop in want.items():
        out = tmp_path / f"out{ext}"
        res = upscale_video(tiny_model, src, out, options=fast)
        count, durations, plays, size = played(out)
        assert (count, plays, size) == (4, loop, (128, 96)), ext
        assert durations == [100, 200, 50, 1500], (ext, durations)
        assert res.pix_fmt == {".gif": "pal8", ".webp": "yuv420p", ".apng": "rgb24"}[ext]
    with Image.open(tmp_path / "out.gif") as im:
        assert len(im.getpalette() or []) <= 3 * 256
    # A lossless animated WebP stays lossless (as upscale keeps a lossless WebP picture), a lossy one lossy.
    from classsr_cli.io.image import webp_lossless

    for lossless in (True, False):
        webp = tmp_path / f"lossless_{lossless}.webp"
        frames[0].save(webp, save_all=True, append_images=frames[1:], duration=100, lossless=lossless)
        res = upscale_video(tiny_model, webp, tmp_path / f"out_{lossless}.webp", options=fast)
        assert (webp_lossless(tmp_path / f"out_{lossless}.webp"), res.pix_fmt) == (
            (True, "bgra") if lossless else (False, "yuv420p"))
    for loop, plays in ((None, None), (0, 0)):  # once (no loop block), forever
        kw = {} if loop is None else {"loop": loop}
        frames[0].save(src, save_all=True, append_images=frames[1:], duration=100, **kw)
        upscale_video(tiny_model, src, tmp_path / "again.gif", options=fast, overwrite=True)
        assert played(tmp_path / "again.gif")[2] == plays


def test_the_last_frame_of_a_webp_or_apng_lasts_until_the_source_ends(tmp_path: Path) -> None:
    """:func:`hold_last_frame` sets the last frame's duration from where the frames before it end: frames the encoder
    merged count as one (libwebp merges a frame equal to the one before), a delay APNG's 16 bits cannot hold exactly
    is rounded, and its chunk's CRC stays right; a single frame, an end before the last frame's start and other
    muxers are left alone."""
    from PIL import Image

    from classsr_cli.io.video import hold_last_frame

    grey = [Image.new("RGB", (8, 8), (v, v, v)) for v in (0, 80, 80, 160)]  # frames 2 and 3 alike: Pillow merges them
    webp, apng = tmp_path / "a.webp", tmp_path / "a.png"
    for path in (webp, apng):
        grey[0].save(path, save_all=True, append_images=grey[1:], duration=[100, 100, 100, 100], loop=0,
                     **({"lossless": True} if path == webp else {}))  # fmt: skip
    merged = played(webp)[1]
    assert merged == played(apng)[1] == [100, 200, 100]
    assert hold_last_frame(webp, "webp", Fraction(5, 2)) and played(webp)[1] == [*merged[:-1], 2500 - sum(merged[:-1])]
    assert hold_last_frame(apng, "apng", Fraction(2, 1)) and played(apng)[1] == [100, 200, 1700]
    assert not hold_last_frame(apng, "apng", Fraction(2, 1))  # already so
    assert hold_last_frame(apng, "apng", Fraction(1000003, 1000)) and played(apng)[1][-1] == 999700  # 16 bits
    data = apng.read_bytes()
    at = data.rindex(b"fcTL")
    assert struct.unpack(">HH", data[at + 24 : at + 28]) == (9997, 10)  # 999.703 s as tenths
    assert zlib.crc32(data[at : at + 30]) == struct.unpack(">I", data[at + 30 : at + 34])[0]
    assert not hold_last_frame(apng, "apng", Fraction(3, 10))  # ends before the last frame starts
    assert not hold_last_frame(webp, "gif", Fraction(9))
    grey[0].save(tmp_path / "one.webp", lossless=True)
    assert not hold_last_frame(tmp_path / "one.webp", "webp", Fraction(9))


def _gif(path: Path, screen: tuple[int, int], frames: list[tuple[tuple[int, int, int, int], int, int]],
         bare: int = 0, delays: tuple[int, ...] = ()) -> Path:
    """A GIF of ``screen`` (width, height), no transparent colour, its background colour blue: each frame a box
    (left, top, width, height) of one colour index (0 black, 1 red, 2 green) and its disposal (1 kept, 2 cleared,
    3 the canvas before it put back), shown for its ``delays`` (hundredths; 10 past them); the first ``bare`` without
    a Graphic Control Extension. Written by hand: Pillow's writer crops and merges what it is given."""
    palette = bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 32, 64, 192]) + bytes(3 * 252)
    out = bytearray(b"GIF89a" + struct.pack("<2H3B", *screen, 0xF7, 3, 0) + palette)
    for n, ((left, top, width, height), colour, disposal) in enumerate(frames):
        delay = delays[n] if n < len(delays) else 10
        out += b"" if n < bare else b"\x21\xf9\x04" + bytes([disposal << 2]) + struct.pack("<H", delay) + b"\x00\x00"
        out += b"\x2c" + struct.pack("<4HB", left, top, width, height, 0)
        codes, bits, acc, data = [256], 0, 0, bytearray()  # LZW of literals alone, cleared before the codes grow
        for n in range(width * height):
            codes += [colour] + ([256] if n % 250 == 249 else [])
        for code in [*codes, 257]:
            acc |= code << bits
            bits += 9
            while bits >= 8:
                data.append(acc & 255)
                acc, bits = acc >> 8, bits - 8
        data += bytes([acc]) if bits else b""
        out += b"\x08" + b"".join(bytes([len(data[k : k + 255])]) + data[k : k + 255] for k in range(0, len(data), 255))
        out += b"\x00"
    path.write_bytes(bytes(out + b"\x3b"))
    return path


def test_a_gifs_canvas_its_frames_leave_uncovered_is_read_clear(tmp_path: Path) -> None:
    """A GIF without a transparent colour whose first picture is smaller than its screen, and whose frame is cleared
    after it shows (disposal 2): browsers show the canvas no frame covers clear, where ffmpeg's decoder fills it with
    the background colour, opaque. The reader clears it, frame by frame (:class:`AnimationCanvas`); a GIF whose first
    picture covers its screen, its later ones drawn on it in part, stays opaque."""
    from classsr_cli.io.video import AnimationCanvas

    src = _gif(tmp_path / "inside.gif", (16, 12), [((4, 2, 8, 6), 1, 1), ((0, 0, 16, 12), 2, 2), ((0, 0, 4, 4), 1, 3),
                                                   ((2, 2, 4, 4), 2, 1)])  # fmt: skip
    info = probe(src)
    assert info.alpha
    want = np.zeros((4, 12, 16), bool)
    want[0, 2:8, 4:12] = True  # the first picture
    want[1] = True  # the whole screen, cleared after it shows
    want[2, 0:4, 0:4] = True  # drawn on the cleared screen, then put back (3): the screen as it was, clear
    want[3, 2:6, 2:6] = True
    with VideoReader(info, alpha=True) as reader:
        frames = list(reader)
    assert [f.alpha is not None and np.array_equal(f.alpha > 0, w) for f, w in zip(frames, want, strict=True)] == [True] * 4
    assert all(np.array_equal(f.rgb[w], np.broadcast_to(c, f.rgb[w].shape)) for f, w, c in
               zip(frames, want, ([255, 0, 0], [0, 255, 0], [255, 0, 0], [0, 255, 0]), strict=True))  # fmt: skip
    with VideoReader(info.trimmed(0.1), alpha=True) as reader:  # a part: the frames from its first, by their times
        assert [f.alpha is not None and np.array_equal(f.alpha > 0, w) for f, w in zip(reader, want[1:], strict=True)] == [True] * 3
    canvas = AnimationCanvas.of(src)
    assert canvas is not None and canvas.covered(1) is None and np.array_equal(canvas.covered(0), want[0])  # (again)
    # Pictures before the file's first extension: ffmpeg decodes the first alone (its parser keeps them in one frame)
    bare = _gif(tmp_path / "bare.gif", (16, 12), [((4, 2, 8, 6), 1, 0), ((0, 0, 16, 12), 2, 0), ((0, 0, 4, 4), 1, 1)], 2)
    with VideoReader(probe(bare), alpha=True) as reader:
        frames = list(reader)
    assert [f.alpha is not None and np.array_equal(f.alpha > 0, w) for f, w in zip(frames, (want[0], want[0] | want[2]), strict=True)] == [True] * 2
    kept = _gif(tmp_path / "kept.gif", (16, 12), [((0, 0, 16, 12), 1, 1), ((4, 2, 8, 6), 2, 1), ((0, 0, 2, 2), 2, 1)])
    assert AnimationCanvas.of(kept) is None and not probe(kept).alpha
    # Cut short where Pillow's count of its frames fails (IndexError; struct.error): ffmpeg's frames are looked at
    from PIL import Image, ImageDraw

    pictures = [Image.new("RGBA", (48, 40), (0, 0, 0, 0)) for _ in range(3)]
    for i, picture in enumerate(pictures):
        ImageDraw.Draw(picture).ellipse((4 + 4 * i, 6, 28 + 4 * i, 34), fill=(230, 40, 40, 255))
    pictures[0].save(tmp_path / "whole.gif", save_all=True, append_images=pictures[1:], duration=100, disposal=2)

    def fails(data: bytes) -> bool:
        try:
            with Image.open(io.BytesIO(data)) as im:
                return not im.n_frames
        except (IndexError, struct.error):
            return True

    for name, whole in (("cut.gif", (tmp_path / "whole.gif").read_bytes()), ("cut2.gif", kept.read_bytes())):
        (tmp_path / name).write_bytes(next(whole[:n] for n in range(len(whole) - 1, 13, -1) if fails(whole[:n])))
    assert probe(tmp_path / "cut.gif").alpha and not probe(tmp_path / "cut2.gif").alpha
    with VideoReader(probe(kept), alpha=True) as reader:
        assert all(f.alpha is None or f.alpha.min() == 255 for f in reader)


def test_pictures_past_pillows_bomb_limit_are_refused_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An animation or a sequence's picture above twice Pillow's ``MAX_IMAGE_PIXELS`` (its bomb error) is refused
    with its size, not as an internal error; one between once and twice it is read without Pillow's warning; a still
    that large is named as a still (its header alone looked at)."""
    import warnings

    from PIL import Image

    frames = [Image.new("RGB", (32, 20), (60 * k, 0, 0)) for k in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100)
    (tmp_path / "seq").mkdir()
    for k, frame in enumerate(frames):
        frame.save(tmp_path / "seq" / f"f_{k:03d}.png")
    frames[0].save(tmp_path / "still.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # 32x20 is past twice it
    for src in (tmp_path / "a.gif", tmp_path / "seq" / "f_%03d.png"):
        with pytest.raises(InputError, match=r"32x20 is 640 pixels, above the 600-pixel limit that guards against "
                                             r"decompression bombs; `classsr video` reads no larger frame"):  # fmt: skip
            probe(src)
    with pytest.raises(InputError, match="is a PNG image, not a video"):
        probe(tmp_path / "still.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)  # past it, not past twice it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert probe(tmp_path / "a.gif").width == 32 and probe(tmp_path / "seq" / "f_%03d.png").width == 32


def test_pillows_warnings_on_a_damaged_apng_stay_off_stderr(tmp_path: Path) -> None:
    """An APNG with two ``acTL`` chunks: Pillow warns "Invalid APNG, will use default PNG image" when the probe opens
    it to look at it; the warning is not Python's on stderr (ffmpeg's reading of the file says what decodes)."""
    import warnings

    src = _apng(tmp_path / "twice.png", (16, 12), [((0, 0, 16, 12), 0, 0, (200, 40, 40)), ((0, 0, 16, 12), 0, 0, (9, 9, 9))])
    data = src.read_bytes()
    at = data.index(b"acTL") - 4
    src.write_bytes(data[: at + 20] + data[at : at + 20] + data[at + 20 :])  # the acTL chunk again after it
    with warnings.catch_warnings(), pytest.raises(InputError, match="is a PNG image, not a video"):  # (ffmpeg's)
        warnings.simplefilter("error")  # (Pillow's warning raised, where the probe let it out)
        probe(src)


def test_a_picture_pillows_plugin_fails_on_is_said_in_one_line(tmp_path: Path) -> None:
    """A DDS texture in a DXGI format Pillow does not implement (93, B8G8R8X8_UNORM_SRGB): its plugin raises
    NotImplementedError when the run looks for a Motion Photo's XMP and names the still; one line, not an internal
    error."""
    unimplemented_dds(tmp_path / "bgrx.dds")
    r = CliRunner().invoke(app, ["video", str(tmp_path / "bgrx.dds"), str(tmp_path / "o.mp4")])
    assert r.exit_code == 1 and r.stderr.strip() == (
        f"error: {tmp_path / 'bgrx.dds'}: not a readable video, nor an image whatever its .dds says")


def test_gif_pictures_ffmpeg_does_not_draw_are_said_and_not_timed(tmp_path: Path) -> None:
    """Pictures after a GIF's first and before any extension (a GIF87a animation, a "high colour" GIF): ffmpeg's
    parser keeps them in its first frame and its decoder draws the first picture alone. The run says how many are
    not drawn, and the frames' delays are those of the frames ffmpeg gives, not shifted by the pictures it merges."""
    from classsr_cli.io.video import gif_delays, source_notes

    boxes = [((0, 0, 16, 12), 1, 1), ((4, 2, 8, 6), 2, 1), ((0, 0, 4, 4), 1, 1), ((0, 0, 8, 8), 2, 1)]
    bare = _gif(tmp_path / "bare.gif", (16, 12), boxes, bare=2, delays=(0, 0, 10, 50))
    info = probe(bare)
    assert gif_delays(bare) == (0, 10, 50)  # (a picture without an extension has no delay)
    with VideoReader(info) as reader:  # shown for 100 ms each (browsers' time for a delay of 0), the last for 500
        assert [f.duration * reader.time_base for f in reader] == [Fraction(1, 10), Fraction(1, 10), Fraction(1, 2)]
    said = [n for n in source_notes(info, "pal8", "gif") if "not drawn" in n]
    assert len(said) == 1 and said[0].startswith("1 of the GIF's 4 pictures not drawn: they come after its first")
    whole = _gif(tmp_path / "whole.gif", (16, 12), boxes)
    assert gif_delays(whole) == (10,) * 4 and not [n for n in source_notes(probe(whole), "pal8", "gif") if "drawn" in n]


def test_an_rgb_apngs_canvas_its_frames_clear_is_read_clear(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """An APNG in RGB or gray (no alpha, no ``tRNS``) whose frame is cleared after it shows (dispose op background):
    the specification and browsers make the canvas "fully transparent black" there, where ffmpeg's frames, without
    alpha, show it black. The run reads it clear, frame by frame (:class:`AnimationCanvas`), at 8 and 16 bits, and
    its APNG output keeps it; one that clears no frame, or has a ``tRNS`` (ffmpeg gives it clear itself), is not
    walked."""
    from PIL import Image, ImageSequence

    from classsr_cli.io.video import AnimationCanvas, keeps_alpha

    boxes = [(0, 0, 16, 12), (4, 2, 8, 6), (0, 0, 4, 4), (0, 0, 16, 12)]
    want = np.zeros((4, 12, 16), bool)
    want[0] = True
    want[1, 2:8, 4:12] = True  # drawn on the canvas the first frame left clear
    want[2, 0:4, 0:4] = True  # the canvas before the second frame put back: clear
    want[3] = True
    for colour, depth, samples in ((2, 8, [(200, 40, 40), (40, 200, 40)]), (0, 16, [(52000,), (9000,)])):
        frames = [(box, dispose, 0, samples[n % 2]) for n, (box, dispose) in enumerate(zip(boxes, (1, 2, 0, 0), strict=True))]
        src = _apng(tmp_path / f"clears{depth}.png", (16, 12), frames, colour=colour, depth=depth)
        info = probe(src)
        assert info.alpha and not keeps_alpha(str(info.pix_fmt)), depth  # (ffmpeg's frames have none)
        with VideoReader(info, alpha=True, bits=depth) as reader:
            got = list(reader)
        assert [f.alpha is not None and np.array_equal(f.alpha > 0, w) for f, w in zip(got, want, strict=True)] == [True] * 4
        assert all(f.alpha is None or f.alpha[w].min() == 2**depth - 1 for f, w in zip(got, want, strict=True))
        with VideoReader(info.trimmed(0.1), alpha=True) as reader:  # a part: from its first frame's index in the file
            assert [np.array_equal(f.alpha > 0, w) for f, w in zip(reader, want[1:], strict=True)] == [True] * 3
    upscale_video(tiny_model, tmp_path / "clears8.png", tmp_path / "o.apng", options=EncodeOptions(preset="ultrafast"))
    with Image.open(tmp_path / "o.apng") as im:
        shown = [np.asarray(f.convert("RGBA"))[:, :, 3] > 127 for f in ImageSequence.Iterator(im)]
    # (the edge of the box, upscaled, may fall either side)
    assert [np.mean(s != w.repeat(4, 0).repeat(4, 1)) < 0.03 for s, w in zip(shown, want, strict=True)] == [True] * 4
    res = upscale_video(tiny_model, tmp_path / "clears8.png", tmp_path / "o.mp4", options=EncodeOptions(preset="ultrafast"))
    assert any(n.startswith("the source's transparency (the canvas its frames clear) is not kept") for n in res.notes)
    kept = _apng(tmp_path / "kept.png", (16, 12), [(boxes[0], 0, 0, (9, 9, 9)), (boxes[1], 0, 0, (200, 9, 9))])
    assert AnimationCanvas.of(kept) is None and not probe(kept).alpha
    trns = b"\x00\x00\x00\x02tRNS" + bytes(2) + struct.pack(">I", zlib.crc32(b"tRNS" + bytes(2)))  # black clear
    keyed = _apng(tmp_path / "keyed.png", (16, 12), frames[:2], colour=0, depth=16, extra=trns)
    assert AnimationCanvas.of(keyed) is None and probe(keyed).alpha


def test_an_animated_webps_canvas_its_frames_leave_uncovered_is_read_clear(tmp_path: Path) -> None:
    """An animated WebP of frames without alpha whose first frame is smaller than its canvas (as gif2webp makes of
    such a GIF): libwebp and browsers show the rest of the canvas clear, and ffmpeg decodes it so, but Pillow reads
    the file as RGB (it says it has no alpha), so the run took it as opaque: every frame, as ffmpeg decodes it, is
    looked at."""
    from PIL import Image

    src = animated_webp(tmp_path / "inside.webp", (32, 24), [(8, 4, (16, 16), (255, 0, 0)), (0, 0, (32, 24), (0, 255, 0))])
    with Image.open(src) as im:  # (Pillow: RGB)
        assert im.mode == "RGB" and getattr(im, "n_frames", 1) == 2
    info = probe(src)
    assert info.alpha
    with VideoReader(info, alpha=True) as reader:
        first, second = list(reader)
    want = np.zeros((24, 32), bool)
    want[4:20, 8:24] = True
    assert first.alpha is not None and np.array_equal(first.alpha > 0, want)
    assert (first.rgb[want] == [255, 0, 0]).all() and second.alpha is not None and second.alpha.min() == 255


def test_an_animation_that_turns_transparent_keeps_it_into_a_gif(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """An animation whose first frame is opaque and whose second has a clear ground (APNG, WebP) is read with its
    transparency (every frame looked at, not the first alone), and a GIF written from it shows each frame's: the
    opaque frame before the clear one is cleared after it shows, else it showed under the clear pixels (ffmpeg's
    encoder keeps it), and takes that frame's transparent colour, so that ffmpeg and Pillow clear it to transparent
    as browsers do; the clear frame before an opaque one is not drawn on in part."""
    from PIL import Image, ImageSequence

    opaque = np.zeros((40, 48, 4), np.uint8)
    opaque[...] = (40, 60, 200, 255)
    opaque[8:24, 6:22] = (230, 40, 40, 255)
    sticker = np.zeros_like(opaque)
    sticker[8:24, 6:22] = (230, 40, 40, 255)
    pictures = [Image.fromarray(a, "RGBA") for a in (opaque, sticker, opaque, sticker)]
    want = np.array([a[:, :, 3] > 0 for a in (opaque, sticker, opaque, sticker)]).repeat(4, 1).repeat(4, 2)
    fast = EncodeOptions(preset="ultrafast")
    for suffix in (".png", ".webp"):
        src = tmp_path / f"turns{suffix}"
        pictures[0].save(src, save_all=True, append_images=pictures[1:], duration=100, loop=0, lossless=True)
        assert probe(src).alpha
        out = tmp_path / f"turns{suffix}.gif"
        upscale_video(tiny_model, src, out, options=fast)
        with Image.open(out) as im:
            shown = [np.asarray(f.convert("RGBA"))[:, :, 3] > 0 for f in ImageSequence.Iterator(im)]
        with VideoReader(probe(out), alpha=True) as reader:
            decoded = [f.alpha > 0 if f.alpha is not None else np.ones(want.shape[1:], bool) for f in reader]
        for got in (shown, decoded):  # (the edge of the shape, upscaled, may fall either side)
            assert len(got) == 4 and all(np.mean(g != w) < 0.01 for g, w in zip(got, want, strict=True)), suffix


def test_frame_delays_are_read_from_the_blocks(tmp_path: Path) -> None:
    """:func:`gif_delays` lists each frame's delay as stored (hundredths), past palettes, comments and the loop block
    (Pillow writes them), 0 for a frame without one; a GIF cut short gives what it has, other files ``None``;
    :func:`frame_delays` gives them in seconds, and an APNG's and an animated WebP's from their frame chunks."""
    from PIL import Image

    from classsr_cli.io.video import gif_delays

    rng = np.random.default_rng(3)
    frames = [Image.fromarray(rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)) for _ in range(4)]
    src = tmp_path / "a.gif"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=[10, 20, 1000, 10], loop=0,
                   comment=b"made here", optimize=False)  # fmt: skip
    assert gif_delays(src) == (1, 2, 100, 1)
    frames[0].save(tmp_path / "still.gif")  # no Graphic Control Extension
    assert gif_delays(tmp_path / "still.gif") == (0,)
    data = src.read_bytes()
    (tmp_path / "cut.gif").write_bytes(data[: data.index(b"\x21\xf9\x04", len(data) // 2)])
    assert gif_delays(tmp_path / "cut.gif") in ((1, 2), (1, 2, 100))
    frames[0].save(tmp_path / "a.png")
    assert gif_delays(tmp_path / "a.png") is None
    from classsr_cli.io.video import frame_delays

    F = Fraction
    assert frame_delays(src, "GIF") == (F(1, 100), F(2, 100), F(1), F(1, 100))
    for kind, suffix in (("PNG", ".png"), ("WEBP", ".webp")):
        anim = tmp_path / f"anim{suffix}"
        frames[0].save(anim, save_all=True, append_images=frames[1:], duration=[0, 7, 1000, 33], loop=0)
        assert frame_delays(anim, kind) == (0, F(7, 1000), F(1), F(33, 1000)), kind
    assert frame_delays(tmp_path / "a.png", "PNG") is None  # a still PNG: no frame control chunks


@pytest.mark.parametrize("kind", ["gif", "apng", "webp"])
def test_frames_of_10_ms_or_less_are_timed_as_browsers_show_them(
    tiny_model: torch.nn.Module, tmp_path: Path, kind: str
) -> None:
    """Browsers show a frame of an animated GIF, APNG or WebP that says 10 ms or less for 100 ms; ffmpeg reads a GIF's
    10 ms as 10 ms and an APNG's 0 at 15 frames a second and its 10 ms as 10 ms (a WebP's as browsers, but the last
    one's duration as stored): such an animation comes out of ``classsr video`` as it plays in a browser (a GIF's
    video 10 times as fast before), with a note; the GIF and WebP outputs alike, and a part (--start, --duration) is
    cut on that clock; frames of 20 ms, which browsers show so, are kept."""
    from PIL import Image

    from classsr_cli.io.video import probe

    frames = [Image.new("RGB", (32, 24), (40 * i, 90, 200 - 40 * i)) for i in range(4)]
    src = tmp_path / f"fast.{'png' if kind == 'apng' else kind}"
    short = [0, 10, 50, 10] if kind != "gif" else [10, 10, 50, 10]
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=short, loop=0,
                   **({"lossless": True} if kind == "webp" else {}))  # fmt: skip
    info = probe(src)
    assert (info.duration, info.fps) == (pytest.approx(0.35), pytest.approx(4 / 0.35))
    fast = EncodeOptions(preset="ultrafast")
    res = upscale_video(tiny_model, src, tmp_path / "out.mp4", options=fast)
    name = {"gif": "GIF", "apng": "APNG", "webp": "WebP"}[kind]
    assert f"3 of the {name}'s 4 frames say 10 ms or less, which browsers show for 100 ms: timed so" in res.notes
    assert frame_times(tmp_path / "out.mp4") == pytest.approx([0.0, 0.1, 0.2, 0.25])
    for ext in (".gif", ".webp"):
        upscale_video(tiny_model, src, tmp_path / f"out{ext}", options=fast)
        assert played(tmp_path / f"out{ext}")[1] == [100, 100, 50, 100], ext
    # A part is asked for on that clock too: from 0.1 s the frames starting at 0.1 and 0.2.
    part = upscale_video(tiny_model, src, tmp_path / "part.mp4", options=fast, start=0.1, length=0.15)
    assert part.frames == 2 and frame_times(tmp_path / "part.mp4") == pytest.approx([0.0, 0.1])
    upscale_video(tiny_model, src, tmp_path / "part.webp", options=fast, start=0.2)
    assert played(tmp_path / "part.webp")[1] == [50, 100]
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=20, loop=0,
                   **({"lossless": True} if kind == "webp" else {}))  # fmt: skip
    assert probe(src).browser_timing is None
    res = upscale_video(tiny_model, src, tmp_path / "same.mp4", options=fast)
    assert frame_times(tmp_path / "same.mp4") == pytest.approx([0.0, 0.02, 0.04, 0.06])
    assert not [n for n in res.notes if "browsers" in n]


@pytest.mark.parametrize(("ext", "rate", "least"), [(".gif", 60, "1/50"), (".webp", 120, "11/1000"),
                                                     (".apng", 120, "11/1000")])
def test_an_animation_from_a_fast_video_has_no_frame_browsers_would_slow(
    tiny_model: torch.nn.Module, tmp_path: Path, ext: str, rate: int, least: str
) -> None:
    """Browsers show a frame of 10 ms or less for 100 ms, and a GIF counts hundredths: a 60 frames/s clip's GIF had
    every third frame at one hundredth (a 1 s clip played 2.8 s), a 120 frames/s clip's WebP every frame. Frames
    closer than 20 ms (GIF) or 11 ms (WebP, APNG) to the last one kept are left out, the animation as long as the
    clip (its last frame holding to the end), with a note; a 30 frames/s clip into a GIF keeps every frame."""
    from classsr_cli.io.video import frame_delays

    src = tmp_path / f"fast{rate}.mp4"
    ff("-f", "lavfi", "-i", f"testsrc2=size=48x32:rate={rate}:duration=1", "-c:v", "libx264", "-crf", "10", src)
    out = tmp_path / f"out{ext}"
    res = upscale_video(tiny_model, src, out, options=EncodeOptions(preset="ultrafast"))
    durations = frame_delays(out, {".gif": "GIF", ".webp": "WEBP", ".apng": "PNG"}[ext])
    assert durations is not None and min(durations) >= Fraction(least) and sum(durations) == pytest.approx(1.0, abs=0.011)
    assert len(durations) < rate and any(f"runs at {rate} frames/s" in n for n in res.notes), (durations, res.notes)
    slow = tmp_path / "slow.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=size=48x32:rate=30:duration=1", "-c:v", "libx264", "-crf", "10", slow)
    res = upscale_video(tiny_model, slow, tmp_path / "slow.gif", options=EncodeOptions(preset="ultrafast"))
    delays = frame_delays(tmp_path / "slow.gif", "GIF")
    assert delays is not None and len(delays) == 30 and not [n for n in res.notes if "frames/s" in n]
    asked = upscale_video(tiny_model, slow, tmp_path / "fps.gif", options=EncodeOptions(fps=Fraction(60)))
    assert any(n.startswith("--fps 60 frames/s: a .gif frame shorter than 20 ms") for n in asked.notes), asked.notes


def test_an_animation_from_a_video_drops_its_audio_and_subtitles_and_is_not_resumable(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    """A clip with audio and subtitles into a GIF: one note for each (a GIF holds neither), and it plays forever;
    --resume is refused (a GIF's one palette is made from every frame), before anything is written."""
    res = upscale_video(tiny_model, clips["subs"], tmp_path / "o.gif", options=EncodeOptions())
    assert "1 audio stream(s) dropped: gif holds none" in res.notes
    assert "1 subtitle stream(s) dropped: gif holds none" in res.notes
    assert played(tmp_path / "o.gif")[2] == 0
    with pytest.raises(ConfigError, match=r"--resume writes .mp4, .mov, .mkv or .webm; a .webp is written in one go"):
        upscale_video(tiny_model, clips["subs"], tmp_path / "o.webp", options=EncodeOptions(), resume=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.gif"]


@pytest.mark.slow
def test_encoder_limits_are_explained(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tiny_model_path: Path, tmp_path: Path
) -> None:
    from fractions import Fraction


    # libx264 has no RGB: ffmpeg would turn rgb24 into yuv444p without a word.
    r = runner.invoke(app, ["video", str(clips["audio"]), str(tmp_path / "o.mp4"), "--model", str(tiny_model_path),
                            "--pix-fmt", "rgb24"])  # fmt: skip
    assert r.exit_code == 2 and "libx264 cannot encode rgb24; it takes yuv420p" in r.output, r.output
    assert "--codec libx264rgb" in r.output and not (tmp_path / "o.mp4").exists() and no_partials(tmp_path)
    # Wider than H.264 goes: the encoder's error comes with what to do instead.
    writer = VideoWriter(tmp_path / "wide.mp4", 16400, 16, time_base=Fraction(1, 10))
    with pytest.raises(VideoError, match=r"invalid width x height.*try --codec libx265 or a \.webm output"):
        writer.write(np.zeros((16, 16400, 3), np.uint8), 0)
        writer.close()
    writer.abort()
    # An encoder that lists what it takes after its error (dnxhd: 70 profiles) is quoted at its first error line.
    r = runner.invoke(app, ["video", str(clips["audio"]), str(tmp_path / "d.mov"), "--model", str(tiny_model_path),
                            "--codec", "dnxhd"])  # fmt: skip
    assert r.exit_code == 1 and "encoder failed (ffmpeg exit 234): video parameters incompatible with DNxHD" in r.stderr
    # An --encoder-opt the codec takes otherwise (tune=film is x264's, not VP9's) is named as the user gave it.
    writer = VideoWriter(tmp_path / "t.webm", 16, 16, time_base=Fraction(1, 10),
                         options=EncodeOptions(extra=(("tune", "film"),)))
    with pytest.raises(VideoError) as e:
        writer.write(np.zeros((16, 16, 3), np.uint8), 0)
        writer.close()
    writer.abort()
    assert str(e.value).endswith("in 'film' (--encoder-opt tune=film: libvpx-vp9 takes it otherwise, or not at all)")
    # PCM audio goes into .mp4 as AAC (ffmpeg's ISO ipcm plays almost nowhere), and into .mkv as it is.
    pcm = tmp_path / "pcm.mov"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=0.4", "-f", "lavfi", "-i", "sine=duration=0.4",
       "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", pcm)  # fmt: skip
    fast = EncodeOptions(preset="ultrafast")
    res = upscale_video(tiny_model, pcm, tmp_path / "pcm.mp4", options=fast)
    assert res.notes == ["audio re-encoded to aac: mp4 cannot hold pcm_s16le as it is"]
    assert [s.codec for s in probe(tmp_path / "pcm.mp4").audio] == ["aac"]
    assert upscale_video(tiny_model, pcm, tmp_path / "pcm.mkv", options=fast).notes == []
    assert [s.codec for s in probe(tmp_path / "pcm.mkv").audio] == ["pcm_s16le"]


@pytest.mark.slow
def test_cli_output_size(clips: dict[str, Path], tiny_model_path: Path, tmp_path: Path) -> None:
    """--height/--width give the output that size (the factor from the frame as shown), named _h/_w in a folder."""
    r = runner.invoke(app, ["video", str(clips["audio"]), f"{tmp_path}/", "--model", str(tiny_model_path),
                            "--height", "180", "--preset", "ultrafast", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["output"] == str(tmp_path / "cfr_audio_h180.mp4") and rec["output_size"] == [240, 180]
    made = probe(tmp_path / "cfr_audio_h180.mp4")
    assert rec["scale"] == 3.75 and (made.width, made.height) == (240, 180)
    assert "note: x3.75 (--height 180) is not a native scale: running the x4 model" in r.stderr
    # A clip stored 64x48 and shown turned 90 degrees: --width counts the width as shown (48), so x4.
    r = runner.invoke(app, ["video", str(clips["rot"]), str(tmp_path / "rot.mp4"), "--model", str(tiny_model_path),
                            "--width", "192", "--preset", "ultrafast", "--json"])  # fmt: skip
    assert r.exit_code == 0 and json.loads(r.stdout)["scale"] == 4, r.output
    assert "not a native scale" not in r.stderr
    assert json.loads(r.stdout)["output_size"] == [256, 192] and json.loads(r.stdout)["output_shown"] == [192, 256]
    r = runner.invoke(app, ["video", str(clips["rot"]), str(tmp_path / "rot2.mp4"), "--model", str(tiny_model_path),
                            "--width", "192", "--preset", "ultrafast"])  # fmt: skip
    assert "64x48 -> 256x192 (shown 192x256) " in r.stderr, r.stderr  # the summary says both
    # Above x4 (480p to 2160p is x4.5): the x4 model, then a bicubic enlargement, said; above x16 refused.
    r = runner.invoke(app, ["video", str(clips["audio"]), str(tmp_path / "big.mp4"), "--model", str(tiny_model_path),
                            "--width", "1000", "--preset", "ultrafast", "--json"])  # fmt: skip
    assert r.exit_code == 0 and json.loads(r.stdout)["output_size"] == [1000, 750], r.output
    assert "note: x15.6 (--width 1000) is not a native scale: running the x4 model, then a bicubic enlargement" in r.stderr
    made = probe(tmp_path / "big.mp4")
    assert (made.width, made.height) == (1000, 750)
    r = runner.invoke(app, ["video", str(clips["audio"]), str(tmp_path / "bigger.mp4"), "--model", str(tiny_model_path),
                            "--width", "1100", "--json"])  # fmt: skip
    assert r.exit_code == 1 and f"{clips['audio']}: 64x48 to --width 1100 is x17.2, more than two x4 runs give (x16)" in r.stderr
    assert json.loads(r.stdout)["error"].endswith("ask for less")  # the --json record too
    # Pixels 4:3 wide (SAR 4:3): a 64x48 frame shows 85 wide, so --width 256 is x3, and the output shows 256 wide.
    wide = tmp_path / "sar.mp4"
    ff("-i", clips["audio"], "-vf", "setsar=4/3", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-an", wide)
    r = runner.invoke(app, ["video", str(wide), str(tmp_path / "sar_w.mp4"), "--model", str(tiny_model_path),
                            "--width", "256", "--preset", "ultrafast", "--json"])  # fmt: skip
    assert r.exit_code == 0 and json.loads(r.stdout)["scale"] == pytest.approx(256 / 85), r.output
    made = probe(tmp_path / "sar_w.mp4")
    assert made.sar == Fraction(4, 3) and round(made.width * 4 / 3) == 256
    assert json.loads(r.stdout)["output_shown"] == [256, made.height]
    assert rec["output_shown"] is None  # square pixels, not turned: shown as stored


@pytest.mark.slow
def test_start_and_duration_upscale_a_part(clips: dict[str, Path], tiny_model: torch.nn.Module, tiny_model_path: Path,
                                           tmp_path: Path) -> None:
    """--start/--duration: the frames of that part (the same pixels as in a whole run), timestamps from the cut,
    audio cut alike, the start timecode moved on; times as seconds or [HH:]MM:SS."""
    from classsr_cli.cli.video import seconds_of

    exact = EncodeOptions(codec="ffv1", pix_fmt="yuv444p")
    steady = TemporalOptions(hysteresis=0.0)  # each frame routed on its own, as in the whole run
    whole = upscale_video(tiny_model, clips["audio"], tmp_path / "whole.mkv", options=exact, temporal=steady)
    part = upscale_video(tiny_model, clips["audio"], tmp_path / "part.mkv", options=exact, temporal=steady,
                         start=0.25, length=0.25)  # fmt: skip
    assert (whole.frames, part.frames, part.start, part.length) == (15, 5, 0.25, 0.25)
    assert part.notes == ["audio re-encoded to aac: cut where the part starts and ends"]  # a copy starts before it
    assert frame_times(tmp_path / "part.mkv") == pytest.approx([0, 0.05, 0.1, 0.15, 0.2], abs=1e-3)
    assert audio_seconds(tmp_path / "part.mkv") == pytest.approx(0.25, abs=0.03)
    assert frame_times(tmp_path / "part.mkv", "a")[0] == pytest.approx(0, abs=0.03)  # with the frames, not --start late
    with VideoReader(probe(tmp_path / "whole.mkv")) as a, VideoReader(probe(tmp_path / "part.mkv")) as b:
        assert np.array_equal(list(a)[5].rgb, next(iter(b)).rgb)  # the source's frame at 0.25 s
    # MPEG-TS has no index (ffmpeg's input seek lands on the next keyframe): the same frames all the same.
    ts = tmp_path / "src.ts"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=20:duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p",
       "-g", "40", "-output_ts_offset", "1.4", "-f", "mpegts", ts)  # fmt: skip
    upscale_video(tiny_model, ts, tmp_path / "ts_whole.mkv", options=exact, temporal=steady)
    part = upscale_video(tiny_model, ts, tmp_path / "ts_part.mkv", options=exact, temporal=steady, start=1.3,
                         length=0.5)  # fmt: skip
    with VideoReader(probe(tmp_path / "ts_whole.mkv")) as a, VideoReader(probe(tmp_path / "ts_part.mkv")) as b:
        whole_frames, part_frames = [f.rgb for f in a], [f.rgb for f in b]
    assert part.frames == 10 and all(np.array_equal(x, y) for x, y in zip(whole_frames[26:36], part_frames, strict=True))
    tc = tmp_path / "tc.mov"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=20:duration=1", "-timecode", "01:00:00:00", "-c:v", "libx264",
       "-pix_fmt", "yuv420p", tc)  # fmt: skip
    r = runner.invoke(app, ["video", str(tc), str(tmp_path / "cut.mov"), "--model", str(tiny_model_path), "--start",
                            "0:00.5", "--duration", "0.25", "--preset", "ultrafast", "--json"])  # fmt: skip
    assert r.exit_code == 0 and json.loads(r.stdout)["frames"] == 5, r.output
    assert probe(tmp_path / "cut.mov").timecode == "01:00:00:10"  # 0.5 s at 20 frames a second later
    from classsr_cli.io.video import _advance_timecode

    assert _advance_timecode("01:00:00:00", 2.5, 25.0) == "01:00:02:13"  # the first frame at or after 2.5 s: 63
    r = runner.invoke(app, ["video", str(tc), str(tmp_path / "late.mov"), "--model", str(tiny_model_path),
                            "--start", "5"])  # fmt: skip
    assert r.exit_code == 1 and "--start 5 s is past its end (1.00 s)" in r.stderr
    assert (seconds_of("90", "--start"), seconds_of("1:30", "--start"), seconds_of("01:01:30.5", "--start")) == (
        90, 90, 3690.5)
    for bad in ("1:75", "x", "-3", "1::2", "nan", "inf", "1_0", ""):
        with pytest.raises(ClassSRError, match="takes seconds or"):
            seconds_of(bad, "--start")


def test_output_is_optional_and_o_names_it_as_upscale_does(clips: dict[str, Path], tiny_model_path: Path,
                                                            tmp_path: Path) -> None:
    """Without OUTPUT the video goes beside its input as INPUT_STEM_x4.EXT (it was a missing-argument error);
    -o/--output names it as upscale's does; both at once is a usage error."""
    import shutil

    src = tmp_path / "clip.mp4"
    shutil.copy(clips["audio"], src)
    r = runner.invoke(app, ["video", str(src), "--model", str(tiny_model_path), "--preset", "ultrafast"])
    assert r.exit_code == 0 and (tmp_path / "clip_x4.mp4").is_file(), r.output
    assert r.stdout.strip() == str(tmp_path / "clip_x4.mp4")
    r = runner.invoke(app, ["video", str(src), "-o", str(tmp_path / "o.mkv"), "--model", str(tiny_model_path),
                            "--preset", "ultrafast"])  # fmt: skip
    assert r.exit_code == 0 and (tmp_path / "o.mkv").is_file(), r.output
    r = runner.invoke(app, ["video", str(src), str(tmp_path / "a.mp4"), "-o", str(tmp_path / "b.mp4")])
    assert r.exit_code == 2 and "OUTPUT is given twice" in r.stderr and not (tmp_path / "a.mp4").exists()
    for empty in (["-o", ""], [""]):  # "$OUT" unset: refused, not written beside the input
        r = runner.invoke(app, ["video", str(src), *empty, "--model", str(tiny_model_path)])
        assert r.exit_code == 2 and "OUTPUT is empty" in r.stderr, r.output


def test_progress_lines_where_stderr_is_not_a_terminal(clips: dict[str, Path], tiny_model_path: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Under nohup, CI or `2>log` the bar is off: a plain line every ``_Progress.every`` seconds says how far the
    run is (it printed nothing until the end)."""
    from classsr_cli.cli import video as video_cli

    monkeypatch.setattr(video_cli._Progress, "every", 0.0)
    r = runner.invoke(app, ["video", str(clips["audio"]), str(tmp_path / "o.mp4"), "--model", str(tiny_model_path),
                            "--preset", "ultrafast"])  # fmt: skip
    assert r.exit_code == 0, r.output
    lines = [line for line in r.stderr.splitlines() if line.startswith("frames ")]
    assert len(lines) >= 2 and " frames/s, 0:00:0" in lines[-1] and "elapsed" in lines[-1]
    assert "(100%)" in lines[-1] or "ETA" in lines[0]


def test_a_pixel_aspect_ratio_with_large_terms_is_kept_exactly(clips: dict[str, Path], tiny_model_path: Path,
                                                               tmp_path: Path) -> None:
    """setsar reduced ratios to terms of at most 100: 127:101 came out 83:66, and 964:963 (ffmpeg's scaler's, from
    321x241) 1:1, while the summary said the shape it should have."""
    src = tmp_path / "sar.mp4"
    ff("-i", clips["audio"], "-vf", "setsar=127/101:max=1000", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-an", src)
    assert probe(src).sar == Fraction(127, 101)
    r = runner.invoke(app, ["video", str(src), str(tmp_path / "o.mp4"), "--model", str(tiny_model_path), "-x", "2",
                            "--preset", "ultrafast", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    made = probe(tmp_path / "o.mp4")
    assert made.sar == Fraction(127, 101) and json.loads(r.stdout)["output_shown"] == [round(made.width * 127 / 101),
                                                                                      made.height]


# ---------------------------------------------------------------------------------------------------- resume


def stop_after(n: int) -> Callable[[int, int | None], None]:
    def stop(done: int, total: int | None) -> None:
        if done == n:
            raise KeyboardInterrupt

    return stop


def test_a_video_reports_its_scenes_and_a_continued_run_the_same(
    tiny_model: torch.nn.Module, tiny_model_path: Path, tmp_path: Path
) -> None:
    """Cuts split a video into scenes, each with its frames' patches and FLOPs, which add up to the video's; a run
    stopped and continued, at the cut or a frame either side of it, reports the same scenes; the report lists them."""
    from test_scenes import clip

    src = tmp_path / "cut.mkv"
    subprocess.run([FF, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x48", "-r", "10", "-i", "-",
                    "-c:v", "ffv1", str(src)], input=np.stack(clip((1, 4, 1), (2, 5, 1))).tobytes(), check=True)  # fmt: skip
    exact, steady = EncodeOptions(codec="ffv1", pix_fmt="yuv444p"), TemporalOptions(hysteresis=0.0)
    whole = upscale_video(tiny_model, src, tmp_path / "whole.mkv", options=exact, temporal=steady).to_dict()
    scenes = whole["scenes"]
    assert [(s["first_frame"], s["frames"], s["start"]) for s in scenes] == [(0, 4, 0.0), (4, 5, 0.4)]
    for k in ("light", "medium", "heavy"):
        assert sum(s["patches"][k] for s in scenes) == whole["patches"][k]
    for k in ("used", "whole"):
        assert sum(s["flops"][k] for s in scenes) == whole["flops"]["real"][k]
    for stop in (3, 4, 5):
        out = tmp_path / f"stopped{stop}.mkv"
        kw: dict[str, Any] = {"options": exact, "temporal": steady, "resume": True, "chunk_frames": 1}
        with pytest.raises(KeyboardInterrupt):
            upscale_video(tiny_model, src, out, progress=stop_after(stop), **kw)
        done = upscale_video(tiny_model, src, out, **kw)
        assert done.resumed == stop and done.to_dict()["scenes"] == scenes, stop
    r = runner.invoke(app, ["video", str(src), str(tmp_path / "cli.mkv"), "--model", str(tiny_model_path)])
    assert r.exit_code == 0, r.output
    assert re.search(r"^scene 1: from 0\.00 s \(frame 0\), 4 frames: light [\d.]+% · medium [\d.]+% · heavy [\d.]+% · "
                     r"FLOPs saved -?[\d.]+%$", r.stderr, re.M), r.stderr
    assert "scene 2: from 0.40 s (frame 4), 5 frames: " in r.stderr


def test_many_scenes_are_summed_up_in_one_line_naming_the_dearest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Up to 10 scenes get a line each; more, one line: their range, the median, and the three that saved least."""
    import io

    from rich.console import Console

    from classsr_cli.cli import video as cli_video

    def scene(i: int, saved: float) -> dict[str, Any]:
        return {"first_frame": 6 * i, "frames": 6, "start": 0.25 * i, "patches": {"light": 1, "medium": 1, "heavy": 0},
                "flops": {"used": 0, "whole": 0, "saved_vs_whole": saved}}

    out = io.StringIO()
    monkeypatch.setattr(cli_video, "err", Console(file=out, width=300))
    cli_video._scenes([scene(i, 0.9 - 0.01 * (i % 5)) for i in range(12)])
    assert out.getvalue().strip() == ("scenes: 12 (cuts found), FLOPs saved 86.0% to 90.0% (median 89.0%); least: "
                                      "scene 5 from 1.00 s (86.0%), scene 10 from 2.25 s (86.0%), scene 4 from 0.75 s "
                                      "(87.0%); --json lists each")
    out.truncate(0)
    cli_video._scenes([scene(i, 0.5) for i in range(3)])
    assert len(out.getvalue().strip().splitlines()) == 3


def test_hysteresis_starts_afresh_at_a_cut(tmp_path: Path) -> None:
    """At a margin of 1 no patch of the paper model switches class within a scene, so the scene after a cut (a smooth
    gradient, then blocks of noise) keeps the classes its own first frame is given, as a run of that scene alone does, not
    those of the scene before."""
    from classsr_cli import zoo

    y, x = np.mgrid[0:48, 0:100]
    smooth = np.stack([x * 2 + 20, y * 3 + 40, x + y + 60], -1).astype(np.uint8)
    noise = np.kron(np.random.default_rng(0).integers(0, 256, (12, 25, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    src, second = tmp_path / "cut.mkv", tmp_path / "second.mkv"
    for path, frames in ((src, [smooth[:, k : k + 64] for k in range(4)] + [noise[:, k : k + 64] for k in range(5)]),
                         (second, [noise[:, k : k + 64] for k in range(5)])):
        subprocess.run([FF, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x48", "-r", "10", "-i",
                        "-", "-c:v", "ffv1", str(path)], input=np.stack(frames).tobytes(), check=True)  # fmt: skip
    paper = zoo.load("classsr_fsrcnn_x4", 4).net
    held, exact = TemporalOptions(hysteresis=1.0), EncodeOptions(codec="ffv1", pix_fmt="yuv444p")
    both = upscale_video(paper, src, tmp_path / "both.mkv", options=exact, temporal=held)
    alone = upscale_video(paper, second, tmp_path / "alone.mkv", options=exact, temporal=held)
    assert [s.frames for s in both.scenes] == [4, 5] and both.scenes[0].counts != list(alone.counts)
    assert both.scenes[1].counts == list(alone.counts) and both.switches == alone.switches == 0
    assert both.compared == 3 * 6 + 4 * 6 and alone.compared == 4 * 6  # a cut's frame is compared with none


def test_resume_continues_a_stopped_run_with_the_same_frames(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stopped mid-way keeps its finished chunks; run again, it decodes past them and goes on. The output has
    the frames, timestamps, audio and totals of a run never stopped."""
    from classsr_cli.video import resume_folder

    exact = EncodeOptions(codec="ffv1", pix_fmt="yuv444p")
    steady = TemporalOptions(hysteresis=0.0)  # each frame routed on its own: the pixels cannot depend on the stop
    straight = upscale_video(tiny_model, clips["audio"], tmp_path / "straight.mkv", options=exact, temporal=steady)
    out = tmp_path / "o.mkv"
    kw: dict[str, Any] = {"options": exact, "temporal": steady, "resume": True, "chunk_frames": 4}
    with pytest.raises(KeyboardInterrupt):
        upscale_video(tiny_model, clips["audio"], out, progress=stop_after(10), **kw)
    folder = resume_folder(out)
    assert not out.exists() and folder == tmp_path / ".o.mkv.resume"
    state = json.loads((folder / "state.json").read_text())
    assert [c["file"] for c in state["chunks"]] == ["00000.nut", "00001.nut"] and state["totals"]["frames"] == 8
    assert sorted(p.name for p in folder.iterdir()) == ["00000.nut", "00001.nut", "state.json"]  # the third: gone
    seen: list[int] = []
    done = upscale_video(tiny_model, clips["audio"], out, progress=lambda d, t: seen.append(d), **kw)
    assert (done.frames, done.resumed, seen[0], seen[-1]) == (15, 8, 1, 7)  # only frames 8-14 were upscaled again
    assert not folder.exists() and no_partials(tmp_path)
    assert frame_times(out) == frame_times(tmp_path / "straight.mkv")
    assert audio_seconds(out) == pytest.approx(audio_seconds(tmp_path / "straight.mkv"), abs=0.03)
    with VideoReader(probe(out)) as a, VideoReader(probe(tmp_path / "straight.mkv")) as b:
        assert all(np.array_equal(x.rgb, y.rgb) for x, y in zip(a, b, strict=True))
    assert (done.counts, done.flops, done.computed) == (straight.counts, straight.flops, straight.computed)
    # Stopped after the last chunk, while joining: nothing left to upscale, the join runs again.
    from classsr_cli import video as video_module

    out.unlink()

    def broken(*a: Any, **k: Any) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(video_module, "join_chunks", broken)
        with pytest.raises(KeyboardInterrupt):
            upscale_video(tiny_model, clips["audio"], out, **kw)
    assert len(json.loads((folder / "state.json").read_text())["chunks"]) == 4 and no_partials(tmp_path)
    joined = upscale_video(tiny_model, clips["audio"], out, progress=lambda d, t: pytest.fail("nothing to upscale"), **kw)
    assert (joined.frames, joined.resumed, joined.counts) == (15, 15, straight.counts)
    assert frame_times(out) == frame_times(tmp_path / "straight.mkv") and not folder.exists()
    # Stopped before its first chunk was finished: nothing kept, no folder left.
    out.unlink()
    with pytest.raises(KeyboardInterrupt):
        upscale_video(tiny_model, clips["audio"], out, progress=stop_after(2), **kw)
    assert not folder.exists()


def test_a_resumed_run_starts_at_a_keyframe_and_writes_the_frames_of_a_run_never_stopped(
    tiny_model: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source with a keyframe every 3 frames and B-frames: the resumed run starts decoding at the keyframe before
    the first frame left (the frame before it, which primes the scene cut, included), and its output has the frames
    and timestamps of a run never stopped."""
    from classsr_cli.io import video as video_io

    src = tmp_path / "gop3.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1.5", "-c:v", "libx264", "-g", "3", "-bf", "2",
       "-pix_fmt", "yuv420p", src)  # fmt: skip
    exact = EncodeOptions(codec="ffv1", pix_fmt="yuv444p")
    steady = TemporalOptions(hysteresis=0.0)
    upscale_video(tiny_model, src, tmp_path / "straight.mkv", options=exact, temporal=steady)
    out = tmp_path / "o.mkv"
    kw: dict[str, Any] = {"options": exact, "temporal": steady, "resume": True, "chunk_frames": 4}
    with pytest.raises(KeyboardInterrupt):
        upscale_video(tiny_model, src, out, progress=stop_after(10), **kw)
    landed: list[tuple[int, int]] = []
    seek = video_io.keyframe_seek
    monkeypatch.setattr(video_io, "keyframe_seek", lambda info, first, **k: (
        landed.append((first, p.at)) if (p := seek(info, first, **k)) else None) or p)
    done = upscale_video(tiny_model, src, out, **kw)
    assert done.resumed == 8 and landed == [(7, 6)]  # frame 7 primes frame 8's cut: decoding from keyframe 6
    assert frame_times(out) == frame_times(tmp_path / "straight.mkv")
    with VideoReader(probe(out)) as a, VideoReader(probe(tmp_path / "straight.mkv")) as b:
        assert all(np.array_equal(x.rgb, y.rgb) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_resume_joins_chunks_of_a_frame_or_two_from_an_encoder_with_b_frames(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tmp_path: Path, codec: str
) -> None:
    """Chunks of one or two frames (a slide show's 2 s) from an encoder with B-frames begin with decode times a
    fraction of the source's tick apart, which an MP4 track's clock rounded to one: the join failed (Non-monotonic
    DTS). Every frame is kept at its time, in the order a Matroska join of the same chunks shows them."""
    def decoded(path: Path) -> bytes:
        return subprocess.run([FF, "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24",
                               "-"], capture_output=True, check=True, timeout=120).stdout  # fmt: skip

    opts = EncodeOptions(codec=codec, preset="medium")  # B-frames (ultrafast has none)
    for n in (1, 2):
        out, mkv = tmp_path / f"{n}.mp4", tmp_path / f"{n}.mkv"
        for path in (out, mkv):
            res = upscale_video(tiny_model, clips["audio"], path, options=opts, resume=True, chunk_frames=n)
            assert res.frames == 15
        assert frame_times(out) == pytest.approx([i / 20 for i in range(15)], abs=1e-3)
        assert decoded(out) == decoded(mkv)


def test_svt_av1_gets_the_frame_rate_from_a_frame_or_two(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    """SVT-AV1 refuses to start without a frame rate it can take, and ffmpeg cannot guess one from a frame or two
    (a short video, a resumable run's chunk of one or two frames): the frames' pipe says the source's."""
    if encoder_pix_fmts("libsvtav1") is None:
        pytest.skip("this ffmpeg has no libsvtav1")
    one = tmp_path / "one.mp4"
    ff("-i", clips["audio"], "-frames:v", "1", "-an", "-c:v", "libx264", one)
    opts = EncodeOptions(codec="libsvtav1", preset="12")
    res = upscale_video(tiny_model, one, tmp_path / "one.mkv", options=opts)
    assert res.frames == 1 and len(frame_times(tmp_path / "one.mkv")) == 1
    for n in (1, 2):
        out = tmp_path / f"chunks{n}.mp4"
        res = upscale_video(tiny_model, clips["audio"], out, options=opts, resume=True, chunk_frames=n)
        assert res.frames == 15 and frame_times(out) == pytest.approx([i / 20 for i in range(15)], abs=1e-3)


def test_an_animated_avif_is_read_as_its_animation_not_its_still(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """ffmpeg lists an animated AVIF's still image as a first video stream, marked default as the animation is:
    the animation is upscaled, every frame at its time, and the still is not said to be left out."""
    from PIL import Image

    frames = [Image.fromarray(np.full((48, 64, 3), c, np.uint8)) for c in (0, 80, 160, 240)]
    src = tmp_path / "anim.avif"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100)
    info = probe(src)
    assert info.fps == 10.0 and [s.kind for s in info.streams] == ["video"]
    res = upscale_video(tiny_model, src, tmp_path / "out.mkv", options=EncodeOptions(preset="ultrafast"))
    assert res.frames == 4 and not [n for n in res.notes if "left out" in n]
    assert frame_times(tmp_path / "out.mkv") == pytest.approx([0, 0.1, 0.2, 0.3], abs=1e-3)


def test_fps_writes_a_constant_rate_as_long_as_the_source(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tiny_model_path: Path, tmp_path: Path
) -> None:
    """--fps: a variable-rate source written at a constant rate, frames repeated or dropped to keep their time, the
    video as long as its source (-r with -fps_mode cfr ran two frames past its end), said in a note; NTSC rates
    written as such; refused with --resume, and an unreadable rate a usage error."""
    out = tmp_path / "cfr.mp4"
    res = upscale_video(tiny_model, clips["vfr"], out, options=EncodeOptions(preset="ultrafast", fps=Fraction(10)))
    times = frame_times(out)
    assert times == pytest.approx([i / 10 for i in range(len(times))], abs=1e-3)
    assert probe(out).duration == pytest.approx(probe(clips["vfr"]).duration, abs=0.06)
    assert any(n.startswith("written at a constant 10 frames/s (--fps; the source's") for n in res.notes)
    with pytest.raises(ConfigError, match="--fps retimes the video as a whole: it does not combine with --resume"):
        upscale_video(tiny_model, clips["vfr"], tmp_path / "r.mp4", options=EncodeOptions(fps=Fraction(10)), resume=True)
    r = runner.invoke(app, ["video", str(clips["audio"]), str(tmp_path / "ntsc.mp4"), "--fps", "29.97", "--preset",
                            "ultrafast", "--model", str(tiny_model_path)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert probe(tmp_path / "ntsc.mp4").fps == pytest.approx(30000 / 1001, abs=1e-3)
    r = runner.invoke(app, ["video", str(clips["audio"]), str(tmp_path / "x.mp4"), "--fps", "fast"])
    assert r.exit_code == 2 and "--fps takes a frame rate above 0 and up to 1000" in r.stderr


def test_mpeg2_gets_a_time_base_of_one_frame(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """MPEG-1/2 takes a time base of one frame at its rate, not the source's clock ("MPEG-1/2 does not support
    12288/1 fps"): the frames go at the source's rate, constant, whole or in --resume chunks."""
    src = tmp_path / "s25.mp4"
    ff("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=0.4", "-c:v", "libx264", "-pix_fmt", "yuv420p", src)
    opts = EncodeOptions(codec="mpeg2video")
    for name, kw in (("whole.mkv", {}), ("whole.mp4", {}), ("chunks.mp4", {"resume": True, "chunk_frames": 2})):
        res = upscale_video(tiny_model, src, tmp_path / name, options=opts, **kw)
        assert res.frames == 10 and frame_times(tmp_path / name) == pytest.approx([i / 25 for i in range(10)], abs=1e-3)
    # DV, the other broadcast codec, takes a few sizes: its refusal says which, without ffmpeg's table.
    with pytest.raises(VideoError, match=r"Found no DV profile for 256x192 yuv420p video\. \(DV takes 720x480"):
        upscale_video(tiny_model, src, tmp_path / "dv.mkv", options=EncodeOptions(codec="dvvideo"))


def test_resume_refuses_other_settings_and_starts_over_with_overwrite(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    from classsr_cli.errors import ConfigError
    from classsr_cli.video import resume_folder

    out = tmp_path / "o.mp4"
    opts = EncodeOptions(preset="ultrafast")
    with pytest.raises(KeyboardInterrupt):
        upscale_video(tiny_model, clips["audio"], out, options=opts, resume=True, chunk_frames=3,
                      progress=stop_after(7))  # fmt: skip
    # A run of the same output still going elsewhere is refused; once it is gone, its claim is taken over.
    from classsr_cli.errors import OutputError

    other = subprocess.Popen(["sleep", "60"])
    try:
        (resume_folder(out) / "lock").write_text(str(other.pid))
        with pytest.raises(OutputError, match=rf"another run \(process {other.pid}\) is writing this output"):
            upscale_video(tiny_model, clips["audio"], out, options=opts, resume=True, chunk_frames=3)
    finally:
        other.kill()
        other.wait()
    with pytest.raises(ConfigError, match=r"other settings \(--crf\); run the same command to continue it, or add --overwrite to start over"):
        upscale_video(tiny_model, clips["audio"], out, options=replace(opts, crf=30), resume=True, chunk_frames=3)
    # Without --resume the chunks are left alone, and said to be there.
    plain = upscale_video(tiny_model, clips["audio"], out, options=opts)
    assert any(f"a stopped run's chunks are in {resume_folder(out)}" in n for n in plain.notes)
    assert resume_folder(out).is_dir()
    out.unlink()
    again = upscale_video(tiny_model, clips["audio"], out, options=replace(opts, crf=30), resume=True, chunk_frames=3,
                          overwrite=True)  # fmt: skip
    assert (again.resumed, again.frames) == (0, 15) and not resume_folder(out).exists()
    assert frame_times(out) == pytest.approx([i / 20 for i in range(15)], abs=1e-3)
    # A part (--start, --duration): its frames from 0, the audio cut alike, as one encoder writes it.
    part = upscale_video(tiny_model, clips["audio"], tmp_path / "part.mp4", options=opts, resume=True, chunk_frames=2,
                         start=0.25, length=0.25)  # fmt: skip
    assert part.frames == 5 and frame_times(tmp_path / "part.mp4") == pytest.approx([0, 0.05, 0.1, 0.15, 0.2], abs=1e-3)
    assert audio_seconds(tmp_path / "part.mp4") == pytest.approx(0.25, abs=0.03)
    # AVI keeps no frame timestamps: joined chunks of a VFR source would be retimed, so --resume refuses it.
    with pytest.raises(ConfigError, match=r"--resume writes .mp4, .mov, .mkv or .webm; .avi keeps no frame timestamps"):
        upscale_video(tiny_model, clips["audio"], tmp_path / "joined.avi", options=opts, resume=True)
    # A chunk gone or emptied (a disk error, a hand): refused, not joined into a short video; damaged: the join
    # counts the frames, and the chunks stay.
    out.unlink()
    with pytest.raises(KeyboardInterrupt):
        upscale_video(tiny_model, clips["audio"], out, options=opts, resume=True, chunk_frames=3, progress=stop_after(10))
    (resume_folder(out) / "00001.nut").write_bytes(b"")
    with pytest.raises(ConfigError, match="a chunk it lists is missing or empty"):
        upscale_video(tiny_model, clips["audio"], out, options=opts, resume=True, chunk_frames=3)
    out.unlink(missing_ok=True)
    with pytest.raises(KeyboardInterrupt):
        upscale_video(tiny_model, clips["audio"], out, options=opts, resume=True, chunk_frames=3, overwrite=True,
                      progress=stop_after(10))  # fmt: skip
    chunk = resume_folder(out) / "00001.nut"
    chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 3])
    with pytest.raises(VideoError, match=r"gave \d+ frame\(s\) of 15: a chunk in .* is damaged"):
        upscale_video(tiny_model, clips["audio"], out, options=opts, resume=True, chunk_frames=3)
    assert not out.exists() and (resume_folder(out) / "state.json").exists()
    # A stop of a run replacing an output that exists (--overwrite) keeps its chunks as any other does.
    import shutil

    shutil.rmtree(resume_folder(out))  # the damaged chunk: started over, as the error says
    out.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        upscale_video(tiny_model, clips["audio"], tmp_path / "o.mp4", options=opts, resume=True, chunk_frames=3,
                      overwrite=True, progress=stop_after(10))  # fmt: skip
    assert out.read_bytes() == b"old" and len(json.loads((resume_folder(out) / "state.json").read_text())["chunks"]) == 3
    out.unlink()
    # A dry run says a stopped run is there.
    tiny_path = tmp_path / "tiny_x4.safetensors"
    from classsr_cli.checkpoint import save_checkpoint

    save_checkpoint(tiny_model, tiny_path)
    cli = ["video", str(clips["audio"]), str(out), "--model", str(tiny_path), "--preset", "ultrafast"]
    r = runner.invoke(app, [*cli, "--dry-run"])
    assert r.exit_code == 0 and "note: a stopped run's chunks hold" in r.stderr, r.output


def test_resumed_chunks_keep_the_last_frame_s_duration(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """The chunks of a ProRes run store no packet duration, so the joined video's last frame took one tick of their
    clock, 0 in the .mov track: the muxer mostly gave it the frame before's, but with chunks of two frames a frame was
    lost (9 of 10, an error). Now each frame lasts a frame, as without --resume, in chunks of 2 or 3 frames; and
    B-frames keep their order."""
    src = tmp_path / "src.mov"
    ff("-f", "lavfi", "-i", "testsrc2=size=48x40:rate=10:duration=1", "-c:v", "prores_ks", src)

    def packets(path: Path) -> list[tuple[int, int, int]]:  # (dts, pts, duration) of each video packet
        out = subprocess.run([FF, "-v", "error", "-i", str(path), "-map", "0:v", "-c", "copy", "-f", "framecrc", "-"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        return [(int(f[1]), int(f[2]), int(f[3])) for f in (ln.split(",") for ln in out.splitlines() if ln[0] != "#")]

    opts = EncodeOptions(codec="prores_ks")
    upscale_video(tiny_model, src, tmp_path / "one.mov", options=opts)
    assert [d for _, _, d in packets(tmp_path / "one.mov")] == [1024] * 10  # 10 fps in the source's 1/10240
    for n in (2, 3):
        res = upscale_video(tiny_model, src, tmp_path / f"chunks{n}.mov", options=opts, resume=True, chunk_frames=n)
        assert res.frames == 10 and [d for _, _, d in packets(tmp_path / f"chunks{n}.mov")] == [1024] * 10, n
    # H.264 with B-frames: decode order differs from display order, and the join keeps both (one version of this
    # fix gave every packet its decode time as its display time, showing the frames out of order).
    h264 = EncodeOptions(preset="medium")
    whole = packets(upscale_video(tiny_model, src, tmp_path / "one.mp4", options=h264).output)
    joined = packets(upscale_video(tiny_model, src, tmp_path / "chunks.mp4", options=h264, resume=True,
                                   chunk_frames=5).output)  # fmt: skip
    assert any(p != d for d, p, _ in joined) and sorted(p for _, p, _ in joined) == sorted(p for _, p, _ in whole)


def test_resume_keeps_rotation_audio_subtitles_and_the_class_map(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tiny_model_path: Path, tmp_path: Path
) -> None:
    """The joined chunks carry what one encoder would: the display rotation, audio, subtitles; the class map too.
    Through the CLI: a stop says how to continue, and the same command continues."""
    from classsr_cli.video import resume_folder

    out = tmp_path / "r.mkv"
    args = ["video", str(clips["rot"]), str(out), "--model", str(tiny_model_path), "--resume", "--classmap",
            "--preset", "ultrafast"]  # fmt: skip
    from classsr_cli import video as video_module

    real = video_module.upscale_video

    def stopped(*a: Any, **k: Any) -> Any:
        return real(*a, **{**k, "chunk_frames": 4, "progress": stop_after(6)})

    import unittest.mock

    from classsr_cli.cli import video as video_cli

    with unittest.mock.patch.object(video_module, "upscale_video", stopped), \
            unittest.mock.patch.object(video_cli, "LONG_RUN_S", 0.0):
        plain = runner.invoke(app, [a for a in args if a != "--resume"])  # a long run without it: told what it lost
        assert plain.exit_code == 130 and "add --resume to a long run" in plain.stderr, plain.output
        assert not resume_folder(out).exists()
        r = runner.invoke(app, [*args, "--json"])
    assert "add --resume" not in r.stderr
    assert r.exit_code == 130, r.output
    record = json.loads(r.stdout)
    assert "4 frame(s) kept" in record["error"] and "run the same command to continue" in record["error"]
    assert r.stderr.strip().splitlines() == [f"error: {record['error']}"]  # one line says it
    assert resume_folder(out).is_dir() and not out.exists()
    with unittest.mock.patch.object(video_module, "upscale_video",
                                    lambda *a, **k: real(*a, **{**k, "chunk_frames": 4})):
        r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "continued: 4 frames from the stopped run" in r.stderr
    line = video_line(out)
    assert "256x192" in line and "rotation of 90" in subprocess.run(
        [FF, "-hide_banner", "-i", str(out)], capture_output=True, text=True).stderr  # fmt: skip
    assert frame_times(out) == pytest.approx([i / 20 for i in range(15)], abs=1e-3)
    assert audio_seconds(out) == pytest.approx(0.75, abs=0.05)
    assert len(frame_times(classmap_path(out))) == 15 and not resume_folder(out).exists()
    subs = tmp_path / "s.mkv"
    upscale_video(tiny_model, clips["subs"], subs, resume=True, chunk_frames=3)
    text = subprocess.run([FF, "-hide_banner", "-i", str(subs)], capture_output=True, text=True).stderr
    assert "Subtitle: subrip" in text and "Audio: opus" in text



def test_dry_run_times_a_sample_and_writes_nothing(clips: dict[str, Path], tiny_model_path: Path, tmp_path: Path) -> None:
    """--dry-run: what the run would write, with its time and size scaled from a sample from the middle of the part;
    the checks a run makes before decoding fail as they would; nothing is written."""
    out = tmp_path / "o.mp4"
    base = ["video", str(clips["audio"]), str(out), "--model", str(tiny_model_path), "--preset", "ultrafast"]
    r = runner.invoke(app, [*base, "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    record = json.loads(r.stdout)
    e = record["estimate"]
    assert (record["dry_run"], record["frames"], record["output_size"], record["output"]) == (True, 15, [256, 192], str(out))
    assert e["sample_frames"] == 15 and e["sample_start"] == 0  # a clip shorter than the sample: all of it
    assert e["seconds"] == pytest.approx(e["sample_seconds"], rel=0.05, abs=0.05) and e["bytes"] > 1000
    assert "would write" in r.stderr and "dry run: nothing was written" in r.stderr
    assert [p.name for p in tmp_path.iterdir()] == [tiny_model_path.name]
    # A part: the sample is 2 s from its middle, scaled to its frames.
    long = tmp_path / "long.mkv"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=8", "-c:v", "libx264", "-pix_fmt", "yuv420p", long)
    r = runner.invoke(app, ["video", str(long), str(tmp_path / "p.mkv"), "--model", str(tiny_model_path), "--start", "1",
                            "--duration", "6", "--dry-run", "--json"])  # fmt: skip
    record = json.loads(r.stdout)
    assert (record["frames"], record["estimate"]["sample_frames"], record["estimate"]["sample_start"]) == (60, 20, 3.0)
    assert record["estimate"]["seconds"] == pytest.approx(3 * record["estimate"]["sample_seconds"], rel=0.01)
    assert not (tmp_path / "p.mkv").exists()
    out.write_bytes(b"x")  # as the run: an existing output is refused before anything is decoded
    r = runner.invoke(app, [*base, "--dry-run", "--json"])
    assert r.exit_code == 1 and "already exists" in json.loads(r.stdout)["error"]


def test_a_killed_runs_hidden_files_are_removed_by_the_next_run(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    """kill -9 runs no clean-up: the next run of the same output removes what a run whose process is gone left, and
    says so; a file of a process still running is left alone."""
    import os

    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = tmp_path / f".o.{gone.pid}-0123abcd.partial.mp4"
    cut = [tmp_path / f".{dead.name}.{s}.mkv" for s in ("subtitles", "subtitles-copied")]  # a part's subtitles
    alive = tmp_path / f".o.{os.getpid()}-4567cdef.partial.mp4"
    other = tmp_path / f".other.{gone.pid}-0123abcd.partial.mp4"  # another output's: not this run's to remove
    for p in (dead, alive, other, *cut):
        p.write_bytes(b"x" * 1_000_000)
    result = upscale_video(tiny_model, clips["audio"], tmp_path / "o.mp4", options=EncodeOptions(preset="ultrafast"))
    assert not dead.exists() and not any(p.exists() for p in cut) and alive.exists() and other.exists()
    assert "removed the unfinished file(s) of a killed run of this output (3.0 MB)" in result.notes


def cues(path: Path) -> str:
    """The first subtitle stream as SRT text."""
    return subprocess.run([FF, "-v", "error", "-i", str(path), "-map", "0:s:0", "-f", "srt", "-"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip


def test_a_parts_subtitles_are_timed_from_its_start_in_every_container(
    tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    """--start 1.8 --duration 1.0 of a source with cues at 0-1.5, 1.6-1.9, 2.0-2.5 and 2.6-3.0 s: the part shows
    the one already showing from 0 to 0.1 s, the next at 0.2-0.7 s, the last clipped to the part's end (0.8-1.0 s),
    and not the first, whether the subtitles are copied (.mkv) or converted (mov_text for .mp4, WebVTT for .webm;
    ffmpeg left converted cues 1.8 s late, or dropped them, and dropped the cue showing at the cut), with or without
    --resume; the hidden files they are cut into are gone."""
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,500\nhello\n\n2\n00:00:01,600 --> 00:00:01,900\nshowing\n\n"
                   "3\n00:00:02,000 --> 00:00:02,500\nworld\n\n4\n00:00:02,600 --> 00:00:03,000\nlate\n")
    src = tmp_path / "src.mkv"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=3", "-f", "lavfi", "-i", "sine=duration=3", "-i", srt,
       "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "libopus", "-c:s", "srt",
       src)  # fmt: skip
    opts = EncodeOptions(preset="ultrafast")
    for ext in ("mkv", "mp4", "webm"):
        for name, kw in (("one", {}), ("chunked", {"resume": True, "chunk_frames": 3})):
            out = tmp_path / "out" / f"{name}.{ext}"
            upscale_video(tiny_model, src, out, options=opts, start=1.8, length=1.0, **kw)
            text = cues(out)
            for cue in ("00:00:00,000 --> 00:00:00,100\nshowing", "00:00:00,200 --> 00:00:00,700\nworld",
                        "00:00:00,800 --> 00:00:01,000\nlate"):  # fmt: skip
                assert cue in text, (ext, name, text)
            assert "hello" not in text
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{n}.{e}" for n in ("one", "chunked") for e in ("mkv", "mp4", "webm"))


def test_overlapping_cues_into_mp4_show_together(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """Two lines spoken together (0.2-1.5 s and 0.8-2.0 s), as SRT and as ASS: mov_text shows one cue at a time,
    and ffmpeg ended the first where the second began; into .mp4 each overlap is one cue with both lines, for the
    whole video, a part (--start) and a resumed run alike. Into .mkv the cues are copied, overlapping as they were.
    A mov_text source (whose cues cannot overlap) is copied as it is."""
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,200 --> 00:00:01,500\nFirst line\n\n2\n00:00:00,800 --> 00:00:02,000\nSecond\n\n"
                   "3\n00:00:02,200 --> 00:00:02,800\nThird\n")
    ass = tmp_path / "s.ass"
    ff("-i", srt, ass)
    src = tmp_path / "src.mkv"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=3", "-i", srt, "-i", ass, "-map", "0", "-map", "1",
       "-map", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:s:0", "srt", "-c:s:1", "ass", src)  # fmt: skip
    opts = EncodeOptions(preset="ultrafast")
    both = "00:00:00,800 --> 00:00:01,500\nFirst line\nSecond"
    for name, kw, shift in (("whole", {}, 0.0), ("part", {"start": 0.5}, 0.5),
                            ("chunked", {"resume": True, "chunk_frames": 7}, 0.0)):  # fmt: skip
        out = tmp_path / "out" / f"{name}.mp4"
        upscale_video(tiny_model, src, out, options=opts, **kw)
        for k in (0, 1):
            text = subprocess.run([FF, "-v", "error", "-i", str(out), "-map", f"0:s:{k}", "-f", "srt", "-"],
                                  capture_output=True, text=True, check=True).stdout  # fmt: skip
            want = both if not shift else "00:00:00,300 --> 00:00:01,000\nFirst line\nSecond"
            assert want in text, (name, k, text)
            assert text.count("-->") == 4, (name, k, text)
        again = tmp_path / "out" / f"{name}_again.mp4"  # mov_text in, mov_text out: as it is
        upscale_video(tiny_model, out, again, options=opts)
        assert cues(again) == cues(out)
    kept = tmp_path / "out" / "kept.mkv"
    upscale_video(tiny_model, src, kept, options=opts)
    assert cues(kept) == cues(src) and "00:00:00,200 --> 00:00:01,500\nFirst line" in cues(kept)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_subtitles_into_mp4_are_converted_as_they_are_where_staging_them_fails(
    tiny_model: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staging a whole file's text subtitles for mov_text is only to show overlapping cues together: where it fails,
    the run goes on and ffmpeg converts them as they are (a part's, which must be cut, still fails in one line)."""
    from classsr_cli.io import video as video_io

    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,200 --> 00:00:01,500\nhello\n")
    src = tmp_path / "src.mkv"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=2", "-i", srt, "-map", "0", "-map", "1",
       "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:s", "srt", src)  # fmt: skip

    def fails(*args: object, **kw: object) -> None:
        raise VideoError("cutting the subtitles failed")

    monkeypatch.setattr(video_io, "_cut_text_subtitles", fails)
    out = tmp_path / "out.mp4"
    upscale_video(tiny_model, src, out, options=EncodeOptions(preset="ultrafast"))
    assert "00:00:00,200 --> 00:00:01,500\nhello" in cues(out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(VideoError, match="cutting the subtitles failed"):
        upscale_video(tiny_model, src, tmp_path / "part.mp4", options=EncodeOptions(preset="ultrafast"), start=0.5)


def test_a_parts_subtitles_keep_their_styles_languages_and_dispositions(
    tiny_model: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part of a source with an SRT stream (French, forced, titled) and an ASS one (default, hearing impaired):
    both come out in their order with their language, title and dispositions, the ASS one with its styles and
    override tags, each cut as text (the cue showing at --start kept from 0). A stream with no text (bitmap
    subtitles; here the ASS one made to look so) is copied and cut by ffmpeg instead, its packet showing at --start
    first moved there (ffmpeg's cut left it out)."""
    import classsr_cli.io.video as vio

    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,500 --> 00:00:01,500\nbonjour\n")
    ass = tmp_path / "s.ass"
    ass.write_text("[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize\n"
                   "Style: Sign,Arial,30\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, "
                   "MarginV, Effect, Text\nDialogue: 0,0:00:00.50,0:00:01.50,Sign,,0,0,0,,{\\i1}sign, with a comma\n")
    src = tmp_path / "src.mkv"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=2", "-i", srt, "-i", ass, "-map", "0", "-map", "1",
       "-map", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:s:0", "srt", "-c:s:1", "ass",
       "-metadata:s:s:0", "language=fre", "-metadata:s:s:0", "title=French signs", "-disposition:s:0", "forced",
       "-disposition:s:1", "default+hearing_impaired", src)  # fmt: skip

    def subtitles(path: Path) -> list[tuple[str, str | None, frozenset[str]]]:
        return [(s.codec, s.language, s.dispositions) for s in probe(path).subtitles]

    assert subtitles(src) == [("subrip", "fre", frozenset({"forced"})),
                              ("ass", None, frozenset({"default", "hearing_impaired"}))]  # fmt: skip
    out = tmp_path / "out.mkv"
    upscale_video(tiny_model, src, out, options=EncodeOptions(preset="ultrafast"), start=1.0)
    assert subtitles(out) == subtitles(src)
    assert "title           : French signs" in subprocess.run([FF, "-i", str(out)], capture_output=True, text=True).stderr
    assert "00:00:00,000 --> 00:00:00,500\nbonjour" in cues(out)
    events = subprocess.run([FF, "-v", "error", "-i", str(out), "-map", "0:s:1", "-f", "ass", "-"], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert "Style: Sign,Arial,30" in events
    assert "Dialogue: 0,0:00:00.00,0:00:00.50,Sign,,0,0,0,,{\\i1}sign, with a comma" in events, events
    monkeypatch.setattr(vio, "TEXT_FORMATS", {"subrip": "srt"})  # the ASS stream as if it had no text
    upscale_video(tiny_model, src, out, options=EncodeOptions(preset="ultrafast"), start=1.0, overwrite=True)
    assert subtitles(out) == subtitles(src)
    assert "00:00:00,000 --> 00:00:00,500\nbonjour" in cues(out)
    events = subprocess.run([FF, "-v", "error", "-i", str(out), "-map", "0:s:1", "-f", "ass", "-"], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert "Style: Sign,Arial,30" in events  # copied, the cue showing moved to the cut, for what was left of its time
    assert "Dialogue: 0,0:00:00.00,0:00:00.50,Sign,,0,0,0,,{\\i1}sign, with a comma" in events, events
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv", "s.ass", "s.srt", "src.mkv"]


def test_a_part_with_no_cue_inside_keeps_its_subtitle_streams(
    tiny_model: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part where no cue shows (--start 1.0 of a source whose only cue ends at 0.5 s) is written with its subtitle
    stream, empty, whether cut as text or copied (bitmap subtitles), into .mkv and .mp4 (the run failed: ffmpeg
    could not read back the Matroska file the cut went into, written without a packet)."""
    import classsr_cli.io.video as vio

    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,500\nhello\n")
    src = tmp_path / "src.mkv"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=2", "-i", srt, "-map", "0", "-map", "1",
       "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:s", "srt", src)  # fmt: skip
    for route in ("text", "copied"):
        if route == "copied":
            monkeypatch.setattr(vio, "TEXT_FORMATS", {})
        for ext, codec in (("mkv", "subrip"), ("mp4", "mov_text")):
            out = tmp_path / route / f"o.{ext}"
            upscale_video(tiny_model, src, out, options=EncodeOptions(preset="ultrafast"), start=1.0)
            assert [s.codec for s in probe(out).subtitles] == [codec], (route, ext)
            assert "-->" not in cues(out)
        assert sorted(p.name for p in (tmp_path / route).iterdir()) == ["o.mkv", "o.mp4"]


def test_a_failed_subtitle_cut_names_the_output_not_a_hidden_file(
    tiny_model: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ffmpeg failing to cut a part's subtitles (here made to fail, naming the file it writes, as ffmpeg does):
    the error names the output the user asked for, with or without --resume, never the hidden files the output and
    the cut are written under, and nothing is left beside the output."""
    import classsr_cli.io.video as vio

    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,500\nhello\n")
    src = tmp_path / "src.mkv"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=2", "-i", srt, "-map", "0", "-map", "1",
       "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:s", "srt", src)  # fmt: skip
    real = vio.run_watched

    def failing(cmd: list[str]) -> subprocess.CompletedProcess[bytes]:
        if ".subtitles." in str(cmd[-1]):
            return subprocess.CompletedProcess(cmd, 1, b"", f"Error opening output {cmd[-1]}: Permission denied".encode())
        return real(cmd)

    monkeypatch.setattr(vio, "run_watched", failing)
    for name, kw in (("one", {}), ("chunked", {"resume": True, "chunk_frames": 3})):
        out = tmp_path / "out" / f"{name}.mkv"
        with pytest.raises(VideoError) as e:
            upscale_video(tiny_model, src, out, options=EncodeOptions(preset="ultrafast"), start=0.5, **kw)
        assert str(e.value).startswith(f"cutting the subtitles for {out} failed (ffmpeg exit 1)"), str(e.value)
        assert "partial" not in str(e.value) and ".subtitles." not in str(e.value), str(e.value)
        assert not out.exists()
    assert not [p for p in (tmp_path / "out").iterdir() if not p.name.endswith(".resume")]


def test_a_parts_chapters_end_with_it(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """--start 1 --duration 1.5 of chapters 0-1.5 and 1.5-3 s: 0-0.5 and 0.5-1.5 s, the last one ending with the part,
    with or without --resume (whose copied video keeps all its frames)."""
    meta = tmp_path / "ch.txt"
    meta.write_text(";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1500\ntitle=One\n"
                    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=1500\nEND=3000\ntitle=Two\n")
    src = tmp_path / "chap.mkv"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=3", "-i", meta, "-map", "0", "-map_metadata", "1",
       "-map_chapters", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", src)  # fmt: skip
    for name, kw in (("one", {}), ("chunked", {"resume": True, "chunk_frames": 4})):
        out = tmp_path / f"{name}.mkv"
        upscale_video(tiny_model, src, out, options=EncodeOptions(preset="ultrafast"), start=1.0, length=1.5, **kw)
        text = subprocess.run([FF, "-hide_banner", "-i", str(out)], capture_output=True, text=True).stderr
        assert re.findall(r"Chapter #0:\d: start ([\d.]+), end ([\d.]+)", text) == [("0.000000", "0.500000"),
                                                                                   ("0.500000", "1.500000")], name
        assert len(frame_times(out)) == 15


def test_a_phones_metadata_keys_and_capture_date_are_kept(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """An iPhone's place, camera and capture date in QuickTime metadata keys, which ffmpeg's MP4/MOV muxers drop unless
    told, are kept in .mov, .mp4 (with --resume too) and .mkv; a creation time read twice (``X;X``, as ffmpeg reads
    its own such files) is written once, as a date; the source's file type is not the output's."""
    from classsr_cli.io.video import probe

    keys = {"com.apple.quicktime.location.ISO6709": "+48.8577+002.2950+035.000/",
            "com.apple.quicktime.make": "Apple", "com.apple.quicktime.model": "iPhone 15",
            "com.apple.quicktime.creationdate": "2026-05-01T14:00:00+0200"}  # fmt: skip
    src = tmp_path / "phone.mov"
    said = [a for k, v in keys.items() for a in ("-metadata", f"{k}={v}")]
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1", "-map_metadata", "-1", *said, "-metadata",
       "creation_time=2026-05-01T12:00:00Z", "-movflags", "+use_metadata_tags", "-c:v", "libx264", "-pix_fmt",
       "yuv420p", src)  # fmt: skip
    assert dict(probe(src).tags)["creation_time"] == "2026-05-01T12:00:00.000000Z;2026-05-01T12:00:00Z"
    for name, kw in (("one.mov", {}), ("one.mp4", {}), ("chunked.mp4", {"resume": True, "chunk_frames": 4}),
                     ("one.mkv", {})):  # fmt: skip
        out = tmp_path / name
        upscale_video(tiny_model, src, out, options=EncodeOptions(preset="ultrafast"), **kw)
        tags = {k.lower(): v for k, v in probe(out).tags}
        assert all(tags.get(k.lower()) == v for k, v in keys.items()), (name, tags)
        # one date, which the movie header (MP4/MOV) or Matroska's DateUTC holds: ffmpeg lists it from there first
        assert tags["creation_time"].split(";")[0] == "2026-05-01T12:00:00.000000Z", (name, tags)
        assert ";" not in tags.get("major_brand", "") and ";" not in tags.get("compatible_brands", ""), (name, tags)
        assert name.endswith(".mkv") != ("major_brand" in tags), (name, tags)  # MP4/MOV list their own ftyp
    # Matroska's tags are not QuickTime keys (it lists them in capitals): into MP4 as ffmpeg writes tags, not keys
    upscale_video(tiny_model, tmp_path / "one.mkv", tmp_path / "back.mp4", options=EncodeOptions(preset="ultrafast"))
    assert b"mdta" not in (tmp_path / "back.mp4").read_bytes()
    # a file without such keys is written as before: no QuickTime keys, so its title stays an iTunes-style one
    plain = tmp_path / "plain.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1", "-metadata", "title=Holiday", "-c:v", "libx264",
       "-pix_fmt", "yuv420p", plain)  # fmt: skip
    out = tmp_path / "plain_x2.mp4"
    upscale_video(tiny_model, plain, out, options=EncodeOptions(preset="ultrafast"))
    assert dict(probe(out).tags)["title"] == "Holiday" and b"mdta" not in out.read_bytes()


def test_strip_metadata_writes_none_of_the_sources_metadata(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """``strip_metadata`` (``--strip-metadata``): no place, camera, capture date or title in the file, and no record of
    the upscale in a PNG sequence's frames; the audio's language and the chapters kept; recorded by a resumable run
    only where set (a run without it continues one made before it was)."""
    from PIL import Image

    from classsr_cli.io.video import probe
    from classsr_cli.pipeline import Upscaler
    from classsr_cli.video import _recipe

    meta = tmp_path / "ch.txt"
    meta.write_text(";FFMETADATA1\ntitle=Holiday\ncom.apple.quicktime.location.ISO6709=+48.8577+002.2950/\n"
                    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1000\ntitle=One\n")
    src = tmp_path / "phone.mov"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1", "-f", "lavfi", "-i", "sine=duration=1", "-i",
       meta, "-map", "0", "-map", "1", "-map_metadata", "2", "-map_chapters", "2", "-metadata",
       "creation_time=2026-05-01T12:00:00Z", "-metadata:s:a:0", "language=jpn", "-movflags", "+use_metadata_tags",
       "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", src)  # fmt: skip
    assert {"title", "com.apple.quicktime.location.ISO6709", "creation_time"} <= dict(probe(src).tags).keys()
    stripped = EncodeOptions(preset="ultrafast", strip_metadata=True)
    for name in ("out.mov", "out.mkv"):
        upscale_video(tiny_model, src, tmp_path / name, options=stripped)
        info = probe(tmp_path / name)
        assert not {k.lower() for k, _ in info.tags} & {"title", "com.apple.quicktime.location.iso6709",
                                                          "creation_time"}, (name, info.tags)  # fmt: skip
        assert info.chapters == 1 and [s.language for s in info.audio] == ["jpn"], name
        text = subprocess.run([FF, "-hide_banner", "-i", str(tmp_path / name)], capture_output=True, text=True).stderr
        assert "2026-05-01" not in text and "Holiday" not in text, (name, text)
    for options, record in ((EncodeOptions(preset="ultrafast"), True), (stripped, False)):
        folder = tmp_path / f"frames_{record}"
        upscale_video(tiny_model, src, folder / "%02d.png", options=options)
        with Image.open(folder / "01.png") as im:
            assert ("classsr" in im.text) == record
    assert _recipe(Upscaler(tiny_model), src, stripped, TemporalOptions())["encode"]["strip_metadata"] is True
    assert "strip_metadata" not in _recipe(Upscaler(tiny_model), src, EncodeOptions(), TemporalOptions())["encode"]


def test_mov_keeps_the_language_of_french_german_or_chinese_streams(
    tiny_model: torch.nn.Module, tmp_path: Path,
) -> None:
    """ffmpeg's MOV muxer keeps a language only where its table of QuickTime's codes lists it, which for languages
    with two ISO 639-2 codes lists one: a video in ``zho``, audio in ``fre`` and subtitles in ``deu`` from a Matroska
    file are written into .mov as ``chi``, ``fra``, ``ger`` (they were written without a language); .mp4 keeps the
    codes as they were. Each pair of MOV_LANGUAGES is checked against the bundled ffmpeg: the first code dropped, the
    second kept."""
    from classsr_cli.io.video import MOV_LANGUAGES, probe

    codes = [c for pair in MOV_LANGUAGES.items() for c in pair]
    tracks = tmp_path / "tracks.mov"
    ff("-f", "lavfi", "-i", "testsrc2=size=16x16:rate=10:duration=0.1", "-f", "lavfi", "-i", "sine=duration=0.1",
       "-map", "0:v", *[a for k in range(len(codes)) for a in ("-map", "1:a")], "-c:v", "libx264", "-c:a", "aac",
       *[a for k, c in enumerate(codes) for a in (f"-metadata:s:a:{k}", f"language={c}")], tracks)  # fmt: skip
    assert [s.language for s in probe(tracks).audio] == [None if k % 2 == 0 else c for k, c in enumerate(codes)]
    src = tmp_path / "langs.mkv"
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,500\nhallo\n")
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.5", "-f", "lavfi", "-i", "sine=duration=0.5", "-i",
       srt, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-c:s", "srt", "-metadata:s:v:0", "language=zho",
       "-metadata:s:a:0", "language=fre", "-metadata:s:s:0", "language=deu", src)  # fmt: skip
    for name, want in (("out.mov", ["chi", "fra", "ger"]), ("out.mp4", ["zho", "fre", "deu"])):
        upscale_video(tiny_model, src, tmp_path / name, options=EncodeOptions(preset="ultrafast"))
        assert [s.language for s in probe(tmp_path / name).streams] == want, name


def test_a_language_mov_cannot_hold_is_said_and_the_table_is_the_bundled_ffmpegs(tmp_path: Path) -> None:
    """ffmpeg's MOV muxer keeps 94 of the 507 ISO 639-2 codes (MOV_KEPT, measured by scripts/mov_languages.py): each is
    read back from a .mov as written, and Croatian, Serbian and Afrikaans are written as none. A Matroska file's
    Croatian audio and Serbian subtitles into .mov are said to lose their language (into .mp4 they keep it); an
    English video, or Bokmål audio (written as Norwegian), is not said."""
    from classsr_cli.io.video import MOV_KEPT, plan_streams, probe

    codes = [*sorted(MOV_KEPT), "hrv", "srp", "afr"]
    tracks = tmp_path / "tracks.mov"
    ff("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "0.05", *[a for _ in codes for a in ("-map", "0:a")],
       *[a for k, c in enumerate(codes) for a in (f"-metadata:s:a:{k}", f"language={c}")], "-c:a", "pcm_s16le",
       tracks)  # fmt: skip
    listing = subprocess.run([FF, "-hide_banner", "-i", str(tracks)], capture_output=True, text=True).stderr
    got = dict(re.findall(r"Stream #0:(\d+)(?:\[0x[0-9a-f]+\])?\((\w+)\)", listing))
    assert [got.get(str(k), "und") for k in range(len(codes))] == [*sorted(MOV_KEPT), "und", "und", "und"]
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,500\nizlaz\n")
    src = tmp_path / "langs.mkv"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.5", "-f", "lavfi", "-i", "sine=duration=0.5", "-i",
       srt, "-map", "0", "-map", "1", "-map", "1", "-map", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
       "-c:s", "srt", "-metadata:s:v:0", "language=eng", "-metadata:s:a:0", "language=hrv", "-metadata:s:a:1",
       "language=nob", "-metadata:s:s:0", "language=srp", src)  # fmt: skip
    info = probe(src)
    said = [n for n in plan_streams(info, "mov", EncodeOptions())[1] if "language" in n]
    assert said == ["the languages of audio #1 (hrv) and subtitle #3 (srp) are not kept: ffmpeg's MOV muxer knows no "
                    "QuickTime code for them, so they are written as none; an .mp4 or .mkv output keeps them"]
    assert not [n for n in plan_streams(info, "mp4", EncodeOptions())[1] if "language" in n]


def test_track_names_are_kept(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    """A video track named "Camera A" (its stream is classsr's: the name was lost) and audio and subtitle tracks named
    "Lav mic" and "Signs" keep their names: as titles in Matroska, as handler names in MP4 and MOV, whose players show
    those (as HandBrake writes them; ffmpeg alone drops a title there), a --resume run's too; and from MP4 to MP4."""
    from classsr_cli.io.video import probe

    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,500\nEXIT\n")
    src = tmp_path / "named.mkv"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.5", "-f", "lavfi", "-i", "sine=duration=0.5", "-i",
       srt, "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-c:s",
       "srt", "-metadata:s:v:0", "title=Camera A", "-metadata:s:a:0", "title=Lav mic", "-metadata:s:s:0",
       "title=Signs", src)  # fmt: skip
    names = ["Camera A", "Lav mic", "Signs"]
    assert [s.title for s in probe(src).streams] == names
    for name, kw in (("out.mkv", {}), ("out.mp4", {}), ("out.mov", {}), ("chunked.mp4", {"resume": True,
                                                                                         "chunk_frames": 2})):
        upscale_video(tiny_model, src, tmp_path / name, options=EncodeOptions(preset="ultrafast"), **kw)
        got = probe(tmp_path / name).streams
        assert [s.title if name.endswith(".mkv") else s.handler for s in got] == names, (name, got)
    upscale_video(tiny_model, tmp_path / "out.mp4", tmp_path / "again.mp4", options=EncodeOptions(preset="ultrafast"))
    assert [s.handler for s in probe(tmp_path / "again.mp4").streams] == names


def test_a_resumable_runs_settings_name_the_weights_of_a_model_in_any_dtype(tiny_model: torch.nn.Module) -> None:
    """A model given as an object (no file to hash) is named by its weights, bfloat16 ones too (numpy has none)."""
    from classsr_cli.pipeline import Upscaler
    from classsr_cli.video import _recipe

    src = Path(__file__)
    fp32 = _recipe(Upscaler(tiny_model), src, EncodeOptions(), TemporalOptions())
    half = _recipe(Upscaler(tiny_model.to(torch.bfloat16)), src, EncodeOptions(), TemporalOptions())
    assert half["precision"] == "bfloat16" and fp32["precision"] == "float32"
    assert half["model"]["model_sha256"] != fp32["model"]["model_sha256"]
    # The encoding as recorded before --fps and --quality were added (a stopped run of an earlier version continues);
    # --quality recorded where given (a run at another is another run)
    assert set(fp32["encode"]) == {"codec", "crf", "preset", "pix_fmt", "extra", "audio", "subtitles"}
    assert _recipe(Upscaler(tiny_model), src, EncodeOptions(quality=80), TemporalOptions())["encode"]["quality"] == 80


def stopped_run(model: torch.nn.Module, src: Path, out: Path, **kw: Any) -> int:
    """A ``--resume`` run of ``src`` into ``out`` in chunks of 4 frames, stopped after 10: the frames it kept (8)."""
    from classsr_cli.video import kept_frames

    with pytest.raises(KeyboardInterrupt):
        upscale_video(model, src, out, options=EncodeOptions(preset="ultrafast"), resume=True, chunk_frames=4,
                      progress=stop_after(10), **kw)  # fmt: skip
    return kept_frames(out)


def test_resume_a_stop_while_the_model_loads_says_what_is_kept(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tiny_model_path: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C before the first frame of a rerun (the model loading): one line says the chunks are kept, as any stop."""
    from classsr_cli import zoo
    from classsr_cli.video import resume_folder

    out = tmp_path / "o.mp4"
    assert stopped_run(tiny_model, clips["audio"], out) == 8

    def loading(*a: Any, **k: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(zoo, "load", loading)
    r = runner.invoke(app, ["video", str(clips["audio"]), str(out), "--model", str(tiny_model_path), "--resume",
                            "--json"])  # fmt: skip
    assert r.exit_code == 130, r.output
    said = f"interrupted; 8 frame(s) kept in {resume_folder(out)}: run the same command to continue"
    assert r.stderr.strip().splitlines() == [f"error: {said}"] and json.loads(r.stdout)["error"] == said
    assert len(json.loads((resume_folder(out) / "state.json").read_text())["chunks"]) == 2


def test_resume_a_failed_join_names_the_output_and_keeps_the_chunks(
    clips: dict[str, Path], tiny_model_path: Path, tmp_path: Path
) -> None:
    """The join's error names the output asked for, not the hidden file it is written under; the chunks stay, a note
    says so, and the same command then joins them."""
    import unittest.mock

    from classsr_cli import video as video_module
    from classsr_cli.video import resume_folder

    out = tmp_path / "o.mkv"
    args = ["video", str(clips["audio"]), str(out), "--model", str(tiny_model_path), "--resume", "--preset",
            "ultrafast"]  # fmt: skip
    real, join = video_module.upscale_video, video_module.join_chunks

    def bad_map(chunks: Any, path: Any, **k: Any) -> None:  # a stream ffmpeg cannot find: it fails
        join(chunks, path, **{**k, "stream_args": [*(k.get("stream_args") or []), "-map", "7:0"]})

    chunked = unittest.mock.patch.object(video_module, "upscale_video", lambda *a, **k: real(*a, **{**k, "chunk_frames": 4}))
    with chunked, unittest.mock.patch.object(video_module, "join_chunks", bad_map):
        r = runner.invoke(app, args)
    assert r.exit_code == 1, r.output
    note, error = r.stderr.strip().splitlines()
    assert error.startswith(f"error: joining the chunks into {out} failed (ffmpeg exit"), error
    assert ".partial" not in r.stderr and not out.exists() and no_partials(tmp_path)
    assert note == f"note: 15 frame(s) are kept in {resume_folder(out)}: once this is fixed, run the same command to continue"
    with chunked:
        r = runner.invoke(app, args)
    assert r.exit_code == 0 and "continued: 15 frames from the stopped run" in r.stderr, r.output
    assert len(frame_times(out)) == 15 and not resume_folder(out).exists()


def test_resume_refusal_names_only_the_settings_that_differ(
    clips: dict[str, Path], tiny_cfg: Any, tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    """Another model is "the model": not --hysteresis, whose margin applies to one of the two only; each flag changed
    is named by itself."""
    from classsr_cli.errors import ConfigError
    from classsr_cli.models import build_model
    from classsr_cli.pipeline import Upscaler

    out = tmp_path / "o.mp4"
    assert stopped_run(tiny_model, clips["audio"], out) == 8
    kw: dict[str, Any] = {"options": EncodeOptions(preset="ultrafast"), "resume": True, "chunk_frames": 4}

    def refused(model: Any, **more: Any) -> str:
        with pytest.raises(ConfigError) as e:
            upscale_video(model, clips["audio"], out, **{**kw, **more})
        return str(e.value)

    deficit = build_model(replace(tiny_cfg, routing="deficit", tolerance=1.0)).eval()  # no margin: hysteresis 0
    assert "other settings (the model); run the same command to continue it" in refused(deficit)
    torch.manual_seed(1)
    assert "other settings (the model);" in refused(build_model(tiny_cfg).eval())  # other weights, same routing
    assert "other settings (--force-branch);" in refused(Upscaler(tiny_model, force_branch=1))
    assert "other settings (--tta);" in refused(Upscaler(tiny_model, tta=2))  # its margin off follows from it
    assert "other settings (--hysteresis, --reuse);" in refused(tiny_model, temporal=TemporalOptions(0.3, reuse=True))
    assert "other settings (--crf, --encoder-opt);" in refused(
        tiny_model, options=EncodeOptions(preset="ultrafast", crf=30, extra=(("tune", "film"),)))
    assert "other settings (--duration);" in refused(tiny_model, length=0.5)


def test_resume_continues_a_touched_or_moved_input_and_refuses_other_bytes(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    """The input is known by its size and a hash of a sample of its bytes, not by its path or time: `touch` or a move
    continues; a file with other bytes is refused as "the input file". A record of the previous layout (the input's
    path, size and time) is refused in a line that says why, not a crash."""
    import os
    import shutil

    from classsr_cli.errors import ConfigError
    from classsr_cli.video import resume_folder

    src, out = tmp_path / "in.mp4", tmp_path / "o.mp4"
    shutil.copy(clips["audio"], src)
    assert stopped_run(tiny_model, src, out) == 8
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**10))
    moved = src.rename(tmp_path / "moved.mp4")
    kw: dict[str, Any] = {"options": EncodeOptions(preset="ultrafast"), "resume": True, "chunk_frames": 4}
    done = upscale_video(tiny_model, moved, out, **kw)
    assert (done.frames, done.resumed) == (15, 8) and not resume_folder(out).exists()
    out.unlink()
    assert stopped_run(tiny_model, moved, out) == 8
    other = tmp_path / "other.mp4"
    data = bytearray(moved.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte in the middle: the same size and ends
    other.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=r"other settings \(the input file\); add --overwrite to start over"):
        upscale_video(tiny_model, other, out, **kw)
    with pytest.raises(ConfigError, match=r"other settings \(the input file\)"):
        upscale_video(tiny_model, clips["subs"], out, **kw)
    # A record written by the previous version: the input named by its path, size and time.
    state_path = resume_folder(out) / "state.json"
    state = json.loads(state_path.read_text())
    recipe = {k: v for k, v in state["recipe"].items() if k != "record"}
    recipe.update(input=str(moved.resolve()), input_bytes=moved.stat().st_size, input_mtime_ns=moved.stat().st_mtime_ns)
    state_path.write_text(json.dumps({**state, "recipe": recipe}))
    with pytest.raises(ConfigError, match=r"recorded by an earlier classsr.*; add --overwrite to start over$"):
        upscale_video(tiny_model, moved, out, **kw)
    again = upscale_video(tiny_model, moved, out, overwrite=True, **kw)
    assert (again.frames, again.resumed) == (15, 0) and not resume_folder(out).exists()
    # A large file: three MiB read, at its start, middle and end.
    from classsr_cli.video import _identity

    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        f.truncate(8 << 20)
    first = _identity(big)
    for at, seen in ((0, True), (4 << 20, True), ((8 << 20) - 1, True), (2 << 20, False)):
        with big.open("r+b") as f:
            f.seek(at)
            f.write(b"\x01")
        assert (_identity(big) != first) == seen, at
        first = _identity(big)


def test_resume_dry_run_estimates_what_is_left(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tiny_model_path: Path, tmp_path: Path
) -> None:
    """--dry-run --resume over kept chunks times the frames not yet kept and says so; with other settings it fails
    as the run would, or (--overwrite) says they would be discarded; without --resume, that the run leaves them."""
    import unittest.mock

    from classsr_cli import video as video_module

    out = tmp_path / "o.mp4"
    base = ["video", str(clips["audio"]), str(out), "--model", str(tiny_model_path), "--preset", "ultrafast"]
    run, estimate = video_module.upscale_video, video_module.estimate_video
    with unittest.mock.patch.object(video_module, "upscale_video",
                                    lambda *a, **k: run(*a, **{**k, "chunk_frames": 4, "progress": stop_after(10)})):
        assert runner.invoke(app, [*base, "--resume"]).exit_code == 130

    def dry(*args: str) -> tuple[int, dict[str, Any], str]:
        with unittest.mock.patch.object(video_module, "estimate_video",
                                        lambda *a, **k: estimate(*a, **{**k, "chunk_frames": 4})):
            r = runner.invoke(app, [*base, *args, "--dry-run", "--json"])
        return r.exit_code, json.loads(r.stdout), r.stderr

    code, rest, said = dry("--resume")
    assert code == 0 and (rest["frames"], rest["kept"]) == (15, 8), said
    e = rest["estimate"]
    assert e["seconds"] == pytest.approx(7 * e["sample_seconds"] / e["sample_frames"], abs=2e-3)
    assert "for the 7 frame(s) not kept (8 kept by the stopped run)" in said
    assert any("this run would go on from there; the estimate covers the other 7 frame(s)" in n for n in rest["notes"])
    code, whole, said = dry()  # without --resume the run leaves the chunks: all of it
    assert code == 0 and whole["kept"] == 0 and "this run would leave them (add --resume" in said
    e = whole["estimate"]
    assert e["seconds"] == pytest.approx(15 * e["sample_seconds"] / e["sample_frames"], abs=2e-3)
    code, refused, said = dry("--resume", "--crf", "30")  # other settings: refused, as the run would
    assert code == 2 and "other settings (--crf)" in refused["error"], said  # a usage error, as in the run
    code, over, said = dry("--resume", "--crf", "30", "--overwrite")
    assert code == 0 and over["kept"] == 0, said
    assert "8 frame(s), but it was made with other settings (--crf): --overwrite would discard them" in said
    assert sorted(p.name for p in tmp_path.iterdir()) == [".o.mp4.resume", tiny_model_path.name]  # nothing written
    # A part: the sample comes from the middle of what is left (0.8 s of its 6 s kept: from 3.4 s, not 3 s).
    from classsr_cli.pipeline import Upscaler
    from classsr_cli.video import estimate_video

    long, part = tmp_path / "long.mkv", tmp_path / "p.mkv"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=8", "-c:v", "libx264", "-pix_fmt", "yuv420p", long)
    assert stopped_run(tiny_model, long, part, start=1.0, length=6.0) == 8
    guess = estimate_video(Upscaler(tiny_model), long, part, resume=True, chunk_frames=4, start=1.0, length=6.0,
                           options=EncodeOptions(preset="ultrafast"))  # fmt: skip
    assert (guess.frames, guess.kept, guess.sample.frames) == (60, 8, 20)
    assert guess.sample.start == pytest.approx(3.4, abs=0.05)
    assert guess.seconds == pytest.approx(52 * guess.sample.seconds / guess.sample.frames)


def test_resume_with_overwrite_continues_a_run_with_the_same_settings(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    """A script that always passes --overwrite still resumes, and replaces the output at the end: --overwrite starts
    over only where the settings differ (docs/cli.md, "video")."""
    from classsr_cli.video import resume_folder

    out = tmp_path / "o.mp4"
    out.write_bytes(b"old")
    assert stopped_run(tiny_model, clips["audio"], out, overwrite=True) == 8 and out.read_bytes() == b"old"
    kw: dict[str, Any] = {"options": EncodeOptions(preset="ultrafast"), "resume": True, "chunk_frames": 4,
                          "overwrite": True}
    done = upscale_video(tiny_model, clips["audio"], out, **kw)
    assert (done.frames, done.resumed) == (15, 8) and not resume_folder(out).exists()
    assert len(frame_times(out)) == 15
    assert stopped_run(tiny_model, clips["audio"], out, overwrite=True) == 8
    other = upscale_video(tiny_model, clips["audio"], out, **{**kw, "options": EncodeOptions(preset="ultrafast", crf=30)})
    assert (other.frames, other.resumed) == (15, 0) and not resume_folder(out).exists()


def test_resume_continues_with_the_same_model_file_renamed(
    clips: dict[str, Path], tiny_model: torch.nn.Module, tiny_model_path: Path, tmp_path: Path
) -> None:
    """The model is known by its bytes, not its file's name: a stopped run continues with the file copied under
    another name; a file with other weights is refused as "the model"."""
    import shutil

    from classsr_cli.checkpoint import save_checkpoint
    from classsr_cli.errors import ConfigError
    from classsr_cli.models import build_model
    from classsr_cli.pipeline import Upscaler
    from classsr_cli.video import kept_frames

    out = tmp_path / "o.mp4"
    assert stopped_run(Upscaler(tiny_model, model_path=tiny_model_path), clips["audio"], out) == 8
    kw: dict[str, Any] = {"options": EncodeOptions(preset="ultrafast"), "resume": True, "chunk_frames": 4}
    torch.manual_seed(7)
    other = save_checkpoint(build_model(tiny_model.cfg).eval(), tmp_path / "other_x4.safetensors")
    with pytest.raises(ConfigError, match=r"other settings \(the model\);"):
        upscale_video(Upscaler(tiny_model, model_path=other), clips["audio"], out, **kw)
    renamed = shutil.copy(tiny_model_path, tmp_path / "renamed_x4.safetensors")
    result = upscale_video(Upscaler(tiny_model, model_path=Path(renamed)), clips["audio"], out, **kw)
    assert result.resumed == 8 and result.frames == 15 and out.exists() and kept_frames(out) == 0


def test_model_auto_picks_by_the_first_frame(tmp_path: Path, install: Callable[..., dict[str, Path]]) -> None:
    """``classsr video -m auto``: grainy footage runs through the noisy-input model, lightly grainy lossless footage
    through the JPEG model, clean footage through the default, as the first frame's notes would name them; the pick
    said in a note and the record's model."""
    import json

    from typer.testing import CliRunner

    from classsr_cli.cli import app

    install("classsr_residual_x4", "classsr_residual_noisy_x4")
    grain, plain = tmp_path / "grain.mkv", tmp_path / "plain.mkv"
    ff("-f", "lavfi", "-i", "gradients=size=64x48:rate=5:duration=0.4:speed=0", "-vf", "format=yuv420p,noise=alls=24:allf=t",
       "-c:v", "ffv1", grain)  # fmt: skip
    ff("-f", "lavfi", "-i", "gradients=size=64x48:rate=5:duration=0.4:speed=0", "-vf", "format=yuv420p", "-c:v", "ffv1",
       plain)  # fmt: skip
    for src, want in ((grain, "classsr_residual_noisy_x4"), (plain, "classsr_residual_x4")):
        r = CliRunner().invoke(app, ["video", str(src), str(tmp_path / f"{src.stem}_x4.mkv"), "-m", "auto", "--json"])
        assert r.exit_code == 0, r.output
        assert Path(json.loads(r.stdout)["model"]).name == f"{want}.safetensors"
        said = "looks noisy: its noise estimate is" if want.endswith("noisy_x4") else "its first frame shows no noise"
        assert f"note: --model auto: {want if 'noisy' in want else 'the default model'} ({said}" in r.stderr
    both = tmp_path / "both.mkv"  # clean, then grainy: the first frame the run upscales decides (--start)
    ff("-i", plain, "-i", grain, "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]", "-c:v", "ffv1", both)
    for start, want in (("0", "the default model"), ("0.4", "classsr_residual_noisy_x4")):
        r = CliRunner().invoke(app, ["video", str(both), str(tmp_path / f"both_{start}.mkv"), "-m", "auto", "--from", start])
        assert r.exit_code == 0 and f"note: --model auto: {want} (" in r.stderr, r.output
    # Light grain (seeded, lossless: the first frame reads 2.6 at its flattest blocks, below the noisy threshold): the
    # JPEG model where one is installed, as for a picture.
    from classsr_cli.degrade import add_noise
    from classsr_cli.pipeline import suited_video_model

    install("classsr_residual_jpeg_x4")
    y, x = np.mgrid[0:96, 0:128]
    ramp = np.stack([40 + x, 60 + y, 200 - x // 2], axis=2).clip(0, 255).astype(np.uint8)
    first = add_noise(ramp, 4, 10)
    light = tmp_path / "light.mkv"
    subprocess.run([FF, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "128x96", "-r", "5", "-i", "-",
                    "-c:v", "ffv1", "-pix_fmt", "bgr0", str(light)],
                   input=first.tobytes() + add_noise(ramp, 4, 11).tobytes(), check=True)  # fmt: skip
    r = CliRunner().invoke(app, ["video", str(light), str(tmp_path / "light_x4.mkv"), "-m", "auto", "--json"])
    assert r.exit_code == 0, r.output
    assert Path(json.loads(r.stdout)["model"]).name == "classsr_residual_jpeg_x4.safetensors"
    assert "note: --model auto: classsr_residual_jpeg_x4 (its first frame looks lightly noisy:" in r.stderr
    # a lossy codec's frame reads lower: lightly noisy from 1.5 at the flattest 2 %, noisy from 3 (a picture's 4)
    assert suited_video_model(first, 4, lossy=True, palette=False)[0] == "classsr_residual_jpeg_x4"  # reads 2.9
    grainier = add_noise(ramp, 5, 10)  # reads 3.6
    assert suited_video_model(grainier, 4, lossy=True, palette=False)[0] == "classsr_residual_noisy_x4"
    # HEVC, VP9 and AV1: the noisy model from 5, 4 and 4 (x265, libvpx and SVT-AV1 smooth the frames they predict more
    # than the first shows): below, the JPEG one, said as noisy, where H.264's takes the noisy one
    for codec in ("hevc", "vp9", "av1"):
        assert suited_video_model(grainier, 4, lossy=True, palette=False, codec=codec) == (
            "classsr_residual_jpeg_x4", "its first frame looks noisy: its noise estimate is 3.6 levels")
    assert suited_video_model(grainier, 4, lossy=True, palette=False, codec="h264")[0] == "classsr_residual_noisy_x4"
    grainiest = add_noise(ramp, 6, 10)  # reads 4.3
    assert suited_video_model(grainiest, 4, lossy=True, palette=False, codec="vp9")[0] == "classsr_residual_noisy_x4"
    assert suited_video_model(grainiest, 4, lossy=True, palette=False, codec="av1")[0] == "classsr_residual_noisy_x4"
    # AV1 takes the JPEG model from 2, not 1.5 (SVT-AV1 smooths light noise away): a frame reading 1.8, lightly noisy
    # for H.264, HEVC and VP9, gets the default model in AV1
    faint = add_noise(ramp, 2.6, 10)
    from classsr_cli.pipeline import _noise_levels

    assert 1.5 <= _noise_levels(faint)[1] < 2.0, _noise_levels(faint)
    for codec in ("h264", "hevc", "vp9"):
        assert suited_video_model(faint, 4, lossy=True, palette=False, codec=codec)[0] == "classsr_residual_jpeg_x4"
    assert suited_video_model(faint, 4, lossy=True, palette=False, codec="av1")[0] is None
    assert suited_video_model(first, 4, lossy=True, palette=False, codec="av1")[0] == "classsr_residual_jpeg_x4"
    assert suited_video_model(grainiest, 4, lossy=True, palette=False, codec="hevc")[0] == "classsr_residual_jpeg_x4"
    assert suited_video_model(first, 4, lossy=True, palette=False, codec="hevc")[1].endswith("lightly noisy: its "
                                                                                           "noise estimate is 2.9 levels")
    assert suited_video_model(grainier, 4, lossy=False, palette=False)[0] == "classsr_residual_jpeg_x4"
    assert suited_video_model(first, 4, lossy=False, palette=True)[0] is None
    assert suited_video_model(ramp, 4, lossy=False, palette=False)[0] is None
    assert suited_video_model(ramp, 4, lossy=True, palette=False)[0] is None
    # Clean H.264 coded coarsely (its blocks' mean QP from 30): the JPEG model, as for a JPEG below quality 90; finer
    # (libx264's default CRF, 23, reads about 19 on this ramp), the default. (The seeded ramp, one encoder thread:
    # lavfi's gradients are drawn anew each run, and their QPs with them.)
    assert suited_video_model(ramp, 4, lossy=True, palette=False, qp=30) == ("classsr_residual_jpeg_x4",
                                                                             "coded as H.264 at QP 30")
    assert suited_video_model(ramp, 4, lossy=True, palette=False, qp=29.9)[0] is None
    for crf, want in ((40, "classsr_residual_jpeg_x4"), (23, "classsr_residual_x4")):
        coded = tmp_path / f"coded{crf}.mp4"
        subprocess.run([FF, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "128x96", "-r", "5", "-i", "-",
                        "-c:v", "libx264", "-crf", str(crf), "-threads", "1", "-pix_fmt", "yuv420p", str(coded)],
                       input=ramp.tobytes() * 2, check=True)  # fmt: skip
        r = CliRunner().invoke(app, ["video", str(coded), str(tmp_path / f"coded{crf}_x4.mp4"), "-m", "auto", "--json"])
        assert r.exit_code == 0, r.output
        assert Path(json.loads(r.stdout)["model"]).name == f"{want}.safetensors"
        said = "classsr_residual_jpeg_x4 (coded as H.264 at QP " if crf == 40 else "the default model (its first"
        assert f"note: --model auto: {said}" in r.stderr
    # Grain HEVC kept (σ 6 at CRF 18; reads 4.1 where H.264's noisy model fires from 3): the JPEG model; the noisy
    # model from 5 (x265 smooths the frames it predicts more than the first shows: docs/results.md)
    grainy = add_noise(ramp, 6, 10).tobytes() + add_noise(ramp, 6, 11).tobytes()
    hevc = tmp_path / "grain_hevc.mp4"
    subprocess.run([FF, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "128x96", "-r", "5", "-i", "-",
                    "-c:v", "libx265", "-crf", "18", "-x265-params", "log-level=error:pools=1:frame-threads=1",
                    "-pix_fmt", "yuv420p", str(hevc)], input=grainy, check=True)  # fmt: skip
    r = CliRunner().invoke(app, ["video", str(hevc), str(tmp_path / "grain_hevc_x4.mp4"), "-m", "auto", "--json"])
    assert r.exit_code == 0 and Path(json.loads(r.stdout)["model"]).name == "classsr_residual_jpeg_x4.safetensors"
    assert "note: --model auto: classsr_residual_jpeg_x4 (its first frame looks noisy: its noise estimate is 4." \
        in r.stderr, r.stderr


def _fake_encoder(tmp_path: Path, behaviour: str, real: str, pipe: str = "pipe:0") -> str:
    """An ffmpeg that, when it is piped frames to encode, ``hang``s (sleeps, reading nothing), is ``busy`` for 2.5 s
    before it reads them all, ``loop``s busy for ever, or reads them as they come (``idle`` between them); anything
    else runs ``real``.
    ``pipe`` ``pipe:1``: it hangs where it would decode frames into a pipe instead."""
    import sys

    script = tmp_path / f"ffmpeg_{behaviour}"
    script.write_text(f"""#!{sys.executable}
import os, sys, time
if {pipe!r} not in sys.argv:
    os.execv({real!r}, [{real!r}, *sys.argv[1:]])
if {behaviour!r} == "hang":
    time.sleep(60)
if {behaviour!r} == "busy":
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        pass
while {behaviour!r} == "loop":
    pass
while sys.stdin.buffer.read(1 << 16):
    pass
""")
    script.chmod(0o755)
    return str(script)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the encoder's CPU time is read from /proc")
def test_a_hung_encoder_is_stopped_and_a_slow_one_is_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from classsr_cli.io import video as video_io
    from classsr_cli.io.video import VideoWriter, ffmpeg_exe

    frame = np.zeros((256, 256, 3), np.uint8)  # 192 KiB: more than a pipe holds, so writing it waits on the encoder
    real = ffmpeg_exe()

    def writer(behaviour: str) -> VideoWriter:
        fake = _fake_encoder(tmp_path, behaviour, real)
        monkeypatch.setattr(video_io, "ffmpeg_exe", lambda: fake)
        return VideoWriter(tmp_path / f"{behaviour}.mkv", 256, 256, time_base=Fraction(1, 10))

    # One that takes no CPU time while a frame waits on it is killed, in about the stall's time, and said so.
    monkeypatch.setattr(video_io, "STALL_SECONDS", 0.5)
    hung = writer("hang")
    t0 = time.monotonic()
    with pytest.raises(VideoError, match=r"^the encoder hung: ffmpeg \(libx264\) used no CPU time for 0\.5 s while classsr "
                                         r"waited on it, and was stopped; run it again, or try another --codec$"):
        for pts in range(3):
            hung.write(frame, pts)
        hung.close()
    assert time.monotonic() - t0 < 20
    hung.abort()
    # One busy (using CPU time) for five times the stall before it reads a frame is left to finish.
    monkeypatch.setattr(video_io, "STALL_SECONDS", 0.5)
    busy = writer("busy")
    for pts in range(3):
        busy.write(frame, pts)
    busy.close()
    assert busy.frames_written == 3
    # So is one that waits for frames (no CPU time) while classsr is not waiting on it.
    idle = writer("idle")
    idle.write(frame, 0)
    time.sleep(1.5)
    idle.write(frame, 1)
    idle.close()
    assert idle.frames_written == 2


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the encoder's CPU time is read from /proc")
def test_video_with_a_hung_encoder_ends_in_one_line(clips: dict[str, Path], tiny_model_path: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from classsr_cli.io import video as video_io
    from classsr_cli.io.video import ffmpeg_exe

    fake = _fake_encoder(tmp_path, "hang", ffmpeg_exe())  # decoding runs the real ffmpeg, encoding hangs
    monkeypatch.setattr(video_io, "ffmpeg_exe", lambda: fake)
    monkeypatch.setattr(video_io, "STALL_SECONDS", 0.5)
    out = tmp_path / "out" / "o.mkv"
    out.parent.mkdir()
    r = runner.invoke(app, ["video", str(clips["audio"]), str(out), "--model", str(tiny_model_path)])
    assert r.exit_code == 1, r.output
    assert r.stderr.strip().splitlines()[-1] == ("error: the encoder hung: ffmpeg (libx264) used no CPU time for 0.5 s "
                                                 "while classsr waited on it, and was stopped; run it again, or try "
                                                 "another --codec")
    assert not out.exists() and no_partials(out.parent)


_STOPPED = {  # how a stand-in decoder behaves: the limit it is stopped by, and the line that says so
    "hang": ("STALL_SECONDS", 0.5, r"^the decoder hung: ffmpeg used no CPU time for 0\.5 s while classsr waited for a "
                                   r"frame of {}, and was stopped; run it again$"),
    "loop": ("SPIN_SECONDS", 1.0, r"^the decoder gave no frame of {} in 1 s of work, and was stopped: ffmpeg's reader "
                                  r"loops on it \(its DASH reader does on some manifests\); give the media file itself$"),
}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="ffmpeg's CPU time is read from /proc")
@pytest.mark.parametrize("behaviour", list(_STOPPED))
def test_a_hung_or_looping_decoder_is_stopped(clips: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              behaviour: str) -> None:  # fmt: skip
    """A decoder that gives no frame and uses no CPU time while the reader waits for one is killed after the stall;
    one that uses CPU time for ever without giving one (ffmpeg's DASH reader on some manifests) once a frame has been
    waited for :data:`SPIN_SECONDS`. The read ends in one line naming the file (not taken for a damaged file that
    ended early)."""
    import time

    from classsr_cli.io import video as video_io
    from classsr_cli.io.video import VideoReader, ffmpeg_exe

    info = probe(clips["audio"])
    fake = _fake_encoder(tmp_path, behaviour, ffmpeg_exe(), pipe="pipe:1")
    limit, seconds, said = _STOPPED[behaviour]
    monkeypatch.setattr(video_io, "ffmpeg_exe", lambda: fake)
    monkeypatch.setattr(video_io, limit, seconds)
    t0 = time.monotonic()
    with pytest.raises(VideoError, match=said.format(re.escape(str(clips["audio"])))), VideoReader(info) as reader:
        list(reader)
    assert time.monotonic() - t0 < 20


def test_the_watchdog_stops_one_wait_that_lasts_its_spin_however_busy() -> None:
    """Each wait (a frame) has ``spin`` seconds, busy or not; the waits that follow one another, and time not waited,
    start the count again."""
    import subprocess as sp

    from classsr_cli.io.video import _Watchdog

    dog = _Watchdog(sp.Popen(["true"]), 100.0, spin=10.0)
    assert dog.poll == 1.0
    assert not any(dog.stalled(t, True, float(t), entered=1) for t in range(10))  # busy, 9 s into one wait
    assert not dog.stalled(10, True, 10.0, entered=2)  # the next frame's wait
    assert not any(dog.stalled(t, t % 5 != 0, float(t), entered=2) for t in range(11, 30))  # not waited on every 5th
    assert not dog.spun and dog.stalled(30, True, 30.0, entered=3) is False
    assert not any(dog.stalled(t, True, float(t), entered=3) for t in range(31, 40))
    assert dog.stalled(40, True, 40.0, entered=3) and dog.spun
    dog.proc.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="ffmpeg's CPU time is read from /proc")
def test_joining_chunks_with_an_ffmpeg_that_hangs_ends_in_one_line(tiny_model: torch.nn.Module, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-shot ffmpeg runs of a video (joining a resumed run's chunks, cutting a part's subtitles) are watched
    too: an ffmpeg that hangs while joining is stopped, the run ends in one line saying so, and the chunks are kept
    for the next run, which joins them."""
    from classsr_cli.io import video as video_io
    from classsr_cli.io.video import ffmpeg_exe, run_watched
    from classsr_cli.video import resume_folder

    real = ffmpeg_exe()
    done = run_watched([real, "-hide_banner", "-version"])
    assert done.returncode == 0 and done.stdout.startswith(b"ffmpeg version")
    src = tmp_path / "src.mkv"
    ff("-f", "lavfi", "-i", "testsrc2=size=32x24:rate=10:duration=0.6", "-c:v", "ffv1", src)
    fake = _fake_encoder(tmp_path, "hang", real, pipe="concat")  # hangs where it joins
    out = tmp_path / "o.mkv"
    kw: dict[str, Any] = {"options": EncodeOptions(codec="ffv1"), "resume": True, "chunk_frames": 2}
    with monkeypatch.context() as m:
        m.setattr(video_io, "ffmpeg_exe", lambda: fake)
        m.setattr(video_io, "STALL_SECONDS", 0.5)
        with pytest.raises(VideoError, match=r"joining the chunks into .*o\.mkv failed \(ffmpeg exit -9\): .*ffmpeg hung: "
                                             r"it used no CPU time for 0\.5 s, and was stopped$"):
            upscale_video(tiny_model, src, out, **kw)
    assert not out.exists() and resume_folder(out).is_dir()
    again = upscale_video(tiny_model, src, out, **kw)
    assert again.frames == 6 and again.resumed == 6 and out.is_file() and not resume_folder(out).exists()


def test_the_watchdog_counts_only_time_spent_waiting_on_an_encoder_that_does_nothing() -> None:
    """Fed looks at an encoder 1 s apart (a stall of 10 s, polled every 1 s): it fires after 10 s of waiting with the
    CPU time still; CPU time used, or the caller not waiting, starts the count again; a gap of 1000 s between two
    looks (classsr itself stopped by Ctrl-Z) counts as 2 s."""
    import subprocess as sp

    from classsr_cli.io.video import _Watchdog

    dog = _Watchdog(sp.Popen(["true"]), 10.0)
    assert dog.poll == 1.0
    looks = [dog.stalled(5, True, float(t)) for t in range(10)]
    assert not any(looks) and dog.stalled(5, True, 10.0)  # 10 s waited, no CPU time
    assert not dog.stalled(6, True, 11.0)  # it moved
    assert not any(dog.stalled(6, t % 3 != 0, float(t)) for t in range(12, 40))  # not waited on every third look
    assert not dog.stalled(6, True, 1040.0)  # stopped for 1000 s: counts 2 s
    assert not any(dog.stalled(6, True, 1040.0 + t) for t in range(1, 8))  # 9 s
    assert dog.stalled(6, True, 1048.0)
    dog.proc.wait()


def test_cpu_ticks_counts_a_process_threads_time() -> None:
    import os

    from classsr_cli.io.video import cpu_ticks

    if not Path("/proc/self/stat").exists():
        assert cpu_ticks(os.getpid()) is None
        return
    before = cpu_ticks(os.getpid())
    end = __import__("time").process_time() + 0.3
    while __import__("time").process_time() < end:
        pass
    after = cpu_ticks(os.getpid())
    assert before is not None and after is not None and after - before >= 10  # 0.3 s at 100 ticks a second
    assert cpu_ticks(2**22 + 12345) is None  # no such process


SEEK_SOURCES = {  # name: (ffmpeg's encoding options, suffix, reader options)
    "h264_bframes": (["-c:v", "libx264", "-g", "9", "-bf", "3"], ".mp4", {}),
    "hevc_open_gop": (["-c:v", "libx265", "-x265-params", "keyint=10:open-gop=1:bframes=4:log-level=error"], ".mkv", {}),
    "vp9": (["-c:v", "libvpx-vp9", "-g", "10", "-b:v", "200k"], ".webm", {}),
    "vfr": (["-c:v", "libx264", "-g", "7", "-vf", "setpts='PTS+if(gte(N,20),0.5/TB,0)'", "-fps_mode", "vfr"], ".mp4",
            {}),
    "interlaced": (["-c:v", "libx264", "-g", "9", "-flags", "+ildct+ilme", "-x264-params", "tff=1"], ".mp4",
                   {"deinterlace": True}),
    "starts_late": (["-c:v", "libx264", "-g", "9", "-bf", "2", "-output_ts_offset", "0.3333"], ".mp4", {}),
    "interlaced_late": (["-c:v", "libx264", "-g", "9", "-flags", "+ildct+ilme", "-x264-params", "tff=1",
                         "-output_ts_offset", "2.5"], ".mkv", {"deinterlace": True}),
}


@pytest.mark.parametrize("name", list(SEEK_SOURCES))
def test_a_reader_from_frame_k_starts_at_the_keyframe_before_it_and_gives_the_same_frames(
    name: str, tmp_path: Path
) -> None:
    """``VideoReader(first=K)`` starts ffmpeg at the keyframe at or before frame K (before it, where a deinterlacer
    needs the frame before) instead of decoding every frame before it: the frames it gives are the ones reading from
    the start gives, index, timestamp and pixels, and the timestamps of those it skipped too, for B-frames, an open
    GOP (HEVC's leading frames), VP9, a variable frame rate, interlaced frames deinterlaced, and streams that start
    after 0 (``-copyts`` keeps their start on the timestamps, which reading from the start takes off)."""
    from classsr_cli.io.video import VideoReader, keyframe_seek

    args, suffix, kw = SEEK_SOURCES[name]
    src = tmp_path / f"{name}{suffix}"
    ff("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=24:duration=2", *args, "-pix_fmt", "yuv420p", src)
    info = probe(src)
    with VideoReader(info, **kw) as reader:
        every = [(f.index, f.pts, f.rgb.copy()) for f in reader]
    assert len(every) == 48
    seeked = 0
    for first in (1, 9, 10, 21, 35, 47):
        reader = VideoReader(info, first=first, **kw)
        with reader:
            got = [(f.index, f.pts, f.rgb) for f in reader]
            seeked += reader._seeked is not None  # it started at a keyframe (and stayed)
        assert len(got) == 48 - first and reader.skipped_pts == [pts for _, pts, _ in every[:first]], (name, first)
        for (i, pts, rgb), (j, want_pts, want) in zip(got, every[first:], strict=True):
            assert (i, pts) == (j, want_pts) and np.array_equal(rgb, want), (name, first, i)
    point = keyframe_seek(info, 35, strict=bool(kw))
    assert point is not None and 0 < point.at <= 35 and seeked >= 4, (name, point, seeked)
    assert (point.shift != 0) == name.endswith("_late")


def test_a_reader_that_lands_on_another_frame_after_a_seek_reads_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the frame after a keyframe seek is not the one its packets said (a stream whose timestamps the decoder
    gives otherwise), the reader reads from the start instead, and gives the same frames."""
    from dataclasses import replace as changed

    from classsr_cli.io import video as video_io
    from classsr_cli.io.video import VideoReader, keyframe_seek

    src = tmp_path / "gop5.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=24:duration=1", "-c:v", "libx264", "-g", "5", "-pix_fmt",
       "yuv420p", src)  # fmt: skip
    info = probe(src)
    with VideoReader(info) as reader:
        every = [(f.index, f.pts, f.rgb.copy()) for f in reader]
    first = len(every) - 2
    point = keyframe_seek(info, first)
    assert point is not None and point.at == 20
    monkeypatch.setattr(video_io, "keyframe_seek", lambda *a, **k: changed(point, expect=point.expect + 1))
    reader = VideoReader(info, first=first)
    with reader:
        got = [(f.index, f.pts, f.rgb) for f in reader]
    assert reader._seeked is None and reader.skipped_pts == [pts for _, pts, _ in every[:first]]
    assert [(i, pts) for i, pts, _ in got] == [(i, pts) for i, pts, _ in every[first:]]
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(got, every[first:], strict=True))


@pytest.mark.parametrize("kind", ["h264_open_gop.ts", "mpeg2.mpg"])
def test_a_part_far_into_an_mpeg_ts_is_read_from_a_seek_before_it_with_the_same_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """ffmpeg's seek into MPEG-TS (or a program stream) lands on the keyframe after the time asked: a part 12.3 s in
    is read from a seek 10 s before it, which lands before the part, and trimmed as from the start: the same frames
    (index, timestamp, duration, pixels), from a resumed first frame too, and none of the errors an open GOP's leading
    pictures log at the seek. A part within the margin, and a stream with no keyframe after its first, are read from
    the start."""
    from classsr_cli.io import video as video_io
    from classsr_cli.io.video import VideoReader, near_seek

    src = tmp_path / kind
    codec = (["-c:v", "libx264", "-bf", "3", "-x264-params", "open-gop=1:keyint=25"] if kind.endswith(".ts")
             else ["-c:v", "mpeg2video", "-g", "12", "-bf", "2"])  # fmt: skip
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=14", *codec, src)
    part = probe(src).trimmed(12.3, 1.0)
    assert near_seek(part) == 10.0 and video_io._cut(part)[0] == ["-ss", "2.300000"]
    assert near_seek(probe(src).trimmed(9.0, 1.0)) is None
    read = {}
    for near in (True, False):
        monkeypatch.setattr(video_io, "near_seek", (lambda i: 10.0 if i.seek > 10 else None) if near else lambda i: None)
        for first in (0, 7):
            with VideoReader(part, first=first) as reader:
                read[near, first] = [(f.index, f.pts, f.duration, f.rgb.copy()) for f in reader]
                assert reader.errors == 0, reader.error_message()
    for first in (0, 7):
        got, want = read[True, first], read[False, first]
        assert len(got) == 25 - first and [g[:3] for g in got] == [w[:3] for w in want]
        assert all(np.array_equal(g[3], w[3]) for g, w in zip(got, want, strict=True))
    flat = tmp_path / "one_keyframe.ts"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=14", "-c:v", "libx264", "-x264-params",
       "keyint=9999", flat)  # fmt: skip
    assert near_seek(probe(flat).trimmed(12.3, 1.0)) is None


NEAR_SEEK_SOURCES = {  # name: (ffmpeg's options, suffix, reader options); the audio makes the file start before it
    "h264_open_gop_audio": (["-c:v", "libx264", "-bf", "3", "-x264-params", "open-gop=1:keyint=25", "-c:a", "mp2"],
                            ".ts", {}),
    "mpeg2_interlaced": (["-c:v", "mpeg2video", "-g", "12", "-flags", "+ildct+ilme", "-vf", "setfield=tff"], ".ts",
                         {"deinterlace": True}),
    # A program stream's packets carry no timestamp on many frames: its frames are counted from the start.
    "mpeg2_program_stream": (["-c:v", "mpeg2video", "-g", "12", "-bf", "2", "-c:a", "mp2"], ".mpg", {}),
}


@pytest.mark.parametrize("name", list(NEAR_SEEK_SOURCES))
def test_a_reader_from_frame_k_of_an_mpeg_ts_seeks_before_it_and_gives_the_same_frames(
    name: str, tmp_path: Path
) -> None:
    """Into MPEG-TS, whose seek lands on the keyframe after the time asked, ``VideoReader(first=K)`` (a resumed run, a
    torchrun share) seeks a second before the keyframe at or before frame K and trims the frames before K on their
    timestamps as ``-copyts`` keeps them (the video's own start, which reading from the start takes off, found from the
    packets): the frames, their timestamps and the skipped ones are those reading from the start gives, with no
    errors counted from the open GOP's leading pictures; frames before the first keyframe past a second, and a program
    stream's (its packets do not all carry a timestamp, so they do not count its frames), are read from the start."""
    from classsr_cli.io.video import VideoReader, keyframe_seek

    args, suffix, kw = NEAR_SEEK_SOURCES[name]
    src = tmp_path / f"{name}{suffix}"
    audio = ["-f", "lavfi", "-i", "sine=duration=14"] if "-c:a" in args else []
    ff("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=14", *audio, *args, "-pix_fmt", "yuv420p", src)
    info = probe(src)
    with VideoReader(info, **kw) as reader:
        every = [(f.index, f.pts, f.rgb.copy()) for f in reader]
    assert len(every) == 350
    assert keyframe_seek(info, 20, strict=bool(kw)) is None  # no keyframe a second in before it: from the start
    for first in (60, 77, 300, 349):
        reader = VideoReader(info, first=first, **kw)
        with reader:
            got = [(f.index, f.pts, f.rgb) for f in reader]
            seeked = reader._seeked is not None and reader._seeked.trim is not None
            assert seeked == (suffix == ".ts") and reader.errors == 0, (name, first)
        assert len(got) == 350 - first and reader.skipped_pts == [pts for _, pts, _ in every[:first]], (name, first)
        for (i, pts, rgb), (j, want_pts, want) in zip(got, every[first:], strict=True):
            assert (i, pts) == (j, want_pts) and np.array_equal(rgb, want), (name, first, i)


def _telecined(tmp_path: Path, name: str, pulldown: bool) -> Path:
    """3 s of ``testsrc2`` as interlaced MPEG-2 at 29.97 frames/s: film at 23.976 through 3:2 pulldown, or video
    whose fields are 1/59.94 s apart."""
    src = tmp_path / name
    rate, fields = ("24000/1001", "setfield=tff,telecine=first_field=top:pattern=23") if pulldown else (
        "60000/1001", "tinterlace=mode=interleave_top,setfield=tff")
    ff("-f", "lavfi", "-i", f"testsrc2=size=160x120:rate={rate}:duration=3", "-vf", fields, "-c:v", "mpeg2video",
       "-flags", "+ilme+ildct", "-q:v", "2", src)  # fmt: skip
    return src


def test_telecined_film_gets_its_frames_back_with_ivtc(
    tiny_model: torch.nn.Module, tiny_model_path: Path, tmp_path: Path
) -> None:
    """Film telecined to 29.97 interlaced (an NTSC DVD's) repeats a field in 2 frames of 5, which video does not: the
    deinterlacing note suggests --ivtc for it alone. With it the film's 72 frames come back at 23.976 frames/s,
    near the film coded progressive (bwdif's 90 frames, a frame for each, 10 dB and more further from the film frame
    showing then); a progressive source, and --no-deinterlace beside it, are refused in one line."""
    from classsr_cli.io.video import IVTC, VideoReader, telecined_share

    film, video = _telecined(tmp_path, "film.mpg", True), _telecined(tmp_path, "video.mpg", False)
    assert telecined_share(probe(film)) == pytest.approx(0.4, abs=0.05)
    assert telecined_share(probe(video)) == pytest.approx(0.0, abs=0.05)
    fast = EncodeOptions(preset="ultrafast")
    said = upscale_video(tiny_model, film, tmp_path / "bwdif.mp4", options=fast).notes
    assert any("looks telecined (40% of its frames repeat a field" in n and "--ivtc" in n for n in said), said
    said = upscale_video(tiny_model, video, tmp_path / "video.mp4", options=fast).notes
    assert not [n for n in said if "telecined" in n]
    res = upscale_video(tiny_model, film, tmp_path / "ivtc.mp4", options=fast, deinterlace=IVTC)
    assert res.frames == 72 and any("its film frames put back (--ivtc" in n for n in res.notes)
    assert np.diff(frame_times(tmp_path / "ivtc.mp4")) == pytest.approx(1001 / 24000, abs=1e-4)
    progressive = tmp_path / "progressive.mpg"  # the film as it was, coded alike and read by the same reader
    ff("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=24000/1001:duration=3", "-c:v", "mpeg2video", "-q:v", "2",
       progressive)  # fmt: skip
    with VideoReader(probe(progressive)) as reader:
        originals = [f.rgb.astype(float) for f in reader]

    def psnr(a: np.ndarray, b: np.ndarray) -> float:
        return float(10 * np.log10(255**2 / max(np.mean((a.astype(float) - b) ** 2), 1e-3)))  # 84 dB: equal

    info = probe(film)
    with VideoReader(info, deinterlace=IVTC) as reader:
        back = [psnr(f.rgb, originals[f.index]) for f in reader]
    with VideoReader(info, deinterlace=True) as reader:  # each frame against the film frame showing then
        each = [psnr(f.rgb, originals[min(71, int(f.pts * reader.time_base * 24000 / 1001 + 1e-6))]) for f in reader]
    assert len(back) == 72 and len(each) == 90 and np.median(back) > np.median(each) + 10, (np.median(back),
                                                                                            np.median(each))
    with pytest.raises(ConfigError, match="this one is progressive"):
        upscale_video(tiny_model, progressive, tmp_path / "o.mp4", deinterlace=IVTC)
    r = runner.invoke(app, ["video", str(film), str(tmp_path / "x.mp4"), "--model", str(tiny_model_path), "--ivtc",
                            "--no-deinterlace"])  # fmt: skip
    assert r.exit_code == 2 and "--ivtc and --no-deinterlace ask for opposite things" in r.output


def test_ivtc_resumes_a_stopped_run_with_the_film_frames_of_a_run_never_stopped(
    tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    """--ivtc with --resume: the film frames are counted after the inverse telecine, so a stopped run's chunks hold
    film frames and the run that continues it decodes from the start and drops them: the output has the frames and
    timestamps of a run never stopped (a run of 72 from 90 interlaced ones)."""
    from classsr_cli.io.video import IVTC

    film = _telecined(tmp_path, "film.mpg", True)
    exact = EncodeOptions(codec="ffv1", pix_fmt="yuv444p")
    steady = TemporalOptions(hysteresis=0.0)  # each frame routed on its own: the pixels cannot depend on the stop
    straight = upscale_video(tiny_model, film, tmp_path / "straight.mkv", options=exact, temporal=steady,
                             deinterlace=IVTC)
    out = tmp_path / "o.mkv"
    kw: dict[str, Any] = {"options": exact, "temporal": steady, "resume": True, "chunk_frames": 16, "deinterlace": IVTC}
    with pytest.raises(KeyboardInterrupt):
        upscale_video(tiny_model, film, out, progress=stop_after(40), **kw)
    seen: list[int] = []
    done = upscale_video(tiny_model, film, out, progress=lambda d, t: seen.append(d), **kw)
    assert (straight.frames, done.frames, done.resumed, len(seen)) == (72, 72, 32, 40)
    assert frame_times(out) == frame_times(tmp_path / "straight.mkv")
    with VideoReader(probe(out)) as a, VideoReader(probe(tmp_path / "straight.mkv")) as b:
        assert all(np.array_equal(x.rgb, y.rgb) for x, y in zip(a, b, strict=True))
    assert (done.counts, done.flops) == (straight.counts, straight.flops)


def test_frames_above_the_codecs_largest_level_are_said_to_play_in_few_players(
    tmp_path: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 360° camera's 5.7K video x2 is 11520x5760 (66 MP a frame): above the largest level of H.264, HEVC, VP9 and
    AV1 (35.7 MP), which hardware decoders and players are built to; the encoders write it without a word (x264 a
    warning only). A note says so and what holds it; ProRes and picture frames get none, nor a frame at the limit."""
    from classsr_cli.io import video as iov
    from classsr_cli.io.video import LEVEL_PIXELS, level_note

    assert level_note("libx264", 11520, 5760) == [
        "the output's 11520x5760 frames (66.4 MP) are above H.264's largest level (35.7 MP, 8192x4352): hardware "
        "decoders and most players will not play them; a smaller -x or --width, ProRes in a .mov (--codec prores_ks) "
        "or picture frames hold them"]
    assert "HEVC's" in level_note("libx265", 11520, 5760)[0] and "AV1's" in level_note("libsvtav1", 11520, 5760)[0]
    assert level_note("libx265", 8192, 4352) == [] and LEVEL_PIXELS == 8192 * 4352
    assert level_note("prores_ks", 11520, 5760) == [] and level_note("png", 11520, 5760) == []
    src = tmp_path / "clip.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x32:rate=10:duration=0.2", "-c:v", "libx264", "-pix_fmt", "yuv420p", src)
    monkeypatch.setattr(iov, "LEVEL_PIXELS", 256 * 128 - 1)  # as if the x4 output were above it
    r = runner.invoke(app, ["video", str(src), str(tmp_path / "up.mp4"), "--model", str(tiny_model_path),
                            "--preset", "ultrafast"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "the output's 256x128 frames (0.0 MP) are above H.264's largest level" in " ".join(r.output.split())


# ------------------------------------------------------------- fragmented, encrypted and late-starting sources


def test_ffmpeg_statistics_line_is_not_the_message() -> None:
    import io

    from classsr_cli.io.video import _StderrPump

    pump = _StderrPump(io.BytesIO(b"[info] Output #0, rawvideo, to 'pipe:1':\n"
                                  b"[info] frame=    0 fps=0.0 q=0.0 Lsize=       0KiB time=N/A bitrate=N/A\n"))  # fmt: skip
    pump.run()
    assert pump.message() == "Output #0, rawvideo, to 'pipe:1':"


@pytest.mark.slow
def test_dash_segments_alone_and_encrypted_mp4_are_refused_saying_what_they_are(tmp_path: Path) -> None:
    # A DASH stream as ffmpeg's muxer writes it: a manifest, an initialization segment, media segments.
    mpd = tmp_path / "dash" / "stream.mpd"
    mpd.parent.mkdir()
    ff("-f", "lavfi", "-i", f"{TESTSRC}:duration=2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "10",
       "-seg_duration", "0.5", "-f", "dash", mpd)  # fmt: skip
    init = mpd.parent / "init-stream0.m4s"
    segments = sorted(mpd.parent.glob("chunk-stream0-*.m4s"))
    assert init.exists() and len(segments) >= 2
    with pytest.raises(InputError, match=r"init-stream0\.m4s: is the initialization segment of a fragmented MP4 .* "
                                         r"alone, which holds no frames: give its playlist \(\.m3u8\) or manifest"):
        probe(init)
    with pytest.raises(InputError, match=r"chunk-stream0-00002\.m4s: is a media segment of a fragmented MP4 .* "
                                         r"without its initialization segment"):
        probe(segments[1])
    # What the message says to do works: the manifest, or the segments joined in order.
    assert probe(mpd).width == 64
    whole = tmp_path / "whole.mp4"
    whole.write_bytes(b"".join(p.read_bytes() for p in [init, *segments]))
    assert probe(whole).frames_estimate == 40

    # Common Encryption (DRM): ffmpeg would decode the scrambled frames as they are.
    for name, frag in (("cenc.mp4", []), ("cenc_fragmented.mp4", ["-movflags", "frag_keyframe+empty_moov"])):
        ff("-f", "lavfi", "-i", f"{TESTSRC}:duration=0.5", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-encryption_scheme", "cenc-aes-ctr", "-encryption_key", "76a6c65c5ea762046bd749a2e632ccbb",
           "-encryption_kid", "a7e61c373e219033c21091fa607bf3b8", *frag, tmp_path / name)  # fmt: skip
        with pytest.raises(InputError, match=rf"{name}: is encrypted \(DRM\), which classsr cannot decode$"):
            probe(tmp_path / name)
    result = runner.invoke(app, ["video", str(tmp_path / "cenc.mp4"), str(tmp_path / "out.mp4")])
    assert result.exit_code == 1 and result.output.strip().endswith("is encrypted (DRM), which classsr cannot decode")
    assert not (tmp_path / "out.mp4").exists()


def test_an_encrypted_webm_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ffmpeg's own listing of an encrypted WebM (androidx/media's test asset subsample_encrypted_altref.webm): its
    # duration 0, no pixel format, a key id among the stream's metadata. ffmpeg's muxer makes no such file.
    listing = """Input #0, matroska,webm, from 'enc.webm':
  Metadata:
    encoder         : libwebm-0.2.1.0
  Duration: 00:00:00.00, start: 0.000000, bitrate: 2880 kb/s
  Stream #0:0(eng): Video: vp9 (Profile 0), none, 360x240, SAR 1:1 DAR 3:2, 1k tbr, 1k tbn (default)
    Metadata:
      enc_key_id      : AQIDBAUGBwgJEBESExQVFg==
"""
    import classsr_cli.io.video as video_io

    src = tmp_path / "enc.webm"
    src.write_bytes(b"\x1a\x45\xdf\xa3")
    monkeypatch.setattr(video_io, "_run_probe", lambda path, demux=(): listing)
    with pytest.raises(InputError, match=r"enc\.webm: is encrypted \(DRM\)"):  # not "--start 0 s is past its end"
        probe(src)
    monkeypatch.setattr(video_io, "_run_probe", lambda path, demux=(): listing.replace("enc_key_id", "title"))
    assert probe(src).width == 360


def test_an_encrypted_dash_manifest_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ffmpeg's own listing of a DASH manifest of Common Encryption segments (shaka-player's ``dash-clearkey`` test
    asset): no ``encv`` to read through the manifest, its stream's ``pssh`` listed as encryption initialization data.
    It was decoded as scrambled bytes ("the decoder failed ... top block unavailable")."""
    listing = """Input #0, dash, from 'dash.mpd':
  Duration: 00:00:20.00, start: 0.000000, bitrate: 0 kb/s
  Program 0
  Stream #0:0: Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 512x288 [SAR 1:1 DAR 16:9], 15 kb/s, 24 fps, 24 tbr, 24 tbn (default)
    Metadata:
      variant_bitrate : 400000
    Side data:
      Encryption initialization data: (646 bytes)
"""
    import classsr_cli.io.video as video_io

    src = tmp_path / "dash.mpd"
    src.write_text("<MPD/>")
    monkeypatch.setattr(video_io, "_run_probe", lambda path, demux=(): listing)
    with pytest.raises(InputError, match=r"dash\.mpd: is encrypted \(DRM\), which classsr cannot decode$"):
        probe(src)
    monkeypatch.setattr(video_io, "_run_probe", lambda path, demux=(): listing.replace("Encryption initialization", "Other"))
    assert probe(src).width == 512


def test_a_duration_listed_as_0_is_not_known(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ffmpeg lists a DASH manifest of several periods (shaka-player's ``dash-multitype-variant``) as lasting 0 s: it
    was refused with "--start 0 s is past its end (0.00 s)"; its length is now unknown, read to the end."""
    listing = """Input #0, dash, from 'dash.mpd':
  Duration: 00:00:00.00, start: 0.000000, bitrate: N/A
  Program 0
  Stream #0:0: Video: h264 (Constrained Baseline) (avc1 / 0x31637661), yuv420p(progressive), 192x144 [SAR 1:1 DAR 4:3], 66 kb/s, 29.97 fps, 29.97 tbr, 11988 tbn (default)
"""
    import classsr_cli.io.video as video_io

    src = tmp_path / "dash.mpd"
    src.write_text("<MPD/>")
    monkeypatch.setattr(video_io, "_run_probe", lambda path, demux=(): listing)
    info = probe(src)
    assert info.duration is None and info.trimmed(0.0, 0.2).span == 0.2


@pytest.mark.slow
def test_a_part_of_a_video_that_starts_after_its_audio(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    # The video's first frame 0.5 s into the file (an edit list), its audio from 0: ffmpeg's input -t counts from
    # the video's first frame, and read frames past the part (its output stopped early: "encoder failed").
    src = tmp_path / "late.mp4"
    ff("-itsoffset", "0.5", "-f", "lavfi", "-i", f"{TESTSRC}:duration=1.5", "-f", "lavfi", "-i",
       "sine=frequency=440:duration=2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", src)  # fmt: skip
    assert probe(src).video_start == pytest.approx(0.5)
    fast = EncodeOptions(preset="ultrafast")
    part = upscale_video(tiny_model, src, tmp_path / "part.mp4", options=fast, length=0.75)
    assert part.frames == 5  # 0.5, 0.55, ... 0.7 s: the part's, not 0.75 s from the first frame on (15)
    assert frame_times(tmp_path / "part.mp4") == pytest.approx([0.5, 0.55, 0.6, 0.65, 0.7], abs=2e-3)
    later = upscale_video(tiny_model, src, tmp_path / "later.mkv", options=fast, start=0.25, length=0.5)
    assert later.frames == 5  # from 0.5 s to 0.7 s, not 0.5 s of frames from the part's first on (10)
    with pytest.raises(InputError, match=r"late\.mp4: no frame from 0 s to 0\.3 s: its video starts at 0\.50 s$"):
        upscale_video(tiny_model, src, tmp_path / "none.mp4", options=fast, length=0.3)
    assert not (tmp_path / "none.mp4").exists()


def test_a_streams_ticks_are_taken_only_where_whole() -> None:
    # A time base of 1001/30000 (an AVI's at 29.97 fps) lists as "29.97 tbn": a count of ticks cannot be taken from
    # it (it was read as 97), and the part is cut in seconds as before.
    from classsr_cli.io.video import _ticks

    assert [_ticks(f"25 fps, 25 tbr, {tbn} tbn (default)") for tbn in ("1", "90k", "15360", "29.97")] == [
        1, 90000, 15360, None]
    assert _ticks("25 fps, 25 tbr") is None


def test_a_part_of_a_video_of_a_tick_a_second_holds_its_frames(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    # An MP4 whose time base is a second (libavif's animated AVIFs are so): ffmpeg's trim=end in seconds is rounded to
    # the nearest tick, 0.2 s to 0, and the part lost its only frame ("no frame could be decoded"); now in ticks,
    # rounded up.
    src = tmp_path / "slow.mp4"
    ff("-f", "lavfi", "-i", "testsrc=size=64x48:rate=1:duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p",
       "-video_track_timescale", "1", src)  # fmt: skip
    assert probe(src).ticks == 1
    part = upscale_video(tiny_model, src, tmp_path / "part.mp4", options=EncodeOptions(preset="ultrafast"), length=0.2)
    assert part.frames == 1 and frame_times(tmp_path / "part.mp4") == pytest.approx([0.0], abs=1e-3)
    assert probe(tmp_path / "part.mp4").ticks is not None


@pytest.mark.slow
def test_frames_larger_than_the_pipe_carries_are_refused_before_any_work(tiny_model_path: Path, tmp_path: Path) -> None:
    # ffmpeg's Matroska reader drops a block above 256 MiB with an error and exits 0: the output had no video.
    from classsr_cli.io.video import PIPE_FRAME_BYTES

    assert PIPE_FRAME_BYTES == 2**28 - 4
    with pytest.raises(ConfigError, match=r"15360x8640 frames \(132\.7 MP\) are more than ffmpeg takes a frame from "
                                          r"classsr \(89\.5 MP at 8 bits a channel\): a smaller -x or --width$"):
        VideoWriter(tmp_path / "o.mp4", 15360, 8640, time_base=Fraction(1, 1000))
    with pytest.raises(ConfigError, match=r"at 16 bits a channel\): a smaller -x or --width, or an 8-bit output"):
        VideoWriter(tmp_path / "o.mp4", 8192, 6000, time_base=Fraction(1, 1000), bits=16)
    VideoWriter(tmp_path / "o.mp4", 9600, 5400, time_base=Fraction(1, 1000))  # 155 MB a frame: carried
    src, out = tmp_path / "hd.mp4", tmp_path / "wide.mp4"
    ff("-f", "lavfi", "-i", "testsrc=size=1280x720:rate=10:duration=0.2", "-c:v", "libx264", "-pix_fmt", "yuv420p", src)
    result = runner.invoke(app, ["video", str(src), str(out), "--model", str(tiny_model_path), "--width", "15360"])
    assert result.exit_code == 2 and "15360x8640 frames (132.7 MP) are more than ffmpeg takes" in result.output
    assert not out.exists() and no_partials(tmp_path)


@pytest.mark.slow
def test_frames_no_later_than_the_one_before_are_let_go(tmp_path: Path) -> None:
    # androidx/media's sample_with_fake_auxiliary_tracks.mp4: five frames all at 0; the output's timestamps were out
    # of order (ffmpeg: "non monotonically increasing dts").
    frame = np.full((16, 16, 3), 128, np.uint8)
    written = VideoWriter(tmp_path / "held.mp4", 16, 16, time_base=Fraction(1, 10))
    for pts in (0, 0, 1, 1, 3, 2, 4):
        written.write(frame, pts)
    written.close()
    streamed = VideoWriter(tmp_path / "rows.mp4", 16, 16, time_base=Fraction(1, 10))
    for pts in (0, 0, 1, 1, 3, 2, 4):
        streamed.begin_frame(pts, 1)
        for top in (0, 8):
            streamed.write_rows(frame[top : top + 8])
    streamed.close()
    for writer, path in ((written, "held.mp4"), (streamed, "rows.mp4")):
        assert writer.repeated == 3 and writer.frames_written == 4
        assert frame_times(tmp_path / path) == pytest.approx([0.0, 0.1, 0.3, 0.4], abs=1e-3)
        assert writer.finished_notes == ["3 frame(s) left out: their time was no later than the frame's before them (a "
                                         "damaged file's timestamps; a player shows one)"]
        decoded = subprocess.run([FF, "-v", "error", "-i", str(tmp_path / path), "-f", "null", "-"], capture_output=True,
                                 text=True, check=True)  # fmt: skip
        assert decoded.stderr == ""


def test_a_long_track_name_into_mov_is_cut_to_what_its_handler_name_holds(
    tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    # androidx/media's sample_last_cluster.mkv names its video track with 300 "e"s: a MOV's handler name is a Pascal
    # string, whose length byte ffmpeg wrote modulo 256 and reads back as a character from 128 on ("\xffeee...").
    src = tmp_path / "long.mkv"
    video, audio = "é" * 150, "Lav mic " * 40  # 300 and 320 bytes
    ff("-f", "lavfi", "-i", f"{TESTSRC}:duration=0.3", "-f", "lavfi", "-i", "sine=duration=0.3", "-c:v", "libx264",
       "-pix_fmt", "yuv420p", "-c:a", "aac", "-metadata:s:v:0", f"title={video}", "-metadata:s:a:0", f"title={audio}",
       src)  # fmt: skip
    # ffmpeg's listing, which classsr reads, gives 255 bytes of a name (one é cut in two there): whole characters
    assert [s.title for s in probe(src).streams] == ["é" * 127, audio[:255]]
    for name in ("out.mov", "out.mp4", "out.mkv"):
        upscale_video(tiny_model, src, tmp_path / name, options=EncodeOptions(preset="ultrafast"))
        got = [s.title if name == "out.mkv" else s.handler for s in probe(tmp_path / name).streams]
        # MOV's: 127 bytes, what ffmpeg reads back, whole characters (the é's two bytes); the others' as listed
        assert got == (["é" * 63, audio[:127]] if name == "out.mov" else ["é" * 127, audio[:255]]), name


def _slow_jxl(path: Path, rate: str = "1/6") -> np.ndarray:
    """A JPEG XL animation of two 32x24 frames, ``rate`` a second (1/6: 6 s each, libjxl's ticks of 6 s, a time base
    of 6/1)."""
    frames = np.random.default_rng(2).integers(0, 256, (2, 24, 32, 3), dtype=np.uint8)
    path.write_bytes(subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "32x24",
                                     "-r", rate, "-i", "-", "-c:v", "libjxl_anim", "-distance", "0", "-f",
                                     "image2pipe", "-"], input=frames.tobytes(), capture_output=True,
                                    check=True).stdout)  # fmt: skip
    return frames


def test_frames_of_many_seconds_each_are_written(tmp_path: Path, tiny_model_path: Path) -> None:
    """A source whose ticks are 6 s (a JPEG XL animation of a frame every 6 s) was "encoder failed: Invalid data":
    its 6e9-ns ticks went into the pipe's Matroska TimestampScale, which ffmpeg's reader refuses from 2**32; its
    frames are timed in microseconds now, 0 and 6 s."""
    _slow_jxl(tmp_path / "slow.jxl")
    out = tmp_path / "slow.mp4"
    r = runner.invoke(app, ["video", str(tmp_path / "slow.jxl"), str(out), "--model", str(tiny_model_path), "-x", "2"])
    assert r.exit_code == 0, r.output
    assert frame_times(out) == [0.0, 6.0]


def test_a_jpeg_xl_animation_ffmpeg_does_not_open_in_its_container_is_read_from_its_codestream(
    tmp_path: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ffmpeg's reader finds no size in some JPEG XL animations' containers (KDE's bug_496350.jxl: "has no video
    stream"): `classsr video` reads the codestream alone, staged, with a note, and names the output after the file
    given (ffmpeg's refusal of the container simulated: such files cannot be made with this ffmpeg)."""
    from classsr_cli.io import jxl
    from classsr_cli.io import video as video_io

    codestream = tmp_path / "bare.jxl"
    frames = _slow_jxl(codestream, "2")
    boxed = tmp_path / "anim.jxl"
    boxed.write_bytes(jxl.container(codestream.read_bytes(), xmp=b"<x/>"))
    probe = video_io.probe

    def refusing(path: Any, **kw: Any) -> Any:
        if Path(path) == boxed:
            raise InputError(f"{path}: has no video stream (video (jpegxl_anim))")
        return probe(path, **kw)

    monkeypatch.setattr(video_io, "probe", refusing)
    r = runner.invoke(app, ["video", str(boxed), "--model", str(tiny_model_path), "-x", "2"])
    assert r.exit_code == 0, r.output
    assert "anim.jxl: the bundled ffmpeg does not open this JPEG XL animation's container" in r.output
    outs = sorted(tmp_path.glob("anim_x2.*"))  # beside the file given, named after it
    assert len(outs) == 1 and frame_times(outs[0]) == [0.0, 0.5] and frames.shape[0] == 2
