"""Segment a user's video (or frame folder) from their mask(s) and/or box and click prompts.

This is the job behind ``mobilevos segment``; the CLI only parses arguments. What is given on a
frame (:class:`FrameAnnotations`) is the mask file's label map merged with the label map that
:class:`~mobilevos.prompts.PromptSegmenter` makes from that frame's prompts; it enters
:meth:`VOSPredictor.step(frame, mask=...) <mobilevos.predictor.VOSPredictor.step>` the same way
whatever its source, on the first frame or as a correction later.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mobilevos.errors import ConfigError, InputError
from mobilevos.io import (
    VOID_LABEL,
    Frame,
    FrameSource,
    MaskSource,
    OverlayWriter,
    atomic_dir,
    open_frames,
    open_masks,
    write_palette_png,
)
from mobilevos.predictor import VOSPredictor
from mobilevos.prompts import (
    Prompt,
    PromptedFrame,
    PromptSegmenter,
    check_prompts,
    write_prompt_pictures,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentResult:
    frames: int
    objects: list[int]
    out_dir: Path
    overlay: Path | None


@dataclass(frozen=True)
class SegmentJob:
    """What ``mobilevos segment`` is asked to do: a video, what marks its objects (a mask file
    or folder, box and click prompts) and where the results go.

    Without ``out_dir`` the job only checks prompts: it makes the first prompted frame's label
    map (``prompt_mask``) and/or its picture (``preview``) without segmenting the video.
    :meth:`check` refuses a contradictory or unsafe job before any model is loaded.
    """

    source: Path
    masks: Path | None = None
    out_dir: Path | None = None
    overlay: Path | None = None
    prompts: tuple[Prompt, ...] = ()
    prompt_mask: Path | None = None
    preview: Path | None = None

    @property
    def tracks(self) -> bool:
        """Whether the job segments the video (else it only checks prompts)."""
        return self.out_dir is not None

    def check(self) -> None:
        """Everything that can be checked before a model is loaded: the options' combination,
        the paths (:func:`check_paths`), the frames' and masks' files, and the prompts against
        the frames."""
        if self.masks is None and not self.prompts:
            raise ConfigError("give the objects: --mask PNG, or --box / --click prompts")
        if self.out_dir is None:
            if not self.prompts or (self.prompt_mask is None and self.preview is None):
                raise ConfigError(
                    "give --out DIR, or (to check prompts without segmenting) --box/--click "
                    "with --save-prompt-mask PNG and/or --preview PNG"
                )
            if self.overlay is not None:
                raise ConfigError("--overlay needs --out")
        if (self.prompt_mask or self.preview) and not self.prompts:
            raise ConfigError(
                "--save-prompt-mask and --preview show prompts: give --box or --click"
            )
        for option, path, suffixes in (
            ("--save-prompt-mask", self.prompt_mask, (".png",)),
            ("--preview", self.preview, (".png", ".jpg", ".jpeg")),
        ):
            if path is not None and path.suffix.lower() not in suffixes:
                raise InputError(path, f"{option} writes {' or '.join(suffixes)} files")
        check_paths(
            self.source, self.masks, self.out_dir, self.overlay, (self.prompt_mask, self.preview)
        )
        with open_frames(self.source) as frames:
            size, num_frames = frames.size, frames.num_frames
        if self.masks is not None:
            open_masks(self.masks)
        check_prompts(self.prompts, size, num_frames)


def check_paths(
    source: str | Path,
    masks: str | Path | None,
    out_dir: str | Path | None,
    overlay: str | Path | None,
    pictures: Sequence[str | Path | None] = (),
) -> None:
    """Refuse outputs that would overwrite inputs or unrelated files, before any work starts.

    ``out_dir`` is replaced as a whole when the run succeeds, so it must be new, empty, or hold
    only label PNGs (an earlier result), and must not be, contain or lie inside an input.
    ``overlay`` and ``pictures`` (the ``--save-prompt-mask`` and ``--preview`` files) must not
    be an input, a folder, or inside ``out_dir``.
    """
    inputs = [Path(p).resolve() for p in (source, masks) if p is not None]
    out = None if out_dir is None else Path(out_dir).resolve()
    if out is not None:
        _check_out_dir(out, out_dir, inputs)
    for target in [overlay, *pictures]:
        if target is None:
            continue
        resolved = Path(target).resolve()
        if resolved in inputs or (out is not None and resolved.is_relative_to(out)):
            raise InputError(target, "would overwrite an input or the output folder")
        if resolved.is_dir():
            raise InputError(target, "is a folder; give a file path")


def _check_out_dir(out: Path, out_dir: str | Path, inputs: list[Path]) -> None:
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


class FrameAnnotations:
    """The label map given on each frame: the mask file's, merged with the prompts' masks.

    Args:
        masks: one PNG (frame 0's) or a folder of PNGs named after frames, or None.
        prompts: boxes and clicks, each on its ``frame``.
        segmenter: turns prompts into masks; None builds the default
            :class:`~mobilevos.prompts.PromptSegmenter` when there are prompts.

    Objects are known from the frame they are first given on, so id-less prompts take ids that
    no earlier frame, this frame's mask or an explicit ``:ID`` on this frame uses (see
    :func:`~mobilevos.prompts.group_prompts`). :attr:`first_prompted` keeps the first frame
    that had prompts, for ``--save-prompt-mask`` and ``--preview``.
    """

    def __init__(
        self,
        masks: str | Path | None,
        prompts: Sequence[Prompt] = (),
        segmenter: PromptSegmenter | None = None,
    ) -> None:
        if masks is None and not prompts:
            raise InputError(None, "nothing marks the objects: give a mask, a box or a click")
        self.masks_path = None if masks is None else Path(masks)
        self.mask_source: MaskSource | None = None if masks is None else open_masks(masks)
        self.prompts = tuple(prompts)
        self.segmenter = segmenter if segmenter is not None or not prompts else PromptSegmenter()
        self._by_frame: dict[int, list[Prompt]] = {}
        for prompt in self.prompts:
            self._by_frame.setdefault(prompt.frame, []).append(prompt)
        self._known: set[int] = set()
        self._done: set[int] = set()
        self.first_prompted: PromptedFrame | None = None

    @property
    def last_prompted_frame(self) -> int | None:
        return max(self._by_frame, default=None)

    def check(self, frames: FrameSource, tracking: bool = True) -> None:
        """Everything that can be checked before decoding: mask names against frame names,
        prompts against the frame size and count, and (when ``tracking``) that frame 0 has
        something."""
        if self.mask_source is not None and frames.names is not None:
            self.mask_source.check_against(frames.names)
        check_prompts(self.prompts, frames.size, frames.num_frames)
        if tracking and self.mask_source is None and 0 not in self._by_frame:
            first = min(self._by_frame)
            raise InputError(
                None,
                f"{self._by_frame[first][0]}: the first frame needs a mask or a prompt "
                f"(the first prompt is on frame {first})",
            )

    def given(self, frame: Frame) -> np.ndarray | None:
        """The (H, W) uint8 label map given for ``frame``, or None."""
        mask = self.mask_source.mask_for(frame) if self.mask_source is not None else None
        prompts = self._by_frame.get(frame.index)
        if prompts:
            assert self.segmenter is not None
            made = self.segmenter.segment(frame.image, prompts, mask, taken=self._known)
            mask = made.labels
            self._done.add(frame.index)
            if self.first_prompted is None:
                self.first_prompted = PromptedFrame(
                    frame.index, frame.name, frame.image, made.labels, made.objects
                )
        if mask is not None:
            self._known |= {int(i) for i in np.unique(mask)} - {0, VOID_LABEL}
        return mask

    def finish(self, source: str | Path) -> None:
        """After the last frame: masks that matched no frame and prompts past the end are
        errors (raised before any output is published)."""
        if self.mask_source is not None:
            unused = self.mask_source.unused()
            if unused:
                names = ", ".join(p.name for p in unused[:5])
                raise InputError(self.masks_path, f"masks match no frame of {source}: {names}")
        missed = sorted(set(self._by_frame) - self._done)
        if missed:
            raise InputError(
                None,
                f"{self._by_frame[missed[0]][0]}: frame {missed[0]} is past the video's end "
                f"({source})",
            )


def segment_video(
    predictor: VOSPredictor,
    source: str | Path,
    masks: str | Path | None,
    out_dir: str | Path,
    overlay: str | Path | None = None,
    progress: bool = True,
    *,
    prompts: Sequence[Prompt] = (),
    segmenter: PromptSegmenter | None = None,
    prompt_mask: str | Path | None = None,
    preview: str | Path | None = None,
) -> SegmentResult:
    """Run ``predictor`` over every frame of ``source`` and write one palette PNG per frame.

    ``masks`` is one PNG (the first frame's) or a folder of PNGs named after frames (stem or
    index), which introduce objects on those frames or correct them; ``prompts`` (boxes and
    clicks, made into masks by ``segmenter``) do the same on their frames, merged with any mask
    of that frame (:class:`FrameAnnotations`). PNGs are named after the input frames
    (zero-padded index for videos). ``overlay`` optionally writes an mp4 of the masks blended
    over the frames; ``prompt_mask`` and ``preview`` the first prompted frame's label map and
    its picture with the prompts drawn. Nothing appears under ``out_dir``, ``overlay``,
    ``prompt_mask`` or ``preview`` unless the whole video succeeds.
    """
    out_dir = Path(out_dir)
    check_paths(source, masks, out_dir, overlay, (prompt_mask, preview))
    predictor.reset()
    annotations = FrameAnnotations(masks, prompts, segmenter)
    with open_frames(source) as frames:
        annotations.check(frames)
        writer = OverlayWriter(overlay, fps=frames.fps) if overlay else contextlib.nullcontext()
        count = 0
        with atomic_dir(out_dir) as tmp_dir, writer as overlay_writer:
            bar = tqdm(frames, total=frames.num_frames, unit="frame", disable=not progress)
            for frame in bar:
                given = annotations.given(frame)
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
            annotations.finish(source)
            if annotations.first_prompted is not None:
                write_prompt_pictures(annotations.first_prompted, prompt_mask, preview)
    return SegmentResult(count, predictor.object_ids, out_dir, Path(overlay) if overlay else None)


def make_prompt_masks(
    source: str | Path,
    masks: str | Path | None,
    prompts: Sequence[Prompt],
    segmenter: PromptSegmenter | None = None,
    prompt_mask: str | Path | None = None,
    preview: str | Path | None = None,
) -> PromptedFrame:
    """Check prompts without segmenting the video: make every prompted frame's label map
    (decoding up to the last prompted frame), and write the first one's ``prompt_mask`` and
    ``preview``. Returns that first prompted frame. Raises the errors a full run would raise
    for the prompts, before writing anything, except that frame 0 may go without (so a
    correction's prompts can be checked alone)."""
    if not prompts:
        raise InputError(None, "no prompts to check: give --box or --click")
    check_paths(source, masks, None, None, (prompt_mask, preview))
    annotations = FrameAnnotations(masks, prompts, segmenter)
    last = annotations.last_prompted_frame
    with open_frames(source) as frames:
        annotations.check(frames, tracking=False)
        for frame in frames:
            annotations.given(frame)
            if frame.index == last:
                break
        else:
            annotations.finish(source)
    assert annotations.first_prompted is not None
    write_prompt_pictures(annotations.first_prompted, prompt_mask, preview)
    return annotations.first_prompted
