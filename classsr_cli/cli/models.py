"""`classsr models`: the models found in weights/ (and $CLASSSR_WEIGHTS), plus any paths given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from classsr_cli.cli._common import err, guarded, out
from classsr_cli.cli._options import flag

EXAMPLES = """\
Examples:

  classsr models                                 # what `--model NAME` can name
  classsr models runs/my_x4.safetensors --json
"""


def register(app: typer.Typer) -> None:
    app.command("models", epilog=EXAMPLES)(models)


@guarded
def models(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Extra .safetensors files to describe.", show_default=False)
    ] = None,
    json_out: Annotated[bool, flag("--json", help="One JSON object per model on stdout.")] = False,
) -> None:
    """List the available models: name, family, scale, size, and whether it was trained here."""
    from rich.markup import escape
    from rich.table import Table

    from classsr_cli.checkpoint import read_metadata
    from classsr_cli.errors import CheckpointError
    from classsr_cli.zoo import list_models, weights_dirs

    extra = list(paths or [])
    kinds = {}
    for p in extra:  # a path the user named must be readable: say why not, instead of skipping it
        meta = read_metadata(p)
        if meta.get("format") != "classsr" or "config" not in meta:
            raise CheckpointError(f"{p}: not a classsr checkpoint (convert foreign weights with `classsr convert`)")
    found = list_models(extra)
    for m in found:
        kinds[m.path] = read_metadata(m.path).get("kind", "?")
    if not found:
        where = ", ".join(str(d) for d in weights_dirs())
        err.print(
            f"no models found in {escape(where)}; train one with `classsr train all`, or pass a .safetensors path",
            soft_wrap=True,
        )
        return
    if json_out:
        for m in found:
            record = {
                "name": m.name, "path": str(m.path), "kind": kinds[m.path], "family": m.family, "scale": m.scale,
                "size_bytes": m.size_bytes, "trained": m.trained,
            }
            typer.echo(json.dumps(record))
        return
    table = Table("name", "kind", "family", "scale", "size", "trained", "path", box=None, pad_edge=False)
    for m in found:
        table.add_row(
            escape(m.name), kinds[m.path], m.family, f"x{m.scale}", _size(m.size_bytes),
            "yes" if m.trained else "no", escape(str(m.path)),
        )
    out.print(table)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
