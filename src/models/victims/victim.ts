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
import { fans, kaimingUniform, uniform } from "../../tensor/init.ts";
import { full, type Tensor } from "../../tensor/tensor.ts";
import {
  add,
  avgPool2d,
  concat,
  div,
  globalStdPool,
  log,
  mul,
  relu,
  sqrt,
  square,
  sub,
} from "../../tensor/nn.ts";

/** The victim families.
 *
 * @example
 * ```ts
 * import { VICTIM_FAMILIES } from "./victim.ts";
 * console.log(VICTIM_FAMILIES.join(", "));
 * ```
 */
export const VICTIM_FAMILIES = ["vsfa-mini", "simplevqa-mini", "fastvqa-mini"] as const;

/** One of {@link VICTIM_FAMILIES}. */
export type VictimFamily = typeof VICTIM_FAMILIES[number];

/** Config fields every family has: the input it was trained on and its score range. */
export const BaseConfigSchema = z.object({
  /** Frames per clip the model was trained on (clips are read with at most this many). */
  frames: z.number().int().positive(),
  /** Frame height the clips are scaled to when read; null keeps the file's resolution. */
  height: z.number().int().positive().nullable(),
  /** Frame width the clips are scaled to when read; null keeps the file's resolution. */
  width: z.number().int().positive().nullable(),
  /** Lowest label of the training scale (the score-reversed boundary for high-quality clips). */
  qMin: z.number(),
  /** Highest label of the training scale. */
  qMax: z.number(),
  /** Negative slope of the leaky ReLUs. */
  slope: z.number().min(0).max(1),
  /** The first layer's input: the frames, or the frames and their MSCN coefficients. */
  input: z.enum(["rgb", "rgb+mscn"]).default("rgb"),
  /** Std-pooled features enter as `log(std + 1e-3)` (ratios between scales become differences). */
  logStd: z.boolean().default(false),
});

/** Config fields every family has. */
export type BaseConfig = z.infer<typeof BaseConfigSchema>;

/**
 * A differentiable video quality model.
 *
 * @example
 * ```ts
 * import { initGpu, loadVictim, readVideo } from "../../../mod.ts";
 * await initGpu();
 * const victim = await loadVictim("vsfa-mini");
 * const c = victim.config;
 * const frames = await readVideo("clip.mkv", {
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
  /** Frees the parameters. */
  dispose(): void;
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
  /** The parameters made so far, by name. */
  readonly params: Record<string, Tensor> = {};
  #seed: number;
  #n = 0;

  constructor(seed: number) {
    this.#seed = seed;
  }

  #next(): number {
    return this.#seed * 1000 + ++this.#n;
  }

  /** A conv layer `[out, in, k, k]` (Kaiming uniform for a leaky ReLU) and a zero bias. */
  conv(name: string, cin: number, cout: number, k: number, slope: number): void {
    this.params[`${name}.weight`] = kaimingUniform([cout, cin, k, k], {
      seed: this.#next(),
      a: slope,
    });
    this.params[`${name}.bias`] = full([cout], 0, { requiresGrad: true });
  }

  /** A linear layer `[out, in]` with PyTorch's default init, or a given constant bias. */
  linear(name: string, cin: number, cout: number, bias?: number): void {
    const bound = 1 / Math.sqrt(fans([cout, cin]).fanIn);
    this.params[`${name}.weight`] = uniform([cout, cin], {
      seed: this.#next(),
      low: -bound,
      high: bound,
    });
    this.params[`${name}.bias`] = bias === undefined
      ? uniform([cout], { seed: this.#next(), low: -bound, high: bound })
      : full([cout], bias, { requiresGrad: true });
  }

  /** A GRU cell in PyTorch's layout, `U(-1/sqrt(H), 1/sqrt(H))` as torch.nn.GRUCell. */
  gru(name: string, input: number, hidden: number): void {
    const b = 1 / Math.sqrt(hidden);
    const u = (shape: number[]) => uniform(shape, { seed: this.#next(), low: -b, high: b });
    this.params[`${name}.weight_ih`] = u([3 * hidden, input]);
    this.params[`${name}.weight_hh`] = u([3 * hidden, hidden]);
    this.params[`${name}.bias_ih`] = u([3 * hidden]);
    this.params[`${name}.bias_hh`] = u([3 * hidden]);
  }
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
  const { kernel = 5, c = 1 / 64 } = options;
  const pool = (t: Tensor) =>
    avgPool2d(t, { kernel, stride: 1, padding: (kernel - 1) / 2, countIncludePad: false });
  const mu = pool(x);
  const variance = relu(sub(pool(square(x)), square(mu)));
  return div(sub(x, mu), add(sqrt(add(variance, 1e-6)), c));
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
  const s = globalStdPool(x);
  return logStd ? log(add(s, 1e-3)) : s;
}
