"""`classsr upscale` and `classsr models` through Typer's runner, with a tiny seeded model."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin
from typer.testing import CliRunner, Result

from classsr_cli.cli import app
from classsr_cli.config import ClassSRConfig
from classsr_cli.errors import ConfigError
from classsr_cli.io.image import read_image
from classsr_cli.runtime import set_threads

runner = CliRunner()
KEYS = {"input", "output", "scale", "patches", "flops", "seconds"}


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, [str(a) for a in args], env=env)


def up(model: Path, *args: str | Path) -> Result:
    return run("upscale", *args, "--model", model)


def one_error_line(result: Result, name: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and name in lines[0]
    assert "Traceback" not in result.output


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_default_name_and_size(tiny_model_path: Path, photo: Path) -> None:
    r = up(tiny_model_path, photo)
    assert r.exit_code == 0, r.output
    out = photo.with_name("photo_x4.png")
    assert r.stdout.strip() == str(out)
    assert Image.open(out).size == (48 * 4, 40 * 4)
    assert "light" in r.stderr and "FLOPs saved" in r.stderr
    # The honest baseline first (heavy on the whole image), the paper's (heavy on every patch) in brackets.
    assert re.search(r"FLOPs saved -?[\d.]+% vs heavy on the whole image \(-?[\d.]+% vs heavy on every patch\)", r.stderr)


@pytest.mark.parametrize(("flag", "size", "name"), [("-x4", (192, 160), "x4"), ("-x2", (96, 80), "x2"),
                                                    ("-x2.5", (120, 100), "x2.5")])
def test_attached_scale_and_non_native(tiny_model_path: Path, photo: Path, flag: str, size: tuple, name: str) -> None:
    r = up(tiny_model_path, photo, flag)
    assert r.exit_code == 0, r.output
    assert Image.open(photo.with_name(f"photo_{name}.png")).size == size
    assert ("not a native scale" in r.stderr) == (name != "x4")


def test_a_factor_that_rounds_to_the_input_size_is_refused(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    """-x 1.001 of a 48x40 photo wrote a 48x40 copy through the model without a word."""
    r = up(tiny_model_path, photo, "-x", "1.001", "-o", tmp_path / "same.png")
    assert r.exit_code == 1 and "x1.001 of 48x40 rounds to the size it has; ask for a larger factor" in r.stderr
    assert not (tmp_path / "same.png").exists()
    assert up(tiny_model_path, photo, "-x", "1.05", "-o", tmp_path / "more.png").exit_code == 0  # 50x42


def test_scale_above_model_is_a_usage_error(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    # Past two runs of the x4 model: one line, before any output is planned (up to it: two passes, tested below).
    r = up(tiny_model_path, photo, "-x", "17", "-o", tmp_path / "missing" / "x17.png")
    one_error_line(r, "scale must be above 1 and at most 16, got 17")
    assert r.exit_code == 2 and not (tmp_path / "missing").exists()
    one_error_line(up(tiny_model_path, photo, "-x", "0.5"), "scale must be above 1 and at most 16, got 0.5")  # said 4
    r = up(tiny_model_path, photo, "-x", "5", "-o", tmp_path / "x5.png")
    assert r.exit_code == 0 and Image.open(tmp_path / "x5.png").size == (240, 200), r.output


def test_without_x_a_model_runs_at_its_own_scale(tiny_cfg: ClassSRConfig, photo: Path, tmp_path: Path) -> None:
    """``--model`` an x2 file and no ``-x``: x2, as the file says (it was "an x2 model cannot upscale x4"); the same
    rule for ``bench``; ``-x 4`` with it is still refused, and no ``--model`` is the x4 default's 4."""
    from dataclasses import replace

    from classsr_cli.checkpoint import save_checkpoint
    from classsr_cli.models import build_model

    x2 = save_checkpoint(build_model(replace(tiny_cfg, scale=2)).eval(), tmp_path / "tiny_x2.safetensors")
    r = up(x2, photo, "--json")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["scale"] == 2 and rec["output"].endswith("photo_x2.png") and Image.open(rec["output"]).size == (96, 80)
    r = up(x2, photo, "-x", "4")
    assert r.exit_code == 2 and "an x2 model cannot upscale x4" in r.stderr
    r = up(x2, photo, "-x", "8")  # not "run it twice: -x 4, then -x 2", which this model cannot either
    one_error_line(r, "an x2 model cannot upscale x8; leave --model out (the x4 model runs first), or ask for x2 or less")
    r = run("bench", photo, "--model", x2, "--repeat", "1", "--warmup", "0", "--methods", "heavy", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["scale"] == 2
    r = run("upscale", photo, "--model", tmp_path / "none.safetensors")
    assert r.exit_code == 1 and "no such model file" in r.stderr


def test_threads_sets_torch_threads_and_refuses_zero(tiny_model_path: Path, photo: Path) -> None:
    """``--threads N``: torch's CPU threads for the run (the same option as bench, video and train)."""
    try:
        r = up(tiny_model_path, photo, "--threads", "2", "--overwrite")
        assert r.exit_code == 0, r.output
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)  # the suite's setting (conftest)
    r = up(tiny_model_path, photo, "--threads", "0")
    assert r.exit_code == 2 and "--threads" in r.stderr
    with pytest.raises(ConfigError, match="--threads must be at least 1"):
        set_threads(0)


def test_non_ascii_and_spaces_in_names(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    src = tmp_path / "фото [1] ü.png"
    shutil.copy(photo, src)
    r = up(tiny_model_path, src)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "фото [1] ü_x4.png").is_file() and "фото [1] ü.png" in r.stderr


def test_output_file_and_folder(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    assert up(tiny_model_path, photo, "-o", tmp_path / "big.jpg").exit_code == 0
    assert Image.open(tmp_path / "big.jpg").format == "JPEG"
    assert up(tiny_model_path, photo, "-o", f"{tmp_path / 'outdir'}/").exit_code == 0
    assert files(tmp_path / "outdir") == ["photo.png"]


def test_a_new_output_path_without_suffix_is_refused_with_the_folder_hint(tiny_model_path: Path, photo: Path,
                                                                          tmp_path: Path) -> None:
    r = up(tiny_model_path, photo, "-o", tmp_path / "newdir")
    assert r.exit_code != 0 and not (tmp_path / "newdir").exists()
    assert f"-o {tmp_path / 'newdir'}/" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = up(tiny_model_path, photo, "-o", tmp_path / "big.xyz")  # a suffix classsr cannot write: the list of those
    assert r.exit_code != 0 and ".png" in r.stderr and "classsr video" not in r.stderr
    r = up(tiny_model_path, photo, "-o", tmp_path / "big.gif")  # an animation's: the command that writes one
    assert r.exit_code != 0 and "cannot write .gif (`classsr video` writes animated GIF and APNG); use one of" in r.stderr


def _tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 24, 3), dtype=np.uint8))
    img.save(root / "a.png")
    img.save(root / "b.jpg")
    img.save(root / "sub" / "c.png")
    img.save(root / "sub" / "deeper" / "d.webp")
    (root / "readme.txt").write_text("not an image")


def test_folder_flat_and_recursive_mirror(tiny_model_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    _tree(src)
    r = up(tiny_model_path, src, "-o", tmp_path / "flat")
    assert r.exit_code == 0, r.output
    assert files(tmp_path / "flat") == ["a.png", "b.jpg"]
    r = up(tiny_model_path, src, "-o", tmp_path / "tree", "--recursive")
    assert r.exit_code == 0, r.output
    assert files(tmp_path / "tree") == ["a.png", "b.jpg", "sub/c.png", "sub/deeper/d.webp"]
    assert "total" in r.stderr


def test_folder_without_output_writes_beside_and_skips_its_own_outputs(tiny_model_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    _tree(src)
    assert up(tiny_model_path, src).exit_code == 0
    assert {"a_x4.png", "b_x4.jpg"} <= set(files(src))
    r = up(tiny_model_path, src, "--overwrite")  # a_x4.png is a planned output, not an input
    assert r.exit_code == 0, r.output
    assert "a_x4_x4.png" not in files(src)


def test_an_output_that_is_an_input_is_refused_not_skipped(tiny_model_path: Path, tmp_path: Path, photo: Path) -> None:
    """The output of one job being an input (its own, or a file named on its own) is a one-line usage error: it
    used to leave the job out, with nothing said and exit 0. A folder run still leaves out its earlier outputs."""
    before = photo.read_bytes()
    for args in ([photo, "-o", photo], [photo, "-o", photo, "--overwrite"], [photo, "-o", photo, "--json"]):
        r = up(tiny_model_path, *args)
        assert r.exit_code == 2 and r.stdout == "", r.output
        one_error_line(r, "would replace its own input")
    src = tmp_path / "in"
    _tree(src)
    r = up(tiny_model_path, src, "-o", src, "--overwrite")  # a folder into itself
    one_error_line(r, "would replace its own input")
    (src / "a_x4.png").write_bytes((src / "a.png").read_bytes())
    before_x4 = (src / "a_x4.png").read_bytes()
    r = up(tiny_model_path, src / "a.png", src / "a_x4.png")  # both named (a shell's a*.png): a_x4.png left out
    assert r.exit_code == 1 and "skipped 1 earlier classsr output(s) beside their inputs, not inputs" in r.stderr
    assert "a_x4.png: already exists" in r.stderr and (src / "a_x4.png").read_bytes() == before_x4
    r = up(tiny_model_path, src / "a.png", src / "a_x4.png", "--skip-existing")  # the shell's re-run: nothing to do
    assert r.exit_code == 0 and "a_x4_x4.png" not in files(src) and (src / "a_x4.png").read_bytes() == before_x4
    r = up(tiny_model_path, src / "a_x4.png", src / "b.jpg", "-o", tmp_path / "again")  # a's output alone: an input
    assert r.exit_code == 0 and files(tmp_path / "again") == ["a_x4.png", "b.jpg"], r.output
    assert photo.read_bytes() == before
    r = up(tiny_model_path, src / "a.png", "-o", f"{src / 'a_x4.png'}{os.sep}")  # one input, a file given as a folder
    one_error_line(r, "a_x4.png: is a file, not a folder; drop the trailing")
    r = up(tiny_model_path, src, "--overwrite")  # the folder run: a_x4.png is left out, as before
    assert r.exit_code == 0 and "a_x4_x4.png" not in files(src), r.output


def test_two_inputs_of_one_name_into_one_folder(tiny_model_path: Path, tmp_path: Path, photo: Path) -> None:
    """The refusal suggests what helps (separate runs, other folders), not --recursive, which mirrors each input
    folder's tree below it and so cannot separate two folders' a.png."""
    for d in ("d1", "d2"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "a.png").write_bytes(photo.read_bytes())
    for extra in ([], ["--recursive"]):
        r = up(tiny_model_path, tmp_path / "d1", tmp_path / "d2", "-o", tmp_path / "out", *extra)
        one_error_line(r, "would be written there; upscale them into different -o folders")
        assert r.exit_code == 2 and "--recursive" not in r.stderr
    # --keep-going: the second a.png fails, in the list of failures, and the rest is done (exit 3).
    Image.open(tmp_path / "d1" / "a.png").save(tmp_path / "d1" / "b.png")
    r = up(tiny_model_path, tmp_path / "d1", tmp_path / "d2", "-o", tmp_path / "out", "--keep-going")
    assert r.exit_code == 3 and files(tmp_path / "out") == ["a.png", "b.png"], r.output
    assert "1 of 3 inputs failed" in r.stderr and f"both {tmp_path / 'd1' / 'a.png'} and {tmp_path / 'd2' / 'a.png'}" in r.stderr


def test_a_video_or_a_text_file_is_named_as_such(tiny_model_path: Path, tmp_path: Path) -> None:
    """Not "cannot write .mp4" about an output nobody asked for: the input is refused for what it is (exit 1)."""
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    (tmp_path / "clip_x4.mp4").write_bytes(b"an earlier classsr video output")
    (tmp_path / "doc.txt").write_text("notes")
    r = up(tiny_model_path, tmp_path / "clip.mp4")
    one_error_line(r, "clip.mp4: is a video, not an image; use `classsr video`")
    assert r.exit_code == 1
    r = up(tiny_model_path, tmp_path / "doc.txt")
    one_error_line(r, "doc.txt: not an image classsr reads")
    assert r.exit_code == 1 and not list(tmp_path.glob("*_x4.png"))


def test_glob(tiny_model_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    _tree(src)
    r = up(tiny_model_path, str(src / "*.png"), "-o", tmp_path / "g")
    assert r.exit_code == 0, r.output
    assert files(tmp_path / "g") == ["a.png"]


def test_json_lines_schema(tiny_model_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    _tree(src)
    r = up(tiny_model_path, src, "-o", tmp_path / "j", "--json")
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(records) == 2
    for rec in records:
        assert set(rec) >= KEYS
        assert set(rec["patches"]) >= {"light", "medium", "heavy"}
        assert set(rec["flops"]) >= {"used", "heavy", "saved", "whole"}
        p, f = rec["patches"], rec["flops"]
        assert p["light"] + p["medium"] + p["heavy"] == p["total"] > 0
        assert f["saved"] == pytest.approx(1 - f["used"] / f["heavy"], abs=1e-5)
        assert rec["scale"] == 4 and rec["seconds"] > 0 and Path(rec["output"]).is_file()


def test_force_branch(tiny_model_path: Path, photo: Path) -> None:
    r = up(tiny_model_path, photo, "--force-branch", "heavy", "--json")
    rec = json.loads(r.stdout)
    assert rec["patches"]["light"] == rec["patches"]["medium"] == 0 and rec["patches"]["heavy"] > 0


def test_classmap(tiny_model_path: Path, photo: Path) -> None:
    r = up(tiny_model_path, photo, "--classmap", "--json")
    assert r.exit_code == 0, r.output
    path = photo.with_name("photo_x4_classmap.png")
    assert json.loads(r.stdout)["classmap"] == str(path)
    im = Image.open(path)
    assert im.mode == "RGB" and im.width == 192 and im.height > 160  # image + legend strip


@pytest.mark.parametrize(("mode", "bits"), [("L", 8), ("RGBA", 8), ("LA", 8), ("RGB", 16), ("L", 16)])
def test_modes_are_kept(tiny_model_path: Path, tmp_path: Path, mode: str, bits: int) -> None:
    from classsr_cli.io.image import Picture, write_image

    rng = np.random.default_rng(2)
    dtype = np.uint16 if bits == 16 else np.uint8
    top = np.iinfo(dtype).max
    c = 1 if mode.startswith("L") else 3
    pixels = rng.integers(0, top, (20, 18, c), dtype=dtype)
    alpha = np.tile(np.linspace(0, top, 18).astype(dtype), (20, 1)) if mode.endswith("A") else None
    write_image(tmp_path / "m.png", Picture(pixels, alpha))
    r = up(tiny_model_path, tmp_path / "m.png")
    assert r.exit_code == 0, r.output
    pic = read_image(tmp_path / "m_x4.png")
    assert (pic.mode, pic.bits, pic.pixels.shape[:2]) == (mode, bits, (80, 72))
    if alpha is not None:  # bicubic alpha: a smooth ramp stays a monotone ramp
        row = pic.alpha[0].astype(int)
        assert row[0] < 20 * top / 255 and row[-1] > top - 20 * top / 255 and np.all(np.diff(row) >= -1)


@pytest.mark.parametrize(("mode", "key"), [("RGB", (0, 0, 0)), ("L", 0)])
def test_colour_key_becomes_upscaled_alpha(tiny_model_path: Path, tmp_path: Path, mode: str, key: object) -> None:
    """An 8-bit PNG keyed on black: the keyed square comes out transparent, the rest opaque (it came out black)."""
    im = Image.new(mode, (16, 16), (90, 160, 200) if mode == "RGB" else 120)
    im.paste(0, (0, 0, 8, 8))
    im.save(tmp_path / "k.png", transparency=key)
    assert up(tiny_model_path, tmp_path / "k.png").exit_code == 0
    pic = read_image(tmp_path / "k_x4.png")
    assert pic.mode == mode + "A" and pic.alpha is not None
    assert pic.alpha[:24, :24].max() == 0 and pic.alpha[40:, 40:].min() == 255


def test_chained_tiff_runs_read_back_without_a_stale_shape(
    tiny_model_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """classsr's own TIFF output upscaled again: the input's tifffile shape description was carried, stale, to each
    output, and tifffile warned "shaped series shape does not match page shape" reading it. No shape description is
    written now (viewers showed it as the caption): the page gives the shape."""
    import tifffile

    tifffile.imwrite(tmp_path / "a.tif", np.random.default_rng(3).integers(0, 256, (10, 12, 3), dtype=np.uint8))
    assert up(tiny_model_path, tmp_path / "a.tif", "-x", "2").exit_code == 0
    assert up(tiny_model_path, tmp_path / "a_x2.tif", "-x", "2").exit_code == 0
    for name, shape in (("a_x2.tif", [20, 24, 3]), ("a_x2_x2.tif", [40, 48, 3])):
        with caplog.at_level("WARNING", logger="tifffile"), tifffile.TiffFile(tmp_path / name) as tf:
            assert not tf.shaped_metadata and list(tf.series[0].shape) == shape and tf.pages.first.description == ""
        assert not caplog.records


def test_exif_orientation_and_icc(tiny_model_path: Path, tmp_path: Path) -> None:
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im = Image.new("RGB", (20, 12), (200, 100, 50))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    im.save(tmp_path / "cam.jpg", exif=exif.tobytes(), icc_profile=icc)
    assert up(tiny_model_path, tmp_path / "cam.jpg").exit_code == 0
    out = Image.open(tmp_path / "cam_x4.jpg")
    assert out.size == (48, 80) and out.info.get("icc_profile") == icc and 0x0112 not in out.getexif()


def test_overwrite_refused_and_untouched(tiny_model_path: Path, photo: Path) -> None:
    out = photo.with_name("photo_x4.png")
    out.write_bytes(b"precious")
    r = up(tiny_model_path, photo)
    assert r.exit_code == 1
    one_error_line(r, str(out))
    assert out.read_bytes() == b"precious"
    assert up(tiny_model_path, photo, "--overwrite").exit_code == 0
    assert Image.open(out).size == (192, 160)


def _bad(kind: str, d: Path) -> Path:
    from test_image_io import BAD

    return BAD[kind](d)


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "truncated_png", "truncated_jpeg", "bomb"])
def test_bad_input_one_line_no_partial_output(tiny_model_path: Path, tmp_path: Path, kind: str) -> None:
    src = tmp_path / "bad"
    src.mkdir()
    path = _bad(kind, src)
    before = files(src)
    r = up(tiny_model_path, path)
    assert r.exit_code == 1
    one_error_line(r, str(path))
    assert files(src) == before  # no output, no temporary file


def test_bomb_can_be_allowed_with_max_pixels(tiny_model_path: Path, photo: Path) -> None:
    r = up(tiny_model_path, photo, "--max-pixels", "100")
    assert r.exit_code == 1 and "--max-pixels 1920" in r.stderr
    assert up(tiny_model_path, photo, "--max-pixels", "1920").exit_code == 0


def test_keep_going_does_the_good_ones_and_exits_3(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    bad = _bad("truncated_png", tmp_path)
    r = up(tiny_model_path, photo, bad, tmp_path / "missing.png", "-o", tmp_path / "out", "--keep-going", "--json")
    assert r.exit_code == 3, r.output
    assert files(tmp_path / "out") == ["photo.png"]
    assert "2 of 3 inputs failed" in r.stderr and str(bad) in r.stderr and "Traceback" not in r.output
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted("error" in rec for rec in records) == [False, True, True]


def test_without_keep_going_stops_at_first_failure(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    bad = _bad("text", tmp_path)
    r = up(tiny_model_path, bad, photo, "-o", tmp_path / "out")
    assert r.exit_code == 1
    error, hint = r.stderr.strip().splitlines()  # the error, then what was left undone and how to carry on
    assert error.startswith("error:") and str(bad) in error and "Traceback" not in r.output
    assert hint == "stopped: 1 more input(s) not processed; pass --keep-going to carry on past failures"
    assert not (tmp_path / "out" / "photo.png").exists()


def test_a_run_stopped_while_planning_counts_what_it_left(tiny_model_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    _tree(src)
    (tmp_path / "out").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "out" / "a.png")
    r = up(tiny_model_path, src, "-o", tmp_path / "out", "--json")
    assert r.exit_code == 1
    assert "a.png: already exists (pass --overwrite to replace it)" in r.stderr
    assert "stopped: 1 more input(s) not processed; pass --keep-going" in r.stderr and "--skip-existing" in r.stderr
    assert [json.loads(line)["output"] for line in r.stdout.splitlines()] == [None]


def test_skip_existing_reruns_into_a_folder(tiny_model_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    _tree(src)
    out = tmp_path / "out"
    assert up(tiny_model_path, src, "-o", out, "--recursive").exit_code == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.*")}
    (out / "sub" / "c.png").unlink()  # an interrupted run: one output missing
    r = up(tiny_model_path, src, "-o", out, "--recursive", "--skip-existing")
    assert r.exit_code == 0, r.output
    assert r.stdout.split() == [str(out / "sub" / "c.png")]
    assert "skipped 3 input(s) whose output exists (--skip-existing)" in r.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in before.items() if p.name != "c.png")
    r = up(tiny_model_path, src, "-o", out, "--skip-existing", "--overwrite")
    assert r.exit_code == 2 and "contradict" in r.stderr


def test_folder_and_glob_runs_with_output_skip_earlier_outputs(tiny_model_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "shots"
    _tree(src)
    assert up(tiny_model_path, src / "a.png", "--classmap").exit_code == 0  # a_x4.png, a_x4_classmap.png beside a.png
    assert up(tiny_model_path, src / "a.png", "-x2").exit_code == 0  # a_x2.png
    Image.new("RGB", (8, 8)).save(src / "lone_x4.png")  # no lone.png beside it: a real input
    r = up(tiny_model_path, src, "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert files(tmp_path / "out") == ["a.png", "b.jpg", "lone_x4.png"]
    assert "skipped 3 earlier classsr output(s) beside their inputs" in r.stderr
    r = up(tiny_model_path, str(src / "a*.png"), "-o", tmp_path / "glob")
    assert files(tmp_path / "glob") == ["a.png"] and "skipped 3 earlier" in r.stderr
    r = up(tiny_model_path, src / "a_x4.png", "-o", tmp_path / "named.png")  # named alone: upscaled
    assert r.exit_code == 0 and "skipped" not in r.stderr


def test_classmap_path_on_stdout(tiny_model_path: Path, photo: Path) -> None:
    r = up(tiny_model_path, photo, "--classmap")
    assert r.exit_code == 0, r.output
    assert r.stdout.split() == [str(photo.with_name("photo_x4.png")), str(photo.with_name("photo_x4_classmap.png"))]


def test_json_error_records_have_no_output(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    bad = _bad("truncated_png", tmp_path)
    r = up(tiny_model_path, photo, bad, tmp_path / "missing.png", "-o", tmp_path / "out", "--keep-going", "--json")
    records = [json.loads(line) for line in r.stdout.splitlines()]
    errors = [rec for rec in records if "error" in rec]
    assert len(errors) == 2 and all(rec["output"] is None for rec in errors)
    assert not (tmp_path / "out" / bad.name).exists()


def test_all_failed_under_keep_going_exits_1(tiny_model_path: Path, tmp_path: Path) -> None:
    r = up(tiny_model_path, _bad("empty", tmp_path), _bad("text", tmp_path), "--keep-going")
    assert r.exit_code == 1


def test_two_inputs_one_output_is_refused(tiny_model_path: Path, tmp_path: Path) -> None:
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / d / "a.png")
    r = up(tiny_model_path, tmp_path / "x" / "a.png", tmp_path / "y" / "a.png", "-o", tmp_path / "o")
    assert r.exit_code == 2 and "both" in r.stderr


def test_several_inputs_need_an_output_folder(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.png"
    shutil.copy(photo, other)
    r = up(tiny_model_path, photo, other, "-o", tmp_path / "out.png")
    assert r.exit_code == 2 and "must be a folder" in r.stderr and not (tmp_path / "out.png").exists()


def test_garbage_checkpoint(photo: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 100)
    r = up(bad, photo)
    assert r.exit_code == 1
    one_error_line(r, str(bad))
    assert not photo.with_name("photo_x4.png").exists()


def test_no_installed_model(photo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("classsr_cli.zoo.weights_dirs", lambda: [tmp_path / "empty"])
    r = run("upscale", photo)
    assert r.exit_code == 1
    one_error_line(r, "no installed model for x4")
    assert "classsr_residual_x4" in r.output and "classsr_fsrcnn_x4" in r.output  # the default first, then the paper's
    r = run("upscale", photo, "-x3")
    one_error_line(r, "no installed model for x3")
    assert "classsr_residual_x3.safetensors or classsr_fsrcnn_x3.safetensors" in r.output


def test_version_short_flag() -> None:
    from classsr_cli import __version__

    for flag in ("-V", "--version"):
        r = run(flag)
        assert r.exit_code == 0 and r.stdout.strip() == f"classsr {__version__}"


def test_debug_lets_the_traceback_through(tmp_path: Path) -> None:
    from classsr_cli.errors import InputError

    r = run("upscale", tmp_path / "nope.png", env={"CLASSSR_DEBUG": "1"})
    assert isinstance(r.exception, InputError)  # raised out of the command: Python prints the traceback
    r = run("upscale", tmp_path / "nope.png", env={"CLASSSR_DEBUG": "0"})
    assert r.exit_code == 1 and not isinstance(r.exception, InputError)
    one_error_line(r, "nope.png")


@pytest.mark.slow
def test_debug_prints_the_traceback_on_stderr(tmp_path: Path) -> None:
    env = {**os.environ, "CLASSSR_DEBUG": "1"}
    cmd = [sys.executable, "-m", "classsr_cli", "upscale", str(tmp_path / "nope.png")]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 1 and "Traceback" in p.stderr and "InputError" in p.stderr


def test_cli_import_is_lazy() -> None:
    code = "import classsr_cli.cli, sys; assert 'torch' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_models_lists_paths(tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("classsr_cli.zoo.weights_dirs", lambda: [tmp_path / "w"])
    (tmp_path / "w").mkdir()
    shutil.copy(tiny_model_path, tmp_path / "w" / "classsr_fsrcnn_x4.safetensors")
    r = run("models", "--json", tiny_model_path)
    assert r.exit_code == 0, r.output
    recs = {rec["name"]: rec for rec in map(json.loads, r.stdout.splitlines())}
    assert set(recs) == {"classsr_fsrcnn_x4", "tiny_x4"}
    assert recs["tiny_x4"]["family"] == "fsrcnn" and recs["tiny_x4"]["scale"] == 4
    assert recs["tiny_x4"]["trained"] is False and recs["tiny_x4"]["size_bytes"] > 0
    assert recs["classsr_fsrcnn_x4"]["default"] is True and recs["tiny_x4"]["default"] is False
    r = run("models")
    assert "classsr_fsrcnn_x4" in r.stdout and "fsrcnn" in r.stdout
    row = next(line for line in r.stdout.splitlines() if line.startswith("classsr_fsrcnn_x4"))
    assert row.split()[:3] == ["classsr_fsrcnn_x4", "x4", "classsr"]  # named the default for x4
    # the shipped name is what `upscale` picks by default
    photo = tmp_path / "p.png"
    Image.new("RGB", (10, 10), (1, 2, 3)).save(photo)
    assert run("upscale", photo, "--json").exit_code == 0


def test_models_shows_a_budget_model_s_per_patch_default(tmp_path: Path) -> None:
    from classsr_cli.checkpoint import save_checkpoint
    from classsr_cli.config import ClassSRConfig
    from classsr_cli.models import build_model

    paths = []
    for name, extra in (("priced_x2", {"cell_price": 3.5}), ("within_x2", {"cell_tolerance": 1.5}),
                        ("capped_x2", {"cell_price": 3.5, "frame_cap_db": 0.1})):
        cfg = ClassSRConfig("residual", 2, (0, 4, 8), {"depth": 1}, classifier_width=8, routing="budget",
                            tolerance=0.05, **extra)  # type: ignore[arg-type]
        paths.append(save_checkpoint(build_model(cfg), tmp_path / f"{name}.safetensors"))
    r = runner.invoke(app, ["models", *map(str, paths)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    rows = {line.split()[0]: line for line in r.stdout.splitlines() if line.endswith(".safetensors")}
    assert "default per patch, price 3.5; --tolerance in dB" in rows["priced_x2"]
    assert "default per patch 1.5; --tolerance in dB" in rows["within_x2"]
    assert "default per patch, price 3.5, at most 0.1 dB a frame; --tolerance in dB" in rows["capped_x2"]
    recs = {rec["name"]: rec for rec in map(json.loads, run("models", "--json", *paths).stdout.splitlines())}
    assert (recs["priced_x2"]["cell_price"], recs["priced_x2"]["cell_tolerance"]) == (3.5, None)
    assert (recs["within_x2"]["cell_price"], recs["within_x2"]["cell_tolerance"]) == (None, 1.5)
    assert (recs["capped_x2"]["frame_cap_db"], recs["priced_x2"]["frame_cap_db"]) == (0.1, None)


def test_models_says_which_files_of_the_weights_folders_it_leaves_out(
    tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A damaged download or foreign weights in $CLASSSR_WEIGHTS vanished from `classsr models` without a word: they
    are said as a folder named on the command line says them; the models beside them are listed as before."""
    from safetensors.torch import save_file

    weights = tmp_path / "w"
    weights.mkdir()
    shutil.copy(tiny_model_path, weights / "mine.safetensors")
    (weights / "cut.safetensors").write_bytes(tiny_model_path.read_bytes()[:100])
    save_file({"weight": torch.zeros(2)}, str(weights / "esrgan.safetensors"))
    save_file({"conv_first.weight": torch.zeros(2), "layers.0.residual_group.blocks.0.conv_block.cab.0.weight":
               torch.zeros(2)}, str(weights / "4x-hat.safetensors"))  # another tool's model: said as what it is
    monkeypatch.setattr("classsr_cli.zoo.weights_dirs", lambda: [weights])
    r = run("models")
    assert r.exit_code == 0 and [line.split()[0] for line in r.stdout.splitlines()[1:]] == ["mine"]
    assert r.stderr.startswith("left out 3 file(s) that are not classsr checkpoints: 4x-hat.safetensors (a HAT "
                               "transformer), cut.safetensors, esrgan.safetensors\n")
    for f in ("cut", "esrgan", "4x-hat"):
        (weights / f"{f}.safetensors").unlink()
    assert "left out" not in run("models").stderr


def test_models_says_where_it_looks_and_takes_folders(
    tiny_model_path: Path, photo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("classsr_cli.zoo.weights_dirs", lambda: [tmp_path / "w"])
    r = run("models", tiny_model_path.parent)  # a folder: its .safetensors
    assert r.exit_code == 0, r.output
    assert "tiny_x4" in r.stdout and f"is looked up in {tmp_path / 'w'}" in r.stderr
    empty = tmp_path / "nothing here"
    empty.mkdir()
    r = run("models", empty)
    assert r.exit_code == 1 and "is a folder with no .safetensors files" in r.stderr
    assert "no such checkpoint" not in r.stderr
    # a training run's folder: its fitted base (plain safetensors) and a damaged file are left out, and said so;
    # a branch checkpoint is listed, with nothing to route
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(tiny_model_path, run_dir / "classsr.safetensors")
    from safetensors.torch import save_file

    from classsr_cli.checkpoint import save_checkpoint
    from classsr_cli.config import BranchConfig
    from classsr_cli.models import build_branch

    save_file({"fitted_base": torch.zeros(2, 2)}, str(run_dir / "base.safetensors"))  # a residual run's
    (run_dir / "broken.safetensors").write_bytes(b"junk")
    branch_cfg = BranchConfig("fsrcnn", 4, 4, {"s": 4, "m": 1})
    save_checkpoint(build_branch(branch_cfg), run_dir / "branch0.safetensors", config=branch_cfg)
    r = runner.invoke(app, ["models", str(run_dir)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert ("left out 2 file(s) that are not classsr checkpoints: base.safetensors (a training run's fitted base), "
            "broken.safetensors") in r.stderr
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:]}
    assert set(rows) == {"classsr", "branch0"} and rows["branch0"][1:5] == ["branch", "fsrcnn", "x4", "–"]
    recs = {rec["name"]: rec for rec in map(json.loads, run("models", "--json", run_dir).stdout.splitlines())}
    assert recs["branch0"]["routing"] is None and recs["classsr"]["routing"] == "argmax"  # as the table: nothing to route
    r = run("models", run_dir / "base.safetensors")  # named on its own: an error, as ever
    assert r.exit_code == 1 and r.stderr == (f"error: {run_dir / 'base.safetensors'}: a training run's fitted base, not a "
                                             "model (its branches' upsampler); the model a run exports is "
                                             f"{run_dir / 'classsr.safetensors'}\n")
    r = run("upscale", photo, "--model", run_dir / "branch0.safetensors")  # a run's branch: said, the model named
    assert r.exit_code == 1 and r.stderr == (f"error: {run_dir / 'branch0.safetensors'}: one fsrcnn branch, not a whole "
                                             "ClassSR model (a classifier and three branches); the model a run "
                                             f"exports is {run_dir / 'classsr.safetensors'}\n")
    only_foreign = tmp_path / "foreign"
    only_foreign.mkdir()
    save_file({"weight": torch.zeros(2, 2)}, str(only_foreign / "w.safetensors"))
    r = run("models", only_foreign)
    assert r.exit_code == 1 and "holds no classsr checkpoint" in r.stderr


def test_models_table_is_not_cut_off_a_terminal(tiny_model_path: Path, tmp_path: Path) -> None:
    deep = tmp_path / ("a_rather_long_folder_name_" * 6) / "more"
    deep.mkdir(parents=True)
    path = deep / "tiny_x4.safetensors"
    shutil.copy(tiny_model_path, path)
    r = runner.invoke(app, ["models", str(path)], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    (row,) = [line for line in r.stdout.splitlines() if line.startswith("tiny_x4")]
    assert row.rstrip().endswith(str(path))  # whole, on one line


def test_models_bad_path_and_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("classsr_cli.zoo.weights_dirs", lambda: [tmp_path / "none"])
    r = run("models")
    assert r.exit_code == 0 and "no models found" in r.stderr
    bad = tmp_path / "x.safetensors"
    bad.write_text("junk")
    r = run("models", bad)
    assert r.exit_code == 1
    one_error_line(r, str(bad))


@pytest.mark.slow
def test_torchrun_two_cpu_ranks(tiny_model_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(3)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(src / f"f{i}.png")
    (src / "f5.png").write_text("not an image")  # the sixth file by name: rank 1's third
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "classsr_cli", "upscale", str(src), "-o", str(tmp_path / "out"), "--model", str(tiny_model_path),
        "--json", "--device", "cpu", "--keep-going",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode != 0  # rank 1's exit 3 (a failure kept going past), which torchrun reports as 1
    records = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert sorted(Path(r["input"]).name for r in records) == [f"f{i}.png" for i in range(6)], p.stderr[-3000:]
    assert {r["rank"] for r in records} == {0, 1}
    (bad,) = [r for r in records if "error" in r]
    assert Path(bad["input"]).name == "f5.png" and bad["rank"] == 1  # failures say their rank too
    assert files(tmp_path / "out") == [f"f{i}.png" for i in range(5)]


@pytest.mark.parametrize("family", ["fsrcnn", "residual"])
def test_json_routing_gives_every_patch_class(family: str, photo: Path, tmp_path: Path) -> None:
    """--classes (no picture) and --classmap put `routing` in the record: the grid's classes, row-major, the
    same counts as `patches`; patches on the paper's path, step x step cells on the residual family's."""
    import torch

    from classsr_cli.checkpoint import save_checkpoint
    from classsr_cli.config import ClassSRConfig
    from classsr_cli.models import build_model

    extra = {"s": 4, "m": 1} if family == "fsrcnn" else {"depth": 1}
    model = build_model(ClassSRConfig(family, 4, (4, 6, 8), extra, classifier_width=8)).eval()
    for p in model.classifier.parameters():
        torch.nn.init.normal_(p, std=0.5)
    path = save_checkpoint(model, tmp_path / f"{family}_x4.safetensors")
    r = run("upscale", photo, "--model", path, "-o", tmp_path / "a.png", "--json", "--classes")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    routing = rec["routing"]
    assert not (tmp_path / "a_classmap.png").exists()
    patch, step = routing["patch"], routing["step"]
    assert (patch, step) == ((32, 28) if family == "fsrcnn" else (28, 28))
    rows, cols = len(routing["classes"]), len(routing["classes"][0])
    assert (rows - 1) * step + patch >= 40 and (cols - 1) * step + patch >= 48  # covers the 48x40 frame
    assert (rows - 2) * step + patch < 40 and (cols - 2) * step + patch < 48  # and no more
    flat = [c for row in routing["classes"] for c in row]
    assert set(flat) <= {0, 1, 2}
    counts = rec["patches"]
    assert [flat.count(k) for k in range(3)] == [counts["light"], counts["medium"], counts["heavy"]]
    decided = routing["decided"]  # the classifier's decisions: the planner only ever runs a heavier branch
    assert [len(row) for row in decided] == [len(row) for row in routing["classes"]]
    assert all(d <= c for dr, cr in zip(decided, routing["classes"], strict=True) for d, c in zip(dr, cr, strict=True))
    if family == "fsrcnn":  # the paper's path runs every patch in the branch it was decided
        assert decided == routing["classes"]
    r = run("upscale", photo, "--model", path, "-o", tmp_path / "b.png", "--json", "--classmap")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.splitlines()[0])["routing"] == routing
    r = run("upscale", photo, "--model", path, "-o", tmp_path / "c.png", "--json")
    assert "routing" not in json.loads(r.stdout)
    r = run("upscale", photo, "--model", path, "-o", tmp_path / "d.png", "--classes")  # nowhere to put them
    one_error_line(r, "--classes puts every patch's class in the --json record: add --json")
    assert r.exit_code == 2 and not (tmp_path / "d.png").exists()


def test_an_output_larger_than_its_format_holds_is_refused_before_the_upscale(
        tiny_model_path: Path, tmp_path: Path) -> None:
    """WebP holds 16383 pixels a side: a 4200-wide input x4 to .webp is refused in one line naming .png and .tif
    (it computed for seconds and then failed as an "internal error" from the encoder)."""
    src = tmp_path / "wide.png"
    Image.fromarray(np.zeros((8, 4200, 3), np.uint8)).save(src)
    r = up(tiny_model_path, src, "-o", tmp_path / "wide_x4.webp")
    one_error_line(r, "wide_x4.webp: 16800x32 is more than WEBP holds (16383 pixels a side); write wide_x4.png or")
    assert r.exit_code == 2 and not (tmp_path / "wide_x4.webp").exists()
    assert up(tiny_model_path, src, "-o", tmp_path / "wide_x4.png").exit_code == 0


def test_output_size_instead_of_a_scale(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    """--width/--height: each image gets the factor that makes it that size (one dimension exact, the other by
    the aspect; both: the largest that fits), named _w/_h/_WxH; too small or too large a factor fails that image
    in one line; -x with them is a usage error; a re-run into the folder leaves the outputs out."""
    shots = tmp_path / "shots"
    shots.mkdir()
    shutil.copy(photo, shots / "a.png")  # 48x40
    Image.open(photo).resize((30, 40)).save(shots / "b.png")  # portrait 30x40
    r = up(tiny_model_path, shots, "--width", "100", "--json")
    assert r.exit_code == 0, r.output
    recs = {Path(d["input"]).name: d for d in map(json.loads, r.stdout.splitlines())}
    assert Image.open(shots / "a_w100.png").size == (100, 83) and Image.open(shots / "b_w100.png").size == (100, 133)
    assert recs["a.png"]["scale"] == pytest.approx(100 / 48) and recs["b.png"]["scale"] == pytest.approx(100 / 30)
    # Non-native factors, said once for the folder (naming the first), as -x2.5 says it.
    assert r.stderr.count("not a native scale") == 1
    assert f"note: x2.08 (--width 100 for {shots / 'a.png'}) is not a native scale: running the x4 model" in r.stderr
    r = up(tiny_model_path, shots, "--width", "100", "--height", "100")
    assert r.exit_code == 0, r.output
    assert Image.open(shots / "a_100x100.png").size == (100, 83) and Image.open(shots / "b_100x100.png").size == (75, 100)
    r = up(tiny_model_path, shots, "--height", "160", "--json")  # a: x4 exactly (the model's own scale); b: x4 too
    assert r.exit_code == 0 and Image.open(shots / "a_h160.png").size == (192, 160), r.output
    assert "not a native scale" not in r.stderr
    assert len([p for p in shots.iterdir() if p.name.startswith("a")]) == 4  # the earlier outputs were left out
    r = up(tiny_model_path, shots / "a.png", "--width", "40")
    assert r.exit_code == 1 and (
        f"{shots / 'a.png'}: 48x40 is already as large as --width 40 asks (x0.833); classsr enlarges only" in r.stderr)
    r = up(tiny_model_path, shots / "a.png", "--width", "500")  # x10.4: the x4 model, then x2.6 on its output
    assert r.exit_code == 0 and Image.open(shots / "a_w500.png").size == (500, 417), r.output
    assert "note: x10.4 (--width 500 for" in r.stderr and "then x2.60417 on its output" in r.stderr
    r = up(tiny_model_path, shots / "a.png", "--width", "48000")  # more than two runs reach: no advice to try them
    assert r.exit_code == 1 and "48x40 to --width 48000 is x1000, more than two x4 runs give (x16); ask for less" in r.stderr
    r = up(tiny_model_path, shots / "a.png", "--width", "49", "--overwrite")  # x1.02: not printed as x1
    assert r.exit_code == 0 and "note: x1.02 (--width 49 for" in r.stderr, r.output
    # A folder run names each image that fails; an x2 --model caps the factor at x2.
    x2 = tmp_path / "tiny_x2.safetensors"
    from classsr_cli.checkpoint import save_checkpoint
    from classsr_cli.models import build_model

    save_checkpoint(build_model(ClassSRConfig(family="fsrcnn", scale=2, widths=(4, 6, 8), extra={"s": 4, "m": 1},
                                              classifier_width=8)).eval(), x2)  # fmt: skip
    r = up(x2, shots, "--width", "80", "--keep-going")
    assert r.exit_code == 3, r.output
    assert f"{shots / 'b.png'}: 30x40 to --width 80 is x2.67, more than the x2 --model gives" in r.stderr
    assert Image.open(shots / "a_w80.png").size == (80, 67)  # x1.67 with the x2 model
    r = up(tiny_model_path, shots / "a.png", "--width", "100", "-x", "2")
    assert r.exit_code == 2 and "-x and --width/--height both say how large the output is" in r.stderr


def test_globs_match_any_case_and_any_depth_and_unread_files_are_counted(tiny_model_path: Path,
                                                                          tmp_path: Path) -> None:
    """A quoted glob finds a camera's IMG_1.JPG with *.jpg (a folder does too), ``**`` any depth without
    --recursive; .jfif/.jpe are JPEG, read and written as such; a folder's files classsr does not read are counted
    in one line, and a folder of only those says what they are."""
    cam = tmp_path / "cam"
    (cam / "day1").mkdir(parents=True)
    img = Image.fromarray(np.random.default_rng(2).integers(0, 256, (20, 24, 3), dtype=np.uint8))
    img.save(cam / "IMG_1.JPG")
    img.save(cam / "day1" / "IMG_2.jpg")
    img.save(cam / "old.jfif", format="JPEG")
    (cam / "IMG_3.DNG").write_bytes(b"II*\x00")  # a camera's raw files: not read
    (cam / "IMG_4.DNG").write_bytes(b"II*\x00")
    (cam / "IMG_1.xmp").write_text("<x:xmpmeta/>")
    r = up(tiny_model_path, str(cam / "*.jpg"), "-o", tmp_path / "o1")
    assert r.exit_code == 0 and files(tmp_path / "o1") == ["IMG_1.JPG"], r.output
    r = up(tiny_model_path, str(cam / "**" / "*.jpg"), "-o", tmp_path / "o2")
    assert r.exit_code == 0 and files(tmp_path / "o2") == ["IMG_1.JPG", "IMG_2.jpg"], r.output
    r = up(tiny_model_path, cam, "-o", tmp_path / "o3")
    assert r.exit_code == 0 and files(tmp_path / "o3") == ["IMG_1.JPG", "old.jfif"], r.output
    assert ("skipped 3 file(s) that are not images classsr reads (2 .DNG, 1 .xmp); camera RAW (2): develop them first "
            "and export 16-bit TIFF or PNG") in r.stderr
    with Image.open(tmp_path / "o3" / "old.jfif") as im:
        assert im.format == "JPEG" and im.size == (96, 80)
    raw = tmp_path / "raw"
    raw.mkdir()
    (cam / "IMG_3.DNG").rename(raw / "IMG_3.DNG")
    r = up(tiny_model_path, raw)
    one_error_line(r, "raw: no images in this folder (try --recursive); 1 .DNG not read (camera RAW: develop them "
                      "first and export 16-bit TIFF or PNG)")
    (raw / "IMG_3.DNG").rename(raw / "notes.xmp")
    one_error_line(up(tiny_model_path, raw), "raw: no images in this folder (try --recursive); 1 .xmp not read "
                   "(convert them to PNG, JPEG or TIFF first)")


def test_format_and_quality(tiny_model_path: Path, tmp_path: Path) -> None:
    """--format/-f writes every output in one format (beside the input, or into -o's folder), Real-ESRGAN's -f;
    -o FILE with another suffix is a usage error; --quality sets JPEG's (smaller at 40) and is checked 1..100."""
    src = tmp_path / "in"
    _tree(src)
    r = up(tiny_model_path, src, "-f", "jpg", "-o", tmp_path / "out", "--recursive")
    assert r.exit_code == 0, r.output
    assert files(tmp_path / "out") == ["a.jpg", "b.jpg", "sub/c.jpg", "sub/deeper/d.jpg"]
    assert Image.open(tmp_path / "out" / "sub" / "c.jpg").format == "JPEG"
    r = up(tiny_model_path, src / "a.png", "--format", "webp")
    assert r.exit_code == 0 and Image.open(src / "a_x4.webp").format == "WEBP", r.output
    r = up(tiny_model_path, src, "-f", "webp", "--skip-existing")  # the re-run leaves a_x4.webp out as an output
    assert r.exit_code == 0 and "a_x4_x4.webp" not in files(src), r.output
    r = up(tiny_model_path, src / "a.png", "-o", tmp_path / "x.png", "-f", "jpg")
    one_error_line(r, "x.png: its suffix names another format than --format jpg; drop one of them")
    assert r.exit_code == 2
    assert up(tiny_model_path, src / "a.png", "-o", tmp_path / "x.jpeg", "-f", "jpg").exit_code == 0  # the same format
    big = tmp_path / "noisy.png"
    Image.fromarray(np.random.default_rng(4).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(big)
    assert up(tiny_model_path, big, "-o", tmp_path / "q95.jpg").exit_code == 0
    assert up(tiny_model_path, big, "-o", tmp_path / "q40.jpg", "--quality", "40").exit_code == 0
    assert (tmp_path / "q40.jpg").stat().st_size < 0.7 * (tmp_path / "q95.jpg").stat().st_size
    r = up(tiny_model_path, big, "-o", tmp_path / "q.png", "--quality", "40")  # said, not silently ignored
    assert r.exit_code == 0 and "note: --quality is JPEG's, WebP's, AVIF's, HEIC's and JPEG XL's; the .png outputs are lossless" in r.stderr
    r = up(tiny_model_path, big, "-o", tmp_path / "q0.jpg", "--quality", "0")
    assert r.exit_code == 2 and not (tmp_path / "q0.jpg").exists()


def test_a_phones_heic_is_upscaled_into_a_heic_beside_it(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    """iPhones save HEIC: a folder of them is found and each written as HEIC beside it (the input's format, as every
    format is), its EXIF kept; ``-f heic`` writes one from a PNG; a HEIC goes through pipes too. Before, a folder of
    HEICs held "no images classsr reads (2 .HEIC)"."""
    import io

    from classsr_cli.io.image import readable_formats

    readable_formats()  # pillow-heif's plugin, as a read registers it: the test saves HEICs with Pillow
    shots = tmp_path / "shots"
    shots.mkdir()
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    for name in ("IMG_0001.HEIC", "IMG_0002.heic"):
        Image.open(photo).save(shots / name, format="HEIF", exif=exif.tobytes(), quality=90)
    r = up(tiny_model_path, shots)
    assert r.exit_code == 0, r.output
    assert files(shots) == ["IMG_0001.HEIC", "IMG_0001_x4.HEIC", "IMG_0002.heic", "IMG_0002_x4.heic"]
    with Image.open(shots / "IMG_0001_x4.HEIC") as im:
        assert im.format == "HEIF" and im.size == (192, 160) and im.getexif()[0x010F] == "Apple"
    r = up(tiny_model_path, photo, "-f", "heic", "--quality", "80")
    assert r.exit_code == 0 and Image.open(photo.with_name("photo_x4.heic")).format == "HEIF", r.output
    assert "note: --quality" not in r.stderr  # HEIC's quality, not ignored
    r = runner.invoke(app, ["upscale", "-", "-o", "-", "--model", str(tiny_model_path)],
                      input=(shots / "IMG_0002.heic").read_bytes())  # fmt: skip
    with Image.open(io.BytesIO(r.stdout_bytes)) as im:
        assert r.exit_code == 0 and im.format == "HEIF" and im.size == (192, 160), r.stderr


@pytest.mark.slow
def test_a_jpeg_xl_is_upscaled_into_a_jpeg_xl_beside_it(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    """JPEG XL (Lightroom's and Apple's newer exports): found in a folder, written as JPEG XL beside it with its EXIF
    kept; ``-f jxl --quality 100`` writes a lossless one from a PNG; through pipes too; ``classsr video`` names it
    an image (it said "not a readable video, nor an image whatever its .jxl says")."""
    from classsr_cli.io.image import Picture, read_image, write_image

    shots = tmp_path / "shots"
    exif = Image.Exif()
    exif[0x010F] = "Camera"
    write_image(shots / "DSC_1.JXL", Picture(np.asarray(Image.open(photo).convert("RGB")), exif=exif.tobytes()))
    r = up(tiny_model_path, shots)
    assert r.exit_code == 0 and files(shots) == ["DSC_1.JXL", "DSC_1_x4.JXL"], r.output
    out = read_image(shots / "DSC_1_x4.JXL")
    assert out.source_format == "JXL" and out.pixels.shape == (160, 192, 3) and out.exif and b"Camera" in out.exif
    r = up(tiny_model_path, photo, "-f", "jxl", "--quality", "100")
    assert r.exit_code == 0 and "note: --quality" not in r.stderr, r.output
    png = tmp_path / "ref.png"
    assert up(tiny_model_path, photo, "-o", png).exit_code == 0
    assert np.array_equal(read_image(photo.with_name("photo_x4.jxl")).pixels, read_image(png).pixels)  # lossless
    r = runner.invoke(app, ["upscale", "-", "-o", "-", "--model", str(tiny_model_path)],
                      input=(shots / "DSC_1.JXL").read_bytes())  # fmt: skip
    assert r.exit_code == 0 and r.stdout_bytes.startswith(b"\x00\x00\x00\x0cJXL "), r.stderr  # boxed with its EXIF
    r = runner.invoke(app, ["video", str(shots / "DSC_1.JXL"), str(tmp_path / "v.mp4")])
    assert r.exit_code != 0 and "is a JPEG XL image, not a video; use `classsr upscale`" in r.stderr


def test_a_factor_above_4_is_two_runs_in_one_command(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    """``-x 8`` (as waifu2x's and Upscayl's users ask) runs the x4 model, then x2 on its output: the same pixels as the
    two runs by hand, their patches and FLOPs summed; written in bands alike; --width past x4 too; above x16, and a
    class map (one per run), refused; ``video`` still asks for two runs."""
    import json

    from classsr_cli import zoo
    from classsr_cli.pipeline import chain, upscale_file
    from classsr_cli.runtime import resolve_device

    r = up(tiny_model_path, photo, "-x", "8", "-o", tmp_path / "x8.png", "--json")
    assert r.exit_code == 0, r.output
    assert "note: x8 is more than one run of the x4 model gives: the x4 model, then x2 on its output" in r.stderr
    eight = json.loads(r.stdout)
    assert eight["size"]["output"] == [384, 320] and eight["scale"] == 8 and eight["model_scale"] == 4
    first = json.loads(up(tiny_model_path, photo, "-x", "4", "-o", tmp_path / "x4.png", "--json").stdout)
    second = json.loads(up(tiny_model_path, tmp_path / "x4.png", "-x", "2", "-o", tmp_path / "x4x2.png", "--json").stdout)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x8.png")), np.asarray(Image.open(tmp_path / "x4x2.png")))
    for key in ("light", "medium", "heavy", "total"):
        assert eight["patches"][key] == first["patches"][key] + second["patches"][key]
    for key in ("used", "heavy", "whole"):
        assert eight["flops"][key] == first["flops"][key] + second["flops"][key]
    sixteen = chain(str(tiny_model_path), 16.0, resolve_device("cpu"), None, {})  # its second run native: in bands
    banded = upscale_file(sixteen, photo, tmp_path / "banded.png", stream_pixels=1)
    whole = upscale_file(sixteen, photo, tmp_path / "whole.png", stream_pixels=None)
    assert any("in bands of rows" in n for n in banded.notes) and banded.size_out == whole.size_out == (768, 640)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "banded.png")), np.asarray(Image.open(tmp_path / "whole.png")))
    assert banded.route.flops == whole.route.flops and banded.counts == whole.counts
    r = up(tiny_model_path, photo, "--width", "288", "--dry-run")  # 48 pixels wide: x6, x4 and then x1.5
    assert r.exit_code == 0 and "48x40 -> 288x240  (x6, the x4 model, then x1.5 on its output" in r.stderr, r.output
    r = up(tiny_model_path, photo, "--width", "288", "--json", "--classes")  # no one grid for two passes' patches
    assert r.exit_code == 0 and json.loads(r.stdout)["routing"] is None, r.output
    r = up(tiny_model_path, photo, "--width", "288", "--classmap", "--overwrite")  # refused per input: its factor
    assert r.exit_code == 1 and "photo.png: x6 is two passes, whose patches differ: --classmap draws one run's" in r.stderr
    one_error_line(up(tiny_model_path, photo, "-x", "17"), "scale must be above 1 and at most 16, got 17")
    r = up(tiny_model_path, photo, "-x", "8", "--classmap")
    one_error_line(r, "x8 runs x4 and then x2 on its output, whose patches differ: --classmap takes one run")
    assert zoo.MAX_SCALE == 4 and r.exit_code == 2


def test_an_output_given_as_a_second_argument_and_existing_outputs_under_keep_going(
    tiny_model_path: Path, photo: Path, tmp_path: Path
) -> None:
    """``classsr upscale in.png out.png`` (cp's order) names -o in one line, exit 2 (it said "no such file" and
    suggested --keep-going); a --keep-going run whose failures are existing outputs says what leaves them out."""
    r = up(tiny_model_path, photo, tmp_path / "new_out.png")
    one_error_line(r, f"new_out.png: no such file or folder; to write the output there, give it as -o {tmp_path / 'new_out.png'}")
    assert r.exit_code == 2 and not (tmp_path / "new_out.png").exists()
    r = up(tiny_model_path, photo, "4")  # Real-ESRGAN-like order: a scale given as an input
    one_error_line(r, "4: no such file or folder; the scale is an option: -x 4")
    assert r.exit_code == 2
    r = up(tiny_model_path, photo, tmp_path / "typo.png", "--keep-going")  # asked to carry on: a failure, listed
    assert r.exit_code == 3 and "1 of 2 inputs failed" in r.stderr and "give it as -o" not in r.stderr, r.output
    r = up(tiny_model_path, photo, str(tmp_path / "zzz*.png"))  # a pattern is not an output
    assert r.exit_code == 1 and "no image matches this pattern" in r.stderr
    src = tmp_path / "in"
    _tree(src)
    assert up(tiny_model_path, src).exit_code == 0
    (src / "new.png").write_bytes((src / "a.png").read_bytes())
    r = up(tiny_model_path, src, "--keep-going")
    assert r.exit_code == 3 and "2 of 3 inputs failed" in r.stderr, r.output
    assert "2 of them because their output exists: --skip-existing leaves such inputs out, --overwrite redoes them" in r.stderr


@pytest.mark.parametrize("url", ["https://example.com/photo.png", "https://example.com/photo.png?size=large",
                                 "rtsp://camera.local/stream"])
def test_a_url_is_refused_as_one_not_as_a_missing_file(
    tiny_model_path: Path, tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A URL given as an input said "https:/example.com/photo.png: no such file or folder" (its "//" made one by the
    path, a query's "?" read as a glob's): it is named as a URL, which classsr does not fetch, by `upscale`, `video`
    and `--model`, and an output so named is refused, not written into a folder "https:"; a file of such a name,
    where one exists, is read."""
    said = f"{url}: a URL; classsr reads files on this machine and fetches nothing: download it first"
    r = up(tiny_model_path, url)
    one_error_line(r, said)
    assert r.exit_code == 1
    r = run("video", url, tmp_path / "o.mp4", "--model", tiny_model_path)
    one_error_line(r, said)
    assert r.exit_code == 1
    sent = url.rsplit("/", 1)[0] + "/out.png"  # an output named by a URL: not a folder "https:" made here
    r = run("upscale", tmp_path / "missing.png", "-o", sent, "--model", tiny_model_path)
    one_error_line(r, f"{sent}: a URL; classsr writes files on this machine and sends nothing: write here, then upload")
    assert r.exit_code == 2
    r = run("video", tmp_path / "missing.mp4", sent.replace(".png", ".mp4"), "--model", tiny_model_path)
    assert r.exit_code == 2 and "a URL; classsr writes files on this machine" in r.stderr, r.output
    model = url.rsplit("/", 1)[0] + "/model.safetensors"  # a model named by its URL, likewise
    r = run("upscale", tmp_path / "missing.png", "--model", model)
    one_error_line(r, f"{model}: a URL; classsr reads files on this machine and fetches nothing: download it first")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "https:" / "example.com").mkdir(parents=True)
    Image.new("RGB", (16, 16), (90, 120, 40)).save(tmp_path / "https:" / "example.com" / "photo.png")
    r = up(tiny_model_path, "https://example.com/photo.png", "-o", tmp_path / "o.png")
    assert r.exit_code == 0 and (tmp_path / "o.png").exists(), r.output


def test_result_lines_go_above_a_live_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both streams on one terminal: a result line printed past rich's live bar ran into it
    (`images ━━━━ 0/5 0:00:00out3/baby.png`); it is printed through the bar's console, above it. Piped: stdout."""
    from classsr_cli.cli.upscale import _Report

    printed: list[str] = []

    class Console:
        def print(self, text: str, **_: object) -> None:
            printed.append(text)

    class Live:
        console = Console()

    echoed: list[str] = []
    monkeypatch.setattr("typer.echo", lambda text: echoed.append(text))
    report = _Report(False, type("World", (), {"active": False})())
    report.live = Live()
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    report._stdout({"output": "out/a.png", "classmap": "out/a_classmap.png"})
    assert printed == ["out/a.png", "out/a_classmap.png"] and echoed == []
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)  # piped: stdout as ever
    report._stdout({"output": "out/b.png"})
    assert echoed == ["out/b.png"]


def test_a_folder_runs_in_natural_order(tiny_model_path: Path, tmp_path: Path) -> None:
    """frame2 before frame10, as file managers list them (it ran frame1, frame10, frame11, frame2)."""
    src = tmp_path / "frames"
    src.mkdir()
    for n in (10, 2, 1, 11):
        Image.new("RGB", (8, 8), (n, n, n)).save(src / f"frame{n}.png")
    r = up(tiny_model_path, src, "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert [Path(line).name for line in r.stdout.split()] == ["frame1.png", "frame2.png", "frame10.png", "frame11.png"]


def test_outputs_record_how_they_were_made_and_strip_metadata_drops_it(tiny_model_path: Path, tmp_path: Path) -> None:
    """PNG text (`Software`, `classsr`) and a JPEG comment record classsr's version, the model and the SHA-256 of
    its file, the scale and the routing settings (a batch can be audited later); --strip-metadata writes no EXIF
    (GPS), XMP, text or record, and keeps the ICC profile and the print size."""
    import hashlib

    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x013B] = "Jane Doe"  # Artist
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 30.0)  # GPSLatitude
    src = tmp_path / "cam.jpg"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
        src, exif=exif, icc_profile=icc, dpi=(300, 300), xmp=b"<x:xmpmeta>Jane</x:xmpmeta>")
    want = {"model": "tiny", "model_sha256": hashlib.sha256(tiny_model_path.read_bytes()).hexdigest(), "scale": 4.0,
            "tolerance": None, "force_branch": "medium", "step": 28}
    for out in (tmp_path / "o.png", tmp_path / "o.jpg"):
        r = up(tiny_model_path, src, "-o", out, "--force-branch", "medium")
        assert r.exit_code == 0, r.output
        with Image.open(out) as im:
            text = im.text["classsr"] if out.suffix == ".png" else im.info["comment"].decode().removeprefix("classsr ")
            assert {k: v for k, v in json.loads(text).items() if k in want} == {**want, "model": tiny_model_path.stem}
            assert im.getexif()[0x013B] == "Jane Doe"  # and the source's metadata is carried as ever
            if out.suffix == ".png":
                from classsr_cli import __version__

                assert im.text["Software"] == f"classsr {__version__}"
    r = up(tiny_model_path, src, "-o", tmp_path / "s.jpg", "--strip-metadata")
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "s.jpg") as im:
        assert not im.getexif() and "xmp" not in im.info and "comment" not in im.info
        assert im.info["icc_profile"] == icc and im.info["dpi"] == (300, 300)


def test_dry_run_says_what_would_be_written_and_writes_nothing(tiny_model_path: Path, tmp_path: Path) -> None:
    """--dry-run: the outputs on stdout (JSON records with --json), each with its sizes and model on stderr,
    and what would fail as the run says it, from the headers (an EXIF-turned photo counted turned); no file."""
    src = tmp_path / "in"
    _tree(src)  # 24x20 images
    turned = Image.new("RGB", (30, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    turned.save(src / "turned.jpg", exif=exif)
    before = files(src)
    r = up(tiny_model_path, src, "--dry-run", "-f", "webp")
    assert r.exit_code == 0, r.output
    assert r.stdout.split() == [str(src / n) for n in ("a_x4.webp", "b_x4.webp", "turned_x4.webp")]
    assert f"would write {src / 'a_x4.webp'}  24x20 -> 96x80  (x4, the x4 model)" in r.stderr
    assert f"would write {src / 'turned_x4.webp'}  20x30 -> 80x120" in r.stderr and "nothing was" in r.stderr
    assert files(src) == before
    Image.new("RGB", (5, 4)).save(src / "small.png")
    before = files(src)
    r = up(tiny_model_path, src, "--dry-run", "--width", "90", "--json", "--keep-going")  # x3.75; small: x18 fails
    assert r.exit_code == 3, r.output
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec.get("dry_run") for rec in recs] == [True, True, None, True] and "error" in recs[2]
    assert recs[0]["size"] == {"input": [24, 20], "output": [90, 75]} and recs[0]["model_scale"] == 4
    assert recs[0]["tta"] == 1 and recs[3]["size"] == {"input": [20, 30], "output": [90, 135]}  # turned: two passes
    assert "(x4.5, the x4 model, then x1.125 on its output (the x4 model, then a downscale))" in r.stderr
    assert "1 of 4 inputs would fail" in r.stderr and files(src) == before
    r = up(tiny_model_path, src / "a.png", "--dry-run", "--tta", "4", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["tta"] == 4
    assert "(x4, the x4 model, 4 passes averaged (--tta))" in r.stderr
    # Without --keep-going: stopped at the failure, with its error and the run's exit code and line.
    r = up(tiny_model_path, src, "--dry-run", "--width", "90", "-f", "webp")
    assert r.exit_code == 1 and "small.png: 5x4 to --width 90 is x18, more than two x4 runs give (x16)" in r.stderr
    assert "stopped: 1 more input(s) not processed" in r.stderr  # turned.jpg, after it
    Image.new("RGB", (8, 8)).save(src / "z.png")  # after small.png too: now two are left unchecked
    r = up(tiny_model_path, src, "--dry-run", "--width", "90")
    assert r.exit_code == 1 and "stopped: 2 more input(s) not processed" in r.stderr
    big = tmp_path / "bomb.png"  # refused from its header, as the run refuses it: not decoded to look for EXIF
    Image.new("L", (3000, 3000)).save(big)
    r = up(tiny_model_path, big, "--dry-run", "--max-pixels", "1000000")
    assert r.exit_code == 1 and "above the 1,000,000-pixel limit" in r.stderr


def test_tta_is_recorded_counted_and_checked(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    """`upscale --tta 8`: another picture, its JSON record and its file's record say 8 passes, the FLOPs are all
    eight passes' against the heavy branch's eight, the patches the first pass's; --tta 3 is a usage error."""
    plain = up(tiny_model_path, photo, "-o", tmp_path / "one.png", "--json")
    eight = up(tiny_model_path, photo, "-o", tmp_path / "eight.png", "--json", "--tta", "8")
    assert plain.exit_code == 0 and eight.exit_code == 0, eight.output
    a, b = json.loads(plain.stdout), json.loads(eight.stdout)
    assert a["tta"] == 1 and b["tta"] == 8
    assert b["flops"]["whole"] == 8 * a["flops"]["whole"] and b["flops"]["used"] > 7 * a["flops"]["used"]
    assert b["patches"] == a["patches"]
    assert "--tta 8: all 8 passes against heavy's 8" in eight.stderr
    with Image.open(tmp_path / "one.png") as i1, Image.open(tmp_path / "eight.png") as i8:
        assert json.loads(i8.text["classsr"])["tta"] == 8 and json.loads(i1.text["classsr"])["tta"] == 1
        assert not np.array_equal(np.asarray(i1), np.asarray(i8)) and i1.size == i8.size
    bad = up(tiny_model_path, photo, "-o", tmp_path / "bad.png", "--tta", "3")
    assert bad.exit_code == 2 and "takes 1, 2, 4, 8 passes" in " ".join(bad.output.split())
    assert not (tmp_path / "bad.png").exists()


def test_a_picture_through_a_pipe_past_pillows_bomb_limit_is_read_by_max_pixels(
        tiny_model_path: Path, photo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A picture on standard input larger than Pillow's own bomb limit: its format is sniffed from its header (the
    limit off; nothing decoded), then it is read as a file is, under ``--max-pixels``. It was "not an image classsr
    reads"."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # the photo's 48x40 is past twice it
    r = runner.invoke(app, ["upscale", "-", "-o", str(tmp_path / "o.png"), "--model", str(tiny_model_path)],
                      input=photo.read_bytes())  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "- -> " in r.stderr and "48x40 -> 192x160" in r.stderr and (tmp_path / "o.png").stat().st_size
    r = runner.invoke(app, ["upscale", "-", "-o", str(tmp_path / "o.png"), "--overwrite", "--max-pixels", "1000",
                            "--model", str(tiny_model_path)], input=photo.read_bytes())  # fmt: skip
    assert r.exit_code != 0 and "48x40 is 1,920 pixels, above the 1,000-pixel limit" in r.stderr


def test_every_format_classsr_reads_through_pillow_can_come_through_a_pipe(tiny_model_path: Path, tmp_path: Path) -> None:
    """A piped picture is staged under its format's suffix: a format read without one (BLP, when it was added) was
    "not an image classsr reads" through a pipe and read as a file."""
    from classsr_cli.cli.upscale import _STAGED
    from classsr_cli.io.image import readable_formats

    assert set(readable_formats()) <= set(_STAGED), set(readable_formats()) - set(_STAGED)
    Image.fromarray((np.random.default_rng(2).random((16, 24, 3)) * 255).astype(np.uint8)).quantize(16).save(
        tmp_path / "t.blp")
    r = runner.invoke(app, ["upscale", "-", "-o", str(tmp_path / "o.png"), "-x", "2", "--model", str(tiny_model_path)],
                      input=(tmp_path / "t.blp").read_bytes())
    assert r.exit_code == 0 and Image.open(tmp_path / "o.png").size == (48, 32), r.output


def test_a_picture_through_pipes(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    """``-`` as INPUT reads the picture from standard input (its format sniffed), ``-o -`` writes it to standard
    output (in the input's format, or ``--format``'s), the same pixels as files give; the report says ``-``, and
    nothing staged is left. Refused where standard output must carry something else or several pictures."""
    import io

    data = photo.read_bytes()
    assert up(tiny_model_path, photo, "-o", tmp_path / "file.png").exit_code == 0
    want = np.asarray(Image.open(tmp_path / "file.png"))
    r = runner.invoke(app, ["upscale", "-", "-o", "-", "--model", str(tiny_model_path)], input=data)
    assert r.exit_code == 0, r.stderr
    with Image.open(io.BytesIO(r.stdout_bytes)) as im:
        assert im.format == "PNG" and np.array_equal(np.asarray(im), want)
    assert "- -> -  48x40 -> 192x160" in r.stderr
    r = runner.invoke(app, ["upscale", str(photo), "-o", "-", "-f", "webp", "--model", str(tiny_model_path)])
    with Image.open(io.BytesIO(r.stdout_bytes)) as im:
        assert r.exit_code == 0 and im.format == "WEBP" and im.size == (192, 160)
    assert f"{photo} -> -  48x40" in r.stderr
    Image.open(photo).save(tmp_path / "p.gif")  # a GIF is written as PNG, as beside its input
    r = runner.invoke(app, ["upscale", "-", "-o", "-", "--model", str(tiny_model_path)],
                      input=(tmp_path / "p.gif").read_bytes())  # fmt: skip
    with Image.open(io.BytesIO(r.stdout_bytes)) as im:
        assert r.exit_code == 0 and im.format == "PNG" and im.size == (192, 160)
    (tmp_path / "p.gif").unlink()
    r = runner.invoke(app, ["upscale", "-", "-o", str(tmp_path / "in.png"), "--json", "--model", str(tiny_model_path)],
                      input=data)  # fmt: skip
    record = json.loads(r.stdout)
    assert r.exit_code == 0 and (record["input"], record["output"]) == ("-", str(tmp_path / "in.png"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "in.png")), want)
    r = runner.invoke(app, ["upscale", "-", "-o", f"{tmp_path / 'folder'}/", "--model", str(tiny_model_path)], input=data)
    assert r.exit_code == 0 and r.stdout.strip() == str(tmp_path / "folder" / "stdin.png")
    for args, said in (
        (["-", "-o", "-", "--json"], "-o - writes the picture to standard output, so --json cannot: write to a file"),
        (["-", "-o", "-", "--classmap"], "so --classmap cannot"),
        ([str(photo), str(photo), "-o", "-"], "-o - writes one picture to standard output: give one image file"),
        ([str(tmp_path), "-o", "-"], "-o - writes one picture to standard output"),
        (["-", str(photo), "-o", str(tmp_path / "x")], "- (the picture on standard input) must be the only INPUT"),
        (["-"], "- (the picture on standard input) has no place to be written beside: give -o FILE"),
    ):
        r = runner.invoke(app, ["upscale", *args, "--model", str(tiny_model_path)], input=data)
        assert r.exit_code == 2 and said in r.stderr and not r.stdout_bytes, (args, r.stderr)
    from test_image_io import lossless_jpeg

    deep = lossless_jpeg(np.random.default_rng(1).integers(0, 4096, (40, 48)), 12)  # Pillow does not open it: read
    r = runner.invoke(app, ["upscale", "-", "-o", str(tmp_path / "deep.png"), "--model", str(tiny_model_path)],
                      input=deep)  # fmt: skip
    with Image.open(tmp_path / "deep.png") as im:
        assert r.exit_code == 0 and im.mode == "I;16" and im.size == (192, 160), r.stderr
    for given, said in ((b"not a picture\n", "-: not an image classsr reads"), (b"", "-: empty input")):
        r = runner.invoke(app, ["upscale", "-", "-o", "-", "--model", str(tiny_model_path)], input=given)
        assert r.exit_code == 1 and said in r.stderr and not r.stdout_bytes
    import tempfile

    assert not list(Path(tempfile.gettempdir()).glob("classsr-pipe-*"))


@pytest.mark.slow
def test_an_openexr_is_upscaled_into_an_openexr_beside_it(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    """OpenEXR (renders, VFX plates, HDR merges): found in a folder, written as EXR beside it; ``-f exr`` writes one
    from a PNG (linear light of sRGB's curve, half floats); through pipes too; ``classsr video`` names it an image."""
    from classsr_cli.io import exr
    from classsr_cli.io.image import Picture, write_image

    shots = tmp_path / "plates"
    write_image(shots / "shot_0001.EXR", Picture(np.asarray(Image.open(photo).convert("RGB"))))
    r = up(tiny_model_path, shots)
    assert r.exit_code == 0 and files(shots) == ["shot_0001.EXR", "shot_0001_x4.EXR"], r.output
    out = read_image(shots / "shot_0001_x4.EXR")
    assert out.source_format == "EXR" and out.pixels.shape == (160, 192, 3) and out.linear and out.linear.half
    r = up(tiny_model_path, photo, "-f", "exr")
    png = tmp_path / "ref.png"
    assert r.exit_code == 0 and up(tiny_model_path, photo, "-o", png).exit_code == 0, r.output
    as_exr = read_image(photo.with_name("photo_x4.exr")).pixels.astype(int)
    assert np.abs(as_exr // 257 - read_image(png).pixels).max() <= 1  # the same picture, in linear half floats
    r = runner.invoke(app, ["upscale", "-", "-o", "-", "--model", str(tiny_model_path)],
                      input=(shots / "shot_0001.EXR").read_bytes())  # fmt: skip
    assert r.exit_code == 0 and exr.header(r.stdout_bytes).width == 192, r.stderr
    r = runner.invoke(app, ["video", str(shots / "shot_0001.EXR"), str(tmp_path / "v.mp4")])
    assert r.exit_code != 0 and "is an OpenEXR image, not a video; use `classsr upscale`" in r.stderr


def test_a_texture_array_upscales_every_texture(tiny_model_path: Path, tmp_path: Path) -> None:
    """Each texture of a DDS texture array (told apart by their colour) is upscaled and written back in its place,
    as it is upscaled alone; the routing counts every texture's patches, ``--classes`` gives each one's grid, and the
    progress counts every texture's work."""
    import struct

    from classsr_cli import zoo
    from classsr_cli.io import dds
    from classsr_cli.pipeline import Upscaler, upscale_file

    faces = [np.full((32, 40, 4), (40 * k, 200 - 30 * k, 90, 255), np.uint8) for k in range(6)]
    for k, face in enumerate(faces):  # each alone: one R8G8B8A8_UNORM texture
        (tmp_path / f"face{k}.dds").write_bytes(dds._dx10_header((40, 32), 28, 1, 160) + face.tobytes())
    head = bytearray(dds._dx10_header((40, 32), 28, 1, 160))
    struct.pack_into("<I", head, 140, 6)  # arraySize
    src = tmp_path / "array.dds"
    src.write_bytes(bytes(head) + b"".join(face.tobytes() for face in faces))
    r = up(tiny_model_path, src, "--json", "--classes")
    assert r.exit_code == 0, r.output
    routing = json.loads(r.stdout)["routing"]  # the first texture's grid, the others' under "faces"
    assert len(routing["faces"]) == 5 and all(np.shape(f["classes"]) == np.shape(routing["classes"]) == (1, 2)
                                              for f in routing["faces"])  # fmt: skip (40 x 32: two patches)
    got = read_image(tmp_path / "array_x4.dds")
    assert got.pixels.shape == (128, 160, 3) and got.texture is not None and len(got.texture.faces) == 5
    total = 0
    for k, pixels in enumerate([got.pixels] + [px for px, _ in got.texture.faces]):  # each as upscaled alone
        one = up(tiny_model_path, tmp_path / f"face{k}.dds", "--json")
        assert one.exit_code == 0, one.output
        total += json.loads(one.stdout)["patches"]["total"]
        assert np.array_equal(pixels, read_image(tmp_path / f"face{k}_x4.dds").pixels)
    assert json.loads(r.stdout)["patches"]["total"] == total
    seen: list[tuple[int, int]] = []  # the progress counts every texture's work, up to the whole of it once
    upscale_file(Upscaler.of(zoo.load(str(tiny_model_path), 4)), src, tmp_path / "again.dds",
                 progress=lambda done, of: seen.append((done, of)))  # fmt: skip
    assert len(seen) >= 6 and {of for _, of in seen} == {seen[-1][0]} and [d for d, _ in seen] == sorted(
        d for d, _ in seen)


#: A stereo MPO's right eye's own XMP (a rating), which its output's right eye keeps.
RIGHT_XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
             b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="4"/></rdf:RDF></x:xmpmeta>')


def test_a_stereo_mpo_keeps_both_eyes_each_upscaled_as_it_is_alone(tmp_path: Path) -> None:
    """A stereo camera's MPO (two disparity pictures, the right eye the left shifted): its default output is an MPO
    whose second picture is the right eye upscaled as that eye is alone, both typed as a stereo pair's; the routing
    counts both eyes and ``--classes`` gives the right eye's grid under "faces"; it is read as a stereo MPO again
    (turned by the first picture's EXIF orientation, as the first is); a PNG output keeps the left eye, said. (The
    shipped x2 model: its output follows its input, which the tiny model's does not.) Each picture's own MP attributes
    (the right eye's axis distance and yaw, which the left's do not give) and XMP, which Pillow does not read, are
    carried to the output's same picture."""
    import io as bytes_io

    from classsr_cli.io import gainmap

    model = Path("classsr_residual_x2")  # (a name the zoo resolves)
    rng = np.random.default_rng(5)
    left = np.kron(rng.integers(0, 256, (12, 16, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    right = np.ascontiguousarray(np.roll(left, 5, axis=1)[:, :, ::-1])  # another picture, told apart by its colours
    eyes = []
    for k, eye in enumerate((left, right)):
        coded = bytes_io.BytesIO()
        exif = Image.Exif()
        exif[0x0112] = 6 if k == 0 else 1  # the first picture's orientation turns both (its own EXIF says 1)
        exif[0x010F] = ("LeftCam", "RightCam")[k]
        Image.fromarray(eye).save(coded, format="JPEG", quality=95, exif=exif, xmp=(b"", RIGHT_XMP)[k])
        eyes.append(coded.getvalue())
        with Image.open(coded) as decoded:  # the eye as the MPO holds it, turned as the first picture says
            Image.fromarray(np.rot90(np.asarray(decoded), 3)).save(tmp_path / f"turned{k}.png")
    src = tmp_path / "DSCF0001.MPO"
    import struct

    pair = ((0xB204, 4, struct.pack(">I", 1)), (0xB205, 10, struct.pack(">ii", -3, 2)),
            (0xB206, 5, struct.pack(">II", 77, 1000)))  # fmt: skip (base viewpoint 1, convergence -1.5 degrees, 77 mm)
    right_only = ((0xB208, 10, struct.pack(">ii", 77, 1000)), (0xB20B, 10, struct.pack(">ii", -1, 4)))  # 77 mm, -0.25°
    each = (pair, pair + right_only)
    src.write_bytes(gainmap.jpeg_with(*eyes, types=gainmap.STEREO_TYPES, attributes=each))
    pic = read_image(src)
    assert pic.stereo is not None and pic.stereo.attributes == each and pic.stereo.own[0][1] == RIGHT_XMP
    assert pic.notes == [] and len(pic.stereo.views) == 1 and pic.pixels.shape == (64, 48, 3) == pic.stereo.views[0].shape
    r = up(model, src, "-x2", "--json", "--classes")
    assert r.exit_code == 0, r.output
    record = json.loads(r.stdout)
    assert record["output"] == str(tmp_path / "DSCF0001_x2.MPO") and len(record["routing"]["faces"]) == 1
    with Image.open(tmp_path / "DSCF0001_x2.MPO") as im:
        assert (im.format, im.n_frames) == ("MPO", 2)
        assert [e["Attribute"]["MPType"] for e in im.mpinfo[0xB002]] == ["Multi-Frame Image: (Disparity)"] * 2
    got = read_image(tmp_path / "DSCF0001_x2.MPO")
    assert got.stereo is not None and got.pixels.shape == (128, 96, 3) and len(got.stereo.views) == 1
    assert got.stereo.attributes == each and got.stereo.own[0][1] == RIGHT_XMP
    data = (tmp_path / "DSCF0001_x2.MPO").read_bytes()
    second = data[data.index(b"\xff\xd8", 2) :]  # each picture's own MP attribute IFD, numbered as a camera numbers them
    tiff = second[second.index(b"MPF\x00") + 4 :]
    tags = {struct.unpack(">H", tiff[10 + 12 * k : 12 + 12 * k])[0]: tiff[18 + 12 * k : 22 + 12 * k]
            for k in range(struct.unpack(">H", tiff[8:10])[0])}  # fmt: skip
    assert struct.unpack(">I", tags[0xB101]) == (2,)
    assert set(tags) == {0xB000, 0xB101, 0xB204, 0xB205, 0xB206, 0xB208, 0xB20B}
    own = Image.Exif()
    own.load(got.stereo.own[0][0])  # the right eye's own EXIF, its orientation out, its size the output's
    assert (own.get(0x010F), own.get(0x0112), own.get_ifd(0x8769).get(0xA002)) == ("RightCam", None, None)
    total = 0
    for k, pixels in enumerate((got.pixels, got.stereo.views[0])):  # each eye as upscaled alone (both turned), JPEG's loss
        one = up(model, tmp_path / f"turned{k}.png", "-x2", "--json")
        assert one.exit_code == 0, one.output
        total += json.loads(one.stdout)["patches"]["total"]
        alone = read_image(tmp_path / f"turned{k}_x2.png").pixels.astype(int)
        assert np.abs(pixels.astype(int) - alone).mean() < 4, k
    other = np.abs(got.stereo.views[0].astype(int) - read_image(tmp_path / "turned0_x2.png").pixels).mean()
    assert other > 20  # (the right eye is not the left one again)
    assert record["patches"]["total"] == total
    r = up(model, src, "-x2", "-o", tmp_path / "flat.png")
    assert r.exit_code == 0 and "PNG output: only the first of the stereo pair's 2 views (its left eye) is kept" in r.stderr
    (tmp_path / "cut.mpo").write_bytes(src.read_bytes()[: len(eyes[0]) + 90 + len(eyes[1]) // 2])  # the right eye cut short
    cut = read_image(tmp_path / "cut.mpo")
    assert cut.stereo is None and np.array_equal(cut.pixels, pic.pixels)
    assert len(cut.notes) == 1 and cut.notes[0].startswith("MPO: the stereo pair's other view does not decode (image "
                                                           "file is truncated") and cut.notes[0].endswith(
        "only the first is upscaled")  # fmt: skip


def test_a_spatial_heic_keeps_both_eyes_and_their_camera_properties(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                    ) -> None:
    """A spatial photo (a HEIC whose primary picture is the left eye of a ``ster`` group, as an iPhone or a Vision Pro
    writes one, here made by classsr's own writer with its eyes' camera properties: a ``cmin`` and an Apple ``uuid``
    box each): libheif reads the pair; upscaled, the output is a pair again (libheif reads its ``ster`` group, left
    first), each eye as it is upscaled alone, each with its properties as they came; into a JPEG it is a stereo MPO,
    and a stereo MPO into a HEIC a pair. Both eyes are coded in tiles, as phones code a picture."""
    import io as bytes_io

    import pillow_heif

    from classsr_cli.io import bmff, heifbox
    from classsr_cli.io.image import Picture, Stereo, write_image

    model = Path("classsr_residual_x2")  # (a name the zoo resolves; its output follows its input)
    rng = np.random.default_rng(6)
    left = np.kron(rng.integers(0, 256, (12, 16, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    right = np.ascontiguousarray(np.roll(left, 5, axis=1)[:, :, ::-1])
    props = tuple((bmff.full_box(b"cmin", bytes([0, 0, 0x1C, 0, k, 2, 3, 4])),
                   bmff.box(b"uuid", bytes.fromhex("4363e9145b7d4aab97aebea69803b434") + bytes([0, 0, 0, k])))
                  for k in (0, 1))  # fmt: skip
    src = tmp_path / "IMG_0001.HEIC"
    exif = Image.Exif()
    exif[0x010F] = "RightCam"
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:SpatialMedia="http://ns.apple.com/SpatialMedia/1.0/" SpatialMedia:version="1.0"/>'
           b"</rdf:RDF></x:xmpmeta>")  # fmt: skip
    assert write_image(src, Picture(left, stereo=Stereo((right,), ((exif.tobytes(), xmp),), props))) == []
    assert pillow_heif.open_heif(src).info["entity_groups"][0]["type"] == "ster"
    pic = read_image(src)
    assert pic.notes == [] and pic.stereo is not None and len(pic.stereo.views) == 1 and pic.stereo.properties == props
    for k, eye in enumerate((pic.pixels, pic.stereo.views[0])):  # each eye as the HEIC holds it
        Image.fromarray(eye).save(tmp_path / f"eye{k}.png")
    r = up(model, src, "-x2", "--json", "--classes")
    assert r.exit_code == 0, r.output
    record = json.loads(r.stdout)
    out = tmp_path / "IMG_0001_x2.HEIC"
    groups = pillow_heif.open_heif(out).info["entity_groups"]
    assert [(g["type"], g["images"]) for g in groups] == [("ster", [0, 1])]
    pair = heifbox.stereo(out.read_bytes())
    assert pair is not None and (pair.left_properties, pair.right_properties) == props
    right_eye = pillow_heif.open_heif(out)[1].info  # its own EXIF and XMP, carried
    assert b"RightCam" in right_eye["exif"] and b'SpatialMedia:version="1.0"' in right_eye["xmp"]
    r = up(model, src, "-x2", "--strip-metadata", "-o", tmp_path / "stripped.heic")
    assert r.exit_code == 0, r.output
    assert not pillow_heif.open_heif(tmp_path / "stripped.heic")[1].info.get("exif")
    got = read_image(out)
    assert got.stereo is not None and got.pixels.shape == (96, 128, 3) and len(got.stereo.views) == 1
    assert len(record["routing"]["faces"]) == 1
    total = 0
    for k, pixels in enumerate((got.pixels, got.stereo.views[0])):
        one = up(model, tmp_path / f"eye{k}.png", "-x2", "--json", "-o", tmp_path / f"eye{k}_x2.heic")  # coded alike
        assert one.exit_code == 0, one.output
        total += json.loads(one.stdout)["patches"]["total"]
        alone = read_image(tmp_path / f"eye{k}_x2.heic").pixels.astype(int)
        assert np.abs(pixels.astype(int) - alone).mean() < 1, k
    assert np.abs(got.stereo.views[0].astype(int) - read_image(tmp_path / "eye0_x2.heic").pixels).mean() > 20
    assert record["patches"]["total"] == total
    r = up(model, src, "-x2", "-o", tmp_path / "pair.mpo")  # a spatial photo into a stereo MPO
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "pair.mpo") as im:
        assert (im.format, im.n_frames) == ("MPO", 2)
    eyes = []
    for eye in (left, right):
        coded = bytes_io.BytesIO()
        Image.fromarray(eye).save(coded, format="JPEG", quality=95)
        eyes.append(coded.getvalue())
    (tmp_path / "DSCF0001.MPO").write_bytes(gainmap_jpeg(*eyes))
    r = up(model, tmp_path / "DSCF0001.MPO", "-x2", "-o", tmp_path / "from_mpo.heic")  # and a stereo MPO into a pair
    assert r.exit_code == 0, r.output
    assert [g["type"] for g in pillow_heif.open_heif(tmp_path / "from_mpo.heic").info["entity_groups"]] == ["ster"]
    assert len(read_image(tmp_path / "from_mpo.heic").stereo.views) == 1  # type: ignore[union-attr]
    from classsr_cli.io import image as image_module

    monkeypatch.setattr(image_module, "HEIF_TILE", 32)  # (this small pair in tiles of 32)
    assert write_image(tmp_path / "tiles.heic", Picture(left, stereo=Stereo((right,), properties=props))) == []
    tiles = pillow_heif.open_heif(tmp_path / "tiles.heic")
    assert [(image.info["tiling"]["num_columns"], image.info["tiling"]["num_rows"]) for image in tiles] == [(2, 2)] * 2
    assert [g["type"] for g in tiles.info["entity_groups"]] == ["ster"]
    tiled, whole = read_image(tmp_path / "tiles.heic"), read_image(src)  # the right eye coded in tiles, and whole
    assert tiled.stereo is not None and whole.stereo is not None
    coded = tiled.stereo.views[0].astype(int)
    assert np.abs(coded - whole.stereo.views[0]).mean() < 2 < np.abs(coded - whole.pixels).mean()
    deep = [(eye.astype(np.uint16) * 257) for eye in (left, right)]  # a 10-bit pair: read at 16 bits, both eyes
    assert write_image(tmp_path / "deep.heic", Picture(deep[0], depth=10, stereo=Stereo((deep[1],)))) == []
    assert [image.info["bit_depth"] for image in pillow_heif.open_heif(tmp_path / "deep.heic")] == [10, 10]
    ten = read_image(tmp_path / "deep.heic")
    assert ten.stereo is not None and ten.stereo.views[0].dtype == np.uint16 and ten.notes == []
    eye = ten.stereo.views[0] / 257  # as the 8-bit pair's right eye (each coded alike: HEVC's chroma at its edges)
    assert np.abs(eye - whole.stereo.views[0]).mean() < 2 < np.abs(eye - whole.pixels).mean()


def gainmap_jpeg(*pictures: bytes) -> bytes:
    """The JPEG ``pictures`` as a stereo MPO (:func:`classsr_cli.io.gainmap.jpeg_with`)."""
    from classsr_cli.io import gainmap

    return gainmap.jpeg_with(*pictures, types=gainmap.STEREO_TYPES)


def test_each_cube_of_a_cube_map_array_is_upscaled_as_that_cube_alone(tiny_model_path: Path, tmp_path: Path) -> None:
    """A cube map array of two cubes (DX10, TEXTURECUBE): each cube's six faces come out as that cube's do when it is
    a cube map of its own (each face grown from its own cube's faces, not the first cube's), all twelve written, the
    second cube after the first; ``--classes`` gives the eleven faces after the first their grids."""
    import struct

    from classsr_cli.io import dds

    n, rng = 32, np.random.default_rng(3)
    faces = [np.dstack([rng.integers(0, 256, (n, n, 3), dtype=np.uint8), np.full((n, n), 255, np.uint8)])
             for _ in range(12)]

    def cube_file(path: Path, of: list[np.ndarray]) -> Path:
        head = bytearray(dds._dx10_header((n, n), 28, 1, 4 * n))
        struct.pack_into("<I", head, 112, 0x200 | 0xFC00)  # DDSCAPS2_CUBEMAP
        struct.pack_into("<2I", head, 136, 0x4, len(of) // 6)  # TEXTURECUBE, its cubes
        path.write_bytes(bytes(head) + b"".join(face.tobytes() for face in of))
        return path

    r = up(tiny_model_path, cube_file(tmp_path / "probes.dds", faces), "--json", "--classes")
    assert r.exit_code == 0, r.output
    routing = json.loads(r.stdout)["routing"]
    assert len(routing["faces"]) == 11 and routing["pad"] == 16
    got = read_image(tmp_path / "probes_x4.dds")
    assert got.texture is not None and len(got.texture.faces) == 11
    ups = [got.pixels] + [px for px, _ in got.texture.faces]
    for c in (0, 1):
        assert up(tiny_model_path, cube_file(tmp_path / f"cube{c}.dds", faces[6 * c:6 * c + 6])).exit_code == 0
        alone = read_image(tmp_path / f"cube{c}_x4.dds")
        assert alone.texture is not None
        for k, pixels in enumerate([alone.pixels] + [px for px, _ in alone.texture.faces]):
            assert np.array_equal(ups[6 * c + k], pixels), (c, k)


@pytest.mark.slow
def test_a_cube_map_shows_no_seam_where_its_faces_meet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cube map's faces are each upscaled with its neighbours' texels around it: where +Z's right edge meets +X's
    left edge (two halves of one photo strip, as a skybox's faces continue each other), the output's columns at the
    seam are as close to the strip upscaled whole (the shipped model) as its columns away from it; upscaled alone,
    each face's border sees only its own pixels, and the columns at the seam stray from it. Face order and every
    face's place are kept."""
    import struct

    from classsr_cli import pipeline, zoo
    from classsr_cli.pipeline import Upscaler, upscale_file

    photo = np.asarray(Image.open(Path(__file__).parent.parent / "examples" / "baby.png").convert("RGB"))
    n = 64
    strip = photo[200:200 + n, 160:160 + 2 * n]
    faces = [photo[k * n:(k + 1) * n, :n] for k in range(6)]
    faces[4], faces[0] = strip[:, :n], strip[:, n:]  # +Z, then +X to its right
    buf = tmp_path / "face.dds"
    Image.fromarray(faces[0]).convert("RGBA").save(buf)
    head = bytearray(buf.read_bytes()[:128])
    struct.pack_into("<I", head, 112, 0x200 | 0xFC00)  # DDSCAPS2_CUBEMAP, all six faces
    src = tmp_path / "sky.dds"
    src.write_bytes(bytes(head) + b"".join(np.dstack([f[..., ::-1], np.full((n, n), 255, np.uint8)]).tobytes()
                                           for f in faces))  # fmt: skip (B, G, R, A)
    assert np.array_equal(read_image(src).pixels, faces[0])
    upscaler = Upscaler.of(zoo.load(None, 4))
    whole = upscaler.upscale_array(np.ascontiguousarray(strip)).pixels.astype(int)

    def strays(out: Path) -> tuple[float, float, list[np.ndarray]]:
        """How far the columns at the seam, and those 20-40 away from it, are from the strip upscaled whole."""
        got = read_image(out)
        assert got.texture is not None
        ups = [got.pixels.astype(int)] + [px.astype(int) for px, _ in got.texture.faces]
        off = np.abs(np.concatenate([ups[4], ups[0]], axis=1) - whole).mean(axis=(0, 2))
        seam = 4 * n
        return float(off[seam - 2:seam + 2].mean()), float(np.r_[off[seam - 40:seam - 20], off[seam + 20:seam + 40]].mean()), ups

    upscale_file(upscaler, src, tmp_path / "grown.dds", classmap=tmp_path / "map.png")
    at_seam, away, ups = strays(tmp_path / "grown.dds")
    with Image.open(tmp_path / "map.png") as drawn:  # the first face's classes, over its output, a legend below
        assert drawn.size == (4 * n, 4 * n + 18)
        shown = np.asarray(drawn.convert("RGB")).astype(int)
        assert np.abs(shown[:4 * n] - ups[0]).mean() < 60 and np.median(shown[4 * n:]) == 24  # the legend's ground
    for face, got in zip(faces, ups, strict=True):  # each face in its place: its own picture, enlarged
        assert np.abs(got.reshape(n, 4, n, 4, 3).mean(axis=(1, 3)) - face).mean() < 4
    monkeypatch.setattr(pipeline, "_cube_cut", lambda *a: None)  # as the faces were upscaled alone
    upscale_file(upscaler, src, tmp_path / "alone.dds")
    alone_at_seam, alone_away, _ = strays(tmp_path / "alone.dds")
    assert at_seam <= away + 0.1 and alone_at_seam >= alone_away + 0.3, (at_seam, away, alone_at_seam, alone_away)


def test_a_360_panorama_shows_no_seam_where_its_edges_meet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 360° panorama (Photo Sphere XMP: equirectangular, the whole circle across) is upscaled with columns of its
    other side grown on each side: where its right edge meets its left (two halves of one photo strip, swapped), the
    output's columns at the seam are as close to the strip upscaled whole as its columns away from it, written whole
    or in bands of rows alike; upscaled alone, its edges see only their own pixels and stray. Its panorama sizes
    (``GPano``) are scaled with it, and kept by ``--strip-metadata`` (how it is shown); ``--json --classes`` says how
    far left of the picture its grid starts."""
    from classsr_cli import pipeline, zoo
    from classsr_cli.pipeline import Upscaler, upscale_file

    photo = np.asarray(Image.open(Path(__file__).parent.parent / "examples" / "baby.png").convert("RGB"))
    n = 64
    strip = np.ascontiguousarray(photo[200 : 200 + n, 160 : 160 + 2 * n])
    pano = np.ascontiguousarray(np.roll(strip, -n, axis=1))  # the strip's middle is now its edges' meeting
    xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           '<rdf:Description rdf:about="" xmlns:GPano="http://ns.google.com/photos/1.0/panorama/" '
           f'GPano:ProjectionType="equirectangular" GPano:CroppedAreaImageWidthPixels="{2 * n}" '
           f'GPano:CroppedAreaImageHeightPixels="{n}" GPano:FullPanoWidthPixels="{2 * n}" '
           f'GPano:FullPanoHeightPixels="{2 * n}" GPano:CroppedAreaTopPixels="{n // 2}"/></rdf:RDF></x:xmpmeta>')
    src = tmp_path / "pano.png"
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    Image.fromarray(pano).save(src, pnginfo=info)
    upscaler = Upscaler.of(zoo.load(None, 4))
    whole = np.roll(upscaler.upscale_array(strip).pixels.astype(int), -4 * n, axis=1)

    def strays(out: Path) -> tuple[float, float]:
        """How far the columns at the seam, and those 20-40 away from it, are from the strip upscaled whole."""
        off = np.abs(read_image(out).pixels.astype(int) - whole).mean(axis=(0, 2))
        return float(np.r_[off[:2], off[-2:]].mean()), float(off[4 * n - 40 : 4 * n - 20].mean())

    result = upscale_file(upscaler, src, tmp_path / "round.png", classmap=tmp_path / "map.png")
    at_seam, away = strays(tmp_path / "round.png")
    assert result.to_dict(routing=True)["routing"]["wrap"] == pipeline.WRAP_PAD and result.size_out == (8 * n, 4 * n)
    with Image.open(tmp_path / "map.png") as drawn:
        assert drawn.size[0] == 8 * n
    back = read_image(tmp_path / "round.png").xmp or b""
    assert b'GPano:FullPanoWidthPixels="512"' in back and b'GPano:FullPanoHeightPixels="512"' in back
    assert b'GPano:CroppedAreaImageHeightPixels="256"' in back and b'GPano:CroppedAreaTopPixels="128"' in back
    upscale_file(upscaler, src, tmp_path / "bare.png", strip_metadata=True)  # still a 360° photo: how it is shown
    bare = read_image(tmp_path / "bare.png").xmp or b""
    assert b'GPano:ProjectionType="equirectangular"' in bare and b'GPano:FullPanoWidthPixels="512"' in bare
    assert np.array_equal(read_image(tmp_path / "bare.png").pixels, read_image(tmp_path / "round.png").pixels)
    upscale_file(upscaler, src, tmp_path / "bands.png", stream_pixels=1)  # computed and written in bands of rows
    assert np.array_equal(read_image(tmp_path / "bands.png").pixels, read_image(tmp_path / "round.png").pixels)
    monkeypatch.setattr(pipeline, "wrap_cut", lambda *a: None)  # as it was upscaled alone
    upscale_file(upscaler, src, tmp_path / "alone.png")
    alone_at_seam, alone_away = strays(tmp_path / "alone.png")
    assert at_seam <= away + 0.1 and alone_at_seam >= alone_away + 0.3, (at_seam, away, alone_at_seam, alone_away)


def test_textures_and_netpbm_in_a_folder_and_through_pipes(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    """A folder's TGA, PPM, PGM, PBM and DDS files are upscaled (TGA, DDS and Netpbm beside them in their own format,
    a 1-bit PBM as PNG); a PPM goes through pipes as Netpbm tools pass it (``pnmtopng`` and the like), a TGA
    too, known by TGA 2.0's footer, while a TGA 1.0, which has no signature, is refused in one line that says how to
    give it, and a PFM is told from the PPM Pillow takes it for."""
    folder = tmp_path / "textures"
    folder.mkdir()
    with Image.open(photo) as im:
        rgb = im.convert("RGB")
    rgb.save(folder / "wall.tga", compression="tga_rle")
    rgb.save(folder / "scan.ppm")
    rgb.convert("L").save(folder / "grey.pgm")
    rgb.convert("1").save(folder / "line.pbm")
    rgb.convert("RGBA").save(folder / "tex.dds", pixel_format="DXT1")
    r = up(tiny_model_path, folder, "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert files(tmp_path / "out") == ["grey.pgm", "line.png", "scan.ppm", "tex.dds", "wall.tga"]
    with Image.open(tmp_path / "out" / "tex.dds") as tex:  # the source's DXT1
        assert tex.size == (192, 160) and getattr(tex, "pixel_format", None) == "DXT1"
    assert Image.open(tmp_path / "out" / "wall.tga").size == Image.open(tmp_path / "out" / "grey.pgm").size == (192, 160)
    assert Image.open(tmp_path / "out" / "grey.pgm").mode == "L"
    r = runner.invoke(app, ["upscale", "-", "-o", "-", "--model", str(tiny_model_path)],
                      input=(folder / "scan.ppm").read_bytes())  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert r.stdout_bytes == (tmp_path / "out" / "scan.ppm").read_bytes()
    tga = (folder / "wall.tga").read_bytes()
    assert tga.endswith(b"TRUEVISION-XFILE.\x00")  # TGA 2.0's footer, as Pillow, GIMP and ffmpeg write it
    r = runner.invoke(app, ["upscale", "-", "-o", "-", "--model", str(tiny_model_path)], input=tga)
    assert r.exit_code == 0, r.stderr
    assert r.stdout_bytes == (tmp_path / "out" / "wall.tga").read_bytes()
    (folder / "wall.img").write_bytes(tga)  # a TGA 2.0 under another name is known by its footer too
    r = up(tiny_model_path, folder / "wall.img", "-o", tmp_path / "renamed.png")
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "renamed.png")), np.asarray(Image.open(tmp_path / "out" / "wall.tga")))
    r = runner.invoke(app, ["upscale", "-", "-o", "-", "--model", str(tiny_model_path)],
                      input=tga[:-26])  # fmt: skip  # TGA 1.0: no footer
    assert r.exit_code == 1 and "a TGA 1.0 file, which has no signature, only as a file named .tga" in r.stderr
    one_error_line(r, "-:")
    light = np.asarray(rgb, np.float32)[::-1] / 64  # a PFM, which Pillow would open as a PPM: read and written as one
    pfm = b"PF\n48 40\n-1.0\n" + np.ascontiguousarray(light, "<f4").tobytes()
    r = runner.invoke(app, ["upscale", "-", "-o", "-", "--model", str(tiny_model_path)], input=pfm)
    head = b"PF\n192 160\n-1.0\n"
    assert r.exit_code == 0 and r.stdout_bytes.startswith(head) and len(r.stdout_bytes) == len(head) + 192 * 160 * 12


def test_format_offers_one_suffix_for_each_format_classsr_writes() -> None:
    """``--format``'s choices (declared in the CLI without importing the image module, for a fast --help) are the
    writers' suffixes, every one; its help names one per format (PNM, written as PPM or PGM as the picture is, is
    reached by its suffix alone) and the others."""
    from classsr_cli.cli.upscale import FORMAT_NAMES, ImageFormat
    from classsr_cli.io.image import WRITE_FORMATS

    assert {f".{f.value}" for f in ImageFormat} == set(WRITE_FORMATS)
    named = [WRITE_FORMATS[f".{name}"] for name in FORMAT_NAMES]
    assert len(set(named)) == len(named) and set(WRITE_FORMATS.values()) - set(named) == {"PNM"}
    assert "PNM" in {WRITE_FORMATS[f".{f.value}"] for f in ImageFormat}


def test_format_takes_another_suffix_of_a_format_in_any_case(photo: Path, tmp_path: Path,
                                                             install: Callable[..., dict[str, Path]]) -> None:
    """``-f tiff`` and ``-f JPEG`` (refused before: only tif and jpg were offered) write a TIFF under .tiff and a
    JPEG under .jpeg; an unknown one is refused with the choices."""
    from PIL import Image

    install("classsr_residual_x4")
    for given, suffix, pil in (("tiff", ".tiff", "TIFF"), ("JPEG", ".jpeg", "JPEG"), ("Png", ".png", "PNG")):
        r = runner.invoke(app, ["upscale", str(photo), "-x", "4", "-f", given, "-o", f"{tmp_path}/out/"])
        assert r.exit_code == 0, r.output
        out = tmp_path / "out" / f"{photo.stem}{suffix}"
        with Image.open(out) as im:
            assert im.format == pil
    r = runner.invoke(app, ["upscale", str(photo), "-f", "psd"])
    said = " ".join(r.output.replace("│", " ").split())  # as the terminal's box wraps it
    assert r.exit_code == 2 and "'psd' is not one of 'png', 'jpg'" in said, said


def test_model_auto_through_the_cli(photo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    install: Callable[..., dict[str, Path]]) -> None:
    """``-m auto``: each picture's --json record names the model that ran (the noisy-input one for a noisy picture,
    the default for a clean one), and a line after the totals counts them; --dry-run says auto; bench refuses it in one line (video: tests/test_video.py); a
    model file named ``auto`` is that file."""
    from classsr_cli.degrade import add_noise

    paths = install("classsr_residual_x4", "classsr_residual_noisy_x4")
    smooth = np.asarray(Image.open(photo).convert("RGB").resize((96, 96), Image.Resampling.BICUBIC))
    Image.fromarray(smooth).save(tmp_path / "smooth.png")
    Image.fromarray(add_noise(smooth, 10, 0)).save(tmp_path / "grainy.png")
    ins = [tmp_path / "smooth.png", tmp_path / "grainy.png"]
    r = run("upscale", *ins, "-m", "auto", "-o", tmp_path / "out", "--json")
    assert r.exit_code == 0, r.output
    models = {Path(rec["input"]).name: Path(rec["model"]).name for rec in map(json.loads, r.stdout.splitlines())}
    assert models == {"smooth.png": "classsr_residual_x4.safetensors", "grainy.png": "classsr_residual_noisy_x4.safetensors"}
    assert "--model auto: classsr_residual_noisy_x4 (looks noisy: its noise estimate is" in r.stderr
    assert "models: classsr_residual_x4 1 · classsr_residual_noisy_x4 1" in r.stderr  # after the totals
    r = run("upscale", *ins, "-o", tmp_path / "one", "--json")  # one model: no such line
    assert r.exit_code == 0 and "total: 2 images" in r.stderr and "models:" not in r.stderr, r.output
    r = run("upscale", *ins, "-m", "auto", "-o", tmp_path / "dry", "--json", "--dry-run")
    assert r.exit_code == 0 and {json.loads(line)["model"] for line in r.stdout.splitlines()} == {"auto"}
    r = run("bench", tmp_path, "-x", "4", "-m", "auto")
    assert r.exit_code == 2 and "--model auto picks a model by the picture, in `classsr upscale` and `classsr video` only" in r.stderr
    (tmp_path / "auto").write_bytes(paths["classsr_residual_x4"].read_bytes())
    monkeypatch.chdir(tmp_path)
    r = run("upscale", "grainy.png", "-m", "auto", "-o", tmp_path / "file.png", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["model"] == "auto"
