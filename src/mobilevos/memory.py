"""The finite memory bank: fixed-capacity key/value storage and the policy that fills it.

Layout: slots ``[0, pinned)`` hold annotated frames (frames where the user gave a mask), slots
``[pinned, pinned + recent)`` are a ring of the most recent written frames. A ``valid`` mask per
object and slot says which slots hold a frame *for that object* (an object added on frame 30 has
no value in the frames written before it). The readout gives invalid slots zero weight, so tensor
shapes stay the same from the second frame to the hundred-thousandth.

The write policy comes from :class:`~mobilevos.config.MemoryConfig` and is decided here only, by
:meth:`MemoryBank.slot_for`: training unrolls, the streaming predictor, every inference engine
and the benchmarks ask it whether (and where) a frame is written. The students' "first + latest"
memory and the teacher's "every 5th frame, long ring" memory are the same code with other
settings. The bank only stores; reading it is the engine's job (:mod:`mobilevos.model.readout`).

Writes are in place during inference and out of place when autograd is recording (training
unrolls backpropagate through values read from the bank, and an in-place overwrite would
invalidate tensors saved for backward).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mobilevos.config import MemoryConfig


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

    def slot_for(self, frame_index: int, annotated: bool) -> int | None:
        """The slot this frame goes to, or None if the policy does not write it.

        Annotated frames take the pinned slots in turn (the oldest pinned frame is replaced
        when they are full). Other frames enter the ring, oldest slot first, when at least
        ``write_every`` frames have passed since the last write; with ``recent == 0``, never.
        """
        if annotated:
            return self._pinned_writes % self.config.pinned
        due = self._last_write >= 0 and frame_index - self._last_write >= self.config.write_every
        if self.config.recent == 0 or not due:
            return None
        return self.config.pinned + self._recent_writes % self.config.recent

    def write(self, slot: int, frame_index: int, key: Tensor, values: Tensor) -> None:
        """Store one frame's key and every object's value in ``slot``.

        ``slot`` must be what :meth:`slot_for` answered for this frame (checked), so that the
        caller can skip encoding values for frames the policy does not keep.

        Shapes: key (B, Ck, h, w); values (B, K, Cv, h, w) with K == ``num_objects``.
        """
        annotated = slot < self.config.pinned
        if slot != self.slot_for(frame_index, annotated):
            raise ValueError(f"frame {frame_index} does not go to slot {slot} under {self.config}")
        if values.shape[1] != self.num_objects:
            raise ValueError(f"values for {values.shape[1]} objects, bank has {self.num_objects}")
        if self.keys is None or self.values is None:
            self._allocate(key, values)
        assert self.keys is not None and self.values is not None
        if torch.is_grad_enabled():
            index = torch.tensor([slot], device=key.device)
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
        if annotated:
            self._pinned_writes += 1
        else:
            self._recent_writes += 1

    def batch_valid(self, batch: int, device: torch.device | str) -> Tensor:
        """A copy of ``valid`` (later writes must not change what autograd saved), expanded for
        the readout. Shapes: returns (B, K, S) bool."""
        return self.valid.to(device, copy=True)[None].expand(batch, -1, -1)

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
        drop = set(indices)
        keep = torch.tensor([i for i in range(self.num_objects) if i not in drop], dtype=torch.long)
        self.valid = self.valid[keep]
        if self.values is not None:
            self.values = self.values.index_select(1, keep.to(self.values.device))

    def _allocate(self, key: Tensor, values: Tensor) -> None:
        b, ck, h, w = key.shape
        cv = values.shape[2]
        s = self.config.capacity
        self.keys = key.new_zeros(b, ck, s, h, w)
        self.values = values.new_zeros(b, self.num_objects, cv, s, h, w)
