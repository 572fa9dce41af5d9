"""The finite memory bank: fixed-capacity key/value tensors with pinned slots and a ring.

Layout: slots ``[0, pinned)`` hold annotated frames (frames where the user gave a mask), slots
``[pinned, pinned + recent)`` are a ring of the most recent written frames. A ``valid`` mask per
object and slot says which slots hold a frame *for that object* (an object added on frame 30 has
no value in the frames written before it). The readout gives invalid slots zero weight, so tensor
shapes stay the same from the second frame to the hundred-thousandth.

The write policy (which frames enter the ring) comes from :class:`~mobilevos.config.MemoryConfig`;
this module is the only place that knows it. The students' "first + latest" memory and the
teacher's "every 5th frame, long ring" memory are the same code with other settings.

Writes are in place during inference and out of place when autograd is recording (training
unrolls backpropagate through values read from the bank, and an in-place overwrite would
invalidate tensors saved for backward).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mobilevos.config import MemoryConfig
from mobilevos.model.readout import memory_read


class MemoryBank:
    """Per-video memory of keys (shared by all objects) and per-object values.

    Shapes:
        keys: (B, Ck, S, h, w)
        values: (B, K, Cv, S, h, w)
        valid: (K, S) bool, shared across the batch (clips in a batch are unrolled in lockstep)
        frame_index: (S,) long, the frame each slot holds, -1 if empty
    """

    def __init__(self, config: MemoryConfig) -> None:
        self.config = config
        self.keys: Tensor | None = None
        self.values: Tensor | None = None
        self.valid = torch.zeros(0, config.capacity, dtype=torch.bool)
        self.frame_index = torch.full((config.capacity,), -1, dtype=torch.long)
        self._pinned_writes = 0
        self._recent_writes = 0
        self._last_write = -1

    @property
    def num_objects(self) -> int:
        return self.valid.shape[0]

    @property
    def is_empty(self) -> bool:
        return bool((self.frame_index < 0).all())

    @property
    def nbytes(self) -> int:
        """Bytes held by the bank's tensors (constant once allocated for a fixed object count)."""
        tensors = (self.keys, self.values, self.valid, self.frame_index)
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)

    def wants(self, frame_index: int) -> bool:
        """Whether an unannotated frame should be written (the ring's write schedule)."""
        if self.config.recent == 0 or self._last_write < 0:
            return False
        return frame_index - self._last_write >= self.config.write_every

    def add_objects(self, count: int) -> None:
        """Append ``count`` objects with no valid slot (their values start at zero)."""
        if count <= 0:
            return
        self.valid = torch.cat(
            [self.valid, torch.zeros(count, self.config.capacity, dtype=torch.bool)]
        )
        if self.values is not None:
            b, _, cv, s, h, w = self.values.shape
            pad = self.values.new_zeros(b, count, cv, s, h, w)
            self.values = torch.cat([self.values, pad], dim=1)

    def remove_objects(self, indices: list[int]) -> None:
        """Forget the objects at these positions; the others keep their order."""
        keep = torch.tensor([i for i in range(self.num_objects) if i not in set(indices)])
        keep = keep.long()
        self.valid = self.valid[keep]
        if self.values is not None:
            self.values = self.values.index_select(1, keep.to(self.values.device))

    def write(self, frame_index: int, key: Tensor, values: Tensor, pinned: bool) -> None:
        """Store one frame's key and every object's value.

        Shapes: key (B, Ck, h, w); values (B, K, Cv, h, w) with K == ``num_objects``.
        ``pinned`` frames go to the pinned slots (oldest pinned frame replaced when full);
        other frames go to the ring. With ``recent == 0`` unpinned writes are dropped.
        """
        if values.shape[1] != self.num_objects:
            raise ValueError(f"values for {values.shape[1]} objects, bank has {self.num_objects}")
        if pinned:
            slot = self._pinned_writes % self.config.pinned
            self._pinned_writes += 1
        elif self.config.recent > 0:
            slot = self.config.pinned + self._recent_writes % self.config.recent
            self._recent_writes += 1
        else:
            return
        if self.keys is None or self.values is None:
            self._allocate(key, values)
        assert self.keys is not None and self.values is not None
        index = torch.tensor([slot], device=key.device)
        if torch.is_grad_enabled():
            self.keys = self.keys.index_copy(2, index, key.unsqueeze(2).to(self.keys.dtype))
            self.values = self.values.index_copy(
                3, index, values.unsqueeze(3).to(self.values.dtype)
            )
        else:
            self.keys[:, :, slot] = key
            self.values[:, :, :, slot] = values
        self.valid[:, slot] = True
        self.frame_index[slot] = frame_index
        self._last_write = frame_index

    def _allocate(self, key: Tensor, values: Tensor) -> None:
        b, ck, h, w = key.shape
        cv = values.shape[2]
        s = self.config.capacity
        self.keys = key.new_zeros(b, ck, s, h, w)
        self.values = values.new_zeros(b, self.num_objects, cv, s, h, w)

    def read(self, query_key: Tensor) -> Tensor:
        """Read every object's memory for a query frame.

        Objects that share a validity pattern (usually all of them) are read together; the
        affinity differs only in which slots it may attend to.

        Shapes: query_key (B, Ck, h, w); returns (B, K, Cv, h, w) float32.
        """
        if self.keys is None or self.values is None:
            raise RuntimeError("memory is empty: write an annotated frame first")
        b = query_key.shape[0]
        device = query_key.device
        patterns, group = torch.unique(self.valid, dim=0, return_inverse=True)
        if len(patterns) == 1:
            valid = patterns.to(device).expand(b, -1)
            return memory_read(query_key, self.keys, self.values, valid)
        out = query_key.new_zeros(b, self.num_objects, self.values.shape[2], *query_key.shape[-2:])
        out = out.float()
        for g, pattern in enumerate(patterns):
            members = (group == g).nonzero().flatten().to(device)
            valid = pattern.to(device)[None].expand(b, -1)
            values = self.values.index_select(1, members)
            out[:, members] = memory_read(query_key, self.keys, values, valid)
        return out
