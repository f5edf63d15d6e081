/**
 * Training checkpoints: parameters, Adam's moments and a JSON state (step, sampler, options,
 * losses) in one safetensors file, written atomically; and loading them back so a run resumes
 * exactly where it stopped.
 *
 * @module
 */

import { writeBuffer } from "../gpu/queue.ts";
import type { Adam } from "./optim.ts";
import { decodeSafetensors, saveSafetensors } from "./safetensors.ts";
import { full, type Tensor } from "./tensor.ts";

/** A parameter that is NaN or infinite (a checkpoint of it is refused). */
export class NonFiniteParameterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NonFiniteParameterError";
  }
}

/**
 * Writes `params`, Adam's moments of each and `state` (JSON in the metadata) to `file`
 * atomically. Refuses (throws {@link NonFiniteParameterError}) when a parameter is not finite,
 * so a checkpoint on disk is always a good one.
 *
 * @example
 * ```ts
 * import { Adam, initGpu, tensor } from "../../mod.ts";
 * import { saveTrainingCheckpoint } from "./checkpoint.ts";
 * await initGpu();
 * const w = tensor([1, 2], [2], { requiresGrad: true });
 * const opt = new Adam([w], { lr: 1e-3 });
 * await saveTrainingCheckpoint("ckpt.safetensors", { w }, opt, { step: 0 });
 * ```
 */
export async function saveTrainingCheckpoint(
  file: string,
  params: Record<string, Tensor>,
  opt: Adam,
  state: { step: number } & Record<string, unknown>,
): Promise<void> {
  const tensors: Record<string, Tensor> = {};
  for (const [name, p] of Object.entries(params)) {
    const v = await p.read();
    if (!v.every(Number.isFinite)) {
      throw new NonFiniteParameterError(
        `parameter '${name}' is not finite at step ${state.step}; checkpoint not written`,
      );
    }
    tensors[`param.${name}`] = p;
    const mv = opt.moments(p);
    if (mv) {
      tensors[`adam_m.${name}`] = mv.m;
      tensors[`adam_v.${name}`] = mv.v;
    }
  }
  await saveSafetensors(file, tensors, { state: JSON.stringify(state) });
}

/**
 * Loads a checkpoint written by {@link saveTrainingCheckpoint} into `params` and `opt` (whose
 * step count is brought to the saved step) and returns the saved state.
 *
 * @throws {Error} naming the file when it is missing, holds no state, or lacks a tensor.
 * @example
 * ```ts
 * import { Adam, initGpu, tensor } from "../../mod.ts";
 * import { loadTrainingCheckpoint } from "./checkpoint.ts";
 * await initGpu();
 * const w = tensor([0, 0], [2], { requiresGrad: true });
 * const opt = new Adam([w], { lr: 1e-3 });
 * const state = await loadTrainingCheckpoint("ckpt.safetensors", { w }, opt);
 * console.log(state.step);
 * ```
 */
export async function loadTrainingCheckpoint<S extends { step: number }>(
  file: string,
  params: Record<string, Tensor>,
  opt: Adam,
): Promise<S> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`--resume: no checkpoint at ${file} (start without --resume)`);
    }
    throw e;
  }
  const { tensors, metadata } = decodeSafetensors(bytes);
  const state = JSON.parse(metadata.state ?? "null") as S | null;
  if (!state || typeof state.step !== "number") {
    throw new Error(`${file}: no training state in its metadata`);
  }
  for (const [name, p] of Object.entries(params)) {
    const t = tensors[`param.${name}`];
    if (!t || t.data.length !== p.size) {
      throw new Error(`${file}: tensor 'param.${name}' is missing or has the wrong size`);
    }
    writeBuffer(p.buffer, t.data as Float32Array<ArrayBuffer>);
  }
  // Adam's step counts are private: bring them to `state.step` with zero-gradient steps at
  // lr 0 (which leave parameters and zero moments unchanged), then write the saved moments.
  if (state.step > 0) {
    const lr = opt.lr;
    opt.lr = 0;
    for (const p of Object.values(params)) p.grad = full(p.shape, 0).keep();
    for (let i = 0; i < state.step; i++) opt.step();
    opt.zeroGrad();
    opt.lr = lr;
    for (const [name, p] of Object.entries(params)) {
      const mv = opt.moments(p)!;
      const m = tensors[`adam_m.${name}`];
      const v = tensors[`adam_v.${name}`];
      if (!m || !v) throw new Error(`${file}: Adam moments of '${name}' are missing`);
      writeBuffer(mv.m.buffer, m.data as Float32Array<ArrayBuffer>);
      writeBuffer(mv.v.buffer, v.data as Float32Array<ArrayBuffer>);
    }
  }
  return state;
}

/**
 * The message of a training stop on a NaN or infinite loss (both trainers): the loss, the step,
 * that the weights were not updated, and where to continue from (the last good checkpoint, or
 * advice when none was written yet).
 *
 * @example
 * ```ts
 * import { nonFiniteLossMessage } from "./checkpoint.ts";
 * nonFiniteLossMessage({ loss: NaN, step: 12, lastGood: 0 });
 * // "training stopped: the loss is NaN at step 12; the weights were not updated. No checkpoint ..."
 * ```
 */
export function nonFiniteLossMessage(o: {
  /** The loss value. */
  loss: number;
  /** The 1-based step it happened at. */
  step: number;
  /** The step of the last checkpoint written (0: none). */
  lastGood: number;
  /** The checkpoint file, when there is one. */
  checkpoint?: string;
}): string {
  const next = o.lastGood > 0 && o.checkpoint
    ? `The last good checkpoint (step ${o.lastGood}) is ${o.checkpoint}; continue from it with ` +
      "--resume, perhaps with a lower --lr."
    : "No checkpoint was written yet; try a lower --lr.";
  return `training stopped: the loss is ${o.loss} at step ${o.step}; the weights were not ` +
    `updated. ${next}`;
}
