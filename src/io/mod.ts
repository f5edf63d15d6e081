/**
 * Tensors on disk in the safetensors format (float32): whole files (`saveSafetensors`,
 * `loadSafetensors`), their metadata alone (`safetensorsMetadata`), and the pure CPU halves on
 * bytes (`encodeSafetensors`, `decodeSafetensors`).
 *
 * PyTorch checkpoints as their authors released them (`torch.save(state_dict)`, the zip format
 * of torch >= 1.6 and the legacy format), read without Python and without executing anything
 * from the file: `readTorchCheckpoint` / `decodeTorchCheckpoint` give the state_dict's tensors
 * as float32 `TensorData` (with their original dtypes), ready for `encodeSafetensors`. Their
 * building blocks are exported too: `ZipArchive` (a read-only ZIP reader, ZIP64 and deflate,
 * CRC-checked) and `unpickle` (a restricted unpickler that builds only a state_dict's classes).
 * docs/checkpoints.md describes the formats and what is refused.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { decodeSafetensors, decodeTorchCheckpoint, encodeSafetensors } from "./mod.ts";
 * const bytes = encodeSafetensors(
 *   { w: { shape: [2], data: new Float32Array([1, 2]) } },
 *   { note: "example" },
 * );
 * const back = decodeSafetensors(bytes);
 * assert.deepEqual(back.tensors.w.shape, [2]);
 * assert.equal(back.metadata.note, "example");
 *
 * const ckpt = decodeTorchCheckpoint(await Deno.readFile("tests/fixtures/torch_ckpt/wrapped.pt"), {
 *   name: "wrapped.pt",
 * });
 * assert.equal(ckpt.key, "state_dict"); // {"state_dict": ..., "epoch": 3}
 * assert.deepEqual(ckpt.tensors["fc.weight"].shape, [2, 3]);
 * encodeSafetensors(ckpt.tensors); // float32 TensorData
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
export {
  decodeTorchCheckpoint,
  type DecodeTorchCheckpointOptions,
  readTorchCheckpoint,
  type ReadTorchCheckpointOptions,
  STATE_DICT_KEYS,
  type TorchCheckpoint,
  TorchCheckpointError,
  torchCheckpointFormat,
  type TorchDtype,
  type TorchTensor,
} from "./torch_checkpoint.ts";
export {
  ALLOWED_CLASSES,
  DtypeToken,
  PickleDict,
  PickleError,
  StorageType,
  TensorRef,
  unpickle,
  type UnpickleOptions,
  type UnpickleResult,
} from "./torch_pickle.ts";
export { ZipArchive, type ZipEntry, ZipError, type ZipOpenOptions } from "./zip.ts";
export {
  decodeTfjsGroup,
  readTfjsWeights,
  type TfjsManifestGroup,
  type TfjsTensor,
  TfjsWeightsError,
  type TfjsWeightSpec,
} from "./tfjs.ts";
