"""The ``mobilevos`` command line.

Each command's module maps its arguments to one typed library call and prints the result; the
library checks everything (a user mistake raises a :class:`~mobilevos.errors.MobileVOSError`),
and :func:`main` prints that error's one line and exits with status 2, never a traceback.

    segment         :mod:`mobilevos.cli.segment`
    eval, score     :mod:`mobilevos.cli.evaluate`
    export          :mod:`mobilevos.cli.export`
    bench           :mod:`mobilevos.cli.bench`
    info, convert, synth, train, demo, serve    :mod:`mobilevos.cli.tools`
    (shared: the model and backend options, sizes and lists: :mod:`mobilevos.cli.common`)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from mobilevos.cli.bench import add_bench
from mobilevos.cli.evaluate import add_eval, add_score
from mobilevos.cli.export import add_export
from mobilevos.cli.live import add_live
from mobilevos.cli.segment import add_segment
from mobilevos.cli.tools import add_convert, add_demo, add_info, add_serve, add_synth, add_train
from mobilevos.errors import MobileVOSError
from mobilevos.version import __version__

SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_segment,
    add_live,
    add_info,
    add_convert,
    add_eval,
    add_export,
    add_score,
    add_train,
    add_synth,
    add_demo,
    add_bench,
    add_serve,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mobilevos", description="Real-time semi-supervised video object segmentation."
    )
    parser.add_argument("--version", action="version", version=f"mobilevos {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="mobilevos: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except MobileVOSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
