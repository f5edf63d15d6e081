/**
 * The one WebGPU adapter and device of this process.
 *
 * `initGpu()` asks `navigator.gpu` for an adapter, reads its information, features and limits
 * (Deno invalidates the adapter once a device is requested from it), then requests a device with
 * the adapter's own storage-binding, buffer-size and storage-buffers-per-stage limits and with
 * `timestamp-query` where the adapter offers it. It also reads the .wgsl files of every kernel
 * declared so far (see src/gpu/_sources.ts), so that pipelines can be created synchronously
 * when the package is imported from a URL. Later calls return the same context.
 *
 * @module
 */

import { loadShaders } from "./_sources.ts";

/** Exit code a command uses when no WebGPU adapter can be had (bad usage is 2). */
export const EXIT_NO_ADAPTER = 3;

/** What the adapter said about itself, read before the device was requested. */
export interface AdapterSummary {
  /** Human-readable description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  /** Vendor string or PCI id. */
  vendor: string;
  /** Architecture, where the driver gives one. */
  architecture: string;
  /** True for software adapters such as lavapipe. */
  isFallbackAdapter: boolean;
  /** The adapter's features. */
  features: string[];
  /** The adapter's limits, as numbers. */
  limits: Record<string, number>;
}

/** The process-wide GPU context. */
export interface GpuContext {
  /** The device every kernel runs on. */
  device: GPUDevice;
  /** What the adapter reported before the device was requested. */
  adapter: AdapterSummary;
  /** Limits granted to the device. */
  limits: GPUSupportedLimits;
  /** Whether `timestamp-query` was enabled. */
  hasTimestampQuery: boolean;
}

/**
 * Thrown when `navigator.gpu` is missing or yields no adapter.
 *
 * @example
 * ```ts
 * import { initGpu, NoAdapterError } from "./device.ts";
 * try {
 *   await initGpu();
 * } catch (e) {
 *   if (e instanceof NoAdapterError) Deno.exit(e.exitCode);
 *   throw e;
 * }
 * ```
 */
export class NoAdapterError extends Error {
  /** The exit code a command should use for this error. */
  readonly exitCode: number = EXIT_NO_ADAPTER;
  /**
   * An error whose message says why there is no adapter and how to install a driver.
   *
   * @param detail Why there is no adapter (e.g. `navigator.gpu is undefined`); the message adds
   *   how to install a driver.
   */
  constructor(detail: string) {
    super(
      `No WebGPU adapter is available (${detail}). Install a GPU driver with Vulkan support, ` +
        "or on a machine without a GPU install Mesa's CPU driver: " +
        "`apt-get install mesa-vulkan-drivers` (lavapipe).",
    );
    this.name = "NoAdapterError";
  }
}

let context: GpuContext | null = null;
let pending: Promise<GpuContext> | null = null;

const LIMITS_TO_RAISE = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
] as const;

function summarise(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info;
  const limits: Record<string, number> = {};
  // GPUSupportedLimits exposes its values as getters on the prototype.
  const proto = Object.getPrototypeOf(adapter.limits);
  for (const key of Object.getOwnPropertyNames(proto)) {
    const value = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof value === "number") limits[key] = value;
  }
  return {
    description: info.description || "(no description)",
    vendor: info.vendor,
    architecture: info.architecture,
    isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    features: [...adapter.features].sort(),
    limits,
  };
}

async function create(): Promise<GpuContext> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) throw new NoAdapterError("navigator.gpu is undefined in this runtime");
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    throw new NoAdapterError(`requestAdapter failed: ${(e as Error).message}`);
  }
  if (!adapter) throw new NoAdapterError("requestAdapter returned null");
  const summary = summarise(adapter);
  const requiredLimits: Record<string, number> = {};
  for (const key of LIMITS_TO_RAISE) {
    if (key in summary.limits) requiredLimits[key] = summary.limits[key];
  }
  const requiredFeatures: GPUFeatureName[] = [];
  const hasTimestampQuery = summary.features.includes("timestamp-query");
  if (hasTimestampQuery) requiredFeatures.push("timestamp-query");
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  device.addEventListener("uncapturederror", (ev) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    console.error(`WebGPU uncaptured error: ${err.message}`);
  });
  await loadShaders();
  return { device, adapter: summary, limits: device.limits, hasTimestampQuery };
}

/**
 * Returns the process-wide GPU context, creating it on the first call.
 *
 * @throws {NoAdapterError} when no adapter can be had.
 * @example
 * ```ts
 * import { initGpu } from "./device.ts";
 * const gpu = await initGpu();
 * console.log(gpu.adapter.description, gpu.limits.maxStorageBufferBindingSize);
 * ```
 */
export function initGpu(): Promise<GpuContext> {
  if (context) return Promise.resolve(context);
  if (!pending) {
    pending = create().then((c) => (context = c)).catch((e) => {
      pending = null;
      throw e;
    });
  }
  return pending;
}

/**
 * The GPU context, for code that runs after `initGpu()` resolved.
 *
 * @throws {Error} when `initGpu()` has not been awaited yet.
 * @example
 * ```ts
 * import { getGpu, initGpu } from "./device.ts";
 * await initGpu();
 * const { device } = getGpu();
 * ```
 */
export function getGpu(): GpuContext {
  if (!context) {
    throw new Error("The GPU is not initialised: `await initGpu()` before creating tensors.");
  }
  return context;
}

let bindingOverride: number | null = null;

/**
 * The largest storage buffer one binding may hold: the adapter's `maxStorageBufferBindingSize`,
 * or less while {@link setBindingLimit} lowers it. Every size check and every split into chunks
 * or tiles reads it here, so a test can exercise the paths a smaller adapter (or a 4K frame)
 * takes on frames that fit whole, and compare both.
 *
 * @throws {Error} when `initGpu()` has not been awaited yet.
 * @example
 * ```ts
 * import { bindingLimit, initGpu } from "./device.ts";
 * await initGpu();
 * console.log(`${(bindingLimit() / 2 ** 20).toFixed(0)} MiB per binding`);
 * ```
 */
export function bindingLimit(): number {
  const limit = getGpu().limits.maxStorageBufferBindingSize;
  return bindingOverride === null ? limit : Math.min(limit, bindingOverride);
}

/**
 * Lowers the binding limit {@link bindingLimit} reports to `bytes` (never above the adapter's),
 * or restores the adapter's with `null`; returns the previous override. For tests of the
 * chunking and tiling paths, and to try what a smaller adapter would do.
 *
 * @throws {RangeError} for a limit that is not a positive whole number of bytes.
 * @example
 * ```ts
 * import { bindingLimit, initGpu, setBindingLimit } from "./device.ts";
 * await initGpu();
 * const before = setBindingLimit(2 ** 20);
 * try {
 *   console.log(bindingLimit()); // 1048576
 * } finally {
 *   setBindingLimit(before);
 * }
 * ```
 */
export function setBindingLimit(bytes: number | null): number | null {
  if (bytes !== null && !(Number.isInteger(bytes) && bytes > 0)) {
    throw new RangeError(`a binding limit must be a positive whole number of bytes, got ${bytes}`);
  }
  const before = bindingOverride;
  bindingOverride = bytes;
  return before;
}

/**
 * The kernel variants the tensor ops use: `"cpu"` (register-blocked kernels without workgroup
 * memory, tuned for CPU adapters such as lavapipe, where a workgroup's invocations are SIMD lanes
 * and shared memory only adds copies) or `"gpu"` (workgroup-memory tiles, for discrete and
 * integrated GPUs). Both compute the same values; tests run both on any adapter.
 */
export type KernelFamily = "cpu" | "gpu";

let familyOverride: KernelFamily | null = null;

/**
 * Whether an adapter runs on the CPU: the fallback adapter, or a software rasteriser by its
 * description (llvmpipe/lavapipe, SwiftShader, softpipe, WARP).
 *
 * @example
 * ```ts
 * import { initGpu, isCpuAdapter } from "./device.ts";
 * const gpu = await initGpu();
 * console.log(isCpuAdapter(gpu.adapter));
 * ```
 */
export function isCpuAdapter(a: AdapterSummary): boolean {
  return a.isFallbackAdapter ||
    /llvmpipe|lavapipe|swiftshader|softpipe|\bwarp\b/i.test(`${a.description} ${a.architecture}`);
}

/**
 * The kernel family in use (see {@link KernelFamily}): the one {@link setKernelFamily} chose,
 * else `"cpu"` on a CPU adapter ({@link isCpuAdapter}) and `"gpu"` on any other.
 *
 * @throws {Error} when `initGpu()` has not been awaited yet (and no family was set).
 * @example
 * ```ts
 * import { initGpu, kernelFamily } from "./device.ts";
 * await initGpu();
 * console.log(kernelFamily()); // "cpu" on lavapipe
 * ```
 */
export function kernelFamily(): KernelFamily {
  if (familyOverride) return familyOverride;
  return isCpuAdapter(getGpu().adapter) ? "cpu" : "gpu";
}

/**
 * Chooses the kernel family (`null`: by the adapter again); returns the previous choice. For
 * tests of both families on one adapter, and to compare them in a benchmark.
 *
 * @throws {RangeError} for a name that is not a family.
 * @example
 * ```ts
 * import { initGpu, kernelFamily, setKernelFamily } from "./device.ts";
 * await initGpu();
 * const before = setKernelFamily("gpu");
 * try {
 *   console.log(kernelFamily()); // "gpu"
 * } finally {
 *   setKernelFamily(before);
 * }
 * ```
 */
export function setKernelFamily(family: KernelFamily | null): KernelFamily | null {
  if (family !== null && family !== "cpu" && family !== "gpu") {
    throw new RangeError(`kernel family must be "cpu" or "gpu", got ${family}`);
  }
  const before = familyOverride;
  familyOverride = family;
  return before;
}
