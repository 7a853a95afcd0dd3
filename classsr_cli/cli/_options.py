"""Options shared by the commands: one declaration each, defaults from the engine (without importing torch).

Flags (booleans) are shown without a type (``--json``, not ``--json <bool>``): the commands' class does that
(``_common.Command``).
"""

# No `from __future__ import annotations`: typer reads these aliases at run time.

import math
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from classsr_cli.cli._common import ENCODING, Precision, device_option
from classsr_cli.engine.defaults import DEFAULT_BATCH, DEFAULT_STEP, PATCH, check_tta

if TYPE_CHECKING:
    from classsr_cli.zoo import OutputSize

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_STEP",
    "BatchOpt",
    "Branch",
    "DeviceOpt",
    "ForceBranchOpt",
    "FrameQualityOpt",
    "HeightOpt",
    "ImageModelOpt",
    "ImageScaleOpt",
    "JsonOpt",
    "ModelOpt",
    "OverwriteOpt",
    "PrecisionOpt",
    "QualityOpt",
    "ScaleOpt",
    "StepOpt",
    "ThreadsOpt",
    "ToleranceOpt",
    "TtaOpt",
    "VideoModelOpt",
    "WidthOpt",
    "flag",
    "output_scale",
    "output_size",
]


def output_scale(scale: float | None, model: str | None, *, chain: bool = False) -> float:
    """``-x`` of ``upscale`` and ``video``, settled before any file is read: when not given, the ``--model``'s own
    scale (an x2 model runs x2), else 4; then checked: above 1 and at most the largest native scale, or with
    ``chain`` at most its square (x16) where the model has that scale (``upscale``: two passes,
    :class:`~classsr_cli.pipeline.Chain`; ``video``: a bicubic enlargement after the model); for a factor two runs
    reach otherwise (an x2 ``--model``) a :class:`ConfigError` that says how."""
    from classsr_cli.errors import ConfigError
    from classsr_cli.zoo import MAX_SCALE, check_scale, own_scale

    if scale is None:
        return float(own_scale(model))
    if chain and scale > MAX_SCALE:
        if scale > MAX_SCALE**2 or not math.isfinite(scale):
            raise ConfigError(f"scale must be above 1 and at most {MAX_SCALE**2}, got {scale:g}")
        if (own := own_scale(model)) < MAX_SCALE:
            raise ConfigError(f"an x{own} model cannot upscale x{scale:g}; leave --model out (the x{MAX_SCALE} model "
                              f"runs first), or ask for x{own} or less")
        return scale
    if chain and not scale > 1:  # the range said is the one this command takes
        raise ConfigError(f"scale must be above 1 and at most {MAX_SCALE**2}, got {scale:g}")
    try:
        check_scale(scale)
    except ConfigError as e:
        if MAX_SCALE < scale <= MAX_SCALE**2:
            raise ConfigError(
                f"{e}; for x{scale:g} run it twice: -x {MAX_SCALE}, then -x {scale / MAX_SCALE:g} on its output"
            ) from None
        raise
    return scale


def output_size(width: int | None, height: int | None, scale: float | None) -> "OutputSize | None":
    """``--width``/``--height`` as an :class:`~classsr_cli.zoo.OutputSize` (``None`` when neither is given); with
    ``-x`` too, a :class:`ConfigError`: one says how large the output is."""
    from classsr_cli.errors import ConfigError
    from classsr_cli.zoo import OutputSize

    if width is None and height is None:
        return None
    if scale is not None:
        raise ConfigError("-x and --width/--height both say how large the output is: give one")
    return OutputSize(width, height)


def flag(*names: str, help: str) -> typer.models.OptionInfo:
    """A boolean ``--name`` flag (no ``--no-name``)."""
    return typer.Option(*names, help=help)


def _quality(help: str, panel: str | None = None) -> typer.models.OptionInfo:
    """``--quality`` on libjpeg's 1-100 scale, the one declaration ``upscale``'s and ``video``'s share (in the help's
    ``panel``: video's with the encoder's options)."""
    return typer.Option("--quality", min=1, max=100, metavar="1-100", show_default=False, help=help,
                        rich_help_panel=panel)


QualityOpt = Annotated[
    int | None,
    _quality("JPEG, WebP, AVIF, HEIC and JPEG XL quality (default 95; 100: a lossless JPEG XL; a lossless WebP input "
             "gives a lossless WebP)."),
]
FrameQualityOpt = Annotated[
    int | None,
    _quality("JPEG and JPEG XL frames' and animated WebP's quality, as `upscale` takes it (default 95, WebP 90; 100: "
             "lossless JPEG XL); a video's is --crf.", ENCODING),
]
WidthOpt = Annotated[
    int | None,
    typer.Option(
        "--width", min=1, metavar="PX", show_default=False,
        help="Output width in pixels, instead of -x: each input is upscaled by the factor that makes it this wide "
        "(above 1, at most 16, as -x). With --height too: the largest size that fits both, aspect kept.",
    ),
]
HeightOpt = Annotated[
    int | None,
    typer.Option("--height", min=1, metavar="PX", show_default=False,
                 help="Output height in pixels, instead of -x (see --width)."),
]


def _model_option(auto: str | None = None) -> typer.models.OptionInfo:
    """``--model``: a name or a file, and where ``auto`` says what auto picks, ``auto`` too."""
    said = "Model name (see `classsr models`) or .safetensors path"
    return typer.Option("--model", "-m", metavar="NAME|PATH|auto" if auto else "NAME|PATH",
                        help=f"{said}; auto: {auto}" if auto else f"{said}.", show_default=False)


ImageModelOpt = Annotated[str | None, _model_option(
    "for each picture, the model trained on noisy input where it looks noisy, the one trained on JPEG where it is a "
    "JPEG saved below quality 90 or looks lightly noisy, else the default.")]
VideoModelOpt = Annotated[str | None, _model_option(
    "the model trained on noisy input where the first frame looks noisy, else the one trained on JPEG where H.264 "
    "quantized its blocks at a mean QP of 30 or coarser or the first frame looks lightly noisy, else the default.")]
ModelOpt = Annotated[str | None, _model_option()]
_SCALE_HELP = ("Upscaling factor, above 1 and at most {most} (default: the --model's own scale, else 4); non-native ones "
               "(3, 2.5) downscale the next native{more}.")
#: ``video``'s ``-x``: above 4 too, the x4 model then a bicubic enlargement (one router for the frames' hysteresis).
ScaleOpt = Annotated[
    float | None,
    typer.Option("-x", "--scale", metavar="X", show_default=False, help=_SCALE_HELP.format(
        most=16, more="; above 4 (8, 16) the x4 model runs, then a bicubic enlargement to the size")),
]
#: ``upscale``'s ``-x``: above 4 too, in two runs (:class:`~classsr_cli.pipeline.Chain`).
ImageScaleOpt = Annotated[
    float | None,
    typer.Option("-x", "--scale", metavar="X", show_default=False, help=_SCALE_HELP.format(
        most=16, more="; above 4 (8, 16) the x4 model runs, then the rest on its output")),
]


class Branch(StrEnum):
    light = "light"
    medium = "medium"
    heavy = "heavy"


ForceBranchOpt = Annotated[
    Branch | None,
    typer.Option(help="Run every patch through one branch (A/B runs; medium: the default models' fast setting).",
                 show_default=False),
]
DeviceOpt = Annotated[
    str,
    typer.Option(callback=device_option, metavar="auto|cpu|cuda[:N]|mps",
                 help="auto picks cuda, then mps, then cpu; cuda:1 is the second GPU."),
]
PrecisionOpt = Annotated[Precision, typer.Option(help="auto is fp32; fp16/bf16 only when asked.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", min=1, metavar="N", help="Most patches per branch call (bounds memory).")]
StepOpt = Annotated[
    int,
    typer.Option(
        "--step", metavar="PIXELS", callback=lambda v: _step_in_range(v),
        help=f"Distance between patch origins in LR pixels, 1..{PATCH} (patch {PATCH}, so overlap {PATCH}-step).",
    ),
]
def _step_in_range(step: int) -> int:
    """``--step`` at least 1, checked while parsing so that 0 is the usage error it is before any output is planned
    (it was reported as an existing output); its most, the model's patch size, is checked with the model."""
    if step < 1:
        raise typer.BadParameter(f"--step must be at least 1, got {step}")
    return step


ToleranceOpt = Annotated[
    float | None,
    typer.Option(
        "--tolerance", "-t", min=0.0, metavar="T",
        help="Quality dial of models with budget or deficit routing (`classsr models` shows which). Budget (the "
        "default models): the PSNR in dB a frame may lose against the heavy branch, as predicted; the cheapest "
        "routing within it (e.g. 0.2: faster, about 0.2 dB below heavy). Deficit: the largest predicted error "
        "increase of a patch over the heavy branch (8-bit levels squared). Higher is faster. Default: the "
        "model's calibrated decision (the default models: per patch, within about 0.05 dB of heavy on the "
        "training photos). 0: every patch heavy.",
        show_default=False,
    ),
]


def _tta_passes(passes: int) -> int:
    """``--tta`` checked while parsing (:func:`~classsr_cli.engine.defaults.check_tta`), a usage error before any
    output is planned."""
    from classsr_cli.errors import ConfigError

    try:
        check_tta(passes)
    except ConfigError as e:
        raise typer.BadParameter(str(e).removeprefix("--tta ")) from None
    return passes


TtaOpt = Annotated[
    int,
    typer.Option(
        "--tta", metavar="N", callback=lambda v: _tta_passes(v),
        help="Self-ensemble for the last bit of quality: upscale each picture N times, mirrored, flipped and "
        "transposed (2: and mirrored; 4: and flipped; 8: and transposed, as the ncnn upscalers' -x), and average. "
        "N times the time; a picture of 16 MP or more out is averaged in a temporary file beside the output.",
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads", min=1, metavar="N",
        help="torch CPU threads. Default: torch's (the CPU's cores; 1 per process under torchrun).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, flag("--json", help="Print JSON on stdout instead of the report.")]
OverwriteOpt = Annotated[bool, flag("--overwrite", help="Replace existing outputs.")]
