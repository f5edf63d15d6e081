/**
 * Command batching: kernels are encoded into one command encoder and compute pass, and submitted
 * together when a value is needed on the CPU (`readBuffer`), when `flush()`/`syncGpu()` is
 * called, or when a batch reaches {@link MAX_BATCH} dispatches.
 *
 * A dispatch is a {@link Program} (a kernel, its entry point, specialisation, parameters and
 * workgroup counts; see program.ts) and its storage buffers. Each dispatch gets a 256-byte slot
 * of uniform parameters in a per-batch arena (binding 0), written with one `queue.writeBuffer`
 * per arena just before the submit. Storage buffers are bound from binding 1 on, in the order
 * of the kernel's declared bindings.
 *
 * @module
 */

import { getGpu } from "./device.ts";
import { checkErrors, guard } from "./errors.ts";
import { isDirty, markBatchOpen, markSubmitted } from "./pool.ts";
import type { Program } from "./program.ts";
import { getPipeline } from "./shaders.ts";

/** Dispatches after which a batch is submitted even if nothing waits for it. */
export const MAX_BATCH = 256;
const SLOT = 256;
const ARENA_BYTES = 65536;
const SLOTS_PER_ARENA = ARENA_BYTES / SLOT;

interface Batch {
  encoder: GPUCommandEncoder;
  pass: GPUComputePassEncoder | null;
  ops: number;
  /** While profiling: the batch's timestamp queries and the op name of each timed dispatch. */
  timed: { querySet: GPUQuerySet; ops: string[] } | null;
  arenas: GPUBuffer[];
  arenaData: ArrayBuffer[];
  slot: number;
}

let batch: Batch | null = null;
const spareArenas: GPUBuffer[] = [];
let dispatchCount = 0;
let submitCount = 0;

function openBatch(): Batch {
  if (batch) return batch;
  const { device } = getGpu();
  markBatchOpen();
  batch = {
    encoder: device.createCommandEncoder(),
    pass: null,
    ops: 0,
    timed: profile
      ? {
        querySet: device.createQuerySet({ type: "timestamp", count: 2 * MAX_BATCH }),
        ops: [],
      }
      : null,
    arenas: [],
    arenaData: [],
    slot: SLOTS_PER_ARENA, // forces a fresh arena on first use
  };
  return batch;
}

function paramSlot(b: Batch): { buffer: GPUBuffer; offset: number; view: DataView } {
  if (b.slot >= SLOTS_PER_ARENA) {
    const { device } = getGpu();
    const arena = spareArenas.pop() ??
      device.createBuffer({
        size: ARENA_BYTES,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
    b.arenas.push(arena);
    b.arenaData.push(new ArrayBuffer(ARENA_BYTES));
    b.slot = 0;
  }
  const offset = b.slot * SLOT;
  b.slot++;
  const data = b.arenaData[b.arenaData.length - 1];
  return { buffer: b.arenas[b.arenas.length - 1], offset, view: new DataView(data, offset, SLOT) };
}

/**
 * Encodes one kernel launch into the current batch: `buffers` are bound to the kernel's storage
 * bindings 1, 2, ... in order (an entry point that uses fewer may be given fewer).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { pathToFileURL } from "url";
 * import { initGpu } from "./device.ts";
 * import { acquireBuffer } from "./pool.ts";
 * import { kernel } from "./program.ts";
 * import { dispatch, grid1d, readBuffer } from "./queue.ts";
 * // A kernel file: its Params struct and entry point (the prelude and bindings are added).
 * const file = await Deno.makeTempFile({ suffix: ".wgsl" });
 * await Deno.writeTextFile(
 *   file,
 *   `struct Params { n: u32, value: f32 }
 * @compute @workgroup_size(64)
 * fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
 *   let i = flat_index(gid, nwg, 64u);
 *   if (i < params.n) { out[i] = params.value; }
 * }`,
 * );
 * const fill = kernel(pathToFileURL(file), { storage: ["out"] });
 * await initGpu();
 * const n = 100;
 * const out = acquireBuffer(4 * n);
 * dispatch({ op: "fill", kernel: fill, entry: "fill", ints: [n], floats: [0.5],
 *   workgroups: grid1d(n, 64) }, [out]);
 * assert.ok((await readBuffer(out, 4 * n)).every((v) => v === 0.5));
 * await Deno.remove(file);
 * ```
 */
export function dispatch(program: Program, buffers: readonly GPUBuffer[]): void {
  const { device, limits } = getGpu();
  const { op, kernel } = program;
  const [x, y = 1, z = 1] = program.workgroups;
  if (x === 0 || y === 0 || z === 0) return;
  const maxWg = limits.maxComputeWorkgroupsPerDimension;
  if (x > maxWg || y > maxWg || z > maxWg) {
    throw new RangeError(
      `op ${op}: dispatch of ${x}x${y}x${z} workgroups exceeds the limit of ${maxWg} per dimension`,
    );
  }
  if (buffers.length > kernel.storage.length) {
    throw new RangeError(
      `op ${op}: ${buffers.length} buffers for the ${kernel.storage.length} storage bindings ` +
        `of ${kernel.file.name}`,
    );
  }
  const { pipeline, layout } = getPipeline(kernel, program.entry, program.defines, op);
  const b = openBatch();
  const entries: GPUBindGroupEntry[] = [];
  const ints = program.ints ?? [];
  const floats = program.floats ?? [];
  if (ints.length || floats.length) {
    if (4 * (ints.length + floats.length) > SLOT) {
      throw new RangeError(`op ${op}: more than ${SLOT / 4} parameters`);
    }
    const slot = paramSlot(b);
    ints.forEach((v, i) => slot.view.setInt32(4 * i, v, true));
    floats.forEach((v, i) => slot.view.setFloat32(4 * (ints.length + i), v, true));
    entries.push({
      binding: 0,
      resource: { buffer: slot.buffer, offset: slot.offset, size: SLOT },
    });
  }
  buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
  const bindGroup = guard(
    op,
    () => device.createBindGroup({ layout, entries }),
  );
  if (b.timed) {
    // Profiling: one pass per dispatch, with the GPU's time stamps at its start and end.
    if (b.pass) b.pass.end();
    const k = b.timed.ops.length;
    b.pass = b.encoder.beginComputePass({
      timestampWrites: {
        querySet: b.timed.querySet,
        beginningOfPassWriteIndex: 2 * k,
        endOfPassWriteIndex: 2 * k + 1,
      },
    });
    b.timed.ops.push(op);
  }
  if (!b.pass) b.pass = b.encoder.beginComputePass();
  b.pass.setPipeline(pipeline);
  b.pass.setBindGroup(0, bindGroup);
  b.pass.dispatchWorkgroups(x, y, z);
  if (b.timed) {
    b.pass.end();
    b.pass = null;
  }
  b.ops++;
  dispatchCount++;
  if (b.ops >= MAX_BATCH) flush();
}

/**
 * Encodes a buffer-to-buffer copy into the current batch (ends the open compute pass).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "./device.ts";
 * import { acquireBuffer } from "./pool.ts";
 * import { copyBuffer, readBuffer, writeBuffer } from "./queue.ts";
 * await initGpu();
 * const src = acquireBuffer(1024);
 * const dst = acquireBuffer(1024);
 * writeBuffer(src, new Float32Array(256).fill(7));
 * copyBuffer(src, dst, 1024);
 * assert.ok((await readBuffer(dst, 1024)).every((v) => v === 7));
 * ```
 */
export function copyBuffer(
  src: GPUBuffer,
  dst: GPUBuffer,
  bytes: number,
  srcOffset = 0,
  dstOffset = 0,
): void {
  const b = openBatch();
  if (b.pass) {
    b.pass.end();
    b.pass = null;
  }
  b.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  b.ops++;
}

/** Per op: GPU milliseconds and dispatches, from {@link startGpuProfile} to {@link stopGpuProfile}. */
export interface GpuProfile {
  /** Op name (e.g. `conv2d.forward`) -> total GPU time in ms and the number of dispatches. */
  ops: Record<string, { ms: number; dispatches: number }>;
  /** Sum of the ops' GPU times (ms). */
  totalMs: number;
  /** Dispatches timed. */
  dispatches: number;
}

interface ProfileState {
  pending: Promise<void>[];
  ops: Map<string, { ms: number; dispatches: number }>;
}

let profile: ProfileState | null = null;

/** Encodes the read-back of a batch's time stamps; the returned function awaits and adds them. */
function resolveTimes(
  encoder: GPUCommandEncoder,
  timed: { querySet: GPUQuerySet; ops: string[] },
): () => Promise<void> {
  const { device } = getGpu();
  const n = 2 * timed.ops.length;
  const resolved = device.createBuffer({
    size: 8 * n,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const staging = device.createBuffer({
    size: 8 * n,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  encoder.resolveQuerySet(timed.querySet, 0, n, resolved, 0);
  encoder.copyBufferToBuffer(resolved, 0, staging, 0, 8 * n);
  const state = profile!;
  return async () => {
    try {
      await staging.mapAsync(GPUMapMode.READ);
      const t = new BigUint64Array(staging.getMappedRange().slice(0));
      staging.unmap();
      timed.ops.forEach((op, k) => {
        const ns = t[2 * k + 1] >= t[2 * k] ? Number(t[2 * k + 1] - t[2 * k]) : 0;
        const e = state.ops.get(op) ?? { ms: 0, dispatches: 0 };
        e.ms += ns / 1e6;
        e.dispatches++;
        state.ops.set(op, e);
      });
    } finally {
      staging.destroy();
      resolved.destroy();
      timed.querySet.destroy();
    }
  };
}

/**
 * Starts timing every dispatch on the GPU (time stamps at the start and end of each kernel, one
 * compute pass per dispatch), until {@link stopGpuProfile}. For finding where a step's GPU time
 * goes; the extra passes and queries cost a little, so do not time throughput while profiling.
 *
 * @throws {Error} when the adapter has no `timestamp-query` feature, or a profile is running.
 * @example
 * ```ts
 * import { initGpu } from "./device.ts";
 * import { startGpuProfile, stopGpuProfile } from "./queue.ts";
 * const gpu = await initGpu();
 * if (gpu.hasTimestampQuery) {
 *   startGpuProfile();
 *   // ... work ...
 *   const p = await stopGpuProfile();
 *   console.log(p.totalMs, Object.keys(p.ops));
 * }
 * ```
 */
export function startGpuProfile(): void {
  if (!getGpu().hasTimestampQuery) {
    throw new Error("this adapter has no timestamp-query feature: GPU times cannot be measured");
  }
  if (profile) throw new Error("a GPU profile is already running");
  flush();
  profile = { pending: [], ops: new Map() };
}

/**
 * Ends the profile {@link startGpuProfile} started: submits pending work, waits for it and
 * returns the GPU time per op, sorted from the largest.
 *
 * @throws {Error} when no profile is running.
 * @example
 * ```ts
 * import { stopGpuProfile } from "./queue.ts";
 * // const { ops, totalMs } = await stopGpuProfile();
 * ```
 */
export async function stopGpuProfile(): Promise<GpuProfile> {
  if (!profile) throw new Error("no GPU profile is running (startGpuProfile first)");
  flush();
  const state = profile;
  profile = null;
  await Promise.all(state.pending);
  const sorted = [...state.ops.entries()].sort((a, b) => b[1].ms - a[1].ms);
  return {
    ops: Object.fromEntries(sorted),
    totalMs: sorted.reduce((a, [, e]) => a + e.ms, 0),
    dispatches: sorted.reduce((a, [, e]) => a + e.dispatches, 0),
  };
}

/**
 * Submits everything encoded so far. Cheap when nothing is pending.
 *
 * @example
 * ```ts
 * import { flush } from "./queue.ts";
 * flush();
 * ```
 */
export function flush(): void {
  if (!batch) return;
  const b = batch;
  batch = null;
  const { device } = getGpu();
  if (b.pass) b.pass.end();
  const timed = b.timed && b.timed.ops.length ? resolveTimes(b.encoder, b.timed) : null;
  b.arenas.forEach((arena, i) => device.queue.writeBuffer(arena, 0, b.arenaData[i]));
  guard("submit", () => device.queue.submit([b.encoder.finish()]));
  submitCount++;
  if (timed) profile?.pending.push(timed());
  else b.timed?.querySet.destroy();
  // Arenas are rewritten by writeBuffer, which the queue orders after this submit.
  spareArenas.push(...b.arenas);
  markSubmitted();
}

/**
 * Copies `bytes` of a storage buffer back to the CPU. Submits pending work first and throws any
 * validation error recorded since the last sync point.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "./device.ts";
 * import { acquireBuffer } from "./pool.ts";
 * import { readBuffer, writeBuffer } from "./queue.ts";
 * await initGpu();
 * const buffer = acquireBuffer(16);
 * writeBuffer(buffer, new Float32Array([1, 2, 3, 4]));
 * const values = await readBuffer(buffer, 16);
 * assert.deepEqual([...values], [1, 2, 3, 4]);
 * ```
 */
export async function readBuffer(
  buffer: GPUBuffer,
  bytes: number,
  offset = 0,
): Promise<Float32Array> {
  const { device } = getGpu();
  const size = Math.max(4, Math.ceil(bytes / 4) * 4);
  const staging = device.createBuffer({
    size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    copyBuffer(buffer, staging, size, offset, 0);
    flush();
    await checkErrors();
    await staging.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(staging.getMappedRange().slice(0, bytes));
    staging.unmap();
    return out;
  } finally {
    staging.destroy();
  }
}

/**
 * Writes CPU data into a buffer. `queue.writeBuffer` lands before the next submit, so when the
 * buffer may be used by commands already encoded, pending work is submitted first. Pass
 * `{ fresh: true }` for a buffer just taken from the pool: then the batch is submitted only if
 * the buffer was released since the last submit (pending commands may still read it).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "./device.ts";
 * import { acquireBuffer } from "./pool.ts";
 * import { readBuffer, writeBuffer } from "./queue.ts";
 * await initGpu();
 * const buffer = acquireBuffer(12);
 * writeBuffer(buffer, new Float32Array([1, 2, 3]));
 * assert.deepEqual([...await readBuffer(buffer, 12)], [1, 2, 3]);
 * ```
 */
export function writeBuffer(
  buffer: GPUBuffer,
  data: Float32Array<ArrayBuffer>,
  options: { offset?: number; fresh?: boolean } = {},
): void {
  if (!options.fresh || isDirty(buffer)) flush();
  getGpu().device.queue.writeBuffer(buffer, options.offset ?? 0, data);
}

/**
 * Submits pending work, waits for the GPU to finish it and throws any recorded error.
 *
 * @example
 * ```ts
 * import { initGpu } from "./device.ts";
 * import { syncGpu } from "./queue.ts";
 * await initGpu();
 * await syncGpu();
 * ```
 */
export async function syncGpu(): Promise<void> {
  flush();
  await getGpu().device.queue.onSubmittedWorkDone();
  await checkErrors();
}

/**
 * Counters for tests and benchmarks: dispatches encoded and submits made.
 *
 * @example
 * ```ts
 * import { queueStats } from "./queue.ts";
 * const { submits } = queueStats();
 * ```
 */
export function queueStats(): { dispatches: number; submits: number } {
  return { dispatches: dispatchCount, submits: submitCount };
}

/**
 * Splits `n` work items over a 2-D grid of workgroups of `wg` invocations (x at most 65535),
 * for kernels that compute `i = gid.x + gid.y * num_workgroups.x * wg`.
 *
 * @example
 * ```ts
 * import { grid1d } from "./queue.ts";
 * grid1d(1_000_000, 256); // [3907, 1]
 * ```
 */
export function grid1d(n: number, wg: number): [number, number] {
  const groups = Math.ceil(n / wg);
  if (groups <= 65535) return [Math.max(groups, 1), 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y];
}
