"""scripts/routing_eval.py on the shipped x4 default: the frame cap read apart from the classifier's decisions."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def test_routing_eval_reads_the_default_without_its_frame_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each photo's ``cap`` fires exactly where the loss the classifier predicts for the uncapped classes passes the
    model's cap; the cap only moves cells to dearer branches, so without it no third sends fewer cells light."""
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:224, 0:224] / 224.0
    smooth = np.stack([0.3 + 0.4 * xx, 0.2 + 0.5 * yy, 0.5 + 0.2 * np.sin(3 * xx)], -1)
    Image.fromarray((smooth * 255).round().astype(np.uint8)).save(photos / "smooth.png")
    Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)).save(photos / "noise.png")
    lighthouse = np.asarray(Image.open(ROOT / "examples" / "lighthouse.jpg").convert("RGB"))[:448, :448]
    Image.fromarray(lighthouse).save(photos / "photo.png")  # a clean photo crop: the cap fires on it
    out = tmp_path / "routing.json"
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    monkeypatch.setattr(sys, "argv", ["routing_eval.py", str(photos), "--threads", "1", "--json", str(out)])
    assert runpy.run_path(str(ROOT / "scripts" / "routing_eval.py"), run_name="not_main")["main"]() == 0
    report = json.loads(out.read_text())
    free = report["decided_without_cap"]
    cap = free["frame_cap_db"]
    assert cap > 0
    fired = {r["image"]: r["cap"]["fired"] for r in report["images"]}
    assert fired == {r["image"]: r["cap"]["predicted_loss_db"] > cap for r in report["images"]}
    assert fired["photo.png"] and not fired["noise.png"]
    for third in ("easiest_third_to_cheapest", "hardest_third_to_cheapest"):
        assert free[third] >= report["decided"][third]
    assert free["hardest_third_to_cheapest"] > report["decided"]["hardest_third_to_cheapest"]  # the crop's cells
