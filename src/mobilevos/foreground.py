"""Class-agnostic foreground (salient object) maps with U²-Net-p, for pseudo-masks.

Why: real videos have the appearance change, motion blur and lighting that synthetic videos
lack, but no masks. A class-agnostic salient-object network gives a plausible mask of "the main
thing in the picture" on every frame, good enough to train on (and, clearly labelled as such,
to test against) when no human annotation exists. These maps are **model output, not ground
truth**: anything built from them must say that its masks come from U²-Net-p.

The network is U²-Net-p (Qin et al., *U²-Net: Going Deeper with Nested U-Structure for Salient
Object Detection*, Pattern Recognition 2020), the 4.7 MB "portable" variant, as an ONNX file
with one ``1x3x320x320`` float input and seven ``1x1x320x320`` outputs, the first being the fused
saliency map. It runs on the CPU with onnxruntime: about 0.4 s per frame on one busy core.

Usage::

    model = ForegroundModel("u2netp.onnx")
    prob = model.predict(image)                      # (H, W) float32 in [0, 1]
    mask = prob > 0.5
    prob = model.predict(image, box=(40, 30, 200, 180))   # only inside the (enlarged) box
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image
from scipy import ndimage

from mobilevos.errors import InputError

logger = logging.getLogger(__name__)

INPUT_SIZE = 320
"""Side of the square the network sees; every image is resized to it (aspect not kept)."""
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
BOX_MARGIN = 0.1
"""With ``box=``, the crop grows by this fraction of the box's width/height on each side."""
THRESHOLD = 0.5
"""Foreground probability above which a pixel is foreground in :func:`foreground_mask`."""
MIN_COMPONENT = 0.002
"""Components under this share of the image are noise in :func:`foreground_mask`."""


class ForegroundModel:
    """U²-Net-p salient-object segmentation on the CPU.

    Args:
        path: the U²-Net-p ``.onnx`` file.
        threads: onnxruntime intra-op threads; ``None`` lets onnxruntime choose (all cores).

    Raises :class:`InputError` naming ``path`` when the file is missing, is not a readable ONNX
    model, or does not take a ``1x3x320x320`` image.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(self.path, "foreground model file not found")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        try:
            self._session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime's errors derive from Exception only
            reason = " ".join(str(exc).split())[:160] or type(exc).__name__
            raise InputError(self.path, f"cannot load ONNX model ({reason})") from None
        inputs = self._session.get_inputs()
        shape = list(inputs[0].shape) if len(inputs) == 1 else None
        if shape is None or shape[1:] != [3, INPUT_SIZE, INPUT_SIZE]:
            raise InputError(
                self.path,
                f"not a U²-Net-p model: expected one 1x3x{INPUT_SIZE}x{INPUT_SIZE} input",
            )
        self._input_name = inputs[0].name
        self._output_name = self._session.get_outputs()[0].name  # the fused map
        logger.debug("loaded foreground model %s", self.path)

    def predict(
        self, image: np.ndarray, box: tuple[int, int, int, int] | None = None
    ) -> np.ndarray:
        """The foreground probability of every pixel of ``image``.

        The image (or the crop, see ``box``) is resized to 320x320, divided by its largest
        value, normalised with the ImageNet mean and std, and run through the network; the
        fused output is min-max normalised (so the most salient pixel is always 1, even in an
        image with no clear object) and resized back bilinearly.

        Args:
            image: the frame.
            box: ``(x0, y0, x1, y1)`` in pixels, ``x1``/``y1`` exclusive: run on this region
                enlarged by :data:`BOX_MARGIN` on each side (clipped to the image); pixels
                outside the enlarged region get 0.

        Shapes:
            image: (H, W, 3) uint8 RGB
            returns: (H, W) float32 in [0, 1]
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        if box is None:
            return self._predict_full(image)
        x0, y0, x1, y1 = _grow_box(box, height, width)
        out = np.zeros((height, width), dtype=np.float32)
        out[y0:y1, x0:x1] = self._predict_full(image[y0:y1, x0:x1])
        return out

    def _predict_full(self, image: np.ndarray) -> np.ndarray:
        """Run the network on the whole of ``image``; (h, w, 3) uint8 -> (h, w) float32."""
        height, width = image.shape[:2]
        resized = Image.fromarray(image).resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.LANCZOS)
        x = np.asarray(resized, dtype=np.float32)
        x = x / max(float(x.max()), 1e-6)
        x = (x - IMAGENET_MEAN) / IMAGENET_STD
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])  # (1, 3, 320, 320)
        (out,) = self._session.run([self._output_name], {self._input_name: x})
        prob = np.asarray(out, dtype=np.float32).reshape(INPUT_SIZE, INPUT_SIZE)
        low, high = float(prob.min()), float(prob.max())
        prob = (prob - low) / (high - low) if high > low else np.zeros_like(prob)
        if (height, width) != (INPUT_SIZE, INPUT_SIZE):
            prob_image = Image.fromarray(prob)  # float32 -> mode "F"
            prob = np.asarray(prob_image.resize((width, height), Image.Resampling.BILINEAR))
        return np.clip(prob, 0.0, 1.0).astype(np.float32, copy=False)


def _grow_box(box: tuple[int, int, int, int], height: int, width: int) -> tuple[int, int, int, int]:
    """``box`` enlarged by :data:`BOX_MARGIN` per side and clipped to an ``height x width`` image.

    Raises ValueError for a box that is empty or lies outside the image.
    """
    if len(box) != 4:
        raise ValueError(f"box must be (x0, y0, x1, y1), got {box!r}")
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"box {box!r} is empty: need x1 > x0 and y1 > y0")
    left, top, right, bottom = grow_box((x0, y0, x1, y1), BOX_MARGIN, height, width)
    if right <= left or bottom <= top:
        raise ValueError(f"box {box!r} lies outside the {height}x{width} image")
    return left, top, right, bottom


def grow_box(
    box: tuple[float, float, float, float], share: float, height: int, width: int
) -> tuple[int, int, int, int]:
    """``box`` (x0, y0, x1, y1) enlarged by ``share`` of its width/height on each side, rounded
    outwards to whole pixels and clipped to an ``height x width`` image."""
    x0, y0, x1, y1 = box
    dx, dy = share * (x1 - x0), share * (y1 - y0)
    return (
        max(0, math.floor(x0 - dx)),
        max(0, math.floor(y0 - dy)),
        min(width, math.ceil(x1 + dx)),
        min(height, math.ceil(y1 + dy)),
    )


def foreground_mask(
    prob: np.ndarray, keep: float | None = None, threshold: float = THRESHOLD
) -> np.ndarray:
    """Threshold a foreground map and keep its largest 8-connected component.

    With ``keep``, also keep every component at least ``keep`` times the largest's area and at
    least :data:`MIN_COMPONENT` of the image (several objects of similar size).

    Shapes: prob (H, W) float in [0, 1]; returns (H, W) bool.
    """
    mask = prob > threshold
    components, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count <= 1:
        return mask
    areas = np.bincount(components.ravel())[1:]
    largest = int(areas.max())
    if keep is None:
        wanted = [int(areas.argmax()) + 1]
    else:
        least = min(largest, max(keep * largest, MIN_COMPONENT * mask.size))
        wanted = [i + 1 for i in np.flatnonzero(areas >= least)]
    return np.isin(components, wanted)
