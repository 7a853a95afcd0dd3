"""The router: which branch serves each LR patch, then the per-class batched branch calls.

The seam is :meth:`Router.route`: it takes the model and a frame's (or a band's) LR patches with their
positions in the frame's grid, asks its **policy** for one class per patch, and runs each branch once per chunk
of its patches (:meth:`ClassSR.forward_routed <classsr_cli.models.classsr.ClassSR.forward_routed>`), handing
every chunk of HR outputs to the caller. Policies:

* :class:`Argmax`: the classifier's argmax (images, bench).
* :class:`Forced`: one branch for every patch (A/B runs; the classifier does not run).
* :class:`Hysteresis` (video): a patch keeps the class it had in the previous frame unless the classifier's
  probability for the new class beats the kept class's by at least ``margin`` (0: plain argmax, with the
  switch counts kept).

**Reuse** (:class:`Reuse`, video) skips a patch whose LR pixels differ from those its output was last computed
from by at most ``threshold`` 8-bit levels: neither the classifier nor a branch runs on it and its previous HR
output is used. It keeps every patch's last LR and HR pixels (memory: about 1.3 HR frames). The cell engine
(:mod:`~classsr_cli.engine.cells`, the default models) reuses cells the same way: it compares each cell with the
pixels its classifier window and branches see around it, keeps the last output frame, and computes the frame's
classifier pass and base everywhere (:meth:`Reuse.store_cells`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from classsr_cli.models.classsr import ClassSR

__all__ = ["Argmax", "Forced", "Hysteresis", "Policy", "Reuse", "RouteStats", "Router"]

#: Largest classifier call (patches); the same for every policy, so a patch is classified the same way.
CLASSIFY_BATCH = 1024
#: Receives ``(positions, hr)``: HR outputs of the patches at ``positions`` (in the routed batch).
Put = Callable[[torch.Tensor, torch.Tensor], None]
Progress = Callable[[int, int], None]


@dataclass
class RouteStats:
    """Counts over everything a router routed (a frame, a set of images or a whole video).

    Attributes:
        counts: patches per class (a reused patch counts in the class it keeps).
        computed: patches per class that went through a branch (the others were reused).
        reused: patches whose previous output was reused.
        held: patches that hysteresis kept in their class against the classifier's argmax.
        switches: patches whose class differs from the same patch's in the previous frame.
        switches_argmax: the same count for the raw argmax.
        compared: patches that had a previous frame in their scene (the denominator of the switch shares).
    """

    counts: tuple[int, int, int] = (0, 0, 0)
    computed: tuple[int, int, int] = (0, 0, 0)
    reused: int = 0
    held: int = 0
    switches: int = 0
    switches_argmax: int = 0
    compared: int = 0


def _add(a: tuple[int, int, int], classes: torch.Tensor) -> tuple[int, int, int]:
    c = torch.bincount(classes, minlength=3).tolist()
    return (a[0] + int(c[0]), a[1] + int(c[1]), a[2] + int(c[2]))


def _logits(model: ClassSR, x: torch.Tensor) -> torch.Tensor:
    if x.shape[0] == 0:
        return x.new_zeros((0, 3))
    return torch.cat([model.classifier(c) for c in x.split(CLASSIFY_BATCH)])


class Policy(Protocol):
    """Picks a class for each patch. ``classified``: whether the classifier runs (it counts in the FLOPs)."""

    classified: bool

    def start(self, count: int) -> None:
        """A new frame of ``count`` patches begins."""

    def classes(self, model: ClassSR, x: torch.Tensor, index: torch.Tensor, stats: RouteStats) -> torch.Tensor:
        """``(n,)`` int64 classes of the LR patches ``x`` ``(n, 3, p, p)`` at grid positions ``index``."""
        ...


class Argmax:
    """The classifier's decision, patch by patch: the argmax (the paper's models) or, for a model with
    ``deficit`` routing, the cheapest branch within ``tolerance`` (``None``: the model's calibrated one)."""

    classified = True

    def __init__(self, tolerance: float | None = None) -> None:
        if tolerance is not None and tolerance < 0:
            raise ValueError(f"tolerance must be at least 0, got {tolerance}")
        self.tolerance = tolerance

    def start(self, count: int) -> None:
        pass

    def classes(self, model: ClassSR, x: torch.Tensor, index: torch.Tensor, stats: RouteStats) -> torch.Tensor:
        return model.decide(_logits(model, x), self.tolerance)


class Forced:
    """Every patch to branch ``branch`` (0 light, 1 medium, 2 heavy); the classifier does not run."""

    classified = False

    def __init__(self, branch: int) -> None:
        if branch not in (0, 1, 2):
            raise ValueError(f"branch must be 0, 1 or 2, got {branch}")
        self.branch = branch

    def start(self, count: int) -> None:
        pass

    def classes(self, model: ClassSR, x: torch.Tensor, index: torch.Tensor, stats: RouteStats) -> torch.Tensor:
        return torch.full((x.shape[0],), self.branch, dtype=torch.long, device=x.device)


class Hysteresis:
    """Argmax with temporal hysteresis across frames (see the module docstring).

    Args:
        margin: probability margin a new class needs over the patch's current class (0: plain argmax).
    """

    classified = True

    def __init__(self, margin: float = 0.1, tolerance: float | None = None) -> None:
        if not 0 <= margin <= 1:
            raise ValueError(f"hysteresis is a probability margin in [0, 1], got {margin}")
        self.margin = margin
        self.tolerance = tolerance
        self.cls: torch.Tensor | None = None  # class of every grid position (-1: not seen yet)
        self.argmax: torch.Tensor | None = None

    def start(self, count: int) -> None:
        if self.cls is None or self.cls.numel() != count:
            self.cls = self.argmax = None

    def forget(self) -> None:
        """Start afresh at a scene cut: no patch keeps the class it had before (nor counts as a switch)."""
        for seen in (self.cls, self.argmax):
            if seen is not None:
                seen.fill_(-1)

    def classes(self, model: ClassSR, x: torch.Tensor, index: torch.Tensor, stats: RouteStats) -> torch.Tensor:
        logits = _logits(model, x)
        arg = model.decide(logits, self.tolerance)
        if self.cls is None or self.argmax is None:
            raise RuntimeError("Hysteresis.start was not called")
        prev, prev_arg = self.cls[index], self.argmax[index]
        seen = prev >= 0
        new = arg
        if self.margin > 0 and bool(seen.any()) and model.cfg.routing == "argmax":  # a margin on probabilities
            probs = torch.softmax(logits.float(), dim=1)
            gain = probs.gather(1, arg[:, None])[:, 0] - probs.gather(1, prev.clamp(min=0)[:, None])[:, 0]
            new = torch.where(seen & (gain < self.margin), prev, arg)
            stats.held += int((new != arg).sum())
        stats.switches += int((new != prev)[seen].sum())
        stats.switches_argmax += int((arg != prev_arg)[prev_arg >= 0].sum())
        self.cls[index] = new
        self.argmax[index] = arg
        return new

    def allocate(self, count: int, device: torch.device) -> None:
        if self.cls is None:
            self.cls = torch.full((count,), -1, dtype=torch.long, device=device)
            self.argmax = self.cls.clone()


class Reuse:
    """Skip patches unchanged since their output was computed (``threshold`` in 8-bit levels, 0: exactly)."""

    def __init__(self, threshold: int = 0) -> None:
        if not 0 <= threshold <= 255:
            raise ValueError(f"reuse threshold is in 0..255, got {threshold}")
        self.threshold = threshold
        self.lr: torch.Tensor | None = None  # LR pixels each grid position's output was computed from
        self.hr: torch.Tensor | None = None
        self.cls: torch.Tensor | None = None
        self.known: torch.Tensor | None = None

    def start(self, count: int) -> None:
        if self.known is None or self.known.numel() != count:
            self.lr = self.hr = self.cls = self.known = None

    def changed(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Positions (in ``x``) of the patches to compute."""
        if self.known is None or self.lr is None:
            return torch.arange(x.shape[0], device=x.device)
        # In 8-bit levels, unrounded: 16-bit frames change by fractions of one (an 8-bit frame's differences are
        # whole levels within float rounding, far below the 1e-3 margin).
        diff = (x.float() - self.lr[index]).abs().amax(dim=(1, 2, 3)).mul_(255)
        return ((diff > self.threshold + 1e-3) | ~self.known[index]).nonzero(as_tuple=True)[0]

    def store_cells(self, windows: torch.Tensor, fresh: torch.Tensor, classes: torch.Tensor) -> None:
        """The cell engine's frame: the LR ``windows`` ``(n, 3, w, w)`` and ``classes`` ``(n,)`` of the cells
        computed (``fresh``, ``(n,)`` bool); :attr:`hr` already holds the frame's output."""
        n = windows.shape[0]
        if self.known is None or self.lr is None or self.lr.shape != windows.shape:
            self.known = torch.zeros(n, dtype=torch.bool, device=windows.device)
            self.lr = windows.new_empty(windows.shape, dtype=torch.float32)
            self.cls = torch.zeros(n, dtype=torch.long)
        assert self.cls is not None
        at = fresh.to(windows.device)
        self.lr[at] = windows[at].float()
        self.known[at] = True
        self.cls[fresh.cpu()] = classes.cpu()[fresh.cpu()]

    def store(self, x: torch.Tensor, index: torch.Tensor, hr: torch.Tensor, classes: torch.Tensor, count: int) -> None:
        if self.known is None:
            self.known = torch.zeros(count, dtype=torch.bool, device=x.device)
            self.lr = x.new_empty((count, *x.shape[1:]), dtype=torch.float32)
            self.hr = hr.new_empty((count, *hr.shape[1:]))
            self.cls = torch.zeros(count, dtype=torch.long, device=x.device)
        assert self.lr is not None and self.hr is not None and self.cls is not None
        self.lr[index] = x.float()
        self.hr[index] = hr
        self.cls[index] = classes
        self.known[index] = True


class Router:
    """A policy, optional reuse, and the counts of what was routed.

    Args:
        policy: :class:`Argmax` (default), :class:`Forced` or :class:`Hysteresis`.
        reuse: a :class:`Reuse`, or ``None`` to compute every patch.
        batch_size: most patches per branch call.
    """

    def __init__(self, policy: Policy | None = None, *, reuse: Reuse | None = None, batch_size: int = 256) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.policy: Policy = policy or Argmax()
        self.reuse = reuse
        self.batch_size = batch_size
        self.stats = RouteStats()
        self.frames = 0
        self._count = 0
        self._cut = False  # forget() was called: the next frame is compared with none before it
        self._compare = False  # the frame begun has a previous frame to compare with

    @property
    def classified(self) -> bool:
        return self.policy.classified

    def count(self, classes: torch.Tensor, computed: tuple[int, int, int] | None = None) -> None:
        """Add a frame's (or band's) ``classes`` to the stats (the cell path's bookkeeping): all computed, or
        ``computed`` per class, the rest reused."""
        self.stats.counts = _add(self.stats.counts, classes)
        done = _add((0, 0, 0), classes) if computed is None else computed
        c = self.stats.computed
        self.stats.computed = (c[0] + done[0], c[1] + done[1], c[2] + done[2])
        self.stats.reused += classes.numel() - sum(done)

    def forget(self) -> None:
        """A scene cut: the next frame starts afresh, its classes held from none before it (:class:`Hysteresis`)
        and its patches not compared with the previous frame's."""
        self._cut = True
        if isinstance(self.policy, Hysteresis):
            self.policy.forget()

    def start(self, count: int, device: torch.device) -> None:
        """A new frame of ``count`` patches begins (state of another frame size is dropped)."""
        self.frames += 1
        self._compare, self._cut = self.frames > 1 and not self._cut, False
        self._count = count
        self.policy.start(count)
        if isinstance(self.policy, Hysteresis):
            self.policy.allocate(count, device)
        if self.reuse is not None:
            self.reuse.start(count)

    def route(
        self, model: ClassSR, x: torch.Tensor, index: torch.Tensor, put: Put, *, progress: Progress | None = None
    ) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Route the LR patches ``x`` ``(n, 3, p, p)`` (grid positions ``index``); every patch's HR output goes
        to ``put(positions, hr)`` once. Returns the ``(n,)`` classes and the patches computed per class."""
        stats = self.stats
        if self._compare:
            stats.compared += x.shape[0]
        todo = self.reuse.changed(x, index) if self.reuse is not None else None
        fresh = x if todo is None else x.index_select(0, todo)
        fresh_index = index if todo is None else index[todo]
        fresh = fresh.to(next(model.parameters()).dtype)
        classes = self.policy.classes(model, fresh, fresh_index, stats)

        def emit(chunk: torch.Tensor, hr: torch.Tensor) -> None:
            pos = chunk if todo is None else todo[chunk]
            put(pos, hr)
            if self.reuse is not None:
                self.reuse.store(x[pos], index[pos], hr, classes[chunk], self._count)

        if fresh.shape[0]:
            model.forward_routed(fresh, batch_size=self.batch_size, classes=classes, emit=emit, progress=progress)
        computed = _add((0, 0, 0), classes)
        all_classes = classes
        if todo is not None and self.reuse is not None and todo.numel() < x.shape[0]:
            stale = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
            stale[todo] = False
            pos = stale.nonzero(as_tuple=True)[0]
            assert self.reuse.hr is not None and self.reuse.cls is not None
            for chunk in pos.split(self.batch_size):
                put(chunk, self.reuse.hr[index[chunk]])
            all_classes = self.reuse.cls[index]
            stats.reused += pos.numel()
        stats.counts = _add(stats.counts, all_classes)
        stats.computed = (stats.computed[0] + computed[0], stats.computed[1] + computed[1], stats.computed[2] + computed[2])
        return all_classes, computed
