/**
 * Registers paired benchmarks (STQA against the TF.js peer) with `Deno.bench` and prints a
 * GFLOP/s summary when the bench file ends.
 *
 * Method. One bench iteration encodes one unit of work and then waits for the GPU to finish it
 * (`syncGpu()` for STQA, {@link tfSync} for TF.js: submit, then `queue.onSubmittedWorkDone()`,
 * no read-back), so Deno.bench's per-iteration times include one sync each, on both sides. The
 * bench function also times each iteration with `performance.now()`. A sync on Deno + lavapipe
 * costs a fixed latency (about 11 ms even with nothing to wait for), which would swamp the small
 * layers; {@link measureSyncLatency} measures it for each library (median of idle syncs) at the
 * start, and the summary subtracts it from the median iteration time before computing GFLOP/s.
 * The first call of every bench (Deno's calibration run, which also compiles the pipelines) is
 * dropped from the summary. TF.js is the baseline of every Deno.bench group.
 *
 * @module
 */

import { syncGpu } from "../src/gpu/queue.ts";
import { type PeakResult, peakRunner } from "./_peak.ts";
import { tfSync } from "./_tfjs.ts";
import { fmt, formatTable, gflops } from "./_timing.ts";
import { CHECK_TOLERANCE } from "./_data.ts";

/** Iterations Deno.bench measures per case (`n`); it adds a calibration call and a warm-up. */
export const ITERATIONS = 1;

/** Which implementation a case runs. */
export type Impl = "stqa" | "tfjs";

/** One benchmark case. */
export interface CaseSpec {
  /** Group of the summary, e.g. "conv2d forward (16 frames)". */
  group: string;
  /** Shape label, e.g. "enc2 3x3 16->32 s2 @128". */
  label: string;
  /** Implementation. */
  impl: Impl;
  /** FLOPs of one unit of work. */
  flops: number;
  /** Encodes one unit of work (it may submit, and must free what it allocates). */
  run: () => void;
}

interface Recorded {
  spec: CaseSpec;
  timesMs: number[];
}

const recorded: Recorded[] = [];
/** Relative errors of a case's results against the float64 reference samples. */
export interface CheckResult {
  /** STQA against the reference. */
  stqa?: number;
  /** TF.js against the reference. */
  tfjs?: number;
}

const checks = new Map<string, CheckResult>();

/**
 * Records the correctness check of a case (relative max error of each library's result at
 * sampled positions against a float64 CPU reference), shown in the summary; prints an error at
 * once for a wrong result.
 *
 * @example
 * ```ts
 * import { noteCheck } from "./_suite.ts";
 * noteCheck("matmul", "512", { stqa: 2e-7, tfjs: 3e-7 });
 * ```
 */
export function noteCheck(group: string, label: string, result: CheckResult): void {
  checks.set(`${group}\u0000${label}`, result);
  for (const impl of ["stqa", "tfjs"] as const) {
    const e = result[impl];
    if (e !== undefined && !(e <= CHECK_TOLERANCE)) {
      console.error(
        `WRONG RESULT in ${group} ${label}: ${impl === "stqa" ? "STQA" : "TF.js"} differs from ` +
          `the float64 reference by ${e.toExponential(2)} (relative max error)`,
      );
    }
  }
}

function checkText(c: CheckResult | undefined): string {
  if (!c) return "-";
  const part = (name: string, e: number | undefined) =>
    e === undefined ? "" : e <= CHECK_TOLERANCE ? "" : `${name} WRONG ${e.toExponential(0)}`;
  const bad = [part("STQA", c.stqa), part("TF.js", c.tfjs)].filter(Boolean);
  const worst = Math.max(c.stqa ?? 0, c.tfjs ?? 0);
  return bad.length ? bad.join(", ") : `ok ${worst.toExponential(0)}`;
}

const latency: Record<Impl, number> = { stqa: 0, tfjs: 0 };

/**
 * Measures the fixed cost of a sync for each library (median of `count` syncs with nothing
 * pending); the summary subtracts it from every iteration.
 *
 * @example
 * ```ts
 * import { measureSyncLatency } from "./_suite.ts";
 * const { stqa, tfjs } = await measureSyncLatency();
 * ```
 */
export async function measureSyncLatency(count = 7): Promise<Record<Impl, number>> {
  for (const [impl, sync] of [["stqa", syncGpu], ["tfjs", tfSync]] as const) {
    const xs: number[] = [];
    await sync();
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      await sync();
      xs.push(performance.now() - t0);
    }
    latency[impl] = median(xs);
  }
  return { ...latency };
}

/**
 * Registers one case with `Deno.bench` (TF.js cases are the group baseline).
 *
 * @example
 * ```ts
 * import { benchCase } from "./_suite.ts";
 * benchCase({ group: "noop", label: "none", impl: "stqa", flops: 1, run: () => {} });
 * ```
 */
export function benchCase(spec: CaseSpec): void {
  const rec: Recorded = { spec, timesMs: [] };
  recorded.push(rec);
  const sync = spec.impl === "stqa" ? syncGpu : tfSync;
  Deno.bench({
    name: `${spec.impl === "stqa" ? "STQA " : "TF.js"} ${spec.label}`,
    group: `${spec.group}: ${spec.label}`,
    baseline: spec.impl === "tfjs",
    n: ITERATIONS,
    warmup: 0,
    async fn() {
      const t0 = performance.now();
      spec.run();
      await sync();
      rec.timesMs.push(performance.now() - t0);
    },
  });
}

/** Prints the summary of the file (set by {@link printSummaryAtExit}); prints once. */
let printSummary: (() => void) | undefined;

/** Peak re-measured by {@link benchPeak}, GFLOP/s per iteration. */
const peakAgain: number[] = [];

/**
 * Registers the best configuration of the peak sweep as a bench of its own (group "peak",
 * 4 dispatches + 1 sync per iteration, less the sync latency), so that the peak is measured
 * again after the other cases; the summary uses the larger of the two measurements.
 *
 * @example
 * ```ts
 * import { benchPeak } from "./_suite.ts";
 * benchPeak(peak);
 * ```
 */
export function benchPeak(peak: PeakResult): void {
  const runner = peakRunner(peak.best, peak.invocations);
  const reps = 4;
  let calls = 0;
  Deno.bench({
    name: `peak kernel (wg ${peak.best.workgroupSize}, ${peak.best.chains} chains) x${reps}`,
    group: "peak",
    n: ITERATIONS,
    warmup: 0,
    async fn() {
      const t0 = performance.now();
      for (let r = 0; r < reps; r++) runner.run();
      await syncGpu();
      const ms = performance.now() - t0 - latency.stqa;
      if (calls++ > 0) peakAgain.push(gflops(reps * runner.flops, ms));
      // Deno makes ITERATIONS + 2 calls (calibration, warm-up); this bench is the file's last,
      // so the summary is printed from its last call, ahead of Deno's own last table row.
      if (calls === ITERATIONS + 2) printSummary?.();
    },
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median time in ms of a case's iterations (first call dropped) less the sync latency. */
function unitMs(rec: Recorded | undefined): number | undefined {
  if (!rec || rec.timesMs.length < 2) return undefined;
  return median(rec.timesMs.slice(1)) - latency[rec.spec.impl];
}

/**
 * Prints, after the file's last bench (or when the file ends), one table per group: GFLOP/s of STQA and TF.js, STQA's
 * fraction of the measured peak and the speed-up over TF.js.
 *
 * @example
 * ```ts
 * import { printSummaryAtExit } from "./_suite.ts";
 * printSummaryAtExit("matmul", peak);
 * ```
 */
export function printSummaryAtExit(title: string, peak: PeakResult): void {
  let printed = false;
  printSummary = () => {
    if (printed) return;
    printed = true;
    const out: string[] = [];
    const again = peakAgain.length ? Math.max(...peakAgain) : undefined;
    const peakGflops = Math.max(peak.gflops, again ?? 0);
    out.push(
      `\n## ${title}: summary\n\nMedian of the iterations after Deno's calibration call, less ` +
        `the idle sync latency (STQA ${fmt(latency.stqa, 1)} ms, TF.js ${
          fmt(latency.tfjs, 1)
        } ms); ` +
        `peak ${fmt(peakGflops)} GFLOP/s (the larger of ${fmt(peak.gflops)} at the start and ` +
        `${fmt(again)} at the end).\n`,
    );
    const groups = [...new Set(recorded.map((r) => r.spec.group))];
    for (const group of groups) {
      out.push(`### ${group}\n`);
      const rows: string[][] = [];
      const labels = [
        ...new Set(recorded.filter((r) => r.spec.group === group).map((r) => r.spec.label)),
      ];
      for (const label of labels) {
        const find = (impl: Impl) =>
          recorded.find((r) =>
            r.spec.group === group && r.spec.label === label && r.spec.impl === impl
          );
        const ours = find("stqa");
        const peer = find("tfjs");
        const flops = (ours ?? peer)!.spec.flops;
        const msOurs = unitMs(ours);
        const msPeer = unitMs(peer);
        const gOurs = msOurs === undefined ? undefined : gflops(flops, msOurs);
        const gPeer = msPeer === undefined ? undefined : gflops(flops, msPeer);
        rows.push([
          label,
          fmt(flops / 1e9, 3),
          fmt(msOurs, 1),
          fmt(gOurs, 2),
          gOurs === undefined ? "-" : `${fmt(100 * gOurs / peakGflops, 1)}%`,
          fmt(msPeer, 1),
          fmt(gPeer, 2),
          gOurs === undefined || gPeer === undefined ? "-" : `${fmt(gOurs / gPeer, 2)}x`,
          checkText(checks.get(`${group}\u0000${label}`)),
        ]);
      }
      out.push(formatTable(
        [
          "shape",
          "GFLOP",
          "STQA ms",
          "STQA GFLOP/s",
          "% peak",
          "TF.js ms",
          "TF.js GFLOP/s",
          "STQA/TF.js",
          "check",
        ],
        rows,
      ));
      out.push("");
    }
    // Written straight to stdout: Deno prefixes console output made inside a bench with its name.
    const bytes = new TextEncoder().encode(out.join("\n") + "\n");
    for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
  };
  globalThis.addEventListener("unload", () => printSummary?.());
}
