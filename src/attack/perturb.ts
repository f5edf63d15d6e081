/**
 * Applying a perturbation under the visual constraint: `|d| <= eps * J` (the JND box) and
 * adversarial frames clipped to [0, 1].
 *
 * @module
 */

import { add, clamp, maximum, minimum, mul, neg } from "../nn/mod.ts";
import type { Tensor } from "../tensor/tensor.ts";

/**
 * `d` clipped into the JND box `[-eps*J, eps*J]` (J broadcasts over channels: `[T,1,H,W]`
 * against `d` `[T,3,H,W]`). Differentiable in `d` (zero gradient where clipped).
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../mod.ts";
 * import { clipToJnd } from "./perturb.ts";
 * await initGpu();
 * const d = tensor([0.5, -0.5, 0.01], [1, 3, 1, 1]);
 * const j = tensor([0.02], [1, 1, 1, 1]);
 * clipToJnd(d, j, 1); // [0.02, -0.02, 0.01]
 * ```
 */
export function clipToJnd(d: Tensor, jnd: Tensor, eps = 1): Tensor {
  const bound = eps === 1 ? jnd : mul(jnd, eps);
  return minimum(maximum(d, neg(bound)), bound);
}

/**
 * Adversarial frames `clip(x + d, 0, 1)`. Differentiable in both.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../mod.ts";
 * import { applyPerturbation } from "./perturb.ts";
 * await initGpu();
 * const x = tensor([0.99, 0.5, 0.01], [1, 3, 1, 1]);
 * const d = tensor([0.02, 0.02, -0.02], [1, 3, 1, 1]);
 * applyPerturbation(x, d); // [1, 0.52, 0]
 * ```
 */
export function applyPerturbation(frames: Tensor, d: Tensor): Tensor {
  return clamp(add(frames, d), 0, 1);
}
