/**
 * WGSL assembly and the compute-pipeline cache.
 *
 * A kernel's code is assembled from the shared prelude (src/gpu/prelude.wgsl), the binding
 * declarations written from its TypeScript declaration (see program.ts), its includes and its
 * own file. A file may hold `{{NAME}}` placeholders (or `{{NAME|default}}`) that a program fills
 * ("specialisation", e.g. a workgroup size or an operator expression); each placeholder must stay
 * on one line so that line numbers in compile errors match the file. Compile errors are mapped
 * back to the file and line they come from. Pipelines are cached by file, entry point and
 * specialisation.
 *
 * Sources are read by _sources.ts (beside the code that uses them, by URL; `STQA_SHADER_DIR`
 * overrides by base name).
 *
 * @module
 */

import { getGpu } from "./device.ts";
import { guard } from "./errors.ts";
import { bindingDeclarations, type Defines, type Kernel } from "./program.ts";
import { shaderFile, shaderSource } from "./_sources.ts";

export type { Defines } from "./program.ts";

const PRELUDE = shaderFile(new URL("./prelude.wgsl", import.meta.url));

/** A compiled pipeline with where it came from, for error messages. */
export interface CachedPipeline {
  /** The pipeline. */
  pipeline: GPUComputePipeline;
  /** Its bind group layout 0 (taken once). */
  layout: GPUBindGroupLayout;
  /** The kernel file the entry point is in, as error messages name it. */
  file: string;
  /** The assembled, specialised source. */
  code: string;
}

/** One part of an assembled source: where it came from and the line it starts at (1-based). */
export interface SourceSegment {
  /** File (or description) the lines come from. */
  file: string;
  /** First line of the segment in the assembled code. */
  start: number;
  /** Number of lines. */
  lines: number;
}

/** Assembled code and the map from its lines back to their files. */
export interface AssembledSource {
  /** The code handed to the compiler. */
  code: string;
  /** Its parts, in order. */
  segments: SourceSegment[];
}

const pipelines = new Map<string, CachedPipeline>();

/**
 * Replaces `{{NAME}}` placeholders; `{{NAME|default}}` falls back to `default`. A placeholder
 * with neither a value nor a default is an error naming the file.
 *
 * @example
 * ```ts
 * import { specialise } from "./shaders.ts";
 * specialise("const WG = {{WG}}u;", { WG: 64 }, "x.wgsl"); // "const WG = 64u;"
 * ```
 */
export function specialise(text: string, defines: Defines, file: string): string {
  return text.replace(/\{\{(\w+)(?:\|([^}]*))?\}\}/g, (_m, key: string, fallback?: string) => {
    if (key in defines) return String(defines[key]);
    if (fallback !== undefined) return fallback;
    throw new Error(`Shader ${file} needs a value for {{${key}}}, and none was given.`);
  });
}

/**
 * The code of `kernel` specialised with `defines`: prelude, binding declarations, includes and
 * the kernel file, with the line where each part starts.
 *
 * @example
 * ```ts
 * import { assembleKernel } from "./shaders.ts";
 * import { kernel } from "./program.ts";
 * const k = kernel(new URL("./prelude.wgsl", import.meta.url), { params: false });
 * const { segments } = assembleKernel(k, {});
 * segments.map((s) => s.file); // [".../prelude.wgsl", "bindings of prelude.wgsl", ".../prelude.wgsl"]
 * ```
 */
export function assembleKernel(kernel: Kernel, defines: Defines): AssembledSource {
  const parts: { file: string; text: string }[] = [];
  parts.push(shaderSource(PRELUDE));
  parts.push({
    file: `bindings of ${kernel.file.name}`,
    text: bindingDeclarations(kernel).join("\n"),
  });
  for (const inc of kernel.includes) {
    const { file, text } = shaderSource(inc);
    parts.push({ file, text: specialise(text, defines, file) });
  }
  const own = shaderSource(kernel.file);
  parts.push({ file: own.file, text: specialise(own.text, defines, own.file) });
  const segments: SourceSegment[] = [];
  let start = 1;
  for (const p of parts) {
    const lines = p.text.split("\n").length;
    segments.push({ file: p.file, start, lines });
    start += lines;
  }
  return { code: parts.map((p) => p.text).join("\n"), segments };
}

/**
 * Maps a line of assembled code to `file:line` of the part it comes from.
 *
 * @example
 * ```ts
 * import { sourceLine } from "./shaders.ts";
 * sourceLine([{ file: "a.wgsl", start: 1, lines: 10 }, { file: "b.wgsl", start: 11, lines: 5 }], 12);
 * // "b.wgsl:2"
 * ```
 */
export function sourceLine(segments: readonly SourceSegment[], line: number): string {
  for (const s of segments) {
    if (line >= s.start && line < s.start + s.lines) return `${s.file}:${line - s.start + 1}`;
  }
  return `?:${line}`;
}

function definesKey(defines: Defines | undefined): string {
  if (!defines) return "";
  return Object.keys(defines).sort().map((k) => `${k}=${defines[k]}`).join(";");
}

/** Formats compilation messages as `file:line:col: message`, in the file each line came from. */
async function describeCompileErrors(
  module: GPUShaderModule,
  segments: readonly SourceSegment[],
): Promise<string> {
  const info = await module.getCompilationInfo();
  return info.messages
    .filter((m) => m.type === "error")
    .map((m) =>
      `${sourceLine(segments, m.lineNum)}:${m.linePos}: ${m.message.trim().split("\n")[0]}`
    )
    .join("\n");
}

/**
 * Returns the cached pipeline for `kernel`/`entry`/`defines`, compiling it on first use.
 * Compilation is synchronous; a compile or validation error is reported at the next sync point
 * (see `checkErrors`) as an error naming the op and the .wgsl file, line and column.
 *
 * @example
 * ```ts
 * import { getPipeline } from "./shaders.ts";
 * import { kernel } from "./program.ts";
 * const unary = kernel(new URL("../tensor/ops/elementwise.wgsl", import.meta.url), {
 *   storage: ["b1", "b2"],
 * });
 * const { pipeline } = getPipeline(unary, "unary", { EXPR: "exp(x)" }, "exp");
 * ```
 */
export function getPipeline(
  kernel: Kernel,
  entry: string,
  defines: Defines | undefined,
  op: string,
): CachedPipeline {
  const key = `${kernel.file.url.href}|${entry}|${definesKey(defines)}`;
  const hit = pipelines.get(key);
  if (hit) return hit;
  const { device } = getGpu();
  const { code, segments } = assembleKernel(kernel, defines ?? {});
  const file = segments[segments.length - 1].file;
  const module = guard(
    op,
    () => device.createShaderModule({ code, label: file }),
    async (err) => {
      const detail = await describeCompileErrors(module, segments);
      return `${file} does not compile:\n${detail || err.message}`;
    },
  );
  const pipeline = guard(
    op,
    () =>
      device.createComputePipeline({
        label: `${op} (${file}:${entry})`,
        layout: "auto",
        compute: { module, entryPoint: entry },
      }),
    (err) => Promise.resolve(`pipeline for entry point '${entry}' in ${file}: ${err.message}`),
  );
  const layout = guard(op, () => pipeline.getBindGroupLayout(0));
  const cached = { pipeline, layout, file, code };
  pipelines.set(key, cached);
  return cached;
}

/**
 * Number of pipelines compiled so far (for tests and diagnostics).
 *
 * @example
 * ```ts
 * import { pipelineCount } from "./shaders.ts";
 * console.log(pipelineCount());
 * ```
 */
export function pipelineCount(): number {
  return pipelines.size;
}
