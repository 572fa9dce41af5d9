"""Which object each prompt belongs to, the ids new objects take, and the checks before work.

One frame's prompts are grouped by object (:func:`group_prompts`) before any mask is made, and
all of a video's prompts are checked against its frame size and length up front
(:func:`check_prompts`), so a prompt that cannot work fails before any frame is segmented.

Which object a prompt belongs to (:func:`group_prompts`): a prompt with ``:ID`` belongs to
that object. Each box without an id is a new object. Clicks without an id join the frame's one
id-less box; with no id-less box they form one new object together; with several, they are
ambiguous (an error). New objects take the smallest ids that no tracked object, the frame's
mask or an explicit ``:ID`` on the same frame uses, in the order the prompts were given; an id
on a later frame then names the object that has it by then, so ``--box A --box B@50:1``
corrects the object box A made (id 1) on frame 50.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from mobilevos.errors import InputError
from mobilevos.prompts.syntax import MAX_OBJECT_ID, Box, Click, Prompt


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
