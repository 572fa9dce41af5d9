"""Training step time with channels-last convolution weights against the default layout.

    .venv/bin/python scripts/bench_channels_last.py [--steps 50] [--repeats 2] [--device cpu]

Trains the reproduction's student (``configs/repro/student-seg.yaml``) and its distillation
(``student-distill.yaml``, against a ``teacher-mbv2`` with random weights: the time of a forward
does not depend on the weights) with ``channels_last`` off and on, alternating the layouts so
that drifts of the machine hit both, and prints seconds per step (data loading included; the
first ``log_every`` steps are warm-up and left out) with the ratio of the two layouts. Data: a
small set rendered like the reproduction's (240×432, 24 frames) into ``data/bench-synth``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from reproduce_distillation import ROOT, run_overrides

from mobilevos.checkpoint import save_checkpoint
from mobilevos.config import get_preset
from mobilevos.data.synth import SynthConfig, write_davis_dataset
from mobilevos.model.network import build_model
from mobilevos.train import Trainer
from mobilevos.train.config import load_train_config

RECIPES = ("student-seg.yaml", "student-distill.yaml")


def seconds_per_step(run_dir: Path, batch_size: int, warmup: int) -> float:
    """Mean step time after the warm-up, from the throughput the trainer logs."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = [r["clips_per_s"] for r in rows if r["step"] > warmup]
    return batch_size / statistics.fmean(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    data = ROOT / "data" / "bench-synth"
    if not (data / "synth.json").is_file():
        synth = SynthConfig(height=240, width=432, num_frames=24)
        write_davis_dataset(data, 40, synth, seed=7, val_fraction=0.1)
    times: dict[tuple[str, bool], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        teacher = Path(tmp) / "teacher.ckpt"
        save_checkpoint(build_model(get_preset("teacher-mbv2")), teacher)
        for repeat in range(args.repeats):
            for recipe in RECIPES:
                for channels_last in (False, True):
                    run_dir = Path(tmp) / f"{Path(recipe).stem}-{channels_last}-{repeat}"
                    overrides = [
                        *run_overrides(recipe, data, run_dir, teacher),
                        f"steps={args.steps}",
                        f"checkpoint_every={args.steps}",
                        f"device={args.device}",
                        f"channels_last={str(channels_last).lower()}",
                    ]
                    config = load_train_config(ROOT / "configs" / "repro" / recipe, overrides)
                    Trainer(config).run()
                    step = seconds_per_step(run_dir, config.batch_size, config.log_every)
                    times.setdefault((recipe, channels_last), []).append(step)
    print(f"seconds per step ({args.device}, {args.steps} steps, {args.repeats} repeats)")
    print(f"{'recipe':<16} {'default':>8} {'channels_last':>14} {'speed-up':>9}")
    for recipe in RECIPES:
        default = statistics.fmean(times[recipe, False])
        last = statistics.fmean(times[recipe, True])
        print(f"{Path(recipe).stem:<16} {default:>8.3f} {last:>14.3f} {default / last:>8.2f}x")


if __name__ == "__main__":
    main()
