/**
 * Matrix product benchmarks: `nn.matmul` (src/tensor/ops/matmul.wgsl) against TF.js's WebGPU backend
 * (`tf.matMul`) on the same adapter, square sizes 512 and 1024, FLOPs = 2 M N K.
 *
 * Run with `deno task bench` (method: bench/_suite.ts; results: bench/RESULTS.md).
 *
 * @module
 */

import { initGpu } from "../src/gpu/device.ts";
import { matmul } from "../src/nn/mod.ts";
import { tensor } from "../src/tensor/tensor.ts";
import { randomNormal, sampledError, samplePositions } from "./_data.ts";
import { describePeak, peakOnce } from "./_peak.ts";
import {
  benchCase,
  benchPeak,
  measureSyncLatency,
  noteCheck,
  printSummaryAtExit,
} from "./_suite.ts";
import { initTfjs, tf, tfSync } from "./_tfjs.ts";

await initGpu();
await initTfjs();
const peak = await peakOnce();
console.log(describePeak(peak));

const GROUP = "matmul";

for (const size of [512, 1024]) {
  const [m, n, k] = [size, size, size];
  const flops = 2 * m * n * k;
  const label = `${m}x${k} * ${k}x${n}`;
  const aData = randomNormal(m * k, 1000 + size);
  const bData = randomNormal(k * n, 2000 + size);

  const a = tensor(aData, [m, k]);
  const b = tensor(bData, [k, n]);
  const ta = tf.tensor2d(aData, [m, k]);
  const tb = tf.tensor2d(bData, [k, n]);

  // Check one product of each at sampled positions against float64 before timing anything.
  const ours = matmul(a, b);
  const peer = tf.matMul(ta, tb);
  const got = await ours.read();
  const theirs = await peer.data() as Float32Array;
  ours.dispose();
  peer.dispose();
  await tfSync();
  const at = samplePositions(m * n, 32, size);
  const ref = at.map((idx) => {
    const [i, j] = [Math.floor(idx / n), idx % n];
    let acc = 0;
    for (let p = 0; p < k; p++) acc += aData[i * k + p] * bData[p * n + j];
    return acc;
  });
  noteCheck(GROUP, label, {
    stqa: sampledError(got, at, ref),
    tfjs: sampledError(theirs, at, ref),
  });

  benchCase({
    group: GROUP,
    label,
    impl: "tfjs",
    flops,
    run: () => tf.matMul(ta, tb).dispose(),
  });
  benchCase({
    group: GROUP,
    label,
    impl: "stqa",
    flops,
    run: () => matmul(a, b).dispose(),
  });
}

await measureSyncLatency();
benchPeak(peak);
printSummaryAtExit("matmul", peak);
