/**
 * The two transfer views of an eval table: the upload table (every attack after an x264-420
 * crf 23 round trip: does it survive?) and the cross-victim table (a generator trained against
 * one victim, `stqa-net@<victim>`, scored by the others; the diagonal is the white-box
 * `stqa-net`). Both are derived from the table's lines, in Markdown here and in report.html.
 *
 * @module
 */

import { crossSource, type TableRow } from "./robustness.ts";

const f = (v: number | null, d = 3) => (v === null ? "-" : v.toFixed(d));

/** One line of the upload (x264 round-trip) table. */
export interface UploadRow {
  /** The victim scoring the clips. */
  victim: string;
  /** The attack method. */
  method: string;
  /** Videos measured. */
  videos: number;
  /** SRCC of the clean clips after the round trip, and of the adversarial ones. */
  srccCleanUpload: number | null;
  /** SRCC of the adversarial clips after the round trip. */
  srccAdvUpload: number | null;
  /** Mean |score change| before the round trip and after it (against the clean upload). */
  changeBefore: number;
  /** Mean |score change| after the round trip, against the clean upload. */
  changeAfter: number;
  /** changeAfter / changeBefore (null when nothing changed before). */
  survived: number | null;
  /** Luma PSNR (dB) and SSIM of the adversarial upload against the clean clip. */
  psnrY: number | null;
  /** See `psnrY`. */
  ssimY: number;
}

/**
 * The upload table's lines, one per table line.
 *
 * @example
 * ```ts
 * import { uploadRows } from "./transfer.ts";
 * // for (const u of uploadRows(table)) console.log(u.method, u.survived);
 * ```
 */
export function uploadRows(table: readonly TableRow[]): UploadRow[] {
  return table.map((t) => ({
    victim: t.victim,
    method: t.method,
    videos: t.videos,
    srccCleanUpload: t.srccCleanRoundTrip,
    srccAdvUpload: t.srccRoundTrip,
    changeBefore: t.meanAbsChange,
    changeAfter: t.meanAbsChangeRoundTrip,
    survived: t.meanAbsChange > 0 ? t.meanAbsChangeRoundTrip / t.meanAbsChange : null,
    psnrY: t.psnrRoundTrip,
    ssimY: t.ssimRoundTrip,
  }));
}

/**
 * The upload table's column titles (Markdown and report.html), one per {@link UploadRow} field
 * in order.
 *
 * @example
 * ```ts
 * import { UPLOAD_COLUMNS } from "./transfer.ts";
 * UPLOAD_COLUMNS[3]; // "SRCC clean (x264)"
 * ```
 */
export const UPLOAD_COLUMNS = [
  "victim",
  "method",
  "n",
  "SRCC clean (x264)",
  "SRCC adv (x264)",
  "abs change",
  "abs change (x264)",
  "survived",
  "PSNR-Y x264",
  "SSIM-Y x264",
] as const;

/**
 * The upload table in Markdown.
 *
 * @example
 * ```ts
 * import { uploadMarkdown } from "./transfer.ts";
 * // console.log(uploadMarkdown(table));
 * ```
 */
export function uploadMarkdown(table: readonly TableRow[]): string {
  const head = UPLOAD_COLUMNS;
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const u of uploadRows(table)) {
    lines.push(
      `| ${
        [
          u.victim,
          u.method,
          String(u.videos),
          f(u.srccCleanUpload),
          f(u.srccAdvUpload),
          f(u.changeBefore),
          f(u.changeAfter),
          u.survived === null ? "-" : `${(100 * u.survived).toFixed(0)}%`,
          f(u.psnrY, 2),
          f(u.ssimY, 4),
        ].join(" | ")
      } |`,
    );
  }
  return lines.join("\n") + "\n";
}

/** A cell of the cross-victim table. */
export interface CrossCell {
  /** SRCC of the scoring victim's clean scores. */
  srccBefore: number | null;
  /** SRCC of its scores of the adversarial clips. */
  srccAfter: number | null;
  /** Mean |score change|. */
  meanAbsChange: number;
  /** Mean PSNR (dB) of the 8-bit adversarial frames. */
  psnr: number | null;
  /** Videos measured. */
  videos: number;
}

/** The cross-victim table: `cells[source][target]`, null where not measured. */
export interface CrossTable {
  /** Victims the generators were trained against (rows). */
  sources: string[];
  /** Victims that scored the adversarial videos (columns). */
  targets: string[];
  /** `cells[source][target]`. */
  cells: (CrossCell | null)[][];
}

/**
 * The cross-victim table of the `stqa-net` (diagonal) and `stqa-net@<source>` lines, or null
 * when the table has no cross-victim line.
 *
 * @example
 * ```ts
 * import { crossVictimTable } from "./transfer.ts";
 * // const cross = crossVictimTable(table);
 * // cross?.cells[0][1]?.srccAfter
 * ```
 */
export function crossVictimTable(table: readonly TableRow[]): CrossTable | null {
  const lines = table.filter((t) => t.method === "stqa-net" || crossSource(t.method) !== null);
  if (!lines.some((t) => crossSource(t.method) !== null)) return null;
  const targets: string[] = [];
  const sources: string[] = [];
  for (const t of table) if (!targets.includes(t.victim)) targets.push(t.victim);
  const sourceOf = (t: TableRow) => crossSource(t.method) ?? t.victim;
  for (const v of targets) if (lines.some((t) => sourceOf(t) === v)) sources.push(v);
  for (const t of lines) if (!sources.includes(sourceOf(t))) sources.push(sourceOf(t));
  const cells = sources.map((s) =>
    targets.map((v) => {
      const t = lines.find((x) => x.victim === v && sourceOf(x) === s);
      return t
        ? {
          srccBefore: t.before.srcc,
          srccAfter: t.after.srcc,
          meanAbsChange: t.meanAbsChange,
          psnr: t.psnr,
          videos: t.videos,
        }
        : null;
    })
  );
  return { sources, targets, cells };
}

/**
 * The cross-victim table in Markdown (cells: SRCC clean -> adversarial, mean |change|), or ""
 * when there is none.
 *
 * @example
 * ```ts
 * import { crossVictimMarkdown } from "./transfer.ts";
 * // console.log(crossVictimMarkdown(table));
 * ```
 */
export function crossVictimMarkdown(table: readonly TableRow[]): string {
  const c = crossVictimTable(table);
  if (!c) return "";
  const head = ["generator trained against \\ scored by", ...c.targets];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  c.sources.forEach((s, i) => {
    const cells = c.cells[i].map((x) =>
      x ? `${f(x.srccBefore)} -> ${f(x.srccAfter)} (abs change ${f(x.meanAbsChange)})` : "-"
    );
    lines.push(`| ${[`stqa-${s}`, ...cells].join(" | ")} |`);
  });
  return lines.join("\n") + "\n";
}
