/**
 * 2-D convolution benchmarks on the STQA-Net layer shapes (16 frames as the batch, 128x128
 * input) and on a sample of ResNet-50's at 224x224 (one frame): forward, input gradient and
 * weight gradient, `nn.conv2d` against TF.js's WebGPU backend on the same adapter (ResNet-50's
 * gradients STQA only). FLOPs = 2 N Cout OH OW Cin KH KW for each of the three.
 *
 * Layouts: each library in its own (STQA NCHW with [Cout, Cin, KH, KW] weights, TF.js NHWC with
 * [KH, KW, Cin, Cout] filters); both get the same values. No bias on either side.
 *
 * Gradients: STQA's are timed by calling the backward function that `Tensor.backward()` runs
 * for the conv2d node (recorded once), with only the input (or only the weight) requiring a
 * gradient, so that exactly one gradient is computed; TF.js's by running the kernels its conv2d
 * gradient runs, `Conv2DBackpropInput` and `Conv2DBackpropFilter`. TF.js's gradient kernels are
 * slow on this adapter (its filter gradient runs at a few tenths of a GFLOP/s: 16 frames would
 * take minutes per pass), so the gradients are compared with TF.js at {@link PEER_GRAD_FRAMES}
 * frames, both sides on the same shapes; STQA's gradients are also measured at 16 frames.
 *
 * Depthwise convolutions (`groups` = Cin; conv2d_depthwise.wgsl): MobileNetV2's 3x3 and
 * ConvNeXt-T's 7x7 layers at 224x224, one frame; the forward against `tf.depthwiseConv2d`, the
 * gradients STQA only. FLOPs = 2 N Cout OH OW (Cin/groups) KH KW. Their labels start with
 * "depthwise": `deno task bench --filter depthwise` runs only them (the set-up of every case
 * still runs).
 *
 * Run with `deno task bench` (method: bench/_suite.ts; results: bench/RESULTS.md).
 *
 * @module
 */

import { initGpu } from "../src/gpu/device.ts";
import { conv2d } from "../src/nn/mod.ts";
import { noGrad, type Tensor, tensor } from "../src/tensor/tensor.ts";
import { randomNormal, sampledError, samplePositions } from "./_data.ts";
import { describePeak, peakOnce } from "./_peak.ts";
import {
  benchCase,
  benchPeak,
  measureSyncLatency,
  noteCheck,
  printSummaryAtExit,
} from "./_suite.ts";
import { initTfjs, tf, tfSync } from "./_tfjs.ts";

/** One convolution layer of STQA-Net. */
interface Layer {
  label: string;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  pad: number;
  /** Input height = width. */
  size: number;
  /** Channel groups (`conv2d`'s `groups`); default 1. */
  groups?: number;
}

/** Frames per clip, the batch of every layer. */
const FRAMES = 16;
/** Batch of the gradient comparison with TF.js. */
const PEER_GRAD_FRAMES = 4;

const LAYERS: Layer[] = [
  { label: "enc1 3x3 1->16 s1 @128", cin: 1, cout: 16, k: 3, stride: 1, pad: 1, size: 128 },
  { label: "enc2 3x3 16->32 s2 @128", cin: 16, cout: 32, k: 3, stride: 2, pad: 1, size: 128 },
  { label: "enc3 3x3 32->64 s2 @64", cin: 32, cout: 64, k: 3, stride: 2, pad: 1, size: 64 },
  { label: "gru 3x3 128->192 s1 @32", cin: 128, cout: 192, k: 3, stride: 1, pad: 1, size: 32 },
  { label: "fuse 1x1 128->64 @32", cin: 128, cout: 64, k: 1, stride: 1, pad: 0, size: 32 },
  { label: "dec1 3x3 64->32 @64", cin: 64, cout: 32, k: 3, stride: 1, pad: 1, size: 64 },
  { label: "dec2 3x3 32->16 @128", cin: 32, cout: 16, k: 3, stride: 1, pad: 1, size: 128 },
  { label: "out 3x3 16->3 @128", cin: 16, cout: 3, k: 3, stride: 1, pad: 1, size: 128 },
];

/** ResNet-50's convolutions at 224x224 (torchvision's layout; a sample of each stage), for the
 * published models (VSFA, SimpleVQA) that run it per frame; one frame as the batch. */
const RESNET50: Layer[] = [
  { label: "r50 conv1 7x7 3->64 s2 @224", cin: 3, cout: 64, k: 7, stride: 2, pad: 3, size: 224 },
  { label: "r50 l1 1x1 256->64 @56", cin: 256, cout: 64, k: 1, stride: 1, pad: 0, size: 56 },
  { label: "r50 l1 3x3 64->64 @56", cin: 64, cout: 64, k: 3, stride: 1, pad: 1, size: 56 },
  { label: "r50 l2 3x3 128->128 s2 @56", cin: 128, cout: 128, k: 3, stride: 2, pad: 1, size: 56 },
  { label: "r50 l3 3x3 256->256 @14", cin: 256, cout: 256, k: 3, stride: 1, pad: 1, size: 14 },
  { label: "r50 l3 1x1 256->1024 @14", cin: 256, cout: 1024, k: 1, stride: 1, pad: 0, size: 14 },
  { label: "r50 l4 3x3 512->512 @7", cin: 512, cout: 512, k: 3, stride: 1, pad: 1, size: 7 },
  { label: "r50 l4 1x1 512->2048 @7", cin: 512, cout: 2048, k: 1, stride: 1, pad: 0, size: 7 },
];

/** Depthwise layers (groups = Cin = Cout) at 224x224, one frame: MobileNetV2's 3x3 (padding 1)
 * and ConvNeXt-T's 7x7 (padding 3). */
const DEPTHWISE: Layer[] = [
  { label: "depthwise mnv2 3x3 32 s1 @112", cin: 32, cout: 32, k: 3, stride: 1, pad: 1, size: 112 },
  { label: "depthwise mnv2 3x3 96 s2 @112", cin: 96, cout: 96, k: 3, stride: 2, pad: 1, size: 112 },
  {
    label: "depthwise mnv2 3x3 144 s1 @56",
    cin: 144,
    cout: 144,
    k: 3,
    stride: 1,
    pad: 1,
    size: 56,
  },
  {
    label: "depthwise mnv2 3x3 192 s1 @28",
    cin: 192,
    cout: 192,
    k: 3,
    stride: 1,
    pad: 1,
    size: 28,
  },
  {
    label: "depthwise mnv2 3x3 576 s1 @14",
    cin: 576,
    cout: 576,
    k: 3,
    stride: 1,
    pad: 1,
    size: 14,
  },
  { label: "depthwise mnv2 3x3 960 s1 @7", cin: 960, cout: 960, k: 3, stride: 1, pad: 1, size: 7 },
  { label: "depthwise cnxt 7x7 96 @56", cin: 96, cout: 96, k: 7, stride: 1, pad: 3, size: 56 },
  { label: "depthwise cnxt 7x7 384 @14", cin: 384, cout: 384, k: 7, stride: 1, pad: 3, size: 14 },
].map((l) => ({ ...l, groups: l.cin }));

await initGpu();
await initTfjs();
const peak = await peakOnce();
console.log(describePeak(peak));

/** NCHW data to an NHWC TF.js tensor. */
function tfNhwc(data: Float32Array, shape: number[]): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(tf.tensor4d(data, shape as Shape4), [0, 2, 3, 1]));
}

/** Reads a TF.js tensor after permuting its axes, and disposes it. */
async function tfRead(t: tf.Tensor, perm: number[]): Promise<Float32Array> {
  const p = tf.transpose(t, perm);
  const v = await p.data() as Float32Array;
  tf.dispose([p, t]);
  return v;
}

type Shape4 = [number, number, number, number];
type Kind = "forward" | "input grad" | "weight grad";

/**
 * Registers the benchmarks of one layer at a batch of `frames`: the given kinds, for STQA and,
 * when `peer` is set, for TF.js. One result of each is checked first, at sampled positions,
 * against a float64 CPU reference.
 */
async function benchLayer(layer: Layer, frames: number, kinds: Kind[], peer: boolean) {
  const { label, cin, cout, k, stride, pad, size } = layer;
  const groups = layer.groups ?? 1;
  const cig = cin / groups; // input channels per group (w's second dimension)
  const cog = cout / groups;
  const out = Math.floor((size + 2 * pad - k) / stride) + 1;
  const flops = 2 * frames * cout * out * out * cig * k * k;
  const xShape = [frames, cin, size, size];
  const wShape = [cout, cig, k, k];
  const yShape = [frames, cout, out, out];
  const seed = 100 * cin + cout + size + frames;
  const xData = randomNormal(frames * cin * size * size, seed);
  // Kaiming-like scale keeps outputs and gradients of order one.
  const wData = randomNormal(cout * cig * k * k, seed + 1).map((v) => v / Math.sqrt(cig * k * k));
  const gData = randomNormal(frames * cout * out * out, seed + 2);
  const group = (kind: Kind) => `conv2d ${kind} (${frames} frames${peer ? "" : ", STQA only"})`;

  // TF.js: NHWC input, [KH, KW, Cin, Cout] filter, the kernels of tf.conv2d and its gradient;
  // depthwise: tf.depthwiseConv2d with a [KH, KW, Cin, 1] filter.
  const depthwise = groups > 1;
  if (depthwise && (groups !== cin || cout !== cin)) {
    throw new Error(
      `conv2d bench ${label}: only depthwise layers (groups = Cin = Cout) are grouped`,
    );
  }
  const tfRun: Record<Kind, () => tf.Tensor> = {
    "forward": () =>
      depthwise ? tf.depthwiseConv2d(tx, tw, stride, pad) : tf.conv2d(tx, tw, stride, pad),
    "input grad": () =>
      tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: tdy, filter: tw }, {
        ...attrs,
        inputShape: [frames, size, size, cin],
      }) as tf.Tensor,
    "weight grad": () =>
      tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: tx, dy: tdy }, {
        ...attrs,
        filterShape: [k, k, cin, cout],
      }) as tf.Tensor,
  };
  const attrs = { strides: [stride, stride] as [number, number], pad, dataFormat: "NHWC" as const };
  const tx = peer ? tfNhwc(xData, xShape) : null!;
  const tw = peer
    ? tf.tidy(() =>
      tf.transpose(tf.tensor4d(wData, wShape as Shape4), depthwise ? [2, 3, 0, 1] : [2, 3, 1, 0])
    )
    : null!;
  const tdy = peer ? tfNhwc(gData, yShape) : null!;
  const perm: Record<Kind, number[]> = {
    "forward": [0, 3, 1, 2],
    "input grad": [0, 3, 1, 2],
    "weight grad": [3, 2, 0, 1],
  };
  const peerResult = new Map<Kind, Float32Array>();
  if (peer) {
    for (const kind of kinds) {
      peerResult.set(kind, await tfRead(tfRun[kind](), perm[kind]));
      benchCase({
        group: group(kind),
        label,
        impl: "tfjs",
        flops,
        run: () => tfRun[kind]().dispose(),
      });
    }
    await tfSync();
  }

  // float64 references at one position (NCHW / [Cout, Cin, KH, KW] flat index) of each result.
  const X = (n: number, c: number, i: number, j: number) =>
    i < 0 || j < 0 || i >= size || j >= size ? 0 : xData[((n * cin + c) * size + i) * size + j];
  const G = (n: number, c: number, i: number, j: number) =>
    gData[((n * cout + c) * out + i) * out + j];
  // W(co, c, ...) for an input channel c of co's group (cig channels from group * cig).
  const W = (co: number, c: number, i: number, j: number) =>
    wData[((co * cig + c % cig) * k + i) * k + j];
  const groupOf = (c: number) => Math.floor(c / cig);
  const split = (idx: number, dims: number[]) => {
    const r: number[] = [];
    for (let d = dims.length - 1; d >= 0; d--) {
      r[d] = idx % dims[d];
      idx = Math.floor(idx / dims[d]);
    }
    return r;
  };
  const reference: Record<Kind, (idx: number) => number> = {
    "forward": (idx) => {
      const [n, co, oh, ow] = split(idx, yShape);
      let acc = 0;
      const c0 = Math.floor(co / cog) * cig;
      for (let c = c0; c < c0 + cig; c++) {
        for (let i = 0; i < k; i++) {
          for (let j = 0; j < k; j++) {
            acc += X(n, c, oh * stride - pad + i, ow * stride - pad + j) * W(co, c, i, j);
          }
        }
      }
      return acc;
    },
    "input grad": (idx) => {
      const [n, c, ih, iw] = split(idx, xShape);
      let acc = 0;
      for (let co = groupOf(c) * cog; co < (groupOf(c) + 1) * cog; co++) {
        for (let i = 0; i < k; i++) {
          for (let j = 0; j < k; j++) {
            const [oh, ow] = [(ih + pad - i) / stride, (iw + pad - j) / stride];
            if (
              Number.isInteger(oh) && Number.isInteger(ow) && oh >= 0 && ow >= 0 && oh < out &&
              ow < out
            ) {
              acc += G(n, co, oh, ow) * W(co, c, i, j);
            }
          }
        }
      }
      return acc;
    },
    "weight grad": (idx) => {
      const [co, cl, i, j] = split(idx, wShape);
      const c = Math.floor(co / cog) * cig + cl;
      let acc = 0;
      for (let n = 0; n < frames; n++) {
        for (let oh = 0; oh < out; oh++) {
          for (let ow = 0; ow < out; ow++) {
            acc += G(n, co, oh, ow) * X(n, c, oh * stride - pad + i, ow * stride - pad + j);
          }
        }
      }
      return acc;
    },
  };
  const resultSize: Record<Kind, number> = {
    "forward": frames * cout * out * out,
    "input grad": frames * cin * size * size,
    "weight grad": cout * cig * k * k,
  };

  const options = { stride, padding: pad, groups };
  const x = tensor(xData, xShape);
  const w = tensor(wData, wShape);
  const g = tensor(gData, yShape);
  // Gradient graphs: one conv2d node each, with exactly one input requiring a gradient.
  const backwardOf = (which: 0 | 1) => {
    const xi = which === 0 ? tensor(xData, xShape, { requiresGrad: true }) : x;
    const wi = which === 1 ? tensor(wData, wShape, { requiresGrad: true }) : w;
    const node = conv2d(xi, wi, undefined, options).node;
    if (!node) throw new Error(`conv2d ${label}: no gradient node was recorded`);
    return () => {
      const grads = noGrad(() => node.backward(g));
      if (grads[1 - which]) {
        throw new Error(`conv2d ${label}: backward computed a gradient nobody asked for`);
      }
      return grads[which]!;
    };
  };
  const run: Record<Kind, () => Tensor> = {
    "forward": () => conv2d(x, w, undefined, options),
    "input grad": kinds.includes("input grad") ? backwardOf(0) : () => x,
    "weight grad": kinds.includes("weight grad") ? backwardOf(1) : () => w,
  };
  for (const kind of kinds) {
    const r = run[kind]();
    const got = await r.read();
    r.dispose();
    const at = samplePositions(resultSize[kind], 24, seed + 3);
    const ref = at.map(reference[kind]);
    const theirs = peerResult.get(kind);
    noteCheck(group(kind), label, {
      stqa: sampledError(got, at, ref),
      tfjs: theirs ? sampledError(theirs, at, ref) : undefined,
    });
    benchCase({ group: group(kind), label, impl: "stqa", flops, run: () => run[kind]().dispose() });
  }
}

for (const layer of LAYERS) await benchLayer(layer, FRAMES, ["forward"], true);
for (const layer of LAYERS) {
  await benchLayer(layer, PEER_GRAD_FRAMES, ["input grad", "weight grad"], true);
}
for (const layer of LAYERS) await benchLayer(layer, FRAMES, ["input grad", "weight grad"], false);
for (const layer of RESNET50) await benchLayer(layer, 1, ["forward"], true);
for (const layer of RESNET50) await benchLayer(layer, 1, ["input grad", "weight grad"], false);
for (const layer of DEPTHWISE) await benchLayer(layer, 1, ["forward"], true);
for (const layer of DEPTHWISE) await benchLayer(layer, 1, ["input grad", "weight grad"], false);
await measureSyncLatency();
benchPeak(peak);

printSummaryAtExit("conv2d", peak);
