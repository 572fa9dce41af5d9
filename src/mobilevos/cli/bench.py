"""``mobilevos bench``: per-frame latency of the streaming predictor, side by side
(:func:`mobilevos.bench.run_bench`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mobilevos.cli.common import parse_counts, parse_names, parse_size


def add_bench(sub: argparse._SubParsersAction) -> None:
    from mobilevos.bench import BACKENDS

    p = sub.add_parser("bench", help="per-frame latency of the streaming predictor, side by side")
    p.add_argument(
        "--models", default="mobilevos-mbv2-lite,mobilevos-mbv2,mobilevos-r18,teacher-r50"
    )
    p.add_argument(
        "--backends", default="torch", help=f"comma-separated, of: {', '.join(BACKENDS)}"
    )
    p.add_argument("--size", default="480x854", help="clip size HxW (default 480x854)")
    p.add_argument("--objects", default="1,3", help="object counts to measure (default 1,3)")
    p.add_argument("--frames", type=int, default=20, help="timed frames per configuration")
    p.add_argument("--warmup", type=int, default=3, help="untimed frames first (default 3)")
    p.add_argument("--teacher-frames", type=int, default=5, help="timed frames of teacher-r50")
    p.add_argument("--long", type=int, default=0, help="frames of a long-stream check (0: off)")
    p.add_argument("--long-size", default="120x216", help="frame size of the long stream")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="fp16 autocast for torch (CUDA only)")
    p.add_argument("--threads", type=int, help="torch, ONNX Runtime and ExecuTorch threads")
    p.add_argument("--json", type=Path, help="JSON report path (default OUT/bench.json)")
    p.add_argument("--out", type=Path, default=Path("bench-results"), help="bench.md, bench.png")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    from mobilevos.bench import BenchOptions, run_bench, write_outputs

    options = BenchOptions(
        models=parse_names(args.models, "--models"),
        backends=parse_names(args.backends, "--backends"),
        size=parse_size(args.size, "--size"),
        objects=parse_counts(args.objects, "--objects"),
        frames=args.frames,
        warmup=args.warmup,
        teacher_frames=args.teacher_frames,
        long=args.long,
        long_size=parse_size(args.long_size, "--long-size"),
        device=args.device,
        amp=args.amp,
        threads=args.threads,
        progress=not args.quiet,
    )
    print(write_outputs(run_bench(options), args.out, args.json), end="")
    return 0
