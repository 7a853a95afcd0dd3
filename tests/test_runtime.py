"""classsr_cli.runtime: keep_freed_memory, the CLI's one process-wide allocator setting."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from classsr_cli import runtime
from classsr_cli.cli import app

GLIBC = sys.platform == "linux" and "glibc" in " ".join(__import__("platform").libc_ver())


def _huge_pages_always() -> bool:
    """Transparent huge pages on every anonymous mapping: a fresh 48 MiB block then faults in 2 MiB at a time,
    too few faults to tell the two settings apart."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[always]" in f.read()
    except OSError:
        return False


# Blocks of 3-48 MiB allocated and freed in turn, five times over (as an engine's buffers for frames of one size):
# how many pages the five rounds fault in after a first round.
_REFAULTS = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from classsr_cli.runtime import keep_freed_memory
    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    def round_():
        for mb in (48, 3, 12, 6, 24):
            a = np.ones((mb << 20) // 4, dtype=np.float32)
            del a
    round_()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        round_()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
@pytest.mark.skipif(_huge_pages_always(), reason="page faults are counted in huge pages")
def test_keep_freed_memory_lets_freed_blocks_be_used_again_without_faulting_their_pages_in() -> None:
    faults = {mode: int(subprocess.run([sys.executable, "-c", _REFAULTS, mode], check=True, capture_output=True,
                                       text=True).stdout) for mode in ("keep", "default")}
    assert faults["default"] > 1000  # glibc hands the larger blocks back and maps them afresh
    assert faults["keep"] < faults["default"] / 10


@pytest.mark.parametrize(("name", "value"), [("MALLOC_MMAP_THRESHOLD_", "1"), ("GLIBC_TUNABLES", "")])
def test_keep_freed_memory_leaves_a_users_malloc_settings_alone(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """Any of glibc's malloc variables, even set to nothing (the documented way back to glibc's defaults)."""
    import ctypes

    def refuse(*_: object) -> None:
        raise AssertionError("the C library was opened")

    monkeypatch.setenv(name, value)
    monkeypatch.setattr(ctypes, "CDLL", refuse)
    assert runtime.keep_freed_memory() is False


def test_every_command_starts_by_keeping_freed_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    calls = []
    monkeypatch.setattr(runtime, "keep_freed_memory", lambda: calls.append(1) or True)
    assert CliRunner().invoke(app, ["models"]).exit_code == 0
    assert calls == [1]
