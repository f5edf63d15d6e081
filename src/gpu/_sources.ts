/**
 * Reading WGSL sources. Every .wgsl file lives beside the code that uses it and is named by a
 * URL made from that module's `import.meta.url`, so the package works from a local checkout, a
 * URL or a registry alike: `file:` URLs are read with `Deno.readTextFile`, others with `fetch`.
 *
 * Pipeline creation is synchronous, so sources are read ahead: every file named through
 * `shaderFile()` is registered, and `loadShaders()` (awaited by `initGpu()`) reads all of them.
 * A `file:` URL that was not read ahead is read synchronously on first use; any other URL must
 * have been loaded.
 *
 * `STQA_SHADER_DIR` names a folder of overrides: a file there with the same base name as a
 * bundled file replaces it (read from the local disk).
 *
 * @module
 */

import { join } from "path";
import { fileURLToPath, pathToFileURL } from "url";

/** A .wgsl file, by URL. */
export interface ShaderFile {
  /** Where the bundled file lives (beside the module that uses it). */
  readonly url: URL;
  /** Its base name, e.g. `elementwise.wgsl`: the name an override in `STQA_SHADER_DIR` uses. */
  readonly name: string;
}

/** A source as read: where it came from (a path for local files, else the URL) and its text. */
export interface LoadedSource {
  /** The file or URL the text was read from, as error messages name it. */
  file: string;
  /** The WGSL text. */
  text: string;
}

const registered = new Map<string, ShaderFile>();
const loaded = new Map<string, LoadedSource>();
const failed = new Map<string, string>();

/**
 * Names a .wgsl file by URL and registers it for `loadShaders()`.
 *
 * @example
 * ```ts
 * import { shaderFile } from "./_sources.ts";
 * const file = shaderFile(new URL("./prelude.wgsl", import.meta.url));
 * console.log(file.name); // "prelude.wgsl"
 * ```
 */
export function shaderFile(url: URL): ShaderFile {
  const hit = registered.get(url.href);
  if (hit) return hit;
  const name = decodeURIComponent(url.pathname.slice(url.pathname.lastIndexOf("/") + 1));
  if (!name.endsWith(".wgsl")) {
    throw new Error(`Shader URL ${url.href} does not name a .wgsl file.`);
  }
  const file: ShaderFile = { url, name };
  registered.set(url.href, file);
  return file;
}

function overrideDir(): string | undefined {
  try {
    return Deno.env.get("STQA_SHADER_DIR") || undefined;
  } catch {
    return undefined; // no env permission: bundled shaders only
  }
}

/**
 * Where `file` is read from: the override in `dir` (default: `STQA_SHADER_DIR`) when a file of
 * the same base name exists there, else the bundled URL.
 *
 * @example
 * ```ts
 * import { resolveShader, shaderFile } from "./_sources.ts";
 * const file = shaderFile(new URL("./prelude.wgsl", import.meta.url));
 * resolveShader(file, "/no/such/dir").href === file.url.href; // true
 * ```
 */
export function resolveShader(file: ShaderFile, dir: string | undefined = overrideDir()): URL {
  if (dir) {
    const candidate = join(dir, file.name);
    try {
      if (Deno.statSync(candidate).isFile) return pathToFileURL(candidate);
    } catch { /* not overridden */ }
  }
  return file.url;
}

/**
 * How an error message names a source: the path of a `file:` URL, else the URL.
 *
 * @example
 * ```ts
 * import { displayName } from "./_sources.ts";
 * displayName(new URL("file:///tmp/a.wgsl")); // "/tmp/a.wgsl"
 * displayName(new URL("https://example.com/a.wgsl")); // "https://example.com/a.wgsl"
 * ```
 */
export function displayName(url: URL): string {
  return url.protocol === "file:" ? fileURLToPath(url) : url.href;
}

async function readUrl(url: URL): Promise<string> {
  if (url.protocol === "file:") return await Deno.readTextFile(url);
  const response = await fetch(url);
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`HTTP ${response.status} ${response.statusText}`);
  }
  return await response.text();
}

/**
 * Reads every registered file that is not loaded yet (overrides applied). A file that cannot be
 * read is not an error here: its use reports it, naming the file.
 *
 * @example
 * ```ts
 * import { loadShaders } from "./_sources.ts";
 * await loadShaders();
 * ```
 */
export async function loadShaders(): Promise<void> {
  const todo = [...registered.values()].filter((f) => !loaded.has(f.url.href));
  await Promise.all(todo.map(async (f) => {
    const url = resolveShader(f);
    try {
      const text = await readUrl(url);
      loaded.set(f.url.href, { file: displayName(url), text });
      failed.delete(f.url.href);
    } catch (e) {
      failed.set(f.url.href, `Cannot read shader ${displayName(url)}: ${(e as Error).message}`);
    }
  }));
}

/**
 * The text of `file` (overrides applied), read once per process: from what `loadShaders()` read,
 * else synchronously for a `file:` URL.
 *
 * @throws {Error} naming the file when it cannot be read, or when a non-`file:` URL was not
 * loaded ahead.
 * @example
 * ```ts
 * import { shaderFile, shaderSource } from "./_sources.ts";
 * const { file, text } = shaderSource(shaderFile(new URL("./prelude.wgsl", import.meta.url)));
 * ```
 */
export function shaderSource(file: ShaderFile): LoadedSource {
  const hit = loaded.get(file.url.href);
  if (hit) return hit;
  const url = resolveShader(file);
  if (url.protocol !== "file:") {
    throw new Error(
      failed.get(file.url.href) ??
        `Shader ${url.href} is not loaded: \`await initGpu()\` (or \`loadShaders()\`) after ` +
          "importing the module that uses it.",
    );
  }
  let text: string;
  try {
    text = Deno.readTextFileSync(url);
  } catch (e) {
    throw new Error(`Cannot read shader ${displayName(url)}: ${(e as Error).message}`);
  }
  const entry = { file: displayName(url), text };
  loaded.set(file.url.href, entry);
  return entry;
}
