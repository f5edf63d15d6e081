/**
 * SlowFast-R50 (Feichtenhofer et al. 2019) as pytorchvideo builds it (`slowfast_r50`, the
 * Kinetics-400 "8x8" model: `create_slowfast(model_depth=50,
 * slowfast_fusion_conv_kernel_size=(7, 1, 1))`), as a differentiable feature extractor: the
 * motion branch of SimpleVQA (Sun et al. 2022), which runs `blocks[0..4]` on the two pathways and
 * pools them (`blocks[5].pool`, `blocks[6].output_pool`) into a 2048-d slow and a 256-d fast
 * vector per 32-frame 224x224 clip.
 *
 * Layout (slow / fast; the fast pathway has 1/8 of the slow one's channels; `W` is the slow
 * stem's width, 64 in the released model):
 * - `blocks.0`: stems `multipathway_blocks.{0,1}` (`conv` + `norm`): (1,7,7) / (5,7,7)
 *   convolutions, stride (1,2,2), padding (0,3,3) / (2,3,3), 3 -> W / W/8 channels, batch norm,
 *   ReLU, max pool (1,3,3) stride (1,2,2) padding (0,1,1).
 * - `blocks.1`..`blocks.4`: the four ResNet stages `multipathway_blocks.{0,1}.res_blocks.<i>`
 *   ([3, 4, 6, 3] bottlenecks), each `branch2.conv_a` (temporal kernel, padding k//2: slow
 *   (1,1,1) in stages 1-2 and (3,1,1) in stages 3-4, fast (3,1,1) everywhere), `branch2.conv_b`
 *   (1,3,3) padding (0,1,1) with the stage's spatial stride on the first block (1, 2, 2, 2),
 *   `branch2.conv_c` (1,1,1), each with its `norm_a|b|c`, ReLU after a and b, and the sum with
 *   the shortcut followed by ReLU; the shortcut is `branch1_conv` (1,1,1) with the stride plus
 *   `branch1_norm` where channels or stride change (each pathway's first block of each stage),
 *   else the identity. Widths: slow inner W, 2W, 4W, 8W, out 4x that; fast 1/8 of the slow.
 * - Fast-to-slow fusion after the stem and after stages 1-3 (`blocks.<0..3>.multipathway_fusion`,
 *   `conv_fast_to_slow` + `norm`): a (7,1,1) convolution with stride (4,1,1) and padding (3,0,0)
 *   from the fast pathway's C channels to 2C, batch norm, ReLU, concatenated after the slow
 *   pathway's channels. The slow stages' inputs are therefore W + W/4, 4W + W, 8W + 2W, 16W + 4W.
 *   `blocks.4` has no fusion (an identity).
 * - `blocks.5` (pools, no parameters) and `blocks.6` (`proj`: the Kinetics-400 classifier,
 *   `[400, 2304]`) are not used; {@link readSlowFastWeights} drops `blocks.6.proj.*`.
 *
 * Every batch norm (eps 1e-5) runs in inference form, folded into its convolution on the first
 * forward pass (see `foldBatchNorm`), kept until `dispose`.
 *
 * @module
 */

import { z } from "zod";
import type { SameShape, Schema } from "../../_zod.ts";
import {
  add,
  avgPool3d,
  concat,
  conv3d,
  div,
  maxPool3d,
  mean,
  relu,
  type Size3,
  slice,
  sub,
} from "../../nn/mod.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { foldConvBn, MAX_MODEL_WIDTH, type ParamBuilder } from "./victim.ts";

/**
 * A SlowFast-R50's shape: the slow stem's width (64 in `slowfast_r50`; the fast pathway has 1/8
 * of every width, all stage widths scale with it) and the bottleneck blocks per stage.
 *
 * @example
 * ```ts
 * import { SLOWFAST_R50, type SlowFastConfig } from "./slowfast.ts";
 * const small: SlowFastConfig = { ...SLOWFAST_R50, width: 8 }; // fast stem: 1 channel
 * console.log(small.blocks); // [3, 4, 6, 3]
 * ```
 */
export type SlowFastConfig = {
  /** Channels of the slow stem (64 in SlowFast-R50); a multiple of 8 (the fast stem's 8x). */
  width: number;
  /** Bottleneck blocks in each of the four stages ([3, 4, 6, 3] in SlowFast-R50). */
  blocks: number[];
};

const slowFastConfig = z.object({
  width: z.number().int().positive().multipleOf(8).max(MAX_MODEL_WIDTH / 32),
  blocks: z.array(z.number().int().positive().max(64)).length(4),
}).strict();
const _sameConfig: SameShape<SlowFastConfig, z.output<typeof slowFastConfig>> = true;

/**
 * Validates a {@link SlowFastConfig}.
 *
 * @example
 * ```ts
 * import { SlowFastConfigSchema } from "./slowfast.ts";
 * console.log(SlowFastConfigSchema.safeParse({ width: 12, blocks: [3, 4, 6, 3] }).success); // false
 * ```
 */
export const SlowFastConfigSchema: Schema<SlowFastConfig> = slowFastConfig;

/** {@link SlowFastConfigSchema} as a zod schema, for configs that nest it (not in mod.ts). */
export const slowFastConfigZod: z.ZodType<SlowFastConfig> = slowFastConfig;

/**
 * pytorchvideo's `slowfast_r50`.
 *
 * @example
 * ```ts
 * import { SLOWFAST_R50, slowFastChannels } from "./slowfast.ts";
 * console.log(slowFastChannels(SLOWFAST_R50)); // { slow: 2048, fast: 256 }
 * ```
 */
export const SLOWFAST_R50: SlowFastConfig = { width: 64, blocks: [3, 4, 6, 3] };

/** Fast pathway channels are 1/BETA of the slow pathway's (`slowfast_channel_reduction_ratio`). */
const BETA = 8;
/** The fusion convolution's output over its input channels (`slowfast_conv_channel_fusion_ratio`). */
const FUSION_RATIO = 2;
/** pytorchvideo's BatchNorm3d epsilon. */
const BN_EPS = 1e-5;

/**
 * Fast frames per slow frame (SlowFast's alpha; SimpleVQA's `pack_pathway_output` takes T/4 slow
 * frames, the fusion convolution's temporal stride is 4).
 */
export const SLOWFAST_ALPHA = 4;

/**
 * SimpleVQA's per-channel input normalisation for SlowFast (`Normalize([0.45]*3, [0.225]*3)`).
 */
export const SLOWFAST_MEAN = 0.45;
/** See {@link SLOWFAST_MEAN}. */
export const SLOWFAST_STD = 0.225;

/**
 * Channels of the two feature maps after `blocks[4]`: 32·width (slow) and 4·width (fast), 2048
 * and 256 for SlowFast-R50.
 *
 * @example
 * ```ts
 * import { slowFastChannels } from "./slowfast.ts";
 * console.log(slowFastChannels({ width: 8, blocks: [3, 4, 6, 3] })); // { slow: 256, fast: 32 }
 * ```
 */
export function slowFastChannels(c: SlowFastConfig): { slow: number; fast: number } {
  return { slow: c.width * 32, fast: (c.width * 32) / BETA };
}

type K3 = [number, number, number];

/** One convolution with its batch norm: pytorchvideo's names and the geometry. */
interface ConvBn {
  conv: string;
  norm: string;
  cin: number;
  cout: number;
  kernel: K3;
  stride: K3;
  padding: K3;
}

/** A bottleneck block (`res_blocks.<i>`): branch2's three pairs and the optional branch1. */
interface Block {
  a: ConvBn;
  b: ConvBn;
  c: ConvBn;
  branch1: ConvBn | null;
}

interface Layout {
  /** The stems, slow then fast. */
  stems: [ConvBn, ConvBn];
  /** The fusions after the stem and after stages 1-3. */
  fusions: ConvBn[];
  /** Per stage, per pathway (slow, fast), its blocks. */
  stages: [Block[], Block[]][];
}

const half = (k: K3): K3 => [k[0] >> 1, k[1] >> 1, k[2] >> 1];

function convBn(
  conv: string,
  norm: string,
  cin: number,
  cout: number,
  kernel: K3,
  stride: K3 = [1, 1, 1],
  padding: K3 = half(kernel),
): ConvBn {
  return { conv, norm, cin, cout, kernel, stride, padding };
}

/** conv_a's temporal kernels per pathway and stage (create_slowfast's defaults). */
const CONV_A: [K3[], K3[]] = [
  [[1, 1, 1], [1, 1, 1], [3, 1, 1], [3, 1, 1]],
  [[3, 1, 1], [3, 1, 1], [3, 1, 1], [3, 1, 1]],
];
const STEM_KERNEL: [K3, K3] = [[1, 7, 7], [5, 7, 7]];
const FUSION_KERNEL: K3 = [7, 1, 1];

/** The layers of a config with pytorchvideo's names under `prefix` (create_slowfast's loops). */
function layout(c: SlowFastConfig, prefix: string): Layout {
  const p = `${prefix}blocks.`;
  const stemOut = [c.width, Math.floor(c.width / BETA)];
  const stems = [0, 1].map((i) =>
    convBn(
      `${p}0.multipathway_blocks.${i}.conv`,
      `${p}0.multipathway_blocks.${i}.norm`,
      3,
      stemOut[i],
      STEM_KERNEL[i],
      [1, 2, 2],
    )
  ) as [ConvBn, ConvBn];
  const fusion = (dim: number, idx: number) => {
    const cin = Math.floor(dim / BETA);
    return convBn(
      `${p}${idx}.multipathway_fusion.conv_fast_to_slow`,
      `${p}${idx}.multipathway_fusion.norm`,
      cin,
      cin * FUSION_RATIO,
      FUSION_KERNEL,
      [SLOWFAST_ALPHA, 1, 1],
    );
  };
  const fusions = [fusion(c.width, 0)];
  const stages: [Block[], Block[]][] = [];
  let dimIn = c.width;
  let dimOut = dimIn * 4;
  c.blocks.forEach((depth, idx) => {
    const cin = [dimIn + Math.floor(dimIn * FUSION_RATIO / BETA), Math.floor(dimIn / BETA)];
    const inner = [dimOut / 4, Math.floor(dimOut / 4 / BETA)];
    const cout = [dimOut, Math.floor(dimOut / BETA)];
    const s = idx === 0 ? 1 : 2;
    const pathways = [0, 1].map((pw) => {
      const blocks: Block[] = [];
      for (let i = 0; i < depth; i++) {
        const q = `${p}${idx + 1}.multipathway_blocks.${pw}.res_blocks.${i}.`;
        const bin = i === 0 ? cin[pw] : cout[pw];
        const stride = i === 0 ? s : 1;
        blocks.push({
          a: convBn(`${q}branch2.conv_a`, `${q}branch2.norm_a`, bin, inner[pw], CONV_A[pw][idx]),
          b: convBn(
            `${q}branch2.conv_b`,
            `${q}branch2.norm_b`,
            inner[pw],
            inner[pw],
            [1, 3, 3],
            [1, stride, stride],
          ),
          c: convBn(`${q}branch2.conv_c`, `${q}branch2.norm_c`, inner[pw], cout[pw], [1, 1, 1]),
          branch1: bin !== cout[pw] || stride !== 1
            ? convBn(
              `${q}branch1_conv`,
              `${q}branch1_norm`,
              bin,
              cout[pw],
              [1, 1, 1],
              [1, stride, stride],
            )
            : null,
        });
      }
      return blocks;
    }) as [Block[], Block[]];
    stages.push(pathways);
    if (idx < 3) fusions.push(fusion(dimOut, idx + 1));
    dimIn = dimOut;
    dimOut *= 2;
  });
  return { stems, fusions, stages };
}

function allConvs(l: Layout): ConvBn[] {
  return [
    ...l.stems,
    ...l.fusions,
    ...l.stages.flatMap((st) =>
      st.flatMap((blocks) =>
        blocks.flatMap((b) => [b.a, b.b, b.c, ...(b.branch1 ? [b.branch1] : [])])
      )
    ),
  ];
}

/**
 * Adds a SlowFast's parameters to `pb` under `prefix`, with pytorchvideo's names
 * (`blocks.0.multipathway_blocks.0.conv.weight`, `blocks.0.multipathway_blocks.0.norm.weight`,
 * `.bias`, `.running_mean`, `.running_var`, `blocks.0.multipathway_fusion.conv_fast_to_slow.weight`,
 * `blocks.1.multipathway_blocks.1.res_blocks.0.branch2.conv_a.weight`,
 * `...res_blocks.0.branch1_conv.weight`, `...branch1_norm.*`, ...) and shapes (3-D weights
 * `[out, in, kt, kh, kw]`, no biases). Not the classifier `blocks.6.proj` (unused here). Random
 * weights: Kaiming-uniform convolutions, random batch-norm statistics.
 *
 * @example
 * ```ts
 * import { ParamBuilder } from "./victim.ts";
 * import { buildSlowFastParams, SLOWFAST_R50 } from "./slowfast.ts";
 * const pb = new ParamBuilder(1, { shapesOnly: true });
 * buildSlowFastParams(pb, "", SLOWFAST_R50);
 * console.log(pb.shapes["blocks.0.multipathway_fusion.conv_fast_to_slow.weight"]); // [16, 8, 7, 1, 1]
 * console.log(Object.keys(pb.shapes).length); // 550 (662 in the file, less num_batches_tracked and proj)
 * ```
 */
export function buildSlowFastParams(pb: ParamBuilder, prefix: string, c: SlowFastConfig): void {
  for (const l of allConvs(layout(c, prefix))) {
    pb.conv3dWeight(`${l.conv}.weight`, l.cin, l.cout, l.kernel);
    pb.batchNorm(l.norm, l.cout);
  }
}

/**
 * The slow pathway's frame indices for `t` fast frames: SimpleVQA's `pack_pathway_output`,
 * `torch.linspace(0, t - 1, t // alpha).long()` (float32 linspace as torch computes it, from both
 * ends, then truncated).
 *
 * @example
 * ```ts
 * import { slowFrameIndices } from "./slowfast.ts";
 * console.log(slowFrameIndices(32)); // [0, 4, 8, 13, 17, 22, 26, 31]
 * ```
 */
export function slowFrameIndices(t: number, alpha = SLOWFAST_ALPHA): number[] {
  const steps = Math.floor(t / alpha);
  if (!Number.isInteger(t) || t < 1 || steps < 1) {
    throw new RangeError(`slowFrameIndices: needs at least ${alpha} frames, got ${t}`);
  }
  if (steps === 1) return [0];
  const end = t - 1;
  const step = Math.fround(end / (steps - 1));
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    // float32 throughout, the first half from the start, the rest from the end (as torch).
    const v = i < Math.floor(steps / 2)
      ? Math.fround(i * step)
      : Math.fround(end - Math.fround((steps - 1 - i) * step));
    out.push(Math.trunc(v));
  }
  return out;
}

/**
 * The slow pathway of a fast-pathway clip `[N, C, T, H, W]`: the frames
 * {@link slowFrameIndices} picks, `[N, C, T/alpha, H, W]`, by slices and one concat
 * (differentiable: the gradient reaches the fast clip).
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../../tensor/tensor.ts";
 * import { slowPathway } from "./slowfast.ts";
 * await initGpu();
 * const slow = slowPathway(full([1, 3, 32, 8, 8], 0.5)); // [1, 3, 8, 8, 8]
 * ```
 */
export function slowPathway(fast: Tensor, alpha = SLOWFAST_ALPHA): Tensor {
  if (fast.rank !== 5) {
    throw new RangeError(`slowPathway: expects [N, C, T, H, W], got [${fast.shape.join(", ")}]`);
  }
  const idx = slowFrameIndices(fast.shape[2], alpha);
  const frames = idx.map((i) => slice(fast, { axis: 2, start: i, end: i + 1 }));
  return frames.length === 1 ? frames[0] : concat(frames, 2);
}

/**
 * Frames in [0, 1] `[N, 3, T, H, W]` normalised as SimpleVQA's SlowFast input,
 * `(x - 0.45) / 0.225` on every channel. Differentiable.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../../tensor/tensor.ts";
 * import { slowFastNormalize } from "./slowfast.ts";
 * await initGpu();
 * const x = slowFastNormalize(full([1, 3, 4, 8, 8], 0.45)); // zeros
 * ```
 */
export function slowFastNormalize(frames: Tensor): Tensor {
  return div(sub(frames, SLOWFAST_MEAN), SLOWFAST_STD);
}

/** The two feature maps after `blocks[4]`. */
export interface SlowFastMaps {
  /** Slow pathway `[N, 32·width, Ts, H/32, W/32]`. */
  slow: Tensor;
  /** Fast pathway `[N, 4·width, Tf, H/32, W/32]`. */
  fast: Tensor;
}

/** Options of {@link simpleVqaPool}. */
export interface SimpleVqaPoolOptions {
  /** The slow map's average pool window (`blocks[5].pool[0]`); default (8, 7, 7). */
  slowKernel?: Size3;
  /** The fast map's average pool window (`blocks[5].pool[1]`); default (32, 7, 7). */
  fastKernel?: Size3;
}

/**
 * SimpleVQA's motion features from the two maps: `AvgPool3d(kernel, stride 1)` on each (the
 * released model's head pools, (8,7,7) slow and (32,7,7) fast), then the global mean
 * (`AdaptiveAvgPool3d(1)`): `[N, 32·width]` and `[N, 4·width]` (2048 and 256 at full width; at
 * 32 frames of 224x224 the windows cover the whole maps). Differentiable.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../../tensor/tensor.ts";
 * import { simpleVqaPool } from "./slowfast.ts";
 * await initGpu();
 * const maps = { slow: full([1, 2048, 8, 7, 7], 1), fast: full([1, 256, 32, 7, 7], 1) };
 * const { slow, fast } = simpleVqaPool(maps); // [1, 2048], [1, 256]
 * ```
 */
export function simpleVqaPool(
  maps: SlowFastMaps,
  options: SimpleVqaPoolOptions = {},
): { slow: Tensor; fast: Tensor } {
  const pool = (x: Tensor, kernel: Size3) => {
    const y = avgPool3d(x, { kernel, stride: 1 });
    return mean(y, { axes: [2, 3, 4] });
  };
  return {
    slow: pool(maps.slow, options.slowKernel ?? [8, 7, 7]),
    fast: pool(maps.fast, options.fastKernel ?? [32, 7, 7]),
  };
}

/** A convolution with its batch norm folded in. */
interface Folded {
  weight: Tensor;
  bias: Tensor;
  stride: K3;
  padding: K3;
}

/**
 * SlowFast-R50's backbone over parameters held elsewhere (by name, see
 * {@link buildSlowFastParams}): `features(slow, fast)` maps the normalised pathways
 * `[N,3,Ts,H,W]` and `[N,3,Tf,H,W]` (Tf = 4·Ts, e.g. from {@link slowPathway}) to the maps after
 * `blocks[4]`, `[N,32·width,Ts,H/32,W/32]` and `[N,4·width,Tf,H/32,W/32]` (sizes rounded up at
 * each stride). Differentiable with respect to both inputs.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../../tensor/tensor.ts";
 * import { ParamBuilder } from "./victim.ts";
 * import { buildSlowFastParams, SlowFast, slowPathway } from "./slowfast.ts";
 * await initGpu();
 * const c = { width: 8, blocks: [1, 1, 1, 1] };
 * const pb = new ParamBuilder(1);
 * buildSlowFastParams(pb, "", c);
 * const net = new SlowFast(c, pb.params, "");
 * const fast = full([1, 3, 8, 32, 32], 0.1);
 * const { slow, fast: f } = net.features(slowPathway(fast), fast); // [1,256,2,1,1], [1,32,8,1,1]
 * net.dispose();
 * ```
 */
export class SlowFast {
  #layout: Layout;
  #params: Record<string, Tensor>;
  #folded: Map<string, Folded> | null = null;

  /** A backbone reading `params` under `prefix`. */
  constructor(config: SlowFastConfig, params: Record<string, Tensor>, prefix: string) {
    this.#layout = layout(config, prefix);
    this.#params = params;
  }

  /** The folded convolutions, computed on first use (no gradient). */
  #fold(): Map<string, Folded> {
    if (this.#folded) return this.#folded;
    const p = this.#params;
    const folded = new Map<string, Folded>();
    for (const l of allConvs(this.#layout)) {
      const f = foldConvBn(p, `${l.conv}.weight`, l.norm, BN_EPS);
      folded.set(l.conv, { ...f, stride: l.stride, padding: l.padding });
    }
    this.#folded = folded;
    return folded;
  }

  #conv(x: Tensor, l: ConvBn, folded: Map<string, Folded>): Tensor {
    const f = folded.get(l.conv)!;
    return conv3d(x, f.weight, f.bias, { stride: f.stride, padding: f.padding });
  }

  #stem(x: Tensor, l: ConvBn, folded: Map<string, Folded>): Tensor {
    const y = relu(this.#conv(x, l, folded));
    return maxPool3d(y, { kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1] });
  }

  #fuse(slow: Tensor, fast: Tensor, l: ConvBn, folded: Map<string, Folded>): Tensor {
    const f = relu(this.#conv(fast, l, folded));
    if (f.shape[2] !== slow.shape[2]) {
      throw new RangeError(
        `SlowFast: the fast pathway's ${fast.shape[2]} frames fuse into ${f.shape[2]} slow ` +
          `frames, but the slow pathway has ${slow.shape[2]}; give ${SLOWFAST_ALPHA}x as many ` +
          `fast frames as slow ones`,
      );
    }
    return concat([slow, f], 1);
  }

  #block(x: Tensor, b: Block, folded: Map<string, Folded>): Tensor {
    let z = relu(this.#conv(x, b.a, folded));
    z = relu(this.#conv(z, b.b, folded));
    z = this.#conv(z, b.c, folded);
    const skip = b.branch1 ? this.#conv(x, b.branch1, folded) : x;
    return relu(add(skip, z));
  }

  /**
   * The two maps after `blocks[4]` of the normalised slow `[N,3,Ts,H,W]` and fast
   * `[N,3,Tf,H,W]` pathways.
   */
  features(slow: Tensor, fast: Tensor): SlowFastMaps {
    if (slow.rank !== 5 || fast.rank !== 5 || slow.shape[1] !== 3 || fast.shape[1] !== 3) {
      throw new RangeError(
        `SlowFast.features: expects two [N, 3, T, H, W] clips, got [${slow.shape.join(", ")}] ` +
          `and [${fast.shape.join(", ")}]`,
      );
    }
    const [ns, , , hs, ws] = slow.shape;
    const [nf, , , hf, wf] = fast.shape;
    if (ns !== nf || hs !== hf || ws !== wf) {
      throw new RangeError(
        `SlowFast.features: the pathways must share N, H and W, got [${slow.shape.join(", ")}] ` +
          `and [${fast.shape.join(", ")}]`,
      );
    }
    const folded = this.#fold();
    const { stems, fusions, stages } = this.#layout;
    let s = this.#stem(slow, stems[0], folded);
    let f = this.#stem(fast, stems[1], folded);
    s = this.#fuse(s, f, fusions[0], folded);
    stages.forEach(([slowBlocks, fastBlocks], idx) => {
      for (const b of slowBlocks) s = this.#block(s, b, folded);
      for (const b of fastBlocks) f = this.#block(f, b, folded);
      if (idx < fusions.length - 1) s = this.#fuse(s, f, fusions[idx + 1], folded);
    });
    return { slow: s, fast: f };
  }

  /** Frees the folded weights (the parameters belong to the caller). */
  dispose(): void {
    for (const f of this.#folded?.values() ?? []) {
      f.weight.dispose();
      f.bias.dispose();
    }
    this.#folded = null;
  }
}

/**
 * Whether a state_dict's names are a pytorchvideo SlowFast's (with no prefix).
 *
 * @example
 * ```ts
 * import { isPytorchvideoSlowFast } from "./slowfast.ts";
 * console.log(isPytorchvideoSlowFast(["conv1.weight", "fc.weight"])); // false
 * ```
 */
export function isPytorchvideoSlowFast(names: readonly string[]): boolean {
  return names.includes("blocks.0.multipathway_blocks.0.conv.weight") &&
    names.includes("blocks.0.multipathway_fusion.conv_fast_to_slow.weight");
}
