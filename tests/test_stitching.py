"""classsr_cli.engine.stitching: crop (halo) stitching, exact where the halo covers the receptive field, streamed
into the frame through CropCanvas, and equal whole or in bands (issue 6)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import requires_data
from test_fsrcnn import _fsrcnn

from classsr_cli.engine.stitching import stitch
from classsr_cli.engine.tiling import extract_patches, plan_grid
from classsr_cli.models.fsrcnn import FSRCNN, receptive_radius


@pytest.mark.parametrize(
    ("h", "w", "step"), [(50, 70, 28), (32, 32, 28), (10, 7, 28), (100, 90, 32), (61, 45, 17), (40, 33, 31)]
)
def test_crop_stitch_pointwise_is_bit_exact(h: int, w: int, step: int) -> None:
    """A pointwise branch (per-pixel colour map + nearest upsampling) gives exactly the whole-frame result.

    The map is exact in floating point (a power-of-two product and one addition), so the comparison does not
    depend on how vectorised kernels round on differently shaped inputs."""
    x = torch.rand(1, 3, h, w)
    grid = plan_grid(h, w, 32, step)

    def branch(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t.flip(1) * 2 + 0.25, scale_factor=4, mode="nearest")

    got = stitch(branch(extract_patches(x, grid)), grid, 4, "crop")
    assert torch.equal(got, branch(x))


def _tiled(net: FSRCNN, x: torch.Tensor, step: int, mode: str = "crop") -> torch.Tensor:
    grid = plan_grid(x.shape[2], x.shape[3], 32, step)
    with torch.inference_mode():
        return stitch(net(extract_patches(x, grid)), grid, net.scale, mode)


def test_crop_stitch_exact_when_halo_covers_receptive_field() -> None:
    net = _fsrcnn(4, m=1)
    r = receptive_radius(4, m=1)  # 4: overlap 2r = 8 -> step 24
    x = torch.rand(1, 3, 70, 83)
    with torch.inference_mode():
        whole = net(x)
    got = _tiled(net, x, 32 - 2 * r)
    b = 4 * r  # the right and bottom border: the tiler pads there by reflection, the whole frame by zeros
    torch.testing.assert_close(got[..., :-b, :-b], whole[..., :-b, :-b], atol=1e-5, rtol=1e-5)


def test_crop_stitch_differs_only_at_seams() -> None:
    """With a halo below the receptive radius (step 28: 2 LR px), differences are confined to the HR pixels
    within the radius of a cut, and bounded."""
    net = _fsrcnn(4, m=1)
    r, s, step = receptive_radius(4, m=1), 4, 28
    x = torch.rand(1, 3, 90, 90)
    with torch.inference_mode():
        whole = net(x)
    got = _tiled(net, x, step)
    diff = (got - whole).abs()[0].amax(0)[: 80 * s, : 80 * s]
    # The cut between patches k-1 and k lies at LR k*step + lo; a block farther than r from every cut sees
    # only pixels of the patch it comes from, as in the whole frame.
    lo = (32 - step) // 2
    near = torch.zeros(80, dtype=torch.bool)
    for k in range(1, 4):
        cut = k * step + lo
        near[cut - r : cut + r] = True
    near_hr = near.repeat_interleave(s)
    quiet = diff[~near_hr][:, ~near_hr]
    assert quiet.max() < 1e-5
    assert diff.max() < 0.5 * whole.abs().max()


def test_engine_crop_blend_runs(tiny_model: torch.nn.Module) -> None:
    from classsr_cli.engine import upscale_tensor

    x = torch.rand(1, 3, 45, 60)
    sr, route = upscale_tensor(tiny_model, x, blend="crop")
    assert sr.shape == (1, 3, 180, 240)
    assert route.grid.count == route.classes.numel()


def test_crop_canvas_any_order_equals_stitch() -> None:
    from classsr_cli.engine.stitching import CropCanvas

    grid = plan_grid(70, 95, 32, 28)
    patches = torch.rand(grid.count, 3, 128, 128)
    canvas = CropCanvas(grid, 4, patches)
    for chunk in torch.randperm(grid.count).split(5):
        canvas.put(chunk, patches[chunk])
    assert torch.equal(canvas.image(), stitch(patches, grid, 4, "crop"))


def test_engine_crop_streams_into_the_frame(tiny_model: torch.nn.Module) -> None:
    """upscale_tensor(blend="crop") puts every branch chunk straight into the frame; same as stitching after."""
    from classsr_cli.engine import upscale_tensor

    x = torch.rand(1, 3, 77, 61)
    sr, route = upscale_tensor(tiny_model, x, blend="crop", batch_size=7)
    grid = route.grid
    with torch.inference_mode():
        out, _ = tiny_model.forward_routed(extract_patches(x, grid), classes=route.classes.flatten())
    assert torch.equal(sr, stitch(out, grid, 4, "crop"))


def test_banded_crop_equals_whole_crop(tiny_model: torch.nn.Module) -> None:
    """Strip-wise processing (FrameRun bands) with crop stitching gives the whole-frame crop result."""
    from classsr_cli.engine import FrameRun, upscale_tensor

    x = torch.rand(1, 3, 150, 41)
    whole, route = upscale_tensor(tiny_model, x, blend="crop")
    run = FrameRun(tiny_model, x, blend="crop", band_rows=2)
    rows = [band.rows.clone() for band in run]
    assert torch.equal(torch.cat(rows, dim=2), whole)
    assert torch.equal(run.result.classes, route.classes)


@pytest.mark.data
@requires_data("val", "Set5", "baby.png")
def test_crop_stitch_on_a_photo_is_close_to_whole_image() -> None:
    """A paper-depth FSRCNN (m = 4, receptive radius 7) on a real photo at step 28 (halo 2): crop stitching
    differs from the whole-image output only within the receptive radius of a cut, and on average by less than
    feathering does (as measured with trained weights on SunHays80/B100/Urban100, docs/history.md)."""
    import numpy as np
    from conftest import DATA
    from PIL import Image

    img = np.asarray(Image.open(DATA / "val" / "Set5" / "baby.png").convert("RGB"))[:128, :160]
    x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float().div(255)
    net = _fsrcnn(4, d=16, m=4)
    r, step, s = receptive_radius(4), 28, 4
    with torch.inference_mode():
        whole = net(x)
    n = 112  # LR rows/columns checked: away from the right/bottom border (reflection padding)
    crop = (_tiled(net, x, step, "crop") - whole)[0, :, : n * s, : n * s].abs().amax(0)
    feather = (_tiled(net, x, step, "feather") - whole)[0, :, : n * s, : n * s].abs().amax(0)
    near = torch.zeros(n, dtype=torch.bool)
    for k in range(1, n // step + 1):
        cut = k * step + (32 - step) // 2
        near[max(0, cut - r) : cut + r] = True
    far = (~near).repeat_interleave(s)
    assert crop[far][:, far].max() < 1e-5
    assert crop.mean() < feather.mean()
    assert crop.mean() < 0.01 * whole.abs().max()
