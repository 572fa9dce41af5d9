"""An output fingerprint of a model: what it predicts on one small generated clip.

The shipped default checkpoint stores its fingerprint in its metadata when it is exported
(``scripts/campaign.py``); a test recomputes it from the loaded weights. A file that loads
but holds other or damaged weights, or a change to the inference code that moves the
outputs, fails that comparison. The fingerprint is made of per-frame mean probabilities
(floats compared with a tolerance), not a hash of label pixels, so a different CPU's rounding
does not break it.
"""

from __future__ import annotations

import torch

from mobilevos.data.synth import SynthConfig, render_video
from mobilevos.model.network import MobileVOS
from mobilevos.predictor import VOSPredictor

CLIP_SEED = 7
CLIP = SynthConfig(height=96, width=160, num_frames=6, num_objects=(2, 2))
TOLERANCE = 1e-3
"""Largest difference between two fingerprints of the same weights (they agree to ~1e-6)."""


def output_fingerprint(model: MobileVOS) -> list[list[float]]:
    """Mean probability of each object on each frame after the first (the first is given).

    Returns one list per predicted frame of K+1 floats (background first), rounded to 6
    decimals, from the streaming predictor on the CPU at the clip's own size.
    """
    video = render_video(CLIP_SEED, CLIP)
    predictor = VOSPredictor.from_model(model, device="cpu", size=None)
    rows = []
    for t, frame in enumerate(video.frames):
        predictor.step(frame, mask=video.labels[0] if t == 0 else None)
        if t > 0:
            prob = predictor.probabilities
            assert prob is not None
            rows.append([round(float(v), 6) for v in prob.mean(dim=(1, 2))])
    return rows


def fingerprints_match(a: list[list[float]], b: list[list[float]]) -> bool:
    """Whether two fingerprints agree within :data:`TOLERANCE` everywhere."""
    x, y = torch.tensor(a), torch.tensor(b)
    return x.shape == y.shape and bool((x - y).abs().max() <= TOLERANCE)
