"""Box and click prompts, their command-line syntax, and their pixels in a frame.

A prompt is typed on the command line (``segment --box``, ``--click``) or built in code. Its
text form is the option that gives it (``str(box)`` is ``--box X0,Y0,X1,Y1...``), which error
messages quote, and every mistake in the syntax is an :class:`InputError` with a one-line
message.

Command-line syntax (:func:`parse_box`, :func:`parse_click`): ``X0,Y0,X1,Y1[@FRAME][:ID]`` and
``X,Y[@FRAME][:ID][:neg]``; FRAME defaults to 0. Pixels are ``x, y``; a box's ``x1, y1`` are
exclusive. ``:ID`` names the object (1..:data:`MAX_OBJECT_ID`); which object a prompt without
one belongs to is decided per frame by :func:`~mobilevos.prompts.objects.group_prompts`.
:meth:`Box.pixels` and :meth:`Click.pixel` place a prompt in a frame of a given size, refusing
one that lies outside it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from mobilevos.errors import InputError
from mobilevos.io import VOID_LABEL

MAX_OBJECT_ID = VOID_LABEL - 1

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Box:
    """A box around one object on one frame: ``x0, y0`` its top-left corner in pixels,
    ``x1, y1`` the corner just past its bottom-right pixel (exclusive).

    ``object_id`` None means a new object (see
    :func:`~mobilevos.prompts.objects.group_prompts`).
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

    ``object_id`` None: see :func:`~mobilevos.prompts.objects.group_prompts`.
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
