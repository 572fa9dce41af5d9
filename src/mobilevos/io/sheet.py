"""Contact sheets: a few frames of a video with their masks blended on, laid out in one PNG.

A person checks a segmentation (or a set of pseudo-masks) faster on one picture of a few
evenly spaced frames than in a video: ``mobilevos demo`` and the data builders write them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mobilevos.io.atomic import atomic_path
from mobilevos.io.video import blend_labels


def sheet_tiles(
    frames: Sequence[np.ndarray], labels: Sequence[np.ndarray], count: int, height: int
) -> list[Image.Image]:
    """``count`` evenly spaced frames with their label maps blended on, ``height`` pixels high.

    Shapes: frames (H, W, 3) uint8; labels (H, W) integer or bool label maps.
    """
    picks = np.unique(np.linspace(0, len(frames) - 1, count).round().astype(int))
    tiles = []
    for t in picks:
        image = Image.fromarray(blend_labels(frames[t], np.asarray(labels[t], dtype=np.uint8)))
        width = round(image.width * height / image.height)
        tiles.append(image.resize((width, height), Image.Resampling.BILINEAR))
    return tiles


def write_contact_sheet(
    path: str | Path, blocks: Sequence[tuple[str, Sequence[Image.Image]]], columns: int = 1
) -> None:
    """Lay out captioned rows of tiles in ``columns`` columns and write them as one PNG.

    Each block is ``(caption, tiles)``: one row of tiles under its caption (a sequence, or the
    frames of a result). The file appears only once complete.
    """
    caption, gap = 18, 6
    font = ImageFont.load_default(size=13)
    widths = [sum(t.width for t in tiles) + gap * (len(tiles) - 1) for _, tiles in blocks]
    heights = [caption + max(t.height for t in tiles) for _, tiles in blocks]
    column_width = max(widths) + 2 * gap
    rows = math.ceil(len(blocks) / columns)
    row_height = max(heights) + gap
    sheet = Image.new("RGB", (columns * column_width, rows * row_height + gap), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (title, tiles) in enumerate(blocks):
        x, y = (i % columns) * column_width + gap, (i // columns) * row_height + gap
        draw.text((x, y), title, fill=(0, 0, 0), font=font)
        for tile in tiles:
            sheet.paste(tile, (x, y + caption))
            x += tile.width + gap
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
