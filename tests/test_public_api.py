"""The public contract of the issue: ``mv.load_model``, ``mv.save_checkpoint``,
``mv.VOSPredictor(...).step`` — exercised exactly as the README shows."""

from __future__ import annotations

import ast
import subprocess
import sys

import numpy as np

import mobilevos as mv


def test_readme_python_api_round_trip(tmp_path):
    model = mv.load_model("mobilevos-tiny")
    mv.save_checkpoint(model, tmp_path / "copy.ckpt")
    model = mv.load_model(tmp_path / "copy.ckpt")
    predictor = mv.VOSPredictor.from_model(model, device="cpu", size=32)
    first_mask = np.zeros((40, 60), dtype=np.uint8)
    first_mask[5:20, 5:30] = 3
    frames = np.random.default_rng(0).integers(0, 256, (4, 40, 60, 3), dtype=np.uint8)
    for t, frame in enumerate(frames):
        labels = predictor.step(frame, mask=first_mask if t == 0 else None)
        assert labels.shape == (40, 60) and set(np.unique(labels)) <= {0, 3}
    assert predictor.probabilities.shape == (2, 40, 60)


def test_import_is_light_and_exports_are_declared():
    code = "import sys, mobilevos; assert 'torch' not in sys.modules; print(mobilevos.__all__)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    for name in ast.literal_eval(out.stdout):
        assert getattr(mv, name) is not None
