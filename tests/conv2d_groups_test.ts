// conv2d with groups: depthwise (groups = Cin, with and without a channel multiplier) and general
// groups, forward against a float64 reference, input, weight and bias gradients against finite
// differences, on odd sizes, batches, channel counts not multiples of 4, strides 1 and 2, kernels
// 3 to 9; both kernel families; errors for bad groups; the FLOP count.

import assert from "assert";
import { nn, type Tensor, tensor } from "../mod.ts";
import { convFlops } from "../src/tensor/ops/conv.ts";
import { checkOp, familyTest, initGpu } from "./_helpers.ts";

/** One grouped convolution: x [n, cin, h, w], w [cout, cin/groups, kh, kw]. */
interface Case {
  n: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  groups: number;
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

/** Direct float64 grouped convolution (cross-correlation with zero padding), as PyTorch's. */
function groupedRef(c: Case): (x: Float64Array, w: Float64Array, b?: Float64Array) => Float64Array {
  const [oh, ow] = outSize(c);
  const cig = c.cin / c.groups;
  const cog = c.cout / c.groups;
  return (x, w, b) => {
    const y = new Float64Array(c.n * c.cout * oh * ow);
    for (let n = 0; n < c.n; n++) {
      for (let co = 0; co < c.cout; co++) {
        const g = Math.floor(co / cog);
        for (let oy = 0; oy < oh; oy++) {
          for (let ox = 0; ox < ow; ox++) {
            let acc = b ? b[co] : 0;
            for (let j = 0; j < cig; j++) {
              const ci = g * cig + j;
              for (let ky = 0; ky < c.kh; ky++) {
                const iy = oy * c.stride[0] - c.padding[0] + ky;
                if (iy < 0 || iy >= c.h) continue;
                for (let kx = 0; kx < c.kw; kx++) {
                  const ix = ox * c.stride[1] - c.padding[1] + kx;
                  if (ix < 0 || ix >= c.w) continue;
                  acc += x[((n * c.cin + ci) * c.h + iy) * c.w + ix] *
                    w[((co * cig + j) * c.kh + ky) * c.kw + kx];
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

function describe(c: Case): string {
  return `conv2d ${c.cin}->${c.cout} groups ${c.groups} k${c.kh}x${c.kw} s${c.stride} ` +
    `p${c.padding}`;
}

const dw = (
  n: number,
  cin: number,
  h: number,
  w: number,
  k: number | [number, number],
  s: number | [number, number],
  p: number | [number, number],
  m = 1,
): Case => {
  const [kh, kw] = typeof k === "number" ? [k, k] : k;
  return {
    n,
    cin,
    h,
    w,
    cout: m * cin,
    groups: cin,
    kh,
    kw,
    stride: typeof s === "number" ? [s, s] : s,
    padding: typeof p === "number" ? [p, p] : p,
  };
};

/** Depthwise: the dedicated kernel. */
const DEPTHWISE: Case[] = [
  dw(2, 5, 7, 9, 3, 1, 1), // MobileNetV2's 3x3 stride 1
  dw(2, 6, 9, 11, 3, 2, 1), // and stride 2, odd sizes
  dw(1, 3, 10, 13, 7, 1, 3), // ConvNeXt's 7x7, padding 3
  dw(2, 3, 11, 21, 7, 2, 3), // full 8-pixel segments at stride 2: every tap of every window
  dw(1, 4, 8, 8, 3, 2, 1), // even sizes, stride-2 phases of equal size
  dw(2, 3, 7, 19, 5, 1, 0), // several 8-pixel segments, no padding
  dw(1, 2, 9, 21, [3, 9], [1, 2], [1, 4]), // 9 column taps: two blocks of the weight gradient
  dw(1, 3, 9, 10, [5, 3], [2, 1], [2, 0]), // per-axis options
  dw(2, 3, 6, 7, 3, 3, 1), // stride 3: fresh windows, no slides
  dw(1, 2, 6, 23, [3, 11], 1, [1, 5]), // 11 column taps: past the forward's 16-value rows
  dw(2, 3, 7, 9, 3, 2, 1, 2), // channel multiplier 2
  dw(1, 2, 8, 11, 7, 1, 3, 3), // channel multiplier 3, 7x7
  dw(1, 1, 5, 6, 3, 1, 1), // one channel
];

/** 1 < groups < Cin: each group through the ungrouped paths. */
const GROUPED: Case[] = [
  { n: 2, cin: 4, h: 7, w: 9, cout: 6, groups: 2, kh: 3, kw: 3, stride: [1, 1], padding: [1, 1] },
  { n: 1, cin: 6, h: 9, w: 7, cout: 3, groups: 3, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1] },
  { n: 2, cin: 4, h: 5, w: 7, cout: 8, groups: 2, kh: 1, kw: 1, stride: [1, 1], padding: [0, 0] },
  { n: 2, cin: 6, h: 8, w: 8, cout: 9, groups: 3, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1] },
  { n: 1, cin: 4, h: 6, w: 12, cout: 4, groups: 2, kh: 3, kw: 3, stride: [1, 1], padding: [1, 1] },
  { n: 1, cin: 6, h: 11, w: 9, cout: 6, groups: 2, kh: 7, kw: 7, stride: [2, 2], padding: [3, 3] },
  { n: 2, cin: 6, h: 5, w: 5, cout: 3, groups: 3, kh: 1, kw: 1, stride: [2, 2], padding: [0, 0] },
];

async function check(c: Case, bias: boolean, maxFd?: number) {
  const inputs = [
    { shape: [c.n, c.cin, c.h, c.w] },
    { shape: [c.cout, c.cin / c.groups, c.kh, c.kw] },
    ...(bias ? [{ shape: [c.cout] }] : []),
  ];
  await checkOp({
    name: describe(c) + (bias ? "" : " no bias"),
    inputs,
    gpu: (x: Tensor, w: Tensor, b?: Tensor) =>
      nn.conv2d(x, w, b, { stride: c.stride, padding: c.padding, groups: c.groups }),
    ref: groupedRef(c),
    maxFd,
  });
}

familyTest("conv2d depthwise: forward and gradients of x, w, b", async () => {
  for (const c of DEPTHWISE) await check(c, true);
});

familyTest("conv2d depthwise without bias", async () => {
  for (const c of [DEPTHWISE[0], DEPTHWISE[3], DEPTHWISE[9]]) await check(c, false);
});

familyTest("conv2d groups 2 and 3: forward and gradients of x, w, b", async () => {
  for (const c of GROUPED) await check(c, true);
});

familyTest("conv2d depthwise: larger images, weight-gradient splits, 64+ channels", async () => {
  // Many (batch, row) splits of the weight gradient (added by sum), rows of several segments.
  await check(dw(3, 4, 37, 41, 3, 1, 1), true, 16);
  await check(dw(2, 5, 30, 29, 7, 2, 3), true, 16);
  // More lanes than the split target: one split per few rows.
  await check(dw(1, 70, 9, 10, 3, 2, 1), true, 16);
});

Deno.test("conv2d groups: errors name the shapes", async () => {
  await initGpu();
  const x = tensor(new Float32Array(2 * 6 * 5 * 5), [2, 6, 5, 5]);
  const w = tensor(new Float32Array(4 * 3 * 3 * 3), [4, 3, 3, 3]);
  const w5 = tensor(new Float32Array(5 * 2 * 3 * 3), [5, 2, 3, 3]);
  const wd = tensor(new Float32Array(6 * 1 * 3 * 3), [6, 1, 3, 3]);
  try {
    assert.throws(
      () => nn.conv2d(x, w, undefined, { groups: 4 }),
      /groups 4 must divide the input channels of x \[2,6,5,5\] \(6\) and the output channels of w \[4,3,3,3\] \(4\)/,
    );
    assert.throws(
      () => nn.conv2d(x, w5, undefined, { groups: 3 }),
      /groups 3 must divide .* output channels of w \[5,2,3,3\] \(5\)/,
    );
    assert.throws(
      () => nn.conv2d(x, wd, undefined, { groups: 3 }),
      /x \[2,6,5,5\] has 6 channels in 3 groups, so w \[6,1,3,3\] must have 2 \(Cin\/groups\) in its second dimension, not 1/,
    );
    // w [4,3,3,3] with groups 2 is valid (6 = 3 * 2); its output has 4 channels
    const y = nn.conv2d(x, w, undefined, { groups: 2 });
    assert.deepEqual(y.shape, [2, 4, 3, 3]);
    y.dispose();
    assert.throws(() => nn.conv2d(x, wd, undefined, { groups: 0 }), /groups must be an integer/);
    assert.throws(() => nn.conv2d(x, wd, undefined, { groups: 1.5 }), /groups must be an integer/);
    // groups 1 keeps the ungrouped message
    assert.throws(() => nn.conv2d(x, wd), /x \[2,6,5,5\] has 6 channels but w \[6,1,3,3\]/);
  } finally {
    [x, w, w5, wd].forEach((t) => t.dispose());
  }
});

Deno.test("conv2d groups: convFlops counts 2·N·Cout·OH·OW·(Cin/groups)·KH·KW per pass", async () => {
  await initGpu();
  const x = tensor(new Float32Array(2 * 6 * 8 * 8), [2, 6, 8, 8], { requiresGrad: true });
  const w = tensor(new Float32Array(12 * 2 * 3 * 3), [12, 2, 3, 3], { requiresGrad: true });
  const wd = tensor(new Float32Array(6 * 1 * 7 * 7), [6, 1, 7, 7]);
  try {
    let before = convFlops();
    const y = nn.conv2d(x, w, undefined, { stride: 2, padding: 1, groups: 3 }); // [2,12,4,4]
    assert.equal(convFlops() - before, 2 * 2 * 12 * 4 * 4 * 2 * 3 * 3);
    before = convFlops();
    y.backward(tensor(new Float32Array(y.size), y.shape));
    assert.equal(convFlops() - before, 2 * (2 * 2 * 12 * 4 * 4 * 2 * 3 * 3));
    before = convFlops();
    const yd = nn.conv2d(x, wd, undefined, { padding: 3, groups: 6 }); // [2,6,8,8]
    assert.equal(convFlops() - before, 2 * 2 * 6 * 8 * 8 * 1 * 7 * 7);
    [y, yd].forEach((t) => t.dispose());
  } finally {
    [x, w, wd].forEach((t) => t.dispose());
  }
});
