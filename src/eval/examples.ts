/**
 * Example frames of an eval run: for the first video of a run (or shard) and each victim, the
 * first, middle and last frames as clean | adversarial | perturbation per method | JND heat map,
 * with the clip's scores and, where the victim has them, per-frame scores. Stored as JSON (images
 * as PNG `data:` URIs) in `<out>/examples/`, merged when a later run adds methods, and shown in
 * the eval's report.html.
 *
 * @module
 */

import { join, relative } from "path";
import { z } from "zod";
import { writeFileAtomic } from "../_fs.ts";
import { insideOutput, safeName } from "../_output.ts";
import { formatZodError, type SameShape, type Schema } from "../_zod.ts";

const uri = z.string().startsWith("data:image/png;base64,");
const num = z.number().finite();

/**
 * One example: a video against one victim with several methods (stored as
 * `<out>/examples/<index>-<victim>.json`).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { type EvalExample, EvalExampleSchema } from "./examples.ts";
 * const png = "data:image/png;base64,"; // images are PNG data: URIs (left empty here)
 * const example: EvalExample = {
 *   version: 1, video: "data/samples/gravel_zoom.mkv", index: 0, victim: "vsfa-mini",
 *   methods: ["stqa"], frames: 16, width: 128, height: 128, jndMaxLevels: 12, amplify: 8,
 *   panels: [{
 *     frame: 0, clean: png, jnd: png, attacks: [{ adversarial: png, perturbation: png }],
 *   }],
 *   scores: { clean: 3.1, methods: [2.4] }, frameScores: null,
 * };
 * assert.deepEqual(EvalExampleSchema.parse(example), example);
 * ```
 */
export interface EvalExample {
  /** Format version: 1. */
  version: 1;
  /** The video's path. */
  video: string;
  /** The video's index in the run. */
  index: number;
  /** The victim's name. */
  victim: string;
  /** The methods, in the order of the panels' columns and the scores. */
  methods: string[];
  /** Frames of the clip. */
  frames: number;
  /** Frame width. */
  width: number;
  /** Frame height. */
  height: number;
  /** The largest JND (in 8-bit levels) of the heat maps' scale. */
  jndMaxLevels: number;
  /** How much the perturbation images are amplified. */
  amplify: number;
  /** The region the panels show, when cropped. */
  crop?: { x: number; y: number; width: number; height: number };
  /** One panel per frame shown: the clean frame, its JND map and per method its images. */
  panels: {
    /** The frame's index. */
    frame: number;
    /** The clean frame (a PNG data: URI, as every image here). */
    clean: string;
    /** The JND heat map. */
    jnd: string;
    /** Per method: the adversarial frame and the amplified perturbation. */
    attacks: { adversarial: string; perturbation: string; amplify?: number }[];
  }[];
  /** Clip scores: clean, and per method. */
  scores: { clean: number; methods: number[] };
  /** Per-frame scores where the victim has them: clean, and per method. */
  frameScores: { clean: number[]; methods: number[][] } | null;
}

const evalExample = z.object({
  version: z.literal(1),
  video: z.string(),
  index: z.number().int().nonnegative(),
  victim: z.string(),
  methods: z.array(z.string()),
  frames: z.number().int().positive(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  jndMaxLevels: z.number().positive(),
  amplify: z.number().positive(),
  crop: z.object({ x: num, y: num, width: num, height: num }).optional(),
  panels: z.array(z.object({
    frame: z.number().int().nonnegative(),
    clean: uri,
    jnd: uri,
    attacks: z.array(z.object({
      adversarial: uri,
      perturbation: uri,
      amplify: z.number().positive().optional(),
    })),
  })),
  scores: z.object({ clean: num, methods: z.array(num) }),
  frameScores: z.object({ clean: z.array(num), methods: z.array(z.array(num)) }).nullable(),
}).strict();
const _sameExample: SameShape<EvalExample, z.output<typeof evalExample>> = true;

/**
 * Validates an {@link EvalExample} (images must be PNG data: URIs; unknown fields are refused).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { EvalExampleSchema } from "./examples.ts";
 * assert.equal(EvalExampleSchema.safeParse({ version: 2 }).success, false);
 * ```
 */
export const EvalExampleSchema: Schema<EvalExample> = evalExample;

/**
 * The file of an example: `<dir>/examples/<index>-<victim>.json`.
 *
 * @example
 * ```ts
 * import { exampleFile } from "./examples.ts";
 * exampleFile("out/eval", 3, "vsfa-mini"); // "out/eval/examples/3-vsfa-mini.json"
 * ```
 */
export function exampleFile(dir: string, index: number, victim: string): string {
  return join(dir, "examples", `${index}-${safeName(victim, "victim")}.json`);
}

/**
 * Merges `add` into `base` (same video and victim): methods of `add` replace those of the same
 * name, and new ones are appended.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { type EvalExample, mergeExamples } from "./examples.ts";
 * const png = "data:image/png;base64,"; // images are PNG data: URIs (left empty here)
 * const example: EvalExample = {
 *   version: 1, video: "data/samples/gravel_zoom.mkv", index: 0, victim: "vsfa-mini",
 *   methods: ["stqa"], frames: 16, width: 128, height: 128, jndMaxLevels: 12, amplify: 8,
 *   panels: [{
 *     frame: 0, clean: png, jnd: png, attacks: [{ adversarial: png, perturbation: png }],
 *   }],
 *   scores: { clean: 3.1, methods: [2.4] }, frameScores: null,
 * };
 * const scores = { clean: 3.1, methods: [2.9] };
 * const fresh: EvalExample = { ...example, methods: ["pgd"], scores };
 * const merged = mergeExamples(example, fresh);
 * assert.deepEqual([merged.methods, merged.scores.methods], [["stqa", "pgd"], [2.4, 2.9]]);
 * ```
 */
export function mergeExamples(base: EvalExample, add: EvalExample): EvalExample {
  if (base.video !== add.video || base.victim !== add.victim || base.frames !== add.frames) {
    throw new Error(
      `cannot merge the example of ${add.video}/${add.victim} into ${base.video}/${base.victim}`,
    );
  }
  const methods = [...base.methods];
  for (const m of add.methods) if (!methods.includes(m)) methods.push(m);
  const pick = <T>(m: string, fromBase: T[], fromAdd: T[]): T => {
    const a = add.methods.indexOf(m);
    return a >= 0 ? fromAdd[a] : fromBase[base.methods.indexOf(m)];
  };
  return {
    ...add,
    methods,
    amplify: Math.max(base.amplify, add.amplify),
    panels: add.panels.map((p) => {
      const old = base.panels.find((q) => q.frame === p.frame);
      return {
        ...p,
        attacks: methods.map((m) => pick(m, old?.attacks ?? [], p.attacks)),
      };
    }),
    scores: {
      clean: add.scores.clean,
      methods: methods.map((m) => pick(m, base.scores.methods, add.scores.methods)),
    },
    frameScores: add.frameScores && base.frameScores
      ? {
        clean: add.frameScores.clean,
        methods: methods.map((m) => pick(m, base.frameScores!.methods, add.frameScores!.methods)),
      }
      : add.frameScores,
  };
}

/**
 * Writes an example (atomically, checked to lie inside `dir` after resolving links), merged with
 * the one already there for the same video and victim.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { type EvalExample, readExamples, writeExample } from "./examples.ts";
 * const png = "data:image/png;base64,"; // images are PNG data: URIs (left empty here)
 * const example: EvalExample = {
 *   version: 1, video: "data/samples/gravel_zoom.mkv", index: 0, victim: "vsfa-mini",
 *   methods: ["stqa"], frames: 16, width: 128, height: 128, jndMaxLevels: 12, amplify: 8,
 *   panels: [{
 *     frame: 0, clean: png, jnd: png, attacks: [{ adversarial: png, perturbation: png }],
 *   }],
 *   scores: { clean: 3.1, methods: [2.4] }, frameScores: null,
 * };
 * const dir = await Deno.makeTempDir();
 * await writeExample(dir, example);
 * const scores = { clean: 3.1, methods: [2.9] };
 * await writeExample(dir, { ...example, methods: ["pgd"], scores });
 * const [stored] = await readExamples(dir); // merged: one file per video and victim
 * assert.deepEqual(stored.methods, ["stqa", "pgd"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeExample(dir: string, example: EvalExample): Promise<void> {
  const root = await Deno.realPath(dir);
  const file = await insideOutput(
    root,
    relative(root, exampleFile(root, example.index, example.victim)),
  );
  let merged = example;
  try {
    const old = EvalExampleSchema.safeParse(JSON.parse(await Deno.readTextFile(file)));
    if (old.success && old.data.video === example.video && old.data.frames === example.frames) {
      merged = mergeExamples(old.data, example);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound) && !(e instanceof SyntaxError)) throw e;
  }
  await Deno.mkdir(await insideOutput(root, "examples"), { recursive: true });
  await writeFileAtomic(file, JSON.stringify(merged) + "\n");
}

/**
 * The examples in `<dir>/examples/`, by video index then victim; an invalid file throws, naming
 * it and the field.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { readExamples } from "./examples.ts";
 * const dir = await Deno.makeTempDir();
 * assert.deepEqual(await readExamples(dir), []); // no examples/ folder: none
 * await Deno.mkdir(`${dir}/examples`);
 * await Deno.writeTextFile(`${dir}/examples/0-vsfa-mini.json`, JSON.stringify({ version: 1 }));
 * await assert.rejects(readExamples(dir), /invalid example: video: Required/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readExamples(dir: string): Promise<EvalExample[]> {
  const out: EvalExample[] = [];
  const folder = join(dir, "examples");
  try {
    for await (const e of Deno.readDir(folder)) {
      if (!e.isFile || !e.name.endsWith(".json")) continue;
      const file = join(folder, e.name);
      let value: unknown;
      try {
        value = JSON.parse(await Deno.readTextFile(file));
      } catch (err) {
        throw new Error(`${file}: not JSON: ${(err as Error).message}`);
      }
      const r = EvalExampleSchema.safeParse(value);
      if (!r.success) throw new Error(`${file}: invalid example: ${formatZodError(r.error)}`);
      out.push(r.data);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a.index - b.index || (a.victim < b.victim ? -1 : 1));
}
