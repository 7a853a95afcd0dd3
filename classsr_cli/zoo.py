"""Finding and loading models: the shipped ones (and those in ``$CLASSSR_WEIGHTS``), or a path.

The shipped models are ``weights/*.safetensors`` of a checkout (and of an editable install); a wheel carries them
as package data, ``classsr_cli/weights/`` (copied there by ``setup.py``), found through ``importlib.resources``.

:func:`load` is the one door through which ``upscale``, ``video`` and ``bench`` get a model to run. Shipped files
are named ``classsr_{family}_x{scale}.safetensors``; the default model for scale ``s`` is the first of
``classsr_residual_x{s}`` (the designed-cost preset) and ``classsr_fsrcnn_x{s}`` (the paper's) that is installed.
A scale that is not native (3 with no x3 model, 2.5) runs the nearest larger native model; the caller downscales.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from classsr_cli.errors import CheckpointError, ConfigError, InputError, ModelNotFoundError
from classsr_cli.io.files import url_refusal

if TYPE_CHECKING:
    import torch

    from classsr_cli.config import ClassSRConfig
    from classsr_cli.models.classsr import ClassSR

__all__ = [
    "AUTO",
    "MAX_SCALE",
    "NATIVE_SCALES",
    "Model",
    "ModelInfo",
    "OutputSize",
    "TrainedLR",
    "check_scale",
    "check_tolerance",
    "choose_model",
    "default_model_name",
    "is_checkpoint",
    "is_scale_text",
    "jpeg_model_name",
    "left_out_text",
    "list_models",
    "load",
    "lr_trained_on",
    "noisy_model_name",
    "own_scale",
    "resolve_model",
    "shipped_weights_dirs",
    "unlisted",
    "weights_dirs",
]

#: Families of the default model, by preference.
DEFAULT_FAMILIES = ("residual", "fsrcnn")
#: The family name of the shipped models trained on LR saved as JPEG (a recipe's ``jpeg_quality``):
#: ``classsr_residual_jpeg_x4`` and ``classsr_residual_jpeg_x2``.
JPEG_FAMILY = "residual_jpeg"
#: The family name of the shipped models trained on noisy LR (a recipe's ``noise_sigma``, JPEG after it):
#: ``classsr_residual_noisy_x4`` and ``classsr_residual_noisy_x2``.
NOISY_FAMILY = "residual_noisy"
#: Scales a ClassSR model can be built for; a requested scale runs the smallest of these that is >= it.
NATIVE_SCALES = (2, 3, 4)
MAX_SCALE = max(NATIVE_SCALES)


def weights_dirs() -> list[Path]:
    """Folders searched for named models: ``$CLASSSR_WEIGHTS`` (``os.pathsep``-separated), then the shipped ones."""
    dirs = [Path(p) for p in os.environ.get("CLASSSR_WEIGHTS", "").split(os.pathsep) if p]
    return dirs + shipped_weights_dirs()


def shipped_weights_dirs() -> list[Path]:
    """Where the shipped models are: the package's own ``weights/`` (an installed wheel) and the checkout's
    ``weights/`` (a source tree or an editable install), those that exist; the checkout's when neither does."""
    from importlib.resources import as_file, files

    found = []
    packaged = files("classsr_cli") / "weights"
    if packaged.is_dir():
        with as_file(packaged) as folder:  # a plain folder for an installed wheel (not zipped)
            found.append(Path(folder))
    checkout = Path(__file__).resolve().parent.parent / "weights"
    if checkout.is_dir() or not found:
        found.append(checkout)
    return found


def default_model_name(scale: int) -> str:
    """The preferred installed model for ``scale`` (the first family of :data:`DEFAULT_FAMILIES` found)."""
    names = [f"classsr_{family}_x{scale}" for family in DEFAULT_FAMILIES]
    for name in names:
        if any((d / f"{name}.safetensors").is_file() for d in weights_dirs()):
            return name
    return names[-1]


def jpeg_model_name(scale: float) -> str | None:
    """The installed model trained on LR saved as JPEG (:data:`JPEG_FAMILY`) that runs ``scale``: the one of the
    smallest native scale at or above it (``classsr_residual_jpeg_x2`` for ``-x 2``, ``classsr_residual_jpeg_x4`` for
    ``-x 3``, run at ×4 and downscaled, as ``upscale`` runs any model below its scale), or ``None``."""
    return _installed_for(JPEG_FAMILY, scale)


def noisy_model_name(scale: float) -> str | None:
    """The installed model trained on noisy LR (:data:`NOISY_FAMILY`) that runs ``scale``, as
    :func:`jpeg_model_name` picks it, or ``None``."""
    return _installed_for(NOISY_FAMILY, scale)


def _installed_for(family: str, scale: float) -> str | None:
    for native in NATIVE_SCALES:
        name = f"classsr_{family}_x{native}"
        if native >= scale and any((d / f"{name}.safetensors").is_file() for d in weights_dirs()):
            return name
    return None


@dataclass(frozen=True)
class TrainedLR:
    """What a model's training LR carried on top of the bicubic downscale, from the recipe it records."""

    #: The JPEG qualities it was saved at (a recipe's ``jpeg_quality``; ``()``: none).
    jpeg_quality: tuple[int, ...] = ()
    #: The levels of the noise added to it (a recipe's ``noise_sigma``; ``()``: none).
    noise_sigma: tuple[float, ...] = ()

    def __str__(self) -> str:
        """In words: ``clean``, ``JPEG q30-95``, ``noise σ1-12, JPEG q30-95``."""
        parts = [f"noise σ{self.noise_sigma[0]:g}-{self.noise_sigma[1]:g}"] if self.noise_sigma else []
        parts += [f"JPEG q{self.jpeg_quality[0]}-{self.jpeg_quality[1]}"] if self.jpeg_quality else []
        return ", ".join(parts) or "clean"


def lr_trained_on(path: str | os.PathLike[str]) -> TrainedLR | None:
    """What a model file's training LR carried, from the recipe it records (``None``: no recipe, or not a readable
    checkpoint)."""
    from classsr_cli.checkpoint import read_metadata

    try:
        return _lr_of(read_metadata(path))
    except CheckpointError:
        return None


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    family: str
    scale: int
    size_bytes: int
    trained: bool
    routing: str = "argmax"
    tolerance: float | None = None
    cell_tolerance: float = 0.0
    cell_price: float = 0.0
    frame_cap_db: float = 0.0
    #: What its training LR carried (:class:`TrainedLR`); ``None``: no recipe recorded.
    lr: TrainedLR | None = None

    @property
    def jpeg_quality(self) -> tuple[int, ...] | None:
        """The JPEG qualities its training LR was saved at (``()``: none); ``None``: not known."""
        return None if self.lr is None else self.lr.jpeg_quality

    @property
    def noise_sigma(self) -> tuple[float, ...] | None:
        """The levels of the noise its training LR had (``()``: none); ``None``: not known."""
        return None if self.lr is None else self.lr.noise_sigma

    @property
    def trained_on(self) -> str:
        """The LR it was trained on, in words: ``clean``, ``JPEG q30-95``, ``noise σ1-12, JPEG q30-95`` or ``–``
        (not known)."""
        return "–" if self.lr is None else str(self.lr)


def is_checkpoint(path: Path) -> bool:
    """Whether ``path``'s header says it is a classsr checkpoint (an unreadable file is not one)."""
    from classsr_cli.checkpoint import FORMAT, read_metadata

    try:
        meta = read_metadata(path)
    except CheckpointError:
        return False
    return meta.get("format") == FORMAT and "config" in meta


def unlisted() -> list[Path]:
    """The ``.safetensors`` files of the weights folders that are not classsr checkpoints (a damaged download, foreign
    weights dropped into ``$CLASSSR_WEIGHTS``): ``classsr models`` and ``classsr doctor`` name them, where they had
    vanished from the list without a word."""
    return [f for d in weights_dirs() if d.is_dir() for f in sorted(d.glob("*.safetensors")) if not is_checkpoint(f)]


def left_out_text(files: list[Path], *, full: bool = False, most: int = 4) -> str:
    """The first ``most`` of ``files`` that are not classsr checkpoints (:func:`unlisted`), by name (``full``: by
    path), each with what it holds where its keys say (``4x-Ultra.safetensors (an ESRGAN/Real-ESRGAN network
    (RRDBNet))``): a model dropped into the weights folders is told why it is not listed."""
    from classsr_cli.checkpoint import what_is

    def one(f: Path) -> str:
        what = what_is(f)
        return f"{f if full else f.name}{f' ({what})' if what else ''}"

    return ", ".join(one(f) for f in files[:most]) + (", …" if len(files) > most else "")


def list_models(extra: list[Path] | None = None) -> list[ModelInfo]:
    """Every readable model in the weights folders (and ``extra`` paths), sorted by name."""
    import json

    from classsr_cli.checkpoint import read_metadata

    paths: list[Path] = []
    for d in weights_dirs():
        if d.is_dir():
            paths.extend(sorted(d.glob("*.safetensors")))
    paths.extend(extra or [])
    found = []
    for p in paths:
        try:
            meta = read_metadata(p)
            cfg = json.loads(meta["config"])
        except (CheckpointError, KeyError, ValueError):
            continue
        found.append(
            ModelInfo(p.stem, p, cfg.get("family", "?"), int(cfg.get("scale", 0)), p.stat().st_size, _trained(meta),
                      cfg.get("routing", "argmax"),
                      float(cfg["tolerance"]) if cfg.get("routing", "argmax") != "argmax" and "tolerance" in cfg else None,
                      float(cfg.get("cell_tolerance", 0.0)), float(cfg.get("cell_price", 0.0)),
                      float(cfg.get("frame_cap_db", 0.0)), _lr_of(meta))
        )
    return sorted(found, key=lambda m: (m.name, str(m.path)))


def _lr_of(meta: dict[str, str]) -> TrainedLR | None:
    """A trained model's ``jpeg_quality`` and ``noise_sigma`` from the recipe it records (empty for a recipe from
    before a setting: clean LR); ``None`` without a recipe (a converted or hand-saved checkpoint)."""
    import json

    try:
        recipe = json.loads(meta["provenance"])["recipe"]
        return TrainedLR(tuple(int(q) for q in recipe.get("jpeg_quality", [])),
                         tuple(float(v) for v in recipe.get("noise_sigma", [])))
    except (KeyError, ValueError, TypeError, AttributeError):
        return None


def _trained(meta: dict[str, str]) -> bool:
    """Whether a checkpoint's metadata records a training run (not a conversion of someone else's weights)."""
    import json

    try:
        provenance = json.loads(meta["provenance"])
    except (KeyError, ValueError):
        return False
    return isinstance(provenance, dict) and "converted_from" not in provenance


#: ``--model auto``: ``classsr upscale`` picks a model for each picture (:class:`classsr_cli.pipeline.AutoModel`).
AUTO = "auto"


def resolve_model(spec: str | None, scale: int) -> Path:
    """Path of the model ``spec`` (a path or a name in the weights folders); ``None`` means the default. ``auto``, which
    ``classsr upscale`` and ``classsr video`` resolve themselves, is a :class:`ConfigError` here."""
    if spec == AUTO and not Path(spec).is_file():
        raise ConfigError("--model auto picks a model by the picture, in `classsr upscale` and `classsr video` only; "
                          "name one here (`classsr models` lists them)")
    if spec is not None and (os.sep in spec or spec.endswith(".safetensors") or Path(spec).exists()):
        path = Path(spec)
        if not path.exists():
            raise ModelNotFoundError(url_refusal(spec) or f"{path}: no such model file")
        if path.is_dir():  # a training run's folder, most likely
            exported = path / "classsr.safetensors"
            hint = f"; the model `classsr train` exports there is {exported}" if exported.is_file() else ""
            raise ModelNotFoundError(f"{path}: is a folder, not a model file{hint}")
        return path
    name = spec or default_model_name(scale)
    for d in weights_dirs():
        candidate = d / f"{name}.safetensors"
        if candidate.is_file():
            return candidate
    if spec is None:
        wanted = " or ".join(f"classsr_{family}_x{scale}.safetensors" for family in DEFAULT_FAMILIES)
        raise ModelNotFoundError(
            f"no installed model for x{scale} ({wanted}); pass --model PATH, or train one with `classsr train all`"
        )
    installed = sorted({m.stem for d in weights_dirs() if d.is_dir() for m in d.glob("*.safetensors")})
    close = difflib.get_close_matches(name, installed, n=1, cutoff=0.75) or [
        m for m in installed if name in m][:1]  # fmt: skip (a part of one: "residual_x4")
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ModelNotFoundError(f"no model named {name!r}{hint} (`classsr models` lists the installed ones)")


def own_scale(spec: str | None, default: int = MAX_SCALE) -> int:
    """The scale a run takes when ``-x`` is not given: the model ``spec`` names, read from its header (no weights
    loaded), or ``default`` when there is no ``spec``. Raises :class:`ModelNotFoundError` or
    :class:`CheckpointError` as :func:`load` would."""
    if spec is None:
        return default
    import json

    from classsr_cli.checkpoint import classsr_metadata

    path = resolve_model(spec, default)
    try:
        return int(json.loads(classsr_metadata(path)["config"])["scale"])
    except (KeyError, ValueError, TypeError):
        raise CheckpointError(f"{path}: its header records no scale; not a classsr model") from None


def own_patch(spec: str | None, scale: float) -> int:
    """The patch size of the model a run at ``scale`` would load (``spec``, or the default), read from its header
    (no weights loaded): what ``--step`` is checked against before any output is planned."""
    import json

    from classsr_cli.checkpoint import read_metadata

    try:
        return int(json.loads(read_metadata(choose_model(spec, scale))["config"]).get("patch", 32))
    except (KeyError, ValueError, TypeError):
        return 32


def check_tolerance(net: ClassSR, tolerance: float | None, path: Path | None = None) -> None:
    """``--tolerance`` (dB) is at least 0 and given only to a model that predicts its branches' errors (the residual
    defaults' ``deficit`` or ``budget`` routing); the paper preset routes by argmax and would ignore it. A
    :class:`ConfigError` otherwise."""
    if tolerance is None:
        return
    if not tolerance >= 0:  # NaN too
        raise ConfigError(f"--tolerance must be at least 0, got {tolerance:g}")
    if net.cfg.routing == "argmax":
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}--tolerance needs a model that predicts each branch's error (classsr_residual_*); "
                          "this one routes by its classifier's argmax; choose a branch with --force-branch (upscale, video) "
                          "or --methods (bench)")
    if net.cfg.routing == "budget" and tolerance > MAX_TOLERANCE_DB:
        raise ConfigError(f"--tolerance is the PSNR in dB a frame may lose (0.05 to 1 is the useful range; above "
                          f"{MAX_TOLERANCE_DB:g} every patch is light), got {tolerance:g}. It is not a tile size, as "
                          "Real-ESRGAN's -t is: classsr tiles by itself, and --batch-size bounds its memory")


#: The most ``--tolerance`` (dB) a budget-routed model takes: far past all-light, so a larger value is a mistake
#: (Real-ESRGAN's ``-t 256`` tile size, say), not a setting.
MAX_TOLERANCE_DB = 10.0


def is_scale_text(text: str) -> bool:
    """Whether ``text``, given where a file goes, is a scale and names no file (``classsr upscale photo.png 4``,
    ``classsr video in.mp4 4``): a whole number a run takes (up to :data:`MAX_SCALE` squared, two passes)."""
    return text.isdigit() and 1 < int(text) <= MAX_SCALE**2 and not Path(text).exists()


def check_scale(scale: float) -> None:
    """Scales run are above 1 and at most :data:`MAX_SCALE`; a :class:`ConfigError` otherwise."""
    if not (1 < scale <= MAX_SCALE) or not math.isfinite(scale):
        raise ConfigError(f"scale must be above 1 and at most {MAX_SCALE}, got {scale:g}")


@dataclass(frozen=True)
class OutputSize:
    """An output size asked for instead of a scale (``--width``, ``--height``): each input is upscaled by the
    factor that makes it that wide or that high, or with both the largest that fits inside both, its aspect kept."""

    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        if self.width is None and self.height is None:
            raise ConfigError("an output size needs --width, --height or both")
        for name, v in (("--width", self.width), ("--height", self.height)):
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be at least 1, got {v}")

    @property
    def tag(self) -> str:
        """Output name tag, as ``x4`` for a scale: ``w3840``, ``h2160``, ``3840x2160`` (both: a box)."""
        if self.width is not None and self.height is not None:
            return f"{self.width}x{self.height}"
        return f"w{self.width}" if self.width is not None else f"h{self.height}"

    def describe(self) -> str:
        return " ".join(f"--{k} {v}" for k, v in (("width", self.width), ("height", self.height)) if v is not None)

    def scale_for(self, height: int, width: int, most: int = MAX_SCALE, name: str = "", *, chain: bool = False) -> float:
        """The factor for an input ``height`` x ``width`` (``name``, said first in errors); an :class:`InputError`
        where it is not above 1 (classsr enlarges only) or above ``most`` (:data:`MAX_SCALE`, or a ``--model``'s
        own scale; with ``chain``, two runs of :data:`MAX_SCALE`), saying what to do instead."""
        scale = min(r for r in (self.width and self.width / width, self.height and self.height / height) if r)
        what, x = f"{name}: " if name else "", factor_text(scale)
        if not scale > 1:
            raise InputError(f"{what}{width}x{height} is already as large as {self.describe()} asks ({x}); "
                             "classsr enlarges only")
        if scale > most < MAX_SCALE:
            raise InputError(f"{what}{width}x{height} to {self.describe()} is {x}, more than the x{most} "
                             "--model gives; leave --model out, or ask for less")
        if scale > most * most:
            raise InputError(f"{what}{width}x{height} to {self.describe()} is {x}, more than two x{most} runs give "
                             f"(x{most * most}); ask for less")
        if scale > most and not (chain and most == MAX_SCALE):
            raise InputError(f"{what}{width}x{height} to {self.describe()} is {x}, more than x{most}: "
                             f"upscale it with -x {most} first, then that output, named on its own, with "
                             f"{self.describe()}")
        return scale


def factor_text(scale: float) -> str:
    """A factor as messages print it: ``x2.08``, ``x10.4``; digits enough not to read as a whole number when it is
    not one (``x1.004``, not ``x1``), none after the point from x100 (``x1000``, not ``x1e+03``)."""
    if scale >= 100:
        return f"x{scale:.0f}"
    for digits in range(3, 17):
        text = f"{scale:.{digits}g}"
        if not float(text).is_integer() or float(scale).is_integer():
            return f"x{text}"
    return f"x{scale!r}"


def choose_model(spec: str | None, scale: float) -> Path:
    """Path of the model to run for ``scale``: ``spec`` (name or path), else the default model of the
    smallest native scale >= ``scale`` that is installed."""
    check_scale(scale)
    candidates = [s for s in NATIVE_SCALES if s >= scale]
    if spec is not None:
        return resolve_model(spec, candidates[0])
    first: ModelNotFoundError | None = None
    for s in candidates:
        try:
            return resolve_model(None, s)
        except ModelNotFoundError as e:
            first = first or e
    assert first is not None
    if float(scale) in NATIVE_SCALES:
        raise first
    names = " or ".join(f"classsr_{family}_x{s}" for s in candidates for family in DEFAULT_FAMILIES)
    raise ModelNotFoundError(
        f"no installed model for x{scale:g}, which runs the nearest larger native model ({names}); "
        "pass --model PATH, or train one with `classsr train all`"
    )


@dataclass(frozen=True)
class Model:
    """A loaded ClassSR model, ready to run.

    Attributes:
        net: the model, on its device and dtype, in eval mode.
        path: the file it came from.
        scale: the scale asked for (at most the model's own; below it the output is downscaled).
    """

    net: ClassSR
    path: Path
    scale: float

    @property
    def config(self) -> ClassSRConfig:
        return self.net.cfg

    @property
    def model_scale(self) -> int:
        return int(self.net.cfg.scale)


def load(
    spec: str | None, scale: float, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> Model:
    """Choose (:func:`choose_model`), load and check the ClassSR model that runs ``scale``.

    Raises :class:`ModelNotFoundError`, :class:`CheckpointError`, or :class:`ConfigError` when the model's
    scale is below ``scale``.
    """
    from classsr_cli.checkpoint import load_checkpoint
    from classsr_cli.models.classsr import ClassSR
    from classsr_cli.runtime import resolve_device

    device = resolve_device(str(device))  # an absent or unknown device is a ConfigError, not torch's own
    path = choose_model(spec, scale)
    net = load_checkpoint(path, device=device, dtype=dtype, expect_kind="classsr").module
    assert isinstance(net, ClassSR)
    if scale > net.cfg.scale:
        raise ConfigError(
            f"{path}: an x{net.cfg.scale} model cannot upscale x{scale:g}; "
            f"use -x {net.cfg.scale} or less, or another --model"
        )
    return Model(net=net, path=path, scale=float(scale))
