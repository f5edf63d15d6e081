/**
 * Optimisers that update parameters in place on the GPU: `Adam` and `SGD` (with momentum,
 * Nesterov and weight decay), with the update formulas of PyTorch's.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu, nn, tensor } from "../../mod.ts";
 * import { SGD } from "./mod.ts";
 * await initGpu();
 * const w = tensor([1, -2], [2], { requiresGrad: true });
 * const opt = new SGD([w], { lr: 0.25 });
 * const loss = nn.sum(nn.square(w)); // gradient 2w
 * loss.backward();
 * opt.step(); // w - 0.25 * 2w = w / 2
 * assert.deepEqual(Array.from(await w.read()), [0.5, -1]);
 * ```
 * @module
 */

export { Adam, type AdamOptions, SGD, type SGDOptions } from "./optimizers.ts";
