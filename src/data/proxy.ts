/**
 * The proxy dataset: short clips synthesised with ffmpeg from still images, distorted, and
 * labelled by a full-reference measurement (ffmpeg's `ssim` filter against the pristine clip).
 * It stands in for real VQA datasets, whose videos and models cannot be downloaded here; it is a
 * proxy, not a subjective study.
 *
 * For each source image (sorted by name within its folder, the folders in the order given),
 * `motionsPerImage` camera motions (pan, zoom, rotation in turn, parameters drawn from a seeded
 * generator) make pristine clips (lossless ffv1, yuv420p). Each pristine clip gets every
 * distortion at every level; each distorted clip is written as ffv1 and labelled with
 * `ssimToLabel(mean luma SSIM)` (or, with the opt-in `yuv` label, the mean of ffmpeg's Y/U/V
 * "All" SSIM value). Source images are assigned to train / val / test by a seeded shuffle, so no
 * image is in two splits.
 *
 * @module
 */

import * as path from "path";
import { z } from "zod";
import {
  checkRegularFile,
  exists,
  fileSha256,
  isFile,
  PathError,
  writeFileAtomic,
} from "../_fs.ts";
import {
  commitWorkDir,
  discardWorkDir,
  insideOutput,
  makeWorkDir,
  prepareOutputDir,
  removeStaleWorkDirs,
  uniqueNames,
} from "../_output.ts";
import { formatZodError } from "../_zod.ts";
import { fileArg, inputArgs, runTool, VideoError } from "../video/_ffmpeg.ts";
import {
  type ClipRecord,
  type Distortion,
  DISTORTION_KINDS,
  DISTORTIONS,
  LABEL_FORMULA,
  LABEL_FORMULA_YUV,
  LABEL_SSIM_FLOOR,
  MANIFEST_VERSION,
  type MotionRecord,
  MOTIONS,
  type MotionType,
  type ProxyManifest,
  ProxyManifestSchema,
  type ProxyOptionsRecord,
  type Split,
  ssimToLabel,
} from "./manifest.ts";
import { DatasetError } from "./types.ts";

/**
 * The version of the clip synthesis: raised whenever a change to the motions, distortions or
 * measurement changes the clips, so that an existing build is not taken as up to date.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { buildProxyDataset, type BuildProxyOptions, PROXY_GENERATOR } from "./proxy.ts";
 * // A tiny build (2 source images, 1 motion, 1 blur level, 2 frames of 16x16) in a temp folder:
 * const out = await Deno.makeTempDir();
 * const tiny: BuildProxyOptions = { out, maxSources: 2, testSources: 1, valSources: 0,
 *   motionsPerImage: 1, levels: 1, distortions: ["blur"], frames: 2, size: 16 };
 * const { manifest } = await buildProxyDataset(tiny);
 * assert.equal(manifest.generator, PROXY_GENERATOR); // an older manifest: run `deno task data`
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export const PROXY_GENERATOR = 4;

/**
 * The default output folder (ignored by git).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { DEFAULT_PROXY_DIR } from "./proxy.ts";
 * const manifestPath = `${DEFAULT_PROXY_DIR}/manifest.json`;
 * assert.equal(manifestPath, "cache/proxy/manifest.json");
 * ```
 */
export const DEFAULT_PROXY_DIR = "cache/proxy";

/**
 * The default source image folder.
 *
 * @example
 * ```ts
 * import { DEFAULT_SOURCES_DIR } from "./proxy.ts";
 * console.log(DEFAULT_SOURCES_DIR); // "data/sources"
 * ```
 */
export const DEFAULT_SOURCES_DIR = "data/sources";

/** Image file extensions taken from a source folder. */
const IMAGE_EXT = new Set([".png", ".jpg", ".jpeg"]);

/**
 * The smallest and largest source image side, and the most pixels, a build accepts: a camera
 * motion needs a window of at least 8 pixels inside the image, and ffmpeg holds several RGB
 * copies of an image in memory while it makes a clip.
 *
 * @example
 * ```ts
 * import { SOURCE_IMAGE_LIMITS } from "./proxy.ts";
 * SOURCE_IMAGE_LIMITS.maxPixels; // 67108864 (8192 x 8192)
 * ```
 */
export const SOURCE_IMAGE_LIMITS = { minSide: 16, maxSide: 16384, maxPixels: 2 ** 26 } as const;

/**
 * The distortion levels, mild to strong, as ffmpeg parameters: H.264 CRF, Gaussian blur sigma,
 * temporal noise strength (`noise=alls`), down-scaling factor (down and back up, bilinear), and
 * freeze (the fraction of the clip's frames replaced by the frame before them: a stall, after
 * which the clip goes on where it would have been). `levels` picks that many, evenly spaced.
 *
 * The opt-in kinds (`EXTRA_DISTORTIONS`): x265 CRF (libx265), VP9 CRF (libvpx-vp9,
 * `-b:v 0`), AV1 CRF (libaom-av1, `-b:v 0`), drop (the fraction of the frames dropped, a seeded
 * subset, each shown as the frame before it), banding (the quantisation step of every plane in
 * 8-bit code values: 256 / step levels), and chroma (the factor by which the 4:2:0 chroma planes
 * are scaled down and back up, bilinear; luma untouched).
 *
 * @example
 * ```ts
 * import { DISTORTION_LEVELS } from "./proxy.ts";
 * DISTORTION_LEVELS.h264; // CRF values, mild to strong
 * ```
 */
export const DISTORTION_LEVELS: Readonly<Record<Distortion, readonly number[]>> = {
  h264: [24, 30, 36, 42, 48, 51],
  blur: [0.5, 1, 1.5, 2, 2.5, 3],
  noise: [5, 10, 20, 30, 40, 50],
  scale: [1.5, 2, 3, 4, 5, 6],
  freeze: [0.125, 0.25, 0.375, 0.5, 0.625, 0.75],
  x265: [24, 30, 36, 42, 48, 51],
  vp9: [20, 30, 40, 50, 58, 63],
  av1: [20, 30, 40, 50, 58, 63],
  drop: [0.125, 0.25, 0.375, 0.5, 0.625, 0.75],
  banding: [4, 8, 16, 24, 40, 48],
  chroma: [2, 3, 4, 5, 6, 8],
};

/**
 * The most levels a distortion has.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { DISTORTION_LEVELS, levelStrengths, MAX_LEVELS } from "./proxy.ts";
 * // `buildProxyDataset({ levels: MAX_LEVELS })` uses every entry of the tables:
 * assert.deepEqual(levelStrengths("noise", MAX_LEVELS), DISTORTION_LEVELS.noise);
 * ```
 */
export const MAX_LEVELS = 6;

/**
 * The parameters for `levels` levels: `levels` entries of the table, evenly spaced, always
 * including the mildest and the strongest.
 *
 * @example
 * ```ts
 * import { levelStrengths } from "./proxy.ts";
 * levelStrengths("h264", 4); // [24, 36, 42, 51]
 * ```
 */
export function levelStrengths(distortion: Distortion, levels: number): number[] {
  const table = DISTORTION_LEVELS[distortion];
  if (!Number.isInteger(levels) || levels < 1 || levels > table.length) {
    throw new RangeError(`levels must be an integer from 1 to ${table.length}, got ${levels}`);
  }
  if (levels === 1) return [table[Math.floor((table.length - 1) / 2)]];
  return Array.from(
    { length: levels },
    (_, i) => table[Math.round(i * (table.length - 1) / (levels - 1))],
  );
}

/**
 * Options of {@link buildProxyDataset}. Every field has a default suited to a 2-core CPU.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { buildProxyDataset, type BuildProxyOptions } from "./proxy.ts";
 * const out = await Deno.makeTempDir();
 * const options: BuildProxyOptions = { frames: 2, size: 16, seed: 2, out, maxSources: 2,
 *   testSources: 1, valSources: 0, motionsPerImage: 1, levels: 1, distortions: ["noise"] };
 * const { manifest } = await buildProxyDataset(options);
 * assert.equal(manifest.options.seed, 2);
 * assert.equal(manifest.clips.length, 2 * (1 + 1)); // per source: the pristine clip and 1 level
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export interface BuildProxyOptions {
  /**
   * Folder of source images (`*.png`, `*.jpg`), or several folders whose images make one
   * dataset (each folder's sorted by name, the folders in this order; the same dataset name
   * from two folders is refused); default `data/sources`.
   */
  sources?: string | string[];
  /** Output folder: `<out>/manifest.json` and `<out>/clips/` (default `cache/proxy`). */
  out?: string;
  /** Seed of motions, noise and the split (default 1). */
  seed?: number;
  /** Frames per clip (default 8). */
  frames?: number;
  /** Width and height of the square clips, even (default 64). */
  size?: number;
  /** Frames per second written in the clips (default 25). */
  fps?: number;
  /** Camera motions per image, cycling pan, zoom, rotate (default 9). */
  motionsPerImage?: number;
  /** Levels per distortion, 1 to 6 (default 4). */
  levels?: number;
  /**
   * Distortion types (default the five of `DISTORTIONS`; the opt-in kinds of
   * `EXTRA_DISTORTIONS` only when listed).
   */
  distortions?: Distortion[];
  /** Use only the first n source images by name, of all the folders together (default all). */
  maxSources?: number | null;
  /** Source images in the test split (default 3). */
  testSources?: number;
  /** Source images in the validation split (default 1). */
  valSources?: number;
  /** ffmpeg processes at a time (default 2). */
  concurrency?: number;
  /**
   * The SSIM the label is made from: `luma` (the default), ffmpeg's luma (Y) value, or `yuv`,
   * its "All" value (Y, U and V weighted by pixel count), which chroma distortions lower too.
   */
  label?: "luma" | "yuv";
  /** Rebuild even when up to date, and replace a `clips` folder that no manifest of ours owns. */
  force?: boolean;
  /** Called after every clip. */
  onProgress?: (progress: ProxyProgress) => void;
  /**
   * Called with a line for the user before the build starts: a source image whose name in the
   * dataset differs from its file name, a source entry skipped (a FIFO, a dangling link), stale
   * temporary folders of an interrupted build removed.
   */
  onNote?: (message: string) => void;
}

/**
 * Progress of a build.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { buildProxyDataset, type BuildProxyOptions, type ProxyProgress } from "./proxy.ts";
 * // A tiny build (2 source images, 1 motion, 1 blur level, 2 frames of 16x16) in a temp folder:
 * const out = await Deno.makeTempDir();
 * const tiny: BuildProxyOptions = { out, maxSources: 2, testSources: 1, valSources: 0,
 *   motionsPerImage: 1, levels: 1, distortions: ["blur"], frames: 2, size: 16 };
 * const seen: ProxyProgress[] = [];
 * await buildProxyDataset({ ...tiny, onProgress: (p) => seen.push(p) });
 * const last = seen[seen.length - 1];
 * assert.equal(last.done, last.total);
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export interface ProxyProgress {
  /** Clips written so far. */
  done: number;
  /** Clips in all. */
  total: number;
  /** The clip just written, relative to the output folder. */
  clip: string;
}

/**
 * What {@link buildProxyDataset} returns.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { buildProxyDataset, type BuildProxyOptions, type BuildProxyResult } from "./proxy.ts";
 * // A tiny build (2 source images, 1 motion, 1 blur level, 2 frames of 16x16) in a temp folder:
 * const out = await Deno.makeTempDir();
 * const tiny: BuildProxyOptions = { out, maxSources: 2, testSources: 1, valSources: 0,
 *   motionsPerImage: 1, levels: 1, distortions: ["blur"], frames: 2, size: 16 };
 * const first: BuildProxyResult = await buildProxyDataset(tiny);
 * const again: BuildProxyResult = await buildProxyDataset(tiny);
 * assert.deepEqual([first.built, again.built], [true, false]); // the second found it up to date
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export interface BuildProxyResult {
  /** Path of the manifest. */
  manifestPath: string;
  /** The manifest. */
  manifest: ProxyManifest;
  /** False when an up-to-date manifest was found and nothing was built. */
  built: boolean;
  /** Seconds the build took. */
  seconds: number;
  /** Source images whose name in the dataset is not their file's stem (made safe or distinct). */
  renamed: { file: string; name: string }[];
}

const OptionsSchema = z.object({
  sources: z.union([z.string().min(1).transform((s) => [s]), z.array(z.string().min(1)).min(1)])
    .refine((d) => new Set(d.map((f) => path.resolve(f))).size === d.length, {
      message: "must not repeat a folder",
    }).default([DEFAULT_SOURCES_DIR]),
  out: z.string().min(1).default(DEFAULT_PROXY_DIR),
  seed: z.number().int().nonnegative().max(2 ** 32 - 1).default(1),
  frames: z.number().int().min(2).max(1024).default(8),
  size: z.number().int().min(16).max(2048).refine((v) => v % 2 === 0, {
    message: "must be even (clips are yuv420p)",
  }).default(64),
  fps: z.number().int().min(1).max(240).default(25),
  motionsPerImage: z.number().int().min(1).max(64).default(9),
  levels: z.number().int().min(1).max(MAX_LEVELS).default(4),
  distortions: z.array(z.enum(DISTORTION_KINDS)).min(1).refine(
    (d) => new Set(d).size === d.length,
    {
      message: "must not repeat a distortion",
    },
  ).default([...DISTORTIONS]),
  maxSources: z.number().int().min(2).nullable().default(null),
  testSources: z.number().int().min(1).default(3),
  valSources: z.number().int().min(0).default(1),
  concurrency: z.number().int().min(1).max(64).default(2),
  force: z.boolean().default(false),
  label: z.enum(["luma", "yuv"]).default("luma"),
});

/**
 * Build options after validation, every default filled in ({@link resolveProxyOptions}); the
 * source folders always as a list.
 */
export type ResolvedProxyOptions =
  & Required<Omit<BuildProxyOptions, "onProgress" | "onNote" | "sources">>
  & { sources: string[] };
type Resolved = ResolvedProxyOptions;

/**
 * Validates build options and fills in the defaults; throws a `RangeError` naming every bad
 * option.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { resolveProxyOptions } from "./proxy.ts";
 * resolveProxyOptions({ frames: 4 }).size; // 64
 * assert.deepEqual(resolveProxyOptions({}).sources, ["data/sources"]);
 * ```
 */
export function resolveProxyOptions(options: BuildProxyOptions = {}): ResolvedProxyOptions {
  const { onProgress: _, onNote: _note, ...rest } = options;
  const parsed = OptionsSchema.safeParse(rest);
  if (!parsed.success) {
    throw new RangeError(
      `proxy dataset options: ${formatZodError(parsed.error, { root: "options" })}`,
    );
  }
  return parsed.data;
}

// ---------------------------------------------------------------------------------------------
// Seeded randomness

/** 32-bit FNV-1a hash of a string. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** mulberry32: a small seeded generator of floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A generator for one purpose, independent of every other (seed and key hashed together). */
function rngFor(seed: number, key: string): () => number {
  return mulberry32(fnv1a(`${seed}:${key}`));
}

/** Rounds to `d` decimals (parameters are rounded before use, so the manifest reproduces them). */
function round(v: number, d = 4): number {
  const f = 10 ** d;
  return Math.round(v * f) / f;
}

/**
 * The seeded split of source names: a Fisher-Yates shuffle of the sorted names; the first
 * `test` go to test, the next `val` to val, the rest to train.
 *
 * @example
 * ```ts
 * import { splitSources } from "./proxy.ts";
 * splitSources(["a", "b", "c", "d"], { seed: 1, test: 1, val: 1 });
 * ```
 */
export function splitSources(
  names: string[],
  opts: { seed: number; test: number; val: number },
): Record<Split, string[]> {
  const sorted = [...names].sort();
  if (opts.test + opts.val >= sorted.length) {
    throw new RangeError(
      `${sorted.length} source images cannot make ${opts.test} test + ${opts.val} val images ` +
        "and at least one train image",
    );
  }
  const rand = rngFor(opts.seed, "split");
  for (let i = sorted.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [sorted[i], sorted[j]] = [sorted[j], sorted[i]];
  }
  const test = sorted.slice(0, opts.test).sort();
  const val = sorted.slice(opts.test, opts.test + opts.val).sort();
  const train = sorted.slice(opts.test + opts.val).sort();
  return { train, val, test };
}

// ---------------------------------------------------------------------------------------------
// ffmpeg

/** Output flags that keep a file reproducible: no metadata, timestamps or version strings. */
const BITEXACT_OUT = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact"];

/** Lossless, bit-exact ffv1 output (one thread, no timestamps or version strings written). */
const FFV1_OUT = [
  "-an",
  "-c:v",
  "ffv1",
  "-level",
  "3",
  "-threads",
  "1",
  "-pix_fmt",
  "yuv420p",
  ...BITEXACT_OUT,
];

/** Scaling flags of the explicit scale filters: exact C rounding, the same on every CPU. */
const AREA = "area+accurate_rnd+bitexact";
const BILINEAR = "bilinear+accurate_rnd+bitexact";

const BASE = [
  "-nostdin",
  "-hide_banner",
  "-loglevel",
  "error",
  "-y",
  "-threads",
  "1",
  "-filter_complex_threads",
  "1",
  // Scalers that ffmpeg inserts for format conversions: C-exact rounding, not CPU-specific SIMD.
  "-sws_flags",
  "bicubic+accurate_rnd+bitexact",
];

/**
 * Runs ffmpeg (the `FFMPEG` variable, else PATH) with an argument array in `cwd`; returns its
 * stdout, or throws a VideoError about `what` with the tail of stderr.
 */
async function ffmpeg(args: string[], what: string, cwd?: string): Promise<Uint8Array> {
  const r = await runTool("ffmpeg", [...BASE, ...args], { cwd });
  if (r.code !== 0) {
    throw new VideoError(what, `ffmpeg exited with code ${r.code}`, { stderr: r.stderr });
  }
  return r.stdout;
}

/** ffmpeg's version line. */
async function ffmpegVersion(): Promise<string> {
  const r = await runTool("ffmpeg", ["-hide_banner", "-version"]);
  return new TextDecoder().decode(r.stdout).split("\n")[0].trim();
}

/**
 * Width and height of an image, from ffprobe.
 *
 * @example
 * ```ts
 * import { imageSize } from "./proxy.ts";
 * const { width, height } = await imageSize("data/sources/coins.png");
 * ```
 */
export async function imageSize(file: string): Promise<{ width: number; height: number }> {
  const r = await runTool("ffprobe", [
    "-v",
    "error",
    "-select_streams",
    "v:0",
    "-show_entries",
    "stream=width,height",
    "-of",
    "csv=p=0",
    ...inputArgs(file, false),
  ]);
  const m = /^(\d+),(\d+)/.exec(new TextDecoder().decode(r.stdout).trim());
  if (r.code !== 0 || !m) {
    throw new VideoError(file, "ffprobe could not read the image size", { stderr: r.stderr });
  }
  return { width: Number(m[1]), height: Number(m[2]) };
}

/**
 * Mean luma SSIM of `distorted` against `reference` over all frames, from ffmpeg's `ssim`
 * filter (per-frame stats on stdout); with `value` `"All"`, the mean of its Y/U/V "All" value
 * instead. Throws unless exactly `frames` frames were compared.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { measureSsim } from "./proxy.ts";
 * const clip = "data/samples/gravel_zoom.mkv"; // 16 frames
 * assert.equal(await measureSsim(clip, clip, 16), 1);
 * await assert.rejects(measureSsim(clip, clip, 8)); // not the number of frames compared
 * ```
 */
export async function measureSsim(
  distorted: string,
  reference: string,
  frames: number,
  value: "Y" | "All" = "Y",
): Promise<number> {
  const out = await ffmpeg([
    "-i",
    fileArg(distorted),
    "-i",
    fileArg(reference),
    "-lavfi",
    "[0:v][1:v]ssim=stats_file=-",
    "-f",
    "null",
    "-",
  ], distorted);
  return parseSsimStats(
    new TextDecoder().decode(out),
    frames,
    `${distorted} vs ${reference}`,
    value,
  );
}

/**
 * Mean luma SSIM from the per-frame stats that ffmpeg's `ssim` filter writes (`n:1 Y:0.98 ...`),
 * or with `value` `"All"` the mean of the lines' `All:` value (Y, U and V weighted by their
 * pixel counts); throws unless exactly `frames` frames are listed.
 *
 * @example
 * ```ts
 * import { parseSsimStats } from "./proxy.ts";
 * const stats = "n:1 Y:0.9 U:1 V:1 All:0.93 (11.6)\nn:2 Y:0.8 U:1 V:1 All:0.87 (8.8)\n";
 * parseSsimStats(stats, 2); // 0.85
 * parseSsimStats(stats, 2, "stats", "All"); // 0.9
 * ```
 */
export function parseSsimStats(
  text: string,
  frames: number,
  what = "ssim stats",
  value: "Y" | "All" = "Y",
): number {
  const pattern = value === "All" ? /\bAll:(-?[0-9.]+(?:e-?\d+)?)/ : /\bY:(-?[0-9.]+(?:e-?\d+)?)/;
  const ys: number[] = [];
  for (const line of text.split("\n")) {
    const m = pattern.exec(line);
    if (m) ys.push(Number(m[1]));
  }
  if (ys.length !== frames || ys.some((v) => !Number.isFinite(v))) {
    throw new VideoError(what, `the ssim filter compared ${ys.length} frames, expected ${frames}`);
  }
  return ys.reduce((a, b) => a + b, 0) / ys.length;
}

// ---------------------------------------------------------------------------------------------
// Motions and distortions

interface SourceImage {
  name: string;
  file: string;
  width: number;
  height: number;
  sha256: string;
}

/**
 * Draws a motion's parameters and builds its filter (input: the image; output: S x S yuv420p).
 *
 * @example
 * ```ts
 * import { makeMotion } from "./proxy.ts";
 * const m = makeMotion({ name: "coins", width: 384, height: 303 }, 0, {
 *   seed: 1,
 *   frames: 8,
 *   size: 64,
 *   fps: 25,
 * });
 * console.log(m.type, m.filter); // "pan", an ffmpeg crop/scale filter
 * ```
 */
export function makeMotion(
  src: { name: string; width: number; height: number },
  index: number,
  o: { seed: number; frames: number; size: number; fps: number },
): MotionRecord & { loop: boolean } {
  const type: MotionType = MOTIONS[index % MOTIONS.length];
  const r = rngFor(o.seed, `motion:${src.name}:${index}`);
  const u = (lo: number, hi: number) => lo + (hi - lo) * r();
  const { width: w, height: h } = src;
  const m = Math.min(w, h);
  const S = o.size;
  const F = o.frames;
  const id = `m${index}_${type}`;
  let params: Record<string, number>;
  let filter: string;
  let loop = true;
  if (type === "pan") {
    const win = Math.max(8, Math.round(m * u(0.45, 0.65)));
    const speed = u(0.75, 2); // output pixels per frame
    const theta = u(0, 2 * Math.PI);
    let dx = speed * win / S * Math.cos(theta);
    let dy = speed * win / S * Math.sin(theta);
    const fit = Math.min(
      1,
      (w - win) / Math.max(1e-9, Math.abs(dx) * (F - 1)),
      (h - win) / Math.max(1e-9, Math.abs(dy) * (F - 1)),
    );
    dx = round(dx * fit, 3);
    dy = round(dy * fit, 3);
    const place = (extent: number, d: number) => {
      const lo = d < 0 ? -d * (F - 1) : 0;
      const hi = extent - win - (d > 0 ? d * (F - 1) : 0);
      return round(Math.max(lo, Math.min(hi, lo + r() * Math.max(0, hi - lo))), 1);
    };
    const x0 = place(w, dx);
    const y0 = place(h, dy);
    params = { win, x0, y0, dx, dy };
    filter = `format=rgb24,crop=w=${win}:h=${win}:x='${x0}+${dx}*n':y='${y0}+${dy}*n',` +
      `scale=${S}:${S}:flags=${AREA},format=yuv420p`;
  } else if (type === "zoom") {
    const win = Math.max(8, Math.round(m * u(0.6, 0.95)));
    const x0 = Math.floor(r() * (w - win + 1));
    const y0 = Math.floor(r() * (h - win + 1));
    const total = u(1.15, 1.5);
    const zoomIn = r() < 0.5;
    const z0 = round(zoomIn ? 1 : total, 5);
    const rate = round(total ** ((zoomIn ? 1 : -1) / Math.max(1, F - 1)), 6);
    const cx = round(u(0.25, 0.75), 3);
    const cy = round(u(0.25, 0.75), 3);
    // Zoom on a large copy, so that zoompan's whole-pixel crop does not make the zoom judder
    // (8x the clip size, at most 2048 pixels but at least twice the clip size).
    const P = Math.max(2 * S, Math.min(8 * S, 2048));
    params = { win, x0, y0, z0, rate, cx, cy };
    filter = `format=rgb24,crop=${win}:${win}:${x0}:${y0},scale=${P}:${P}:flags=${AREA},` +
      `zoompan=z='${z0}*pow(${rate},on)':x='(iw-iw/zoom)*${cx}':y='(ih-ih/zoom)*${cy}'` +
      `:d=${F}:s=${S}x${S}:fps=${o.fps},format=yuv420p`;
    loop = false;
  } else {
    const win = Math.max(8, Math.round(m * u(0.6, 0.95)));
    const x0 = Math.floor(r() * (w - win + 1));
    const y0 = Math.floor(r() * (h - win + 1));
    const a0 = round(u(-0.4, 0.4), 4);
    const speed = round(u(0.015, 0.05) * (r() < 0.5 ? -1 : 1), 4); // radians per frame
    const P = Math.max(2 * S, Math.min(4 * S, 2048));
    const inner = 2 * Math.floor(P / Math.SQRT2 / 2);
    params = { win, x0, y0, a0, speed };
    filter = `format=rgb24,crop=${win}:${win}:${x0}:${y0},scale=${P}:${P}:flags=${AREA},` +
      `rotate=a='${a0}+${speed}*n':bilinear=1,crop=${inner}:${inner},` +
      `scale=${S}:${S}:flags=${AREA},format=yuv420p`;
  }
  return { id, source: src.name, type, params, filter, loop };
}

/**
 * Frames frozen by a freeze level: `round(fraction * frames)`, at least 1 and at most
 * `frames - 1` (the frozen frames show the frame before them, so the first frame never is).
 *
 * @example
 * ```ts
 * import { freezeLength } from "./proxy.ts";
 * freezeLength(0.375, 8); // 3
 * ```
 */
export function freezeLength(fraction: number, frames: number): number {
  return Math.min(frames - 1, Math.max(1, Math.round(fraction * frames)));
}

/**
 * The filter of a distortion (not used for h264, which is encoded and decoded). `tag` makes the
 * labels of a freeze's inner split unique in a larger graph.
 */
function distortionFilter(
  d: Distortion,
  strength: number,
  o: {
    size: number;
    noiseSeed: number;
    freezeStart: number;
    dropOrder: number[];
    frames: number;
    tag: string;
  },
): string {
  switch (d) {
    case "blur":
      return `gblur=sigma=${strength}`;
    case "noise":
      return `noise=alls=${strength}:allf=t:all_seed=${o.noiseSeed}`;
    case "scale": {
      const small = Math.max(2, Math.floor(o.size / strength));
      const s = o.size;
      return `scale=${small}:${small}:flags=${BILINEAR},scale=${s}:${s}:flags=${BILINEAR}`;
    }
    case "freeze": {
      // Frames start .. start+strength-1 become a copy of frame start-1.
      const a = `[fa${o.tag}]`;
      const b = `[fb${o.tag}]`;
      return `split${a}${b};${a}${b}freezeframes=first=${o.freezeStart}` +
        `:last=${o.freezeStart + strength - 1}:replace=${o.freezeStart - 1}`;
    }
    case "drop": {
      // Output frame i shows input frame map[i]: a dropped frame repeats the frame shown before
      // it (consecutive drops repeat the last frame kept). One group of F frames: the whole clip.
      const dropped = new Set(o.dropOrder.slice(0, strength));
      const map: number[] = [];
      for (let i = 0; i < o.frames; i++) map.push(dropped.has(i) && i > 0 ? map[i - 1] : i);
      return `shuffleframes=mapping=${map.join("|")}`;
    }
    case "banding": {
      // Every plane quantised to steps of `strength` code values, shown at the step's middle.
      const q = strength;
      const e = `'floor(val/${q})*${q}+${Math.floor(q / 2)}'`;
      return `lutyuv=y=${e}:u=${e}:v=${e}`;
    }
    case "chroma": {
      // The 4:2:0 chroma planes scaled down by `strength` and back up; luma untouched.
      const c = o.size / 2;
      const small = Math.max(1, Math.floor(c / strength));
      const t = o.tag;
      const back = (p: string) =>
        `[c${p}${t}]scale=${small}:${small}:flags=${BILINEAR},scale=${c}:${c}:flags=${BILINEAR}` +
        `[k${p}${t}]`;
      return `split[cy${t}][cc${t}];[cy${t}]extractplanes=y[ky${t}];` +
        `[cc${t}]extractplanes=u+v[cu${t}][cv${t}];${back("u")};${back("v")};` +
        `[ky${t}][ku${t}][kv${t}]mergeplanes=0x001020:yuv420p`;
    }
    case "h264":
    case "x265":
    case "vp9":
    case "av1":
      throw new Error(`${d} is not a filter`);
  }
}

/** Whether a distortion is a codec (encoded to a file, then decoded), not a filter. */
function isEncoded(d: Distortion): boolean {
  return d === "h264" || d === "x265" || d === "vp9" || d === "av1";
}

/**
 * The encoder arguments of a codec distortion at a CRF: one thread each, so that the output
 * is the same on every run (x265's thread pool and frame threads off, libvpx and libaom one
 * tile row, no row multithreading).
 */
function encoderArgs(d: Distortion, crf: number): string[] {
  switch (d) {
    case "h264":
      return ["-c:v", "libx264", "-preset", "medium", "-crf", String(crf), "-threads", "1"];
    case "x265":
      return [
        "-c:v",
        "libx265",
        "-preset",
        "fast",
        "-crf",
        String(crf),
        "-x265-params",
        "log-level=error:pools=none:frame-threads=1",
      ];
    case "vp9":
      return [
        "-c:v",
        "libvpx-vp9",
        "-crf",
        String(crf),
        "-b:v",
        "0",
        "-deadline",
        "good",
        "-cpu-used",
        "4",
        "-row-mt",
        "0",
        "-threads",
        "1",
      ];
    case "av1":
      return [
        "-c:v",
        "libaom-av1",
        "-crf",
        String(crf),
        "-b:v",
        "0",
        "-cpu-used",
        "6",
        "-row-mt",
        "0",
        "-tiles",
        "1x1",
        "-threads",
        "1",
      ];
    default:
      throw new Error(`${d} is not a codec`);
  }
}

/**
 * The order in which drop levels drop frames: frames 1 .. frames-1 (the first frame is never
 * dropped) in a seeded shuffle per motion.
 *
 * @example
 * ```ts
 * import { dropFrameOrder } from "./proxy.ts";
 * dropFrameOrder(1, "coins", "m0_pan", 4).sort(); // [1, 2, 3]
 * ```
 */
export function dropFrameOrder(
  seed: number,
  source: string,
  motion: string,
  frames: number,
): number[] {
  const order = Array.from({ length: frames - 1 }, (_, i) => i + 1);
  const rand = rngFor(seed, `drop:${source}:${motion}`);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** Runs `jobs` with at most `limit` at a time; rejects with the first error (others finish). */
async function runPool<T>(jobs: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results = new Array<T>(jobs.length);
  let next = 0;
  let failed: unknown = null;
  const worker = async () => {
    while (next < jobs.length && failed === null) {
      const i = next++;
      try {
        results[i] = await jobs[i]();
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  if (failed !== null) throw failed;
  return results;
}

/** A source image: its file (in its source folder) and its name in the dataset. */
interface SourceFile {
  /** Its source folder, as given. */
  dir: string;
  /** The file's name in its source folder. */
  file: string;
  /** Its path. */
  path: string;
  /** Its name in the dataset and in clip paths (safe, distinct). */
  name: string;
}

/** `name` split at its last dot: `.png` is an extension with an empty stem. */
function splitExt(name: string): { stem: string; ext: string } {
  const i = name.lastIndexOf(".");
  return i < 0 ? { stem: name, ext: "" } : { stem: name.slice(0, i), ext: name.slice(i) };
}

/**
 * The source images of the folders `dirs`: each folder's sorted by file name, the folders in
 * order, then the first `maxSources` of them all. A source image is a regular file (a symbolic
 * link to one followed) with an image extension. Its name in the dataset is its stem made safe
 * and distinct within its folder (`uniqueNames`: `...png` becomes `image`, `a b.png` `a_b`);
 * the same name (ignoring case) from two folders is refused, naming both files. Other entries
 * with an image extension (FIFOs, devices, folders, dangling links) are skipped with a note.
 */
async function listSources(
  dirs: string[],
  maxSources: number | null,
  note: (message: string) => void,
): Promise<SourceFile[]> {
  const all: SourceFile[] = [];
  for (const dir of dirs) {
    const files: string[] = [];
    try {
      for await (const e of Deno.readDir(dir)) {
        if (IMAGE_EXT.has(splitExt(e.name).ext.toLowerCase())) files.push(e.name);
      }
    } catch (e) {
      throw new RangeError(`source folder ${JSON.stringify(dir)}: ${(e as Error).message}`);
    }
    files.sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
    const usable: string[] = [];
    for (const f of files) {
      const p = path.join(dir, f);
      try {
        await checkRegularFile(p, "source image");
        usable.push(f);
      } catch (e) {
        if (!(e instanceof PathError)) throw e;
        note(`skipped ${p}: ${e.message.slice(p.length + 2)}`);
      }
    }
    if (dirs.length > 1 && usable.length === 0) {
      throw new RangeError(`source folder ${dir}: no images`);
    }
    // Names are made distinct within a folder only: a name taken by two folders is refused.
    const names = uniqueNames(usable.map((f) => splitExt(f).stem), { fallback: "image" });
    usable.forEach((file, i) =>
      all.push({ dir, file, path: path.join(dir, file), name: names[i] })
    );
  }
  const chosen = maxSources === null ? all : all.slice(0, maxSources);
  if (chosen.length < 2) {
    const where = dirs.length > 1
      ? `source folders ${dirs.join(", ")}: ${chosen.length} images in all`
      : `source folder ${dirs[0]}: ${chosen.length} images`;
    throw new RangeError(`${where}; at least 2 are needed`);
  }
  const byName = new Map<string, SourceFile>();
  for (const f of chosen) {
    const other = byName.get(f.name.toLowerCase());
    if (other) {
      throw new RangeError(
        `source images ${other.path} and ${f.path} both have the name ${f.name} in the ` +
          "dataset (names are not changed across folders): rename one, or leave one out",
      );
    }
    byName.set(f.name.toLowerCase(), f);
  }
  return chosen;
}

/**
 * A previous manifest: valid, or at least one of ours (`kind`), or none; `present` when anything
 * is at its path. Something there that is not a regular file is refused (never opened).
 */
async function readPrevious(
  file: string,
): Promise<{ manifest: ProxyManifest | null; ours: boolean; present: boolean }> {
  if (!(await exists(file))) return { manifest: null, ours: false, present: false };
  try {
    await checkRegularFile(file, "manifest");
  } catch (e) {
    if (!(e instanceof PathError)) throw e;
    throw new PathError(file, `${e.message}; refusing to replace it`);
  }
  try {
    const json = JSON.parse(await Deno.readTextFile(file));
    const parsed = ProxyManifestSchema.safeParse(json);
    return {
      manifest: parsed.success ? parsed.data : null,
      ours: json?.kind === "stqa-proxy",
      present: true,
    };
  } catch {
    return { manifest: null, ours: false, present: true };
  }
}

// ---------------------------------------------------------------------------------------------
// The build

/**
 * Builds the proxy dataset into `out` (default `cache/proxy`): `clips/<source>/<motion>/*.mkv`
 * and `manifest.json`. The same options (seed included), source images and ffmpeg give a
 * byte-identical manifest and byte-identical clips. When an up-to-date manifest is already there
 * and every clip exists, nothing is rebuilt (unless `force`).
 *
 * Nothing outside `out` is written, renamed or removed: `out` is resolved once (symbolic links
 * included; a file in its place is refused before any work) and every path goes through
 * `insideOutput`. Source names in clip paths are made safe and distinct (`...png` becomes
 * `image`; the result's `renamed` and `onNote` say so). The clips are written into a marked
 * temporary folder `<out>/.stqa-tmp-clips.*`, removed on failure or Ctrl-C (and, if a run was
 * killed, by the next build), and swapped in for `clips` when all are done; the manifest is
 * written atomically last. A `manifest.json` or `clips` that is not a proxy build's is not
 * replaced unless `force`.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { join } from "path";
 * import { buildProxyDataset, type BuildProxyOptions } from "./proxy.ts";
 * // A tiny build (2 source images, 1 motion, 1 blur level, 2 frames of 16x16) in a temp folder:
 * const out = await Deno.makeTempDir();
 * const tiny: BuildProxyOptions = { out, maxSources: 2, testSources: 1, valSources: 0,
 *   motionsPerImage: 1, levels: 1, distortions: ["blur"], frames: 2, size: 16 };
 * const { manifest, manifestPath } = await buildProxyDataset(tiny);
 * assert.equal(manifestPath, join(out, "manifest.json"));
 * assert.deepEqual(manifest.splits.val, []);
 * assert.equal(manifest.splits.train.length + manifest.splits.test.length, 2);
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export async function buildProxyDataset(
  options: BuildProxyOptions = {},
): Promise<BuildProxyResult> {
  const start = performance.now();
  const o = resolveProxyOptions(options);
  const note = options.onNote ?? (() => {});
  // The output folder first: a file in its place is refused before any work.
  const root = await prepareOutputDir(o.out, { option: "output folder" });
  const stale = await removeStaleWorkDirs(root);
  if (stale.length) {
    note(`removed ${stale.length} stale temporary folder(s) of an interrupted run: ${stale}`);
  }
  const sourceFiles = await listSources(o.sources, o.maxSources, note);
  const several = o.sources.length > 1;
  const renamed: { file: string; name: string }[] = [];
  for (const f of sourceFiles) {
    if (f.name !== splitExt(f.file).stem) {
      renamed.push({ file: f.file, name: f.name });
      const shown = several ? f.path : f.file;
      note(`source image ${JSON.stringify(shown)} is named ${f.name} in the dataset`);
    }
  }
  const version = await ffmpegVersion();
  const sources: (SourceImage & { path: string; dir: string })[] = [];
  for (const f of sourceFiles) {
    const { width, height } = await imageSize(f.path);
    checkSourceSize(f.path, width, height);
    sources.push({
      name: f.name,
      file: f.file,
      dir: f.dir,
      path: f.path,
      width,
      height,
      sha256: await fileSha256(f.path),
    });
  }
  const splits = splitSources(sources.map((s) => s.name), {
    seed: o.seed,
    test: o.testSources,
    val: o.valSources,
  });
  const splitOf = new Map<string, Split>();
  for (const s of ["train", "val", "test"] as const) for (const n of splits[s]) splitOf.set(n, s);

  const record: ProxyOptionsRecord = {
    seed: o.seed,
    frames: o.frames,
    size: o.size,
    fps: o.fps,
    motionsPerImage: o.motionsPerImage,
    levels: o.levels,
    distortions: o.distortions,
    maxSources: o.maxSources,
    testSources: o.testSources,
    valSources: o.valSources,
    // Several folders are recorded (one is not, so that such a manifest is as it always was).
    ...(several ? { sources: o.sources } : {}),
  };
  const sourceRecords = sources.map(({ name, file, dir, width, height, sha256 }) => ({
    name,
    file,
    ...(several ? { folder: dir } : {}),
    width,
    height,
    sha256,
  }));
  const formula = o.label === "yuv" ? LABEL_FORMULA_YUV : LABEL_FORMULA;
  const ssimValue = o.label === "yuv" ? "All" : "Y";

  const manifestPath = path.join(o.out, "manifest.json");
  const manifestFile = await insideOutput(root, "manifest.json");
  const clipsDir = await insideOutput(root, "clips");
  const { manifest: previous, ours, present } = await readPrevious(manifestFile);
  if (previous && !o.force) {
    const same = previous.generator === PROXY_GENERATOR &&
      JSON.stringify(previous.options) === JSON.stringify(record) &&
      previous.ffmpeg === version &&
      previous.label.formula === formula &&
      JSON.stringify(previous.sources) === JSON.stringify(sourceRecords);
    if (same) {
      let complete = true;
      for (const c of previous.clips) {
        if (!(await isFile(path.join(root, ...c.path.split("/"))))) {
          complete = false;
          break;
        }
      }
      if (complete) {
        return {
          manifestPath,
          manifest: previous,
          built: false,
          seconds: (performance.now() - start) / 1000,
          renamed,
        };
      }
    }
  }
  if (!ours && !o.force && present) {
    throw new RangeError(
      `${manifestPath} exists but is not a proxy manifest; refusing to replace it ` +
        "(pass force to do so, or choose another output folder)",
    );
  }
  if (!ours && !o.force && await exists(clipsDir)) {
    throw new RangeError(
      `${path.join(o.out, "clips")} exists but ${manifestPath} is not a proxy manifest; ` +
        "refusing to replace it (pass force to do so, or choose another output folder)",
    );
  }

  const motions: (MotionRecord & { loop: boolean })[] = [];
  for (const src of sources) {
    for (let i = 0; i < o.motionsPerImage; i++) motions.push(makeMotion(src, i, o));
  }
  if (o.distortions.includes("freeze")) {
    // Where each motion's freeze starts (seeded; the same for all its levels, so a stronger
    // level freezes a superset of the frames a milder one freezes).
    const longest = Math.max(
      ...levelStrengths("freeze", o.levels).map((f) => freezeLength(f, o.frames)),
    );
    for (const mo of motions) {
      const r = rngFor(o.seed, `freeze:${mo.source}:${mo.id}`);
      mo.params.freezeStart = 1 + Math.floor(r() * (o.frames - longest));
    }
  }
  const perMotion = 1 + o.distortions.length * o.levels;
  const total = motions.length * perMotion;
  let done = 0;
  const progress = (clip: string) => {
    done++;
    options.onProgress?.({ done, total, clip });
  };

  // The clips are made in a marked temporary folder inside the output folder, which an
  // interrupt removes and a later run recognises as stale; it replaces `clips` when complete.
  const partial = await makeWorkDir(root, "clips");
  const jobs = motions.map((mo) => async (): Promise<ClipRecord[]> => {
    const src = sources.find((s) => s.name === mo.source)!;
    const rel = `clips/${mo.source}/${mo.id}`;
    const dir = await insideOutput(root, path.basename(partial), mo.source, mo.id);
    await Deno.mkdir(dir, { recursive: true });
    const split = splitOf.get(mo.source)!;
    // Every ffmpeg run below works in the motion's folder with plain relative names.
    await ffmpeg(
      [
        ...(mo.loop ? ["-loop", "1", "-framerate", String(o.fps)] : []),
        ...inputArgs(path.resolve(src.path)),
        "-vf",
        mo.filter,
        "-frames:v",
        String(o.frames),
        "-r",
        String(o.fps),
        ...FFV1_OUT,
        "file:pristine.mkv",
      ],
      path.join(o.out, rel, "pristine.mkv"),
      dir,
    );
    const clips: ClipRecord[] = [{
      path: `${rel}/pristine.mkv`,
      source: mo.source,
      motion: mo.id,
      distortion: "none",
      level: 0,
      strength: 0,
      ssim: 1,
      label: ssimToLabel(1),
      split,
    }];
    const planned = o.distortions.flatMap((d) =>
      levelStrengths(d, o.levels).map((strength, li) => ({
        d,
        // Freeze and drop levels are fractions of the clip; the manifest records the frozen or
        // dropped frames.
        strength: d === "freeze" || d === "drop" ? freezeLength(strength, o.frames) : strength,
        level: li + 1,
        name: `${d}_${li + 1}`,
      }))
    );
    // The codecs (H.264, and the opt-in x265, VP9, AV1): one run encodes every level (one
    // output per CRF, one thread each).
    const encoded = planned.filter((p) => isEncoded(p.d));
    if (encoded.length) {
      await ffmpeg(
        [
          "-i",
          "file:pristine.mkv",
          ...encoded.flatMap((p) => [
            "-map",
            "0:v",
            "-an",
            ...encoderArgs(p.d, p.strength),
            "-pix_fmt",
            "yuv420p",
            ...BITEXACT_OUT,
            `file:.${p.name}.${p.d}.mkv`,
          ]),
        ],
        `${path.join(o.out, rel)} (${
          encoded.some((p) => p.d !== "h264") ? "encoded" : "H.264"
        } levels)`,
        dir,
      );
    }
    // One run makes every other distortion, decodes the H.264 files, measures every clip's SSIM
    // against the pristine clip (the ssim filter passes its first input through) and writes
    // them all as ffv1.
    const inputs = [
      "-i",
      "file:pristine.mkv",
      ...encoded.flatMap((p) => ["-i", `file:.${p.name}.${p.d}.mkv`]),
    ];
    const others = planned.filter((p) => !isEncoded(p.d));
    // The frames a drop level drops: the first `strength` of a seeded order of frames 1..F-1
    // (so a stronger level drops a superset of what a milder one drops).
    const dropOrder = o.distortions.includes("drop")
      ? dropFrameOrder(o.seed, mo.source, mo.id, o.frames)
      : [];
    const refs = planned.map((_, j) => `[r${j}]`).join("");
    const srcs = others.map((_, j) => `[s${j}]`).join("");
    const graph = [`[0:v]split=${planned.length + others.length}${refs}${srcs}`];
    let hi = 0;
    let oi = 0;
    planned.forEach((p, j) => {
      if (isEncoded(p.d)) {
        hi++;
        graph.push(`[${hi}:v][r${j}]ssim=stats_file=${p.name}.ssim[o${j}]`);
      } else {
        const noiseSeed = fnv1a(`${o.seed}:noise:${mo.source}:${mo.id}:${p.level}`) % 2147483647;
        const f = distortionFilter(p.d, p.strength, {
          size: o.size,
          noiseSeed,
          freezeStart: mo.params.freezeStart ?? 1,
          dropOrder,
          frames: o.frames,
          tag: String(j),
        });
        graph.push(
          `[s${oi}]${f},trim=end_frame=${o.frames}[d${j}]`,
          `[d${j}][r${j}]ssim=stats_file=${p.name}.ssim[o${j}]`,
        );
        oi++;
      }
    });
    await ffmpeg(
      [
        ...inputs,
        "-filter_complex",
        graph.join(";"),
        ...planned.flatMap((p, j) => ["-map", `[o${j}]`, ...FFV1_OUT, `file:${p.name}.mkv`]),
      ],
      `${path.join(o.out, rel)} (distortions)`,
      dir,
    );
    for (const p of planned) {
      const statsFile = path.join(dir, `${p.name}.ssim`);
      const ssim = round(
        parseSsimStats(
          await Deno.readTextFile(statsFile),
          o.frames,
          `${rel}/${p.name}.mkv`,
          ssimValue,
        ),
        6,
      );
      await Deno.remove(statsFile);
      clips.push({
        path: `${rel}/${p.name}.mkv`,
        source: mo.source,
        motion: mo.id,
        distortion: p.d,
        level: p.level,
        strength: p.strength,
        ssim,
        label: ssimToLabel(ssim),
        split,
      });
    }
    for (const p of encoded) await Deno.remove(path.join(dir, `.${p.name}.${p.d}.mkv`));
    for (const c of clips) progress(c.path);
    return clips;
  });

  let clips: ClipRecord[];
  try {
    clips = (await runPool(jobs, o.concurrency)).flat();
  } catch (e) {
    await discardWorkDir(partial);
    throw e;
  }

  const parsed = ProxyManifestSchema.safeParse({
    version: MANIFEST_VERSION,
    kind: "stqa-proxy",
    generator: PROXY_GENERATOR,
    seed: o.seed,
    options: record,
    ffmpeg: version,
    label: { formula, ssimFloor: LABEL_SSIM_FLOOR },
    sources: sourceRecords,
    splits,
    motions: motions.map(({ loop: _, ...m }) => m),
    clips,
  });
  if (!parsed.success) {
    await discardWorkDir(partial);
    throw new DatasetError(
      manifestPath,
      `the manifest built fails its schema (nothing written): ${formatZodError(parsed.error)}`,
    );
  }
  const manifest: ProxyManifest = parsed.data;
  // Swap the new clips in: the old manifest goes first, so a crash never leaves a manifest that
  // describes clips that are not there. Only our own earlier output is replaced (or, with
  // force, what the user asked to replace).
  if (present) await Deno.remove(manifestFile);
  try {
    await commitWorkDir(partial, root, "clips", { replace: true });
  } catch (e) {
    await discardWorkDir(partial);
    throw e;
  }
  await writeFileAtomic(manifestFile, JSON.stringify(manifest, null, 1) + "\n");
  return {
    manifestPath,
    manifest,
    built: true,
    seconds: (performance.now() - start) / 1000,
    renamed,
  };
}

/** Refuses a source image too small for a camera motion or too large to hold in memory. */
function checkSourceSize(file: string, width: number, height: number): void {
  const { minSide, maxSide, maxPixels } = SOURCE_IMAGE_LIMITS;
  if (Math.min(width, height) < minSide) {
    throw new RangeError(
      `source image ${file} is ${width}x${height}; a camera motion needs at least ` +
        `${minSide} pixels on each side (use a larger image, or leave it out of the sources)`,
    );
  }
  if (Math.max(width, height) > maxSide || width * height > maxPixels) {
    throw new RangeError(
      `source image ${file} is ${width}x${height}; at most ${maxSide} pixels a side and ` +
        `${maxPixels} pixels in all are accepted (ffmpeg holds several RGB copies while it ` +
        "makes a clip): scale it down, or leave it out of the sources",
    );
  }
}
