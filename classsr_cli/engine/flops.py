"""FLOPs accounting, in two conventions.

FLOPs = 2 x multiply-accumulates (MACs); biases, activations, pooling and the SRResNet bilinear skip are
ignored (they are a fraction of a percent). For a convolution producing ``Cout x Ho x Wo`` from ``Cin``
channels with a ``k x k`` kernel and ``g`` groups, MACs = ``Ho*Wo*Cout*(Cin/g)*k*k``; for a Linear layer,
``in*out``.

* ``real``: what the layers compute as they run. A transposed convolution does ``Hin*Win*Cin*(Cout/g)*k*k`` MACs
  (each input pixel scatters one ``k x k`` kernel per output channel); FSRCNN's, which runs as a convolution on
  the LR grid plus ``pixel_shuffle`` (``real_flops``), is counted as that convolution. Work a module does with
  ``torch.nn.functional`` (the residual family's fixed bicubic path) is counted through its
  ``functional_flops``.
* ``paper``: the convention of ClassSR's ``cal_FLOPs`` table, which counts FSRCNN's transposed convolution as a
  ``k x k`` convolution evaluated at every HR output pixel, ``scale^2`` times the real cost (468 MFLOPs for
  FSRCNN-56 per 32x32 patch instead of the 71.5 it runs). Everything else is counted as in ``real``.

Counts come from forward hooks on one ``(1, 3, p, p)`` patch, so they follow the architecture exactly.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["CONVENTIONS", "FlopsReport", "count_flops", "flops_report", "model_flops", "resize_flops"]

CONVENTIONS = ("real", "paper")


def count_flops(module: nn.Module, input_shape: tuple[int, ...], convention: str = "real") -> int:
    """FLOPs of one forward of ``module`` on a zero tensor of ``input_shape`` (batch 1)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    total = 0

    def hook(mod: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        x = inputs[0]
        extra = getattr(mod, "functional_flops", None)
        if extra is not None:  # work done with torch.nn.functional inside the module (e.g. a fixed upsampler)
            total += extra(x)
        real = getattr(mod, "real_flops", None)
        if convention == "real" and real is not None:  # the layer knows what it really computes
            total += real(x)
        elif isinstance(mod, nn.ConvTranspose2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            per = mod.in_channels * (mod.out_channels // mod.groups) * k
            pixels = output[0, 0].numel() if convention == "paper" else x[0, 0].numel()
            total += 2 * pixels * per
        elif isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total += 2 * output[0].numel() * (mod.in_channels // mod.groups) * k
        elif isinstance(mod, nn.Linear):
            total += 2 * mod.in_features * mod.out_features * (x.numel() // x.shape[-1])

    handles = [
        m.register_forward_hook(hook)
        for m in module.modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear) or hasattr(m, "functional_flops")
    ]
    try:
        p = next(iter([*module.parameters(), *module.buffers()]), None)
        with torch.no_grad():
            module(torch.zeros(input_shape, dtype=p.dtype if p is not None else None,
                               device=p.device if p is not None else None))
    finally:
        for h in handles:
            h.remove()
    return total


@dataclass(frozen=True)
class ModelFlops:
    """Per-patch FLOPs of a ClassSR model in one convention."""

    branches: tuple[int, int, int]
    classifier: int
    patch: int
    convention: str

    def per_pixel(self, k: int) -> float:
        return self.branches[k] / (self.patch * self.patch)


#: Per model, per convention. Weak keys: an entry goes with its model, so a new model can never be handed the
#: FLOPs of a dead one (an ``id()`` key could: CPython reuses ids after garbage collection).
_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[str, ModelFlops]] = weakref.WeakKeyDictionary()


def model_flops(model: nn.Module, convention: str = "real") -> ModelFlops:
    """Per-patch FLOPs of the three branches and the classifier of a :class:`ClassSR` model (cached)."""
    cached = _CACHE.setdefault(model, {})
    if convention not in cached:
        p = int(getattr(model, "cfg").patch)  # noqa: B009  (any module with cfg, branches, classifier)
        shape = (1, 3, p, p)
        light, medium, heavy = (count_flops(b, shape, convention) for b in getattr(model, "branches"))  # noqa: B009
        clf = count_flops(getattr(model, "classifier"), shape, convention)  # noqa: B009
        cached[convention] = ModelFlops((light, medium, heavy), clf, p, convention)
    return cached[convention]


def resize_flops(source: tuple[int, int], target: tuple[int, int], channels: int = 3) -> int:
    """FLOPs of resizing ``channels`` planes of ``source`` ``(H, W)`` to ``target`` by a separable bicubic filter, as
    the pipeline resizes a model's output to a size it does not make (``-x 3``, a video's ``--height``): the rows,
    then the columns, 2 FLOPs a tap; 4 taps, more where it shrinks (antialiased: the support grows with the ratio)."""
    (h, w), (oh, ow) = source, target

    def taps(n: int, m: int) -> int:
        return math.ceil(4 * max(1.0, n / m))

    return 2 * channels * (h * ow * taps(w, ow) + oh * ow * taps(h, oh))


@dataclass(frozen=True)
class FlopsReport:
    """Where the compute of one routed run went.

    Attributes:
        used: FLOPs spent: classifier on every patch + each patch's branch.
        heavy: FLOPs of the heavy branch on the same patches (the paper's "-O" on the same tiling).
        whole: FLOPs of the heavy branch run once on the whole frame, no tiling (what a user would otherwise run).
    """

    used: int
    heavy: int
    whole: int

    @property
    def saved(self) -> float:
        """1 - used/heavy: the saving against heavy-only on the same patches."""
        return 1.0 - self.used / self.heavy if self.heavy else 0.0

    @property
    def saved_vs_whole(self) -> float:
        """1 - used/whole: the saving against the heavy branch on the whole frame (can be negative)."""
        return 1.0 - self.used / self.whole if self.whole else 0.0

    def __add__(self, other: FlopsReport) -> FlopsReport:
        return FlopsReport(self.used + other.used, self.heavy + other.heavy, self.whole + other.whole)

    def to_dict(self) -> dict[str, float]:
        return {
            "used": self.used,
            "heavy": self.heavy,
            "whole": self.whole,
            "saved": round(self.saved, 6),
            "saved_vs_whole": round(self.saved_vs_whole, 6),
        }


def flops_report(
    model: nn.Module,
    counts: tuple[int, int, int],
    lr_pixels: int,
    convention: str = "real",
    *,
    classified: bool = True,
    computed: tuple[int, int, int] | None = None,
) -> FlopsReport:
    """FLOPs of a routed run with ``counts`` patches per class on ``lr_pixels`` LR pixels (all frames).

    ``computed``: patches per class that really went through the classifier and a branch (default ``counts``;
    fewer when outputs were reused); ``classified``: whether the classifier ran on them.
    """
    mf = model_flops(model, convention)
    done = counts if computed is None else computed
    n = sum(done)
    used = sum(c * f for c, f in zip(done, mf.branches, strict=True)) + (n * mf.classifier if classified else 0)
    return FlopsReport(used=used, heavy=sum(counts) * mf.branches[2], whole=round(mf.per_pixel(2) * lr_pixels))
