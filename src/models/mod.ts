/**
 * The models: victim VQA models (three small families, created, saved and loaded as
 * safetensors with a JSON file beside them) and STQA-Net, the attack generator, with its files.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu, tensor } from "../../mod.ts";
 * import { loadVictim } from "./mod.ts";
 * await initGpu();
 * const victim = await loadVictim("vsfa-mini"); // data/models/vsfa-mini.*
 * const frames = tensor(new Float32Array(2 * 3 * 32 * 32).fill(0.5), [2, 3, 32, 32]);
 * const score = await victim.score(frames).read();
 * assert.equal(score.length, 1);
 * ```
 * @module
 */

export {
  type AestheticViewConfig,
  assignPublishedWeights,
  type BaseConfig,
  buildSlowFastParams,
  CONVNEXT3D_TINY,
  type ConvNext3dConfig,
  createVictim,
  Dover,
  DOVER_DEFAULTS,
  DOVER_FUSION,
  type DoverConfig,
  type DoverPlan,
  FAST_VQA_DEFAULTS,
  FASTER_VQA_DEFAULTS,
  FastVqa,
  type FastVqaConfig,
  FastVqaMini,
  type FastVqaMiniConfig,
  type FragmentGrid,
  type FragmentPlan,
  fragmentPlan,
  fragments,
  fragmentView,
  type FragmentViewConfig,
  type HysteresisOptions,
  hysteresisPool,
  isPytorchvideoSlowFast,
  loadVictim,
  type LoadVictimOptions,
  MDTVSFA_DATASETS,
  type MdtvsfaDataset,
  type MdtvsfaOutput,
  MobileNetV2,
  type MobileNetV2Config,
  mobileNetV2FromKeras,
  MODELS_DIR,
  ParamBuilder,
  PUBLISHED_FAMILIES,
  PUBLISHED_WEIGHTS,
  type PublishedBaseConfig,
  type PublishedFamily,
  readPublishedWeights,
  readVictimClip,
  type ResNetConfig,
  type SampledView,
  SampledViewStream,
  SampledViewVictim,
  saveVictim,
  SimpleVqa,
  type SimpleVqaConfig,
  SimpleVqaMini,
  type SimpleVqaMiniConfig,
  simpleVqaPool,
  type SimpleVqaPoolOptions,
  SlowFast,
  SLOWFAST_ALPHA,
  SLOWFAST_MEAN,
  SLOWFAST_R50,
  SLOWFAST_STD,
  slowFastChannels,
  type SlowFastConfig,
  SlowFastConfigSchema,
  type SlowFastMaps,
  slowFastNormalize,
  slowFrameIndices,
  slowPathway,
  type Sourced,
  type StreamOptions,
  SWIN_T_FRAGMENTS,
  type SwinConfig,
  type TemporalSampling,
  TRAINABLE_FAMILIES,
  type TrainableFamily,
  type Victim,
  VICTIM_FAMILIES,
  type VictimFamily,
  type VictimFile,
  type VictimStream,
  type VictimStreamResult,
  Vsfa,
  type VsfaConfig,
  VsfaMini,
  type VsfaMiniConfig,
  type VsfaVariant,
} from "./victims/mod.ts";
export {
  GENERATOR_VARIANTS,
  type GeneratorVariant,
  StqaNet,
  type StqaNetConfig,
  StqaNetConfigSchema,
  type StqaNetForwardOptions,
  type StqaNetOutput,
  type TileGrid,
} from "./stqa_net.ts";
export {
  bundledGeneratorName,
  type Generator,
  type GeneratorFile,
  GeneratorFileSchema,
  type GeneratorInfo,
  generatorPaths,
  loadGenerator,
  saveGenerator,
} from "./generator_io.ts";
