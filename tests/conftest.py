"""Shared fixtures: the tiny preset keeps every model test fast on a CPU."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

# Two threads (CI's machine has two cores) unless OMP_NUM_THREADS says otherwise: .ci/run runs
# the suite again on one thread with the portable kernels (ATEN_CPU_CAPABILITY=default), so a
# test that holds only for this machine's kernels or thread count cannot land.
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session", autouse=True)
def export_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The suite's own ``XDG_CACHE_HOME``: the exports that ``segment`` and ``eval`` make on
    first use (and ``serve``'s) never reach the user's cache, and are shared by the tests."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(cache))
    yield cache
    patch.undo()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The browser tests (marker ``web``, tests/test_web.py) run when asked for, by naming their
    file or by ``-m web``; a plain ``pytest`` (``make test``) leaves them out: they need
    chromium, playwright and web/node_modules and take about a minute (``make test-web``)."""
    named = any(Path(arg.split("::")[0]).name == "test_web.py" for arg in config.args)
    if named or "web" in (config.option.markexpr or "").replace("not web", ""):
        return
    web = [item for item in items if item.get_closest_marker("web")]
    if web:
        config.hook.pytest_deselected(items=web)
        items[:] = [item for item in items if not item.get_closest_marker("web")]


@pytest.fixture(scope="session")
def tiny_model():
    from mobilevos.config import get_preset
    from mobilevos.model.network import build_model

    torch.manual_seed(0)
    return build_model(get_preset("mobilevos-tiny")).eval()


@pytest.fixture(scope="session")
def tiny_fast_model():
    """The tiny preset built like ``mobilevos-mbv2-fast``: no value trunk, the light decoder."""
    from mobilevos.config import get_preset
    from mobilevos.model.network import build_model

    config = get_preset("mobilevos-tiny").replace(
        name="mobilevos-tiny-fast",
        value_backbone=None,
        value_branch_dims=(8, 16, 32),
        decoder="light",
        decoder_dims=(32, 16, 8),
        aggregate_at="stride4",
    )
    torch.manual_seed(0)
    return build_model(config).eval()


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
