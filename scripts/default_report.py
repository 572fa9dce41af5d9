"""Score a model on the default model's held-out sets, through the evaluator, with baselines.

    .venv/bin/python scripts/default_report.py [--checkpoint PATH]     # default: the shipped model

Sets (``make default-data`` builds them): the held-out procedural videos (multi-object, seeds
never trained on) and the three real test clips ``carphone``, ``box`` and ``cup``, whose masks
come from U²-Net-p on every frame (so scores measure agreement with that model). The copy-the-
first-mask baseline (every frame predicted as the first frame's mask) is scored beside the model.
Writes ``results/default/scores.json`` and ``table.md``. Never used to choose a checkpoint: the
campaign selects on the procedural held-out set and the real validation videos only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from campaign import per_object_jf

from mobilevos.checkpoint import DEFAULT_CHECKPOINT, load_model, read_checkpoint
from mobilevos.data.davis import DavisDataset
from mobilevos.evaluate import run_eval
from mobilevos.io import write_palette_png
from mobilevos.scoring import score_davis

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    # name: (DAVIS-layout root, network input short side; None keeps the clip's own size)
    "procedural held-out": (ROOT / "data" / "default" / "synth-heldout", 288),
    "real test clips": (ROOT / "data" / "default" / "real-test", None),
}


def copy_first_mask(root: Path, out: Path) -> float:
    """J&F of predicting every frame as the first frame's mask."""
    data = DavisDataset(root, 2017, "val")
    for name in data.sequences:
        sequence = data[name]
        first = sequence.read_annotation(0)
        for frame in sequence.frame_names:
            write_palette_png(out / name / f"{frame}.png", first)
    return float(score_davis(root, out, 2017, "val").global_row.jf_mean)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "default")
    args = parser.parse_args()
    model = load_model(args.checkpoint)
    meta = read_checkpoint(args.checkpoint).meta
    work = ROOT / "runs" / "default-report"
    scores: dict[str, dict] = {}
    for name, (root, size) in SETS.items():
        slug = name.replace(" ", "-")
        result = run_eval(model, "davis2017", root, "val", work / slug, "cpu", size, workers=1)
        scores[name] = {
            "jf": round(float(result.global_row.jf_mean), 4),
            "j": round(float(result.global_row.j_mean), 4),
            "f": round(float(result.global_row.f_mean), 4),
            "copy_first_mask_jf": round(copy_first_mask(root, work / f"{slug}-copy"), 4),
            "per_object_jf": per_object_jf(result),
        }
    report = {"checkpoint": str(args.checkpoint), "steps": meta.get("steps"), "sets": scores}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scores.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"Model: {args.checkpoint.name}, {meta.get('steps')} steps.",
        "",
        "| set | J&F | J | F | copy-the-first-mask J&F |",
        "|---|---|---|---|---|",
    ]
    for name, s in scores.items():
        lines.append(f"| {name} | {s['jf']:.3f} | {s['j']:.3f} | {s['f']:.3f} | "
                     f"{s['copy_first_mask_jf']:.3f} |")  # fmt: skip
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
