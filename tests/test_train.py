"""`classsr train`: data preparation, augmentation, losses, the collapse guard, the whole pipeline through the CLI,
resume, config handling and (slow) two CPU ranks under torchrun.

Everything is tiny: five seeded ~96x80 photos at x2, FSRCNN widths 4/6/8 with one mapping layer, a few
iterations per stage, one thread.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner, Result

from classsr_cli.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from classsr_cli.cli import app
from classsr_cli.degrade import (
    add_noise,
    bicubic_downscale,
    compress_lr,
    degrade_lr,
    jpeg_roundtrip,
    load_rgb,
    mod_crop,
    noise_lr,
)
from classsr_cli.errors import ConfigError, OutputError
from classsr_cli.models import build_branch
from classsr_cli.models.residual import fit_base
from classsr_cli.train.config import STAGES, StageConfig, TrainConfig, load_train_config
from classsr_cli.train.data import PatchData, factor_pair, prepare
from classsr_cli.train.loop import Dist, cosine_lr, stage_generator
from classsr_cli.train.losses import average_loss, class_loss, mean_loss, quantile_loss
from classsr_cli.train.stages import Trainer, bicubic_gains, collapse_guard, squared_error

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
SCALE, PATCH, STEP = 2, 32, 16
#: (width, height) of the HR photos; odd sizes exercise the mod-crop, 100 and 72 leave a border remainder.
SIZES = [(96, 80), (97, 81), (100, 83), (96, 80), (112, 72)]
#: img2.png hashes to 0.334 (the lowest of the five), so it alone is held out at this fraction.
VAL_FRACTION = 0.4
VAL_FILE = "img2.png"


def run(*args: str | Path) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def make_photo(width: int, height: int, seed: int) -> np.ndarray:
    """Smooth gradients on the left half, noisy texture and an edge on the right: easy and hard sub-images."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.stack([x * 2 + 10 * seed, y * 3, (x + y) * 1.2], -1)
    img[:, width // 2 :] += rng.normal(0, 30, (height, width - width // 2, 3))
    img[height // 3 :, width // 3 : width // 3 + 3] = 250
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def hr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hr")
    for i, (w, h) in enumerate(SIZES):
        Image.fromarray(make_photo(w, h, i)).save(folder / f"img{i}.png")
    return folder


def write_config(path: Path, *, iterations: int = 6, extra_top: str = "", extra_baseline: str = "") -> Path:
    stages = []
    for name in STAGES:
        batch = 4 if name in ("baseline", "branches") else 6
        lr = 1e-4 if name == "finetune" else 1e-3
        stages.append(
            f"[{name}]\niterations = {iterations}\nbatch_size = {batch}\nlr = {lr}\nval_every = 3\nckpt_every = 2\n"
            + (extra_baseline if name == "baseline" else "")
        )
    path.write_text(
        f'family = "fsrcnn"\nscale = {SCALE}\nwidths = [4, 6, 8]\nextra = {{s = 4, m = 1}}\npatch = {PATCH}\n'
        f"data_step = {STEP}\nfactors = [1.0]\nval_fraction = {VAL_FRACTION}\nlog_every = 2\nclassifier_warmup = 2\n"
        + extra_top + "\n" + "\n".join(stages)
    )
    return path


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("cfg") / "tiny.toml")


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def train(stage: str, run_dir: Path, hr: Path, config: Path, *more: str | Path) -> Result:
    return run("train", stage, "--hr", hr, "--config", config, "--out", run_dir, "--threads", "1", "--device", "cpu",
               *more)


# -- prepare -----------------------------------------------------------------------------------------------------
def _origins(n: int) -> list[int]:
    pos = list(range(0, n - PATCH + 1, STEP))
    return pos if pos[-1] == n - PATCH else [*pos, n - PATCH]


def test_prepare_arrays_hash_split_and_dense_patches(hr_dir: Path, tmp_path: Path) -> None:
    args = ("--hr", hr_dir, "--scale", SCALE, "--patch", PATCH, "--step", STEP, "--factors", "1.0",
            "--val-fraction", VAL_FRACTION)
    a, b = run("train", "prepare", *args, "--out", tmp_path / "a"), run("train", "prepare", *args, "--out", tmp_path / "b")
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    assert a.stdout.strip().startswith("sha256:") and a.stdout == b.stdout
    assert (tmp_path / "a" / "meta.json").read_bytes() == (tmp_path / "b" / "meta.json").read_bytes()
    for name in ("lr", "hr", "images", "patches"):
        assert (tmp_path / "a" / f"{name}.npy").read_bytes() == (tmp_path / "b" / f"{name}.npy").read_bytes()

    folder = tmp_path / "a"
    meta = json.loads((folder / "meta.json").read_text())
    assert {s["file"]: s["split"] for s in meta["sources"]} == {
        f"img{i}.png": "val" if f"img{i}.png" == VAL_FILE else "train" for i in range(5)}
    lr_all, hr_all = np.load(folder / "lr.npy"), np.load(folder / "hr.npy")
    images, patches = np.load(folder / "images.npy"), np.load(folder / "patches.npy")
    assert lr_all.dtype == hr_all.dtype == np.uint8 and len(images) == 5
    for i, (lr_off, hr_off, h, w, split, fi) in enumerate(images):
        hr = mod_crop(load_rgb(hr_dir / f"img{i}.png"), SCALE)
        assert (h, w) == (hr.shape[0] // SCALE, hr.shape[1] // SCALE) and fi == 0
        assert split == (f"img{i}.png" == VAL_FILE)
        np.testing.assert_array_equal(hr_all[hr_off : hr_off + hr.size].reshape(hr.shape), hr)
        np.testing.assert_array_equal(lr_all[lr_off : lr_off + h * w * 3].reshape(h, w, 3), bicubic_downscale(hr, SCALE))
        # a dense grid with the step, plus one sub-image flush with each border that the step does not reach
        grid = {(int(y), int(x)) for n, y, x in patches if n == i}
        assert grid == {(y, x) for y in _origins(h) for x in _origins(w)}
    assert (images[:, 2] == 36).any() and (images[:, 3] == 50).any()  # 72 and 100 px HR: a remainder each way
    n_val = int(sum(images[n, 4] for n in patches[:, 0]))
    assert (meta["train_patches"], meta["val_patches"]) == (len(patches) - n_val, n_val) and n_val > 0

    data = PatchData(folder)
    assert data.hash == meta["hash"]
    assert len(data.val_index) == n_val and len(data.train_index) == len(patches) - n_val
    lr, hr = data.batch(torch.arange(len(patches)))
    for k in (0, len(patches) - 1):  # un-augmented sub-images are plain crops of the stored images
        n, y, x = patches[k]
        lr_off, hr_off, h, w = images[n, :4]
        img = lr_all[lr_off : lr_off + h * w * 3].reshape(h, w, 3)
        np.testing.assert_array_equal((lr[k].permute(1, 2, 0) * 255).round().byte().numpy(),
                                      img[y : y + PATCH, x : x + PATCH])
        himg = hr_all[hr_off : hr_off + h * w * 3 * SCALE**2].reshape(h * SCALE, w * SCALE, 3)
        np.testing.assert_array_equal((hr[k].permute(1, 2, 0) * 255).round().byte().numpy(),
                                      himg[y * SCALE : (y + PATCH) * SCALE, x * SCALE : (x + PATCH) * SCALE])
    # An array changed since it was prepared (zeroed, truncated) is refused where it was trained on without a word.
    np.save(folder / "lr.npy", np.zeros_like(lr_all))
    with pytest.raises(ConfigError, match=r"its arrays do not match the hash its meta\.json records"):
        PatchData(folder)


def test_prepare_multiscale_keeps_one_scale_of_val_images(hr_dir: Path, tmp_path: Path) -> None:
    meta = prepare([hr_dir], tmp_path, scale=SCALE, patch=PATCH, step=STEP, factors=(1.0, 0.8), val_fraction=VAL_FRACTION)
    images = np.load(tmp_path / "images.npy")
    # 4 train images at both scales, except img4 at 0.8 (72 px -> LR 29 < patch), and the val image at 1.0 only
    assert meta["images"] == 5 and len(images) == 4 * 2 - 1 + 1
    assert sorted(images[images[:, 4] == 1, 5].tolist()) == [0]


def test_prepare_refuses_an_all_validation_split(hr_dir: Path, tmp_path: Path) -> None:
    r = run("train", "prepare", "--hr", hr_dir, "--out", tmp_path, "--scale", SCALE, "--factors", "1.0",
            "--val-fraction", "0.99")  # img1.png hashes to 0.989, the highest of the five
    assert r.exit_code == 1 and "held out" in r.stderr


def test_a_file_where_the_run_or_data_folder_goes_is_one_line(hr_dir: Path, config: Path, tmp_path: Path) -> None:
    """`train prepare -o photo.png` and `train baseline --out photo.png` were internal errors (FileExistsError,
    NotADirectoryError); now one line naming the file, exit 1, and the file left as it was. `--data` naming the
    photos' folder is refused too."""
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"not a folder")
    r = run("train", "prepare", "--hr", hr_dir, "--out", photo, "--scale", SCALE, "--factors", "1.0")
    assert r.exit_code == 1 and r.stderr == f"error: {photo}: is a file, not a folder\n"
    r = run("train", "baseline", "--hr", hr_dir, "--out", photo, "--config", config, "--iterations", "1")
    assert r.exit_code == 1 and r.stderr == f"error: {photo}: is a file, not a folder\n"
    r = run("train", "baseline", "--hr", hr_dir, "--data", photo / "data", "--out", tmp_path / "run", "--config", config,
            "--iterations", "1")
    assert r.exit_code == 1 and r.stderr == f"error: {photo / 'data'}: cannot write ({photo} is a file, not a folder)\n"
    data = tmp_path / "data"
    assert run("train", "prepare", "--hr", hr_dir, "--out", data, "--scale", SCALE, "--factors", "1.0",
               "--val-fraction", "0").exit_code == 0
    r = run("train", "baseline", "--data", data, "--out", photo, "--config", config, "--iterations", "1")
    assert r.exit_code == 1 and r.stderr.endswith(f"\nerror: {photo}: is a file, not a folder\n")  # after a note
    assert photo.read_bytes() == b"not a folder"
    before = sorted(p.name for p in hr_dir.iterdir())
    r = run("train", "baseline", "--hr", hr_dir, "--data", hr_dir, "--out", tmp_path / "run2", "--config", config,
            "--iterations", "1")  # the arrays went in among the photos
    assert r.exit_code == 2 and r.stderr == (f"error: {hr_dir}: is a folder of the HR photos (--hr); the prepared arrays "
                                             "go into a folder of their own (--data, or -o of `train prepare`)\n")
    assert sorted(p.name for p in hr_dir.iterdir()) == before


def test_a_folder_without_photos_says_what_it_holds(tmp_path: Path) -> None:
    """`--hr` of camera RAW files said "no images found in raw"; it says what is there and what to do, as `classsr
    upscale` says it."""
    raw = tmp_path / "raw"
    (raw / "day2").mkdir(parents=True)
    (raw / "day2" / "a.nef").write_bytes(b"MM\0*")
    (raw / "notes.txt").write_text("shot list")
    r = run("train", "prepare", "--hr", raw, "--out", tmp_path / "data")
    assert r.exit_code == 1 and r.stderr == (f"error: {raw}: no images in this folder (or those under it); 1 .nef, "
                                             "1 .txt not read (camera RAW (1): develop them first and export 16-bit "
                                             "TIFF or PNG)\n")
    assert not (tmp_path / "data").exists()


def test_a_scale_the_photos_are_too_small_for_is_one_line(hr_dir: Path, tmp_path: Path) -> None:
    """`train prepare -x 100` made a photo of 96 px an LR of no pixels, and Pillow's "height and width must be > 0"
    an internal error; a photo, or a multi-scale copy, too small for one sub-image is skipped, as ever."""
    r = run("train", "prepare", "--hr", hr_dir, "--out", tmp_path / "d", "--scale", "100", "--factors", "1.0,0.5")
    assert r.exit_code == 1 and r.stderr == f"error: no image is at least {PATCH * 100}px on each side\n"


def test_earlier_classsr_outputs_are_no_hr_photos(hr_dir: Path, tmp_path: Path) -> None:
    """An HR folder that held an earlier `classsr upscale` output beside its photo (``img0_x4.png`` by ``img0.png``)
    prepared it as a photo, and a large one stopped `train` at the pixel limit; it is left out and named, as bench
    leaves it out, and the data are those of the photos alone."""
    shutil.copytree(hr_dir, tmp_path / "hr")
    Image.open(hr_dir / "img0.png").resize((64, 48)).save(tmp_path / "hr" / "img0_x4.png")
    args = ("--scale", SCALE, "--factors", "1.0", "--val-fraction", "0")
    clean = run("train", "prepare", "--hr", hr_dir, "--out", tmp_path / "clean", *args)
    r = run("train", "prepare", "--hr", tmp_path / "hr", "--out", tmp_path / "with", *args)
    assert r.exit_code == 0 and r.stdout == clean.stdout, r.output  # the same data hash
    assert r.stderr.startswith("left out 1 earlier classsr output(s), not HR images: img0_x4.png\n"), r.stderr
    r = run("train", "baseline", "--hr", tmp_path / "hr", "--out", tmp_path / "run", *args[:2], "--iterations", "1",
            "--device", "cpu")
    assert r.exit_code == 0 and "left out 1 earlier classsr output(s), not HR images: img0_x4.png" in r.stderr
    (tmp_path / "hr" / "IMG_1.CR2").write_bytes(b"II*\x00")  # a photographer's RAWs beside the JPEGs: said, not
    (tmp_path / "hr" / "IMG_2.dng").write_bytes(b"II*\x00")  # skipped without a word; a note file passes unsaid
    (tmp_path / "hr" / "notes.txt").write_text("shot list")
    r = run("train", "prepare", "--hr", tmp_path / "hr", "--out", tmp_path / "raw", *args)
    assert r.exit_code == 0 and r.stdout == clean.stdout, r.output
    assert ("left out 2 camera RAW file(s) (1 .CR2, 1 .dng): develop them first and export 16-bit TIFF or PNG\n"
            in r.stderr) and ".txt" not in r.stderr


def test_prepare_says_when_no_photo_is_held_out(hr_dir: Path, tmp_path: Path) -> None:
    """A few photos at the default share may hold none out: the stages then validate nothing, and the user is told."""
    r = run("train", "prepare", "--hr", hr_dir, "--out", tmp_path / "none", "--scale", SCALE, "--factors", "1.0",
            "--val-fraction", "0")
    assert r.exit_code == 0 and "note: no photo was held out for validation (val_fraction 0.0 of 5 photos" in r.stderr
    r = run("train", "prepare", "--hr", hr_dir, "--out", tmp_path / "some", "--scale", SCALE, "--factors", "1.0",
            "--val-fraction", "0.5")
    assert r.exit_code == 0 and "no photo was held out" not in r.stderr
    r = run("train", "baseline", "--data", tmp_path / "none", "--out", tmp_path / "run", "--scale", SCALE,
            "--iterations", "1", "--device", "cpu")  # data prepared earlier: said again where it trains
    assert r.exit_code == 0, r.output
    assert "note: no photo was held out for validation" in r.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--step", "0"), "step (the LR step between sub-images) must be at least 1, got 0"),
    (("--step", "-4"), "step (the LR step between sub-images) must be at least 1, got -4"),
    (("--patch", "0"), "patch must be a positive multiple of 4"),
    (("--patch", "30"), "patch must be a positive multiple of 4"),
    (("--factors", "0"), "factors must be one or more downscales in (0, 1]"),
    (("--factors", "1.0,-1"), "factors must be one or more downscales in (0, 1]"),
    (("--val-fraction", "-1"), "val_fraction (the share of photos held out) must lie in [0, 1), got -1.0"),
    (("--val-fraction", "2"), "val_fraction (the share of photos held out) must lie in [0, 1), got 2.0"),
    (("--val-fraction", "1"), "val_fraction (the share of photos held out) must lie in [0, 1), got 1.0"),
])
def test_prepare_settings_that_cannot_make_sub_images_are_usage_errors(
    hr_dir: Path, tmp_path: Path, args: tuple[str, str], message: str
) -> None:
    """One line and exit 2 before any photo is read: not a ValueError, an IndexError, empty sub-images or "no image
    is at least 128px"."""
    r = run("train", "prepare", "--hr", hr_dir, "--out", tmp_path / "data", "--scale", SCALE, *args)
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().startswith(f"error: {message}"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "data").exists()


@pytest.mark.parametrize(("key", "value"), [("data_step", 0), ("patch", 30), ("factors", [1.0, 0]), ("factors", []),
                                            ("val_fraction", 1), ("log_every", 0), ("classifier_warmup", -1)])
def test_a_training_config_checks_its_data_settings(key: str, value: object) -> None:
    """What `train prepare` refuses, a config refuses too (`train all` prepares from it), before anything runs."""
    with pytest.raises(ConfigError, match=f"^{key}"):
        load_train_config(None, **{key: value})


# -- compressed LR (jpeg_quality) -----------------------------------------------------------------------------------
def test_compressed_lr_is_a_jpeg_of_the_lr_at_a_quality_in_the_range_chosen_by_its_pixels() -> None:
    lrs = [bicubic_downscale(mod_crop(make_photo(64, 48, i), SCALE), SCALE) for i in range(12)]
    assert all(compress_lr(lr, ()) is lr for lr in lrs)  # clean LR: as it is
    for lr in lrs[:3]:
        np.testing.assert_array_equal(compress_lr(lr, (40, 40)), jpeg_roundtrip(lr, 40))
        assert not np.array_equal(jpeg_roundtrip(lr, 40), lr)
    qualities = []
    for lr in lrs:
        out = compress_lr(lr, (30, 95))
        np.testing.assert_array_equal(out, compress_lr(lr.copy(), [30, 95]))  # the same pixels, the same LR
        qualities.append(next(q for q in range(30, 96) if np.array_equal(jpeg_roundtrip(lr, q), out)))
    assert len(set(qualities)) > 4  # spread over the range, not one quality
    kept = [np.array_equal(compress_lr(lr, (30, 95), clean=0.5), lr) for lr in lrs]
    assert 0 < sum(kept) < len(lrs)  # a share kept clean, the others compressed
    assert all(np.array_equal(compress_lr(lr, (30, 95), clean=0.5), compress_lr(lr, (30, 95))) for lr, k in
               zip(lrs, kept, strict=True) if not k)  # the quality does not depend on the clean share
    _, lr = factor_pair(make_photo(97, 81, 3), 0.8, SCALE, (50, 50))  # every training downscale alike
    np.testing.assert_array_equal(lr, jpeg_roundtrip(factor_pair(make_photo(97, 81, 3), 0.8, SCALE)[1], 50))


def test_prepare_with_jpeg_quality_stores_the_compressed_lr_and_records_it(hr_dir: Path, tmp_path: Path) -> None:
    clean = prepare([hr_dir], tmp_path / "clean", scale=SCALE, patch=PATCH, step=STEP, factors=(1.0, 0.8),
                    val_fraction=VAL_FRACTION)
    meta = prepare([hr_dir], tmp_path / "jpeg", scale=SCALE, patch=PATCH, step=STEP, factors=(1.0, 0.8),
                   val_fraction=VAL_FRACTION, jpeg_quality=(45, 45))
    assert meta["jpeg_quality"] == [45, 45] and meta["jpeg_clean"] == 0.0 and clean["jpeg_quality"] == []
    assert meta["hash"] != clean["hash"] and meta["train_patches"] == clean["train_patches"]
    a, b = PatchData(tmp_path / "clean"), PatchData(tmp_path / "jpeg")
    assert len(a.images) == len(b.images)
    for i in range(len(a.images)):  # held-out and trained-on images, every factor: the JPEG of the clean LR
        (lr_a, hr_a), (lr_b, hr_b) = a.image(i), b.image(i)
        np.testing.assert_array_equal(hr_a, hr_b)
        np.testing.assert_array_equal(lr_b, jpeg_roundtrip(lr_a, 45))


@pytest.mark.parametrize(("key", "value"), [("jpeg_quality", [0, 50]), ("jpeg_quality", [60, 50]),
                                            ("jpeg_quality", [50]), ("jpeg_quality", [50, 101]),
                                            ("jpeg_quality", [True, 50]), ("jpeg_clean", 1.0)])
def test_a_jpeg_setting_out_of_range_is_refused(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"^{key}"):
        load_train_config(None, **{"jpeg_quality": [30, 95], key: value})
    with pytest.raises(ConfigError, match=r"^jpeg_clean .* be 0 without jpeg_quality"):
        load_train_config(None, jpeg_clean=0.2)


def test_data_prepared_with_another_jpeg_setting_is_refused(hr_dir: Path, tmp_path: Path) -> None:
    """A recipe for compressed LR given clean prepared data (or the reverse) says so, in one line, before training."""
    prepare([hr_dir], tmp_path / "clean", scale=SCALE, patch=PATCH, step=STEP, factors=(1.0,), val_fraction=VAL_FRACTION)
    cfg = write_config(tmp_path / "jpeg.toml", extra_top="jpeg_quality = [30, 95]\njpeg_clean = 0.2\n")
    assert load_train_config(cfg).to_dict()["jpeg_quality"] == [30, 95]
    r = run("train", "all", "--data", tmp_path / "clean", "--config", cfg, "--out", tmp_path / "run", "--iterations",
            "1", "--threads", "1", "--device", "cpu")
    assert r.exit_code == 2, r.output
    line = r.stderr.strip()
    assert "\n" not in line and "prepared with clean LR, the recipe asks for JPEG quality 30-95, 0.2 kept clean" in line
    assert not (tmp_path / "run" / "baseline.safetensors").exists()
    r = run("train", "prepare", "--hr", hr_dir, "--out", tmp_path / "jpeg", "--scale", SCALE, "--factors", "1.0",
            "--val-fraction", VAL_FRACTION, "--jpeg", "30,95", "--jpeg-clean", "0.2")  # the same data by hand
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "jpeg" / "meta.json").read_text())["jpeg_quality"] == [30, 95]
    r = run("train", "all", "--data", tmp_path / "jpeg", "--config", cfg, "--out", tmp_path / "run", "--iterations",
            "1", "--threads", "1", "--device", "cpu")
    assert r.exit_code == 0, r.output
    for bad, message in (("30", "jpeg_quality must be [] (clean LR) or [lo, hi]"), ("a,b", "not two whole numbers")):
        r = run("train", "prepare", "--hr", hr_dir, "--out", tmp_path / "bad", "--scale", SCALE, "--jpeg", bad)
        assert r.exit_code == 2 and message in r.stderr and not (tmp_path / "bad").exists(), r.stderr
    r = run("train", "baseline", "--data", tmp_path / "clean", "--config", write_config(tmp_path / "plain.toml"),
            "--out", tmp_path / "run2", "--iterations", "1", "--threads", "1", "--device", "cpu")
    assert r.exit_code == 0, r.output  # the same clean data with a clean recipe trains


# -- noisy LR (noise_sigma) ------------------------------------------------------------------------------------------
def test_noisy_lr_has_luminance_noise_of_a_level_in_the_range_chosen_by_its_pixels() -> None:
    lrs = [bicubic_downscale(mod_crop(make_photo(96, 80, i), SCALE), SCALE) for i in range(12)]
    assert all(noise_lr(lr, ()) is lr for lr in lrs)  # no noise: as it is
    levels = []
    for lr in lrs:
        out = noise_lr(lr, (2, 10))
        np.testing.assert_array_equal(out, noise_lr(lr.copy(), [2.0, 10.0]))  # the same pixels, the same noise
        d = out.astype(np.int16) - lr
        inside = (lr > 40).all(axis=2) & (lr < 215).all(axis=2)  # away from clipping
        assert (d[..., 0] == d[..., 1])[inside].all() and (d[..., 1] == d[..., 2])[inside].all()  # luminance
        levels.append(float(d[inside][:, 0].std()))
    assert all(1.5 < v < 11 for v in levels) and max(levels) - min(levels) > 3  # in the range, spread over it
    assert not np.array_equal(noise_lr(lrs[0], (5, 5)) - lrs[0], noise_lr(lrs[1], (5, 5)) - lrs[1])  # not one field
    kept = [np.array_equal(noise_lr(lr, (2, 10), clean=0.5), lr) for lr in lrs]
    assert 0 < sum(kept) < len(lrs)
    np.testing.assert_array_equal(add_noise(lrs[0], 0.0, 7), lrs[0])
    both = degrade_lr(lrs[0], (50, 50), 0.0, (4, 4), 0.0)  # noise first, then JPEG
    np.testing.assert_array_equal(both, jpeg_roundtrip(noise_lr(lrs[0], (4, 4)), 50))
    _, lr = factor_pair(make_photo(97, 81, 3), 0.8, SCALE, noise_sigma=(4, 4))  # every training downscale alike
    np.testing.assert_array_equal(lr, noise_lr(factor_pair(make_photo(97, 81, 3), 0.8, SCALE)[1], (4, 4)))
    np.testing.assert_array_equal(compress_lr(lrs[0], (30, 95)), degrade_lr(lrs[0], (30, 95)))  # JPEG alone unchanged


@pytest.mark.parametrize(("key", "value"), [("noise_sigma", [-1, 5]), ("noise_sigma", [6, 5]), ("noise_sigma", [5]),
                                            ("noise_sigma", [1, 51]), ("noise_sigma", ["a", 5]), ("noise_clean", 1.0)])
def test_a_noise_setting_out_of_range_is_refused(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"^{key}"):
        load_train_config(None, **{"noise_sigma": [1, 12], key: value})
    with pytest.raises(ConfigError, match=r"^noise_clean .* be 0 without noise_sigma"):
        load_train_config(None, noise_clean=0.2)


def test_data_prepared_with_another_noise_setting_is_refused(hr_dir: Path, tmp_path: Path) -> None:
    """The noise is part of the data's recipe: prepared data records it, and a recipe asking for other noise (or for
    none) is refused in one line, naming both settings."""
    meta = prepare([hr_dir], tmp_path / "noisy", scale=SCALE, patch=PATCH, step=STEP, factors=(1.0,),
                   val_fraction=VAL_FRACTION, noise_sigma=(3, 3))
    assert (meta["noise_sigma"], meta["noise_clean"], meta["jpeg_quality"]) == ([3, 3], 0.0, [])
    clean = prepare([hr_dir], tmp_path / "clean", scale=SCALE, patch=PATCH, step=STEP, factors=(1.0,),
                    val_fraction=VAL_FRACTION)
    a, b = PatchData(tmp_path / "clean"), PatchData(tmp_path / "noisy")
    for i in range(len(a.images)):
        np.testing.assert_array_equal(b.image(i)[0], noise_lr(a.image(i)[0], (3, 3)))
    assert clean["noise_sigma"] == [] and clean["hash"] != meta["hash"]
    cfg = write_config(tmp_path / "noisy.toml", extra_top="noise_sigma = [1, 12]\nnoise_clean = 0.3\n")
    assert load_train_config(cfg).to_dict()["noise_sigma"] == [1, 12]
    for data, said in (("noisy", "prepared with noise of 3-3 levels, 0 kept free of it, the recipe asks for noise of "
                                 "1-12 levels, 0.3 kept free of it"),
                       ("clean", "prepared with clean LR, the recipe asks for noise of 1-12 levels, 0.3 kept free of it")):
        r = run("train", "all", "--data", tmp_path / data, "--config", cfg, "--out", tmp_path / "run", "--iterations",
                "1", "--threads", "1", "--device", "cpu")
        assert r.exit_code == 2 and "\n" not in r.stderr.strip() and said in r.stderr, r.stderr
    r = run("train", "prepare", "--hr", hr_dir, "--out", tmp_path / "byhand", "--scale", SCALE, "--factors", "1.0",
            "--val-fraction", VAL_FRACTION, "--noise", "1,12", "--noise-clean", "0.3", "--jpeg", "30,95")
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "byhand" / "meta.json").read_text())
    assert (got["noise_sigma"], got["noise_clean"], got["jpeg_quality"]) == ([1, 12], 0.3, [30, 95])
    for bad, message in (("-1,3", "noise_sigma must be [] (no noise) or [lo, hi]"), ("a,b", "not two numbers")):
        r = run("train", "prepare", "--hr", hr_dir, "--out", tmp_path / "bad", "--scale", SCALE, "--noise", bad)
        assert r.exit_code == 2 and message in r.stderr and not (tmp_path / "bad").exists(), r.stderr


# -- augmentation ------------------------------------------------------------------------------------------------
def _dihedral(a: np.ndarray) -> list[np.ndarray]:
    return [np.rot90(b, k, axes=(0, 1)) for b in (a, a[:, ::-1]) for k in range(4)]


def _u8(t: torch.Tensor) -> np.ndarray:
    return (t.permute(1, 2, 0) * 255).round().byte().numpy()


def test_augmented_lr_is_the_downscale_of_the_augmented_hr(tmp_path: Path) -> None:
    """Flips and transposes are applied alike to LR and HR: with whole-image sub-images (LR exactly one patch),
    the augmented LR is the bicubic downscale of the augmented HR, and both are the same one of the 8 symmetries
    of the stored pair."""
    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    for i in range(3):
        Image.fromarray(make_photo(PATCH * SCALE, PATCH * SCALE, 10 + i)).save(hr_dir / f"p{i}.png")
    prepare([hr_dir], tmp_path / "data", scale=SCALE, patch=PATCH, step=STEP, factors=(1.0,), val_fraction=0)
    data = PatchData(tmp_path / "data")
    index = torch.arange(3).repeat(16)
    plain_lr, plain_hr = data.batch(index)
    lr, hr = data.batch(index, torch.Generator().manual_seed(0), augment=True)
    seen = Counter()
    for k in range(len(index)):
        a_lr, a_hr = _u8(lr[k]), _u8(hr[k])
        matches = [t for t, cand in enumerate(_dihedral(_u8(plain_lr[k]))) if np.array_equal(cand, a_lr)]
        assert len(matches) == 1
        np.testing.assert_array_equal(_dihedral(_u8(plain_hr[k]))[matches[0]], a_hr)
        diff = np.abs(bicubic_downscale(a_hr, SCALE).astype(int) - a_lr.astype(int))
        assert diff.max() <= 1 and diff.mean() < 0.01  # float rounding in the resampler's pass order only
        seen[matches[0]] += 1
    assert len(seen) == 8  # every symmetry is drawn


# -- losses, schedule, sampling, collapse guard --------------------------------------------------------------------
def test_class_loss_and_average_loss_bounds() -> None:
    onehot = torch.eye(3)[[0, 1, 2, 2]]
    uniform = torch.full((4, 3), 1 / 3)
    assert class_loss(onehot).item() == pytest.approx(0.0, abs=1e-6)
    assert class_loss(uniform).item() == pytest.approx(2.0, abs=1e-6)  # M - 1
    assert average_loss(torch.eye(3)[[0, 1, 2, 0, 1, 2]].sum(0), 6).item() == pytest.approx(0.0, abs=1e-6)
    assert average_loss(uniform.sum(0), 4).item() == pytest.approx(0.0, abs=1e-6)
    assert average_loss(torch.eye(3)[[1] * 6].sum(0), 6).item() == pytest.approx(1.0, abs=1e-6)


def test_cosine_lr_endpoints() -> None:
    cfg = StageConfig(iterations=100, batch_size=1, lr=1e-3, eta_min=1e-7)
    assert cosine_lr(0, cfg) == pytest.approx(1e-3)
    assert cosine_lr(50, cfg) == pytest.approx((1e-3 + 1e-7) / 2)
    assert cosine_lr(100, cfg) == pytest.approx(1e-7)
    assert cosine_lr(150, cfg) == pytest.approx(1e-7)  # past the end it stays at eta_min
    assert all(cosine_lr(i, cfg) > cosine_lr(i + 1, cfg) for i in range(100))


def test_each_rank_draws_its_own_reproducible_samples() -> None:
    def draw(rank: int, it: int) -> list[int]:
        return torch.randint(0, 10**6, (8,), generator=stage_generator(0, "classifier", rank, it)).tolist()

    assert draw(0, 5) == draw(0, 5)  # a resumed run draws the same batches
    assert draw(0, 5) != draw(1, 5)
    assert draw(0, 5) != draw(0, 6)


def test_collapse_guard_raises_the_average_weight() -> None:
    cfg = TrainConfig(collapse_share=0.9, collapse_patience=3, collapse_boost=2.0)
    extras = {"average_weight": 6.0}
    collapsed = {"light": 0.02, "medium": 0.03, "heavy": 0.95}
    spread = {"light": 0.3, "medium": 0.3, "heavy": 0.4}
    assert not collapse_guard(collapsed, extras, cfg) and not collapse_guard(collapsed, extras, cfg)
    assert not collapse_guard(spread, extras, cfg)  # a spread window resets the count
    assert extras["average_weight"] == 6.0
    assert [collapse_guard(collapsed, extras, cfg) for _ in range(3)] == [False, False, True]
    assert extras["average_weight"] == 12.0 and extras["collapsed_windows"] == 0
    assert [collapse_guard(collapsed, extras, cfg) for _ in range(3)] == [False, False, True]
    assert extras["average_weight"] == 24.0


# -- config --------------------------------------------------------------------------------------------------------
def test_each_family_trains_at_its_papers_batches_and_rates(tmp_path: Path) -> None:
    """``train all --family rcan`` took FSRCNN's stage settings (batch 64 and 96, lr 1e-3): 15 GB in one baseline
    iteration, killed for memory in fine-tuning on a 24 GB machine. The bigger families take the paper's (branches at
    batch 16, lr 2e-4; RCAN's classifier at lr 3e-5); a config's own stage keys win; FSRCNN's stay."""
    def settings(cfg: TrainConfig) -> list[tuple[int, float]]:
        return [(cfg.stage(n).batch_size, cfg.stage(n).lr) for n in STAGES]

    assert settings(load_train_config(None)) == [(64, 1e-3), (64, 1e-3), (96, 2e-4), (96, 1e-4)]
    assert settings(load_train_config(None, family="residual")) == settings(load_train_config(None))
    for family in ("carn", "srresnet"):
        assert settings(load_train_config(None, family=family)) == [(16, 2e-4), (16, 2e-4), (96, 2e-4), (96, 1e-4)]
    rcan = load_train_config(None, family="rcan")
    assert settings(rcan) == [(16, 2e-4), (16, 2e-4), (60, 3e-5), (16, 3e-5)] and rcan.classifier.eta_min == 2e-6
    assert rcan.baseline.iterations == TrainConfig().baseline.iterations  # only what the paper sets differs
    own = tmp_path / "rcan.toml"
    own.write_text('family = "rcan"\n[classifier]\nlr = 1e-4\n')
    cfg = load_train_config(own)
    assert (cfg.classifier.batch_size, cfg.classifier.lr, cfg.classifier.eta_min) == (60, 1e-4, 2e-6)
    assert load_train_config(own, family="fsrcnn").classifier.batch_size == 96  # --family over the file: FSRCNN's
    recorded = tmp_path / "recorded.json"  # what a run records reads back the same
    recorded.write_text(json.dumps(cfg.to_dict()))
    assert load_train_config(recorded).to_dict() == cfg.to_dict()


def test_config_toml_json_and_iterations_override(config: Path, tmp_path: Path) -> None:
    cfg = load_train_config(config)
    assert cfg.model_config().widths == (4, 6, 8) and cfg.model_config().patch == PATCH
    as_json = tmp_path / "tiny.json"
    as_json.write_text(json.dumps(cfg.to_dict()))
    assert load_train_config(as_json) == cfg
    short = cfg.with_iterations(1)
    for name in STAGES:
        stage = short.stage(name)
        assert (stage.iterations, stage.val_every, stage.ckpt_every) == (1, 1, 1)
        assert stage.batch_size == cfg.stage(name).batch_size
    assert load_train_config(config, seed=7, scale=None).seed == 7  # flags override the file; None leaves it
    # a stage the recipe leaves out stays out of a smoke run (the default recipes do not fine-tune)
    no_finetune = replace(cfg, finetune=replace(cfg.finetune, iterations=0)).with_iterations(3)
    assert no_finetune.finetune.iterations == 0 and no_finetune.baseline.iterations == 3
    binary = tmp_path / "photo.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ConfigError, match="not a config file"):  # not an internal error
        load_train_config(binary)
    with pytest.raises(ConfigError, match="is a folder; give a config file, or a model"):
        load_train_config(tmp_path)


@pytest.mark.parametrize(("top", "baseline", "said"), [
    ("colour = 1\n", "", "unknown training config key(s): colour"),
    ("", "momentum = 0.9\n", "unknown key(s) in [baseline]: momentum"),
    ("width = 4\nsed = 1\n", "", "unknown training config key(s): sed (seed?), width (widths?)"),  # a typo: the key meant
    ("", "batch = 8\n", "unknown key(s) in [baseline]: batch (batch_size?)"),
    ("iterations = 5\n", "", "unknown training config key(s): iterations (a stage's: under [baseline], [branches], "
     "[classifier], [finetune])"),
])
def test_unknown_config_key_is_a_one_line_usage_error(
    hr_dir: Path, tmp_path: Path, top: str, baseline: str, said: str
) -> None:
    bad = write_config(tmp_path / "bad.toml", extra_top=top, extra_baseline=baseline)
    r = train("all", tmp_path / "run", hr_dir, bad)
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {said}"), lines
    assert not (tmp_path / "run").exists()


def test_a_model_the_family_refuses_is_refused_before_training(config: Path, tmp_path: Path) -> None:
    bad = tmp_path / "carn.toml"
    bad.write_text(config.read_text().replace('"fsrcnn"', '"carn"').replace("{s = 4, m = 1}", "{num_blocks = 1}"))
    with pytest.raises(ConfigError, match="divisible"):  # CARN-M widths must divide into its 4 groups
        load_train_config(bad)


def test_a_family_over_a_recipe_of_another_familys_widths_says_whose_they_are(tmp_path: Path) -> None:
    """`--family srresnet --config classsr_residual_x4` said "srresnet branch width must be an integer >= 1, got 0",
    widths the user never gave: the message says they are the residual recipe's. An unknown family is said as one,
    and a family whose widths fit trains with them."""
    path = tmp_path / "residual.toml"
    path.write_text('family = "residual"\nscale = 4\nwidths = [0, 16, 32]\n')
    with pytest.raises(ConfigError) as e:
        load_train_config(path, family="srresnet")
    assert str(e.value) == (f"--family srresnet: {path} gives the widths of residual branches, [0, 16, 32] (srresnet "
                            "branch width must be an integer >= 1, got 0); give a config with srresnet widths")
    with pytest.raises(ConfigError, match=r"^unknown family 'nope'"):
        load_train_config(path, family="nope")
    path.write_text('scale = 4\nwidths = [8, 16, 32]\n')  # fsrcnn's, by default
    assert load_train_config(path, family="srresnet").widths == (8, 16, 32)


def test_luma_branches_come_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "luma.toml"
    path.write_text('family = "residual"\nscale = 4\nwidths = [0, 16, 32]\nluma = [false, true, false]\n')
    cfg = load_train_config(path)
    assert cfg.model_config().luma == (False, True, False)
    as_json = tmp_path / "luma.json"
    as_json.write_text(json.dumps(cfg.to_dict()))
    assert load_train_config(as_json) == cfg
    assert load_train_config(None, family="residual").model_config().luma == (False, False, False)
    path.write_text('family = "fsrcnn"\nluma = [false, true, false]\n')
    with pytest.raises(ConfigError, match="residual family"):
        load_train_config(path)
    path.write_text('family = "residual"\nluma = true\n')
    with pytest.raises(ConfigError, match="luma must be a list"):
        load_train_config(path)
    path.write_text('family = "residual"\nscale = 4\nwidths = [8, 16, 32]\ndepths = [0, 4, 4]\n')
    cfg = load_train_config(path)
    assert cfg.model_config().depths == (0, 4, 4) and cfg.model_config().branch(0).extra["depth"] == 0
    as_json.write_text(json.dumps(cfg.to_dict()))
    assert load_train_config(as_json) == cfg
    path.write_text('family = "residual"\ndepths = [0, 4]\n')
    with pytest.raises(ConfigError, match="depths must be three integers"):
        load_train_config(path)


def test_deficit_labels_measure_rgb_or_luma_error() -> None:
    """``classifier_error = "y"``: the labels are the squared error of BT.601 luma (what PSNR-Y measures), in
    8-bit levels², equal to :func:`metrics.rgb_to_y`'s; ``rgb`` the mean over R, G and B."""
    from classsr_cli.metrics import rgb_to_y

    torch.manual_seed(0)
    a, b = torch.rand(2, 3, 8, 8, dtype=torch.float64), torch.rand(2, 3, 8, 8, dtype=torch.float64)
    y = squared_error(a - b, "y")
    ya, yb = (rgb_to_y(t.permute(0, 2, 3, 1).numpy() * 255) for t in (a, b))
    assert torch.allclose(y, torch.from_numpy(((ya - yb) ** 2).mean(axis=(1, 2))))
    rgb = squared_error(a - b, TrainConfig().classifier_error)
    assert torch.allclose(rgb, ((a - b) * 255).square().mean(dim=(1, 2, 3)))
    grey = torch.full((1, 3, 4, 4), 0.1, dtype=torch.float64)  # the same step in R, G and B: all of it is luma
    assert squared_error(grey, "y").item() == pytest.approx((0.1 * 219) ** 2)
    with pytest.raises(ConfigError, match="classifier_error"):
        TrainConfig(classifier_error="lab")
    with pytest.raises(ConfigError, match="needs classifier_labels"):
        TrainConfig(routing="budget", classifier_labels="dense", classifier_error="y")


def test_a_luma_branch_trains_on_luma_error() -> None:
    """branch_l1: a chroma-only error (an equal-luma change of R, G and B) costs a luma branch nothing and an RGB
    one its L1; a grey step costs luma 219/255 of it."""
    from classsr_cli.metrics import Y_WEIGHTS
    from classsr_cli.train.stages import branch_l1

    hr = torch.full((1, 3, 4, 4), 0.5)
    w = torch.tensor(Y_WEIGHTS)
    chroma = torch.tensor([w[1], -w[0], 0.0]).view(1, 3, 1, 1) * 1e-3  # R up, G down: Y unchanged
    assert branch_l1(hr + chroma, hr, luma=True).item() == pytest.approx(0.0, abs=1e-7)
    assert branch_l1(hr + chroma, hr).item() > 1e-3
    assert branch_l1(hr + 0.1, hr, luma=True).item() == pytest.approx(0.1 * 219 / 255, rel=1e-4)
    assert branch_l1(hr + 0.1, hr).item() == pytest.approx(0.1, rel=1e-4)


# -- the whole pipeline --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(hr_dir: Path, config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`classsr train all` once, with --iterations overriding the file's 6 per stage."""
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    r = train("all", run_dir, hr_dir, config, "--iterations", "4")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(run_dir / "classsr.safetensors")
    return run_dir


def test_train_all_exports_a_loadable_model_with_provenance(trained: Path, tmp_path: Path) -> None:
    for name in ("config.json", "metrics.jsonl", "baseline.safetensors", "ranking.json", "classes.npy",
                 "branch0.safetensors", "branch1.safetensors", "branch2.safetensors", "classifier.safetensors",
                 "finetune.safetensors", "classsr.safetensors", "data/meta.json"):
        assert (trained / name).is_file(), name
    loaded = load_checkpoint(trained / "classsr.safetensors", expect_kind="classsr")
    assert loaded.config.widths == (4, 6, 8) and loaded.config.scale == SCALE
    prov = json.loads(read_metadata(trained / "classsr.safetensors")["provenance"])
    assert prov == loaded.provenance
    recipe = prov["recipe"]
    for name in STAGES:  # --iterations overrode every stage
        assert recipe[name]["iterations"] == 4 and recipe[name]["batch_size"] in (4, 6) and "lr" in recipe[name]
    assert (recipe["l1_weight"], recipe["class_weight"], recipe["average_weight"]) == (2000.0, 1.0, 6.0)
    assert recipe["seed"] == 0 and recipe["widths"] == [4, 6, 8]
    data_meta = json.loads((trained / "data" / "meta.json").read_text())
    assert prov["data"]["hash"] == data_meta["hash"].lower() and prov["data"]["val_patches"] > 0
    ranking = prov["ranking"]
    t1, t2 = ranking["thresholds_psnr_rgb"]
    assert t1 <= t2 and sum(ranking["train_class_sizes"]) == data_meta["train_patches"]
    for stage in ("baseline", "classifier", "finetune"):
        assert "psnr" in prov["stages"][stage]["val"], stage
    assert {"share_light", "share_medium", "share_heavy", "psnr_heavy"} <= set(prov["stages"]["finetune"]["val"])
    assert {k: v["iterations"] for k, v in prov["stages"].items() if "iterations" in v} == {
        "baseline": 4, "branch0": 4, "branch1": 4, "branch2": 4, "classifier_warmup": 2, "classifier": 4, "finetune": 4}
    assert prov["stages"]["baseline"]["seconds"] >= 0
    assert prov["software"]["torch"] == torch.__version__ and prov["software"]["classsr"]
    assert prov["world_size"] == 1
    by_stage: dict[str, int] = {}
    for rec in metrics(trained):
        if "iteration" in rec and "event" not in rec:
            by_stage[rec["stage"]] = max(by_stage.get(rec["stage"], 0), rec["iteration"])
    assert by_stage == {"baseline": 4, "branch0": 4, "branch1": 4, "branch2": 4, "classifier_warmup": 2,
                        "classifier": 4, "finetune": 4}

    photo = tmp_path / "photo.png"
    Image.fromarray(make_photo(40, 36, 3)).save(photo)
    r = run("upscale", photo, "--model", trained / "classsr.safetensors", "-x2", "-o", tmp_path / "big.png")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "big.png").size == (80, 72)


def test_rerun_retrains_nothing(trained: Path, hr_dir: Path, config: Path) -> None:
    outputs = sorted(p for p in trained.iterdir() if p.suffix in (".safetensors", ".pt", ".npy", ".json")
                     and p.name != "classsr.safetensors" and p.name != "config.json")
    before = {p: p.stat().st_mtime_ns for p in outputs}
    lines = len(metrics(trained))
    r = train("all", trained, hr_dir, config, "--iterations", "4")
    assert r.exit_code == 0, r.output
    assert {p: p.stat().st_mtime_ns for p in outputs} == before
    new = metrics(trained)[lines:]
    assert new and all(rec.get("event") == "done" for rec in new)  # stage timings only: no iteration, no resume
    assert load_checkpoint(trained / "classsr.safetensors", expect_kind="classsr")
    # without --iterations (the file says 6): the finished stages ran 4, are not trained again, and the export would
    # record a recipe they never ran, so it is refused, naming each stage's count
    export = (trained / "classsr.safetensors").stat().st_mtime_ns
    r = train("all", trained, hr_dir, config)
    assert r.exit_code == 2, r.output
    line = r.stderr.strip()
    assert "\n" not in line and "(baseline.iterations: 4 → 6, branches.iterations: 4 → 6," in line
    assert "finetune.iterations: 4 → 6" in line and "delete its output (keep its .state.pt)" in line
    assert {p: p.stat().st_mtime_ns for p in outputs} == before
    assert (trained / "classsr.safetensors").stat().st_mtime_ns == export
    prov = load_checkpoint(trained / "classsr.safetensors", expect_kind="classsr").provenance
    assert prov["recipe"]["finetune"]["iterations"] == prov["stages"]["finetune"]["iterations"] == 4


def test_a_models_recorded_recipe_is_its_runs_recipe(trained: Path, hr_dir: Path) -> None:
    """`--config MODEL` takes the recipe the model records: into the run that made it, the same recipe (the run
    accepts it and retrains nothing), and any flag still overrides it."""
    model = trained / "classsr.safetensors"
    outputs = sorted(p for p in trained.iterdir() if p.suffix in (".safetensors", ".pt", ".npy")
                     and p.name != "classsr.safetensors")
    before = {p: p.stat().st_mtime_ns for p in outputs}
    r = train("all", trained, hr_dir, model)
    assert r.exit_code == 0, r.output
    assert {p: p.stat().st_mtime_ns for p in outputs} == before
    cfg = load_train_config(model)
    assert cfg.to_dict() == load_checkpoint(model).provenance["recipe"] and cfg.widths == (4, 6, 8)
    assert load_train_config(model, seed=5).seed == 5
    r = train("all", trained, hr_dir, model, "--seed", "1")  # a flag that changes the recipe: refused as ever
    assert r.exit_code == 2 and "different recipe" in r.stderr


@pytest.mark.parametrize("name", ["residual_x4", "residual_x2", "residual64_x4", "residual64_x2", "fsrcnn_x4",
                                  "fsrcnn_x2", "residual_jpeg_x4", "residual64_jpeg_x4", "residual_noisy_x4",
                                  "residual_noisy_x2", "residual_jpeg_x2"])
def test_each_shipped_model_records_its_config_files_recipe(name: str) -> None:
    """`classsr train all --config classsr_NAME` (an installed model's name, no checkout needed) trains what
    `--config configs/NAME.toml` trains."""
    want = load_train_config(ROOT / "configs" / f"{name}.toml").to_dict()  # widths resolved as a run records them
    assert load_train_config(f"classsr_{name}").to_dict() == want
    assert load_train_config(ROOT / "weights" / f"classsr_{name}.safetensors").to_dict() == want


def test_a_model_without_a_recipe_is_a_one_line_usage_error(
    tiny_model: torch.nn.Module, hr_dir: Path, tmp_path: Path
) -> None:
    bare = save_checkpoint(tiny_model, tmp_path / "bare.safetensors")
    with pytest.raises(ConfigError, match="records no training recipe"):
        load_train_config(bare)
    other = save_checkpoint(tiny_model, tmp_path / "other.safetensors", provenance={"recipe": {"colour": 1}})
    with pytest.raises(ConfigError, match=r"the recipe it records does not load here: unknown .* colour"):
        load_train_config(other)
    with pytest.raises(ConfigError, match="nor an installed model"):
        load_train_config("no_such_model")
    with pytest.raises(ConfigError) as caught:  # a flag that does not fit the recipe is the flag's error
        load_train_config("classsr_residual_x4", family="carn")
    assert "the recipe it records" not in str(caught.value)
    for given in (bare, "no_such_model"):
        r = train("all", tmp_path / "run", hr_dir, given)
        assert r.exit_code == 2, r.output
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert not (tmp_path / "run").exists()


def test_a_missing_photo_folder_is_one_line_before_anything_is_announced(config: Path, tmp_path: Path) -> None:
    r = train("all", tmp_path / "run", tmp_path / "nowhere", config)
    assert r.exit_code == 1, r.output
    assert r.stderr.strip() == f"error: {tmp_path / 'nowhere'}: no such folder"  # no "preparing …" line first
    assert not (tmp_path / "run").exists()


def test_other_photos_than_the_prepared_datas_are_refused(trained: Path, hr_dir: Path, config: Path,
                                                          tmp_path: Path) -> None:
    """`--hr` is read only to prepare the data: a run given other photos says so instead of training on the old ones."""
    other = tmp_path / "other"
    other.mkdir()
    for p in sorted(hr_dir.iterdir())[:3]:
        (other / p.name).write_bytes(p.read_bytes())
    Image.fromarray(make_photo(96, 80, 9)).save(other / "new.png")
    outputs = {p: p.stat().st_mtime_ns for p in trained.iterdir() if p.is_file()}
    r = train("all", trained, other, config, "--iterations", "4")
    assert r.exit_code == 2, r.output
    line = r.stderr.strip()
    assert "\n" not in line and "prepared from other photos than --hr gives (5 there, 4 given: 1 new, 2 missing)" in line
    assert {p: p.stat().st_mtime_ns for p in trained.iterdir() if p.is_file()} == outputs  # nothing touched
    r = run("train", "all", "--config", config, "--out", trained, "--iterations", "4", "--threads", "1",
            "--device", "cpu")  # without --hr: the prepared data, as before
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(("flag", "what"), [(("--seed", "1"), "(seed: 0 → 1)"), (("--scale", "4"), "(scale: 2 → 4)")])
def test_changing_the_recipe_of_a_run_is_refused(trained: Path, hr_dir: Path, config: Path, flag: tuple, what: str) -> None:
    r = train("all", trained, hr_dir, config, "--iterations", "4", *flag)
    assert r.exit_code == 2, (what, r.output)
    assert f"holds a run with a different recipe {what}; use another --out, or go on with the run's own: --config " \
           f"{trained / 'config.json'}" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    go_on = train("all", trained, hr_dir, trained / "config.json", "--iterations", "4")  # what the message says works
    assert go_on.exit_code == 0, go_on.output


def test_changing_a_stage_batch_size_is_refused(trained: Path, hr_dir: Path, tmp_path: Path) -> None:
    other = write_config(tmp_path / "other.toml", extra_baseline="")
    other.write_text(other.read_text().replace("batch_size = 4", "batch_size = 5", 1))
    r = train("all", trained, hr_dir, other, "--iterations", "4")
    assert r.exit_code == 2 and "different recipe (baseline.batch_size: 4 → 5)" in r.stderr, r.stderr


def test_other_prepared_data_than_the_runs_is_refused(trained: Path, hr_dir: Path, tmp_path: Path, config: Path) -> None:
    """`--data OTHER` on a run that trained on other data: one line naming both, not an export whose provenance names
    data its weights never saw, nor (its later stages deleted) an IndexError from the old classes.npy."""
    import shutil

    other = tmp_path / "other"
    meta = prepare(sorted(hr_dir.iterdir())[:3], other, scale=SCALE, patch=PATCH, step=STEP, factors=(1.0,),
                   val_fraction=VAL_FRACTION)
    first = json.loads((trained / "data" / "meta.json").read_text())["hash"]
    copied = tmp_path / "copied"
    shutil.copytree(trained, copied)
    for p in copied.iterdir():
        if p.name.startswith(("branch", "classifier", "finetune", "classsr")):
            p.unlink()
    for run_dir in (trained, copied):
        outputs = {p: p.stat().st_mtime_ns for p in run_dir.iterdir() if p.is_file()}
        r = run("train", "all", "--data", other, "--config", config, "--out", run_dir, "--iterations", "4",
                "--threads", "1", "--device", "cpu")
        assert r.exit_code == 2, r.output
        line = r.stderr.strip()
        assert "\n" not in line and f"{run_dir}: trained on other data" in line and "use another --out" in line
        assert first[:19] in line and meta["hash"][:19] in line and str(other) in line
        assert {p: p.stat().st_mtime_ns for p in run_dir.iterdir() if p.is_file()} == outputs  # nothing touched
    record = json.loads((trained / "run.json").read_text())  # where the run records what it trains on
    assert record["data"] == first and record["world_size"] == 1


def test_a_stage_with_only_its_state_file_resumes_and_can_be_extended(hr_dir: Path, config: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert train("baseline", run_dir, hr_dir, config, "--iterations", "2").exit_code == 0
    assert torch.load(run_dir / "baseline.state.pt", weights_only=True)["iteration"] == 2
    # a finished stage asked for more iterations is refused: it would not train them, and say nothing
    r = train("baseline", run_dir, hr_dir, config, "--iterations", "4")
    assert r.exit_code == 2 and "baseline.iterations: 2 → 4" in r.stderr, r.output
    assert torch.load(run_dir / "baseline.state.pt", weights_only=True)["iteration"] == 2
    # without its output the stage resumes from the state file and goes on to the new count
    (run_dir / "baseline.safetensors").unlink()
    lines = len(metrics(run_dir))
    r = train("baseline", run_dir, hr_dir, config, "--iterations", "4")
    assert r.exit_code == 0, r.output
    new = metrics(run_dir)[lines:]
    assert {"stage": "baseline", "event": "resume", "iteration": 2}.items() <= new[0].items()
    assert [rec["iteration"] for rec in new if "l1" in rec] == [4]  # log_every 2: only iteration 4 was trained again
    assert torch.load(run_dir / "baseline.state.pt", weights_only=True)["iteration"] == 4
    assert load_checkpoint(run_dir / "baseline.safetensors", expect_kind="branch")
    # Once a later stage is built from it, extending it (the config's count raised) is refused, naming what would
    # stay built from the old one: the export paired an extended baseline with the old branches and classifier.
    assert train("branches", run_dir, hr_dir, config, "--iterations", "4").exit_code == 0
    longer = write_config(tmp_path / "longer.toml", iterations=4,
                          extra_baseline="")  # the same recipe, then the baseline's count raised to 6
    longer.write_text(longer.read_text().replace("[baseline]\niterations = 4", "[baseline]\niterations = 6", 1))
    (run_dir / "baseline.safetensors").unlink()
    r = train("baseline", run_dir, hr_dir, longer)
    assert r.exit_code == 2 and "extending baseline leaves what was built from it as it is (" in r.stderr, r.output
    assert "branch2.safetensors" in r.stderr and "delete those too" in r.stderr
    assert not (run_dir / "baseline.safetensors").exists()  # nothing trained
    for name in ("branch0", "branch1", "branch2"):
        (run_dir / f"{name}.safetensors").unlink()
        (run_dir / f"{name}.state.pt").unlink(missing_ok=True)
    for name in ("ranking.json", "classes.npy"):
        (run_dir / name).unlink(missing_ok=True)
    assert train("baseline", run_dir, hr_dir, longer).exit_code == 0  # as it says: then it extends
    assert torch.load(run_dir / "baseline.state.pt", weights_only=True)["iteration"] == 6


def test_a_resume_under_another_number_of_processes_is_refused(hr_dir: Path, config: Path, tmp_path: Path) -> None:
    """The run records its number of processes (RUN/run.json); a stage interrupted under torchrun with 2 (simulated
    here) resumes only with 2, as the batches are drawn per process. A finished stage does not care."""
    run_dir = tmp_path / "run"
    assert train("baseline", run_dir, hr_dir, config, "--iterations", "2").exit_code == 0
    record = json.loads((run_dir / "run.json").read_text())
    assert record["world_size"] == 1
    (run_dir / "run.json").write_text(json.dumps({**record, "world_size": 2}))
    kept = (run_dir / "baseline.safetensors").read_bytes()
    (run_dir / "baseline.safetensors").unlink()  # interrupted: its state alone
    lines = len(metrics(run_dir))
    r = train("baseline", run_dir, hr_dir, config, "--iterations", "2")
    assert r.exit_code == 2, r.output
    line = r.stderr.strip()
    assert "\n" not in line and "baseline was interrupted with 2 processes and resumes only with as many (not 1" in line
    assert "torchrun --nproc-per-node 2" in line and len(metrics(run_dir)) == lines  # no resume logged
    assert not (run_dir / "baseline.safetensors").exists()
    (run_dir / "baseline.safetensors").write_bytes(kept)  # finished: another number of processes may go on
    assert train("baseline", run_dir, hr_dir, config, "--iterations", "2").exit_code == 0
    assert json.loads((run_dir / "run.json").read_text())["world_size"] == 1


def test_iteration_counts_below_zero_and_a_zero_smoke_count_are_usage_errors(
    hr_dir: Path, config: Path, tmp_path: Path
) -> None:
    """Nothing is trained and no untrained model exported: `--iterations 0` or `-3`, or a stage table's
    `iterations = -5`, are one line and exit 2; a stage table's 0 still leaves the stage out."""
    for n in ("0", "-3"):
        r = train("all", tmp_path / "run", hr_dir, config, "--iterations", n)
        assert r.exit_code == 2, r.output
        assert r.stderr.strip().startswith("error: --iterations must be at least 1"), r.stderr
        assert f"got {n}" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.toml"
    bad.write_text(config.read_text().replace("[branches]\niterations = 6", "[branches]\niterations = -5"))
    r = train("all", tmp_path / "run", hr_dir, bad)
    assert r.exit_code == 2 and r.stderr.strip() == "error: [branches] iterations must be at least 0 (0 skips the stage), got -5"
    assert not (tmp_path / "run").exists()
    for key in ("batch_size", "val_every", "ckpt_every"):
        with pytest.raises(ConfigError, match=rf"\[classifier\] {key} must be at least 1, got 0"):
            load_train_config(config, classifier={"iterations": 3, key: 0})
    assert load_train_config(config, finetune={"iterations": 0}).finetune.iterations == 0
    with pytest.raises(ConfigError, match="--iterations must be at least 1"):
        TrainConfig().with_iterations(0)


def test_a_later_stage_first_runs_the_missing_ones(hr_dir: Path, config: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    r = train("branches", run_dir, hr_dir, config, "--iterations", "2")  # baseline and rank train on the way
    assert r.exit_code == 0, r.output
    assert r.stdout.split() == [str(run_dir / f"branch{k}.safetensors") for k in range(3)]
    assert (run_dir / "baseline.safetensors").is_file() and (run_dir / "ranking.json").is_file()
    r = train("rank", run_dir, hr_dir, config, "--iterations", "2")
    assert r.exit_code == 0 and json.loads(r.stdout)["train_class_sizes"] == json.loads(
        (run_dir / "ranking.json").read_text())["train_class_sizes"]


class _Stop(Exception):
    pass


def test_an_interrupted_stage_resumes_to_the_same_weights(hr_dir: Path, config: Path, tmp_path: Path) -> None:
    """Interrupted after its checkpoint at iteration 4 of 6, a stage resumes there and ends bit-identical to
    an uninterrupted run (sampling is a function of seed, stage, rank and iteration; Adam state is saved)."""
    torch.set_num_threads(1)
    cfg = load_train_config(config)
    prepare([hr_dir], tmp_path / "data", scale=SCALE, patch=PATCH, step=STEP, factors=(1.0,), val_fraction=VAL_FRACTION)

    def stop_at_6(event: object) -> None:  # log_every 2: called at 2, 4, 6, before the checkpoint of 6
        if event.iteration == 6:  # type: ignore[attr-defined]
            raise _Stop

    full = Trainer(cfg, tmp_path / "full", tmp_path / "data", Dist()).baseline()
    broken = Trainer(cfg, tmp_path / "broken", tmp_path / "data", Dist(), observer=stop_at_6)
    with pytest.raises(_Stop):
        broken.baseline()
    assert not (tmp_path / "broken" / "baseline.safetensors").exists()
    assert torch.load(tmp_path / "broken" / "baseline.state.pt", weights_only=True)["iteration"] == 4
    resumed = Trainer(cfg, tmp_path / "broken", tmp_path / "data", Dist()).baseline()
    a = load_checkpoint(full).module.state_dict()
    b = load_checkpoint(resumed).module.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- distributed ---------------------------------------------------------------------------------------------------
def _rank_worker(rank: int, init_file: str, out: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from classsr_cli.train.loop import _mean_over_ranks
    from classsr_cli.train.stages import global_prob_sum

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        clf, x = torch.nn.Linear(4, 3), torch.randn(8, 4)
        ddp = DistributedDataParallel(clf)
        probs = torch.softmax(ddp(x[rank * 4 : rank * 4 + 4]), 1)
        prob_sum, batch = global_prob_sum(probs, Dist(rank=rank, size=2))
        loss = average_loss(prob_sum, batch)
        loss.backward()
        means = _mean_over_ranks({"share_light": float(rank), "l1": 1.0 + rank}, Dist(rank=rank, size=2))
        torch.save({"loss": loss.detach(), "grad": clf.weight.grad, "means": means}, Path(out) / f"{rank}.pt")
    finally:
        dist.destroy_process_group()
    # Done: leave at once. With a DDP module alive, about one exit in 30 aborts in torch's teardown ("terminate
    # called without an active exception", after destroy_process_group), which fails the test for nothing.
    os._exit(0)


@pytest.mark.slow
def test_average_loss_over_ranks_equals_the_whole_batch(tmp_path: Path) -> None:
    """Two gloo ranks with half a batch each: the Average-Loss on the all-reduced probability sum has the value
    and (after DDP's gradient averaging) the gradient of the Average-Loss of the whole batch."""
    import torch.multiprocessing as mp

    mp.start_processes(_rank_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, start_method="spawn")
    torch.manual_seed(0)
    clf, x = torch.nn.Linear(4, 3), torch.randn(8, 4)
    ref = average_loss(torch.softmax(clf(x), 1).sum(0), 8)
    ref.backward()
    for rank in (0, 1):
        got = torch.load(tmp_path / f"{rank}.pt", weights_only=True)
        assert got["loss"].item() == pytest.approx(ref.item(), rel=1e-6)
        torch.testing.assert_close(got["grad"], clf.weight.grad)
        assert got["means"] == {"share_light": 0.5, "l1": 1.5}  # logs (and the collapse guard) agree on all ranks


@pytest.mark.slow
def test_train_all_under_torchrun_with_two_cpu_ranks(hr_dir: Path, config: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "classsr_cli", "train", "all", "--hr", str(hr_dir), "--config", str(config), "--out", str(run_dir),
         "--iterations", "4", "--threads", "1", "--device", "cpu"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == str(run_dir / "classsr.safetensors")  # printed by rank 0 alone
    assert r.stderr.count("preparing x2 training data") == 1
    recs = metrics(run_dir)
    keys = Counter((rec["stage"], rec.get("iteration"), rec.get("event")) for rec in recs)
    assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]  # one writer: no duplicated lines
    assert any(rec["stage"] == "finetune" and rec.get("iteration") == 4 for rec in recs)
    leftovers = [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".")]
    assert not leftovers
    loaded = load_checkpoint(run_dir / "classsr.safetensors", expect_kind="classsr")
    assert loaded.provenance["world_size"] == 2
    assert loaded.provenance["data"]["hash"] == json.loads((run_dir / "data" / "meta.json").read_text())["hash"]


# -- random crops, deficit routing, atomic stage outputs -------------------------------------------------------------
def test_jittered_sub_images_start_anywhere_and_stay_inside(hr_dir: Path, tmp_path: Path) -> None:
    prepare([hr_dir], tmp_path / "data", scale=SCALE, patch=PATCH, step=STEP, factors=(1.0,), val_fraction=0)
    data = PatchData(tmp_path / "data")
    index = torch.zeros(400, dtype=torch.long)  # the first grid origin, (0, 0) of img0, again and again
    lr, hr = data.batch(index, torch.Generator().manual_seed(1), jitter=True)
    full = load_rgb(hr_dir / "img0.png")
    lr_full = bicubic_downscale(mod_crop(full, SCALE), SCALE)
    starts = set()
    for k in range(len(index)):
        a = _u8(lr[k])
        hits = [(y, x) for y in range(STEP) for x in range(STEP) if np.array_equal(lr_full[y : y + PATCH, x : x + PATCH], a)]
        assert hits, "a jittered LR sub-image is a crop of its image"
        y, x = hits[0]
        np.testing.assert_array_equal(_u8(hr[k]), mod_crop(full, SCALE)[y * SCALE : (y + PATCH) * SCALE, x * SCALE : (x + PATCH) * SCALE])
        starts.add((y, x))
    assert len(starts) > 100  # offsets 0..step-1 on both axes are drawn
    same = data.batch(index, torch.Generator().manual_seed(1), jitter=True)[0]
    assert torch.equal(same, lr)  # reproducible from the generator


def test_sub_images_with_context_are_their_photo_around_them_replicated_past_its_edge(hr_dir: Path, tmp_path: Path) -> None:
    prepare([hr_dir], tmp_path / "data", scale=SCALE, patch=PATCH, step=STEP, factors=(1.0,), val_fraction=0)
    data = PatchData(tmp_path / "data")
    index = torch.arange(len(data.patches))
    m = 12
    ctx = data.lr_context(index, m)
    assert ctx.shape == (len(index), 3, PATCH + 2 * m, PATCH + 2 * m)
    assert torch.equal(ctx[:, :, m:-m, m:-m], data.batch(index)[0])  # the sub-image in the centre
    flipped = data.lr_context(index, m, torch.Generator().manual_seed(2), augment=True)
    assert torch.equal(flipped[:, :, m:-m, m:-m], data.batch(index, torch.Generator().manual_seed(2), augment=True)[0])
    lr_full = torch.from_numpy(np.ascontiguousarray(data.image(0)[0])).permute(2, 0, 1).float() / 255
    padded = torch.nn.functional.pad(lr_full[None], (m,) * 4, mode="replicate")[0]
    for k in range(len(index)):  # every sub-image of the first photo: its crop of the replicate-padded photo
        img, y, x = (int(v) for v in data.patches[k].tolist())
        if img == 0:
            assert torch.equal(ctx[k], padded[:, y : y + PATCH + 2 * m, x : x + PATCH + 2 * m])


def write_deficit_config(
    path: Path, iterations: int = 4, routing: str = "deficit", extra_top: str = "", factors: str = "[1.0]"
) -> Path:
    stages = "".join(f"[{n}]\niterations = {0 if n == 'finetune' else iterations}\nbatch_size = 4\nlr = 1e-3\n"
                     f"val_every = 2\nckpt_every = 2\n" for n in STAGES)
    path.write_text(
        f'family = "residual"\nscale = {SCALE}\nwidths = [0, 4, 8]\nextra = {{depth = 1}}\npatch = {PATCH}\n'
        f'data_step = {STEP}\nfactors = {factors}\nval_fraction = {VAL_FRACTION}\nlog_every = 2\nrouting = "{routing}"\n'
        f"random_crops = true\ntolerance_db = 0.05\n" + extra_top + stages)
    return path


@pytest.mark.parametrize(("routing", "labels"),
                         [("deficit", "patches"), ("budget", "patches"), ("budget", "per-patch default"),
                          ("budget", "priced default"), ("deficit", "dense"), ("budget", "frame context")])
def test_deficit_recipe_trains_branches_on_all_data_and_calibrates_the_tolerance(
    hr_dir: Path, tmp_path: Path, routing: str, labels: str
) -> None:
    dense = 'classifier_labels = "dense"\nclassifier_kernel = 3\nclassifier_width = 8\n' if labels == "dense" else ""
    if labels == "frame context":  # trained on sub-images with their photo's pixels around them
        dense = 'classifier_context = "frame"\nclassifier_kernel = 3\nclassifier_width = 8\n'
    if labels in ("per-patch default", "priced default"):
        dense = f'budget_default = "{"patch" if labels == "per-patch default" else "price"}"\n'
        if labels == "priced default":  # with a frame cap: carried into the file, and reported by the calibration
            dense += "frame_cap_db = 0.1\n"
    hidden = 4 if routing == "budget" else 0  # the default models' classifier options, written into the checkpoint
    v2 = f'classifier_hidden = {hidden}\nclassifier_zero_mean = {str(hidden > 0).lower()}\nclassifier_init = "kaiming"\n'
    cfg = write_deficit_config(tmp_path / "deficit.toml", routing=routing,
                               extra_top=dense + (v2 if hidden else ""))
    run_dir = tmp_path / "run"
    r = train("all", run_dir, hr_dir, cfg)
    assert r.exit_code == 0, r.output
    data = PatchData(run_dir / "data")
    mse = np.load(run_dir / "deficits.npy")
    assert mse.shape == (len(data.patches), 3) and (mse >= 0).all()
    loaded = load_checkpoint(run_dir / "classsr.safetensors", expect_kind="classsr")
    cfg_out = loaded.config
    assert cfg_out.routing == routing and cfg_out.widths == (0, 4, 8) and cfg_out.tolerance >= 0
    assert (run_dir / "errors.npy").exists() == (labels == "dense")
    assert (cfg_out.classifier_kernel, cfg_out.classifier_width) == ((3, 8) if labels in ("dense", "frame context")
                                                                    else (1, 128))
    assert (cfg_out.classifier_context, loaded.module.classifier.margin) == (  # type: ignore[union-attr]
        ("frame", 12) if labels == "frame context" else ("window", 0))
    if labels == "frame context":  # validated on the held-out sub-images with their context
        assert any(rec.get("event") == "val" and rec["stage"] == "classifier" and "l1_log10" in rec
                   for rec in metrics(run_dir))
    assert cfg_out.classifier_hidden == hidden and (loaded.module.classifier.hidden is not None) == (hidden > 0)
    assert cfg_out.classifier_zero_mean == (hidden > 0) and loaded.provenance["recipe"]["classifier_init"] == (
        "kaiming" if hidden else "paper")
    if labels == "dense":  # each branch's error on every LR pixel of every prepared image
        assert np.load(run_dir / "errors.npy").shape == (3, data.lr.numel() // 3)
        assert any(rec.get("event") == "val" and rec["stage"] == "classifier" and "l1_log10" in rec
                   for rec in metrics(run_dir))
    calib = loaded.provenance["stages"]["classifier"]
    assert loaded.provenance["recipe"]["routing"] == routing
    if routing == "budget":  # the dial is in dB: scanned up to the recipe's tolerance_db, never above
        assert 0 <= cfg_out.tolerance <= 0.05
    cal = next(rec for rec in metrics(run_dir) if rec.get("event") == "calibrate")
    if labels == "per-patch default":  # the default decides per patch at its own calibrated tolerance
        assert cfg_out.cell_tolerance == cal["cell_tolerance"] and "budget_loss_db" in cal
        from classsr_cli.models.classsr import DEFICIT_EPS, deficit_classes

        sc = torch.log10(DEFICIT_EPS + torch.rand(50, 3, generator=torch.Generator().manual_seed(0)) * 20)
        assert torch.equal(loaded.module.decide(sc), deficit_classes(sc, cfg_out.cell_tolerance))  # type: ignore[operator]
    else:
        assert cfg_out.cell_tolerance == 0 and "cell_tolerance" not in cal
    if labels == "priced default":  # the default decides per patch at its own calibrated price
        assert cfg_out.cell_price == cal["cell_price"] and "budget_loss_db" in cal
        # the price is scanned without the cap; the default with the cap on top is recorded beside it: a capped
        # frame's patches only move to dearer branches
        light, _, heavy = cal["capped_shares"]
        assert sum(cal["capped_shares"]) == pytest.approx(1.0, abs=1e-3) and "capped_loss_db" in cal
        assert light <= cal["share_light"] + 1e-9 and heavy >= cal["share_heavy"] - 1e-9
        from classsr_cli.models.classsr import DEFICIT_EPS, capped_classes, priced_classes

        sc = torch.log10(DEFICIT_EPS + torch.rand(50, 3, generator=torch.Generator().manual_seed(0)) * 20)
        want = priced_classes(sc, cfg_out.cell_price, loaded.module.branch_costs)  # type: ignore[arg-type]
        want = capped_classes(sc, want, 0.1, loaded.module.branch_costs)  # type: ignore[arg-type]
        assert cfg_out.frame_cap_db == 0.1 and torch.equal(loaded.module.decide(sc), want)  # type: ignore[operator]
    else:
        assert cfg_out.cell_price == 0 and "cell_price" not in cal
    assert loaded.provenance["trained_on"] == [{"device": "cpu", "cpu": loaded.provenance["exported_on"]["cpu"],
                                                "cpus": os.cpu_count(), "world_size": 1}]
    recs = metrics(run_dir)
    cal = next(rec for rec in recs if rec.get("event") == "calibrate")
    assert cal["tolerance"] == cfg_out.tolerance and cal["loss_db"] <= 0.05
    assert cal["images"] == 1  # calibrated on the held-out training photo (img2.png), whole, through the engine
    lr, hr = data.image(int((data.images[:, 4] == 1).nonzero()[0]))
    np.testing.assert_array_equal(lr, bicubic_downscale(hr, SCALE))
    np.testing.assert_array_equal(hr, mod_crop(load_rgb(hr_dir / VAL_FILE), SCALE))
    assert abs(cal["share_light"] + cal["share_medium"] + cal["share_heavy"] - 1) < 1e-6
    trained_stages = {rec["stage"] for rec in recs if "iteration" in rec and "event" not in rec}
    assert trained_stages == {"baseline", "branch1", "classifier"}  # width 0 needs no training; heavy = baseline
    heavy = load_checkpoint(run_dir / "branch2.safetensors").module.state_dict()
    base = load_checkpoint(run_dir / "baseline.safetensors").module.state_dict()
    assert all(torch.equal(heavy[k], base[k]) for k in base)
    assert "iterations" in calib or "seconds" in calib
    photo = tmp_path / "photo.png"
    Image.fromarray(make_photo(40, 36, 3)).save(photo)
    r = run("upscale", photo, "--model", run_dir / "classsr.safetensors", "-x2", "-o", tmp_path / "big.png")
    assert r.exit_code == 0, r.output


def test_a_stage_output_is_whole_or_absent(hr_dir: Path, config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed while ranking.json is written leaves no truncated ranking.json that a later run would trust."""
    run_dir = tmp_path / "run"
    assert train("baseline", run_dir, hr_dir, config, "--iterations", "2").exit_code == 0
    real_replace = os.replace

    def crash(src: str, dst: str) -> None:
        if str(dst).endswith(("ranking.json", "classes.npy")):
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        Trainer(load_train_config(config).with_iterations(2), run_dir, run_dir / "data", Dist()).rank()
    assert not (run_dir / "ranking.json").exists() and not (run_dir / "classes.npy").exists()
    monkeypatch.setattr(os, "replace", real_replace)
    assert train("rank", run_dir, hr_dir, config, "--iterations", "2").exit_code == 0
    assert json.loads((run_dir / "ranking.json").read_text())["train_class_sizes"]


def test_a_ranking_without_its_array_ranks_again(hr_dir: Path, tmp_path: Path) -> None:
    """Stages copied into a new run folder with ranking.json but not deficits.npy (the branches changed) rank
    again: the deficits are measured on the branches now in the folder, not read from a file that is not there."""
    cfg = write_deficit_config(tmp_path / "deficit.toml", iterations=2, routing="budget")
    run_dir = tmp_path / "run"
    assert train("rank", run_dir, hr_dir, cfg).exit_code == 0
    first = np.load(run_dir / "deficits.npy")
    heavy = load_checkpoint(run_dir / "branch2.safetensors")
    state = {k: (v * 0 if k.startswith("tail") else v) for k, v in heavy.module.state_dict().items()}
    heavy.module.load_state_dict(state)  # the heavy branch is now bicubic: its error is the light branch's
    save_checkpoint(heavy.module, run_dir / "branch2.safetensors", config=heavy.config)
    (run_dir / "deficits.npy").unlink()
    r = train("rank", run_dir, hr_dir, cfg)
    assert r.exit_code == 0, r.output
    again = np.load(run_dir / "deficits.npy")
    assert not np.allclose(again[:, 2], first[:, 2]) and np.allclose(again[:, 2], again[:, 0], atol=1e-3)


def test_quantile_loss_is_l1_at_the_median_and_is_minimised_by_the_quantile() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.randn(4000, generator=g).exp()  # skewed, as the log-deficit labels' errors are
    pred = torch.randn(4000, generator=g)
    assert torch.equal(quantile_loss(pred, target, 0.5), torch.nn.functional.l1_loss(pred, target))
    assert torch.allclose(quantile_loss(pred, target, 0.5 + 1e-9), quantile_loss(pred, target, 0.5), atol=1e-6)
    grid = torch.linspace(0, 6, 601)
    for q in (0.5, 0.75, 0.9):  # the constant that minimises it is the target's q-quantile
        best = grid[torch.stack([quantile_loss(c.expand_as(target), target, q) for c in grid]).argmin()]
        assert abs(float(best) - float(torch.quantile(target, q))) < 0.02
    with pytest.raises(ConfigError, match="classifier_quantile"):
        load_train_config(None, classifier_quantile=1.0)


def test_mean_loss_is_minimised_by_the_mean_of_the_labels_in_levels() -> None:
    """The classifier's ``mean`` loss: the constant log10 prediction that minimises it is log10 of the labels' mean
    in levels², above the median of the log (the L1 loss's) for a skewed label."""
    g = torch.Generator().manual_seed(0)
    target = torch.randn(4000, generator=g) * 0.6 + 0.5  # log10 labels, spread as deficits are
    grid = torch.linspace(-1, 3, 801)
    best = grid[torch.stack([mean_loss(c.expand_as(target), target) for c in grid]).argmin()]
    assert abs(float(best) - float(torch.log10(torch.pow(10.0, target).mean()))) < 0.01
    l1 = grid[torch.stack([quantile_loss(c.expand_as(target), target) for c in grid]).argmin()]
    assert float(best) > float(l1) + 0.3  # the mean of a log-normal label lies well above its median
    with pytest.raises(ConfigError, match="classifier_loss"):
        load_train_config(None, classifier_loss="median")


def test_a_budget_run_with_the_mean_loss_trains_and_records_it(hr_dir: Path, tmp_path: Path) -> None:
    cfg = write_deficit_config(tmp_path / "mean.toml", routing="budget", extra_top='classifier_loss = "mean"\n')
    run_dir = tmp_path / "run"
    r = train("all", run_dir, hr_dir, cfg)
    assert r.exit_code == 0, r.output
    recipe = load_checkpoint(run_dir / "classsr.safetensors").provenance["recipe"]
    assert recipe["classifier_loss"] == "mean"
    logged = [rec["l1_log10"] for rec in metrics(run_dir) if rec.get("stage") == "classifier" and "l1_log10" in rec]
    assert logged and all(math.isfinite(v) for v in logged)


def test_a_light_share_trains_the_light_branch_on_the_easiest_sub_images(hr_dir: Path, tmp_path: Path) -> None:
    """``light_share``: the light branch's pool is that share of the training sub-images where the baseline gains
    least over bicubic (every one it keeps gains no more than any it leaves), the held-out pool cut at the same
    gain; the run trains and records the share in the branch's provenance."""
    path = write_deficit_config(tmp_path / "share.toml", routing="budget",
                                extra_top='light_share = 0.5\nbudget_default = "patch"\n')
    path.write_text(path.read_text().replace("widths = [0, 4, 8]", "widths = [4, 4, 8]"))
    run_dir = tmp_path / "run"
    r = train("all", run_dir, hr_dir, path)
    assert r.exit_code == 0, r.output
    assert load_checkpoint(run_dir / "branch0.safetensors").provenance["light_share"] == 0.5
    assert "light_share" not in load_checkpoint(run_dir / "branch1.safetensors").provenance
    trainer = Trainer(load_train_config(path), run_dir, run_dir / "data", Dist())
    data = trainer.data
    pool, val_pool = trainer._easiest(data.train_index, data.val_index)
    assert abs(len(pool) - len(data.train_index) / 2) <= 1 and set(pool.tolist()) <= set(data.train_index.tolist())
    assert set(val_pool.tolist()) <= set(data.val_index.tolist())
    bicubic = build_branch(replace(trainer.model_cfg.branch(2), width=0))
    heavy = load_checkpoint(run_dir / "baseline.safetensors").module.eval()
    b = SCALE
    with torch.no_grad():
        lr, hr = data.batch(torch.arange(len(data.patches)))
        err = [((net(lr) - hr)[..., b:-b, b:-b] * 255).square().mean(dim=(1, 2, 3)).numpy() for net in (bicubic, heavy)]
    gain = err[0] - err[1]
    kept = set(pool.tolist())
    left = [i for i in data.train_index.tolist() if i not in kept]
    assert max(gain[i] for i in kept) <= min(gain[i] for i in left) + 1e-4
    # the heavy error is the one the ranking stage measured (the same sub-images, the same border)
    deficits = np.load(run_dir / "deficits.npy")
    assert np.allclose(deficits[:, 2], err[1], rtol=1e-4, atol=1e-3)
    # scripts/light_deficits.py: the light branch's shortfall on each third of the training sub-images by this gain
    import runpy

    argv = sys.argv
    try:
        sys.argv = ["light_deficits.py", str(run_dir), "--data", str(run_dir / "data"), "--threads", "1",
                    "--tolerances", "1", "--json", str(tmp_path / "thirds.json")]
        assert runpy.run_path(str(ROOT / "scripts" / "light_deficits.py"), run_name="not_main")["main"]() == 0
    finally:
        sys.argv = argv
    thirds = json.loads((tmp_path / "thirds.json").read_text())
    trained = data.train_index.numpy()
    by_gain = bicubic_gains(data, data.train_index, heavy, "rgb").numpy()  # the script's own gains (same batches)
    assert np.allclose(by_gain, gain[trained], atol=1e-3)
    order = trained[np.argsort(by_gain, kind="stable")]
    easiest = order[: -(-len(order) // 3)]  # np.array_split's first third
    short = np.maximum(deficits[:, 0] - deficits[:, 2], 0)
    assert thirds["sub_images"] == len(trained)
    assert thirds["runs"][str(run_dir)]["easiest"]["mean_deficit"] == pytest.approx(short[easiest].mean(), abs=2e-3)
    assert thirds["runs"][str(run_dir)]["easiest"]["within_1"] == pytest.approx((short[easiest] <= 1).mean(), abs=1e-4)
    with pytest.raises(ConfigError, match="light_share must lie"):
        load_train_config(None, routing="budget", light_share=0.0)
    with pytest.raises(ConfigError, match="light_share needs deficit or budget"):
        load_train_config(None, light_share=0.5)


@pytest.mark.parametrize("fitted", [1, 2])
def test_a_fitted_base_is_fitted_once_on_the_training_sub_images_and_shared_by_its_branches(
    hr_dir: Path, tmp_path: Path, fitted: int
) -> None:
    """``extra.fitted_base``: the run fits the base once (``base.safetensors``, least squares on every training
    sub-image), every branch (1) or the light one alone (2) trains on it and the exported model carries it there;
    the light branch (the base alone) has a smaller squared error than bicubic on the training sub-images' fitted
    positions."""
    path = write_deficit_config(tmp_path / "fitted.toml", routing="budget", extra_top='budget_default = "price"\n')
    path.write_text(path.read_text().replace("extra = {depth = 1}", f"extra = {{depth = 1, fitted_base = {fitted}}}"))
    run_dir = tmp_path / "run"
    r = train("all", run_dir, hr_dir, path)
    assert r.exit_code == 0, r.output
    base = load_file(str(run_dir / "base.safetensors"))["fitted_base"]
    model = load_checkpoint(run_dir / "classsr.safetensors").module
    assert torch.equal(model.branches[0].base, base)
    baseline = load_checkpoint(run_dir / "baseline.safetensors").module
    if fitted == 1:
        assert next(rec["stage"] for rec in metrics(run_dir) if rec.get("event") == "done") == "base"
        assert all(torch.equal(b.base, base) for b in model.branches) and torch.equal(baseline.base, base)
    else:  # bicubic under the others
        assert all(b.fitted_base is None for b in (*model.branches[1:], baseline))
    trainer = Trainer(load_train_config(path), run_dir, run_dir / "data", Dist())
    data = trainer.data
    lr, hr = data.batch(data.train_index)
    assert torch.allclose(fit_base([(lr, hr)], SCALE), base, atol=1e-5)
    bicubic = build_branch(replace(trainer.model_cfg.branch(0), extra={"depth": 1}))
    m = 2 * SCALE  # the positions the fit saw: LR taps inside the sub-image
    with torch.no_grad():
        err = [(net(lr) - hr)[..., m:-m, m:-m].square().mean().item() for net in (model.branches[0], bicubic)]
    assert err[0] < err[1] * 0.99


def test_bicubic_first_trains_the_medium_branch_on_bicubic_then_on_the_fitted_base(hr_dir: Path, tmp_path: Path) -> None:
    """``bicubic_first``: the medium branch first trains as a recipe without a fitted base trains it (the same
    samples, the same weights), then on the fitted base from those weights; the heavy branch is the baseline."""
    top = 'budget_default = "price"\n'
    path = write_deficit_config(tmp_path / "first.toml", routing="budget", extra_top=top + "bicubic_first = true\n")
    path.write_text(path.read_text().replace("extra = {depth = 1}", "extra = {depth = 1, fitted_base = 1}"))
    plain = write_deficit_config(tmp_path / "plain.toml", routing="budget", extra_top=top)
    run_dir, plain_dir = tmp_path / "run", tmp_path / "plain"
    for cfg, out in ((path, run_dir), (plain, plain_dir)):
        r = train("branches", out, hr_dir, cfg)
        assert r.exit_code == 0, r.output
    first = load_checkpoint(run_dir / "branch1_bicubic.safetensors")
    assert first.module.fitted_base is None
    ref = load_checkpoint(plain_dir / "branch1.safetensors").module.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in first.module.state_dict().items())
    medium = load_checkpoint(run_dir / "branch1.safetensors")
    assert medium.module.fitted_base is not None and medium.provenance["from_bicubic"] == "branch1_bicubic.safetensors"
    assert not torch.equal(medium.module.tail.weight, first.module.tail.weight)
    stages = [rec["stage"] for rec in metrics(run_dir) if "iteration" in rec and "event" not in rec]
    assert stages.index("branch1_bicubic") < stages.index("branch1")
    with pytest.raises(ConfigError, match="bicubic_first"):
        load_train_config(None, bicubic_first=True, routing="budget")  # no fitted base


def test_calibration_on_every_factor_adds_the_held_out_photos_downscales(hr_dir: Path, tmp_path: Path) -> None:
    cfg = write_deficit_config(tmp_path / "all.toml", routing="budget", factors="[1.0, 0.8, 0.6]",
                               extra_top='budget_default = "patch"\ncalibrate_factors = "all"\n'
                               'classifier_quantile = 0.75\n')
    run_dir = tmp_path / "run"
    r = train("all", run_dir, hr_dir, cfg)
    assert r.exit_code == 0, r.output
    data = PatchData(run_dir / "data")
    assert int((data.images[:, 4] == 1).sum()) == 1  # the held-out photo is prepared at its first factor only
    cal = next(rec for rec in metrics(run_dir) if rec.get("event") == "calibrate")
    assert cal["images"] == 2  # as it is and downscaled by 0.8 (by 0.6 its LR is smaller than a patch)
    recipe = load_checkpoint(run_dir / "classsr.safetensors").provenance["recipe"]
    assert recipe["calibrate_factors"] == "all" and recipe["classifier_quantile"] == 0.75
    with pytest.raises(ConfigError, match="calibrate_factors"):
        load_train_config(None, calibrate_factors="some")


def test_calibration_on_every_photo_routes_the_trained_on_photos_too(hr_dir: Path, tmp_path: Path) -> None:
    cfg = write_deficit_config(tmp_path / "photos.toml", routing="budget", factors="[1.0, 0.8]",
                               extra_top='budget_default = "patch"\ncalibrate_photos = "all"\n')
    run_dir = tmp_path / "run"
    r = train("all", run_dir, hr_dir, cfg)
    assert r.exit_code == 0, r.output
    data = PatchData(run_dir / "data")
    assert int((data.images[:, 4] == 0).sum()) > len(SIZES) - 1  # the trained-on photos are there at both factors
    cal = next(rec for rec in metrics(run_dir) if rec.get("event") == "calibrate")
    assert cal["images"] == len(SIZES)  # every photo once, at its first factor (calibrate_factors = "first")
    assert "calibrate" in r.output  # its own progress bar: on 1,297 photos it takes minutes
    assert cal["cell_tolerance"] >= 0 and 0 < cal["tolerance"] <= 0.05
    assert load_checkpoint(run_dir / "classsr.safetensors").provenance["recipe"]["calibrate_photos"] == "all"
    with pytest.raises(ConfigError, match="calibrate_photos"):
        load_train_config(None, calibrate_photos="some")


def test_dense_labels_need_deficit_or_budget_routing_and_old_runs_resume(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dense"):
        load_train_config(None, classifier_labels="dense")
    with pytest.raises(ConfigError, match="classifier_labels"):
        load_train_config(None, routing="deficit", classifier_labels="pixels")
    with pytest.raises(ConfigError, match="classifier_init"):
        load_train_config(None, routing="deficit", classifier_init="xavier")
    with pytest.raises(ConfigError, match="classifier_context"):  # the paper's routing, or dense labels
        load_train_config(None, classifier_context="frame", classifier_kernel=3)
    with pytest.raises(ConfigError, match="classifier_context"):
        load_train_config(None, routing="deficit", classifier_labels="dense", classifier_kernel=3, classifier_context="frame")
    with pytest.raises(ConfigError, match="classifier_kernel above 1"):  # a bag of blocks has no context to give
        load_train_config(None, routing="deficit", classifier_context="frame").model_config()
    with pytest.raises(ConfigError, match="classifier_context must be one of"):
        load_train_config(None, routing="deficit", classifier_kernel=3, classifier_context="image").model_config()
    with pytest.raises(ConfigError, match="classifier_hidden"):
        load_train_config(None, routing="deficit", classifier_hidden=-1).model_config()
    with pytest.raises(ConfigError, match="classifier_zero_mean must be true or false"):
        load_train_config(None, routing="deficit", classifier_zero_mean="yes")  # a truthy string is not a bool
    with pytest.raises(ConfigError, match=r"\[classifier\] lr must be a number"):
        load_train_config(None, classifier={"lr": "fast"})
    with pytest.raises(ConfigError, match="classifier_width must be an integer"):
        load_train_config(None, classifier_width=True)
    assert load_train_config(None, tolerance_db=1).tolerance_db == 1.0  # an integer is a number
    cfg = load_train_config(None, routing="deficit", classifier_labels="dense", classifier_kernel=3)
    assert cfg.model_config().classifier_kernel == 3
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    old = TrainConfig(routing="deficit").to_dict()
    for key in ("classifier_width", "classifier_kernel", "classifier_labels", "depths", "light_share"):
        del old[key]  # a run begun before these keys existed (depths: a tuple default, a list in the file)
    (run_dir / "config.json").write_text(json.dumps(old))
    Trainer(TrainConfig(routing="deficit"), run_dir, tmp_path / "data", Dist())  # resumes: same recipe
    with pytest.raises(ConfigError, match="different recipe"):
        Trainer(TrainConfig(routing="deficit", classifier_kernel=3), run_dir, tmp_path / "data", Dist())


def test_a_run_seeded_from_a_model_retrains_only_its_classifier(hr_dir: Path, tmp_path: Path) -> None:
    import runpy

    cfg = write_deficit_config(tmp_path / "seed.toml", routing="budget", extra_top='budget_default = "patch"\n')
    first = tmp_path / "first"
    assert train("all", first, hr_dir, cfg).exit_code == 0
    model = first / "classsr.safetensors"
    seeded = tmp_path / "seeded"
    argv = sys.argv
    try:
        sys.argv = ["run_from_weights.py", str(model), str(cfg), str(seeded)]
        assert runpy.run_path(str(ROOT / "scripts" / "run_from_weights.py"), run_name="not_main")["main"]() == 0
        with pytest.raises(SystemExit):  # a run folder that holds stages is refused
            runpy.run_path(str(ROOT / "scripts" / "run_from_weights.py"), run_name="not_main")["main"]()
    finally:
        sys.argv = argv
    r = train("all", seeded, hr_dir, cfg, "--data", first / "data")
    assert r.exit_code == 0, r.output
    recs = metrics(seeded)
    assert not [rec for rec in recs if rec.get("stage") in ("baseline", "branch1") and "event" not in rec
                and rec.get("from") is None]  # no branch iteration was trained again
    assert any(rec.get("stage") == "classifier" and "event" not in rec for rec in recs)  # the classifier was
    a, b = (load_checkpoint(p).module for p in (model, seeded / "classsr.safetensors"))
    for k in range(3):
        for x, y in zip(a.branches[k].state_dict().values(), b.branches[k].state_dict().values(), strict=True):
            assert torch.equal(x, y)
    stages = load_checkpoint(seeded / "classsr.safetensors").provenance["stages"]
    assert stages["branch1"]["iterations"] == 4  # the branch stages' records travel from the model's provenance

    # --retrain 0: a learned light branch in place of the model's bicubic one; the others are kept
    light = tmp_path / "light.toml"
    light.write_text(cfg.read_text().replace("widths = [0, 4, 8]", "widths = [2, 4, 8]"))
    tried = tmp_path / "tried"

    def seed(*extra: str) -> None:
        sys.argv = ["run_from_weights.py", str(model), str(light), str(tried), *extra]
        runpy.run_path(str(ROOT / "scripts" / "run_from_weights.py"), run_name="not_main")["main"]()

    try:
        with pytest.raises(SystemExit):  # another width for a branch that is not retrained is refused
            seed()
        assert not tried.exists()
        seed("--retrain", "0")
    finally:
        sys.argv = argv
    assert sorted(p.name for p in tried.glob("*.safetensors")) == ["baseline.safetensors", "branch1.safetensors",
                                                                   "branch2.safetensors"]
    r = train("all", tried, hr_dir, light, "--data", first / "data")
    assert r.exit_code == 0, r.output
    c = load_checkpoint(tried / "classsr.safetensors").module
    assert c.branches[0].width == 2 and c.branches[0].tail.weight.abs().sum() > 0  # trained from its zero init
    for k in (1, 2):
        for x, y in zip(a.branches[k].state_dict().values(), c.branches[k].state_dict().values(), strict=True):
            assert torch.equal(x, y)
    recs = metrics(tried)
    assert any(rec.get("stage") == "branch0" and "event" not in rec and rec.get("from") is None for rec in recs)


def test_expected_labels_replace_a_runs_light_label_by_its_distance_from_the_heavy_output(
    hr_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scripts/expected_labels.py ``make``: the measured deficits are kept aside, the light column becomes heavy's
    error plus the light output's luma squared difference from heavy's, the others stay; run again, it starts from
    the kept measured ones. ``screen`` decides the held-out sub-images at three prices."""
    import runpy

    from classsr_cli.metrics import luma_levels

    monkeypatch.syspath_prepend(str(ROOT / "scripts"))  # the script's own helpers (report.py)
    cfg = write_deficit_config(tmp_path / "exp.toml", routing="budget",
                               extra_top='budget_default = "price"\nclassifier_error = "y"\n')
    run_dir = tmp_path / "run"
    assert train("all", run_dir, hr_dir, cfg).exit_code == 0
    measured = np.load(run_dir / "deficits.npy")

    def script(*args: str) -> dict:
        out = tmp_path / "out.json"
        argv = sys.argv
        try:
            sys.argv = ["expected_labels.py", *args, "--data", str(run_dir / "data"), "--threads", "1", "--json", str(out)]
            assert runpy.run_path(str(ROOT / "scripts" / "expected_labels.py"), run_name="not_main")["main"]() == 0
        finally:
            sys.argv = argv
        return json.loads(out.read_text())

    for _ in range(2):
        report = script("make", str(run_dir))
        assert np.array_equal(np.load(run_dir / "deficits_measured.npy"), measured)
        labels = np.load(run_dir / "deficits.npy")
        assert np.array_equal(labels[:, 1:], measured[:, 1:])
        trainer = Trainer(load_train_config(run_dir / "config.json"), run_dir, run_dir / "data", Dist())
        nets = [load_checkpoint(run_dir / f"branch{k}.safetensors").module.eval() for k in (0, 2)]
        with torch.no_grad():
            lr, _ = trainer.data.batch(torch.arange(len(trainer.data.patches)))
            light, heavy = (net(lr)[..., SCALE:-SCALE, SCALE:-SCALE] for net in nets)
            y = luma_levels(light - heavy)  # BT.601 luma in 8-bit levels, as PSNR-Y measures it
        assert np.allclose(labels[:, 0] - measured[:, 2], y.square().mean(dim=(1, 2)).numpy(), rtol=1e-3, atol=1e-3)
        assert report["labels"]["light"]["median_expected"] >= 0
    # --over-medium: the light label is the medium's measured error plus the light output's luma squared difference
    # from heavy's less the medium output's; the medium and heavy labels stay measured
    script("make", str(run_dir), "--over-medium")
    labels = np.load(run_dir / "deficits.npy")
    assert np.array_equal(labels[:, 1:], measured[:, 1:])
    medium_net = load_checkpoint(run_dir / "branch1.safetensors").module.eval()
    with torch.no_grad():
        medium = medium_net(lr)[..., SCALE:-SCALE, SCALE:-SCALE]
        step = y.square().mean(dim=(1, 2)) - luma_levels(medium - heavy).square().mean(dim=(1, 2))
    assert np.allclose(labels[:, 0] - measured[:, 1], step.numpy(), rtol=1e-3, atol=1e-3)
    rows = script("screen", str(run_dir), str(run_dir / "classsr.safetensors"))["rows"]
    assert [r["price"] / rows[0]["price"] for r in rows] == pytest.approx([1, 1.25, 1.5], rel=1e-3)
    for r in rows:
        assert sum(r["decided"]) == pytest.approx(1, abs=1e-3) and 0 <= r["easiest_third_light"] <= 1
    assert rows[2]["decided"][0] >= rows[0]["decided"][0]  # a higher price never sends fewer sub-images light


def test_every_rank_ends_on_rank_0s_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under torchrun only rank 0 checks the run folder; the others now raise its refusal too (one line each),
    where they died on their lost peer ("Connection closed by peer"). A rank that is not rank 0 writes nothing."""
    import classsr_cli.train.stages as stages

    verdicts: list[object] = []

    def gather(world: object, obj: object) -> list[object]:
        verdicts.append(obj)
        return [pickle.loads(pickle.dumps(said)), obj]  # as all_gather_object carries it

    monkeypatch.setattr(stages, "all_gather", gather)
    said: Exception = ConfigError("RUN: holds a run with a different recipe (seed: 0 → 5); use another --out")
    with pytest.raises(ConfigError, match=r"different recipe \(seed: 0 → 5\)"):
        Trainer(TrainConfig(), tmp_path / "run", tmp_path / "data", Dist(rank=1, size=2))
    said = OutputError("RUN: is a file, not a folder")  # rank 0 could not make the run folder: the same error class
    with pytest.raises(OutputError, match=r"^RUN: is a file, not a folder$"):
        Trainer(TrainConfig(), tmp_path / "run", tmp_path / "data", Dist(rank=1, size=2))
    assert verdicts == [None, None] and not (tmp_path / "run").exists()
