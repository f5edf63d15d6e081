/**
 * One generator training step (bench/_train_step.ts: the default STQA-Net config, one clip of
 * 16 frames of 128x128, vsfa-mini, loss, backward, Adam) against PyTorch CPU doing the same
 * step (bench/torch_train_step.py, the same layers and shapes in PyTorch, all CPU threads), the
 * first row of issue #16. CI never needs torch: when `/usr/bin/python3` cannot import it, the
 * PyTorch cases are skipped and the summary says so.
 *
 * Method. The PyTorch script runs as one child process for the whole file (set-up and a warm-up
 * step first); each of its bench iterations sends `step` and waits for the answer, and the
 * summary uses the step time the script measured itself (the pipe adds well under a
 * millisecond). STQA's iterations run one step and wait for the GPU (the step reads its loss
 * back, then `syncGpu()`); its pipelines are compiled by a warm-up step before timing. The two
 * alternate in ROUNDS rounds of STEPS steps each, so a change in the machine's load reaches
 * both; the summary gives the median step of each, their ratio, and STQA's GFLOP/s against the
 * adapter's peak (bench/_peak.ts, measured at start-up).
 *
 *   deno bench --cached-only --allow-read --allow-env --allow-run=/usr/bin/python3 \
 *     bench/train_step_bench.ts [-- --python /usr/bin/python3]
 *
 * @module
 */

import { parseArgs } from "util";
import { initGpu } from "../src/gpu/device.ts";
import { syncGpu } from "../src/gpu/queue.ts";
import { stepInputs, trainStep, trainStepFlops } from "./_train_step.ts";
import { describePeak, measurePeak } from "./_peak.ts";
import { fmt, formatTable } from "./_timing.ts";

const T = 16, H = 128, W = 128;
const ROUNDS = 3;
const STEPS = 2;
const { values: args } = parseArgs({
  args: Deno.args,
  options: { python: { type: "string", default: "/usr/bin/python3" } },
});
/** The Python with PyTorch (`-- --python PATH`; bench/device.sh passes the GPU machine's). */
const PYTHON = args.python!;
const SCRIPT = new URL("./torch_train_step.py", import.meta.url).pathname;

/** The PyTorch reference as a child process, or why there is none. */
async function startTorch(): Promise<
  { step: () => Promise<number>; info: string; close: () => Promise<void> } | string
> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(PYTHON, {
      args: [SCRIPT],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    return `${PYTHON} cannot be run (${(e as Error).message})`;
  }
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const writer = child.stdin.getWriter();
  let buffered = "";
  const readLine = async (): Promise<string | null> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) return null;
      buffered += value;
    }
    const i = buffered.indexOf("\n");
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    return line;
  };
  const first = await readLine();
  if (!first?.startsWith("ready ")) {
    await writer.close().catch(() => {});
    const err = new TextDecoder().decode((await child.output().catch(() => null))?.stderr);
    const last = err.trim().split("\n").pop() ?? "no output";
    return `${PYTHON} ${SCRIPT} did not start (${last})`;
  }
  const enc = new TextEncoder();
  return {
    info: first.slice(6),
    step: async () => {
      await writer.write(enc.encode("step\n"));
      const answer = await readLine();
      const ms = Number(answer);
      if (answer === null || !Number.isFinite(ms)) throw new Error(`PyTorch step: ${answer}`);
      return ms;
    },
    close: async () => {
      await writer.write(enc.encode("quit\n"));
      await writer.close();
      await child.status;
    },
  };
}

await initGpu();
const peak = await measurePeak({ chains: [8, 16], workgroupSizes: [256] });
console.log(describePeak(peak));
const inputs = await stepInputs({}, T, H, W);
const { net, victim } = inputs;
await trainStep(inputs); // compiles the pipelines
await syncGpu();
const flops = trainStepFlops(net, victim, T, H, W);
const torch = await startTorch();
if (typeof torch === "string") console.log(`PyTorch reference skipped: ${torch}`);
else console.log(`PyTorch reference: ${torch.info}`);

const times = { stqa: [] as number[], torch: [] as number[] };
const group = "train step 1x16x128x128 (default config, vsfa-mini)";
for (let r = 1; r <= ROUNDS; r++) {
  if (typeof torch !== "string") {
    Deno.bench({
      name: `PyTorch CPU, round ${r}`,
      group,
      baseline: r === 1,
      n: STEPS,
      warmup: 0,
      fn: async () => void times.torch.push(await torch.step()),
    });
  }
  Deno.bench({
    name: `STQA, round ${r}`,
    group,
    baseline: r === 1 && typeof torch === "string",
    n: STEPS,
    warmup: 0,
    fn: async () => {
      const t0 = performance.now();
      await trainStep(inputs);
      await syncGpu();
      times.stqa.push(performance.now() - t0);
    },
  });
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

globalThis.addEventListener("unload", () => {
  if (typeof torch !== "string") torch.close();
  if (!times.stqa.length) return;
  const stqa = median(times.stqa);
  const rows = [[
    "STQA (WebGPU)",
    String(times.stqa.length),
    fmt(stqa, 0),
    fmt(flops / stqa / 1e6, 1),
    `${fmt(100 * flops / stqa / 1e6 / peak.gflops, 0)}%`,
    "-",
  ]];
  if (times.torch.length) {
    const pt = median(times.torch);
    rows.push([
      "PyTorch CPU",
      String(times.torch.length),
      fmt(pt, 0),
      fmt(flops / pt / 1e6, 1),
      "-",
      "1.00x",
    ]);
    rows[0][5] = `${fmt(stqa / pt, 2)}x`;
  }
  const text = `\n## Training step: summary\n\n${fmt(flops / 1e9, 2)} GFLOP per step; median ` +
    `step over ${ROUNDS} alternated rounds; peak ${fmt(peak.gflops, 1)} GFLOP/s.\n\n` +
    formatTable(["impl", "steps", "ms/step", "GFLOP/s", "% peak", "time vs PyTorch"], rows) +
    (times.torch.length ? "" : "\n\nPyTorch reference skipped (see above).") + "\n";
  const bytes = new TextEncoder().encode(text);
  for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
});
