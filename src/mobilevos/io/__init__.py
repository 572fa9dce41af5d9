"""Reading frames and masks, writing label PNGs and overlay videos.

Conventions used across the package:

* frames are ``(H, W, 3)`` uint8 RGB arrays, wrapped in :class:`Frame` with their index and the
  name that outputs are named after;
* label maps are ``(H, W)`` uint8 arrays: 0 is background, 1..254 are object ids, and
  :data:`VOID_LABEL` (255) marks pixels to ignore (DAVIS "void");
* label maps are written as palette PNGs with the DAVIS palette, so any DAVIS or YouTube-VOS tool
  reads them back as indices.

Frames are streamed (:func:`open_frames`): a video is decoded one frame at a time with PyAV, a
folder is read one image at a time, so memory does not grow with the length of the input. Masks
(:func:`open_masks`) are matched to frames as they stream past.

Every writer goes through :func:`atomic_path` / :func:`atomic_dir`: output appears under its final
name only once complete, so an interrupted run never leaves a file that looks finished.

Modules: :mod:`~mobilevos.io.labels` (palette, label PNGs), :mod:`~mobilevos.io.atomic`
(atomic outputs), :mod:`~mobilevos.io.frames` (frame sources), :mod:`~mobilevos.io.masks` (mask
sources), :mod:`~mobilevos.io.video` (overlays, video writing) and :mod:`~mobilevos.io.sheet`
(contact sheets); every public name is
re-exported here, so ``from mobilevos.io import ...`` is the way to use them.
"""

from __future__ import annotations

from mobilevos.io.atomic import atomic_dir, atomic_path
from mobilevos.io.frames import (
    DEFAULT_FPS,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    Frame,
    FrameSource,
    natural_key,
    open_frames,
)
from mobilevos.io.labels import DAVIS_PALETTE, VOID_LABEL, read_label_image, write_palette_png
from mobilevos.io.masks import MaskSource, open_masks
from mobilevos.io.sheet import sheet_tiles, write_contact_sheet
from mobilevos.io.video import OverlayWriter, VideoWriter, blend_labels, write_video, write_y4m

__all__ = [
    "DAVIS_PALETTE",
    "DEFAULT_FPS",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "VOID_LABEL",
    "Frame",
    "FrameSource",
    "MaskSource",
    "OverlayWriter",
    "VideoWriter",
    "atomic_dir",
    "atomic_path",
    "blend_labels",
    "natural_key",
    "open_frames",
    "open_masks",
    "read_label_image",
    "sheet_tiles",
    "write_contact_sheet",
    "write_palette_png",
    "write_video",
    "write_y4m",
]
