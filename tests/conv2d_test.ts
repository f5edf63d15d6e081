// conv2d: forward against a float64 reference, input, weight and bias gradients against finite
// differences, on odd image sizes with several kernels, strides and paddings; shape errors.

import assert from "assert";
import { nn, type Tensor, tensor } from "../mod.ts";
import { checkOp, familyTest, initGpu } from "./_helpers.ts";

interface Case {
  n: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  kh: number;
  kw: number;
  stride: [number, number];
  padding: [number, number];
}

function outSize(c: Case): [number, number] {
  return [
    Math.floor((c.h + 2 * c.padding[0] - c.kh) / c.stride[0]) + 1,
    Math.floor((c.w + 2 * c.padding[1] - c.kw) / c.stride[1]) + 1,
  ];
}

/** Direct float64 convolution (cross-correlation with zero padding). */
function convRef(c: Case): (x: Float64Array, w: Float64Array, b?: Float64Array) => Float64Array {
  const [oh, ow] = outSize(c);
  return (x, w, b) => {
    const y = new Float64Array(c.n * c.cout * oh * ow);
    for (let n = 0; n < c.n; n++) {
      for (let co = 0; co < c.cout; co++) {
        for (let oy = 0; oy < oh; oy++) {
          for (let ox = 0; ox < ow; ox++) {
            let acc = b ? b[co] : 0;
            for (let ci = 0; ci < c.cin; ci++) {
              for (let ky = 0; ky < c.kh; ky++) {
                const iy = oy * c.stride[0] - c.padding[0] + ky;
                if (iy < 0 || iy >= c.h) continue;
                for (let kx = 0; kx < c.kw; kx++) {
                  const ix = ox * c.stride[1] - c.padding[1] + kx;
                  if (ix < 0 || ix >= c.w) continue;
                  acc += x[((n * c.cin + ci) * c.h + iy) * c.w + ix] *
                    w[((co * c.cin + ci) * c.kh + ky) * c.kw + kx];
                }
              }
            }
            y[((n * c.cout + co) * oh + oy) * ow + ox] = acc;
          }
        }
      }
    }
    return y;
  };
}

const base = { n: 2, cin: 3, h: 7, w: 5 };
const CASES: Case[] = [
  { ...base, cout: 4, kh: 3, kw: 3, stride: [1, 1], padding: [1, 1] },
  { ...base, cout: 5, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1] },
  { ...base, cout: 2, kh: 1, kw: 1, stride: [1, 1], padding: [0, 0] },
  { ...base, cout: 3, kh: 5, kw: 5, stride: [1, 1], padding: [0, 0] },
  { ...base, cout: 9, kh: 5, kw: 5, stride: [2, 2], padding: [2, 2] },
  { ...base, cout: 3, kh: 3, kw: 2, stride: [2, 1], padding: [0, 1] }, // per-axis options
  { n: 1, cin: 1, h: 6, w: 9, cout: 10, kh: 3, kw: 3, stride: [1, 1], padding: [1, 1] },
  { n: 2, cin: 4, h: 8, w: 8, cout: 12, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1] },
  // widths multiples of 4: the window kernel (forward, and input gradient at stride 1)
  { n: 2, cin: 3, h: 5, w: 12, cout: 5, kh: 3, kw: 3, stride: [1, 1], padding: [1, 1] },
  { n: 1, cin: 2, h: 9, w: 8, cout: 3, kh: 5, kw: 3, stride: [2, 1], padding: [2, 1] },
  { n: 2, cin: 2, h: 6, w: 8, cout: 3, kh: 3, kw: 3, stride: [1, 2], padding: [0, 1] },
  // stride 2 with KW 3, PW 1 and widths multiples of 4: the input gradient runs per stride phase
  { n: 1, cin: 3, h: 7, w: 16, cout: 5, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1] },
  { n: 1, cin: 2, h: 9, w: 8, cout: 3, kh: 5, kw: 3, stride: [2, 2], padding: [2, 1] },
  { n: 2, cin: 2, h: 6, w: 8, cout: 9, kh: 3, kw: 3, stride: [2, 2], padding: [0, 1] },
  // 1x1: a batched GEMM (aligned and not), and strided / padded 1x1 on the general kernels
  { n: 2, cin: 8, h: 4, w: 6, cout: 12, kh: 1, kw: 1, stride: [1, 1], padding: [0, 0] },
  { ...base, cout: 4, kh: 1, kw: 1, stride: [2, 2], padding: [1, 1] },
];

function describe(c: Case): string {
  return `conv2d ${c.cin}->${c.cout} k${c.kh}x${c.kw} s${c.stride} p${c.padding}`;
}

familyTest("conv2d with bias: forward and gradients of x, w, b", async () => {
  for (const c of CASES) {
    await checkOp({
      name: describe(c),
      inputs: [
        { shape: [c.n, c.cin, c.h, c.w] },
        { shape: [c.cout, c.cin, c.kh, c.kw] },
        { shape: [c.cout] },
      ],
      gpu: (x: Tensor, w: Tensor, b: Tensor) =>
        nn.conv2d(x, w, b, { stride: c.stride, padding: c.padding }),
      ref: convRef(c),
    });
  }
});

familyTest("conv2d without bias, number options", async () => {
  for (const c of [CASES[0], CASES[1], CASES[2]]) {
    await checkOp({
      name: describe(c) + " no bias",
      inputs: [{ shape: [c.n, c.cin, c.h, c.w] }, { shape: [c.cout, c.cin, c.kh, c.kw] }],
      gpu: (x: Tensor, w: Tensor) =>
        nn.conv2d(x, w, undefined, { stride: c.stride[0], padding: c.padding[0] }),
      ref: convRef(c),
    });
  }
});

familyTest(
  "conv2d: a larger image exercises several workgroups and weight-gradient splits",
  async () => {
    const c: Case = {
      n: 2,
      cin: 4,
      h: 37,
      w: 40,
      cout: 9,
      kh: 3,
      kw: 3,
      stride: [1, 1],
      padding: [1, 1],
    };
    await checkOp({
      name: describe(c),
      inputs: [{ shape: [c.n, c.cin, c.h, c.w] }, { shape: [c.cout, c.cin, c.kh, c.kw] }, {
        shape: [c.cout],
      }],
      gpu: (x: Tensor, w: Tensor, b: Tensor) => nn.conv2d(x, w, b, { stride: 1, padding: 1 }),
      ref: convRef(c),
      maxFd: 12,
    });
  },
);

Deno.test("conv2d: shape errors name the shapes", async () => {
  await initGpu();
  const x = tensor(new Float32Array(2 * 3 * 7 * 5), [2, 3, 7, 5]);
  const w = tensor(new Float32Array(4 * 2 * 3 * 3), [4, 2, 3, 3]);
  const w3 = tensor(new Float32Array(4 * 3 * 9 * 9), [4, 3, 9, 9]);
  const b = tensor(new Float32Array(3), [3]);
  try {
    assert.throws(
      () => nn.conv2d(x, w),
      /x \[2,3,7,5\] has 3 channels but w \[4,2,3,3\] expects 2/,
    );
    assert.throws(() => nn.conv2d(x, w3, b), /bias \[3\] must be \[4\]/);
    assert.throws(() => nn.conv2d(x, w3), /kernel 9x9 .* does not fit the input 7x5/);
    assert.throws(() => nn.conv2d(b, w), /x must be \[N, Cin, H, W\], got \[3\]/);
    assert.throws(() => nn.conv2d(x, w3, undefined, { stride: 0 }), /stride must be/);
  } finally {
    [x, w, w3, b].forEach((t) => t.dispose());
  }
});

familyTest("conv2d: more channels than one 64-wide tile, strides 1 and 2", async () => {
  const cases: Case[] = [
    { n: 1, cin: 70, h: 6, w: 5, cout: 66, kh: 3, kw: 3, stride: [1, 1], padding: [1, 1] },
    { n: 2, cin: 65, h: 7, w: 8, cout: 3, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1] },
    { n: 1, cin: 3, h: 9, w: 9, cout: 130, kh: 1, kw: 1, stride: [1, 1], padding: [0, 0] },
  ];
  for (const c of cases) {
    await checkOp({
      name: describe(c),
      inputs: [{ shape: [c.n, c.cin, c.h, c.w] }, { shape: [c.cout, c.cin, c.kh, c.kw] }, {
        shape: [c.cout],
      }],
      gpu: (x: Tensor, w: Tensor, b: Tensor) =>
        nn.conv2d(x, w, b, { stride: c.stride, padding: c.padding }),
      ref: convRef(c),
      maxFd: 12,
    });
  }
});

familyTest("conv2d: ResNet-50's geometries (stem, downsample, bottleneck), no bias", async () => {
  // torchvision's resnet50: the 7x7 stride-2 stem with padding 3, the 1x1 stride-2 downsample,
  // the bottleneck's 3x3 stride 2 (on its 3x3 convolution, "v1.5") and its 1x1 layers, at
  // reduced channels and sizes; odd and even sizes (widths multiples of 4 take the window
  // kernels), channel counts not multiples of 4.
  const cases: Case[] = [
    { n: 2, cin: 3, h: 17, w: 15, cout: 6, kh: 7, kw: 7, stride: [2, 2], padding: [3, 3] },
    { n: 1, cin: 3, h: 16, w: 16, cout: 5, kh: 7, kw: 7, stride: [2, 2], padding: [3, 3] },
    { n: 2, cin: 10, h: 9, w: 7, cout: 18, kh: 1, kw: 1, stride: [2, 2], padding: [0, 0] },
    { n: 1, cin: 12, h: 8, w: 8, cout: 20, kh: 1, kw: 1, stride: [2, 2], padding: [0, 0] },
    { n: 2, cin: 6, h: 8, w: 8, cout: 6, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1] },
    { n: 2, cin: 5, h: 7, w: 7, cout: 7, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1] },
    { n: 1, cin: 6, h: 7, w: 7, cout: 6, kh: 3, kw: 3, stride: [1, 1], padding: [1, 1] },
    { n: 2, cin: 9, h: 7, w: 7, cout: 13, kh: 1, kw: 1, stride: [1, 1], padding: [0, 0] },
  ];
  for (const c of cases) {
    await checkOp({
      name: describe(c) + " no bias",
      inputs: [{ shape: [c.n, c.cin, c.h, c.w] }, { shape: [c.cout, c.cin, c.kh, c.kw] }],
      gpu: (x: Tensor, w: Tensor) =>
        nn.conv2d(x, w, undefined, { stride: c.stride, padding: c.padding }),
      ref: convRef(c),
      maxFd: 24,
    });
  }
});

familyTest("conv2d: 8 or more input channels, not a multiple of 8, 3x3 windows", async () => {
  // Input channels over several workgroup lanes and blocks of 8 output channels, neither full.
  const cases: Case[] = [
    { n: 2, cin: 12, h: 5, w: 8, cout: 10, kh: 3, kw: 3, stride: [1, 1], padding: [1, 1] },
    { n: 1, cin: 9, h: 6, w: 16, cout: 17, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1] },
  ];
  for (const c of cases) {
    await checkOp({
      name: describe(c),
      inputs: [{ shape: [c.n, c.cin, c.h, c.w] }, { shape: [c.cout, c.cin, c.kh, c.kw] }],
      gpu: (x: Tensor, w: Tensor) =>
        nn.conv2d(x, w, undefined, { stride: c.stride, padding: c.padding }),
      ref: convRef(c),
      maxFd: 12,
    });
  }
});
