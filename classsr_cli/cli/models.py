"""`classsr models`: the shipped models (and those in $CLASSSR_WEIGHTS), plus any files or folders given."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from classsr_cli.cli._common import Command, err, guarded, out
from classsr_cli.cli._options import flag

EXAMPLES = """\
Examples:

  classsr models                                 # what `--model NAME` can name
  classsr models runs/mine/classsr.safetensors --json
  classsr models runs/mine/                      # the checkpoints in a folder
"""


def register(app: typer.Typer) -> None:
    app.command("models", cls=Command, epilog=EXAMPLES)(models)


@guarded
def models(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Extra .safetensors files (or folders of them) to describe.", show_default=False),
    ] = None,
    json_out: Annotated[bool, flag("--json", help="One JSON object per model on stdout.")] = False,
) -> None:
    """List the available models: name, family, scale, size, and whether it was trained here.

    Says on stderr which folders it looked in ($CLASSSR_WEIGHTS, then the shipped models).
    """
    from rich.markup import escape
    from rich.table import Table

    from classsr_cli.checkpoint import read_metadata
    from classsr_cli.zoo import left_out_text, list_models, unlisted, weights_dirs

    where = ", ".join(str(d) for d in weights_dirs())
    extra, left_out = _named_files(list(paths or []))
    left_out += unlisted()  # and those of the weights folders
    if left_out:
        names = left_out_text(left_out)
        err.print(f"left out {len(left_out)} file(s) that are not classsr checkpoints: {escape(names)}", soft_wrap=True)
    kinds = {}
    found = list_models(extra)
    for m in found:
        kinds[m.path] = read_metadata(m.path).get("kind", "?")
    defaults = _defaults({m.scale for m in found})
    if not found:
        err.print(
            f"no models found in {escape(where)}; train one with `classsr train all`, or pass a .safetensors path",
            soft_wrap=True,
        )
        return
    err.print(f"[dim]--model NAME is looked up in {escape(where)}; --model auto picks the one trained on noise or "
              "JPEG where a picture needs it[/]", soft_wrap=True)
    if json_out:
        for m in found:
            record = {
                "name": m.name, "path": str(m.path), "kind": kinds[m.path], "family": m.family, "scale": m.scale,
                "default": m.path.resolve() in defaults,
                "size_bytes": m.size_bytes, "trained": m.trained,
                "routing": None if kinds[m.path] == "branch" else m.routing, "tolerance": m.tolerance,
                "cell_tolerance": m.cell_tolerance or None, "cell_price": m.cell_price or None,
                "frame_cap_db": m.frame_cap_db or None,
                "jpeg_quality": None if m.jpeg_quality is None else list(m.jpeg_quality),
                "noise_sigma": None if m.noise_sigma is None else list(m.noise_sigma),
            }
            typer.echo(json.dumps(record))
        return
    table = Table("name", "default", "kind", "family", "scale", "routing", "trained on", "size", "trained", "path",
                  box=None, pad_edge=False)
    for m in found:
        unit = " dB" if m.routing == "budget" else ""
        cap = f", at most {m.frame_cap_db:g} dB a frame" if m.frame_cap_db else ""
        if kinds[m.path] == "branch":  # one branch alone: nothing to route
            routing = "–"
        elif m.cell_price:  # the default decides per patch; --tolerance is the frame's budget in dB
            routing = f"{m.routing} (default per patch, price {m.cell_price:.3g}{cap}; --tolerance in dB)"
        elif m.cell_tolerance:
            routing = f"{m.routing} (default per patch {m.cell_tolerance:.3g}{cap}; --tolerance in dB)"
        else:
            routing = m.routing if m.tolerance is None else f"{m.routing} (tolerance {m.tolerance:g}{unit})"
        table.add_row(
            escape(m.name), f"x{m.scale}" if m.path.resolve() in defaults else "", kinds[m.path], m.family, f"x{m.scale}", routing, m.trained_on, _size(m.size_bytes),
            "yes" if m.trained else "no", escape(str(m.path)),
        )
    # Off a terminal nothing is wrapped or cut: a path is printed whole, one row per line.
    console = out if out.is_terminal else Console(highlight=False, width=1_000_000, soft_wrap=True)
    console.print(table)


def _defaults(scales: set[int]) -> set[Path]:
    """The files ``upscale`` and ``video`` run without ``--model`` at each of ``scales`` (where one is installed)."""
    from classsr_cli.errors import ModelNotFoundError
    from classsr_cli.zoo import resolve_model

    found = set()
    for scale in scales:
        with contextlib.suppress(ModelNotFoundError):
            found.add(resolve_model(None, scale).resolve())
    return found


def _named_files(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """The files named, folders expanded to their ``*.safetensors``, and the files of those folders left out. A
    file named must be a classsr checkpoint; a folder's files that are not (a training run's fitted base, foreign
    weights, a damaged file) are left out, and a folder with none is an error."""
    from classsr_cli.checkpoint import classsr_metadata
    from classsr_cli.errors import CheckpointError
    from classsr_cli.zoo import is_checkpoint

    files: list[Path] = []
    left_out: list[Path] = []
    for p in paths:
        if p.is_dir():
            inside = sorted(p.glob("*.safetensors"))
            if not inside:
                raise CheckpointError(f"{p}: is a folder with no .safetensors files; name a model file or a folder of them")
            ours = [f for f in inside if is_checkpoint(f)]
            if not ours:
                raise CheckpointError(f"{p}: holds no classsr checkpoint (its {len(inside)} .safetensors file(s) are "
                                      "not; convert foreign weights with `classsr convert`)")
            files.extend(ours)
            left_out.extend(f for f in inside if f not in ours)
        else:  # a path the user named must be readable and classsr's: say why not (another tool's model by name)
            classsr_metadata(p)
            if not is_checkpoint(p):
                raise CheckpointError(f"{p}: not a classsr checkpoint (convert foreign weights with `classsr convert`)")
            files.append(p)
    return files, left_out


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
