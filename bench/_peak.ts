/**
 * The adapter's measured arithmetic peak: bench/peak.wgsl runs many independent vec4 FMA
 * chains per invocation over enough workgroups to keep every CPU core (lavapipe) or SM busy.
 * The benchmarks report their GFLOP/s as a fraction of this figure.
 *
 * The kernel is swept over the number of independent chains per invocation (on lavapipe a vec4
 * chain is 4 SIMD registers across 8 invocations, so too many chains spill and too few cannot
 * hide the FMA latency); the best configuration is the peak. Each configuration's result buffer
 * is read back and checked against the closed form of the chains, so a kernel the compiler
 * optimised away would be caught rather than reported as a huge GFLOP/s figure.
 *
 * @module
 */

import { getGpu } from "../src/gpu/device.ts";
import { dispatch, readBuffer, syncGpu, writeBuffer } from "../src/gpu/queue.ts";
import { kernel } from "../src/gpu/program.ts";
import { gflops, timeGpu } from "./_timing.ts";

/** The FMA chains (peak.wgsl beside this file). */
const PEAK = kernel(new URL("./peak.wgsl", import.meta.url), {
  storage: [{ name: "io", type: "vec4<f32>" }],
});

/** Options of {@link measurePeak}. */
export interface PeakOptions {
  /** Chain counts to try (default [4, 8, 16]). */
  chains?: number[];
  /** Workgroup sizes to try (default [64, 256]). */
  workgroupSizes?: number[];
  /** Invocations per dispatch (default 16384: 64 to 256 workgroups, many per core). */
  invocations?: number;
  /** Approximate duration of one dispatch in ms (default 50). */
  targetMs?: number;
  /** Dispatches per sync (default 4), so that the sync latency is shared. */
  reps?: number;
  /** Timed trials per configuration (default 3). */
  trials?: number;
}

/** One configuration of the sweep. */
export interface PeakPoint {
  /** Independent vec4 chains per invocation. */
  chains: number;
  /** Workgroup size. */
  workgroupSize: number;
  /** Loop trips per invocation. */
  iters: number;
  /** Floating-point operations per dispatch. */
  flops: number;
  /**
   * Best trial's time per dispatch (noise from other processes only ever slows a trial), less
   * the idle sync latency shared by the trial's dispatches.
   */
  ms: number;
  /** GFLOP/s at that time. */
  gflops: number;
}

/** The measured peak. */
export interface PeakResult {
  /** Best GFLOP/s over the sweep. */
  gflops: number;
  /** The configuration that reached it. */
  best: PeakPoint;
  /** Every configuration tried. */
  sweep: PeakPoint[];
  /** Invocations per dispatch. */
  invocations: number;
}

const M = 0.999;
const C = 0.001;

/** Sum over the chains of invocation `i` after `iters` trips, as peak.wgsl computes it. */
function expected(i: number, chains: number, iters: number): number[] {
  const s = (i % 1024) * 1e-4;
  const offsets = [
    0,
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    -0.1,
    -0.2,
    -0.3,
    -0.4,
    -0.5,
    -0.6,
    -0.7,
    -0.8,
  ];
  const m = Math.fround(M);
  const fixed = Math.fround(C) / (1 - m);
  const mk = m ** iters;
  return [0, 1, 2, 3].map((lane) => {
    let sum = 0;
    offsets.forEach((o, k) => {
      const a0 = s + 0.01 * lane + o;
      // a_n = p + (a_0 - p) m^n, with p = c / (1 - m) the fixed point of a = a m + c.
      sum += k < chains ? fixed + (a0 - fixed) * mk : a0;
    });
    return sum;
  });
}

/**
 * Measures the adapter's arithmetic peak in GFLOP/s (the GPU must be initialised).
 *
 * @example
 * ```ts
 * import { initGpu } from "../src/gpu/device.ts";
 * import { measurePeak } from "./_peak.ts";
 * await initGpu();
 * const peak = await measurePeak({ chains: [4, 8] });
 * console.log(`${peak.gflops.toFixed(1)} GFLOP/s with ${peak.best.chains} chains`);
 * ```
 */
export async function measurePeak(options: PeakOptions = {}): Promise<PeakResult> {
  const {
    chains: chainList = [4, 8, 16],
    workgroupSizes = [64, 256],
    invocations: n = 16384,
    targetMs = 50,
    reps = 4,
    trials = 3,
  } = options;
  const { device } = getGpu();
  const io = device.createBuffer({
    size: (n + 2) * 16,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  try {
    writeBuffer(io, new Float32Array([M, M, M, M, C, C, C, C]));
    const sweep: PeakPoint[] = [];
    for (const workgroupSize of workgroupSizes) {
      if (n % workgroupSize !== 0) {
        throw new RangeError(
          `measurePeak: ${n} invocations are not a multiple of ${workgroupSize}`,
        );
      }
      for (const chains of chainList) {
        if (!Number.isInteger(chains) || chains < 1 || chains > 16) {
          throw new RangeError(`measurePeak: chains must be 1 to 16, got ${chains}`);
        }
        sweep.push(await measureOne(io, n, chains, workgroupSize, { targetMs, reps, trials }));
      }
    }
    const best = sweep.reduce((a, b) => (b.gflops > a.gflops ? b : a));
    return { gflops: best.gflops, best, sweep, invocations: n };
  } finally {
    io.destroy();
  }
}

async function measureOne(
  io: GPUBuffer,
  n: number,
  chains: number,
  workgroupSize: number,
  { targetMs, reps, trials }: { targetMs: number; reps: number; trials: number },
): Promise<PeakPoint> {
  const launch = (iters: number) =>
    dispatch({
      op: "peak",
      kernel: PEAK,
      entry: "main",
      defines: { CHAINS: chains, WG: workgroupSize },
      ints: [iters, n, 0, 0],
      workgroups: [n / workgroupSize],
    }, [io]);
  // Calibrate the trip count so that one dispatch takes about targetMs: double it until the
  // fixed cost of a sync no longer dominates, then scale linearly.
  let iters = 256;
  let probe = await timeGpu(() => launch(iters), syncGpu, { reps: 1, trials: 1 });
  while (probe.medianMs < targetMs / 2) {
    iters *= 2;
    probe = await timeGpu(() => launch(iters), syncGpu, { reps: 1, trials: 1, warmup: 0 });
  }
  iters = Math.max(256, Math.round(iters * targetMs / probe.medianMs));
  const t = await timeGpu(() => launch(iters), syncGpu, { reps, trials, warmup: 0 });
  // Take out the fixed latency of the one sync per trial (median of idle syncs).
  const idle: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await syncGpu();
    idle.push(performance.now() - t0);
  }
  idle.sort((x, y) => x - y);
  const ms = Math.max(t.bestMs - idle[2] / reps, t.bestMs / 2);
  const flops = 2 * 4 * chains * iters * n;
  // Check the first and last invocations' results against the closed form.
  for (const i of [0, n - 1]) {
    const got = await readBuffer(io, 16, (2 + i) * 16);
    expected(i, chains, iters).forEach((want, lane) => {
      if (!(Math.abs(got[lane] - want) <= 1e-3 * Math.max(1, Math.abs(want)))) {
        throw new Error(
          `peak kernel (chains=${chains}) gave ${got[lane]} for invocation ${i} lane ${lane}, ` +
            `expected ${want}: the measurement is invalid`,
        );
      }
    });
  }
  return { chains, workgroupSize, iters, flops, ms, gflops: gflops(flops, ms) };
}

let cached: Promise<PeakResult> | null = null;

/**
 * {@link measurePeak} with default options, measured once per process and shared by the bench
 * files.
 *
 * @example
 * ```ts
 * import { initGpu } from "../src/gpu/device.ts";
 * import { peakOnce } from "./_peak.ts";
 * await initGpu();
 * console.log((await peakOnce()).gflops);
 * ```
 */
export function peakOnce(): Promise<PeakResult> {
  return cached ??= measurePeak();
}

/**
 * One line per configuration of a peak sweep, for logs.
 *
 * @example
 * ```ts
 * import { describePeak, peakOnce } from "./_peak.ts";
 * console.log(describePeak(await peakOnce()));
 * ```
 */
export function describePeak(peak: PeakResult): string {
  const rows = peak.sweep.map((p) =>
    `  wg ${String(p.workgroupSize).padStart(3)}, ${String(p.chains).padStart(2)} chains: ` +
    `${p.gflops.toFixed(1)} GFLOP/s (${p.iters} trips, ${p.ms.toFixed(1)} ms per dispatch)`
  );
  return `measured peak ${peak.gflops.toFixed(1)} GFLOP/s (best of the sweep over ` +
    `${peak.invocations} invocations):\n${rows.join("\n")}`;
}

/**
 * A runner for the best configuration of a sweep, to re-measure the peak later in the same
 * process (e.g. at the end of a bench file, when the load may differ): each call dispatches it
 * once; the returned `flops` is the work of one call. `dispose()` frees its buffer.
 *
 * @example
 * ```ts
 * import { peakOnce, peakRunner } from "./_peak.ts";
 * const r = peakRunner((await peakOnce()).best, (await peakOnce()).invocations);
 * r.run();
 * r.dispose();
 * ```
 */
export function peakRunner(
  point: PeakPoint,
  invocations: number,
): { run: () => void; flops: number; dispose: () => void } {
  const { device } = getGpu();
  const io = device.createBuffer({
    size: (invocations + 2) * 16,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  writeBuffer(io, new Float32Array([M, M, M, M, C, C, C, C]));
  return {
    flops: point.flops,
    run: () =>
      dispatch({
        op: "peak",
        kernel: PEAK,
        entry: "main",
        defines: { CHAINS: point.chains, WG: point.workgroupSize },
        ints: [point.iters, invocations, 0, 0],
        workgroups: [invocations / point.workgroupSize],
      }, [io]),
    dispose: () => io.destroy(),
  };
}
