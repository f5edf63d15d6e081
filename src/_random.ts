/**
 * The one seeded random generator of STQA (private module): xoshiro128** seeded through
 * splitmix32, with 53-bit uniforms and Box-Muller normals, plus helpers that fill arrays with
 * uniform or normal draws. The parameter initialisers (src/tensor/init.ts), the tests' data
 * (tests/_helpers.ts) and the benchmarks' inputs use it, so the same seed gives the same values on
 * every machine.
 *
 * The sequence is pinned by tests/init_test.ts: models are trained from initialisations drawn with
 * it, so changing it changes every trained model. Do not alter it.
 *
 * @module
 */

/** A seeded stream of uniform and standard normal draws. */
export interface SeededRandom {
  /** A uniform draw from [0, 1) with 53 random bits. */
  uniform: () => number;
  /** A standard normal draw (Box-Muller; the second value of each pair is kept for the next call). */
  normal: () => number;
}

/**
 * A seeded generator of uniform [0, 1) and standard normal draws (xoshiro128**, seeded by
 * splitmix32; normals by Box-Muller). Any finite seed works; its integer part is used (both 32-bit
 * halves of seeds up to 2^53), so the same seed always gives the same sequence.
 *
 * @example
 * ```ts
 * import { seededRandom } from "./_random.ts";
 * const r = seededRandom(42);
 * const u = r.uniform(); // 0.6606157208001621
 * const z = r.normal();
 * ```
 */
export function seededRandom(seed: number): SeededRandom {
  if (!Number.isFinite(seed)) {
    throw new RangeError(`seededRandom: seed must be a finite number, got ${seed}`);
  }
  // splitmix32 expands the seed into the 128-bit state (never all zero).
  let x = (Math.trunc(seed) ^ Math.trunc(seed / 2 ** 32)) >>> 0;
  const splitmix = () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const s = new Uint32Array([splitmix(), splitmix(), splitmix(), splitmix()]);
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1;
  const rotl = (v: number, k: number) => ((v << k) | (v >>> (32 - k))) >>> 0;
  const next = () => {
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  };
  // 53-bit uniforms from two 32-bit outputs.
  const uniform = () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
  let spare: number | null = null;
  const normal = () => {
    if (spare !== null) {
      const v = spare;
      spare = null;
      return v;
    }
    const u1 = 1 - uniform(); // (0, 1]
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  };
  return { uniform, normal };
}

/** Options of {@link randomUniform}. */
export interface UniformOptions {
  /** Seed of the generator. */
  seed: number;
  /** Lower bound (default 0). */
  low?: number;
  /** Upper bound, excluded (default 1). */
  high?: number;
}

/**
 * `n` seeded draws from the uniform distribution on `[low, high)` (float64; the k-th value is
 * `low + (high - low) * u_k` for the k-th uniform of {@link seededRandom}).
 *
 * @example
 * ```ts
 * import { randomUniform } from "./_random.ts";
 * const x = Float32Array.from(randomUniform(1024, { seed: 7, low: -1, high: 1 }));
 * ```
 */
export function randomUniform(n: number, options: UniformOptions): Float64Array {
  const { seed, low = 0, high = 1 } = options;
  const r = seededRandom(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = low + (high - low) * r.uniform();
  return out;
}

/** Options of {@link randomNormal}. */
export interface NormalOptions {
  /** Seed of the generator. */
  seed: number;
  /** Mean (default 0). */
  mean?: number;
  /** Standard deviation (default 1). */
  std?: number;
}

/**
 * `n` seeded draws from the normal distribution with `mean` and `std` (float64; the k-th value is
 * `mean + std * z_k` for the k-th normal of {@link seededRandom}).
 *
 * @example
 * ```ts
 * import { randomNormal } from "./_random.ts";
 * const noise = Float32Array.from(randomNormal(1024, { seed: 7, std: 0.1 }));
 * ```
 */
export function randomNormal(n: number, options: NormalOptions): Float64Array {
  const { seed, mean = 0, std = 1 } = options;
  const r = seededRandom(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * r.normal();
  return out;
}
