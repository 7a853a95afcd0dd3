"""Run another script with **exact routing**: no cell computed by a branch above its decided class.

The engine's planner (:func:`classsr_cli.engine.cells.plan_tiles`) may raise a cell to a heavier branch when that
costs less: a band holding a medium cell runs the medium branch on the whole band, and its light cells take it; a
busy block with a few cheaper cells becomes one tile. Here every cell is computed by its own class instead: a
band runs one branch on the whole band only when all its cells are of that class; otherwise either every cell
that costs anything runs as a tile (no base), or the band's lightest class present runs on the whole band and
only heavier cells run as tiles, whichever the planner's price finds cheaper; no block raising. What it measures:
the time and quality the planner's raising is worth, and how routing by difficulty reads when what is computed is
what was decided (``scripts/routing_eval.py`` reports both). An experiment, not an engine option.

    python scripts/exact_routing.py scripts/routing_eval.py --model runs/light8_x4/classsr.safetensors --threads 2
    python scripts/exact_routing.py scripts/tile_factor.py --model M --native --count 30 --factors 1
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence

import torch
from run_script import run_script  # scripts/

from classsr_cli.engine import bands
from classsr_cli.engine.cells import CALL_PIXELS, TILE_FACTOR, CellPlan, TilePlan, _cells_of, _plan_over


def plan_tiles_exact(
    classes: torch.Tensor, plan: CellPlan, costs: Sequence[float], band_pixels: int = 0, *,
    call_pixels: int = CALL_PIXELS["cpu"], tile_factor: float = TILE_FACTOR["cpu"],
) -> TilePlan:
    """:func:`~classsr_cli.engine.cells.plan_tiles` with no cell raised above its class (see the module)."""
    padded = _cells_of(classes.cpu(), plan)
    call = costs[-1] * call_pixels
    valid = padded[padded >= 0]
    lo, top = int(valid.min()), int(valid.max())
    rows, cols = classes.shape
    if lo == top and band_pixels > 0 and costs[top] > 0:  # one class: that branch on the whole band
        return TilePlan(torch.full((rows, cols), top, dtype=torch.long), (), float(costs[top] * band_pixels + call), top)
    flat = dataclasses.replace(plan, block=1)  # no block raising
    grid = padded.tolist()
    none = -1 if costs[0] > 0 else 0  # no base (with a width-0 light branch, 0 is the same)
    best = _plan_over(grid, flat, costs, none, 0.0, call=call, factor=tile_factor)
    if band_pixels > 0 and costs[lo] > 0:  # the lightest class present on the whole band
        got = _plan_over(grid, flat, costs, lo, costs[lo] * band_pixels + call, call=call, factor=tile_factor)
        if got[2] < best[2]:
            best = got
    run, rects, cost, base = best
    return TilePlan(torch.tensor(run, dtype=torch.long)[:rows, :cols], tuple(rects), float(cost), base)


def main() -> int:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    bands.plan_tiles = plan_tiles_exact  # type: ignore[assignment]  # the engine calls it through this module
    run_script(sys.argv[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
