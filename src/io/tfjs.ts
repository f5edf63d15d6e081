/**
 * TensorFlow.js weights (the `weightsManifest` of a `model.json` and its binary shards), read
 * into float32 tensors: plain float32, int32, and the quantised forms `tensorflowjs_converter`
 * writes (uint8 or uint16 with an affine `min`/`scale`, or float16). Pure CPU; no TensorFlow.
 *
 * The shards of one manifest group are one byte stream, split into files (`paths`); each weight
 * takes `prod(shape)` values of its stored dtype from where the previous one ended. A quantised
 * value `q` means `min + scale * q` (`tf.io.decodeWeights`' affine form).
 *
 * @module
 */

import { dirname, join } from "path";
import type { TensorData } from "./safetensors.ts";

/** One weight of a manifest group, as `model.json` lists it. */
export interface TfjsWeightSpec {
  /** The weight's name, e.g. `Conv1/kernel`. */
  name: string;
  /** Its shape (TensorFlow's layout, e.g. `[kh, kw, in, out]` for a Conv2D kernel). */
  shape: number[];
  /** The dtype it stands for: `float32` or `int32`. */
  dtype: string;
  /** How it is stored, when quantised. */
  quantization?: { dtype: string; min?: number; scale?: number };
}

/** A group of weights stored in the shards `paths`, in order. */
export interface TfjsManifestGroup {
  /** The shard files, relative to the model.json. */
  paths: string[];
  /** The weights, in storage order. */
  weights: TfjsWeightSpec[];
}

/** A decoded weight: float32 values, its shape, and the dtype it was stored as. */
export interface TfjsTensor extends TensorData {
  /** `float32`, `int32`, `uint8`, `uint16` or `float16`. */
  stored: string;
}

/** Thrown for a manifest or shard that cannot be decoded; names the file and the weight. */
export class TfjsWeightsError extends Error {
  /** A message naming `file` and what is wrong. */
  constructor(file: string, detail: string) {
    super(`${file}: ${detail}`);
    this.name = "TfjsWeightsError";
  }
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2 };

function half(bits: number): number {
  const s = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const f = bits & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/**
 * Decodes one manifest group's weights from its shards' bytes, concatenated in `paths` order.
 * `file` names the source in errors.
 *
 * @throws {TfjsWeightsError} for an unknown dtype or quantisation, or shards shorter than the
 * weights need (naming the weight), or longer (naming the extra bytes).
 * @example
 * ```ts
 * import assert from "assert";
 * import { decodeTfjsGroup } from "./tfjs.ts";
 * const bytes = new Uint8Array([0, 255]); // two uint8 values
 * const w = decodeTfjsGroup({
 *   paths: ["shard"],
 *   weights: [{ name: "w", shape: [2], dtype: "float32",
 *     quantization: { dtype: "uint8", min: -1, scale: 2 / 255 } }],
 * }, bytes, "model.json");
 * assert.deepEqual([...w.w.data], [-1, 1]);
 * ```
 */
export function decodeTfjsGroup(
  group: TfjsManifestGroup,
  bytes: Uint8Array,
  file: string,
): Record<string, TfjsTensor> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Record<string, TfjsTensor> = {};
  let at = 0;
  for (const spec of group.weights) {
    const n = spec.shape.reduce((a, d) => a * d, 1);
    if (!Number.isInteger(n) || n < 0 || spec.shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new TfjsWeightsError(file, `weight ${spec.name} has a bad shape [${spec.shape}]`);
    }
    const q = spec.quantization;
    const stored = q?.dtype ?? spec.dtype;
    const size = BYTES[stored];
    if (size === undefined || !["float32", "int32"].includes(spec.dtype)) {
      throw new TfjsWeightsError(
        file,
        `weight ${spec.name}: unsupported dtype ${spec.dtype}${q ? ` stored as ${stored}` : ""}`,
      );
    }
    if ((stored === "uint8" || stored === "uint16") && (q?.min === undefined || !q.scale)) {
      throw new TfjsWeightsError(file, `weight ${spec.name}: ${stored} without min and scale`);
    }
    const need = n * size;
    if (at + need > bytes.length) {
      throw new TfjsWeightsError(
        file,
        `weight ${spec.name} [${spec.shape}] needs ${need} bytes at offset ${at}, but the ` +
          `shards (${group.paths.join(", ")}) hold ${bytes.length}`,
      );
    }
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const o = at + i * size;
      switch (stored) {
        case "float32":
          data[i] = view.getFloat32(o, true);
          break;
        case "int32":
          data[i] = view.getInt32(o, true);
          break;
        case "uint8":
          data[i] = q!.min! + q!.scale! * bytes[o];
          break;
        case "uint16":
          data[i] = q!.min! + q!.scale! * view.getUint16(o, true);
          break;
        case "float16":
          data[i] = half(view.getUint16(o, true));
          break;
      }
    }
    out[spec.name] = { shape: [...spec.shape], data, stored };
    at += need;
  }
  if (at !== bytes.length) {
    throw new TfjsWeightsError(
      file,
      `the shards (${group.paths.join(", ")}) hold ${
        bytes.length - at
      } bytes after the last weight`,
    );
  }
  return out;
}

/**
 * Reads a TensorFlow.js model's weights from disk: `model.json` (its `weightsManifest`) and the
 * shard files beside it.
 *
 * @throws {TfjsWeightsError} naming the file for a missing manifest, shard or weight bytes.
 * @example
 * ```ts ignore
 * import { readTfjsWeights } from "./tfjs.ts";
 * const weights = await readTfjsWeights("model/model.json");
 * console.log(weights["Conv1/kernel"].shape); // [3, 3, 3, 32]
 * ```
 */
export function readTfjsWeights(modelJson: string): Promise<Record<string, TfjsTensor>> {
  return Promise.resolve().then(() => readTfjsWeightsSync(modelJson));
}

/**
 * {@link readTfjsWeights} without a promise, for a model built synchronously from files that
 * ship with it (the bundled MobileNetV2 of the `vsfa-mobilenetv2` victim).
 *
 * @throws {TfjsWeightsError} as {@link readTfjsWeights}.
 * @example
 * ```ts
 * import { readTfjsWeightsSync } from "./tfjs.ts";
 * const w = readTfjsWeightsSync("data/models/mobilenet_v2_nsfwjs/model.json");
 * console.log(w["Conv1/kernel"].shape); // [3, 3, 3, 32]
 * ```
 */
export function readTfjsWeightsSync(modelJson: string): Record<string, TfjsTensor> {
  let manifest: TfjsManifestGroup[];
  try {
    const parsed = JSON.parse(Deno.readTextFileSync(modelJson));
    manifest = parsed.weightsManifest;
  } catch (e) {
    throw new TfjsWeightsError(
      modelJson,
      `not a TensorFlow.js model.json (${(e as Error).message})`,
    );
  }
  if (!Array.isArray(manifest)) throw new TfjsWeightsError(modelJson, "no weightsManifest");
  const out: Record<string, TfjsTensor> = {};
  for (const group of manifest) {
    const parts: Uint8Array[] = [];
    for (const p of group.paths) {
      const path = join(dirname(modelJson), p);
      try {
        parts.push(Deno.readFileSync(path));
      } catch (e) {
        throw new TfjsWeightsError(path, `shard of ${modelJson}: ${(e as Error).message}`);
      }
    }
    const total = parts.reduce((n, p) => n + p.length, 0);
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    Object.assign(out, decodeTfjsGroup(group, bytes, modelJson));
  }
  return out;
}
