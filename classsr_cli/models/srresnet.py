"""SRResNet branch (MSRResNet, the "modified SRResNet" ClassSR uses; ../reference CLASSSR.md §2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from classsr_cli.config import BranchConfig
from classsr_cli.models._layers import init_scaled_kaiming, upsample_factors

__all__ = ["SRResNet"]


class _ResBlock(nn.Module):
    """conv3x3 -> ReLU -> conv3x3, plus the identity. No batch norm."""

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv2 = nn.Conv2d(nf, nf, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class SRResNet(nn.Module):
    """MSRResNet: head conv3x3(3->nf)+LReLU(0.1), ``num_blocks`` residual blocks (conv-ReLU-conv + identity),
    sub-pixel upsampler (each stage conv3x3 nf->f²·nf, PixelShuffle(f), LReLU), HR conv3x3(nf->nf)+LReLU,
    tail conv3x3(nf->3), plus the bilinearly upsampled input (global residual).

    Args:
        nf: feature width (36/52/64 in ClassSR).
        num_blocks: number of residual blocks (default 16).
        scale: upscaling factor, 2, 3 or 4 (default 4); x4 uses two x2 stages.

    Input ``(N, 3, h, w)`` in ``[0, 1]``; output ``(N, 3, scale*h, scale*w)``, not clamped.
    All convolutions start Kaiming-normal x 0.1 with zero bias.
    """

    def __init__(self, *, nf: int, num_blocks: int = 16, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.factors = upsample_factors(scale)
        self.head = nn.Conv2d(3, nf, 3, padding=1)
        self.blocks = nn.Sequential(*[_ResBlock(nf) for _ in range(num_blocks)])
        self.upsample = nn.ModuleList([nn.Conv2d(nf, nf * f * f, 3, padding=1) for f in self.factors])
        self.hr_conv = nn.Conv2d(nf, nf, 3, padding=1)
        self.tail = nn.Conv2d(nf, 3, 3, padding=1)
        init_scaled_kaiming([self], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.blocks(F.leaky_relu(self.head(x), 0.1))
        for conv, f in zip(self.upsample, self.factors, strict=True):
            feat = F.leaky_relu(F.pixel_shuffle(conv(feat), f), 0.1)
        out = self.tail(F.leaky_relu(self.hr_conv(feat), 0.1))
        return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


def build_srresnet(cfg: BranchConfig) -> SRResNet:
    return SRResNet(nf=cfg.width, num_blocks=cfg.extra["num_blocks"], scale=cfg.scale)
