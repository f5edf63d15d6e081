/**
 * The videos of an eval run's `--dataset`, with safe, distinct names and their labels.
 *
 * @module
 */

import { basename, extname, join } from "path";
import { isFile } from "../_fs.ts";
import { uniqueNames } from "../_output.ts";
import { resolveVideoInputs } from "../data/inputs.ts";
import { DATASET_FORMATS, type DatasetFormat, loadDataset } from "../data/loaders.ts";
import { DEFAULT_PROXY_DIR } from "../data/proxy.ts";
import type { EvalVideo } from "./evaluate.ts";

/**
 * The videos of `--dataset`: `proxy` (the built proxy dataset), `<format>:<root>` for a real
 * dataset's loader, or what `deno task attack --input` takes (a manifest, folder or file).
 * Names are safe and distinct (`uniqueNames`: no empty, dot-only or separator-bearing names);
 * each one that differs from the video's own name is printed as `eval: video <path> is named
 * <name>`.
 *
 * @throws {Error} naming the dataset when it is missing or lists missing videos.
 * @example
 * ```ts
 * import { resolveEvalVideos } from "./videos.ts";
 * const videos = await resolveEvalVideos("proxy", { split: "test" });
 * ```
 */
export async function resolveEvalVideos(
  dataset: string,
  options: { split?: "train" | "val" | "test" | "all" } = {},
): Promise<EvalVideo[]> {
  const m = /^([a-z-]+):(.+)$/.exec(dataset);
  let items: { path: string; raw: string; label: number | null }[];
  if (m && (DATASET_FORMATS as readonly string[]).includes(m[1])) {
    const loaded = await loadDataset(m[1] as DatasetFormat, m[2]);
    if (loaded.missing.length) {
      throw new Error(
        `${dataset}: ${loaded.missing.length} listed video(s) are missing, e.g. ${
          loaded.missing[0]
        }`,
      );
    }
    if (!loaded.items.length) throw new Error(`${dataset}: no videos listed`);
    items = loaded.items.map((it) => ({
      path: it.path,
      raw: basename(it.path, extname(it.path)),
      label: it.mos,
    }));
  } else {
    let input = dataset;
    if (dataset === "proxy") {
      input = join(DEFAULT_PROXY_DIR, "manifest.json");
      if (!(await isFile(input))) {
        throw new Error(
          `the proxy dataset is not built (no ${input}); build it with \`deno task data\` or ` +
            "pass --dataset <manifest>",
        );
      }
    }
    const inputs = await resolveVideoInputs(input, { split: options.split });
    items = inputs.map((it) => ({
      path: it.path,
      raw: "renamedFrom" in it && typeof it.renamedFrom === "string" ? it.renamedFrom : it.name,
      label: it.label,
    }));
  }
  const names = uniqueNames(items.map((it) => it.raw));
  return items.map((it, index) => {
    if (names[index] !== it.raw) console.error(`eval: video ${it.path} is named ${names[index]}`);
    return { path: it.path, name: names[index], index, label: it.label };
  });
}
