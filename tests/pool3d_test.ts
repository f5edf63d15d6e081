// maxPool3d and avgPool3d: forward against float64 references and gradients against finite
// differences, at SlowFast's stem pool and head pools, odd shapes, N > 1, T = 1, padding and
// strides per axis; ties; option errors.

import assert from "assert";
import { nn, tensor } from "../mod.ts";
import { checkOp, initGpu } from "./_helpers.ts";

type V3 = [number, number, number];
type Dims = [number, number, number, number, number];

interface Cfg {
  kernel: V3;
  stride: V3;
  padding: V3;
}

/** Float64 windowed 3-D pooling: `reduce` gets the window's values, padding as `padValue`. */
function pool3dRef(
  [n, ch, t, h, w]: Dims,
  cfg: Cfg,
  padValue: number,
  reduce: (vals: number[]) => number,
): (x: Float64Array) => Float64Array {
  const dims = [t, h, w];
  const [ot, oh, ow] = dims.map((d, i) =>
    Math.floor((d + 2 * cfg.padding[i] - cfg.kernel[i]) / cfg.stride[i]) + 1
  );
  return (x) => {
    const y = new Float64Array(n * ch * ot * oh * ow);
    let o = 0;
    for (let p = 0; p < n * ch; p++) {
      for (let zt = 0; zt < ot; zt++) {
        for (let zy = 0; zy < oh; zy++) {
          for (let zx = 0; zx < ow; zx++) {
            const vals: number[] = [];
            for (let a = 0; a < cfg.kernel[0]; a++) {
              for (let b = 0; b < cfg.kernel[1]; b++) {
                for (let c = 0; c < cfg.kernel[2]; c++) {
                  const it = zt * cfg.stride[0] - cfg.padding[0] + a;
                  const iy = zy * cfg.stride[1] - cfg.padding[1] + b;
                  const ix = zx * cfg.stride[2] - cfg.padding[2] + c;
                  const inside = it >= 0 && it < t && iy >= 0 && iy < h && ix >= 0 && ix < w;
                  vals.push(inside ? x[((p * t + it) * h + iy) * w + ix] : padValue);
                }
              }
            }
            y[o++] = reduce(vals);
          }
        }
      }
    }
    return y;
  };
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const insideMean = (v: number[]) => mean(v.filter((x) => !Number.isNaN(x)));

const name = (c: Cfg) => `k${c.kernel} s${c.stride} p${c.padding}`;

const MAX_CASES: [Cfg, Dims[]][] = [
  [{ kernel: [3, 1, 2], stride: [1, 1, 1], padding: [0, 0, 0] }, [[1, 2, 4, 3, 5]]],
  [{ kernel: [2, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1] }, [[2, 2, 3, 5, 6]]],
  // SlowFast's stem pool (both pathways).
  [{ kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1] }, [[2, 3, 3, 7, 6], [
    1,
    2,
    1,
    9,
    8,
  ]]],
  [{ kernel: [2, 3, 3], stride: [2, 2, 1], padding: [1, 1, 0] }, [[2, 2, 5, 6, 5], [
    1,
    3,
    4,
    5,
    7,
  ]]],
  [{ kernel: [3, 2, 2], stride: [1, 2, 2], padding: [1, 0, 1] }, [[1, 2, 4, 5, 6]]],
  [{ kernel: [3, 1, 1], stride: [2, 1, 1], padding: [1, 0, 0] }, [[2, 3, 7, 2, 3]]],
  [{ kernel: [2, 2, 2], stride: [2, 2, 2], padding: [0, 0, 0] }, [[1, 1, 2, 4, 4], [
    2,
    3,
    5,
    5,
    7,
  ]]],
];

const AVG_CASES: [Cfg, Dims[]][] = [
  [{ kernel: [3, 1, 2], stride: [1, 1, 1], padding: [0, 0, 0] }, [[1, 2, 4, 3, 5]]],
  [{ kernel: [2, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1] }, [[2, 2, 3, 5, 6]]],
  // SlowFast's head pools at reduced sizes: the whole slow (8,7,7) map, a (4,7,7) window sliding
  // over T, and a global pool of a T = 1 map.
  [{ kernel: [8, 7, 7], stride: [1, 1, 1], padding: [0, 0, 0] }, [[2, 3, 8, 7, 7]]],
  [{ kernel: [4, 7, 7], stride: [1, 1, 1], padding: [0, 0, 0] }, [[1, 2, 6, 7, 7]]],
  [{ kernel: [1, 5, 3], stride: [1, 1, 1], padding: [0, 0, 0] }, [[2, 3, 1, 5, 3]]],
  [{ kernel: [2, 2, 2], stride: [2, 2, 2], padding: [0, 0, 0] }, [[2, 3, 5, 7, 6], [
    1,
    2,
    2,
    4,
    5,
  ]]],
  [{ kernel: [3, 3, 3], stride: [2, 1, 2], padding: [1, 1, 1] }, [[2, 2, 5, 6, 5]]],
  [{ kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1] }, [[2, 3, 3, 7, 6]]],
  [{ kernel: [3, 1, 1], stride: [1, 1, 1], padding: [1, 0, 0] }, [[1, 3, 4, 3, 2]]],
];

Deno.test("maxPool3d: forward and gradient", async () => {
  for (const [cfg, shapes] of MAX_CASES) {
    for (const shape of shapes) {
      // Normal draws in float32 are distinct with overwhelming probability: no ties.
      await checkOp({
        name: `maxPool3d ${name(cfg)}`,
        inputs: [{ shape }],
        gpu: (x) => nn.maxPool3d(x, cfg),
        ref: pool3dRef(shape, cfg, -Infinity, (v) => Math.max(...v)),
      });
    }
  }
});

Deno.test("avgPool3d: forward and gradient, padding counted and not", async () => {
  for (const [cfg, shapes] of AVG_CASES) {
    for (const shape of shapes) {
      await checkOp({
        name: `avgPool3d ${name(cfg)}`,
        inputs: [{ shape }],
        gpu: (x) => nn.avgPool3d(x, cfg),
        ref: pool3dRef(shape, cfg, 0, mean),
      });
      if (cfg.padding.some((p) => p > 0)) {
        await checkOp({
          name: `avgPool3d ${name(cfg)} exclude pad`,
          inputs: [{ shape }],
          gpu: (x) => nn.avgPool3d(x, { ...cfg, countIncludePad: false }),
          ref: pool3dRef(shape, cfg, NaN, insideMean),
        });
      }
    }
  }
});

Deno.test("pool3d: number options and the default stride (the kernel)", async () => {
  const shape: Dims = [2, 1, 4, 5, 6];
  const cfg: Cfg = { kernel: [2, 2, 2], stride: [2, 2, 2], padding: [0, 0, 0] };
  await checkOp({
    name: "maxPool3d kernel 2",
    inputs: [{ shape }],
    gpu: (x) => nn.maxPool3d(x, { kernel: 2 }),
    ref: pool3dRef(shape, cfg, -Infinity, (v) => Math.max(...v)),
  });
  const cfg3: Cfg = { kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1] };
  await checkOp({
    name: "avgPool3d kernel 3 stride 1 padding 1",
    inputs: [{ shape }],
    gpu: (x) => nn.avgPool3d(x, { kernel: 3, stride: 1, padding: 1 }),
    ref: pool3dRef(shape, cfg3, 0, mean),
  });
});

Deno.test("maxPool3d: ties go to the first maximum in (t, h, w) order, as PyTorch", async () => {
  await initGpu();
  // One 2x2x2 window: a larger pair at (1,0,1) and (1,1,0), then all equal.
  const cases: [number[], number[]][] = [
    [[0, 0, 0, 0, 0, 3, 3, 0], [0, 0, 0, 0, 0, 1, 0, 0]],
    [[0, 0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0]],
  ];
  for (const [vals, want] of cases) {
    const x = tensor(vals, [1, 1, 2, 2, 2], { requiresGrad: true });
    const y = nn.maxPool3d(x, { kernel: 2 });
    try {
      y.backward();
      assert.deepEqual([...await x.grad!.read()], want);
    } finally {
      x.grad?.dispose();
      y.dispose();
      x.dispose();
    }
  }
});

Deno.test("pool3d: option errors name the op, the window and the shape", async () => {
  await initGpu();
  const x = tensor(new Float32Array(2 * 3 * 4 * 5 * 5), [2, 3, 4, 5, 5]);
  const x4 = tensor(new Float32Array(3 * 4 * 5 * 5), [3, 4, 5, 5]);
  try {
    assert.throws(() => nn.maxPool3d(x4, { kernel: 2 }), /maxPool3d: expects an NCTHW tensor/);
    assert.throws(
      () => nn.avgPool3d(x, { kernel: [1, 2, 2], padding: [1, 0, 0] }),
      /avgPool3d: padding \[1,0,0\] must be at most half the kernel \[1,2,2\]/,
    );
    assert.throws(
      () => nn.maxPool3d(x, { kernel: [5, 3, 3] }),
      /maxPool3d: a 5x3x3 window does not fit the 4x5x5 input \[2,3,4,5,5\]/,
    );
    assert.throws(() => nn.avgPool3d(x, { kernel: 2, stride: 0 }), /stride must be/);
  } finally {
    x.dispose();
    x4.dispose();
  }
});
