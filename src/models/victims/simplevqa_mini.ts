/**
 * `simplevqa-mini`: a small model of SimpleVQA (Sun, Min, Lu, Zhai and Ma, "A deep learning based
 * no-reference quality assessment model for UGC videos", ACM MM 2022). Per frame: global mean
 * and std pooled features of every stage of a strided spatial CNN (multi-scale), plus motion
 * features (mean and std pooled features of a small CNN on the frame difference `x_t - x_{t-1}`,
 * the first frame using the first difference), concatenated; two linear layers give a per-frame
 * score; the clip score is the mean over frames, bounded into the config's `qMin..qMax` by a smooth
 * clamp ({@link boundScore}; the per-frame scores are not).
 *
 * @module
 */

import { z } from "zod";
import type { SameShape } from "../../_zod.ts";
import {
  avgPool2d,
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
import { boundScore } from "./bound.ts";
import { full, type Tensor } from "../../tensor/tensor.ts";
import {
  asBatch,
  type BaseConfig,
  BaseConfigSchema,
  checkModelSize,
  chunkedStream,
  compressStd,
  convStackActivation,
  disposeParams,
  inputChannels,
  inputFeatures,
  inputHalo,
  joinParts,
  MAX_MODEL_WIDTH,
  type ModelSize,
  ParamBuilder,
  parseModelConfig,
  partsRange,
  stdFeatures,
  type Victim,
  type VictimFamily,
  type VictimStream,
} from "./victim.ts";
import {
  byFrameGroups,
  convStackHalo,
  cropOf,
  groupOrTiles,
  pooledMoments,
  type TileGeometry,
} from "./tiles.ts";

/**
 * The config of {@link SimpleVqaMini}: the fields every family has ({@link BaseConfig}) and its
 * own.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { SIMPLEVQA_MINI_DEFAULTS, type SimpleVqaMiniConfig } from "./simplevqa_mini.ts";
 * const c: SimpleVqaMiniConfig = { ...SIMPLEVQA_MINI_DEFAULTS, frames: 4 };
 * assert.equal(c.frames, 4);
 * ```
 */
export type SimpleVqaMiniConfig = BaseConfig & {
  /** Output channels of the spatial CNN's stride-2 3x3 stages (each stage is pooled). */
  channels: number[];
  /** Output channels of the motion CNN's stride-2 3x3 layers (on half-resolution differences). */
  motionChannels: number[];
  /** Hidden size of the two-layer regressor. */
  hidden: number;
};

/** Validates a {@link SimpleVqaMiniConfig} (unknown fields are refused). */
export const SimpleVqaMiniConfigSchema = BaseConfigSchema.extend({
  channels: z.array(z.number().int().positive().max(MAX_MODEL_WIDTH)).min(1).max(16),
  motionChannels: z.array(z.number().int().positive().max(MAX_MODEL_WIDTH)).min(1).max(16),
  hidden: z.number().int().positive().max(MAX_MODEL_WIDTH),
}).strict();
const _sameConfig: SameShape<SimpleVqaMiniConfig, z.output<typeof SimpleVqaMiniConfigSchema>> =
  true;

/** Defaults of {@link SimpleVqaMini}. */
export const SIMPLEVQA_MINI_DEFAULTS: SimpleVqaMiniConfig = {
  frames: 8,
  height: 64,
  width: 64,
  qMin: 1,
  qMax: 5,
  slope: 0.1,
  input: "rgb+mscn",
  logStd: true,
  channels: [16, 24, 32, 48],
  motionChannels: [8, 16],
  hidden: 32,
};

function buildParams(pb: ParamBuilder, c: SimpleVqaMiniConfig): void {
  let cin = inputChannels(c.input);
  let features = 0;
  c.channels.forEach((cout, i) => {
    pb.conv(`spatial${i + 1}`, cin, cout, 3, c.slope);
    cin = cout;
    features += 2 * cout;
  });
  cin = 3;
  c.motionChannels.forEach((cout, i) => {
    pb.conv(`motion${i + 1}`, cin, cout, 3, c.slope);
    cin = cout;
  });
  features += 2 * cin;
  pb.linear("fc1", features, c.hidden);
  pb.linear("fc2", c.hidden, 1, (c.qMin + c.qMax) / 2);
}

/**
 * The sizes a `simplevqa-mini` config implies, without allocating: its parameter shapes and the
 * largest spatial conv activation for `batch` clips (when the frame size is fixed).
 *
 * @example
 * ```ts
 * import { SIMPLEVQA_MINI_DEFAULTS, simpleVqaMiniSize } from "./simplevqa_mini.ts";
 * const { shapes } = simpleVqaMiniSize(SIMPLEVQA_MINI_DEFAULTS);
 * console.log(shapes["fc1.weight"]); // [32, 272]
 * ```
 */
export function simpleVqaMiniSize(c: SimpleVqaMiniConfig, batch = 1): ModelSize {
  const pb = new ParamBuilder(0, { shapesOnly: true });
  buildParams(pb, c);
  return {
    shapes: pb.shapes,
    activation: convStackActivation({
      ...c,
      inputChannels: inputChannels(c.input),
      channels: c.channels,
      batch,
    }),
  };
}

/**
 * The `simplevqa-mini` victim.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { SimpleVqaMini } from "./simplevqa_mini.ts";
 * await initGpu();
 * const model = new SimpleVqaMini({ seed: 1 });
 * const frames = tensor(new Float32Array(4 * 3 * 64 * 64).fill(0.5), [4, 3, 64, 64]);
 * const q = model.score(frames); // [1]
 * ```
 */
export class SimpleVqaMini implements Victim {
  /** The family name. */
  readonly family: VictimFamily = "simplevqa-mini";
  /** The model's name. */
  readonly name: string;
  /** The validated config. */
  readonly config: SimpleVqaMiniConfig;
  #params: Record<string, Tensor>;

  /**
   * A fresh model (weights seeded by `seed`, default 0); the config overrides the defaults. An
   * invalid config, or one that cannot fit (see `checkModelSize`), is a `ModelConfigError`
   * naming the field, before anything is allocated.
   */
  constructor(
    options: { config?: Partial<SimpleVqaMiniConfig>; seed?: number; name?: string } = {},
  ) {
    this.config = parseModelConfig(
      "simplevqa-mini",
      SimpleVqaMiniConfigSchema,
      SIMPLEVQA_MINI_DEFAULTS,
      options.config,
    );
    checkModelSize("simplevqa-mini", (c) => simpleVqaMiniSize(c), {
      config: this.config,
      defaults: SIMPLEVQA_MINI_DEFAULTS,
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

  /** Identity (the network reads whole frames). */
  prepare(clips: Tensor): Tensor {
    return clips;
  }

  /** Per-frame scores of a batch `[B,T,3,H,W]` -> `[B,T]`. */
  frameScoresBatch(clips: Tensor): Tensor {
    return this.#frameScoresAfter(asBatch(clips, "simplevqa-mini"), null);
  }

  /**
   * Per-frame scores `[B,T]` of clips `[B,T,3,H,W]` that follow the frames `prev` `[B,1,3,H,W]`
   * (null at the start of a clip, where frame 0 reuses the first difference).
   */
  #frameScoresAfter(x5: Tensor, prev: Tensor | null): Tensor {
    const [b, t] = x5.shape;
    return this.#regress(this.#pooledWhole(x5, prev), b, t);
  }

  /** Per-frame scores `[B,T]` from the per-frame features `[B*T,F]`. */
  #regress(f: Tensor, b: number, t: number): Tensor {
    const p = this.#params;
    const c = this.config;
    const hid = leakyRelu(linear(f, p["fc1.weight"], p["fc1.bias"]), c.slope);
    return linear(hid, p["fc2.weight"], p["fc2.bias"]).reshape([b, t]);
  }

  /**
   * Per-frame scores `[1,t]` of a stream's chunk (given as parts, see `StreamSteps.step`) after
   * the frame `prev`: the whole chunk at once when it fits the binding limit, else
   * {@link SimpleVqaMini.#pooledSplit}. Forward only.
   */
  #streamScores(parts: readonly Tensor[], prev: Tensor | null): Tensor {
    const t = parts.reduce((n, p) => n + p.shape[1], 0);
    const [, , , height, width] = parts[0].shape;
    if (this.#geometry(t, height, width).bytes(height, width) <= bindingLimit()) {
      return this.#frameScoresAfter(joinParts(parts), prev);
    }
    return this.#regress(this.#pooledSplit(parts, prev), 1, t);
  }

  /** The tiling geometry of `k` frames of `height x width` (both branches on the same tiles). */
  #geometry(k: number, height: number, width: number): TileGeometry & { strides: number[] } {
    const c = this.config;
    const layers = c.channels.length;
    const motion = c.motionChannels.length;
    const strides = [...c.channels.map((_, i) => 2 ** (i + 1)), 2 ** (motion + 1)];
    return {
      who: this.name,
      height,
      width,
      align: Math.max(...strides),
      // The motion map's pixel reads two full-resolution pixels per half-resolution one.
      halo: Math.max(convStackHalo(layers, inputHalo(c.input)), 2 * convStackHalo(motion) + 1),
      strides,
      bytes: (h: number, w: number) =>
        Math.max(
          convStackActivation({
            frames: k,
            height: h,
            width: w,
            inputChannels: inputChannels(c.input),
            channels: c.channels,
          })!.bytes,
          4 * k * 3 * h * w, // the frame differences
          convStackActivation({
            frames: k,
            height: Math.floor(h / 2),
            width: Math.floor(w / 2),
            inputChannels: 3,
            channels: c.motionChannels,
          })!.bytes,
        ),
    };
  }

  /** The spatial CNN's stage outputs of frames `[N,3,H,W]`. */
  #spatialMaps(frames: Tensor): Tensor[] {
    const p = this.#params;
    const c = this.config;
    const maps: Tensor[] = [];
    let x = inputFeatures(frames, c.input);
    for (let i = 1; i <= c.channels.length; i++) {
      x = leakyRelu(
        conv2d(x, p[`spatial${i}.weight`], p[`spatial${i}.bias`], { stride: 2, padding: 1 }),
        c.slope,
      );
      maps.push(x);
    }
    return maps;
  }

  /** The motion CNN's output on frame differences `[N,3,H,W]` (at half resolution). */
  #motionMap(diff: Tensor): Tensor {
    const p = this.#params;
    const c = this.config;
    let m = avgPool2d(diff, { kernel: 2 });
    for (let i = 1; i <= c.motionChannels.length; i++) {
      m = leakyRelu(
        conv2d(m, p[`motion${i}.weight`], p[`motion${i}.bias`], { stride: 2, padding: 1 }),
        c.slope,
      );
    }
    return m;
  }

  /**
   * The per-frame features `[B*T,F]` of clips `[B,T,3,H,W]` after `prev` (see
   * {@link SimpleVqaMini.#frameScoresAfter}), the whole batch at once.
   */
  #pooledWhole(x5: Tensor, prev: Tensor | null): Tensor {
    const c = this.config;
    const [b, t, , h, w] = x5.shape;
    const feats: Tensor[] = [];
    for (const x of this.#spatialMaps(x5.reshape([b * t, 3, h, w]))) {
      feats.push(globalMeanPool(x), stdFeatures(x, c.logStd));
    }
    // Motion: x_t - x_{t-1} for t >= 1; frame 0 reuses the first difference (zeros for T = 1).
    let diff: Tensor;
    if (prev) {
      const before = t > 1 ? concat([prev, slice(x5, { axis: 1, start: 0, end: t - 1 })], 1) : prev;
      diff = sub(x5, before);
    } else if (t > 1) {
      const d = sub(
        slice(x5, { axis: 1, start: 1 }),
        slice(x5, { axis: 1, start: 0, end: t - 1 }),
      );
      diff = concat([slice(d, { axis: 1, start: 0, end: 1 }), d], 1);
    } else {
      diff = full(x5.shape, 0);
    }
    const m = this.#motionMap(diff.reshape([b * t, 3, h, w]));
    feats.push(globalMeanPool(m), stdFeatures(m, c.logStd));
    return concat(feats, 1);
  }

  /**
   * {@link SimpleVqaMini.#pooledWhole} of one clip `[1,T,3,H,W]`, computed a few frames at a time
   * so that no intermediate exceeds the binding limit, and a frame that does not fit alone in
   * spatial tiles (both branches on the same tiles; see `tiles.ts`). Forward only.
   */
  #pooledSplit(parts: readonly Tensor[], prev: Tensor | null): Tensor {
    const c = this.config;
    const t = parts.reduce((n, p) => n + p.shape[1], 0);
    const [, , , height, width] = parts[0].shape;
    const geometry = (k: number) => this.#geometry(k, height, width);
    const frames = (s: number, e: number) =>
      partsRange(parts, s, e).reshape([e - s, 3, height, width]);
    const group = groupOrTiles(geometry(1)); // before any allocation: it may throw
    const before = prev?.reshape([1, 3, height, width]) ?? null;
    return byFrameGroups(t, group, (s, e) => {
      // Frame i's difference is a_i - b_i: x_i - x_{i-1} (x_{-1} = prev); without prev, frame 0
      // reuses the first difference (x_1 - x_0), or is zero for a clip of one frame.
      const withFirst = (first: () => Tensor, from: number) =>
        s > 0
          ? frames(s - 1 + from, e - 1 + from)
          : e > 1
          ? concat([first(), frames(from, e - 1 + from)], 0)
          : first();
      let a: Tensor;
      let b: Tensor;
      if (before) [a, b] = [frames(s, e), withFirst(() => before, 0)];
      else if (t > 1) {
        a = s > 0 ? frames(s, e) : withFirst(() => frames(1, 2), 1);
        b = withFirst(() => frames(0, 1), 0);
      } else [a, b] = [frames(0, 1), frames(0, 1)];
      const cur = frames(s, e);
      const moments = pooledMoments(geometry(e - s), (crop) => [
        ...this.#spatialMaps(cropOf(cur, crop)),
        this.#motionMap(sub(cropOf(a, crop), cropOf(b, crop))),
      ]);
      return concat(moments.flatMap((m) => [m.mean, compressStd(m.std, c.logStd)]), 1);
    }, (parts) => concat(parts, 0));
  }

  /**
   * A chunk-by-chunk scorer of one clip (see {@link VictimStream}): the last frame of each chunk
   * is carried for the next chunk's first difference (the first scored chunk holds at least two
   * frames, as frame 0 uses the difference to frame 1), the per-frame scores are kept on the
   * CPU, and `finish()` takes their mean and bounds it, so the result equals {@link SimpleVqaMini.score} and
   * {@link SimpleVqaMini.frameScores} of the whole clip. Forward only.
   */
  stream(): VictimStream {
    return chunkedStream({
      who: "simplevqa-mini",
      firstChunk: 2,
      step: (parts, state) => {
        const t = parts.reduce((n, p) => n + p.shape[1], 0);
        return {
          scores: this.#streamScores(parts, state?.[0] ?? null),
          // A copy of the last frame (a part may be the caller's tensor).
          state: [concat([partsRange(parts, t - 1, t)], 1)],
        };
      },
      pool: (scores) => this.#bound(mean(scores, { axes: 1 })),
    });
  }

  /** Per-frame scores `[T]` of one clip `[T,3,H,W]`. */
  frameScores(frames: Tensor): Tensor {
    const q = this.frameScoresBatch(asBatch(frames, "simplevqa-mini"));
    return q.reshape([q.size]);
  }

  /** The clip score bounded into `qMin..qMax` ({@link boundScore}). */
  #bound(raw: Tensor): Tensor {
    return boundScore(raw, { qMin: this.config.qMin, qMax: this.config.qMax });
  }

  /**
   * Clip scores of a batch `[B,T,3,H,W]` -> `[B]`: the mean over frames, bounded into
   * `qMin..qMax` ({@link boundScore}).
   */
  scoreBatch(clips: Tensor): Tensor {
    return this.#bound(mean(this.frameScoresBatch(clips), { axes: 1 }));
  }

  /** Same as {@link SimpleVqaMini.scoreBatch} (nothing is prepared). */
  scorePrepared(prepared: Tensor): Tensor {
    return this.scoreBatch(prepared);
  }

  /** The clip's score `[1]`. */
  score(frames: Tensor): Tensor {
    return this.scoreBatch(asBatch(frames, "simplevqa-mini")).reshape([1]);
  }

  /** Frees the parameters. */
  dispose(): void {
    disposeParams(this.#params);
  }
}
