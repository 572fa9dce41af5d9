"""The ONNX Runtime engine: runs the graphs written by ``mobilevos export`` (fp32 or int8).

The host side (padding objects to the exported count, the feeds, the manifest checks) is
:class:`~mobilevos.engine.exported.ExportedEngine`'s, shared with the ExecuTorch engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mobilevos.engine.exported import ExportedEngine, check_signature, unloadable
from mobilevos.manifest import GRAPH_OUTPUTS

# ONNX Runtime's type names, as the manifest spells them.
_DTYPES = {"tensor(float)": "float32", "tensor(bool)": "bool"}


class OrtEngine(ExportedEngine):
    """A :class:`~mobilevos.engine.base.FrameEngine` over exported ONNX graphs (CPU).

    Args:
        model_dir: a folder written by ``mobilevos export`` (``manifest.json`` + graphs).
        threads: ONNX Runtime intra-op threads (None: its default, one per physical core).
    """

    def __init__(self, model_dir: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        self._options = ort.SessionOptions()
        if threads is not None:
            self._options.intra_op_num_threads = threads
        # Idle ORT threads otherwise spin after each run and starve the host-side work between
        # verbs (resizing, the memory bank): on 2 cores, post-processing took 19 ms, not 0.9.
        self._options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions: dict[str, Any] = {}
        super().__init__(model_dir)

    def _load(self, verb: str, path: Path, spec: dict[str, Any]) -> None:
        import onnxruntime as ort

        try:
            session = ort.InferenceSession(
                str(path), self._options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise unloadable(path, "ONNX graph", exc) from None
        for kind, args in (("input", session.get_inputs()), ("output", session.get_outputs())):
            actual = [(a.name, a.shape, _DTYPES.get(a.type, a.type)) for a in args]
            check_signature(path, spec, kind, actual)
        self.sessions[verb] = session

    def _call(self, verb: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.sessions[verb].run(list(GRAPH_OUTPUTS[verb]), feeds)
