"""Training unrolls: a clip run through an engine exactly as streaming inference runs it.

Frame 0 is written to memory with its given masks; every later frame is segmented from memory
and then, where the bank's policy says so, written with its predicted probabilities. The verbs,
the readout and the write policy are those of :class:`~mobilevos.predictor.VOSPredictor`; the
test suite checks that both give the same probabilities.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from mobilevos.config import MemoryConfig
from mobilevos.engine.base import FrameEngine
from mobilevos.engine.torch_engine import TorchEngine
from mobilevos.memory import MemoryBank
from mobilevos.model.encoders import QueryFeatures
from mobilevos.model.network import MobileVOS


class ClipOutput(NamedTuple):
    """Predictions for frames 1..T-1 of a clip.

    Shapes: logits (B, T-1, K+1, H, W); hidden (B, T-1, K, D4, H/4, W/4) or None.
    """

    logits: Tensor
    hidden: Tensor | None


def unroll_clip(
    engine: FrameEngine,
    frames: Tensor,
    first_masks: Tensor,
    present: Tensor | None = None,
    memory: MemoryConfig | None = None,
) -> ClipOutput:
    """Segment frames 1..T-1 of a clip from the masks of frame 0.

    Shapes:
        frames: (B, T, 3, H, W) normalised
        first_masks: (B, K, H, W) masks of frame 0 in [0, 1]
        present: (B, K) bool, False for padding objects
        memory: a memory policy other than the engine's (e.g. a teacher's longer memory)
    """
    b, t = frames.shape[:2]
    if present is not None:
        first_masks = first_masks * present[:, :, None, None].to(first_masks.dtype)
    queries = engine.encode_query(frames.flatten(0, 1))
    queries = QueryFeatures(*(x.view(b, t, *x.shape[1:]) for x in queries))
    bank = MemoryBank(memory or engine.memory)
    bank.add_objects(first_masks.shape[1])
    query = QueryFeatures(*(x[:, 0] for x in queries))
    bank.write(
        bank.slot_for(0, annotated=True),
        0,
        query.key,
        engine.encode_value(frames[:, 0], query, first_masks),
    )
    logits, hidden = [], []
    for i in range(1, t):
        query = QueryFeatures(*(x[:, i] for x in queries))
        valid = bank.batch_valid(b, frames.device)
        seg = engine.segment(query, bank.keys, bank.values, valid, present)
        logits.append(seg.logits)
        hidden.append(seg.hidden)
        slot = bank.slot_for(i, annotated=False)
        if i < t - 1 and slot is not None:  # the last frame's value would never be read
            masks = seg.probabilities[:, 1:]
            bank.write(slot, i, query.key, engine.encode_value(frames[:, i], query, masks))
    has_hidden = all(h is not None for h in hidden)
    return ClipOutput(
        torch.stack(logits, dim=1), torch.stack(hidden, dim=1) if has_hidden else None
    )


class ClipModel(nn.Module):
    """A model whose ``forward`` is :func:`unroll_clip`, for optimisers and DistributedDataParallel.

    It holds no weights of its own (``model`` is its only submodule), so checkpoints are
    written from ``model`` directly.
    """

    def __init__(self, model: MobileVOS) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        frames: Tensor,
        first_masks: Tensor,
        present: Tensor | None = None,
        memory: MemoryConfig | None = None,
    ) -> ClipOutput:
        return unroll_clip(TorchEngine(self.model), frames, first_masks, present, memory)
