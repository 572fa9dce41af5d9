"""Label maps: the DAVIS palette, reading label PNGs and writing palette PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mobilevos.errors import InputError
from mobilevos.io.atomic import atomic_path

VOID_LABEL = 255


def _davis_palette() -> np.ndarray:
    """The DAVIS / PASCAL VOC colour map: bits of the index spread over the RGB channels."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        value, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        palette[index] = (r, g, b)
    return palette


DAVIS_PALETTE: np.ndarray = _davis_palette()
"""``(256, 3)`` uint8 colours; index 1 is (128, 0, 0), index 255 is (224, 224, 192)."""


def read_label_image(path: str | Path) -> np.ndarray:
    """Read a label PNG as an ``(H, W)`` uint8 array of object ids.

    * a palette ("P" mode) PNG gives its palette indices (DAVIS, YouTube-VOS);
    * a grayscale PNG whose only values are 0 and 255 is a binary mask: one object, id 1;
    * any other grayscale PNG gives its values as ids (255 stays void);
    * an RGB(A) PNG whose three channels are equal (a grayscale mask saved in colour, as many
      tools do) is read as grayscale.

    Raises :class:`InputError` naming the file when it is missing, not an image, or a colour
    image, which is not a label map.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "mask file not found")
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode == "P":
                return np.array(image, dtype=np.uint8)
            array = _gray_array(path, image)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(path, f"cannot read image ({exc.__class__.__name__})") from None
    return _labels_from_gray(path, array)


def _gray_array(path: Path, image: Image.Image) -> np.ndarray:
    """The single channel of a grayscale (or gray-valued RGB) image; colour images are refused."""
    mode = image.mode
    if mode in ("L", "1") or mode.startswith("I"):
        return np.asarray(image)
    if mode == "LA":
        return np.asarray(image.getchannel("L"))
    if mode in ("RGB", "RGBA"):
        rgb = np.asarray(image.convert("RGB"))
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            return rgb[..., 0]
    raise InputError(path, f"not a label image (mode {mode}); expected a palette or grayscale PNG")


def _labels_from_gray(path: Path, array: np.ndarray) -> np.ndarray:
    """Grayscale values to ids: a 0/255 mask becomes object 1, anything else keeps its values."""
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.size and (array.max() > VOID_LABEL or array.min() < 0):
        bad = int(array.max()) if array.max() > VOID_LABEL else int(array.min())
        raise InputError(path, f"label value {bad} is outside 0..255")
    labels = array.astype(np.uint8)
    values = np.unique(labels)
    if values.size and set(values.tolist()) <= {0, VOID_LABEL} and VOID_LABEL in values:
        labels = (labels == VOID_LABEL).astype(np.uint8)
    return labels


def write_palette_png(path: str | Path, labels: np.ndarray) -> None:
    """Write an ``(H, W)`` label map as a DAVIS-palette PNG, atomically."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {labels.shape}")
    height, width = labels.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(labels, np.uint8).tobytes())
    image.putpalette(DAVIS_PALETTE.reshape(-1).tolist())
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
