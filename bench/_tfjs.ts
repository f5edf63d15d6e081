/**
 * The peer the benchmarks compare against: TensorFlow.js with its WebGPU backend, on the same
 * adapter (through Deno's `navigator.gpu`, in the same process; TF.js requests its own device).
 *
 * No shim is needed: @tensorflow/tfjs-backend-webgpu 4.22 registers its backend when
 * `navigator.gpu` exists, and Deno provides it. The packages come from npm through the import map
 * of deno.json and must be in Deno's cache before `deno task bench` runs (the task has no network
 * permission): run `deno install` once.
 *
 * Sync: {@link tfSync} ends the open compute pass, submits the backend's command encoder (as the
 * backend does before a read-back: `endComputePassEncoder()`, `submitQueue()`) and awaits
 * `queue.onSubmittedWorkDone()` on TF.js's device, the same mechanism as STQA's `syncGpu()`, with
 * no read-back, so both sides pay the same fixed sync latency.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
// Registers the "webgpu" backend as a side effect.
import "@tensorflow/tfjs-backend-webgpu";

export { tf };

/**
 * Selects TF.js's WebGPU backend; throws when it cannot be initialised.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./_tfjs.ts";
 * const backend = await initTfjs();
 * console.log(backend.device.limits.maxStorageBufferBindingSize);
 * ```
 */
export async function initTfjs(): Promise<WebGPUBackend> {
  if (tf.getBackend() !== "webgpu") {
    const ok = await tf.setBackend("webgpu");
    if (!ok) throw new Error("TF.js could not initialise its WebGPU backend");
  }
  await tf.ready();
  return tf.backend() as WebGPUBackend;
}

/**
 * Submits TF.js's pending GPU work and waits until the GPU has finished it (no read-back).
 *
 * @example
 * ```ts
 * import { initTfjs, tf, tfSync } from "./_tfjs.ts";
 * await initTfjs();
 * const c = tf.matMul(tf.ones([64, 64]), tf.ones([64, 64]));
 * await tfSync();
 * c.dispose();
 * ```
 */
export async function tfSync(): Promise<void> {
  const backend = tf.backend() as WebGPUBackend;
  // What the backend itself does before a read-back: close the open pass, submit the encoder.
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  backend.submitQueue();
  await backend.device.queue.onSubmittedWorkDone();
}

/**
 * A TF.js tensor of normal random values (seeded), uploaded to the GPU before it is returned.
 *
 * @example
 * ```ts
 * import { initTfjs, tfRandom } from "./_tfjs.ts";
 * await initTfjs();
 * const x = await tfRandom([16, 128, 128, 1], 1);
 * x.dispose();
 * ```
 */
export async function tfRandom(shape: number[], seed: number): Promise<tf.Tensor> {
  const t = tf.randomNormal(shape, 0, 1, "float32", seed);
  // An op on the GPU uploads the data and leaves its result only there (no CPU copy), so the
  // first benchmark call does not pay the upload.
  const onGpu = tf.add(t, 0);
  t.dispose();
  await tfSync();
  return onGpu;
}
