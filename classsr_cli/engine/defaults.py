"""The engine's run defaults, importable without torch (the CLI reads them for ``--help``)."""

from __future__ import annotations

__all__ = ["BAND_PATCHES", "DEFAULT_BATCH", "DEFAULT_BLEND", "DEFAULT_BLOCK", "DEFAULT_STEP", "PATCH"]

#: Side of an LR patch (the classifier's input).
PATCH = 32
#: Distance between patch origins (LR pixels): patch 32, so an overlap of 4.
DEFAULT_STEP = 28
#: Most patches per branch call.
DEFAULT_BATCH = 256
#: Stitch mode (:data:`classsr_cli.engine.stitching.BLEND_MODES`). ``crop`` (halo) copies each patch's share into
#: the frame: on SunHays80/B100 it is as close to whole-image output as ``feather`` or closer, at a fraction of
#: the cost (docs/history.md).
DEFAULT_BLEND = "crop"
#: Cell execution: cells per side of a block that the planner computes as one tile when that is cheaper than
#: its cells one by one (a busy region pays the halo once per block instead of once per cell).
DEFAULT_BLOCK = 4
#: Patches per band when banding (about 0.6 MB of float32 working memory each at x4).
BAND_PATCHES = 512
