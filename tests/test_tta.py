"""The self-ensemble (engine/tta.py, ``--tta``): transforms, equivariance of the mean, FLOPs of every pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_cells import residual_model

from classsr_cli.engine import check_tta, upscale_tensor
from classsr_cli.engine.router import Argmax, Hysteresis, Reuse, Router
from classsr_cli.engine.tta import add_turned_back, dihedral, ensemble
from classsr_cli.errors import ConfigError
from classsr_cli.models.classsr import ClassSR
from classsr_cli.pipeline import Upscaler

#: A tolerance at which :func:`_frame`'s cells go to two branches with :func:`residual_model`'s random weights.
MIXED = 1.1


def _frame() -> torch.Tensor:
    """A non-square frame, black on the left and black and white noise on the right."""
    lr = torch.rand(1, 3, 45, 61)
    lr[..., :30] = 0.0
    lr[..., 30:] = (lr[..., 30:] > 0.5).float()
    return lr


def test_the_eight_transforms_are_distinct_and_undone() -> None:
    x = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(1, 2, 3, 5)
    seen = []
    for k in range(8):
        y = dihedral(x, k)
        assert y.shape == ((1, 2, 5, 3) if k & 4 else (1, 2, 3, 5))
        back = torch.zeros_like(x)
        add_turned_back(back, y, 0, k)
        assert torch.equal(back, x)
        seen.append(tuple(y.flatten().tolist()) + tuple(y.shape))
    assert len(set(seen)) == 8
    assert torch.equal(dihedral(x, 1), x.flip(-1)) and torch.equal(dihedral(x, 3), x.rot90(2, (-2, -1)))


@pytest.mark.parametrize("k", range(8))
def test_bands_of_a_transformed_output_land_where_they_belong(k: int) -> None:
    """A pass's output added band by band, as a frame run in bands gives it, is the whole output turned back."""
    out = torch.rand(1, 3, 7, 11)
    moved = dihedral(out, k)
    total = torch.zeros_like(out)
    for y, n in ((0, 3), (3, 1), (4, moved.shape[-2] - 4)):
        add_turned_back(total, moved[..., y : y + n, :], y, k)
    assert torch.equal(total, out)
    twice = ensemble(lambda x, j: [(0, x.repeat_interleave(2, -2).repeat_interleave(2, -1))], out, 8, 2)
    assert torch.allclose(twice, out.repeat_interleave(2, -2).repeat_interleave(2, -1))  # equivariant: itself


@pytest.mark.parametrize("passes", [3, 0, 16])
def test_other_pass_counts_are_refused(passes: int) -> None:
    with pytest.raises(ConfigError, match="--tta takes 1, 2, 4, 8"):
        check_tta(passes)
    with pytest.raises(ConfigError, match="--tta"):
        ensemble(lambda x, k: [(0, x)], torch.zeros(1, 1, 2, 2), passes, 1)


@pytest.mark.parametrize(("passes", "transforms"), [(2, [1]), (4, [1, 2, 3]), (8, range(8))])
@pytest.mark.parametrize("force", [None, 2])
def test_the_mean_commutes_with_the_passes_transforms(passes: int, transforms: range | list[int], force: int | None) -> None:
    """Averaged over a subgroup of the flips and transposes, the output of a transformed frame is the transformed
    output: each pass of one is a pass of the other. Routed (each pass decides afresh) and forced alike."""
    model = residual_model()
    lr = _frame()
    with torch.no_grad():
        out, route = upscale_tensor(model, lr, tta=passes, force_branch=force, tolerance=MIXED)
        plain, _ = upscale_tensor(model, lr, force_branch=force, tolerance=MIXED)
        for k in transforms:
            moved, _ = upscale_tensor(model, dihedral(lr, k), tta=passes, force_branch=force, tolerance=MIXED)
            assert torch.allclose(moved, dihedral(out, k), atol=1e-5), k
    assert route.passes == passes
    assert out.shape == plain.shape and not torch.allclose(out, plain, atol=1e-3)  # the passes do differ
    if force is None:
        assert route.decided is not None and len(set(route.decided.flatten().tolist())) > 1  # routing exercised


def test_one_pass_is_the_plain_run_and_flops_count_every_pass() -> None:
    model = residual_model()
    lr = _frame()
    with torch.no_grad():
        plain, one = upscale_tensor(model, lr, tolerance=MIXED)
        same, once = upscale_tensor(model, lr, tta=1, tolerance=MIXED)
        _, four = upscale_tensor(model, lr, tta=4, tolerance=MIXED)  # flips only: every pass on the same grid
    assert torch.equal(plain, same) and once.passes == 1 and once.flops == one.flops
    assert four.passes == 4
    assert torch.equal(four.classes, one.classes)  # the untransformed pass's classes
    assert four.flops.whole == 4 * one.flops.whole and four.flops.heavy == 4 * one.flops.heavy
    assert sum(four.computed) == 4 * sum(one.computed)
    assert four.flops.used > 3 * one.flops.used  # the passes' own routing: about four times as much
    assert 0 < four.flops.saved_vs_whole < 1  # against the heavy branch's four passes, as before against one


def test_a_router_with_state_is_refused() -> None:
    model = residual_model()
    for router in (Router(Hysteresis(0.1)), Router(Argmax(), reuse=Reuse(0))):
        with pytest.raises(ConfigError, match="does not combine with reuse or hysteresis"):
            upscale_tensor(model, _frame(), router=router, tta=2)


def test_the_patch_path_commutes_too(tiny_model: ClassSR) -> None:
    """The paper's FSRCNN models run as overlapping patches (not cells): the mean commutes all the same."""
    lr = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        out, route = upscale_tensor(tiny_model, lr, tta=8)
        moved, _ = upscale_tensor(tiny_model, dihedral(lr, 6), tta=8)
    assert torch.allclose(moved, dihedral(out, 6), atol=1e-5) and route.passes == 8


def test_an_upscaler_with_tta_mirrors_with_its_picture_and_runs_it_whole() -> None:
    up = Upscaler(residual_model(), tta=8)
    rng = np.random.default_rng(3)
    px = rng.integers(0, 256, (30, 44, 3), dtype=np.uint8)
    got = up.upscale_array(px)
    mirrored = up.upscale_array(np.ascontiguousarray(px[:, ::-1]))
    diff = np.abs(mirrored.pixels.astype(int) - got.pixels[:, ::-1].astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999  # equal but for float rounding at a half level
    assert got.route.passes == 8
    assert up.should_band(4000, 4000) and not up.should_band(1000, 1000)  # a large one in bands, its mean in a file
    assert up.at_scale(1.5).tta == 8
    with pytest.raises(ConfigError, match="--tta"):
        Upscaler(residual_model(), tta=5)


def test_passes_run_in_bands_give_the_whole_frames_mean() -> None:
    """On the CPU a large frame's passes run in bands (``band_bytes``), each band added into the mean as it comes:
    the same mean as whole passes."""
    from classsr_cli.engine import FrameRun

    model = residual_model()
    lr = torch.rand(1, 3, 150, 130)
    with torch.no_grad():
        assert all(len(list(FrameRun(model, dihedral(lr, k), band_bytes=1))) > 1 for k in (0, 4))  # transposed too
        whole, a = upscale_tensor(model, lr, tta=8, tolerance=MIXED)
        banded, b = upscale_tensor(model, lr, tta=8, tolerance=MIXED, band_bytes=1)
    assert torch.allclose(banded, whole, atol=1e-5)
    assert torch.equal(a.classes, b.classes) and a.flops.whole == b.flops.whole


def test_a_large_picture_with_tta_is_averaged_in_a_file_and_written_in_bands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A picture whose output is written in bands still is under ``--tta``: its mean made in a temporary file beside
    the output (memory-mapped), handed on in bands of rows, the pixels those of the picture held whole, and the run
    says so; nothing is left beside the output. With a class map it is held whole, and the note says why."""
    from PIL import Image

    from classsr_cli import pipeline
    from classsr_cli.pipeline import upscale_file

    px = np.random.default_rng(4).integers(0, 256, (20, 26, 3), dtype=np.uint8)
    Image.fromarray(px).save(tmp_path / "in.png")
    up = Upscaler(residual_model(), tta=2)
    spilled: list[tuple[tuple[int, ...], Path]] = []
    real = pipeline.spill_buffer

    def spy(shape: tuple[int, ...], folder: Path) -> torch.Tensor:
        spilled.append((shape, folder))
        return real(shape, folder)

    monkeypatch.setattr(pipeline, "spill_buffer", spy)
    monkeypatch.setattr(pipeline, "BAND_BYTES", 1)  # a band a row
    big = upscale_file(up, tmp_path / "in.png", tmp_path / "big.png", stream_pixels=0)
    small = upscale_file(up, tmp_path / "in.png", tmp_path / "small.png", stream_pixels=None)
    assert spilled == [((1, 3, 40, 52), tmp_path)]
    assert "--tta 2: its passes averaged in a temporary file of about 0.0 GiB beside the output" in big.notes
    assert "52x40 output computed and written in bands of rows" in big.notes
    assert not any("--tta" in n for n in small.notes) and big.route.passes == small.route.passes == 2
    with Image.open(tmp_path / "big.png") as a, Image.open(tmp_path / "small.png") as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
        assert np.array_equal(np.asarray(a), up.upscale_array(px).pixels)
    mapped = upscale_file(up, tmp_path / "in.png", tmp_path / "m.png", classmap=tmp_path / "map.png", stream_pixels=0)
    assert any(n.startswith("--tta 2 holds the whole 52x40 output in memory")
               and n.endswith("with a class map it is not written in bands of rows") for n in mapped.notes)
    assert len(spilled) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.png", "in.png", "m.png", "map.png", "small.png"]


def test_a_spill_buffer_is_zeros_in_a_nameless_file_and_a_full_disk_is_an_output_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from classsr_cli.errors import OutputError
    from classsr_cli.pipeline import spill_buffer

    buf = spill_buffer((1, 3, 5, 7), tmp_path)
    assert buf.dtype == torch.float32 and tuple(buf.shape) == (1, 3, 5, 7) and not buf.any()
    buf += 1  # writable
    assert not list(tmp_path.iterdir())

    def full(fd: int, offset: int, size: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("os.posix_fallocate", full)
    with pytest.raises(OutputError, match=rf"^{tmp_path}: cannot hold the 1.5 GiB temporary file of a self-ensemble's "
                                          r"mean \(No space left on device\)$"):
        spill_buffer((1, 3, 2**15, 2**12), tmp_path)

    def unsupported(fd: int, offset: int, size: int) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr("os.posix_fallocate", unsupported)  # some file systems: the file is sized instead
    assert not spill_buffer((2, 4), tmp_path).any()
    with pytest.raises(ValueError, match="out must be float32 of shape"):
        upscale_tensor(residual_model(), torch.rand(1, 3, 8, 8), tta=2, out=torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"tta > 1"):
        upscale_tensor(residual_model(), torch.rand(1, 3, 8, 8), out=torch.zeros(1, 3, 32, 32))
