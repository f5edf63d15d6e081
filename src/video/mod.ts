/**
 * Video in and out through ffmpeg: probe a file, decode it into [T,3,H,W] float frames on the
 * GPU (whole or in chunks), encode frames to ffv1 / H.264, and export a frame as PNG. ffmpeg and
 * ffprobe come from the `FFMPEG` / `FFPROBE` environment variables, else from PATH.
 *
 * @example
 * ```ts
 * import { initGpu, probeVideo, readVideo, writeVideo } from "../../mod.ts";
 * await initGpu();
 * const info = await probeVideo("clip.mp4");
 * const frames = await readVideo("clip.mp4", { maxFrames: 16 });
 * await writeVideo("copy.mkv", frames, { fps: info.fps });
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
  writeFramePng,
  type WriteFramePngOptions,
  writeVideo,
  type WriteVideoOptions,
  type WriteVideoResult,
} from "./write.ts";
