/**
 * Correlation and error metrics of VQA papers: SRCC (Spearman, average ranks for ties), KRCC
 * (Kendall's tau-b, which corrects for ties), PLCC (Pearson; raw, and after the 4-parameter
 * logistic mapping of the VQEG reports) and RMSE.
 *
 * Degenerate inputs: arrays of different lengths, fewer than two pairs, or non-finite values throw
 * a `RangeError` naming the problem; a constant array has no defined correlation, and the
 * correlations return `NaN` for it (as scipy does), never a crash.
 *
 * @module
 */

function check(x: ArrayLike<number>, y: ArrayLike<number>, what: string): void {
  if (x.length !== y.length) {
    throw new RangeError(`${what}: arrays differ in length (${x.length} and ${y.length})`);
  }
  if (x.length < 2) throw new RangeError(`${what}: needs at least 2 pairs, got ${x.length}`);
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i]) || !Number.isFinite(y[i])) {
      throw new RangeError(`${what}: element ${i} is not finite (${x[i]}, ${y[i]})`);
    }
  }
}

/**
 * Ranks starting at 1, ties given the average of the ranks they span.
 *
 * @example
 * ```ts
 * import { rankAverage } from "./correlation.ts";
 * rankAverage([10, 20, 20, 5]); // [2, 3.5, 3.5, 1]
 * ```
 */
export function rankAverage(values: ArrayLike<number>): Float64Array {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  const ranks = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && values[order[j + 1]] === values[order[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]] = r;
    i = j + 1;
  }
  return ranks;
}

function pearsonUnchecked(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx;
    const dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return NaN;
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/**
 * Pearson linear correlation (PLCC without a fitted mapping). NaN for a constant input.
 *
 * @example
 * ```ts
 * import { plcc } from "./correlation.ts";
 * plcc([1, 2, 3], [2, 4, 7]); // 0.993...
 * ```
 */
export function plcc(x: ArrayLike<number>, y: ArrayLike<number>): number {
  check(x, y, "plcc");
  return pearsonUnchecked(x, y);
}

/**
 * Spearman rank correlation with average ranks for ties. NaN for a constant input.
 *
 * @example
 * ```ts
 * import { srcc } from "./correlation.ts";
 * srcc([1, 2, 3, 4], [10, 30, 20, 40]); // 0.8
 * ```
 */
export function srcc(x: ArrayLike<number>, y: ArrayLike<number>): number {
  check(x, y, "srcc");
  return pearsonUnchecked(rankAverage(x), rankAverage(y));
}

/**
 * Kendall's tau-b (ties corrected, as scipy.stats.kendalltau). O(n^2) pairs: fine for datasets
 * of a few thousand videos. NaN for a constant input.
 *
 * @example
 * ```ts
 * import { krcc } from "./correlation.ts";
 * krcc([1, 2, 3, 4], [10, 30, 20, 40]); // 0.666...
 * ```
 */
export function krcc(x: ArrayLike<number>, y: ArrayLike<number>): number {
  check(x, y, "krcc");
  const n = x.length;
  let concordant = 0, discordant = 0, tiesX = 0, tiesY = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = Math.sign(x[i] - x[j]);
      const dy = Math.sign(y[i] - y[j]);
      if (dx === 0 && dy === 0) continue; // tied in both: counts in neither denominator term
      if (dx === 0) tiesX++;
      else if (dy === 0) tiesY++;
      else if (dx === dy) concordant++;
      else discordant++;
    }
  }
  const denom = Math.sqrt((concordant + discordant + tiesX) * (concordant + discordant + tiesY));
  if (denom === 0) return NaN;
  return (concordant - discordant) / denom;
}

/**
 * Root mean squared error.
 *
 * @example
 * ```ts
 * import { rmse } from "./correlation.ts";
 * rmse([1, 2], [1, 4]); // 1.414...
 * ```
 */
export function rmse(x: ArrayLike<number>, y: ArrayLike<number>): number {
  check(x, y, "rmse");
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - y[i]) ** 2;
  return Math.sqrt(s / x.length);
}

/** Parameters of the 4-parameter logistic `f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2`. */
export type Logistic4 = [number, number, number, number];

/**
 * Evaluates the 4-parameter logistic of the VQEG reports.
 *
 * @example
 * ```ts
 * import { logistic4 } from "./correlation.ts";
 * logistic4([5, 1, 0, 1], 0); // 3
 * ```
 */
export function logistic4(b: Logistic4, x: number): number {
  const [b1, b2, b3, b4] = b;
  return (b1 - b2) / (1 + Math.exp(-(x - b3) / Math.abs(b4))) + b2;
}

function solve4(a: number[][], r: number[]): number[] | null {
  const m = a.map((row, i) => [...row, r[i]]);
  for (let c = 0; c < 4; c++) {
    let p = c;
    for (let k = c + 1; k < 4; k++) if (Math.abs(m[k][c]) > Math.abs(m[p][c])) p = k;
    if (Math.abs(m[p][c]) < 1e-300) return null;
    [m[c], m[p]] = [m[p], m[c]];
    for (let k = 0; k < 4; k++) {
      if (k === c) continue;
      const f = m[k][c] / m[c][c];
      for (let j = c; j < 5; j++) m[k][j] -= f * m[c][j];
    }
  }
  return m.map((row, i) => row[4] / row[i]);
}

/**
 * Fits the 4-parameter logistic mapping predictions `x` to labels `y` by least squares
 * (Levenberg-Marquardt from the usual start, b1 = max y, b2 = min y, b3 = mean x, b4 = std x,
 * and from its mirror with b1 and b2 swapped; the better fit wins).
 *
 * @example
 * ```ts
 * import { fitLogistic4 } from "./correlation.ts";
 * const b = fitLogistic4([0.1, 0.4, 0.5, 0.9], [1.2, 2.5, 3.1, 4.6]);
 * ```
 */
export function fitLogistic4(x: ArrayLike<number>, y: ArrayLike<number>): Logistic4 {
  check(x, y, "fitLogistic4");
  const n = x.length;
  let mx = 0;
  for (let i = 0; i < n; i++) mx += x[i];
  mx /= n;
  let sx = 0;
  for (let i = 0; i < n; i++) sx += (x[i] - mx) ** 2;
  sx = Math.sqrt(sx / n) || 1;
  let ymax = -Infinity, ymin = Infinity;
  for (let i = 0; i < n; i++) {
    ymax = Math.max(ymax, y[i]);
    ymin = Math.min(ymin, y[i]);
  }
  const sse = (p: Logistic4) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += (logistic4(p, x[i]) - y[i]) ** 2;
    return s;
  };
  // Rising and falling starts: a falling relation is far from the rising start in parameter space.
  const fits = [
    levenbergMarquardt([ymax, ymin, mx, sx], x, y, sse),
    levenbergMarquardt([ymin, ymax, mx, sx], x, y, sse),
  ];
  return sse(fits[0]) <= sse(fits[1]) ? fits[0] : fits[1];
}

function levenbergMarquardt(
  start: Logistic4,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  sse: (p: Logistic4) => number,
): Logistic4 {
  const n = x.length;
  let b = start;
  let cost = sse(b);
  let lambda = 1e-3;
  for (let iter = 0; iter < 5000; iter++) {
    const jtj = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]];
    const jtr = [0, 0, 0, 0];
    const [b1, b2, b3, b4] = b;
    const s4 = Math.abs(b4);
    for (let i = 0; i < n; i++) {
      const e = Math.exp(-(x[i] - b3) / s4);
      const s = 1 / (1 + e);
      const ds = s * (1 - s);
      const j = [s, 1 - s, -(b1 - b2) * ds / s4, -(b1 - b2) * ds * (x[i] - b3) / (s4 * b4)];
      const r = y[i] - ((b1 - b2) * s + b2);
      for (let a = 0; a < 4; a++) {
        jtr[a] += j[a] * r;
        for (let c = 0; c < 4; c++) jtj[a][c] += j[a] * j[c];
      }
    }
    let improved = false;
    while (lambda < 1e12) {
      const damped = jtj.map((row, a) =>
        row.map((v, c) => (a === c ? v * (1 + lambda) + 1e-12 : v))
      );
      const step = solve4(damped, jtr);
      if (step) {
        const next: Logistic4 = [b[0] + step[0], b[1] + step[1], b[2] + step[2], b[3] + step[3]];
        const nextCost = sse(next);
        if (Number.isFinite(nextCost) && nextCost <= cost) {
          const rel = (cost - nextCost) / Math.max(cost, 1e-300);
          b = next;
          cost = nextCost;
          lambda = Math.max(lambda / 10, 1e-12);
          improved = rel > 1e-15;
          break;
        }
      }
      lambda *= 10;
    }
    if (!improved) break;
  }
  return b;
}

/** The metrics a VQA table reports for one set of predictions. */
export interface CorrelationReport {
  /** Spearman rank correlation. */
  srcc: number;
  /** Kendall tau-b. */
  krcc: number;
  /** Pearson correlation of raw predictions. */
  plccRaw: number;
  /** Pearson correlation after the fitted 4-parameter logistic. */
  plcc: number;
  /** RMSE of raw predictions against the labels. */
  rmseRaw: number;
  /** RMSE after the fitted logistic. */
  rmse: number;
  /** The fitted logistic parameters. */
  logistic: Logistic4;
}

/**
 * All correlation metrics of predictions against labels (MOS).
 *
 * @example
 * ```ts
 * import { correlationReport } from "./correlation.ts";
 * const r = correlationReport([0.2, 0.5, 0.4, 0.9], [1.5, 3.0, 2.5, 4.5]);
 * console.log(r.srcc, r.plcc);
 * ```
 */
export function correlationReport(
  predictions: ArrayLike<number>,
  labels: ArrayLike<number>,
): CorrelationReport {
  check(predictions, labels, "correlationReport");
  const logistic = fitLogistic4(predictions, labels);
  const mapped = Array.from(predictions, (p) => logistic4(logistic, p));
  return {
    srcc: srcc(predictions, labels),
    krcc: krcc(predictions, labels),
    plccRaw: plcc(predictions, labels),
    plcc: pearsonUnchecked(mapped, labels),
    rmseRaw: rmse(predictions, labels),
    rmse: rmse(mapped, labels),
    logistic,
  };
}
