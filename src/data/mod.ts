/**
 * Datasets: the proxy dataset built with ffmpeg from still images (`buildProxyDataset`, read back
 * with `loadManifest`), and loaders for real VQA datasets as their authors ship them (KoNViD-1k,
 * LIVE-VQC, YouTube-UGC) and for a generic CSV/JSON manifest. Every loader returns
 * `{ items: [{ path, mos }], missing }`.
 *
 * @example
 * ```ts
 * import { buildProxyDataset, loadManifest } from "./mod.ts";
 * await buildProxyDataset(); // cache/proxy/manifest.json, skipped when up to date
 * const train = await loadManifest("cache/proxy/manifest.json", { splits: ["train"] });
 * const test = await loadManifest("cache/proxy/manifest.json", { splits: ["test"] });
 * console.log(train.items.length, test.items.length);
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
