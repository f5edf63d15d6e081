// Optimisers: Adam and SGD against float64 CPU references of PyTorch's update formulas over
// several steps on random data, against trajectories recorded from torch.optim (fixture made by
// tests/fixtures/optim_torch.py), and their bookkeeping (skipped parameters, zeroGrad, dispose).

import assert from "assert";
import {
  Adam,
  type AdamOptions,
  nn,
  poolStats,
  SGD,
  type SGDOptions,
  type Tensor,
} from "../mod.ts";
import { tensor, tidy } from "../src/tensor/tensor.ts";
import { assertClose, initGpu, numel, randn, RUN_SEED, withSeed } from "./_helpers.ts";

await initGpu();

const SHAPES = [[7], [3, 5], [33, 17], [2, 3, 7, 5]];

/** One parameter's float64 reference state. */
interface RefParam {
  p: Float64Array;
  m: Float64Array;
  v: Float64Array;
  step: number;
}

function refAdamStep(s: RefParam, g: Float64Array, o: Required<AdamOptions>): void {
  s.step++;
  const bc1 = 1 - o.beta1 ** s.step;
  const bc2 = 1 - o.beta2 ** s.step;
  for (let i = 0; i < s.p.length; i++) {
    const gi = g[i] + o.weightDecay * s.p[i];
    s.m[i] = o.beta1 * s.m[i] + (1 - o.beta1) * gi;
    s.v[i] = o.beta2 * s.v[i] + (1 - o.beta2) * gi * gi;
    s.p[i] -= (o.lr * (s.m[i] / bc1)) / (Math.sqrt(s.v[i] / bc2) + o.eps);
  }
}

function refSgdStep(s: RefParam, g: Float64Array, o: Required<SGDOptions>): void {
  s.step++;
  for (let i = 0; i < s.p.length; i++) {
    let gi = g[i] + o.weightDecay * s.p[i];
    if (o.momentum !== 0) {
      s.m[i] = s.step === 1 ? gi : o.momentum * s.m[i] + (1 - o.dampening) * gi;
      gi = o.nesterov ? gi + o.momentum * s.m[i] : s.m[i];
    }
    s.p[i] -= o.lr * gi;
  }
}

function setGrad(p: Tensor, g: ArrayLike<number>): void {
  p.grad?.dispose();
  p.grad = tensor(Float32Array.from(g), p.shape).keep();
}

const ADAM_DEFAULTS: Required<AdamOptions> = {
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0,
};

const ADAM_CASES: AdamOptions[] = [
  {},
  { lr: 0.05, beta1: 0.5, beta2: 0.9, eps: 1e-4, weightDecay: 0.1 },
];

for (const [k, opts] of ADAM_CASES.entries()) {
  Deno.test(`Adam matches the float64 reference over 6 steps (case ${k})`, async () => {
    const o = { ...ADAM_DEFAULTS, ...opts };
    const seed = RUN_SEED + 1000 * k;
    const params = SHAPES.map((s, i) =>
      tensor(randn(numel(s), seed + i), s, { requiresGrad: true })
    );
    const refs: RefParam[] = SHAPES.map((s, i) => ({
      p: randn(numel(s), seed + i),
      m: new Float64Array(numel(s)),
      v: new Float64Array(numel(s)),
      step: 0,
    }));
    const opt = new Adam(params, opts);
    for (let step = 0; step < 6; step++) {
      params.forEach((p, i) => {
        // Gradients of varied scale, so that eps and the bias corrections both matter.
        const g = randn(p.size, seed + 100 * step + i, 10 ** (i - 2));
        setGrad(p, g);
        refAdamStep(refs[i], g, o);
      });
      opt.step();
      opt.zeroGrad();
    }
    for (const [i, p] of params.entries()) {
      const what = `Adam case ${k} param [${p.shape}]`;
      assert.equal(opt.stepCount(p), 6, withSeed(`${what}: step count`));
      assertClose(await p.read(), refs[i].p, { rtol: 1e-5, atol: 1e-6, what });
      // m is a sum of terms of the gradient's scale that may cancel, so its absolute error is of
      // float32 rounding at that scale (v likewise at the scale squared).
      const scale = 10 ** (i - 2);
      const { m, v } = opt.moments(p)!;
      assertClose(await m.read(), refs[i].m, { rtol: 1e-5, atol: 1e-6 * scale, what: `${what} m` });
      assertClose(await v.read(), refs[i].v, {
        rtol: 1e-5,
        atol: 1e-6 * scale * scale,
        what: `${what} v`,
      });
    }
    opt.dispose();
    params.forEach((p) => p.dispose());
  });
}

const SGD_CASES: SGDOptions[] = [
  { lr: 0.1 },
  { lr: 0.05, weightDecay: 0.02 },
  { lr: 0.05, momentum: 0.9 },
  { lr: 0.02, momentum: 0.7, dampening: 0.3, weightDecay: 0.01 },
  { lr: 0.02, momentum: 0.8, nesterov: true, weightDecay: 0.05 },
];

for (const [k, opts] of SGD_CASES.entries()) {
  Deno.test(`SGD matches the float64 reference over 5 steps (${JSON.stringify(opts)})`, async () => {
    const o = { momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, ...opts };
    const seed = RUN_SEED + 5000 + 1000 * k;
    const params = SHAPES.map((s, i) =>
      tensor(randn(numel(s), seed + i), s, { requiresGrad: true })
    );
    const refs: RefParam[] = SHAPES.map((s, i) => ({
      p: randn(numel(s), seed + i),
      m: new Float64Array(numel(s)),
      v: new Float64Array(0),
      step: 0,
    }));
    const opt = new SGD(params, opts);
    for (let step = 0; step < 5; step++) {
      params.forEach((p, i) => {
        const g = randn(p.size, seed + 100 * step + i);
        setGrad(p, g);
        refSgdStep(refs[i], g, o);
      });
      opt.step();
      opt.zeroGrad();
    }
    for (const [i, p] of params.entries()) {
      assertClose(await p.read(), refs[i].p, {
        rtol: 1e-5,
        atol: 1e-6,
        what: `SGD case ${k} param [${p.shape}]`,
      });
    }
    opt.dispose();
    params.forEach((p) => p.dispose());
  });
}

interface TorchFixture {
  shapes: number[][];
  init: number[][];
  grads: (number[] | null)[][];
  cases: {
    name: string;
    optimizer: "Adam" | "SGD";
    options: AdamOptions & SGDOptions;
    after: number[][][];
  }[];
}

const fixture: TorchFixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/optim_torch.json", import.meta.url)),
);

for (const c of fixture.cases) {
  Deno.test(`${c.optimizer} reproduces torch.optim trajectory '${c.name}'`, async () => {
    const params = fixture.shapes.map((s, i) => tensor(fixture.init[i], s, { requiresGrad: true }));
    const opt = c.optimizer === "Adam" ? new Adam(params, c.options) : new SGD(params, c.options);
    for (const [step, grads] of fixture.grads.entries()) {
      params.forEach((p, i) => {
        const g = grads[i];
        if (g) setGrad(p, g);
        else {
          p.grad?.dispose();
          p.grad = null;
        }
      });
      opt.step();
      for (const [i, p] of params.entries()) {
        assertClose(await p.read(), c.after[step][i], {
          rtol: 1e-5,
          atol: 2e-7,
          what: `${c.name} step ${step + 1} param ${i}`,
        });
      }
    }
    opt.zeroGrad();
    opt.dispose();
    params.forEach((p) => p.dispose());
  });
}

Deno.test("Adam: gradients from backward, skipped parameters, zeroGrad and dispose", async () => {
  const a = tensor([1, -2, 3], [3], { requiresGrad: true });
  const b = tensor([0.5, 0.25], [2], { requiresGrad: true });
  const opt = new Adam([a, b], { lr: 0.1 });
  const before = poolStats().inUse;
  // Only `a` takes part in the loss: `b` has no gradient and must stay unchanged.
  tidy(() => nn.sum(nn.square(a)).backward());
  assert.equal(b.grad, null);
  const ga = Float64Array.from(await a.grad!.read());
  assertClose(ga, [2, -4, 6], { what: "grad of sum(a^2)" });
  opt.step();
  // First Adam step moves every element by lr * sign(g) (up to eps).
  assertClose(await a.read(), [0.9, -1.9, 2.9], { rtol: 1e-6, atol: 1e-6, what: "a after step" });
  assertClose(await b.read(), [0.5, 0.25], { rtol: 0, atol: 0, what: "b (no gradient)" });
  assert.equal(opt.stepCount(a), 1);
  assert.equal(opt.stepCount(b), 0);
  assert.equal(opt.moments(b), undefined);
  const grad = a.grad!;
  opt.zeroGrad();
  assert.equal(a.grad, null);
  assert.equal(grad.disposed, true);
  // State: m and v of `a` (2 buffers) remain, the gradient was released.
  assert.equal(poolStats().inUse, before + 2);
  opt.dispose();
  assert.equal(poolStats().inUse, before);
  a.dispose();
  b.dispose();
});

Deno.test("SGD with momentum keeps one buffer per parameter; lr changes take effect", async () => {
  const w = tensor([1, 2], [2], { requiresGrad: true });
  const opt = new SGD([w], { lr: 0.5, momentum: 0.5 });
  const before = poolStats().inUse;
  setGrad(w, [1, 1]);
  opt.step(); // b = g = 1; w = [0.5, 1.5]
  opt.lr = 0.1;
  opt.step(); // b = 0.5 + 1 = 1.5; w -= 0.15
  assertClose(await w.read(), [0.35, 1.35], { rtol: 0, atol: 1e-6, what: "w" });
  opt.zeroGrad();
  assert.equal(poolStats().inUse, before + 1); // the gradient released, the momentum buffer kept
  opt.dispose();
  assert.equal(poolStats().inUse, before);
  w.dispose();
});

Deno.test("optimiser options are validated", () => {
  const w = tensor([1], [1], { requiresGrad: true });
  assert.throws(() => new Adam([w], { lr: -1 }), { name: "RangeError", message: /lr/ });
  assert.throws(() => new Adam([w], { beta1: 1 }), { name: "RangeError", message: /beta1/ });
  assert.throws(() => new Adam([w, w]), { name: "Error", message: /twice/ });
  assert.throws(() => new SGD([w], { lr: 0.1, nesterov: true }), {
    name: "RangeError",
    message: /Nesterov/,
  });
  assert.throws(() => new SGD([w], { lr: NaN }), { name: "RangeError", message: /lr/ });
  w.dispose();
});
