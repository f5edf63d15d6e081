/**
 * Registers paired benchmarks (STQA against the TF.js peer) with `Deno.bench` and prints a
 * GFLOP/s summary when the bench file ends.
 *
 * Method. One bench iteration runs `reps` units of the same work, then ONE sync that waits
 * for the GPU to finish (`syncGpu()` for STQA, {@link tfSync} for TF.js). `reps` is chosen so
 * that an iteration does at least {@link MIN_ITER_FLOPS} FLOPs, which keeps the fixed sync
 * latency (about 11 ms on Deno + lavapipe even when idle) a small part of every iteration. Each
 * iteration is also timed with `performance.now()` inside the bench function; the first call
 * (Deno's calibration run, which also compiles the pipelines) is dropped, and the summary reports
 * the median of the rest, as GFLOP/s and as a fraction of the measured arithmetic peak. The
 * Deno.bench table shows the same iterations in its own format, with TF.js as the group baseline.
 *
 * @module
 */

import { syncGpu } from "../src/gpu/queue.ts";
import type { PeakResult } from "./_peak.ts";
import { tfSync } from "./_tfjs.ts";
import { fmt, gflops, printTable } from "./_timing.ts";
import { CHECK_TOLERANCE } from "./_data.ts";

/** Minimum floating-point operations per bench iteration (reps are added to reach it). */
export const MIN_ITER_FLOPS = 1e9;

/** Bench iterations measured after Deno's calibration call (`n` of `Deno.bench`). */
export const ITERATIONS = 2;

/** Which implementation a case runs. */
export type Impl = "stqa" | "tfjs";

/** One benchmark case. */
export interface CaseSpec {
  /** Deno.bench group, e.g. "conv2d forward". */
  group: string;
  /** Shape label, e.g. "3x3 16->32 s2 128". */
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
  reps: number;
  timesMs: number[];
}

const recorded: Recorded[] = [];
const checks = new Map<string, number>();

/**
 * Records the cross-check of a case (relative max error of STQA's result against TF.js's on
 * the same data), shown in the summary; prints an error at once when it exceeds the tolerance.
 *
 * @example
 * ```ts
 * import { noteCheck } from "./_suite.ts";
 * noteCheck("matmul", "512", 2e-7);
 * ```
 */
export function noteCheck(group: string, label: string, error: number): void {
  checks.set(`${group}\u0000${label}`, error);
  if (!(error <= CHECK_TOLERANCE)) {
    console.error(
      `MISMATCH in ${group} ${label}: STQA differs from TF.js by ${error} (relative max error); ` +
        "its timing is not meaningful",
    );
  }
}

/**
 * Units per iteration for work of `flops` FLOPs.
 *
 * @example
 * ```ts
 * import { repsFor } from "./_suite.ts";
 * repsFor(2.5e8); // 4
 * ```
 */
export function repsFor(flops: number): number {
  return Math.max(1, Math.ceil(MIN_ITER_FLOPS / flops));
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
  const reps = repsFor(spec.flops);
  const rec: Recorded = { spec, reps, timesMs: [] };
  recorded.push(rec);
  const sync = spec.impl === "stqa" ? syncGpu : tfSync;
  Deno.bench({
    name: `${spec.impl === "stqa" ? "STQA " : "TF.js"} ${spec.label}${reps > 1 ? ` x${reps}` : ""}`,
    group: `${spec.group}: ${spec.label}`,
    baseline: spec.impl === "tfjs",
    n: ITERATIONS,
    warmup: 0,
    async fn() {
      const t0 = performance.now();
      for (let r = 0; r < reps; r++) spec.run();
      await sync();
      rec.timesMs.push(performance.now() - t0);
    },
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Per-unit median time in ms of a recorded case (first call dropped), or undefined. */
function unitMs(rec: Recorded | undefined): number | undefined {
  if (!rec || rec.timesMs.length < 2) return undefined;
  return median(rec.timesMs.slice(1)) / rec.reps;
}

/**
 * Prints, when the bench file ends, one table per group: GFLOP/s of STQA and TF.js, STQA's
 * fraction of the measured peak and the speed-up over TF.js.
 *
 * @example
 * ```ts
 * import { printSummaryAtExit } from "./_suite.ts";
 * printSummaryAtExit("matmul", peak);
 * ```
 */
export function printSummaryAtExit(title: string, peak: PeakResult): void {
  globalThis.addEventListener("unload", () => {
    console.log(
      `\n## ${title}: summary (median of ${ITERATIONS} iterations after the calibration call; ` +
        `peak ${fmt(peak.gflops)} GFLOP/s)\n`,
    );
    const groups = [...new Set(recorded.map((r) => r.spec.group))];
    for (const group of groups) {
      console.log(`### ${group}\n`);
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
        const err = checks.get(`${group}\u0000${label}`);
        rows.push([
          label,
          fmt(flops / 1e9, 3),
          fmt(msOurs, 1),
          fmt(gOurs, 2),
          gOurs === undefined ? "-" : `${fmt(100 * gOurs / peak.gflops, 1)}%`,
          fmt(msPeer, 1),
          fmt(gPeer, 2),
          gOurs === undefined || gPeer === undefined ? "-" : `${fmt(gOurs / gPeer, 2)}x`,
          err === undefined
            ? "-"
            : `${err <= CHECK_TOLERANCE ? "ok" : "MISMATCH"} ${err.toExponential(0)}`,
        ]);
      }
      printTable(
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
      );
      console.log("");
    }
  });
}
