/**
 * `deno task eval`: robustness tables over a dataset, every victim x every attack method.
 *
 * ```
 * deno task eval [--victims vsfa-mini,simplevqa-mini] [--methods random,fgsm,stqa-net]
 *                [--dataset proxy|<manifest>|konvid:<dir>] [--split test] [--max-videos n]
 *                [--eps 1] [--out out/eval] [--shard i/n] [--seed 1] [--generator-dir dir]
 *                [--cross]
 * deno task eval merge --out out/eval
 * ```
 *
 * @module
 */

import { basename, extname, join } from "path";
import { z } from "zod";
import { parseCommand } from "../_cli.ts";
import { isFile } from "../_fs.ts";
import { formatSeconds, printProgress } from "../_progress.ts";
import { checkPair, resolveAttackInputs } from "../attack/command.ts";
import { baselineAttack } from "../attack/baselines/mod.ts";
import { stqaAttack } from "../attack/stqa.ts";
import type { Attack } from "../attack/types.ts";
import { DATASET_FORMATS, type DatasetFormat, loadDataset } from "../data/loaders.ts";
import { DEFAULT_PROXY_DIR } from "../data/proxy.ts";
import { initGpu, NoAdapterError } from "../gpu/device.ts";
import { bundledGeneratorName, type Generator, loadGenerator } from "../models/generator_io.ts";
import { loadVictim } from "../models/victims/mod.ts";
import type { Victim } from "../models/victims/victim.ts";
import { evaluateVideo, type EvalVideo } from "./evaluate.ts";
import { writeExample } from "./examples.ts";
import { readRows, rowsFileName, writeTables } from "./rows.ts";
import { crossSource, EVAL_METHODS, type EvalRow, labelMedian, rowKey } from "./robustness.ts";

const USAGE = `Usage: deno task eval [options]
       deno task eval merge --out <dir>

Robustness tables: every victim x every attack method over a dataset. Per (video, victim,
method) one line of <out>/rows.jsonl (a rerun skips finished lines); at the end
<out>/table.csv, table.json, table.md (one line per (victim, method), then the upload and
cross-victim tables) and report.html.

Options:
  --victims <list>        comma-separated bundled victims or .safetensors paths
                          (default vsfa-mini,simplevqa-mini,fastvqa-mini)
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
  -o, --out <dir>         output folder (default out/eval)
  --shard <i/n>           only videos with index % n == i; rows go to rows-<i>-of-<n>.jsonl
  --seed <n>              base seed; video k is attacked with seed + k (default 1)
  --generator-dir <dir>   where stqa-<victim>.safetensors generators are (default data/models)
  --merge                 combine every rows*.jsonl in --out and write the tables (also: merge)
  -h, --help              this text

stqa-net (the one-branch stqa-<victim>) and stqa-net-2b (the two-branch stqa-<victim>-2b,
pushing toward the score-reversed boundary: up for clips scored below the median, down above,
which costs one victim pass) are skipped, with a warning, for a victim without that generator.
report.html holds the tables, bar charts, and the example frames of the first video of each run
or shard (kept in <out>/examples/); it is self-contained and opens offline.
Exit codes: 0 done, 1 failure, 2 bad usage, 3 no WebGPU adapter.
`;

const list = (what: string) =>
  z.string().transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean))
    .refine((v) => v.length > 0, `give at least one ${what}`);

const ArgsSchema = z.object({
  victims: list("victim").default("vsfa-mini,simplevqa-mini,fastvqa-mini"),
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
  out: z.string().min(1).default("out/eval"),
  shard: z.string().regex(/^\d+\/\d+$/, "expected i/n, e.g. 0/4").transform((s) => {
    const [i, n] = s.split("/").map(Number);
    return { i, n };
  }).refine((s) => s.n >= 1 && s.i < s.n, "expected 0 <= i < n").optional(),
  seed: z.coerce.number().int().nonnegative().default(1),
  "generator-dir": z.string().min(1).optional(),
  merge: z.boolean().default(false),
  cross: z.boolean().default(false),
}).strict();

const FLAGS = {
  victims: { type: "string" },
  methods: { type: "string" },
  dataset: { type: "string" },
  split: { type: "string" },
  "max-videos": { type: "string" },
  eps: { type: "string" },
  out: { type: "string", short: "o" },
  shard: { type: "string" },
  seed: { type: "string" },
  "generator-dir": { type: "string" },
  merge: { type: "boolean" },
  cross: { type: "boolean" },
} as const;

/**
 * The videos of `--dataset`: `proxy` (the built proxy dataset), `<format>:<root>` for a real
 * dataset's loader, or what `deno task attack --input` takes (a manifest, folder or file).
 *
 * @throws {Error} naming the dataset when it is missing or lists missing videos.
 * @example
 * ```ts
 * import { resolveEvalVideos } from "./command.ts";
 * const videos = await resolveEvalVideos("proxy", { split: "test" });
 * ```
 */
export async function resolveEvalVideos(
  dataset: string,
  options: { split?: "train" | "val" | "test" | "all" } = {},
): Promise<EvalVideo[]> {
  const m = /^([a-z-]+):(.+)$/.exec(dataset);
  if (m && (DATASET_FORMATS as readonly string[]).includes(m[1])) {
    const loaded = await loadDataset(m[1] as DatasetFormat, m[2]);
    if (loaded.missing.length) {
      throw new Error(
        `${dataset}: ${loaded.missing.length} listed video(s) are missing, e.g. ${
          loaded.missing[0]
        }`,
      );
    }
    if (!loaded.items.length) throw new Error(`${dataset}: no videos listed`);
    const used = new Set<string>();
    return loaded.items.map((it, index) => {
      const stem = basename(it.path, extname(it.path)).replaceAll(/[^\w.-]/g, "_");
      let name = stem;
      for (let k = 2; used.has(name); k++) name = `${stem}-${k}`;
      used.add(name);
      return { path: it.path, name, index, label: it.mos };
    });
  }
  let input = dataset;
  if (dataset === "proxy") {
    input = join(DEFAULT_PROXY_DIR, "manifest.json");
    if (!(await isFile(input))) {
      throw new Error(
        `the proxy dataset is not built (no ${input}); build it with \`deno task data\` or ` +
          "pass --dataset <manifest>",
      );
    }
  }
  const inputs = await resolveAttackInputs(input, { split: options.split });
  return inputs.map((it, index) => ({ ...it, index }));
}

/**
 * The attacks of one victim: stqa-net (stqa-<victim>) and stqa-net-2b (stqa-<victim>-2b, its
 * branch picked by one victim pass on the clean clip) only when the generator loads, and
 * stqa-net@<source> (another victim's one-branch generator) only when that one loads and the
 * source is not this victim (else a warning). The caller disposes the generators.
 */
async function attacksFor(
  methods: string[],
  victim: Victim,
  generatorDir: string | undefined,
): Promise<{ attacks: Attack[]; generators: Generator[] }> {
  const attacks: Attack[] = [];
  const generators: Generator[] = [];
  for (const m of methods) {
    const cross = crossSource(m);
    if (m !== "stqa-net" && m !== "stqa-net-2b" && cross === null) {
      attacks.push(baselineAttack(m));
      continue;
    }
    if (cross === victim.name) continue; // the diagonal is stqa-net
    const name = bundledGeneratorName(
      cross ?? victim.name,
      m === "stqa-net-2b" ? "two-branch" : "untargeted",
    );
    let generator: Generator | undefined;
    try {
      generator = await loadGenerator(generatorDir ? join(generatorDir, name) : name);
      if (cross === null) checkPair(generator, victim);
      if (m === "stqa-net-2b" && generator.net.config.variant !== "two-branch") {
        throw new Error(`${generator.path} is not a two-branch generator`);
      }
      attacks.push(stqaAttack(generator, { name: m }));
      generators.push(generator);
    } catch (e) {
      generator?.net.dispose();
      console.error(`eval: warning: skipping ${m} for ${victim.name}: ${(e as Error).message}`);
    }
  }
  return { attacks, generators };
}

async function merge(out: string): Promise<number> {
  const rows = await readRows(out);
  if (!rows.length) {
    console.error(`eval merge: no rows*.jsonl with rows in ${out}`);
    return 1;
  }
  const table = await writeTables(out, rows, {
    description: `${rows.length} rows merged from ${out}; eps ${
      [...new Set(rows.map((r) => r.eps))].join(", ")
    }`,
  });
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
 * import { evalCommand } from "./command.ts";
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
  try {
    if (isMerge || o.merge) return await merge(o.out);
    return await run(o);
  } catch (e) {
    if (e instanceof NoAdapterError) throw e;
    console.error(`eval: ${(e as Error).message}`);
    return 1;
  }
}

async function run(o: z.infer<typeof ArgsSchema>): Promise<number> {
  const t0 = performance.now();
  let videos = await resolveEvalVideos(o.dataset, { split: o.split });
  if (o["max-videos"]) videos = videos.slice(0, o["max-videos"]);
  const labels = videos.map((v) => v.label).filter((l): l is number => l !== null);
  const mine = o.shard ? videos.filter((v) => v.index % o.shard!.n === o.shard!.i) : videos;
  const file = join(o.out, rowsFileName(o.shard));
  await Deno.mkdir(o.out, { recursive: true });
  const done = new Set((await readRows(o.out, { only: file, repair: true })).map(rowKey));
  await initGpu();
  const workDir = await Deno.makeTempDir({ dir: o.out, prefix: ".work-" });
  const steps = mine.length * o.victims.length;
  let step = 0, written = 0;
  try {
    for (const victimName of o.victims) {
      const victim = await loadVictim(victimName);
      const methods = o.cross
        ? [
          ...o.methods,
          ...o.victims.filter((v) => v !== victimName).map((v) => `stqa-net@${v}`)
            .filter((m) => !o.methods.includes(m)),
        ]
        : o.methods;
      const { attacks, generators } = await attacksFor(methods, victim, o["generator-dir"]);
      try {
        const range = { qMin: victim.config.qMin, qMax: victim.config.qMax };
        let median = labelMedian(labels, range);
        if (median < range.qMin || median > range.qMax) median = labelMedian([], range);
        for (const video of mine) {
          const todo = attacks.filter((a) =>
            !done.has(rowKey({ video: video.name, victim: victim.name, method: a.name }))
          );
          if (todo.length) {
            await evaluateVideo(video, victim, todo, {
              eps: o.eps,
              median,
              seed: o.seed,
              workDir,
              onExample: video === mine[0] ? (example) => writeExample(o.out, example) : undefined,
              onRow: async (row: EvalRow) => {
                await Deno.writeTextFile(file, JSON.stringify(row) + "\n", { append: true });
                done.add(rowKey(row));
                written++;
              },
            });
          }
          step++;
          printProgress({
            step,
            steps,
            elapsed: (performance.now() - t0) / 1000,
            detail: `${victim.name} ${video.name}`,
          }, { logEvery: 1 });
        }
      } finally {
        for (const g of generators) g.net.dispose();
        victim.dispose();
      }
    }
  } finally {
    await Deno.remove(workDir, { recursive: true }).catch(() => {});
  }
  console.error(
    `eval: ${written} new row(s) in ${file} (${formatSeconds((performance.now() - t0) / 1000)})`,
  );
  if (o.shard) {
    console.error(
      `eval: shard ${o.shard.i}/${o.shard.n} done; run \`deno task eval merge --out ${o.out}\``,
    );
    return 0;
  }
  const rows = await readRows(o.out, { only: file });
  const table = await writeTables(o.out, rows, {
    description: `dataset ${o.dataset}${
      o.dataset === "proxy" ? ` (${o.split} split)` : ""
    }, ${rows.length} rows, eps ${o.eps}, seed ${o.seed}`,
  });
  console.log(
    `${table.length} table line(s): ${join(o.out, "table.md")}, ${join(o.out, "report.html")}`,
  );
  return 0;
}
