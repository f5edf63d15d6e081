/**
 * STQA: adversarial attacks on video quality assessment models, on WebGPU.
 *
 * The scripting API, in the order data flows through it:
 * - the GPU context (`initGpu`), tensors with autograd (`tensor`, `tidy`, `noGrad`,
 *   `Tensor#backward`), the functional op namespace `nn`, optimisers (`Adam`, `SGD`), seeded
 *   initialisers and safetensors I/O;
 * - video in and out through ffmpeg (`probeVideo`, `readVideo`, `readVideoChunks`, `writeVideo`);
 * - JND maps (`computeJnd`);
 * - datasets (`buildProxyDataset`, the real-dataset loaders) and victim VQA models (`loadVictim`);
 * - correlation and imperceptibility metrics (`srcc`, `correlationReport`, `psnr`, `ssim`);
 * - attacks: the STQA-Net generator (`StqaNet`, `trainGenerator`, `loadGenerator`, `attackVideo`)
 *   and the iterative baselines (`fgsm`, `ifgsm`, `zhang2023`, `korhonen`, `randomAttack`).
 *
 * Each part is also an entry point of its own, in the layer order of docs/architecture.md:
 * `./gpu`, `./tensor`, `./nn` (the op namespace), `./optim`, `./io`, `./video`, `./jnd`,
 * `./metrics`, `./data`, `./models`, `./attack`, `./train`, `./eval` and `./report`
 * (e.g. `import { computeJnd } from "@stqa/stqa/jnd"`). This module re-exports all of them,
 * with the ops as the namespace `nn` and the initialisers also as the namespace `init`.
 *
 * @example
 * ```ts
 * import { initGpu, nn, tensor } from "./mod.ts";
 * await initGpu();
 * const w = tensor([0.5, -0.25], [2], { requiresGrad: true });
 * const x = tensor([1, 2, 3, 4], [2, 2]);
 * const loss = nn.sum(nn.square(nn.mul(x, w)));
 * loss.backward();
 * console.log(await w.grad!.read());
 * ```
 * @module
 */

export * from "./src/gpu/mod.ts";
export * from "./src/tensor/mod.ts";
export * as nn from "./src/nn/mod.ts";
export * from "./src/optim/mod.ts";
export {
  calculateGain,
  fans,
  type InitOptions,
  kaimingNormal,
  type KaimingOptions,
  kaimingUniform,
  type Nonlinearity,
  xavierNormal,
  type XavierOptions,
  xavierUniform,
  zeros,
} from "./src/nn/init.ts";
export * as init from "./src/nn/init.ts";
export * from "./src/io/mod.ts";
export * from "./src/video/mod.ts";
export * from "./src/jnd/mod.ts";
export * from "./src/metrics/mod.ts";
export * from "./src/data/mod.ts";
export * from "./src/models/mod.ts";
export * from "./src/attack/mod.ts";
export * from "./src/train/mod.ts";
export * from "./src/eval/mod.ts";
export * from "./src/report/mod.ts";
