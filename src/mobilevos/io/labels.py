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


def _colour_codes(rgb: np.ndarray) -> np.ndarray:
    """Each (..., 3) uint8 colour as one int64, 0xRRGGBB."""
    rgb = np.asarray(rgb, dtype=np.uint8).astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


_PALETTE_CODES = _colour_codes(DAVIS_PALETTE)


def read_label_image(path: str | Path) -> np.ndarray:
    """Read a label PNG as an ``(H, W)`` uint8 array of object ids.

    * a palette ("P" mode) PNG gives its palette indices (DAVIS, YouTube-VOS);
    * a grayscale PNG whose only values are 0 and 255 is a binary mask: one object, id 1;
    * any other grayscale PNG gives its values as ids (255 stays void);
    * an RGB(A) PNG whose three channels are equal (a grayscale mask saved in colour, as many
      tools do) is read as grayscale;
    * any other RGB(A) PNG is a colour mask, as most annotation tools export: one id per
      distinct colour (:func:`labels_from_colours`; fully transparent pixels are background).

    Raises :class:`InputError` naming the file when it is missing, not an image, in another
    mode, or a colour mask with more colours than ids.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "mask file not found")
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode == "P":
                return np.array(image, dtype=np.uint8)
            if image.mode in ("RGB", "RGBA"):
                array, colours = _split_rgb(image)
            else:
                array, colours = _gray_array(path, image), None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(path, f"cannot read image ({exc.__class__.__name__})") from None
    if colours is not None:
        try:
            return labels_from_colours(colours)
        except ValueError as exc:
            raise InputError(path, str(exc)) from None
    return _labels_from_gray(path, array)


def _split_rgb(image: Image.Image) -> tuple[np.ndarray | None, np.ndarray | None]:
    """An RGB(A) image as ``(gray, None)`` when its three channels are equal everywhere (a
    grayscale mask saved in colour), else ``(None, colours)``: (H, W, 3) uint8 with fully
    transparent pixels black."""
    rgb = np.array(image.convert("RGB"))
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return rgb[..., 0], None
    if image.mode == "RGBA":
        rgb[np.asarray(image.getchannel("A")) == 0] = 0
    return None, rgb


def labels_from_colours(rgb: np.ndarray) -> np.ndarray:
    """A colour mask as label ids, one id per distinct colour.

    Black is background (0). A colour of the DAVIS palette takes its palette index (so a
    DAVIS mask saved as RGB keeps its ids, and (224, 224, 192) is void); every other colour
    takes the smallest id that no colour has taken yet, in order of first appearance, row by
    row from the top-left pixel. Raises ValueError when there are more colours than the ids
    1..254 (an anti-aliased or photographic image, not a mask).

    Shapes:
        rgb: (H, W, 3) uint8; returns: (H, W) uint8
    """
    codes = _colour_codes(rgb).reshape(-1)
    colours, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    ids = np.zeros(len(colours), dtype=np.int64)
    palette = {code: index for index, code in enumerate(_PALETTE_CODES.tolist())}
    others = []
    for position, code in enumerate(colours.tolist()):
        if code in palette:
            ids[position] = palette[code]
        else:
            others.append(position)
    free = iter(sorted(set(range(1, VOID_LABEL)) - set(ids.tolist())))
    for position in sorted(others, key=lambda p: first[p]):
        object_id = next(free, None)
        if object_id is None:
            raise ValueError(
                f"colour mask has {len(colours) - 1} colours besides black, more than the "
                f"{VOID_LABEL - 1} object ids (anti-aliased edges?)"
            )
        ids[position] = object_id
    return ids[inverse].reshape(np.shape(rgb)[:2]).astype(np.uint8)


def _gray_array(path: Path, image: Image.Image) -> np.ndarray:
    """The single channel of a grayscale image (RGB is :func:`_split_rgb`'s); other modes are
    refused."""
    mode = image.mode
    if mode in ("L", "1") or mode.startswith("I"):
        return np.asarray(image)
    if mode == "LA":
        return np.asarray(image.getchannel("L"))
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
