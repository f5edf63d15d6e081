/**
 * Training checkpoints: parameters, Adam's moments and a JSON state (step, sampler, options,
 * losses) in one safetensors file, written atomically; and loading them back so a run resumes
 * exactly where it stopped. A checkpoint is validated whole (a regular file of the right size,
 * a state that parses, every tensor present with its shape and finite) before anything is
 * written into the model or the optimiser, so a truncated or corrupt checkpoint is one clear
 * error naming the file and changes nothing.
 *
 * The trainers' outputs are checked here before training starts: the weights stem
 * ({@link prepareWeightsOutput}: its folder, both files, never replacing existing weights unless
 * asked) and the checkpoint folder ({@link prepareCheckpointDir}).
 *
 * @module
 */

import { basename, dirname } from "path";
import type { z } from "zod";
import { PathError } from "../_fs.ts";
import { insideOutput, prepareOutputDir } from "../_output.ts";
import { formatZodError } from "../_zod.ts";
import { writeBuffer } from "../gpu/queue.ts";
import type { Adam } from "../optim/optimizers.ts";
import {
  readSafetensorsFile,
  SafetensorsError,
  saveSafetensors,
  type TensorData,
} from "./safetensors.ts";
import { full, type Tensor } from "../tensor/tensor.ts";

/**
 * A checkpoint that cannot be used: missing, truncated, corrupt, or of another run. The message
 * is one line naming the file and what is wrong.
 *
 * @example
 * ```ts
 * import { CheckpointError } from "./checkpoint.ts";
 * const e = new CheckpointError("ck/checkpoint.safetensors", "no training state in its metadata");
 * console.log(e.message); // "ck/checkpoint.safetensors: no training state in its metadata"
 * ```
 */
export class CheckpointError extends Error {
  /** The checkpoint file. */
  readonly file: string;
  /** Creates the error; `message` is put after the file name unless `bare`. */
  constructor(file: string, message: string, options: { bare?: boolean; cause?: unknown } = {}) {
    super(options.bare ? message : `${file}: ${message}`, { cause: options.cause });
    this.name = "CheckpointError";
    this.file = file;
  }
}

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

/** Options of {@link readTrainingCheckpoint} and {@link loadTrainingCheckpoint}. */
export interface CheckpointReadOptions<S> {
  /**
   * Validates the saved state (after `step`, which must be a whole number >= 0, is checked);
   * an issue is reported as `<file>: checkpoint state: <field>: <message>`.
   */
  schema?: z.ZodType<S>;
  /**
   * Called with the validated state before anything is loaded; throw to refuse it (e.g. a
   * checkpoint made with other options).
   */
  check?: (state: S) => void;
}

/** A checkpoint read from disk (nothing loaded anywhere yet). */
export interface TrainingCheckpoint<S> {
  /** The saved state. */
  state: S;
  /** Its tensors: `param.<name>`, `adam_m.<name>`, `adam_v.<name>`. */
  tensors: Record<string, TensorData>;
}

/**
 * Reads and validates a checkpoint without touching the GPU: the file (see
 * `readSafetensorsFile`: a regular file whose sizes agree, every value finite), its state (JSON
 * with a whole `step` >= 0, then `schema`), and, given `params` (name to shape), that it holds
 * every parameter with that shape and, after step 0, Adam's two moments of each.
 *
 * @throws {CheckpointError} one line naming the file: `--resume: no checkpoint at <file> ...`
 *   when it is missing, `<file>: <what is wrong>` otherwise.
 * @example
 * ```ts
 * import { readTrainingCheckpoint } from "./checkpoint.ts";
 * const { state } = await readTrainingCheckpoint("ck/checkpoint.safetensors", { w: [2] });
 * console.log(state.step);
 * ```
 */
export async function readTrainingCheckpoint<S extends { step: number } = { step: number }>(
  file: string,
  params?: Record<string, readonly number[]>,
  options: CheckpointReadOptions<S> = {},
): Promise<TrainingCheckpoint<S>> {
  let contents;
  try {
    contents = await readSafetensorsFile(file, { what: "checkpoint" });
  } catch (e) {
    if (e instanceof SafetensorsError && e.detail === "no such file") {
      throw new CheckpointError(
        file,
        `--resume: no checkpoint at ${file} (start without --resume)`,
        { bare: true, cause: e },
      );
    }
    if (e instanceof SafetensorsError) {
      throw new CheckpointError(file, `not a usable checkpoint: ${e.detail}`, { cause: e });
    }
    throw e;
  }
  const { tensors, metadata } = contents;
  if (metadata.state === undefined) {
    throw new CheckpointError(file, "no training state in its metadata (not a checkpoint)");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(metadata.state);
  } catch (e) {
    throw new CheckpointError(
      file,
      `its training state is not valid JSON: ${(e as Error).message}`,
    );
  }
  const step = (raw as { step?: unknown } | null)?.step;
  if (
    raw === null || typeof raw !== "object" || typeof step !== "number" ||
    !Number.isSafeInteger(step) || step < 0
  ) {
    throw new CheckpointError(
      file,
      `its training state has no step (a whole number >= 0), got ${JSON.stringify(step)}`,
    );
  }
  let state = raw as S;
  if (options.schema) {
    const parsed = options.schema.safeParse(raw);
    if (!parsed.success) {
      throw new CheckpointError(
        file,
        `checkpoint state: ${formatZodError(parsed.error, { root: "state" })}`,
      );
    }
    state = parsed.data;
  }
  if (params) {
    const problems: string[] = [];
    const want = (key: string, shape: readonly number[]) => {
      const t = tensors[key];
      if (!t) problems.push(`tensor '${key}' is missing`);
      else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        problems.push(`tensor '${key}' has shape [${t.shape}], the model [${shape}]`);
      }
    };
    for (const [name, shape] of Object.entries(params)) {
      want(`param.${name}`, shape);
      if (state.step > 0) {
        want(`adam_m.${name}`, shape);
        want(`adam_v.${name}`, shape);
      }
    }
    if (problems.length) {
      throw new CheckpointError(
        file,
        `does not match the model: ${problems.slice(0, 3).join("; ")}${
          problems.length > 3 ? ` (and ${problems.length - 3} more)` : ""
        }`,
      );
    }
  }
  options.check?.(state);
  return { state, tensors };
}

/**
 * Loads a checkpoint written by {@link saveTrainingCheckpoint} into `params` and `opt` (whose
 * step count is brought to the saved step) and returns the saved state. Everything is read and
 * validated first ({@link readTrainingCheckpoint}, with `options`); a bad checkpoint changes
 * neither the parameters nor the optimiser.
 *
 * @throws {CheckpointError} naming the file when it is missing, truncated, corrupt, holds no
 *   state, lacks a tensor or has one of another shape, or `options` refuse it.
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
  options: CheckpointReadOptions<S> = {},
): Promise<S> {
  const shapes = Object.fromEntries(Object.entries(params).map(([k, p]) => [k, p.shape]));
  const { state, tensors } = await readTrainingCheckpoint<S>(file, shapes, options);
  for (const [name, p] of Object.entries(params)) {
    writeBuffer(p.buffer, tensors[`param.${name}`].data as Float32Array<ArrayBuffer>);
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
      writeBuffer(mv.m.buffer, tensors[`adam_m.${name}`].data as Float32Array<ArrayBuffer>);
      writeBuffer(mv.v.buffer, tensors[`adam_v.${name}`].data as Float32Array<ArrayBuffer>);
    }
  }
  return state;
}

/** The files of a trained model's output stem, from {@link prepareWeightsOutput}. */
export interface WeightsOutput {
  /** The real absolute folder they go in. */
  root: string;
  /** `<root>/<name>.safetensors`. */
  weights: string;
  /** `<root>/<name>.json`. */
  json: string;
  /** The two files as the user named them (`<stem>.safetensors`, `<stem>.json`), for messages. */
  display: { weights: string; json: string };
}

/** Why {@link prepareWeightsOutput} or {@link prepareCheckpointDir} refused an output. */
export class OutputError extends PathError {
  /** Creates the error (one line naming the path and the option). */
  constructor(path: string, message: string) {
    super(path, message);
    this.name = "OutputError";
  }
}

async function lstatOrNull(p: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(p);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Fails unless a file can be created in `root` (made and removed at once). */
async function probeWritable(root: string, shown: string, option: string): Promise<void> {
  let probe: string;
  try {
    probe = await Deno.makeTempFile({ dir: root, prefix: ".stqa-probe-" });
  } catch (e) {
    throw new OutputError(shown, `${shown}: cannot write in ${option}: ${(e as Error).message}`);
  }
  await Deno.remove(probe).catch(() => {});
}

/**
 * Checks, before any training, where a trainer will write `<stem>.safetensors` and
 * `<stem>.json` (`out` may also name either file): the stem must be a file name (not empty, not
 * starting with a dot), its folder is created if needed and must be writable, both files must
 * resolve inside it (a symbolic link out of it is refused), and neither may be a folder or
 * other non-file. Existing weights are never replaced silently: unless `overwrite`, a file
 * already there is refused, naming it and the way out.
 *
 * @throws {OutputError} one line naming the path and `option`.
 * @example
 * ```ts
 * import { prepareWeightsOutput } from "./checkpoint.ts";
 * const { weights, json } = await prepareWeightsOutput("out/my-victim", { overwrite: false });
 * ```
 */
export async function prepareWeightsOutput(
  out: string,
  options: { option?: string; overwrite?: boolean } = {},
): Promise<WeightsOutput> {
  const option = options.option ?? "--out";
  const stem = out.replace(/\.(json|safetensors)$/, "");
  const name = basename(stem);
  if (!name || /[\\/]$/.test(stem) || name.startsWith(".")) {
    throw new OutputError(
      out,
      `${option} ${JSON.stringify(out)}: not a file name stem (give a path such as out/my-model; ` +
        "the name may not be empty or start with a dot)",
    );
  }
  let root: string;
  try {
    root = await prepareOutputDir(dirname(stem), { option: `${option}'s folder` });
  } catch (e) {
    if (e instanceof PathError) throw new OutputError(out, e.message);
    throw e;
  }
  const files: string[] = [];
  for (const ext of [".safetensors", ".json"]) {
    let p: string;
    try {
      p = await insideOutput(root, name + ext);
    } catch (e) {
      if (!(e instanceof PathError)) throw e;
      throw new OutputError(
        `${stem}${ext}`,
        `${stem}${ext}: a symbolic link out of ${option}'s folder ${root}; refused`,
      );
    }
    const shown = `${stem}${ext}`;
    const info = await lstatOrNull(p);
    if (info) {
      const target = info.isSymlink ? await Deno.stat(p).catch(() => null) : info;
      if (target && !target.isFile) {
        throw new OutputError(
          shown,
          `${shown}: ${option} names a ${target.isDirectory ? "folder" : "special file"}; ` +
            "refused (the trained weights go to <stem>.safetensors and <stem>.json)",
        );
      }
      if (!options.overwrite) {
        throw new OutputError(
          shown,
          `${shown}: already exists; not replaced (pass --overwrite to replace it, or choose ` +
            `another ${option})`,
        );
      }
    }
    files.push(p);
  }
  await probeWritable(root, dirname(stem), option);
  return {
    root,
    weights: files[0],
    json: files[1],
    display: { weights: `${stem}.safetensors`, json: `${stem}.json` },
  };
}

/**
 * Prepares a trainer's checkpoint folder before training: created if needed (refused when it or
 * a parent is a file), writable, and the checkpoint file inside it (`name`, default
 * `checkpoint.safetensors`) resolving inside it and a regular file if present. Returns the
 * checkpoint file's absolute path.
 *
 * @throws {OutputError} one line naming the folder and `option`.
 * @example
 * ```ts
 * import { prepareCheckpointDir } from "./checkpoint.ts";
 * const ckpt = await prepareCheckpointDir("cache/victims/vsfa-mini");
 * ```
 */
export async function prepareCheckpointDir(
  dir: string,
  options: { option?: string; name?: string } = {},
): Promise<string> {
  const option = options.option ?? "--checkpoint-dir";
  const name = options.name ?? "checkpoint.safetensors";
  let root: string;
  try {
    root = await prepareOutputDir(dir, { option });
  } catch (e) {
    if (e instanceof PathError) throw new OutputError(dir, e.message);
    throw e;
  }
  let file: string;
  try {
    file = await insideOutput(root, name);
  } catch (e) {
    if (!(e instanceof PathError)) throw e;
    throw new OutputError(dir, `${dir}/${name}: a symbolic link out of ${option}; refused`);
  }
  const info = await Deno.stat(file).catch(() => null);
  if (info && !info.isFile) {
    throw new OutputError(dir, `${dir}/${name}: is not a regular file; refused (${option})`);
  }
  await probeWritable(root, dir, option);
  return file;
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
