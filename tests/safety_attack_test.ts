// `deno task attack` never touches anything outside its output folder (issue 12): videos named
// `...mkv` and `..mkv`, an --out that is a file, folders in --out that are not attack results,
// reruns (skip, refuse other options, --overwrite), --keep-going, stale work folders, Ctrl-C,
// special files and symbolic links as inputs, sizes refused from the probe. Each test runs in a
// sandbox with sentinel files beside and above --out, and checks that they all survive.

import assert from "assert";
import { join } from "path";
import { parseAttackReport } from "../mod.ts";
import { bindingLimit } from "../src/gpu/device.ts";
import { resolveVideoInputs } from "../src/data/inputs.ts";
import { STALE_AFTER_MS, WORK_DIR_MARKER } from "../src/_output.ts";
import { initGpu } from "./_helpers.ts";
import { clipFile, entries, generatorFile, runAttack as attack } from "./_attack_fixtures.ts";
import { makeSandbox, type Sandbox } from "./_sandbox.ts";

await initGpu();

async function withSandbox(fn: (sb: Sandbox, gen: string) => Promise<void>): Promise<void> {
  const sb = await makeSandbox();
  try {
    const gen = await generatorFile(sb.work);
    await sb.mark();
    await fn(sb, gen);
    await sb.assertUntouched();
  } finally {
    await sb.dispose();
  }
}

Deno.test("attack: videos named ...mkv and ..mkv write inside --out only, with safe names", async () => {
  await withSandbox(async (sb, gen) => {
    const dots = join(sb.work, "dots");
    await Deno.mkdir(dots);
    await clipFile(dots, "x.mkv", 2, 24, 16);
    await Deno.rename(join(dots, "x.mkv"), join(dots, "...mkv"));
    await clipFile(dots, "y.mkv", 2, 24, 16);
    await Deno.rename(join(dots, "y.mkv"), join(dots, "..mkv"));
    await sb.mark();
    // One file, as in the report of the issue (there --out was /tmp/v/sub/out).
    const single = await attack(["-i", join(dots, "...mkv"), "-g", gen, "-o", sb.out]);
    assert.equal(single.code, 0, single.err);
    assert.match(single.err, /output name: .*\.\.\.mkv -> .*out\/video\//);
    assert.deepEqual(await entries(sb.out), ["summary.json", "video"]);
    // The folder: both names made safe and distinct; the earlier result is skipped.
    const folder = await attack(["-i", dots, "-g", gen, "-o", sb.out]);
    assert.equal(folder.code, 0, folder.err);
    assert.deepEqual(await entries(sb.out), ["summary.json", "video", "video-2"]);
    assert.match(folder.out, /video: already done with these options/);
    const r = parseAttackReport(await Deno.readTextFile(join(sb.out, "video-2", "report.json")));
    assert.equal(r.name, "video-2");
    assert.ok(r.input.endsWith("..mkv") || r.input.endsWith("...mkv"));
  });
});

Deno.test("attack: --out that is a file, or under a file, is refused before any work", async () => {
  await withSandbox(async (sb, gen) => {
    const input = await clipFile(sb.work, "c.mkv", 2, 24, 16);
    await sb.mark();
    const file = join(sb.work, "sentinel-beside.txt");
    let r = await attack(["-i", input, "-g", gen, "-o", file]);
    assert.equal(r.code, 1);
    assert.match(r.err, /sentinel-beside\.txt: --out is a file, not a folder/);
    r = await attack(["-i", input, "-g", gen, "-o", join(file, "sub")]);
    assert.equal(r.code, 1);
    assert.match(r.err, /cannot create --out under .*sentinel-beside\.txt, which is a file/);
    assert.equal(r.err.split("\n").filter((l) => l.trim()).length, 1, r.err);
  });
});

Deno.test("attack: folders and a summary.json in --out that are not attack results are left alone", async () => {
  await withSandbox(async (sb, gen) => {
    const input = await clipFile(sb.work, "clip.mkv", 2, 24, 16);
    await Deno.mkdir(join(sb.out, "clip"), { recursive: true });
    await Deno.writeTextFile(join(sb.out, "clip", "thesis.tex"), "mine");
    await sb.mark();
    let r = await attack(["-i", input, "-g", gen, "-o", sb.out, "--overwrite"]);
    assert.equal(r.code, 1);
    assert.match(r.err, /clip: exists and is not a result of `deno task attack`; it is left alone/);
    assert.deepEqual(await entries(sb.out), ["clip"]);
    assert.equal(await Deno.readTextFile(join(sb.out, "clip", "thesis.tex")), "mine");
    await Deno.remove(join(sb.out, "clip"), { recursive: true });
    await Deno.writeTextFile(join(sb.out, "summary.json"), '{"mine": true}');
    r = await attack(["-i", input, "-g", gen, "-o", sb.out]);
    assert.equal(r.code, 1);
    assert.match(r.err, /summary\.json: exists and was not written by `deno task attack`/);
    assert.deepEqual(await entries(sb.out), ["summary.json"]);
    assert.equal(await Deno.readTextFile(join(sb.out, "summary.json")), '{"mine": true}');
  });
});

Deno.test("attack: a rerun skips finished videos, refuses other options by name, --overwrite redoes", async () => {
  await withSandbox(async (sb, gen) => {
    const input = await clipFile(sb.work, "clip.mkv", 2, 24, 16);
    await sb.mark();
    const first = await attack(["-i", input, "-g", gen, "-o", sb.out]);
    assert.equal(first.code, 0, first.err);
    const reportFile = join(sb.out, "clip", "report.json");
    const before = await Deno.readTextFile(reportFile);
    assert.equal(parseAttackReport(before).settings?.eps, 1);
    // Same options: skipped, nothing rewritten but the summary.
    const again = await attack(["-i", input, "-g", gen, "-o", sb.out]);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /clip: already done with these options/);
    assert.equal(await Deno.readTextFile(reportFile), before);
    // Other options: refused before any work, naming the difference.
    const other = await attack(["-i", input, "-g", gen, "-o", sb.out, "--eps", "0.5"]);
    assert.equal(other.code, 1);
    assert.match(other.err, /clip: eps 1 -> 0\.5.*--overwrite/);
    assert.equal(await Deno.readTextFile(reportFile), before);
    // A changed input file is another input.
    await clipFile(sb.work, "clip.mkv", 3, 24, 16);
    await sb.mark();
    const changed = await attack(["-i", input, "-g", gen, "-o", sb.out]);
    assert.equal(changed.code, 1);
    assert.match(changed.err, /input\.bytes|input\.modified/);
    // --overwrite replaces it.
    const redo = await attack([
      "-i",
      input,
      "-g",
      gen,
      "-o",
      sb.out,
      "--eps",
      "0.5",
      "--overwrite",
    ]);
    assert.equal(redo.code, 0, redo.err);
    const after = parseAttackReport(await Deno.readTextFile(reportFile));
    assert.equal(after.eps, 0.5);
    assert.equal(after.video.frames, 3);
    assert.deepEqual(await entries(sb.out), ["clip", "summary.json"]);
    assert.deepEqual(await entries(join(sb.out, "clip")), [
      "adversarial.mkv",
      "report.html",
      "report.json",
    ]);
  });
});

Deno.test("attack: --keep-going records a failed video and finishes the others", async () => {
  await withSandbox(async (sb, gen) => {
    const vids = join(sb.work, "videos");
    await Deno.mkdir(vids);
    await Deno.writeTextFile(join(vids, "a_bad.mkv"), "not a video");
    await clipFile(vids, "b_good.mkv", 2, 24, 16);
    await sb.mark();
    const stop = await attack(["-i", vids, "-g", gen, "-o", sb.out]);
    assert.equal(stop.code, 1);
    assert.match(stop.err, /attack: .*a_bad\.mkv/);
    assert.deepEqual(await entries(sb.out), []);
    const go = await attack(["-i", vids, "-g", gen, "-o", sb.out, "--keep-going"]);
    assert.equal(go.code, 1);
    assert.match(go.err, /a_bad: failed: .*a_bad\.mkv/);
    assert.match(go.err, /1 of 2 video\(s\) failed/);
    assert.deepEqual(await entries(sb.out), ["b_good", "summary.json"]);
    const summary = JSON.parse(await Deno.readTextFile(join(sb.out, "summary.json")));
    assert.deepEqual(summary.failures.map((f: { name: string }) => f.name), ["a_bad"]);
    assert.deepEqual(summary.reports, ["b_good/report.json"]);
  });
});

Deno.test("attack: stale work folders of a killed run are removed; a live run's are kept", async () => {
  await withSandbox(async (sb, gen) => {
    const input = await clipFile(sb.work, "clip.mkv", 2, 24, 16);
    const mk = async (name: string, ageMs: number) => {
      const d = join(sb.out, name);
      await Deno.mkdir(d, { recursive: true });
      await Deno.writeTextFile(join(d, "adversarial.mkv"), "partial");
      const f = join(d, WORK_DIR_MARKER);
      await Deno.writeTextFile(f, JSON.stringify({ pid: Deno.pid + 1 }));
      const t = new Date(Date.now() - ageMs);
      await Deno.utime(f, t, t);
    };
    await mk(".stqa-tmp-clip.dead", STALE_AFTER_MS + 1000);
    await mk(".stqa-tmp-clip.live", 1000);
    // An earlier version's unmarked temporary folder: named, left alone.
    await Deno.mkdir(join(sb.out, ".clip.legacy"));
    await Deno.writeTextFile(join(sb.out, ".clip.legacy", "adversarial.mkv"), "partial");
    await sb.mark();
    const r = await attack(["-i", input, "-g", gen, "-o", sb.out]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /removed 1 unfinished folder/);
    assert.match(r.err, /\.clip\.legacy looks like an unfinished folder of an earlier version/);
    assert.deepEqual(await entries(sb.out), [
      ".clip.legacy",
      ".stqa-tmp-clip.live",
      "clip",
      "summary.json",
    ]);
  });
});

Deno.test("attack: inputs that are special files are refused by name; symlinked videos followed", async () => {
  await withSandbox(async (sb, gen) => {
    const vids = join(sb.work, "links");
    await Deno.mkdir(vids);
    const real = await clipFile(sb.work, "real.mkv", 2, 24, 16);
    await Deno.symlink(real, join(vids, "linked.mkv"));
    const fifo = join(sb.work, "pipe.mkv");
    assert.ok((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
    await Deno.symlink(fifo, join(vids, "fifo.mkv")); // a link to a FIFO: skipped
    await sb.mark();
    assert.deepEqual((await resolveVideoInputs(vids)).map((i) => i.name), ["linked"]);
    let r = await attack(["-i", fifo, "-g", gen, "-o", sb.out]);
    assert.equal(r.code, 1);
    assert.match(r.err, /pipe\.mkv: input is a FIFO \(named pipe\), not a regular file/);
    r = await attack(["-i", vids, "-g", gen, "-o", sb.out]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(await entries(sb.out), ["linked", "summary.json"]);
  });
});

Deno.test("attack: frames too large to bind are refused from the probe, before decoding", async () => {
  await withSandbox(async (sb, gen) => {
    const input = await clipFile(sb.work, "clip.mkv", 4, 24, 16);
    await sb.mark();
    // The attack is streamed: only a chunk must fit. One frame of this size cannot be bound.
    const limit = bindingLimit();
    const side = Math.ceil(Math.sqrt(limit / (3 * 4))) + 2;
    const t0 = performance.now();
    const r = await attack(["-i", input, "-g", gen, "-o", sb.out, "--size", `${side}x${side}`]);
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`clip\\.mkv: .*${side}x${side}.*--size`));
    assert.equal(r.err.split("\n").filter((l) => l.startsWith("attack: ")).length, 1, r.err);
    assert.ok(performance.now() - t0 < 20_000, "refused quickly, without decoding");
    assert.deepEqual(await entries(sb.out), []);
  });
});

Deno.test("attack: Ctrl-C removes its work folder; a rerun then finishes the video", async () => {
  await withSandbox(async (sb, gen) => {
    const input = await clipFile(sb.work, "long.mkv", 48, 96, 64);
    await sb.mark();
    const cli = new URL("../cli.ts", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        cli,
        "attack",
        "-i",
        input,
        "-g",
        gen,
        "-o",
        sb.out,
        "--chunk-frames",
        "4",
      ],
      stdout: "null",
      stderr: "piped",
      env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
    }).spawn();
    // Wait until the run is working inside its work folder, then interrupt it.
    let seen = false;
    for (let k = 0; k < 1200 && !seen; k++) {
      await new Promise((r) => setTimeout(r, 50));
      try {
        seen = (await entries(sb.out)).some((n) => n.startsWith(".stqa-tmp-"));
      } catch { /* not made yet */ }
    }
    assert.ok(seen, "the run made its work folder");
    child.kill("SIGINT");
    const [status, err] = await Promise.all([
      child.status,
      new Response(child.stderr).text(),
    ]);
    assert.equal(status.code, 130, err);
    assert.deepEqual(await entries(sb.out), []);
    const r = await attack(["-i", input, "-g", gen, "-o", sb.out, "--frames", "4"]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(await entries(sb.out), ["long", "summary.json"]);
  });
});
