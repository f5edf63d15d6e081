/**
 * Decoding: `readVideo` (all frames at once) and `readVideoChunks` (an async iterator over
 * chunks of frames, so memory does not grow with the video's length). ffmpeg decodes to rgb24 on
 * its stdout; exact-size reads (a BYOB reader with `min`) fill whole chunks while stderr is
 * drained at the same time; the bytes become [T,3,H,W] float32 tensors in [0,1] on the GPU.
 *
 * Sources of any pixel format are read as 8-bit RGB, converted by ffmpeg: 10- and 12-bit,
 * 4:2:2 and 4:4:4 sources are accepted (rounded to 8 bits, chroma upsampled; the result is what
 * `ffmpeg -pix_fmt rgb24` gives). A source with an alpha plane is refused unless `alpha: "drop"`
 * (RGB frames cannot keep transparency). A variable frame rate is read frame by frame (every
 * frame once, in order). Strict reads (the default) fail on any decode error, naming the first
 * damaged frame: never fewer frames, nor concealed garbage, without saying so.
 *
 * @module
 */

import { z } from "zod";
import { formatZodError } from "../_zod.ts";
import { bindingLimit } from "../gpu/device.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { type ConvertOn, paddedBytes, unpackFrames } from "./_convert.ts";
import { FFMPEG_BASE, inputArgs, spawnTool, VideoError } from "./_ffmpeg.ts";
import { checkVideoFile } from "./files.ts";
import { probeVideo, type VideoInfo } from "./probe.ts";

/** Options of {@link readVideo}. */
export interface ReadVideoOptions {
  /** Start time in seconds (accurate seek: frames before it are decoded and dropped). */
  start?: number;
  /** At most this many frames. */
  maxFrames?: number;
  /**
   * Output size: scaled with ffmpeg's bicubic scaler. Give both, or one of them to keep the
   * pixel aspect ratio (the other is rounded, at least 1).
   */
  size?: { width?: number; height?: number };
  /** Resample to this frame rate (ffmpeg's `fps` filter: drops or duplicates frames). */
  fps?: number;
  /**
   * Fail when ffmpeg reports any decode error (corrupt or truncated data), even if it exits
   * normally; also when fewer frames arrive than the container header promises. Default true.
   */
  strict?: boolean;
  /** Convert bytes to floats on the GPU (default) or on the CPU. */
  convertOn?: ConvertOn;
  /**
   * A source with an alpha plane (yuva420p, rgba, ...): "error" (default) refuses it, since
   * the frames are RGB and the transparency would be lost; "drop" reads the colour planes as
   * stored and ignores the alpha.
   */
  alpha?: "error" | "drop";
  /**
   * Apply the file's display rotation (default true: frames come upright, as a player shows
   * them). false: frames as stored, e.g. to write them again with `writeVideo`'s `rotation`.
   */
  autorotate?: boolean;
}

/** Options of {@link readVideoChunks}. */
export interface ReadVideoChunksOptions extends ReadVideoOptions {
  /**
   * Frames per chunk (the last chunk may hold fewer; chunks are also kept under the adapter's
   * storage-binding limit). Default 16.
   */
  chunkFrames?: number;
}

/** One chunk from {@link readVideoChunks}. */
export interface VideoChunk {
  /** Frames [T,3,H,W] in [0,1]; the caller owns it (dispose it when done). */
  frames: Tensor;
  /** Index (in the decoded output) of the chunk's first frame. */
  start: number;
}

const SizeSchema = z.object({
  width: z.number().int().positive().optional(),
  height: z.number().int().positive().optional(),
}).strict().refine((s) => s.width !== undefined || s.height !== undefined, {
  message: "give width, height or both",
});

const ReadSchema = z.object({
  start: z.number().finite().nonnegative().default(0),
  maxFrames: z.number().int().positive().optional(),
  size: SizeSchema.optional(),
  fps: z.number().finite().positive().optional(),
  strict: z.boolean().default(true),
  convertOn: z.enum(["gpu", "cpu"]).default("gpu"),
  chunkFrames: z.number().int().positive().default(16),
  alpha: z.enum(["error", "drop"]).default("error"),
  autorotate: z.boolean().default(true),
}).strict();

type ReadOpts = z.infer<typeof ReadSchema>;

function parseOptions(file: string, options: unknown): ReadOpts {
  const r = ReadSchema.safeParse(options);
  if (!r.success) {
    throw new VideoError(file, `bad read options: ${formatZodError(r.error, { root: "options" })}`);
  }
  return r.data;
}

/**
 * The size frames are decoded at: the video's own, or `size` (one side alone keeps the aspect
 * ratio, rounded). Commands use it to check, from the probe, what a clip will need before
 * decoding it.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { decodedSize } from "./read.ts";
 * assert.deepEqual(decodedSize({ width: 1920, height: 1080 }, { width: 320 }), { w: 320, h: 180 });
 * ```
 */
export function decodedSize(
  info: { width: number; height: number },
  size?: { width?: number; height?: number },
): { w: number; h: number } {
  if (!size) return { w: info.width, h: info.height };
  const w = size.width ?? Math.max(1, Math.round(size.height! * info.width / info.height));
  const h = size.height ?? Math.max(1, Math.round(size.width! * info.height / info.width));
  return { w, h };
}

function ffmpegArgs(file: string, opts: ReadOpts, w: number, h: number, info: VideoInfo) {
  const filters: string[] = [];
  if (opts.fps !== undefined) filters.push(`fps=${opts.fps}`);
  if (w !== info.width || h !== info.height) filters.push(`scale=${w}:${h}:flags=bicubic`);
  return [
    ...FFMPEG_BASE,
    ...(opts.start > 0 ? ["-ss", String(opts.start)] : []),
    ...(opts.autorotate ? [] : ["-noautorotate"]),
    ...inputArgs(file),
    "-map",
    "0:v:0",
    "-an",
    "-sn",
    "-dn",
    ...(filters.length ? ["-vf", filters.join(",")] : []),
    // One output frame per decoded frame (no duplicates or drops for variable-rate input);
    // with `fps` the filter has already made the rate constant. `-vsync` (deprecated in 5.1 in
    // favour of `-fps_mode`, which 4.x lacks) works in ffmpeg 4.x to 7.x.
    "-vsync",
    "passthrough",
    // Timestamps in the input's time base: a variable rate gives no collisions in the output.
    "-enc_time_base:v",
    "-1",
    // Strict: stop at the first frame the decoder flags as corrupt (the rest is not wanted).
    ...(opts.strict ? ["-xerror"] : []),
    ...(opts.maxFrames !== undefined ? ["-frames:v", String(opts.maxFrames)] : []),
    "-f",
    "rawvideo",
    "-pix_fmt",
    "rgb24",
    "pipe:1",
  ];
}

/**
 * Finds the frame of the first decode error when the decoder does not say: a second pass, one
 * thread, that stops at the first error (`-err_detect explode -xerror`), printing each demuxed
 * packet's timestamp (`-debug_ts`); the last video packet before the decoder's first error
 * line is the damaged one (a demuxer's error: the packet after it), and its timestamp (from the
 * stream's first) times the rate gives the frame.
 * From the file's start (an error before `start` counts as frame 0). Undefined when no error
 * shows up or no packet came before it.
 */
async function locateDecodeError(
  file: string,
  opts: ReadOpts,
  fps: number,
  codec: string,
): Promise<number | undefined> {
  if (!(fps > 0)) return undefined;
  let first: number | undefined;
  let last: number | undefined;
  let found: number | undefined;
  const proc = spawnTool("ffmpeg", [
    "-nostdin",
    "-hide_banner",
    "-nostats",
    "-loglevel",
    "level+info",
    "-threads",
    "1",
    "-xerror",
    "-err_detect:v",
    "explode",
    "-debug_ts",
    ...inputArgs(file),
    "-map",
    "0:v:0",
    "-f",
    "null",
    "-",
  ], {
    onStderrLine(line) {
      if (found !== undefined) return;
      const pkt =
        /^\[info\] demuxer(?:\+ffmpeg)? -> ist_index:\d+ type:video .*? pkt_pts_time:(-?[\d.]+)/
          .exec(line);
      if (pkt) {
        const t = Number(pkt[1]);
        if (first === undefined || t < first) first = t;
        last = t;
        return;
      }
      const err = /^(?:\[(\S+) @ [^\]]*\] )?\[(?:error|fatal)\]/.exec(line);
      if (!err) return;
      // The decoder's error is about the packet it was given; the demuxer's (a cut or damaged
      // container) about the one it could not read, after the last one it gave.
      const next = err[1] === codec ? 0 : 1;
      const at = last === undefined ? 0 : Math.round((last - first!) * fps) + next;
      found = Math.max(0, at - Math.round(opts.start * fps));
    },
  });
  await proc.child.status;
  await proc.stderr.done;
  return found;
}

/**
 * Decodes a video into chunks of frames on the GPU, [T,3,H,W] float32 in [0,1] (planar RGB),
 * at most `chunkFrames` frames each. Memory stays bounded by one chunk (plus ffmpeg's pipe).
 * Breaking out of the loop stops ffmpeg. Errors name the file and the frame: a decode error
 * found at the end is thrown after the chunks before it were yielded.
 *
 * @example
 * ```ts
 * import { initGpu, readVideoChunks } from "../../mod.ts";
 * await initGpu();
 * for await (const { frames, start } of readVideoChunks("data/samples/astronaut_pan.mkv", { chunkFrames: 8 })) {
 *   console.log(start, frames.shape);
 *   frames.dispose();
 * }
 * ```
 */
export async function* readVideoChunks(
  file: string,
  options: ReadVideoChunksOptions = {},
): AsyncGenerator<VideoChunk, void, undefined> {
  const opts = parseOptions(file, options);
  yield* decodeGeneric(file, opts, opts.chunkFrames, (bytes, n, h, w, start) => ({
    frames: unpackFrames(bytes, n, h, w, opts.convertOn),
    start,
  }));
}

/**
 * The decoding loop: runs ffmpeg, fills chunks of whole frames with exact-size reads and hands
 * each to `sink` (bytes padded per `paddedBytes`; the buffer is reused for the next chunk).
 */
async function* decodeGeneric<T>(
  file: string,
  opts: ReadOpts,
  chunkFrames: number,
  sink: (bytes: Uint8Array, frames: number, h: number, w: number, start: number) => T,
): AsyncGenerator<T, void, undefined> {
  await checkVideoFile(file);
  const probed = await probeVideo(file, { countFrames: false });
  // Without autorotation a quarter turn is not applied: the frames keep the stored size.
  const info = !opts.autorotate && (probed.rotation === 90 || probed.rotation === 270)
    ? { ...probed, width: probed.height, height: probed.width }
    : probed;
  if (info.alpha && opts.alpha === "error") {
    throw new VideoError(
      file,
      `has an alpha (transparency) plane (pixel format ${info.pixelFormat}), which RGB frames ` +
        `cannot keep; convert it first (e.g. \`ffmpeg -i <file> -pix_fmt yuv420p -c:a copy ` +
        `out.mkv\`) or read it with alpha: "drop"`,
    );
  }
  const { w, h } = decodedSize(info, opts.size);
  const frameBytes = w * h * 3;
  const limit = opts.maxFrames ?? Infinity;
  // A chunk becomes one tensor: keep it within the adapter's binding limit.
  const bindable = Math.floor(bindingLimit() / (frameBytes * 4));
  if (bindable < 1) {
    throw new VideoError(
      file,
      `one ${w}x${h} frame as float32 exceeds this adapter's binding limit; read it smaller ` +
        "with the size option",
    );
  }
  const framesPerChunk = Math.max(1, Math.min(chunkFrames, limit, bindable));
  const chunkBytes = framesPerChunk * frameBytes;
  const proc = spawnTool("ffmpeg", ffmpegArgs(file, opts, w, h, info), { stdout: "piped" });
  const reader = proc.child.stdout.getReader({ mode: "byob" });
  let frame = 0;
  let finished = false;
  try {
    let buf = new Uint8Array(paddedBytes(chunkBytes));
    for (;;) {
      const { value, done } = await reader.read(buf.subarray(0, chunkBytes), { min: chunkBytes });
      const got = value?.byteLength ?? 0;
      if (value) buf = new Uint8Array(value.buffer);
      const whole = Math.floor(got / frameBytes);
      if (got % frameBytes !== 0) {
        proc.kill();
        await proc.child.status;
        await proc.stderr.done;
        throw new VideoError(
          file,
          `truncated or corrupt: ffmpeg's output ended ${got % frameBytes} bytes into a ` +
            `frame of ${frameBytes} bytes (${w}x${h} rgb24)`,
          { frame: frame + whole, stderr: proc.stderr.text() },
        );
      }
      if (whole > 0) {
        const item = sink(buf, whole, h, w, frame);
        frame += whole;
        yield item;
      }
      if (done || frame >= limit) break;
    }
    const status = await proc.child.status;
    await proc.stderr.done;
    finished = true;
    const stderr = proc.stderr.text();
    if (!status.success && !opts.strict) {
      throw new VideoError(
        file,
        `ffmpeg failed (exit ${status.code}) while decoding: not a readable video, or corrupt`,
        { frame, stderr },
      );
    }
    if (!status.success || (opts.strict && stderr)) {
      // Strict: ffmpeg stops at the first frame the decoder flags as corrupt (-xerror); other
      // decode errors are only printed. Decoders sometimes say where ("... at 0.080000
      // seconds"): that frame; else a second pass finds the damaged packet's frame; else the
      // frame after the last one decoded.
      const at = /at (\d+(?:\.\d+)?) seconds/.exec(stderr);
      const fps = opts.fps ?? info.fps;
      const near = at && fps > 0
        ? Math.max(0, Math.round((Number(at[1]) - opts.start) * fps))
        : await locateDecodeError(file, opts, fps, info.codec) ?? frame;
      const what = status.success
        ? "ffmpeg reported decode errors"
        : `ffmpeg stopped (exit ${status.code}) at a decode error`;
      throw new VideoError(
        file,
        `corrupt or truncated: ${what} (${frame} frames decoded; pass strict: false to ` +
          "accept what decodes)",
        { frame: near, stderr },
      );
    }
    if (frame === 0) {
      const why = opts.start > 0
        ? ` (start ${opts.start} s; duration ${info.duration ?? "unknown"} s)`
        : "";
      throw new VideoError(file, `no frames decoded: the video has zero frames${why}`, { stderr });
    }
    const unlimited = opts.start === 0 && opts.fps === undefined && opts.maxFrames === undefined;
    if (
      opts.strict && unlimited && info.frameCountSource === "header" &&
      info.frameCount !== null && frame < info.frameCount
    ) {
      throw new VideoError(
        file,
        `truncated: ${frame} frames decoded, the container header says ${info.frameCount}`,
        { frame, stderr },
      );
    }
  } finally {
    if (!finished) {
      proc.kill();
      try {
        await reader.cancel();
      } catch { /* already closed */ }
      await proc.child.status;
      await proc.stderr.done;
    } else {
      reader.releaseLock();
    }
  }
}

/**
 * Decodes a video (or part of it) into one tensor [T,3,H,W] of float32 values in [0,1] on the
 * GPU (planar RGB, values `q / 255` of the 8-bit samples). For long videos use
 * {@link readVideoChunks}.
 *
 * @example
 * ```ts
 * import { initGpu, readVideo } from "../../mod.ts";
 * await initGpu();
 * const frames = await readVideo("data/samples/astronaut_pan.mkv", { maxFrames: 8, size: { width: 64 } });
 * console.log(frames.shape); // [8, 3, H, 64]
 * ```
 */
export async function readVideo(file: string, options: ReadVideoOptions = {}): Promise<Tensor> {
  const opts = parseOptions(file, options);
  // Bytes are gathered on the CPU and uploaded once (one tensor, one kernel).
  const parts: Uint8Array[] = [];
  let frames = 0;
  let h = 0;
  let w = 0;
  const chunks = decodeGeneric(file, opts, 8, (b, n, ch, cw) => ({
    bytes: b.slice(0, n * ch * cw * 3),
    frames: n,
    h: ch,
    w: cw,
  }));
  const limit = bindingLimit();
  for await (const chunk of chunks) {
    parts.push(chunk.bytes);
    frames += chunk.frames;
    h = chunk.h;
    w = chunk.w;
    if (frames * 3 * h * w * 4 > limit) {
      const fit = Math.floor(limit / (3 * h * w * 4));
      await chunks.return(); // stops ffmpeg
      throw new VideoError(
        file,
        `more than ${fit} frames of ${w}x${h}: one tensor would exceed this adapter's ` +
          `${(limit / 2 ** 20).toFixed(0)} MiB binding limit; use readVideoChunks, maxFrames ` +
          "or a smaller size",
        { frame: fit },
      );
    }
  }
  const total = frames * h * w * 3;
  const all = new Uint8Array(paddedBytes(total));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.byteLength;
  }
  return unpackFrames(all, frames, h, w, opts.convertOn);
}
