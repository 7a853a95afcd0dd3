"""The ClassSR Class-Module: an LR patch -> logits over (light, medium, heavy)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Per 4x4 block features ``(N, 32, h/4, w/4)``: conv1 has stride 4 and every later conv is 1x1."""
        if x.dim() == 4 and not (torch.is_grad_enabled() and self.training):
            x = x.contiguous(memory_format=torch.channels_last)  # inference: oneDNN's fast layout (~7x here)
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        x = self.act(self.conv3(x))
        x = self.act(self.conv4(x))
        return self.conv5(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))

    def grid_scores(self, frame: torch.Tensor, patch: int, step: int) -> torch.Tensor:
        """Scores of every ``patch`` x ``patch`` window at stride ``step`` of ``frame``, in one pass.

        ``frame`` is ``(N, 3, H, W)`` with ``H - patch`` and ``W - patch`` multiples of ``step``, and ``patch`` and
        ``step`` multiples of 4. Because conv1 is 4x4 stride 4 and the rest are 1x1, the features of a window are
        a window of the frame's features, so the per-window mean is an average pool (``patch/4`` wide, stride
        ``step/4``): equal to running :meth:`forward` on every window, within float rounding, at the cost of one
        pass over the frame instead of ``(patch/step)²`` passes. Returns ``(N, rows, cols, 3)``.
        """
        if patch % 4 or step % 4:
            raise ValueError(f"patch and step must be multiples of 4, got {patch} and {step}")
        pooled = F.avg_pool2d(self.features(frame), kernel_size=patch // 4, stride=step // 4)
        return self.fc(pooled.permute(0, 2, 3, 1))
