// batchNorm2d (inference form) and foldBatchNorm: forward against a float64 reference, the
// gradients of x, weight and bias against finite differences (2-D, 4-D and 5-D inputs, odd
// sizes, planes longer than one kernel segment, channel counts that are not multiples of 4), the
// backward's three paths (x alone, weight alone, both), constants that get no gradient, errors;
// the folded convolution against the convolution then the batch norm (values and input
// gradients) and the folded parameters against a float64 reference.

import assert from "assert";
import { nn, type Tensor, tensor, tidy } from "../mod.ts";
import {
  assertClose,
  checkOp,
  familyTest,
  initGpu,
  numel,
  randn,
  randu,
  RUN_SEED,
  withSeed,
} from "./_helpers.ts";

/**
 * Float64 batch norm over `[N, C, ...]`: `(x - mean) / sqrt(var + eps) * weight + bias` per
 * channel; `weight` and `bias` may be absent (ones and zeros).
 */
function bnRef(shape: number[], eps: number) {
  const [n, c] = shape;
  const plane = numel(shape.slice(2));
  return (
    x: Float64Array,
    mean: Float64Array,
    vr: Float64Array,
    weight?: Float64Array,
    bias?: Float64Array,
  ): Float64Array => {
    const y = new Float64Array(x.length);
    for (let i = 0; i < n; i++) {
      for (let ch = 0; ch < c; ch++) {
        const scale = (weight ? weight[ch] : 1) / Math.sqrt(vr[ch] + eps);
        const shift = bias ? bias[ch] : 0;
        const base = (i * c + ch) * plane;
        for (let j = base; j < base + plane; j++) y[j] = (x[j] - mean[ch]) * scale + shift;
      }
    }
    return y;
  };
}

// [N, C, ...]: 4-D with odd sizes, C = 5 and 7; a plane of 143 elements (four 32-element kernel
// segments and a partial one); 2-D [N, C]; 5-D [N, C, T, H, W]; one-pixel planes.
const SHAPES: number[][] = [
  [2, 3, 7, 5],
  [1, 5, 4, 9],
  [2, 7, 13, 11],
  [3, 6],
  [2, 3, 3, 4, 5],
  [3, 2, 1, 1],
];

const shapeName = (s: number[]) => s.join("x");

Deno.test("batchNorm2d: forward and gradients of x, weight and bias", async () => {
  for (const shape of SHAPES) {
    for (const eps of [1e-5, 0.1]) {
      const c = shape[1];
      await checkOp({
        name: `batchNorm2d ${shapeName(shape)} eps ${eps}`,
        inputs: [
          { shape },
          { shape: [c], grad: false }, // running mean
          { shape: [c], range: [0.2, 2], grad: false }, // running variance
          { shape: [c] },
          { shape: [c] },
        ],
        gpu: (x, mean, vr, weight, bias) =>
          nn.batchNorm2d(x, { weight, bias, runningMean: mean, runningVar: vr, eps }),
        ref: bnRef(shape, eps),
      });
    }
  }
});

Deno.test("batchNorm2d: without weight and bias (affine=False), default eps", async () => {
  for (const shape of SHAPES) {
    const c = shape[1];
    await checkOp({
      name: `batchNorm2d ${shapeName(shape)} no affine`,
      inputs: [
        { shape },
        { shape: [c], grad: false },
        { shape: [c], range: [0.2, 2], grad: false },
      ],
      gpu: (x, mean, vr) => nn.batchNorm2d(x, { runningMean: mean, runningVar: vr }),
      ref: bnRef(shape, 1e-5),
    });
  }
});

Deno.test("batchNorm2d: the backward's paths (x alone, weight alone, bias alone)", async () => {
  // Only x requires a gradient: the input-gradient kernel alone (a frozen victim under attack).
  // Only the weight, or only the bias: no input gradient is written.
  const cases: [string, boolean, boolean, boolean][] = [
    ["x only", true, false, false],
    ["weight only", false, true, false],
    ["bias only", false, false, true],
    ["x and bias", true, false, true],
  ];
  for (const shape of [[2, 5, 6, 7], [4, 9]]) {
    const c = shape[1];
    for (const [what, gx, gw, gb] of cases) {
      await checkOp({
        name: `batchNorm2d ${shapeName(shape)} ${what}`,
        inputs: [
          { shape, grad: gx },
          { shape: [c], grad: false },
          { shape: [c], range: [0.2, 2], grad: false },
          { shape: [c], grad: gw },
          { shape: [c], grad: gb },
        ],
        gpu: (x, mean, vr, weight, bias) =>
          nn.batchNorm2d(x, { weight, bias, runningMean: mean, runningVar: vr, eps: 1e-3 }),
        ref: bnRef(shape, 1e-3),
      });
    }
  }
});

Deno.test("batchNorm2d: the running statistics are constants, even when they require a gradient", async () => {
  await initGpu();
  const shape = [2, 3, 4, 5];
  const x = tensor(Float32Array.from(randn(numel(shape), RUN_SEED + 1)), shape, {
    requiresGrad: true,
  });
  const mean = tensor(Float32Array.from(randn(3, RUN_SEED + 2)), [3], { requiresGrad: true });
  const vr = tensor(Float32Array.from(randu(3, RUN_SEED + 3, 0.5, 2)), [3], {
    requiresGrad: true,
  });
  tidy(() => {
    const y = nn.batchNorm2d(x, { runningMean: mean, runningVar: vr });
    y.backward(tensor(new Float32Array(y.size).fill(1), y.shape));
  });
  try {
    assert.ok(x.grad, "x got no gradient");
    assert.equal(mean.grad, null, "a gradient reached the running mean");
    assert.equal(vr.grad, null, "a gradient reached the running variance");
  } finally {
    [x, mean, vr].forEach((t) => t.dispose());
  }
});

Deno.test("batchNorm2d: more (n, c) planes than one row of workgroups", async () => {
  // 2 x 40000 one-element planes: 80000 segments, a 2-D grid of workgroups.
  const shape = [2, 40000];
  await checkOp({
    name: "batchNorm2d 2x40000",
    inputs: [
      { shape },
      { shape: [40000], grad: false },
      { shape: [40000], range: [0.2, 2], grad: false },
      { shape: [40000] },
      { shape: [40000] },
    ],
    gpu: (x, mean, vr, weight, bias) =>
      nn.batchNorm2d(x, { weight, bias, runningMean: mean, runningVar: vr }),
    ref: bnRef(shape, 1e-5),
    maxFd: 16,
  });
});

Deno.test("batchNorm2d and foldBatchNorm: errors name the shapes", async () => {
  await initGpu();
  const x = tensor(new Float32Array(2 * 3 * 4 * 4), [2, 3, 4, 4]);
  const c3 = tensor([1, 1, 1]);
  const c4 = tensor([1, 1, 1, 1]);
  const w = tensor(new Float32Array(4 * 3 * 3 * 3), [4, 3, 3, 3]);
  try {
    assert.throws(
      () => nn.batchNorm2d(x, { runningMean: c4, runningVar: c3 }),
      /batchNorm2d: runningMean \[4\] must be \[3\] for x \[2,3,4,4\] \(3 channels\)/,
    );
    assert.throws(
      () => nn.batchNorm2d(x, { runningMean: c3, runningVar: c3, weight: c4 }),
      /weight \[4\] must be \[3\]/,
    );
    assert.throws(
      () => nn.batchNorm2d(x, { runningMean: c3, runningVar: c3, eps: -1 }),
      /eps must be a finite number >= 0/,
    );
    assert.throws(
      () => nn.batchNorm2d(c3, { runningMean: c3, runningVar: c3 }),
      /x must be \[N, C, \.\.\.\], got \[3\]/,
    );
    assert.throws(
      () => nn.foldBatchNorm({ weight: w }, { runningMean: c3, runningVar: c3 }),
      /foldBatchNorm: runningMean \[3\] must be \[4\] for the convolution's weight \[4,3,3,3\]/,
    );
    assert.throws(
      () => nn.foldBatchNorm({ weight: w, bias: c3 }, { runningMean: c4, runningVar: c4 }),
      /the convolution's bias \[3\] must be \[4\]/,
    );
  } finally {
    [x, c3, c4, w].forEach((t) => t.dispose());
  }
});

// ---- foldBatchNorm ----

interface FoldCase {
  n: number;
  cin: number;
  cout: number;
  h: number;
  w: number;
  k: number;
  stride: number;
  padding: number;
  convBias: boolean;
  affine: boolean;
  eps: number;
}

// ResNet-50's geometries (the 7x7 stride-2 stem, the 1x1 stride-2 downsample, the bottleneck's
// 3x3 stride 2 and 1x1 stride 1), with and without a convolution bias or affine parameters.
const FOLD_CASES: FoldCase[] = [
  {
    n: 2,
    cin: 3,
    cout: 6,
    h: 13,
    w: 11,
    k: 7,
    stride: 2,
    padding: 3,
    convBias: false,
    affine: true,
    eps: 1e-5,
  },
  {
    n: 1,
    cin: 7,
    cout: 10,
    h: 9,
    w: 8,
    k: 1,
    stride: 2,
    padding: 0,
    convBias: false,
    affine: true,
    eps: 1e-5,
  },
  {
    n: 2,
    cin: 5,
    cout: 5,
    h: 7,
    w: 7,
    k: 3,
    stride: 2,
    padding: 1,
    convBias: true,
    affine: true,
    eps: 1e-3,
  },
  {
    n: 1,
    cin: 6,
    cout: 3,
    h: 5,
    w: 6,
    k: 1,
    stride: 1,
    padding: 0,
    convBias: true,
    affine: false,
    eps: 0.1,
  },
];

const foldName = (f: FoldCase) =>
  `${f.cin}->${f.cout} k${f.k} s${f.stride} p${f.padding}` +
  `${f.convBias ? " conv bias" : ""}${f.affine ? "" : " no affine"} eps ${f.eps}`;

familyTest(
  "foldBatchNorm: the folded conv2d equals conv2d then batchNorm2d (values and x gradients)",
  async () => {
    for (const [i, f] of FOLD_CASES.entries()) {
      const seed = RUN_SEED + 100 * i;
      const xShape = [f.n, f.cin, f.h, f.w];
      const wShape = [f.cout, f.cin, f.k, f.k];
      const xData = randn(numel(xShape), seed);
      const wData = randn(numel(wShape), seed + 1, 0.3);
      const bData = randn(f.cout, seed + 2);
      const mean = randn(f.cout, seed + 3);
      const vr = randu(f.cout, seed + 4, 0.2, 2);
      const gamma = randn(f.cout, seed + 5);
      const beta = randn(f.cout, seed + 6);
      const t = (d: Float64Array, shape: number[], requiresGrad = false) =>
        tensor(Float32Array.from(d), shape, { requiresGrad });
      const x = t(xData, xShape, true);
      const params = {
        weight: t(wData, wShape),
        bias: f.convBias ? t(bData, [f.cout]) : undefined,
      };
      const bn = {
        runningMean: t(mean, [f.cout]),
        runningVar: t(vr, [f.cout]),
        weight: f.affine ? t(gamma, [f.cout]) : undefined,
        bias: f.affine ? t(beta, [f.cout]) : undefined,
        eps: f.eps,
      };
      const geometry = { stride: f.stride, padding: f.padding };
      const run = (fn: () => Tensor) => {
        x.grad = null;
        return tidy(() => {
          const y = fn();
          y.backward(t(randn(y.size, seed + 7), [...y.shape]));
          return { y, g: x.grad!.keep() };
        });
      };
      const folded = nn.foldBatchNorm(params, bn);
      const pair = run(() =>
        nn.batchNorm2d(nn.conv2d(x, params.weight, params.bias, geometry), bn)
      );
      const fused = run(() => nn.conv2d(x, folded.weight, folded.bias, geometry));
      try {
        // The folded parameters against float64.
        const per = f.cin * f.k * f.k;
        const wRef = new Float64Array(wData.length);
        const bRef = new Float64Array(f.cout);
        for (let o = 0; o < f.cout; o++) {
          const s = (f.affine ? gamma[o] : 1) / Math.sqrt(vr[o] + f.eps);
          for (let j = o * per; j < (o + 1) * per; j++) wRef[j] = wData[j] * s;
          bRef[o] = ((f.convBias ? bData[o] : 0) - mean[o]) * s + (f.affine ? beta[o] : 0);
        }
        const tag = foldName(f);
        assertClose(await folded.weight.read(), wRef, {
          rtol: 1e-6,
          atol: 1e-7,
          what: `${tag}: folded weight`,
        });
        assertClose(await folded.bias.read(), bRef, {
          rtol: 1e-6,
          atol: 1e-6,
          what: `${tag}: folded bias`,
        });
        // The two ways through the layer: the same values and input gradients in float32.
        const [yPair, yFused] = [await pair.y.read(), await fused.y.read()];
        const scale = Math.max(...yPair.map(Math.abs));
        assertClose(yFused, yPair, { rtol: 1e-5, atol: 1e-5 * scale, what: `${tag}: output` });
        const [gPair, gFused] = [await pair.g.read(), await fused.g.read()];
        const gScale = Math.max(...gPair.map(Math.abs));
        assertClose(gFused, gPair, {
          rtol: 1e-5,
          atol: 1e-5 * gScale,
          what: `${tag}: gradient of x`,
        });
        assert.ok(scale > 0.1 && gScale > 0.1, withSeed(`${tag}: degenerate data`));
      } finally {
        [x, params.weight, params.bias, bn.runningMean, bn.runningVar, bn.weight, bn.bias]
          .forEach((t) => t?.dispose());
        [folded.weight, folded.bias, pair.y, pair.g, fused.y, fused.g].forEach((t) => t.dispose());
      }
    }
  },
);

Deno.test("foldBatchNorm: results are constants, recorded in no graph", async () => {
  await initGpu();
  const w = tensor([1, 2, 3, 4], [2, 2], { requiresGrad: true });
  const stat = tensor([1, 2], [2], { requiresGrad: true });
  const f = nn.foldBatchNorm({ weight: w }, { runningMean: stat, runningVar: stat, weight: stat });
  try {
    assert.equal(f.weight.requiresGrad, false);
    assert.equal(f.bias.requiresGrad, false);
    assert.equal(f.weight.node, null);
    assert.deepEqual(f.weight.shape, [2, 2]);
    // s = gamma / sqrt(var + 1e-5) = [1, 2] / sqrt([1, 2] + 1e-5); b' = -mean * s.
    const s = [1 / Math.sqrt(1 + 1e-5), 2 / Math.sqrt(2 + 1e-5)];
    assertClose(await f.weight.read(), [s[0], 2 * s[0], 3 * s[1], 4 * s[1]], { rtol: 1e-6 });
    assertClose(await f.bias.read(), [-s[0], -2 * s[1]], { rtol: 1e-6 });
  } finally {
    [w, stat, f.weight, f.bias].forEach((t) => t.dispose());
  }
});
