/**
 * The Swin-T ops of issue #18 at Swin-T shapes (224x224, 32 frames, patches of 2x4x4: 16x56x56
 * tokens of 96 channels in stage 1, windows of 8x7x7 = 392 tokens, heads of 32 channels), each
 * against a baseline composed from older ops in the same run (the baseline of each Deno.bench
 * group), forward and forward+backward:
 *
 * - `nn.layerNorm` (layer_norm.wgsl) against mean / sub / square / mean / add / sqrt / div / mul /
 *   add, rows `[50176, 96]` (stage 1), `[12544, 192]` (stage 2), `[6272, 384]`.
 * - `nn.softmax` (softmax.wgsl) against `exp(x - c) / sum(exp(x - c))` composed from elementwise
 *   and reduce ops (reduce.ts has no max: c is the row mean, enough for these inputs and the same
 *   passes), on `[B*nW*nH*N, N]` with N = 392: the 36 windows x 3 heads of one default attention
 *   chunk in stage 1 (`[42336, 392]`) and the 192 matrices of stage 3 (`[75264, 392]`).
 * - `nn.attention` at stage 1 (1 x 128 windows x 3 heads x 392 x 32: 59M scores, 236 MB, over
 *   the 128 MiB binding) and stage 3 (16 windows x 12 heads x 392 x 32: 29.5M scores, 118 MB,
 *   under the binding), with Swin's two biases (relative position `[nH, N, N]`, window mask
 *   `[nW, 1, N, N]`): `fused` (the default: attention.wgsl's fused forward, the chunked
 *   recomputing backward) against `chunked` (`fused: false`: the chunked composition forward and
 *   backward, the baseline), and at stage 3 the plain unchunked composition
 *   `matmul(softmax(matmul(q * scale, k^T) + bias), v)` with autograd (`composed`).
 *
 * FLOPs counted (the same count for both implementations of a case, so GFLOP/s compare work done
 * per second): attention, the matrix products only: forward 2 products of 2 N^2 d per matrix
 * (4 B N^2 d), backward 4 more (dv, dP, dq, dk: 8 B N^2 d; the chunked backward's recomputed
 * forward product is not counted), forward+backward 12 B N^2 d. softmax: 5 per element forward
 * (max, subtract, exp, sum, scale), 4 backward (product, sum, subtract, product). layerNorm: 8 per
 * element forward (sum, subtract, square, sum, subtract, scale, weight, bias), 11 backward.
 * Bytes (the fused kernels' minimal traffic, float32): softmax and layerNorm forward 8 per element
 * (read x, write y), backward 12 (read two, write one); attention not reported (compute-bound).
 * `% peak` is the GFLOP/s over the adapter's peak measured by bench/_peak.ts in this process.
 *
 * Method (bench/conv_gru_bench.ts's): each Deno.bench iteration encodes one unit of work and
 * waits for the GPU (`syncGpu()`); the summary printed at the end takes the median of the
 * iterations after the first (which compiles the pipelines) less the idle sync latency (median of
 * 7 empty syncs). Before timing, each op is checked against its baseline on the bench shapes
 * (outputs and input gradients), and stage 1 attention against a float64 reference on one window.
 *
 *   XDG_RUNTIME_DIR=/tmp deno bench -A bench/attention_bench.ts
 *   SWIN_OPS=attention XDG_RUNTIME_DIR=/tmp deno bench -A bench/attention_bench.ts  # one group
 *
 * @module
 */

import { initGpu } from "../src/gpu/device.ts";
import { syncGpu } from "../src/gpu/queue.ts";
import * as nn from "../src/nn/mod.ts";
import { noGrad, type Tensor, tensor, tidy } from "../src/tensor/tensor.ts";
import { seededRandom } from "../src/_random.ts";
import { describePeak, peakOnce } from "./_peak.ts";
import { fmt, formatTable, gflops } from "./_timing.ts";

await initGpu();
const peak = await peakOnce();
console.log(describePeak(peak));
const rand = seededRandom(18);
const normal = (n: number, scale = 1) =>
  Float32Array.from({ length: n }, () => rand.normal() * scale);
/** The groups to run (SWIN_OPS: a comma-separated subset of layerNorm, softmax, attention). */
const only = (Deno.env.get("SWIN_OPS") ?? "layerNorm,softmax,attention").split(",");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Case {
  group: string;
  pass: "forward" | "forward+backward";
  label: string;
  flops: number;
  /** Bytes of the fused kernels' traffic, when the op is memory-bound. */
  bytes?: number;
  impl: string;
  baseline: boolean;
  iters: number;
  run: () => void;
  times: number[];
}
const cases: Case[] = [];

function register(c: Omit<Case, "times">): void {
  const rec: Case = { ...c, times: [] };
  cases.push(rec);
  Deno.bench({
    name: `${c.impl} ${c.pass}`,
    group: `${c.group} ${c.label} ${c.pass}`,
    baseline: c.baseline,
    n: c.iters,
    warmup: 0,
    async fn() {
      const t0 = performance.now();
      rec.run();
      await syncGpu();
      rec.times.push(performance.now() - t0);
    },
  });
}

/** Forward (no graph) and forward+backward units of `f` on `inputs` with output gradient `g`. */
function units(f: () => Tensor, inputs: Tensor[], g: Tensor): [() => void, () => void] {
  const fwd = () => tidy(() => noGrad(f)).dispose();
  const both = () => {
    tidy(() => f().backward(g));
    for (const t of inputs) {
      t.grad?.dispose();
      t.grad = null;
    }
  };
  return [fwd, both];
}

/** The largest |a - b| over the outputs and the input gradients of two implementations. */
async function compare(fs: (() => Tensor)[], inputs: Tensor[], g: Tensor): Promise<number> {
  const res: Float32Array[][] = [];
  for (const f of fs) {
    const y = tidy(() => {
      const y = f();
      y.backward(g);
      return y;
    });
    const out = [await y.read()];
    y.dispose();
    for (const t of inputs) {
      if (!t.grad) continue;
      out.push(await t.grad.read());
      t.grad.dispose();
      t.grad = null;
    }
    res.push(out);
  }
  let worst = 0;
  res[0].forEach((a, k) => {
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - res[1][k][i]));
  });
  return worst;
}

// Layer norm: fused against composed.
const composedLayerNorm = (x: Tensor, w: Tensor, b: Tensor): Tensor => {
  const m = nn.mean(x, { axes: -1, keepDims: true });
  const d = nn.sub(x, m);
  const v = nn.mean(nn.square(d), { axes: -1, keepDims: true });
  return nn.add(nn.mul(nn.div(d, nn.sqrt(nn.add(v, 1e-5))), w), b);
};
for (
  const [rows, c] of only.includes("layerNorm") ? [[50176, 96], [12544, 192], [6272, 384]] : []
) {
  const n = rows * c;
  const x = tensor(normal(n, 2), [rows, c], { requiresGrad: true });
  const w = tensor(normal(c), [c], { requiresGrad: true });
  const b = tensor(normal(c), [c], { requiresGrad: true });
  const g = tensor(normal(n), [rows, c]);
  const fused = () => nn.layerNorm(x, w, b);
  const composed = () => composedLayerNorm(x, w, b);
  const diff = await compare([fused, composed], [x, w, b], g);
  console.log(
    `layerNorm [${rows},${c}] fused vs composed: max |difference| ${diff.toExponential(2)}`,
  );
  const label = `[${rows},${c}]`;
  for (const [impl, f] of [["composed", composed], ["layerNorm", fused]] as const) {
    const [fwd, both] = units(f, [x, w, b], g);
    const common = { group: "layerNorm", label, impl, baseline: impl === "composed", iters: 5 };
    register({ ...common, pass: "forward", flops: 8 * n, bytes: 8 * n, run: fwd });
    register({ ...common, pass: "forward+backward", flops: 19 * n, bytes: 20 * n, run: both });
  }
}

// Softmax: the kernel against exp / sum composed (the row mean subtracted for stability, which
// is enough for these inputs; the composed version makes the same passes as a max would).
const composedSoftmax = (x: Tensor): Tensor => {
  const e = nn.exp(nn.sub(x, nn.mean(x, { axes: -1, keepDims: true })));
  return nn.div(e, nn.sum(e, { axes: -1, keepDims: true }));
};
for (
  const [rows, c] of only.includes("softmax") ? [[36 * 3 * 392, 392], [16 * 12 * 392, 392]] : []
) {
  const n = rows * c;
  const x = tensor(normal(n, 2), [rows, c], { requiresGrad: true });
  const g = tensor(normal(n), [rows, c]);
  const fused = () => nn.softmax(x);
  const composed = () => composedSoftmax(x);
  const diff = await compare([fused, composed], [x], g);
  console.log(
    `softmax [${rows},${c}] kernel vs composed: max |difference| ${diff.toExponential(2)}`,
  );
  const label = `[${rows},${c}]`;
  for (const [impl, f] of [["composed", composed], ["softmax", fused]] as const) {
    const [fwd, both] = units(f, [x], g);
    const common = { group: "softmax", label, impl, baseline: impl === "composed", iters: 5 };
    register({ ...common, pass: "forward", flops: 5 * n, bytes: 8 * n, run: fwd });
    register({ ...common, pass: "forward+backward", flops: 9 * n, bytes: 20 * n, run: both });
  }
}

// Attention at Swin-T stages 1 and 3.
const composedAttention = (q: Tensor, k: Tensor, v: Tensor, biases: Tensor[], scale: number) => {
  let s = nn.matmul(nn.mul(q, scale), k, { transB: true });
  for (const b of biases) s = nn.add(s, b);
  return nn.matmul(nn.softmax(s), v);
};
const [N, D] = [392, 32];
for (const [stage, nW, nH] of only.includes("attention") ? [[1, 128, 3], [3, 16, 12]] : []) {
  const lead = [1, nW, nH];
  const shape = [...lead, N, D];
  const n = nW * nH * N * D;
  const [q, k, v] = [0, 1, 2].map(() => tensor(normal(n), shape, { requiresGrad: true }));
  const rel = tensor(normal(nH * N * N), [nH, N, N]);
  const mask = tensor(
    Float32Array.from({ length: nW * N * N }, (_, i) => (i * 7919) % 7 === 0 ? -100 : 0),
    [nW, 1, N, N],
  );
  const g = tensor(normal(n), shape);
  const scale = D ** -0.5;
  const fused = () => nn.attention(q, k, v, { scale, bias: [rel, mask] });
  const chunked = () => nn.attention(q, k, v, { scale, bias: [rel, mask], fused: false });
  const composed = () => composedAttention(q, k, v, [rel, mask], scale);
  const matrices = nW * nH;
  const fwdFlops = 4 * matrices * N * N * D;
  const label = `stage ${stage} [1,${nW},${nH},${N},${D}]`;
  const impls: [string, () => Tensor][] = [["chunked", chunked], ["fused", fused]];
  const diff = await compare([fused, chunked], [q, k, v], g);
  console.log(`attention ${label} fused vs chunked: max |difference| ${diff.toExponential(2)}`);
  if (matrices * N * N * 4 < 2 ** 27) {
    impls.push(["composed", composed]);
    const diff = await compare([chunked, composed], [q, k, v], g);
    console.log(
      `attention ${label} chunked vs composed: max |difference| ${diff.toExponential(2)}`,
    );
  } else {
    // No unchunked baseline fits: one window against float64 instead.
    const y = await tidy(() => noGrad(fused)).read();
    const [qd, kd, vd, rd, md] = await Promise.all([q, k, v, rel, mask].map((t) => t.read()));
    const [w, h] = [77, 2];
    const at = (w * nH + h) * N * D;
    let worst = 0;
    const row = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      let m = -Infinity;
      for (let j = 0; j < N; j++) {
        let sc = 0;
        for (let t = 0; t < D; t++) sc += qd[at + i * D + t] * kd[at + j * D + t];
        row[j] = sc * scale + rd[(h * N + i) * N + j] + md[(w * N + i) * N + j];
        m = Math.max(m, row[j]);
      }
      let sum = 0;
      for (let j = 0; j < N; j++) sum += row[j] = Math.exp(row[j] - m);
      for (let t = 0; t < D; t++) {
        let acc = 0;
        for (let j = 0; j < N; j++) acc += row[j] * vd[at + j * D + t];
        worst = Math.max(worst, Math.abs(acc / sum - y[at + i * D + t]));
      }
    }
    console.log(
      `attention ${label} against float64 (window ${w}, head ${h}): max |error| ${
        worst.toExponential(2)
      }`,
    );
  }
  for (const [impl, f] of impls) {
    const [fwd, both] = units(f, [q, k, v], g);
    const common = { group: "attention", label, impl, baseline: impl === "chunked", iters: 3 };
    register({ ...common, pass: "forward", flops: fwdFlops, run: fwd });
    register({ ...common, pass: "forward+backward", flops: 3 * fwdFlops, run: both });
  }
}

const idle: number[] = [];
await syncGpu();
for (let i = 0; i < 7; i++) {
  const t0 = performance.now();
  await syncGpu();
  idle.push(performance.now() - t0);
}
const latency = median(idle);

globalThis.addEventListener("unload", () => {
  if (!cases.some((c) => c.times.length > 1)) return;
  const ms = (c: Case) =>
    c.times.length > 1 ? Math.max(median(c.times.slice(1)) - latency, 1e-3) : NaN;
  const rows = cases.map((c) => {
    const t = ms(c);
    const base = cases.find((b) =>
      b.group === c.group && b.label === c.label && b.pass === c.pass && b.baseline
    );
    const g = gflops(c.flops, t);
    return [
      c.group,
      c.label,
      c.pass,
      c.impl,
      fmt(c.flops / 1e9, 3),
      fmt(t, 1),
      fmt(g, 2),
      `${fmt(100 * g / peak.gflops, 1)}%`,
      c.bytes ? fmt(c.bytes / (t * 1e6), 2) : "-",
      base ? `${fmt(ms(base) / t, 2)}x` : "-",
    ];
  });
  const text = `\n## Swin-T ops: summary\n\nMedian of the iterations after the first, less the ` +
    `idle sync latency (${fmt(latency, 1)} ms); peak ${fmt(peak.gflops)} GFLOP/s.\n\n` +
    formatTable(
      ["op", "shape", "pass", "impl", "GFLOP", "ms", "GFLOP/s", "% peak", "GB/s", "speed-up"],
      rows,
    ) + "\n";
  const bytes = new TextEncoder().encode(text);
  for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
});
