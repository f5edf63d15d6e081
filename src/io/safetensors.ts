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
 * section, `end - begin = 4 * prod(shape)`, no two tensors overlapping, and the data section
 * exactly as long as the header declares (a truncated or padded file is refused). Only `F32` is
 * supported; any other dtype is an error naming it. Files are read only when they are regular
 * files (a symbolic link to one is followed; FIFOs and devices such as `/dev/zero` are refused by
 * name before they are opened), and only after the 8-byte length, the header and the size the
 * header declares have been checked against the file's size, so a bad file never makes a large
 * allocation. Loaded tensors must be finite: a NaN or infinite value is refused naming the file
 * and the tensor. Writing goes to a temporary file in the same folder (removed on Ctrl-C) that is
 * renamed over the target once complete, so a failure never leaves a partial file.
 *
 * `encodeSafetensors` / `decodeSafetensors` are the pure CPU halves, on bytes.
 *
 * @module
 */

import { z } from "zod";
import { checkRegularFile, PathError, tempPathBeside } from "../_fs.ts";
import { forgetTemp, registerTemp } from "../_interrupt.ts";
import { formatZodError } from "../_zod.ts";
import { writeBuffer } from "../gpu/queue.ts";
import { type Shape, sizeOf, Tensor, tensor } from "../tensor/tensor.ts";

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
  const spans = checkSpans(header, bytes.length - dataStart);
  const tensors: Record<string, TensorData> = {};
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

/**
 * Checks every tensor's offsets against its shape and a data section of `dataBytes` bytes: no
 * tensor reaching beyond it, none overlapping, and no bytes after the last tensor's data.
 * Returns the spans in file order.
 */
function checkSpans(
  header: ParsedHeader,
  dataBytes: number,
): { name: string; begin: number; end: number }[] {
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
  const declared = spans.reduce((m, t) => Math.max(m, t.end), 0);
  if (dataBytes > declared) {
    fail(
      `${dataBytes - declared} byte(s) follow the last tensor's data (the header declares ` +
        `${declared} bytes of data, the file holds ${dataBytes}); the file is padded or corrupt`,
    );
  }
  return spans;
}

interface ParsedHeader {
  tensors: Record<string, z.infer<typeof tensorInfoSchema>>;
  metadata: Record<string, string>;
}

/** The header length in the first 8 bytes, checked against a file of `total` bytes. */
function headerLengthOf(first8: Uint8Array, total: number): number {
  if (total < 8) {
    fail(`the file is ${total} bytes, too short for the 8-byte header length`);
  }
  const view = new DataView(first8.buffer, first8.byteOffset, first8.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(total - 8)) {
    fail(
      `the header length ${n} exceeds the ${total - 8} bytes that follow it ` +
        `(truncated or not a safetensors file)`,
    );
  }
  const headerLength = Number(n);
  if (headerLength > MAX_HEADER_BYTES) {
    fail(`the header length ${headerLength} is above the limit of ${MAX_HEADER_BYTES} bytes`);
  }
  return headerLength;
}

/** Parses the header of `bytes` (which hold at least the length and the header). */
function parseHeader(
  bytes: Uint8Array,
  total = bytes.length,
): { header: ParsedHeader; dataStart: number } {
  const headerLength = headerLengthOf(bytes, total);
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

/** A file for {@link writeFilesAtomic}: its path and its bytes (or text, as UTF-8). */
export interface AtomicFile {
  /** Where it goes. */
  path: string;
  /** What it holds. */
  data: Uint8Array | string;
}

/**
 * Writes files atomically and together: each to a temporary file beside its target (removed on
 * Ctrl-C, and on failure), then, once all are complete, each renamed over its target in order.
 * A failure before the renames leaves every target as it was.
 *
 * @example
 * ```ts
 * import { writeFilesAtomic } from "./safetensors.ts";
 * await writeFilesAtomic([
 *   { path: "out/m.safetensors", data: new Uint8Array(8) },
 *   { path: "out/m.json", data: "{}\n" },
 * ]);
 * ```
 */
export async function writeFilesAtomic(files: readonly AtomicFile[]): Promise<void> {
  const temps: string[] = [];
  try {
    for (const f of files) {
      const tmp = tempPathBeside(f.path);
      temps.push(tmp);
      registerTemp(tmp);
      await Deno.writeFile(
        tmp,
        typeof f.data === "string" ? new TextEncoder().encode(f.data) : f.data,
        {
          createNew: true,
        },
      );
    }
    for (const [k, f] of files.entries()) {
      await Deno.rename(temps[k], f.path);
      forgetTemp(temps[k]);
    }
  } catch (e) {
    for (const t of temps) {
      await Deno.remove(t).catch(() => {/* not created, or renamed */});
      forgetTemp(t);
    }
    throw e;
  }
}

/**
 * The safetensors bytes of GPU tensors (read back), for {@link writeFilesAtomic}; errors name
 * `path`.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../mod.ts";
 * import { safetensorsBytes } from "./safetensors.ts";
 * await initGpu();
 * const bytes = await safetensorsBytes("w.safetensors", { w: tensor([1, 2], [2]) });
 * ```
 */
export async function safetensorsBytes(
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Promise<Uint8Array<ArrayBuffer>> {
  const datas: Record<string, TensorData> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (!(t instanceof Tensor)) fail(`'${name}' is not a Tensor`, path);
    datas[name] = { shape: [...t.shape], data: await t.read() };
  }
  return aboutFile(path, () => encodeSafetensors(datas, metadata));
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
  const bytes = await safetensorsBytes(path, tensors, metadata);
  try {
    await writeFilesAtomic([{ path, data: bytes }]);
  } catch (e) {
    throw new SafetensorsError(path, `cannot write: ${(e as Error).message}`, { cause: e });
  }
}

/** Options of {@link readSafetensorsFile}, {@link loadSafetensors}. */
export interface ReadSafetensorsOptions {
  /** The file's role in messages ("weights file", "checkpoint"); default "file". */
  what?: string;
  /** Accept NaN and infinite values (default false: refused naming the tensor). */
  allowNonFinite?: boolean;
}

/** Reads exactly `into.length` bytes from `file` (fewer only at the end of the file). */
async function readFull(file: Deno.FsFile, into: Uint8Array): Promise<number> {
  let got = 0;
  while (got < into.length) {
    const n = await file.read(into.subarray(got));
    if (n === null) break;
    got += n;
  }
  return got;
}

/**
 * Reads and validates a safetensors file without the GPU. The file must be a regular file (a
 * symbolic link to one is followed; a folder, FIFO or device is refused by name before it is
 * opened); the header length, the header and the data size it declares are checked against the
 * file's size before the data is read, so a truncated, padded or foreign file is refused
 * (naming the tensor where one is at fault) without a large allocation. Unless
 * `allowNonFinite`, every value must be finite.
 *
 * @throws {SafetensorsError} `<file>: <detail>`.
 * @example
 * ```ts
 * import { readSafetensorsFile } from "./safetensors.ts";
 * const { tensors, metadata } = await readSafetensorsFile("w.safetensors", {
 *   what: "weights file",
 * });
 * ```
 */
export async function readSafetensorsFile(
  path: string,
  options: ReadSafetensorsOptions = {},
): Promise<SafetensorsContents> {
  const what = options.what ?? "file";
  try {
    await checkRegularFile(path, what);
  } catch (e) {
    if (!(e instanceof PathError)) throw e;
    const prefix = `${path}: `;
    const detail = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
    throw new SafetensorsError(path, detail === `no such ${what}` ? "no such file" : detail, {
      cause: e,
    });
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    const detail = e instanceof Deno.errors.NotFound
      ? "no such file"
      : `cannot read: ${(e as Error).message}`;
    throw new SafetensorsError(path, detail, { cause: e });
  }
  let contents: SafetensorsContents;
  try {
    const info = await file.stat();
    if (!info.isFile) fail(`${what} is not a regular file`, path);
    const size = info.size;
    const first = new Uint8Array(Math.min(8, size));
    await readFull(file, first);
    const headerLength = aboutFile(path, () => headerLengthOf(first, size));
    const bytes = new Uint8Array(8 + headerLength);
    bytes.set(first);
    if (await readFull(file, bytes.subarray(8)) < headerLength) {
      fail("the file shrank while it was read", path);
    }
    const { header, dataStart } = aboutFile(path, () => parseHeader(bytes, size));
    aboutFile(path, () => checkSpans(header, size - dataStart));
    // The sizes agree: read the data section (exactly as long as the header declares).
    const all = new Uint8Array(size);
    all.set(bytes);
    if (await readFull(file, all.subarray(bytes.length)) < size - bytes.length) {
      fail("the file shrank while it was read", path);
    }
    contents = aboutFile(path, () => decodeSafetensors(all));
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    throw new SafetensorsError(path, `cannot read: ${(e as Error).message}`, { cause: e });
  } finally {
    file.close();
  }
  if (!options.allowNonFinite) checkFinite(contents.tensors, path);
  return contents;
}

/**
 * The first NaN or infinite value of each tensor that has one: name, count, index and value.
 *
 * @example
 * ```ts
 * import { nonFiniteValues } from "./safetensors.ts";
 * nonFiniteValues({ w: { shape: [2], data: new Float32Array([1, NaN]) } });
 * // [{ name: "w", count: 1, index: 1, value: NaN }]
 * ```
 */
export function nonFiniteValues(
  tensors: Record<string, TensorData>,
): { name: string; count: number; index: number; value: number }[] {
  const out: { name: string; count: number; index: number; value: number }[] = [];
  for (const [name, { data }] of Object.entries(tensors)) {
    let count = 0;
    let index = -1;
    for (let i = 0; i < data.length; i++) {
      // x - x is 0 for finite x and NaN for NaN and the infinities.
      if (data[i] - data[i] !== 0) {
        if (index < 0) index = i;
        count++;
      }
    }
    if (count) out.push({ name, count, index, value: data[index] });
  }
  return out;
}

/**
 * Throws a {@link SafetensorsError} naming `file` and the first tensor holding a NaN or an
 * infinite value (with how many it holds and the first index), if any does.
 *
 * @example
 * ```ts
 * import { checkFinite } from "./safetensors.ts";
 * checkFinite({ w: { shape: [2], data: new Float32Array([1, 2]) } }, "w.safetensors"); // fine
 * ```
 */
export function checkFinite(tensors: Record<string, TensorData>, file?: string): void {
  const bad = nonFiniteValues(tensors);
  if (!bad.length) return;
  const b = bad[0];
  const shape = shapeText(tensors[b.name].shape);
  const more = bad.length > 1 ? ` (and ${bad.length - 1} other tensor(s))` : "";
  fail(
    `tensor '${b.name}' ${shape} holds ${b.count} non-finite value(s) (first: ${b.value} at ` +
      `index ${b.index})${more}; the weights are corrupt or come from a diverged run`,
    file,
  );
}

/**
 * Loads a safetensors file. Without `into`, returns new tensors (not requiring gradients). With
 * `into`, checks that the file holds exactly those names with the same shapes (one error lists
 * every missing, extra or mismatching tensor) and then copies the values into those tensors'
 * buffers, returning `into`. The file is read as {@link readSafetensorsFile} reads it: a regular
 * file whose sizes agree, every value finite (unless `allowNonFinite`).
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
  options: ReadSafetensorsOptions = {},
): Promise<Record<string, Tensor>> {
  const { tensors } = await readSafetensorsFile(path, options);
  if (!into) {
    const out: Record<string, Tensor> = {};
    for (const [name, { shape, data }] of Object.entries(tensors)) {
      out[name] = tensor(data as Float32Array<ArrayBuffer>, shape);
    }
    return out;
  }
  return assignSafetensors(path, tensors, into);
}

/**
 * Copies tensors read from `path` (by {@link readSafetensorsFile}) into the buffers of `into`,
 * after checking that they hold exactly those names with the same shapes (one error lists every
 * missing, extra or mismatching tensor; nothing is copied then). Returns `into`.
 *
 * @throws {SafetensorsError} `<path>: <every mismatch>`.
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../mod.ts";
 * import { assignSafetensors, readSafetensorsFile } from "./safetensors.ts";
 * await initGpu();
 * const { tensors } = await readSafetensorsFile("w.safetensors");
 * assignSafetensors("w.safetensors", tensors, { w: tensor([0, 0], [2]) });
 * ```
 */
export function assignSafetensors(
  path: string,
  tensors: Record<string, TensorData>,
  into: Record<string, Tensor>,
): Record<string, Tensor> {
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
  return (await readSafetensorsFile(path, { allowNonFinite: true })).metadata;
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
