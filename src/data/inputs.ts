/**
 * What an input path names: one video file, the video files of a folder, or the items of a
 * manifest (a proxy manifest filtered by split, or a generic CSV/JSON list of path,mos), each
 * with a safe, distinct name for its outputs. Shared by `deno task attack` and `deno task eval`.
 *
 * @module
 */

import { basename, extname, join, relative, resolve } from "path";
import { checkRegularFile, exists, isDir, isFile } from "../_fs.ts";
import { uniqueNames } from "../_output.ts";
import { listVideoFiles, VIDEO_EXTENSIONS } from "../video/mod.ts";
import { loadGenericManifest } from "./loaders.ts";
import { loadManifest } from "./manifest.ts";

/** A video named by an input, with its label when it came from a manifest. */
export interface VideoInput {
  /** The file. */
  path: string;
  /** A safe name for its outputs (distinct within the input, without case). */
  name: string;
  /** Its label, or null. */
  label: number | null;
  /** The name it would have had, where `name` had to be made safe or distinct. */
  renamedFrom?: string;
}

/**
 * The videos an input names: one file, the video files of a folder (sorted), or the items of
 * a manifest (a proxy manifest, filtered by split, or a generic CSV/JSON list of path,mos).
 * Output names are the files' stems, made safe and distinct by `uniqueNames` (no empty,
 * dot-only or separator-bearing names; `reserved` names avoided; the proxy's clip paths become
 * `source_motion_clip`). Symbolic links to video files in a folder are followed.
 *
 * @throws {Error} naming the path when it does not exist, holds no videos, or a manifest lists
 * missing files.
 * @example
 * ```ts
 * import { resolveVideoInputs } from "./inputs.ts";
 * const inputs = await resolveVideoInputs("data/samples");
 * console.log(inputs.map((i) => i.name));
 * ```
 */
export async function resolveVideoInputs(
  input: string,
  options: { split?: "train" | "val" | "test" | "all"; reserved?: readonly string[] } = {},
): Promise<VideoInput[]> {
  let items: { path: string; label: number | null; name?: string }[];
  if (await isDir(input)) {
    const { files, skipped } = await listVideoFiles(input);
    for (const s of skipped) console.error(`note: skipped ${join(input, s.name)}: ${s.reason}`);
    const names = files.map((f) => basename(f));
    if (!names.length) {
      throw new Error(`${input}: no video files in this folder (${VIDEO_EXTENSIONS.join(", ")})`);
    }
    items = names.map((n) => ({ path: join(input, n), label: null }));
  } else if (!(await exists(input))) {
    throw new Error(`${input}: no such file or folder`);
  } else if (!(await isFile(input))) {
    await checkRegularFile(input, "input"); // names a FIFO, device, socket or dangling link
    throw new Error(`${input}: not a regular file`);
  } else if (/\.(json|csv)$/i.test(input)) {
    let proxy = false;
    if (input.toLowerCase().endsWith(".json")) {
      try {
        const j = JSON.parse(await Deno.readTextFile(input));
        proxy = j && typeof j === "object" && !Array.isArray(j) && "clips" in j;
      } catch (e) {
        throw new Error(`${input}: not valid JSON: ${(e as Error).message}`);
      }
    }
    const split = options.split ?? "test";
    const loaded = proxy
      ? await loadManifest(input, split === "all" ? {} : { splits: [split] })
      : await loadGenericManifest(input);
    if (loaded.missing.length) {
      throw new Error(
        `${input}: ${loaded.missing.length} listed video(s) are missing, e.g. ${loaded.missing[0]}`,
      );
    }
    if (!loaded.items.length) {
      throw new Error(`${input}: no videos listed${proxy ? ` in the ${split} split` : ""}`);
    }
    const base = resolve(input, "..");
    items = loaded.items.map((it) => ({
      path: it.path,
      label: it.mos,
      name: relative(base, it.path).replace(/^clips[\\/]/, "").replace(/\.[^.]+$/, "")
        .replaceAll(/[\\/]/g, "_"),
    }));
  } else {
    items = [{ path: input, label: null }];
  }
  const raw = items.map((it) => it.name ?? basename(it.path, extname(it.path)));
  const names = uniqueNames(raw, { reserved: options.reserved });
  return items.map((it, k) => ({
    path: it.path,
    name: names[k],
    label: it.label,
    ...(names[k] !== raw[k] ? { renamedFrom: raw[k] } : {}),
  }));
}
