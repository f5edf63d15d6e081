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

/** The victim families. */
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

/** Collects parameters, each drawn with its own seed derived from one model seed. */
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

/** Throws unless `x` is `[T,3,H,W]` (rank 4) or `[B,T,3,H,W]` (rank 5); returns it as rank 5. */
export function asBatch(x: Tensor, who: string): Tensor {
  if (x.rank === 4 && x.shape[1] === 3) return x.reshape([1, ...x.shape]);
  if (x.rank === 5 && x.shape[2] === 3) return x;
  throw new RangeError(
    `${who}: frames must be [T,3,H,W] or a batch [B,T,3,H,W] (RGB in [0,1]), got [${x.shape}]`,
  );
}

/** Frees every tensor of a parameter record. */
export function disposeParams(params: Record<string, Tensor>): void {
  for (const t of Object.values(params)) t.dispose();
}
