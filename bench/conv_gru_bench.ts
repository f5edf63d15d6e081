/**
 * ConvGRU gates: the fused kernel (`nn.convGruGates`, src/tensor/ops/conv_gru.wgsl) against the same
 * arithmetic composed from `slice` and elementwise ops (the baseline of each Deno.bench group),
 * forward and forward+backward, at STQA-Net's GRU shape: N = 16 frames, C = 64 hidden channels,
 * 32x32 (128x128 input at 1/4 resolution), so gx, gh are [16, 192, 32, 32] and h [16, 64, 32, 32].
 *
 * Bytes moved are those of the fused kernels, with M = N*C*H*W float32 elements: forward reads
 * gx, gh (3M each) and h (M) and writes h' (M): 8M floats; the backward reads gx, gh, h and g
 * (8M) and writes dgx, dgh (3M each) and dh (M): 15M; forward+backward 23M. GB/s = those bytes
 * over the time, for both implementations (the same work; the composed version moves about 5x
 * as many bytes through its 14 intermediate tensors and makes ~14 dispatches instead of 1).
 *
 * Method: each Deno.bench iteration encodes one unit of work and waits for the GPU
 * (`syncGpu()`); the summary printed at the end takes the median of the iterations after the
 * first (which compiles the pipelines) less the idle sync latency (median of 7 empty syncs,
 * measured at start-up), as bench/_suite.ts does. Before timing, the fused and composed results
 * (h' and all three gradients) are compared on the bench shapes.
 *
 *   deno bench --allow-read --allow-env bench/conv_gru_bench.ts
 *
 * @module
 */

import { initGpu } from "../src/gpu/device.ts";
import { syncGpu } from "../src/gpu/queue.ts";
import * as nn from "../src/nn/mod.ts";
import { noGrad, type Tensor, tensor, tidy } from "../src/tensor/tensor.ts";
import { seededRandom } from "../src/_random.ts";
import { fmt, formatTable } from "./_timing.ts";

const [N, C, H, W] = [16, 64, 32, 32];
const M = N * C * H * W;
const ITER = 5;

/** The gates composed from slice and elementwise ops (what the fused kernel replaces). */
function composedGates(gx: Tensor, gh: Tensor, h: Tensor): Tensor {
  const c = h.shape[1];
  const ch = (t: Tensor, start: number, end: number) => nn.slice(t, { axis: 1, start, end });
  const rz = nn.sigmoid(nn.add(ch(gx, 0, 2 * c), ch(gh, 0, 2 * c)));
  const r = ch(rz, 0, c);
  const z = ch(rz, c, 2 * c);
  const n = nn.tanh(nn.add(ch(gx, 2 * c, 3 * c), nn.mul(r, ch(gh, 2 * c, 3 * c))));
  return nn.add(n, nn.mul(z, nn.sub(h, n)));
}

type Gates = (gx: Tensor, gh: Tensor, h: Tensor) => Tensor;

await initGpu();
const rand = seededRandom(2026);
const normal = (n: number) => Float32Array.from({ length: n }, () => rand.normal());
const gx = tensor(normal(3 * M), [N, 3 * C, H, W], { requiresGrad: true });
const gh = tensor(normal(3 * M), [N, 3 * C, H, W], { requiresGrad: true });
const h = tensor(normal(M), [N, C, H, W], { requiresGrad: true });
const g = tensor(normal(M), [N, C, H, W]);
const inputs = [gx, gh, h];

function forward(f: Gates): void {
  tidy(() => noGrad(() => f(gx, gh, h)));
}

function forwardBackward(f: Gates): void {
  tidy(() => f(gx, gh, h).backward(g));
  for (const t of inputs) {
    t.grad?.dispose();
    t.grad = null;
  }
}

/** h' and the three gradients of one implementation, read back. */
async function results(f: Gates): Promise<Float32Array[]> {
  const y = tidy(() => {
    const y = f(gx, gh, h);
    y.backward(g);
    return y;
  });
  const out = [await y.read()];
  y.dispose();
  for (const t of inputs) {
    out.push(await t.grad!.read());
    t.grad!.dispose();
    t.grad = null;
  }
  return out;
}

const fusedRes = await results(nn.convGruGates);
const composedRes = await results(composedGates);
const maxDiff = Math.max(
  ...fusedRes.map((a, k) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - composedRes[k][i])), 0)),
);
console.log(`fused vs composed (h', dgx, dgh, dh): max |difference| ${maxDiff.toExponential(2)}`);
if (!(maxDiff <= 1e-5)) throw new Error(`fused and composed gates differ by ${maxDiff}`);

const idle: number[] = [];
await syncGpu();
for (let i = 0; i < 7; i++) {
  const t0 = performance.now();
  await syncGpu();
  idle.push(performance.now() - t0);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const latency = median(idle);

interface Case {
  group: string;
  impl: string;
  floats: number;
  run: () => void;
  times: number[];
}
const cases: Case[] = [];
for (
  const [group, floats, run] of [
    ["forward", 8 * M, forward],
    ["forward+backward", 23 * M, forwardBackward],
  ] as const
) {
  for (const [impl, f] of [["composed", composedGates], ["fused", nn.convGruGates]] as const) {
    const c: Case = { group, impl, floats, run: () => run(f), times: [] };
    cases.push(c);
    Deno.bench({
      name: `${impl} ${group}`,
      group: `convGruGates ${group} [${N},${C},${H},${W}]`,
      baseline: impl === "composed",
      n: ITER,
      warmup: 0,
      async fn() {
        const t0 = performance.now();
        c.run();
        await syncGpu();
        c.times.push(performance.now() - t0);
      },
    });
  }
}

globalThis.addEventListener("unload", () => {
  if (!cases.some((c) => c.times.length > 1)) return;
  const rows = cases.map((c) => {
    const ms = c.times.length > 1 ? Math.max(median(c.times.slice(1)) - latency, 1e-3) : NaN;
    const base = cases.find((b) => b.group === c.group && b.impl === "composed")!;
    const baseMs = base.times.length > 1 ? median(base.times.slice(1)) - latency : NaN;
    return [
      c.group,
      c.impl,
      fmt(c.floats * 4 / 2 ** 20, 0),
      fmt(ms, 2),
      fmt(c.floats * 4 / (ms * 1e6), 2),
      `${fmt(baseMs / ms, 2)}x`,
    ];
  });
  const text = `\n## convGruGates [${N},${C},${H},${W}]: summary\n\nMedian of ${ITER - 1} ` +
    `iterations after the first, less the idle sync latency (${fmt(latency, 1)} ms).\n\n` +
    formatTable(["pass", "impl", "MiB moved (fused count)", "ms", "GB/s", "speed-up"], rows) + "\n";
  const bytes = new TextEncoder().encode(text);
  for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
});
