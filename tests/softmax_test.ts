// softmax: forward against a float64 reference (max subtracted) and the gradient against finite
// differences, on fresh random inputs: row lengths 1 to 5000 (below, at and above multiples of
// the 64-wide workgroup), rank 1 to 4, 70000 rows over a 2-D grid, 1.2 million elements, other
// axes than the last, a 1e4 offset (exp would overflow without the max), -100 masked entries;
// PyTorch's torch.softmax (float64) on fixed inputs: outputs and gradients; errors.

import assert from "assert";
import { nn, tensor, tidy } from "../mod.ts";
import { assertClose, checkOp, initGpu, numel, randn, withSeed } from "./_helpers.ts";

/** Float64 softmax along `axis` of `shape`. */
function smRef(shape: number[], axis = -1) {
  const ax = axis < 0 ? axis + shape.length : axis;
  const c = shape[ax];
  const inner = numel(shape.slice(ax + 1));
  return (x: Float64Array): Float64Array => {
    const y = new Float64Array(x.length);
    for (let o = 0; o < x.length / (c * inner); o++) {
      for (let i = 0; i < inner; i++) {
        const at = (j: number) => o * c * inner + j * inner + i;
        let m = -Infinity;
        for (let j = 0; j < c; j++) m = Math.max(m, x[at(j)]);
        let s = 0;
        for (let j = 0; j < c; j++) s += Math.exp(x[at(j)] - m);
        for (let j = 0; j < c; j++) y[at(j)] = Math.exp(x[at(j)] - m) / s;
      }
    }
    return y;
  };
}

const shapeName = (s: number[]) => s.join("x");

Deno.test("softmax: last axis, rows of 1 to 5000, rank 1 to 4 (few rows: a workgroup each)", async () => {
  const shapes = [
    [1],
    [2],
    [7],
    [3, 63],
    [3, 64],
    [2, 65],
    [300, 5],
    [2, 3, 130],
    [2, 2, 3, 49],
    [3, 392],
    [1, 1000],
    [2, 5000],
    [4, 1],
  ];
  for (const shape of shapes) {
    await checkOp({
      name: `softmax ${shapeName(shape)}`,
      inputs: [{ shape }],
      gpu: (x) => nn.softmax(x),
      ref: smRef(shape),
      // Weights of 1/5000 are small: an absolute floor well below them.
      atol: 1e-6,
      rtol: 1e-4,
      gradAtol: 1e-5,
    });
  }
});

Deno.test("softmax: other axes (permuted around the last-axis kernel)", async () => {
  const cases: [number[], number][] = [[[4, 6], 0], [[2, 5, 3], 1], [[2, 5, 3], -2], [
    [3, 2, 4, 2],
    0,
  ], [[3, 4], -1]];
  for (const [shape, axis] of cases) {
    await checkOp({
      name: `softmax ${shapeName(shape)} axis ${axis}`,
      inputs: [{ shape }],
      gpu: (x) => nn.softmax(x, { axis }),
      ref: smRef(shape, axis),
      atol: 1e-6,
    });
  }
});

Deno.test("softmax: many rows (an invocation each; 2-D grids; 8.4 million elements)", async () => {
  // One invocation per row (>= 256 rows), also for long rows.
  // 4.2 million rows: a 2-D grid of 64-row workgroups (65535 per axis).
  for (const shape of [[70000, 3], [3072, 392], [300, 2000], [256, 65], [255, 65], [4200000, 2]]) {
    await checkOp({
      name: `softmax ${shapeName(shape)}`,
      inputs: [{ shape }],
      gpu: (x) => nn.softmax(x),
      ref: smRef(shape),
      atol: 1e-6,
      gradAtol: 1e-5,
      maxFd: shape[0] > 1e6 ? 2 : 8,
    });
  }
});

Deno.test("softmax: a 1e4 offset and -100 masked entries (both kernels)", async () => {
  // exp(1e4) overflows float32 (and float64): only the subtracted row max keeps it finite. Inputs
  // near 1e4 are float32 values 1e-3 apart, so x - max is exact and the result as accurate as
  // without the offset. 6 rows take a workgroup each, 300 rows an invocation each.
  for (const shape of [[6, 97], [300, 97]]) {
    const n = numel(shape);
    const noise = randn(n, 5, 3);
    for (const offset of [1e4, -1e4]) {
      await checkOp({
        name: `softmax ${shapeName(shape)} offset ${offset}`,
        inputs: [{ shape, data: noise.map((v) => offset + v) }],
        gpu: (x) => nn.softmax(x),
        ref: smRef(shape),
        atol: 1e-6,
        fdStep: 1e-8,
        maxFd: 16,
      });
    }
    // Swin's shifted-window mask: -100 added to about a third of the scores; e^-100 is about
    // 4e-44, a float32 denormal, so masked weights are 0 (as torch's float32), the rest normalised.
    const masked = noise.map((v, i) => (i * 7919) % 3 === 0 ? v - 100 : v);
    await checkOp({
      name: `softmax ${shapeName(shape)} masked -100`,
      inputs: [{ shape, data: masked }],
      gpu: (x) => nn.softmax(x),
      ref: smRef(shape),
      atol: 1e-6,
      maxFd: 16,
    });
  }
});

interface Packed {
  shape: number[];
  data: number[];
}

interface TorchCase {
  op: string;
  axis: number;
  x: Packed;
  out: Packed;
  w: Packed;
  grad_x: Packed;
}

Deno.test("softmax: against PyTorch's torch.softmax (float64)", async () => {
  await initGpu();
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/attention_torch.json", import.meta.url)),
  ) as { cases: TorchCase[] };
  const cases = fixture.cases.filter((k) => k.op === "softmax");
  assert.ok(cases.length >= 6);
  let worstY = 0;
  let worstG = 0;
  for (const k of cases) {
    const name = `softmax torch ${shapeName(k.x.shape)} axis ${k.axis}`;
    const x = tensor(Float32Array.from(k.x.data), k.x.shape, { requiresGrad: true });
    const y = tidy(() => {
      const y = nn.softmax(x, { axis: k.axis });
      y.backward(tensor(Float32Array.from(k.w.data), k.w.shape));
      return y;
    });
    try {
      const got = await y.read();
      assertClose(got, k.out.data, { rtol: 1e-5, atol: 1e-7, what: `${name} forward` });
      const g = await x.grad!.read();
      assertClose(g, k.grad_x.data, { rtol: 1e-4, atol: 1e-6, what: `${name} grad x` });
      for (let i = 0; i < got.length; i++) {
        worstY = Math.max(worstY, Math.abs(got[i] - k.out.data[i]));
        worstG = Math.max(worstG, Math.abs(g[i] - k.grad_x.data[i]));
      }
    } finally {
      x.dispose();
      y.dispose();
    }
  }
  console.log(
    `softmax vs torch: worst absolute error forward ${worstY.toExponential(2)}, ` +
      `gradient ${worstG.toExponential(2)}`,
  );
});

Deno.test("softmax: rows sum to 1, errors, empty tensors", async () => {
  await initGpu();
  const x = tensor(randn(4 * 777, 3, 10), [4, 777]);
  try {
    const y = nn.softmax(x);
    const v = await y.read();
    for (let r = 0; r < 4; r++) {
      const s = v.slice(r * 777, (r + 1) * 777).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(s - 1) < 1e-5, withSeed(`row ${r} sums to ${s}`));
    }
    y.dispose();
    assert.throws(() => nn.softmax(x, { axis: 2 }), /axis 2 is out of range for x \[4,777\]/);
    assert.throws(() => nn.softmax(x, { axis: -3 }), /axis -3 is out of range/);
    assert.throws(() => nn.softmax(x, { axis: 0.5 }), /axis 0.5 is out of range/);
    const e = nn.softmax(tensor(new Float32Array(0), [0, 3]));
    assert.deepEqual(e.shape, [0, 3]);
    e.dispose();
  } finally {
    x.dispose();
  }
});
