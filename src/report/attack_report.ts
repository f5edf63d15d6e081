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
import { formatZodError } from "../_zod.ts";

const finite = z.number().finite();
/** PSNR in dB; null means identical (infinite PSNR). */
const db = finite.nullable();

/** One attack of one video (one mode). */
export const AttackRunSchema = z.object({
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
}).strict();

/** One attack of one video. */
export type AttackRun = z.infer<typeof AttackRunSchema>;

/** out/<name>/report.json. */
export const AttackReportSchema = z.object({
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
  }).strict(),
  /** The victim. */
  victim: z.object({ name: z.string(), family: z.string() }).strict(),
  /** The generator. */
  generator: z.object({
    path: z.string(),
    variant: z.enum(["untargeted", "two-branch"]),
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
  attacks: z.array(AttackRunSchema).min(1),
  /** Wall seconds for the whole video (reading included). */
  seconds: z.number().min(0),
}).strict();

/** out/<name>/report.json. */
export type AttackReport = z.infer<typeof AttackReportSchema>;

/**
 * Validates a report (an object or JSON text); throws an Error naming the field and the source.
 *
 * @example
 * ```ts
 * import { parseAttackReport } from "./attack_report.ts";
 * const text = await Deno.readTextFile("out/astronaut_pan/report.json");
 * const report = parseAttackReport(text, "out/astronaut_pan/report.json");
 * console.log(report.clean.score, report.attacks[0].score);
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
  const r = AttackReportSchema.safeParse(v);
  if (!r.success) throw new Error(`${source}: invalid attack report: ${formatZodError(r.error)}`);
  return r.data;
}
