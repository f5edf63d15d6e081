/**
 * Encoding: `writeVideo` (a tensor of frames, or an iterable of chunks, to a video file) and
 * `writeFramePng` (one frame to a PNG).
 *
 * Frames are quantised to 8 bits on the GPU with round-half-to-even (`round(v * 255)`, clamped
 * to [0, 255], NaN -> 0), read back packed, and written to ffmpeg's stdin with backpressure
 * (each write is awaited before the next chunk's bytes are sent) while stderr is drained.
 * ffmpeg writes a temporary dot-file in the target folder, which is renamed onto the target only
 * when the encode has succeeded: a failed, aborted or interrupted write leaves no partial file.
 * While a temporary file exists, SIGINT and SIGTERM listeners are installed that kill ffmpeg,
 * remove the temporary files and exit with code 130 (what the signal would have done, minus the
 * debris); they are removed when no write is in progress.
 *
 * Codecs:
 * - `ffv1`: lossless 8-bit RGB (bgr0) in .mkv (or .nut, .avi). The default: the right
 *   container for adversarial output, since what is measured is exactly what is written.
 * - `x264-444`: H.264 without chroma subsampling; RGB through libx264rgb (default) or yuv444p
 *   (`rgb: false`); qp 0 is lossless (the default), or give `crf` / `qp`. .mkv, .mp4, .mov.
 * - `x264-420`: H.264 yuv420p, what a user uploads; lossy (crf 18 by default). Needs even
 *   width and height: odd sizes are refused unless `oddSize: "pad"`, which replicates the last
 *   column/row. .mp4 (faststart), .mkv, .mov.
 *
 * YUV output uses ffmpeg's default BT.601 limited-range conversion and is tagged so (smpte170m),
 * which is also what ffmpeg assumes when decoding it again.
 *
 * @module
 */

import * as path from "path";
import { z } from "zod";
import { formatZodError } from "../_zod.ts";
import { Tensor } from "../tensor/tensor.ts";
import { type ConvertOn, packFrames } from "./_convert.ts";
import type { Rgb24Frames } from "./rgb24.ts";
import {
  checkOutputDir,
  commitTemp,
  discardTemp,
  FFMPEG_BASE,
  fileArg,
  runTool,
  type Spawned,
  spawnTool,
  tempPathFor,
  VideoError,
} from "./_ffmpeg.ts";

/** The codecs {@link writeVideo} writes. */
export type VideoCodec = "ffv1" | "x264-444" | "x264-420";

/** Options of {@link writeVideo}. */
export interface WriteVideoOptions {
  /**
   * Frames per second. Default 25. The output has this one constant rate: a variable-rate
   * source (`probeVideo`'s `variableFrameRate`) is written at its average rate (`fps`), with the
   * same frames, so a report should state "variable frame rate written as constant <fps>".
   */
  fps?: number;
  /** Codec. Default "ffv1" (lossless RGB, .mkv). */
  codec?: VideoCodec;
  /** x264 constant rate factor (0-51); x264-420 defaults to 18. Not with `qp`. */
  crf?: number;
  /** x264 constant quantiser (0-81 for 8-bit; 0 is lossless); x264-444 defaults to 0. */
  qp?: number;
  /** x264 preset. Default "medium". */
  preset?:
    | "ultrafast"
    | "superfast"
    | "veryfast"
    | "faster"
    | "fast"
    | "medium"
    | "slow"
    | "slower"
    | "veryslow";
  /** x264-444 only: RGB through libx264rgb (default true) or yuv444p (false). */
  rgb?: boolean;
  /**
   * x264-420 only, for odd widths or heights: "error" (default) refuses; "pad" replicates the
   * last column and/or row, so the file is one pixel wider and/or taller.
   */
  oddSize?: "error" | "pad";
  /** Dispose each input chunk once it has been read (for generators of chunks). Default false. */
  disposeInput?: boolean;
  /** Frames packed and sent per step when `frames` is one tensor. Default 8. */
  chunkFrames?: number;
  /** Quantise on the GPU (default) or on the CPU. */
  convertOn?: ConvertOn;
  /** Aborts the write (ffmpeg is stopped and nothing is left behind). */
  signal?: AbortSignal;
  /**
   * Copy the audio streams of this file into the output bit for bit (no re-encoding; a file
   * without audio adds none). `seconds` keeps only the first seconds of it (for a video cut to
   * its first frames; stream copy cuts at packet boundaries).
   */
  audio?: { from: string; seconds?: number };
  /**
   * Colour tags to write, in ffmpeg's names, e.g. a probe's `colour` (`probeVideo`), so that the
   * output keeps the input's. `primaries` and `transfer` describe the RGB values (decoding does
   * not change them) and are written with every codec. `space` (the YUV matrix) and `range`
   * apply to YUV output (x264-420, x264-444 with `rgb: false`): the frames are converted with
   * that matrix and range and tagged so (instead of BT.601 limited range); RGB output (ffv1,
   * libx264rgb) has neither, so there they are not written. Null or absent fields are left
   * unspecified (YUV output: BT.601 limited range).
   */
  colour?: {
    primaries?: string | null;
    transfer?: string | null;
    space?: string | null;
    range?: string | null;
  };
  /**
   * A display rotation to tag the video with (degrees, as `probeVideo` reports it: 0, 90, 180,
   * 270). The frames are stored as given and players turn them on display, so give frames as
   * stored (`readVideo` with `autorotate: false`), not upright ones. Only .mp4 and .mov hold
   * it (a display matrix); elsewhere a rotation other than 0 is refused, and upright frames
   * with no tag show the same picture.
   */
  rotation?: number;
}

/** What {@link writeVideo} wrote. */
export interface WriteVideoResult {
  /** The output file. */
  path: string;
  /** Frames written. */
  frames: number;
  /** Width of the written video (one more than the frames' when padded). */
  width: number;
  /** Height of the written video (one more than the frames' when padded). */
  height: number;
  /** Whether an odd size was padded for 4:2:0. */
  padded: boolean;
  /** The codec used. */
  codec: VideoCodec;
  /**
   * Frames per second. A video is written at one constant rate: for a source with a variable
   * rate pass its average (`probeVideo`'s `fps`), and report that the timing was made constant.
   */
  fps: number;
  /** The display rotation tagged (0: none). */
  rotation: number;
  /** The colour tags written (null: none). */
  colour: {
    primaries: string | null;
    transfer: string | null;
    space: string | null;
    range: string | null;
  };
}

/** ffmpeg's names of colour primaries (`-color_primaries`). */
const PRIMARIES = [
  "bt709",
  "bt470m",
  "bt470bg",
  "smpte170m",
  "smpte240m",
  "film",
  "bt2020",
  "smpte428",
  "smpte431",
  "smpte432",
  "jedec-p22",
  "ebu3213",
] as const;

/** ffmpeg's names of transfer characteristics (`-color_trc`). */
const TRANSFERS = [
  "bt709",
  "gamma22",
  "gamma28",
  "smpte170m",
  "smpte240m",
  "linear",
  "log100",
  "log316",
  "iec61966-2-4",
  "bt1361e",
  "iec61966-2-1",
  "bt2020-10",
  "bt2020-12",
  "smpte2084",
  "smpte428",
  "arib-std-b67",
] as const;

/** YUV matrices (`-colorspace`) that ffmpeg's scaler converts to, with its name for each. */
const MATRICES: Record<string, string> = {
  bt709: "bt709",
  fcc: "fcc",
  bt470bg: "bt470",
  smpte170m: "smpte170m",
  smpte240m: "smpte240m",
  bt2020nc: "bt2020",
};

/**
 * The part of a source's colour tags (as `probeVideo` reports them) that `writeVideo` can write
 * for `codec`: known primaries and transfer always; the matrix and range only for a YUV output
 * (`x264-420`, or `x264-444` with `rgb: false`) and only when they are a matrix the scaler
 * converts to. Unknown or unset tags are left out, so keeping a source's tags never fails a
 * write.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { writableColour } from "./write.ts";
 * const tags = { primaries: "bt709", transfer: "bt709", space: "gbr", range: "pc" };
 * assert.deepEqual(writableColour(tags, "ffv1"), { primaries: "bt709", transfer: "bt709" });
 * assert.deepEqual(writableColour({ ...tags, space: "bt709" }, "x264-420"), {
 *   primaries: "bt709",
 *   transfer: "bt709",
 *   space: "bt709",
 *   range: "pc",
 * });
 * ```
 */
export function writableColour(
  colour: {
    primaries: string | null;
    transfer: string | null;
    space: string | null;
    range: string | null;
  },
  codec: VideoCodec,
  options: { rgb?: boolean } = {},
): { primaries?: string; transfer?: string; space?: string; range?: string } {
  const out: { primaries?: string; transfer?: string; space?: string; range?: string } = {};
  if (colour.primaries && (PRIMARIES as readonly string[]).includes(colour.primaries)) {
    out.primaries = colour.primaries;
  }
  if (colour.transfer && (TRANSFERS as readonly string[]).includes(colour.transfer)) {
    out.transfer = colour.transfer;
  }
  const yuv = codec === "x264-420" || (codec === "x264-444" && options.rgb === false);
  if (yuv && colour.space && colour.space in MATRICES) {
    out.space = colour.space;
    if (colour.range === "tv" || colour.range === "pc") out.range = colour.range;
  }
  return out;
}

const WriteSchema = z.object({
  fps: z.number().finite().positive().default(25),
  codec: z.enum(["ffv1", "x264-444", "x264-420"]).default("ffv1"),
  crf: z.number().min(0).max(51).optional(),
  qp: z.number().int().min(0).max(81).optional(),
  preset: z.enum([
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
  ]).default("medium"),
  rgb: z.boolean().default(true),
  oddSize: z.enum(["error", "pad"]).default("error"),
  disposeInput: z.boolean().default(false),
  chunkFrames: z.number().int().positive().default(8),
  convertOn: z.enum(["gpu", "cpu"]).default("gpu"),
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, "an AbortSignal").optional(),
  audio: z.object({
    from: z.string().min(1),
    seconds: z.number().finite().positive().optional(),
  }).strict().optional(),
  colour: z.object({
    primaries: z.enum(PRIMARIES).nullable().optional(),
    transfer: z.enum(TRANSFERS).nullable().optional(),
    space: z.enum(Object.keys(MATRICES) as [string, ...string[]]).nullable().optional(),
    range: z.enum(["tv", "pc"]).nullable().optional(),
  }).strict().optional(),
  rotation: z.union([z.literal(0), z.literal(90), z.literal(180), z.literal(270)]).default(0),
}).strict().refine((o) => o.crf === undefined || o.qp === undefined, {
  message: "give crf or qp, not both",
}).refine((o) => o.codec !== "ffv1" || (o.crf === undefined && o.qp === undefined), {
  message: "ffv1 is lossless: crf and qp do not apply",
});

type WriteOpts = z.infer<typeof WriteSchema>;

const MUXERS: Record<string, { muxer: string; codecs: VideoCodec[] }> = {
  ".mkv": { muxer: "matroska", codecs: ["ffv1", "x264-444", "x264-420"] },
  ".nut": { muxer: "nut", codecs: ["ffv1", "x264-444", "x264-420"] },
  ".avi": { muxer: "avi", codecs: ["ffv1"] },
  ".mp4": { muxer: "mp4", codecs: ["x264-444", "x264-420"] },
  ".mov": { muxer: "mov", codecs: ["x264-444", "x264-420"] },
};

function muxerFor(file: string, codec: VideoCodec): string {
  const ext = path.extname(file).toLowerCase();
  const m = MUXERS[ext];
  if (!m) {
    throw new VideoError(
      file,
      `unknown output extension ${JSON.stringify(ext)}; use one of ${
        Object.keys(MUXERS).join(", ")
      }`,
    );
  }
  if (!m.codecs.includes(codec)) {
    const ok = Object.entries(MUXERS).filter(([, v]) => v.codecs.includes(codec)).map(([k]) => k);
    throw new VideoError(file, `${codec} cannot be written to ${ext}; use ${ok.join(", ")}`);
  }
  return m.muxer;
}

const BT601_TAGS = [
  "-colorspace",
  "smpte170m",
  "-color_primaries",
  "smpte170m",
  "-color_trc",
  "smpte170m",
  "-color_range",
  "tv",
];

/**
 * The second input and the mapping that copy a file's audio streams as they are (`-c:a copy`,
 * each stream optional so that a file without audio adds none), or no audio at all.
 */
function audioArgs(audio: WriteOpts["audio"]): string[] {
  if (!audio) return ["-map", "0:v:0", "-an"];
  return [
    ...(audio.seconds !== undefined ? ["-t", String(audio.seconds)] : []),
    "-i",
    fileArg(audio.from),
    "-map",
    "0:v:0",
    "-map",
    "1:a?",
    "-c:a",
    "copy",
  ];
}

/** Whether a codec's output is YUV (and so has a matrix and a range). */
function isYuv(o: WriteOpts): boolean {
  return o.codec === "x264-420" || (o.codec === "x264-444" && !o.rgb);
}

/** The colour tags that {@link writeVideo} writes for `o`. */
function colourOf(o: WriteOpts): WriteVideoResult["colour"] {
  const c = o.colour ?? {};
  const yuv = isYuv(o);
  return {
    primaries: c.primaries ?? (yuv && o.colour === undefined ? "smpte170m" : null),
    transfer: c.transfer ?? (yuv && o.colour === undefined ? "smpte170m" : null),
    space: yuv ? c.space ?? "smpte170m" : null,
    range: yuv ? c.range ?? "tv" : null,
  };
}

/**
 * The arguments that tag (and, for YUV output, convert to) the asked colour; none without
 * `colour` (the default output is unchanged).
 */
function colourArgs(o: WriteOpts): string[] {
  if (!o.colour) return [];
  const c = colourOf(o);
  const yuv = isYuv(o);
  return [
    ...(c.primaries ? ["-color_primaries", c.primaries] : []),
    ...(c.transfer ? ["-color_trc", c.transfer] : []),
    ...(yuv
      ? [
        "-vf",
        `scale=out_color_matrix=${MATRICES[c.space!]}:out_range=${c.range}`,
        "-colorspace",
        c.space!,
        "-color_range",
        c.range!,
      ]
      : []),
  ];
}

function codecArgs(o: WriteOpts, muxer: string, w: number, h: number): string[] {
  const rate = (defaults: string[]) =>
    o.qp !== undefined
      ? ["-qp", String(o.qp)]
      : o.crf !== undefined
      ? ["-crf", String(o.crf)]
      : defaults;
  const faststart = muxer === "mp4" || muxer === "mov" ? ["-movflags", "+faststart"] : [];
  switch (o.codec) {
    case "ffv1":
      // Level 3 (slices with CRCs, so corruption is detected) silently writes wrong pixels in
      // ffmpeg 5.1 when a side is below 3 pixels (checked: 1xN, 2xN, Nx1, Nx2 all fail, every
      // size from 3x3 up that was tried is exact); such frames use level 1.
      return [
        "-c:v",
        "ffv1",
        ...(Math.min(w, h) >= 3 ? ["-level", "3", "-slicecrc", "1"] : ["-level", "1"]),
        "-g",
        "1",
        "-pix_fmt",
        "bgr0",
      ];
    case "x264-444":
      return [
        ...(o.rgb
          ? ["-c:v", "libx264rgb", "-pix_fmt", "rgb24"]
          : ["-c:v", "libx264", "-pix_fmt", "yuv444p", ...(o.colour ? [] : BT601_TAGS)]),
        "-preset",
        o.preset,
        ...rate(["-qp", "0"]),
        ...faststart,
      ];
    case "x264-420":
      return [
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        ...(o.colour ? [] : BT601_TAGS),
        "-preset",
        o.preset,
        ...rate(["-crf", "18"]),
        ...faststart,
      ];
  }
}

/** A run of frames of one tensor to pack and send. */
interface Piece {
  /** The frames as a tensor (packed on the GPU), or null for bytes given packed. */
  tensor: Tensor | null;
  /** The tensor as given (before a [3,H,W] -> [1,3,H,W] view). */
  source: Tensor | null;
  /** Bytes given packed (`Rgb24Frames`), sent as they are (padded when asked). */
  packed: Rgb24Frames | null;
  h: number;
  w: number;
  t0: number;
  count: number;
  /** Last piece of its tensor (dispose after packing when asked). */
  last: boolean;
}

function isRgb24(x: unknown): x is Rgb24Frames {
  const r = x as Rgb24Frames;
  return typeof x === "object" && x !== null && r.rgb24 instanceof Uint8Array &&
    Number.isInteger(r.frames) && Number.isInteger(r.height) && Number.isInteger(r.width);
}

/** Packed rgb24 frames of h x w padded to h2 x w2 by replicating the last column and row. */
function padRgb24(c: Rgb24Frames, h2: number, w2: number): Uint8Array {
  const { rgb24, frames, height: h, width: w } = c;
  if (h2 === h && w2 === w) return rgb24;
  const out = new Uint8Array(frames * h2 * w2 * 3);
  let o = 0;
  for (let t = 0; t < frames; t++) {
    for (let y = 0; y < h2; y++) {
      const row = (t * h + Math.min(y, h - 1)) * w * 3;
      out.set(rgb24.subarray(row, row + w * 3), o);
      o += w * 3;
      for (let x = w; x < w2; x++, o += 3) {
        out.set(rgb24.subarray(row + (w - 1) * 3, row + w * 3), o);
      }
    }
  }
  return out;
}

function framesOf(t: Tensor, file: string, at: number): Tensor {
  if (t.disposed) throw new VideoError(file, `frames tensor ${t} was disposed`, { frame: at });
  if (t.rank === 3 && t.shape[0] === 3) return t.reshape([1, ...t.shape]);
  if (t.rank !== 4 || t.shape[1] !== 3) {
    throw new VideoError(
      file,
      `frames must be [T,3,H,W] (or [3,H,W]), got [${t.shape.join(",")}]`,
      { frame: at },
    );
  }
  return t;
}

async function* piecesOf(
  frames: WriteVideoFrames,
  file: string,
  chunkFrames: number,
): AsyncGenerator<Piece> {
  const sources: Iterable<Tensor | Rgb24Frames> | AsyncIterable<Tensor | Rgb24Frames> =
    frames instanceof Tensor ? [frames] : frames;
  let at = 0;
  for await (const src of sources) {
    if (isRgb24(src)) {
      const { frames: T, height: h, width: w } = src;
      if (src.rgb24.length !== T * h * w * 3 || T < 0 || h < 1 || w < 1) {
        throw new VideoError(
          file,
          `a packed rgb24 chunk of ${src.rgb24.length} bytes is not ${T} frames of ${w}x${h}`,
          { frame: at },
        );
      }
      if (T === 0) continue;
      yield { tensor: null, source: null, packed: src, h, w, t0: 0, count: T, last: true };
      at += T;
      continue;
    }
    if (!(src instanceof Tensor)) {
      throw new VideoError(
        file,
        "frames must be tensors or packed rgb24 chunks (or an iterable of them)",
        { frame: at },
      );
    }
    const t = framesOf(src, file, at);
    const [T, , h, w] = t.shape;
    if (T === 0) continue;
    try {
      const step = frames instanceof Tensor ? chunkFrames : T;
      for (let t0 = 0; t0 < T; t0 += step) {
        const count = Math.min(step, T - t0);
        yield { tensor: t, source: src, packed: null, h, w, t0, count, last: t0 + count >= T };
      }
    } finally {
      // The [1,3,H,W] view of a [3,H,W] input, also when the consumer stops early.
      if (t !== src) t.dispose();
    }
    at += T;
  }
}

/**
 * What {@link writeVideo} takes: one tensor `[T,3,H,W]` (or `[3,H,W]`) in [0,1], or an iterable
 * or async iterable of chunks, each a tensor or frames already packed as rgb24 bytes
 * (`Rgb24Frames`, sent as they are).
 */
export type WriteVideoFrames =
  | Tensor
  | Iterable<Tensor | Rgb24Frames>
  | AsyncIterable<Tensor | Rgb24Frames>;

/**
 * Encodes frames to a video file. `frames` is one tensor [T,3,H,W] (or [3,H,W]) in [0,1], or an
 * iterable / async iterable of chunks (all of one size), so that a long video is written
 * without holding it whole: tensors, or frames already quantised and packed as rgb24 bytes
 * (`Rgb24Frames` from `rgb24Frames`, sent as they are: no GPU pack, no read-back). Output goes to a temporary file in the target folder, renamed
 * when complete. Errors name the file and the frame.
 *
 * @example
 * ```ts
 * import { initGpu, readVideo, writeVideo } from "../../mod.ts";
 * await initGpu();
 * const frames = await readVideo("data/samples/astronaut_pan.mkv", { maxFrames: 8 });
 * const dir = await Deno.makeTempDir();
 * await writeVideo(`${dir}/out.mkv`, frames, { fps: 25 }); // ffv1, lossless
 * await writeVideo(`${dir}/upload.mp4`, frames, { codec: "x264-420", crf: 18, oddSize: "pad" });
 * ```
 */
export async function writeVideo(
  file: string,
  frames: WriteVideoFrames,
  options: WriteVideoOptions = {},
): Promise<WriteVideoResult> {
  const parsed = WriteSchema.safeParse(options);
  if (!parsed.success) {
    const issues = formatZodError(parsed.error, { root: "options" });
    throw new VideoError(file, `bad write options: ${issues}`);
  }
  const o = parsed.data;
  const muxer = muxerFor(file, o.codec);
  if (o.rotation !== 0 && muxer !== "mp4" && muxer !== "mov") {
    throw new VideoError(
      file,
      `rotation ${o.rotation}: ${path.extname(file)} cannot hold a display rotation here; ` +
        "write .mp4 or .mov, or give upright frames without a rotation",
    );
  }
  await checkOutputDir(file);
  o.signal?.throwIfAborted();

  let proc: Spawned | null = null;
  let writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  let tmp: string | null = null;
  let written = 0;
  let size: { h: number; w: number; h2: number; w2: number } | null = null;
  let pending: Promise<void> | null = null;
  const onAbort = () => proc?.kill();
  o.signal?.addEventListener("abort", onAbort);
  try {
    for await (const piece of piecesOf(frames, file, o.chunkFrames)) {
      const { h, w } = piece;
      if (!size) {
        let h2 = h;
        let w2 = w;
        if (o.codec === "x264-420" && (h % 2 || w % 2)) {
          if (o.oddSize === "error") {
            throw new VideoError(
              file,
              `x264-420 (4:2:0 chroma) needs an even width and height, the frames are ${w}x${h}; ` +
                `pass oddSize: "pad" to replicate the last column/row (${w + (w % 2)}x` +
                `${h + (h % 2)}), crop the frames, or use x264-444 or ffv1`,
            );
          }
          h2 = h + (h % 2);
          w2 = w + (w % 2);
        }
        size = { h, w, h2, w2 };
        tmp = tempPathFor(file);
        const args = [
          ...FFMPEG_BASE,
          "-f",
          "rawvideo",
          "-pix_fmt",
          "rgb24",
          "-s",
          `${w2}x${h2}`,
          "-framerate",
          String(o.fps),
          "-i",
          "pipe:0",
          ...audioArgs(o.audio),
          ...codecArgs(o, muxer, w2, h2),
          ...colourArgs(o),
          // No random segment UID, date or encoder version in the file: the same frames and
          // options give the same bytes.
          "-fflags",
          "+bitexact",
          "-flags:v",
          "+bitexact",
          "-map_metadata",
          "-1",
          "-f",
          muxer,
          "-y",
          fileArg(tmp),
        ];
        proc = spawnTool("ffmpeg", args, { stdin: "piped" });
        writer = proc.child.stdin.getWriter();
      } else if (h !== size.h || w !== size.w) {
        throw new VideoError(
          file,
          `a chunk of ${w}x${h} frames follows ${size.w}x${size.h} frames; all must be one size`,
          { frame: written },
        );
      }
      const bytes = piece.packed
        ? padRgb24(piece.packed, size.h2, size.w2)
        : await packFrames(piece.tensor!, piece.t0, piece.count, {
          h2: size.h2,
          w2: size.w2,
          on: o.convertOn,
        });
      if (o.disposeInput && piece.last) piece.source?.dispose();
      if (pending) await pending;
      o.signal?.throwIfAborted();
      pending = writer!.write(bytes);
      pending.catch(() => {}); // handled when awaited
      written += piece.count;
    }
    if (!proc || !writer || !size || !tmp) {
      throw new VideoError(file, "no frames to write (zero frames given)");
    }
    if (pending) await pending;
    await writer.close();
    const status = await proc.child.status;
    await proc.stderr.done;
    if (!status.success) {
      throw new VideoError(
        file,
        `ffmpeg failed (exit ${status.code}) while encoding, after ${written} frame(s) were sent`,
        { stderr: proc.stderr.text() },
      );
    }
    o.signal?.throwIfAborted();
    if (o.rotation !== 0) {
      // ffmpeg 5.1 writes the rotate tag as a display matrix only when copying streams.
      const tagged = tempPathFor(file);
      try {
        const r = await runTool("ffmpeg", [
          ...FFMPEG_BASE,
          "-i",
          fileArg(tmp),
          "-map",
          "0",
          "-c",
          "copy",
          "-metadata:s:v:0",
          `rotate=${o.rotation}`,
          "-fflags",
          "+bitexact",
          "-map_metadata",
          "-1",
          "-movflags",
          "+faststart",
          "-f",
          muxer,
          "-y",
          fileArg(tagged),
        ]);
        if (r.code !== 0) {
          throw new VideoError(file, `ffmpeg failed (exit ${r.code}) tagging the rotation`, {
            stderr: r.stderr,
          });
        }
        o.signal?.throwIfAborted();
        await commitTemp(tagged, file);
      } finally {
        await discardTemp(tagged);
      }
    } else {
      await commitTemp(tmp, file);
      tmp = null;
    }
    return {
      path: file,
      frames: written,
      width: size.w2,
      height: size.h2,
      padded: size.w2 !== size.w || size.h2 !== size.h,
      codec: o.codec,
      fps: o.fps,
      rotation: o.rotation,
      colour: colourOf(o),
    };
  } catch (e) {
    let err = e;
    if (proc) {
      const p: Spawned = proc;
      // If ffmpeg died on its own (a broken pipe here), its stderr says why.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const exited = await Promise.race([
        p.child.status.then((s) => s),
        new Promise<null>((r) => timer = setTimeout(() => r(null), 50)),
      ]);
      clearTimeout(timer);
      p.kill();
      await p.child.status;
      await p.stderr.done;
      if (!(e instanceof VideoError) && exited && !exited.success && !o.signal?.aborted) {
        err = new VideoError(
          file,
          `ffmpeg failed (exit ${exited.code}) while encoding, after ${written} frame(s) were sent`,
          { stderr: p.stderr.text(), cause: e },
        );
      }
    }
    throw err;
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
    if (tmp) await discardTemp(tmp);
  }
}

/** Options of {@link writeFramePng}. */
export interface WriteFramePngOptions {
  /** Which frame of a [T,3,H,W] tensor. Default 0. */
  frame?: number;
}

const PngSchema = z.object({ frame: z.number().int().nonnegative().default(0) }).strict();

/**
 * Writes one frame ([3,H,W], or frame `frame` of [T,3,H,W]) as an 8-bit RGB PNG, quantised
 * like {@link writeVideo}. Written to a temporary file and renamed when complete.
 *
 * @example
 * ```ts
 * import { initGpu, readVideo, writeFramePng } from "../../mod.ts";
 * await initGpu();
 * const frames = await readVideo("data/samples/astronaut_pan.mkv", { maxFrames: 4 });
 * await writeFramePng(`${await Deno.makeTempDir()}/frame3.png`, frames, { frame: 3 });
 * ```
 */
export async function writeFramePng(
  file: string,
  frames: Tensor,
  options: WriteFramePngOptions = {},
): Promise<void> {
  const parsed = PngSchema.safeParse(options);
  if (!parsed.success) {
    const issues = formatZodError(parsed.error, { root: "options" });
    throw new VideoError(file, `bad PNG options: ${issues}`);
  }
  const index = parsed.data.frame;
  const t = framesOf(frames, file, index);
  try {
    const [T, , h, w] = t.shape;
    if (index >= T) {
      throw new VideoError(file, `frame ${index} asked for, the tensor holds ${T}`, {
        frame: index,
      });
    }
    await checkOutputDir(file);
    const bytes = await packFrames(t, index, 1);
    const proc = spawnTool("ffmpeg", [
      ...FFMPEG_BASE,
      "-f",
      "rawvideo",
      "-pix_fmt",
      "rgb24",
      "-s",
      `${w}x${h}`,
      "-i",
      "pipe:0",
      "-frames:v",
      "1",
      "-c:v",
      "png",
      "-pix_fmt",
      "rgb24",
      "-f",
      "image2pipe",
      "pipe:1",
    ], { stdin: "piped", stdout: "piped" });
    const feed = (async () => {
      const wr = proc.child.stdin.getWriter();
      try {
        await wr.write(bytes);
        await wr.close();
      } catch { /* ffmpeg exited: its status and stderr say why */ }
    })();
    const [png, status] = await Promise.all([
      new Response(proc.child.stdout).arrayBuffer(),
      proc.child.status,
      feed,
      proc.stderr.done,
    ]);
    if (!status.success || png.byteLength === 0) {
      throw new VideoError(file, `ffmpeg failed (exit ${status.code}) while encoding the PNG`, {
        frame: index,
        stderr: proc.stderr.text(),
      });
    }
    const tmp = tempPathFor(file);
    try {
      await Deno.writeFile(tmp, new Uint8Array(png));
      await commitTemp(tmp, file);
    } catch (e) {
      await discardTemp(tmp);
      throw new VideoError(file, `cannot write: ${(e as Error).message}`, {
        frame: index,
        cause: e,
      });
    }
  } finally {
    if (t !== frames) t.dispose();
  }
}
