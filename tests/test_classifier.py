"""The Class-Module: one pass over a frame scores every window as the per-patch classifier does."""

from __future__ import annotations

import pytest
import torch

from classsr_cli.models.classifier import Classifier


@pytest.mark.parametrize(("rows", "cols", "patch", "step"), [(1, 1, 32, 28), (3, 4, 32, 28), (2, 5, 32, 32), (3, 2, 16, 8)])
def test_grid_scores_equal_the_per_patch_classifier(rows: int, cols: int, patch: int, step: int) -> None:
    clf = Classifier(width=16).eval()
    for p in clf.parameters():
        torch.nn.init.normal_(p, std=0.3)
    frame = torch.rand(2, 3, (rows - 1) * step + patch, (cols - 1) * step + patch)
    with torch.no_grad():
        got = clf.grid_scores(frame, patch, step)
        tiles = frame.unfold(2, patch, step).unfold(3, patch, step)  # (N, 3, rows, cols, p, p)
        want = clf(tiles.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, patch, patch)).view(2, rows, cols, 3)
    assert got.shape == (2, rows, cols, 3)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)
    assert want.abs().max() > 0.1  # scores large enough for the comparison to mean something


def test_grid_scores_refuse_a_step_off_the_stride_4_grid() -> None:
    with pytest.raises(ValueError, match="multiples of 4"):
        Classifier(width=8).grid_scores(torch.rand(1, 3, 62, 62), 32, 30)
