"""``scripts/gpu_campaign.py`` end to end on a CPU: train a leg, return the state in parts, adopt.

The script runs on the GPU machine only when a task is lent one, so it is smoke-tested here in a
copy of the scripts, the recipes and the default campaign's stage 1 state (the scripts find
everything relative to their own folder), with a few generated textures, a few videos and one
step of a small batch: the parts must join to the state trained there, and adoption must land in
the copy's campaign history and shipped weights, never in this checkout's.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mobilevos.checkpoint import read_checkpoint
from mobilevos.data.synth import SynthConfig, write_davis_dataset

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / "campaign" / "default" / "stage1" / "last.pt"


def run_script(copy: Path, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, str(copy / "scripts" / "gpu_campaign.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]


@pytest.mark.skipif(not STATE.is_file(), reason=f"{STATE} is not in this checkout")
def test_gpu_campaign_trains_returns_parts_and_adopts_on_cpu(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    for folder in ("scripts", "configs"):
        shutil.copytree(ROOT / folder, copy / folder)
    (copy / "campaign" / "default" / "stage1").mkdir(parents=True)
    shutil.copy2(STATE, copy / "campaign" / "default" / "stage1" / "last.pt")
    (copy / "src" / "mobilevos" / "assets").mkdir(parents=True)
    textures = copy / "data" / "default" / "textures"
    textures.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        pixels = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(textures / f"photo{i}.png")
    # The stage 1 recipe's training videos, at least a batch of them, which adoption's trainer
    # opens (the GPU machine renders its own).
    small = SynthConfig(height=64, width=96, num_frames=6, texture_dir=str(textures))
    write_davis_dataset(copy / "data" / "default" / "synth", 12, small, seed=11, workers=1)

    out = tmp_path / "returned"
    recipe = ["--set", "batch_size=2", "--set", "data.crop=64", "--set", "data.clip_length=3"]
    run_script(copy, "train", "--device", "cpu", "--amp", "none", "--minutes", "0",
               "--videos", "4", "--heldout-videos", "1", "--workers", "1", "--eval-every", "1",
               "--out", str(out), *recipe)  # fmt: skip
    start = torch.load(STATE, map_location="cpu", weights_only=True)["step"]
    summary = json.loads((out / "gpu.json").read_text())
    assert (summary["start_step"], summary["end_step"]) == (start, start + 1)
    manifest = json.loads((out / "last.pt.json").read_text())
    joined = b"".join((out / name).read_bytes() for name in manifest["parts"])
    assert hashlib.sha256(joined).hexdigest() == manifest["sha256"]

    run_script(copy, "adopt", str(out))
    adopted = copy / "campaign" / "default" / "stage1" / "last.pt"
    assert torch.load(adopted, map_location="cpu", weights_only=True)["step"] == start + 1
    record = json.loads((copy / "campaign" / "default" / "history.jsonl").read_text())
    assert (record["stage"], record["step"]) == ("stage1", start + 1)
    shipped = read_checkpoint(copy / "src" / "mobilevos" / "assets" / "mobilevos-mbv2-lite.ckpt")
    assert shipped.meta["steps"] == start + 1

    # A damaged part is refused before anything is adopted.
    part = out / manifest["parts"][0]
    part.write_bytes(b"x" + part.read_bytes()[1:])
    result = subprocess.run(
        [sys.executable, str(copy / "scripts" / "gpu_campaign.py"), "adopt", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode != 0 and "does not match its sha256" in result.stderr
