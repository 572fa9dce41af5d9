"""Scoring predictions on a held-out part of YouTube-VOS ``train`` (``valid`` has no public masks).

YouTube-VOS has no public scoring code; :func:`score_ytvos` follows the published protocol
(youtube-vos.org): J and F per object, averaged over the objects of seen and of unseen categories,
and the overall score is the mean of those four numbers. For each object, the annotated frames
after the one where its mask is given are scored (YouTube-VOS annotates every 5th frame), up to
and including the video's last annotated frame; absent-and-predicted-absent frames score 1, as in
DAVIS. Predictions are expected in ``PRED/<video>/<frame>.png`` or the submission layout
``PRED/Annotations/<video>/<frame>.png``.

The per-frame machinery (reading predictions, the process pool) is shared with DAVIS scoring in
:mod:`mobilevos.scoring.results`; ``mobilevos score`` is in :mod:`mobilevos.scoring.command`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mobilevos.data.davis import read_split_file
from mobilevos.data.ytvos import YouTubeVOSDataset, YouTubeVOSVideo, resolve_gt_split
from mobilevos.errors import DatasetError
from mobilevos.metrics import boundary_f, jaccard
from mobilevos.scoring.results import (
    SequenceScores,
    _nanmean,
    _object_masks,
    _run_parallel,
    _select,
    read_prediction,
)

logger = logging.getLogger(__name__)

YTVOS_GLOBAL_COLUMNS = ("Overall", "J-Seen", "F-Seen", "J-Unseen", "F-Unseen")


class YTVOSObjectRow(NamedTuple):
    """Per-object YouTube-VOS scores (means over the object's scored frames)."""

    name: str
    video: str
    object_id: int
    category: str | None
    seen: bool
    j_mean: float
    f_mean: float


class YTVOSSummary(NamedTuple):
    """The four challenge numbers and their mean."""

    overall: float
    j_seen: float
    f_seen: float
    j_unseen: float
    f_unseen: float


@dataclass(frozen=True)
class YTVOSResult:
    """Everything :func:`score_ytvos` computed."""

    gt_split: str
    root: Path
    pred_dir: Path
    sequences: list[SequenceScores]
    objects: list[YTVOSObjectRow]
    summary: YTVOSSummary


class _YTVOSTask(NamedTuple):
    video: YouTubeVOSVideo
    pred_dir: Path


def _score_ytvos_video(task: _YTVOSTask) -> SequenceScores:
    """J and F of each object on the annotated frames after its first one (NaN elsewhere)."""
    video, pred_root = task
    gt_names = video.annotation_names
    ids = np.array(sorted(video.object_first_frame), dtype=np.int64)
    firsts = [video.object_first_frame[i] for i in ids]
    # Frames where at least one object is scored: after its first (given) frame.
    scored = [name for name in gt_names if any(name > first for first in firsts)]
    j = np.full((len(ids), len(scored)), np.nan)
    f = np.full((len(ids), len(scored)), np.nan)
    pred_paths = [pred_root / video.name / f"{name}.png" for name in scored]
    for t, (name, pred_path) in enumerate(zip(scored, pred_paths, strict=True)):
        gt = video.read_annotation(name)
        assert gt is not None  # listed from the annotation folder
        pred = read_prediction(pred_path, video.name, name, gt.shape)
        active = np.array([name > first for first in firsts])
        gt_masks, pred_masks = _object_masks(gt, ids[active]), _object_masks(pred, ids[active])
        j[active, t] = jaccard(pred_masks, gt_masks)
        f[active, t] = boundary_f(pred_masks, gt_masks)
    return SequenceScores(
        name=video.name,
        object_ids=ids.tolist(),
        frames=scored,
        j=j,
        f=f,
        image_paths=[video.frame_dir / f"{name}.jpg" for name in scored],
        gt_paths=[video.annotation_dir / f"{name}.png" for name in scored],
        pred_paths=pred_paths,
    )


def seen_categories_from_train(root: str | Path, held_out: Sequence[str]) -> set[str]:
    """Categories of the objects of the ``train`` videos *not* held out: what a model trained on
    the rest of ``train`` has seen. Held-out objects of other categories count as unseen."""
    dataset = YouTubeVOSDataset(root, "train", all_frames=False)
    excluded = set(held_out)
    seen: set[str] = set()
    for name, entry in dataset.meta.items():
        if name not in excluded:
            seen.update(
                o["category"] for o in entry.get("objects", {}).values() if o.get("category")
            )
    return seen


def score_ytvos(
    root: str | Path,
    pred_dir: str | Path,
    gt_split: str | Path,
    seen_categories: str | Path | Sequence[str] | None = None,
    workers: int | None = None,
    videos: Sequence[str] | None = None,
) -> YTVOSResult:
    """Score predictions for the ``train`` videos listed by ``gt_split`` (see module docstring).

    ``gt_split``: a file of video names, or a name resolved to ``ROOT/splits/<name>.txt``.
    ``seen_categories``: a file with one category per line, or the names themselves; when None,
    a category is seen if some object of a ``train`` video outside the gt split has it.
    Objects without a category are unseen. A group without objects gets NaN, and the overall
    score is then the mean of the numbers that exist (logged as a warning).
    """
    label, held_out = resolve_gt_split(root, gt_split)
    names = _select(held_out, videos, f"gt split {label}")
    dataset = YouTubeVOSDataset(root, "train", all_frames=False, videos=held_out)
    pred_root = Path(pred_dir)
    if not pred_root.is_dir():
        raise DatasetError(f"{pred_root}: prediction folder not found")
    if (pred_root / "Annotations").is_dir() and not (pred_root / names[0]).is_dir():
        pred_root = pred_root / "Annotations"
    for name in names:
        if not (pred_root / name).is_dir():
            raise DatasetError(f"video {name}: prediction folder {pred_root / name} not found")
    if seen_categories is None:
        seen = seen_categories_from_train(root, held_out)
    elif isinstance(seen_categories, (str, Path)):
        seen = set(read_split_file(Path(seen_categories)))
    else:
        seen = set(seen_categories)
    opened = [dataset[name] for name in names]
    tasks = [_YTVOSTask(video, pred_root) for video in opened]
    scores = _run_parallel(_score_ytvos_video, tasks, workers, f"ytvos {label}")
    rows = []
    for video, score in zip(opened, scores, strict=True):
        for k, obj in enumerate(score.object_ids):
            category = video.categories.get(obj)
            rows.append(
                YTVOSObjectRow(
                    f"{video.name}_{obj}",
                    video.name,
                    obj,
                    category,
                    category in seen,
                    _nanmean(score.j[k]),
                    _nanmean(score.f[k]),
                )
            )
    summary = _ytvos_summary(rows)
    return YTVOSResult(label, Path(root), pred_root, scores, rows, summary)


def _ytvos_summary(rows: list[YTVOSObjectRow]) -> YTVOSSummary:
    """Means over seen / unseen objects (objects with no scored frame are left out)."""

    def group_mean(values: list[float]) -> float:
        return _nanmean(np.array(values, dtype=np.float64))

    seen = [r for r in rows if r.seen]
    unseen = [r for r in rows if not r.seen]
    four = [
        group_mean([r.j_mean for r in seen]),
        group_mean([r.f_mean for r in seen]),
        group_mean([r.j_mean for r in unseen]),
        group_mean([r.f_mean for r in unseen]),
    ]
    if any(math.isnan(v) for v in four):
        logger.warning(
            "YouTube-VOS: %d seen and %d unseen objects; the overall score averages only the "
            "groups that have scored objects",
            len(seen),
            len(unseen),
        )
    return YTVOSSummary(_nanmean(np.array(four)), *four)
