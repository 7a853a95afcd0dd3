"""Dense routing labels (train/dense.py): per-LR-pixel errors of whole-image branches, window labels per cell."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from classsr_cli.models.classsr import DEFICIT_EPS
from classsr_cli.models.residual import ResidualSR
from classsr_cli.train.data import PatchData, prepare
from classsr_cli.train.dense import CellTargets, error_maps

SCALE, PATCH, STEP = 2, 32, 28


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> PatchData:
    hr = tmp_path_factory.mktemp("hr")
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([(96, 80), (100, 84), (80, 70)]):
        img = np.linspace(0, 200, w)[None, :, None] + rng.normal(0, 20 * i, (h, w, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(hr / f"p{i}.png")
    out = tmp_path_factory.mktemp("data")
    prepare([hr], out, scale=SCALE, patch=PATCH, step=16, factors=(1.0,), val_fraction=0)
    return PatchData(out)


def _y(t: torch.Tensor) -> torch.Tensor:
    return 65.481 * t[:, 0] + 128.553 * t[:, 1] + 24.966 * t[:, 2]


def test_error_maps_are_each_branchs_y_error_per_lr_pixel(data: PatchData) -> None:
    branches = [ResidualSR(width=0, scale=SCALE).eval(), nn.Upsample(scale_factor=SCALE, mode="nearest")]
    maps = error_maps(branches, data, torch.device("cpu"))
    assert maps.shape == (2, data.lr.numel() // 3) and maps.dtype == np.float16
    for i in range(len(data.images)):
        lr, hr = data.image(i)
        x = torch.from_numpy(lr.copy()).permute(2, 0, 1)[None].float() / 255
        ref = _y(torch.from_numpy(hr.copy()).permute(2, 0, 1)[None].float() / 255)
        start, (h, w) = int(data.images[i, 0]) // 3, lr.shape[:2]
        for k, net in enumerate(branches):
            with torch.no_grad():
                err = (_y(net(x).clamp(0, 1)) - ref).square()[0]
            want = err.view(h, SCALE, w, SCALE).mean(dim=(1, 3)).numpy()
            np.testing.assert_allclose(maps[k, start : start + h * w].reshape(h, w), want, rtol=2e-3, atol=1e-3)
    assert (maps[1] > maps[0]).mean() > 0.5  # nearest is worse than bicubic on most pixels


@pytest.mark.parametrize("budget", [False, True])
def test_a_windows_label_is_the_mean_deficit_of_its_centred_cell(data: PatchData, budget: bool) -> None:
    rng = np.random.default_rng(1)
    errors = rng.uniform(0, 50, (3, data.lr.numel() // 3)).astype(np.float16)
    targets = CellTargets(data, errors, STEP, 0, budget=budget)
    sizes = [tuple(int(v) for v in data.images[i, 2:4]) for i in range(len(data.images))]
    assert targets.windows == sum((h - PATCH + 1) * (w - PATCH + 1) for h, w in sizes)
    m = (PATCH - STEP) // 2
    for j, (y, x) in enumerate([(0, 0), (5, 3), (8, 16)]):
        i = j % len(sizes)
        h, w = sizes[i]
        y, x = min(y, h - PATCH), min(x, w - PATCH)
        lr, got = targets.gather(torch.tensor([i]), torch.tensor([y]), torch.tensor([x]))
        start = int(data.images[i, 0]) // 3
        e = errors[:, start : start + h * w].astype(np.float32).reshape(3, h, w)[:, y + m : y + m + STEP,
                                                                                x + m : x + m + STEP]
        d = (e[:2] - e[2:]).mean(axis=(1, 2))
        want = [np.log10(DEFICIT_EPS + max(0.0, float(v))) for v in d]
        want.append(np.log10(DEFICIT_EPS + float(e[2].mean())) if budget else np.log10(DEFICIT_EPS))
        np.testing.assert_allclose(got[0].numpy(), want, rtol=1e-4, atol=1e-4)
        crop = data.image(i)[0][y : y + PATCH, x : x + PATCH].astype(np.float32) / 255
        np.testing.assert_allclose(lr[0].permute(1, 2, 0).numpy(), crop, atol=1e-6)
    a = targets.sample(64, torch.Generator().manual_seed(3))
    b = targets.sample(64, torch.Generator().manual_seed(3))
    assert a[0].shape == (64, 3, PATCH, PATCH) and torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert len({tuple(t.tolist()) for t in a[1]}) > 32  # windows from all over the images
    with pytest.raises(ValueError, match="split"):
        CellTargets(data, errors, STEP, 1)  # nothing held out here
