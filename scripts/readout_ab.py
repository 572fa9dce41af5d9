"""What writing the per-frame graphs for XNNPACK did under ONNX Runtime: before against after,
timed side by side in one process.

    .venv/bin/python scripts/readout_ab.py [--before a574d12^] [--size 480x864] [--objects 1,3]

The readout, the soft aggregation, the attention pools and the per-object broadcasts were
rewritten so that every operator of an ExecuTorch program runs inside XNNPACK (issue #26,
src/mobilevos/model/readout.py). The same graphs are what ONNX Runtime runs, so this script
measures what the change does there: it exports each shipped student's ``encode_value`` and
``segment`` graphs with the code of ``--before`` (a git revision, checked out into a temporary
worktree and run in a subprocess) and with this checkout's code, at the same size and object
count and from the same weights, then times the two ONNX Runtime sessions of each graph in
alternation (``--rounds`` rounds of ``--frames`` runs each, random inputs of the manifest's
shapes, valid slots all set) and reports medians, their ratio, and a matmul probe beside them.
Writes ``readout_ab.json`` and ``readout_ab.md`` into ``--out``.
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
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
STUDENTS = ("mobilevos-mbv2-fast", "mobilevos-mbv2-lite")
VERBS = ("encode_value", "segment")
EXPORT = """
import sys
from mobilevos.checkpoint import load_model
from mobilevos.formats.export import export_onnx
export_onnx(load_model(sys.argv[1]), sys.argv[2], (int(sys.argv[3]), int(sys.argv[4])),
            int(sys.argv[5]), verify=False)
"""


def export_before(revision: str, work: Path, jobs: list[tuple[str, Path, tuple, int]]) -> None:
    """Export every job with the code of ``revision`` (its own ``mobilevos`` on PYTHONPATH)."""
    tree = work / "before"
    add = ["git", "worktree", "add", "--detach", str(tree), revision]
    subprocess.run(add, cwd=ROOT, check=True, capture_output=True)
    try:
        env = {**os.environ, "PYTHONPATH": str(tree / "src")}
        for checkpoint, out, size, objects in jobs:
            argv = [sys.executable, "-c", EXPORT, checkpoint, str(out), *map(str, size)]
            subprocess.run([*argv, str(objects)], env=env, check=True, capture_output=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=True)


def export_after(jobs: list[tuple[str, Path, tuple, int]]) -> None:
    from mobilevos.checkpoint import load_model
    from mobilevos.formats.export import export_onnx

    for checkpoint, out, size, objects in jobs:
        export_onnx(load_model(checkpoint), out, size, objects, verify=False)


def session(folder: Path, verb: str, threads: int) -> tuple[ort.InferenceSession, dict]:
    """The verb's session and random feeds of its manifest's shapes (masks all ones)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    graph = manifest["graphs"][verb]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(folder / graph["file"]), options, ["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in graph["inputs"]:
        if spec["dtype"] == "bool" or spec["name"] in ("valid", "present", "masks"):
            value = np.ones(spec["shape"], dtype=spec["dtype"])
        else:
            value = rng.standard_normal(spec["shape"]).astype(np.float32)
        feeds[spec["name"]] = value
    return sess, feeds


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
    parser.add_argument("--size", default="480x864", help="network size HxW (multiple of 16)")
    parser.add_argument("--objects", default="1,3")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=10, help="runs per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "readout-ab")
    args = parser.parse_args()
    from mobilevos.checkpoint import shipped_checkpoint

    size = tuple(int(v) for v in args.size.split("x"))
    counts = [int(v) for v in args.objects.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = [(name, k) for name in STUDENTS for k in counts]
        checkpoints = {name: str(shipped_checkpoint(name)) for name in STUDENTS}
        export_before(
            args.before, work, [(checkpoints[n], work / f"b-{n}-{k}", size, k) for n, k in cases]
        )
        export_after([(checkpoints[n], work / f"a-{n}-{k}", size, k) for n, k in cases])
        probes = []
        for name, k in cases:
            for verb in VERBS:
                pair = {
                    side: session(work / f"{side[0]}-{name}-{k}", verb, args.threads)
                    for side in ("before", "after")
                }
                times = {side: [] for side in pair}
                for sess, feeds in pair.values():
                    sess.run(None, feeds)  # warm-up
                for _ in range(args.rounds):
                    probes.append(probe())
                    for side, (sess, feeds) in pair.items():
                        for _ in range(args.frames):
                            start = time.perf_counter()
                            sess.run(None, feeds)
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
    report = {
        "before": args.before,
        "size": list(size),
        "threads": args.threads,
        "probe_gflops_median": round(statistics.median(probes), 1),
        "onnxruntime": ort.__version__,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "readout_ab.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"ONNX Runtime {ort.__version__}, {args.threads} threads, network {size[0]}x{size[1]}; "
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
