"""What a change of the per-frame graphs does to their speed: the code before it against this
checkout's, timed side by side in one process, under ONNX Runtime or ExecuTorch.

    .venv/bin/python scripts/readout_ab.py [--before a574d12^] [--format onnx] [--size 480x864] \
        [--objects 1,3]

The readout, the soft aggregation, the attention pools and the per-object broadcasts were
rewritten so that every operator of an ExecuTorch program runs inside XNNPACK (issue #26,
src/mobilevos/model/readout.py). The same graphs are what ONNX Runtime runs, so this script
measures what the change does there. The shared softmax of several objects (the same file) and
the objects combined at stride 4 (``aggregate_at``, with the mask branch's pooling moved first)
were measured with it too, ``--before`` the commit before each, under both runtimes. It exports
each shipped student's ``encode_value`` and ``segment`` graphs (fp32, ``--format``) with the
code and the checkpoint of ``--before`` (a git revision, checked out into a temporary worktree
and run in a subprocess) and with this checkout's, at the same size and object count, then
times the two programs of each graph run by run in alternation (``--rounds`` rounds of
``--frames`` runs each, the side that goes first changing every round; random inputs of the
manifest's shapes, valid slots all set) and reports medians, their ratio, and a matmul probe
beside them. ``encode_value`` is the control where a change leaves it as it was: its ratio
shows the measurement's own noise. Writes ``readout_ab.json`` and ``readout_ab.md`` into
``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
STUDENTS = ("mobilevos-mbv2-fast", "mobilevos-mbv2-lite")
VERBS = ("encode_value", "segment")
EXPORT = """
import sys
from mobilevos.checkpoint import load_model
from mobilevos.formats.export import export_model
export_model(load_model(sys.argv[1]), sys.argv[2], (int(sys.argv[3]), int(sys.argv[4])),
             int(sys.argv[5]), format=sys.argv[6], verify=False)
"""


def export_before(
    revision: str, work: Path, jobs: list[tuple[str, Path, tuple, int]], fmt: str
) -> None:
    """Export every job with the code of ``revision`` (its own ``mobilevos`` on PYTHONPATH)
    and the student's checkpoint as that revision shipped it (same weights; its config is
    one that revision reads)."""
    tree = work / "before"
    add = ["git", "worktree", "add", "--detach", str(tree), revision]
    subprocess.run(add, cwd=ROOT, check=True, capture_output=True)
    try:
        env = {**os.environ, "PYTHONPATH": str(tree / "src")}
        for name, out, size, objects in jobs:
            checkpoint = tree / "src" / "mobilevos" / "assets" / f"{name}.ckpt"
            argv = [sys.executable, "-c", EXPORT, str(checkpoint), str(out), *map(str, size)]
            subprocess.run([*argv, str(objects), fmt], env=env, check=True, capture_output=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=True)


def export_after(jobs: list[tuple[str, Path, tuple, int]], fmt: str) -> None:
    from mobilevos.checkpoint import load_model
    from mobilevos.formats.export import export_model

    for name, out, size, objects in jobs:
        export_model(load_model(name), out, size, objects, format=fmt, verify=False)


def program(folder: Path, verb: str, fmt: str, threads: int) -> Callable[[], object]:
    """One run of the verb's program on random feeds of its manifest's shapes (masks all
    ones), as a call."""
    manifest = json.loads((folder / "manifest.json").read_text())
    graph = manifest["graphs"][verb]
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in graph["inputs"]:
        if spec["dtype"] == "bool" or spec["name"] in ("valid", "present", "masks"):
            value = np.ones(spec["shape"], dtype=spec["dtype"])
        else:
            value = rng.standard_normal(spec["shape"]).astype(np.float32)
        feeds[spec["name"]] = value
    if fmt == "executorch":
        import torch
        from executorch.runtime import Runtime

        from mobilevos.formats.executorch import thread_count

        thread_count(threads)
        method = Runtime.get().load_program(folder / graph["file"]).load_method("forward")
        inputs = [torch.from_numpy(value) for value in feeds.values()]
        return lambda: method.execute(inputs)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # Each session has its own threads; spinning after a run, they would slow the other's.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(folder / graph["file"]), options, ["CPUExecutionProvider"])
    return lambda: sess.run(None, feeds)


def probe(seconds: float = 0.3) -> float:
    """numpy's fp32 matmul rate now, GFLOP/s (a machine-speed probe beside the timings)."""
    a = np.random.default_rng(1).standard_normal((512, 512)).astype(np.float32)
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ a
        runs += 1
    return 2 * 512**3 * runs / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="a574d12^", help="git revision before the change")
    parser.add_argument("--format", default="onnx", choices=("onnx", "executorch"))
    parser.add_argument("--size", default="480x864", help="network size HxW (multiple of 16)")
    parser.add_argument("--objects", default="1,3")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=10, help="runs per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "readout-ab")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    counts = [int(v) for v in args.objects.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = [(name, k) for name in STUDENTS for k in counts]
        before_jobs = [(n, work / f"b-{n}-{k}", size, k) for n, k in cases]
        export_before(args.before, work, before_jobs, args.format)
        export_after([(n, work / f"a-{n}-{k}", size, k) for n, k in cases], args.format)
        probes = []
        for name, k in cases:
            for verb in VERBS:
                pair = {
                    side: program(work / f"{side[0]}-{name}-{k}", verb, args.format, args.threads)
                    for side in ("before", "after")
                }
                times = {side: [] for side in pair}
                for run in pair.values():
                    run()  # warm-up
                for round_ in range(args.rounds):
                    probes.append(probe())
                    time.sleep(1)  # the probe's BLAS threads spin on for a while after it
                    # Run by run, the side that goes first changing every round.
                    sides = list(pair) if round_ % 2 == 0 else list(pair)[::-1]
                    for _ in range(args.frames):
                        for side in sides:
                            start = time.perf_counter()
                            pair[side]()
                            times[side].append((time.perf_counter() - start) * 1e3)
                before, after = (statistics.median(times[s]) for s in ("before", "after"))
                rows.append(
                    {
                        "model": name,
                        "objects": k,
                        "graph": verb,
                        "before_ms": round(before, 2),
                        "after_ms": round(after, 2),
                        "after_over_before": round(after / before, 3),
                    }
                )
                print(rows[-1], flush=True)
    runtime = f"ONNX Runtime {ort.__version__}"
    if args.format == "executorch":
        from importlib.metadata import version

        runtime = f"ExecuTorch {version('executorch')} (XNNPACK)"
    report = {
        "before": args.before,
        "runtime": runtime,
        "size": list(size),
        "threads": args.threads,
        "probe_gflops_median": round(statistics.median(probes), 1),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "readout_ab.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"{runtime}, fp32, {args.threads} threads, network {size[0]}x{size[1]}; "
        f"before = {args.before}; medians of {args.rounds} x {args.frames} alternating runs; "
        f"matmul probe {report['probe_gflops_median']} GFLOP/s (median).",
        "",
        "| model | objects | graph | before ms | after ms | after / before |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['model']} | {r['objects']} | {r['graph']} | {r['before_ms']} | "
            f"{r['after_ms']} | {r['after_over_before']} |"
            for r in rows
        ),
    ]
    (args.out / "readout_ab.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
