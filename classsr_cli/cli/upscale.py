"""`classsr upscale` (placeholder until the inference-core CLI lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
