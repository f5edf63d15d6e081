/**
 * The published victims at a real resolution: parameters, conv GFLOP per frame, and seconds per
 * frame of the forward pass and of forward + input gradient, on frames of 540x960 (or
 * `--size WxH`), with random weights (the time does not depend on the values). The README's
 * model table comes from this.
 *
 *   deno run --allow-read --allow-env bench/published_victims.ts [--frames 2] [--size 960x540]
 *
 * A `deno run` script (not named `*_bench.ts`, which `deno task bench` would pick up).
 *
 * @module
 */

import { parseArgs } from "util";
import { initGpu } from "../src/gpu/device.ts";
import { syncGpu } from "../src/gpu/queue.ts";
import { createVictim, PUBLISHED_FAMILIES } from "../src/models/victims/mod.ts";
import { noGrad } from "../src/tensor/tensor.ts";
import { sum } from "../src/nn/mod.ts";
import { convFlops } from "../src/tensor/ops/conv.ts";
import { clip } from "./_train_step.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    frames: { type: "string", default: "2" },
    size: { type: "string", default: "960x540" },
  },
});
const T = Number(values.frames);
const [W, H] = values.size!.split("x").map(Number);

const gpu = await initGpu();
console.log(`adapter: ${JSON.stringify(gpu.adapter)}; ${T} frames of ${W}x${H}`);
for (const family of PUBLISHED_FAMILIES) {
  const victim = createVictim(family, { seed: 1 });
  for (const p of Object.values(victim.parameters())) p.requiresGrad = false;
  const params = Object.values(victim.parameters()).reduce((n, p) => n + p.size, 0);
  const frames = clip(T, H, W);
  // Warm-up (compiles the pipelines and folds the batch norms).
  noGrad(() => victim.score(frames)).dispose();
  await syncGpu();
  const f0 = convFlops();
  let t = performance.now();
  const q = noGrad(() => victim.score(frames));
  await q.read();
  const forward = (performance.now() - t) / 1000;
  const gflop = (convFlops() - f0) / 1e9 / T;
  q.dispose();
  frames.requiresGrad = true;
  t = performance.now();
  const s = sum(victim.score(frames));
  s.backward();
  await frames.grad!.read();
  const both = (performance.now() - t) / 1000;
  console.log(
    `${family}: ${(params / 1e6).toFixed(2)} M parameters, ${gflop.toFixed(1)} conv GFLOP ` +
      `per frame, forward ${(forward / T).toFixed(2)} s/frame, forward + input gradient ` +
      `${(both / T).toFixed(2)} s/frame (${(gflop / (forward / T)).toFixed(1)} GFLOP/s forward)`,
  );
  frames.dispose();
  victim.dispose();
}
