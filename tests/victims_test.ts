// Victim models on synthetic clips: shapes, seeded init, gradients with respect to the input
// frames against finite differences (tiny configs), fragments, save/load round trips,
// loadVictim errors, a 20-step training smoke test, checkpoint/resume equivalence and the stop
// on a non-finite loss.

import assert from "assert";
import { join } from "path";
import {
  createVictim,
  fragments,
  loadVictim,
  MODELS_DIR,
  saveVictim,
  TRAINABLE_FAMILIES,
  type TrainableFamily,
  type Victim,
} from "../src/models/victims/mod.ts";
import {
  evaluateVictim,
  fitVictim,
  type LoadedClip,
  NonFiniteLossError,
  rankingLoss,
} from "../src/train/victim.ts";
import { mscn } from "../src/models/victims/victim.ts";
import { noGrad, tensor, tidy } from "../src/tensor/tensor.ts";
import { checkOp, initGpu, randu, rng, RUN_SEED, withSeed } from "./_helpers.ts";

await initGpu();

/**
 * The small families trained from scratch. `vsfa-mobilenetv2` (a frozen pretrained backbone, no
 * `slope` or `rgb+mscn` input) has its own tests in vsfa_mobilenet_v2_test.ts and is among the
 * bundled victims checked at the end.
 */
type Mini = Exclude<TrainableFamily, "vsfa-mobilenetv2">;

/** Tiny configs: small frames and few channels, so that tests are quick. */
const TINY: Record<Mini, { config: Record<string, unknown>; h: number; w: number }> = {
  "vsfa-mini": {
    config: { channels: [4, 6], reduced: 5, hidden: 3, frames: 3, height: 12, width: 10 },
    h: 12,
    w: 10,
  },
  "simplevqa-mini": {
    config: {
      channels: [4, 6],
      motionChannels: [3, 4],
      hidden: 5,
      frames: 3,
      height: 16,
      width: 14,
    },
    h: 16,
    w: 14,
  },
  "fastvqa-mini": {
    config: { channels: [4, 5, 6], grid: 2, patch: 6, frames: 3, height: null, width: null },
    h: 15,
    w: 13,
  },
};
const FAMILIES = Object.keys(TINY) as Mini[];

function tiny(family: Mini, seed = 1): Victim {
  return createVictim(family, { seed, config: TINY[family].config });
}

function clipData(family: Mini, t: number, seed: number): Float64Array {
  const { h, w } = TINY[family];
  return randu(t * 3 * h * w, seed);
}

async function scoreOf(v: Victim, data: ArrayLike<number>, shape: number[]): Promise<number> {
  const s = tidy(() => noGrad(() => v.score(tensor(Float32Array.from(data), shape))));
  const out = (await s.read())[0];
  s.dispose();
  return out;
}

for (const family of FAMILIES) {
  Deno.test(`${family}: output shapes, finite scores near the middle of the scale`, async () => {
    const v = tiny(family);
    const { h, w } = TINY[family];
    const t = 3;
    const x = tensor(Float32Array.from(clipData(family, t, RUN_SEED)), [t, 3, h, w]);
    const [s, fs, sb] = tidy(() =>
      noGrad(() => {
        const b = tensor(Float32Array.from(clipData(family, 2 * t, RUN_SEED + 1)), [2, t, 3, h, w]);
        return [v.score(x), v.frameScores!(x), v.scoreBatch(b)];
      })
    );
    assert.deepEqual(s.shape, [1]);
    assert.deepEqual(fs.shape, [t]);
    assert.deepEqual(sb.shape, [2]);
    for (const y of [s, fs, sb]) {
      const vals = await y.read();
      assert.ok(
        vals.every((q) => Number.isFinite(q) && q > 0 && q < 6),
        withSeed(`${family}: ${vals}`),
      );
      y.dispose();
    }
    assert.equal(v.config.qMin, 1);
    assert.equal(v.config.qMax, 5);
    // One clip scored alone equals the same clip inside a batch.
    const batch = tensor(
      Float32Array.from([...clipData(family, t, RUN_SEED), ...clipData(family, t, 9)]),
      [2, t, 3, h, w],
    );
    const both = tidy(() => noGrad(() => v.scoreBatch(batch)));
    const alone = await scoreOf(v, clipData(family, t, RUN_SEED), [t, 3, h, w]);
    const inBatch = (await both.read())[0];
    assert.ok(
      Math.abs(inBatch - alone) < 1e-5,
      withSeed(`${family}: scored alone ${alone}, in a batch ${inBatch}`),
    );
    [x, batch, both].forEach((a) => a.dispose());
    assert.throws(() => v.score(tensor(new Float32Array(2 * 4 * 5), [2, 4, 5])), /\[T,3,H,W\]/);
    v.dispose();
  });

  Deno.test(`${family}: the same seed gives the same weights, another seed others`, async () => {
    const a = tiny(family, 5);
    const b = tiny(family, 5);
    const c = tiny(family, 6);
    let differs = false;
    for (const [name, p] of Object.entries(a.parameters())) {
      const pa = await p.read();
      assert.deepEqual(pa, await b.parameters()[name].read(), `${name} with equal seeds`);
      const pc = await c.parameters()[name].read();
      if (pa.some((x, i) => x !== pc[i])) differs = true;
    }
    assert.ok(differs, "seeds 5 and 6 gave identical weights");
    [a, b, c].forEach((v) => v.dispose());
  });

  Deno.test(`${family}: gradient of the score with respect to input pixels (finite differences)`, async () => {
    // Finite differences are no check across a ReLU kink, and a 1e-2 step crosses some in a
    // net this small; so the activations are made linear here (slope 1). Every other op keeps
    // its nonlinearity (std pooling, GRU gates, softmin, the hysteresis min), and leakyRelu's
    // own gradient is tested op by op in elementwise_test.ts.
    const v = createVictim(family, {
      seed: RUN_SEED % 1000,
      config: { ...TINY[family].config, slope: 1 },
    });
    const { h, w } = TINY[family];
    const t = 3;
    const shape = [t, 3, h, w];
    const data = clipData(family, t, RUN_SEED + 3);
    const x = tensor(Float32Array.from(data), shape, { requiresGrad: true });
    tidy(() => v.score(x).backward());
    const g = await x.grad!.read();
    x.dispose();
    assert.ok(g.some((q) => q !== 0), withSeed(`${family}: no gradient reached the frames`));
    // Float32 forward passes: central differences with a step large enough to be well above
    // rounding (1e-2 of a [0,1] pixel), small enough that the model is locally smooth. The
    // pixels checked: the four with the largest gradients and four at random.
    const order = [...g.keys()].sort((i, j) => Math.abs(g[j]) - Math.abs(g[i]));
    const r = rng(RUN_SEED + 5);
    const picks = [
      ...order.slice(0, 4),
      ...Array.from({ length: 4 }, () => Math.floor(r.uniform() * g.length)),
    ];
    const hStep = 1e-2;
    for (const i of picks) {
      const plus = Float64Array.from(data);
      const minus = Float64Array.from(data);
      plus[i] += hStep;
      minus[i] -= hStep;
      const fd = ((await scoreOf(v, plus, shape)) - (await scoreOf(v, minus, shape))) / (2 * hStep);
      const tol = 2e-4 + 2e-2 * Math.abs(fd);
      assert.ok(
        Math.abs(fd - g[i]) <= tol,
        withSeed(`${family}: d score / d pixel ${i}: backward ${g[i]}, finite differences ${fd}`),
      );
    }
    // Along a random direction over all pixels.
    const dir = randu(data.length, RUN_SEED + 11, -1, 1);
    const eps = 1e-3;
    const plus = data.map((d, i) => d + eps * dir[i]);
    const minus = data.map((d, i) => d - eps * dir[i]);
    const fd = ((await scoreOf(v, plus, shape)) - (await scoreOf(v, minus, shape))) / (2 * eps);
    const dot = g.reduce((s, gi, i) => s + gi * dir[i], 0);
    assert.ok(
      Math.abs(fd - dot) <= 2e-4 + 2e-2 * Math.abs(fd),
      withSeed(`${family}: directional derivative: backward ${dot}, finite differences ${fd}`),
    );
    v.dispose();
  });

  Deno.test(`${family}: save and load give identical scores; loadVictim errors`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "stqa_victim_" });
    const v = tiny(family, 3);
    const { h, w } = TINY[family];
    const data = clipData(family, 3, RUN_SEED + 4);
    try {
      const files = await saveVictim(v, join(dir, "m.safetensors"), { training: { seed: 3 } });
      const loaded = await loadVictim(files.weights);
      assert.equal(loaded.family, family);
      assert.equal(loaded.name, "m");
      const a = await scoreOf(v, data, [3, 3, h, w]);
      const b = await scoreOf(loaded, data, [3, 3, h, w]);
      assert.equal(a, b, withSeed(`${family}: score of the saved and the loaded victim`));
      // Loaded victims are frozen, but gradients still reach the frames.
      const x = tensor(Float32Array.from(data), [3, 3, h, w], { requiresGrad: true });
      tidy(() => loaded.score(x).backward());
      assert.ok(x.grad !== null, withSeed(`${family}: no gradient through the loaded victim`));
      assert.ok(Object.values(loaded.parameters()).every((p) => !p.requiresGrad && !p.grad));
      x.dispose();
      loaded.dispose();

      await assert.rejects(
        () => loadVictim(join(dir, "absent.safetensors")),
        (e: Error) => e.message.includes(join(dir, "absent.json")),
      );
      // Config present, weights missing.
      await Deno.copyFile(files.json, join(dir, "noweights.json"));
      await assert.rejects(
        () => loadVictim(join(dir, "noweights")),
        (e: Error) => e.message.includes(join(dir, "noweights.safetensors")),
      );
      // A config that no longer matches the weights: one more channel in the last layer.
      const json = JSON.parse(await Deno.readTextFile(files.json));
      const chans = json.config.channels as number[];
      chans[chans.length - 1] += 1;
      await Deno.writeTextFile(files.json, JSON.stringify(json));
      await assert.rejects(
        () => loadVictim(files.weights),
        (e: Error) =>
          e.message.includes(files.weights) && e.message.includes(files.json) &&
          new RegExp(`'conv${chans.length}\\.weight'|'spatial${chans.length}\\.weight'`).test(
            e.message,
          ),
      );
      // A config the family's schema rejects.
      json.config.unknownField = 1;
      await Deno.writeTextFile(files.json, JSON.stringify(json));
      await assert.rejects(() => loadVictim(files.weights), /bad .* config/);
    } finally {
      v.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("loadVictim: an unknown bundled name says which exist", async () => {
  await assert.rejects(() => loadVictim("no-such-victim"), /known bundled victims: vsfa-mini/);
});

Deno.test("fragments: patches at the cell centres at full resolution", async () => {
  // x[n, c, i, j] = 1000 n + 100 c + 0.5 i + 0.001 j... encoded exactly in float32 via small ints.
  const [n, h, w] = [2, 9, 11];
  const data = new Float32Array(n * 3 * h * w);
  for (let a = 0; a < n; a++) {
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          data[((a * 3 + c) * h + i) * w + j] = a * 10000 + c * 1000 + i * 20 + j;
        }
      }
    }
  }
  const f = tidy(() => fragments(tensor(data, [n, 3, h, w]), { grid: 2, patch: 3 }));
  assert.deepEqual(f.shape, [n, 3, 6, 6]);
  const got = await f.read();
  // Cells are 4x5 (floor(9/2), floor(11/2)); the 3x3 patch starts at floor((4-3)/2) = 0 and
  // floor((5-3)/2) = 1 inside each cell: rows 0..2 and 4..6, columns 1..3 and 6..8.
  const rows = [0, 1, 2, 4, 5, 6];
  const cols = [1, 2, 3, 6, 7, 8];
  for (let a = 0; a < n; a++) {
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < 6; i++) {
        for (let j = 0; j < 6; j++) {
          assert.equal(
            got[((a * 3 + c) * 6 + i) * 6 + j],
            a * 10000 + c * 1000 + rows[i] * 20 + cols[j],
          );
        }
      }
    }
  }
  f.dispose();
  assert.throws(
    () => fragments(tensor(new Float32Array(3 * 5 * 5), [1, 3, 5, 5]), { grid: 2, patch: 3 }),
    /too small/,
  );
});

/** Synthetic clips whose label is set by their noise level: noisier is worse. */
function syntheticClips(family: Mini, count: number, seed: number): LoadedClip[] {
  const v = tiny(family);
  const { h, w } = TINY[family];
  const r = rng(seed);
  const clips: LoadedClip[] = [];
  for (let k = 0; k < count; k++) {
    const level = k / (count - 1);
    const base = 0.3 + 0.4 * r.uniform();
    const data = new Float32Array(3 * 3 * h * w);
    for (let i = 0; i < data.length; i++) data[i] = base + level * 0.4 * (r.uniform() - 0.5);
    const input = tidy(() => v.prepare(tensor(data, [3, 3, h, w]))).keep();
    clips.push({ input, label: 5 - 4 * level, path: `synthetic-${k}` });
  }
  v.dispose();
  return clips;
}

for (const family of FAMILIES) {
  Deno.test(`${family}: 60 training steps on synthetic clips lower the loss`, async () => {
    const clips = syntheticClips(family, 6, RUN_SEED);
    const v = tiny(family, 2);
    const fit = await fitVictim(v, clips, {
      steps: 60,
      batch: 6,
      lr: 3e-2,
      seed: 1,
      onProgress: () => {},
    });
    const first = fit.losses[0];
    const last = fit.losses.slice(-3).reduce((a, b) => a + b, 0) / 3;
    assert.equal(fit.losses.length, 60);
    console.log(`${family}: loss ${first.toFixed(4)} -> ${last.toFixed(4)}`);
    // The first loss is about the labels' variance (the head starts at the middle of the
    // scale); below 0.7 of it, the model has learnt part of the noise-to-label relation.
    assert.ok(last < 0.7 * first, withSeed(`${family}: loss ${first} -> ${last}`));
    clips.forEach((c) => c.input.dispose());
    v.dispose();
  });
}

Deno.test("fitVictim: 6 + resumed 6 steps equal 12 steps straight; a NaN loss stops with the checkpoint named", async () => {
  const family: TrainableFamily = "simplevqa-mini";
  const clips = syntheticClips(family, 5, RUN_SEED + 1);
  const dir = await Deno.makeTempDir({ prefix: "stqa_ckpt_" });
  const opts = { steps: 12, batch: 3, lr: 5e-3, seed: 4, checkpointEvery: 3, onProgress: () => {} };
  try {
    const straight = tiny(family, 7);
    const a = await fitVictim(straight, clips, opts);
    const resumed = tiny(family, 7);
    const part = await fitVictim(resumed, clips, { ...opts, checkpointDir: dir, stopAfter: 6 });
    assert.equal(part.step, 6, withSeed("steps of the stopped run"));
    resumed.dispose();
    const again = tiny(family, 99); // other initial weights: the checkpoint must replace them
    const b = await fitVictim(again, clips, { ...opts, checkpointDir: dir, resume: true });
    assert.equal(b.step, 12, withSeed("steps of the resumed run"));
    assert.deepEqual(b.losses, a.losses, withSeed("losses resumed vs straight"));
    for (const [name, p] of Object.entries(straight.parameters())) {
      assert.deepEqual(
        await again.parameters()[name].read(),
        await p.read(),
        withSeed(`${name} resumed vs straight`),
      );
    }
    // Other options do not resume silently.
    await assert.rejects(
      () => fitVictim(again, clips, { ...opts, lr: 1e-3, checkpointDir: dir, resume: true }),
      /other options \(lr 0.005\)/,
    );
    // A NaN label makes the loss NaN: a clear error naming the last good checkpoint.
    const bad = [...clips, { ...clips[0], label: NaN }];
    const victim = tiny(family, 7);
    await assert.rejects(
      () => fitVictim(victim, bad, { ...opts, batch: bad.length, checkpointDir: dir }),
      (e: Error) =>
        e instanceof NonFiniteLossError && /loss is NaN at step 1/.test(e.message) &&
        e.message.includes("No checkpoint was written yet"),
    );
    victim.dispose();
    straight.dispose();
    again.dispose();
  } finally {
    clips.forEach((c) => c.input.dispose());
    await Deno.remove(dir, { recursive: true });
  }
});

/** Float64 reference of mscn on [N,C,H,W] (windows clipped at the border). */
function mscnRef(x: Float64Array, shape: number[], k: number, c: number): Float64Array {
  const [n, ch, h, w] = shape;
  const out = new Float64Array(x.length);
  const r = (k - 1) / 2;
  for (let p = 0; p < n * ch; p++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        let s = 0;
        let s2 = 0;
        let cnt = 0;
        for (let a = Math.max(0, i - r); a <= Math.min(h - 1, i + r); a++) {
          for (let b = Math.max(0, j - r); b <= Math.min(w - 1, j + r); b++) {
            const v = x[(p * h + a) * w + b];
            s += v;
            s2 += v * v;
            cnt++;
          }
        }
        const mu = s / cnt;
        const variance = Math.max(0, s2 / cnt - mu * mu);
        const idx = (p * h + i) * w + j;
        out[idx] = (x[idx] - mu) / (Math.sqrt(variance + 1e-6) + c);
      }
    }
  }
  return out;
}

// mscn runs the fused localNormalize op; the cases include a window taller than the image and a
// one-pixel window (zero variance). tests/mscn_test.ts checks it against the composed formula.
for (
  const [shape, k] of [
    [[1, 3, 7, 5], 5],
    [[2, 1, 6, 9], 3],
    [[1, 2, 4, 4], 5],
    [[1, 2, 3, 9], 5],
    [[2, 1, 4, 5], 1],
  ] as const
) {
  Deno.test(`mscn matches a float64 reference: [${shape}] kernel ${k}`, async () => {
    await checkOp({
      name: "mscn",
      inputs: [{ shape: [...shape], range: [0, 1] }],
      gpu: (x) => mscn(x, { kernel: k }),
      ref: (x) => mscnRef(x, [...shape], k, 1 / 64),
      fdStep: 1e-5,
    });
  });
}

Deno.test("rgb+mscn input: six input channels, scores and gradients still flow", async () => {
  for (const family of FAMILIES) {
    const v = createVictim(family, {
      seed: 2,
      config: { ...TINY[family].config, input: "rgb+mscn" },
    });
    const { h, w } = TINY[family];
    const x = tensor(Float32Array.from(clipData(family, 3, RUN_SEED + 8)), [3, 3, h, w], {
      requiresGrad: true,
    });
    const s = tidy(() => {
      const y = v.score(x);
      y.backward();
      return y;
    });
    const score = (await s.read())[0];
    assert.ok(Number.isFinite(score), withSeed(`${family} rgb+mscn: score ${score}`));
    assert.ok(
      (await x.grad!.read()).some((g) => g !== 0),
      withSeed(`${family} rgb+mscn: no gradient reached the frames`),
    );
    const first = Object.entries(v.parameters()).find(([n]) => n.endsWith("1.weight"))!;
    assert.equal(first[1].shape[1], 6, `${family}: ${first[0]} [${first[1].shape}]`);
    [s, x].forEach((t) => t.dispose());
    v.dispose();
  }
});

Deno.test("bundled victims in data/models load and score a clip on the label scale", async () => {
  for (const family of TRAINABLE_FAMILIES) {
    const v = await loadVictim(family);
    assert.equal(v.family, family);
    const c = v.config;
    const [h, w] = [c.height ?? 64, c.width ?? 64];
    const x = tensor(Float32Array.from(randu(c.frames * 3 * h * w, RUN_SEED + 21)), [
      c.frames,
      3,
      h,
      w,
    ]);
    const s = tidy(() => noGrad(() => v.score(x)));
    const q = (await s.read())[0];
    assert.ok(
      Number.isFinite(q) && q > c.qMin - 2 && q < c.qMax + 2,
      withSeed(`${family}: score ${q}`),
    );
    const meta = JSON.parse(await Deno.readTextFile(join(MODELS_DIR, `${family}.json`)));
    assert.match(meta.training.command, new RegExp(`^deno task train-victim --model ${family}`));
    assert.equal(typeof meta.test.srcc, "number");
    [x, s].forEach((t) => t.dispose());
    v.dispose();
  }
});

function rankingRef(p: Float64Array, labels: number[], margin: number): Float64Array {
  let total = 0;
  let pairs = 0;
  for (let i = 0; i < labels.length; i++) {
    for (let j = i + 1; j < labels.length; j++) {
      const d = labels[i] - labels[j];
      if (Math.abs(d) <= 0.05) continue;
      total += Math.max(0, margin - Math.sign(d) * (p[i] - p[j]));
      pairs++;
    }
  }
  return Float64Array.of(total / pairs);
}

for (const n of [2, 5, 9]) {
  Deno.test(`rankingLoss: ${n} clips against a float64 reference and finite differences`, async () => {
    const r = rng(RUN_SEED + n);
    // Labels 0.3 apart at least except one tie (a skipped pair) when n > 2.
    const labels = Array.from({ length: n }, (_, i) => 1 + 0.3 * i + 0.01 * r.uniform());
    if (n > 2) labels[n - 1] = labels[0] + 0.02;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(r.uniform() * (i + 1));
      [labels[i], labels[j]] = [labels[j], labels[i]];
    }
    await checkOp({
      name: `rankingLoss n=${n}`,
      inputs: [{ shape: [n], range: [1, 5] }],
      gpu: (p) => rankingLoss(p, labels, 0.1)!,
      ref: (p) => rankingRef(p, labels, 0.1),
    });
  });
}

Deno.test("rankingLoss: no pair with labels 0.05 apart gives undefined; a right order costs 0", async () => {
  assert.equal(rankingLoss(tensor([1, 2], [2]), [3, 3.01], 0.1), undefined);
  const ok = rankingLoss(tensor([1, 2, 3], [3]), [1, 2, 3], 0.1)!;
  assert.equal((await ok.read())[0], 0);
  const wrong = rankingLoss(tensor([3, 2, 1], [3]), [1, 2, 3], 0.1)!;
  // Pairs (1-2: 1.1, 1-3: 2.1, 2-3: 1.1) -> mean 4.3 / 3.
  assert.ok(Math.abs((await wrong.read())[0] - 4.3 / 3) < 1e-5);
});

Deno.test("fitVictim with val: validates every evalEvery steps and restores the best step's weights", async () => {
  const family: TrainableFamily = "fastvqa-mini";
  const clips = syntheticClips(family, 6, RUN_SEED + 3);
  const val = syntheticClips(family, 4, RUN_SEED + 4);
  const v = tiny(family, 3);
  const fit = await fitVictim(v, clips, {
    steps: 9,
    batch: 3,
    lr: 2e-2,
    seed: 2,
    rankWeight: 1,
    augment: true,
    weightDecay: 1e-4,
    val,
    evalEvery: 4,
    onProgress: () => {},
  });
  assert.ok(fit.best, withSeed("no best step recorded"));
  assert.deepEqual(
    fit.best.history.map((h) => h.step),
    [4, 8, 9],
    withSeed("validated steps"),
  );
  const top = Math.max(...fit.best.history.map((h) => h.srcc));
  assert.equal(fit.best.srcc, top, withSeed("best SRCC vs the history's highest"));
  // The kept weights score the val clips with the recorded SRCC.
  const { metrics } = await evaluateVictim(v, val);
  assert.ok(
    Math.abs(metrics.srcc - top) < 1e-6,
    withSeed(`SRCC of the kept weights ${metrics.srcc} vs recorded ${top}`),
  );
  [...clips, ...val].forEach((c) => c.input.dispose());
  v.dispose();
});
