"""classsr_cli.distributed: a value computed once, on rank 0, and given to every rank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from classsr_cli.distributed import World, from_main


def _rank(rank: int, size: int, folder: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=size)
    calls: list[int] = []

    def compute() -> str:
        calls.append(rank)
        return f"counted by rank {rank}"

    got = from_main(World(rank=rank, size=size), compute)
    (Path(folder) / f"rank{rank}.json").write_text(json.dumps({"got": got, "calls": calls}))
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_rank_0_computes_and_every_rank_gets_its_value(tmp_path: Path) -> None:
    """Under a process group (two gloo ranks), only rank 0 computes (a torchrun video's frame count: one read of the
    file, not one a rank) and both get its value; without one, each computes its own, as one process does."""
    torch.multiprocessing.spawn(_rank, args=(2, str(tmp_path)), nprocs=2, join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["got"] for r in results] == ["counted by rank 0"] * 2
    assert [r["calls"] for r in results] == [[0], []]
    assert from_main(World(rank=1, size=2), lambda: "mine") == "mine"  # ranks one after the other: no group
    assert from_main(World(), lambda: 7) == 7
