/**
 * The control: random noise in the JND box, no victim involved.
 *
 * @module
 */

import { type SeededRandom, seededRandom } from "../../_random.ts";
import type { Victim } from "../../models/victims/victim.ts";
import { mul } from "../../nn/mod.ts";
import { noGrad, type Tensor, tensor, tidy } from "../../tensor/tensor.ts";
import type { Attack, AttackOptions, AttackOutput, AttackWindows } from "../types.ts";
import { finish, projectToBox, type ResolvedOptions, resolveOptions } from "./_common.ts";

/** How {@link createRandomAttack} draws its noise. */
export type RandomNoise = "sign" | "uniform";

/** Options of {@link createRandomAttack}. */
export interface RandomAttackOptions {
  /**
   * `sign` (default): `d = eps * J * s` with independent fair signs `s = ±1` per pixel and
   * channel (the same L-infinity budget as FGSM, spent in a random direction); `uniform`:
   * `d = eps * J * u` with `u` uniform on [-1, 1).
   */
  noise?: RandomNoise;
}

/**
 * A random-noise attack (the control of every table): `d = eps * J * r`, `r` drawn from
 * `seededRandom(options.seed)` on the CPU in the order of the `[T,3,H,W]` elements, then
 * `x' = clip(x + d, 0, 1)`. It ignores the mode (noise has no direction) and runs the victim 0
 * times. Its `windows` draws window after window from one generator, so a clip attacked by
 * windows gets exactly the noise of one `run`.
 *
 * @example
 * ```ts
 * import { computeJnd, initGpu, loadVictim, tensor } from "../../../mod.ts";
 * import { createRandomAttack } from "./random.ts";
 * await initGpu();
 * const victim = await loadVictim("vsfa-mini");
 * const frames = tensor(new Float32Array(2 * 3 * 16 * 16).fill(0.5), [2, 3, 16, 16]);
 * const jnd = computeJnd(frames);
 * const out = await createRandomAttack({ noise: "uniform" }).run(frames, victim, { jnd, seed: 3 });
 * ```
 */
export function createRandomAttack(options: RandomAttackOptions = {}): Attack {
  const noise = options.noise ?? "sign";
  if (noise !== "sign" && noise !== "uniform") {
    throw new RangeError(`random: noise must be 'sign' or 'uniform', got '${noise}'`);
  }
  const name = noise === "sign" ? "random" : "random-uniform";
  // The noise of `frames` from `r`, drawn in the order of their [t,3,H,W] elements, in the box.
  const perturb = (frames: Tensor, o: ResolvedOptions, r: SeededRandom) => {
    const values = new Float32Array(frames.size);
    if (noise === "sign") {
      for (let i = 0; i < values.length; i++) {
        values[i] = r.uniform() < 0.5 ? -1 : 1;
      }
    } else for (let i = 0; i < values.length; i++) values[i] = 2 * r.uniform() - 1;
    return noGrad(() =>
      tidy(() =>
        projectToBox(frames, mul(tensor(values, frames.shape), mul(o.jnd, o.eps)), o.jnd, o.eps)
      )
    );
  };
  const attackWith = async (frames: Tensor, o: ResolvedOptions, r: SeededRandom, start: number) => {
    const d = perturb(frames, o, r);
    try {
      const { adversarial, seconds } = await finish(frames, d, start);
      return { adversarial, victimPasses: 0, seconds };
    } finally {
      d.dispose();
    }
  };
  return {
    name,
    jndBox: true,
    usesCleanScore: false,
    async run(frames: Tensor, _victim: Victim, opts: AttackOptions): Promise<AttackOutput> {
      const start = performance.now();
      const o = resolveOptions(name, frames, opts);
      return await attackWith(frames, o, seededRandom(o.seed), start);
    },
    // One generator for the whole clip, drawn on window after window: the same noise as `run`.
    windows(_victim: Victim, opts: Omit<AttackOptions, "jnd">): AttackWindows {
      let r: SeededRandom | null = null;
      return {
        async next(frames: Tensor, jnd: Tensor): Promise<AttackOutput> {
          const start = performance.now();
          const o = resolveOptions(name, frames, { ...opts, jnd });
          r ??= seededRandom(o.seed);
          return await attackWith(frames, o, r, start);
        },
        dispose() {},
      };
    },
  };
}

/**
 * The default random control: fair signs in the JND box ({@link createRandomAttack}).
 *
 * @example
 * ```ts
 * import { randomAttack } from "./random.ts";
 * // const out = await randomAttack.run(frames, victim, { jnd, seed: 1 });
 * console.log(randomAttack.name); // "random"
 * ```
 */
export const randomAttack: Attack = createRandomAttack();
