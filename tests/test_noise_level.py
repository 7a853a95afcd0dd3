"""scripts/noise_level.py's coded clips, which scripts/auto_rules.py scores ``classsr video --model auto`` on: at a
constant quality (CRF) or, as cameras and streams code, at a bit rate (``--bpp``)."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

from classsr_cli.degrade import add_noise

ROOT = Path(__file__).resolve().parents[1]


def _frames(n: int = 25) -> list[np.ndarray]:
    y, x = np.mgrid[0:96, 0:128]
    ramp = np.dstack([x * 2, y * 2, x + y]).astype(np.uint8)
    return [add_noise(np.roll(ramp, k, axis=1), 8, k) for k in range(n)]


@pytest.mark.parametrize("codec", ["h264", "vp9"])
def test_a_clip_at_a_bit_rate_spends_about_it(codec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a bit rate the clip's size follows it (VP9's constant-quality ``-b:v 0`` dropped), and H.264's blocks are
    quantized more coarsely at the lower rate; a CRF and a rate together are refused."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))  # its imports: scripts/report.py, routing_eval.py
    coded_frames = runpy.run_path(str(ROOT / "scripts" / "noise_level.py"), run_name="not_main")["coded_frames"]
    frames = _frames()
    low: dict = {}
    high: dict = {}
    out = coded_frames(frames, None, codec, low, bpp=0.1)
    coded_frames(frames, None, codec, high, bpp=1.0)
    assert len(out) == len(frames) and out[0].shape == frames[0].shape
    assert low["bytes"] < 0.5 * high["bytes"]
    assert 0.5 < high["bytes"] * 8 / (128 * 96 * len(frames)) < 2  # about the rate asked for
    if codec == "h264":
        assert np.mean(low["qp"]) > np.mean(high["qp"]) + 5
    with pytest.raises(ValueError, match="crf or bpp"):
        coded_frames(frames, 23, codec, bpp=0.5)
