/**
 * report.html of one attacked video (`deno task attack`): a summary table, the structure
 * statistics of each run's perturbation against their noise reference and targets (when
 * report.json has them), the first, middle and last frames as clean | adversarial | amplified perturbation | JND heat map, and the per-frame
 * scores and PSNR, clean against adversarial. Self-contained: images are inline PNG `data:` URIs
 * and charts inline SVG, so the file opens offline.
 *
 * @module
 */

import type { AttackReport, AttackRun } from "../attack/report.ts";
import {
  type ChromaStructure,
  STRUCTURE_TARGETS,
  type StructureStats,
} from "../metrics/structure.ts";
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

const ratioText = (r: number | null) => (r === null ? "inf" : r.toFixed(r >= 100 ? 0 : 2));

function phaseText(s: StructureStats): string {
  const p = s.phase;
  return `${p.axis === "column" ? "columns x" : "rows y"} mod ${p.period} = ${p.phase}`;
}

function lineText(s: StructureStats): string {
  const { fx, fy } = s.line;
  const f = Math.hypot(fx, fy);
  const period = f > 0 ? `, period ${(1 / f).toFixed(1)} px` : "";
  return `fx ${+fx.toFixed(4)}, fy ${+fy.toFixed(4)} cycles/px${period}`;
}

/** The statistics a run's perturbation misses, in order. */
const missedOf = (s: StructureStats) =>
  (["direction", "phase", "line"] as const).filter((k) => !s.targets[k]);

/**
 * The chroma statistics of one run (report.json's `structureChroma` and `structureChromaNoise`):
 * a table with, per statistic, the Cb plane's value, where and noise reference, the same for Cr,
 * the target and the verdict of both planes.
 */
function chromaTable(mode: string, c: ChromaStructure, n: ChromaStructure | undefined): string {
  const t = STRUCTURE_TARGETS;
  const planes = [["Cb", c.cb, n?.cb], ["Cr", c.cr, n?.cr]] as const;
  const verdict = (k: "direction" | "phase" | "line") => {
    const missed = planes.filter(([, s]) => !s.targets[k]).map(([p]) => p);
    return missed.length ? `MISSED (${missed.join(", ")})` : "met";
  };
  const cells = (
    value: (s: StructureStats) => string,
    where: (s: StructureStats) => string,
    noise: (s: StructureStats) => string,
  ) => planes.flatMap(([, s, ns]) => [value(s), where(s), ns ? noise(ns) : "-"]);
  const levels = (s: StructureStats) =>
    `horizontal ${s.direction.horizontalLevels.toFixed(3)}, vertical ${
      s.direction.verticalLevels.toFixed(3)
    } levels`;
  return htmlTable(
    [
      "statistic",
      "Cb",
      "Cb where",
      "Cb noise",
      "Cr",
      "Cr where",
      "Cr noise",
      "target",
      "verdict",
    ],
    [
      [
        "direction ratio",
        ...cells((s) => ratioText(s.direction.ratio), levels, (s) => ratioText(s.direction.ratio)),
        `${t.directionMin} to ${t.directionMax}`,
        verdict("direction"),
      ],
      [
        "strongest phase",
        ...cells(
          (s) => ratioText(s.phase.ratio),
          phaseText,
          (s) => `${ratioText(s.phase.ratio)} (${phaseText(s)})`,
        ),
        `at most ${t.phaseMax}`,
        verdict("phase"),
      ],
      [
        "strongest spectral line",
        ...cells((s) => ratioText(s.line.ratio), lineText, (s) => ratioText(s.line.ratio)),
        `at most ${t.lineMax}`,
        verdict("line"),
      ],
    ],
    { id: `structure-chroma-${mode}` },
  );
}

/**
 * The structure statistics of each attack run that has them (report.json's `structure` and
 * `structureNoise`, `structureChroma` and `structureChromaNoise`): per run, a heading with the
 * verdicts and a table of the luma's direction ratio, strongest phase and strongest spectral
 * line, each against the noise reference and its target, then the same for the Cb and Cr planes
 * where the report has them. Empty when no run has them (reports of earlier versions).
 */
function structureHtml(runs: readonly AttackRun[]): string {
  const t = STRUCTURE_TARGETS;
  const parts: string[] = [];
  for (const r of runs) {
    const s = r.structure;
    if (!s) continue;
    const n = r.structureNoise;
    const yes = (ok: boolean) => (ok ? "met" : "MISSED");
    const missed = missedOf(s);
    const c = r.structureChroma;
    const chromaMissed = c
      ? (["cb", "cr"] as const).filter((p) => !c[p].targets.all).map((p) =>
        `${p === "cb" ? "Cb" : "Cr"}: ${missedOf(c[p]).join(", ")}`
      )
      : [];
    const chromaVerdict = !c
      ? ""
      : `; chroma: ${
        chromaMissed.length ? `structure found (${chromaMissed.join("; ")})` : "none found"
      }`;
    parts.push(
      `<h3>${escapeHtml(r.mode)}: ${
        s.targets.all ? "no regular structure found" : `structure found (${missed.join(", ")})`
      }${chromaVerdict}</h3>`,
      htmlTable(
        ["statistic", "perturbation", "where", "noise reference", "target", "verdict"],
        [
          [
            "direction ratio",
            ratioText(s.direction.ratio),
            `horizontal ${s.direction.horizontalLevels.toFixed(3)}, vertical ${
              s.direction.verticalLevels.toFixed(3)
            } levels`,
            n ? ratioText(n.direction.ratio) : "-",
            `${t.directionMin} to ${t.directionMax}`,
            yes(s.targets.direction),
          ],
          [
            "strongest phase",
            ratioText(s.phase.ratio),
            phaseText(s),
            n ? `${ratioText(n.phase.ratio)} (${phaseText(n)})` : "-",
            `at most ${t.phaseMax}`,
            yes(s.targets.phase),
          ],
          [
            "strongest spectral line",
            ratioText(s.line.ratio),
            lineText(s),
            n ? ratioText(n.line.ratio) : "-",
            `at most ${t.lineMax}`,
            yes(s.targets.line),
          ],
        ],
        { id: `structure-${r.mode}` },
      ),
    );
    if (c) parts.push(chromaTable(r.mode, c, r.structureChromaNoise));
  }
  if (!parts.length) return "";
  const first = runs.find((r) => r.structure)!.structure!;
  return [
    `<h2 id="structure-title">Structure of the perturbation</h2>`,
    `<p class="note">On the luma (BT.601) of the perturbation, ${first.frames} frames; the ` +
    `spectrum on the central ${first.line.tileWidth}x${first.line.tileHeight} tile, summed over ` +
    `frames. The noise reference is i.i.d. noise with the same mean |d| per frame: what pure ` +
    `noise of this size and length gives. Direction ratio: mean |horizontal difference| over ` +
    `mean |vertical difference|. Strongest phase: the mean |d| of the rows or columns of one ` +
    `phase of a period (2 to 16) over the other phases' mean. Strongest spectral line: the ` +
    `largest bin of the amplitude spectrum over the median bin. inf: a zero denominator. The ` +
    `second table of a run (where the report has it): the same statistics on the chroma planes ` +
    `(BT.601 Cb and Cr), each against its own noise reference.</p>`,
    ...parts,
  ].join("\n");
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

  const structure = structureHtml(runs);
  if (structure) parts.push(structure);

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
