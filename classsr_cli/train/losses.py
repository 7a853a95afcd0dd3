"""ClassSR losses as pure functions (../reference CLASSSR.md §5).

* ``class_loss``: mean over the batch of ``(M-1) - sum_{i<j} |p_i - p_j|``: 0 for one-hot probabilities,
  ``M-1`` for uniform ones. It pushes the classifier to be decisive.
* ``average_loss``: ``sum_j |sum_b p_j(x_b) - B/M|`` divided by ``4B/M`` (so it lies in [0, 1]): it pushes the
  batch to spread evenly over the classes. ``prob_sum`` may be the sum gathered over all ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["LossWeights", "average_loss", "class_loss"]


@dataclass(frozen=True)
class LossWeights:
    """L = l1 * L1 + class_ * ClassLoss + average * AverageLoss; the paper's 2000 : 1 : 6 by default."""

    l1: float = 2000.0
    class_: float = 1.0
    average: float = 6.0


def class_loss(probs: torch.Tensor) -> torch.Tensor:
    """``probs`` ``(B, M)`` softmax output -> scalar."""
    m = probs.shape[1]
    diffs = (probs.unsqueeze(2) - probs.unsqueeze(1)).abs().sum(dim=(1, 2)) / 2
    return ((m - 1) - diffs).mean()


def average_loss(prob_sum: torch.Tensor, batch: int) -> torch.Tensor:
    """``prob_sum`` ``(M,)``: per-class sum of probabilities over a batch of ``batch`` samples -> scalar."""
    m = prob_sum.shape[0]
    return (prob_sum - batch / m).abs().sum() / (4 * batch / m)
