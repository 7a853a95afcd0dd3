"""CARN-M branch as ClassSR's code builds it (../reference CLASSSR.md §2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from classsr_cli.config import BranchConfig
from classsr_cli.models._layers import BatchNorm2d, MeanShift, upsample_factors

__all__ = ["CARNM"]

#: How many times each cascading block applies its one (weight-shared) efficient residual unit.
UNIT_REPEATS = 3


class _Fuse(nn.Module):
    """Cascade fusion: conv1x1 (no bias) c_in -> c_out, BatchNorm2d, ReLU (ClassSR's ``BasicBlock`` defaults)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn = BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class _EResidual(nn.Module):
    """Efficient residual unit: gconv3x3 -> ReLU -> gconv3x3 -> ReLU -> conv1x1, add the input, ReLU."""

    def __init__(self, nf: int, groups: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, padding=1, groups=groups)
        self.conv2 = nn.Conv2d(nf, nf, 3, padding=1, groups=groups)
        self.conv3 = nn.Conv2d(nf, nf, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(F.relu(self.conv2(F.relu(self.conv1(x)))))
        return F.relu(out + x)


def _cascade(x: torch.Tensor, stages: list[nn.Module], fusions: nn.ModuleList) -> torch.Tensor:
    """Local/global cascading: after stage k, fuse the concatenation of the input and every stage output."""
    concat = x
    out = x
    for stage, fuse in zip(stages, fusions, strict=True):
        concat = torch.cat([concat, stage(out)], dim=1)
        out = fuse(concat)
    return out


class _CascadeBlock(nn.Module):
    """One cascading block: a single efficient residual unit applied ``UNIT_REPEATS`` times (shared weights),
    each application followed by a fusion of everything so far (nf*k -> nf, k = 2, 3, 4)."""

    def __init__(self, nf: int, groups: int) -> None:
        super().__init__()
        self.unit = _EResidual(nf, groups)
        self.fuse = nn.ModuleList([_Fuse(nf * (k + 2), nf) for k in range(UNIT_REPEATS)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _cascade(x, [self.unit] * UNIT_REPEATS, self.fuse)


class CARNM(nn.Module):
    """CARN-M: mean shift, entry conv3x3(3->nf), ``num_blocks`` cascading blocks with global cascade fusions
    (conv1x1 nf*k -> nf + BatchNorm + ReLU), sub-pixel upsampler (each stage grouped conv3x3 nf->f²·nf, ReLU,
    PixelShuffle(f)), exit conv3x3(nf->3), add the mean back.

    Args:
        nf: feature width (36/52/64 in ClassSR).
        groups: groups of the grouped convolutions (default 4); ``nf`` must be divisible by it.
        num_blocks: number of cascading blocks (default 3).
        scale: upscaling factor, 2, 3 or 4 (default 4); x4 uses two x2 stages.

    Input ``(N, 3, h, w)`` in ``[0, 1]``; output ``(N, 3, scale*h, scale*w)``, not clamped. The BatchNorm layers
    use their running statistics in eval mode (call ``.eval()`` for inference). Convolutions keep PyTorch's
    default initialisation, as in the original.
    """

    def __init__(self, *, nf: int, groups: int = 4, num_blocks: int = 3, scale: int = 4) -> None:
        super().__init__()
        if nf % groups:
            raise ValueError(f"CARN-M width {nf} is not divisible by groups={groups}")
        self.factors = upsample_factors(scale)
        self.sub_mean = MeanShift(sign=-1)
        self.entry = nn.Conv2d(3, nf, 3, padding=1)
        self.blocks = nn.ModuleList([_CascadeBlock(nf, groups) for _ in range(num_blocks)])
        self.fuse = nn.ModuleList([_Fuse(nf * (k + 2), nf) for k in range(num_blocks)])
        self.upsample = nn.ModuleList(
            [nn.Conv2d(nf, nf * f * f, 3, padding=1, groups=groups) for f in self.factors]
        )
        self.exit = nn.Conv2d(nf, 3, 3, padding=1)
        self.add_mean = MeanShift(sign=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = _cascade(self.entry(self.sub_mean(x)), list(self.blocks), self.fuse)
        for conv, f in zip(self.upsample, self.factors, strict=True):
            feat = F.pixel_shuffle(F.relu(conv(feat)), f)
        return self.add_mean(self.exit(feat))


def build_carn(cfg: BranchConfig) -> CARNM:
    return CARNM(
        nf=cfg.width, groups=cfg.extra["groups"], num_blocks=cfg.extra["num_blocks"], scale=cfg.scale
    )
