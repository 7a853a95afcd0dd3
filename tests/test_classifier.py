"""The Class-Module: one pass over a frame scores every window as the per-patch classifier does."""

from __future__ import annotations

import pytest
import torch

from classsr_cli.models.classifier import Classifier


@pytest.mark.parametrize(("kernel", "hidden", "zero_mean"), [(1, 0, False), (3, 0, False), (1, 8, True), (3, 8, True)])
@pytest.mark.parametrize(("rows", "cols", "patch", "step"), [(1, 1, 32, 28), (3, 4, 32, 28), (2, 5, 32, 32), (3, 2, 16, 8)])
def test_grid_scores_equal_the_per_patch_classifier(
    rows: int, cols: int, patch: int, step: int, kernel: int, hidden: int, zero_mean: bool
) -> None:
    clf = Classifier(width=16, kernel=kernel, hidden=hidden, zero_mean=zero_mean).eval()
    for p in clf.parameters():
        torch.nn.init.normal_(p, std=0.3)
    frame = torch.rand(2, 3, (rows - 1) * step + patch, (cols - 1) * step + patch)
    with torch.no_grad():
        got = clf.grid_scores(frame, patch, step, batch_size=5)
        want = torch.stack([torch.stack([clf(frame[:, :, r * step : r * step + patch, c * step : c * step + patch])
                                         for c in range(cols)], 1) for r in range(rows)], 1)
    assert got.shape == (2, rows, cols, 3)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)
    assert want.abs().max() > 0.1  # scores large enough for the comparison to mean something


def test_a_kernel_3_classifier_sees_across_blocks_and_an_even_kernel_is_refused() -> None:
    torch.manual_seed(0)
    bag, ctx = Classifier(width=8).eval(), Classifier(width=8, kernel=3).eval()
    for p in [*bag.parameters(), *ctx.parameters()]:
        torch.nn.init.normal_(p, std=0.3)
    x = torch.rand(1, 3, 32, 32)
    shuffled = x.view(1, 3, 8, 4, 8, 4)[:, :, torch.randperm(8)].reshape(1, 3, 32, 32)  # 4x4 blocks moved
    with torch.no_grad():
        assert torch.allclose(bag(x), bag(shuffled), atol=1e-6)  # a bag of blocks: their order is invisible
        assert not torch.allclose(ctx(x), ctx(shuffled), atol=1e-3)
    with pytest.raises(ValueError, match="odd"):
        Classifier(width=8, kernel=2)


def test_a_hidden_head_bends_the_pooled_features_response() -> None:
    """The paper's head is linear in the pooled features: the score of a window mixing two windows' blocks half
    and half is the mean of their scores. A hidden layer breaks that (what lets it floor nothing), and counts."""
    torch.manual_seed(0)
    linear, bent = Classifier(width=8).eval(), Classifier(width=8, hidden=16).eval()
    for p in [*linear.parameters(), *bent.parameters()]:
        torch.nn.init.normal_(p, std=0.5)
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32) * 0.1
    mixed = torch.cat([a[:, :, :16], b[:, :, 16:]], 2)  # 4x4 blocks: half of a's, half of b's
    with torch.no_grad():
        assert torch.allclose(linear(mixed), (linear(a[:, :, :16].repeat(1, 1, 2, 1)) + linear(b[:, :, 16:].repeat(1, 1, 2, 1))) / 2, atol=1e-5)
        want = (bent(a[:, :, :16].repeat(1, 1, 2, 1)) + bent(b[:, :, 16:].repeat(1, 1, 2, 1))) / 2
        assert not torch.allclose(bent(mixed), want, atol=1e-3)
    assert linear.head_flops() == 2 * (8 * 32 + 32 * 3) and bent.head_flops() == 2 * (8 * 32 + 32 * 16 + 16 * 3)
    with pytest.raises(ValueError, match="hidden"):
        Classifier(width=8, hidden=-1)


def test_a_zero_mean_classifier_scores_flat_windows_alike_whatever_their_colour() -> None:
    torch.manual_seed(0)
    paper, blind = Classifier(width=8).eval(), Classifier(width=8, zero_mean=True).eval()
    blind.load_state_dict(paper.state_dict())  # the same weights and keys
    for p in paper.parameters():
        torch.nn.init.normal_(p, std=0.5)
    blind.load_state_dict(paper.state_dict())
    x = torch.rand(1, 3, 32, 32) * 0.5
    tint = torch.tensor([0.4, 0.1, -0.2]).view(1, 3, 1, 1)  # a constant per channel: another colour, same texture
    red, grey = torch.tensor([0.9, 0.1, 0.1]).view(1, 3, 1, 1), torch.full((1, 3, 1, 1), 0.5)
    with torch.no_grad():
        assert torch.allclose(blind(x), blind(x + tint), atol=1e-5)
        assert torch.allclose(blind(red.expand(1, 3, 32, 32)), blind(grey.expand(1, 3, 32, 32)), atol=1e-5)
        assert not torch.allclose(paper(x), paper(x + tint), atol=1e-3)
        assert not torch.allclose(blind(x), blind(x * 1.5), atol=1e-3)  # contrast still counts


def test_kaiming_init_is_ten_times_the_papers_scale() -> None:
    torch.manual_seed(0)
    clf = Classifier(width=64)
    paper = clf.conv2.weight.std().item()
    clf.init_weights("kaiming")
    want = (2 / (1 + 0.1**2) / 64) ** 0.5  # Kaiming-normal, fan-in 64, LeakyReLU slope 0.1
    assert abs(clf.conv2.weight.std().item() - want) < 0.1 * want
    assert abs(paper - 0.1 * (2 / 64) ** 0.5) < 0.01 * want
    assert float(clf.conv1.bias.detach().abs().max()) == 0
    with pytest.raises(ValueError, match="init"):
        clf.init_weights("xavier")


def test_grid_scores_refuse_a_step_off_the_stride_4_grid() -> None:
    with pytest.raises(ValueError, match="multiples of 4"):
        Classifier(width=8).grid_scores(torch.rand(1, 3, 62, 62), 32, 30)


def test_classify_frame_classifies_the_window_centred_on_each_cell() -> None:
    import torch.nn.functional as F

    from classsr_cli.config import ClassSRConfig
    from classsr_cli.models import build_model

    model = build_model(ClassSRConfig("residual", 2, (0, 4, 8), {"depth": 1}, classifier_width=8)).eval()
    for p in model.classifier.parameters():
        torch.nn.init.normal_(p, std=0.5)
    frame = torch.rand(1, 3, 61, 50)
    got = model.classify_frame(frame, 28)
    assert got.shape == (3, 2)
    padded = F.pad(frame, (2, 2 * 28 - 50 + 2, 2, 3 * 28 - 61 + 2), mode="replicate")
    with torch.no_grad():
        want = [[int(model.classifier(padded[..., r * 28 : r * 28 + 32, c * 28 : c * 28 + 32]).argmax())
                 for c in range(2)] for r in range(3)]
    assert got.tolist() == want
    with pytest.raises(ValueError, match="step"):
        model.classify_frame(frame, 27)


@pytest.mark.parametrize(("rows", "cols", "patch", "step"), [(1, 1, 32, 28), (3, 4, 32, 28), (2, 3, 16, 8)])
def test_a_frame_context_classifier_scores_every_window_with_its_context_in_one_pass(
    rows: int, cols: int, patch: int, step: int
) -> None:
    """``frame`` context: the middle convolutions run once over the frame, and each window's score equals the
    classifier on that window with ``margin`` pixels of the frame around it (as it trains)."""
    torch.manual_seed(0)
    clf = Classifier(width=8, kernel=3, hidden=8, zero_mean=True, context="frame").eval()
    for p in clf.parameters():
        torch.nn.init.normal_(p, std=0.3)
    m = clf.margin
    assert m == 12 and Classifier(width=8, kernel=3).margin == 0 and Classifier(width=8, kernel=5, context="frame").margin == 24
    frame = torch.rand(2, 3, (rows - 1) * step + patch + 2 * m, (cols - 1) * step + patch + 2 * m)
    with torch.no_grad():
        got = clf.grid_scores(frame, patch, step)
        want = torch.stack([torch.stack([
            clf.forward_context(frame[:, :, r * step : r * step + patch + 2 * m, c * step : c * step + patch + 2 * m])
            for c in range(cols)], 1) for r in range(rows)], 1)
        assert got.shape == (2, rows, cols, 3)
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-5) and want.abs().max() > 0.1
        window = frame[:1, :, m : m + patch, m : m + patch]
        # The context counts: the same window in other surroundings scores otherwise ...
        other = frame[:1, :, : patch + 2 * m, : patch + 2 * m].clone()
        other[:, :, :m] = 1 - other[:, :, :m]
        assert not torch.allclose(clf.forward_context(other), want[:1, 0, 0], atol=1e-3)
        # ... and a window given alone is scored as a frame of one window: its edges replicated
        padded = torch.nn.functional.pad(window, (m,) * 4, mode="replicate")
        assert torch.allclose(clf(window), clf.forward_context(padded), atol=1e-6)
    with pytest.raises(ValueError, match="context"):
        Classifier(width=8, kernel=3, context="image")


def test_classify_frame_gives_a_frame_context_classifier_its_context_as_the_engine_does() -> None:
    """A frame's classes from ``classify_frame`` (the frame replicate-padded once) equal each window scored with
    its margin of that padded frame; the engine's cells (FrameRun) route alike."""
    import torch.nn.functional as F

    from classsr_cli.config import ClassSRConfig
    from classsr_cli.engine.bands import FrameRun
    from classsr_cli.models import build_model

    torch.manual_seed(1)
    model = build_model(ClassSRConfig("residual", 2, (0, 4, 8), {"depth": 1}, classifier_width=8,
                                      classifier_kernel=3, classifier_context="frame")).eval()
    for p in model.classifier.parameters():
        torch.nn.init.normal_(p, std=0.5)
    frame = torch.rand(1, 3, 61, 50)
    got = model.classify_frame(frame, 28)
    padded = F.pad(frame, (14, 2 * 28 - 50 + 14, 14, 3 * 28 - 61 + 14), mode="replicate")
    with torch.no_grad():
        want = [[int(model.classifier.forward_context(padded[..., r * 28 : r * 28 + 56, c * 28 : c * 28 + 56]).argmax())
                 for c in range(2)] for r in range(3)]
    assert got.tolist() == want and len({c for row in want for c in row}) > 1
    run = FrameRun(model, frame, block=1, whole_bands=False)
    list(run)
    assert run.cells is not None and run.cells.context == 12 and run.cells.margin >= 14
    assert torch.equal(run.result.classes, got)


def test_the_pooled_head_runs_conv5_once_per_window_with_the_same_scores() -> None:
    """conv5 (1x1, linear) commutes with the window's mean: pooling first gives the scores of conv5 on every
    block, then the mean, within float rounding; FLOPs count it once per window."""
    from classsr_cli.engine.flops import count_flops

    torch.manual_seed(0)
    clf = Classifier(width=8, kernel=3, hidden=16).eval()
    for p in clf.parameters():
        torch.nn.init.normal_(p, std=0.5)
    hidden = torch.rand(5, 8, 8, 8)
    with torch.no_grad():
        want = clf.head(clf.conv5(hidden).mean(dim=(2, 3)))
        assert torch.allclose(clf.pooled_head(hidden), want, atol=1e-5)
    per_block = 2 * 9 * 8 * 8 * 3 + 2 * 3 * 8 * 16  # conv2-4 and conv1, per 4x4 block
    assert count_flops(clf, (1, 3, 32, 32)) == 64 * per_block + clf.head_flops()
    assert clf.head_flops() == 2 * (8 * 32 + 32 * 16 + 16 * 3)
