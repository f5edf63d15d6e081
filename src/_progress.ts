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
  // Whole seconds first, so that 419.6 s is 7m00s (not 6m60s) and 59.6 s is 1m00s (not 60s).
  const whole = Math.round(s);
  const m = Math.floor(whole / 60);
  return m ? `${m}m${String(whole % 60).padStart(2, "0")}s` : `${whole}s`;
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

/** One update of a stage of a long job that counts frames (or other units). */
export interface StageProgress {
  /** What is being done, e.g. `decode`, `attack`, `encode up`, `score clean`. */
  stage: string;
  /** Units done in this stage (monotone within a stage). */
  done: number;
  /** Units the stage will do, or null while unknown (e.g. a video whose length is unknown). */
  total: number | null;
}

/** Options of {@link ProgressLine}. */
export interface ProgressLineOptions {
  /** Unit shown after the counts (default `frames`; `fps` is `<unit> per second`). */
  unit?: string;
  /**
   * Redraw one line in place (`\r`, cleared to its end) instead of printing lines (default:
   * whether stderr is a terminal).
   */
  tty?: boolean;
  /** Without a terminal, at most one line per this many seconds (default 5). */
  logEverySeconds?: number;
  /** Where the text goes (default stderr). */
  write?: (text: string) => void;
  /** The clock in seconds (default `performance.now() / 1000`); tests pass their own. */
  now?: () => number;
}

/**
 * The progress of a job made of stages that count units (an attack: decoding, the generator,
 * encoding, scoring): `label: stage done/total frames, 4.2 fps, 12s, eta 30s`, with the rate
 * and time left measured from the stage's start. On a terminal one line redrawn in place (`\r`)
 * and cleared by {@link ProgressLine.end}; in a log a line at most every `logEverySeconds`.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { ProgressLine } from "./_progress.ts";
 * const lines: string[] = [];
 * let now = 0;
 * const line = new ProgressLine({ tty: false, write: (s) => lines.push(s), now: () => now });
 * line.update({ stage: "decode", done: 0, total: 100 }, "clip");
 * now = 2;
 * line.update({ stage: "decode", done: 50, total: 100 }, "clip"); // within 5 s: not printed
 * now = 6;
 * line.update({ stage: "decode", done: 100, total: 100 }, "clip");
 * line.end();
 * assert.equal(lines.length, 2);
 * assert.equal(lines[1], "  clip: decode 100/100 frames, 17 fps, 6s, eta 0s\n");
 * ```
 */
export class ProgressLine {
  #unit: string;
  #tty: boolean;
  #every: number;
  #write: (text: string) => void;
  #now: () => number;
  #stage = "";
  #label = "";
  #stageStart = 0;
  #lastPrint = -Infinity;
  #shown = false;

  /** A progress line with the given options (stderr, terminal or log as it is). */
  constructor(options: ProgressLineOptions = {}) {
    this.#unit = options.unit ?? "frames";
    this.#tty = options.tty ?? Deno.stderr.isTerminal();
    this.#every = options.logEverySeconds ?? 5;
    const encoder = new TextEncoder();
    this.#write = options.write ?? ((s) => Deno.stderr.writeSync(encoder.encode(s)));
    this.#now = options.now ?? (() => performance.now() / 1000);
  }

  /** Records an update of `label`'s stage; prints it when due (see the class). */
  update(p: StageProgress, label = ""): void {
    const now = this.#now();
    if (p.stage !== this.#stage || label !== this.#label) {
      this.#stage = p.stage;
      this.#label = label;
      this.#stageStart = now;
    }
    if (!this.#tty && now - this.#lastPrint < this.#every) return;
    this.#lastPrint = now;
    const line = `  ${label ? label + ": " : ""}${
      formatStage(p, now - this.#stageStart, this.#unit)
    }`;
    if (this.#tty) {
      this.#write(`\r${line}\x1b[K`);
      this.#shown = true;
    } else this.#write(`${line}\n`);
  }

  /** Clears the line on a terminal (so that what follows starts on a clean line). */
  end(): void {
    if (this.#tty && this.#shown) this.#write("\r\x1b[K");
    this.#shown = false;
    this.#stage = "";
  }
}

/**
 * `stage done/total unit, rate fps, elapsed, eta left` for a stage that has run `elapsed`
 * seconds (rate and time left once something is done).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { formatStage } from "./_progress.ts";
 * const text = formatStage({ stage: "attack", done: 30, total: 90 }, 10);
 * assert.equal(text, "attack 30/90 frames, 3.0 fps, 10s, eta 20s");
 * ```
 */
export function formatStage(p: StageProgress, elapsed: number, unit = "frames"): string {
  const count = `${p.stage} ${p.done}${p.total === null ? "" : `/${p.total}`} ${unit}`;
  if (!(p.done > 0 && elapsed > 0)) return `${count}, ${formatSeconds(elapsed)}`;
  const rate = p.done / elapsed;
  const left = p.total === null
    ? ""
    : `, eta ${formatSeconds(Math.max(0, p.total - p.done) / rate)}`;
  return `${count}, ${rate.toFixed(rate < 10 ? 1 : 0)} fps, ${formatSeconds(elapsed)}${left}`;
}
