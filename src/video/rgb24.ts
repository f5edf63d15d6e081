/**
 * Frames already quantised to 8 bits, kept as ffmpeg's packed rgb24 bytes on the CPU: what the
 * attack makes once per chunk and hands both to the encoder ({@link writeVideo} sends the bytes
 * unchanged: no GPU pack, no read-back) and, unpacked on the GPU from one byte per value, to the
 * victim. `rgb24Frames` quantises planar float frames (values `q / 255`) to such bytes with the
 * encoder's rounding (round half to even of `v * 255`, clamped to [0, 255], NaN -> 0), so a chunk
 * written as bytes gives the same file as the same frames written as a tensor.
 *
 * @module
 */

import type { Tensor } from "../tensor/tensor.ts";
import { paddedBytes, planarToRgb24, unpackFrames } from "./_convert.ts";

/**
 * `frames` frames of `width` x `height` as packed rgb24 (R, G, B per pixel, row by row, frame by
 * frame). `rgb24` holds exactly `frames * height * width * 3` bytes; its backing buffer may be
 * longer (padded for the GPU's unpack kernel).
 */
export interface Rgb24Frames {
  /** The packed bytes. */
  rgb24: Uint8Array;
  /** Frames in the chunk. */
  frames: number;
  /** Frame height. */
  height: number;
  /** Frame width. */
  width: number;
}

/**
 * Quantises planar float frames `[frames,3,height,width]` (values in [0,1]) to packed rgb24
 * bytes, as the encoder would (round half to even of `v * 255`, clamped; NaN -> 0).
 *
 * @throws {RangeError} when `values` is shorter than the frames need.
 * @example
 * ```ts
 * import assert from "assert";
 * import { rgb24Frames } from "./rgb24.ts";
 * const f = rgb24Frames(new Float32Array([1, 0, 0.2]), 1, 1, 1);
 * assert.deepEqual([...f.rgb24], [255, 0, 51]);
 * ```
 */
export function rgb24Frames(
  values: Float32Array,
  frames: number,
  height: number,
  width: number,
): Rgb24Frames {
  const n = frames * 3 * height * width;
  if (values.length < n) {
    throw new RangeError(
      `rgb24Frames: ${values.length} values, [${frames},3,${height},${width}] needs ${n}`,
    );
  }
  // Packed straight into a buffer padded for the GPU's unpack kernel (no second copy).
  const backing = new Uint8Array(paddedBytes(n));
  planarToRgb24(values, frames, height, width, height, width, backing);
  return { rgb24: backing.subarray(0, n), frames, height, width };
}

/**
 * Uploads packed rgb24 frames (one byte per value) and unpacks them on the GPU to a float tensor
 * `[frames,3,height,width]` of values `q / 255`, equal to what `readVideo` gives for the same
 * bytes. The caller owns the tensor.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../gpu/device.ts";
 * import { rgb24Frames, rgb24Tensor } from "./rgb24.ts";
 * await initGpu();
 * const x = rgb24Tensor(rgb24Frames(new Float32Array(12).fill(0.5), 1, 2, 2));
 * assert.deepEqual(x.shape, [1, 3, 2, 2]);
 * assert.ok((await x.read()).every((v) => v === 128 / 255));
 * x.dispose();
 * ```
 */
export function rgb24Tensor(chunk: Rgb24Frames): Tensor {
  const { rgb24, frames, height, width } = chunk;
  const need = paddedBytes(frames * height * width * 3);
  const data = rgb24.byteOffset === 0 && rgb24.buffer.byteLength >= need
    ? new Uint8Array(rgb24.buffer as ArrayBuffer, 0, need)
    : (() => {
      const copy = new Uint8Array(need);
      copy.set(rgb24);
      return copy;
    })();
  return unpackFrames(data, frames, height, width, "gpu");
}
