"""``mobilevos eval`` (a model over a benchmark, :func:`mobilevos.evaluate.evaluate`) and
``mobilevos score`` (a folder of predictions, :func:`mobilevos.scoring.score`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mobilevos.cli.common import (
    add_backend_arguments,
    add_model_arguments,
    engine_source,
    parse_subset,
)
from mobilevos.data.davis import DAVIS_RESOLUTIONS
from mobilevos.scoring import DATASETS


def add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="run a model over DAVIS / YouTube-VOS and score it")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--root", required=True, type=Path, help="dataset root folder")
    p.add_argument("--split", default=None, help="default: val (DAVIS), valid (YouTube-VOS)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--size", type=int, default=480, help="short side the network sees")
    p.add_argument("--sequences", default=None, help="comma-separated subset")
    p.add_argument("--workers", type=int, default=None, help="scoring processes")
    p.add_argument("--report", action="store_true", help="DAVIS: also write charts/strips")
    p.add_argument(
        "--pinned",
        type=int,
        default=None,
        help="override the memory's pinned slots (e.g. 2 for YouTube-VOS)",
    )
    add_model_arguments(p)
    add_backend_arguments(p)
    p.set_defaults(func=_eval)


def _eval(args: argparse.Namespace) -> int:
    from mobilevos.evaluate import evaluate
    from mobilevos.scoring import DavisResult, format_davis_table

    result = evaluate(
        engine_source(args),
        args.dataset,
        args.root,
        args.out,
        split=args.split,
        backend=args.backend,
        device=args.device,
        size=args.size,
        sequences=parse_subset(args.sequences),
        pinned=args.pinned,
        workers=args.workers,
        report=args.report,
    )
    if isinstance(result, DavisResult):
        sys.stdout.write(format_davis_table(result))
    elif result is not None:
        print(f"wrote {args.out / 'Annotations'} and {result}")
    return 0


def add_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score existing predictions (DAVIS, YouTube-VOS held-out)")
    p.add_argument("--dataset", required=True, choices=DATASETS, help="benchmark to score")
    p.add_argument("--root", required=True, type=Path, help="dataset root folder")
    p.add_argument("--pred", required=True, type=Path, help="folder of <seq>/<frame>.png")
    p.add_argument(
        "--split", default=None, help="DAVIS split (default val); YouTube-VOS: train only"
    )
    p.add_argument("--out", required=True, type=Path, help="folder for CSVs and report")
    p.add_argument(
        "--gt-split",
        default=None,
        help="YouTube-VOS: file of held-out train videos, or NAME for ROOT/splits/NAME.txt",
    )
    p.add_argument(
        "--seen-categories",
        type=Path,
        default=None,
        help="YouTube-VOS: file of seen categories (default: those of the other train videos)",
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: CPUs)")
    p.add_argument("--report", action="store_true", help="also write charts and strips")
    p.add_argument("--sequences", default=None, help="comma-separated subset to score")
    p.add_argument(
        "--resolution", default="480p", choices=DAVIS_RESOLUTIONS, help="DAVIS resolution"
    )
    p.set_defaults(func=_score)


def _score(args: argparse.Namespace) -> int:
    from mobilevos.scoring import DavisResult, format_davis_table, format_ytvos_table, score

    result = score(
        args.dataset,
        args.root,
        args.pred,
        args.out,
        split=args.split,
        gt_split=args.gt_split,
        seen_categories=args.seen_categories,
        sequences=parse_subset(args.sequences),
        resolution=args.resolution,
        workers=args.workers,
        report=args.report,
    )
    table = format_davis_table if isinstance(result, DavisResult) else format_ytvos_table
    sys.stdout.write(table(result))
    return 0
