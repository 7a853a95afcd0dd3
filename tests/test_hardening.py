"""Issue 7 hardening: a fuzzed tiler and stitcher, bands equal to the whole frame, a corpus of bad and odd inputs,
exit codes, untrusted checkpoints, and kill -9 during upscale, video and training (slow)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner, Result

from classsr_cli.cli import app
from classsr_cli.config import ClassSRConfig
from classsr_cli.engine import FrameRun, upscale_tensor
from classsr_cli.engine.stitching import BLEND_MODES, stitch
from classsr_cli.engine.tiling import extract_patches, plan_grid
from classsr_cli.errors import CheckpointError
from classsr_cli.io.image import Picture, read_image, write_image
from classsr_cli.models import build_model

runner = CliRunner()
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
MAX_SIDE = 16  # patches per axis in the fuzzed grids (keeps each example small)


def cli(*args: str | Path) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def tiny(scale: int = 4) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ClassSRConfig(family="fsrcnn", scale=scale, widths=(4, 6, 8), extra={"s": 4, "m": 1}, classifier_width=8)
    return build_model(cfg).eval()


MODELS = {s: tiny(s) for s in (2, 3, 4)}


def _patchwise(model: torch.nn.Module) -> torch.nn.Module:
    """The model with branches that are deterministic per patch whatever the batch and memory layout (nearest
    upsampling scaled by the patch's top-left pixel), so that bands and whole frames must agree bit for bit.
    The weights stay (FLOPs are counted from them); only the forward changes."""
    s = model.cfg.scale
    for branch in model.branches:
        branch.forward = lambda x: F.interpolate(x, scale_factor=s, mode="nearest") * (0.5 + x[:, :, :1, :1])
    return model


PATCHWISE = {s: _patchwise(tiny(s)) for s in (2, 3, 4)}


@st.composite
def frames(draw: st.DrawFn, max_side: int = 300, grid: int = MAX_SIDE) -> tuple[int, int, int, int, int]:
    """``(h, w, patch, step, scale)``: any size 1..max_side, any allowed step, grids of at most grid^2 patches."""
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    m = max(h, w)
    patches = [p for p in (4, 8, 16, 32) if max(1, math.ceil((m - p) / (grid - 1))) <= p]
    p = draw(st.sampled_from(patches))
    step = draw(st.integers(max(1, math.ceil((m - p) / (grid - 1))), p))
    return h, w, p, step, draw(st.sampled_from((2, 3, 4)))


def _covered(length: int, padded: int, patch: int, step: int, count: int) -> np.ndarray:
    hits = np.zeros(padded, int)
    for i in range(count):
        hits[i * step : i * step + patch] += 1
    return hits[:length]


# -------------------------------------------------------------------------------------- tiler and stitcher


@FUZZ
@given(frames())
def test_grid_covers_every_pixel_and_ends_on_the_padded_border(f: tuple[int, int, int, int, int]) -> None:
    h, w, p, step, _ = f
    g = plan_grid(h, w, p, step)
    assert g.padded_height >= max(h, p) and g.padded_width >= max(w, p)
    assert g.padded_height - step < max(h, p) or g.rows == 1  # no patch row lies wholly in the padding
    assert (_covered(h, g.padded_height, p, step, g.rows) >= 1).all()
    assert (_covered(w, g.padded_width, p, step, g.cols) >= 1).all()
    ys, xs = g.origins()
    assert ys.numel() == g.count and int(ys.max()) + p == g.padded_height and int(xs.max()) + p == g.padded_width


@FUZZ
@given(frames(), st.sampled_from(BLEND_MODES))
def test_pointwise_branch_is_identity_through_tile_and_stitch(f: tuple[int, int, int, int, int], mode: str) -> None:
    """Nearest upsampling per patch, stitched, equals nearest upsampling of the whole frame: exact size, every
    pixel covered, equal within float rounding and exactly equal once quantised to 8 bits."""
    h, w, p, step, s = f
    g = torch.Generator().manual_seed(h * 1000 + w)
    lr = torch.randint(0, 256, (1, 3, h, w), generator=g).float() / 255
    grid = plan_grid(h, w, p, step)
    hr = F.interpolate(extract_patches(lr, grid), scale_factor=s, mode="nearest")
    out = stitch(hr, grid, s, mode)
    ref = F.interpolate(lr, scale_factor=s, mode="nearest")
    assert out.shape == (1, 3, s * h, s * w)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)  # up to 16 x 16 weighted terms per pixel
    assert torch.equal(out.mul(255).round(), ref.mul(255).round())


@settings(FUZZ, max_examples=12)
@given(frames(max_side=96, grid=10), st.integers(1, 64), st.sampled_from(BLEND_MODES))
def test_same_output_whatever_the_batch_size(f: tuple[int, int, int, int, int], batch: int, mode: str) -> None:
    h, w, _, step, s = f
    model = MODELS[s]
    step = min(step, model.cfg.patch)
    lr = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h + w))
    whole, a = upscale_tensor(model, lr, step=step, batch_size=4096, blend=mode)
    small, b = upscale_tensor(model, lr, step=step, batch_size=batch, blend=mode)
    assert small.shape == (1, 3, s * h, s * w)
    torch.testing.assert_close(small, whole, rtol=0, atol=1e-6)
    assert torch.equal(a.classes, b.classes)


@settings(FUZZ, max_examples=15)
@given(frames(max_side=120, grid=10), st.integers(1, 6), st.sampled_from(BLEND_MODES), st.booleans())
def test_bands_equal_the_whole_frame(f: tuple[int, int, int, int, int], rows: int, mode: str, conv: bool) -> None:
    """Bands of patch rows, with the overlap rows carried between them, blend exactly the patches the whole-frame
    stitch blends: bit for bit with per-patch-deterministic branches; with the real convolutions, within the
    float noise the convolution backend adds when the batch changes (as ``--batch-size`` does)."""
    h, w, _, step, s = f
    model = MODELS[s] if conv else PATCHWISE[s]
    step = min(step, model.cfg.patch)
    lr = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    whole, a = upscale_tensor(model, lr, step=step, blend=mode)
    run = FrameRun(model, lr, step=step, blend=mode, band_rows=rows)
    parts = [(band.y, band.rows.clone()) for band in run]
    b = run.result
    ys = [y for y, _ in parts]
    assert ys == sorted(ys) and ys[0] == 0
    assert all(y + band.shape[2] == nxt for (y, band), nxt in zip(parts, [*ys[1:], s * h], strict=True))
    banded = torch.cat([band for _, band in parts], 2)
    if conv:
        torch.testing.assert_close(banded, whole, rtol=0, atol=1e-6)
    else:
        assert torch.equal(banded, whole)
    assert torch.equal(a.classes, b.classes) and a.counts == b.counts and a.flops == b.flops


def test_bands_bound_the_work_in_flight() -> None:
    """Each band routes at most ``band_patches`` rounded up to whole patch rows: memory is per band."""
    model = MODELS[4]
    seen: list[int] = []
    routed = model.forward_routed

    def spy(x: torch.Tensor, **kw: object) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(x.shape[0])
        return routed(x, **kw)  # type: ignore[arg-type]

    model.forward_routed = spy  # type: ignore[method-assign]
    try:
        lr = torch.rand(1, 3, 600, 90)  # 22 patch rows of 4: bands of 3 rows (12 patches) for band_patches=9
        bands = [band.rows.shape[2] for band in FrameRun(model, lr, band_patches=9)]
    finally:
        del model.forward_routed
    assert sum(seen) == plan_grid(600, 90).count  # every patch routed once: carried rows are not recomputed
    assert seen[0] == 12 and max(seen) == 12 and len(bands) == len(seen) and sum(bands) == 2400


# ------------------------------------------------------------------------------ streamed files are the same


@pytest.mark.parametrize(("suffix", "c", "bits"), [(".png", 3, 8), (".png", 1, 16), (".png", 3, 16),
                                                   (".tif", 3, 16), (".jpg", 3, 8), (".bmp", 1, 8)])
def test_streamed_output_equals_whole_output(tmp_path: Path, suffix: str, c: int, bits: int) -> None:
    from classsr_cli.pipeline import Upscaler, upscale_file

    dtype = np.uint16 if bits == 16 else np.uint8
    pixels = np.random.default_rng(1).integers(0, np.iinfo(dtype).max, (70, 50, c)).astype(dtype)
    write_image(tmp_path / "in.png", Picture(pixels, icc=b"\0" * 8 if suffix == ".png" else None))
    up = Upscaler(MODELS[4], step=20)
    whole = upscale_file(up, tmp_path / "in.png", tmp_path / f"whole{suffix}", stream_pixels=None)
    banded = upscale_file(up, tmp_path / "in.png", tmp_path / f"banded{suffix}", stream_pixels=0)
    assert "written in bands" in banded.notes[-1] and not any("bands" in n for n in whole.notes)
    a, b = read_image(whole.output), read_image(banded.output)
    assert np.array_equal(a.pixels, b.pixels) and a.pixels.shape[:2] == (280, 200)
    assert a.icc == b.icc
    assert banded.counts == whole.counts and banded.size_out == whole.size_out == (200, 280)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.png", f"whole{suffix}", f"banded{suffix}"])


def test_failed_streamed_write_leaves_nothing(tmp_path: Path) -> None:
    from classsr_cli.io.image import write_image_rows

    def rows() -> Iterator[np.ndarray]:
        yield np.zeros((3, 8, 3), np.uint8)
        raise KeyboardInterrupt

    for suffix in (".png", ".jpg"):
        with pytest.raises(KeyboardInterrupt):
            write_image_rows(tmp_path / f"o{suffix}", (10, 8), 3, np.uint8, rows())
    with pytest.raises(ValueError, match="3 rows of 10"):
        write_image_rows(tmp_path / "o.png", (10, 8), 3, np.uint8, [np.zeros((3, 8, 3), np.uint8)])
    assert list(tmp_path.iterdir()) == []


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
    assert cli("upscale", photo, *m, "-x", "9").exit_code == 2
    assert cli("upscale", photo, bad, *m, "-o", tmp_path / "o", "--keep-going").exit_code == 3
    assert cli("video", photo, tmp_path / "v.mp4", *m, "-x", "5").exit_code == 2
    assert cli("video", tmp_path / "none.mp4", tmp_path / "v.mp4", *m).exit_code == 1
    assert cli("convert", bad, "-o", tmp_path / "c.safetensors").exit_code == 1
    assert cli("train", "baseline", "-o", tmp_path / "run", "--device", "cpu").exit_code == 2  # no data, no --hr
    assert cli("models", "--bogus").exit_code == 2

    def interrupted(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("classsr_cli.pipeline.upscale_file", interrupted)
    r = cli("upscale", photo, *m)
    assert r.exit_code == 130 and r.stderr.strip() == "error: interrupted"


# ---------------------------------------------------------------------------------- untrusted checkpoints


def _tensors_file(path: Path, header: dict | bytes, data: bytes = b"", declared: int | None = None) -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if declared is None else declared) + raw + data)
    return path


def _header_of(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _edited(src: Path, dst: Path, edit: object) -> Path:
    header, data = _header_of(src)
    edit(header)  # type: ignore[operator]
    return _tensors_file(dst, header, data)


def _first_key(h: dict) -> str:
    return sorted(k for k in h if k != "__metadata__")[0]


CORRUPT = {
    "header length beyond the file": (lambda p, d: _tensors_file(d, {"a": 1}, declared=1 << 40), "header length"),
    "header length above 16 MiB": (lambda p, d: _tensors_file(d, b" " * 10, b"\0" * 64, declared=1 << 25),
                                   "header length"),
    "not JSON": (lambda p, d: _tensors_file(d, b"{not json at all"), "not JSON"),
    "not an object": (lambda p, d: _tensors_file(d, b"[1, 2]"), "not an object"),
    "metadata not an object": (lambda p, d: _tensors_file(d, {"__metadata__": [1]}), "metadata"),
    "offsets beyond the file": (
        lambda p, d: _edited(p, d, lambda h: h[_first_key(h)].update(data_offsets=[0, 1 << 40])), "outside the file"),
    "negative offsets": (
        lambda p, d: _edited(p, d, lambda h: h[_first_key(h)].update(data_offsets=[-8, 4])), "outside the file"),
    "unknown dtype": (lambda p, d: _edited(p, d, lambda h: h[_first_key(h)].update(dtype="Q128")), "unknown dtype"),
    "shape disagrees with the bytes": (
        lambda p, d: _edited(p, d, lambda h: h[_first_key(h)].update(shape=[1 << 20, 1 << 20])), "needs"),
    "int dtype": (lambda p, d: _edited(p, d, lambda h: h[_first_key(h)].update(dtype="I32")), "not a float type"),
    "wrong shape for the config": (
        lambda p, d: _edited(p, d, lambda h: h.__setitem__("__metadata__", {
            **h["__metadata__"], "config": h["__metadata__"]["config"].replace('"widths": [4, 6, 8]',
                                                                               '"widths": [4, 6, 9]')})),
        "shape"),
    "wrong format": (
        lambda p, d: _edited(p, d, lambda h: h["__metadata__"].update(format="other")), "format is 'other'"),
    "wrong kind": (lambda p, d: _edited(p, d, lambda h: h["__metadata__"].update(kind="branch")), "config"),
    "no metadata": (lambda p, d: _edited(p, d, lambda h: h.pop("__metadata__")), "format is None"),
    "bad config JSON": (lambda p, d: _edited(p, d, lambda h: h["__metadata__"].update(config="{")), "bad config"),
    "missing tensor": (lambda p, d: _edited(p, d, lambda h: h.pop(_first_key(h))), "missing key"),
    "truncated": (lambda p, d: d.write_bytes(p.read_bytes()[:-100]) and d, "outside the file"),
    "too short": (lambda p, d: d.write_bytes(b"\x01\x02") and d, "only 2 bytes"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_corrupt_checkpoints_are_refused_before_reading_tensors(
    tiny_model_path: Path, tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from classsr_cli.checkpoint import load_checkpoint

    make, message = CORRUPT[kind]
    bad = make(tiny_model_path, tmp_path / "bad [1].safetensors")

    def no_tensor_read(*a: object, **k: object) -> None:
        raise AssertionError("tensors were read before the header was validated")

    monkeypatch.setattr("safetensors.torch.load_file", no_tensor_read)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(bad)
    assert str(bad) in str(e.value) and message in str(e.value) and "\n" not in str(e.value)


def test_corrupt_checkpoint_through_the_cli(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    bad = CORRUPT["int dtype"][0](tiny_model_path, tmp_path / "bad.safetensors")
    r = cli("upscale", photo, "--model", bad)
    assert r.exit_code == 1 and r.stderr.startswith("error: ") and str(bad) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not photo.with_name("photo_x4.png").exists()


# ----------------------------------------------------------------------------------------- kill -9 (slow)


def _start(cmd: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "classsr_cli", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
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
    from imageio_ffmpeg import get_ffmpeg_exe

    src = tmp_path / "clip.mp4"
    subprocess.run([get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=25:duration=20",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(src)], check=True,
                   timeout=120)  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    proc = _start(["video", str(src), str(out / "v.mp4"), "--model", str(tiny_model_path),
                   "--preset", "ultrafast", "--classmap"])  # fmt: skip
    _wait_for(proc, lambda: any(".partial" in p.name and p.stat().st_size > 0 for p in out.iterdir()))
    time.sleep(0.5)
    _kill(proc, group=True)
    assert not (out / "v.mp4").exists() and not (out / "v_classmap.mp4").exists()
    _leftovers_are_hidden_temporaries(out, set(), ".partial")


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
