"""Residual branch: a fixed bicubic upsampler plus a small CNN that adds the detail bicubic misses.

The default preset's family. Its branches differ only in width, so their costs are designed: the light branch
costs a small fraction of the heavy one, and every branch starts training as exact bicubic (the residual's
output convolution is zero at initialisation), so none of them falls below bicubic.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from classsr_cli.config import BranchConfig
from classsr_cli.errors import ConfigError

__all__ = [
    "BICUBIC_TAPS",
    "ResidualSR",
    "bicubic_phase_weights",
    "build_residual",
    "canonical_strides",
    "expand_luma",
    "fit_base",
    "pixel_shuffle",
    "receptive_radius",
    "tile_margins",
]

#: Taps of the bicubic upsampler on the LR grid: offsets -2..2 cover every phase at x2, x3 and x4.
BICUBIC_TAPS = 5


def _cubic(x: float, a: float = -0.5) -> float:
    """Keys' cubic convolution kernel; a = -0.5 is Pillow's (and MATLAB's) bicubic."""
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def bicubic_phase_weights(scale: int) -> torch.Tensor:
    """``(3*s*s, 1, 5, 5)`` depthwise weights: channel ``c*s*s + ry*s + rx`` is colour ``c``'s output phase ``(ry, rx)``.

    Output pixel ``s*q + r`` samples the LR position ``u = q + (r + 0.5)/s - 0.5`` (half-pixel centres, as Pillow
    and ``F.interpolate(align_corners=False)``); its taps lie at ``q - 2 .. q + 2``. Followed by
    ``pixel_shuffle(s)`` this is bicubic upsampling inside the frame (the border is replicate-padded).
    """
    half = BICUBIC_TAPS // 2
    w1 = torch.zeros(scale, BICUBIC_TAPS, dtype=torch.float64, device="cpu")  # values even in a meta skeleton
    for r in range(scale):
        u = (r + 0.5) / scale - 0.5
        for t in range(-half, half + 1):
            w1[r, t + half] = _cubic(u - t)
    w1 /= w1.sum(1, keepdim=True)
    w2 = w1[:, None, :, None] * w1[None, :, None, :]  # (ry, rx, ty, tx)
    w2 = w2.reshape(scale * scale, 1, BICUBIC_TAPS, BICUBIC_TAPS)
    return w2.repeat(3, 1, 1, 1).float()


#: Dtypes by byte size that move one sub-pixel row of ``s`` values as one element (:func:`pixel_shuffle`): a copy
#: between tensors of one dtype keeps the bits. complex128 is the one 16-byte dtype; MPS has none of 8 or 16 bytes.
_RUN_DTYPES = {4: torch.int32, 8: torch.int64, 16: torch.complex128}


def pixel_shuffle(y: torch.Tensor, scale: int) -> torch.Tensor:
    """``F.pixel_shuffle(y, scale)`` (the same values, NCHW-contiguous), without its slow path for a channels-last
    ``y``: one permuted copy (about 2-4x faster on the CPU for the residual family's 3*s*s channels).

    In a channels-last ``y`` the ``s`` values of a sub-pixel row (phases ``rx = 0 .. s-1``) lie side by side, and
    they stay side by side in the output; where they make 4, 8 or 16 bytes (float32 at x2 and x4, bfloat16 and
    float16 at x2 and x4) the copy moves each run as one element of that size, bits unchanged, on the CPU and
    CUDA: a quarter of the elements at x4, about 2x faster on a 256x192 frame (``scripts/shuffle_speed.py``;
    docs/experiments.md, "Changed: a pixel shuffle that moves sub-pixel rows whole")."""
    if y.dim() != 4 or y.is_contiguous() or not y.is_contiguous(memory_format=torch.channels_last):
        return F.pixel_shuffle(y, scale)
    n, c, h, w = y.shape
    out = c // (scale * scale)
    nhwc = y.permute(0, 2, 3, 1)  # contiguous: channels-last is NHWC in memory
    wide = _RUN_DTYPES.get(scale * y.element_size())
    if (wide is not None and y.device.type in ("cpu", "cuda") and nhwc.storage_offset() % scale == 0
            and not (y.requires_grad and torch.is_grad_enabled())):  # a view as integers has no gradient
        runs = nhwc.view(wide).reshape(n, h, w, out, scale)  # element (c, ry): its s phases rx
        shuffled = torch.empty((n, out, h, scale, w), dtype=wide, device=y.device)
        shuffled.copy_(runs.permute(0, 3, 1, 4, 2))
        return shuffled.view(y.dtype).view(n, out, h * scale, w * scale)
    cells = nhwc.reshape(n, h, w, out, scale, scale)  # a view
    return cells.permute(0, 3, 1, 4, 2, 5).reshape(n, out, h * scale, w * scale)


def canonical_strides(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a view with the standard strides of its memory layout, where PyTorch counts it contiguous in a
    layout whose strides it does not have: an HWC image with a batch dimension added after ``permute(2, 0, 1)``
    is channels-last with a batch stride of C instead of C*H*W (legal at N = 1), and oneDNN then picks slower
    kernels and ``pixel_shuffle`` its slow path (the heavy branch about a fifth slower on this CPU,
    docs/experiments.md). The same memory, no copy; other tensors are returned as they are."""
    if x.dim() != 4 or x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return x
    _, c, h, w = x.shape
    strides = (c * h * w, 1, w * c, c)
    return x if x.stride() == strides else x.as_strided(x.shape, strides)


def receptive_radius(depth: int, width: int = 1) -> int:
    """LR pixels on each side that an output block depends on: ``depth + 2`` 3x3 convolutions, or the bicubic
    path's 2 alone at width 0."""
    return BICUBIC_TAPS // 2 if width == 0 else max(depth + 2, BICUBIC_TAPS // 2)


def tile_margins(halo: int, layers: int) -> list[int]:
    """Pixels beyond the core on each side that each of ``layers`` 3x3 convolutions computes for a tile with
    ``halo`` pixels of context, when the first ``min(halo, layers)`` run without padding (each shrinks the tile
    by a pixel a side; :meth:`ResidualSR.residual_tile`) and the rest at the core's size."""
    k = min(halo, layers)
    return [max(k - i - 1, 0) for i in range(layers)]


def expand_luma(dtype: torch.dtype) -> bool:
    """Whether a luma residual is best copied to R, G and B (``residual(..., expand=True)``) before it is added to
    a ``3*s*s``-channel frame: in 16-bit floats, whose adds on a channel slice of a channels-last tensor take
    5-8x the copy and one add on this CPU; not in float32, where three adds of a slice beat the copy
    (``scripts/luma_add_speed.py``; docs/experiments.md, "Changed: a luma residual added to each colour without
    its copy (twenty-second pass)")."""
    return dtype.itemsize < 4


class ResidualSR(nn.Module):
    """``bicubic(x) + pixel_shuffle(conv3x3(w->3s²) ∘ [conv3x3(w->w), ReLU] x depth ∘ [conv3x3(3->w), ReLU])(x)``.

    The bicubic path is a fixed depthwise convolution on the LR grid (:func:`bicubic_phase_weights`, not a
    parameter, not in the state dict) added to the residual before one ``pixel_shuffle``. The residual's output
    convolution starts at zero, so an untrained branch is bicubic. With ``fitted_base`` the fixed convolution is
    instead a linear filter per sub-pixel fitted to training data (:func:`fit_base`; a buffer in the state dict,
    not trained by gradient), and a width-0 branch is that filter alone.

    With ``luma`` the output convolution has ``s²`` channels, one per sub-pixel, each added alike to R, G and B:
    a correction of luma (BT.601 chroma is unchanged by an equal step of R, G and B), chroma left to bicubic, as
    FSRCNN and SRCNN work on Y alone; a third of the output convolution's cost. Its residual is returned as the
    ``3s²`` channels either way.

    Args:
        width: channels of the residual CNN; 0 = no residual (the branch is plain bicubic).
        depth: 3x3 convolutions between the first and the output convolution.
        scale: upscaling factor (2, 3 or 4).
        luma: the residual corrects luma alone.
        fitted_base: the fixed upsampler is a fitted base (:attr:`base`), bicubic until one is set.
    """

    bicubic: torch.Tensor
    #: Inference (no gradient needed) runs channels-last: oneDNN's fastest layout on the CPU.
    channels_last: bool = True

    def __init__(self, *, width: int, depth: int = 4, scale: int = 4, luma: bool = False,
                 fitted_base: bool = False) -> None:
        super().__init__()
        self.scale = scale
        self.depth = depth
        self.width = width
        self.luma = luma
        self.register_buffer("bicubic", bicubic_phase_weights(scale), persistent=False)
        # A fitted base (:func:`fit_base`) is part of the state dict; it starts as bicubic.
        self.fitted_base: torch.Tensor | None
        self.register_buffer("fitted_base", bicubic_phase_weights(scale) if fitted_base else None)
        self.body: nn.Sequential | None = None
        self.tail: nn.Conv2d | None = None
        if width == 0:
            return
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.tail = nn.Conv2d(width, (1 if luma else 3) * scale * scale, 3, padding=1)
        for mod in self.body.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
                nn.init.zeros_(mod.bias)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def _apply(self, fn: Any, recurse: bool = True) -> ResidualSR:
        """Moves and casts as any module does, but the bicubic weights and a fitted base stay float32 (exact): the
        base path, which every branch adds its residual to, computes in the frame's dtype, whatever the weights' (a
        float32 frame under a 16-bit model keeps a float32 base and sum, and only the residual CNN computes in 16
        bits)."""
        kept = self.fitted_base
        super()._apply(fn, recurse)
        if self.bicubic.dtype.itemsize < 4:
            self.bicubic = bicubic_phase_weights(self.scale).to(self.bicubic.device)
        if kept is not None and self.fitted_base is not None and self.fitted_base.dtype.itemsize < 4:
            self.fitted_base = kept.float().to(self.fitted_base.device)
        return self

    @property
    def base(self) -> torch.Tensor:
        """The fixed upsampler's ``(3*s*s, 1, 5, 5)`` depthwise weights (:func:`bicubic_phase_weights`' layout):
        the fitted base where the branch has one, else bicubic."""
        return self.bicubic if self.fitted_base is None else self.fitted_base

    def functional_flops(self, x: torch.Tensor) -> int:
        """FLOPs of the base path on ``x`` (a depthwise 5x5 convolution to ``3*s*s`` channels)."""
        return 2 * x.shape[-2] * x.shape[-1] * self.base.numel()

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        """The base path alone (bicubic, or the fitted base), on the LR grid: ``(N, 3*s*s, h, w)`` before
        ``pixel_shuffle``."""
        pad = BICUBIC_TAPS // 2
        return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="replicate"), self.base.to(x.dtype), groups=3)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4 and not (torch.is_grad_enabled() and self.training):
            return canonical_strides(x).contiguous(memory_format=torch.channels_last)
        return x

    def residual(self, x: torch.Tensor, *, expand: bool = True) -> torch.Tensor | None:
        """The residual alone on the LR grid, ``(N, 3*s*s, h, w)`` before ``pixel_shuffle``; None at width 0.
        ``expand=False``: a luma branch's ``s²`` channels as computed (:meth:`add_residual` adds either)."""
        if self.body is None or self.tail is None:
            return None
        res = self.tail(self.body(self._layout(x.to(self.tail.weight.dtype))))
        return self._colour(res) if expand else res

    def _colour(self, res: torch.Tensor) -> torch.Tensor:
        """A luma residual's ``s²`` channels as ``3s²`` (channel ``c*s² + i`` of ``pixel_shuffle`` is sub-pixel
        ``i`` of colour ``c``): the same step for R, G and B; an RGB residual as it is."""
        return torch.cat([res, res, res], 1) if self.luma else res  # keeps channels-last (repeat does not)

    @staticmethod
    def add_residual(y: torch.Tensor, res: torch.Tensor) -> torch.Tensor:
        """``y += res`` in place and return ``y``: ``y`` ``(..., 3*s*s, h, w)`` on the LR grid, ``res`` a residual
        of ``3*s*s`` channels or a luma residual's ``s*s`` (the same step for R, G and B: three adds of a channel
        slice, without :meth:`_colour`'s copy; in float32 2-3x faster channels-last than one broadcast add, in
        16-bit floats slower than the copy: see :func:`expand_luma`). A residual of another dtype (a 16-bit model's
        on a float32 frame) is cast to ``y``'s first."""
        if res.dtype != y.dtype:  # cast once, then adds of one dtype
            res = res.to(y.dtype)
        n = res.shape[-3]
        if n == y.shape[-3]:
            return y.add_(res)
        for c in range(3):
            y.narrow(-3, c * n, n).add_(res)
        return y

    def convs(self) -> list[nn.Conv2d]:
        """The residual's 3x3 convolutions in order (first, body, tail); empty at width 0. Found once (the layers
        are fixed at construction; the engine asks for them on every tile call)."""
        got = self.__dict__.get("_convs")
        if got is None:
            got = [] if self.body is None or self.tail is None else (
                [m for m in self.body if isinstance(m, nn.Conv2d)] + [self.tail])
            self.__dict__["_convs"] = got
        return got

    def residual_tile(self, x: torch.Tensor, halo: int, *, expand: bool = True) -> torch.Tensor | None:
        """The residual of tiles' cores: ``x`` ``(N, 3, h + 2*halo, w + 2*halo)`` -> ``(N, 3*s*s, h, w)``; None at
        width 0.

        The first ``k = min(halo, L)`` of the ``L`` convolutions run without padding, each shrinking the tile by a
        pixel on every side, so every layer computes only what the core needs; the rest (a halo short of the
        receptive radius ``L``) are zero-padded at the core's size. With ``halo >= L`` every core pixel is exactly
        the branch's residual on any frame that holds the tile. Costs :meth:`tile_flops`. ``expand`` as in
        :meth:`residual`."""
        convs = self.convs()
        if not convs:
            return None
        k = min(halo, len(convs))
        if halo > k:
            cut = halo - k
            x = x[:, :, cut : x.shape[2] - cut, cut : x.shape[3] - cut]
        x = self._layout(x.to(convs[0].weight.dtype))
        for i, conv in enumerate(convs):
            x = F.conv2d(x, conv.weight, conv.bias, padding=0 if i < k else 1)
            if i < len(convs) - 1:
                x = F.relu_(x)
        return self._colour(x) if expand else x

    def tile_flops(self, height: int, width: int, halo: int = 0) -> int:
        """FLOPs of :meth:`residual_tile` for one ``height`` x ``width`` core (``halo`` 0: the residual on a
        ``height`` x ``width`` frame, as :meth:`residual` computes it)."""
        a, b, c = self._flops_terms(halo)
        return a * height * width + b * (height + width) + c

    def _flops_terms(self, halo: int) -> tuple[int, int, int]:
        """:meth:`tile_flops` as ``a*h*w + b*(h + w) + c``: the sum over the layers of ``2*n*(h + 2r)*(w + 2r)``
        (``n`` a layer's weights, ``r`` its margin), expanded once per halo (the engine prices every tile)."""
        terms = self.__dict__.setdefault("_flops_by_halo", {})
        got = terms.get(halo)
        if got is None:
            convs = self.convs()
            pairs = [(2 * conv.weight.numel(), r) for conv, r in zip(convs, tile_margins(halo, len(convs)), strict=True)]
            got = terms[halo] = (sum(n for n, _ in pairs), sum(2 * n * r for n, r in pairs),
                                 sum(4 * n * r * r for n, r in pairs))
        return got

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` float in [0, 1]; the output in ``x``'s dtype, whatever the weights' (the residual in theirs)."""
        x = self._layout(x)
        y = self.upsample(x)
        # the copy where a gradient flows too: in-place adds on slices cost training more in backward than they save
        res = self.residual(x, expand=expand_luma(y.dtype) or torch.is_grad_enabled())
        if res is not None:
            y = self.add_residual(y, res)
        return pixel_shuffle(y, self.scale)


def build_residual(cfg: BranchConfig) -> ResidualSR:
    return ResidualSR(width=cfg.width, depth=cfg.extra["depth"], scale=cfg.scale, luma=cfg.luma,
                      fitted_base=bool(cfg.extra.get("fitted_base", 0)))


@torch.no_grad()
def fit_base(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], scale: int) -> torch.Tensor:
    """The linear upsampler of least squared error on ``pairs`` of ``(lr, hr)`` batches ``(B, 3, h, w)`` and
    ``(B, 3, s*h, s*w)`` in [0, 1]: per sub-pixel phase a 5x5 filter on the LR grid, the same for R, G and B
    (each colour a sample), fitted on every LR position whose taps lie inside its sub-image. Returns the
    ``(3*s*s, 1, 5, 5)`` float32 weights of :func:`bicubic_phase_weights`' layout (a fitted base)."""
    taps = BICUBIC_TAPS
    xtx = torch.zeros(taps * taps, taps * taps, dtype=torch.float64)
    xty = torch.zeros(taps * taps, scale * scale, dtype=torch.float64)
    for lr, hr in pairs:
        lr, hr = lr.detach().double().cpu(), hr.detach().double().cpu()
        b, c, h, w = lr.shape
        if h <= taps - 1 or w <= taps - 1:
            raise ConfigError(f"a fitted base needs LR sub-images larger than {taps - 1}x{taps - 1}, got {h}x{w}")
        x = F.unfold(lr.reshape(b * c, 1, h, w), taps).transpose(1, 2).reshape(-1, taps * taps)
        half = taps // 2
        y = F.pixel_unshuffle(hr.reshape(b * c, 1, h * scale, w * scale), scale)[:, :, half:h - half, half:w - half]
        y = y.permute(0, 2, 3, 1).reshape(-1, scale * scale)
        xtx += x.T @ x
        xty += x.T @ y
    w = torch.linalg.solve(xtx, xty)  # (25, s*s)
    return w.T.reshape(scale * scale, 1, taps, taps).repeat(3, 1, 1, 1).float()
