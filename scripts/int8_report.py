"""What int8 costs in accuracy: J&F through the evaluator, fp32 graphs against int8 graphs.

    .venv/bin/python scripts/int8_report.py [--checkpoint PATH]    # default: the shipped model

Exports the model at 288x512 (the held-out procedural videos' size) in fp32 and in int8,
calibrated on frames of the real training videos (``data/default/real``, never the test clips),
scores PyTorch, ONNX fp32 and ONNX int8 on the held-out procedural videos, and compares the
int8 masks with the fp32 masks frame by frame (mean IoU over objects). Speed is measured by
``mobilevos bench`` (``results/bench/``). Writes ``results/int8/report.json`` and ``report.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mobilevos.checkpoint import DEFAULT_CHECKPOINT, load_model, read_checkpoint
from mobilevos.data.davis import DavisDataset
from mobilevos.engine.ort_engine import OrtEngine
from mobilevos.evaluate import run_eval
from mobilevos.export import export_onnx
from mobilevos.io import read_label_image
from mobilevos.verify import mask_iou

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT = ROOT / "data" / "default" / "synth-heldout"
CALIBRATION = ROOT / "data" / "default" / "real"
SIZE = (288, 512)


def calibration_frames(count: int = 24) -> list[np.ndarray]:
    data = DavisDataset(CALIBRATION, 2017, "train")
    frames = []
    for name in data.sequences:
        sequence = data[name]
        frames.extend(sequence.read_frame(i) for i in range(0, len(sequence), 8))
    step = max(1, len(frames) // count)
    return frames[::step][:count]


def masks_iou(a: Path, b: Path) -> float:
    """Mean over frames (and objects) of the IoU between two prediction folders."""
    scores = []
    for path in sorted(a.glob("*/*.png")):
        x, y = read_label_image(path), read_label_image(b / path.parent.name / path.name)
        ids = sorted(set(np.unique(x).tolist()) - {0})
        if ids:
            scores.append(mask_iou(x, y, ids))
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "int8")
    args = parser.parse_args()
    work = ROOT / "runs" / "int8-report"
    model = load_model(args.checkpoint)
    export_onnx(model, work / "fp32", SIZE, max_objects=4)
    export_onnx(model, work / "int8", SIZE, 4, int8=True, calibration_frames=calibration_frames())
    networks = {
        "torch": model,
        "onnx-fp32": OrtEngine(work / "fp32"),
        "onnx-int8": OrtEngine(work / "int8"),
    }
    rows = {}
    for name, network in networks.items():
        result = run_eval(network, "davis2017", HELD_OUT, "val", work / f"pred-{name}", "cpu", None)
        rows[name] = round(float(result.global_row.jf_mean), 4)
    iou = masks_iou(work / "pred-onnx-fp32", work / "pred-onnx-int8")
    report = {
        "checkpoint": str(args.checkpoint),
        "steps": read_checkpoint(args.checkpoint).meta.get("steps"),
        "size": list(SIZE),
        "held_out_jf": rows,
        "int8_minus_fp32_jf": round(rows["onnx-int8"] - rows["onnx-fp32"], 4),
        "int8_vs_fp32_mean_mask_iou": round(iou, 4),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"Held-out procedural videos at {SIZE[0]}x{SIZE[1]}, model {args.checkpoint.name} "
        f"({report['steps']} steps).",
        "",
        "| backend | J&F |",
        "|---|---|",
        *[f"| {k} | {v:.4f} |" for k, v in rows.items()],
        "",
        f"int8 - fp32: {report['int8_minus_fp32_jf']:+.4f} J&F; int8 masks against fp32 masks: "
        f"mean IoU {iou:.4f}.",
    ]
    (args.out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
