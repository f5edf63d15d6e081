/**
 * The white-box attack of Zhang et al., "Vulnerabilities in Video Quality Assessment Models: The
 * Challenge of Adversarial Attacks" (NeurIPS 2023): Adam on the perturbation, the score-reversed
 * boundary loss, and an RMS bound on the perturbation instead of the JND box.
 *
 * @module
 */

import { copyBuffer } from "../../gpu/queue.ts";
import type { Victim } from "../../models/victims/victim.ts";
import { add, div, mean, minimum, mul, sqrt, square, sub } from "../../nn/mod.ts";
import { Adam } from "../../optim/optimizers.ts";
import { full, noGrad, type Tensor, tidy } from "../../tensor/tensor.ts";
import { boundaryLoss } from "../losses.ts";
import { applyPerturbation } from "../perturb.ts";
import type { Attack, AttackOptions, AttackOutput } from "../types.ts";
import {
  checkCount,
  checkPositive,
  finish,
  freezeVictim,
  resolveOptions,
  resolveTarget,
} from "./_common.ts";

/** Options of {@link createZhang2023}. */
export interface Zhang2023Options {
  /** Adam's learning rate (default 3e-4, the paper's). */
  lr?: number;
  /** Adam steps (default 30, the paper's). */
  iterations?: number;
  /** Bound on the per-frame RMS of the perturbation, in [0,1] units (default 1/255). */
  rms?: number;
}

/**
 * The per-frame RMS projection: each frame's `d_t` `[3,H,W]` is scaled by
 * `min(1, rms / sqrt(mean(d_t^2) + 1e-20))` (shrinking it only when its RMS exceeds the bound),
 * then `x + d` is clipped to [0, 1] (`d <- clip(x + d, 0, 1) - x`, which can only lower the RMS).
 * No gradient.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { projectRms } from "./zhang2023.ts";
 * await initGpu();
 * const x = tensor(new Float32Array(12).fill(0.5), [1, 3, 2, 2]);
 * const d = tensor(new Float32Array(12).fill(0.1), [1, 3, 2, 2]);
 * projectRms(x, d, 1 / 255); // every value 1/255
 * ```
 */
export function projectRms(frames: Tensor, d: Tensor, rms: number): Tensor {
  return noGrad(() =>
    tidy(() => {
      const r = sqrt(add(mean(square(d), { axes: [1, 2, 3], keepDims: true }), 1e-20));
      const scale = minimum(div(rms, r), full([1, 1, 1, 1], 1));
      return sub(applyPerturbation(frames, mul(d, scale)), frames);
    })
  );
}

/**
 * Zhang et al.'s white-box attack (NeurIPS 2023), as this project runs it: the perturbation `d`
 * starts at 0 and is the only parameter of {@link Adam} (PyTorch's update, lr 3e-4); each of 30
 * iterations takes the gradient of the score-reversed boundary loss
 * `|q(clip(x + d, 0, 1)) - b|` with respect to `d`, makes one Adam step, then projects `d` with
 * {@link projectRms}: the paper models the just-noticeable bound as a strict L2 restriction on
 * the perturbation, which this project fixes (docs/eval.md, "Methods") as a per-pixel RMS of at
 * most 1/255 per frame: `sqrt(mean over c,y,x of d_t^2) <= 1/255`, enforced by scaling `d_t`
 * down when it is exceeded. The JND maps do not constrain it (they are only validated, so that
 * statistics can compare it with the JND-bounded attacks). The projected values are copied back
 * into Adam's parameter so its moment estimates carry on. Returns the last iterate. Victim
 * passes: `2 * iterations`, plus 1 for the clean score in `untargeted` mode. Deterministic (the
 * seed is unused).
 *
 * @example
 * ```ts
 * import { createZhang2023 } from "./zhang2023.ts";
 * const strong = createZhang2023({ iterations: 100 });
 * console.log(strong.name); // "zhang2023"
 * ```
 */
export function createZhang2023(options: Zhang2023Options = {}): Attack {
  const { lr = 3e-4, iterations = 30, rms = 1 / 255 } = options;
  const name = "zhang2023";
  checkPositive(name, "lr", lr);
  checkCount(name, "iterations", iterations);
  checkPositive(name, "rms", rms);
  return {
    name,
    // Bounded by the RMS, not by the JND maps: its frames are rounded to the nearest level.
    jndBox: false,
    async run(frames: Tensor, victim: Victim, opts: AttackOptions): Promise<AttackOutput> {
      const start = performance.now();
      const o = resolveOptions(name, frames, opts);
      const restore = freezeVictim(victim, [frames]);
      const d = full(frames.shape, 0, { requiresGrad: true });
      const opt = new Adam([d], { lr });
      try {
        const { target, passes } = await resolveTarget(victim, frames, o);
        for (let k = 0; k < iterations; k++) {
          tidy(() => {
            const loss = boundaryLoss(victim.score(applyPerturbation(frames, d)), [target]);
            loss.backward();
          });
          opt.step();
          opt.zeroGrad();
          tidy(() => {
            const p = projectRms(frames, d, rms);
            copyBuffer(p.buffer, d.buffer, d.size * 4);
          });
        }
        const { adversarial, seconds } = await finish(frames, d, start);
        return { adversarial, victimPasses: passes + 2 * iterations, seconds };
      } finally {
        opt.zeroGrad();
        opt.dispose();
        d.dispose();
        restore();
      }
    },
  };
}

/**
 * Zhang et al.'s attack with the paper's settings (Adam, lr 3e-4, 30 iterations, RMS <= 1/255).
 *
 * @example
 * ```ts
 * import { zhang2023 } from "./zhang2023.ts";
 * // const out = await zhang2023.run(frames, victim, { jnd });
 * console.log(zhang2023.name); // "zhang2023"
 * ```
 */
export const zhang2023: Attack = createZhang2023();
