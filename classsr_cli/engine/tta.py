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

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

import torch

from classsr_cli.engine.defaults import check_tta

if TYPE_CHECKING:
    from classsr_cli.engine.bands import RouteResult

__all__ = ["add_turned_back", "combine_routes", "dihedral", "ensemble"]


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Transform ``k`` (0..7) of ``(..., H, W)``: bit 2 transposes, then bit 0 mirrors the columns, bit 1 the rows."""
    if k & 4:
        x = x.transpose(-1, -2)
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
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
    run: Callable[[torch.Tensor, int], Iterable[tuple[int, torch.Tensor]]], lr: torch.Tensor, passes: int, scale: int,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """The mean over ``passes`` transforms (:func:`dihedral` ``0 .. passes-1``) of ``run``'s output on the
    transformed ``lr`` ``(1, C, h, w)``, turned back: ``(1, C, scale*h, scale*w)`` float32. ``run(x, k)`` gets the
    transformed frame and the pass's index and yields its output as ``(y, rows)`` bands, ``rows`` the output rows
    ``y ..`` of the transformed frame (one band ``(0, output)`` for a whole frame). Each band is added into the
    mean where it belongs as it comes, so a pass never holds a frame-sized output of its own: the mean is the one
    frame-sized buffer, a new one on ``lr``'s device or ``out``, zeros of that shape (a memory-mapped file's, on
    the CPU: the bands are moved to it), which is returned."""
    check_tta(passes)
    n, c, h, w = lr.shape
    shape = (n, c, scale * h, scale * w)
    if out is None:
        total = torch.zeros(shape, dtype=torch.float32, device=lr.device)
    elif tuple(out.shape) != shape or out.dtype != torch.float32:
        raise ValueError(f"out must be float32 of shape {shape}, got {out.dtype} {tuple(out.shape)}")
    else:
        total = out
    for k in range(passes):
        for y, rows in run(dihedral(lr, k), k):
            add_turned_back(total, rows, y, k)
    return total.div_(passes)


def add_turned_back(total: torch.Tensor, rows: torch.Tensor, y: int, k: int) -> None:
    """Add output rows ``y .. y + len`` of the frame under :func:`dihedral` ``k`` into ``total``, the untransformed
    frame's output, where they belong: ``dihedral(total, k)[..., y:y+len, :] += rows`` (the flips of the band only,
    the transpose a view)."""
    view = total.transpose(-1, -2) if k & 4 else total
    rows = rows.to(view.device)  # a no-op on the mean's own device
    height, count = view.shape[-2], rows.shape[-2]
    if k & 2:
        rows, first = rows.flip(-2), height - y - count
    else:
        first = y
    if k & 1:
        rows = rows.flip(-1)
    view[..., first : first + count, :].add_(rows)  # in place (``view[...] += rows`` would copy the region back)
