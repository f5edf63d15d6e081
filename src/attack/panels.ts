/**
 * The frames a report shows, as images: the first, middle and last frames of an attacked video
 * as clean | adversarial | amplified perturbation | JND heat map, made on the GPU (the heat map)
 * and the CPU (PNG encoding) from the frames the attack kept. The HTML that shows them is made
 * above, in src/report, from these images.
 *
 * @module
 */

import { jndHeatmap } from "../jnd/mod.ts";
import { tensor } from "../tensor/tensor.ts";
import {
  amplifiedPerturbation,
  cropImage,
  planarFrame,
  pngDataUri,
  type RgbImage,
} from "../video/png.ts";

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
 * import { shownFrames } from "./panels.ts";
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
 * import { attackPanels } from "./panels.ts";
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
 * import { panelsAsUris } from "./panels.ts";
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
