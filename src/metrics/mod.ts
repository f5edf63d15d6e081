/**
 * Measures on the CPU: the correlations of VQA papers between predicted and subjective scores
 * (`srcc`, `krcc`, `plcc` raw and after the 4-parameter logistic, `rmse`, all four at once with
 * `correlationReport`), and the imperceptibility of a perturbation (`psnr`, `ssim`,
 * `videoQuality`, `perturbationStats` against a JND map), and the structure of a perturbation
 * (grid, stripes, spectral lines, on luma and chroma: `StructureAccumulator`,
 * `perturbationStructure`, `chromaSummary`).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { psnr, srcc } from "./mod.ts";
 * assert.equal(srcc([1, 2, 3, 4], [10, 20, 30, 45]), 1);
 * const a = new Float32Array([0.5, 0.5, 0.5, 0.5]);
 * const b = new Float32Array([0.5, 0.5, 0.5, 0.6]);
 * assert.equal(Math.round(psnr(a, b)), 26); // MSE 0.0025: 10 log10(1 / 0.0025) dB
 * ```
 * @module
 */

export {
  type CorrelationReport,
  correlationReport,
  fitLogistic4,
  krcc,
  type Logistic4,
  logistic4,
  plcc,
  rankAverage,
  rmse,
  srcc,
} from "./correlation.ts";
export {
  JND_TOLERANCE,
  type PerturbationStats,
  perturbationStats,
  type PerturbationStatsOptions,
  psnr,
  type PsnrOptions,
  ssim,
  type SsimOptions,
  type VideoQuality,
  videoQuality,
} from "./quality.ts";
export {
  CHROMA_WEIGHTS,
  type ChromaStructure,
  type ChromaSummary,
  chromaSummary,
  perturbationStructure,
  STRUCTURE_TARGETS,
  StructureAccumulator,
  type StructureOptions,
  type StructureResult,
  type StructureStats,
} from "./structure.ts";
