"""Textures for objects and backgrounds: procedural patterns, or crops of user images."""

from __future__ import annotations

import colorsys
import math
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mobilevos.errors import InputError

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _value_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Fractal value noise in [0, 1]: bicubic-upsampled random grids, halving the cell size."""
    total = np.zeros((height, width), np.float32)
    amplitude = 1.0
    for _ in range(4):
        grid_h = max(2, math.ceil(height / cell) + 1)
        grid_w = max(2, math.ceil(width / cell) + 1)
        grid = Image.fromarray(rng.random((grid_h, grid_w), dtype=np.float32))
        total += amplitude * np.asarray(grid.resize((width, height), Image.Resampling.BICUBIC))
        amplitude *= 0.5
        cell = max(2.0, cell / 2)
    return _normalise(total)


def _normalise(field: np.ndarray) -> np.ndarray:
    low, high = float(field.min()), float(field.max())
    return (field - low) / (high - low) if high > low else np.zeros_like(field)


def _pattern(rng: np.random.Generator, height: int, width: int, unit: float) -> np.ndarray:
    """One scalar pattern in [0, 1]: noise, stripes, checkers, gradient or dots."""
    kind = rng.choice(["noise", "stripes", "checkers", "gradient", "dots"])
    if kind == "noise":
        return _value_noise(rng, height, width, rng.uniform(0.05, 0.4) * unit)
    theta = rng.uniform(0, math.pi)
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    u = xs * math.cos(theta) + ys * math.sin(theta)
    v = ys * math.cos(theta) - xs * math.sin(theta)
    period = rng.uniform(0.03, 0.2) * unit
    if kind == "stripes":
        warp = rng.uniform(0, 3) * _value_noise(rng, height, width, 0.3 * unit)
        return 0.5 + 0.5 * np.sin(2 * np.pi * u / period + warp)
    if kind == "checkers":
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    if kind == "dots":
        wave = np.sin(np.pi * u / period) * np.sin(np.pi * v / period)
        return (np.abs(wave) > rng.uniform(0.3, 0.8)).astype(np.float32)
    if rng.random() < 0.5:  # radial gradient around a random point
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        return _normalise(np.hypot(xs - cx, ys - cy))
    return _normalise(u)


def _random_colours(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` RGB colours in [0, 255] spread over hue, saturation and value."""
    hsv = zip(rng.random(count), rng.uniform(0, 1, count), rng.uniform(0.1, 1, count), strict=True)
    return np.array([colorsys.hsv_to_rgb(*c) for c in hsv], np.float32) * 255


def _colour_ramp(field: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Map a [0, 1] field through a piecewise-linear ramp of colours; returns (h, w, 3) float."""
    position = field * (len(colours) - 1)
    index = np.clip(position.astype(np.int64), 0, len(colours) - 2)
    frac = (position - index)[..., None]
    return colours[index] * (1 - frac) + colours[index + 1] * frac


def procedural_texture(
    rng: np.random.Generator, height: int, width: int, unit: float
) -> np.ndarray:
    """A random procedural texture; feature sizes scale with ``unit`` (the frame's short side).

    Shapes:
        returns: (height, width, 3) uint8 RGB.
    """
    field = _pattern(rng, height, width, unit)
    if rng.random() < 0.5:  # blend in a second pattern for richer structure
        mix = rng.uniform(0.2, 0.5)
        field = (1 - mix) * field + mix * _pattern(rng, height, width, unit)
    rgb = _colour_ramp(field, _random_colours(rng, int(rng.integers(2, 5))))
    grain = rng.uniform(0, 0.3)
    if grain > 0.05:
        fine = _value_noise(rng, height, width, rng.uniform(2, 8))
        rgb *= (1 - grain + 2 * grain * fine)[..., None]
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


class TextureSource:
    """Draws textures: procedural, or random crops of the images in ``texture_dir``."""

    def __init__(self, texture_dir: str | Path | None) -> None:
        self.files: list[Path] = []
        if texture_dir is None:
            return
        folder = Path(texture_dir)
        if not folder.is_dir():
            raise InputError(folder, "texture folder not found")
        self.files = sorted(
            (p for p in folder.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file()),
            key=lambda p: p.relative_to(folder).as_posix(),
        )
        if not self.files:
            raise InputError(folder, f"no images ({', '.join(_IMAGE_SUFFIXES)}) in texture folder")

    def sample(self, rng: np.random.Generator, height: int, width: int, unit: float) -> np.ndarray:
        """A (height, width, 3) uint8 RGB texture."""
        if not self.files:
            return procedural_texture(rng, height, width, unit)
        return _crop_texture(rng, self.files[int(rng.integers(len(self.files)))], height, width)


def _crop_texture(rng: np.random.Generator, path: Path, height: int, width: int) -> np.ndarray:
    """A random crop of the image at ``path`` with the target's aspect, resized to it."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(path, f"cannot read texture image ({exc.__class__.__name__})") from None
    src_w, src_h = image.size
    aspect = width / height
    crop_w = min(src_w, src_h * aspect) * rng.uniform(0.3, 1.0)
    crop_h = crop_w / aspect
    left, top = rng.uniform(0, src_w - crop_w), rng.uniform(0, src_h - crop_h)
    box = (left, top, left + crop_w, top + crop_h)
    crop = image.resize((width, height), Image.Resampling.BILINEAR, box=box)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(crop, dtype=np.uint8)
