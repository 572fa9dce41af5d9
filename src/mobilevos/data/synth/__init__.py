"""Seeded procedural videos for semi-supervised VOS: our stand-in for DAVIS and BL30K.

A video is made in two steps. :func:`plan_video` draws every random choice from the seed
(textures, shapes, depth order, object trajectories, camera path); :func:`render_plan` turns the
plan into frames and labels with plain arithmetic. :func:`render_video` does both.

Decisions (each a :class:`SynthConfig` field where it has a knob):

* **Randomness.** ``np.random.SeedSequence(seed)`` is spawned into independent streams (scene
  layout, background, one per object). Nothing reads global state, so the output depends only on
  ``(seed, config)``: not on the process, the thread count or what was rendered before.
* **Textures.** Procedural by default: multi-scale value noise, stripes (optionally warped),
  rotated checkers, linear/radial gradients and dot grids, mapped through a random ramp of 2-4
  colours and mixed with fine grain. With ``texture_dir``, a texture is a random crop of an image
  from that folder: the crop keeps the target's aspect ratio, its width is 30-100% of the
  largest such crop, its position is uniform, it is resized bilinearly and flipped with
  probability 1/2. Objects and background draw from the same distribution, and the background
  carries unlabelled *distractor* shapes of the same families, so neither colour nor shape alone
  tells an object from the background.
* **Shapes.** Star-shaped polygons around the object's centre: smooth blobs (radius a low-order
  Fourier series of the angle), star polygons (alternating outer/inner vertices) and ellipses,
  rasterised at 4x and box-filtered into an anti-aliased alpha. A pixel belongs to an object
  where its alpha is at least 1/2.
* **Occlusion.** One random depth order per video, fixed over time and independent of the ids
  (a low id is not a cue for "behind"). Objects are composited back to front and each writes its
  id where its alpha >= 1/2, so occluded parts belong to the front object.
* **Trajectories.** The centre integrates a velocity that starts at a random speed and direction
  and changes by small Gaussian accelerations (clipped to the maximum speed); the path is then
  folded into the central 80% of the frame, i.e. it bounces off that box's walls. The angle
  turns at a constant random rate; the log-scale moves at a constant rate and bounces inside
  ``scale_range``. With probability ``exit_probability`` the object also makes an *excursion*:
  it slides (cosine ramp) straight out through the nearest frame edge, stays wholly outside for
  at least one frame (:attr:`ObjectTrack.offscreen`) and slides back onto its path. Frame 0 is
  never part of an excursion and the object is back before the last frame.
* **Camera.** The background is a canvas larger than the frame, viewed with a pan (random-walk
  velocity) and a zoom (log-zoom bouncing in ``[1, 1 + background_zoom]``). Objects move in
  screen space.
* **Frame 0.** Every object is annotated there, so each must show at least
  ``min_visible_fraction`` of its own area and ``min_visible_area`` of the frame. Placements are
  redrawn until that holds (at most 30 tries); objects that still fail are dropped and the rest
  renumbered, so the ids in frame 0 are always exactly ``1..K``.

Modules: :mod:`~mobilevos.data.synth.config` (:class:`SynthConfig`),
:mod:`~mobilevos.data.synth.textures`, :mod:`~mobilevos.data.synth.sprites` (shapes and
compositing), :mod:`~mobilevos.data.synth.motion` (trajectories, camera),
:mod:`~mobilevos.data.synth.render` (planning and rendering) and
:mod:`~mobilevos.data.synth.dataset` (DAVIS-layout datasets, ``mobilevos synth``); every public
name is re-exported here.
"""

from __future__ import annotations

from mobilevos.data.synth.config import SHAPE_FAMILIES, SynthConfig
from mobilevos.data.synth.dataset import (
    MARKER_FILE,
    sequence_name,
    write_davis_dataset,
)
from mobilevos.data.synth.motion import ObjectTrack, sample_track
from mobilevos.data.synth.render import (
    SynthVideo,
    VideoPlan,
    jpeg_roundtrip,
    plan_video,
    render_plan,
    render_video,
)
from mobilevos.data.synth.sprites import (
    Composite,
    Layer,
    Sprite,
    compose_frame,
    make_sprite,
    shape_outline,
    sprite_size,
)
from mobilevos.data.synth.textures import TextureSource, procedural_texture

__all__ = [
    "MARKER_FILE",
    "SHAPE_FAMILIES",
    "Composite",
    "Layer",
    "ObjectTrack",
    "Sprite",
    "SynthConfig",
    "SynthVideo",
    "TextureSource",
    "VideoPlan",
    "compose_frame",
    "jpeg_roundtrip",
    "make_sprite",
    "plan_video",
    "procedural_texture",
    "render_plan",
    "render_video",
    "sample_track",
    "sequence_name",
    "shape_outline",
    "sprite_size",
    "write_davis_dataset",
]
