"""Score a model on the default model's held-out sets, through the evaluator, with baselines.

    .venv/bin/python scripts/default_report.py [--checkpoint PATH]     # default: the shipped model
    .venv/bin/python scripts/default_report.py --out results/fast \
        --checkpoint src/mobilevos/assets/mobilevos-mbv2-fast.ckpt --against results/default

Sets (``make default-data`` builds them): the held-out procedural videos (multi-object, seeds
never trained on), the validation split of the pseudo-masked real videos (what the campaigns
select on, with the procedural set) and the three real test clips ``carphone``, ``box`` and
``cup`` (never used for a choice). Real masks come from U²-Net-p on every frame (so scores
measure agreement with that model). The copy-the-first-mask baseline (every frame predicted as
the first frame's mask) is scored beside the model. ``--against`` names a second model, a
checkpoint (scored here too) or a folder this script wrote for it (its ``scores.json``), and
adds the paired per-object difference (this model minus that one) with its standard error.
Writes ``scores.json`` and ``table.md`` into ``--out`` (default ``results/default``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from campaign import paired_stats, per_object_jf

from mobilevos.checkpoint import DEFAULT_CHECKPOINT, load_model, read_checkpoint
from mobilevos.data.davis import DavisDataset
from mobilevos.evaluate import run_eval
from mobilevos.io import write_palette_png
from mobilevos.scoring import score_davis

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    # name: (DAVIS-layout root, network input short side; None keeps the clip's own size)
    "procedural held-out": (ROOT / "data" / "default" / "synth-heldout", 288),
    "real validation": (ROOT / "data" / "default" / "real", 288),
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


def shown(path: Path) -> str:
    """``path`` relative to the repository when inside it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def score(checkpoint: Path, work: Path) -> dict[str, dict]:
    """J, F, J&F and per-object J&F of ``checkpoint`` on every set (PyTorch, 2017 scoring)."""
    model = load_model(checkpoint)
    scores = {}
    for name, (root, size) in SETS.items():
        out = work / name.replace(" ", "-")
        result = run_eval(model, "davis2017", root, "val", out, "cpu", size, workers=1)
        scores[name] = {
            "jf": round(float(result.global_row.jf_mean), 4),
            "j": round(float(result.global_row.j_mean), 4),
            "f": round(float(result.global_row.f_mean), 4),
            "per_object_jf": per_object_jf(result),
        }
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument(
        "--against",
        type=Path,
        help="another model to compare per object: a checkpoint, or a "
        "folder this script wrote for it",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "default")
    args = parser.parse_args()
    meta = read_checkpoint(args.checkpoint).meta
    work = ROOT / "runs" / "default-report"
    scores = score(args.checkpoint, work / "model")
    for name, (root, _) in SETS.items():
        copy = copy_first_mask(root, work / f"{name.replace(' ', '-')}-copy")
        scores[name]["copy_first_mask_jf"] = round(copy, 4)
    report = {"checkpoint": shown(args.checkpoint), "steps": meta.get("steps"), "sets": scores}
    if args.against is not None:
        if args.against.is_dir():  # an earlier report of the other model
            earlier = json.loads((args.against / "scores.json").read_text())
            base, against, steps = earlier["sets"], Path(earlier["checkpoint"]), earlier["steps"]
        else:
            base, against = score(args.against, work / "against"), args.against
            steps = read_checkpoint(against).meta.get("steps")
        report["against"] = {
            "checkpoint": shown(against),
            "steps": steps,
            "sets": {
                name: {
                    "jf": base[name]["jf"],
                    "paired": paired_stats(s["per_object_jf"], base[name]["per_object_jf"]),
                }
                for name, s in scores.items()
            },
        }
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
    if args.against is not None:
        lines += [
            "",
            f"Against {against.name}: per object, this model minus that one (mean ± "
            "standard error; objects better / worse by more than 0.01).",
            "",
            f"| set | {against.stem} J&F | paired difference | better / worse |",
            "|---|---|---|---|",
        ]
        for name, c in report["against"]["sets"].items():
            d = c["paired"]
            lines.append(f"| {name} | {c['jf']:.3f} | {d['mean']:+.3f} ± {d['se']:.3f} "
                         f"({d['objects']} objects) | {d['better']} / {d['worse']} |")  # fmt: skip
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
