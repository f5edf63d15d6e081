/**
 * WGSL loading and the compute-pipeline cache.
 *
 * Each kernel family lives in `shaders/<name>.wgsl` and is read once. A file may hold `{{NAME}}`
 * placeholders (or `{{NAME|default}}`) that a kernel fills per call ("specialisation", e.g. a workgroup size or an
 * operator expression); each placeholder must stay on one line so that line numbers in compile
 * errors match the file. Pipelines are cached by file, entry point and specialisation.
 *
 * Set `STQA_SHADER_DIR` to a folder of `.wgsl` overrides: a file there replaces the bundled file
 * of the same name, so a researcher can edit a kernel and re-run without touching the package.
 *
 * @module
 */

import { getGpu } from "./device.ts";
import { guard } from "./errors.ts";
import { join } from "path";
import { fileURLToPath } from "url";

const BUNDLED_DIR = fileURLToPath(new URL("../../shaders/", import.meta.url));

/** Values substituted for `{{NAME}}` placeholders in a shader file. */
export type Defines = Record<string, string | number>;

/** A compiled pipeline with where it came from, for error messages. */
export interface CachedPipeline {
  /** The pipeline. */
  pipeline: GPUComputePipeline;
  /** Its bind group layout 0 (taken once). */
  layout: GPUBindGroupLayout;
  /** The file the code came from. */
  file: string;
  /** The specialised source, for mapping error lines. */
  code: string;
}

const sources = new Map<string, { file: string; text: string }>();
const pipelines = new Map<string, CachedPipeline>();

function overrideDir(): string | undefined {
  try {
    return Deno.env.get("STQA_SHADER_DIR") || undefined;
  } catch {
    return undefined; // no env permission: bundled shaders only
  }
}

/**
 * Reads `shaders/<name>.wgsl` (or its override), once per process.
 *
 * @example
 * ```ts
 * import { loadShaderSource } from "./shaders.ts";
 * const { file, text } = loadShaderSource("elementwise");
 * ```
 */
export function loadShaderSource(name: string): { file: string; text: string } {
  const hit = sources.get(name);
  if (hit) return hit;
  const dir = overrideDir();
  let file = join(BUNDLED_DIR, `${name}.wgsl`);
  if (dir) {
    const candidate = join(dir, `${name}.wgsl`);
    try {
      Deno.statSync(candidate);
      file = candidate;
    } catch { /* not overridden */ }
  }
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    throw new Error(`Cannot read shader ${file}: ${(e as Error).message}`);
  }
  const entry = { file, text };
  sources.set(name, entry);
  return entry;
}

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

function definesKey(defines: Defines | undefined): string {
  if (!defines) return "";
  return Object.keys(defines).sort().map((k) => `${k}=${defines[k]}`).join(";");
}

/** Formats compilation messages as `file:line:col: message`. */
async function describeCompileErrors(module: GPUShaderModule, file: string): Promise<string> {
  const info = await module.getCompilationInfo();
  return info.messages
    .filter((m) => m.type === "error")
    .map((m) => `${file}:${m.lineNum}:${m.linePos}: ${m.message.trim().split("\n")[0]}`)
    .join("\n");
}

/**
 * Returns the cached pipeline for `shader`/`entry`/`defines`, compiling it on first use.
 * Compilation is synchronous; a compile or validation error is reported at the next sync point
 * (see `checkErrors`) as an error naming the op and the .wgsl file, line and column.
 *
 * @example
 * ```ts
 * import { getPipeline } from "./shaders.ts";
 * const { pipeline } = getPipeline("elementwise", "unary", { EXPR: "exp(x)" }, "exp");
 * ```
 */
export function getPipeline(
  shader: string,
  entry: string,
  defines: Defines | undefined,
  op: string,
): CachedPipeline {
  const key = `${shader}|${entry}|${definesKey(defines)}`;
  const hit = pipelines.get(key);
  if (hit) return hit;
  const { device } = getGpu();
  const { file, text } = loadShaderSource(shader);
  const code = specialise(text, defines ?? {}, file);
  const module = guard(
    op,
    () => device.createShaderModule({ code, label: file }),
    async (err) => {
      const detail = await describeCompileErrors(module, file);
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
 * The cached pipeline if it was compiled already (synchronous fast path).
 */
export function peekPipeline(
  shader: string,
  entry: string,
  defines: Defines | undefined,
): CachedPipeline | undefined {
  return pipelines.get(`${shader}|${entry}|${definesKey(defines)}`);
}

/** Number of pipelines compiled so far (for tests and diagnostics). */
export function pipelineCount(): number {
  return pipelines.size;
}
