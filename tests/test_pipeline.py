"""The image pipeline: model output to integer pixels, and large frames in bands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from classsr_cli.pipeline import Upscaler, _quantise


def test_quantise_in_place_gives_the_same_pixels_and_only_then_reuses_its_input() -> None:
    """round(clamp(x, 0, 1) * top) as HWC integers, from an HWC view of a CHW frame; ``inplace`` writes into ``x``
    (the pipeline's scratch model output), the default leaves it as it was."""
    torch.manual_seed(8)
    frame = torch.rand(3, 9, 11) * 1.4 - 0.2
    for top, dtype in ((255.0, np.uint8), (65535.0, np.uint16)):
        want = np.clip(np.round(frame.permute(1, 2, 0).double().numpy() * top), 0, top).astype(dtype)
        kept = frame.clone()
        got = _quantise(kept.permute(1, 2, 0), top, dtype)
        assert torch.equal(kept, frame)
        scratch = frame.clone()
        got_inplace = _quantise(scratch.permute(1, 2, 0), top, dtype, inplace=True)
        assert not torch.equal(scratch, frame)
        for out in (got, got_inplace):
            assert out.dtype == dtype and out.shape == (9, 11, 3) and out.flags.c_contiguous
            assert np.abs(out.astype(np.int64) - want.astype(np.int64)).max() <= 1  # float32 rounding of * top
        assert np.array_equal(got, got_inplace)


def test_quantise_into_an_array_writes_the_same_pixels_there() -> None:
    """``out``: the pixels land in the given array (8 bits directly, 16 through a copy), which is returned."""
    torch.manual_seed(9)
    frame = torch.rand(3, 5, 7) * 1.4 - 0.2
    for top, dtype in ((255.0, np.uint8), (65535.0, np.uint16)):
        want = _quantise(frame.clone().permute(1, 2, 0), top, dtype)
        dst = np.zeros((2, 5, 7, 3), dtype)
        got = _quantise(frame.clone().permute(1, 2, 0), top, dtype, inplace=True, out=dst[1])
        assert np.shares_memory(got, dst) and np.array_equal(dst[1], want) and not dst[0].any()


def _residual_upscaler(scale: float | None = None) -> Any:
    from test_cells import residual_model

    from classsr_cli.pipeline import Upscaler

    return Upscaler(residual_model(), scale=scale)


def test_large_frames_run_in_bands_that_upscale_array_assembles(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the CPU a frame whose float output passes twice ``BAND_BYTES`` comes in bands even when not asked to
    stream (``FrameRun(band_bytes=...)``); ``upscale_array`` quantises them into one array: the pixels of the
    bands, in order. A frame resampled to a smaller scale stays whole (the resize needs it)."""
    import classsr_cli.pipeline as pipeline

    pixels = np.random.default_rng(3).integers(0, 256, (150, 61, 3), dtype=np.uint8)
    up = _residual_upscaler()
    assert len(list(up.run(pixels))) == 1  # 6 cell rows of a small frame: one band at the real budget
    import classsr_cli.engine.defaults as defaults  # band_bytes_for: one budget for upscale, video and bench

    monkeypatch.setattr(defaults, "BAND_BYTES", 3 * 2 * 2 * 4 * 28 * 61)  # one cell row's float output, x2
    bands = list(up.run(pixels))
    assert [b.shape[0] for b in bands] == [224, 76]  # 1 row, rounded up to a block of 4 cell rows
    got = up.upscale_array(pixels)
    assert got.pixels.shape == (300, 122, 3) and np.array_equal(got.pixels, np.concatenate(bands))
    assert len(list(_residual_upscaler(scale=1.5).run(pixels))) == 1
    with pytest.raises(ValueError, match="into"):
        pipeline.PixelRun(up, pixels, up.router(), False, None, into=np.empty((300, 121, 3), np.uint8))


def test_a_bfloat16_model_keeps_16_bit_pictures_16_bit() -> None:
    """A smooth 16-bit gradient through a bfloat16 model: the bicubic base and the sum stay float32, so the output
    keeps the input's 16-bit steps (a bfloat16 base rounded them to 8 significant bits: banding) and differs from
    the float32 model's by a fraction of an 8-bit level."""
    from classsr_cli import zoo
    from classsr_cli.pipeline import Upscaler

    y, x = np.mgrid[0:40, 0:48]
    pixels = np.stack([x * 800 + 20000, y * 900 + 10000, x * 7 + y * 5 + 45000], -1).astype(np.uint16)
    model = zoo.load(None, 4).net.eval()  # the shipped x4 default: residuals as small as trained ones are
    want = Upscaler(model).upscale_array(pixels).pixels.astype(np.int64)
    got = Upscaler(model.to(torch.bfloat16)).upscale_array(pixels).pixels.astype(np.int64)
    # 16-bit levels: half an 8-bit one. The frame cap sends this clean gradient to the medium branch, whose
    # residual runs in bfloat16 (73 levels apart at most); the float32 base alone was 283 apart before the fix.
    assert got.dtype == want.dtype and np.abs(got - want).max() < 128
    assert len(np.unique(got[80, 16:-16, 0])) > 0.9 * len(np.unique(want[80, 16:-16, 0]))


def test_a_half_precision_overflow_is_an_error_not_a_black_picture(tmp_path: Path) -> None:
    """fp16 on some GPUs overflows into inf and NaN, which rounding turned into black or garbled pixels (PEERS.md,
    complaint 17): a band of a half-precision model's output that is not finite raises PrecisionError, and
    upscale_file writes nothing. Shown on the CPU with bfloat16 and a weight made infinite."""
    from classsr_cli import zoo
    from classsr_cli.errors import PrecisionError
    from classsr_cli.io.image import Picture, write_image
    from classsr_cli.pipeline import Upscaler, upscale_file

    model = zoo.load(None, 4).net.eval().to(torch.bfloat16)
    pixels = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    assert Upscaler(model).upscale_array(pixels).pixels.shape == (160, 192, 3)  # finite: fine
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("inf"))
    write_image(tmp_path / "in.png", Picture(pixels))
    with pytest.raises(PrecisionError, match=r"the model in bf16 gave values that are not finite \(an overflow\)"):
        upscale_file(Upscaler(model), tmp_path / "in.png", tmp_path / "out.png")
    assert not (tmp_path / "out.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]  # no partial file either


def test_the_python_api_takes_gray_arrays_and_raises_typed_errors(tiny_model_path: Path) -> None:
    """``Upscaler.upscale_array`` as docs/cli.md shows it: ``(H, W)`` gray in, ``(H', W')`` out; an empty, float or
    mis-sized-alpha input, an absent device and a NaN tolerance are ClassSR errors (they were IndexError,
    torch's RuntimeError or AssertionError, or a NaN accepted); ``Upscaler.of(..., scale=)`` overrides the scale."""
    from classsr_cli import zoo
    from classsr_cli.errors import ConfigError, InputError

    up = Upscaler.of(zoo.load(str(tiny_model_path), 4, device="cpu"))
    gray = np.arange(20 * 30, dtype=np.uint8).reshape(20, 30)
    out = up.upscale_array(gray).pixels
    assert out.shape == (80, 120)
    assert np.array_equal(out, up.upscale_array(gray[:, :, None]).pixels[:, :, 0])
    for pixels, alpha in ((np.zeros((0, 30, 3), np.uint8), None), (np.zeros((20, 30, 3), np.float32), None),
                          (np.zeros((20, 30, 3), np.uint8), np.zeros((10, 10), np.uint8)),
                          # an alpha of another dtype came back corrupted (float 0.5 as 0, int64 up to 318)
                          (np.zeros((20, 30, 3), np.uint8), np.full((20, 30), 0.5, np.float32)),
                          (np.zeros((20, 30, 3), np.uint8), np.full((20, 30), 200, np.int64)),
                          (np.zeros((20, 30, 3), np.uint8), np.ones((20, 30), bool)),
                          (Image.new("RGB", (30, 20)), None), ([[0, 1], [2, 3]], None)):  # AttributeError, before
        with pytest.raises(InputError):
            up.upscale_array(pixels, alpha)  # type: ignore[arg-type]
    for bad in (5, -1, True, "huge"):  # 5 was accepted and failed at run time; True meant medium
        with pytest.raises(ConfigError, match="unknown branch"):
            Upscaler(up.model, force_branch=bad)
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        zoo.load(str(tiny_model_path), 4, device="gpu")
    with pytest.raises(ConfigError, match="at least 0"):
        Upscaler(up.model, tolerance=float("nan"))
    assert Upscaler.of(zoo.load(str(tiny_model_path), 4), scale=3).scale == 3


def test_fill_hidden_replaces_the_colour_under_transparency_with_the_visible_colour_around_it() -> None:
    """Visible pixels keep their colour (a black shadow at alpha 80 stays black: straight alpha's colour is the
    colour); a fully transparent one takes the visible colour near it (a white logo on transparent black becomes
    white everywhere); an image with nothing visible, or a read-only array, is left as it is; 16 bits stay 16."""
    from classsr_cli.pipeline import fill_hidden

    yy, xx = np.mgrid[:30, :40]
    alpha = np.where((yy - 15) ** 2 + (xx - 20) ** 2 < 64, 255, 0).astype(np.uint8)
    pixels = np.zeros((30, 40, 3), np.uint8)
    pixels[alpha == 255] = (250, 200, 10)
    got = fill_hidden(pixels, alpha)
    assert got.dtype == np.uint8 and got.shape == pixels.shape
    assert (got == (250, 200, 10)).all()  # nothing else is visible: the fill is that colour everywhere
    # Two colours, left and right: each hidden pixel takes the nearer one's; opaque pixels are untouched.
    alpha = np.zeros((30, 40), np.uint8)
    alpha[:, :5], alpha[:, 35:] = 255, 255
    pixels = np.zeros((30, 40, 3), np.uint8)
    pixels[:, :5], pixels[:, 35:] = (255, 0, 0), (0, 0, 255)
    got = fill_hidden(pixels, alpha)
    assert np.array_equal(got[:, :5], pixels[:, :5]) and np.array_equal(got[:, 35:], pixels[:, 35:])
    assert (got[:, 6, 0] > got[:, 6, 2]).all() and (got[:, 33, 2] > got[:, 33, 0]).all()
    alpha[:, :5] = 80  # a shadow: seen at 80, its colour kept (it came out grey, blended with the fill)
    got = fill_hidden(pixels, alpha)
    assert np.array_equal(got[:, :5], pixels[:, :5]) and np.array_equal(got[:, 35:], pixels[:, 35:])
    deep = fill_hidden(pixels.astype(np.uint16) * 257, alpha.astype(np.uint16) * 257)
    assert deep.dtype == np.uint16 and np.abs(deep.astype(int) - got.astype(int) * 257).max() <= 257
    clear = np.zeros((30, 40), np.uint8)  # nothing visible (alpha as a mask or data): the colour kept
    assert np.array_equal(fill_hidden(pixels, clear), pixels)
    frozen = pixels.copy()
    frozen.flags.writeable = False
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warned of a non-writable array
        assert np.array_equal(fill_hidden(frozen, alpha), got)


def test_no_hidden_colour_bleeds_into_an_edge_with_the_shipped_model() -> None:
    """A white disc saved on transparent black, x4 with the shipped default and composited on white, stays white:
    its edge came out as a grey ring (darkest 136) when the hidden black went through the model."""
    from classsr_cli import zoo

    yy, xx = np.mgrid[:40, :48]
    alpha = np.where((yy - 20) ** 2 + (xx - 24) ** 2 < 15**2, 255, 0).astype(np.uint8)
    pixels = np.zeros((40, 48, 3), np.uint8)
    pixels[alpha == 255] = 255
    up = Upscaler.of(zoo.load(None, 4)).upscale_array(pixels, alpha)
    assert up.alpha is not None and 0 < up.alpha.mean() < 255
    a = up.alpha.astype(np.float64)[..., None] / 255
    composited = up.pixels * a + 255 * (1 - a)
    assert composited.min() >= 250


def test_a_compressed_jpeg_upscaled_by_a_clean_model_names_the_jpeg_model(
    tiny_model: torch.nn.Module, photo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JPEG below quality 90 upscaled by a model trained on clean LR gets one note naming the installed model
    trained on compressed LR; a better JPEG, a PNG, the JPEG model itself, or no JPEG model installed: none."""
    from dataclasses import replace

    from classsr_cli.checkpoint import load_checkpoint, save_checkpoint
    from classsr_cli.models import build_model
    from classsr_cli.pipeline import upscale_file

    weights = tmp_path / "weights"
    weights.mkdir()
    clean = save_checkpoint(tiny_model, weights / "clean_x4.safetensors", provenance={"recipe": {"jpeg_quality": []}})
    jpeg = save_checkpoint(tiny_model, weights / "classsr_residual_jpeg_x4.safetensors",
                           provenance={"recipe": {"jpeg_quality": [30, 95]}})
    monkeypatch.setenv("CLASSSR_WEIGHTS", str(weights))
    monkeypatch.setattr("classsr_cli.zoo.shipped_weights_dirs", lambda: [])  # only what this test installs
    pixels = np.asarray(Image.open(photo).convert("RGB"))
    for q in (60, 95):
        Image.fromarray(pixels).save(tmp_path / f"q{q}.jpg", quality=q)

    def notes(model: Path, src: Path) -> list[str]:
        up = Upscaler(tiny_model, model_path=model)
        out = tmp_path / "out" / f"{model.stem}_{src.stem}.png"
        return [n for n in upscale_file(up, src, out, overwrite=True).notes if "JPEG" in n]

    assert notes(clean, tmp_path / "q60.jpg") == [
        "saved as JPEG at quality 60: this model sharpens compression blocks as detail; --model "
        "classsr_residual_jpeg_x4 is trained to leave them out"]
    assert notes(clean, tmp_path / "q95.jpg") == [] and notes(clean, photo) == []
    assert notes(jpeg, tmp_path / "q60.jpg") == []
    x2 = save_checkpoint(build_model(replace(tiny_model.cfg, scale=2)).eval(), weights / "clean_x2.safetensors",
                         provenance={"recipe": {"jpeg_quality": []}})
    up = Upscaler(load_checkpoint(x2).module.eval(), model_path=x2)  # x2 runs the x4 JPEG model, as -x 2 would
    note = [n for n in upscale_file(up, tmp_path / "q60.jpg", tmp_path / "out" / "x2.png", overwrite=True).notes
            if "JPEG" in n]
    assert note and note[0].endswith("--model classsr_residual_jpeg_x4 is trained to leave them out")
    save_checkpoint(build_model(replace(tiny_model.cfg, scale=2)).eval(), weights / "classsr_residual_jpeg_x2.safetensors",
                    provenance={"recipe": {"jpeg_quality": [30, 95]}})  # a x2 one is named before the x4 one
    note = [n for n in upscale_file(up, tmp_path / "q60.jpg", tmp_path / "out" / "x2.png", overwrite=True).notes
            if "JPEG" in n]
    assert note and note[0].endswith("--model classsr_residual_jpeg_x2 is trained to leave them out")
    jpeg.rename(tmp_path / "elsewhere.safetensors")
    assert notes(clean, tmp_path / "q60.jpg") == []


def test_a_noisy_picture_gets_one_note_naming_the_model_trained_on_noise(
    tiny_model: torch.nn.Module, photo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A picture whose noise estimate reaches NOISE_NOTE_FROM, upscaled by a model not trained on noise (clean or
    JPEG), gets one note naming the installed noisy model (at x2 a x2 one before the x4 one), in place of the JPEG
    note; the noisy model itself, a clean picture, or no noisy model installed: none. The noisy model on a picture
    that looks clean says the default keeps its detail."""
    from classsr_cli.checkpoint import save_checkpoint
    from classsr_cli.degrade import add_noise
    from classsr_cli.metrics import noise_level
    from classsr_cli.pipeline import CLEAN_NOTE_BELOW, NOISE_NOTE_FROM, NOISE_NOTE_JPEG_FROM, upscale_file

    weights = tmp_path / "weights"
    weights.mkdir()
    clean = save_checkpoint(tiny_model, weights / "clean_x4.safetensors", provenance={"recipe": {"jpeg_quality": []}})
    jpeg = save_checkpoint(tiny_model, weights / "classsr_residual_jpeg_x4.safetensors",
                           provenance={"recipe": {"jpeg_quality": [30, 95]}})
    noisy = save_checkpoint(tiny_model, weights / "classsr_residual_noisy_x4.safetensors",
                            provenance={"recipe": {"jpeg_quality": [30, 95], "noise_sigma": [1, 12]}})
    monkeypatch.setenv("CLASSSR_WEIGHTS", str(weights))
    smooth = np.asarray(Image.open(photo).convert("RGB").resize((96, 96), Image.Resampling.BICUBIC))
    grainy = add_noise(smooth, 10, 0)
    assert noise_level(smooth) < NOISE_NOTE_FROM <= noise_level(grainy)
    Image.fromarray(smooth).save(tmp_path / "smooth.png")
    Image.fromarray(grainy).save(tmp_path / "grainy.png")
    Image.fromarray(grainy).save(tmp_path / "grainy.jpg", quality=85)
    assert noise_level(np.asarray(Image.open(tmp_path / "grainy.jpg"))) >= NOISE_NOTE_FROM

    def notes(model: Path, src: Path) -> list[str]:
        up = Upscaler(tiny_model, model_path=model)
        out = tmp_path / "out" / f"{model.stem}_{src.stem}.png"
        return [n for n in upscale_file(up, src, out, overwrite=True).notes if "model" in n]

    said = "looks noisy: this model sharpens noise as detail; --model classsr_residual_noisy_x4 is trained to leave it out"
    assert notes(clean, tmp_path / "grainy.png") == [said]
    assert notes(clean, tmp_path / "grainy.jpg") == [said]  # one note, not the JPEG one as well
    # A JPEG's compression smooths noise out of the flat blocks the estimate reads: below quality 90 the note fires
    # from NOISE_NOTE_JPEG_FROM, so a noisy web JPEG is sent to the noisy model, not the JPEG one; the same pixels in a
    # PNG, and a clean JPEG of the same quality, are not said to be noisy.
    Image.fromarray(add_noise(smooth, 8, 1)).save(tmp_path / "web.jpg", quality=75)
    web = np.asarray(Image.open(tmp_path / "web.jpg"))
    assert NOISE_NOTE_JPEG_FROM <= noise_level(web) < NOISE_NOTE_FROM
    assert notes(clean, tmp_path / "web.jpg") == [said]
    Image.fromarray(web).save(tmp_path / "web.png")
    assert notes(clean, tmp_path / "web.png") == []
    # A palette picture (a GIF, a PNG-8): its dithering reads as noise, but there the noisy model is the worst choice
    # (scripts/dithered_gif.py): no note, where the same pixels in RGB get it.
    Image.fromarray(grainy).quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(tmp_path / "grainy.gif")
    dithered = np.asarray(Image.open(tmp_path / "grainy.gif").convert("RGB"))
    assert noise_level(dithered) >= NOISE_NOTE_FROM and notes(clean, tmp_path / "grainy.gif") == []
    Image.fromarray(dithered).save(tmp_path / "dithered.png")
    assert notes(clean, tmp_path / "dithered.png") == [said]
    Image.fromarray(smooth).save(tmp_path / "clean75.jpg", quality=75)
    assert noise_level(np.asarray(Image.open(tmp_path / "clean75.jpg"))) < NOISE_NOTE_JPEG_FROM
    assert [n[:30] for n in notes(clean, tmp_path / "clean75.jpg")] == ["saved as JPEG at quality 75: t"]
    # The other way round: the noisy model on a picture that looks clean smooths its detail away, and says so; not on
    # a noisy one, nor on a JPEG below quality 90 (its compression hides noise from the estimate).
    assert noise_level(smooth) < CLEAN_NOTE_BELOW <= noise_level(add_noise(smooth, 2, 0))
    looks_clean = ("looks clean: this model is trained on noisy input and smooths fine detail away; the default model "
                   "(without --model) keeps it")
    assert notes(noisy, tmp_path / "smooth.png") == [looks_clean]
    Image.fromarray(smooth).save(tmp_path / "q95.jpg", quality=95)
    assert notes(noisy, tmp_path / "q95.jpg") == [looks_clean]
    assert notes(noisy, tmp_path / "clean75.jpg") == [] and notes(noisy, tmp_path / "grainy.png") == []
    assert not [n for n in notes(clean, tmp_path / "smooth.png") if "looks clean" in n]
    assert notes(jpeg, tmp_path / "grainy.png") == [said]
    assert notes(noisy, tmp_path / "grainy.jpg") == [] and notes(clean, tmp_path / "smooth.png") == []
    bare = Upscaler(tiny_model)  # no recipe known (a module, a converted file): not said to sharpen anything
    assert [n for n in upscale_file(bare, tmp_path / "grainy.jpg", tmp_path / "out" / "bare.png").notes if "model" in n] == []
    noisy.rename(tmp_path / "elsewhere.safetensors")
    monkeypatch.setattr("classsr_cli.zoo.shipped_weights_dirs", lambda: [])
    assert notes(clean, tmp_path / "grainy.png") == []
    assert "JPEG at quality 85" in notes(clean, tmp_path / "grainy.jpg")[0]  # the JPEG note again
    # At x2 the x4 noisy model is named (run at x4 and downscaled) until a x2 one is installed.
    from dataclasses import replace

    from classsr_cli.checkpoint import load_checkpoint
    from classsr_cli.models import build_model

    (tmp_path / "elsewhere.safetensors").rename(weights / "classsr_residual_noisy_x4.safetensors")
    x2 = save_checkpoint(build_model(replace(tiny_model.cfg, scale=2)).eval(), weights / "clean_x2.safetensors",
                         provenance={"recipe": {"jpeg_quality": []}})
    up2 = Upscaler(load_checkpoint(x2).module.eval(), model_path=x2)

    def notes_x2() -> list[str]:
        out = upscale_file(up2, tmp_path / "grainy.png", tmp_path / "out" / "x2.png", overwrite=True)
        return [n for n in out.notes if "model" in n]

    assert notes_x2() == [said]
    save_checkpoint(build_model(replace(tiny_model.cfg, scale=2)).eval(), weights / "classsr_residual_noisy_x2.safetensors",
                    provenance={"recipe": {"jpeg_quality": [30, 95], "noise_sigma": [1, 12]}})
    assert notes_x2() == [said.replace("noisy_x4", "noisy_x2")]


def _fine_texture(size: int = 96) -> np.ndarray:
    """A clean picture of fine texture whose amplitude doubles every 8 columns: its flattest blocks read as light
    noise, its flattest tenth as much more (texture, not noise)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    texture = np.rint(128 + 14 * 2 ** (x / 8) * np.sin(x * 1.3) * np.sin(y * 1.1))
    return np.repeat(np.clip(texture, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def test_a_lightly_noisy_picture_gets_a_note_naming_the_model_trained_on_jpeg(
    tiny_model: torch.nn.Module, photo: Path, tmp_path: Path, install: Callable[..., dict[str, Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A picture that reads below NOISE_NOTE_FROM but from LIGHT_NOISE_FROM at its flattest blocks, with its flattest
    tenth alike (noise, not texture), upscaled by a model trained on clean LR, gets one note naming the JPEG model;
    not a clean picture, fine texture, a palette picture, the JPEG or noisy model itself, nor where no JPEG model is
    installed. ``--model auto`` and the notes measure a picture's noise once."""
    from classsr_cli import metrics
    from classsr_cli.checkpoint import save_checkpoint
    from classsr_cli.degrade import add_noise
    from classsr_cli.metrics import noise_levels
    from classsr_cli.pipeline import (
        LIGHT_NOISE_FROM,
        LIGHT_NOISE_SHARE,
        LIGHT_NOISE_TEXTURE,
        NOISE_NOTE_FROM,
        AutoModel,
        upscale_file,
    )

    paths = install("classsr_residual_jpeg_x4", "classsr_residual_noisy_x4")
    weights = paths["classsr_residual_jpeg_x4"].parent
    clean = save_checkpoint(tiny_model, weights / "clean_x4.safetensors", provenance={"recipe": {"jpeg_quality": []}})
    jpeg = save_checkpoint(tiny_model, paths["classsr_residual_jpeg_x4"], provenance={"recipe": {"jpeg_quality": [30, 95]}})
    noisy = save_checkpoint(tiny_model, paths["classsr_residual_noisy_x4"],
                            provenance={"recipe": {"jpeg_quality": [30, 95], "noise_sigma": [1, 12]}})
    smooth = np.asarray(Image.open(photo).convert("RGB").resize((96, 96), Image.Resampling.BICUBIC))
    light, texture = add_noise(smooth, 4, 0), _fine_texture()
    flattest, tenth = noise_levels(light, (LIGHT_NOISE_SHARE, 0.1))
    assert flattest >= LIGHT_NOISE_FROM and tenth <= LIGHT_NOISE_TEXTURE * flattest
    assert noise_levels(light, (0.02,))[0] < NOISE_NOTE_FROM
    flattest, tenth = noise_levels(texture, (LIGHT_NOISE_SHARE, 0.1))
    assert flattest >= LIGHT_NOISE_FROM and tenth > LIGHT_NOISE_TEXTURE * flattest
    for name, pixels in {"light.png": light, "smooth.png": smooth, "texture.png": texture}.items():
        Image.fromarray(pixels).save(tmp_path / name)
    Image.fromarray(light).quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(tmp_path / "light.gif")

    def notes(model: Path, src: str) -> list[str]:
        up = Upscaler(tiny_model, model_path=model)
        out = tmp_path / "out" / f"{model.stem}_{src}.png"
        return [n for n in upscale_file(up, tmp_path / src, out, overwrite=True).notes if "model" in n]

    said = "looks lightly noisy: this model sharpens the noise as detail; --model classsr_residual_jpeg_x4 leaves light noise out"
    assert notes(clean, "light.png") == [said]
    for src in ("smooth.png", "texture.png", "light.gif"):
        assert notes(clean, src) == [], src
    assert notes(jpeg, "light.png") == [] and notes(noisy, "light.png") == []
    # --model auto and the notes after it measure each picture's noise once, each picture its own
    calls: list[int] = []
    measure = metrics.noise_levels
    monkeypatch.setattr(metrics, "noise_levels", lambda *a, **k: calls.append(1) or measure(*a, **k))
    auto = AutoModel(lambda name: Upscaler(tiny_model, model_path=clean if name is None else paths[name]),
                     lambda h, w, name: 4.0)
    for src, model in (("smooth.png", clean), ("light.png", jpeg), ("texture.png", clean)):
        calls.clear()
        result = upscale_file(auto, tmp_path / src, tmp_path / "out" / f"auto_{src}", overwrite=True)
        assert result.model == model and len(calls) == 1, src
    jpeg.unlink()
    assert notes(clean, "light.png") == []


def test_an_enlarging_upscaler_is_the_model_then_a_bicubic_enlargement(tiny_model: torch.nn.Module) -> None:
    """``enlarge`` (``classsr video`` above x4): the model's own x4, then the frame enlarged to ``round(scale * size)``
    by the resize the downscales use, its FLOPs counted; without it a factor above the model's is refused, with it one
    above 4x that."""
    from classsr_cli.degrade import bicubic_resize
    from classsr_cli.errors import ConfigError

    rng = np.random.default_rng(0)
    pic = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    native = Upscaler(tiny_model).upscale_array(pic).pixels
    up = Upscaler(tiny_model, scale=6, enlarge=True)
    assert up.resampled and up.output_size(12, 10) == (72, 60)
    got = up.upscale_array(pic)
    assert got.pixels.shape == (72, 60, 3) and got.route.counts == Upscaler(tiny_model).upscale_array(pic).route.counts
    assert np.abs(got.pixels.astype(int) - bicubic_resize(native, 72, 60)).mean() < 2  # the x4 output, enlarged
    assert Upscaler(tiny_model, scale=6, enlarge=True).at_scale(8).output_size(12, 10) == (96, 80)
    # The enlargement's FLOPs are counted, in what was used and in both baselines (which need it too): each output
    # pixel's 4 taps from the 48x40 output, the rows (48 x 60) then the columns (72 x 60), 3 channels, 2 FLOPs a tap.
    resize = 2 * 3 * (48 * 60 * 4 + 72 * 60 * 4)
    before, after = Upscaler(tiny_model).upscale_array(pic).route.flops, got.route.flops
    assert (after.used, after.heavy, after.whole) == (before.used + resize, before.heavy + resize, before.whole + resize)
    down = Upscaler(tiny_model, scale=3).upscale_array(pic).route.flops  # shrinking 48 -> 36: antialiased, 6 taps
    assert down.used == before.used + 2 * 3 * (48 * 30 * 6 + 36 * 30 * 6)
    # An alpha's resize is counted too (one plane, 12x10 -> 48x40: 4 taps a pixel each way), a constant one not (it
    # is repeated); the colour's routing is the same.
    alpha = np.full((12, 10), 255, np.uint8)
    assert Upscaler(tiny_model).upscale_array(pic, alpha).route.flops == before
    alpha[:4] = 90
    veiled = Upscaler(tiny_model).upscale_array(pic, alpha).route
    resize = 2 * (12 * 40 * 4 + 48 * 40 * 4)
    assert (veiled.flops.used, veiled.flops.whole) == (before.used + resize, before.whole + resize)
    with pytest.raises(ConfigError, match="at most 4, got 6"):
        Upscaler(tiny_model, scale=6)
    with pytest.raises(ConfigError, match="got 17"):
        Upscaler(tiny_model, scale=17, enlarge=True)


def test_model_auto_picks_what_the_notes_would_name_and_loads_each_model_once(
    tiny_model: torch.nn.Module, photo: Path, tmp_path: Path, install: Callable[..., dict[str, Path]]
) -> None:
    """``--model auto`` (:func:`suited_model`, :class:`AutoModel`): a noisy picture gets the noisy-input model (a
    noisy JPEG below quality 90 too, from the lower threshold), a clean JPEG below 90 and a lightly noisy picture the
    JPEG model, a clean picture, fine texture, a JPEG at 95 and a dithered palette picture the default; a model that is not installed is not picked. Each model
    is made once, and the note and the result say which ran."""
    from classsr_cli.degrade import add_noise
    from classsr_cli.io.image import read_image
    from classsr_cli.pipeline import AutoModel, suited_model, upscale_file

    paths = install("classsr_residual_x4", "classsr_residual_jpeg_x4", "classsr_residual_noisy_x4")
    smooth = np.asarray(Image.open(photo).convert("RGB").resize((96, 96), Image.Resampling.BICUBIC))
    grainy = add_noise(smooth, 10, 0)
    Image.fromarray(grainy).save(tmp_path / "grainy.png")
    Image.fromarray(add_noise(smooth, 8, 1)).save(tmp_path / "web.jpg", quality=75)
    Image.fromarray(smooth).save(tmp_path / "clean75.jpg", quality=75)
    Image.fromarray(smooth).save(tmp_path / "q95.jpg", quality=95)
    Image.fromarray(smooth).save(tmp_path / "smooth.png")
    Image.fromarray(grainy).quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(tmp_path / "grainy.gif")
    Image.fromarray(add_noise(smooth, 4, 0)).save(tmp_path / "light.png")
    Image.fromarray(_fine_texture()).save(tmp_path / "texture.png")
    want = {"grainy.png": "classsr_residual_noisy_x4", "web.jpg": "classsr_residual_noisy_x4",
            "clean75.jpg": "classsr_residual_jpeg_x4", "light.png": "classsr_residual_jpeg_x4", "q95.jpg": None,
            "smooth.png": None, "texture.png": None, "grainy.gif": None}
    for name, model in want.items():
        assert suited_model(read_image(tmp_path / name), 4)[0] == model, name
    made: list[str | None] = []

    def make(name: str | None) -> Upscaler:
        made.append(name)
        return Upscaler(tiny_model, model_path=paths[name or "classsr_residual_x4"])

    auto = AutoModel(make, lambda h, w, name: 4.0)
    for name, model in want.items():
        result = upscale_file(auto, tmp_path / name, tmp_path / "out" / f"{name}.png")
        said = [n for n in result.notes if n.startswith("--model auto: ")]
        assert said == [f"--model auto: {model or 'the default model'} ({suited_model(read_image(tmp_path / name), 4)[1]})"]
        assert result.model == paths[model or "classsr_residual_x4"]
        assert not [n for n in result.notes if "is trained to leave" in n]  # the note's advice is what ran
    assert sorted(made, key=str) == sorted([None, "classsr_residual_jpeg_x4", "classsr_residual_noisy_x4"], key=str)
    paths["classsr_residual_noisy_x4"].unlink()
    assert suited_model(read_image(tmp_path / "grainy.png"), 4)[0] is None
    assert suited_model(read_image(tmp_path / "web.jpg"), 4)[0] == "classsr_residual_jpeg_x4"
