// Video decode and encode throughput at 540x960 (H x W), frames on the GPU.
//
//   deno bench -A bench/video_bench.ts        Deno's bench runner (time per call of N frames)
//   deno run -A bench/video_bench.ts [N]      prints frames per second as a Markdown table
//
// Decoding is ffmpeg -> rgb24 pipe -> [T,3,H,W] float tensor (GPU unpack kernel, or the CPU
// conversion for comparison); encoding is tensor -> 8-bit packing (GPU kernel or CPU) -> ffmpeg.
// The clip is a pan over data/sources/coffee.png made with ffmpeg at the start. Needs
// --allow-run and --allow-write (ffmpeg and a temporary folder); without them the benches are
// skipped.

import * as path from "path";
import { initGpu, readVideo, type Tensor, writeVideo } from "../mod.ts";
import { syncGpu } from "../src/gpu/queue.ts";
import { packFrames, paddedBytes, unpackFrames } from "../src/video/_convert.ts";

const H = 540;
const W = 960;
// 16 frames of 540x960 float32 are 95 MiB: one tensor stays under lavapipe's 128 MiB binding.
const FRAMES = Number(Deno.args[0] ?? 16);
const SOURCE = path.join(import.meta.dirname!, "..", "data", "sources", "coffee.png");

const allowed =
  (await Deno.permissions.query({ name: "run", command: "ffmpeg" })).state === "granted" &&
  (await Deno.permissions.query({ name: "write" })).state === "granted";

async function ffmpeg(args: string[]): Promise<void> {
  const out = await new Deno.Command("ffmpeg", {
    args: ["-nostdin", "-hide_banner", "-loglevel", "error", "-y", ...args],
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

interface Setup {
  dir: string;
  ffv1: string;
  x264: string;
  frames: Tensor;
  bytes: Uint8Array;
}

async function setup(): Promise<Setup> {
  await initGpu();
  const dir = await Deno.makeTempDir({ prefix: "stqa_video_bench_" });
  globalThis.addEventListener("unload", () => {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* removed already */ }
  });
  const ffv1 = path.join(dir, "src.mkv");
  const x264 = path.join(dir, "src.mp4");
  const vf = `scale=${W + 320}:-2,crop=${W}:${H}:x='t*60':y='t*20'`;
  const input = ["-loop", "1", "-framerate", "25", "-i", SOURCE, "-vf", vf, "-frames:v"];
  await ffmpeg([...input, String(FRAMES), "-c:v", "ffv1", "-pix_fmt", "bgr0", ffv1]);
  await ffmpeg([...input, String(FRAMES), "-c:v", "libx264", "-pix_fmt", "yuv420p", x264]);
  const frames = await readVideo(ffv1);
  const bytes = new Uint8Array(paddedBytes(FRAMES * H * W * 3));
  bytes.set(await packFrames(frames, 0, FRAMES));
  await Deno.writeFile(path.join(dir, "raw.rgb"), bytes.subarray(0, FRAMES * H * W * 3));
  return { dir, ffv1, x264, frames, bytes };
}

type Case = [string, (s: Setup) => Promise<unknown>];

/** ffmpeg by itself, for comparison: decode to rgb24 into a null sink. */
const ffmpegDecode = (file: string) => ffmpeg(["-i", file, "-f", "null", "-pix_fmt", "rgb24", "-"]);
/** ffmpeg by itself: encode from an rgb24 file. */
const ffmpegEncode = (s: Setup, codec: string[], out: string) =>
  ffmpeg([
    "-f",
    "rawvideo",
    "-pix_fmt",
    "rgb24",
    "-s",
    `${W}x${H}`,
    "-framerate",
    "25",
    "-i",
    path.join(s.dir, "raw.rgb"),
    ...codec,
    path.join(s.dir, out),
  ]);

const CASES: Case[] = [
  ["decode ffv1 (GPU unpack)", async (s) => (await readVideo(s.ffv1)).dispose()],
  ["decode ffv1 (CPU convert)", async (s) => {
    (await readVideo(s.ffv1, { convertOn: "cpu" })).dispose();
  }],
  ["decode x264-420 (GPU unpack)", async (s) => (await readVideo(s.x264)).dispose()],
  ["ffmpeg alone: decode ffv1 to rgb24 (null sink)", (s) => ffmpegDecode(s.ffv1)],
  ["ffmpeg alone: decode x264-420 to rgb24 (null sink)", (s) => ffmpegDecode(s.x264)],
  ["unpack only, GPU (upload + kernel)", async (s) => {
    const t = unpackFrames(s.bytes, FRAMES, H, W, "gpu");
    await syncGpu();
    t.dispose();
  }],
  ["unpack only, CPU (convert + upload)", async (s) => {
    const t = unpackFrames(s.bytes, FRAMES, H, W, "cpu");
    await syncGpu();
    t.dispose();
  }],
  ["pack only, GPU (kernel + read back)", (s) => packFrames(s.frames, 0, FRAMES)],
  ["pack only, CPU (read back + quantise)", (s) => packFrames(s.frames, 0, FRAMES, { on: "cpu" })],
  [
    "ffmpeg alone: encode ffv1 from an rgb24 file",
    (s) =>
      ffmpegEncode(
        s,
        ["-c:v", "ffv1", "-level", "3", "-slicecrc", "1", "-pix_fmt", "bgr0"],
        "f.mkv",
      ),
  ],
  [
    "ffmpeg alone: encode x264-420 crf 18 from an rgb24 file",
    (s) => ffmpegEncode(s, ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18"], "f.mp4"),
  ],
  ["encode ffv1", (s) => writeVideo(path.join(s.dir, "o.mkv"), s.frames, { fps: 25 })],
  [
    "encode x264-444 qp 0 (libx264rgb, medium)",
    (s) => writeVideo(path.join(s.dir, "o444.mkv"), s.frames, { codec: "x264-444", fps: 25 }),
  ],
  [
    "encode x264-420 crf 18 (medium)",
    (s) => writeVideo(path.join(s.dir, "o420.mp4"), s.frames, { codec: "x264-420", fps: 25 }),
  ],
];

if (!allowed) {
  console.error(
    "video benches skipped: they need --allow-run and --allow-write (ffmpeg, temp files)",
  );
}

let shared: Promise<Setup> | null = null;
const getSetup = () => shared ??= setup();

for (const [name, fn] of CASES) {
  Deno.bench({
    name: `${name}: ${FRAMES} frames ${H}x${W}`,
    group: /decode|unpack/.test(name) ? "decode" : "encode",
    ignore: !allowed,
    n: 3,
    warmup: 1,
    async fn(b) {
      const s = await getSetup();
      b.start();
      await fn(s);
      b.end();
    },
  });
}

if (import.meta.main) {
  if (!allowed) throw new Error("run with -A (ffmpeg and a temporary folder are needed)");
  const s = await getSetup();
  const rows: string[] = [];
  for (const [name, fn] of CASES) {
    await fn(s); // warm-up (pipelines, pool, ffmpeg's page cache)
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await fn(s);
      times.push(performance.now() - t0);
    }
    const best = Math.min(...times);
    const fps = (FRAMES * 1000) / best;
    rows.push(`| ${name} | ${fps.toFixed(1)} | ${(best / FRAMES).toFixed(2)} |`);
    console.error(rows[rows.length - 1]);
  }
  console.log(`${FRAMES} frames of ${H}x${W} (H x W), best of 3 runs after a warm-up\n`);
  console.log("| step | frames/s | ms/frame |\n| --- | --- | --- |");
  console.log(rows.join("\n"));
}
