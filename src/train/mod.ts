/**
 * Training: a victim VQA model on the proxy dataset (`trainVictim`, `fitVictim` on clips
 * already loaded), and an STQA-Net generator against a frozen victim (`trainGenerator`), both
 * with one training loop (loop.ts): seeded batches ({@link BatchSampler}), atomic checkpoints
 * that a later run resumes from exactly, a clear stop on a non-finite loss
 * ({@link NonFiniteLossError}), and the progress line.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../mod.ts";
 * import { trainVictim } from "./mod.ts";
 * await initGpu();
 * // Needs the proxy dataset (`deno task data`): cache/proxy/manifest.json.
 * const result = await trainVictim({ model: "vsfa-mini", steps: 10, out: "/tmp/vsfa-try" });
 * console.log(result.test, result.weights);
 * result.victim.dispose();
 * ```
 * @module
 */

export {
  evaluateGenerator,
  GeneratorLossError,
  type GeneratorTestResult,
  loadTrainClips,
  type TrainClip,
  trainGenerator,
  type TrainGeneratorOptions,
  type TrainGeneratorResult,
} from "./generator.ts";
export {
  evaluateVictim,
  fitVictim,
  type FitVictimOptions,
  type FitVictimResult,
  trainVictim,
  type TrainVictimOptions,
  type TrainVictimResult,
  type VictimMetrics,
} from "./victim.ts";
export { type LoadedClip, loadVictimClips } from "./clips.ts";
export { BatchSampler, cosineLr, NonFiniteLossError, type TrainProgress } from "./loop.ts";
