"""The ClassSR Class-Module: an LR patch -> logits over (light, medium, heavy)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Classifier"]


class Classifier(nn.Module):
    """Conv4x4/s4 3->C, three Conv1x1 C->C, Conv1x1 C->32 (LeakyReLU 0.1 after the first four),
    global average pool, Linear 32->3. 60,035 parameters at C = 128.

    Args:
        width: channels of the convolutions (default 128, the paper's).

    Input ``(N, 3, p, p)`` in ``[0, 1]`` with ``p`` a multiple of 4; output ``(N, 3)`` logits
    (softmax is applied by the caller).
    """

    def __init__(self, *, width: int = 128) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 4, stride=4)
        self.conv2 = nn.Conv2d(width, width, 1)
        self.conv3 = nn.Conv2d(width, width, 1)
        self.conv4 = nn.Conv2d(width, width, 1)
        self.conv5 = nn.Conv2d(width, 32, 1)
        self.act = nn.LeakyReLU(0.1, inplace=True)
        self.fc = nn.Linear(32, 3)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            nn.init.kaiming_normal_(conv.weight, a=0, mode="fan_in")
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        x = self.act(self.conv3(x))
        x = self.act(self.conv4(x))
        x = self.conv5(x)
        return self.fc(x.mean(dim=(2, 3)))
