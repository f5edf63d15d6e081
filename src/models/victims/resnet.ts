/**
 * The ResNet backbone of the published CNN-family victims (VSFA, MDTVSFA): torchvision's
 * ResNet-50 (He et al. 2016, the "v1.5" layout torchvision ships: the stride of a bottleneck on
 * its 3x3 convolution) up to `layer4` (VSFA's "res5c"), with torchvision's parameter names, so
 * that the ImageNet weights file torchvision publishes loads as it is.
 *
 * The base width (64 in ResNet-50) and the blocks per stage ([3, 4, 6, 3]) are config fields,
 * so that a parity fixture can use the same architecture and loader at a reduced width.
 *
 * Batch normalisation runs in inference form, folded into the preceding convolution: the
 * folded weights are computed once, on the first forward pass, from the parameters as they are
 * then (a published victim is frozen once loaded), and kept until `dispose`.
 *
 * @module
 */

import { z } from "zod";
import { add, conv2d, div, maxPool2d, relu, sub } from "../../nn/mod.ts";
import { type Tensor, tensor } from "../../tensor/tensor.ts";
import { foldConvBn, MAX_MODEL_WIDTH, type ParamBuilder } from "./victim.ts";

/**
 * A ResNet backbone's shape: bottleneck blocks (expansion 4), as torchvision's `resnet50`
 * with `width` 64 and `blocks` [3, 4, 6, 3].
 *
 * @example
 * ```ts
 * import { RESNET50, type ResNetConfig } from "./resnet.ts";
 * const small: ResNetConfig = { ...RESNET50, width: 8 };
 * console.log(small.blocks); // [3, 4, 6, 3]
 * ```
 */
export type ResNetConfig = {
  /** Channels of the stem and of the first stage's bottleneck (64 in ResNet-50). */
  width: number;
  /** Bottleneck blocks in each of the four stages ([3, 4, 6, 3] in ResNet-50). */
  blocks: number[];
};

/** Validates a {@link ResNetConfig}. */
export const ResNetConfigSchema: z.ZodType<ResNetConfig> = z.object({
  width: z.number().int().positive().max(MAX_MODEL_WIDTH / 32),
  blocks: z.array(z.number().int().positive().max(64)).length(4),
}).strict();

/** torchvision's ResNet-50. */
export const RESNET50: ResNetConfig = { width: 64, blocks: [3, 4, 6, 3] };

/** Output channels of a bottleneck: 4 times its width. */
const EXPANSION = 4;

/** torchvision's BatchNorm2d epsilon. */
export const BN_EPS = 1e-5;

/**
 * Channels of the backbone's last feature map (`layer4`): 2048 for ResNet-50.
 *
 * @example
 * ```ts
 * import { RESNET50, resnetChannels } from "./resnet.ts";
 * console.log(resnetChannels(RESNET50)); // 2048
 * ```
 */
export function resnetChannels(c: ResNetConfig): number {
  return c.width * 8 * EXPANSION;
}

/** One convolution with its batch norm: torchvision's names and the conv's geometry. */
interface ConvBn {
  conv: string;
  bn: string;
  stride: number;
  padding: number;
}

/** A bottleneck block: three conv-bn pairs and an optional downsampling pair. */
interface Block {
  convs: [ConvBn, ConvBn, ConvBn];
  downsample: ConvBn | null;
}

/** The layers of a config, with torchvision's parameter names under `prefix`. */
function layout(c: ResNetConfig, prefix: string): { stem: ConvBn; blocks: Block[] } {
  const stem = { conv: `${prefix}conv1`, bn: `${prefix}bn1`, stride: 2, padding: 3 };
  const blocks: Block[] = [];
  c.blocks.forEach((count, stage) => {
    for (let i = 0; i < count; i++) {
      const p = `${prefix}layer${stage + 1}.${i}.`;
      const stride = i === 0 && stage > 0 ? 2 : 1;
      blocks.push({
        convs: [
          { conv: `${p}conv1`, bn: `${p}bn1`, stride: 1, padding: 0 },
          { conv: `${p}conv2`, bn: `${p}bn2`, stride, padding: 1 },
          { conv: `${p}conv3`, bn: `${p}bn3`, stride: 1, padding: 0 },
        ],
        downsample: i === 0
          ? { conv: `${p}downsample.0`, bn: `${p}downsample.1`, stride, padding: 0 }
          : null,
      });
    }
  });
  return { stem, blocks };
}

/**
 * Adds a backbone's parameters to `pb` under `prefix`, with torchvision's names
 * (`conv1.weight`, `bn1.weight`, `bn1.bias`, `bn1.running_mean`, `bn1.running_var`,
 * `layer1.0.conv1.weight`, ..., `layer1.0.downsample.0.weight`, `layer1.0.downsample.1.*`). The
 * convolutions have no bias. Random weights: Kaiming-uniform convolutions and random batch-norm
 * statistics (not the identity), so that a parity test exercises every term.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { ParamBuilder } from "./victim.ts";
 * import { buildResNetParams } from "./resnet.ts";
 * await initGpu();
 * const pb = new ParamBuilder(1, { shapesOnly: true });
 * buildResNetParams(pb, "backbone.", { width: 8, blocks: [1, 1, 1, 1] });
 * console.log(pb.shapes["backbone.layer4.0.conv3.weight"]); // [256, 64, 1, 1]
 * ```
 */
export function buildResNetParams(pb: ParamBuilder, prefix: string, c: ResNetConfig): void {
  const { stem, blocks } = layout(c, prefix);
  pb.convWeight(`${stem.conv}.weight`, 3, c.width, 7);
  pb.batchNorm(stem.bn, c.width);
  let cin = c.width;
  let stageWidth = c.width;
  let b = 0;
  c.blocks.forEach((count, stage) => {
    stageWidth = c.width * 2 ** stage;
    const cout = stageWidth * EXPANSION;
    for (let i = 0; i < count; i++, b++) {
      const block = blocks[b];
      const [c1, c2, c3] = block.convs;
      pb.convWeight(`${c1.conv}.weight`, cin, stageWidth, 1);
      pb.batchNorm(c1.bn, stageWidth);
      pb.convWeight(`${c2.conv}.weight`, stageWidth, stageWidth, 3);
      pb.batchNorm(c2.bn, stageWidth);
      pb.convWeight(`${c3.conv}.weight`, stageWidth, cout, 1);
      pb.batchNorm(c3.bn, cout);
      if (block.downsample) {
        pb.convWeight(`${block.downsample.conv}.weight`, cin, cout, 1);
        pb.batchNorm(block.downsample.bn, cout);
      }
      cin = cout;
    }
  });
}

/** ImageNet's channel means and standard deviations (torchvision's `Normalize`). */
export const IMAGENET_MEAN: readonly number[] = [0.485, 0.456, 0.406];
/** See {@link IMAGENET_MEAN}. */
export const IMAGENET_STD: readonly number[] = [0.229, 0.224, 0.225];

/**
 * Frames in [0, 1] normalised as torchvision's `Normalize(IMAGENET_MEAN, IMAGENET_STD)`:
 * `[N,3,H,W] -> [N,3,H,W]`. Differentiable.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../../tensor/tensor.ts";
 * import { imagenetNormalize } from "./resnet.ts";
 * await initGpu();
 * const x = imagenetNormalize(full([1, 3, 4, 4], 0.5));
 * ```
 */
export function imagenetNormalize(frames: Tensor): Tensor {
  const m = tensor(new Float32Array(IMAGENET_MEAN), [1, 3, 1, 1]);
  const s = tensor(new Float32Array(IMAGENET_STD), [1, 3, 1, 1]);
  return div(sub(frames, m), s);
}

/** A convolution with its batch norm folded in. */
interface Folded {
  weight: Tensor;
  bias: Tensor;
  stride: number;
  padding: number;
}

/**
 * A ResNet backbone over parameters held elsewhere (the victim's, by name): `features(x)` maps
 * normalised frames `[N,3,H,W]` to `layer4`'s map `[N, 32·width, ceil(H/32), ceil(W/32)]`
 * (for H and W not too small). Differentiable with respect to the input.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../../tensor/tensor.ts";
 * import { ParamBuilder } from "./victim.ts";
 * import { buildResNetParams, ResNetBackbone } from "./resnet.ts";
 * await initGpu();
 * const c = { width: 4, blocks: [1, 1, 1, 1] };
 * const pb = new ParamBuilder(1);
 * buildResNetParams(pb, "", c);
 * const net = new ResNetBackbone(c, pb.params, "");
 * const y = net.features(full([1, 3, 64, 64], 0.1)); // [1, 128, 2, 2]
 * net.dispose();
 * ```
 */
export class ResNetBackbone {
  #config: ResNetConfig;
  #params: Record<string, Tensor>;
  #prefix: string;
  #folded: Map<string, Folded> | null = null;

  /** A backbone reading `params` under `prefix` (see {@link buildResNetParams}). */
  constructor(config: ResNetConfig, params: Record<string, Tensor>, prefix: string) {
    this.#config = config;
    this.#params = params;
    this.#prefix = prefix;
  }

  /** The folded convolutions, computed on first use (outside any tidy scope, no gradient). */
  #fold(): Map<string, Folded> {
    if (this.#folded) return this.#folded;
    const p = this.#params;
    const folded = new Map<string, Folded>();
    const { stem, blocks } = layout(this.#config, this.#prefix);
    const all = [
      stem,
      ...blocks.flatMap((b) => [...b.convs, ...(b.downsample ? [b.downsample] : [])]),
    ];
    for (const l of all) {
      const f = foldConvBn(p, `${l.conv}.weight`, l.bn, BN_EPS);
      folded.set(l.conv, { ...f, stride: l.stride, padding: l.padding });
    }
    this.#folded = folded;
    return folded;
  }

  #conv(x: Tensor, l: ConvBn, folded: Map<string, Folded>): Tensor {
    const f = folded.get(l.conv)!;
    return conv2d(x, f.weight, f.bias, { stride: f.stride, padding: f.padding });
  }

  /** `layer4`'s feature map of normalised frames `[N,3,H,W]`. */
  features(x: Tensor): Tensor {
    return this.stages(x)[3];
  }

  /**
   * The four stages' outputs (`layer1` to `layer4`) of normalised frames `[N,3,H,W]`, as
   * SimpleVQA pools `layer2` to `layer4`.
   */
  stages(x: Tensor): Tensor[] {
    const folded = this.#fold();
    const { stem, blocks } = layout(this.#config, this.#prefix);
    let y = relu(this.#conv(x, stem, folded));
    y = maxPool2d(y, { kernel: 3, stride: 2, padding: 1 });
    const out: Tensor[] = [];
    let b = 0;
    for (const count of this.#config.blocks) {
      for (let i = 0; i < count; i++, b++) {
        const block = blocks[b];
        const [c1, c2, c3] = block.convs;
        let z = relu(this.#conv(y, c1, folded));
        z = relu(this.#conv(z, c2, folded));
        z = this.#conv(z, c3, folded);
        const skip = block.downsample ? this.#conv(y, block.downsample, folded) : y;
        y = relu(add(z, skip));
      }
      out.push(y);
    }
    return out;
  }

  /** Frees the folded weights (the parameters belong to the victim). */
  dispose(): void {
    for (const f of this.#folded?.values() ?? []) {
      f.weight.dispose();
      f.bias.dispose();
    }
    this.#folded = null;
  }
}
