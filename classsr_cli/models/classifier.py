"""The ClassSR Class-Module: an LR patch -> logits over (light, medium, heavy)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Classifier"]


class Classifier(nn.Module):
    """Conv4x4/s4 3->C, three ConvKxK C->C, Conv1x1 C->32 (LeakyReLU 0.1 after the first four),
    global average pool, Linear 32->3. 60,035 parameters at C = 128, K = 1 (the paper's).

    Args:
        width: channels of the convolutions (default 128, the paper's).
        kernel: side of the three middle convolutions: 1 (the paper's: every 4x4 block is seen alone, a bag of
            features) or an odd K > 1 (zero-padded, so each block's feature also sees its neighbours within the
            window: texture and edges across blocks; the window is then classified on its own, see
            :meth:`grid_scores`).

    Input ``(N, 3, p, p)`` in ``[0, 1]`` with ``p`` a multiple of 4; output ``(N, 3)`` logits
    (softmax is applied by the caller).
    """

    def __init__(self, *, width: int = 128, kernel: int = 1) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"the classifier's kernel must be odd and at least 1, got {kernel}")
        self.kernel = kernel
        self.conv1 = nn.Conv2d(3, width, 4, stride=4)
        self.conv2 = nn.Conv2d(width, width, kernel, padding=kernel // 2)
        self.conv3 = nn.Conv2d(width, width, kernel, padding=kernel // 2)
        self.conv4 = nn.Conv2d(width, width, kernel, padding=kernel // 2)
        self.conv5 = nn.Conv2d(width, 32, 1)
        self.act = nn.LeakyReLU(0.1, inplace=True)
        self.fc = nn.Linear(32, 3)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            nn.init.kaiming_normal_(conv.weight, a=0, mode="fan_in")
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Per 4x4 block features ``(N, 32, h/4, w/4)`` (conv1 has stride 4)."""
        if x.dim() == 4 and not (torch.is_grad_enabled() and self.training):
            x = x.contiguous(memory_format=torch.channels_last)  # inference: oneDNN's fast layout (~7x here)
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        x = self.act(self.conv3(x))
        x = self.act(self.conv4(x))
        return self.conv5(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))

    def grid_scores(self, frame: torch.Tensor, patch: int, step: int, batch_size: int = 1024) -> torch.Tensor:
        """Scores of every ``patch`` x ``patch`` window at stride ``step`` of ``frame``: equal to :meth:`forward`
        on every window, within float rounding. Returns ``(N, rows, cols, 3)``.

        ``frame`` is ``(N, 3, H, W)`` with ``H - patch`` and ``W - patch`` multiples of ``step``, and ``patch`` and
        ``step`` multiples of 4. With ``kernel`` 1 (conv1 is 4x4 stride 4 and the rest are 1x1) the features of a
        window are a window of the frame's features, so the per-window mean is an average pool (``patch/4``
        wide, stride ``step/4``) over one pass on the frame instead of ``(patch/step)²`` passes. A larger kernel
        sees across blocks, so each window runs on its own (``batch_size`` windows a call).
        """
        if patch % 4 or step % 4:
            raise ValueError(f"patch and step must be multiples of 4, got {patch} and {step}")
        if self.kernel == 1:
            pooled = F.avg_pool2d(self.features(frame), kernel_size=patch // 4, stride=step // 4)
            return self.fc(pooled.permute(0, 2, 3, 1))
        n = frame.shape[0]
        wins = frame.unfold(2, patch, step).unfold(3, patch, step)  # (N, 3, rows, cols, p, p)
        rows, cols = wins.shape[2], wins.shape[3]
        flat = wins.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, patch, patch)
        scores = torch.cat([self(c) for c in flat.split(batch_size)]) if flat.shape[0] else flat.new_zeros((0, 3))
        return scores.view(n, rows, cols, 3)
