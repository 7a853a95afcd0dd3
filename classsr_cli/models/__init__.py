"""Model registry: branch families, the classifier and the ClassSR wrapper.

Every branch builder takes a :class:`~classsr_cli.config.BranchConfig` and returns an ``nn.Module`` that maps
an ``(N, 3, h, w)`` float tensor in ``[0, 1]`` to ``(N, 3, scale*h, scale*w)`` in ``[0, 1]`` (not clamped).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from classsr_cli.config import BranchConfig, ClassSRConfig

__all__ = ["BRANCHES", "build_branch", "build_model", "register_branch"]

BranchBuilder = Callable[["BranchConfig"], "nn.Module"]

#: family name -> builder. Filled by :func:`register_branch` in each family's module.
BRANCHES: dict[str, BranchBuilder] = {}


def register_branch(name: str) -> Callable[[BranchBuilder], BranchBuilder]:
    """Register a branch builder under ``name``; a duplicate name raises ``ValueError``."""

    def deco(fn: BranchBuilder) -> BranchBuilder:
        if name in BRANCHES:
            raise ValueError(f"branch family {name!r} is already registered")
        BRANCHES[name] = fn
        return fn

    return deco


def _load_families() -> None:
    # Imported for their registration side effect; explicit, no directory scan.
    from classsr_cli.models import carn, fsrcnn, rcan, residual, srresnet  # noqa: F401


def build_branch(cfg: BranchConfig) -> nn.Module:
    """Build an SR branch from its config."""
    _load_families()  # idempotent; a family module imported directly must not hide the others
    return BRANCHES[cfg.family](cfg)


def build_model(cfg: ClassSRConfig) -> nn.Module:
    """Build a whole ClassSR model (classifier + three branches) from its config."""
    from classsr_cli.models.classsr import ClassSR

    return ClassSR(cfg)
