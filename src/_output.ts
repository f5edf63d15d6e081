/**
 * Output safety, shared by every command that writes: names derived from inputs are made safe,
 * the output folder the user named is resolved once (symbolic links included) and every path
 * written, renamed or removed is checked to lie inside it, and work in progress lives in marked
 * temporary folders inside it that an interrupt removes and a later run recognises as stale.
 *
 * The rules (docs/safety.md lists the cases):
 * - a command never deletes, renames over or writes to a path outside the output folder;
 * - inside it, it replaces only what it recognises as its own earlier output, and only where the
 *   command says so (`--overwrite`, or a result made with the same options);
 * - a temporary folder is `.stqa-tmp-<label>.<random>` with a marker file naming the process
 *   that made it, touched every 30 s while the process works in it; a later run removes it once
 *   it has not been touched for {@link STALE_AFTER_MS} (the process is gone: killed, crashed, or
 *   the machine stopped). Ctrl-C removes it at once (src/_interrupt.ts).
 *
 * @module
 */

import * as path from "path";
import { PathError } from "./_fs.ts";
import { forgetTemp, registerTemp } from "./_interrupt.ts";

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com\d|lpt\d)$/i;

/**
 * A file or folder name made from arbitrary text (a video's stem, an image's name): characters
 * other than letters, digits, `_`, `.` and `-` become `_`; a leading dot becomes `_` (never a
 * hidden file, never `.` or `..`); a name with no letter or digit becomes `fallback`; at most 100
 * characters. The result is never empty and never contains a path separator.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { safeName } from "./_output.ts";
 * assert.equal(safeName(".."), "video");
 * assert.equal(safeName("my clip (1)"), "my_clip__1_");
 * assert.equal(safeName(".hidden"), "_hidden");
 * assert.equal(safeName("a/b\\c"), "a_b_c");
 * ```
 */
export function safeName(raw: string, fallback = "video"): string {
  let s = raw.normalize("NFC").replaceAll(/[^\p{L}\p{N}_.-]/gu, "_");
  s = s.replace(/^\.+/, (m) => "_".repeat(m.length)).replace(/\.+$/, (m) => "_".repeat(m.length));
  if (!/[\p{L}\p{N}]/u.test(s)) s = fallback;
  if (s.length > 100) s = s.slice(0, 100);
  if (WINDOWS_RESERVED.test(s.replace(/\..*$/, ""))) s = `_${s}`;
  return s;
}

/**
 * Safe, distinct names for a list of raw names ({@link safeName} each; a name already taken,
 * compared without case so that case-insensitive file systems agree, or in `reserved`, gets
 * `-2`, `-3`, ...).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { uniqueNames } from "./_output.ts";
 * assert.deepEqual(uniqueNames(["a", "A", "..", "."], { reserved: ["summary.json"] }), [
 *   "a",
 *   "A-2",
 *   "video",
 *   "video-2",
 * ]);
 * ```
 */
export function uniqueNames(
  raws: readonly string[],
  options: { reserved?: readonly string[]; fallback?: string } = {},
): string[] {
  const used = new Set((options.reserved ?? []).map((r) => r.toLowerCase()));
  return raws.map((raw) => {
    const stem = safeName(raw, options.fallback);
    let name = stem;
    for (let k = 2; used.has(name.toLowerCase()); k++) name = `${stem}-${k}`;
    used.add(name.toLowerCase());
    return name;
  });
}

/** `p` with every existing leading part resolved through symbolic links; the rest appended. */
async function realPathOfExisting(p: string): Promise<string> {
  const abs = path.resolve(p);
  const rest: string[] = [];
  let head = abs;
  for (;;) {
    try {
      const real = await Deno.realPath(head);
      return rest.length ? path.join(real, ...rest.reverse()) : real;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      const parent = path.dirname(head);
      if (parent === head) return abs;
      rest.push(path.basename(head));
      head = parent;
    }
  }
}

function within(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

/**
 * Resolves and creates the output folder a user named (`option` names the flag in messages):
 * relative paths against the working folder, symbolic links resolved. Refused, before any work
 * starts, when the path or one of its parents is a file, or when it cannot be created.
 * Returns the real absolute path.
 *
 * @throws {PathError} e.g. `"out.txt: --out is a file, not a folder"`.
 * @example
 * ```ts
 * import { prepareOutputDir } from "./_output.ts";
 * const root = await prepareOutputDir("out", { option: "--out" });
 * ```
 */
export async function prepareOutputDir(
  out: string,
  options: { option?: string } = {},
): Promise<string> {
  const option = options.option ?? "--out";
  const abs = path.resolve(out);
  // The nearest part that exists must be a folder.
  let head = abs;
  for (;;) {
    const info = await Deno.stat(head).catch((e) => {
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
      throw new PathError(out, `${out}: cannot use ${option}: ${(e as Error).message}`);
    });
    if (info) {
      if (!info.isDirectory) {
        throw new PathError(
          out,
          head === abs
            ? `${out}: ${option} is a file, not a folder`
            : `${out}: cannot create ${option} under ${head}, which is a file`,
        );
      }
      break;
    }
    const parent = path.dirname(head);
    if (parent === head) break;
    head = parent;
  }
  try {
    await Deno.mkdir(abs, { recursive: true });
  } catch (e) {
    throw new PathError(out, `${out}: cannot create ${option}: ${(e as Error).message}`);
  }
  return await Deno.realPath(abs);
}

/**
 * The path `root/...parts`, checked to lie inside `root` (an output folder from
 * {@link prepareOutputDir}) after resolving `.`, `..` and the symbolic links of every part that
 * exists. Every path a command writes, renames or removes goes through this.
 *
 * @throws {PathError} when the path would leave `root`.
 * @example
 * ```ts
 * import { insideOutput, prepareOutputDir } from "./_output.ts";
 * const root = await prepareOutputDir("out");
 * const file = await insideOutput(root, "clip", "report.json");
 * ```
 */
export async function insideOutput(root: string, ...parts: string[]): Promise<string> {
  const p = path.resolve(root, ...parts);
  if (!within(root, p) || !within(root, await realPathOfExisting(p))) {
    throw new PathError(
      p,
      `${path.join(...parts)}: would be written outside the output folder ${root}; refused`,
    );
  }
  return p;
}

/** The prefix of every temporary folder made by {@link makeWorkDir}. */
export const WORK_DIR_PREFIX = ".stqa-tmp-";
/** The marker file inside a temporary folder: who made it, and when. */
export const WORK_DIR_MARKER = ".stqa-temp.json";

/** A work folder whose marker has not been touched for this long belongs to no live run. */
export const STALE_AFTER_MS = 10 * 60 * 1000;
const HEARTBEAT_MS = 30 * 1000;

const mine = new Set<string>();
let heartbeat: ReturnType<typeof setInterval> | undefined;

/** Touches the markers of this process's work folders while it holds any. */
function updateHeartbeat(): void {
  if (mine.size && heartbeat === undefined) {
    const timer = setInterval(() => {
      const now = new Date();
      for (const d of mine) Deno.utime(path.join(d, WORK_DIR_MARKER), now, now).catch(() => {});
    }, HEARTBEAT_MS);
    Deno.unrefTimer(timer);
    heartbeat = timer;
  } else if (!mine.size && heartbeat !== undefined) {
    clearInterval(heartbeat);
    heartbeat = undefined;
  }
}

/**
 * Makes a temporary folder `<root>/.stqa-tmp-<label>.<random>` with a marker naming this
 * process, registered so that Ctrl-C removes it. Finish it with {@link commitWorkDir} (rename
 * into place) or {@link discardWorkDir}.
 *
 * @example
 * ```ts
 * import { commitWorkDir, makeWorkDir, prepareOutputDir } from "./_output.ts";
 * const root = await prepareOutputDir("out");
 * const tmp = await makeWorkDir(root, "clip");
 * await Deno.writeTextFile(`${tmp}/report.json`, "{}");
 * await commitWorkDir(tmp, root, "clip");
 * ```
 */
export async function makeWorkDir(root: string, label: string): Promise<string> {
  const dir = await Deno.makeTempDir({
    dir: root,
    prefix: `${WORK_DIR_PREFIX}${safeName(label)}.`,
  });
  registerTemp(dir);
  mine.add(dir);
  updateHeartbeat();
  await Deno.writeTextFile(
    path.join(dir, WORK_DIR_MARKER),
    JSON.stringify({ pid: Deno.pid, started: new Date().toISOString() }) + "\n",
  );
  return dir;
}

/** Removes a temporary folder from {@link makeWorkDir} (ignoring one that is gone). */
export async function discardWorkDir(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  forgetTemp(dir);
  mine.delete(dir);
  updateHeartbeat();
}

/**
 * Renames a finished temporary folder to `<root>/<name>` (its marker removed). Whatever is at
 * the target must have been checked by the caller as its own to replace (`replace: true`): it is
 * first moved aside into a temporary folder, then removed, so that a failure never loses both.
 *
 * @throws {PathError} when the target exists and `replace` is not set, or lies outside `root`.
 */
export async function commitWorkDir(
  dir: string,
  root: string,
  name: string,
  options: { replace?: boolean } = {},
): Promise<string> {
  const target = await insideOutput(root, name);
  await Deno.remove(path.join(dir, WORK_DIR_MARKER)).catch(() => {});
  let aside: string | undefined;
  const present = await Deno.lstat(target).then(() => true, () => false);
  if (present) {
    if (!options.replace) {
      throw new PathError(target, `${target}: already exists; not replaced`);
    }
    aside = await makeWorkDir(root, `old-${name}`);
    await Deno.rename(target, path.join(aside, "old"));
  }
  await Deno.rename(dir, target);
  forgetTemp(dir);
  mine.delete(dir);
  updateHeartbeat();
  if (aside) await discardWorkDir(aside);
  return target;
}

/**
 * Removes the stale temporary folders in `root` that {@link makeWorkDir} made: those whose
 * marker has not been touched for `staleAfterMs` (default {@link STALE_AFTER_MS}; a killed or
 * crashed run), those this process made and no longer holds, and empty unmarked ones. Folders of
 * a run still going on are left alone, and so is everything not marked as ours. Returns the
 * names removed. (A process's liveness cannot be asked directly under Deno's narrow
 * permissions: /proc needs --allow-all and signals need --allow-run; the marker's age tells.)
 *
 * @example
 * ```ts
 * import { prepareOutputDir, removeStaleWorkDirs } from "./_output.ts";
 * const root = await prepareOutputDir("out");
 * const removed = await removeStaleWorkDirs(root);
 * ```
 */
export async function removeStaleWorkDirs(
  root: string,
  options: { staleAfterMs?: number } = {},
): Promise<string[]> {
  const staleAfter = options.staleAfterMs ?? STALE_AFTER_MS;
  const removed: string[] = [];
  for await (const e of Deno.readDir(root)) {
    if (!e.isDirectory || !e.name.startsWith(WORK_DIR_PREFIX)) continue;
    const dir = path.join(root, e.name);
    if (mine.has(dir)) continue;
    const markerFile = path.join(dir, WORK_DIR_MARKER);
    let pid: number | null = null;
    let touched: number;
    try {
      const marker = JSON.parse(await Deno.readTextFile(markerFile));
      if (Number.isInteger(marker?.pid)) pid = marker.pid;
      touched = (await Deno.stat(markerFile)).mtime?.getTime() ?? Date.now();
    } catch {
      // No readable marker: remove it only if it is empty (made, then interrupted at once).
      if (await Deno.remove(dir).then(() => true, () => false)) removed.push(e.name);
      continue;
    }
    if (pid === null) continue;
    if (pid !== Deno.pid && Date.now() - touched < staleAfter) continue;
    await Deno.remove(dir, { recursive: true });
    removed.push(e.name);
  }
  return removed;
}
