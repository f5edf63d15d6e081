// VSFA's temporal hysteresis pooling: forward against the float64 reference (which follows Li et
// al. 2019 literally: l_t = min(q_{t-tau+1..t}), m_t = sum_k q_k e^{-q_k} / sum_k e^{-q_k} over
// k = t..t+tau-1, q'_t = gamma l_t + (1 - gamma) m_t, windows clipped at the clip ends) and
// gradients against finite differences, for clips shorter and longer than the window, batches,
// other tau/gamma; hand-worked values; the argmin gradient.

import assert from "assert";
import { hysteresisPool, hysteresisPoolReference } from "../src/models/victims/hysteresis.ts";
import { tensor, tidy } from "../src/tensor/tensor.ts";
import { checkOp, initGpu } from "./_helpers.ts";

await initGpu();

function refBatch(q: Float64Array, b: number, t: number, tau: number, gamma: number) {
  const out = new Float64Array(b);
  for (let i = 0; i < b; i++) {
    out[i] = hysteresisPoolReference(q.subarray(i * t, (i + 1) * t), { tau, gamma });
  }
  return out;
}

for (
  const [b, t, tau, gamma] of [
    [1, 8, 12, 0.5],
    [3, 7, 12, 0.5],
    [2, 30, 12, 0.5],
    [2, 13, 4, 0.3],
    [1, 5, 1, 0.5],
    [4, 1, 12, 0.5],
    [2, 9, 3, 1],
  ]
) {
  Deno.test(`hysteresisPool matches the float64 reference: B=${b} T=${t} tau=${tau} gamma=${gamma}`, async () => {
    await checkOp({
      name: "hysteresisPool",
      // Scores spread over a range like the 1..5 scale, so that ties are improbable.
      inputs: [{ shape: [b, t], range: [0.5, 5.5] }],
      gpu: (q) => hysteresisPool(q, { tau, gamma }),
      ref: (q) => refBatch(q, b, t, tau, gamma),
      rtol: 1e-5,
      atol: 1e-5,
      fdStep: 1e-5,
    });
  });
}

Deno.test("hysteresisPool: hand-worked values and [T] input", async () => {
  // q = [2, 1, 3], tau = 2, gamma = 0.5:
  // l = [2, 1, 1]; m_0 = (2e^-2 + e^-1)/(e^-2 + e^-1), m_1 = (e^-1 + 3e^-3)/(e^-1 + e^-3), m_2 = 3.
  const e = Math.exp;
  const m0 = (2 * e(-2) + e(-1)) / (e(-2) + e(-1));
  const m1 = (e(-1) + 3 * e(-3)) / (e(-1) + e(-3));
  const expected = (0.5 * (2 + 1 + 1) + 0.5 * (m0 + m1 + 3)) / 3;
  assert.ok(Math.abs(hysteresisPoolReference([2, 1, 3], { tau: 2 }) - expected) < 1e-12);
  const got = await tidy(() => hysteresisPool(tensor([2, 1, 3], [3]), { tau: 2 })).read();
  assert.equal(got.length, 1);
  assert.ok(Math.abs(got[0] - expected) < 1e-5, `got ${got[0]}, expected ${expected}`);
  // A constant clip scores its constant.
  const c = await tidy(() => hysteresisPool(tensor([3.5, 3.5, 3.5, 3.5], [1, 4]))).read();
  assert.ok(Math.abs(c[0] - 3.5) < 1e-6);
});

Deno.test("hysteresisPool: the memory term's gradient goes to the argmin", async () => {
  // gamma = 1: score = mean_t min(q_0..q_t); with q = [3, 1, 4, 5] (T < tau) the minima are
  // [3, 1, 1, 1]: d/dq_0 = 1/4, d/dq_1 = 3/4, others 0.
  const q = tensor([3, 1, 4, 5], [1, 4], { requiresGrad: true });
  tidy(() => hysteresisPool(q, { gamma: 1 }).backward());
  const g = await q.grad!.read();
  assert.deepEqual(Array.from(g), [0.25, 0.75, 0, 0]);
  q.dispose();
});

Deno.test("hysteresisPool: large score offsets stay finite (shifted softmin weights)", async () => {
  const base = [-80, -60, -90, -70, -85];
  const got = await tidy(() => hysteresisPool(tensor(base, [1, 5]))).read();
  const expected = hysteresisPoolReference(base);
  assert.ok(Number.isFinite(got[0]));
  assert.ok(Math.abs(got[0] - expected) < 1e-3 * Math.abs(expected), `${got[0]} vs ${expected}`);
});

Deno.test("hysteresisPool: bad options are errors", () => {
  const q = tensor([1, 2], [1, 2]);
  assert.throws(() => hysteresisPool(q, { tau: 0 }), /tau/);
  assert.throws(() => hysteresisPool(q, { gamma: 2 }), /gamma/);
  assert.throws(() => hysteresisPool(tensor([1, 2, 3, 4], [1, 2, 2])), /\[T\] or \[B, T\]/);
  q.dispose();
});
