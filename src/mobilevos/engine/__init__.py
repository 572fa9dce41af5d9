"""Engines: what runs a memory network's per-frame verbs (see :mod:`mobilevos.engine.base`)."""

from mobilevos.engine.base import FrameEngine, segment_memory
from mobilevos.engine.torch_engine import TorchEngine
from mobilevos.engine.unroll import ClipModel, ClipOutput, unroll_clip
from mobilevos.model.network import Segmentation

__all__ = [
    "ClipModel",
    "ClipOutput",
    "FrameEngine",
    "Segmentation",
    "TorchEngine",
    "segment_memory",
    "unroll_clip",
]
