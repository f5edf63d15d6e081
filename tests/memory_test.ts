// The buffer pool stops growing in a training loop: 100 Adam steps of a small two-layer
// perceptron inside `tidy`, with the pool's counters recorded after every step. After the first
// few steps, `created` and `totalBytes` must not change, and `inUse` must come back to the same
// baseline after each step (parameters, data and the optimiser's m and v; no leaked gradient,
// activation or graph buffer).

import assert from "assert";
import {
  Adam,
  kaimingUniform,
  nn,
  type PoolStats,
  poolStats,
  type Tensor,
  tensor,
  tidy,
  xavierUniform,
  zeros,
} from "../mod.ts";
import { initGpu, randn, RUN_SEED, withSeed } from "./_helpers.ts";

await initGpu();

const STEPS = 100;

function makeModel(seed: number) {
  const params = {
    w1: kaimingUniform([24, 12], { seed, nonlinearity: "tanh" }),
    b1: zeros([24]),
    w2: xavierUniform([5, 24], { seed: seed + 1 }),
    b2: zeros([5]),
  };
  const forward = (x: Tensor) =>
    nn.linear(nn.tanh(nn.linear(x, params.w1, params.b1)), params.w2, params.b2);
  return { params, forward };
}

/** Runs the loop; `sync` reads the loss back every step (as a logging loop would). */
async function train(
  sync: boolean,
): Promise<{ before: PoolStats; stats: PoolStats[]; losses: number[] }> {
  const before = poolStats();
  const x = tensor(Float32Array.from(randn(16 * 12, RUN_SEED)), [16, 12]);
  const target = tensor(Float32Array.from(randn(16 * 5, RUN_SEED + 1, 0.5)), [16, 5]);
  const { params, forward } = makeModel(RUN_SEED + 2);
  const opt = new Adam(Object.values(params), { lr: 1e-2 });
  const stats: PoolStats[] = [poolStats()];
  const losses: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    const loss = tidy(() => {
      const l = nn.mean(nn.square(nn.sub(forward(x), target)));
      l.backward();
      return l;
    });
    if (sync || step === 0 || step === STEPS - 1) losses.push((await loss.read())[0]);
    loss.dispose();
    opt.step();
    opt.zeroGrad();
    stats.push(poolStats());
  }
  opt.dispose();
  [x, target, ...Object.values(params)].forEach((t) => t.dispose());
  stats.push(poolStats());
  return { before, stats, losses };
}

function checkStats(start: PoolStats, stats: PoolStats[], label: string): void {
  const end = stats[stats.length - 1];
  // stats[k] is after step k. The optimiser's state (m, v for 4 parameters) appears on step 1.
  const baseline = stats[1].inUse;
  for (let k = 1; k <= STEPS; k++) {
    assert.equal(stats[k].inUse, baseline, `${label}: inUse after step ${k}`);
  }
  for (let k = 5; k <= STEPS; k++) {
    assert.equal(stats[k].created, stats[5].created, `${label}: buffers created by step ${k}`);
    assert.equal(stats[k].totalBytes, stats[5].totalBytes, `${label}: pool bytes at step ${k}`);
  }
  // Everything made for the run (data, parameters, state) is released at the end.
  assert.equal(end.inUse, start.inUse, `${label}: inUse after disposing everything`);
  console.log(
    `${label}: inUse ${start.inUse} -> ${baseline} during training -> ${end.inUse}; ` +
      `created ${start.created} -> ${stats[5].created} (step 5) -> ${stats[STEPS].created} ` +
      `(step ${STEPS}); pool ${(stats[STEPS].totalBytes / 1024).toFixed(1)} KiB`,
  );
}

Deno.test("the pool stops growing over 100 Adam steps, reading the loss every step", async () => {
  const { before, stats, losses } = await train(true);
  checkStats(before, stats, "synced");
  // The data, 4 parameters and 8 state tensors are what stays in use during training.
  assert.equal(stats[1].inUse - before.inUse, 2 + 4 + 8);
  assert.ok(
    losses[STEPS - 1] < 0.5 * losses[0],
    withSeed(`loss ${losses[0]} -> ${losses[STEPS - 1]}`),
  );
});

Deno.test("the pool stops growing over 100 Adam steps without a sync point per step", async () => {
  const { before, stats, losses } = await train(false);
  checkStats(before, stats, "unsynced");
  assert.ok(losses[1] < 0.5 * losses[0], withSeed(`loss ${losses[0]} -> ${losses[1]}`));
});
