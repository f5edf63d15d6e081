/**
 * Victim VQA models: the three families, creating, saving and loading them.
 *
 * Weights are a safetensors file with a JSON file beside it (`<name>.safetensors`,
 * `<name>.json`); the JSON holds the family, its config and how the weights were made.
 *
 * @example
 * ```ts
 * import { initGpu, loadVictim, readVictimClip } from "../../../mod.ts";
 * await initGpu();
 * const victim = await loadVictim("simplevqa-mini"); // data/models/simplevqa-mini.*
 * const frames = await readVictimClip(victim, "data/samples/astronaut_pan.mkv");
 * console.log((await victim.score(frames).read())[0]);
 * ```
 * @module
 */

import { z } from "zod";
import { basename, dirname, join } from "path";
import { fileURLToPath } from "url";
import { checkRegularFile } from "../../_fs.ts";
import { formatZodError, type SameShape, type Schema } from "../../_zod.ts";
import {
  assignSafetensors,
  encodeSafetensors,
  readSafetensorsFile,
  safetensorsBytes,
  writeFilesAtomic,
} from "../../io/safetensors.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { readVideo } from "../../video/read.ts";
import {
  FASTVQA_MINI_DEFAULTS,
  FastVqaMini,
  FastVqaMiniConfigSchema,
  fastVqaMiniSize,
} from "./fastvqa_mini.ts";
import {
  SIMPLEVQA_MINI_DEFAULTS,
  SimpleVqaMini,
  SimpleVqaMiniConfigSchema,
  simpleVqaMiniSize,
} from "./simplevqa_mini.ts";
import {
  checkModelSize,
  ModelConfigError,
  type ModelSize,
  parseModelConfig,
  type Victim,
  VICTIM_FAMILIES,
  type VictimFamily,
} from "./victim.ts";
import { VSFA_MINI_DEFAULTS, VsfaMini, VsfaMiniConfigSchema, vsfaMiniSize } from "./vsfa_mini.ts";
import { Vsfa, VSFA_DEFAULTS, VsfaConfigSchema, vsfaSize } from "./vsfa.ts";
import {
  VSFA_MOBILENET_V2_DEFAULTS,
  VsfaMobileNetV2,
  VsfaMobileNetV2ConfigSchema,
  vsfaMobileNetV2Size,
} from "./vsfa_mobilenet_v2.ts";
import {
  SimpleVqa,
  SIMPLEVQA_DEFAULTS,
  SimpleVqaConfigSchema,
  simpleVqaSize,
} from "./simplevqa.ts";
import {
  FAST_VQA_DEFAULTS,
  FASTER_VQA_DEFAULTS,
  FastVqa,
  FastVqaConfigSchema,
  fastVqaSize,
} from "./fast_vqa.ts";
import { Dover, DOVER_DEFAULTS, DoverConfigSchema, doverSize } from "./dover.ts";
import {
  assignPublishedWeights,
  matchPublishedWeights,
  PUBLISHED_WEIGHTS,
  readPublishedWeights,
} from "./published.ts";
import {
  PUBLISHED_FAMILIES,
  type PublishedFamily,
  TRAINABLE_FAMILIES,
  type TrainableFamily,
} from "./victim.ts";

export { FastVqaMini, type FastVqaMiniConfig, fragments } from "./fastvqa_mini.ts";
export { SimpleVqaMini, type SimpleVqaMiniConfig } from "./simplevqa_mini.ts";
export { VsfaMini, type VsfaMiniConfig } from "./vsfa_mini.ts";
export {
  MOBILENET_V2_NSFWJS,
  VSFA_MOBILENET_V2_DEFAULTS,
  VsfaMobileNetV2,
  type VsfaMobileNetV2Config,
  VsfaMobileNetV2ConfigSchema,
} from "./vsfa_mobilenet_v2.ts";
export {
  MDTVSFA_DATASETS,
  type MdtvsfaDataset,
  type MdtvsfaOutput,
  Vsfa,
  VSFA_DEFAULTS,
  type VsfaConfig,
  type VsfaVariant,
} from "./vsfa.ts";
export { type ResNetConfig } from "./resnet.ts";
export {
  FAST_VQA_DEFAULTS,
  FASTER_VQA_DEFAULTS,
  FastVqa,
  type FastVqaConfig,
  FastVqaConfigSchema,
  type FragmentViewConfig,
} from "./fast_vqa.ts";
export {
  type AestheticViewConfig,
  Dover,
  DOVER_DEFAULTS,
  DOVER_FUSION,
  type DoverConfig,
  DoverConfigSchema,
  type DoverPlan,
} from "./dover.ts";
export { SWIN_T_FRAGMENTS, type SwinConfig } from "./swin3d.ts";
export { type SampledView, SampledViewStream, SampledViewVictim } from "./sampled_views.ts";
export { CONVNEXT3D_TINY, type ConvNext3dConfig } from "./convnext3d.ts";
export {
  type FragmentGrid,
  type FragmentPlan,
  fragmentPlan,
  fragmentView,
  type TemporalSampling,
} from "./fragments.ts";
export {
  SimpleVqa,
  SIMPLEVQA_DEFAULTS,
  type SimpleVqaConfig,
  simpleVqaSeconds,
} from "./simplevqa.ts";
export {
  buildSlowFastParams,
  isPytorchvideoSlowFast,
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
} from "./slowfast.ts";
export {
  buildMobileNetV2Params,
  MobileNetV2,
  mobileNetV2Channels,
  type MobileNetV2Config,
  mobileNetV2FromKeras,
} from "./mobilenet_v2.ts";
export {
  assignPublishedWeights,
  matchPublishedWeights,
  PUBLISHED_WEIGHTS,
  readPublishedWeights,
  type Sourced,
} from "./published.ts";
export { type HysteresisOptions, hysteresisPool } from "./hysteresis.ts";
export { boundScore, type BoundScoreOptions } from "./bound.ts";
export {
  type BaseConfig,
  MAX_MODEL_WIDTH,
  MAX_PARAMETER_BYTES,
  ModelConfigError,
  ParamBuilder,
  PUBLISHED_FAMILIES,
  type PublishedBaseConfig,
  type PublishedFamily,
  type StreamOptions,
  TRAINABLE_FAMILIES,
  type TrainableFamily,
  type Victim,
  VICTIM_FAMILIES,
  type VictimFamily,
  type VictimStream,
  type VictimStreamResult,
} from "./victim.ts";

/** Where the bundled weights live: `data/models` of this repository.
 *
 * @example
 * ```ts
 * import { join } from "path";
 * import { MODELS_DIR } from "./mod.ts";
 * console.log(join(MODELS_DIR, "vsfa-mini.json"));
 * ```
 */
export const MODELS_DIR: string = fileURLToPath(new URL("../../../data/models/", import.meta.url));

/**
 * The JSON file beside a victim's weights.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { type VictimFile, VictimFileSchema } from "./mod.ts";
 * const text = await Deno.readTextFile("data/models/vsfa-mini.json");
 * const file: VictimFile = VictimFileSchema.parse(JSON.parse(text));
 * assert.equal(file.family, "vsfa-mini");
 * ```
 */
export interface VictimFile {
  /** The family. */
  family: VictimFamily;
  /** The family's config (validated again by the family's own schema). */
  config: Record<string, unknown>;
  /** How the weights were made: command, seed, date, duration, steps (free form). */
  training?: Record<string, unknown>;
  /** Test-split metrics (free form: srcc, krcc, plcc, rmse, n). */
  test?: Record<string, unknown>;
  /** Other fields are kept as they are. */
  [field: string]: unknown;
}

const victimFile = z.object({
  family: z.enum(VICTIM_FAMILIES),
  config: z.record(z.unknown()),
  training: z.record(z.unknown()).optional(),
  test: z.record(z.unknown()).optional(),
}).passthrough();
const _sameFile: SameShape<VictimFile, z.output<typeof victimFile>> = true;

/**
 * Validates a {@link VictimFile} (fields it does not name are kept).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { VictimFileSchema } from "./mod.ts";
 * assert.equal(VictimFileSchema.safeParse({ family: "resnet", config: {} }).success, false);
 * ```
 */
export const VictimFileSchema: Schema<VictimFile> = victimFile;

/**
 * A fresh (untrained) victim of a family; the config overrides the family's defaults.
 *
 * @example
 * ```ts
 * import { createVictim, initGpu } from "../../../mod.ts";
 * await initGpu();
 * const v = createVictim("vsfa-mini", { seed: 7, config: { channels: [8, 16] } });
 * ```
 */
export function createVictim(
  family: VictimFamily,
  options: { seed?: number; config?: Record<string, unknown>; name?: string } = {},
): Victim {
  switch (family) {
    case "vsfa-mini":
      return new VsfaMini(options);
    case "simplevqa-mini":
      return new SimpleVqaMini(options);
    case "fastvqa-mini":
      return new FastVqaMini(options);
    case "vsfa-mobilenetv2":
      return new VsfaMobileNetV2(options);
    case "vsfa":
    case "mdtvsfa":
      return new Vsfa(family, options);
    case "simplevqa":
      return new SimpleVqa(options);
    case "fast-vqa":
    case "faster-vqa":
      return new FastVqa(family, options);
    case "dover":
      return new Dover(options);
    default:
      throw new RangeError(
        `unknown victim family '${family}' (known: ${VICTIM_FAMILIES.join(", ")})`,
      );
  }
}

/** The largest victim config JSON {@link loadVictim} reads (1 MiB). */
const MAX_CONFIG_BYTES = 2 ** 20;

/**
 * Validates a victim config for `family` (overrides on top of the family's defaults) and checks
 * that it fits, for `batch` clips per forward pass, before anything is allocated: every field
 * within its bounds, the parameters within `MAX_PARAMETER_BYTES` and each within one GPU buffer
 * of the adapter (once `initGpu` has run), the largest activation within one buffer. Returns
 * the full config and its sizes.
 *
 * @throws {ModelConfigError} one line naming the field and value, e.g. `vsfa-mini config:
 *   hidden: Number must be less than or equal to 4096`.
 * @example
 * ```ts
 * import { checkVictimConfig } from "./mod.ts";
 * const { size } = checkVictimConfig("vsfa-mini", { hidden: 32 }, { batch: 8 });
 * ```
 */
export function checkVictimConfig(
  family: VictimFamily,
  overrides: Record<string, unknown> = {},
  options: { batch?: number } = {},
): { config: Record<string, unknown>; size: ModelSize } {
  const batch = options.batch ?? 1;
  const spec = {
    "vsfa-mini": {
      schema: VsfaMiniConfigSchema,
      defaults: VSFA_MINI_DEFAULTS,
      // deno-lint-ignore no-explicit-any
      size: (c: any) => vsfaMiniSize(c, batch),
    },
    "simplevqa-mini": {
      schema: SimpleVqaMiniConfigSchema,
      defaults: SIMPLEVQA_MINI_DEFAULTS,
      // deno-lint-ignore no-explicit-any
      size: (c: any) => simpleVqaMiniSize(c, batch),
    },
    "fastvqa-mini": {
      schema: FastVqaMiniConfigSchema,
      defaults: FASTVQA_MINI_DEFAULTS,
      // deno-lint-ignore no-explicit-any
      size: (c: any) => fastVqaMiniSize(c, batch),
    },
    "vsfa-mobilenetv2": {
      schema: VsfaMobileNetV2ConfigSchema,
      defaults: VSFA_MOBILENET_V2_DEFAULTS,
      // deno-lint-ignore no-explicit-any
      size: (c: any) => vsfaMobileNetV2Size(c),
    },
    "vsfa": {
      schema: VsfaConfigSchema,
      defaults: VSFA_DEFAULTS,
      // deno-lint-ignore no-explicit-any
      size: (c: any) => vsfaSize("vsfa", c),
    },
    "mdtvsfa": {
      schema: VsfaConfigSchema,
      defaults: VSFA_DEFAULTS,
      // deno-lint-ignore no-explicit-any
      size: (c: any) => vsfaSize("mdtvsfa", c),
    },
    "simplevqa": {
      schema: SimpleVqaConfigSchema,
      defaults: SIMPLEVQA_DEFAULTS,
      // deno-lint-ignore no-explicit-any
      size: (c: any) => simpleVqaSize(c),
    },
    "fast-vqa": {
      schema: FastVqaConfigSchema,
      defaults: FAST_VQA_DEFAULTS,
      // deno-lint-ignore no-explicit-any
      size: (c: any) => fastVqaSize(c),
    },
    "faster-vqa": {
      schema: FastVqaConfigSchema,
      defaults: FASTER_VQA_DEFAULTS,
      // deno-lint-ignore no-explicit-any
      size: (c: any) => fastVqaSize(c),
    },
    "dover": {
      schema: DoverConfigSchema,
      defaults: DOVER_DEFAULTS,
      // deno-lint-ignore no-explicit-any
      size: (c: any) => doverSize(c),
    },
  }[family];
  if (!spec) {
    throw new ModelConfigError(
      `unknown victim family '${family}' (known: ${VICTIM_FAMILIES.join(", ")})`,
    );
  }
  const config = parseModelConfig(family, spec.schema, spec.defaults, overrides);
  checkModelSize(family, spec.size, { config, defaults: spec.defaults, overrides });
  return { config, size: spec.size(config) };
}

/** The safetensors and JSON paths for a bundled name or a path to either file (or their stem).
 *
 * @example
 * ```ts
 * import { victimPaths } from "./mod.ts";
 * victimPaths("out/v.safetensors"); // { weights: "out/v.safetensors", json: "out/v.json" }
 * ```
 */
export function victimPaths(nameOrPath: string): { weights: string; json: string } {
  let stem = nameOrPath;
  if (
    !nameOrPath.includes("/") && !nameOrPath.includes("\\") &&
    !/\.(json|safetensors)$/.test(nameOrPath)
  ) {
    stem = join(MODELS_DIR, nameOrPath);
  }
  stem = stem.replace(/\.(json|safetensors)$/, "");
  return { weights: `${stem}.safetensors`, json: `${stem}.json` };
}

/** Options of {@link loadVictim}. */
export interface LoadVictimOptions {
  /**
   * A published family's weight files, as their authors publish them (PyTorch checkpoints in
   * the zip or legacy format, or safetensors), e.g. `["VSFA.pt", "resnet50-19c8e357.pth"]`.
   * Required for a published family's name (`vsfa`, `mdtvsfa`); refused otherwise (a weights
   * pair carries its own file).
   */
  weights?: readonly string[];
  /** Config overrides of a published family (e.g. `{ output: "K" }` for MDTVSFA). */
  config?: Record<string, unknown>;
}

/**
 * Loads a victim: a bundled name (`vsfa-mini`, `simplevqa-mini`, `fastvqa-mini`, from
 * data/models), the path of a `.safetensors` / `.json` pair, or a published family's name
 * (`vsfa`, `mdtvsfa`) with its authors' weight files in `options.weights` (read without
 * Python; see published.ts). The parameters do not require gradients (the victim is frozen;
 * gradients still flow to the input frames).
 *
 * @throws {Error} naming the file when one is missing or malformed, and the tensor (with both
 * shapes and its file) when the weights do not match the model.
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu, loadVictim } from "../../../mod.ts";
 * await initGpu();
 * const v = await loadVictim("vsfa-mini");
 * const w = await loadVictim("data/models/vsfa-mini.safetensors"); // the same, by path
 * assert.deepEqual(w.config, v.config);
 * // A published model from its authors' files:
 * // await loadVictim("vsfa", { weights: ["VSFA.pt", "resnet50-19c8e357.pth"] });
 * ```
 */
export async function loadVictim(
  nameOrPath: string,
  options: LoadVictimOptions = {},
): Promise<Victim> {
  if (PUBLISHED_FAMILIES.includes(nameOrPath as PublishedFamily)) {
    return await loadPublished(nameOrPath as PublishedFamily, options);
  }
  if (options.weights?.length || options.config) {
    throw new Error(
      `loadVictim: weight files and config overrides are for a published family ` +
        `(${PUBLISHED_FAMILIES.join(", ")}); ${nameOrPath} is a weights pair with its own`,
    );
  }
  const { weights, json } = victimPaths(nameOrPath);
  // A path (a bare name is a bundled one) that is a folder: say so, not "no config at <dir>/.json".
  if (
    /[\\/]/.test(nameOrPath) && await Deno.stat(nameOrPath).then((i) => i.isDirectory, () => false)
  ) {
    throw new Error(
      `loadVictim: ${nameOrPath} is a folder; give a victim's .safetensors or .json file, or their stem`,
    );
  }
  let text: string;
  try {
    const bytes = await checkRegularFile(json, "victim config");
    if (bytes > MAX_CONFIG_BYTES) {
      throw new Error(`${json}: ${bytes} bytes, too large for a victim config`);
    }
    text = await Deno.readTextFile(json);
  } catch (e) {
    if (e instanceof Error && /: no such victim config$/.test(e.message)) {
      const hint = TRAINABLE_FAMILIES.includes(nameOrPath as TrainableFamily)
        ? ` (train it with \`deno task train-victim --model ${nameOrPath}\`)`
        : ` (known bundled victims: ${TRAINABLE_FAMILIES.join(", ")}; published models, ` +
          `with --weights: ${PUBLISHED_FAMILIES.join(", ")})`;
      throw new Error(`loadVictim: no victim config at ${json}${hint}`);
    }
    throw new Error(`loadVictim: ${(e as Error).message}`);
  }
  let file: VictimFile;
  try {
    const parsed = VictimFileSchema.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(formatZodError(parsed.error));
    file = parsed.data;
  } catch (e) {
    throw new Error(`loadVictim: ${json} is not a valid victim config: ${(e as Error).message}`);
  }
  let victim: Victim;
  try {
    victim = createVictim(file.family, {
      config: file.config,
      name: basename(weights, ".safetensors"),
    });
  } catch (e) {
    throw new Error(`loadVictim: ${json}: bad ${(e as Error).message}`);
  }
  try {
    await checkRegularFile(weights, "weights file");
  } catch (e) {
    victim.dispose();
    if (e instanceof Error && /: no such weights file$/.test(e.message)) {
      throw new Error(`loadVictim: no weights file at ${weights} (config ${json} found)`);
    }
    throw new Error(`loadVictim: ${(e as Error).message}`);
  }
  try {
    // Read and validated (sizes, finite values) before anything is copied into the model.
    const { tensors } = await readSafetensorsFile(weights, { what: "weights file" });
    try {
      assignSafetensors(weights, tensors, victim.parameters());
    } catch (e) {
      throw new Error(
        `the weights do not match the ${file.family} config in ${json}: ${(e as Error).message}`,
      );
    }
  } catch (e) {
    victim.dispose();
    throw new Error(`loadVictim: ${(e as Error).message}`);
  }
  for (const p of Object.values(victim.parameters())) p.requiresGrad = false;
  return victim;
}

/** A published family from its authors' files (see {@link loadVictim}). */
async function loadPublished(
  family: PublishedFamily,
  options: LoadVictimOptions,
): Promise<Victim> {
  const files = options.weights ?? [];
  if (files.length === 0) {
    throw new Error(
      `loadVictim: ${family} needs its weight files (--weights a,b): ${
        PUBLISHED_WEIGHTS[family].files
      }`,
    );
  }
  for (const f of files) {
    await checkRegularFile(f, "weights file").catch((e) => {
      throw new Error(`loadVictim: ${(e as Error).message}`);
    });
  }
  let victim: Victim;
  try {
    victim = createVictim(family, { config: options.config });
  } catch (e) {
    throw new Error(`loadVictim: bad ${(e as Error).message}`);
  }
  try {
    assignPublishedWeights(family, await readPublishedWeights(files), victim.parameters());
  } catch (e) {
    victim.dispose();
    throw new Error(`loadVictim: ${(e as Error).message}`);
  }
  for (const p of Object.values(victim.parameters())) p.requiresGrad = false;
  return victim;
}

/**
 * A published victim's weights pair, made on the CPU from its authors' files (no GPU needed):
 * the tensors matched against the family's parameter shapes (see `matchPublishedWeights`) as
 * a safetensors file's bytes, and the JSON that goes beside it (family, full config, `extra`),
 * which {@link loadVictim} then reads like a bundled victim's pair.
 *
 * @throws {Error} naming the file and tensor, as {@link loadVictim} with `weights`.
 * @example
 * ```ts ignore
 * import { publishedVictimPair } from "./mod.ts";
 * const pair = await publishedVictimPair("vsfa", ["VSFA.pt", "resnet50-19c8e357.pth"]);
 * await Deno.writeFile("vsfa.safetensors", pair.weights);
 * await Deno.writeTextFile("vsfa.json", JSON.stringify(pair.json, null, 2));
 * ```
 */
export async function publishedVictimPair(
  family: PublishedFamily,
  files: readonly string[],
  options: { config?: Record<string, unknown>; extra?: Record<string, unknown> } = {},
): Promise<{ weights: Uint8Array<ArrayBuffer>; json: VictimFile; tensors: number }> {
  const { config, size } = checkVictimConfig(family, options.config ?? {});
  const tensors = matchPublishedWeights(family, await readPublishedWeights(files), size.shapes);
  return {
    weights: encodeSafetensors(tensors, { family }),
    json: { family, config, ...options.extra },
    tensors: Object.keys(tensors).length,
  };
}

/**
 * Saves a victim's weights and its JSON config; `extra` adds fields such as `training` and
 * `test` to the JSON. Both are written to temporary files first and then renamed into place, so
 * a failure leaves the old pair (or nothing). Existing files are replaced: a command checks its
 * output first (`prepareWeightsOutput` in src/io/checkpoint.ts).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { createVictim, initGpu, saveVictim } from "../../../mod.ts";
 * await initGpu();
 * const v = createVictim("vsfa-mini", { seed: 1 });
 * const dir = await Deno.makeTempDir();
 * const { json } = await saveVictim(v, `${dir}/vsfa-test.safetensors`, { training: { seed: 1 } });
 * assert.equal(JSON.parse(await Deno.readTextFile(json)).family, "vsfa-mini");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveVictim(
  victim: Victim,
  path: string,
  extra: Record<string, unknown> = {},
): Promise<{ weights: string; json: string }> {
  const { weights, json } = victimPaths(/[\\/]/.test(path) ? path : `./${path}`);
  await Deno.mkdir(dirname(weights), { recursive: true });
  const bytes = await safetensorsBytes(weights, victim.parameters(), { family: victim.family });
  const body: VictimFile = { family: victim.family, config: { ...victim.config }, ...extra };
  await writeFilesAtomic([
    { path: weights, data: bytes },
    { path: json, data: JSON.stringify(body, null, 2) + "\n" },
  ]);
  return { weights, json };
}

/**
 * Reads a clip the way a victim was trained on it: at most `config.frames` frames, scaled to
 * `config.width x config.height` when those are set. Returns `[T,3,H,W]` in [0,1].
 *
 * @example
 * ```ts
 * import { initGpu, loadVictim, readVictimClip } from "../../../mod.ts";
 * await initGpu();
 * const v = await loadVictim("fastvqa-mini");
 * const frames = await readVictimClip(v, "data/samples/astronaut_pan.mkv");
 * ```
 */
export function readVictimClip(victim: Victim, path: string): Promise<Tensor> {
  const c = victim.config;
  const size = c.width && c.height ? { width: c.width, height: c.height } : undefined;
  return readVideo(path, { maxFrames: c.frames, size });
}
