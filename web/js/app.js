// The page: open a video, give the objects on its first frame (a box through U²-Net-p, or the
// brush), play it through the video model frame by frame, show the masks and the speed,
// download the masks. The models live in vos.js and prompts.js; this file is the DOM.

import * as ort from '../ort/ort.min.mjs';
import { blendLabels, palettePng, PALETTE, zipStore } from './labels.js';
import { boxMask, ForegroundModel } from './prompts.js';
import { VideoFrames } from './video.js';
import { VOSModel, VOSPredictor } from './vos.js';

ort.env.wasm.wasmPaths = new URL('../ort/', import.meta.url).href;
// WASM threads: onnxruntime-web's own choice (half the logical cores, at most 4) unless the
// address says ?threads=N. Threads need SharedArrayBuffer, which browsers give only to
// cross-origin isolated pages (the server sends the COOP/COEP headers). More is not always
// faster: on 2 idle cores, 2 threads took 235 ms a frame against 345 ms for one; with another
// job on both cores, 736 ms against 385 ms (scripts/web_fps.py).
const threads = Number(new URLSearchParams(location.search).get('threads'));
if (Number.isInteger(threads) && threads > 0) ort.env.wasm.numThreads = threads;

const $ = (id) => document.getElementById(id);
const view = $('view');
const viewContext = view.getContext('2d');
const FPS_WINDOW = 10; // frames the shown speeds average over

const state = {
  config: null,
  model: null,
  provider: '',
  prompt: null, // Promise<ForegroundModel>, loaded once the video model is
  frames: null, // VideoFrames
  first: null, // ImageData of frame 0
  mask: null, // Uint8Array label map of frame 0
  masks: [], // Promise<Uint8Array> palette PNG per processed frame
  busy: false,
  stop: false,
  drag: null,
};

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
    const threads = ort.env.wasm.numThreads;
    state.provider = `WASM (${threads} thread${threads === 1 ? '' : 's'})`;
  }
  $('provider').textContent = state.provider;
  const select = $('object');
  if (!select.options.length) {
    for (let id = 1; id <= state.model.maxObjects; id++) select.add(new Option(String(id), id));
    showSwatch();
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

// ---------------------------------------------------------------------------------- video

async function openVideo(src, name) {
  if (state.busy) {
    state.stop = true;
    return showMessage('Stop the running video first.', 'note');
  }
  clearMessage();
  state.frames = null;
  state.masks = [];
  setControls();
  $('video-info').textContent = `opening ${name}…`;
  $('frame-counter').textContent = 'no video';
  try {
    const frames = await VideoFrames.open($('video'), src, name);
    state.first = await frames.frame(0);
    state.frames = frames;
    state.mask = new Uint8Array(frames.width * frames.height);
  } catch (error) {
    $('video-info').textContent = '';
    throw error;
  } finally {
    setControls();
  }
  const f = state.frames;
  view.width = f.width;
  view.height = f.height;
  const rate = f.fpsMeasured ? `${f.fps.toFixed(2)} fps` : `${f.fps} fps assumed`;
  $('video-info').textContent = `${name}: ${f.width}×${f.height}, ${rate}, ${f.count} frames`;
  if (!f.fpsMeasured) {
    addNote('fps-note', 'The frame rate could not be measured; frames are taken every 1/25 s.');
  } else {
    removeNote('fps-note');
  }
  $('frame-counter').textContent = `frame 1 / ${f.count}`;
  renderFirst();
  setControls();
}

// -------------------------------------------------------------------------------- drawing

function render(image, labels) {
  const out = new ImageData(image.width, image.height);
  blendLabels(image.data, labels, image.width, image.height, out.data);
  viewContext.putImageData(out, 0, 0);
}

function renderFirst() {
  render(state.first, state.mask);
  const drag = state.drag;
  if (drag && drag.tool === 'box') {
    viewContext.lineWidth = Math.max(2, view.width / 400);
    viewContext.strokeStyle = swatchColour();
    viewContext.strokeRect(drag.x0, drag.y0, drag.x1 - drag.x0, drag.y1 - drag.y0);
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

function framePoint(event) {
  const rect = view.getBoundingClientRect();
  return [
    ((event.clientX - rect.left) / rect.width) * view.width,
    ((event.clientY - rect.top) / rect.height) * view.height,
  ];
}

function paint(x, y, erase) {
  const { width, height } = state.frames;
  const scale = view.width / view.getBoundingClientRect().width;
  const radius = Number($('brush-size').value) * scale;
  const id = objectId();
  const [x0, x1] = [Math.max(0, Math.floor(x - radius)), Math.min(width - 1, Math.ceil(x + radius))];
  const [y0, y1] = [Math.max(0, Math.floor(y - radius)), Math.min(height - 1, Math.ceil(y + radius))];
  for (let yy = y0; yy <= y1; yy++) {
    for (let xx = x0; xx <= x1; xx++) {
      if ((xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 > radius * radius) continue;
      state.mask[yy * width + xx] = erase ? 0 : id;
    }
  }
}

function strokeTo(x, y) {
  const drag = state.drag;
  const steps = Math.max(1, Math.ceil(Math.hypot(x - drag.x1, y - drag.y1) / 2));
  for (let s = 1; s <= steps; s++) {
    const t = s / steps;
    paint(drag.x1 + (x - drag.x1) * t, drag.y1 + (y - drag.y1) * t, drag.tool === 'eraser');
  }
  drag.x1 = x;
  drag.y1 = y;
}

view.addEventListener('pointerdown', (event) => {
  if (!state.frames || state.busy) return;
  clearMessage();
  view.setPointerCapture(event.pointerId);
  const [x, y] = framePoint(event);
  state.drag = { tool: tool(), x0: x, y0: y, x1: x, y1: y };
  if (state.drag.tool !== 'box') paint(x, y, state.drag.tool === 'eraser');
  renderFirst();
});

view.addEventListener('pointermove', (event) => {
  if (!state.drag) return;
  const [x, y] = framePoint(event);
  if (state.drag.tool === 'box') {
    state.drag.x1 = x;
    state.drag.y1 = y;
  } else {
    strokeTo(x, y);
  }
  renderFirst();
});

view.addEventListener('pointerup', (event) => {
  const drag = state.drag;
  if (!drag) return;
  const [x, y] = framePoint(event);
  if (drag.tool !== 'box') {
    strokeTo(x, y);
    state.drag = null;
    renderFirst();
    setControls();
    return;
  }
  state.drag = null;
  const box = [Math.min(drag.x0, x), Math.min(drag.y0, y), Math.max(drag.x0, x), Math.max(drag.y0, y)];
  guarded(() => applyBox(box));
});

/** The object's mask from a box: U²-Net-p in the box; pixels another object already has keep
 *  it (paint over them to change that). */
async function applyBox(box) {
  const f = state.frames;
  state.busy = true;
  setControls();
  try {
    $('frame-counter').textContent = 'U²-Net-p on the box…';
    const model = await foregroundModel();
    const { mask, wholeBox } = await boxMask(model, state.first.data, f.width, f.height, box);
    const id = objectId();
    let area = 0;
    for (let i = 0; i < mask.length; i++) {
      if (state.mask[i] === id) state.mask[i] = 0;
      if (mask[i] && state.mask[i] === 0) {
        state.mask[i] = id;
        area += 1;
      }
    }
    $('frame-counter').textContent =
      `frame 1 / ${f.count}; U²-Net-p took ${Math.round(model.lastMs)} ms`;
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
  } finally {
    state.busy = false;
    renderFirst();
    setControls();
  }
}

// ---------------------------------------------------------------------------------- play

function hasObject(mask) {
  return mask.some((v) => v !== 0 && v !== 255);
}

function speed(ms) {
  return `${ms.toFixed(0)} ms/frame (${(1000 / ms).toFixed(1)} fps)`;
}

async function play() {
  const f = state.frames;
  if (!f) throw new Error('Open a video (or the sample clip) first.');
  if (!hasObject(state.mask)) {
    showMessage(
      'No object given yet: draw a box around the object on the first frame, or paint it ' +
        'with the brush, then press Play.',
    );
    return;
  }
  clearMessage();
  state.busy = true;
  state.stop = false;
  state.masks = [];
  setControls();
  const predictor = new VOSPredictor(state.model);
  const modelMs = [];
  const done = [];
  const first = state.mask.slice();
  try {
    for (let i = 0; i < f.count && !state.stop; i++) {
      const image = i === 0 ? state.first : await f.frame(i);
      if (image === null) break; // past the last frame: the count was one too many
      const start = performance.now();
      const labels = await predictor.step(image.data, f.width, f.height, i === 0 ? first : null);
      modelMs.push(performance.now() - start);
      render(image, labels);
      state.masks.push(palettePng(labels, f.width, f.height));
      done.push(performance.now());
      showSpeed(i, f.count, modelMs, done);
    }
  } finally {
    state.busy = false;
    setControls();
  }
  const stopped = state.stop && state.masks.length < f.count;
  showMessage(
    `${stopped ? 'Stopped after' : 'Done:'} ${state.masks.length} frames segmented. ` +
      'Download the masks as PNGs in a zip, or change the first frame\'s mask and play again.',
    'note',
  );
}

function showSpeed(i, count, modelMs, done) {
  const recent = modelMs.slice(-FPS_WINDOW);
  const mean = recent.reduce((a, b) => a + b, 0) / recent.length;
  $('fps-model').textContent = speed(mean);
  $('fps-model').dataset.fps = (1000 / mean).toFixed(3);
  $('frame-counter').textContent = `frame ${i + 1} / ${count}`;
  $('frame-counter').dataset.index = String(i);
  if (done.length > 1) {
    const span = done.slice(-(FPS_WINDOW + 1));
    const fps = ((span.length - 1) * 1000) / (span[span.length - 1] - span[0]);
    $('fps-e2e').textContent = `${fps.toFixed(1)} fps`;
    $('fps-e2e').dataset.fps = fps.toFixed(3);
  }
}

async function download() {
  const f = state.frames;
  const pngs = await Promise.all(state.masks);
  const files = pngs.map((bytes, i) => ({ name: `${String(i).padStart(5, '0')}.png`, bytes }));
  const blob = zipStore(files);
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = `${f.name.replace(/\.[^.]*$/, '') || 'video'}-masks.zip`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

// ------------------------------------------------------------------------------- controls

function setControls() {
  const ready = state.model !== null && !state.busy;
  $('sample').disabled = !state.config?.sample || state.busy;
  $('play').disabled = !ready || !state.frames;
  $('stop').disabled = !state.busy;
  $('download').disabled = state.busy || state.masks.length === 0;
  $('clear').disabled = state.busy || !state.frames;
  $('webgpu').disabled = state.busy || !navigator.gpu;
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
$('play').addEventListener('click', () => guarded(play));
$('stop').addEventListener('click', () => {
  state.stop = true;
});
$('download').addEventListener('click', () => guarded(download));
$('clear').addEventListener('click', () => {
  state.mask.fill(0);
  renderFirst();
});
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
