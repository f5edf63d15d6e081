// Pooling ops: windowed average and max pooling, adaptive average pooling and global mean/std
// pooling, forward against float64 CPU references and gradients against finite differences, on
// odd shapes.

import { nn, tensor, tidy } from "../mod.ts";
import { assertClose, checkOp, initGpu, numel, randn, randu, rng, RUN_SEED } from "./_helpers.ts";

type Dims = [number, number, number, number];

interface Cfg {
  kernel: number;
  stride: number;
  padding: number;
}

function outSize(n: number, c: Cfg): number {
  return Math.floor((n + 2 * c.padding - c.kernel) / c.stride) + 1;
}

/** Float64 windowed pooling: `reduce` gets the window's values, padding included as `padValue`. */
function poolRef(
  [n, ch, h, w]: Dims,
  cfg: Cfg,
  padValue: number,
  reduce: (vals: number[]) => number,
): (x: Float64Array) => Float64Array {
  const oh = outSize(h, cfg);
  const ow = outSize(w, cfg);
  return (x) => {
    const y = new Float64Array(n * ch * oh * ow);
    let o = 0;
    for (let p = 0; p < n * ch; p++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          const vals: number[] = [];
          for (let dy = 0; dy < cfg.kernel; dy++) {
            for (let dx = 0; dx < cfg.kernel; dx++) {
              const iy = oy * cfg.stride - cfg.padding + dy;
              const ix = ox * cfg.stride - cfg.padding + dx;
              const inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
              vals.push(inside ? x[p * h * w + iy * w + ix] : padValue);
            }
          }
          y[o++] = reduce(vals);
        }
      }
    }
    return y;
  };
}

const SHAPES: Dims[] = [[2, 3, 7, 5], [1, 2, 6, 9], [2, 1, 5, 4]];
const CONFIGS: Cfg[] = [
  { kernel: 2, stride: 2, padding: 0 },
  { kernel: 2, stride: 1, padding: 1 },
  { kernel: 3, stride: 2, padding: 1 },
  { kernel: 3, stride: 1, padding: 0 },
  { kernel: 3, stride: 2, padding: 0 },
  { kernel: 2, stride: 1, padding: 0 },
  // The local-normalisation window of the victims (stride 1, "same" padding): separable path.
  { kernel: 5, stride: 1, padding: 2 },
  // A 1-wide window: the direct (not separable) kernel.
  { kernel: 1, stride: 2, padding: 0 },
];

const cfgName = (c: Cfg) => `k${c.kernel} s${c.stride} p${c.padding}`;

for (const cfg of CONFIGS) {
  Deno.test(`avgPool2d ${cfgName(cfg)}: forward and gradient`, async () => {
    for (const shape of SHAPES) {
      await checkOp({
        name: `avgPool2d ${cfgName(cfg)}`,
        inputs: [{ shape }],
        gpu: (x) => nn.avgPool2d(x, cfg),
        ref: poolRef(shape, cfg, 0, (v) => v.reduce((a, b) => a + b, 0) / v.length),
      });
    }
  });

  Deno.test(`maxPool2d ${cfgName(cfg)}: forward and gradient`, async () => {
    for (const shape of SHAPES) {
      // Normal draws in float32 are distinct with overwhelming probability: no ties.
      await checkOp({
        name: `maxPool2d ${cfgName(cfg)}`,
        inputs: [{ shape }],
        gpu: (x) => nn.maxPool2d(x, cfg),
        ref: poolRef(shape, cfg, -Infinity, (v) => Math.max(...v)),
      });
    }
  });
}

Deno.test("avgPool2d countIncludePad false: forward and gradient", async () => {
  // Padding marked NaN in the reference and left out of both sum and count.
  const insideMean = (v: number[]) => {
    const inside = v.filter((x) => !Number.isNaN(x));
    return inside.reduce((a, b) => a + b, 0) / inside.length;
  };
  for (const cfg of CONFIGS.filter((c) => c.padding > 0)) {
    for (const shape of SHAPES) {
      await checkOp({
        name: `avgPool2d ${cfgName(cfg)} exclude pad`,
        inputs: [{ shape }],
        gpu: (x) => nn.avgPool2d(x, { ...cfg, countIncludePad: false }),
        ref: poolRef(shape, cfg, NaN, insideMean),
      });
    }
  }
});

Deno.test("pool2d: rectangular kernel, stride and padding", async () => {
  const shape: Dims = [2, 3, 7, 5];
  const [n, c, h, w] = shape;
  const [kh, kw, sh, sw, ph, pw] = [3, 2, 2, 1, 1, 0];
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  const ref = (pad: number, f: (v: number[]) => number) => (x: Float64Array) => {
    const y = new Float64Array(n * c * oh * ow);
    let o = 0;
    for (let p = 0; p < n * c; p++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          const vals: number[] = [];
          for (let dy = 0; dy < kh; dy++) {
            for (let dx = 0; dx < kw; dx++) {
              const iy = oy * sh - ph + dy;
              const ix = ox * sw - pw + dx;
              vals.push(iy >= 0 && iy < h && ix >= 0 && ix < w ? x[p * h * w + iy * w + ix] : pad);
            }
          }
          y[o++] = f(vals);
        }
      }
    }
    return y;
  };
  const opts = { kernel: [kh, kw], stride: [sh, sw], padding: [ph, pw] } as const;
  await checkOp({
    name: "avgPool2d 3x2",
    inputs: [{ shape }],
    gpu: (x) => nn.avgPool2d(x, opts),
    ref: ref(0, (v) => v.reduce((a, b) => a + b, 0) / v.length),
  });
  await checkOp({
    name: "maxPool2d 3x2",
    inputs: [{ shape }],
    gpu: (x) => nn.maxPool2d(x, opts),
    ref: ref(-Infinity, (v) => Math.max(...v)),
  });
});

Deno.test("maxPool2d: ties send the gradient to the first maximum, as PyTorch", async () => {
  await initGpu();
  // One 2x2 window of equal values, then a window whose maximum appears twice.
  const x = tensor([1, 1, 0, 5, 1, 1, 5, 0], [1, 1, 2, 4], { requiresGrad: true });
  const { y, g } = tidy(() => {
    const y = nn.maxPool2d(x, { kernel: 2 });
    y.backward(tensor([1, 1], [1, 1, 1, 2]));
    return { y, g: x.grad! };
  });
  assertClose(await y.read(), [1, 5], { what: "max" });
  assertClose(await g.read(), [1, 0, 0, 1, 0, 0, 0, 0], { what: "gradient" });
  x.dispose();
});

Deno.test("pool2d: invalid options throw clear errors", async () => {
  await initGpu();
  const x = tensor(new Float32Array(2 * 3 * 7 * 5), [2, 3, 7, 5]);
  const expectThrow = (fn: () => unknown, text: string) => {
    let message = "";
    try {
      fn();
    } catch (e) {
      message = (e as Error).message;
    }
    if (!message.includes(text)) throw new Error(`expected "${text}", got "${message}"`);
  };
  expectThrow(() => nn.maxPool2d(x, { kernel: 3, padding: 2 }), "at most half the kernel");
  expectThrow(() => nn.avgPool2d(x, { kernel: 9 }), "does not fit");
  expectThrow(() => nn.avgPool2d(x, { kernel: 0 }), "kernel");
  expectThrow(() => nn.maxPool2d(x.reshape([6, 7, 5]), { kernel: 2 }), "NCHW");
  x.dispose();
});

Deno.test("maxPool2d: ResNet's stem pool (3x3, stride 2, padding 1) on even and odd sizes", async () => {
  const cfg = { kernel: 3, stride: 2, padding: 1 };
  for (const shape of [[2, 5, 12, 10], [1, 3, 16, 16], [1, 6, 15, 13]] as Dims[]) {
    await checkOp({
      name: `maxPool2d ResNet stem ${shape.join("x")}`,
      inputs: [{ shape }],
      gpu: (x) => nn.maxPool2d(x, cfg),
      ref: poolRef(shape, cfg, -Infinity, (v) => Math.max(...v)),
    });
  }
});

// ---- adaptive average pooling ----

/**
 * Float64 adaptive average pooling: output (i, j) is the mean of rows
 * [floor(i*H/OH), ceil((i+1)*H/OH)) and columns [floor(j*W/OW), ceil((j+1)*W/OW)), as PyTorch.
 */
function adaptiveRef([n, c, h, w]: Dims, oh: number, ow: number) {
  const win = (o: number, nOut: number, nIn: number) => [
    Math.floor((o * nIn) / nOut),
    Math.ceil(((o + 1) * nIn) / nOut),
  ];
  return (x: Float64Array) => {
    const y = new Float64Array(n * c * oh * ow);
    for (let p = 0; p < n * c; p++) {
      for (let oy = 0; oy < oh; oy++) {
        const [y0, y1] = win(oy, oh, h);
        for (let ox = 0; ox < ow; ox++) {
          const [x0, x1] = win(ox, ow, w);
          let acc = 0;
          for (let iy = y0; iy < y1; iy++) {
            for (let ix = x0; ix < x1; ix++) acc += x[(p * h + iy) * w + ix];
          }
          y[(p * oh + oy) * ow + ox] = acc / ((y1 - y0) * (x1 - x0));
        }
      }
    }
    return y;
  };
}

Deno.test("adaptiveAvgPool2d: window bounds as PyTorch's, checked by hand", () => {
  // 7 rows into 3: [0, 3), [2, 5), [4, 7) (overlapping); 5 into 7: every row once or twice.
  // The expected values are torch's.
  const ref = adaptiveRef([1, 1, 7, 1], 3, 1);
  const x = Float64Array.from([0, 1, 2, 3, 4, 5, 6]);
  assertClose(ref(x), [1, 3, 5], { what: "7 -> 3" });
  // torch: F.adaptive_avg_pool2d(torch.arange(5.).reshape(1, 1, 5, 1), (7, 1)).
  const up = adaptiveRef([1, 1, 5, 1], 7, 1)(Float64Array.from([0, 1, 2, 3, 4]));
  assertClose(up, [0, 0.5, 1.5, 2, 2.5, 3.5, 4], { what: "5 -> 7" });
});

Deno.test("adaptiveAvgPool2d: forward and gradient", async () => {
  const cases: [Dims, number, number][] = [
    [[2, 3, 7, 5], 1, 1], // global, as ResNet's head
    [[2, 3, 7, 5], 3, 2],
    [[2, 3, 7, 5], 4, 4], // overlapping windows
    [[1, 2, 6, 9], 2, 3], // windows that tile the input exactly
    [[1, 2, 6, 9], 6, 9], // the identity
    [[2, 1, 5, 4], 7, 9], // more outputs than inputs
    [[1, 5, 13, 11], 5, 1],
    [[3, 2, 1, 6], 1, 4],
  ];
  for (const [shape, oh, ow] of cases) {
    await checkOp({
      name: `adaptiveAvgPool2d ${shape.join("x")} -> ${oh}x${ow}`,
      inputs: [{ shape }],
      gpu: (x) => nn.adaptiveAvgPool2d(x, [oh, ow]),
      ref: adaptiveRef(shape, oh, ow),
    });
  }
});

Deno.test("adaptiveAvgPool2d: one size for both axes; large planes (global and 7x7)", async () => {
  // A 1x1 output over a 200x150 plane sums 150 per row and 200 rows per column; 7x7 is
  // ResNet-50's last map from 224x224 input (here from a 97x90 one).
  const cases: [Dims, number][] = [[[1, 2, 200, 150], 1], [[2, 3, 97, 90], 7]];
  for (const [shape, size] of cases) {
    await checkOp({
      name: `adaptiveAvgPool2d ${shape.join("x")} -> ${size}`,
      inputs: [{ shape }],
      gpu: (x) => nn.adaptiveAvgPool2d(x, size),
      ref: adaptiveRef(shape, size, size),
      maxFd: 16,
    });
  }
});

Deno.test("adaptiveAvgPool2d: invalid sizes throw clear errors", async () => {
  await initGpu();
  const x = tensor(new Float32Array(2 * 3 * 7 * 5), [2, 3, 7, 5]);
  const expectThrow = (fn: () => unknown, text: string) => {
    let message = "";
    try {
      fn();
    } catch (e) {
      message = (e as Error).message;
    }
    if (!message.includes(text)) throw new Error(`expected "${text}", got "${message}"`);
  };
  expectThrow(() => nn.adaptiveAvgPool2d(x, 0), "output size 0 must be integers >= 1");
  expectThrow(() => nn.adaptiveAvgPool2d(x, [2, 1.5]), "output size");
  expectThrow(() => nn.adaptiveAvgPool2d(x.reshape([6, 7, 5]), 2), "NCHW");
  expectThrow(() => nn.adaptiveAvgPool2d(x, [40000, 2]), "at most 32768");
  x.dispose();
});

// ---- global pooling ----

function globalRef([n, c, h, w]: Dims, f: (v: Float64Array) => number) {
  return (x: Float64Array) => {
    const y = new Float64Array(n * c);
    for (let p = 0; p < n * c; p++) y[p] = f(x.subarray(p * h * w, (p + 1) * h * w));
    return y;
  };
}

const meanOf = (v: Float64Array) => v.reduce((a, b) => a + b, 0) / v.length;
const stdOf = (unbiased: boolean) => (v: Float64Array) => {
  const m = meanOf(v);
  const ss = v.reduce((a, b) => a + (b - m) ** 2, 0);
  return Math.sqrt(ss / (unbiased ? v.length - 1 : v.length));
};

// Planes of up to 64 elements take the one-invocation-per-plane kernels (7x5, 1x3, 1x1); 9x11 and
// 33x47 a 64-wide workgroup per plane (fewer, then more elements than invocations); 80x71 (above
// 4096 elements) reduce.ts's chunked mean and std.
const GLOBAL_SHAPES: Dims[] = [
  [2, 3, 7, 5],
  [2, 1, 9, 11],
  [1, 2, 33, 47],
  [1, 1, 80, 71],
  [3, 1, 1, 3],
  [2, 2, 1, 1],
];

Deno.test("globalMeanPool: forward and gradient", async () => {
  for (const shape of GLOBAL_SHAPES) {
    await checkOp({
      name: "globalMeanPool",
      inputs: [{ shape }],
      gpu: (x) => nn.globalMeanPool(x),
      ref: globalRef(shape, meanOf),
    });
  }
});

Deno.test("globalStdPool unbiased: forward and gradient", async () => {
  for (const shape of GLOBAL_SHAPES.filter((s) => s[2] * s[3] > 1)) {
    await checkOp({
      name: "globalStdPool",
      inputs: [{ shape }],
      gpu: (x) => nn.globalStdPool(x),
      ref: globalRef(shape, stdOf(true)),
    });
  }
});

Deno.test("globalStdPool biased: forward and gradient (1x1 planes give 0)", async () => {
  for (const shape of GLOBAL_SHAPES) {
    await checkOp({
      name: "globalStdPool biased",
      inputs: [{ shape }],
      gpu: (x) => nn.globalStdPool(x, { unbiased: false }),
      ref: globalRef(shape, stdOf(false)),
    });
  }
});

Deno.test("globalStdPool: 1x1 planes and constant planes", async () => {
  await initGpu();
  // Unbiased std of one element: torch gives NaN; this op throws a clear error instead.
  const one = tensor([3], [1, 1, 1, 1], { requiresGrad: true });
  let message = "";
  try {
    nn.globalStdPool(one);
  } catch (e) {
    message = (e as Error).message;
  }
  if (!message.includes("undefined") || !message.includes("unbiased: false")) {
    throw new Error(`unexpected message: ${message}`);
  }
  // Biased std of one element is 0 with gradient 0 (torch masks the 0/0).
  const r1 = tidy(() => {
    const y = nn.globalStdPool(one, { unbiased: false });
    y.backward(tensor([1], [1, 1]));
    return { y, g: one.grad! };
  });
  assertClose(await r1.y.read(), [0], { what: "1x1 std" });
  assertClose(await r1.g.read(), [0], { what: "1x1 std gradient" });
  // A constant plane: std 0 and gradient 0, not NaN.
  const flat = tensor(new Float32Array(12).fill(0.7), [1, 1, 3, 4], { requiresGrad: true });
  const r2 = tidy(() => {
    const y = nn.globalStdPool(flat);
    y.backward(tensor([2], [1, 1]));
    return { y, g: flat.grad! };
  });
  assertClose(await r2.y.read(), [0], { what: "constant std" });
  assertClose(await r2.g.read(), new Array(12).fill(0), { what: "constant std gradient" });
  // The same through the workgroup kernels (planes above 64 elements).
  const big = tensor(new Float32Array(2 * 33 * 47).fill(0.3), [1, 2, 33, 47], {
    requiresGrad: true,
  });
  const r3 = tidy(() => {
    const y = nn.globalStdPool(big);
    y.backward(tensor([1, -1], [1, 2]));
    return { y, g: big.grad! };
  });
  assertClose(await r3.y.read(), [0, 0], { what: "constant std (workgroup)" });
  assertClose(await r3.g.read(), new Array(big.size).fill(0), { what: "constant gradient (wg)" });
  // And through reduce.ts's chunked std (planes above 4096 elements).
  const huge = tensor(new Float32Array(2 * 70 * 80).fill(0.1), [2, 1, 70, 80], {
    requiresGrad: true,
  });
  const r4 = tidy(() => {
    const y = nn.globalStdPool(huge);
    y.backward(tensor([1, 2], [2, 1]));
    return { y, g: huge.grad! };
  });
  assertClose(await r4.y.read(), [0, 0], { rtol: 0, atol: 0, what: "constant std (chunked)" });
  assertClose(await r4.g.read(), new Array(huge.size).fill(0), {
    rtol: 0,
    atol: 0,
    what: "constant gradient (chunked)",
  });
  [one, flat, big, huge, r1.y, r2.y, r3.y, r4.y].forEach((t) => t.dispose());
});

Deno.test("global pools: a 128x128 plane, an offset mean, and more planes than 65535", async () => {
  await initGpu();
  for (const shape of [[1, 2, 128, 128], [1, 70000, 1, 2]] as Dims[]) {
    const data = randn(numel(shape), RUN_SEED + 5).map((v) => v + 100);
    const x = tensor(Float32Array.from(data), shape);
    const { m, s } = tidy(() => ({ m: nn.globalMeanPool(x), s: nn.globalStdPool(x) }));
    assertClose(await m.read(), globalRef(shape, meanOf)(data), {
      rtol: 1e-5,
      atol: 1e-5,
      what: `mean [${shape}]`,
    });
    assertClose(await s.read(), globalRef(shape, stdOf(true))(data), {
      rtol: 1e-4,
      atol: 1e-4,
      what: `std [${shape}]`,
    });
    [x, m, s].forEach((t) => t.dispose());
  }
});

// One plane far larger than a workgroup can walk: lavapipe ends any invocation's loops after 65535
// iterations in total, so a pool that gives one workgroup a whole plane stops early with no error
// (at 2900x2900 the old kernels gave std 0.0254 instead of 0.2887, and zero gradients at the end).
Deno.test("global pools: one 2900x2900 plane (forward and gradient, last elements included)", async () => {
  await initGpu();
  const shape: Dims = [1, 1, 2900, 2900];
  const n = numel(shape);
  const data = randu(n, RUN_SEED + 7, 0, 1);
  let m = 0;
  for (let i = 0; i < n; i++) m += data[i];
  m /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (data[i] - m) ** 2;
  const sd = Math.sqrt(ss / (n - 1));
  const gOut = 1.5;
  const x = tensor(Float32Array.from(data), shape, { requiresGrad: true });
  const std = tidy(() => {
    const y = nn.globalStdPool(x);
    y.backward(tensor([gOut], [1, 1]));
    return y;
  });
  const gStd = x.grad!.keep();
  x.grad = null;
  const mean = tidy(() => {
    const y = nn.globalMeanPool(x);
    y.backward(tensor([gOut], [1, 1]));
    return y;
  });
  assertClose(await std.read(), [sd], { rtol: 1e-5, atol: 1e-6, what: "std of 2900x2900" });
  assertClose(await mean.read(), [m], { rtol: 1e-5, atol: 1e-6, what: "mean of 2900x2900" });
  const r = rng(RUN_SEED + 8);
  const at = [0, 1, 2899, 2900, ...Array.from({ length: 2000 }, () => Math.floor(r.uniform() * n))];
  for (let i = n - 1000; i < n; i++) at.push(i);
  const gs = await gStd.read();
  const gm = await x.grad!.read();
  assertClose(
    at.map((i) => gs[i]),
    at.map((i) => gOut * (data[i] - m) / ((n - 1) * sd)),
    { rtol: 1e-4, atol: 1e-10, what: "std gradient of 2900x2900 (sampled)" },
  );
  assertClose(at.map((i) => gm[i]), at.map(() => gOut / n), {
    rtol: 1e-5,
    atol: 0,
    what: "mean gradient of 2900x2900 (sampled)",
  });
  [x, std, mean, gStd].forEach((t) => t.dispose());
});
