/**
 * Private file helpers shared by the video, data and tensor modules: a temporary path beside a
 * target (same folder, so the final rename is atomic), write-then-rename, and existence checks.
 *
 * @module
 */

import * as path from "path";

/**
 * A fresh temporary path in the folder of `target`: a dot-name with a random suffix,
 * `<dir>/.<base>.<random>.tmp`. Nothing is created.
 *
 * @example
 * ```ts
 * import { tempPathBeside } from "./_fs.ts";
 * tempPathBeside("out/a.mkv"); // "out/.a.mkv.k3j2h1x9v0.tmp"
 * ```
 */
export function tempPathBeside(target: string): string {
  const rand = crypto.getRandomValues(new Uint32Array(2));
  const suffix = rand[0].toString(36) + rand[1].toString(36);
  return path.join(path.dirname(target), `.${path.basename(target)}.${suffix}.tmp`);
}

/**
 * Writes `data` (bytes, or text as UTF-8) to `file` atomically: to a temporary file in the same
 * folder, renamed over `file` once complete. On failure the temporary file is removed and the
 * error rethrown, so `file` is either the old content or the new, never a partial write.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./_fs.ts";
 * await writeFileAtomic("cache/proxy/manifest.json", JSON.stringify({ version: 1 }));
 * await writeFileAtomic("w.bin", new Uint8Array([1, 2, 3]));
 * ```
 */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = tempPathBeside(file);
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, file);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {/* not created */});
    throw e;
  }
}

/**
 * True when `p` exists and is a regular file (following symbolic links); false when it is
 * missing, is something else, or cannot be inspected.
 *
 * @example
 * ```ts
 * import { isFile } from "./_fs.ts";
 * await isFile("cache/proxy/manifest.json"); // true after `deno task data`
 * ```
 */
export async function isFile(p: string): Promise<boolean> {
  try {
    return (await Deno.stat(p)).isFile;
  } catch {
    return false;
  }
}

/**
 * True when `p` exists and is a folder (following symbolic links).
 *
 * @example
 * ```ts
 * import { isDir } from "./_fs.ts";
 * await isDir("data/sources"); // true in a checkout
 * ```
 */
export async function isDir(p: string): Promise<boolean> {
  try {
    return (await Deno.stat(p)).isDirectory;
  } catch {
    return false;
  }
}

/**
 * True when anything is at `p`: a file, a folder, or a symbolic link (even a dangling one).
 *
 * @example
 * ```ts
 * import { exists } from "./_fs.ts";
 * await exists("cache/proxy/clips"); // true once the proxy dataset is built
 * ```
 */
export async function exists(p: string): Promise<boolean> {
  try {
    await Deno.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** An input or output path that cannot be used as asked; the message names the path and why. */
export class PathError extends Error {
  /** The path as the user gave it. */
  readonly path: string;
  /** Creates the error. */
  constructor(path: string, message: string) {
    super(message);
    this.name = "PathError";
    this.path = path;
  }
}

/** What a path is, in words, for error messages: "a folder", "a FIFO", "a character device", .... */
function kindOf(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a folder";
  if (info.isFifo) return "a FIFO (named pipe)";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  if (info.isSymlink) return "a symbolic link";
  return "not a regular file";
}

/**
 * Checks that `p` is a regular file (a symbolic link to one is followed) and returns its size in
 * bytes. FIFOs, devices, sockets and folders are refused by name, before anything opens them (a
 * FIFO would block a reader, `/dev/zero` would never end). `what` names the file's role in the
 * message ("video", "weights file", ...).
 *
 * @throws {PathError} `"<p>: <what> is a FIFO (named pipe), not a regular file"` and the like.
 * @example
 * ```ts
 * import { checkRegularFile } from "./_fs.ts";
 * const bytes = await checkRegularFile("data/models/vsfa-mini.safetensors", "weights file");
 * ```
 */
export async function checkRegularFile(p: string, what = "file"): Promise<number> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(p);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      const dangling = await Deno.lstat(p).then((l) => l.isSymlink, () => false);
      throw new PathError(
        p,
        dangling ? `${p}: ${what} is a symbolic link to a missing file` : `${p}: no such ${what}`,
      );
    }
    throw new PathError(p, `${p}: cannot read ${what}: ${(e as Error).message}`);
  }
  if (!info.isFile) throw new PathError(p, `${p}: ${what} is ${kindOf(info)}, not a regular file`);
  return info.size;
}

/** Synchronous {@link checkRegularFile}, for loaders that are synchronous. */
export function checkRegularFileSync(p: string, what = "file"): number {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(p);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new PathError(p, `${p}: no such ${what}`);
    throw new PathError(p, `${p}: cannot read ${what}: ${(e as Error).message}`);
  }
  if (!info.isFile) throw new PathError(p, `${p}: ${what} is ${kindOf(info)}, not a regular file`);
  return info.size;
}

/**
 * The SHA-256 of a regular file's contents, as 64 hex digits (for recording which weights made
 * a result). Non-regular files are refused as by {@link checkRegularFile}.
 *
 * @example
 * ```ts
 * import { fileSha256 } from "./_fs.ts";
 * const digest = await fileSha256("data/models/vsfa-mini.safetensors");
 * console.log(digest.length); // 64
 * ```
 */
export async function fileSha256(p: string, what = "file"): Promise<string> {
  await checkRegularFile(p, what);
  const bytes = await Deno.readFile(p);
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}
