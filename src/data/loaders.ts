/**
 * Loaders for real VQA datasets, laid out as their authors ship them, and for a generic
 * manifest. Every loader validates each row with zod, reports a bad row by its number (the
 * header is row 1) and field, and returns the labelled videos that exist plus the list of those
 * the label file names but that are missing (never skipped silently).
 *
 * - KoNViD-1k: `KoNViD_1k_attributes.csv` (`flickr_id`, `MOS`, optionally `file_name`) in the
 *   root or in `KoNViD_1k_metadata/`; videos `<flickr_id>.mp4` in `KoNViD_1k_videos/` (or the
 *   root).
 * - LIVE-VQC: a CSV of the labels (a name column `File`, `filename`, `name`, `video` or
 *   `video_name`; a `MOS` column), by default the first `*.csv` in the root; videos in `Video/`.
 * - YouTube-UGC: the MOS sheet saved as CSV (`vid`, `MOS full`), by default the first `*.csv` in
 *   the root; videos `<vid>.<ext>` anywhere under `original_videos/` (the category and
 *   resolution sub-folders included), or the root.
 * - Generic: CSV or JSON with `path` and `mos` (JSON: an array of objects, or `{ items: [...] }`);
 *   paths relative to the label file's folder.
 *
 * Every loader also checks the values: a MOS must be a finite number within `mosRange` (default
 * {@link DEFAULT_MOS_RANGE}, [0, 100], which holds the scales of KoNViD-1k and YouTube-UGC, 1..5,
 * and of LIVE-VQC, 0..100); two rows naming the same video are refused, naming both rows; a name
 * or path is resolved like a clip path of the proxy manifest, relative to its folder and never
 * outside it (no absolute path, no `..`); a listed video that is a FIFO, device, socket or folder
 * is refused by name (a symbolic link to a regular file is followed). Label files must be regular
 * files too.
 *
 * @module
 */

import * as path from "path";
import { z } from "zod";
import { checkRegularFile, isDir, isFile, PathError } from "../_fs.ts";
import { zodIssueMessage } from "../_zod.ts";
import { CsvSyntaxError, parseCsv } from "./csv.ts";
import { DatasetError, type DatasetItem, type LoadedDataset } from "./types.ts";

/**
 * The dataset formats {@link loadDataset} knows.
 *
 * @example
 * ```ts
 * import { DATASET_FORMATS } from "./loaders.ts";
 * DATASET_FORMATS.includes("konvid"); // true
 * ```
 */
export const DATASET_FORMATS = ["konvid", "live-vqc", "youtube-ugc", "manifest"] as const;

/**
 * One dataset format.
 *
 * @example
 * ```ts
 * import { type DatasetFormat, loadDataset } from "./loaders.ts";
 * const format: DatasetFormat = "youtube-ugc";
 * await loadDataset(format, "/data/YouTube-UGC");
 * ```
 */
export type DatasetFormat = (typeof DATASET_FORMATS)[number];

/**
 * Options shared by the loaders.
 *
 * @example
 * ```ts
 * import { loadKonvid, type LoaderOptions } from "./loaders.ts";
 * const options: LoaderOptions = { videos: "/mnt/videos/konvid" };
 * await loadKonvid("/data/KoNViD-1k", options);
 * ```
 */
export interface LoaderOptions {
  /** The label file, when it is not in its usual place. */
  labels?: string;
  /** The video folder, when it is not in its usual place. */
  videos?: string;
  /** The range a MOS must lie in, inclusive (default {@link DEFAULT_MOS_RANGE}). */
  mosRange?: readonly [number, number];
}

/**
 * The MOS range a loader accepts unless told otherwise: [0, 100]. It holds the 1..5 scale of
 * KoNViD-1k and YouTube-UGC (and of the proxy labels) and the 0..100 scale of LIVE-VQC; a value
 * outside it (a sign error, a z-score, `1e300`) is a broken label file.
 *
 * @example
 * ```ts
 * import { DEFAULT_MOS_RANGE, loadGenericManifest } from "./loaders.ts";
 * console.log(DEFAULT_MOS_RANGE); // [0, 100]
 * await loadGenericManifest("labels.csv", { mosRange: [1, 5] });
 * ```
 */
export const DEFAULT_MOS_RANGE: readonly [number, number] = [0, 100];

/** The largest label file read (bytes): far above any real dataset's, far below a runaway file. */
const MAX_LABEL_FILE_BYTES = 256 * 2 ** 20;

/** Checks a MOS range option. */
function mosRangeOf(options: { mosRange?: readonly [number, number] }): readonly [number, number] {
  const r = options.mosRange ?? DEFAULT_MOS_RANGE;
  if (
    !Array.isArray(r) || r.length !== 2 || !Number.isFinite(r[0]) || !Number.isFinite(r[1]) ||
    r[0] > r[1]
  ) {
    throw new RangeError(`mosRange: expected [low, high] with finite low <= high, got ${r}`);
  }
  return r;
}

/** Video file extensions looked for when a label names a video without one. */
const VIDEO_EXT = [".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".yuv", ".y4m"];

/** A field's text as messages quote it: `'abc'`. */
const quoted = (s: string) => `'${JSON.stringify(s).slice(1, -1)}'`;

/**
 * A MOS from a CSV field (`3.5`, ` 4 `, `1e0`): a finite number within `range`, with a message
 * naming what came.
 */
function csvMos(range: readonly [number, number]) {
  return z.string().transform((s, ctx) => {
    const t = s.trim();
    const v = t === "" ? NaN : Number(t);
    if (!Number.isFinite(v)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `expected a number, got ${quoted(s)}`,
      });
      return z.NEVER;
    }
    if (v < range[0] || v > range[1]) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `expected a MOS from ${range[0]} to ${range[1]}, got ${quoted(t)}`,
      });
      return z.NEVER;
    }
    return v;
  });
}

/** A non-empty name from a CSV field. */
const csvName = z.string().transform((s, ctx) => {
  const t = s.trim();
  if (!t) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: "expected a name, got an empty field" });
    return z.NEVER;
  }
  return t;
});

/** The detail of a PathError about `p`, without the leading `p: `. */
function pathDetail(e: PathError, p: string): string {
  return e.message.startsWith(`${p}: `) ? e.message.slice(p.length + 2) : e.message;
}

/**
 * Reads a label file: a regular file (FIFOs and devices are refused before they are opened) of
 * at most 256 MiB.
 */
async function readText(file: string): Promise<string> {
  let size: number;
  try {
    size = await checkRegularFile(file, "label file");
  } catch (e) {
    if (!(e instanceof PathError)) throw e;
    const missing = /: no such label file$/.test(e.message);
    throw new DatasetError(file, missing ? "no such file" : pathDetail(e, file), { cause: e });
  }
  if (size > MAX_LABEL_FILE_BYTES) {
    throw new DatasetError(
      file,
      `label file of ${size} bytes; more than the ${MAX_LABEL_FILE_BYTES} bytes a label file may have`,
    );
  }
  try {
    return await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DatasetError(file, "no such file", { cause: e });
    }
    throw new DatasetError(file, `cannot read: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Whether a name or path from a label file stays inside the folder it is resolved against, as
 * the proxy manifest's clip paths must: not absolute, no `..` part (either separator).
 */
function confined(p: string): boolean {
  return !path.isAbsolute(p) && !/^[a-zA-Z]:/.test(p) &&
    !p.split(/[\\/]/).includes("..");
}

/** Refuses a name or path that would leave its folder, naming the row, field and value. */
function checkConfined(
  file: string,
  value: string,
  where: { row: number; field: string },
  base: string,
): void {
  if (!confined(value)) {
    throw new DatasetError(
      file,
      `must be a path inside ${base} (relative, without '..'), got ${quoted(value)}`,
      where,
    );
  }
}

/**
 * What is at a listed video's path: `"file"` (a regular file, or a symbolic link to one),
 * `"missing"` (nothing, or a dangling link), or a DatasetError naming the row, field and value
 * when it is a folder, FIFO, device or socket.
 */
async function videoAt(
  file: string,
  p: string,
  where: { row: number; field: string; value: string },
): Promise<"file" | "missing"> {
  try {
    await checkRegularFile(p, "video");
    return "file";
  } catch (e) {
    if (!(e instanceof PathError)) throw e;
    if (!(await Deno.stat(p).then(() => true, () => false))) return "missing";
    throw new DatasetError(file, `${quoted(where.value)}: ${pathDetail(e, p)}`, {
      row: where.row,
      field: where.field,
    });
  }
}

/**
 * Refuses a second row naming a video already named (the same path once resolved, symbolic links
 * included), naming both rows.
 */
async function checkDuplicate(
  file: string,
  seen: Map<string, number>,
  resolved: string,
  where: { row: number; field: string; value: string },
): Promise<void> {
  const key = await Deno.realPath(resolved).catch(() => resolved);
  const before = seen.get(key);
  if (before !== undefined) {
    throw new DatasetError(
      file,
      `${quoted(where.value)} is the same video as row ${before} (${resolved}); ` +
        "each video may be listed once",
      { row: where.row, field: where.field },
    );
  }
  seen.set(key, where.row);
}

/** The first of `candidates` that is a file, else a DatasetError listing them. */
async function findFile(candidates: string[], what: string): Promise<string> {
  for (const c of candidates) if (await isFile(c)) return c;
  throw new DatasetError(
    candidates[0],
    `${what} not found (looked for ${candidates.join(", ")}); pass its path explicitly`,
  );
}

/** The first `*.csv` in a folder (sorted by name), if any. */
async function firstCsv(dir: string): Promise<string | null> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.toLowerCase().endsWith(".csv")) names.push(e.name);
    }
  } catch {
    return null;
  }
  names.sort();
  return names.length ? path.join(dir, names[0]) : null;
}

/** Wanted columns: key -> accepted header names. */
type Columns = Record<string, string[]>;

/** Header names compared case-insensitively, ignoring spaces and underscores. */
const normHeader = (s: string) => s.toLowerCase().replace(/[\s_]/g, "");

/**
 * Parses a CSV label file into rows keyed by header name; checks that the wanted columns are
 * present (matching case-insensitively, ignoring spaces and underscores). `columns` may be a
 * function of the parsed (trimmed) header, for files whose columns vary; the header is parsed
 * once, with the rest of the file, so a quoted line break in it is read correctly.
 */
function csvRows(
  file: string,
  text: string,
  columns: Columns | ((header: string[]) => Columns),
): { rows: { row: number; values: Record<string, string> }[]; headers: Record<string, string> } {
  let records;
  try {
    records = parseCsv(text);
  } catch (e) {
    if (e instanceof CsvSyntaxError) throw new DatasetError(file, e.message, { row: e.line });
    throw e;
  }
  if (records.length === 0) throw new DatasetError(file, "empty file (no header row)");
  const header = records[0].fields.map((h) => h.trim());
  const wanted = typeof columns === "function" ? columns(header) : columns;
  const index: Record<string, number> = {};
  for (const [key, names] of Object.entries(wanted)) {
    const i = header.findIndex((h) => names.some((n) => normHeader(n) === normHeader(h)));
    if (i < 0) {
      throw new DatasetError(
        file,
        `no ${names.map((n) => `'${n}'`).join(" or ")} column (header: ${header.join(", ")})`,
        { row: records[0].line },
      );
    }
    index[key] = i;
  }
  const headers: Record<string, string> = {};
  for (const [key, i] of Object.entries(index)) headers[key] = header[i];
  const rows = records.slice(1).map((r) => {
    const values: Record<string, string> = {};
    for (const [key, i] of Object.entries(index)) {
      if (i >= r.fields.length) {
        throw new DatasetError(file, `has ${r.fields.length} fields, the header ${header.length}`, {
          row: r.line,
          field: header[i],
        });
      }
      values[key] = r.fields[i];
    }
    return { row: r.line, values };
  });
  return { rows, headers };
}

/** Validates one row with a zod schema; the first issue becomes a DatasetError naming the field. */
function parseRow<T extends z.ZodTypeAny>(
  file: string,
  row: number,
  schema: T,
  values: unknown,
  fieldNames: Record<string, string>,
): z.infer<T> {
  const r = schema.safeParse(values);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const key = String(issue.path[0] ?? "");
  throw new DatasetError(file, zodIssueMessage(issue), {
    row,
    field: fieldNames[key] ?? (key || undefined),
  });
}

/** A file found under a video folder: its path, and what it is when it is not a regular file. */
interface Indexed {
  path: string;
  /** Why it cannot be read as a video ("a FIFO (named pipe), not a regular file"), if so. */
  problem?: string;
}

/**
 * Indexes the files under a folder (recursively, at most 4 levels, symbolic links followed) by
 * base name and by name stem. Special files (FIFOs, devices, sockets) are indexed with their
 * problem, so that a row naming one is refused by name rather than reported missing.
 */
async function indexVideos(dir: string): Promise<Map<string, Indexed>> {
  const map = new Map<string, Indexed>();
  const add = (name: string, entry: Indexed) => {
    if (!map.has(name)) map.set(name, entry);
    const ext = path.extname(name);
    if (VIDEO_EXT.includes(ext.toLowerCase())) {
      const stem = name.slice(0, -ext.length);
      if (!map.has(stem)) map.set(stem, entry);
    }
  };
  const walk = async (d: string, depth: number) => {
    if (depth > 4) return;
    let entries: Deno.DirEntry[] = [];
    try {
      entries = await Array.fromAsync(Deno.readDir(d));
    } catch {
      return;
    }
    entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    for (const e of entries) {
      const p = path.join(d, e.name);
      // A symbolic link is what it points to (a dangling one is nothing).
      const info = e.isSymlink ? await Deno.stat(p).catch(() => null) : e;
      if (!info) continue;
      if (info.isDirectory) await walk(p, depth + 1);
      else if (info.isFile) add(e.name, { path: p });
      else {
        try {
          await checkRegularFile(p, "video");
          add(e.name, { path: p });
        } catch (err) {
          if (!(err instanceof PathError)) throw err;
          add(e.name, { path: p, problem: pathDetail(err, p).replace(/^video is /, "is ") });
        }
      }
    }
  };
  await walk(dir, 0);
  return map;
}

/** A row of a dataset's label file, resolved: the name, MOS, where it is, and its path guess. */
interface LabelRow {
  name: string;
  mos: number;
  guess: string;
  row: number;
  field: string;
}

/**
 * Resolves label names to video files; the unresolved ones become missing paths. A name that
 * resolves to a special file, or to a video an earlier row named, is refused.
 */
async function resolveVideos(
  file: string,
  rows: LabelRow[],
  index: Map<string, Indexed>,
): Promise<LoadedDataset> {
  const items: DatasetItem[] = [];
  const missing: string[] = [];
  const seen = new Map<string, number>();
  for (const r of rows) {
    const where = { row: r.row, field: r.field, value: r.name };
    const found = index.get(r.name) ?? index.get(path.basename(r.name));
    if (found?.problem) {
      throw new DatasetError(file, `${quoted(r.name)}: ${found.path} ${found.problem}`, {
        row: r.row,
        field: r.field,
      });
    }
    await checkDuplicate(file, seen, found?.path ?? r.guess, where);
    if (found) items.push({ path: found.path, mos: r.mos, name: r.name });
    else missing.push(r.guess);
  }
  return { items, missing };
}

/**
 * Loads KoNViD-1k: `KoNViD_1k_attributes.csv` (`flickr_id`, `MOS`; a `file_name` column, where
 * present, names the video) and the videos in `KoNViD_1k_videos/` (or the root).
 *
 * @example
 * ```ts
 * import { loadKonvid } from "./loaders.ts";
 * const { items, missing } = await loadKonvid("/data/KoNViD-1k");
 * console.log(items.length, missing.length);
 * ```
 */
export async function loadKonvid(
  root: string,
  options: LoaderOptions = {},
): Promise<LoadedDataset> {
  const range = mosRangeOf(options);
  const labels = options.labels ?? await findFile([
    path.join(root, "KoNViD_1k_attributes.csv"),
    path.join(root, "KoNViD_1k_metadata", "KoNViD_1k_attributes.csv"),
    path.join(root, "metadata", "KoNViD_1k_attributes.csv"),
  ], "KoNViD_1k_attributes.csv");
  const file = labels;
  const { rows, headers } = csvRows(file, await readText(labels), (header) => ({
    id: ["flickr_id"],
    mos: ["MOS"],
    ...(header.some((h) => h.toLowerCase() === "file_name") ? { fileName: ["file_name"] } : {}),
  }));
  const schema = z.object({ id: csvName, mos: csvMos(range), fileName: z.string().optional() });
  const videos = options.videos ??
    (await isDir(path.join(root, "KoNViD_1k_videos")) ? path.join(root, "KoNViD_1k_videos") : root);
  const parsed = rows.map(({ row, values }): LabelRow => {
    const r = parseRow(file, row, schema, values, headers);
    const fromFile = Boolean(r.fileName?.trim());
    const name = r.fileName?.trim() || r.id;
    const field = fromFile ? headers.fileName : headers.id;
    checkConfined(file, name, { row, field }, videos);
    const guessName = path.extname(name) ? name : `${name}.mp4`;
    return { name, mos: r.mos, guess: path.join(videos, guessName), row, field };
  });
  return resolveVideos(file, parsed, await indexVideos(videos));
}

/**
 * Loads LIVE-VQC from a CSV of its labels (name column `File`/`filename`/`name`/`video`/
 * `video_name`, and `MOS`) and the videos in `Video/` (or the root).
 *
 * @example
 * ```ts
 * import { loadLiveVqc } from "./loaders.ts";
 * const { items, missing } = await loadLiveVqc("/data/LIVE-VQC", { labels: "/data/live_vqc.csv" });
 * ```
 */
export async function loadLiveVqc(
  root: string,
  options: LoaderOptions = {},
): Promise<LoadedDataset> {
  const range = mosRangeOf(options);
  const labels = options.labels ?? await firstCsv(root);
  if (!labels) {
    throw new DatasetError(root, "no label CSV found in the root; pass it with `labels`");
  }
  const file = labels;
  const { rows, headers } = csvRows(file, await readText(labels), {
    name: ["File", "filename", "file_name", "name", "video", "video_name"],
    mos: ["MOS"],
  });
  const schema = z.object({ name: csvName, mos: csvMos(range) });
  const videos = options.videos ??
    (await isDir(path.join(root, "Video")) ? path.join(root, "Video") : root);
  const parsed = rows.map(({ row, values }): LabelRow => {
    const r = parseRow(file, row, schema, values, headers);
    checkConfined(file, r.name, { row, field: headers.name }, videos);
    const guessName = path.extname(r.name) ? r.name : `${r.name}.mp4`;
    return {
      name: r.name,
      mos: r.mos,
      guess: path.join(videos, guessName),
      row,
      field: headers.name,
    };
  });
  return resolveVideos(file, parsed, await indexVideos(videos));
}

/**
 * Loads YouTube-UGC from its MOS sheet as CSV (`vid`, `MOS full`; `MOS` also accepted) and the
 * videos under `original_videos/` (sub-folders included) or the root.
 *
 * @example
 * ```ts
 * import { loadYoutubeUgc } from "./loaders.ts";
 * const { items, missing } = await loadYoutubeUgc("/data/YouTube-UGC");
 * ```
 */
export async function loadYoutubeUgc(
  root: string,
  options: LoaderOptions = {},
): Promise<LoadedDataset> {
  const range = mosRangeOf(options);
  const labels = options.labels ?? await firstCsv(root);
  if (!labels) {
    throw new DatasetError(root, "no label CSV found in the root; pass it with `labels`");
  }
  const file = labels;
  const { rows, headers } = csvRows(file, await readText(labels), (header) => ({
    vid: ["vid"],
    mos: [header.some((h) => normHeader(h) === "mosfull") ? "MOS full" : "MOS"],
  }));
  const schema = z.object({ vid: csvName, mos: csvMos(range) });
  const videos = options.videos ??
    (await isDir(path.join(root, "original_videos")) ? path.join(root, "original_videos") : root);
  const parsed = rows.map(({ row, values }): LabelRow => {
    const r = parseRow(file, row, schema, values, headers);
    checkConfined(file, r.vid, { row, field: headers.vid }, videos);
    const guessName = path.extname(r.vid) ? r.vid : `${r.vid}.mkv`;
    return {
      name: r.vid,
      mos: r.mos,
      guess: path.join(videos, guessName),
      row,
      field: headers.vid,
    };
  });
  return resolveVideos(file, parsed, await indexVideos(videos));
}

/** A JSON item of a generic manifest, its MOS within `range`. */
function jsonItem(range: readonly [number, number]) {
  return z.object({
    path: z.string().min(1, { message: "expected a path, got an empty string" }),
    mos: z.number().finite().superRefine((v, ctx) => {
      if (v < range[0] || v > range[1]) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          message: `expected a MOS from ${range[0]} to ${range[1]}, got ${v}`,
        });
      }
    }),
  }).passthrough();
}

/**
 * Options of {@link loadGenericManifest}.
 *
 * @example
 * ```ts
 * import { type GenericManifestOptions, loadGenericManifest } from "./loaders.ts";
 * const options: GenericManifestOptions = { mosRange: [1, 5] };
 * await loadGenericManifest("/data/mine/labels.csv", options);
 * ```
 */
export interface GenericManifestOptions {
  /** The folder paths are relative to (default: the manifest's folder). */
  videos?: string;
  /** The range a MOS must lie in, inclusive (default {@link DEFAULT_MOS_RANGE}). */
  mosRange?: readonly [number, number];
}

/**
 * Loads a generic manifest: a CSV with `path` and `mos` columns, or JSON (an array of
 * `{ path, mos }`, or `{ items: [...] }`). Paths are resolved as the proxy manifest's clip paths
 * are: relative to the manifest's folder (or `videos`), never outside it (an absolute path or a
 * `..` part is refused, naming the row). A MOS must lie in `mosRange`; a video listed twice, or
 * one that is a FIFO, device, socket or folder, is refused naming the row. Videos that do not
 * exist are returned in `missing`.
 *
 * @example
 * ```ts
 * import { loadGenericManifest } from "./loaders.ts";
 * const { items, missing } = await loadGenericManifest("/data/mine/labels.csv");
 * ```
 */
export async function loadGenericManifest(
  file: string,
  options: GenericManifestOptions = {},
): Promise<LoadedDataset> {
  const range = mosRangeOf(options);
  const text = await readText(file);
  const name = file;
  const base = path.resolve(options.videos ?? path.dirname(file));
  const entries: { path: string; mos: number; row: number; field: string }[] = [];
  if (file.toLowerCase().endsWith(".json")) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new DatasetError(name, `not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    const list = Array.isArray(json)
      ? json
      : (json && typeof json === "object" && Array.isArray((json as { items?: unknown }).items))
      ? (json as { items: unknown[] }).items
      : null;
    if (!list) {
      throw new DatasetError(name, "expected an array of { path, mos } or { items: [...] }");
    }
    const schema = jsonItem(range);
    list.forEach((v, i) => {
      // JSON items are numbered from 1, like CSV data rows after the header.
      const item = parseRow(name, i + 1, schema, v, { path: "path", mos: "mos" });
      entries.push({ path: item.path, mos: item.mos, row: i + 1, field: "path" });
    });
  } else {
    const { rows, headers } = csvRows(name, text, { path: ["path"], mos: ["mos"] });
    const schema = z.object({ path: csvName, mos: csvMos(range) });
    for (const { row, values } of rows) {
      const item = parseRow(name, row, schema, values, headers);
      entries.push({ path: item.path, mos: item.mos, row, field: headers.path });
    }
  }
  const items: DatasetItem[] = [];
  const missing: string[] = [];
  const seen = new Map<string, number>();
  for (const e of entries) {
    const where = { row: e.row, field: e.field, value: e.path };
    checkConfined(name, e.path, where, base);
    const p = path.resolve(base, e.path);
    await checkDuplicate(name, seen, p, where);
    if (await videoAt(name, p, where) === "file") items.push({ path: p, mos: e.mos, name: e.path });
    else missing.push(p);
  }
  return { items, missing };
}

/**
 * Loads a dataset by format name: `konvid`, `live-vqc` and `youtube-ugc` take the dataset's
 * root folder; `manifest` takes the label file (as `root`, or `labels`).
 *
 * @example
 * ```ts
 * import { loadDataset } from "./loaders.ts";
 * const d = await loadDataset("konvid", "/data/KoNViD-1k");
 * ```
 */
export function loadDataset(
  format: DatasetFormat,
  root: string,
  options: LoaderOptions = {},
): Promise<LoadedDataset> {
  switch (format) {
    case "konvid":
      return loadKonvid(root, options);
    case "live-vqc":
      return loadLiveVqc(root, options);
    case "youtube-ugc":
      return loadYoutubeUgc(root, options);
    case "manifest":
      return loadGenericManifest(options.labels ?? root, {
        videos: options.videos,
        mosRange: options.mosRange,
      });
  }
}
