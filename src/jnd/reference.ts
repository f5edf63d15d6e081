/**
 * Float64 CPU reference of the JND models, stage by stage, for tests (the GPU path is
 * {@link ./jnd.ts}; both follow docs/jnd.md and the edge detector documented in jnd.ts).
 *
 * Everything is float64 except the values a comparison decides on: luma, background luminance,
 * the Sobel gradients and magnitudes of the edge detector, and the inter-frame luminance
 * difference are computed in float32 (`Math.fround` after every operation, in the same order as
 * jnd.wgsl), so that the reference and the GPU take the same branch at threshold ties
 * and the per-pixel comparison is honest.
 *
 * Layout: frames `[T, 3, H, W]` (RGB in [0, 1]), maps `[T, H, W]`, all in 8-bit levels.
 *
 * @module
 */

import {
  BG_WEIGHTS,
  complexityWeights,
  DEFAULT_EDGE_HIGH,
  DEFAULT_EDGE_LOW,
  DEFAULT_JND_MODEL,
  DILATE_RADIUS,
  GAUSS_RADIUS,
  gaussianWeights,
  GRAD_KERNELS,
  type JndModel,
  LUMA_WEIGHTS,
  luminanceAdaptation,
  orientationBoundaries,
  TAN_22_5,
  temporalFactor,
  textureAlpha,
  textureBeta,
  WU2017,
} from "./models.ts";

const fr = Math.fround;

/** Options of {@link jndReference}. */
export interface JndReferenceOptions {
  /** The model (default `namm`). */
  model?: JndModel;
  /** Weak-edge threshold on the L1 Sobel magnitude (default 50). */
  edgeLow?: number;
  /** Strong-edge threshold (default 150). */
  edgeHigh?: number;
  /** The frame before the first one, `[3, H, W]`, for the temporal factor of frame 0. */
  previous?: ArrayLike<number>;
}

/** The JND map and the intermediate maps of {@link jndReference}, each `[T, H, W]`. */
export interface JndReferenceResult {
  /** The JND, levels. */
  jnd: Float64Array;
  /** Luma, levels. */
  luma: Float64Array;
  /** Background luminance. */
  bg: Float64Array;
  /** Luminance adaptation threshold `T_l`. */
  tl: Float64Array;
  /** Maximum weighted gradient. */
  mg: Float64Array;
  /** Dilated edge map (0 or 1). */
  edges: Float64Array;
  /** Smoothed edge weight `W`. */
  weight: Float64Array;
  /** Temporal factor (1 where not applicable). */
  factor: Float64Array;
}

function clampi(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * BT.601 luma in levels, float32 in the shader's order of operations.
 *
 * @example
 * ```ts
 * import { lumaF32 } from "./reference.ts";
 * lumaF32(1, 1, 1); // 255
 * ```
 */
export function lumaF32(r: number, g: number, b: number): number {
  const [kr, kg, kb] = LUMA_WEIGHTS.map(fr);
  return fr(255 * fr(fr(fr(kr * fr(r)) + fr(kg * fr(g))) + fr(kb * fr(b))));
}

/**
 * One image's stage maps: background luminance (float32), maximum weighted gradient, and the
 * Canny-style codes (0 none, 1 weak, 2 strong) after non-maximum suppression.
 */
function spatialStages(
  p: Float64Array,
  h: number,
  w: number,
  edgeLow: number,
  edgeHigh: number,
): {
  bg: Float64Array;
  mg: Float64Array;
  code: Uint8Array;
  contrast: Float64Array;
  label: Uint8Array;
} {
  const n = h * w;
  const contrast = new Float64Array(n);
  const label = new Uint8Array(n);
  const bounds = orientationBoundaries();
  const at = (y: number, x: number) => p[clampi(y, 0, h - 1) * w + clampi(x, 0, w - 1)];
  const bg = new Float64Array(n);
  const mg = new Float64Array(n);
  const mag = new Float64Array(n);
  const dir = new Uint8Array(n);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let acc = 0;
      const g = [0, 0, 0, 0];
      for (let ky = 0; ky < 5; ky++) {
        for (let kx = 0; kx < 5; kx++) {
          const q = at(y + ky - 2, x + kx - 2);
          acc = fr(acc + fr(BG_WEIGHTS[ky * 5 + kx] * q));
          for (let k = 0; k < 4; k++) g[k] += GRAD_KERNELS[k][ky * 5 + kx] * q;
        }
      }
      const i = y * w + x;
      // wu2017: luminance contrast (5x5 standard deviation) and orientation label.
      let sum = 0;
      for (let ky = -2; ky <= 2; ky++) for (let kx = -2; kx <= 2; kx++) sum += at(y + ky, x + kx);
      const mean = sum / 25;
      let ss = 0;
      for (let ky = -2; ky <= 2; ky++) {
        for (let kx = -2; kx <= 2; kx++) ss += (at(y + ky, x + kx) - mean) ** 2;
      }
      contrast[i] = Math.sqrt(ss / 25);
      // Prewitt (3x the gradient), float32 in the shader's order.
      let px = fr(
        fr(fr(at(y - 1, x + 1) + at(y, x + 1)) + at(y + 1, x + 1)) -
          fr(fr(at(y - 1, x - 1) + at(y, x - 1)) + at(y + 1, x - 1)),
      );
      let py = fr(
        fr(fr(at(y + 1, x - 1) + at(y + 1, x)) + at(y + 1, x + 1)) -
          fr(fr(at(y - 1, x - 1) + at(y - 1, x)) + at(y - 1, x + 1)),
      );
      const g2 = fr(fr(px * px) + fr(py * py));
      if (g2 >= (3 * WU2017.gradientMin) ** 2) {
        if (py < 0 || (py === 0 && px < 0)) {
          px = -px;
          py = -py;
        }
        let passed = 0;
        for (const b of bounds) if (fr(py * b.cos) > fr(px * b.sin)) passed++;
        label[i] = passed % WU2017.bins;
      } else {
        label[i] = WU2017.bins; // smooth
      }
      bg[i] = fr(acc / 32);
      mg[i] = Math.max(...g.map(Math.abs)) / 16;
      // Sobel, float32, in the shader's order.
      const col = (dx: number) =>
        fr(fr(at(y - 1, x + dx) + fr(2 * at(y, x + dx))) + at(y + 1, x + dx));
      const row = (dy: number) =>
        fr(fr(at(y + dy, x - 1) + fr(2 * at(y + dy, x))) + at(y + dy, x + 1));
      const gx = fr(col(1) - col(-1));
      const gy = fr(row(1) - row(-1));
      const ax = Math.abs(gx);
      const ay = Math.abs(gy);
      mag[i] = fr(ax + ay);
      // Sector of the gradient direction: 0 horizontal, 1 vertical, 2 / 3 the two diagonals.
      const t = fr(TAN_22_5);
      if (ay <= fr(t * ax)) dir[i] = 0;
      else if (ax <= fr(t * ay)) dir[i] = 1;
      else dir[i] = (gx > 0) === (gy > 0) ? 2 : 3;
    }
  }
  const code = new Uint8Array(n);
  const magAt = (y: number, x: number) => mag[clampi(y, 0, h - 1) * w + clampi(x, 0, w - 1)];
  const STEP = [[0, 1], [1, 0], [1, 1], [-1, 1]]; // [dy, dx] along the gradient
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const m = mag[i];
      const [dy, dx] = STEP[dir[i]];
      const before = magAt(y - dy, x - dx);
      const after = magAt(y + dy, x + dx);
      if (m > before && m >= after) code[i] = m > edgeHigh ? 2 : m > edgeLow ? 1 : 0;
    }
  }
  return { bg, mg, code, contrast, label };
}

/** wu2017 pattern complexity `P_c`: distinct labels in 3x3, then a 3x3 Gaussian. */
function patternComplexity(label: Uint8Array, h: number, w: number): Float64Array {
  const lab = (y: number, x: number) => label[clampi(y, 0, h - 1) * w + clampi(x, 0, w - 1)];
  const count = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (lab(y, x) === WU2017.bins) {
        count[y * w + x] = 1;
        continue;
      }
      const seen = new Set<number>();
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) seen.add(lab(y + dy, x + dx));
      }
      count[y * w + x] = seen.size;
    }
  }
  const g = complexityWeights();
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          s += g[dy + 1] * g[dx + 1] *
            count[clampi(y + dy, 0, h - 1) * w + clampi(x + dx, 0, w - 1)];
        }
      }
      out[y * w + x] = s;
    }
  }
  return out;
}

/** Edge map from codes: strong, or weak next to strong; then 3x3 dilation. */
function edgeMap(code: Uint8Array, h: number, w: number): Float64Array {
  const c = (y: number, x: number) => code[clampi(y, 0, h - 1) * w + clampi(x, 0, w - 1)];
  const e = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = c(y, x);
      let on = v === 2;
      if (v === 1) {
        for (let dy = -1; dy <= 1 && !on; dy++) {
          for (let dx = -1; dx <= 1; dx++) if (c(y + dy, x + dx) === 2) on = true;
        }
      }
      e[y * w + x] = on ? 1 : 0;
    }
  }
  const d = new Float64Array(h * w);
  const r = DILATE_RADIUS;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let on = 0;
      for (let dy = -r; dy <= r; dy++) {
        for (let dx = -r; dx <= r; dx++) {
          on = Math.max(on, e[clampi(y + dy, 0, h - 1) * w + clampi(x + dx, 0, w - 1)]);
        }
      }
      d[y * w + x] = on;
    }
  }
  return d;
}

/** `1 - 0.95 * (G * D)` with the 7x7 Gaussian, replicate border. */
function edgeWeight(d: Float64Array, h: number, w: number): Float64Array {
  const g = gaussianWeights();
  const out = new Float64Array(h * w);
  const r = GAUSS_RADIUS;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let dy = -r; dy <= r; dy++) {
        for (let dx = -r; dx <= r; dx++) {
          s += g[dy + r] * g[dx + r] *
            d[clampi(y + dy, 0, h - 1) * w + clampi(x + dx, 0, w - 1)];
        }
      }
      out[y * w + x] = 1 - 0.95 * s;
    }
  }
  return out;
}

/**
 * Computes a JND model on the CPU, in float64 (float32 where a comparison decides; see the module
 * documentation). Returns the map in levels and the intermediate maps.
 *
 * @example
 * ```ts
 * import { jndReference } from "./reference.ts";
 * const frames = new Float64Array(2 * 3 * 4 * 5).fill(0.5);
 * const { jnd } = jndReference(frames, [2, 3, 4, 5], { model: "namm-st" });
 * ```
 */
export function jndReference(
  frames: ArrayLike<number>,
  shape: readonly number[],
  options: JndReferenceOptions = {},
): JndReferenceResult {
  const [t, c, h, w] = shape;
  if (shape.length !== 4 || c !== 3) throw new RangeError(`jndReference: shape [${shape}]`);
  const model = options.model ?? DEFAULT_JND_MODEL;
  const edgeLow = options.edgeLow ?? DEFAULT_EDGE_LOW;
  const edgeHigh = options.edgeHigh ?? DEFAULT_EDGE_HIGH;
  const n = h * w;
  const lumaOf = (src: ArrayLike<number>, base: number) => {
    const p = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      p[i] = lumaF32(src[base + i], src[base + n + i], src[base + 2 * n + i]);
    }
    return p;
  };
  const out: JndReferenceResult = {
    jnd: new Float64Array(t * n),
    luma: new Float64Array(t * n),
    bg: new Float64Array(t * n),
    tl: new Float64Array(t * n),
    mg: new Float64Array(t * n),
    edges: new Float64Array(t * n),
    weight: new Float64Array(t * n),
    factor: new Float64Array(t * n).fill(1),
  };
  let prev: { p: Float64Array; bg: Float64Array } | null = null;
  if (options.previous && model === "namm-st") {
    const p = lumaOf(options.previous, 0);
    prev = { p, bg: spatialStages(p, h, w, edgeLow, edgeHigh).bg };
  }
  for (let f = 0; f < t; f++) {
    const p = lumaOf(frames, f * 3 * n);
    const { bg, mg, code, contrast, label } = spatialStages(p, h, w, edgeLow, edgeHigh);
    const edges = edgeMap(code, h, w);
    const weight = edgeWeight(edges, h, w);
    const pc = model === "wu2017" ? patternComplexity(label, h, w) : null;
    const o = f * n;
    for (let i = 0; i < n; i++) {
      const tl = luminanceAdaptation(bg[i]);
      const a = textureAlpha(bg[i]);
      const b = textureBeta(bg[i]);
      let j: number;
      if (model === "chou-li") {
        j = Math.max(tl, a * mg[i] + b);
      } else if (pc) {
        const cl = contrast[i];
        const lc = (WU2017.contrastA * cl ** 2.4) / (cl * cl + WU2017.contrastB ** 2);
        const ct = (WU2017.complexityA * pc[i] ** WU2017.complexityExp) /
          (pc[i] * pc[i] + WU2017.complexityB ** 2);
        const vm = Math.max(lc, cl * ct * weight[i]);
        j = tl + vm - 0.3 * Math.min(tl, vm);
      } else {
        const tt = Math.max(0, a * mg[i] * weight[i] + b);
        j = tl + tt - 0.3 * Math.min(tl, tt);
      }
      if (model === "namm-st" && prev) {
        const ild = fr(0.5 * fr(fr(p[i] - prev.p[i]) + fr(bg[i] - prev.bg[i])));
        out.factor[o + i] = temporalFactor(ild);
        j *= out.factor[o + i];
      }
      out.jnd[o + i] = j;
      out.tl[o + i] = tl;
    }
    out.luma.set(p, o);
    out.bg.set(bg, o);
    out.mg.set(mg, o);
    out.edges.set(edges, o);
    out.weight.set(weight, o);
    prev = { p, bg };
  }
  return out;
}
