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
import { formatZodError } from "../_zod.ts";

const uri = z.string().startsWith("data:image/png;base64,");
const num = z.number().finite();

/** One example: a video against one victim with several methods. */
export const EvalExampleSchema = z.object({
  version: z.literal(1),
  video: z.string(),
  index: z.number().int().nonnegative(),
  victim: z.string(),
  /** The methods, in the order of the panels' columns and the scores. */
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
  /** Clip scores: clean, and per method. */
  scores: z.object({ clean: num, methods: z.array(num) }),
  /** Per-frame scores where the victim has them: clean, and per method. */
  frameScores: z.object({ clean: z.array(num), methods: z.array(z.array(num)) }).nullable(),
}).strict();

/** One example (see {@link EvalExampleSchema}). */
export type EvalExample = z.infer<typeof EvalExampleSchema>;

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
 * import { mergeExamples } from "./examples.ts";
 * // const merged = mergeExamples(old, fresh);
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
 * import { writeExample } from "./examples.ts";
 * // await writeExample("out/eval", example);
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
 * import { readExamples } from "./examples.ts";
 * const examples = await readExamples("out/eval");
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
