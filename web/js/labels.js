// Label maps in the page: the DAVIS palette, the overlay (mobilevos.io.blend_labels), palette
// PNGs as DAVIS writes them (one byte per pixel: the object id) and a store-only zip of them.
// PNG's zlib stream comes from the browser's CompressionStream('deflate'), so no library is
// needed; the zip stores the PNGs as they are (they are compressed already).

export const VOID_LABEL = 255;

/** The DAVIS / PASCAL VOC colour map: bits of the index spread over R, G and B
 *  (mobilevos.io.labels._davis_palette). (256 * 3) bytes; index 1 is (128, 0, 0). */
export function davisPalette() {
  const palette = new Uint8Array(256 * 3);
  for (let index = 0; index < 256; index++) {
    let value = index;
    let r = 0;
    let g = 0;
    let b = 0;
    for (let shift = 7; shift >= 0; shift--) {
      r |= (value & 1) << shift;
      g |= ((value >> 1) & 1) << shift;
      b |= ((value >> 2) & 1) << shift;
      value >>= 3;
    }
    palette.set([r, g, b], index * 3);
  }
  return palette;
}

export const PALETTE = davisPalette();

/**
 * Tint each object with its palette colour (alpha blend) and outline it at half brightness,
 * as mobilevos.io.blend_labels does (contour one pixel per 360 of the short side). Writes
 * into `out` (RGBA bytes); background and void pixels keep the frame.
 */
export function blendLabels(rgba, labels, width, height, out, alpha = 0.5) {
  out.set(rgba);
  const edge = edges(labels, width, height, Math.max(1, Math.floor(Math.min(width, height) / 360)));
  for (let i = 0; i < labels.length; i++) {
    const id = labels[i];
    if (id === 0 || id === VOID_LABEL) continue;
    for (let c = 0; c < 3; c++) {
      const colour = PALETTE[id * 3 + c];
      out[i * 4 + c] = edge[i]
        ? colour >> 1
        : Math.round((1 - alpha) * rgba[i * 4 + c] + alpha * colour);
    }
  }
  return out;
}

/** Pixels within `width` pixels (4-connected) of a change of label, on both sides. */
function edges(labels, width, height, thickness) {
  let mark = new Uint8Array(labels.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (x + 1 < width && labels[i] !== labels[i + 1]) mark[i] = mark[i + 1] = 1;
      if (y + 1 < height && labels[i] !== labels[i + width]) mark[i] = mark[i + width] = 1;
    }
  }
  for (let t = 1; t < thickness; t++) {
    const grown = mark.slice();
    for (let i = 0; i < labels.length; i++) {
      if (!mark[i]) continue;
      const x = i % width;
      if (x > 0) grown[i - 1] = 1;
      if (x + 1 < width) grown[i + 1] = 1;
      if (i >= width) grown[i - width] = 1;
      if (i + width < labels.length) grown[i + width] = 1;
    }
    mark = grown;
  }
  return mark;
}

// ------------------------------------------------------------------------------------ CRC-32

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes, crc = 0) {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

// ------------------------------------------------------------------------------- palette PNG

async function zlib(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** An 8-bit palette PNG of a label map (one byte per pixel, the DAVIS palette): what
 *  mobilevos.io.write_palette_png writes, and what DAVIS tools read back as ids. */
export async function palettePng(labels, width, height) {
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 3, 0, 0, 0], 8); // bit depth 8, colour type 3 (palette), no interlace
  const rows = new Uint8Array((width + 1) * height); // filter byte 0 before each row
  for (let y = 0; y < height; y++) {
    rows.set(labels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  }
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('PLTE', PALETTE),
    chunk('IDAT', await zlib(rows)),
    chunk('IEND', new Uint8Array(0)),
  ];
  return concat(parts);
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------- zip (store)

/** A zip archive of `files` ([{name, bytes}], ASCII names), stored without compression. */
export function zipStore(files) {
  const parts = [];
  const central = [];
  let offset = 0;
  const encoder = new TextEncoder();
  for (const { name, bytes } of files) {
    const nameBytes = encoder.encode(name);
    const crc = crc32(bytes);
    const local = new Uint8Array(30 + nameBytes.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true); // version needed: 2.0
    lv.setUint16(8, 0, true); // method: stored
    lv.setUint16(12, 0x21, true); // date: 1980-01-01
    lv.setUint32(14, crc, true);
    lv.setUint32(18, bytes.length, true);
    lv.setUint32(22, bytes.length, true);
    lv.setUint16(26, nameBytes.length, true);
    local.set(nameBytes, 30);
    const entry = new Uint8Array(46 + nameBytes.length);
    const cv = new DataView(entry.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(14, 0x21, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, bytes.length, true);
    cv.setUint32(24, bytes.length, true);
    cv.setUint16(28, nameBytes.length, true);
    cv.setUint32(42, offset, true);
    entry.set(nameBytes, 46);
    parts.push(local, bytes);
    central.push(entry);
    offset += local.length + bytes.length;
  }
  const size = central.reduce((n, e) => n + e.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, files.length, true);
  ev.setUint16(10, files.length, true);
  ev.setUint32(12, size, true);
  ev.setUint32(16, offset, true);
  return new Blob([...parts, ...central, end], { type: 'application/zip' });
}
