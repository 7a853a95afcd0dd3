"""classsr_cli.runtime: keep_freed_memory, the CLI's one process-wide allocator setting, and bound_freed_memory,
which keeps a run of photos from growing the kept heap."""

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


def test_every_command_starts_by_keeping_freed_memory_and_more_primitives(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    calls = []
    monkeypatch.setattr(runtime, "keep_freed_memory", lambda: calls.append("keep") or True)
    monkeypatch.setattr(runtime, "cache_more_primitives", lambda: calls.append("cache") or True)
    assert CliRunner().invoke(app, ["models"]).exit_code == 0
    assert calls == ["keep", "cache"]


def test_cache_more_primitives_sets_onednns_variable_unless_the_user_did(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY"):
        monkeypatch.setenv(name, "0")  # recorded as it was before the test, and so restored after it
        monkeypatch.delenv(name)
    assert runtime.cache_more_primitives() is True
    assert runtime.PRIMITIVE_CACHE > 1024  # oneDNN's default
    assert __import__("os").environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(runtime.PRIMITIVE_CACHE)
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY")
    monkeypatch.setenv("DNNL_PRIMITIVE_CACHE_CAPACITY", "16")  # oneDNN's older name: the user's setting
    assert runtime.cache_more_primitives() is False
    assert "ONEDNN_PRIMITIVE_CACHE_CAPACITY" not in __import__("os").environ


# A block of 128 MiB allocated and freed with a smaller one after it that stays (a photo's buffers and what outlives
# the photo): the freed block is a hole below the heap's top, which glibc keeps resident. Resident memory then,
# after bound_freed_memory with a limit of 64 MiB, and what it returned.
_BOUND = textwrap.dedent(
    """
    import sys
    import numpy as np
    from classsr_cli import runtime
    if sys.argv[1] == "keep":
        assert runtime.keep_freed_memory()
    assert runtime.bound_freed_memory(64 << 20) is False  # the first call marks the level
    a = np.ones((128 << 20) // 4, dtype=np.float32)
    b = np.ones((2 << 20) // 4, dtype=np.float32)
    del a
    before = runtime.resident_bytes()
    trimmed = runtime.bound_freed_memory(64 << 20)
    print(before >> 20, runtime.resident_bytes() >> 20, trimmed)
    """
)


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_bound_freed_memory_hands_kept_memory_back_past_its_limit() -> None:
    def run(mode: str) -> tuple[int, int, str]:
        out = subprocess.run([sys.executable, "-c", _BOUND, mode], check=True, capture_output=True, text=True).stdout
        before, after, trimmed = out.split()
        return int(before), int(after), trimmed

    before, after, trimmed = run("keep")
    assert trimmed == "True" and before - after > 100  # MiB: the freed blocks were resident, and no longer are
    assert run("default")[2] == "False"  # without the kept thresholds there is nothing to bound: a no-op


def test_bound_freed_memory_trims_once_resident_memory_passes_the_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    rss = iter([100, 150, 170, 240, 260, 330])  # MiB as resident_bytes reads them, one value per call
    trims: list[int] = []
    monkeypatch.setattr(runtime, "_kept", True)
    monkeypatch.setattr(runtime, "_mark", None)
    monkeypatch.setattr(runtime, "resident_bytes", lambda: next(rss))
    monkeypatch.setattr(runtime, "trim_freed_memory", lambda: trims.append(1))
    # 100 marks the level; 150 is within 60 of it; 170 passes it: trimmed. 240 (the next photo's buffers back) marks
    # the level anew; 260 is within 60 of that; 330 passes it: trimmed again
    assert [runtime.bound_freed_memory(60) for _ in range(6)] == [False, False, True, False, False, True]
    assert len(trims) == 2 and runtime._mark is None


def test_upscale_bounds_the_kept_heap_after_every_photo(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    from pathlib import Path

    import numpy as np
    from PIL import Image
    from typer.testing import CliRunner

    import classsr_cli.pipeline as pipeline

    folder = Path(str(tmp_path))
    for i, size in enumerate((40, 56)):
        Image.fromarray(np.full((size, size, 3), 60 * i, dtype=np.uint8)).save(folder / f"p{i}.png")
    calls = []
    monkeypatch.setattr(pipeline, "bound_freed_memory", lambda: calls.append(1) or False)
    result = CliRunner().invoke(app, ["upscale", str(folder), "-o", str(folder / "out"), "-x", "2"])
    assert result.exit_code == 0, result.output
    assert len(calls) == 2
