/**
 * The upload round trip of an evaluation: encode 8-bit frames as H.264 yuv420p (x264-420, crf 23
 * by default), decode them again, and measure the decoded frames against a lossless (ffv1)
 * reference with ffmpeg's `psnr` and `ssim` filters on luma.
 *
 * @module
 */

import { join } from "path";
import { VideoError } from "../video/_ffmpeg.ts";
import { FFMPEG_BASE, fileArg, runTool } from "../video/_ffmpeg.ts";
import { readVideo, readVideoChunks, writeVideo } from "../video/mod.ts";
import { slice } from "../nn/mod.ts";
import { noGrad, tensor, tidy } from "../tensor/tensor.ts";
import type { Victim, VictimStreamResult } from "../models/victims/victim.ts";
import { parseSsimStats } from "../data/proxy.ts";

/** The x264 rate factor of the round trip (a typical upload).
 *
 * @example
 * ```ts
 * import { ROUND_TRIP_CRF } from "./roundtrip.ts";
 * console.log(ROUND_TRIP_CRF); // 23
 * ```
 */
export const ROUND_TRIP_CRF = 23;

/**
 * Luma PSNR from the per-frame stats of ffmpeg's `psnr` filter (`n:1 mse_avg:.. mse_y:0.8 ..`):
 * `10 log10(255^2 / mean_t mse_y)` (8-bit); `Infinity` when every frame is identical. Throws
 * unless exactly `frames` frames are listed.
 *
 * @example
 * ```ts
 * import { parsePsnrStats } from "./roundtrip.ts";
 * parsePsnrStats("n:1 mse_avg:1 mse_y:1.5 psnr_y:46.4\nn:2 mse_avg:1 mse_y:0.5 psnr_y:51.1\n", 2);
 * // 10 * log10(255 ** 2 / 1) = 48.13
 * ```
 */
export function parsePsnrStats(text: string, frames: number, what = "psnr stats"): number {
  const mse: number[] = [];
  for (const line of text.split("\n")) {
    const m = /\bmse_y:(-?[0-9.]+(?:e-?\d+)?)/.exec(line);
    if (m) mse.push(Number(m[1]));
  }
  if (mse.length !== frames || mse.some((v) => !Number.isFinite(v))) {
    throw new VideoError(what, `the psnr filter compared ${mse.length} frames, expected ${frames}`);
  }
  const m = mse.reduce((a, b) => a + b, 0) / mse.length;
  return m === 0 ? Infinity : 10 * Math.log10((255 * 255) / m);
}

/**
 * Mean luma SSIM from the per-frame stats of ffmpeg's `ssim` filter: the proxy builder's parser,
 * re-exported under the name this module has always used.
 *
 * @example
 * ```ts
 * import { parseSsimYStats } from "./roundtrip.ts";
 * parseSsimYStats("n:1 Y:0.9 U:1 V:1 All:0.93 (11.6)\nn:2 Y:0.8 U:1 V:1 All:0.87 (8.8)\n", 2); // 0.85
 * ```
 */
export const parseSsimYStats: (text: string, frames: number, what?: string) => number =
  parseSsimStats;

async function compare(
  filter: "psnr" | "ssim",
  distorted: string,
  reference: string,
  w: number,
  h: number,
): Promise<string> {
  // The x264-420 file may be padded to even sizes: crop it back. Both sides go to yuv444p (the
  // luma plane is the same as in yuv420p); only luma is reported.
  const graph = `[0:v]crop=${w}:${h}:0:0,format=yuv444p[a];[1:v]format=yuv444p[b];` +
    `[a][b]${filter}=stats_file=-`;
  const r = await runTool("ffmpeg", [
    ...FFMPEG_BASE,
    "-i",
    fileArg(distorted),
    "-i",
    fileArg(reference),
    "-lavfi",
    graph,
    "-f",
    "null",
    "-",
  ]);
  if (r.code !== 0) {
    throw new VideoError(distorted, `ffmpeg ${filter} failed (exit ${r.code}): ${r.stderr}`);
  }
  return new TextDecoder().decode(r.stdout);
}

/** What {@link roundTrip} measures. */
export interface RoundTripResult {
  /** Luma PSNR (dB) of the decoded frames against the reference; Infinity when identical. */
  psnrY: number;
  /** Mean luma SSIM of the decoded frames against the reference. */
  ssimY: number;
  /** The decoded frames `[T,3,H,W]` (cropped to the input size), [0,1]. */
  decoded: Float32Array;
}

/**
 * Writes planar 8-bit frames `[T,3,H,W]` (values in [0,1]) losslessly (ffv1) as a round trip's
 * reference.
 *
 * @example
 * ```ts
 * import { writeReference } from "./roundtrip.ts";
 * // await writeReference("work/clean.mkv", cleanValues, [8, 3, 64, 64], 25);
 * ```
 */
export async function writeReference(
  file: string,
  frames: Float32Array,
  shape: readonly number[],
  fps = 25,
): Promise<void> {
  await writeVideo(file, tensor(frames, [...shape]), { codec: "ffv1", fps, disposeInput: true });
}

/**
 * Encodes frames `[T,3,H,W]` with x264-420 at `crf` into `<dir>/<name>.mkv`, measures the
 * decoded clip against `reference` (a lossless file of the clean frames) with ffmpeg's psnr and
 * ssim filters, and decodes it (cropped back to the input size when x264 padded an odd size).
 * The encoded file is removed afterwards.
 *
 * @example
 * ```ts
 * import { roundTrip } from "./roundtrip.ts";
 * // const rt = await roundTrip(advValues, [8, 3, 64, 64], { dir: "work", name: "fgsm",
 * //   reference: "work/clean.mkv" });
 * // console.log(rt.psnrY, rt.ssimY);
 * ```
 */
export async function roundTrip(
  frames: Float32Array,
  shape: readonly number[],
  options: { dir: string; name: string; reference: string; crf?: number; fps?: number },
): Promise<RoundTripResult> {
  const [t, c, h, w] = shape;
  const file = join(options.dir, `${options.name}.mkv`);
  await writeVideo(file, tensor(frames, [...shape]), {
    codec: "x264-420",
    crf: options.crf ?? ROUND_TRIP_CRF,
    fps: options.fps ?? 25,
    oddSize: "pad",
    disposeInput: true,
  });
  try {
    const psnrY = parsePsnrStats(
      await compare("psnr", file, options.reference, w, h),
      t,
      `${file} vs ${options.reference}`,
    );
    const ssimY = parseSsimYStats(
      await compare("ssim", file, options.reference, w, h),
      t,
      `${file} vs ${options.reference}`,
    );
    const x = await readVideo(file, { maxFrames: t });
    const [td, , hd, wd] = x.shape;
    const v = await x.read();
    x.dispose();
    if (td !== t || hd < h || wd < w) {
      throw new VideoError(file, `decoded [${x.shape}], expected [${shape}]`);
    }
    let decoded = v;
    if (hd !== h || wd !== w) {
      decoded = new Float32Array(t * c * h * w);
      for (let p = 0; p < t * c; p++) {
        for (let y = 0; y < h; y++) {
          const src = (p * hd + y) * wd;
          decoded.set(v.subarray(src, src + w), (p * h + y) * w);
        }
      }
    }
    return { psnrY, ssimY, decoded };
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

/**
 * Luma PSNR and mean SSIM of `distorted` (cropped to `width` x `height` when x264 padded it)
 * against `reference`, both `frames` frames long, with ffmpeg's psnr and ssim filters.
 *
 * @throws {VideoError} naming both files when ffmpeg fails or compares another number of frames.
 * @example
 * ```ts
 * import { compareLuma } from "./roundtrip.ts";
 * // const { psnrY, ssimY } = await compareLuma("w/fgsm.mkv", "w/clean.mkv", {
 * //   width: 64, height: 64, frames: 8 });
 * ```
 */
export async function compareLuma(
  distorted: string,
  reference: string,
  size: { width: number; height: number; frames: number },
): Promise<{ psnrY: number; ssimY: number }> {
  const { width: w, height: h, frames: t } = size;
  const what = `${distorted} vs ${reference}`;
  const psnrY = parsePsnrStats(await compare("psnr", distorted, reference, w, h), t, what);
  const ssimY = parseSsimYStats(await compare("ssim", distorted, reference, w, h), t, what);
  return { psnrY, ssimY };
}

/**
 * The victim's streamed score of a video file's first `frames` frames (decoded `window` frames
 * at a time, cropped to `width` x `height` when the file is larger, as an x264-420 file padded
 * to even sizes is): the round trip's score without holding the clip.
 *
 * @throws {VideoError} naming the file when it holds fewer frames or smaller ones.
 * @example
 * ```ts
 * import { scoreVideoFile } from "./roundtrip.ts";
 * // const { score } = await scoreVideoFile(victim, "w/fgsm.mkv", {
 * //   frames: 8, width: 64, height: 64, window: 4 });
 * ```
 */
export async function scoreVideoFile(
  victim: Victim,
  file: string,
  size: { frames: number; width: number; height: number; window: number },
): Promise<VictimStreamResult> {
  const { frames: t, width: w, height: h } = size;
  const stream = victim.stream({ frames: t });
  try {
    let got = 0;
    for await (
      const { frames } of readVideoChunks(file, { maxFrames: t, chunkFrames: size.window })
    ) {
      try {
        const [n, , hd, wd] = frames.shape;
        if (hd < h || wd < w) {
          throw new VideoError(file, `decoded ${wd}x${hd} frames, expected ${w}x${h}`);
        }
        if (hd === h && wd === w) stream.push(frames);
        else {
          const cropped = tidy(() =>
            noGrad(() => slice(frames, [{ axis: 2, end: h }, { axis: 3, end: w }]))
          );
          try {
            stream.push(cropped);
          } finally {
            cropped.dispose();
          }
        }
        got += n;
      } finally {
        frames.dispose();
      }
    }
    if (got !== t) throw new VideoError(file, `decoded ${got} frames, expected ${t}`);
    return await stream.finish();
  } finally {
    stream.dispose();
  }
}
