// The video model in the browser: the graphs of `mobilevos export` run by onnxruntime-web, and
// the session around them, ported from mobilevos.predictor.VOSPredictor (with the ONNX engine,
// mobilevos.formats.onnx.OrtEngine) and mobilevos.memory.MemoryBank.
//
// Everything comes from manifest.json: graph files and their input/output names and shapes,
// the memory capacity and write policy, the preprocessing constants and the object count K.
// Each frame runs the Python predictor's steps in the same order:
//
//   encode_query -> segment (when memory holds a frame) -> the given mask imposed ->
//   encode_value of the (predicted or given) masks -> memory write, where the policy says.
//
// No DOM here: frames come in as RGBA bytes and label maps go out as bytes, so tests drive this
// module directly (tests/test_web.py). The caller passes the onnxruntime-web module in.

export const VOID_LABEL = 255;
export const MANIFEST_VERSION = 2;
export const VERBS = ['encode_query', 'encode_value', 'segment'];
const QUERY_OUTPUTS = ['key', 'value', 'f16', 'f8', 'f4'];

/** A mistake in what the caller gave (a mask, a frame): its message is for the user. */
export class InputError extends Error {}

/** Python's round(): halves go to the even neighbour (round(2.5) == 2), unlike Math.round. */
export function pyRound(x) {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

// ------------------------------------------------------------------------------ the manifest

/** Read and check manifest.json under `baseUrl` (as mobilevos.formats.manifest.read_manifest). */
export async function loadManifest(baseUrl) {
  const url = new URL('manifest.json', baseUrl);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${response.statusText}`);
  const manifest = await response.json();
  if (manifest.format_version !== MANIFEST_VERSION) {
    throw new Error(`${url}: not a mobilevos manifest of format ${MANIFEST_VERSION}`);
  }
  for (const key of ['graphs', 'memory', 'input_size', 'max_objects', 'preprocessing']) {
    if (!(key in manifest)) throw new Error(`${url}: manifest lacks ${key}`);
  }
  for (const verb of VERBS) {
    if (!(verb in manifest.graphs)) throw new Error(`${url}: manifest lacks the ${verb} graph`);
  }
  return manifest;
}

function specOf(list, name) {
  const spec = list.find((s) => s.name === name);
  if (!spec) throw new Error(`manifest: no tensor named ${name}`);
  return spec;
}

function product(dims) {
  return dims.reduce((a, b) => a * b, 1);
}

// --------------------------------------------------------------------------------- the model

/**
 * The three graphs under onnxruntime-web, with the shapes the manifest gives them.
 *
 * `VOSModel.load(ort, baseUrl, {executionProviders})` fetches the manifest and the graphs.
 * `run(verb, feeds)` takes typed arrays by input name and returns typed arrays by output name.
 */
export class VOSModel {
  constructor(ort, manifest, sessions, executionProviders) {
    this.ort = ort;
    this.manifest = manifest;
    this.sessions = sessions;
    this.executionProviders = executionProviders;
    this.inputSize = manifest.input_size; // [H, W], multiples of the stride
    this.maxObjects = manifest.max_objects;
    const m = manifest.memory;
    this.memory = { pinned: m.pinned, recent: m.recent, writeEvery: m.write_every };
    this.memory.capacity = m.pinned + m.recent;
    if (m.capacity !== undefined && m.capacity !== this.memory.capacity) {
      throw new Error(`manifest: memory capacity ${m.capacity} is not pinned + recent`);
    }
    const pre = manifest.preprocessing;
    this.mean = pre.mean;
    this.std = pre.std;
    const query = manifest.graphs.encode_query.outputs;
    const keyDims = specOf(query, 'key').shape; // [1, Ck, h, w]
    const valueDims = specOf(manifest.graphs.encode_value.outputs, 'values').shape; // [1, K, Cv, h, w]
    this.keyDims = keyDims.slice(1);
    this.valueDims = valueDims.slice(1);
    const memoryValues = specOf(manifest.graphs.segment.inputs, 'memory_values').shape;
    if (memoryValues[3] !== this.memory.capacity || valueDims[1] !== this.maxObjects) {
      throw new Error('manifest: segment graph shapes do not match the memory and object count');
    }
    this.lastRunMs = 0; // time inside session.run, summed over a step's calls
  }

  static async load(ort, baseUrl, { executionProviders = ['wasm'], fetchOptions } = {}) {
    const manifest = await loadManifest(baseUrl);
    const sessions = {};
    for (const verb of VERBS) {
      const spec = manifest.graphs[verb];
      const url = new URL(spec.file, baseUrl);
      const response = await fetch(url, fetchOptions);
      if (!response.ok) throw new Error(`${url}: ${response.status} ${response.statusText}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      const session = await ort.InferenceSession.create(bytes, {
        executionProviders,
        graphOptimizationLevel: 'all',
      });
      checkSignature(verb, session, spec);
      sessions[verb] = session;
    }
    return new VOSModel(ort, manifest, sessions, executionProviders);
  }

  /** Run one graph: `feeds` maps input names to typed arrays (Float32Array; masks such as
   *  `valid` may come as Uint8Array 0/1 and are fed as float32); returns output names to
   *  Float32Array. */
  async run(verb, feeds) {
    const spec = this.manifest.graphs[verb];
    const tensors = {};
    for (const input of spec.inputs) {
      const data = feeds[input.name];
      if (data === undefined) throw new Error(`${verb}: no feed for ${input.name}`);
      if (data.length !== product(input.shape)) {
        throw new Error(`${verb}: ${input.name} has ${data.length} values, not ${input.shape}`);
      }
      const values = data instanceof Float32Array ? data : Float32Array.from(data);
      tensors[input.name] = new this.ort.Tensor('float32', values, input.shape);
    }
    const start = performance.now();
    const results = await this.sessions[verb].run(tensors);
    this.lastRunMs += performance.now() - start;
    const out = {};
    for (const output of spec.outputs) {
      const tensor = results[output.name];
      out[output.name] = tensor.data;
    }
    for (const tensor of Object.values(results)) {
      if (tensor.location !== 'cpu' && tensor.dispose) tensor.dispose();
    }
    return out;
  }

  async release() {
    for (const session of Object.values(this.sessions)) await session.release();
  }
}

function checkSignature(verb, session, spec) {
  const inputs = spec.inputs.map((s) => s.name);
  const outputs = spec.outputs.map((s) => s.name);
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  if (!same(session.inputNames, inputs) || !same(session.outputNames, outputs)) {
    throw new Error(
      `${spec.file}: graph inputs/outputs ${session.inputNames}/${session.outputNames} do not ` +
        `match the manifest's ${inputs}/${outputs}`,
    );
  }
}

// -------------------------------------------------------------------------------- the memory

/**
 * The finite memory: keys shared by all objects, values per object, validity per object and
 * slot (mobilevos.memory.MemoryBank). Slots [0, pinned) hold annotated frames, taken in turn
 * (the oldest is replaced); slots [pinned, capacity) are a ring of recent frames, written when
 * `writeEvery` frames have passed since the last write.
 *
 * Layout as the segment graph takes it: keys (Ck, S, h, w); values (K, Cv, S, h, w) for the
 * export's K objects, zero and invalid beyond the tracked ones (the Python engine's padding).
 */
export class MemoryBank {
  constructor(memory, keyDims, valueDims) {
    this.config = memory;
    const [ck, h, w] = keyDims;
    const [k, cv] = valueDims;
    const s = memory.capacity;
    this.hw = h * w;
    this.ck = ck;
    this.cv = cv;
    this.maxObjects = k;
    this.keys = new Float32Array(ck * s * h * w);
    this.values = new Float32Array(k * cv * s * h * w);
    this.valid = new Uint8Array(k * s);
    this.frameIndex = new Int32Array(s).fill(-1);
    this.numObjects = 0;
    this.pinnedWrites = 0;
    this.recentWrites = 0;
    this.lastWrite = -1;
  }

  get isEmpty() {
    return this.frameIndex.every((i) => i < 0);
  }

  /** The slot this frame goes to, or null when the policy does not write it. */
  slotFor(frameIndex, annotated) {
    const c = this.config;
    if (annotated) return this.pinnedWrites % c.pinned;
    const due = this.lastWrite >= 0 && frameIndex - this.lastWrite >= c.writeEvery;
    if (c.recent === 0 || !due) return null;
    return c.pinned + (this.recentWrites % c.recent);
  }

  /** Store a frame's key (Ck, h, w) and the tracked objects' values (taken from a
   *  (K, Cv, h, w) array: objects past numObjects are stored as zeros) in `slot`. */
  write(slot, frameIndex, key, values) {
    const c = this.config;
    const annotated = slot < c.pinned;
    if (slot !== this.slotFor(frameIndex, annotated)) {
      throw new Error(`frame ${frameIndex} does not go to slot ${slot}`);
    }
    const s = c.capacity;
    const hw = this.hw;
    for (let ch = 0; ch < this.ck; ch++) {
      this.keys.set(key.subarray(ch * hw, (ch + 1) * hw), (ch * s + slot) * hw);
    }
    for (let o = 0; o < this.maxObjects; o++) {
      for (let ch = 0; ch < this.cv; ch++) {
        const at = ((o * this.cv + ch) * s + slot) * hw;
        if (o < this.numObjects) {
          const from = (o * this.cv + ch) * hw;
          this.values.set(values.subarray(from, from + hw), at);
        } else {
          this.values.fill(0, at, at + hw);
        }
      }
    }
    for (let o = 0; o < this.numObjects; o++) this.valid[o * s + slot] = 1;
    this.frameIndex[slot] = frameIndex;
    this.lastWrite = frameIndex;
    if (annotated) this.pinnedWrites += 1;
    else this.recentWrites += 1;
  }

  /** Forget the objects at these positions (0-based); the others keep their order
   *  (mobilevos.memory.MemoryBank.remove_objects). */
  removeObjects(indices) {
    const s = this.config.capacity;
    const block = this.cv * s * this.hw;
    const keep = [];
    for (let o = 0; o < this.numObjects; o++) if (!indices.includes(o)) keep.push(o);
    keep.forEach((from, to) => {
      if (from === to) return;
      this.values.copyWithin(to * block, from * block, (from + 1) * block);
      this.valid.copyWithin(to * s, from * s, (from + 1) * s);
    });
    this.values.fill(0, keep.length * block);
    this.valid.fill(0, keep.length * s);
    this.numObjects = keep.length;
  }

  /** A copy of everything the bank holds, for restore(). */
  snapshot() {
    const { keys, values, valid, frameIndex } = this;
    const { numObjects, pinnedWrites, recentWrites, lastWrite } = this;
    return {
      keys: keys.slice(),
      values: values.slice(),
      valid: valid.slice(),
      frameIndex: frameIndex.slice(),
      numObjects,
      pinnedWrites,
      recentWrites,
      lastWrite,
    };
  }

  /** Return to a snapshot() (which stays usable: its arrays are copied, not taken). */
  restore(saved) {
    this.keys.set(saved.keys);
    this.values.set(saved.values);
    this.valid.set(saved.valid);
    this.frameIndex.set(saved.frameIndex);
    this.numObjects = saved.numObjects;
    this.pinnedWrites = saved.pinnedWrites;
    this.recentWrites = saved.recentWrites;
    this.lastWrite = saved.lastWrite;
  }

  /** Start tracking `count` more objects, with no valid slot (their values are zero). */
  addObjects(count) {
    if (this.numObjects + count > this.maxObjects) {
      throw new InputError(
        `${this.numObjects + count} objects, but this model takes at most ${this.maxObjects}`,
      );
    }
    this.numObjects += count;
  }
}

// ---------------------------------------------------------------------------------- geometry

/**
 * How a frame maps to the network input (mobilevos.predictor.FrameGeometry with a fixed input
 * size): the largest scale that fits, rounded as Python rounds, zero-padded bottom/right.
 */
export function frameGeometry(height, width, fixed) {
  const scale = Math.min(fixed[0] / height, fixed[1] / width);
  const rh = Math.max(pyRound(height * scale), 1);
  const rw = Math.max(pyRound(width * scale), 1);
  return {
    height,
    width,
    resizedHeight: Math.min(rh, fixed[0]),
    resizedWidth: Math.min(rw, fixed[1]),
    paddedHeight: fixed[0],
    paddedWidth: fixed[1],
  };
}

/** Source indices and weights of PyTorch's bilinear resize (align_corners=False, no
 *  antialiasing) along one axis of `inSize` pixels to `outSize`. */
export function linearTaps(inSize, outSize) {
  const scale = inSize / outSize;
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const w1 = new Float32Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const src = Math.max(scale * (o + 0.5) - 0.5, 0);
    const lo = Math.floor(src);
    i0[o] = lo;
    i1[o] = lo < inSize - 1 ? lo + 1 : lo;
    w1[o] = src - lo;
  }
  return { i0, i1, w1 };
}

/** Bilinear resize of planar (C, inH, inW) data into (C, outH, outW) at the top-left of an
 *  (outStrideH, outStrideW) zero-initialised plane (padding bottom/right). */
function resizeBilinear(src, channels, inH, inW, outH, outW, dst, strideH, strideW) {
  const rows = linearTaps(inH, outH);
  const cols = linearTaps(inW, outW);
  for (let c = 0; c < channels; c++) {
    const plane = c * inH * inW;
    const out = c * strideH * strideW;
    for (let y = 0; y < outH; y++) {
      const r0 = plane + rows.i0[y] * inW;
      const r1 = plane + rows.i1[y] * inW;
      const wy = rows.w1[y];
      const row = out + y * strideW;
      for (let x = 0; x < outW; x++) {
        const a = cols.i0[x];
        const b = cols.i1[x];
        const wx = cols.w1[x];
        const top = src[r0 + a] * (1 - wx) + src[r0 + b] * wx;
        const bottom = src[r1 + a] * (1 - wx) + src[r1 + b] * wx;
        dst[row + x] = top * (1 - wy) + bottom * wy;
      }
    }
  }
}

/** PyTorch's "area" resize (adaptive average pooling) of planar (C, inH, inW) data into the
 *  top-left of a zero-initialised (C, strideH, strideW) array. */
function resizeArea(src, channels, inH, inW, outH, outW, dst, strideH, strideW) {
  const bounds = (inSize, outSize) => {
    const start = new Int32Array(outSize);
    const end = new Int32Array(outSize);
    for (let o = 0; o < outSize; o++) {
      start[o] = Math.floor((o * inSize) / outSize);
      end[o] = Math.ceil(((o + 1) * inSize) / outSize);
    }
    return { start, end };
  };
  const rows = bounds(inH, outH);
  const cols = bounds(inW, outW);
  for (let c = 0; c < channels; c++) {
    const plane = c * inH * inW;
    const out = c * strideH * strideW;
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        let sum = 0;
        for (let yy = rows.start[y]; yy < rows.end[y]; yy++) {
          const row = plane + yy * inW;
          for (let xx = cols.start[x]; xx < cols.end[x]; xx++) sum += src[row + xx];
        }
        const count = (rows.end[y] - rows.start[y]) * (cols.end[x] - cols.start[x]);
        dst[out + y * strideW + x] = sum / count;
      }
    }
  }
}

/** (C, H, W) at input size -> (C, padded H, padded W): resized ("bilinear" or "area") to the
 *  resized size and zero-padded (FrameGeometry.to_network). */
export function toNetwork(geometry, data, channels, mode) {
  const g = geometry;
  const out = new Float32Array(channels * g.paddedHeight * g.paddedWidth);
  const same = g.resizedHeight === g.height && g.resizedWidth === g.width;
  if (same) {
    for (let c = 0; c < channels; c++) {
      for (let y = 0; y < g.height; y++) {
        const from = (c * g.height + y) * g.width;
        out.set(
          data.subarray(from, from + g.width),
          (c * g.paddedHeight + y) * g.paddedWidth,
        );
      }
    }
    return out;
  }
  const resize = mode === 'area' ? resizeArea : resizeBilinear;
  resize(
    data, channels, g.height, g.width, g.resizedHeight, g.resizedWidth,
    out, g.paddedHeight, g.paddedWidth,
  );
  return out;
}

/** (C, padded H, padded W) -> (C, H, W) at input size: the padding cropped, then a bilinear
 *  resize (FrameGeometry.to_input). */
export function toInput(geometry, data, channels) {
  const g = geometry;
  const cropped = new Float32Array(channels * g.resizedHeight * g.resizedWidth);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < g.resizedHeight; y++) {
      const from = (c * g.paddedHeight + y) * g.paddedWidth;
      cropped.set(
        data.subarray(from, from + g.resizedWidth),
        (c * g.resizedHeight + y) * g.resizedWidth,
      );
    }
  }
  if (g.resizedHeight === g.height && g.resizedWidth === g.width) return cropped;
  const out = new Float32Array(channels * g.height * g.width);
  resizeBilinear(
    cropped, channels, g.resizedHeight, g.resizedWidth, g.height, g.width,
    out, g.height, g.width,
  );
  return out;
}

/** The label map of (C, padded H, padded W) probabilities at input size, without storing the
 *  resized probabilities: per pixel, the same bilinear taps for every channel, then the first
 *  maximum (torch's max(dim=0).indices), mapped through `ids`. */
function labelsAtInput(geometry, prob, channels, ids) {
  const g = geometry;
  const labels = new Uint8Array(g.height * g.width);
  const rows = linearTaps(g.resizedHeight, g.height);
  const cols = linearTaps(g.resizedWidth, g.width);
  const plane = g.paddedHeight * g.paddedWidth;
  const stride = g.paddedWidth;
  for (let y = 0; y < g.height; y++) {
    const r0 = rows.i0[y] * stride;
    const r1 = rows.i1[y] * stride;
    const wy = rows.w1[y];
    for (let x = 0; x < g.width; x++) {
      const a = cols.i0[x];
      const b = cols.i1[x];
      const wx = cols.w1[x];
      let best = -Infinity;
      let arg = 0;
      for (let c = 0; c < channels; c++) {
        const p = c * plane;
        const top = prob[p + r0 + a] * (1 - wx) + prob[p + r0 + b] * wx;
        const bottom = prob[p + r1 + a] * (1 - wx) + prob[p + r1 + b] * wx;
        const v = Math.fround(top * (1 - wy) + bottom * wy);
        if (v > best) {
          best = v;
          arg = c;
        }
      }
      labels[y * g.width + x] = ids[arg];
    }
  }
  return labels;
}

function argmaxLabels(prob, channels, size, ids) {
  const labels = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    let best = -Infinity;
    let arg = 0;
    for (let c = 0; c < channels; c++) {
      const v = prob[c * size + i];
      if (v > best) {
        best = v;
        arg = c;
      }
    }
    labels[i] = ids[arg];
  }
  return labels;
}

// ------------------------------------------------------------------------------ given masks

/**
 * Overwrite the given objects' channels with the given mask, keeping a distribution
 * (mobilevos.given.impose_masks): where the mask is not void, the given objects take it and
 * the others share what is left in their predicted proportions (all to the background if they
 * predicted nothing there); void pixels keep the prediction (new objects stay at zero there).
 *
 * prob (K'+1, N) over the objects tracked before (new ones are missing at the end);
 * onehot (K+1, N); channels the given channels; claimed (N) in [0, 1]. Returns (K+1, N).
 */
export function imposeMasks(prob, priorChannels, onehot, totalChannels, channels, claimed) {
  const n = claimed.length;
  const given = new Uint8Array(totalChannels);
  for (const c of channels) given[c] = 1;
  const out = new Float32Array(totalChannels * n);
  const p = (c, i) => (c < priorChannels ? prob[c * n + i] : 0);
  for (let i = 0; i < n; i++) {
    let mass = 0;
    let restSum = 0;
    for (let c = 0; c < totalChannels; c++) {
      if (given[c]) mass += onehot[c * n + i];
      else restSum += p(c, i);
    }
    mass = Math.min(mass, 1);
    const claim = claimed[i];
    for (let c = 0; c < totalChannels; c++) {
      let imposed;
      if (given[c]) {
        imposed = onehot[c * n + i];
      } else {
        const share = restSum > 1e-6 ? p(c, i) / Math.max(restSum, 1e-6) : c === 0 ? 1 : 0;
        imposed = share * (1 - mass);
      }
      out[c * n + i] = claim * imposed + (1 - claim) * p(c, i);
    }
  }
  return out;
}

// ------------------------------------------------------------------------------ the session

/**
 * One video's session (mobilevos.predictor.VOSPredictor with an OrtEngine): object ids, frame
 * geometry, the memory bank and the frame counter.
 *
 *   const predictor = new VOSPredictor(model);
 *   const labels = await predictor.step(rgba, width, height, firstMask);   // Uint8Array
 *
 * `stageMs` holds the last step's milliseconds per stage (preprocess, encode_query, segment,
 * encode_value, postprocess), as the Python predictor's stage_seconds.
 */
export class VOSPredictor {
  constructor(model) {
    this.model = model;
    this.reset();
  }

  reset() {
    const m = this.model;
    this.memory = new MemoryBank(m.memory, m.keyDims, m.valueDims);
    this.frameIndex = -1;
    this.ids = [];
    this.geometry = null;
    this.stageMs = {};
  }

  get objectIds() {
    return [...this.ids];
  }

  /** Stop tracking these object ids from the next frame on (unknown ids are an error). */
  removeObjects(ids) {
    const unknown = ids.filter((id) => !this.ids.includes(id));
    if (unknown.length) {
      throw new InputError(`not tracking objects ${unknown}; tracking ${this.ids}`);
    }
    this.memory.removeObjects(ids.map((id) => this.ids.indexOf(id)));
    this.ids = this.ids.filter((id) => !ids.includes(id));
  }

  /** The session as it stands (memory, ids, frame counter), to go back to with restore():
   *  a correction of a frame already segmented re-runs it from the state before it. */
  snapshot() {
    return {
      memory: this.memory.snapshot(),
      frameIndex: this.frameIndex,
      ids: [...this.ids],
      geometry: this.geometry,
    };
  }

  restore(saved) {
    this.memory.restore(saved.memory);
    this.frameIndex = saved.frameIndex;
    this.ids = [...saved.ids];
    this.geometry = saved.geometry;
  }

  /**
   * Segment the next frame. `rgba`: (H, W, 4) bytes (ImageData.data); `mask`: optional (H, W)
   * label map for this frame (0 background, 255 void): its objects take exactly that mask and
   * new ids start being tracked. Returns the (H, W) label map with the caller's ids.
   */
  async step(rgba, width, height, mask = null) {
    const model = this.model;
    const stages = {};
    const timed = async (name, fn) => {
      const start = performance.now();
      const result = await fn();
      stages[name] = (stages[name] ?? 0) + performance.now() - start;
      return result;
    };
    model.lastRunMs = 0;
    if (rgba.length !== width * height * 4) {
      throw new InputError(`frame has ${rgba.length} bytes, not ${width}x${height} RGBA`);
    }
    if (this.geometry === null) {
      this.geometry = frameGeometry(height, width, model.inputSize);
    } else if (this.geometry.height !== height || this.geometry.width !== width) {
      throw new InputError(
        `frame size changed from ${this.geometry.height}x${this.geometry.width} to ` +
          `${height}x${width} mid-video`,
      );
    }
    const g = this.geometry;
    this.frameIndex += 1;
    let given = mask === null ? null : this.prepareMask(mask, height, width);
    if (given !== null && given.channels.length === 0) given = null;
    if (given === null && this.ids.length === 0) {
      throw new InputError('the first frame needs a mask with at least one object');
    }
    const netImage = await timed('preprocess', () => this.networkImage(rgba));
    const query = await timed('encode_query', () => model.run('encode_query', { image: netImage }));
    const netSize = g.paddedHeight * g.paddedWidth;
    let prob = await timed('segment', () => this.predict(query, netSize));
    let channels = this.ids.length + 1;
    if (given !== null) {
      await timed('preprocess', () => {
        this.memory.addObjects(given.newIds.length);
        this.ids.push(...given.newIds);
        const total = this.ids.length + 1;
        const netGiven = toNetwork(g, given.onehot, total, 'area');
        const netClaimed = toNetwork(g, given.claimed, 1, 'area');
        prob = imposeMasks(prob, channels, netGiven, total, given.channels, netClaimed);
        channels = total;
      });
    }
    const slot = this.memory.slotFor(this.frameIndex, given !== null);
    if (slot !== null) {
      await timed('encode_value', async () => {
        const masks = new Float32Array(model.maxObjects * netSize);
        masks.set(prob.subarray(netSize, channels * netSize));
        // The graph takes what its value encoder reads (the manifest's inputs): image and f16
        // for a value trunk, f4, f8 and f16 for the mask branch; run() picks them by name.
        const { values } = await model.run('encode_value', { image: netImage, ...query, masks });
        this.memory.write(slot, this.frameIndex, query.key, values);
      });
    }
    const labels = await timed('postprocess', () => {
      const ids = Uint8Array.from([0, ...this.ids]);
      if (given === null) return labelsAtInput(g, prob, channels, ids);
      const out = toInput(g, prob, channels);
      const imposed = imposeMasks(
        out, channels, given.onehot, channels, given.channels, given.claimed,
      );
      return argmaxLabels(imposed, channels, height * width, ids);
    });
    this.stageMs = stages;
    this.stageMs.onnxruntime = model.lastRunMs;
    return labels;
  }

  /** RGBA bytes -> the normalised (3, H', W') network input: RGB in [0, 1], resized and
   *  padded with zeros, then (x - mean) / std (the padding too, as in Python). */
  networkImage(rgba) {
    const g = this.geometry;
    const n = g.height * g.width;
    const planar = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) {
      planar[i] = rgba[4 * i] / 255;
      planar[n + i] = rgba[4 * i + 1] / 255;
      planar[2 * n + i] = rgba[4 * i + 2] / 255;
    }
    const image = toNetwork(g, planar, 3, 'bilinear');
    const size = g.paddedHeight * g.paddedWidth;
    const { mean, std } = this.model;
    for (let c = 0; c < 3; c++) {
      for (let i = c * size; i < (c + 1) * size; i++) image[i] = (image[i] - mean[c]) / std[c];
    }
    return image;
  }

  /** (K+1, H', W') probabilities of the tracked objects; all background when memory is empty. */
  async predict(query, netSize) {
    const k = this.ids.length;
    const prob = new Float32Array((k + 1) * netSize);
    if (this.memory.isEmpty || k === 0) {
      prob.fill(1, 0, netSize);
      return prob;
    }
    const model = this.model;
    const present = new Uint8Array(model.maxObjects);
    present.fill(1, 0, k);
    const { logits } = await model.run('segment', {
      key: query.key,
      value: query.value,
      f8: query.f8,
      f4: query.f4,
      memory_keys: this.memory.keys,
      memory_values: this.memory.values,
      valid: this.memory.valid,
      present,
    });
    // The engine keeps the first k+1 channels of the K+1 logits; softmax over those.
    for (let i = 0; i < netSize; i++) {
      let max = -Infinity;
      for (let c = 0; c <= k; c++) max = Math.max(max, logits[c * netSize + i]);
      let sum = 0;
      for (let c = 0; c <= k; c++) {
        const e = Math.exp(logits[c * netSize + i] - max);
        prob[c * netSize + i] = e;
        sum += e;
      }
      for (let c = 0; c <= k; c++) prob[c * netSize + i] /= sum;
    }
    return prob;
  }

  /** A user mask as the channels it sets, one-hot over every tracked object (after adding the
   *  new ids, ascending as torch.unique gives them) and the pixels it claims (not void). */
  prepareMask(mask, height, width) {
    if (mask.length !== height * width) {
      throw new InputError(`mask has ${mask.length} pixels but frames are ${height}x${width}`);
    }
    const seen = new Uint8Array(256);
    for (let i = 0; i < mask.length; i++) seen[mask[i]] = 1;
    const present = [];
    for (let id = 1; id < VOID_LABEL; id++) if (seen[id]) present.push(id);
    if (present.length === 0 && this.ids.length === 0) throw new InputError('no object in mask');
    const newIds = present.filter((id) => !this.ids.includes(id));
    const ids = [...this.ids, ...newIds];
    if (ids.length > this.model.maxObjects) {
      throw new InputError(
        `${ids.length} objects, but this model takes at most ${this.model.maxObjects}`,
      );
    }
    const channelOf = new Int32Array(256).fill(-1);
    const channels = present.map((id) => ids.indexOf(id) + 1);
    present.forEach((id, i) => {
      channelOf[id] = channels[i];
    });
    const n = height * width;
    const onehot = new Float32Array((ids.length + 1) * n);
    const claimed = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const c = channelOf[mask[i]];
      if (c > 0) onehot[c * n + i] = 1;
      claimed[i] = mask[i] === VOID_LABEL ? 0 : 1;
    }
    return { newIds, channels, onehot, claimed };
  }
}
