"""Motion: object trajectories (with exits from the frame) and the background camera path."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from PIL import Image

from mobilevos.data.synth.config import SynthConfig

_BOX_MARGIN = 0.1  # object centres bounce inside [margin, 1 - margin] of the frame


class ObjectTrack(NamedTuple):
    """Pose of one object over the video.

    Shapes:
        centers: (T, 2) float x, y in frame pixels (continuous: pixel (i, j) spans [j, j+1)).
        angles: (T,) float radians; positive turns clockwise on screen (y points down).
        scales: (T,) float, 1 at frame 0.
        offscreen: (T,) bool, frames where an excursion keeps the object wholly outside.
    """

    centers: np.ndarray
    angles: np.ndarray
    scales: np.ndarray
    offscreen: np.ndarray


def _fold(values: np.ndarray, low: float | np.ndarray, high: float | np.ndarray) -> np.ndarray:
    """Reflect values into [low, high], as a point bouncing between two walls."""
    span = np.asarray(high, np.float64) - low
    if np.any(span <= 0):
        return np.broadcast_to((np.asarray(low) + high) / 2, values.shape).copy()
    phase = np.mod(values - low, 2 * span)
    return low + np.where(phase <= span, phase, 2 * span - phase)


def _random_walk(rng: np.random.Generator, count: int, speed: float, cap: float, accel: float):
    """Per-frame 2-D steps: random initial velocity plus Gaussian accelerations, norm <= cap.

    Shapes:
        returns: (count, 2); row 0 is zero (frame 0 does not move).
    """
    direction = rng.uniform(0, 2 * np.pi)
    velocity = speed * np.array([math.cos(direction), math.sin(direction)])
    steps = np.zeros((count, 2))
    for t in range(1, count):
        velocity = velocity + rng.normal(0, accel, 2)
        norm = float(np.hypot(*velocity))
        if norm > cap:
            velocity *= cap / norm
        steps[t] = velocity
    return steps


def sample_track(rng: np.random.Generator, config: SynthConfig, radius: float) -> ObjectTrack:
    """A random trajectory for an object of ``radius`` frame pixels (see the package notes)."""
    frames, unit = config.num_frames, config.unit
    low = np.array([config.width, config.height]) * _BOX_MARGIN
    high = np.array([config.width, config.height]) * (1 - _BOX_MARGIN)
    start = rng.uniform(low, high)
    steps = _random_walk(
        rng,
        frames,
        rng.uniform(*config.speed) * unit,
        config.speed[1] * unit,
        config.acceleration * unit,
    )
    centers = _fold(start + np.cumsum(steps, axis=0), low, high)
    time = np.arange(frames, dtype=np.float64)
    spin = math.radians(rng.uniform(-config.rotation_speed, config.rotation_speed))
    angles = rng.uniform(0, 2 * np.pi) + spin * time
    log_low, log_high = np.log(config.scale_range)
    growth = rng.uniform(-config.scale_speed, config.scale_speed)
    scales = np.exp(_fold(growth * time, log_low, log_high)) if log_high > log_low else time * 0 + 1
    offscreen = np.zeros(frames, bool)
    if rng.random() < config.exit_probability:
        reach = radius * scales + 3
        centers, offscreen = _exit_excursion(rng, centers, reach, config.height, config.width)
    return ObjectTrack(centers, angles, scales, offscreen)


def _exit_excursion(
    rng: np.random.Generator, centers: np.ndarray, reach: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Push the object out through the nearest edge and back: ramp out, hold outside, ramp in.

    Frames ``[start, start + ramp)`` slide out, the next ``hold`` frames are wholly outside,
    the next ``ramp`` slide back; ``start >= 1`` and the object is back on its path at the
    latest on the last frame. Returns the new centres and the ``offscreen`` flags.
    """
    frames = len(centers)
    ramp = max(1, min(4, frames // 8))
    hold = int(rng.integers(1, max(1, frames // 4) + 1))
    latest_start = frames - 1 - (2 * ramp + hold)
    if latest_start < 1:
        return centers, np.zeros(frames, bool)
    start = int(rng.integers(1, latest_start + 1))
    held = slice(start + ramp, start + ramp + hold)
    middle = centers[held].mean(axis=0)
    gaps = [middle[0], width - middle[0], middle[1], height - middle[1]]  # left right top bottom
    side = int(np.argmin(gaps))
    axis, sign = side // 2, (-1.0 if side % 2 == 0 else 1.0)
    edge = 0.0 if sign < 0 else float((width, height)[axis])
    distance = float(np.max(sign * (edge - centers[held, axis]) + reach[held])) + 1
    weight = np.zeros(frames)
    ramp_in = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, ramp + 1) / (ramp + 1))
    weight[start : start + ramp] = ramp_in
    weight[held] = 1.0
    weight[start + ramp + hold : start + 2 * ramp + hold] = ramp_in[::-1]
    moved = centers.copy()
    moved[:, axis] += sign * distance * weight
    return moved, weight == 1.0


def _sample_camera(rng: np.random.Generator, config: SynthConfig) -> tuple[np.ndarray, int, int]:
    """Camera path (T, 3) [canvas x, canvas y, zoom] and the canvas (height, width) it needs."""
    frames, unit = config.num_frames, config.unit
    cap = config.background_pan * unit
    offsets = np.cumsum(_random_walk(rng, frames, rng.uniform(0, cap), cap, 0.1 * cap), axis=0)
    offsets -= (offsets.max(axis=0) + offsets.min(axis=0)) / 2
    log_high = math.log1p(config.background_zoom)
    rate = rng.uniform(-config.zoom_speed, config.zoom_speed)
    zoom = np.exp(_fold(rng.uniform(0, log_high) + rate * np.arange(frames), 0.0, log_high))
    half_w = np.max(np.abs(offsets[:, 0]) + config.width / (2 * zoom)) + 2
    half_h = np.max(np.abs(offsets[:, 1]) + config.height / (2 * zoom)) + 2
    canvas_w, canvas_h = math.ceil(2 * half_w), math.ceil(2 * half_h)
    camera = np.stack([canvas_w / 2 + offsets[:, 0], canvas_h / 2 + offsets[:, 1], zoom], axis=1)
    return camera, canvas_h, canvas_w


def _view(canvas: Image.Image, camera: np.ndarray, height: int, width: int) -> np.ndarray:
    """The (H, W, 3) part of the canvas the camera (x, y, zoom) sees."""
    cx, cy, zoom = (float(v) for v in camera)
    a = 1.0 / zoom
    coefficients = (a, 0.0, cx - a * width / 2, 0.0, a, cy - a * height / 2)
    view = canvas.transform(
        (width, height), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR
    )
    return np.asarray(view, dtype=np.uint8)
