"""scripts/engine_ab.py: the turns give no method a place the others do not get as often."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable


def test_each_method_runs_right_after_each_other_one_as_often(load_script: Callable[[str], dict]) -> None:
    orders = load_script("engine_ab.py")["turn_orders"](["old", "new", "heavy"])
    follows = Counter((a, b) for order in orders for a, b in itertools.pairwise(order))  # b right after a
    firsts = Counter(order[0] for order in orders)
    assert len(set(follows.values())) == 1 and len(follows) == 6  # every ordered pair alike
    assert len(set(firsts.values())) == 1 and len(firsts) == 3
    assert follows[("old", "new")] == follows[("new", "old")]
