"""scripts/hashed_light.py: the structure buckets, and filters fitted by least squares per bucket."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch


@pytest.fixture()
def script(load_script: Callable[[str], dict]) -> dict:
    return load_script("hashed_light.py")


def test_structure_reads_a_ramps_orientation_and_coherence(script: dict) -> None:
    ramp = torch.linspace(0, 1, 16, dtype=torch.float64)
    across = ramp.view(1, 1, 1, 16).expand(1, 3, 16, 16)  # brighter to the right: the gradient along x
    angle, strength, coherence = script["structure"](across)
    inner = (slice(3, -3), slice(3, -3))
    assert torch.allclose(angle[inner], torch.zeros(10, 10, dtype=torch.float64), atol=1e-6)
    assert (strength[inner] > 0).all() and torch.allclose(coherence[inner], torch.ones(10, 10, dtype=torch.float64), atol=1e-6)
    angle, _, _ = script["structure"](across.transpose(2, 3))  # brighter downwards
    assert torch.allclose(angle[inner], torch.full((10, 10), math.pi / 2, dtype=torch.float64), atol=1e-6)


def test_fit_recovers_the_filters_that_made_the_hr(script: dict) -> None:
    """HR made by known per-bucket filters from random LR images: the fit finds them, so the hashed base of the LR
    is the HR again; with the buckets scrambled it is not."""
    torch.manual_seed(0)
    scale, taps, angles = 2, 3, 2
    lrs = [torch.rand(1, 3, 24, 24, dtype=torch.float64) for _ in range(6)]
    stats = [script["structure"](x) for x in lrs]
    thirds = torch.tensor([1 / 3, 2 / 3], dtype=torch.float64)
    edges = (torch.quantile(torch.cat([s[1].flatten() for s in stats]), thirds),
             torch.quantile(torch.cat([s[2].flatten() for s in stats]), thirds))
    true = torch.randn(angles * 9, taps * taps, scale * scale, dtype=torch.float64) * 0.2
    pairs = [(x, script["upscale"](x, true, scale, angles, edges)) for x in lrs]
    fitted = script["fit"](pairs, scale, taps, angles, edges, ridge=1e-9)
    for x, hr in pairs:
        assert torch.allclose(script["upscale"](x, fitted, scale, angles, edges), hr, atol=1e-6)
    scrambled = fitted[torch.randperm(len(fitted))]
    assert not torch.allclose(script["upscale"](lrs[0], scrambled, scale, angles, edges), pairs[0][1], atol=1e-3)
