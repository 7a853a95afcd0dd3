"""Sharing a batch among processes started by ``torchrun`` (one per GPU, or several CPU processes).

``torchrun --nproc-per-node N -m classsr_cli upscale ...`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``.
Each rank takes every ``WORLD_SIZE``-th job starting at its ``RANK`` on its own device (``cuda:LOCAL_RANK``
when there are GPUs) and the results are gathered with ``torch.distributed`` (nccl on CUDA, gloo on CPU).
Without those variables everything here is a no-op for a single process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

__all__ = ["World", "all_gather", "barrier", "device_name", "finish", "from_main", "start", "world"]

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the ranks (the one process identity, for inference and training alike).

    Attributes:
        rank, size, local_rank: as torchrun sets them (``0, 1, 0`` for a single process).
        device: the device this rank runs on.
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every rank gets here (no-op for a single process)."""
        barrier(self)

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share: ``items[rank::size]``."""
        return list(items[self.rank :: self.size])


def world() -> World:
    """Read ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (as set by torchrun)."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return World()
    rank = int(os.environ.get("RANK", "0"))
    return World(rank=rank, size=size, local_rank=int(os.environ.get("LOCAL_RANK", str(rank))))


def single_process(command: str) -> None:
    """Refuse ``command`` under torchrun (several ranks would each run it whole and race for its output): a
    :class:`ConfigError` that says what torchrun is for here."""
    if world().active:
        from classsr_cli.errors import ConfigError

        raise ConfigError(f"`classsr {command}` runs in one process; under torchrun only `upscale` (many files), "
                          "`video` (a share of the frames each) and `train` spread over the ranks")


def device_name(w: World, requested: str) -> str:
    """``cuda:LOCAL_RANK`` for a rank asking for ``auto`` or ``cuda`` on a machine with GPUs."""
    if w.active and requested in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{w.local_rank % torch.cuda.device_count()}"
    return requested


def start(w: World, device: torch.device) -> None:
    """Join the process group (nccl for CUDA devices, gloo otherwise)."""
    import torch.distributed as dist

    if not w.active or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=w.rank, world_size=w.size)


def barrier(w: World) -> None:
    """Wait until every rank gets here (no-op for a single process)."""
    if w.active:
        import torch.distributed as dist

        dist.barrier()


def all_gather(w: World, obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank."""
    if not w.active:
        return [obj]
    import torch.distributed as dist

    gathered: list[Any] = [None] * w.size
    dist.all_gather_object(gathered, obj)
    return gathered


def from_main(w: World, compute: Callable[[], T]) -> T:
    """``compute()`` on rank 0, its result on every rank (one read of a file, not one a rank). Where no process group
    is up (ranks run one after the other in one process, as tests run them), each rank computes its own."""
    if not w.active:
        return compute()
    import torch.distributed as dist

    if not dist.is_initialized():
        return compute()
    box = [compute() if w.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]


def finish(w: World) -> None:
    """Leave the process group; every rank waits for the others first, since a gloo rank tearing down while
    its peer is still connected can abort the peer."""
    import torch.distributed as dist

    if w.active and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()
