"""Writing scores: the DAVIS toolkit's CSVs and printed tables, and a visual report.

* :func:`write_davis_csvs` writes ``global_results-<split>.csv`` and
  ``per-sequence_results-<split>.csv`` byte for byte as the toolkit does (pandas ``to_csv`` with
  ``float_format="%.3f"``: NaN as an empty field, ``\\n`` line ends), atomically;
* :func:`format_davis_table` renders what the toolkit prints (pandas ``to_string(index=False)``:
  six decimals with common trailing zeros trimmed, scientific notation for a column holding a
  tiny non-zero value, a sign column when a value is negative, right-aligned cells);
* :func:`write_report` draws a per-sequence J&F bar chart and, for the worst sequences, strips
  of frames with the prediction and the ground truth blended side by side.

matplotlib is imported only inside :func:`write_report`, with the Agg backend.
"""

from __future__ import annotations

import csv
import io as _io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from mobilevos.io import atomic_path, blend_labels, read_label_image
from mobilevos.scoring.davis import DAVIS_GLOBAL_COLUMNS, DAVIS_SEQUENCE_COLUMNS, DavisResult
from mobilevos.scoring.results import SequenceScores
from mobilevos.scoring.ytvos import YTVOS_GLOBAL_COLUMNS, YTVOSResult

_CSV_FLOAT = "%.3f"


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """CSV as pandas writes it with ``float_format="%.3f"`` and ``index=False``."""
    buffer = _io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(
            [("" if math.isnan(v) else _CSV_FLOAT % v) if isinstance(v, float) else v for v in row]
        )
    return buffer.getvalue()


def _write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def write_davis_csvs(
    result: DavisResult, out_dir: str | Path, split: str | None = None
) -> tuple[Path, Path]:
    """Write the toolkit's two CSVs into ``out_dir``; returns (global path, per-sequence path)."""
    split = result.split if split is None else split
    out = Path(out_dir)
    g = result.global_row
    global_path = _write_text(
        out / f"global_results-{split}.csv",
        _csv_text(DAVIS_GLOBAL_COLUMNS, [[float(v) for v in g]]),
    )
    rows = [[r.name, float(r.j.mean), float(r.f.mean)] for r in result.objects]
    sequence_path = _write_text(
        out / f"per-sequence_results-{split}.csv", _csv_text(DAVIS_SEQUENCE_COLUMNS, rows)
    )
    return global_path, sequence_path


def write_ytvos_csvs(result: YTVOSResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``global_results-<gt split>.csv`` (Overall, J/F seen/unseen) and
    ``per-object_results-<gt split>.csv`` (Object, Category, Seen, J-Mean, F-Mean)."""
    out = Path(out_dir)
    global_path = _write_text(
        out / f"global_results-{result.gt_split}.csv",
        _csv_text(YTVOS_GLOBAL_COLUMNS, [[float(v) for v in result.summary]]),
    )
    rows = [
        [r.name, r.category or "", "yes" if r.seen else "no", r.j_mean, r.f_mean]
        for r in result.objects
    ]
    object_path = _write_text(
        out / f"per-object_results-{result.gt_split}.csv",
        _csv_text(("Object", "Category", "Seen", "J-Mean", "F-Mean"), rows),
    )
    return global_path, object_path


def _format_float_column(values: Sequence[float]) -> list[str]:
    """Cells of a float column as pandas ``to_string`` renders them (precision 6)."""
    array = np.asarray(values, dtype=np.float64)
    magnitude = np.abs(array[~np.isnan(array)])
    scientific = bool(((magnitude < 1e-6) & (magnitude > 0)).any() or (magnitude > 1e6).any())
    cells = ["NaN" if math.isnan(v) else (f"{v:.6e}" if scientific else f"{v:.6f}") for v in array]
    if not scientific:
        numeric = [i for i, c in enumerate(cells) if c != "NaN"]
        # Drop trailing zeros while every number has one, keeping at least one decimal.
        while numeric and all(cells[i].endswith("0") for i in numeric):
            if any(cells[i].endswith(".0") for i in numeric):
                break
            for i in numeric:
                cells[i] = cells[i][:-1]
    if any(c.startswith("-") for c in cells):
        cells = [c if c.startswith("-") else " " + c for c in cells]
    return cells


def format_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A table laid out as pandas ``DataFrame.to_string(index=False)`` lays it out.

    String columns are as wide as their widest entry; float columns reserve one more character
    than their header; every cell is right-aligned and columns are separated by one space.
    """
    rendered: list[list[str]] = []
    for c, header in enumerate(columns):
        values = [row[c] for row in rows]
        if values and all(isinstance(v, float) for v in values):
            cells = _format_float_column(values)  # type: ignore[arg-type]
            width = max(len(header) + 1, *(len(x) for x in cells))
        else:
            cells = [str(v) for v in values]
            width = max(len(header), *(len(x) for x in cells)) if cells else len(header)
        rendered.append([header.rjust(width)] + [x.rjust(width) for x in cells])
    return "\n".join(" ".join(col[i] for col in rendered) for i in range(len(rows) + 1))


def format_davis_table(result: DavisResult, split: str | None = None) -> str:
    """The global and per-sequence tables as ``evaluation_method.py`` prints them."""
    split = result.split if split is None else split
    global_table = format_table(DAVIS_GLOBAL_COLUMNS, [[float(v) for v in result.global_row]])
    rows = [[r.name, float(r.j.mean), float(r.f.mean)] for r in result.objects]
    sequence_table = format_table(DAVIS_SEQUENCE_COLUMNS, rows)
    return (
        f"--------------------------- Global results for {split} ---------------------------\n"
        f"{global_table}\n\n"
        f"---------- Per sequence results for {split} ----------\n"
        f"{sequence_table}\n"
    )


def format_ytvos_table(result: YTVOSResult) -> str:
    """Challenge-style summary followed by the per-object table."""
    summary = format_table(YTVOS_GLOBAL_COLUMNS, [[float(v) for v in result.summary]])
    rows = [
        [r.name, r.category or "-", "yes" if r.seen else "no", r.j_mean, r.f_mean]
        for r in result.objects
    ]
    objects = format_table(("Object", "Category", "Seen", "J-Mean", "F-Mean"), rows)
    return (
        f"---------- YouTube-VOS results for {result.gt_split} ----------\n{summary}\n\n"
        f"---------- Per object results for {result.gt_split} ----------\n{objects}\n"
    )


def _load_image(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """The frame behind an overlay, or mid-grey when its JPEG is missing or of another size."""
    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        if rgb.shape[:2] == shape:
            return rgb
    except OSError:
        pass
    return np.full((*shape, 3), 128, dtype=np.uint8)


def _strip(scores: SequenceScores, n_frames: int, max_width: int) -> Image.Image:
    """Rows of [prediction overlay | ground-truth overlay] for evenly spaced scored frames."""
    picks = np.unique(np.linspace(0, len(scores.frames) - 1, n_frames).round().astype(int))
    rows = []
    for t in picks:
        gt = read_label_image(scores.gt_paths[t])
        pred = read_label_image(scores.pred_paths[t])
        image = _load_image(scores.image_paths[t], gt.shape)
        pair = np.concatenate([blend_labels(image, pred), blend_labels(image, gt)], axis=1)
        rows.append(pair)
    strip = Image.fromarray(np.concatenate(rows, axis=0))
    if strip.width > max_width:
        height = round(strip.height * max_width / strip.width)
        strip = strip.resize((max_width, height), Image.Resampling.BILINEAR)
    return strip


def write_results(
    result: DavisResult | YTVOSResult, out_dir: str | Path, report: bool = False
) -> tuple[Path, ...]:
    """The result's CSVs under ``out_dir`` (:func:`write_davis_csvs` or
    :func:`write_ytvos_csvs`), and with ``report`` its :func:`write_report`; the paths written."""
    if isinstance(result, DavisResult):
        written: tuple[Path, ...] = write_davis_csvs(result, out_dir)
    else:
        written = write_ytvos_csvs(result, out_dir)
    if report:
        written = (*written, *write_report(result, out_dir))
    return written


def write_report(
    result: DavisResult | YTVOSResult,
    out_dir: str | Path,
    worst: int = 5,
    frames: int = 4,
    max_width: int = 1280,
) -> list[Path]:
    """Write ``report/jf_per_sequence.png`` and ``report/worst_<rank>_<seq>.png`` strips.

    The chart shows each sequence's J&F (mean over its objects of (J + F) / 2), sorted. Each strip
    stacks ``frames`` evenly spaced scored frames, prediction left and ground truth right.
    Returns the written paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    out = Path(out_dir) / "report"
    ranked = sorted(result.sequences, key=lambda s: (s.jf, s.name))
    names, values = [s.name for s in ranked], [s.jf for s in ranked]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(ranked) + 2), 4.5))
    ax.bar(range(len(values)), values, color="#4c72b0")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("J&F")
    ax.set_title(f"J&F per sequence (mean {np.nanmean(values):.3f})" if values else "J&F")
    fig.tight_layout()
    chart = out / "jf_per_sequence.png"
    with atomic_path(chart) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    written = [chart]
    for rank, scores in enumerate(ranked[:worst], start=1):
        if not scores.frames:
            continue
        path = out / f"worst_{rank}_{scores.name}.png"
        image = _strip(scores, frames, max_width)
        with atomic_path(path) as tmp:
            image.save(tmp, format="PNG")
        written.append(path)
    return written
