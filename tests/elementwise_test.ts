// Elementwise ops: forward against float64 references, gradients against finite differences,
// on several shapes including odd ones and broadcasting.

import { nn, type Tensor } from "../mod.ts";
import { checkOp, numel } from "./_helpers.ts";

const SHAPES = [[7], [3, 5], [2, 3, 7, 5]];

type Unary = [string, (x: Tensor) => Tensor, (v: number) => number, [number, number]?];

const UNARY: Unary[] = [
  ["neg", nn.neg, (v) => -v],
  ["exp", nn.exp, Math.exp],
  ["log", nn.log, Math.log, [0.2, 3]],
  ["sqrt", nn.sqrt, Math.sqrt, [0.2, 3]],
  ["abs", nn.abs, Math.abs],
  ["square", nn.square, (v) => v * v],
  ["relu", nn.relu, (v) => Math.max(v, 0)],
  ["leakyRelu", (x) => nn.leakyRelu(x, 0.1), (v) => (v > 0 ? v : 0.1 * v)],
  ["sigmoid", nn.sigmoid, (v) => 1 / (1 + Math.exp(-v))],
  ["tanh", nn.tanh, Math.tanh],
  ["clamp", (x) => nn.clamp(x, -0.5, 0.7), (v) => Math.min(0.7, Math.max(-0.5, v))],
  ["pow", (x) => nn.pow(x, 2.5), (v) => v ** 2.5, [0.2, 3]],
  ["pow 2 (negative inputs)", (x) => nn.pow(x, 2), (v) => v ** 2],
  ["pow 3 (negative inputs)", (x) => nn.pow(x, 3), (v) => v ** 3],
  ["pow -1", (x) => nn.pow(x, -1), (v) => v ** -1, [-3, -0.3]],
  ["pow 0", (x) => nn.pow(x, 0), () => 1],
  ["add scalar", (x) => nn.add(x, 1.5), (v) => v + 1.5],
  ["scalar sub", (x) => nn.sub(2, x), (v) => 2 - v],
  ["mul scalar", (x) => nn.mul(x, -3), (v) => -3 * v],
  ["div scalar", (x) => nn.div(x, 4), (v) => v / 4],
  ["scalar div", (x) => nn.div(2, x), (v) => 2 / v, [0.5, 2]],
];

for (const [name, op, f, range] of UNARY) {
  Deno.test(`${name}: forward and gradient`, async () => {
    for (const shape of SHAPES) {
      await checkOp({
        name,
        inputs: [{ shape, range }],
        gpu: op,
        ref: (x) => x.map(f),
      });
    }
  });
}

function broadcastRef(
  f: (a: number, b: number) => number,
  sa: number[],
  sb: number[],
): (a: Float64Array, b: Float64Array) => Float64Array {
  const rank = Math.max(sa.length, sb.length);
  const pa = [...Array(rank - sa.length).fill(1), ...sa];
  const pb = [...Array(rank - sb.length).fill(1), ...sb];
  const out = pa.map((d, i) => Math.max(d, pb[i]));
  return (a, b) => {
    const n = numel(out);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let rem = i;
      let ia = 0, ib = 0, stA = 1, stB = 1;
      for (let k = rank - 1; k >= 0; k--) {
        const c = rem % out[k];
        rem = Math.floor(rem / out[k]);
        ia += (pa[k] === 1 ? 0 : c) * stA;
        ib += (pb[k] === 1 ? 0 : c) * stB;
        stA *= pa[k];
        stB *= pb[k];
      }
      y[i] = f(a[ia], b[ib]);
    }
    return y;
  };
}

const BINARY: [string, (a: Tensor, b: Tensor) => Tensor, (a: number, b: number) => number][] = [
  ["add", nn.add, (a, b) => a + b],
  ["sub", nn.sub, (a, b) => a - b],
  ["mul", nn.mul, (a, b) => a * b],
  ["maximum", nn.maximum, Math.max],
  ["minimum", nn.minimum, Math.min],
];

const PAIRS: [number[], number[]][] = [
  [[7, 5], [7, 5]],
  [[2, 3, 4], [3, 1]],
  [[1, 3, 1, 5], [2, 1, 7, 1]],
];

for (const [name, op, f] of BINARY) {
  Deno.test(`${name}: broadcasting forward and gradients`, async () => {
    for (const [sa, sb] of PAIRS) {
      await checkOp({
        name,
        inputs: [{ shape: sa }, { shape: sb }],
        gpu: (a, b) => op(a, b),
        ref: broadcastRef(f, sa, sb),
      });
    }
  });
}

Deno.test("div: broadcasting forward and gradients", async () => {
  for (const [sa, sb] of PAIRS) {
    await checkOp({
      name: "div",
      inputs: [{ shape: sa }, { shape: sb, range: [0.5, 2] }],
      gpu: (a, b) => nn.div(a, b),
      ref: broadcastRef((a, b) => a / b, sa, sb),
    });
  }
});

Deno.test("mul of a tensor with itself accumulates both gradients", async () => {
  await checkOp({
    name: "x*x",
    inputs: [{ shape: [3, 5] }],
    gpu: (x) => nn.mul(x, x),
    ref: (x) => x.map((v) => v * v),
  });
});

Deno.test("broadcasting errors name both shapes", () => {
  let message = "";
  try {
    nn.broadcastShapes([2, 3], [4, 3]);
  } catch (e) {
    message = (e as Error).message;
  }
  if (!message.includes("[2,3]") || !message.includes("[4,3]")) {
    throw new Error(`unexpected message: ${message}`);
  }
});

Deno.test("broadcasting over long rows and many segments (segment kernel)", async () => {
  // Rows of 70 elements (3 segments, the last partial), a [C,1,1]-style bias and a row vector.
  const cases: [number[], number[]][] = [
    [[2, 3, 4, 70], [3, 1, 1]],
    [[5, 70], [70]],
    [[70, 1], [1, 33]],
  ];
  for (const [sa, sb] of cases) {
    await checkOp({
      name: "mul (segments)",
      inputs: [{ shape: sa }, { shape: sb }],
      gpu: (a, b) => nn.mul(a, b),
      ref: broadcastRef((a, b) => a * b, sa, sb),
    });
  }
});
