"""Goldens of the shipped weights: a fixed crop of an example photo, upscaled by each shipped model (routed, at
its calibrated tolerance) and by its heavy branch alone, against the HR crop. A retrained or changed model, or
a change in the engine's numerics, moves these PSNRs; README and docs figures then need regenerating."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from classsr_cli.checkpoint import load_checkpoint
from classsr_cli.degrade import bicubic_resize, load_rgb, make_pair
from classsr_cli.engine import upscale_tensor
from classsr_cli.metrics import psnr, quantize
from classsr_cli.models.classsr import ClassSR

ROOT = Path(__file__).resolve().parents[1]
#: model -> (routed PSNR-Y, heavy-branch PSNR-Y, bicubic PSNR-Y) on the crop, dB, border = scale.
GOLDEN: dict[str, tuple[float, float, float]] = {
    "classsr_residual_x4": (35.638, 35.577, 33.722),
    "classsr_residual64_x4": (35.758, 35.758, 33.722),
    "classsr_residual_jpeg_x4": (35.002, 34.921, 33.722),
    "classsr_residual64_jpeg_x4": (35.214, 35.214, 33.722),
    "classsr_residual_noisy_x4": (34.51, 34.325, 33.722),
    "classsr_residual_noisy_x2": (38.477, 38.642, 38.846),
    "classsr_residual_jpeg_x2": (39.773, 39.889, 38.846),
    "classsr_residual_x2": (41.11, 41.144, 38.846),
    "classsr_residual64_x2": (41.255, 41.323, 38.846),
    "classsr_fsrcnn_x4": (35.07, 35.053, 33.722),
    "classsr_fsrcnn_x2": (39.089, 40.314, 38.846),
}
CROP = (slice(160, 352), slice(128, 320))  # 192x192 of examples/baby.png: face, eye, skin and fabric
#: Models trained to leave noise out, which smooth this clean crop's fine skin texture below bicubic at ×2 (on noisy
#: LR they beat it by 3 dB: :func:`test_the_model_trained_on_noisy_lr_leaves_the_noise_out`).
SMOOTHS_CLEAN = {"classsr_residual_noisy_x2"}
#: model -> (the classifier's mean output on the crop's top-left and bottom-right LR patches, the calibrated
#: default: per-patch price or tolerance, else the dB/levels² one). The crop's few cells take one branch whatever the
#: calibration, so this is what shows a retrained classifier or a new calibration.
ROUTER: dict[str, tuple[tuple[float, float, float], float]] = {
    "classsr_residual_x4": ((1.056, -0.578, 1.463), 14.678),
    "classsr_residual64_x4": ((1.127, 0.346, 1.385), 3.162),
    "classsr_residual_jpeg_x4": ((1.11, -0.992, 1.769), 26.102),
    "classsr_residual64_jpeg_x4": ((1.222, 0.398, 1.649), 4.642),
    "classsr_residual_noisy_x4": ((1.017, -1.001, 1.741), 26.102),
    "classsr_residual_noisy_x2": ((0.896, -0.245, 1.689), 3.831),
    "classsr_residual_jpeg_x2": ((0.837, -0.114, 1.718), 2.61),
    "classsr_residual_x2": ((0.266, -0.466, 0.838), 0.825),
    "classsr_residual64_x2": ((0.298, -0.214, 0.833), 0.825),
    "classsr_fsrcnn_x4": ((-3.493, 0.902, 1.593), 0.0),
    "classsr_fsrcnn_x2": ((-0.599, 0.398, 0.006), 0.0),
}


def crop_input(name: str) -> tuple[ClassSR, np.ndarray, np.ndarray, torch.Tensor]:
    """The shipped model, and the crop's HR, LR and LR tensor at its scale."""
    torch.set_num_threads(1)
    model = load_checkpoint(ROOT / "weights" / f"{name}.safetensors", expect_kind="classsr").module.eval()
    assert isinstance(model, ClassSR)
    hr, lr = make_pair(load_rgb(ROOT / "examples" / "baby.png")[CROP], model.cfg.scale)
    return model, hr, lr, torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255)


def measure(name: str) -> tuple[float, float, float]:
    model, hr, lr, x = crop_input(name)
    s = model.cfg.scale
    with torch.inference_mode():
        routed, _ = upscale_tensor(model, x)
        heavy = model.branches[2](x)
    bic = bicubic_resize(lr, *hr.shape[:2])
    return tuple(round(psnr(v, hr, s, y_channel=True), 3) for v in (quantize(routed), quantize(heavy), bic))  # type: ignore[return-value]


def routed_on(name: str, degrade: Callable[[np.ndarray], np.ndarray]) -> tuple[float, float, int]:
    """The shipped model routed on the crop's LR after ``degrade``, and bicubic of that LR: PSNR-Y (dB) against the
    HR crop (the model's rounded to 3 decimals), and the scale."""
    model, hr, lr, _ = crop_input(name)
    lr = degrade(lr)
    s = model.cfg.scale
    with torch.inference_mode():
        sr, _ = upscale_tensor(model, torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255))
    return (round(psnr(quantize(sr), hr, s, y_channel=True), 3),
            psnr(bicubic_resize(lr, *hr.shape[:2]), hr, s, y_channel=True), s)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_shipped_weights_reproduce_their_golden(name: str) -> None:
    got = measure(name)
    want = GOLDEN[name]
    assert got == pytest.approx(want, abs=0.01), f"{name}: {got} (recorded {want})"
    routed, heavy, bicubic = got
    if name in SMOOTHS_CLEAN:
        assert bicubic - 0.5 < routed < bicubic  # not a placeholder either (see the noisy-LR test)
    else:
        assert heavy > bicubic and routed > bicubic  # the model is not a placeholder


@pytest.mark.parametrize("name", sorted(ROUTER))
def test_shipped_routers_reproduce_their_golden(name: str) -> None:
    model, _, _, x = crop_input(name)
    with torch.inference_mode():
        out = model.classifier(torch.cat([x[..., :32, :32], x[..., -32:, -32:]])).mean(0)
    want, tolerance = ROUTER[name]
    assert tuple(out.tolist()) == pytest.approx(want, abs=0.002), f"{name}: {[round(v, 3) for v in out.tolist()]}"
    assert (model.cfg.cell_price or model.cfg.cell_tolerance or model.cfg.tolerance) == pytest.approx(tolerance, abs=0.001)


def test_every_shipped_model_has_a_golden() -> None:
    shipped = sorted(p.stem for p in (ROOT / "weights").glob("*.safetensors"))
    assert shipped and set(shipped) == set(GOLDEN) == set(ROUTER), (
        "record a golden for each file in weights/ (tests/test_weights.py)")


#: model -> its per-frame cap (dB) on the per-patch default; 0: none.
FRAME_CAP: dict[str, float] = {"classsr_residual_x4": 0.1, "classsr_residual64_x4": 0.1, "classsr_residual_x2": 0.1,
                              "classsr_residual64_x2": 0.1, "classsr_residual_jpeg_x4": 0.1,
                              "classsr_residual64_jpeg_x4": 0.1, "classsr_residual_noisy_x4": 0.1,
                              "classsr_residual_noisy_x2": 0.1, "classsr_residual_jpeg_x2": 0.1}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_shipped_frame_caps(name: str) -> None:
    model, *_ = crop_input(name)
    assert model.cfg.frame_cap_db == FRAME_CAP.get(name, 0.0)


def test_the_x4_default_s_cap_keeps_a_clean_smooth_picture_near_heavy() -> None:
    """scikit-image's clock (a clean, smooth grey picture; outside the training and validation sets) ×4: every
    error is small, so the price in levels² sends each cell to bicubic and loses 0.6 dB against heavy; the cap
    routes the frame by its budget instead (docs/experiments.md, twenty-sixth pass)."""
    from dataclasses import replace

    skimage_data = pytest.importorskip("skimage.data")
    model, *_ = crop_input("classsr_residual_x4")
    hr, lr = make_pair(np.stack([skimage_data.clock()] * 3, -1), 4)
    x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255)
    with torch.inference_mode():
        heavy = psnr(quantize(model.branches[2](x)), hr, 4, y_channel=True)
        capped, route = upscale_tensor(model, x)
        model.cfg = replace(model.cfg, frame_cap_db=0.0)
        uncapped, bare = upscale_tensor(model, x)
    assert bare.counts[0] > 0.9 * sum(bare.counts)  # without the cap: (nearly) every cell bicubic
    assert heavy - psnr(quantize(uncapped), hr, 4, y_channel=True) > 0.4
    assert route.counts[0] < bare.counts[0] and heavy - psnr(quantize(capped), hr, 4, y_channel=True) < 0.1


#: model -> routed PSNR-Y (dB) of the crop with its LR saved as JPEG at quality 40 (bicubic: 31.236 dB at ×4,
#: 35.047 dB at ×2).
COMPRESSED: dict[str, float] = {
    "classsr_residual_x4": 31.037,
    "classsr_residual_jpeg_x4": 31.719,
    "classsr_residual64_jpeg_x4": 31.729,
    "classsr_residual_x2": 34.641,
    "classsr_residual_jpeg_x2": 35.597,
}
COMPRESSED_BICUBIC = {4: 31.236, 2: 35.047}


def test_the_models_trained_on_compressed_lr_leave_its_blocks_out() -> None:
    """On LR saved as JPEG at quality 40, the models trained on compressed LR beat bicubic and the default; the
    default, trained on clean LR, sharpens the blocks and falls below bicubic. They record the recipe that says so."""
    from classsr_cli.degrade import jpeg_roundtrip
    from classsr_cli.zoo import lr_trained_on

    got = {}
    for name in COMPRESSED:
        got[name], bicubic, s = routed_on(name, lambda lr: jpeg_roundtrip(lr, 40))
        assert bicubic == pytest.approx(COMPRESSED_BICUBIC[s], abs=0.01)
    assert got == pytest.approx(COMPRESSED, abs=0.01)
    assert got["classsr_residual_jpeg_x4"] > 31.236 + 0.3 > got["classsr_residual_x4"] + 0.3
    assert got["classsr_residual_jpeg_x2"] > 35.047 + 0.3 > got["classsr_residual_x2"] + 0.3
    assert str(lr_trained_on(ROOT / "weights" / "classsr_residual_jpeg_x4.safetensors")) == "JPEG q30-95"
    assert str(lr_trained_on(ROOT / "weights" / "classsr_residual64_jpeg_x4.safetensors")) == "JPEG q30-95"
    assert str(lr_trained_on(ROOT / "weights" / "classsr_residual_jpeg_x2.safetensors")) == "JPEG q30-95"
    assert str(lr_trained_on(ROOT / "weights" / "classsr_residual_x4.safetensors")) == "clean"


#: model -> routed PSNR-Y (dB) of the crop with luminance noise of σ 8 levels on its LR (``add_noise(lr, 8, 0)``;
#: bicubic: 30.571 dB at ×4, 32.422 dB at ×2).
NOISY: dict[str, float] = {
    "classsr_residual_x4": 28.299,
    "classsr_residual_jpeg_x4": 30.598,
    "classsr_residual_noisy_x4": 32.998,
    "classsr_residual_x2": 29.018,
    "classsr_residual_noisy_x2": 35.74,
}
NOISY_BICUBIC = {4: 30.571, 2: 32.422}


def test_the_model_trained_on_noisy_lr_leaves_the_noise_out() -> None:
    """On LR with noise of σ 8 levels, the models trained on noisy LR beat bicubic by 2 dB (×4) and 3 dB (×2); the
    defaults, trained on clean LR, sharpen the noise and fall 2 and 3 dB below bicubic, the compressed-input model
    about level with it. They record the recipe that says so."""
    from classsr_cli.degrade import add_noise
    from classsr_cli.zoo import lr_trained_on

    got = {}
    for name in NOISY:
        got[name], bicubic, s = routed_on(name, lambda lr: add_noise(lr, 8, 0))
        assert bicubic == pytest.approx(NOISY_BICUBIC[s], abs=0.01)
    assert got == pytest.approx(NOISY, abs=0.01)
    assert got["classsr_residual_noisy_x4"] > 30.571 + 2 > got["classsr_residual_x4"] + 4
    assert got["classsr_residual_noisy_x2"] > 32.422 + 3 > got["classsr_residual_x2"] + 6
    for name in ("classsr_residual_noisy_x4", "classsr_residual_noisy_x2"):
        assert str(lr_trained_on(ROOT / "weights" / f"{name}.safetensors")) == "noise σ1-12, JPEG q30-95"
