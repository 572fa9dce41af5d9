"""What a frame costs and what the machine offers: a model's parameters and FLOPs per network
stage, torch's matmul rate (the yardstick of the efficiency), resident memory, and the CPU and
software versions the timings depend on."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import torch
from torch.utils.flop_counter import FlopCounterMode

from mobilevos import __version__
from mobilevos.checkpoint import load_model, trained_presets
from mobilevos.config import get_preset
from mobilevos.device import synchronize
from mobilevos.engine import TorchEngine, segment_memory
from mobilevos.info import count_parameters
from mobilevos.memory import MemoryBank
from mobilevos.model.network import MobileVOS, build_model

FLOP_STAGES = ("encode_query", "segment", "encode_value")
"""The stages that run the network, whose FLOPs are counted."""


# ------------------------------------------------------------------------- models and FLOPs


class ModelFacts(NamedTuple):
    """What does not depend on the backend: parameters, write policy, FLOPs per object count.

    ``flops[K]`` maps each of :data:`FLOP_STAGES` and ``"frame"`` (their sum) to FLOPs.
    """

    params: int
    write_every: int
    flops: dict[int, dict[str, int]]


def new_model(name: str, seed: int) -> MobileVOS:
    """The preset with its shipped weights where it has them (int8 is calibrated, and masks
    compared between backends, on what users run), else with seeded random weights (the time
    of a frame does not depend on them)."""
    if name in trained_presets():
        return load_model(name).eval()
    torch.manual_seed(seed)
    return build_model(get_preset(name), pretrained=False).eval()


def model_facts(name: str, objects: tuple[int, ...], size: tuple[int, int]) -> ModelFacts:
    """Parameters and per-stage FLOPs of ``name`` at network input ``size``."""
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


# --------------------------------------------------------------------------- the machine


def matmul_flops_per_s(device: torch.device, size: int = 1024, repeats: int = 3) -> float:
    """torch's fp32 matmul rate on ``device`` right now (median of ``repeats``), in FLOP/s.

    The machine-speed yardstick: it runs on the same threads and libraries as the models.

    Shapes: a, b (size, size) float32.
    """
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    out = torch.mm(a, b)  # warm the kernel and its workspace
    seconds = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(seconds)


def peak_rss_mb() -> float:
    """Peak resident memory of the whole process so far (all configurations together), MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def current_rss_mb() -> float:
    """Resident memory of the process now, MiB (the peak where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return peak_rss_mb()
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_model() -> str | None:
    """The CPU's name from /proc/cpuinfo (x86 "model name", ARM "Model"), else the platform's."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model") and value.strip():
                return value.strip()
    return platform.processor() or None


def versions() -> dict[str, str | None]:
    """Versions of what the timings depend on (onnxruntime: None when not installed)."""
    try:
        ort = importlib.metadata.version("onnxruntime")
    except importlib.metadata.PackageNotFoundError:
        ort = None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort,
        "mobilevos": __version__,
    }
