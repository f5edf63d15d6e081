/**
 * One victim pass as the gradient attacks run it: forward and input gradient of every bundled
 * victim on one clip of 16 frames of 128x128 (`boundaryGradient` of the baselines: the score of
 * the perturbed clip, the boundary loss, backward to the perturbation), against the forward
 * alone. Issue #16's second target (25% of the adapter's peak or more).
 *
 * Per victim it prints the median time of a pass (the pass encodes, then waits once with
 * `syncGpu()`), the conv FLOPs of the pass (`convFlops()`: forward + input gradient of every
 * conv; elementwise work, pooling and the GRU ignored), GFLOP/s and % of the peak, dispatches per pass, and the
 * GPU time per op of one profiled pass (timestamp queries), so that dispatch-bound work shows.
 *
 *   deno run --allow-read --allow-env bench/victim_passes.ts [--repeats 5]
 *
 * A `deno run` script (not named `*_bench.ts`, which `deno task bench` would pick up).
 *
 * @module
 */

import { parseArgs } from "util";
import { initGpu } from "../src/gpu/device.ts";
import { queueStats, startGpuProfile, stopGpuProfile, syncGpu } from "../src/gpu/queue.ts";
import { loadVictim, TRAINABLE_FAMILIES } from "../src/models/victims/mod.ts";
import { boundaryGradient, freezeVictim } from "../src/attack/baselines/_common.ts";
import { full, noGrad } from "../src/tensor/tensor.ts";
import { convFlops } from "../src/tensor/ops/conv.ts";
import { clip } from "./_train_step.ts";
import { describePeak, measurePeak } from "./_peak.ts";
import { fmt, formatTable } from "./_timing.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { repeats: { type: "string", default: "5" } },
});
const REPEATS = Number(values.repeats);
const T = 16, H = 128, W = 128;

await initGpu();
const peak = await measurePeak({ chains: [8, 16], workgroupSizes: [256] });
console.log(describePeak(peak));
const frames = clip(T, H, W);
const d = full([T, 3, H, W], 0).keep();
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];

const rows: string[][] = [];
for (const family of TRAINABLE_FAMILIES) {
  const victim = await loadVictim(family);
  freezeVictim(victim);
  const fwd = async () => {
    const q = noGrad(() => victim.score(frames));
    await syncGpu();
    q.dispose();
  };
  const pass = async () => {
    boundaryGradient(frames, d, victim, 1).dispose();
    await syncGpu();
  };
  await fwd();
  await pass(); // compiles the pipelines
  const tf: number[] = [], tp: number[] = [];
  let dispatches = 0, submits = 0, flops = 0;
  for (let r = 0; r < REPEATS; r++) {
    let t0 = performance.now();
    await fwd();
    tf.push(performance.now() - t0);
    const s0 = queueStats(), f0 = convFlops();
    t0 = performance.now();
    await pass();
    tp.push(performance.now() - t0);
    const s1 = queueStats();
    flops = convFlops() - f0;
    dispatches = s1.dispatches - s0.dispatches;
    submits = s1.submits - s0.submits;
  }
  startGpuProfile();
  await pass();
  const p = await stopGpuProfile();
  const top = Object.entries(p.ops).slice(0, 6).map(([op, e]) =>
    `${op} ${fmt(e.ms, 0)} ms/${e.dispatches}`
  ).join(", ");
  const ms = median(tp);
  rows.push([
    family,
    fmt(median(tf), 0),
    fmt(ms, 0),
    fmt(flops / 1e9, 3),
    fmt(flops / ms / 1e6, 2),
    `${fmt(100 * flops / ms / 1e6 / peak.gflops, 1)}%`,
    String(dispatches),
    String(submits),
    fmt(p.totalMs, 0),
  ]);
  console.log(`${family}: GPU time of one profiled pass by op (ms/dispatches): ${top}`);
}

console.log(
  "\n" + formatTable(
    [
      "victim",
      "forward ms",
      "fwd + input grad ms",
      "conv GFLOP",
      "GFLOP/s",
      "% peak",
      "dispatches",
      "submits",
      "GPU ms (profiled)",
    ],
    rows,
  ),
);
