"""The engine: one routed path for images, video frames and the benchmark.

* :mod:`~classsr_cli.engine.tiling`: an LR frame -> overlapping patches on a grid (pure).
* :mod:`~classsr_cli.engine.router`: patches -> classes (a policy: argmax, forced, hysteresis; reuse), then
  per-class batched branch calls.
* :mod:`~classsr_cli.engine.stitching`: HR patch outputs -> one frame (crop canvas or blended windows).
* :mod:`~classsr_cli.engine.bands`: :class:`FrameRun`, a frame as an iterator of HR row bands (a whole frame
  is one band), and :func:`upscale_tensor`.
* :mod:`~classsr_cli.engine.tta`: the self-ensemble (``--tta``): passes under flips and transposes, averaged.
* :mod:`~classsr_cli.engine.flops`: what the routing cost against the heavy branch.
* :mod:`~classsr_cli.engine.defaults`: run defaults, without torch.

Only this package imports the tiler and the stitcher. Tensors only: no files, no rich, no CLI. The names below
are loaded on first use, so that ``classsr_cli.engine.defaults`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from classsr_cli.engine.defaults import (
    BAND_BYTES,
    BAND_PATCHES,
    DEFAULT_BATCH,
    DEFAULT_BLEND,
    DEFAULT_STEP,
    PATCH,
    TTA_PASSES,
    band_bytes_for,
    check_tta,
)

if TYPE_CHECKING:
    from classsr_cli.engine.bands import Band, FrameRun, RouteResult, check_step, upscale_tensor
    from classsr_cli.engine.flops import FlopsReport, flops_report, model_flops, resize_flops
    from classsr_cli.engine.router import Argmax, Forced, Hysteresis, Reuse, Router, RouteStats
    from classsr_cli.engine.tta import ensemble

__all__ = [
    "BAND_BYTES",
    "BAND_PATCHES",
    "DEFAULT_BATCH",
    "DEFAULT_BLEND",
    "DEFAULT_STEP",
    "PATCH",
    "TTA_PASSES",
    "Argmax",
    "Band",
    "FlopsReport",
    "Forced",
    "FrameRun",
    "Hysteresis",
    "Reuse",
    "RouteResult",
    "RouteStats",
    "Router",
    "band_bytes_for",
    "check_step",
    "check_tta",
    "ensemble",
    "flops_report",
    "model_flops",
    "resize_flops",
    "upscale_tensor",
]

_HOME = {
    **dict.fromkeys(("Band", "FrameRun", "RouteResult", "check_step", "upscale_tensor"), "bands"),
    **dict.fromkeys(("ensemble",), "tta"),
    **dict.fromkeys(("FlopsReport", "flops_report", "model_flops", "resize_flops"), "flops"),
    **dict.fromkeys(("Argmax", "Forced", "Hysteresis", "Reuse", "RouteStats", "Router"), "router"),
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"classsr_cli.engine.{_HOME[name]}"), name)
    raise AttributeError(f"module 'classsr_cli.engine' has no attribute {name!r}")
