"""What int8 costs in accuracy, for both exports: J&F through the evaluator, fp32 against int8.

    .venv/bin/python scripts/int8_report.py [--checkpoint PATH]    # default: the shipped model

Exports the model in fp32 and int8 for ONNX Runtime and for ExecuTorch (XNNPACK; the ``phone``
extra), int8 calibrated as a user would: ``--calibration`` (by default the frames of one real
training video, ``data/default/real/.../bikes-000``) plus the built-in generated and real clips
of :func:`mobilevos.formats.calibration.calibration_clips`. None of them is among the scored
sets: the held-out procedural videos (other seeds) and the real test clips (other videos). Scores
PyTorch and every export on both sets at the network size 288x512 (the procedural videos' own
size; the real clips are fitted into it), and compares each int8 export's masks with its fp32
export's frame by frame (mean IoU over objects). Speed is measured by ``mobilevos bench``;
``--threads`` (1 by default) lets the report run beside other work without skewing it.
Writes ``results/int8/report.json`` and ``report.md`` (``--out``; the lite's are in
``results/int8-lite/``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mobilevos.checkpoint import DEFAULT_CHECKPOINT, load_model, read_checkpoint
from mobilevos.evaluate import run_eval
from mobilevos.formats.base import open_exported
from mobilevos.formats.calibration import read_calibration_frames
from mobilevos.formats.export import export_model
from mobilevos.formats.verify import mask_iou
from mobilevos.io import read_label_image

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    "procedural held-out": ROOT / "data" / "default" / "synth-heldout",
    "real test clips": ROOT / "data" / "default" / "real-test",
}
CALIBRATION = ROOT / "data" / "default" / "real" / "JPEGImages" / "480p" / "bikes-000"
SIZE = (288, 512)
FORMATS = ("onnx", "executorch")


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
    parser.add_argument("--calibration", type=Path, default=CALIBRATION)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "int8")
    parser.add_argument("--threads", type=int, default=1, help="threads of every backend")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = ROOT / "runs" / "int8-report"
    model = load_model(args.checkpoint)
    frames = read_calibration_frames(args.calibration)
    networks: dict[str, object] = {"torch": model}
    quantization = {}
    for fmt in FORMATS:
        for int8 in (False, True):
            name = f"{fmt}-{'int8' if int8 else 'fp32'}"
            folder = work / name
            manifest = export_model(
                model, folder, SIZE, 4, format=fmt, int8=int8,
                calibration_frames=frames if int8 else None,
            )  # fmt: skip
            if int8:
                quantization[name] = manifest["quantization"]
            networks[name] = open_exported(folder, threads=args.threads)
    rows: dict[str, dict[str, float]] = {}
    for set_name, root in SETS.items():
        slug = set_name.replace(" ", "-")
        for name, network in networks.items():
            out = work / f"pred-{slug}-{name}"
            result = run_eval(network, "davis2017", root, "val", out, "cpu", SIZE[0], workers=1)
            rows.setdefault(name, {})[set_name] = round(float(result.global_row.jf_mean), 4)
    agreement = {
        f"{fmt}-int8": {
            s: round(
                masks_iou(
                    work / f"pred-{s.replace(' ', '-')}-{fmt}-fp32",
                    work / f"pred-{s.replace(' ', '-')}-{fmt}-int8",
                ),
                4,
            )
            for s in SETS
        }
        for fmt in FORMATS
    }
    drop = {
        f"{fmt}-int8": {s: round(rows[f"{fmt}-int8"][s] - rows[f"{fmt}-fp32"][s], 4) for s in SETS}
        for fmt in FORMATS
    }
    report = {
        "checkpoint": str(args.checkpoint),
        "steps": read_checkpoint(args.checkpoint).meta.get("steps"),
        "size": list(SIZE),
        "user_calibration": str(args.calibration.relative_to(ROOT)),
        "quantization": quantization,
        "jf": rows,
        "int8_minus_fp32_jf": drop,
        "int8_vs_fp32_mean_mask_iou": agreement,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    names = list(SETS)
    lines = [
        f"Model {args.checkpoint.name} ({report['steps']} steps), network input "
        f"{SIZE[0]}x{SIZE[1]}; int8 calibrated on {report['user_calibration']} (the user's clip) "
        "and the built-in generated and real clips, none of them scored here.",
        "",
        "| backend | " + " | ".join(f"{n} J&F" for n in names) + " |",
        "|---|" + "---|" * len(names),
        *[f"| {k} | " + " | ".join(f"{v[n]:.4f}" for n in names) + " |" for k, v in rows.items()],
        "",
        "| int8 export | " + " | ".join(f"{n}: J&F - fp32 / IoU vs fp32" for n in names) + " |",
        "|---|" + "---|" * len(names),
        *[
            f"| {k} | "
            + " | ".join(f"{drop[k][n]:+.4f} / {agreement[k][n]:.4f}" for n in names)
            + " |"
            for k in drop
        ],
    ]
    (args.out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
