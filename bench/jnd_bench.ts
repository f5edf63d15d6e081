// JND maps (src/jnd, src/jnd/jnd.wgsl): frames per second at 128x128 and 540x960 (H x W) for each
// model, against the time ffmpeg takes to decode a 540x960 H.264 frame to rgb24.
//
//   deno bench -A bench/jnd_bench.ts       Deno's bench runner (time per batch)
//   deno run -A bench/jnd_bench.ts         prints a Markdown table (used for bench/RESULTS.md)
//
// A unit of work is computeJnd on a batch of T frames already on the GPU (16 at 128x128, 4 at
// 540x960), timed with one sync per `reps` batches after a warm-up batch (bench/_timing.ts).
// The frames are a smooth random field plus noise, so every stage has work (edges, texture,
// temporal change). The ffmpeg figure decodes a 48-frame pan over data/sources/coffee.png
// (x264, yuv420p) to rgb24 into a null sink, single process, wall time per frame; it needs
// --allow-run and --allow-write (skipped without them).

import * as path from "path";
import { initGpu } from "../src/gpu/device.ts";
import { syncGpu } from "../src/gpu/queue.ts";
import { type Tensor, tensor } from "../src/tensor/tensor.ts";
import { computeJnd, JND_MODELS, type JndModel } from "../src/jnd/mod.ts";
import { fmt, printTable, timeGpu } from "./_timing.ts";
import { seededRandom } from "../src/_random.ts";

const SIZES: { h: number; w: number; t: number }[] = [
  { h: 128, w: 128, t: 16 },
  { h: 540, w: 960, t: 4 },
];

/** Smooth random field plus noise, [T,3,H,W] in [0,1], deterministic. */
function frames(t: number, h: number, w: number): Float32Array {
  const rand = seededRandom(12345).uniform;
  const out = new Float32Array(t * 3 * h * w);
  const phase = Array.from({ length: 12 }, () => rand() * 6.283);
  for (let f = 0; f < t; f++) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const v = 0.5 + 0.25 * Math.sin(x * 0.05 + phase[c] + f * 0.1) *
              Math.cos(y * 0.07 + phase[c + 3]) +
            0.15 * Math.sign(Math.sin(x * 0.013 + y * 0.021 + phase[c + 6])) +
            0.05 * (rand() - 0.5);
          out[((f * 3 + c) * h + y) * w + x] = Math.min(1, Math.max(0, v));
        }
      }
    }
  }
  return out;
}

await initGpu();
const inputs = new Map<string, Tensor>();
for (const { h, w, t } of SIZES) inputs.set(`${h}x${w}`, tensor(frames(t, h, w), [t, 3, h, w]));

function run(model: JndModel, key: string): void {
  computeJnd(inputs.get(key)!, { model }).dispose();
}

if (!import.meta.main) {
  for (const { h, w, t } of SIZES) {
    for (const model of JND_MODELS) {
      Deno.bench({
        name: `${model} ${h}x${w} x${t} frames`,
        group: `jnd ${h}x${w}`,
        baseline: model === "namm",
        async fn() {
          run(model, `${h}x${w}`);
          await syncGpu();
        },
      });
    }
  }
} else {
  const rows: string[][] = [];
  for (const { h, w, t } of SIZES) {
    for (const model of JND_MODELS) {
      const reps = h * w > 100_000 ? 1 : 4;
      const timing = await timeGpu(() => run(model, `${h}x${w}`), syncGpu, {
        reps,
        trials: 3,
        warmup: 1,
      });
      const perFrame = timing.medianMs / t;
      rows.push([
        `${h}x${w}`,
        model,
        String(t),
        fmt(perFrame, 2),
        fmt(1000 / perFrame, 1),
        fmt(1000 / (timing.bestMs / t), 1),
      ]);
    }
  }
  printTable(["H x W", "model", "T", "ms/frame (median)", "frames/s", "best frames/s"], rows);
  const decode = await ffmpegDecodeMsPerFrame();
  console.log(
    decode === null
      ? "\nffmpeg decode: skipped (needs --allow-run and --allow-write)"
      : `\nffmpeg decode of 540x960 x264 to rgb24: ${fmt(decode, 2)} ms/frame ` +
        `(${fmt(1000 / decode, 1)} frames/s)`,
  );
}

/** Median wall time per frame of decoding a 48-frame 540x960 x264 clip, or null. */
async function ffmpegDecodeMsPerFrame(): Promise<number | null> {
  const ok =
    (await Deno.permissions.query({ name: "run", command: "ffmpeg" })).state === "granted" &&
    (await Deno.permissions.query({ name: "write" })).state === "granted";
  if (!ok) return null;
  const dir = await Deno.makeTempDir({ prefix: "stqa_jnd_bench_" });
  try {
    const clip = path.join(dir, "clip.mp4");
    const source = path.join(import.meta.dirname!, "..", "data", "sources", "coffee.png");
    const n = 48;
    const ff = async (args: string[]) => {
      const out = await new Deno.Command("ffmpeg", {
        args: ["-nostdin", "-hide_banner", "-loglevel", "error", "-y", ...args],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    };
    await ff([
      ...["-loop", "1", "-framerate", "25", "-i", source],
      ...["-vf", "scale=1280:-2,crop=960:540:x='t*60':y='t*20'", "-frames:v", String(n)],
      ...["-c:v", "libx264", "-pix_fmt", "yuv420p", clip],
    ]);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await ff(["-i", clip, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
      times.push((performance.now() - t0) / n);
    }
    return times.sort((a, b) => a - b)[1];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
