"""classsr_cli.engine.bands: the same output whatever the batch size, bands of patch rows equal to the whole frame,
and memory bounded per band (fuzzed, issue 7)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from test_tiling import FUZZ, frames

from classsr_cli.config import ClassSRConfig
from classsr_cli.engine import FrameRun, upscale_tensor
from classsr_cli.engine.stitching import BLEND_MODES
from classsr_cli.engine.tiling import plan_grid
from classsr_cli.models import build_model


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
