"""Shared fixtures: seeded RNGs, tiny ClassSR models saved to temporary folders, tiny images (and animated WebPs
written frame by frame)."""

from __future__ import annotations

import io
import random
import runpy
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from classsr_cli.config import ClassSRConfig

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

# Tiny tensors: extra intra-op threads only add synchronisation cost (tens of ms per conv on a busy machine).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def load_script(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], dict]:
    """``load_script("name.py")``: a script of scripts/ loaded, not run (its ``main`` unused), with scripts/
    importable for its own helpers."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return lambda name: runpy.run_path(str(SCRIPTS / name), run_name="not_main")


@pytest.fixture
def tiny_cfg() -> ClassSRConfig:
    """A tiny FSRCNN ClassSR (widths 4/6/8, one mapping conv, classifier width 8)."""
    return ClassSRConfig(family="fsrcnn", scale=4, widths=(4, 6, 8), extra={"s": 4, "m": 1}, classifier_width=8)


@pytest.fixture
def tiny_model(tiny_cfg: ClassSRConfig) -> torch.nn.Module:
    from classsr_cli.models import build_model

    return build_model(tiny_cfg).eval()


@pytest.fixture
def tiny_model_path(tiny_model: torch.nn.Module, tmp_path: Path) -> Path:
    from classsr_cli.checkpoint import save_checkpoint

    return save_checkpoint(tiny_model, tmp_path / "tiny_x4.safetensors")


@pytest.fixture
def install(tiny_model: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, Path]]:
    """``install("classsr_residual_x4", ...)``: the tiny model saved under those names in a weights folder of its own,
    the only one looked in (``CLASSSR_WEIGHTS``; the shipped weights left out): their paths by name."""
    from classsr_cli.checkpoint import save_checkpoint

    weights = tmp_path / "weights"
    weights.mkdir(exist_ok=True)
    monkeypatch.setenv("CLASSSR_WEIGHTS", str(weights))
    monkeypatch.setattr("classsr_cli.zoo.shipped_weights_dirs", lambda: [])
    return lambda *names: {name: save_checkpoint(tiny_model, weights / f"{name}.safetensors") for name in names}


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A small seeded RGB PNG with smooth and textured regions (48x40)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:40, 0:48]
    img = np.stack([x * 5, y * 6, (x + y) * 3], -1).astype(np.float64)
    img[:, 24:] += rng.normal(0, 40, (40, 24, 3))
    path = tmp_path / "photo.png"
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    return path


def requires_data(*parts: str) -> pytest.MarkDecorator:
    """Skip (with the reason) when ../shared/data/<parts> is absent; tests using it carry the `data` mark."""
    path = DATA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"needs {path}")


def unimplemented_dds(path: Path) -> Path:
    """A 256x256 DDS texture under a DX10 header in DXGI format 93 (B8G8R8X8_UNORM_SRGB), which Pillow's plugin does
    not implement (it raises NotImplementedError when it opens the file), its data a quarter of what that needs."""
    header = struct.pack("<4s7I44x", b"DDS ", 124, 0x000A1007, 256, 256, 0x10000, 0, 1)
    header += struct.pack("<2I4s20xI16x", 32, 4, b"DX10", 0x1000) + struct.pack("<5I", 93, 3, 0, 1, 0)
    path.write_bytes(header + bytes(65536))
    return path


def animated_webp(path: Path, canvas: tuple[int, int], frames: list[tuple[int, int, tuple[int, int], tuple[int, ...]]]) -> Path:
    """An animated WebP of ``canvas`` (width, height) that says it has no alpha, each frame (left, top, size, colour;
    even offsets) one lossless colour, not blended, kept after it shows. Written by hand: Pillow's writer makes every
    frame the canvas's size."""
    from PIL import Image

    def chunk(tag: bytes, data: bytes) -> bytes:
        return tag + struct.pack("<I", len(data)) + data + b"\x00" * (len(data) & 1)

    body = chunk(b"VP8X", b"\x02\x00\x00\x00" + (canvas[0] - 1).to_bytes(3, "little") + (canvas[1] - 1).to_bytes(3, "little"))
    body += chunk(b"ANIM", bytes(6))  # background clear black, looping forever
    for x, y, size, colour in frames:
        buf = io.BytesIO()
        Image.new("RGB", size, colour).save(buf, "WEBP", lossless=True)
        data = buf.getvalue()
        at = data.index(b"VP8L")
        bitstream = data[at : at + 8 + struct.unpack("<I", data[at + 4 : at + 8])[0]]
        head = b"".join(v.to_bytes(3, "little") for v in (x // 2, y // 2, size[0] - 1, size[1] - 1, 100))
        body += chunk(b"ANMF", head + b"\x02" + bitstream)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body)
    return path
