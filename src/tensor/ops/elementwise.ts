/**
 * Elementwise ops: unary maps, scalar ops and binary ops with NumPy-style broadcasting.
 * Kernels: elementwise.wgsl (one pipeline per expression).
 *
 * @module
 */

import { dispatch, grid1d } from "../../gpu/queue.ts";
import { ELEMENTWISE } from "./_kernels.ts";
import { empty, record, type Shape, Tensor } from "../tensor.ts";
import { sumTo } from "./reduce.ts";
import { rangeInts } from "../_elementwise_params.ts";
import { MAX_RANK, padTo } from "../_layout.ts";

/** Elements per invocation along the innermost axis in broadcasting kernels (SEG in the shader). */
const SEG = 32;

interface UnaryDef {
  expr: string;
  dexpr: string;
}

function runUnary(
  name: string,
  def: UnaryDef,
  x: Tensor,
  p0 = 0,
  p1 = 0,
): Tensor {
  const out = empty(x.shape);
  const [gx, gy] = grid1d(x.size, 256);
  dispatch({
    op: name,
    kernel: ELEMENTWISE,
    entry: "unary",
    defines: { EXPR: def.expr },
    ints: rangeInts(x.size),
    floats: [p0, p1],
    workgroups: [gx, gy],
  }, [x.buffer, out.buffer]);
  return record(out, name, [x], (g) => {
    const gin = empty(x.shape);
    dispatch({
      op: `${name}.backward`,
      kernel: ELEMENTWISE,
      entry: "unary_grad",
      defines: { DEXPR: def.dexpr },
      ints: rangeInts(x.size),
      floats: [p0, p1],
      workgroups: [gx, gy],
    }, [x.buffer, out.buffer, g.buffer, gin.buffer]);
    return [gin];
  });
}

const UNARY = {
  neg: { expr: "-x", dexpr: "-1.0" },
  exp: { expr: "exp(x)", dexpr: "y" },
  log: { expr: "log(x)", dexpr: "1.0 / x" },
  sqrt: { expr: "sqrt(x)", dexpr: "0.5 / y" },
  abs: { expr: "abs(x)", dexpr: "sign(x)" },
  square: { expr: "x * x", dexpr: "2.0 * x" },
  relu: { expr: "max(x, 0.0)", dexpr: "select(0.0, 1.0, x > 0.0)" },
  leakyRelu: { expr: "select(p0 * x, x, x > 0.0)", dexpr: "select(p0, 1.0, x > 0.0)" },
  sigmoid: { expr: "1.0 / (1.0 + exp(-x))", dexpr: "y * (1.0 - y)" },
  // tanh saturates to +-1 beyond |x| = 15 (exp-based tanh can overflow to NaN).
  tanh: { expr: "select(tanh(x), sign(x), abs(x) > 15.0)", dexpr: "1.0 - y * y" },
  // Exact (erf) GELU, torch's default: x * Phi(x); normal_cdf and gelu_grad in elementwise.wgsl.
  gelu: { expr: "x * normal_cdf(x)", dexpr: "gelu_grad(x)" },
  clamp: { expr: "clamp(x, p0, p1)", dexpr: "select(0.0, 1.0, x >= p0 && x <= p1)" },
  addScalar: { expr: "x + p0", dexpr: "1.0" },
  mulScalar: { expr: "x * p0", dexpr: "p0" },
  rsubScalar: { expr: "p0 - x", dexpr: "-1.0" },
  rdivScalar: { expr: "p0 / x", dexpr: "-y / x" },
  powScalar: { expr: "pow(x, p0)", dexpr: "p0 * pow(x, p0 - 1.0)" },
  // Integer powers of any sign of x (WGSL's pow(x, y) is exp2(y * log2(x)): NaN for x < 0).
  powEven: { expr: "pow(abs(x), p0)", dexpr: "p0 * sign(x) * pow(abs(x), p0 - 1.0)" },
  powOdd: { expr: "sign(x) * pow(abs(x), p0)", dexpr: "p0 * pow(abs(x), p0 - 1.0)" },
} satisfies Record<string, UnaryDef>;

/**
 * `-x`.
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { neg } from "./elementwise.ts";
 * await initGpu();
 * const y = neg(tensor([1, -2, 0.5]));
 * assert.deepEqual([...await y.read()], [-1, 2, -0.5]);
 * ```
 */
export const neg = (x: Tensor): Tensor => runUnary("neg", UNARY.neg, x);
/**
 * `e^x`.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import * as ew from "./elementwise.ts";
 * await initGpu();
 * const x = tensor([0.5, 1, 2], [3]);
 * const y = ew.exp(x);
 * ```
 */
export const exp = (x: Tensor): Tensor => runUnary("exp", UNARY.exp, x);
/**
 * Natural logarithm.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import * as ew from "./elementwise.ts";
 * await initGpu();
 * const x = tensor([0.5, 1, 2], [3]);
 * const y = ew.log(x);
 * ```
 */
export const log = (x: Tensor): Tensor => runUnary("log", UNARY.log, x);
/**
 * Square root.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import * as ew from "./elementwise.ts";
 * await initGpu();
 * const x = tensor([0.5, 1, 2], [3]);
 * const y = ew.sqrt(x);
 * ```
 */
export const sqrt = (x: Tensor): Tensor => runUnary("sqrt", UNARY.sqrt, x);
/**
 * `|x|` (gradient 0 at 0).
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import * as ew from "./elementwise.ts";
 * await initGpu();
 * const x = tensor([0.5, 1, 2], [3]);
 * const y = ew.abs(x);
 * ```
 */
export const abs = (x: Tensor): Tensor => runUnary("abs", UNARY.abs, x);
/**
 * `x * x`.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import * as ew from "./elementwise.ts";
 * await initGpu();
 * const x = tensor([0.5, 1, 2], [3]);
 * const y = ew.square(x);
 * ```
 */
export const square = (x: Tensor): Tensor => runUnary("square", UNARY.square, x);
/**
 * `max(x, 0)`.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import * as ew from "./elementwise.ts";
 * await initGpu();
 * const x = tensor([0.5, 1, 2], [3]);
 * const y = ew.relu(x);
 * ```
 */
export const relu = (x: Tensor): Tensor => runUnary("relu", UNARY.relu, x);
/**
 * `x` where positive, else `slope * x` (default slope 0.2).
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import * as ew from "./elementwise.ts";
 * await initGpu();
 * const x = tensor([0.5, 1, 2], [3]);
 * const y = ew.leakyRelu(x, 0.2);
 * ```
 */
export const leakyRelu = (x: Tensor, slope = 0.2): Tensor =>
  runUnary("leakyRelu", UNARY.leakyRelu, x, slope);
/**
 * Logistic sigmoid.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import * as ew from "./elementwise.ts";
 * await initGpu();
 * const x = tensor([0.5, 1, 2], [3]);
 * const y = ew.sigmoid(x);
 * ```
 */
export const sigmoid = (x: Tensor): Tensor => runUnary("sigmoid", UNARY.sigmoid, x);
/**
 * Hyperbolic tangent.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import * as ew from "./elementwise.ts";
 * await initGpu();
 * const x = tensor([0.5, 1, 2], [3]);
 * const y = ew.tanh(x);
 * ```
 */
export const tanh = (x: Tensor): Tensor => runUnary("tanh", UNARY.tanh, x);
/**
 * GELU in its exact form, PyTorch's default (`F.gelu(x)`, `approximate="none"`):
 * `0.5 * x * (1 + erf(x / sqrt(2)))`, with the derivative `Phi(x) + x * phi(x)` (the standard
 * normal CDF and density). erf is a float32 rational fit (elementwise.wgsl's `normal_cdf`:
 * relative error below 1.2e-7 of erfc, so the negative tail stays accurate); not the tanh
 * approximation.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { gelu } from "./elementwise.ts";
 * await initGpu();
 * const y = await gelu(tensor([-1, 0, 1])).read();
 * // torch.nn.functional.gelu: -0.158655254, 0, 0.841344746.
 * [-0.158655254, 0, 0.841344746].forEach((v, i) => assert.ok(Math.abs(y[i] - v) < 1e-6));
 * ```
 */
export const gelu = (x: Tensor): Tensor => runUnary("gelu", UNARY.gelu, x);
/**
 * `x` raised to a constant power: any real `x` for an integer power, `x > 0` otherwise (NaN for
 * negative `x`, as `Math.pow`). A power of 0 gives 1 with gradient 0.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { pow } from "./elementwise.ts";
 * await initGpu();
 * const cubed = await pow(tensor([-2, 0.5, 3]), 3).read();
 * [-8, 0.125, 27].forEach((v, i) => assert.ok(Math.abs(cubed[i] - v) < 1e-4));
 * ```
 */
export function pow(x: Tensor, p: number): Tensor {
  if (p === 0) return runUnary("pow", { expr: "1.0", dexpr: "0.0" }, x);
  if (!Number.isInteger(p)) return runUnary("pow", UNARY.powScalar, x, p);
  return runUnary("pow", p % 2 === 0 ? UNARY.powEven : UNARY.powOdd, x, p);
}

/**
 * Clamps to `[min, max]` (gradient 1 inside, 0 outside).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { clamp } from "./elementwise.ts";
 * await initGpu();
 * const y = clamp(tensor([-1, 0.25, 2]), 0, 1);
 * assert.deepEqual([...await y.read()], [0, 0.25, 1]);
 * ```
 */
export function clamp(x: Tensor, min: number, max: number): Tensor {
  if (!(min <= max)) throw new RangeError(`clamp: min ${min} is above max ${max}`);
  return runUnary("clamp", UNARY.clamp, x, min, max);
}

/**
 * The shape two shapes broadcast to (NumPy rules), or an error naming both.
 *
 * @example
 * ```ts
 * import { broadcastShapes } from "./elementwise.ts";
 * broadcastShapes([2, 1, 4], [3, 1]); // [2, 3, 4]
 * ```
 */
export function broadcastShapes(a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(`cannot broadcast shapes [${a.join(",")}] and [${b.join(",")}]`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Strides of `shape` laid into `outShape`'s axes, 0 on broadcast axes. */
function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const rank = outShape.length;
  const strides = new Array(rank).fill(0);
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const axis = rank - shape.length + i;
    strides[axis] = shape[i] === 1 ? 0 : stride;
    stride *= shape[i];
  }
  return strides;
}

interface BinaryDef {
  expr: string;
  da: string;
  db: string;
}

const BINARY = {
  add: { expr: "a + b", da: "1.0", db: "1.0" },
  sub: { expr: "a - b", da: "1.0", db: "-1.0" },
  mul: { expr: "a * b", da: "b", db: "a" },
  div: { expr: "a / b", da: "1.0 / b", db: "-a / (b * b)" },
  maximum: { expr: "max(a, b)", da: "select(0.0, 1.0, a >= b)", db: "select(0.0, 1.0, a < b)" },
  minimum: { expr: "min(a, b)", da: "select(0.0, 1.0, a <= b)", db: "select(0.0, 1.0, a > b)" },
} satisfies Record<string, BinaryDef>;

/** How a binary op is launched: entry points, parameters and grid. */
interface BinaryPlan {
  outShape: number[];
  forward: string;
  backward: string;
  ints: number[];
  workgroups: [number, number];
}

function planBinary(a: Shape, b: Shape): BinaryPlan {
  const outShape = broadcastShapes(a, b);
  if (outShape.length > MAX_RANK) throw new RangeError(`rank above ${MAX_RANK}: [${outShape}]`);
  const size = outShape.reduce((p, d) => p * d, 1);
  if (a.join() === b.join()) {
    return {
      outShape,
      forward: "binary_same",
      backward: "binary_grad_same",
      ints: rangeInts(size),
      workgroups: grid1d(size, 256),
    };
  }
  // Innermost axis in segments; up to 7 outer axes split once per segment (see the shader).
  const rank = outShape.length;
  const sa = broadcastStrides(a, outShape);
  const sb = broadcastStrides(b, outShape);
  const inner = outShape[rank - 1];
  const nSegs = Math.ceil(inner / SEG);
  const rows = inner === 0 ? 0 : size / inner;
  const n = rows * nSegs;
  return {
    outShape,
    forward: "binary",
    backward: "binary_grad",
    ints: [
      n,
      rank - 1,
      inner,
      nSegs,
      sa[rank - 1],
      sb[rank - 1],
      0,
      0,
      ...padTo(outShape.slice(0, -1)),
      ...padTo(sa.slice(0, -1)),
      ...padTo(sb.slice(0, -1)),
    ],
    workgroups: grid1d(n, 64),
  };
}

function runBinary(name: string, def: BinaryDef, a: Tensor, b: Tensor): Tensor {
  let plan: BinaryPlan;
  try {
    plan = planBinary(a.shape, b.shape);
  } catch (e) {
    throw new RangeError(`${name}: ${(e as Error).message}`);
  }
  const out = empty(plan.outShape);
  dispatch({
    op: name,
    kernel: ELEMENTWISE,
    entry: plan.forward,
    defines: { BEXPR: def.expr },
    ints: plan.ints,
    workgroups: plan.workgroups,
  }, [a.buffer, b.buffer, out.buffer]);
  return record(out, name, [a, b], (g) => {
    const ga = empty(plan.outShape);
    const gb = empty(plan.outShape);
    dispatch({
      op: `${name}.backward`,
      kernel: ELEMENTWISE,
      entry: plan.backward,
      defines: { DA: def.da, DB: def.db },
      ints: plan.ints,
      workgroups: plan.workgroups,
    }, [a.buffer, b.buffer, g.buffer, ga.buffer, gb.buffer]);
    return [reduceTo(ga, a.shape), reduceTo(gb, b.shape)];
  });
}

/** Sums a gradient over broadcast axes down to `shape` (disposing the full-size one). */
function reduceTo(g: Tensor, shape: Shape): Tensor {
  if (g.shape.join() === shape.join()) return g;
  const r = sumTo(g, shape);
  g.dispose();
  return r;
}

/**
 * An operand of {@link add}, {@link sub}, {@link mul} and {@link div}: a tensor, or a number
 * applied to every element.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { mul, type Operand } from "./elementwise.ts";
 * await initGpu();
 * const scale: Operand = 2;
 * assert.deepEqual([...await mul(tensor([1, 2]), scale).read()], [2, 4]);
 * ```
 */
export type Operand = Tensor | number;

function binaryOrScalar(
  name: keyof typeof BINARY,
  a: Operand,
  b: Operand,
  scalar: (t: Tensor, c: number, tensorFirst: boolean) => Tensor,
): Tensor {
  if (a instanceof Tensor && b instanceof Tensor) return runBinary(name, BINARY[name], a, b);
  if (a instanceof Tensor && typeof b === "number") return scalar(a, b, true);
  if (typeof a === "number" && b instanceof Tensor) return scalar(b, a, false);
  throw new TypeError(`${name}: needs at least one tensor operand`);
}

/**
 * `a + b` with broadcasting; either side may be a number.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { add } from "./elementwise.ts";
 * await initGpu();
 * const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
 * const bias = tensor([10, 20], [2, 1]); // [2,1] broadcasts over [2,3]
 * assert.deepEqual([...await add(x, bias).read()], [11, 12, 13, 24, 25, 26]);
 * assert.deepEqual([...await add(x, 1).read()], [2, 3, 4, 5, 6, 7]);
 * ```
 */
export function add(a: Operand, b: Operand): Tensor {
  return binaryOrScalar("add", a, b, (t, c) => runUnary("addScalar", UNARY.addScalar, t, c));
}

/**
 * `a - b` with broadcasting; either side may be a number.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { sub } from "./elementwise.ts";
 * await initGpu();
 * const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
 * const y = tensor([1, 2, 3], [3]);
 * assert.deepEqual([...await sub(x, y).read()], [0, 0, 0, 3, 3, 3]);
 * assert.deepEqual([...await sub(1, y).read()], [0, -1, -2]);
 * ```
 */
export function sub(a: Operand, b: Operand): Tensor {
  return binaryOrScalar(
    "sub",
    a,
    b,
    (t, c, first) =>
      first
        ? runUnary("addScalar", UNARY.addScalar, t, -c)
        : runUnary("rsubScalar", UNARY.rsubScalar, t, c),
  );
}

/**
 * `a * b` with broadcasting; either side may be a number.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { mul } from "./elementwise.ts";
 * await initGpu();
 * const y = mul(tensor([1, 2, 3]), 0.5);
 * assert.deepEqual([...await y.read()], [0.5, 1, 1.5]);
 * ```
 */
export function mul(a: Operand, b: Operand): Tensor {
  return binaryOrScalar("mul", a, b, (t, c) => runUnary("mulScalar", UNARY.mulScalar, t, c));
}

/**
 * `a / b` with broadcasting; either side may be a number.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { div } from "./elementwise.ts";
 * await initGpu();
 * const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
 * const norm = tensor([2, 4], [2, 1]);
 * const y = await div(x, norm).read();
 * [0.5, 1, 1.5, 1, 1.25, 1.5].forEach((v, i) => assert.ok(Math.abs(y[i] - v) < 1e-6));
 * ```
 */
export function div(a: Operand, b: Operand): Tensor {
  return binaryOrScalar(
    "div",
    a,
    b,
    (t, c, first) =>
      first
        ? runUnary("mulScalar", UNARY.mulScalar, t, 1 / c)
        : runUnary("rdivScalar", UNARY.rdivScalar, t, c),
  );
}

/**
 * Elementwise maximum with broadcasting (gradient to `a` on ties).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { maximum } from "./elementwise.ts";
 * await initGpu();
 * const y = maximum(tensor([1, -2, 3]), tensor([0], [1]));
 * assert.deepEqual([...await y.read()], [1, 0, 3]);
 * ```
 */
export function maximum(a: Tensor, b: Tensor): Tensor {
  return runBinary("maximum", BINARY.maximum, a, b);
}

/**
 * Elementwise minimum with broadcasting (gradient to `a` on ties).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { minimum } from "./elementwise.ts";
 * await initGpu();
 * const y = minimum(tensor([1, -2, 3]), tensor([0], [1]));
 * assert.deepEqual([...await y.read()], [0, -2, 0]);
 * ```
 */
export function minimum(a: Tensor, b: Tensor): Tensor {
  return runBinary("minimum", BINARY.minimum, a, b);
}
