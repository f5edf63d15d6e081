/**
 * Attack losses: the score-reversed boundary (Zhang et al., NeurIPS 2023), the targets of the
 * up/down modes and STQA-Net's two-branch variant, and the weight-map penalty.
 *
 * @module
 */

import { abs, mean, square, sub } from "../nn/mod.ts";
import { type Tensor, tensor } from "../tensor/tensor.ts";
import type { AttackMode } from "./types.ts";

/** The score range and median that decide the boundaries. */
export interface ScoreScale {
  /** Lowest score of the victim's scale. */
  qMin: number;
  /** Highest score of the victim's scale. */
  qMax: number;
  /** Median score (default the midpoint of qMin and qMax). */
  median?: number;
}

/**
 * The score an attack pushes toward, per clip: for `untargeted`, `qMin` when the clean score is
 * above the median and `qMax` otherwise (the score-reversed boundary); `qMax` for `up`; `qMin`
 * for `down`.
 *
 * @example
 * ```ts
 * import { attackTarget } from "./losses.ts";
 * attackTarget(4.2, "untargeted", { qMin: 1, qMax: 5, median: 3 }); // 1
 * attackTarget(4.2, "up", { qMin: 1, qMax: 5 }); // 5
 * ```
 */
export function attackTarget(clean: number, mode: AttackMode, scale: ScoreScale): number {
  const median = scale.median ?? (scale.qMin + scale.qMax) / 2;
  if (mode === "up") return scale.qMax;
  if (mode === "down") return scale.qMin;
  if (mode !== "untargeted") throw new RangeError(`attackTarget: unknown mode '${mode}'`);
  return clean > median ? scale.qMin : scale.qMax;
}

/**
 * `mean_i |scores_i - targets_i|`: the score-reversed boundary loss when `targets` come from
 * {@link attackTarget}. `scores` `[B]` (differentiable), `targets` one number per clip.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../mod.ts";
 * import { boundaryLoss } from "./losses.ts";
 * await initGpu();
 * const s = tensor([3.5, 2.0], [2], { requiresGrad: true });
 * const l = boundaryLoss(s, [1, 5]); // (2.5 + 3) / 2
 * ```
 */
export function boundaryLoss(scores: Tensor, targets: number[]): Tensor {
  if (scores.size !== targets.length) {
    throw new RangeError(
      `boundaryLoss: ${scores.size} score(s) [${scores.shape}] but ${targets.length} target(s)`,
    );
  }
  return mean(abs(sub(scores.reshape([targets.length]), tensor(targets, [targets.length]))));
}

/**
 * `mean(A^2)`: the penalty that keeps attack weight maps from spending more perturbation than
 * the loss needs.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../mod.ts";
 * import { weightPenalty } from "./losses.ts";
 * await initGpu();
 * const p = weightPenalty(tensor([0.5, -0.5], [2])); // 0.25
 * ```
 */
export function weightPenalty(weights: Tensor): Tensor {
  return mean(square(weights));
}
