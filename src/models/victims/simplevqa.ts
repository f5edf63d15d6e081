/**
 * The published SimpleVQA (Sun, Min, Lu, Zhai, "A deep learning based no-reference quality
 * assessment model for UGC videos", ACM MM 2022; github.com/sunwei925/SimpleVQA), as its test
 * demo runs it on one video:
 *
 * - **Seconds.** The video has `n = floor(T / fps)` seconds (at least 1 here; the authors' demo
 *   needs at least 8 seconds, where its 8-clip minimum and its key frames agree).
 * - **Spatial branch.** Frame `i·fps` of each second (a key frame), resized so that its shorter
 *   side is 520 (bilinear, antialiased: torchvision's `Resize(520)`) and centre-cropped to
 *   448x448, normalised with ImageNet's statistics, goes through an ImageNet ResNet-50; the
 *   global mean and unbiased std of layer2, layer3 and layer4 (512 + 1024 + 2048 channels each)
 *   give 7168 features.
 * - **Motion branch.** Every frame resized to 224x224 and normalised with mean 0.45 and std
 *   0.225; second `i`'s clip is the 32 frames from frame `i·fps` (the last frame repeated past
 *   the end); pytorchvideo's Kinetics SlowFast-R50 takes the clip as its fast pathway and 8 of
 *   its frames as the slow one (`slowPathway`), and SimpleVQA's pooling gives 2048 + 256
 *   features (`simpleVqaPool`).
 * - **Head.** `quality.0` (9472 -> 128) and `quality.1` (128 -> 1), linear, no activation
 *   between, per second; the video's score is the mean.
 *
 * The released model was trained on LSVQ (MOS on 0..100): `qMin` 0, `qMax` 100.
 *
 * @module
 */

import { z } from "zod";
import type { SameShape } from "../../_zod.ts";
import {
  centerCrop,
  concat,
  globalMeanPool,
  globalStdPool,
  linear,
  mean,
  permute,
  resize,
  shortSideSize,
  slice,
} from "../../nn/mod.ts";
import { noGrad, type Tensor, tidy } from "../../tensor/tensor.ts";
import {
  buildResNetParams,
  imagenetNormalize,
  RESNET50,
  ResNetBackbone,
  resnetChannels,
  type ResNetConfig,
  ResNetConfigSchema,
} from "./resnet.ts";
import {
  buildSlowFastParams,
  simpleVqaPool,
  SlowFast,
  SLOWFAST_R50,
  slowFastChannels,
  type SlowFastConfig,
  slowFastConfigZod,
  slowFastNormalize,
  slowPathway,
} from "./slowfast.ts";
import {
  asBatch,
  checkModelSize,
  checkStreamChunk,
  disposeParams,
  MAX_MODEL_WIDTH,
  type ModelSize,
  ParamBuilder,
  parseModelConfig,
  type PublishedBaseConfig,
  PublishedBaseSchema,
  type Victim,
  type VictimStream,
  type VictimStreamResult,
} from "./victim.ts";

/**
 * The config of the `simplevqa` victim.
 *
 * @example
 * ```ts
 * import { SIMPLEVQA_DEFAULTS, type SimpleVqaConfig } from "./simplevqa.ts";
 * const c: SimpleVqaConfig = { ...SIMPLEVQA_DEFAULTS, fps: 25 };
 * ```
 */
export type SimpleVqaConfig = PublishedBaseConfig & {
  /** The spatial ResNet (ResNet-50). */
  backbone: ResNetConfig;
  /** The motion SlowFast (SlowFast-R50). */
  motion: SlowFastConfig;
  /** Width of the head's hidden layer (128). */
  hidden: number;
  /** Frames per second of the input: a key frame and a clip start every `fps` frames (30). */
  fps: number;
  /** The key frames' shorter side after resizing (520). */
  resize: number;
  /** The key frames' centre crop (448). */
  crop: number;
  /** The motion frames' size (224). */
  motionSize: number;
  /** Frames per motion clip: the fast pathway's (32). */
  clipFrames: number;
};

const SimpleVqaConfigObject = PublishedBaseSchema.extend({
  backbone: ResNetConfigSchema,
  motion: slowFastConfigZod,
  hidden: z.number().int().positive().max(MAX_MODEL_WIDTH),
  fps: z.number().int().positive().max(1000),
  resize: z.number().int().positive().max(8192),
  crop: z.number().int().positive().max(8192),
  motionSize: z.number().int().positive().max(8192),
  clipFrames: z.number().int().min(4).max(1024),
}).strict();

/** Validates a {@link SimpleVqaConfig} (unknown fields are refused). */
export const SimpleVqaConfigSchema = SimpleVqaConfigObject;
const _sameConfig: SameShape<SimpleVqaConfig, z.output<typeof SimpleVqaConfigObject>> = true;

/** Defaults: the published model (at most 300 frames read: ten seconds at 30 fps). */
export const SIMPLEVQA_DEFAULTS: SimpleVqaConfig = {
  frames: 300,
  height: null,
  width: null,
  qMin: 0,
  qMax: 100,
  slope: 0,
  input: "rgb",
  logStd: false,
  backbone: RESNET50,
  motion: SLOWFAST_R50,
  hidden: 128,
  fps: 30,
  resize: 520,
  crop: 448,
  motionSize: 224,
  clipFrames: 32,
};

/** The prefixes of the two backbones among the parameters (see published.ts). */
const SPATIAL = "backbone.";
const MOTION = "motion.";

/** Features of one second: 2·(layer2 + layer3 + layer4 channels) + slow + fast. */
function featureSize(c: SimpleVqaConfig): number {
  const l4 = resnetChannels(c.backbone);
  const m = slowFastChannels(c.motion);
  return 2 * (l4 / 4 + l4 / 2 + l4) + m.slow + m.fast;
}

function buildParams(pb: ParamBuilder, c: SimpleVqaConfig): void {
  buildResNetParams(pb, SPATIAL, c.backbone);
  buildSlowFastParams(pb, MOTION, c.motion);
  pb.linear("quality.0", featureSize(c), c.hidden);
  pb.linear("quality.1", c.hidden, 1);
}

/**
 * The parameter shapes of a config, without allocating.
 *
 * @example
 * ```ts
 * import { SIMPLEVQA_DEFAULTS, simpleVqaSize } from "./simplevqa.ts";
 * console.log(simpleVqaSize(SIMPLEVQA_DEFAULTS).shapes["quality.0.weight"]); // [128, 9472]
 * ```
 */
export function simpleVqaSize(c: SimpleVqaConfig): ModelSize {
  const pb = new ParamBuilder(0, { shapesOnly: true });
  buildParams(pb, c);
  return { shapes: pb.shapes };
}

/** Seconds of a clip of `t` frames: `floor(t / fps)`, at least 1. */
export function simpleVqaSeconds(t: number, fps: number): number {
  return Math.max(1, Math.floor(t / fps));
}

/**
 * The `simplevqa` victim (see the module's documentation). Random weights until loaded
 * (`loadVictim("simplevqa", { weights: [...] })`).
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { SimpleVqa } from "./simplevqa.ts";
 * await initGpu();
 * const small = {
 *   backbone: { width: 4, blocks: [1, 1, 1, 1] }, motion: { width: 8, blocks: [1, 1, 1, 1] },
 *   hidden: 8, fps: 4, resize: 40, crop: 32, motionSize: 32, clipFrames: 8,
 * };
 * const model = new SimpleVqa({ seed: 1, config: small });
 * const frames = tensor(new Float32Array(8 * 3 * 36 * 48).fill(0.5), [8, 3, 36, 48]);
 * const q = model.score(frames); // [1]
 * model.dispose();
 * ```
 */
export class SimpleVqa implements Victim {
  /** The family name. */
  readonly family = "simplevqa" as const;
  /** The model's name. */
  readonly name: string;
  /** The validated config. */
  readonly config: SimpleVqaConfig;
  #params: Record<string, Tensor>;
  #spatial: ResNetBackbone;
  #motion: SlowFast;

  /** A fresh model; the config overrides the defaults. */
  constructor(options: { config?: Partial<SimpleVqaConfig>; seed?: number; name?: string } = {}) {
    this.config = parseModelConfig(
      "simplevqa",
      SimpleVqaConfigSchema,
      SIMPLEVQA_DEFAULTS,
      options.config,
    );
    checkModelSize("simplevqa", (c) => simpleVqaSize(c), {
      config: this.config,
      defaults: SIMPLEVQA_DEFAULTS,
      overrides: options.config,
    });
    this.name = options.name ?? this.family;
    const pb = new ParamBuilder(options.seed ?? 0);
    buildParams(pb, this.config);
    this.#params = pb.params;
    this.#spatial = new ResNetBackbone(this.config.backbone, this.#params, SPATIAL);
    this.#motion = new SlowFast(this.config.motion, this.#params, MOTION);
  }

  /** The parameters by name (the authors', torchvision's under `backbone.`, pytorchvideo's under `motion.`). */
  parameters(): Record<string, Tensor> {
    return this.#params;
  }

  /** Identity (the protocol's resizing is part of the score, so gradients reach the frames). */
  prepare(clips: Tensor): Tensor {
    return clips;
  }

  /** The spatial features `[1, F]` of one key frame `[1,3,H,W]`. */
  #spatialFeatures(frame: Tensor): Tensor {
    const c = this.config;
    const [, , h, w] = frame.shape;
    const size = shortSideSize(h, w, c.resize);
    const x = centerCrop(
      resize(frame, { ...size, mode: "bilinear", antialias: true }),
      { height: c.crop, width: c.crop },
    );
    const stages = this.#spatial.stages(imagenetNormalize(x));
    return concat(stages.slice(1).flatMap((s) => [globalMeanPool(s), globalStdPool(s)]), 1);
  }

  /** The motion features `[1, slow + fast]` of one clip of motion frames `[T,3,S,S]`. */
  #motionFeatures(clip: Tensor): Tensor {
    const [t, , s] = clip.shape;
    // [T, 3, S, S] -> [1, 3, T, S, S] (pytorchvideo's layout)
    const ncthw = permute(slowFastNormalize(clip).reshape([1, t, 3, s, s]), [0, 2, 1, 3, 4]);
    const maps = this.#motion.features(slowPathway(ncthw), ncthw);
    const pooled = simpleVqaPool(maps, this.#poolKernels(t, s));
    return concat([pooled.slow, pooled.fast], 1);
  }

  /** SimpleVQA's head pools: the published (8,7,7) and (32,7,7) at 32 frames of 224. */
  #poolKernels(t: number, s: number) {
    const side = Math.ceil(s / 32);
    return {
      slowKernel: [Math.floor(t / 4), side, side] as [number, number, number],
      fastKernel: [t, side, side] as [number, number, number],
    };
  }

  /** Second `i`'s clip of motion frames: `clipFrames` from `i·fps`, the last one repeated. */
  #clip(motionFrames: Tensor, i: number): Tensor {
    const c = this.config;
    const t = motionFrames.shape[0];
    const start = Math.min(i * c.fps, t - 1);
    const end = Math.min(t, start + c.clipFrames);
    const have = slice(motionFrames, { axis: 0, start, end });
    if (end - start === c.clipFrames) return have;
    const last = slice(motionFrames, { axis: 0, start: end - 1, end });
    return concat([have, ...Array(c.clipFrames - (end - start)).fill(last)], 0);
  }

  /** Per-second scores `[n]` of one clip `[T,3,H,W]`. Differentiable. */
  secondScores(frames: Tensor): Tensor {
    const c = this.config;
    const [t, , h, w] = frames.shape;
    if (frames.rank !== 4 || frames.shape[1] !== 3) {
      throw new RangeError(`${this.name}: frames must be [T,3,H,W], got [${frames.shape}]`);
    }
    const n = simpleVqaSeconds(t, c.fps);
    const motionFrames = resize(frames, {
      height: c.motionSize,
      width: c.motionSize,
      mode: "bilinear",
      antialias: true,
    });
    const rows: Tensor[] = [];
    for (let i = 0; i < n; i++) {
      const key = slice(frames, { axis: 0, start: i * c.fps, end: i * c.fps + 1 });
      const f = concat([
        this.#spatialFeatures(key.reshape([1, 3, h, w])),
        this.#motionFeatures(this.#clip(motionFrames, i)),
      ], 1);
      rows.push(f);
    }
    const p = this.#params;
    const hid = linear(concat(rows, 0), p["quality.0.weight"], p["quality.0.bias"]);
    return linear(hid, p["quality.1.weight"], p["quality.1.bias"]).reshape([n]);
  }

  /** Clip scores of a batch `[B,T,3,H,W]` -> `[B]`. Differentiable. */
  scoreBatch(clips: Tensor): Tensor {
    const x5 = asBatch(clips, this.name);
    const [b, t, , h, w] = x5.shape;
    const out: Tensor[] = [];
    for (let k = 0; k < b; k++) {
      const one = slice(x5, { axis: 0, start: k, end: k + 1 }).reshape([t, 3, h, w]);
      out.push(mean(this.secondScores(one)).reshape([1]));
    }
    return out.length === 1 ? out[0] : concat(out, 0);
  }

  /** Same as {@link SimpleVqa.scoreBatch} (nothing is prepared). */
  scorePrepared(prepared: Tensor): Tensor {
    return this.scoreBatch(prepared);
  }

  /** The clip's score `[1]`. Differentiable. */
  score(frames: Tensor): Tensor {
    return this.scoreBatch(asBatch(frames, this.name)).reshape([1]);
  }

  /**
   * A chunk-by-chunk scorer (see {@link VictimStream}): it keeps the frames (resized to the
   * motion size, and the key frames' spatial features) only until each second's clip is
   * complete, then scores that second, so memory is bounded by one clip whatever the video's
   * length. `frameScores` of the result holds the per-second scores. Forward only.
   */
  stream(): VictimStream {
    return new SimpleVqaStream(this);
  }

  /** @internal The pieces the stream needs (not part of the Victim interface). */
  streamParts(): {
    motionFrames: (frames: Tensor) => Tensor;
    second: (spatial: Tensor, clip: Tensor) => Tensor;
    spatial: (key: Tensor) => Tensor;
  } {
    const c = this.config;
    const p = this.#params;
    return {
      motionFrames: (frames) =>
        resize(frames, {
          height: c.motionSize,
          width: c.motionSize,
          mode: "bilinear",
          antialias: true,
        }),
      spatial: (key) => this.#spatialFeatures(key),
      second: (spatial, clip) => {
        const f = concat([spatial, this.#motionFeatures(clip)], 1);
        const hid = linear(f, p["quality.0.weight"], p["quality.0.bias"]);
        return linear(hid, p["quality.1.weight"], p["quality.1.bias"]).reshape([1]);
      },
    };
  }

  /** Frees the parameters and the folded backbone weights. */
  dispose(): void {
    this.#spatial.dispose();
    this.#motion.dispose();
    disposeParams(this.#params);
  }
}

/** The streamed scorer of {@link SimpleVqa.stream}. */
class SimpleVqaStream implements VictimStream {
  #model: SimpleVqa;
  #parts: ReturnType<SimpleVqa["streamParts"]>;
  #frames = 0;
  /** Motion frames kept: from frame `#base` on. */
  #held: Tensor[] = [];
  #base = 0;
  /** Spatial features of the key frames whose seconds are not scored yet, by second. */
  #spatial = new Map<number, Tensor>();
  #next = 0;
  #scores: Promise<Float32Array>[] = [];
  #size: [number, number] | null = null;
  #closed: string | null = null;

  constructor(model: SimpleVqa) {
    this.#model = model;
    this.#parts = model.streamParts();
  }

  get frames(): number {
    return this.#frames;
  }

  push(frames: Tensor): void {
    const who = this.#model.name;
    const [t, h, w] = checkStreamChunk(who, frames, {
      closed: this.#closed,
      size: this.#size,
      frames: this.#frames,
    });
    this.#size = [h, w];
    if (t === 0) return;
    const fps = this.#model.config.fps;
    noGrad(() => {
      for (let k = 0; k < t; k++) {
        const index = this.#frames + k;
        const frame = slice(frames, { axis: 0, start: k, end: k + 1 });
        if (index % fps === 0) {
          this.#spatial.set(index / fps, tidy(() => this.#parts.spatial(frame)).keep());
        }
        this.#held.push(tidy(() => this.#parts.motionFrames(frame)).keep());
        frame.dispose();
      }
      this.#frames += t;
      this.#scoreReady(false);
    });
  }

  /** Scores every second whose clip is complete (all, padding the last frame, at the end). */
  #scoreReady(final: boolean): void {
    const c = this.#model.config;
    const n = final ? simpleVqaSeconds(this.#frames, c.fps) : Infinity;
    while (this.#next < n) {
      const start = this.#next * c.fps;
      const end = start + c.clipFrames;
      if (!final && end > this.#frames) break;
      if (!this.#spatial.has(this.#next)) break;
      const from = Math.min(start, this.#frames - 1) - this.#base;
      const have = this.#held.slice(from, Math.min(end - this.#base, this.#held.length));
      const clip = [...have];
      while (clip.length < c.clipFrames) clip.push(have[have.length - 1]);
      const spatial = this.#spatial.get(this.#next)!;
      const q = tidy(() => this.#parts.second(spatial, concat(clip, 0))).keep();
      const read = q.read();
      read.catch(() => {});
      this.#scores.push(read);
      q.dispose();
      spatial.dispose();
      this.#spatial.delete(this.#next);
      this.#next++;
      // Frames before the next clip's start are no longer needed.
      const keepFrom = Math.min(this.#next * c.fps, this.#frames - 1);
      while (this.#base < keepFrom && this.#held.length > 1) {
        this.#held.shift()!.dispose();
        this.#base++;
      }
    }
  }

  async finish(): Promise<VictimStreamResult> {
    const who = this.#model.name;
    if (this.#closed) throw new Error(`${who} stream: finish after the stream was ${this.#closed}`);
    try {
      if (this.#frames === 0) throw new RangeError(`${who} stream: no frames were pushed`);
      noGrad(() => this.#scoreReady(true));
      const parts = await Promise.all(this.#scores);
      const perSecond = parts.map((p) => p[0]);
      const score = perSecond.reduce((a, b) => a + b, 0) / perSecond.length;
      return { score, frameScores: perSecond, frames: this.#frames };
    } finally {
      this.dispose();
      this.#closed = "finished";
    }
  }

  dispose(): void {
    for (const t of this.#held) t.dispose();
    this.#held = [];
    for (const t of this.#spatial.values()) t.dispose();
    this.#spatial.clear();
    this.#scores = [];
    this.#closed ??= "disposed";
  }
}
