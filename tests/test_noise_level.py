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


def test_rules_scored_on_the_noise_a_later_frame_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """``scripts/auto_rules.py --read-at K``: a rule reads the noise features of frame K of each clip (the median over
    several K), where the rows hold them (``--feature-frames``), instead of the first frame's."""
    import json
    import sys

    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    main = runpy.run_path(str(ROOT / "scripts" / "auto_rules.py"), run_name="not_main")["main"]
    # the first frame reads noisy; the frames the codec predicts, which the run mostly upscales, read clean
    rows = [{"sigma": 4.0, "codec": "hevc", "nl0.005": 4.5, "nl0.02": 5.0, "nl0.1": 6.0,
             **{f"nl{s}@{k}": v for k, v in ((6, 0.8), (12, 0.5), (18, 4.0)) for s in ("0.005", "0.02", "0.1")},
             "default": 30.0, "jpeg": 29.9, "noisy": 29.5}]  # fmt: skip
    (tmp_path / "rows.jsonl").write_text(json.dumps(rows[0]) + "\n")

    def gain(*read_at: str) -> float:
        monkeypatch.setattr(sys, "argv", ["auto_rules.py", "BSD200", "--rule", "0.02", "3", "0.02", "99", "99",
                                          "--rows", str(tmp_path / "rows.jsonl"), *read_at])
        assert main() == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        return next(r["mean_db"] for r in lines if r["rule"].startswith("rule"))

    assert gain() == -0.5  # the noisy model, on the first frame's noise
    assert gain("--read-at", "12") == 0.0  # the default, on frame 12's
    assert gain("--read-at", "6", "12", "18") == 0.0  # median 0.8: the default
    assert gain("--read-at", "0", "18") == -0.5  # median 4.5: the noisy model
