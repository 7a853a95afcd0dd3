"""Finding models: the shipped ones in ``weights/`` (and ``$CLASSSR_WEIGHTS``), or a path.

Shipped files are named ``classsr_{family}_x{scale}.safetensors``; the default model for scale ``s`` is
``classsr_fsrcnn_x{s}``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from classsr_cli.errors import CheckpointError, ModelNotFoundError

if TYPE_CHECKING:
    import torch

    from classsr_cli.checkpoint import Loaded

__all__ = ["ModelInfo", "default_model_name", "list_models", "load_model", "resolve_model", "weights_dirs"]

DEFAULT_FAMILY = "fsrcnn"


def weights_dirs() -> list[Path]:
    """Folders searched for named models: ``$CLASSSR_WEIGHTS`` (``os.pathsep``-separated), then ``weights/``."""
    dirs = [Path(p) for p in os.environ.get("CLASSSR_WEIGHTS", "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parent.parent / "weights")
    return dirs


def default_model_name(scale: int) -> str:
    return f"classsr_{DEFAULT_FAMILY}_x{scale}"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    family: str
    scale: int
    size_bytes: int
    trained: bool


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
            ModelInfo(p.stem, p, cfg.get("family", "?"), int(cfg.get("scale", 0)), p.stat().st_size, "provenance" in meta)
        )
    return sorted(found, key=lambda m: (m.name, str(m.path)))


def resolve_model(spec: str | None, scale: int) -> Path:
    """Path of the model ``spec`` (a path or a name in the weights folders); ``None`` means the default."""
    if spec is not None and (os.sep in spec or spec.endswith(".safetensors") or Path(spec).exists()):
        path = Path(spec)
        if not path.exists():
            raise ModelNotFoundError(f"{path}: no such model file")
        return path
    name = spec or default_model_name(scale)
    for d in weights_dirs():
        candidate = d / f"{name}.safetensors"
        if candidate.is_file():
            return candidate
    if spec is None:
        raise ModelNotFoundError(
            f"no installed model for x{scale} ({name}.safetensors); pass --model PATH, "
            "or train one with `classsr train all`"
        )
    raise ModelNotFoundError(f"no model named {name!r}; `classsr models` lists the installed ones")


def load_model(
    spec: str | None, scale: int, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> Loaded:
    """Resolve and load a whole ClassSR model (``kind=classsr``)."""
    from classsr_cli.checkpoint import load_checkpoint

    return load_checkpoint(resolve_model(spec, scale), device=device, dtype=dtype, expect_kind="classsr")
