"""``mobilevos demo``: generate a clip and its first-frame mask, then segment it end to end.

It runs the shipped default model (``mobilevos info`` says how far its training has got). In a
checkout without it, an *untrained* ``mobilevos-mbv2-lite`` (ImageNet MobileNetV2 trunks,
random VOS layers) shows the pipeline (video decoding, streaming predictor, finite memory, PNG
and overlay writing), not segmentation quality.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mobilevos.checkpoint import DEFAULT_CHECKPOINT, load_model, read_checkpoint
from mobilevos.config import get_preset
from mobilevos.data.synth import SynthConfig, render_video
from mobilevos.io import write_palette_png, write_video
from mobilevos.model.network import build_model
from mobilevos.predictor import VOSPredictor
from mobilevos.segment import SegmentResult, segment_video

DEMO_PRESET = "mobilevos-mbv2-lite"
DEMO_SEED = 2023


def run_demo(out: str | Path, device: str = "cpu", frames: int = 30) -> SegmentResult:
    out = Path(out)
    config = SynthConfig(height=240, width=432, num_frames=frames)
    video = render_video(DEMO_SEED, config)
    clip, mask = out / "clip.mp4", out / "first.png"
    write_video(clip, video.frames, fps=12)
    write_palette_png(mask, video.labels[0])
    print(f"wrote a synthetic clip {clip} ({frames} frames) and its first-frame mask {mask}")
    if DEFAULT_CHECKPOINT.is_file():
        model = load_model()
        steps = read_checkpoint(DEFAULT_CHECKPOINT).meta.get("steps")
        print(f"model: the shipped default ({model.config.name}, {steps} training steps)")
    else:
        print(
            f"WARNING: no default model is installed, so {DEMO_PRESET} runs UNTRAINED: the "
            "masks below are meaningless; the demo only shows the pipeline running.",
            file=sys.stderr,
        )
        model = build_model(get_preset(DEMO_PRESET)).eval()  # ImageNet trunks, random VOS layers
    predictor = VOSPredictor(model, device=device, size=240)
    result = segment_video(predictor, clip, mask, out / "masks", out / "overlay.mp4")
    print(
        f"segmented {result.frames} frames (objects {result.objects}): "
        f"{result.out_dir}/*.png and {result.overlay}"
    )
    return result
