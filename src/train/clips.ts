/**
 * The proxy dataset's clips for training: a split's items ({@link splitItems}), decoded as a
 * victim reads them ({@link decodeVictimClips}: many clips per ffmpeg process when they share
 * one size) and held in memory ({@link loadVictimClips}).
 *
 * @module
 */

import { loadManifest } from "../data/manifest.ts";
import type { DatasetItem } from "../data/types.ts";
import { readVictimClip } from "../models/victims/mod.ts";
import type { Victim } from "../models/victims/victim.ts";
import { noGrad, type Tensor, tensor, tidy } from "../tensor/tensor.ts";
import { FFMPEG_BASE, fileArg, toolBinary } from "../video/_ffmpeg.ts";
import { readVideo } from "../video/mod.ts";

/**
 * The items of a split of a proxy manifest and the size its clips are stored at; a clip file
 * that is missing is refused (one line naming the manifest, the count and the first one).
 *
 * @throws {DatasetError} for a missing or invalid manifest.
 * @throws {Error} when clip files of the split are missing.
 * @example
 * ```ts
 * import { splitItems } from "./clips.ts";
 * // After `deno task data`:
 * const { items, stored } = await splitItems("cache/proxy/manifest.json", "test");
 * console.log(items.length, stored.frames, stored.size);
 * ```
 */
export async function splitItems(
  manifest: string,
  split: "train" | "val" | "test",
): Promise<{ items: DatasetItem[]; stored: { frames: number; size: number } }> {
  const { items, missing, manifest: m } = await loadManifest(manifest, { splits: [split] });
  if (missing.length) {
    throw new Error(
      `${manifest}: ${missing.length} clip file(s) of the ${split} split are missing, e.g. ${
        missing[0]
      } (rebuild with \`deno task data\`)`,
    );
  }
  return { items, stored: m.options };
}

/** A clip held in memory: the victim's prepared input and its label. */
export interface LoadedClip {
  /** Prepared input `[T,3,...]` (kept out of tidy scopes). */
  input: Tensor;
  /** Label. */
  label: number;
  /** Path, for messages. */
  path: string;
}

/**
 * Reads the clips of the given splits once, prepared for the victim.
 *
 * @example
 * ```ts
 * import { createVictim, initGpu } from "../../mod.ts";
 * import { loadVictimClips } from "./clips.ts";
 * await initGpu();
 * const v = createVictim("vsfa-mini", { seed: 1 });
 * const test = await loadVictimClips(v, "cache/proxy/manifest.json", "test");
 * ```
 */
export async function loadVictimClips(
  victim: Victim,
  manifest: string,
  split: "train" | "val" | "test",
  options: {
    /** Called after each clip (read and prepared) with the count done and the split's size. */
    onProgress?: (done: number, total: number) => void;
  } = {},
): Promise<LoadedClip[]> {
  const { items, stored } = await splitItems(manifest, split);
  const clips: LoadedClip[] = new Array(items.length);
  let done = 0;
  options.onProgress?.(0, items.length);
  await decodeVictimClips(victim, items, stored, (k, frames) => {
    const input = tidy(() => noGrad(() => victim.prepare(frames)));
    if (input !== frames) frames.dispose();
    clips[k] = { input: input.keep(), label: items[k].mos, path: items[k].path };
    options.onProgress?.(++done, items.length);
  });
  return clips;
}

/**
 * Decodes clips as `victim` reads them (`readVictimClip`) and hands each to `onClip` with its
 * index (the callee owns the tensor, made outside any tidy scope); with `native`, at their own
 * size rather than the victim's. When the victim reads the clips at their stored size and no more frames than they have (the proxy dataset's clips all
 * have `frames` frames of `size x size`: pass the manifest's options), 48 clips are decoded per
 * ffmpeg process, since process start-up dominates on small clips; otherwise one process per
 * clip, four at a time. `onClip` runs for one clip at a time.
 *
 * @example
 * ```ts
 * import { decodeVictimClips } from "./clips.ts";
 * // await decodeVictimClips(victim, items, manifest.options, (k, frames) => { ... });
 * ```
 */
export async function decodeVictimClips(
  victim: Victim,
  items: readonly { path: string }[],
  stored: { frames: number; size: number } | null,
  onClip: (k: number, frames: Tensor) => Promise<void> | void,
  options: {
    /** Read the clips at their own size, not scaled to the victim's (default false). */
    native?: boolean;
  } = {},
): Promise<void> {
  const c = victim.config;
  const native = options.native ?? false;
  let chain = Promise.resolve();
  const deliver = (k: number, frames: Tensor) => {
    chain = chain.then(() => onClip(k, frames));
    return chain;
  };
  if (
    stored && (native || c.width === null || c.width === stored.size) &&
    (native || c.height === null || c.height === stored.size) && c.frames <= stored.frames
  ) {
    const per = 48;
    const groups: number[][] = [];
    for (let i = 0; i < items.length; i += per) {
      groups.push([...Array(Math.min(per, items.length - i)).keys()].map((k) => i + k));
    }
    let nextGroup = 0;
    const worker = async () => {
      while (nextGroup < groups.length) {
        const g = groups[nextGroup++];
        const all = await decodeSameSize(g.map((k) => items[k].path), c.frames, stored.size);
        for (const [j, k] of g.entries()) {
          await deliver(k, tensor(all[j], [c.frames, 3, stored.size, stored.size]));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(2, groups.length) }, worker));
    await chain;
    return;
  }
  // Several ffmpeg processes at once: on small clips process start-up dominates.
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const k = next++;
      const path = items[k].path;
      await deliver(
        k,
        native
          ? await readVideo(path, { maxFrames: c.frames })
          : await readVictimClip(victim, path),
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, items.length) }, worker));
  await chain;
}

/**
 * Decodes clips that all have at least `frames` frames of `size x size` with one ffmpeg process
 * (their first `frames` frames, concatenated), as planar RGB in [0,1]: one `[T*3*S*S]` array per
 * clip, the same values as `readVideo` gives for each.
 */
async function decodeSameSize(paths: string[], frames: number, size: number) {
  const n = paths.length;
  const graph = paths.map((_, i) => `[${i}:v:0]trim=end_frame=${frames},setpts=PTS-STARTPTS[v${i}]`)
    .join(";") + `;${paths.map((_, i) => `[v${i}]`).join("")}concat=n=${n}:v=1:a=0[out]`;
  const out = await new Deno.Command(toolBinary("ffmpeg"), {
    args: [
      ...FFMPEG_BASE,
      ...paths.flatMap((p) => ["-i", fileArg(p)]),
      "-filter_complex",
      graph,
      "-map",
      "[out]",
      "-vsync",
      "passthrough",
      "-f",
      "rawvideo",
      "-pix_fmt",
      "rgb24",
      "pipe:1",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const plane = size * size;
  const clipBytes = frames * 3 * plane;
  if (!out.success || out.stdout.length !== n * clipBytes) {
    throw new Error(
      `decoding ${n} clips (${paths[0]} ...): ffmpeg gave ${out.stdout.length} bytes, expected ` +
        `${n * clipBytes}: ${new TextDecoder().decode(out.stderr).slice(-500)}`,
    );
  }
  const b = out.stdout;
  const result: Float32Array[] = [];
  for (let k = 0; k < n; k++) {
    const f = new Float32Array(clipBytes);
    const base = k * clipBytes;
    for (let t = 0; t < frames; t++) {
      for (let i = 0; i < plane; i++) {
        const src = base + (t * plane + i) * 3;
        const dst = t * 3 * plane + i;
        f[dst] = b[src] / 255;
        f[dst + plane] = b[src + 1] / 255;
        f[dst + 2 * plane] = b[src + 2] / 255;
      }
    }
    result.push(f);
  }
  return result;
}
