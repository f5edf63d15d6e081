/**
 * The proxy dataset's manifest (`manifest.json`): a zod schema, the label formula, and reading
 * and atomic writing. Clip paths in a manifest are relative to the folder that holds it.
 *
 * @module
 */

import * as path from "path";
import { z } from "zod";
import { checkRegularFile, PathError } from "../_fs.ts";
import { formatZodError } from "../_zod.ts";
import { DatasetError, type DatasetItem, type LoadedDataset } from "./types.ts";

/**
 * The manifest format version this module writes and reads.
 *
 * @example
 * ```ts
 * import { loadManifest, MANIFEST_VERSION } from "./manifest.ts";
 * const { manifest } = await loadManifest("cache/proxy/manifest.json");
 * manifest.version === MANIFEST_VERSION; // true
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
 * One distortion type.
 *
 * @example
 * ```ts
 * import type { Distortion } from "./manifest.ts";
 * const d: Distortion = "blur";
 * ```
 */
export type Distortion = (typeof DISTORTIONS)[number];

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
 * import { loadManifest, type Split } from "./manifest.ts";
 * const split: Split = "test";
 * await loadManifest("cache/proxy/manifest.json", { splits: [split] });
 * ```
 */
export type Split = (typeof SPLITS)[number];

/**
 * SSIM (luma, mean over frames) at or below which the label is 1.
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
 * The build options as stored in the manifest (everything that determines its content).
 *
 * @example
 * ```ts
 * import { ProxyOptionsSchema } from "./manifest.ts";
 * const ok = ProxyOptionsSchema.safeParse({ seed: 1, frames: 8 }).success; // false: fields missing
 * ```
 */
export const ProxyOptionsSchema = z.object({
  seed: z.number().int().nonnegative(),
  frames: z.number().int().min(2),
  size: z.number().int().min(16),
  fps: z.number().int().positive(),
  motionsPerImage: z.number().int().positive(),
  levels: z.number().int().positive(),
  distortions: z.array(z.enum(DISTORTIONS)).min(1),
  maxSources: z.number().int().positive().nullable(),
  testSources: z.number().int().positive(),
  valSources: z.number().int().nonnegative(),
});

/**
 * Stored build options.
 *
 * @example
 * ```ts
 * import { loadManifest, type ProxyOptionsRecord } from "./manifest.ts";
 * const { manifest } = await loadManifest("cache/proxy/manifest.json");
 * const options: ProxyOptionsRecord = manifest.options;
 * ```
 */
export type ProxyOptionsRecord = z.infer<typeof ProxyOptionsSchema>;

/**
 * A camera motion applied to one source image, with its parameters and ffmpeg filter.
 *
 * @example
 * ```ts
 * import { MotionSchema } from "./manifest.ts";
 * const m = { id: "m0_pan", source: "coins", type: "pan", params: { dx: 1 }, filter: "null" };
 * MotionSchema.parse(m);
 * ```
 */
export const MotionSchema = z.object({
  id: z.string().min(1),
  source: z.string().min(1),
  type: z.enum(MOTIONS),
  params: z.record(z.number()),
  filter: z.string().min(1),
});

/**
 * One motion record.
 *
 * @example
 * ```ts
 * import { loadManifest, type MotionRecord } from "./manifest.ts";
 * const { manifest } = await loadManifest("cache/proxy/manifest.json");
 * const motions: MotionRecord[] = manifest.motions;
 * ```
 */
export type MotionRecord = z.infer<typeof MotionSchema>;

/**
 * One clip of the proxy dataset.
 *
 * @example
 * ```ts
 * import { ClipSchema } from "./manifest.ts";
 * ClipSchema.safeParse({ path: "/abs.mkv" }).success; // false
 * ```
 */
export const ClipSchema = z.object({
  /** Relative to the manifest's folder, with forward slashes. */
  path: z.string().min(1).refine((p) => !path.isAbsolute(p) && !p.split("/").includes(".."), {
    message: "must be a relative path inside the dataset folder",
  }),
  source: z.string().min(1),
  motion: z.string().min(1),
  distortion: z.enum(["none", ...DISTORTIONS]),
  /** 0 for pristine clips, 1..levels from mild to strong. */
  level: z.number().int().nonnegative(),
  /**
   * The distortion's parameter: H.264 CRF, blur sigma, noise strength, scaling factor, or the
   * number of frozen frames; 0 for pristine clips.
   */
  strength: z.number(),
  ssim: z.number().min(-1).max(1),
  label: z.number().min(1).max(5),
  split: z.enum(SPLITS),
});

/**
 * One clip record.
 *
 * @example
 * ```ts
 * import { type ClipRecord, loadManifest } from "./manifest.ts";
 * const clips: ClipRecord[] = (await loadManifest("cache/proxy/manifest.json")).manifest.clips;
 * clips.filter((c) => c.distortion === "h264" && c.level === 4);
 * ```
 */
export type ClipRecord = z.infer<typeof ClipSchema>;

/**
 * The whole manifest.
 *
 * @example
 * ```ts
 * import { ProxyManifestSchema } from "./manifest.ts";
 * const text = await Deno.readTextFile("cache/proxy/manifest.json");
 * const manifest = ProxyManifestSchema.parse(JSON.parse(text));
 * ```
 */
export const ProxyManifestSchema = z.object({
  version: z.literal(MANIFEST_VERSION),
  kind: z.literal("stqa-proxy"),
  /** The version of the clip synthesis that wrote the clips (see `PROXY_GENERATOR`). */
  generator: z.number().int().positive(),
  seed: z.number().int().nonnegative(),
  options: ProxyOptionsSchema,
  /** ffmpeg's version line at build time (clips are bit-identical only for the same build). */
  ffmpeg: z.string(),
  label: z.object({ formula: z.string(), ssimFloor: z.number() }),
  /** The source images, with their size and SHA-256 (a changed image means a rebuild). */
  sources: z.array(z.object({
    name: z.string().min(1),
    file: z.string().min(1),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  })),
  splits: z.object({
    train: z.array(z.string()),
    val: z.array(z.string()),
    test: z.array(z.string()),
  }),
  motions: z.array(MotionSchema),
  clips: z.array(ClipSchema),
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

/**
 * A proxy dataset manifest.
 *
 * @example
 * ```ts
 * import { loadManifest, type ProxyManifest } from "./manifest.ts";
 * const m: ProxyManifest = (await loadManifest("cache/proxy/manifest.json")).manifest;
 * console.log(m.splits.test);
 * ```
 */
export type ProxyManifest = z.infer<typeof ProxyManifestSchema>;

/**
 * The label formula as the manifest states it.
 *
 * @example
 * ```ts
 * import { LABEL_FORMULA } from "./manifest.ts";
 * console.log(LABEL_FORMULA);
 * ```
 */
export const LABEL_FORMULA =
  "label = 1 + 4 * clamp((ssim - 0.25) / 0.75, 0, 1), rounded to 4 decimals; " +
  "ssim = mean over frames of ffmpeg's ssim filter luma (Y) value against the pristine clip";

/**
 * Options of {@link loadManifest}.
 *
 * @example
 * ```ts
 * import { loadManifest, type LoadManifestOptions } from "./manifest.ts";
 * const options: LoadManifestOptions = { splits: ["train", "val"], checkFiles: false };
 * await loadManifest("cache/proxy/manifest.json", options);
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
 * import { type LoadedManifest, loadManifest } from "./manifest.ts";
 * const d: LoadedManifest = await loadManifest("cache/proxy/manifest.json");
 * console.log(d.dir, d.items.length, d.manifest.seed);
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
 * import { loadManifest } from "./manifest.ts";
 * const { items, missing } = await loadManifest("cache/proxy/manifest.json", {
 *   splits: ["train"],
 * });
 * console.log(items.length, items[0].path, items[0].mos, missing.length);
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
 * import { labelSummary, loadManifest } from "./manifest.ts";
 * const { manifest } = await loadManifest("cache/proxy/manifest.json");
 * console.log(labelSummary(manifest).join("\n"));
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
  for (const k of ["none", ...DISTORTIONS, "all"]) {
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
