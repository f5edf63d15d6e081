/**
 * report.html of one attacked video (`deno task attack`): a summary table, the first, middle and
 * last frames as clean | adversarial | amplified perturbation | JND heat map, and the per-frame
 * scores and PSNR, clean against adversarial. Self-contained: images are inline PNG `data:` URIs
 * and charts inline SVG, so the file opens offline.
 *
 * @module
 */

import { jndHeatmap } from "../jnd/mod.ts";
import { tensor } from "../tensor/tensor.ts";
import type { AttackReport } from "./attack_report.ts";
import { escapeHtml, htmlPage, htmlTable, type LineSeries, svgLineChart } from "./html.ts";
import { amplifiedPerturbation, cropImage, planarFrame, pngDataUri, type RgbImage } from "./png.ts";

/** An image: pixels, or a PNG `data:` URI already encoded (as stored in JSON). */
export type PanelImage = RgbImage | string;

/** The images of one shown frame. */
export interface FramePanel {
  /** Frame index in the video. */
  frame: number;
  /** The clean frame. */
  clean: PanelImage;
  /** The JND map as a heat map. */
  jnd: PanelImage;
  /** Per attack run, in the report's order: the adversarial frame and its perturbation. */
  attacks: {
    adversarial: PanelImage;
    perturbation: PanelImage;
    /** This run's amplification, when it differs from the panels' `amplify`. */
    amplify?: number;
  }[];
}

/** The images of {@link attackReportHtml}. */
export interface AttackPanels {
  /** One per shown frame. */
  panels: FramePanel[];
  /** The factor the perturbation images are amplified by (mid-grey is zero). */
  amplify: number;
  /** The JND, in 8-bit levels, at the top of the heat map's ramp. */
  jndMaxLevels: number;
  /** Set when the images are a crop of the frame: its origin and size. */
  crop?: { x: number; y: number; width: number; height: number };
}

/** One frame kept while attacking: planar values in [0,1] of a single frame. */
export interface KeptFrame {
  /** Frame index in the video. */
  frame: number;
  /** Clean RGB `[3,H,W]`. */
  clean: Float32Array;
  /** JND `[H,W]` in levels/255. */
  jnd: Float32Array;
  /** Per attack run, its adversarial RGB `[3,H,W]` (8-bit values as floats). */
  adversarial: Float32Array[];
}

/**
 * The frames to show of a `t`-frame video: first, middle and last (fewer for short videos).
 *
 * @example
 * ```ts
 * import { shownFrames } from "./attack_html.ts";
 * shownFrames(16); // [0, 7, 15]
 * ```
 */
export function shownFrames(t: number): number[] {
  return [...new Set([0, Math.floor((t - 1) / 2), t - 1])].filter((f) => f >= 0);
}

/**
 * The images of the kept frames: clean, adversarial, the perturbation amplified so that the
 * largest |d| (`maxAbsLevels`; one per run to amplify each run on its own) reaches about 120
 * levels from grey (1x to 64x), and the JND heat map (on the GPU, the ramp of `jndHeatmap`)
 * from 0 to `jndMaxLevels` (default: the largest JND of the kept frames in whole levels, at
 * least 4). Frames larger than `maxWidth` x `maxHeight`
 * (default 640x480) are shown as a centre crop of that size, at full resolution, so the
 * perturbation is not averaged away.
 *
 * @example
 * ```ts
 * import { attackPanels } from "./attack_html.ts";
 * // const images = await attackPanels(kept, { width: 128, height: 128 }, { maxAbsLevels: 6 });
 * ```
 */
export async function attackPanels(
  kept: readonly KeptFrame[],
  size: { width: number; height: number },
  options: {
    maxAbsLevels: number | readonly number[];
    jndMaxLevels?: number;
    maxWidth?: number;
    maxHeight?: number;
  },
): Promise<AttackPanels> {
  const { width, height } = size;
  let peak = 0;
  for (const k of kept) for (const v of k.jnd) if (v > peak) peak = v;
  // The ramp's top: the largest JND shown (whole levels, at least 4) unless given.
  const jndMaxLevels = options.jndMaxLevels ?? Math.max(4, Math.ceil(peak * 255 - 1e-6));
  const amp = (maxAbs: number) =>
    maxAbs > 0 ? Math.max(1, Math.min(64, Math.floor(120 / maxAbs))) : 1;
  const perRun = typeof options.maxAbsLevels === "number" ? null : options.maxAbsLevels.map(amp);
  const amplify = typeof options.maxAbsLevels === "number"
    ? amp(options.maxAbsLevels)
    : amp(Math.max(0, ...options.maxAbsLevels));
  const cw = Math.min(width, options.maxWidth ?? 640);
  const ch = Math.min(height, options.maxHeight ?? 480);
  const crop = cw < width || ch < height
    ? { x: (width - cw) >> 1, y: (height - ch) >> 1, width: cw, height: ch }
    : undefined;
  const view = (image: RgbImage) => (crop ? cropImage(image, crop) : image);
  const one = [1, 3, height, width];
  // All kept maps in one dispatch and one read-back.
  const plane = height * width;
  const maps = new Float32Array(kept.length * plane);
  kept.forEach((k, i) => maps.set(k.jnd, i * plane));
  let heatValues: Float32Array = new Float32Array(0);
  if (kept.length) {
    const j = tensor(maps, [kept.length, 1, height, width]);
    const heat = jndHeatmap(j, { maxLevels: jndMaxLevels });
    j.dispose();
    heatValues = await heat.read();
    heat.dispose();
  }
  const heatShape = [kept.length, 3, height, width];
  const panels: FramePanel[] = [];
  for (const [i, k] of kept.entries()) {
    panels.push({
      frame: k.frame,
      clean: view(planarFrame(k.clean, one, 0)),
      jnd: view(planarFrame(heatValues, heatShape, i)),
      attacks: k.adversarial.map((a, r) => ({
        adversarial: view(planarFrame(a, one, 0)),
        perturbation: view(amplifiedPerturbation(k.clean, a, one, 0, perRun?.[r] ?? amplify)),
        ...(perRun ? { amplify: perRun[r] } : {}),
      })),
    });
  }
  return { panels, amplify, jndMaxLevels, crop };
}

function img(image: PanelImage, alt: string, cls: string): string {
  const size = typeof image === "string" ? "" : ` width="${image.width}" height="${image.height}"`;
  const src = typeof image === "string" ? image : pngDataUri(image);
  return `<img class="frame ${cls}" alt="${escapeHtml(alt)}"${size} src="${escapeHtml(src)}">`;
}

/** {@link AttackPanels} whose images are all PNG `data:` URIs (as stored in JSON). */
export interface UriPanels extends AttackPanels {
  /** One per shown frame, every image a `data:` URI. */
  panels: {
    frame: number;
    clean: string;
    jnd: string;
    attacks: { adversarial: string; perturbation: string; amplify?: number }[];
  }[];
}

/**
 * The panels with every image encoded as a PNG `data:` URI (for storing them as JSON).
 *
 * @example
 * ```ts
 * import { panelsAsUris } from "./attack_html.ts";
 * // await Deno.writeTextFile("example.json", JSON.stringify(panelsAsUris(images)));
 * ```
 */
export function panelsAsUris(images: AttackPanels): UriPanels {
  const uri = (i: PanelImage) => (typeof i === "string" ? i : pngDataUri(i));
  return {
    ...images,
    panels: images.panels.map((p) => ({
      frame: p.frame,
      clean: uri(p.clean),
      jnd: uri(p.jnd),
      attacks: p.attacks.map((a) => ({
        ...a,
        adversarial: uri(a.adversarial),
        perturbation: uri(a.perturbation),
      })),
    })),
  };
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
