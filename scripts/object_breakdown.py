"""Where a paired difference comes from: per-object J&F differences split by the objects' traits.

    .venv/bin/python scripts/object_breakdown.py results/fast-half results/fast \
        --against results/default --out results/fast-half/breakdown.md

Reads reports written by ``scripts/default_report.py`` (their ``scores.json``) and, for the
procedural held-out set (whose ground truth is exact), splits each model's per-object
difference against ``--against`` by three traits of the object, each measured on its
ground-truth masks: its mean area (share of the frame), its edge share (the share of its pixels
within 2 pixels of its border: thin parts have a high one) and whether it vanishes (is fully
hidden or out of the frame) in some frame after the first. Writes a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
SET = "procedural held-out"
ANNOTATIONS = ROOT / "data" / "default" / "synth-heldout" / "Annotations" / "480p"


def traits(name: str) -> dict[str, float]:
    """Area, edge share and whether it vanishes, of object ``<sequence>_<id>``."""
    sequence, label = name.rsplit("_", 1)
    areas, edges, vanishes = [], [], False
    for index, path in enumerate(sorted((ANNOTATIONS / sequence).glob("*.png"))):
        mask = np.asarray(Image.open(path)) == int(label)
        pixels = int(mask.sum())
        if pixels == 0:
            vanishes = vanishes or index > 0
            continue
        areas.append(pixels / mask.size)
        edges.append(1 - ndimage.binary_erosion(mask, iterations=2).sum() / pixels)
    return {"area": statistics.mean(areas), "edge": statistics.mean(edges), "vanishes": vanishes}


def per_object(report: Path) -> tuple[str, dict[str, float]]:
    data = json.loads((report / "scores.json").read_text())
    return Path(data["checkpoint"]).stem, data["sets"][SET]["per_object_jf"]


def thirds(names: list[str], key: dict[str, float]) -> list[list[str]]:
    ordered = sorted(names, key=key.__getitem__)
    n = len(ordered)
    return [ordered[: n // 3], ordered[n // 3 : 2 * n // 3], ordered[2 * n // 3 :]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reports", type=Path, nargs="+", help="default_report.py output folders")
    parser.add_argument("--against", type=Path, required=True, help="the baseline's report")
    parser.add_argument("--out", type=Path, required=True, help="Markdown file to write")
    args = parser.parse_args()
    base_name, base = per_object(args.against)
    models = [(report.name, per_object(report)[1]) for report in args.reports]
    names = sorted(base)
    facts = {name: traits(name) for name in names}
    groups: list[tuple[str, list[str]]] = []
    splits = {"area": ("smallest", "middle", "largest"), "edge": ("least", "middle", "most")}
    for trait, labels in splits.items():
        key = {n: facts[n][trait] for n in names}
        for label, part in zip(labels, thirds(names, key), strict=True):
            low, high = min(key[n] for n in part), max(key[n] for n in part)
            groups.append((f"{trait} third: {label} ({low:.3f}–{high:.3f})", part))
    for gone in (True, False):
        part = [n for n in names if facts[n]["vanishes"] is gone]
        groups.append(("vanishes after frame 0" if gone else "always visible", part))
    groups.append(("all", names))
    header = " | ".join(f"{m} − {args.against.name}: mean / median" for m, _ in models)
    lines = [
        f"Per-object J&F difference against {base_name} on the {SET} set, by the object's "
        "traits on its ground truth (scripts/object_breakdown.py).",
        "",
        f"| objects | count | {header} |",
        "|---|---|" + "---|" * len(models),
    ]
    for label, part in groups:
        cells = []
        for _, scores in models:
            diffs = [scores[n] - base[n] for n in part]
            cells.append(f"{statistics.mean(diffs):+.3f} / {statistics.median(diffs):+.3f}")
        lines.append(f"| {label} | {len(part)} | " + " | ".join(cells) + " |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
