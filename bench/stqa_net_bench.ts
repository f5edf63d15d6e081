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
import { StqaNet, type StqaNetConfig } from "../src/models/stqa_net.ts";
import type { Generator } from "../src/models/generator_io.ts";
import { loadVictim } from "../src/models/victims/mod.ts";
import { attackWithGenerator, generatorPerturb } from "../src/attack/stqa.ts";
import { ifgsm } from "../src/attack/baselines/mod.ts";
import { boundaryLoss, weightPenalty } from "../src/attack/losses.ts";
import { computeJnd } from "../src/jnd/mod.ts";
import { add, mul } from "../src/nn/mod.ts";
import { Adam } from "../src/optim/optimizers.ts";
import { noGrad, type Tensor, tensor, tidy } from "../src/tensor/tensor.ts";
import { seededRandom } from "../src/_random.ts";
import { describePeak, measurePeak } from "./_peak.ts";
import { fmt, formatTable } from "./_timing.ts";

const CONFIGS: { name: string; config: Record<string, unknown> }[] = [
  { name: "default", config: {} },
  {
    name: "small",
    config: { encoder: [8, 16, 32], hidden: 32, decoder: [16, 8], input: "jnd+rgb" },
  },
];
const JND_MODEL = "namm-st";
const PENALTY = 0.1;

const half = (n: number) => Math.ceil(n / 2);
const conv = (cin: number, cout: number, k: number, h: number, w: number) =>
  2 * cin * cout * k * k * h * w;

/** Forward conv FLOPs of STQA-Net on `t` frames of h x w, and those of its first conv. */
function generatorFlops(c: StqaNetConfig, t: number, h: number, w: number) {
  const [e1, e2, e3] = c.encoder;
  const h1 = half(h), w1 = half(w), h2 = half(h1), w2 = half(w1);
  const first = conv(c.input === "jnd" ? 1 : 4, e1, 3, h, w);
  let f = first + conv(e1, e2, 3, h1, w1) + conv(e2, e3, 3, h2, w2);
  f += conv(e3, 3 * c.hidden, 3, h2, w2) + conv(c.hidden, 3 * c.hidden, 3, h2, w2);
  const branches = c.variant === "two-branch" ? 2 : 1;
  const sk = c.skips ? [e2, e1] : [0, 0];
  f += branches * (conv(e3 + c.hidden, e3, 1, h2, w2) +
    conv(e3 + sk[0], c.decoder[0], 3, h1, w1) +
    conv(c.decoder[0] + sk[1], c.decoder[1], 3, h, w) + conv(c.decoder[1], 3, 3, h, w));
  return { forward: t * f, first: t * first };
}

/** Forward conv FLOPs of vsfa-mini (3x3 stride-2 convs) on `t` frames of h x w. */
function victimFlops(channels: number[], inputCh: number, t: number, h: number, w: number) {
  let f = 0, cin = inputCh;
  for (const cout of channels) {
    h = half(h);
    w = half(w);
    f += conv(cin, cout, 3, h, w);
    cin = cout;
  }
  return t * f;
}

/** A smooth random field plus noise and a pan, [T,3,H,W] in [0,1], deterministic. */
function clip(t: number, h: number, w: number): Tensor {
  const rand = seededRandom(2026);
  const ph = Array.from({ length: 9 }, () => rand.uniform() * 6.283);
  const out = new Float32Array(t * 3 * h * w);
  for (let f = 0; f < t; f++) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < h; y++) {
        const cy = Math.cos(y * 0.07 + ph[c + 3]);
        for (let x = 0; x < w; x++) {
          const v = 0.5 + 0.25 * Math.sin((x + 2 * f) * 0.05 + ph[c]) * cy +
            0.15 * Math.sign(Math.sin((x + 2 * f) * 0.013 + y * 0.021 + ph[c + 6])) +
            0.05 * (rand.uniform() - 0.5);
          out[((f * 3 + c) * h + y) * w + x] = Math.round(255 * Math.min(1, Math.max(0, v))) / 255;
        }
      }
    }
  }
  return tensor(out, [t, 3, h, w]).keep();
}

await initGpu();
const peak = await measurePeak({ chains: [8, 16], workgroupSizes: [256] });
console.log(describePeak(peak));

const victim = await loadVictim("vsfa-mini");
const vc = victim.config as unknown as { channels: number[]; input: string };
const victimCh = vc.input === "rgb" ? 3 : 4;

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
  const v = victimFlops(vc.channels, victimCh, 16, 128, 128);
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
  const v = victimFlops(vc.channels, victimCh, 16, 128, 128);
  for (const { name, net } of nets) {
    const group = `train ${name} 1x16x128x128`;
    const params = Object.values(net.parameters());
    const opt = new Adam(params, { lr: 1e-4 });
    const { forward, first } = generatorFlops(net.config, 16, 128, 128);
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
        flops: 3 * forward - first + 2 * v,
        convs: true,
        baseline: false,
      },
      1,
      async () => {
        const loss = tidy(() => {
          const r = generatorPerturb(net, x, j);
          const l = add(
            boundaryLoss(victim.scoreBatch(r.adversarial[0]), [target]),
            mul(weightPenalty(r.weights[0]), PENALTY),
          );
          l.backward();
          return l;
        });
        const value = (await loss.read())[0];
        loss.dispose();
        if (!Number.isFinite(value)) throw new Error(`training loss is ${value}`);
        opt.step();
        opt.zeroGrad();
      },
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
