/**
 * Timing helpers shared by the benchmarks: wall-clock time of GPU work with a full sync, and the
 * summary table printed at the end of a bench file.
 *
 * Method: `run()` encodes one unit of work (it may submit); `sync()` waits until the GPU has
 * finished everything submitted. After warm-up calls (pipeline compilation, pool growth), each
 * trial times `reps` consecutive units followed by ONE sync with `performance.now()`, so the sync
 * latency is paid once per trial and shared by `reps` units. The figure reported is the median
 * of the trials' per-unit times; the best trial is kept too.
 *
 * @module
 */

/** Options of {@link timeGpu}. */
export interface TimeGpuOptions {
  /** Units of work encoded before each sync (default 2). */
  reps?: number;
  /** Timed trials (default 3). */
  trials?: number;
  /** Untimed warm-up units (default 1). */
  warmup?: number;
}

/** Per-unit wall-clock time of GPU work, in milliseconds. */
export interface GpuTiming {
  /** Median over the trials. */
  medianMs: number;
  /** Best trial. */
  bestMs: number;
  /** Every trial's per-unit time. */
  trialsMs: number[];
}

/**
 * Times GPU work: `reps` calls of `run` then one `sync`, per trial.
 *
 * @example
 * ```ts
 * import { timeGpu } from "./_timing.ts";
 * import { syncGpu } from "../src/gpu/queue.ts";
 * const t = await timeGpu(() => {}, syncGpu, { reps: 2, trials: 3 });
 * console.log(t.medianMs);
 * ```
 */
export async function timeGpu(
  run: () => void,
  sync: () => Promise<void>,
  options: TimeGpuOptions = {},
): Promise<GpuTiming> {
  const { reps = 2, trials = 3, warmup = 1 } = options;
  for (let i = 0; i < warmup; i++) run();
  await sync();
  const trialsMs: number[] = [];
  for (let t = 0; t < trials; t++) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) run();
    await sync();
    trialsMs.push((performance.now() - t0) / reps);
  }
  const sorted = [...trialsMs].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor(sorted.length / 2)], bestMs: sorted[0], trialsMs };
}

/**
 * GFLOP/s of `flops` floating-point operations done in `ms` milliseconds.
 *
 * @example
 * ```ts
 * import { gflops } from "./_timing.ts";
 * gflops(2 * 512 ** 3, 10); // 26.8
 * ```
 */
export function gflops(flops: number, ms: number): number {
  return flops / (ms * 1e6);
}

/**
 * A Markdown table as text, columns padded.
 *
 * @example
 * ```ts
 * import { formatTable } from "./_timing.ts";
 * console.log(formatTable(["shape", "GFLOP/s"], [["512", "10.1"]]));
 * ```
 */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    "| " + cells.map((c, i) => c.padEnd(widths[i])).join(" | ") + " |";
  return [
    line(header),
    "| " + widths.map((w) => "-".repeat(w)).join(" | ") + " |",
    ...rows.map(line),
  ]
    .join("\n");
}

/**
 * Prints a Markdown table (the bench files' final summary).
 *
 * @example
 * ```ts
 * import { printTable } from "./_timing.ts";
 * printTable(["shape", "GFLOP/s"], [["512", "10.1"]]);
 * ```
 */
export function printTable(header: string[], rows: string[][]): void {
  console.log(formatTable(header, rows));
}

/**
 * Formats a number with `digits` decimals, or "-" for a missing value.
 *
 * @example
 * ```ts
 * import { fmt } from "./_timing.ts";
 * fmt(3.14159, 2); // "3.14"
 * ```
 */
export function fmt(x: number | undefined, digits = 1): string {
  return x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(digits);
}
