/**
 * End-to-end throughput and memory of the streamed attack (`attackVideo`: decode, JND,
 * generator, 8-bit quantisation, both victim passes, encode) at the sizes the issue names, with
 * the bundled defaults (stqa-vsfa-mini against vsfa-mini, untargeted, ffv1).
 *
 * Not a `deno bench` file: one case takes minutes. Run it with `deno task bench:attack` (or
 * `deno run -A bench/attack_stream.ts [--sizes 960x540,1280x720] [--frames 24] [--profile]`).
 * Per size it makes a clip once (a pan over `data/sources/coffee.png`, H.264 with an AAC track,
 * as a phone would record it; kept in `bench/.cache/`), then runs, in the same process:
 * - the baseline: the same clip decoded chunk by chunk and re-encoded to ffv1 (the I/O floor);
 * - the attack, with `Deno.memoryUsage().rss` sampled every 100 ms.
 * It prints one markdown row per size (frames/s of both, the attack's stage seconds, peak RSS)
 * and the load average at start and end (`Deno.loadavg()`: the machine has 2 cores, and other
 * jobs change every figure). `--profile` adds the GPU time per op (timestamp queries), which
 * slows the run a little.
 *
 * @module
 */

import { join } from "path";
import { parseArgs } from "util";
import { fileURLToPath } from "url";
import { initGpu, loadGenerator, loadVictim, readVideoChunks, writeVideo } from "../mod.ts";
import { attackVideo } from "../src/attack/video.ts";
import { startGpuProfile, stopGpuProfile } from "../src/gpu/queue.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CACHE = join(ROOT, "bench", ".cache");

const { values } = parseArgs({
  args: Deno.args,
  options: {
    sizes: { type: "string", default: "960x540,1280x720,1920x1080,3840x2160" },
    frames: { type: "string", default: "24" },
    chunk: { type: "string", default: "16" },
    profile: { type: "boolean", default: false },
    "skip-baseline": { type: "boolean", default: false },
  },
});

async function ffmpeg(args: string[]): Promise<void> {
  const r = await new Deno.Command("ffmpeg", {
    args: ["-v", "error", "-y", ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`ffmpeg failed: ${new TextDecoder().decode(r.stderr)}`);
}

/** A clip of `frames` frames of w x h: a slow pan over a photo, H.264 yuv420p with AAC audio. */
async function clip(w: number, h: number, frames: number): Promise<string> {
  await Deno.mkdir(CACHE, { recursive: true });
  const file = join(CACHE, `pan-${w}x${h}-${frames}.mp4`);
  if (await Deno.stat(file).then(() => true, () => false)) return file;
  const tmp = `${file}.tmp.mp4`;
  await ffmpeg([
    "-loop",
    "1",
    "-framerate",
    "25",
    "-i",
    join(ROOT, "data", "sources", "coffee.png"),
    "-f",
    "lavfi",
    "-i",
    `sine=frequency=440:duration=${frames / 25}`,
    "-vf",
    `scale=${Math.round(w * 1.25)}:${Math.round(h * 1.25)},crop=${w}:${h}:x='min(t*${
      Math.round(w / 20)
    },${Math.round(w / 4)})':y='${Math.round(h / 8)}'`,
    "-frames:v",
    String(frames),
    "-c:v",
    "libx264",
    "-pix_fmt",
    "yuv420p",
    "-crf",
    "18",
    "-c:a",
    "aac",
    "-shortest",
    tmp,
  ]);
  await Deno.rename(tmp, file);
  return file;
}

function load(): string {
  try {
    return Deno.loadavg().map((v) => v.toFixed(2)).join(" ");
  } catch {
    return "n/a (needs --allow-sys=loadavg)";
  }
}

/** Runs `fn` while sampling the process's RSS every 100 ms; returns its result and the peak. */
async function withPeakRss<T>(fn: () => Promise<T>): Promise<{ value: T; peakMiB: number }> {
  let peak = Deno.memoryUsage().rss;
  const timer = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 100);
  try {
    const value = await fn();
    peak = Math.max(peak, Deno.memoryUsage().rss);
    return { value, peakMiB: peak / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

await initGpu();
const generator = await loadGenerator("stqa-vsfa-mini");
const victim = await loadVictim("vsfa-mini");
const frames = Number(values.frames);
const out = await Deno.makeTempDir({ prefix: "stqa-bench-attack-" });
// Warm-up (pipeline compilation, the pool's first buffers), not timed.
{
  const warm = await clip(64, 36, 4);
  await attackVideo(warm, { generator, victim, outDir: out, name: "warm-up" });
  for await (const c of readVideoChunks(warm)) c.frames.dispose();
}
console.log(`load average at start: ${load()}`);
console.log(
  "| size | frames | baseline decode+encode frames/s | attack frames/s | wall s | generator s | " +
    "victim s | encode+decode s | peak RSS MiB |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
try {
  for (const size of values.sizes.split(",")) {
    const [w, h] = size.split("x").map(Number);
    const input = await clip(w, h, frames);
    let baseFps = NaN;
    if (!values["skip-baseline"]) {
      const t = performance.now();
      await writeVideo(
        join(out, `base-${size}.mkv`),
        (async function* () {
          for await (const c of readVideoChunks(input, { chunkFrames: Number(values.chunk) })) {
            yield c.frames;
          }
        })(),
        { fps: 25, disposeInput: true },
      );
      baseFps = frames / ((performance.now() - t) / 1000);
    }
    if (values.profile) startGpuProfile();
    const t = performance.now();
    const { value: report, peakMiB } = await withPeakRss(() =>
      attackVideo(input, {
        generator,
        victim,
        outDir: out,
        name: size,
        chunkFrames: Number(values.chunk),
      })
    );
    const wall = (performance.now() - t) / 1000;
    const s = report.attacks[0].seconds;
    console.log(
      `| ${size} | ${report.video.frames} | ${baseFps.toFixed(1)} | ${
        (report.video.frames / wall).toFixed(2)
      } | ${wall.toFixed(1)} | ${s.generator.toFixed(1)} | ${s.victim.toFixed(1)} | ${
        s.encode.toFixed(1)
      } | ${peakMiB.toFixed(0)} |`,
    );
    if (values.profile) {
      const p = await stopGpuProfile();
      const top = Object.entries(p.ops).slice(0, 12)
        .map(([op, e]) => `${op} ${(e.ms / 1000).toFixed(1)} s`).join(", ");
      console.log(
        `|   GPU ${(p.totalMs / 1000).toFixed(1)} s in ${p.dispatches} dispatches: ${top} |`,
      );
    }
  }
} finally {
  await Deno.remove(out, { recursive: true });
}
console.log(`load average at end: ${load()}`);
