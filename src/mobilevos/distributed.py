"""Process-group helpers for runs launched with ``torchrun`` (NCCL on GPUs, gloo on CPUs).

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) everything degrades to one process
and no process group is created.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def device(self, device: torch.device) -> torch.device:
        """Per-process device: ``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun."""
        if device.type == "cuda" and device.index is None and self.enabled:
            return torch.device("cuda", self.local_rank)
        return device

    def barrier(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.barrier()

    def shard(self, items: list) -> list:
        """This rank's share of ``items`` (round robin, so each rank gets a similar mix)."""
        return items[self.rank :: self.world_size]


def init_distributed(device: torch.device) -> DistributedContext:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    context = DistributedContext(
        rank=int(os.environ["RANK"]),
        world_size=world_size,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(context.local_rank)
        dist.init_process_group(backend=backend)
    return context


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
