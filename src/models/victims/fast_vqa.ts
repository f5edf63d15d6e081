/**
 * The published FAST-VQA (Wu et al., "FAST-VQA: Efficient end-to-end video quality assessment
 * with fragment sampling", ECCV 2022; the B variant) and FasterVQA (Wu et al., "Neighbourhood
 * representative sampling for efficient end-to-end video quality assessment", TPAMI 2023), as
 * the authors' code runs them (github.com/VQAssessment/FAST-VQA-and-FasterVQA: `vqa.py`,
 * `options/fast/fast-b.yml` and `f3dvqa-b.yml`, read for the protocol; our own code):
 *
 * - **Sampling** (fragments.ts): FAST-VQA-B takes 4 segments of 32 frames every 2nd frame, as 4
 *   clips; FasterVQA 8 segments of 4 frames, as one clip of 32 (its "fragments in time"). Each
 *   frame gives 7x7 fragments of 32x32 pixels (224x224), the offsets shared by 32 (FAST-VQA) or
 *   8 (FasterVQA) consecutive sampled frames, drawn once from `seed`.
 * - **Network**: the fragments, scaled to 0..255 and normalised with ImageNet's mean and std,
 *   go clip by clip through the video Swin-T with the fragment-gated relative position bias
 *   (swin3d.ts; `fragments_backbone.*`), then the head `vqa_head` (`fc_hid`, a 1x1x1 conv 768 ->
 *   64, GELU, `fc_last` 64 -> 1) at every position of the `[16, 7, 7]` output.
 * - **Score**: the mean over clips and positions, mapped to 0..1 by the authors' demo
 *   (`sigmoid_rescale`): `1 / (1 + exp(-(raw - m) / s))` with FAST-VQA's (m, s) =
 *   (-0.110198185, 0.04178565) and FasterVQA's (0.14759505, 0.03613452). `qMin` 0, `qMax` 1.
 *
 * The checkpoints (`FAST_VQA_B_1*4.pth`, `FAST_VQA_3D_1*1.pth`) hold `{"state_dict": ...}`
 * with the names above; their `relative_position_index` buffers are recomputed, not read.
 *
 * @module
 */

import { z } from "zod";
import type { SameShape } from "../../_zod.ts";
import { add, gelu, linear, mean, mul, permute, sigmoid, slice, sub } from "../../nn/mod.ts";
import { isGradEnabled, type Tensor, tidy } from "../../tensor/tensor.ts";
import { FragmentCutter, type FragmentPlan, fragmentPlan } from "./fragments.ts";
import { imagenetNormalize } from "./resnet.ts";
import { type SampledView, SampledViewVictim, viewImages } from "./sampled_views.ts";
import {
  buildSwinParams,
  Swin3d,
  SWIN_T_FRAGMENTS,
  swinChannels,
  type SwinConfig,
  swinConfigZod,
} from "./swin3d.ts";
import {
  checkModelSize,
  disposeParams,
  MAX_MODEL_WIDTH,
  type ModelSize,
  ParamBuilder,
  parseModelConfig,
  type PublishedBaseConfig,
  PublishedBaseSchema,
  type Victim,
} from "./victim.ts";

/**
 * A fragment view: its sampling in time and space, and its head (FAST-VQA's, FasterVQA's and
 * DOVER's technical branch).
 *
 * @example
 * ```ts
 * import { FAST_VQA_DEFAULTS, type FragmentViewConfig } from "./fast_vqa.ts";
 * const v: FragmentViewConfig = { ...FAST_VQA_DEFAULTS, clips: 2, segments: 2 };
 * ```
 */
export type FragmentViewConfig = {
  /** The Swin transformer. */
  backbone: SwinConfig;
  /** Width of the head's hidden layer (64). */
  hidden: number;
  /** Fragment grid `[fh, fw]` ([7, 7]). */
  fragments: [number, number];
  /** Fragment size `[sh, sw]` ([32, 32]). */
  fragmentSize: [number, number];
  /** Consecutive sampled frames sharing the fragments' offsets. */
  aligned: number;
  /** Equal parts the video is cut into in time. */
  segments: number;
  /** Frames taken from each part. */
  segmentFrames: number;
  /** Step between sampled frames. */
  interval: number;
  /** Times the sampling is repeated. */
  repeats: number;
  /** Clips the sampled frames form (scored one by one, averaged). */
  clips: number;
  /** Frames per clip (`clips · clipLen = repeats · segments · segmentFrames`). */
  clipLen: number;
};

const pair = z.tuple([
  z.number().int().positive().max(4096),
  z.number().int().positive().max(4096),
]);

/**
 * The zod fields of a {@link FragmentViewConfig} (FAST-VQA's config and DOVER's technical view
 * extend them).
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { FAST_VQA_DEFAULTS, fragmentViewFields } from "./fast_vqa.ts";
 * const { rescale: _r, seed: _s, ...view } = FAST_VQA_DEFAULTS;
 * console.log(z.object(fragmentViewFields).strip().safeParse(view).success); // true
 * ```
 */
export const fragmentViewFields = {
  backbone: swinConfigZod,
  hidden: z.number().int().positive().max(MAX_MODEL_WIDTH),
  fragments: z.tuple([z.number().int().positive().max(64), z.number().int().positive().max(64)]),
  fragmentSize: pair,
  aligned: z.number().int().positive().max(1024),
  segments: z.number().int().positive().max(1024),
  segmentFrames: z.number().int().positive().max(1024),
  interval: z.number().int().positive().max(64),
  repeats: z.number().int().positive().max(64),
  clips: z.number().int().positive().max(64),
  clipLen: z.number().int().positive().max(1024),
};

/**
 * Checks a fragment view's counts agree (for a zod `superRefine`): `clips · clipLen` sampled
 * frames, a multiple of `aligned`.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { checkViewCounts } from "./fast_vqa.ts";
 * const counts = z.object({
 *   aligned: z.number(), segments: z.number(), segmentFrames: z.number(), repeats: z.number(),
 *   clips: z.number(), clipLen: z.number(),
 * }).superRefine((v, ctx) => checkViewCounts(v, ctx));
 * const c = { aligned: 32, segments: 4, segmentFrames: 32, repeats: 1, clips: 4, clipLen: 32 };
 * console.log(counts.safeParse(c).success, counts.safeParse({ ...c, clips: 2 }).success); // true false
 * ```
 */
export function checkViewCounts(
  v: Pick<
    FragmentViewConfig,
    "aligned" | "segments" | "segmentFrames" | "repeats" | "clips" | "clipLen"
  >,
  ctx: z.RefinementCtx,
  path: (string | number)[] = [],
): void {
  const n = v.repeats * v.segments * v.segmentFrames;
  if (n !== v.clips * v.clipLen) {
    ctx.addIssue({
      code: "custom",
      path: [...path, "clipLen"],
      message: `clips · clipLen (${v.clips * v.clipLen}) must equal repeats · segments · ` +
        `segmentFrames (${n})`,
    });
  }
  if (n % v.aligned !== 0) {
    ctx.addIssue({
      code: "custom",
      path: [...path, "aligned"],
      message: `the ${n} sampled frames are not a multiple of aligned ${v.aligned}`,
    });
  }
}

/**
 * The config of the `fast-vqa` and `faster-vqa` victims.
 *
 * @example
 * ```ts
 * import { FASTER_VQA_DEFAULTS, type FastVqaConfig } from "./fast_vqa.ts";
 * const c: FastVqaConfig = { ...FASTER_VQA_DEFAULTS, seed: 2 };
 * ```
 */
export type FastVqaConfig = PublishedBaseConfig & FragmentViewConfig & {
  /** The demo's rescaling `[m, s]`: `sigmoid((raw - m) / s)`; null keeps the raw mean. */
  rescale: [number, number] | null;
  /** Seed of the sampling plan (frame offsets and fragment positions). */
  seed: number;
};

const fastVqaObject = PublishedBaseSchema.extend({
  ...fragmentViewFields,
  rescale: z.tuple([z.number(), z.number().positive()]).nullable(),
  seed: z.number().int().min(0).max(2 ** 31),
}).strict();

/** Validates a {@link FastVqaConfig} (unknown fields are refused). */
export const FastVqaConfigSchema = fastVqaObject.superRefine((c, ctx) => checkViewCounts(c, ctx));
const _same: SameShape<FastVqaConfig, z.output<typeof fastVqaObject>> = true;

/** FAST-VQA-B as its authors test it (`fast-b.yml`: 4 clips of 32 frames; 300 frames read). */
export const FAST_VQA_DEFAULTS: FastVqaConfig = {
  frames: 300,
  height: null,
  width: null,
  qMin: 0,
  qMax: 1,
  slope: 0,
  input: "rgb",
  logStd: false,
  backbone: SWIN_T_FRAGMENTS,
  hidden: 64,
  fragments: [7, 7],
  fragmentSize: [32, 32],
  aligned: 32,
  segments: 4,
  segmentFrames: 32,
  interval: 2,
  repeats: 1,
  clips: 4,
  clipLen: 32,
  rescale: [-0.110198185, 0.04178565],
  seed: 0,
};

/** FasterVQA as its authors test it (`f3dvqa-b.yml`: 8 segments of 4 frames, one clip). */
export const FASTER_VQA_DEFAULTS: FastVqaConfig = {
  ...FAST_VQA_DEFAULTS,
  aligned: 8,
  segments: 8,
  segmentFrames: 4,
  clips: 1,
  clipLen: 32,
  rescale: [0.14759505, 0.03613452],
};

/** The parameter prefix of FAST-VQA's backbone. */
const BACKBONE = "fragments_backbone.";

/**
 * Creates a VQA head's parameters (`<prefix>fc_hid`, `<prefix>fc_last`, 1x1x1 convs).
 *
 * @example
 * ```ts
 * import { buildVqaHeadParams } from "./fast_vqa.ts";
 * import { ParamBuilder } from "./victim.ts";
 * const pb = new ParamBuilder(0, { shapesOnly: true });
 * buildVqaHeadParams(pb, "vqa_head.", 768, 64);
 * console.log(pb.shapes["vqa_head.fc_last.weight"]); // [1, 64, 1, 1, 1]
 * ```
 */
export function buildVqaHeadParams(
  pb: ParamBuilder,
  prefix: string,
  cin: number,
  hidden: number,
): void {
  const b1 = 1 / Math.sqrt(cin);
  pb.uniform(`${prefix}fc_hid.weight`, [hidden, cin, 1, 1, 1], -b1, b1);
  pb.uniform(`${prefix}fc_hid.bias`, [hidden], -b1, b1);
  const b2 = 1 / Math.sqrt(hidden);
  pb.uniform(`${prefix}fc_last.weight`, [1, hidden, 1, 1, 1], -b2, b2);
  pb.uniform(`${prefix}fc_last.bias`, [1], -b2, b2);
}

/**
 * The VQA head's mean score `[1]` over every position of features `[..., C]` (channels last):
 * `fc_last(GELU(fc_hid(x)))` per position (dropout is off at test time), averaged.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../../tensor/tensor.ts";
 * import { buildVqaHeadParams, vqaHeadMean } from "./fast_vqa.ts";
 * import { ParamBuilder } from "./victim.ts";
 * await initGpu();
 * const pb = new ParamBuilder(1);
 * buildVqaHeadParams(pb, "h.", 8, 4);
 * const q = vqaHeadMean(full([2, 3, 3, 8], 0.5), pb.params, "h."); // [1]
 * ```
 */
export function vqaHeadMean(
  features: Tensor,
  params: Record<string, Tensor>,
  prefix: string,
): Tensor {
  const c = features.shape[features.rank - 1];
  const hid = params[`${prefix}fc_hid.weight`];
  const last = params[`${prefix}fc_last.weight`];
  if (!hid || !last) throw new RangeError(`VQA head: no parameters under '${prefix}'`);
  const x = features.reshape([-1, c]);
  const h = gelu(linear(x, hid.reshape([hid.shape[0], c]), params[`${prefix}fc_hid.bias`]));
  const q = linear(h, last.reshape([1, hid.shape[0]]), params[`${prefix}fc_last.bias`]);
  return mean(q).reshape([1]);
}

/**
 * The raw score `[1]` of a fragment view's images `[N, 3, h, w]` (in [0, 1]): normalised,
 * split into clips of `clipLen`, each through the backbone and head; the mean of the clips.
 *
 * @example
 * ```ts ignore
 * const raw = fragmentRaw(images, { clips: 4, clipLen: 32 }, swin, params, "vqa_head.");
 * ```
 */
export function fragmentRaw(
  images: Tensor,
  v: Pick<FragmentViewConfig, "clips" | "clipLen">,
  backbone: { features(clip: Tensor): Tensor },
  params: Record<string, Tensor>,
  headPrefix: string,
): Tensor {
  const x = imagenetNormalize(images);
  let sum: Tensor | null = null;
  for (let k = 0; k < v.clips; k++) {
    const clip = permute(slice(x, { axis: 0, start: k * v.clipLen, end: (k + 1) * v.clipLen }), [
      1,
      0,
      2,
      3,
    ]);
    const q = forwardScope(() => vqaHeadMean(backbone.features(clip), params, headPrefix));
    sum = sum ? add(sum, q) : q;
  }
  return mul(sum!, 1 / v.clips);
}

/**
 * Runs `fn` in a `tidy` when no gradient is recorded (its intermediates are then garbage), as it
 * is otherwise (the graph needs them): a forward pass frees each clip's tensors as it goes.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { noGrad, tensor } from "../../tensor/tensor.ts";
 * import { mul } from "../../nn/mod.ts";
 * import { forwardScope } from "./fast_vqa.ts";
 * await initGpu();
 * const y = noGrad(() => forwardScope(() => mul(mul(tensor([1, 2]), 2), 3)));
 * ```
 */
export function forwardScope(fn: () => Tensor): Tensor {
  return isGradEnabled() ? fn() : tidy(fn);
}

/**
 * A fragment view of a `t`-frame video (its plan drawn from `seed`, unless given).
 *
 * @example
 * ```ts
 * import { FAST_VQA_DEFAULTS, fragmentSampledView } from "./fast_vqa.ts";
 * const view = fragmentSampledView(FAST_VQA_DEFAULTS, 300, 540, 960, 0);
 * console.log(view.indices.length); // 128
 * ```
 */
export function fragmentSampledView(
  v: FragmentViewConfig,
  t: number,
  height: number,
  width: number,
  seed: number,
  plan?: FragmentPlan,
): SampledView {
  const grid = { fragments: v.fragments, fragmentSize: v.fragmentSize, aligned: v.aligned };
  const p = plan ?? fragmentPlan(t, height, width, {
    sampling: v,
    grid,
    seed,
  });
  const cutter = new FragmentCutter(height, width, p, grid);
  return { indices: p.indices, prepare: (f) => cutter.frame(f), image: (f, n) => cutter.cut(f, n) };
}

function buildParams(pb: ParamBuilder, c: FastVqaConfig): void {
  buildSwinParams(pb, BACKBONE, c.backbone);
  buildVqaHeadParams(pb, "vqa_head.", swinChannels(c.backbone), c.hidden);
}

/**
 * The parameter shapes of a config, without allocating.
 *
 * @example
 * ```ts
 * import { FAST_VQA_DEFAULTS, fastVqaSize } from "./fast_vqa.ts";
 * console.log(fastVqaSize(FAST_VQA_DEFAULTS).shapes["vqa_head.fc_hid.weight"]); // [64, 768, 1, 1, 1]
 * ```
 */
export function fastVqaSize(c: FastVqaConfig): ModelSize {
  const pb = new ParamBuilder(0, { shapesOnly: true });
  buildParams(pb, c);
  return { shapes: pb.shapes };
}

/**
 * The `fast-vqa` and `faster-vqa` victims (see the module's documentation). Random weights until
 * loaded (`loadVictim("fast-vqa", { weights: ["FAST_VQA_B_1*4.pth"] })`).
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { FastVqa, type FastVqaConfig } from "./fast_vqa.ts";
 * await initGpu();
 * const tiny: Partial<FastVqaConfig> = {
 *   backbone: {
 *     embedDim: 8, depths: [2, 2], heads: [1, 2], window: [2, 3, 3], patch: [2, 4, 4],
 *     mlpRatio: 4, fragBiases: [true, false], baseSize: [4, 48, 48], adaptiveWindow: true,
 *   },
 *   hidden: 8, fragments: [3, 3], fragmentSize: [16, 16], aligned: 4,
 *   segments: 1, segmentFrames: 4, interval: 2, repeats: 1, clips: 1, clipLen: 4,
 * };
 * const model = new FastVqa("fast-vqa", { seed: 1, config: tiny });
 * const q = model.score(tensor(new Float32Array(6 * 3 * 60 * 80).fill(0.5), [6, 3, 60, 80]));
 * model.dispose();
 * ```
 */
export class FastVqa extends SampledViewVictim implements Victim {
  /** The family name. */
  readonly family: "fast-vqa" | "faster-vqa";
  /** The model's name. */
  readonly name: string;
  /** The validated config. */
  readonly config: FastVqaConfig;
  #params: Record<string, Tensor>;
  #swin: Swin3d;

  /** A fresh model of `family`; the config overrides the family's defaults. */
  constructor(
    family: "fast-vqa" | "faster-vqa",
    options: { config?: Partial<FastVqaConfig>; seed?: number; name?: string } = {},
  ) {
    super();
    this.family = family;
    const defaults = family === "fast-vqa" ? FAST_VQA_DEFAULTS : FASTER_VQA_DEFAULTS;
    this.config = parseModelConfig(family, FastVqaConfigSchema, defaults, options.config);
    checkModelSize(family, (c) => fastVqaSize(c), {
      config: this.config,
      defaults,
      overrides: options.config,
    });
    this.name = options.name ?? family;
    const pb = new ParamBuilder(options.seed ?? 0);
    buildParams(pb, this.config);
    this.#params = pb.params;
    this.#swin = new Swin3d(this.config.backbone, this.#params, BACKBONE);
  }

  /** The parameters by name (the authors': `fragments_backbone.*`, `vqa_head.*`). */
  parameters(): Record<string, Tensor> {
    return this.#params;
  }

  /** The fragment view of a `t`-frame video of `height x width` (its plan from the config's seed). */
  view(t: number, height: number, width: number, plan?: FragmentPlan): SampledView {
    return fragmentSampledView(this.config, t, height, width, this.config.seed, plan);
  }

  /** The one view, the fragments (see {@link FastVqa.view}). */
  views(t: number, height: number, width: number): SampledView[] {
    return [this.view(t, height, width)];
  }

  /** The score `[1]` from the fragment images `[N, 3, h, w]`. */
  scoreImages(images: Tensor): Tensor {
    const raw = fragmentRaw(images, this.config, this.#swin, this.#params, "vqa_head.");
    const r = this.config.rescale;
    return r ? sigmoid(mul(sub(raw, r[0]), 1 / r[1])) : raw;
  }

  /** {@link FastVqa.scoreImages} of the one view's images. */
  scoreViews(images: Tensor[]): Tensor {
    return this.scoreImages(images[0]);
  }

  /**
   * The score `[1]` of frames `[T,3,H,W]` under an explicit plan (the authors' random draws
   * replayed, e.g. by a parity test); {@link SampledViewVictim.score} draws the plan from the
   * seed.
   */
  scoreWithPlan(frames: Tensor, plan: FragmentPlan): Tensor {
    const [t, , h, w] = frames.shape;
    return this.scoreImages(viewImages(frames, this.view(t, h, w, plan)));
  }

  /** Frees the parameters. */
  dispose(): void {
    disposeParams(this.#params);
  }
}
