"""What the machine offers and what a run depends on: torch's matmul rate (the yardstick of the
efficiency), resident memory, the CPU and the software versions; and the models the benchmark
builds.

What a frame costs (parameters, FLOPs) is counted in :mod:`mobilevos.costs`, which depends on
the model only.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

from mobilevos.checkpoint import load_model, trained_presets
from mobilevos.config import get_preset
from mobilevos.device import synchronize
from mobilevos.model.network import MobileVOS, build_model
from mobilevos.version import __version__

# ------------------------------------------------------------------------------ the models


def new_model(name: str, seed: int) -> MobileVOS:
    """The preset with its shipped weights where it has them (int8 is calibrated, and masks
    compared between backends, on what users run), else with seeded random weights (the time
    of a frame does not depend on them)."""
    if name in trained_presets():
        return load_model(name).eval()
    torch.manual_seed(seed)
    return build_model(get_preset(name), pretrained=False).eval()


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
