"""What a model costs: its parameters, and the FLOPs of a streaming frame per network stage.

Counting only: nothing here times anything or looks at the machine (``mobilevos bench`` does
that, in :mod:`mobilevos.bench.machine`). ``mobilevos info`` and ``mobilevos bench`` read their
parameter and FLOP columns from here.

FLOPs are counted with :class:`torch.utils.flop_counter.FlopCounterMode` on the PyTorch engine,
for a frame that is written to memory, per stage of :data:`FLOP_STAGES`. They depend on shapes
only, so :func:`preset_flops` counts them on the ``meta`` device, where nothing is computed.

This module sits low: it imports the model, its engine, the memory, the config and the device,
and nothing from ``info``, ``bench`` or the command line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch.utils.flop_counter import FlopCounterMode

from mobilevos.config import get_preset
from mobilevos.engine import TorchEngine, segment_memory
from mobilevos.memory import MemoryBank
from mobilevos.model.network import MobileVOS

FLOP_STAGES = ("encode_query", "segment", "encode_value")
"""The stages that run the network, whose FLOPs are counted."""


def count_parameters(module: torch.nn.Module) -> int:
    """The number of parameters of ``module`` (buffers such as batch-norm statistics are not
    parameters and are not counted)."""
    return sum(p.numel() for p in module.parameters())


class ModelFacts(NamedTuple):
    """What does not depend on the backend: parameters, write policy, FLOPs per object count.

    ``flops[K]`` maps each of :data:`FLOP_STAGES` and ``"frame"`` (their sum) to FLOPs.
    """

    params: int
    write_every: int
    flops: dict[int, dict[str, int]]


def model_facts(name: str, objects: tuple[int, ...], size: tuple[int, int]) -> ModelFacts:
    """Parameters and per-stage FLOPs of the preset ``name`` at network input ``size``."""
    config = get_preset(name)
    return ModelFacts(
        count_parameters(MobileVOS(config)),
        config.memory.write_every,
        preset_flops(name, objects, size),
    )


def preset_flops(
    name: str, objects: tuple[int, ...], size: tuple[int, int]
) -> dict[int, dict[str, int]]:
    """:func:`count_flops` of the preset for each object count, on the ``meta`` device: shapes
    only, nothing computed, so the counts are the same and take a fraction of a second."""
    with torch.device("meta"):
        model = MobileVOS(get_preset(name)).eval()
    return {k: count_flops(model, k, size, torch.device("meta")) for k in objects}


@torch.inference_mode()
def count_flops(
    model: MobileVOS, objects: int, size: tuple[int, int], device: torch.device
) -> dict[str, int]:
    """FLOPs of each network stage of a streaming frame that is written to memory.

    Frame 0 fills the bank, then frame 1 is counted: its query encoding, the readout of the
    full-capacity bank and the decoder (``segment``; shapes are fixed by the capacity, so this
    is every later frame's count), and the value encoding of its predicted masks.

    Shapes: image (1, 3, H, W) with (H, W) = ``size``; masks (1, K, H, W).
    """
    engine = TorchEngine(model)  # fp32 and contiguous: FLOPs do not depend on either
    image = torch.rand(1, 3, *size, device=device)
    masks = torch.rand(1, objects, *size, device=device)
    bank = MemoryBank(model.config.memory)
    bank.add_objects(objects)
    query = engine.encode_query(image)
    bank.write(bank.slot_for(0, True), 0, query.key, engine.encode_value(image, query, masks))
    flops: dict[str, int] = {}
    with _counting(flops, "encode_query"):
        query = engine.encode_query(image)
    with _counting(flops, "segment"):
        seg = segment_memory(engine, query, bank)
    with _counting(flops, "encode_value"):
        engine.encode_value(image, query, seg.probabilities[:, 1:])
    flops["frame"] = sum(flops[stage] for stage in FLOP_STAGES)
    return flops


@contextlib.contextmanager
def _counting(flops: dict[str, int], stage: str) -> Iterator[None]:
    with FlopCounterMode(display=False) as counter:
        yield
    flops[stage] = int(counter.get_total_flops())
