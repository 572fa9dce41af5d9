"""Sampling a training clip: which frames (gaps, the max-skip curriculum) and which objects.

Pure functions of a ``numpy.random.Generator`` (and the curriculum), so the clip datasets of
:mod:`mobilevos.data.clips` that call them with a sample's own generator stay deterministic.

Decisions:

* **Frame gaps.** :func:`sample_clip_indices` draws each gap uniformly in ``1..m`` and then the
  start uniformly among the positions where the clip fits, with ``m = min(max_skip,
  (n - 1) // (T - 1))`` so a short video still yields a clip. Frames are in temporal order.
  Gaps are counted in *annotated* frames: YouTube-VOS train annotates every 5th frame, so its
  source uses ``skip_divisor=5`` (STCN's ``max_skip // 5``), and only annotated frames are read.
* **Curriculum.** :func:`max_skip_schedule` defaults to STCN's: 5 until 10% of training, then
  10, 15, 20, 25 from 10/20/30/40%, and back to 5 from 90%. Datasets expose ``set_max_skip(n)``.
* **Objects.** :func:`choose_objects` picks up to ``max_objects`` objects with at least
  ``min_area`` pixels, in a random order, and :func:`relabel` renumbers them ``1..K`` in that
  order; the other objects become background, void stays 255.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from mobilevos.errors import ConfigError
from mobilevos.io import VOID_LABEL

STCN_MAX_SKIPS = (10, 15, 20, 25, 5)
STCN_SKIP_SWITCHES = (0.1, 0.2, 0.3, 0.4, 0.9)
STCN_INITIAL_MAX_SKIP = 5


def sample_clip_indices(
    num_frames: int, clip_length: int, max_skip: int, rng: np.random.Generator
) -> list[int]:
    """Increasing frame indices of a clip; consecutive gaps are in ``1..max_skip``.

    Gaps are i.i.d. uniform in ``1..m`` with ``m = min(max_skip, (num_frames - 1) //
    (clip_length - 1))``; the start is then uniform over the positions where the clip fits.
    So ``P(start, gaps) = m^-(T-1) / (num_frames - sum(gaps))``.
    """
    if clip_length < 1 or max_skip < 1:
        raise ValueError(f"clip_length and max_skip must be >= 1, got {clip_length}, {max_skip}")
    if num_frames < clip_length:
        raise ValueError(
            f"a {clip_length}-frame clip needs >= {clip_length} frames, not {num_frames}"
        )
    if clip_length == 1:
        return [int(rng.integers(num_frames))]
    largest = min(max_skip, (num_frames - 1) // (clip_length - 1))
    gaps = rng.integers(1, largest + 1, size=clip_length - 1)
    start = int(rng.integers(num_frames - int(gaps.sum())))
    return [start, *(start + np.cumsum(gaps)).tolist()]


class SkipCurriculum(Protocol):
    """Anything holding a max-skip curriculum (:class:`SkipSchedule`, ``DataConfig``)."""

    max_skip_values: tuple[int, ...]
    max_skip_switches: tuple[float, ...]
    initial_max_skip: int


@dataclass(frozen=True)
class SkipSchedule:
    """A max-skip curriculum: ``initial_max_skip``, then ``max_skip_values[i]`` from progress
    ``max_skip_switches[i]`` on (switch points increasing in [0, 1]). Defaults: STCN's."""

    max_skip_values: tuple[int, ...] = STCN_MAX_SKIPS
    max_skip_switches: tuple[float, ...] = STCN_SKIP_SWITCHES
    initial_max_skip: int = STCN_INITIAL_MAX_SKIP

    def __post_init__(self) -> None:
        check_curriculum(self)


def check_curriculum(curriculum: SkipCurriculum) -> None:
    """Raise :class:`ConfigError` unless values and switches pair up and are sensible."""
    values, switches = list(curriculum.max_skip_values), list(curriculum.max_skip_switches)
    if len(values) != len(switches):
        raise ConfigError(f"max skip: {len(values)} values but {len(switches)} switch points")
    if switches != sorted(switches) or not all(0.0 <= s <= 1.0 for s in switches):
        raise ConfigError(f"max skip: switch points must increase within [0, 1], got {switches}")
    if min((curriculum.initial_max_skip, *values)) < 1:
        raise ConfigError("max skip: values must be >= 1")


def max_skip_schedule(progress: float, curriculum: SkipCurriculum | None = None) -> int:
    """Max skip at ``progress`` (fraction of training done) under ``curriculum``.

    The default is STCN's: 5, then 10, 15, 20, 25 from 10/20/30/40% of training, 5 from 90%.
    A ``DataConfig`` is a curriculum too: ``max_skip_schedule(step / steps, config.data)``.
    """
    curriculum = curriculum or SkipSchedule()
    skip = curriculum.initial_max_skip
    pairs = zip(curriculum.max_skip_values, curriculum.max_skip_switches, strict=True)
    for value, switch in pairs:
        if progress >= switch:
            skip = value
    return int(skip)


def choose_objects(
    first_labels: Tensor, max_objects: int, min_area: int, rng: np.random.Generator
) -> list[int]:
    """Ids of up to ``max_objects`` objects with >= ``min_area`` pixels, in a random order.

    Shapes:
        first_labels: (H, W) integer ids.
    """
    counts = torch.bincount(first_labels.reshape(-1), minlength=256)
    ids = [i for i in range(1, VOID_LABEL) if counts[i] >= max(min_area, 1)]
    if not ids:
        return []
    order = rng.permutation(len(ids))[:max_objects]
    return [ids[i] for i in order]


def relabel(labels: Tensor, chosen: Sequence[int]) -> Tensor:
    """Map ``chosen[k]`` to ``k + 1``, other objects to 0, keep void. Shapes: any, int64."""
    table = torch.zeros(256, dtype=torch.long)
    table[VOID_LABEL] = VOID_LABEL
    table[torch.tensor(list(chosen), dtype=torch.long)] = torch.arange(1, len(chosen) + 1)
    return table[labels]
