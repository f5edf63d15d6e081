/**
 * STQA-Net generator (src/models/stqa_net.ts): frames per second of the attack at 128x128 and
 * 540x960, seconds per clip against I-FGSM (the "ten times less time per video" comparison of
 * issue #7), and one training step, for two configs: the schema's default (encoder
 * [16,32,64], hidden 64, decoder [32,16], input jnd) and the small one of the bundled
 * generators (encoder [8,16,32], hidden 32, decoder [16,8], input jnd+rgb).
 *
 * Groups (the first case of each is its Deno.bench baseline):
 * - `attack 16x128x128`: I-FGSM (10 iterations against vsfa-mini, JND computed first, as
 *   `deno task attack` runs it); the JND maps alone; per config, the generator's weight maps +
 *   perturbation with the JND given (`attackWithGenerator(..., {jnd, quantize: false})`, the
 *   same work as `generatorPerturb` in one chunk) and the whole attack
 *   (`attackWithGenerator(...)`: namm-st JND maps, forward, perturbation, 8-bit quantisation
 *   inside the JND box, read back).
 * - `attack 4x540x960`: the JND maps alone, then the same two rows per config. Processed in
 *   chunks of frames with the GRU state carried (as `attackWithGenerator` does for a long
 *   video): the largest activation (the last decoder stage's input, `decoder[0] + encoder[0]`
 *   channels at full resolution) must fit one storage binding (128 MiB on lavapipe), so the
 *   chunk is as many frames as fit (1 for the default config, 2 for the small one).
 * - `train <config> 1x16x128x128`: one training step on a batch of ONE clip of 16 frames
 *   (generator forward with the tape, victim vsfa-mini `scoreBatch`, `boundaryLoss` +
 *   0.1 x `weightPenalty`, backward, Adam step), against the forward with the tape alone.
 *
 * FLOPs (analytic, elementwise ops ignored): each conv 2·Cin·Cout·k·k·Hout·Wout per frame; the
 * encoder convs at full, 1/2 and 1/4 resolution, the two GRU convs (input and state, 3x3, to
 * 3·hidden channels) and the 1x1 fusion at 1/4, the decoder stages at 1/2 and full resolution.
 * JND maps and quantisation are not counted (the rows that include them use the generator's
 * count, so their GFLOP/s are lower). A training step counts the generator's forward, its weight
 * gradients and its input gradients (all convs but the first, whose input needs none), and the
 * victim's conv forward and input gradients (its weights are frozen). I-FGSM counts the victim's
 * convs: 1 clean forward + 10 x (forward + input gradient).
 *
 * Method (as bench/conv_gru_bench.ts): each Deno.bench iteration encodes one unit of work and
 * waits for the GPU (`syncGpu()`); the summary printed at the end takes the median of the
 * iterations after the first (Deno's calibration call, which compiles the pipelines; with
 * `n: 1` Deno makes 3 calls, so 2 remain and the median is their mean) less the idle sync
 * latency (median of 7 empty syncs at start-up). The peak is bench/_peak.ts's kernel
 * at its best configuration on this machine (workgroup 256, 8 and 16 chains), measured at
 * start-up.
 *
 *   deno bench --cached-only --allow-read --allow-write --allow-run=ffmpeg,ffprobe \
 *     --allow-env bench/stqa_net_bench.ts
 *
 * @module
 */

import { getGpu, initGpu } from "../src/gpu/device.ts";
import { syncGpu } from "../src/gpu/queue.ts";
import { StqaNet } from "../src/models/stqa_net.ts";
import type { Generator } from "../src/models/generator_io.ts";
import { loadVictim } from "../src/models/victims/mod.ts";
import { attackWithGenerator, generatorPerturb } from "../src/attack/stqa.ts";
import { ifgsm } from "../src/attack/baselines/mod.ts";
import { computeJnd } from "../src/jnd/mod.ts";
import { Adam } from "../src/optim/optimizers.ts";
import { noGrad, tidy } from "../src/tensor/tensor.ts";
import {
  clip,
  generatorFlops,
  JND_MODEL,
  trainStep,
  trainStepFlops,
  victimFlops,
} from "./_train_step.ts";
import { describePeak, measurePeak } from "./_peak.ts";
import { fmt, formatTable } from "./_timing.ts";

const CONFIGS: { name: string; config: Record<string, unknown> }[] = [
  { name: "default", config: {} },
  {
    name: "small",
    config: { encoder: [8, 16, 32], hidden: 32, decoder: [16, 8], input: "jnd+rgb" },
  },
];
await initGpu();
const peak = await measurePeak({ chains: [8, 16], workgroupSizes: [256] });
console.log(describePeak(peak));

const victim = await loadVictim("vsfa-mini");

const small = clip(16, 128, 128);
const smallJnd = noGrad(() => computeJnd(small, { model: JND_MODEL })).keep();
const large = clip(4, 540, 960);
const largeJnd = noGrad(() => computeJnd(large, { model: JND_MODEL })).keep();
const cleanScore = noGrad(() => victim.score(small));
const clean = (await cleanScore.read())[0];
cleanScore.dispose();
const target = clean > 3 ? 1 : 5;
const maxBinding = getGpu().limits.maxStorageBufferBindingSize;

const idle: number[] = [];
await syncGpu();
for (let i = 0; i < 7; i++) {
  const t0 = performance.now();
  await syncGpu();
  idle.push(performance.now() - t0);
}
/** The median (the mean of the middle two for an even count). */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const latency = median(idle);

interface Case {
  group: string;
  label: string;
  frames: number;
  flops: number;
  /** Counts toward the fraction of peak (rows that are mostly convs). */
  convs: boolean;
  baseline: boolean;
  times: number[];
}
const cases: Case[] = [];

function bench(
  spec: Omit<Case, "times">,
  n: number,
  run: () => Promise<void> | void,
): void {
  const c: Case = { ...spec, times: [] };
  cases.push(c);
  Deno.bench({
    name: c.label,
    group: c.group,
    baseline: c.baseline,
    n,
    warmup: 0,
    async fn() {
      const t0 = performance.now();
      await run();
      await syncGpu();
      c.times.push(performance.now() - t0);
    },
  });
}

function generator(net: StqaNet): Generator {
  return {
    net,
    info: {
      kind: "stqa-net",
      config: net.config as unknown as Record<string, unknown>,
      victim: "vsfa-mini",
      victimFamily: "vsfa-mini",
      jnd: JND_MODEL,
      eps: 1,
      qMin: 1,
      qMax: 5,
      median: 3,
    },
    path: "(bench)",
  };
}

const nets = CONFIGS.map(({ name, config }) => ({ name, net: new StqaNet({ seed: 1, config }) }));

// 1. The attack on 16 frames of 128x128, against I-FGSM on the same clip.
{
  const group = "attack 16x128x128";
  const v = victimFlops(victim, 16, 128, 128);
  bench(
    {
      group,
      label: "I-FGSM x10 (vsfa-mini, JND incl.)",
      frames: 16,
      flops: 21 * v,
      convs: false,
      baseline: true,
    },
    1,
    async () => {
      const jnd = noGrad(() => computeJnd(small, { model: JND_MODEL }));
      const out = await ifgsm.run(small, victim, { jnd, eps: 1 });
      out.adversarial.dispose();
      jnd.dispose();
    },
  );
  bench(
    {
      group,
      label: "JND maps alone (namm-st)",
      frames: 16,
      flops: 0,
      convs: false,
      baseline: false,
    },
    3,
    () => noGrad(() => computeJnd(small, { model: JND_MODEL })).dispose(),
  );
  for (const { name, net } of nets) {
    const g = generator(net);
    const { forward } = generatorFlops(net.config, 16, 128, 128);
    bench(
      {
        group,
        label: `${name}: maps + perturbation (JND given)`,
        frames: 16,
        flops: forward,
        convs: true,
        baseline: false,
      },
      1,
      async () =>
        (await attackWithGenerator(g, small, { jnd: smallJnd, quantize: false })).dispose(),
    );
    bench(
      {
        group,
        label: `${name}: whole attack (JND + 8-bit)`,
        frames: 16,
        flops: forward,
        convs: false,
        baseline: false,
      },
      1,
      async () => (await attackWithGenerator(g, small)).dispose(),
    );
  }
}

// 2. 4 frames of 540x960, in chunks of as many frames as fit one storage binding.
const chunks = new Map<string, number>();
{
  const group = "attack 4x540x960";
  bench(
    { group, label: "JND maps alone (namm-st)", frames: 4, flops: 0, convs: false, baseline: true },
    1,
    () => noGrad(() => computeJnd(large, { model: JND_MODEL })).dispose(),
  );
  for (const { name, net } of nets) {
    const c = net.config;
    const widest = Math.max(c.decoder[0] + (c.skips ? c.encoder[0] : 0), c.encoder[0], 4);
    const chunkFrames = Math.max(1, Math.floor(maxBinding / (4 * widest * 540 * 960)));
    chunks.set(name, chunkFrames);
    const g = generator(net);
    const { forward } = generatorFlops(c, 4, 540, 960);
    bench(
      {
        group,
        label: `${name}: maps + perturbation (JND given)`,
        frames: 4,
        flops: forward,
        convs: true,
        baseline: false,
      },
      1,
      async () =>
        (await attackWithGenerator(g, large, { jnd: largeJnd, chunkFrames, quantize: false }))
          .dispose(),
    );
    bench(
      {
        group,
        label: `${name}: whole attack (JND + 8-bit)`,
        frames: 4,
        flops: forward,
        convs: false,
        baseline: false,
      },
      1,
      async () => (await attackWithGenerator(g, large, { chunkFrames })).dispose(),
    );
  }
}

// 3. One training step on one clip of 16 frames of 128x128, against the forward alone.
{
  const x = small.reshape([1, 16, 3, 128, 128]).keep();
  const j = smallJnd.reshape([1, 16, 1, 128, 128]).keep();
  for (const { name, net } of nets) {
    const group = `train ${name} 1x16x128x128`;
    const params = Object.values(net.parameters());
    const opt = new Adam(params, { lr: 1e-4 });
    const { forward } = generatorFlops(net.config, 16, 128, 128);
    bench(
      {
        group,
        label: `${name}: forward with tape alone`,
        frames: 16,
        flops: forward,
        convs: true,
        baseline: true,
      },
      1,
      () => tidy(() => void generatorPerturb(net, x, j)),
    );
    bench(
      {
        group,
        label: `${name}: training step (fwd + victim + loss + bwd + Adam)`,
        frames: 16,
        flops: trainStepFlops(net, victim, 16, 128, 128),
        convs: true,
        baseline: false,
      },
      1,
      async () => void await trainStep({ net, victim, opt, x, jnd: j, target }),
    );
  }
}

console.log(
  `idle sync latency ${fmt(latency, 1)} ms; ` +
    `540x960 chunks: ${[...chunks].map(([k, c]) => `${k} ${c} frame(s)`).join(", ")}`,
);

globalThis.addEventListener("unload", () => {
  if (!cases.some((c) => c.times.length > 1)) return;
  const msOf = (c: Case) =>
    c.times.length > 1 ? Math.max(median(c.times.slice(1)) - latency, 1e-3) : NaN;
  const rows = cases.map((c) => {
    const ms = msOf(c);
    const base = cases.find((b) => b.group === c.group && b.baseline)!;
    const g = c.flops > 0 ? c.flops / (ms * 1e6) : NaN;
    return [
      c.group,
      c.label,
      String(c.times.length - 1),
      c.flops > 0 ? fmt(c.flops / 1e9, 2) : "-",
      fmt(ms / 1000, 3),
      fmt(c.frames / (ms / 1000), 2),
      fmt(g, 1),
      c.convs ? `${fmt(100 * g / peak.gflops, 0)}%` : "-",
      `${fmt(msOf(base) / ms, 2)}x`,
    ];
  });
  const ifgsmMs = msOf(cases[0]);
  const ratios = cases.filter((c) => c.group === cases[0].group && c.label.includes(":")).map(
    (c) => `  ${c.label}: I-FGSM takes ${fmt(ifgsmMs / msOf(c), 1)}x as long per clip`,
  );
  const text = `\n## STQA-Net generator: summary\n\nMedian of the iterations after the first ` +
    `(column "n"), less the idle sync latency (${fmt(latency, 1)} ms); peak ` +
    `${fmt(peak.gflops, 1)} GFLOP/s.\n\n` +
    formatTable(
      ["group", "case", "n", "GFLOP", "s/clip", "frames/s", "GFLOP/s", "% peak", "vs baseline"],
      rows,
    ) + `\n\nI-FGSM (10 iterations, JND incl.) ${fmt(ifgsmMs / 1000, 3)} s per 16x128x128 clip:\n` +
    ratios.join("\n") + "\n";
  const bytes = new TextEncoder().encode(text);
  for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
});
