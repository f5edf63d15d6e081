/**
 * Training a victim on the proxy dataset: Adam on mini-batches of clips held in memory, a
 * seeded batch sampler, atomic checkpoints that `resume` continues from, a clear stop on a
 * non-finite loss (the last good checkpoint is kept), and the test-split metrics at the end.
 *
 * @module
 */

import { join } from "path";
import { z } from "zod";
import { loadManifest } from "../data/manifest.ts";
import { correlationReport } from "../metrics/correlation.ts";
import { writeBuffer } from "../gpu/queue.ts";
import { FFMPEG_BASE, fileArg, toolBinary } from "../video/_ffmpeg.ts";
import { abs, add, l1Loss, mean, mseLoss, mul, permute, relu, stack, sub } from "../nn/mod.ts";
import { Adam } from "../optim/optimizers.ts";
import {
  CheckpointError,
  loadTrainingCheckpoint,
  nonFiniteLossMessage,
  NonFiniteParameterError,
  prepareCheckpointDir,
  prepareWeightsOutput,
  readTrainingCheckpoint,
  saveTrainingCheckpoint,
} from "../io/checkpoint.ts";
import { printProgress } from "../_progress.ts";
import { noGrad, type Tensor, tensor, tidy } from "../tensor/tensor.ts";
import {
  checkVictimConfig,
  createVictim,
  readVictimClip,
  saveVictim,
} from "../models/victims/mod.ts";
import type { Victim, VictimFamily } from "../models/victims/victim.ts";

/** Options of {@link trainVictim}. */
export interface TrainVictimOptions {
  /** The family to train. */
  model: VictimFamily;
  /** The proxy manifest (default `cache/proxy/manifest.json`). */
  manifest?: string;
  /**
   * Where the weights go: `<out>.safetensors` and `<out>.json` (default `data/models/<model>`,
   * the bundled weights: pass `overwrite` to replace them).
   */
  out?: string;
  /** Optimiser steps (default 400). */
  steps?: number;
  /** Clips per step (default 8). */
  batch?: number;
  /** Peak learning rate; cosine decay to a tenth of it (default 2e-3). */
  lr?: number;
  /** Loss on the label (default "mse"). */
  loss?: "mse" | "l1";
  /** Seed of the initial weights and of the batch sampler (default 1). */
  seed?: number;
  /** Steps between checkpoints (default 50). */
  checkpointEvery?: number;
  /** Checkpoint folder (default `cache/victims/<model>`). */
  checkpointDir?: string;
  /** Continue from the checkpoint in `checkpointDir`. */
  resume?: boolean;
  /**
   * Replace weights already at `<out>.safetensors` / `<out>.json` (default false: an existing
   * file is refused before training starts).
   */
  overwrite?: boolean;
  /** Config overrides for the family. */
  config?: Record<string, unknown>;
  /** The command line to record in the JSON beside the weights. */
  command?: string;
  /** Progress callback (default: a `\r` progress line on stderr). */
  onProgress?: (p: TrainProgress) => void;
  /** Stop after this many steps in this run (for tests of resuming); default no limit. */
  stopAfter?: number;
  /** See {@link FitVictimOptions.rankWeight} (default 0). */
  rankWeight?: number;
  /** See {@link FitVictimOptions.rankMargin} (default 0.1). */
  rankMargin?: number;
  /** Adam's L2 weight decay (default 0). */
  weightDecay?: number;
  /** Random transposes of the training clips (default false). */
  augment?: boolean;
  /**
   * Steps between validations on the val split; the best step's weights are kept (default 0:
   * no validation, the last step's weights are kept).
   */
  evalEvery?: number;
}

/** What {@link TrainVictimOptions.onProgress} receives. */
export interface TrainProgress {
  /** Steps done. */
  step: number;
  /** Total steps. */
  steps: number;
  /** Loss of the last step. */
  loss: number;
  /** Mean loss over the last 20 steps. */
  smoothed: number;
  /** Learning rate of the last step. */
  lr: number;
  /** Seconds since this run started. */
  elapsed: number;
}

/** The test-split metrics. */
export interface VictimMetrics {
  /** Test clips. */
  n: number;
  /** Spearman. */
  srcc: number;
  /** Kendall tau-b. */
  krcc: number;
  /** Pearson after the 4-parameter logistic fit. */
  plcc: number;
  /** Pearson of the raw scores. */
  plccRaw: number;
  /** RMSE after the logistic fit. */
  rmse: number;
  /** RMSE of the raw scores. */
  rmseRaw: number;
}

/** What {@link trainVictim} returns. */
export interface TrainVictimResult {
  /** The trained victim (the caller disposes it). */
  victim: Victim;
  /** Test-split metrics. */
  test: VictimMetrics;
  /** Files written. */
  weights: string;
  /** The JSON beside the weights. */
  json: string;
  /** Seconds spent training in this run (loading and evaluation excluded). */
  trainSeconds: number;
  /** Losses of the steps run in this call. */
  losses: number[];
}

/** The training loss became NaN or infinite; the message names the step and the checkpoint.
 *
 * @example
 * ```ts
 * import { fitVictim, NonFiniteLossError } from "./victim.ts";
 * try {
 *   // await fitVictim(victim, clips, { checkpointDir: "cache/victims/x" });
 * } catch (e) {
 *   if (e instanceof NonFiniteLossError) console.error(e.message);
 * }
 * ```
 */
export class NonFiniteLossError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NonFiniteLossError";
  }
}

/** A small serialisable generator (mulberry32); `state` is one uint32.
 *
 * @example
 * ```ts
 * import { BatchSampler } from "./victim.ts";
 * const s = new BatchSampler(1);
 * const batch = s.pick(441, 8); // 8 distinct clip indices
 * const saved = s.state; // restore with s.state = saved
 * ```
 */
export class BatchSampler {
  /** The generator state. */
  state: number;
  constructor(seed: number) {
    this.state = (seed * 0x9e3779b1) >>> 0;
  }
  /** A uniform draw in [0, 1). */
  uniform(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** `k` distinct indices in [0, n) (all of them, shuffled, when k >= n). */
  pick(n: number, k: number): number[] {
    const idx = [...Array(n).keys()];
    const m = Math.min(k, n);
    for (let i = 0; i < m; i++) {
      const j = i + Math.floor(this.uniform() * (n - i));
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    return idx.slice(0, m);
  }
}

/** A clip held in memory: the victim's prepared input and its label. */
export interface LoadedClip {
  /** Prepared input `[T,3,...]` (kept out of tidy scopes). */
  input: Tensor;
  /** Label. */
  label: number;
  /** Path, for messages. */
  path: string;
}

/**
 * Reads the clips of the given splits once, prepared for the victim.
 *
 * @example
 * ```ts
 * import { createVictim, initGpu, loadVictimClips } from "../../mod.ts";
 * await initGpu();
 * const v = createVictim("vsfa-mini", { seed: 1 });
 * const test = await loadVictimClips(v, "cache/proxy/manifest.json", "test");
 * ```
 */
export async function loadVictimClips(
  victim: Victim,
  manifest: string,
  split: "train" | "val" | "test",
): Promise<LoadedClip[]> {
  const { items, missing, manifest: manifest_ } = await loadManifest(manifest, {
    splits: [split],
  });
  if (missing.length) {
    throw new Error(
      `${manifest}: ${missing.length} clip file(s) of the ${split} split are missing, e.g. ${
        missing[0]
      } (rebuild with \`deno task data\`)`,
    );
  }
  const clips: LoadedClip[] = new Array(items.length);
  await decodeVictimClips(victim, items, manifest_.options, (k, frames) => {
    const input = tidy(() => noGrad(() => victim.prepare(frames)));
    if (input !== frames) frames.dispose();
    clips[k] = { input: input.keep(), label: items[k].mos, path: items[k].path };
  });
  return clips;
}

/**
 * Decodes clips as `victim` reads them (`readVictimClip`) and hands each to `onClip` with its
 * index (the callee owns the tensor, made outside any tidy scope). When the victim reads the
 * clips at their stored size and no more frames than they have (the proxy dataset's clips all
 * have `frames` frames of `size x size`: pass the manifest's options), 48 clips are decoded per
 * ffmpeg process, since process start-up dominates on small clips; otherwise one process per
 * clip, four at a time. `onClip` runs for one clip at a time.
 *
 * @example
 * ```ts
 * import { decodeVictimClips } from "./victim.ts";
 * // await decodeVictimClips(victim, items, manifest.options, (k, frames) => { ... });
 * ```
 */
export async function decodeVictimClips(
  victim: Victim,
  items: readonly { path: string }[],
  stored: { frames: number; size: number } | null,
  onClip: (k: number, frames: Tensor) => Promise<void> | void,
): Promise<void> {
  const c = victim.config;
  let chain = Promise.resolve();
  const deliver = (k: number, frames: Tensor) => {
    chain = chain.then(() => onClip(k, frames));
    return chain;
  };
  if (
    stored && (c.width === null || c.width === stored.size) &&
    (c.height === null || c.height === stored.size) && c.frames <= stored.frames
  ) {
    const per = 48;
    const groups: number[][] = [];
    for (let i = 0; i < items.length; i += per) {
      groups.push([...Array(Math.min(per, items.length - i)).keys()].map((k) => i + k));
    }
    let nextGroup = 0;
    const worker = async () => {
      while (nextGroup < groups.length) {
        const g = groups[nextGroup++];
        const all = await decodeSameSize(g.map((k) => items[k].path), c.frames, stored.size);
        for (const [j, k] of g.entries()) {
          await deliver(k, tensor(all[j], [c.frames, 3, stored.size, stored.size]));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(2, groups.length) }, worker));
    await chain;
    return;
  }
  // Several ffmpeg processes at once: on small clips process start-up dominates.
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const k = next++;
      await deliver(k, await readVictimClip(victim, items[k].path));
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, items.length) }, worker));
  await chain;
}

/**
 * Decodes clips that all have at least `frames` frames of `size x size` with one ffmpeg process
 * (their first `frames` frames, concatenated), as planar RGB in [0,1]: one `[T*3*S*S]` array per
 * clip, the same values as `readVideo` gives for each.
 */
async function decodeSameSize(paths: string[], frames: number, size: number) {
  const n = paths.length;
  const graph = paths.map((_, i) => `[${i}:v:0]trim=end_frame=${frames},setpts=PTS-STARTPTS[v${i}]`)
    .join(";") + `;${paths.map((_, i) => `[v${i}]`).join("")}concat=n=${n}:v=1:a=0[out]`;
  const out = await new Deno.Command(toolBinary("ffmpeg"), {
    args: [
      ...FFMPEG_BASE,
      ...paths.flatMap((p) => ["-i", fileArg(p)]),
      "-filter_complex",
      graph,
      "-map",
      "[out]",
      "-vsync",
      "passthrough",
      "-f",
      "rawvideo",
      "-pix_fmt",
      "rgb24",
      "pipe:1",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const plane = size * size;
  const clipBytes = frames * 3 * plane;
  if (!out.success || out.stdout.length !== n * clipBytes) {
    throw new Error(
      `decoding ${n} clips (${paths[0]} ...): ffmpeg gave ${out.stdout.length} bytes, expected ` +
        `${n * clipBytes}: ${new TextDecoder().decode(out.stderr).slice(-500)}`,
    );
  }
  const b = out.stdout;
  const result: Float32Array[] = [];
  for (let k = 0; k < n; k++) {
    const f = new Float32Array(clipBytes);
    const base = k * clipBytes;
    for (let t = 0; t < frames; t++) {
      for (let i = 0; i < plane; i++) {
        const src = base + (t * plane + i) * 3;
        const dst = t * 3 * plane + i;
        f[dst] = b[src] / 255;
        f[dst + plane] = b[src + 1] / 255;
        f[dst + 2 * plane] = b[src + 2] / 255;
      }
    }
    result.push(f);
  }
  return result;
}

/**
 * Scores clips (no gradients) in batches and compares with their labels.
 *
 * @example
 * ```ts
 * import { evaluateVictim } from "./victim.ts";
 * // const metrics = await evaluateVictim(victim, clips);
 * ```
 */
export async function evaluateVictim(
  victim: Victim,
  clips: LoadedClip[],
  batch = 8,
): Promise<{ metrics: VictimMetrics; scores: number[] }> {
  const scores: number[] = [];
  for (let i = 0; i < clips.length; i += batch) {
    const part = clips.slice(i, i + batch);
    const s = tidy(() => noGrad(() => victim.scorePrepared(stack(part.map((c) => c.input), 0))));
    scores.push(...await s.read());
    s.dispose();
  }
  const labels = clips.map((c) => c.label);
  const r = correlationReport(scores, labels);
  return {
    metrics: {
      n: clips.length,
      srcc: r.srcc,
      krcc: r.krcc,
      plcc: r.plcc,
      plccRaw: r.plccRaw,
      rmse: r.rmse,
      rmseRaw: r.rmseRaw,
    },
    scores,
  };
}

const finite = z.number().refine(Number.isFinite, "must be finite");

/** The state a victim checkpoint records (validated when it is read back). */
const CheckpointStateSchema = z.object({
  step: z.number().int().nonnegative(),
  sampler: z.number().int().nonnegative().max(0xffffffff),
  seed: z.number().int(),
  model: z.string(),
  steps: z.number().int().positive(),
  batch: z.number().int().positive(),
  lr: finite,
  loss: z.string(),
  config: z.record(z.unknown()),
  losses: z.array(finite),
  trainSeconds: z.number().nonnegative(),
  /** Absent in checkpoints written before these options existed (then 0 / 0 / false). */
  rankWeight: finite.optional(),
  weightDecay: finite.optional(),
  augment: z.boolean().optional(),
}).passthrough().superRefine((st, ctx) => {
  if (st.step > st.steps) {
    ctx.addIssue({
      code: "custom",
      path: ["step"],
      message: `${st.step} is past steps ${st.steps}`,
    });
  }
  if (st.losses.length !== st.step) {
    ctx.addIssue({
      code: "custom",
      path: ["losses"],
      message: `${st.losses.length} loss(es) for ${st.step} step(s)`,
    });
  }
});

type CheckpointState = z.infer<typeof CheckpointStateSchema>;

const CKPT = "checkpoint.safetensors";

/** Writes the checkpoint `file` (from `prepareCheckpointDir`: inside its folder) atomically. */
async function saveCheckpoint(
  file: string,
  params: Record<string, Tensor>,
  opt: Adam,
  state: CheckpointState,
): Promise<void> {
  try {
    await saveTrainingCheckpoint(file, params, opt, { ...state });
  } catch (e) {
    // Never write a checkpoint holding non-finite weights.
    if (e instanceof NonFiniteParameterError) throw new NonFiniteLossError(e.message);
    throw e;
  }
}

/** The options a victim checkpoint must have been made with to be resumed. */
interface ResumeKey {
  model: VictimFamily;
  seed: number;
  steps: number;
  batch: number;
  lr: number;
  loss: string;
  rankWeight: number;
  weightDecay: number;
  augment: boolean;
}

/** Refuses (one line naming the file and the options) a checkpoint made with other options. */
function checkResumable(file: string, st: CheckpointState, want: ResumeKey): void {
  const have = { rankWeight: 0, weightDecay: 0, augment: false, ...st } as Record<string, unknown>;
  const keys = [
    "seed",
    "steps",
    "batch",
    "lr",
    "loss",
    "rankWeight",
    "weightDecay",
    "augment",
  ] as const;
  const mismatch = keys.filter((k) => have[k] !== want[k]);
  if (st.model !== want.model || mismatch.length) {
    throw new CheckpointError(
      file,
      `--resume: the checkpoint ${file} was made with other options (${
        mismatch.map((k) => `${k} ${have[k]}`).join(", ") || `model ${st.model}`
      }); start without --resume or pass the same options`,
      { bare: true },
    );
  }
}

/**
 * Reads and validates the checkpoint a victim training run would resume from, without loading
 * anything: the file, its state, every tensor of `victim` (with Adam's moments) and the options
 * it was made with. Run it before loading clips, so a bad checkpoint is refused at once.
 *
 * @throws {CheckpointError} one line naming the checkpoint file and what is wrong.
 * @example
 * ```ts
 * import { checkVictimCheckpoint } from "./victim.ts";
 * // await checkVictimCheckpoint("cache/victims/vsfa-mini", victim, { seed: 1, steps: 400, ... });
 * ```
 */
export async function checkVictimCheckpoint(
  checkpointDir: string,
  victim: Victim,
  want: Omit<ResumeKey, "model">,
): Promise<{ step: number }> {
  const file = join(checkpointDir, CKPT);
  const shapes = Object.fromEntries(
    Object.entries(victim.parameters()).map(([k, p]) => [k, p.shape]),
  );
  const { state } = await readTrainingCheckpoint(file, shapes, {
    schema: CheckpointStateSchema,
    check: (st) => checkResumable(file, st, { ...want, model: victim.family }),
  });
  return { step: state.step };
}

/** The default progress line on stderr. */
function progressLine(p: TrainProgress): void {
  printProgress({
    step: p.step,
    steps: p.steps,
    elapsed: p.elapsed,
    detail: `loss ${p.smoothed.toFixed(4)} lr ${p.lr.toExponential(1)}`,
  });
}

/**
 * The pairwise ranking term: the mean over pairs `i < j` whose labels differ by more than 0.05
 * of `relu(margin - sign(yi - yj) * (pi - pj))`; undefined when no pair qualifies.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../mod.ts";
 * import { rankingLoss } from "./victim.ts";
 * await initGpu();
 * const r = rankingLoss(tensor([1, 2, 3], [3]), [1, 3, 2], 0.1); // [1]
 * ```
 */
export function rankingLoss(pred: Tensor, labels: number[], margin: number): Tensor | undefined {
  const b = labels.length;
  const sign = new Float32Array(b * b);
  let pairs = 0;
  for (let i = 0; i < b; i++) {
    for (let j = i + 1; j < b; j++) {
      const d = labels[i] - labels[j];
      if (Math.abs(d) > 0.05) {
        sign[i * b + j] = Math.sign(d);
        pairs++;
      }
    }
  }
  if (!pairs) return undefined;
  const s = tensor(sign, [b, b]);
  const diff = sub(pred.reshape([b, 1]), pred.reshape([1, b]));
  const hinge = relu(sub(mul(abs(s), margin), mul(s, diff)));
  return mul(mean(hinge), (b * b) / pairs);
}

/** Options of {@link fitVictim}. */
export interface FitVictimOptions {
  /** Optimiser steps (default 400). */
  steps?: number;
  /** Clips per step (default 8). */
  batch?: number;
  /** Peak learning rate; cosine decay to a tenth of it (default 2e-3). */
  lr?: number;
  /** Loss on the label (default "mse"). */
  loss?: "mse" | "l1";
  /** Seed of the batch sampler (default 1). */
  seed?: number;
  /** Steps between checkpoints (default 50). */
  checkpointEvery?: number;
  /** Checkpoint folder; none are written when omitted. */
  checkpointDir?: string;
  /** Continue from the checkpoint in `checkpointDir`. */
  resume?: boolean;
  /** Progress callback (default: a `\r` progress line on stderr). */
  onProgress?: (p: TrainProgress) => void;
  /** Stop after this many steps in this call (e.g. to test resuming); default no limit. */
  stopAfter?: number;
  /**
   * Weight of a pairwise ranking term added to the loss (default 0): the mean over the batch's
   * pairs with labels more than 0.05 apart of `relu(margin - sign(yi - yj) * (pi - pj))`.
   */
  rankWeight?: number;
  /** Margin of the ranking term on the label scale (default 0.1). */
  rankMargin?: number;
  /** Adam's L2 weight decay (default 0). */
  weightDecay?: number;
  /**
   * Augmentation (default false): each picked clip is transposed (height and width swapped)
   * with probability 1/2. Needs square inputs.
   */
  augment?: boolean;
  /**
   * Validation clips: every `evalEvery` steps (and at the end) their SRCC is measured and the
   * parameters of the best one are restored at the end (the step is in the result).
   */
  val?: LoadedClip[];
  /**
   * Steps between validations (default 100). A resumed run validates only its own steps (the
   * best weights of the run before the resume are not in the checkpoint).
   */
  evalEvery?: number;
}

/** What {@link fitVictim} returns. */
export interface FitVictimResult {
  /** Steps done in total (including those before a resume). */
  step: number;
  /** Losses of every step (including those before a resume). */
  losses: number[];
  /** Training seconds in total (including those before a resume). */
  trainSeconds: number;
  /** With `val`: the step whose parameters were kept, and the validation SRCC of every check. */
  best?: { step: number; srcc: number; history: { step: number; srcc: number }[] };
}

/**
 * The training loop: Adam on seeded mini-batches of in-memory clips, with checkpoints
 * (parameters, Adam moments, step, sampler state) written atomically every `checkpointEvery`
 * steps, `resume` from the last one, and a {@link NonFiniteLossError} (before any update) when the
 * loss is NaN or infinite.
 *
 * @example
 * ```ts
 * import { createVictim, fitVictim, initGpu, tensor } from "../../mod.ts";
 * await initGpu();
 * const v = createVictim("simplevqa-mini", { seed: 1 });
 * const clips = [0.2, 0.8].map((g, i) => ({
 *   input: tensor(new Float32Array(4 * 3 * 32 * 32).fill(g), [4, 3, 32, 32]),
 *   label: 1 + 3 * i,
 *   path: `synthetic-${i}`,
 * }));
 * await fitVictim(v, clips, { steps: 20, batch: 2 });
 * ```
 */
export async function fitVictim(
  victim: Victim,
  train: LoadedClip[],
  options: FitVictimOptions = {},
): Promise<FitVictimResult> {
  const {
    steps = 400,
    batch = 8,
    lr = 2e-3,
    loss: lossName = "mse",
    seed = 1,
    checkpointEvery = 50,
    checkpointDir,
    rankWeight = 0,
    rankMargin = 0.1,
    weightDecay = 0,
    augment = false,
    val,
    evalEvery = 100,
  } = options;
  if (train.length < 1) throw new Error("fitVictim: no training clips");
  const onProgress = options.onProgress ?? progressLine;
  const params = victim.parameters();
  const opt = new Adam(Object.values(params), { lr, weightDecay });
  const history: { step: number; srcc: number }[] = [];
  let best: { step: number; srcc: number; weights: Record<string, Float32Array> } | undefined;
  const validate = async (step: number) => {
    if (!val?.length) return;
    const { metrics } = await evaluateVictim(victim, val);
    const srcc = Number.isFinite(metrics.srcc) ? metrics.srcc : -Infinity;
    history.push({ step, srcc: metrics.srcc });
    if (!best || srcc > best.srcc) {
      const weights: Record<string, Float32Array> = {};
      for (const [name, p] of Object.entries(params)) weights[name] = await p.read();
      best = { step, srcc, weights };
    }
  };
  const sampler = new BatchSampler(seed);
  let start = 0;
  let losses: number[] = [];
  let priorSeconds = 0;
  const lrAt = (step: number) => lr * (0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * step) / steps)));
  try {
    const ckptFile = checkpointDir ? await prepareCheckpointDir(checkpointDir) : "(none)";
    if (options.resume) {
      if (!checkpointDir) throw new Error("--resume: no checkpoint folder given");
      const want: ResumeKey = {
        model: victim.family,
        seed,
        steps,
        batch,
        lr,
        loss: lossName,
        rankWeight,
        weightDecay,
        augment,
      };
      // Validated whole (and against these options) before anything is loaded.
      const st = await loadTrainingCheckpoint(ckptFile, params, opt, {
        schema: CheckpointStateSchema,
        check: (s) => checkResumable(ckptFile, s, want),
      });
      start = st.step;
      sampler.state = st.sampler;
      losses = st.losses;
      priorSeconds = st.trainSeconds;
    }
    const lossFn = lossName === "l1" ? l1Loss : mseLoss;
    const t0 = performance.now();
    let lastGood = start;
    const stopAt = Math.min(steps, start + (options.stopAfter ?? Infinity));
    for (let step = start; step < stopAt; step++) {
      opt.lr = lrAt(step);
      const pick = sampler.pick(train.length, batch);
      const flips = augment ? pick.map(() => sampler.uniform() < 0.5) : pick.map(() => false);
      const l = tidy(() => {
        const x = stack(
          pick.map((i, k) => {
            const c = train[i].input;
            return flips[k] ? permute(c, [0, 1, 3, 2]) : c;
          }),
          0,
        );
        const labels = pick.map((i) => train[i].label);
        const y = tensor(labels, [pick.length]);
        const pred = victim.scorePrepared(x);
        const lv = lossFn(pred, y);
        let scalar = lv.size === 1 ? lv : mean(lv);
        if (rankWeight > 0) {
          const rank = rankingLoss(pred, labels, rankMargin);
          if (rank) scalar = add(scalar, mul(rank, rankWeight));
        }
        scalar.backward();
        return scalar;
      });
      const value = (await l.read())[0];
      l.dispose();
      if (!Number.isFinite(value)) {
        opt.zeroGrad();
        throw new NonFiniteLossError(
          nonFiniteLossMessage({
            loss: value,
            step: step + 1,
            lastGood,
            checkpoint: checkpointDir ? ckptFile : undefined,
          }),
        );
      }
      opt.step();
      opt.zeroGrad();
      losses.push(value);
      const recent = losses.slice(-20);
      onProgress({
        step: step + 1,
        steps,
        loss: value,
        smoothed: recent.reduce((a, b) => a + b, 0) / recent.length,
        lr: opt.lr,
        elapsed: (performance.now() - t0) / 1000,
      });
      if (checkpointDir && ((step + 1) % checkpointEvery === 0 || step + 1 === stopAt)) {
        await saveCheckpoint(ckptFile, params, opt, {
          step: step + 1,
          sampler: sampler.state,
          seed,
          model: victim.family,
          steps,
          batch,
          lr,
          loss: lossName,
          rankWeight,
          weightDecay,
          augment,
          config: { ...victim.config },
          losses,
          trainSeconds: priorSeconds + (performance.now() - t0) / 1000,
        });
        lastGood = step + 1;
      }
      if (val?.length && ((step + 1) % evalEvery === 0 || step + 1 === steps)) {
        await validate(step + 1);
      }
    }
    const trainSeconds = priorSeconds + (performance.now() - t0) / 1000;
    if (best && stopAt === steps) {
      for (const [name, p] of Object.entries(params)) {
        writeBuffer(p.buffer, best.weights[name] as Float32Array<ArrayBuffer>);
      }
    }
    return {
      step: stopAt,
      losses,
      trainSeconds,
      ...(best ? { best: { step: best.step, srcc: best.srcc, history } } : {}),
    };
  } finally {
    opt.dispose();
  }
}

/**
 * Trains a victim on the proxy train split, then scores the test split and saves the weights
 * with a JSON config (command, seed, date, time taken, test metrics). Before anything is read or
 * allocated it checks the config (`checkVictimConfig`, with `batch`), the manifest, the output stem
 * (`prepareWeightsOutput`: existing weights are refused unless `overwrite`), the checkpoint
 * folder, and with `resume` the checkpoint itself.
 *
 * @throws {ModelConfigError} for a config that is invalid or cannot fit.
 * @throws {OutputError} for an output that cannot be written or would replace weights.
 * @throws {CheckpointError} for a missing, corrupt or mismatching checkpoint with `resume`.
 * @example
 * ```ts
 * import { initGpu, trainVictim } from "../../mod.ts";
 * await initGpu();
 * const r = await trainVictim({ model: "vsfa-mini", steps: 400, seed: 1, out: "out/vsfa-mini" });
 * console.log(r.test.srcc, r.test.plcc);
 * ```
 */
export async function trainVictim(options: TrainVictimOptions): Promise<TrainVictimResult> {
  const {
    model,
    manifest = "cache/proxy/manifest.json",
    steps = 400,
    batch = 8,
    lr = 2e-3,
    loss = "mse",
    seed = 1,
    config = {},
    rankWeight = 0,
    rankMargin = 0.1,
    weightDecay = 0,
    augment = false,
    evalEvery = 0,
  } = options;
  const out = options.out ?? join("data", "models", model);
  const checkpointDir = options.checkpointDir ?? join("cache", "victims", model);
  const overwrite = options.overwrite ?? false;
  // Before anything is created, read or trained: the config fits (a batch of clips too), the
  // manifest is there, the checkpoint folder can be written (a checkpoint to resume is sound and
  // of these options), and the weights can be written and replace nothing unasked.
  checkVictimConfig(model, config, { batch });
  await loadManifest(manifest, { splits: ["train"] }); // a missing or invalid one fails now
  await prepareCheckpointDir(checkpointDir);
  const victim = createVictim(model, { seed, config });
  let train: LoadedClip[] = [];
  let val: LoadedClip[] = [];
  try {
    if (options.resume) {
      await checkVictimCheckpoint(checkpointDir, victim, {
        seed,
        steps,
        batch,
        lr,
        loss,
        rankWeight,
        weightDecay,
        augment,
      });
    }
    await prepareWeightsOutput(out, { option: "--out", overwrite });
    const tl = performance.now();
    train = await loadVictimClips(victim, manifest, "train");
    console.error(
      `${model}: ${train.length} train clips loaded in ${
        ((performance.now() - tl) / 1000).toFixed(0)
      } s`,
    );
    if (evalEvery > 0) val = await loadVictimClips(victim, manifest, "val");
    if (options.resume) console.error(`resuming ${model} from ${join(checkpointDir, CKPT)}`);
    const fit = await fitVictim(victim, train, {
      steps,
      batch,
      lr,
      loss,
      seed,
      checkpointEvery: options.checkpointEvery,
      checkpointDir,
      resume: options.resume,
      onProgress: options.onProgress,
      stopAfter: options.stopAfter,
      rankWeight,
      rankMargin,
      weightDecay,
      augment,
      val: evalEvery > 0 ? val : undefined,
      evalEvery: evalEvery > 0 ? evalEvery : undefined,
    });
    const trainClips = train.length;
    train.forEach((c) => c.input.dispose());
    train = [];
    val.forEach((c) => c.input.dispose());
    val = [];
    if (fit.step < steps) {
      const nan = NaN;
      return {
        victim,
        test: { n: 0, srcc: nan, krcc: nan, plcc: nan, plccRaw: nan, rmse: nan, rmseRaw: nan },
        weights: "",
        json: "",
        trainSeconds: fit.trainSeconds,
        losses: fit.losses,
      };
    }
    const test = await loadVictimClips(victim, manifest, "test");
    const { metrics } = await evaluateVictim(victim, test);
    test.forEach((c) => c.input.dispose());
    const round = (v: number) => Math.round(v * 1e4) / 1e4;
    const last = fit.losses.slice(-20);
    // Checked again: something may have appeared at the stem while training ran.
    const target = await prepareWeightsOutput(out, { option: "--out", overwrite });
    await saveVictim(victim, target.weights, {
      training: {
        command: options.command ??
          `deno task train-victim --model ${model} --seed ${seed} --steps ${steps}`,
        seed,
        steps,
        batch,
        lr,
        loss,
        rankWeight,
        rankMargin,
        weightDecay,
        augment,
        evalEvery,
        ...(fit.best
          ? {
            bestStep: fit.best.step,
            valSrcc: fit.best.history.map((h) => ({ step: h.step, srcc: round(h.srcc) })),
          }
          : {}),
        manifest,
        trainClips,
        date: new Date().toISOString(),
        trainSeconds: Math.round(fit.trainSeconds),
        finalLoss: round(last.reduce((a, b) => a + b, 0) / last.length),
      },
      test: Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, round(v)])),
    });
    return {
      victim,
      test: metrics,
      ...target.display,
      trainSeconds: fit.trainSeconds,
      losses: fit.losses,
    };
  } catch (e) {
    train.forEach((c) => c.input.dispose());
    val.forEach((c) => c.input.dispose());
    victim.dispose();
    throw e;
  }
}
