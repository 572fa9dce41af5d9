"""The run of ``mobilevos bench``: the whole measurement, in order, into the report."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch

from mobilevos.bench.machine import peak_rss_mb
from mobilevos.bench.options import BenchOptions
from mobilevos.bench.report import add_agreement, add_speedups, describe_run, summarize
from mobilevos.bench.timing import (
    PredictorFactory,
    build_runs,
    make_clip,
    network_size,
    run_long_streams,
    run_rounds,
)
from mobilevos.costs import model_facts
from mobilevos.device import resolve_device
from mobilevos.io import write_video


def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Measure every configuration of ``options``; returns the report (a JSON-ready dict).

    Torch's thread count is set to ``options.threads`` for the run and restored after.
    """
    device = resolve_device(options.device)
    previous_threads = torch.get_num_threads()
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    try:
        with tempfile.TemporaryDirectory(prefix="mobilevos-bench-") as tmp:
            return _measure(options, device, Path(tmp))
    finally:
        torch.set_num_threads(previous_threads)


def _measure(options: BenchOptions, device: torch.device, workdir: Path) -> dict[str, Any]:
    report = describe_run(options, device)
    length = options.warmup + options.frames
    clip = make_clip(options.size, length, max(options.objects), options.seed)
    clip_path = workdir / "clip.mp4"
    write_video(clip_path, clip.frames)
    net = network_size(options.size)
    facts = {m: model_facts(m, options.objects, net) for m in options.models}
    factory = PredictorFactory(options, workdir)
    with contextlib.ExitStack() as stack:
        runs = build_runs(factory, clip, clip_path, stack)
        probes = run_rounds(runs, options, device)
    probe = statistics.median(probes)
    report["probe"] = {
        "kind": "torch fp32 matmul",
        "size": options.probe_size,
        "gflops_median": probe / 1e9,
        "gflops_samples": [p / 1e9 for p in probes],
    }
    rows = add_speedups([summarize(run, facts[run.model], probe) for run in runs])
    report["configs"] = add_agreement(rows, runs)
    del runs  # free the configurations' memory banks before the long streams
    report["long"] = run_long_streams(factory) if options.long else None
    report["peak_rss_mb"] = peak_rss_mb()
    return report
