/**
 * report.html of an eval run (`deno task eval`, written beside table.md): the table (with the
 * structure statistics' medians and the share meeting their targets, luma and chroma), bar charts
 * of accuracy after the attack, score change, PSNR and time per video for every victim and
 * method, the upload (x264 round trip) table and the cross-victim table. Self-contained.
 *
 * @module
 */

import {
  CHROMA_HEAD,
  chromaCells,
  crossSource,
  EVAL_METHODS,
  STRUCTURE_HEAD,
  structureCells,
  type TableRow,
} from "../eval/robustness.ts";
import type { EvalExample } from "../eval/examples.ts";
import { crossVictimTable, UPLOAD_COLUMNS, uploadRows } from "../eval/transfer.ts";
import { framePanelsHtml } from "./attack_html.ts";
import {
  type BarGroup,
  type Cell,
  escapeHtml,
  htmlPage,
  htmlTable,
  type LineSeries,
  svgBarChart,
  svgLineChart,
} from "./html.ts";

/** Options of {@link evalReportHtml}. */
export interface EvalReportOptions {
  /** Page title (default "STQA robustness evaluation"). */
  title?: string;
  /** A line describing the run (dataset, split, eps), shown under the title. */
  description?: string;
  /** Example frames to show (`<out>/examples/`). */
  examples?: readonly EvalExample[];
}

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;

/**
 * The HTML of an eval run's table.
 *
 * @example
 * ```ts
 * import { evalReportHtml } from "./eval_html.ts";
 * // await Deno.writeTextFile("out/eval/report.html", evalReportHtml(table, { description: "proxy test" }));
 * ```
 */
export function evalReportHtml(
  table: readonly TableRow[],
  options: EvalReportOptions = {},
): string {
  const title = options.title ?? "STQA robustness evaluation";
  const victims = [...new Set(table.map((t) => t.victim))];
  const own = table.filter((t) => crossSource(t.method) === null);
  const methods = [...new Set(own.map((t) => t.method))];
  const line = (v: string, m: string) => own.find((t) => t.victim === v && t.method === m);
  const parts: string[] = [`<h1>${escapeHtml(title)}</h1>`];
  if (options.description) parts.push(`<p class="note">${escapeHtml(options.description)}</p>`);
  parts.push(
    `<p class="note">${victims.length} victim(s) x ${methods.length} method(s); ` +
      `${Math.max(0, ...table.map((t) => t.videos))} video(s) per line. Methods: ${
        EVAL_METHODS.join(", ")
      }; <code>stqa-net@&lt;victim&gt;</code> is that victim's generator scored by another.</p>`,
  );

  // The main table.
  parts.push(`<h2>Table</h2>`);
  const head = [
    "victim",
    "method",
    "n",
    "SRCC clean",
    "SRCC adv",
    "PLCC adv",
    "KRCC adv",
    "RMSE adv",
    "abs change",
    "R",
    "robustness",
    "PSNR",
    "SSIM",
    "beyond JND",
    "mean |d| (levels)",
    "s/video",
    "victim passes",
    ...STRUCTURE_HEAD,
    ...CHROMA_HEAD,
  ];
  const rows: Cell[][] = table.map((t) => [
    t.victim,
    t.method,
    t.videos,
    t.before.srcc,
    t.after.srcc,
    t.after.plcc,
    t.after.krcc,
    t.after.rmse,
    t.meanAbsChange,
    t.meanR,
    t.meanRobustness,
    t.psnr,
    t.ssim,
    pct(t.beyondJnd),
    t.meanAbsLevels,
    t.secondsPerVideo,
    t.victimPassesPerVideo,
    ...structureCells(t.structure),
    ...chromaCells(t.chroma),
  ]);
  parts.push(
    htmlTable(head, rows, {
      id: "eval-table",
      digits: [0, 0, 0, 3, 3, 3, 3, 3, 3, 3, 3, 2, 4, 0, 2, 2, 0],
    }),
  );

  // Charts: groups are victims, bars are methods.
  const groups = (value: (t: TableRow) => number | null, withClean = false): BarGroup[] =>
    victims.map((v) => ({
      label: v,
      values: [
        ...(withClean ? [line(v, methods[0])?.before.srcc ?? null] : []),
        ...methods.map((m) => {
          const t = line(v, m);
          return t ? value(t) : null;
        }),
      ],
    }));
  const width = Math.max(560, 90 + victims.length * (methods.length + 1) * 26);
  const labelled = table.some((t) => t.before.srcc !== null);
  parts.push(`<h2>Charts</h2>`);
  if (!labelled) {
    parts.push(`<p class="note">No labelled videos (or fewer than 3): no SRCC to chart.</p>`);
  }
  parts.push(`<div class="charts">`);
  if (labelled) {
    parts.push(
      svgBarChart(["clean", ...methods], groups((t) => t.after.srcc, true), {
        id: "chart-srcc",
        title: "SRCC with the labels: clean, and after each attack (lower is a stronger attack)",
        width,
      }),
    );
  }
  parts.push(
    svgBarChart(methods, groups((t) => t.meanAbsChange), {
      id: "chart-change",
      title: "mean |score change|",
      width,
    }),
    svgBarChart(methods, groups((t) => t.psnr), {
      id: "chart-psnr",
      title: "PSNR (dB) of the 8-bit adversarial frames",
      width,
      digits: 1,
    }),
    svgBarChart(methods, groups((t) => t.secondsPerVideo), {
      id: "chart-seconds",
      title: "seconds per video (attack only)",
      width,
    }),
  );
  parts.push(`</div>`);

  // Upload.
  const up = uploadRows(table);
  parts.push(
    `<h2>After an upload (x264-420, crf 23)</h2><p class="note">The adversarial clip and the ` +
      `clean clip are both encoded and decoded; "survived" is the mean |score change| after the ` +
      `round trip (against the clean upload) over the change before it.</p>`,
  );
  parts.push(
    htmlTable(
      UPLOAD_COLUMNS,
      up.map((u) => [
        u.victim,
        u.method,
        u.videos,
        u.srccCleanUpload,
        u.srccAdvUpload,
        u.changeBefore,
        u.changeAfter,
        u.survived === null ? "-" : `${(100 * u.survived).toFixed(0)}%`,
        u.psnrY,
        u.ssimY,
      ]),
      { id: "upload-table", digits: [0, 0, 0, 3, 3, 3, 3, 0, 2, 4] },
    ),
  );
  if (labelled) {
    parts.push(
      `<div class="charts">${
        svgBarChart(
          ["clean", ...methods],
          groups((t) => t.srccRoundTrip, false).map((g, i) => ({
            label: g.label,
            values: [line(victims[i], methods[0])?.srccCleanRoundTrip ?? null, ...g.values],
          })),
          {
            id: "chart-upload",
            title: "SRCC after the x264 round trip",
            width,
          },
        )
      }</div>`,
    );
  } else {
    parts.push(`<p class="note">No labelled videos: no SRCC after the upload to chart.</p>`);
  }

  // Cross-victim.
  const cross = crossVictimTable(table);
  if (cross) {
    parts.push(
      `<h2>Cross-victim</h2><p class="note">Rows: the victim a generator was trained against; ` +
        `columns: the victim scoring its adversarial videos. Cells: SRCC clean -> adversarial ` +
        `(mean |score change|); the diagonal is the white-box attack.</p>`,
    );
    parts.push(
      htmlTable(
        ["trained against \\ scored by", ...cross.targets],
        cross.sources.map((s, i) => [
          `stqa-${s}`,
          ...cross.cells[i].map((c) =>
            c
              ? `${c.srccBefore?.toFixed(3) ?? "-"} -> ${c.srccAfter?.toFixed(3) ?? "-"} (${
                c.meanAbsChange.toFixed(3)
              })`
              : "-"
          ),
        ]),
        { id: "cross-table" },
      ),
    );
  }
  if (options.examples?.length) parts.push(examplesHtml(options.examples));
  return htmlPage(title, parts.join("\n"));
}

function examplesHtml(examples: readonly EvalExample[]): string {
  const parts = [
    `<h2 id="examples-title">Example frames</h2><p class="note">The first video of each run (or ` +
    `shard), per victim: first, middle and last frames, clean | adversarial and perturbation per ` +
    `method | JND heat map, as the victim reads the clip (8-bit adversarial frames).</p>`,
  ];
  parts.push(`<div id="examples">`);
  for (const [k, ex] of examples.entries()) {
    parts.push(
      `<h3>${escapeHtml(ex.victim)}: ${
        escapeHtml(ex.video)
      } (${ex.frames} frames, ${ex.width}x${ex.height})</h3>`,
    );
    parts.push(
      htmlTable(
        ["", "clean", ...ex.methods],
        [["score", ex.scores.clean, ...ex.scores.methods]],
        { digits: 3 },
      ),
    );
    parts.push(framePanelsHtml(
      { panels: ex.panels, amplify: ex.amplify, jndMaxLevels: ex.jndMaxLevels, crop: ex.crop },
      ex.methods,
      { heading: "h4" },
    ));
    if (ex.frameScores) {
      const series: LineSeries[] = [
        { name: "clean", values: ex.frameScores.clean },
        ...ex.methods.map((m, i) => ({ name: m, values: ex.frameScores!.methods[i] })),
      ];
      parts.push(svgLineChart(series, {
        id: `example-scores-${k}`,
        title: `${ex.victim} per-frame score, clean against adversarial`,
        xLabel: "frame",
        yLabel: "score",
        width: Math.max(560, 130 * (ex.methods.length + 1)),
      }));
    }
  }
  parts.push(`</div>`);
  return parts.join("\n");
}
