/**
 * Kernels as typed programs.
 *
 * A {@link Kernel} is a .wgsl file with its bindings declared once, in TypeScript: binding 0 is
 * the uniform `params: Params` (the file defines `struct Params`), bindings 1, 2, ... are the
 * named storage arrays. The loader writes these declarations (after the shared prelude,
 * src/gpu/prelude.wgsl) so that kernel files do not repeat them. A {@link Program} is one launch
 * of a kernel: the op's name, the entry point, the specialisation, the parameters and the
 * workgroup counts. The queue (`dispatch` in queue.ts) takes a program and its buffers.
 *
 * @module
 */

import { type ShaderFile, shaderFile } from "./_sources.ts";

export type { ShaderFile } from "./_sources.ts";

/** Values substituted for `{{NAME}}` placeholders in a shader file. */
export type Defines = Record<string, string | number>;

/** How a kernel may use a storage binding: `read` (read-only storage) or `read_write`. */
export type StorageAccess = "read" | "read_write";

/** One storage binding of a kernel, declared as `var<storage, access> name: array<type>`. */
export interface StorageBinding {
  /** The variable's name in WGSL. */
  readonly name: string;
  /** The array's element type (a WGSL type, or an alias the file defines); default `f32`. */
  readonly type: string;
  /** Default `read_write`. */
  readonly access: StorageAccess;
  /** Other names for the same binding, each with its element type (e.g. `{ g2: "vec2<f32>" }`);
   * an entry point may use one or the other, not both. */
  readonly views: Readonly<Record<string, string>>;
}

/** A storage binding as given to {@link kernel}: a name (an `f32` array, read_write) or more. */
export type StorageBindingInit = string | {
  /** The variable's name in WGSL. */
  name: string;
  /** The array's element type; default `f32`. */
  type?: string;
  /** Default `read_write`. */
  access?: StorageAccess;
  /** Other names for the same binding, with their element types. */
  views?: Record<string, string>;
};

/** A .wgsl file of entry points, with its bindings. */
export interface Kernel {
  /** The file. */
  readonly file: ShaderFile;
  /** Files put before it, in order (shared declarations of a kernel family). */
  readonly includes: readonly ShaderFile[];
  /** Whether binding 0 is the uniform `params: Params`. */
  readonly params: boolean;
  /** Storage bindings 1, 2, ... */
  readonly storage: readonly StorageBinding[];
}

/** Options of {@link kernel}. */
export interface KernelOptions {
  /** Storage bindings 1, 2, ... in order. */
  storage?: StorageBindingInit[];
  /** Whether binding 0 is the uniform `params: Params` (default true). */
  params?: boolean;
  /** Files to put before the kernel file, e.g. the shared part of a family split by strategy. */
  includes?: URL[];
}

/** Workgroup counts (x, y, z); y and z default to 1. */
export type Workgroups = readonly [number, number?, number?];

/** One kernel launch. */
export interface Program {
  /** Name used in error messages, e.g. "conv2d.backward_input". */
  readonly op: string;
  /** The kernel file and its bindings. */
  readonly kernel: Kernel;
  /** Entry point in that file. */
  readonly entry: string;
  /** `{{NAME}}` substitutions (each distinct set compiles one pipeline). */
  readonly defines?: Defines;
  /** Integer parameters (written as i32, so u32 values below 2^31 and negatives both work). */
  readonly ints?: readonly number[];
  /** Float parameters, written after the integers. */
  readonly floats?: readonly number[];
  /** Workgroup counts. */
  readonly workgroups: Workgroups;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Declares a kernel file beside the calling module, with its bindings.
 *
 * @example
 * ```ts
 * import { bindingDeclarations, kernel } from "./program.ts";
 * const copy = kernel(new URL("./prelude.wgsl", import.meta.url), {
 *   storage: [{ name: "src", access: "read" }, "dst"],
 * });
 * console.log(bindingDeclarations(copy).join("\n"));
 * ```
 */
export function kernel(url: URL, options: KernelOptions = {}): Kernel {
  const storage = (options.storage ?? []).map((b): StorageBinding =>
    typeof b === "string" ? { name: b, type: "f32", access: "read_write", views: {} } : {
      name: b.name,
      type: b.type ?? "f32",
      access: b.access ?? "read_write",
      views: { ...b.views },
    }
  );
  const file = shaderFile(url);
  const names = new Set<string>(["params"]);
  for (const b of storage) {
    for (const name of [b.name, ...Object.keys(b.views)]) {
      if (!IDENT.test(name) || names.has(name)) {
        throw new Error(`Kernel ${file.name}: binding name '${name}' is invalid or repeated.`);
      }
      names.add(name);
    }
  }
  return {
    file,
    includes: (options.includes ?? []).map(shaderFile),
    params: options.params ?? true,
    storage,
  };
}

/**
 * The WGSL declarations of a kernel's bindings, one line each, as the loader writes them.
 *
 * @example
 * ```ts
 * import { bindingDeclarations, kernel } from "./program.ts";
 * const k = kernel(new URL("./prelude.wgsl", import.meta.url), { storage: ["x"] });
 * bindingDeclarations(k)[1]; // "@group(0) @binding(1) var<storage, read_write> x: array<f32>;"
 * ```
 */
export function bindingDeclarations(k: Kernel): string[] {
  const lines: string[] = [];
  if (k.params) lines.push("@group(0) @binding(0) var<uniform> params: Params;");
  k.storage.forEach((b, i) => {
    const views: [string, string][] = [[b.name, b.type], ...Object.entries(b.views)];
    for (const [name, type] of views) {
      lines.push(`@group(0) @binding(${i + 1}) var<storage, ${b.access}> ${name}: array<${type}>;`);
    }
  });
  return lines;
}
