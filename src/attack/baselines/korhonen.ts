/**
 * A Korhonen-style attack: gradient steps weighted by a spatial activity map, so that the
 * perturbation goes where texture masks it, inside the JND box.
 *
 * Inspired by J. Korhonen and J. You, "Adversarial Attacks Against Blind Image Quality Assessment
 * Models", Proc. 2nd Workshop on Quality of Experience in Visual Multimedia Applications
 * (QoEVMA '22, ACM Multimedia 2022), which hides the perturbation in spatially active regions;
 * the activity map and the step rule below are this project's.
 *
 * @module
 */

import type { Victim } from "../../models/victims/victim.ts";
import { add, avgPool2d, div, maxPool2d, mul, relu, sqrt, square, sub, sum } from "../../nn/mod.ts";
import { full, noGrad, type Tensor, tensor, tidy } from "../../tensor/tensor.ts";
import type { Attack, AttackOptions, AttackOutput } from "../types.ts";
import {
  checkCount,
  checkPositive,
  finish,
  freezeVictim,
  resolveOptions,
  resolveTarget,
  signedGradientSteps,
} from "./_common.ts";

/** Options of {@link activityMap}. */
export interface ActivityMapOptions {
  /** Odd window size of the local standard deviation (default 5). */
  window?: number;
}

/**
 * Spatial activity `[T,1,H,W]` in [0, 1] of frames `[T,3,H,W]`: the local standard deviation of
 * luma `Y = 0.299 R + 0.587 G + 0.114 B` over a `window x window` neighbourhood (windows at the
 * border count only pixels inside the frame),
 * `sigma = sqrt(max(0, mean(Y^2) - mean(Y)^2))`, divided by its maximum over each frame
 * (`A_t = sigma_t / (max sigma_t + 1e-12)`, so a flat frame gets 0 everywhere). No gradient.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { activityMap } from "./korhonen.ts";
 * await initGpu();
 * const x = tensor(new Float32Array(3 * 8 * 8).map((_, i) => (i % 3) / 2), [1, 3, 8, 8]);
 * const a = activityMap(x, { window: 3 }); // [1, 1, 8, 8], max 1
 * ```
 */
export function activityMap(frames: Tensor, options: ActivityMapOptions = {}): Tensor {
  const { window = 5 } = options;
  if (!Number.isInteger(window) || window < 1 || window % 2 !== 1) {
    throw new RangeError(`activityMap: window must be an odd integer >= 1, got ${window}`);
  }
  if (frames.rank !== 4 || frames.shape[1] !== 3) {
    throw new RangeError(`activityMap: frames must be [T,3,H,W], got [${frames.shape}]`);
  }
  const [, , h, w] = frames.shape;
  return noGrad(() =>
    tidy(() => {
      const luma = sum(mul(frames, tensor([0.299, 0.587, 0.114], [1, 3, 1, 1])), {
        axes: 1,
        keepDims: true,
      });
      const pool = (t: Tensor) =>
        avgPool2d(t, {
          kernel: window,
          stride: 1,
          padding: (window - 1) / 2,
          countIncludePad: false,
        });
      const mu = pool(luma);
      const sigma = sqrt(relu(sub(pool(square(luma)), square(mu))));
      const peak = maxPool2d(sigma, { kernel: [h, w] }); // [T,1,1,1]
      return div(sigma, add(peak, 1e-12));
    })
  );
}

/** Options of {@link createKorhonen}. */
export interface KorhonenOptions {
  /** Gradient steps (default 5). */
  iterations?: number;
  /** Window of the activity map (default 5). */
  window?: number;
  /**
   * Step as a multiple of the per-step share of the box (default 2.5): a pixel of activity `A`
   * moves by `stepScale * eps * J * A / iterations` per step.
   */
  stepScale?: number;
}

/**
 * A Korhonen-style attack (after Korhonen and You 2022): with `A` the {@link activityMap} of the
 * clean frames, `d_0 = 0` and for each iteration
 * `d <- P(d - stepScale * eps * J * A * sign(g(d)) / iterations)`, where `g` is the gradient of
 * the boundary loss at `x + d` and `P(d) = clip(x + clip(d, -eps*J, eps*J), 0, 1) - x` keeps the
 * perturbation in the JND box. Flat regions (A near 0) are barely touched, textured ones (A near
 * 1) move as in I-FGSM. Returns the last iterate. Victim passes: `2 * iterations`, plus 1 for
 * the clean score in `untargeted` mode. Deterministic (the seed is unused).
 *
 * @example
 * ```ts
 * import { createKorhonen } from "./korhonen.ts";
 * const k = createKorhonen({ iterations: 10, window: 3 });
 * console.log(k.name); // "korhonen"
 * ```
 */
export function createKorhonen(options: KorhonenOptions = {}): Attack {
  const { iterations = 5, window = 5, stepScale = 2.5 } = options;
  const name = "korhonen";
  checkCount(name, "iterations", iterations);
  checkPositive(name, "stepScale", stepScale);
  if (!Number.isInteger(window) || window < 1 || window % 2 !== 1) {
    throw new RangeError(`${name}: window must be an odd integer >= 1, got ${window}`);
  }
  return {
    name,
    jndBox: true,
    async run(frames: Tensor, victim: Victim, opts: AttackOptions): Promise<AttackOutput> {
      const start = performance.now();
      const o = resolveOptions(name, frames, opts);
      const restore = freezeVictim(victim, [frames]);
      let d: Tensor | null = null;
      let step: Tensor | null = null;
      try {
        step = noGrad(() =>
          tidy(() =>
            mul(mul(o.jnd, activityMap(frames, { window })), stepScale * o.eps / iterations)
          )
        );
        const stepMap = step;
        const { target, passes } = await resolveTarget(victim, frames, o);
        d = signedGradientSteps(frames, full(frames.shape, 0), victim, target, stepMap, {
          ...o,
          iterations,
        });
        const { adversarial, seconds } = await finish(frames, d, start);
        return { adversarial, victimPasses: passes + 2 * iterations, seconds };
      } finally {
        d?.dispose();
        step?.dispose();
        restore();
      }
    },
  };
}

/**
 * The Korhonen-style attack with the defaults of {@link createKorhonen} (5 iterations, 5x5
 * activity window).
 *
 * @example
 * ```ts
 * import { korhonen } from "./korhonen.ts";
 * // const out = await korhonen.run(frames, victim, { jnd, mode: "down" });
 * console.log(korhonen.name); // "korhonen"
 * ```
 */
export const korhonen: Attack = createKorhonen();
