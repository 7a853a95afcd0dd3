"""The ClassSR Class-Module: an LR patch -> logits over (light, medium, heavy)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from classsr_cli.config import CLASSIFIER_CONTEXTS, CLASSIFIER_INITS

__all__ = ["Classifier"]


class _ZeroMeanConv2d(nn.Conv2d):
    """A convolution whose kernels are used minus their spatial mean: blind to a constant added to a channel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight - self.weight.mean(dim=(2, 3), keepdim=True), self.bias)


class Classifier(nn.Module):
    """Conv4x4/s4 3->C, three ConvKxK C->C, Conv1x1 C->32 (LeakyReLU 0.1 after the first four),
    global average pool, Linear 32->3. 60,035 parameters at C = 128, K = 1 (the paper's).

    Args:
        width: channels of the convolutions (default 128, the paper's).
        kernel: side of the three middle convolutions: 1 (the paper's: every 4x4 block is seen alone, a bag of
            features) or an odd K > 1 (zero-padded, so each block's feature also sees its neighbours within the
            window: texture and edges across blocks; the window is then classified on its own, see
            :meth:`grid_scores`).
        hidden: 0 (the paper's): the pooled features go through one Linear 32->3. ``H > 0``: Linear 32->H,
            LeakyReLU, Linear H->3 (:meth:`head`), still once per window, after the pooling.
        zero_mean: conv1's kernels are used minus their mean over the 4x4 block, so a block's features do not
            depend on its mean colour: flat windows score alike whatever their colour (texture, edges and
            colour *contrast* within a block are seen as before). Same weights and keys as the paper's.
        context: with ``kernel`` above 1, what the middle convolutions see past a window's edge: ``window``
            (zero padding: each window is scored on its own) or ``frame`` (the frame's own pixels, :attr:`margin`
            of them on each side: :meth:`forward_context`; on a frame :meth:`grid_scores` runs the convolutions
            once over it and pools each window's blocks: one call instead of one per window, though the ring of
            context costs about what the windows' overlap did; docs/experiments.md, thirty-third pass).

    Input ``(N, 3, p, p)`` in ``[0, 1]`` with ``p`` a multiple of 4; output ``(N, 3)`` logits
    (softmax is applied by the caller).
    """

    def __init__(
        self, *, width: int = 128, kernel: int = 1, hidden: int = 0, zero_mean: bool = False, context: str = "window"
    ) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"the classifier's kernel must be odd and at least 1, got {kernel}")
        if context not in CLASSIFIER_CONTEXTS:
            raise ValueError(f"the classifier's context must be one of {', '.join(CLASSIFIER_CONTEXTS)}, got {context!r}")
        if hidden < 0:
            raise ValueError(f"the classifier's hidden units must be at least 0, got {hidden}")
        self.kernel = kernel
        self.zero_mean = zero_mean
        self.context = context
        self.conv1 = (_ZeroMeanConv2d if zero_mean else nn.Conv2d)(3, width, 4, stride=4)
        self.conv2 = nn.Conv2d(width, width, kernel, padding=kernel // 2)
        self.conv3 = nn.Conv2d(width, width, kernel, padding=kernel // 2)
        self.conv4 = nn.Conv2d(width, width, kernel, padding=kernel // 2)
        self.conv5 = nn.Conv2d(width, 32, 1)
        self.act = nn.LeakyReLU(0.1, inplace=True)
        # The head after the pooling: the paper's one Linear, or (hidden > 0) Linear-LeakyReLU-Linear, which can
        # bend the pooled features' linear response (deficits span decades; a linear head floors flat windows).
        self.hidden = nn.Linear(32, hidden) if hidden else None
        self.fc = nn.Linear(hidden or 32, 3)
        self.init_weights("paper")

    @torch.no_grad()
    def init_weights(self, scheme: str) -> None:
        """Re-initialise the convolutions: ``paper``, Kaiming-normal scaled by 0.1 (the ClassSR code's), or
        ``kaiming``, unscaled for the LeakyReLU's slope. Biases zero; the head keeps PyTorch's default."""
        if scheme not in CLASSIFIER_INITS:
            raise ValueError(f"unknown classifier init {scheme!r}")
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            if scheme == "paper":
                nn.init.kaiming_normal_(conv.weight, a=0, mode="fan_in")
                conv.weight.mul_(0.1)
            else:
                nn.init.kaiming_normal_(conv.weight, a=0.1, mode="fan_in")
            nn.init.zeros_(conv.bias)

    def _hidden(self, x: torch.Tensor) -> torch.Tensor:
        """What conv5 (1x1, linear) takes: ``(N, C, h/4, w/4)`` after conv4's activation."""
        if x.dim() == 4 and not (torch.is_grad_enabled() and self.training):
            x = x.contiguous(memory_format=torch.channels_last)  # inference: oneDNN's fast layout (~7x here)
        return self._middle(self.act(self.conv1(x)))

    def _middle(self, x: torch.Tensor) -> torch.Tensor:
        """conv2-4 with their activations, on conv1's features ``(N, C, h/4, w/4)``."""
        x = self.act(self.conv2(x))
        x = self.act(self.conv3(x))
        return self.act(self.conv4(x))

    def _hidden_blocks(self, frame: torch.Tensor) -> torch.Tensor:
        """:meth:`_hidden` for ``kernel`` 1 as four matrix products over the frame's 4x4 blocks (each block a row
        of 48 values): the same numbers within float rounding, and cheaper on a frame than four oneDNN
        convolutions (B100's ×4 LR: 0.43 against 0.69 ms a frame here, docs/experiments.md). ``(N, C, h/4, w/4)``,
        channels-last in memory."""
        n, c, hh, ww = frame.shape
        h, w = hh // 4, ww // 4
        rows = frame[:, :, : 4 * h, : 4 * w].reshape(n, c, h, 4, w, 4).permute(0, 2, 4, 1, 3, 5).reshape(-1, c * 16)
        w1 = self.conv1.weight
        if self.zero_mean:
            w1 = w1 - w1.mean(dim=(2, 3), keepdim=True)
        z = F.leaky_relu(F.linear(rows, w1.flatten(1), self.conv1.bias), 0.1, inplace=True)
        for conv in (self.conv2, self.conv3, self.conv4):
            z = F.leaky_relu(F.linear(z, conv.weight.flatten(1), conv.bias), 0.1, inplace=True)
        return z.view(n, h, w, -1).permute(0, 3, 1, 2)

    def head(self, pooled: torch.Tensor) -> torch.Tensor:
        """Scores from window-pooled features ``(..., 32)``: the layers that run once per window."""
        if self.hidden is not None:
            pooled = F.leaky_relu(self.hidden(pooled), 0.1)
        return self.fc(pooled)

    def head_flops(self) -> int:
        """FLOPs (2 per multiply-add) of what runs once per window after the pooling: conv5 (1x1, linear, so
        pooled first: :meth:`pooled_head`) and :meth:`head`."""
        return 2 * self.conv5.in_channels * self.conv5.out_channels + sum(
            2 * m.in_features * m.out_features for m in (self.hidden, self.fc) if m is not None)

    def functional_flops(self, x: torch.Tensor) -> int:
        """FLOPs of the work done outside the modules' own calls (for :func:`~classsr_cli.engine.flops.count_flops`,
        whose hooks count conv1-4 and the head): conv5, once per window of ``x`` (:meth:`pooled_head`)."""
        return 2 * self.conv5.in_channels * self.conv5.out_channels * x.shape[0]

    @property
    def margin(self) -> int:
        """LR pixels of context a window is scored with on each side: 0 with ``context = "window"``; with
        ``"frame"`` the reach of the three middle convolutions, ``3 * (kernel // 2)`` blocks of 4 pixels."""
        return 12 * (self.kernel // 2) if self.context == "frame" else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of windows ``(N, 3, p, p)`` given alone. With ``frame`` context each is replicate-padded by
        :attr:`margin` first: scored as a frame of one window is (:meth:`grid_scores` gives a frame's windows
        their real context)."""
        if self.margin:
            return self.forward_context(F.pad(x, (self.margin,) * 4, mode="replicate"))
        return self.pooled_head(self._hidden(x))

    def pooled_head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores from :meth:`_hidden` features ``(N, C, h, w)``, all of whose blocks are pooled: conv5 (1x1,
        linear) commutes with the mean, so it runs once per window on the pooled features, not on every block
        (the same numbers within float rounding as pooling conv5's output over the blocks)."""
        return self._conv5_head(hidden.mean(dim=(2, 3)))

    def _conv5_head(self, pooled: torch.Tensor) -> torch.Tensor:
        """conv5 (1x1, linear) and :meth:`head` on window-pooled features ``(..., C)``."""
        return self.head(F.linear(pooled, self.conv5.weight.flatten(1), self.conv5.bias))

    def forward_context(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of windows with :attr:`margin` pixels of context on each side, ``(N, 3, p + 2m, p + 2m)``: the
        convolutions run over all of it, the window's own blocks are pooled. How a ``frame`` classifier trains,
        and what :meth:`grid_scores` computes for every window of a frame at once."""
        b = self.margin // 4
        hidden = self._hidden(x)
        if b:
            hidden = hidden[:, :, b:-b, b:-b]
        return self.pooled_head(hidden)

    def grid_scores(self, frame: torch.Tensor, patch: int, step: int, batch_size: int = 1024) -> torch.Tensor:
        """Scores of every ``patch`` x ``patch`` window at stride ``step`` of ``frame``: equal to :meth:`forward`
        on every window, within float rounding. Returns ``(N, rows, cols, 3)``. With ``frame`` context the frame
        also holds :attr:`margin` pixels of context on each side (its windows start ``margin`` in), and the
        scores equal :meth:`forward_context` on each window with its context: the convolutions run once over
        the frame (each 4x4 block once, not once per window that holds it).

        ``frame`` is ``(N, 3, H, W)`` with ``H - patch`` and ``W - patch`` multiples of ``step``, and ``patch`` and
        ``step`` multiples of 4. With ``kernel`` 1 (conv1 is 4x4 stride 4 and the rest are 1x1) the features of a
        window are a window of the frame's features, so the per-window mean is an average pool (``patch/4``
        wide, stride ``step/4``) over one pass on the frame instead of ``(patch/step)²`` passes. A larger kernel
        sees across blocks, so each window runs its middle convolutions on its own (``batch_size`` windows a
        call), on conv1's features computed once over the frame.
        """
        if patch % 4 or step % 4:
            raise ValueError(f"patch and step must be multiples of 4, got {patch} and {step}")
        if self.margin:  # frame context: the frame carries ``margin`` pixels around its windows; one pass over it
            b = self.margin // 4
            hidden = self._hidden(frame)[:, :, b:-b, b:-b]
            pooled = F.avg_pool2d(hidden, kernel_size=patch // 4, stride=step // 4)
            return self._conv5_head(pooled.permute(0, 2, 3, 1))
        if self.kernel == 1:  # conv5 is 1x1 and linear: pooled before it, it runs once per window, not per block
            pooled = F.avg_pool2d(self._hidden_blocks(frame), kernel_size=patch // 4, stride=step // 4)
            return self._conv5_head(pooled.permute(0, 2, 3, 1))
        # conv1 (4x4, stride 4) sees each 4x4 block alone, and every window starts on a block: it runs once over
        # the frame, and each window takes its 8x8 blocks of features, laid channels-last (oneDNN's fast layout)
        # by one copy of whole feature vectors, instead of a copy of every window's pixels
        n = frame.shape[0]
        blocks = self.act(self.conv1(frame))
        wins = blocks.unfold(2, patch // 4, step // 4).unfold(3, patch // 4, step // 4)  # (N, C, rows, cols, b, b)
        rows, cols = wins.shape[2], wins.shape[3]
        flat = wins.permute(0, 2, 3, 4, 5, 1).reshape(-1, patch // 4, patch // 4, blocks.shape[1]).permute(0, 3, 1, 2)
        scores = (torch.cat([self.pooled_head(self._middle(c)) for c in flat.split(batch_size)]) if flat.shape[0]
                  else flat.new_zeros((0, 3)))
        return scores.view(n, rows, cols, 3)
