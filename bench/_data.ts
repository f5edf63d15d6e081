/**
 * Benchmark inputs and result checks shared by the bench files: the same seeded random data is
 * given to STQA and TF.js, and one result of each is compared before anything is timed, so that a
 * benchmark never reports the speed of a wrong kernel.
 *
 * @module
 */

/**
 * `n` seeded standard-normal floats (mulberry32 + Box-Muller).
 *
 * @example
 * ```ts
 * import { randomNormal } from "./_data.ts";
 * const x = randomNormal(1024, 7);
 * ```
 */
export function randomNormal(n: number, seed: number): Float32Array<ArrayBuffer> {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(Math.max(uniform(), 1e-12)));
    const th = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = r * Math.sin(th);
  }
  return out;
}

/**
 * Largest absolute difference between two arrays relative to the largest magnitude of `want`
 * (Infinity when the lengths differ or a value is not finite).
 *
 * @example
 * ```ts
 * import { relativeMaxError } from "./_data.ts";
 * relativeMaxError(new Float32Array([1, 2]), new Float32Array([1, 2.001])); // 0.0005
 * ```
 */
export function relativeMaxError(got: Float32Array, want: Float32Array): number {
  if (got.length !== want.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!Number.isFinite(got[i])) return Infinity;
    if (d > diff) diff = d;
    const m = Math.abs(want[i]);
    if (m > scale) scale = m;
  }
  return diff / Math.max(scale, 1e-30);
}

/** Tolerance of {@link relativeMaxError} in the cross-checks (float32 sums of up to ~20k terms). */
export const CHECK_TOLERANCE = 1e-3;
