/**
 * Trained STQA-Net generators on disk: `<stem>.safetensors` (the weights) and `<stem>.json`
 * (the config, the victim it was trained against, the JND model, eps, the score scale and
 * median that set the untargeted boundary, and how it was made).
 *
 * Bundled generators live in data/models as `stqa-<victim>` (two-branch, the default),
 * `stqa-<victim>-signed` (signed) and `stqa-<victim>-paper` (the paper's untargeted variant).
 *
 * @module
 */

import { basename, dirname, join } from "path";
import { z } from "zod";
import { checkRegularFile } from "../_fs.ts";
import { formatZodError, type SameShape, type Schema } from "../_zod.ts";
import { JND_MODELS, type JndModel } from "../jnd/models.ts";
import {
  assignSafetensors,
  readSafetensorsFile,
  safetensorsBytes,
  writeFilesAtomic,
} from "../io/safetensors.ts";
import {
  type GeneratorVariant,
  StqaNet,
  type StqaNetConfig,
  StqaNetConfigSchema,
} from "./stqa_net.ts";

/** The bundled generators' name suffix per variant. */
const GENERATOR_SUFFIX: Record<GeneratorVariant, string> = {
  "two-branch": "",
  signed: "-signed",
  untargeted: "-paper",
};
import { MODELS_DIR } from "./victims/mod.ts";
import {
  checkModelSize,
  MAX_MODEL_WIDTH,
  ModelConfigError,
  type ModelSize,
  ParamBuilder,
} from "./victims/victim.ts";

/**
 * The JSON beside a generator's weights.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { type GeneratorFile, GeneratorFileSchema } from "./generator_io.ts";
 * const text = await Deno.readTextFile("data/models/stqa-vsfa-mini.json");
 * const info: GeneratorFile = GeneratorFileSchema.parse(JSON.parse(text));
 * assert.deepEqual([info.kind, info.victim], ["stqa-net", "vsfa-mini"]);
 * ```
 */
export interface GeneratorFile {
  /** Always `stqa-net`. */
  kind: "stqa-net";
  /** The network config ({@link StqaNet}'s schema validates it again). */
  config: Record<string, unknown>;
  /** The victim it was trained against: a bundled name or a path. */
  victim: string;
  /** The victim's family (checked against the victim loaded for an attack). */
  victimFamily: string;
  /** The JND model of its training maps. */
  jnd: JndModel;
  /** The eps it was trained at. */
  eps: number;
  /** The victim's score scale. */
  qMin: number;
  /** The victim's score scale. */
  qMax: number;
  /** Median clean score of the training clips (the untargeted boundary's threshold). */
  median: number;
  /** How it was made: command, seed, steps, date, seconds (free form). */
  training?: Record<string, unknown>;
  /** Test-split results (free form). */
  test?: Record<string, unknown>;
  /** Other fields are kept as they are. */
  [field: string]: unknown;
}

const generatorFile = z.object({
  kind: z.literal("stqa-net"),
  config: z.record(z.unknown()),
  victim: z.string().min(1),
  victimFamily: z.string().min(1),
  jnd: z.enum(JND_MODELS),
  eps: z.number().positive(),
  qMin: z.number(),
  qMax: z.number(),
  median: z.number(),
  training: z.record(z.unknown()).optional(),
  test: z.record(z.unknown()).optional(),
}).passthrough();
const _sameFile: SameShape<GeneratorFile, z.output<typeof generatorFile>> = true;

/**
 * Validates a {@link GeneratorFile} (fields it does not name are kept).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { GeneratorFileSchema } from "./generator_io.ts";
 * const r = GeneratorFileSchema.safeParse({ kind: "stqa-net", victim: "vsfa-mini" });
 * assert.equal(r.success, false); // config, victimFamily, jnd, ... missing
 * ```
 */
export const GeneratorFileSchema: Schema<GeneratorFile> = generatorFile;

/** What {@link saveGenerator} writes beside the config. */
export interface GeneratorInfo {
  /** The victim it was trained against: a bundled name or a path. */
  victim: string;
  /** The victim's family. */
  victimFamily: string;
  /** The JND model of its training maps. */
  jnd: JndModel;
  /** The eps it was trained at. */
  eps: number;
  /** The victim's score scale. */
  qMin: number;
  /** The victim's score scale. */
  qMax: number;
  /** Median clean score of the training clips. */
  median: number;
  /** How it was made. */
  training?: Record<string, unknown>;
  /** Test-split results. */
  test?: Record<string, unknown>;
}

/** A loaded generator: the network and its JSON. */
export interface Generator {
  /** The network (frozen after {@link loadGenerator}). */
  net: StqaNet;
  /** Its JSON. */
  info: GeneratorFile;
  /** The weights file it came from. */
  path: string;
}

/** The largest generator config JSON {@link loadGenerator} reads (1 MiB). */
const MAX_CONFIG_BYTES = 2 ** 20;

/**
 * The parameter shapes of an STQA-Net config, without allocating (the same names and shapes as
 * `new StqaNet({ config }).parameters()`; a test checks they agree).
 *
 * @example
 * ```ts
 * import { StqaNetConfigSchema } from "./stqa_net.ts";
 * import { stqaNetSize } from "./generator_io.ts";
 * const { shapes } = stqaNetSize(StqaNetConfigSchema.parse({}));
 * console.log(shapes["gru.x.weight"]); // [192, 64, 3, 3]
 * ```
 */
export function stqaNetSize(c: StqaNetConfig): ModelSize {
  const pb = new ParamBuilder(0, { shapesOnly: true });
  const [e1, e2, e3] = c.encoder;
  pb.conv("enc.0", c.input === "jnd" ? 1 : 4, e1, 3, c.slope);
  pb.conv("enc.1", e1, e2, 3, c.slope);
  pb.conv("enc.2", e2, e3, 3, c.slope);
  pb.conv("gru.x", e3, 3 * c.hidden, 3, 1);
  pb.conv("gru.h", c.hidden, 3 * c.hidden, 3, 1);
  for (const b of c.variant === "two-branch" ? ["up", "down"] : ["dec"]) {
    pb.conv(`${b}.fuse`, e3 + c.hidden, e3, 1, c.slope);
    const sk = c.skips ? [e2, e1] : [0, 0];
    pb.conv(`${b}.dec.0`, e3 + sk[0], c.decoder[0], 3, c.slope);
    pb.conv(`${b}.dec.1`, c.decoder[0] + sk[1], c.decoder[1], 3, c.slope);
    pb.conv(`${b}.out`, c.decoder[1], 3, 3, 1);
  }
  return { shapes: pb.shapes };
}

/**
 * Validates an STQA-Net config (overrides on top of the defaults) and checks that its
 * parameters fit before anything is allocated: widths (`encoder`, `hidden`, `decoder`) at most
 * `MAX_MODEL_WIDTH`, the parameters within `MAX_PARAMETER_BYTES` and each within one GPU
 * buffer of the adapter (once `initGpu` has run). Returns the full config.
 *
 * @throws {ModelConfigError} one line naming the field and value, e.g. `STQA-Net config:
 *   hidden 1000000000: more than 4096`.
 * @example
 * ```ts
 * import { checkGeneratorConfig } from "./generator_io.ts";
 * const config = checkGeneratorConfig({ hidden: 32, encoder: [8, 16, 32] });
 * ```
 */
export function checkGeneratorConfig(overrides: Record<string, unknown> = {}): StqaNetConfig {
  if (overrides === null || typeof overrides !== "object" || Array.isArray(overrides)) {
    throw new ModelConfigError(
      `STQA-Net config: must be an object, got ${JSON.stringify(overrides)}`,
    );
  }
  const parsed = StqaNetConfigSchema.safeParse(overrides);
  if (!parsed.success) {
    throw new ModelConfigError(`STQA-Net config: ${formatZodError(parsed.error)}`);
  }
  const c = parsed.data;
  const widths: [string, number[]][] = [
    ["encoder", c.encoder],
    ["hidden", [c.hidden]],
    ["decoder", c.decoder],
  ];
  for (const [field, values] of widths) {
    const bad = values.find((v) => v > MAX_MODEL_WIDTH);
    if (bad !== undefined) {
      throw new ModelConfigError(
        `STQA-Net config: ${field} ${JSON.stringify(overrides[field])}: ${bad} is more than ` +
          `${MAX_MODEL_WIDTH}`,
      );
    }
  }
  const defaults = StqaNetConfigSchema.parse({});
  checkModelSize("STQA-Net", stqaNetSize, { config: c, defaults, overrides });
  return c;
}

/**
 * The safetensors and JSON paths of a generator: a bundled name (`stqa-vsfa-mini`) or a path to
 * either file or their stem.
 *
 * @example
 * ```ts
 * import { generatorPaths } from "./generator_io.ts";
 * generatorPaths("out/g.json"); // { weights: "out/g.safetensors", json: "out/g.json" }
 * ```
 */
export function generatorPaths(nameOrPath: string): { weights: string; json: string } {
  let stem = nameOrPath;
  if (!/[\\/]/.test(nameOrPath) && !/\.(json|safetensors)$/.test(nameOrPath)) {
    stem = join(MODELS_DIR, nameOrPath);
  }
  stem = stem.replace(/\.(json|safetensors)$/, "");
  return { weights: `${stem}.safetensors`, json: `${stem}.json` };
}

/**
 * The bundled generator's name for a victim and variant: `stqa-<victim>` (two-branch, the
 * default generator), `stqa-<victim>-signed` (signed) or `stqa-<victim>-paper` (the paper's
 * untargeted variant).
 *
 * @example
 * ```ts
 * import { bundledGeneratorName } from "./generator_io.ts";
 * bundledGeneratorName("vsfa-mini", "signed"); // "stqa-vsfa-mini-signed"
 * bundledGeneratorName("vsfa-mini"); // "stqa-vsfa-mini"
 * ```
 */
export function bundledGeneratorName(
  victim: string,
  variant: GeneratorVariant = "two-branch",
): string {
  const stem = basename(victim).replace(/\.(json|safetensors)$/, "");
  return `stqa-${stem}${GENERATOR_SUFFIX[variant]}`;
}

/**
 * Loads a generator. Its parameters do not require gradients.
 *
 * @throws {Error} naming the file when one is missing or malformed, and the tensor when the
 * weights do not match the config.
 * @example
 * ```ts
 * import { initGpu, loadGenerator } from "../../mod.ts";
 * await initGpu();
 * const g = await loadGenerator("stqa-vsfa-mini");
 * console.log(g.info.victim, g.info.eps);
 * ```
 */
export async function loadGenerator(nameOrPath: string): Promise<Generator> {
  const { weights, json } = generatorPaths(nameOrPath);
  // A path (a bare name is a bundled one) that is a folder: say so, not "no config at <dir>/.json".
  if (
    /[\\/]/.test(nameOrPath) && await Deno.stat(nameOrPath).then((i) => i.isDirectory, () => false)
  ) {
    throw new Error(
      `loadGenerator: ${nameOrPath} is a folder; give a generator's .safetensors or .json file, or their stem`,
    );
  }
  let text: string;
  try {
    const bytes = await checkRegularFile(json, "generator config");
    if (bytes > MAX_CONFIG_BYTES) {
      throw new Error(`${json}: ${bytes} bytes, too large for a generator config`);
    }
    text = await Deno.readTextFile(json);
  } catch (e) {
    if (e instanceof Error && /: no such generator config$/.test(e.message)) {
      throw new Error(
        `loadGenerator: no generator config at ${json} (train one with \`deno task train\`)`,
      );
    }
    throw new Error(`loadGenerator: ${(e as Error).message}`);
  }
  let info: GeneratorFile;
  try {
    const parsed = GeneratorFileSchema.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(formatZodError(parsed.error));
    info = parsed.data;
  } catch (e) {
    throw new Error(
      `loadGenerator: ${json} is not a valid generator config: ${(e as Error).message}`,
    );
  }
  let net: StqaNet;
  try {
    checkGeneratorConfig(info.config);
    net = new StqaNet({ config: info.config });
  } catch (e) {
    throw new Error(`loadGenerator: ${json}: ${(e as Error).message}`);
  }
  try {
    await checkRegularFile(weights, "weights file");
  } catch (e) {
    net.dispose();
    if (e instanceof Error && /: no such weights file$/.test(e.message)) {
      throw new Error(`loadGenerator: no weights file at ${weights} (config ${json} found)`);
    }
    throw new Error(`loadGenerator: ${(e as Error).message}`);
  }
  try {
    // Read and validated (sizes, finite values) before anything is copied into the network.
    const { tensors } = await readSafetensorsFile(weights, { what: "weights file" });
    try {
      assignSafetensors(weights, tensors, net.parameters());
    } catch (e) {
      throw new Error(
        `the weights ${weights} do not match the config in ${json}: ${(e as Error).message}`,
      );
    }
  } catch (e) {
    net.dispose();
    throw new Error(`loadGenerator: ${(e as Error).message}`);
  }
  for (const p of Object.values(net.parameters())) p.requiresGrad = false;
  return { net, info, path: weights };
}

/**
 * Saves a generator's weights and JSON: both are written to temporary files first and then
 * renamed into place, so a failure leaves the old pair (or nothing). Existing files are
 * replaced: a command checks its output first (`prepareWeightsOutput` in
 * src/io/checkpoint.ts).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu, loadGenerator, saveGenerator, StqaNet } from "../../mod.ts";
 * await initGpu();
 * const net = new StqaNet({ seed: 1 });
 * const dir = await Deno.makeTempDir();
 * await saveGenerator(net, `${dir}/g`, {
 *   victim: "vsfa-mini", victimFamily: "vsfa-mini", jnd: "namm-st", eps: 1,
 *   qMin: 1, qMax: 5, median: 3,
 * });
 * const { info } = await loadGenerator(`${dir}/g`);
 * assert.equal(info.median, 3);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveGenerator(
  net: StqaNet,
  path: string,
  info: GeneratorInfo,
): Promise<{ weights: string; json: string }> {
  const { weights, json } = generatorPaths(/[\\/]/.test(path) ? path : `./${path}`);
  await Deno.mkdir(dirname(weights), { recursive: true });
  const bytes = await safetensorsBytes(weights, net.parameters(), { kind: "stqa-net" });
  const body: GeneratorFile = { kind: "stqa-net", config: { ...net.config }, ...info };
  await writeFilesAtomic([
    { path: weights, data: bytes },
    { path: json, data: JSON.stringify(body, null, 2) + "\n" },
  ]);
  return { weights, json };
}
