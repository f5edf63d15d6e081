/**
 * The rows files of `deno task eval` (`rows.jsonl`, `rows-<i>-of-<n>.jsonl`: one finished row
 * per line, appended as it goes) and the tables written from them.
 *
 * @module
 */

import { join } from "path";
import { writeFileAtomic } from "../_fs.ts";
import { evalReportHtml } from "../report/eval_html.ts";
import {
  buildTable,
  type EvalRow,
  EvalRowSchema,
  rowKey,
  tableCsv,
  tableMarkdown,
  type TableRow,
} from "./robustness.ts";
import { readExamples } from "./examples.ts";
import { crossVictimMarkdown, uploadMarkdown } from "./transfer.ts";

const ROWS_FILE = /^rows(-\d+-of-\d+)?\.jsonl$/;

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

async function readFile(file: string, repair: boolean): Promise<EvalRow[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
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
        await Deno.writeTextFile(file, text.slice(0, good));
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
 * The rows of every rows file in `dir` (or of `only`), deduplicated by (video, victim, method)
 * (the first wins). An unfinished last line (no newline) is ignored, and with `repair` cut off
 * the file so appending can go on; any other bad line throws, naming the file and line.
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
  const files: string[] = [];
  if (options.only) files.push(options.only);
  else {
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.isFile && ROWS_FILE.test(e.name)) files.push(join(dir, e.name));
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    files.sort();
  }
  const seen = new Set<string>();
  const out: EvalRow[] = [];
  for (const f of files) {
    for (const r of await readFile(f, options.repair ?? false)) {
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
 * Writes `table.json`, `table.csv`, `table.md` ({@link evalMarkdown}) and `report.html` (with
 * the examples in `dir/examples/`) of `rows` into `dir` (each atomically); returns the table.
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
  options: { description?: string } = {},
): Promise<TableRow[]> {
  const table = buildTable(rows);
  await writeFileAtomic(
    join(dir, "table.json"),
    JSON.stringify({ version: 1, rows: rows.length, table }, null, 2) + "\n",
  );
  await writeFileAtomic(join(dir, "table.csv"), tableCsv(table));
  await writeFileAtomic(join(dir, "table.md"), evalMarkdown(table));
  await writeFileAtomic(
    join(dir, "report.html"),
    evalReportHtml(table, {
      description: options.description,
      examples: await readExamples(dir),
    }),
  );
  return table;
}
