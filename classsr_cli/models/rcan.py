"""RCAN branch (residual channel attention network) as ClassSR uses it (../reference CLASSSR.md §2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from classsr_cli.config import BranchConfig
from classsr_cli.models._layers import MeanShift, init_scaled_kaiming, upsample_factors

__all__ = ["RCAN", "squeeze_width"]

#: RCAN computes on pixel values in [0, 255]; the branch's public contract is [0, 1].
PIXEL_RANGE = 255.0


def squeeze_width(n_feats: int, reduction: int) -> int:
    """Channels of the channel-attention bottleneck: ``n_feats // reduction`` (2/3/4 for 36/50/64 at 16)."""
    width = n_feats // reduction
    if width < 1:
        raise ValueError(f"RCAN reduction {reduction} leaves no attention channel at width {n_feats}")
    return width


class _RCAB(nn.Module):
    """Residual channel attention block: conv3x3 -> ReLU -> conv3x3 -> channel attention (global average pool,
    conv1x1 F->F/r, ReLU, conv1x1 F/r->F, sigmoid, rescale), plus the identity."""

    def __init__(self, n_feats: int, squeeze: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(n_feats, n_feats, 3, padding=1)
        self.conv2 = nn.Conv2d(n_feats, n_feats, 3, padding=1)
        self.ca_down = nn.Conv2d(n_feats, squeeze, 1)
        self.ca_up = nn.Conv2d(squeeze, n_feats, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.conv2(F.relu(self.conv1(x)))
        attention = torch.sigmoid(self.ca_up(F.relu(self.ca_down(res.mean(dim=(2, 3), keepdim=True)))))
        return x + res * attention


class _ResidualGroup(nn.Module):
    """``num_blocks`` RCABs, then conv3x3, plus the group's input."""

    def __init__(self, n_feats: int, squeeze: int, num_blocks: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[_RCAB(n_feats, squeeze) for _ in range(num_blocks)])
        self.conv = nn.Conv2d(n_feats, n_feats, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(self.blocks(x))


class RCAN(nn.Module):
    """RCAN: mean shift, head conv3x3(3->F), ``num_groups`` residual groups, body-end conv3x3 + long skip,
    sub-pixel upsampler without activation (each stage conv3x3 F->f²·F, PixelShuffle(f)), tail conv3x3(F->3),
    add the mean back.

    Args:
        n_feats: feature width F (36/50/64 in ClassSR).
        num_groups: residual groups (default 10).
        num_blocks: RCABs per group (default 20).
        reduction: channel-attention reduction; the bottleneck has ``n_feats // reduction`` channels
            (default 16).
        scale: upscaling factor, 2, 3 or 4 (default 4); x4 uses two x2 stages.

    Input ``(N, 3, h, w)`` in ``[0, 1]``; output ``(N, 3, scale*h, scale*w)`` in the same units, not clamped.
    Inside, the network computes on ``255 * x`` exactly as the original (which takes [0, 255] input), and divides
    its output by 255. The mean shifts start at the DIV2K mean in [0, 255] units (``rgb_range=255``, the
    branch-training setting); converted checkpoints bring their own constants. Convolutions start Kaiming-normal
    x 0.1 with zero bias (mean shifts excepted).
    """

    def __init__(
        self, *, n_feats: int, num_groups: int = 10, num_blocks: int = 20, reduction: int = 16, scale: int = 4
    ) -> None:
        super().__init__()
        self.factors = upsample_factors(scale)
        squeeze = squeeze_width(n_feats, reduction)
        self.sub_mean = MeanShift(sign=-1, rgb_range=PIXEL_RANGE)
        self.head = nn.Conv2d(3, n_feats, 3, padding=1)
        self.groups = nn.Sequential(
            *[_ResidualGroup(n_feats, squeeze, num_blocks) for _ in range(num_groups)]
        )
        self.body_conv = nn.Conv2d(n_feats, n_feats, 3, padding=1)
        self.upsample = nn.ModuleList(
            [nn.Conv2d(n_feats, n_feats * f * f, 3, padding=1) for f in self.factors]
        )
        self.tail = nn.Conv2d(n_feats, 3, 3, padding=1)
        self.add_mean = MeanShift(sign=1, rgb_range=PIXEL_RANGE)
        init_scaled_kaiming([self.head, self.groups, self.body_conv, self.upsample, self.tail], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(self.sub_mean(x * PIXEL_RANGE))
        feat = feat + self.body_conv(self.groups(feat))
        for conv, f in zip(self.upsample, self.factors, strict=True):
            feat = F.pixel_shuffle(conv(feat), f)
        return self.add_mean(self.tail(feat)) / PIXEL_RANGE


def build_rcan(cfg: BranchConfig) -> RCAN:
    e = cfg.extra
    return RCAN(
        n_feats=cfg.width,
        num_groups=e["num_groups"],
        num_blocks=e["num_blocks"],
        reduction=e["reduction"],
        scale=cfg.scale,
    )
