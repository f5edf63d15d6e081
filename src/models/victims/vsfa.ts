/**
 * The published VSFA and MDTVSFA models, as their authors released them.
 *
 * - `vsfa`: Li, Jiang and Jiang, "Quality assessment of in-the-wild videos", ACM MM 2019
 *   (github.com/lidq92/VSFA). Each frame, at its native resolution and normalised with
 *   ImageNet's mean and std, goes through an ImageNet ResNet-50 up to res5c (`layer4`); the
 *   map's global mean and unbiased std (2048 + 2048) are reduced by `ann.fc0` (4096 -> 128), a
 *   GRU (128 -> 32) runs over the frames, `q` (32 -> 1) scores each frame, and the
 *   subjectively-inspired temporal pooling (tau 12, beta 0.5) and a mean give the clip's score.
 *   The released head (`VSFA.pt`, trained on KoNViD-1k with labels divided by their maximum)
 *   scores on about [0, 1].
 * - `mdtvsfa`: Li, Jiang and Jiang, "Unified quality assessment of in-the-wild videos with
 *   mixed datasets training", IJCV 2021 (github.com/lidq92/MDTVSFA). The same features and
 *   layers (named `dimemsion_reduction`, `feature_aggregation`, `regression` in its file), then
 *   a sigmoid of the pooled score (the "relative" score), the 4-parameter nonlinear mapping
 *   `nlm` (linear, sigmoid, linear: the "mapped" score, what its test demo prints, in (0, 1)),
 *   and one linear map per training dataset `lm.{K,C,L,N}` (KoNViD-1k, CVD2014, LIVE-Qualcomm,
 *   LIVE-VQC) onto that dataset's MOS scale (the "aligned" scores).
 *
 * Parameter names are the authors' (the head) and torchvision's under `backbone.` (the
 * ResNet-50), so the authors' files and torchvision's ImageNet file load as they are published
 * (see `loadPublishedWeights` in published.ts).
 *
 * @module
 */

import { z } from "zod";
import type { SameShape } from "../../_zod.ts";
import {
  add,
  concat,
  globalMeanPool,
  globalStdPool,
  gruSequence,
  linear,
  mul,
  sigmoid,
  slice,
} from "../../nn/mod.ts";
import { full, type Tensor } from "../../tensor/tensor.ts";
import { hysteresisPool } from "./hysteresis.ts";
import {
  buildResNetParams,
  imagenetNormalize,
  RESNET50,
  ResNetBackbone,
  resnetChannels,
  type ResNetConfig,
  ResNetConfigSchema,
} from "./resnet.ts";
import { byFrameGroups, framesPerGroup } from "./tiles.ts";
import {
  asBatch,
  checkModelSize,
  chunkedStream,
  disposeParams,
  joinParts,
  MAX_MODEL_WIDTH,
  type ModelSize,
  ParamBuilder,
  parseModelConfig,
  type PublishedBaseConfig,
  PublishedBaseSchema,
  type Victim,
  type VictimStream,
} from "./victim.ts";
import { bindingLimit } from "../../gpu/device.ts";

/** The two published heads on ResNet-50 features. */
export type VsfaVariant = "vsfa" | "mdtvsfa";

/** MDTVSFA's training datasets, the keys of its per-dataset linear maps `lm.<key>`. */
export const MDTVSFA_DATASETS = ["K", "C", "L", "N"] as const;

/** One of {@link MDTVSFA_DATASETS}. */
export type MdtvsfaDataset = typeof MDTVSFA_DATASETS[number];

/**
 * Which of MDTVSFA's scores a `mdtvsfa` victim gives: `relative` (the sigmoid of the pooled
 * score), `mapped` (after the nonlinear mapping, as the authors' test demo prints; the default)
 * or one dataset's aligned score (`K` KoNViD-1k, `C` CVD2014, `L` LIVE-Qualcomm, `N` LIVE-VQC).
 */
export type MdtvsfaOutput = "relative" | "mapped" | MdtvsfaDataset;

/**
 * The config of the `vsfa` and `mdtvsfa` victims.
 *
 * @example
 * ```ts
 * import { VSFA_DEFAULTS, type VsfaConfig } from "./vsfa.ts";
 * const c: VsfaConfig = { ...VSFA_DEFAULTS, backbone: { width: 8, blocks: [1, 1, 1, 1] } };
 * console.log(c.reduced); // 128
 * ```
 */
export type VsfaConfig = PublishedBaseConfig & {
  /** The ResNet backbone (ResNet-50 for the published models). */
  backbone: ResNetConfig;
  /** Size of the linear reduction of the 2 x 2048 pooled features (128). */
  reduced: number;
  /** GRU hidden size (32). */
  hidden: number;
  /** Temporal pooling window (12). */
  tau: number;
  /** Weight of the memory term of the temporal pooling: 1 - the authors' beta (0.5). */
  gamma: number;
  /** `mdtvsfa` only: the score given (see {@link MdtvsfaOutput}); ignored by `vsfa`. */
  output: MdtvsfaOutput;
};

const VsfaConfigObject = PublishedBaseSchema.extend({
  backbone: ResNetConfigSchema,
  reduced: z.number().int().positive().max(MAX_MODEL_WIDTH),
  hidden: z.number().int().positive().max(MAX_MODEL_WIDTH),
  tau: z.number().int().positive().max(4096),
  gamma: z.number().min(0).max(1),
  output: z.enum(["relative", "mapped", ...MDTVSFA_DATASETS]).default("mapped"),
}).strict();

/** Validates a {@link VsfaConfig} (unknown fields are refused). */
export const VsfaConfigSchema = VsfaConfigObject;
const _sameConfig: SameShape<VsfaConfig, z.output<typeof VsfaConfigObject>> = true;

/**
 * Defaults of the published models: ResNet-50, 128, 32, tau 12, beta 0.5, frames at their own
 * resolution, at most 240 frames read per clip (VSFA's `max_len` for KoNViD-1k; the streamed
 * scorer takes any length).
 */
export const VSFA_DEFAULTS: VsfaConfig = {
  frames: 240,
  height: null,
  width: null,
  qMin: 0,
  qMax: 1,
  slope: 0,
  input: "rgb",
  logStd: false,
  backbone: RESNET50,
  reduced: 128,
  hidden: 32,
  tau: 12,
  gamma: 0.5,
  output: "mapped",
};

/** The head's parameter names of each variant (the authors'). */
const HEAD_NAMES = {
  vsfa: { reduce: "ann.fc0", gru: "rnn", q: "q" },
  mdtvsfa: { reduce: "dimemsion_reduction", gru: "feature_aggregation", q: "regression" },
} as const;

/** The prefix of the backbone's (torchvision) names among a victim's parameters. */
export const BACKBONE_PREFIX = "backbone.";

function buildParams(pb: ParamBuilder, variant: VsfaVariant, c: VsfaConfig): void {
  buildResNetParams(pb, BACKBONE_PREFIX, c.backbone);
  const names = HEAD_NAMES[variant];
  const features = 2 * resnetChannels(c.backbone);
  pb.linear(names.reduce, features, c.reduced);
  // VSFA's ANN holds a second layer (`ann.fc`) that its forward pass never uses (n_ANNlayers
  // = 1); it is in the released file, so the model has it too.
  if (variant === "vsfa") pb.linear("ann.fc", c.reduced, c.reduced);
  pb.gru(names.gru, c.reduced, c.hidden, "_l0");
  pb.linear(names.q, c.hidden, 1);
  if (variant === "mdtvsfa") {
    pb.linear("nlm.0", 1, 1);
    pb.linear("nlm.2", 1, 1);
    for (const d of MDTVSFA_DATASETS) pb.linear(`lm.${d}`, 1, 1);
  }
}

/**
 * The sizes a config implies, without allocating: parameter shapes (and no activation: frames
 * are read at their own size, checked when they arrive).
 *
 * @example
 * ```ts
 * import { VSFA_DEFAULTS, vsfaSize } from "./vsfa.ts";
 * const { shapes } = vsfaSize("vsfa", VSFA_DEFAULTS);
 * console.log(shapes["ann.fc0.weight"]); // [128, 4096]
 * ```
 */
export function vsfaSize(variant: VsfaVariant, c: VsfaConfig): ModelSize {
  const pb = new ParamBuilder(0, { shapesOnly: true });
  buildParams(pb, variant, c);
  return { shapes: pb.shapes };
}

/**
 * The `vsfa` and `mdtvsfa` victims (see the module's documentation). Random weights until
 * loaded (`loadVictim("vsfa", { weights: [...] })`).
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { Vsfa } from "./vsfa.ts";
 * await initGpu();
 * const small = { backbone: { width: 4, blocks: [1, 1, 1, 1] }, reduced: 8, hidden: 4 };
 * const model = new Vsfa("vsfa", { seed: 1, config: small });
 * const frames = tensor(new Float32Array(3 * 3 * 64 * 64).fill(0.5), [3, 3, 64, 64]);
 * const q = model.score(frames); // [1]
 * model.dispose();
 * ```
 */
export class Vsfa implements Victim {
  /** The family name. */
  readonly family: VsfaVariant;
  /** The model's name. */
  readonly name: string;
  /** The validated config. */
  readonly config: VsfaConfig;
  #params: Record<string, Tensor>;
  #backbone: ResNetBackbone;

  /**
   * A fresh model; the config overrides the defaults. An invalid config is a
   * `ModelConfigError` naming the field, before anything is allocated.
   */
  constructor(
    variant: VsfaVariant,
    options: { config?: Partial<VsfaConfig>; seed?: number; name?: string } = {},
  ) {
    this.family = variant;
    this.config = parseModelConfig(variant, VsfaConfigSchema, VSFA_DEFAULTS, options.config);
    checkModelSize(variant, (c) => vsfaSize(variant, c), {
      config: this.config,
      defaults: VSFA_DEFAULTS,
      overrides: options.config,
    });
    this.name = options.name ?? variant;
    const pb = new ParamBuilder(options.seed ?? 0);
    buildParams(pb, variant, this.config);
    this.#params = pb.params;
    this.#backbone = new ResNetBackbone(this.config.backbone, this.#params, BACKBONE_PREFIX);
  }

  /** The parameters by name (the authors' and torchvision's names). */
  parameters(): Record<string, Tensor> {
    return this.#params;
  }

  /** Identity (the network reads whole frames at their own size). */
  prepare(clips: Tensor): Tensor {
    return clips;
  }

  /**
   * Frames per backbone pass for frames of `h x w`: as many as keep the largest map (the stem's
   * output, or layer1's, which is as large) within one binding. A frame too large alone is
   * refused, naming its size.
   */
  #group(h: number, w: number): number {
    const c = this.config.backbone;
    const oh = Math.floor((h - 1) / 2) + 1;
    const ow = Math.floor((w - 1) / 2) + 1;
    const bytes = 4 *
      Math.max(c.width * oh * ow, 4 * c.width * Math.ceil(oh / 2) * Math.ceil(ow / 2));
    const limit = bindingLimit();
    if (bytes > limit) {
      throw new RangeError(
        `${this.name}: a ${w}x${h} frame needs a ${
          (bytes / 2 ** 20).toFixed(0)
        } MiB feature map, ` +
          `more than one GPU binding holds on this adapter (${
            (limit / 2 ** 20).toFixed(0)
          } MiB); ` +
          `scale the video down first`,
      );
    }
    return framesPerGroup(bytes, limit);
  }

  /** Pooled features `[N, 2C]` (mean, then unbiased std of layer4) of frames `[N,3,H,W]`. */
  #pooled(frames: Tensor, forwardOnly: boolean): Tensor {
    const [n, , h, w] = frames.shape;
    const one = (x: Tensor) => {
      const y = this.#backbone.features(imagenetNormalize(x));
      return concat([globalMeanPool(y), globalStdPool(y)], 1);
    };
    const part = (s: number, e: number) =>
      one(s === 0 && e === n ? frames : slice(frames, { axis: 0, start: s, end: e }));
    // Differentiable: no tidy scope around a group, as the graph holds its intermediates.
    return byFrameGroups(n, this.#group(h, w), part, (parts) => concat(parts, 0), {
      tidy: forwardOnly,
    });
  }

  /** Per-frame scores `[B,T]` and the GRU's last state `[B,hidden]`, from state `h0`. */
  #frameScoresFrom(x5: Tensor, h0: Tensor | null, forwardOnly = false): { q: Tensor; h: Tensor } {
    const [b, t, , h, w] = x5.shape;
    const pooled = this.#pooled(x5.reshape([b * t, 3, h, w]), forwardOnly);
    return vsfaHead(pooled.reshape([b, t, pooled.shape[1]]), this.#params, {
      ...HEAD_NAMES[this.family],
      hidden: this.config.hidden,
      h0,
    });
  }

  /** Clip scores `[B]` from per-frame scores `[B,T]`: the temporal pooling, then the head. */
  #pool(q: Tensor): Tensor {
    const pooled = hysteresisPool(q, { tau: this.config.tau, gamma: this.config.gamma });
    if (this.family === "vsfa") return pooled;
    return mdtvsfaMapping(pooled, this.#params, this.config.output);
  }

  /** Per-frame scores of a batch `[B,T,3,H,W]` -> `[B,T]` (before the temporal pooling). */
  frameScoresBatch(clips: Tensor): Tensor {
    return this.#frameScoresFrom(asBatch(clips, this.name), null).q;
  }

  /** Per-frame scores `[T]` of one clip `[T,3,H,W]`. */
  frameScores(frames: Tensor): Tensor {
    const q = this.frameScoresBatch(asBatch(frames, this.name));
    return q.reshape([q.size]);
  }

  /** Clip scores of a batch `[B,T,3,H,W]` -> `[B]`. Differentiable. */
  scoreBatch(clips: Tensor): Tensor {
    return this.#pool(this.frameScoresBatch(clips));
  }

  /** Same as {@link Vsfa.scoreBatch} (nothing is prepared). */
  scorePrepared(prepared: Tensor): Tensor {
    return this.scoreBatch(prepared);
  }

  /** The clip's score `[1]`. Differentiable. */
  score(frames: Tensor): Tensor {
    return this.scoreBatch(asBatch(frames, this.name)).reshape([1]);
  }

  /**
   * A chunk-by-chunk scorer (see {@link VictimStream}): the GRU's state is carried across
   * chunks; the temporal pooling (and MDTVSFA's mapping) runs over the whole clip at the end.
   * Forward only.
   */
  stream(): VictimStream {
    return chunkedStream({
      who: this.name,
      firstChunk: 1,
      step: (parts, state) => {
        const { q, h } = this.#frameScoresFrom(joinParts(parts), state?.[0] ?? null, true);
        return { scores: q, state: [h] };
      },
      pool: (scores) => this.#pool(scores),
    });
  }

  /** Frees the parameters and the folded backbone weights. */
  dispose(): void {
    this.#backbone.dispose();
    disposeParams(this.#params);
  }
}

/**
 * MDTVSFA's head after the temporal pooling, on pooled scores `[B]`: the relative score
 * `sigmoid(s)`, the mapped score `nlm.2(sigmoid(nlm.0(relative)))`, and a dataset's aligned
 * score `lm.<d>(mapped)`. Differentiable.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../../tensor/tensor.ts";
 * import { mdtvsfaMapping } from "./vsfa.ts";
 * await initGpu();
 * const one = (v: number) => tensor([v], [1, 1]);
 * const params = { "nlm.0.weight": one(2), "nlm.0.bias": tensor([-1], [1]), "nlm.2.weight": one(1),
 *   "nlm.2.bias": tensor([0], [1]) };
 * const mapped = mdtvsfaMapping(tensor([0.3], [1]), params, "mapped");
 * ```
 */
export function mdtvsfaMapping(
  pooled: Tensor,
  params: Record<string, Tensor>,
  output: MdtvsfaOutput,
): Tensor {
  const relative = sigmoid(pooled);
  if (output === "relative") return relative;
  const affine = (x: Tensor, name: string) =>
    add(mul(x, params[`${name}.weight`].reshape([1])), params[`${name}.bias`]);
  const mapped = affine(sigmoid(affine(relative, "nlm.0")), "nlm.2");
  if (output === "mapped") return mapped;
  return affine(mapped, `lm.${output}`);
}

/** Options of {@link vsfaHead}: the head's parameter names and sizes, and the GRU's state. */
export interface VsfaHeadOptions {
  /** The linear reduction's name (`ann.fc0` in VSFA's file). */
  reduce: string;
  /** The GRU's name (its tensors end in `_l0`, as `torch.nn.GRU`'s first layer). */
  gru: string;
  /** The per-frame regression's name (`q`). */
  q: string;
  /** GRU hidden size. */
  hidden: number;
  /** The GRU's state to start from `[B, hidden]` (null: zeros). */
  h0?: Tensor | null;
}

/**
 * VSFA's head on pooled frame features `[B, T, F]`: the linear reduction, the GRU over the
 * frames and the per-frame regression. Returns the per-frame scores `[B, T]` (before the
 * temporal pooling) and the GRU's last state `[B, hidden]`. Differentiable. Shared by the
 * published `vsfa`/`mdtvsfa` and the bundled `vsfa-mobilenetv2`.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../../tensor/tensor.ts";
 * import { ParamBuilder } from "./victim.ts";
 * import { vsfaHead } from "./vsfa.ts";
 * await initGpu();
 * const pb = new ParamBuilder(1);
 * pb.linear("ann.fc0", 16, 8);
 * pb.gru("rnn", 8, 4, "_l0");
 * pb.linear("q", 4, 1);
 * const names = { reduce: "ann.fc0", gru: "rnn", q: "q", hidden: 4 };
 * const { q, h } = vsfaHead(full([2, 5, 16], 0.5), pb.params, names); // [2, 5], [2, 4]
 * ```
 */
export function vsfaHead(
  pooled: Tensor,
  params: Record<string, Tensor>,
  options: VsfaHeadOptions,
): { q: Tensor; h: Tensor } {
  const p = params;
  const { reduce, gru: g, q: qName, hidden } = options;
  const [b, t, f] = pooled.shape;
  const reduced = linear(pooled.reshape([b * t, f]), p[`${reduce}.weight`], p[`${reduce}.bias`]);
  const hs = gruSequence(
    reduced.reshape([b, t, reduced.shape[1]]),
    options.h0 ?? full([b, hidden], 0),
    {
      wIh: p[`${g}.weight_ih_l0`],
      wHh: p[`${g}.weight_hh_l0`],
      bIh: p[`${g}.bias_ih_l0`],
      bHh: p[`${g}.bias_hh_l0`],
    },
  );
  const q = linear(hs, p[`${qName}.weight`], p[`${qName}.bias`]);
  const last = slice(hs, { axis: 1, start: t - 1 }).reshape([b, hidden]);
  return { q: q.reshape([b, t]), h: last };
}
