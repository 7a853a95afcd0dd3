"""classsr_cli.engine.tiling (with the stitcher): a fuzzed grid covers every pixel, and a pointwise branch goes
through tile and stitch unchanged (issue 7)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classsr_cli.engine.stitching import BLEND_MODES, stitch
from classsr_cli.engine.tiling import extract_patches, plan_grid

FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
MAX_SIDE = 16  # patches per axis in the fuzzed grids (keeps each example small)


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
