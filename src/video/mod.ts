/**
 * Video in and out through ffmpeg: probe a file, decode it into [T,3,H,W] float frames on the
 * GPU (whole or in chunks), encode frames to ffv1 / H.264, and export a frame as PNG. ffmpeg and
 * ffprobe come from the `FFMPEG` / `FFPROBE` environment variables, else from PATH. Frames on
 * the CPU become PNG files or `data:` URIs with `encodePng` / `pngDataUri`.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../mod.ts";
 * import { probeVideo, readVideo, writeVideo } from "./mod.ts";
 * await initGpu();
 * const info = await probeVideo("data/samples/astronaut_pan.mkv");
 * const frames = await readVideo("data/samples/astronaut_pan.mkv", { maxFrames: 4 });
 * assert.deepEqual(frames.shape, [4, 3, info.height, info.width]);
 * await writeVideo(await Deno.makeTempFile({ suffix: ".mkv" }), frames, { fps: info.fps });
 * ```
 * @module
 */

export { FfmpegNotFoundError, VideoError } from "./_ffmpeg.ts";
export type { ConvertOn } from "./_convert.ts";
export {
  checkVideoFile,
  isVideoPath,
  listVideoFiles,
  type SkippedEntry,
  VIDEO_EXTENSIONS,
  type VideoFileList,
} from "./files.ts";
export { type FrameCountSource, type ProbeOptions, probeVideo, type VideoInfo } from "./probe.ts";
export {
  decodedSize,
  readVideo,
  readVideoChunks,
  type ReadVideoChunksOptions,
  type ReadVideoOptions,
  type VideoChunk,
} from "./read.ts";
export {
  type VideoCodec,
  writableColour,
  writeFramePng,
  type WriteFramePngOptions,
  writeVideo,
  type WriteVideoFrames,
  type WriteVideoOptions,
  type WriteVideoResult,
} from "./write.ts";
export { encodePng, pngDataUri, type RgbImage } from "./png.ts";
export { type Rgb24Frames, rgb24Frames, rgb24Tensor } from "./rgb24.ts";
export { type EncoderChunk, openVideoEncoder, type VideoEncoder } from "./encoder.ts";
