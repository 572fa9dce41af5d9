"""The ExecuTorch engine: runs the ``.pte`` programs of ``mobilevos export --format executorch``.

The programs are lowered to the XNNPACK delegate, the CPU runtime phone apps embed; here they
run through ExecuTorch's Python bindings (``pip install '.[phone]'``). The host side is
:class:`~mobilevos.engine.exported.ExportedEngine`'s, shared with the ONNX Runtime engine.
A ``.pte`` keeps no input names, so its inputs are checked against the manifest by position,
shape and dtype.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mobilevos.engine.exported import ExportedEngine, check_signature, unloadable
from mobilevos.errors import InputError

PHONE_EXTRA = "pip install '.[phone]' (or: make phone)"
# ExecuTorch's scalar types (c10::ScalarType numbers) in a method's metadata, as the manifest
# spells them.
_DTYPES = {6: "float32", 11: "bool"}


def require_executorch() -> None:
    """Import ExecuTorch's runtime; a one-line :class:`InputError` naming the extra when it is
    not installed."""
    # torchao (imported with ExecuTorch) registers an Enum with torch's pytree, which logs a
    # deprecation note about it on every import: not ours to act on.
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    try:
        import executorch.runtime  # noqa: F401
    except ImportError:
        raise InputError("executorch", f"not installed: {PHONE_EXTRA}") from None


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send what native code writes to file descriptor 2 to /dev/null meanwhile."""
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def thread_count(threads: int | None = None) -> int:
    """Size ExecuTorch's thread pool to ``threads`` (None: leave it) and return its size. The
    pool is the process's, shared by every program it runs.

    The first call starts the pool, whose CPU probe writes five lines of ``cpuinfo_utils``
    notes to stderr on x86 (it looks for ARM registers); they are silenced here, so a command's
    output stays its own."""
    from executorch.extension.pybindings import portable_lib

    with _native_stderr_silenced():
        count = portable_lib._threadpool_get_thread_count()
    if threads is not None and count != threads:
        portable_lib._unsafe_reset_threadpool(threads)
        count = threads
    return count


class ExecuTorchEngine(ExportedEngine):
    """A :class:`~mobilevos.engine.base.FrameEngine` over exported ExecuTorch programs (CPU).

    Args:
        model_dir: a folder written by ``mobilevos export --format executorch``.
        threads: XNNPACK threads (None: ExecuTorch's default, one per core). The pool is the
            process's: the last engine built sets it for all.
    """

    def __init__(self, model_dir: str | Path, threads: int | None = None) -> None:
        require_executorch()
        from executorch.runtime import Runtime

        thread_count(threads)
        self._runtime = Runtime.get()
        self.methods: dict[str, Any] = {}
        self.input_names: dict[str, list[str]] = {}  # a program's inputs are positional
        super().__init__(model_dir)

    def _load(self, verb: str, path: Path, spec: dict[str, Any]) -> None:
        try:
            method = self._runtime.load_program(path).load_method("forward")
        except Exception as exc:  # the bindings raise RuntimeError and ValueError
            raise unloadable(path, "ExecuTorch program", exc) from None
        meta = method.metadata
        for kind in ("input", "output"):
            count = getattr(meta, f"num_{kind}s")()
            infos = [getattr(meta, f"{kind}_tensor_meta")(i) for i in range(count)]
            actual = [
                (None, list(i.sizes()), _DTYPES.get(i.dtype(), str(i.dtype()))) for i in infos
            ]
            check_signature(path, spec, kind, actual)
        self.methods[verb] = method
        self.input_names[verb] = [e["name"] for e in spec["inputs"]]

    def _call(self, verb: str, feeds: dict[str, np.ndarray]) -> list[Tensor]:
        inputs = [torch.from_numpy(feeds[name]) for name in self.input_names[verb]]
        return [out.clone() for out in self.methods[verb].execute(inputs)]
