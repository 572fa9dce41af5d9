"""The default model's campaign on a GPU machine for its minutes, then back into the campaign here.

On the GPU machine (the device tool's ``run``; it reaches no package registry, so nothing is
installed there: its own PyTorch, numpy, Pillow, OpenCV and onnxruntime serve, and PyAV is not
needed because training reads frame folders), with ``carry: ["data/default/textures"]``:

    PYTHONPATH=src python3 scripts/gpu_campaign.py train --minutes 8 --out $OUT

It renders the campaign's procedural videos there from the carried textures (the same generator
settings and seeds as ``scripts/default_data.py``, so the same videos), continues the campaign's
state (``campaign/default/stage1/last.pt``, tracked, so it travels with the tree) on the stage 1
recipe with the GPU's settings (CUDA, bf16 autocast, more loader workers; batch, crop, clips,
loss and schedule unchanged), scores the held-out procedural videos every ``--eval-every`` steps
and writes to ``--out``: the resumable state in parts of at most 15 MB (the device returns
files of at most 16 MB), their sha256, ``history.jsonl``, ``metrics.jsonl`` and ``gpu.json``
(device, versions, seconds spent rendering and training).

Back here, with the returned files in a folder:

    .venv/bin/python scripts/gpu_campaign.py adopt FOLDER

joins and checks the parts into ``runs/gpu/last.pt``, scores it on every held-out set here (the
real validation videos stay on this machine), and hands it to ``scripts/campaign.py --adopt``,
which re-exports the shipped weights if the selection score improved. It continues stage 1, the
peak-rate stage; the shipped model is annealed by stage 2 from stage 1's step 1750, so a longer
stage 1 needs stage 2 moved to its new step before it anneals (``scripts/campaign.py``).
``--device cpu`` runs the same path on a CPU; ``tests/test_gpu_campaign.py`` does, end to end,
in a copy of the scripts, recipes and stage 1 state (a few videos, one step, ``--set`` for a
small batch and crop), so that this script still works when a GPU is lent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from campaign import CAMPAIGN, HELD_OUT, ROOT, STAGES, evaluate
from default_data import HELDOUT_SEED, HELDOUT_VIDEOS, SYNTH_CONFIG, SYNTH_VIDEOS

from mobilevos.data.synth import SynthConfig, write_davis_dataset
from mobilevos.evaluate import run_eval
from mobilevos.train import Trainer, load_train_config

TEXTURES = ROOT / "data" / "default" / "textures"
PART_BYTES = 15 * 2**20
RUN = ROOT / "runs" / "gpu"


def render(work: Path, videos: int, heldout_videos: int, workers: int) -> float:
    """The campaign's training and held-out procedural videos, rendered under ``work``."""
    began = time.monotonic()
    config = SynthConfig(**SYNTH_CONFIG, texture_dir=str(TEXTURES))
    write_davis_dataset(work / "synth", videos, config, seed=11, workers=workers)
    write_davis_dataset(
        work / "synth-heldout",
        heldout_videos,
        config,
        seed=HELDOUT_SEED,
        val_fraction=1.0,
        workers=workers,
    )
    return time.monotonic() - began


def train(args: argparse.Namespace) -> None:
    if not TEXTURES.is_dir():
        sys.exit(f"{TEXTURES}: missing (carry data/default/textures, built by make default-data)")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_campaign: no CUDA device")
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mobilevos-gpu-"))
    try:
        _train(args, work)
    finally:
        shutil.rmtree(work)


def _train(args: argparse.Namespace, work: Path) -> None:
    workers = args.workers or os.cpu_count() or 1
    render_seconds = render(work, args.videos, args.heldout_videos, workers)
    run_dir = work / "run"
    run_dir.mkdir()
    shutil.copy2(CAMPAIGN / "stage1" / "last.pt", run_dir / "last.pt")
    overrides = [
        f"out_dir={run_dir}",
        f"device={args.device}",
        f"amp={args.amp}",
        f"num_workers={workers}",
        f"data.sources=[{{kind: synth, root: {work / 'synth'}}}]",
        *args.set,
    ]
    trainer = Trainer(load_train_config(STAGES["stage1"], overrides), resume=True)
    start, start_seconds, began = trainer.step, trainer.train_seconds, time.monotonic()
    heldout = work / "synth-heldout"
    history = []
    while not history or time.monotonic() - began < args.minutes * 60:  # one leg at least
        trainer.run(stop_at=(trainer.step // args.eval_every + 1) * args.eval_every)
        trainer.save_state()
        _, split, size = HELD_OUT["procedural"]
        out = run_dir / "eval" / f"{trainer.step:07d}"
        result = run_eval(trainer.model, "davis2017", heldout, split, out, args.device, size)
        record = {
            "step": trainer.step,
            "scores": {"procedural": round(float(result.global_row.jf_mean), 4)},
        }
        history.append(record)
        print(json.dumps(record), flush=True)
    seconds = trainer.train_seconds - start_seconds  # the steps alone, evaluations aside
    _write_parts(run_dir / "last.pt", args.out)
    (args.out / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    shutil.copy2(run_dir / "metrics.jsonl", args.out / "metrics.jsonl")
    summary = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else args.device,
        "torch": torch.__version__,
        "amp": args.amp,
        "loader_workers": workers,
        "videos": args.videos,
        "render_seconds": round(render_seconds, 1),
        "train_seconds": round(seconds, 1),
        "wall_seconds": round(time.monotonic() - began, 1),
        "start_step": start,
        "end_step": trainer.step,
        "steps_per_second": round((trainer.step - start) / seconds, 3),
    }
    (args.out / "gpu.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


def _write_parts(state: Path, out: Path) -> None:
    data = state.read_bytes()
    parts = []
    for index in range(0, len(data), PART_BYTES):
        name = f"last.pt.part{index // PART_BYTES}"
        (out / name).write_bytes(data[index : index + PART_BYTES])
        parts.append(name)
    manifest = {"parts": parts, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (out / "last.pt.json").write_text(json.dumps(manifest, indent=2) + "\n")


def adopt(folder: Path) -> None:
    """Join the returned state, score it here on every held-out set, adopt it into the campaign."""
    manifest = json.loads((folder / "last.pt.json").read_text())
    data = b"".join((folder / name).read_bytes() for name in manifest["parts"])
    if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        sys.exit(f"{folder}: the joined state does not match its sha256 (a part is damaged)")
    RUN.mkdir(parents=True, exist_ok=True)
    (RUN / "last.pt").write_bytes(data)
    for name in ("gpu.json", "metrics.jsonl"):
        shutil.copy2(folder / name, RUN / name)
    config = load_train_config(STAGES["stage1"], [f"out_dir={RUN.relative_to(ROOT)}"])
    trainer = Trainer(config, resume=True)
    record = {"step": trainer.step, "scores": evaluate(trainer), "source": "gpu"}
    with (RUN / "history.jsonl").open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)
    campaign = [
        sys.executable,
        str(ROOT / "scripts" / "campaign.py"),
        "--stage",
        "stage1",
        "--adopt",
        str(RUN),
    ]
    subprocess.run([*campaign, "--minutes", "0"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="on the GPU machine: render, train, write the state")
    p.add_argument("--minutes", type=float, default=8.0, help="training time (rendering aside)")
    p.add_argument("--out", type=Path, required=True, help="where the returned files go")
    p.add_argument("--device", default="cuda")
    p.add_argument("--amp", default="bf16", choices=["none", "bf16", "fp16"])
    p.add_argument("--videos", type=int, default=SYNTH_VIDEOS, help="training videos to render")
    p.add_argument("--workers", type=int, default=None, help="render and loader processes")
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--heldout-videos", type=int, default=HELDOUT_VIDEOS)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the stage 1 recipe (a smoke test's smaller batch and crop)",
    )
    p = sub.add_parser("adopt", help="here: join, score and adopt the returned state")
    p.add_argument("folder", type=Path)
    args = parser.parse_args()
    os.chdir(ROOT)  # the recipes' data and run folders are relative to the repository
    if args.command == "train":
        train(args)
    else:
        adopt(args.folder)


if __name__ == "__main__":
    main()
