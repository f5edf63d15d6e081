/**
 * `probeVideo`: what a video file holds, from ffprobe's JSON, validated with zod.
 *
 * @module
 */

import { z } from "zod";
import { formatZodError } from "../_zod.ts";
import { inputArgs, runTool, VideoError } from "./_ffmpeg.ts";
import { checkVideoFile } from "./files.ts";

/** A decimal string or number from ffprobe (it prints most numbers as strings). */
const num = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = typeof v === "number" ? v : Number(v);
  if (!Number.isFinite(n)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `not a number: ${v}` });
    return z.NEVER;
  }
  return n;
});

const FfprobeStream = z.object({
  index: z.number().int(),
  codec_type: z.string(),
  codec_name: z.string().optional(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  pix_fmt: z.string().optional(),
  avg_frame_rate: z.string().optional(),
  r_frame_rate: z.string().optional(),
  nb_frames: num.optional(),
  nb_read_packets: num.optional(),
  duration: num.optional(),
  sample_aspect_ratio: z.string().optional(),
  time_base: z.string().optional(),
  color_primaries: z.string().optional(),
  color_transfer: z.string().optional(),
  color_space: z.string().optional(),
  color_range: z.string().optional(),
  tags: z.record(z.string()).optional(),
  side_data_list: z.array(z.object({ rotation: z.number().optional() }).passthrough())
    .optional(),
}).passthrough();

const FfprobeOutput = z.object({
  streams: z.array(z.unknown()).default([]),
  packets: z.array(z.object({ pts: z.number().optional() }).passthrough()).optional(),
  format: z.object({
    format_name: z.string().optional(),
    duration: num.optional(),
  }).passthrough().optional(),
}).passthrough();

/** Where {@link VideoInfo.frameCount} came from. */
export type FrameCountSource = "header" | "packets" | "duration";

/** What {@link probeVideo} reports about a file's first video stream. */
export interface VideoInfo {
  /** The file, as given. */
  path: string;
  /** Width in pixels of decoded frames (after the display rotation ffmpeg applies). */
  width: number;
  /** Height in pixels of decoded frames (after the display rotation ffmpeg applies). */
  height: number;
  /** Display rotation in degrees (0, 90, 180, 270); ffmpeg's decoder output is rotated by it. */
  rotation: number;
  /**
   * Frames per second: the average rate (for a variable rate found from the packet timestamps,
   * their mean interval); the nominal rate where no average is known.
   */
  fps: number;
  /** The frame rate as ffprobe's fraction, e.g. "30000/1001". */
  fpsFraction: string;
  /** Number of frames: from the container header, counted packets, or duration x fps. */
  frameCount: number | null;
  /** Where `frameCount` came from. */
  frameCountSource: FrameCountSource | null;
  /** Duration in seconds, where known. */
  duration: number | null;
  /** Pixel format of the stream, e.g. "yuv420p", "gbrp". */
  pixelFormat: string;
  /** Codec name, e.g. "h264", "ffv1". */
  codec: string;
  /** Container format name(s), e.g. "matroska,webm". */
  format: string;
  /**
   * The stream's colour tags, ffmpeg's names (e.g. primaries "bt709", transfer "bt709", space
   * "bt709", range "tv"); null where the file leaves one unspecified. Decoding converts to
   * full-range RGB with the stream's matrix; primaries and transfer still describe the RGB
   * values, so `writeVideo`'s `colour` option can keep them.
   */
  colour: {
    primaries: string | null;
    transfer: string | null;
    space: string | null;
    range: string | null;
  };
  /**
   * Whether the frame rate is variable: from the packet timestamps when they were read
   * (`countFrames`, the default: intervals that differ by more than the time base's rounding);
   * without them, true when the nominal and the average rate differ, else null (not known).
   * `fps` is then the average rate, which is what a re-encoded copy is written at.
   */
  variableFrameRate: boolean | null;
  /**
   * Whether the pixel format carries an alpha (transparency) plane, e.g. yuva420p, rgba;
   * the readers refuse such a stream unless told to drop it.
   */
  alpha: boolean;
  /** Bits per sample of the stream (8 for yuv420p, 10 for yuv420p10le); decoded to 8 bits. */
  bitDepth: number;
}

/** Whether an ffmpeg pixel format name has an alpha plane. */
function hasAlpha(pixFmt: string): boolean {
  return /^(yuva|gbrap|ya\d)|rgba|bgra|argb|abgr/.test(pixFmt);
}

/** Bits per sample from an ffmpeg pixel format name (8 unless the name says otherwise). */
function bitDepthOf(pixFmt: string): number {
  if (/^(rgb|bgr)(48|64|a64)/.test(pixFmt) || /^ya16/.test(pixFmt)) return 16;
  const m = /(?:p|gray|x2rgb|x2bgr|y210|y212)(\d{2})(?:le|be)?$/.exec(pixFmt) ??
    /^p0(\d{2})(?:le|be)$/.exec(pixFmt);
  return m ? Number(m[1]) : 8;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** ffprobe's value, or null for unknown or unspecified. */
function tag(v: string | undefined): string | null {
  return v && v !== "unknown" && v !== "unspecified" ? v : null;
}

/**
 * Whether packet timestamps (in time-base ticks) have a variable interval: the intervals of the
 * sorted timestamps differ by more than one tick and by more than 0.5 % of the median interval.
 * Null with fewer than three timestamps.
 */
function variableFromPts(pts: number[]): boolean | null {
  if (pts.length < 3) return null;
  const sorted = [...pts].sort((a, b) => a - b);
  const d: number[] = [];
  for (let i = 1; i < sorted.length; i++) d.push(sorted[i] - sorted[i - 1]);
  const byValue = [...d].sort((a, b) => a - b);
  const median = byValue[Math.floor(byValue.length / 2)];
  const spread = byValue[byValue.length - 1] - byValue[0];
  return spread > 1 && spread > 0.005 * median;
}

/** Options of {@link probeVideo}. */
export interface ProbeOptions {
  /**
   * Count the packets when the container header gives no frame count (reads the whole file,
   * without decoding; on by default).
   */
  countFrames?: boolean;
}

const ProbeOptionsSchema = z.object({ countFrames: z.boolean().default(true) }).strict();

function parseRate(s: string | undefined): number {
  if (!s) return 0;
  const [a, b = "1"] = s.split("/");
  const n = Number(a);
  const d = Number(b);
  return d > 0 && Number.isFinite(n) ? n / d : 0;
}

/**
 * Probes a video file with ffprobe: size, rotation, frame rate (and whether it varies), frame
 * count, duration, pixel format (alpha, bit depth), colour tags and codec of its first video
 * stream. Throws {@link VideoError} for a missing file, a folder, a FIFO,
 * device or socket (refused by name before ffprobe opens it), an empty file, a file that is not a
 * video, or one without a video stream. A symbolic link to a regular file is followed.
 *
 * @example
 * ```ts
 * import { probeVideo } from "../../mod.ts";
 * const info = await probeVideo("data/samples/astronaut_pan.mkv");
 * console.log(info.width, info.height, info.fps, info.frameCount);
 * ```
 */
export async function probeVideo(file: string, options: ProbeOptions = {}): Promise<VideoInfo> {
  const o = ProbeOptionsSchema.safeParse(options);
  if (!o.success) {
    throw new VideoError(
      file,
      `bad probe options: ${formatZodError(o.error, { root: "options" })}`,
    );
  }
  const opts = o.data;
  await checkVideoFile(file);
  const args = [
    "-v",
    "error",
    "-print_format",
    "json",
    "-show_streams",
    "-show_format",
    "-select_streams",
    "v:0",
    // Counting reads every packet: their timestamps tell a variable frame rate too.
    ...(opts.countFrames ? ["-count_packets", "-show_entries", "packet=pts"] : []),
    ...inputArgs(file, false),
  ];
  const { code, stdout, stderr } = await runTool("ffprobe", args);
  if (code !== 0) {
    throw new VideoError(file, `ffprobe failed (exit ${code}): not a readable video file`, {
      stderr,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(stdout));
  } catch (e) {
    throw new VideoError(file, "ffprobe printed something that is not JSON", { stderr, cause: e });
  }
  const top = FfprobeOutput.safeParse(json);
  if (!top.success) {
    throw new VideoError(file, `unexpected ffprobe output: ${formatZodError(top.error)}`, {
      stderr,
    });
  }
  const raw = top.data.streams.find((s) => (s as { codec_type?: string })?.codec_type === "video");
  if (!raw) throw new VideoError(file, "has no video stream", { stderr });
  const parsed = FfprobeStream.safeParse(raw);
  if (!parsed.success) {
    const issues = formatZodError(parsed.error);
    throw new VideoError(file, `video stream without usable properties (${issues})`, { stderr });
  }
  const s = parsed.data;
  let rotation = 0;
  const sideRot = s.side_data_list?.find((d) => typeof d.rotation === "number")?.rotation;
  if (sideRot !== undefined) rotation = sideRot;
  else if (s.tags?.rotate) rotation = Number(s.tags.rotate) || 0;
  rotation = ((Math.round(rotation / 90) * 90) % 360 + 360) % 360;
  const swap = rotation === 90 || rotation === 270;
  let fpsFraction = s.avg_frame_rate ?? "0/0";
  let fps = parseRate(fpsFraction);
  if (!(fps > 0)) {
    fpsFraction = s.r_frame_rate ?? "0/0";
    fps = parseRate(fpsFraction);
  }
  const duration = s.duration ?? top.data.format?.duration ?? null;
  let frameCount: number | null = null;
  let frameCountSource: FrameCountSource | null = null;
  if (s.nb_frames !== undefined && s.nb_frames > 0) {
    frameCount = s.nb_frames;
    frameCountSource = "header";
  } else if (s.nb_read_packets !== undefined) {
    frameCount = s.nb_read_packets;
    frameCountSource = "packets";
  } else if (duration !== null && fps > 0) {
    frameCount = Math.round(duration * fps);
    frameCountSource = "duration";
  }
  const pts = (top.data.packets ?? []).flatMap((p) => (p.pts === undefined ? [] : [p.pts]));
  const rNominal = parseRate(s.r_frame_rate);
  const rAverage = parseRate(s.avg_frame_rate);
  const variableFrameRate = opts.countFrames && pts.length >= 3
    ? variableFromPts(pts)
    : rNominal > 0 && rAverage > 0 && Math.abs(rNominal - rAverage) > 1e-3 * rAverage
    ? true
    : null;
  if (variableFrameRate && pts.length >= 3) {
    // The container's average may be a guess from the first frames (Matroska): the mean
    // interval of the timestamps is the true average rate.
    const [tbNum, tbDen] = (s.time_base ?? "").split("/").map(Number);
    let lo = Infinity;
    let hi = -Infinity;
    for (const p of pts) [lo, hi] = [Math.min(lo, p), Math.max(hi, p)];
    const span = hi - lo;
    if (tbNum > 0 && tbDen > 0 && span > 0) {
      const num = (pts.length - 1) * tbDen;
      const den = span * tbNum;
      const g = gcd(num, den);
      fpsFraction = `${num / g}/${den / g}`;
      fps = num / den;
    }
  }
  const pixelFormat = s.pix_fmt ?? "unknown";
  return {
    path: file,
    width: swap ? s.height : s.width,
    height: swap ? s.width : s.height,
    rotation,
    fps,
    fpsFraction,
    frameCount,
    frameCountSource,
    duration,
    pixelFormat,
    codec: s.codec_name ?? "unknown",
    format: top.data.format?.format_name ?? "unknown",
    colour: {
      primaries: tag(s.color_primaries),
      transfer: tag(s.color_transfer),
      space: tag(s.color_space),
      range: tag(s.color_range),
    },
    variableFrameRate,
    alpha: hasAlpha(pixelFormat),
    bitDepth: bitDepthOf(pixelFormat),
  };
}
