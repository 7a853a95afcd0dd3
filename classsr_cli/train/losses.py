"""ClassSR losses as pure functions (../reference CLASSSR.md §5).

* ``class_loss``: mean over the batch of ``(M-1) - sum_{i<j} |p_i - p_j|``: 0 for one-hot probabilities,
  ``M-1`` for uniform ones. It pushes the classifier to be decisive.
* ``average_loss``: ``sum_j |sum_b p_j(x_b) - B/M|`` divided by ``4B/M`` (so it lies in [0, 1]): it pushes the
  batch to spread evenly over the classes. ``prob_sum`` may be the sum gathered over all ranks.
* ``quantile_loss``: the pinball loss of a regression (the deficit classifier's), scaled so that the median
  (``q = 0.5``) is the L1 loss.
* ``mean_loss``: the Poisson deviance of ``10**pred`` against ``10**target``: the same regression aimed at the
  conditional mean of the label in levels² rather than a quantile of its log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["LossWeights", "average_loss", "class_loss", "mean_loss", "quantile_loss"]


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


def quantile_loss(pred: torch.Tensor, target: torch.Tensor, q: float = 0.5) -> torch.Tensor:
    """Twice the mean pinball loss of ``pred`` at quantile ``q`` of ``target``: minimised by the ``q``-quantile of
    the target given the input (``q = 0.5``: the L1 loss, the conditional median; above 0.5 errs high)."""
    if q == 0.5:
        return torch.nn.functional.l1_loss(pred, target)
    e = target - pred
    return 2 * torch.maximum(q * e, (q - 1) * e).mean()


def mean_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Poisson deviance (up to a constant) of ``mu = 10**pred`` against ``y = 10**target``, both log10 labels:
    ``mu - y * ln(mu)``, minimised where ``mu`` is the conditional mean of ``y`` given the input. A frame budget sums
    the predicted error increases of many cells, so it wants their means; the median of the log (the L1 loss)
    sits below the mean where a label's spread is wide (a rare sub-image whose medium branch fails badly)."""
    z = pred * math.log(10.0)
    return (torch.exp(z) - torch.pow(10.0, target) * z).mean()
