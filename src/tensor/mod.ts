/**
 * Float32 tensors on the GPU with reverse-mode autograd: creating them (`tensor`, `empty`,
 * `full`), scopes that dispose intermediates (`tidy`), turning gradients off (`noGrad`),
 * recomputing a piece in the backward pass instead of keeping its activations (`checkpoint`), and
 * `Tensor#backward`. The ops that compute on tensors are the `nn` namespace (`./nn`).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../gpu/mod.ts";
 * import { tensor, tidy } from "./mod.ts";
 * await initGpu();
 * const x = tensor([1, 2, 3, 4], [2, 2]);
 * const y = tidy(() => x.reshape([4]));
 * assert.deepEqual(y.shape, [4]);
 * assert.deepEqual(Array.from(await y.read()), [1, 2, 3, 4]);
 * ```
 * @module
 */

export {
  checkpoint,
  empty,
  full,
  type GradNode,
  type GradRegion,
  isGradEnabled,
  noGrad,
  type Shape,
  Tensor,
  tensor,
  tidy,
} from "./tensor.ts";
