/**
 * Matrix products: batched `matmul` with transpose flags, and `linear` (PyTorch layout).
 * Kernels: matmul.wgsl (register-blocked, vec4 loads where the layout allows them) on CPU
 * adapters, matmul_tiled.wgsl (workgroup-memory tiles) on GPUs; see `kernelFamily()`.
 *
 * @module
 */

import { kernelFamily } from "../../gpu/device.ts";
import { dispatch } from "../../gpu/queue.ts";
import { MATMUL, MATMUL_TILED } from "./_kernels.ts";
import { empty, record, type Shape, sizeOf, type Tensor } from "../tensor.ts";
import { add, broadcastShapes } from "./elementwise.ts";
import { sum } from "./reduce.ts";
import { full } from "../tensor.ts";

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /** Use the transpose of `a`'s last two axes (a is [..., K, M]). Default false. */
  transA?: boolean;
  /** Use the transpose of `b`'s last two axes (b is [..., N, K]). Default false. */
  transB?: boolean;
}

/** One GEMM launch: C[z] = op(A[z]) op(B[z]) (+ bias), z < batch. */
export interface GemmSpec {
  /** Name for error messages. */
  op: string;
  a: Tensor;
  b: Tensor;
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  batch: number;
  /** Whether A / B hold one matrix per batch (else one matrix broadcast to all). */
  aBatched: boolean;
  bBatched: boolean;
  /** Added to every row (length N), or to every column (length M) with `biasRows`. */
  bias?: Tensor;
  biasRows?: boolean;
  /** Shape of the output tensor (M*N*batch elements). */
  outShape: Shape;
}

/** Rows and columns of C each invocation computes (fixed in matmul.wgsl). */
const RM = 8;
const RN = 16;

const MAX_Z = 65535;

/**
 * Runs the GEMM kernel into a new tensor, without recording a gradient (a building block for
 * ops such as 1x1 convolutions).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { gemm } from "./matmul.ts";
 * await initGpu();
 * // y[b] = w [M,K] * x[b] [K,N] for every b, plus bias[m] on row m
 * const [m, n, k, batch] = [2, 2, 3, 1];
 * const w = tensor([1, 0, 0, 0, 1, 1], [m, k]);
 * const x = tensor([1, 2, 3, 4, 5, 6], [batch, k, n]);
 * const bias = tensor([10, 20], [m]);
 * const y = gemm({ op: "conv1x1", a: w, transA: false, b: x, transB: false, m, n, k, batch,
 *   aBatched: false, bBatched: true, bias, biasRows: true, outShape: [batch, m, n] });
 * assert.deepEqual([...await y.read()], [11, 12, 28, 30]);
 * ```
 */
export function gemm(s: GemmSpec): Tensor {
  const { m, n, k, batch } = s;
  const out = empty(s.outShape);
  if (out.size === 0) return out;
  if (k === 0) {
    // An empty reduction: zeros (plus bias).
    const zeros = full(s.outShape, 0);
    out.dispose();
    if (!s.bias) return zeros;
    const r = add(zeros, s.biasRows ? s.bias.reshape([s.m, 1]) : s.bias);
    zeros.dispose();
    return r;
  }
  if (kernelFamily() === "gpu") return gemmTiled(s, out);
  // 8 invocations side by side along the columns: one SIMD row on lavapipe, where a smaller
  // workgroup costs the same; a single size also keeps the number of pipelines down.
  const wg = 8;
  const aMode = !s.transA && k % 4 === 0 ? 0 : s.transA && m % 4 === 0 ? 1 : 2;
  const bMode = !s.transB && n % 4 === 0 ? 0 : s.transB && k % 4 === 0 ? 1 : 2;
  const defines = {
    WG: wg,
    A_MODE: aMode,
    B_MODE: bMode,
    A_TRANS: String(s.transA),
    B_TRANS: String(s.transB),
    C_VEC: String(n % 4 === 0),
    K4: String(k % 4 === 0),
    BIAS: s.bias ? (s.biasRows ? 2 : 1) : 0,
  };
  const gx = Math.ceil(n / (RN * wg));
  const gy = Math.ceil(m / RM);
  for (let z0 = 0; z0 < batch; z0 += MAX_Z) {
    dispatch({
      op: s.op,
      kernel: MATMUL,
      entry: "matmul",
      defines,
      ints: [
        m,
        n,
        k,
        batch,
        s.aBatched ? m * k : 0,
        s.bBatched ? k * n : 0,
        m * n,
        z0,
      ],
      workgroups: [gx, gy, Math.min(MAX_Z, batch - z0)],
    }, [s.a.buffer, s.b.buffer, out.buffer, (s.bias ?? out).buffer]);
  }
  return out;
}

/** The workgroup-memory tiled GEMM (matmul_tiled.wgsl: 64 x 64 tiles of C) into `out`. */
function gemmTiled(s: GemmSpec, out: Tensor): Tensor {
  const defines = {
    A_TRANS: String(s.transA),
    B_TRANS: String(s.transB),
    BIAS: s.bias ? (s.biasRows ? 2 : 1) : 0,
  };
  for (let z0 = 0; z0 < s.batch; z0 += MAX_Z) {
    dispatch({
      op: s.op,
      kernel: MATMUL_TILED,
      entry: "matmul_tiled",
      defines,
      ints: [
        s.m,
        s.n,
        s.k,
        s.batch,
        s.aBatched ? s.m * s.k : 0,
        s.bBatched ? s.k * s.n : 0,
        s.m * s.n,
        z0,
      ],
      workgroups: [Math.ceil(s.n / 64), Math.ceil(s.m / 64), Math.min(MAX_Z, s.batch - z0)],
    }, [s.a.buffer, s.b.buffer, out.buffer, (s.bias ?? out).buffer]);
  }
  return out;
}

function shapeStr(s: Shape): string {
  return `[${s.join(",")}]`;
}

/**
 * Matrix product over the last two axes, with batch axes broadcast (NumPy rules):
 * `a` [..., M, K] (or [..., K, M] with `transA`), `b` [..., K, N] (or [..., N, K] with `transB`)
 * gives [..., M, N]. Differentiable in both inputs; the backward products use the transpose
 * flags of the kernel rather than transposed copies.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { matmul } from "./matmul.ts";
 * await initGpu();
 * const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
 * const b = tensor([1, 0, 0, 1, 1, 1], [3, 2]);
 * const c = matmul(a, b); // [2, 2]: [[4, 5], [10, 11]]
 * const d = matmul(a, a, { transB: true }); // a * a^T, [2, 2]
 * ```
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  if (a.rank < 2 || b.rank < 2) {
    throw new RangeError(
      `matmul: both operands need at least 2 axes, got a ${shapeStr(a.shape)} and b ${
        shapeStr(b.shape)
      }`,
    );
  }
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [m, ka] = transA ? [ac, ar] : [ar, ac];
  const [kb, n] = transB ? [bc, br] : [br, bc];
  if (ka !== kb) {
    throw new RangeError(
      `matmul: inner sizes differ: a ${shapeStr(a.shape)}${
        transA ? " (transposed)" : ""
      } has K=${ka}, ` +
        `b ${shapeStr(b.shape)}${transB ? " (transposed)" : ""} has K=${kb}`,
    );
  }
  const k = ka;
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  let batchShape: number[];
  try {
    batchShape = broadcastShapes(aBatch, bBatch);
  } catch {
    throw new RangeError(
      `matmul: batch axes of a ${shapeStr(a.shape)} and b ${shapeStr(b.shape)} do not broadcast`,
    );
  }
  const batch = sizeOf(batchShape);
  // Each operand is either one matrix per batch or one matrix for all; a partly broadcast
  // operand is expanded first (differentiably), which keeps the kernel to one stride.
  const expand = (t: Tensor, tb: Shape): Tensor => {
    if (sizeOf(tb) === batch || sizeOf(tb) === 1) return t;
    const target = [...batchShape, ...t.shape.slice(-2)];
    // The zeros stay alive: add's backward reads both of its inputs.
    return add(t, full(target, 0));
  };
  const ae = expand(a, aBatch);
  const be = expand(b, bBatch);
  if (ae !== a || be !== b) return matmul(ae, be, options);
  const aBatched = sizeOf(aBatch) === batch && batch > 1;
  const bBatched = sizeOf(bBatch) === batch && batch > 1;
  const outShape = [...batchShape, m, n];
  const out = gemm({
    op: "matmul",
    a,
    b,
    transA,
    transB,
    m,
    n,
    k,
    batch,
    aBatched,
    bBatched,
    outShape,
  });
  return record(out, "matmul", [a, b], (g) => {
    const gBatched = batch > 1;
    const full3 = (rows: number, cols: number) => [...batchShape, rows, cols];
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (a.requiresGrad) {
      // dA' = dC B'^T (A' = op(A)); with transA, dA = (dA')^T = B' dC^T.
      const raw = transA
        ? gemm({
          op: "matmul.backward_a",
          a: b,
          transA: transB,
          b: g,
          transB: true,
          m: k,
          n: m,
          k: n,
          batch,
          aBatched: bBatched,
          bBatched: gBatched,
          outShape: full3(k, m),
        })
        : gemm({
          op: "matmul.backward_a",
          a: g,
          transA: false,
          b,
          transB: !transB,
          m,
          n: k,
          k: n,
          batch,
          aBatched: gBatched,
          bBatched,
          outShape: full3(m, k),
        });
      ga = reduceBatch(raw, a.shape);
    }
    if (b.requiresGrad) {
      // dB' = A'^T dC; with transB, dB = (dB')^T = dC^T A'.
      const raw = transB
        ? gemm({
          op: "matmul.backward_b",
          a: g,
          transA: true,
          b: a,
          transB: transA,
          m: n,
          n: k,
          k: m,
          batch,
          aBatched: gBatched,
          bBatched: aBatched,
          outShape: full3(n, k),
        })
        : gemm({
          op: "matmul.backward_b",
          a,
          transA: !transA,
          b: g,
          transB: false,
          m: k,
          n,
          k: m,
          batch,
          aBatched,
          bBatched: gBatched,
          outShape: full3(k, n),
        });
      gb = reduceBatch(raw, b.shape);
    }
    return [ga, gb];
  });
}

/** Sums a batched gradient over the batch axes an operand was broadcast along. */
function reduceBatch(g: Tensor, shape: Shape): Tensor {
  if (g.size === sizeOf(shape)) {
    if (g.shape.join() === shape.join()) return g;
    const r = g.reshape(shape);
    g.dispose();
    return r;
  }
  const lead = g.rank - 2;
  const r = sum(g, { axes: [...Array(lead).keys()] });
  g.dispose();
  if (r.shape.join() === shape.join()) return r;
  const v = r.reshape(shape);
  r.dispose();
  return v;
}

/**
 * A fully connected layer in PyTorch's layout: `x` [..., in], `w` [out, in], optional `b` [out];
 * `y = x w^T + b` of shape [..., out]. Differentiable in all three (the bias is added inside the
 * product kernel).
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { linear } from "./matmul.ts";
 * await initGpu();
 * const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
 * const w = tensor([1, 0, 0, 0, 1, 0], [2, 3], { requiresGrad: true });
 * const b = tensor([0.5, -0.5], [2], { requiresGrad: true });
 * const y = linear(x, w, b); // [2, 2]: [[1.5, 1.5], [4.5, 4.5]]
 * ```
 */
export function linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  if (x.rank < 1 || w.rank !== 2) {
    throw new RangeError(
      `linear: x must be [..., in] and w [out, in], got x ${shapeStr(x.shape)} and w ${
        shapeStr(w.shape)
      }`,
    );
  }
  const [outF, inF] = w.shape;
  if (x.shape[x.rank - 1] !== inF) {
    throw new RangeError(
      `linear: x ${shapeStr(x.shape)} has ${x.shape[x.rank - 1]} input features, w ${
        shapeStr(w.shape)
      } expects ${inF}`,
    );
  }
  if (b && (b.rank !== 1 || b.shape[0] !== outF)) {
    throw new RangeError(
      `linear: bias ${shapeStr(b.shape)} must be [${outF}] for w ${shapeStr(w.shape)}`,
    );
  }
  const rows = x.size / Math.max(inF, 1) || 0;
  const outShape = [...x.shape.slice(0, -1), outF];
  const out = gemm({
    op: "linear",
    a: x,
    transA: false,
    b: w,
    transB: true,
    m: rows,
    n: outF,
    k: inF,
    batch: 1,
    aBatched: false,
    bBatched: false,
    bias: b,
    outShape,
  });
  const inputs = b ? [x, w, b] : [x, w];
  return record(out, "linear", inputs, (g) => {
    // dx = g w  [rows, in];  dw = g^T x  [out, in];  db = sum of g over rows.
    const gx = x.requiresGrad
      ? gemm({
        op: "linear.backward_x",
        a: g,
        transA: false,
        b: w,
        transB: false,
        m: rows,
        n: inF,
        k: outF,
        batch: 1,
        aBatched: false,
        bBatched: false,
        outShape: x.shape,
      })
      : null;
    const gw = w.requiresGrad
      ? gemm({
        op: "linear.backward_w",
        a: g,
        transA: true,
        b: x,
        transB: false,
        m: outF,
        n: inF,
        k: rows,
        batch: 1,
        aBatched: false,
        bBatched: false,
        outShape: w.shape,
      })
      : null;
    const grads: (Tensor | null)[] = [gx, gw];
    if (b) {
      if (b.requiresGrad) {
        const g2 = g.reshape([rows, outF]);
        grads.push(sum(g2, { axes: 0 }));
        g2.dispose();
      } else grads.push(null);
    }
    return grads;
  });
}
