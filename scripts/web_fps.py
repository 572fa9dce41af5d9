"""How fast the exported student runs in the browser, beside Python on the same graphs.

    .venv/bin/python scripts/web_fps.py [--frames 40] [--sizes 240x432,480x864] [--out results/web]

Needs what ``make test-web`` installs (chromium, playwright, ``web/node_modules``). For each
export size (the shipped student, exported as ``mobilevos serve`` does, into its cache):

* **Python**: :class:`~mobilevos.predictor.VOSPredictor` over
  :class:`~mobilevos.formats.onnx.OrtEngine` (ONNX Runtime's default threads, and one),
  per-frame step time;
* **browser, model**: the page's ``web/js/vos.js`` in headless Chromium (onnxruntime-web, WASM,
  1 and 2 threads) on the same frames as raw bytes, per-frame step time, and its masks' IoU
  against Python's;
* **browser, page**: the real page at each size: the sample clip opened in a ``<video>``,
  the first frame boxed, Play, and the speeds the page shows (model and end to end, which adds
  seeking, drawing, the overlay and the PNG of each mask);
* **browser, camera**: the page on Chromium's fake camera playing the same frames (cropped to
  4:3 and resized to 640x480, as a camera gives them; a y4m at 25 fps, looped): Freeze, the
  box, Play for 40 segmented frames, the speeds shown and the frames dropped (no seeking: each
  step takes the camera's newest frame).

Frames: the first ``--frames`` of Big Buck Bunny (1280x720) from its box prompt, as in the
README, else a generated clip from its first-frame labels. Step times are medians over the
frames after the first three (warm-up). WebGPU: headless Chromium offers no adapter unless told
``--enable-unsafe-webgpu``, and then only SwiftShader, a CPU emulation; the script records that
and, with ``--webgpu-frames N``, times N frames on it (a check that the path works, not a speed).

The CPUs may be shared (the record keeps the load average); Python and the browser alternate
per size so that both see the same load. Writes ``OUT/fps.json``, ``OUT/page-sample.jpg``
(the page half way through the sample) and ``OUT/page-camera.jpg`` (the camera after a
correction).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mobilevos.cli.common import parse_size
from mobilevos.data.synth import SynthConfig, render_video
from mobilevos.extras import BIG_BUCK_BUNNY, U2NETP
from mobilevos.formats.onnx import OrtEngine
from mobilevos.io import atomic_path, open_frames, write_y4m
from mobilevos.predictor import VOSPredictor
from mobilevos.serve import (
    WEB_MAX_OBJECTS,
    Sample,
    WebServer,
    build_site,
    cache_root,
    default_export,
    sample_video,
)

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "web"
BUNNY_BOX = (200, 250, 530, 560)  # the README's box around the rabbit
CAMERA_SIZE = (480, 640)  # what the page asks a camera for; the clip is cropped to 4:3 for it
ROCK = (0.86, 0.5)  # the rock right of the rabbit, as a share of the camera frame
WARMUP = 3
TIMEOUT_MS = 600_000


def load_clip(count: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(T, H, W, 3) frames, frame 0's label map, and a description."""
    bunny = BIG_BUCK_BUNNY.find()
    if bunny is not None and U2NETP.find() is not None:
        from mobilevos.prompts import Box, PromptSegmenter

        with open_frames(bunny) as source:
            frames = [f.image for _, f in zip(range(count), source, strict=False)]
        first = PromptSegmenter(refine=False).label_map(frames[0], [Box(*BUNNY_BOX)])
        return np.stack(frames), first, f"Big Buck Bunny, first {len(frames)} frames, 1280x720"
    video = render_video(7, SynthConfig(360, 640, num_frames=count, num_objects=(2, 2)))
    return video.frames, video.labels[0], f"generated clip (seed 7), {count} frames, 360x640"


def median_ms(seconds: list[float]) -> float:
    return round(1000 * statistics.median(seconds[WARMUP:]), 1)


def python_run(
    model_dir: Path, frames: np.ndarray, first: np.ndarray, threads: int | None
) -> dict[str, Any]:
    predictor = VOSPredictor(OrtEngine(model_dir, threads=threads), size=None)
    predictor.timing = True
    steps, stages, labels = [], [], []
    for t, frame in enumerate(frames):
        start = time.perf_counter()
        labels.append(predictor.step(frame, mask=first if t == 0 else None))
        steps.append(time.perf_counter() - start)
        stages.append(dict(predictor.stage_seconds))
    names = stages[-1].keys()
    return {
        "step_ms": median_ms(steps),
        "fps": round(1000 / median_ms(steps), 2),
        "stages_ms": {n: median_ms([s.get(n, 0.0) for s in stages]) for n in names},
        "labels": labels,
    }


def browser_run(page: Any, server: WebServer, args: dict[str, Any]) -> dict[str, Any]:
    page.goto(server.url + "harness.html")
    result = page.evaluate("async (a) => (await import('/js/harness.js')).runClip(a)", args)
    steps = [ms / 1000 for ms in result["stepMs"]]
    names = result["stages"][-1].keys()
    stages = {n: median_ms([s.get(n, 0.0) / 1000 for s in result["stages"]]) for n in names}
    height, width = args["height"], args["width"]
    labels = np.frombuffer(base64.b64decode(result["labels"]), np.uint8)
    return {
        "step_ms": median_ms(steps),
        "fps": round(1000 / median_ms(steps), 2),
        "stages_ms": stages,
        "threads": result["threads"],
        "labels": labels.reshape(-1, height, width),
    }


def mean_iou(a: list[np.ndarray], b: np.ndarray) -> float:
    ious = []
    for x, y in zip(a, b, strict=True):
        for i in {int(v) for v in np.unique(x)} - {0}:
            union = np.logical_or(x == i, y == i).sum()
            ious.append(float(np.logical_and(x == i, y == i).sum() / union))
    return round(float(np.mean(ious)), 6)


def page_run(page: Any, server: WebServer, frames: int, screenshot: Path) -> dict[str, Any]:
    """The real page on the sample clip: box the object, play ``frames`` frames (a screenshot
    half way), read the speeds it shows (averages over its last 10 frames)."""
    page.goto(server.url)
    page.wait_for_selector("#provider[data-ready]")
    page.click("#sample")
    page.wait_for_function("document.querySelector('#video-info').textContent.includes('frames')")
    info = page.text_content("#video-info")
    view = page.locator("#view").bounding_box()
    width = int(info.split(": ")[1].split("×")[0])
    scale = view["width"] / width
    box = BUNNY_BOX if "bigbuckbunny" in info else (200, 80, 440, 280)
    page.mouse.move(view["x"] + box[0] * scale, view["y"] + box[1] * scale)
    page.mouse.down()
    page.mouse.move(view["x"] + box[2] * scale, view["y"] + box[3] * scale, steps=5)
    page.mouse.up()
    page.wait_for_function(
        "document.querySelector('#frame-counter').textContent.includes('U²-Net-p took')"
    )
    prompt = page.text_content("#frame-counter")
    page.click("#play")
    page.wait_for_function(
        f"Number(document.querySelector('#frame-counter').dataset.index) >= {frames // 2}"
    )
    page.screenshot(path=str(screenshot), type="jpeg", quality=80)
    page.wait_for_function(
        f"Number(document.querySelector('#frame-counter').dataset.index) >= {frames - 1}"
    )
    model_fps = float(page.get_attribute("#fps-model", "data-fps"))
    e2e_fps = float(page.get_attribute("#fps-e2e", "data-fps"))
    page.click("#pause")
    return {
        "video": info,
        "provider": page.text_content("#provider"),
        "prompt": prompt.split("; ")[-1],
        "model_fps": round(model_fps, 2),
        "end_to_end_fps": round(e2e_fps, 2),
    }


def camera_frames(frames: np.ndarray) -> list[np.ndarray]:
    """The clip's frames as a 640x480 camera gives them: the centre cropped to 4:3, resized."""
    height, width = frames.shape[1:3]
    crop = round(height * 4 / 3)
    left = (width - crop) // 2
    size = (CAMERA_SIZE[1], CAMERA_SIZE[0])
    return [
        np.asarray(Image.fromarray(f[:, left : left + crop]).resize(size, Image.BILINEAR))
        for f in frames
    ]


def camera_box(box: tuple[int, int, int, int]) -> list[float]:
    """A box on the 1280x720 clip, on its 640x480 camera frame (:func:`camera_frames`)."""
    scale, left = CAMERA_SIZE[0] / 720, (1280 - 960) // 2
    return [(box[0] - left) * scale, box[1] * scale, (box[2] - left) * scale, box[3] * scale]


def camera_run(
    playwright: Any, chromium: str, server: WebServer, y4m: Path, frames: int, screenshot: Path
) -> dict[str, Any]:
    """The page on Chromium's fake camera playing ``y4m`` in a loop: Freeze, the README's box,
    Play until ``frames`` frames are segmented; the speeds the page shows and frames dropped.
    Then a correction while it runs (*Click +* on the rock: a second object), and a screenshot
    10 frames later."""
    args = [
        "--no-sandbox",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={y4m}",
    ]
    browser = playwright.chromium.launch(executable_path=chromium, args=args)
    context = browser.new_context(viewport={"width": 1200, "height": 1000}, permissions=["camera"])
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url)
    page.wait_for_selector("#provider[data-ready]")
    page.click("#camera-open")
    page.wait_for_function("document.querySelector('#video-info').textContent.includes('live')")
    page.click("#freeze")
    page.wait_for_function("window.mobilevosPage.shown !== null")
    view = page.locator("#view").bounding_box()
    scale = view["width"] / CAMERA_SIZE[1]
    box = camera_box(BUNNY_BOX)
    page.mouse.move(view["x"] + box[0] * scale, view["y"] + box[1] * scale)
    page.mouse.down()
    page.mouse.move(view["x"] + box[2] * scale, view["y"] + box[3] * scale, steps=5)
    page.mouse.up()
    page.wait_for_function("document.querySelector('#frame-counter').textContent.includes('took')")
    page.click("#play")
    done = "Number(document.querySelector('#dropped').dataset.processed)"
    page.wait_for_function(f"{done} >= {frames}")
    result = {
        "camera": page.text_content("#video-info"),
        "provider": page.text_content("#provider"),
        "model_fps": round(float(page.get_attribute("#fps-model", "data-fps")), 2),
        "end_to_end_fps": round(float(page.get_attribute("#fps-e2e", "data-fps")), 2),
        "processed": int(page.get_attribute("#dropped", "data-processed")),
        "dropped": int(page.get_attribute("#dropped", "data-count")),
    }
    view = page.locator("#view").bounding_box()
    page.select_option("#object", "2")
    page.check("input[name=tool][value='click+']")
    page.mouse.click(view["x"] + ROCK[0] * view["width"], view["y"] + ROCK[1] * view["height"])
    page.wait_for_function(f"{done} >= {frames + 10}")
    page.screenshot(path=str(screenshot), type="jpeg", quality=80, full_page=True)
    page.click("#pause")
    browser.close()
    return result


@contextlib.contextmanager
def serving(model_dir: Path, data: Path, sample: Sample | None) -> Iterator[WebServer]:
    site = build_site(WEB, model_dir, U2NETP.find(), sample)
    site.mounts["/data/"] = data
    with WebServer.in_background(site) as server:
        yield server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--sizes", default="240x432,480x864")
    parser.add_argument("--webgpu-frames", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "web")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("MOBILEVOS_CHROMIUM") or shutil.which("chromium")
    frames, first, description = load_clip(args.frames)
    height, width = frames.shape[1:3]
    sizes = [parse_size(s, "--sizes") for s in args.sizes.split(",")]
    record: dict[str, Any] = {
        "clip": description,
        "objects": sorted({int(v) for v in np.unique(first)} - {0}),
        "max_objects": WEB_MAX_OBJECTS,
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "sizes": {},
    }
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        data = Path(tmp)
        rgba = np.concatenate([frames, np.full((*frames.shape[:3], 1), 255, np.uint8)], -1)
        (data / "frames.rgba").write_bytes(rgba.tobytes())
        (data / "mask.u8").write_bytes(first.astype(np.uint8).tobytes())
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        record["chromium"] = browser.version
        clip_args = {
            "model": "/model/",
            "frames": "/data/frames.rgba",
            "mask": "/data/mask.u8",
            "count": len(frames),
            "width": width,
            "height": height,
        }
        for size in sizes:
            key = f"{size[0]}x{size[1]}"
            model_dir = default_export(cache_root(), size, WEB_MAX_OBJECTS)
            print(f"{key}: Python...", flush=True)
            python = python_run(model_dir, frames, first, None)
            labels = python.pop("labels")
            single = python_run(model_dir, frames, first, 1)
            single.pop("labels")
            record["sizes"][key] = {
                "python_onnxruntime_default_threads": python,
                "python_onnxruntime_1_thread": single,
            }
            for threads in (1, 2):
                with serving(model_dir, data, None) as server:
                    page = browser.new_page()
                    page.set_default_timeout(TIMEOUT_MS)
                    web = browser_run(page, server, {**clip_args, "threads": threads})
                    page.close()
                web["mean_iou_vs_python"] = mean_iou(labels, web.pop("labels"))
                record["sizes"][key][f"browser_wasm_{threads}_threads"] = web
                print(
                    f"{key}: Python {python['step_ms']} ms, browser ({threads} threads) "
                    f"{web['step_ms']} ms, IoU {web['mean_iou_vs_python']}",
                    flush=True,
                )
        args.out.mkdir(parents=True, exist_ok=True)
        y4m = data / "camera.y4m"
        write_y4m(y4m, camera_frames(frames), fps=25)
        record["page"], record["camera"] = {}, {}
        for k, size in enumerate(sizes):
            key = f"{size[0]}x{size[1]}"
            model_dir = default_export(cache_root(), size, WEB_MAX_OBJECTS)
            with serving(model_dir, data, sample_video(cache_root())) as s:
                page = browser.new_page(viewport={"width": 1200, "height": 1000})
                page.set_default_timeout(TIMEOUT_MS)
                shot = args.out / ("page-sample.jpg" if k == 0 else f"page-sample-{key}.jpg")
                record["page"][key] = page_run(page, s, 40, shot)
                page.close()
                shot = args.out / ("page-camera.jpg" if k == 0 else f"page-camera-{key}.jpg")
                record["camera"][key] = camera_run(playwright, chromium, s, y4m, 40, shot)
            print(f"{key}: page {record['page'][key]}, camera {record['camera'][key]}", flush=True)
        browser.close()
        first_dir = default_export(cache_root(), sizes[0], WEB_MAX_OBJECTS)
        record["webgpu"] = webgpu(
            playwright, chromium, data, clip_args, first_dir, args.webgpu_frames
        )
    record["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / "fps.json") as tmp_path:
        tmp_path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


def webgpu(
    playwright: Any,
    chromium: str,
    data: Path,
    clip_args: dict[str, Any],
    model_dir: Path,
    count: int,
) -> dict[str, Any]:
    """What headless Chromium offers for WebGPU, plain and with --enable-unsafe-webgpu; with
    ``count``, the median step time of the page's model on that adapter over ``count`` frames
    (SwiftShader emulates a GPU on the CPU: this shows the path runs, not a GPU's speed)."""
    found: dict[str, Any] = {}
    for name, flags in (("default", []), ("enable-unsafe-webgpu", ["--enable-unsafe-webgpu"])):
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", *flags]
        )
        with serving(model_dir, data, None) as server:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(server.url + "harness.html")
            adapter = page.evaluate("async () => (await import('/js/harness.js')).webgpuAdapter()")
            if adapter["available"] and count:
                page.goto(server.url + "harness.html")
                run = page.evaluate(
                    "async (a) => (await import('/js/harness.js')).runClip(a)",
                    {**clip_args, "count": count, "executionProviders": ["webgpu"]},
                )
                adapter["frames_timed"] = count
                adapter["median_step_ms"] = round(statistics.median(run["stepMs"]), 1)
            found[name] = adapter
        browser.close()
    return found


if __name__ == "__main__":
    main()
