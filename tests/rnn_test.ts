// GRU cell: forward against a float64 CPU reference of PyTorch's GRUCell formulas, and the
// gradients of every input and parameter against central finite differences, on three sizes
// (odd ones included), with and without biases.

import { nn, tensor, tidy } from "../mod.ts";
import { checkOp, initGpu } from "./_helpers.ts";

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
