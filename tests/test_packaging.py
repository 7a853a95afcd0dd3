"""Packaging: a wheel carries the shipped weights and upscales from a clean environment; `pip install -e .`
still reads weights/ in place. Nothing is downloaded: --no-index, --no-deps, --no-build-isolation, and venvs
that see this interpreter's site-packages (torch, Pillow, ...)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.name for p in (ROOT / "weights").glob("*.safetensors"))


def _source_copy(dst: Path) -> Path:
    """What an sdist holds (see MANIFEST.in), copied so that building leaves the checkout untouched."""
    dst.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, dst / name)
    shutil.copytree(ROOT / "classsr_cli", dst / "classsr_cli", ignore=shutil.ignore_patterns("__pycache__"))
    (dst / "weights").mkdir()
    for name in SHIPPED:
        shutil.copy(ROOT / "weights" / name, dst / "weights" / name)
    return dst


def _clean_env() -> dict[str, str]:
    drop = {"PYTHONPATH", "CLASSSR_WEIGHTS", "PYTHONHOME"}
    return {k: v for k, v in os.environ.items() if k not in drop} | {"OMP_NUM_THREADS": "1"}


def _run(cmd: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{cmd}\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}"
    return p


def _venv(path: Path) -> Path:
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", path], cwd=path.parent)
    return path / "bin" / "python"


def _pip_install(python: Path, *args: str | Path) -> None:
    cmd = [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
           "--no-build-isolation", "--ignore-installed", "--disable-pip-version-check", *args]  # fmt: skip
    _run(cmd, cwd=python.parents[2])


def _models(python: Path, cwd: Path) -> dict[str, Path]:
    p = _run([python, "-m", "classsr_cli", "models", "--json"], cwd=cwd)
    assert "is looked up in" in p.stderr  # `classsr models` says where it looks
    return {rec["name"]: Path(rec["path"]) for rec in map(json.loads, p.stdout.splitlines())}


def test_shipped_weights_are_package_data() -> None:
    # The build hook copies whatever weights/*.safetensors holds (no names are listed anywhere).
    assert SHIPPED and "classsr_fsrcnn_x4.safetensors" in SHIPPED
    assert 'glob("*.safetensors")' in (ROOT / "setup.py").read_text()
    assert "weights/*.safetensors" in (ROOT / "MANIFEST.in").read_text()
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["build-system"]["build-backend"] == "setuptools.build_meta"


@pytest.mark.slow
def test_wheel_in_a_clean_environment_upscales_with_the_shipped_model(tmp_path: Path) -> None:
    src = _source_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--disable-pip-version-check", "-w", dist, src], cwd=tmp_path)  # fmt: skip
    (wheel,) = dist.glob("classsr-*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("classsr_cli/weights/")) == SHIPPED
    assert any(re.search(r"dist-info/(licenses/)?LICENSE$", n) for n in names)

    python = _venv(tmp_path / "venv")
    _pip_install(python, wheel)
    work = tmp_path / "work"  # not the checkout: nothing may come from it
    work.mkdir()
    where = _run([python, "-c", "import classsr_cli; print(classsr_cli.__file__)"], cwd=work).stdout
    assert Path(where.strip()).is_relative_to(tmp_path / "venv")
    models = _models(python, work)
    assert sorted(f"{n}.safetensors" for n in models) == SHIPPED
    assert all(p.is_relative_to(tmp_path / "venv") for p in models.values())
    Image.new("RGB", (40, 32), (120, 60, 30)).save(work / "small.png")
    classsr = tmp_path / "venv" / "bin" / "classsr"
    p = _run([classsr, "upscale", "small.png", "-x4", "--json", "--device", "cpu"], cwd=work)
    record = json.loads(p.stdout)
    assert Path(record["model"]).is_relative_to(tmp_path / "venv")
    assert Image.open(work / "small_x4.png").size == (160, 128)


@pytest.mark.slow
def test_editable_install_reads_weights_in_place(tmp_path: Path) -> None:
    src = _source_copy(tmp_path / "src")
    python = _venv(tmp_path / "venv")
    _pip_install(python, "-e", src)
    work = tmp_path / "work"
    work.mkdir()
    models = _models(python, work)
    assert sorted(f"{n}.safetensors" for n in models) == SHIPPED
    assert all(p.parent == (src / "weights").resolve() for p in models.values())
    assert not (src / "classsr_cli" / "weights").exists()  # no copy in the source tree


def test_license_matches_pyproject_and_names_the_example_terms() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    text = (ROOT / "LICENSE").read_text()
    assert meta["project"]["license"] == {"text": "MIT"} and text.startswith("MIT License")
    assert "examples/SOURCES.md" in text and "research and evaluation" in text
    for photo in (ROOT / "examples").glob("*.png"):
        if not re.search(r"_x\d|_classmap", photo.stem):
            assert photo.name in text
