/**
 * ONNX Runtime (npm `onnxruntime-node`, CPU, its own AVX2/AVX-512 kernels) as a peer: the default
 * STQA-Net generator's forward on 16 frames of 128x128 (ORT against STQA, same network and
 * shapes, random weights) and torchvision's ResNet-50 at 1x3x224x224 (ORT alone, for scale: STQA
 * has no ResNet-50 until the published-models issue). A bench-only dependency, loaded at run time:
 * `deno task check` never resolves it, and without it (or without the models, or without
 * `--allow-ffi`, which its native addon needs) the file says what is missing and skips.
 *
 *   deno cache npm:onnxruntime-node@1.20.1      # once (181 MB)
 *   /usr/bin/python3 bench/make_onnx_models.py  # once: bench/.cache/onnx/*.onnx (torch)
 *   deno run --allow-read --allow-env --allow-ffi --allow-net bench/onnx_peer.ts
 *
 * Not a `deno bench` file (so not `*_bench.ts`: `deno task bench` would run it): inside `deno bench`
 * the addon's promises never settled (the run hung).
 * `--allow-net` lets Deno resolve the package, which is not in deno.json. ORT runs with as many
 * intra-op threads as the machine has cores. The passes alternate, ORT then STQA, in 3 rounds of 3;
 * each waits for its result (STQA: `syncGpu()`); the summary takes the median after the first two
 * (session warm-up, pipeline compilation).
 *
 * @module
 */

import { initGpu } from "../src/gpu/device.ts";
import { syncGpu } from "../src/gpu/queue.ts";
import { StqaNet } from "../src/models/stqa_net.ts";
import { noGrad, tensor } from "../src/tensor/tensor.ts";
import { generatorFlops } from "./_train_step.ts";
import { fmt, formatTable } from "./_timing.ts";

/** The part of onnxruntime-node's API this file uses. */
interface Ort {
  InferenceSession: {
    create(path: string, options: Record<string, unknown>): Promise<{
      run(feeds: Record<string, unknown>): Promise<Record<string, unknown>>;
    }>;
  };
  Tensor: new (type: "float32", data: Float32Array, dims: number[]) => unknown;
}

const ORT = "npm:onnxruntime-node@1.20.1";
const MODELS = new URL("./.cache/onnx/", import.meta.url);
/** ResNet-50's forward at 224x224: 4.09 G multiply-adds. */
const RESNET50_FLOPS = 2 * 4.09e9;
const T = 16, H = 128, W = 128;
const ROUNDS = 3, PER_ROUND = 3;

async function loadOrt(): Promise<Ort | string> {
  try {
    const specifier = ORT; // a variable: type checking does not resolve (or download) it
    return await import(specifier) as Ort;
  } catch (e) {
    return `${ORT} could not be loaded (${(e as Error).message.split("\n")[0]}); ` +
      `deno cache ${ORT}, and run with --allow-ffi`;
  }
}

const times = new Map<string, number[]>();
const record = (name: string, ms: number) => times.set(name, [...(times.get(name) ?? []), ms]);
const ort = await loadOrt();
const threads = navigator.hardwareConcurrency;
const skip = typeof ort === "string" ? ort : null;
const model = (name: string) => new URL(name, MODELS).pathname;
const missing = ["stqa_default.onnx", "resnet50.onnx"].filter((m) => {
  try {
    return !Deno.statSync(model(m)).isFile;
  } catch {
    return true;
  }
});

await initGpu();
const jndData = Float32Array.from({ length: T * H * W }, (_, i) => 0.02 * ((i * 7919) % 997) / 997);
const net = new StqaNet({ seed: 1 });
const jnd = tensor(jndData, [T, 1, H, W]).keep();

if (skip || missing.length) {
  console.log(
    `ONNX Runtime peer skipped: ${
      skip ?? `no ${missing.join(", ")} (run /usr/bin/python3 bench/make_onnx_models.py)`
    }`,
  );
}
const o = skip || missing.length ? null : ort as Ort;
const options = { intraOpNumThreads: threads, interOpNumThreads: 1 };
const gen = o && await o.InferenceSession.create(model("stqa_default.onnx"), options);
const resnet = o && await o.InferenceSession.create(model("resnet50.onnx"), options);
const jndOrt = o && new o.Tensor("float32", jndData, [T, 1, H, W]);
const img = o && new o.Tensor(
  "float32",
  Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => ((i * 31) % 255) / 255),
  [1, 3, 224, 224],
);

async function timed(name: string, fn: () => Promise<unknown>) {
  const t0 = performance.now();
  await fn();
  record(name, performance.now() - t0);
}

// Alternated: a change in the machine's load reaches both.
for (let r = 0; r < ROUNDS; r++) {
  for (let i = 0; i < PER_ROUND; i++) {
    if (gen) await timed("ort gen", () => gen.run({ jnd: jndOrt }));
    await timed("stqa gen", async () => {
      noGrad(() => net.forward(jnd)).weights.forEach((w) => w.dispose());
      await syncGpu();
    });
    if (resnet) await timed("ort resnet", () => resnet.run({ x: img }));
  }
}

const med = (name: string) => {
  const v = (times.get(name) ?? []).slice(2).sort((a, b) => a - b);
  return v.length ? v[v.length >> 1] : NaN;
};
const gflop = generatorFlops(net.config, T, H, W).forward;
const stqa = med("stqa gen"), genMs = med("ort gen"), res = med("ort resnet");
const ortName = `ONNX Runtime CPU (${threads} threads)`;
console.log(
  `\nmedian of ${ROUNDS * PER_ROUND - 2} passes each (the first two dropped), alternated\n\n` +
    formatTable(["pass", "impl", "ms", "GFLOP/s", "time vs ORT"], [
      [
        "generator fwd 16x128x128",
        "STQA (WebGPU, lavapipe)",
        fmt(stqa, 0),
        fmt(gflop / stqa / 1e6, 1),
        Number.isFinite(genMs) ? `${fmt(stqa / genMs, 1)}x` : "-",
      ],
      ["generator fwd 16x128x128", ortName, fmt(genMs, 0), fmt(gflop / genMs / 1e6, 1), "1.0x"],
      ["ResNet-50 fwd 1x3x224x224", ortName, fmt(res, 0), fmt(RESNET50_FLOPS / res / 1e6, 1), "-"],
    ]),
);
