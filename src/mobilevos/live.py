"""Segment a live source as it runs: a camera, a network stream, or a file played in real time.

A live source delivers frames at its own rate whatever the model's speed, so the loop always
segments the **newest** frame and drops the ones it could not keep up with: a reader thread
keeps only the latest frame it has read (:class:`NewestFrame`), and each step takes it. The
frames dropped are counted, and no frame is processed twice.

:class:`LiveSession` is that loop for Python callers (a robot, an app): iterate it to get
:class:`LiveFrame` objects (the frame, its label map, the frames dropped so far), and give a
correction at any moment with :meth:`LiveSession.correct` (it enters the next frame as a mask
enters :meth:`~mobilevos.predictor.VOSPredictor.step`: objects in it take exactly that mask,
new ids start being tracked) or stop tracking objects with :meth:`LiveSession.remove`.
:func:`run_live` is the ``mobilevos live`` job around it: the first prompt, the outputs, the
optional window and Ctrl-C.

Sources (:func:`open_live_source`): a camera index (``0``) through OpenCV; anything else (an
``rtsp://`` or ``http://`` URL, a device path, a video file) through PyAV. A file is paced at
its frame rate, as a camera would deliver it (``loop`` replays it).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mobilevos.errors import InputError
from mobilevos.foreground import foreground_mask
from mobilevos.io import OverlayWriter, write_palette_png
from mobilevos.predictor import VOSPredictor
from mobilevos.prompts import PromptSegmenter

OPEN_TIMEOUT_S = 10.0
"""How long a network stream may take to open or to deliver a frame before it is an error."""


class LiveSource:
    """Frames from a live source, one :meth:`read` at a time (on the reader's thread).

    Args:
        name: how messages name the source.
        read: the next frame, (H, W, 3) uint8 RGB, or None at its end.
        fps: the source's frame rate (for the overlay video).
        close: releases the source.
        pace: wait ``1 / fps`` between frames (a file played as a camera delivers it).
    """

    def __init__(
        self,
        name: str,
        read: Callable[[], np.ndarray | None],
        fps: float,
        close: Callable[[], None] = lambda: None,
        pace: bool = False,
    ) -> None:
        self.name = name
        self.fps = fps
        self._read = read
        self._close = close
        self._pace = pace
        self._next_due: float | None = None

    def read(self) -> np.ndarray | None:
        if self._pace:
            now = time.monotonic()
            if self._next_due is not None and self._next_due > now:
                time.sleep(self._next_due - now)
            self._next_due = max(now, self._next_due or now) + 1 / self.fps
        return self._read()

    def close(self) -> None:
        self._close()

    @classmethod
    def from_frames(
        cls, name: str, frames: Callable[[], Iterator[np.ndarray]], fps: float, loop: bool = False
    ) -> LiveSource:
        """A source over ``frames()`` (called again to loop), paced at ``fps``."""
        state = {"it": frames()}

        def read() -> np.ndarray | None:
            frame = next(state["it"], None)
            if frame is None and loop:
                state["it"] = frames()
                frame = next(state["it"], None)
            return frame

        return cls(name, read, fps, pace=True)


def open_live_source(spec: str, loop: bool = False) -> LiveSource:
    """The source ``spec`` names: a camera index (digits) through OpenCV, else a URL, device
    or file through PyAV (a file paced at its frame rate; ``loop`` replays it). A source that
    does not open is a one-line :class:`InputError`."""
    if spec.isdecimal():
        return _camera(int(spec))
    if "://" not in spec and not Path(spec).exists():
        raise InputError(spec, "no such file, and not a camera index or a stream URL")
    return _stream(spec, loop)


def _camera(index: int) -> LiveSource:
    import cv2

    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        capture.release()
        raise InputError(f"camera {index}", "cannot be opened (no such camera, or it is busy)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0

    def read() -> np.ndarray | None:
        ok, bgr = capture.read()
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else None

    return LiveSource(f"camera {index}", read, fps, close=capture.release)


def _stream(spec: str, loop: bool) -> LiveSource:
    import av

    is_file = "://" not in spec

    def open_container():  # PyAV's container
        try:
            return av.open(spec, timeout=OPEN_TIMEOUT_S)
        except (OSError, av.FFmpegError) as exc:
            raise InputError(spec, f"cannot be opened ({_reason(exc)})") from None

    container = open_container()
    if not container.streams.video:
        container.close()
        raise InputError(spec, "has no video stream")
    stream = container.streams.video[0]
    fps = float(stream.average_rate or stream.guessed_rate or 30)
    state = {"container": container, "frames": container.decode(video=0)}

    def read() -> np.ndarray | None:
        while True:
            try:
                frame = next(state["frames"], None)
            except av.FFmpegError as exc:
                raise InputError(spec, f"cannot be read ({_reason(exc)})") from None
            if frame is not None:
                return frame.to_ndarray(format="rgb24")
            if not (loop and is_file):
                return None
            state["container"].close()
            state["container"] = open_container()
            state["frames"] = state["container"].decode(video=0)

    return LiveSource(spec, read, fps, close=lambda: state["container"].close(), pace=is_file)


def _reason(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


class NewestFrame:
    """Reads ``source`` on a thread of its own and keeps only the newest frame: a frame not
    taken before the next one arrives is dropped (and counted). A frame size that changes, an
    error of the source or its end stops the reader; :meth:`take` then raises or returns None.
    """

    def __init__(self, source: LiveSource) -> None:
        self.source = source
        self.dropped = 0
        self._latest: tuple[int, np.ndarray] | None = None
        self._size: tuple[int, int] | None = None
        self._ended = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="live-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        index = 0
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                size = frame.shape[:2]
                if self._size is not None and size != self._size:
                    raise InputError(
                        self.source.name,
                        f"the frame size changed from {self._size[0]}x{self._size[1]} to "
                        f"{size[0]}x{size[1]} at frame {index}",
                    )
                self._size = size
                with self._ready:
                    if self._latest is not None:
                        self.dropped += 1
                    self._latest = (index, frame)
                    self._ready.notify()
                index += 1
        except BaseException as exc:  # handed to the consumer, raised where it waits
            self._error = exc
        finally:
            with self._ready:
                self._ended = True
                self._ready.notify()

    def take(self) -> tuple[int, np.ndarray, int] | None:
        """The newest frame not taken yet (waiting for one), as (its index in the source, the
        frame, the frames dropped before it); None once the source has ended and every frame
        was taken or dropped. Every frame before the one taken was taken or dropped."""
        with self._ready:
            while self._latest is None and not self._ended:
                self._ready.wait()
            if self._latest is not None:
                (index, frame), self._latest = self._latest, None
                return index, frame, self.dropped
        if self._error is not None:
            raise self._error
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=OPEN_TIMEOUT_S)
        self.source.close()


@dataclass(frozen=True)
class LiveFrame:
    """One processed frame. ``index`` is its number in the source (frames dropped before it
    are skipped numbers); ``dropped`` counts the frames dropped before it (so the frames
    processed up to this one plus ``dropped`` is ``index + 1``); ``model_ms`` is the step's
    time."""

    index: int
    image: np.ndarray
    labels: np.ndarray
    dropped: int
    model_ms: float


@dataclass
class LiveSession:
    """Segments ``source`` live with ``predictor`` (see the module doc).

    ``first`` makes the first frame's label map from its image (a mask given beforehand, a
    box, the largest salient object); it must name at least one object.
    """

    predictor: VOSPredictor
    source: LiveSource
    first: Callable[[np.ndarray], np.ndarray]
    _pending: np.ndarray | None = field(default=None, init=False, repr=False)
    _removals: list[int] = field(default_factory=list, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _reader: NewestFrame | None = field(default=None, init=False, repr=False)

    def correct(self, mask: np.ndarray) -> None:
        """Give ``mask`` (H, W) uint8 on the next frame: its objects take exactly that mask
        there, new ids start being tracked."""
        with self._lock:
            self._pending = mask

    def remove(self, object_ids: list[int]) -> None:
        """Stop tracking ``object_ids`` from the next frame on."""
        with self._lock:
            self._removals.extend(object_ids)

    @property
    def dropped(self) -> int:
        return self._reader.dropped if self._reader is not None else 0

    def __iter__(self) -> Iterator[LiveFrame]:
        self._reader = NewestFrame(self.source)
        try:
            first = True
            while (taken := self._reader.take()) is not None:
                index, image, dropped = taken
                with self._lock:
                    mask, self._pending = self._pending, None
                    removals, self._removals = self._removals, []
                if first:
                    mask = self.first(image)
                    first = False
                if removals:
                    self.predictor.remove_objects(removals)
                start = time.perf_counter()
                labels = self.predictor.step(image, mask=mask)
                model_ms = (time.perf_counter() - start) * 1e3
                yield LiveFrame(index, image, labels, dropped, model_ms)
        finally:
            self._reader.close()


def first_prompt(
    prompts: tuple = (), segmenter: PromptSegmenter | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """What makes the first frame's label map: its boxes and clicks (``prompts``, through
    ``segmenter``), or without prompts the largest salient object (U²-Net-p), as object 1."""
    segmenter = segmenter or PromptSegmenter()

    def first(image: np.ndarray) -> np.ndarray:
        if prompts:
            labels = segmenter.label_map(image, prompts)
        else:
            labels = foreground_mask(segmenter.foreground.predict(image)).astype(np.uint8)
        if not labels.any():
            found = "its prompts make no object" if prompts else "no salient object found"
            raise InputError("the first frame", f"{found}; give --box or --click")
        return labels

    return first


@dataclass(frozen=True)
class LiveResult:
    frames: int
    dropped: int
    last_index: int
    out_dir: Path | None
    overlay: Path | None
    stopped_by_user: bool


def run_live(
    session: LiveSession,
    out_dir: Path | None = None,
    overlay: Path | None = None,
    show: bool = False,
    max_frames: int | None = None,
    report: Callable[[str], None] = print,
) -> LiveResult:
    """Run ``session`` until the source ends, ``max_frames`` frames were segmented or Ctrl-C,
    writing each frame's masks (palette PNGs named by the source's frame number) into
    ``out_dir`` and the overlay video to ``overlay`` as it goes: what is written is valid
    whenever it stops. ``show`` opens a window with the overlay (OpenCV's highgui); where
    there is none, ``report`` says so once and the run goes on.

    Ctrl-C (SIGINT, when this runs in the main thread) stops it after the frame in hand, so a
    frame's mask and its overlay frame are both written or neither; a second Ctrl-C interrupts
    at once."""
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    window = _Window(report) if show else None
    frames, last = 0, -1
    writer = OverlayWriter(overlay, fps=session.source.fps) if overlay is not None else None
    with _StopOnCtrlC() as ctrl_c:
        try:
            if writer is not None:
                writer.__enter__()
            for frame in session:
                if out_dir is not None:
                    write_palette_png(out_dir / f"{frame.index:06d}.png", frame.labels)
                if writer is not None:
                    writer.write(frame.image, frame.labels)
                if window is not None:
                    window.show(frame)
                frames, last = frames + 1, frame.index
                if ctrl_c.pressed or (max_frames is not None and frames >= max_frames):
                    break
        except KeyboardInterrupt:  # the second Ctrl-C
            ctrl_c.pressed = True
        finally:
            if writer is not None:
                writer.__exit__(None, None, None)
            if window is not None:
                window.close()
    return LiveResult(frames, session.dropped, last, out_dir, overlay, ctrl_c.pressed)


class _StopOnCtrlC:
    """While held (in the main thread), the first SIGINT only sets :attr:`pressed`; the next
    raises KeyboardInterrupt as usual. The previous handler comes back on exit."""

    def __init__(self) -> None:
        self.pressed = False
        self._previous = None

    def __enter__(self) -> _StopOnCtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._first)
        return self

    def _first(self, signum: int, frame: object) -> None:
        self.pressed = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _Window:
    """OpenCV's highgui window of the overlay, or one line saying there is none."""

    def __init__(self, report: Callable[[str], None]) -> None:
        self.report = report
        self.available = True

    def show(self, frame: LiveFrame) -> None:
        if not self.available:
            return
        import cv2

        from mobilevos.io import blend_labels

        picture = cv2.cvtColor(blend_labels(frame.image, frame.labels), cv2.COLOR_RGB2BGR)
        try:
            cv2.imshow("mobilevos live", picture)
            cv2.waitKey(1)
        except cv2.error as exc:
            self.available = False
            self.report(f"no window: OpenCV cannot show one here ({_reason(exc)}); writing only")

    def close(self) -> None:
        if self.available:
            import cv2

            with contextlib.suppress(cv2.error):
                cv2.destroyAllWindows()
