/**
 * The WebGPU device of this process and what a script may ask of it: starting it
 * (`initGpu`), waiting for queued work (`syncGpu`), and the counters of the buffer pool and
 * the command queue.
 *
 * @example
 * ```ts
 * import { initGpu, poolStats, syncGpu } from "./mod.ts";
 * const gpu = await initGpu();
 * console.log(gpu.adapter.description);
 * await syncGpu();
 * console.log(poolStats().inUse);
 * ```
 * @module
 */

export {
  type AdapterSummary,
  EXIT_NO_ADAPTER,
  type GpuContext,
  initGpu,
  isCpuAdapter,
  type KernelFamily,
  kernelFamily,
  NoAdapterError,
  setBindingLimit,
  setKernelFamily,
} from "./device.ts";
export { GpuOpError } from "./errors.ts";
export { type PoolStats, poolStats, trimPool } from "./pool.ts";
export { type GpuProfile, queueStats, startGpuProfile, stopGpuProfile, syncGpu } from "./queue.ts";
