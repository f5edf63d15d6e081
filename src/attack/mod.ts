/**
 * Attacks on a victim VQA model: STQA-Net's generator attack (`stqaAttack`,
 * `attackWithGenerator`, and `attackVideo` for a whole file with its report.json), the
 * iterative baselines behind the same {@link Attack} interface (`fgsm`, `ifgsm`, `zhang2023`,
 * `korhonen`, `randomAttack`), the losses and perturbation helpers they share, and the report
 * that `deno task attack` writes, with the panels of its shown frames.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { computeJnd, initGpu, loadVictim, tensor } from "../../mod.ts";
 * import { fgsm } from "./mod.ts";
 * await initGpu();
 * const victim = await loadVictim("vsfa-mini");
 * const frames = tensor(new Float32Array(2 * 3 * 16 * 16).fill(0.5), [2, 3, 16, 16]);
 * const out = await fgsm.run(frames, victim, { jnd: computeJnd(frames), mode: "down" });
 * assert.deepEqual(out.adversarial.shape, frames.shape);
 * ```
 * @module
 */

export {
  activityMap,
  type ActivityMapOptions,
  BASELINE_ATTACKS,
  baselineAttack,
  boundaryGradient,
  createIfgsm,
  createKorhonen,
  createRandomAttack,
  createZhang2023,
  fgsm,
  ifgsm,
  type IfgsmOptions,
  korhonen,
  type KorhonenOptions,
  projectRms,
  randomAttack,
  type RandomAttackOptions,
  type RandomNoise,
  zhang2023,
  type Zhang2023Options,
} from "./baselines/mod.ts";
export {
  type Attack,
  ATTACK_MODES,
  type AttackMode,
  type AttackOptions,
  type AttackOutput,
  type AttackWindows,
} from "./types.ts";
export { attackTarget, boundaryLoss, type ScoreScale, weightPenalty } from "./losses.ts";
export { applyPerturbation, clipToJnd } from "./perturb.ts";
export {
  attackWithGenerator,
  type AttackWithGeneratorOptions,
  branchFor,
  generatorPerturb,
  type GeneratorPerturbOptions,
  type GeneratorPerturbResult,
  quantizeInJnd,
  stqaAttack,
} from "./stqa.ts";
export { attackVideo, type AttackVideoOptions } from "./video.ts";
export {
  type AttackReport,
  AttackReportSchema,
  type AttackRun,
  AttackRunSchema,
  type AttackSettings,
  attackSettingsDiff,
  AttackSettingsSchema,
  parseAttackReport,
} from "./report.ts";
export type { Schema, SchemaError, SchemaIssue, SchemaResult } from "../_zod.ts";
export {
  type AttackPanels,
  attackPanels,
  type FramePanel,
  type KeptFrame,
  type PanelImage,
  panelsAsUris,
  shownFrames,
  type UriPanels,
} from "./panels.ts";
