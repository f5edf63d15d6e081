/**
 * Just-noticeable-difference (JND) maps on the GPU: `computeJnd(frames)` takes RGB frames
 * `[T, 3, H, W]` in [0, 1] and returns `[T, 1, H, W]` in the same units (8-bit levels / 255),
 * with one of the models of `JND_MODELS` (chou-li, namm, namm-st with its temporal factor,
 * wu2017); `jndHeatmap` colours a map for reports. The stages and their formulas are described
 * in src/jnd/jnd.ts and docs/jnd.md.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu, tensor } from "../../mod.ts";
 * import { computeJnd, DEFAULT_JND_MODEL } from "./mod.ts";
 * await initGpu();
 * const frames = tensor(new Float32Array(2 * 3 * 16 * 16).fill(0.5), [2, 3, 16, 16]);
 * const jnd = computeJnd(frames, { model: DEFAULT_JND_MODEL });
 * assert.deepEqual(jnd.shape, [2, 1, 16, 16]);
 * assert.ok((await jnd.read()).every((v) => v > 0)); // a flat grey still hides some change
 * ```
 * @module
 */

export {
  DEFAULT_EDGE_HIGH,
  DEFAULT_EDGE_LOW,
  DEFAULT_JND_MODEL,
  DEFAULT_VIDEO_JND_MODEL,
  JND_MODELS,
  type JndModel,
  WU2017,
} from "./models.ts";
export { computeJnd, type ComputeJndOptions, jndHeatmap, type JndHeatmapOptions } from "./jnd.ts";
