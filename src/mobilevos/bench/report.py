"""The report of ``mobilevos bench``: its head (machine, software, settings), one row of
numbers per configuration with its speed-up over the teacher, and the outputs: markdown
tables, a chart of the stages and the JSON report."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mobilevos.bench.machine import cpu_model, versions
from mobilevos.bench.options import TEACHER, BenchOptions
from mobilevos.bench.timing import STAGES, _Run, network_size
from mobilevos.costs import ModelFacts
from mobilevos.formats.verify import mask_iou
from mobilevos.io import atomic_path

SCHEMA = 1
"""Version of the JSON report's layout."""


# ------------------------------------------------------------------------------- the rows


def describe_run(options: BenchOptions, device: torch.device) -> dict[str, Any]:
    """The machine, software and settings of this run: the head of the report."""
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    return {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": str(device),
        "device_name": device_name,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "amp": options.amp,
        "seed": options.seed,
        "versions": versions(),
        "resolution": list(options.size),
        "network_size": list(network_size(options.size)),
        "objects": list(options.objects),
        "frames": options.frames,
        "warmup": options.warmup,
        "teacher_frames": options.timed_frames(TEACHER),
    }


def stats_ms(seconds: list[float]) -> dict[str, float]:
    """p50, p90 and mean of ``seconds``, in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    return {
        "p50": float(np.percentile(ms, 50)),
        "p90": float(np.percentile(ms, 90)),
        "mean": float(ms.mean()),
    }


def summarize(run: _Run, facts: ModelFacts, probe_flops: float) -> dict[str, Any]:
    """One configuration's numbers (milliseconds per frame unless named otherwise).

    ``gflops`` counts a frame written to memory; ``gflops_per_frame_average`` weighs the value
    encoding by the write policy (the teacher writes every 5th frame), and the efficiency uses
    it, since the median frame of a teacher is not written.
    """
    flops = facts.flops[run.objects]
    average = flops["encode_query"] + flops["segment"] + flops["encode_value"] / facts.write_every
    total = stats_ms(run.total)
    with_decode = [a + b for a, b in zip(run.total, run.decode, strict=True)]
    return {
        "model": run.model,
        "backend": run.backend,
        "objects": run.objects,
        "engine_device": str(run.predictor.device),
        "warmup_frames": run.warmup,
        "timed_frames": run.timed,
        "total_ms": total,
        "fps": 1e3 / total["p50"],
        "stages_ms": {stage: stats_ms(run.stages[stage]) for stage in STAGES},
        "decode_ms": stats_ms(run.decode),
        "with_decode_ms": stats_ms(with_decode),
        "params": facts.params,
        "gflops": {stage: n / 1e9 for stage, n in flops.items()},
        "write_every": facts.write_every,
        "gflops_per_frame_average": average / 1e9,
        "efficiency": average / (total["p50"] / 1e3) / probe_flops,
        "memory_bank_bytes": run.predictor.memory.nbytes,
        "peak_rss_mb": run.peak_rss_mb,
        "speedup_vs_teacher": None,
        "samples_ms": {
            "total": [round(s * 1e3, 4) for s in run.total],
            "decode": [round(s * 1e3, 4) for s in run.decode],
        },
    }


def add_speedups(rows: list[dict[str, Any]], teacher: str = TEACHER) -> list[dict[str, Any]]:
    """Set each student's ``speedup_vs_teacher``: the teacher's p50 over the student's, for
    the same backend and object count (None without a teacher row to compare with)."""
    reference = {
        (r["backend"], r["objects"]): r["total_ms"]["p50"] for r in rows if r["model"] == teacher
    }
    for row in rows:
        teacher_p50 = reference.get((row["backend"], row["objects"]))
        if row["model"] != teacher and teacher_p50 is not None:
            row["speedup_vs_teacher"] = teacher_p50 / row["total_ms"]["p50"]
    return rows


def add_agreement(rows: list[dict[str, Any]], runs: list[_Run]) -> list[dict[str, Any]]:
    """Set each row's ``mask_iou_vs_torch``: the mean over its timed frames (and objects) of
    the IoU between its masks and those of the ``torch`` run of the same model and object count
    (None without one), away from the torch run's near-ties, as export verification counts it
    (:func:`~mobilevos.formats.verify.decided_pixels`). Every run segments the same clip from the
    same first-frame masks."""
    torch_runs = {(r.model, r.objects): r for r in runs if r.backend == "torch"}
    for row, run in zip(rows, runs, strict=True):
        reference = torch_runs.get((run.model, run.objects))
        if reference is None:
            row["mask_iou_vs_torch"] = None
            continue
        ids = list(range(1, run.objects + 1))
        pairs = zip(run.labels, reference.labels, reference.decided, strict=True)
        ious = [mask_iou(a, b, ids, where) for a, b, where in pairs]
        row["mask_iou_vs_torch"] = float(np.mean(ious))
    return rows


# ------------------------------------------------------------------------------- outputs


def markdown_report(report: dict[str, Any]) -> str:
    """The report as markdown: a header line, the configurations, the long streams."""
    probe = report["probe"]
    head = (
        f"{report['device']} ({report['device_name'] or 'unknown'}), threads: "
        f"{report['threads']}, torch {report['versions']['torch']}; clip "
        f"{_hw(report['resolution'])} (network {_hw(report['network_size'])}); "
        f"{report['frames']} timed frames after {report['warmup']} warm-up"
    )
    if any(r["model"] == TEACHER for r in report["configs"]):
        head += f" ({TEACHER}: {report['teacher_frames']})"
    head += (
        f"; matmul probe {probe['gflops_median']:.1f} GFLOP/s "
        f"(median of {len(probe['gflops_samples'])})."
    )
    notes = (
        "Milliseconds per frame. Stage columns are p50s; GFLOPs count a frame written to "
        "memory; efficiency = FLOPs per frame (value encoding weighted by the write policy) / "
        "p50 / probe rate; peak RSS is the whole process's."
    )
    lines = ["# mobilevos bench", "", head, "", notes, "", *config_table(report["configs"])]
    if report["long"]:
        long = report["long"]
        lines += ["", f"## Long stream: {long['frames']} frames at {_hw(long['size'])}", ""]
        lines += long_table(long["results"])
    return "\n".join(lines) + "\n"


def config_table(rows: list[dict[str, Any]]) -> list[str]:
    """One markdown row per configuration."""
    header = (
        "| model | backend | K | p50 | p90 | mean | FPS | p50 +decode | pre | query | segment "
        "| value | post | params M | GFLOPs | efficiency | bank KiB | peak RSS MB | vs teacher "
        "| IoU vs torch |"
    )
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    for r in rows:
        total, stages = r["total_ms"], r["stages_ms"]
        speedup = r["speedup_vs_teacher"]
        cells = [
            r["model"], r["backend"], str(r["objects"]),
            *(f"{total[k]:.1f}" for k in ("p50", "p90", "mean")),
            f"{r['fps']:.1f}", f"{r['with_decode_ms']['p50']:.1f}",
            *(f"{stages[s]['p50']:.1f}" for s in STAGES),
            f"{r['params'] / 1e6:.2f}", f"{r['gflops']['frame']:.2f}",
            f"{r['efficiency']:.1%}", f"{r['memory_bank_bytes'] / 1024:.0f}",
            f"{r['peak_rss_mb']:.0f}", "-" if speedup is None else f"{speedup:.1f}x",
            "-" if r.get("mask_iou_vs_torch") is None else f"{r['mask_iou_vs_torch']:.4f}",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def long_table(rows: list[dict[str, Any]]) -> list[str]:
    """One markdown row per long stream."""
    lines = [
        "| model | backend | window (frames) | bank bytes, first window | bank bytes, end "
        "| RSS after first window MB | RSS growth MB | p50 first window ms "
        "| p50 last window ms | last/first |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [
            r["model"], r["backend"], str(r["window"]), str(r["bank_bytes_first"]),
            str(r["bank_bytes_end"]), f"{r['rss_mb_first']:.0f}", f"{r['rss_growth_mb']:+.1f}",
            f"{r['p50_ms_first']:.1f}", f"{r['p50_ms_last']:.1f}", f"{r['latency_ratio']:.2f}",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _hw(size: list[int]) -> str:
    return f"{size[0]}x{size[1]}"


def plot_stages(rows: list[dict[str, Any]], path: Path) -> None:
    """A stacked horizontal bar per configuration: its p50 milliseconds per stage."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 1.6 + 0.4 * len(rows)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    labels = [f"{r['model']} / {r['backend']} / K={r['objects']}" for r in rows]
    left = np.zeros(len(rows))
    for stage in STAGES:
        widths = np.array([r["stages_ms"][stage]["p50"] for r in rows])
        axes.barh(labels, widths, left=left, label=stage)
        left += widths
    axes.invert_yaxis()
    axes.set_xlabel("p50 milliseconds per frame, by stage")
    figure.legend(loc="outside upper center", ncols=len(STAGES), fontsize="small")
    figure.savefig(path, dpi=120)


def plot_long(long: dict[str, Any], path: Path) -> None:
    """The long streams' traces: resident memory and median latency, window by window."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 5), layout="constrained")
    FigureCanvasAgg(figure)
    memory, latency = figure.subplots(2, 1, sharex=True)
    for r in long["results"]:
        frames = [p["frame"] for p in r["trace"]]
        label = f"{r['model']} / {r['backend']}"
        memory.plot(frames, [p["rss_mb"] for p in r["trace"]], label=label)
        latency.plot(frames, [p["p50_ms"] for p in r["trace"]], label=label)
    memory.set_ylabel("resident memory, MB")
    latency.set_ylabel(f"p50 ms of each {long['results'][0]['window']} frames")
    latency.set_xlabel(f"frame ({_hw(long['size'])})")
    memory.legend(fontsize="small")
    figure.savefig(path, dpi=120)


def write_outputs(
    report: dict[str, Any], out_dir: str | Path, json_path: str | Path | None = None
) -> str:
    """Write ``bench.md``, ``bench.png`` (``long.png`` too with long streams) and the JSON
    report (``json_path``, default ``out_dir/bench.json``), each atomically; returns the
    markdown."""
    out_dir = Path(out_dir)
    markdown = markdown_report(report)
    with atomic_path(json_path or out_dir / "bench.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    with atomic_path(out_dir / "bench.md") as tmp:
        tmp.write_text(markdown)
    with atomic_path(out_dir / "bench.png") as tmp:
        plot_stages(report["configs"], tmp)
    if report["long"]:
        with atomic_path(out_dir / "long.png") as tmp:
            plot_long(report["long"], tmp)
    return markdown
