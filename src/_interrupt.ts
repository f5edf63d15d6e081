/**
 * Ctrl-C (SIGINT) and SIGTERM leave nothing half-written: temporary files and folders that a
 * command is filling are registered here, and while any is registered a signal kills the tool
 * processes still running (ffmpeg), removes them and exits with status 130. With nothing
 * registered no listener is installed, so a library user's own handlers and `deno test` are not
 * disturbed.
 *
 * @module
 */

const live = new Set<Deno.ChildProcess>();
const temps = new Set<string>();
let installed = false;
const SIGNALS: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];

function onSignal(): void {
  for (const c of live) {
    try {
      c.kill("SIGKILL");
    } catch { /* exited */ }
  }
  for (const t of temps) {
    try {
      Deno.removeSync(t, { recursive: true });
    } catch { /* gone */ }
  }
  console.error("\ninterrupted: partial output removed");
  Deno.exit(130);
}

function update(): void {
  const want = temps.size > 0;
  if (want === installed) return;
  for (const s of SIGNALS) {
    try {
      if (want) Deno.addSignalListener(s, onSignal);
      else Deno.removeSignalListener(s, onSignal);
    } catch { /* signal not supported here */ }
  }
  installed = want;
}

/**
 * Registers a temporary file or folder: removed (recursively) if the process is interrupted
 * before {@link forgetTemp} is called for it.
 *
 * @example
 * ```ts
 * import { forgetTemp, registerTemp } from "./_interrupt.ts";
 * const dir = await Deno.makeTempDir();
 * registerTemp(dir);
 * // ... fill it, rename it into place ...
 * forgetTemp(dir);
 * await Deno.remove(dir);
 * ```
 */
export function registerTemp(p: string): void {
  temps.add(p);
  update();
}

/** Unregisters a temporary path (renamed into place or removed). See {@link registerTemp}. */
export function forgetTemp(p: string): void {
  temps.delete(p);
  update();
}

/**
 * Registers a child process to be killed on an interrupt; it is forgotten when it exits.
 *
 * @example
 * ```ts
 * import { registerChild } from "./_interrupt.ts";
 * const child = new Deno.Command("ffmpeg", { args: ["-version"], stdout: "null" }).spawn();
 * registerChild(child);
 * await child.status;
 * ```
 */
export function registerChild(child: Deno.ChildProcess): void {
  live.add(child);
  child.status.finally(() => live.delete(child));
}
