/**
 * Published victims with their authors' weight files: which files each needs, and how their
 * tensor names map onto the model's parameters.
 *
 * A published model's weights often come in several files: VSFA's and MDTVSFA's authors publish
 * the head (`VSFA.pt`, `MDTVSFA.pt`, PyTorch's legacy format) and take the backbone from
 * torchvision's ImageNet ResNet-50 (`resnet50-19c8e357.pth` or `resnet50-0676ba61.pth`). Each
 * file may be a PyTorch checkpoint (zip or legacy format, read without Python) or a safetensors
 * file; its tensors keep the names they have there, except that a torchvision backbone's
 * (`conv1.weight`, `layer1.0.bn1.running_mean`, ...) go under `backbone.` (other names in the
 * same file, such as SimpleVQA's head `quality.*`, stay as they are), a pytorchvideo SlowFast's
 * (`blocks.*`) go under `motion.`, and the ImageNet and Kinetics classifiers (`fc.*`,
 * `blocks.6.proj.*`) and batch norms' `num_batches_tracked` counters are dropped (none is used
 * by the features). SimpleVQA's authors publish `UGC_BVQA_model.pth` (its ResNet-50 and head,
 * DataParallel's `module.` prefix stripped on reading) and take the motion branch from
 * pytorchvideo's Kinetics `SLOWFAST_8x8_R50.pyth` (`{"model_state": ...}`).
 *
 * @module
 */

import { basename } from "path";
import { readSafetensorsFile, type TensorData } from "../../io/safetensors.ts";
import { readTorchCheckpoint } from "../../io/torch_checkpoint.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { writeBuffer } from "../../gpu/queue.ts";
import { BACKBONE_PREFIX } from "./vsfa.ts";
import { isPytorchvideoSlowFast } from "./slowfast.ts";
import type { PublishedFamily } from "./victim.ts";

/** What each published family's weights are, for messages and the README. */
export const PUBLISHED_WEIGHTS: Record<PublishedFamily, { files: string; paper: string }> = {
  vsfa: {
    files: "VSFA.pt (github.com/lidq92/VSFA, models/) and torchvision's ImageNet ResNet-50 " +
      "(resnet50-19c8e357.pth or resnet50-0676ba61.pth)",
    paper: "Li, Jiang, Jiang. Quality assessment of in-the-wild videos. ACM MM 2019",
  },
  simplevqa: {
    files: "UGC_BVQA_model.pth (github.com/sunwei925/SimpleVQA, its Google Drive link) and " +
      "pytorchvideo's Kinetics SlowFast-R50 (SLOWFAST_8x8_R50.pyth)",
    paper: "Sun, Min, Lu, Zhai. A deep learning based no-reference quality assessment model " +
      "for UGC videos. ACM MM 2022",
  },
  mdtvsfa: {
    files: "MDTVSFA.pt (github.com/lidq92/MDTVSFA, models/) and torchvision's ImageNet " +
      "ResNet-50 (resnet50-19c8e357.pth or resnet50-0676ba61.pth)",
    paper: "Li, Jiang, Jiang. Unified quality assessment of in-the-wild videos with mixed " +
      "datasets training. IJCV 2021",
  },
  "fast-vqa": {
    files: "FAST_VQA_B_1*4.pth (github.com/VQAssessment/FAST-VQA-and-FasterVQA, its release " +
      'page; {"state_dict": ...})',
    paper: "Wu, Chen, Hou, Wang, Liao, Li, Sun, Yan, Lin. FAST-VQA: Efficient end-to-end " +
      "video quality assessment with fragment sampling. ECCV 2022",
  },
  "faster-vqa": {
    files: "FAST_VQA_3D_1*1.pth (github.com/VQAssessment/FAST-VQA-and-FasterVQA, its release " +
      'page: FasterVQA; {"state_dict": ...})',
    paper: "Wu, Chen, Liao, Hou, Sun, Yan, Gu, Sun, Lin. Neighbourhood representative " +
      "sampling for efficient end-to-end video quality assessment. TPAMI 2023",
  },
  dover: {
    files: "DOVER.pth (github.com/VQAssessment/DOVER, its release page)",
    paper: "Wu, Zhang, Liao, Chen, Hou, Wang, Sun, Yan, Lin. Exploring video quality " +
      "assessment on user generated contents from aesthetic and technical perspectives. " +
      "ICCV 2023",
  },
};

/** A tensor read from one of the weight files, with the file it came from. */
export interface Sourced {
  /** The tensor (float32 values and shape). */
  data: TensorData;
  /** The file it came from. */
  file: string;
  /** Its name in the file (before any prefix was added). */
  original: string;
}

/** A torchvision ResNet's own names (a file may hold a head beside them, as SimpleVQA's). */
const RESNET_NAME = /^(conv1|bn1|layer[1-4])\./;

/** The prefix of a SlowFast motion backbone's (pytorchvideo) names among a victim's. */
export const MOTION_PREFIX = "motion.";

/** Whether a file's names are a torchvision ResNet's (with no prefix). */
function isTorchvisionResNet(names: string[]): boolean {
  return names.includes("conv1.weight") && names.includes("bn1.running_mean") &&
    names.some((n) => n.startsWith("layer4."));
}

/** The tensors of one weight file: safetensors by its extension, else a PyTorch checkpoint. */
async function readOne(path: string): Promise<Record<string, TensorData>> {
  if (/\.safetensors$/i.test(path)) {
    return (await readSafetensorsFile(path, { what: "weights file" })).tensors;
  }
  const { tensors } = await readTorchCheckpoint(path);
  return tensors;
}

/**
 * Reads the weight files of a published victim and maps their names onto its parameters (see
 * the module's documentation). Files are read in order; a name found in two files is refused,
 * naming both.
 *
 * @example
 * ```ts ignore
 * import { readPublishedWeights } from "./published.ts";
 * const tensors = await readPublishedWeights(["VSFA.pt", "resnet50-19c8e357.pth"]);
 * console.log(tensors.get("backbone.conv1.weight")?.file); // resnet50-19c8e357.pth
 * ```
 */
export async function readPublishedWeights(
  paths: readonly string[],
): Promise<Map<string, Sourced>> {
  const out = new Map<string, Sourced>();
  for (const path of paths) {
    const tensors = await readOne(path);
    const names = Object.keys(tensors);
    const backbone = isTorchvisionResNet(names);
    const motion = isPytorchvideoSlowFast(names);
    for (const name of names) {
      if (name.endsWith(".num_batches_tracked")) continue;
      // Swin's relative position index is a buffer the model recomputes from its window.
      if (name.endsWith(".relative_position_index")) continue;
      if (backbone && name.startsWith("fc.")) continue;
      if (motion && name.startsWith("blocks.6.proj.")) continue;
      const key = backbone && RESNET_NAME.test(name)
        ? `${BACKBONE_PREFIX}${name}`
        : motion && name.startsWith("blocks.")
        ? `${MOTION_PREFIX}${name}`
        : name;
      const seen = out.get(key);
      if (seen) {
        throw new Error(
          `tensor '${key}' is in two weight files: ${seen.file} and ${path}; give each once`,
        );
      }
      out.set(key, { data: tensors[name], file: path, original: name });
    }
  }
  return out;
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/**
 * Matches published weights (from {@link readPublishedWeights}) against a model's parameter
 * shapes: every parameter found once with its shape, and no file holding a tensor the model
 * does not have. Returns the tensors by parameter name. The error names each tensor, both
 * shapes and its file, and says which files the family needs when whole parts are missing.
 *
 * @example
 * ```ts ignore
 * import { matchPublishedWeights, readPublishedWeights } from "./published.ts";
 * import { VSFA_DEFAULTS, vsfaSize } from "./vsfa.ts";
 * const found = await readPublishedWeights(["VSFA.pt", "resnet50-19c8e357.pth"]);
 * const tensors = matchPublishedWeights("vsfa", found, vsfaSize("vsfa", VSFA_DEFAULTS).shapes);
 * ```
 */
export function matchPublishedWeights(
  family: PublishedFamily,
  found: Map<string, Sourced>,
  shapes: Record<string, readonly number[]>,
): Record<string, TensorData> {
  const problems: string[] = [];
  const missing: string[] = [];
  for (const [name, shape] of Object.entries(shapes)) {
    const f = found.get(name);
    if (!f) missing.push(name);
    else if (
      f.data.shape.length !== shape.length || f.data.shape.some((d, i) => d !== shape[i])
    ) {
      problems.push(
        `tensor '${f.original}' of ${f.file} has shape ${shapeText(f.data.shape)}, but ` +
          `${family} needs ${shapeText(shape)} for '${name}'`,
      );
    }
  }
  for (const [name, f] of found) {
    if (!(name in shapes)) {
      problems.push(
        `${f.file} has tensor '${f.original}' ${
          shapeText(f.data.shape)
        }, which ${family} does not have`,
      );
    }
  }
  if (missing.length) {
    const backbone = missing.filter((n) => n.startsWith(BACKBONE_PREFIX));
    const motion = missing.filter((n) => n.startsWith(MOTION_PREFIX));
    const head = missing.filter((n) =>
      !n.startsWith(BACKBONE_PREFIX) && !n.startsWith(MOTION_PREFIX)
    );
    if (backbone.length) {
      problems.push(
        `no file gave the backbone (${backbone.length} tensors, e.g. '${backbone[0]}')`,
      );
    }
    if (motion.length) {
      problems.push(
        `no file gave the motion backbone (${motion.length} tensors, e.g. '${motion[0]}')`,
      );
    }
    if (head.length) {
      problems.push(
        `missing tensor${head.length > 1 ? "s" : ""} ${
          head.slice(0, 8).map((n) => `'${n}'`).join(", ")
        }${head.length > 8 ? ` and ${head.length - 8} more` : ""}`,
      );
    }
  }
  if (problems.length) {
    const files = [...new Set([...found.values()].map((f) => basename(f.file)))].join(", ");
    throw new Error(
      `the weights (${files || "no tensors"}) do not fit ${family}: ${problems.join("; ")}. ` +
        `${family} needs ${PUBLISHED_WEIGHTS[family].files}`,
    );
  }
  const out: Record<string, TensorData> = {};
  for (const name of Object.keys(shapes)) out[name] = found.get(name)!.data;
  return out;
}

/**
 * Copies published weights (from {@link readPublishedWeights}) into a victim's parameters,
 * after {@link matchPublishedWeights} has checked them (nothing is copied when it throws).
 *
 * @example
 * ```ts ignore
 * import { assignPublishedWeights, readPublishedWeights } from "./published.ts";
 * assignPublishedWeights("vsfa", await readPublishedWeights(files), victim.parameters());
 * ```
 */
export function assignPublishedWeights(
  family: PublishedFamily,
  found: Map<string, Sourced>,
  params: Record<string, Tensor>,
): void {
  const shapes = Object.fromEntries(Object.entries(params).map(([k, p]) => [k, p.shape]));
  const tensors = matchPublishedWeights(family, found, shapes);
  for (const [name, p] of Object.entries(params)) {
    const data = tensors[name].data as Float32Array<ArrayBuffer>;
    if (data.length) writeBuffer(p.buffer, data);
  }
}
