/**
 * FGSM and I-FGSM / PGD in the JND box: sign-of-gradient steps on the score-reversed boundary
 * loss, with the perturbation bounded per pixel by `eps * J`.
 *
 * @module
 */

import { seededRandom } from "../../_random.ts";
import type { Victim } from "../../models/victims/victim.ts";
import { mul } from "../../nn/mod.ts";
import { full, noGrad, type Tensor, tensor, tidy } from "../../tensor/tensor.ts";
import type { Attack, AttackOptions, AttackOutput } from "../types.ts";
import {
  boundaryGradient,
  checkCount,
  checkPositive,
  finish,
  freezeVictim,
  projectToBox,
  resolveOptions,
  resolveTarget,
  signedGradientSteps,
  signOf,
} from "./_common.ts";

/**
 * FGSM (Goodfellow et al. 2015) in the JND box: one gradient `g` of
 * `boundaryLoss(q(clip(x + d, 0, 1)), b)` at `d = 0`, then `d = -eps * J * sign(g)` (a step that
 * decreases the loss, i.e. moves the score toward the target `b`), clipped so that `x + d` stays
 * in [0, 1]. Victim passes: 2 (forward and backward), plus 1 for the clean score in
 * `untargeted` mode. Deterministic (the seed is unused).
 *
 * @example
 * ```ts
 * import { computeJnd, initGpu, loadVictim, tensor } from "../../../mod.ts";
 * import { fgsm } from "./fgsm.ts";
 * await initGpu();
 * const victim = await loadVictim("vsfa-mini");
 * const frames = tensor(new Float32Array(2 * 3 * 16 * 16).fill(0.5), [2, 3, 16, 16]);
 * const out = await fgsm.run(frames, victim, { jnd: computeJnd(frames), mode: "down" });
 * ```
 */
export const fgsm: Attack = {
  name: "fgsm",
  jndBox: true,
  async run(frames: Tensor, victim: Victim, opts: AttackOptions): Promise<AttackOutput> {
    const start = performance.now();
    const o = resolveOptions("fgsm", frames, opts);
    const restore = freezeVictim(victim, [frames]);
    let d: Tensor | null = null;
    try {
      const { target, passes } = await resolveTarget(victim, frames, o);
      const zero = full(frames.shape, 0);
      const g = boundaryGradient(frames, zero, victim, target);
      zero.dispose();
      d = noGrad(() =>
        tidy(() => projectToBox(frames, mul(signOf(g), mul(o.jnd, -o.eps)), o.jnd, o.eps))
      );
      g.dispose();
      const { adversarial, seconds } = await finish(frames, d, start);
      return { adversarial, victimPasses: passes + 2, seconds };
    } finally {
      d?.dispose();
      restore();
    }
  },
};

/** Options of {@link createIfgsm}. */
export interface IfgsmOptions {
  /** Gradient steps (default 10). */
  iterations?: number;
  /**
   * Step size as a multiple of the per-step share of the box: `alpha = stepScale * eps * J /
   * iterations` per pixel (default 2.5, Madry et al.'s choice, so that a pixel can cross the
   * box and come back).
   */
  stepScale?: number;
  /**
   * Start from a uniform random point of the box drawn from `seededRandom(seed)` (PGD, Madry et
   * al. 2018) instead of `d = 0` (I-FGSM, Kurakin et al. 2017). Default false.
   */
  randomStart?: boolean;
}

/**
 * I-FGSM / PGD in the JND box: `d_0 = 0` (or a random point of the box), then for each
 * iteration `d <- P(d - alpha * sign(g(d)))` with `g` the gradient of the boundary loss at
 * `x + d`, `alpha = stepScale * eps * J / iterations` (per pixel) and
 * `P(d) = clip(x + clip(d, -eps*J, eps*J), 0, 1) - x`. Returns the last iterate. Victim passes:
 * `2 * iterations`, plus 1 for the clean score in `untargeted` mode.
 *
 * @example
 * ```ts
 * import { createIfgsm } from "./fgsm.ts";
 * const pgd = createIfgsm({ iterations: 20, randomStart: true });
 * console.log(pgd.name); // "pgd"
 * ```
 */
export function createIfgsm(options: IfgsmOptions = {}): Attack {
  const { iterations = 10, stepScale = 2.5, randomStart = false } = options;
  const name = randomStart ? "pgd" : "ifgsm";
  checkCount(name, "iterations", iterations);
  checkPositive(name, "stepScale", stepScale);
  return {
    name,
    jndBox: true,
    async run(frames: Tensor, victim: Victim, opts: AttackOptions): Promise<AttackOutput> {
      const start = performance.now();
      const o = resolveOptions(name, frames, opts);
      const restore = freezeVictim(victim, [frames]);
      let d: Tensor | null = null;
      let alpha: Tensor | null = null;
      try {
        alpha = noGrad(() => mul(o.jnd, stepScale * o.eps / iterations));
        const alphaMap = alpha;
        const { target, passes } = await resolveTarget(victim, frames, o);
        let d0: Tensor;
        if (randomStart) {
          const r = seededRandom(o.seed);
          const u = new Float32Array(frames.size);
          for (let i = 0; i < u.length; i++) u[i] = 2 * r.uniform() - 1;
          d0 = noGrad(() =>
            tidy(() =>
              projectToBox(frames, mul(tensor(u, frames.shape), mul(o.jnd, o.eps)), o.jnd, o.eps)
            )
          );
        } else {
          d0 = full(frames.shape, 0);
        }
        d = signedGradientSteps(frames, d0, victim, target, alphaMap, { ...o, iterations });
        const { adversarial, seconds } = await finish(frames, d, start);
        return { adversarial, victimPasses: passes + 2 * iterations, seconds };
      } finally {
        d?.dispose();
        alpha?.dispose();
        restore();
      }
    },
  };
}

/**
 * I-FGSM with the defaults of {@link createIfgsm}: 10 iterations, `alpha = 0.25 * eps * J`.
 *
 * @example
 * ```ts
 * import { ifgsm } from "./fgsm.ts";
 * // const out = await ifgsm.run(frames, victim, { jnd, mode: "up" });
 * console.log(ifgsm.name); // "ifgsm"
 * ```
 */
export const ifgsm: Attack = createIfgsm();
