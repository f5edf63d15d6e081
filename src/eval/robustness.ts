/**
 * Robustness evaluation: the per-video row that `deno task eval` records for every (video,
 * victim, method), the attack-strength measures of one row (Zhang et al.'s R, the MSU
 * robustness score), and the table per (victim, method) aggregated from rows (docs/eval.md),
 * with its CSV and Markdown forms.
 *
 * @module
 */

import { z } from "zod";
import type { SameShape, Schema } from "../_zod.ts";
import { attackTarget } from "../attack/losses.ts";
import { correlationReport } from "../metrics/correlation.ts";

/** The methods a table can carry, in table order.
 *
 * @example
 * ```ts
 * import { EVAL_METHODS } from "./robustness.ts";
 * console.log(EVAL_METHODS.join(","));
 * ```
 */
export const EVAL_METHODS = [
  "random",
  "fgsm",
  "ifgsm",
  "zhang2023",
  "korhonen",
  "stqa-net",
  "stqa-net-signed",
  "stqa-net-paper",
] as const;

/**
 * The victim whose generator a cross-victim method `stqa-net@<victim>` uses (its adversarial
 * videos are scored by another victim), or null for any other method name.
 *
 * @example
 * ```ts
 * import { crossSource } from "./robustness.ts";
 * crossSource("stqa-net@vsfa-mini"); // "vsfa-mini"
 * crossSource("fgsm"); // null
 * ```
 */
export function crossSource(method: string): string | null {
  const m = /^stqa-net@([\w.-]+)$/.exec(method);
  return m ? m[1] : null;
}

/** One of {@link EVAL_METHODS}. */
export type EvalMethod = typeof EVAL_METHODS[number];

const num = z.number();
const maybe = z.number().nullable();
/** A structure ratio: >= 0, null when infinite. */
const ratio = z.number().nonnegative().nullable();

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "expected 64 hex digits (SHA-256)");

/**
 * The SHA-256 digests of a model's two files.
 *
 * @example
 * ```ts
 * import type { ModelDigest } from "./robustness.ts";
 * const digest: ModelDigest = { weights: "0".repeat(64), config: "1".repeat(64) };
 * ```
 */
export interface ModelDigest {
  /** Of the `.safetensors` file (64 hex digits). */
  weights: string;
  /** Of the `.json` file (64 hex digits). */
  config: string;
}

/** The SHA-256 digests of a model's two files. */
const ModelDigestSchema = z.object({ weights: sha256, config: sha256 }).strict();

/**
 * Everything besides `eps`, `seed` and `median` (recorded in the row itself) that changes a row:
 * a rerun into the same output folder compares these and refuses to mix rows that differ.
 *
 * @example
 * ```ts
 * import type { EvalRowSettings } from "./robustness.ts";
 * const settings: EvalRowSettings = {
 *   dataset: "/data/proxy/manifest.json", split: "test", videoPath: "/data/proxy/clips/a.mkv",
 *   jnd: "namm-st", victim: { weights: "0".repeat(64), config: "1".repeat(64) },
 *   generator: null, methodOptions: {},
 * };
 * ```
 */
export interface EvalRowSettings {
  /**
   * The dataset as resolved: the real path of its manifest, folder or file, or
   * `<format>:<real root>` for a dataset loader.
   */
  dataset: string;
  /** The split of a proxy manifest; null for datasets without splits. */
  split: string | null;
  /** The real path of the video. */
  videoPath: string;
  /**
   * The JND model of the method's box: a generator's own (`Attack.jndModel`), the eval's default
   * (namm-st) for the baselines.
   */
  jnd: string;
  /** The victim's weights and config files. */
  victim: ModelDigest;
  /** The generator's weights and config files, for the stqa-net methods; else null. */
  generator: ModelDigest | null;
  /**
   * The method's own options (none for the default baselines eval runs; a generator's variant
   * and training eps).
   */
  methodOptions: Record<string, string | number | boolean | null>;
}

const evalRowSettings = z.object({
  dataset: z.string().min(1),
  split: z.string().nullable(),
  videoPath: z.string().min(1),
  jnd: z.string().min(1),
  victim: ModelDigestSchema,
  generator: ModelDigestSchema.nullable(),
  methodOptions: z.record(z.union([z.string(), z.number(), z.boolean(), z.null()])),
}).strict();
const _sameSettings: SameShape<EvalRowSettings, z.output<typeof evalRowSettings>> = true;

/**
 * Validates {@link EvalRowSettings} (digests of 64 hex digits; unknown fields are refused).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { EvalRowSettingsSchema } from "./robustness.ts";
 * const settings = {
 *   dataset: "/data/proxy/manifest.json", split: "test", videoPath: "/data/proxy/clips/a.mkv",
 *   jnd: "namm-st", victim: { weights: "0".repeat(64), config: "1".repeat(64) },
 *   generator: null, methodOptions: {},
 * };
 * assert.deepEqual(EvalRowSettingsSchema.parse(settings), settings);
 * const victim = { weights: "x", config: "x" };
 * const r = EvalRowSettingsSchema.safeParse({ ...settings, victim });
 * assert.equal(r.success, false);
 * ```
 */
export const EvalRowSettingsSchema: Schema<EvalRowSettings> = evalRowSettings;

/**
 * One measured (video, victim, method): a line of rows.jsonl.
 *
 * @example
 * ```ts
 * import type { EvalRow } from "./robustness.ts";
 * const summary = (row: EvalRow): string =>
 *   `${row.video} ${row.method}: ${row.cleanScore} -> ${row.advScore}`;
 * ```
 */
export interface EvalRow {
  /** The video's unique name within the dataset. */
  video: string;
  /** Its index in the dataset's order (sharding and seeds use it). */
  index: number;
  /** Its label (MOS), or null. */
  label: number | null;
  /** The victim's name. */
  victim: string;
  /** The method's name. */
  method: string;
  /** Frames as the victim reads the clip. */
  frames: number;
  /** Frame width as the victim reads the clip. */
  width: number;
  /** Frame height as the victim reads the clip. */
  height: number;
  /** The lowest score of the victim's scale. */
  qMin: number;
  /** The highest score of the victim's scale. */
  qMax: number;
  /** The median that decides the score-reversed boundary. */
  median: number;
  /** Clean score q. */
  cleanScore: number;
  /** Adversarial score q' (8-bit adversarial frames). */
  advScore: number;
  /** |q' - q|. */
  absChange: number;
  /** |q' - q| / |q| (null when q is 0). */
  relChange: number | null;
  /**
   * Zhang et al.'s R = ln(|q - b| / (|q' - q| + 1e-12)), b the score-reversed boundary (null when
   * not finite: q exactly on the boundary).
   */
  r: number | null;
  /** MSU robustness score on min-max scaled scores (null when not finite). */
  robustness: number | null;
  /** PSNR of the 8-bit frames (dB, RGB, peak 1; null when identical). */
  psnr: number | null;
  /** Mean luma SSIM of the 8-bit frames. */
  ssim: number;
  /** Share of values with |d| > eps * J. */
  beyondJnd: number;
  /** Mean |d| in 8-bit levels. */
  meanAbsLevels: number;
  /** Attack wall seconds. */
  seconds: number;
  /** Victim passes of the attack. */
  victimPasses: number;
  /** Round trip (x264-420 crf 23 of the adversarial clip vs the clean clip): luma PSNR. */
  rtPsnr: number | null;
  /** Round trip: luma SSIM. */
  rtSsim: number;
  /** The victim's score of the decoded adversarial upload. */
  rtScore: number;
  /** The victim's score of the decoded clean upload. */
  cleanRtScore: number;
  /** The attack's eps. */
  eps: number;
  /** The seed of the row. */
  seed: number;
  /**
   * What else made the row; absent in rows written before eval recorded it, which a rerun
   * treats as made with unknown options.
   */
  settings?: EvalRowSettings;
  /**
   * Structure statistics of the 8-bit perturbation over the whole clip (`perturbationStructure`,
   * docs/eval.md "Structure statistics"): the direction ratio (target 0.67..1.5); null when
   * infinite. This and the six fields below are absent in rows written before eval recorded them.
   */
  structureDirection?: number | null;
  /** The strongest phase's ratio (target <= 1.25); null when infinite. */
  structurePhase?: number | null;
  /** The strongest spectral line over the median bin (target <= 30); null when infinite. */
  structureLine?: number | null;
  /** The direction ratio of the noise reference (i.i.d. noise of the same size, seeded by `seed`). */
  noiseDirection?: number | null;
  /** The strongest phase's ratio of the noise reference. */
  noisePhase?: number | null;
  /** The strongest spectral line of the noise reference. */
  noiseLine?: number | null;
  /** Whether the perturbation meets all three targets. */
  structureOk?: boolean;
  /**
   * The same statistics on the perturbation's chroma planes (Cb and Cr, BT.601), reduced to the
   * worse plane per statistic (`chromaSummary`): the direction ratio further from 1 in log terms;
   * null when infinite. This and the three fields below come together, absent in rows written
   * before eval recorded them.
   */
  chromaDirection?: number | null;
  /** The larger of the two planes' strongest-phase ratios; null when infinite. */
  chromaPhase?: number | null;
  /** The larger of the two planes' strongest-line ratios; null when infinite. */
  chromaLine?: number | null;
  /** Whether both chroma planes meet all three targets. */
  chromaOk?: boolean;
}

/** The row's structure fields, all present or all absent. */
const STRUCTURE_FIELDS = [
  "structureDirection",
  "structurePhase",
  "structureLine",
  "noiseDirection",
  "noisePhase",
  "noiseLine",
  "structureOk",
] as const;

/** The row's chroma structure fields, all present or all absent. */
const CHROMA_FIELDS = ["chromaDirection", "chromaPhase", "chromaLine", "chromaOk"] as const;

const evalRow = z.object({
  video: z.string(),
  index: z.number().int().nonnegative(),
  label: maybe,
  victim: z.string(),
  method: z.string(),
  frames: z.number().int().positive(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  qMin: num,
  qMax: num,
  median: num,
  cleanScore: num,
  advScore: num,
  absChange: num,
  relChange: maybe,
  r: maybe,
  robustness: maybe,
  psnr: maybe,
  ssim: num,
  beyondJnd: num,
  meanAbsLevels: num,
  seconds: num,
  victimPasses: z.number().int().nonnegative(),
  rtPsnr: maybe,
  rtSsim: num,
  rtScore: num,
  cleanRtScore: num,
  eps: num,
  seed: z.number().int(),
  settings: evalRowSettings.optional(),
  structureDirection: ratio.optional(),
  structurePhase: ratio.optional(),
  structureLine: ratio.optional(),
  noiseDirection: ratio.optional(),
  noisePhase: ratio.optional(),
  noiseLine: ratio.optional(),
  structureOk: z.boolean().optional(),
  chromaDirection: ratio.optional(),
  chromaPhase: ratio.optional(),
  chromaLine: ratio.optional(),
  chromaOk: z.boolean().optional(),
}).superRefine((row, ctx) => {
  for (
    const [fields, what] of [[STRUCTURE_FIELDS, "structure"], [CHROMA_FIELDS, "chroma"]] as const
  ) {
    const present = fields.filter((k) => row[k] !== undefined);
    if (present.length && present.length !== fields.length) {
      const missing = fields.find((k) => row[k] === undefined)!;
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: [missing],
        message: `${what} fields come together: ${present.join(", ")} given without ${missing}`,
      });
    }
  }
});
const _sameRow: SameShape<EvalRow, z.output<typeof evalRow>> = true;

/**
 * Validates an {@link EvalRow} (a line of rows.jsonl).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { EvalRowSchema } from "./robustness.ts";
 * const r = EvalRowSchema.safeParse({ video: "a.mkv", index: -1 });
 * assert.equal(r.success, false);
 * if (!r.success) assert.deepEqual(r.error.issues[0].path, ["index"]);
 * ```
 */
export const EvalRowSchema: Schema<EvalRow> = evalRow;

/**
 * The key that makes a row unique (and lets a rerun skip it).
 *
 * @example
 * ```ts
 * import { rowKey } from "./robustness.ts";
 * rowKey({ video: "a", victim: "vsfa-mini", method: "fgsm" }); // "a\u0000vsfa-mini\u0000fgsm"
 * ```
 */
export function rowKey(r: { video: string; victim: string; method: string }): string {
  return `${r.video}\u0000${r.victim}\u0000${r.method}`;
}

/** The scale of a victim's scores and the untargeted boundary's median. */
export interface ScoreRange {
  /** The lowest score of the victim's scale. */
  qMin: number;
  /** The highest score of the victim's scale. */
  qMax: number;
  /** Scores above it are pushed toward `qMin` by an untargeted attack, others toward `qMax`. */
  median: number;
}

/**
 * Zhang et al. 2023's `R = ln(|q - b| / (|q' - q| + 1e-12))`, `b` the score-reversed boundary of
 * the clean score q ({@link attackTarget}, untargeted). Lower is a stronger attack.
 *
 * @example
 * ```ts
 * import { zhangR } from "./robustness.ts";
 * zhangR(4, 3, { qMin: 1, qMax: 5, median: 3 }); // ln(3 / 1) = 1.0986
 * ```
 */
export function zhangR(clean: number, adv: number, range: ScoreRange): number {
  const b = attackTarget(clean, "untargeted", range);
  return Math.log(Math.abs(clean - b) / (Math.abs(adv - clean) + 1e-12));
}

/**
 * The MSU benchmark's robustness score `log10(max(1 - s, s) / (|s - s'| + 1e-6))` on min-max
 * scaled scores `s = (q - qMin) / (qMax - qMin)` (not clipped). Higher is a more robust victim.
 *
 * @example
 * ```ts
 * import { msuRobustness } from "./robustness.ts";
 * msuRobustness(4, 3, { qMin: 1, qMax: 5 }); // log10(0.75 / (0.25 + 1e-6)) = 0.4771
 * ```
 */
export function msuRobustness(
  clean: number,
  adv: number,
  range: { qMin: number; qMax: number },
): number {
  const span = range.qMax - range.qMin;
  const s = (clean - range.qMin) / span;
  const s2 = (adv - range.qMin) / span;
  return Math.log10(Math.max(1 - s, s) / (Math.abs(s - s2) + 1e-6));
}

/**
 * The median of the labels (mean of the middle two for an even count), or the midpoint of the
 * victim's scale when there are no labels: the boundary's median in an evaluation.
 *
 * @example
 * ```ts
 * import { labelMedian } from "./robustness.ts";
 * labelMedian([3, 1, 4, 2], { qMin: 1, qMax: 5 }); // 2.5
 * labelMedian([], { qMin: 1, qMax: 5 }); // 3
 * ```
 */
export function labelMedian(labels: number[], range: { qMin: number; qMax: number }): number {
  if (!labels.length) return (range.qMin + range.qMax) / 2;
  const s = [...labels].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Correlations of scores against labels (null with fewer than 3 labelled videos). */
export interface Accuracy {
  /** Spearman's rank correlation. */
  srcc: number | null;
  /** Kendall's tau-b. */
  krcc: number | null;
  /** Pearson's correlation after the 4-parameter logistic mapping. */
  plcc: number | null;
  /** Pearson's correlation of the raw scores. */
  plccRaw: number | null;
  /** Root mean squared error after the logistic mapping. */
  rmse: number | null;
}

/** One line of the table: a (victim, method) pair over its videos. */
export interface TableRow {
  /** The victim's name. */
  victim: string;
  /** The attack method (see {@link EVAL_METHODS}). */
  method: string;
  /** Videos measured. */
  videos: number;
  /** How many of the videos carry a label. */
  labelled: number;
  /** Accuracy of the clean scores against the labels. */
  before: Accuracy;
  /** Accuracy of the adversarial scores against the labels. */
  after: Accuracy;
  /** SRCC of the adversarial scores after the x264 round trip. */
  srccRoundTrip: number | null;
  /** SRCC of the clean scores after the same round trip (the upload's own effect). */
  srccCleanRoundTrip: number | null;
  /** Mean |adversarial score - clean score|. */
  meanAbsChange: number;
  /** Mean of the change relative to the clean score (over the finite ones). */
  meanRelChange: number | null;
  /** Mean |rtScore - cleanRtScore|: the change that survives an upload. */
  meanAbsChangeRoundTrip: number;
  /** Mean of Zhang et al.'s R ({@link zhangR}) over the videos where it is finite. */
  meanR: number | null;
  /** Mean of the MSU robustness score ({@link msuRobustness}) where it is finite. */
  meanRobustness: number | null;
  /** Mean PSNR (dB) over the videos where it is finite (null if none). */
  psnr: number | null;
  /** Mean SSIM. */
  ssim: number;
  /** Mean PSNR-Y (dB) after the x264 round trip, over the finite ones (null if none). */
  psnrRoundTrip: number | null;
  /** Mean SSIM-Y after the x264 round trip. */
  ssimRoundTrip: number;
  /** Mean share of values beyond the JND box. */
  beyondJnd: number;
  /** Mean |perturbation| in 8-bit levels. */
  meanAbsLevels: number;
  /** Seconds of attack per video. */
  secondsPerVideo: number;
  /** Frames attacked per second. */
  framesPerSecond: number;
  /** Mean victim passes (forward or backward) per video. */
  victimPassesPerVideo: number;
  /**
   * The structure statistics: medians over the videos whose rows carry them (an infinite ratio
   * counts as +Infinity; a median that is infinite is null, as in the rows) and the share of those
   * videos whose perturbation meets all three targets; null when no row carries them.
   */
  structure: {
    /** Videos whose rows carry the structure fields (older rows do not). */
    videos: number;
    /** Median direction ratio (target 0.67..1.5); null: infinite. */
    direction: number | null;
    /** Median strongest-phase ratio (target <= 1.25); null: infinite. */
    phase: number | null;
    /** Median strongest-line ratio (target <= 30); null: infinite. */
    line: number | null;
    /** Median direction ratio of the noise references. */
    noiseDirection: number | null;
    /** Median strongest-phase ratio of the noise references. */
    noisePhase: number | null;
    /** Median strongest-line ratio of the noise references. */
    noiseLine: number | null;
    /** Share of the videos (0..1) meeting all three targets. */
    okShare: number;
  } | null;
  /**
   * The chroma structure statistics (rows' `chromaDirection`, `chromaPhase`, `chromaLine`: the
   * worse of Cb and Cr): medians over the videos whose rows carry them, as for `structure`, and
   * the share of those videos whose two chroma planes meet all three targets; null when no row
   * carries them.
   */
  chroma: {
    /** Videos whose rows carry the chroma fields. */
    videos: number;
    /** Median of the rows' chroma direction ratio; null: infinite. */
    direction: number | null;
    /** Median of the rows' chroma strongest-phase ratio; null: infinite. */
    phase: number | null;
    /** Median of the rows' chroma strongest-line ratio; null: infinite. */
    line: number | null;
    /** Share of the videos (0..1) whose Cb and Cr both meet all three targets. */
    okShare: number;
  } | null;
}

function accuracy(scores: number[], labels: number[]): Accuracy {
  if (labels.length < 3) return { srcc: null, krcc: null, plcc: null, plccRaw: null, rmse: null };
  const c = correlationReport(scores, labels);
  const f = (v: number) => (Number.isFinite(v) ? v : null);
  return {
    srcc: f(c.srcc),
    krcc: f(c.krcc),
    plcc: f(c.plcc),
    plccRaw: f(c.plccRaw),
    rmse: f(c.rmse),
  };
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

/**
 * The median of ratios where null is +Infinity (the mean of the middle two for an even count),
 * returned with an infinite median as null.
 *
 * @example
 * ```ts
 * import { medianRatio } from "./robustness.ts";
 * medianRatio([3, null, 1]); // 3
 * medianRatio([1, null]); // null (the mean of 1 and +Infinity)
 * ```
 */
export function medianRatio(values: readonly (number | null)[]): number | null {
  if (!values.length) throw new RangeError("medianRatio: no values");
  const s = values.map((v) => v ?? Infinity).sort((a, b) => a - b);
  const m = s.length >> 1;
  const med = s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  return Number.isFinite(med) ? med : null;
}

/** A row's ratio fields that the table reduces to medians. */
type RatioField =
  | "structureDirection"
  | "structurePhase"
  | "structureLine"
  | "noiseDirection"
  | "noisePhase"
  | "noiseLine"
  | "chromaDirection"
  | "chromaPhase"
  | "chromaLine";

/**
 * Medians of a table line's rows that carry `ok` (null when none does): per output key the median
 * of its row field ({@link medianRatio}), the number of those videos and the share meeting `ok`.
 */
function tableMedians<K extends string>(
  g: readonly EvalRow[],
  ok: "structureOk" | "chromaOk",
  fields: Record<K, RatioField>,
): ({ videos: number; okShare: number } & Record<K, number | null>) | null {
  const s = g.filter((r) => r[ok] !== undefined);
  if (!s.length) return null;
  const medians = Object.fromEntries(
    Object.entries<RatioField>(fields).map((
      [k, f],
    ) => [k, medianRatio(s.map((r) => r[f] ?? null))]),
  ) as Record<K, number | null>;
  return { videos: s.length, ...medians, okShare: s.filter((r) => r[ok]).length / s.length };
}

/** The structure of a table line from its rows (null when none carries it). */
const tableStructure = (g: readonly EvalRow[]): TableRow["structure"] =>
  tableMedians(g, "structureOk", {
    direction: "structureDirection",
    phase: "structurePhase",
    line: "structureLine",
    noiseDirection: "noiseDirection",
    noisePhase: "noisePhase",
    noiseLine: "noiseLine",
  });

/** The chroma structure of a table line from its rows (null when none carries it). */
const tableChroma = (g: readonly EvalRow[]): TableRow["chroma"] =>
  tableMedians(g, "chromaOk", {
    direction: "chromaDirection",
    phase: "chromaPhase",
    line: "chromaLine",
  });

const meanFinite = (v: (number | null)[]) => {
  const f = v.filter((x): x is number => x !== null && Number.isFinite(x));
  return f.length ? mean(f) : null;
};

/**
 * The table of rows: one line per (victim, method), victims in order of first appearance and
 * methods in {@link EVAL_METHODS} order (others after, by name); within a pair, rows are taken
 * in video-index order, so the table does not depend on the order rows were written (shards).
 * Means of values that can be null (PSNR, R, ...) are over the finite ones (null if none).
 *
 * @example
 * ```ts
 * import { buildTable } from "./robustness.ts";
 * // const table = buildTable(rows);
 * // console.log(table[0].after.srcc, table[0].meanR);
 * ```
 */
export function buildTable(rows: readonly EvalRow[]): TableRow[] {
  const victims: string[] = [];
  for (const r of rows) if (!victims.includes(r.victim)) victims.push(r.victim);
  const order = (m: string) => {
    const i = (EVAL_METHODS as readonly string[]).indexOf(m);
    return i < 0 ? EVAL_METHODS.length : i;
  };
  const out: TableRow[] = [];
  for (const victim of victims) {
    const mine = rows.filter((r) => r.victim === victim);
    const methods = [...new Set(mine.map((r) => r.method))].sort((a, b) =>
      order(a) - order(b) || (a < b ? -1 : a > b ? 1 : 0)
    );
    for (const method of methods) {
      const g = mine.filter((r) => r.method === method).sort((a, b) => a.index - b.index);
      const lab = g.filter((r) => r.label !== null);
      const labels = lab.map((r) => r.label!);
      const frames = g.reduce((a, r) => a + r.frames, 0);
      const seconds = g.reduce((a, r) => a + r.seconds, 0);
      out.push({
        victim,
        method,
        videos: g.length,
        labelled: lab.length,
        before: accuracy(lab.map((r) => r.cleanScore), labels),
        after: accuracy(lab.map((r) => r.advScore), labels),
        srccRoundTrip: accuracy(lab.map((r) => r.rtScore), labels).srcc,
        srccCleanRoundTrip: accuracy(lab.map((r) => r.cleanRtScore), labels).srcc,
        meanAbsChange: mean(g.map((r) => r.absChange)),
        meanRelChange: meanFinite(g.map((r) => r.relChange)),
        meanAbsChangeRoundTrip: mean(g.map((r) => Math.abs(r.rtScore - r.cleanRtScore))),
        meanR: meanFinite(g.map((r) => r.r)),
        meanRobustness: meanFinite(g.map((r) => r.robustness)),
        psnr: meanFinite(g.map((r) => r.psnr)),
        ssim: mean(g.map((r) => r.ssim)),
        psnrRoundTrip: meanFinite(g.map((r) => r.rtPsnr)),
        ssimRoundTrip: mean(g.map((r) => r.rtSsim)),
        beyondJnd: mean(g.map((r) => r.beyondJnd)),
        meanAbsLevels: mean(g.map((r) => r.meanAbsLevels)),
        secondsPerVideo: seconds / g.length,
        framesPerSecond: seconds > 0 ? frames / seconds : 0,
        victimPassesPerVideo: mean(g.map((r) => r.victimPasses)),
        structure: tableStructure(g),
        chroma: tableChroma(g),
      });
    }
  }
  return out;
}

/** The table's columns, flattened (CSV header order).
 *
 * @example
 * ```ts
 * import { TABLE_COLUMNS } from "./robustness.ts";
 * console.log(TABLE_COLUMNS.join(","));
 * ```
 */
export const TABLE_COLUMNS = [
  "victim",
  "method",
  "videos",
  "labelled",
  "srccBefore",
  "krccBefore",
  "plccBefore",
  "plccRawBefore",
  "rmseBefore",
  "srccAfter",
  "krccAfter",
  "plccAfter",
  "plccRawAfter",
  "rmseAfter",
  "srccRoundTrip",
  "srccCleanRoundTrip",
  "meanAbsChange",
  "meanRelChange",
  "meanAbsChangeRoundTrip",
  "meanR",
  "meanRobustness",
  "psnr",
  "ssim",
  "psnrRoundTrip",
  "ssimRoundTrip",
  "beyondJnd",
  "meanAbsLevels",
  "secondsPerVideo",
  "framesPerSecond",
  "victimPassesPerVideo",
  "structureVideos",
  "structureDirection",
  "structurePhase",
  "structureLine",
  "noiseDirection",
  "noisePhase",
  "noiseLine",
  "structureOkShare",
  "chromaVideos",
  "chromaDirection",
  "chromaPhase",
  "chromaLine",
  "chromaOkShare",
] as const;

/**
 * A table line as a flat record of {@link TABLE_COLUMNS}. The structure (chroma) columns are empty
 * (null) when no row carries the statistics (`structureVideos`, `chromaVideos` 0), and an infinite
 * median is `"inf"`.
 *
 * @example
 * ```ts
 * import { flattenRow } from "./robustness.ts";
 * // flattenRow(table[0]).srccAfter
 * ```
 */
export function flattenRow(t: TableRow): Record<string, string | number | null> {
  const { before: b, after: a, structure: st, chroma: ch, ...rest } = t;
  const inf = (v: number | null | undefined) => (v === undefined ? null : v ?? "inf");
  return {
    ...rest,
    structureVideos: st?.videos ?? 0,
    structureDirection: inf(st?.direction),
    structurePhase: inf(st?.phase),
    structureLine: inf(st?.line),
    noiseDirection: inf(st?.noiseDirection),
    noisePhase: inf(st?.noisePhase),
    noiseLine: inf(st?.noiseLine),
    structureOkShare: st?.okShare ?? null,
    chromaVideos: ch?.videos ?? 0,
    chromaDirection: inf(ch?.direction),
    chromaPhase: inf(ch?.phase),
    chromaLine: inf(ch?.line),
    chromaOkShare: ch?.okShare ?? null,
    srccBefore: b.srcc,
    krccBefore: b.krcc,
    plccBefore: b.plcc,
    plccRawBefore: b.plccRaw,
    rmseBefore: b.rmse,
    srccAfter: a.srcc,
    krccAfter: a.krcc,
    plccAfter: a.plcc,
    plccRawAfter: a.plccRaw,
    rmseAfter: a.rmse,
  };
}

/**
 * The table as CSV (header {@link TABLE_COLUMNS}; empty cells for null, `inf` for an infinite
 * structure median; full precision).
 *
 * @example
 * ```ts
 * import { tableCsv } from "./robustness.ts";
 * // await Deno.writeTextFile("table.csv", tableCsv(table));
 * ```
 */
export function tableCsv(table: readonly TableRow[]): string {
  const cell = (v: string | number | null) =>
    v === null
      ? ""
      : typeof v === "number"
      ? String(v)
      : /[",\n]/.test(v)
      ? `"${v.replaceAll('"', '""')}"`
      : v;
  const lines = [TABLE_COLUMNS.join(",")];
  for (const t of table) {
    const f = flattenRow(t);
    lines.push(TABLE_COLUMNS.map((c) => cell(f[c] ?? null)).join(","));
  }
  return lines.join("\n") + "\n";
}

/**
 * The headers of a table line's structure cells ({@link structureCells}) in table.md and
 * report.html.
 *
 * @example
 * ```ts
 * import { STRUCTURE_HEAD } from "./robustness.ts";
 * console.log(STRUCTURE_HEAD.join(" | ")); // dir (noise) | phase (noise) | line (noise) | targets
 * ```
 */
export const STRUCTURE_HEAD = ["dir (noise)", "phase (noise)", "line (noise)", "targets"] as const;

/**
 * A table line's structure statistics as short text cells (headers {@link STRUCTURE_HEAD}): each
 * median with the noise reference's in parentheses (`inf` when infinite; direction and phase to 2
 * decimals, line to 1), then the share of videos meeting all three targets in percent; `-`
 * everywhere when no row carries the statistics.
 *
 * @example
 * ```ts
 * import { structureCells } from "./robustness.ts";
 * structureCells({
 *   videos: 2, direction: 1.02, phase: 1.31, line: null,
 *   noiseDirection: 1, noisePhase: 1.05, noiseLine: 2.1, okShare: 0.5,
 * }); // ["1.02 (1.00)", "1.31 (1.05)", "inf (2.1)", "50%"]
 * ```
 */
export function structureCells(st: TableRow["structure"]): string[] {
  if (!st) return STRUCTURE_HEAD.map(() => "-");
  const r = (v: number | null, d: number) => (v === null ? "inf" : v.toFixed(d));
  return [
    `${r(st.direction, 2)} (${r(st.noiseDirection, 2)})`,
    `${r(st.phase, 2)} (${r(st.noisePhase, 2)})`,
    `${r(st.line, 1)} (${r(st.noiseLine, 1)})`,
    `${(100 * st.okShare).toFixed(0)}%`,
  ];
}

/**
 * The headers of a table line's chroma cells ({@link chromaCells}) in table.md and report.html.
 *
 * @example
 * ```ts
 * import { CHROMA_HEAD } from "./robustness.ts";
 * console.log(CHROMA_HEAD.join(" | ")); // chroma line | chroma ok
 * ```
 */
export const CHROMA_HEAD = ["chroma line", "chroma ok"] as const;

/**
 * A table line's chroma structure as two short text cells (headers {@link CHROMA_HEAD}): the
 * median chroma line ratio (the worse of Cb and Cr per video; `inf` when infinite, 1 decimal) and
 * the share of videos whose two chroma planes meet all three targets, in percent; `-` when no row
 * carries the chroma statistics. The medians of the chroma direction and phase are in table.json
 * and table.csv.
 *
 * @example
 * ```ts
 * import { chromaCells } from "./robustness.ts";
 * chromaCells({ videos: 4, direction: 1.1, phase: 1.2, line: 41.26, okShare: 0.25 }); // ["41.3", "25%"]
 * ```
 */
export function chromaCells(ch: TableRow["chroma"]): string[] {
  if (!ch) return CHROMA_HEAD.map(() => "-");
  return [ch.line === null ? "inf" : ch.line.toFixed(1), `${(100 * ch.okShare).toFixed(0)}%`];
}

/**
 * The table as Markdown: the headline columns, rounded. The structure columns `dir`, `phase` and
 * `line` hold the medians over videos with the noise reference's median in parentheses
 * (`inf`: infinite, `-`: rows without the statistics); `targets` is the share of videos meeting
 * all three; `chroma line` and `chroma ok` the same for the chroma planes ({@link chromaCells}).
 *
 * @example
 * ```ts
 * import { tableMarkdown } from "./robustness.ts";
 * // console.log(tableMarkdown(table));
 * ```
 */
export function tableMarkdown(table: readonly TableRow[]): string {
  const f = (v: number | null, d = 3) => (v === null ? "-" : v.toFixed(d));
  const head = [
    "victim",
    "method",
    "n",
    "SRCC clean",
    "SRCC adv",
    "SRCC adv (x264)",
    "PLCC adv",
    "RMSE adv",
    "mean abs change",
    "rel change",
    "R",
    "robustness",
    "PSNR",
    "SSIM",
    "PSNR-Y x264",
    "SSIM-Y x264",
    "beyond JND",
    "mean abs d (levels)",
    "s/video",
    ...STRUCTURE_HEAD,
    ...CHROMA_HEAD,
  ];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const t of table) {
    lines.push(
      `| ${
        [
          t.victim,
          t.method,
          String(t.videos),
          f(t.before.srcc),
          f(t.after.srcc),
          f(t.srccRoundTrip),
          f(t.after.plcc),
          f(t.after.rmse),
          f(t.meanAbsChange),
          f(t.meanRelChange),
          f(t.meanR),
          f(t.meanRobustness),
          f(t.psnr, 2),
          f(t.ssim, 4),
          f(t.psnrRoundTrip, 2),
          f(t.ssimRoundTrip, 4),
          `${(100 * t.beyondJnd).toFixed(2)}%`,
          f(t.meanAbsLevels, 2),
          f(t.secondsPerVideo, 2),
          ...structureCells(t.structure),
          ...chromaCells(t.chroma),
        ].join(" | ")
      } |`,
    );
  }
  return lines.join("\n") + "\n";
}
