"""Scoring predictions: DAVIS 2016/2017 (the official toolkit's numbers), a held-out part of
YouTube-VOS ``train``, the CSVs, printed tables and visual report, and ``mobilevos score``.

Modules import one way only: each imports only modules listed below it.

* :mod:`~mobilevos.scoring.command`: :func:`score`, the job behind ``mobilevos score``;
* :mod:`~mobilevos.scoring.report`: CSVs, printed tables and the visual report;
* :mod:`~mobilevos.scoring.davis`: :func:`score_davis`, the DAVIS protocol and its quirks;
* :mod:`~mobilevos.scoring.ytvos`: :func:`score_ytvos` on a held-out part of ``train``;
* :mod:`~mobilevos.scoring.results`: :class:`SequenceScores`, reading predictions and the
  process pool, shared by the two scorers.
"""

from mobilevos.scoring.command import DATASETS, score
from mobilevos.scoring.davis import (
    DAVIS_GLOBAL_COLUMNS,
    DAVIS_SEQUENCE_COLUMNS,
    DavisGlobal,
    DavisObjectRow,
    DavisResult,
    score_davis,
)
from mobilevos.scoring.report import (
    format_davis_table,
    format_table,
    format_ytvos_table,
    write_davis_csvs,
    write_report,
    write_results,
    write_ytvos_csvs,
)
from mobilevos.scoring.results import SequenceScores, read_prediction
from mobilevos.scoring.ytvos import (
    YTVOS_GLOBAL_COLUMNS,
    YTVOSObjectRow,
    YTVOSResult,
    YTVOSSummary,
    score_ytvos,
    seen_categories_from_train,
)

__all__ = [
    "DATASETS",
    "DAVIS_GLOBAL_COLUMNS",
    "DAVIS_SEQUENCE_COLUMNS",
    "YTVOS_GLOBAL_COLUMNS",
    "DavisGlobal",
    "DavisObjectRow",
    "DavisResult",
    "SequenceScores",
    "YTVOSObjectRow",
    "YTVOSResult",
    "YTVOSSummary",
    "format_davis_table",
    "format_table",
    "format_ytvos_table",
    "read_prediction",
    "score",
    "score_davis",
    "score_ytvos",
    "seen_categories_from_train",
    "write_davis_csvs",
    "write_report",
    "write_results",
    "write_ytvos_csvs",
]
