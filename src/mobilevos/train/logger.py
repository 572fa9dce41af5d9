"""Run logs: ``metrics.jsonl`` and TensorBoard scalars, written by rank 0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from mobilevos.io import atomic_path
from mobilevos.train.config import TrainConfig


class RunLogger:
    """metrics.jsonl + TensorBoard scalars (rank 0)."""

    def __init__(self, run_dir: Path, config: TrainConfig, start_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(run_dir / "config.yaml") as tmp:
            tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        path = run_dir / "metrics.jsonl"
        # A resumed run repeats the steps after its last checkpoint: drop their old lines.
        kept = []
        if start_step > 0 and path.is_file():
            kept = [
                line
                for line in path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= start_step
            ]
        with atomic_path(path) as tmp:
            tmp.write_text("".join(line + "\n" for line in kept))
        self.metrics = path.open("a")
        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step + 1)

    def log(self, step: int, values: dict[str, Any]) -> None:
        self.metrics.write(json.dumps({"step": step, **values}) + "\n")
        self.metrics.flush()
        for name, value in values.items():
            self.writer.add_scalar(name if "/" in name else f"train/{name}", value, step)

    def close(self) -> None:
        self.metrics.close()
        self.writer.close()
