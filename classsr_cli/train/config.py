"""Training configuration: dataclasses, loadable from TOML or JSON with unknown keys refused."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from classsr_cli.config import CLASSIFIER_INITS, FAMILY_DEFAULTS, ClassSRConfig
from classsr_cli.errors import ConfigError, ModelNotFoundError

__all__ = ["PATCH_MULTIPLE", "STAGES", "StageConfig", "TrainConfig", "check_data_settings", "check_jpeg", "check_noise",
           "load_train_config"]

#: Training recipes of the routing (``TrainConfig.routing``).
TRAIN_ROUTINGS = ("paper", "deficit", "budget")
#: A ``budget`` model's default decision (``TrainConfig.budget_default``).
BUDGET_DEFAULTS = ("frame", "patch", "price")

#: What a ``deficit``/``budget`` classifier regresses (``TrainConfig.classifier_labels``).
CLASSIFIER_LABELS = ("patches", "dense")
CLASSIFIER_LOSSES = ("pinball", "mean")
#: The error the deficit labels measure (``TrainConfig.classifier_error``).
CLASSIFIER_ERRORS = ("rgb", "y")

#: Stages in pipeline order.
STAGES = ("baseline", "branches", "classifier", "finetune")
#: Each family's stage settings where they are not :class:`TrainConfig`'s (FSRCNN's): the paper's train_*.yml for the
#: bigger families (../reference CLASSSR.md, "Three training stages"): the branches and the -O baseline at batch 16, lr
#: 2e-4; RCAN's classifier at batch 60, lr 3e-5, eta_min 2e-6, and its fine-tuning (no yml) at that lr and batch 16:
#: it back-propagates through all three RCANs. A config's own stage keys win. At FSRCNN's batches (64, 96) and lr
#: 1e-3, ``train all --family rcan`` held 15 GB in one baseline iteration and was killed for memory in fine-tuning on
#: a 24 GB machine.
_PAPER_BRANCHES = {"batch_size": 16, "lr": 2e-4}
FAMILY_STAGES: dict[str, dict[str, dict[str, Any]]] = {
    "carn": {"baseline": _PAPER_BRANCHES, "branches": _PAPER_BRANCHES},
    "srresnet": {"baseline": _PAPER_BRANCHES, "branches": _PAPER_BRANCHES},
    "rcan": {"baseline": _PAPER_BRANCHES, "branches": _PAPER_BRANCHES,
             "classifier": {"batch_size": 60, "lr": 3e-5, "eta_min": 2e-6},
             "finetune": {"batch_size": 16, "lr": 3e-5, "eta_min": 2e-6}},
}

#: An LR sub-image is cut into the classifier's 4x4 blocks (its first convolution's kernel and stride), so its side
#: is a multiple of this (as :class:`~classsr_cli.config.ClassSRConfig` asks of ``patch``).
PATCH_MULTIPLE = 4


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def check_data_settings(*, patch: Any, step: Any, factors: Any, val_fraction: Any, scale: Any = None,
                        step_name: str = "data_step") -> None:
    """A :class:`ConfigError` unless the settings of prepared training data make sense: ``patch`` a positive multiple
    of :data:`PATCH_MULTIPLE`, ``step`` (named ``step_name`` in the message) at least 1, ``factors`` one or more
    numbers in (0, 1], ``val_fraction`` in [0, 1) and ``scale``, when given, at least 1. What a training config and
    :func:`~classsr_cli.train.data.prepare` check before anything is read."""
    if scale is not None and (not isinstance(scale, int) or isinstance(scale, bool) or scale < 1):
        raise ConfigError(f"scale must be an integer of at least 1, got {scale!r}")
    if not isinstance(patch, int) or isinstance(patch, bool) or patch < PATCH_MULTIPLE or patch % PATCH_MULTIPLE:
        raise ConfigError(f"patch must be a positive multiple of {PATCH_MULTIPLE} (the classifier reads "
                          f"{PATCH_MULTIPLE}x{PATCH_MULTIPLE} blocks), got {patch!r}")
    if not isinstance(step, int) or isinstance(step, bool) or step < 1:
        raise ConfigError(f"{step_name} (the LR step between sub-images) must be at least 1, got {step!r}")
    fs = list(factors) if isinstance(factors, list | tuple) else None
    if not fs or not all(_number(f) and 0 < f <= 1 for f in fs):
        shown = ", ".join(f"{f:g}" if _number(f) else repr(f) for f in fs) if fs is not None else repr(factors)
        raise ConfigError(f"factors must be one or more downscales in (0, 1] (1: the photo as it is), got "
                          f"{shown or 'none'}")
    if not _number(val_fraction) or not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction (the share of photos held out) must lie in [0, 1), got {val_fraction!r}")


def check_jpeg(quality: Any, clean: Any) -> None:
    """A :class:`ConfigError` unless ``quality`` is empty (clean LR) or two JPEG qualities ``[lo, hi]`` with
    1 <= lo <= hi <= 100, and ``clean`` (the share of images kept clean) lies in [0, 1) (0 with clean LR)."""
    qs = list(quality) if isinstance(quality, list | tuple) else None
    ints = qs is not None and all(isinstance(q, int) and not isinstance(q, bool) for q in qs)
    if qs is None or not (not qs or (ints and len(qs) == 2 and 1 <= qs[0] <= qs[1] <= 100)):
        raise ConfigError(f"jpeg_quality must be [] (clean LR) or [lo, hi] with 1 <= lo <= hi <= 100, got {quality!r}")
    if not _number(clean) or not 0 <= clean < 1 or (clean and not qs):
        raise ConfigError(f"jpeg_clean (the share of LR images kept clean) must lie in [0, 1), and be 0 without "
                          f"jpeg_quality, got {clean!r}")


def check_noise(sigma: Any, clean: Any) -> None:
    """A :class:`ConfigError` unless ``sigma`` is empty (no noise) or two noise levels ``[lo, hi]`` with
    0 <= lo <= hi <= 50 (standard deviations in levels of 255), and ``clean`` (the share of images kept clean) lies in
    [0, 1) (0 without noise)."""
    vs = list(sigma) if isinstance(sigma, list | tuple) else None
    if vs is None or not (not vs or (len(vs) == 2 and all(_number(v) for v in vs) and 0 <= vs[0] <= vs[1] <= 50)):
        raise ConfigError(f"noise_sigma must be [] (no noise) or [lo, hi] levels with 0 <= lo <= hi <= 50, got {sigma!r}")
    if not _number(clean) or not 0 <= clean < 1 or (clean and not vs):
        raise ConfigError(f"noise_clean (the share of LR images kept free of noise) must lie in [0, 1), and be 0 "
                          f"without noise_sigma, got {clean!r}")


@dataclass(frozen=True)
class StageConfig:
    """One training stage. ``lr`` follows a cosine schedule from ``lr`` to ``eta_min`` over ``iterations``."""

    iterations: int
    batch_size: int
    lr: float
    eta_min: float = 1e-7
    val_every: int = 1000
    ckpt_every: int = 500

    def __post_init__(self) -> None:
        if not isinstance(self.iterations, int) or self.iterations < 0:  # 0: the recipe leaves the stage out
            raise ConfigError(f"iterations must be at least 0 (0 skips the stage), got {self.iterations!r}")
        for name in ("batch_size", "val_every", "ckpt_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``classsr train all`` does. Every field can be set in a TOML/JSON file; flags override.

    Attributes:
        family, scale, widths, extra: the model (``widths`` empty = the paper's widths for the family).
        luma: residual family: for each branch, light to heavy, whether its residual corrects luma alone (empty:
            none does; :class:`~classsr_cli.config.BranchConfig`).
        depths: residual family: each branch's depth, light to heavy (empty: ``extra``'s for all three;
            :class:`~classsr_cli.config.ClassSRConfig`).
        patch: LR sub-image size. data_step: LR step between sub-images. factors: multi-scale HR downscales.
        val_fraction: share of HR images held out (by a hash of the file name) for validation.
        jpeg_quality, jpeg_clean: empty: the LR is the clean bicubic downscale (the benchmarks' setting). ``[lo,
            hi]``: each LR image is saved as JPEG at a quality in lo..hi, but a share ``jpeg_clean`` of them, in the
            data and in the calibration alike, so that the model learns to leave compression blocks out
            (:func:`~classsr_cli.degrade.compress_lr`).
        noise_sigma, noise_clean: empty: no noise. ``[lo, hi]``: before any JPEG, each LR image but a share
            ``noise_clean`` gets luminance noise of a standard deviation in lo..hi levels, so that a model learns to
            leave sensor noise out (:func:`~classsr_cli.degrade.noise_lr`).
        seed: seeds model init and sampling.
        l1_weight, class_weight, average_weight: loss weights (paper 2000 : 1 : 6).
        collapse_share: a class holding more than this share of a log window's argmax counts as collapse;
        collapse_patience windows in a row raise the average-loss weight by collapse_boost (the author's fix).
        heavy_from_baseline: start the heavy branch from the baseline network (same width) instead of scratch.
        classifier_warmup: iterations of cross-entropy on the ranking classes before stage 2 (0 = paper: none).
        routing: ``paper``: branches trained on PSNR thirds, the classifier on the paper's losses (argmax routing).
            ``deficit``: every branch trained on all data, the classifier regresses each branch's error increase
            over the heavy branch per sub-image, and inference takes the cheapest branch within a tolerance.
            ``budget``: as ``deficit``, and the classifier's third output regresses the heavy branch's own error,
            so that inference spends a frame's PSNR budget (dB) where it costs least (``budget`` routing).
        random_crops: branch/baseline batches start anywhere in the image (the sub-image grid origin plus a
            random offset below ``data_step``), not only on the grid.
        tolerance_db: ``deficit``/``budget`` routing: the default tolerance is calibrated on training photos
            (``calibrate_photos``) so that routing loses at most this much mean PSNR-Y against the heavy branch.
        calibrate_factors: ``first``: the default tolerance is calibrated on the held-out photos as they are (the
            data keeps them at the first factor only). ``all``: also on their downscales by every other factor
            of ``factors``, as training sees its photos (5x the images, each more detailed per LR pixel).
        calibrate_photos: ``held``: the default tolerance is calibrated on the held-out photos (``val_fraction``
            of them, 15 of the 291). ``all``: on every training photo, held out or trained on (the branches and
            the classifier are small and fit the photos they trained on hardly better than the held-out ones,
            and 15 photos are too few to stand for the rest: docs/experiments.md, thirteenth pass).
        budget_default: ``budget`` routing: the model's default decision. ``frame``: the frame's budget at the
            calibrated dB tolerance. ``patch``: the per-patch (``deficit``) rule at a tolerance calibrated the same
            way (:attr:`~classsr_cli.config.ClassSRConfig.cell_tolerance`); ``price``: per patch at a price of
            compute calibrated the same way (:attr:`~classsr_cli.config.ClassSRConfig.cell_price`: a patch is
            raised to a dearer branch only where the error it saves is worth the extra compute). With either, an
            explicit tolerance is the budget.
        frame_cap_db: ``budget`` routing with a per-patch default (``patch`` or ``price``): a frame predicted to
            lose more than this many dB under the per-patch rule is routed by its budget at this many dB
            (:attr:`~classsr_cli.config.ClassSRConfig.frame_cap_db`). The calibration scans the per-patch rule
            without it and records the loss with it (``capped_loss_db``). 0: none.
        classifier_width, classifier_kernel, classifier_hidden, classifier_zero_mean, classifier_context: the
            classifier's channels, middle-convolution side, head's hidden units, colour-blind first convolution and
            what its middle convolutions see past a window's edge (:class:`~classsr_cli.config.ClassSRConfig`;
            ``frame``: each sub-image is scored with that many LR pixels of its photo around it, replicated past
            the photo's edge, as the engine pads a frame).
        classifier_init: ``paper``: Kaiming-normal convolutions scaled by 0.1 (the ClassSR code's); ``kaiming``:
            unscaled, for the LeakyReLU's slope (trains the deficit regression in far fewer iterations).
        classifier_labels: ``deficit``/``budget`` routing: what the classifier regresses. ``patches``: each
            branch's error on each sub-image, every branch run on the sub-image alone. ``dense``: each branch run
            on every training photo whole, labels for windows at every position, the error on the cell the
            engine routes (:mod:`classsr_cli.train.dense`).
        classifier_error: ``deficit``/``budget`` routing, ``patches`` labels: the squared error the labels measure,
            ``rgb`` (mean over R, G and B) or ``y`` (BT.601 luma, the channel PSNR-Y and the calibration measure:
            a branch that corrects luma alone is not charged for the chroma it leaves to bicubic).
        classifier_quantile: ``deficit``/``budget`` routing: the quantile of each label the classifier regresses
            (pinball loss on the log10 labels). 0.5: the median (the L1 loss); above it the predictions err high,
            most where a window's error is least certain, so an uncertain window leaves a cheap branch first.
        classifier_loss: ``deficit``/``budget`` routing: ``pinball`` (at ``classifier_quantile``) on the log10
            labels, or ``mean``: the Poisson deviance of the labels in levels², whose minimiser is each label's
            conditional mean (what a frame budget sums; :func:`~classsr_cli.train.losses.mean_loss`).
        light_share: ``deficit``/``budget`` routing: the light branch trains on this share of the training
            sub-images, those where the heavy branch (the baseline) gains least over bicubic, in the error
            ``classifier_error`` measures (ClassSR's branch pre-training on its class, for the branch that serves
            the easy cells only); 1: on every sub-image, as the other branches.
        bicubic_first: ``deficit``/``budget`` routing with a fitted base (``extra = {fitted_base = 1}``): each
            learned branch but the heavy one first trains with the bicubic base (``[branches]``, saved as
            ``branchK_bicubic.safetensors``), then trains again from those weights on the fitted base. Trained on
            the fitted base from scratch, the ×4 medium branch lost 0.4–0.6 dB on fine regular texture (scikit-image's
            ``brick``) that it keeps this way (docs/experiments.md, "Changed: the ×4 default on a fitted base, its
            medium branch trained on bicubic first (thirty-first pass)").
    """

    family: str = "fsrcnn"
    scale: int = 4
    widths: tuple[int, ...] = ()
    extra: dict[str, int] = field(default_factory=dict)
    luma: tuple[bool, ...] = ()
    depths: tuple[int, ...] = ()
    patch: int = 32
    data_step: int = 16
    factors: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.6)
    val_fraction: float = 0.05
    jpeg_quality: tuple[int, ...] = ()
    jpeg_clean: float = 0.0
    noise_sigma: tuple[float, ...] = ()
    noise_clean: float = 0.0
    seed: int = 0
    l1_weight: float = 2000.0
    class_weight: float = 1.0
    average_weight: float = 6.0
    collapse_share: float = 0.9
    collapse_patience: int = 3
    collapse_boost: float = 2.0
    heavy_from_baseline: bool = True
    classifier_warmup: int = 0
    routing: str = "paper"
    random_crops: bool = False
    tolerance_db: float = 0.05
    budget_default: str = "frame"
    frame_cap_db: float = 0.0
    calibrate_factors: str = "first"
    calibrate_photos: str = "held"
    log_every: int = 100
    classifier_width: int = 128
    classifier_kernel: int = 1
    classifier_hidden: int = 0
    classifier_zero_mean: bool = False
    classifier_context: str = "window"
    classifier_init: str = "paper"
    classifier_labels: str = "patches"
    classifier_error: str = "rgb"
    classifier_quantile: float = 0.5
    classifier_loss: str = "pinball"
    light_share: float = 1.0
    bicubic_first: bool = False
    baseline: StageConfig = StageConfig(iterations=20000, batch_size=64, lr=1e-3)
    branches: StageConfig = StageConfig(iterations=15000, batch_size=64, lr=1e-3)
    classifier: StageConfig = StageConfig(iterations=4000, batch_size=96, lr=2e-4)
    finetune: StageConfig = StageConfig(iterations=6000, batch_size=96, lr=1e-4)

    def __post_init__(self) -> None:
        check_data_settings(patch=self.patch, step=self.data_step, factors=self.factors, val_fraction=self.val_fraction)
        check_jpeg(self.jpeg_quality, self.jpeg_clean)
        check_noise(self.noise_sigma, self.noise_clean)
        if self.log_every < 1:
            raise ConfigError(f"log_every must be at least 1, got {self.log_every}")
        if self.classifier_warmup < 0:
            raise ConfigError(f"classifier_warmup must be at least 0 (0: none), got {self.classifier_warmup}")
        if self.routing not in TRAIN_ROUTINGS:
            raise ConfigError(f"routing must be one of {', '.join(TRAIN_ROUTINGS)}, got {self.routing!r}")
        if self.classifier_labels not in CLASSIFIER_LABELS:
            raise ConfigError(f"classifier_labels must be one of {', '.join(CLASSIFIER_LABELS)}, "
                              f"got {self.classifier_labels!r}")
        if self.classifier_error not in CLASSIFIER_ERRORS:
            raise ConfigError(f"classifier_error must be one of {', '.join(CLASSIFIER_ERRORS)}, "
                              f"got {self.classifier_error!r}")
        if self.classifier_error != "rgb" and self.classifier_labels != "patches":
            raise ConfigError("classifier_error = \"y\" needs classifier_labels = \"patches\"")
        if self.classifier_init not in CLASSIFIER_INITS:
            raise ConfigError(f"classifier_init must be one of {', '.join(CLASSIFIER_INITS)}, got {self.classifier_init!r}")
        if self.calibrate_factors not in ("first", "all"):
            raise ConfigError(f"calibrate_factors must be first or all, got {self.calibrate_factors!r}")
        if self.calibrate_photos not in ("held", "all"):
            raise ConfigError(f"calibrate_photos must be held or all, got {self.calibrate_photos!r}")
        if not 0.0 < self.classifier_quantile < 1.0:
            raise ConfigError(f"classifier_quantile must lie strictly between 0 and 1, got {self.classifier_quantile}")
        if self.classifier_loss not in CLASSIFIER_LOSSES:
            raise ConfigError(f"classifier_loss must be one of {', '.join(CLASSIFIER_LOSSES)}, got {self.classifier_loss!r}")
        if not 0.0 < self.light_share <= 1.0:
            raise ConfigError(f"light_share must lie in (0, 1], got {self.light_share}")
        if self.light_share < 1.0 and self.routing == "paper":
            raise ConfigError("light_share needs deficit or budget routing (the paper's branches train on their class)")
        if self.bicubic_first and (self.routing == "paper" or not self.extra.get("fitted_base")):
            raise ConfigError("bicubic_first needs deficit or budget routing and a fitted base (extra = {fitted_base = 1})")
        if self.budget_default not in BUDGET_DEFAULTS:
            raise ConfigError(f"budget_default must be one of {', '.join(BUDGET_DEFAULTS)}, got {self.budget_default!r}")
        if self.frame_cap_db < 0 or (self.frame_cap_db and (self.routing != "budget" or self.budget_default == "frame")):
            raise ConfigError(f"frame_cap_db guards a budget model's per-patch default (budget_default patch or price; at "
                              f"least 0), got {self.frame_cap_db:g} with {self.routing} routing, {self.budget_default}")
        if self.classifier_labels == "dense" and self.routing == "paper":
            raise ConfigError("classifier_labels = \"dense\" needs deficit or budget routing")
        if self.classifier_context != "window" and (self.routing == "paper" or self.classifier_labels != "patches"):
            raise ConfigError("classifier_context = \"frame\" needs deficit or budget routing and classifier_labels = "
                              "\"patches\"")

    def model_config(self) -> ClassSRConfig:
        widths = self.widths or FAMILY_DEFAULTS.get(self.family, {}).get("widths", ())
        luma = tuple(self.luma) or (False, False, False)
        return ClassSRConfig(family=self.family, scale=self.scale, widths=tuple(widths), extra=dict(self.extra),
                             luma=luma, depths=tuple(self.depths),  # their lengths are checked there
                             patch=self.patch, routing="argmax" if self.routing == "paper" else self.routing,
                             classifier_width=self.classifier_width, classifier_kernel=self.classifier_kernel,
                             classifier_hidden=self.classifier_hidden,
                             classifier_zero_mean=self.classifier_zero_mean,
                             classifier_context=self.classifier_context, frame_cap_db=self.frame_cap_db)

    def stage(self, name: str) -> StageConfig:
        return getattr(self, name)

    def with_iterations(self, n: int) -> TrainConfig:
        """Every stage's iteration count set to ``n`` (smoke runs); a stage the recipe leaves out (0 iterations, such
        as the default recipes' fine-tuning) stays out, so that a smoke run makes the recipe's kind of model. ``n``
        below 1 (``--iterations 0`` would skip every stage and export an untrained model) is a :class:`ConfigError`."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"--iterations must be at least 1 (a stage's count in a config file may be 0 to skip "
                              f"it), got {n!r}")
        kw = {s: replace(self.stage(s), iterations=n if self.stage(s).iterations else 0,
                         val_every=max(1, min(self.stage(s).val_every, n)),
                         ckpt_every=max(1, min(self.stage(s).ckpt_every, n))) for s in STAGES}
        return replace(self, **kw)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.model_config().widths)
        d["factors"] = list(self.factors)
        d["luma"] = list(self.luma)
        d["depths"] = list(self.depths)
        d["jpeg_quality"] = list(self.jpeg_quality)
        d["noise_sigma"] = list(self.noise_sigma)
        return d

    @property
    def degradation(self) -> dict[str, Any]:
        """What the recipe does to each LR image (:func:`~classsr_cli.degrade.degrade_lr`'s keywords), as the data,
        the calibration and the prepared folder's ``meta.json`` share it."""
        return {"jpeg_quality": self.jpeg_quality, "jpeg_clean": self.jpeg_clean, "noise_sigma": self.noise_sigma,
                "noise_clean": self.noise_clean}


#: The scalar field types a config value is checked against (``from __future__ import annotations``: by name).
_SCALARS: dict[str, tuple[type, ...]] = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}
_KIND = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string"}


def _typed(where: str, value: Any, type_name: str) -> Any:
    """``value`` checked against a scalar field's type (a bool is not a number here); other types unchecked."""
    kinds = _SCALARS.get(type_name)
    if kinds is None:
        return value
    if not isinstance(value, kinds) or (isinstance(value, bool) and type_name != "bool"):
        raise ConfigError(f"{where} must be {_KIND[type_name]}, got {value!r}")
    return float(value) if type_name == "float" else value


def _with_guesses(unknown: list[str], known: set[str], stage_keys: frozenset[str] = frozenset()) -> str:
    """``unknown`` keys, each with the known one it may have meant ("width (widths?)"), or where it goes (a stage's
    key at the top: "iterations (a stage's: under [baseline], ...)")."""
    import difflib

    said = []
    for key in unknown:
        if key in stage_keys:
            said.append(f"{key} (a stage's: under [{'], ['.join(STAGES)}])")
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6) or [
            k for k in sorted(known) if k.startswith(key)][:1]  # fmt: skip ("batch": batch_size)
        said.append(f"{key} ({close[0]}?)" if close else key)
    return ", ".join(said)


def _from_dict(d: dict[str, Any]) -> TrainConfig:
    types = {f.name: str(f.type) for f in fields(TrainConfig)}
    stage_types = {f.name: str(f.type) for f in fields(StageConfig)}
    names = set(types)
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"unknown training config key(s): {_with_guesses(unknown, names, frozenset(stage_types))}")
    family = d.get("family", "fsrcnn")
    own = FAMILY_STAGES.get(family, {}) if isinstance(family, str) else {}
    kw: dict[str, Any] = {k: replace(getattr(TrainConfig, k), **own[k]) for k in own}
    for k, v in d.items():
        if k in STAGES:
            if not isinstance(v, dict):
                raise ConfigError(f"[{k}] must be a table")
            bad = sorted(set(v) - set(stage_types))
            if bad:
                raise ConfigError(f"unknown key(s) in [{k}]: {_with_guesses(bad, set(stage_types))}")
            typed = {n: _typed(f"[{k}] {n}", x, stage_types[n]) for n, x in v.items()}
            try:
                kw[k] = replace(kw.get(k, getattr(TrainConfig, k)), **typed)  # unset keys keep the family's defaults
            except ConfigError as e:
                raise ConfigError(f"[{k}] {e}") from None
        elif k in ("widths", "factors", "luma", "depths", "jpeg_quality", "noise_sigma"):
            if not isinstance(v, list | tuple):
                raise ConfigError(f"{k} must be a list, got {v!r}")
            kw[k] = tuple(v)
        else:
            kw[k] = _typed(k, v, types[k])
    try:
        cfg = TrainConfig(**kw)
        _check_model(cfg)
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None
    return cfg


def _check_model(cfg: TrainConfig) -> None:
    """Build the model once on the meta device, so that a width the family refuses fails now, not hours in."""
    import torch

    from classsr_cli.models import build_model

    with torch.device("meta"):
        build_model(cfg.model_config())


def load_train_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Load a TOML or JSON config file, or the recipe a trained model records (a ``.safetensors`` file, or the name of
    an installed model, :func:`recipe_of`: what ``classsr train all --config MODEL`` trains again), or the defaults;
    then apply non-``None`` ``overrides``."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if path.suffix == ".safetensors" or (not path.suffix and len(path.parts) == 1 and not path.exists()):
            data = recipe_of(path)
            try:
                _from_dict(data)  # the recipe alone, before the flags change it
            except ConfigError as e:  # a file from another version of classsr
                raise ConfigError(f"{path}: the recipe it records does not load here: {e}") from None
        else:
            data = _read_config_file(path)
    given = {k: v for k, v in overrides.items() if v is not None}
    family, own = given.get("family"), data.get("family", "fsrcnn")
    try:
        return _from_dict({**data, **given})
    except ConfigError as e:
        if family not in FAMILY_DEFAULTS or family == own or "widths" not in data:
            raise
        # --family over a recipe whose widths are another family's: say whose they are
        raise ConfigError(f"--family {family}: {path} gives the widths of {own} branches, {data['widths']} ({e}); "
                          f"give a config with {family} widths") from None


def _read_config_file(path: Path) -> dict[str, Any]:
    """A TOML or JSON training config file, as a dict."""
    data: dict[str, Any]
    if path.is_dir():  # a run folder, most likely: it holds both kinds
        raise ConfigError(f"{path}: is a folder; give a config file, or a model (a run's classsr.safetensors) to train "
                          "its recipe again")
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config ({e.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a config file (not text; a config is TOML or JSON, a model .safetensors)") from None
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import tomllib

            data = tomllib.loads(text)
    except (ValueError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {e}") from None
    return data


def recipe_of(model: Path) -> dict[str, Any]:
    """The training recipe (:meth:`TrainConfig.to_dict`) that ``classsr train`` recorded in a model it exported:
    ``model`` a ``.safetensors`` file, or the name of an installed model (``classsr models``). Read from the header
    alone, no tensor loaded. A :class:`ConfigError` where there is no such model or it records no recipe (converted
    weights, a file saved outside ``classsr train``)."""
    from classsr_cli import zoo
    from classsr_cli.checkpoint import read_metadata

    if model.suffix == ".safetensors":
        found = model
    else:
        try:
            found = zoo.resolve_model(str(model), 4)
        except ModelNotFoundError:
            raise ConfigError(f"{model}: no such config file, nor an installed model of that name "
                              "(`classsr models` lists them)") from None
    try:
        provenance = json.loads(read_metadata(found).get("provenance", "{}"))
    except json.JSONDecodeError:
        provenance = None
    recipe = provenance.get("recipe") if isinstance(provenance, dict) else None
    if not isinstance(recipe, dict):
        raise ConfigError(f"{found}: records no training recipe (converted weights, or a file not exported by "
                          "`classsr train`); pass a TOML or JSON config")
    return recipe
