/**
 * `vsfa-mini`: a small model of VSFA (Li, Jiang and Jiang, "Quality assessment of in-the-wild
 * videos", ACM MM 2019). Per frame: a strided conv CNN, global mean and std pooling of its last
 * feature map concatenated, a linear reduction; a GRU over time; a linear per-frame score; VSFA's
 * temporal hysteresis pooling (tau = 12, gamma = 0.5) gives the clip score, bounded into the
 * config's `qMin..qMax` by a smooth clamp ({@link boundScore}; the per-frame scores are not).
 *
 * @module
 */

import { z } from "zod";
import type { SameShape } from "../../_zod.ts";
import {
  concat,
  conv2d,
  globalMeanPool,
  gruSequence,
  leakyRelu,
  linear,
  slice,
} from "../../nn/mod.ts";
import { full, type Tensor } from "../../tensor/tensor.ts";
import { boundScore } from "./bound.ts";
import { hysteresisPool } from "./hysteresis.ts";
import { byFrameGroups, convStackHalo, cropOf, groupOrTiles, pooledMoments } from "./tiles.ts";
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
  stdFeatures,
  type Victim,
  type VictimFamily,
  type VictimStream,
} from "./victim.ts";

/**
 * The config of {@link VsfaMini}: the fields every family has ({@link BaseConfig}) and its own.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { VSFA_MINI_DEFAULTS, type VsfaMiniConfig } from "./vsfa_mini.ts";
 * const c: VsfaMiniConfig = { ...VSFA_MINI_DEFAULTS, frames: 4 };
 * assert.equal(c.frames, 4);
 * ```
 */
export type VsfaMiniConfig = BaseConfig & {
  /** Output channels of the stride-2 3x3 conv layers (1 to 16 layers). */
  channels: number[];
  /** Size of the linear reduction of the pooled features. */
  reduced: number;
  /** GRU hidden size. */
  hidden: number;
  /** Hysteresis window. */
  tau: number;
  /** Hysteresis memory weight. */
  gamma: number;
};

/** Validates a {@link VsfaMiniConfig} (unknown fields are refused). */
export const VsfaMiniConfigSchema = BaseConfigSchema.extend({
  channels: z.array(z.number().int().positive().max(MAX_MODEL_WIDTH)).min(1).max(16),
  reduced: z.number().int().positive().max(MAX_MODEL_WIDTH),
  hidden: z.number().int().positive().max(MAX_MODEL_WIDTH),
  tau: z.number().int().positive().max(4096),
  gamma: z.number().min(0).max(1),
}).strict();
const _sameConfig: SameShape<VsfaMiniConfig, z.output<typeof VsfaMiniConfigSchema>> = true;

/** Defaults of {@link VsfaMini}. */
export const VSFA_MINI_DEFAULTS: VsfaMiniConfig = {
  frames: 8,
  height: 64,
  width: 64,
  qMin: 1,
  qMax: 5,
  slope: 0.1,
  input: "rgb",
  logStd: false,
  channels: [16, 24, 32, 48],
  reduced: 32,
  hidden: 16,
  tau: 12,
  gamma: 0.5,
};

function buildParams(pb: ParamBuilder, c: VsfaMiniConfig): void {
  let cin = inputChannels(c.input);
  c.channels.forEach((cout, i) => {
    pb.conv(`conv${i + 1}`, cin, cout, 3, c.slope);
    cin = cout;
  });
  pb.linear("reduce", 2 * cin, c.reduced);
  pb.gru("gru", c.reduced, c.hidden);
  pb.linear("head", c.hidden, 1, (c.qMin + c.qMax) / 2);
}

/**
 * The sizes a `vsfa-mini` config implies, without allocating: its parameter shapes and the
 * largest conv activation for `batch` clips (when the frame size is fixed).
 *
 * @example
 * ```ts
 * import { VSFA_MINI_DEFAULTS, vsfaMiniSize } from "./vsfa_mini.ts";
 * const { shapes } = vsfaMiniSize(VSFA_MINI_DEFAULTS);
 * console.log(shapes["gru.weight_hh"]); // [48, 16]
 * ```
 */
export function vsfaMiniSize(c: VsfaMiniConfig, batch = 1): ModelSize {
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
 * The `vsfa-mini` victim.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { VsfaMini } from "./vsfa_mini.ts";
 * await initGpu();
 * const model = new VsfaMini({ seed: 1 });
 * const frames = tensor(new Float32Array(4 * 3 * 64 * 64).fill(0.5), [4, 3, 64, 64]);
 * const q = model.score(frames); // [1]
 * const perFrame = model.frameScores(frames); // [4]
 * ```
 */
export class VsfaMini implements Victim {
  /** The family name. */
  readonly family: VictimFamily = "vsfa-mini";
  /** The model's name. */
  readonly name: string;
  /** The validated config. */
  readonly config: VsfaMiniConfig;
  #params: Record<string, Tensor>;

  /**
   * A fresh model; the config overrides the defaults. An invalid config, or one that cannot
   * fit (see `checkModelSize`), is a `ModelConfigError` naming the field, before anything is
   * allocated.
   */
  constructor(options: { config?: Partial<VsfaMiniConfig>; seed?: number; name?: string } = {}) {
    this.config = parseModelConfig(
      "vsfa-mini",
      VsfaMiniConfigSchema,
      VSFA_MINI_DEFAULTS,
      options.config,
    );
    checkModelSize("vsfa-mini", (c) => vsfaMiniSize(c), {
      config: this.config,
      defaults: VSFA_MINI_DEFAULTS,
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
    return this.#frameScoresFrom(asBatch(clips, "vsfa-mini"), null).q;
  }

  /** The conv stack's last feature map `[N,C,h,w]` of frames `[N,3,H,W]`. */
  #features(frames: Tensor): Tensor {
    const p = this.#params;
    const c = this.config;
    let x = inputFeatures(frames, c.input);
    for (let i = 1; i <= c.channels.length; i++) {
      x = leakyRelu(
        conv2d(x, p[`conv${i}.weight`], p[`conv${i}.bias`], { stride: 2, padding: 1 }),
        c.slope,
      );
    }
    return x;
  }

  /** Pooled features `[N,2C]` (mean, then std) of frames `[N,3,H,W]`, the whole batch at once. */
  #pooledWhole(frames: Tensor): Tensor {
    const x = this.#features(frames);
    return concat([globalMeanPool(x), stdFeatures(x, this.config.logStd)], 1);
  }

  /**
   * {@link VsfaMini.#pooledWhole} computed a few frames at a time so that no intermediate exceeds
   * the binding limit, and a frame that does not fit alone in spatial tiles (see `tiles.ts`).
   * Forward only.
   */
  #pooledSplit(x5: Tensor): Tensor {
    const c = this.config;
    const [b, t, , height, width] = x5.shape;
    const n = b * t;
    const layers = c.channels.length;
    const geometry = (k: number) => ({
      who: this.name,
      height,
      width,
      align: 2 ** layers,
      halo: convStackHalo(layers, inputHalo(c.input)),
      strides: [2 ** layers],
      bytes: (h: number, w: number) =>
        convStackActivation({
          frames: k,
          height: h,
          width: w,
          inputChannels: inputChannels(c.input),
          channels: c.channels,
        })!.bytes,
    });
    const group = groupOrTiles(geometry(1)); // before any allocation: it may throw
    const frames = x5.reshape([n, 3, height, width]);
    return byFrameGroups(n, group, (s, e) => {
      const x = e - s === n ? frames : slice(frames, { axis: 0, start: s, end: e });
      const [m] = pooledMoments(geometry(e - s), (crop) => [this.#features(cropOf(x, crop))]);
      return concat([m.mean, compressStd(m.std, c.logStd)], 1);
    }, (parts) => concat(parts, 0));
  }

  /**
   * Per-frame scores `[B,T]` of clips `[B,T,3,H,W]` whose GRU starts from `h0` `[B,hidden]`
   * (zeros when null), and the GRU's last hidden state `[B,hidden]`. With `split` (the streamed
   * scorer, forward only) the per-frame features are computed a few frames at a time, and in
   * tiles where a frame does not fit one binding.
   */
  #frameScoresFrom(x5: Tensor, h0: Tensor | null, split = false): { q: Tensor; h: Tensor } {
    const p = this.#params;
    const c = this.config;
    const [b, t, , h, w] = x5.shape;
    const pooled = split // [B*T, 2C]
      ? this.#pooledSplit(x5)
      : this.#pooledWhole(x5.reshape([b * t, 3, h, w]));
    const reduced = linear(pooled, p["reduce.weight"], p["reduce.bias"]).reshape([b, t, -1]);
    const weights = {
      wIh: p["gru.weight_ih"],
      wHh: p["gru.weight_hh"],
      bIh: p["gru.bias_ih"],
      bHh: p["gru.bias_hh"],
    };
    // The GRU over the frames: one fused recurrence (gruSequence), not a gruCell per frame.
    const hs = gruSequence(reduced, h0 ?? full([b, c.hidden], 0), weights); // [B, T, hidden]
    const q = linear(hs, p["head.weight"], p["head.bias"]); // [B, T, 1]
    const hid = slice(hs, { axis: 1, start: t - 1 }).reshape([b, c.hidden]);
    return { q: q.reshape([b, t]), h: hid };
  }

  /**
   * A chunk-by-chunk scorer of one clip (see {@link VictimStream}): the GRU's hidden state is
   * carried from chunk to chunk, the per-frame scores are kept on the CPU, and `finish()` pools
   * them with the hysteresis pooling over the whole clip and bounds the result, so it equals
   * {@link VsfaMini.score} and {@link VsfaMini.frameScores} of the whole clip. Forward only.
   */
  stream(): VictimStream {
    return chunkedStream({
      who: "vsfa-mini",
      firstChunk: 1,
      step: (parts, state) => {
        const { q, h } = this.#frameScoresFrom(joinParts(parts), state?.[0] ?? null, true);
        return { scores: q, state: [h] };
      },
      pool: (scores) => this.#bound(hysteresisPool(scores, this.config)),
    });
  }

  /** Per-frame scores `[T]` of one clip `[T,3,H,W]`. */
  frameScores(frames: Tensor): Tensor {
    const q = this.frameScoresBatch(asBatch(frames, "vsfa-mini"));
    return q.reshape([q.size]);
  }

  /** The clip score bounded into `qMin..qMax` ({@link boundScore}). */
  #bound(raw: Tensor): Tensor {
    return boundScore(raw, { qMin: this.config.qMin, qMax: this.config.qMax });
  }

  /**
   * Clip scores of a batch `[B,T,3,H,W]` -> `[B]`: the hysteresis pooling of the per-frame
   * scores, bounded into `qMin..qMax` ({@link boundScore}).
   */
  scoreBatch(clips: Tensor): Tensor {
    return this.#bound(hysteresisPool(this.frameScoresBatch(clips), this.config));
  }

  /** Same as {@link VsfaMini.scoreBatch} (nothing is prepared). */
  scorePrepared(prepared: Tensor): Tensor {
    return this.scoreBatch(prepared);
  }

  /** The clip's score `[1]`. */
  score(frames: Tensor): Tensor {
    return this.scoreBatch(asBatch(frames, "vsfa-mini")).reshape([1]);
  }

  /** Frees the parameters. */
  dispose(): void {
    disposeParams(this.#params);
  }
}
