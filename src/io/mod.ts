/**
 * Tensors on disk in the safetensors format (float32): whole files (`saveSafetensors`,
 * `loadSafetensors`), their metadata alone (`safetensorsMetadata`), and the pure CPU halves on
 * bytes (`encodeSafetensors`, `decodeSafetensors`).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { decodeSafetensors, encodeSafetensors } from "./mod.ts";
 * const bytes = encodeSafetensors(
 *   { w: { shape: [2], data: new Float32Array([1, 2]) } },
 *   { note: "example" },
 * );
 * const back = decodeSafetensors(bytes);
 * assert.deepEqual(back.tensors.w.shape, [2]);
 * assert.equal(back.metadata.note, "example");
 * ```
 * @module
 */

export {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  type ReadSafetensorsOptions,
  type SafetensorsContents,
  SafetensorsError,
  safetensorsMetadata,
  saveSafetensors,
  type TensorData,
} from "./safetensors.ts";
