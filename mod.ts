/**
 * STQA: adversarial attacks on video quality assessment models, on WebGPU.
 *
 * The scripting API, in the order data flows through it:
 * - the GPU context (`initGpu`), tensors with autograd (`tensor`, `tidy`, `noGrad`,
 *   `Tensor#backward`), the functional op namespace `nn`, optimisers (`Adam`, `SGD`), seeded
 *   initialisers and safetensors I/O;
 * - video in and out through ffmpeg (`probeVideo`, `readVideo`, `readVideoChunks`, `writeVideo`);
 * - JND maps (`computeJnd`);
 * - datasets (`buildProxyDataset`, the real-dataset loaders) and victim VQA models (`loadVictim`);
 * - correlation and imperceptibility metrics (`srcc`, `correlationReport`, `psnr`, `ssim`);
 * - attacks: the STQA-Net generator (`StqaNet`, `trainGenerator`, `loadGenerator`, `attackVideo`)
 *   and the iterative baselines (`fgsm`, `ifgsm`, `zhang2023`, `korhonen`, `randomAttack`).
 *
 * @example
 * ```ts
 * import { initGpu, nn, tensor } from "./mod.ts";
 * await initGpu();
 * const w = tensor([0.5, -0.25], [2], { requiresGrad: true });
 * const x = tensor([1, 2, 3, 4], [2, 2]);
 * const loss = nn.sum(nn.square(nn.mul(x, w)));
 * loss.backward();
 * console.log(await w.grad!.read());
 * ```
 * @module
 */

export {
  type AdapterSummary,
  EXIT_NO_ADAPTER,
  type GpuContext,
  initGpu,
  NoAdapterError,
} from "./src/gpu/device.ts";
export { GpuOpError } from "./src/gpu/errors.ts";
export { type PoolStats, poolStats, trimPool } from "./src/gpu/pool.ts";
export { queueStats, syncGpu } from "./src/gpu/queue.ts";
export {
  empty,
  full,
  type GradNode,
  isGradEnabled,
  noGrad,
  type Shape,
  Tensor,
  tensor,
  tidy,
} from "./src/tensor/tensor.ts";
export * as nn from "./src/nn/mod.ts";
export { Adam, type AdamOptions, SGD, type SGDOptions } from "./src/optim/optimizers.ts";
export {
  calculateGain,
  fans,
  type InitOptions,
  kaimingNormal,
  type KaimingOptions,
  kaimingUniform,
  type Nonlinearity,
  xavierNormal,
  type XavierOptions,
  xavierUniform,
  zeros,
} from "./src/nn/init.ts";
export * as init from "./src/nn/init.ts";
export {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  type SafetensorsContents,
  SafetensorsError,
  safetensorsMetadata,
  saveSafetensors,
  type TensorData,
} from "./src/io/safetensors.ts";
export {
  checkVideoFile,
  type ConvertOn,
  decodedSize,
  FfmpegNotFoundError,
  type FrameCountSource,
  isVideoPath,
  listVideoFiles,
  type ProbeOptions,
  probeVideo,
  readVideo,
  readVideoChunks,
  type ReadVideoChunksOptions,
  type ReadVideoOptions,
  type SkippedEntry,
  VIDEO_EXTENSIONS,
  type VideoChunk,
  type VideoCodec,
  VideoError,
  type VideoFileList,
  type VideoInfo,
  writeFramePng,
  type WriteFramePngOptions,
  writeVideo,
  type WriteVideoOptions,
  type WriteVideoResult,
} from "./src/video/mod.ts";
export {
  computeJnd,
  type ComputeJndOptions,
  DEFAULT_JND_MODEL,
  DEFAULT_VIDEO_JND_MODEL,
  JND_MODELS,
  jndHeatmap,
  type JndHeatmapOptions,
  type JndModel,
} from "./src/jnd/mod.ts";
export {
  createVictim,
  FastVqaMini,
  fragments,
  type HysteresisOptions,
  hysteresisPool,
  loadVictim,
  MODELS_DIR,
  readVictimClip,
  saveVictim,
  SimpleVqaMini,
  type Victim,
  VICTIM_FAMILIES,
  type VictimFamily,
  type VictimFile,
  VsfaMini,
} from "./src/models/victims/mod.ts";
export {
  evaluateVictim,
  fitVictim,
  type FitVictimOptions,
  type FitVictimResult,
  loadVictimClips,
  NonFiniteLossError,
  type TrainProgress,
  trainVictim,
  type TrainVictimOptions,
  type TrainVictimResult,
  type VictimMetrics,
} from "./src/train/victim.ts";
export {
  buildProxyDataset,
  type BuildProxyOptions,
  type BuildProxyResult,
  type ClipRecord,
  CsvSyntaxError,
  DATASET_FORMATS,
  DatasetError,
  type DatasetFormat,
  type DatasetItem,
  DEFAULT_MOS_RANGE,
  DEFAULT_PROXY_DIR,
  type Distortion,
  DISTORTIONS,
  type GenericManifestOptions,
  LABEL_FORMULA,
  loadDataset,
  type LoadedDataset,
  type LoadedManifest,
  type LoaderOptions,
  loadGenericManifest,
  loadKonvid,
  loadLiveVqc,
  loadManifest,
  type LoadManifestOptions,
  loadYoutubeUgc,
  parseCsv,
  type ProxyManifest,
  ProxyManifestSchema,
  type ProxyProgress,
  SOURCE_IMAGE_LIMITS,
  type Split,
  SPLITS,
  ssimToLabel,
} from "./src/data/mod.ts";
export {
  type CorrelationReport,
  correlationReport,
  fitLogistic4,
  krcc,
  type Logistic4,
  logistic4,
  plcc,
  rankAverage,
  rmse,
  srcc,
} from "./src/metrics/correlation.ts";
export {
  JND_TOLERANCE,
  type PerturbationStats,
  perturbationStats,
  type PerturbationStatsOptions,
  psnr,
  type PsnrOptions,
  ssim,
  type SsimOptions,
  type VideoQuality,
  videoQuality,
} from "./src/metrics/quality.ts";
// Baseline attacks
export {
  activityMap,
  type ActivityMapOptions,
  BASELINE_ATTACKS,
  baselineAttack,
  boundaryGradient,
  createIfgsm,
  createKorhonen,
  createRandomAttack,
  createZhang2023,
  fgsm,
  ifgsm,
  type IfgsmOptions,
  korhonen,
  type KorhonenOptions,
  projectRms,
  randomAttack,
  type RandomAttackOptions,
  type RandomNoise,
  zhang2023,
  type Zhang2023Options,
} from "./src/attack/baselines/mod.ts";
// STQA-Net: the generator, its files, training and attacks
export {
  StqaNet,
  type StqaNetConfig,
  StqaNetConfigSchema,
  type StqaNetForwardOptions,
  type StqaNetOutput,
} from "./src/models/stqa_net.ts";
export {
  bundledGeneratorName,
  type Generator,
  type GeneratorFile,
  GeneratorFileSchema,
  type GeneratorInfo,
  generatorPaths,
  loadGenerator,
  saveGenerator,
} from "./src/models/generator_io.ts";
export {
  type Attack,
  ATTACK_MODES,
  type AttackMode,
  type AttackOptions,
  type AttackOutput,
} from "./src/attack/types.ts";
export { attackTarget, boundaryLoss, type ScoreScale, weightPenalty } from "./src/attack/losses.ts";
export { applyPerturbation, clipToJnd } from "./src/attack/perturb.ts";
export {
  attackWithGenerator,
  type AttackWithGeneratorOptions,
  branchFor,
  generatorPerturb,
  type GeneratorPerturbOptions,
  type GeneratorPerturbResult,
  quantizeInJnd,
  stqaAttack,
} from "./src/attack/stqa.ts";
export {
  evaluateGenerator,
  GeneratorLossError,
  type GeneratorTestResult,
  loadTrainClips,
  type TrainClip,
  trainGenerator,
  type TrainGeneratorOptions,
  type TrainGeneratorResult,
} from "./src/train/generator.ts";
export { attackVideo, type AttackVideoOptions } from "./src/attack/video.ts";
export {
  type AttackReport,
  AttackReportSchema,
  type AttackRun,
  AttackRunSchema,
  type AttackSettings,
  attackSettingsDiff,
  AttackSettingsSchema,
  parseAttackReport,
} from "./src/attack/report.ts";
// HTML reports
export {
  type AttackPanels,
  attackPanels,
  type FramePanel,
  type KeptFrame,
  type PanelImage,
  panelsAsUris,
  shownFrames,
  type UriPanels,
} from "./src/attack/panels.ts";
export { attackReportFiles, attackReportHtml, framePanelsHtml } from "./src/report/attack_html.ts";
export { evalReportHtml, type EvalReportOptions } from "./src/report/eval_html.ts";
export { encodePng, pngDataUri, type RgbImage } from "./src/video/png.ts";
// Robustness evaluation
export {
  type Accuracy,
  buildTable,
  crossSource,
  EVAL_METHODS,
  type EvalMethod,
  type EvalRow,
  EvalRowSchema,
  type EvalRowSettings,
  EvalRowSettingsSchema,
  flattenRow,
  labelMedian,
  msuRobustness,
  rowKey,
  type ScoreRange,
  TABLE_COLUMNS,
  tableCsv,
  tableMarkdown,
  type TableRow,
  zhangR,
} from "./src/eval/robustness.ts";
export {
  evaluateVideo,
  type EvaluateVideoOptions,
  type EvalVideo,
  inJndBox,
  JND_BOX_METHODS,
  quantizeLevels,
} from "./src/eval/evaluate.ts";
export {
  parsePsnrStats,
  parseSsimYStats,
  ROUND_TRIP_CRF,
  roundTrip,
  type RoundTripResult,
  writeReference,
} from "./src/eval/roundtrip.ts";
export {
  evalMarkdown,
  readRowFiles,
  readRows,
  removeEvalOutputs,
  rowsFileName,
  writeTables,
} from "./src/eval/rows.ts";
export {
  type EvalExample,
  EvalExampleSchema,
  readExamples,
  writeExample,
} from "./src/eval/examples.ts";
export {
  type CrossCell,
  type CrossTable,
  crossVictimMarkdown,
  crossVictimTable,
  UPLOAD_COLUMNS,
  uploadMarkdown,
  type UploadRow,
  uploadRows,
} from "./src/eval/transfer.ts";
export { resolveEvalVideos } from "./src/eval/videos.ts";
