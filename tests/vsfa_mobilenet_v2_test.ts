/**
 * The `vsfa-mobilenetv2` victim: a frozen pretrained MobileNetV2 (nsfwjs' weights, bundled) with
 * VSFA's head. The backbone's parity with PyTorch is mobilenet_v2_test.ts's and the head's is
 * published_test.ts's (VSFA's layers); here: the victim's own paths agree with each other, its
 * input gradient with finite differences, frames above `maxPixels` are scored as their
 * downscaled copy, and the bundled model loads and tells clean frames from damaged ones.
 */

import assert from "assert";
import { assertClose, initGpu, randu, RUN_SEED } from "./_helpers.ts";
import { createVictim, loadVictim } from "../src/models/victims/mod.ts";
import { VsfaMobileNetV2 } from "../src/models/victims/vsfa_mobilenet_v2.ts";
import { fitVictim } from "../src/train/victim.ts";
import { tensor } from "../src/tensor/tensor.ts";
import { add, mul, resize, sum } from "../src/nn/mod.ts";
import { readVideo } from "../src/video/mod.ts";

const TINY = { backbone: "random" as const, alpha: 0.35, reduced: 8, hidden: 4 };

function frames(shape: readonly number[], seed: number) {
  return tensor(Float32Array.from(randu(shape.reduce((a, b) => a * b, 1), seed)), [...shape]);
}

Deno.test("vsfa-mobilenetv2: score, scorePrepared(prepare), batch and stream agree", async () => {
  await initGpu();
  const v = new VsfaMobileNetV2({ seed: RUN_SEED, config: TINY });
  try {
    const x = frames([5, 3, 64, 72], RUN_SEED);
    const whole = (await v.score(x).read())[0];
    const prepared = v.prepare(x);
    assert.deepEqual(prepared.shape, [5, 2 * 1280]);
    const viaPrepared = (await v.scorePrepared(prepared.reshape([1, 5, 2560])).read())[0];
    assert.ok(Math.abs(viaPrepared - whole) <= 1e-5, `${viaPrepared} vs ${whole}`);
    assert.ok(whole > 1 && whole < 5, `score ${whole} outside (1, 5)`);
    const stream = v.stream();
    const d = await x.read();
    const f = 3 * 64 * 72;
    for (const [s, e] of [[0, 2], [2, 3], [3, 5]]) {
      stream.push(tensor(d.slice(s * f, e * f), [e - s, 3, 64, 72]));
    }
    const r = await stream.finish();
    assert.ok(Math.abs(r.score - whole) <= 1e-5, `stream ${r.score} vs ${whole}`);
    const q = await v.frameScores(x).read();
    assert.equal(q.length, 5);
    for (let i = 0; i < 5; i++) assert.ok(Math.abs(q[i] - r.frameScores[i]) <= 1e-5);
  } finally {
    v.dispose();
  }
});

Deno.test("vsfa-mobilenetv2: the bundled backbone's features and input gradient match PyTorch", async () => {
  await initGpu();
  // tests/fixtures/make_vsfa_mobilenet_v2_fixture.py: float64 PyTorch on the bundled weights.
  // A ReLU6 network is piecewise linear with kinks everywhere, so finite differences disagree
  // with any exact gradient by tens of percent here; the reference's gradient is the check.
  const dir = new URL("./fixtures/", import.meta.url);
  const want = JSON.parse(await Deno.readTextFile(new URL("vsfa_mobilenet_v2.json", dir)));
  const [t, c, h, w] = want.shape;
  const rgb = await Deno.readFile(new URL(want.frames, dir));
  const base = new Float32Array(t * c * h * w);
  for (let f = 0; f < t; f++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let k = 0; k < c; k++) {
          base[((f * c + k) * h + y) * w + x] = rgb[((f * h + y) * w + x) * 3 + k] / 255;
        }
      }
    }
  }
  const v = new VsfaMobileNetV2({ seed: 1 });
  try {
    const x = tensor(base, want.shape, { requiresGrad: true });
    const feats = v.prepare(x);
    const n = want.features.length;
    const ramp = tensor(Float32Array.from({ length: n }, (_, i) => -1 + 2 * i / (n - 1)), [
      t,
      n / t,
    ]);
    sum(mul(feats, ramp)).backward();
    assertClose(await feats.read(), want.features, { rtol: 1e-4, atol: 1e-5, what: "features" });
    const g = await x.grad!.read();
    want.bumps.forEach(([f, y0, x0]: number[], i: number) => {
      let p = 0;
      for (let k = 0; k < c; k++) {
        for (let y = 0; y < 16; y++) {
          for (let xx = 0; xx < 16; xx++) {
            p += g[((f * c + k) * h + y0 + y) * w + x0 + xx] * Math.sin(0.4 * y + 0.3 * xx + k);
          }
        }
      }
      const e = want.projections[i];
      assert.ok(
        Math.abs(p - e) <= 1e-3 * Math.abs(e) + 1e-4,
        `gradient on the bump at frame ${f} (${x0}, ${y0}): ${p}, PyTorch ${e}`,
      );
    });
  } finally {
    v.dispose();
  }
});

Deno.test("vsfa-mobilenetv2: frames above maxPixels are scored as their downscaled copy", async () => {
  await initGpu();
  const small = new VsfaMobileNetV2({ seed: 3, config: TINY });
  const capped = new VsfaMobileNetV2({ seed: 3, config: { ...TINY, maxPixels: 96 * 64 } });
  try {
    assert.deepEqual(capped.scoredSize(128, 192), { height: 64, width: 96 });
    assert.deepEqual(capped.scoredSize(64, 96), { height: 64, width: 96 });
    const x = frames([2, 3, 128, 192], RUN_SEED + 3);
    const a = (await capped.score(x).read())[0];
    const y = resize(x, { height: 64, width: 96, antialias: true });
    const b = (await small.score(y).read())[0];
    assert.ok(Math.abs(a - b) <= 1e-5, `${a} vs ${b}`);
    const full = (await small.score(x).read())[0];
    assert.ok(Math.abs(full - a) > 1e-4, "the cap changed nothing");
  } finally {
    small.dispose();
    capped.dispose();
  }
});

Deno.test("vsfa-mobilenetv2: training moves the head only and lowers the loss", async () => {
  await initGpu();
  // The bundled backbone: a random one saturates its ReLU6s and its features say little.
  const v = new VsfaMobileNetV2({ seed: 2, config: { reduced: 8, hidden: 4 } });
  try {
    // Clips whose label is set by their noise level, prepared once (the backbone's features).
    const clips = [];
    for (let k = 0; k < 6; k++) {
      const level = k / 5;
      const noise = randu(3 * 3 * 64 * 64, RUN_SEED + 10 + k, -0.5, 0.5);
      const data = Float32Array.from(noise, (n) => 0.5 + level * 0.8 * n);
      const input = v.prepare(tensor(data, [3, 3, 64, 64])).keep();
      clips.push({ input, label: 5 - 4 * level, path: `synthetic-${k}` });
    }
    const backbone = await v.backboneParameters()["Conv1.weight"].read();
    const fit = await fitVictim(v, clips, {
      steps: 60,
      batch: 6,
      lr: 3e-2,
      seed: 1,
      onProgress: () => {},
    });
    const first = fit.losses[0];
    const last = fit.losses.slice(-3).reduce((a, b) => a + b, 0) / 3;
    assert.ok(last < 0.7 * first, `loss ${first} -> ${last} (seed ${RUN_SEED})`);
    assert.deepEqual(await v.backboneParameters()["Conv1.weight"].read(), backbone);
    clips.forEach((c) => c.input.dispose());
  } finally {
    v.dispose();
  }
});

Deno.test("vsfa-mobilenetv2: bad configs and inputs are refused, naming them", async () => {
  await initGpu();
  assert.throws(
    () => createVictim("vsfa-mobilenetv2", { config: { alpha: 0.5 } }),
    /alpha.*nsfwjs backbone has alpha 1/,
  );
  assert.throws(() => createVictim("vsfa-mobilenetv2", { config: { maxPixels: 10 } }), /maxPixels/);
  const v = new VsfaMobileNetV2({ seed: 1, config: TINY });
  try {
    assert.throws(() => v.scorePrepared(frames([1, 2, 3, 8, 8], 1)), /prepared features/);
    const clip = { input: v.prepare(frames([2, 3, 64, 64], 2)).keep(), label: 3, path: "x" };
    assert.throws(
      () => v.prepare(frames([1, 3, 48, 60], 3)),
      /frames of 60x48 give a 1x1 map.*at least 64 pixels/,
    );
    await assert.rejects(
      () => fitVictim(v, [clip], { steps: 1, augment: true, onProgress: () => {} }),
      /augment transposes frames/,
    );
    clip.input.dispose();
  } finally {
    v.dispose();
  }
});

Deno.test("vsfa-mobilenetv2: the bundled model scores clean frames above damaged ones", async () => {
  await initGpu();
  const v = await loadVictim("vsfa-mobilenetv2");
  try {
    assert.equal(Object.keys(v.parameters()).length, 8, "only the head is saved and loaded");
    const clean = await readVideo("data/samples/astronaut_pan.mkv", {
      maxFrames: 4,
      size: { width: 224, height: 224 },
    });
    const noise = frames(clean.shape, RUN_SEED + 4);
    // Strong noise (sigma about 0.17) and a strong blur (down by 8, back up).
    const noisy = add(clean, mul(add(noise, -0.5), 0.6));
    const blurred = resize(resize(clean, { height: 28, width: 28, antialias: true }), {
      height: 224,
      width: 224,
    });
    const s = async (x: typeof clean) => (await v.score(x).read())[0];
    const [c, n, b] = [await s(clean), await s(noisy), await s(blurred)];
    for (const q of [c, n, b]) assert.ok(q >= 1 && q <= 5, `score ${q} outside 1..5`);
    assert.ok(c > n + 0.5, `clean ${c} not above noisy ${n}`);
    assert.ok(c > b + 0.5, `clean ${c} not above blurred ${b}`);
    const g = sum(v.prepare(clean));
    assert.ok(Number.isFinite((await g.read())[0]));
  } finally {
    v.dispose();
  }
});
