/**
 * The published victims (and the bundled `vsfa-mobilenetv2`, whose backbone is a published
 * network) at a real resolution: parameters, conv GFLOP per frame, and seconds per
 * frame of the forward pass and of forward + input gradient, on frames of 540x960 (or
 * `--size WxH`), with random weights (the time does not depend on the values). The README's
 * model table comes from this.
 *
 *   deno run --allow-read --allow-env bench/published_victims.ts [--frames 2] [--size 960x540]
 *     [--family vsfa|mdtvsfa|simplevqa|vsfa-mobilenetv2]
 *
 * SimpleVQA scores seconds (a key frame and a 32-frame clip each), so it is timed on one second
 * of video (`fps` frames) and reported per second.
 *
 * FAST-VQA, FasterVQA and DOVER sample a fixed amount from any video (FAST-VQA: 4 clips of 32
 * fragment frames; FasterVQA: one; DOVER: 3 fragment clips and one 32-frame 224x224 clip), so
 * they are timed per video, on `--frames` frames (16 by default for them: 16 frames of 540p fit
 * one binding; the sampling wraps around them), and their GFLOP are counted from the shapes
 * (`swinFlops`, `convNext3dFlops`: their work is matrix products, which the conv counters miss).
 *
 * A `deno run` script (not named `*_bench.ts`, which `deno task bench` would pick up).
 *
 * @module
 */

import { parseArgs } from "util";
import { initGpu } from "../src/gpu/device.ts";
import { syncGpu } from "../src/gpu/queue.ts";
import {
  createVictim,
  type Dover,
  type FastVqa,
  PUBLISHED_FAMILIES,
  VsfaMobileNetV2,
} from "../src/models/victims/mod.ts";
import { swinFlops } from "../src/models/victims/swin3d.ts";
import { convNext3dFlops } from "../src/models/victims/convnext3d.ts";
import { noGrad } from "../src/tensor/tensor.ts";
import { sum } from "../src/nn/mod.ts";
import { convFlops } from "../src/tensor/ops/conv.ts";
import { conv3dFlops } from "../src/tensor/ops/conv3d.ts";
import { clip } from "./_train_step.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    frames: { type: "string" },
    size: { type: "string", default: "960x540" },
    family: { type: "string" },
  },
});
const FRAMES = values.frames === undefined ? null : Number(values.frames);
const [W, H] = values.size!.split("x").map(Number);

const gpu = await initGpu();
console.log(`adapter: ${gpu.adapter.description}; frames of ${W}x${H}`);
const only = values.family;
const FAMILIES = [...PUBLISHED_FAMILIES, "vsfa-mobilenetv2"] as const;
for (const family of FAMILIES.filter((f) => !only || f === only)) {
  // SimpleVQA scores seconds (a key frame and a 32-frame clip each): one second of video. Its
  // `fps` is set to 8 so that the second fits one binding at 540p (30 frames of 540p are 178
  // MiB); the work per second is the same (one 448x448 key frame, one 32-frame clip at 224),
  // but for resizing 8 frames instead of 30 to 224.
  const perSecond = family === "simplevqa";
  const perVideo = family === "fast-vqa" || family === "faster-vqa" || family === "dover";
  const victim = createVictim(family, { seed: 1, config: perSecond ? { fps: 8 } : {} });
  const T = perSecond ? 8 : FRAMES ?? (perVideo ? 16 : 2);
  for (const p of Object.values(victim.parameters())) p.requiresGrad = false;
  // vsfa-mobilenetv2's frozen backbone is held apart from its (trained, saved) head.
  const backbone = victim instanceof VsfaMobileNetV2 ? victim.backboneParameters() : {};
  const all = [...Object.values(victim.parameters()), ...Object.values(backbone)];
  const params = all.reduce((n, p) => n + p.size, 0);
  const frames = clip(T, H, W);
  // Warm-up (compiles the pipelines and folds the batch norms).
  noGrad(() => victim.score(frames)).dispose();
  await syncGpu();
  const f0 = convFlops() + conv3dFlops();
  let t = performance.now();
  const q = noGrad(() => victim.score(frames));
  await q.read();
  const forward = (performance.now() - t) / 1000;
  const gflop = perVideo
    ? videoFlops(victim as FastVqa | Dover) / 1e9
    : (convFlops() + conv3dFlops() - f0) / 1e9 / (perSecond ? 1 : T);
  q.dispose();
  frames.requiresGrad = true;
  t = performance.now();
  const s = sum(victim.score(frames));
  s.backward();
  await frames.grad!.read();
  const both = (performance.now() - t) / 1000;
  const unit = perSecond ? "second of video" : perVideo ? "video" : "frame";
  const per = perSecond || perVideo ? 1 : T;
  console.log(
    `${family}: ${(params / 1e6).toFixed(2)} M parameters, ${gflop.toFixed(1)} ${
      perVideo ? "" : "conv "
    }GFLOP ` +
      `per ${unit}, forward ${(forward / per).toFixed(2)} s/${unit}, forward + input gradient ` +
      `${(both / per).toFixed(2)} s/${unit} (${
        (gflop / (forward / per)).toFixed(1)
      } GFLOP/s forward)`,
  );
  frames.dispose();
  victim.dispose();
}

/** FLOPs of one video's forward pass of a sampled-view victim (its clips as sampled). */
function videoFlops(v: FastVqa | Dover): number {
  if (v.family === "dover") {
    const { technical: t, aesthetic: a } = (v as Dover).config;
    const fragment: [number, number, number] = [
      t.clipLen,
      t.fragments[0] * t.fragmentSize[0],
      t.fragments[1] * t.fragmentSize[1],
    ];
    return t.clips * swinFlops(t.backbone, fragment) +
      a.clips * convNext3dFlops(a.backbone, [a.clipLen, a.size[0], a.size[1]]);
  }
  const c = (v as FastVqa).config;
  const fragment: [number, number, number] = [
    c.clipLen,
    c.fragments[0] * c.fragmentSize[0],
    c.fragments[1] * c.fragmentSize[1],
  ];
  return c.clips * swinFlops(c.backbone, fragment);
}
