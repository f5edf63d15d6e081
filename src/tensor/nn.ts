/**
 * The functional op namespace, exported from mod.ts as `nn`.
 *
 * @example
 * ```ts
 * import { initGpu, nn, tensor } from "../../mod.ts";
 * await initGpu();
 * const x = tensor([1, -2, 3, -4], [2, 2]);
 * const y = nn.relu(nn.add(x, 1));
 * console.log(await y.read());
 * ```
 * @module
 */

export {
  abs,
  add,
  broadcastShapes,
  clamp,
  div,
  exp,
  leakyRelu,
  log,
  maximum,
  minimum,
  mul,
  neg,
  pow,
  relu,
  sigmoid,
  sqrt,
  square,
  sub,
  tanh,
} from "./ops/elementwise.ts";
export { mean, type ReduceOptions, sum, sumTo } from "./ops/reduce.ts";
export { type MomentOptions, std, variance, variance as var } from "./ops/reduce.ts";
export {
  avgPool2d,
  globalMeanPool,
  type GlobalStdOptions,
  globalStdPool,
  maxPool2d,
  type Pool2dOptions,
  type Size2,
} from "./ops/pool.ts";
export { linear, matmul, type MatmulOptions } from "./ops/matmul.ts";
export { upsample2x, type UpsampleOptions } from "./ops/resample.ts";
export { l1Loss, type LossOptions, mseLoss } from "./ops/loss.ts";
export {
  concat,
  permute,
  slice,
  type SliceRange,
  split,
  squeeze,
  stack,
  transpose,
  unsqueeze,
} from "./ops/shape.ts";
export { conv2d, type Conv2dOptions } from "./ops/conv.ts";
export { gruCell, type GruCellWeights } from "./ops/rnn.ts";
export { convGruCell, type ConvGruCellWeights, convGruGates } from "./ops/conv_gru.ts";
