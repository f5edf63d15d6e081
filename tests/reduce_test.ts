// Reductions (sum, mean, var, std, sumTo): forward against float64 references, gradients against
// finite differences; contiguous and non-contiguous axis sets, negative axes, keepDims, long
// reductions (chunked two-pass kernels) and argument errors.

import { initGpu, nn, type Tensor, tensor, tidy } from "../mod.ts";
import { assertClose, checkOp, numel, randn, randu, RUN_SEED } from "./_helpers.ts";

/** Applies `f` to the values of each output (kept axes in order), row-major. */
function reduceRef(
  shape: number[],
  axes: number[] | undefined,
  f: (vals: number[]) => number,
): (x: Float64Array) => Float64Array {
  const rank = shape.length;
  const ax = (axes ?? [...Array(rank).keys()]).map((a) => (a < 0 ? a + rank : a));
  const keptAxes = [...Array(rank).keys()].filter((a) => !ax.includes(a));
  const nOut = numel(keptAxes.map((a) => shape[a]));
  return (x) => {
    const groups: number[][] = Array.from({ length: nOut }, () => []);
    for (let i = 0; i < x.length; i++) {
      let rem = i;
      const coords = new Array(rank);
      for (let a = rank - 1; a >= 0; a--) {
        coords[a] = rem % shape[a];
        rem = Math.floor(rem / shape[a]);
      }
      let o = 0;
      for (const a of keptAxes) o = o * shape[a] + coords[a];
      groups[o].push(x[i]);
    }
    return Float64Array.from(groups.map(f));
  };
}

const sumOf = (v: number[]) => v.reduce((a, b) => a + b, 0);
const meanOf = (v: number[]) => sumOf(v) / v.length;
const varOf = (unbiased: boolean) => (v: number[]) => {
  const m = meanOf(v);
  return sumOf(v.map((x) => (x - m) ** 2)) / (v.length - (unbiased ? 1 : 0));
};

function outShape(shape: number[], axes: number[] | undefined, keepDims: boolean): number[] {
  const rank = shape.length;
  const ax = (axes ?? [...Array(rank).keys()]).map((a) => (a < 0 ? a + rank : a));
  return keepDims
    ? shape.map((d, i) => (ax.includes(i) ? 1 : d))
    : shape.filter((_, i) => !ax.includes(i));
}

// [shape, axes, keepDims]
const CASES: [number[], number[] | undefined, boolean][] = [
  [[7], undefined, false],
  [[3, 5], [1], false],
  [[3, 5], [0], true],
  [[3, 4, 5], [0, 2], false],
  [[3, 4, 5], [-1, -3], true],
  [[2, 3, 7, 5], [0, 2, 3], false],
  [[2, 3, 7, 5], [1, 3], true],
  [[2, 3, 7, 5], [-2], false],
  [[5, 1, 3], [1], false],
];

type Reducer = (x: Tensor, o: { axes?: number[]; keepDims?: boolean }) => Tensor;

const OPS: [string, Reducer, (v: number[]) => number][] = [
  ["sum", (x, o) => nn.sum(x, o), sumOf],
  ["mean", (x, o) => nn.mean(x, o), meanOf],
  ["var", (x, o) => nn.var(x, o), varOf(true)],
  ["var biased", (x, o) => nn.var(x, { ...o, unbiased: false }), varOf(false)],
  ["std", (x, o) => nn.std(x, o), (v) => Math.sqrt(varOf(true)(v))],
  ["std biased", (x, o) => nn.std(x, { ...o, unbiased: false }), (v) => Math.sqrt(varOf(false)(v))],
];

for (const [name, op, f] of OPS) {
  Deno.test(`${name}: forward and gradient over axis sets`, async () => {
    for (const [shape, axes, keepDims] of CASES) {
      if (name.startsWith("var") || name.startsWith("std")) {
        // size-1 reductions: the unbiased estimate needs 2 elements (tested as an error below)
        const ax = (axes ?? shape.map((_, i) => i)).map((a) => (a < 0 ? a + shape.length : a));
        if (ax.every((a) => shape[a] === 1)) continue;
      }
      await checkOp({
        name: `${name} axes=${axes} keepDims=${keepDims}`,
        inputs: [{ shape }],
        gpu: (x) => {
          const y = op(x, { axes, keepDims });
          const want = outShape(shape, axes, keepDims);
          if (y.shape.join(",") !== want.join(",")) {
            throw new Error(`${name}: shape [${y.shape}], expected [${want}]`);
          }
          return y;
        },
        ref: reduceRef(shape, axes, f),
      });
    }
  });
}

Deno.test("nn.variance is nn.var", () => {
  if (nn.variance !== nn.var) throw new Error("nn.variance and nn.var differ");
});

Deno.test("sumTo: forward and gradient", async () => {
  const cases: [number[], number[]][] = [
    [[4, 3, 5], [3, 1]],
    [[2, 3, 7, 5], [1, 3, 1, 1]],
    [[7, 5], [5]],
  ];
  for (const [from, to] of cases) {
    const lead = from.length - to.length;
    const axes = from.map((_, i) => i).filter((i) =>
      i < lead || (to[i - lead] === 1 && from[i] !== 1)
    );
    await checkOp({
      name: `sumTo [${to}]`,
      inputs: [{ shape: from }],
      gpu: (x) => nn.sumTo(x, to),
      ref: reduceRef(from, axes, sumOf),
    });
  }
});

/** Float64 sum of x (every element), for long reductions. */
function sum64(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s;
}

Deno.test("sum and mean of 1<<20 elements to a scalar match a float64 sum", async () => {
  await initGpu();
  const n = 1 << 20;
  const data = randu(n, RUN_SEED + 1, 0, 1);
  const expected = sum64(data);
  const [s, m] = await tidy(() => {
    const x = tensor(Float32Array.from(data), [n]);
    return [nn.sum(x), nn.mean(x)];
  });
  // A naive sequential f32 sum of 2^20 values near 0.5 is off by ~1e-4 relative; compensated
  // and pairwise sums stay within a few f32 ulps.
  assertClose(await s.read(), [expected], { rtol: 2e-6, atol: 0, what: "sum 1<<20" });
  assertClose(await m.read(), [expected / n], { rtol: 2e-6, atol: 0, what: "mean 1<<20" });
  s.dispose();
  m.dispose();
});

Deno.test("long reductions over contiguous and strided axes (chunked passes)", async () => {
  await initGpu();
  // [shape, axes]: long innermost run, long outer (strided) run, a run over 65535 elements with
  // wraps (per-channel sums of NCHW), and a reduction whose kept axis is innermost.
  const cases: [number[], number[]][] = [
    [[3, 70001], [1]],
    [[70001, 3], [0]],
    [[2, 3, 129, 257], [0, 2, 3]],
    [[5, 300, 7], [1]],
    [[9, 8000, 11], [0, 1]],
  ];
  for (const [shape, axes] of cases) {
    const data = randu(numel(shape), RUN_SEED + shape[0], -1, 3);
    const expected = reduceRef(shape, axes, sumOf)(data);
    const expMean = reduceRef(shape, axes, meanOf)(data);
    const expVar = reduceRef(shape, axes, varOf(true))(data);
    const outs = tidy(() => {
      const x = tensor(Float32Array.from(data), shape);
      return [nn.sum(x, { axes }), nn.mean(x, { axes }), nn.var(x, { axes })];
    });
    const what = `[${shape}] axes [${axes}]`;
    assertClose(await outs[0].read(), expected, { rtol: 1e-5, atol: 1e-3, what: `sum ${what}` });
    assertClose(await outs[1].read(), expMean, { rtol: 1e-5, atol: 1e-6, what: `mean ${what}` });
    assertClose(await outs[2].read(), expVar, { rtol: 1e-5, atol: 1e-6, what: `var ${what}` });
    outs.forEach((t) => t.dispose());
  }
});

Deno.test("var of 1<<20 values with a large mean is accurate (two-pass)", async () => {
  await initGpu();
  const n = 1 << 20;
  const noise = randn(n, RUN_SEED + 5);
  const data = Float64Array.from(Float32Array.from(noise, (v) => 1000 + v));
  const m = sum64(data) / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (data[i] - m) ** 2;
  const [v, s] = tidy(() => {
    const x = tensor(Float32Array.from(data), [n]);
    return [nn.var(x), nn.std(x, { unbiased: false })];
  });
  // E[x^2] - E[x]^2 in f32 would lose everything here (1e6 - 1e6); two passes keep ~5 digits.
  assertClose(await v.read(), [ss / (n - 1)], { rtol: 1e-4, atol: 0, what: "var 1<<20" });
  assertClose(await s.read(), [Math.sqrt(ss / n)], { rtol: 1e-4, atol: 0, what: "std 1<<20" });
  v.dispose();
  s.dispose();
});

Deno.test("std of a constant has a zero gradient, not NaN", async () => {
  await initGpu();
  const x = tensor([2, 2, 2, 2, 1, 2, 3, 4], [2, 4], { requiresGrad: true });
  const y = nn.std(x, { axes: 1 });
  y.backward(tensor([1, 1], [2]));
  const g = await x.grad!.read();
  const sd = Math.sqrt(5 / 3);
  const want = [0, 0, 0, 0, ...[-1.5, -0.5, 0.5, 1.5].map((d) => d / (3 * sd))];
  assertClose(g, want, { rtol: 1e-5, atol: 1e-6, what: "std gradient" });
  assertClose(await y.read(), [0, sd], { rtol: 1e-6, atol: 1e-7, what: "std" });
  x.dispose();
  y.dispose();
});

Deno.test("var and std of constant rows are exactly 0, with exactly 0 gradients", async () => {
  await initGpu();
  // Means are taken as x0 + mean(x - x0): without the shift, mean(0.1 x 5600) rounds off 0.1 and
  // the std comes out near 2e-8 (and 8e-6 for 100.3).
  for (
    const [v, shape, axes] of [
      [0.1, [2, 70, 80], [1, 2]],
      [100.3, [3, 5, 7], [0, 2]],
      [-2.7, [2900, 29], [0, 1]],
    ] as [number, number[], number[]][]
  ) {
    const x = tensor(new Float32Array(numel(shape)).fill(v), shape, { requiresGrad: true });
    const { s, va } = tidy(() => {
      const s = nn.std(x, { axes });
      const va = nn.var(x, { axes, unbiased: false });
      nn.add(s, va).backward(tensor(new Float32Array(s.size).fill(1), s.shape));
      return { s, va };
    });
    const what = `${v} over axes [${axes}] of [${shape}]`;
    const exact = { rtol: 0, atol: 0 };
    assertClose(await s.read(), new Array(s.size).fill(0), { ...exact, what: `std of ${what}` });
    assertClose(await va.read(), new Array(s.size).fill(0), { ...exact, what: `var of ${what}` });
    assertClose(await x.grad!.read(), new Array(x.size).fill(0), {
      ...exact,
      what: `grad ${what}`,
    });
    [x, s, va].forEach((t) => t.dispose());
  }
});

Deno.test("reductions over an empty axis: sum 0, mean NaN", async () => {
  await initGpu();
  const [s, m, e] = tidy(() => {
    const x = tensor(new Float32Array(0), [3, 0]);
    return [nn.sum(x, { axes: 1 }), nn.mean(x, { axes: 1 }), nn.sum(x, { axes: 0 })];
  });
  assertClose(await s.read(), [0, 0, 0], { what: "sum over an empty axis" });
  if (!(await m.read()).every(Number.isNaN)) throw new Error("mean over an empty axis is not NaN");
  if (e.shape.join() !== "0") throw new Error(`sum over axis 0 of [3,0]: shape [${e.shape}]`);
  [s, m, e].forEach((t) => t.dispose());
});

function expectError(fn: () => unknown, ...parts: string[]): void {
  let message = "";
  try {
    fn();
  } catch (e) {
    message = (e as Error).message;
  }
  for (const p of parts) {
    if (!message.includes(p)) throw new Error(`expected an error with '${p}', got '${message}'`);
  }
}

Deno.test("bad reduction arguments give errors naming axes and shapes", async () => {
  await initGpu();
  tidy(() => {
    const x = tensor(new Float32Array(24), [2, 3, 4]);
    expectError(() => nn.sum(x, { axes: 3 }), "sum", "axis 3", "[2,3,4]");
    expectError(() => nn.mean(x, { axes: [-4] }), "mean", "axis -4", "[2,3,4]");
    expectError(() => nn.sum(x, { axes: [0, -3] }), "repeated axis", "[2,3,4]");
    expectError(() => nn.var(x, { axes: [1.5] }), "var", "axis 1.5");
    const y = tensor(new Float32Array(6), [1, 6]);
    expectError(() => nn.var(y, { axes: 0 }), "var", "[1,6]", "1 element", "at least 2");
    expectError(() => nn.sumTo(x, [5, 4]), "sumTo", "[2,3,4]", "[5,4]");
  });
});
