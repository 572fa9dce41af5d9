"""Scoring predictions on DAVIS 2016/2017 (:func:`score_davis`).

DAVIS numbers equal those of the official toolkit (``davisvideochallenge/davis2017-evaluation``,
semi-supervised task; checked side by side by ``scripts/compare_davis_toolkit.py``). Its protocol,
quirks included:

* the scored frames are the sequence's annotation PNGs, sorted, minus the first and the last
  (the last is skipped "for historical reasons": some DAVIS 2016 methods gave no last frame);
* the objects are ids ``1..K`` with K the *largest* id of the first annotation, so a gap in the
  ids gives an object that is absent everywhere (J = F = 1 on every frame); ids above K that
  appear later are background;
* void pixels (255) count as background in the ground truth: the toolkit builds void masks but
  does not pass them to the semi-supervised measures, so predicting over void costs precision;
* a prediction may omit objects (they score 0 where present: the toolkit pads with empty masks)
  but an id above K anywhere in the scored frames is an error (the toolkit stops with "there is
  an index higher than the number of objects"); a prediction of another size is an error (the
  toolkit fails an assertion); here both name the sequence and frame;
* per object: J and F mean, recall (fraction of frames > 0.5) and decay (:mod:`mobilevos.metrics`);
  the global row averages over objects, not sequences; J&F-Mean is (J-Mean + F-Mean) / 2;
* DAVIS 2016 scores one object per sequence, the union of all ids (ground truth and prediction),
  with ``ImageSets/2016``; this is what the 2016 port of the toolkit used by STCN-family papers
  (hkchengrex/davis2016-evaluation) computes for the binary 0/255 PNGs it expects.

Deliberate differences, all on inputs the toolkit mishandles: predictions are read with
:func:`mobilevos.io.read_label_image`, so a 0/255 grayscale PNG is object 1 (the toolkit would
see id 255 and stop); a sequence needs 3 annotated frames and an object in its first annotation
(the toolkit crashes or silently drops it); decay bins do not wrap past 256 frames.

YouTube-VOS scoring (a held-out part of ``train``) is in :mod:`mobilevos.scoring.ytvos`; both use
the :class:`~mobilevos.scoring.results.SequenceScores`, prediction reading and process pool of
:mod:`mobilevos.scoring.results`. ``mobilevos score`` is in :mod:`mobilevos.scoring.command`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mobilevos.data.davis import DavisDataset, DavisSequence
from mobilevos.errors import DatasetError
from mobilevos.io import VOID_LABEL
from mobilevos.metrics import MeanRecallDecay, boundary_f, db_statistics, jaccard
from mobilevos.scoring.results import (
    SequenceScores,
    _object_masks,
    _run_parallel,
    _select,
    read_prediction,
)

DAVIS_GLOBAL_COLUMNS = (
    "J&F-Mean",
    "J-Mean",
    "J-Recall",
    "J-Decay",
    "F-Mean",
    "F-Recall",
    "F-Decay",
)
DAVIS_SEQUENCE_COLUMNS = ("Sequence", "J-Mean", "F-Mean")


class DavisObjectRow(NamedTuple):
    """One row of the per-object table: ``<sequence>_<id>`` and its statistics."""

    name: str
    sequence: str
    object_id: int
    j: MeanRecallDecay
    f: MeanRecallDecay


class DavisGlobal(NamedTuple):
    """The global row: each statistic averaged over all objects of all sequences."""

    jf_mean: float
    j_mean: float
    j_recall: float
    j_decay: float
    f_mean: float
    f_recall: float
    f_decay: float


@dataclass(frozen=True)
class DavisResult:
    """Everything :func:`score_davis` computed; ``objects`` and ``global_row`` are the CSVs."""

    year: int
    split: str
    root: Path
    pred_dir: Path
    sequences: list[SequenceScores]
    objects: list[DavisObjectRow]
    global_row: DavisGlobal


class _DavisTask(NamedTuple):
    sequence: DavisSequence
    pred_dir: Path


def _score_davis_sequence(task: _DavisTask) -> SequenceScores:
    """J and F of every object on every scored frame of one DAVIS sequence (see module doc)."""
    seq, pred_root = task
    names = seq.annotation_names
    if len(names) < 3:
        raise DatasetError(
            f"sequence {seq.name}: {len(names)} annotated frame(s); scoring needs at least 3 "
            "(the first and last are not scored)"
        )
    first = seq.read_annotation(names[0])
    n_objects = 1 if seq.year == 2016 else int(first[first != VOID_LABEL].max(initial=0))
    if n_objects == 0:
        raise DatasetError(f"sequence {seq.name} frame {names[0]}: first annotation has no object")
    ids = np.arange(1, n_objects + 1)
    scored = names[1:-1]
    j = np.empty((n_objects, len(scored)))
    f = np.empty((n_objects, len(scored)))
    pred_paths = [pred_root / seq.name / f"{stem}.png" for stem in scored]
    for t, (stem, pred_path) in enumerate(zip(scored, pred_paths, strict=True)):
        gt = seq.read_annotation(stem)
        pred = read_prediction(pred_path, seq.name, stem, gt.shape)
        if seq.year == 2016:
            pred = (pred != 0).astype(np.uint8)
        elif int(pred.max()) > n_objects:
            raise DatasetError(
                f"sequence {seq.name} frame {stem}: prediction has object id {int(pred.max())} "
                f"but the first annotation ({names[0]}) has only {n_objects} object(s)"
            )
        gt_masks, pred_masks = _object_masks(gt, ids), _object_masks(pred, ids)
        j[:, t] = jaccard(pred_masks, gt_masks)
        f[:, t] = boundary_f(pred_masks, gt_masks)
    return SequenceScores(
        name=seq.name,
        object_ids=ids.tolist(),
        frames=list(scored),
        j=j,
        f=f,
        image_paths=[seq.frame_dir / f"{stem}.jpg" for stem in scored],
        gt_paths=[seq.annotation_path(stem) for stem in scored],
        pred_paths=pred_paths,
    )


def score_davis(
    root: str | Path,
    pred_dir: str | Path,
    year: int = 2017,
    split: str = "val",
    sequences: Sequence[str] | None = None,
    workers: int | None = None,
    resolution: str = "480p",
) -> DavisResult:
    """Score predictions ``PRED/<seq>/<frame>.png`` against DAVIS ``year``/``split``.

    Sequences are scored in parallel (``workers`` processes, default the CPU count) in the order
    of the split file (or of ``sequences``). See the module docstring for the protocol. Workers
    are spawned, so a script calling this with ``workers > 1`` needs the usual
    ``if __name__ == "__main__":`` guard.
    """
    dataset = DavisDataset(root, year, split, resolution)
    pred_root = Path(pred_dir)
    if not pred_root.is_dir():
        raise DatasetError(f"{pred_root}: prediction folder not found")
    split_file = f"{dataset.root}/ImageSets/{year}/{split}.txt"
    names = _select(dataset.sequences, sequences, split_file)
    for name in names:
        if not (pred_root / name).is_dir():
            raise DatasetError(f"sequence {name}: prediction folder {pred_root / name} not found")
    tasks = [_DavisTask(dataset[name], pred_root) for name in names]
    scores = _run_parallel(_score_davis_sequence, tasks, workers, f"davis{year} {split}")
    rows = [
        DavisObjectRow(f"{s.name}_{obj}", s.name, obj, db_statistics(s.j[k]), db_statistics(s.f[k]))
        for s in scores
        for k, obj in enumerate(s.object_ids)
    ]
    return DavisResult(year, split, dataset.root, pred_root, scores, rows, _davis_global(rows))


def _davis_global(rows: list[DavisObjectRow]) -> DavisGlobal:
    """Average each statistic over objects (the toolkit's ``np.mean`` over its lists)."""

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else math.nan

    j_mean, f_mean = mean([r.j.mean for r in rows]), mean([r.f.mean for r in rows])
    return DavisGlobal(
        jf_mean=(j_mean + f_mean) / 2.0,
        j_mean=j_mean,
        j_recall=mean([r.j.recall for r in rows]),
        j_decay=mean([r.j.decay for r in rows]),
        f_mean=f_mean,
        f_recall=mean([r.f.recall for r in rows]),
        f_decay=mean([r.f.decay for r in rows]),
    )
