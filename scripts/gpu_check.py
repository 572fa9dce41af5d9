"""CUDA and AMP checks with GPU timings, in one short run (a few minutes on one GPU).

    python scripts/gpu_check.py --out gpu-check        # needs a CUDA device

1. Streaming inference on CUDA (fp32, fp16 and bf16 autocast) against the CPU, per preset:
   largest probability difference and the share of pixels whose label differs.
2. Latency per frame at 480p on the GPU, fp32 and fp16 autocast, per preset.
3. Training on CUDA with amp none / bf16 / fp16 (the tiny smoke recipe): the loss stays finite
   and falls, and the final checkpoint loads on the CPU.
4. The single-GPU distillation recipe (``configs/single-gpu.yaml``, mbv2-lite student, a
   teacher-mbv2 teacher, 384 crops): peak GPU memory and seconds per step, with and without
   activation checkpointing.

Writes ``gpu_check.json`` beside a printed summary; exits non-zero if a check fails.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from mobilevos.checkpoint import load_model, save_checkpoint
from mobilevos.config import get_preset
from mobilevos.data.synth import SynthConfig, render_video
from mobilevos.info import measure_latency
from mobilevos.model.network import build_model
from mobilevos.predictor import VOSPredictor
from mobilevos.train import Trainer
from mobilevos.train.config import load_train_config

ROOT = Path(__file__).resolve().parents[1]
STUDENTS = ["mobilevos-mbv2-lite", "mobilevos-mbv2", "mobilevos-r18"]
# Largest probability difference from the CPU. The models are untrained (random weights, no
# downloads), so many pixels sit near a tie and the share of flipped labels is reported only.
MAX_PROB_DIFF = {"fp32": 1e-3, "fp16": 5e-2, "bf16": 1e-1}


def track(model, video, device: str, amp: str) -> tuple[list, list]:
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(amp, torch.float16)
    predictor = VOSPredictor.from_model(
        model, device=device, size=480, autocast=amp != "fp32", autocast_dtype=dtype
    )
    labels, probs = [], []
    for t, frame in enumerate(video.frames):
        labels.append(predictor.step(frame, video.labels[0] if t == 0 else None))
        probs.append(predictor.probabilities.float().cpu())
    return labels, probs


def check_inference(failures: list[str]) -> dict:
    video = render_video(7, SynthConfig(height=480, width=854, num_frames=10, num_objects=(2, 3)))
    out = {}
    for name in STUDENTS:
        torch.manual_seed(0)
        model = build_model(get_preset(name), pretrained=False).eval()
        ref_labels, ref_probs = track(model, video, "cpu", "fp32")
        for amp in ("fp32", "fp16", "bf16"):
            labels, probs = track(model, video, "cuda", amp)
            diff = max((a - b).abs().max().item() for a, b in zip(probs, ref_probs, strict=True))
            flips = sum((a != b).mean() for a, b in zip(labels, ref_labels, strict=True)) / len(
                labels
            )
            out[f"{name}/{amp}"] = {"max_prob_diff": diff, "label_flip_fraction": float(flips)}
            print(f"  {name:<22}{amp:<6} max |p - p_cpu| {diff:.2e}  labels differ {flips:.2e}")
            if not diff <= MAX_PROB_DIFF[amp]:  # also catches NaN
                failures.append(f"inference {name} {amp}: diff {diff:.2e}, flips {flips:.2e}")
    return out


def check_latency() -> dict:
    out = {}
    print(f"  {'preset':<22}{'fp32 ms':>10}{'fp16 ms':>10}   (segment + write, 480x848)")
    for name in [*STUDENTS, "teacher-mbv2", "teacher-r50"]:
        row = {}
        for amp in ("fp32", "fp16"):
            with torch.autocast("cuda", dtype=torch.float16, enabled=amp == "fp16"):
                seg, write = measure_latency(name, size=480, frames=30, device="cuda")
            row[amp] = {"segment_ms": seg * 1e3, "write_ms": write * 1e3}
        out[name] = row
        total = [row[a]["segment_ms"] + row[a]["write_ms"] for a in ("fp32", "fp16")]
        print(f"  {name:<22}{total[0]:>10.1f}{total[1]:>10.1f}")
    return out


def read_losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["total"] for line in lines if '"total"' in line]


def check_training(work: Path, failures: list[str]) -> dict:
    out = {}
    for amp in ("none", "bf16", "fp16"):
        run_dir = work / f"smoke-{amp}"
        config = load_train_config(
            ROOT / "configs" / "smoke.yaml",
            [
                f"out_dir={run_dir}",
                "device=cuda",
                f"amp={amp}",
                "steps=60",
                "log_every=5",
                "checkpoint_every=30",
            ],
        )
        start = time.perf_counter()
        final = Trainer(config).run()
        seconds = time.perf_counter() - start
        losses = read_losses(run_dir)
        model = load_model(final)  # strict, onto the CPU
        first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
        ok = all(math.isfinite(x) for x in losses) and last < first
        out[amp] = {
            "loss_first": first,
            "loss_last": last,
            "seconds": seconds,
            "params": sum(p.numel() for p in model.parameters()),
        }
        print(f"  amp {amp:<5} loss {first:.3f} -> {last:.3f}  ({seconds:.1f} s for 60 steps)")
        if not ok:
            failures.append(f"training amp={amp}: losses {losses}")
    return out


def check_single_gpu_recipe(work: Path, failures: list[str]) -> dict:
    teacher = work / "teacher.ckpt"
    torch.manual_seed(0)
    save_checkpoint(build_model(get_preset("teacher-mbv2")), teacher)
    out = {}
    for checkpointing in (True, False):
        run_dir = work / f"single-gpu-ckpt{int(checkpointing)}"
        config = load_train_config(
            ROOT / "configs" / "single-gpu.yaml",
            [
                f"out_dir={run_dir}",
                f"teacher.checkpoint={teacher}",
                "steps=12",
                f"activation_checkpointing={str(checkpointing).lower()}",
                "checkpoint_every=1000",
                "log_every=4",
                "data.sources=[{kind: synth-online, videos: 64, frames: 12}]",
            ],
        )
        trainer = Trainer(config)
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        trainer.run(stop_at=4)  # warm-up: allocator, cudnn autotune, data workers
        torch.cuda.synchronize()
        warm = time.perf_counter()
        trainer.run()
        torch.cuda.synchronize()
        per_step = (time.perf_counter() - warm) / 8
        peak = torch.cuda.max_memory_allocated() / 2**30
        losses = read_losses(run_dir)
        out[f"activation_checkpointing={checkpointing}"] = {
            "peak_gib": peak,
            "seconds_per_step": per_step,
            "losses": losses,
            "first_steps_seconds": warm - start,
        }
        print(
            f"  activation checkpointing {checkpointing!s:<5} peak {peak:.2f} GiB, "
            f"{per_step:.3f} s/step (batch 4 as 2x2, 384 crops, bf16)"
        )
        if not all(math.isfinite(x) for x in losses):
            failures.append(f"single-gpu recipe (checkpointing={checkpointing}): {losses}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-check"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device", file=sys.stderr)
        return 2
    report = {
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(),
        "cuda": torch.version.cuda,
    }
    print(f"torch {report['torch']}, CUDA {report['cuda']}, {report['gpu']}")
    failures: list[str] = []
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for title, check in [
            ("inference on CUDA vs CPU", lambda: check_inference(failures)),
            ("latency", check_latency),
            ("training with AMP", lambda: check_training(work, failures)),
            ("single-GPU recipe", lambda: check_single_gpu_recipe(work, failures)),
        ]:
            print(f"\n{title}:")
            start = time.perf_counter()
            try:
                report[title] = check()
            except Exception as exc:  # report and go on: one run must say everything it can
                failures.append(f"{title}: {type(exc).__name__}: {exc}")
                print(f"  FAILED: {type(exc).__name__}: {exc}")
                traceback.print_exc()
            print(f"  ({time.perf_counter() - start:.0f} s)")
    report["failures"] = failures
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    print("\nall checks passed" if not failures else "\nFAILED:\n" + "\n".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
