// ConvGRU: the fused gate kernel (convGruGates) forward against a float64 CPU reference and its
// fused backward against finite differences (all three inputs) on odd and vec4-sized shapes; the
// cell (convGruCell: two conv2d + the gates) against a float64 CPU reference with every weight's
// gradient by finite differences; equality with the gates composed from elementwise ops; and
// checks that a wrong gate order or a wrong n formula is rejected by the same checker.

import { rejects, throws } from "assert";
import { noGrad, type Tensor, tensor, tidy } from "../src/tensor/tensor.ts";
import * as nn from "../src/nn/mod.ts";
import { assertClose, checkOp, initGpu, numel, randn, RUN_SEED } from "./_helpers.ts";

const sig = (v: number) => 1 / (1 + Math.exp(-v));

/** Gate order (which channel block feeds which gate); the real one is r, z, n = 0, 1, 2. */
type Order = [number, number, number];

/**
 * Float64 gates: gx, gh [N, 3C, P], h [N, C, P] (P = H*W); r = σ(xr + hr), z = σ(xz + hz),
 * n = tanh(xn + r hn), h' = (1 − z) n + z h. `wrongN` uses tanh(r (xn + hn)) instead.
 */
function gatesRef(
  n: number,
  c: number,
  p: number,
  gx: Float64Array,
  gh: Float64Array,
  h: Float64Array,
  order: Order = [0, 1, 2],
  wrongN = false,
): Float64Array {
  const out = new Float64Array(n * c * p);
  const cp = c * p;
  for (let b = 0; b < n; b++) {
    for (let j = 0; j < cp; j++) {
      const at = (k: number) => b * 3 * cp + order[k] * cp + j;
      const r = sig(gx[at(0)] + gh[at(0)]);
      const z = sig(gx[at(1)] + gh[at(1)]);
      const nn_ = Math.tanh(wrongN ? r * (gx[at(2)] + gh[at(2)]) : gx[at(2)] + r * gh[at(2)]);
      const hv = h[b * cp + j];
      out[b * cp + j] = (1 - z) * nn_ + z * hv;
    }
  }
  return out;
}

/** Float64 conv2d, stride 1, zero padding `pad`: x [N, Cin, H, W], w [Co, Cin, k, k]. */
function conv2dRef(
  x: Float64Array,
  [n, cin, hh, ww]: number[],
  w: Float64Array,
  co: number,
  k: number,
  b: Float64Array | null,
  pad: number,
): Float64Array {
  const out = new Float64Array(n * co * hh * ww);
  for (let bi = 0; bi < n; bi++) {
    for (let o = 0; o < co; o++) {
      for (let y = 0; y < hh; y++) {
        for (let xo = 0; xo < ww; xo++) {
          let acc = b ? b[o] : 0;
          for (let ci = 0; ci < cin; ci++) {
            for (let ky = 0; ky < k; ky++) {
              const iy = y + ky - pad;
              if (iy < 0 || iy >= hh) continue;
              for (let kx = 0; kx < k; kx++) {
                const ix = xo + kx - pad;
                if (ix < 0 || ix >= ww) continue;
                acc += w[((o * cin + ci) * k + ky) * k + kx] *
                  x[((bi * cin + ci) * hh + iy) * ww + ix];
              }
            }
          }
          out[((bi * co + o) * hh + y) * ww + xo] = acc;
        }
      }
    }
  }
  return out;
}

/** Float64 ConvGRU cell: gx = conv(x, wx) + bx, gh = conv(h, wh) + bh, then the gates. */
function cellRef(
  [n, cin, c, hh, ww, k]: number[],
  x: Float64Array,
  h: Float64Array,
  wx: Float64Array,
  wh: Float64Array,
  bx: Float64Array | null,
  bh: Float64Array | null,
): Float64Array {
  const pad = (k - 1) / 2;
  const gx = conv2dRef(x, [n, cin, hh, ww], wx, 3 * c, k, bx, pad);
  const gh = conv2dRef(h, [n, c, hh, ww], wh, 3 * c, k, bh, pad);
  return gatesRef(n, c, hh * ww, gx, gh, h);
}

/** The gates composed from slice and elementwise ops (what the fused kernel replaces). */
function composedGates(gx: Tensor, gh: Tensor, h: Tensor): Tensor {
  const c = h.shape[1];
  const ch = (t: Tensor, start: number, end: number) => nn.slice(t, { axis: 1, start, end });
  const rz = nn.sigmoid(nn.add(ch(gx, 0, 2 * c), ch(gh, 0, 2 * c)));
  const r = ch(rz, 0, c);
  const z = ch(rz, c, 2 * c);
  const n = nn.tanh(nn.add(ch(gx, 2 * c, 3 * c), nn.mul(r, ch(gh, 2 * c, 3 * c))));
  return nn.add(n, nn.mul(z, nn.sub(h, n)));
}

// [N, C, H, W]: C*H*W odd or not a multiple of 4 (scalar kernel) and a multiple of 4 (vec4 kernel).
const GATE_SHAPES = [[1, 1, 1, 1], [2, 3, 5, 7], [1, 4, 6, 9], [3, 2, 3, 2], [2, 5, 1, 3]];

function gateInputs(n: number, c: number, hh: number, ww: number, hGrad = true) {
  return [
    { shape: [n, 3 * c, hh, ww] },
    { shape: [n, 3 * c, hh, ww] },
    { shape: [n, c, hh, ww], grad: hGrad },
  ];
}

Deno.test("convGruGates: forward and gradients of gx, gh and h", async () => {
  for (const [n, c, hh, ww] of GATE_SHAPES) {
    await checkOp({
      name: "convGruGates",
      inputs: gateInputs(n, c, hh, ww),
      gpu: (gx, gh, h) => nn.convGruGates(gx, gh, h),
      ref: (gx, gh, h) => gatesRef(n, c, hh * ww, gx, gh, h),
    });
  }
});

Deno.test("convGruGates: large pre-activations saturate without NaN", async () => {
  for (const [n, c, hh, ww] of [[1, 2, 3, 5], [2, 2, 2, 4]]) {
    await checkOp({
      name: "convGruGates (saturating)",
      inputs: [
        { shape: [n, 3 * c, hh, ww], range: [-40, 40] },
        { shape: [n, 3 * c, hh, ww], range: [-40, 40] },
        { shape: [n, c, hh, ww] },
      ],
      gpu: (gx, gh, h) => nn.convGruGates(gx, gh, h),
      ref: (gx, gh, h) => gatesRef(n, c, hh * ww, gx, gh, h),
      // Finite differences of tanh/σ at |a| ~ 40 are 0 in float64 as in the kernel.
      fdStep: 1e-7,
    });
  }
});

Deno.test("convGruGates: h without a gradient gets none (and gx, gh still do)", async () => {
  for (const [n, c, hh, ww] of [[2, 3, 5, 7], [1, 4, 6, 9]]) {
    await checkOp({
      name: "convGruGates (h constant)",
      inputs: gateInputs(n, c, hh, ww, false),
      gpu: (gx, gh, h) => nn.convGruGates(gx, gh, h),
      ref: (gx, gh, h) => gatesRef(n, c, hh * ww, gx, gh, h),
    });
  }
  await initGpu();
  tidy(() => {
    const gx = tensor(new Float32Array(6), [1, 3, 1, 2], { requiresGrad: true });
    const gh = tensor(new Float32Array(6), [1, 3, 1, 2]);
    const h = tensor(new Float32Array(2), [1, 1, 1, 2]);
    nn.sum(nn.convGruGates(gx, gh, h)).backward();
    if (!gx.grad || gh.grad || h.grad) throw new Error("only gx should have a gradient");
  });
});

Deno.test("convGruGates: a wrong gate order or n formula is rejected by the checker", async () => {
  const wrong: [string, Order, boolean][] = [
    ["r and z swapped", [1, 0, 2], false],
    ["z and n swapped", [0, 2, 1], false],
    ["n = tanh(r (xn + hn))", [0, 1, 2], true],
  ];
  for (const [what, order, wrongN] of wrong) {
    for (const [n, c, hh, ww] of [[2, 3, 5, 7], [1, 4, 6, 9]]) {
      await rejects(
        checkOp({
          name: `convGruGates vs ${what}`,
          inputs: gateInputs(n, c, hh, ww),
          gpu: (gx, gh, h) => nn.convGruGates(gx, gh, h),
          ref: (gx, gh, h) => gatesRef(n, c, hh * ww, gx, gh, h, order, wrongN),
        }),
        /forward/,
        `a reference with ${what} was accepted`,
      );
    }
  }
});

Deno.test("convGruGates: equals the composed elementwise version (values and gradients)", async () => {
  await initGpu();
  for (const [n, c, hh, ww] of [[2, 3, 5, 7], [2, 4, 8, 8]]) {
    const shapes = [[n, 3 * c, hh, ww], [n, 3 * c, hh, ww], [n, c, hh, ww]];
    const data = shapes.map((s, i) => Float32Array.from(randn(numel(s), RUN_SEED + 31 * i, 2)));
    const wData = Float32Array.from(randn(n * c * hh * ww, RUN_SEED + 5));
    const run = async (f: typeof composedGates) => {
      const res = tidy(() => {
        const xs = shapes.map((s, i) => tensor(data[i], s, { requiresGrad: true }));
        const y = f(xs[0], xs[1], xs[2]);
        y.backward(tensor(wData, y.shape));
        return { y, xs };
      });
      const out = [await res.y.read(), ...await Promise.all(res.xs.map((x) => x.grad!.read()))];
      res.y.dispose();
      res.xs.forEach((x) => x.dispose());
      return out;
    };
    const fused = await run(nn.convGruGates);
    const composed = await run(composedGates);
    ["h'", "dgx", "dgh", "dh"].forEach((what, i) =>
      assertClose(fused[i], composed[i], { rtol: 0, atol: 1e-6, what: `${what} [${shapes[0]}]` })
    );
  }
});

Deno.test("convGruGates: more than 65535 workgroups (2-D grid)", async () => {
  await initGpu();
  // C*H*W = 4194305 (odd: scalar kernel, one element per invocation): 65536 workgroups of 64.
  const [n, c, hh, ww] = [1, 1, 1, 4_194_305];
  const gx = randn(n * 3 * c * hh * ww, RUN_SEED + 1);
  const gh = randn(n * 3 * c * hh * ww, RUN_SEED + 2);
  const h = randn(n * c * hh * ww, RUN_SEED + 3);
  const expected = gatesRef(n, c, hh * ww, gx, gh, h);
  const got = await tidy(() =>
    noGrad(() =>
      nn.convGruGates(
        tensor(Float32Array.from(gx), [n, 3 * c, hh, ww]),
        tensor(Float32Array.from(gh), [n, 3 * c, hh, ww]),
        tensor(Float32Array.from(h), [n, c, hh, ww]),
      ).keep()
    )
  );
  try {
    assertClose(await got.read(), expected, { rtol: 1e-5, atol: 1e-6, what: "h' (2-D grid)" });
  } finally {
    got.dispose();
  }
});

Deno.test("convGruGates: rejects mismatched shapes, naming both", async () => {
  await initGpu();
  tidy(() => {
    const gx = tensor(new Float32Array(2 * 6 * 4 * 5), [2, 6, 4, 5]);
    const h = tensor(new Float32Array(2 * 2 * 4 * 5), [2, 2, 4, 5]);
    const badC = tensor(new Float32Array(2 * 4 * 4 * 5), [2, 4, 4, 5]);
    const badW = tensor(new Float32Array(2 * 6 * 4 * 4), [2, 6, 4, 4]);
    throws(() => nn.convGruGates(gx, badC, h), /gh is \[2,4,4,5\] but h is \[2,2,4,5\]/);
    throws(() => nn.convGruGates(badW, gx, h), /gx is \[2,6,4,4\] but h is \[2,2,4,5\]/);
    throws(() => nn.convGruGates(gx, gx, h.reshape([2, 2, 20])), /h is \[2,2,20\]/);
  });
});

// [N, Cin, C, H, W, k]
const CELL_SIZES = [[1, 1, 1, 1, 1, 1], [2, 3, 2, 5, 4, 3], [1, 2, 3, 3, 5, 3], [1, 1, 2, 6, 3, 5]];

Deno.test("convGruCell: forward and gradients of x, h and every weight and bias", async () => {
  for (const size of CELL_SIZES) {
    const [n, cin, c, hh, ww, k] = size;
    await checkOp({
      name: `convGruCell k=${k}`,
      inputs: [
        { shape: [n, cin, hh, ww] },
        { shape: [n, c, hh, ww] },
        { shape: [3 * c, cin, k, k] },
        { shape: [3 * c, c, k, k] },
        { shape: [3 * c] },
        { shape: [3 * c] },
      ],
      gpu: (x, h, wx, wh, bx, bh) => nn.convGruCell(x, h, { wx, wh, bx, bh }),
      ref: (x, h, wx, wh, bx, bh) => cellRef(size, x, h, wx, wh, bx, bh),
    });
  }
});

Deno.test("convGruCell: without biases", async () => {
  for (const size of CELL_SIZES.slice(1, 3)) {
    const [n, cin, c, hh, ww, k] = size;
    await checkOp({
      name: "convGruCell (no bias)",
      inputs: [
        { shape: [n, cin, hh, ww] },
        { shape: [n, c, hh, ww] },
        { shape: [3 * c, cin, k, k] },
        { shape: [3 * c, c, k, k] },
      ],
      gpu: (x, h, wx, wh) => nn.convGruCell(x, h, { wx, wh }),
      ref: (x, h, wx, wh) => cellRef(size, x, h, wx, wh, null, null),
    });
  }
});

Deno.test("convGruCell: rejects mismatched shapes, naming them", async () => {
  await initGpu();
  tidy(() => {
    const t = (shape: number[]) => tensor(new Float32Array(numel(shape)), shape);
    const x = t([2, 3, 5, 4]);
    const h = t([2, 2, 5, 4]);
    const wx = t([6, 3, 3, 3]);
    const wh = t([6, 2, 3, 3]);
    throws(() => nn.convGruCell(x, t([2, 2, 5, 5]), { wx, wh }), /x \[2,3,5,4\] and h \[2,2,5,5\]/);
    throws(() => nn.convGruCell(x, h, { wx: t([6, 2, 3, 3]), wh }), /wx is \[6,2,3,3\]/);
    throws(() => nn.convGruCell(x, h, { wx: t([6, 3, 2, 2]), wh }), /odd size/);
    throws(() => nn.convGruCell(x, h, { wx, wh: t([6, 2, 1, 1]) }), /wh is \[6,2,1,1\]/);
    throws(() => nn.convGruCell(x, h, { wx, wh, bx: t([4]) }), /bx is \[4\]/);
  });
});

interface Stored {
  shape: number[];
  data: number[];
}

const TORCH: { torch_version: string; cases: Record<string, { tensors: Record<string, Stored> }> } =
  JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/conv_gru_torch.json", import.meta.url)),
  );

Deno.test("convGruCell: matches PyTorch (F.conv2d + gates, and torch.nn.GRUCell as 1x1)", async () => {
  await initGpu();
  for (const name of ["cell_k3", "cell_k5_nobias", "gru_cell_1x1"]) {
    const st = TORCH.cases[name].tensors;
    const names = ["x", "h", "wx", "wh", "bx", "bh"].filter((n) => st[n]);
    const res = tidy(() => {
      const t: Record<string, Tensor> = {};
      for (const n of names) t[n] = tensor(st[n].data, st[n].shape, { requiresGrad: true });
      const out = nn.convGruCell(t.x, t.h, { wx: t.wx, wh: t.wh, bx: t.bx, bh: t.bh });
      out.backward(tensor(st.w.data, out.shape));
      return { out, t };
    });
    try {
      // Relative to the largest reference value, as tests/torch_parity_test.ts.
      const near = (got: Float32Array, want: Stored, what: string) => {
        const scale = Math.max(...want.data.map(Math.abs));
        assertClose(got, want.data, { rtol: 0, atol: 1e-4 * scale, what: `${name}: ${what}` });
      };
      near(await res.out.read(), st.out, "output");
      for (const n of names) near(await res.t[n].grad!.read(), st[`grad_${n}`], `gradient of ${n}`);
    } finally {
      res.out.dispose();
      Object.values(res.t).forEach((v) => v.dispose());
    }
  }
});
