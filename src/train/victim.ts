/**
 * Training a victim on the proxy dataset: Adam on mini-batches of clips held in memory with the
 * shared training loop (`trainLoop` in loop.ts: a seeded batch sampler, atomic checkpoints that
 * `resume` continues from, a clear stop on a non-finite loss that keeps the last good
 * checkpoint), optional validation that keeps the best step, and the test-split metrics at the
 * end.
 *
 * @module
 */

import { join } from "path";
import { z } from "zod";
import { loadManifest } from "../data/manifest.ts";
import { correlationReport } from "../metrics/correlation.ts";
import { writeBuffer } from "../gpu/queue.ts";
import { abs, add, l1Loss, mean, mseLoss, mul, permute, relu, stack, sub } from "../nn/mod.ts";
import { Adam } from "../optim/optimizers.ts";
import { prepareCheckpointDir, prepareWeightsOutput } from "../io/checkpoint.ts";
import { noGrad, type Tensor, tensor, tidy } from "../tensor/tensor.ts";
import { checkVictimConfig, createVictim, saveVictim } from "../models/victims/mod.ts";
import type { TrainableFamily, Victim, VictimFamily } from "../models/victims/victim.ts";
import { type LoadedClip, loadVictimClips } from "./clips.ts";
import { ProgressLine } from "../_progress.ts";
import {
  checkpointStateSchema,
  finiteNumber,
  readRunCheckpoint,
  recentLoss,
  round4,
  type RunCheckpoint,
  trainLoop,
  type TrainProgress,
} from "./loop.ts";

export { BatchSampler, NonFiniteLossError, type TrainProgress } from "./loop.ts";
export { decodeVictimClips, type LoadedClip, loadVictimClips } from "./clips.ts";

/** Options of {@link trainVictim} (the training options as {@link fitVictim} has them). */
export interface TrainVictimOptions
  extends Omit<FitVictimOptions, "checkpointDir" | "val" | "evalEvery"> {
  /** The family to train. */
  model: TrainableFamily;
  /** The proxy manifest (default `cache/proxy/manifest.json`). */
  manifest?: string;
  /**
   * Where the weights go: `<out>.safetensors` and `<out>.json` (default `data/models/<model>`,
   * the bundled weights: pass `overwrite` to replace them).
   */
  out?: string;
  /** Checkpoint folder (default `cache/victims/<model>`). */
  checkpointDir?: string;
  /**
   * Replace weights already at `<out>.safetensors` / `<out>.json` (default false: an existing
   * file is refused before training starts).
   */
  overwrite?: boolean;
  /** Config overrides for the family. */
  config?: Record<string, unknown>;
  /** The command line to record in the JSON beside the weights. */
  command?: string;
  /**
   * Steps between validations on the val split; the best step's weights are kept (default 0:
   * no validation, the last step's weights are kept).
   */
  evalEvery?: number;
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

/** The state a victim checkpoint records (validated when it is read back). */
const CheckpointStateSchema = checkpointStateSchema({
  model: z.string(),
  loss: z.string(),
  /** Absent in checkpoints written before these options existed (then 0 / 0 / false). */
  rankWeight: finiteNumber.optional(),
  weightDecay: finiteNumber.optional(),
  augment: z.boolean().optional(),
});

type CheckpointState = z.infer<typeof CheckpointStateSchema>;

const CKPT = "checkpoint.safetensors";

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

/** A victim run's checkpoint: the options it records (in this order) and must be resumed with. */
function victimCheckpoint(file: string, k: ResumeKey): RunCheckpoint<CheckpointState> {
  return {
    file,
    run: {
      seed: k.seed,
      model: k.model,
      steps: k.steps,
      batch: k.batch,
      lr: k.lr,
      loss: k.loss,
      rankWeight: k.rankWeight,
      weightDecay: k.weightDecay,
      augment: k.augment,
    },
    schema: CheckpointStateSchema,
    defaults: { rankWeight: 0, weightDecay: 0, augment: false },
  };
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
  const ck = victimCheckpoint(file, { ...want, model: victim.family });
  const { state } = await readRunCheckpoint(ck, shapes);
  return { step: state.step };
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
 * The training loop of a victim (`trainLoop` in loop.ts): Adam on seeded mini-batches of
 * in-memory clips, with checkpoints (parameters, Adam moments, step, sampler state) written
 * atomically every `checkpointEvery` steps, `resume` from the last one, and a
 * {@link NonFiniteLossError} (before any update) when the loss is NaN or infinite.
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
  if (augment && train[0].input.rank !== 4) {
    throw new Error(
      `fitVictim: augment transposes frames, but ${victim.name} trains on prepared ` +
        `[${train[0].input.shape}] inputs (not frames); train it without augment`,
    );
  }
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
  try {
    if (options.resume && !checkpointDir) {
      throw new Error("--resume: no checkpoint folder given");
    }
    const checkpoint = checkpointDir
      ? {
        ...victimCheckpoint(await prepareCheckpointDir(checkpointDir), {
          model: victim.family,
          seed,
          steps,
          batch,
          lr,
          loss: lossName,
          rankWeight,
          weightDecay,
          augment,
        }),
        every: checkpointEvery,
        config: victim.config as unknown as Record<string, unknown>,
      }
      : undefined;
    const lossFn = lossName === "l1" ? l1Loss : mseLoss;
    const fit = await trainLoop({
      params,
      opt,
      clips: train.length,
      steps,
      batch,
      lr,
      seed,
      checkpoint,
      resume: options.resume,
      stopAfter: options.stopAfter,
      onProgress: options.onProgress,
      loss: (pick, sampler) => {
        const flips = augment ? pick.map(() => sampler.uniform() < 0.5) : pick.map(() => false);
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
        return scalar;
      },
      afterStep: async (step) => {
        if (val?.length && (step % evalEvery === 0 || step === steps)) await validate(step);
      },
    });
    if (best && fit.step === steps) {
      for (const [name, p] of Object.entries(params)) {
        writeBuffer(p.buffer, best.weights[name] as Float32Array<ArrayBuffer>);
      }
    }
    return {
      step: fit.step,
      losses: fit.losses,
      trainSeconds: fit.trainSeconds,
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
    // Reading (and, for a frozen backbone, preparing) the clips can take minutes: a progress line.
    const line = new ProgressLine({ unit: "clips" });
    const reading = (split: "train" | "val" | "test") => ({
      onProgress: (done: number, total: number) =>
        line.update({ stage: `read ${split}`, done, total }, model),
    });
    train = await loadVictimClips(victim, manifest, "train", reading("train"));
    line.end();
    console.error(
      `${model}: ${train.length} train clips loaded in ${
        ((performance.now() - tl) / 1000).toFixed(0)
      } s`,
    );
    if (evalEvery > 0) val = await loadVictimClips(victim, manifest, "val", reading("val"));
    line.end();
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
    const test = await loadVictimClips(victim, manifest, "test", reading("test"));
    line.end();
    const { metrics } = await evaluateVictim(victim, test);
    test.forEach((c) => c.input.dispose());
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
            valSrcc: fit.best.history.map((h) => ({ step: h.step, srcc: round4(h.srcc) })),
          }
          : {}),
        manifest,
        trainClips,
        date: new Date().toISOString(),
        trainSeconds: Math.round(fit.trainSeconds),
        finalLoss: round4(recentLoss(fit.losses)),
      },
      test: Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, round4(v)])),
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
