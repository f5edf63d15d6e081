/**
 * The progress line long jobs print on stderr (`\r`-updated; a newline when done).
 *
 * @module
 */

/** One update of a long job. */
export interface Progress {
  /** Units done. */
  step: number;
  /** Units in total. */
  steps: number;
  /** Seconds since the job started. */
  elapsed: number;
  /** Extra fields shown after the counts, e.g. `loss 0.1234`. */
  detail?: string;
}

/**
 * `12m05s` / `42s`.
 *
 * @example
 * ```ts
 * import { formatSeconds } from "./_progress.ts";
 * formatSeconds(725); // "12m05s"
 * ```
 */
export function formatSeconds(s: number): string {
  const m = Math.floor(s / 60);
  return m ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${s.toFixed(0)}s`;
}

/**
 * Prints `[#####.....] step/steps detail elapsed eta` on stderr, in place; ends the line at the
 * last step. Silent when stderr is not a terminal unless `always` (then one line per call
 * would flood a log, so only every `logEvery`-th step and the last are printed).
 *
 * @example
 * ```ts
 * import { printProgress } from "./_progress.ts";
 * printProgress({ step: 5, steps: 10, elapsed: 3, detail: "loss 0.5" });
 * ```
 */
export function printProgress(p: Progress, options: { logEvery?: number } = {}): void {
  const tty = Deno.stderr.isTerminal();
  const logEvery = options.logEvery ?? 25;
  const last = p.step >= p.steps;
  if (!tty && !last && p.step % logEvery !== 0) return;
  const width = 24;
  const done = Math.min(width, Math.round((width * p.step) / Math.max(1, p.steps)));
  const eta = p.step ? (p.elapsed / p.step) * (p.steps - p.step) : 0;
  const line = `  [${"#".repeat(done)}${".".repeat(width - done)}] ${p.step}/${p.steps} ` +
    `${p.detail ? p.detail + " " : ""}${formatSeconds(p.elapsed)} eta ${formatSeconds(eta)}   `;
  const text = tty ? `\r${line}${last ? "\n" : ""}` : `${line}\n`;
  Deno.stderr.writeSync(new TextEncoder().encode(text));
}
