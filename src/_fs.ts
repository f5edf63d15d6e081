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
