// depthwiseConv3d (x [N,C,T,H,W], w [C,1,KT,KH,KW], stride 1, zero padding): forward against a
// float64 reference, input, weight and bias gradients against finite differences, on odd sizes,
// batches, KT 1 to 4, paddings from 0 to past half the kernel; PyTorch's F.conv3d(groups=C)
// values and gradients from tests/fixtures/conv3d_depthwise_torch.json; errors name the shapes.

import assert from "assert";
import { type Tensor, tensor, tidy } from "../src/tensor/tensor.ts";
import { depthwiseConv3d } from "../src/tensor/ops/conv3d_depthwise.ts";
import { assertClose, checkOp, familyTest, initGpu } from "./_helpers.ts";

/** One depthwise convolution: x [n, c, t, h, w], w [c, 1, kt, kh, kw]. */
interface Case {
  n: number;
  c: number;
  t: number;
  h: number;
  w: number;
  k: [number, number, number];
  pad: [number, number, number];
}

function outSize(c: Case): [number, number, number] {
  return [
    c.t + 2 * c.pad[0] - c.k[0] + 1,
    c.h + 2 * c.pad[1] - c.k[1] + 1,
    c.w + 2 * c.pad[2] - c.k[2] + 1,
  ];
}

/** Direct float64 depthwise 3-D convolution (cross-correlation, zero padding), as PyTorch's. */
function depthwiseRef(
  c: Case,
): (x: Float64Array, w: Float64Array, b?: Float64Array) => Float64Array {
  const [ot, oh, ow] = outSize(c);
  const [kt, kh, kw] = c.k;
  return (x, w, b) => {
    const y = new Float64Array(c.n * c.c * ot * oh * ow);
    let o = 0;
    for (let n = 0; n < c.n; n++) {
      for (let ch = 0; ch < c.c; ch++) {
        const xBase = (n * c.c + ch) * c.t;
        for (let z = 0; z < ot; z++) {
          for (let oy = 0; oy < oh; oy++) {
            for (let ox = 0; ox < ow; ox++) {
              let acc = b ? b[ch] : 0;
              for (let a = 0; a < kt; a++) {
                const iz = z - c.pad[0] + a;
                if (iz < 0 || iz >= c.t) continue;
                for (let ky = 0; ky < kh; ky++) {
                  const iy = oy - c.pad[1] + ky;
                  if (iy < 0 || iy >= c.h) continue;
                  for (let kx = 0; kx < kw; kx++) {
                    const ix = ox - c.pad[2] + kx;
                    if (ix < 0 || ix >= c.w) continue;
                    acc += x[((xBase + iz) * c.h + iy) * c.w + ix] *
                      w[((ch * kt + a) * kh + ky) * kw + kx];
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

const CASES: Case[] = [
  // ConvNeXt3D's blocks: (3,7,7) padding (1,3,3) and (1,7,7) padding (0,3,3).
  { n: 1, c: 3, t: 4, h: 9, w: 10, k: [3, 7, 7], pad: [1, 3, 3] },
  { n: 1, c: 5, t: 3, h: 8, w: 9, k: [1, 7, 7], pad: [0, 3, 3] },
  // A batch, one frame with a (3,3,3) kernel (only the centre tap sees data).
  { n: 2, c: 3, t: 1, h: 6, w: 7, k: [3, 3, 3], pad: [1, 1, 1] },
  // No padding at all, KT 2 and 4, a padding past half the kernel.
  { n: 2, c: 2, t: 5, h: 7, w: 6, k: [2, 3, 3], pad: [0, 0, 0] },
  { n: 1, c: 4, t: 6, h: 5, w: 5, k: [4, 3, 5], pad: [1, 1, 2] },
  { n: 1, c: 2, t: 3, h: 5, w: 6, k: [3, 3, 3], pad: [2, 2, 0] },
  // KT 1 with temporal padding (frames of zeros added before and after), one channel.
  { n: 1, c: 1, t: 2, h: 5, w: 5, k: [1, 3, 3], pad: [1, 1, 1] },
];

function describe(c: Case): string {
  return `depthwiseConv3d n${c.n} c${c.c} ${c.t}x${c.h}x${c.w} k${c.k} p${c.pad}`;
}

async function check(c: Case, bias: boolean) {
  await checkOp({
    name: describe(c) + (bias ? "" : " no bias"),
    inputs: [
      { shape: [c.n, c.c, c.t, c.h, c.w] },
      { shape: [c.c, 1, ...c.k] },
      ...(bias ? [{ shape: [c.c] }] : []),
    ],
    gpu: (x: Tensor, w: Tensor, b?: Tensor) => depthwiseConv3d(x, w, b, { padding: c.pad }),
    ref: depthwiseRef(c),
  });
}

familyTest("depthwiseConv3d: forward and gradients of x, w, b", async () => {
  for (const c of CASES) await check(c, true);
});

familyTest("depthwiseConv3d without bias", async () => {
  for (const c of [CASES[0], CASES[1], CASES[3]]) await check(c, false);
});

interface Packed {
  shape: number[];
  data: number[];
}

interface TorchCase {
  padding: [number, number, number];
  x: Packed;
  w: Packed;
  b?: Packed;
  out: Packed;
  r: Packed;
  grad_x: Packed;
  grad_w: Packed;
  grad_b?: Packed;
}

Deno.test("depthwiseConv3d matches PyTorch's F.conv3d(groups=C) (values and gradients)", async () => {
  await initGpu();
  const fixture: { cases: TorchCase[] } = JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/conv3d_depthwise_torch.json", import.meta.url)),
  );
  assert.equal(fixture.cases.length, 4);
  for (const k of fixture.cases) {
    const what = `x [${k.x.shape}], w [${k.w.shape}], padding [${k.padding}]`;
    const made = tidy(() => {
      const t = (p: Packed) => tensor(Float32Array.from(p.data), p.shape, { requiresGrad: true });
      const x = t(k.x);
      const w = t(k.w);
      const b = k.b ? t(k.b) : undefined;
      const y = depthwiseConv3d(x, w, b, { padding: k.padding });
      y.backward(tensor(Float32Array.from(k.r.data), k.r.shape));
      return { y, ins: b ? [x, w, b] : [x, w] };
    });
    assert.deepEqual(made.y.shape, k.out.shape, what);
    const got = {
      out: await made.y.read(),
      gx: await made.ins[0].grad!.read(),
      gw: await made.ins[1].grad!.read(),
      gb: made.ins[2] ? await made.ins[2].grad!.read() : undefined,
    };
    [made.y, ...made.ins].forEach((t) => t.dispose());
    assertClose(got.out, k.out.data, { rtol: 1e-4, atol: 1e-5, what: `${what}: output` });
    assertClose(got.gx, k.grad_x.data, { rtol: 1e-4, atol: 1e-5, what: `${what}: grad x` });
    assertClose(got.gw, k.grad_w.data, { rtol: 1e-4, atol: 1e-4, what: `${what}: grad w` });
    if (k.grad_b) {
      assertClose(got.gb!, k.grad_b.data, { rtol: 1e-4, atol: 1e-4, what: `${what}: grad b` });
    }
  }
});

Deno.test("depthwiseConv3d: errors name the shapes", async () => {
  await initGpu();
  const x = tensor(new Float32Array(2 * 3 * 4 * 5 * 5), [2, 3, 4, 5, 5]);
  const w = tensor(new Float32Array(3 * 3 * 3 * 3), [3, 1, 3, 3, 3]);
  const w2 = tensor(new Float32Array(3 * 2 * 3 * 3 * 3), [3, 2, 3, 3, 3]);
  const b = tensor(new Float32Array(4), [4]);
  try {
    assert.throws(
      () => depthwiseConv3d(x.reshape([6, 4, 5, 5]), w),
      /x must be \[N, C, T, H, W\], got \[6,4,5,5\]/,
    );
    assert.throws(
      () => depthwiseConv3d(x, w2),
      /w \[3,2,3,3,3\] must be \[3, 1, KT, KH, KW\] for x \[2,3,4,5,5\]/,
    );
    assert.throws(() => depthwiseConv3d(x, w, b), /bias \[4\] must be \[3\] for x \[2,3,4,5,5\]/);
    assert.throws(
      () => depthwiseConv3d(x, w, undefined, { padding: [1, -1, 1] }),
      /padding must be integers >= 0/,
    );
    assert.throws(
      () => depthwiseConv3d(x.reshape([2, 3, 4, 25, 1]), w),
      /kernel 3x3x3 \(w \[3,1,3,3,3\]\) does not fit the input 4x25x1 \(x \[2,3,4,25,1\]\) with padding \[0,0,0\]/,
    );
  } finally {
    [x, w, w2, b].forEach((t) => t.dispose());
  }
});
