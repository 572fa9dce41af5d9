"""The user's mask PNGs, matched to frames by name or index as the frames stream past."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mobilevos.errors import InputError
from mobilevos.io.frames import Frame, _check_unique_stems, _hhww, natural_key
from mobilevos.io.labels import VOID_LABEL, read_label_image


class MaskSource:
    """The user's masks, matched to frames as they stream past.

    A single PNG is the mask of frame 0. In a folder, a PNG belongs to the frame whose name is
    its stem (``00012.png`` to frame ``00012``, ``frame_a.png`` to ``frame_a.jpg``); failing
    that, an all-digit stem is a frame index (``12.png`` to the 13th frame). A stem match wins
    over an index match, and a PNG whose stem names some frame is never used by index, so
    1-based or sparse numbering (YouTube-VOS: 00000, 00005, ...) maps by name.

    Each mask is checked against its frame's size, and the first mask must hold an object.

    Attributes:
        path: the PNG or folder that was opened.
        files: the mask PNGs in natural order.
    """

    def __init__(self, path: Path, files: list[Path], single: bool) -> None:
        self.path = path
        self.files = files
        self._single = single
        self._by_stem = {f.stem: f for f in files}
        self._by_index: dict[int, list[Path]] = {}
        for file in files:
            if file.stem.isascii() and file.stem.isdigit():
                self._by_index.setdefault(int(file.stem), []).append(file)
        self._frame_names: frozenset[str] | None = None
        self._plan: dict[int, Path] | None = None
        self._assigned: dict[int, Path] = {}
        self._object_seen = False

    def mask_for(self, frame: Frame) -> np.ndarray | None:
        """The ``(H, W)`` uint8 label map given for ``frame``, or ``None`` if it has none.

        Raises :class:`InputError` naming the PNG if its size differs from the frame's, if it is
        the first mask and holds no object, or if two PNGs claim the frame.
        """
        file = self._assigned.get(frame.index)
        if file is None:
            if self._plan is not None:
                file = self._plan.get(frame.index)
            else:
                file = self._match(frame.index, frame.name, set(self._assigned.values()))
        if file is None:
            return None
        self._assigned[frame.index] = file
        return self._load(file, frame)

    def unused(self) -> list[Path]:
        """The PNGs not returned by :meth:`mask_for` so far (after a full pass: never matched)."""
        used = set(self._assigned.values())
        return [f for f in self.files if f not in used]

    def check_against(self, names: Sequence[str]) -> dict[str, Path]:
        """Match every PNG to the frames ``names`` (in order) before decoding anything.

        Fixes the matching that :meth:`mask_for` then follows, and returns it as frame name to
        PNG. Raises :class:`InputError` if a PNG matches no frame or two PNGs claim one frame.
        """
        self._frame_names = frozenset(names)
        plan: dict[int, Path] = {}
        for index, name in enumerate(names):
            file = self._match(index, name, set(plan.values()))
            if file is not None:
                plan[index] = file
        matched = set(plan.values())
        missing = [f.name for f in self.files if f not in matched]
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise InputError(
                self.path, f"{len(missing)} mask(s) match no frame name or index: {shown}"
            )
        self._plan = plan
        return {names[index]: file for index, file in plan.items()}

    def _match(self, index: int, name: str, taken: set[Path]) -> Path | None:
        """The one unclaimed PNG for frame ``index`` called ``name``, by stem then by index."""
        if self._single:
            return self.files[0] if index == 0 else None
        candidates = []
        by_stem = self._by_stem.get(name)
        if by_stem is not None and by_stem not in taken:
            candidates.append(by_stem)
        for file in self._by_index.get(index, ()):
            names_a_frame = self._frame_names is not None and file.stem in self._frame_names
            if file not in taken and file != by_stem and not names_a_frame:
                candidates.append(file)
        if len(candidates) > 1:
            listed = " and ".join(f.name for f in candidates)
            raise InputError(self.path, f"{listed} both match frame {name} (index {index})")
        return candidates[0] if candidates else None

    def _load(self, file: Path, frame: Frame) -> np.ndarray:
        """Read ``file`` and check it against ``frame``."""
        labels = read_label_image(file)
        frame_size = frame.image.shape[:2]
        if labels.shape != frame_size:
            raise InputError(
                file, f"mask is {_hhww(labels.shape)} but frames are {_hhww(frame_size)}"
            )
        if not self._object_seen:
            if not ((labels != 0) & (labels != VOID_LABEL)).any():
                raise InputError(file, "no object in mask")
            self._object_seen = True
        return labels


def open_masks(path: str | Path) -> MaskSource:
    """Open one mask PNG (the mask of frame 0) or a folder of mask PNGs (see :class:`MaskSource`).

    Raises :class:`InputError` for a missing path, a non-PNG file, or a folder without PNGs.
    """
    path = Path(path)
    if path.is_dir():
        files = [
            p
            for p in path.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() == ".png"
        ]
        if not files:
            raise InputError(path, "no .png masks in folder")
        files.sort(key=lambda p: natural_key(p.stem))
        _check_unique_stems(path, files)
        return MaskSource(path, files, single=False)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.suffix.lower() != ".png":
        raise InputError(path, "masks must be PNG files (palette or grayscale)")
    return MaskSource(path, [path], single=True)
