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
  gelu,
  leakyRelu,
  log,
  maximum,
  minimum,
  mul,
  neg,
  type Operand,
  pow,
  relu,
  sigmoid,
  sqrt,
  square,
  sub,
  tanh,
} from "../tensor/ops/elementwise.ts";
export { mean, type ReduceOptions, sum, sumTo } from "../tensor/ops/reduce.ts";
export { type MomentOptions, std, variance, variance as var } from "../tensor/ops/reduce.ts";
export {
  adaptiveAvgPool2d,
  avgPool2d,
  globalMeanPool,
  type GlobalStdOptions,
  globalStdPool,
  maxPool2d,
  type Pool2dOptions,
  type Size2,
} from "../tensor/ops/pool.ts";
export { linear, matmul, type MatmulOptions } from "../tensor/ops/matmul.ts";
export { upsample2x, type UpsampleOptions } from "../tensor/ops/resample.ts";
export {
  centerCrop,
  type CenterCropOptions,
  resize,
  type ResizeOptions,
  shortSideSize,
} from "../tensor/ops/resize.ts";
export { l1Loss, type LossOptions, mseLoss } from "../tensor/ops/loss.ts";
export {
  concat,
  pad,
  permute,
  slice,
  type SliceRange,
  split,
  squeeze,
  stack,
  transpose,
  unsqueeze,
} from "../tensor/ops/shape.ts";
export { conv2d, type Conv2dOptions } from "../tensor/ops/conv.ts";
export { conv3d, conv3dFlops, type Conv3dOptions, type Size3 } from "../tensor/ops/conv3d.ts";
export { avgPool3d, maxPool3d, type Pool3dOptions } from "../tensor/ops/pool3d.ts";
export { localNormalize } from "../tensor/ops/mscn.ts";
export {
  batchNorm2d,
  type BatchNormOptions,
  foldBatchNorm,
  type FoldConvParams,
  type FoldedParams,
} from "../tensor/ops/norm.ts";
export { layerNorm, type LayerNormOptions } from "../tensor/ops/layer_norm.ts";
export { softmax, type SoftmaxOptions } from "../tensor/ops/softmax.ts";
export { attention, type AttentionOptions } from "../tensor/ops/attention.ts";
export { roll } from "../tensor/ops/roll.ts";
export { indexSelect } from "../tensor/ops/index_select.ts";
export { depthwiseConv3d, type DepthwiseConv3dOptions } from "../tensor/ops/conv3d_depthwise.ts";
export { gruCell, type GruCellWeights, gruSequence } from "./gru.ts";
export { convGruCell, type ConvGruCellWeights, convGruGates } from "../tensor/ops/conv_gru.ts";
