/**
 * JND model names, parameters and the scalar formulas of docs/jnd.md, shared by the GPU
 * path ({@link ./mod.ts}) and the float64 CPU reference ({@link ./reference.ts}).
 *
 * Units are 8-bit luma levels (0..255) throughout; the public API divides by 255 at the end.
 *
 * @module
 */

/** The JND models implemented on the GPU. */
export const JND_MODELS = ["chou-li", "namm", "namm-st", "wu2017"] as const;

/**
 * A JND model:
 * - `chou-li`: Chou and Li 1995, `max(T_l, alpha(bg) * mg + beta(bg))`, no edge protection.
 * - `namm`: Yang et al. 2005, `T_l + T_t - 0.3 * min(T_l, T_t)` with edge-protected texture
 *   masking `T_t = max(0, alpha(bg) * mg * W + beta(bg))`.
 * - `namm-st`: `namm` times the temporal masking factor of Chou and Chen 1996.
 * - `wu2017`: Wu et al. 2017, luminance adaptation plus visual masking from luminance contrast
 *   and pattern complexity (see {@link WU2017}).
 */
export type JndModel = typeof JND_MODELS[number];

/** The default model of `computeJnd`. */
export const DEFAULT_JND_MODEL: JndModel = "namm";

/** The default model for videos (the `jnd` command, the attack). */
export const DEFAULT_VIDEO_JND_MODEL: JndModel = "namm-st";

/** BT.601 luma weights for R, G, B. */
export const LUMA_WEIGHTS = [0.299, 0.587, 0.114] as const;

/**
 * Edge detector thresholds, on the L1 Sobel magnitude `|gx| + |gy|` of luma in levels (the
 * magnitude OpenCV's Canny uses by default). A step of `h` levels gives `4h` next to the step.
 */
export const DEFAULT_EDGE_LOW = 50;
/** Strong-edge threshold (see {@link DEFAULT_EDGE_LOW}). */
export const DEFAULT_EDGE_HIGH = 150;

/** Radius of the square dilation of the edge map (3x3). */
export const DILATE_RADIUS = 1;
/** Radius (7x7) and sigma of the Gaussian that smooths `W = 1 - 0.95 * E`. */
export const GAUSS_RADIUS = 3;
/** Sigma of the edge-weight Gaussian. */
export const GAUSS_SIGMA = 0.8;

/** `tan(22.5 degrees)`, the sector boundary of non-maximum suppression. */
export const TAN_22_5 = 0.41421356237309503;

/** Background-luminance weights `B` (5x5, row-major, sum 32). */
// deno-fmt-ignore
export const BG_WEIGHTS: readonly number[] = [
  1, 1, 1, 1, 1,
  1, 2, 2, 2, 1,
  1, 2, 0, 2, 1,
  1, 2, 2, 2, 1,
  1, 1, 1, 1, 1,
];

/** The four directional high-pass operators `G1..G4` (5x5 each, row-major). */
export const GRAD_KERNELS: readonly (readonly number[])[] = [
  [0, 0, 0, 0, 0, 1, 3, 8, 3, 1, 0, 0, 0, 0, 0, -1, -3, -8, -3, -1, 0, 0, 0, 0, 0],
  [0, 0, 1, 0, 0, 0, 8, 3, 0, 0, 1, 3, 0, -3, -1, 0, 0, -3, -8, 0, 0, 0, -1, 0, 0],
  [0, 0, 1, 0, 0, 0, 0, 3, 8, 0, -1, -3, 0, 3, 1, 0, -8, -3, 0, 0, 0, 0, -1, 0, 0],
  [0, 1, 0, -1, 0, 0, 3, 0, -3, 0, 0, 8, 0, -8, 0, 0, 3, 0, -3, 0, 0, 1, 0, -1, 0],
];

/**
 * Luminance adaptation threshold of Chou and Li 1995, in levels.
 *
 * @example
 * ```ts
 * import { luminanceAdaptation } from "./models.ts";
 * luminanceAdaptation(0); // 20
 * luminanceAdaptation(255); // 6
 * ```
 */
export function luminanceAdaptation(bg: number): number {
  return bg <= 127 ? 17 * (1 - Math.sqrt(bg / 127)) + 3 : (3 / 128) * (bg - 127) + 3;
}

/**
 * Slope of texture masking against the maximum weighted gradient, `alpha(bg)`.
 *
 * @example
 * ```ts
 * import { textureAlpha } from "./models.ts";
 * textureAlpha(100); // 0.125
 * ```
 */
export function textureAlpha(bg: number): number {
  return 0.0001 * bg + 0.115;
}

/**
 * Offset of texture masking, `beta(bg)`.
 *
 * @example
 * ```ts
 * import { textureBeta } from "./models.ts";
 * textureBeta(10); // 0.4
 * ```
 */
export function textureBeta(bg: number): number {
  return 0.5 - 0.01 * bg;
}

/**
 * Temporal masking factor of Chou and Chen 1996 for an inter-frame luminance difference `ild`
 * (levels).
 *
 * @example
 * ```ts
 * import { temporalFactor } from "./models.ts";
 * temporalFactor(-255); // 4.8
 * temporalFactor(255); // 2.4
 * ```
 */
export function temporalFactor(ild: number): number {
  const k = -0.15 / (2 * Math.PI);
  return ild <= 0
    ? Math.max(0.8, 4 * Math.exp(k * (ild + 255)) + 0.8)
    : Math.max(0.8, 1.6 * Math.exp(k * (255 - ild)) + 0.8);
}

/**
 * Normalised 1-D weights of the edge-weight Gaussian (`2 * GAUSS_RADIUS + 1` taps).
 *
 * @example
 * ```ts
 * import { gaussianWeights } from "./models.ts";
 * gaussianWeights().length; // 7
 * ```
 */
export function gaussianWeights(): number[] {
  const w: number[] = [];
  for (let k = -GAUSS_RADIUS; k <= GAUSS_RADIUS; k++) {
    w.push(Math.exp(-(k * k) / (2 * GAUSS_SIGMA * GAUSS_SIGMA)));
  }
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / s);
}

/**
 * Constants of the `wu2017` model (Wu, Li, Dong, Shi, Lin and Kuo, "Enhanced just noticeable
 * difference model for images with pattern complexity", IEEE TIP 26(6), 2017), as implemented
 * here:
 *
 * - `LA = T_l(bg)` (the paper's luminance adaptation, Chou and Li's curve);
 * - luminance contrast `C_l` = standard deviation of luma over the 5x5 window;
 *   contrast masking `LC = 1.84 C_l^2.4 / (C_l^2 + 26^2)`;
 * - orientation: Prewitt gradients of luma over the 3x3 window; a pixel is textured when
 *   `|g| >= 5`; its orientation (mod 180 degrees) falls in one of 15 bins of 12 degrees centred
 *   on multiples of 12 degrees; a smooth pixel gets a label of its own;
 * - pattern complexity: the number of distinct labels in the 3x3 neighbourhood (1 when the
 *   centre is smooth), smoothed by a 3x3 Gaussian (sigma 1): `P_c`; `C_t = 0.3 P_c^2.7 /
 *   (P_c^2 + 1)`;
 * - pattern masking `PM = C_l * C_t * W` with the NAMM edge weight `W` (the paper protects edges
 *   with a Canny map too); `VM = max(LC, PM)`; `JND = LA + VM - 0.3 min(LA, VM)`.
 *
 * The official code's extras (a 0.7 scale of `LA`, brightening of dark backgrounds, zero
 * contrast on a 2-pixel border) are not reproduced; borders replicate as everywhere else.
 */
export const WU2017 = {
  contrastA: 0.115 * 16,
  contrastB: 26,
  gradientMin: 5,
  bins: 15,
  binDegrees: 12,
  complexityA: 0.3,
  complexityExp: 2.7,
  complexityB: 1,
  complexitySigma: 1,
} as const;

/**
 * Sine and cosine (float32 values) of the orientation-bin boundaries `6 + 12k` degrees,
 * k = 0..14: an orientation `phi` in [0, 180) is past boundary b when
 * `gy * cos(b) > gx * sin(b)` (with `(gx, gy)` folded into the upper half-plane). The bin is the
 * number of boundaries passed, modulo 15 (past 174 degrees wraps to bin 0).
 *
 * @example
 * ```ts
 * import { orientationBoundaries } from "./models.ts";
 * orientationBoundaries().length; // 15
 * ```
 */
export function orientationBoundaries(): { sin: number; cos: number }[] {
  const out: { sin: number; cos: number }[] = [];
  for (let k = 0; k < WU2017.bins; k++) {
    const b = ((WU2017.binDegrees / 2 + WU2017.binDegrees * k) * Math.PI) / 180;
    out.push({ sin: Math.fround(Math.sin(b)), cos: Math.fround(Math.cos(b)) });
  }
  return out;
}

/**
 * Normalised 3-tap Gaussian (sigma 1) of the `wu2017` complexity smoothing: `[w1, w0, w1]`.
 *
 * @example
 * ```ts
 * import { complexityWeights } from "./models.ts";
 * complexityWeights()[1]; // about 0.452
 * ```
 */
export function complexityWeights(): number[] {
  const e = Math.exp(-1 / (2 * WU2017.complexitySigma ** 2));
  return [e / (1 + 2 * e), 1 / (1 + 2 * e), e / (1 + 2 * e)];
}
