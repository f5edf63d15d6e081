/**
 * `deno task jnd`: JND maps of a video, as a heat-map video, PNGs of the first, middle and last
 * frame, and per-frame statistics (mean, 5th and 95th percentile, in 8-bit levels) printed and
 * written to `stats.csv`.
 *
 * ```
 * deno task jnd --input clip.mp4 --out out/jnd [--model namm-st] [--frames 64] [--size 640]
 *   [--max-levels 32]
 * ```
 *
 * The input is checked before anything runs (a regular, non-empty file: a FIFO, device or folder
 * is refused by name), and so is the output folder (`--out` that is a file is refused); every file
 * is written inside it. A frame too large for one GPU storage binding is refused from the probe,
 * before anything is decoded, naming the way out (`--size`).
 *
 * The video is decoded in batches (`--batch` frames); for `namm-st` each batch gets the last frame
 * of the one before as `previous`, so the temporal factor is continuous across batches.
 *
 * @module
 */

import { parseCommand } from "./_args.ts";
import { z } from "zod";
import { PathError, writeFileAtomic } from "../_fs.ts";
import { insideOutput, prepareOutputDir } from "../_output.ts";
import { integerArg, numberArg } from "../_zod.ts";
import { copyBuffer } from "../gpu/queue.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";
import { bindingLimit, getGpu, initGpu } from "../gpu/device.ts";
import {
  checkVideoFile,
  FfmpegNotFoundError,
  probeVideo,
  readVideoChunks,
  VideoError,
  writeFramePng,
  writeVideo,
} from "../video/mod.ts";
import { computeJnd, jndHeatmap } from "../jnd/mod.ts";
import { type JndFrameStats, mapStats, planJndFrames } from "../jnd/stats.ts";
import { DEFAULT_VIDEO_JND_MODEL, JND_MODELS } from "../jnd/models.ts";

const USAGE = `Usage: deno task jnd --input <video> --out <dir> [options]

Computes JND maps on the GPU and writes <dir>/jnd_heatmap.mkv (lossless ffv1), jnd_first.png,
jnd_middle.png, jnd_last.png and stats.csv; prints mean, p5 and p95 (8-bit levels) per frame.

Options:
  -i, --input <video>    video to read (anything ffmpeg decodes)
  -o, --out <dir>        output folder (created if missing)
  --model <name>         ${JND_MODELS.join(" | ")} (default ${DEFAULT_VIDEO_JND_MODEL})
  --frames <n>           at most n frames (default: all)
  --size <n>             scale frames so that the longer side is n pixels, aspect kept
                         (default: as decoded; frames too large for the GPU are refused)
  --batch <n>            frames per GPU batch (default 8, fewer when frames are large: a batch
                         must fit one storage binding)
  --max-levels <v>       JND shown at the top of the colour ramp, in levels (default 32)
  --edge-low <v>         weak-edge threshold, L1 Sobel magnitude (default 50)
  --edge-high <v>        strong-edge threshold (default 150)
  -q, --quiet            do not print the per-frame table
  -h, --help             this text
`;

const ArgsSchema = z.object({
  input: z.string({ required_error: "required" }).min(1),
  out: z.string({ required_error: "required" }).min(1),
  model: z.enum(JND_MODELS).default(DEFAULT_VIDEO_JND_MODEL),
  frames: integerArg().pipe(z.number().positive()).optional(),
  size: integerArg().pipe(z.number().int().min(2).max(16384)).optional(),
  batch: integerArg().pipe(z.number().positive().max(256)).default("8"),
  "max-levels": numberArg().pipe(z.number().positive()).default("32"),
  "edge-low": numberArg().pipe(z.number().nonnegative()).default("50"),
  "edge-high": numberArg().pipe(z.number().nonnegative()).default("150"),
  quiet: z.boolean().default(false),
}).refine((a) => a["edge-high"] >= a["edge-low"], {
  message: "--edge-high must be at least --edge-low",
});

/** Copies frame `index` of `[T, C, H, W]` into a new `[1, C, H, W]` tensor. */
function frameCopy(frames: Tensor, index: number): Tensor {
  const [, c, h, w] = frames.shape;
  const out = empty([1, c, h, w]);
  const bytes = c * h * w * 4;
  copyBuffer(frames.buffer, out.buffer, bytes, index * bytes, 0);
  return out;
}

/**
 * Runs `deno task jnd` with its arguments (after the command name); returns the exit code
 * (0 success, 1 failure, 2 bad usage). A missing WebGPU adapter throws `NoAdapterError`. Every
 * failure of the input, the output folder or ffmpeg is one line on stderr (exit 1).
 *
 * @example
 * ```ts
 * import { jndCommand } from "./jnd.ts";
 * const code = await jndCommand(["--input", "clip.mp4", "--out", "out/jnd", "--frames", "16"]);
 * ```
 */
export async function jndCommand(args: string[]): Promise<number> {
  const parsed = parseCommand(args, {
    usage: USAGE,
    schema: ArgsSchema,
    flags: {
      input: { type: "string", short: "i" },
      out: { type: "string", short: "o" },
      model: { type: "string" },
      frames: { type: "string" },
      size: { type: "string" },
      batch: { type: "string" },
      "max-levels": { type: "string" },
      "edge-low": { type: "string" },
      "edge-high": { type: "string" },
      quiet: { type: "boolean", short: "q" },
    },
  });
  if (!parsed.ok) return parsed.code;
  const o = parsed.values;
  try {
    return await run(o);
  } catch (e) {
    if (e instanceof VideoError || e instanceof FfmpegNotFoundError || e instanceof PathError) {
      console.error(e.message);
      return 1;
    }
    throw e;
  }
}

/** The files the command writes, by their name in the output folder. */
const OUTPUTS = {
  video: "jnd_heatmap.mkv",
  first: "jnd_first.png",
  middle: "jnd_middle.png",
  last: "jnd_last.png",
  stats: "stats.csv",
} as const;

async function run(o: z.infer<typeof ArgsSchema>): Promise<number> {
  // Before any work: the input is a regular video file, the output folder is usable, and no
  // output would land outside it or on the input.
  await checkVideoFile(o.input);
  const root = await prepareOutputDir(o.out, { option: "--out" });
  const paths: Record<keyof typeof OUTPUTS, string> = { ...OUTPUTS };
  for (const [key, name] of Object.entries(OUTPUTS)) {
    paths[key as keyof typeof OUTPUTS] = await insideOutput(root, name);
  }
  const realInput = await Deno.realPath(o.input);
  for (const p of Object.values(paths)) {
    if (await Deno.realPath(p).then((r) => r === realInput, () => false)) {
      throw new PathError(
        o.input,
        `${o.input}: the input is also an output of this command (${p}); choose another --out`,
      );
    }
  }
  await initGpu();
  const info = await probeVideo(o.input);
  const expected = info.frameCount === null
    ? o.frames ?? null
    : Math.min(info.frameCount, o.frames ?? Infinity);
  const middle = expected === null ? null : Math.floor((expected - 1) / 2);
  const limits = getGpu().limits;
  const plan = planJndFrames(o.input, info, {
    batch: o.batch,
    size: o.size,
    limit: Math.min(bindingLimit(), limits.maxBufferSize),
  });
  const batch = plan.batch;
  if (batch < o.batch) {
    console.error(`note: batches of ${batch} frames (the GPU's binding limit at this size)`);
  }
  const videoPath = paths.video;
  const stats: JndFrameStats[] = [];
  const keep: { first?: Tensor; middle?: Tensor; last?: Tensor } = {};
  let previous: Tensor | undefined;
  let seconds = 0;
  if (!o.quiet) {
    console.log(
      `${o.input}: ${info.width}x${info.height}` +
        `${plan.scale ? ` (scaled to ${plan.width}x${plan.height})` : ""}, ` +
        `${info.fps.toFixed(3)} fps, ${expected ?? "unknown number of"} frames; model ${o.model}`,
    );
    console.log("frame      mean        p5       p95   (levels)");
  }

  async function* heatFrames(): AsyncGenerator<Tensor> {
    for await (
      const { frames, start } of readVideoChunks(o.input, {
        maxFrames: o.frames,
        chunkFrames: batch,
        ...(plan.scale ? { size: plan.scale } : {}),
      })
    ) {
      const t0 = performance.now();
      const jnd = computeJnd(frames, {
        model: o.model,
        previous,
        edgeLow: o["edge-low"],
        edgeHigh: o["edge-high"],
      });
      const values = await jnd.read(); // waits for the GPU
      seconds += (performance.now() - t0) / 1000;
      const t = frames.shape[0];
      previous?.dispose();
      previous = frameCopy(frames, t - 1);
      frames.dispose();
      const n = values.length / t;
      for (let k = 0; k < t; k++) {
        const levels = values.subarray(k * n, (k + 1) * n).map((v) => v * 255);
        const s = mapStats(levels, start + k);
        stats.push(s);
        if (!o.quiet) {
          console.log(
            `${String(s.frame).padStart(5)} ${s.mean.toFixed(4).padStart(9)} ` +
              `${s.p5.toFixed(4).padStart(9)} ${s.p95.toFixed(4).padStart(9)}`,
          );
        }
      }
      const heat = jndHeatmap(jnd, { maxLevels: o["max-levels"] });
      jnd.dispose();
      if (start === 0) keep.first = frameCopy(heat, 0);
      if (middle !== null && middle >= start && middle < start + t) {
        keep.middle = frameCopy(heat, middle - start);
      }
      keep.last?.dispose();
      keep.last = frameCopy(heat, t - 1);
      yield heat; // disposed by writeVideo (disposeInput)
    }
  }

  try {
    const result = await writeVideo(videoPath, heatFrames(), {
      fps: info.fps || 25,
      codec: "ffv1",
      disposeInput: true,
    });
    if (result.frames === 0) {
      console.error(`${o.input}: no frames decoded`);
      return 1;
    }
    for (const [name, t] of Object.entries(keep)) {
      if (t) await writeFramePng(paths[name as "first" | "middle" | "last"], t);
    }
    if (!keep.middle) console.error("warning: frame count unknown; jnd_middle.png not written");
    const csv = ["frame,mean,p5,p95", ...stats.map((s) => `${s.frame},${s.mean},${s.p5},${s.p95}`)];
    await writeFileAtomic(paths.stats, csv.join("\n") + "\n");
    const all = stats.reduce((a, s) => a + s.mean, 0) / stats.length;
    console.log(
      `${result.frames} frames; mean JND ${all.toFixed(3)} levels; JND ` +
        `${(result.frames / Math.max(seconds, 1e-9)).toFixed(2)} frames/s (GPU, with pipeline ` +
        `compilation and read-back); ` +
        `wrote ${OUTPUTS.video}, jnd_{first,middle,last}.png, stats.csv in ${root}`,
    );
    return 0;
  } finally {
    previous?.dispose();
    for (const t of Object.values(keep)) t?.dispose();
  }
}
