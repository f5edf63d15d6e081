/**
 * report.html of one attacked video (`deno task attack`): a summary table, the first, middle and
 * last frames as clean | adversarial | amplified perturbation | JND heat map, and the per-frame
 * scores and PSNR, clean against adversarial. Self-contained: images are inline PNG `data:` URIs
 * and charts inline SVG, so the file opens offline.
 *
 * @module
 */

import type { AttackReport } from "../attack/report.ts";
import { escapeHtml, htmlPage, htmlTable, type LineSeries, svgLineChart } from "./html.ts";
import { pngDataUri } from "../video/png.ts";
import type { AttackPanels, PanelImage } from "../attack/panels.ts";

function img(image: PanelImage, alt: string, cls: string): string {
  const size = typeof image === "string" ? "" : ` width="${image.width}" height="${image.height}"`;
  const src = typeof image === "string" ? image : pngDataUri(image);
  return `<img class="frame ${cls}" alt="${escapeHtml(alt)}"${size} src="${escapeHtml(src)}">`;
}

/**
 * The frame panels as HTML: a note on the amplification, the heat map's range and any crop, then
 * per shown frame a heading and a grid of clean | (adversarial, perturbation) per run | JND.
 *
 * @example
 * ```ts
 * import { framePanelsHtml } from "./attack_html.ts";
 * // const html = framePanelsHtml(images, ["up", "down"], { id: "frames" });
 * ```
 */
export function framePanelsHtml(
  images: AttackPanels,
  runNames: readonly string[],
  options: { id?: string; heading?: "h3" | "h4" } = {},
): string {
  const h = options.heading ?? "h3";
  const crop = images.crop
    ? ` Shown: a ${images.crop.width}x${images.crop.height} crop at (${images.crop.x}, ${images.crop.y}).`
    : "";
  const parts = [
    `<p class="note">Perturbation amplified ${
      images.panels[0]?.attacks.some((a) => a.amplify !== undefined)
        ? "as each caption says"
        : `${images.amplify}x`
    } around mid-grey (grey = ` +
    `unchanged). JND heat map from 0 (black) to ${images.jndMaxLevels} levels (pale yellow).` +
    `${crop}</p>`,
  ];
  const columns = 2 + 2 * runNames.length;
  parts.push(options.id ? `<div id="${escapeHtml(options.id)}">` : "<div>");
  for (const p of images.panels) {
    const cells: string[] = [
      `<figure>${
        img(p.clean, `clean frame ${p.frame}`, "clean")
      }<figcaption>clean</figcaption></figure>`,
    ];
    p.attacks.forEach((a, k) => {
      const run = escapeHtml(runNames[k] ?? `run ${k}`);
      cells.push(
        `<figure>${img(a.adversarial, `adversarial (${run}) frame ${p.frame}`, "adversarial")}` +
          `<figcaption>adversarial (${run})</figcaption></figure>`,
        `<figure>${
          img(a.perturbation, `perturbation (${run}) frame ${p.frame}`, "perturbation")
        }<figcaption>perturbation x${a.amplify ?? images.amplify} (${run})</figcaption></figure>`,
      );
    });
    cells.push(
      `<figure>${
        img(p.jnd, `JND frame ${p.frame}`, "jnd")
      }<figcaption>JND heat map</figcaption></figure>`,
    );
    parts.push(
      `<${h}>frame ${p.frame}</${h}><div class="panels" style="grid-template-columns:repeat(${columns},1fr)">${
        cells.join("")
      }</div>`,
    );
  }
  parts.push(`</div>`);
  return parts.join("\n");
}

/**
 * The HTML of an attack report with its frame panels.
 *
 * @example
 * ```ts
 * import { attackReportHtml } from "./attack_html.ts";
 * // const html = attackReportHtml(report, { panels, amplify: 16, jndMaxLevels: 32 });
 * // await Deno.writeTextFile("out/clip/report.html", html);
 * ```
 */
export function attackReportHtml(report: AttackReport, images: AttackPanels): string {
  const runs = report.attacks;
  const title = `STQA attack report: ${report.name}`;
  const v = report.video;
  const parts: string[] = [];
  parts.push(`<h1>${escapeHtml(title)}</h1>`);
  parts.push(
    `<p class="note">${escapeHtml(report.input)}: ${v.frames} frames, ${v.width}x${v.height}, ` +
      `${+v.fps.toFixed(3)} fps. Victim <b>${escapeHtml(report.victim.name)}</b>; generator ` +
      `${escapeHtml(report.generator.path)} (${report.generator.variant}, trained against ` +
      `${escapeHtml(report.generator.trainedAgainst)}); |d| &le; ${report.eps} &times; JND ` +
      `(${escapeHtml(report.jnd)}). Made ${escapeHtml(report.created)} in ` +
      `${report.seconds.toFixed(2)} s.</p>`,
  );
  parts.push(
    htmlTable(
      [
        "run",
        "score",
        "change",
        "target",
        "PSNR (dB)",
        "SSIM",
        "beyond JND",
        "mean |d| (levels)",
        "max |d|",
        "generator s",
        "output",
      ],
      [
        ["clean", report.clean.score, null, null, null, null, null, null, null, null, "-"],
        ...runs.map((r) => [
          r.mode,
          r.score,
          r.scoreChange,
          r.target,
          r.psnr.mean === null ? "inf" : r.psnr.mean,
          r.ssim.mean,
          `${(100 * r.beyondJnd).toFixed(2)}%`,
          r.meanAbsLevels,
          r.maxAbsLevels,
          r.seconds.generator,
          r.output,
        ]),
      ],
      { id: "summary", digits: [0, 3, 3, 3, 2, 4, 0, 2, 0, 2, 0] },
    ),
  );
  if (report.label !== null) {
    parts.push(`<p class="note">Label (MOS) of the video: ${report.label}.</p>`);
  }

  // Frames.
  parts.push(`<h2 id="frames-title">Frames</h2>`);
  parts.push(framePanelsHtml(images, runs.map((r) => r.mode), { id: "frames" }));

  // Per-frame charts.
  parts.push(`<h2>Per-frame scores and PSNR</h2><div class="charts">`);
  if (report.clean.frameScores) {
    const series: LineSeries[] = [{ name: "clean", values: report.clean.frameScores }];
    for (const r of runs) if (r.frameScores) series.push({ name: r.mode, values: r.frameScores });
    parts.push(
      svgLineChart(series, {
        id: "frame-scores",
        title: `${report.victim.name} per-frame score`,
        xLabel: "frame",
        yLabel: "score",
      }),
    );
  } else {
    const series: LineSeries[] = [
      { name: "clean", values: Array(v.frames).fill(report.clean.score), dashed: true },
      ...runs.map((r) => ({ name: r.mode, values: Array(v.frames).fill(r.score), dashed: true })),
    ];
    parts.push(
      svgLineChart(series, {
        id: "frame-scores",
        title: `${report.victim.name} clip score (no per-frame scores)`,
        xLabel: "frame",
        yLabel: "score",
      }),
    );
  }
  const psnr: LineSeries[] = runs.map((r) => ({
    name: r.mode,
    values: r.psnr.frames.map((x) => (x === null ? NaN : x)),
  }));
  parts.push(
    svgLineChart(psnr, {
      id: "frame-psnr",
      title: "PSNR per frame",
      xLabel: "frame",
      yLabel: "dB",
    }),
  );
  parts.push(`</div>`);
  if (!report.clean.frameScores) {
    parts.push(
      `<p class="note">${
        escapeHtml(report.victim.name)
      } gives one score per clip, drawn flat over the frames.</p>`,
    );
  }
  return htmlPage(title, parts.join("\n"));
}

/**
 * The files `deno task attack` writes beside report.json: `report.html` ({@link attackReportHtml}).
 * Pass it as `extraFiles` of `attackVideo` to get the same from a script.
 *
 * @example
 * ```ts
 * import { attackReportFiles, attackVideo, initGpu, loadGenerator, loadVictim } from "../../mod.ts";
 * await initGpu();
 * await attackVideo("data/samples/astronaut_pan.mkv", {
 *   generator: await loadGenerator("stqa-vsfa-mini"),
 *   victim: await loadVictim("vsfa-mini"),
 *   outDir: "out/script",
 *   extraFiles: attackReportFiles,
 * });
 * ```
 */
export function attackReportFiles(
  report: AttackReport,
  images: AttackPanels,
): Record<string, string> {
  return { "report.html": attackReportHtml(report, images) };
}
