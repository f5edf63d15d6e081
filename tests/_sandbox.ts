// A temporary directory for output-safety tests: sentinel files beside and above the output
// folder a test names, and a check that nothing outside that folder changed.
//
//   <tmp>/sentinel-above.txt
//   <tmp>/work/sentinel-beside.txt
//   <tmp>/work/out/           (the output folder a test passes as --out; not created here)

import { join, relative } from "path";

/** A sandbox: its root, the working folder, the output folder, and a check of the rest. */
export interface Sandbox {
  /** The temporary root (holds sentinel-above.txt). */
  root: string;
  /** `<root>/work` (holds sentinel-beside.txt); inputs a test makes go here or below. */
  work: string;
  /** `<root>/work/out`: the output folder tests name; the only place allowed to change. */
  out: string;
  /**
   * Asserts that every file and folder outside `allowed` (default [out]) is exactly as it was
   * when the sandbox was made or last marked with {@link Sandbox.mark}: none removed, none added,
   * none changed.
   */
  assertUntouched(allowed?: string[]): Promise<void>;
  /** Records the current state outside the allowed folders as the reference. */
  mark(): Promise<void>;
  /** Removes the sandbox. */
  dispose(): Promise<void>;
}

async function snapshot(root: string, skip: string[]): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  async function walk(dir: string) {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (skip.some((s) => p === s || p.startsWith(s + "/"))) continue;
      const info = await Deno.lstat(p);
      if (info.isDirectory) {
        m.set(relative(root, p), "dir");
        await walk(p);
      } else if (info.isFile) {
        m.set(relative(root, p), `file:${info.size}:${await Deno.readTextFile(p).catch(() => "")}`);
      } else m.set(relative(root, p), info.isSymlink ? `link:${await Deno.readLink(p)}` : "other");
    }
  }
  await walk(root);
  return m;
}

/** Makes a sandbox (see the file's header). Dispose it in a `finally`. */
export async function makeSandbox(): Promise<Sandbox> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "stqa-safety-" }));
  const work = join(root, "work");
  const out = join(work, "out");
  await Deno.mkdir(work);
  await Deno.writeTextFile(join(root, "sentinel-above.txt"), "above\n");
  await Deno.writeTextFile(join(work, "sentinel-beside.txt"), "beside\n");
  let reference = await snapshot(root, [out]);
  return {
    root,
    work,
    out,
    async mark() {
      reference = await snapshot(root, [out]);
    },
    async assertUntouched(allowed = [out]) {
      const now = await snapshot(root, allowed);
      const ref = new Map(
        [...reference].filter(([k]) =>
          !allowed.some((a) => join(root, k) === a || join(root, k).startsWith(a + "/"))
        ),
      );
      const problems: string[] = [];
      for (const [k, v] of ref) {
        if (!now.has(k)) problems.push(`removed: ${k}`);
        else if (now.get(k) !== v) problems.push(`changed: ${k}`);
      }
      for (const k of now.keys()) if (!ref.has(k)) problems.push(`added: ${k}`);
      if (problems.length) {
        throw new Error(`outside the output folder:\n  ${problems.join("\n  ")}`);
      }
    },
    async dispose() {
      await Deno.remove(root, { recursive: true }).catch(() => {});
    },
  };
}
