"""Static int8 quantization of exported graphs with ONNX Runtime's own tools.

Calibration runs the fp32 graphs over the user's frames as a real session does (first frame
with an object, then the model's own predictions written to memory), records every verb's
inputs, and hands them to ``onnxruntime.quantization.quantize_static``. Which operators stay
fp32, and why, is in :mod:`mobilevos.export`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mobilevos.engine.ort_engine import OrtEngine
from mobilevos.manifest import VERBS, read_manifest
from mobilevos.predictor import VOSPredictor

QUANTIZED_OPS = ["Conv"]
MAX_CALIBRATION_FRAMES = 24


def calibration_mask(height: int, width: int) -> np.ndarray:
    """The first frame's object for calibration: a centred ellipse over a quarter of the frame.

    Calibration needs realistic value-encoder inputs, not a correct segmentation: after frame 0
    the masks are the model's own predictions, as in any session.
    """
    ys, xs = np.mgrid[:height, :width]
    inside = ((ys - height / 2) / (height / 3)) ** 2 + ((xs - width / 2) / (width / 3)) ** 2 <= 1
    return inside.astype(np.uint8)


def record_inputs(fp32_dir: Path, frames: list[np.ndarray]) -> dict[str, list[dict]]:
    """Every verb call's inputs, as ONNX Runtime feeds, over a session on ``frames``.

    Frames of another size than the one before start a new session, so a calibration folder
    may mix videos and image sizes.
    """
    engine = OrtEngine(fp32_dir)
    engine.feed_log = {verb: [] for verb in VERBS}
    predictor = VOSPredictor(engine)
    size = None
    with torch.inference_mode():
        for frame in frames:
            mask = None
            if frame.shape[:2] != size:  # a new video (or image size): a new session
                size = frame.shape[:2]
                predictor.reset()
                mask = calibration_mask(*size)
            predictor.step(frame, mask=mask)
    return engine.feed_log


class _Reader:
    """``CalibrationDataReader`` over recorded feeds (duck-typed: ``get_next`` and ``rewind``)."""

    def __init__(self, feeds: list[dict]) -> None:
        self.feeds, self.position = feeds, 0

    def get_next(self) -> dict | None:
        if self.position >= len(self.feeds):
            return None
        self.position += 1
        return self.feeds[self.position - 1]

    def rewind(self) -> None:
        self.position = 0


def quantize_model_dir(fp32_dir: Path, out_dir: Path, frames: list[np.ndarray]) -> dict[str, Any]:
    """Quantize each graph of ``fp32_dir`` into ``out_dir``; returns what was done."""
    manifest = read_manifest(fp32_dir)
    frames = frames[:MAX_CALIBRATION_FRAMES]
    feeds = record_inputs(fp32_dir, frames)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice on the root logger, per graph
    try:
        _quantize_graphs(manifest, fp32_dir, out_dir, feeds)
    finally:
        root.setLevel(level)
    return {
        "tool": "onnxruntime.quantization.quantize_static",
        "format": "QDQ, activations uint8, weights int8 per channel, MinMax calibration",
        "quantized_ops": QUANTIZED_OPS,
        "calibration_frames": len(frames),
        "calibration_calls": {verb: len(feeds[verb]) for verb in VERBS},
    }


def _quantize_graphs(manifest: dict, fp32_dir: Path, out_dir: Path, feeds: dict) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

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
            calibrate_method=CalibrationMethod.MinMax,
        )
