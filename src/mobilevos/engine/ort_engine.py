"""The ONNX Runtime engine: runs the graphs written by ``mobilevos export`` (fp32 or int8).

Everything but the three verbs stays on the host, in the same code as the PyTorch backend:
the session (:class:`~mobilevos.predictor.VOSPredictor`), the memory bank and its policy. The
graphs have fixed shapes (``input_size``, ``max_objects`` and the memory capacity from
``manifest.json``); this engine pads a session's K objects to the exported count with absent
objects and drops them from the outputs, which gives exactly the K-object result.

On load, every graph's inputs and outputs are checked against the manifest, so graphs from
another export, or a manifest edited by hand, fail with a one-line error naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mobilevos.config import MemoryConfig, ModelConfig
from mobilevos.errors import ConfigError, ExportError
from mobilevos.manifest import GRAPH_OUTPUTS, VERBS, read_manifest
from mobilevos.model.encoders import QueryFeatures
from mobilevos.model.network import Segmentation

_ORT_TYPES = {"float32": "tensor(float)", "bool": "tensor(bool)"}


class OrtEngine:
    """A :class:`~mobilevos.engine.base.FrameEngine` over exported ONNX graphs (CPU).

    Args:
        model_dir: a folder written by ``mobilevos export`` (``manifest.json`` + graphs).
        threads: ONNX Runtime intra-op threads (None: its default, one per physical core).
    """

    def __init__(self, model_dir: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.model_dir = Path(model_dir)
        self.manifest = read_manifest(self.model_dir)
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        # Idle ORT threads otherwise spin after each run and starve the host-side work between
        # verbs (resizing, the memory bank): on 2 cores, post-processing took 19 ms, not 0.9.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions: dict[str, Any] = {}
        for verb in VERBS:
            spec = self.manifest["graphs"][verb]
            path = self.model_dir / spec["file"]
            if not path.is_file():
                raise ExportError(f"{path}: graph file missing")
            try:
                session = ort.InferenceSession(
                    str(path), options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own exception types
                first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
                raise ExportError(f"{path}: not a loadable ONNX graph ({first})") from None
            _check_signature(path, session, spec)
            self.sessions[verb] = session
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
        # When a dict, every graph's feeds are appended to it by verb (int8 calibration).
        self.feed_log: dict[str, list[dict[str, np.ndarray]]] | None = None

    def check_memory(self, memory: MemoryConfig) -> None:
        if memory.capacity != self.memory.capacity:
            raise ConfigError(
                f"{self.model_dir}: graphs were exported for {self.memory.capacity} memory "
                f"slots, not {memory.capacity}; export again with that memory"
            )

    def encode_query(self, image: Tensor) -> QueryFeatures:
        outs = self._run("encode_query", image=image)
        return QueryFeatures(*outs)

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
                f"{self.model_dir}: {x.shape[dim]} objects, graphs take at most {self.max_objects}"
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
        outs = self.sessions[verb].run(list(GRAPH_OUTPUTS[verb]), feeds)
        return [torch.from_numpy(o) for o in outs]


def _to_numpy(x: Tensor) -> np.ndarray:
    """An ONNX Runtime feed: float32 (or bool), contiguous, on the host."""
    x = x.detach()
    if x.dtype not in (torch.float32, torch.bool):
        x = x.float()
    return x.cpu().contiguous().numpy()


def _check_signature(path: Path, session: Any, spec: dict[str, Any]) -> None:
    """The graph's inputs and outputs must be the manifest's, name for name, shape for shape."""
    for kind, actual in (("input", session.get_inputs()), ("output", session.get_outputs())):
        expected = spec[f"{kind}s"]
        names = [a.name for a in actual]
        if names != [e["name"] for e in expected]:
            raise ExportError(
                f"{path}: graph {kind}s {names} do not match the manifest's "
                f"{[e['name'] for e in expected]}"
            )
        for a, e in zip(actual, expected, strict=True):
            if list(a.shape) != e["shape"] or a.type != _ORT_TYPES.get(e["dtype"]):
                raise ExportError(
                    f"{path}: {kind} {a.name} is {a.type} {list(a.shape)} in the graph but "
                    f"{e['dtype']} {e['shape']} in the manifest"
                )
