"""Which terms of the distillation loss help the student, at an equal number of steps.

    python scripts/distill_sweep.py --device cuda --jobs 4              # every variant, one GPU
    python scripts/distill_sweep.py --variants seg,repr-64 --seeds 0,1  # a subset, two seeds

A companion to ``scripts/reproduce_distillation.py``, which compares students at equal wall
time on the CPU. Here every variant trains the same ``mobilevos-mbv2-lite`` student with the
same recipe (``configs/repro/``) for the same ``--steps`` and only the loss changes:

* ``seg``: segmentation loss only;
* ``distill``: the reproduction's distillation (ω = 0.5, L_repr weight 256, L_logit weight 1);
* ``logit-only``, ``repr-only``: one distillation term at a time;
* ``repr-64``: the representation loss at a quarter of its weight;
* ``omega-1``: pure relational distillation (no label term in the target);
* ``contrastive``: ω = 0, pixel-wise supervised contrastive learning without a teacher.

The teacher is the reproduction's (``runs/repro/teacher/final.ckpt``; ``--teacher`` to change).
Each variant runs once per ``--seeds`` entry, ``--jobs`` runs at a time in parallel processes,
and is scored on the held-out synthetic videos; a finished run is not rerun. The table covers
every finished run in ``--runs``, one row per run with its variant's mean over seeds, and goes
to ``--results`` (``results.json``, ``table.md``). Compare a gap with the seed-to-seed spread:
GPU runs are not even bit-reproducible, and short runs vary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from reproduce_distillation import ROOT, Paths, render_data, run_overrides, score

from mobilevos.checkpoint import read_checkpoint
from mobilevos.train import Trainer
from mobilevos.train.config import load_train_config

VARIANTS = {
    # name: (recipe in configs/repro/, overrides)
    "seg": ("student-seg.yaml", []),
    "distill": ("student-distill.yaml", []),
    "logit-only": ("student-distill.yaml", ["loss.repr_weight=0"]),
    "repr-only": ("student-distill.yaml", ["loss.logit_weight=0"]),
    "repr-64": ("student-distill.yaml", ["loss.repr_weight=64"]),
    "omega-1": ("student-distill.yaml", ["loss.omega=1"]),
    "contrastive": ("student-seg.yaml", ["loss.repr_weight=256"]),
}


def run_name(variant: str, seed: int) -> str:
    return f"{variant}-seed{seed}"


def run_variant(args: argparse.Namespace, variant: str, seed: int) -> None:
    """Train one variant with one seed (resuming if interrupted); score it into ``row.json``."""
    paths = Paths(smoke=False)
    recipe, overrides = VARIANTS[variant]
    run_dir = args.runs / run_name(variant, seed)
    overrides = [
        *overrides,
        *run_overrides(recipe, paths.data, run_dir, args.teacher),
        f"seed={seed}",
        f"steps={args.steps}",
        f"device={args.device}",
        f"num_workers={args.workers}",
    ]
    config = load_train_config(ROOT / "configs" / "repro" / recipe, overrides)
    final = run_dir / "final.ckpt"
    if not final.is_file():
        Trainer(config, resume=(run_dir / "last.pt").is_file()).run()
    meta = read_checkpoint(final).meta
    row = {
        "variant": variant,
        "overrides": VARIANTS[variant][1],
        "steps": meta["steps"],
        "seed": seed,
        "device": meta["train_config"]["device"],  # where it trained (scored on --device)
        **score(paths.data, final, run_dir / "eval", device=args.device),
    }
    (run_dir / "row.json").write_text(json.dumps(row, indent=2))


def launch(args: argparse.Namespace, runs: list[tuple[str, int]]) -> None:
    """Train each missing (variant, seed) in its own process, ``--jobs`` at a time."""
    pending = [r for r in runs if not (args.runs / run_name(*r) / "row.json").is_file()]
    running: list[tuple[str, subprocess.Popen]] = []
    while pending or running:
        while pending and len(running) < args.jobs:
            variant, seed = pending.pop(0)
            name = run_name(variant, seed)
            (args.runs / name).mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, __file__, f"--one={variant}", f"--seeds={seed}"]
            cmd += [f"--{k}={getattr(args, k)}" for k in ("steps", "device", "workers", "teacher")]
            cmd.append(f"--runs={args.runs}")
            with open(args.runs / name / "sweep.log", "w") as log:  # the child keeps its own copy
                child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            running.append((name, child))
            print(f"started {name}", flush=True)
        time.sleep(2)
        for item in list(running):
            name, child = item
            if child.poll() is not None:
                running.remove(item)
                status = "done" if child.returncode == 0 else f"FAILED ({child.returncode})"
                print(f"{name}: {status}, log in {args.runs / name / 'sweep.log'}", flush=True)


def write_table(args: argparse.Namespace) -> None:
    """results.json and table.md over every finished run in ``--runs``, with each variant's mean."""
    found = [json.loads(f.read_text()) for f in args.runs.glob("*/row.json")]
    found.sort(key=lambda r: (list(VARIANTS).index(r["variant"]), r["seed"]))
    rows = {run_name(r["variant"], r["seed"]): r for r in found}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "results.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "| variant | overrides | seed | J&F | J | F | variant's mean J&F | steps | device |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows.values():
        same = [o["jf"] for o in rows.values() if o["variant"] == r["variant"]]
        changed = " ".join(r["overrides"]) or "-"
        lines.append(
            f"| {r['variant']} | {changed} | {r['seed']} | {r['jf']:.3f} | {r['j']:.3f} | "
            f"{r['f']:.3f} | {sum(same) / len(same):.3f} ({len(same)}) | {r['steps']} | "
            f"{r['device']} |"
        )
    (args.results / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, each run per variant")
    parser.add_argument("--steps", type=int, default=650, help="training steps of every run")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    parser.add_argument("--workers", type=int, default=1, help="data-loading workers per run")
    parser.add_argument("--teacher", type=Path, default=ROOT / "runs/repro/teacher/final.ckpt")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "sweep")
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "distillation-sweep")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: train one run here
    args = parser.parse_args()
    args.runs, args.teacher = args.runs.resolve(), args.teacher.resolve()
    variants = [n for n in args.variants.split(",") if n]
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        parser.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    if args.one:
        run_variant(args, args.one, seeds[0])
        return
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    needs_teacher = any(VARIANTS[n][0] == "student-distill.yaml" for n in variants)
    if needs_teacher and not args.teacher.is_file():
        parser.error(f"{args.teacher}: no teacher; run scripts/reproduce_distillation.py first")
    render_data(Paths(smoke=False), 600, workers=max(2, args.workers * args.jobs))
    runs = [(v, s) for v in variants for s in seeds]
    launch(args, runs)
    write_table(args)


if __name__ == "__main__":
    main()
