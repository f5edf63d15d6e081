// GRU cell: forward against a float64 CPU reference of PyTorch's GRUCell formulas, and the
// gradients of every input and parameter against central finite differences, on three sizes
// (odd ones included), with and without biases.

import { nn, type Tensor, tensor, tidy } from "../mod.ts";
import { assertClose, checkOp, initGpu } from "./_helpers.ts";

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/**
 * Float64 GRU cell in PyTorch's layout: wIh [3H, in], wHh [3H, H], gates r, z, n;
 * r = σ(W_ir x + b_ir + W_hr h + b_hr), z likewise,
 * n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h.
 */
function gruRef(
  n: number,
  inp: number,
  hid: number,
  x: Float64Array,
  h: Float64Array,
  wIh: Float64Array,
  wHh: Float64Array,
  bIh: Float64Array | null,
  bHh: Float64Array | null,
): Float64Array {
  const out = new Float64Array(n * hid);
  const gi = new Float64Array(3 * hid);
  const gh = new Float64Array(3 * hid);
  for (let b = 0; b < n; b++) {
    for (let g = 0; g < 3 * hid; g++) {
      let si = bIh ? bIh[g] : 0;
      for (let k = 0; k < inp; k++) si += wIh[g * inp + k] * x[b * inp + k];
      let sh = bHh ? bHh[g] : 0;
      for (let k = 0; k < hid; k++) sh += wHh[g * hid + k] * h[b * hid + k];
      gi[g] = si;
      gh[g] = sh;
    }
    for (let j = 0; j < hid; j++) {
      const r = sigmoid(gi[j] + gh[j]);
      const z = sigmoid(gi[hid + j] + gh[hid + j]);
      const nn_ = Math.tanh(gi[2 * hid + j] + r * gh[2 * hid + j]);
      out[b * hid + j] = (1 - z) * nn_ + z * h[b * hid + j];
    }
  }
  return out;
}

// [batch, input size, hidden size]
const SIZES: [number, number, number][] = [[3, 5, 4], [2, 7, 6], [1, 3, 1]];

Deno.test("gruCell: forward and gradients of x, h, weights and biases", async () => {
  for (const [n, inp, hid] of SIZES) {
    await checkOp({
      name: "gruCell",
      inputs: [
        { shape: [n, inp] },
        { shape: [n, hid] },
        { shape: [3 * hid, inp] },
        { shape: [3 * hid, hid] },
        { shape: [3 * hid] },
        { shape: [3 * hid] },
      ],
      gpu: (x, h, wIh, wHh, bIh, bHh) => nn.gruCell(x, h, { wIh, wHh, bIh, bHh }),
      ref: (x, h, wIh, wHh, bIh, bHh) => gruRef(n, inp, hid, x, h, wIh, wHh, bIh, bHh),
    });
  }
});

Deno.test("gruCell: without biases", async () => {
  for (const [n, inp, hid] of SIZES.slice(0, 2)) {
    await checkOp({
      name: "gruCell (no bias)",
      inputs: [
        { shape: [n, inp] },
        { shape: [n, hid] },
        { shape: [3 * hid, inp] },
        { shape: [3 * hid, hid] },
      ],
      gpu: (x, h, wIh, wHh) => nn.gruCell(x, h, { wIh, wHh }),
      ref: (x, h, wIh, wHh) => gruRef(n, inp, hid, x, h, wIh, wHh, null, null),
    });
  }
});

Deno.test("gruCell: rejects mismatched shapes", async () => {
  await initGpu();
  tidy(() => {
    const x = tensor(new Float32Array(2 * 5), [2, 5]);
    const h = tensor(new Float32Array(2 * 4), [2, 4]);
    const wIh = tensor(new Float32Array(12 * 5), [12, 5]);
    const wHh = tensor(new Float32Array(12 * 4), [12, 4]);
    const bad = tensor(new Float32Array(9 * 4), [9, 4]);
    const badX = tensor(new Float32Array(3 * 5), [3, 5]);
    const expectThrow = (fn: () => unknown, what: RegExp) => {
      let err: Error | null = null;
      try {
        fn();
      } catch (e) {
        err = e as Error;
      }
      if (!err || !what.test(err.message)) {
        throw new Error(`expected an error matching ${what}, got ${err?.message ?? "none"}`);
      }
    };
    expectThrow(() => nn.gruCell(x, h, { wIh, wHh: bad }), /gruCell/);
    expectThrow(() => nn.gruCell(x, h, { wIh: bad, wHh }), /gruCell/);
    expectThrow(() => nn.gruCell(badX, h, { wIh, wHh }), /gruCell/);
  });
});

/** Float64 GRU over a sequence: x [B,T,in], h0 [B,H]; every step's state [B,T,H]. */
function gruSeqRef(
  b: number,
  t: number,
  inp: number,
  hid: number,
  x: Float64Array,
  h0: Float64Array,
  wIh: Float64Array,
  wHh: Float64Array,
  bIh: Float64Array | null,
  bHh: Float64Array | null,
): Float64Array {
  const out = new Float64Array(b * t * hid);
  for (let bi = 0; bi < b; bi++) {
    let h: Float64Array = h0.slice(bi * hid, (bi + 1) * hid);
    for (let s = 0; s < t; s++) {
      const xs = x.slice((bi * t + s) * inp, (bi * t + s + 1) * inp);
      h = gruRef(1, inp, hid, xs, h, wIh, wHh, bIh, bHh);
      out.set(h, (bi * t + s) * hid);
    }
  }
  return out;
}

// [batch, steps, input size, hidden size]
const SEQ_SIZES: [number, number, number, number][] = [[2, 5, 3, 4], [1, 9, 4, 7], [3, 1, 2, 3]];

Deno.test("gruSequence: forward and gradients of x, h0, weights and biases", async () => {
  for (const [b, t, inp, hid] of SEQ_SIZES) {
    await checkOp({
      name: "gruSequence",
      inputs: [
        { shape: [b, t, inp] },
        { shape: [b, hid] },
        { shape: [3 * hid, inp] },
        { shape: [3 * hid, hid] },
        { shape: [3 * hid] },
        { shape: [3 * hid] },
      ],
      gpu: (x, h0, wIh, wHh, bIh, bHh) => nn.gruSequence(x, h0, { wIh, wHh, bIh, bHh }),
      ref: (x, h0, wIh, wHh, bIh, bHh) => gruSeqRef(b, t, inp, hid, x, h0, wIh, wHh, bIh, bHh),
      maxFd: 16,
    });
  }
});

Deno.test("gruSequence: without biases, and a sequence longer than one dispatch", async () => {
  await checkOp({
    name: "gruSequence (no bias)",
    inputs: [{ shape: [2, 6, 3] }, { shape: [2, 5] }, { shape: [15, 3] }, { shape: [15, 5] }],
    gpu: (x, h0, wIh, wHh) => nn.gruSequence(x, h0, { wIh, wHh }),
    ref: (x, h0, wIh, wHh) => gruSeqRef(2, 6, 3, 5, x, h0, wIh, wHh, null, null),
    maxFd: 12,
  });
  // H = 200: 32768 / 402 = 81 steps per dispatch, so 400 steps take five pieces (and one piece
  // of 163 steps would pass lavapipe's loop limit in the backward).
  const [b, t, inp, hid] = [1, 400, 2, 200];
  await checkOp({
    name: "gruSequence (5 pieces)",
    inputs: [
      { shape: [b, t, inp] },
      { shape: [b, hid] },
      { shape: [3 * hid, inp] },
      { shape: [3 * hid, hid] },
      { shape: [3 * hid] },
      { shape: [3 * hid] },
    ],
    gpu: (x, h0, wIh, wHh, bIh, bHh) =>
      nn.gruSequence(x, h0, {
        wIh: nn.mul(wIh, 0.1),
        wHh: nn.mul(wHh, 0.05),
        bIh,
        bHh,
      }),
    ref: (x, h0, wIh, wHh, bIh, bHh) =>
      gruSeqRef(
        b,
        t,
        inp,
        hid,
        x,
        h0,
        wIh.map((v) => 0.1 * v),
        wHh.map((v) => 0.05 * v),
        bIh,
        bHh,
      ),
    maxFd: 8,
  });
});

Deno.test("gruSequence equals gruCell step by step, values and every gradient", async () => {
  await initGpu();
  const [b, t, inp, hid] = [2, 7, 5, 6];
  const rnd = (n: number, seed: number) =>
    Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 0.8);
  const make = () => ({
    x: tensor(rnd(b * t * inp, 1), [b, t, inp], { requiresGrad: true }),
    h0: tensor(rnd(b * hid, 2), [b, hid], { requiresGrad: true }),
    wIh: tensor(rnd(3 * hid * inp, 3), [3 * hid, inp], { requiresGrad: true }),
    wHh: tensor(rnd(3 * hid * hid, 4), [3 * hid, hid], { requiresGrad: true }),
    bIh: tensor(rnd(3 * hid, 5), [3 * hid], { requiresGrad: true }),
    bHh: tensor(rnd(3 * hid, 6), [3 * hid], { requiresGrad: true }),
  });
  const seed = tensor(rnd(b * t * hid, 7), [b, t, hid]);
  const fused = make(), steps = make();
  const a = tidy(() => {
    const y = nn.gruSequence(fused.x, fused.h0, fused);
    y.backward(seed);
    return y;
  });
  const c = tidy(() => {
    let h = steps.h0;
    const hs = [];
    for (let s = 0; s < t; s++) {
      const xs = nn.slice(steps.x, { axis: 1, start: s, end: s + 1 }).reshape([b, inp]);
      h = nn.gruCell(xs, h, steps);
      hs.push(h);
    }
    const y = nn.stack(hs, 1);
    y.backward(seed);
    return y;
  });
  const close = async (p: Tensor, q: Tensor, what: string) =>
    assertClose(await p.read(), await q.read(), { rtol: 1e-5, atol: 1e-6, what });
  await close(a, c, "states");
  for (const k of ["x", "h0", "wIh", "wHh", "bIh", "bHh"] as const) {
    await close(fused[k].grad!, steps[k].grad!, `d${k}`);
  }
});

Deno.test("gruSequence: matches PyTorch's torch.nn.GRU (values and every gradient)", async () => {
  await initGpu();
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/conv_gru_torch.json", import.meta.url)),
  );
  const st: Record<string, { shape: number[]; data: number[] }> = fixture.cases.gru_seq.tensors;
  const names = ["x", "h0", "wIh", "wHh", "bIh", "bHh"] as const;
  const t: Record<string, Tensor> = {};
  for (const n of names) t[n] = tensor(st[n].data, st[n].shape, { requiresGrad: true });
  const out = tidy(() => {
    const y = nn.gruSequence(t.x, t.h0, { wIh: t.wIh, wHh: t.wHh, bIh: t.bIh, bHh: t.bHh });
    y.backward(tensor(st.w.data, y.shape));
    return y;
  });
  // Relative to the largest reference value, as tests/torch_parity_test.ts.
  const near = (got: Float32Array, want: { data: number[] }, what: string) => {
    const scale = Math.max(...want.data.map(Math.abs));
    assertClose(got, want.data, { rtol: 0, atol: 1e-4 * scale, what: `gru_seq: ${what}` });
  };
  near(await out.read(), st.out, "output");
  for (const n of names) near(await t[n].grad!.read(), st[`grad_${n}`], `gradient of ${n}`);
  out.dispose();
  Object.values(t).forEach((v) => v.dispose());
});
