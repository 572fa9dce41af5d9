"""Scoring predictions on DAVIS 2016/2017, the helpers shared with YouTube-VOS, ``mobilevos score``.

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

YouTube-VOS scoring (a held-out part of ``train``) is in :mod:`mobilevos.scoring_ytvos`, which
uses this module's :class:`SequenceScores`, :func:`read_prediction` and process pool.
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import numpy as np
from tqdm import tqdm

from mobilevos.data.davis import DAVIS_RESOLUTIONS, DavisDataset, DavisSequence
from mobilevos.errors import ConfigError, DatasetError, InputError
from mobilevos.io import VOID_LABEL, read_label_image
from mobilevos.metrics import MeanRecallDecay, boundary_f, db_statistics, jaccard
from mobilevos.report import (
    format_davis_table,
    format_ytvos_table,
    write_davis_csvs,
    write_report,
    write_ytvos_csvs,
)

if TYPE_CHECKING:
    from mobilevos.scoring_ytvos import YTVOSResult

logger = logging.getLogger(__name__)

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
YTVOS_GLOBAL_COLUMNS = ("Overall", "J-Seen", "F-Seen", "J-Unseen", "F-Unseen")
DATASETS = ("davis2016", "davis2017", "ytvos2018", "ytvos2019")


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


def add_score_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``mobilevos score`` (the lead wires this into ``cli.py``)."""
    parser.add_argument("--dataset", required=True, choices=DATASETS, help="benchmark to score")
    parser.add_argument("--root", required=True, type=Path, help="dataset root folder")
    parser.add_argument("--pred", required=True, type=Path, help="folder of <seq>/<frame>.png")
    parser.add_argument(
        "--split", default=None, help="DAVIS split (default val); YouTube-VOS: train only"
    )
    parser.add_argument("--out", required=True, type=Path, help="folder for CSVs and report")
    parser.add_argument(
        "--gt-split",
        default=None,
        help="YouTube-VOS: file of held-out train videos, or NAME for ROOT/splits/NAME.txt",
    )
    parser.add_argument(
        "--seen-categories",
        type=Path,
        default=None,
        help="YouTube-VOS: file of seen categories (default: those of the other train videos)",
    )
    parser.add_argument("--workers", type=int, default=None, help="processes (default: CPUs)")
    parser.add_argument("--report", action="store_true", help="also write charts and strips")
    parser.add_argument("--sequences", default=None, help="comma-separated subset to score")
    parser.add_argument(
        "--resolution", default="480p", choices=DAVIS_RESOLUTIONS, help="DAVIS resolution"
    )


def score_command(args: argparse.Namespace) -> int:
    """Run ``mobilevos score``: print the table, write the CSVs (and report); returns 0.

    User mistakes raise :class:`~mobilevos.errors.MobileVOSError` subclasses for the CLI to print.
    """
    # Imported here: mobilevos.scoring_ytvos imports this module's helpers at its top.
    from mobilevos.scoring_ytvos import score_ytvos

    subset = None if args.sequences is None else [s for s in args.sequences.split(",") if s]
    if args.dataset.startswith("davis"):
        split = args.split or "val"
        result: DavisResult | YTVOSResult = score_davis(
            args.root,
            args.pred,
            year=int(args.dataset[-4:]),
            split=split,
            sequences=subset,
            workers=args.workers,
            resolution=args.resolution,
        )
        written = write_davis_csvs(result, args.out)
        sys.stdout.write(format_davis_table(result))
    else:
        if args.split not in (None, "train"):
            raise ConfigError(
                "YouTube-VOS valid/test have no public ground truth: score a held-out part of "
                "train with --gt-split (and leave --split out)"
            )
        if args.gt_split is None:
            raise ConfigError("YouTube-VOS scoring needs --gt-split (held-out train videos)")
        result = score_ytvos(
            args.root,
            args.pred,
            args.gt_split,
            seen_categories=args.seen_categories,
            workers=args.workers,
            videos=subset,
        )
        written = write_ytvos_csvs(result, args.out)
        sys.stdout.write(format_ytvos_table(result))
    if args.report:
        written = (*written, *write_report(result, args.out))
    for path in written:
        logger.info("wrote %s", path)
    return 0
