/**
 * Trained STQA-Net generators on disk: `<stem>.safetensors` (the weights) and `<stem>.json`
 * (the config, the victim it was trained against, the JND model, eps, the score scale and
 * median that set the untargeted boundary, and how it was made).
 *
 * Bundled generators live in data/models as `stqa-<victim>` (untargeted) and
 * `stqa-<victim>-2b` (two-branch).
 *
 * @module
 */

import { basename, dirname, join } from "path";
import { z } from "zod";
import { writeFileAtomic } from "../_fs.ts";
import { formatZodError } from "../_zod.ts";
import { JND_MODELS, type JndModel } from "../jnd/models.ts";
import { loadSafetensors, saveSafetensors } from "../tensor/safetensors.ts";
import { StqaNet } from "./stqa_net.ts";
import { MODELS_DIR } from "./victims/mod.ts";

/** The JSON beside a generator's weights. */
export const GeneratorFileSchema = z.object({
  /** Always `stqa-net`. */
  kind: z.literal("stqa-net"),
  /** The network config ({@link StqaNet}'s schema validates it again). */
  config: z.record(z.unknown()),
  /** The victim it was trained against: a bundled name or a path. */
  victim: z.string().min(1),
  /** The victim's family (checked against the victim loaded for an attack). */
  victimFamily: z.string().min(1),
  /** The JND model of its training maps. */
  jnd: z.enum(JND_MODELS),
  /** The eps it was trained at. */
  eps: z.number().positive(),
  /** The victim's score scale. */
  qMin: z.number(),
  /** The victim's score scale. */
  qMax: z.number(),
  /** Median clean score of the training clips (the untargeted boundary's threshold). */
  median: z.number(),
  /** How it was made: command, seed, steps, date, seconds (free form). */
  training: z.record(z.unknown()).optional(),
  /** Test-split results (free form). */
  test: z.record(z.unknown()).optional(),
}).passthrough();

/** The JSON beside a generator's weights. */
export type GeneratorFile = z.infer<typeof GeneratorFileSchema>;

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
 * The bundled generator's name for a victim: `stqa-<victim>` or `stqa-<victim>-2b`.
 *
 * @example
 * ```ts
 * import { bundledGeneratorName } from "./generator_io.ts";
 * bundledGeneratorName("vsfa-mini", "two-branch"); // "stqa-vsfa-mini-2b"
 * ```
 */
export function bundledGeneratorName(
  victim: string,
  variant: "untargeted" | "two-branch" = "untargeted",
): string {
  const stem = basename(victim).replace(/\.(json|safetensors)$/, "");
  return `stqa-${stem}${variant === "two-branch" ? "-2b" : ""}`;
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
  let text: string;
  try {
    text = await Deno.readTextFile(json);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `loadGenerator: no generator config at ${json} (train one with \`deno task train\`)`,
      );
    }
    throw e;
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
    net = new StqaNet({ config: info.config });
  } catch (e) {
    throw new Error(`loadGenerator: ${json}: ${(e as Error).message}`);
  }
  try {
    await Deno.stat(weights);
  } catch (e) {
    net.dispose();
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`loadGenerator: no weights file at ${weights} (config ${json} found)`);
    }
    throw e;
  }
  try {
    await loadSafetensors(weights, net.parameters());
  } catch (e) {
    net.dispose();
    throw new Error(
      `loadGenerator: the weights ${weights} do not match the config in ${json}: ${
        (e as Error).message
      }`,
    );
  }
  for (const p of Object.values(net.parameters())) p.requiresGrad = false;
  return { net, info, path: weights };
}

/**
 * Saves a generator's weights and JSON (both atomically).
 *
 * @example
 * ```ts
 * import { initGpu, saveGenerator, StqaNet } from "../../mod.ts";
 * await initGpu();
 * const net = new StqaNet({ seed: 1 });
 * await saveGenerator(net, "out/g", {
 *   victim: "vsfa-mini", victimFamily: "vsfa-mini", jnd: "namm-st", eps: 1,
 *   qMin: 1, qMax: 5, median: 3,
 * });
 * ```
 */
export async function saveGenerator(
  net: StqaNet,
  path: string,
  info: GeneratorInfo,
): Promise<{ weights: string; json: string }> {
  const { weights, json } = generatorPaths(/[\\/]/.test(path) ? path : `./${path}`);
  await Deno.mkdir(dirname(weights), { recursive: true });
  await saveSafetensors(weights, net.parameters(), { kind: "stqa-net" });
  const body: GeneratorFile = { kind: "stqa-net", config: { ...net.config }, ...info };
  await writeFileAtomic(json, JSON.stringify(body, null, 2) + "\n");
  return { weights, json };
}
