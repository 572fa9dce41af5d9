"""CUDA, AMP and MPS paths against the CPU; skipped on machines without the accelerator.

CI has no GPU, so these run where one exists (``pytest tests/test_accelerators.py``; see also
``scripts/gpu_check.py`` for timings and the single-GPU recipe's memory).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dataset_factory import recipe
from mobilevos.checkpoint import load_model
from mobilevos.data.synth import SynthConfig, render_video
from mobilevos.predictor import VOSPredictor
from mobilevos.train import Trainer
from mobilevos.train.config import load_train_config

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = torch.backends.mps.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
ACCELERATORS = [
    pytest.param("cuda", marks=needs_cuda),
    pytest.param("mps", marks=pytest.mark.skipif(not HAS_MPS, reason="needs Apple MPS")),
]
AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@pytest.fixture(scope="module")
def video():
    return render_video(3, SynthConfig(height=96, width=160, num_frames=6, num_objects=(2, 2)))


def track(model, video, device: str, amp: str | None = None) -> list[torch.Tensor]:
    predictor = VOSPredictor.from_model(
        model,
        device=device,
        size=96,
        autocast=amp is not None,
        autocast_dtype=AMP_DTYPES.get(amp, torch.float16),
    )
    probs = []
    for t, frame in enumerate(video.frames):
        predictor.step(frame, video.labels[0] if t == 0 else None)
        probs.append(predictor.probabilities.float().cpu())
    return probs


def largest_difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("device", ACCELERATORS)
def test_streaming_on_an_accelerator_matches_the_cpu(tiny_model, video, device):
    reference = track(tiny_model, video, "cpu")
    # TF32 convolutions (PyTorch's default on CUDA) keep about 3 decimal digits.
    assert largest_difference(track(tiny_model, video, device), reference) < 2e-3


@needs_cuda
@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_autocast_streaming_stays_close_to_fp32(tiny_model, video, amp):
    reference = track(tiny_model, video, "cuda")
    assert largest_difference(track(tiny_model, video, "cuda", amp), reference) < 5e-2


@needs_cuda
@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
def test_cuda_training_with_amp_learns_and_saves_fp32_weights(tmp_path, amp):
    overrides = ["optim.lr=0.002", "optim.schedule=constant", "steps=4", "device=cuda"]
    config = load_train_config(
        recipe(tmp_path), [*overrides, f"amp={amp}", f"out_dir={tmp_path}/run"]
    )
    trainer = Trainer(config)
    group = next(trainer.batches())
    first = trainer.train_step(group)["total"]
    for _ in range(14):
        last = trainer.train_step(group)["total"]
    assert math.isfinite(last) and last < 0.7 * first

    trainer = Trainer(config)
    final = trainer.run()
    model = load_model(final)
    for key, value in model.state_dict().items():
        assert value.device.type == "cpu", key
        if value.is_floating_point():
            assert value.dtype == torch.float32, key
            assert torch.equal(value, trainer.model.state_dict()[key].cpu()), key
    scaler = torch.load(trainer.state_path(), weights_only=True)["scaler"]
    assert bool(scaler) == (amp == "fp16")  # only fp16 scales the loss
    mask = np.zeros((48, 64), dtype=np.uint8)
    mask[10:30, 10:30] = 1
    labels = VOSPredictor.from_model(model, size=48).step(
        np.zeros((48, 64, 3), np.uint8), mask=mask
    )
    np.testing.assert_array_equal(labels, mask)
