// STQA-Net (src/models/stqa_net.ts, src/attack/stqa.ts): gradients through the whole generator
// against finite differences on a tiny config, the visual constraint |d| <= eps * J (float and
// 8-bit), chunked attacks equal to whole-clip attacks, odd frame sizes, config and shape errors,
// and generator files.

import assert from "assert";
import { join } from "path";
import {
  attackWithGenerator,
  computeJnd,
  type Generator,
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
import { chunkFor, stqaAttack } from "../src/attack/stqa.ts";
import { mul, sum } from "../src/nn/mod.ts";
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

Deno.test("stqa-net: output shapes for one clip, a batch, odd sizes and both variants", () => {
  for (const variant of ["untargeted", "two-branch"] as const) {
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
  for (const variant of ["untargeted", "two-branch"] as const) {
    const net = new StqaNet({ seed: 5, config: { ...TINY, variant, input: "jnd+rgb" } });
    await saturate(net);
    const gen = generatorOf(net);
    const x = clip(7, 10, 14, RUN_SEED + 3);
    const branch = variant === "two-branch" ? 1 : 0;
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
