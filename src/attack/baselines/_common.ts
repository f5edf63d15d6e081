/**
 * Shared plumbing of the baseline attacks (private module): option validation, freezing the
 * victim, the clean score and target, the boundary-loss gradient, the sign of a tensor, and the
 * JND-box projection that also keeps the adversarial frames in [0, 1].
 *
 * Pass counting (`victimPasses`): every forward pass through the victim counts 1 and every
 * backward pass through it counts 1, so one gradient step costs 2 and the clean score of an
 * untargeted attack costs 1.
 *
 * @module
 */

import { syncGpu } from "../../gpu/queue.ts";
import type { Victim } from "../../models/victims/victim.ts";
import { clamp, mul, sub } from "../../nn/mod.ts";
import { noGrad, Tensor, tidy } from "../../tensor/tensor.ts";
import { attackTarget, boundaryLoss } from "../losses.ts";
import { applyPerturbation, clipToJnd } from "../perturb.ts";
import { ATTACK_MODES, type AttackMode, type AttackOptions } from "../types.ts";

/** Validated attack options with their defaults filled in. */
export interface ResolvedOptions {
  /** JND maps `[T,1,H,W]` (levels/255). */
  jnd: Tensor;
  /** Multiple of the JND allowed. */
  eps: number;
  /** Direction. */
  mode: AttackMode;
  /** Seed of anything random. */
  seed: number;
  /** Median that decides the untargeted boundary (undefined: the victim's midpoint). */
  median?: number;
  /** The whole video's clean score, when given: it decides the untargeted boundary. */
  cleanScore?: number;
}

/**
 * Checks frames and options, naming the offending field; fills in the defaults (eps 1,
 * mode `untargeted`, seed 1).
 *
 * @throws {RangeError} for frames that are not `[T,3,H,W]`, a JND map that is not `[T,1,H,W]`
 * for the same T, H, W, eps that is not a finite number > 0, an unknown mode, or a seed,
 * median or clean score that is not finite.
 * @example
 * ```ts
 * import { resolveOptions } from "./_common.ts";
 * // const o = resolveOptions("fgsm", frames, { jnd, eps: 0.5 }); // o.mode === "untargeted"
 * ```
 */
export function resolveOptions(
  who: string,
  frames: Tensor,
  options: AttackOptions,
): ResolvedOptions {
  if (!(frames instanceof Tensor) || frames.rank !== 4 || frames.shape[1] !== 3) {
    const s = frames instanceof Tensor ? `[${frames.shape}]` : String(frames);
    throw new RangeError(`${who}: frames must be [T,3,H,W] (RGB in [0,1]), got ${s}`);
  }
  if (frames.disposed) throw new RangeError(`${who}: frames were disposed`);
  const [t, , h, w] = frames.shape;
  if (!options || typeof options !== "object") {
    throw new RangeError(`${who}: options must be an object with at least 'jnd'`);
  }
  const { jnd } = options;
  if (!(jnd instanceof Tensor)) {
    throw new RangeError(`${who}: options.jnd must be a Tensor [T,1,H,W] (from computeJnd)`);
  }
  if (jnd.disposed) throw new RangeError(`${who}: options.jnd was disposed`);
  const js = jnd.shape;
  if (js.length !== 4 || js[0] !== t || js[1] !== 1 || js[2] !== h || js[3] !== w) {
    throw new RangeError(
      `${who}: options.jnd must be [${t},1,${h},${w}] to match frames [${frames.shape}], ` +
        `got [${js}]`,
    );
  }
  const eps = options.eps ?? 1;
  if (typeof eps !== "number" || !Number.isFinite(eps) || eps <= 0) {
    throw new RangeError(`${who}: options.eps must be a finite number > 0, got ${eps}`);
  }
  const mode = options.mode ?? "untargeted";
  if (!(ATTACK_MODES as readonly string[]).includes(mode)) {
    throw new RangeError(
      `${who}: options.mode must be one of ${ATTACK_MODES.join(", ")}, got '${mode}'`,
    );
  }
  const seed = options.seed ?? 1;
  if (typeof seed !== "number" || !Number.isFinite(seed)) {
    throw new RangeError(`${who}: options.seed must be a finite number, got ${seed}`);
  }
  const median = options.median;
  if (median !== undefined && (typeof median !== "number" || !Number.isFinite(median))) {
    throw new RangeError(`${who}: options.median must be a finite number, got ${median}`);
  }
  const cleanScore = options.cleanScore;
  if (
    cleanScore !== undefined && (typeof cleanScore !== "number" || !Number.isFinite(cleanScore))
  ) {
    throw new RangeError(`${who}: options.cleanScore must be a finite number, got ${cleanScore}`);
  }
  return { jnd, eps, mode, seed, median, cleanScore };
}

/**
 * Makes every victim parameter (and any extra tensor, such as the caller's frames)
 * `requiresGrad = false` for the duration of an attack, so that no backward pass reaches the
 * weights or the caller's graph; returns the function that restores the flags.
 *
 * @example
 * ```ts
 * import { freezeVictim } from "./_common.ts";
 * // const restore = freezeVictim(victim, [frames]);
 * // try { ... } finally { restore(); }
 * ```
 */
export function freezeVictim(victim: Victim, extra: Tensor[] = []): () => void {
  const saved = [...Object.values(victim.parameters()), ...extra].map((p) =>
    [p, p.requiresGrad] as const
  );
  for (const [p] of saved) p.requiresGrad = false;
  return () => {
    for (const [p, flag] of saved) p.requiresGrad = flag;
  };
}

/**
 * The victim's score of clean frames (one forward pass, no gradient).
 *
 * @example
 * ```ts
 * import { cleanScore } from "./_common.ts";
 * // const q = await cleanScore(victim, frames);
 * ```
 */
export async function cleanScore(victim: Victim, frames: Tensor): Promise<number> {
  const s = noGrad(() => tidy(() => victim.score(frames)));
  try {
    return (await s.read())[0];
  } finally {
    s.dispose();
  }
}

/**
 * The score the attack pushes toward ({@link attackTarget}) and the victim passes spent finding
 * it: 0 for `up` and `down`, and for `untargeted` with `options.cleanScore` given (the whole
 * video's, decided by the caller); 1 (the clean score of `frames`) for `untargeted` otherwise.
 *
 * @example
 * ```ts
 * import { resolveTarget } from "./_common.ts";
 * // const { target, passes } = await resolveTarget(victim, frames, resolved);
 * ```
 */
export async function resolveTarget(
  victim: Victim,
  frames: Tensor,
  options: ResolvedOptions,
): Promise<{ target: number; passes: number }> {
  const scale = { qMin: victim.config.qMin, qMax: victim.config.qMax, median: options.median };
  if (options.mode !== "untargeted") {
    return { target: attackTarget(NaN, options.mode, scale), passes: 0 };
  }
  if (options.cleanScore !== undefined) {
    return { target: attackTarget(options.cleanScore, "untargeted", scale), passes: 0 };
  }
  const q = await cleanScore(victim, frames);
  return { target: attackTarget(q, "untargeted", scale), passes: 1 };
}

/**
 * The gradient of `boundaryLoss(victim.score(clip(frames + d, 0, 1)), [target])` with respect to
 * `d` (equal to the gradient with respect to the frames wherever `frames + d` is inside
 * [0, 1]). One forward and one backward pass. The victim should be frozen
 * ({@link freezeVictim}); `d` itself is not modified. The caller disposes the result.
 *
 * @example
 * ```ts
 * import { boundaryGradient } from "./_common.ts";
 * // const g = boundaryGradient(frames, d, victim, 1); // [T,3,H,W]
 * ```
 */
export function boundaryGradient(
  frames: Tensor,
  d: Tensor,
  victim: Victim,
  target: number,
): Tensor {
  return tidy(() => {
    // A fresh leaf holding d's values (d may be the output of earlier ops).
    const leaf = noGrad(() => mul(d, 1));
    leaf.requiresGrad = true;
    const loss = boundaryLoss(victim.score(applyPerturbation(frames, leaf)), [target]);
    loss.backward();
    const g = leaf.grad;
    if (!g) throw new Error("boundaryGradient: the loss does not depend on the frames");
    leaf.grad = null;
    return g;
  });
}

/**
 * `sign(x)` elementwise as ±1 (0 where x is 0): `clamp(x * 1e38, -1, 1)`, exact for
 * `|x| >= 1e-38` (float32's smallest normal is 1.2e-38). No gradient.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { signOf } from "./_common.ts";
 * await initGpu();
 * signOf(tensor([-3, 0, 1e-20], [3])); // [-1, 0, 1]
 * ```
 */
export function signOf(x: Tensor): Tensor {
  return noGrad(() => clamp(mul(x, 1e38), -1, 1));
}

/**
 * Projects a perturbation into the JND box and the valid pixel range:
 * `clip(frames + clipToJnd(d, jnd, eps), 0, 1) - frames`, so that `|d| <= eps * J` and
 * `frames + d` lies in [0, 1]. No gradient.
 *
 * @example
 * ```ts
 * import { projectToBox } from "./_common.ts";
 * // const d2 = projectToBox(frames, d, jnd, 1);
 * ```
 */
export function projectToBox(frames: Tensor, d: Tensor, jnd: Tensor, eps: number): Tensor {
  return noGrad(() => tidy(() => sub(applyPerturbation(frames, clipToJnd(d, jnd, eps)), frames)));
}

/**
 * `iterations` signed-gradient steps in the JND box, the loop of I-FGSM and the Korhonen-style
 * attack: `d <- P(d - step * sign(g(d)))`, `g` the boundary loss's gradient at `x + d` toward
 * `target` and `P` {@link projectToBox}. Takes ownership of `d` (disposed) and returns the last
 * iterate (the caller disposes it); `step` is a per-pixel map broadcast against the frames.
 *
 * @example
 * ```ts
 * import { signedGradientSteps } from "./_common.ts";
 * // const d = signedGradientSteps(frames, full(frames.shape, 0), victim, target, alpha, {
 * //   jnd, eps: 1, iterations: 10 });
 * ```
 */
export function signedGradientSteps(
  frames: Tensor,
  d: Tensor,
  victim: Victim,
  target: number,
  step: Tensor,
  o: { jnd: Tensor; eps: number; iterations: number },
): Tensor {
  let cur = d;
  try {
    for (let k = 0; k < o.iterations; k++) {
      const g = boundaryGradient(frames, cur, victim, target);
      const prev = cur;
      try {
        cur = noGrad(() =>
          tidy(() => projectToBox(frames, sub(prev, mul(signOf(g), step)), o.jnd, o.eps))
        );
      } finally {
        g.dispose();
      }
      prev.dispose();
    }
    return cur;
  } catch (e) {
    cur.dispose();
    throw e;
  }
}

/**
 * Adversarial frames `clip(frames + d, 0, 1)` without a gradient, after a GPU sync; and the wall
 * seconds since `start` (a `performance.now()` value).
 *
 * @example
 * ```ts
 * import { finish } from "./_common.ts";
 * // const { adversarial, seconds } = await finish(frames, d, t0);
 * ```
 */
export async function finish(
  frames: Tensor,
  d: Tensor,
  start: number,
): Promise<{ adversarial: Tensor; seconds: number }> {
  const adversarial = noGrad(() => tidy(() => applyPerturbation(frames, d)));
  await syncGpu();
  return { adversarial, seconds: (performance.now() - start) / 1000 };
}

/**
 * Throws unless `n` is an integer >= 1 (for iteration counts), naming the option.
 *
 * @example
 * ```ts
 * import { checkCount, checkPositive } from "./_common.ts";
 * checkCount("ifgsm", "iterations", 10);
 * checkPositive("ifgsm", "stepScale", 2.5);
 * ```
 */
export function checkCount(who: string, field: string, n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`${who}: ${field} must be an integer >= 1, got ${n}`);
  }
}

/**
 * Throws unless `v` is a finite number > 0, naming the option.
 *
 * @example
 * ```ts
 * import { checkPositive } from "./_common.ts";
 * checkPositive("zhang2023", "lr", 3e-4);
 * ```
 */
export function checkPositive(who: string, field: string, v: number): void {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new RangeError(`${who}: ${field} must be a finite number > 0, got ${v}`);
  }
}
