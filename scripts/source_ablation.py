"""Which training sources help the default model: branches from one campaign state, side by side.

    .venv/bin/python scripts/source_ablation.py --variant synth --steps 500 &
    .venv/bin/python scripts/source_ablation.py --variant synth+real --steps 500 &
    wait; .venv/bin/python scripts/source_ablation.py --report

Every variant starts from the same resumable state of the campaign (``--from``, by default the
stage 1 state) and trains the same number of steps with the same recipe; only the data sources
differ. Run the variants at the same time with one thread each, so that they share the machine
evenly (each holds up to about 6 GB: do not run a test suite beside two of them on a
24 GB machine). Each branch is scored through the evaluator every ``--eval-every`` steps on the
campaign's held-out sets (never on the real test clips), and ``--report`` writes the table and
the curves to ``results/default/sources/``. A branch resumes where it stopped when rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import torch
from campaign import CAMPAIGN, ROOT, STAGES, evaluate, history

from mobilevos.train import Trainer, load_train_config

SYNTH = "{kind: synth, root: data/default/synth}"
REAL = "{kind: davis, root: data/default/real, repeat: %d}"
# name: data.sources override. The synth set has 1,500 videos; the real training split has 7
# sequences, so a repeat of 60 makes about a fifth of the clips real.
VARIANTS = {
    "synth": f"data.sources=[{SYNTH}]",
    "synth+real": f"data.sources=[{SYNTH}, {REAL % 60}]",
}
OUT = ROOT / "runs" / "sources"
RESULTS = ROOT / "results" / "default" / "sources"


def run_variant(name: str, start: Path, steps: int, eval_every: int) -> None:
    run_dir = OUT / name
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "last.pt").is_file():
        shutil.copy2(start, run_dir / "last.pt")
    overrides = [f"out_dir={run_dir.relative_to(ROOT)}", VARIANTS[name]]
    config = load_train_config(STAGES["stage1"], overrides)
    trainer = Trainer(config, resume=True)
    log_path = run_dir / "history.jsonl"
    records = history(log_path)
    first = records[0]["start"] if records else trainer.step
    while trainer.step < first + steps:
        target = min((trainer.step // eval_every + 1) * eval_every, first + steps)
        began = time.monotonic()
        trainer.run(stop_at=target)
        trainer.save_state()
        record = {
            "variant": name,
            "start": first,
            "step": trainer.step,
            "leg_seconds": round(time.monotonic() - began, 1),
            "scores": evaluate(trainer),
        }
        with log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


def report() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = {n: history(OUT / n / "history.jsonl") for n in VARIANTS}
    runs = {n: r for n, r in runs.items() if r}
    (RESULTS / "results.json").write_text(json.dumps(runs, indent=2) + "\n")
    sets = sorted({s for records in runs.values() for r in records for s in r["scores"]})
    lines = [
        "| variant | step | " + " | ".join(sets) + " | mean |",
        "|---|---|" + "---|" * (len(sets) + 1),
    ]
    for name, records in runs.items():
        for r in records:
            values = [r["scores"][s] for s in sets]
            cells = " | ".join(f"{v:.3f}" for v in values)
            lines.append(f"| {name} | {r['step']} | {cells} | {sum(values) / len(values):.3f} |")
    (RESULTS / "table.md").write_text("\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 3.6), squeeze=False)
    for ax, name in zip(axes[0], sets, strict=True):
        for variant, records in runs.items():
            points = [(r["step"], r["scores"][name]) for r in records]
            points.insert(0, (records[0]["start"], _start_score(records[0]["start"], name)))
            points = [p for p in points if p[1] is not None]
            ax.plot(*zip(*points, strict=True), marker="o", label=variant)
        ax.set_title(name)
        ax.set_xlabel("training step")
        ax.set_ylabel("J&F")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "curves.png", dpi=110)
    plt.close(fig)
    print("\n".join(lines))


def _start_score(step: int, name: str) -> float | None:
    """The campaign's score of the state every branch started from."""
    for record in history(CAMPAIGN / "history.jsonl"):
        if record["step"] == step:
            return record["scores"].get(name)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS))
    parser.add_argument("--from", dest="start", type=Path, default=CAMPAIGN / "stage1" / "last.pt")
    parser.add_argument("--steps", type=int, default=500, help="steps each branch trains")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per branch")
    parser.add_argument("--report", action="store_true", help="write the table and curves")
    args = parser.parse_args()
    os.chdir(ROOT)  # the recipes' data and run folders are relative to the repository
    if args.report:
        report()
        return
    if args.variant is None:
        parser.error("give --variant or --report")
    torch.set_num_threads(args.threads)
    run_variant(args.variant, args.start, args.steps, args.eval_every)


if __name__ == "__main__":
    main()
