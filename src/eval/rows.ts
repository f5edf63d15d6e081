/**
 * The rows files of `deno task eval` (`rows.jsonl`, `rows-<i>-of-<n>.jsonl`: one finished row
 * per line, appended as it goes) and the tables written from them.
 *
 * @module
 */

import { basename, join } from "path";
import { checkRegularFile, writeFileAtomic } from "../_fs.ts";
import { insideOutput } from "../_output.ts";
import {
  buildTable,
  type EvalRow,
  EvalRowSchema,
  rowKey,
  tableCsv,
  tableMarkdown,
  type TableRow,
} from "./robustness.ts";
import { crossVictimMarkdown, uploadMarkdown } from "./transfer.ts";

const ROWS_FILE = /^rows(-\d+-of-\d+)?\.jsonl$/;
const FAILURES_FILE = /^failures(-\d+-of-\d+)?\.jsonl$/;

/**
 * The files `deno task eval` writes in its output folder besides the rows files: the tables and
 * the report. `--overwrite` removes these (and `examples/`), nothing else.
 *
 * @example
 * ```ts
 * import { TABLE_FILES } from "./rows.ts";
 * TABLE_FILES.includes("report.html"); // true
 * ```
 */
export const TABLE_FILES: readonly string[] = [
  "table.json",
  "table.csv",
  "table.md",
  "report.html",
];

/**
 * The rows file of a run: `rows.jsonl`, or `rows-<i>-of-<n>.jsonl` for a shard.
 *
 * @example
 * ```ts
 * import { rowsFileName } from "./rows.ts";
 * rowsFileName({ i: 1, n: 4 }); // "rows-1-of-4.jsonl"
 * ```
 */
export function rowsFileName(shard?: { i: number; n: number }): string {
  return shard ? `rows-${shard.i}-of-${shard.n}.jsonl` : "rows.jsonl";
}

/**
 * The failures file of a run (`--keep-going`): `failures.jsonl`, or `failures-<i>-of-<n>.jsonl`
 * for a shard. One JSON object per line: video, path, victim, methods, message.
 *
 * @example
 * ```ts
 * import { failuresFileName } from "./rows.ts";
 * failuresFileName({ i: 1, n: 4 }); // "failures-1-of-4.jsonl"
 * ```
 */
export function failuresFileName(shard?: { i: number; n: number }): string {
  return shard ? `failures-${shard.i}-of-${shard.n}.jsonl` : "failures.jsonl";
}

/**
 * Whether `name` is a file name eval writes in its output folder: a rows file, a failures file,
 * a table or the report (not `examples/`).
 *
 * @example
 * ```ts
 * import { isEvalFile } from "./rows.ts";
 * isEvalFile("rows-0-of-2.jsonl"); // true
 * isEvalFile("notes.txt"); // false
 * ```
 */
export function isEvalFile(name: string): boolean {
  return ROWS_FILE.test(name) || FAILURES_FILE.test(name) || TABLE_FILES.includes(name);
}

async function readFile(file: string, repair: boolean): Promise<EvalRow[]> {
  try {
    await Deno.lstat(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  // A FIFO or device would block or never end; a link to a regular file is read.
  await checkRegularFile(file, "rows file");
  const text = await Deno.readTextFile(file);
  const lines = text.split("\n");
  const rows: EvalRow[] = [];
  let good = 0; // characters of complete, valid lines
  for (const [k, line] of lines.entries()) {
    if (!line.trim()) {
      if (k < lines.length - 1) good += line.length + 1;
      continue;
    }
    const last = k === lines.length - 1; // no newline after it: an interrupted write
    let row: EvalRow | undefined;
    try {
      const r = EvalRowSchema.safeParse(JSON.parse(line));
      if (r.success) row = r.data;
    } catch { /* not JSON */ }
    if (!row || last) {
      if (last && repair) {
        console.error(`eval: ${file}: dropping an unfinished last line`);
        await writeFileAtomic(file, text.slice(0, good));
        break;
      }
      if (last) break;
      throw new Error(`${file} line ${k + 1}: not a valid eval row`);
    }
    rows.push(row);
    good += line.length + 1;
  }
  return rows;
}

/**
 * The paths of the rows files in `dir` (`rows.jsonl`, `rows-<i>-of-<n>.jsonl`), sorted; none
 * when `dir` does not exist.
 *
 * @example
 * ```ts
 * import { rowsFilesIn } from "./rows.ts";
 * const files = await rowsFilesIn("out/eval");
 * ```
 */
export async function rowsFilesIn(dir: string): Promise<string[]> {
  const files: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isDirectory && ROWS_FILE.test(e.name)) files.push(join(dir, e.name));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return files.sort();
}

/**
 * The rows of each rows file in `dir` (or of `only`), file by file in name order. An unfinished
 * last line (no newline) is ignored, and with `repair` cut off the file so appending can go on;
 * any other bad line throws, naming the file and line. A rows file that is not a regular file
 * (a FIFO, a device) is refused by name.
 *
 * @example
 * ```ts
 * import { readRowFiles } from "./rows.ts";
 * for (const { file, rows } of await readRowFiles("out/eval")) console.log(file, rows.length);
 * ```
 */
export async function readRowFiles(
  dir: string,
  options: { only?: string; repair?: boolean } = {},
): Promise<{ file: string; rows: EvalRow[] }[]> {
  const files = options.only ? [options.only] : await rowsFilesIn(dir);
  const out: { file: string; rows: EvalRow[] }[] = [];
  for (const f of files) out.push({ file: f, rows: await readFile(f, options.repair ?? false) });
  return out;
}

/**
 * The rows of every rows file in `dir` (or of `only`), deduplicated by (video, victim, method)
 * (the first wins); see {@link readRowFiles}.
 *
 * @example
 * ```ts
 * import { readRows } from "./rows.ts";
 * const rows = await readRows("out/eval");
 * ```
 */
export async function readRows(
  dir: string,
  options: { only?: string; repair?: boolean } = {},
): Promise<EvalRow[]> {
  const seen = new Set<string>();
  const out: EvalRow[] = [];
  for (const { rows } of await readRowFiles(dir, options)) {
    for (const r of rows) {
      const k = rowKey(r);
      if (!seen.has(k)) {
        seen.add(k);
        out.push(r);
      }
    }
  }
  return out;
}

/**
 * The Markdown of an eval run: the table, the upload table and (when there are cross-victim
 * lines) the cross-victim table, each under a heading.
 *
 * @example
 * ```ts
 * import { evalMarkdown } from "./rows.ts";
 * // console.log(evalMarkdown(table));
 * ```
 */
export function evalMarkdown(table: readonly TableRow[]): string {
  const cross = crossVictimMarkdown(table);
  return [
    "## Robustness\n",
    tableMarkdown(table),
    "## After an upload (x264-420, crf 23)\n",
    uploadMarkdown(table),
    ...(cross ? ["## Cross-victim (generator trained against the row's victim)\n", cross] : []),
  ].join("\n");
}

/**
 * Writes `table.json`, `table.csv` and `table.md` ({@link evalMarkdown}) of `rows` into `dir`
 * (each atomically, each checked to lie inside `dir` after resolving links); returns the table.
 * (`deno task eval` then renders report.html from the table and the examples, in src/report.)
 *
 * @example
 * ```ts
 * import { readRows, writeTables } from "./rows.ts";
 * await writeTables("out/eval", await readRows("out/eval"));
 * ```
 */
export async function writeTables(
  dir: string,
  rows: readonly EvalRow[],
): Promise<TableRow[]> {
  const root = await Deno.realPath(dir);
  const table = buildTable(rows);
  const write = async (name: string, text: string) =>
    await writeFileAtomic(await insideOutput(root, name), text);
  await write(
    "table.json",
    JSON.stringify({ version: 1, rows: rows.length, table }, null, 2) + "\n",
  );
  await write("table.csv", tableCsv(table));
  await write("table.md", evalMarkdown(table));
  return table;
}

/**
 * Removes the output of earlier eval runs from the output folder `root` (a real path, from
 * `prepareOutputDir`): the rows files named in `rowsFiles`, the failures file named in
 * `failuresFile`, the tables and report ({@link TABLE_FILES}), and the examples: all of
 * `examples/` with `allExamples`, else those of the video indices in `exampleIndices`. Only
 * those names, each checked to lie inside `root`; every other file is left alone. Returns the
 * names removed.
 *
 * @example
 * ```ts
 * import { removeEvalOutputs } from "./rows.ts";
 * // await removeEvalOutputs(root, { rowsFiles: ["rows.jsonl"], allExamples: true });
 * ```
 */
export async function removeEvalOutputs(
  root: string,
  options: {
    rowsFiles?: readonly string[];
    failuresFile?: string;
    allExamples?: boolean;
    exampleIndices?: ReadonlySet<number>;
  },
): Promise<string[]> {
  const removed: string[] = [];
  const names = [...(options.rowsFiles ?? []), ...TABLE_FILES];
  if (options.failuresFile) names.push(options.failuresFile);
  for (const name of names) {
    if (!isEvalFile(name)) throw new Error(`${name}: not a file eval writes; not removed`);
    const p = await insideOutput(root, basename(name));
    const info = await Deno.lstat(p).catch(() => null);
    if (!info || info.isDirectory) continue;
    await Deno.remove(p);
    removed.push(basename(name));
  }
  const examples = await insideOutput(root, "examples");
  const info = await Deno.lstat(examples).catch(() => null);
  if (info?.isDirectory) {
    for await (const e of Deno.readDir(examples)) {
      const m = /^(\d+)-.*\.json$/.exec(e.name);
      if (!m || e.isDirectory) continue;
      if (!options.allExamples && !options.exampleIndices?.has(Number(m[1]))) continue;
      await Deno.remove(await insideOutput(root, "examples", e.name));
      removed.push(`examples/${e.name}`);
    }
  }
  return removed;
}
