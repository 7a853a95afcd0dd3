"""SRResNet, CARN-M and RCAN branch families: build, shapes, checkpoints, FLOPs, paper sizes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from classsr_cli.checkpoint import load_checkpoint, save_checkpoint
from classsr_cli.config import BranchConfig, ClassSRConfig
from classsr_cli.engine.flops import count_flops
from classsr_cli.models import build_branch, build_model
from classsr_cli.models._layers import DIV2K_MEAN

FAMILIES = ("srresnet", "carn", "rcan")

#: Tiny hyper-parameters per family: (widths light/medium/heavy, extra).
TINY: dict[str, tuple[tuple[int, int, int], dict[str, int]]] = {
    "srresnet": ((4, 6, 8), {"num_blocks": 1}),
    "carn": ((4, 8, 12), {"groups": 4, "num_blocks": 2}),
    "rcan": ((4, 8, 12), {"num_groups": 2, "num_blocks": 1, "reduction": 4}),
}

#: CLASSSR.md §2: parameters of branch 1/2/3 at the paper widths (x4).
PAPER_PARAMS = {
    "srresnet": (481_683, 1_002_771, 1_517_571),
    "carn": (94_851, 195_651, 294_939),
    "rcan": (4_940_707, 9_521_827, 15_592_379),
}

#: CLASSSR.md §2: FLOPs per 32x32 LR patch (2 x MACs) of branch 1/2/3, rounded to 0.01 G as in the table.
PAPER_GFLOPS = {
    "srresnet": (1.66, 3.44, 5.20),
    "carn": (0.38, 0.77, 1.15),
    "rcan": (10.33, 19.90, 32.60),
}


def tiny_cfg(family: str, scale: int = 4) -> ClassSRConfig:
    widths, extra = TINY[family]
    return ClassSRConfig(family=family, scale=scale, widths=widths, extra=extra, classifier_width=8)


def randomize_(module: torch.nn.Module) -> None:
    """Give every parameter and float buffer (BatchNorm statistics too) seeded non-default values."""
    with torch.no_grad():
        for name, t in [*module.named_parameters(), *module.named_buffers()]:
            if t.is_floating_point():
                t.copy_(
                    torch.rand_like(t) + 0.5 if name.endswith("running_var") else torch.randn_like(t) * 0.2
                )


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_forward_shape_every_scale(family: str, scale: int) -> None:
    branch = build_branch(tiny_cfg(family, scale).branch(2)).eval()
    with torch.no_grad():
        out = branch(torch.rand(2, 3, 8, 6))
    assert out.shape == (2, 3, 8 * scale, 6 * scale)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_whole_model_roundtrip(family: str, tmp_path: Path) -> None:
    model = build_model(tiny_cfg(family)).eval()
    randomize_(model)
    x = torch.rand(5, 3, 8, 8)
    with torch.no_grad():
        expected = model.forward_routed(x, batch_size=2)[0]
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "m.safetensors"), expect_kind="classsr")
    assert loaded.config == model.cfg
    with torch.no_grad():
        got = loaded.module.forward_routed(x, batch_size=2)[0]
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_single_branch_roundtrip(family: str, tmp_path: Path) -> None:
    cfg = tiny_cfg(family, scale=3).branch(1)
    branch = build_branch(cfg).eval()
    randomize_(branch)
    x = torch.rand(1, 3, 7, 9)
    with torch.no_grad():
        expected = branch(x)
    loaded = load_checkpoint(
        save_checkpoint(branch, tmp_path / "b.safetensors", config=cfg), expect_kind="branch"
    )
    assert loaded.config == cfg
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("scale", [3, 4])
def test_flops_match_torch_counter(family: str, scale: int) -> None:
    branch = build_branch(tiny_cfg(family, scale).branch(2)).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        branch(torch.zeros(1, 3, 16, 16))
    assert count_flops(branch, (1, 3, 16, 16)) == counter.get_total_flops() > 0


def test_rcan_public_range_is_unit_interval() -> None:
    """With everything but the mean shifts zeroed, RCAN outputs the DIV2K mean: it computes in [0, 255]
    (mean shifts of 255 x mean) and hands back [0, 1]."""
    branch = build_branch(tiny_cfg("rcan").branch(0)).eval()
    with torch.no_grad():
        for name, p in branch.named_parameters():
            if "_mean." not in name:
                p.zero_()
        out = branch(torch.rand(1, 3, 4, 4))
    mean = torch.tensor(DIV2K_MEAN).view(1, 3, 1, 1).expand_as(out)
    torch.testing.assert_close(out, mean)


def test_carn_shares_one_unit_per_block() -> None:
    branch = build_branch(tiny_cfg("carn").branch(2))
    names = [n for n, _ in branch.named_parameters() if ".unit." in n]
    # one efficient residual unit (3 convs, weight + bias) per cascading block, however often it is applied
    assert len(names) == 2 * 3 * TINY["carn"][1]["num_blocks"]


@pytest.mark.parametrize("family", ["srresnet", "carn", pytest.param("rcan", marks=pytest.mark.slow)])
def test_paper_parameter_counts_and_flops(family: str) -> None:
    """Full-size branches are only built on the meta device (no memory, no real compute)."""
    with torch.device("meta"):
        model = build_model(ClassSRConfig.paper(family))
    counts = tuple(sum(p.numel() for p in b.parameters()) for b in model.branches)
    assert counts == PAPER_PARAMS[family]
    for branch, gflops in zip(model.branches, PAPER_GFLOPS[family], strict=True):
        assert count_flops(branch, (1, 3, 32, 32), "paper") / 1e9 == pytest.approx(gflops, abs=0.01)


def test_carn_count_includes_batchnorm_affine_not_statistics() -> None:
    """CLASSSR.md's 294,939 for CARN-M 64 includes the fusion BatchNorms' weight and bias (2 x 64 x 12 = 1,536)
    and the two mean shifts (24), but not the BatchNorm running statistics (buffers, not parameters)."""
    with torch.device("meta"):
        branch = build_branch(BranchConfig(family="carn", width=64))
    bn = sum(p.numel() for n, p in branch.named_parameters() if ".bn." in n)
    stats = sum(b.numel() for n, b in branch.named_buffers() if "running_" in n)
    assert bn == 1_536
    assert stats == 1_536
    assert sum(p.numel() for p in branch.parameters()) == 294_939


def test_carn_width_must_divide_by_groups() -> None:
    with pytest.raises(ValueError, match="divisible"):
        build_branch(BranchConfig(family="carn", width=10, extra={"groups": 4}))


def test_flops_cache_follows_the_model_not_its_id(monkeypatch: pytest.MonkeyPatch) -> None:
    # An id() key handed a new model the FLOPs of a dead one whenever CPython reused the id. Reuse is made
    # certain here: every object gets the same "id" inside classsr_cli.engine.flops.
    import gc
    import weakref

    from classsr_cli.engine import flops

    monkeypatch.setattr(flops, "id", lambda _obj: 1, raising=False)

    def tiny(widths: tuple[int, int, int]) -> torch.nn.Module:
        cfg = ClassSRConfig(family="fsrcnn", scale=4, widths=widths, extra={"s": 4, "m": 1}, classifier_width=8)
        return build_model(cfg).eval()

    small = tiny((4, 6, 8))
    small_heavy = flops.model_flops(small).branches[2]
    gone = weakref.ref(small)
    del small
    gc.collect()
    assert gone() is None  # the cache keeps no model alive
    big = tiny((8, 12, 16))
    expected = count_flops(big.branches[2], (1, 3, 32, 32), "real")
    assert expected != small_heavy and flops.model_flops(big).branches[2] == expected


def test_a_family_added_without_its_scales_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/design.md's steps once left out config._SCALES: a family registered without it was a KeyError."""
    from classsr_cli import config
    from classsr_cli.errors import ConfigError

    monkeypatch.setitem(config.FAMILY_DEFAULTS, "toy", config.FAMILY_DEFAULTS["fsrcnn"])
    with pytest.raises(ConfigError, match=r"toy supports scales none \(add them to config._SCALES\)"):
        config.ClassSRConfig(family="toy", scale=4, widths=(8, 16, 32))
