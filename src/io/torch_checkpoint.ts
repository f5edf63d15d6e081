/**
 * PyTorch checkpoints (`torch.save(state_dict, f)`) read in TypeScript, without Python, and
 * without executing anything from the file.
 *
 * Two formats:
 *
 * - **zip** (torch >= 1.6, the default): a ZIP archive (src/io/zip.ts) holding
 *   `<archive>/data.pkl`, the pickled object, whose tensors name their storages by persistent
 *   ids `('storage', storage_type, key, location, numel)`; each storage is the entry
 *   `<archive>/data/<key>`, raw elements in the byte order of `<archive>/byteorder` (`little` or
 *   `big`; little when absent, as files before torch 2.1 have none).
 * - **legacy** (`_use_new_zipfile_serialization=False`, and every file before torch 1.6): five
 *   things back to back: a pickle of the magic number `0x1950a86a20f9469cfc6c`, one of the
 *   protocol version 1001, one of a dict of system information, the main pickle (persistent ids
 *   `('storage', storage_type, root_key, location, numel, view_metadata)`, `view_metadata` being
 *   None or `(view_key, offset, numel)`), and a pickle of the list of storage keys; then, for each
 *   key in that order, an int64 little-endian element count and that many elements, little-endian.
 *
 * Pickles go through the restricted unpickler of src/io/torch_pickle.ts: only the classes a
 * state_dict needs are built, anything else (`os.system`, a whole-model save's
 * `torch.nn.modules...` classes) is refused naming the class. The tar format of torch < 0.4 and
 * TorchScript archives (`torch.jit.save`) are refused by name.
 *
 * Tensors come out logical and contiguous (row-major): the storage offset, sizes and strides are
 * honoured, so a transposed, sliced or strided view saved as such reads as the tensor it shows;
 * views sharing one storage each get their own array. Every tensor's `data` is float32: floating
 * dtypes are converted (float64 rounded to nearest), integer and bool tensors hold their values
 * as float32 too, and `rounded` names the first value float32 could not hold exactly (a float64
 * value that rounds, an int32/int64 beyond 2^24 that is not a float32), so a caller can refuse
 * what it cannot take. `dtype` keeps the original dtype's name.
 *
 * Memory: the file is read once; stored entries (PyTorch never compresses them) and legacy
 * storages are views of it, not copies; each tensor's float32 array is written straight from
 * them (an aligned copy of a storage is made only when its bytes are misaligned or in the other
 * byte order, as in deflated or repacked archives).
 *
 * @module
 */

import { checkRegularFile, PathError } from "../_fs.ts";
import type { TensorData } from "./safetensors.ts";
import { DtypeToken, PickleError, StorageType, TensorRef, unpickle } from "./torch_pickle.ts";
import { ZipArchive, ZipError } from "./zip.ts";

/** The dtypes the reader converts. */
export type TorchDtype =
  | "float32"
  | "float64"
  | "float16"
  | "bfloat16"
  | "int64"
  | "int32"
  | "int16"
  | "int8"
  | "uint8"
  | "bool";

/** Bytes per element of each {@link TorchDtype}. */
const ELEMENT_SIZES: Record<TorchDtype, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** A tensor of a checkpoint: {@link TensorData} (float32 values) with its original dtype. */
export interface TorchTensor extends TensorData {
  /** The dtype in the file. */
  dtype: TorchDtype;
  /**
   * The first value float32 cannot hold exactly (its flat index and the value in the file, as
   * text), when there is one; undefined when `data` holds every value exactly.
   */
  rounded?: { index: number; value: string };
}

/** A checkpoint's state_dict, as {@link decodeTorchCheckpoint} reads it. */
export interface TorchCheckpoint {
  /** `zip` (torch >= 1.6) or `legacy`. */
  format: "zip" | "legacy";
  /** The top-level key the state_dict was under; undefined when it is the top level. */
  key: string | undefined;
  /** The top level's keys (empty when the top level is not a dict). */
  topLevelKeys: string[];
  /** The tensors by name, in the file's order, the prefix stripped where it was. */
  tensors: Record<string, TorchTensor>;
  /** The names of the state_dict's entries that are not tensors (ignored). */
  ignored: string[];
  /** The prefix removed from every name (`module.`), or undefined. */
  strippedPrefix: string | undefined;
  /** The storages' byte order. */
  byteOrder: "little" | "big";
}

/** Options of {@link decodeTorchCheckpoint}. */
export interface DecodeTorchCheckpointOptions {
  /** The file in messages; default "checkpoint". */
  name?: string;
  /**
   * The top-level key holding the state_dict. Default: the top level when it holds tensors, else
   * the one dict of tensors under one of {@link STATE_DICT_KEYS}; otherwise an error lists the
   * top-level keys.
   */
  key?: string;
  /** Keep a `module.` prefix that every name has (DataParallel); default false: stripped. */
  keepPrefix?: boolean;
}

/** Options of {@link readTorchCheckpoint}. */
export interface ReadTorchCheckpointOptions extends Omit<DecodeTorchCheckpointOptions, "name"> {
  /** The file's role in messages ("checkpoint", "weights file"); default "checkpoint". */
  what?: string;
}

/**
 * The top-level keys under which a state_dict is looked for when the top level holds no tensors
 * (FAST-VQA and DOVER files are `{"state_dict": ...}`).
 */
export const STATE_DICT_KEYS: readonly string[] = Object.freeze([
  "state_dict",
  "model_state_dict",
  "model_state",
  "model",
  "net",
  "network",
  "params",
  "weights",
]);

/** The prefix DataParallel and DistributedDataParallel put before every name. */
const PARALLEL_PREFIX = "module.";
const MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
const HOST_LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A checkpoint that cannot be read: missing, truncated, corrupt, not a torch.save file, holding a
 * refused class, or without a state_dict where one was looked for. The message is
 * `<file>: <detail>`, naming the tensor and the storage where they are involved.
 *
 * @example
 * ```ts
 * import { readTorchCheckpoint, TorchCheckpointError } from "./torch_checkpoint.ts";
 * try {
 *   await readTorchCheckpoint("model.pth");
 * } catch (e) {
 *   if (e instanceof TorchCheckpointError) console.error(e.message);
 * }
 * ```
 */
export class TorchCheckpointError extends Error {
  /** The file the error is about. */
  readonly file: string;
  /** What is wrong, without the file name. */
  readonly detail: string;
  /** An error about `file`; `cause` where there is one. */
  constructor(file: string, detail: string, options: { cause?: unknown } = {}) {
    super(`${file}: ${detail}`, { cause: options.cause });
    this.name = "TorchCheckpointError";
    this.file = file;
    this.detail = detail;
  }
}

/**
 * Which torch.save format `bytes` look like, from their first bytes: `zip` (a ZIP local header or
 * an empty archive's end record), `legacy` (a pickle's PROTO opcode), or undefined.
 *
 * @example
 * ```ts
 * import { torchCheckpointFormat } from "./torch_checkpoint.ts";
 * torchCheckpointFormat(new Uint8Array([0x50, 0x4b, 3, 4])); // "zip"
 * torchCheckpointFormat(new Uint8Array([0x80, 2])); // "legacy"
 * ```
 */
export function torchCheckpointFormat(bytes: Uint8Array): "zip" | "legacy" | undefined {
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b) {
    if ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6)) return "zip";
  }
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5) return "legacy";
  return undefined;
}

/** A storage a tensor reads: where its bytes are, once known. */
interface StorageHandle {
  /** The storage in messages: `archive/data/7` (zip), `94123` (legacy: its key). */
  label: string;
  /** Its dtype (uint8 for an untyped storage, whose tensors give their own). */
  dtype: string;
  /** Its bytes (loaded at most once); undefined for a legacy storage missing from the file. */
  bytes(): Uint8Array | undefined;
  /** The first element of a legacy view, in the root storage. */
  elementOffset: number;
  /** True when the file ended inside this storage. */
  truncated(): boolean;
  order: "little" | "big";
}

// The persistent_load functions throw TypeErrors: the unpickler puts the file and the byte
// offset before their messages.

function storageTypeOf(v: unknown): StorageType {
  if (v instanceof StorageType) return v;
  throw new TypeError(`a storage's type is ${describe(v)}, not a torch storage class`);
}

function textOf(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "bigint") return String(v);
  if (v instanceof Uint8Array) return new TextDecoder().decode(v);
  throw new TypeError(`a storage key is ${describe(v)}`);
}

/** The pickle's `('storage', ...)` persistent id as an array, or an error. */
function storageId(pid: unknown, length: number, format: string): readonly unknown[] {
  if (!Array.isArray(pid) || pid.length !== length || textOf(pid[0]) !== "storage") {
    throw new TypeError(
      `a ${format} checkpoint's persistent ids are ('storage', ...) tuples of ${length}; got ` +
        describe(pid),
    );
  }
  return pid;
}

/**
 * Decodes a torch.save checkpoint's bytes (either format) into its state_dict's tensors.
 *
 * @throws {TorchCheckpointError} `<name>: <detail>` for a truncated or corrupt file, a refused
 *   class, a tensor whose storage is too short, or no state_dict where one was looked for.
 * @example
 * ```ts
 * import { decodeTorchCheckpoint } from "./torch_checkpoint.ts";
 * const bytes = await Deno.readFile("tests/fixtures/torch_ckpt/wrapped.pt");
 * const ckpt = decodeTorchCheckpoint(bytes, { name: "wrapped.pt" });
 * console.log(ckpt.format, ckpt.key, Object.keys(ckpt.tensors)); // zip state_dict [...]
 * ```
 */
export function decodeTorchCheckpoint(
  bytes: Uint8Array,
  options: DecodeTorchCheckpointOptions = {},
): TorchCheckpoint {
  const file = options.name ?? "checkpoint";
  try {
    const format = torchCheckpointFormat(bytes);
    let top: unknown;
    let byteOrder: "little" | "big" = "little";
    if (format === "zip") ({ top, byteOrder } = readZipFormat(bytes, file));
    else if (format === "legacy") top = readLegacyFormat(bytes, file);
    else fail(file, notACheckpoint(bytes));
    return { format, byteOrder, ...stateDictOf(top, file, options) };
  } catch (e) {
    if (e instanceof ZipError || e instanceof PickleError) {
      throw new TorchCheckpointError(file, e.detail, { cause: e });
    }
    throw e;
  }
}

function notACheckpoint(bytes: Uint8Array): string {
  if (bytes.length === 0) return "the file is empty";
  const ustar = new TextDecoder().decode(bytes.subarray(257, 262));
  if (ustar === "ustar") {
    return "a tar archive: the checkpoint format of torch < 0.4, which is not supported " +
      "(load and save it again with a recent torch)";
  }
  if (bytes.length >= 8 && bytes[8] === 0x7b) {
    return "not a PyTorch checkpoint (it looks like a safetensors file)";
  }
  return "not a PyTorch checkpoint (neither a zip archive nor a pickle)";
}

function fail(file: string, detail: string): never {
  throw new TorchCheckpointError(file, detail);
}

function readZipFormat(
  bytes: Uint8Array,
  file: string,
): { top: unknown; byteOrder: "little" | "big" } {
  const zip = ZipArchive.open(bytes, { name: file });
  const pickles = zip.entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (zip.entries.some((e) => /^[^/]+\/constants\.pkl$/.test(e.name))) {
    fail(
      file,
      "a TorchScript archive (torch.jit.save), not a torch.save checkpoint; only state_dicts " +
        "saved with torch.save are read",
    );
  }
  if (pickles.length !== 1) {
    fail(
      file,
      pickles.length
        ? `a zip archive with ${pickles.length} data.pkl entries; a torch.save file has one`
        : "a zip archive without <archive>/data.pkl: not a torch.save checkpoint",
    );
  }
  const prefix = pickles[0].name.slice(0, -"data.pkl".length);
  let byteOrder: "little" | "big" = "little";
  const order = zip.entry(`${prefix}byteorder`);
  if (order) {
    const text = new TextDecoder().decode(zip.read(order)).trim();
    if (text !== "little" && text !== "big") {
      fail(file, `${order.name} says '${text.slice(0, 20)}', not 'little' or 'big'`);
    }
    byteOrder = text;
  }
  const storages = new Map<string, StorageHandle>();
  const persistentLoad = (pid: unknown): unknown => {
    const [, type, keyValue] = storageId(pid, 5, "zip");
    const key = textOf(keyValue);
    const st = storageTypeOf(type);
    const known = storages.get(key);
    if (known) return known;
    const label = `${prefix}data/${key}`;
    if (!zip.entry(label)) {
      throw new TypeError(`the pickle names storage ${key}, but the archive has no entry ${label}`);
    }
    let loaded: Uint8Array | undefined;
    const handle: StorageHandle = {
      label,
      dtype: st.dtype,
      bytes: () => (loaded ??= zip.read(label)),
      elementOffset: 0,
      truncated: () => false,
      order: byteOrder,
    };
    storages.set(key, handle);
    return handle;
  };
  const { value } = unpickle(zip.read(pickles[0]), { name: file, persistentLoad });
  return { top: value, byteOrder };
}

function readLegacyFormat(bytes: Uint8Array, file: string): unknown {
  const magic = unpickle(bytes, { name: file });
  if (magic.value !== MAGIC) {
    fail(
      file,
      "a pickle without torch's magic number: not a torch.save checkpoint (a plain pickle " +
        "file is not read)",
    );
  }
  const protocol = unpickle(bytes, { name: file, offset: magic.end });
  if (protocol.value !== LEGACY_PROTOCOL) {
    fail(
      file,
      `torch's legacy protocol version is ${describe(protocol.value)}, not ${LEGACY_PROTOCOL}`,
    );
  }
  // The system information (byte order, type sizes) does not matter: torch writes legacy
  // storages little-endian on every machine.
  const sysInfo = unpickle(bytes, { name: file, offset: protocol.end });
  const roots = new Map<string, LegacyRoot>();
  const persistentLoad = (pid: unknown): unknown => {
    const [, type, rootValue, , numel, view] = storageId(pid, 6, "legacy");
    const rootKey = textOf(rootValue);
    const st = storageTypeOf(type);
    let root = roots.get(rootKey);
    if (!root) {
      if (typeof numel !== "number") {
        throw new TypeError(`storage ${rootKey}: numel is ${describe(numel)}`);
      }
      root = { key: rootKey, dtype: st.dtype, numel, bytes: undefined, cut: false };
      roots.set(rootKey, root);
    }
    let elementOffset = 0;
    if (view !== null && view !== undefined) {
      if (!Array.isArray(view) || view.length !== 3 || typeof view[1] !== "number") {
        throw new TypeError(`storage ${rootKey}: view metadata ${describe(view)}`);
      }
      elementOffset = view[1];
    }
    const r = root;
    return {
      label: rootKey,
      dtype: r.dtype,
      bytes: () => r.bytes,
      elementOffset,
      truncated: () => r.cut,
      order: "little",
    } satisfies StorageHandle;
  };
  const main = unpickle(bytes, { name: file, offset: sysInfo.end, persistentLoad });
  const keys = unpickle(bytes, { name: file, offset: main.end });
  if (!Array.isArray(keys.value)) {
    fail(file, `the list of storage keys is ${describe(keys.value)}; the file is corrupt`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = keys.end;
  for (const k of keys.value) {
    const key = textOf(k);
    const root = roots.get(key);
    if (!root) fail(file, `the list of storages names ${key}, which no tensor uses`);
    const size = elementSize(root.dtype, `storage ${key}`, file);
    if (at + 8 > bytes.length) {
      root.bytes = new Uint8Array(0);
      root.cut = true;
      continue;
    }
    const count = view.getBigInt64(at, true);
    if (count !== BigInt(root.numel)) {
      fail(
        file,
        `storage ${key} holds ${count} elements in the file but its tensors' pickle says ` +
          `${root.numel}; the file is corrupt`,
      );
    }
    const start = at + 8;
    const end = start + root.numel * size;
    root.bytes = bytes.subarray(start, Math.min(end, bytes.length));
    root.cut = end > bytes.length;
    at = end;
  }
  return main.value;
}

interface LegacyRoot {
  key: string;
  dtype: string;
  numel: number;
  bytes: Uint8Array | undefined;
  cut: boolean;
}

function elementSize(dtype: string, what: string, file: string): number {
  if (dtype in ELEMENT_SIZES) return ELEMENT_SIZES[dtype as TorchDtype];
  fail(file, `${what} has dtype ${dtype}, which is not supported`);
}

/** A value in words, for messages: "tensor [3,4]", "dict of 5 tensors", "int", .... */
function describe(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (v instanceof TensorRef) return `tensor [${v.size.join(",")}]`;
  if (v instanceof Map) {
    const n = [...v.values()].filter((x) => x instanceof TensorRef).length;
    return n ? `dict of ${n} tensor(s)` : `dict of ${v.size} entr${v.size === 1 ? "y" : "ies"}`;
  }
  if (Array.isArray(v)) return `${Object.isFrozen(v) ? "tuple" : "list"} of ${v.length}`;
  if (typeof v === "number") return Number.isInteger(v) ? `int ${v}` : `float ${v}`;
  if (typeof v === "bigint") return `int ${v}`;
  if (typeof v === "string") {
    return `str ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "..." : v)}`;
  }
  if (typeof v === "boolean") return `bool ${v ? "True" : "False"}`;
  if (v instanceof Uint8Array) return `bytes of ${v.length}`;
  if (v instanceof Set) return `set of ${v.size}`;
  if (v instanceof StorageType) return v.className;
  if (v instanceof DtypeToken) return `torch.${v.dtype}`;
  return typeof v;
}

function hasTensors(v: unknown): v is Map<unknown, unknown> {
  if (!(v instanceof Map)) return false;
  for (const x of v.values()) if (x instanceof TensorRef) return true;
  return false;
}

/** The most top-level keys an error lists. */
const LISTED_KEYS = 20;

function topLevelText(top: Map<unknown, unknown>): string {
  if (!top.size) return "the top level is an empty dict";
  const entries = [...top].slice(0, LISTED_KEYS).map(([k, v]) =>
    `${typeof k === "string" ? k : String(k)} (${describe(v)})`
  );
  const more = top.size > LISTED_KEYS ? ` and ${top.size - LISTED_KEYS} more` : "";
  return `top-level keys: ${entries.join(", ")}${more}`;
}

function stateDictOf(
  top: unknown,
  file: string,
  options: DecodeTorchCheckpointOptions,
): Omit<TorchCheckpoint, "format" | "byteOrder"> {
  if (!(top instanceof Map)) {
    fail(
      file,
      `the checkpoint holds ${describe(top)}, not a dict; a state_dict (or a dict holding one) ` +
        "is expected",
    );
  }
  const topLevelKeys = [...top.keys()].map((k) => typeof k === "string" ? k : String(k));
  let key: string | undefined;
  let dict: Map<unknown, unknown>;
  if (options.key !== undefined) {
    if (!top.has(options.key)) {
      fail(file, `no top-level key '${options.key}'; ${topLevelText(top)}`);
    }
    const v = top.get(options.key);
    if (!hasTensors(v)) {
      fail(
        file,
        `top-level key '${options.key}' holds ${describe(v)}, not a dict of tensors; ` +
          topLevelText(top),
      );
    }
    key = options.key;
    dict = v;
  } else if (hasTensors(top)) {
    dict = top;
  } else {
    const found = STATE_DICT_KEYS.filter((k) => hasTensors(top.get(k)));
    if (found.length !== 1) {
      fail(
        file,
        (found.length
          ? `several state_dicts (${found.join(", ")}): choose one with a key`
          : `found no state_dict: the top level holds no tensors, and none of ${
            STATE_DICT_KEYS.join(", ")
          } holds a dict of tensors; choose one with a key`) + `; ${topLevelText(top)}`,
      );
    }
    key = found[0];
    dict = top.get(key) as Map<unknown, unknown>;
  }
  const refs: [string, TensorRef][] = [];
  const ignored: string[] = [];
  for (const [k, v] of dict) {
    if (typeof k === "string" && v instanceof TensorRef) refs.push([k, v]);
    else ignored.push(typeof k === "string" ? k : String(k));
  }
  const strip = !options.keepPrefix && refs.length > 0 &&
    refs.every(([k]) => k.startsWith(PARALLEL_PREFIX) && k.length > PARALLEL_PREFIX.length);
  const tensors: Record<string, TorchTensor> = {};
  for (const [k, ref] of refs) {
    const name = strip ? k.slice(PARALLEL_PREFIX.length) : k;
    tensors[name] = materialize(ref, k, file);
  }
  return {
    key,
    topLevelKeys,
    tensors,
    ignored,
    strippedPrefix: strip ? PARALLEL_PREFIX : undefined,
  };
}

function isHandle(v: unknown): v is StorageHandle {
  return typeof v === "object" && v !== null && "label" in v && "bytes" in v && "order" in v;
}

/** The most elements one tensor may have (a float32 array of 8 GiB). */
const MAX_ELEMENTS = 2 ** 31;

/** The tensor `ref` (named `name` in messages) as a contiguous float32 array. */
function materialize(ref: TensorRef, name: string, file: string): TorchTensor {
  const storage = ref.storage;
  if (!isHandle(storage)) {
    fail(file, `tensor ${name}: its storage is ${describe(storage)}, not a torch storage`);
  }
  const dtype = (ref.dtype ?? storage.dtype) as TorchDtype;
  const size = elementSize(dtype, `tensor ${name}`, file);
  const shape = [...ref.size];
  if (shape.some((d) => d < 0) || ref.stride.some((s) => s < 0)) {
    fail(file, `tensor ${name}: negative size or stride ([${shape}], [${ref.stride}])`);
  }
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel > MAX_ELEMENTS) {
    fail(file, `tensor ${name}: shape [${shape}] has ${numel} elements, more than ${MAX_ELEMENTS}`);
  }
  if (numel === 0) return { shape, data: new Float32Array(0), dtype };
  const first = storage.elementOffset + ref.offset;
  let last = first;
  for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * ref.stride[d];
  const need = (last + 1) * size;
  let bytes: Uint8Array | undefined;
  try {
    bytes = storage.bytes();
  } catch (e) {
    if (e instanceof ZipError) {
      throw new TorchCheckpointError(file, `tensor ${name}: ${e.detail}`, { cause: e });
    }
    throw e;
  }
  if (!bytes) {
    fail(
      file,
      `tensor ${name}: its storage ${storage.label} is not in the file's list of storages; ` +
        "the file is corrupt",
    );
  }
  if (bytes.length < need) {
    fail(
      file,
      `tensor ${name} needs ${need} bytes of storage ${storage.label}, which has ${bytes.length}` +
        (storage.truncated() ? " (the file is truncated)" : ""),
    );
  }
  const data = new Float32Array(numel);
  const result: TorchTensor = { shape, data, dtype };
  const direct = dtype === "float32" && isContiguous(shape, ref.stride) ? data : undefined;
  const { elements, base } = elementsOf(storage.order, bytes, dtype, first, last, direct);
  const rounded = convert(elements, dtype, first - base, shape, ref.stride, data);
  if (rounded) result.rounded = rounded;
  return result;
}

/**
 * The elements `first..last` of a storage as a typed array in host order, and the storage index
 * of its element 0. When the bytes are aligned and in host order, a view of the whole storage
 * (no copy); otherwise a copy of just those elements (straight into `into`, the output of a
 * contiguous float32 tensor, so that even then nothing is copied twice).
 */
function elementsOf(
  order: "little" | "big",
  bytes: Uint8Array,
  dtype: TorchDtype,
  first: number,
  last: number,
  into: Float32Array | undefined,
): { elements: Elements; base: number } {
  const size = ELEMENT_SIZES[dtype];
  const swap = size > 1 && (order === "little") !== HOST_LITTLE;
  let src = bytes;
  let base = 0;
  if (swap || bytes.byteOffset % size !== 0) {
    const span = bytes.subarray(first * size, (last + 1) * size);
    src = into
      ? new Uint8Array(into.buffer, into.byteOffset, into.byteLength)
      : new Uint8Array(span.length);
    src.set(span);
    if (swap) {
      for (let i = 0; i < src.length; i += size) src.subarray(i, i + size).reverse();
    }
    base = first;
  }
  const buffer = src.buffer as ArrayBuffer;
  const at = src.byteOffset;
  const n = Math.floor(src.length / size);
  switch (dtype) {
    case "float32":
      return { elements: new Float32Array(buffer, at, n), base };
    case "float64":
      return { elements: new Float64Array(buffer, at, n), base };
    case "float16":
    case "bfloat16":
      return { elements: new Uint16Array(buffer, at, n), base };
    case "int64":
      return { elements: new BigInt64Array(buffer, at, n), base };
    case "int32":
      return { elements: new Int32Array(buffer, at, n), base };
    case "int16":
      return { elements: new Int16Array(buffer, at, n), base };
    case "int8":
      return { elements: new Int8Array(buffer, at, n), base };
    case "uint8":
    case "bool":
      return { elements: new Uint8Array(buffer, at, n), base };
  }
}

let halfTable: Float32Array | undefined;

/** float16 bit patterns to float32, all 65536 of them (made once). */
function halfToFloat(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    t[h] = exp === 0
      ? sign * frac * 2 ** -24
      : exp === 31
      ? (frac ? NaN : sign * Infinity)
      : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return (halfTable = t);
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}

type Elements =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/**
 * The tensor's elements in row-major order: a view of the storage when contiguous, else a
 * gathered copy, into `into` when given (the innermost dimension as a tight strided loop, the
 * outer ones as an odometer).
 */
function logicalElements(
  elements: Elements,
  offset: number,
  shape: readonly number[],
  stride: readonly number[],
  n: number,
  into?: Elements,
): Elements {
  if (isContiguous(shape, stride)) return elements.subarray(offset, offset + n);
  const out = into ?? new (elements.constructor as new (n: number) => Elements)(n);
  const nd = shape.length;
  const inner = shape[nd - 1];
  const step = stride[nd - 1];
  const idx = new Array<number>(nd).fill(0);
  let src = offset;
  for (let o = 0; o < n; o += inner) {
    // Typed arrays of one kind per call; the element copy is the same for all of them.
    const e = elements as Float32Array;
    const t = out as Float32Array;
    for (let j = 0, k = src; j < inner; j++, k += step) t[o + j] = e[k];
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]++;
      src += stride[d];
      if (idx[d] < shape[d]) break;
      src -= stride[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * Writes the tensor's elements into `out` as float32; returns the first value float32 cannot hold
 * exactly, if any.
 */
function convert(
  storage: Elements,
  dtype: TorchDtype,
  offset: number,
  shape: readonly number[],
  stride: readonly number[],
  out: Float32Array,
): { index: number; value: string } | undefined {
  const n = out.length;
  // float32 views are gathered straight into `out`; other dtypes through a copy of their own.
  const e = logicalElements(
    storage,
    offset,
    shape,
    stride,
    n,
    dtype === "float32" ? out : undefined,
  );
  let rounded: { index: number; value: string } | undefined;
  switch (dtype) {
    case "float32":
      if (e.buffer !== out.buffer || e.byteOffset !== out.byteOffset) out.set(e as Float32Array);
      break;
    case "int16":
    case "int8":
    case "uint8":
      out.set(e as Float32Array | Int16Array | Int8Array | Uint8Array);
      break;
    case "bool": {
      const b = e as Uint8Array;
      for (let o = 0; o < n; o++) out[o] = b[o] ? 1 : 0;
      break;
    }
    case "float16": {
      const h = e as Uint16Array;
      const table = halfToFloat();
      for (let o = 0; o < n; o++) out[o] = table[h[o]];
      break;
    }
    case "bfloat16": {
      const h = e as Uint16Array;
      const bits = new Uint32Array(out.buffer, out.byteOffset, n);
      for (let o = 0; o < n; o++) bits[o] = h[o] << 16;
      break;
    }
    case "float64":
    case "int32": {
      const d = e as Float64Array | Int32Array;
      out.set(d);
      for (let o = 0; o < n; o++) {
        const v = d[o];
        if (out[o] !== v && v === v) {
          rounded = { index: o, value: String(v) };
          break;
        }
      }
      break;
    }
    case "int64": {
      const d = e as BigInt64Array;
      for (let o = 0; o < n; o++) {
        const v = d[o];
        const f = Number(v);
        out[o] = f;
        if (!rounded && (out[o] !== f || BigInt(f) !== v)) {
          rounded = { index: o, value: String(v) };
        }
      }
      break;
    }
  }
  return rounded;
}

/**
 * Reads a torch.save checkpoint (either format) and returns its state_dict's tensors as float32
 * {@link TensorData} (with their original dtypes). The file must be a regular file; it is read
 * once, into memory.
 *
 * @throws {TorchCheckpointError} `<path>: <detail>` (see {@link decodeTorchCheckpoint}).
 * @example
 * ```ts
 * import { readTorchCheckpoint } from "./torch_checkpoint.ts";
 * const ckpt = await readTorchCheckpoint("tests/fixtures/torch_ckpt/net_legacy.pt");
 * for (const [name, t] of Object.entries(ckpt.tensors)) console.log(name, t.dtype, t.shape);
 * ```
 */
export async function readTorchCheckpoint(
  path: string,
  options: ReadTorchCheckpointOptions = {},
): Promise<TorchCheckpoint> {
  const bytes = await readCheckpointBytes(path, options.what ?? "checkpoint");
  return decodeTorchCheckpoint(bytes, { ...options, name: path });
}

/**
 * The bytes of a regular file, for the checkpoint readers; errors name the file.
 *
 * @throws {TorchCheckpointError} `<path>: no such file`, `<path>: checkpoint is a folder, ...`.
 * @example
 * ```ts
 * import { readCheckpointBytes } from "./torch_checkpoint.ts";
 * const bytes = await readCheckpointBytes("tests/fixtures/torch_ckpt/net.pt");
 * ```
 */
export async function readCheckpointBytes(
  path: string,
  what = "checkpoint",
): Promise<Uint8Array<ArrayBuffer>> {
  try {
    await checkRegularFile(path, what);
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof PathError) {
      const prefix = `${path}: `;
      const detail = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
      throw new TorchCheckpointError(path, detail, { cause: e });
    }
    const detail = e instanceof Deno.errors.NotFound
      ? "no such file"
      : `cannot read: ${(e as Error).message}`;
    throw new TorchCheckpointError(path, detail, { cause: e });
  }
}
