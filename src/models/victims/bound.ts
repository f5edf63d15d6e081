/**
 * A smooth, differentiable clamp of a victim's clip score into its stated range `qMin..qMax`.
 *
 * The small victims end in a linear head, so nothing stops their raw clip score from leaving
 * the label scale (a clip unlike the training clips, a frame size they were not trained on, an
 * attack that pushes the score). {@link boundScore} maps the raw score `x` to
 *
 * ```text
 * f(x) = qMin + softplus(k (x - qMin)) / k - softplus(k (x - qMax)) / k
 * ```
 *
 * with `k` the sharpness (10 by default) and `softplus(z) = log(1 + e^z)`.
 *
 * What it does to a score (exactly, in real arithmetic; `d` is the raw score's distance inside
 * the range, to the nearer end):
 * - `f(x) - x = softplus(-k (x - qMin)) / k - softplus(-k (qMax - x)) / k`, so `|f(x) - x|` is at
 *   most `log(1 + e^{-k d}) / k`: with `k = 10`, within 0.008 of the raw score whenever the raw
 *   score is more than 0.25 inside the range (0.0007 at 0.5 inside), and 0.069 (`log 2 / k`) off
 *   at either end;
 * - `f` is strictly increasing and strictly inside `(qMin, qMax)` for every `x` (softplus is
 *   strictly increasing), and its gradient `sigmoid(k (x - qMin)) - sigmoid(k (x - qMax))` is never
 *   zero (about `e^{-k t}` at a distance `t` outside the range): ranks are kept, and an attack
 *   always has a direction.
 *
 * How it is computed, from the elementwise ops: `softplus(z) = relu(z) + log(1 + e^{-|z|})`, stable
 * for any `z` (no `exp` of a large positive number). `relu(z)` and `|z|` are written as `s z` and
 * `(2s - 1) z` with `s` the step `z > 0` taken as a constant (no gradient flows through it), which
 * equals them in float32 but keeps the gradient exact: below 0 the relu term contributes exactly
 * nothing (with `relu(z) = (z + |z|) / 2`, `1/2 - 1/2` cancels the small `e^z` away in float32),
 * and at `z = 0` it is the true 1/2 (the subgradients of `relu` and `abs` would give 0). Below the
 * middle of the range `f` is evaluated as written; from it on as the equal
 * `qMax + (softplus(-k (x - qMin)) - softplus(-k (x - qMax))) / k` (`softplus(z) = z +
 * softplus(-z)`), so that the gradient above the range is the small `sigmoid(-k (x - qMax))`
 * itself and not `1 - 1` cancelling in float32 (the form as written loses it beyond about `17 / k`
 * above `qMax`). The raw score is first clamped to `200 / k` outside the range (no value or
 * gradient changes there in float32: both have already reached the bound and 0), so that an
 * infinite raw score gives the bound.
 *
 * So in float32, near the range both statements hold; far from it they cannot: the value rounds
 * to `qMin` or `qMax` itself once the raw score is more than about `15 / k` outside (1.5 score
 * units for `k = 10` on the 1..5 scale), and the gradient underflows to 0 beyond about `87 / k` (8.7 units; at 1
 * unit outside it is 5e-5). The result is always within `[qMin, qMax]`, finite for any raw score
 * but NaN, and its gradient is finite and never negative.
 *
 * @module
 */

import { add, clamp, exp, log, mul, neg, sub } from "../../nn/mod.ts";
import { noGrad, type Tensor } from "../../tensor/tensor.ts";

/** Options of {@link boundScore}. */
export interface BoundScoreOptions {
  /** The lowest score (the victim's `config.qMin`). */
  qMin: number;
  /** The highest score (the victim's `config.qMax`), above `qMin`. */
  qMax: number;
  /**
   * `k`: how sharply the bound bends at `qMin` and `qMax` (default 10; per score unit). Larger
   * keeps the score closer to the raw score inside the range and bends more abruptly at its ends.
   */
  sharpness?: number;
}

/** 1 where `x > 0`, else 0, without gradient (exact for `|x| >= 1e-20`; beyond, any weight). */
function step(x: Tensor): Tensor {
  return noGrad(() => clamp(mul(x, 1e20), 0, 1));
}

/**
 * `softplus(z)` and `softplus(-z)`: `relu(+-z) + log(1 + e^{-|z|})`, with `relu(z) = s z`,
 * `relu(-z) = (s - 1) z` and `|z| = (2s - 1) z` for the constant step `s` (see the module doc).
 */
function softplusPair(z: Tensor): { plus: Tensor; minus: Tensor } {
  const s = step(z);
  const tail = log(add(exp(neg(mul(z, sub(mul(s, 2), 1)))), 1));
  return { plus: add(mul(z, s), tail), minus: add(mul(z, sub(s, 1)), tail) };
}

/**
 * Bounds raw scores (a tensor of any shape, elementwise) into `[qMin, qMax]` with a smooth,
 * differentiable clamp: `qMin + softplus(k (x - qMin)) / k - softplus(k (x - qMax)) / k` (see the
 * module doc for how close it stays to the raw score and how its gradient behaves).
 *
 * @throws {RangeError} when `qMin` or `qMax` is not finite, `qMin >= qMax`, or `sharpness` is not
 * a positive finite number.
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { boundScore } from "./bound.ts";
 * await initGpu();
 * const raw = tensor([-1000, 0.2, 3, 4.9, 6.02, 1000], [6]);
 * const q = await boundScore(raw, { qMin: 1, qMax: 5 }).read();
 * assert.ok(q.every((v) => v >= 1 && v <= 5));
 * assert.ok(Math.abs(q[2] - 3) < 1e-6); // well inside the range: unchanged
 * console.log([...q].map((v) => v.toFixed(3)).join(" ")); // 1.000 1.000 3.000 4.869 5.000 5.000
 * ```
 */
export function boundScore(raw: Tensor, options: BoundScoreOptions): Tensor {
  const { qMin, qMax, sharpness: k = 10 } = options;
  if (!Number.isFinite(qMin) || !Number.isFinite(qMax) || !(qMin < qMax)) {
    throw new RangeError(
      `boundScore: the range must be finite with qMin < qMax, got qMin ${qMin}, qMax ${qMax}`,
    );
  }
  if (!(Number.isFinite(k) && k > 0)) {
    throw new RangeError(`boundScore: sharpness must be a positive finite number, got ${k}`);
  }
  // Beyond 200 / k outside the range the value is the bound and the gradient 0 in float32.
  const x = clamp(raw, qMin - 200 / k, qMax + 200 / k);
  const low = softplusPair(mul(sub(x, qMin), k));
  const high = softplusPair(mul(sub(x, qMax), k));
  // Below the middle: qMin + (softplus(z1) - softplus(z2)) / k; from it on the same value as
  // qMax + (softplus(-z1) - softplus(-z2)) / k, whose gradient does not cancel (module doc).
  const below = add(mul(sub(low.plus, high.plus), 1 / k), qMin);
  const above = add(mul(sub(low.minus, high.minus), 1 / k), qMax);
  const w = step(sub((qMin + qMax) / 2, x)); // 1 below the middle, else 0
  return add(mul(below, w), mul(above, sub(1, w)));
}
