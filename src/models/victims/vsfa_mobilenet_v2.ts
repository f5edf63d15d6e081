/**
 * `vsfa-mobilenetv2`: a VSFA-style victim on real, pretrained features. Each frame goes through
 * a frozen ImageNet-initialised MobileNetV2 (Keras' layout, alpha 1; the weights the npm package
 * `nsfwjs` 4.3.0 ships, MIT licence, bundled in `data/models/mobilenet_v2_nsfwjs/` and
 * dequantised from uint8 when the victim is made); the `out_relu` map's global mean and unbiased
 * std (1280 + 1280) go through VSFA's head (`ann.fc0` 2560 -> 128, a GRU 128 -> 32, `q`
 * 32 -> 1 per frame), the subjectively-inspired temporal pooling (tau 12, gamma 0.5) and the
 * smooth bound onto the proxy scale 1..5 (`boundScore`). Only the head is trained (on the proxy
 * set, `deno task train-victim --model vsfa-mobilenetv2`) and saved; the backbone comes from its
 * own files.
 *
 * Frames are read at their own resolution, as VSFA's protocol has it, up to `maxPixels`
 * (1280 x 720 by default): a larger frame is scaled down (bilinear with antialiasing, keeping
 * the aspect ratio; differentiable) to fit, since MobileNetV2's widest map at 1080p would not
 * fit one GPU binding. The frames are in [0, 1], as nsfwjs' model expects.
 *
 * {@link VsfaMobileNetV2.prepare} returns the backbone's pooled features `[..., T, 2560]`, not
 * frames: the backbone is frozen, so training computes them once per clip (`loadVictimClips`)
 * and then trains the head on them. `score(x)` is `scorePrepared(prepare(x))` as for every
 * victim, and both are differentiable with respect to the pixels.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { z } from "zod";
import type { SameShape } from "../../_zod.ts";
import { concat, globalMeanPool, globalStdPool, resize, slice } from "../../nn/mod.ts";
import { type Tensor, tensor } from "../../tensor/tensor.ts";
import { readTfjsWeightsSync } from "../../io/tfjs.ts";
import { boundScore } from "./bound.ts";
import { hysteresisPool } from "./hysteresis.ts";
import {
  buildMobileNetV2Params,
  MobileNetV2,
  mobileNetV2Channels,
  mobileNetV2FromKeras,
} from "./mobilenet_v2.ts";
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
import { vsfaHead } from "./vsfa.ts";
import { bindingLimit } from "../../gpu/device.ts";

/** The bundled backbone: nsfwjs 4.3.0's MobileNetV2 as a TensorFlow.js model (see SOURCES.md). */
export const MOBILENET_V2_NSFWJS: string = fileURLToPath(
  new URL("../../../data/models/mobilenet_v2_nsfwjs/model.json", import.meta.url),
);

/**
 * The config of `vsfa-mobilenetv2`.
 *
 * @example
 * ```ts
 * import { VSFA_MOBILENET_V2_DEFAULTS, type VsfaMobileNetV2Config } from "./vsfa_mobilenet_v2.ts";
 * const c: VsfaMobileNetV2Config = { ...VSFA_MOBILENET_V2_DEFAULTS, hidden: 16 };
 * console.log(c.reduced); // 128
 * ```
 */
export type VsfaMobileNetV2Config = PublishedBaseConfig & {
  /** `nsfwjs`: the bundled pretrained backbone (alpha 1); `random`: seeded weights (tests). */
  backbone: "nsfwjs" | "random";
  /** MobileNetV2's width multiplier (1 for the bundled backbone). */
  alpha: number;
  /** Size of the linear reduction of the pooled features (VSFA's 128). */
  reduced: number;
  /** GRU hidden size (VSFA's 32). */
  hidden: number;
  /** Temporal pooling window (12). */
  tau: number;
  /** Weight of the memory term of the temporal pooling (0.5). */
  gamma: number;
  /** Frames with more pixels are scaled down to this many (keeping their aspect ratio). */
  maxPixels: number;
};

const ConfigObject = PublishedBaseSchema.extend({
  backbone: z.enum(["nsfwjs", "random"]),
  alpha: z.number().positive().max(4),
  reduced: z.number().int().positive().max(MAX_MODEL_WIDTH),
  hidden: z.number().int().positive().max(MAX_MODEL_WIDTH),
  tau: z.number().int().positive().max(4096),
  gamma: z.number().min(0).max(1),
  maxPixels: z.number().int().min(32 * 32).max(16384 * 16384),
}).strict().refine((c) => c.backbone !== "nsfwjs" || c.alpha === 1, {
  message: "the nsfwjs backbone has alpha 1",
  path: ["alpha"],
});

/** Validates a {@link VsfaMobileNetV2Config} (unknown fields are refused). */
export const VsfaMobileNetV2ConfigSchema: z.ZodType<
  VsfaMobileNetV2Config,
  z.ZodTypeDef,
  unknown
> = ConfigObject;
const _sameConfig: SameShape<VsfaMobileNetV2Config, z.output<typeof ConfigObject>> = true;

/**
 * Defaults: the bundled backbone, VSFA's head sizes and pooling, scores on the proxy's 1..5,
 * frames at their own resolution up to 1280 x 720 pixels, at most 240 frames read per clip.
 */
export const VSFA_MOBILENET_V2_DEFAULTS: VsfaMobileNetV2Config = {
  frames: 240,
  height: null,
  width: null,
  qMin: 1,
  qMax: 5,
  slope: 0,
  input: "rgb",
  logStd: false,
  backbone: "nsfwjs",
  alpha: 1,
  reduced: 128,
  hidden: 32,
  tau: 12,
  gamma: 0.5,
  maxPixels: 1280 * 720,
};

/** VSFA's names for the head (as the `vsfa` family and the authors' file have them). */
const HEAD = { reduce: "ann.fc0", gru: "rnn", q: "q" } as const;

function buildHead(pb: ParamBuilder, c: VsfaMobileNetV2Config): void {
  const features = 2 * mobileNetV2Channels({ alpha: c.alpha });
  pb.linear(HEAD.reduce, features, c.reduced);
  pb.gru(HEAD.gru, c.reduced, c.hidden, "_l0");
  pb.linear(HEAD.q, c.hidden, 1, (c.qMin + c.qMax) / 2);
}

/**
 * The head's parameter shapes (the only parameters the victim trains and saves).
 *
 * @example
 * ```ts
 * import { VSFA_MOBILENET_V2_DEFAULTS, vsfaMobileNetV2Size } from "./vsfa_mobilenet_v2.ts";
 * const { shapes } = vsfaMobileNetV2Size(VSFA_MOBILENET_V2_DEFAULTS);
 * console.log(shapes["ann.fc0.weight"]); // [128, 2560]
 * ```
 */
export function vsfaMobileNetV2Size(c: VsfaMobileNetV2Config): ModelSize {
  const pb = new ParamBuilder(0, { shapesOnly: true });
  buildHead(pb, c);
  return { shapes: pb.shapes };
}

/**
 * The `vsfa-mobilenetv2` victim (see the module's documentation). A fresh one has the bundled
 * backbone and a seeded, untrained head; `loadVictim("vsfa-mobilenetv2")` loads the trained
 * head from data/models.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { VsfaMobileNetV2 } from "./vsfa_mobilenet_v2.ts";
 * await initGpu();
 * const small = { backbone: "random" as const, alpha: 0.35, reduced: 8, hidden: 4 };
 * const model = new VsfaMobileNetV2({ seed: 1, config: small });
 * const frames = tensor(new Float32Array(3 * 3 * 64 * 64).fill(0.5), [3, 3, 64, 64]);
 * const q = model.score(frames); // [1], in [1, 5]
 * model.dispose();
 * ```
 */
export class VsfaMobileNetV2 implements Victim {
  /** The family name. */
  readonly family = "vsfa-mobilenetv2" as const;
  /** The model's name. */
  readonly name: string;
  /** The validated config. */
  readonly config: VsfaMobileNetV2Config;
  #head: Record<string, Tensor>;
  #backboneParams: Record<string, Tensor>;
  #backbone: MobileNetV2;

  /**
   * A fresh model; the config overrides the defaults. An invalid config is a
   * `ModelConfigError` naming the field, before anything is allocated; a missing or damaged
   * backbone file is an error naming it.
   */
  constructor(
    options: { config?: Partial<VsfaMobileNetV2Config>; seed?: number; name?: string } = {},
  ) {
    const who = "vsfa-mobilenetv2";
    this.config = parseModelConfig(
      who,
      VsfaMobileNetV2ConfigSchema,
      VSFA_MOBILENET_V2_DEFAULTS,
      options.config,
    );
    checkModelSize(who, vsfaMobileNetV2Size, {
      config: this.config,
      defaults: VSFA_MOBILENET_V2_DEFAULTS,
      overrides: options.config,
    });
    this.name = options.name ?? who;
    const net = { alpha: this.config.alpha };
    if (this.config.backbone === "nsfwjs") {
      const keras = readTfjsWeightsSync(MOBILENET_V2_NSFWJS);
      const ours = mobileNetV2FromKeras(keras, net);
      this.#backboneParams = Object.fromEntries(
        Object.entries(ours).map(([k, t]) => [k, tensor(t.data, t.shape)]),
      );
    } else {
      const pb = new ParamBuilder((options.seed ?? 0) + 7919);
      buildMobileNetV2Params(pb, "", net);
      this.#backboneParams = pb.params;
    }
    for (const p of Object.values(this.#backboneParams)) p.requiresGrad = false;
    this.#backbone = new MobileNetV2(net, this.#backboneParams, "");
    const pb = new ParamBuilder(options.seed ?? 0);
    buildHead(pb, this.config);
    this.#head = pb.params;
  }

  /** The head's parameters by name (VSFA's names); the frozen backbone is not among them. */
  parameters(): Record<string, Tensor> {
    return this.#head;
  }

  /** The frozen backbone's parameters (Keras' layer names, our layout). */
  backboneParameters(): Record<string, Tensor> {
    return this.#backboneParams;
  }

  /** The size frames of `h x w` are scored at: their own, or scaled down to `maxPixels`. */
  scoredSize(h: number, w: number): { height: number; width: number } {
    const max = this.config.maxPixels;
    if (h * w <= max) return { height: h, width: w };
    const s = Math.sqrt(max / (h * w));
    return { height: Math.max(1, Math.floor(h * s)), width: Math.max(1, Math.floor(w * s)) };
  }

  /**
   * Frames per backbone pass: as many as keep the widest map (block 1's expansion) in a
   * binding. Frames whose `out_relu` map would be a single value (its std undefined) are refused.
   */
  #group(h: number, w: number): number {
    // Each of the five stride-2 layers maps n to floor(n / 2) (Keras' pad, then "valid").
    const out = (n: number) => Math.floor(n / 32);
    if (out(h) * out(w) < 2) {
      throw new RangeError(
        `${this.name}: frames of ${w}x${h} give a ${Math.max(1, out(w))}x${
          Math.max(1, out(h))
        } map, whose std is undefined; frames need at least 64 pixels along one side and 32 along the other`,
      );
    }
    const widest = Math.ceil(96 * Math.max(1, this.config.alpha)) + 8;
    const bytes = 4 * widest * (Math.ceil(h / 2) + 1) * (Math.ceil(w / 2) + 1);
    const limit = bindingLimit();
    if (bytes > limit) {
      throw new RangeError(
        `${this.name}: a ${w}x${h} frame needs a ${(bytes / 2 ** 20).toFixed(0)} MiB ` +
          `feature map, more than one GPU binding holds on this adapter ` +
          `(${(limit / 2 ** 20).toFixed(0)} MiB); lower maxPixels`,
      );
    }
    return framesPerGroup(bytes, limit);
  }

  /** Pooled features `[N, 2C]` (mean, then unbiased std of `out_relu`) of frames `[N,3,H,W]`. */
  #pooled(frames: Tensor, forwardOnly: boolean): Tensor {
    const [n, , h0, w0] = frames.shape;
    const { height: h, width: w } = this.scoredSize(h0, w0);
    const one = (x: Tensor) => {
      const src = h === h0 && w === w0 ? x : resize(x, { height: h, width: w, antialias: true });
      const y = this.#backbone.features(src);
      return concat([globalMeanPool(y), globalStdPool(y)], 1);
    };
    const part = (s: number, e: number) =>
      one(s === 0 && e === n ? frames : slice(frames, { axis: 0, start: s, end: e }));
    // Differentiable: no tidy scope around a group, as the graph holds its intermediates.
    return byFrameGroups(n, this.#group(h, w), part, (parts) => concat(parts, 0), {
      tidy: forwardOnly,
    });
  }

  #features(x5: Tensor, forwardOnly: boolean): Tensor {
    const [b, t, , h, w] = x5.shape;
    const pooled = this.#pooled(x5.reshape([b * t, 3, h, w]), forwardOnly);
    return pooled.reshape([b, t, pooled.shape[1]]);
  }

  /**
   * The backbone's pooled features of a clip `[T,3,H,W]` -> `[T,2560]` (or a batch
   * `[B,T,3,H,W]` -> `[B,T,2560]`): what the trained head looks at. Differentiable.
   */
  prepare(clips: Tensor): Tensor {
    const f = this.#features(asBatch(clips, this.name), false);
    return clips.rank === 4 ? f.reshape([f.shape[1], f.shape[2]]) : f;
  }

  #head3(features: Tensor, h0: Tensor | null) {
    return vsfaHead(features, this.#head, { ...HEAD, hidden: this.config.hidden, h0 });
  }

  #pool(q: Tensor): Tensor {
    const c = this.config;
    const pooled = hysteresisPool(q, { tau: c.tau, gamma: c.gamma });
    return boundScore(pooled, { qMin: c.qMin, qMax: c.qMax });
  }

  /** Clip scores `[B]` of prepared features `[B,T,F]`. Differentiable. */
  scorePrepared(prepared: Tensor): Tensor {
    if (prepared.rank !== 3) {
      throw new RangeError(
        `${this.name}: prepared features must be [B,T,F] (from prepare()), got [${prepared.shape}]`,
      );
    }
    return this.#pool(this.#head3(prepared, null).q);
  }

  /** Clip scores of a batch `[B,T,3,H,W]` -> `[B]`. Differentiable. */
  scoreBatch(clips: Tensor): Tensor {
    return this.scorePrepared(this.#features(asBatch(clips, this.name), false));
  }

  /** The clip's score `[1]`. Differentiable. */
  score(frames: Tensor): Tensor {
    return this.scoreBatch(asBatch(frames, this.name)).reshape([1]);
  }

  /** Per-frame scores `[T]` of one clip `[T,3,H,W]` (before the temporal pooling). */
  frameScores(frames: Tensor): Tensor {
    const q = this.#head3(this.#features(asBatch(frames, this.name), false), null).q;
    return q.reshape([q.size]);
  }

  /**
   * A chunk-by-chunk scorer (see {@link VictimStream}): the GRU's state is carried across
   * chunks; the temporal pooling and the bound run over the whole clip at the end. Forward only.
   */
  stream(): VictimStream {
    return chunkedStream({
      who: this.name,
      firstChunk: 1,
      step: (parts, state) => {
        const { q, h } = this.#head3(this.#features(joinParts(parts), true), state?.[0] ?? null);
        return { scores: q, state: [h] };
      },
      pool: (scores) => this.#pool(scores),
    });
  }

  /** Frees the head, the backbone and its folded weights. */
  dispose(): void {
    this.#backbone.dispose();
    disposeParams(this.#backboneParams);
    disposeParams(this.#head);
  }
}
