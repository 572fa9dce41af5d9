"""Backend parity: the same clip through two engines, verb by verb and mask by mask.

Used by every export (PyTorch against the fp32 programs, fp32 programs against int8:
:func:`verify_export`), by ``mobilevos bench`` and by the tests. A :class:`RecordingEngine`
wraps the reference engine and keeps every verb call's inputs and outputs, so the candidate
engine is fed exactly the reference's inputs and its outputs compared one to one (max abs
difference); then both run the clip as independent
sessions, and their probability maps (max abs difference) and label maps (mean IoU over
objects, frame by frame, away from near-ties) are compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mobilevos.engine import FrameEngine, TorchEngine
from mobilevos.errors import ExportError
from mobilevos.formats.base import open_exported
from mobilevos.model.network import MobileVOS, Segmentation
from mobilevos.predictor import VOSPredictor

# Tolerances of verify_export: fp32 programs match PyTorch to float rounding; int8 is judged on
# masks: below INT8_MIN_MEAN_IOU the export fails, below INT8_WARN_IOU it is written with a
# warning. Calibrations that hold read 0.978-0.994 at 240x432 to 288x512, saturated noise as
# the user's clip 0.966-0.974 (docs/export.md, "Which calibration clip").
FP32_MAX_ABS = 2e-3
FP32_MIN_IOU = 0.99
INT8_MIN_MEAN_IOU = 0.90
INT8_WARN_IOU = 0.975
INT8_ADVICE = "calibrate on another clip of your footage, or without --calibration"
VERIFY_SEED = 2024
VERIFY_FRAMES = 8
# Label maps are compared where the reference's two most likely classes differ by at least
# this much: an untrained network leaves many pixels at a near-tie, where float rounding alone
# flips the label.
TIE_MARGIN = 0.01


class RecordingEngine:
    """Delegates to ``engine`` and records ``(verb, args, outputs)`` of every call."""

    def __init__(self, engine: FrameEngine) -> None:
        self.engine = engine
        self.calls: list[tuple[str, tuple, Any]] = []
        self.device = engine.device
        self.memory = engine.memory
        self.max_objects = engine.max_objects
        self.input_size = engine.input_size

    def check_memory(self, memory) -> None:
        self.engine.check_memory(memory)

    def prepare(self, size: tuple[int, int], objects: int) -> None:
        self.engine.prepare(size, objects)

    def encode_query(self, image: Tensor):
        out = self.engine.encode_query(image)
        self.calls.append(("encode_query", (image,), out))
        return out

    def encode_value(self, image: Tensor, query, masks: Tensor) -> Tensor:
        out = self.engine.encode_value(image, query, masks)
        self.calls.append(("encode_value", (image, query, masks), out))
        return out

    def segment(self, query, keys, values, valid, present=None) -> Segmentation:
        out = self.engine.segment(query, keys, values, valid, present)
        args = (query, keys.clone(), values.clone(), valid.clone(), present)
        self.calls.append(("segment", args, out))
        return out


def verification_clip(size: tuple[int, int], objects: int, frames: int = VERIFY_FRAMES):
    """A generated clip at ``size`` with up to ``objects`` objects: (frames, first labels)."""
    from mobilevos.data.synth import SynthConfig, render_video

    count = (min(2, objects), min(2, objects))
    video = render_video(VERIFY_SEED, SynthConfig(*size, num_frames=frames, num_objects=count))
    return list(video.frames), video.labels[0]


def _outputs(verb: str, out: Any) -> dict[str, Tensor]:
    if verb == "encode_query":
        return {f"encode_query.{name}": x for name, x in out._asdict().items()}
    if verb == "encode_value":
        return {"encode_value.values": out}
    return {"segment.probabilities": out.probabilities}


def mask_iou(
    a: np.ndarray, b: np.ndarray, ids: list[int], where: np.ndarray | None = None
) -> float:
    """Mean over ``ids`` of the IoU of ``a == id`` and ``b == id`` (1 when both are empty),
    counting only the pixels in ``where`` (all by default)."""
    scores = []
    for i in ids:
        x, y = a == i, b == i
        if where is not None:
            x, y = x & where, y & where
        union = np.logical_or(x, y).sum()
        scores.append(1.0 if union == 0 else np.logical_and(x, y).sum() / union)
    return float(np.mean(scores))


def decided_pixels(probabilities: Tensor) -> np.ndarray:
    """Where the two most likely classes of (K + 1, H, W) ``probabilities`` differ by at least
    :data:`TIE_MARGIN`: the pixels whose label float rounding cannot flip."""
    top2 = probabilities.topk(2, dim=0).values if probabilities.shape[0] > 1 else probabilities
    return (top2[0] - top2[-1] >= TIE_MARGIN).cpu().numpy()


def compare_engines(
    reference: FrameEngine, candidate: FrameEngine, frames: list[np.ndarray], first: np.ndarray
) -> dict[str, Any]:
    """Run ``frames`` (first-frame labels ``first``) through both engines; see the module doc."""
    recorder = RecordingEngine(reference)
    # Both sessions keep the candidate's memory (an export's slots fix its bank's shape).
    ref = VOSPredictor(recorder, size=None, memory=candidate.memory)
    cand = VOSPredictor(candidate, size=None)
    ious, session_diff = [], 0.0
    with torch.inference_mode():
        for t, frame in enumerate(frames):
            mask = first if t == 0 else None
            a, b = ref.step(frame, mask=mask), cand.step(frame, mask=mask)
            p, q = ref.probabilities, cand.probabilities
            session_diff = max(session_diff, float((p - q).abs().max()))
            ious.append(mask_iou(a, b, ref.object_ids, decided_pixels(p)))
        diffs: dict[str, float] = {}
        for verb, args, out in recorder.calls:
            expected = _outputs(verb, out)
            actual = _outputs(verb, getattr(candidate, verb)(*args))
            for name, x in expected.items():
                diff = float((x.float() - actual[name].float()).abs().max())
                diffs[name] = max(diffs.get(name, 0.0), diff)
    diffs["session.probabilities"] = session_diff
    return {
        "frames": len(frames),
        "max_abs_diff": diffs,
        "frame_iou": [round(x, 6) for x in ious],
        "mean_iou": round(float(np.mean(ious)), 6),
    }


def compare_backends(
    model: MobileVOS, model_dir: Path, reference_dir: Path | None = None
) -> dict[str, Any]:
    """PyTorch (or the programs in ``reference_dir``) against the programs in ``model_dir``."""
    candidate = open_exported(model_dir)
    if reference_dir is None:
        reference: FrameEngine = TorchEngine(model.eval().cpu())
    else:
        reference = open_exported(reference_dir)
    assert candidate.input_size is not None and candidate.max_objects is not None
    frames, first = verification_clip(candidate.input_size, candidate.max_objects)
    return compare_engines(reference, candidate, frames, first)


def verify_export(
    model: MobileVOS, model_dir: Path, reference_dir: Path | None = None
) -> dict[str, Any]:
    """:func:`compare_backends`, held to the tolerances: per-output max abs differences (fp32
    only) and per-frame mask IoUs; raises :class:`ExportError` beyond them. An int8 export
    between the error and the warning threshold gets a one-line ``warning`` in the report."""
    report = compare_backends(model, model_dir, reference_dir)
    ious = report["frame_iou"]
    agreement = (
        f"int8 masks agree with fp32 at mean IoU {report['mean_iou']:.3f} on "
        f"{report['frames']} held-out frames"
    )
    if reference_dir is None:
        worst = max(report["max_abs_diff"].values())
        if worst > FP32_MAX_ABS or min(ious) < FP32_MIN_IOU:
            raise ExportError(
                f"{model_dir}: exported programs differ from PyTorch (max abs {worst:.2e}, "
                f"min frame IoU {min(ious):.4f}; tolerance {FP32_MAX_ABS:g}, {FP32_MIN_IOU})"
            )
    elif report["mean_iou"] < INT8_MIN_MEAN_IOU:
        raise ExportError(f"{model_dir}: {agreement} (< {INT8_MIN_MEAN_IOU}): {INT8_ADVICE}")
    elif report["mean_iou"] < INT8_WARN_IOU:
        report["warning"] = f"{agreement} (< {INT8_WARN_IOU}); {INT8_ADVICE}"
    return report
