"""The engine as one path: a video frame and the same picture as an image route and upscale identically, whole or
in bands; ``--step`` is validated the same way by every front end."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from classsr_cli.cli import app
from classsr_cli.io.image import Picture, read_image, write_image
from classsr_cli.io.video import VideoReader, VideoWriter, ffmpeg_exe, probe
from classsr_cli.pipeline import Upscaler, upscale_file
from classsr_cli.video import upscale_video

runner = CliRunner()


def _one_frame_clip(path: Path) -> np.ndarray:
    """A lossless one-frame clip of a test pattern; returns the frame as decoded."""
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=96x72:rate=10", "-frames:v", "1",
         "-c:v", "ffv1", str(path)], check=True, timeout=120,
    )  # fmt: skip
    with VideoReader(probe(path)) as reader:
        (frame,) = list(reader)
    return frame.rgb


def _sent_rows(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """The rows every :class:`VideoWriter` is given from now on, copied as they come (the pixels before encoding)."""
    sent: list[np.ndarray] = []
    write_rows = VideoWriter.write_rows

    def spy(self: VideoWriter, rows: np.ndarray) -> None:
        sent.append(rows.copy())
        write_rows(self, rows)

    monkeypatch.setattr(VideoWriter, "write_rows", spy)
    return sent


def _residual_model() -> torch.nn.Module:
    from classsr_cli.config import ClassSRConfig
    from classsr_cli.models import build_model

    model = build_model(ClassSRConfig("residual", 4, (0, 4, 6), {"depth": 1}, classifier_width=8,
                                      routing="deficit", tolerance=1.0)).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("family", ["fsrcnn", "residual"])
@pytest.mark.parametrize("stream_pixels", [None, 0], ids=["whole", "bands"])
def test_one_frame_video_routes_like_the_image(
    tiny_model: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stream_pixels: int | None,
    family: str,
) -> None:
    """The paper's model (patch path) and the default family (cell path) alike."""
    if family == "residual":
        tiny_model = _residual_model()
    rgb = _one_frame_clip(tmp_path / "clip.mkv")
    sent = _sent_rows(monkeypatch)
    video = upscale_video(tiny_model, tmp_path / "clip.mkv", tmp_path / "up.mkv", stream_pixels=stream_pixels)
    write_image(tmp_path / "frame.png", Picture(rgb))
    up = Upscaler(tiny_model)  # type: ignore[arg-type]
    image = upscale_file(up, tmp_path / "frame.png", tmp_path / "frame_x4.png", stream_pixels=stream_pixels)
    assert video.frames == 1 and video.counts == image.counts and video.computed == sum(image.counts)
    assert np.array_equal(np.concatenate(sent), read_image(image.output).pixels)  # same pixels before encoding
    assert video.flops == image.route.flops and video.flops_paper == image.route.flops_paper


@pytest.mark.slow
@pytest.mark.parametrize("family", ["fsrcnn", "residual"])
def test_a_video_frame_with_tta_is_the_image_with_tta(
    tiny_model: torch.nn.Module, tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, family: str,
) -> None:
    """`video --tta 2`: each frame the picture `upscale --tta 2` makes (the paper's model without its hysteresis,
    which follows one pass a frame), the FLOPs of both passes, the first pass's patches; with --reuse it is refused;
    the CLI takes the option."""
    from classsr_cli.errors import ConfigError
    from classsr_cli.video import TemporalOptions

    if family == "residual":
        tiny_model = _residual_model()
    rgb = _one_frame_clip(tmp_path / "clip.mkv")
    sent = _sent_rows(monkeypatch)
    up = Upscaler(tiny_model, tta=2)  # type: ignore[arg-type]
    video = upscale_video(up, tmp_path / "clip.mkv", tmp_path / "up.mkv")
    image = up.upscale_array(rgb)
    assert video.frames == 1 and video.tta == 2 and video.to_dict()["tta"] == 2
    assert np.array_equal(np.concatenate(sent), image.pixels)
    assert video.flops == image.route.flops and video.counts == image.route.counts
    assert video.flops.whole == 2 * Upscaler(tiny_model).upscale_array(rgb).route.flops.whole  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="does not combine with --reuse"):
        upscale_video(up, tmp_path / "clip.mkv", tmp_path / "up2.mkv", temporal=TemporalOptions(reuse=True))
    if family == "fsrcnn":
        r = runner.invoke(app, ["video", str(tmp_path / "clip.mkv"), str(tmp_path / "cli.mkv"), "--model",
                                str(tiny_model_path), "--tta", "2", "--json"])  # fmt: skip
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["tta"] == 2
        r = runner.invoke(app, ["video", str(tmp_path / "clip.mkv"), str(tmp_path / "cli.mkv"), "--model",
                                str(tiny_model_path), "--tta", "2", "--overwrite"])  # fmt: skip
        assert r.exit_code == 0 and "--tta 2: all 2 passes against heavy's 2" in " ".join(r.stderr.split()), r.output


@pytest.mark.parametrize("command", ["upscale", "video"])
def test_step_out_of_range_is_a_usage_error(command: str, tiny_model_path: Path, tmp_path: Path) -> None:
    args = [str(tmp_path / "in.png")] if command == "upscale" else [str(tmp_path / "in.mp4"), str(tmp_path / "o.mp4")]
    if command == "upscale":
        write_image(tmp_path / "in.png", Picture(np.zeros((8, 8, 3), np.uint8)))
    for step, says in (("40", "--step must be in 1..32"), ("0", "--step must be at least 1, got 0")):
        r = runner.invoke(app, [command, *args, "--model", str(tiny_model_path), "--step", step])
        assert r.exit_code == 2, r.output
        assert says in r.output
    (tmp_path / "there.png").touch()  # said as what it is before an existing output is (it said "exists")
    for step, says in (("0", "--step must be at least 1"), ("40", "--step must be in 1..32")):
        r = runner.invoke(app, ["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "there.png"), "--step", step,
                                "--model", str(tiny_model_path)])  # fmt: skip
        assert r.exit_code == 2 and says in r.output and "exists" not in r.output, r.output


def test_video_takes_the_scales_upscale_takes(tiny_model_path: Path, tmp_path: Path) -> None:
    """-x 2.5 and -x 5 with an x4 model are resampled runs, as for images (each fails later only on the missing
    input); past x16 is a usage error."""
    for scale in ("2.5", "5"):
        r = runner.invoke(app, ["video", str(tmp_path / "no.mp4"), str(tmp_path / "o.mp4"), "-x", scale,
                                "--model", str(tiny_model_path)])  # fmt: skip
        assert r.exit_code == 1 and "no such file" in r.output
    r = runner.invoke(app, ["video", str(tmp_path / "no.mp4"), str(tmp_path / "o.mp4"), "-x", "17"])
    assert r.exit_code == 2 and "at most 16" in r.output


def test_only_the_engine_imports_the_tiler_and_stitcher() -> None:
    root = Path(__file__).resolve().parent.parent / "classsr_cli"
    for path in root.rglob("*.py"):
        if path.parent.name == "engine":
            continue
        imports = re.findall(r"^\s*(?:from|import) classsr_cli\.engine\.(\w+)", path.read_text(), re.MULTILINE)
        assert not {"tiling", "stitching"} & set(imports), path
