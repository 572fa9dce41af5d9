"""Segment a user's video (or frame folder) from their first-frame mask(s).

This is the job behind ``mobilevos segment``; the CLI only parses arguments.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from mobilevos.errors import InputError
from mobilevos.io import OverlayWriter, atomic_dir, open_frames, open_masks, write_palette_png
from mobilevos.predictor import VOSPredictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentResult:
    frames: int
    objects: list[int]
    out_dir: Path
    overlay: Path | None


def segment_video(
    predictor: VOSPredictor,
    source: str | Path,
    masks: str | Path,
    out_dir: str | Path,
    overlay: str | Path | None = None,
    progress: bool = True,
) -> SegmentResult:
    """Run ``predictor`` over every frame of ``source`` and write one palette PNG per frame.

    ``masks`` is one PNG (the first frame's) or a folder of PNGs named after frames (stem or
    index), which introduce objects on those frames. PNGs are named after the input frames
    (zero-padded index for videos). ``overlay`` optionally writes an mp4 of the masks blended
    over the frames. Nothing appears under ``out_dir`` or ``overlay`` unless the whole video
    succeeds.
    """
    out_dir = Path(out_dir)
    predictor.reset()
    mask_source = open_masks(masks)
    with open_frames(source) as frames:
        if frames.names is not None:
            mask_source.check_against(frames.names)
        writer = OverlayWriter(overlay, fps=frames.fps) if overlay else contextlib.nullcontext()
        count = 0
        with atomic_dir(out_dir) as tmp_dir, writer as overlay_writer:
            bar = tqdm(frames, total=frames.num_frames, unit="frame", disable=not progress)
            for frame in bar:
                given = mask_source.mask_for(frame)
                try:
                    labels = predictor.step(frame.image, mask=given)
                except InputError as exc:
                    if exc.path is None:  # the predictor knows no file names; its errors are
                        raise InputError(masks, exc.problem) from None  # about the masks
                    raise
                write_palette_png(tmp_dir / f"{frame.name}.png", labels)
                if overlay_writer is not None:
                    overlay_writer.write(frame.image, labels)
                count += 1
            unused = mask_source.unused()
            if unused:
                names = ", ".join(p.name for p in unused[:5])
                raise InputError(masks, f"masks match no frame of {source}: {names}")
    return SegmentResult(count, predictor.object_ids, out_dir, Path(overlay) if overlay else None)
