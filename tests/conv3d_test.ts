// conv3d: forward against a float64 reference, input, weight and bias gradients against finite
// differences of it, at SlowFast-R50's kernels and strides (small spatial sizes), odd sizes, N > 1,
// channel counts not multiples of 4, T = 1; every case both as routed (conv2d where the shape
// reduces to one, under both kernel families) and forced onto conv3d.wgsl's direct kernels;
// reductions split over chunks of channels; shape and binding-limit errors.

import assert from "assert";
import { nn, type Tensor, tensor } from "../mod.ts";
import { setBindingLimit } from "../src/gpu/device.ts";
import { setConv3dDirect } from "../src/tensor/ops/conv3d.ts";
import { checkOp, familyTest, initGpu } from "./_helpers.ts";

type V3 = [number, number, number];

export interface Conv3dCase {
  n: number;
  cin: number;
  t: number;
  h: number;
  w: number;
  cout: number;
  k: V3;
  stride: V3;
  padding: V3;
}

function outSize(c: Conv3dCase): V3 {
  const dims = [c.t, c.h, c.w];
  return [0, 1, 2].map((a) =>
    Math.floor((dims[a] + 2 * c.padding[a] - c.k[a]) / c.stride[a]) + 1
  ) as V3;
}

/** Direct float64 3-D convolution (cross-correlation with zero padding), as F.conv3d. */
export function conv3dRef(
  c: Conv3dCase,
): (x: Float64Array, w: Float64Array, b?: Float64Array) => Float64Array {
  const [ot, oh, ow] = outSize(c);
  const [kt, kh, kw] = c.k;
  return (x, w, b) => {
    const y = new Float64Array(c.n * c.cout * ot * oh * ow);
    let o = 0;
    for (let n = 0; n < c.n; n++) {
      for (let co = 0; co < c.cout; co++) {
        for (let zt = 0; zt < ot; zt++) {
          for (let zy = 0; zy < oh; zy++) {
            for (let zx = 0; zx < ow; zx++) {
              let acc = b ? b[co] : 0;
              for (let ci = 0; ci < c.cin; ci++) {
                for (let a = 0; a < kt; a++) {
                  const it = zt * c.stride[0] - c.padding[0] + a;
                  if (it < 0 || it >= c.t) continue;
                  for (let p = 0; p < kh; p++) {
                    const iy = zy * c.stride[1] - c.padding[1] + p;
                    if (iy < 0 || iy >= c.h) continue;
                    for (let q = 0; q < kw; q++) {
                      const ix = zx * c.stride[2] - c.padding[2] + q;
                      if (ix < 0 || ix >= c.w) continue;
                      acc += x[(((n * c.cin + ci) * c.t + it) * c.h + iy) * c.w + ix] *
                        w[(((co * c.cin + ci) * kt + a) * kh + p) * kw + q];
                    }
                  }
                }
              }
              y[o++] = acc;
            }
          }
        }
      }
    }
    return y;
  };
}

/** SlowFast-R50's layers at small sizes, and other geometries. */
const CASES: Conv3dCase[] = [
  // slow pathway stem (1,7,7) stride (1,2,2) padding (0,3,3)
  { n: 2, cin: 3, t: 3, h: 9, w: 7, cout: 5, k: [1, 7, 7], stride: [1, 2, 2], padding: [0, 3, 3] },
  // fast pathway stem (5,7,7) stride (1,2,2) padding (2,3,3)
  { n: 1, cin: 3, t: 4, h: 9, w: 8, cout: 6, k: [5, 7, 7], stride: [1, 2, 2], padding: [2, 3, 3] },
  // pointwise (1,1,1)
  { n: 2, cin: 6, t: 3, h: 5, w: 3, cout: 7, k: [1, 1, 1], stride: [1, 1, 1], padding: [0, 0, 0] },
  // pointwise shortcut with stride (1,2,2)
  { n: 2, cin: 6, t: 2, h: 5, w: 7, cout: 5, k: [1, 1, 1], stride: [1, 2, 2], padding: [0, 0, 0] },
  // temporal (3,1,1) and (5,1,1) bottleneck convolutions
  { n: 2, cin: 5, t: 4, h: 3, w: 5, cout: 6, k: [3, 1, 1], stride: [1, 1, 1], padding: [1, 0, 0] },
  { n: 1, cin: 3, t: 6, h: 4, w: 3, cout: 5, k: [5, 1, 1], stride: [1, 1, 1], padding: [2, 0, 0] },
  // spatial (1,3,3) at stride (1,1,1) and (1,2,2)
  { n: 1, cin: 4, t: 2, h: 5, w: 5, cout: 9, k: [1, 3, 3], stride: [1, 1, 1], padding: [0, 1, 1] },
  { n: 2, cin: 5, t: 3, h: 7, w: 6, cout: 3, k: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1] },
  // lateral fusion: (5,1,1) stride (4,1,1) (alpha 4) and (7,1,1) stride (8,1,1) (alpha 8)
  { n: 2, cin: 3, t: 9, h: 3, w: 4, cout: 6, k: [5, 1, 1], stride: [4, 1, 1], padding: [2, 0, 0] },
  { n: 1, cin: 2, t: 17, h: 3, w: 3, cout: 5, k: [7, 1, 1], stride: [8, 1, 1], padding: [3, 0, 0] },
  // T = 1
  { n: 2, cin: 3, t: 1, h: 6, w: 5, cout: 4, k: [1, 3, 3], stride: [1, 1, 1], padding: [0, 1, 1] },
  { n: 1, cin: 2, t: 1, h: 4, w: 5, cout: 3, k: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1] },
  // general geometries: every axis strided and padded differently
  { n: 2, cin: 3, t: 5, h: 6, w: 5, cout: 5, k: [3, 3, 3], stride: [2, 2, 1], padding: [1, 0, 1] },
  { n: 1, cin: 2, t: 4, h: 5, w: 7, cout: 3, k: [2, 3, 2], stride: [2, 1, 3], padding: [1, 1, 0] },
  { n: 2, cin: 2, t: 3, h: 4, w: 4, cout: 2, k: [1, 1, 1], stride: [2, 2, 2], padding: [1, 0, 1] },
];

function describe(c: Conv3dCase): string {
  return `conv3d ${c.cin}->${c.cout} k${c.k} s${c.stride} p${c.padding}`;
}

async function checkCase(c: Conv3dCase, bias: boolean, maxFd = 32): Promise<void> {
  const inputs = [
    { shape: [c.n, c.cin, c.t, c.h, c.w] },
    { shape: [c.cout, c.cin, ...c.k] },
    ...(bias ? [{ shape: [c.cout] }] : []),
  ];
  await checkOp({
    name: describe(c) + (bias ? "" : " no bias"),
    inputs,
    gpu: (x: Tensor, w: Tensor, b?: Tensor) =>
      nn.conv3d(x, w, b, { stride: c.stride, padding: c.padding }),
    ref: conv3dRef(c),
    maxFd,
  });
}

async function direct(fn: () => Promise<void>): Promise<void> {
  const before = setConv3dDirect(true);
  try {
    await fn();
  } finally {
    setConv3dDirect(before);
  }
}

familyTest("conv3d as routed (conv2d where exact): forward and gradients of x, w, b", async () => {
  for (const [i, c] of CASES.entries()) await checkCase(c, i % 3 !== 2);
});

Deno.test("conv3d on conv3d.wgsl's direct kernels: forward and gradients of x, w, b", async () => {
  await direct(async () => {
    for (const [i, c] of CASES.entries()) await checkCase(c, i % 3 !== 1);
  });
});

Deno.test("conv3d direct: number options, and reductions split over channel chunks", async () => {
  await direct(async () => {
    // Number options for all axes.
    await checkOp({
      name: "conv3d k3 s2 p1 as numbers",
      inputs: [{ shape: [1, 2, 5, 5, 4] }, { shape: [3, 2, 3, 3, 3] }],
      gpu: (x: Tensor, w: Tensor) => nn.conv3d(x, w, undefined, { stride: 2, padding: 1 }),
      ref: conv3dRef({
        n: 1,
        cin: 2,
        t: 5,
        h: 5,
        w: 4,
        cout: 3,
        k: [3, 3, 3],
        stride: [2, 2, 2],
        padding: [1, 1, 1],
      }),
    });
    // (5,7,7): 57 channels per invocation stay within lavapipe's loop limit, so 60 input
    // channels take two forward layers and 60 output channels two input-gradient layers.
    const base = { t: 2, h: 5, w: 4, k: [5, 7, 7] as V3, stride: [1, 2, 2] as V3 };
    await checkCase({ ...base, n: 1, cin: 60, cout: 3, padding: [2, 3, 3] }, true, 12);
    await checkCase({ ...base, n: 1, cin: 2, cout: 60, padding: [2, 3, 3] }, false, 12);
  });
});

Deno.test("conv3d: shape, option and binding-limit errors name the shapes", async () => {
  await initGpu();
  const x = tensor(new Float32Array(2 * 3 * 4 * 5 * 5), [2, 3, 4, 5, 5]);
  const w = tensor(new Float32Array(4 * 2 * 3 * 3 * 3), [4, 2, 3, 3, 3]);
  const w9 = tensor(new Float32Array(4 * 3 * 5 * 9 * 9), [4, 3, 5, 9, 9]);
  const w3 = tensor(new Float32Array(4 * 3 * 3 * 3 * 3), [4, 3, 3, 3, 3]);
  const b = tensor(new Float32Array(3), [3]);
  try {
    assert.throws(
      () => nn.conv3d(x, w),
      /x \[2,3,4,5,5\] has 3 channels but w \[4,2,3,3,3\] expects 2/,
    );
    assert.throws(() => nn.conv3d(x, w9, b), /bias \[3\] must be \[4\]/);
    assert.throws(() => nn.conv3d(x, w9), /kernel 5x9x9 .* does not fit the input 4x5x5/);
    assert.throws(() => nn.conv3d(b, w), /x must be \[N, Cin, T, H, W\], got \[3\]/);
    assert.throws(() => nn.conv3d(x, w3, undefined, { stride: 0 }), /stride must be/);
    assert.throws(
      () => nn.conv3d(x, w3, undefined, { padding: [1, 1] as unknown as [1, 1, 1] }),
      /padding must be/,
    );
    const before = setBindingLimit(1024);
    try {
      assert.throws(
        () => nn.conv3d(x, w3, undefined, { padding: 1 }),
        /conv3d: the input \[2,3,4,5,5\] \(2400 bytes\) exceed one binding's 1024 bytes \(x \[2,3,4,5,5\], w \[4,3,3,3,3\]/,
      );
    } finally {
      setBindingLimit(before);
    }
  } finally {
    [x, w, w9, w3, b].forEach((t) => t.dispose());
  }
});
