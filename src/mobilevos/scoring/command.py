"""``mobilevos score``: scoring a folder of predictions (DAVIS or YouTube-VOS), with CSVs and
an optional report."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from mobilevos.errors import ConfigError
from mobilevos.scoring.davis import DavisResult, score_davis
from mobilevos.scoring.report import write_results
from mobilevos.scoring.ytvos import YTVOSResult, score_ytvos

logger = logging.getLogger(__name__)

DATASETS = ("davis2016", "davis2017", "ytvos2018", "ytvos2019")


def score(
    dataset: str,
    root: str | Path,
    predictions: str | Path,
    out_dir: str | Path,
    *,
    split: str | None = None,
    gt_split: str | None = None,
    seen_categories: str | Path | None = None,
    sequences: Sequence[str] | None = None,
    resolution: str = "480p",
    workers: int | None = None,
    report: bool = False,
) -> DavisResult | YTVOSResult:
    """``mobilevos score``: score ``predictions`` against a benchmark's ground truth and write
    the CSVs (and, with ``report``, charts and strips) into ``out_dir``.

    DAVIS (``davis2016``/``davis2017``): ``split`` (default ``val``) at ``resolution``.
    YouTube-VOS (``ytvos2018``/``ytvos2019``): valid and test have no public ground truth, so a
    held-out part of train is scored: ``gt_split`` (a file of video names, or NAME for
    ``ROOT/splits/NAME.txt``), with ``seen_categories`` (default: those of the other train
    videos). User mistakes raise :class:`~mobilevos.errors.MobileVOSError` subclasses.
    """
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    result: DavisResult | YTVOSResult
    if dataset.startswith("davis"):
        result = score_davis(
            root,
            predictions,
            year=int(dataset[-4:]),
            split=split or "val",
            sequences=sequences,
            workers=workers,
            resolution=resolution,
        )
    else:
        if split not in (None, "train"):
            raise ConfigError(
                "YouTube-VOS valid/test have no public ground truth: score a held-out part of "
                "train with --gt-split (and leave --split out)"
            )
        if gt_split is None:
            raise ConfigError("YouTube-VOS scoring needs --gt-split (held-out train videos)")
        result = score_ytvos(
            root,
            predictions,
            gt_split,
            seen_categories=seen_categories,
            workers=workers,
            videos=sequences,
        )
    for path in write_results(result, out_dir, report):
        logger.info("wrote %s", path)
    return result
