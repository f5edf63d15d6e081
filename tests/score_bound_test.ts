// The smooth clamp of the small victims' clip scores (src/models/victims/bound.ts): boundScore
// against a float64 reference and finite differences on random inputs of several shapes, ranges
// and sharpnesses; raw scores far outside the range (finite, inside [qMin, qMax], gradients finite,
// never negative, and non-zero up to 8 score units outside); its promise inside the range (within
// 0.008 of the raw score more than 0.25 inside). Then the three bundled minis with their head
// bias pushed far up and far down (every clip-score path: score, scoreBatch, scorePrepared,
// stream), with a moderate push (the input gradient still flows), and at 256x144, a larger frame
// size than the 64x64 they were trained on, on clips whose raw score leaves the range.

import assert from "assert";
import { writeBuffer } from "../src/gpu/queue.ts";
import { boundScore } from "../src/models/victims/bound.ts";
import { hysteresisPool } from "../src/models/victims/hysteresis.ts";
import { loadVictim } from "../src/models/victims/mod.ts";
import type { Victim } from "../src/models/victims/victim.ts";
import { stack } from "../src/nn/mod.ts";
import { type Tensor, tensor, tidy } from "../src/tensor/tensor.ts";
import { checkOp, initGpu, randu } from "./_helpers.ts";

await initGpu();

/** softplus in float64, stably. */
function softplus(z: number): number {
  return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
}

/** The bound in float64, in the form that is accurate on each side of the range's middle. */
function boundRef(x: number, qMin: number, qMax: number, k: number): number {
  const z1 = k * (x - qMin);
  const z2 = k * (x - qMax);
  return x < (qMin + qMax) / 2
    ? qMin + (softplus(z1) - softplus(z2)) / k
    : qMax + (softplus(-z1) - softplus(-z2)) / k;
}

for (
  const [shape, qMin, qMax, k] of [
    [[1], 1, 5, 10],
    [[7], 1, 5, 10],
    [[3, 5], 1, 5, 3],
    [[2, 3, 4], 0, 1, 40],
    [[4, 6], 0, 100, 0.5],
    [[9], -2, 2, 10],
  ] as [number[], number, number, number][]
) {
  Deno.test(`boundScore matches the float64 reference: [${shape}] range ${qMin}..${qMax} k=${k}`, async () => {
    const span = qMax - qMin;
    await checkOp({
      name: "boundScore",
      // Raw scores from well below to well above the range.
      inputs: [{ shape, range: [qMin - 0.75 * span, qMax + 0.75 * span] }],
      gpu: (x) => boundScore(x, { qMin, qMax, sharpness: k }),
      ref: (x) => x.map((v) => boundRef(v, qMin, qMax, k)),
      rtol: 1e-6,
      atol: 1e-5 * Math.max(1, Math.abs(qMax)),
    });
  });
}

Deno.test("boundScore: the default sharpness is 10", async () => {
  const x = randu(16, 5, -1, 7);
  const got = await tidy(() => boundScore(tensor(Float32Array.from(x), [16]), { qMin: 1, qMax: 5 }))
    .read();
  x.forEach((v, i) => assert.ok(Math.abs(got[i] - boundRef(v, 1, 5, 10)) < 1e-5, `${v}`));
});

Deno.test("boundScore: raw scores far outside the range give finite scores inside it", async () => {
  const qMin = 1;
  const qMax = 5;
  const far = [-1e30, -1e4, -1e3, -100, -20, -8.5, -3, 0.5, 5.5, 9, 13, 25, 100, 1e3, 1e4, 1e30];
  const near = [qMin - 8, qMin - 5, qMin - 2, qMax + 2, qMax + 5, qMax + 8]; // gradient e^{-80}..
  const raw = [...far, ...near, Infinity, -Infinity];
  const x = tensor(raw, [2, raw.length / 2], { requiresGrad: true });
  const q = boundScore(x, { qMin, qMax });
  q.backward(tensor(new Float32Array(raw.length).fill(1), q.shape));
  const value = await q.read();
  const grad = await x.grad!.read();
  raw.forEach((r, i) => {
    assert.ok(Number.isFinite(value[i]), `raw ${r}: score ${value[i]}`);
    assert.ok(value[i] >= qMin && value[i] <= qMax, `raw ${r}: score ${value[i]} outside 1..5`);
    assert.ok(Number.isFinite(grad[i]) && grad[i] >= 0, `raw ${r}: gradient ${grad[i]}`);
    if (Number.isFinite(r)) {
      // The side it lies on, within float32 rounding of the reference.
      assert.ok(Math.abs(value[i] - boundRef(r, qMin, qMax, 10)) < 1e-6, `raw ${r}: ${value[i]}`);
    }
  });
  // Up to 8 units outside (k t = 80) the gradient e^{-k t} is still a float32 normal number.
  near.forEach((r, j) => {
    const g = grad[far.length + j];
    const t = Math.max(qMin - r, r - qMax);
    assert.ok(g > 0, `raw ${r}: gradient ${g}, want about e^-${10 * t}`);
    assert.ok(Math.abs(Math.log(g) + 10 * t) < 0.01, `raw ${r}: gradient ${g} vs e^-${10 * t}`);
  });
  x.dispose();
});

Deno.test("boundScore: within 0.008 of the raw score more than 0.25 inside the range; monotone", async () => {
  for (const [qMin, qMax] of [[1, 5], [0, 1], [0, 100]]) {
    const inside = randu(256, 11, qMin + 0.25, qMax - 0.25);
    const grid = Float64Array.from(
      { length: 2001 },
      (_, i) => qMin - 3 + (qMax - qMin + 6) * i / 2000,
    );
    const [a, b] = await Promise.all(
      tidy(() => [
        boundScore(tensor(Float32Array.from(inside), [256]), { qMin, qMax }),
        boundScore(tensor(Float32Array.from(grid), [grid.length]), { qMin, qMax }),
      ]).map((t) => t.read()),
    );
    const worst = Math.max(...inside.map((v, i) => Math.abs(a[i] - v)));
    assert.ok(worst <= 0.008, `${qMin}..${qMax}: ${worst} off the raw score`);
    // At 0.25 inside the bound moves a score by log(1 + e^-2.5) / 10 = 0.0079 (no tolerance to
    // spare: this is the documented promise, checked where it is tightest).
    const edge = await tidy(() =>
      boundScore(tensor([qMin + 0.25, qMax - 0.25], [2]), { qMin, qMax })
    )
      .read();
    assert.ok(
      Math.abs(edge[0] - (qMin + 0.25)) <= 0.008 && Math.abs(edge[1] - (qMax - 0.25)) <= 0.008,
    );
    assert.ok(Math.abs(edge[0] - (qMin + 0.25)) > 0.0078, "the promise is tight at 0.25 inside");
    for (let i = 1; i < b.length; i++) assert.ok(b[i] >= b[i - 1], `not monotone at ${grid[i]}`);
  }
});

Deno.test("boundScore refuses an empty range and a sharpness that is not positive", () => {
  const x = tensor([1], [1]);
  assert.throws(() => boundScore(x, { qMin: 5, qMax: 1 }), RangeError);
  assert.throws(() => boundScore(x, { qMin: 1, qMax: 1 }), RangeError);
  assert.throws(() => boundScore(x, { qMin: 1, qMax: Infinity }), RangeError);
  assert.throws(() => boundScore(x, { qMin: 1, qMax: 5, sharpness: 0 }), RangeError);
  assert.throws(() => boundScore(x, { qMin: 1, qMax: 5, sharpness: NaN }), RangeError);
  x.dispose();
});

/** The parameter of each mini's last linear layer's bias. */
const HEAD_BIAS: Record<string, string> = {
  "vsfa-mini": "head.bias",
  "simplevqa-mini": "fc2.bias",
  "fastvqa-mini": "head.bias",
};
const MINIS = Object.keys(HEAD_BIAS);

/** A deterministic clip `[t,3,h,w]` in [0,1]. */
function clip(t: number, h: number, w: number, seed: number): Tensor {
  return tensor(Float32Array.from(randu(t * 3 * h * w, seed)), [t, 3, h, w]);
}

/** The victim's raw clip score: its pooling of the per-frame scores, without the bound. */
async function rawScore(victim: Victim, frames: Tensor): Promise<number> {
  const q = await tidy(() => {
    const s = victim.frameScores!(frames);
    return victim.family === "vsfa-mini"
      ? hysteresisPool(s.reshape([1, s.size]), {
        tau: victim.config.tau as number,
        gamma: victim.config.gamma as number,
      })
      : s;
  }).read();
  return q.reduce((a, b) => a + b, 0) / q.length;
}

/** Every clip score the victim gives `frames` (and a batch of it and a second clip). */
async function allScores(victim: Victim, frames: Tensor, other: Tensor): Promise<number[]> {
  const direct = await tidy(() => {
    const batch = stack([frames, other], 0);
    return [
      victim.score(frames),
      victim.scoreBatch(batch),
      victim.scorePrepared(victim.prepare(batch)),
    ];
  });
  const out: number[] = [];
  for (const t of direct) out.push(...await t.read());
  const stream = victim.stream();
  stream.push(frames);
  out.push((await stream.finish()).score);
  return out;
}

for (const family of MINIS) {
  Deno.test(`${family}: its clip score stays in qMin..qMax with the head bias pushed far up and down`, async () => {
    const victim = await loadVictim(family);
    const { qMin, qMax } = victim.config;
    const bias = victim.parameters()[HEAD_BIAS[family]];
    const frames = clip(3, 64, 64, 21);
    const other = clip(3, 64, 64, 22);
    try {
      const base = await bias.read();
      for (const push of [1e3, -1e3, 20, -20]) {
        writeBuffer(bias.buffer, base.map((v) => v + push));
        const raw = await rawScore(victim, frames);
        assert.ok(raw < qMin || raw > qMax, `bias ${push}: raw ${raw} should leave the range`);
        for (const s of await allScores(victim, frames, other)) {
          assert.ok(Number.isFinite(s), `bias ${push}: score ${s}`);
          assert.ok(s >= qMin && s <= qMax, `bias ${push}: raw ${raw}, score ${s}`);
        }
      }
      // A moderate push (about 3 units outside the range): the bound leaves a gradient.
      for (const push of [3, -3]) {
        writeBuffer(bias.buffer, base.map((v) => v + push));
        const x = tensor(Float32Array.from(randu(3 * 3 * 64 * 64, 23)), [3, 3, 64, 64], {
          requiresGrad: true,
        });
        const q = victim.score(x);
        const s = (await q.read())[0];
        assert.ok(s >= qMin && s <= qMax, `bias ${push}: score ${s}`);
        q.backward();
        const g = await x.grad!.read();
        assert.ok(g.every(Number.isFinite), `bias ${push}: a gradient is not finite`);
        assert.ok(g.some((v) => v !== 0), `bias ${push}: no gradient reaches the frames`);
        x.dispose();
        q.dispose();
      }
    } finally {
      frames.dispose();
      other.dispose();
      victim.dispose();
    }
  });
}

Deno.test("the minis' clip scores stay in qMin..qMax at 256x144, where raw scores leave it", async () => {
  const [t, h, w] = [3, 144, 256];
  const n = t * 3 * h * w;
  const clips: Record<string, Float32Array> = {
    gray: new Float32Array(n).fill(0.5),
    white: new Float32Array(n).fill(1),
    // Black and white frames in turn.
    flicker: new Float32Array(n).map((_, i) => Math.floor(i / (3 * h * w)) % 2),
    noise: Float32Array.from(randu(n, 31)),
  };
  let outside = 0;
  for (const family of MINIS) {
    const victim = await loadVictim(family);
    const { qMin, qMax } = victim.config;
    try {
      for (const [name, data] of Object.entries(clips)) {
        const x = tensor(data, [t, 3, h, w]);
        const raw = await rawScore(victim, x);
        if (raw < qMin || raw > qMax) outside++;
        const s = (await victim.score(x).read())[0];
        const stream = victim.stream();
        stream.push(x);
        const streamed = (await stream.finish()).score;
        for (const v of [s, streamed]) {
          assert.ok(v >= qMin && v <= qMax, `${family} ${name}: raw ${raw}, score ${v}`);
        }
        x.dispose();
      }
    } finally {
      victim.dispose();
    }
  }
  // The bundled weights give raw scores outside 1..5 on some of these (simplevqa-mini on gray
  // and flicker, fastvqa-mini on white and flicker, when this was written): the check above is
  // not vacuous.
  assert.ok(outside >= 1, "no raw score left the range: the clips no longer test the bound");
});
