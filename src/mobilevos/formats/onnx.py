"""ONNX: graphs for ONNX Runtime and the browser (onnxruntime-web), fp32 and int8.

Each verb's module is traced into an ONNX graph at the export's fixed shapes and checked with
``onnx.checker``. int8 uses ONNX Runtime's own tools (``quantize_static``: QDQ format, uint8
activations, per-channel int8 weights, activation ranges from the recorded feeds by one of
:data:`CALIBRATION_METHODS`) and quantizes only convolutions; the readout and the soft
aggregation stay fp32 (:mod:`mobilevos.formats.export` says why).

:class:`OrtEngine` runs a folder of these graphs; the host side (padding objects to the exported
count, the feeds, the manifest checks) is :class:`~mobilevos.formats.base.ExportedEngine`'s,
shared with the ExecuTorch engine.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from mobilevos.errors import ExportError
from mobilevos.formats.base import (
    ExportedEngine,
    Feeds,
    check_calibration,
    check_signature,
    unloadable,
)
from mobilevos.formats.manifest import GRAPH_OUTPUTS, VERBS, read_manifest

DEFAULT_OPSET = 17
QUANTIZED_OPS = ["Conv"]
# How int8 sets each activation's range from the calibration feeds (ONNX Runtime's calibrators):
# the extremes seen, the central 99.999 % of the values seen, or the range that loses least
# information (KL divergence of the histograms). docs/export.md has what each does to accuracy.
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
DEFAULT_CALIBRATION = "percentile"
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
        super().__init__(model_dir, threads)

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


@dataclass(frozen=True)
class OnnxFormat:
    """The ONNX format (:class:`~mobilevos.formats.base.ProgramFormat`).

    Args:
        opset: the ONNX opset the graphs are written in.
        calibration: how int8 sets activation ranges, one of :data:`CALIBRATION_METHODS`.
    """

    opset: int = DEFAULT_OPSET
    calibration: str = DEFAULT_CALIBRATION
    engine: ClassVar[type[ExportedEngine]] = OrtEngine

    def __post_init__(self) -> None:
        check_calibration("onnx", self.calibration, CALIBRATION_METHODS)

    @staticmethod
    def require() -> None:
        """ONNX and ONNX Runtime are dependencies of the package: always there."""

    def write(self, verb: str, module: nn.Module, inputs: dict[str, Tensor], path: Path) -> None:
        with warnings.catch_warnings():
            # Shapes are fixed on purpose: the tracer's "treated as a constant" notes are
            # expected. The TorchScript-based exporter is deprecated in favour of
            # torch.export's, but it traces these verbs in seconds and its graphs match
            # PyTorch to 1e-5 (tests).
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module,
                tuple(inputs.values()),
                str(path),
                input_names=list(inputs),
                output_names=list(GRAPH_OUTPUTS[verb]),
                opset_version=self.opset,
                dynamo=False,
                do_constant_folding=True,
            )
        _check_graph(path)

    def write_int8(
        self, modules: dict[str, nn.Module], fp32_dir: Path, out_dir: Path, feeds: Feeds
    ) -> dict[str, Any]:
        """Quantize each graph of ``fp32_dir`` into ``out_dir`` (``modules`` are not needed:
        ONNX Runtime quantizes the graphs themselves)."""
        from onnxruntime.quantization import (
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        method = {
            "minmax": CalibrationMethod.MinMax,
            "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy,
        }[self.calibration]
        # The histogram methods keep every call's activations until the end unless fed one call
        # at a time (histograms merged between calls); a range of the data, not of |data|.
        options = {"CalibStridedMinMax": 1, "CalibTensorRangeSymmetric": False}
        manifest = read_manifest(fp32_dir)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantizer logs advice on the root logger, per graph
        try:
            # ... and its histogram calibrators print their settings on stdout.
            with contextlib.redirect_stdout(io.StringIO()):
                for verb in VERBS:
                    spec = manifest["graphs"][verb]
                    quantize_static(
                        str(fp32_dir / spec["file"]),
                        str(out_dir / spec["file"]),
                        _Reader(feeds[verb]),
                        quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8,
                        per_channel=True,
                        op_types_to_quantize=QUANTIZED_OPS,
                        calibrate_method=method,
                        extra_options=options,
                    )
        finally:
            root.setLevel(level)
        return {
            "tool": "onnxruntime.quantization.quantize_static",
            "format": "QDQ, activations uint8, weights int8 per channel",
            "calibration_method": self.calibration,
            "quantized_ops": QUANTIZED_OPS,
        }

    def facts(self) -> dict[str, Any]:
        return {"opset": self.opset}


FORMAT = OnnxFormat


def _check_graph(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # the checker raises several types
        raise ExportError(f"{path.name}: exported graph fails onnx.checker ({exc})") from None


class _Reader:
    """``CalibrationDataReader`` over recorded feeds (duck-typed: ``get_next``, ``rewind``, and
    ``__len__`` with ``set_range`` for strided calibration)."""

    def __init__(self, feeds: list[dict]) -> None:
        self.feeds, self.position, self.end = feeds, 0, len(feeds)

    def __len__(self) -> int:
        return len(self.feeds)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.position, self.end = start_index, min(end_index, len(self.feeds))

    def get_next(self) -> dict | None:
        if self.position >= self.end:
            return None
        self.position += 1
        return self.feeds[self.position - 1]

    def rewind(self) -> None:
        self.position, self.end = 0, len(self.feeds)
