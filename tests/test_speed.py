"""Speed reformulations that claim to change no output, checked against the plain model (issue 6)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import requires_data

from classsr_cli.engine.stitching import stitch
from classsr_cli.engine.tiling import extract_patches, plan_grid
from classsr_cli.models.fsrcnn import FSRCNN, SubPixelConvTranspose2d, deconv_geometry, receptive_radius


def _fsrcnn(scale: int, d: int = 8, m: int = 1) -> FSRCNN:
    """A small FSRCNN with O(1) outputs (the default init gives tiny ones, which would hide errors)."""
    net = FSRCNN(d=d, s=4, m=m, scale=scale).eval()
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() > 1:
                p.normal_(0, 1.0 / (p[0].numel() ** 0.5))
            else:
                p.uniform_(-0.2, 0.2)
    return net


def _plain(net: FSRCNN, x: torch.Tensor) -> torch.Tensor:
    """The network as written: transposed convolution, default memory layout."""
    net.deconv.subpixel = False
    net.channels_last = False
    try:
        with torch.no_grad():
            return net(x)
    finally:
        net.deconv.subpixel = True
        net.channels_last = True


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_subpixel_deconv_equals_transposed_conv(scale: int) -> None:
    pad, out_pad = deconv_geometry(scale)
    plain = torch.nn.ConvTranspose2d(5, 3, 9, stride=scale, padding=pad, output_padding=out_pad)
    fast = SubPixelConvTranspose2d(5, 3, 9, stride=scale, padding=pad, output_padding=out_pad)
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(2, 5, 7, 11)
    with torch.no_grad():
        want, got = plain(x), fast(x)
    assert got.shape == want.shape == (2, 3, 7 * scale, 11 * scale)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fsrcnn_subpixel_equals_plain(scale: int) -> None:
    net = _fsrcnn(scale)
    x = torch.rand(3, 3, 13, 10)
    with torch.inference_mode():
        got = net(x)
    want = _plain(net, x)
    assert want.abs().max() > 0.1  # outputs large enough for the comparison to mean something
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("kernel", "stride"), [(5, 2), (6, 2), (7, 3), (8, 4), (3, 3), (4, 4)])
def test_subpixel_other_geometries(kernel: int, stride: int) -> None:
    pad, out_pad = deconv_geometry(stride, kernel)
    conv = SubPixelConvTranspose2d(4, 2, kernel, stride=stride, padding=pad, output_padding=out_pad)
    x = torch.randn(1, 4, 6, 5)
    with torch.no_grad():
        got = conv(x)
        conv.subpixel = False
        want = conv(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_subpixel_cache_follows_weights() -> None:
    net = _fsrcnn(4)
    x = torch.rand(1, 3, 9, 9)
    with torch.no_grad():
        net(x)  # builds the cache
        net.deconv.weight.mul_(2.0)  # in-place update (an optimizer step)
        torch.testing.assert_close(net(x), _plain(net, x), atol=1e-5, rtol=1e-5)
        net.double()  # new storage and dtype
        got = net(x.double())
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, _plain(net, x.double()), atol=1e-10, rtol=1e-10)


def test_training_uses_the_plain_transposed_conv() -> None:
    net = _fsrcnn(4).train()
    x = torch.rand(2, 3, 8, 8)
    net(x).square().mean().backward()
    assert net.deconv.weight.grad is not None and net.deconv.weight.grad.abs().sum() > 0
    assert "_subpixel_cache" not in net.deconv.__dict__  # never built while gradients were needed


def test_state_dict_unchanged() -> None:
    net = _fsrcnn(4)
    with torch.no_grad():
        net(torch.rand(1, 3, 8, 8))
    assert sorted(net.deconv.state_dict()) == ["bias", "weight"]
    assert net.deconv.weight.shape == (8, 3, 9, 9)


@pytest.mark.parametrize(("scale", "m"), [(2, 1), (3, 1), (4, 1), (4, 4), (2, 4)])
def test_receptive_radius(scale: int, m: int) -> None:
    """Perturbing one LR pixel changes exactly the HR blocks within the radius."""
    net = _fsrcnn(scale, m=m)
    n, c = 31, 15
    x = torch.rand(1, 3, n, n)
    y = x.clone()
    y[0, :, c, c] += 1.0
    with torch.no_grad():
        diff = (net(y) - net(x)).abs().sum(dim=(0, 1))  # (s*n, s*n)
    blocks = diff.reshape(n, scale, n, scale).amax(dim=(1, 3)) > 0
    rows = blocks.any(dim=1).nonzero().flatten()
    r = receptive_radius(scale, m=m)
    assert (rows.min().item(), rows.max().item()) == (c - r, c + r)


# --------------------------------------------------------------------------------------------- crop stitching
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
    feathering does (as measured with trained weights on SunHays80/B100/Urban100, CHANGELOG)."""
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
