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


def check_paths(
    source: str | Path, masks: str | Path, out_dir: str | Path, overlay: str | Path | None
) -> None:
    """Refuse outputs that would overwrite inputs or unrelated files, before any work starts.

    ``out_dir`` is replaced as a whole when the run succeeds, so it must be new, empty, or hold
    only label PNGs (an earlier result), and must not be, contain or lie inside an input.
    """
    out = Path(out_dir).resolve()
    inputs = [Path(source).resolve(), Path(masks).resolve()]
    if out.exists() and not out.is_dir():
        raise InputError(out_dir, "exists and is not a folder")
    for path in inputs:
        if out == path or path.is_relative_to(out) or (path.is_dir() and out.is_relative_to(path)):
            raise InputError(out_dir, f"output folder overlaps the input {path}")
    if out.is_dir():
        foreign = [p.name for p in out.iterdir() if p.suffix.lower() != ".png" or p.is_dir()]
        if foreign:
            raise InputError(
                out_dir,
                f"output folder holds other files ({', '.join(sorted(foreign)[:3])}); "
                "choose a new or empty folder",
            )
    if overlay is not None:
        target = Path(overlay).resolve()
        if target in inputs or target.is_relative_to(out):
            raise InputError(overlay, "overlay would overwrite an input or the output folder")
        if target.is_dir():
            raise InputError(overlay, "overlay must be a video file path, not a folder")


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
    check_paths(source, masks, out_dir, overlay)
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
