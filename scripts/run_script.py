"""Run another script as ``__main__`` with the given command line, after a caller has patched the engine: what
``exact_routing.py`` and ``price_by_seconds.py`` share."""

from __future__ import annotations

import os
import runpy
import sys


def run_script(argv: list[str]) -> None:
    """Run ``argv[0]`` (a script's path) with ``sys.argv = argv``, its folder first on ``sys.path``."""
    sys.argv = argv
    sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
    runpy.run_path(argv[0], run_name="__main__")
