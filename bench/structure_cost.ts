/**
 * Time per frame of `StructureAccumulator.push` (src/metrics/structure.ts) at 1280x720: a few
 * frames of random 8-bit perturbations, pushed one chunk of `--frames` frames at a time after one
 * warm-up frame; prints the median and the best milliseconds per frame over `--trials` trials.
 *
 * `deno run bench/structure_cost.ts [--frames 4] [--trials 3] [--width 1280] [--height 720]`
 *
 * @module
 */

import { parseArgs } from "util";
import { seededRandom } from "../src/_random.ts";
import { StructureAccumulator } from "../src/metrics/structure.ts";

const args = parseArgs({
  options: {
    frames: { type: "string", default: "4" },
    trials: { type: "string", default: "3" },
    width: { type: "string", default: "1280" },
    height: { type: "string", default: "720" },
  },
}).values;
const [t, trials, w, h] = [args.frames, args.trials, args.width, args.height].map(Number);
const r = seededRandom(1);
const n = t * 3 * h * w;
const clean = new Float32Array(n);
const adv = new Float32Array(n);
for (let i = 0; i < n; i++) {
  const c = Math.floor(r.uniform() * 256);
  clean[i] = c / 255;
  adv[i] = Math.min(255, Math.max(0, c + Math.round(2 * r.normal()))) / 255;
}
const acc = new StructureAccumulator({ seed: 1 });
const one = 3 * h * w;
acc.push(clean.subarray(0, one), adv.subarray(0, one), [1, 3, h, w]); // warm-up
const times: number[] = [];
for (let k = 0; k < trials; k++) {
  const t0 = performance.now();
  acc.push(clean, adv, [t, 3, h, w]);
  times.push((performance.now() - t0) / t);
}
const t0 = performance.now();
acc.result();
const resultMs = performance.now() - t0;
times.sort((a, b) => a - b);
console.log(
  `${w}x${h}, ${t} frames x ${trials} trials: median ${times[trials >> 1].toFixed(1)} ms/frame, ` +
    `best ${times[0].toFixed(1)}; result() ${resultMs.toFixed(1)} ms`,
);
