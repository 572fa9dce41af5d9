// Entry points for tests/test_web.py and scripts/web_fps.py, imported into harness.html with
// page.evaluate: they run the page's own modules (vos.js, prompts.js) on frames given as raw
// bytes over HTTP, so a comparison with Python sees the very pixels Python sees. Label maps
// come back base64-encoded.

import * as ort from '../ort/ort.min.mjs';
import { boxMask, ForegroundModel, partToRemove, partUnderClick } from './prompts.js';
import { VOSModel, VOSPredictor } from './vos.js';

ort.env.wasm.wasmPaths = new URL('../ort/', import.meta.url).href;

async function bytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

function base64(data) {
  let text = '';
  for (let i = 0; i < data.length; i += 0x8000) {
    text += String.fromCharCode(...data.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

/**
 * Segment `count` frames of `width` x `height` RGBA bytes (one file, frame after frame) from
 * the first frame's label map, with the exported model under `model` (a folder URL).
 * `threads` sets onnxruntime-web's WASM threads (only before the page's first session).
 * Returns every frame's labels (base64, concatenated), per-frame step milliseconds and stages.
 */
export async function runClip({
  model, frames, mask, count, width, height, executionProviders = ['wasm'], threads,
}) {
  if (threads !== undefined) ort.env.wasm.numThreads = threads;
  const vos = await VOSModel.load(ort, new URL(model, location.href), { executionProviders });
  const predictor = new VOSPredictor(vos);
  const pixels = await bytes(frames);
  const first = await bytes(mask);
  const size = width * height;
  const labels = new Uint8Array(count * size);
  const stepMs = [];
  const stages = [];
  for (let i = 0; i < count; i++) {
    const rgba = pixels.subarray(i * size * 4, (i + 1) * size * 4);
    const start = performance.now();
    const out = await predictor.step(rgba, width, height, i === 0 ? first : null);
    stepMs.push(performance.now() - start);
    stages.push(predictor.stageMs);
    labels.set(out, i * size);
  }
  await vos.release();
  return {
    labels: base64(labels),
    stepMs,
    stages,
    threads: ort.env.wasm.numThreads,
    isolated: self.crossOriginIsolated,
  };
}

/** The page's box prompt on one RGBA frame: the mask (base64, 0/1 bytes) and its flags. */
export async function runBox({ prompt, frame, width, height, box }) {
  const model = await ForegroundModel.load(ort, new URL(prompt, location.href));
  const result = await boxMask(model, await bytes(frame), width, height, box);
  return { mask: base64(result.mask), wholeBox: result.wholeBox, ms: model.lastMs };
}

/** The page's click rules on one RGBA frame: a positive click's part, or (with `mask`, 0/1
 *  bytes as base64) what a negative click removes from it; the part as base64 0/1 bytes. */
export async function runClick({ prompt, frame, width, height, x, y, mask = null }) {
  const model = await ForegroundModel.load(ort, new URL(prompt, location.href));
  const rgba = await bytes(frame);
  const part =
    mask === null
      ? await partUnderClick(model, rgba, width, height, x, y)
      : await partToRemove(
          model, rgba, width, height, Uint8Array.from(atob(mask), (c) => c.charCodeAt(0)), x, y,
        );
  return { part: part === null ? null : base64(part) };
}

/** Whether this browser offers WebGPU, and why not when it does not. */
export async function webgpuAdapter() {
  if (!navigator.gpu) return { available: false, reason: 'navigator.gpu is undefined' };
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return { available: false, reason: 'requestAdapter() returned null' };
  const info = adapter.info ?? {};
  return { available: true, reason: `${info.vendor ?? ''} ${info.architecture ?? ''}`.trim() };
}
