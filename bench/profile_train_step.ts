/**
 * Where one generator training step's time goes: the step of bench/_train_step.ts (one clip of
 * 16 frames of 128x128 against vsfa-mini, the default generator config or `--small`), the step
 * of issue #16's first row and of bench/train_step_bench.ts.
 *
 * Prints, for the mean of `--steps` steps after one warm-up step:
 * - wall time per step, and the CPU time spent encoding it (the JavaScript of forward, backward
 *   and Adam, not the wait for the loss; on lavapipe `queue.submit` runs the submitted work
 *   before it returns, so the encoding time of a step that submits also holds GPU time);
 * - dispatches and submits per step (each step reads its loss back once);
 * - GPU time per op from timestamp queries (one more, profiled step: each dispatch becomes its
 *   own timed pass, which costs a little), with its share of the step's GPU time.
 *
 *   deno run --allow-read --allow-env bench/profile_train_step.ts [--steps 3] [--small]
 *
 * @module
 */

import { parseArgs } from "util";
import { initGpu } from "../src/gpu/device.ts";
import { queueStats, startGpuProfile, stopGpuProfile, syncGpu } from "../src/gpu/queue.ts";
import { stepInputs, trainStep, trainStepFlops } from "./_train_step.ts";
import { fmt, formatTable } from "./_timing.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { steps: { type: "string", default: "3" }, small: { type: "boolean" } },
});
const STEPS = Number(values.steps);
if (!Number.isInteger(STEPS) || STEPS < 1) throw new RangeError(`--steps: ${values.steps}`);
const T = 16, H = 128, W = 128;

const gpu = await initGpu();
if (!gpu.hasTimestampQuery) throw new Error("this adapter has no timestamp-query feature");

const config = values.small
  ? { encoder: [8, 16, 32], hidden: 32, decoder: [16, 8], input: "jnd+rgb" }
  : {};
const inputs = await stepInputs(config, T, H, W);
const { net, victim } = inputs;

await trainStep(inputs); // compiles the pipelines
await syncGpu();
const before = queueStats();
let wall = 0, encode = 0;
for (let s = 0; s < STEPS; s++) {
  const t0 = performance.now();
  encode += (await trainStep(inputs)).encodeMs;
  await syncGpu();
  wall += performance.now() - t0;
}
const after = queueStats();
startGpuProfile();
await trainStep(inputs);
const p = await stopGpuProfile();

const flops = trainStepFlops(net, victim, T, H, W);
console.log(
  `${values.small ? "small" : "default"} config, 1 clip x ${T} x ${H}x${W}, vsfa-mini; ` +
    `mean of ${STEPS} steps after a warm-up:\n` +
    `  wall ${fmt(wall / STEPS, 0)} ms per step (${fmt(flops / 1e9, 2)} GFLOP, ` +
    `${fmt(flops / (wall / STEPS) / 1e6, 1)} GFLOP/s); CPU encoding ${
      fmt(encode / STEPS, 0)
    } ms; ` +
    `dispatches ${fmt((after.dispatches - before.dispatches) / STEPS, 0)}, ` +
    `submits ${fmt((after.submits - before.submits) / STEPS, 0)}\n` +
    `  GPU time of one profiled step: ${fmt(p.totalMs, 0)} ms in ${p.dispatches} dispatches\n`,
);
console.log(formatTable(
  ["op", "dispatches", "GPU ms", "share"],
  Object.entries(p.ops).map(([op, e]) => [
    op,
    String(e.dispatches),
    fmt(e.ms, 1),
    `${fmt(100 * e.ms / p.totalMs, 1)}%`,
  ]),
));
