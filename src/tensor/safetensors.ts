/**
 * safetensors I/O for float32 tensors.
 *
 * The format (https://github.com/huggingface/safetensors): an 8-byte little-endian unsigned
 * header length N, N bytes of JSON header
 * `{"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}`
 * (offsets relative to the start of the data section), then the data, little-endian. Files this
 * module writes pad the header with spaces to a multiple of 8 bytes and lay the tensors out in
 * name order, without gaps.
 *
 * Reading validates the header with zod and checks every tensor's offsets: inside the data
 * section, `end - begin = 4 * prod(shape)`, no two tensors overlapping. Only `F32` is supported;
 * any other dtype is an error naming it. Writing goes to a temporary file in the same folder
 * that is renamed over the target once complete, so a failure never leaves a partial file.
 *
 * `encodeSafetensors` / `decodeSafetensors` are the pure CPU halves, on bytes.
 *
 * @module
 */

import { z } from "zod";
import { writeFileAtomic } from "../_fs.ts";
import { formatZodError } from "../_zod.ts";
import { writeBuffer } from "../gpu/queue.ts";
import { type Shape, sizeOf, Tensor, tensor } from "./tensor.ts";

/** A tensor's values on the CPU, row-major. */
export interface TensorData {
  /** Sizes, outermost first. */
  shape: number[];
  /** `prod(shape)` values. */
  data: Float32Array;
}

/** The contents of a safetensors file. */
export interface SafetensorsContents {
  /** Tensors by name. */
  tensors: Record<string, TensorData>;
  /** The `__metadata__` string map (empty when absent). */
  metadata: Record<string, string>;
}

/**
 * A malformed, unsupported, unreadable or mismatching safetensors file. The message is
 * `<file>: <detail>` (the detail alone for bytes decoded without a file) and names the tensor
 * and what is wrong; `file` holds the path, like `VideoError` and `DatasetError`.
 *
 * @example
 * ```ts
 * import { loadSafetensors, SafetensorsError } from "./safetensors.ts";
 * try {
 *   await loadSafetensors("weights.safetensors");
 * } catch (e) {
 *   if (e instanceof SafetensorsError) console.error(e.file, e.detail);
 * }
 * ```
 */
export class SafetensorsError extends Error {
  /** The file the error is about; undefined for bytes given to `decodeSafetensors`. */
  readonly file: string | undefined;
  /** What is wrong, without the file name. */
  readonly detail: string;
  /** An error about `file` (undefined when there is none); `cause` where there is one. */
  constructor(file: string | undefined, detail: string, options: { cause?: unknown } = {}) {
    super(file === undefined ? detail : `${file}: ${detail}`, { cause: options.cause });
    this.name = "SafetensorsError";
    this.file = file;
    this.detail = detail;
  }
}

const METADATA_KEY = "__metadata__";
/** The reference implementation's limit on the header size. */
const MAX_HEADER_BYTES = 100_000_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const offsetSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const tensorInfoSchema = z.object({
  dtype: z.string(),
  shape: z.array(offsetSchema),
  data_offsets: z.tuple([offsetSchema, offsetSchema]),
});
const metadataSchema = z.record(z.string(), z.string());
const headerSchema = z.record(z.string(), z.unknown());

function fail(detail: string, file?: string): never {
  throw new SafetensorsError(file, detail);
}

/** Runs `fn`; a SafetensorsError without a file is rethrown naming `file`. */
function aboutFile<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof SafetensorsError && e.file === undefined) {
      throw new SafetensorsError(file, e.detail, { cause: e });
    }
    throw e;
  }
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

/**
 * Serialises float32 tensors (and optional string metadata) to safetensors bytes.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors({ w: { shape: [2], data: new Float32Array([1, 2]) } });
 * const { tensors } = decodeSafetensors(bytes);
 * ```
 */
export function encodeSafetensors(
  tensors: Record<string, TensorData>,
  metadata?: Record<string, string>,
): Uint8Array<ArrayBuffer> {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    const parsed = metadataSchema.safeParse(metadata);
    if (!parsed.success) {
      fail(`metadata must map strings to strings: ${formatZodError(parsed.error)}`);
    }
    header[METADATA_KEY] = parsed.data;
  }
  let offset = 0;
  for (const name of names) {
    if (name === "" || name === METADATA_KEY) fail(`'${name}' cannot be a tensor name`);
    const { shape, data } = tensors[name];
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
      fail(`tensor '${name}': shape ${shapeText(shape)} must hold non-negative integers`);
    }
    if (data.length !== sizeOf(shape)) {
      fail(`tensor '${name}': ${data.length} values do not fill shape ${shapeText(shape)}`);
    }
    header[name] = {
      dtype: "F32",
      shape: [...shape],
      data_offsets: [offset, offset + data.length * 4],
    };
    offset += data.length * 4;
  }
  let json = JSON.stringify(header);
  const encoder = new TextEncoder();
  let headerBytes = encoder.encode(json);
  const pad = (8 - (headerBytes.length % 8)) % 8;
  if (pad) {
    json += " ".repeat(pad);
    headerBytes = encoder.encode(json);
  }
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const { data } = tensors[name];
    if (LITTLE_ENDIAN) {
      out.set(new Uint8Array(data.buffer, data.byteOffset, data.length * 4), at);
    } else {
      for (let i = 0; i < data.length; i++) view.setFloat32(at + 4 * i, data[i], true);
    }
    at += data.length * 4;
  }
  return out;
}

/**
 * Parses safetensors bytes, validating the header and every tensor's offsets.
 *
 * @throws {SafetensorsError} on a truncated or malformed file, a dtype other than F32, or
 *   offsets outside the data, overlapping, or not matching the shape.
 * @example
 * ```ts
 * import { decodeSafetensors } from "./safetensors.ts";
 * const bytes = await Deno.readFile("weights.safetensors");
 * const { tensors, metadata } = decodeSafetensors(bytes);
 * console.log(Object.keys(tensors), metadata);
 * ```
 */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsContents {
  const { header, dataStart } = parseHeader(bytes);
  const dataBytes = bytes.length - dataStart;
  const tensors: Record<string, TensorData> = {};
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header.tensors)) {
    const [begin, end] = info.data_offsets;
    const need = sizeOf(info.shape) * 4;
    if (end < begin) {
      fail(`tensor '${name}': data_offsets [${begin}, ${end}] end before they begin`);
    }
    if (end - begin !== need) {
      fail(
        `tensor '${name}': shape ${shapeText(info.shape)} needs ${need} bytes of F32, but ` +
          `data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    if (end > dataBytes) {
      fail(
        `tensor '${name}': data_offsets [${begin}, ${end}] reach beyond the data section ` +
          `(${dataBytes} bytes; the file is truncated or the header is wrong)`,
      );
    }
    spans.push({ name, begin, end });
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < spans.length; i++) {
    const a = spans[i - 1];
    const b = spans[i];
    // Empty tensors occupy no bytes and cannot overlap anything.
    if (b.begin < a.end && b.end > b.begin) {
      fail(
        `tensors '${a.name}' [${a.begin}, ${a.end}) and '${b.name}' [${b.begin}, ${b.end}) ` +
          `overlap in the data section`,
      );
    }
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const { name, begin, end } of spans) {
    const start = dataStart + begin;
    let data: Float32Array;
    if (LITTLE_ENDIAN) {
      data = new Float32Array(bytes.slice(start, dataStart + end).buffer);
    } else {
      data = new Float32Array((end - begin) / 4);
      for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(start + 4 * i, true);
    }
    tensors[name] = { shape: [...header.tensors[name].shape], data };
  }
  return { tensors, metadata: header.metadata };
}

interface ParsedHeader {
  tensors: Record<string, z.infer<typeof tensorInfoSchema>>;
  metadata: Record<string, string>;
}

function parseHeader(bytes: Uint8Array): { header: ParsedHeader; dataStart: number } {
  if (bytes.length < 8) {
    fail(`the file is ${bytes.length} bytes, too short for the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) {
    fail(
      `the header length ${n} exceeds the ${bytes.length - 8} bytes that follow it ` +
        `(truncated or not a safetensors file)`,
    );
  }
  const headerLength = Number(n);
  if (headerLength > MAX_HEADER_BYTES) {
    fail(`the header length ${headerLength} is above the limit of ${MAX_HEADER_BYTES} bytes`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    fail("the header is not valid UTF-8");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(`the header is not valid JSON: ${(e as Error).message}`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    fail("the header must be a JSON object");
  }
  const top = headerSchema.parse(json);
  const header: ParsedHeader = { tensors: {}, metadata: {} };
  for (const [name, value] of Object.entries(top)) {
    if (name === METADATA_KEY) {
      const parsed = metadataSchema.safeParse(value);
      if (!parsed.success) {
        fail(`${METADATA_KEY} must map strings to strings: ${formatZodError(parsed.error)}`);
      }
      header.metadata = parsed.data;
      continue;
    }
    const parsed = tensorInfoSchema.safeParse(value);
    if (!parsed.success) {
      fail(`tensor '${name}': bad header entry: ${formatZodError(parsed.error)}`);
    }
    if (parsed.data.dtype !== "F32") {
      fail(
        `tensor '${name}' has dtype ${parsed.data.dtype}; only F32 is supported ` +
          `(convert the file to float32)`,
      );
    }
    header.tensors[name] = parsed.data;
  }
  return { header, dataStart: 8 + headerLength };
}

/**
 * Saves tensors (read back from the GPU) to a safetensors file, atomically.
 *
 * @example
 * ```ts
 * import { initGpu, saveSafetensors, tensor } from "../../mod.ts";
 * await initGpu();
 * const w = tensor([1, 2, 3, 4], [2, 2]);
 * await saveSafetensors("w.safetensors", { "layer.weight": w }, { seed: "1" });
 * ```
 */
export async function saveSafetensors(
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const datas: Record<string, TensorData> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (!(t instanceof Tensor)) fail(`'${name}' is not a Tensor`, path);
    datas[name] = { shape: [...t.shape], data: await t.read() };
  }
  const bytes = aboutFile(path, () => encodeSafetensors(datas, metadata));
  try {
    await writeFileAtomic(path, bytes);
  } catch (e) {
    throw new SafetensorsError(path, `cannot write: ${(e as Error).message}`, { cause: e });
  }
}

async function readContents(path: string): Promise<SafetensorsContents> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    const detail = e instanceof Deno.errors.NotFound
      ? "no such file"
      : `cannot read: ${(e as Error).message}`;
    throw new SafetensorsError(path, detail, { cause: e });
  }
  return aboutFile(path, () => decodeSafetensors(bytes));
}

/**
 * Loads a safetensors file. Without `into`, returns new tensors (not requiring gradients). With
 * `into`, checks that the file holds exactly those names with the same shapes (one error lists
 * every missing, extra or mismatching tensor) and then copies the values into those tensors'
 * buffers, returning `into`.
 *
 * @throws {SafetensorsError} on a malformed file or a mismatch with `into`.
 * @example
 * ```ts
 * import { initGpu, loadSafetensors, tensor } from "../../mod.ts";
 * await initGpu();
 * const params = { "layer.weight": tensor([0, 0, 0, 0], [2, 2], { requiresGrad: true }) };
 * await loadSafetensors("w.safetensors", params);
 * ```
 */
export async function loadSafetensors(
  path: string,
  into?: Record<string, Tensor>,
): Promise<Record<string, Tensor>> {
  const { tensors } = await readContents(path);
  if (!into) {
    const out: Record<string, Tensor> = {};
    for (const [name, { shape, data }] of Object.entries(tensors)) {
      out[name] = tensor(data as Float32Array<ArrayBuffer>, shape);
    }
    return out;
  }
  const problems: string[] = [];
  for (const [name, t] of Object.entries(into)) {
    const found = tensors[name];
    if (!found) problems.push(`tensor '${name}' ${shapeText(t.shape)} is missing from the file`);
    else if (!sameShape(found.shape, t.shape)) {
      problems.push(
        `tensor '${name}' has shape ${shapeText(found.shape)} in the file but ` +
          `${shapeText(t.shape)} in the model`,
      );
    }
  }
  for (const name of Object.keys(tensors)) {
    if (!(name in into)) {
      problems.push(
        `the file has tensor '${name}' ${shapeText(tensors[name].shape)} not in the model`,
      );
    }
  }
  if (problems.length) fail(problems.join("; "), path);
  for (const [name, t] of Object.entries(into)) {
    const data = tensors[name].data as Float32Array<ArrayBuffer>;
    // writeBuffer submits pending work first, so kernels already encoded see the old values.
    if (data.length) writeBuffer(t.buffer, data);
  }
  return into;
}

/**
 * Reads only the `__metadata__` map of a safetensors file (after validating the whole file).
 *
 * @example
 * ```ts
 * import { safetensorsMetadata } from "./safetensors.ts";
 * const meta = await safetensorsMetadata("w.safetensors");
 * console.log(meta.seed);
 * ```
 */
export async function safetensorsMetadata(path: string): Promise<Record<string, string>> {
  return (await readContents(path)).metadata;
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
