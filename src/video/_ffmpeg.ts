/**
 * Private helpers for the video module: finding ffmpeg and ffprobe, spawning them with argument
 * arrays (never a shell), draining stderr while they run, safe path arguments, errors that name
 * the file and frame, and temporary output files that are renamed into place only when complete.
 *
 * @module
 */

import * as path from "path";
import { tempPathBeside } from "../_fs.ts";
import { forgetTemp, registerChild, registerTemp } from "../_interrupt.ts";

/** Bytes of ffmpeg's stderr kept for error messages (the tail). */
const STDERR_TAIL = 4096;

/**
 * An error reading, probing or writing a video. The message names the file and, where one
 * applies, the frame; `stderr` holds the tail of what ffmpeg or ffprobe printed.
 *
 * @example
 * ```ts
 * import { probeVideo, VideoError } from "../../mod.ts";
 * try {
 *   await probeVideo("missing.mp4");
 * } catch (e) {
 *   if (e instanceof VideoError) console.error(e.file, e.message);
 * }
 * ```
 */
export class VideoError extends Error {
  /** The file the error is about. */
  readonly file: string;
  /** The frame (0-based) where it happened, as near as ffmpeg tells, when the error is about one. */
  readonly frame: number | undefined;
  /** The tail of the tool's stderr, when a tool ran. */
  readonly stderr: string;
  /** An error about `file`; `frame`, `stderr` and `cause` where known. */
  constructor(
    file: string,
    detail: string,
    options: { frame?: number; stderr?: string; cause?: unknown } = {},
  ) {
    const at = options.frame === undefined ? "" : ` (at frame ${options.frame})`;
    const said = options.stderr?.trim()
      ? `\n--- ffmpeg said (tail) ---\n${options.stderr.trim()}`
      : "";
    super(`${JSON.stringify(file)}: ${detail}${at}${said}`, { cause: options.cause });
    this.name = "VideoError";
    this.file = file;
    this.frame = options.frame;
    this.stderr = options.stderr ?? "";
  }
}

/**
 * Thrown when ffmpeg or ffprobe cannot be started (not installed, or not allowed to run).
 *
 * @example
 * ```ts
 * import { FfmpegNotFoundError, probeVideo } from "../../mod.ts";
 * try {
 *   await probeVideo("data/samples/astronaut_pan.mkv");
 * } catch (e) {
 *   if (e instanceof FfmpegNotFoundError) console.error(e.message);
 * }
 * ```
 */
export class FfmpegNotFoundError extends Error {
  /** "ffmpeg" or "ffprobe". */
  readonly tool: string;
  /** `binary` (from the environment variable or PATH) could not be started, for `reason`. */
  constructor(tool: Tool, binary: string, reason: string, cause?: unknown) {
    const envVar = tool.toUpperCase();
    super(
      `${tool} could not be started (${reason}; tried ${JSON.stringify(binary)}` +
        `${binary === tool ? " from PATH" : ` from ${envVar}`}). Install ffmpeg ` +
        "(Debian/Ubuntu: `apt-get install ffmpeg`; macOS: `brew install ffmpeg`; " +
        "others: https://ffmpeg.org/download.html), or set " +
        `${envVar}=/path/to/${tool}.`,
      { cause },
    );
    this.name = "FfmpegNotFoundError";
    this.tool = tool;
  }
}

/** The two external tools. */
export type Tool = "ffmpeg" | "ffprobe";

/**
 * The binary to run for a tool: the `FFMPEG` / `FFPROBE` environment variable when set (and
 * readable under the current permissions), else the bare name, which the OS finds on PATH.
 *
 * @example
 * ```ts
 * import { toolBinary } from "./_ffmpeg.ts";
 * toolBinary("ffmpeg"); // "ffmpeg", or the value of FFMPEG
 * ```
 */
export function toolBinary(tool: Tool): string {
  try {
    const v = Deno.env.get(tool.toUpperCase());
    if (v) return v;
  } catch {
    // No env permission for the variable: fall back to PATH.
  }
  return tool;
}

/**
 * A path as an ffmpeg/ffprobe URL argument: the `file:` protocol prefix makes every path
 * literal (a leading dash is not an option, a colon is not a protocol, `%` is not a pattern
 * for the protocol layer).
 *
 * @example
 * ```ts
 * import { fileArg } from "./_ffmpeg.ts";
 * fileArg("-clip.mp4"); // "file:-clip.mp4"
 * ```
 */
export function fileArg(p: string): string {
  return `file:${p}`;
}

const IMAGE_EXTENSIONS = new Set([".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"]);

/**
 * Input arguments for a file: `-f image2 -pattern_type none` for still images (so that `%` in
 * the name is literal, not a frame-number pattern), then `-i file:<path>`-style literal path.
 * For ffprobe pass `withI: false` (it takes the path without `-i`).
 *
 * @example
 * ```ts
 * import { inputArgs } from "./_ffmpeg.ts";
 * inputArgs("a%d.png"); // ["-f", "image2", "-pattern_type", "none", "-i", "file:a%d.png"]
 * ```
 */
export function inputArgs(p: string, withI = true): string[] {
  const image = IMAGE_EXTENSIONS.has(path.extname(p).toLowerCase());
  return [
    ...(image ? ["-f", "image2", "-pattern_type", "none"] : []),
    ...(withI ? ["-i"] : []),
    fileArg(p),
  ];
}

/** The fixed leading arguments of every ffmpeg run. *
 * @example
 * ```ts
 * import { FFMPEG_BASE } from "./_ffmpeg.ts";
 * const args = [...FFMPEG_BASE, "-i", "file:in.mkv", "-f", "null", "-"];
 * ```
 */
export const FFMPEG_BASE = ["-nostdin", "-hide_banner", "-loglevel", "error"];

/**
 * Collects a process's stderr concurrently, keeping the tail.
 *
 * @example
 * ```ts
 * import { StderrTail } from "./_ffmpeg.ts";
 * const child = new Deno.Command("ffmpeg", { args: ["-version"], stderr: "piped" }).spawn();
 * const tail = new StderrTail(child.stderr);
 * await child.status;
 * await tail.done;
 * console.log(tail.text());
 * ```
 */
export class StderrTail {
  #chunks: Uint8Array[] = [];
  #bytes = 0;
  /** Total bytes seen. */
  total = 0;
  /** Resolves when the stream has ended. */
  readonly done: Promise<void>;
  /** Drains `stream`, keeping the tail; `onLine` sees every line as it arrives. */
  constructor(stream: ReadableStream<Uint8Array>, onLine?: (line: string) => void) {
    const decoder = new TextDecoder();
    let partial = "";
    this.done = (async () => {
      try {
        for await (const chunk of stream) {
          if (onLine) {
            const lines = (partial + decoder.decode(chunk, { stream: true })).split(/\r?\n|\r/);
            partial = lines.pop()!;
            for (const line of lines) onLine(line);
          }
          this.total += chunk.byteLength;
          this.#chunks.push(chunk);
          this.#bytes += chunk.byteLength;
          while (
            this.#chunks.length > 1 && this.#bytes - this.#chunks[0].byteLength >= STDERR_TAIL
          ) {
            this.#bytes -= this.#chunks.shift()!.byteLength;
          }
        }
      } catch {
        // The process was killed; what was read is kept.
      }
      if (onLine && partial) onLine(partial);
    })();
  }
  /** The last few KiB as text. */
  text(): string {
    const all = new Uint8Array(this.#bytes);
    let o = 0;
    for (const c of this.#chunks) {
      all.set(c, o);
      o += c.byteLength;
    }
    const s = new TextDecoder().decode(all.subarray(Math.max(0, all.length - STDERR_TAIL)));
    return s.trim();
  }
}

/** A spawned tool with its stderr being drained. */
export interface Spawned {
  child: Deno.ChildProcess;
  stderr: StderrTail;
  /** Kills the process (ignores one that has exited). */
  kill(): void;
}

/** How {@link spawnTool} connects a tool, and where it runs. */
export interface SpawnOptions {
  /** stdin: "null" (default) or "piped". */
  stdin?: "piped" | "null";
  /** stdout: "null" (default) or "piped". */
  stdout?: "piped" | "null";
  /** Working folder of the process. Default: this process's. */
  cwd?: string;
  /** Called with each line of stderr as it arrives (the tail is kept as well). */
  onStderrLine?: (line: string) => void;
}

/**
 * Spawns a tool with an argument array. stdout is piped or null; stdin piped or null; stderr is
 * always piped and drained at once. The process is killed by the SIGINT/SIGTERM handler that is
 * installed while a temporary output file exists.
 *
 * @example
 * ```ts
 * import { spawnTool } from "./_ffmpeg.ts";
 * const p = spawnTool("ffmpeg", ["-version"], { stdout: "piped" });
 * await p.child.status;
 * ```
 */
export function spawnTool(
  tool: Tool,
  args: string[],
  io: SpawnOptions = {},
): Spawned {
  const binary = toolBinary(tool);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(binary, {
      args,
      cwd: io.cwd,
      stdin: io.stdin ?? "null",
      stdout: io.stdout ?? "null",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new FfmpegNotFoundError(tool, binary, "not found", e);
    }
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
      throw new FfmpegNotFoundError(
        tool,
        binary,
        `not allowed to run: ${(e as Error).message}; grant --allow-run`,
        e,
      );
    }
    throw e;
  }
  registerChild(child);
  const stderr = new StderrTail(child.stderr, io.onStderrLine);
  return {
    child,
    stderr,
    kill() {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
    },
  };
}

/**
 * Runs a tool to completion (in `cwd` when given), collecting stdout and the tail of stderr.
 * Throws {@link FfmpegNotFoundError} when the tool cannot be started.
 *
 * @example
 * ```ts
 * import { runTool } from "./_ffmpeg.ts";
 * const { code, stdout } = await runTool("ffprobe", ["-version"]);
 * await runTool("ffmpeg", ["-version"], { cwd: "/tmp" });
 * ```
 */
export async function runTool(
  tool: Tool,
  args: string[],
  options: { cwd?: string } = {},
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const p = spawnTool(tool, args, { stdout: "piped", cwd: options.cwd });
  const [out, status] = await Promise.all([
    new Response(p.child.stdout).arrayBuffer(),
    p.child.status,
    p.stderr.done,
  ]);
  return { code: status.code, stdout: new Uint8Array(out), stderr: p.stderr.text() };
}

/**
 * A temporary path beside `target` (same folder, so the final rename is atomic): a dot-name with
 * a random suffix, registered so that SIGINT/SIGTERM removes it.
 *
 * @example
 * ```ts
 * import { tempPathFor } from "./_ffmpeg.ts";
 * tempPathFor("out/a.mkv"); // "out/.a.mkv.k3j2h1.tmp"
 * ```
 */
export function tempPathFor(target: string): string {
  const tmp = tempPathBeside(target);
  registerTemp(tmp);
  return tmp;
}

/**
 * Renames a finished temporary file onto its target and unregisters it.
 *
 * @example
 * ```ts
 * import { commitTemp, tempPathFor } from "./_ffmpeg.ts";
 * const target = `${await Deno.makeTempDir()}/a.mkv`;
 * const tmp = tempPathFor(target);
 * await Deno.writeFile(tmp, new Uint8Array([1])); // ffmpeg writes tmp
 * await commitTemp(tmp, target);
 * ```
 */
export async function commitTemp(tmp: string, target: string): Promise<void> {
  try {
    await Deno.rename(tmp, target);
  } finally {
    forgetTemp(tmp);
  }
}

/** Removes a temporary file (ignoring one that is gone) and unregisters it. *
 * @example
 * ```ts
 * import { discardTemp, tempPathFor } from "./_ffmpeg.ts";
 * await discardTemp(tempPathFor("a.mkv"));
 * ```
 */
export async function discardTemp(tmp: string): Promise<void> {
  try {
    await Deno.remove(tmp);
  } catch { /* not created or gone */ }
  forgetTemp(tmp);
}

/** Checks that the folder of an output path exists, with an error naming the file. *
 * @example
 * ```ts
 * import { checkOutputDir } from "./_ffmpeg.ts";
 * await checkOutputDir("out/a.mkv"); // throws VideoError when out/ is missing
 * ```
 */
export async function checkOutputDir(file: string): Promise<void> {
  const dir = path.dirname(file);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (e) {
    throw new VideoError(file, `output folder ${JSON.stringify(dir)} does not exist`, {
      cause: e,
    });
  }
  if (!info.isDirectory) {
    throw new VideoError(file, `${JSON.stringify(dir)} is not a folder`);
  }
  try {
    const existing = await Deno.stat(file);
    if (existing.isDirectory) throw new VideoError(file, "is a directory");
  } catch (e) {
    if (e instanceof VideoError) throw e;
  }
}
