/**
 * Where one generator training step's time goes: the default STQA-Net config (encoder
 * [16,32,64], hidden 64, decoder [32,16], input jnd), one clip of 16 frames of 128x128, victim
 * vsfa-mini, `boundaryLoss` + 0.1 x `weightPenalty`, backward, Adam — the step of
 * bench/stqa_net_bench.ts's `train default` group and of issue #16's first row.
 *
 * Prints, for the mean of `--steps` steps after one warm-up step:
 * - wall time per step, and the CPU time spent encoding it (the JavaScript of forward, backward
 *   and Adam, before the loss is awaited);
 * - dispatches, submits and read-backs (syncs) per step;
 * - GPU time per kernel family from timestamp queries (one profiled step; each dispatch becomes
 *   its own timed pass, which costs a little), with the share of the step's GPU time.
 *
 *   deno run --allow-read --allow-env bench/profile_train_step.ts [--steps 3] [--small]
 *
 * @module
 */

import { parseArgs } from "util";
import { initGpu } from "../src/gpu/device.ts";
import { queueStats, startGpuProfile, stopGpuProfile, syncGpu } from "../src/gpu/queue.ts";
import { StqaNet } from "../src/models/stqa_net.ts";
import { loadVictim } from "../src/models/victims/mod.ts";
import { generatorPerturb } from "../src/attack/stqa.ts";
import { boundaryLoss, weightPenalty } from "../src/attack/losses.ts";
import { computeJnd } from "../src/jnd/mod.ts";
import { add, mul } from "../src/nn/mod.ts";
import { Adam } from "../src/optim/optimizers.ts";
import { noGrad, type Tensor, tensor, tidy } from "../src/tensor/tensor.ts";
import { seededRandom } from "../src/_random.ts";
import { fmt, formatTable } from "./_timing.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { steps: { type: "string", default: "3" }, small: { type: "boolean" } },
});
const STEPS = Number(values.steps);
const T = 16, H = 128, W = 128;

const gpu = await initGpu();
if (!gpu.hasTimestampQuery) throw new Error("this adapter has no timestamp-query feature");

/** A smooth random field with edges and noise, [T,3,H,W] in [0,1] on 8-bit levels. */
function clip(): Tensor {
  const rand = seededRandom(2026);
  const out = new Float32Array(T * 3 * H * W);
  for (let i = 0; i < out.length; i++) {
    const x = i % W, y = Math.floor(i / W) % H, f = Math.floor(i / (3 * H * W));
    const v = 0.5 + 0.25 * Math.sin((x + 2 * f) * 0.05) * Math.cos(y * 0.07) +
      0.15 * Math.sign(Math.sin((x + 2 * f) * 0.013 + y * 0.021)) + 0.05 * (rand.uniform() - 0.5);
    out[i] = Math.round(255 * Math.min(1, Math.max(0, v))) / 255;
  }
  return tensor(out, [T, 3, H, W]);
}

const config = values.small
  ? { encoder: [8, 16, 32], hidden: 32, decoder: [16, 8], input: "jnd+rgb" }
  : {};
const net = new StqaNet({ seed: 1, config });
const victim = await loadVictim("vsfa-mini");
const frames = clip();
const jnd = noGrad(() => computeJnd(frames, { model: "namm-st" }));
const x = frames.reshape([1, T, 3, H, W]).keep();
const j = jnd.reshape([1, T, 1, H, W]).keep();
const opt = new Adam(Object.values(net.parameters()), { lr: 1e-4 });

let reads = 0;
async function step(): Promise<{ encodeMs: number }> {
  const t0 = performance.now();
  const loss = tidy(() => {
    const r = generatorPerturb(net, x, j);
    const l = add(
      boundaryLoss(victim.scoreBatch(r.adversarial[0]), [1]),
      mul(weightPenalty(r.weights[0]), 0.1),
    );
    l.backward();
    return l;
  });
  const encodeMs = performance.now() - t0;
  const value = (await loss.read())[0];
  reads++;
  loss.dispose();
  if (!Number.isFinite(value)) throw new Error(`training loss is ${value}`);
  const t1 = performance.now();
  opt.step();
  opt.zeroGrad();
  return { encodeMs: encodeMs + performance.now() - t1 };
}

await step(); // compiles the pipelines
await syncGpu();
const before = queueStats();
let wall = 0, encode = 0;
for (let s = 0; s < STEPS; s++) {
  const t0 = performance.now();
  const { encodeMs } = await step();
  await syncGpu();
  wall += performance.now() - t0;
  encode += encodeMs;
}
const after = queueStats();
startGpuProfile();
await step();
const p = await stopGpuProfile();

const rows = Object.entries(p.ops).map(([op, e]) => [
  op,
  String(e.dispatches),
  fmt(e.ms, 1),
  `${fmt(100 * e.ms / p.totalMs, 1)}%`,
]);
const n = STEPS;
console.log(
  `${values.small ? "small" : "default"} config, 1 clip x ${T} x ${H}x${W}, vsfa-mini; ` +
    `mean of ${n} steps after a warm-up:\n` +
    `  wall ${fmt(wall / n, 0)} ms per step; CPU encoding ${fmt(encode / n, 0)} ms; ` +
    `dispatches ${fmt((after.dispatches - before.dispatches) / n, 0)}, ` +
    `submits ${fmt((after.submits - before.submits) / n, 0)}, read-backs 1 + sync 1 per step\n` +
    `  GPU time of one profiled step: ${fmt(p.totalMs, 0)} ms in ${p.dispatches} dispatches\n`,
);
console.log(formatTable(["op", "dispatches", "GPU ms", "share"], rows));
