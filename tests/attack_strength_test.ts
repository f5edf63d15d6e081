// Tests that would catch a broken attack (issue #15): a tiny STQA-Net generator trained for a
// few steps with the project's own trainer (`trainGenerator`, what `deno task train` runs) on a
// tiny proxy set must move the victim's score toward each clip's target further than random
// noise of the same mean |perturbation| (8-bit levels) inside the same JND box.
//
// Set-up: a proxy set of 6 sources of data/sources (2 held out for test), one motion each,
// pristine + noise at one level, 4 frames of 32x32 (8 train clips, 4 test clips); victim
// simplevqa-mini (bundled). vsfa-mini was tried first: at 32x32 it barely responds to JND-sized
// perturbations (moves of 0.0001 to 0.006 at about 1 level mean |d|, noise or generator; at
// eps 4 the noise moved it down more than a 20-step two-branch generator's down branch), so a
// few-step generator could not separate from noise against it.
//
// The move of an attack on a clip is `sign(target - clean) * (adv - clean)` scores, adv scored
// on the 8-bit output (`quantizeInJnd`). The noise control is the random control's noise (fair
// signs times eps * J, as `createRandomAttack`, but with the sign flipped where it would leave
// [0, 1], so that full-box noise reaches any mean |d| a generator can), scaled by bisection until
// its 8-bit mean |d| equals the generator's on that clip (within 0.5 %), quantised in the same
// box.
//
// - two-branch: on the held-out clips, the up branch toward qMax and the down branch toward qMin.
// - signed: one map A, trained with a random direction per clip and step (target qMax for +1,
//   qMin for -1); on the held-out clips +A (branch 0) toward qMax and -A (branch 1) toward qMin.
// - untargeted: the target is the score-reversed boundary, qMin above the generator's training
//   median and qMax at or below it, written out here (not taken from `attackTarget`, so that a
//   broken `attackTarget` is caught too). A one-branch generator has to infer the direction from
//   the content, which a few steps on 8 clips do not teach in a way that carries to other
//   sources: on the held-out clips it measured 0.012 vs noise 0.005, 0.032 vs 0.006, 0.012 vs
//   0.003 and -0.024 vs -0.010 (seeds 1, 3, 4, 5: no margin that holds), so it is checked on its
//   training clips (the held-out numbers are printed).
//
// Trainer settings: Adam lr 2e-2, batch 4, no weight-map penalty (penalty 0: with the default
// schedule a few steps leave the maps at about 0.05 levels), a 4-8-8 encoder with jnd+rgb input;
// 60 steps untargeted, 100 two-branch (60 left the up branch 0.036 above noise at seed 3), 60
// signed (40 left up 0.017 above noise at seed 3 and 0.027 at seed 4).
//
// Measured, mean move of generator vs noise (margin), run seeds 1 / 3 / 4 / 5:
//   untargeted, train clips: 0.131 vs 0.031 (0.100) / 0.079 vs 0.009 (0.070) /
//                            0.089 vs 0.004 (0.085) / 0.116 vs -0.008 (0.124)
//   two-branch up, held-out: 0.073 vs 0.005 (0.069) / 0.125 vs 0.016 (0.109) /
//                            0.088 vs 0.004 (0.084) / 0.072 vs 0.012 (0.060)
//   two-branch down:         0.273 vs -0.005 (0.278) / 0.221 vs -0.017 (0.238) /
//                            0.125 vs -0.004 (0.129) / 0.082 vs -0.012 (0.094)
// Broken trainers (seed 1), each made temporarily in src/ and reverted:
//   untargeted target inverted (qMin + qMax - target in trainGenerator's loss, or qMin/qMax
//   swapped in attackTarget's untargeted branch: the same run): -0.214 vs 0.024 (-0.238);
//   two-branch down loss dropped: down 0.004 vs -0.002 (0.006), up still 0.090 vs 0.005;
//   two-branch up loss dropped: up -0.002 vs 0.001 (-0.003), down still 0.255 vs -0.006.
// Seed 2: 0.238 vs 0.015 (0.224); up 0.105 vs 0.006 (0.099); down 0.238 vs -0.007 (0.245).
// Signed, held-out, run seeds 1 / 2 / 3 / 4 / 5:
//   up (+A):   0.085 vs 0.006 (0.080) / 0.076 vs 0.007 (0.069) / 0.079 vs 0.015 (0.064) /
//              0.066 vs 0.004 (0.062) / 0.070 vs 0.011 (0.059)
//   down (-A): 0.135 vs -0.006 (0.141) / 0.093 vs -0.008 (0.101) / 0.118 vs -0.015 (0.133) /
//              0.080 vs -0.005 (0.085) / 0.072 vs -0.012 (0.084)
// Broken signed trainers (seed 1), each made temporarily in a copy of src/train/generator.ts:
//   target flipped (qMin for +1, qMax for -1): up -0.111 vs 0.006 (-0.116), down -0.082 vs
//   -0.006 (-0.077); the direction dropped (signs not passed to generatorPerturb: +A scored
//   against the random targets): up -0.004 vs 0.006 (-0.009), down -0.009 vs -0.004 (-0.005).
//   Not caught: every training direction +1 (down never trained) still gives up 0.076 vs 0.005,
//   down 0.114 vs -0.006: at these amplitudes -A of a map that pushes up pushes down.
// The signed test: 32 to 55 s to train, load and measure (printed), 38 to 62 s with the proxy set
// built (run alone), at load averages of 4.5 to 6 on the 2 shared cores (6 runs). The whole file
// with it: 148 s (117 s CPU) at a load average of about 4.7, the signed test 32 s of it.
// MARGIN (0.03) is about half the smallest correct margin and five times the largest broken one.
// The file took 100 s (83 s CPU) at a load average of 3.7, and 119 s (97 s CPU) at about 3.5, on
// the 2 shared cores this was made on (not measured idle), before the signed test was added.

import assert from "assert";
import { join } from "path";
import { fileURLToPath } from "url";
import { buildProxyDataset } from "../src/data/proxy.ts";
import { loadVictim } from "../src/models/victims/mod.ts";
import type { Victim } from "../src/models/victims/victim.ts";
import type { Generator } from "../src/models/generator_io.ts";
import {
  disposeClips,
  loadTrainClips,
  type TrainClip,
  trainGenerator,
} from "../src/train/generator.ts";
import { attackWithGenerator, quantizeInJnd, steerable } from "../src/attack/stqa.ts";
import { perturbationStats } from "../src/metrics/quality.ts";
import { noGrad, tensor, tidy } from "../src/tensor/tensor.ts";
import { initGpu, rng, RUN_SEED, withSeed } from "./_helpers.ts";
import { tempDirs } from "./_attack_fixtures.ts";

await initGpu();
const tmp = tempDirs("stqa_strength_");

const VICTIM = "simplevqa-mini";
const CONFIG = { encoder: [4, 8, 8], hidden: 8, decoder: [8, 4], input: "jnd+rgb" };
/** Training steps per variant. */
const STEPS = { untargeted: 60, "two-branch": 100, signed: 60 };
/** How far (scores) the generator's mean move must pass the noise's. */
const MARGIN = 0.03;

let manifest: Promise<string> | undefined;
/** The tiny proxy set, built once for both tests. */
function proxy(): Promise<string> {
  manifest ??= (async () => {
    const dir = await tmp();
    await buildProxyDataset({
      sources: fileURLToPath(new URL("../data/sources", import.meta.url)),
      out: join(dir, "proxy"),
      maxSources: 6,
      testSources: 2,
      valSources: 0,
      frames: 4,
      size: 32,
      motionsPerImage: 1,
      levels: 1,
      distortions: ["noise"],
      seed: RUN_SEED,
    });
    return join(dir, "proxy", "manifest.json");
  })();
  return manifest;
}

async function score(victim: Victim, values: Float32Array, shape: number[]): Promise<number> {
  const adv = tensor(values, shape);
  const s = tidy(() => noGrad(() => victim.score(adv)));
  const v = (await s.read())[0];
  s.dispose();
  adv.dispose();
  return v;
}

/** Per branch, the moves toward the target of the generator and of the matched noise. */
interface Moves {
  gen: number[];
  noise: number[];
  levels: number[];
}

const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function measure(generator: Generator, victim: Victim, clips: TrainClip[]): Promise<Moves[]> {
  const { qMin, qMax, median, eps } = generator.info;
  // Two-branch and signed generators: direction 0 up (toward qMax), 1 down (toward qMin).
  const two = steerable(generator.net);
  const branches = two ? [0, 1] : [0];
  const out: Moves[] = branches.map(() => ({ gen: [], noise: [], levels: [] }));
  for (const [k, c] of clips.entries()) {
    const shape = c.frames.shape as [number, number, number, number];
    const clean = await c.frames.read();
    const jnd = await c.jnd.read();
    // Fair random signs; where a sign would leave [0, 1] the other one is used, so that noise
    // at the full box spends every level of it, as a generator can.
    const r = rng(RUN_SEED * 1009 + k);
    const unit = new Float32Array(clean.length);
    const plane = shape[2] * shape[3];
    for (let i = 0; i < unit.length; i++) {
      const j = jnd[Math.floor(i / (3 * plane)) * plane + (i % plane)];
      const s = r.uniform() < 0.5 ? -1 : 1;
      unit[i] = (clean[i] + s * eps * j > 1 || clean[i] + s * eps * j < 0 ? -s : s) * eps * j;
    }
    for (const b of branches) {
      const target = two ? (b === 0 ? qMax : qMin) : (c.clean > median ? qMin : qMax);
      const dir = Math.sign(target - c.clean);
      const raw = await attackWithGenerator(generator, c.frames, {
        eps,
        branch: b,
        jnd: c.jnd,
        quantize: false,
      });
      const adv = quantizeInJnd(clean, await raw.read(), jnd, shape, eps);
      raw.dispose();
      const g = perturbationStats(clean, adv, jnd, shape, { eps });
      assert.equal(g.beyondJnd, 0, withSeed(`${c.path} branch ${b}: outside the JND box`));
      // Noise of the same mean |d| in 8-bit levels: bisect the scale of the signs.
      let lo = 0, hi = 8, noisy = adv, n = 0;
      for (let it = 0; it < 40; it++) {
        const m = (lo + hi) / 2;
        noisy = quantizeInJnd(clean, clean.map((v, i) => v + m * unit[i]), jnd, shape, eps);
        n = perturbationStats(clean, noisy, jnd, shape, { eps }).meanAbsLevels;
        if (Math.abs(n - g.meanAbsLevels) <= 0.002 * g.meanAbsLevels) break;
        if (n < g.meanAbsLevels) lo = m;
        else hi = m;
      }
      assert.ok(
        Math.abs(n - g.meanAbsLevels) <= 0.005 * g.meanAbsLevels,
        withSeed(`${c.path}: noise mean |d| ${n} levels, generator ${g.meanAbsLevels}`),
      );
      const sg = await score(victim, adv, shape);
      const sn = await score(victim, noisy, shape);
      out[b].gen.push(dir * (sg - c.clean));
      out[b].noise.push(dir * (sn - c.clean));
      out[b].levels.push(g.meanAbsLevels);
    }
  }
  return out;
}

function summary(what: string, m: Moves): string {
  return `${what}: mean move toward the target ${meanOf(m.gen).toFixed(4)} (generator) vs ${
    meanOf(m.noise).toFixed(4)
  } (noise), mean |d| ${meanOf(m.levels).toFixed(3)} levels, ${m.gen.length} clips`;
}

function train(variant: "untargeted" | "two-branch" | "signed", dir: string, m: string) {
  return trainGenerator({
    victim: VICTIM,
    variant,
    manifest: m,
    out: join(dir, "g"),
    checkpointDir: join(dir, "ck"),
    checkpointEvery: 1000,
    steps: STEPS[variant],
    batch: 4,
    lr: 2e-2,
    eps: 1,
    penalty: 0,
    penaltyEnd: 0,
    config: CONFIG,
    seed: RUN_SEED,
    onProgress: () => {},
  });
}

Deno.test("attack strength: an untargeted generator trained a few steps moves scores toward the score-reversed boundary further than matched noise", async () => {
  const m = await proxy();
  const r = await train("untargeted", await tmp(), m);
  const victim = await loadVictim(VICTIM);
  const trainClips = await loadTrainClips(victim, m, "train");
  const testClips = await loadTrainClips(victim, m, "test");
  try {
    const [held] = await measure(r.generator!, victim, testClips);
    console.log(summary("untargeted, held-out clips (not checked)", held));
    const [moves] = await measure(r.generator!, victim, trainClips);
    const line = summary("untargeted, training clips", moves);
    console.log(line);
    assert.ok(meanOf(moves.gen) >= meanOf(moves.noise) + MARGIN, withSeed(line));
  } finally {
    disposeClips(trainClips);
    disposeClips(testClips);
    victim.dispose();
    r.generator!.net.dispose();
  }
});

/**
 * Trains a steerable generator (two-branch or signed) and checks that on the held-out clips its
 * up direction moves toward qMax and its down direction toward qMin further than matched noise.
 */
async function checkBothDirections(variant: "two-branch" | "signed", names: [string, string]) {
  const m = await proxy();
  const t0 = performance.now();
  const r = await train(variant, await tmp(), m);
  const victim = await loadVictim(VICTIM);
  const clips = await loadTrainClips(victim, m, "test");
  try {
    const [up, down] = await measure(r.generator!, victim, clips);
    const lines = [summary(names[0], up), summary(names[1], down)];
    console.log(`${lines.join("\n")}\n(${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    assert.ok(meanOf(up.gen) >= meanOf(up.noise) + MARGIN, withSeed(lines[0]));
    assert.ok(meanOf(down.gen) >= meanOf(down.noise) + MARGIN, withSeed(lines[1]));
  } finally {
    disposeClips(clips);
    victim.dispose();
    r.generator!.net.dispose();
  }
}

Deno.test("attack strength: a two-branch generator trained a few steps moves held-out scores up and down further than matched noise", async () => {
  await checkBothDirections("two-branch", ["two-branch up (toward qMax)", "down (toward qMin)"]);
});

Deno.test("attack strength: a signed generator trained a few steps moves held-out scores up (+A) and down (-A) further than matched noise", async () => {
  await checkBothDirections("signed", ["signed up (+A, toward qMax)", "down (-A, toward qMin)"]);
});
