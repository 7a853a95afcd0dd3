"""`classsr bench` on two tiny generated images with the tiny seeded model: schema, ratios, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import unimplemented_dds
from typer.testing import CliRunner

from classsr_cli import bench as lib
from classsr_cli.cli import app
from classsr_cli.degrade import add_noise, jpeg_roundtrip, make_pair
from classsr_cli.engine.tiling import plan_grid
from classsr_cli.errors import ConfigError
from classsr_cli.metrics import psnr, quantize

runner = CliRunner()

TOP_KEYS = {
    "native",
    "tta",
    "device",
    "device_name",
    "threads",
    "precision",
    "scale",
    "model_scale",
    "images",
    "inputs",
    "megapixels",
    "model",
    "step",
    "tolerance",
    "jpeg",
    "noise",
    "repeat",
    "warmup",
    "peak_mem",
    "torch",
    "load_average",
    "methods",
}
METHOD_KEYS = {
    "psnr_y",
    "psnr_rgb",
    "ssim_y",
    "flops",
    "flops_paper",
    "seconds",
    "seconds_all",
    "spread",
    "mp_per_s",
    "peak_mem_mb",
    "per_image",
}
# HR sizes (h, w): 256x256 gives a 64x64 LR frame that a step-32 grid covers exactly; 175x202 is
# mod-cropped to 172x200 (LR 43x50), off any grid.
SIZES = ((256, 256), (175, 202))


def _image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 0.9, y * 0.8, (x + y) * 0.4], -1) + 20
    img[:, w // 2 :] += rng.normal(0, 35, (h, w - w // 2, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def hr_dir(tmp_path: Path) -> Path:
    from PIL import Image

    folder = tmp_path / "sets" / "Tiny"
    folder.mkdir(parents=True)
    for i, (h, w) in enumerate(SIZES):
        Image.fromarray(_image(h, w, i)).save(folder / f"img{i}.png")
    return folder


def _bench_json(args: list[str]) -> dict:
    result = runner.invoke(app, ["bench", *args, "--json", "--device", "cpu", "--threads", "1"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_schema_and_ratios(hr_dir: Path, tiny_model_path: Path) -> None:
    report = _bench_json([str(hr_dir), "--model", str(tiny_model_path), "--repeat", "2", "--warmup", "0"])
    assert set(report) == TOP_KEYS
    assert set(report["methods"]) == set(lib.METHODS)
    assert list(report["methods"]) == list(lib.METHODS)
    for name, m in report["methods"].items():
        expected = METHOD_KEYS | ({"patches"} if name == "classsr" else set())
        assert set(m) == expected, name
        assert len(m["seconds_all"]) == 2
        assert m["spread"] == pytest.approx(max(m["seconds_all"]) / min(m["seconds_all"]))
        assert m["seconds"] > 0
        assert m["mp_per_s"] == pytest.approx(report["megapixels"] / m["seconds"])
        assert 0 < m["ssim_y"] <= 1
    assert report["images"] == 2
    assert report["inputs"] == [str(hr_dir / "img0.png"), str(hr_dir / "img1.png")]
    assert report["scale"] == 4 and report["model_scale"] == 4
    assert report["threads"] == 1
    assert report["precision"] == "fp32"
    assert report["device"] == "cpu"
    assert report["megapixels"] == pytest.approx((256 * 256 + 172 * 200) / 1e6)

    methods = report["methods"]
    lr_sizes = [(64, 64), (43, 50)]
    grids = [plan_grid(h, w, 32, 28) for h, w in lr_sizes]
    n_patches = sum(g.count for g in grids)
    # Patches per class add up to the grid.
    assert set(methods["classsr"]["patches"]) == {"light", "medium", "heavy"}
    assert sum(methods["classsr"]["patches"].values()) == n_patches
    # Real FLOPs grow with the branch width; bicubic is not counted.
    assert methods["bicubic"]["flops"] == 0
    assert 0 < methods["light"]["flops"] < methods["medium"]["flops"] < methods["heavy"]["flops"]
    # heavy-tiled / heavy = the overlap (and grid padding) factor: patch area over frame area.
    overlap = sum(g.count * 32 * 32 for g in grids) / sum(h * w for h, w in lr_sizes)
    assert overlap > (32 / 28) ** 2
    assert methods["heavy-tiled"]["flops"] / methods["heavy"]["flops"] == pytest.approx(overlap, rel=1e-6)
    # In the paper's per-patch convention the overlap disappears: heavy and heavy-tiled are the same.
    assert methods["heavy-tiled"]["flops_paper"] == methods["heavy"]["flops_paper"]
    # ClassSR spends no more than heavy-only on the same patches plus the classifier on each.
    assert methods["classsr"]["flops"] <= methods["heavy-tiled"]["flops"] * 1.5


def test_whole_image_branch_metrics_match_a_manual_run(hr_dir: Path, tiny_model: torch.nn.Module) -> None:
    pairs = lib.load_pairs(lib.find_images([hr_dir]), 4)
    result = lib.run_bench(tiny_model, pairs, repeat=1, warmup=0, methods=("heavy", "bicubic"))
    assert list(result.methods) == ["heavy", "bicubic"]
    expected = []
    for p in pairs:
        lr = torch.from_numpy(p.lr).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            sr = quantize(tiny_model.branches[2](lr))
        expected.append(psnr(sr, p.hr, 4, y_channel=True))
    assert result.methods["heavy"].psnr_y == pytest.approx(np.mean(expected), abs=1e-12)
    # Bench uses the training degradation exactly.
    hr, lr = make_pair(_image(175, 202, 1), 4)
    assert hr.shape == (172, 200, 3)
    np.testing.assert_array_equal(pairs[1].hr, hr)
    np.testing.assert_array_equal(pairs[1].lr, lr)


def test_timed_passes_take_turns_so_drift_slows_every_method_alike(
    hr_dir: Path, tiny_model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = lib.load_pairs(lib.find_images([str(hr_dir)]), 4)
    calls: list[object] = []
    clock = iter(range(1, 100))

    def fake_pass(run: object, n: int, device: torch.device) -> float:
        calls.append(run)
        return float(next(clock))  # the machine gets slower with every pass

    monkeypatch.setattr(lib, "_pass", fake_pass)
    result = lib.run_bench(tiny_model, pairs, repeat=3, warmup=1, methods=("heavy", "bicubic"))
    heavy, bicubic = calls[0], calls[1]  # one warm-up pass each, then the rounds
    assert heavy is not bicubic and calls[2:] == [heavy, bicubic] * 3
    assert result.methods["heavy"].seconds_all == [3.0, 5.0, 7.0]
    assert result.methods["bicubic"].seconds_all == [4.0, 6.0, 8.0]
    assert result.methods["bicubic"].seconds == 6.0 and result.methods["heavy"].seconds == 5.0
    # The machine slowed by more than NOISY_SPREAD during the run: both methods are flagged, with their spread.
    assert result.methods["heavy"].spread == pytest.approx(7 / 3)
    assert result.methods["bicubic"].spread == pytest.approx(2.0)
    assert result.noisy() == ["heavy", "bicubic"] and result.noisy(limit=2.1) == ["heavy"]


def test_a_run_whose_passes_spread_says_so_on_stderr_and_records_the_load(
    hr_dir: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter([1.0, 1.0, 1.0, 1.1, 1.0, 2.0])  # warm-ups, then heavy 1.0/1.0, classsr 1.1/2.0 in turns

    monkeypatch.setattr(lib, "_pass", lambda run, n, device: next(clock))
    args = ["bench", str(hr_dir), "--model", str(tiny_model_path), "--methods", "heavy,classsr", "--repeat", "2",
            "--json", "--threads", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # stdout is the JSON alone
    assert report["methods"]["heavy"]["spread"] == 1.0
    assert report["methods"]["classsr"]["spread"] == pytest.approx(2.0 / 1.1)
    assert "timings moved during the run" in result.stderr and "classsr 1.82x (1.1-2 s)" in result.stderr
    assert "heavy" not in result.stderr.split("fastest,")[1].split(";")[0]  # only the noisy method is named
    load = report["load_average"]
    assert load is None or (len(load) == 2 and all(x >= 0 for x in load))


def test_steady_passes_print_no_note(
    hr_dir: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lib, "_pass", lambda run, n, device: 1.0)
    args = ["bench", str(hr_dir), "--model", str(tiny_model_path), "--methods", "heavy", "--repeat", "3", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "timings moved" not in result.stderr


def test_an_image_that_cannot_be_read_is_said_as_upscale_says_it(hr_dir: Path, tiny_model_path: Path,
                                                                 tmp_path: Path) -> None:
    """bench reads its images through upscale's reader: a damaged one (a DDS header without its data) or an empty
    one is the line `classsr upscale` gives for it (exit 1), not an internal error; one above the pixel limit says
    so without naming upscale's --max-pixels, which bench has not."""
    import struct
    import zlib

    dds = unimplemented_dds(hr_dir.parent / "bgrx.dds")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    for bad in (dds, empty):
        said = runner.invoke(app, ["upscale", str(bad), "-o", str(tmp_path / "o.png"), "--model", str(tiny_model_path)])
        assert said.exit_code == 1 and said.stderr.startswith(f"error: {bad}: ")
        for native in ([], ["--native"]):
            result = runner.invoke(app, ["bench", str(bad), "--model", str(tiny_model_path), *native])
            assert result.exit_code == 1 and result.stderr == said.stderr

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    big = tmp_path / "big.png"  # a header of 20000x20000, nothing behind it
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
                    + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b""))
    result = runner.invoke(app, ["bench", str(big), "--model", str(tiny_model_path), "--native"])
    assert result.exit_code == 1 and result.stderr == (
        f"error: {big}: 20000x20000 is 400,000,000 pixels, above the 100,000,000-pixel limit that guards against "
        "decompression bombs; bench and train read none larger: downscale it first\n")


def test_bench_and_train_read_a_16_bit_or_turned_picture_as_upscale_does(tmp_path: Path) -> None:
    """The loader of bench and train (load_rgb) was Pillow's convert("RGB"): a 16-bit PNG read clipped to white
    (level 32896, 128 in 8 bits, read 255) and a camera's EXIF orientation ignored; it is upscale's reader now."""
    from PIL import Image

    levels = np.full((6, 10), 128 * 257, np.uint16)
    levels[0, 0] = 65535
    Image.fromarray(levels).save(tmp_path / "g16.png")
    rgb = lib.load_rgb(tmp_path / "g16.png")
    assert rgb.dtype == np.uint8 and rgb.shape == (6, 10, 3)
    assert (rgb[1:] == 128).all() and tuple(rgb[0, 0]) == (255, 255, 255)
    assert rgb.flags.writeable and rgb.flags.c_contiguous  # (torch warned of a read-only array in `bench --native`)
    turned = Image.new("RGB", (10, 6), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to show"
    turned.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    assert lib.load_rgb(tmp_path / "turned.jpg").shape == (10, 6, 3)


def test_a_palette_image_with_transparency_loads_without_pillows_warning(tmp_path: Path) -> None:
    """A palette PNG whose transparency is a byte per entry: Pillow warns that it "should be converted to RGBA" when
    it is made RGB; the loader keeps that off stderr (it printed as Python's warning in `classsr bench`)."""
    import warnings

    from PIL import Image

    im = Image.new("P", (8, 8), 1)
    im.putpalette([0, 0, 0, 200, 40, 40, 9, 9, 9] + [0] * 759)
    im.save(tmp_path / "p.png", transparency=bytes([0, 128, 255]))  # (partial alpha: kept as bytes when read)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = lib.load_rgb(tmp_path / "p.png")
    assert rgb.shape == (8, 8, 3) and tuple(rgb[0, 0]) == (200, 40, 40)


def test_no_overlap_means_no_tiling_overhead(hr_dir: Path, tiny_model: torch.nn.Module) -> None:
    pairs = lib.load_pairs([hr_dir / "img0.png"], 4)
    result = lib.run_bench(tiny_model, pairs, step=32, repeat=1, warmup=0, methods=("heavy", "heavy-tiled"))
    assert result.methods["heavy-tiled"].flops == result.methods["heavy"].flops
    assert result.ratio("heavy-tiled", "flops") == 1.0


def test_set_name_resolves_under_data_root(hr_dir: Path, tiny_model_path: Path) -> None:
    data = hr_dir.parent
    report = _bench_json(["Tiny", "--data", str(data), "--model", str(tiny_model_path), "--repeat", "1"])
    assert report["images"] == 2


def test_table_output(hr_dir: Path, tiny_model_path: Path) -> None:
    args = ["bench", str(hr_dir / "img1.png"), "--model", str(tiny_model_path), "--repeat", "1", "--threads", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for word in ("bicubic", "light", "medium", "heavy-tiled", "classsr", "ClassSR patches", "PSNR-Y", "×"):
        assert word in result.stdout
    assert f"inputs (1): {hr_dir / 'img1.png'}" in result.stdout
    from classsr_cli.bench import peak_mem_kind

    said = {"rss_sampled_delta": "the most resident memory above", "ru_maxrss_delta": "the rise of the process's peak"}
    caption = " ".join(result.stdout.split())  # the caption is wrapped to the terminal's width
    assert f"MB = {said[peak_mem_kind(torch.device('cpu'))]}" in caption and "_delta" not in caption  # not the JSON id


def test_default_benches_the_example_photos_not_earlier_outputs(
    hr_dir: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `classsr upscale examples/baby.png -x4 --classmap` leaves beside the photos is not HR ground truth.
    import shutil

    shutil.copy(hr_dir / "img0.png", hr_dir / "img0_x4.png")
    shutil.copy(hr_dir / "img0.png", hr_dir / "img0_x4_classmap.png")
    monkeypatch.setattr(lib, "examples_dir", lambda: hr_dir)
    result = runner.invoke(app, ["bench", "--model", str(tiny_model_path), "--json", "--repeat", "1", "--warmup", "0"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["inputs"] == [str(hr_dir / "img0.png"), str(hr_dir / "img1.png")] and report["images"] == 2
    assert "left out 2 earlier classsr output(s), not HR images: img0_x4.png, img0_x4_classmap.png" in result.stderr
    assert lib.find_images([hr_dir]) == [hr_dir / "img0.png", hr_dir / "img1.png"]  # a folder given too
    assert lib.find_images([hr_dir / "img0_x4.png"]) == [hr_dir / "img0_x4.png"]  # a file named alone is benched


def test_non_native_scale_runs_the_next_model_like_upscale(
    hr_dir: Path, tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(tiny_model_path, weights / "classsr_fsrcnn_x4.safetensors")  # no x3 model installed
    monkeypatch.setattr("classsr_cli.zoo.weights_dirs", lambda: [weights])
    args = ["bench", str(hr_dir / "img1.png"), "-x", "3", "--repeat", "1", "--warmup", "0", "--device", "cpu"]
    assert runner.invoke(app, ["upscale", str(hr_dir / "img1.png"), "-x", "3"]).exit_code == 0
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["scale"] == 3 and report["model_scale"] == 4
    assert report["megapixels"] == pytest.approx(174 * 201 / 1e6)  # mod-cropped to 3
    assert "not the model's scale" in result.stderr
    assert 0 < report["methods"]["classsr"]["ssim_y"] <= 1


def test_plot(hr_dir: Path, tiny_model_path: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "plot.png"
    args = [str(hr_dir / "img1.png"), "--model", str(tiny_model_path), "--repeat", "1", "--plot", str(png)]
    _bench_json(args)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_with_native_is_refused_before_running(hr_dir: Path, tiny_model_path: Path, tmp_path: Path) -> None:
    """A native run has no PSNR to plot: one line, exit 2, no empty plot written."""
    png = tmp_path / "plot.png"
    result = runner.invoke(app, ["bench", str(hr_dir), "--native", "--model", str(tiny_model_path), "--plot", str(png)])
    assert result.exit_code == 2 and result.stdout == "" and not png.exists()
    assert result.stderr.strip() == "error: --plot draws PSNR against time, and --native measures no PSNR: leave one of them out"


def test_a_plot_that_cannot_be_written_is_refused_before_running(
    hr_dir: Path, tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--plot photo.png/p.png` was an internal FileExistsError after every image had been timed: now one line,
    exit 1, before any is; so is a folder given as the plot."""
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(lib, "run_bench", lambda *a, **k: pytest.fail("timed before the plot was checked"))
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"x")
    for plot, said in ((photo / "p.png", f"{photo}: is a file, not a folder"),
                       (tmp_path, f"{tmp_path}: is a folder; --plot names the PNG file to write")):
        result = runner.invoke(app, ["bench", str(hr_dir), "--model", str(tiny_model_path), "--plot", str(plot)])
        assert result.exit_code == 1 and result.stdout == "" and result.stderr == f"error: {said}\n"


def test_plot_without_matplotlib_is_a_clear_error(
    hr_dir: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lib, "plot_available", lambda: False)
    args = ["bench", str(hr_dir), "--model", str(tiny_model_path), "--plot", "x.png"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "--plot needs matplotlib: pip install matplotlib" in result.output
    assert result.stdout == ""


def test_errors(tmp_path: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(lib, "examples_dir", lambda: empty)
    result = runner.invoke(app, ["bench", "--model", str(tiny_model_path)])
    assert result.exit_code == 1
    assert "holds none" in result.output
    result = runner.invoke(app, ["bench", "NoSuchSet", "--data", str(tmp_path), "--model", str(tiny_model_path)])
    assert result.exit_code == 1
    assert "NoSuchSet: no such file or folder" in result.output
    result = runner.invoke(app, ["bench", str(empty), "--model", str(tiny_model_path)])
    assert result.exit_code == 1 and result.stderr == f"error: {empty}: no images in this folder\n"
    (empty / "a.DNG").write_bytes(b"II*\0")  # what is there and not read, said as `classsr upscale` says it
    result = runner.invoke(app, ["bench", str(empty), "--model", str(tiny_model_path)])
    assert result.exit_code == 1 and result.stderr == (f"error: {empty}: no images in this folder; 1 .DNG not read "
                                                       "(camera RAW: develop them first and export 16-bit TIFF or PNG)\n")
    small = tmp_path / "small.png"
    from PIL import Image

    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(small)
    result = runner.invoke(app, ["bench", str(small), "--model", str(tiny_model_path)])
    assert result.exit_code == 1
    assert "too small" in result.output
    from classsr_cli.checkpoint import save_checkpoint
    from classsr_cli.config import ClassSRConfig
    from classsr_cli.models import build_model

    cfg = ClassSRConfig(family="fsrcnn", scale=2, widths=(4, 6, 8), extra={"s": 4, "m": 1}, classifier_width=8)
    x2 = save_checkpoint(build_model(cfg).eval(), tmp_path / "tiny_x2.safetensors")
    result = runner.invoke(app, ["bench", str(small), "-x", "4", "--model", str(x2)])
    assert result.exit_code == 2
    assert "x2 model" in result.output


def test_native_times_the_images_as_given_without_quality(hr_dir: Path, tiny_model_path: Path) -> None:
    """--native: the inputs are the LR (a user's photo), the output is x4 of them; no PSNR/SSIM, same FLOPs
    accounting and routing as a reference run on an LR of the same size."""
    report = _bench_json([str(hr_dir), "--model", str(tiny_model_path), "--repeat", "1", "--warmup", "0", "--native"])
    assert report["native"] is True and report["images"] == 2
    assert report["megapixels"] == pytest.approx(sum(h * 4 * w * 4 for h, w in SIZES) / 1e6)  # not mod-cropped
    grids = [plan_grid(h, w, 32, 28) for h, w in SIZES]
    for name, m in report["methods"].items():
        assert m["psnr_y"] is None and m["psnr_rgb"] is None and m["ssim_y"] is None, name
        assert m["seconds"] > 0 and m["mp_per_s"] == pytest.approx(report["megapixels"] / m["seconds"])
    assert sum(report["methods"]["classsr"]["patches"].values()) == sum(g.count for g in grids)
    ref = _bench_json([str(hr_dir), "--model", str(tiny_model_path), "--repeat", "1", "--warmup", "0"])
    assert ref["native"] is False and ref["methods"]["heavy"]["psnr_y"] is not None
    table = runner.invoke(app, ["bench", str(hr_dir), "--model", str(tiny_model_path), "--repeat", "1",
                                "--warmup", "0", "--native", "--device", "cpu", "--threads", "1"])
    assert table.exit_code == 0 and "nan" not in table.stdout


def test_methods_option_runs_only_those_in_table_order(hr_dir: Path, tiny_model_path: Path) -> None:
    got = _bench_json([str(hr_dir), "--model", str(tiny_model_path), "--repeat", "1", "--warmup", "0",
                       "--methods", "classsr, heavy"])
    assert list(got["methods"]) == ["heavy", "classsr"]
    result = runner.invoke(app, ["bench", str(hr_dir), "--model", str(tiny_model_path), "--methods", "heavy,fast"])
    assert result.exit_code == 2 and "unknown bench method(s) fast" in result.output


def test_the_repeat_help_names_the_spread_that_prints_the_note() -> None:
    # The CLI keeps torch out of --help, so its help text repeats lib.NOISY_SPREAD: they must agree.
    result = runner.invoke(app, ["bench", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    assert f"spread more than {lib.NOISY_SPREAD:g}x" in " ".join(result.stdout.split())


def test_set_names_ignore_case_and_a_missing_one_says_where_to_point(hr_dir: Path) -> None:
    """``set5`` finds Set5 (the README's spelling is not the only one); a name that matches nothing lists the sets
    that are there and names --data and $CLASSSR_DATA."""
    root = hr_dir.parent
    assert lib.find_images(["tiny"], root) == lib.find_images(["Tiny"], root) == sorted(hr_dir.glob("*.png"))
    (root / "tiny").mkdir()  # two folders differ only in case: no guess
    with pytest.raises(lib.InputError, match="no set of that name"):
        lib.find_images(["TINY"], root)
    with pytest.raises(lib.InputError, match=r"Set5: .*\(it holds Tiny, tiny\); point --data or \$CLASSSR_DATA"):
        lib.find_images(["Set5"], root)


def test_tta_runs_every_method_but_bicubic_as_the_mean_of_its_passes(hr_dir: Path, tiny_model: torch.nn.Module) -> None:
    """`bench --tta 8`: each branch's output is the mean over the 8 flips and transposes (checked against a mean
    made here with rot90 and flip), its FLOPs 8 times one pass's; the routed method's too; bicubic unchanged."""
    pairs = lib.load_pairs(lib.find_images([hr_dir]), 4)
    methods = ("bicubic", "heavy", "classsr")
    one = lib.run_bench(tiny_model, pairs, repeat=1, warmup=0, methods=methods)
    eight = lib.run_bench(tiny_model, pairs, repeat=1, warmup=0, methods=methods, tta=8)
    assert one.to_dict()["tta"] == 1 and eight.to_dict()["tta"] == 8
    expected = []
    for p in pairs:
        lr = torch.from_numpy(p.lr).permute(2, 0, 1)[None].float() / 255
        outs = []
        with torch.no_grad():
            for x in (lr, lr.transpose(-1, -2)):
                for turn in range(4):
                    y = tiny_model.branches[2](x.rot90(turn, (-2, -1))).rot90(-turn, (-2, -1))
                    outs.append(y if x is lr else y.transpose(-1, -2))
        expected.append(psnr(quantize(torch.stack(outs).mean(0)), p.hr, 4, y_channel=True))
    assert eight.methods["heavy"].psnr_y == pytest.approx(np.mean(expected), abs=1e-6)
    assert eight.methods["heavy"].psnr_y != pytest.approx(one.methods["heavy"].psnr_y, abs=1e-4)
    assert eight.methods["heavy"].flops == 8 * one.methods["heavy"].flops
    assert eight.methods["heavy"].flops_paper == 8 * one.methods["heavy"].flops_paper
    assert eight.methods["classsr"].flops > 7 * one.methods["classsr"].flops
    assert eight.methods["classsr"].patches == one.methods["classsr"].patches  # the untransformed pass's
    assert eight.methods["bicubic"].psnr_y == one.methods["bicubic"].psnr_y
    with pytest.raises(ConfigError, match="--tta"):
        lib.run_bench(tiny_model, pairs, repeat=1, warmup=0, methods=("heavy",), tta=3)
    result = runner.invoke(app, ["bench", str(hr_dir), "--tta", "3", "--device", "cpu"])
    assert result.exit_code == 2 and "--tta" in result.stderr


def test_the_record_says_which_tolerance_ran(hr_dir: Path, tmp_path: Path) -> None:
    """`bench --tolerance 0.2 --json` can be told from the default (it could not): the record carries it."""
    from classsr_cli.checkpoint import save_checkpoint
    from classsr_cli.config import ClassSRConfig
    from classsr_cli.models import build_model

    torch.manual_seed(0)
    cfg = ClassSRConfig("residual", 4, (0, 4, 6), {"depth": 1}, classifier_width=8, routing="deficit", tolerance=1.0)
    path = save_checkpoint(build_model(cfg).eval(), tmp_path / "deficit_x4.safetensors")
    args = [str(hr_dir / "img0.png"), "--model", str(path), "--repeat", "1", "--warmup", "0", "--methods", "classsr"]
    assert _bench_json(args)["tolerance"] is None
    assert _bench_json([*args, "--tolerance", "0.2"])["tolerance"] == 0.2


def test_native_bench_runs_a_large_photo_as_upscale_does(tmp_path: Path) -> None:
    """On the CPU upscale computes a large output in bands of 16 MiB, whose tile plans differ from the whole frame's
    (the same classes, other cells computed by a dearer branch); bench --native ran it whole, and so reported other
    counts and FLOPs than upscale spent (Set14's baboon as given: light 97 against 75). Now the same."""
    photo = Path(__file__).parent.parent / "examples" / "lighthouse.jpg"  # 1024x768: 144 MiB of x4 float output
    report = _bench_json([str(photo), "--native", "--repeat", "1", "--warmup", "0", "--methods", "classsr"])
    r = runner.invoke(app, ["upscale", str(photo), "-o", str(tmp_path / "l.png"), "--json", "--device", "cpu",
                            "--threads", "1"])  # fmt: skip
    assert r.exit_code == 0, r.output
    done = json.loads(r.stdout)
    bench = report["methods"]["classsr"]
    assert bench["patches"] == {k: done["patches"][k] for k in ("light", "medium", "heavy")}
    assert bench["flops"] == done["flops"]["used"]


def test_per_image_figures_average_to_the_means(hr_dir: Path, tiny_model_path: Path) -> None:
    """Each method's `per_image` (in the order of `inputs`) holds the figures its means are made of, and for the
    routed model each image's routing and FLOPs: a researcher's per-image comparison without a second tool."""
    report = _bench_json([str(hr_dir), "--model", str(tiny_model_path), "--repeat", "1", "--warmup", "0"])
    for name, m in report["methods"].items():
        rows = m["per_image"]
        assert len(rows) == report["images"] == len(report["inputs"]), name
        for key in ("psnr_y", "psnr_rgb", "ssim_y"):
            assert np.mean([r[key] for r in rows]) == pytest.approx(m[key], abs=1e-9), (name, key)
    routed = report["methods"]["classsr"]
    assert sum(r["flops"] for r in routed["per_image"]) == routed["flops"]
    assert {k: sum(r["patches"][k] for r in routed["per_image"]) for k in routed["patches"]} == routed["patches"]


def test_jpeg_saves_each_lr_as_jpeg_before_upscaling(hr_dir: Path, tiny_model: torch.nn.Module, tiny_model_path: Path,
                                                     tmp_path: Path) -> None:
    """--jpeg Q: the same HR, its LR the JPEG of the clean one at quality Q; the record says which; the quality of
    every method is measured on that LR; with --native (no LR made) or out of 1..100 it is refused in one line."""
    clean = lib.load_pairs(lib.find_images([hr_dir]), 4)
    pairs = lib.load_pairs(lib.find_images([hr_dir]), 4, jpeg=30)
    for a, b in zip(clean, pairs, strict=True):
        np.testing.assert_array_equal(a.hr, b.hr)
        np.testing.assert_array_equal(b.lr, jpeg_roundtrip(a.lr, 30))
        assert b.jpeg == 30 and a.jpeg is None
    args = [str(hr_dir), "--model", str(tiny_model_path), "--repeat", "1", "--warmup", "0", "--methods", "bicubic,heavy"]
    report, ref = _bench_json([*args, "--jpeg", "30"]), _bench_json(args)
    assert report["jpeg"] == 30 and ref["jpeg"] is None
    assert report["methods"]["bicubic"]["psnr_y"] < ref["methods"]["bicubic"]["psnr_y"]  # q30 loses detail
    result = lib.run_bench(tiny_model, pairs, repeat=1, warmup=0, methods=("heavy",))
    assert result.methods["heavy"].psnr_y == pytest.approx(report["methods"]["heavy"]["psnr_y"], abs=1e-9)
    table = runner.invoke(app, ["bench", *args, "--jpeg", "30", "--device", "cpu", "--threads", "1"])
    # the title wraps at the table's width, which follows the figures in it
    assert table.exit_code == 0 and "LR saved as JPEG q30" in " ".join(table.stdout.split())
    r = runner.invoke(app, ["bench", *args, "--jpeg", "30", "--native"])
    assert r.exit_code == 2 and r.stdout == "", r.output
    assert r.stderr.strip() == ("error: --jpeg compresses the LR bench makes, and --native upscales the images as "
                                "given: leave one of them out")
    r = runner.invoke(app, ["bench", *args, "--jpeg", "0"])
    assert r.exit_code == 2 and r.stdout == "" and "Invalid value for '--jpeg'" in r.stderr, r.stderr
    with pytest.raises(ConfigError, match=r"must lie in 1\.\.100, got 101"):
        lib.load_pairs(lib.find_images([hr_dir]), 4, jpeg=101)


def test_noise_adds_the_same_noise_to_each_lr_before_any_jpeg(hr_dir: Path, tiny_model_path: Path) -> None:
    """--noise SIGMA: the same HR, its LR the clean one plus luminance noise of that level (the same in R, G and B,
    the same in every run, different from image to image), saved as JPEG after it with --jpeg; the record and the
    table say so; with --native it is refused in one line, out of 0..50 too."""
    paths = lib.find_images([hr_dir])
    clean, noisy = lib.load_pairs(paths, 4), lib.load_pairs(paths, 4, noise=6)
    both = lib.load_pairs(paths, 4, jpeg=50, noise=6)
    deltas = []
    for a, b, c in zip(clean, noisy, both, strict=True):
        np.testing.assert_array_equal(a.hr, b.hr)
        d = b.lr.astype(np.int16) - a.lr.astype(np.int16)
        assert 4.5 < d.std() < 6.5 and (d[..., 0] == d[..., 1]).mean() > 0.95  # clipping aside, the same in every channel
        np.testing.assert_array_equal(c.lr, jpeg_roundtrip(b.lr, 50))
        assert (b.noise, b.jpeg, c.noise, c.jpeg, a.noise) == (6, None, 6, 50, None)
        deltas.append(d[:8, :8, 0])
    np.testing.assert_array_equal(lib.load_pairs(paths, 4, noise=6)[0].lr, noisy[0].lr)  # drawn from the name
    assert not np.array_equal(deltas[0], deltas[1])
    assert np.array_equal(add_noise(clean[0].lr, 0, 1), clean[0].lr)
    args = [str(hr_dir), "--model", str(tiny_model_path), "--repeat", "1", "--warmup", "0", "--methods", "bicubic"]
    report, ref = _bench_json([*args, "--noise", "6"]), _bench_json(args)
    assert report["noise"] == 6 and ref["noise"] is None and report["jpeg"] is None
    assert report["methods"]["bicubic"]["psnr_y"] < ref["methods"]["bicubic"]["psnr_y"] - 0.2
    table = runner.invoke(app, ["bench", *args, "--noise", "6", "--jpeg", "50", "--device", "cpu", "--threads", "1"])
    assert table.exit_code == 0 and "LR: noise σ6, JPEG q50" in " ".join(table.stdout.split())  # the title may wrap
    r = runner.invoke(app, ["bench", *args, "--noise", "6", "--native"])
    assert r.exit_code == 2 and r.stdout == "", r.output
    assert r.stderr.strip() == ("error: --noise adds noise to the LR bench makes, and --native upscales the images "
                                "as given: leave one of them out")
    r = runner.invoke(app, ["bench", *args, "--noise", "51"])
    assert r.exit_code == 2 and "Invalid value for '--noise'" in r.stderr, r.stderr
    with pytest.raises(ConfigError, match=r"must lie in 0\.\.50, got -1"):
        lib.load_pairs(paths, 4, noise=-1)
