/**
 * Benchmark inputs and result checks shared by the bench files: the same seeded random data is
 * given to STQA and TF.js, and one result of each is checked before anything is timed, at sampled
 * positions against a float64 CPU reference, so that a benchmark never reports the speed of a
 * wrong kernel without saying so.
 *
 * @module
 */

import { randomNormal as normalDraws, seededRandom } from "../src/_random.ts";

/**
 * `n` seeded standard-normal floats (STQA's generator, src/_random.ts).
 *
 * @example
 * ```ts
 * import { randomNormal } from "./_data.ts";
 * const x = randomNormal(1024, 7);
 * ```
 */
export function randomNormal(n: number, seed: number): Float32Array<ArrayBuffer> {
  return Float32Array.from(normalDraws(n, { seed }));
}

/**
 * Largest absolute difference between `got` at positions `at` and the reference values `want`
 * (one per position), relative to the largest magnitude of `want`; Infinity for a non-finite
 * value.
 *
 * @example
 * ```ts
 * import { sampledError } from "./_data.ts";
 * sampledError(new Float32Array([1, 2, 3]), [0, 2], [1, 3.003]); // 0.001
 * ```
 */
export function sampledError(got: Float32Array, at: number[], want: number[]): number {
  let diff = 0;
  let scale = 0;
  at.forEach((i, j) => {
    const d = Math.abs(got[i] - want[j]);
    diff = Number.isFinite(got[i]) ? Math.max(diff, d) : Infinity;
    scale = Math.max(scale, Math.abs(want[j]));
  });
  return diff / Math.max(scale, 1e-30);
}

/**
 * `count` distinct positions in [0, n), seeded, always including the first and the last.
 *
 * @example
 * ```ts
 * import { samplePositions } from "./_data.ts";
 * samplePositions(1000, 8, 1);
 * ```
 */
export function samplePositions(n: number, count: number, seed: number): number[] {
  const { uniform } = seededRandom(seed);
  const set = new Set<number>([0, n - 1]);
  while (set.size < Math.min(n, count)) set.add(Math.floor(uniform() * n));
  return [...set].sort((a, b) => a - b);
}

/** Tolerance of {@link sampledError} in the checks (float32 sums of up to ~65k terms). */
export const CHECK_TOLERANCE = 1e-3;
