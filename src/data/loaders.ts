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
 * @module
 */

import * as path from "path";
import { z } from "zod";
import { isDir, isFile } from "../_fs.ts";
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
}

/** Video file extensions looked for when a label names a video without one. */
const VIDEO_EXT = [".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".yuv", ".y4m"];

/** A finite number from a CSV field (`3.5`, ` 4 `, `1e0`), with a message naming what came. */
const csvNumber = z.string().transform((s, ctx) => {
  const t = s.trim();
  const v = t === "" ? NaN : Number(t);
  if (!Number.isFinite(v)) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `expected a number, got ${JSON.stringify(s).replace(/^"|"$/g, "'")}`,
    });
    return z.NEVER;
  }
  return v;
});

/** A non-empty name from a CSV field. */
const csvName = z.string().transform((s, ctx) => {
  const t = s.trim();
  if (!t) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: "expected a name, got an empty field" });
    return z.NEVER;
  }
  return t;
});

async function readText(file: string): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DatasetError(file, "no such file", { cause: e });
    }
    throw new DatasetError(file, `cannot read: ${(e as Error).message}`, { cause: e });
  }
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

/** Indexes the video files under a folder (recursively) by base name and by name stem. */
async function indexVideos(dir: string): Promise<Map<string, string>> {
  const map = new Map<string, string>();
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
      if (e.isDirectory) await walk(p, depth + 1);
      else if (e.isFile) {
        if (!map.has(e.name)) map.set(e.name, p);
        const ext = path.extname(e.name);
        if (VIDEO_EXT.includes(ext.toLowerCase())) {
          const stem = e.name.slice(0, -ext.length);
          if (!map.has(stem)) map.set(stem, p);
        }
      }
    }
  };
  await walk(dir, 0);
  return map;
}

/** Resolves label names to video files; the unresolved ones become missing paths. */
function resolveVideos(
  rows: { name: string; mos: number; guess: string }[],
  index: Map<string, string>,
): LoadedDataset {
  const items: DatasetItem[] = [];
  const missing: string[] = [];
  for (const r of rows) {
    const found = index.get(r.name) ?? index.get(path.basename(r.name));
    if (found) items.push({ path: found, mos: r.mos, name: r.name });
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
  const schema = z.object({ id: csvName, mos: csvNumber, fileName: z.string().optional() });
  const videos = options.videos ??
    (await isDir(path.join(root, "KoNViD_1k_videos")) ? path.join(root, "KoNViD_1k_videos") : root);
  const parsed = rows.map(({ row, values }) => {
    const r = parseRow(file, row, schema, values, headers);
    const name = r.fileName?.trim() || r.id;
    const guessName = path.extname(name) ? name : `${name}.mp4`;
    return { name, mos: r.mos, guess: path.join(videos, guessName) };
  });
  return resolveVideos(parsed, await indexVideos(videos));
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
  const labels = options.labels ?? await firstCsv(root);
  if (!labels) {
    throw new DatasetError(root, "no label CSV found in the root; pass it with `labels`");
  }
  const file = labels;
  const { rows, headers } = csvRows(file, await readText(labels), {
    name: ["File", "filename", "file_name", "name", "video", "video_name"],
    mos: ["MOS"],
  });
  const schema = z.object({ name: csvName, mos: csvNumber });
  const videos = options.videos ??
    (await isDir(path.join(root, "Video")) ? path.join(root, "Video") : root);
  const parsed = rows.map(({ row, values }) => {
    const r = parseRow(file, row, schema, values, headers);
    const guessName = path.extname(r.name) ? r.name : `${r.name}.mp4`;
    return { name: r.name, mos: r.mos, guess: path.join(videos, guessName) };
  });
  return resolveVideos(parsed, await indexVideos(videos));
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
  const labels = options.labels ?? await firstCsv(root);
  if (!labels) {
    throw new DatasetError(root, "no label CSV found in the root; pass it with `labels`");
  }
  const file = labels;
  const { rows, headers } = csvRows(file, await readText(labels), (header) => ({
    vid: ["vid"],
    mos: [header.some((h) => normHeader(h) === "mosfull") ? "MOS full" : "MOS"],
  }));
  const schema = z.object({ vid: csvName, mos: csvNumber });
  const videos = options.videos ??
    (await isDir(path.join(root, "original_videos")) ? path.join(root, "original_videos") : root);
  const parsed = rows.map(({ row, values }) => {
    const r = parseRow(file, row, schema, values, headers);
    const guessName = path.extname(r.vid) ? r.vid : `${r.vid}.mkv`;
    return { name: r.vid, mos: r.mos, guess: path.join(videos, guessName) };
  });
  return resolveVideos(parsed, await indexVideos(videos));
}

const JsonItem = z.object({
  path: z.string().min(1, { message: "expected a path, got an empty string" }),
  mos: z.number().finite(),
}).passthrough();

/**
 * Loads a generic manifest: a CSV with `path` and `mos` columns, or JSON (an array of
 * `{ path, mos }`, or `{ items: [...] }`). Relative paths are resolved against the manifest's
 * folder.
 *
 * @example
 * ```ts
 * import { loadGenericManifest } from "./loaders.ts";
 * const { items, missing } = await loadGenericManifest("/data/mine/labels.csv");
 * ```
 */
export async function loadGenericManifest(
  file: string,
  options: { videos?: string } = {},
): Promise<LoadedDataset> {
  const text = await readText(file);
  const name = file;
  const base = options.videos ?? path.dirname(file);
  const entries: { path: string; mos: number }[] = [];
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
    list.forEach((v, i) => {
      // JSON items are numbered from 1, like CSV data rows after the header.
      entries.push(parseRow(name, i + 1, JsonItem, v, { path: "path", mos: "mos" }));
    });
  } else {
    const { rows, headers } = csvRows(name, text, { path: ["path"], mos: ["mos"] });
    const schema = z.object({ path: csvName, mos: csvNumber });
    for (const { row, values } of rows) {
      entries.push(parseRow(name, row, schema, values, headers));
    }
  }
  const items: DatasetItem[] = [];
  const missing: string[] = [];
  for (const e of entries) {
    const p = path.resolve(base, e.path);
    if (await isFile(p)) items.push({ path: p, mos: e.mos, name: e.path });
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
      return loadGenericManifest(options.labels ?? root, { videos: options.videos });
  }
}
