"""Training campaigns of the shipped models: one command that continues where the last one stopped.

    .venv/bin/python scripts/campaign.py [--campaign default] [--minutes 170]   # or: make campaign

A campaign (``--campaign``: ``default``, the shipped ``mobilevos-mbv2-lite``; ``fast``,
``mobilevos-mbv2-fast``; ``fast-half``, a cheaper fast student not shipped yet) has stages
(``configs/<campaign>/stage*.yaml``): stage 1 trains at the peak learning rate and ends at the
step where stage 2's schedule starts; stage 2 resumes stage 1's state there and anneals the rate
to zero. The command runs the first stage that has not reached its end, then the next ones
(``--stage`` runs one). To train longer before annealing, move stage 2's ``schedule_start`` and
``steps`` on, remove ``campaign/<campaign>/stage2`` and run again. A branch (``--branch NAME``)
trains another recipe of the campaign (``configs/<campaign>/NAME.yaml``) from scratch into
``campaign/<campaign>/branches/NAME/`` with records of its own and never ships; two runs side by
side with ``--threads 1 --train-minutes M`` are compared at equal training time, and
``--adopt`` takes the winner's state into a stage.

The run's resumable state (``campaign/<campaign>/<stage>/last.pt``: weights, optimiser,
schedule, step) and its logs live in the repository, so a fresh clone on another machine
continues the campaign: commit ``campaign/`` at the end of a working stretch. The data are
rebuilt from the package registries first (``make default-data``).

On a machine shared with other work, run it with ``OMP_WAIT_POLICY=PASSIVE`` (as ``make
campaign`` does): PyTorch's OpenMP threads otherwise spin while waiting for each other, and a
2-thread step beside one busy process took 16-19 s instead of 4.3 s (6-7 s with the setting).

Every ``--eval-every`` steps the model is scored through the evaluator on the held-out sets
(never trained on): procedural videos rendered from seeds the training data never used, and the
validation split of the pseudo-masked real videos when it exists. The scores go to
``campaign/<campaign>/history.jsonl`` and a learning-curve plot; whenever their mean (the
selection score) improves, the shipped weights (``src/mobilevos/assets/<preset>.ckpt``, fp16,
with recipe, data, steps and scores in its metadata) are rewritten. The real *test* clips are
never looked at here: ``scripts/default_report.py`` scores the shipped model on them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from mobilevos.checkpoint import load_model, save_checkpoint
from mobilevos.evaluate import run_eval
from mobilevos.fingerprint import output_fingerprint
from mobilevos.scoring.davis import DavisResult
from mobilevos.train import TrainConfig, Trainer, load_train_config

ROOT = Path(__file__).resolve().parents[1]
# The package's shipped weights, in this checkout's source tree (an editable install reads them
# from here); a copy of the scripts beside a copy of the tree writes into that copy.
ASSETS = ROOT / "src" / "mobilevos" / "assets"
HELD_OUT = {
    # name: (DAVIS-layout root, split, network input short side)
    "procedural": (ROOT / "data" / "default" / "synth-heldout", "val", 288),
    "real-val": (ROOT / "data" / "default" / "real", "val", 288),
}
STAGE1_DATA = (
    "procedural videos (288x512, 24 frames) with objects and backgrounds cut from 98 real "
    "photographs (Debian wallpapers, scikit-image and OpenCV samples); see "
    "scripts/default_data.py"
)
STAGE2_DATA = (
    "stage 1's procedural videos, and 42 of those photographs with confident U²-Net-p "
    "pseudo-masks made into pseudo-videos by random motion (about a fifth of the clips); "
    "see scripts/default_data.py"
)

FAST_STAGE2_DATA = (
    f"{STAGE2_DATA}; and the real videos' training split with U²-Net-p pseudo-masks "
    "(data/default/real: Big Buck Bunny, bikes, vtest; about an eighth of the clips)"
)


@dataclass(frozen=True)
class Campaign:
    """One model's campaign: recipes in ``configs/<name>/``, state and logs in
    ``campaign/<name>/``, shipped weights at ``checkpoint``.

    The stages run in order; a stage without a state of its own starts from the previous
    stage's, which must have reached the step where the later stage's schedule starts.
    """

    name: str
    description: str
    checkpoint: Path
    data: dict[str, str]  # stage: what it trains on

    @property
    def folder(self) -> Path:
        return ROOT / "campaign" / self.name

    @property
    def stages(self) -> dict[str, Path]:
        return {stage: ROOT / "configs" / self.name / f"{stage}.yaml" for stage in self.data}

    def branch_recipe(self, branch: str) -> Path:
        return ROOT / "configs" / self.name / f"{branch}.yaml"


CAMPAIGNS = {
    "default": Campaign(
        "default",
        "MobileVOS default student, trained by this project (scripts/campaign.py)",
        ASSETS / "mobilevos-mbv2-lite.ckpt",
        {"stage1": STAGE1_DATA, "stage2": STAGE2_DATA},
    ),
    "fast": Campaign(
        "fast",
        "mobilevos-mbv2-fast, this project's student cut to a CPU's budget, trained by this "
        "project on the default model's data and recipe (scripts/campaign.py --campaign fast)",
        ASSETS / "mobilevos-mbv2-fast.ckpt",
        {"stage1": STAGE1_DATA, "stage2": FAST_STAGE2_DATA},
    ),
    "fast-half": Campaign(
        "fast-half",
        "mobilevos-mbv2-fast's third architecture (its query trunk entered at half resolution, "
        "7 residual blocks dropped, 32-channel keys), trained by this project on the fast "
        "student's data and recipe (scripts/campaign.py --campaign fast-half)",
        ROOT / "campaign" / "fast-half" / "mobilevos-mbv2-fast.ckpt",
        {"stage1": STAGE1_DATA, "stage2": FAST_STAGE2_DATA},
    ),
}
# The default model's campaign, as the other scripts name it.
CAMPAIGN = CAMPAIGNS["default"].folder
STAGES = CAMPAIGNS["default"].stages


def stage_end(campaign: Campaign, stage: str) -> int:
    """The step where ``stage`` ends: where the next stage's schedule starts, or the last
    stage's ``steps``."""
    names = list(campaign.stages)
    following = names[names.index(stage) + 1 :]
    if following:
        return load_train_config(campaign.stages[following[0]], []).optim.schedule_start
    return load_train_config(campaign.stages[stage], []).steps


def first_unfinished(campaign: Campaign) -> str:
    """The first stage whose state has not reached its end (the last stage when all have)."""
    for stage in campaign.stages:
        state = campaign.folder / stage / "last.pt"
        if not state.is_file() or state_step(state) < stage_end(campaign, stage):
            return stage
    return list(campaign.stages)[-1]


def held_out_results(trainer: Trainer) -> dict[str, DavisResult]:
    """The evaluator's results on every held-out set that exists (``make default-data``)."""
    results = {}
    for name, (root, split, size) in HELD_OUT.items():
        if root.is_dir():
            out = trainer.run_dir / "eval" / name
            results[name] = run_eval(trainer.model, "davis2017", root, split, out, "cpu", size,
                                     workers=1)  # fmt: skip
    return results


def evaluate(trainer: Trainer) -> dict[str, float]:
    """J&F on every held-out set that exists."""
    return jf_scores(held_out_results(trainer))


def jf_scores(results: dict[str, DavisResult]) -> dict[str, float]:
    """Each set's J&F, rounded as the campaign's records keep it."""
    return {name: round(float(result.global_row.jf_mean), 4) for name, result in results.items()}


def per_object_jf(result: DavisResult) -> dict[str, float]:
    """J&F of every object (``<sequence>_<id>``) of one evaluation."""
    return {row.name: round((row.j.mean + row.f.mean) / 2, 4) for row in result.objects}


def paired_stats(ours: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    """Per-object ``ours - base`` (same objects): mean, standard error, object count, and how
    many moved by more than 0.01 either way."""
    diffs = [ours[k] - base[k] for k in base]
    error = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
    return {
        "mean": round(statistics.mean(diffs), 4),
        "se": round(error, 4),
        "objects": len(diffs),
        "better": sum(d > 0.01 for d in diffs),
        "worse": sum(d < -0.01 for d in diffs),
    }


def paired_difference(ours: dict[str, float], base: dict[str, float]) -> str:
    """:func:`paired_stats` in words: mean ± standard error, and how many moved."""
    s = paired_stats(ours, base)
    return (
        f"{s['mean']:+.3f} ± {s['se']:.3f} over {s['objects']} objects "
        f"({s['better']} better, {s['worse']} worse by more than 0.01)"
    )


def state_step(path: Path) -> int:
    """The step a resumable training state (``last.pt``) has reached."""
    return int(torch.load(path, map_location="cpu", weights_only=True)["step"])


def history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def export(trainer: Trainer, scores: dict[str, float], campaign: Campaign, stage: str) -> None:
    meta = {
        "description": campaign.description,
        "stage": stage,
        "steps": trainer.step,
        "train_seconds": round(trainer.train_seconds, 1),
        "crop": trainer.config.data.crop,
        "clip_length": trainer.config.data.clip_length,
        "data": campaign.data[stage],
        "held_out_jf": scores,
        "recipe": trainer.config.to_dict(),
    }
    save_checkpoint(trainer.model, campaign.checkpoint, meta=meta, half=True)
    # The outputs of the weights as shipped (fp16), which tests/test_default_model.py checks.
    meta["fingerprint"] = output_fingerprint(load_model(campaign.checkpoint))
    save_checkpoint(trainer.model, campaign.checkpoint, meta=meta, half=True)


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name in HELD_OUT:
        points = [(r["step"], r["scores"][name]) for r in records if name in r["scores"]]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=name)
    for before, after in itertools.pairwise(records):
        if after["stage"] != before["stage"]:  # a stage resumes the previous one's last step
            ax.axvline(before["step"], color="gray", linestyle="--", linewidth=1)
            ax.annotate(after["stage"], (before["step"], 0.02), xycoords=("data", "axes fraction"),
                        xytext=(4, 0), textcoords="offset points", color="gray")  # fmt: skip
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out J&F")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


class Run(NamedTuple):
    """Where one run of the campaign keeps its state and records, and whether it ships."""

    stage: str
    recipe: Path
    run_dir: Path
    log_path: Path
    ships: bool


def plan_run(campaign: Campaign, stage: str, branch: str | None) -> Run:
    """A stage of the campaign, or a branch: another recipe trained from scratch beside the
    campaign (``configs/<campaign>/<branch>.yaml``) whose records are its own and which never
    replaces the shipped weights; ``--adopt`` takes a branch's state into a stage."""
    if branch is None:
        return Run(stage, campaign.stages[stage], campaign.folder / stage,
                   campaign.folder / "history.jsonl", ships=True)  # fmt: skip
    recipe = campaign.branch_recipe(branch)
    if not recipe.is_file():
        raise SystemExit(f"error: {recipe}: no such branch recipe")
    run_dir = campaign.folder / "branches" / branch
    return Run(branch, recipe, run_dir, run_dir / "history.jsonl", ships=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--campaign", default="default", choices=list(CAMPAIGNS))
    parser.add_argument(
        "--stage", help="run this stage only (default: the first unfinished one, then the rest)"
    )
    parser.add_argument("--branch", help="run configs/<campaign>/<BRANCH>.yaml as a branch")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long")
    parser.add_argument(
        "--train-minutes",
        type=float,
        help="stop once the run's training time (its state's train_seconds) reaches this, "
        "mid-interval, and evaluate there: runs side by side compared at equal time",
    )
    parser.add_argument("--eval-every", type=int, default=250, help="steps between evaluations")
    parser.add_argument(
        "--threads", type=int, help="torch threads (one each for two runs side by side)"
    )
    parser.add_argument(
        "--adopt",
        type=Path,
        help="first continue from this branch's state (a branch or scripts/source_ablation.py run "
        "folder trained further on the stage's own recipe), taking its last scores",
    )
    args = parser.parse_args()
    started = time.monotonic()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.chdir(ROOT)  # the recipes' data and run folders are relative to the repository
    campaign = CAMPAIGNS[args.campaign]
    if args.stage is not None and args.stage not in campaign.stages:
        parser.error(f"--stage: {args.campaign} has stages {', '.join(campaign.stages)}")
    stages = list(campaign.stages)
    stage = args.stage or (stages[-1] if args.branch else first_unfinished(campaign))
    while True:
        finished = train(campaign, plan_run(campaign, stage, args.branch), args, started)
        if not finished or args.stage or args.branch or stage == stages[-1]:
            break
        stage = stages[stages.index(stage) + 1]
        args.adopt = None  # adopted into the stage just finished


def train(campaign: Campaign, run: Run, args: argparse.Namespace, started: float) -> bool:
    """Train one run until its end (a branch: its recipe's steps) or the time limits; whether it
    reached its end."""
    stage = run.stage
    records = history(run.log_path)
    best = max((r["selection"] for r in records), default=-1.0) if run.ships else math.inf
    config = load_train_config(run.recipe, [f"out_dir={run.run_dir.relative_to(ROOT)}"])
    if args.adopt is not None:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(args.adopt / "last.pt", run.run_dir / "last.pt")
    elif not (run.run_dir / "last.pt").is_file() and args.branch is None:
        start_stage(campaign, stage, config, run.run_dir)
    trainer = Trainer(config, resume=(run.run_dir / "last.pt").is_file())
    if args.adopt is not None:
        scores = history(args.adopt / "history.jsonl")[-1]["scores"]
        best = record_step(trainer, campaign, run, scores, records, best)
    budget = args.train_minutes * 60 if args.train_minutes is not None else None
    end = stage_end(campaign, stage) if run.ships else config.steps
    while trainer.step < end:
        if args.minutes is not None and time.monotonic() - started > args.minutes * 60:
            break
        if budget is not None and trainer.train_seconds >= budget:
            print(
                f"{run.stage}: {args.train_minutes} training minutes reached at step {trainer.step}"
            )
            break
        target = min((trainer.step // args.eval_every + 1) * args.eval_every, end)
        trainer.run(stop_at=target, until_seconds=budget)
        trainer.save_state()
        best = record_step(trainer, campaign, run, evaluate(trainer), records, best)
    if trainer.step < end:
        return False
    last = not run.ships or stage == list(campaign.stages)[-1]
    hint = ": nothing left to train. To train longer, see this script's docstring." if last else ""
    print(f"{run.stage} is complete at step {trainer.step}{hint}")
    return True


def start_stage(campaign: Campaign, stage: str, config: TrainConfig, run_dir: Path) -> None:
    """Give a later stage the previous stage's state to start from (stage 1 starts afresh)."""
    names = list(campaign.stages)
    if names.index(stage) == 0:
        return
    previous = campaign.folder / names[names.index(stage) - 1] / "last.pt"
    if not previous.is_file():
        raise SystemExit(f"error: {previous}: {stage} starts from this state; it is missing")
    step = state_step(previous)
    if step != config.optim.schedule_start:
        raise SystemExit(
            f"error: {previous} is at step {step}, but {stage} starts its schedule at step "
            f"{config.optim.schedule_start} ({campaign.stages[stage].relative_to(ROOT)})"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(previous, run_dir / "last.pt")


def record_step(
    trainer: Trainer, campaign: Campaign, run: Run, scores: dict, records: list, best: float
) -> float:
    """Log one evaluation, re-export the shipped weights if it beats ``best`` (the selection
    score of the weights shipped now); the new best."""
    selection = round(sum(scores.values()) / max(len(scores), 1), 4)
    record = {"stage": run.stage, "step": trainer.step, "scores": scores, "selection": selection}
    record["train_seconds"] = round(trainer.train_seconds, 1)
    # Also when the shipped file is missing (not committed while the campaign is young).
    if selection > best or (run.ships and not campaign.checkpoint.is_file()):
        export(trainer, scores, campaign, run.stage)
        best, record["exported"] = selection, True
    records.append(record)
    with run.log_path.open("a") as f:
        f.write(json.dumps(record) + "\n")
    plot(records, run.log_path.parent / "learning-curve.png")
    print(json.dumps(record), flush=True)
    return best


if __name__ == "__main__":
    main()
