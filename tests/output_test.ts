// src/_output.ts: safe names, the output folder and the inside-check (with symbolic links),
// marked work folders that are committed, discarded, or removed as stale.

import assert from "assert";
import { join } from "path";
import {
  commitWorkDir,
  discardWorkDir,
  insideOutput,
  makeWorkDir,
  prepareOutputDir,
  removeStaleWorkDirs,
  safeName,
  STALE_AFTER_MS,
  uniqueNames,
  WORK_DIR_MARKER,
} from "../src/_output.ts";
import { checkRegularFile } from "../src/_fs.ts";
import { makeSandbox } from "./_sandbox.ts";

Deno.test("safeName: never empty, dot-only, hidden or separator-bearing", () => {
  for (const raw of ["", ".", "..", "...", "....", "/", "\\", "a/../b", ". .", "-", "_"]) {
    const n = safeName(raw);
    assert.ok(n.length > 0, raw);
    assert.ok(!n.startsWith("."), `${raw} -> ${n}`);
    assert.ok(!/[\\/]/.test(n), `${raw} -> ${n}`);
    assert.ok(/[\p{L}\p{N}]/u.test(n), `${raw} -> ${n}`);
  }
  assert.equal(safeName(".."), "video");
  assert.equal(safeName("..", "clip"), "clip");
  assert.equal(safeName("a/../b"), "a_.._b");
  assert.equal(safeName(".hidden"), "_hidden");
  assert.equal(safeName("name."), "name_");
  assert.equal(safeName("straße 1"), "straße_1");
  assert.equal(safeName("CON"), "_CON");
  assert.equal(safeName("x".repeat(300)).length, 100);
});

Deno.test("uniqueNames: distinct without case, reserved names avoided", () => {
  assert.deepEqual(
    uniqueNames(["a", "A", "a", "..", "...", "summary.json", "a-2"], {
      reserved: ["summary.json"],
    }),
    ["a", "A-2", "a-3", "video", "video-2", "summary.json-2", "a-2-2"],
  );
});

Deno.test("prepareOutputDir: creates the folder; a file in the way is refused", async () => {
  const sb = await makeSandbox();
  try {
    const root = await prepareOutputDir(join(sb.out, "deep", "er"));
    assert.equal(root, join(sb.out, "deep", "er"));
    await Deno.writeTextFile(join(sb.out, "f.txt"), "x");
    await assert.rejects(prepareOutputDir(join(sb.out, "f.txt")), /f\.txt: --out is a file/);
    await assert.rejects(
      prepareOutputDir(join(sb.out, "f.txt", "sub"), { option: "-o" }),
      /cannot create -o under .*f\.txt, which is a file/,
    );
    await sb.assertUntouched();
  } finally {
    await sb.dispose();
  }
});

Deno.test("insideOutput: `..` and symbolic links that leave the folder are refused", async () => {
  const sb = await makeSandbox();
  try {
    const root = await prepareOutputDir(sb.out);
    assert.equal(await insideOutput(root, "a", "b.json"), join(root, "a", "b.json"));
    await assert.rejects(insideOutput(root, ".."), /outside the output folder/);
    await assert.rejects(insideOutput(root, "a", "..", "..", "x"), /outside the output folder/);
    await assert.rejects(insideOutput(root, "/etc/passwd"), /outside the output folder/);
    // A link inside the output folder that points out of it.
    await Deno.symlink(sb.work, join(root, "link"));
    await assert.rejects(insideOutput(root, "link", "sentinel-beside.txt"), /outside/);
    await assert.rejects(insideOutput(root, "link", "new", "file"), /outside/);
    // A link that stays inside is fine.
    await Deno.mkdir(join(root, "real"));
    await Deno.symlink(join(root, "real"), join(root, "in"));
    assert.equal(await insideOutput(root, "in", "x"), join(root, "in", "x"));
    await sb.assertUntouched();
  } finally {
    await sb.dispose();
  }
});

Deno.test("work folders: committed into place, replaced only when asked, discarded", async () => {
  const sb = await makeSandbox();
  try {
    const root = await prepareOutputDir(sb.out);
    const a = await makeWorkDir(root, "clip");
    assert.ok(a.startsWith(join(root, ".stqa-tmp-clip.")), a);
    await Deno.writeTextFile(join(a, "r.json"), "1");
    await commitWorkDir(a, root, "clip");
    assert.equal(await Deno.readTextFile(join(root, "clip", "r.json")), "1");
    await assert.rejects(Deno.stat(join(root, "clip", WORK_DIR_MARKER)), Deno.errors.NotFound);
    const b = await makeWorkDir(root, "clip");
    await Deno.writeTextFile(join(b, "r.json"), "2");
    await assert.rejects(commitWorkDir(b, root, "clip"), /already exists/);
    assert.equal(await Deno.readTextFile(join(root, "clip", "r.json")), "1");
    await commitWorkDir(b, root, "clip", { replace: true });
    assert.equal(await Deno.readTextFile(join(root, "clip", "r.json")), "2");
    const c = await makeWorkDir(root, "..");
    await discardWorkDir(c);
    const left = [];
    for await (const e of Deno.readDir(root)) left.push(e.name);
    assert.deepEqual(left, ["clip"]);
    await sb.assertUntouched();
  } finally {
    await sb.dispose();
  }
});

Deno.test("removeStaleWorkDirs: untouched folders go, live and unmarked ones stay", async () => {
  const sb = await makeSandbox();
  try {
    const root = await prepareOutputDir(sb.out);
    const mk = async (name: string, marker: unknown, ageMs = 0) => {
      await Deno.mkdir(join(root, name));
      await Deno.writeTextFile(join(root, name, "partial.mkv"), "x");
      if (marker !== undefined) {
        const f = join(root, name, WORK_DIR_MARKER);
        await Deno.writeTextFile(f, JSON.stringify(marker));
        const t = new Date(Date.now() - ageMs);
        await Deno.utime(f, t, t);
      }
    };
    const other = Deno.pid + 1;
    await mk(".stqa-tmp-a.1", { pid: other }, STALE_AFTER_MS + 60_000); // a killed run
    await mk(".stqa-tmp-b.2", { pid: other }, 60_000); // a run still touching its marker
    await mk(".stqa-tmp-c.3", undefined); // no marker, not empty: not provably ours
    await Deno.mkdir(join(root, ".stqa-tmp-d.4")); // empty, no marker
    await mk(".stqa-tmp-f.5", { pid: Deno.pid }); // made by this process, no longer held
    await mk(".user-folder", { pid: other }, STALE_AFTER_MS + 60_000); // not our prefix
    const mine = await makeWorkDir(root, "e"); // this process holds it
    assert.deepEqual((await removeStaleWorkDirs(root)).sort(), [
      ".stqa-tmp-a.1",
      ".stqa-tmp-d.4",
      ".stqa-tmp-f.5",
    ]);
    const left = [];
    for await (const e of Deno.readDir(root)) left.push(e.name);
    assert.deepEqual(
      left.sort(),
      [".stqa-tmp-b.2", ".stqa-tmp-c.3", mine.split("/").at(-1)!, ".user-folder"].sort(),
    );
    // A shorter threshold takes the live-looking one too.
    assert.deepEqual(await removeStaleWorkDirs(root, { staleAfterMs: 1000 }), [".stqa-tmp-b.2"]);
    await discardWorkDir(mine);
    await sb.assertUntouched();
  } finally {
    await sb.dispose();
  }
});

Deno.test("checkRegularFile: FIFOs, devices and folders refused by name; links followed", async () => {
  const sb = await makeSandbox();
  try {
    const fifo = join(sb.work, "pipe.mkv");
    const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(mk.success);
    await assert.rejects(checkRegularFile(fifo, "video"), /pipe\.mkv: video is a FIFO/);
    await assert.rejects(
      checkRegularFile("/dev/zero", "weights file"),
      /\/dev\/zero: weights file is a character device/,
    );
    await assert.rejects(checkRegularFile(sb.work, "video"), /video is a folder/);
    await assert.rejects(checkRegularFile(join(sb.work, "none"), "video"), /no such video/);
    const link = join(sb.work, "link.txt");
    await Deno.symlink(join(sb.work, "sentinel-beside.txt"), link);
    assert.equal(await checkRegularFile(link), 7);
    await Deno.symlink(join(sb.work, "gone"), join(sb.work, "dangling"));
    await assert.rejects(checkRegularFile(join(sb.work, "dangling"), "video"), /link to a missing/);
  } finally {
    await sb.dispose();
  }
});
