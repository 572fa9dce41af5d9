"""``scripts/campaign.py``'s stages: which one a run continues, and where each ends."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "campaign.py"


def load_script():
    spec = importlib.util.spec_from_file_location("campaign_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_stage_one_ends_where_stage_two_starts_and_the_first_unfinished_stage_runs(
    tmp_path, monkeypatch
):
    script = load_script()
    monkeypatch.setattr(script, "ROOT", tmp_path)
    recipes = tmp_path / "configs" / "demo"
    recipes.mkdir(parents=True)
    (recipes / "stage1.yaml").write_text("steps: 20000\n")
    (recipes / "stage2.yaml").write_text(
        "base: stage1.yaml\nsteps: 40\noptim: {schedule_start: 30}\n"
    )
    campaign = script.Campaign("demo", "", tmp_path / "demo.ckpt", {"stage1": "", "stage2": ""})
    assert script.stage_end(campaign, "stage1") == 30  # not stage 1's own 20000 steps
    assert script.stage_end(campaign, "stage2") == 40
    assert script.first_unfinished(campaign) == "stage1"  # nothing trained yet

    def reach(stage: str, step: int) -> None:
        (campaign.folder / stage).mkdir(parents=True, exist_ok=True)
        torch.save({"step": step}, campaign.folder / stage / "last.pt")

    reach("stage1", 29)
    assert script.first_unfinished(campaign) == "stage1"
    reach("stage1", 30)
    assert script.first_unfinished(campaign) == "stage2"
    reach("stage2", 35)
    assert script.first_unfinished(campaign) == "stage2"
    reach("stage2", 40)  # all done: the last stage, which has nothing left to train
    assert script.first_unfinished(campaign) == "stage2"
    # Stage 2's start moved on (to train stage 1 longer): stage 1 is unfinished again.
    (recipes / "stage2.yaml").write_text(
        "base: stage1.yaml\nsteps: 60\noptim: {schedule_start: 50}\n"
    )
    assert script.first_unfinished(campaign) == "stage1"
