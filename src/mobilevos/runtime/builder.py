"""The one place that builds what runs a session's frames.

:func:`open_engine` takes a model or an exported folder and a backend name and returns a
:class:`~mobilevos.engine.FrameEngine`; ``segment``, ``eval``, ``bench``, the demo and every
Python caller get their engines here, so the rules below hold everywhere:

* a model, backend ``auto``: on the CPU (without autocast) ONNX Runtime through an export
  cached by weights, size and object count (:class:`~mobilevos.runtime.cache.
  CachedExportEngine`), elsewhere PyTorch;
* a model, backend ``torch``: PyTorch (:class:`~mobilevos.engine.TorchEngine`) on ``device``;
* an exported folder, backend ``auto`` or its own format: that format's engine, on the CPU.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mobilevos.device import resolve_device
from mobilevos.engine import FrameEngine, TorchEngine
from mobilevos.errors import ConfigError, InputError
from mobilevos.formats.base import ExportedEngine, open_exported
from mobilevos.formats.manifest import export_format, read_manifest
from mobilevos.formats.registry import FORMATS
from mobilevos.model.network import MobileVOS
from mobilevos.runtime.cache import CachedExportEngine

BACKENDS = ("auto", "torch", *FORMATS)
"""Backend names :func:`open_engine` takes: ``auto``, ``torch`` and every format's."""


def open_engine(
    source: MobileVOS | str | Path,
    backend: str = "auto",
    *,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    autocast: bool = False,
    channels_last: bool | None = None,
    cache: Path | None = None,
) -> FrameEngine:
    """What runs the frames of ``source`` (a model, or a folder written by ``mobilevos
    export``) under ``backend`` (one of :data:`BACKENDS`; see the module doc).

    Args:
        device: where PyTorch runs (exported programs run on the CPU).
        threads: the exported runtime's intra-op threads (None: its default).
        autocast: PyTorch under fp16 autocast (CUDA only; ``auto`` then runs PyTorch).
        channels_last: PyTorch's weight layout (None: channels-last on the CPU).
        cache: the export cache of ``auto`` on the CPU (default: the user's cache folder).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; use {', '.join(BACKENDS)}")
    if isinstance(source, MobileVOS):
        return _model_engine(source, backend, device, threads, autocast, channels_last, cache)
    return _folder_engine(Path(source), backend, device, threads)


def _model_engine(
    model: MobileVOS,
    backend: str,
    device: str | torch.device,
    threads: int | None,
    autocast: bool,
    channels_last: bool | None,
    cache: Path | None,
) -> FrameEngine:
    if backend not in ("auto", "torch"):
        raise ConfigError(
            f"--backend {backend} needs --model-dir DIR (written by `mobilevos export`)"
        )
    if backend == "auto" and resolve_device(device).type == "cpu" and not autocast:
        return CachedExportEngine(model, cache=cache, threads=threads)
    return TorchEngine.for_inference(model, device, autocast=autocast, channels_last=channels_last)


def _folder_engine(
    folder: Path, backend: str, device: str | torch.device, threads: int | None
) -> FrameEngine:
    if backend == "torch":
        raise ConfigError("--model-dir is for the exported backends: drop --backend torch")
    if resolve_device(device).type != "cpu":
        raise ConfigError("exported programs run on the CPU: drop --device")
    found = export_format(read_manifest(folder)).name
    if backend not in ("auto", found):
        raise InputError(
            folder,
            f"holds {found} programs, not {backend}: use --backend {found} or export with "
            f"--format {backend}",
        )
    return open_exported(folder, threads=threads)


def runtime_name(engine: FrameEngine) -> str:
    """What runs ``engine``'s frames, in words (for summary lines)."""
    if isinstance(engine, CachedExportEngine):
        if engine.backend == "torch":
            return "PyTorch"
        return f"{FORMATS[engine.backend].runtime}, cached export"
    if isinstance(engine, ExportedEngine):
        return export_format(engine.manifest).runtime
    return "PyTorch"
