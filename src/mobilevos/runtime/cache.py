"""The fast path by default: a PyTorch model run through ONNX Runtime, exported on first use.

Exported programs have fixed shapes (frame size, object count, memory slots), so a model
cannot be exported before a session has seen its first frame and its objects.
:class:`CachedExportEngine` takes the PyTorch model; a session announces each frame's network
size and object count before running it (``prepare``), and the engine then finds, or makes,
the export for them: a cache folder named after the weights' sha256, the size, the object
count and the memory's capacity (:func:`open_cached_export`), verified against PyTorch as
``mobilevos export`` verifies. Every verb runs the export, the first frame's included. The
folder outlives the process: the next run with the same model, size and object count loads it
in a second. An object that enters later needs the export for the new count (cached as
well).

ONNX Runtime fp32, not int8 and not ExecuTorch, because it is the fastest backend here that
gives PyTorch's masks (``mobilevos bench``, 2 threads, 480x854, shipped lite: ONNX Runtime
fp32 173 ms a frame, ExecuTorch fp32 201, PyTorch 326; docs/speed.md). int8 is faster still
but changes the masks, so it stays an explicit choice (``mobilevos export --int8``).

The cache is never a new way to fail. Each of these says so in one line on stderr and goes on:

* a cache folder that cannot be created or written (``XDG_CACHE_HOME`` pointing to a missing or
  read-only place): the exports go to a temporary folder for this process (:func:`usable`);
* an entry that cannot be loaded (a truncated program, a damaged manifest): it is exported
  again in its place;
* an export that fails (a model the exporter cannot trace, programs that fail verification):
  the engine keeps running PyTorch.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from mobilevos.config import MemoryConfig
from mobilevos.engine import TorchEngine
from mobilevos.errors import ExportError, MobileVOSError
from mobilevos.formats.base import ExportedEngine, open_exported
from mobilevos.formats.export import export_model
from mobilevos.formats.graphs import export_digest
from mobilevos.formats.manifest import MANIFEST
from mobilevos.model.encoders import QueryFeatures
from mobilevos.model.network import STRIDE, MobileVOS, Segmentation

CACHE_FORMAT = "onnx"
"""The format of the cached exports (see the module doc)."""


def user_cache(name: str) -> Path:
    """``$XDG_CACHE_HOME/mobilevos/<name>`` (default ``~/.cache/mobilevos/<name>``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mobilevos" / name


def usable(folder: Path) -> Path:
    """``folder``, created, if this process can write into it; else a new temporary folder
    (removed when the process exits), after one line on stderr that says why."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
        return folder
    except OSError as exc:
        reason = exc.strerror or str(exc)
    temporary = Path(tempfile.mkdtemp(prefix="mobilevos-cache-"))
    atexit.register(shutil.rmtree, temporary, ignore_errors=True)
    _say(
        f"cannot write the cache folder {folder} ({reason}): using {temporary} for this run "
        "(set XDG_CACHE_HOME to a writable folder to keep exports between runs)"
    )
    return temporary


def open_cached_export(
    model: MobileVOS,
    cache: Path,
    size: tuple[int, int],
    max_objects: int,
    memory: MemoryConfig | None = None,
    digest: str | None = None,
    threads: int | None = None,
) -> ExportedEngine:
    """The engine of ``model``'s export for ``size`` and ``max_objects`` under ``cache``:
    exported and verified against PyTorch on first use, saying so on stderr, loaded from
    there afterwards, and exported again if the entry there cannot be loaded.

    The folder is named after what the programs are made from (``digest``, by default
    :func:`~mobilevos.formats.graphs.export_digest`: the weights, the config and the graphs'
    version), the size, the object count and the memory's capacity (``memory``, by default the
    model's), so new weights, code or shapes get their own export. Raises :class:`ExportError`
    when the export fails, :class:`OSError` when ``cache`` cannot be written.
    """
    memory = memory or model.config.memory
    digest = digest or export_digest(model)
    folder = cache / f"{digest}-{size[0]}x{size[1]}-k{max_objects}-m{memory.capacity}"
    with _locked(cache):  # processes of one torchrun share the cache: one exports, all wait
        if (folder / MANIFEST).is_file():
            try:
                return open_exported(folder, threads=threads)
            except MobileVOSError as exc:  # a damaged manifest or program
                _say(f"the cached export cannot be loaded ({exc}); exporting it again")
                shutil.rmtree(folder)
        _export(model, folder, size, max_objects, memory)
        return open_exported(folder, threads=threads)


def cached_export(model: MobileVOS, cache: Path, size: tuple[int, int], max_objects: int) -> Path:
    """The folder of :func:`open_cached_export`'s export, checked to load (the web page
    serves it)."""
    return open_cached_export(model, cache, size, max_objects).model_dir


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (created if missing) where the OS has ``flock``."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _export(
    model: MobileVOS, folder: Path, size: tuple[int, int], max_objects: int, memory: MemoryConfig
) -> None:
    _say(
        f"exporting {model.config.name} to ONNX for {size[0]}x{size[1]} frames and "
        f"{max_objects} object{'s' if max_objects > 1 else ''} into {folder} (once for these "
        "weights, size and object count)..."
    )
    start = time.perf_counter()
    manifest = export_model(  # atomic
        model, folder, size, max_objects, format=CACHE_FORMAT, memory=memory
    )
    _say(
        f"exported and verified in {time.perf_counter() - start:.0f} s (mean mask IoU "
        f"against PyTorch {manifest['verification']['mean_iou']:.4f})"
    )


class CachedExportEngine:
    """A :class:`~mobilevos.engine.base.FrameEngine` that runs ``model`` under ONNX Runtime
    through exports cached by weights, size and object count (see the module doc); CPU only.

    Args:
        model: the network (PyTorch, on the CPU).
        cache: the exports' folder (default: :func:`user_cache` ``("exports")``; where it
            cannot be written, a temporary folder).
        threads: ONNX Runtime intra-op threads (None: its default).
    """

    max_objects: int | None = None
    input_size: tuple[int, int] | None = None

    def __init__(
        self, model: MobileVOS, cache: Path | None = None, threads: int | None = None
    ) -> None:
        self.model = model.eval().cpu()
        self.torch = TorchEngine(self.model)
        self.device = torch.device("cpu")
        self.cache = cache if cache is not None else user_cache("exports")
        self._cache_checked = False
        self.threads = threads
        self.digest = export_digest(self.model)
        self.export_memory = self.model.config.memory
        # Loaded exports by (height, width, objects, memory slots); the key the session uses.
        self.engines: dict[tuple[int, int, int, int], ExportedEngine] = {}
        self.failed: str | None = None
        self._current_key: tuple[int, int, int, int] | None = None

    @property
    def memory(self) -> MemoryConfig:
        return self.model.config.memory

    @property
    def backend(self) -> str:
        """What runs the verbs now: ``onnx``, or ``torch`` (before the first export, or after
        one failed)."""
        return CACHE_FORMAT if self._current is not None else "torch"

    @property
    def _current(self) -> ExportedEngine | None:
        """The export the session's last frame was prepared for (None: none yet)."""
        return None if self._current_key is None else self.engines[self._current_key]

    def check_memory(self, memory: MemoryConfig) -> None:
        """Any capacity works: exports are made for the session's memory."""
        self.export_memory = memory

    def prepare(self, size: tuple[int, int], objects: int) -> None:
        """Make (or find) the export for ``size`` and ``objects``: every verb of the frame runs
        it, the first frame's query included, so a session's masks never depend on which
        sessions the process ran before."""
        self._engine(size, max(objects, 1))

    def encode_query(self, image: Tensor) -> QueryFeatures:
        engine = self._current
        if engine is None or engine.input_size != tuple(image.shape[-2:]):
            engine = self.torch  # a caller that did not prepare: nothing exported yet
        return engine.encode_query(image)

    def encode_value(self, image: Tensor, query: QueryFeatures, masks: Tensor) -> Tensor:
        engine = self._for(tuple(image.shape[-2:]), masks.shape[1])
        return engine.encode_value(image, query, masks)

    def segment(
        self,
        query: QueryFeatures,
        keys: Tensor,
        values: Tensor,
        valid: Tensor,
        present: Tensor | None = None,
    ) -> Segmentation:
        size = (query.key.shape[-2] * STRIDE, query.key.shape[-1] * STRIDE)
        engine = self._for(size, values.shape[1])
        return engine.segment(query, keys, values, valid, present)

    def _for(self, size: tuple[int, int], objects: int) -> ExportedEngine | TorchEngine:
        """The prepared export if it takes ``size`` and ``objects`` (absent objects are padded),
        else the one made for them."""
        current = self._current
        if current is not None and current.input_size == size and current.max_objects >= objects:
            return current
        return self._engine(size, objects)

    def _engine(self, size: tuple[int, int], objects: int) -> ExportedEngine | TorchEngine:
        """The exported engine for ``size`` and ``objects`` (exported or loaded on first use),
        or PyTorch once an export has failed."""
        if self.failed is not None:
            return self.torch
        key = (*size, objects, self.export_memory.capacity)
        if key not in self.engines:
            if not self._cache_checked:
                self.cache, self._cache_checked = usable(self.cache), True
            try:
                self.engines[key] = open_cached_export(
                    self.model, self.cache, size, objects, self.export_memory, self.digest,
                    self.threads,
                )  # fmt: skip
            except (ExportError, OSError) as exc:
                self.failed = str(exc)
                _say(f"running PyTorch instead: {exc}")
                self._current_key = None
                return self.torch
        self._current_key = key
        return self.engines[key]
