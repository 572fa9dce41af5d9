// The page: a video file or the camera, objects given on any frame (a box or a click through
// U²-Net-p, or the brush), tracked frame by frame by the video model, corrected at any moment,
// the masks and the overlay downloaded. The models live in vos.js and prompts.js, the sources in video.js and
// camera.js; this file is the DOM and the session.
//
// How a session runs: the view shows one frame (`state.shown`). Before it is segmented (a
// file's first frame, a frozen camera frame) the tools give its objects; Play segments it with
// that mask and goes on, a file frame after frame, the camera always at its newest frame (the
// frames it delivered meanwhile are dropped and counted). Pause stops after the frame in hand.
// On a segmented frame the tools correct it: Play (or, during a run, the end of the stroke)
// runs that frame again from the memory it had before, with the corrected mask, and a file goes
// on from there. ◀ and ▶ step through the last 30 segmented frames of a file (historyLength).

import * as ort from '../ort/ort.min.mjs';
import { Camera } from './camera.js';
import { blendLabels, palettePng, PALETTE, zipStore } from './labels.js';
import { boxMask, ForegroundModel, partToRemove, partUnderClick } from './prompts.js';
import { VideoFrames } from './video.js';
import { VOSModel, VOSPredictor } from './vos.js';

ort.env.wasm.wasmPaths = new URL('../ort/', import.meta.url).href;
// WASM threads: one per logical core where the page is cross-origin isolated (threads need
// SharedArrayBuffer; the server sends the COOP/COEP headers), unless the address says
// ?threads=N. onnxruntime-web's own default is half the cores, one on a 2-core machine, where
// two threads took 235 ms a frame against 345 ms for one (scripts/web_fps.py).
const threads = Number(new URLSearchParams(location.search).get('threads'));
if (Number.isInteger(threads) && threads > 0) {
  ort.env.wasm.numThreads = threads;
} else if (self.crossOriginIsolated) {
  ort.env.wasm.numThreads = navigator.hardwareConcurrency || 1;
}

const $ = (id) => document.getElementById(id);
const view = $('view');
const viewContext = view.getContext('2d');
const FPS_WINDOW = 10; // frames the shown speeds average over

const state = {
  config: null,
  model: null,
  provider: '',
  prompt: null, // Promise<ForegroundModel>, loaded once the video model is
  source: null, // { kind: 'file', frames: VideoFrames } or { kind: 'camera', camera: Camera }
  name: '',
  preview: false, // the camera's frames shown as they come, before Freeze
  shown: null, // { image: ImageData, labels: Uint8Array, index, entry: history entry or null }
  edited: false, // the shown labels differ from what was segmented: Play runs the frame again
  predictor: null,
  history: [], // { index, image, before: predictor snapshot, labels } of segmented frames
  historyLength: 30, // frames kept in history (image, labels, the memory before) for corrections
  masks: new Map(), // frame index -> Promise<Uint8Array> palette PNG
  removals: [], // object ids to stop tracking from the next frame
  dropped: 0,
  running: null, // the run's Promise while frames are being segmented
  stop: false,
  busy: false, // U²-Net-p running on a box
  drag: null,
  recorder: null,
  recorded: [],
  speeds: { modelMs: [], done: [] },
};
// For the console and the page's tests: the session's state.
window.mobilevosPage = state;

// ------------------------------------------------------------------------------- messages

function showMessage(text, kind = 'error') {
  const box = $('message');
  box.textContent = text;
  box.className = kind;
  box.hidden = false;
}

function clearMessage() {
  $('message').hidden = true;
  $('message').textContent = '';
}

function addNote(id, text) {
  let note = document.getElementById(id);
  if (!note) {
    note = document.createElement('p');
    note.id = id;
    $('notes').append(note);
  }
  note.textContent = text;
}

function removeNote(id) {
  document.getElementById(id)?.remove();
}

/** Run `task`, showing any error as a message in the page (never only in the console). */
async function guarded(task) {
  try {
    await task();
  } catch (error) {
    console.error(error);
    showMessage(error.message || String(error));
  }
}

window.addEventListener('error', (event) => showMessage(`Error: ${event.message}`));
window.addEventListener('unhandledrejection', (event) =>
  showMessage(`Error: ${event.reason?.message ?? event.reason}`),
);

// ---------------------------------------------------------------------------------- models

async function loadModel(useGpu) {
  setControls();
  $('provider').textContent = 'loading…';
  if (state.model) await state.model.release();
  state.model = null;
  const base = new URL(state.config.model, location.href);
  if (useGpu) {
    try {
      state.model = await VOSModel.load(ort, base, { executionProviders: ['webgpu'] });
      state.provider = 'WebGPU';
      removeNote('gpu-note');
    } catch (error) {
      console.error(error);
      $('webgpu').checked = false;
      addNote('gpu-note', `WebGPU failed (${error.message}); running on WASM instead.`);
    }
  }
  if (!state.model) {
    state.model = await VOSModel.load(ort, base, { executionProviders: ['wasm'] });
    const count = ort.env.wasm.numThreads;
    state.provider = `WASM (${count} thread${count === 1 ? '' : 's'})`;
  }
  $('provider').textContent = state.provider;
  const select = $('object');
  if (!select.options.length) {
    for (let id = 1; id <= state.model.maxObjects; id++) select.add(new Option(String(id), id));
    showSwatch();
  }
  if (state.source) {
    // A new session on the new backend, from the shown frame with its labels as the objects.
    newSession();
    const shown = state.shown;
    if (shown) showFrame(shown.image, shown.labels, shown.index, null);
  }
  setControls();
}

async function foregroundModel() {
  if (!state.config.prompt_model) {
    throw new Error(
      'Box prompts need U²-Net-p, which is not installed: ' +
        `${state.config.prompt_model_missing}, then restart mobilevos serve. ` +
        'The brush works without it.',
    );
  }
  if (!state.prompt) {
    const url = new URL(state.config.prompt_model, location.href);
    state.prompt = ForegroundModel.load(ort, url); // a promise: a box during the preload waits
    state.prompt.catch(() => {
      state.prompt = null;
    });
  }
  return state.prompt;
}

// -------------------------------------------------------------------------------- sources

/** Forget the session: memory, history, masks, counts. */
function newSession() {
  state.predictor = state.model ? new VOSPredictor(state.model) : null;
  state.history = [];
  state.masks = new Map();
  state.removals = [];
  state.dropped = 0;
  state.speeds = { modelMs: [], done: [] };
}

/** Show `image` (frame `index`) with no objects yet, to give them there. */
function annotate(image, index) {
  showFrame(image, new Uint8Array(image.width * image.height), index, null);
}

async function closeSource() {
  if (state.running) {
    state.stop = true;
    await state.running;
  }
  state.preview = false;
  if (state.source?.kind === 'camera') state.source.camera.stop();
  state.source = null;
  state.shown = null;
}

async function openVideo(src, name) {
  clearMessage();
  await closeSource();
  setControls();
  $('video-info').textContent = `opening ${name}…`;
  $('frame-counter').textContent = 'no video';
  let frames;
  let first;
  try {
    frames = await VideoFrames.open($('video'), src, name);
    first = await frames.frame(0);
  } catch (error) {
    $('video-info').textContent = '';
    setControls();
    throw error;
  }
  state.source = { kind: 'file', frames };
  state.name = name;
  fitView(frames.width, frames.height);
  const rate = frames.fpsMeasured ? `${frames.fps.toFixed(2)} fps` : `${frames.fps} fps assumed`;
  $('video-info').textContent =
    `${name}: ${frames.width}×${frames.height}, ${rate}, ${frames.count} frames`;
  if (!frames.fpsMeasured) {
    addNote('fps-note', 'The frame rate could not be measured; frames are taken every 1/25 s.');
  } else {
    removeNote('fps-note');
  }
  newSession();
  annotate(first, 0);
  setControls();
}

async function openCamera() {
  clearMessage();
  await closeSource();
  setControls();
  $('video-info').textContent = 'opening the camera…';
  let camera;
  try {
    camera = await Camera.open($('camera'));
  } catch (error) {
    $('video-info').textContent = '';
    setControls();
    throw error;
  }
  camera.onEnded = () => {
    state.stop = true;
    state.preview = false;
    const kept = state.masks.size;
    showMessage(
      `The camera stopped (unplugged, or taken by another program). The ${kept} masks made ` +
        'so far are kept: download them, or press Camera to start again.',
    );
    setControls();
  };
  state.source = { kind: 'camera', camera };
  state.name = 'camera';
  fitView(camera.width, camera.height);
  $('video-info').textContent = `${camera.name}: ${camera.width}×${camera.height}, live`;
  newSession();
  state.preview = true;
  showMessage('Press Freeze, then give the objects on the frozen frame and press Play.', 'note');
  setControls();
  requestAnimationFrame(previewFrame);
}

function previewFrame() {
  const source = state.source;
  if (!state.preview || source?.kind !== 'camera' || source.camera.ended) return;
  const image = source.camera.grab();
  fitView(image.width, image.height);
  viewContext.putImageData(image, 0, 0);
  $('frame-counter').textContent = 'camera preview';
  requestAnimationFrame(previewFrame);
}

/** Stop the camera's preview on its newest frame, to give objects there. */
async function freeze() {
  const camera = state.source.camera;
  if (state.running) {
    state.stop = true;
    await state.running;
  }
  state.preview = false;
  const next = await camera.next(); // the frames shown before it were a preview, not dropped
  if (next === null) return;
  const geometry = state.predictor.geometry;
  if (geometry && (geometry.height !== next.image.height || geometry.width !== next.image.width)) {
    newSession(); // the camera's frame size changed: a new session at the new size
  }
  fitView(next.image.width, next.image.height);
  annotate(next.image, next.index);
  clearMessage();
  setControls();
}

function fitView(width, height) {
  if (view.width !== width || view.height !== height) {
    view.width = width;
    view.height = height;
  }
}

// -------------------------------------------------------------------------------- drawing

function showFrame(image, labels, index, entry) {
  state.shown = { image, labels, index, entry };
  state.edited = false;
  renderShown();
  $('frame-counter').textContent = frameName(index);
  if (entry) $('frame-counter').dataset.index = String(index);
}

function frameName(index) {
  const f = state.source?.kind === 'file' ? state.source.frames : null;
  return f ? `frame ${index + 1} / ${f.count}` : `camera frame ${index + 1}`;
}

function render(image, labels) {
  const out = new ImageData(image.width, image.height);
  blendLabels(image.data, labels, image.width, image.height, out.data);
  viewContext.putImageData(out, 0, 0);
}

function renderShown() {
  const { image, labels } = state.shown;
  render(image, labels);
  const drag = state.drag;
  if (!drag) return;
  viewContext.lineWidth = Math.max(2, view.width / 400);
  viewContext.strokeStyle = swatchColour();
  if (drag.tool === 'box') {
    viewContext.strokeRect(drag.x0, drag.y0, drag.x1 - drag.x0, drag.y1 - drag.y0);
  } else if (drag.deferred) {
    // A stroke during a run: drawn over the frames until the run stops and takes it.
    viewContext.beginPath();
    for (const [x, y] of drag.points) viewContext.lineTo(x, y);
    viewContext.stroke();
  }
}

function objectId() {
  return Number($('object').value || 1);
}

function swatchColour() {
  const id = objectId();
  return `rgb(${PALETTE[id * 3]}, ${PALETTE[id * 3 + 1]}, ${PALETTE[id * 3 + 2]})`;
}

function showSwatch() {
  $('swatch').style.background = swatchColour();
}

function tool() {
  return document.querySelector('input[name="tool"]:checked').value;
}

function isBrush(name) {
  return name === 'brush' || name === 'eraser';
}

function framePoint(event) {
  const rect = view.getBoundingClientRect();
  return [
    ((event.clientX - rect.left) / rect.width) * view.width,
    ((event.clientY - rect.top) / rect.height) * view.height,
  ];
}

function paint(labels, width, height, x, y, erase, radius) {
  const id = objectId();
  const [x0, x1] = [Math.max(0, Math.floor(x - radius)), Math.min(width - 1, Math.ceil(x + radius))];
  const [y0, y1] = [Math.max(0, Math.floor(y - radius)), Math.min(height - 1, Math.ceil(y + radius))];
  for (let yy = y0; yy <= y1; yy++) {
    for (let xx = x0; xx <= x1; xx++) {
      if ((xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 > radius * radius) continue;
      labels[yy * width + xx] = erase ? 0 : id;
    }
  }
}

/** Paint a stroke (points in frame pixels) into the shown labels, densely along each step. */
function paintStroke(points, erase, radius) {
  const { labels, image } = state.shown;
  let [px, py] = points[0];
  paint(labels, image.width, image.height, px, py, erase, radius);
  for (const [x, y] of points.slice(1)) {
    const steps = Math.max(1, Math.ceil(Math.hypot(x - px, y - py) / 2));
    for (let s = 1; s <= steps; s++) {
      const t = s / steps;
      paint(labels, image.width, image.height, px + (x - px) * t, py + (y - py) * t, erase, radius);
    }
    [px, py] = [x, y];
  }
  state.edited = true;
}

function brushRadius() {
  return Number($('brush-size').value) * (view.width / view.getBoundingClientRect().width);
}

view.addEventListener('pointerdown', (event) => {
  if (!state.shown || state.busy || state.preview) return;
  clearMessage();
  view.setPointerCapture(event.pointerId);
  const [x, y] = framePoint(event);
  const deferred = state.running !== null;
  if (deferred) state.stop = true; // the run stops after the frame in hand, then takes the edit
  state.drag = { tool: tool(), x0: x, y0: y, x1: x, y1: y, points: [[x, y]], deferred };
  state.drag.radius = brushRadius();
  if (isBrush(state.drag.tool) && !deferred) {
    paintStroke(state.drag.points, state.drag.tool === 'eraser', state.drag.radius);
  }
  renderShown();
});

view.addEventListener('pointermove', (event) => {
  const drag = state.drag;
  if (!drag) return;
  const [x, y] = framePoint(event);
  [drag.x1, drag.y1] = [x, y];
  if (isBrush(drag.tool)) {
    const last = drag.points[drag.points.length - 1];
    drag.points.push([x, y]);
    if (!drag.deferred) paintStroke([last, [x, y]], drag.tool === 'eraser', drag.radius);
  }
  renderShown();
});

view.addEventListener('pointerup', (event) => {
  const drag = state.drag;
  if (!drag) return;
  const [x, y] = framePoint(event);
  state.drag = null;
  guarded(async () => {
    if (drag.deferred) await state.running; // the frame it was drawn over is now the shown one
    if (drag.tool === 'box') {
      const box = [Math.min(drag.x0, x), Math.min(drag.y0, y), Math.max(drag.x0, x), Math.max(drag.y0, y)];
      await applyBox(box);
    } else if (!isBrush(drag.tool)) {
      await applyClick(drag.x0, drag.y0, drag.tool === 'click+');
    } else if (drag.deferred) {
      paintStroke(drag.points, drag.tool === 'eraser', drag.radius);
    }
    renderShown();
    setControls();
    if (drag.deferred && state.edited) await play();
  });
});

/** The object's mask from a box: U²-Net-p in the box; pixels another object already has keep
 *  it (paint over them to change that). */
async function applyBox(box) {
  const { image, labels } = state.shown;
  await withForeground('U²-Net-p on the box…', async (model) => {
    const { mask, wholeBox } = await boxMask(model, image.data, image.width, image.height, box);
    const id = objectId();
    let area = 0;
    for (let i = 0; i < mask.length; i++) {
      if (labels[i] === id) labels[i] = 0;
      if (mask[i] && labels[i] === 0) {
        labels[i] = id;
        area += 1;
      }
    }
    if (area === 0) {
      showMessage(`The box gave object ${id} no pixels: other objects cover it. Paint it.`);
    } else if (wholeBox) {
      showMessage(
        `U²-Net-p found no clear object in the box, so object ${id} is the whole box ` +
          '(in Python, GrabCut would shrink it to the object; the page has no GrabCut). ' +
          'Erase what is not the object, or draw the box again.',
        'note',
      );
    }
    return true;
  });
}

/** Run `task(model)` with U²-Net-p on the shown frame, the controls held meanwhile and
 *  `doing` in the frame counter; when the task returns true (it changed the labels), the frame
 *  counts as edited and the counter says how long the network took. */
async function withForeground(doing, task) {
  const { index } = state.shown;
  state.busy = true;
  setControls();
  let took = '';
  try {
    $('frame-counter').textContent = doing;
    const model = await foregroundModel();
    if (await task(model)) {
      state.edited = true;
      took = `; U²-Net-p took ${Math.round(model.lastMs)} ms`;
    }
  } finally {
    state.busy = false;
    $('frame-counter').textContent = frameName(index) + took;
    renderShown();
    setControls();
  }
}

/** A positive click adds the salient part under it to the object; a negative click removes
 *  the part of the object under it (PromptSegmenter's click rules, without GrabCut). */
async function applyClick(x, y, positive) {
  const { image, labels } = state.shown;
  const { width, height } = image;
  const [px, py] = [Math.min(width - 1, Math.floor(x)), Math.min(height - 1, Math.floor(y))];
  const id = objectId();
  const at = py * width + px;
  if (positive ? labels[at] === id : labels[at] !== id) {
    if (!positive) showMessage(`The click is not on object ${id}: a negative click removes part of it.`);
    return;
  }
  await withForeground('U²-Net-p around the click…', async (model) => {
    if (positive) {
      const part = await partUnderClick(model, image.data, width, height, px, py);
      if (part === null) {
        showMessage('The click selects nothing: U²-Net-p sees no object under it. Use the brush.');
        return false;
      }
      for (let i = 0; i < labels.length; i++) if (part[i] && labels[i] === 0) labels[i] = id;
    } else {
      const mask = Uint8Array.from(labels, (v) => (v === id ? 1 : 0));
      const part = await partToRemove(model, image.data, width, height, mask, px, py);
      for (let i = 0; i < labels.length; i++) if (part[i]) labels[i] = 0;
    }
    return true;
  });
}

// ---------------------------------------------------------------------------------- the run

function hasObject(mask) {
  return mask.some((v) => v !== 0 && v !== 255);
}

function speed(ms) {
  return `${ms.toFixed(0)} ms/frame (${(1000 / ms).toFixed(1)} fps)`;
}

/** Segment `image` (frame `index`) with `mask` (or null), keeping what a correction needs:
 *  the history entry records the objects removed before it and whether it was given a mask. */
async function segment(image, index, mask) {
  const predictor = state.predictor;
  const before = predictor.snapshot();
  const removed = [...new Set(state.removals)].filter((id) => predictor.objectIds.includes(id));
  if (removed.length) predictor.removeObjects(removed);
  state.removals = [];
  const start = performance.now();
  const labels = await predictor.step(image.data, image.width, image.height, mask);
  state.speeds.modelMs.push(performance.now() - start);
  state.speeds.done.push(performance.now());
  const entry = { index, image, before, labels, given: mask !== null, removed };
  state.history.push(entry);
  if (state.history.length > state.historyLength) state.history.shift();
  state.masks.set(index, palettePng(labels, image.width, image.height));
  showFrame(image, labels.slice(), index, entry);
  showSpeed();
}

/** Run the shown frame again with its edited labels as the mask: from the memory it had
 *  before (a correction), or as a new frame with objects given (a first or frozen frame). A
 *  correction is the whole frame: an object erased from it entirely stops being tracked there
 *  (a mask cannot say "absent"; Python's step(mask=) keeps an object the mask leaves out). */
async function segmentShown() {
  const { image, labels, index, entry } = state.shown;
  if (entry) {
    const at = state.history.indexOf(entry);
    for (const later of state.history.splice(at)) {
      if (later.index !== index) state.masks.delete(later.index);
    }
    state.predictor.restore(entry.before);
    const erased = state.predictor.objectIds.filter((id) => !labels.includes(id));
    state.removals = [...entry.removed, ...erased, ...state.removals];
  }
  await segment(image, index, labels);
}

/** The next frame to segment: a file's next frame, the camera's newest; null at the end. */
async function nextFrame() {
  const source = state.source;
  if (source.kind === 'file') {
    const index = state.shown.index + 1;
    if (index >= source.frames.count) return null;
    const image = await source.frames.frame(index);
    return image === null ? null : { image, index };
  }
  const next = await source.camera.next();
  if (next === null) return null;
  state.dropped += next.dropped;
  const g = state.predictor.geometry;
  if (g && (g.height !== next.image.height || g.width !== next.image.width)) {
    throw new Error(
      `The camera's frames changed size from ${g.width}×${g.height} to ` +
        `${next.image.width}×${next.image.height}; the ${state.masks.size} masks made so far ` +
        'are kept (download them). Press Freeze to start again at the new size.',
    );
  }
  return next;
}

/** Segment from the shown frame on until the end, Pause, or (`single`) one frame. */
async function play(single = false) {
  const shown = state.shown;
  if (!shown) throw new Error('Open a video, the sample clip or the camera first.');
  if (state.predictor.objectIds.length === 0 && !hasObject(shown.labels)) {
    showMessage(
      'No object given yet: draw a box around the object, or paint it with the brush, then ' +
        'press Play.',
    );
    return;
  }
  clearMessage();
  state.stop = false;
  let finish;
  state.running = new Promise((resolve) => {
    finish = resolve;
  });
  setControls();
  startRecording();
  try {
    if (!shown.entry || state.edited) {
      await segmentShown();
      if (single) return;
    } else if (state.source.kind === 'file' && shown.entry !== state.history.at(-1)) {
      // Paused on an earlier frame without changing it: go on from the newest one.
      const last = state.history.at(-1);
      showFrame(last.image, last.labels.slice(), last.index, last);
    }
    while (!state.stop) {
      const next = await nextFrame();
      if (next === null) break;
      await segment(next.image, next.index, null);
      if (single) break;
    }
  } finally {
    state.running = null;
    finish();
    if (state.recorder?.state === 'recording') state.recorder.pause();
    setControls();
  }
  if (state.source?.kind === 'file' && !single) {
    const f = state.source.frames;
    const atEnd = state.shown.index >= f.count - 1;
    showMessage(
      `${atEnd ? 'Done:' : 'Paused:'} ${state.masks.size} frames segmented. Download the ` +
        'masks as PNGs in a zip; or correct a frame (◀ ▶ to reach it) and press Play to go on ' +
        'from there.',
      'note',
    );
  }
}

function showSpeed() {
  const { modelMs, done } = state.speeds;
  const recent = modelMs.slice(-FPS_WINDOW);
  const mean = recent.reduce((a, b) => a + b, 0) / recent.length;
  $('fps-model').textContent = speed(mean);
  $('fps-model').dataset.fps = (1000 / mean).toFixed(3);
  if (done.length > 1) {
    const span = done.slice(-(FPS_WINDOW + 1));
    const fps = ((span.length - 1) * 1000) / (span[span.length - 1] - span[0]);
    $('fps-e2e').textContent = `${fps.toFixed(1)} fps`;
    $('fps-e2e').dataset.fps = fps.toFixed(3);
  }
  $('dropped').textContent = String(state.dropped);
  $('dropped').dataset.count = String(state.dropped);
  $('dropped').dataset.processed = String(state.masks.size);
}

/** Show the segmented frame `step` away from the shown one (◀ ▶); ▶ past the newest segments
 *  the next frame. */
async function stepFrame(step) {
  const at = state.history.indexOf(state.shown.entry);
  const target = state.history[at + step];
  if (target) {
    showFrame(target.image, target.labels.slice(), target.index, target);
  } else if (step > 0) {
    await play(true);
  }
  setControls();
}

function removeObject() {
  const id = objectId();
  if (!state.predictor.objectIds.includes(id) && !state.shown?.labels.includes(id)) {
    showMessage(`Object ${id} is not being tracked.`, 'note');
    return;
  }
  if (state.predictor.objectIds.includes(id)) state.removals.push(id);
  const { labels } = state.shown;
  for (let i = 0; i < labels.length; i++) if (labels[i] === id) labels[i] = 0;
  renderShown();
  showMessage(`Object ${id} is removed from the next frame on.`, 'note');
}

// -------------------------------------------------------------------------------- outputs

function startRecording() {
  if (!$('record').checked) return;
  if (!state.recorder) {
    const stream = view.captureStream();
    const type = ['video/webm;codecs=vp9', 'video/webm;codecs=vp8', 'video/webm'].find((t) =>
      MediaRecorder.isTypeSupported(t),
    );
    state.recorder = new MediaRecorder(stream, type ? { mimeType: type } : {});
    state.recorded = [];
    state.recorder.addEventListener('dataavailable', (event) => state.recorded.push(event.data));
    state.recorder.start(1000);
  } else if (state.recorder.state === 'paused') {
    state.recorder.resume();
  }
}

function save(blob, name) {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

function baseName() {
  return state.name.replace(/\.[^.]*$/, '') || 'video';
}

async function downloadMasks() {
  const indices = [...state.masks.keys()].sort((a, b) => a - b);
  const pngs = await Promise.all(indices.map((i) => state.masks.get(i)));
  const files = pngs.map((bytes, k) => ({ name: `${String(indices[k]).padStart(5, '0')}.png`, bytes }));
  save(zipStore(files), `${baseName()}-masks.zip`);
}

async function downloadOverlay() {
  const recorder = state.recorder;
  state.recorder = null;
  const stopped = new Promise((resolve) => recorder.addEventListener('stop', resolve));
  recorder.stop();
  await stopped;
  save(new Blob(state.recorded, { type: recorder.mimeType }), `${baseName()}-overlay.webm`);
  state.recorded = [];
  setControls();
}

// ------------------------------------------------------------------------------- controls

function setControls() {
  const ready = state.model !== null && !state.busy;
  const running = state.running !== null;
  const camera = state.source?.kind === 'camera' && !state.source.camera.ended;
  const at = state.history.indexOf(state.shown?.entry);
  $('sample').disabled = !state.config?.sample || running;
  $('camera-open').disabled = running || state.model === null;
  $('freeze').disabled = !camera;
  $('play').disabled = !ready || running || !state.shown || (state.source?.camera?.ended ?? false);
  $('pause').disabled = !running;
  $('back').disabled = running || state.source?.kind !== 'file' || at <= 0;
  $('forward').disabled = running || !ready || state.source?.kind !== 'file' || !state.shown?.entry;
  $('download').disabled = running || state.masks.size === 0;
  $('download-overlay').disabled = running || !state.recorder;
  $('clear').disabled = running || !state.shown;
  $('remove').disabled = !state.shown;
  $('webgpu').disabled = running || !navigator.gpu;
}

$('file').addEventListener('change', () => {
  const file = $('file').files[0];
  if (file) guarded(() => openVideo(URL.createObjectURL(file), file.name));
  $('file').value = '';
});
$('sample').addEventListener('click', () => {
  const sample = state.config.sample;
  addNote('sample-note', `Sample clip: ${sample.title}.`);
  guarded(() => openVideo(new URL(sample.url, location.href).href, sample.url.split('/').pop()));
});
$('camera-open').addEventListener('click', () => guarded(openCamera));
$('freeze').addEventListener('click', () => guarded(freeze));
$('play').addEventListener('click', () => guarded(() => play()));
$('pause').addEventListener('click', () => {
  state.stop = true;
});
$('back').addEventListener('click', () => guarded(() => stepFrame(-1)));
$('forward').addEventListener('click', () => guarded(() => stepFrame(1)));
$('download').addEventListener('click', () => guarded(downloadMasks));
$('download-overlay').addEventListener('click', () => guarded(downloadOverlay));
$('clear').addEventListener('click', () => {
  state.shown.labels.fill(0);
  state.edited = true;
  renderShown();
});
$('remove').addEventListener('click', () => guarded(async () => removeObject()));
$('object').addEventListener('change', showSwatch);
$('webgpu').addEventListener('change', () => guarded(() => loadModel($('webgpu').checked)));

async function main() {
  const response = await fetch('config.json');
  if (!response.ok) throw new Error('config.json is missing: open the page through mobilevos serve');
  state.config = await response.json();
  if (state.config.sample) $('sample').title = state.config.sample.title;
  else addNote('sample-note', 'No sample clip is available.');
  if (!state.config.prompt_model) {
    addNote(
      'prompt-note',
      `Box prompts are off: U²-Net-p is not installed (${state.config.prompt_model_missing}). ` +
        'Use the brush.',
    );
  }
  if (!navigator.gpu) addNote('gpu-note', 'WebGPU: not offered by this browser; running on WASM.');
  if (!self.crossOriginIsolated) {
    addNote('isolation-note', 'The page is not cross-origin isolated, so WASM runs on one thread.');
  }
  await loadModel(false);
  $('provider').dataset.ready = 'true';
  // Load U²-Net-p's session now, so that the first box waits only for the network to run.
  if (state.config.prompt_model) foregroundModel().catch((error) => console.error(error));
}

setControls();
guarded(main);
