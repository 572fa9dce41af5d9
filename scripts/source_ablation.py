"""Which training sources help the default model: branches from one campaign state, side by side.

    .venv/bin/python scripts/source_ablation.py --stage stage2 --variant synth --steps 400 &
    .venv/bin/python scripts/source_ablation.py --stage stage2 --variant synth+static --steps 400 &
    wait; .venv/bin/python scripts/source_ablation.py --report

Every variant starts from the same resumable state of the campaign (``--from``, by default the
stage 1 state) and trains the same number of steps with the same recipe (``--stage``'s); only
the data sources differ. A round's branches live in ``runs/sources/from-<step>/<variant>``,
named by the step of the state they started from, so later rounds keep the earlier ones. Run
the variants at the same time with one thread each, so that they share the machine evenly. Each
holds up to about 12 GB with its loader process (6.7 GB trainer and 5-6 GB loader measured when
one was killed for memory): two at once fill a 24 GB machine, so run nothing else beside them,
and rerun a killed branch alone (``--threads 2``) to finish it. Each
branch is scored through the evaluator every ``--eval-every`` steps on the campaign's held-out
sets (never on the real test clips), and ``--report`` writes the table and the curves of every
round to ``results/default/sources/``. A branch resumes where it stopped when rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import torch
from campaign import (
    CAMPAIGN,
    ROOT,
    STAGES,
    held_out_results,
    history,
    jf_scores,
    paired_difference,
    per_object_jf,
    state_step,
)

from mobilevos.train import Trainer, load_train_config

SYNTH = "{kind: synth, root: data/default/synth}"
REAL = "{kind: davis, root: data/default/real, repeat: %d}"
STATIC = "{kind: static, root: data/default/static, repeat: %d}"
# name: data.sources override. The synth set has 1,500 videos; the real training split has 7
# sequences and the static set 42 photographs, so repeats of 60 and 9 make about a fifth of the
# clips real or static.
VARIANTS = {
    "synth": f"data.sources=[{SYNTH}]",
    "synth+real": f"data.sources=[{SYNTH}, {REAL % 60}]",
    "synth+static": f"data.sources=[{SYNTH}, {STATIC % 9}]",
}
OUT = ROOT / "runs" / "sources"
RESULTS = ROOT / "results" / "default" / "sources"


def run_variant(name: str, stage: str, start: Path, steps: int, eval_every: int) -> None:
    run_dir = OUT / f"from-{state_step(start)}" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "last.pt").is_file():
        shutil.copy2(start, run_dir / "last.pt")
    overrides = [f"out_dir={run_dir.relative_to(ROOT)}", VARIANTS[name]]
    config = load_train_config(STAGES[stage], overrides)
    trainer = Trainer(config, resume=True)
    log_path = run_dir / "history.jsonl"
    records = history(log_path)
    first = records[0]["start"] if records else trainer.step
    while trainer.step < first + steps:
        target = min((trainer.step // eval_every + 1) * eval_every, first + steps)
        began = time.monotonic()
        trainer.run(stop_at=target)
        trainer.save_state()
        results = held_out_results(trainer)
        record = {
            "variant": name,
            "stage": stage,
            "start": first,
            "step": trainer.step,
            "leg_seconds": round(time.monotonic() - began, 1),
            "scores": jf_scores(results),
            "per_object_jf": {n: per_object_jf(r) for n, r in results.items()},
        }
        with log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


def report() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(parents=True, exist_ok=True)
    rounds = sorted(OUT.glob("from-*"), key=lambda p: int(p.name.removeprefix("from-")))
    runs = {
        f"{r.name}/{n}": history(r / n / "history.jsonl")
        for r in rounds
        for n in VARIANTS
        if (r / n / "history.jsonl").is_file()
    }
    (RESULTS / "results.json").write_text(json.dumps(runs, indent=2) + "\n")
    sets = sorted({s for records in runs.values() for r in records for s in r["scores"]})
    lines = [
        "| from step | variant | step | " + " | ".join(sets) + " | mean |",
        "|---|---|---|" + "---|" * (len(sets) + 1),
    ]
    for records in runs.values():
        for r in records:
            values = [r["scores"][s] for s in sets]
            cells = " | ".join(f"{v:.3f}" for v in values)
            lines.append(
                f"| {r['start']} | {r['variant']} | {r['step']} | {cells} "
                f"| {sum(values) / len(values):.3f} |"
            )
    lines += _paired(runs, sets)
    (RESULTS / "table.md").write_text("\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 3.6), squeeze=False)
    for ax, name in zip(axes[0], sets, strict=True):
        for key, records in runs.items():
            points = [(r["step"], r["scores"][name]) for r in records]
            points.insert(0, (records[0]["start"], _start_score(records[0]["start"], name)))
            points = [p for p in points if p[1] is not None]
            ax.plot(*zip(*points, strict=True), marker="o", label=key.replace("/", ": "))
        ax.set_title(name)
        ax.set_xlabel("training step")
        ax.set_ylabel("J&F")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "curves.png", dpi=110)
    plt.close(fig)
    print("\n".join(lines))


def _paired(runs: dict[str, list[dict]], sets: list[str]) -> list[str]:
    """Per-object differences of each variant from ``synth`` in its round, at the last step."""
    lines = []
    for key, records in runs.items():
        round_name, variant = key.split("/")
        base = runs.get(f"{round_name}/synth")
        if variant == "synth" or base is None or "per_object_jf" not in records[-1]:
            continue
        ours, theirs = records[-1], base[-1]
        if ours["step"] != theirs["step"]:
            continue
        lines += ["", f"{variant} minus synth from step {ours['start']}, at step {ours['step']}, "
                  "per object (mean ± standard error):", ""]  # fmt: skip
        ours_jf, theirs_jf = ours["per_object_jf"], theirs["per_object_jf"]
        lines += [f"* {name}: {paired_difference(ours_jf[name], theirs_jf[name])}" for name in sets]
    return lines


def _start_score(step: int, name: str) -> float | None:
    """The campaign's score of the state every branch started from."""
    for record in history(CAMPAIGN / "history.jsonl"):
        if record["step"] == step:
            return record["scores"].get(name)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS))
    parser.add_argument("--stage", default="stage1", choices=list(STAGES), help="the recipe")
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
    run_variant(args.variant, args.stage, args.start, args.steps, args.eval_every)


if __name__ == "__main__":
    main()
