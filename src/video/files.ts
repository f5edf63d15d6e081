/**
 * Video files as inputs: which names are videos (by extension), the check every reader makes
 * before ffmpeg opens a file (a regular, non-empty file; FIFOs, devices, sockets and folders are
 * refused by name, so nothing blocks on a pipe or reads a device forever), and the video files
 * of a folder, symbolic links to regular files followed.
 *
 * @module
 */

import * as path from "path";
import { checkRegularFile, PathError } from "../_fs.ts";
import { VideoError } from "./_ffmpeg.ts";

/**
 * The extensions (lower case, with the dot) taken as video files when a folder is listed.
 *
 * @example
 * ```ts
 * import { VIDEO_EXTENSIONS } from "./files.ts";
 * VIDEO_EXTENSIONS.includes(".mkv"); // true
 * ```
 */
export const VIDEO_EXTENSIONS: readonly string[] = [
  ".mkv",
  ".mp4",
  ".avi",
  ".mov",
  ".webm",
  ".nut",
  ".y4m",
  ".m4v",
];

/**
 * Whether a path looks like a video file by its extension (case-insensitive). A name that is
 * only an extension (`.mkv`) is not a video name.
 *
 * @example
 * ```ts
 * import { isVideoPath } from "./files.ts";
 * isVideoPath("a/b.MKV"); // true
 * isVideoPath("notes.txt"); // false
 * ```
 */
export function isVideoPath(p: string): boolean {
  return VIDEO_EXTENSIONS.includes(path.extname(p).toLowerCase());
}

/**
 * Checks that `file` can be handed to ffmpeg as a video: a regular file (a symbolic link to one
 * is followed) that is not empty. Returns its size in bytes.
 *
 * @throws {VideoError} naming the file: `no such file`, `is a directory (a folder), not a video
 * file`, `video is a FIFO (named pipe), not a regular file` (devices and sockets alike),
 * `video is a symbolic link to a missing file`, `is empty (0 bytes), not a video`.
 * @example
 * ```ts
 * import { checkVideoFile } from "./files.ts";
 * const bytes = await checkVideoFile("data/samples/astronaut_pan.mkv");
 * ```
 */
export async function checkVideoFile(file: string): Promise<number> {
  let size: number;
  try {
    size = await checkRegularFile(file, "video");
  } catch (e) {
    if (!(e instanceof PathError)) throw e;
    const info = await Deno.stat(file).catch(() => null);
    if (info?.isDirectory) {
      throw new VideoError(file, "is a directory (a folder), not a video file", { cause: e });
    }
    const present = await Deno.lstat(file).then(() => true, () => false);
    if (!present) throw new VideoError(file, "no such file", { cause: e });
    const prefix = `${file}: `;
    const detail = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
    throw new VideoError(file, detail, { cause: e });
  }
  if (size === 0) throw new VideoError(file, "is empty (0 bytes), not a video");
  return size;
}

/**
 * An entry of a folder that {@link listVideoFiles} left out, and why.
 *
 * @example
 * ```ts
 * import { listVideoFiles, type SkippedEntry } from "./files.ts";
 * const { skipped } = await listVideoFiles("data/samples");
 * const lines = skipped.map((s: SkippedEntry) => `skipped ${s.name}: ${s.reason}`);
 * ```
 */
export interface SkippedEntry {
  /** The entry's name in the folder. */
  name: string;
  /** Why, e.g. "a FIFO (named pipe), not a regular file". */
  reason: string;
}

/**
 * What {@link listVideoFiles} returns.
 *
 * @example
 * ```ts
 * import { listVideoFiles, type VideoFileList } from "./files.ts";
 * const list: VideoFileList = await listVideoFiles("data/samples");
 * console.log(list.files.length, list.skipped.length);
 * ```
 */
export interface VideoFileList {
  /** The video files, `dir` joined with the entry's name, sorted by name. */
  files: string[];
  /** Entries with a video extension that are not usable files, sorted by name. */
  skipped: SkippedEntry[];
}

/**
 * The video files of a folder (not its sub-folders): entries with a video extension
 * ({@link isVideoPath}) that are regular files, symbolic links to regular files included, sorted
 * by name. Entries with a video extension that are folders, FIFOs, devices, sockets, dangling
 * links or empty files are not returned but listed in `skipped`, so that a caller can warn.
 *
 * @throws {PathError} when `dir` is missing or not a folder.
 * @example
 * ```ts
 * import { listVideoFiles } from "./files.ts";
 * const { files, skipped } = await listVideoFiles("data/samples");
 * for (const s of skipped) console.error(`note: skipped ${s.name}: ${s.reason}`);
 * ```
 */
export async function listVideoFiles(dir: string): Promise<VideoFileList> {
  const info = await Deno.stat(dir).catch((e) => {
    if (e instanceof Deno.errors.NotFound) throw new PathError(dir, `${dir}: no such folder`);
    throw new PathError(dir, `${dir}: cannot read folder: ${(e as Error).message}`);
  });
  if (!info.isDirectory) throw new PathError(dir, `${dir}: not a folder`);
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (isVideoPath(e.name)) names.push(e.name);
  } catch (e) {
    throw new PathError(dir, `${dir}: cannot read folder: ${(e as Error).message}`);
  }
  names.sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
  const files: string[] = [];
  const skipped: SkippedEntry[] = [];
  for (const name of names) {
    const p = path.join(dir, name);
    try {
      await checkVideoFile(p);
      files.push(p);
    } catch (e) {
      if (!(e instanceof VideoError)) throw e;
      const prefix = `${JSON.stringify(p)}: `;
      const reason = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
      skipped.push({ name, reason: reason.replace(/^(video )?is /, "") });
    }
  }
  return { files, skipped };
}
