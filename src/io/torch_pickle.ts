/**
 * A restricted unpickler for the pickles of `torch.save(state_dict)`: it reads Python's pickle
 * opcodes (protocols 2 to 5, the binary ones a torch checkpoint uses) into plain values and
 * builds objects only for an allow-list of classes, each mapped to a small pure function here.
 * Nothing is ever executed: a `GLOBAL` naming any other class (`os.system`, `builtins.eval`, a
 * `torch.nn.modules...` class of a whole-model save) is refused at once, before any argument is
 * read, naming the class; an opcode outside the set is refused naming it and its byte offset.
 *
 * Python values become:
 *
 * | Python                          | here                                              |
 * | ------------------------------- | ------------------------------------------------- |
 * | None, bool, float, str          | null, boolean, number, string                     |
 * | int                             | number (bigint beyond 2^53)                       |
 * | bytes                           | Uint8Array                                        |
 * | list / tuple                    | Array / frozen Array (`Object.isFrozen`)          |
 * | dict, collections.OrderedDict   | {@link PickleDict} (a Map in insertion order)     |
 * | set, frozenset                  | Set                                               |
 * | `torch.<T>Storage` class        | {@link StorageType}                               |
 * | `torch.<dtype>` (float32, ...)  | {@link DtypeToken}                                |
 * | a rebuilt tensor or Parameter   | {@link TensorRef} (its storage as persistent_load returned it) |
 * | persistent id                   | whatever `persistentLoad` returns                 |
 *
 * The allowed classes ({@link ALLOWED_CLASSES}): `collections.OrderedDict`,
 * `torch._utils._rebuild_tensor` / `_rebuild_tensor_v2` / `_rebuild_tensor_v3` /
 * `_rebuild_parameter` / `_rebuild_parameter_with_state` / `_rebuild_from_type_v2` (for plain
 * tensors and Parameters), the typed storage classes (`torch.FloatStorage`, ..., also under
 * `torch.cuda`), `torch.storage.UntypedStorage`, `torch.<dtype>`, `torch.Size`, and the pure
 * builtins a pickle of data uses (`set`, `frozenset`, `bytes`, `bytearray`, under `builtins` and
 * Python 2's `__builtin__`; `_codecs.encode` for protocol 2's bytes).
 *
 * @module
 */

/**
 * A pickle that cannot be read: truncated, malformed, using an opcode outside the supported set,
 * or naming a class outside the allow-list. The message is `<file>: <detail>`; `offset` is the
 * byte offset of the opcode at fault where there is one.
 *
 * @example
 * ```ts
 * import { PickleError, unpickle } from "./torch_pickle.ts";
 * try {
 *   unpickle(new TextEncoder().encode("cos\nsystem\n"), { name: "evil.pkl" });
 * } catch (e) {
 *   if (e instanceof PickleError) console.error(e.message); // "evil.pkl: refused pickle class ..."
 * }
 * ```
 */
export class PickleError extends Error {
  /** The file in messages. */
  readonly file: string;
  /** What is wrong, without the file name. */
  readonly detail: string;
  /** The byte offset of the opcode at fault, when there is one. */
  readonly offset: number | undefined;
  /** An error about `file`; `offset` of the opcode at fault. */
  constructor(file: string, detail: string, options: { offset?: number; cause?: unknown } = {}) {
    super(`${file}: ${detail}`, { cause: options.cause });
    this.name = "PickleError";
    this.file = file;
    this.detail = detail;
    this.offset = options.offset;
  }
}

/** A Python dict or `collections.OrderedDict`: a Map in insertion order. */
export class PickleDict extends Map<unknown, unknown> {
  /** True for an OrderedDict. */
  readonly ordered: boolean;
  /** The state a `BUILD` gave it (an OrderedDict's attributes, e.g. a state_dict's `_metadata`). */
  attributes: unknown = undefined;
  /** An empty dict (an OrderedDict when `ordered`). */
  constructor(ordered = false) {
    super();
    this.ordered = ordered;
  }
}

/** A `torch.<T>Storage` class (or `torch.storage.UntypedStorage`): the dtype it stores. */
export class StorageType {
  /** The class as the pickle names it, e.g. `torch.FloatStorage`. */
  readonly className: string;
  /** The element dtype: `float32`, ..., or `uint8` for an untyped storage. */
  readonly dtype: string;
  /** True for `torch.storage.UntypedStorage` (bytes; the tensor gives the dtype). */
  readonly untyped: boolean;
  /** The class `className`, storing `dtype`. */
  constructor(className: string, dtype: string, untyped = false) {
    this.className = className;
    this.dtype = dtype;
    this.untyped = untyped;
  }
}

/** A `torch.<dtype>` object, such as `torch.float32` (what `_rebuild_tensor_v3` passes). */
export class DtypeToken {
  /** The dtype's canonical name: `float32`, `int64`, ... (or the name as given, if unknown). */
  readonly dtype: string;
  /** The dtype called `dtype`. */
  constructor(dtype: string) {
    this.dtype = dtype;
  }
}

/** A tensor as a pickle describes it: which storage, and where in it. */
export class TensorRef {
  /** What `persistentLoad` returned for the storage. */
  readonly storage: unknown;
  /** The first element's index in the storage, in elements. */
  readonly offset: number;
  /** The sizes, outermost first. */
  readonly size: readonly number[];
  /** The strides, in elements. */
  readonly stride: readonly number[];
  /** The dtype when the pickle gives it apart from the storage (`_rebuild_tensor_v3`). */
  readonly dtype: string | undefined;
  /** True for an `nn.Parameter`. */
  readonly parameter: boolean;
  /** A tensor of `storage` at `offset` with `size` and `stride`. */
  constructor(
    storage: unknown,
    offset: number,
    size: readonly number[],
    stride: readonly number[],
    options: { dtype?: string; parameter?: boolean } = {},
  ) {
    this.storage = storage;
    this.offset = offset;
    this.size = size;
    this.stride = stride;
    this.dtype = options.dtype;
    this.parameter = options.parameter ?? false;
  }

  /** The same tensor as an `nn.Parameter`. */
  asParameter(): TensorRef {
    return new TensorRef(this.storage, this.offset, this.size, this.stride, {
      dtype: this.dtype,
      parameter: true,
    });
  }
}

/** Options of {@link unpickle}. */
export interface UnpickleOptions {
  /** The file in messages; default "pickle". */
  name?: string;
  /** Where the pickle starts in `bytes`; default 0. */
  offset?: number;
  /**
   * Gives the object for a persistent id (`BINPERSID`; torch's storages); without it, a
   * persistent id is an error.
   */
  persistentLoad?: (pid: unknown) => unknown;
}

/** What {@link unpickle} returns: the value and the offset just after its `STOP`. */
export interface UnpickleResult {
  /** The unpickled value. */
  value: unknown;
  /** The byte offset after the pickle's STOP opcode (where a following pickle starts). */
  end: number;
}

/** The storage class names and their dtypes. */
const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: "float32",
  DoubleStorage: "float64",
  HalfStorage: "float16",
  BFloat16Storage: "bfloat16",
  LongStorage: "int64",
  IntStorage: "int32",
  ShortStorage: "int16",
  CharStorage: "int8",
  ByteStorage: "uint8",
  BoolStorage: "bool",
};

/** `torch.<name>` dtype objects and their canonical names. */
const DTYPE_NAMES: Record<string, string> = {
  float32: "float32",
  float: "float32",
  float64: "float64",
  double: "float64",
  float16: "float16",
  half: "float16",
  bfloat16: "bfloat16",
  int64: "int64",
  long: "int64",
  int32: "int32",
  int: "int32",
  int16: "int16",
  short: "int16",
  int8: "int8",
  uint8: "uint8",
  bool: "bool",
  // Known to torch, not supported by the readers: kept by name so the error can say so.
  uint16: "uint16",
  uint32: "uint32",
  uint64: "uint64",
  complex32: "complex32",
  complex64: "complex64",
  complex128: "complex128",
  float8_e4m3fn: "float8_e4m3fn",
  float8_e5m2: "float8_e5m2",
  float8_e4m3fnuz: "float8_e4m3fnuz",
  float8_e5m2fnuz: "float8_e5m2fnuz",
};

/** A class token on the stack: what a `GLOBAL` of an allowed class pushes. */
class PickleClass {
  constructor(
    readonly qualified: string,
    readonly call: ((args: readonly unknown[]) => unknown) | undefined,
  ) {}
}

/** Tensor types: allowed only as `_rebuild_from_type_v2`'s type argument, never called. */
const TYPE_MARKERS = new Set([
  "torch._tensor.Tensor",
  "torch.Tensor",
  "torch.nn.parameter.Parameter",
]);

function isTuple(v: unknown): v is readonly unknown[] {
  return Array.isArray(v) && Object.isFrozen(v);
}

function tuple(items: unknown[]): readonly unknown[] {
  return Object.freeze(items);
}

/** The allowed classes, by qualified name: the function building each one's value. */
function allowedClasses(): Map<string, PickleClass> {
  const classes = new Map<string, PickleClass>();
  const add = (name: string, call?: (args: readonly unknown[]) => unknown) =>
    classes.set(name, new PickleClass(name, call));
  add("collections.OrderedDict", (args) => {
    const d = new PickleDict(true);
    const items = args[0];
    if (items !== undefined) {
      if (!Array.isArray(items)) throw new TypeError("OrderedDict() takes a list of pairs");
      for (const pair of items) {
        if (!Array.isArray(pair) || pair.length !== 2) {
          throw new TypeError("OrderedDict() takes a list of pairs");
        }
        d.set(pair[0], pair[1]);
      }
    }
    return d;
  });
  add("torch._utils._rebuild_tensor", (a) => rebuildTensor(a, 4, "_rebuild_tensor"));
  add("torch._utils._rebuild_tensor_v2", (a) => rebuildTensor(a, 6, "_rebuild_tensor_v2"));
  add("torch._utils._rebuild_tensor_v3", (a) => {
    const t = rebuildTensor(a, 7, "_rebuild_tensor_v3");
    const dtype = a[6];
    if (!(dtype instanceof DtypeToken)) {
      throw new TypeError("_rebuild_tensor_v3's 7th argument must be a torch dtype");
    }
    return new TensorRef(t.storage, t.offset, t.size, t.stride, { dtype: dtype.dtype });
  });
  const parameter = (name: string, n: number) => (a: readonly unknown[]) => {
    if (a.length < n || !(a[0] instanceof TensorRef)) {
      throw new TypeError(`${name} takes a tensor and ${n - 1} more arguments`);
    }
    return a[0].asParameter();
  };
  add("torch._utils._rebuild_parameter", parameter("_rebuild_parameter", 3));
  add("torch._utils._rebuild_parameter_with_state", parameter("_rebuild_parameter_with_state", 4));
  add("torch._utils._rebuild_from_type_v2", (a) => {
    // (func, new_type, args, state): func rebuilds the tensor from args; the state (Python
    // attributes set on the tensor) is dropped.
    const [func, type, args] = a;
    if (
      !(func instanceof PickleClass) || !func.call || !(type instanceof PickleClass) ||
      !TYPE_MARKERS.has(type.qualified) || !isTuple(args)
    ) {
      throw new TypeError(
        "_rebuild_from_type_v2 is allowed only for plain tensors and Parameters",
      );
    }
    const t = func.call(args);
    if (!(t instanceof TensorRef)) throw new TypeError("_rebuild_from_type_v2 built no tensor");
    return type.qualified.endsWith("Parameter") ? t.asParameter() : t;
  });
  for (const m of TYPE_MARKERS) add(m);
  for (const cls of Object.keys(STORAGE_DTYPES)) {
    add(`torch.${cls}`);
    add(`torch.cuda.${cls}`);
  }
  add("torch.storage.UntypedStorage");
  add("torch.UntypedStorage");
  for (const name of Object.keys(DTYPE_NAMES)) add(`torch.${name}`);
  add("torch.Size", (a) => {
    if (!isTuple(a[0]) && !Array.isArray(a[0])) throw new TypeError("torch.Size takes a tuple");
    return tuple([...a[0] as unknown[]]);
  });
  for (const b of ["builtins", "__builtin__"]) {
    add(`${b}.set`, (a) => new Set(a[0] === undefined ? [] : iterable(a[0], "set")));
    add(`${b}.frozenset`, (a) => new Set(a[0] === undefined ? [] : iterable(a[0], "frozenset")));
    add(`${b}.bytes`, (a) => bytesOf(a, "bytes"));
    add(`${b}.bytearray`, (a) => bytesOf(a, "bytearray"));
  }
  add("_codecs.encode", (a) => {
    // Protocol 2 writes bytes as _codecs.encode(text, "latin1").
    if (typeof a[0] !== "string" || (a[1] !== "latin1" && a[1] !== "latin-1")) {
      throw new TypeError("_codecs.encode is allowed only as encode(str, 'latin1')");
    }
    return Uint8Array.from(a[0], (c) => c.charCodeAt(0) & 0xff);
  });
  return classes;
}

function iterable(v: unknown, what: string): unknown[] {
  if (Array.isArray(v)) return v;
  if (v instanceof Set) return [...v];
  throw new TypeError(`${what}() takes a list`);
}

function bytesOf(a: readonly unknown[], what: string): Uint8Array {
  if (a.length === 0) return new Uint8Array(0);
  if (a[0] instanceof Uint8Array) return a[0].slice();
  if (typeof a[0] === "string" && a[1] === "latin1") {
    return Uint8Array.from(a[0], (c) => c.charCodeAt(0) & 0xff);
  }
  throw new TypeError(`${what}() is allowed only with no argument or bytes`);
}

function intsOf(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === "number" && Number.isInteger(x))) {
    throw new TypeError(`${what} must be a tuple of integers`);
  }
  return [...v as number[]];
}

/** (storage, storage_offset, size, stride, ...) into a TensorRef. */
function rebuildTensor(a: readonly unknown[], min: number, name: string): TensorRef {
  if (a.length < min) {
    throw new TypeError(`${name} takes at least ${min} arguments, got ${a.length}`);
  }
  const [storage, offset, size, stride] = a;
  if (typeof offset !== "number" || !Number.isInteger(offset) || offset < 0) {
    throw new TypeError(`${name}: the storage offset must be a non-negative integer`);
  }
  const sizes = intsOf(size, `${name}: the size`);
  const strides = intsOf(stride, `${name}: the stride`);
  if (sizes.length !== strides.length) {
    throw new TypeError(`${name}: size [${sizes}] and stride [${strides}] differ in length`);
  }
  return new TensorRef(storage, offset, sizes, strides);
}

/**
 * The class names {@link unpickle} allows (everything else is refused).
 *
 * @example
 * ```ts
 * import { ALLOWED_CLASSES } from "./torch_pickle.ts";
 * console.log(ALLOWED_CLASSES.includes("collections.OrderedDict")); // true
 * console.log(ALLOWED_CLASSES.includes("os.system")); // false
 * ```
 */
export const ALLOWED_CLASSES: readonly string[] = Object.freeze([...allowedClasses().keys()]);

/** The value a GLOBAL of an allowed class pushes: a class token, a storage type or a dtype. */
function globalValue(qualified: string, cls: PickleClass): unknown {
  const dot = qualified.lastIndexOf(".");
  const name = qualified.slice(dot + 1);
  const module = qualified.slice(0, dot);
  if ((module === "torch" || module === "torch.cuda") && name in STORAGE_DTYPES) {
    return new StorageType(qualified, STORAGE_DTYPES[name]);
  }
  if (name === "UntypedStorage") return new StorageType(qualified, "uint8", true);
  if (module === "torch" && name in DTYPE_NAMES) return new DtypeToken(DTYPE_NAMES[name]);
  return cls;
}

const OPCODE_NAMES: Record<number, string> = {
  0x28: "MARK",
  0x2e: "STOP",
  0x30: "POP",
  0x31: "POP_MARK",
  0x32: "DUP",
  0x42: "BINBYTES",
  0x43: "SHORT_BINBYTES",
  0x47: "BINFLOAT",
  0x4a: "BININT",
  0x4b: "BININT1",
  0x4d: "BININT2",
  0x4e: "NONE",
  0x51: "BINPERSID",
  0x52: "REDUCE",
  0x54: "BINSTRING",
  0x55: "SHORT_BINSTRING",
  0x58: "BINUNICODE",
  0x5d: "EMPTY_LIST",
  0x61: "APPEND",
  0x62: "BUILD",
  0x63: "GLOBAL",
  0x64: "DICT",
  0x65: "APPENDS",
  0x68: "BINGET",
  0x6a: "LONG_BINGET",
  0x6c: "LIST",
  0x71: "BINPUT",
  0x72: "LONG_BINPUT",
  0x73: "SETITEM",
  0x74: "TUPLE",
  0x75: "SETITEMS",
  0x7d: "EMPTY_DICT",
  0x29: "EMPTY_TUPLE",
  0x80: "PROTO",
  0x81: "NEWOBJ",
  0x85: "TUPLE1",
  0x86: "TUPLE2",
  0x87: "TUPLE3",
  0x88: "NEWTRUE",
  0x89: "NEWFALSE",
  0x8a: "LONG1",
  0x8b: "LONG4",
  0x8c: "SHORT_BINUNICODE",
  0x8d: "BINUNICODE8",
  0x8e: "BINBYTES8",
  0x8f: "EMPTY_SET",
  0x90: "ADDITEMS",
  0x91: "FROZENSET",
  0x92: "NEWOBJ_EX",
  0x93: "STACK_GLOBAL",
  0x94: "MEMOIZE",
  0x95: "FRAME",
};

/** Names of opcodes of other protocols or purposes, for the refusal message. */
const OTHER_OPCODES: Record<number, string> = {
  0x46: "FLOAT",
  0x49: "INT",
  0x4c: "LONG",
  0x50: "PERSID",
  0x53: "STRING",
  0x56: "UNICODE",
  0x67: "GET",
  0x69: "INST",
  0x6f: "OBJ",
  0x70: "PUT",
  0x82: "EXT1",
  0x83: "EXT2",
  0x84: "EXT4",
  0x96: "BYTEARRAY8",
  0x97: "NEXT_BUFFER",
  0x98: "READONLY_BUFFER",
};

/**
 * Unpickles one pickle from `bytes` (starting at `options.offset`), with the torch state_dict
 * allow-list; nothing is executed. Returns the value and where the pickle ended.
 *
 * @throws {PickleError} `<name>: refused pickle class os.system (only the classes of a
 *   state_dict are allowed; nothing is executed)`, `<name>: unsupported pickle opcode 0x69
 *   (INST) at byte 12`, `<name>: the pickle is truncated at byte 40`, and the like.
 * @example
 * ```ts
 * import assert from "assert";
 * import { PickleDict, unpickle } from "./torch_pickle.ts";
 * // {"a": 1} at protocol 2: PROTO 2, EMPTY_DICT, SHORT_BINUNICODE "a", BININT1 1, SETITEM, STOP
 * const bytes = new Uint8Array([0x80, 2, 0x7d, 0x8c, 1, 0x61, 0x4b, 1, 0x73, 0x2e]);
 * const { value } = unpickle(bytes, { name: "x.pkl" });
 * assert.ok(value instanceof PickleDict);
 * assert.equal(value.get("a"), 1);
 * ```
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions = {}): UnpickleResult {
  return new Unpickler(bytes, options).run();
}

const CLASSES = allowedClasses();

class Unpickler {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #file: string;
  readonly #persistentLoad: ((pid: unknown) => unknown) | undefined;
  #pos: number;
  #op = 0;
  #stack: unknown[] = [];
  #marks: number[] = [];
  #memo = new Map<number, unknown>();

  constructor(bytes: Uint8Array, options: UnpickleOptions) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#file = options.name ?? "pickle";
    this.#pos = options.offset ?? 0;
    this.#persistentLoad = options.persistentLoad;
  }

  #fail(detail: string, cause?: unknown): never {
    throw new PickleError(this.#file, detail, { offset: this.#op, cause });
  }

  #need(n: number): number {
    const at = this.#pos;
    if (at + n > this.#bytes.length) {
      this.#fail(
        `the pickle is truncated at byte ${this.#bytes.length} (opcode at byte ${this.#op} ` +
          `needs ${n} more byte(s))`,
      );
    }
    this.#pos += n;
    return at;
  }

  #u8(): number {
    return this.#bytes[this.#need(1)];
  }
  #u16(): number {
    return this.#view.getUint16(this.#need(2), true);
  }
  #u32(): number {
    return this.#view.getUint32(this.#need(4), true);
  }
  #i32(): number {
    return this.#view.getInt32(this.#need(4), true);
  }
  #u64(): number {
    const v = this.#view.getBigUint64(this.#need(8), true);
    if (v > BigInt(this.#bytes.length)) {
      this.#fail(`a length of ${v} bytes at byte ${this.#op} runs past the end of the pickle`);
    }
    return Number(v);
  }
  #raw(n: number): Uint8Array {
    const at = this.#need(n);
    return this.#bytes.subarray(at, at + n);
  }
  #utf8(n: number): string {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(this.#raw(n));
    } catch (e) {
      if (e instanceof PickleError) throw e;
      this.#fail(`a string at byte ${this.#op} is not valid UTF-8`);
    }
  }
  /** A protocol 0/2 text line (GLOBAL's module and name), without its new line. */
  #line(): string {
    const start = this.#pos;
    const end = this.#bytes.indexOf(0x0a, start);
    if (end < 0) this.#fail(`the pickle is truncated inside the GLOBAL at byte ${this.#op}`);
    this.#pos = end + 1;
    return new TextDecoder().decode(this.#bytes.subarray(start, end));
  }

  #pop(): unknown {
    if (this.#stack.length <= (this.#marks.at(-1) ?? 0) && this.#marks.length) {
      this.#fail(`opcode ${this.#name()} at byte ${this.#op} pops past a MARK`);
    }
    if (!this.#stack.length) {
      this.#fail(`opcode ${this.#name()} at byte ${this.#op} on an empty stack`);
    }
    return this.#stack.pop();
  }
  #top(): unknown {
    if (!this.#stack.length) {
      this.#fail(`opcode ${this.#name()} at byte ${this.#op} on an empty stack`);
    }
    return this.#stack[this.#stack.length - 1];
  }
  /** The items since the last MARK, removing them and the mark. */
  #popMark(): unknown[] {
    const at = this.#marks.pop();
    if (at === undefined) this.#fail(`opcode ${this.#name()} at byte ${this.#op} without a MARK`);
    return this.#stack.splice(at);
  }
  #name(): string {
    return OPCODE_NAMES[this.#bytes[this.#op]] ?? "?";
  }

  #global(module: string, name: string): unknown {
    const qualified = `${module}.${name}`;
    const cls = CLASSES.get(qualified);
    if (!cls) {
      this.#fail(
        `refused pickle class ${qualified} (only the classes of a state_dict are allowed; ` +
          "nothing is executed)",
      );
    }
    return globalValue(qualified, cls);
  }

  #call(callable: unknown, args: unknown): unknown {
    if (!(callable instanceof PickleClass) || !callable.call) {
      const what = callable instanceof PickleClass
        ? callable.qualified
        : callable instanceof StorageType
        ? callable.className
        : callable instanceof DtypeToken
        ? `torch.${callable.dtype}`
        : typeof callable;
      this.#fail(`opcode ${this.#name()} at byte ${this.#op} calls ${what}, which is not allowed`);
    }
    if (!Array.isArray(args)) {
      this.#fail(`opcode ${this.#name()} at byte ${this.#op}: arguments are not a tuple`);
    }
    try {
      return callable.call(args);
    } catch (e) {
      if (e instanceof PickleError) throw e;
      this.#fail(`${callable.qualified} at byte ${this.#op}: ${(e as Error).message}`, e);
    }
  }

  #int(v: bigint): number | bigint {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v;
  }

  /** A little-endian two's complement integer of `n` bytes (LONG1, LONG4). */
  #long(n: number): number | bigint {
    const b = this.#raw(n);
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return this.#int(v);
  }

  #setItems(dict: unknown, items: unknown[]): void {
    if (!(dict instanceof Map)) {
      this.#fail(`opcode ${this.#name()} at byte ${this.#op} on a non-dict`);
    }
    if (items.length % 2) {
      this.#fail(`opcode ${this.#name()} at byte ${this.#op}: an odd number of items`);
    }
    for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
  }

  run(): UnpickleResult {
    const bytes = this.#bytes;
    if (this.#pos >= bytes.length) {
      this.#op = this.#pos;
      this.#fail(`no pickle at byte ${this.#pos} (the data ends there)`);
    }
    for (;;) {
      this.#op = this.#pos;
      const code = this.#u8();
      switch (code) {
        case 0x80: { // PROTO
          const v = this.#u8();
          if (v > 5) this.#fail(`pickle protocol ${v} at byte ${this.#op} is not supported`);
          break;
        }
        case 0x95: // FRAME: a length; frames are transparent here
          this.#u64();
          break;
        case 0x2e: { // STOP
          const value = this.#pop();
          if (this.#stack.length || this.#marks.length) {
            this.#fail(
              `STOP at byte ${this.#op} leaves ${this.#stack.length} item(s) on the stack`,
            );
          }
          return { value, end: this.#pos };
        }
        case 0x28: // MARK
          this.#marks.push(this.#stack.length);
          break;
        case 0x30: // POP
          if (this.#marks.length && this.#marks.at(-1) === this.#stack.length) this.#marks.pop();
          else this.#pop();
          break;
        case 0x31: // POP_MARK
          this.#popMark();
          break;
        case 0x32: // DUP
          this.#stack.push(this.#top());
          break;
        case 0x4e: // NONE
          this.#stack.push(null);
          break;
        case 0x88: // NEWTRUE
          this.#stack.push(true);
          break;
        case 0x89: // NEWFALSE
          this.#stack.push(false);
          break;
        case 0x4a: // BININT
          this.#stack.push(this.#i32());
          break;
        case 0x4b: // BININT1
          this.#stack.push(this.#u8());
          break;
        case 0x4d: // BININT2
          this.#stack.push(this.#u16());
          break;
        case 0x8a: // LONG1
          this.#stack.push(this.#long(this.#u8()));
          break;
        case 0x8b: { // LONG4
          const n = this.#i32();
          if (n < 0) this.#fail(`LONG4 at byte ${this.#op} has a negative length`);
          this.#stack.push(this.#long(n));
          break;
        }
        case 0x47: // BINFLOAT: big-endian
          this.#stack.push(this.#view.getFloat64(this.#need(8), false));
          break;
        case 0x58: // BINUNICODE
          this.#stack.push(this.#utf8(this.#u32()));
          break;
        case 0x8c: // SHORT_BINUNICODE
          this.#stack.push(this.#utf8(this.#u8()));
          break;
        case 0x8d: // BINUNICODE8
          this.#stack.push(this.#utf8(this.#u64()));
          break;
        case 0x55: // SHORT_BINSTRING (Python 2 str): UTF-8 as torch.load decodes it
          this.#stack.push(this.#text(this.#u8()));
          break;
        case 0x54: { // BINSTRING
          const n = this.#i32();
          if (n < 0) this.#fail(`BINSTRING at byte ${this.#op} has a negative length`);
          this.#stack.push(this.#text(n));
          break;
        }
        case 0x43: // SHORT_BINBYTES
          this.#stack.push(this.#raw(this.#u8()).slice());
          break;
        case 0x42: // BINBYTES
          this.#stack.push(this.#raw(this.#u32()).slice());
          break;
        case 0x8e: // BINBYTES8
          this.#stack.push(this.#raw(this.#u64()).slice());
          break;
        case 0x29: // EMPTY_TUPLE
          this.#stack.push(tuple([]));
          break;
        case 0x85: // TUPLE1
          this.#stack.push(tuple([this.#pop()]));
          break;
        case 0x86: { // TUPLE2
          const b = this.#pop();
          const a = this.#pop();
          this.#stack.push(tuple([a, b]));
          break;
        }
        case 0x87: { // TUPLE3
          const c = this.#pop();
          const b = this.#pop();
          const a = this.#pop();
          this.#stack.push(tuple([a, b, c]));
          break;
        }
        case 0x74: // TUPLE
          this.#stack.push(tuple(this.#popMark()));
          break;
        case 0x5d: // EMPTY_LIST
          this.#stack.push([]);
          break;
        case 0x6c: // LIST
          this.#stack.push(this.#popMark());
          break;
        case 0x7d: // EMPTY_DICT
          this.#stack.push(new PickleDict());
          break;
        case 0x64: { // DICT
          const d = new PickleDict();
          this.#setItems(d, this.#popMark());
          this.#stack.push(d);
          break;
        }
        case 0x8f: // EMPTY_SET
          this.#stack.push(new Set());
          break;
        case 0x91: // FROZENSET
          this.#stack.push(new Set(this.#popMark()));
          break;
        case 0x90: { // ADDITEMS
          const items = this.#popMark();
          const set = this.#top();
          if (!(set instanceof Set)) this.#fail(`ADDITEMS at byte ${this.#op} on a non-set`);
          for (const x of items) set.add(x);
          break;
        }
        case 0x61: { // APPEND
          const x = this.#pop();
          const list = this.#top();
          if (!Array.isArray(list) || Object.isFrozen(list)) {
            this.#fail(`APPEND at byte ${this.#op} on a non-list`);
          }
          list.push(x);
          break;
        }
        case 0x65: { // APPENDS
          const items = this.#popMark();
          const list = this.#top();
          if (!Array.isArray(list) || Object.isFrozen(list)) {
            this.#fail(`APPENDS at byte ${this.#op} on a non-list`);
          }
          for (const x of items) list.push(x);
          break;
        }
        case 0x73: { // SETITEM
          const v = this.#pop();
          const k = this.#pop();
          this.#setItems(this.#top(), [k, v]);
          break;
        }
        case 0x75: { // SETITEMS
          const items = this.#popMark();
          this.#setItems(this.#top(), items);
          break;
        }
        case 0x71: // BINPUT
          this.#memo.set(this.#u8(), this.#top());
          break;
        case 0x72: // LONG_BINPUT
          this.#memo.set(this.#u32(), this.#top());
          break;
        case 0x94: // MEMOIZE
          this.#memo.set(this.#memo.size, this.#top());
          break;
        case 0x68: // BINGET
          this.#get(this.#u8());
          break;
        case 0x6a: // LONG_BINGET
          this.#get(this.#u32());
          break;
        case 0x63: { // GLOBAL
          const module = this.#line();
          const name = this.#line();
          this.#stack.push(this.#global(module, name));
          break;
        }
        case 0x93: { // STACK_GLOBAL
          const name = this.#pop();
          const module = this.#pop();
          if (typeof module !== "string" || typeof name !== "string") {
            this.#fail(`STACK_GLOBAL at byte ${this.#op} without a module and a name`);
          }
          this.#stack.push(this.#global(module, name));
          break;
        }
        case 0x52: { // REDUCE
          const args = this.#pop();
          const callable = this.#pop();
          this.#stack.push(this.#call(callable, args));
          break;
        }
        case 0x81: { // NEWOBJ: cls.__new__(cls, *args), for the allowed data classes
          const args = this.#pop();
          const cls = this.#pop();
          this.#stack.push(this.#call(cls, args));
          break;
        }
        case 0x92: { // NEWOBJ_EX
          const kwargs = this.#pop();
          const args = this.#pop();
          const cls = this.#pop();
          if (!(kwargs instanceof Map) || kwargs.size) {
            this.#fail(`NEWOBJ_EX at byte ${this.#op} with keyword arguments is not supported`);
          }
          this.#stack.push(this.#call(cls, args));
          break;
        }
        case 0x62: { // BUILD
          const state = this.#pop();
          const obj = this.#top();
          if (obj instanceof PickleDict) obj.attributes = state;
          else if (!(obj instanceof TensorRef)) {
            // A tensor's BUILD sets Python attributes (dropped); anything else has no state.
            this.#fail(`BUILD at byte ${this.#op} on a value that takes no state`);
          }
          break;
        }
        case 0x51: { // BINPERSID
          const pid = this.#pop();
          if (!this.#persistentLoad) {
            this.#fail(`a persistent id at byte ${this.#op}, and none is expected here`);
          }
          try {
            this.#stack.push(this.#persistentLoad(pid));
          } catch (e) {
            if (e instanceof PickleError) throw e;
            this.#fail(`the persistent id at byte ${this.#op}: ${(e as Error).message}`, e);
          }
          break;
        }
        default: {
          const name = OTHER_OPCODES[code];
          this.#fail(
            `unsupported pickle opcode 0x${code.toString(16).padStart(2, "0")}` +
              `${name ? ` (${name})` : ""} at byte ${this.#op}`,
          );
        }
      }
    }
  }

  #get(index: number): void {
    if (!this.#memo.has(index)) this.#fail(`memo index ${index} at byte ${this.#op} was never set`);
    this.#stack.push(this.#memo.get(index));
  }

  #text(n: number): string {
    const raw = this.#raw(n);
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(raw);
    } catch {
      let s = "";
      for (const b of raw) s += String.fromCharCode(b); // latin-1, as Python 2 bytes
      return s;
    }
  }
}
