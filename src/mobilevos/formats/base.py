"""What every runtime format has in common: the format's interface, and the host side of its
engine.

A format (:data:`~mobilevos.formats.registry.FORMATS`) implements :class:`ProgramFormat`: it
writes one program per verb, quantizes them to int8 from recorded calibration feeds, and runs a
folder of them through an :class:`ExportedEngine` subclass.

Everything but the three verbs stays on the host, in the same code as the PyTorch backend:
the session (:class:`~mobilevos.predictor.VOSPredictor`), the memory bank and its policy. The
exported programs have fixed shapes (``input_size``, ``max_objects`` and the memory capacity
from ``manifest.json``); an engine pads a session's K objects to the exported count with absent
objects and drops them from the outputs, which gives exactly the K-object result.

A subclass loads one program per verb (checking its inputs and outputs against the manifest,
so programs from another export, or a manifest edited by hand, fail with a one-line error
naming the file) and runs it on named float32/bool arrays. :func:`open_exported` picks the
engine from the manifest's ``format``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from mobilevos.config import MemoryConfig, ModelConfig
from mobilevos.errors import ConfigError, ExportError
from mobilevos.formats.manifest import VERBS, export_format, read_manifest
from mobilevos.model.encoders import QueryFeatures
from mobilevos.model.network import Segmentation

Feeds = dict[str, list[dict[str, np.ndarray]]]
"""Recorded calls of a session, by verb: each call's inputs, named as in the manifest."""


class ProgramFormat(Protocol):
    """What a format's module implements (its ``FORMAT`` class), with the format's export
    settings as constructor arguments (ONNX: the opset; both: the int8 calibration method)."""

    engine: ClassVar[type[ExportedEngine]]
    """Runs a folder of the format's programs."""

    @staticmethod
    def require() -> None:
        """Raise a one-line :class:`~mobilevos.errors.InputError` naming what to install when
        the format's runtime is missing."""
        ...

    def write(self, verb: str, module: nn.Module, inputs: dict[str, Tensor], path: Path) -> None:
        """Write ``verb``'s ``module`` as one program at the shapes of ``inputs`` (named, in
        call order)."""
        ...

    def write_int8(
        self, modules: dict[str, nn.Module], fp32_dir: Path, out_dir: Path, feeds: Feeds
    ) -> dict[str, Any]:
        """Write int8 programs of every verb into ``out_dir``, calibrated on ``feeds`` (the
        calls recorded over the fp32 programs in ``fp32_dir``); returns what the manifest
        records of it."""
        ...

    def facts(self) -> dict[str, Any]:
        """What the manifest records of the format's tools (the ONNX opset, the ExecuTorch
        version and delegate)."""
        ...


class ExportedEngine:
    """A :class:`~mobilevos.engine.base.FrameEngine` over a folder of exported programs (CPU).

    Subclasses implement :meth:`_load` (one verb's program, checked against its manifest entry)
    and :meth:`_call` (run it on feeds named as the manifest's inputs; outputs in order).

    Args:
        model_dir: a folder written by ``mobilevos export`` (``manifest.json`` + programs).
        threads: the runtime's intra-op threads (None: its default, one per core).
    """

    def __init__(self, model_dir: str | Path, threads: int | None = None) -> None:
        self.threads = threads
        self.model_dir = Path(model_dir)
        self.manifest = read_manifest(self.model_dir)
        for verb in VERBS:
            spec = self.manifest["graphs"][verb]
            path = self.model_dir / spec["file"]
            if not path.is_file():
                raise ExportError(f"{path}: program file missing")
            self._load(verb, path, spec)
        memory = self.manifest["memory"]
        self.memory = MemoryConfig(memory["pinned"], memory["recent"], memory["write_every"])
        self.max_objects: int | None = int(self.manifest["max_objects"])
        self.input_size: tuple[int, int] | None = tuple(self.manifest["input_size"])
        self.config = ModelConfig.from_dict(self.manifest["model_config"])
        self.device = torch.device("cpu")
        self.precision = self.manifest.get("precision", "fp32")
        # What encode_value takes of the frame besides the masks, as its manifest inputs say:
        # the image and f16 for a value trunk, f4, f8 and f16 for the mask branch.
        inputs = self.manifest["graphs"]["encode_value"]["inputs"]
        self.value_reads = [spec["name"] for spec in inputs if spec["name"] != "masks"]
        # When a dict, every program's feeds are appended to it by verb (int8 calibration).
        self.feed_log: dict[str, list[dict[str, np.ndarray]]] | None = None

    def _load(self, verb: str, path: Path, spec: dict[str, Any]) -> None:
        raise NotImplementedError

    def _call(self, verb: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray | Tensor]:
        raise NotImplementedError

    def check_memory(self, memory: MemoryConfig) -> None:
        if memory.capacity != self.memory.capacity:
            raise ConfigError(
                f"{self.model_dir}: programs were exported for {self.memory.capacity} memory "
                f"slots, not {memory.capacity}; export again with that memory"
            )

    def prepare(self, size: tuple[int, int], objects: int) -> None:
        """Nothing to prepare: the session fits frames into ``input_size`` and checks the
        object count against ``max_objects``."""

    def encode_query(self, image: Tensor) -> QueryFeatures:
        return QueryFeatures(*self._run("encode_query", image=image))

    def encode_value(self, image: Tensor, query: QueryFeatures, masks: Tensor) -> Tensor:
        k = masks.shape[1]
        features = {"image": image, **query._asdict()}
        feeds = {name: features[name] for name in self.value_reads}
        (values,) = self._run("encode_value", **feeds, masks=self._pad(masks, 1))
        return values[:, :k]

    def segment(
        self,
        query: QueryFeatures,
        keys: Tensor,
        values: Tensor,
        valid: Tensor,
        present: Tensor | None = None,
    ) -> Segmentation:
        k = values.shape[1]
        if present is None:
            present = torch.ones(values.shape[0], k, dtype=torch.bool)
        (logits,) = self._run(
            "segment",
            key=query.key,
            value=query.value,
            f8=query.f8,
            f4=query.f4,
            memory_keys=keys,
            memory_values=self._pad(values, 1),
            valid=self._pad(valid, 1),
            present=self._pad(present, 1),
        )
        return Segmentation(logits[:, : k + 1], None)

    def _pad(self, x: Tensor, dim: int) -> Tensor:
        """Pad the object dimension with zeros (False) up to the exported object count."""
        assert self.max_objects is not None
        missing = self.max_objects - x.shape[dim]
        if missing < 0:
            raise ConfigError(
                f"{self.model_dir}: {x.shape[dim]} objects, programs take at most "
                f"{self.max_objects}"
            )
        if missing == 0:
            return x
        shape = list(x.shape)
        shape[dim] = missing
        return torch.cat([x, x.new_zeros(shape)], dim=dim)

    def _run(self, verb: str, **inputs: Tensor) -> list[Tensor]:
        feeds = {name: _to_numpy(x) for name, x in inputs.items()}
        if self.feed_log is not None:  # copies: the bank's tensors change in place later
            self.feed_log[verb].append({name: x.copy() for name, x in feeds.items()})
        outs = self._call(verb, feeds)
        return [o if isinstance(o, Tensor) else torch.from_numpy(o) for o in outs]


def _to_numpy(x: Tensor) -> np.ndarray:
    """A feed: float32 (masks such as ``valid`` as 0 and 1), contiguous, on the host."""
    x = x.detach()
    if x.dtype != torch.float32:
        x = x.float()
    return x.cpu().contiguous().numpy()


def check_signature(
    path: Path, spec: dict[str, Any], kind: str, actual: list[tuple[str | None, list, str]]
) -> None:
    """A program's inputs or outputs (``kind``) must be the manifest's, in order, shape for
    shape and dtype for dtype; ``actual`` holds (name or None where the format keeps no names,
    shape, manifest dtype name)."""
    expected = spec[f"{kind}s"]
    names = [e["name"] for e in expected]
    if len(actual) != len(expected) or any(
        a[0] is not None and a[0] != n for a, n in zip(actual, names, strict=False)
    ):
        found = [a[0] or "?" for a in actual]
        raise ExportError(f"{path}: program {kind}s {found} do not match the manifest's {names}")
    for (name, shape, dtype), e in zip(actual, expected, strict=True):
        if list(shape) != e["shape"] or dtype != e["dtype"]:
            raise ExportError(
                f"{path}: {kind} {name or e['name']} is {dtype} {list(shape)} in the program "
                f"but {e['dtype']} {e['shape']} in the manifest"
            )


def check_calibration(format: str, method: str, methods: tuple[str, ...]) -> None:
    """A one-line :class:`ConfigError` when ``method`` is not one of the format's int8
    calibration ``methods``."""
    if method not in methods:
        raise ConfigError(
            f"{format} int8 has no calibration method {method!r} (one of: {', '.join(methods)})"
        )


def unloadable(path: Path, kind: str, exc: Exception) -> ExportError:
    """The one-line error for a program file a runtime cannot load: ``path``, what it should
    have been (``kind``) and the first line of the runtime's message."""
    text = str(exc).strip()
    first = text.splitlines()[0][:160] if text else ""
    return ExportError(f"{path}: not a loadable {kind} ({first})")


def open_exported(model_dir: str | Path, threads: int | None = None) -> ExportedEngine:
    """The engine of an exported folder, by its manifest's format."""
    engine = export_format(read_manifest(model_dir)).load().engine
    return engine(model_dir, threads=threads)
