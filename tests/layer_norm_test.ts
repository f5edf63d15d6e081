// layerNorm: forward against a float64 reference (two-pass statistics) and the gradients of x,
// weight and bias against finite differences, on fresh random inputs of rank 1 to 4 (row lengths
// below, at, between and above multiples of the 64-wide workgroup, a row of 1100, many short
// rows, 70000 rows over a 2-D grid), with and without weight and bias, the backward's paths (x
// alone, weight alone, bias alone), inputs with a large common offset (where E[x^2] - E[x]^2
// would fail); PyTorch's F.layer_norm (float64) on fixed inputs: outputs and gradients; errors.

import assert from "assert";
import { nn, type Tensor, tensor, tidy } from "../mod.ts";
import { assertClose, checkOp, initGpu, numel, withSeed } from "./_helpers.ts";

/** Float64 layer norm over the last axis (`c` elements), two-pass statistics. */
function lnRef(c: number, eps: number) {
  return (x: Float64Array, weight?: Float64Array, bias?: Float64Array): Float64Array => {
    const y = new Float64Array(x.length);
    for (let base = 0; base < x.length; base += c) {
      let m = 0;
      for (let j = 0; j < c; j++) m += x[base + j];
      m /= c;
      let v = 0;
      for (let j = 0; j < c; j++) v += (x[base + j] - m) ** 2;
      const rstd = 1 / Math.sqrt(v / c + eps);
      for (let j = 0; j < c; j++) {
        y[base + j] = (x[base + j] - m) * rstd * (weight ? weight[j] : 1) + (bias ? bias[j] : 0);
      }
    }
    return y;
  };
}

// Rank 1 to 4; C = 1, 5, 63, 64, 65, 130 (not a multiple of 64), 1100 (17+ strides); 300 rows.
const SHAPES: number[][] = [
  [5],
  [64],
  [3, 65],
  [300, 7],
  [2, 3, 63],
  [2, 130],
  [1, 1100],
  [2, 2, 3, 33],
  [4, 1],
];

const shapeName = (s: number[]) => s.join("x");

Deno.test("layerNorm: forward and gradients of x, weight and bias", async () => {
  for (const shape of SHAPES) {
    const c = shape[shape.length - 1];
    for (const eps of [1e-5, 0.1]) {
      await checkOp({
        name: `layerNorm ${shapeName(shape)} eps ${eps}`,
        inputs: [{ shape }, { shape: [c] }, { shape: [c] }],
        gpu: (x, weight, bias) => nn.layerNorm(x, weight, bias, { eps }),
        ref: lnRef(c, eps),
      });
    }
  }
});

Deno.test("layerNorm: without weight and bias, or with one of them, default eps", async () => {
  for (const shape of SHAPES) {
    const c = shape[shape.length - 1];
    const ref = lnRef(c, 1e-5);
    await checkOp({
      name: `layerNorm ${shapeName(shape)} no affine`,
      inputs: [{ shape }],
      gpu: (x) => nn.layerNorm(x),
      ref: (x) => ref(x),
    });
    await checkOp({
      name: `layerNorm ${shapeName(shape)} weight only`,
      inputs: [{ shape }, { shape: [c] }],
      gpu: (x, weight) => nn.layerNorm(x, weight, null),
      ref: (x, w) => ref(x, w),
    });
    await checkOp({
      name: `layerNorm ${shapeName(shape)} bias only`,
      inputs: [{ shape }, { shape: [c] }],
      gpu: (x, bias) => nn.layerNorm(x, null, bias),
      ref: (x, b) => ref(x, undefined, b),
    });
  }
});

Deno.test("layerNorm: the backward's paths (x alone, weight alone, bias alone)", async () => {
  const cases: [string, boolean, boolean, boolean][] = [
    ["x only", true, false, false],
    ["weight only", false, true, false],
    ["bias only", false, false, true],
    ["weight and bias", false, true, true],
  ];
  for (const shape of [[3, 5, 70], [9]]) {
    const c = shape[shape.length - 1];
    for (const [what, gx, gw, gb] of cases) {
      await checkOp({
        name: `layerNorm ${shapeName(shape)} ${what}`,
        inputs: [{ shape, grad: gx }, { shape: [c], grad: gw }, { shape: [c], grad: gb }],
        gpu: (x, weight, bias) => nn.layerNorm(x, weight, bias, { eps: 1e-3 }),
        ref: lnRef(c, 1e-3),
      });
    }
  }
});

Deno.test("layerNorm: more rows than one grid axis holds (65535 workgroups)", async () => {
  // 70000 rows: the rows are laid over a 2-D grid of workgroups, with idle ones at the end.
  const shape = [70000, 3];
  await checkOp({
    name: "layerNorm 70000 rows",
    inputs: [{ shape }, { shape: [3] }, { shape: [3] }],
    gpu: (x, weight, bias) => nn.layerNorm(x, weight, bias),
    ref: lnRef(3, 1e-5),
    maxFd: 16,
  });
});

Deno.test("layerNorm: a large common offset (two-pass variance)", async () => {
  // Rows of 100 + noise of 0.5: E[x^2] - E[x]^2 in float32 would be off by percents (1e4 against
  // a variance of 0.125); the two-pass form loses only the mean's rounding.
  const shape = [4, 97];
  const c = 97;
  const data = Array.from({ length: numel(shape) }, (_, i) => 100 + Math.sin(i * 1.7) * 0.5);
  await checkOp({
    name: "layerNorm offset 100",
    inputs: [{ shape, data, grad: false }, { shape: [c] }, { shape: [c] }],
    gpu: (x, weight, bias) => nn.layerNorm(x, weight, bias),
    ref: lnRef(c, 1e-5),
    rtol: 2e-3,
    atol: 2e-3,
    gradRtol: 2e-3,
    gradAtol: 2e-3,
  });
});

interface Packed {
  shape: number[];
  data: number[];
}

interface TorchCase {
  op: string;
  eps?: number;
  x: Packed;
  weight?: Packed;
  bias?: Packed;
  out: Packed;
  w: Packed;
  grad_x: Packed;
  grad_weight?: Packed;
  grad_bias?: Packed;
}

/** The worst |a - e| / max(|e|, floor) over the elements, for the report. */
function worstRel(a: ArrayLike<number>, e: ArrayLike<number>, floor: number): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - e[i]) / Math.max(Math.abs(e[i]), floor));
  }
  return worst;
}

Deno.test("layerNorm: against PyTorch's F.layer_norm (float64)", async () => {
  await initGpu();
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/layer_norm_torch.json", import.meta.url)),
  ) as { cases: TorchCase[] };
  const cases = fixture.cases.filter((k) => k.op === "layer_norm");
  assert.ok(cases.length >= 4);
  let worstY = 0;
  let worstG = 0;
  for (const k of cases) {
    const name = `layerNorm torch ${shapeName(k.x.shape)}`;
    const t = (p: Packed) => tensor(Float32Array.from(p.data), p.shape, { requiresGrad: true });
    const x = t(k.x);
    const weight = k.weight ? t(k.weight) : null;
    const bias = k.bias ? t(k.bias) : null;
    const y = tidy(() => {
      const y = nn.layerNorm(x, weight, bias, { eps: k.eps });
      y.backward(tensor(Float32Array.from(k.w.data), k.w.shape));
      return y;
    });
    try {
      const got = await y.read();
      // Forward: 1e-5 relative (with an absolute floor of 1e-6 for values near 0).
      assertClose(got, k.out.data, { rtol: 1e-5, atol: 1e-6, what: withSeed(`${name} forward`) });
      worstY = Math.max(worstY, worstRel(got, k.out.data, 1e-1));
      const pairs: [string, Tensor | null, Packed | undefined][] = [
        ["x", x, k.grad_x],
        ["weight", weight, k.grad_weight],
        ["bias", bias, k.grad_bias],
      ];
      for (const [what, input, want] of pairs) {
        if (!input || !want) continue;
        assert.ok(input.grad, `${name}: ${what} got no gradient`);
        const g = await input.grad.read();
        assertClose(g, want.data, { rtol: 1e-4, atol: 1e-5, what: `${name} grad ${what}` });
        worstG = Math.max(worstG, worstRel(g, want.data, 1e-1));
      }
    } finally {
      [x, weight, bias, y].forEach((v) => v?.dispose());
    }
  }
  console.log(
    `layerNorm vs torch: worst relative error (floor 0.1) forward ${worstY.toExponential(2)}, ` +
      `gradients ${worstG.toExponential(2)}`,
  );
});

Deno.test("layerNorm: errors", async () => {
  await initGpu();
  const x = tensor(new Float32Array(6), [2, 3]);
  const w = tensor(new Float32Array(2), [2]);
  try {
    assert.throws(() => nn.layerNorm(x, w), /weight \[2\] must be \[3\]/);
    assert.throws(() => nn.layerNorm(x, null, w), /bias \[2\] must be \[3\]/);
    assert.throws(() => nn.layerNorm(x, null, null, { eps: -1 }), /eps must be/);
    const empty = nn.layerNorm(tensor(new Float32Array(0), [0, 3]));
    assert.deepEqual(empty.shape, [0, 3]);
    empty.dispose();
  } finally {
    x.dispose();
    w.dispose();
  }
});
