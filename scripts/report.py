"""The one way a measurement script hands over its result: JSON on stdout, and in ``--json PATH`` when given."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def emit(result: Any, path: Path | None, *, echo: bool = True) -> None:
    """Write ``result`` as indented JSON to ``path`` (its folder made) when given, and to stdout unless ``echo``
    is false."""
    text = json.dumps(result, indent=1) + "\n"
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if echo:
        sys.stdout.write(text)
