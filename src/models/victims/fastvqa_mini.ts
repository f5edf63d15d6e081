/**
 * `fastvqa-mini`: a small model of FAST-VQA (Wu et al., "FAST-VQA: efficient end-to-end video
 * quality assessment with fragment sampling", ECCV 2022). Each frame is cut into a `grid x grid`
 * lattice of cells; the `patch x patch` patch at the centre of every cell is kept at full
 * resolution and the patches are spliced into one small frame (the "fragments"), which keeps
 * fine-grained artefacts (noise, blur, blocking) that resizing would erase. A small
 * spatiotemporal network reads the fragments: a strided conv per frame, then a (2+1)-D stage
 * that concatenates each frame's features with their temporal difference to the previous frame,
 * more strided convs, global mean and std pooling, a linear per-frame score, and the mean score
 * over frames, bounded into the config's `qMin..qMax` by a smooth clamp ({@link boundScore}; the
 * per-frame scores are not). Patch positions are fixed (cell centres), so the model is
 * deterministic.
 *
 * @module
 */

import { z } from "zod";
import type { SameShape } from "../../_zod.ts";
import {
  concat,
  conv2d,
  globalMeanPool,
  leakyRelu,
  linear,
  mean,
  slice,
  sub,
} from "../../nn/mod.ts";
import { bindingLimit } from "../../gpu/device.ts";
import { full, type Tensor, tidy } from "../../tensor/tensor.ts";
import {
  asBatch,
  type BaseConfig,
  BaseConfigSchema,
  checkModelSize,
  chunkedStream,
  convStackActivation,
  disposeParams,
  inputChannels,
  inputFeatures,
  joinParts,
  MAX_MODEL_WIDTH,
  type ModelSize,
  ParamBuilder,
  parseModelConfig,
  stdFeatures,
  type Victim,
  type VictimFamily,
  type VictimStream,
} from "./victim.ts";
import { framesPerGroup } from "./tiles.ts";
import { boundScore } from "./bound.ts";

/**
 * The config of {@link FastVqaMini}: the fields every family has ({@link BaseConfig}) and its own.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { FASTVQA_MINI_DEFAULTS, type FastVqaMiniConfig } from "./fastvqa_mini.ts";
 * const c: FastVqaMiniConfig = { ...FASTVQA_MINI_DEFAULTS, frames: 4 };
 * assert.equal(c.frames, 4);
 * ```
 */
export type FastVqaMiniConfig = BaseConfig & {
  /** Cells per side of the fragment lattice. */
  grid: number;
  /** Side of the full-resolution patch taken from each cell. */
  patch: number;
  /**
   * Output channels of the stride-2 3x3 convs; after the first, the features are concatenated
   * with their temporal difference (so the second layer sees twice the channels).
   */
  channels: number[];
};

/** Validates a {@link FastVqaMiniConfig} (unknown fields are refused). */
export const FastVqaMiniConfigSchema = BaseConfigSchema.extend({
  grid: z.number().int().positive().max(64),
  patch: z.number().int().positive().max(1024),
  channels: z.array(z.number().int().positive().max(MAX_MODEL_WIDTH)).min(2).max(16),
}).strict();
const _sameConfig: SameShape<FastVqaMiniConfig, z.output<typeof FastVqaMiniConfigSchema>> = true;

/** Defaults of {@link FastVqaMini}. */
export const FASTVQA_MINI_DEFAULTS: FastVqaMiniConfig = {
  frames: 8,
  height: null,
  width: null,
  qMin: 1,
  qMax: 5,
  slope: 0.1,
  input: "rgb",
  logStd: false,
  grid: 4,
  patch: 12,
  channels: [16, 24, 32, 48],
};

/**
 * Cuts fragments from frames: `[N,3,H,W] -> [N,3,grid*patch,grid*patch]`, the patch at the centre
 * of each of the `grid x grid` cells at full resolution. Differentiable (slices and concats).
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { fragments } from "./fastvqa_mini.ts";
 * await initGpu();
 * const x = tensor(new Float32Array(2 * 3 * 96 * 128), [2, 3, 96, 128]);
 * const f = fragments(x, { grid: 4, patch: 16 }); // [2, 3, 64, 64]
 * ```
 */
export function fragments(x: Tensor, options: { grid: number; patch: number }): Tensor {
  const { grid, patch } = options;
  const [, , h, w] = x.shape;
  const ch = Math.floor(h / grid);
  const cw = Math.floor(w / grid);
  if (x.rank !== 4 || ch < patch || cw < patch) {
    throw new RangeError(
      `fragments: frames [${x.shape}] are too small for a ${grid}x${grid} grid of ` +
        `${patch}x${patch} patches (need at least ${grid * patch}x${grid * patch})`,
    );
  }
  const rows: Tensor[] = [];
  for (let i = 0; i < grid; i++) {
    const y0 = i * ch + Math.floor((ch - patch) / 2);
    const row: Tensor[] = [];
    for (let j = 0; j < grid; j++) {
      const x0 = j * cw + Math.floor((cw - patch) / 2);
      row.push(slice(x, [
        { axis: 2, start: y0, end: y0 + patch },
        { axis: 3, start: x0, end: x0 + patch },
      ]));
    }
    rows.push(grid === 1 ? row[0] : concat(row, 3));
  }
  return grid === 1 ? rows[0] : concat(rows, 2);
}

function buildParams(pb: ParamBuilder, c: FastVqaMiniConfig): void {
  let cin = inputChannels(c.input);
  c.channels.forEach((cout, i) => {
    pb.conv(`conv${i + 1}`, i === 1 ? 2 * cin : cin, cout, 3, c.slope);
    cin = cout;
  });
  pb.linear("head", 2 * cin, 1, (c.qMin + c.qMax) / 2);
}

/**
 * The sizes a `fastvqa-mini` config implies, without allocating: its parameter shapes and the
 * largest conv activation on the `grid * patch` square fragments of `batch` clips.
 *
 * @example
 * ```ts
 * import { FASTVQA_MINI_DEFAULTS, fastVqaMiniSize } from "./fastvqa_mini.ts";
 * const { shapes } = fastVqaMiniSize(FASTVQA_MINI_DEFAULTS);
 * console.log(shapes["conv2.weight"]); // [24, 32, 3, 3]
 * ```
 */
export function fastVqaMiniSize(c: FastVqaMiniConfig, batch = 1): ModelSize {
  const pb = new ParamBuilder(0, { shapesOnly: true });
  buildParams(pb, c);
  const side = c.grid * c.patch;
  return {
    shapes: pb.shapes,
    activation: convStackActivation({
      frames: c.frames,
      height: side,
      width: side,
      inputChannels: inputChannels(c.input),
      channels: c.channels,
      batch,
      doubleFirst: true,
    }),
  };
}

/**
 * The `fastvqa-mini` victim.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { FastVqaMini } from "./fastvqa_mini.ts";
 * await initGpu();
 * const model = new FastVqaMini({ seed: 1 });
 * const frames = tensor(new Float32Array(4 * 3 * 96 * 96).fill(0.5), [4, 3, 96, 96]);
 * const q = model.score(frames); // [1]
 * ```
 */
export class FastVqaMini implements Victim {
  /** The family name. */
  readonly family: VictimFamily = "fastvqa-mini";
  /** The model's name. */
  readonly name: string;
  /** The validated config. */
  readonly config: FastVqaMiniConfig;
  #params: Record<string, Tensor>;

  /**
   * A fresh model (weights seeded by `seed`, default 0); the config overrides the defaults. An
   * invalid config, or one that cannot fit (see `checkModelSize`), is a `ModelConfigError`
   * naming the field, before anything is allocated.
   */
  constructor(
    options: { config?: Partial<FastVqaMiniConfig>; seed?: number; name?: string } = {},
  ) {
    this.config = parseModelConfig(
      "fastvqa-mini",
      FastVqaMiniConfigSchema,
      FASTVQA_MINI_DEFAULTS,
      options.config,
    );
    checkModelSize("fastvqa-mini", (c) => fastVqaMiniSize(c), {
      config: this.config,
      defaults: FASTVQA_MINI_DEFAULTS,
      overrides: options.config,
    });
    this.name = options.name ?? this.family;
    const pb = new ParamBuilder(options.seed ?? 0);
    buildParams(pb, this.config);
    this.#params = pb.params;
  }

  /** The parameters by name. */
  parameters(): Record<string, Tensor> {
    return this.#params;
  }

  /**
   * Fragments of a clip `[T,3,H,W] -> [T,3,S,S]` or a batch `[B,T,3,H,W] -> [B,T,3,S,S]`, with
   * `S = grid * patch`.
   */
  prepare(clips: Tensor): Tensor {
    const x5 = asBatch(clips, "fastvqa-mini");
    const [b, t, , h, w] = x5.shape;
    const f = fragments(x5.reshape([b * t, 3, h, w]), this.config);
    const s = [t, 3, f.shape[2], f.shape[3]];
    return f.reshape(clips.rank === 4 ? s : [b, ...s]);
  }

  /** Per-frame scores of prepared fragments `[B,T,3,S,S]` -> `[B,T]`. */
  frameScoresPrepared(prepared: Tensor): Tensor {
    return this.#frameScoresAfter(prepared, null).q;
  }

  /** Conv layer `i` (stride 2) and its leaky ReLU. */
  #conv(x: Tensor, i: number): Tensor {
    const p = this.#params;
    return leakyRelu(
      conv2d(x, p[`conv${i}.weight`], p[`conv${i}.bias`], { stride: 2, padding: 1 }),
      this.config.slope,
    );
  }

  /** First-stage features `[B,T,C,S/2,S/2]` of prepared fragments `[B,T,3,S,S]`. */
  #firstStage(prepared: Tensor): Tensor {
    const [b, t, , h, w] = prepared.shape;
    const x = this.#conv(inputFeatures(prepared.reshape([b * t, 3, h, w]), this.config.input), 1);
    const [, ch, fh, fw] = x.shape;
    return x.reshape([b, t, ch, fh, fw]);
  }

  /**
   * Per-frame scores `[B,T]` of prepared fragments `[B,T,3,S,S]` that follow frames whose
   * first-stage features are `prev` `[B,1,C,S/2,S/2]` (null at the start of a clip, where frame 0
   * reuses the first difference), and the last frame's first-stage features. `next`, the
   * first-stage features of the frame after a one-frame clip without `prev`, gives frame 0 its
   * first difference when the stream scores frame 0 alone.
   */
  #frameScoresAfter(
    prepared: Tensor,
    prev: Tensor | null,
    next: Tensor | null = null,
  ): { q: Tensor; last: Tensor } {
    const c = this.config;
    const [b, t] = prepared.shape;
    const x5 = this.#firstStage(prepared);
    const [, , ch, fh, fw] = x5.shape;
    // (2+1)-D: each frame's features with their difference to the previous frame's.
    let diff: Tensor;
    if (prev) {
      const before = t > 1 ? concat([prev, slice(x5, { axis: 1, start: 0, end: t - 1 })], 1) : prev;
      diff = sub(x5, before);
    } else if (t > 1) {
      const d = sub(slice(x5, { axis: 1, start: 1 }), slice(x5, { axis: 1, start: 0, end: t - 1 }));
      diff = concat([slice(d, { axis: 1, start: 0, end: 1 }), d], 1);
    } else if (next) {
      diff = sub(next, x5);
    } else {
      diff = full(x5.shape, 0);
    }
    const last = slice(x5, { axis: 1, start: t - 1 });
    let x = concat([x5, diff], 2).reshape([b * t, 2 * ch, fh, fw]);
    for (let i = 2; i <= c.channels.length; i++) x = this.#conv(x, i);
    const p = this.#params;
    const pooled = concat([globalMeanPool(x), stdFeatures(x, c.logStd)], 1);
    return { q: linear(pooled, p["head.weight"], p["head.bias"]).reshape([b, t]), last };
  }

  /**
   * A chunk-by-chunk scorer of one clip (see {@link VictimStream}): each chunk is cut into
   * fragments, the last frame's first-stage features are carried for the next chunk's temporal
   * difference (the first scored chunk holds at least two frames, as frame 0 uses the difference
   * to frame 1), the per-frame scores are kept on the CPU, and `finish()` takes their mean and
   * bounds it, so the result equals {@link FastVqaMini.score} and {@link FastVqaMini.frameScores} of the whole
   * clip. Forward only.
   */
  stream(): VictimStream {
    return chunkedStream({
      who: "fastvqa-mini",
      firstChunk: 2,
      step: (parts, state) => this.#streamStep(parts, state?.[0] ?? null),
      pool: (scores) => this.#bound(mean(scores, { axes: 1 })),
    });
  }

  /**
   * One chunk of the stream (as parts, see `StreamSteps.step`; only the fragments are joined) after first-stage features `prev`: its fragments scored
   * a few frames at a time (the previous frame's features carried between them, as between
   * chunks) when the chunk's activations exceed the binding limit. The fragments' size is fixed
   * by the config (`grid * patch`), whatever the frame's, so a frame is never tiled; one whose
   * fragments alone do not fit is refused with the sizes named. Forward only.
   */
  #streamStep(parts: readonly Tensor[], prev: Tensor | null): { scores: Tensor; state: Tensor[] } {
    const side = this.config.grid * this.config.patch;
    const frameBytes = convStackActivation({
      frames: 1,
      height: side,
      width: side,
      inputChannels: inputChannels(this.config.input),
      channels: this.config.channels,
      doubleFirst: true,
    })!.bytes;
    const limit = bindingLimit();
    if (frameBytes > limit) {
      const [, , , h, w] = parts[0].shape;
      throw new RangeError(
        `${this.name}: the ${side}x${side} fragments of a ${w}x${h} frame need ${
          (frameBytes / 2 ** 20).toFixed(3)
        } MiB for one frame's activations, more than the binding limit of ${
          (limit / 2 ** 20).toFixed(3)
        } MiB (maxStorageBufferBindingSize); fragments are not tiled (a smaller grid or patch fits)`,
      );
    }
    const prepared = joinParts(parts.map((p) => this.prepare(p)));
    const t = prepared.shape[1];
    const group = framesPerGroup(frameBytes, limit);
    if (t <= group) {
      const { q, last } = this.#frameScoresAfter(prepared, prev);
      return { scores: q, state: [last] };
    }
    const scores: Tensor[] = [];
    let state = prev;
    for (let s = 0; s < t; s += group) {
      const e = Math.min(t, s + group);
      const { q, last } = tidy(() => {
        const part = slice(prepared, { axis: 1, start: s, end: e });
        // Without a previous frame, frame 0 alone takes its difference from frame 1.
        const next = !state && e - s === 1
          ? this.#firstStage(slice(prepared, { axis: 1, start: 1, end: 2 }))
          : null;
        return this.#frameScoresAfter(part, state, next);
      });
      scores.push(q);
      state = last;
    }
    return { scores: concat(scores, 1), state: [state!] };
  }

  /** Per-frame scores `[T]` of one clip `[T,3,H,W]`. */
  frameScores(frames: Tensor): Tensor {
    const q = this.frameScoresPrepared(this.prepare(asBatch(frames, "fastvqa-mini")));
    return q.reshape([q.size]);
  }

  /** The clip score bounded into `qMin..qMax` ({@link boundScore}). */
  #bound(raw: Tensor): Tensor {
    return boundScore(raw, { qMin: this.config.qMin, qMax: this.config.qMax });
  }

  /**
   * Clip scores of prepared fragments `[B,T,3,S,S]` -> `[B]`: the mean over frames, bounded into
   * `qMin..qMax` ({@link boundScore}).
   */
  scorePrepared(prepared: Tensor): Tensor {
    return this.#bound(mean(this.frameScoresPrepared(prepared), { axes: 1 }));
  }

  /** Clip scores of a batch `[B,T,3,H,W]` -> `[B]`. */
  scoreBatch(clips: Tensor): Tensor {
    return this.scorePrepared(this.prepare(clips));
  }

  /** The clip's score `[1]`. */
  score(frames: Tensor): Tensor {
    return this.scoreBatch(asBatch(frames, "fastvqa-mini")).reshape([1]);
  }

  /** Frees the parameters. */
  dispose(): void {
    disposeParams(this.#params);
  }
}
