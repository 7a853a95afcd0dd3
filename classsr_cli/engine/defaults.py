"""The engine's run defaults, importable without torch (the CLI reads them for ``--help``)."""

from __future__ import annotations

__all__ = ["BAND_BYTES", "BAND_PATCHES", "DEFAULT_BATCH", "DEFAULT_BLEND", "DEFAULT_BLOCK", "DEFAULT_STEP", "PATCH",
           "TTA_PASSES", "check_tta"]

#: Side of an LR patch (the classifier's input).
PATCH = 32
#: Distance between patch origins (LR pixels): patch 32, so an overlap of 4.
DEFAULT_STEP = 28
#: The pass counts of the self-ensemble (``--tta``, :mod:`~classsr_cli.engine.tta`): 1 (off), 2 (and
#: mirrored), 4 (and the flips), 8 (and the transposes).
TTA_PASSES = (1, 2, 4, 8)
#: Most patches per branch call.
DEFAULT_BATCH = 256
#: Stitch mode (:data:`classsr_cli.engine.stitching.BLEND_MODES`). ``crop`` (halo) copies each patch's share into
#: the frame: on SunHays80/B100 it is as close to whole-image output as ``feather`` or closer, at a fraction of
#: the cost (docs/history.md).
DEFAULT_BLEND = "crop"
#: Cell execution: cells per side of a block that the planner may raise whole to its heaviest class when that
#: makes the cover cheaper (``FrameRun(block=)``; 1: no raising). 1: since rectangles and canvases, raising saved
#: no FLOPs on training photos and pricing its trials cost time: x4, BSD200 photos as given 0.443-0.451x the heavy
#: branch's time at 1 against 0.483-0.491x at 4, their LR /2 0.538-0.601x against 0.554-0.605x, never slower at 1
#: (x2 alike within noise; ``python scripts/tile_factor.py --factors 1 --blocks 1 2 4 8 ...``, docs/experiments.md).
DEFAULT_BLOCK = 1
#: Patches per band when banding (about 0.6 MB of float32 working memory each at x4).
BAND_PATCHES = 512
#: Cell execution on the CPU, for a consumer that takes a frame band by band (``FrameRun(band_bytes=...)``): a frame
#: whose HR float output would exceed twice this many bytes runs in bands of about this size (whole blocks of
#: cell rows), and no frame-sized float output is allocated. Chosen on training photos tiled 2x2 and 3x3 and
#: ``examples/lighthouse.jpg`` (481x321 training photos, 28 MiB of x4 output, were fastest whole); end to end,
#: ``classsr upscale`` of ten SunHays80 photos as given x4 took 2.89-3.02 s against 3.55-3.63 s whole
#: (docs/experiments.md, "Changed: large photos in bands of 16 MiB on the CPU").
BAND_BYTES = 16 << 20


def band_bytes_for(device_type: str, native: bool) -> int | None:
    """The ``FrameRun(band_bytes=...)`` a frame runs with: :data:`BAND_BYTES` on the CPU at the model's own scale
    (``native``), else ``None`` (whole). One decision for ``upscale``, ``video`` and ``bench``."""
    return BAND_BYTES if device_type == "cpu" and native else None


def check_tta(passes: int) -> None:
    """``passes`` must be one of :data:`TTA_PASSES`; a :class:`ConfigError` (usage error) otherwise."""
    if passes not in TTA_PASSES:
        from classsr_cli.errors import ConfigError

        raise ConfigError(f"--tta takes {', '.join(map(str, TTA_PASSES))} passes (1: off; 8: every flip and "
                          f"transpose), got {passes}")
