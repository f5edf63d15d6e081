/**
 * Deferred WebGPU validation errors, turned into exceptions that name the op.
 *
 * Kernels are encoded synchronously; WebGPU reports validation errors through error scopes whose
 * results arrive later. Every guarded call is wrapped in an error scope whose outcome is recorded
 * here with the op's name, and the next synchronisation point (a read back to the CPU, or
 * `syncGpu()`) throws the first recorded error.
 *
 * @module
 */

import { getGpu } from "./device.ts";

/** A WebGPU validation or out-of-memory error, with the op that caused it. */
export class GpuOpError extends Error {
  /** The op (kernel) whose encoding or submission failed. */
  readonly op: string;
  /**
   * An error of `op`, with WebGPU's message.
   *
   * @param op The op (kernel) name, e.g. `matmul`.
   * @param message WebGPU's error message; the error's message is `op <op>: <message>`.
   */
  constructor(op: string, message: string) {
    super(`op ${op}: ${message}`);
    this.name = "GpuOpError";
    this.op = op;
  }
}

const pending = new Set<Promise<void>>();
let firstError: Error | null = null;
let firstSeq = Infinity;
let seq = 0;

/**
 * Records an error for the next synchronisation point. Of several, the one from the earliest
 * call is thrown (later ones are usually its consequences).
 *
 * @example
 * ```ts
 * import { recordError } from "./errors.ts";
 * recordError(new Error("something broke"));
 * ```
 */
export function recordError(e: Error, order = seq++): void {
  if (order < firstSeq) {
    firstError = e;
    firstSeq = order;
  }
}

/**
 * Runs `fn` inside a validation error scope; an error is reported at the next sync point,
 * described by `describe` (which may look deeper, e.g. at shader compilation messages).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "./device.ts";
 * import { GpuOpError, guard } from "./errors.ts";
 * import { syncGpu } from "./queue.ts";
 * const { device } = await initGpu();
 * const usage = GPUBufferUsage.STORAGE;
 * const buffer = guard("alloc", () => device.createBuffer({ size: 256, usage }));
 * buffer.destroy();
 * // An invalid call is reported at the next sync point, naming the op:
 * const bad = GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE;
 * guard("bad alloc", () => device.createBuffer({ size: 256, usage: bad }));
 * await assert.rejects(syncGpu(), (e) => e instanceof GpuOpError && e.op === "bad alloc");
 * ```
 */
export function guard<T>(
  op: string,
  fn: () => T,
  describe?: (err: GPUError) => Promise<string>,
): T {
  const { device } = getGpu();
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  const order = seq++;
  let result: T;
  try {
    result = fn();
  } finally {
    const v = device.popErrorScope();
    const m = device.popErrorScope();
    // Settled scopes leave the set at once, so a loop that never syncs does not accumulate them.
    const p: Promise<void> = Promise.all([v, m]).then(async ([ve, me]) => {
      const err = ve ?? me;
      if (!err) return;
      const text = describe ? await describe(err) : err.message;
      recordError(new GpuOpError(op, text), order);
    }).finally(() => pending.delete(p));
    pending.add(p);
  }
  return result;
}

/**
 * Awaits all recorded scopes and throws the first error, if any (then forgets it).
 *
 * @example
 * ```ts
 * import { checkErrors } from "./errors.ts";
 * await checkErrors();
 * ```
 */
export async function checkErrors(): Promise<void> {
  while (pending.size) await Promise.all([...pending]);
  if (firstError) {
    const e = firstError;
    firstError = null;
    firstSeq = Infinity;
    throw e;
  }
}
