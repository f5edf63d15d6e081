// Shared test helpers: seeded random data, closeness checks, and the op checker that compares a
// GPU op's forward and backward with a float64 CPU reference and central finite differences.

import { fileURLToPath } from "url";
import { buildProxyDataset } from "../src/data/proxy.ts";
import { initGpu, setKernelFamily } from "../src/gpu/device.ts";
import { type Tensor, tensor, tidy } from "../src/tensor/tensor.ts";
import { randomNormal, randomUniform, type SeededRandom, seededRandom } from "../src/_random.ts";

export { initGpu };

/** The seed of the randomised tests when STQA_TEST_SEED is not set. */
export const DEFAULT_TEST_SEED = 1;

/**
 * The seed of a run's randomised tests, from the value of STQA_TEST_SEED: unset or empty gives
 * {@link DEFAULT_TEST_SEED}, so that a failure is reproducible from the log alone; a whole number
 * from 0 to 2^31 - 1 is used as given; `random` draws one from `now` (milliseconds).
 *
 * @throws {RangeError} naming STQA_TEST_SEED and the value for anything else.
 */
export function parseTestSeed(value: string | undefined, now = Date.now()): number {
  if (value === undefined || value.trim() === "") return DEFAULT_TEST_SEED;
  const v = value.trim();
  if (v === "random") return now % 2_147_483_647;
  if (/^\d+$/.test(v) && Number(v) <= 2_147_483_647) return Number(v);
  throw new RangeError(
    `STQA_TEST_SEED must be a whole number from 0 to 2147483647 or 'random', got '${value}'`,
  );
}

/**
 * The seed of this run's randomised tests (see {@link parseTestSeed}). Printed once per run, when
 * the first test file imports this module, with the setting that repeats the run; failure
 * messages that depend on it name it (see {@link withSeed}). A `random` seed is drawn once and
 * kept in the environment, so that every test file of the run uses the same one.
 */
export const RUN_SEED: number = (() => {
  const env = Deno.env.get("STQA_TEST_SEED");
  const seed = parseTestSeed(env);
  if (Deno.env.get("STQA_TEST_SEED_SHOWN") !== String(seed)) {
    Deno.env.set("STQA_TEST_SEED_SHOWN", String(seed));
    if (env?.trim() === "random") Deno.env.set("STQA_TEST_SEED", String(seed));
    console.log(
      `test seed ${seed}${env?.trim() === "random" ? " (drawn at random)" : ""}: ` +
        `STQA_TEST_SEED=${seed} repeats this run`,
    );
  }
  return seed;
})();

/**
 * A failure message that names the run's seed: `message (run seed N)`; use it in every
 * message of a check on data drawn from {@link RUN_SEED}.
 */
export function withSeed(message: string): string {
  return `${message} (run seed ${RUN_SEED})`;
}

/**
 * A seeded generator with uniform [0, 1) and standard normal draws: STQA's one generator
 * (src/_random.ts, xoshiro128**), so tests, benchmarks and initialisers share it.
 */
export function rng(seed: number): SeededRandom {
  return seededRandom(seed);
}

/** Values rounded to float32 and held as float64 (so CPU references see exactly the GPU input). */
export function f32(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(values));
}

/** Random normal data of `n` elements, rounded to float32. */
export function randn(n: number, seed: number, scale = 1): Float64Array {
  return f32(randomNormal(n, { seed, std: scale }));
}

/** Random uniform data in [lo, hi), rounded to float32. */
export function randu(n: number, seed: number, lo = 0, hi = 1): Float64Array {
  return f32(randomUniform(n, { seed, low: lo, high: hi }));
}

/** Product of sizes. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Asserts |actual - expected| <= atol + rtol * |expected| elementwise, naming the worst element.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  opts: { rtol?: number; atol?: number; what?: string } = {},
): void {
  const { rtol = 1e-4, atol = 1e-5, what = "values" } = opts;
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
        `(rtol ${rtol}, atol ${atol}; run seed ${RUN_SEED})`,
    );
  }
}

/** An input of an op under test. */
export interface OpInput {
  shape: number[];
  /** Values; random normal when omitted. */
  data?: ArrayLike<number>;
  /** Draw from [lo, hi) instead of a normal (e.g. positive inputs for log). */
  range?: [number, number];
  /** Whether to check the gradient of this input (default true). */
  grad?: boolean;
}

/** A float64 reference forward: inputs in, output values (row-major) out. */
export type Reference = (...inputs: Float64Array[]) => Float64Array;

/**
 * Checks one op on one set of shapes: forward against `ref`, and each input's gradient of
 * sum(w * op(inputs)) (w random) against central finite differences of the float64 reference.
 * Finite differences use at most `maxFd` elements per input (chosen at random).
 */
export async function checkOp(opts: {
  name: string;
  inputs: OpInput[];
  gpu: (...xs: Tensor[]) => Tensor;
  ref: Reference;
  seed?: number;
  rtol?: number;
  atol?: number;
  gradRtol?: number;
  gradAtol?: number;
  maxFd?: number;
  fdStep?: number;
}): Promise<void> {
  await initGpu();
  const seed = opts.seed ?? RUN_SEED;
  const datas = opts.inputs.map((inp, i) => {
    const n = numel(inp.shape);
    if (inp.data) return f32(inp.data);
    if (inp.range) return randu(n, seed + 97 * i, inp.range[0], inp.range[1]);
    return randn(n, seed + 97 * i);
  });
  const expected = opts.ref(...datas);
  // A seed given in opts is named too: the messages of assertClose name only RUN_SEED.
  const tag = `${opts.name} [${opts.inputs.map((i) => i.shape.join("x")).join(", ")}]` +
    (opts.seed === undefined ? "" : ` (data seed ${seed})`);
  const w = randn(expected.length, seed + 7);
  const results = await tidy(() => {
    const xs = opts.inputs.map((inp, i) =>
      tensor(Float32Array.from(datas[i]), inp.shape, { requiresGrad: inp.grad !== false })
    );
    const out = opts.gpu(...xs);
    if (out.size !== expected.length) {
      throw new Error(`${tag}: output has ${out.size} elements, reference ${expected.length}`);
    }
    out.backward(tensor(Float32Array.from(w), out.shape));
    return { out, grads: xs.map((x) => x.grad), xs };
  });
  try {
    assertClose(await results.out.read(), expected, {
      rtol: opts.rtol ?? 1e-4,
      atol: opts.atol ?? 1e-4,
      what: `${tag} forward`,
    });
    const loss = (ins: Float64Array[]) => {
      const y = opts.ref(...ins);
      let s = 0;
      for (let i = 0; i < y.length; i++) s += w[i] * y[i];
      return s;
    };
    const r = rng(seed + 13);
    for (let i = 0; i < opts.inputs.length; i++) {
      if (opts.inputs[i].grad === false) continue;
      const g = results.grads[i];
      if (!g) throw new Error(`${tag}: input ${i} got no gradient`);
      const got = await g.read();
      const n = datas[i].length;
      const maxFd = opts.maxFd ?? 64;
      const idx = n <= maxFd
        ? [...Array(n).keys()]
        : Array.from({ length: maxFd }, () => Math.floor(r.uniform() * n));
      const fd: number[] = [];
      const sel: number[] = [];
      for (const j of idx) {
        const h = (opts.fdStep ?? 1e-6) * Math.max(1, Math.abs(datas[i][j]));
        const plus = datas.map((d) => d.slice());
        const minus = datas.map((d) => d.slice());
        plus[i][j] += h;
        minus[i][j] -= h;
        fd.push((loss(plus) - loss(minus)) / (2 * h));
        sel.push(got[j]);
      }
      assertClose(sel, fd, {
        rtol: opts.gradRtol ?? 1e-3,
        atol: opts.gradAtol ?? 1e-4,
        what: `${tag} gradient of input ${i} (finite differences)`,
      });
    }
  } finally {
    results.out.dispose();
    results.xs.forEach((x) => x.dispose());
  }
}

/**
 * Builds the tests' tiny proxy dataset into `out`: 3 source images of data/sources (1 for test,
 * none for val, or `valSources`), 1 motion each, blur and noise at 1 level, 3 frames of 32x32 (or
 * `size`), seed 3.
 */
export async function buildTinyProxy(
  out: string,
  options: { size?: number; valSources?: number } = {},
): Promise<void> {
  await buildProxyDataset({
    sources: fileURLToPath(new URL("../data/sources", import.meta.url)),
    out,
    maxSources: 3,
    testSources: 1,
    valSources: options.valSources ?? 0,
    frames: 3,
    size: options.size ?? 32,
    motionsPerImage: 1,
    levels: 1,
    distortions: ["blur", "noise"],
    seed: 3,
  });
}

/**
 * Registers a test once per kernel family (`"cpu"` and `"gpu"`, see `kernelFamily()` in
 * src/gpu/device.ts), with that family chosen while it runs, so that both kernel sets are checked
 * against the same references on any adapter.
 */
export function familyTest(name: string, fn: () => Promise<void>): void {
  for (const family of ["cpu", "gpu"] as const) {
    Deno.test(`${name} [${family} kernels]`, async () => {
      await initGpu();
      const before = setKernelFamily(family);
      try {
        await fn();
      } finally {
        setKernelFamily(before);
      }
    });
  }
}
