/**
 * Datasets: the proxy dataset built with ffmpeg from still images (`buildProxyDataset`, read back
 * with `loadManifest`), and loaders for real VQA datasets as their authors ship them (KoNViD-1k,
 * LIVE-VQC, YouTube-UGC) and for a generic CSV/JSON manifest. Every loader returns
 * `{ items: [{ path, mos }], missing }`.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { buildProxyDataset, type BuildProxyOptions, loadManifest } from "./mod.ts";
 * // `buildProxyDataset()` builds cache/proxy (skipped when up to date); here a tiny one:
 * const out = await Deno.makeTempDir();
 * const tiny: BuildProxyOptions = { out, maxSources: 2, testSources: 1, valSources: 0,
 *   motionsPerImage: 1, levels: 1, distortions: ["blur"], frames: 2, size: 16 };
 * const { manifestPath } = await buildProxyDataset(tiny);
 * const train = await loadManifest(manifestPath, { splits: ["train"] });
 * const test = await loadManifest(manifestPath, { splits: ["test"] });
 * assert.deepEqual([train.items.length, test.items.length, test.missing.length], [2, 2, 0]);
 * await Deno.remove(out, { recursive: true });
 * ```
 * @module
 */

export { DatasetError, type DatasetItem, type LoadedDataset } from "./types.ts";
export { type CsvRecord, CsvSyntaxError, parseCsv } from "./csv.ts";
export {
  type ClipRecord,
  ClipSchema,
  type Distortion,
  DISTORTIONS,
  LABEL_FORMULA,
  LABEL_FORMULA_YUV,
  LABEL_SSIM_FLOOR,
  labelSummary,
  type LoadedManifest,
  loadManifest,
  type LoadManifestOptions,
  MANIFEST_VERSION,
  type MotionRecord,
  MOTIONS,
  type MotionType,
  type ProxyManifest,
  ProxyManifestSchema,
  type ProxyOptionsRecord,
  type Split,
  SPLITS,
  ssimToLabel,
} from "./manifest.ts";
export {
  buildProxyDataset,
  type BuildProxyOptions,
  type BuildProxyResult,
  DEFAULT_PROXY_DIR,
  DEFAULT_SOURCES_DIR,
  DISTORTION_LEVELS,
  freezeLength,
  levelStrengths,
  measureSsim,
  PROXY_GENERATOR,
  type ProxyProgress,
  type ResolvedProxyOptions,
  resolveProxyOptions,
  SOURCE_IMAGE_LIMITS,
  splitSources,
} from "./proxy.ts";
export {
  DATASET_FORMATS,
  type DatasetFormat,
  DEFAULT_MOS_RANGE,
  type GenericManifestOptions,
  loadDataset,
  type LoaderOptions,
  loadGenericManifest,
  loadKonvid,
  loadLiveVqc,
  loadYoutubeUgc,
} from "./loaders.ts";
export { resolveVideoInputs, type VideoInput } from "./inputs.ts";
