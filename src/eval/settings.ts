/**
 * What made an eval row, and the check that keeps one output folder to one set of options: the
 * dataset's identity, the digests of the victims' and generators' files, and the comparison of
 * the rows already in an output folder (or in the shards a merge combines) against a run's
 * settings, naming the first difference.
 *
 * @module
 */

import { basename, dirname, join, resolve } from "path";
import { fileSha256 } from "../_fs.ts";
import { DATASET_FORMATS } from "../data/loaders.ts";
import { DEFAULT_PROXY_DIR } from "../data/proxy.ts";
import type { EvalRow, EvalRowSettings } from "./robustness.ts";

/**
 * The JND model of every eval attack's box (the maps `evaluateVideo` computes).
 *
 * @example
 * ```ts
 * import { EVAL_JND_MODEL } from "./settings.ts";
 * console.log(EVAL_JND_MODEL); // "namm-st"
 * ```
 */
export const EVAL_JND_MODEL = "namm-st";

/**
 * The SHA-256 digests of a model's weights and config files (each must be a regular file).
 *
 * @example
 * ```ts
 * import { modelDigest } from "./settings.ts";
 * const d = await modelDigest("data/models/vsfa-mini.safetensors", "data/models/vsfa-mini.json");
 * console.log(d.weights.slice(0, 12));
 * ```
 */
export async function modelDigest(
  weights: string,
  config: string,
): Promise<{ weights: string; config: string }> {
  return {
    weights: await fileSha256(weights, "weights file"),
    config: await fileSha256(config, "config file"),
  };
}

async function realOrResolved(p: string): Promise<string> {
  try {
    return await Deno.realPath(p);
  } catch {
    return resolve(p);
  }
}

/**
 * The identity of `--dataset`: the real path of its manifest, folder or file (`proxy` is the
 * proxy manifest), or `<format>:<real root>` for a dataset loader; and the split when it
 * selects videos (a proxy manifest), else null.
 *
 * @example
 * ```ts
 * import { datasetIdentity } from "./settings.ts";
 * const id = await datasetIdentity("proxy", "test");
 * // { dataset: "/home/me/stqa/cache/proxy/manifest.json", split: "test" }
 * ```
 */
export async function datasetIdentity(
  dataset: string,
  split: string,
): Promise<{ dataset: string; split: string | null }> {
  const m = /^([a-z-]+):(.+)$/.exec(dataset);
  if (m && (DATASET_FORMATS as readonly string[]).includes(m[1])) {
    return { dataset: `${m[1]}:${await realOrResolved(m[2])}`, split: null };
  }
  const input = dataset === "proxy" ? join(DEFAULT_PROXY_DIR, "manifest.json") : dataset;
  let proxy = false;
  if (input.toLowerCase().endsWith(".json")) {
    try {
      const j = JSON.parse(await Deno.readTextFile(input));
      proxy = j !== null && typeof j === "object" && !Array.isArray(j) && "clips" in j;
    } catch { /* not a proxy manifest; the loader says why */ }
  }
  return { dataset: await realOrResolved(input), split: proxy ? split : null };
}

/**
 * The real path of a video (its resolved path where it cannot be resolved).
 *
 * @example
 * ```ts
 * import { videoIdentity } from "./settings.ts";
 * await videoIdentity("data/samples/../samples/a.mkv");
 * ```
 */
export function videoIdentity(path: string): Promise<string> {
  return realOrResolved(path);
}

/** One setting: a value to compare and the words that name it in a message. */
interface Setting {
  value: string;
  text: string;
  /** Why it may differ, said once after both values. */
  hint?: string;
}

/** What the settings of a row, or of a run, are built from. */
export interface SettingsSource {
  /** Whether the options were recorded (false for rows of an earlier eval). */
  recorded: boolean;
  eps: number;
  /** The base seed (`--seed`; a row stores seed + index). */
  seed: number;
  dataset?: string;
  split?: string | null;
  jnd?: string;
  victim?: {
    name: string;
    median: number;
    digest?: { weights: string; config: string };
  };
  method?: {
    name: string;
    generator?: { weights: string; config: string } | null;
    options?: EvalRowSettings["methodOptions"];
  };
  video?: { name: string; path?: string; index: number };
}

const short = (sha: string) => sha.slice(0, 12);

/**
 * The comparable settings of a source, by key (a run's keys are the union over its victims,
 * methods and videos).
 */
function settingEntries(s: SettingsSource): [string, Setting][] {
  const out: [string, Setting][] = [
    ["recorded", { value: String(s.recorded), text: "" }],
    ["eps", { value: String(s.eps), text: `eps ${s.eps}` }],
    ["seed", { value: String(s.seed), text: `seed ${s.seed}` }],
  ];
  if (s.dataset !== undefined) {
    out.push(["dataset", { value: s.dataset, text: `dataset ${s.dataset}` }]);
  }
  if (s.split !== undefined) {
    out.push(["split", {
      value: String(s.split),
      text: s.split ? `split ${s.split}` : "no split",
    }]);
  }
  const v = s.victim;
  if (s.jnd !== undefined && !(v && s.method)) {
    out.push(["jnd", { value: s.jnd, text: `JND model ${s.jnd}` }]);
  }
  if (v) {
    out.push([`median\0${v.name}`, {
      value: String(v.median),
      text: `median ${v.median} for ${v.name}`,
      hint: "the labels' median of the videos selected: --max-videos or the labels changed",
    }]);
    if (v.digest) {
      out.push([`weights\0${v.name}`, {
        value: v.digest.weights,
        text: `${v.name} weights sha256 ${short(v.digest.weights)}`,
      }]);
      out.push([`config\0${v.name}`, {
        value: v.digest.config,
        text: `${v.name} config sha256 ${short(v.digest.config)}`,
      }]);
    }
    const m = s.method;
    if (m && s.jnd !== undefined) {
      // Per method: a generator's box is its own JND model's, the baselines' the eval's default.
      out.push([`jnd\0${v.name}\0${m.name}`, {
        value: s.jnd,
        text: `JND model ${s.jnd} for ${m.name} against ${v.name}`,
      }]);
    }
    if (m && m.generator !== undefined) {
      out.push([`generator\0${v.name}\0${m.name}`, {
        value: m.generator ? `${m.generator.weights}/${m.generator.config}` : "none",
        text: m.generator
          ? `${m.name} against ${v.name} with generator weights sha256 ${
            short(m.generator.weights)
          } and config sha256 ${short(m.generator.config)}`
          : `${m.name} against ${v.name} without a generator`,
      }]);
    }
    if (m && m.options !== undefined) {
      const sorted = Object.fromEntries(
        Object.entries(m.options).sort(([a], [b]) => a < b ? -1 : 1),
      );
      out.push([`options\0${v.name}\0${m.name}`, {
        value: JSON.stringify(sorted),
        text: `${m.name} options ${JSON.stringify(sorted)}`,
      }]);
    }
  }
  const video = s.video;
  if (video) {
    out.push([`index\0${video.name}`, {
      value: String(video.index),
      text: `video ${video.name} at position ${video.index} of the dataset`,
      hint: "the dataset's order changed",
    }]);
    if (video.path !== undefined) {
      out.push([`video\0${video.name}`, {
        value: video.path,
        text: `video ${video.name} from ${video.path}`,
      }]);
    }
  }
  return out;
}

/**
 * What a row was made with, as a {@link SettingsSource}.
 *
 * @example
 * ```ts
 * import { rowSettingsSource } from "./settings.ts";
 * // rowSettingsSource(row).eps
 * ```
 */
export function rowSettingsSource(row: EvalRow): SettingsSource {
  const s = row.settings;
  return {
    recorded: s !== undefined,
    eps: row.eps,
    seed: row.seed - row.index,
    dataset: s?.dataset,
    split: s?.split,
    jnd: s?.jnd,
    victim: { name: row.victim, median: row.median, digest: s?.victim },
    method: { name: row.method, generator: s?.generator, options: s?.methodOptions },
    video: { name: row.video, path: s?.videoPath, index: row.index },
  };
}

/** The settings of a run: every key of every source, for {@link rowsMismatch}. */
export type RunSettings = Map<string, Setting>;

/**
 * The settings of a run from its sources (one per victim x method, and one per video).
 *
 * @example
 * ```ts
 * import { runSettings } from "./settings.ts";
 * const run = runSettings([{ recorded: true, eps: 1, seed: 1, dataset: "/d/m.json" }]);
 * ```
 */
export function runSettings(sources: readonly SettingsSource[]): RunSettings {
  const m: RunSettings = new Map();
  for (const s of sources) for (const [k, v] of settingEntries(s)) m.set(k, v);
  return m;
}

/**
 * The first way in which the rows already in an output folder differ from a run's settings, as
 * `its rows were made with eps 1, this run asks for eps 4` (or `its rows in rows.jsonl were made
 * by an earlier version of eval, which did not record their options`); null when every row
 * matches (keys the run does not have, e.g. a victim it does not evaluate, are not compared).
 *
 * @example
 * ```ts
 * import { rowsMismatch, runSettings } from "./settings.ts";
 * const run = runSettings([{ recorded: true, eps: 4, seed: 1 }]);
 * // rowsMismatch([{ file: "out/rows.jsonl", rows }], run)
 * ```
 */
export function rowsMismatch(
  files: readonly { file: string; rows: readonly EvalRow[] }[],
  run: RunSettings,
): string | null {
  for (const { file, rows } of files) {
    for (const row of rows) {
      for (const [k, have] of settingEntries(rowSettingsSource(row))) {
        const want = run.get(k);
        if (!want || want.value === have.value) continue;
        if (k === "recorded") {
          return `its rows in ${
            basename(file)
          } were made by an earlier version of eval, which did not record their options`;
        }
        return `its rows were made with ${have.text}, this run asks for ${want.text}${
          want.hint ? ` (${want.hint})` : ""
        }`;
      }
    }
  }
  return null;
}

/**
 * The first way in which the rows files a merge combines differ from each other, as
 * `rows-1-of-2.jsonl was made with eps 4, rows-0-of-2.jsonl with eps 1`; null when they agree.
 *
 * @example
 * ```ts
 * import { filesConflict } from "./settings.ts";
 * // filesConflict(await readRowFiles("out/eval"))
 * ```
 */
export function filesConflict(
  files: readonly { file: string; rows: readonly EvalRow[] }[],
): string | null {
  const seen = new Map<string, Setting & { file: string }>();
  for (const { file, rows } of files) {
    for (const row of rows) {
      for (const [k, have] of settingEntries(rowSettingsSource(row))) {
        const first = seen.get(k);
        if (!first) {
          seen.set(k, { ...have, file });
          continue;
        }
        if (first.value === have.value) continue;
        const [a, b] = [basename(file), basename(first.file)];
        const where = dirname(file) === dirname(first.file) ? "" : ` (${dirname(file)})`;
        if (k === "recorded") {
          const [old, recent] = have.value === "false" ? [a, b] : [b, a];
          return `${old}${where} was made by an earlier version of eval, which did not record ` +
            `its options; ${recent} records them`;
        }
        return a === b
          ? `${a}${where} holds rows made with ${have.text} and rows made with ${first.text}`
          : `${a}${where} was made with ${have.text}, ${b} with ${first.text}${
            have.hint ? ` (${have.hint})` : ""
          }`;
      }
    }
  }
  return null;
}
