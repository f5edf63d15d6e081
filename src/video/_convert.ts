/**
 * Conversion between ffmpeg's rgb24 bytes (interleaved, 8-bit) and STQA frames ([T,3,H,W]
 * float32 in [0,1], planar RGB), on the GPU (video.wgsl) or on the CPU (a reference
 * and a fallback, selectable for measurement).
 *
 * Quantisation (float -> 8 bit) is round-half-to-even of the float32 product:
 * `q = roundHalfEven(fround(v * 255))`, clamped to [0, 255], NaN -> 0 (WGSL's `round`; chosen
 * over `floor(x + 0.5)` because that sum may be fused into an FMA on some GPUs). Unpacking gives exactly `fround(q / 255)`.
 *
 * @module
 */

import { getGpu } from "../gpu/device.ts";
import { acquireBuffer, releaseBuffer } from "../gpu/pool.ts";
import { dispatch, grid1d, readBuffer, writeBuffer } from "../gpu/queue.ts";
import { kernel } from "../gpu/program.ts";
import { empty, type Tensor, tensor } from "../tensor/tensor.ts";

/** Packing and unpacking of rgb24 frames (video.wgsl); each binding is seen as u32 or f32 words. */
const VIDEO = kernel(new URL("./video.wgsl", import.meta.url), {
  storage: [
    { name: "packed_in", type: "u32", views: { planar_in: "f32", planar_in4: "vec4<f32>" } },
    { name: "planar_out", views: { packed_out: "u32", planar_out4: "vec4<f32>" } },
    "lut",
  ],
});

/** Where frames are converted. */
export type ConvertOn = "gpu" | "cpu";

/** Bytes to allocate for `bytes` of packed rgb24, padded for the unpack kernel (12-byte groups). *
 * @example
 * ```ts
 * import { paddedBytes } from "./_convert.ts";
 * paddedBytes(15); // 24
 * ```
 */
export function paddedBytes(bytes: number): number {
  return Math.max(12, Math.ceil(bytes / 12) * 12);
}

const LUT = Float32Array.from({ length: 256 }, (_, i) => i / 255);
let lutBuffer: { device: GPUDevice; buffer: GPUBuffer } | null = null;

function lut(): GPUBuffer {
  const { device } = getGpu();
  if (!lutBuffer || lutBuffer.device !== device) {
    const buffer = device.createBuffer({
      size: LUT.byteLength,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(buffer, 0, LUT);
    lutBuffer = { device, buffer };
  }
  return lutBuffer.buffer;
}

/**
 * Uploads `frames` frames of packed rgb24 (`data`, whose length is at least
 * `paddedBytes(frames*h*w*3)`) and returns them as a [frames,3,h,w] tensor.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../gpu/device.ts";
 * import { paddedBytes, unpackFrames } from "./_convert.ts";
 * await initGpu();
 * const bytes = new Uint8Array(paddedBytes(2 * 4 * 4 * 3)).fill(255);
 * const frames = unpackFrames(bytes, 2, 4, 4); // [2,3,4,4]
 * assert.deepEqual(frames.shape, [2, 3, 4, 4]);
 * assert.ok((await frames.read()).every((v) => v === 1));
 * ```
 */
export function unpackFrames(
  data: Uint8Array,
  frames: number,
  h: number,
  w: number,
  on: ConvertOn = "gpu",
): Tensor {
  const npix = frames * h * w;
  if (on === "cpu") return tensor(rgb24ToPlanar(data, frames, h, w), [frames, 3, h, w]);
  const bytes = paddedBytes(npix * 3);
  if (data.byteLength < bytes) throw new RangeError(`unpackFrames: ${data.byteLength} < ${bytes}`);
  const out = empty([frames, 3, h, w]);
  const staging = acquireBuffer(bytes);
  try {
    const view = new Float32Array(data.buffer as ArrayBuffer, data.byteOffset, bytes / 4);
    // data.byteOffset is 0 for buffers allocated by the reader; copy when unaligned.
    const aligned = data.byteOffset % 4 === 0
      ? view
      : new Float32Array(data.slice(0, bytes).buffer);
    writeBuffer(staging, aligned, { fresh: true });
    const hw = h * w;
    const x4 = hw % 4 === 0;
    const [x, y] = grid1d(x4 ? hw / 4 : hw, 256);
    if (frames > getGpu().limits.maxComputeWorkgroupsPerDimension) {
      throw new RangeError(`unpackFrames: ${frames} frames in one chunk are too many`);
    }
    dispatch({
      op: "video.unpack_rgb24",
      kernel: VIDEO,
      entry: x4 ? "unpack_rgb24_x4" : "unpack_rgb24",
      ints: [0, hw, 0, 0, 0, 0, 0, 0],
      workgroups: [x, y, frames],
    }, [staging, out.buffer, lut()]);
  } finally {
    releaseBuffer(staging);
  }
  return out;
}

/** CPU reference: packed rgb24 -> planar float32 values `q / 255`. *
 * @example
 * ```ts
 * import { rgb24ToPlanar } from "./_convert.ts";
 * rgb24ToPlanar(new Uint8Array([255, 0, 51]), 1, 1, 1); // [1, 0, 0.2]
 * ```
 */
export function rgb24ToPlanar(
  data: Uint8Array,
  frames: number,
  h: number,
  w: number,
): Float32Array {
  const hw = h * w;
  const out = new Float32Array(frames * 3 * hw);
  for (let t = 0; t < frames; t++) {
    const src = t * hw * 3;
    const r = t * 3 * hw;
    const g = r + hw;
    const b = g + hw;
    for (let s = 0; s < hw; s++) {
      const i = src + 3 * s;
      out[r + s] = LUT[data[i]];
      out[g + s] = LUT[data[i + 1]];
      out[b + s] = LUT[data[i + 2]];
    }
  }
  return out;
}

function quantise(v: number): number {
  if (!(v >= 0)) return 0;
  const x = Math.fround(v * 255);
  let q = Math.floor(x);
  const frac = x - q;
  if (frac > 0.5 || (frac === 0.5 && q % 2 === 1)) q++;
  return Math.min(q, 255);
}

/**
 * CPU reference: planar float32 frames -> packed rgb24, padded to w2 x h2 by replication, into
 * `out` (at least `frames * h2 * w2 * 3` bytes; default a new array); returns `out`.
 * @example
 * ```ts
 * import { planarToRgb24 } from "./_convert.ts";
 * planarToRgb24(new Float32Array([1, 0, 0.2]), 1, 1, 1); // [255, 0, 51]
 * ```
 */
export function planarToRgb24(
  values: Float32Array,
  frames: number,
  h: number,
  w: number,
  h2 = h,
  w2 = w,
  out: Uint8Array = new Uint8Array(frames * h2 * w2 * 3),
): Uint8Array {
  const hw = h * w;
  let o = 0;
  for (let t = 0; t < frames; t++) {
    for (let y = 0; y < h2; y++) {
      const sy = Math.min(y, h - 1);
      for (let x = 0; x < w2; x++) {
        const s = sy * w + Math.min(x, w - 1);
        const base = t * 3 * hw + s;
        out[o++] = quantise(values[base]);
        out[o++] = quantise(values[base + hw]);
        out[o++] = quantise(values[base + 2 * hw]);
      }
    }
  }
  return out;
}

/**
 * Frames `t0 .. t0+count-1` of a [T,3,h,w] tensor as packed rgb24 bytes of size w2 x h2
 * (replicating the last column/row where larger), read back to the CPU.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../gpu/device.ts";
 * import { full } from "../tensor/tensor.ts";
 * import { packFrames } from "./_convert.ts";
 * await initGpu();
 * const frames = full([2, 3, 2, 2], 1); // two white 2x2 frames (values in [0, 1])
 * const bytes = await packFrames(frames, 0, frames.shape[0]);
 * assert.equal(bytes.length, 2 * 2 * 2 * 3);
 * assert.ok(bytes.every((b) => b === 255));
 * ```
 */
export async function packFrames(
  frames: Tensor,
  t0: number,
  count: number,
  opts: { h2?: number; w2?: number; on?: ConvertOn } = {},
): Promise<Uint8Array> {
  const [, , h, w] = frames.shape;
  const h2 = opts.h2 ?? h;
  const w2 = opts.w2 ?? w;
  if (opts.on === "cpu") {
    // Only this chunk's frames: reading the whole tensor per chunk would copy O(T^2) bytes.
    const hw3 = 3 * h * w;
    const chunk = await readBuffer(frames.buffer, count * hw3 * 4, t0 * hw3 * 4);
    return planarToRgb24(chunk, count, h, w, h2, w2);
  }
  const nbytes = count * h2 * w2 * 3;
  const nwords = Math.ceil(nbytes / 4);
  const out = acquireBuffer(nwords * 4);
  try {
    const hw = h * w;
    if (h2 === h && w2 === w && hw % 4 === 0) {
      // 4 pixels per invocation, frame = gid.z: no integer division per byte.
      const [x, y] = grid1d(hw / 4, 256);
      dispatch({
        op: "video.pack_rgb24",
        kernel: VIDEO,
        entry: "pack_rgb24_x4",
        ints: [0, hw, 0, 0, 0, 0, t0, 0],
        workgroups: [x, y, count],
      }, [frames.buffer, out]);
    } else {
      const [x, y] = grid1d(nwords, 256);
      dispatch({
        op: "video.pack_rgb24",
        kernel: VIDEO,
        entry: "pack_rgb24",
        ints: [nwords, hw, w, h, w2, h2, t0, nbytes],
        workgroups: [x, y],
      }, [frames.buffer, out]);
    }
    const words = await readBuffer(out, nwords * 4);
    return new Uint8Array(words.buffer, 0, nbytes);
  } finally {
    releaseBuffer(out);
  }
}
