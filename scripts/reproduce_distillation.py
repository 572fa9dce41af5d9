"""Small-scale reproduction of MobileVOS's claim: distillation beats segmentation-only training.

    .venv/bin/python scripts/reproduce_distillation.py        # or: make repro-distill

On procedural synthetic videos and this repo's CPU recipes (configs/repro/), it trains

1. a teacher (``teacher-mbv2``: ImageNet MobileNetV2 trunks at full width, long memory),
2. the ``mobilevos-mbv2-lite`` student with the segmentation loss only (seeds 0 and 1),
3. the same student distilled from the teacher with the paper's loss (omega = 0.5, plus
   boundary-aware logit distillation), once for the baseline's wall time and once for its
   number of steps, and twice more (seeds 0 and 1) for its wall time with the representation
   loss at a quarter of its weight,

then scores each on held-out synthetic videos with the built-in DAVIS evaluator and writes
``results/distillation/results.json``, ``table.md`` (with each run's per-object difference from
the seed-0 baseline, paired over the same objects) and ``jf.png``. Every stage resumes from its
last checkpoint, so rerunning the same command after an interruption continues where it
stopped; finished stages are skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mobilevos.checkpoint import load_model, read_checkpoint
from mobilevos.data.synth import SynthConfig, write_davis_dataset
from mobilevos.evaluate import run_eval
from mobilevos.train import Trainer
from mobilevos.train.config import load_train_config

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "student-seg-seed0"  # per-object differences are taken from this run
RUNS = {
    # name: (recipe, overrides)
    "teacher": ("teacher.yaml", []),
    "student-seg-seed0": ("student-seg.yaml", []),
    "student-distill-seed0": ("student-distill.yaml", []),
    "student-seg-seed1": ("student-seg.yaml", ["seed=1"]),
    # Distillation at the baseline's step count rather than its wall time (45-50 min).
    "student-distill-seed0-1160steps": ("student-distill.yaml", ["steps=1160"]),
    # The baseline's wall time again, with L_repr at a quarter of its weight: the best setting
    # of the loss sweep (scripts/distill_sweep.py, on a GPU, equal steps).
    "student-distill-repr64-seed0": ("student-distill.yaml", ["loss.repr_weight=64"]),
    "student-distill-repr64-seed1": ("student-distill.yaml", ["loss.repr_weight=64", "seed=1"]),
}


class Paths:
    """Where data, runs and results go; ``--smoke`` keeps a quick check apart from the real run."""

    def __init__(self, smoke: bool) -> None:
        self.smoke = smoke
        self.data = ROOT / "data" / ("repro-synth-smoke" if smoke else "repro-synth")
        self.runs = Path("runs") / ("repro-smoke" if smoke else "repro")
        self.results = ROOT / self.runs / "results" if smoke else ROOT / "results" / "distillation"

    def overrides(self, name: str) -> list[str]:
        teacher = self.runs / "teacher" / "final.ckpt"
        out = run_overrides(RUNS[name][0], self.data, self.runs / name, teacher)
        if self.smoke:
            out += ["steps=4", "checkpoint_every=2", "batch_size=2", "data.crop=96"]
        return out


def run_overrides(recipe: str, data: Path, out_dir: Path, teacher: Path) -> list[str]:
    """Overrides that point a ``configs/repro/`` recipe at its data, run folder and teacher."""
    out = [
        f"out_dir={out_dir}",
        f"data.sources=[{{kind: synth, root: {data}}}]",
        f"val.root={data}",
    ]
    if recipe == "student-distill.yaml":
        out.append(f"teacher.checkpoint={teacher}")
    return out


def render_data(paths: Paths, videos: int, workers: int = 2) -> None:
    if (paths.data / "synth.json").is_file():
        return
    config = SynthConfig(height=240, width=432, num_frames=24)
    val = 4 if paths.smoke else 30
    write_davis_dataset(
        paths.data, videos, config, seed=2023, val_fraction=val / videos, workers=workers
    )


def train_run(paths: Paths, name: str) -> dict:
    recipe, overrides = RUNS[name]
    overrides = [*overrides, *paths.overrides(name)]
    config = load_train_config(ROOT / "configs" / "repro" / recipe, overrides)
    run_dir = ROOT / config.out_dir
    final = run_dir / "final.ckpt"
    if not final.is_file():
        Trainer(config, resume=(run_dir / "last.pt").is_file()).run()
    meta = read_checkpoint(final).meta
    return {
        "recipe": recipe,
        "overrides": overrides,
        "steps": config.steps,
        "seed": config.seed,
        "batch_size": config.batch_size,
        "crop": config.data.crop,
        "clip_length": config.data.clip_length,
        "train_minutes": round(meta["train_seconds"] / 60, 1),
        "checkpoint": str(final.relative_to(ROOT)),
    }


def score(data: Path, checkpoint: Path, out: Path, device: str = "cpu") -> dict:
    """J&F of a checkpoint on the held-out synthetic videos, predictions written to ``out``."""
    model = load_model(checkpoint)
    result = run_eval(model, "davis2017", data, "val", out, device=device, size=240, workers=2)
    g = result.global_row
    per_object = {o.name: (o.j.mean + o.f.mean) / 2 for o in result.objects}
    return {"jf": g.jf_mean, "j": g.j_mean, "f": g.f_mean, "object_jf": per_object}


def paired_differences(rows: dict[str, dict], baseline: str) -> list[str]:
    """Markdown lines: each run's per-object J&F minus the baseline's, as mean ± standard error.

    Global J&F of two runs can agree by luck while their objects differ a lot; the paired
    standard error says how large a gap noise makes. Also counts objects better / worse by
    more than 0.01.
    """
    if baseline not in rows:
        return []
    base = rows[baseline]["object_jf"]
    lines = [
        "",
        f"Per-object J&F minus {baseline}'s (mean ± standard error over the same objects):",
        "",
        "| run | difference | better / worse by > 0.01 |",
        "|---|---|---|",
    ]
    for name, r in rows.items():
        if name == baseline:
            continue
        d = np.array([r["object_jf"][k] - base[k] for k in base])
        se = d.std(ddof=1) / np.sqrt(len(d))
        lines.append(
            f"| {name} | {d.mean():+.3f} ± {se:.3f} | {(d > 0.01).sum()} / {(d < -0.01).sum()} |"
        )
    return lines


def write_results(results: Path, rows: dict[str, dict]) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / "results.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "| run | J&F | J | F | steps | seed | train minutes |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['jf']:.3f} | {r['j']:.3f} | {r['f']:.3f} | {r['steps']} | "
            f"{r['seed']} | {r['train_minutes']} |"
        )
    lines += paired_differences(rows, BASELINE)
    (results / "table.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)[::-1]  # first run on top
    scores = [rows[n]["jf"] for n in names]
    kind = {"teacher.yaml": "#dd8452", "student-distill.yaml": "#4c72b0"}
    colours = [kind.get(rows[n]["recipe"], "#8c8c8c") for n in names]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(names) + 1.2))
    bars = ax.barh([f"{n}, {rows[n]['steps']} steps" for n in names], scores, color=colours)
    ax.bar_label(bars, fmt="%.3f", padding=2)
    ax.set_xlim(max(0.0, min(scores) - 0.05), min(1.0, max(scores) + 0.02))  # differences show
    ax.set_xlabel("J&F on held-out synthetic videos")
    ax.set_title("orange: teacher, blue: distilled, grey: segmentation loss only", fontsize=9)
    fig.tight_layout()
    fig.savefig(results / "jf.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=600, help="synthetic videos to render")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few-minute check of the whole pipeline (tiny budgets, apart)",
    )
    parser.add_argument(
        "--runs",
        default=",".join(RUNS),
        help="comma-separated subset of runs; results are merged into results.json (runs are "
        "deterministic, so a later session can add a missing one)",
    )
    args = parser.parse_args()
    names = [n for n in args.runs.split(",") if n]
    unknown = sorted(set(names) - set(RUNS))
    if unknown:
        parser.error(f"unknown runs {unknown}; choose from {list(RUNS)}")
    paths = Paths(args.smoke)
    render_data(paths, 12 if args.smoke else args.videos)
    existing = paths.results / "results.json"
    rows = json.loads(existing.read_text()) if existing.is_file() else {}
    for name in names:
        info = train_run(paths, name)
        out = ROOT / paths.runs / "eval" / name
        rows[name] = {**info, **score(paths.data, ROOT / info["checkpoint"], out)}
        print(f"{name}: J&F {rows[name]['jf']:.3f} ({info['train_minutes']} min)")
    write_results(paths.results, {n: rows[n] for n in RUNS if n in rows})


if __name__ == "__main__":
    main()
