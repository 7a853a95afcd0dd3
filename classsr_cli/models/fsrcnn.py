"""FSRCNN branch in the ClassSR layout (../reference CLASSSR.md §2)."""

from __future__ import annotations

import torch
from torch import nn

from classsr_cli.config import BranchConfig
from classsr_cli.models import register_branch

__all__ = ["FSRCNN", "deconv_geometry"]


def deconv_geometry(scale: int, kernel: int = 9) -> tuple[int, int]:
    """(padding, output_padding) that make a stride-``scale`` transposed conv output exactly ``scale*h``.

    From ``(h-1)*s - 2p + k + op = s*h``: ``2p - op = k - s``. For x4 this is the paper's p3/op1.
    """
    padding = (kernel - scale + 1) // 2
    return padding, 2 * padding - (kernel - scale)


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
        self.deconv = nn.ConvTranspose2d(d, 3, 9, stride=scale, padding=padding, output_padding=output_padding)
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, a=0, mode="fan_in")
                mod.weight.data.mul_(0.1)
                nn.init.zeros_(mod.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.expand(self.mapping(self.shrink(self.head(x)))))


@register_branch("fsrcnn")
def build_fsrcnn(cfg: BranchConfig) -> FSRCNN:
    return FSRCNN(d=cfg.width, s=cfg.extra["s"], m=cfg.extra["m"], scale=cfg.scale)
