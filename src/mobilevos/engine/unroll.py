"""Training unrolls: a clip run through an engine exactly as streaming inference runs it.

Each object's mask is given on the frame it enters (frame 0 in training clips) and that frame
is written to a pinned slot; every later frame is segmented from memory and then, where the
bank's policy says so, written with its predicted probabilities. The verbs,
the readout and the write policy are those of :class:`~mobilevos.predictor.VOSPredictor`; the
test suite checks that both give the same probabilities.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from mobilevos.config import MemoryConfig
from mobilevos.engine.base import FrameEngine, segment_memory
from mobilevos.engine.torch_engine import TorchEngine
from mobilevos.given import impose_masks
from mobilevos.memory import MemoryBank
from mobilevos.model.encoders import QueryFeatures
from mobilevos.model.network import MobileVOS, Segmentation


class ClipOutput(NamedTuple):
    """Predictions for frames 1..T-1 of a clip.

    Shapes: logits (B, T-1, K+1, H, W); hidden (B, T-1, K, D4, H/4, W/4) or None.
    """

    logits: Tensor
    hidden: Tensor | None


def unroll_clip(
    engine: FrameEngine,
    frames: Tensor,
    given_masks: Tensor,
    present: Tensor | None = None,
    memory: MemoryConfig | None = None,
    entry: list[int] | None = None,
) -> ClipOutput:
    """Segment frames 1..T-1 of a clip from each object's mask on the frame it enters.

    Objects enter on frame 0 unless ``entry`` says otherwise (non-decreasing: objects are
    tracked in order of entry, as a streaming session adds them). On an entry frame the new
    objects' masks are imposed on the prediction (:func:`~mobilevos.given.impose_masks`) and
    the frame is written to a pinned slot; the output there holds the imposed probabilities
    (as logits), and objects not entered yet have probability 0.

    Shapes:
        frames: (B, T, 3, H, W) normalised
        given_masks: (B, K, H, W) each object's mask in [0, 1] on its entry frame
        present: (B, K) bool, False for padding objects
        memory: a memory policy other than the engine's (e.g. a teacher's longer memory)
        entry: K frame indices (default: all 0)
    """
    b, t = frames.shape[:2]
    k = given_masks.shape[1]
    entry = [0] * k if entry is None else list(entry)
    if len(entry) != k or entry != sorted(entry) or not 0 <= entry[0] <= entry[-1] < t:
        raise ValueError(f"entry frames {entry} must be {k} non-decreasing frames of the clip")
    if present is not None:
        given_masks = given_masks * present[:, :, None, None].to(given_masks.dtype)
    queries = engine.encode_query(frames.flatten(0, 1))
    queries = QueryFeatures(*(x.view(b, t, *x.shape[1:]) for x in queries))
    bank = MemoryBank(memory or engine.memory)
    logits, hidden = [], []
    for i in range(t):
        query = QueryFeatures(*(x[:, i] for x in queries))
        tracked, entering = sum(e < i for e in entry), sum(e == i for e in entry)
        seg = _segment_tracked(engine, query, bank, present, tracked, frames.shape[-2:])
        prob = None
        if entering:
            channels = list(range(tracked + 1, tracked + entering + 1))
            masks = given_masks[:, : tracked + entering]
            onehot = torch.cat([1 - masks.sum(dim=1, keepdim=True).clamp(max=1), masks], dim=1)
            prob = impose_masks(seg.probabilities, onehot, channels, torch.ones_like(masks[:, 0]))
            bank.add_objects(entering)
        elif i > 0:
            prob = seg.probabilities
        if i > 0:
            logits.append(_all_objects(seg.logits if not entering else _log(prob), k))
            hidden.append(seg.hidden if not entering else None)
        slot = bank.slot_for(i, annotated=entering > 0)
        if slot is not None and i < t - 1 and prob is not None:  # the last frame is never read
            bank.write(slot, i, query.key, engine.encode_value(frames[:, i], query, prob[:, 1:]))
    has_hidden = all(h is not None and h.shape[1] == k for h in hidden)
    return ClipOutput(
        torch.stack(logits, dim=1), torch.stack(hidden, dim=1) if has_hidden else None
    )


def _segment_tracked(
    engine: FrameEngine,
    query: QueryFeatures,
    bank: MemoryBank,
    present: Tensor | None,
    tracked: int,
    size: torch.Size,
) -> Segmentation:
    """The engine's segmentation of the ``tracked`` objects (background only if none)."""
    if tracked == 0:
        b = query.key.shape[0]
        logits = query.key.new_full((b, 1, *size), 0.0, dtype=torch.float32)
        return Segmentation(logits, None)
    return segment_memory(engine, query, bank, None if present is None else present[:, :tracked])


def _log(prob: Tensor) -> Tensor:
    """Probabilities as logits whose softmax gives them back (zeros stay ~1e-12)."""
    return torch.log(prob.clamp(min=1e-12))


def _all_objects(logits: Tensor, k: int) -> Tensor:
    """Logits over background + the first K' objects, extended to all K with probability ~0."""
    missing = k + 1 - logits.shape[1]
    if missing == 0:
        return logits
    floor = logits.new_full((logits.shape[0], missing, *logits.shape[2:]), -1e4)
    return torch.cat([logits, floor], dim=1)


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
        given_masks: Tensor,
        present: Tensor | None = None,
        memory: MemoryConfig | None = None,
    ) -> ClipOutput:
        return unroll_clip(TorchEngine(self.model), frames, given_masks, present, memory)
