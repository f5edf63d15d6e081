/**
 * Per-frame statistics of JND maps, and the frame size and batch at which a video's maps fit the
 * adapter (decided from the probe, before decoding).
 *
 * @module
 */

import { VideoError } from "../video/mod.ts";

/** Per-frame statistics of a JND map, in 8-bit levels. */
export interface JndFrameStats {
  /** Frame index in the decoded video. */
  frame: number;
  /** Mean. */
  mean: number;
  /** 5th percentile (linear interpolation between order statistics). */
  p5: number;
  /** 95th percentile. */
  p95: number;
}

/**
 * Mean, 5th and 95th percentile of one map (values in levels), percentiles by linear
 * interpolation between order statistics (numpy's default).
 *
 * @example
 * ```ts
 * import { mapStats } from "./stats.ts";
 * mapStats(new Float32Array([1, 2, 3, 4]), 0); // { frame: 0, mean: 2.5, p5: 1.15, p95: 3.85 }
 * ```
 */
export function mapStats(levels: Float32Array, frame: number): JndFrameStats {
  const sorted = levels.slice().sort();
  const q = (p: number) => {
    const pos = p * (sorted.length - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, sorted.length - 1);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
  };
  let sum = 0;
  for (const v of levels) sum += v;
  return { frame, mean: sum / levels.length, p5: q(0.05), p95: q(0.95) };
}

/** What {@link planJndFrames} decides: the frame size the maps are made at, and the batch. */
export interface JndFramePlan {
  /** Width of the decoded (and scaled) frames. */
  width: number;
  /** Height of the decoded (and scaled) frames. */
  height: number;
  /** Frames per GPU batch: the asked batch, fewer when a batch would not fit one binding. */
  batch: number;
  /** Read option for the decoder, when `--size` scales the frames. */
  scale?: { width: number } | { height: number };
}

/**
 * Plans the decoding of a video for `deno task jnd` from its probe, before anything is decoded:
 * the frame size (`size` scales the longer side to `size` pixels, the other rounded as the
 * decoder rounds it) and the batch (a batch of float frames [T,3,H,W] must fit one storage
 * binding of `limit` bytes, and so must one frame). A frame that does not fit is refused with a
 * message naming the video, its size and the `--size` that fits.
 *
 * @throws {VideoError} when one frame exceeds `limit`.
 * @example
 * ```ts
 * import { planJndFrames } from "./stats.ts";
 * const plan = planJndFrames("clip.mkv", { width: 1920, height: 1080 }, {
 *   batch: 8,
 *   size: 640,
 *   limit: 128 * 2 ** 20,
 * });
 * console.log(plan.width, plan.height, plan.batch); // 640 360 8
 * ```
 */
export function planJndFrames(
  input: string,
  video: { width: number; height: number },
  options: { batch: number; size?: number; limit: number },
): JndFramePlan {
  let width = video.width;
  let height = video.height;
  let scale: JndFramePlan["scale"];
  if (options.size !== undefined) {
    if (width >= height) {
      scale = { width: options.size };
      height = Math.max(1, Math.round(options.size * height / width));
      width = options.size;
    } else {
      scale = { height: options.size };
      width = Math.max(1, Math.round(options.size * width / height));
      height = options.size;
    }
  }
  const frameBytes = 3 * width * height * 4;
  const fit = Math.floor(options.limit / frameBytes);
  if (fit < 1) {
    const longer = Math.max(width, height);
    const fits = Math.floor(longer * Math.sqrt(options.limit / frameBytes));
    const mib = (b: number) => (b / 2 ** 20).toFixed(0);
    throw new VideoError(
      input,
      `one ${width}x${height} frame needs ${mib(frameBytes)} MiB on the GPU (float32 RGB), ` +
        `more than this adapter's ${mib(options.limit)} MiB storage-binding limit; ` +
        `pass --size ${Math.max(2, fits)} or less to scale the frames down`,
    );
  }
  return { width, height, batch: Math.min(options.batch, fit), ...(scale ? { scale } : {}) };
}
