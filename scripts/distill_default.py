"""Does distillation pay on the default model's data? Teacher trained here, equal-time branches.

    .venv/bin/python scripts/distill_default.py teacher --minutes 60     # resumable
    .venv/bin/python scripts/distill_default.py probe                    # step-cost ratio
    .venv/bin/python scripts/distill_default.py branch seg --steps 240 &
    .venv/bin/python scripts/distill_default.py branch distill --steps 240 &
    wait; .venv/bin/python scripts/distill_default.py report

1. ``teacher``: ``teacher-mbv2`` (configs/default/teacher.yaml) trains on the campaign's data and
   recipe from ImageNet trunks, scored on the held-out sets every ``--eval-every`` steps; its
   weights are written to ``runs/distill/teacher/final.ckpt`` after each evaluation.
2. ``probe``: the cost of a distillation step (the teacher's forward included) against a
   segmentation-only step, timed interleaved on the same batches, medians of ``--repeats``.
3. ``branch``: from the campaign's stage 1 state, ``seg`` continues stage 1's
   recipe for ``--steps``; ``distill`` (configs/default/distill.yaml) trains for the number of
   steps that costs the same time by the probe's ratio. Run both at once, one thread each.
   Each is scored at its end, per object, on the held-out procedural videos and the real
   test clips.
   The first branch to start scores the state both start from, on the same sets
   (``runs/distill/start.json``), so the report's ``start`` row is the branches' starting point
   whatever has been shipped since.
4. ``report``: the teacher scored the same way, the start state, the branches, and
   ``results/default/distill/`` (``results.json``, ``table.md``) with paired differences.

The real test clips are scored, never trained or chosen on: the campaign's own selection uses the
procedural held-out set and the real validation videos only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

import torch
from campaign import (
    CAMPAIGN,
    HELD_OUT,
    ROOT,
    STAGES,
    evaluate,
    history,
    paired_difference,
    per_object_jf,
)

from mobilevos.checkpoint import load_model, save_checkpoint
from mobilevos.evaluate import run_eval
from mobilevos.train import Trainer, load_train_config

OUT = ROOT / "runs" / "distill"
RESULTS = ROOT / "results" / "default" / "distill"
TEACHER_RECIPE = ROOT / "configs" / "default" / "teacher.yaml"
RECIPES = {"seg": STAGES["stage1"], "distill": ROOT / "configs" / "default" / "distill.yaml"}
SETS = {
    # name (as scripts/default_report.py calls it): (DAVIS-layout root, split, input short side)
    "procedural held-out": HELD_OUT["procedural"],
    "real test clips": (ROOT / "data" / "default" / "real-test", "val", None),  # own size
}
START_SCORES = OUT / "start.json"


def train_teacher(minutes: float, eval_every: int) -> None:
    started = time.monotonic()
    run_dir = OUT / "teacher"
    config = load_train_config(TEACHER_RECIPE)
    trainer = Trainer(config, resume=(run_dir / "last.pt").is_file())
    while time.monotonic() - started < minutes * 60 and trainer.step < config.steps:
        trainer.run(stop_at=(trainer.step // eval_every + 1) * eval_every)
        trainer.save_state()
        meta = {"steps": trainer.step, "train_seconds": round(trainer.train_seconds, 1)}
        meta["train_config"] = config.to_dict()
        save_checkpoint(trainer.model, run_dir / "final.ckpt", meta=meta)
        record = {"step": trainer.step, "train_seconds": meta["train_seconds"]}
        record["scores"] = evaluate(trainer)
        _append(run_dir / "history.jsonl", record)


def probe(repeats: int) -> dict:
    """Seconds per step of each recipe, timed alternately on the same batches."""
    trainers = {}
    for name, recipe in RECIPES.items():
        run_dir = OUT / "probe" / name
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(CAMPAIGN / "stage1" / "last.pt", run_dir / "last.pt")
        config = load_train_config(recipe, [f"out_dir={run_dir.relative_to(ROOT)}"])
        trainers[name] = Trainer(config, resume=True)
    batches = trainers["seg"].batches()
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for index in range(repeats + 1):
        group = next(batches)
        for name, trainer in trainers.items():
            began = time.perf_counter()
            trainer.train_step(group)
            if index:  # the first step of each warms up
                times[name].append(time.perf_counter() - began)
    seconds = {name: round(statistics.median(t), 3) for name, t in times.items()}
    result = {
        "seconds_per_step": seconds,
        "ratio": round(seconds["distill"] / seconds["seg"], 3),
        "threads": torch.get_num_threads(),
        "repeats": repeats,
    }
    (OUT / "probe.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(OUT / "probe")
    return result


def run_branch(name: str, seg_steps: int) -> None:
    ratio = json.loads((OUT / "probe.json").read_text())["ratio"] if name == "distill" else 1.0
    steps = round(seg_steps / ratio)
    run_dir = OUT / name
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "last.pt").is_file():
        shutil.copy2(CAMPAIGN / "stage1" / "last.pt", run_dir / "last.pt")
    config = load_train_config(RECIPES[name], [f"out_dir={run_dir.relative_to(ROOT)}"])
    trainer = Trainer(config, resume=True)
    start = history(run_dir / "history.jsonl")
    if not start:
        record_start(trainer)
    first = start[0]["start"] if start else trainer.step
    began = time.monotonic()
    trainer.run(stop_at=first + steps)
    trainer.save_state()
    record = {"branch": name, "start": first, "step": trainer.step, "ratio": ratio}
    record["leg_seconds"] = round(time.monotonic() - began, 1)
    record["per_object_jf"] = score_sets(trainer.model, run_dir / "eval")
    _append(run_dir / "history.jsonl", record)


def record_start(trainer: Trainer) -> None:
    """Score the state the branches start from, once (both branches start from the same)."""
    if START_SCORES.is_file():
        step = json.loads(START_SCORES.read_text())["step"]
        if step != trainer.step:
            raise SystemExit(
                f"error: {START_SCORES} scored a start at step {step}, but this branch starts at "
                f"step {trainer.step}: remove {OUT} to start a new comparison"
            )
        return
    scores = score_sets(trainer.model, OUT / "start" / "eval")
    START_SCORES.write_text(json.dumps({"step": trainer.step, "per_object_jf": scores}) + "\n")


def score_sets(model: torch.nn.Module, out: Path) -> dict[str, dict[str, float]]:
    """Per-object J&F on the held-out procedural videos and on the real test clips."""
    scores = {}
    for name, (root, split, size) in SETS.items():
        result = run_eval(model, "davis2017", root, split, out / name.replace(" ", "-"), "cpu",
                          size, workers=1)  # fmt: skip
        scores[name] = per_object_jf(result)
    return scores


def report() -> None:
    """Every model on the same sets, per object, and the branches' paired differences."""
    branches = {n: history(OUT / n / "history.jsonl")[-1] for n in ("seg", "distill")}
    teacher_history = history(OUT / "teacher" / "history.jsonl")
    cache = OUT / "teacher" / "scores.json"
    if not cache.is_file():
        scores = score_sets(load_model(OUT / "teacher" / "final.ckpt"), OUT / "teacher" / "eval")
        cache.write_text(json.dumps(scores, indent=2) + "\n")
    start = json.loads(START_SCORES.read_text())  # both branches' start, scored as it began
    rows = {"teacher": json.loads(cache.read_text()), "start": start["per_object_jf"]}
    rows.update({n: record["per_object_jf"] for n, record in branches.items()})
    steps = {
        "teacher": teacher_history[-1]["step"],
        "start": start["step"],
        **{n: record["step"] for n, record in branches.items()},
    }
    probe_result = json.loads((OUT / "probe.json").read_text())
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = {
        "probe": probe_result,
        "teacher": teacher_history,
        "steps": steps,
        "per_object_jf": rows,
    }
    (RESULTS / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    sets = list(rows["seg"])
    lines = [
        "| model | steps | " + " | ".join(sets) + " |",
        "|---|---|" + "---|" * len(sets),
    ]
    for label, scores in rows.items():
        cells = " | ".join(f"{statistics.mean(scores[s].values()):.3f}" for s in sets)
        lines.append(f"| {label} | {steps[label]} | {cells} |")
    lines += [
        "",
        "Paired per-object J&F differences, distill minus seg (mean ± standard error):",
        "",
    ]
    for name in sets:
        lines.append(f"* {name}: {paired_difference(rows['distill'][name], rows['seg'][name])}")
    (RESULTS / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _append(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["teacher", "probe", "branch", "report"])
    parser.add_argument("branch", nargs="?", choices=sorted(RECIPES))
    parser.add_argument("--minutes", type=float, default=60.0, help="teacher: train this long")
    parser.add_argument("--eval-every", type=int, default=200, help="teacher: steps per leg")
    parser.add_argument("--repeats", type=int, default=6, help="probe: timed steps per recipe")
    parser.add_argument("--steps", type=int, default=240, help="branch: seg's number of steps")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    os.chdir(ROOT)  # the recipes' data and run folders are relative to the repository
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.command == "teacher":
        train_teacher(args.minutes, args.eval_every)
    elif args.command == "probe":
        print(json.dumps(probe(args.repeats), indent=2))
    elif args.command == "branch":
        if args.branch is None:
            parser.error("branch needs seg or distill")
        run_branch(args.branch, args.steps)
    else:
        report()


if __name__ == "__main__":
    main()
