"""Model registry: branch families, the classifier and the ClassSR wrapper.

Every branch builder takes a :class:`~classsr_cli.config.BranchConfig` and returns an ``nn.Module`` that maps
an ``(N, 3, h, w)`` float tensor in ``[0, 1]`` to ``(N, 3, scale*h, scale*w)`` in ``[0, 1]`` (not clamped).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from classsr_cli.models.carn import build_carn
from classsr_cli.models.fsrcnn import build_fsrcnn
from classsr_cli.models.rcan import build_rcan
from classsr_cli.models.residual import build_residual
from classsr_cli.models.srresnet import build_srresnet

if TYPE_CHECKING:
    from torch import nn

    from classsr_cli.config import BranchConfig, ClassSRConfig

__all__ = ["BRANCHES", "build_branch", "build_model"]

BranchBuilder = Callable[["BranchConfig"], "nn.Module"]

#: family name -> builder. A new family is one module ``models/<family>.py`` with a ``build_<family>(cfg)``
#: plus one line here (and its defaults in :data:`classsr_cli.config.FAMILY_DEFAULTS`).
BRANCHES: dict[str, BranchBuilder] = {
    "fsrcnn": build_fsrcnn,
    "carn": build_carn,
    "srresnet": build_srresnet,
    "rcan": build_rcan,
    "residual": build_residual,
}


def build_branch(cfg: BranchConfig) -> nn.Module:
    """Build an SR branch from its config."""
    return BRANCHES[cfg.family](cfg)


def build_model(cfg: ClassSRConfig) -> nn.Module:
    """Build a whole ClassSR model (classifier + three branches) from its config."""
    from classsr_cli.models.classsr import ClassSR

    return ClassSR(cfg)
