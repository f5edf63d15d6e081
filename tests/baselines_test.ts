// Baseline attacks (src/attack/baselines): the visual constraint of each method, frames in
// [0, 1], determinism, frozen victim weights, no pool growth, the direction of the score change,
// the boundary-loss gradient against finite differences of the victim, and option errors.

import assert from "assert";
import { computeJnd, loadVictim, noGrad, poolStats, type Tensor, tensor, tidy } from "../mod.ts";
import type { Victim } from "../src/models/victims/victim.ts";
import type { Attack, AttackMode } from "../src/attack/types.ts";
import {
  activityMap,
  BASELINE_ATTACKS,
  baselineAttack,
  boundaryGradient,
  createIfgsm,
  createKorhonen,
  createRandomAttack,
  fgsm,
  ifgsm,
  korhonen,
  projectRms,
  randomAttack,
  zhang2023,
} from "../src/attack/baselines/mod.ts";
import { assertClose, initGpu, randu, RUN_SEED, withSeed } from "./_helpers.ts";

await initGpu();

const T = 4;
const S = 48;
/** Rounding of `d = fl(x + d') - x` in float32 next to values <= 1 (half an ulp at 1). */
const ROUND = 2 ** -24;

/**
 * A smooth synthetic clip in (0.1, 0.9) with some texture, moving over time, and a flat 12x12
 * patch in the top-left corner of every frame.
 */
function clipValues(t: number, s: number): Float32Array {
  const v = new Float32Array(t * 3 * s * s);
  let i = 0;
  for (let f = 0; f < t; f++) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < s; y++) {
        for (let x = 0; x < s; x++) {
          v[i++] = x < 12 && y < 12 ? 0.4 : 0.5 + 0.25 * Math.sin(0.3 * x + 0.2 * y + 0.5 * f + c) +
            0.1 * Math.sin(1.7 * x) * Math.cos(1.3 * y);
        }
      }
    }
  }
  return v;
}

const X = clipValues(T, S);
const frames = tensor(X, [T, 3, S, S]);
const jnd = computeJnd(frames);
const J = await jnd.read();
const victim = await loadVictim("vsfa-mini");

async function score(v: Victim, x: Tensor): Promise<number> {
  const s = noGrad(() => tidy(() => v.score(x)));
  const q = (await s.read())[0];
  s.dispose();
  return q;
}

async function scoreOf(values: Float32Array): Promise<number> {
  const x = tensor(values, [T, 3, S, S]);
  const q = await score(victim, x);
  x.dispose();
  return q;
}

async function readParams(v: Victim): Promise<Float32Array[]> {
  return await Promise.all(Object.values(v.parameters()).map((p) => p.read()));
}

/** Runs an attack and returns the adversarial values (the tensor is disposed). */
async function attackValues(
  attack: Attack,
  options: { eps?: number; mode?: AttackMode; seed?: number; cleanScore?: number } = {},
  v: Victim = victim,
): Promise<{ adv: Float32Array; passes: number }> {
  const out = await attack.run(frames, v, { jnd, ...options });
  assert.deepEqual(out.adversarial.shape, [T, 3, S, S]);
  assert.ok(out.seconds > 0 && Number.isFinite(out.seconds));
  const adv = await out.adversarial.read();
  out.adversarial.dispose();
  return { adv, passes: out.victimPasses };
}

/** The JND value of element i of a [T,3,S,S] clip. */
const jAt = (i: number) => {
  const x = i % S;
  const y = Math.floor(i / S) % S;
  const t = Math.floor(i / (3 * S * S));
  return J[(t * S + y) * S + x];
};

function assertInBox(name: string, adv: Float32Array, eps: number): void {
  let worst = 0;
  for (let i = 0; i < adv.length; i++) {
    assert.ok(adv[i] >= 0 && adv[i] <= 1, `${name}: pixel ${i} = ${adv[i]} outside [0,1]`);
    const excess = Math.abs(adv[i] - X[i]) - Math.fround(eps * jAt(i));
    worst = Math.max(worst, excess);
  }
  assert.ok(worst <= ROUND, `${name}: |d| exceeds eps*J by ${worst}`);
}

function frameRms(adv: Float32Array): number[] {
  const n = 3 * S * S;
  return Array.from({ length: T }, (_, t) => {
    let s = 0;
    for (let i = t * n; i < (t + 1) * n; i++) s += (adv[i] - X[i]) ** 2;
    return Math.sqrt(s / n);
  });
}

Deno.test("baselines: the JND maps of the test clip are positive and a few levels", () => {
  const lo = Math.min(...J);
  const hi = Math.max(...J);
  assert.ok(lo > 0.5 / 255 && hi < 40 / 255, `JND range ${lo * 255}..${hi * 255} levels`);
});

Deno.test("baselines: all but zhang2023 (an RMS bound) stay in the JND box; any JND model's maps do", () => {
  assert.deepEqual(BASELINE_ATTACKS.map((a) => [a.name, a.jndBox, a.jndModel]), [
    ["random", true, undefined],
    ["fgsm", true, undefined],
    ["ifgsm", true, undefined],
    ["zhang2023", false, undefined],
    ["korhonen", true, undefined],
  ]);
  for (const a of [createIfgsm({ randomStart: true }), createRandomAttack({ noise: "uniform" })]) {
    assert.equal(a.jndBox, true, a.name);
  }
});

for (const attack of BASELINE_ATTACKS) {
  Deno.test(`${attack.name}: constraint, [0,1], deterministic, frozen weights, no pool growth`, async () => {
    const eps = attack.name === "fgsm" ? 0.5 : 1;
    const before = await readParams(victim);
    const first = await attackValues(attack, { eps, mode: "down", seed: 5 });
    const warm = poolStats();
    const second = await attackValues(attack, { eps, mode: "down", seed: 5 });
    const after = poolStats();
    assert.equal(after.created, warm.created, `${attack.name}: the pool grew on a second run`);
    assert.equal(after.inUse, warm.inUse, `${attack.name}: buffers still in use after a run`);
    assert.deepEqual(second.adv, first.adv, `${attack.name}: not deterministic for a fixed seed`);
    assert.equal(second.passes, first.passes);
    const params = await readParams(victim);
    params.forEach((p, i) => assert.deepEqual(p, before[i], `${attack.name}: weights changed`));
    for (const [name, p] of Object.entries(victim.parameters())) {
      assert.equal(p.grad, null, `${attack.name}: ${name} has a gradient`);
      assert.equal(p.requiresGrad, false, `${attack.name}: ${name} requiresGrad changed`);
    }
    let changed = 0;
    for (let i = 0; i < X.length; i++) if (first.adv[i] !== X[i]) changed++;
    assert.ok(changed > X.length / 4, `${attack.name}: only ${changed} pixels changed`);
    if (!attack.jndBox) {
      for (let i = 0; i < X.length; i++) assert.ok(first.adv[i] >= 0 && first.adv[i] <= 1);
      const rms = frameRms(first.adv);
      for (const r of rms) assert.ok(r <= (1 / 255) * (1 + 1e-5), `RMS ${r * 255}/255 > 1/255`);
      // With lr 3e-4 and 30 steps the bound is reached: the projection is active.
      assert.ok(Math.max(...rms) > 0.9 / 255, `RMS ${rms.map((r) => r * 255)} never near 1/255`);
    } else {
      assertInBox(attack.name, first.adv, eps);
    }
  });
}

Deno.test("random: 0 victim passes, signs fill the box, the seed matters, uniform noise too", async () => {
  const a = await attackValues(randomAttack, { seed: 1 });
  const b = await attackValues(randomAttack, { seed: 2 });
  assert.equal(a.passes, 0);
  assert.notDeepEqual(a.adv, b.adv);
  // Away from 0 and 1 every pixel moves by exactly +-J (up to float rounding).
  let plus = 0;
  for (let i = 0; i < X.length; i++) {
    const d = a.adv[i] - X[i];
    assert.ok(Math.abs(Math.abs(d) - jAt(i)) <= 2 * ROUND + 1e-7, `pixel ${i}: |d| ${d} vs J`);
    if (d > 0) plus++;
  }
  assert.ok(Math.abs(plus / X.length - 0.5) < 0.02, `fraction of + signs ${plus / X.length}`);
  const u = await attackValues(createRandomAttack({ noise: "uniform" }), { eps: 0.7, seed: 3 });
  assertInBox("random-uniform", u.adv, 0.7);
  let inner = 0;
  for (let i = 0; i < X.length; i++) {
    if (Math.abs(u.adv[i] - X[i]) < 0.5 * 0.7 * jAt(i)) inner++;
  }
  assert.ok(
    Math.abs(inner / X.length - 0.5) < 0.03,
    `uniform: ${inner / X.length} in the half box`,
  );
});

Deno.test("boundaryGradient: sign and size match finite differences of the victim's score", async () => {
  // mode down: target qMin = 1 < score, so the loss is q - 1 and its gradient is dq/dx.
  const q0 = await scoreOf(X);
  assert.ok(q0 > 1.5, `clean score ${q0}`);
  const zero = tensor(new Float32Array(X.length), [T, 3, S, S]);
  const gT = boundaryGradient(frames, zero, victim, 1);
  const g = await gT.read();
  gT.dispose();
  zero.dispose();
  const order = Array.from(g.keys()).sort((a, b) => Math.abs(g[b]) - Math.abs(g[a]));
  // The largest gradients, a middling one, and one picked by the run seed among the top 2000.
  // The victim is piecewise smooth (ReLU, max pooling, the hysteresis minimum): where a kink
  // lies within +-h of a pixel the central difference is not the derivative (the two step sizes
  // disagree), so such a pixel is replaced by the next one in the order; at most a few are.
  const h = 2e-3;
  const fdAt = async (i: number, step: number) => {
    const plus = Float32Array.from(X);
    const minus = Float32Array.from(X);
    plus[i] += step;
    minus[i] -= step;
    return ((await scoreOf(plus)) - (await scoreOf(minus))) / (2 * step);
  };
  const picks: number[] = [];
  let kinks = 0;
  for (const start of [0, 1, 5, 50, RUN_SEED % 2000]) {
    for (let k = start; k < order.length; k++) {
      const i = order[k];
      if (picks.includes(i)) continue;
      const [fd, fdHalf] = [await fdAt(i, h), await fdAt(i, h / 2)];
      if (Math.abs(fd - fdHalf) > 0.02 * Math.abs(g[i])) {
        kinks++;
        continue;
      }
      picks.push(i);
      assert.equal(
        Math.sign(fd),
        Math.sign(g[i]),
        withSeed(`pixel ${i}: fd ${fd}, grad ${g[i]}`),
      );
      assert.ok(
        Math.abs(fd - g[i]) <= 0.1 * Math.abs(g[i]),
        withSeed(`pixel ${i}: fd ${fd}, grad ${g[i]}`),
      );
      break;
    }
  }
  assert.ok(kinks <= 3, withSeed(`${kinks} of the picked pixels sit on a kink`));
  // mode up: target qMax, the loss is qMax - q: the gradient flips.
  const zero2 = tensor(new Float32Array(X.length), [T, 3, S, S]);
  const gUp = boundaryGradient(frames, zero2, victim, victim.config.qMax);
  const up = await gUp.read();
  gUp.dispose();
  zero2.dispose();
  for (const i of picks) assert.equal(up[i], -g[i]);

  // FGSM steps against the checked gradient: d = -eps * J * sign(g) where x + d stays in [0,1];
  // one I-FGSM iteration (alpha = 2.5 eps J, clipped to the box) is the same step.
  const f = await attackValues(fgsm, { mode: "down", eps: 0.5 });
  for (let i = 0; i < X.length; i++) {
    if (g[i] === 0) continue;
    const expected = -Math.sign(g[i]) * Math.fround(0.5 * jAt(i));
    assert.ok(Math.abs(f.adv[i] - X[i] - expected) <= ROUND, `fgsm pixel ${i}`);
  }
  const one = await attackValues(createIfgsm({ iterations: 1 }), { mode: "down", eps: 0.5 });
  assert.deepEqual(one.adv, f.adv);
  assert.equal(one.passes, 2);
  assert.equal(f.passes, 2);
});

Deno.test("gradient attacks: mode up raises the score, down lowers it, untargeted heads for the boundary", async () => {
  const q0 = await scoreOf(X);
  const median = (victim.config.qMin + victim.config.qMax) / 2;
  for (const attack of [fgsm, ifgsm, zhang2023, korhonen]) {
    const up = await attackValues(attack, { mode: "up" });
    const down = await attackValues(attack, { mode: "down" });
    const un = await attackValues(attack, { mode: "untargeted" });
    const qUp = await scoreOf(up.adv);
    const qDown = await scoreOf(down.adv);
    assert.ok(qUp > q0 + 1e-3, `${attack.name}: up gave ${qUp} from ${q0}`);
    assert.ok(qDown < q0 - 1e-3, `${attack.name}: down gave ${qDown} from ${q0}`);
    // Untargeted = down when the clean score is above the median, up otherwise; one more pass.
    assert.deepEqual(un.adv, q0 > median ? down.adv : up.adv, `${attack.name}: untargeted`);
    assert.equal(un.passes, down.passes + 1);
  }
  // I-FGSM's ten steps go further than FGSM's one.
  const f = await scoreOf((await attackValues(fgsm, { mode: "down" })).adv);
  const i = await scoreOf((await attackValues(ifgsm, { mode: "down" })).adv);
  assert.ok(i < f, `ifgsm ${i} not below fgsm ${f}`);
  // A median above the clean score turns the untargeted attack upward.
  const out = await fgsm.run(frames, victim, { jnd, median: q0 + 0.5 });
  const qm = await score(victim, out.adversarial);
  out.adversarial.dispose();
  assert.ok(qm > q0, `untargeted with median ${q0 + 0.5}: ${qm} from ${q0}`);
});

Deno.test("gradient attacks: a given cleanScore (the whole video's) decides the untargeted direction, with no clean pass", async () => {
  const q0 = await scoreOf(X);
  const { qMin, qMax } = victim.config;
  for (const attack of [fgsm, createIfgsm({ iterations: 2 }), korhonen]) {
    const up = await attackValues(attack, { mode: "up" });
    const down = await attackValues(attack, { mode: "down" });
    // A clean score given above the median pushes down, below it up, whatever these frames score.
    for (const [given, want] of [[qMax - 0.01, down], [qMin + 0.01, up]] as const) {
      const r = await attackValues(attack, { mode: "untargeted", cleanScore: given });
      assert.deepEqual(r.adv, want.adv, `${attack.name}: cleanScore ${given} (frames ${q0})`);
      assert.equal(r.passes, want.passes, `${attack.name}: no clean pass with cleanScore`);
    }
    await assert.rejects(
      () => attack.run(frames, victim, { jnd, cleanScore: NaN }),
      /options\.cleanScore must be a finite number/,
    );
  }
});

Deno.test("random: windows draw one generator window after window, the noise of one run", async () => {
  for (const attack of [randomAttack, createRandomAttack({ noise: "uniform" })]) {
    const whole = await attack.run(frames, victim, { jnd, seed: 9 });
    const expected = await whole.adversarial.read();
    whole.adversarial.dispose();
    const w = attack.windows!(victim, { seed: 9 });
    const got: number[] = [];
    for (const [s, e] of [[0, 1], [1, 3], [3, 4]]) {
      const xs = tensor(X.subarray(s * 3 * S * S, e * 3 * S * S), [e - s, 3, S, S]);
      const js = tensor(J.subarray(s * S * S, e * S * S), [e - s, 1, S, S]);
      const out = await w.next(xs, js);
      got.push(...await out.adversarial.read());
      for (const t of [xs, js, out.adversarial]) t.dispose();
    }
    w.dispose();
    assert.deepEqual(new Float32Array(got), expected, attack.name);
  }
});

Deno.test("attacks freeze trainable weights and frames: no gradient reaches them, flags restored", async () => {
  const v = await loadVictim("vsfa-mini");
  try {
    const params = Object.values(v.parameters());
    for (const p of params) p.requiresGrad = true;
    const before = await readParams(v);
    for (const attack of [createIfgsm({ iterations: 2 }), fgsm, zhang2023, korhonen]) {
      await attackValues(attack, { mode: "down" }, v);
      for (const p of params) {
        assert.equal(p.grad, null, `${attack.name}: ${p} got a gradient`);
        assert.equal(p.requiresGrad, true, `${attack.name}: requiresGrad not restored`);
      }
    }
    const after = await readParams(v);
    after.forEach((p, i) => assert.deepEqual(p, before[i]));
    // Frames that require a gradient get none from the attack either.
    const x = tensor(X, [T, 3, S, S], { requiresGrad: true });
    const out = await fgsm.run(x, v, { jnd, mode: "down" });
    out.adversarial.dispose();
    assert.equal(x.grad, null);
    assert.equal(x.requiresGrad, true);
    x.dispose();
  } finally {
    v.dispose();
  }
});

Deno.test("zhang2023: projectRms scales each frame to the RMS bound only when it is exceeded", async () => {
  const t = 3;
  const s = 5;
  const n = 3 * s * s;
  const x = Float32Array.from(randu(t * n, RUN_SEED, 0.2, 0.8));
  // Frame 0 far above the bound, frame 1 below it, frame 2 exactly zero.
  const d = new Float32Array(t * n);
  const r = randu(2 * n, RUN_SEED + 1, -1, 1);
  for (let i = 0; i < n; i++) {
    d[i] = 0.05 * r[i];
    d[n + i] = 0.001 * r[n + i];
  }
  const xt = tensor(x, [t, 3, s, s]);
  const dt = tensor(d, [t, 3, s, s]);
  const p = projectRms(xt, dt, 1 / 255);
  const got = await p.read();
  [xt, dt, p].forEach((z) => z.dispose());
  let ss = 0;
  for (let i = 0; i < n; i++) ss += d[i] * d[i];
  const k = (1 / 255) / Math.sqrt(ss / n);
  const expected = new Float64Array(t * n);
  for (let i = 0; i < n; i++) {
    expected[i] = d[i] * k;
    expected[n + i] = d[n + i];
  }
  assertClose(got, expected, { rtol: 1e-5, atol: 1e-7, what: "projectRms" });
});

Deno.test("korhonen: activityMap matches a float64 reference; the step follows the activity", async () => {
  for (const [t, h, w, window] of [[2, 7, 5, 3], [1, 9, 11, 5], [3, 4, 6, 1]]) {
    const n = t * 3 * h * w;
    const x = randu(n, RUN_SEED + h, 0, 1);
    const xt = tensor(Float32Array.from(x), [t, 3, h, w]);
    const a = activityMap(xt, { window });
    const got = await a.read();
    a.dispose();
    xt.dispose();
    const expected = new Float64Array(t * h * w);
    const r = (window - 1) / 2;
    for (let f = 0; f < t; f++) {
      const luma = (yy: number, xx: number) =>
        [0.299, 0.587, 0.114].reduce(
          (acc, k, c) => acc + k * x[((f * 3 + c) * h + yy) * w + xx],
          0,
        );
      let peak = 0;
      for (let y = 0; y < h; y++) {
        for (let xx = 0; xx < w; xx++) {
          let s1 = 0;
          let s2 = 0;
          let m = 0;
          for (let dy = -r; dy <= r; dy++) {
            for (let dx = -r; dx <= r; dx++) {
              const yy = y + dy;
              const x2 = xx + dx;
              if (yy < 0 || yy >= h || x2 < 0 || x2 >= w) continue;
              const l = luma(yy, x2);
              s1 += l;
              s2 += l * l;
              m++;
            }
          }
          const sd = Math.sqrt(Math.max(0, s2 / m - (s1 / m) ** 2));
          expected[(f * h + y) * w + xx] = sd;
          peak = Math.max(peak, sd);
        }
      }
      for (let i = f * h * w; i < (f + 1) * h * w; i++) expected[i] /= peak + 1e-12;
    }
    // window 1: every sigma is 0 (up to rounding), so the map is ~0.
    assertClose(got, expected, {
      rtol: 1e-3,
      atol: window === 1 ? 1e-3 : 2e-3,
      what: `A ${t}x${h}x${w}`,
    });
  }
  // |d| <= eps * J * min(1, stepScale * A): flat regions are left alone (I-FGSM fills them).
  const aT = activityMap(frames);
  const A = await aT.read();
  aT.dispose();
  const k = await attackValues(createKorhonen(), { mode: "down" });
  const plain = await attackValues(ifgsm, { mode: "down" });
  let flatK = 0;
  let flatI = 0;
  for (let i = 0; i < X.length; i++) {
    const px = i % (S * S);
    const ai = A[Math.floor(i / (3 * S * S)) * S * S + px];
    const bound = Math.fround(jAt(i) * Math.min(1, 2.5 * ai));
    // Each of the 5 steps re-rounds x + d to float32 (half an ulp each).
    assert.ok(Math.abs(k.adv[i] - X[i]) <= bound + 5 * ROUND, `korhonen pixel ${i}: A ${ai}`);
    const y = Math.floor(px / S);
    const x = px % S;
    if (x < 10 && y < 10) {
      flatK = Math.max(flatK, Math.abs(k.adv[i] - X[i]));
      flatI = Math.max(flatI, Math.abs(plain.adv[i] - X[i]));
    }
  }
  // In the flat patch A is float32 rounding of E[Y^2] - E[Y]^2 (about 1e-3), not 0.
  assert.ok(flatK < 0.01 * flatI, `korhonen moved the flat patch by ${flatK * 255} levels`);
  assert.ok(flatI > 0.5 / 255, `ifgsm left the flat patch alone (${flatI * 255} levels)`);
  assert.equal(k.passes, 10);
});

Deno.test("baselines: bad options name the field", async () => {
  const bad = (s: number[]) => tensor(new Float32Array(s.reduce((a, b) => a * b, 1)), s);
  const wrong = [bad([T, 1, S, S - 1]), bad([T - 1, 1, S, S]), bad([T, 3, S, S])];
  try {
    for (const attack of BASELINE_ATTACKS) {
      for (const eps of [0, -1, NaN, Infinity]) {
        await assert.rejects(
          () => attack.run(frames, victim, { jnd, eps }),
          (e: Error) => e instanceof RangeError && e.message.includes("options.eps"),
          `${attack.name} eps ${eps}`,
        );
      }
      for (const j of wrong) {
        await assert.rejects(
          () => attack.run(frames, victim, { jnd: j }),
          (e: Error) =>
            e instanceof RangeError && e.message.includes("options.jnd") &&
            e.message.includes(`[${T},1,${S},${S}]`),
          `${attack.name} jnd [${j.shape}]`,
        );
      }
      await assert.rejects(
        () => attack.run(frames, victim, { jnd, mode: "sideways" as AttackMode }),
        /options\.mode/,
      );
      await assert.rejects(() => attack.run(frames, victim, { jnd, seed: NaN }), /options\.seed/);
      await assert.rejects(
        () => attack.run(bad([T, 1, S, S]), victim, { jnd }),
        /frames must be \[T,3,H,W\]/,
      );
    }
    assert.throws(() => createIfgsm({ iterations: 0 }), /iterations/);
    assert.throws(() => createKorhonen({ window: 4 }), /window/);
    assert.throws(() => baselineAttack("nope"), /known: random, fgsm, ifgsm, zhang2023, korhonen/);
    assert.equal(baselineAttack("zhang2023"), zhang2023);
  } finally {
    wrong.forEach((t) => t.dispose());
  }
  // A failed run leaves the victim's flags alone.
  for (const p of Object.values(victim.parameters())) assert.equal(p.requiresGrad, false);
});
