"""Shared fixtures: the tiny preset keeps every model test fast on a CPU."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def tiny_model():
    from mobilevos.config import get_preset
    from mobilevos.model.network import build_model

    torch.manual_seed(0)
    return build_model(get_preset("mobilevos-tiny")).eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory):
    """A ``mobilevos-tiny`` checkpoint file with seeded random weights."""
    from mobilevos.checkpoint import save_checkpoint
    from mobilevos.config import get_preset
    from mobilevos.model.network import build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    save_checkpoint(build_model(get_preset("mobilevos-tiny")), path)
    return path


@pytest.fixture
def two_object_mask() -> np.ndarray:
    """64x96 label map with objects 3 and 7."""
    labels = np.zeros((64, 96), dtype=np.uint8)
    labels[8:30, 10:40] = 3
    labels[36:60, 50:90] = 7
    return labels
