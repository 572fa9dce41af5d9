"""Overlays and video output: labels blended onto frames, written atomically with PyAV."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np

from mobilevos.errors import InputError
from mobilevos.io.atomic import atomic_path
from mobilevos.io.frames import DEFAULT_FPS, Frame, _hhww
from mobilevos.io.labels import DAVIS_PALETTE, VOID_LABEL

if TYPE_CHECKING:  # PyAV loads with the first video written
    import av

_WRITABLE_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm"})
_ENCODERS = ("libx264", "mpeg4")
_WEBM_ENCODER = "libvpx"
"""VP8 for ``.webm``: the codec every browser decodes without licensing questions (the web
page's sample clip and its tests)."""


def blend_labels(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Tint each object with its DAVIS colour and outline it, for viewing results.

    Object pixels (ids 1..254) become ``(1 - alpha) * image + alpha * colour``; the pixels just
    inside each object's edge become the colour at half brightness, a contour about one pixel
    per 360 pixels of the shorter side. Background (0) and void (255) pixels are unchanged.

    Shapes:
        image: (H, W, 3) uint8 RGB
        labels: (H, W) integer ids
        returns: (H, W, 3) uint8 RGB
    """
    image = np.asarray(image)
    labels = np.asarray(labels)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels {labels.shape} do not match image {image.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if labels.size and (labels.min() < 0 or labels.max() > VOID_LABEL):
        raise ValueError("labels must be in 0..255")
    labels = labels.astype(np.uint8, copy=False)
    objects = (labels != 0) & (labels != VOID_LABEL)
    out = image.copy()
    if not objects.any():
        return out
    colours = DAVIS_PALETTE[labels[objects]].astype(np.float32)
    mixed = (1.0 - alpha) * image[objects].astype(np.float32) + alpha * colours
    out[objects] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    edges = _label_edges(labels, width=max(1, min(labels.shape) // 360)) & objects
    out[edges] = DAVIS_PALETTE[labels[edges]] // 2
    return out


def _label_edges(labels: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` pixels (4-connected) of a change of label, on both sides.

    Shapes:
        labels: (H, W); returns: (H, W) bool
    """
    edges = np.zeros(labels.shape, dtype=bool)
    vertical = labels[1:] != labels[:-1]
    edges[1:] |= vertical
    edges[:-1] |= vertical
    horizontal = labels[:, 1:] != labels[:, :-1]
    edges[:, 1:] |= horizontal
    edges[:, :-1] |= horizontal
    for _ in range(width - 1):
        grown = edges.copy()
        grown[1:] |= edges[:-1]
        grown[:-1] |= edges[1:]
        grown[:, 1:] |= edges[:, :-1]
        grown[:, :-1] |= edges[:, 1:]
        edges = grown
    return edges


@functools.cache
def _default_encoder() -> str:
    """libx264 when PyAV's bundled ffmpeg has it, else the always-present mpeg4 encoder."""
    import av

    for name in _ENCODERS:
        try:
            av.Codec(name, "w")
        except ValueError:
            continue
        return name
    raise RuntimeError(f"PyAV's ffmpeg has none of the video encoders {_ENCODERS}")


class VideoWriter:
    """Write RGB frames to a video (H.264 or MPEG-4 Part 2; VP8 in ``.webm``; yuv420p),
    atomically.

    Use as a context manager: frames go to a temporary file beside ``path`` that is renamed onto
    ``path`` when the block ends normally and deleted when it raises, so a crash never leaves a
    playable-looking partial video. The size is fixed by the first frame. yuv420p needs even
    sides, so an odd height or width is **padded** by repeating the last row or column (nothing
    is cropped): a 49x65 input is stored as 50x66.

    Args:
        path: output file, ``.mp4`` (also ``.mov``, ``.mkv``, ``.avi``, ``.webm``).
        fps: frame rate; pass the input's :attr:`FrameSource.fps` to keep timing.
        codec: ``"libx264"`` or ``"mpeg4"``; default: libx264 if available, else mpeg4
            (``.webm``: ``"libvpx"``, VP8).
        quality: libx264 constant rate factor (lower is better; 18 is visually lossless).
    """

    def __init__(
        self,
        path: str | Path,
        fps: float = DEFAULT_FPS,
        *,
        codec: str | None = None,
        quality: int = 18,
    ) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in _WRITABLE_EXTENSIONS:
            known = ", ".join(sorted(_WRITABLE_EXTENSIONS))
            raise InputError(self.path, f"cannot write video of this type; use one of {known}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = float(fps)
        webm = self.path.suffix.lower() == ".webm"
        self.codec = codec or (_WEBM_ENCODER if webm else _default_encoder())
        self.quality = quality
        self.num_frames = 0
        self._size: tuple[int, int] | None = None
        self._stack: contextlib.ExitStack | None = None
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None

    def __enter__(self) -> VideoWriter:
        import av

        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(atomic_path(self.path))
            # faststart puts the index first, so players can start before the download ends
            options = {"movflags": "+faststart"} if tmp.suffix.lower() in (".mp4", ".mov") else {}
            self._container = av.open(str(tmp), mode="w", options=options)
            self._stack = stack.pop_all()
        return self

    def write(self, image: np.ndarray) -> None:
        """Append one frame.

        Shapes:
            image: (H, W, 3) uint8 RGB, the same H, W for every frame
        """
        if self._container is None:
            raise RuntimeError("VideoWriter.write() outside its 'with' block")
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        if self._stream is None:
            self._add_stream(image.shape[:2])
        elif image.shape[:2] != self._size:
            raise ValueError(f"frame is {_hhww(image.shape)} but the video is {_hhww(self._size)}")
        import av

        frame = av.VideoFrame.from_ndarray(_pad_to_even(image), format="rgb24")
        frame.pts = self.num_frames
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.num_frames += 1

    def _add_stream(self, size: tuple[int, int]) -> None:
        """Create the video stream once the first frame gives the size."""
        rate = Fraction(self.fps).limit_denominator(1001)
        stream = self._container.add_stream(self.codec, rate=rate)
        stream.height = size[0] + size[0] % 2
        stream.width = size[1] + size[1] % 2
        stream.pix_fmt = "yuv420p"
        if self.codec == "libx264":
            stream.options = {"crf": str(self.quality), "preset": "fast"}
        elif self.codec == _WEBM_ENCODER:  # constant quality, with the bit rate as its ceiling
            stream.bit_rate = max(2_000_000, int(stream.width * stream.height * self.fps))
            stream.options = {"crf": str(max(4, self.quality // 2)), "deadline": "good"}
        else:
            stream.bit_rate = max(1_000_000, int(0.2 * stream.width * stream.height * self.fps))
        self._stream = stream
        self._size = size

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        if exc_type is not None:
            self._close_quietly()
            stack.__exit__(exc_type, exc, tb)  # deletes the temporary file
            return
        with stack:  # an error while finishing also deletes the temporary file
            self._finish()

    def _finish(self) -> None:
        """Flush the encoder and close the file; refuse to publish a video without frames."""
        if self._stream is None:
            self._close_quietly()
            raise ValueError(f"{self.path}: no frames were written")
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        except BaseException:
            self._close_quietly()
            raise
        self._container = None

    def _close_quietly(self) -> None:
        """Close the container after a failure, without masking the original error."""
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(Exception):
                container.close()


def _pad_to_even(image: np.ndarray) -> np.ndarray:
    """Repeat the last row / column of an odd-sized image (yuv420p needs even sides).

    Shapes:
        image: (H, W, 3); returns: (H + H % 2, W + W % 2, 3)
    """
    pad = ((0, image.shape[0] % 2), (0, image.shape[1] % 2), (0, 0))
    return np.pad(image, pad, mode="edge") if any(p[1] for p in pad) else image


class OverlayWriter:
    """A :class:`VideoWriter` of frames with their label maps blended on (:func:`blend_labels`).

    Use as a context manager, like :class:`VideoWriter`; odd sizes are padded the same way.
    """

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS, alpha: float = 0.5) -> None:
        self.alpha = alpha
        self._writer = VideoWriter(path, fps)

    @property
    def path(self) -> Path:
        return self._writer.path

    @property
    def num_frames(self) -> int:
        return self._writer.num_frames

    def __enter__(self) -> OverlayWriter:
        self._writer.__enter__()
        return self

    def write(self, frame: Frame | np.ndarray, labels: np.ndarray) -> None:
        """Blend ``labels`` over ``frame`` and append it.

        Shapes:
            frame: (H, W, 3) uint8 RGB (or a :class:`Frame`); labels: (H, W)
        """
        image = frame.image if isinstance(frame, Frame) else frame
        self._writer.write(blend_labels(image, labels, self.alpha))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._writer.__exit__(exc_type, exc, tb)


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = DEFAULT_FPS) -> int:
    """Write ``frames`` to ``path`` with :class:`VideoWriter`; returns how many were written.

    Handy for tests and demos that need a small clip.

    Shapes:
        frames: each (H, W, 3) uint8 RGB
    """
    with VideoWriter(path, fps) as writer:
        for image in frames:
            writer.write(image)
    return writer.num_frames


def write_y4m(path: str | Path, frames: Iterable[np.ndarray], fps: int = 30) -> int:
    """Write ``frames`` as an uncompressed YUV4MPEG2 file (4:2:0, BT.601 in the limited
    "video" range that readers assume for y4m); returns how many were written.

    The raw format of video test sequences and of Chromium's fake camera
    (``--use-file-for-fake-video-capture``), which the page's camera tests play. Chroma is
    averaged over 2x2 blocks, so frames must have even sides.

    Shapes:
        frames: each (H, W, 3) uint8 RGB
    """
    count = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        for image in frames:
            height, width = image.shape[:2]
            if count == 0:
                if height % 2 or width % 2:
                    raise InputError(
                        path, f"y4m frames need even sides, got {_hhww((height, width))}"
                    )
                out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
                size = (height, width)
            elif (height, width) != size:
                raise InputError(
                    path, f"frame {count} is {_hhww((height, width))}, not {_hhww(size)}"
                )
            rgb = image.astype(np.float64)
            r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
            y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
            u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
            v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
            out.write(b"FRAME\n")
            for plane in (
                y,
                *(c.reshape(height // 2, 2, width // 2, 2).mean((1, 3)) for c in (u, v)),
            ):
                out.write(np.clip(plane, 0, 255).round().astype(np.uint8).tobytes())
            count += 1
    return count
