"""Pictures of prompts: the ``--preview`` image and the prompted frame's label PNG.

The ``segment`` command can write what it made of the first prompted frame's prompts
(``--save-prompt-mask``, ``--preview``), so a person can check the boxes and clicks against
the mask they gave. Pillow is imported only when a picture is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mobilevos.io import DAVIS_PALETTE, atomic_path, blend_labels, write_palette_png
from mobilevos.prompts.masks import PromptedFrame
from mobilevos.prompts.objects import ObjectPrompt


def draw_prompts(
    image: np.ndarray, labels: np.ndarray, objects: Sequence[ObjectPrompt]
) -> np.ndarray:
    """``image`` with ``labels`` blended on, each box outlined in its object's colour and
    labelled with its id, positive clicks as green discs with a + and negative ones as red
    discs with a −: the picture ``--preview`` writes.

    Shapes:
        image: (H, W, 3) uint8 RGB; labels: (H, W) uint8; returns: (H, W, 3) uint8 RGB
    """
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.fromarray(blend_labels(image, labels))
    draw = ImageDraw.Draw(picture)
    height, width = labels.shape
    line = max(2, round(min(height, width) / 240))
    radius = max(4, round(min(height, width) / 60))
    font = ImageFont.load_default(size=max(10, round(min(height, width) / 30)))
    for prompt in objects:
        colour = tuple(int(c) for c in DAVIS_PALETTE[prompt.object_id])
        if prompt.box is not None:
            x0, y0, x1, y1 = prompt.box.pixels(height, width)
            draw.rectangle((x0 - 1, y0 - 1, x1, y1), outline=(0, 0, 0), width=line + 2)
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=colour, width=line)
            text = f" {prompt.object_id} "
            draw.rectangle(draw.textbbox((x0, y0), text, font=font), fill=colour)
            draw.text((x0, y0), text, fill=(255, 255, 255), font=font)
        for click in prompt.clicks:
            x, y = click.pixel(height, width)
            fill = (0, 200, 0) if click.positive else (230, 0, 0)
            draw.ellipse(
                (x - radius, y - radius, x + radius, y + radius),
                fill=fill,
                outline=(255, 255, 255),
                width=max(1, line // 2),
            )
            arm = max(2, radius // 2)
            draw.line((x - arm, y, x + arm, y), fill=(255, 255, 255), width=max(1, line // 2))
            if click.positive:
                draw.line((x, y - arm, x, y + arm), fill=(255, 255, 255), width=max(1, line // 2))
    return np.asarray(picture)


def write_prompt_pictures(
    prompted: PromptedFrame, prompt_mask: str | Path | None, preview: str | Path | None
) -> None:
    """Write ``prompted``'s label map as a palette PNG and/or its :func:`draw_prompts`
    picture, each atomically."""
    from PIL import Image

    if prompt_mask is not None:
        write_palette_png(prompt_mask, prompted.labels)
    if preview is not None:
        picture = draw_prompts(prompted.image, prompted.labels, prompted.objects)
        with atomic_path(preview) as tmp:
            Image.fromarray(picture).save(tmp)
