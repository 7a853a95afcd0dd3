"""ClassSR: a classifier that routes each LR patch to one of three SR branches of decreasing width."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from classsr_cli.config import ClassSRConfig
from classsr_cli.models import build_branch
from classsr_cli.models.classifier import Classifier

__all__ = ["DEFICIT_EPS", "ClassSR", "budget_classes", "capped_classes", "cheapest_within", "deficit_classes",
           "predicted_loss_db", "priced_classes"]

#: ``deficit`` routing: the classifier predicts ``log10(DEFICIT_EPS + d_k)``, ``d_k`` the increase of branch ``k``'s
#: mean squared error over the heavy branch's on the patch, in 8-bit levels² (the floor keeps flat patches,
#: where every branch is near exact, from dominating the regression).
DEFICIT_EPS = 0.1


def _levels(scores: torch.Tensor) -> torch.Tensor:
    """The classifier's ``log10(DEFICIT_EPS + x)`` outputs back in 8-bit levels², at least 0, float32."""
    return (torch.pow(10.0, scores.float()) - DEFICIT_EPS).clamp_min(0)


def _db_budget(tolerance_db: float, heavy_error: float) -> float:
    """The summed error increase over heavy (levels²) that costs ``tolerance_db`` of PSNR where the heavy branch's
    own summed error is ``heavy_error``: ``10*log10(1 + d / e) <= t`` is ``d <= (10**(t/10) - 1) * e``."""
    return (10 ** (tolerance_db / 10) - 1) * heavy_error


def deficit_classes(scores: torch.Tensor, tolerance: float) -> torch.Tensor:
    """The cheapest class whose predicted error increase ``10**score - DEFICIT_EPS`` is at most ``tolerance``.

    ``scores`` is ``(N, 3)``; the heavy class (2) always qualifies. Returns ``(N,)`` int64.
    """
    ok = (torch.pow(10.0, scores.float()) - DEFICIT_EPS) <= tolerance
    heavy = torch.full_like(ok[:, 0], 2, dtype=torch.long)
    return torch.where(ok[:, 0], 0, torch.where(ok[:, 1], 1, heavy))


def priced_classes(scores: torch.Tensor, price: float, costs: tuple[float, float, float]) -> torch.Tensor:
    """Per patch, the branch that minimises its predicted error increase over the heavy branch plus ``price``
    times its compute as a share of the heavy branch's: ``argmin_k d_k + price * cost_k / cost_heavy``.

    ``scores`` ``(N, 3)`` as :func:`budget_classes` takes them (the third column, heavy's own error, is not used:
    heavy's increase over itself is 0); ``price`` in 8-bit levels² per heavy patch's compute. Unlike
    :func:`deficit_classes`, which takes the cheapest branch within one tolerance, a patch leaves the light class
    where the medium branch saves more than ``price`` times its extra compute and reaches the heavy one only where
    that saves more than ``price`` times the heavy branch's extra compute (compute as a share of heavy's): the
    exact optimum of a budget spread over many frames at one fixed price (:func:`budget_classes` finds each
    frame's own). Ties go to the cheaper branch.
    Returns ``(N,)`` int64."""
    top = max(max(costs), 1e-12)
    d = _levels(scores[:, :2])
    total = torch.stack([d[:, 0] + price * costs[0] / top, d[:, 1] + price * costs[1] / top,
                         torch.full_like(d[:, 0], price * costs[2] / top)], dim=1)
    return total.argmin(1)


def budget_classes(scores: torch.Tensor, tolerance_db: float, costs: tuple[float, float, float]) -> torch.Tensor:
    """The cheapest classes for a set of patches (a frame, or a band of one) whose predicted PSNR loss against
    the heavy branch on all of them together is at most ``tolerance_db``.

    ``scores`` ``(N, 3)``: ``log10(DEFICIT_EPS + d_light)``, ``log10(DEFICIT_EPS + d_medium)`` (each branch's
    mean squared error increase over heavy) and ``log10(DEFICIT_EPS + e_heavy)`` (the heavy branch's own mean
    squared error), 8-bit levels², patches of equal area. The loss of a routing is ``10*log10(1 + sum(d) /
    sum(e_heavy))``, so the budget is ``sum(d) <= (10**(tolerance_db/10) - 1) * sum(e_heavy)``. Each patch takes
    ``argmin_k cost_k + lam * d_k`` (``costs``: each branch's compute per pixel, heavy largest) with the
    smallest ``lam`` that keeps the budget, found exactly: as ``lam`` grows a patch moves to a heavier class at
    the breakpoints of the lower envelope of its three lines (light -> medium -> heavy, or light -> heavy when
    medium is never the cheapest), each move lowering the spent budget; the moves sorted by ``lam``, the first
    prefix that brings the spending within the budget sets ``lam`` (a patch moves at its breakpoint). A textured
    frame, where heavy's own error is large, affords more cheap patches than a flat one. Returns ``(N,)`` int64;
    tolerance 0: every patch heavy.
    """
    n = scores.shape[0]
    if n == 0 or tolerance_db <= 0:
        return torch.full((n,), 2, dtype=torch.long, device=scores.device)
    # One sort of at most 2N breakpoints: NumPy on the host (the planner wants the classes there anyway).
    v = np.maximum(np.power(10.0, scores.detach().double().cpu().numpy()) - DEFICIT_EPS, 0.0)
    budget = _db_budget(tolerance_db, float(v[:, 2].sum()))
    return torch.from_numpy(cheapest_within(v[:, 0], v[:, 1], budget, costs)).to(scores.device)


def capped_classes(scores: torch.Tensor, classes: torch.Tensor, cap_db: float,
                   costs: tuple[float, float, float]) -> torch.Tensor:
    """``classes`` of a set of patches (a frame, or a band of one), unless their predicted PSNR loss against the
    heavy branch on all of them together (``10*log10(1 + sum(d) / sum(e_heavy))``, ``scores`` as
    :func:`budget_classes` takes them) exceeds ``cap_db``: then the cheapest routing within ``cap_db``
    (:func:`budget_classes`), which costs more. A per-patch rule's threshold is in levels², the same on every
    picture; on a clean, smooth one, whose errors are all small, the same levels² are many dB. One host sync."""
    if scores.shape[0] == 0:
        return classes
    spent, heavy = _spent(scores, classes)
    if bool(spent <= _db_budget(cap_db, 1.0) * heavy):  # the one host sync
        return classes
    return budget_classes(scores, cap_db, costs)


def _spent(scores: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The predicted error increase over heavy of ``classes`` summed over the patches, and heavy's own summed
    error (levels², float64 scalars on ``scores``' device): what :func:`capped_classes` weighs."""
    v = _levels(scores)
    spent = torch.where(classes == 0, v[:, 0], torch.where(classes == 1, v[:, 1], torch.zeros_like(v[:, 0])))
    return spent.sum().double(), v[:, 2].sum().double()


def predicted_loss_db(scores: torch.Tensor, classes: torch.Tensor) -> float:
    """The PSNR loss against the heavy branch that a budget classifier's ``scores`` ``(N, 3)`` predict for
    ``classes`` over the ``N`` patches together, ``10*log10(1 + sum(d) / sum(e_heavy))``: the quantity a frame cap
    bounds (:func:`capped_classes` keeps the classes where it is at most the cap). 0 for no patches."""
    if scores.shape[0] == 0:
        return 0.0
    spent, heavy = _spent(scores, classes)
    return float(10 * torch.log10(1 + spent / heavy.clamp_min(1e-12)))


def cheapest_within(d0: np.ndarray, d1: np.ndarray, budget: float, costs: tuple[float, float, float]) -> np.ndarray:
    """The classes ``(N,)`` int64 of least total cost whose summed error increase over heavy (``d0`` for a light
    patch, ``d1`` for a medium one, 0 for heavy; levels², non-negative) is at most ``budget``, by the exact
    Lagrangian sweep :func:`budget_classes` describes."""
    n = len(d0)
    top = max(max(costs), 1e-12)
    c0, c1, c2 = (c / top for c in costs)
    with np.errstate(divide="ignore"):
        to_medium = np.where(d0 > d1, (c1 - c0) / np.where(d0 > d1, d0 - d1, 1.0), np.inf)  # light -> medium
        to_heavy = np.where(d1 > 0, (c2 - c1) / np.where(d1 > 0, d1, 1.0), np.inf)  # medium -> heavy
        skip = np.where(d0 > 0, (c2 - c0) / np.where(d0 > 0, d0, 1.0), np.inf)  # light -> heavy
    mid = to_medium < to_heavy  # medium is the cheapest for some lam
    leave = np.where(mid, to_medium, skip)  # the lam at which a patch leaves the light class
    then = np.where(mid, to_heavy, np.inf)  # ... and the medium class
    need = float(d0.sum()) - budget  # what the moves must save (every patch light at lam = 0)
    if n == 0 or need <= 0:
        return np.zeros(n, dtype=np.int64)
    lams = np.concatenate([leave, then])
    saved = np.concatenate([np.where(mid, d0 - d1, d0), np.where(mid, d1, 0.0)])
    order = np.argsort(lams, kind="stable")
    at = min(int(np.searchsorted(np.cumsum(saved[order]), need)), 2 * n - 1)
    lam = lams[order[at]]
    moved = leave <= lam
    return np.where(moved & (~mid | (then <= lam)), 2, np.where(moved, 1, 0)).astype(np.int64)


class ClassSR(nn.Module):
    """Classifier + ``branches[0..2]`` (light, medium, heavy).

    Two forwards, no mode flag:

    * :meth:`forward_soft` (training): every branch runs on every patch; the output is the
      probability-weighted sum of the branch outputs.
    * :meth:`forward_routed` (inference): argmax per patch, patches grouped by class, each branch run once
      per chunk of at most ``batch_size`` of its patches; empty classes are skipped.

    Tensors are ``(N, 3, p, p)`` LR patches in ``[0, 1]``; outputs ``(N, 3, s*p, s*p)``.
    """

    def __init__(self, cfg: ClassSRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.classifier = Classifier(
            width=cfg.classifier_width, kernel=cfg.classifier_kernel, hidden=cfg.classifier_hidden,
            zero_mean=cfg.classifier_zero_mean, context=cfg.classifier_context,
        )
        self.branches = nn.ModuleList([build_branch(cfg.branch(k)) for k in range(3)])

    @property
    def scale(self) -> int:
        return self.cfg.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_soft(x)[0]

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(probs, outs)``: softmax ``(N, 3)`` and every branch's output stacked, ``(3, N, 3, s*p, s*p)``."""
        probs = torch.softmax(self.classifier(x), dim=1)
        return probs, torch.stack([branch(x) for branch in self.branches])

    def forward_soft(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(sr, probs)``: the probability-weighted sum of the branch outputs and the ``(N, 3)`` softmax."""
        probs, outs = self.forward_all(x)
        return (probs.t()[:, :, None, None, None] * outs).sum(0), probs

    def decide(self, scores: torch.Tensor, tolerance: float | None = None) -> torch.Tensor:
        """Classes ``(N,)`` from classifier outputs ``(N, 3)``: argmax; for ``deficit`` routing the cheapest
        branch within ``tolerance`` per patch; for ``budget`` routing the cheapest routing of the ``N`` patches
        together within ``tolerance`` dB (:func:`budget_classes`). ``tolerance`` defaults to the model's
        calibrated :attr:`ClassSRConfig.tolerance`; a budget model with a calibrated
        :attr:`ClassSRConfig.cell_price` (or :attr:`ClassSRConfig.cell_tolerance`) decides by default per patch at
        that price (:func:`priced_classes`) or tolerance instead, capped at :attr:`ClassSRConfig.frame_cap_db` of
        predicted loss over the ``N`` patches where that is set (:func:`capped_classes`)."""
        if self.cfg.routing == "argmax":
            return scores.argmax(1)
        if self.cfg.routing == "budget":
            if tolerance is None and (self.cfg.cell_price > 0 or self.cfg.cell_tolerance > 0):
                classes = (priced_classes(scores, self.cfg.cell_price, self.branch_costs) if self.cfg.cell_price > 0
                           else deficit_classes(scores, self.cfg.cell_tolerance))
                if self.cfg.frame_cap_db > 0:
                    return capped_classes(scores, classes, self.cfg.frame_cap_db, self.branch_costs)
                return classes
            return budget_classes(scores, self.cfg.tolerance if tolerance is None else tolerance, self.branch_costs)
        return deficit_classes(scores, self.cfg.tolerance if tolerance is None else tolerance)

    @property
    def branch_costs(self) -> tuple[float, float, float]:
        """Compute per LR pixel of each branch, as its convolution weights (multiply-adds per pixel of a network
        that runs at LR resolution; 0 for a width-0 branch): what ``budget`` routing trades against quality."""
        cached = self.__dict__.get("_branch_costs")
        if cached is None:
            each = [float(sum(p.numel() for p in b.parameters() if p.dim() == 4)) for b in self.branches]
            cached = self.__dict__["_branch_costs"] = (each[0], each[1], each[2])
        return cached

    @torch.no_grad()
    def classify(self, x: torch.Tensor, batch_size: int = 1024, tolerance: float | None = None) -> torch.Tensor:
        """Class index per patch, ``(N,)`` int64, computed in chunks of ``batch_size``."""
        if x.shape[0] == 0:
            return torch.empty(0, dtype=torch.long, device=x.device)
        return torch.cat([self.decide(self.classifier(c), tolerance) for c in x.split(batch_size)])

    @torch.no_grad()
    def frame_scores(self, frame: torch.Tensor, step: int) -> torch.Tensor:
        """Classifier scores ``(rows, cols, 3)`` of the ``step`` x ``step`` cells of ``frame`` ``(1, 3, H, W)``
        in one pass, as the engine computes them.

        Cell ``(r, c)`` covers LR rows ``r*step .. r*step+step-1`` (columns alike; the last row and column may
        stick out of the frame) and is scored on the ``patch`` x ``patch`` window centred on it, the frame
        replicate-padded by ``(patch - step) / 2`` (and the classifier's context): :meth:`Classifier.grid_scores`.
        """
        return self._window_scores(self.scored_frame(frame, step), step)

    def scored_frame(self, frame: torch.Tensor, step: int) -> torch.Tensor:
        """``frame`` replicate-padded as :meth:`frame_scores` scores it: by ``(patch - step) / 2`` and the classifier's
        context on every side, and to whole cells on the right and bottom."""
        p = self.cfg.patch
        if (p - step) % 2 or step > p:
            raise ValueError(f"step must be at most the patch ({p}) and differ from it by an even number, got {step}")
        _, _, h, w = frame.shape
        rows, cols = -(-h // step), -(-w // step)
        m = (p - step) // 2 + self.classifier.margin
        return F.pad(frame, (m, cols * step - w + m, m, rows * step - h + m), mode="replicate")

    def _window_scores(self, windows: torch.Tensor, step: int) -> torch.Tensor:
        """:meth:`Classifier.grid_scores` of one frame's windows in the classifier's dtype, ``(rows, cols, 3)``."""
        return self.classifier.grid_scores(windows.to(next(self.classifier.parameters()).dtype), self.cfg.patch,
                                           step)[0]

    def _grid_classes(self, scores: torch.Tensor, tolerance: float | None) -> torch.Tensor:
        """:meth:`decide` over a frame's ``(rows, cols, 3)`` scores at once; ``(rows, cols)``."""
        return self.decide(scores.reshape(-1, 3), tolerance).view(scores.shape[0], scores.shape[1])

    @torch.no_grad()
    def classify_frame(self, frame: torch.Tensor, step: int, tolerance: float | None = None) -> torch.Tensor:
        """Classes ``(rows, cols)`` of the ``step`` x ``step`` cells of ``frame`` ``(1, 3, H, W)``:
        :meth:`frame_scores`, then :meth:`decide`."""
        return self._grid_classes(self.frame_scores(frame, step), tolerance)

    @torch.no_grad()
    def classify_windows(self, windows: torch.Tensor, step: int, tolerance: float | None = None) -> torch.Tensor:
        """Classes ``(rows, cols)`` of every ``patch`` x ``patch`` window at stride ``step`` of ``windows``
        ``(1, 3, (rows-1)*step + patch + 2c, (cols-1)*step + patch + 2c)`` (``c`` the classifier's context,
        :attr:`~classsr_cli.models.classifier.Classifier.margin`, around them): one classifier pass, then
        :meth:`decide`."""
        return self._grid_classes(self._window_scores(windows, step), tolerance)

    @torch.no_grad()
    def forward_routed(
        self,
        x: torch.Tensor,
        *,
        batch_size: int = 256,
        force_branch: int | None = None,
        classes: torch.Tensor | None = None,
        progress: Callable[[int, int], None] | None = None,
        emit: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hard routing. Returns ``(sr, classes)``.

        Args:
            x: LR patches ``(N, 3, p, p)``.
            batch_size: most patches one branch call sees (bounds memory).
            force_branch: run every patch through this branch (A/B runs); ``classes`` reports it.
            classes: precomputed classes (skips the classifier).
            progress: called as ``progress(done, total)`` after every branch call.
            emit: called as ``emit(index, sr_chunk)`` with every branch call's output instead of gathering the
                outputs into ``sr`` (which is then empty, ``(0, 3, s*p, s*p)``); e.g. a
                :class:`~classsr_cli.engine.stitching.CropCanvas` ``put``, which copies each chunk into the frame.
        """
        n = x.shape[0]
        if classes is None:
            if force_branch is not None:
                classes = torch.full((n,), force_branch, dtype=torch.long, device=x.device)
            else:
                classes = self.classify(x)
        s = self.cfg.scale
        out = x.new_empty((0 if emit else n, 3, x.shape[2] * s, x.shape[3] * s))
        done = 0
        for k, branch in enumerate(self.branches):
            idx = (classes == k).nonzero(as_tuple=True)[0]
            for chunk in idx.split(batch_size):  # an empty class yields no chunk: its branch never runs
                sr = branch(x.index_select(0, chunk))
                if emit is None:
                    out[chunk] = sr
                else:
                    emit(chunk, sr)
                done += chunk.numel()
                if progress is not None:
                    progress(done, n)
        return out, classes
