"""Run another script with the tile planner pricing each branch by given seconds instead of FLOPs.

The planner (:func:`classsr_cli.engine.cells.plan_tiles`) prices a branch's residual by its FLOPs per LR pixel;
narrow convolutions cost more seconds per FLOP on a CPU (``scripts/branch_seconds.py``). Here the light and medium
branches are priced at the given shares of the heavy branch's price (0 keeps a width-0 branch free), everything
else as the engine does; the FLOPs the engine reports are still the real ones. An experiment, not an engine
option.

    python scripts/price_by_seconds.py 0 0.28 scripts/tile_factor.py --count 200 --factors 1 --tolerances default
"""

from __future__ import annotations

import sys

from run_script import run_script  # scripts/

from classsr_cli.engine import bands, cells


def main() -> int:
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    shares = [float(sys.argv[1]), float(sys.argv[2]), 1.0]
    real = cells.unit_flops

    def priced(model, plan, convention="real"):  # type: ignore[no-untyped-def]
        got = dict(real(model, plan, convention))
        px = got["residual_px"]
        got["residual_px"] = [0.0 if px[k] == 0 else px[-1] * shares[k] for k in range(len(px))]
        return got

    bands.unit_flops = priced  # type: ignore[assignment]  # the band loop prices through this name only
    run_script(sys.argv[3:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
