/**
 * The training loop the generator and victim trainers share: Adam on seeded mini-batches of
 * clips held in memory ({@link BatchSampler}) under a cosine learning-rate schedule, atomic
 * checkpoints every `every` steps (parameters, Adam's moments, step, sampler state, the run's
 * options, losses) that a resumed run continues from exactly, a stop on a NaN or infinite loss
 * before any update that keeps the last good checkpoint ({@link NonFiniteLossError}), and the
 * progress line. A trainer gives the loss of a batch; the loop does the rest.
 *
 * @module
 */

import { z } from "zod";
import { printProgress } from "../_progress.ts";
import {
  CheckpointError,
  loadTrainingCheckpoint,
  nonFiniteLossMessage,
  NonFiniteParameterError,
  readTrainingCheckpoint,
  saveTrainingCheckpoint,
  type TrainingCheckpoint,
} from "../io/checkpoint.ts";
import type { Adam } from "../optim/optimizers.ts";
import { type Tensor, tidy } from "../tensor/tensor.ts";

/** The training loss became NaN or infinite; the message names the step and the checkpoint.
 *
 * @example
 * ```ts
 * import { NonFiniteLossError } from "./loop.ts";
 * const e = new NonFiniteLossError("training stopped: the loss is NaN at step 3");
 * console.log(e.name); // "NonFiniteLossError"
 * ```
 */
export class NonFiniteLossError extends Error {
  /** Creates the error with its one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "NonFiniteLossError";
  }
}

/** A small serialisable generator (mulberry32); `state` is one uint32.
 *
 * @example
 * ```ts
 * import { BatchSampler } from "./loop.ts";
 * const s = new BatchSampler(1);
 * const batch = s.pick(441, 8); // 8 distinct clip indices
 * const saved = s.state; // restore with s.state = saved
 * ```
 */
export class BatchSampler {
  /** The generator state. */
  state: number;
  /** A sampler whose sequence is fixed by `seed`. */
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

/** What a trainer's `onProgress` receives after each step. */
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

/**
 * The learning rate at `step` (0-based) of `steps`: cosine decay from `lr` to a tenth of it.
 *
 * @example
 * ```ts
 * import { cosineLr } from "./loop.ts";
 * console.log(cosineLr(1e-3, 0, 100), cosineLr(1e-3, 100, 100)); // 0.001 0.0001
 * ```
 */
export function cosineLr(lr: number, step: number, steps: number): number {
  return lr * (0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * step) / steps)));
}

/**
 * The mean of the last (up to) 20 losses: the progress line's smoothed loss and the final loss
 * recorded beside trained weights.
 *
 * @example
 * ```ts
 * import { recentLoss } from "./loop.ts";
 * console.log(recentLoss([4, 2, 3])); // 3
 * ```
 */
export function recentLoss(losses: readonly number[]): number {
  const recent = losses.slice(-20);
  return recent.reduce((a, b) => a + b, 0) / recent.length;
}

/**
 * `v` rounded to 4 decimals, as the trainers record numbers in the JSON beside the weights.
 *
 * @example
 * ```ts
 * import { round4 } from "./loop.ts";
 * console.log(round4(0.123456)); // 0.1235
 * ```
 */
export function round4(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}

const finite = z.number().refine(Number.isFinite, "must be finite");

/**
 * The zod schema of a finite number, as checkpoint states use it.
 *
 * @example
 * ```ts
 * import { finiteNumber } from "./loop.ts";
 * console.log(finiteNumber.safeParse(NaN).success); // false
 * ```
 */
export const finiteNumber: z.ZodEffects<z.ZodNumber, number, number> = finite;

/** The fields every checkpoint state has, besides a trainer's own options. */
const BASE_STATE = {
  step: z.number().int().nonnegative(),
  sampler: z.number().int().nonnegative().max(0xffffffff),
  seed: z.number().int(),
  steps: z.number().int().positive(),
  batch: z.number().int().positive(),
  lr: finite,
};

/** The state every checkpoint records (a trainer's schema adds its options). */
export interface CheckpointState {
  /** Steps done. */
  step: number;
  /** The batch sampler's state. */
  sampler: number;
  /** The run's seed. */
  seed: number;
  /** Total steps. */
  steps: number;
  /** Clips per step. */
  batch: number;
  /** Peak learning rate. */
  lr: number;
  /** The model's config. */
  config: Record<string, unknown>;
  /** The loss of every step done. */
  losses: number[];
  /** Training seconds so far. */
  trainSeconds: number;
}

/**
 * The schema of a trainer's checkpoint state: step, sampler, seed, steps, batch, lr, then the
 * trainer's own fields (`own`), then config, losses and trainSeconds; unknown fields pass
 * through. The step may not pass `steps` and there is one loss per step.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { checkpointStateSchema } from "./loop.ts";
 * const schema = checkpointStateSchema({ loss: z.string() });
 * const ok = schema.safeParse({
 *   step: 1, sampler: 7, seed: 1, steps: 4, batch: 2, lr: 1e-3, loss: "mse", config: {},
 *   losses: [0.5], trainSeconds: 1,
 * });
 * console.log(ok.success); // true
 * ```
 */
export function checkpointStateSchema<T extends z.ZodRawShape>(
  own: T,
): z.ZodType<CheckpointState & z.infer<z.ZodObject<T>>> {
  return z.object({
    ...BASE_STATE,
    ...own,
    config: z.record(z.unknown()),
    losses: z.array(finite),
    trainSeconds: z.number().nonnegative(),
  }).passthrough().superRefine((raw, ctx) => {
    const st = raw as unknown as CheckpointState;
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
  }) as unknown as z.ZodType<CheckpointState & z.infer<z.ZodObject<T>>>;
}

/** Where a run's checkpoint is and what it records; see {@link readRunCheckpoint}. */
export interface RunCheckpoint<S extends CheckpointState> {
  /** The checkpoint file (from `prepareCheckpointDir`). */
  file: string;
  /**
   * The options a checkpoint records after `step` and `sampler` and a resume must repeat, in
   * the order they are written and named (seed, steps, batch and lr among them).
   */
  run: Record<string, unknown>;
  /** The state's schema ({@link checkpointStateSchema}). */
  schema: z.ZodType<S>;
  /** Values of `run`'s options that checkpoints written before the option existed lack. */
  defaults?: Record<string, unknown>;
}

/**
 * Refuses, in one line naming the file and the options that differ, a checkpoint state made
 * with other options than `checkpoint.run`.
 *
 * @throws {CheckpointError} `--resume: the checkpoint <file> was made with other options (...)`.
 * @example
 * ```ts
 * import { z } from "zod";
 * import { checkpointStateSchema, checkResumable } from "./loop.ts";
 * const state = {
 *   step: 1, sampler: 7, seed: 1, steps: 4, batch: 2, lr: 1e-3, config: {}, losses: [0.5],
 *   trainSeconds: 1,
 * };
 * const run = { seed: 1, steps: 4, batch: 2, lr: 1e-3 };
 * checkResumable({ file: "ck.safetensors", run, schema: checkpointStateSchema({}) }, state);
 * ```
 */
export function checkResumable<S extends CheckpointState>(
  checkpoint: RunCheckpoint<S>,
  state: S,
): void {
  const { file, run } = checkpoint;
  const have = { ...checkpoint.defaults, ...state } as Record<string, unknown>;
  const bad = Object.keys(run).filter((k) => !sameValue(have[k], run[k]));
  if (bad.length) {
    throw new CheckpointError(
      file,
      `--resume: the checkpoint ${file} was made with other options (${
        bad.map((k) => `${k} ${have[k]}`).join(", ")
      }); start without --resume or pass the same options`,
      { bare: true },
    );
  }
}

/** Equal, NaN equal to NaN (a JSON state never holds -0, so 0 and -0 are equal too). */
function sameValue(a: unknown, b: unknown): boolean {
  return a === b || Object.is(a, b);
}

/**
 * Reads and validates the checkpoint a run would resume from without loading anything (see
 * `readTrainingCheckpoint`): the file, its state (`checkpoint.schema`), every parameter of
 * `shapes` with Adam's moments, and the options it was made with ({@link checkResumable}).
 * Trainers call it before loading clips, so that a bad checkpoint is refused at once.
 *
 * @throws {CheckpointError} one line naming the checkpoint file and what is wrong.
 * @example
 * ```ts
 * import { checkpointStateSchema, readRunCheckpoint } from "./loop.ts";
 * const schema = checkpointStateSchema({});
 * const run = { seed: 1, steps: 4, batch: 2, lr: 1e-3 };
 * await readRunCheckpoint({ file: "ck/checkpoint.safetensors", run, schema }, { w: [2] })
 *   .catch((e) => console.error(e.message)); // "--resume: no checkpoint at ck/..."
 * ```
 */
export function readRunCheckpoint<S extends CheckpointState>(
  checkpoint: RunCheckpoint<S>,
  shapes: Record<string, readonly number[]>,
): Promise<TrainingCheckpoint<S>> {
  return readTrainingCheckpoint(checkpoint.file, shapes, {
    schema: checkpoint.schema,
    check: (st) => checkResumable(checkpoint, st),
  });
}

/** Options of {@link trainLoop}. */
export interface TrainLoopOptions<S extends CheckpointState> {
  /** The parameters being trained (by name, as checkpoints store them). */
  params: Record<string, Tensor>;
  /** The optimiser of `params`; its `lr` follows {@link cosineLr}. */
  opt: Adam;
  /** Clips to draw batches from. */
  clips: number;
  /** Total steps of the run. */
  steps: number;
  /** Clips per step. */
  batch: number;
  /** Peak learning rate. */
  lr: number;
  /** Seed of the batch sampler. */
  seed: number;
  /**
   * The loss of one step (run in a tidy scope; the loop calls `backward`) from the picked clip
   * indices; `sampler` may draw more (e.g. augmentations) after the pick. `step` is 0-based.
   */
  loss: (pick: number[], sampler: BatchSampler, step: number) => Tensor;
  /** Checkpoints: none are written when omitted. */
  checkpoint?: RunCheckpoint<S> & {
    /** Steps between checkpoints (one is also written at the last step of the run). */
    every: number;
    /** The model's config, recorded in the state. */
    config: Record<string, unknown>;
  };
  /** Continue from `checkpoint`. */
  resume?: boolean;
  /** Called with the state a resumed run continues from. */
  onResume?: (state: S) => void;
  /** Stop after this many steps in this call (e.g. to test resuming); default no limit. */
  stopAfter?: number;
  /**
   * Called after each step (default: a progress line on stderr, counting this run's steps, with
   * the step of the whole run, the smoothed loss and the learning rate).
   */
  onProgress?: (p: TrainProgress) => void;
  /** Called with the number of steps done after each step's checkpoint (e.g. to validate). */
  afterStep?: (step: number) => Promise<void> | void;
  /** The error a non-finite loss throws (default {@link NonFiniteLossError}). */
  lossError?: new (message: string) => Error;
}

/** What {@link trainLoop} returns. */
export interface TrainLoopResult {
  /** The step this run started at (0, or the checkpoint's with `resume`). */
  start: number;
  /** Steps done in total (including those before a resume). */
  step: number;
  /** Losses of every step (including those before a resume). */
  losses: number[];
  /** Training seconds in total (including those before a resume). */
  trainSeconds: number;
}

/**
 * Runs the steps of a training run: each picks a batch with a {@link BatchSampler} seeded by
 * `seed`, sets the learning rate ({@link cosineLr}), computes `loss` and its gradients, stops
 * with `lossError` (before any update, naming the last good checkpoint) when the loss is not
 * finite, updates the parameters, reports progress, and every `checkpoint.every` steps and at
 * the last step writes a checkpoint atomically (never one of non-finite parameters). With
 * `resume` it first loads the checkpoint (validated whole and against `checkpoint.run`) into
 * `params` and `opt` and continues from its step with the sampler where it was, so that an
 * interrupted run ends with the same weights as an uninterrupted one.
 *
 * @example
 * ```ts
 * import { Adam, initGpu, nn, tensor } from "../../mod.ts";
 * import { trainLoop } from "./loop.ts";
 * await initGpu();
 * const w = tensor([0], [1], { requiresGrad: true });
 * const opt = new Adam([w], { lr: 0.1 });
 * const targets = [1, 2, 3];
 * const r = await trainLoop({
 *   params: { w }, opt, clips: targets.length, steps: 20, batch: 2, lr: 0.1, seed: 1,
 *   loss: (pick) => nn.mean(nn.square(nn.sub(w, tensor([targets[pick[0]]], [1])))),
 *   onProgress: () => {},
 * });
 * console.log(r.step, r.losses.length); // 20 20
 * opt.dispose();
 * ```
 */
export async function trainLoop<S extends CheckpointState>(
  options: TrainLoopOptions<S>,
): Promise<TrainLoopResult> {
  const { params, opt, clips, steps, batch, lr, seed, checkpoint } = options;
  const LossError = options.lossError ?? NonFiniteLossError;
  const sampler = new BatchSampler(seed);
  let start = 0;
  let losses: number[] = [];
  let prior = 0;
  if (options.resume) {
    if (!checkpoint) throw new Error("--resume: no checkpoint folder given");
    const st = await loadTrainingCheckpoint(checkpoint.file, params, opt, {
      schema: checkpoint.schema,
      check: (s) => checkResumable(checkpoint, s),
    });
    options.onResume?.(st);
    start = st.step;
    sampler.state = st.sampler;
    losses = st.losses;
    prior = st.trainSeconds;
  }
  const t0 = performance.now();
  let lastGood = start;
  const stopAt = Math.min(steps, start + (options.stopAfter ?? Infinity));
  for (let step = start; step < stopAt; step++) {
    opt.lr = cosineLr(lr, step, steps);
    const pick = sampler.pick(clips, batch);
    const l = tidy(() => {
      const loss = options.loss(pick, sampler, step);
      loss.backward();
      return loss;
    });
    const value = (await l.read())[0];
    l.dispose();
    if (!Number.isFinite(value)) {
      opt.zeroGrad();
      throw new LossError(
        nonFiniteLossMessage({
          loss: value,
          step: step + 1,
          lastGood,
          checkpoint: checkpoint?.file,
        }),
      );
    }
    opt.step();
    opt.zeroGrad();
    losses.push(value);
    const progress: TrainProgress = {
      step: step + 1,
      steps,
      loss: value,
      smoothed: recentLoss(losses),
      lr: opt.lr,
      elapsed: (performance.now() - t0) / 1000,
    };
    if (options.onProgress) options.onProgress(progress);
    else {
      printProgress({
        step: step + 1 - start,
        steps: stopAt - start,
        elapsed: progress.elapsed,
        detail: `step ${step + 1}/${steps} loss ${progress.smoothed.toFixed(4)} lr ${
          opt.lr.toExponential(1)
        }`,
      });
    }
    if (checkpoint && ((step + 1) % checkpoint.every === 0 || step + 1 === stopAt)) {
      const state = {
        step: step + 1,
        sampler: sampler.state,
        ...checkpoint.run,
        config: { ...checkpoint.config },
        losses,
        trainSeconds: prior + (performance.now() - t0) / 1000,
      };
      try {
        await saveTrainingCheckpoint(checkpoint.file, params, opt, state);
      } catch (e) {
        // Never a checkpoint of non-finite weights; the last good one stays.
        if (e instanceof NonFiniteParameterError) throw new LossError(e.message);
        throw e;
      }
      lastGood = step + 1;
    }
    await options.afterStep?.(step + 1);
  }
  return { start, step: stopAt, losses, trainSeconds: prior + (performance.now() - t0) / 1000 };
}
