"""The image pipeline's conversion of model output to integer pixels."""

from __future__ import annotations

import numpy as np
import torch

from classsr_cli.pipeline import _quantise


def test_quantise_in_place_gives_the_same_pixels_and_only_then_reuses_its_input() -> None:
    """round(clamp(x, 0, 1) * top) as HWC integers, from an HWC view of a CHW frame; ``inplace`` writes into ``x``
    (the pipeline's scratch model output), the default leaves it as it was."""
    torch.manual_seed(8)
    frame = torch.rand(3, 9, 11) * 1.4 - 0.2
    for top, dtype in ((255.0, np.uint8), (65535.0, np.uint16)):
        want = np.clip(np.round(frame.permute(1, 2, 0).double().numpy() * top), 0, top).astype(dtype)
        kept = frame.clone()
        got = _quantise(kept.permute(1, 2, 0), top, dtype)
        assert torch.equal(kept, frame)
        scratch = frame.clone()
        got_inplace = _quantise(scratch.permute(1, 2, 0), top, dtype, inplace=True)
        assert not torch.equal(scratch, frame)
        for out in (got, got_inplace):
            assert out.dtype == dtype and out.shape == (9, 11, 3) and out.flags.c_contiguous
            assert np.abs(out.astype(np.int64) - want.astype(np.int64)).max() <= 1  # float32 rounding of * top
        assert np.array_equal(got, got_inplace)
