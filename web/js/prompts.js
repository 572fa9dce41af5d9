// A box around an object becomes its mask, as mobilevos.prompts does without refinement
// (`--no-refine`): U²-Net-p (mobilevos.foreground.ForegroundModel) on the box grown by
// BOX_CONTEXT and then BOX_MARGIN (foreground.grow_box), the pixels inside the box above
// THRESHOLD, their 8-connected parts at least MIN_PART of the largest's area; when those cover
// less than MIN_FILL of the box, the network missed the object and the mask is the whole box.
// GrabCut (OpenCV), which refines prompt masks in Python, does not exist in the page.
//
// The network sees the crop resized to 320x320 with Pillow's Lanczos filter and its map comes
// back with Pillow's bilinear filter; both are ported below, integer arithmetic included, so
// the page feeds U²-Net-p the bytes Python feeds it. No DOM here: frames are RGBA bytes.

import { InputError } from './vos.js';

export const INPUT_SIZE = 320;
export const BOX_MARGIN = 0.1;
export const BOX_CONTEXT = 0.25;
export const THRESHOLD = 0.5;
export const MIN_PART = 0.1;
export const MIN_FILL = 0.25;
export const CLICK_WINDOW = 1 / 3;
export const WINDOW_GROWTH = 1.6;
export const MIN_CLICK_PART = 0.02;
const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

/** `box` [x0, y0, x1, y1] grown by `share` of its width/height on each side, rounded outwards
 *  to whole pixels and clipped to a height x width image (foreground.grow_box). */
export function growBox(box, share, height, width) {
  const [x0, y0, x1, y1] = box;
  const dx = share * (x1 - x0);
  const dy = share * (y1 - y0);
  return [
    Math.max(0, Math.floor(x0 - dx)),
    Math.max(0, Math.floor(y0 - dy)),
    Math.min(width, Math.ceil(x1 + dx)),
    Math.min(height, Math.ceil(y1 + dy)),
  ];
}

/** The box as whole pixels clipped to the frame (prompts.Box.pixels); an InputError when it
 *  is empty or outside the frame. */
export function boxPixels(box, height, width) {
  const [bx0, by0, bx1, by1] = box;
  const text = box.map((v) => Math.round(v)).join(',');
  if (!(bx1 > bx0 && by1 > by0)) throw new InputError(`box ${text} is empty: drag a rectangle`);
  const x0 = Math.max(0, Math.floor(bx0));
  const y0 = Math.max(0, Math.floor(by0));
  const x1 = Math.min(width, Math.ceil(bx1));
  const y1 = Math.min(height, Math.ceil(by1));
  if (x1 <= x0 || y1 <= y0) {
    throw new InputError(`box ${text} lies outside the ${height}x${width} frame`);
  }
  return [x0, y0, x1, y1];
}

// ----------------------------------------------------------------------- Pillow's resampling

const PRECISION_BITS = 32 - 8 - 2;

function sinc(x) {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

export const LANCZOS = { support: 3, f: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) };
export const BILINEAR = {
  support: 1,
  f: (x) => {
    const a = Math.abs(x);
    return a < 1 ? 1 - a : 0;
  },
};

/** Pillow's per-output-pixel filter taps along one axis: first source index, tap count and
 *  normalised weights (as its precompute_coeffs). */
function coefficients(inSize, outSize, filter) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * ksize);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const ss = 1 / filterScale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let total = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.f((x + xmin - center + 0.5) * ss);
      weights[o * ksize + x] = w;
      total += w;
    }
    if (total !== 0) for (let x = 0; x < xmax; x++) weights[o * ksize + x] /= total;
    first[o] = xmin;
    count[o] = xmax;
  }
  return { first, count, weights, ksize };
}

/** 8-bit weights in Pillow's fixed point (normalize_coeffs_8bpc). */
function fixedPoint(weights) {
  const out = new Float64Array(weights.length);
  const one = 2 ** PRECISION_BITS;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i];
    out[i] = w < 0 ? Math.trunc(-0.5 + w * one) : Math.trunc(0.5 + w * one);
  }
  return out;
}

/** One pass of Pillow's separable resampling along x (`vertical` false) or y, on interleaved
 *  `channels`-channel data; 8-bit data is rounded and clipped after the pass, as Pillow does. */
function resamplePass(src, width, height, channels, outSize, filter, vertical, eightBit) {
  const inSize = vertical ? height : width;
  const { first, count, weights, ksize } = coefficients(inSize, outSize, filter);
  const k = eightBit ? fixedPoint(weights) : weights;
  const outW = vertical ? width : outSize;
  const outH = vertical ? outSize : height;
  const dst = eightBit ? new Uint8Array(outW * outH * channels) : new Float32Array(outW * outH);
  const half = 2 ** (PRECISION_BITS - 1);
  const one = 2 ** PRECISION_BITS;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const o = vertical ? y : x;
      const base = o * ksize;
      for (let c = 0; c < channels; c++) {
        let sum = eightBit ? half : 0;
        for (let t = 0; t < count[o]; t++) {
          const sx = vertical ? x : first[o] + t;
          const sy = vertical ? first[o] + t : y;
          sum += src[(sy * width + sx) * channels + c] * k[base + t];
        }
        const at = (y * outW + x) * channels + c;
        dst[at] = eightBit ? Math.min(255, Math.max(0, Math.floor(sum / one))) : sum;
      }
    }
  }
  return dst;
}

/** Pillow's Image.resize: horizontal pass, then vertical, each only when that side changes.
 *  `src` is interleaved 8-bit data of `channels` channels, or (eightBit false) one float
 *  channel. */
export function pilResize(src, width, height, channels, outW, outH, filter, eightBit) {
  let data = src;
  if (outW !== width) {
    data = resamplePass(data, width, height, channels, outW, filter, false, eightBit);
  }
  if (outH !== height) {
    data = resamplePass(data, outW, height, channels, outH, filter, true, eightBit);
  }
  return data === src ? src.slice() : data;
}

// -------------------------------------------------------------------------------- U²-Net-p

/** U²-Net-p under onnxruntime-web (mobilevos.foreground.ForegroundModel). */
export class ForegroundModel {
  constructor(ort, session) {
    this.ort = ort;
    this.session = session;
    this.lastMs = 0;
  }

  static async load(ort, url, { executionProviders = ['wasm'] } = {}) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: ${response.status} ${response.statusText}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, { executionProviders });
    return new ForegroundModel(ort, session);
  }

  /** Foreground probability (H*W, in [0, 1]) of every pixel, from the network run on `box`
   *  grown by BOX_MARGIN (0 outside it), or on the whole frame when `box` is null. */
  async predict(rgba, width, height, box = null) {
    const start = performance.now();
    let region = [0, 0, width, height];
    if (box !== null) {
      const [x0, y0, x1, y1] = box;
      if (!(x1 > x0 && y1 > y0)) throw new InputError(`box ${box} is empty`);
      region = growBox(box, BOX_MARGIN, height, width);
      if (region[2] <= region[0] || region[3] <= region[1]) {
        throw new InputError(`box ${box} lies outside the ${height}x${width} frame`);
      }
    }
    const [x0, y0, x1, y1] = region;
    const cw = x1 - x0;
    const ch = y1 - y0;
    const crop = new Uint8Array(cw * ch * 3);
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        const from = ((y + y0) * width + x + x0) * 4;
        const to = (y * cw + x) * 3;
        crop[to] = rgba[from];
        crop[to + 1] = rgba[from + 1];
        crop[to + 2] = rgba[from + 2];
      }
    }
    const small = await this.predictFull(crop, cw, ch);
    const out = new Float32Array(width * height);
    for (let y = 0; y < ch; y++) out.set(small.subarray(y * cw, (y + 1) * cw), (y + y0) * width + x0);
    this.lastMs = performance.now() - start;
    return out;
  }

  /** The network on a whole (h, w, 3) RGB crop: Lanczos to 320x320, divided by its largest
   *  value, ImageNet-normalised; the fused map min-max normalised, resized back bilinearly and
   *  clipped to [0, 1]. */
  async predictFull(rgb, width, height) {
    const size = INPUT_SIZE;
    const resized = pilResize(rgb, width, height, 3, size, size, LANCZOS, true);
    let max = 0;
    for (let i = 0; i < resized.length; i++) max = Math.max(max, resized[i]);
    const divisor = Math.fround(Math.max(max, 1e-6));
    const n = size * size;
    const input = new Float32Array(3 * n);
    for (let c = 0; c < 3; c++) {
      const mean = Math.fround(IMAGENET_MEAN[c]); // float32 arithmetic, as numpy's
      const std = Math.fround(IMAGENET_STD[c]);
      for (let i = 0; i < n; i++) {
        const x = Math.fround(resized[i * 3 + c] / divisor);
        input[c * n + i] = Math.fround(x - mean) / std;
      }
    }
    const name = this.session.inputNames[0];
    const feeds = { [name]: new this.ort.Tensor('float32', input, [1, 3, size, size]) };
    const results = await this.session.run(feeds);
    const fused = results[this.session.outputNames[0]].data;
    let low = Infinity;
    let high = -Infinity;
    for (let i = 0; i < n; i++) {
      low = Math.min(low, fused[i]);
      high = Math.max(high, fused[i]);
    }
    const prob = new Float32Array(n);
    if (high > low) {
      const range = Math.fround(high - low);
      for (let i = 0; i < n; i++) prob[i] = Math.fround(fused[i] - low) / range;
    }
    const back =
      width === size && height === size
        ? prob
        : pilResize(prob, size, size, 1, width, height, BILINEAR, false);
    for (let i = 0; i < back.length; i++) back[i] = Math.min(1, Math.max(0, back[i]));
    return back;
  }
}

// ----------------------------------------------------------------------------- mask helpers

/** 8-connected components of a 0/1 mask: a label per pixel (0 off the mask, 1..count) and
 *  the area of each component (index 0 unused). */
export function components(mask, width, height) {
  const labels = new Int32Array(width * height);
  const areas = [0];
  const stack = new Int32Array(width * height);
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || labels[start]) continue;
    const label = areas.length;
    let top = 0;
    let area = 0;
    stack[top++] = start;
    labels[start] = label;
    while (top > 0) {
      const i = stack[--top];
      area += 1;
      const x = i % width;
      const y = (i - x) / width;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= width) continue;
          const j = yy * width + xx;
          if (mask[j] && !labels[j]) {
            labels[j] = label;
            stack[top++] = j;
          }
        }
      }
    }
    areas.push(area);
  }
  return { labels, areas };
}

/** The parts of `mask` at least `share` of the largest part's area (prompts._large_parts). */
export function largeParts(mask, width, height, share) {
  const { labels, areas } = components(mask, width, height);
  if (areas.length <= 2) return mask;
  const largest = Math.max(...areas.slice(1));
  const keep = areas.map((a, i) => i > 0 && a >= share * largest);
  const out = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) out[i] = keep[labels[i]] ? 1 : 0;
  return out;
}

/**
 * One object's mask (H*W, 0/1) from a box [x0, y0, x1, y1] (x1, y1 exclusive), as
 * PromptSegmenter(refine=False).object_mask does for a box alone. `wholeBox` is true when the
 * network found too little in the box and the mask is the box itself.
 */
export async function boxMask(model, rgba, width, height, box) {
  const [x0, y0, x1, y1] = boxPixels(box, height, width);
  const context = growBox([x0, y0, x1, y1], BOX_CONTEXT, height, width);
  const prob = await model.predict(rgba, width, height, context);
  const foreground = new Uint8Array(width * height);
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) foreground[y * width + x] = prob[y * width + x] > THRESHOLD;
  }
  let mask = largeParts(foreground, width, height, MIN_PART);
  const boxArea = (x1 - x0) * (y1 - y0);
  let area = 0;
  for (let i = 0; i < mask.length; i++) area += mask[i];
  const wholeBox = area < MIN_FILL * boxArea;
  if (wholeBox) {
    mask = new Uint8Array(width * height);
    for (let y = y0; y < y1; y++) mask.fill(1, y * width + x0, y * width + x1);
  }
  return { mask, wholeBox, box: [x0, y0, x1, y1], foregroundArea: area };
}

// ---------------------------------------------------------------------------------- clicks
// PromptSegmenter's click rules (mobilevos.prompts.masks) without GrabCut.

/** The 8-connected part of 0/1 `mask` holding pixel (x, y), or null when (x, y) is off it. */
export function partAt(mask, width, height, x, y) {
  if (!mask[y * width + x]) return null;
  const { labels } = components(mask, width, height);
  const label = labels[y * width + x];
  const part = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) part[i] = labels[i] === label ? 1 : 0;
  return part;
}

/** A square of `side` centred on (x, y), clipped to the frame (prompts.masks._window). */
function clickWindow(x, y, side, height, width) {
  const half = side / 2;
  return [
    Math.max(0, Math.floor(x - half)),
    Math.max(0, Math.floor(y - half)),
    Math.min(width, Math.ceil(x + half) + 1),
    Math.min(height, Math.ceil(y + half) + 1),
  ];
}

/** Whether `part` reaches an edge of `region` [x0, y0, x1, y1] that is not the frame's. */
function touchesInnerEdge(part, width, height, region) {
  const [left, top, right, bottom] = [region[0], region[1], region[2] - 1, region[3] - 1];
  const row = (y) => part.subarray(y * width, (y + 1) * width).some((v) => v);
  const column = (x) => {
    for (let y = 0; y < height; y++) if (part[y * width + x]) return true;
    return false;
  };
  return (
    (top > 0 && row(top)) ||
    (bottom < height - 1 && row(bottom)) ||
    (left > 0 && column(left)) ||
    (right < width - 1 && column(right))
  );
}

function area(mask) {
  let n = 0;
  for (let i = 0; i < mask.length; i++) n += mask[i];
  return n;
}

/** U²-Net-p on `window` and the part of its foreground (within `within`, if given) holding
 *  (x, y), with the area the network looked at. */
async function salientPart(model, rgba, width, height, window, x, y, within = null) {
  const prob = await model.predict(rgba, width, height, window);
  const foreground = new Uint8Array(width * height);
  for (let i = 0; i < foreground.length; i++) {
    foreground[i] = prob[i] > THRESHOLD && (within === null || within[i]) ? 1 : 0;
  }
  const seen = growBox(window, BOX_MARGIN, height, width);
  const seenArea = (seen[2] - seen[0]) * (seen[3] - seen[1]);
  return { part: partAt(foreground, width, height, x, y), seen, seenArea };
}

/** What a positive click at (x, y) selects: the salient part holding it, from U²-Net-p on a
 *  window around it that grows while the part touches the window's edge; null when the click
 *  is on no foreground (PromptSegmenter._part_under_click). */
export async function partUnderClick(model, rgba, width, height, x, y) {
  let side = CLICK_WINDOW * Math.min(height, width);
  for (;;) {
    const window = clickWindow(x, y, side, height, width);
    const { part, seen, seenArea } = await salientPart(model, rgba, width, height, window, x, y);
    const found = part !== null && area(part) >= MIN_CLICK_PART * seenArea;
    if (found && !touchesInnerEdge(part, width, height, seen)) return part;
    if (window[0] === 0 && window[1] === 0 && window[2] === width && window[3] === height) {
      return part;
    }
    side *= WINDOW_GROWTH;
  }
}

/** What a negative click at (x, y) removes from 0/1 `mask`: the salient part under it in a
 *  window half the mask's size, if the window shows it whole, else the mask's part holding
 *  the click (PromptSegmenter._part_to_remove). */
export async function partToRemove(model, rgba, width, height, mask, x, y) {
  let [x0, y0, x1, y1] = [width, height, -1, -1];
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    const px = i % width;
    const py = (i - px) / width;
    [x0, y0, x1, y1] = [Math.min(x0, px), Math.min(y0, py), Math.max(x1, px), Math.max(y1, py)];
  }
  const side = Math.max(32, 0.5 * Math.max(y1 - y0 + 1, x1 - x0 + 1));
  const window = clickWindow(x, y, side, height, width);
  const found = await salientPart(model, rgba, width, height, window, x, y, mask);
  const { part, seen, seenArea } = found;
  if (
    part === null ||
    area(part) < MIN_CLICK_PART * seenArea ||
    touchesInnerEdge(part, width, height, seen)
  ) {
    return partAt(mask, width, height, x, y);
  }
  return part;
}
