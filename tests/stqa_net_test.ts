// STQA-Net (src/models/stqa_net.ts, src/attack/stqa.ts): gradients through the whole generator
// against finite differences on a tiny config, the visual constraint |d| <= eps * J (float and
// 8-bit), chunked attacks equal to whole-clip attacks, odd frame sizes, config and shape errors,
// generator files, and the signed variant (its parameters, [up, down] = clip(x +- eps*J*A), per-clip
// signs on a batch, bad signs, its directions in branchFor and attackWithGenerator).

import assert from "assert";
import { join } from "path";
import {
  attackWithGenerator,
  computeJnd,
  type Generator,
  GENERATOR_VARIANTS,
  generatorPerturb,
  loadGenerator,
  noGrad,
  perturbationStats,
  quantizeInJnd,
  saveGenerator,
  StqaNet,
  type Tensor,
  tensor,
  tidy,
} from "../mod.ts";
import { writeBuffer } from "../src/gpu/queue.ts";
import { getGpu } from "../src/gpu/device.ts";
import { branchFor, chunkFor, directionsOf, steerable, stqaAttack } from "../src/attack/stqa.ts";
import { mul, stack, sum } from "../src/nn/mod.ts";
import { initGpu, randu, rng, RUN_SEED, withSeed } from "./_helpers.ts";

await initGpu();

const TINY = { encoder: [2, 3, 4], hidden: 3, decoder: [3, 2] };

/** A textured, moving clip in (0.05, 0.95). */
function clip(t: number, h: number, w: number, seed: number): Tensor {
  const noise = randu(t * 3 * h * w, seed, -0.15, 0.15);
  const v = new Float32Array(t * 3 * h * w);
  let i = 0;
  for (let f = 0; f < t; f++) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++, i++) {
          const base = 0.5 + 0.25 * Math.sin(0.7 * x + 0.4 * y + 0.5 * f + c);
          v[i] = Math.round(255 * Math.min(0.95, Math.max(0.05, base + noise[i]))) / 255;
        }
      }
    }
  }
  return tensor(v, [t, 3, h, w]);
}

/** Makes the output layer's maps large, so that the tanh saturates (a trained generator's do). */
async function saturate(net: StqaNet): Promise<void> {
  for (const [name, p] of Object.entries(net.parameters())) {
    if (name.endsWith("out.weight")) writeBuffer(p.buffer, (await p.read()).map((v) => v * 300));
  }
}

function generatorOf(net: StqaNet, eps = 1): Generator {
  return {
    net,
    path: "(in memory)",
    info: {
      kind: "stqa-net",
      config: { ...net.config },
      victim: "vsfa-mini",
      victimFamily: "vsfa-mini",
      jnd: "namm-st",
      eps,
      qMin: 1,
      qMax: 5,
      median: 3,
    },
  };
}

Deno.test("stqa-net: output shapes for one clip, a batch, odd sizes and every variant", () => {
  for (const variant of GENERATOR_VARIANTS) {
    const net = new StqaNet({ seed: 3, config: { ...TINY, variant } });
    for (const [t, h, w] of [[2, 16, 16], [3, 13, 9], [1, 5, 7]]) {
      const x = clip(t, h, w, RUN_SEED + t);
      tidy(() => {
        const j = computeJnd(x);
        const out = net.forward(j);
        assert.equal(out.weights.length, variant === "two-branch" ? 2 : 1);
        for (const a of out.weights) assert.deepEqual(a.shape, [t, 3, h, w]);
        assert.deepEqual(out.state.shape, [1, 3, Math.ceil(h / 4), Math.ceil(w / 4)]);
        const b = net.forward(j.reshape([1, t, 1, h, w]));
        assert.deepEqual(b.weights[0].shape, [1, t, 3, h, w]);
      });
      x.dispose();
    }
    net.dispose();
  }
});

Deno.test("stqa-net: config and input errors name the field and the shapes", () => {
  assert.throws(() => new StqaNet({ config: { hidden: 0 } }), /hidden/);
  assert.throws(() => new StqaNet({ config: { encoder: [1, 2] } }), /encoder/);
  assert.throws(() => new StqaNet({ config: { bogus: 1 } }), /bogus|Unrecognized/);
  const net = new StqaNet({ config: { ...TINY, input: "jnd+rgb" } });
  const j = tensor(new Float32Array(2 * 8 * 8).fill(0.02), [2, 1, 8, 8]);
  assert.throws(() => net.forward(j), /needs frames \[2,3,8,8\], got none/);
  assert.throws(() => net.forward(tensor(new Float32Array(16), [1, 16])), /\[T,1,H,W\]/);
  const bad = tensor(new Float32Array(3 * 9), [1, 3, 3, 3]);
  const net2 = new StqaNet({ config: TINY });
  assert.throws(
    () => net2.forward(j, { state: bad }),
    /carried state is \[1,3,3,3\], expected \[1,3,2,2\]/,
  );
  for (const t of [j, bad]) t.dispose();
  net.dispose();
  net2.dispose();
});

// Central differences of sum(A * R) in float32 against autograd, for parameters of every layer
// (encoder, both GRU convs, fusion, decoder stages, output) and both input modes, over three
// frames (so the recurrence is in the graph). Leaky ReLU slope 1 makes the network smooth:
// with the default slope many pre-activations sit near the kink at init (zero biases) and
// finite differences of 1e-2 step across it (the kink's own derivative is checked in
// elementwise_test.ts).
for (const input of ["jnd", "jnd+rgb"] as const) {
  Deno.test(`stqa-net: gradients of every layer match finite differences (${input})`, async () => {
    const net = new StqaNet({ seed: RUN_SEED % 1000, config: { ...TINY, input, slope: 1 } });
    const [t, h, w] = [3, 9, 10];
    const x = clip(t, h, w, RUN_SEED);
    const j = tidy(() => mul(computeJnd(x), 4)).keep(); // larger maps: larger signals
    const r = tensor(randu(t * 3 * h * w, RUN_SEED + 1, -1, 1), [t, 3, h, w]);
    const objective = () => sum(mul(net.forward(j, { frames: x }).weights[0], r));
    const params = net.parameters();
    const loss = tidy(() => {
      const l = objective();
      l.backward();
      return l;
    });
    loss.dispose();
    const pick = rng(RUN_SEED + 7);
    let checked = 0;
    for (const name of Object.keys(params)) {
      const p = params[name];
      const g = await p.grad!.read();
      const values = await p.read();
      for (let k = 0; k < 2; k++) {
        const i = Math.floor(pick.uniform() * p.size);
        const h0 = 2e-2 * Math.max(1, Math.abs(values[i]));
        const at = async (delta: number) => {
          const v = values.slice();
          v[i] += delta;
          writeBuffer(p.buffer, v);
          const o = tidy(() => noGrad(objective));
          const out = (await o.read())[0];
          o.dispose();
          return out;
        };
        const fd = ((await at(h0)) - (await at(-h0))) / (2 * h0);
        await at(0);
        const tol = 3e-2 * Math.max(Math.abs(fd), Math.abs(g[i])) + 2e-2;
        assert.ok(
          Math.abs(fd - g[i]) <= tol,
          withSeed(`${name}[${i}]: autograd ${g[i]} vs finite differences ${fd}`),
        );
        checked++;
      }
    }
    assert.equal(checked, 2 * Object.keys(params).length);
    // Something flows into every parameter tensor.
    for (const [name, p] of Object.entries(params)) {
      const g = await p.grad!.read();
      assert.ok(g.some((v) => v !== 0), withSeed(`${name} got no gradient`));
    }
    for (const tt of [x, j, r]) tt.dispose();
    net.dispose();
  });
}

Deno.test("stqa-net: |d| <= eps * J everywhere, in float and after 8-bit quantisation", async () => {
  for (const eps of [1, 0.5, 2]) {
    const net = new StqaNet({ seed: 11, config: TINY });
    await saturate(net);
    const gen = generatorOf(net, eps);
    const x = clip(4, 12, 11, RUN_SEED + eps * 10);
    const j = computeJnd(x, { model: "namm-st" });
    const [xs, js] = [await x.read(), await j.read()];
    for (const quantize of [false, true]) {
      const adv = await attackWithGenerator(gen, x, { quantize, jnd: j });
      const a = await adv.read();
      const st = perturbationStats(xs, a, js, [4, 3, 12, 11], { eps });
      const what = `eps ${eps}, quantize ${quantize}`;
      assert.equal(st.beyondJnd, 0, withSeed(`${what}: ${st.beyondJnd} beyond the box`));
      assert.ok(st.meanAbsLevels > 0, withSeed(`${what}: the generator perturbs nothing`));
      assert.ok(a.every((v) => v >= 0 && v <= 1), withSeed(`${what}: values outside [0, 1]`));
      if (quantize) {
        assert.ok(
          a.every((v) => Number.isInteger(Math.round(v * 255 * 1e3) / 1e3)),
          withSeed(`${what}: values between 8-bit levels`),
        );
      }
      adv.dispose();
    }
    for (const tt of [x, j]) tt.dispose();
    net.dispose();
  }
});

Deno.test("stqa-net: the attack stays in the JND box of its generator's own JND model", () => {
  const net = new StqaNet({ seed: 1, config: TINY });
  for (const jnd of ["namm-st", "chou-li", "wu2017"] as const) {
    const g = generatorOf(net);
    const a = stqaAttack({ ...g, info: { ...g.info, jnd } }, { name: "stqa-net@x" });
    assert.equal(a.name, "stqa-net@x");
    assert.equal(a.jndBox, true);
    assert.equal(a.jndModel, jnd);
  }
  net.dispose();
});

Deno.test("stqa-net: quantizeInJnd rounds to levels and never past the box", () => {
  const clean = new Float32Array([100, 100, 100, 0, 255].map((v) => v / 255));
  const adv = new Float32Array([103.7, 96.2, 100.4, -3, 260].map((v) => v / 255));
  const jnd = new Float32Array([3.5, 3.5, 3.5, 10, 10].map((v) => v / 255));
  quantizeInJnd(clean, adv, jnd, [1, 1, 1, 5]);
  assert.deepEqual(Array.from(adv, (v) => Math.round(v * 255)), [103, 97, 100, 0, 255]);
  assert.throws(() => quantizeInJnd(clean, adv, jnd, [2, 1, 1, 5]), /too short/);
});

Deno.test("stqa-net: a chunked attack equals the whole-clip attack (GRU state carried)", async () => {
  for (const variant of GENERATOR_VARIANTS) {
    const net = new StqaNet({ seed: 5, config: { ...TINY, variant, input: "jnd+rgb" } });
    await saturate(net);
    const gen = generatorOf(net);
    const x = clip(7, 10, 14, RUN_SEED + 3);
    const branch = variant === "untargeted" ? 0 : 1;
    const whole = await attackWithGenerator(gen, x, { chunkFrames: 16, quantize: false, branch });
    const ref = await whole.read();
    for (const chunk of [1, 3, 4]) {
      const parts = await attackWithGenerator(gen, x, {
        chunkFrames: chunk,
        quantize: false,
        branch,
      });
      const v = await parts.read();
      let worst = 0;
      for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(v[i] - ref[i]));
      assert.ok(
        worst <= 1e-5,
        withSeed(`${variant}, chunks of ${chunk}: max difference ${worst}`),
      );
      parts.dispose();
    }
    whole.dispose();
    x.dispose();
    net.dispose();
  }
});

Deno.test("stqa-net: the GRU carries information across frames", async () => {
  const net = new StqaNet({ seed: 9, config: TINY });
  const x = clip(4, 12, 12, RUN_SEED + 5);
  const j = computeJnd(x);
  const seq = await tidy(() => net.forward(j).weights[0]).read();
  const jv = await j.read();
  const single = tidy(() =>
    net.forward(tensor(jv.slice(3 * 144, 4 * 144), [1, 1, 12, 12])).weights[0]
  );
  const s = await single.read();
  let diff = 0;
  for (let i = 0; i < s.length; i++) diff = Math.max(diff, Math.abs(s[i] - seq[3 * 3 * 144 + i]));
  assert.ok(
    diff > 1e-4,
    withSeed(`frame 3 alone equals frame 3 in sequence (max difference ${diff})`),
  );
  for (const tt of [x, j, single]) tt.dispose();
  net.dispose();
});

Deno.test("stqa-net: generator files round-trip; errors name the files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const net = new StqaNet({ seed: 2, config: { ...TINY, variant: "two-branch" } });
    const info = {
      victim: "vsfa-mini",
      victimFamily: "vsfa-mini",
      jnd: "namm-st" as const,
      eps: 0.5,
      qMin: 1,
      qMax: 5,
      median: 3.2,
    };
    const { weights, json } = await saveGenerator(net, join(dir, "g"), info);
    const g = await loadGenerator(join(dir, "g.json"));
    assert.equal(g.info.median, 3.2);
    assert.equal(g.net.config.variant, "two-branch");
    for (const [name, p] of Object.entries(net.parameters())) {
      assert.deepEqual(await g.net.parameters()[name].read(), await p.read(), name);
      assert.equal(g.net.parameters()[name].requiresGrad, false);
    }
    g.net.dispose();
    await assert.rejects(loadGenerator(join(dir, "nope")), /no generator config at .*nope\.json/);
    await Deno.remove(weights);
    await assert.rejects(loadGenerator(json), /no weights file at .*g\.safetensors/);
    const other = new StqaNet({ seed: 2, config: TINY });
    await saveGenerator(other, join(dir, "h"), info);
    const text = JSON.parse(await Deno.readTextFile(join(dir, "h.json")));
    text.config.hidden = 5;
    await Deno.writeTextFile(join(dir, "h.json"), JSON.stringify(text));
    await assert.rejects(loadGenerator(join(dir, "h")), /do not match the config/);
    await Deno.writeTextFile(join(dir, "h.json"), JSON.stringify({ ...text, eps: -1 }));
    await assert.rejects(loadGenerator(join(dir, "h")), /not a valid generator config: eps/);
    other.dispose();
    net.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stqa-net: generatorPerturb keeps adversarial frames in [0, 1]", async () => {
  const net = new StqaNet({ seed: 4, config: TINY });
  const x = tensor(new Float32Array(2 * 3 * 8 * 8).map((_, i) => (i % 2 ? 0 : 1)), [2, 3, 8, 8]);
  const adv = tidy(() => generatorPerturb(net, x, computeJnd(x), { eps: 4 }).adversarial[0]);
  const v = await adv.read();
  assert.ok(v.every((e) => e >= 0 && e <= 1));
  for (const tt of [x, adv]) tt.dispose();
  net.dispose();
});

Deno.test("stqa-net: chunks shrink so every tensor fits one storage binding", () => {
  const limit = getGpu().limits.maxStorageBufferBindingSize;
  const net = new StqaNet({ config: {} });
  // Default config at 540x960: the widest full-resolution tensor is the decoder's concat of the
  // upsampled 32 channels and the encoder's 16 (48 x 540 x 960 float32 per frame).
  assert.equal(net.bytesPerFrame(540, 960), 4 * 48 * 540 * 960);
  assert.equal(chunkFor(net, 540, 960, 16), Math.min(16, Math.floor(limit / (4 * 48 * 540 * 960))));
  assert.equal(chunkFor(net, 64, 64, 16), 16);
  // A frame that does not fit whole goes alone, in tiles (tests/stqa_tiles_test.ts).
  const side = Math.ceil(Math.sqrt(limit / (4 * 48))) + 8;
  assert.equal(chunkFor(net, side, side, 16), 1);
  assert.ok(net.tiling(side, side));
  assert.throws(() => chunkFor(net, 8, 8, 0), /positive whole number/);
  net.dispose();
});

// ---- the signed variant (one decoder A pushing up; the attack applies +A or -A) ----

/** A tensor's values. */
async function values(t: Tensor): Promise<Float32Array> {
  return await t.read();
}

/** `clip(x + s * fround(fround(eps * J) * A), 0, 1)` in float32, J broadcast over the channels. */
function perturbRef(
  x: Float32Array,
  j: Float32Array,
  a: Float32Array,
  eps: number,
  sign: number,
  plane: number,
): Float32Array {
  return x.map((v, i) => {
    const jv = j[Math.floor(i / (3 * plane)) * plane + (i % plane)];
    const box = eps === 1 ? jv : Math.fround(jv * eps);
    const d = Math.fround(box * (sign * a[i]));
    return Math.min(1, Math.max(0, Math.fround(v + d)));
  });
}

Deno.test("stqa-net signed: the parameters are the untargeted variant's (one 'dec' branch)", async () => {
  const signed = new StqaNet({ seed: 6, config: { ...TINY, variant: "signed" } });
  const plain = new StqaNet({ seed: 6, config: TINY });
  const two = new StqaNet({ seed: 6, config: { ...TINY, variant: "two-branch" } });
  assert.deepEqual(signed.branches(), ["dec"]);
  const shapes = (n: StqaNet) =>
    Object.fromEntries(Object.entries(n.parameters()).map(([k, p]) => [k, p.shape]));
  assert.deepEqual(shapes(signed), shapes(plain));
  assert.equal(signed.parameterCount(), plain.parameterCount());
  assert.ok(Object.keys(signed.parameters()).some((k) => k.startsWith("dec.")));
  assert.ok(two.parameterCount() > signed.parameterCount());
  // The same seed gives the same weights, so the same map A.
  for (const [k, p] of Object.entries(signed.parameters())) {
    assert.deepEqual(await p.read(), await plain.parameters()[k].read(), k);
  }
  for (const n of [signed, plain, two]) n.dispose();
});

Deno.test("stqa-net signed: without signs, [up, down] = clip(x + eps*J*A), clip(x - eps*J*A)", async () => {
  const net = new StqaNet({ seed: 12, config: { ...TINY, variant: "signed", input: "jnd+rgb" } });
  await saturate(net);
  const plain = new StqaNet({ seed: 12, config: { ...TINY, input: "jnd+rgb" } });
  await saturate(plain);
  for (const [t, h, w, eps] of [[3, 12, 11, 1], [2, 9, 14, 3]]) {
    // Dark and bright stripes at the top, so that eps*J pushes some values past 0 and 1.
    const x0 = await values(clip(t, h, w, RUN_SEED + h));
    const plane = h * w;
    for (let i = 0; i < x0.length; i++) {
      const y = Math.floor((i % plane) / w);
      if (y === 0) x0[i] = 1 / 255;
      if (y === 1) x0[i] = 254 / 255;
    }
    const x = tensor(x0, [t, 3, h, w]);
    const j = computeJnd(x);
    const [r, p] = tidy(() =>
      [
        generatorPerturb(net, x, j, { eps }),
        generatorPerturb(plain, x, j, { eps }),
      ].map((o) => ({ adv: o.adversarial.map((v) => v.keep()), w: o.weights.map((v) => v.keep()) }))
    );
    assert.equal(r.adv.length, 2);
    assert.equal(r.w.length, 2);
    const [a, neg] = [await values(r.w[0]), await values(r.w[1])];
    assert.ok(a.some((v) => v !== 0), "the map is zero");
    assert.deepEqual(neg, a.map((v) => -v), "weights[1] is not -weights[0]");
    // The map is the untargeted network's of the same seed.
    assert.deepEqual(a, await values(p.w[0]));
    const jv = await values(j);
    const [up, down] = [await values(r.adv[0]), await values(r.adv[1])];
    const what = `[${t},3,${h},${w}] eps ${eps}`;
    assert.deepEqual(up, perturbRef(x0, jv, a, eps, 1, plane), `${what}: up`);
    assert.deepEqual(down, perturbRef(x0, jv, a, eps, -1, plane), `${what}: down`);
    // Where neither is clipped, down's perturbation is the negation of up's; both are clipped
    // to [0, 1] somewhere.
    let free = 0, clipped = 0;
    for (let i = 0; i < x0.length; i++) {
      const du = up[i] - x0[i], dd = down[i] - x0[i];
      if (up[i] > 0 && up[i] < 1 && down[i] > 0 && down[i] < 1) {
        free++;
        assert.ok(Math.abs(du + dd) <= 2 ** -23, `${what}: value ${i}: up ${du}, down ${dd}`);
      } else clipped++;
    }
    assert.ok(free > x0.length / 2 && clipped > 0, `${what}: ${free} free, ${clipped} clipped`);
    assert.ok(down.every((v) => v >= 0 && v <= 1) && up.every((v) => v >= 0 && v <= 1));
    for (const k of [x, j, ...r.adv, ...r.w, ...p.adv, ...p.w]) k.dispose();
  }
  net.dispose();
  plain.dispose();
});

Deno.test("stqa-net signed: signs [1, -1] on a batch of 2 equal each clip's own up and down", async () => {
  const net = new StqaNet({ seed: 13, config: { ...TINY, variant: "signed", input: "jnd+rgb" } });
  await saturate(net);
  const [t, h, w] = [3, 10, 9];
  const xs = [clip(t, h, w, RUN_SEED + 21), clip(t, h, w, RUN_SEED + 22)];
  const js = xs.map((x) => computeJnd(x));
  const xb = tidy(() => stack(xs, 0).keep());
  const jb = tidy(() => stack(js, 0).keep());
  const one = 3 * t * h * w;
  // Each clip alone, without signs: [up, down].
  const alone = [];
  for (const k of [0, 1]) {
    const o = tidy(() =>
      generatorPerturb(net, xs[k], js[k], { eps: 2 }).adversarial.map((v) => v.keep())
    );
    alone.push(await Promise.all(o.map(values)));
    o.forEach((v) => v.dispose());
  }
  for (const signs of [[1, -1], [-1, 1], [-1, -1]]) {
    const o = tidy(() => {
      const r = generatorPerturb(net, xb, jb, { eps: 2, signs });
      return { adv: r.adversarial.map((v) => v.keep()), w: r.weights.map((v) => v.keep()) };
    });
    assert.equal(o.adv.length, 1);
    assert.deepEqual(o.adv[0].shape, [2, t, 3, h, w]);
    const v = await values(o.adv[0]);
    for (const k of [0, 1]) {
      const want = alone[k][signs[k] > 0 ? 0 : 1];
      const got = v.subarray(k * one, (k + 1) * one);
      let worst = 0;
      for (let i = 0; i < one; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      assert.ok(worst <= 1e-6, withSeed(`signs [${signs}], clip ${k}: max difference ${worst}`));
    }
    o.adv.forEach((e) => e.dispose());
    o.w.forEach((e) => e.dispose());
  }
  // One number: that sign for a single clip (and for every clip of a batch).
  for (const s of [1, -1]) {
    const o = tidy(() =>
      generatorPerturb(net, xs[1], js[1], { eps: 2, signs: s }).adversarial[0].keep()
    );
    assert.deepEqual(await values(o), alone[1][s > 0 ? 0 : 1]);
    o.dispose();
    const b = tidy(() => generatorPerturb(net, xb, jb, { eps: 2, signs: s }).adversarial[0].keep());
    const bv = await values(b);
    let worst = 0;
    for (let i = 0; i < one; i++) {
      worst = Math.max(worst, Math.abs(bv[one + i] - alone[1][s > 0 ? 0 : 1][i]));
    }
    assert.ok(worst <= 1e-6, withSeed(`signs ${s} on a batch: max difference ${worst}`));
    b.dispose();
  }
  for (const k of [...xs, ...js, xb, jb]) k.dispose();
  net.dispose();
});

Deno.test("stqa-net signed: bad signs throw a RangeError naming the problem", () => {
  const signed = new StqaNet({ seed: 14, config: { ...TINY, variant: "signed" } });
  const x = clip(2, 8, 8, RUN_SEED + 31);
  const j = computeJnd(x);
  const xb = tidy(() => stack([x, x], 0).keep());
  const jb = tidy(() => stack([j, j], 0).keep());
  const range = (re: RegExp) => (e: unknown) => e instanceof RangeError && re.test(e.message);
  const call = (net: StqaNet, f: Tensor, jj: Tensor, signs: number | number[]) => () =>
    tidy(() => {
      generatorPerturb(net, f, jj, { signs });
    });
  for (const bad of [0, 2, 0.5, NaN]) {
    assert.throws(
      call(signed, x, j, bad),
      range(new RegExp(`must be \\+1 or -1, got \\[${bad}\\]`)),
    );
  }
  assert.throws(call(signed, xb, jb, [1, 0]), range(/must be \+1 or -1, got \[1,0\]/));
  assert.throws(call(signed, xb, jb, [1]), range(/1 sign\(s\) for frames \[2,2,3,8,8\]/));
  assert.throws(call(signed, xb, jb, [1, -1, 1]), range(/3 sign\(s\) for frames \[2,2,3,8,8\]/));
  // A list on one clip [T,3,H,W]: one per clip of a batch only.
  assert.throws(call(signed, x, j, [1, -1]), range(/2 sign\(s\) for frames \[2,3,8,8\]/));
  assert.throws(call(signed, x, j, [1]), range(/1 sign\(s\) for frames \[2,3,8,8\]/));
  for (const variant of ["untargeted", "two-branch"] as const) {
    const other = new StqaNet({ seed: 14, config: { ...TINY, variant } });
    assert.throws(
      call(other, x, j, 1),
      range(new RegExp(`signs need a signed generator, not ${variant}`)),
    );
    other.dispose();
  }
  for (const k of [x, j, xb, jb]) k.dispose();
  signed.dispose();
});

Deno.test("stqa-net signed: branchFor (up 0, down 1, untargeted by the clean score vs the median) and attackWithGenerator", async () => {
  const net = new StqaNet({ seed: 15, config: { ...TINY, variant: "signed" } });
  await saturate(net);
  const g = generatorOf(net); // qMin 1, qMax 5, median 3
  assert.ok(steerable(net));
  assert.equal(directionsOf(net), 2);
  assert.equal(branchFor(g, "up"), 0);
  assert.equal(branchFor(g, "down"), 1);
  assert.equal(branchFor(g, "up", 4.9), 0);
  assert.equal(branchFor(g, "down", 1.1), 1);
  // Above the median: toward qMin (down); at or below: toward qMax (up).
  assert.equal(branchFor(g, "untargeted", 3.01), 1);
  assert.equal(branchFor(g, "untargeted", 2.99), 0);
  assert.equal(branchFor(g, "untargeted", 3), 0);
  assert.equal(branchFor(g, "untargeted", 3.5, 4), 0); // a median given
  assert.equal(branchFor(g, "untargeted", 3.5, 3.2), 1);
  assert.equal(branchFor({ ...g, info: { ...g.info, median: 2 } }, "untargeted", 2.5), 1);
  assert.throws(
    () => branchFor(g, "untargeted"),
    (e) => e instanceof RangeError && /signed generator needs the clean score/.test(e.message),
  );
  // The paper's untargeted variant has one direction and no up/down.
  const plain = generatorOf(new StqaNet({ seed: 15, config: TINY }));
  assert.equal(branchFor(plain, "untargeted", 4.5), 0);
  assert.equal(directionsOf(plain.net), 1);
  assert.throws(() => branchFor(plain, "down"), /needs a two-branch or signed generator/);
  plain.net.dispose();
  // attackWithGenerator: branch 0 is +A, branch 1 is -A (chunks of 2 over 5 frames).
  const x = clip(5, 9, 8, RUN_SEED + 41);
  const j = computeJnd(x);
  const ref = tidy(() => generatorPerturb(net, x, j).adversarial.map((v) => v.keep()));
  for (const branch of [0, 1]) {
    const adv = await attackWithGenerator(g, x, {
      branch,
      jnd: j,
      quantize: false,
      chunkFrames: 2,
    });
    const [got, want] = [await values(adv), await values(ref[branch])];
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
    assert.ok(worst <= 1e-5, withSeed(`branch ${branch}: max difference ${worst}`));
    adv.dispose();
  }
  await assert.rejects(
    attackWithGenerator(g, x, { branch: 2, jnd: j }),
    /branch 2 does not exist \(the generator has 2\)/,
  );
  for (const k of [x, j, ...ref]) k.dispose();
  net.dispose();
});

Deno.test("generatorPerturb directions: only the branches asked for, in that order, equal to the full result", async () => {
  for (const variant of ["signed", "two-branch", "untargeted"] as const) {
    const net = new StqaNet({ seed: 14, config: { ...TINY, variant, input: "jnd+rgb" } });
    await saturate(net);
    const x = clip(2, 10, 13, RUN_SEED + 14);
    const j = computeJnd(x);
    const all = await Promise.all(
      generatorPerturb(net, x, j, { eps: 2 }).adversarial.map((a) => a.read()),
    );
    const n = directionsOf(net);
    assert.equal(all.length, n, variant);
    const order = n === 2 ? [1, 0] : [0];
    const some = generatorPerturb(net, x, j, { eps: 2, directions: order });
    assert.equal(some.adversarial.length, order.length);
    for (const [k, d] of order.entries()) {
      assert.deepEqual(await some.adversarial[k].read(), all[d], `${variant}: direction ${d}`);
    }
    if (n === 2) {
      // The two directions differ (a test that picked the wrong one would see it).
      assert.notDeepEqual(all[0], all[1], variant);
    }
    assert.throws(
      () => generatorPerturb(net, x, j, { directions: [n] }),
      new RegExp(`direction ${n} does not exist \\(the generator has ${n}\\)`),
    );
  }
  const signed = new StqaNet({ seed: 14, config: { ...TINY, variant: "signed" } });
  const x = clip(1, 8, 8, RUN_SEED);
  assert.throws(
    () => generatorPerturb(signed, x, computeJnd(x), { signs: 1, directions: [0] }),
    /signs or directions, not both/,
  );
});
