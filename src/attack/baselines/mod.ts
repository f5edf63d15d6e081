/**
 * Baseline attacks behind the shared {@link Attack} interface: the random control, FGSM and
 * I-FGSM / PGD in the JND box, Zhang et al.'s NeurIPS 2023 white-box attack, and a
 * Korhonen-style activity-weighted attack.
 *
 * Every attack validates its options (naming the field), freezes the victim's parameters for the
 * run (their `requiresGrad` flags are restored afterwards and they never receive a gradient),
 * and counts victim passes as one per forward and one per backward pass.
 *
 * @example
 * ```ts
 * import { computeJnd, initGpu, loadVictim, tensor } from "../../../mod.ts";
 * import { BASELINE_ATTACKS } from "./mod.ts";
 * await initGpu();
 * const victim = await loadVictim("vsfa-mini");
 * const frames = tensor(new Float32Array(2 * 3 * 16 * 16).fill(0.5), [2, 3, 16, 16]);
 * const jnd = computeJnd(frames);
 * for (const attack of BASELINE_ATTACKS) {
 *   const out = await attack.run(frames, victim, { jnd, mode: "down" });
 *   console.log(attack.name, out.victimPasses, out.seconds);
 *   out.adversarial.dispose();
 * }
 * ```
 * @module
 */

import type { Attack } from "../types.ts";
import { fgsm, ifgsm } from "./fgsm.ts";
import { korhonen } from "./korhonen.ts";
import { randomAttack } from "./random.ts";
import { zhang2023 } from "./zhang2023.ts";

export { boundaryGradient } from "./_common.ts";
export { createIfgsm, fgsm, ifgsm, type IfgsmOptions } from "./fgsm.ts";
export {
  activityMap,
  type ActivityMapOptions,
  createKorhonen,
  korhonen,
  type KorhonenOptions,
} from "./korhonen.ts";
export {
  createRandomAttack,
  randomAttack,
  type RandomAttackOptions,
  type RandomNoise,
} from "./random.ts";
export { createZhang2023, projectRms, zhang2023, type Zhang2023Options } from "./zhang2023.ts";

/**
 * The default instance of every baseline, in table order: random, fgsm, ifgsm, zhang2023,
 * korhonen.
 *
 * @example
 * ```ts
 * import { BASELINE_ATTACKS } from "./mod.ts";
 * console.log(BASELINE_ATTACKS.map((a) => a.name).join(", "));
 * ```
 */
export const BASELINE_ATTACKS: readonly Attack[] = [randomAttack, fgsm, ifgsm, zhang2023, korhonen];

/**
 * A default baseline by name (`random`, `fgsm`, `ifgsm`, `zhang2023`, `korhonen`).
 *
 * @throws {RangeError} naming the known baselines for an unknown name.
 * @example
 * ```ts
 * import { baselineAttack } from "./mod.ts";
 * const a = baselineAttack("ifgsm");
 * ```
 */
export function baselineAttack(name: string): Attack {
  const a = BASELINE_ATTACKS.find((b) => b.name === name);
  if (!a) {
    throw new RangeError(
      `unknown baseline attack '${name}' (known: ${
        BASELINE_ATTACKS.map((b) => b.name).join(", ")
      })`,
    );
  }
  return a;
}
