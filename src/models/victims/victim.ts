/**
 * The victim interface shared by the VQA families, and small helpers for their parameters.
 *
 * A victim maps a clip `[T,3,H,W]` (RGB in [0,1]) to one quality score on the label scale
 * (1..5 for the proxy dataset), differentiably with respect to the frames, so that attacks can
 * back-propagate into the input.
 *
 * @module
 */

import { z } from "zod";
import { formatZodError, type SameShape } from "../../_zod.ts";
import { bindingLimit, getGpu } from "../../gpu/device.ts";
import { fans, kaimingUniform, uniform } from "../../nn/init.ts";
import { full, noGrad, type Tensor, tensor, tidy } from "../../tensor/tensor.ts";
import {
  add,
  concat,
  foldBatchNorm,
  globalStdPool,
  localNormalize,
  log,
  mul,
  slice,
  sub,
} from "../../nn/mod.ts";

/** The small victim families this toolkit trains and bundles (`deno task train-victim`).
 *
 * @example
 * ```ts
 * import { TRAINABLE_FAMILIES } from "./victim.ts";
 * console.log(TRAINABLE_FAMILIES.join(", "));
 * ```
 */
export const TRAINABLE_FAMILIES = [
  "vsfa-mini",
  "simplevqa-mini",
  "fastvqa-mini",
  "vsfa-mobilenetv2",
] as const;

/** One of {@link TRAINABLE_FAMILIES}. */
export type TrainableFamily = typeof TRAINABLE_FAMILIES[number];

/** The published models, loaded from their authors' weight files (`--weights`).
 *
 * @example
 * ```ts
 * import { PUBLISHED_FAMILIES } from "./victim.ts";
 * console.log(PUBLISHED_FAMILIES.join(", ")); // vsfa, mdtvsfa, simplevqa, fast-vqa, faster-vqa, dover
 * ```
 */
export const PUBLISHED_FAMILIES = [
  "vsfa",
  "mdtvsfa",
  "simplevqa",
  "fast-vqa",
  "faster-vqa",
  "dover",
] as const;

/** One of {@link PUBLISHED_FAMILIES}. */
export type PublishedFamily = typeof PUBLISHED_FAMILIES[number];

/** Every victim family: the trainable ones and the published ones.
 *
 * @example
 * ```ts
 * import { VICTIM_FAMILIES } from "./victim.ts";
 * console.log(VICTIM_FAMILIES.join(", "));
 * ```
 */
export const VICTIM_FAMILIES = [...TRAINABLE_FAMILIES, ...PUBLISHED_FAMILIES] as const;

/** One of {@link VICTIM_FAMILIES}. */
export type VictimFamily = typeof VICTIM_FAMILIES[number];

/**
 * Config fields every family has: the input it was trained on and its score range. Family
 * configs add their own fields to these (object types rather than interfaces, so that a config
 * is also a `Record<string, unknown>`, as saved beside the weights).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import type { BaseConfig } from "./victim.ts";
 * const base: BaseConfig = {
 *   frames: 8, height: 64, width: 64, qMin: 1, qMax: 5, slope: 0.1, input: "rgb", logStd: false,
 * };
 * assert.equal(base.qMax - base.qMin, 4);
 * ```
 */
export type BaseConfig = {
  /** Frames per clip the model was trained on (clips are read with at most this many). */
  frames: number;
  /** Frame height the clips are scaled to when read; null keeps the file's resolution. */
  height: number | null;
  /** Frame width the clips are scaled to when read; null keeps the file's resolution. */
  width: number | null;
  /** Lowest label of the training scale (the score-reversed boundary for high-quality clips). */
  qMin: number;
  /** Highest label of the training scale. */
  qMax: number;
  /** Negative slope of the leaky ReLUs. */
  slope: number;
  /** The first layer's input: the frames, or the frames and their MSCN coefficients. */
  input: "rgb" | "rgb+mscn";
  /** Std-pooled features enter as `log(std + 1e-3)` (ratios between scales become differences). */
  logStd: boolean;
};

/**
 * Validates the fields of {@link BaseConfig} (`input` defaults to "rgb", `logStd` to false);
 * each family extends it with its own.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { BaseConfigSchema } from "./victim.ts";
 * const fields = { frames: 8, height: null, width: null, qMin: 1, qMax: 5, slope: 0.1 };
 * const c = BaseConfigSchema.parse(fields);
 * assert.deepEqual([c.input, c.logStd], ["rgb", false]);
 * ```
 */
export const BaseConfigSchema = z.object({
  frames: z.number().int().positive().max(4096),
  height: z.number().int().positive().max(16384).nullable(),
  width: z.number().int().positive().max(16384).nullable(),
  qMin: z.number(),
  qMax: z.number(),
  slope: z.number().min(0).max(1),
  input: z.enum(["rgb", "rgb+mscn"]).default("rgb"),
  logStd: z.boolean().default(false),
});
const _sameBase: SameShape<BaseConfig, z.output<typeof BaseConfigSchema>> = true;

/**
 * The {@link BaseConfig} of a published victim: it reads the frames as they are (`input`
 * "rgb"; each model normalises them as its authors do) and has no log-std option.
 *
 * @example
 * ```ts
 * import type { PublishedBaseConfig } from "./victim.ts";
 * const c: PublishedBaseConfig = {
 *   frames: 240, height: null, width: null, qMin: 0, qMax: 1, slope: 0, input: "rgb", logStd: false,
 * };
 * ```
 */
export type PublishedBaseConfig = Omit<BaseConfig, "input" | "logStd"> & {
  /** The frames as they are (RGB in [0, 1]). */
  input: "rgb";
  /** Not used. */
  logStd: false;
};

/** Validates the fields of a {@link PublishedBaseConfig}; each published family extends it. */
export const PublishedBaseSchema = BaseConfigSchema.extend({
  input: z.literal("rgb").default("rgb"),
  logStd: z.literal(false).default(false),
});
const _samePublished: SameShape<PublishedBaseConfig, z.output<typeof PublishedBaseSchema>> = true;

/**
 * A differentiable video quality model.
 *
 * @example
 * ```ts
 * import { initGpu, loadVictim, readVideo } from "../../../mod.ts";
 * await initGpu();
 * const victim = await loadVictim("vsfa-mini");
 * const c = victim.config;
 * const frames = await readVideo("data/samples/astronaut_pan.mkv", {
 *   maxFrames: c.frames,
 *   size: c.width && c.height ? { width: c.width, height: c.height } : undefined,
 * });
 * const score = victim.score(frames); // [1], on the 1..5 scale
 * console.log((await score.read())[0]);
 * ```
 */
export interface Victim {
  /** The family, e.g. `vsfa-mini`. */
  readonly family: VictimFamily;
  /** A name (the family, or the weights file's stem). */
  readonly name: string;
  /** The family's config (zod-validated), with `frames`, `height`, `width`, `qMin`, `qMax`. */
  readonly config: BaseConfig & Record<string, unknown>;
  /** The parameters by name (the names of the safetensors file). */
  parameters(): Record<string, Tensor>;
  /** The clip's score `[1]`; frames `[T,3,H,W]` in [0,1]. Differentiable. */
  score(frames: Tensor): Tensor;
  /** Scores of a batch of clips `[B,T,3,H,W]` -> `[B]`. Differentiable. */
  scoreBatch(clips: Tensor): Tensor;
  /** Per-frame scores `[T]` (before temporal pooling), for families that have them. */
  frameScores?(frames: Tensor): Tensor;
  /**
   * Maps a read clip `[T,3,H,W]` (or a batch `[B,T,3,H,W]`) to the tensor the network actually
   * looks at (e.g. FAST-VQA's fragments), keeping the rank. `score(x)` equals `scorePrepared(prepare(x))`; training
   * caches prepared clips to save memory. Differentiable.
   */
  prepare(clips: Tensor): Tensor;
  /** {@link Victim.scoreBatch} on clips already passed through {@link Victim.prepare}. */
  scorePrepared(prepared: Tensor): Tensor;
  /**
   * A scorer that takes the clip chunk by chunk (see {@link VictimStream}): the family's
   * temporal state is carried across chunks, so the result equals {@link Victim.score} and
   * {@link Victim.frameScores} of the whole clip. Forward only (no gradient flows through it).
   */
  stream(options?: StreamOptions): VictimStream;
  /** Frees the parameters. */
  dispose(): void;
}

/** Options of {@link Victim.stream}. */
export interface StreamOptions {
  /**
   * The video's frame count, when known. Families whose sampling spans the whole video
   * (fast-vqa, faster-vqa, dover) need it; the others ignore it.
   */
  frames?: number;
}

/** What {@link VictimStream.finish} gives: the whole clip's scores. */
export interface VictimStreamResult {
  /** The clip's score, as {@link Victim.score} of the whole clip gives it. */
  score: number;
  /** Per-frame scores in frame order (before temporal pooling), as {@link Victim.frameScores}. */
  frameScores: number[];
  /** Frames pushed. */
  frames: number;
}

/**
 * A victim scoring one clip chunk by chunk (from {@link Victim.stream}), so that a video of any
 * length is scored with memory bounded by the chunk: push the frames `[t,3,H,W]` in order (any
 * chunk sizes, all of one frame size), then `finish()`. Each family carries its temporal state
 * across chunks on the GPU (vsfa-mini its GRU's hidden state; simplevqa-mini the previous frame,
 * for its frame differences; fastvqa-mini the previous frame's first-stage features, for its
 * temporal difference), and the per-frame scores come back to the CPU as numbers (one small
 * read per chunk, not awaited by `push`); `finish()` pools them over the whole clip as the
 * whole-clip model does (vsfa-mini's hysteresis pooling, the others' mean). Between chunks it
 * holds the state (a frame or less) and `T` numbers, whatever the video's length. Forward only:
 * nothing is recorded for gradients, even for frames that require one.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu, loadVictim, tensor } from "../../../mod.ts";
 * await initGpu();
 * const victim = await loadVictim("vsfa-mini");
 * const f = 3 * 64 * 64; // values per frame
 * const clip = new Float32Array(5 * f).map((_, i) => (i % 97) / 97);
 * const stream = victim.stream();
 * for (const [start, end] of [[0, 2], [2, 5]]) {
 *   const chunk = tensor(clip.subarray(start * f, end * f), [end - start, 3, 64, 64]);
 *   stream.push(chunk);
 *   chunk.dispose(); // the stream keeps what it needs
 * }
 * const { score, frameScores } = await stream.finish();
 * const whole = (await victim.score(tensor(clip, [5, 3, 64, 64])).read())[0];
 * assert.equal(frameScores.length, 5);
 * assert.ok(Math.abs(score - whole) <= 1e-5 * Math.abs(whole));
 * ```
 */
export interface VictimStream {
  /** Frames pushed so far. */
  readonly frames: number;
  /**
   * Scores the next frames of the clip, `[t,3,H,W]` in [0,1] (`t` may be 0). The chunk can be
   * disposed as soon as this returns. Throws after `finish()` or `dispose()`, and for a chunk
   * whose frame size differs from the earlier chunks'.
   */
  push(frames: Tensor): void;
  /** The clip's scores; frees the stream. Throws when no frame was pushed. */
  finish(): Promise<VictimStreamResult>;
  /** Frees the stream's state without a result (safe to call twice, and after `finish()`). */
  dispose(): void;
}

/**
 * Checks the next chunk pushed to a victim's stream: the stream is open, the chunk is frames
 * `[t,3,H,W]`, of the size of the earlier chunks (`size`, null before the first). Returns
 * `[t, H, W]`. Every family's stream checks its chunks with it, so they fail alike.
 *
 * @throws {Error} after `finish()` or `dispose()`; {@link RangeError} naming the shape, or both
 *   sizes and the frame where they change.
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../../tensor/tensor.ts";
 * import { checkStreamChunk } from "./victim.ts";
 * await initGpu();
 * const chunk = full([2, 3, 32, 64], 0);
 * assert.deepEqual(checkStreamChunk("v", chunk, { closed: null, size: null, frames: 0 }), [2, 32, 64]);
 * assert.throws(
 *   () => checkStreamChunk("v", chunk, { closed: null, size: [64, 64], frames: 5 }),
 *   /v stream: a chunk of 64x32 frames after frames of 64x64 \(frame 5\)/,
 * );
 * ```
 */
export function checkStreamChunk(
  who: string,
  frames: Tensor,
  state: { closed: string | null; size: readonly [number, number] | null; frames: number },
): [number, number, number] {
  if (state.closed) throw new Error(`${who} stream: push after the stream was ${state.closed}`);
  if (frames.rank !== 4 || frames.shape[1] !== 3) {
    throw new RangeError(
      `${who} stream: a chunk must be frames [t,3,H,W] (RGB in [0,1]), got [${frames.shape}]`,
    );
  }
  const [t, , h, w] = frames.shape;
  if (state.size && (state.size[0] !== h || state.size[1] !== w)) {
    throw new RangeError(
      `${who} stream: a chunk of ${w}x${h} frames after frames of ${state.size[1]}x${
        state.size[0]
      } (frame ${state.frames}); every chunk of a clip has the same frame size`,
    );
  }
  return [t, h, w];
}

/** What a family gives {@link chunkedStream}: how to score one chunk from the carried state. */
export interface StreamSteps {
  /** The model's name for messages, e.g. `vsfa-mini`. */
  who: string;
  /**
   * Frames the first scored chunk needs (2 where frame 0 looks at frame 1, as in the frame
   * differences of simplevqa-mini and fastvqa-mini); fewer are held until more come or the
   * stream ends.
   */
  firstChunk: number;
  /**
   * Per-frame scores `[1,t]` of a chunk and the state after it, from the state before it (null
   * at the start of the clip). The chunk comes as consecutive parts `[1,t_i,3,H,W]`: one, except
   * for the first chunk, where the frames held from earlier pushes (too few to start) come before
   * the pushed ones; they are not concatenated, as two frames of a large video may not fit one
   * binding (see {@link joinParts} and {@link partsRange}). Runs without gradients inside a
   * `tidy`.
   */
  step(parts: readonly Tensor[], state: Tensor[] | null): { scores: Tensor; state: Tensor[] };
  /** The clip score `[1]` from all per-frame scores `[1,T]`, as the whole-clip model pools them. */
  pool(scores: Tensor): Tensor;
}

/**
 * The parts of a chunk (see {@link StreamSteps.step}) as one tensor `[1,t,3,H,W]`: the part
 * itself when there is one, else their concatenation along the frames.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { joinParts } from "./victim.ts";
 * await initGpu();
 * const a = tensor(new Float32Array(3 * 4), [1, 1, 3, 2, 2]);
 * joinParts([a, a]).shape; // [1, 2, 3, 2, 2]
 * ```
 */
export function joinParts(parts: readonly Tensor[]): Tensor {
  return parts.length === 1 ? parts[0] : concat(parts, 1);
}

/**
 * Frames `[start, end)` of a chunk given as parts (see {@link StreamSteps.step}), `[1,e-s,3,H,W]`:
 * a slice of one part when they lie in one (the part itself when it is exactly those frames),
 * else the slices of the parts concatenated.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { partsRange } from "./victim.ts";
 * await initGpu();
 * const a = tensor(new Float32Array(2 * 3 * 4), [1, 2, 3, 2, 2]);
 * const b = tensor(new Float32Array(3 * 4), [1, 1, 3, 2, 2]);
 * partsRange([a, b], 1, 3).shape; // [1, 2, 3, 2, 2]
 * ```
 */
export function partsRange(parts: readonly Tensor[], start: number, end: number): Tensor {
  const pieces: Tensor[] = [];
  let at = 0;
  for (const p of parts) {
    const n = p.shape[1];
    const s = Math.max(start, at);
    const e = Math.min(end, at + n);
    if (s < e) {
      pieces.push(s === at && e === at + n ? p : slice(p, { axis: 1, start: s - at, end: e - at }));
    }
    at += n;
  }
  if (pieces.length === 0) {
    throw new RangeError(`partsRange: frames [${start}, ${end}) of a chunk of ${at} frames`);
  }
  return pieces.length === 1 ? pieces[0] : concat(pieces, 1);
}

/**
 * A {@link VictimStream} from a family's {@link StreamSteps}: checks the chunks, carries the
 * state (kept out of the caller's `tidy` scopes), reads each chunk's scores back without
 * waiting, and pools them at `finish()`.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { full, initGpu, tensor } from "../../../mod.ts";
 * import { add, concat, mean, slice, sum } from "../../nn/mod.ts";
 * import { chunkedStream, joinParts } from "./victim.ts";
 * await initGpu();
 * // A toy model: a frame's score is its pixel sum plus the previous frame's (0 for frame 0).
 * const stream = chunkedStream({
 *   who: "toy",
 *   firstChunk: 1,
 *   step(parts, state) {
 *     const chunk = joinParts(parts);
 *     const t = chunk.shape[1];
 *     const sums = sum(chunk.reshape([t, -1]), { axes: 1 }).reshape([1, t]);
 *     const prev = state ? state[0] : full([1, 1], 0);
 *     const before = t === 1 ? prev : concat([prev, slice(sums, { axis: 1, end: t - 1 })], 1);
 *     return { scores: add(sums, before), state: [slice(sums, { axis: 1, start: t - 1 })] };
 *   },
 *   pool: (s) => mean(s, { axes: 1 }),
 * });
 * stream.push(tensor(new Float32Array(2 * 3 * 2 * 2).fill(0.5), [2, 3, 2, 2])); // sums 6, 6
 * stream.push(tensor(new Float32Array(3 * 2 * 2).fill(0.5), [1, 3, 2, 2])); // sum 6
 * const r = await stream.finish();
 * assert.deepEqual(r.frameScores, [6, 12, 12]);
 * assert.equal(r.score, 10);
 * ```
 */
export function chunkedStream(steps: StreamSteps): VictimStream {
  return new ChunkedStream(steps);
}

class ChunkedStream implements VictimStream {
  #steps: StreamSteps;
  #frames = 0;
  #size: [number, number] | null = null;
  #state: Tensor[] | null = null;
  #held: Tensor[] = [];
  #pending: Promise<Float32Array>[] = [];
  #closed: "finished" | "disposed" | null = null;

  constructor(steps: StreamSteps) {
    this.#steps = steps;
  }

  get frames(): number {
    return this.#frames;
  }

  push(frames: Tensor): void {
    const who = this.#steps.who;
    const [t, h, w] = checkStreamChunk(who, frames, {
      closed: this.#closed,
      size: this.#size,
      frames: this.#frames,
    });
    this.#size = [h, w];
    if (t === 0) return;
    noGrad(() => {
      this.#frames += t;
      const have = this.#held.reduce((n, p) => n + p.shape[0], 0);
      if (this.#state === null && have + t < this.#steps.firstChunk) {
        // Too few frames to start the clip: keep a copy (the caller may free `frames`).
        this.#held.push(tidy(() => concat([frames], 0)).keep());
        return;
      }
      // Held frames come first, as parts of their own: not concatenated with this chunk, as two
      // frames of a large video may not fit one binding.
      const parts = [...this.#held, frames];
      this.#held = [];
      try {
        this.#run(parts);
      } finally {
        for (const p of parts) if (p !== frames) p.dispose();
      }
    });
  }

  #run(parts: readonly Tensor[]): void {
    const state = this.#state;
    const n = parts.reduce((k, p) => k + p.shape[0], 0);
    // The views outside the step's tidy, freed even when the step throws (a tidy that throws
    // frees nothing, and a view holds the caller's buffer).
    const views = parts.map((p) => p.reshape([1, ...p.shape]).keep());
    let out: Tensor[];
    try {
      out = tidy(() => {
        const r = this.#steps.step(views, state);
        return [r.scores.reshape([n]), ...r.state];
      });
    } finally {
      for (const v of views) v.dispose();
    }
    for (const t of out) t.keep();
    for (const t of state ?? []) t.dispose();
    this.#state = out.slice(1);
    const read = out[0].read(); // copies and submits now; awaited in finish()
    read.catch(() => {}); // a failure is reported by finish(), not as an unhandled rejection
    this.#pending.push(read);
    out[0].dispose();
  }

  async finish(): Promise<VictimStreamResult> {
    const who = this.#steps.who;
    if (this.#closed) throw new Error(`${who} stream: finish after the stream was ${this.#closed}`);
    try {
      if (this.#held.length > 0) {
        // The whole clip is shorter than the first chunk needs: score it as the whole-clip model.
        const held = this.#held;
        this.#held = [];
        try {
          noGrad(() => this.#run(held));
        } finally {
          for (const p of held) p.dispose();
        }
      }
      if (this.#frames === 0) throw new RangeError(`${who} stream: no frames were pushed`);
      const parts = await Promise.all(this.#pending);
      const q = new Float32Array(this.#frames);
      let at = 0;
      for (const p of parts) {
        q.set(p, at);
        at += p.length;
      }
      const pooled = tidy(() => noGrad(() => this.#steps.pool(tensor(q, [1, q.length])))).keep();
      let score: number;
      try {
        score = (await pooled.read())[0];
      } finally {
        pooled.dispose();
      }
      return { score, frameScores: Array.from(q), frames: this.#frames };
    } finally {
      this.dispose();
      this.#closed = "finished";
    }
  }

  dispose(): void {
    for (const t of this.#state ?? []) t.dispose();
    this.#state = null;
    for (const p of this.#held) p.dispose();
    this.#held = [];
    this.#pending = [];
    this.#closed ??= "disposed";
  }
}

/** Collects parameters, each drawn with its own seed derived from one model seed.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { ParamBuilder } from "./victim.ts";
 * await initGpu();
 * const pb = new ParamBuilder(1);
 * pb.conv("conv1", 3, 8, 3, 0.1);
 * pb.linear("head", 8, 1, 3);
 * console.log(Object.keys(pb.params));
 * ```
 */
export class ParamBuilder {
  /** The parameters made so far, by name (none when only shapes are recorded). */
  readonly params: Record<string, Tensor> = {};
  /** The shapes of the parameters made (or, with `shapesOnly`, described) so far, by name. */
  readonly shapes: Record<string, number[]> = {};
  #seed: number;
  #n = 0;
  #shapesOnly: boolean;

  /**
   * A builder drawing from `seed`. With `shapesOnly` nothing is allocated: only
   * {@link ParamBuilder.shapes} is filled (to check a config's size before building it).
   */
  constructor(seed: number, options: { shapesOnly?: boolean } = {}) {
    this.#seed = seed;
    this.#shapesOnly = options.shapesOnly ?? false;
  }

  #next(): number {
    return this.#seed * 1000 + ++this.#n;
  }

  #add(name: string, shape: number[], make: () => Tensor): void {
    this.shapes[name] = shape;
    if (!this.#shapesOnly) this.params[name] = make();
  }

  /** A conv layer `[out, in, k, k]` (Kaiming uniform for a leaky ReLU) and a zero bias. */
  conv(name: string, cin: number, cout: number, k: number, slope: number): void {
    const seed = this.#next();
    this.#add(
      `${name}.weight`,
      [cout, cin, k, k],
      () => kaimingUniform([cout, cin, k, k], { seed, a: slope }),
    );
    this.#add(`${name}.bias`, [cout], () => full([cout], 0, { requiresGrad: true }));
  }

  /** A conv weight `[out, in, k, k]` alone (no bias), Kaiming uniform for a ReLU. */
  convWeight(name: string, cin: number, cout: number, k: number): void {
    const seed = this.#next();
    this.#add(name, [cout, cin, k, k], () => kaimingUniform([cout, cin, k, k], { seed, a: 0 }));
  }

  /**
   * A 3-D conv weight `[out, in, kt, kh, kw]` alone (no bias), Kaiming uniform for a ReLU, as
   * `torch.nn.Conv3d(cin, cout, kernel, bias=False)`'s weight.
   */
  conv3dWeight(
    name: string,
    cin: number,
    cout: number,
    kernel: readonly [number, number, number],
  ): void {
    const seed = this.#next();
    const shape = [cout, cin, ...kernel];
    this.#add(name, shape, () => kaimingUniform(shape, { seed, a: 0 }));
  }

  /**
   * A batch norm's four tensors in torchvision's names (`<name>.weight`, `.bias`,
   * `.running_mean`, `.running_var`), drawn at random near the identity (weight and variance in
   * [0.5, 1.5], bias and mean in [-0.2, 0.2]) so that every term of the normalisation counts.
   */
  batchNorm(name: string, channels: number): void {
    const u = (key: string, low: number, high: number) => {
      const seed = this.#next();
      this.#add(`${name}.${key}`, [channels], () => uniform([channels], { seed, low, high }));
    };
    u("weight", 0.5, 1.5);
    u("bias", -0.2, 0.2);
    u("running_mean", -0.2, 0.2);
    u("running_var", 0.5, 1.5);
  }

  /**
   * A tensor of any shape drawn uniformly from `[low, high)` (e.g. a relative position bias
   * table, a layer scale, or the bias of a layer built from its weight alone).
   */
  uniform(name: string, shape: readonly number[], low: number, high: number): void {
    const seed = this.#next();
    this.#add(name, [...shape], () => uniform([...shape], { seed, low, high }));
  }

  /**
   * A layer norm's `<name>.weight` and `<name>.bias`, drawn at random near the identity (weight
   * in [0.5, 1.5], bias in [-0.2, 0.2]) so that both terms count in a parity test.
   */
  layerNorm(name: string, channels: number): void {
    this.uniform(`${name}.weight`, [channels], 0.5, 1.5);
    this.uniform(`${name}.bias`, [channels], -0.2, 0.2);
  }

  /** A linear layer `[out, in]` with PyTorch's default init, or a given constant bias. */
  linear(name: string, cin: number, cout: number, bias?: number): void {
    const bound = 1 / Math.sqrt(fans([cout, cin]).fanIn);
    const seed = this.#next();
    this.#add(
      `${name}.weight`,
      [cout, cin],
      () => uniform([cout, cin], { seed, low: -bound, high: bound }),
    );
    if (bias === undefined) {
      const seedB = this.#next();
      this.#add(
        `${name}.bias`,
        [cout],
        () => uniform([cout], { seed: seedB, low: -bound, high: bound }),
      );
    } else {
      this.#add(`${name}.bias`, [cout], () => full([cout], bias, { requiresGrad: true }));
    }
  }

  /**
   * A GRU cell in PyTorch's layout, `U(-1/sqrt(H), 1/sqrt(H))` as torch.nn.GRUCell; `suffix`
   * is added to each name (`_l0` gives torch.nn.GRU's names for its first layer).
   */
  gru(name: string, input: number, hidden: number, suffix = ""): void {
    const b = 1 / Math.sqrt(hidden);
    const u = (key: string, shape: number[]) => {
      const seed = this.#next();
      this.#add(
        `${name}.${key}${suffix}`,
        shape,
        () => uniform(shape, { seed, low: -b, high: b }),
      );
    };
    u("weight_ih", [3 * hidden, input]);
    u("weight_hh", [3 * hidden, hidden]);
    u("bias_ih", [3 * hidden]);
    u("bias_hh", [3 * hidden]);
  }
}

/**
 * A convolution with its batch norm folded in, from parameters named as
 * {@link ParamBuilder.batchNorm} names them (`<bn>.weight`, `.bias`, `.running_mean`,
 * `.running_var`): new tensors kept out of any tidy scope, with no gradient history (the
 * published backbones fold on first use; their parameters are frozen). A missing parameter is
 * an error naming it.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { foldConvBn, ParamBuilder } from "./victim.ts";
 * await initGpu();
 * const pb = new ParamBuilder(1);
 * pb.convWeight("conv.weight", 3, 8, 3);
 * pb.batchNorm("bn", 8);
 * const { weight, bias } = foldConvBn(pb.params, "conv.weight", "bn", 1e-5); // [8,3,3,3], [8]
 * ```
 */
export function foldConvBn(
  params: Record<string, Tensor>,
  convWeight: string,
  bn: string,
  eps: number,
): { weight: Tensor; bias: Tensor } {
  const names = [
    convWeight,
    ...["weight", "bias", "running_mean", "running_var"].map((k) => `${bn}.${k}`),
  ];
  const absent = names.find((n) => !params[n]);
  if (absent) throw new RangeError(`foldConvBn: no parameter '${absent}'`);
  const f = noGrad(() =>
    foldBatchNorm({ weight: params[convWeight] }, {
      weight: params[`${bn}.weight`],
      bias: params[`${bn}.bias`],
      runningMean: params[`${bn}.running_mean`],
      runningVar: params[`${bn}.running_var`],
      eps,
    })
  );
  return { weight: f.weight.keep(), bias: f.bias.keep() };
}

/** The largest width (channels, hidden units) a model config may ask for. */
export const MAX_MODEL_WIDTH = 4096;

/**
 * The memory budget of one model's parameters, in bytes (256 MiB). Training holds four copies
 * (the weights, their gradients and Adam's two moments), so a model at the budget needs about
 * 1 GiB of GPU memory before any activation.
 */
export const MAX_PARAMETER_BYTES = 256 * 2 ** 20;

/**
 * A model config that is invalid, or that cannot fit in memory: one line naming the field and
 * its value (or the tensor and the limit it breaks). Raised before anything is allocated.
 *
 * @example
 * ```ts
 * import { ModelConfigError } from "./victim.ts";
 * const e = new ModelConfigError("vsfa-mini config: hidden: Number must be less than or equal to 4096");
 * console.log(e.name);
 * ```
 */
export class ModelConfigError extends RangeError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ModelConfigError";
  }
}

/**
 * Validates a family's config: `overrides` on top of `defaults`, through `schema`; any issue is
 * a {@link ModelConfigError} `<who> config: <field>: <message>` (all issues, joined by "; ").
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { parseModelConfig } from "./victim.ts";
 * const c = parseModelConfig("demo", z.object({ n: z.number().int() }), { n: 1 }, { n: 2 });
 * ```
 */
export function parseModelConfig<S extends z.ZodTypeAny>(
  who: string,
  schema: S,
  defaults: Record<string, unknown>,
  overrides: Record<string, unknown> | undefined,
): z.infer<S> {
  if (overrides !== undefined && (overrides === null || typeof overrides !== "object")) {
    throw new ModelConfigError(
      `${who} config: must be an object, got ${JSON.stringify(overrides)}`,
    );
  }
  const parsed = schema.safeParse({ ...defaults, ...overrides });
  if (!parsed.success) {
    throw new ModelConfigError(`${who} config: ${formatZodError(parsed.error)}`);
  }
  return parsed.data;
}

/** The parameter sizes a config implies, from {@link estimateParameters}. */
export interface ParameterEstimate {
  /** Bytes of all parameters (float32). */
  bytes: number;
  /** The largest parameter tensor. */
  largest: { name: string; shape: number[]; bytes: number };
}

/**
 * Bytes of a set of parameter shapes (float32), and the largest tensor.
 *
 * @example
 * ```ts
 * import { estimateParameters } from "./victim.ts";
 * estimateParameters({ w: [4, 3], b: [4] }).bytes; // 64
 * ```
 */
export function estimateParameters(shapes: Record<string, number[]>): ParameterEstimate {
  let bytes = 0;
  let largest = { name: "", shape: [] as number[], bytes: 0 };
  for (const [name, shape] of Object.entries(shapes)) {
    const b = 4 * shape.reduce((a, d) => a * d, 1);
    bytes += b;
    if (b > largest.bytes) largest = { name, shape, bytes: b };
  }
  return { bytes, largest };
}

function mib(bytes: number): string {
  return bytes >= 2 ** 30
    ? `${(bytes / 2 ** 30).toFixed(1)} GiB`
    : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** What a config needs against what there is: how many times over the tightest limit it is. */
interface SizeVerdict {
  excess: number;
  problem?: string;
}

/** Sizes of a config for {@link checkModelSize}: its parameters, and optionally activations. */
export interface ModelSize {
  /** The parameter shapes, by name. */
  shapes: Record<string, number[]>;
  /** The largest activation tensor of one forward pass, where it can be told. */
  activation?: { what: string; bytes: number };
}

function limitsOf(): { binding: number; buffer: number } {
  let binding = Infinity;
  let buffer = Infinity;
  try {
    const l = getGpu().limits;
    binding = bindingLimit();
    buffer = l.maxBufferSize;
  } catch { /* no GPU yet: only the budget applies */ }
  return { binding, buffer };
}

function verdict(size: ModelSize, budget: number): SizeVerdict {
  const { binding, buffer } = limitsOf();
  const tensorLimit = Math.min(binding, buffer);
  const e = estimateParameters(size.shapes);
  const checks: SizeVerdict[] = [
    {
      excess: e.largest.bytes / tensorLimit,
      problem:
        `parameter '${e.largest.name}' [${e.largest.shape}] would take ${
          mib(e.largest.bytes)
        }, more than one GPU buffer may hold on this adapter (${mib(tensorLimit)}, ` +
        `maxStorageBufferBindingSize / maxBufferSize)`,
    },
    {
      excess: e.bytes / budget,
      problem: `the parameters would take ${
        mib(e.bytes)
      } (largest '${e.largest.name}' [${e.largest.shape}]), more than the budget of ${
        mib(budget)
      } for one model`,
    },
  ];
  if (size.activation) {
    checks.push({
      excess: size.activation.bytes / binding,
      problem: `${size.activation.what} would take ${
        mib(size.activation.bytes)
      }, more than one GPU buffer may hold on this adapter (maxStorageBufferBindingSize ${
        mib(binding)
      })`,
    });
  }
  return checks.reduce((a, b) => (b.excess > a.excess ? b : a));
}

/**
 * Refuses, before anything is allocated, a config whose parameters cannot fit: the largest
 * tensor must fit one GPU buffer (the adapter's `maxStorageBufferBindingSize` and
 * `maxBufferSize`, once `initGpu` has run), all of them the `budget` (default
 * {@link MAX_PARAMETER_BYTES}), and the largest activation (when `size` tells it) one buffer.
 * The message names the field of `overrides` to blame (the one whose default value would help
 * most) with its value, and the tensor and limit.
 *
 * @throws {ModelConfigError} `<who> config: <field> <value>: <what would not fit>`.
 * @example
 * ```ts
 * import { checkModelSize } from "./victim.ts";
 * checkModelSize("demo", (c) => ({ shapes: { w: [c.n as number, c.n as number] } }), {
 *   config: { n: 8 },
 *   defaults: { n: 8 },
 * });
 * ```
 */
export function checkModelSize<C extends Record<string, unknown>>(
  who: string,
  size: (config: C) => ModelSize,
  options: {
    config: C;
    defaults: Partial<C>;
    overrides?: Record<string, unknown>;
    budget?: number;
  },
): void {
  const budget = options.budget ?? MAX_PARAMETER_BYTES;
  const v = verdict(size(options.config), budget);
  if (v.excess <= 1) return;
  // Blame the override whose default would shrink the excess most.
  let blame: { key: string; excess: number } | undefined;
  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    if (
      !(key in options.defaults) || JSON.stringify(options.defaults[key]) === JSON.stringify(value)
    ) {
      continue;
    }
    try {
      const e = verdict(size({ ...options.config, [key]: options.defaults[key] }), budget).excess;
      if (e < v.excess && (!blame || e < blame.excess)) blame = { key, excess: e };
    } catch { /* that combination is itself invalid */ }
  }
  const field = blame ? `${blame.key} ${JSON.stringify(options.config[blame.key])}: ` : "";
  throw new ModelConfigError(`${who} config: ${field}${v.problem}`);
}

/** Throws unless `x` is `[T,3,H,W]` (rank 4) or `[B,T,3,H,W]` (rank 5); returns it as rank 5.
 *
 * @example
 * ```ts
 * import { asBatch } from "./victim.ts";
 * // const clips = asBatch(frames, "my-model"); // [1,T,3,H,W]
 * ```
 */
export function asBatch(x: Tensor, who: string): Tensor {
  if (x.rank === 4 && x.shape[1] === 3) return x.reshape([1, ...x.shape]);
  if (x.rank === 5 && x.shape[2] === 3) return x;
  throw new RangeError(
    `${who}: frames must be [T,3,H,W] or a batch [B,T,3,H,W] (RGB in [0,1]), got [${x.shape}]`,
  );
}

/** Frees every tensor of a parameter record.
 *
 * @example
 * ```ts
 * import { disposeParams } from "./victim.ts";
 * // disposeParams(victim.parameters());
 * ```
 */
export function disposeParams(params: Record<string, Tensor>): void {
  for (const t of Object.values(params)) t.dispose();
}

/** How a family turns frames in [0,1] into the first conv's input. */
export const InputSchema = z.enum(["rgb", "rgb+mscn"]);

/**
 * Mean-subtracted contrast-normalised coefficients (as BRISQUE and NIQE use), per channel:
 * `(x - mu) / (sigma + c)` with `mu`, `sigma` the local mean and standard deviation over a
 * `kernel x kernel` window (border windows count only pixels inside the image). They remove
 * most of the content's local brightness and contrast and keep what distortions change: noise
 * raises them in flat areas, blur and compression flatten them. `[N,C,H,W] -> [N,C,H,W]`.
 * Differentiable.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { mscn } from "./victim.ts";
 * await initGpu();
 * const x = tensor(new Float32Array(3 * 8 * 8).map((_, i) => (i % 7) / 7), [1, 3, 8, 8]);
 * const y = mscn(x); // [1, 3, 8, 8]
 * ```
 */
export function mscn(x: Tensor, options: { kernel?: number; c?: number } = {}): Tensor {
  const { kernel = MSCN_KERNEL, c = 1 / 64 } = options;
  // mu and sigma: avg_pool2d of x and x^2 (stride 1, count_include_pad=False), fused in one op.
  return localNormalize(x, { kernel, c });
}

/** The window of {@link mscn} that {@link inputFeatures} uses (5x5). */
export const MSCN_KERNEL = 5;

/**
 * Pixels on each side that a pixel of {@link inputFeatures} depends on: the MSCN window's
 * radius for `rgb+mscn`, none for `rgb` (for the halo of a tile).
 *
 * @example
 * ```ts
 * import { inputHalo } from "./victim.ts";
 * inputHalo("rgb+mscn"); // 2
 * ```
 */
export function inputHalo(input: z.infer<typeof InputSchema>): number {
  return input === "rgb" ? 0 : (MSCN_KERNEL - 1) / 2;
}

/** The first conv's input: `x - 0.5`, with MSCN channels after it for `rgb+mscn`.
 *
 * @example
 * ```ts
 * import { inputFeatures } from "./victim.ts";
 * // const x0 = inputFeatures(frames, "rgb+mscn"); // [N,6,H,W]
 * ```
 */
export function inputFeatures(x: Tensor, input: z.infer<typeof InputSchema>): Tensor {
  const centred = sub(x, 0.5);
  return input === "rgb" ? centred : concat([centred, mul(mscn(x), 0.25)], 1);
}

/** Channels of {@link inputFeatures}.
 *
 * @example
 * ```ts
 * import { inputChannels } from "./victim.ts";
 * inputChannels("rgb+mscn"); // 6
 * ```
 */
export function inputChannels(input: z.infer<typeof InputSchema>): number {
  return input === "rgb" ? 3 : 6;
}

/** Global std pooling `[N,C,H,W] -> [N,C]`, log-compressed as `log(std + 1e-3)` when asked.
 *
 * @example
 * ```ts
 * import { stdFeatures } from "./victim.ts";
 * // const f = stdFeatures(features, true); // [N,C]
 * ```
 */
export function stdFeatures(x: Tensor, logStd: boolean): Tensor {
  return compressStd(globalStdPool(x), logStd);
}

/** A pooled std `[N,C]` as the models use it: `log(std + 1e-3)` when `logStd`, else as it is.
 *
 * @example
 * ```ts
 * import { compressStd } from "./victim.ts";
 * // const f = compressStd(tiledStd, true); // the same as stdFeatures on the whole map
 * ```
 */
export function compressStd(std: Tensor, logStd: boolean): Tensor {
  return logStd ? log(add(std, 1e-3)) : std;
}

/**
 * The largest activation of a stack of stride-2 3x3 convs over a batch of clips, for
 * {@link checkModelSize}: the input features (`[B*T, inputChannels, H, W]`) or the output of a
 * conv layer (`[B*T, channels[i], H/2^(i+1), W/2^(i+1)]`, the first layer's doubled with
 * `doubleFirst`), whichever is largest. Every one of these tensors exists in a forward pass, so
 * the estimate never exceeds the truth. Undefined when the frame size is not fixed.
 *
 * @example
 * ```ts
 * import { convStackActivation } from "./victim.ts";
 * convStackActivation({ frames: 8, height: 64, width: 64, inputChannels: 3, channels: [16] });
 * // { what: "the activation [8,16,32,32] of layer 1 (batch 1)", bytes: 524288 }
 * ```
 */
export function convStackActivation(o: {
  /** Frames per clip. */
  frames: number;
  /** Frame height (null: not fixed). */
  height: number | null;
  /** Frame width (null: not fixed). */
  width: number | null;
  /** Channels of the input features. */
  inputChannels: number;
  /** Output channels of each conv layer. */
  channels: readonly number[];
  /** Clips per forward pass (default 1). */
  batch?: number;
  /** The first layer's output is concatenated with as many channels again. */
  doubleFirst?: boolean;
}): { what: string; bytes: number } | undefined {
  if (o.height === null || o.width === null) return undefined;
  const n = (o.batch ?? 1) * o.frames;
  let h = o.height;
  let w = o.width;
  let best = {
    what: `the input [${n},${o.inputChannels},${h},${w}]`,
    bytes: 4 * n * o.inputChannels * h * w,
  };
  o.channels.forEach((c, i) => {
    h = Math.ceil(h / 2);
    w = Math.ceil(w / 2);
    const ch = i === 0 && o.doubleFirst ? 2 * c : c;
    const bytes = 4 * n * ch * h * w;
    if (bytes > best.bytes) {
      best = { what: `the activation [${n},${ch},${h},${w}] of layer ${i + 1}`, bytes };
    }
  });
  return { what: `${best.what} (batch ${o.batch ?? 1})`, bytes: best.bytes };
}
