"""FSRCNN branch in the ClassSR layout (../reference CLASSSR.md §2)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from classsr_cli.config import BranchConfig

__all__ = ["FSRCNN", "SubPixelConvTranspose2d", "deconv_geometry", "receptive_radius", "subpixel_weights"]


def deconv_geometry(scale: int, kernel: int = 9) -> tuple[int, int]:
    """(padding, output_padding) that make a stride-``scale`` transposed conv output exactly ``scale*h``.

    From ``(h-1)*s - 2p + k + op = s*h``: ``2p - op = k - s``. For x4 this is the paper's p3/op1.
    """
    padding = (kernel - scale + 1) // 2
    return padding, 2 * padding - (kernel - scale)


def subpixel_weights(
    weight: torch.Tensor, bias: torch.Tensor | None, stride: int, padding: int
) -> tuple[torch.Tensor, torch.Tensor | None, int, int]:
    """Rewrite a stride-``s`` transposed convolution as a convolution on the input grid + ``PixelShuffle(s)``.

    A transposed convolution with kernel ``w`` (``(Cin, Cout, k, k)``) gives, along one axis,
    ``y[s*q + r] = sum_j x[q - j] * w[s*j + r + p]`` for the output block ``q`` and phase ``r`` in ``0..s-1``
    (the terms with ``0 <= s*j + r + p < k``). That is, per phase, an ordinary correlation of ``x`` with the
    taps ``w[s*(J - m) + r + p]``, ``m = 0..K-1``, on ``x`` zero-padded by ``J = max_r floor((k-1-r-p)/s)`` before
    and ``-min_r ceil(-(r+p)/s)`` after. The ``s*s`` phases become the output channels ``c*s*s + ry*s + rx``, which
    ``pixel_shuffle`` puts at ``(s*qy + ry, s*qx + rx)``. Taps outside the kernel are zero.

    Returns ``(conv_weight (Cout*s*s, Cin, K, K), conv_bias (Cout*s*s,) or None, pad_before, pad_after)``.
    The output has ``s*h`` rows when the transposed convolution's ``output_padding`` makes it so (see
    :func:`deconv_geometry`); rows past that would need more padding and are not produced.
    """
    cin, cout, k, k2 = weight.shape
    if k != k2:
        raise ValueError(f"square kernels only, got {k}x{k2}")
    s, p = stride, padding
    j_max = max((k - 1 - r - p) // s for r in range(s))
    j_min = min(math.ceil(-(r + p) / s) for r in range(s))
    size = j_max - j_min + 1
    # taps[r, m] = index into the k taps for phase r and conv tap m, or -1 where it falls outside the kernel.
    taps = torch.tensor([[s * (j_max - m) + r + p for m in range(size)] for r in range(s)])
    valid = (taps >= 0) & (taps < k)
    idx = taps.clamp(0, k - 1)
    # w[ci, co, taps[ry, my], taps[rx, mx]] -> (co, ry, rx, ci, my, mx)
    w = weight[:, :, idx[:, :, None, None], idx[None, None, :, :]]  # (ci, co, ry, my, rx, mx)
    mask = (valid[:, :, None, None] & valid[None, None, :, :]).to(weight.dtype)
    w = (w * mask).permute(1, 2, 4, 0, 3, 5).reshape(cout * s * s, cin, size, size).contiguous()
    b = None if bias is None else bias.repeat_interleave(s * s).contiguous()
    return w, b, j_max, -j_min


class SubPixelConvTranspose2d(nn.ConvTranspose2d):
    """A ``ConvTranspose2d`` (same parameters, same state dict) that, when no gradient is needed, runs as the
    equivalent convolution on the input grid followed by ``pixel_shuffle`` (:func:`subpixel_weights`).

    On CPU that is ~2.5x faster than PyTorch's transposed convolution (which scatters through ``col2im``) and equal
    to it within float rounding. The re-arranged weights are cached and rebuilt whenever the parameters change
    (new storage, device or dtype, or an in-place update). Set :attr:`subpixel` to ``False`` for the plain path.
    Square kernel, equal stride on both axes, ``groups == 1``, ``dilation == 1``, output exactly ``stride`` times
    the input (as :func:`deconv_geometry` makes it).
    """

    subpixel: bool = True

    def _cached(self) -> tuple[torch.Tensor, torch.Tensor | None, int, int]:
        b = self.bias
        key = (self.weight.data_ptr(), self.weight._version, self.weight.dtype, self.weight.device)
        key += (None,) if b is None else (b.data_ptr(), b._version)
        cache = self.__dict__.get("_subpixel_cache")
        if cache is None or cache[0] != key:
            with torch.no_grad():
                packed = subpixel_weights(
                    self.weight.detach(), None if b is None else b.detach(), self.stride[0], self.padding[0]
                )
            cache = (key, packed)
            self.__dict__["_subpixel_cache"] = cache
        return cache[1]

    def _can_subpixel(self, x: torch.Tensor, output_size: list[int] | None) -> bool:
        s = self.stride[0]
        return (
            self.subpixel
            and output_size is None
            and self.stride[0] == self.stride[1]
            and self.padding[0] == self.padding[1]
            and self.kernel_size[0] == self.kernel_size[1]
            and self.groups == 1
            and self.dilation == (1, 1)
            and self.padding_mode == "zeros"
            and x.dim() == 4
            and 2 * self.padding[0] - self.output_padding[0] == self.kernel_size[0] - s
            and 2 * self.padding[1] - self.output_padding[1] == self.kernel_size[1] - s
            and not (torch.is_grad_enabled() and (self.weight.requires_grad or x.requires_grad))
        )

    def real_flops(self, x: torch.Tensor) -> int:
        """FLOPs of this layer's inference on ``x`` as it runs: the sub-pixel convolution (no gradient)."""
        w, _, _, _ = self._cached()
        return 2 * x.shape[-2] * x.shape[-1] * w.numel()

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if not self._can_subpixel(x, output_size):
            return super().forward(x, output_size)
        w, b, before, after = self._cached()
        if before == after:
            y = F.conv2d(x, w, b, padding=before)
        else:
            y = F.conv2d(F.pad(x, (before, after, before, after)), w, b)
        return F.pixel_shuffle(y, self.stride[0])


def receptive_radius(scale: int, m: int = 4, kernel: int = 9) -> int:
    """LR pixels on each side of an output block that FSRCNN's output there depends on.

    conv5x5 (2) + ``m`` conv3x3 (1 each) + the transposed convolution seen as a convolution on the LR grid
    (:func:`subpixel_weights`: 1 at x3/x4, 2 at x2); the 1x1 convolutions add nothing. x4, m=4: 7.
    """
    padding, _ = deconv_geometry(scale, kernel)
    tail = max((kernel - 1 - r - padding) // scale for r in range(scale))
    head = -min(math.ceil(-(r + padding) / scale) for r in range(scale))
    return 2 + m + max(tail, head)


class FSRCNN(nn.Module):
    """conv5x5(3->d)+PReLU, conv1x1(d->s)+PReLU, m x conv3x3(s->s) with no activation between them, PReLU,
    conv1x1(s->d)+PReLU, ConvTranspose 9x9 stride ``scale`` (d->3). No global skip.

    Args:
        d: feature width (16/36/56 in ClassSR).
        s: shrinking width (default 12).
        m: number of mapping convolutions (default 4).
        scale: upscaling factor (2, 3 or 4).
    """

    def __init__(self, *, d: int, s: int = 12, m: int = 4, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(3, d, 5, padding=2), nn.PReLU())
        self.shrink = nn.Sequential(nn.Conv2d(d, s, 1), nn.PReLU())
        self.mapping = nn.Sequential(*[nn.Conv2d(s, s, 3, padding=1) for _ in range(m)], nn.PReLU())
        self.expand = nn.Sequential(nn.Conv2d(s, d, 1), nn.PReLU())
        padding, output_padding = deconv_geometry(scale)
        self.deconv = SubPixelConvTranspose2d(
            d, 3, 9, stride=scale, padding=padding, output_padding=output_padding
        )
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                # Plain Kaiming: FSRCNN has no skip connection, and the residual-network habit of scaling by 0.1
                # left the signal through five layers all but vanished (training sat on a plateau for 7k steps).
                nn.init.kaiming_normal_(mod.weight, a=0, mode="fan_in")
                nn.init.zeros_(mod.bias)

    #: Run inference (no gradient needed) in channels-last layout: ~25-40% less CPU time with oneDNN, equal
    #: within float rounding. Training keeps the default layout.
    channels_last: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4 and not (torch.is_grad_enabled() and self.training):
            x = x.contiguous(memory_format=torch.channels_last)
        return self.deconv(self.expand(self.mapping(self.shrink(self.head(x)))))


def build_fsrcnn(cfg: BranchConfig) -> FSRCNN:
    return FSRCNN(d=cfg.width, s=cfg.extra["s"], m=cfg.extra["m"], scale=cfg.scale)
