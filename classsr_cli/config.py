"""Configuration dataclasses: the single source of truth for an architecture.

A :class:`ClassSRConfig` fully describes a ClassSR model (classifier + three branches). It is written as JSON
into every checkpoint's metadata, so loading a checkpoint needs no flags.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from classsr_cli.errors import ConfigError

__all__ = [
    "CLASS_COLOURS",
    "CLASS_NAMES",
    "FAMILY_DEFAULTS",
    "ROUTINGS",
    "BranchConfig",
    "ClassSRConfig",
    "from_json_dict",
]

#: Index 0/1/2 of the classifier output: simple/medium/hard patches, served by the light/medium/heavy branch.
CLASS_NAMES: tuple[str, str, str] = ("light", "medium", "heavy")
#: RGB tint of each class in class maps (images and video), light to heavy: green, yellow, red.
CLASS_COLOURS: tuple[tuple[int, int, int], ...] = ((40, 200, 70), (240, 200, 30), (225, 45, 45))

#: How a ClassSR model's classifier output becomes a class: ``argmax`` of logits (the paper); ``deficit``: the
#: outputs predict log10 of each branch's mean squared error increase over the heavy branch (8-bit levels²), and
#: a patch takes the cheapest branch whose prediction is within the tolerance; ``budget``: the light and medium
#: outputs as for ``deficit``, the heavy one predicts log10 of the heavy branch's own error, and the patches of a
#: frame share a budget: the cheapest routing whose predicted PSNR loss against the heavy branch on the whole
#: frame is at most the tolerance (dB).
ROUTINGS: tuple[str, str, str] = ("argmax", "deficit", "budget")
#: How the classifier's convolutions are initialised for training (``TrainConfig.classifier_init``).
CLASSIFIER_INITS: tuple[str, str] = ("paper", "kaiming")
#: Where a classifier window's blocks find their neighbours (``ClassSRConfig.classifier_context``).
CLASSIFIER_CONTEXTS: tuple[str, str] = ("window", "frame")

#: Paper widths (x4) and the fixed hyper-parameters of each branch family (../reference CLASSSR.md §2).
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "fsrcnn": {"widths": (16, 36, 56), "extra": {"s": 12, "m": 4}},
    "carn": {"widths": (36, 52, 64), "extra": {"groups": 4, "num_blocks": 3}},
    "srresnet": {"widths": (36, 52, 64), "extra": {"num_blocks": 16}},
    "rcan": {"widths": (36, 50, 64), "extra": {"num_groups": 10, "num_blocks": 20, "reduction": 16}},
    # The default preset: bicubic + a residual CNN whose width sets the cost (not from the paper). ``fitted_base``
    # 1: the fixed upsampler every branch adds its residual to is a 5x5 linear filter per sub-pixel fitted to the
    # training data by least squares (stored in the checkpoint) instead of bicubic; the light branch of width 0 is
    # that filter alone. 2: the light branch's alone (it must be of width 0); the others keep bicubic.
    "residual": {"widths": (0, 16, 32), "extra": {"depth": 4, "fitted_base": 0}},
}

_SCALES = {
    "fsrcnn": (2, 3, 4),
    "carn": (2, 3, 4),
    "srresnet": (2, 3, 4),
    "rcan": (2, 3, 4),
    "residual": (2, 3, 4),
}


@dataclass(frozen=True)
class BranchConfig:
    """One SR branch.

    Attributes:
        family: architecture family, one of ``fsrcnn``, ``carn``, ``srresnet``, ``rcan``.
        width: channel width (FSRCNN ``d``, CARN/SRResNet ``nf``, RCAN ``n_feats``).
        scale: integer upscaling factor.
        extra: family hyper-parameters other than the width (e.g. ``{"num_blocks": 16}``); missing keys take
            the family defaults from :data:`FAMILY_DEFAULTS`.
        luma: ``residual`` family only: the residual corrects luma alone (one output per sub-pixel, added alike to
            R, G and B; chroma is bicubic's), at a third of the output convolution's cost.
    """

    family: str
    width: int
    scale: int = 4
    extra: dict[str, int] = field(default_factory=dict)
    luma: bool = False

    def __post_init__(self) -> None:
        _check_family_scale(self.family, self.scale)
        least = 0 if self.family == "residual" else 1  # a residual branch of width 0 is plain bicubic
        if not isinstance(self.width, int) or self.width < least:
            raise ConfigError(f"{self.family} branch width must be an integer >= {least}, got {self.width!r}")
        if self.luma and self.family != "residual":
            raise ConfigError(f"luma-only branches are of the residual family, not {self.family}")
        merged = dict(FAMILY_DEFAULTS[self.family]["extra"])
        unknown = sorted(set(self.extra) - set(merged))
        if unknown:
            raise ConfigError(f"unknown {self.family} hyper-parameter(s): {', '.join(unknown)}")
        merged.update(self.extra)
        object.__setattr__(self, "extra", merged)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ClassSRConfig:
    """A whole ClassSR model: the classifier and three branches of one family at decreasing width.

    Attributes:
        family: branch family (see :class:`BranchConfig`).
        scale: integer upscaling factor of every branch.
        widths: widths of the light, medium and heavy branch.
        extra: family hyper-parameters shared by the three branches.
        luma: for each branch, whether its residual corrects luma alone (:class:`BranchConfig`; residual family).
        depths: residual family: each branch's depth, light to heavy (empty: ``extra``'s for all three), so that a
            light branch can be shallower (fewer convolutions: fewer calls and less memory traffic per pixel).
        patch: LR patch size the classifier was trained on (32 in the paper).
        classifier_width: channels of the classifier's convolutions (128 in the paper).
        classifier_kernel: side of the classifier's three middle convolutions (1 in the paper; 3 lets each 4x4
            block's feature see its neighbours, see :class:`~classsr_cli.models.classifier.Classifier`).
        classifier_hidden: hidden units of the classifier's head after the pooling (0, the paper's: one Linear).
        classifier_zero_mean: the classifier's first convolution ignores each 4x4 block's mean colour
            (False, the paper's: it sees it).
        classifier_context: with ``classifier_kernel`` above 1, what the middle convolutions see past a
            window's edge: ``window`` (zeros: each window is scored on its own) or ``frame`` (the frame's pixels:
            they run once over the frame, and each window pools its blocks; trained on windows with that much
            real context, so the two agree).
        classes: names of the three classes, light to heavy.
        routing: ``argmax`` (the paper), ``deficit`` or ``budget`` (see :data:`ROUTINGS`).
        tolerance: the default of ``deficit`` and ``budget`` routing's dial: for ``deficit`` the largest predicted
            increase of a patch's mean squared error over the heavy branch's (8-bit levels²) for which a cheaper
            branch is taken; for ``budget`` the predicted PSNR loss (dB) a frame may have against the heavy
            branch.
        cell_tolerance: ``budget`` routing only. When above 0, the model's default decision (no tolerance asked
            for) is the ``deficit`` rule at this tolerance (8-bit levels², calibrated): the classifier predicts
            the deficits either way, and per patch is the safer rule at the default's small loss; an explicit
            tolerance is then always the frame's budget in dB (the dial). 0: the default is the budget at
            ``tolerance``.
        cell_price: ``budget`` routing only. When above 0, the model's default decision is per patch at this
            price instead (8-bit levels², calibrated): each patch takes the branch that minimises its predicted
            error increase over the heavy branch plus ``cell_price`` times the branch's compute as a share of the
            heavy branch's (:func:`~classsr_cli.models.classsr.priced_classes`), so a patch is raised to a dearer
            branch only where the error it saves is worth that branch's extra compute. At most one of
            ``cell_tolerance`` and ``cell_price`` is set.
        frame_cap_db: ``budget`` routing only, with a per-patch default (``cell_price`` or ``cell_tolerance``).
            When above 0, a frame whose per-patch routing is predicted to lose more than this many dB of PSNR
            against the heavy branch is routed by its budget at this many dB instead (the cell engine decides a
            frame at once, even in bands; the tile path, taken with patch reuse, each batch it classifies)
            (:func:`~classsr_cli.models.classsr.capped_classes`): a price or tolerance in levels² is absolute, so
            on a clean, smooth picture, where every branch's error is small, it can cost many dB.
    """

    family: str = "fsrcnn"
    scale: int = 4
    widths: tuple[int, int, int] = (16, 36, 56)
    extra: dict[str, int] = field(default_factory=dict)
    luma: tuple[bool, bool, bool] = (False, False, False)
    depths: tuple[int, ...] = ()
    patch: int = 32
    classifier_width: int = 128
    classifier_kernel: int = 1
    classifier_hidden: int = 0
    classifier_zero_mean: bool = False
    classifier_context: str = "window"
    classes: tuple[str, str, str] = CLASS_NAMES
    routing: str = "argmax"
    tolerance: float = 0.0
    cell_tolerance: float = 0.0
    cell_price: float = 0.0
    frame_cap_db: float = 0.0

    def __post_init__(self) -> None:
        _check_family_scale(self.family, self.scale)
        if self.routing not in ROUTINGS:
            raise ConfigError(f"routing must be one of {', '.join(ROUTINGS)}, got {self.routing!r}")
        widths = tuple(int(w) for w in self.widths)
        if len(widths) != 3:
            raise ConfigError(f"a ClassSR model has exactly three branch widths, got {len(widths)}")
        object.__setattr__(self, "widths", widths)
        luma = tuple(self.luma)
        if len(luma) != 3 or not all(isinstance(v, bool) for v in luma):
            raise ConfigError(f"luma must be three true/false values (light, medium, heavy), got {self.luma!r}")
        object.__setattr__(self, "luma", luma)
        depths = tuple(self.depths)
        if depths and (self.family != "residual" or len(depths) != 3
                       or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in depths)):
            raise ConfigError(f"depths must be three integers >= 0 (light, medium, heavy) of a residual model, got "
                              f"{self.depths!r} for {self.family}")
        object.__setattr__(self, "depths", depths)
        object.__setattr__(self, "classes", tuple(self.classes))
        if self.classifier_kernel < 1 or self.classifier_kernel % 2 == 0:
            raise ConfigError(f"classifier_kernel must be odd and at least 1, got {self.classifier_kernel}")
        if self.classifier_hidden < 0:
            raise ConfigError(f"classifier_hidden must be at least 0, got {self.classifier_hidden}")
        if self.classifier_context not in CLASSIFIER_CONTEXTS:
            raise ConfigError(f"classifier_context must be one of {', '.join(CLASSIFIER_CONTEXTS)}, "
                              f"got {self.classifier_context!r}")
        if self.classifier_context == "frame" and self.classifier_kernel == 1:
            raise ConfigError("classifier_context = \"frame\" needs classifier_kernel above 1 (with 1 every block "
                              "is seen alone: the two contexts are the same)")
        if self.cell_tolerance < 0 or (self.cell_tolerance and self.routing != "budget"):
            raise ConfigError(f"cell_tolerance is a budget model's default (at least 0), got {self.cell_tolerance:g} "
                              f"with {self.routing} routing")
        if self.cell_price < 0 or (self.cell_price and (self.routing != "budget" or self.cell_tolerance)):
            raise ConfigError(f"cell_price is a budget model's default (at least 0, without a cell_tolerance), got "
                              f"{self.cell_price:g} with {self.routing} routing")
        if self.frame_cap_db < 0 or (self.frame_cap_db and self.routing != "budget"):
            raise ConfigError(f"frame_cap_db is a budget model's guard on its per-patch default (at least 0), got "
                              f"{self.frame_cap_db:g} with {self.routing} routing")
        if self.patch < 4 or self.patch % 4:
            raise ConfigError(f"patch must be a positive multiple of 4, got {self.patch}")
        # Validate (and fill the defaults of) the family hyper-parameters once.
        shared = BranchConfig(family=self.family, width=self.widths[0], scale=self.scale, extra=dict(self.extra))
        object.__setattr__(self, "extra", shared.extra)
        fitted = shared.extra.get("fitted_base", 0)
        if fitted not in (0, 1, 2) or (fitted == 2 and self.widths[0] != 0):
            raise ConfigError(f"fitted_base is 0 (bicubic), 1 (every branch) or 2 (a width-0 light branch alone), got "
                              f"{fitted!r} with a light branch of width {self.widths[0]}")

    @classmethod
    def paper(cls, family: str = "fsrcnn", scale: int = 4) -> ClassSRConfig:
        """The paper's configuration of ``family`` at ``scale``."""
        if family not in FAMILY_DEFAULTS:
            raise ConfigError(f"unknown family {family!r}; choose one of {', '.join(FAMILY_DEFAULTS)}")
        return cls(family=family, scale=scale, widths=FAMILY_DEFAULTS[family]["widths"])

    def branch(self, k: int) -> BranchConfig:
        """Config of branch ``k`` (0 = light, 1 = medium, 2 = heavy)."""
        extra = dict(self.extra)
        if self.depths:
            extra["depth"] = self.depths[k]
        if extra.get("fitted_base") == 2:  # the light branch's alone
            extra["fitted_base"] = int(k == 0)
        return BranchConfig(family=self.family, width=self.widths[k], scale=self.scale, extra=extra,
                            luma=self.luma[k])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        d["luma"] = list(self.luma)
        d["depths"] = list(self.depths)
        d["classes"] = list(self.classes)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassSRConfig:
        return from_json_dict(cls, d)


def from_json_dict(cls: type, d: dict[str, Any]) -> Any:
    """Build dataclass ``cls`` from ``d``, refusing unknown keys with a :class:`ConfigError`."""
    if not isinstance(d, dict):
        raise ConfigError(f"{cls.__name__}: expected an object, got {type(d).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown key(s) {', '.join(unknown)}")
    kwargs = dict(d)
    for key in ("widths", "classes", "luma", "depths"):
        if key in kwargs and isinstance(kwargs[key], list):
            kwargs[key] = tuple(kwargs[key])
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{cls.__name__}: {e}") from None


def _check_family_scale(family: str, scale: int) -> None:
    if family not in FAMILY_DEFAULTS:
        raise ConfigError(f"unknown family {family!r}; choose one of {', '.join(FAMILY_DEFAULTS)}")
    if scale not in _SCALES.get(family, ()):  # a family added without its scales: said, not a KeyError
        allowed = ", ".join(str(s) for s in _SCALES.get(family, ())) or "none (add them to config._SCALES)"
        raise ConfigError(f"{family} supports scales {allowed}, not {scale!r}")
