"""The seam between a video session and the network that runs its frames.

A :class:`FrameEngine` runs the three per-frame verbs of a memory network, each a stateless
function of tensors with shapes fixed by the frame size and object count:

    encode_query(image)                          once per frame, shared by all objects
    encode_value(image, query, masks)            the frame's value, to write into memory
    segment(query, keys, values, valid, present) memory readout + decoder + soft aggregation

Everything stateful (object ids, frame geometry, the memory bank and its write policy) belongs
to the caller: :class:`~mobilevos.predictor.VOSPredictor` when streaming, :func:`unroll_clip`
in training. Engines differ only in what runs the verbs: :class:`TorchEngine` (PyTorch, any
device, training included) and :class:`~mobilevos.formats.onnx.OrtEngine` (the exported
ONNX graphs under ONNX Runtime).

Shapes legend: B batch, K objects, S memory slots, Ck/Cv key/value channels, H×W network input
(multiples of 16, normalised), h×w = H/16×W/16. Tensors cross the seam as torch tensors on the
engine's device.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from mobilevos.config import MemoryConfig
from mobilevos.memory import MemoryBank
from mobilevos.model.encoders import QueryFeatures
from mobilevos.model.network import Segmentation


@runtime_checkable
class FrameEngine(Protocol):
    """What a session needs from a network (see the module docstring).

    Attributes:
        device: where the engine's tensors live.
        memory: the memory policy the network was trained (or exported) for.
        max_objects: objects one call can take (exported graphs have a fixed count), or None.
        input_size: the (H, W) every frame must have (exported graphs), or None for any.
    """

    device: torch.device
    memory: MemoryConfig
    max_objects: int | None
    input_size: tuple[int, int] | None

    def prepare(self, size: tuple[int, int], objects: int) -> None:
        """Called by a session before each frame's verbs with the network input size (H, W) and
        the number of objects the frame will hold. An engine whose programs are made for fixed
        shapes gets them ready here; the others have nothing to do."""
        ...

    def encode_query(self, image: Tensor) -> QueryFeatures:
        """Shapes: image (B, 3, H, W) normalised."""
        ...

    def encode_value(self, image: Tensor, query: QueryFeatures, masks: Tensor) -> Tensor:
        """Shapes: image (B, 3, H, W), masks (B, K, H, W) in [0, 1]; returns (B, K, Cv, h, w)."""
        ...

    def segment(
        self,
        query: QueryFeatures,
        keys: Tensor,
        values: Tensor,
        valid: Tensor,
        present: Tensor | None = None,
    ) -> Segmentation:
        """Read the memory and decode every object.

        Shapes: keys (B, Ck, S, h, w); values (B, K, Cv, S, h, w); valid (B, K, S) bool;
        present (B, K) bool, False for padding objects (None: all present).
        """
        ...

    def check_memory(self, memory: MemoryConfig) -> None:
        """Raise :class:`~mobilevos.errors.ConfigError` if the engine cannot hold ``memory``."""
        ...


def segment_memory(
    engine: FrameEngine, query: QueryFeatures, bank: MemoryBank, present: Tensor | None = None
) -> Segmentation:
    """``engine.segment`` on everything ``bank`` holds: its keys, values and validity."""
    valid = bank.batch_valid(query.key.shape[0], query.key.device)
    return engine.segment(query, bank.keys, bank.values, valid, present)
