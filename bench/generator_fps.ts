/**
 * Generator frames per second at video sizes: the bundled default generator (stqa-vsfa-mini)
 * attacking synthetic frames (bench/_train_step.ts's clip: a smooth field with edges, noise
 * and a pan) with the JND maps computed first, as `attackWithGenerator` runs it in the streamed
 * attack (chunks of frames that fit one binding, the GRU state carried, tiles where a frame does
 * not fit), without quantisation or read-back; and the JND maps alone as the baseline. No video
 * files, no ffmpeg: the figure is the generator's own (issue #16's "frames/s at 1080p" on a GPU;
 * `deno task bench:attack` measures the whole streamed attack with decoding and encoding).
 *
 * One warm-up pass (pipeline compilation) per size, then `--repeats` timed passes; prints the
 * median, the adapter and the kernel family.
 *
 *   deno run --allow-read --allow-env bench/generator_fps.ts [--sizes 960x540,1920x1080]
 *     [--frames 8] [--repeats 3] [--generator stqa-vsfa-mini]
 *
 * @module
 */

import { parseArgs } from "util";
import { bindingLimit, getGpu, initGpu, kernelFamily } from "../src/gpu/device.ts";
import { syncGpu } from "../src/gpu/queue.ts";
import { loadGenerator } from "../src/models/generator_io.ts";
import { attackWithGenerator } from "../src/attack/stqa.ts";
import { computeJnd } from "../src/jnd/mod.ts";
import { noGrad } from "../src/tensor/tensor.ts";
import { clip } from "./_train_step.ts";
import { fmt, formatTable } from "./_timing.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    sizes: { type: "string", default: "960x540,1920x1080" },
    frames: { type: "string", default: "8" },
    repeats: { type: "string", default: "3" },
    generator: { type: "string", default: "stqa-vsfa-mini" },
  },
});
const frames = Number(values.frames), repeats = Number(values.repeats);
if (!(frames >= 1 && repeats >= 1)) throw new RangeError("--frames and --repeats must be >= 1");

await initGpu();
const g = await loadGenerator(values.generator!);
console.log(
  `adapter ${getGpu().adapter.description}; kernels ${kernelFamily()}; ` +
    `generator ${values.generator}; up to ${frames} frames per pass`,
);
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
const rows: string[][] = [];
for (const size of values.sizes!.split(",")) {
  const [w, h] = size.split("x").map(Number);
  if (!(w > 0 && h > 0)) throw new RangeError(`--sizes: ${size} is not WxH`);
  // As many frames per pass as one binding holds (the streamed attack's chunks do the same).
  const n = Math.max(1, Math.min(frames, Math.floor(bindingLimit() / (4 * 3 * h * w))));
  const x = clip(n, h, w);
  const jndTimes: number[] = [], genTimes: number[] = [];
  for (let r = 0; r <= repeats; r++) {
    let t0 = performance.now();
    const jnd = noGrad(() => computeJnd(x, { model: g.info.jnd })).keep();
    await syncGpu();
    const tj = performance.now() - t0;
    t0 = performance.now();
    (await attackWithGenerator(g, x, { jnd, quantize: false })).dispose();
    await syncGpu();
    const tg = performance.now() - t0;
    jnd.dispose();
    if (r === 0) continue; // compiles the pipelines
    jndTimes.push(tj);
    genTimes.push(tg);
  }
  x.dispose();
  const j = median(jndTimes), gen = median(genTimes);
  rows.push([
    `${w}x${h}`,
    String(n),
    fmt(n / (j / 1000), 1),
    fmt(n / (gen / 1000), 2),
    fmt(n / ((j + gen) / 1000), 2),
  ]);
  console.log(`${w}x${h}: JND ${fmt(j, 0)} ms, generator ${fmt(gen, 0)} ms per ${n} frames`);
}
console.log(
  "\n" +
    formatTable(
      ["size", "frames", "JND frames/s", "generator frames/s", "JND + generator frames/s"],
      rows,
    ),
);
