"""Self-ensemble (test-time augmentation, ``--tta``): a frame upscaled under ``passes`` flips and transposes, each
output turned back and the outputs averaged (Lim et al., EDSR, 2017: "geometric self-ensemble"; the ncnn-vulkan
upscalers' ``-x``).

The transforms are the dihedral group of the square, in an order whose first 1, 2 and 4 are subgroups: the frame
itself; mirrored left to right; upside down; both (turned 180 degrees); then the same four transposed (turned a
quarter either way, or mirrored about a diagonal). Averaged over a whole subgroup the output commutes with its
transforms: a mirrored input gives the mirrored output (tested). Each pass is a whole routed run of the frame:
its own classifier decisions, its own FLOPs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

import torch

from classsr_cli.engine.defaults import check_tta

if TYPE_CHECKING:
    from classsr_cli.engine.bands import RouteResult

__all__ = ["combine_routes", "dihedral", "ensemble", "undo_dihedral"]

R = TypeVar("R")


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Transform ``k`` (0..7) of ``(..., H, W)``: bit 2 transposes, then bit 0 mirrors the columns, bit 1 the rows."""
    if k & 4:
        x = x.transpose(-1, -2)
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
    return x


def undo_dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of :func:`dihedral` ``k``: ``undo_dihedral(dihedral(x, k), k)`` is ``x``."""
    if k & 2:
        x = x.flip(-2)
    if k & 1:
        x = x.flip(-1)
    if k & 4:
        x = x.transpose(-1, -2)
    return x


def combine_routes(routes: list[RouteResult]) -> RouteResult:
    """One :class:`RouteResult` for the passes of a frame: the classes (and grid) of the untransformed pass, the
    patches computed and the FLOPs of them all (against the heavy branch as often: on every patch, and on the whole
    frame), and how many passes there were."""
    first = routes[0]
    computed = tuple(sum(r.computed[i] for r in routes) for i in range(3))
    flops, paper = first.flops, first.flops_paper
    for r in routes[1:]:
        flops, paper = flops + r.flops, paper + r.flops_paper
    return replace(first, computed=(computed[0], computed[1], computed[2]), flops=flops, flops_paper=paper,
                   passes=len(routes))


def ensemble(
    run: Callable[[torch.Tensor, int], tuple[torch.Tensor, R]], lr: torch.Tensor, passes: int
) -> tuple[torch.Tensor, list[R]]:
    """The mean over ``passes`` transforms (:func:`dihedral` ``0 .. passes-1``) of ``run``'s output on the
    transformed ``lr``, turned back; and what each pass returned beside its output, in order. ``run(x, k)`` gets
    the transformed frame and the pass's index; its output is ``(..., s*h, s*w)`` for an ``(..., h, w)`` input.
    The sum is kept in float32 (one frame-sized buffer besides the pass running)."""
    check_tta(passes)
    if passes == 1:
        out, extra = run(lr, 0)
        return out, [extra]
    total: torch.Tensor | None = None
    extras: list[R] = []
    for k in range(passes):
        out, extra = run(dihedral(lr, k), k)
        extras.append(extra)
        out = undo_dihedral(out, k)
        if total is None:
            total = out.float() if out.dtype != torch.float32 else out.clone()
        else:
            total.add_(out)
        del out
    assert total is not None
    return total.div_(passes), extras
