"""classsr_cli.cli, as a user meets it (issue 7): a corpus of bad and odd inputs, every exit code, error lines that
keep brackets, and kill -9 during upscale, video and training (slow)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner, Result

from classsr_cli.cli import app
from classsr_cli.io.image import read_image

runner = CliRunner()


def cli(*args: str | Path) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def _command_paths(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    return [path, *(p for name, sub in sorted(getattr(command, "commands", {}).items())
                    for p in _command_paths(sub, (*path, name)))]


def test_help_shows_flags_without_a_type() -> None:
    """Typer 0.29 on prints a type beside every option; a flag takes no value, so none is shown (``--json``,
    ``--help``, ``--version``), while options that take one keep theirs."""
    import typer.main

    paths = _command_paths(typer.main.get_command(app))
    assert ("train", "rank") in paths and ("upscale",) in paths and len(paths) > 10
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "--help" in result.output and "<bool>" not in result.output, (path, result.output)
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert re.search(r"--version +-V +Show the version", top), top
    upscale = runner.invoke(app, ["upscale", "--help"], env={"COLUMNS": "200"}).output
    assert re.search(r"--json +One JSON object", upscale) and re.search(r"--tta +N ", upscale), upscale


@pytest.mark.parametrize("command", ["upscale", "video"])
def test_help_says_the_scale_range_the_command_takes(command: str) -> None:
    """``-x`` and ``--width`` say the range ``output_scale`` enforces for the command (both take up to x16 in two
    steps; video's help had said at most 4, as had --width's in both)."""
    from classsr_cli.cli._options import output_scale
    from classsr_cli.errors import ConfigError
    from classsr_cli.zoo import MAX_SCALE

    most = MAX_SCALE**2
    assert output_scale(float(most), None, chain=True) == most
    with pytest.raises(ConfigError, match=f"at most {most}"):
        output_scale(most + 0.5, None, chain=True)
    out = " ".join(runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output.replace("│", " ").split())
    scale = re.search(r"--scale -x X (.+?) --width", out)
    width = re.search(r"--width PX \S+ (.+?) --height", out)
    assert scale and width, out
    assert f"above 1 and at most {most} " in scale[1] and f"at most {most}," in width[1], (scale[1], width[1])
    assert "at most 4" not in scale[1] + width[1]


def _panels(*command: str) -> list[tuple[str, list[str]]]:
    """The help's panels of ``classsr COMMAND``, in order, with the long options each shows."""
    out = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"}).output
    panels: list[tuple[str, list[str]]] = []
    for line in out.splitlines():
        if head := re.match(r"╭─ (.+?) ─", line):
            panels.append((head[1], []))
        elif opt := re.match(r"│ (--[a-z0-9-]+)", line):
            panels[-1][1].append(opt[1])
    return panels


def test_help_groups_the_options_in_panels() -> None:
    """A command's help shows what most runs set first ("Options"), then encoding, routing, runs and the device, as
    the peers group them; an option is in the same panel in every command (``_common.PANELS``), and every option the
    map names exists."""
    import typer.main

    from classsr_cli.cli._common import PANELS

    upscale = dict(_panels("upscale"))
    assert list(upscale) == ["Arguments", "Options", "Routing", "Runs", "Device and speed"]
    assert upscale["Options"][:5] == ["--output", "--scale", "--width", "--height", "--model"]
    assert "--format" in upscale["Options"] and "--tolerance" in upscale["Routing"] and "--threads" in upscale[
        "Device and speed"] and "--recursive" in upscale["Runs"]
    video = dict(_panels("video"))
    assert list(video) == ["Arguments", "Options", "Encoding", "Routing", "Runs", "Device and speed"]
    assert {"--crf", "--codec", "--quality", "--no-audio"} <= set(video["Encoding"]) and "--resume" in video["Runs"]
    assert len(video["Options"]) <= 10  # of 34 options
    seen: set[str] = set()
    for path in _command_paths(typer.main.get_command(app)):
        for name, options in _panels(*path):
            seen.update(options)
            for option in options:
                assert PANELS.get(option, name) == name, (path, option, name)
    assert set(PANELS) <= seen


# ---------------------------------------------------------------------------------- bad and odd inputs (CLI)


def _photo(seed: int = 0, size: tuple[int, int] = (40, 30)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def _save(path: Path, im: Image.Image, fmt: str, **kw: object) -> Path:
    im.save(path, format=fmt, **kw)
    return path


def _cut(path: Path, fmt: str, **kw: object) -> Path:
    buf = io.BytesIO()
    Image.fromarray(_photo()).save(buf, format=fmt, **kw)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) * 2 // 3])
    return path


def _zero_side(path: Path) -> Path:
    from test_image_io import bomb_png

    return bomb_png(path, 0, 64)


def _animated(path: Path, fmt: str) -> Path:
    frames = [Image.fromarray(_photo(i)) for i in range(3)]
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:])
    return path


#: Odd but valid: each is upscaled (exit 0) at 4x its size, with a note where something was converted.
ODD = {
    "jpeg_named_png": (lambda d: _save(d / "really_jpeg.png", Image.fromarray(_photo()), "JPEG"), None),
    "png_named_jpg": (lambda d: _save(d / "really_png.jpg", Image.fromarray(_photo()), "PNG"), None),
    "cmyk_jpeg": (lambda d: _save(d / "cmyk.jpg", Image.fromarray(_photo()).convert("CMYK"), "JPEG"), "CMYK"),
    "palette_png": (lambda d: _save(d / "pal.png", Image.fromarray(_photo()).convert("P"), "PNG"), "palette"),
    "gray16_png": (lambda d: _save(d / "g16.png", Image.fromarray(_photo()[..., 0].astype(np.uint16) * 257), "PNG"),
                   None),
    "animated_gif": (lambda d: _animated(d / "anim.gif", "GIF"), "only the first"),
    "animated_webp": (lambda d: _animated(d / "anim.webp", "WEBP"), "only the first"),
    "spaces_non_ascii": (lambda d: _save(d / "ça va été [2].png", Image.fromarray(_photo()), "PNG"), None),
}

#: Bad: each fails with one line naming the file, exit 1, nothing written (beyond those in test_image_io).
BAD = {
    "zero_side": lambda d: _zero_side(d / "zero.png"),
    "truncated_webp": lambda d: _cut(d / "cut.webp", "WEBP"),
    "truncated_gif": lambda d: _cut(d / "cut.gif", "GIF"),
    "truncated_tiff": lambda d: _cut(d / "cut.tif", "TIFF"),
    "text_as_jpeg": lambda d: (d / "notes.jpg").write_text("hello\n") and d / "notes.jpg",
    "brackets_in_name": lambda d: (d / "bad [red] [b].png").write_bytes(b"\x89PNG\r\n") and d / "bad [red] [b].png",
}


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("kind", sorted(ODD))
def test_odd_inputs_are_upscaled(tiny_model_path: Path, tmp_path: Path, kind: str) -> None:
    make, note = ODD[kind]
    src = make(tmp_path)
    out = tmp_path / "out"
    r = cli("upscale", src, "-o", f"{out}/", "--model", tiny_model_path)
    assert r.exit_code == 0, r.output
    (result,) = list(out.iterdir())
    assert Image.open(result).size == (160, 120)
    if note:
        assert note in r.stderr


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_inputs_one_line_exit_1_nothing_written(tiny_model_path: Path, tmp_path: Path, kind: str) -> None:
    src = BAD[kind](tmp_path)
    before = _files(tmp_path)
    r = cli("upscale", src, "--model", tiny_model_path)
    assert r.exit_code == 1, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(src) in lines[0], r.stderr
    assert _files(tmp_path) == before


def test_folder_with_bad_files_among_good_ones(tiny_model_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    good = [make(src) for make, _ in ODD.values()]
    bad = [make(src) for make in BAD.values()]
    r = cli("upscale", src, "-o", tmp_path / "out", "--model", tiny_model_path, "--keep-going", "--json")
    assert r.exit_code == 3, r.output
    done = _files(tmp_path / "out")
    assert len(done) == len(good) and all(Image.open(tmp_path / "out" / n).size == (160, 120) for n in done)
    summary = r.stderr[r.stderr.index(f"{len(bad)} of {len(good) + len(bad)} inputs failed") :]
    assert all(str(b) in summary for b in bad) and "Traceback" not in r.output
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert sum("error" in rec for rec in records) == len(bad)
    # without --keep-going: stops at the first bad file (sorted order), one error line and how much was left
    # undone, nothing half-written
    r = cli("upscale", src, "-o", tmp_path / "out2", "--model", tiny_model_path)
    assert r.exit_code == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(src) in errors[0] and r.stderr.strip().splitlines()[-2] == errors[0]
    hint = r.stderr.strip().splitlines()[-1]
    assert hint.startswith("stopped: ") and "not processed; pass --keep-going" in hint
    assert all(not n.startswith(".") for n in _files(tmp_path / "out2"))
    assert all(read_image(tmp_path / "out2" / n).width == 160 for n in _files(tmp_path / "out2"))


# ------------------------------------------------------------------------------------------------ exit codes


def test_fail_prints_brackets_as_they_are(capsys: pytest.CaptureFixture[str]) -> None:
    from classsr_cli.cli._common import fail

    e = fail("a/[bold]b[/bold] [red].png: empty file", 1)
    assert e.exit_code == 1
    assert capsys.readouterr().err.strip() == "error: a/[bold]b[/bold] [red].png: empty file"


def test_brackets_in_names_survive_every_error_path(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    missing = tmp_path / "gone [x].png"
    r = cli("upscale", missing, "--model", tiny_model_path)  # planning error, through guarded()
    assert r.exit_code == 1 and "gone [x].png" in r.stderr
    r = cli("upscale", photo, "--model", tmp_path / "w [1].safetensors")  # checkpoint error
    assert r.exit_code == 1 and "w [1].safetensors" in r.stderr


def test_exit_codes(tiny_model_path: Path, photo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from classsr_cli.cli._common import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE

    assert (EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERRUPTED) == (0, 1, 2, 3, 130)
    m = ("--model", tiny_model_path, "--overwrite")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    assert cli("upscale", photo, *m).exit_code == 0
    assert cli("upscale", bad, *m).exit_code == 1  # bad input
    assert cli("upscale", photo, "--model", tmp_path / "none.safetensors", "--overwrite").exit_code == 1
    assert cli("upscale", photo, *m, "--bogus").exit_code == 2  # unknown option
    assert cli("upscale", photo, *m, "--step", "0").exit_code == 2  # out of range
    assert cli("upscale", photo, *m, "--step", "33").exit_code == 2  # above the patch: ConfigError
    assert cli("upscale", photo, *m, "-x", "17").exit_code == 2
    assert cli("upscale", photo, bad, *m, "-o", tmp_path / "o", "--keep-going").exit_code == 3
    assert cli("video", photo, tmp_path / "v.mp4", *m, "-x", "17").exit_code == 2
    r = cli("video", tmp_path / "none.mp4", tmp_path / "v.mp4", *m, "-x", "17")  # the scale before the input
    assert r.exit_code == 2 and "scale must be above 1 and at most 16, got 17" in r.stderr
    assert cli("video", tmp_path / "none.mp4", tmp_path / "v.mp4", *m).exit_code == 1
    assert cli("convert", bad, "-o", tmp_path / "c.safetensors").exit_code == 1
    assert cli("train", "baseline", "-o", tmp_path / "run", "--device", "cpu").exit_code == 2  # no data, no --hr
    assert cli("models", "--bogus").exit_code == 2

    def interrupted(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("classsr_cli.pipeline.upscale_file", interrupted)
    r = cli("upscale", photo, *m)
    assert r.exit_code == 130 and r.stderr.strip() == "error: interrupted"


# ----------------------------------------------------------------------------------------- kill -9 (slow)


def _start(cmd: list[str], stdout: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "classsr_cli", *cmd], stdout=stdout, stderr=subprocess.PIPE, env=env,
        start_new_session=True,
    )


def _wait_for(proc: subprocess.Popen[bytes], ready: object, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        if proc.poll() is not None:
            raise AssertionError(f"finished before it could be killed: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.02)


def _kill(proc: subprocess.Popen[bytes], group: bool = False) -> None:
    """SIGKILL the command (not its children, which see their pipes close), then make sure its session is gone."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    if group:
        time.sleep(1)  # an encoder child finishes its file on EOF
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # start_new_session: the group is ours alone
    proc.stderr.close()  # type: ignore[union-attr]


def _long_clip(path: Path) -> Path:
    """A 20 s 96x64 H.264 clip: long enough for a signal to find its encoders running."""
    from imageio_ffmpeg import get_ffmpeg_exe

    subprocess.run([get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=25:duration=20",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)], check=True,
                   timeout=120)  # fmt: skip
    return path


def _leftovers_are_hidden_temporaries(folder: Path, keep: set[str], marker: str) -> None:
    for p in folder.iterdir():
        if p.name not in keep:
            assert p.name.startswith(".") and marker in p.name, p.name


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_kill_9_during_upscale_leaves_no_output(tiny_model_path: Path, tmp_path: Path, suffix: str) -> None:
    src = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (1000, 1100, 3), dtype=np.uint8)).save(
        src, compress_level=1)  # 17.6 MP out: computed and written in bands
    out = tmp_path / "out"
    proc = _start(["upscale", str(src), "-o", str(out / f"big{suffix}"), "--model", str(tiny_model_path)])
    _wait_for(proc, lambda: out.is_dir() and any(".tmp" in p.name for p in out.iterdir()))
    time.sleep(0.3)
    _kill(proc)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / f"big{suffix}").exists()
    _leftovers_are_hidden_temporaries(out, set(), ".tmp")


@pytest.mark.slow
def test_kill_9_during_video_leaves_no_output(tiny_model_path: Path, tmp_path: Path) -> None:
    src = _long_clip(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    out.mkdir()
    proc = _start(["video", str(src), str(out / "v.mp4"), "--model", str(tiny_model_path),
                   "--preset", "ultrafast", "--classmap"])  # fmt: skip
    _wait_for(proc, lambda: any(".partial" in p.name and p.stat().st_size > 0 for p in out.iterdir()))
    time.sleep(0.5)
    _kill(proc, group=True)
    assert not (out / "v.mp4").exists() and not (out / "v_classmap.mp4").exists()
    _leftovers_are_hidden_temporaries(out, set(), ".partial")


def _terminate(proc: subprocess.Popen[bytes]) -> str:
    """SIGTERM the command alone (as `timeout` or `docker stop` do): its stderr, after it ends."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    err = proc.stderr.read().decode()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    return err


@pytest.mark.slow
def test_sigterm_ends_upscale_and_video_as_ctrl_c_does(tiny_model_path: Path, tmp_path: Path) -> None:
    """SIGTERM removes the partial outputs and stops ffmpeg (it killed classsr on the spot, leaving a 1.15 GB
    temporary and encoders that went on writing): one line, exit 143."""

    src = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (1000, 1100, 3), dtype=np.uint8)).save(
        src, compress_level=1)
    out = tmp_path / "out"
    proc = _start(["upscale", str(src), "-o", str(out / "big.tif"), "--model", str(tiny_model_path), "--json"],
                  stdout=subprocess.PIPE)
    _wait_for(proc, lambda: out.is_dir() and any(".tmp" in p.name for p in out.iterdir()))
    time.sleep(0.3)
    err = _terminate(proc)
    assert proc.returncode == 143 and err.strip().endswith("error: terminated (SIGTERM)"), err
    assert list(out.iterdir()) == []
    # --json: the image it stopped in is a record, as a failure is (a script saw nothing)
    assert json.loads(proc.stdout.read()) == {  # type: ignore[union-attr]
        "input": str(src), "output": None, "error": f"{src}: terminated (SIGTERM); its output was not written"}
    clip = _long_clip(tmp_path / "clip.mp4")
    vout = tmp_path / "vout"
    vout.mkdir()
    proc = _start(["video", str(clip), str(vout / "v.mp4"), "--model", str(tiny_model_path), "--preset", "ultrafast",
                   "--json"], stdout=subprocess.PIPE)  # fmt: skip
    _wait_for(proc, lambda: any(".partial" in p.name and p.stat().st_size > 0 for p in vout.iterdir()))
    err = _terminate(proc)
    assert proc.returncode == 143, err
    record = json.loads(proc.stdout.read())  # type: ignore[union-attr]
    assert record["output"] == str(vout / "v.mp4") and record["error"].startswith("terminated (SIGTERM) after ")
    assert record["error"].endswith(" frame(s); the output was removed")
    time.sleep(1)  # an encoder left running would go on writing its partial file
    assert list(vout.iterdir()) == []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _train_config(path: Path, iterations: int, ckpt_every: int) -> Path:
    stages = "\n".join(
        f"[{s}]\niterations = {iterations}\nbatch_size = 4\nlr = 1e-3\nval_every = {iterations}\n"
        f"ckpt_every = {ckpt_every}\n" for s in ("baseline", "branches", "classifier", "finetune")
    )
    path.write_text('family = "fsrcnn"\nscale = 2\nwidths = [4, 6, 8]\nextra = {s = 4, m = 1}\npatch = 32\n'
                    "data_step = 16\nfactors = [1.0]\nval_fraction = 0.3\nlog_every = 1\n" + stages)
    return path


def _logged(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


@pytest.mark.slow
def test_kill_9_during_training_resumes_losing_at_most_one_interval(tmp_path: Path) -> None:
    hr = tmp_path / "hr"
    hr.mkdir()
    for i in range(4):
        Image.fromarray(_photo(i, (96, 96))).save(hr / f"img{i}.png")
    run = tmp_path / "run"
    r = cli("train", "prepare", "--hr", hr, "-o", run / "data", "-x", "2", "--factors", "1.0", "--val-fraction", "0.3")
    assert r.exit_code == 0, r.output
    every = 4
    cfg = _train_config(tmp_path / "tiny.toml", iterations=400, ckpt_every=every)
    cmd = ["train", "all", "-o", str(run), "--config", str(cfg), "--device", "cpu", "--threads", "1"]
    proc = _start(cmd)

    def midway() -> bool:
        recs = [r for r in _logged(run) if r.get("stage") == "baseline" and "iteration" in r]
        return bool(recs) and recs[-1]["iteration"] >= 3 * every + 1

    _wait_for(proc, midway)
    _kill(proc)
    logged = max(r["iteration"] for r in _logged(run) if r.get("stage") == "baseline" and "iteration" in r)
    state = torch.load(run / "baseline.state.pt", weights_only=True)
    saved = int(state["iteration"])
    assert saved % every == 0 and 0 <= logged - saved <= every, (logged, saved)
    assert not (run / "baseline.safetensors").exists()
    # resume with fewer iterations, to keep the test short: the recipe allows changing only iteration counts
    _train_config(cfg, iterations=saved + 2, ckpt_every=every)
    done = subprocess.run([sys.executable, "-m", "classsr_cli", *cmd], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    resumed = [r for r in _logged(run) if r.get("event") == "resume" and r.get("stage") == "baseline"]
    assert [r["iteration"] for r in resumed] == [saved]
    from classsr_cli.checkpoint import load_checkpoint

    assert load_checkpoint(run / "classsr.safetensors", expect_kind="classsr").kind == "classsr"


@pytest.mark.parametrize(("argv", "message"), [
    (["video", "a.mp4", "b.mp4", "--crf", "70"], "error: Invalid value for '--crf': Input should be less than or equal "
     "to 63 (see `classsr video --help`)"),
    (["upscale"], "error: Missing argument 'INPUT...'. (see `classsr upscale --help`)"),
    (["bogus"], "error: No such command 'bogus'. (see `classsr --help`)"),
    # a picture or a video where the command goes (`classsr photo.png`): pointed to the command that upscales it
    (["photo.JPG"], "error: No such command 'photo.JPG'; to upscale it: classsr upscale photo.JPG (see `classsr "
     "--help`)"),
    (["in.mp4", "out.mp4"], "error: No such command 'in.mp4'; to upscale a video: classsr video in.mp4 OUTPUT (see "
     "`classsr --help`)"),
    # Real-ESRGAN's options say what they are here (docs/cli.md, "Coming from Real-ESRGAN, waifu2x or video2x").
    (["upscale", "a.png", "-s", "4"], "error: No such option: -s; the scale is -x (-x 4, -x 2, or --width/--height) "
     "(see `classsr upscale --help`)"),
    (["upscale", "a.png", "-g", "0"], "error: No such option: -g; the device is --device (cuda, cuda:1, cpu) "
     "(see `classsr upscale --help`)"),
    (["video", "a.mp4", "-f", "mp4"], "error: No such option: -f; the container is the output's extension (out.mkv) "
     "(see `classsr video --help`)"),  # not upscale's --format, which video has not
    (["bench", "Set5", "-s", "4"], "error: No such option: -s; the scale is -x (-x 4) (see `classsr bench --help`)"),
    (["upscale", "a.png", "--device", "gpu"], "error: Invalid value for '--device': 'gpu' is not one of auto, cpu, "
     "cuda, cuda:N (a GPU's index), mps (see `classsr upscale --help`)"),
    # Typer 0.29 checks choices through pydantic, which opens the message with "Value error, ": left out
    (["upscale", "a.png", "--precision", "fp8"], "error: Invalid value for '--precision': 'fp8' is not one of 'auto', "
     "'fp32', 'fp16', 'bf16'. (see `classsr upscale --help`)"),
])
def test_usage_errors_of_the_command_are_one_line(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The installed command (``main``) prints click's usage errors as every other error: one line naming the
    command's --help, exit 2 (Typer drew them in a box of five lines)."""
    from classsr_cli.cli import main

    monkeypatch.setattr(sys, "argv", ["classsr", *argv])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == message and captured.out == ""


def test_the_command_exits_as_its_commands_do(
    photo: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from classsr_cli.cli import main

    for argv, code in ((["upscale", str(photo), "--model", str(tiny_model_path)], 0),
                       (["upscale", str(photo), "--model", str(tiny_model_path)], 1),  # the output exists now
                       (["--version"], 0)):
        monkeypatch.setattr(sys, "argv", ["classsr", *argv])
        with pytest.raises(SystemExit) as stop:
            main()
        assert stop.value.code == code, capsys.readouterr()


def test_a_reader_that_leaves_stops_the_command_quietly(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """``classsr models --json | head -1``: writing to the closed pipe ends the command with exit 1 and nothing on
    stderr (it printed "internal error: BrokenPipeError"); stdout is pointed at the null device first."""
    import typer

    from classsr_cli.cli import _common

    moved: list[int] = []
    monkeypatch.setattr(_common.os, "dup2", lambda fd, to: moved.append(to))

    @_common.guarded
    def command() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(typer.Exit) as stop:
        command()
    assert stop.value.exit_code == 1 and moved == [1] and capsys.readouterr().err == ""


def test_video_json_gives_a_failure_record_as_upscale_does(photo: Path, tiny_model_path: Path, tmp_path: Path) -> None:
    r = cli("video", photo, tmp_path / "v.mp4", "--model", tiny_model_path, "--json")
    assert r.exit_code == 1
    record = json.loads(r.stdout)
    assert record["input"] == str(photo) and record["output"] == str(tmp_path / "v.mp4")
    assert "not a video" in record["error"] and record["error"] in r.stderr


def test_bench_and_a_video_dry_run_refuse_torchrun(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Under torchrun each rank would run the whole bench and race for its output, and a dry run times one process:
    refused in one line (a video itself is shared among the ranks: tests/test_video_shares.py)."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    r = cli("bench", tmp_path)
    assert r.exit_code == 2 and "runs in one process; under torchrun only `upscale` (many files), `video`" in r.stderr
    r = cli("video", tmp_path / "a.mp4", tmp_path / "b.mp4", "--dry-run")
    assert r.exit_code == 2 and "--dry-run times a sample in one process: run it without torchrun" in r.stderr


def test_a_tolerance_that_is_a_tile_size_is_refused_and_0_is_said(photo: Path, tmp_path: Path) -> None:
    """Real-ESRGAN's ``-t 256`` (a tile size) ran every patch light here, 1.3 dB down, without a word; ``-t 0``
    (its automatic tile) runs every patch heavy, and says so. The shipped default: budget routing, in dB."""
    r = cli("upscale", photo, "-t", "256", "-o", tmp_path / "t.png")
    assert r.exit_code == 2 and "--tolerance is the PSNR in dB a frame may lose" in r.stderr
    assert "It is not a tile size" in r.stderr and not (tmp_path / "t.png").exists()
    r = cli("upscale", photo, "-t", "0", "-o", tmp_path / "t0.png", "--json")
    assert r.exit_code == 0 and "note: --tolerance 0 sends every patch to the heavy branch" in r.stderr
    assert json.loads(r.stdout)["patches"]["heavy"] == json.loads(r.stdout)["patches"]["total"]
    r = cli("upscale", photo, "-t", "10", "-o", tmp_path / "t10.png", "--json")  # the most it takes: all light
    assert r.exit_code == 0 and json.loads(r.stdout)["patches"]["light"] == json.loads(r.stdout)["patches"]["total"]


def test_video_strip_metadata_drops_the_files_metadata(tiny_model_path: Path, tmp_path: Path) -> None:
    """``classsr video --strip-metadata`` writes no title or place of the source's; without it both are carried."""
    import subprocess

    from imageio_ffmpeg import get_ffmpeg_exe

    from classsr_cli.io.video import probe

    src = tmp_path / "clip.mp4"
    subprocess.run([get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=32x24:rate=10:duration=0.3",
                    "-metadata", "title=Holiday", "-metadata", "location=+48.8577+002.2950/", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(src)], check=True)  # fmt: skip
    for strip in ((), ("--strip-metadata",)):
        out = tmp_path / f"out{len(strip)}.mp4"
        r = cli("video", src, out, "--model", tiny_model_path, "--preset", "ultrafast", *strip)
        assert r.exit_code == 0, r.output
        tags = dict(probe(out).tags)
        assert ("title" in tags, "location" in tags) == (not strip, not strip), tags
