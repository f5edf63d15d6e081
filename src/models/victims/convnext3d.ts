/**
 * The inflated ConvNeXt (Liu et al. 2022) of DOVER's aesthetic branch (Wu et al. 2023):
 * ConvNeXt-T with 3-D stem and downsampling convolutions and depthwise `(L, 7, 7)` block
 * convolutions, the temporal length `L` of block `j` of every stage being digit `j mod len` of
 * the inflate strategy ("131": 1, 3, 1, 1, 3, ...). The authors' `ConvNeXt3D` with
 * `return_spatial` (DOVER's forward), with their parameter names, so that DOVER's checkpoint
 * (`aesthetic_backbone.*`) loads as it is.
 *
 * Layout (stage widths `C_i` = `dims[i]`):
 * - `downsample_layers.0`: `.0` Conv3d(3, C_0, kernel = stride = (2,4,4)) with bias, `.1`
 *   LayerNorm over channels (eps 1e-6).
 * - `downsample_layers.{1,2,3}`: `.0` LayerNorm over channels (eps 1e-6), `.1`
 *   Conv3d(C_{i-1}, C_i, kernel = stride = (1,2,2)) with bias.
 * - `stages.{i}.{j}` (`depths[i]` blocks): `dwconv` depthwise Conv3d(C, C, (L,7,7),
 *   padding (L//2,3,3), groups C) with bias; channels last; `norm` LayerNorm (eps 1e-6);
 *   `pwconv1` Linear(C, 4C); exact GELU; `pwconv2` Linear(4C, C); times the layer scale
 *   `gamma` [C]; channels first; plus the block's input.
 * - `norm`: the final LayerNorm (eps 1e-6) over the channels of each position.
 *
 * Stage `i` runs after downsampling layer `i`. No classifier head (DOVER's state dict has none).
 * The layer scale is folded into `pwconv2` (`gamma * (W x + b)` = `(gamma W) x + gamma b`).
 *
 * @module
 */

import { z } from "zod";
import type { SameShape, Schema } from "../../_zod.ts";
import { conv3d } from "../../tensor/ops/conv3d.ts";
import { depthwiseConv3d } from "../../tensor/ops/conv3d_depthwise.ts";
import { add, gelu, mul } from "../../tensor/ops/elementwise.ts";
import { layerNorm } from "../../tensor/ops/layer_norm.ts";
import { linear } from "../../tensor/ops/matmul.ts";
import { permute } from "../../tensor/ops/shape.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { MAX_MODEL_WIDTH, type ParamBuilder } from "./victim.ts";

/**
 * A ConvNeXt3D's shape: the four stages' widths and block counts, and the inflate strategy
 * (digit `j mod len` is the temporal kernel length of each stage's block `j`).
 *
 * @example
 * ```ts
 * import { CONVNEXT3D_TINY, type ConvNext3dConfig } from "./convnext3d.ts";
 * const small: ConvNext3dConfig = { ...CONVNEXT3D_TINY, dims: [8, 16, 24, 32] };
 * console.log(small.inflate); // "131"
 * ```
 */
export type ConvNext3dConfig = {
  /** Channels of the four stages ([96, 192, 384, 768] in ConvNeXt-T). */
  dims: number[];
  /** Blocks in each of the four stages ([3, 3, 9, 3] in ConvNeXt-T). */
  depths: number[];
  /** Temporal kernel lengths, odd digits, cycled over each stage's blocks ("131" in DOVER). */
  inflate: string;
};

const convNext3dConfig = z.object({
  dims: z.array(z.number().int().positive().max(MAX_MODEL_WIDTH)).length(4),
  depths: z.array(z.number().int().positive().max(64)).length(4),
  inflate: z.string().regex(/^[13579]{1,16}$/, 'odd digits 1-9 (e.g. "131")'),
}).strict();
const _sameConfig: SameShape<ConvNext3dConfig, z.output<typeof convNext3dConfig>> = true;

/**
 * Validates a {@link ConvNext3dConfig}. An even temporal length is refused: with the authors'
 * padding `L // 2` it would change the number of frames and break the residual sum.
 *
 * @example
 * ```ts
 * import { ConvNext3dConfigSchema } from "./convnext3d.ts";
 * const bad = { dims: [96, 192, 384, 768], depths: [3, 3, 9, 3], inflate: "121" };
 * console.log(ConvNext3dConfigSchema.safeParse(bad).success); // false
 * ```
 */
export const ConvNext3dConfigSchema: Schema<ConvNext3dConfig> = convNext3dConfig;

/** {@link ConvNext3dConfigSchema} as a zod schema, for configs that nest it (not in mod.ts). */
export const convNext3dConfigZod: z.ZodType<ConvNext3dConfig> = convNext3dConfig;

/**
 * DOVER's aesthetic backbone: ConvNeXt-T inflated with "131".
 *
 * @example
 * ```ts
 * import { CONVNEXT3D_TINY, convNext3dChannels } from "./convnext3d.ts";
 * console.log(convNext3dChannels(CONVNEXT3D_TINY)); // 768
 * ```
 */
export const CONVNEXT3D_TINY: ConvNext3dConfig = {
  dims: [96, 192, 384, 768],
  depths: [3, 3, 9, 3],
  inflate: "131",
};

/** The authors' LayerNorm epsilon (every norm of the backbone). */
export const CONVNEXT_LN_EPS = 1e-6;

/** The stem's kernel and stride `[t, h, w]`. */
const STEM: [number, number, number] = [2, 4, 4];
/** The downsampling layers' kernel and stride `[t, h, w]`. */
const DOWN: [number, number, number] = [1, 2, 2];
/** The depthwise convolutions' spatial kernel. */
const DW_K = 7;
/** The blocks' hidden width over their channels. */
const MLP_RATIO = 4;

/**
 * Channels of the backbone's output: `dims[3]` (768 for ConvNeXt-T).
 *
 * @example
 * ```ts
 * import { convNext3dChannels } from "./convnext3d.ts";
 * console.log(convNext3dChannels({ dims: [8, 16, 24, 32], depths: [1, 1, 1, 1], inflate: "3" })); // 32
 * ```
 */
export function convNext3dChannels(c: ConvNext3dConfig): number {
  return c.dims[3];
}

/**
 * The temporal kernel length of block `j` of any stage: digit `j mod len` of the inflate
 * strategy, as the authors' `int(inflate_strategy[j % len(inflate_strategy)])`.
 *
 * @example
 * ```ts
 * import { CONVNEXT3D_TINY, convNext3dInflateLength } from "./convnext3d.ts";
 * console.log([0, 1, 2, 3, 4].map((j) => convNext3dInflateLength(CONVNEXT3D_TINY, j))); // [1, 3, 1, 1, 3]
 * ```
 */
export function convNext3dInflateLength(c: ConvNext3dConfig, j: number): number {
  return Number(c.inflate[j % c.inflate.length]);
}

/**
 * The output's `[D', H', W']` for an input of `[D, H, W]` frames: the stem divides by (2,4,4) and
 * each downsampling layer H and W by 2, each rounding down (as the unpadded convolutions do).
 * DOVER's 32 x 224 x 224 aesthetic view gives [16, 7, 7].
 *
 * @throws {RangeError} when a size reaches 0 (the input is too small).
 * @example
 * ```ts
 * import { convNext3dOutputSize } from "./convnext3d.ts";
 * console.log(convNext3dOutputSize([32, 224, 224])); // [16, 7, 7]
 * ```
 */
export function convNext3dOutputSize(
  size: readonly [number, number, number],
): [number, number, number] {
  let [d, h, w] = [0, 1, 2].map((a) => Math.floor(size[a] / STEM[a]));
  for (let i = 0; i < 3; i++) [h, w] = [Math.floor(h / DOWN[1]), Math.floor(w / DOWN[2])];
  if (d < 1 || h < 1 || w < 1) {
    throw new RangeError(
      `ConvNeXt3D: an input of [${size}] frames x height x width is too small ` +
        `(at least [2, 32, 32]: the stem's (2,4,4) and three (1,2,2) downsamplings)`,
    );
  }
  return [d, h, w];
}

/**
 * Multiply-add FLOPs (2 per product) of one forward pass on `[batch, 3, D, H, W]` frames: the
 * stem and downsampling convolutions, the depthwise convolutions and the blocks' two linear
 * layers (the norms, GELU and sums are left out). ConvNeXt-T: 9.1 GFLOP per pair of 224x224
 * frames (the 2-D model's 4.5 G multiply-adds plus the temporal taps), 145 GFLOP for DOVER's
 * 32 x 224 x 224 aesthetic view.
 *
 * @example
 * ```ts
 * import { CONVNEXT3D_TINY, convNext3dFlops } from "./convnext3d.ts";
 * console.log((convNext3dFlops(CONVNEXT3D_TINY, [32, 224, 224]) / 1e9).toFixed(1)); // GFLOP
 * ```
 */
export function convNext3dFlops(
  c: ConvNext3dConfig,
  size: readonly [number, number, number],
  batch = 1,
): number {
  let [d, h, w] = [0, 1, 2].map((a) => Math.floor(size[a] / STEM[a]));
  let flops = 2 * d * h * w * c.dims[0] * 3 * STEM[0] * STEM[1] * STEM[2];
  for (let i = 0; i < 4; i++) {
    const ch = c.dims[i];
    if (i > 0) {
      [h, w] = [Math.floor(h / DOWN[1]), Math.floor(w / DOWN[2])];
      flops += 2 * d * h * w * ch * c.dims[i - 1] * DOWN[1] * DOWN[2];
    }
    for (let j = 0; j < c.depths[i]; j++) {
      const l = convNext3dInflateLength(c, j);
      flops += 2 * d * h * w * ch * (l * DW_K * DW_K + 2 * MLP_RATIO * ch);
    }
  }
  return batch * flops;
}

/**
 * Adds a backbone's parameters to `pb` under `prefix`, with the authors' names
 * (`downsample_layers.0.0.weight` [C_0, 3, 2, 4, 4] and `.bias`, `downsample_layers.0.1.weight`
 * and `.bias`; `downsample_layers.{1,2,3}.0.weight|bias` (LayerNorm) and `.1.weight|bias`
 * (Conv3d (1,2,2)); `stages.{i}.{j}.dwconv.weight` [C, 1, L, 7, 7] and `.bias`, `.norm.*`,
 * `.pwconv1.weight` [4C, C] and `.bias`, `.pwconv2.weight` [C, 4C] and `.bias`, `.gamma` [C];
 * `norm.weight|bias`). Random values: Kaiming-uniform convolutions, PyTorch's default linear
 * layers, small random biases, LayerNorms near the identity and layer scales in [0.1, 0.5], so
 * that a test exercises every term (DOVER's checkpoint replaces them).
 *
 * @example
 * ```ts
 * import { ParamBuilder } from "./victim.ts";
 * import { buildConvNext3dParams, CONVNEXT3D_TINY } from "./convnext3d.ts";
 * const pb = new ParamBuilder(1, { shapesOnly: true });
 * buildConvNext3dParams(pb, "aesthetic_backbone.", CONVNEXT3D_TINY);
 * console.log(pb.shapes["aesthetic_backbone.stages.2.4.dwconv.weight"]); // [384, 1, 3, 7, 7]
 * ```
 */
export function buildConvNext3dParams(
  pb: ParamBuilder,
  prefix: string,
  c: ConvNext3dConfig,
): void {
  const d = c.dims;
  const bias = (name: string, n: number) => pb.uniform(name, [n], -0.1, 0.1);
  pb.conv3dWeight(`${prefix}downsample_layers.0.0.weight`, 3, d[0], STEM);
  bias(`${prefix}downsample_layers.0.0.bias`, d[0]);
  pb.layerNorm(`${prefix}downsample_layers.0.1`, d[0]);
  for (let i = 1; i < 4; i++) {
    const p = `${prefix}downsample_layers.${i}.`;
    pb.layerNorm(`${p}0`, d[i - 1]);
    pb.conv3dWeight(`${p}1.weight`, d[i - 1], d[i], DOWN);
    bias(`${p}1.bias`, d[i]);
  }
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < c.depths[i]; j++) {
      const p = `${prefix}stages.${i}.${j}.`;
      const l = convNext3dInflateLength(c, j);
      pb.conv3dWeight(`${p}dwconv.weight`, 1, d[i], [l, DW_K, DW_K]);
      bias(`${p}dwconv.bias`, d[i]);
      pb.layerNorm(`${p}norm`, d[i]);
      pb.linear(`${p}pwconv1`, d[i], MLP_RATIO * d[i]);
      pb.linear(`${p}pwconv2`, MLP_RATIO * d[i], d[i]);
      pb.uniform(`${p}gamma`, [d[i]], 0.1, 0.5);
    }
  }
  pb.layerNorm(`${prefix}norm`, d[3]);
}

/** LayerNorm over the channels of `[B, C, D, H, W]` (the authors' "channels_first"). */
function channelNorm(x: Tensor, weight: Tensor, bias: Tensor): Tensor {
  const last = layerNorm(permute(x, [0, 2, 3, 4, 1]), weight, bias, { eps: CONVNEXT_LN_EPS });
  return permute(last, [0, 4, 1, 2, 3]);
}

/**
 * DOVER's aesthetic features: normalised frames `x` [B, 3, D, H, W] to the last stage's map
 * after the final LayerNorm over channels, `[B, dims[3], D', H', W']` (see
 * {@link convNext3dOutputSize}; [B, 768, 16, 7, 7] for ConvNeXt-T on 32 x 224 x 224), from the
 * parameters in `params` under `prefix` (named as {@link buildConvNext3dParams} names them).
 * Differentiable with respect to the input and the parameters.
 *
 * @throws {RangeError} for an input that is not `[B, 3, D, H, W]` or too small, and for a
 *   missing parameter or one of the wrong shape, naming it.
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../../tensor/tensor.ts";
 * import { ParamBuilder } from "./victim.ts";
 * import { buildConvNext3dParams, convNext3dFeatures } from "./convnext3d.ts";
 * await initGpu();
 * const c = { dims: [8, 16, 24, 32], depths: [1, 2, 1, 1], inflate: "131" };
 * const pb = new ParamBuilder(1);
 * buildConvNext3dParams(pb, "aesthetic_backbone.", c);
 * const y = convNext3dFeatures(full([1, 3, 4, 32, 32], 0.1), pb.params, "aesthetic_backbone.", c);
 * console.log(y.shape); // [1, 32, 2, 1, 1]
 * ```
 */
export function convNext3dFeatures(
  x: Tensor,
  params: Record<string, Tensor>,
  prefix: string,
  c: ConvNext3dConfig,
): Tensor {
  if (x.rank !== 5 || x.shape[1] !== 3) {
    throw new RangeError(`ConvNeXt3D: x must be [B, 3, D, H, W], got [${x.shape}]`);
  }
  convNext3dOutputSize([x.shape[2], x.shape[3], x.shape[4]]);
  const p = (name: string, shape: readonly number[]): Tensor => {
    const t = params[prefix + name];
    if (!t) throw new RangeError(`ConvNeXt3D: missing parameter ${prefix}${name}`);
    if (t.shape.length !== shape.length || t.shape.some((n, i) => n !== shape[i])) {
      throw new RangeError(
        `ConvNeXt3D: parameter ${prefix}${name} is [${t.shape}], expected [${shape}]`,
      );
    }
    return t;
  };
  const d = c.dims;
  let y = x;
  for (let i = 0; i < 4; i++) {
    const dl = `downsample_layers.${i}.`;
    if (i === 0) {
      y = conv3d(y, p(`${dl}0.weight`, [d[0], 3, ...STEM]), p(`${dl}0.bias`, [d[0]]), {
        stride: STEM,
      });
      y = channelNorm(y, p(`${dl}1.weight`, [d[0]]), p(`${dl}1.bias`, [d[0]]));
    } else {
      y = channelNorm(y, p(`${dl}0.weight`, [d[i - 1]]), p(`${dl}0.bias`, [d[i - 1]]));
      y = conv3d(y, p(`${dl}1.weight`, [d[i], d[i - 1], ...DOWN]), p(`${dl}1.bias`, [d[i]]), {
        stride: DOWN,
      });
    }
    const ch = d[i];
    const hidden = MLP_RATIO * ch;
    for (let j = 0; j < c.depths[i]; j++) {
      const b = `stages.${i}.${j}.`;
      const l = convNext3dInflateLength(c, j);
      let z = depthwiseConv3d(
        y,
        p(`${b}dwconv.weight`, [ch, 1, l, DW_K, DW_K]),
        p(`${b}dwconv.bias`, [ch]),
        { padding: [l >> 1, DW_K >> 1, DW_K >> 1] },
      );
      z = permute(z, [0, 2, 3, 4, 1]);
      z = layerNorm(z, p(`${b}norm.weight`, [ch]), p(`${b}norm.bias`, [ch]), {
        eps: CONVNEXT_LN_EPS,
      });
      z = gelu(linear(z, p(`${b}pwconv1.weight`, [hidden, ch]), p(`${b}pwconv1.bias`, [hidden])));
      const gamma = p(`${b}gamma`, [ch]);
      const w2 = mul(p(`${b}pwconv2.weight`, [ch, hidden]), gamma.reshape([ch, 1]));
      z = linear(z, w2, mul(p(`${b}pwconv2.bias`, [ch]), gamma));
      y = add(y, permute(z, [0, 4, 1, 2, 3]));
    }
  }
  return channelNorm(y, p("norm.weight", [d[3]]), p("norm.bias", [d[3]]));
}
