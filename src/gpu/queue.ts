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
  if (!b.pass) b.pass = b.encoder.beginComputePass();
  b.pass.setPipeline(pipeline);
  b.pass.setBindGroup(0, bindGroup);
  b.pass.dispatchWorkgroups(x, y, z);
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
  b.arenas.forEach((arena, i) => device.queue.writeBuffer(arena, 0, b.arenaData[i]));
  guard("submit", () => device.queue.submit([b.encoder.finish()]));
  submitCount++;
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
