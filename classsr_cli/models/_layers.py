"""Small building blocks shared by the SRResNet, CARN-M and RCAN branches."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DIV2K_MEAN", "BatchNorm2d", "MeanShift", "init_scaled_kaiming", "upsample_factors"]

#: RGB mean of DIV2K, used by the CARN and RCAN mean shifts.
DIV2K_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)


def upsample_factors(scale: int) -> tuple[int, ...]:
    """PixelShuffle factors of a sub-pixel upsampler: x2 -> (2,), x3 -> (3,), x4 -> (2, 2)."""
    factors = {2: (2,), 3: (3,), 4: (2, 2)}
    if scale not in factors:
        raise ValueError(f"scale must be 2, 3 or 4, got {scale!r}")
    return factors[scale]


def init_scaled_kaiming(modules: list[nn.Module], factor: float = 0.1) -> None:
    """Kaiming-normal (fan_in) weights times ``factor`` and zero biases on every Conv2d inside ``modules``."""
    for module in modules:
        for mod in module.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, a=0, mode="fan_in")
                mod.weight.data.mul_(factor)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)


class MeanShift(nn.Conv2d):
    """A 1x1 convolution 3->3 that adds ``sign * rgb_range * mean`` per channel (identity weights at init).

    It is a real convolution with parameters so that a checkpoint's constants (which the original code
    lets training modify) are loaded as they are. The parameters start frozen (``requires_grad=False``).

    Args:
        sign: -1 subtracts the mean, +1 adds it back.
        rgb_range: pixel range the mean is expressed in (1 for [0,1] images, 255 for [0,255]).
        mean: per-channel mean in [0,1] units (default the DIV2K mean).
    """

    def __init__(self, *, sign: int, rgb_range: float = 1.0, mean: tuple[float, ...] = DIV2K_MEAN) -> None:
        super().__init__(3, 3, kernel_size=1)
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(mean))
        self.weight.requires_grad_(False)
        self.bias.requires_grad_(False)


class BatchNorm2d(nn.Module):
    """BatchNorm over channels with running statistics, without the ``num_batches_tracked`` counter.

    Numerically the same as ``nn.BatchNorm2d(c)`` with momentum 0.1 and eps 1e-5 (the counter only matters when
    momentum is None); leaving the integer counter out keeps every tensor of a checkpoint a float tensor.

    Args:
        channels: number of channels.
        eps: added to the variance (default 1e-5).
        momentum: running-statistics update factor in training mode (default 0.1).
    """

    def __init__(self, channels: int, *, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training,
            self.momentum,
            self.eps,
        )
