/**
 * Training: a victim VQA model on the proxy dataset (`trainVictim`, `fitVictim` on clips
 * already loaded), and an STQA-Net generator against a frozen victim (`trainGenerator`), each
 * with seeded batches, atomic checkpoints that a later run resumes from, and a clear stop on a
 * non-finite loss.
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
  type LoadedClip,
  loadVictimClips,
  NonFiniteLossError,
  type TrainProgress,
  trainVictim,
  type TrainVictimOptions,
  type TrainVictimResult,
  type VictimMetrics,
} from "./victim.ts";
