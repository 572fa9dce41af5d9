"""The data plan of a training run: which clips each micro-batch of each rank takes.

Every sample is a pure function of (seed, epoch, index, max skip), so workers, ranks and resumed
runs agree without re-creating iterators, and a resumed run sees exactly the clips an
uninterrupted run would have seen.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from mobilevos.distributed import DistributedContext
from mobilevos.errors import ConfigError


class PlannedRequests(Dataset):
    """Map ``(index, epoch, max_skip)`` requests onto a training dataset.

    Carrying epoch and max skip in the request (rather than as dataset state) keeps DataLoader
    workers, ranks and resumed runs in agreement without re-creating iterators.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, request: tuple[int, int, int]):
        index, epoch, max_skip = request
        self.dataset.set_epoch(epoch)
        self.dataset.set_max_skip(max_skip)
        return self.dataset[index]


class BatchPlan:
    """Which dataset indices each micro-batch of each rank uses, as a pure function of position.

    Micro-batch ``m`` of the run lies in epoch ``m // per_epoch``; within an epoch the dataset is
    permuted with seed ``(seed, epoch)`` and cut into consecutive groups of ``world * per_rank``
    indices, of which rank ``r`` takes the ``r``-th block of ``per_rank``. One process with
    batch ``n * per_rank`` therefore sees exactly the union of ``n`` ranks' batches.
    """

    def __init__(self, size: int, per_rank: int, context: DistributedContext, seed: int) -> None:
        self.size, self.per_rank, self.context, self.seed = size, per_rank, context, seed
        self.per_epoch = size // (per_rank * context.world_size)
        if self.per_epoch == 0:
            raise ConfigError(
                f"dataset has {size} samples, fewer than one batch of "
                f"{per_rank * context.world_size}"
            )
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def indices(self, micro: int) -> tuple[int, list[int]]:
        epoch, position = divmod(micro, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.size, generator=g)
        start = (position * self.context.world_size + self.context.rank) * self.per_rank
        return epoch, self._perm[start : start + self.per_rank].tolist()


class PlannedSampler:
    """A batch sampler yielding the plan's requests from micro-batch ``start`` on."""

    def __init__(self, plan: BatchPlan, start: int, total: int, skip_of_micro) -> None:
        self.plan, self.start, self.total, self.skip_of_micro = plan, start, total, skip_of_micro

    def __iter__(self):
        for micro in range(self.start, self.total):
            epoch, indices = self.plan.indices(micro)
            skip = self.skip_of_micro(micro)
            yield [(i, epoch, skip) for i in indices]

    def __len__(self) -> int:
        return self.total - self.start
