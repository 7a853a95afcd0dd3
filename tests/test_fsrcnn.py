"""classsr_cli.models.fsrcnn: the inference reformulations (sub-pixel transposed convolution, channels-last) give
the plain model's output, and the receptive radius is what the crop stitch relies on (issue 6)."""

from __future__ import annotations

import pytest
import torch

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
