/**
 * A small PNG encoder (8-bit RGB, no interlace, zlib through `node:zlib`), for images inlined
 * into the HTML reports as `data:` URIs without spawning ffmpeg, and the conversions from the
 * project's planar float frames to the interleaved bytes it takes.
 *
 * @module
 */

import { deflateSync } from "zlib";

/** An 8-bit RGB image, interleaved (`data[3 * (y * width + x) + c]`). */
export interface RgbImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `3 * width * height` bytes, RGB interleaved, rows top to bottom. */
  data: Uint8Array;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * CRC-32 (ISO-HDLC, as PNG chunks use it) of `bytes`.
 *
 * @example
 * ```ts
 * import { crc32 } from "./png.ts";
 * crc32(new TextEncoder().encode("123456789")).toString(16); // "cbf43926"
 * ```
 */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  const body = out.subarray(4, 8 + data.length);
  body.set(new TextEncoder().encode(type), 0);
  body.set(data, 4);
  view.setUint32(8 + data.length, crc32(body));
  return out;
}

function checkImage(image: RgbImage): void {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`PNG: width and height must be positive integers, got ${width}x${height}`);
  }
  if (data.length !== 3 * width * height) {
    throw new RangeError(
      `PNG: ${width}x${height} RGB needs ${3 * width * height} bytes, got ${data.length}`,
    );
  }
}

/**
 * Encodes an RGB image as a PNG file's bytes (colour type 2, 8 bits, filter 0 on every row).
 *
 * @throws {RangeError} when the size and the data's length disagree.
 * @example
 * ```ts
 * import { encodePng } from "./png.ts";
 * const png = encodePng({ width: 2, height: 1, data: new Uint8Array([255, 0, 0, 0, 0, 255]) });
 * await Deno.writeFile("red_blue.png", png);
 * ```
 */
export function encodePng(image: RgbImage): Uint8Array {
  checkImage(image);
  const { width, height, data } = image;
  const stride = 3 * width;
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0; // filter: none
    raw.set(data.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8); // depth 8, RGB, deflate, filter method 0, no interlace
  const idat = new Uint8Array(deflateSync(raw, { level: 9 }));
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", idat),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  parts.reduce((off, p) => (out.set(p, off), off + p.length), 0);
  return out;
}

/**
 * The image as a `data:image/png;base64,...` URI, for an `<img src>` that needs no file.
 *
 * @example
 * ```ts
 * import { pngDataUri } from "./png.ts";
 * const src = pngDataUri({ width: 1, height: 1, data: new Uint8Array([0, 128, 255]) });
 * ```
 */
export function pngDataUri(image: RgbImage): string {
  const png = encodePng(image);
  let s = "";
  for (let i = 0; i < png.length; i += 0x8000) {
    s += String.fromCharCode(...png.subarray(i, i + 0x8000));
  }
  return `data:image/png;base64,${btoa(s)}`;
}

/**
 * Frame `frame` of planar frames `[T,3,H,W]` (values in [0,1], as the tensors hold them) as an
 * interleaved 8-bit image, each value `round(255 * v)` clipped to 0..255.
 *
 * @example
 * ```ts
 * import { planarFrame } from "./png.ts";
 * const img = planarFrame(new Float32Array(2 * 3 * 4 * 4).fill(0.5), [2, 3, 4, 4], 1);
 * img.data[0]; // 128
 * ```
 */
export function planarFrame(
  values: Float32Array | Uint8Array,
  shape: readonly number[],
  frame: number,
): RgbImage {
  const [t, c, height, width] = shape;
  if (shape.length !== 4 || c !== 3) {
    throw new RangeError(`planarFrame: expected [T,3,H,W], got [${shape.join(", ")}]`);
  }
  if (!(frame >= 0 && frame < t)) throw new RangeError(`planarFrame: no frame ${frame} of ${t}`);
  const plane = width * height;
  const base = frame * 3 * plane;
  const scale = values instanceof Uint8Array ? 1 : 255;
  const data = new Uint8Array(3 * plane);
  for (let ch = 0; ch < 3; ch++) {
    for (let i = 0; i < plane; i++) {
      const v = Math.round(values[base + ch * plane + i] * scale);
      data[3 * i + ch] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width, height, data };
}

/**
 * The perturbation `adv - clean` of one frame (planar `[T,3,H,W]`, both in the same units) made
 * visible: mid-grey for zero, `128 + amplify * 255 * d`, clipped.
 *
 * @example
 * ```ts
 * import { amplifiedPerturbation } from "./png.ts";
 * const clean = new Float32Array(3).fill(0.5), adv = new Float32Array(3).fill(0.5 + 2 / 255);
 * amplifiedPerturbation(clean, adv, [1, 3, 1, 1], 0, 10).data[0]; // 148
 * ```
 */
export function amplifiedPerturbation(
  clean: Float32Array | Uint8Array,
  adv: Float32Array | Uint8Array,
  shape: readonly number[],
  frame: number,
  amplify: number,
): RgbImage {
  if (clean.length !== adv.length) {
    throw new RangeError(`amplifiedPerturbation: ${clean.length} clean vs ${adv.length} values`);
  }
  const [, , height, width] = shape;
  const plane = width * height;
  const base = frame * 3 * plane;
  const scale = clean instanceof Uint8Array ? 1 : 255;
  const data = new Uint8Array(3 * plane);
  for (let ch = 0; ch < 3; ch++) {
    for (let i = 0; i < plane; i++) {
      const k = base + ch * plane + i;
      const v = Math.round(128 + amplify * (adv[k] - clean[k]) * scale);
      data[3 * i + ch] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width, height, data };
}

/**
 * The `width` x `height` region of `image` at (`x`, `y`), clipped to the image.
 *
 * @example
 * ```ts
 * import { cropImage } from "./png.ts";
 * const img = { width: 4, height: 4, data: new Uint8Array(48) };
 * cropImage(img, { x: 1, y: 1, width: 2, height: 2 }).data.length; // 12
 * ```
 */
export function cropImage(
  image: RgbImage,
  region: { x: number; y: number; width: number; height: number },
): RgbImage {
  const x0 = Math.max(0, Math.min(image.width - 1, Math.floor(region.x)));
  const y0 = Math.max(0, Math.min(image.height - 1, Math.floor(region.y)));
  const width = Math.max(1, Math.min(image.width - x0, Math.floor(region.width)));
  const height = Math.max(1, Math.min(image.height - y0, Math.floor(region.height)));
  const data = new Uint8Array(3 * width * height);
  for (let y = 0; y < height; y++) {
    const from = 3 * ((y0 + y) * image.width + x0);
    data.set(image.data.subarray(from, from + 3 * width), 3 * y * width);
  }
  return { width, height, data };
}
