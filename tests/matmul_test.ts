// matmul and linear: forward against float64 references, gradients against finite differences,
// on odd and vec4-aligned sizes, every transpose combination, batched and broadcast batches.

import assert from "assert";
import { nn, type Tensor, tensor } from "../mod.ts";
import { checkOp, familyTest, initGpu, numel } from "./_helpers.ts";

/** Reference C = op(A) op(B) for batched operands (batch axes broadcast). */
function matmulRef(
  sa: number[],
  sb: number[],
  transA = false,
  transB = false,
): (a: Float64Array, b: Float64Array) => Float64Array {
  const [ar, ac] = sa.slice(-2);
  const [br, bc] = sb.slice(-2);
  const [m, k] = transA ? [ac, ar] : [ar, ac];
  const n = transB ? br : bc;
  const ba = sa.slice(0, -2);
  const bb = sb.slice(0, -2);
  const rank = Math.max(ba.length, bb.length);
  const pa = [...Array(rank - ba.length).fill(1), ...ba];
  const pb = [...Array(rank - bb.length).fill(1), ...bb];
  const bs = pa.map((d, i) => Math.max(d, pb[i]));
  const batch = numel(bs);
  return (a, b) => {
    const c = new Float64Array(batch * m * n);
    for (let z = 0; z < batch; z++) {
      let rem = z, za = 0, zb = 0, sta = 1, stb = 1;
      for (let i = rank - 1; i >= 0; i--) {
        const ci = rem % bs[i];
        rem = Math.floor(rem / bs[i]);
        za += (pa[i] === 1 ? 0 : ci) * sta;
        zb += (pb[i] === 1 ? 0 : ci) * stb;
        sta *= pa[i];
        stb *= pb[i];
      }
      const oa = za * m * k;
      const ob = zb * k * n;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let q = 0; q < k; q++) {
            const av = transA ? a[oa + q * m + i] : a[oa + i * k + q];
            const bv = transB ? b[ob + j * k + q] : b[ob + q * n + j];
            s += av * bv;
          }
          c[z * m * n + i * n + j] = s;
        }
      }
    }
    return c;
  };
}

/** Shapes [a, b] for C = op(A) op(B) with A' [m,k], B' [k,n] and the given batch axes. */
function shapes(
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
  batchA: number[] = [],
  batchB: number[] = [],
): [number[], number[]] {
  return [
    [...batchA, ...(transA ? [k, m] : [m, k])],
    [...batchB, ...(transB ? [n, k] : [k, n])],
  ];
}

const SIZES: [number, number, number][] = [
  [7, 5, 3], // odd everywhere: scalar loads
  [33, 17, 9],
  [12, 8, 20], // multiples of 4: vec4 loads in every layout
  [1, 3, 1],
];

for (const transA of [false, true]) {
  for (const transB of [false, true]) {
    familyTest(`matmul transA=${transA} transB=${transB}: forward and gradient`, async () => {
      for (const [m, k, n] of SIZES) {
        const [sa, sb] = shapes(m, k, n, transA, transB);
        await checkOp({
          name: "matmul",
          inputs: [{ shape: sa }, { shape: sb }],
          gpu: (a: Tensor, b: Tensor) => nn.matmul(a, b, { transA, transB }),
          ref: matmulRef(sa, sb, transA, transB),
        });
      }
    });
  }
}

familyTest("matmul: batched, equal and broadcast batch axes", async () => {
  const cases: [number[], number[], boolean, boolean][] = [
    [[3, 7, 5], [3, 5, 6], false, false], // equal batches, odd sizes
  ];
  cases.push([[2, 3, 8, 4], [2, 3, 4, 12], false, false]); // vec4 path, 2 batch axes
  cases.push([[4, 5, 7], [7, 3], false, false]); // b broadcast
  cases.push([[7, 5], [3, 7, 6], true, false]); // a broadcast, a transposed
  cases.push([[2, 1, 4, 5], [3, 6, 5], false, true]); // partial broadcast both ways
  for (const [sa, sb, transA, transB] of cases) {
    await checkOp({
      name: "matmul batched",
      inputs: [{ shape: sa }, { shape: sb }],
      gpu: (a: Tensor, b: Tensor) => nn.matmul(a, b, { transA, transB }),
      ref: matmulRef(sa, sb, transA, transB),
    });
  }
});

familyTest("matmul: larger aligned product stays accurate", async () => {
  const [sa, sb] = shapes(20, 36, 136, false, false);
  await checkOp({
    name: "matmul large",
    inputs: [{ shape: sa }, { shape: sb }],
    gpu: (a: Tensor, b: Tensor) => nn.matmul(a, b),
    ref: matmulRef(sa, sb),
    maxFd: 16,
  });
});

Deno.test("matmul and linear: shape errors name the shapes", async () => {
  await initGpu();
  const x = tensor(new Float32Array(6), [2, 3]);
  const y = tensor(new Float32Array(8), [4, 2]);
  const v = tensor(new Float32Array(3), [3]);
  try {
    assert.throws(
      () => nn.matmul(x, y),
      /inner sizes differ: a \[2,3\] has K=3, b \[4,2\] has K=4/,
    );
    assert.throws(() => nn.matmul(x, v), /at least 2 axes.*\[3\]/);
    assert.throws(
      () =>
        nn.matmul(tensor(new Float32Array(12), [2, 2, 3]), tensor(new Float32Array(27), [3, 3, 3])),
      /batch axes of a \[2,2,3\] and b \[3,3,3\] do not broadcast/,
    );
    assert.throws(() => nn.linear(x, y), /x \[2,3\] has 3 input features, w \[4,2\] expects 2/);
    assert.throws(
      () => nn.linear(x, tensor(new Float32Array(12), [4, 3]), v),
      /bias \[3\] must be \[4\] for w \[4,3\]/,
    );
  } finally {
    x.dispose();
    y.dispose();
    v.dispose();
  }
});

function linearRef(
  rows: number,
  inF: number,
  outF: number,
  withBias: boolean,
): (x: Float64Array, w: Float64Array, b?: Float64Array) => Float64Array {
  return (x, w, b) => {
    const y = new Float64Array(rows * outF);
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < outF; o++) {
        let s = withBias ? b![o] : 0;
        for (let i = 0; i < inF; i++) s += x[r * inF + i] * w[o * inF + i];
        y[r * outF + o] = s;
      }
    }
    return y;
  };
}

familyTest("linear: with and without bias, forward and gradients", async () => {
  const cases: [number[], number, number][] = [
    [[5, 7], 7, 3],
    [[2, 3, 9], 9, 5],
    [[6, 16], 16, 12],
    [[3], 3, 1],
  ];
  for (const [xs, inF, outF] of cases) {
    const rows = numel(xs) / inF;
    await checkOp({
      name: "linear+bias",
      inputs: [{ shape: xs }, { shape: [outF, inF] }, { shape: [outF] }],
      gpu: (x: Tensor, w: Tensor, b: Tensor) => nn.linear(x, w, b),
      ref: linearRef(rows, inF, outF, true),
    });
    await checkOp({
      name: "linear",
      inputs: [{ shape: xs }, { shape: [outF, inF] }],
      gpu: (x: Tensor, w: Tensor) => nn.linear(x, w),
      ref: linearRef(rows, inF, outF, false),
    });
  }
});
