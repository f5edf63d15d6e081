/**
 * The published DOVER (Wu et al., "Exploring video quality assessment on user generated contents
 * from aesthetic and technical perspectives", ICCV 2023), as the authors' code runs it
 * (github.com/VQAssessment/DOVER: `dover.yml`, `evaluate_one_video.py`, read for the protocol;
 * our own code):
 *
 * - **Technical view**: FAST-VQA's fragments (fragments.ts), 3 segments of 32 frames every 2nd
 *   frame as 3 clips, 7x7 fragments of 32x32; the video Swin-T with the fragment-gated bias
 *   (`technical_backbone.*`, run without the adaptive window, as DOVER's forward does) and its
 *   head `technical_head`.
 * - **Aesthetic view**: 32 segments of one frame (one clip of 32), each resized to 224x224
 *   (bilinear, no antialias: torchvision's tensor `Resize` of the time); the inflated
 *   ConvNeXt-T (convnext3d.ts; `aesthetic_backbone.*`) and its head `aesthetic_head`.
 * - **Scores**: each view's head is FAST-VQA's (`fc_hid`, GELU, `fc_last` per position), its
 *   raw score the mean over clips and positions (t, a); the published fusion
 *   (`fuse_results`): `sigmoid((t - 0.1107) / 0.07355 · 0.6104 + (a + 0.08285) / 0.03774 ·
 *   0.3896)`, on 0..1.
 *
 * `DOVER.pth` is a plain state_dict with these names. The frames are normalised with ImageNet's
 * mean and std on 0..255, as FAST-VQA's.
 *
 * @module
 */

import { z } from "zod";
import type { SameShape } from "../../_zod.ts";
import { add, mul, permute, resize, sigmoid, slice } from "../../nn/mod.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import {
  buildConvNext3dParams,
  CONVNEXT3D_TINY,
  convNext3dChannels,
  type ConvNext3dConfig,
  convNext3dConfigZod,
  convNext3dFeatures,
} from "./convnext3d.ts";
import {
  buildVqaHeadParams,
  checkViewCounts,
  forwardScope,
  fragmentRaw,
  fragmentSampledView,
  type FragmentViewConfig,
  fragmentViewFields,
  vqaHeadMean,
} from "./fast_vqa.ts";
import { type FragmentPlan, fragmentPlan } from "./fragments.ts";
import { imagenetNormalize } from "./resnet.ts";
import { type SampledView, SampledViewVictim, viewImages } from "./sampled_views.ts";
import { buildSwinParams, Swin3d, SWIN_T_FRAGMENTS, swinChannels } from "./swin3d.ts";
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

/** DOVER's aesthetic view: frames resized whole, through an inflated ConvNeXt. */
export type AestheticViewConfig = {
  /** The ConvNeXt3D. */
  backbone: ConvNext3dConfig;
  /** Width of the head's hidden layer (64). */
  hidden: number;
  /** Frame size `[h, w]` after resizing ([224, 224]). */
  size: [number, number];
  /** Equal parts the video is cut into in time (32). */
  segments: number;
  /** Frames taken from each part (1). */
  segmentFrames: number;
  /** Step between sampled frames (2). */
  interval: number;
  /** Times the sampling is repeated (1). */
  repeats: number;
  /** Clips the sampled frames form (1). */
  clips: number;
  /** Frames per clip (32). */
  clipLen: number;
};

/**
 * The config of the `dover` victim.
 *
 * @example
 * ```ts
 * import { DOVER_DEFAULTS, type DoverConfig } from "./dover.ts";
 * const c: DoverConfig = { ...DOVER_DEFAULTS, seed: 3 };
 * ```
 */
export type DoverConfig = PublishedBaseConfig & {
  /** The technical (fragment) view. */
  technical: FragmentViewConfig;
  /** The aesthetic (resized) view. */
  aesthetic: AestheticViewConfig;
  /** Seed of the sampling plans (the aesthetic view's is `seed + 1`). */
  seed: number;
};

const technicalObject = z.object(fragmentViewFields).strict().superRefine((v, ctx) =>
  checkViewCounts(v, ctx)
);
const aestheticObject = z.object({
  backbone: convNext3dConfigZod,
  hidden: z.number().int().positive().max(MAX_MODEL_WIDTH),
  size: z.tuple([z.number().int().positive().max(4096), z.number().int().positive().max(4096)]),
  segments: z.number().int().positive().max(1024),
  segmentFrames: z.number().int().positive().max(1024),
  interval: z.number().int().positive().max(64),
  repeats: z.number().int().positive().max(64),
  clips: z.number().int().positive().max(64),
  clipLen: z.number().int().positive().max(1024),
}).strict().superRefine((v, ctx) => checkViewCounts({ ...v, aligned: 1 }, ctx));
const doverObject = PublishedBaseSchema.extend({
  technical: technicalObject,
  aesthetic: aestheticObject,
  seed: z.number().int().min(0).max(2 ** 31),
}).strict();

/** Validates a {@link DoverConfig} (unknown fields are refused). */
export const DoverConfigSchema = doverObject;
const _same: SameShape<DoverConfig, z.output<typeof doverObject>> = true;

/** DOVER as its authors test it (`dover.yml`; 300 frames read). */
export const DOVER_DEFAULTS: DoverConfig = {
  frames: 300,
  height: null,
  width: null,
  qMin: 0,
  qMax: 1,
  slope: 0,
  input: "rgb",
  logStd: false,
  technical: {
    backbone: { ...SWIN_T_FRAGMENTS, adaptiveWindow: false },
    hidden: 64,
    fragments: [7, 7],
    fragmentSize: [32, 32],
    aligned: 32,
    segments: 3,
    segmentFrames: 32,
    interval: 2,
    repeats: 1,
    clips: 3,
    clipLen: 32,
  },
  aesthetic: {
    backbone: CONVNEXT3D_TINY,
    hidden: 64,
    size: [224, 224],
    segments: 32,
    segmentFrames: 1,
    interval: 2,
    repeats: 1,
    clips: 1,
    clipLen: 32,
  },
  seed: 0,
};

/** The published fusion of the technical and aesthetic raw scores (`fuse_results`). */
export const DOVER_FUSION = {
  technical: { mean: 0.1107, std: 0.07355, weight: 0.6104 },
  aesthetic: { mean: -0.08285, std: 0.03774, weight: 0.3896 },
} as const;

const TECHNICAL = "technical_backbone.";
const AESTHETIC = "aesthetic_backbone.";

function buildParams(pb: ParamBuilder, c: DoverConfig): void {
  buildSwinParams(pb, TECHNICAL, c.technical.backbone);
  buildVqaHeadParams(pb, "technical_head.", swinChannels(c.technical.backbone), c.technical.hidden);
  buildConvNext3dParams(pb, AESTHETIC, c.aesthetic.backbone);
  buildVqaHeadParams(
    pb,
    "aesthetic_head.",
    convNext3dChannels(c.aesthetic.backbone),
    c.aesthetic.hidden,
  );
}

/**
 * The parameter shapes of a config, without allocating.
 *
 * @example
 * ```ts
 * import { DOVER_DEFAULTS, doverSize } from "./dover.ts";
 * console.log(doverSize(DOVER_DEFAULTS).shapes["aesthetic_head.fc_hid.weight"]); // [64, 768, 1, 1, 1]
 * ```
 */
export function doverSize(c: DoverConfig): ModelSize {
  const pb = new ParamBuilder(0, { shapesOnly: true });
  buildParams(pb, c);
  return { shapes: pb.shapes };
}

/** The two plans of a DOVER score (see {@link Dover.scoreWithPlan}). */
export interface DoverPlan {
  /** The technical view's frames and fragment offsets. */
  technical: FragmentPlan;
  /** The aesthetic view's frames (its `indices`). */
  aesthetic: Pick<FragmentPlan, "indices">;
}

/**
 * The `dover` victim (see the module's documentation). Random weights until loaded
 * (`loadVictim("dover", { weights: ["DOVER.pth"] })`).
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { Dover, DOVER_DEFAULTS } from "./dover.ts";
 * await initGpu();
 * const technical = {
 *   ...DOVER_DEFAULTS.technical,
 *   backbone: {
 *     embedDim: 8, depths: [2, 2], heads: [1, 2], window: [2, 3, 3] as [number, number, number],
 *     patch: [2, 4, 4] as [number, number, number], mlpRatio: 4, fragBiases: [true, false],
 *     baseSize: [4, 48, 48] as [number, number, number], adaptiveWindow: false,
 *   },
 *   hidden: 8, fragments: [3, 3] as [number, number], fragmentSize: [16, 16] as [number, number],
 *   aligned: 4, segments: 1, segmentFrames: 4, clips: 1, clipLen: 4,
 * };
 * const aesthetic = {
 *   ...DOVER_DEFAULTS.aesthetic,
 *   backbone: { dims: [8, 16, 24, 32], depths: [1, 1, 1, 1], inflate: "131" },
 *   hidden: 8, size: [32, 32] as [number, number], segments: 4, clipLen: 4,
 * };
 * const model = new Dover({ seed: 1, config: { technical, aesthetic } });
 * const q = model.score(tensor(new Float32Array(6 * 3 * 60 * 80).fill(0.5), [6, 3, 60, 80]));
 * model.dispose();
 * ```
 */
export class Dover extends SampledViewVictim implements Victim {
  /** The family name. */
  readonly family = "dover" as const;
  /** The model's name. */
  readonly name: string;
  /** The validated config. */
  readonly config: DoverConfig;
  #params: Record<string, Tensor>;
  #swin: Swin3d;

  /** A fresh model; the config overrides the defaults. */
  constructor(options: { config?: Partial<DoverConfig>; seed?: number; name?: string } = {}) {
    super();
    this.config = parseModelConfig("dover", DoverConfigSchema, DOVER_DEFAULTS, options.config);
    checkModelSize("dover", (c) => doverSize(c), {
      config: this.config,
      defaults: DOVER_DEFAULTS,
      overrides: options.config,
    });
    this.name = options.name ?? this.family;
    const pb = new ParamBuilder(options.seed ?? 0);
    buildParams(pb, this.config);
    this.#params = pb.params;
    this.#swin = new Swin3d(this.config.technical.backbone, this.#params, TECHNICAL);
  }

  /** The parameters by name (the authors': `technical_*`, `aesthetic_*`). */
  parameters(): Record<string, Tensor> {
    return this.#params;
  }

  /** The two views of a `t`-frame video of `height x width` (plans from the seed unless given). */
  views(t: number, height: number, width: number, plan?: DoverPlan): SampledView[] {
    const c = this.config;
    const technical = fragmentSampledView(c.technical, t, height, width, c.seed, plan?.technical);
    const indices = plan?.aesthetic.indices ??
      fragmentPlan(t, height, width, { sampling: c.aesthetic, grid: null, seed: c.seed + 1 })
        .indices;
    const [h, w] = c.aesthetic.size;
    const aesthetic: SampledView = {
      indices,
      prepare: (f) => resize(f, { height: h, width: w, mode: "bilinear" }),
      image: (f) => f,
    };
    return [technical, aesthetic];
  }

  /** The technical and aesthetic raw scores `[1]` each from the views' images. */
  rawScores(technical: Tensor, aesthetic: Tensor): { technical: Tensor; aesthetic: Tensor } {
    const c = this.config;
    const t = fragmentRaw(technical, c.technical, this.#swin, this.#params, "technical_head.");
    const x = imagenetNormalize(aesthetic);
    let sum: Tensor | null = null;
    const a = c.aesthetic;
    for (let k = 0; k < a.clips; k++) {
      const clip = permute(slice(x, { axis: 0, start: k * a.clipLen, end: (k + 1) * a.clipLen }), [
        1,
        0,
        2,
        3,
      ]);
      const q = forwardScope(() => {
        const f = convNext3dFeatures(
          clip.reshape([1, ...clip.shape]),
          this.#params,
          AESTHETIC,
          a.backbone,
        );
        return vqaHeadMean(permute(f, [0, 2, 3, 4, 1]), this.#params, "aesthetic_head.");
      });
      sum = sum ? add(sum, q) : q;
    }
    return { technical: t, aesthetic: mul(sum!, 1 / a.clips) };
  }

  /** The fused score `[1]` from the views' images (technical, aesthetic). */
  scoreImages(technical: Tensor, aesthetic: Tensor): Tensor {
    const r = this.rawScores(technical, aesthetic);
    const f = DOVER_FUSION;
    const zt = mul(add(r.technical, -f.technical.mean), f.technical.weight / f.technical.std);
    const za = mul(add(r.aesthetic, -f.aesthetic.mean), f.aesthetic.weight / f.aesthetic.std);
    return sigmoid(add(zt, za));
  }

  /** {@link Dover.scoreImages} of the two views' images (technical, aesthetic). */
  scoreViews(images: Tensor[]): Tensor {
    return this.scoreImages(images[0], images[1]);
  }

  /** The score `[1]` of frames `[T,3,H,W]` under explicit plans (e.g. a parity test's). */
  scoreWithPlan(frames: Tensor, plan: DoverPlan): Tensor {
    const [t, , h, w] = frames.shape;
    const [tv, av] = this.views(t, h, w, plan);
    return this.scoreImages(viewImages(frames, tv), viewImages(frames, av));
  }

  /** Frees the parameters. */
  dispose(): void {
    disposeParams(this.#params);
  }
}
