/**
 * Seeded parameter initialisers: Kaiming (He) and Xavier (Glorot), uniform and normal, plus
 * zeros, following the definitions of `torch.nn.init` (fan-in and fan-out, gains, bounds).
 *
 * Values are drawn on the CPU from STQA's seeded generator (src/_random.ts: xoshiro128**, seeded
 * through splitmix32; normals by the Box-Muller transform) and uploaded once, so the same seed gives the
 * same tensor on every machine and adapter. The generator is not PyTorch's: the distributions
 * match `torch.nn.init`, the individual values do not. Initialisation runs once per model, so
 * doing it on the CPU costs nothing that matters.
 *
 * Fans, as PyTorch computes them: for a weight of shape `[out, in, ...kernel]`,
 * `fanIn = in * prod(kernel)` and `fanOut = out * prod(kernel)` (linear `[out, in]`, conv
 * `[out, in, kh, kw]`).
 *
 * @module
 */

import { type SeededRandom, seededRandom } from "../_random.ts";
import { full, type Shape, sizeOf, type Tensor, tensor } from "../tensor/tensor.ts";

/** Nonlinearities whose recommended gain {@link calculateGain} knows (as torch.nn.init). */
export type Nonlinearity =
  | "linear"
  | "conv1d"
  | "conv2d"
  | "conv3d"
  | "sigmoid"
  | "tanh"
  | "relu"
  | "leaky_relu"
  | "selu";

/** Options every random initialiser takes. */
export interface InitOptions {
  /** Seed of the generator (any integer; the same seed gives the same values). */
  seed: number;
  /** Whether the tensor requires a gradient (default true: it is a parameter). */
  requiresGrad?: boolean;
}

/** Options of {@link kaimingUniform} and {@link kaimingNormal}. */
export interface KaimingOptions extends InitOptions {
  /** Negative slope of the leaky ReLU that follows (default 0). */
  a?: number;
  /** Preserve the variance of the forward pass (`"fanIn"`, default) or the backward pass. */
  mode?: "fanIn" | "fanOut";
  /** The nonlinearity that follows (default `"leaky_relu"`, which with `a = 0` is ReLU's gain). */
  nonlinearity?: Nonlinearity;
}

/** Options of {@link xavierUniform} and {@link xavierNormal}. */
export interface XavierOptions extends InitOptions {
  /** Scaling factor (default 1). */
  gain?: number;
}

/**
 * The seeded generator the initialisers draw from (xoshiro128** seeded by splitmix32; normals by
 * Box-Muller), defined in src/_random.ts and re-exported here.
 *
 * @example
 * ```ts
 * import { seededRandom } from "./init.ts";
 * const r = seededRandom(42);
 * const u = r.uniform();
 * const z = r.normal();
 * ```
 */
export { seededRandom };

/**
 * Fan-in and fan-out of a weight shape `[out, in, ...kernel]`, as torch.nn.init computes them.
 *
 * @example
 * ```ts
 * import { fans } from "./init.ts";
 * fans([16, 3, 3, 3]); // { fanIn: 27, fanOut: 144 }
 * fans([10, 64]); // { fanIn: 64, fanOut: 10 }
 * ```
 */
export function fans(shape: Shape): { fanIn: number; fanOut: number } {
  if (shape.length < 2) {
    throw new RangeError(
      `init: fan-in and fan-out need a shape of at least 2 dimensions [out, in, ...], ` +
        `got [${shape.join(",")}]`,
    );
  }
  const receptive = sizeOf(shape.slice(2));
  const fanIn = shape[1] * receptive;
  const fanOut = shape[0] * receptive;
  if (fanIn === 0 || fanOut === 0) {
    throw new RangeError(`init: shape [${shape.join(",")}] has no elements to initialise`);
  }
  return { fanIn, fanOut };
}

/**
 * The recommended gain for a nonlinearity (torch.nn.init.calculate_gain): 1 for linear, conv and
 * sigmoid, 5/3 for tanh, sqrt(2) for ReLU, sqrt(2 / (1 + a^2)) for leaky ReLU of slope `a`,
 * 3/4 for SELU.
 *
 * @example
 * ```ts
 * import { calculateGain } from "./init.ts";
 * calculateGain("leaky_relu", 0.2); // 1.3867...
 * ```
 */
export function calculateGain(nonlinearity: Nonlinearity, a = 0.01): number {
  switch (nonlinearity) {
    case "linear":
    case "conv1d":
    case "conv2d":
    case "conv3d":
    case "sigmoid":
      return 1;
    case "tanh":
      return 5 / 3;
    case "relu":
      return Math.SQRT2;
    case "leaky_relu":
      if (!Number.isFinite(a)) throw new RangeError(`init: leaky_relu slope ${a} is not finite`);
      return Math.sqrt(2 / (1 + a * a));
    case "selu":
      return 3 / 4;
    default:
      throw new RangeError(`init: unknown nonlinearity '${nonlinearity}'`);
  }
}

function fromDraws(
  shape: Shape,
  options: InitOptions,
  draw: (r: SeededRandom) => number,
): Tensor {
  const r = seededRandom(options.seed);
  const n = sizeOf(shape);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = draw(r);
  return tensor(data, shape, { requiresGrad: options.requiresGrad ?? true });
}

function checkScale(what: string, v: number): void {
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`init: ${what} must be >= 0, got ${v}`);
}

/**
 * Values drawn uniformly from `[low, high)` (default [0, 1)).
 *
 * @example
 * ```ts
 * import { initGpu } from "../gpu/device.ts";
 * import { uniform } from "./init.ts";
 * await initGpu();
 * // PyTorch's default bias init for a conv with fan-in 27: U(-1/sqrt(27), 1/sqrt(27)).
 * const b = uniform([16], { seed: 1, low: -1 / Math.sqrt(27), high: 1 / Math.sqrt(27) });
 * ```
 */
export function uniform(
  shape: Shape,
  options: InitOptions & { low?: number; high?: number },
): Tensor {
  const { low = 0, high = 1 } = options;
  if (!(Number.isFinite(low) && Number.isFinite(high) && low <= high)) {
    throw new RangeError(`init: uniform needs finite low <= high, got [${low}, ${high})`);
  }
  return fromDraws(shape, options, (r) => low + (high - low) * r.uniform());
}

/**
 * Values drawn from a normal distribution N(mean, std^2) (default N(0, 1)).
 *
 * @example
 * ```ts
 * import { initGpu } from "../gpu/device.ts";
 * import { normal } from "./init.ts";
 * await initGpu();
 * const w = normal([8, 8], { seed: 3, std: 0.02 });
 * ```
 */
export function normal(
  shape: Shape,
  options: InitOptions & { mean?: number; std?: number },
): Tensor {
  const { mean = 0, std = 1 } = options;
  checkScale("std", std);
  if (!Number.isFinite(mean)) throw new RangeError(`init: mean must be finite, got ${mean}`);
  return fromDraws(shape, options, (r) => mean + std * r.normal());
}

function kaimingStd(shape: Shape, options: KaimingOptions): number {
  const { a = 0, mode = "fanIn", nonlinearity = "leaky_relu" } = options;
  if (mode !== "fanIn" && mode !== "fanOut") {
    throw new RangeError(`init: mode must be "fanIn" or "fanOut", got '${mode}'`);
  }
  const f = fans(shape);
  const fan = mode === "fanIn" ? f.fanIn : f.fanOut;
  return calculateGain(nonlinearity, a) / Math.sqrt(fan);
}

/**
 * Kaiming (He et al. 2015) uniform init: U(-b, b) with `b = gain * sqrt(3 / fan)`, as
 * torch.nn.init.kaiming_uniform_. (PyTorch's default for nn.Linear and nn.Conv2d weights is
 * `a = sqrt(5)`, i.e. `b = 1 / sqrt(fanIn)`.)
 *
 * @example
 * ```ts
 * import { initGpu } from "../gpu/device.ts";
 * import { kaimingUniform } from "./init.ts";
 * await initGpu();
 * const w = kaimingUniform([16, 3, 3, 3], { seed: 7, a: 0.2 }); // conv 3 -> 16, 3x3
 * ```
 */
export function kaimingUniform(shape: Shape, options: KaimingOptions): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(shape, options);
  return fromDraws(shape, options, (r) => bound * (2 * r.uniform() - 1));
}

/**
 * Kaiming (He et al. 2015) normal init: N(0, std^2) with `std = gain / sqrt(fan)`, as
 * torch.nn.init.kaiming_normal_.
 *
 * @example
 * ```ts
 * import { initGpu } from "../gpu/device.ts";
 * import { kaimingNormal } from "./init.ts";
 * await initGpu();
 * const w = kaimingNormal([64, 32], { seed: 7, nonlinearity: "relu" });
 * ```
 */
export function kaimingNormal(shape: Shape, options: KaimingOptions): Tensor {
  const std = kaimingStd(shape, options);
  return fromDraws(shape, options, (r) => std * r.normal());
}

function xavierStd(shape: Shape, options: XavierOptions): number {
  const { gain = 1 } = options;
  checkScale("gain", gain);
  const { fanIn, fanOut } = fans(shape);
  return gain * Math.sqrt(2 / (fanIn + fanOut));
}

/**
 * Xavier (Glorot and Bengio 2010) uniform init: U(-b, b) with
 * `b = gain * sqrt(6 / (fanIn + fanOut))`, as torch.nn.init.xavier_uniform_.
 *
 * @example
 * ```ts
 * import { initGpu } from "../gpu/device.ts";
 * import { xavierUniform } from "./init.ts";
 * await initGpu();
 * const w = xavierUniform([32, 64], { seed: 1 });
 * ```
 */
export function xavierUniform(shape: Shape, options: XavierOptions): Tensor {
  const bound = Math.sqrt(3) * xavierStd(shape, options);
  return fromDraws(shape, options, (r) => bound * (2 * r.uniform() - 1));
}

/**
 * Xavier (Glorot and Bengio 2010) normal init: N(0, std^2) with
 * `std = gain * sqrt(2 / (fanIn + fanOut))`, as torch.nn.init.xavier_normal_.
 *
 * @example
 * ```ts
 * import { initGpu } from "../gpu/device.ts";
 * import { xavierNormal } from "./init.ts";
 * await initGpu();
 * const w = xavierNormal([32, 64, 3, 3], { seed: 1, gain: 5 / 3 });
 * ```
 */
export function xavierNormal(shape: Shape, options: XavierOptions): Tensor {
  const std = xavierStd(shape, options);
  return fromDraws(shape, options, (r) => std * r.normal());
}

/**
 * A zero-filled tensor (filled on the GPU), requiring a gradient by default (e.g. a bias).
 *
 * @example
 * ```ts
 * import { initGpu } from "../gpu/device.ts";
 * import { zeros } from "./init.ts";
 * await initGpu();
 * const bias = zeros([16]);
 * ```
 */
export function zeros(shape: Shape, options: { requiresGrad?: boolean } = {}): Tensor {
  return full(shape, 0, { requiresGrad: options.requiresGrad ?? true });
}
