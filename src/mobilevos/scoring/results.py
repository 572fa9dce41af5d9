"""Pieces shared by DAVIS and YouTube-VOS scoring: per-sequence scores, reading predictions,
object masks, choosing sequences and the process pool that scores sequences in parallel.

Used by :mod:`mobilevos.scoring.davis` and :mod:`mobilevos.scoring.ytvos`; imports neither.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from tqdm import tqdm

from mobilevos.errors import ConfigError, DatasetError, InputError
from mobilevos.io import read_label_image


@dataclass(frozen=True)
class SequenceScores:
    """Per-frame J and F of every object of one sequence (NaN where an object is not scored).

    Shapes:
        j, f: (K, T) float64 for K objects and T scored frames.
    """

    name: str
    object_ids: list[int]
    frames: list[str]
    j: np.ndarray
    f: np.ndarray
    image_paths: list[Path]
    gt_paths: list[Path]
    pred_paths: list[Path]

    @property
    def jf(self) -> float:
        """Sequence J&F: mean over objects of (J mean + F mean) / 2, for reports."""
        with np.errstate(invalid="ignore"):
            per_object = [
                (_nanmean(j) + _nanmean(f)) / 2 for j, f in zip(self.j, self.f, strict=True)
            ]
        return _nanmean(np.array(per_object))


def _nanmean(values: np.ndarray) -> float:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[~np.isnan(finite)]
    return float(finite.mean()) if finite.size else math.nan


def read_prediction(path: Path, sequence: str, frame: str, shape: tuple[int, int]) -> np.ndarray:
    """A predicted label map, with errors naming the sequence and frame.

    Shapes:
        returns: (H, W) uint8 equal to ``shape``.
    """
    if not path.is_file():
        raise DatasetError(f"sequence {sequence} frame {frame}: prediction {path} not found")
    try:
        labels = read_label_image(path)
    except InputError as exc:
        raise DatasetError(f"sequence {sequence} frame {frame}: {exc}") from None
    if labels.shape != shape:
        raise DatasetError(
            f"sequence {sequence} frame {frame}: prediction {path} is "
            f"{labels.shape[1]}x{labels.shape[0]} but the annotation is {shape[1]}x{shape[0]}; "
            "predictions must have the annotation's size"
        )
    return labels


def _object_masks(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Shapes: labels (H, W), ids (K,) -> (K, H, W) bool, one mask per id."""
    return labels[None] == ids[:, None, None]


_Task = TypeVar("_Task")


def _run_parallel(
    function: Callable[[_Task], SequenceScores],
    tasks: Sequence[_Task],
    workers: int | None,
    description: str,
) -> list[SequenceScores]:
    """``[function(t) for t in tasks]`` over a process pool, in order, with a progress bar.

    Uses "spawn" processes, safe even when the caller has started threads (torch, OpenMP). One
    worker (or one task) runs in this process. The first error cancels the remaining tasks.
    """
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    workers = min(workers, len(tasks))
    bar = tqdm(total=len(tasks), desc=description, unit="seq", disable=None)
    try:
        if workers <= 1:
            results = []
            for task in tasks:
                results.append(function(task))
                bar.update()
            return results
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures: list[Future[SequenceScores]] = [pool.submit(function, t) for t in tasks]
            for future in futures:
                future.add_done_callback(lambda _: bar.update())
            try:
                return [future.result() for future in futures]
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        bar.close()


def _select(names: list[str], wanted: Sequence[str] | None, where: str) -> list[str]:
    """``wanted`` (in its order) after checking each is in ``names``; all of ``names`` if None."""
    if wanted is None:
        return names
    missing = [n for n in wanted if n not in names]
    if missing:
        raise DatasetError(f"{where}: does not list {', '.join(missing)}")
    return list(dict.fromkeys(wanted))
