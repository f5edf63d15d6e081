/**
 * A read-only ZIP reader over bytes in memory, for PyTorch's checkpoint archives.
 *
 * The central directory is found through the end-of-central-directory record (searched for
 * backwards over the last 64 KiB + 22 bytes, the most a comment allows), or through its ZIP64
 * locator and record when the 32-bit fields are saturated. Entries' sizes and offsets come from
 * the central directory, with the ZIP64 extra field (`0x0001`) read where a field is
 * `0xFFFFFFFF`; an entry's data starts after its local header (whose name and extra lengths may
 * differ from the central directory's: PyTorch pads the local extra field to align data to 64
 * bytes). Methods: stored (0) and deflate (8, through `node:zlib` `inflateRawSync`, its output
 * bounded by the declared size); encrypted entries, other methods and multi-disk archives are
 * refused. Every entry read is checked against its CRC-32.
 *
 * Nothing is copied for a stored entry: {@link ZipArchive.read} returns a view of the archive's
 * bytes. Every error is a {@link ZipError} whose message names the file and, where one is
 * involved, the entry.
 *
 * @module
 */

import { crc32, inflateRawSync } from "zlib";

/**
 * A ZIP archive that cannot be read: not a ZIP archive, truncated, corrupt (a CRC-32 mismatch),
 * or using a feature this reader does not have. The message is `<file>: <detail>`.
 *
 * @example
 * ```ts
 * import { ZipArchive, ZipError } from "./zip.ts";
 * try {
 *   ZipArchive.open(new Uint8Array(10), { name: "a.zip" });
 * } catch (e) {
 *   if (e instanceof ZipError) console.error(e.message); // "a.zip: not a zip archive (...)"
 * }
 * ```
 */
export class ZipError extends Error {
  /** The archive's name in messages. */
  readonly file: string;
  /** What is wrong, without the file name. */
  readonly detail: string;
  /** An error about `file`; `cause` where there is one. */
  constructor(file: string, detail: string, options: { cause?: unknown } = {}) {
    super(`${file}: ${detail}`, { cause: options.cause });
    this.name = "ZipError";
    this.file = file;
    this.detail = detail;
  }
}

/** One entry of the central directory. */
export interface ZipEntry {
  /** Its name (a path with `/` separators). */
  readonly name: string;
  /** 0 stored, 8 deflate. */
  readonly method: number;
  /** Bytes of data in the archive. */
  readonly compressedSize: number;
  /** Bytes once decompressed. */
  readonly size: number;
  /** CRC-32 of the decompressed bytes. */
  readonly crc32: number;
  /** Where its local header starts. */
  readonly localHeaderOffset: number;
  /** General purpose flags (bit 0: encrypted). */
  readonly flags: number;
}

/** Options of {@link ZipArchive.open}. */
export interface ZipOpenOptions {
  /** The archive's name in messages (a file path); default "zip archive". */
  name?: string;
}

const EOCD_SIG = 0x06054b50;
const EOCD64_SIG = 0x06064b50;
const EOCD64_LOCATOR_SIG = 0x07064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;

/**
 * A ZIP archive's directory over its bytes; {@link ZipArchive.read} gives an entry's contents,
 * CRC-checked.
 *
 * @example
 * ```ts
 * import { ZipArchive } from "./zip.ts";
 * const bytes = await Deno.readFile("model.pt");
 * const zip = ZipArchive.open(bytes, { name: "model.pt" });
 * for (const e of zip.entries) console.log(e.name, e.size);
 * const pickle = zip.read("archive/data.pkl");
 * ```
 */
export class ZipArchive {
  /** The archive's name in messages. */
  readonly file: string;
  /** The entries, in central directory order. */
  readonly entries: readonly ZipEntry[];
  readonly #bytes: Uint8Array;
  readonly #byName: Map<string, ZipEntry>;

  private constructor(bytes: Uint8Array, file: string, entries: ZipEntry[]) {
    this.#bytes = bytes;
    this.file = file;
    this.entries = entries;
    this.#byName = new Map(entries.map((e) => [e.name, e]));
  }

  /**
   * Reads the central directory of `bytes`.
   *
   * @throws {ZipError} `<name>: not a zip archive (no end of central directory)` and the like.
   * @example
   * ```ts
   * import { ZipArchive } from "./zip.ts";
   * const zip = ZipArchive.open(await Deno.readFile("model.pt"), { name: "model.pt" });
   * console.log(zip.entries.map((e) => e.name));
   * ```
   */
  static open(bytes: Uint8Array, options: ZipOpenOptions = {}): ZipArchive {
    const file = options.name ?? "zip archive";
    return new ZipArchive(bytes, file, readDirectory(bytes, file));
  }

  /**
   * The entry called `name`, or undefined.
   *
   * @example
   * ```ts
   * import { ZipArchive } from "./zip.ts";
   * const zip = ZipArchive.open(await Deno.readFile("model.pt"));
   * console.log(zip.entry("archive/byteorder")?.size);
   * ```
   */
  entry(name: string): ZipEntry | undefined {
    return this.#byName.get(name);
  }

  /**
   * The contents of entry `name` (or of the entry given), CRC-checked. A stored entry is a view
   * of the archive's bytes (not a copy); a deflated one is inflated.
   *
   * @throws {ZipError} `<file>: entry <name> is truncated`, `... fails its CRC-32 check ...`,
   *   `... has no entry <name>`.
   * @example
   * ```ts
   * import { ZipArchive } from "./zip.ts";
   * const zip = ZipArchive.open(await Deno.readFile("model.pt"));
   * const data = zip.read("archive/data/0");
   * ```
   */
  read(name: string | ZipEntry): Uint8Array {
    const entry = typeof name === "string" ? this.#byName.get(name) : name;
    if (!entry) this.#fail(`has no entry ${name}`);
    const raw = this.#rawData(entry);
    let data: Uint8Array;
    if (entry.method === 0) {
      if (entry.compressedSize !== entry.size) {
        this.#fail(
          `entry ${entry.name} is stored but declares ${entry.compressedSize} bytes in the ` +
            `archive and ${entry.size} once extracted; the archive is corrupt`,
        );
      }
      data = raw;
    } else {
      try {
        // One byte more than declared lets a longer stream show itself without inflating it all.
        const out = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.size + 1) });
        data = new Uint8Array(out.buffer, out.byteOffset, out.byteLength); // a plain view, not a Buffer
      } catch (e) {
        this.#fail(
          `entry ${entry.name} cannot be inflated (${(e as Error).message}); the archive is ` +
            "corrupt or truncated",
          e,
        );
      }
      if (data.length !== entry.size) {
        this.#fail(
          `entry ${entry.name} inflates to ${data.length === entry.size + 1 ? "more than " : ""}` +
            `${data.length} bytes, not the ${entry.size} its header declares; the archive is ` +
            "corrupt",
        );
      }
    }
    const crc = crc32(data) >>> 0;
    if (crc !== entry.crc32) {
      this.#fail(
        `entry ${entry.name} fails its CRC-32 check (stored ${hex(entry.crc32)}, computed ` +
          `${hex(crc)}); the archive is corrupt`,
      );
    }
    return data;
  }

  /** The entry's bytes as stored, after its local header. */
  #rawData(entry: ZipEntry): Uint8Array {
    const bytes = this.#bytes;
    const at = entry.localHeaderOffset;
    if (entry.flags & 1) this.#fail(`entry ${entry.name} is encrypted; not supported`);
    if (entry.method !== 0 && entry.method !== 8) {
      this.#fail(
        `entry ${entry.name} uses compression method ${entry.method}; only stored (0) and ` +
          "deflate (8) are supported",
      );
    }
    if (at + 30 > bytes.length) this.#fail(`entry ${entry.name} is truncated`);
    const view = viewOf(bytes);
    if (view.getUint32(at, true) !== LOCAL_SIG) {
      this.#fail(`entry ${entry.name} has no local header at byte ${at}; the archive is corrupt`);
    }
    const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
    const end = start + entry.compressedSize;
    if (end > bytes.length) this.#fail(`entry ${entry.name} is truncated`);
    return bytes.subarray(start, end);
  }

  #fail(detail: string, cause?: unknown): never {
    throw new ZipError(this.file, detail, { cause });
  }
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A 64-bit little-endian size or offset, refused beyond 2^53. */
function u64(view: DataView, at: number, file: string, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ZipError(file, `${what} ${v} is too large; the archive is corrupt`);
  }
  return Number(v);
}

/** Where the end of central directory record starts, searched from the end. */
function findEocd(bytes: Uint8Array, file: string): number {
  const view = viewOf(bytes);
  const last = bytes.length - EOCD_SIZE;
  const first = Math.max(0, last - MAX_COMMENT);
  for (let at = last; at >= first; at--) {
    if (
      view.getUint32(at, true) === EOCD_SIG &&
      at + EOCD_SIZE + view.getUint16(at + 20, true) <= bytes.length
    ) {
      return at;
    }
  }
  const start = bytes.length >= 4 ? view.getUint32(0, true) : 0;
  throw new ZipError(
    file,
    "not a zip archive (no end of central directory)" +
      (start === LOCAL_SIG ? "; it starts like one, so it is probably truncated" : ""),
  );
}

interface DirectoryInfo {
  count: number;
  size: number;
  offset: number;
}

function directoryInfo(bytes: Uint8Array, file: string): DirectoryInfo {
  const view = viewOf(bytes);
  const eocd = findEocd(bytes, file);
  const disk = view.getUint16(eocd + 4, true);
  const cdDisk = view.getUint16(eocd + 6, true);
  let info: DirectoryInfo = {
    count: view.getUint16(eocd + 10, true),
    size: view.getUint32(eocd + 12, true),
    offset: view.getUint32(eocd + 16, true),
  };
  const locator = eocd - 20;
  const zip64 = locator >= 0 && view.getUint32(locator, true) === EOCD64_LOCATOR_SIG;
  if (zip64) {
    const at = u64(view, locator + 8, file, "the ZIP64 end of central directory offset");
    if (at + 56 > bytes.length || view.getUint32(at, true) !== EOCD64_SIG) {
      throw new ZipError(
        file,
        `no ZIP64 end of central directory record at byte ${at}, where its locator points; ` +
          "the archive is corrupt",
      );
    }
    if (view.getUint32(at + 16, true) !== 0 || view.getUint32(at + 20, true) !== 0) {
      throw new ZipError(file, "a multi-disk archive; not supported");
    }
    info = {
      count: u64(view, at + 32, file, "the number of entries"),
      size: u64(view, at + 40, file, "the central directory size"),
      offset: u64(view, at + 48, file, "the central directory offset"),
    };
  } else if (disk !== 0 || cdDisk !== 0) {
    throw new ZipError(file, "a multi-disk archive; not supported");
  } else if (info.count === U16_MAX || info.size === U32_MAX || info.offset === U32_MAX) {
    throw new ZipError(
      file,
      "the end of central directory says ZIP64 but there is no ZIP64 locator; the archive is " +
        "corrupt",
    );
  }
  if (info.offset + info.size > (zip64 ? locator : eocd)) {
    throw new ZipError(
      file,
      `the central directory (${info.size} bytes at ${info.offset}) reaches beyond the end of ` +
        "the archive; it is truncated or corrupt",
    );
  }
  return info;
}

function readDirectory(bytes: Uint8Array, file: string): ZipEntry[] {
  const { count, size, offset } = directoryInfo(bytes, file);
  const view = viewOf(bytes);
  const end = offset + size;
  const entries: ZipEntry[] = [];
  const decoder = new TextDecoder();
  let at = offset;
  for (let k = 0; k < count; k++) {
    if (at + 46 > end || view.getUint32(at, true) !== CENTRAL_SIG) {
      throw new ZipError(
        file,
        `central directory entry ${k} of ${count} is missing or corrupt (at byte ${at})`,
      );
    }
    const flags = view.getUint16(at + 8, true);
    const method = view.getUint16(at + 10, true);
    const crc = view.getUint32(at + 16, true);
    let compressedSize = view.getUint32(at + 20, true);
    let uncompressed = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    let local = view.getUint32(at + 42, true);
    const next = at + 46 + nameLength + extraLength + commentLength;
    if (next > end) {
      throw new ZipError(file, `central directory entry ${k} of ${count} is truncated`);
    }
    const nameBytes = bytes.subarray(at + 46, at + 46 + nameLength);
    // Bit 11: UTF-8 names; without it, CP437, which agrees with UTF-8 on ASCII names.
    const name = decoder.decode(nameBytes);
    if (uncompressed === U32_MAX || compressedSize === U32_MAX || local === U32_MAX) {
      const z = zip64Extra(view, at + 46 + nameLength, extraLength, file, name);
      // The ZIP64 field holds, in this order, only the values whose 32-bit field is saturated.
      let p = 0;
      const take = (what: string): number => {
        if (p + 8 > z.length) {
          throw new ZipError(file, `entry ${name}: its ZIP64 extra field lacks the ${what}`);
        }
        const v = u64(view, z.start + p, file, `entry ${name}'s ${what}`);
        p += 8;
        return v;
      };
      if (uncompressed === U32_MAX) uncompressed = take("size");
      if (compressedSize === U32_MAX) compressedSize = take("compressed size");
      if (local === U32_MAX) local = take("local header offset");
    }
    entries.push({
      name,
      method,
      compressedSize,
      size: uncompressed,
      crc32: crc,
      localHeaderOffset: local,
      flags,
    });
    at = next;
  }
  return entries;
}

/** The ZIP64 extended information field (id 1) among an entry's extra fields. */
function zip64Extra(
  view: DataView,
  start: number,
  length: number,
  file: string,
  name: string,
): { start: number; length: number } {
  let p = start;
  while (p + 4 <= start + length) {
    const id = view.getUint16(p, true);
    const size = view.getUint16(p + 2, true);
    if (id === 1) {
      if (p + 4 + size > start + length) break;
      return { start: p + 4, length: size };
    }
    p += 4 + size;
  }
  throw new ZipError(
    file,
    `entry ${name} has a saturated size or offset but no ZIP64 extra field; the archive is corrupt`,
  );
}
