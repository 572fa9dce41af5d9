"""``mobilevos bench``: the report's contract, its invariants and its one-line errors.

One tiny run (``mobilevos-tiny``, a 48x80 clip, objects 1 and 2, both torch backends, three
timed frames and a 150-frame long stream at 32x48) is shared by the tests of the report. No
test checks a wall-clock number: only that each is there, finite and positive, and the
relations that hold whatever the machine (FLOPs grow with objects, stages add up to the frame,
a finite memory does not grow).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch

from mobilevos.bench import (
    FLOP_STAGES,
    STAGES,
    TEACHER,
    BenchOptions,
    add_speedups,
    count_flops,
)
from mobilevos.cli import main

MODEL = "mobilevos-tiny"
BACKENDS = ("torch", "torch-contiguous", "auto")
OBJECTS = (1, 2)
FRAMES, WARMUP, LONG = 3, 1, 150

TOP_KEYS = {
    "schema", "created", "device", "device_name", "cpu_model", "cpu_count", "threads", "amp",
    "seed", "versions", "resolution", "network_size", "objects", "frames", "warmup",
    "teacher_frames", "probe", "configs", "long", "peak_rss_mb",
}  # fmt: skip
CONFIG_KEYS = {
    "model", "backend", "objects", "engine_device", "warmup_frames", "timed_frames", "total_ms",
    "fps", "stages_ms", "decode_ms", "with_decode_ms", "params", "gflops", "write_every",
    "gflops_per_frame_average", "efficiency", "memory_bank_bytes", "peak_rss_mb",
    "speedup_vs_teacher", "samples_ms", "mask_iou_vs_torch",
}  # fmt: skip
LONG_KEYS = {
    "model", "backend", "window", "bank_bytes_first", "bank_bytes_end", "bank_constant",
    "rss_mb_first", "rss_mb_end", "rss_growth_mb", "p50_ms_first", "p50_ms_last",
    "latency_ratio", "trace",
}  # fmt: skip
STATS = {"p50", "p90", "mean"}


class BenchRun(NamedTuple):
    report: dict[str, Any]
    out_dir: Path
    json_path: Path
    stdout: str
    threads_before: int
    threads_after: int


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> BenchRun:
    """The tiny run, through the command line (in-process)."""
    root = tmp_path_factory.mktemp("bench")
    out_dir, json_path = root / "results", root / "report.json"
    argv = [
        "bench", "--models", MODEL, "--backends", ",".join(BACKENDS), "--size", "48x80",
        "--objects", ",".join(map(str, OBJECTS)), "--frames", str(FRAMES),
        "--warmup", str(WARMUP), "--long", str(LONG), "--long-size", "32x48",
        "--threads", "1", "--out", str(out_dir), "--json", str(json_path), "--quiet",
    ]  # fmt: skip
    threads_before = torch.get_num_threads()
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(argv) == 0
    report = json.loads(json_path.read_text())
    return BenchRun(
        report, out_dir, json_path, stdout.getvalue(), threads_before, torch.get_num_threads()
    )


def numbers(value: Any, path: str = "") -> list[tuple[str, float]]:
    """Every number in a JSON value, with its path (booleans are not numbers here)."""
    if isinstance(value, dict):
        return [n for key, item in value.items() for n in numbers(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [n for i, item in enumerate(value) for n in numbers(item, f"{path}[{i}]")]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [(path, value)]
    return []


# ------------------------------------------------------------------------------ the report


def test_report_has_every_field(bench_run: BenchRun) -> None:
    report = bench_run.report
    assert set(report) == TOP_KEYS
    assert report["device"] == "cpu" and report["threads"] == 1 and report["amp"] is False
    assert set(report["versions"]) == {"python", "torch", "onnxruntime", "mobilevos"}
    assert report["versions"]["torch"] == torch.__version__
    assert report["resolution"] == [48, 80] and report["objects"] == list(OBJECTS)
    assert set(report["probe"]) == {"kind", "size", "gflops_median", "gflops_samples"}
    assert len(report["probe"]["gflops_samples"]) == WARMUP + FRAMES  # one per round
    configs = report["configs"]
    assert [(c["model"], c["backend"], c["objects"]) for c in configs] == [
        (MODEL, b, k) for b in BACKENDS for k in OBJECTS
    ]
    for config in configs:
        assert set(config) == CONFIG_KEYS
        assert set(config["stages_ms"]) == set(STAGES)
        for stats in (config["total_ms"], config["decode_ms"], config["with_decode_ms"]):
            assert set(stats) == STATS
        assert all(set(s) == STATS for s in config["stages_ms"].values())
        assert set(config["gflops"]) == {*FLOP_STAGES, "frame"}
        assert config["speedup_vs_teacher"] is None  # no teacher in this run
        assert config["timed_frames"] == FRAMES == len(config["samples_ms"]["total"])
        # Every backend's masks against torch's on the same clip: torch itself agrees exactly,
        # the same network in another memory layout to float rounding.
        agreement = config["mask_iou_vs_torch"]
        assert agreement == 1.0 if config["backend"] == "torch" else agreement >= 0.99


def test_every_number_is_finite_and_positive(bench_run: BenchRun) -> None:
    found = numbers(bench_run.report)
    assert len(found) > 100
    # RSS growth is a difference (may be 0 or negative) and the seed a label; every other
    # number is a measure.
    signed = {".seed"} | {p for p, _ in found if p.endswith(".rss_growth_mb")}
    bad = [(p, v) for p, v in found if not math.isfinite(v) or (v <= 0 and p not in signed)]
    assert not bad


def test_derived_numbers_agree(bench_run: BenchRun) -> None:
    probe = bench_run.report["probe"]["gflops_median"] * 1e9
    for config in bench_run.report["configs"]:
        p50_ms = config["total_ms"]["p50"]
        assert config["fps"] == pytest.approx(1e3 / p50_ms)
        flops = config["gflops_per_frame_average"] * 1e9
        assert config["efficiency"] == pytest.approx(flops / (p50_ms / 1e3) / probe)
        # Stages are timed inside step(), the total around it: on average they fit inside.
        stage_sum = sum(s["mean"] for s in config["stages_ms"].values())
        assert stage_sum <= config["total_ms"]["mean"] * (1 + 1e-9)
        assert config["with_decode_ms"]["mean"] == pytest.approx(
            config["total_ms"]["mean"] + config["decode_ms"]["mean"]
        )
        assert config["gflops_per_frame_average"] == pytest.approx(config["gflops"]["frame"])


def test_outputs_are_written_and_the_table_printed(bench_run: BenchRun) -> None:
    markdown = (bench_run.out_dir / "bench.md").read_text()
    assert bench_run.stdout == markdown
    assert not (bench_run.out_dir / "bench.json").exists()  # --json put it elsewhere
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {MODEL} |")]
    assert len(rows) == len(BACKENDS) * len(OBJECTS) + len(BACKENDS)  # + long-stream rows
    for picture in ("bench.png", "long.png"):
        png = (bench_run.out_dir / picture).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert not [p for p in bench_run.out_dir.iterdir() if p.name.startswith(".")]  # no temps


def test_thread_count_is_restored(bench_run: BenchRun) -> None:
    assert bench_run.report["threads"] == 1
    assert bench_run.threads_after == bench_run.threads_before


def test_long_stream_memory_stays_the_same(bench_run: BenchRun) -> None:
    long = bench_run.report["long"]
    assert long["frames"] == LONG and long["size"] == [32, 48]
    assert [(r["model"], r["backend"]) for r in long["results"]] == [(MODEL, b) for b in BACKENDS]
    for result in long["results"]:
        assert set(result) == LONG_KEYS
        assert result["bank_constant"] is True
        assert result["bank_bytes_first"] == result["bank_bytes_end"] > 0
        # One trace point per window of a tenth of the stream, the first and last reported.
        assert result["window"] == LONG // 10
        assert [p["frame"] for p in result["trace"]] == list(range(15, LONG + 1, 15))
        assert result["p50_ms_first"] == result["trace"][0]["p50_ms"]
        assert result["rss_mb_end"] == result["trace"][-1]["rss_mb"]


def test_memory_bank_grows_with_objects(bench_run: BenchRun) -> None:
    by_objects = {c["objects"]: c["memory_bank_bytes"] for c in bench_run.report["configs"]}
    assert by_objects[2] > by_objects[1]


# ----------------------------------------------------------------------------------- FLOPs


def test_flops_grow_with_objects_and_stages_add_up(tiny_model) -> None:
    one, two = (count_flops(tiny_model, k, (48, 80), torch.device("cpu")) for k in (1, 2))
    for flops in (one, two):
        assert set(flops) == {*FLOP_STAGES, "frame"}
        assert all(flops[stage] > 0 for stage in FLOP_STAGES)
        assert flops["frame"] == sum(flops[stage] for stage in FLOP_STAGES)
    assert two["encode_query"] == one["encode_query"]  # shared by all objects
    assert two["segment"] > one["segment"]
    assert two["encode_value"] > one["encode_value"]


def test_report_flops_grow_with_objects(bench_run: BenchRun) -> None:
    gflops = {c["objects"]: c["gflops"] for c in bench_run.report["configs"]}
    assert gflops[2]["segment"] > gflops[1]["segment"]
    for counts in gflops.values():
        assert counts["frame"] == pytest.approx(sum(counts[s] for s in FLOP_STAGES))


# ---------------------------------------------------------------------- teacher and options


def _row(model: str, backend: str, objects: int, p50: float) -> dict[str, Any]:
    return {
        "model": model,
        "backend": backend,
        "objects": objects,
        "total_ms": {"p50": p50},
        "speedup_vs_teacher": None,
    }


def test_speedup_compares_the_same_backend_and_object_count() -> None:
    rows = add_speedups(
        [
            _row(TEACHER, "torch", 1, 7000.0),
            _row(TEACHER, "torch", 3, 9000.0),
            _row("mobilevos-mbv2-lite", "torch", 1, 70.0),
            _row("mobilevos-mbv2-lite", "torch", 3, 90.0),
            _row("mobilevos-mbv2-lite", "onnx", 1, 35.0),  # no onnx teacher row
        ]
    )
    assert [r["speedup_vs_teacher"] for r in rows] == [None, None, 100.0, 100.0, None]


def test_teacher_runs_fewer_timed_frames() -> None:
    options = BenchOptions(models=(MODEL,), frames=20, teacher_frames=5)
    assert options.timed_frames(TEACHER) == 5
    assert options.timed_frames(MODEL) == 20
    assert BenchOptions(models=(MODEL,), frames=3, teacher_frames=5).timed_frames(TEACHER) == 3


# ------------------------------------------------------------------------------ CLI errors


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--size", "480by854"], "--size must look like 480x854"),
        (["--long-size", "120"], "--long-size must look like 480x854"),
        (["--backends", "torch,tf"], "unknown backend 'tf'"),
        (["--models", "mobilevos-nano"], "unknown preset 'mobilevos-nano'"),
        (["--objects", "0"], "--objects must be in 1..254"),
        (["--objects", "1,x"], "--objects must be comma-separated integers"),
        (["--warmup", "0"], "--warmup must be >= 1"),
        (["--long", "50"], "--long must be 0 (off) or >= 120"),
        (["--amp"], "--amp needs a CUDA device"),
    ],
)
def test_bad_input_is_one_error_line(
    argv: list[str], fragment: str, tmp_path: Path, capsys
) -> None:
    if argv == ["--amp"] and torch.cuda.is_available():
        pytest.skip("CUDA is available: --amp is valid here")
    out_dir = tmp_path / "results"
    code = main(["bench", "--models", MODEL, *argv, "--out", str(out_dir), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
    assert "Traceback" not in err and out == ""
    assert not out_dir.exists()
