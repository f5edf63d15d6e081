/**
 * A pool of storage buffers in size classes.
 *
 * Sizes round up to the next class (powers of two and the midpoints between them, at least 256
 * bytes), so a freed buffer serves any later request of its class and the pool stops growing once
 * a training loop has seen every shape once. A released buffer is reusable at once by kernels:
 * commands run in the order they were encoded, so a later kernel that overwrites it runs after
 * every earlier kernel that read it. Uploads are different: `queue.writeBuffer` lands before the
 * whole pending batch, so a buffer released since the last submit is "dirty" and an upload into
 * it must submit the pending batch first (see `isDirty` and `writeBuffer` in queue.ts).
 *
 * @module
 */

import { bindingLimit, getGpu } from "./device.ts";
import { guard } from "./errors.ts";

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const MIN_BYTES = 256;

/** Counters that show whether the pool has stopped growing. */
export interface PoolStats {
  /** Buffers ever created. */
  created: number;
  /** Bytes in all buffers ever created and not destroyed. */
  totalBytes: number;
  /** Buffers currently handed out. */
  inUse: number;
  /** Buffers waiting in free lists. */
  free: number;
}

const freeLists = new Map<number, GPUBuffer[]>();
const dirty = new Set<GPUBuffer>();
let batchOpen = false;
const stats: PoolStats = { created: 0, totalBytes: 0, inUse: 0, free: 0 };

/**
 * The size class that a request of `bytes` is served from.
 *
 * @example
 * ```ts
 * import { sizeClass } from "./pool.ts";
 * sizeClass(1000); // 1024
 * sizeClass(1100); // 1536
 * ```
 */
export function sizeClass(bytes: number): number {
  if (bytes <= MIN_BYTES) return MIN_BYTES;
  const p = 2 ** Math.ceil(Math.log2(bytes));
  const mid = (p / 4) * 3;
  return bytes <= mid ? mid : p;
}

/**
 * Checks a size against the device's binding limit, with a message naming both sizes.
 *
 * @example
 * ```ts
 * import { checkBindable } from "./pool.ts";
 * checkBindable(4 * 1024, "tensor [32,32]");
 * ```
 */
export function checkBindable(bytes: number, what: string): void {
  const limit = bindingLimit();
  if (bytes > limit) {
    throw new RangeError(
      `${what} needs ${bytes} bytes (${(bytes / 2 ** 20).toFixed(1)} MiB), more than this ` +
        `adapter's maxStorageBufferBindingSize of ${limit} bytes ` +
        `(${(limit / 2 ** 20).toFixed(1)} MiB); split the work (e.g. by frames).`,
    );
  }
}

/**
 * Takes a storage buffer of at least `bytes` from the pool, creating one if none is free.
 *
 * @example
 * ```ts
 * import { acquireBuffer, releaseBuffer } from "./pool.ts";
 * const b = acquireBuffer(4096);
 * releaseBuffer(b);
 * ```
 */
export function acquireBuffer(bytes: number): GPUBuffer {
  const size = sizeClass(bytes);
  const list = freeLists.get(size);
  stats.inUse++;
  if (list && list.length) {
    stats.free--;
    return list.pop()!;
  }
  const { device } = getGpu();
  const buffer = guard(`alloc ${size} bytes`, () => device.createBuffer({ size, usage: USAGE }));
  stats.created++;
  stats.totalBytes += size;
  return buffer;
}

/** Returns a buffer to the pool (dirty until the pending batch is submitted). */
export function releaseBuffer(buffer: GPUBuffer): void {
  stats.inUse--;
  let list = freeLists.get(buffer.size);
  if (!list) freeLists.set(buffer.size, list = []);
  list.push(buffer);
  stats.free++;
  if (batchOpen) dirty.add(buffer);
}

/**
 * Whether `buffer` was released since the last submit, so that encoded commands may still read
 * it: an upload into it must submit them first.
 */
export function isDirty(buffer: GPUBuffer): boolean {
  return dirty.has(buffer);
}

/** Called by the queue when it starts encoding a batch: releases from now on are dirty. */
export function markBatchOpen(): void {
  batchOpen = true;
}

/** Called by the queue after a submit: no released buffer is referenced by pending commands. */
export function markSubmitted(): void {
  batchOpen = false;
  dirty.clear();
}

/**
 * Destroys every free buffer that no pending command can still read (buffers in use, and those
 * released since the last submit, are kept).
 *
 * @example
 * ```ts
 * import { trimPool } from "./pool.ts";
 * trimPool();
 * ```
 */
export function trimPool(): void {
  for (const [size, list] of freeLists) {
    // A dirty buffer may still be read by encoded, unsubmitted commands: it stays pooled.
    const keep = list.filter((b) => dirty.has(b));
    for (const b of list) {
      if (dirty.has(b)) continue;
      stats.totalBytes -= b.size;
      b.destroy();
    }
    stats.free -= list.length - keep.length;
    if (keep.length) freeLists.set(size, keep);
    else freeLists.delete(size);
  }
}

/**
 * A copy of the pool's counters.
 *
 * @example
 * ```ts
 * import { poolStats } from "./pool.ts";
 * console.log(poolStats().created);
 * ```
 */
export function poolStats(): PoolStats {
  return { ...stats };
}
