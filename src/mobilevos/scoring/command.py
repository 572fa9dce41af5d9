"""``mobilevos score``: its options and the command (DAVIS or YouTube-VOS, CSVs, report)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mobilevos.data.davis import DAVIS_RESOLUTIONS
from mobilevos.errors import ConfigError
from mobilevos.scoring.davis import DavisResult, score_davis
from mobilevos.scoring.report import (
    format_davis_table,
    format_ytvos_table,
    write_davis_csvs,
    write_report,
    write_ytvos_csvs,
)
from mobilevos.scoring.ytvos import YTVOSResult, score_ytvos

logger = logging.getLogger(__name__)

DATASETS = ("davis2016", "davis2017", "ytvos2018", "ytvos2019")


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
