/**
 * Types shared by the dataset loaders and the proxy manifest: one labelled video, a loaded
 * dataset (items plus the files that are missing), and the error they throw.
 *
 * @module
 */

/**
 * One labelled video.
 *
 * @example
 * ```ts
 * import type { DatasetItem } from "./types.ts";
 * const item: DatasetItem = { path: "/data/konvid/KoNViD_1k_videos/3339962845.mp4", mos: 3.78 };
 * ```
 */
export interface DatasetItem {
  /** The video file (resolved against the dataset folder). */
  path: string;
  /** The label: mean opinion score (real datasets) or the proxy label, on the dataset's scale. */
  mos: number;
  /** The name as the label file gives it (for the proxy: the clip path in the manifest). */
  name?: string;
  /** Proxy only: the source image. */
  source?: string;
  /** Proxy only: train, val or test. */
  split?: string;
  /** Proxy only: the distortion type (`none` for pristine clips). */
  distortion?: string;
  /** Proxy only: the distortion level (0 for pristine clips). */
  level?: number;
}

/**
 * A dataset as a loader returns it: the items whose video exists, and the videos the label file
 * names that are not there (never skipped silently: the caller decides).
 *
 * @example
 * ```ts
 * import type { LoadedDataset } from "./types.ts";
 * function report(d: LoadedDataset) {
 *   console.log(`${d.items.length} videos, ${d.missing.length} missing`);
 * }
 * ```
 */
export interface LoadedDataset {
  /** Labelled videos, in the label file's order. */
  items: DatasetItem[];
  /** Paths of videos that the label file names but that do not exist. */
  missing: string[];
}

/**
 * An error reading a dataset: the file, and where one applies the row (1-based, counting the
 * header as row 1, as a spreadsheet shows it) and the field.
 *
 * @example
 * ```ts
 * import { DatasetError } from "./types.ts";
 * const e = new DatasetError("labels.csv", "expected a number, got 'abc'", {
 *   row: 17,
 *   field: "MOS",
 * });
 * console.log(e.message); // labels.csv row 17: field MOS: expected a number, got 'abc'
 * ```
 */
export class DatasetError extends Error {
  /** The file the error is about. */
  readonly file: string;
  /** The row (1-based, the header is row 1), when the error is about one. */
  readonly row: number | undefined;
  /** The field, when the error is about one. */
  readonly field: string | undefined;
  /** An error about `file` (at `options.row` and `options.field` when given): `detail`. */
  constructor(
    file: string,
    detail: string,
    options: { row?: number; field?: string; cause?: unknown } = {},
  ) {
    const where = (options.row === undefined ? "" : ` row ${options.row}`) +
      (options.field === undefined ? "" : `: field ${options.field}`);
    super(`${file}${where}: ${detail}`, { cause: options.cause });
    this.name = "DatasetError";
    this.file = file;
    this.row = options.row;
    this.field = options.field;
  }
}
