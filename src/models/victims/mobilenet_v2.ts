/**
 * Keras' MobileNetV2 (Sandler et al. 2018; `tf.keras.applications.MobileNetV2`) as a feature
 * extractor up to its last 1x1 convolution (`out_relu`, 1280 channels at width 1), with Keras'
 * layer names, for a VSFA-style victim on pretrained features. The weights come from a
 * TensorFlow.js export of the Keras model (see `mobileNetV2FromKeras`), such as the one the npm
 * package `nsfwjs` ships.
 *
 * The layout is Keras': a stride-2 3x3 stem (`Conv1`, after `ZeroPadding2D((0, 1), (0, 1))`),
 * then inverted residual blocks (1x1 expansion by t, 3x3 depthwise, 1x1 linear projection, a
 * residual add when the stride is 1 and the channels match) with (t, c, n, s) = (1, 16, 1, 1),
 * (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
 * and `Conv_1` (1x1 to 1280). Every convolution is followed by batch normalisation (epsilon
 * 1e-3, Keras') and, except the projections, ReLU6. Stride-2 depthwise convolutions are preceded
 * by the same zero padding as the stem (one row below and one column to the right, what Keras'
 * `correct_pad` gives for even sizes) and use no padding of their own; stride-1 ones pad by 1
 * on every side ("same"). Batch norms are folded into their convolutions on the first forward
 * pass (as resnet.ts does).
 *
 * @module
 */

import { z } from "zod";
import { add, clamp, conv2d, pad } from "../../nn/mod.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import type { TensorData } from "../../io/safetensors.ts";
import { foldConvBn, type ParamBuilder } from "./victim.ts";

/** The blocks' (expansion, output channels at width 1, repeats, first stride). */
const STAGES: readonly [number, number, number, number][] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

/**
 * A MobileNetV2's width: Keras' `alpha` (1 for the published model; a smaller one for tests).
 *
 * @example
 * ```ts
 * import { type MobileNetV2Config } from "./mobilenet_v2.ts";
 * const c: MobileNetV2Config = { alpha: 1 };
 * ```
 */
export type MobileNetV2Config = {
  /** Width multiplier (Keras' alpha). */
  alpha: number;
};

/** Validates a {@link MobileNetV2Config}. */
export const MobileNetV2ConfigSchema: z.ZodType<MobileNetV2Config> = z.object({
  alpha: z.number().positive().max(4),
}).strict();

/** Keras' `_make_divisible`: the nearest multiple of `d`, not below 90% of `v`. */
function divisible(v: number, d = 8): number {
  let n = Math.max(d, Math.floor(v + d / 2) - (Math.floor(v + d / 2) % d));
  if (n < 0.9 * v) n += d;
  return n;
}

/** One convolution with its batch norm and what follows it. */
interface Layer {
  /** The convolution's Keras name (and ours). */
  conv: string;
  /** Its batch norm's Keras name. */
  bn: string;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  depthwise: boolean;
  /** ReLU6 after the batch norm (all but the projections). */
  relu6: boolean;
}

/** The network as a list of blocks; `residual` adds the block's input to its output. */
function layout(c: MobileNetV2Config): { layers: Layer[][]; residual: boolean[]; out: number } {
  const first = divisible(32 * c.alpha);
  const layers: Layer[][] = [[{
    conv: "Conv1",
    bn: "bn_Conv1",
    cin: 3,
    cout: first,
    k: 3,
    stride: 2,
    depthwise: false,
    relu6: true,
  }]];
  const residual = [false];
  let cin = first;
  let id = 0;
  for (const [t, ch, n, s] of STAGES) {
    const cout = divisible(Math.trunc(ch * c.alpha)); // Keras: int(filters * alpha) first
    for (let i = 0; i < n; i++, id++) {
      const stride = i === 0 ? s : 1;
      const p = id === 0 ? "expanded_conv" : `block_${id}`;
      const block: Layer[] = [];
      const mid = cin * t;
      if (id !== 0) {
        block.push({
          conv: `${p}_expand`,
          bn: `${p}_expand_BN`,
          cin,
          cout: mid,
          k: 1,
          stride: 1,
          depthwise: false,
          relu6: true,
        });
      }
      block.push({
        conv: `${p}_depthwise`,
        bn: `${p}_depthwise_BN`,
        cin: mid,
        cout: mid,
        k: 3,
        stride,
        depthwise: true,
        relu6: true,
      });
      block.push({
        conv: `${p}_project`,
        bn: `${p}_project_BN`,
        cin: mid,
        cout,
        k: 1,
        stride: 1,
        depthwise: false,
        relu6: false,
      });
      layers.push(block);
      residual.push(stride === 1 && cin === cout);
      cin = cout;
    }
  }
  const last = c.alpha > 1 ? divisible(1280 * c.alpha) : 1280;
  layers.push([{
    conv: "Conv_1",
    bn: "Conv_1_bn",
    cin,
    cout: last,
    k: 1,
    stride: 1,
    depthwise: false,
    relu6: true,
  }]);
  residual.push(false);
  return { layers, residual, out: last };
}

/**
 * Channels of the feature map (`out_relu`): 1280 at alpha 1.
 *
 * @example
 * ```ts
 * import { mobileNetV2Channels } from "./mobilenet_v2.ts";
 * console.log(mobileNetV2Channels({ alpha: 1 })); // 1280
 * ```
 */
export function mobileNetV2Channels(c: MobileNetV2Config): number {
  return layout(c).out;
}

/** Our shape of a layer's weight: `[out, in, k, k]`, or `[C, 1, k, k]` for a depthwise one. */
function weightShape(l: Layer): number[] {
  return l.depthwise ? [l.cout, 1, l.k, l.k] : [l.cout, l.cin, l.k, l.k];
}

/**
 * Adds a MobileNetV2's parameters to `pb` under `prefix`: `<conv>.weight` in our layout
 * (`[out, in, k, k]`; `[C, 1, 3, 3]` depthwise) and `<bn>.weight/.bias/.running_mean/
 * .running_var`, with Keras' layer names (`Conv1`, `bn_Conv1`, `block_3_depthwise`, ...).
 *
 * @example
 * ```ts
 * import { ParamBuilder } from "./victim.ts";
 * import { buildMobileNetV2Params } from "./mobilenet_v2.ts";
 * const pb = new ParamBuilder(1, { shapesOnly: true });
 * buildMobileNetV2Params(pb, "backbone.", { alpha: 1 });
 * console.log(pb.shapes["backbone.block_1_depthwise.weight"]); // [96, 1, 3, 3]
 * ```
 */
export function buildMobileNetV2Params(
  pb: ParamBuilder,
  prefix: string,
  c: MobileNetV2Config,
): void {
  for (const block of layout(c).layers) {
    for (const l of block) {
      const [o, i, k] = weightShape(l);
      pb.convWeight(`${prefix}${l.conv}.weight`, i, o, k);
      pb.batchNorm(`${prefix}${l.bn}`, l.cout);
    }
  }
}

/**
 * Our tensors (names as {@link buildMobileNetV2Params} makes them, without a prefix) from a
 * Keras MobileNetV2's weights by their Keras names (`Conv1/kernel` `[kh, kw, in, out]`,
 * `block_1_depthwise/depthwise_kernel` `[kh, kw, C, 1]`, `bn_Conv1/gamma`, `/beta`,
 * `/moving_mean`, `/moving_variance`), transposed into our layout. Weights of other layers
 * (a classifier head) are left out; a missing or misshapen one is an error naming it.
 *
 * @example
 * ```ts ignore
 * import { readTfjsWeights } from "../../io/tfjs.ts";
 * import { mobileNetV2FromKeras } from "./mobilenet_v2.ts";
 * const ours = mobileNetV2FromKeras(await readTfjsWeights("model.json"), { alpha: 1 });
 * ```
 */
export function mobileNetV2FromKeras(
  keras: Record<string, TensorData>,
  c: MobileNetV2Config,
): Record<string, TensorData> {
  const out: Record<string, TensorData> = {};
  const get = (name: string, shape: number[]) => {
    const t = keras[name];
    if (!t) throw new Error(`MobileNetV2: the weights have no '${name}'`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`MobileNetV2: '${name}' is [${t.shape}], expected [${shape}]`);
    }
    return t.data;
  };
  for (const block of layout(c).layers) {
    for (const l of block) {
      const { k, cin, cout } = l;
      const src = l.depthwise
        ? get(`${l.conv}/depthwise_kernel`, [k, k, cin, 1])
        : get(`${l.conv}/kernel`, [k, k, cin, cout]);
      const shape = weightShape(l);
      const w = new Float32Array(shape.reduce((a, d) => a * d, 1));
      const ci = l.depthwise ? 1 : cin;
      for (let o = 0; o < cout; o++) {
        for (let i = 0; i < ci; i++) {
          for (let y = 0; y < k; y++) {
            for (let x = 0; x < k; x++) {
              // Keras [kh, kw, in, out] (depthwise: [kh, kw, C, 1], channel o on the "in" axis).
              const from = l.depthwise
                ? ((y * k + x) * cin + o)
                : (((y * k + x) * cin + i) * cout + o);
              w[((o * ci + i) * k + y) * k + x] = src[from];
            }
          }
        }
      }
      out[`${l.conv}.weight`] = { shape, data: w };
      const bn = (key: string, ours: string) =>
        out[`${l.bn}.${ours}`] = { shape: [cout], data: get(`${l.bn}/${key}`, [cout]) };
      bn("gamma", "weight");
      bn("beta", "bias");
      bn("moving_mean", "running_mean");
      bn("moving_variance", "running_var");
    }
  }
  return out;
}

/** Keras' BatchNormalization epsilon. */
export const KERAS_BN_EPS = 1e-3;

/** A convolution with its batch norm folded in. */
interface Folded {
  layer: Layer;
  weight: Tensor;
  bias: Tensor;
}

/** Zero padding of one row below and one column to the right (Keras' `correct_pad`). */
function padBottomRight(x: Tensor): Tensor {
  return pad(x, [[0, 0], [0, 0], [0, 1], [0, 1]]);
}

/**
 * A MobileNetV2 over parameters held elsewhere (the victim's, by name under `prefix`):
 * `features(x)` maps frames `[N,3,H,W]` (scaled as the weights expect: [0, 1] for nsfwjs') to
 * `out_relu` `[N, 1280, ~H/32, ~W/32]`. Differentiable with respect to the input.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../../tensor/tensor.ts";
 * import { ParamBuilder } from "./victim.ts";
 * import { buildMobileNetV2Params, MobileNetV2 } from "./mobilenet_v2.ts";
 * await initGpu();
 * const pb = new ParamBuilder(1);
 * buildMobileNetV2Params(pb, "", { alpha: 0.35 });
 * const net = new MobileNetV2({ alpha: 0.35 }, pb.params, "");
 * const y = net.features(full([1, 3, 64, 64], 0.5)); // [1, 1280, 2, 2]
 * net.dispose();
 * ```
 */
export class MobileNetV2 {
  #config: MobileNetV2Config;
  #params: Record<string, Tensor>;
  #prefix: string;
  #folded: Folded[][] | null = null;

  /** A network reading `params` under `prefix` (see {@link buildMobileNetV2Params}). */
  constructor(config: MobileNetV2Config, params: Record<string, Tensor>, prefix: string) {
    this.#config = config;
    this.#params = params;
    this.#prefix = prefix;
  }

  #fold(): Folded[][] {
    if (this.#folded) return this.#folded;
    const p = this.#params;
    const q = this.#prefix;
    this.#folded = layout(this.#config).layers.map((block) =>
      block.map((l) => ({
        layer: l,
        ...foldConvBn(p, `${q}${l.conv}.weight`, `${q}${l.bn}`, KERAS_BN_EPS),
      }))
    );
    return this.#folded;
  }

  /** `out_relu`'s feature map of frames `[N,3,H,W]`. */
  features(x: Tensor): Tensor {
    const folded = this.#fold();
    const { residual } = layout(this.#config);
    let y = x;
    folded.forEach((block, b) => {
      const input = y;
      for (const { layer: l, weight, bias } of block) {
        const stride2 = l.stride === 2;
        const src = stride2 ? padBottomRight(y) : y;
        y = conv2d(src, weight, bias, {
          stride: l.stride,
          padding: stride2 ? 0 : (l.k - 1) / 2,
          groups: l.depthwise ? l.cin : 1,
        });
        if (l.relu6) y = clamp(y, 0, 6);
      }
      if (residual[b]) y = add(y, input);
    });
    return y;
  }

  /** Frees the folded weights (the parameters belong to the victim). */
  dispose(): void {
    for (const f of this.#folded?.flat() ?? []) {
      f.weight.dispose();
      f.bias.dispose();
    }
    this.#folded = null;
  }
}
