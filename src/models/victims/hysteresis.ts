/**
 * VSFA's temporal hysteresis pooling (Li et al. 2019), built from differentiable ops.
 *
 * For per-frame scores `q_0..q_{T-1}`:
 * `l_t = min(q_{t-tau+1..t})` (memory of the worst recent frame),
 * `m_t = sum_k q_k e^{-q_k} / sum_k e^{-q_k}` over `k = t..t+tau-1` (softmin-weighted mean of the
 * coming frames), `q'_t = gamma l_t + (1 - gamma) m_t`, and the clip score is the mean of `q'_t`.
 * Windows are clipped at the ends of the clip.
 *
 * The running minimum is a max pool of `-q` over a causal window (left padding that never wins);
 * its gradient goes to the argmin, as the min's subgradient does. The window sums of `m_t` are
 * average pools over a right-padded (zeros) sequence, whose `1/tau` factors cancel in the ratio.
 * The weights are `e^{-(q_k - c)}` with `c` the clip's mean score taken without gradient: the
 * shift cancels exactly in the ratio and keeps `exp` in range for any score scale.
 *
 * @module
 */

import { add, concat, exp, maxPool2d, mean, mul, neg, sub } from "../../nn/mod.ts";
import { avgPool2d, div } from "../../nn/mod.ts";
import { full, noGrad, type Tensor } from "../../tensor/tensor.ts";

/** Options of {@link hysteresisPool}. */
export interface HysteresisOptions {
  /** Window length in frames (default 12, as VSFA). */
  tau?: number;
  /** Weight of the memory term `l_t` (default 0.5, as VSFA). */
  gamma?: number;
}

/** Larger than any score; pads the running-minimum window so that padding never wins. */
const BIG = 1e30;

/**
 * Temporal hysteresis pooling of per-frame scores: `[B, T] -> [B]` (or `[T] -> [1]`).
 * Differentiable with respect to the scores.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { hysteresisPool } from "./hysteresis.ts";
 * await initGpu();
 * const q = tensor([3, 2.5, 4, 4.2, 1.5, 3], [1, 6]);
 * const score = hysteresisPool(q, { tau: 12, gamma: 0.5 }); // [1]
 * console.log(await score.read());
 * ```
 */
export function hysteresisPool(q: Tensor, options: HysteresisOptions = {}): Tensor {
  const { tau = 12, gamma = 0.5 } = options;
  if (!Number.isInteger(tau) || tau < 1) {
    throw new RangeError(`hysteresisPool: tau must be a positive integer, got ${tau}`);
  }
  if (!(gamma >= 0 && gamma <= 1)) {
    throw new RangeError(`hysteresisPool: gamma must be in [0, 1], got ${gamma}`);
  }
  if (q.rank !== 1 && q.rank !== 2) {
    throw new RangeError(`hysteresisPool: scores must be [T] or [B, T], got [${q.shape}]`);
  }
  const b = q.rank === 2 ? q.shape[0] : 1;
  const t = q.shape[q.rank - 1];
  if (t < 1) throw new RangeError(`hysteresisPool: no frames in [${q.shape}]`);
  const q4 = q.reshape([b, 1, 1, t]);
  const kernel = [1, tau] as const;
  const padded = (x: Tensor, value: number, left: boolean) => {
    if (tau === 1) return x;
    const pad = full([b, 1, 1, tau - 1], value);
    return concat(left ? [pad, x] : [x, pad], 3);
  };
  // l_t = min over q_{t-tau+1..t} = -max over -q.
  const l = neg(maxPool2d(padded(neg(q4), -BIG, true), { kernel, stride: 1 }));
  // m_t over q_t..q_{t+tau-1}, the zero padding adding nothing to either sum.
  const c = noGrad(() => mean(q4, { axes: 3, keepDims: true }));
  const e = exp(neg(sub(q4, c)));
  const num = avgPool2d(padded(mul(q4, e), 0, false), { kernel, stride: 1 });
  const den = avgPool2d(padded(e, 0, false), { kernel, stride: 1 });
  const m = div(num, den);
  const qp = add(mul(l, gamma), mul(m, 1 - gamma));
  return mean(qp, { axes: [1, 2, 3] });
}

/**
 * The same pooling in float64 on the CPU, for tests and for checking a GPU result.
 *
 * @example
 * ```ts
 * import { hysteresisPoolReference } from "./hysteresis.ts";
 * hysteresisPoolReference([3, 2.5, 4, 4.2, 1.5, 3]);
 * ```
 */
export function hysteresisPoolReference(
  q: ArrayLike<number>,
  options: HysteresisOptions = {},
): number {
  const { tau = 12, gamma = 0.5 } = options;
  const t = q.length;
  let total = 0;
  for (let i = 0; i < t; i++) {
    let l = Infinity;
    for (let k = Math.max(0, i - tau + 1); k <= i; k++) l = Math.min(l, q[k]);
    let num = 0;
    let den = 0;
    for (let k = i; k < Math.min(t, i + tau); k++) {
      const w = Math.exp(-q[k]);
      num += q[k] * w;
      den += w;
    }
    total += gamma * l + (1 - gamma) * (num / den);
  }
  return total / t;
}
