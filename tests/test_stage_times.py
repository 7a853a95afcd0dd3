"""scripts/stage_times.py: every stage it times is one the cell engine runs, and the timers come off again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from classsr_cli.config import ClassSRConfig
from classsr_cli.engine import bands
from classsr_cli.models import build_model
from classsr_cli.models.classsr import ClassSR


def test_every_stage_is_timed_and_the_engine_is_left_as_it_was(load_script: Callable[[str], dict]) -> None:
    script = load_script("stage_times.py")
    model = build_model(ClassSRConfig("residual", 2, (0, 4, 6), {"depth": 1}, classifier_width=8, routing="deficit",
                                      tolerance=1.0)).eval()
    assert isinstance(model, ClassSR)
    before = {name: getattr(owner, attr) for name, (owner, attr) in script["STAGES"].items()}
    ms = script["measure"](model, [torch.rand(1, 3, 70, 90), torch.rand(1, 3, 40, 33)], 2)
    assert all(ms[name] > 0 for name in script["STAGES"])  # a stage the engine no longer calls would read 0
    assert ms["scores"] + ms["decide"] <= ms["classify"]  # they run inside it
    assert ms["routed"] >= sum(ms[k] for k in script["STAGES"] if k not in script["NESTED"])
    assert {name: getattr(owner, attr) for name, (owner, attr) in script["STAGES"].items()} == before
    assert bands.run_cells is before["branches"]


def test_a_tolerance_reaches_every_routed_frame(load_script: Callable[[str], dict]) -> None:
    script = load_script("stage_times.py")
    model = build_model(ClassSRConfig("residual", 2, (0, 4, 6), {"depth": 1}, classifier_width=8, routing="deficit",
                                      tolerance=1.0)).eval()
    assert isinstance(model, ClassSR)
    seen: list[float | None] = []
    scope = script["measure"].__globals__  # run_path hands back a copy of the script's globals
    real = scope["upscale_tensor"]

    def spy(m: ClassSR, x: torch.Tensor, **kwargs: Any) -> Any:
        seen.append(kwargs.get("tolerance"))
        return real(m, x, **kwargs)

    scope["upscale_tensor"] = spy
    script["measure"](model, [torch.rand(1, 3, 40, 33)], 2, 0.25)
    assert seen == [0.25] * 3  # the warm-up and both rounds
    seen.clear()
    script["measure"](model, [torch.rand(1, 3, 40, 33)], 1)
    assert seen == [None] * 2  # the model's default decision
