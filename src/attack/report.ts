/**
 * The per-video report of `deno task attack` (out/<name>/report.json): what was attacked, with
 * which victim and generator, and for each attack run the scores, the imperceptibility
 * measurements and the time taken. Validated with zod when written and when read back.
 *
 * PSNR is infinite for identical frames; JSON has no infinity, so such values are `null`.
 *
 * @module
 */

import { z } from "zod";
import { formatZodError, type SameShape, type Schema } from "../_zod.ts";
import {
  type ChromaStructure,
  STRUCTURE_TARGETS,
  type StructureResult,
  type StructureStats,
} from "../metrics/structure.ts";
import type { GeneratorVariant } from "../models/stqa_net.ts";

const finite = z.number().finite();
/** PSNR in dB; null means identical (infinite PSNR). */
const db = finite.nullable();

/** A ratio of the structure statistics; null means infinite (a zero denominator). */
const ratio = z.number().finite().min(0).nullable();
const levels = z.number().finite().min(0);
const tile = z.number().int().positive();

/** {@link StructureStats}: its ranges, and verdicts that agree with its values. */
const structureObject = z.object({
  frames: z.number().int().positive(),
  meanAbsLevels: levels,
  direction: z.object({ ratio, horizontalLevels: levels, verticalLevels: levels }).strict(),
  phase: z.object({
    ratio,
    axis: z.enum(["column", "row"]),
    period: z.number().int().min(2).max(16),
    phase: z.number().int().min(0),
  }).strict(),
  line: z.object({
    ratio,
    fx: z.number().min(0).max(0.5),
    fy: z.number().min(-0.5).max(0.5),
    tileWidth: tile,
    tileHeight: tile,
  }).strict(),
  targets: z.object({
    direction: z.boolean(),
    phase: z.boolean(),
    line: z.boolean(),
    all: z.boolean(),
  }).strict(),
}).strict();
const _sameStructure: SameShape<StructureStats, z.output<typeof structureObject>> = true;

const structureStats = structureObject.superRefine((s, ctx) => {
  const issue = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: z.ZodIssueCode.custom, path, message });
  if (s.phase.phase >= s.phase.period) {
    issue(["phase", "phase"], `phase ${s.phase.phase} is not below period ${s.phase.period}`);
  }
  const t = STRUCTURE_TARGETS;
  const d = s.direction.ratio;
  const want = {
    direction: d !== null && d >= t.directionMin && d <= t.directionMax,
    phase: s.phase.ratio !== null && s.phase.ratio <= t.phaseMax,
    line: s.line.ratio !== null && s.line.ratio <= t.lineMax,
  };
  for (const k of ["direction", "phase", "line"] as const) {
    if (s.targets[k] !== want[k]) {
      issue(["targets", k], `${s.targets[k]} disagrees with the ratio (target met: ${want[k]})`);
    }
  }
  if (s.targets.all !== (want.direction && want.phase && want.line)) {
    issue(["targets", "all"], `${s.targets.all} disagrees with the three targets`);
  }
});

/** {@link ChromaStructure}: the statistics of the Cb and Cr planes. */
const chromaStats = z.object({ cb: structureStats, cr: structureStats }).strict();

/** One attack of one video (one mode). */
export interface AttackRun {
  /** `untargeted`, `up` or `down`. */
  mode: "untargeted" | "up" | "down";
  /** The generator branch used (0 = up or the only one, 1 = down). */
  branch: number;
  /** The adversarial video, relative to the report's folder. */
  output: string;
  /** Its codec. */
  codec: "ffv1" | "x264-444" | "x264-420";
  /** The score the attack pushes toward. */
  target: number;
  /** The victim's score of the adversarial video as written (8-bit). */
  score: number;
  /** Per-frame scores of the adversarial video, where the victim has them. */
  frameScores: number[] | null;
  /** score - clean score. */
  scoreChange: number;
  /**
   * PSNR (dB) of the adversarial frames against the clean ones: the video's (from its mean MSE)
   * and per frame; null for identical frames (infinite PSNR).
   */
  psnr: { mean: number | null; frames: (number | null)[] };
  /** SSIM (BT.601 luma, Gaussian 11x11): mean and per frame. */
  ssim: { mean: number; frames: number[] };
  /** Share of values with |d| > eps * J (must be 0 for STQA-Net). */
  beyondJnd: number;
  /** Mean |d| in 8-bit levels. */
  meanAbsLevels: number;
  /** Largest |d| in 8-bit levels. */
  maxAbsLevels: number;
  /** Seconds: the generator (with JND maps and quantisation), the victim's scoring, encoding. */
  seconds: { generator: number; victim: number; encode: number };
  /**
   * Structure statistics of the perturbation (luma of the quantised frames against the clean
   * ones: direction ratio, strongest phase, strongest spectral line, the targets' verdicts; see
   * docs/attack.md, "Structure statistics"). Absent in reports of earlier versions.
   */
  structure?: StructureStats;
  /** The same statistics of i.i.d. noise with the same mean |d| per frame (the reference). */
  structureNoise?: StructureStats;
  /**
   * The same statistics on the perturbation's chroma planes (BT.601 Cb and Cr), each plane on its
   * own. Absent in reports of earlier versions.
   */
  structureChroma?: ChromaStructure;
  /** Those of each chroma plane's noise reference (same mean |d| per frame as that plane). */
  structureChromaNoise?: ChromaStructure;
}

const attackRun = z.object({
  /** `untargeted`, `up` or `down`. */
  mode: z.enum(["untargeted", "up", "down"]),
  /** The generator branch used (0 = up or the only one, 1 = down). */
  branch: z.number().int().min(0),
  /** The adversarial video, relative to the report's folder. */
  output: z.string().min(1),
  /** Its codec. */
  codec: z.enum(["ffv1", "x264-444", "x264-420"]),
  /** The score the attack pushes toward. */
  target: finite,
  /** The victim's score of the adversarial video as written (8-bit). */
  score: finite,
  /** Per-frame scores of the adversarial video, where the victim has them. */
  frameScores: z.array(finite).nullable(),
  /** score - clean score. */
  scoreChange: finite,
  /** PSNR (dB) of the adversarial frames against the clean ones: the video's (from its mean MSE) and per frame. */
  psnr: z.object({ mean: db, frames: z.array(db) }),
  /** SSIM (BT.601 luma, Gaussian 11x11): mean and per frame. */
  ssim: z.object({ mean: finite, frames: z.array(finite) }),
  /** Share of values with |d| > eps * J (must be 0 for STQA-Net). */
  beyondJnd: z.number().min(0).max(1),
  /** Mean |d| in 8-bit levels. */
  meanAbsLevels: z.number().min(0),
  /** Largest |d| in 8-bit levels. */
  maxAbsLevels: z.number().min(0),
  /** Seconds: the generator (with JND maps and quantisation), the victim's scoring, encoding. */
  seconds: z.object({
    generator: z.number().min(0),
    victim: z.number().min(0),
    encode: z.number().min(0),
  }),
  /** Structure statistics of the perturbation (absent in reports of earlier versions). */
  structure: structureStats.optional(),
  /** The same statistics of the noise reference (absent in reports of earlier versions). */
  structureNoise: structureStats.optional(),
  /** The statistics of the chroma planes (absent in reports of earlier versions). */
  structureChroma: chromaStats.optional(),
  /** Those of the chroma planes' noise references (absent in reports of earlier versions). */
  structureChromaNoise: chromaStats.optional(),
}).strict();

/**
 * The structure fields of an {@link AttackRun} from the statistics of its perturbation:
 * `structure` and `structureNoise` (luma), `structureChroma` and `structureChromaNoise`.
 *
 * @example
 * ```ts
 * import { structureFields } from "./report.ts";
 * import { perturbationStructure } from "../metrics/structure.ts";
 * const clean = new Float32Array(3 * 64).fill(0.5);
 * const adv = clean.map((v, i) => v + (i % 3 ? 1 / 255 : 0));
 * const fields = structureFields(perturbationStructure(clean, adv, [1, 3, 8, 8]));
 * console.log(Object.keys(fields)); // structure, structureNoise, structureChroma, structureChromaNoise
 * ```
 */
export function structureFields(
  r: StructureResult,
): Pick<AttackRun, "structure" | "structureNoise" | "structureChroma" | "structureChromaNoise"> {
  return {
    structure: r.structure,
    structureNoise: r.structureNoise,
    structureChroma: r.chroma,
    structureChromaNoise: r.chromaNoise,
  };
}

/** The schema of {@link AttackRun}. */
export const AttackRunSchema: Schema<AttackRun> = attackRun;

/**
 * The options that decide an attack's result, recorded in report.json so that a rerun into the
 * same output folder can tell a finished video (same options: skipped) from one made otherwise
 * (refused unless `--overwrite`). The seed and the chunk size are not among them: the generator
 * is deterministic and its GRU state is carried across chunks.
 */
export interface AttackSettings {
  /** The input file: its real path, size in bytes and modification time (ISO 8601, or null). */
  input: { path: string; bytes: number; modified: string | null };
  /** The victim's name and the SHA-256 of its weights file. */
  victim: { name: string; weights: string };
  /** The generator's weights file and its SHA-256. */
  generator: { path: string; weights: string };
  /** `untargeted`, `up`, `down` or `both`. */
  mode: "untargeted" | "up" | "down" | "both";
  /** Multiple of the JND allowed. */
  eps: number;
  /** Codec of the written video. */
  codec: "ffv1" | "x264-444" | "x264-420";
  /** `--frames`, or null for all. */
  frames: number | null;
  /** `--size`, or null for the video's own. */
  size: { width: number | null; height: number | null } | null;
  /** JND model of the maps. */
  jnd: string;
}

const attackSettings = z.object({
  /** The input file: its real path, size in bytes and modification time (ISO 8601, or null). */
  input: z.object({
    path: z.string().min(1),
    bytes: z.number().int().nonnegative(),
    modified: z.string().nullable(),
  }).strict(),
  /** The victim's name and the SHA-256 of its weights file. */
  victim: z.object({ name: z.string(), weights: z.string() }).strict(),
  /** The generator's weights file and its SHA-256. */
  generator: z.object({ path: z.string(), weights: z.string() }).strict(),
  /** `untargeted`, `up`, `down` or `both`. */
  mode: z.enum(["untargeted", "up", "down", "both"]),
  /** Multiple of the JND allowed. */
  eps: z.number().positive(),
  /** Codec of the written video. */
  codec: z.enum(["ffv1", "x264-444", "x264-420"]),
  /** `--frames`, or null for all. */
  frames: z.number().int().positive().nullable(),
  /** `--size`, or null for the video's own. */
  size: z.object({
    width: z.number().int().positive().nullable(),
    height: z.number().int().positive().nullable(),
  })
    .strict().nullable(),
  /** JND model of the maps. */
  jnd: z.string(),
}).strict();

/** The schema of {@link AttackSettings}. */
export const AttackSettingsSchema: Schema<AttackSettings> = attackSettings;

/**
 * The options that differ between two records, in words: `["eps 1 -> 4", "codec ffv1 ->
 * x264-444"]` (empty when they are the same).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { attackSettingsDiff } from "./report.ts";
 * const a = {
 *   input: { path: "/v/a.mkv", bytes: 10, modified: null },
 *   victim: { name: "vsfa-mini", weights: "ab" },
 *   generator: { path: "g.safetensors", weights: "cd" },
 *   mode: "untargeted" as const,
 *   eps: 1,
 *   codec: "ffv1" as const,
 *   frames: null,
 *   size: null,
 *   jnd: "namm-st",
 * };
 * assert.deepEqual(attackSettingsDiff(a, { ...a, eps: 4 }), ["eps 1 -> 4"]);
 * ```
 */
export function attackSettingsDiff(before: AttackSettings, now: AttackSettings): string[] {
  const out: string[] = [];
  const show = (v: unknown) => typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
  const walk = (a: unknown, b: unknown, key: string) => {
    if (
      typeof a === "object" && a !== null && typeof b === "object" && b !== null &&
      !Array.isArray(a)
    ) {
      const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
      for (const k of keys) {
        walk(
          (a as Record<string, unknown>)[k],
          (b as Record<string, unknown>)[k],
          key ? `${key}.${k}` : k,
        );
      }
    } else if (show(a) !== show(b)) out.push(`${key} ${show(a)} -> ${show(b)}`);
  };
  walk(before, now, "");
  return out;
}

/** out/<name>/report.json. */
export interface AttackReport {
  /** Schema version. */
  version: 1;
  /** When it was made (ISO 8601). */
  created: string;
  /** The input video. */
  input: string;
  /** The name of its output folder. */
  name: string;
  /** The label of the video when the input was a manifest, else null. */
  label: number | null;
  /** The frames attacked. */
  video: {
    frames: number;
    width: number;
    height: number;
    /** Frames per second written (the average rate, for a variable-rate source). */
    fps: number;
    /** Present (true) when the source's frame rate varies: it is written as constant `fps`. */
    variableFrameRate?: true;
  };
  /** The victim. */
  victim: { name: string; family: string };
  /** The generator. */
  generator: { path: string; variant: GeneratorVariant; trainedAgainst: string };
  /** JND model of the maps. */
  jnd: string;
  /** Multiple of the JND allowed. */
  eps: number;
  /** Seed recorded for the run (the generator itself is deterministic). */
  seed: number;
  /** Frames per chunk the generator ran on (the GRU state is carried across chunks). */
  chunkFrames: number;
  /** The victim's scores of the clean video (decoded, scaled as attacked). */
  clean: { score: number; frameScores: number[] | null };
  /** One entry per mode run. */
  attacks: AttackRun[];
  /** Wall seconds for the whole video (reading included). */
  seconds: number;
  /** The options that decide the result (absent in reports of earlier versions). */
  settings?: AttackSettings;
}

const attackReport = z.object({
  /** Schema version. */
  version: z.literal(1),
  /** When it was made (ISO 8601). */
  created: z.string().datetime(),
  /** The input video. */
  input: z.string().min(1),
  /** The name of its output folder. */
  name: z.string().min(1),
  /** The label of the video when the input was a manifest, else null. */
  label: finite.nullable(),
  /** The frames attacked. */
  video: z.object({
    frames: z.number().int().positive(),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    fps: z.number().positive(),
    variableFrameRate: z.literal(true).optional(),
  }).strict(),
  /** The victim. */
  victim: z.object({ name: z.string(), family: z.string() }).strict(),
  /** The generator. */
  generator: z.object({
    path: z.string(),
    variant: z.enum(["untargeted", "two-branch", "signed"]),
    trainedAgainst: z.string(),
  }).strict(),
  /** JND model of the maps. */
  jnd: z.string(),
  /** Multiple of the JND allowed. */
  eps: z.number().positive(),
  /** Seed recorded for the run (the generator itself is deterministic). */
  seed: z.number().int().nonnegative(),
  /** Frames per chunk the generator ran on (the GRU state is carried across chunks). */
  chunkFrames: z.number().int().positive(),
  /** The victim's scores of the clean video (decoded, scaled as attacked). */
  clean: z.object({ score: finite, frameScores: z.array(finite).nullable() }).strict(),
  /** One entry per mode run. */
  attacks: z.array(attackRun).min(1),
  /** Wall seconds for the whole video (reading included). */
  seconds: z.number().min(0),
  /** The options that decide the result (absent in reports of earlier versions). */
  settings: attackSettings.optional(),
}).strict();

/** The schema of {@link AttackReport}, out/<name>/report.json. */
export const AttackReportSchema: Schema<AttackReport> = attackReport;

/**
 * Validates a report (an object or JSON text); throws an Error naming the field and the source.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { parseAttackReport } from "./report.ts";
 * // A report written by `deno task attack` reads back typed: parseAttackReport(text, file).
 * assert.throws(
 *   () => parseAttackReport('{"version": 1}', "report.json"),
 *   /^Error: report\.json: invalid attack report: created: Required/,
 * );
 * ```
 */
export function parseAttackReport(value: unknown, source = "report"): AttackReport {
  let v = value;
  if (typeof value === "string") {
    try {
      v = JSON.parse(value);
    } catch (e) {
      throw new Error(`${source}: not JSON: ${(e as Error).message}`);
    }
  }
  const r = attackReport.safeParse(v);
  if (!r.success) throw new Error(`${source}: invalid attack report: ${formatZodError(r.error)}`);
  return r.data;
}
