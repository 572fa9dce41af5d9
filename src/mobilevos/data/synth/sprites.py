"""Object shapes rasterised into textured sprites, and sprites composited into frames."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from mobilevos.data.synth.config import SynthConfig
from mobilevos.data.synth.textures import TextureSource
from mobilevos.errors import ConfigError

_SUPERSAMPLE = 4  # polygon rasterisation factor before box filtering (anti-aliased alpha)


class Sprite(NamedTuple):
    """An object's look in its own coordinates: texture plus a soft silhouette.

    The shape's centre is the middle of ``rgba``; one frame pixel at scale 1 spans ``density``
    sprite pixels (``density`` is the largest scale, so sprites are mostly shrunk, not blurred).

    Shapes:
        rgba: (S, S, 4) uint8; alpha is the anti-aliased silhouette.
    """

    rgba: np.ndarray
    radius: float  # frame pixels at scale 1 reached by the farthest point of the shape
    density: float
    area: float  # frame pixels covered (alpha >= 1/2) at scale 1


def shape_outline(rng: np.random.Generator, family: str) -> np.ndarray:
    """Vertices of a shape centred on the origin, farthest vertex at distance 1.

    Shapes:
        returns: (N, 2) float x, y.
    """
    if family == "star":
        points = int(rng.integers(3, 9))
        angles = np.arange(2 * points) * np.pi / points + rng.normal(0, 0.1, 2 * points)
        radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, rng.uniform(0.35, 0.7))
        radii = radii * rng.uniform(0.8, 1.0, 2 * points)
    else:
        angles = np.linspace(0, 2 * np.pi, 96, endpoint=False)
        if family == "ellipse":
            minor = rng.uniform(0.4, 1.0)
            radii = minor / np.hypot(minor * np.cos(angles), np.sin(angles))
        elif family == "blob":
            radii = np.ones_like(angles)
            for k, amplitude in enumerate(rng.uniform(0, 0.15, 4), start=2):
                radii += amplitude * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
        else:
            raise ConfigError(f"synth config: unknown shape family {family!r}")
    radii = radii / radii.max()
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def make_sprite(outline: np.ndarray, texture: np.ndarray, radius: float, density: float) -> Sprite:
    """Rasterise ``outline`` (unit radius) at ``radius`` frame pixels over ``texture``.

    Shapes:
        outline: (N, 2) vertices with largest norm 1.
        texture: (S, S, 3) uint8 with ``S = sprite_size(radius, density)``.
    """
    size = texture.shape[0]
    big = size * _SUPERSAMPLE
    points = big / 2 + outline * radius * density * _SUPERSAMPLE
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in points.tolist()], fill=255)
    alpha = np.asarray(mask.reduce(_SUPERSAMPLE), dtype=np.uint8)
    rgba = np.concatenate([texture, alpha[..., None]], axis=2)
    area = float(np.count_nonzero(alpha >= 128)) / density**2
    return Sprite(rgba=rgba, radius=radius, density=density, area=area)


def sprite_size(radius: float, density: float) -> int:
    """Side S of a sprite holding a shape of ``radius`` frame pixels at ``density``."""
    return math.ceil(2 * radius * density) + 4


def _random_sprite(
    rng: np.random.Generator, config: SynthConfig, textures: TextureSource
) -> Sprite:
    """A random shape of a random family and size, with a random texture."""
    family = config.shapes[int(rng.integers(len(config.shapes)))]
    outline = shape_outline(rng, family)
    radius = rng.uniform(*config.object_size) * config.unit / 2
    density = max(1.0, config.scale_range[1])
    size = sprite_size(radius, density)
    sprite = make_sprite(outline, textures.sample(rng, size, size, config.unit), radius, density)
    needed = config.min_visible_area * config.height * config.width
    if sprite.area < needed:  # a thin star can fall below the frame-0 minimum: enlarge it
        radius *= math.sqrt(needed / max(sprite.area, 1e-6)) * 1.1
        size = sprite_size(radius, density)
        sprite = make_sprite(
            outline, textures.sample(rng, size, size, config.unit), radius, density
        )
    return sprite


# ----------------------------------------------------------------------------------------------
# Compositing


class Layer(NamedTuple):
    """A sprite at one pose; :func:`compose_frame` draws a list of them back to front."""

    sprite: Sprite
    x: float
    y: float
    angle: float
    scale: float
    label: int


class Composite(NamedTuple):
    """One composed frame. Shapes: frame (H, W, 3) uint8, labels (H, W) uint8."""

    frame: np.ndarray
    labels: np.ndarray


def _warp_sprite(
    layer: Layer, height: int, width: int
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """The sprite rotated, scaled and moved, cut to its box inside the frame.

    Returns ``((y0, y1, x0, x1), rgba)`` with rgba (y1-y0, x1-x0, 4) uint8, or None when the
    object lies wholly outside the frame.
    """
    sprite, x, y = layer.sprite, layer.x, layer.y
    reach = sprite.radius * layer.scale + 2  # alpha is zero beyond this distance
    x0, y0 = max(0, math.floor(x - reach)), max(0, math.floor(y - reach))
    x1, y1 = min(width, math.ceil(x + reach)), min(height, math.ceil(y + reach))
    if x0 >= x1 or y0 >= y1:
        return None
    # Inverse map, box pixel -> sprite pixel: q = S/2 + k * R(-angle) (p - centre).
    k = sprite.density / layer.scale
    cos, sin = math.cos(layer.angle), math.sin(layer.angle)
    half = sprite.rgba.shape[0] / 2
    coefficients = (
        k * cos,
        k * sin,
        half + k * (cos * (x0 - x) + sin * (y0 - y)),
        -k * sin,
        k * cos,
        half + k * (cos * (y0 - y) - sin * (x0 - x)),
    )
    image = Image.fromarray(sprite.rgba)
    warped = image.transform(
        (x1 - x0, y1 - y0), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR
    )
    return (y0, y1, x0, x1), np.asarray(warped, dtype=np.uint8)


def compose_frame(background: np.ndarray, layers: Sequence[Layer]) -> Composite:
    """Alpha-blend ``layers`` over ``background`` back to front and paint their labels.

    Each layer writes its label where its alpha is >= 1/2, overwriting earlier layers, so the
    front-most object owns every pixel it covers.

    Shapes:
        background: (H, W, 3) uint8.
        returns: frame (H, W, 3) uint8, labels (H, W) uint8.
    """
    height, width = background.shape[:2]
    frame = background.astype(np.float32)
    labels = np.zeros((height, width), np.uint8)
    for layer in layers:
        placed = _warp_sprite(layer, height, width)
        if placed is None:
            continue
        (y0, y1, x0, x1), rgba = placed
        alpha = rgba[..., 3:].astype(np.float32) / 255
        region = frame[y0:y1, x0:x1]
        region *= 1 - alpha
        region += alpha * rgba[..., :3]
        labels[y0:y1, x0:x1][rgba[..., 3] >= 128] = layer.label
    return Composite(np.clip(frame + 0.5, 0, 255).astype(np.uint8), labels)
