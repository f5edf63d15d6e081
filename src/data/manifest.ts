/**
 * The proxy dataset's manifest (`manifest.json`): a zod schema, the label formula, and reading
 * and atomic writing. Clip paths in a manifest are relative to the folder that holds it.
 *
 * @module
 */

import * as path from "path";
import { z } from "zod";
import { checkRegularFile, PathError } from "../_fs.ts";
import { formatZodError, type SameShape, type Schema } from "../_zod.ts";
import { DatasetError, type DatasetItem, type LoadedDataset } from "./types.ts";

/**
 * The manifest format version this module writes and reads.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { MANIFEST_VERSION, ProxyManifestSchema } from "./manifest.ts";
 * const r = ProxyManifestSchema.safeParse({ version: MANIFEST_VERSION + 1 });
 * assert.ok(!r.success && r.error.issues[0].path[0] === "version");
 * ```
 */
export const MANIFEST_VERSION = 1;

/**
 * The distortion types of the proxy dataset (`none` marks a pristine clip).
 *
 * @example
 * ```ts
 * import { DISTORTIONS } from "./manifest.ts";
 * DISTORTIONS.join(","); // "h264,blur,noise,scale,freeze"
 * ```
 */
export const DISTORTIONS = ["h264", "blur", "noise", "scale", "freeze"] as const;

/**
 * Distortion types a build makes only when asked (`distortions` option, `--distortions`): not
 * in the default set {@link DISTORTIONS}, on which the bundled models were trained.
 *
 * @example
 * ```ts
 * import { EXTRA_DISTORTIONS } from "./manifest.ts";
 * EXTRA_DISTORTIONS.join(","); // "x265,vp9,av1,drop,banding,chroma"
 * ```
 */
export const EXTRA_DISTORTIONS = ["x265", "vp9", "av1", "drop", "banding", "chroma"] as const;

/**
 * Every distortion type a build can make: the default set, then the opt-in ones.
 *
 * @example
 * ```ts
 * import { DISTORTION_KINDS } from "./manifest.ts";
 * DISTORTION_KINDS.length; // 11
 * ```
 */
export const DISTORTION_KINDS = [...DISTORTIONS, ...EXTRA_DISTORTIONS] as const;

/**
 * One distortion type.
 *
 * @example
 * ```ts
 * import type { Distortion } from "./manifest.ts";
 * const d: Distortion = "blur";
 * ```
 */
export type Distortion =
  | "h264"
  | "blur"
  | "noise"
  | "scale"
  | "freeze"
  | "x265"
  | "vp9"
  | "av1"
  | "drop"
  | "banding"
  | "chroma";

// `Distortion` is spelled out (the doc lint wants no reference to a constant that the package
// root does not export); these two lines fail to compile if it and DISTORTION_KINDS disagree.
const _kindsAreDistortions: readonly Distortion[] = DISTORTION_KINDS;
const _distortionsAreKinds: readonly (typeof DISTORTION_KINDS)[number][] = [] as Distortion[];

/**
 * The camera motions that make pristine clips from a still image.
 *
 * @example
 * ```ts
 * import { MOTIONS } from "./manifest.ts";
 * MOTIONS[0]; // "pan"
 * ```
 */
export const MOTIONS = ["pan", "zoom", "rotate"] as const;

/**
 * One motion type.
 *
 * @example
 * ```ts
 * import type { MotionType } from "./manifest.ts";
 * const m: MotionType = "zoom";
 * ```
 */
export type MotionType = (typeof MOTIONS)[number];

/**
 * The three splits; a source image belongs to exactly one.
 *
 * @example
 * ```ts
 * import { SPLITS } from "./manifest.ts";
 * SPLITS.length; // 3
 * ```
 */
export const SPLITS = ["train", "val", "test"] as const;

/**
 * One split.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { type Split, SPLITS } from "./manifest.ts";
 * const split: Split = "test";
 * assert.ok(SPLITS.includes(split));
 * ```
 */
export type Split = (typeof SPLITS)[number];

/**
 * SSIM (mean over frames; luma, or with the `yuv` label the Y/U/V combination) at or below which
 * the label is 1.
 *
 * @example
 * ```ts
 * import { LABEL_SSIM_FLOOR, ssimToLabel } from "./manifest.ts";
 * ssimToLabel(LABEL_SSIM_FLOOR); // 1
 * ```
 */
export const LABEL_SSIM_FLOOR = 0.25;

/**
 * The fixed label formula: mean luma SSIM against the pristine clip, mapped linearly from
 * [{@link LABEL_SSIM_FLOOR}, 1] onto [1, 5] and clamped, rounded to 4 decimals:
 * `label = 1 + 4 * clamp((ssim - 0.25) / 0.75, 0, 1)`. A pristine clip (SSIM 1) gets 5. The floor
 * 0.25 is about the 5th percentile of the SSIM of the default build's distorted clips, so few
 * clips are clamped (see docs/data.md).
 *
 * @example
 * ```ts
 * import { ssimToLabel } from "./manifest.ts";
 * ssimToLabel(1); // 5
 * ssimToLabel(0.7); // 3.4
 * ssimToLabel(0.2); // 1
 * ```
 */
export function ssimToLabel(ssim: number): number {
  if (!Number.isFinite(ssim)) throw new RangeError(`ssimToLabel: SSIM ${ssim} is not finite`);
  const t = Math.min(1, Math.max(0, (ssim - LABEL_SSIM_FLOOR) / (1 - LABEL_SSIM_FLOOR)));
  return Math.round((1 + 4 * t) * 1e4) / 1e4;
}

/**
 * Stored build options: everything that determines a build's content.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { ProxyOptionsSchema, type ProxyOptionsRecord } from "./manifest.ts";
 * const options: ProxyOptionsRecord = {
 *   seed: 1, frames: 8, size: 64, fps: 25, motionsPerImage: 9, levels: 4,
 *   distortions: ["h264", "blur"], maxSources: null, testSources: 3, valSources: 1,
 * };
 * assert.deepEqual(ProxyOptionsSchema.parse(options), options);
 * ```
 */
export interface ProxyOptionsRecord {
  /** Seed of motions, noise and the split. */
  seed: number;
  /** Frames per clip (at least 2). */
  frames: number;
  /** Width and height of the square clips (at least 16). */
  size: number;
  /** Frames per second written in the clips. */
  fps: number;
  /** Camera motions per image, cycling pan, zoom, rotate. */
  motionsPerImage: number;
  /** Levels per distortion. */
  levels: number;
  /** Distortion types (at least one). */
  distortions: Distortion[];
  /** Only the first n source images by name, or null for all. */
  maxSources: number | null;
  /** Source images in the test split. */
  testSources: number;
  /** Source images in the validation split. */
  valSources: number;
  /**
   * The source folders, in the order given: written only by a build from more than one folder
   * (an array). A single folder is not recorded (a manifest without the field was built from one
   * folder); a string is read as one folder.
   */
  sources?: string | string[];
}

const proxyOptions = z.object({
  seed: z.number().int().nonnegative(),
  frames: z.number().int().min(2),
  size: z.number().int().min(16),
  fps: z.number().int().positive(),
  motionsPerImage: z.number().int().positive(),
  levels: z.number().int().positive(),
  distortions: z.array(z.enum(DISTORTION_KINDS)).min(1),
  maxSources: z.number().int().positive().nullable(),
  testSources: z.number().int().positive(),
  valSources: z.number().int().nonnegative(),
  sources: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
});
const _sameOptions: SameShape<ProxyOptionsRecord, z.output<typeof proxyOptions>> = true;

/**
 * Validates {@link ProxyOptionsRecord}: the build options as stored in the manifest.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { ProxyOptionsSchema } from "./manifest.ts";
 * // Fields missing:
 * assert.equal(ProxyOptionsSchema.safeParse({ seed: 1, frames: 8 }).success, false);
 * ```
 */
export const ProxyOptionsSchema: Schema<ProxyOptionsRecord> = proxyOptions;

/**
 * A camera motion applied to one source image, with its parameters and ffmpeg filter.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { type MotionRecord, MotionSchema } from "./manifest.ts";
 * const m: MotionRecord = {
 *   id: "m0_pan", source: "coins", type: "pan", params: { dx: 1 }, filter: "null",
 * };
 * assert.deepEqual(MotionSchema.parse(m), m);
 * ```
 */
export interface MotionRecord {
  /** Unique within the manifest, e.g. `m0_pan`. */
  id: string;
  /** The source image's name. */
  source: string;
  /** The kind of motion. */
  type: MotionType;
  /** Its parameters (speeds, angles), by name. */
  params: Record<string, number>;
  /** The ffmpeg filter that makes it. */
  filter: string;
}

const motion = z.object({
  id: z.string().min(1),
  source: z.string().min(1),
  type: z.enum(MOTIONS),
  params: z.record(z.number()),
  filter: z.string().min(1),
});
const _sameMotion: SameShape<MotionRecord, z.output<typeof motion>> = true;

/**
 * Validates a {@link MotionRecord}.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { MotionSchema } from "./manifest.ts";
 * const m = { id: "m0_pan", source: "coins", type: "spin", params: {}, filter: "null" };
 * assert.equal(MotionSchema.safeParse(m).success, false); // no such motion type
 * ```
 */
export const MotionSchema: Schema<MotionRecord> = motion;

/**
 * One clip of the proxy dataset.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { type ClipRecord, ClipSchema } from "./manifest.ts";
 * const clip: ClipRecord = {
 *   path: "clips/coins/m0_pan/blur_2.mkv", source: "coins", motion: "m0_pan",
 *   distortion: "blur", level: 2, strength: 1.5, ssim: 0.7, label: 3.4, split: "train",
 * };
 * assert.deepEqual(ClipSchema.parse(clip), clip);
 * ```
 */
export interface ClipRecord {
  /** Relative to the manifest's folder, with forward slashes. */
  path: string;
  /** The source image's name. */
  source: string;
  /** The motion's id. */
  motion: string;
  /** The distortion, or `none` for a pristine clip. */
  distortion: "none" | Distortion;
  /** 0 for pristine clips, 1..levels from mild to strong. */
  level: number;
  /**
   * The distortion's parameter: H.264 / x265 / VP9 / AV1 CRF, blur sigma, noise strength,
   * scaling factor, the number of frozen or dropped frames, the banding step, or the chroma
   * down-scaling factor; 0 for pristine clips.
   */
  strength: number;
  /**
   * Mean SSIM against the pristine clip: luma (Y), or ffmpeg's Y/U/V "All" value in a build
   * with the `yuv` label (the manifest's `label.formula` says which).
   */
  ssim: number;
  /** The label, 1 to 5, from {@link ssimToLabel}. */
  label: number;
  /** The split of its source image. */
  split: Split;
}

const clip = z.object({
  path: z.string().min(1).refine((p) => !path.isAbsolute(p) && !p.split("/").includes(".."), {
    message: "must be a relative path inside the dataset folder",
  }),
  source: z.string().min(1),
  motion: z.string().min(1),
  distortion: z.enum(["none", ...DISTORTION_KINDS]),
  level: z.number().int().nonnegative(),
  strength: z.number(),
  ssim: z.number().min(-1).max(1),
  label: z.number().min(1).max(5),
  split: z.enum(SPLITS),
});
const _sameClip: SameShape<ClipRecord, z.output<typeof clip>> = true;

/**
 * Validates a {@link ClipRecord} (its path relative, inside the dataset folder).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { ClipSchema } from "./manifest.ts";
 * assert.equal(ClipSchema.safeParse({ path: "/abs.mkv" }).success, false);
 * ```
 */
export const ClipSchema: Schema<ClipRecord> = clip;

/**
 * A proxy dataset manifest: how it was built, its source images, splits, motions and clips.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { LABEL_FORMULA, type ProxyManifest, ProxyManifestSchema } from "./manifest.ts";
 * const m: ProxyManifest = {
 *   version: 1, kind: "stqa-proxy", generator: 1, seed: 1, ffmpeg: "ffmpeg version 6.1",
 *   options: {
 *     seed: 1, frames: 8, size: 64, fps: 25, motionsPerImage: 1, levels: 1,
 *     distortions: ["blur"], maxSources: null, testSources: 1, valSources: 0,
 *   },
 *   label: { formula: LABEL_FORMULA, ssimFloor: 0.25 },
 *   sources: [], splits: { train: ["coins"], val: [], test: [] }, motions: [], clips: [],
 * };
 * assert.deepEqual(ProxyManifestSchema.parse(m), m);
 * ```
 */
export interface ProxyManifest {
  /** The format version, {@link MANIFEST_VERSION}. */
  version: typeof MANIFEST_VERSION;
  /** Always `stqa-proxy`. */
  kind: "stqa-proxy";
  /** The version of the clip synthesis that wrote the clips (see `PROXY_GENERATOR`). */
  generator: number;
  /** The build's seed. */
  seed: number;
  /** The build options. */
  options: ProxyOptionsRecord;
  /** ffmpeg's version line at build time (clips are bit-identical only for the same build). */
  ffmpeg: string;
  /**
   * The label formula ({@link LABEL_FORMULA}, or {@link LABEL_FORMULA_YUV} for the `yuv`
   * label) and its SSIM floor.
   */
  label: { formula: string; ssimFloor: number };
  /**
   * The source images, with their size and SHA-256 (a changed image means a rebuild); `file` is
   * the name in its folder, and `folder` (only in a build from several folders) that folder.
   */
  sources: {
    name: string;
    file: string;
    folder?: string;
    width: number;
    height: number;
    sha256: string;
  }[];
  /** The source images' names per split (each in exactly one). */
  splits: { train: string[]; val: string[]; test: string[] };
  /** The camera motions. */
  motions: MotionRecord[];
  /** The clips (each path listed once, each in its source's split). */
  clips: ClipRecord[];
}

const proxyManifest = z.object({
  version: z.literal(MANIFEST_VERSION),
  kind: z.literal("stqa-proxy"),
  generator: z.number().int().positive(),
  seed: z.number().int().nonnegative(),
  options: proxyOptions,
  ffmpeg: z.string(),
  label: z.object({ formula: z.string(), ssimFloor: z.number() }),
  sources: z.array(z.object({
    name: z.string().min(1),
    file: z.string().min(1),
    folder: z.string().min(1).optional(),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  })),
  splits: z.object({
    train: z.array(z.string()),
    val: z.array(z.string()),
    test: z.array(z.string()),
  }),
  motions: z.array(motion),
  clips: z.array(clip),
}).superRefine((m, ctx) => {
  const owner = new Map<string, Split>();
  for (const s of SPLITS) {
    for (const src of m.splits[s]) {
      const prev = owner.get(src);
      if (prev) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["splits", s],
          message: `source ${JSON.stringify(src)} is in both ${prev} and ${s}`,
        });
      }
      owner.set(src, s);
    }
  }
  const paths = new Map<string, number>();
  m.clips.forEach((c, i) => {
    const key = path.posix.normalize(c.path);
    const before = paths.get(key);
    if (before !== undefined) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["clips", i, "path"],
        message: `clip ${c.path} is listed twice (also clips.${before})`,
      });
    }
    paths.set(key, i);
    const s = owner.get(c.source);
    if (s !== c.split) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["clips", i, "split"],
        message: `clip ${c.path}: split ${c.split} but source ${c.source} is in ${s ?? "no split"}`,
      });
    }
  });
});
const _sameManifest: SameShape<ProxyManifest, z.output<typeof proxyManifest>> = true;

/**
 * Validates a whole {@link ProxyManifest}: each field, and that every source is in one split,
 * every clip path is listed once and every clip is in its source's split.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { ProxyManifestSchema } from "./manifest.ts";
 * const r = ProxyManifestSchema.safeParse({ version: 1, kind: "stqa-proxy" });
 * assert.equal(r.success, false);
 * if (!r.success) assert.deepEqual(r.error.issues[0].path, ["generator"]);
 * ```
 */
export const ProxyManifestSchema: Schema<ProxyManifest> = proxyManifest;

/**
 * The label formula as the manifest states it (the default `luma` label).
 *
 * @example
 * ```ts
 * import { LABEL_FORMULA } from "./manifest.ts";
 * console.log(LABEL_FORMULA);
 * ```
 */
export const LABEL_FORMULA: string =
  "label = 1 + 4 * clamp((ssim - 0.25) / 0.75, 0, 1), rounded to 4 decimals; " +
  "ssim = mean over frames of ffmpeg's ssim filter luma (Y) value against the pristine clip";

/**
 * The label formula of the opt-in `yuv` label (`label: "yuv"`, `--label yuv`): the same mapping,
 * from ffmpeg's "All" SSIM value, the Y, U and V values weighted by their planes' pixel counts
 * (`(4 Y + U + V) / 6` for yuv420p), so that chroma distortions lower the label too.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { LABEL_FORMULA, LABEL_FORMULA_YUV } from "./manifest.ts";
 * assert.notEqual(LABEL_FORMULA_YUV, LABEL_FORMULA);
 * assert.ok(LABEL_FORMULA_YUV.includes("All"));
 * ```
 */
export const LABEL_FORMULA_YUV: string =
  "label = 1 + 4 * clamp((ssim - 0.25) / 0.75, 0, 1), rounded to 4 decimals; " +
  "ssim = mean over frames of ffmpeg's ssim filter All value (Y, U and V weighted by their " +
  "pixel counts: (4 Y + U + V) / 6 for yuv420p) against the pristine clip";

/**
 * Options of {@link loadManifest}.
 *
 * @example
 * ```ts
 * import type { LoadManifestOptions } from "./manifest.ts";
 * // The training clips, without looking for their files.
 * const options: LoadManifestOptions = { splits: ["train", "val"], checkFiles: false };
 * ```
 */
export interface LoadManifestOptions {
  /** Only clips of these splits (default: all). */
  splits?: Split[];
  /** Check that every clip file exists and list the missing ones (default true). */
  checkFiles?: boolean;
}

/**
 * A proxy manifest with its items resolved against its folder.
 *
 * @example
 * ```ts
 * import type { LoadedManifest } from "./manifest.ts";
 * const describe = (d: LoadedManifest): string =>
 *   `${d.items.length} clips of seed ${d.manifest.seed} in ${d.dir}, ${d.missing.length} missing`;
 * ```
 */
export interface LoadedManifest extends LoadedDataset {
  /** The validated manifest. */
  manifest: ProxyManifest;
  /** The folder that holds the manifest (clip paths are relative to it). */
  dir: string;
}

/**
 * Reads and validates a proxy manifest; returns it with the selected clips as items (path
 * resolved against the manifest's folder, `mos` = label) and the clip files that are missing.
 * The manifest must be a regular file (a FIFO or device is refused before it is opened); a clip
 * that is a folder, FIFO, device or socket is refused by name (a symbolic link to a regular file
 * is followed). Clip paths are relative, without `..`, and listed once.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { join } from "path";
 * import { loadManifest } from "./manifest.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(join(dir, "clips"));
 * await Deno.copyFile("data/samples/gravel_zoom.mkv", join(dir, "clips", "gravel.mkv"));
 * const clip = { path: "clips/gravel.mkv", source: "gravel", motion: "m0_zoom", distortion: "none",
 *   level: 0, strength: 0, ssim: 1, label: 5, split: "train" };
 * await Deno.writeTextFile(join(dir, "manifest.json"), JSON.stringify({
 *   version: 1, kind: "stqa-proxy", generator: 1, seed: 1, ffmpeg: "ffmpeg version 6.1",
 *   options: { seed: 1, frames: 8, size: 64, fps: 25, motionsPerImage: 1, levels: 1,
 *     distortions: ["blur"], maxSources: null, testSources: 1, valSources: 0 },
 *   label: { formula: "", ssimFloor: 0.25 }, sources: [],
 *   splits: { train: ["gravel"], val: [], test: [] }, motions: [], clips: [clip],
 * }));
 * const file = join(dir, "manifest.json");
 * const { items, missing } = await loadManifest(file, { splits: ["train"] });
 * assert.deepEqual([items.length, items[0].name, items[0].mos], [1, clip.path, 5]);
 * assert.equal(missing.length, 0);
 * assert.equal((await loadManifest(file, { splits: ["test"] })).items.length, 0);
 * await Deno.remove(join(dir, "clips", "gravel.mkv"));
 * assert.equal((await loadManifest(file)).missing.length, 1);
 * assert.equal((await loadManifest(file, { checkFiles: false })).missing.length, 0);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadManifest(
  file: string,
  options: LoadManifestOptions = {},
): Promise<LoadedManifest> {
  let text: string;
  try {
    await checkRegularFile(file, "manifest");
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof PathError && !/: no such manifest$/.test(e.message)) {
      const detail = e.message.startsWith(`${file}: `)
        ? e.message.slice(file.length + 2)
        : e.message;
      throw new DatasetError(file, detail, { cause: e });
    }
    if (e instanceof Deno.errors.NotFound || e instanceof PathError) {
      throw new DatasetError(file, "no such file (build it with `deno task data`)", { cause: e });
    }
    throw new DatasetError(file, `cannot read: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DatasetError(file, `not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  const parsed = ProxyManifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new DatasetError(file, `not a valid proxy manifest: ${formatZodError(parsed.error)}`);
  }
  const manifest = parsed.data;
  const dir = path.dirname(path.resolve(file));
  const wanted = new Set<Split>(options.splits ?? SPLITS);
  const items: DatasetItem[] = [];
  for (const c of manifest.clips) {
    if (!wanted.has(c.split)) continue;
    items.push({
      path: path.join(dir, ...c.path.split("/")),
      mos: c.label,
      name: c.path,
      source: c.source,
      split: c.split,
      distortion: c.distortion,
      level: c.level,
    });
  }
  const missing: string[] = [];
  if (options.checkFiles ?? true) {
    for (const it of items) {
      try {
        await checkRegularFile(it.path, "clip");
      } catch (e) {
        if (!(e instanceof PathError)) throw e;
        if (!(await Deno.stat(it.path).then(() => true, () => false))) {
          missing.push(it.path);
          continue;
        }
        throw new DatasetError(file, `clip ${it.name}: ${e.message}`, { cause: e });
      }
    }
  }
  return { manifest, dir, items, missing };
}

/**
 * Min, mean and max of the labels and SSIM per distortion, as table lines.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { type ClipRecord, labelSummary, type ProxyManifest } from "./manifest.ts";
 * const clip = (distortion: "none" | "blur", ssim: number, label: number): ClipRecord => ({
 *   path: `clips/${distortion}.mkv`, source: "coins", motion: "m0_pan", distortion,
 *   level: distortion === "none" ? 0 : 1, strength: 0, ssim, label, split: "train",
 * });
 * const manifest: ProxyManifest = {
 *   version: 1, kind: "stqa-proxy", generator: 1, seed: 1, ffmpeg: "ffmpeg version 6.1",
 *   options: { seed: 1, frames: 8, size: 64, fps: 25, motionsPerImage: 1, levels: 1,
 *     distortions: ["blur"], maxSources: null, testSources: 1, valSources: 0 },
 *   label: { formula: "", ssimFloor: 0.25 }, sources: [],
 *   splits: { train: ["coins"], val: [], test: [] }, motions: [],
 *   clips: [clip("none", 1, 5), clip("blur", 0.7, 3.4)],
 * };
 * const lines = labelSummary(manifest);
 * assert.ok(lines.some((l) => /^blur\s+1\s+3\.400/.test(l)));
 * assert.equal(lines.at(-3), "train 2 clips (coins)");
 * ```
 */
export function labelSummary(manifest: ProxyManifest): string[] {
  const groups = new Map<string, { labels: number[]; ssim: number[] }>();
  const add = (k: string, label: number, ssim: number) => {
    const g = groups.get(k) ?? { labels: [], ssim: [] };
    g.labels.push(label);
    g.ssim.push(ssim);
    groups.set(k, g);
  };
  for (const c of manifest.clips) {
    add(c.distortion, c.label, c.ssim);
    add("all", c.label, c.ssim);
  }
  const stats = (v: number[]) => {
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    return [Math.min(...v), mean, Math.max(...v)].map((x) => x.toFixed(3).padStart(6));
  };
  const lines = [
    "distortion  clips   label min   mean    max    ssim min   mean    max",
  ];
  for (const k of ["none", ...DISTORTION_KINDS, "all"]) {
    const g = groups.get(k);
    if (!g) continue;
    lines.push(
      `${k.padEnd(10)} ${String(g.labels.length).padStart(6)}      ${stats(g.labels).join(" ")}` +
        `     ${stats(g.ssim).join(" ")}`,
    );
  }
  const splits = (["train", "val", "test"] as const).map((s) =>
    `${s} ${manifest.clips.filter((c) => c.split === s).length} clips ` +
    `(${manifest.splits[s].join(", ") || "none"})`
  );
  return [...lines, ...splits];
}
