/**
 * `deno task eval`: robustness tables over a dataset, every victim x every attack method.
 *
 * ```
 * deno task eval [--victims vsfa-mini,simplevqa-mini] [--methods random,fgsm,stqa-net]
 *                [--dataset proxy|<manifest>|konvid:<dir>] [--split test] [--max-videos n]
 *                [--eps 1] [--out out/eval] [--shard i/n] [--seed 1] [--generator-dir dir]
 *                [--cross] [--overwrite] [--keep-going] [--frames n|all] [--window n]
 *                [--mode untargeted|up|down]
 * deno task eval merge --out out/eval
 * ```
 *
 * @module
 */

import { basename, join } from "path";
import { z } from "zod";
import { parseCommand, usageError } from "./_args.ts";
import { exists, writeFileAtomic } from "../_fs.ts";
import {
  discardWorkDir,
  insideOutput,
  makeWorkDir,
  prepareOutputDir,
  removeStaleWorkDirs,
} from "../_output.ts";
import { formatSeconds, printProgress } from "../_progress.ts";
import { baselineAttack } from "../attack/baselines/mod.ts";
import { checkPair, stqaAttack } from "../attack/stqa.ts";
import { type Attack, ATTACK_MODES } from "../attack/types.ts";
import { DATASET_FORMATS } from "../data/loaders.ts";
import { initGpu, NoAdapterError } from "../gpu/device.ts";
import {
  bundledGeneratorName,
  type Generator,
  generatorPaths,
  loadGenerator,
} from "../models/generator_io.ts";
import { loadVictim, victimPaths } from "../models/victims/mod.ts";
import { PUBLISHED_FAMILIES, type PublishedFamily, type Victim } from "../models/victims/victim.ts";
import { configDigest, victimWeightsId } from "./_victim.ts";
import type { GeneratorVariant } from "../models/stqa_net.ts";
import { evaluateVideo } from "../eval/evaluate.ts";
import { resolveEvalVideos } from "../eval/videos.ts";
import { readExamples, writeExample } from "../eval/examples.ts";
import { evalReportHtml } from "../report/eval_html.ts";
import {
  failuresFileName,
  readRowFiles,
  readRows,
  removeEvalOutputs,
  rowsFileName,
  rowsFilesIn,
  writeTables,
} from "../eval/rows.ts";
import {
  crossSource,
  EVAL_METHODS,
  type EvalRow,
  type EvalRowSettings,
  labelMedian,
  rowKey,
  type TableRow,
} from "../eval/robustness.ts";
import {
  datasetIdentity,
  EVAL_JND_MODEL,
  filesConflict,
  modelDigest,
  rowsMismatch,
  runSettings,
  type SettingsSource,
  videoIdentity,
} from "../eval/settings.ts";

const USAGE = `Usage: deno task eval [options]
       deno task eval merge --out <dir>

Robustness tables: every victim x every attack method over a dataset. Per (video, victim,
method) one line of <out>/rows.jsonl (a rerun skips finished lines); at the end
<out>/table.csv, table.json, table.md (one line per (victim, method), then the upload and
cross-victim tables) and report.html.

Options:
  --victims <list>        comma-separated bundled victims or .safetensors paths
                          (default vsfa-mini,simplevqa-mini,fastvqa-mini), or one published
                          model (vsfa, mdtvsfa, simplevqa, fast-vqa, faster-vqa, dover) with
                          --weights
  --weights <files>       the published victim's weight files as its authors publish them,
                          comma-separated (for two published victims in one run, convert
                          each first: deno task convert --victim <family>)
  --methods <list>        comma-separated (default all) of
                          ${EVAL_METHODS.join(", ")},
                          or stqa-net@<victim>: that victim's generator, its videos scored by
                          each victim of --victims (cross-victim transfer)
  --cross                 add stqa-net@<v> for every other victim v of --victims
  --dataset <d>           proxy (cache/proxy/manifest.json), a manifest (proxy manifest.json or a
                          CSV/JSON list of path,mos), a folder of videos, or <format>:<root> with
                          format ${
  DATASET_FORMATS.filter((f) => f !== "manifest").join(" | ")
} (default proxy)
  --split <name>          for a proxy manifest: train | val | test | all (default test)
  --max-videos <n>        the first n videos only (default all)
  --eps <e>               multiple of the JND allowed (default 1)
  --frames <n|all>        frames of each video: the first n, or all (default: each victim's
                          clip length, as it was trained)
  --window <n>            frames per window: videos are streamed window by window, memory
                          bounded by the window (default: as many as fit the adapter's binding
                          limit); gradient attacks attack each window alone (docs/eval.md)
  --native                decode each video at its own size (default: at the size each victim
                          was trained at, where it has one, as vsfa-mini and simplevqa-mini
                          do; deno task attack always works at the video's own size)
  --mode <m>              untargeted (toward the score-reversed boundary, default), up or down
  -o, --out <dir>         output folder (default out/eval)
  --shard <i/n>           only videos with index % n == i; rows go to rows-<i>-of-<n>.jsonl
  --seed <n>              base seed; video k is attacked with seed + k (default 1)
  --generator-dir <dir>   where stqa-<victim>.safetensors generators are (default data/models)
  --overwrite             replace the rows, tables, report and examples of earlier runs in --out
                          that were made with other options (and this run's own rows file)
  --keep-going            a video that fails is recorded in <out>/failures.jsonl and the run goes
                          on (exit 1 at the end); without it the first failure stops the run
  --merge                 combine every rows*.jsonl in --out and write the tables (also: merge)
  -h, --help              this text

Each row records what made it: eps, seed, the victim's median, the dataset (resolved path,
split), the video's resolved path, the JND model, and the SHA-256 of the victim's and the
generator's weights and config. A rerun into the same --out with any of these different is
refused before any work (pass --overwrite, or choose another --out); with the same options it
resumes. Nothing outside --out is written, and inside it only rows*.jsonl, failures*.jsonl,
table.*, report.html, examples/ and a temporary .stqa-tmp-eval.* folder (removed at the end,
on Ctrl-C, or by the next run when interrupted otherwise).

stqa-net (the default, two-branch generator stqa-<victim>), stqa-net-signed (the signed
stqa-<victim>-signed) and stqa-net-paper (the paper's untargeted variant stqa-<victim>-paper) are skipped, with a
warning, for a victim without that generator. A signed or two-branch generator pushes toward the
score-reversed boundary (up for clips scored below the median, down above), which costs one
victim pass on the clean clip.
report.html holds the tables, bar charts, and the example frames of the first video of each run
or shard (kept in <out>/examples/); it is self-contained and opens offline.
Exit codes: 0 done, 1 failure, 2 bad usage, 3 no WebGPU adapter.
`;

const list = (what: string) =>
  z.string().transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean))
    .refine((v) => v.length > 0, `give at least one ${what}`);

const ArgsSchema = z.object({
  victims: list("victim").default("vsfa-mini,simplevqa-mini,fastvqa-mini")
    .refine((v) => {
      const names = v.map((x) => basename(victimPaths(x).weights, ".safetensors"));
      return new Set(names).size === names.length;
    }, "two victims have the same name (the file name without .safetensors); rename one"),
  weights: list("weights file").optional(),
  methods: list("method").default(EVAL_METHODS.join(","))
    .refine(
      (v) =>
        v.every((m) => (EVAL_METHODS as readonly string[]).includes(m) || crossSource(m) !== null),
      `unknown method (known: ${EVAL_METHODS.join(", ")}, stqa-net@<victim>)`,
    ),
  dataset: z.string().min(1).default("proxy"),
  split: z.enum(["train", "val", "test", "all"]).default("test"),
  "max-videos": z.coerce.number().int().positive().optional(),
  eps: z.coerce.number().positive().max(16).default(1),
  frames: z.union([
    z.literal("all"),
    z.coerce.number().int("expected a whole number or all").positive(),
  ]).optional(),
  window: z.coerce.number().int().positive().optional(),
  mode: z.enum(ATTACK_MODES).default("untargeted"),
  native: z.boolean().default(false),
  out: z.string().min(1).default("out/eval"),
  shard: z.string().regex(/^\d+\/\d+$/, "expected i/n, e.g. 0/4").transform((s) => {
    const [i, n] = s.split("/").map(Number);
    return { i, n };
  }).refine((s) => s.n >= 1 && s.i < s.n, "expected 0 <= i < n").optional(),
  seed: z.coerce.number().int().nonnegative().default(1),
  "generator-dir": z.string().min(1).optional(),
  merge: z.boolean().default(false),
  cross: z.boolean().default(false),
  overwrite: z.boolean().default(false),
  "keep-going": z.boolean().default(false),
}).strict();

type Options = z.infer<typeof ArgsSchema>;

const FLAGS = {
  victims: { type: "string" },
  weights: { type: "string" },
  methods: { type: "string" },
  dataset: { type: "string" },
  split: { type: "string" },
  "max-videos": { type: "string" },
  eps: { type: "string" },
  frames: { type: "string" },
  window: { type: "string" },
  mode: { type: "string" },
  native: { type: "boolean" },
  out: { type: "string", short: "o" },
  shard: { type: "string" },
  seed: { type: "string" },
  "generator-dir": { type: "string" },
  merge: { type: "boolean" },
  cross: { type: "boolean" },
  overwrite: { type: "boolean" },
  "keep-going": { type: "boolean" },
} as const;

/** The generator of a stqa-net method, with its files' digests. */
interface LoadedAttack {
  attack: Attack;
  generator: Generator | null;
  digest: { weights: string; config: string } | null;
  options: EvalRowSettings["methodOptions"];
}

/**
 * The generator methods: the variant whose bundled file each loads (`stqa-<victim>`,
 * `-signed`, `-paper`), and the variant that file must be (`stqa-net` takes the default generator
 * whatever its variant).
 */
const GENERATOR_METHODS: Record<string, { file: GeneratorVariant; requires?: GeneratorVariant }> = {
  "stqa-net": { file: "two-branch" },
  "stqa-net-signed": { file: "signed", requires: "signed" },
  "stqa-net-paper": { file: "untargeted", requires: "untargeted" },
};

/**
 * The attacks of one victim: stqa-net (stqa-<victim>) and stqa-net-signed (stqa-<victim>-signed,
 * its direction picked by one victim pass on the clean clip) only when the generator loads, and
 * stqa-net@<source> (another victim's one-branch generator) only when that one loads and the
 * source is not this victim (else a warning). The caller disposes the generators.
 */
async function attacksFor(
  methods: string[],
  victim: Victim,
  generatorDir: string | undefined,
): Promise<LoadedAttack[]> {
  const out: LoadedAttack[] = [];
  for (const m of methods) {
    const cross = crossSource(m);
    const kind = GENERATOR_METHODS[m];
    if (kind === undefined && cross === null) {
      // eval runs each baseline with its defaults: no options of its own to record.
      out.push({ attack: baselineAttack(m), generator: null, digest: null, options: {} });
      continue;
    }
    if (cross === victim.name) continue; // the diagonal is stqa-net
    const name = bundledGeneratorName(cross ?? victim.name, kind?.file ?? "two-branch");
    let generator: Generator | undefined;
    try {
      generator = await loadGenerator(generatorDir ? join(generatorDir, name) : name);
      if (cross === null) checkPair(generator, victim);
      if (kind?.requires && generator.net.config.variant !== kind.requires) {
        throw new Error(`${generator.path} is not a ${kind.requires} generator`);
      }
      const digest = await modelDigest(generator.path, generatorPaths(generator.path).json);
      out.push({
        attack: stqaAttack(generator, { name: m }),
        generator,
        digest,
        options: { variant: generator.net.config.variant },
      });
    } catch (e) {
      generator?.net.dispose();
      console.error(`eval: warning: skipping ${m} for ${victim.name}: ${(e as Error).message}`);
    }
  }
  return out;
}

/** `--frames`, `--window`, `--mode` and `--native` as a method's recorded options, when not the defaults. */
function streamOptions(o: Options): EvalRowSettings["methodOptions"] {
  return {
    ...(o.frames !== undefined ? { frames: o.frames } : {}),
    ...(o.window !== undefined ? { window: o.window } : {}),
    ...(o.mode !== "untargeted" ? { mode: o.mode } : {}),
    ...(o.native ? { native: true } : {}),
  };
}

/** The first line of an error's message (tool output that follows it is left out). */
function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n").map((l) => l.trim()).find(Boolean) ?? "unknown error";
}

async function merge(out: string): Promise<number> {
  if (!(await exists(out))) {
    console.error(`eval merge: no rows*.jsonl with rows in ${out}`);
    return 1;
  }
  const root = await prepareOutputDir(out);
  const files = await readRowFiles(root);
  const conflict = filesConflict(files);
  if (conflict) {
    console.error(
      `eval merge: ${out}: ${conflict}; rerun that shard with the others' options (with ` +
        "--overwrite), or merge the shards made alike in another folder",
    );
    return 1;
  }
  const seen = new Set<string>();
  const rows: EvalRow[] = [];
  for (const f of files) {
    for (const r of f.rows) {
      if (!seen.has(rowKey(r))) {
        seen.add(rowKey(r));
        rows.push(r);
      }
    }
  }
  if (!rows.length) {
    console.error(`eval merge: no rows*.jsonl with rows in ${out}`);
    return 1;
  }
  const table = await writeTables(root, rows);
  await writeEvalHtml(
    root,
    table,
    `${rows.length} rows merged from ${out}; eps ${
      [...new Set(rows.map((r) => r.eps))].join(", ")
    }`,
  );
  console.log(
    `merged ${rows.length} rows into ${table.length} table lines: ${out}/table.md, ${out}/report.html`,
  );
  return 0;
}

/**
 * Runs `eval` with its arguments (after the command name); returns the exit code.
 *
 * @example
 * ```ts
 * import { evalCommand } from "./eval.ts";
 * const code = await evalCommand(["--victims", "vsfa-mini", "--methods", "random,fgsm"]);
 * ```
 */
export async function evalCommand(args: string[]): Promise<number> {
  const isMerge = args[0] === "merge";
  const parsed = parseCommand(isMerge ? args.slice(1) : args, {
    usage: USAGE,
    flags: FLAGS,
    schema: ArgsSchema,
  });
  if (!parsed.ok) return parsed.code;
  const o = parsed.values;
  if (isMerge || o.merge) {
    // merge reads the rows files as they are: an option that would change a run means nothing.
    const given = (isMerge ? args.slice(1) : args).filter((a) => a.startsWith("-"))
      .map((a) => a.replace(/=.*$/, "")).filter((a) => !["--out", "-o", "--merge"].includes(a));
    if (given.length) {
      console.error(
        `${given[0]}: not used by eval merge, which combines the rows files in --out as they ` +
          `are\n\n${USAGE}`,
      );
      return 2;
    }
  }
  const published = o.victims.filter((v) => PUBLISHED_FAMILIES.includes(v as PublishedFamily));
  if (o.weights && published.length !== 1) {
    return usageError(
      published.length === 0
        ? `--weights: for a published victim (${PUBLISHED_FAMILIES.join(", ")}) in --victims; ` +
          "none is there"
        : `--weights: one published victim per run can take them (got ${published.join(", ")}); ` +
          "convert each first (deno task convert --victim <family>) and give the .safetensors",
      { usage: USAGE, name: "eval" },
    );
  }
  try {
    if (isMerge || o.merge) return await merge(o.out);
    return await run(o);
  } catch (e) {
    if (e instanceof NoAdapterError) throw e;
    console.error(`eval: ${firstLine(e)}`);
    return 1;
  }
}

/**
 * Removes the `.work-*` folders that eval runs before the marked work folders left when
 * interrupted: only in an output folder that holds rows files, and only folders holding nothing
 * but eval's round-trip files (`<index>-<victim>-<what>.mkv`). Returns the names removed.
 */
async function removeLegacyWorkDirs(root: string): Promise<string[]> {
  const entries: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(root)) entries.push(e);
  if (!entries.some((e) => /^rows(-\d+-of-\d+)?\.jsonl$/.test(e.name))) return [];
  const removed: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory || !/^\.work-\w+$/.test(e.name)) continue;
    const dir = await insideOutput(root, e.name);
    const files: string[] = [];
    let ours = true;
    for await (const f of Deno.readDir(dir)) {
      if (!f.isFile || !/^\d+-[\w.-]+\.mkv$/.test(f.name)) ours = false;
      files.push(f.name);
    }
    if (!ours) {
      console.error(`eval: left ${e.name} in place: it holds files eval does not write`);
      continue;
    }
    for (const f of files) await Deno.remove(await insideOutput(root, e.name, f));
    await Deno.remove(dir);
    removed.push(e.name);
  }
  return removed;
}

/** A victim of the run with its attacks, median and digests, loaded before any work. */
interface Plan {
  victim: Victim;
  attacks: LoadedAttack[];
  median: number;
  digest: { weights: string; config: string };
}

/** A (video, victim) that failed, as recorded in failures.jsonl. */
interface Failure {
  video: string;
  path: string;
  victim: string;
  methods: string[];
  message: string;
}

async function run(o: Options): Promise<number> {
  const t0 = performance.now();
  // Before any long work: the output folder, the dataset, the models, earlier rows in --out.
  const root = await prepareOutputDir(o.out);
  const stale = [...await removeStaleWorkDirs(root), ...await removeLegacyWorkDirs(root)];
  if (stale.length) {
    console.error(
      `eval: removed ${stale.length} temporary folder(s) of interrupted runs in ${o.out}`,
    );
  }
  let videos = await resolveEvalVideos(o.dataset, { split: o.split });
  if (o["max-videos"]) videos = videos.slice(0, o["max-videos"]);
  const labels = videos.map((v) => v.label).filter((l): l is number => l !== null);
  const mine = o.shard ? videos.filter((v) => v.index % o.shard!.n === o.shard!.i) : videos;
  const rowsName = rowsFileName(o.shard);
  const file = await insideOutput(root, rowsName);
  const shownFile = join(o.out, rowsName);
  const failuresName = failuresFileName(o.shard);
  const failuresFile = await insideOutput(root, failuresName);
  const dataset = await datasetIdentity(o.dataset, o.split);
  const videoPaths = new Map<string, string>();
  for (const v of videos) videoPaths.set(v.name, await videoIdentity(v.path));

  await initGpu();
  const plans: Plan[] = [];
  let workDir: string | undefined;
  const failures: Failure[] = [];
  let written = 0;
  try {
    for (const victimName of o.victims) {
      const published = PUBLISHED_FAMILIES.includes(victimName as PublishedFamily);
      const weights = published ? o.weights : undefined;
      const victim = await loadVictim(victimName, { weights });
      let attacks: LoadedAttack[] = [];
      try {
        const paths = victimPaths(victimName);
        const digest = published
          ? {
            weights: await victimWeightsId(victimName, weights),
            config: await configDigest(victim.config),
          }
          : await modelDigest(paths.weights, paths.json);
        const methods = o.cross
          ? [
            ...o.methods,
            ...o.victims.filter((v) => v !== victimName).map((v) => `stqa-net@${v}`)
              .filter((m) => !o.methods.includes(m)),
          ]
          : o.methods;
        attacks = await attacksFor(methods, victim, o["generator-dir"]);
        // What changes the frames attacked is part of each method's options (only when given,
        // so that rows of runs without these options stay comparable).
        for (const a of attacks) a.options = { ...a.options, ...streamOptions(o) };
        const range = { qMin: victim.config.qMin, qMax: victim.config.qMax };
        let median = labelMedian(labels, range);
        if (median < range.qMin || median > range.qMax) median = labelMedian([], range);
        plans.push({ victim, attacks, median, digest });
      } catch (e) {
        for (const a of attacks) a.generator?.net.dispose();
        victim.dispose();
        throw e;
      }
    }

    // What this run's rows will carry; earlier rows in --out must match it.
    const common = {
      recorded: true,
      eps: o.eps,
      seed: o.seed,
      dataset: dataset.dataset,
      split: dataset.split,
    };
    const sources: SettingsSource[] = [];
    for (const p of plans) {
      for (const a of p.attacks) {
        sources.push({
          ...common,
          jnd: a.attack.jndModel ?? EVAL_JND_MODEL,
          victim: { name: p.victim.name, median: p.median, digest: p.digest },
          method: { name: a.attack.name, generator: a.digest, options: a.options },
        });
      }
    }
    for (const v of videos) {
      sources.push({
        ...common,
        video: { name: v.name, path: videoPaths.get(v.name)!, index: v.index },
      });
    }
    const settings = runSettings(sources);
    if (o.overwrite) {
      // Rows files made with other options, or unreadable ones, are replaced.
      const conflicting: string[] = [];
      for (const f of await rowsFilesIn(root)) {
        const rows = await readRowFiles(root, { only: f }).catch(() => null);
        if (!rows || rowsMismatch(rows, settings) !== null) conflicting.push(basename(f));
      }
      const others = conflicting.filter((n) => n !== rowsName);
      const removed = await removeEvalOutputs(root, {
        rowsFiles: [rowsName, ...others],
        failuresFile: failuresName,
        allExamples: !o.shard || others.length > 0,
        exampleIndices: new Set(mine.map((v) => v.index)),
      });
      if (removed.length) {
        console.error(`eval: --overwrite: removed ${removed.join(", ")} from ${o.out}`);
      }
    } else {
      const existing = await readRowFiles(root).catch((e) => {
        throw new Error(
          `${firstLine(e)}; pass --overwrite to replace the rows files, or choose another --out`,
        );
      });
      const mismatch = rowsMismatch(existing, settings);
      if (mismatch) {
        throw new Error(
          `${o.out}: ${mismatch}; pass --overwrite to replace them, or choose another --out`,
        );
      }
    }
    // This run's failures are recorded afresh (the videos that failed are tried again).
    if ((await Deno.lstat(failuresFile).catch(() => null))?.isFile) await Deno.remove(failuresFile);

    const done = new Set((await readRows(root, { only: file, repair: true })).map(rowKey));
    workDir = await makeWorkDir(root, "eval");
    const steps = mine.length * plans.length;
    let step = 0;
    for (const { victim, attacks, median, digest } of plans) {
      for (const video of mine) {
        const todo = attacks.filter((a) =>
          !done.has(rowKey({ video: video.name, victim: victim.name, method: a.attack.name }))
        );
        if (todo.length) {
          const byName = new Map(todo.map((a) => [a.attack.name, a]));
          try {
            await evaluateVideo(video, victim, todo.map((a) => a.attack), {
              eps: o.eps,
              median,
              frames: o.frames,
              window: o.window,
              mode: o.mode,
              native: o.native,
              seed: o.seed,
              workDir,
              settings: (method) => ({
                dataset: dataset.dataset,
                split: dataset.split,
                videoPath: videoPaths.get(video.name)!,
                // evaluateVideo sets the JND model that boxed the method.
                jnd: byName.get(method)?.attack.jndModel ?? EVAL_JND_MODEL,
                victim: digest,
                generator: byName.get(method)?.digest ?? null,
                methodOptions: byName.get(method)?.options ?? {},
              }),
              onExample: video === mine[0] ? (example) => writeExample(root, example) : undefined,
              onRow: async (row: EvalRow) => {
                await Deno.writeTextFile(file, JSON.stringify(row) + "\n", { append: true });
                done.add(rowKey(row));
                written++;
              },
            });
          } catch (e) {
            if (e instanceof NoAdapterError) throw e;
            const message = firstLine(e);
            if (!o["keep-going"]) {
              throw new Error(
                `${video.name} (${video.path}) against ${victim.name}: ${message}; ` +
                  `${written} new row(s) kept in ${shownFile} (--keep-going records a failed ` +
                  "video and goes on)",
              );
            }
            const failure: Failure = {
              video: video.name,
              path: video.path,
              victim: victim.name,
              methods: todo.filter((a) =>
                !done.has(rowKey({ video: video.name, victim: victim.name, method: a.attack.name }))
              ).map((a) => a.attack.name),
              message,
            };
            failures.push(failure);
            await Deno.writeTextFile(failuresFile, JSON.stringify(failure) + "\n", {
              append: true,
            });
            console.error(`eval: ${video.name} against ${victim.name} failed: ${message}`);
          }
        }
        step++;
        printProgress({
          step,
          steps,
          elapsed: (performance.now() - t0) / 1000,
          detail: `${victim.name} ${video.name}`,
        }, { logEvery: 1 });
      }
    }
  } finally {
    for (const p of plans) {
      for (const a of p.attacks) a.generator?.net.dispose();
      p.victim.dispose();
    }
    if (workDir) await discardWorkDir(workDir);
  }
  console.error(
    `eval: ${written} new row(s) in ${shownFile} (${
      formatSeconds((performance.now() - t0) / 1000)
    })`,
  );
  const failed = () => {
    if (!failures.length) return 0;
    console.error(
      `eval: ${failures.length} (video, victim) pair(s) failed, recorded in ${
        join(o.out, failuresName)
      }:`,
    );
    for (const f of failures) console.error(`  ${f.video} (${f.victim}): ${f.message}`);
    return 1;
  };
  if (o.shard) {
    console.error(
      `eval: shard ${o.shard.i}/${o.shard.n} done; run \`deno task eval merge --out ${o.out}\``,
    );
    return failed();
  }
  const rows = await readRows(root, { only: file });
  const table = await writeTables(root, rows);
  await writeEvalHtml(
    root,
    table,
    `dataset ${o.dataset}${
      dataset.split ? ` (${dataset.split} split)` : ""
    }, ${rows.length} rows, eps ${o.eps}, seed ${o.seed}`,
  );
  console.log(
    `${table.length} table line(s): ${join(o.out, "table.md")}, ${join(o.out, "report.html")}`,
  );
  return failed();
}

/** Renders `<root>/report.html` from the table and the examples kept in `<root>/examples`. */
async function writeEvalHtml(
  root: string,
  table: TableRow[],
  description: string,
): Promise<void> {
  const html = evalReportHtml(table, { description, examples: await readExamples(root) });
  await writeFileAtomic(await insideOutput(root, "report.html"), html);
}
