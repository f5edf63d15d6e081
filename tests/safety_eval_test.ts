// `deno task eval` never touches anything outside --out, and keeps one output folder to one set
// of options (issue 12): each test runs in a sandbox with sentinel files beside and above --out.
// Tiny sizes (the tests' proxy: 3 frames, 32x32 clips, one video per run, the random method).

import assert from "assert";
import { join } from "path";
import { createVictim, saveGenerator, saveVictim, StqaNet } from "../mod.ts";
import { fileSha256 } from "../src/_fs.ts";
import { WORK_DIR_MARKER, WORK_DIR_PREFIX } from "../src/_output.ts";
import { evalCommand } from "../src/cli/eval.ts";
import { resolveEvalVideos } from "../src/eval/videos.ts";
import { readRowFiles, readRows } from "../src/eval/rows.ts";
import type { EvalRow } from "../src/eval/robustness.ts";
import { buildTinyProxy, initGpu } from "./_helpers.ts";
import { makeSandbox, type Sandbox } from "./_sandbox.ts";

await initGpu();

// The inputs, shared by every test (outside every sandbox; nothing writes there but this).
const inputs = await Deno.realPath(await Deno.makeTempDir({ prefix: "stqa_safety_eval_" }));
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(inputs, { recursive: true });
  } catch { /* gone */ }
});
await buildTinyProxy(join(inputs, "data"));
const MANIFEST = join(inputs, "data", "manifest.json");
const CLIP = JSON.parse(await Deno.readTextFile(MANIFEST)).clips[0].path as string;
const CLIP_PATH = join(inputs, "data", CLIP);
const REPO = new URL("..", import.meta.url).pathname;

const BASE = [
  "--dataset",
  MANIFEST,
  "--split",
  "all",
  "--max-videos",
  "1",
  "--victims",
  "vsfa-mini",
  "--methods",
  "random",
];

async function capture(fn: () => Promise<number>): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  const orig = console.error;
  const origLog = console.log;
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  console.log = () => {};
  try {
    return { code: await fn(), err: err.join("\n") };
  } finally {
    console.error = orig;
    console.log = origLog;
  }
}

/** The user-facing lines of a failed run: one `eval: ...` line, no stack trace. */
function assertOneLine(err: string, re: RegExp) {
  const lines = err.split("\n").filter((l) => l.startsWith("eval: ") && !/warning|removed/.test(l));
  assert.ok(lines.some((l) => re.test(l)), `expected ${re} in:\n${err}`);
  assert.ok(!/^\s+at /m.test(err), `a stack trace:\n${err}`);
}

async function withSandbox(fn: (sb: Sandbox) => Promise<void>) {
  const sb = await makeSandbox();
  try {
    await fn(sb);
    await sb.assertUntouched();
  } finally {
    await sb.dispose();
  }
}

const listing = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

Deno.test("eval safety: rows carry their options; a rerun with any of them different is refused before any work, naming it; the same options resume", async () => {
  await withSandbox(async (sb) => {
    const first = await capture(() => evalCommand([...BASE, "--out", sb.out]));
    assert.equal(first.code, 0, first.err);
    const rows = await readRows(sb.out);
    assert.equal(rows.length, 1);
    const s = rows[0].settings!;
    assert.ok(s, "the row records its settings");
    assert.equal(s.dataset, MANIFEST);
    assert.equal(s.split, "all");
    assert.equal(s.videoPath, CLIP_PATH);
    assert.equal(s.jnd, "namm-st");
    assert.equal(
      s.victim.weights,
      await fileSha256(join(REPO, "data/models/vsfa-mini.safetensors")),
    );
    assert.equal(s.victim.config, await fileSha256(join(REPO, "data/models/vsfa-mini.json")));
    assert.equal(s.generator, null);
    assert.deepEqual(s.methodOptions, {});
    assert.deepEqual([rows[0].eps, rows[0].seed], [1, 1]);
    assert.ok(!listing(sb.out).some((n) => n.startsWith(".")), `${listing(sb.out)}`);
    const rowsText = await Deno.readTextFile(join(sb.out, "rows.jsonl"));
    const table = await Deno.readTextFile(join(sb.out, "table.json"));

    // Inputs for the variants, beside --out (recorded as the sandbox's reference afterwards).
    const models = join(sb.work, "models");
    const other = createVictim("vsfa-mini", { seed: 9 });
    await saveVictim(other, join(models, "vsfa-mini.safetensors"));
    other.dispose();
    const copy = join(sb.work, "data2");
    await new Deno.Command("cp", { args: ["-r", join(inputs, "data"), copy] }).output();
    await sb.mark();

    const refused: [string[], RegExp][] = [
      [["--eps", "4"], /its rows were made with eps 1, this run asks for eps 4; pass --overwrite/],
      [["--seed", "7"], /its rows were made with seed 1, this run asks for seed 7/],
      [
        ["--victims", join(models, "vsfa-mini.safetensors")],
        /made with vsfa-mini weights sha256 [0-9a-f]{12}, this run asks for vsfa-mini weights sha256 [0-9a-f]{12}/,
      ],
      [
        ["--dataset", join(copy, "manifest.json")],
        /made with dataset .*\/data\/manifest\.json, this run asks for dataset .*\/data2\/manifest\.json/,
      ],
      [["--split", "test"], /made with split all, this run asks for split test/],
      [
        ["--max-videos", "3"],
        /made with median [\d.]+ for vsfa-mini, this run asks for median [\d.]+ for vsfa-mini \(the labels' median of the videos selected/,
      ],
    ];
    for (const [args, re] of refused) {
      const r = await capture(() => evalCommand([...BASE, "--out", sb.out, ...args]));
      assert.equal(r.code, 1, `${args}: ${r.err}`);
      assertOneLine(r.err, re);
      assert.match(r.err, new RegExp(`eval: ${sb.out}: its rows`));
      assert.match(r.err, /or choose another --out$/m);
      assert.doesNotMatch(r.err, /new row/, "refused before any work");
      assert.equal(await Deno.readTextFile(join(sb.out, "rows.jsonl")), rowsText);
      assert.equal(await Deno.readTextFile(join(sb.out, "table.json")), table);
    }

    // The same options resume: nothing new; stale temporary folders of interrupted runs (marked
    // ones whose process is gone, and the old unmarked .work-* ones holding only eval's files)
    // are removed, anything else is left.
    const dead = join(sb.out, `${WORK_DIR_PREFIX}eval.dead1`);
    await Deno.mkdir(dead);
    await Deno.writeTextFile(join(dead, WORK_DIR_MARKER), JSON.stringify({ pid: 2 ** 22 + 7 }));
    const hourAgo = new Date(Date.now() - 3600_000);
    await Deno.utime(join(dead, WORK_DIR_MARKER), hourAgo, hourAgo);
    await Deno.writeTextFile(join(dead, "0-vsfa-mini-clean-ref.mkv"), "x");
    await Deno.mkdir(join(sb.out, ".work-abc123"));
    await Deno.writeTextFile(join(sb.out, ".work-abc123", "0-vsfa-mini-random.mkv"), "x");
    await Deno.mkdir(join(sb.out, ".work-mine"));
    await Deno.writeTextFile(join(sb.out, ".work-mine", "notes.txt"), "keep\n");
    const again = await capture(() => evalCommand([...BASE, "--out", sb.out]));
    assert.equal(again.code, 0, again.err);
    assert.match(again.err, /0 new row\(s\)/);
    assert.match(again.err, /removed 2 temporary folder\(s\) of interrupted runs/);
    assert.equal(await Deno.readTextFile(join(sb.out, "rows.jsonl")), rowsText);
    assert.deepEqual(listing(sb.out).filter((n) => n.startsWith(".")), [".work-mine"]);
    assert.equal(await Deno.readTextFile(join(sb.out, ".work-mine", "notes.txt")), "keep\n");
  });
});

Deno.test("eval safety: --overwrite replaces eval's own rows, tables and examples only; old rows without settings are refused, not mixed", async () => {
  await withSandbox(async (sb) => {
    const first = await capture(() => evalCommand([...BASE, "--out", sb.out]));
    assert.equal(first.code, 0, first.err);
    await Deno.writeTextFile(join(sb.out, "notes.txt"), "mine\n");
    await Deno.mkdir(join(sb.out, "plots"));
    await Deno.writeTextFile(join(sb.out, "plots", "a.csv"), "1\n");
    await Deno.writeTextFile(join(sb.out, "examples", "readme.txt"), "mine too\n");
    const r = await capture(() =>
      evalCommand([...BASE, "--out", sb.out, "--eps", "2", "--overwrite"])
    );
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /--overwrite: removed rows\.jsonl, table\.json/);
    const rows = await readRows(sb.out);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].eps, 2);
    const md = await Deno.readTextFile(join(sb.out, "report.html"));
    assert.match(md, /eps 2/);
    assert.doesNotMatch(md, /eps 1\b/);
    assert.equal(await Deno.readTextFile(join(sb.out, "notes.txt")), "mine\n");
    assert.equal(await Deno.readTextFile(join(sb.out, "plots", "a.csv")), "1\n");
    assert.equal(await Deno.readTextFile(join(sb.out, "examples", "readme.txt")), "mine too\n");
    assert.ok(listing(join(sb.out, "examples")).some((n) => /^0-vsfa-mini\.json$/.test(n)));

    // Rows of an earlier eval, without settings: refused, naming it; --overwrite replaces them.
    const legacyOut = join(sb.out, "legacy");
    await Deno.mkdir(legacyOut);
    const { settings: _s, ...old } = rows[0];
    await Deno.writeTextFile(
      join(legacyOut, "rows.jsonl"),
      JSON.stringify({ ...old, eps: 2 }) + "\n",
    );
    const refused = await capture(() => evalCommand([...BASE, "--eps", "2", "--out", legacyOut]));
    assert.equal(refused.code, 1, refused.err);
    assertOneLine(
      refused.err,
      /its rows in rows\.jsonl were made by an earlier version of eval, which did not record their options; pass --overwrite/,
    );
    const replaced = await capture(() =>
      evalCommand([...BASE, "--eps", "2", "--out", legacyOut, "--overwrite"])
    );
    assert.equal(replaced.code, 0, replaced.err);
    const now = await readRows(legacyOut);
    assert.equal(now.length, 1);
    assert.ok(now[0].settings);
  });
});

Deno.test("eval safety: other generator weights under the same name are refused, naming the method", async () => {
  await withSandbox(async (sb) => {
    const gen = join(sb.work, "gen");
    const save = async (seed: number) => {
      const net = new StqaNet({ seed, config: { encoder: [2, 3, 4], hidden: 3, decoder: [3, 2] } });
      await saveGenerator(net, join(gen, "stqa-vsfa-mini"), {
        victim: "vsfa-mini",
        victimFamily: "vsfa-mini",
        jnd: "namm-st",
        eps: 1,
        qMin: 1,
        qMax: 5,
        median: 3,
      });
      net.dispose();
    };
    await save(3);
    await sb.mark();
    const args = [...BASE.slice(0, -1), "stqa-net", "--generator-dir", gen, "--out", sb.out];
    const r = await capture(() => evalCommand(args));
    assert.equal(r.code, 0, r.err);
    const [row] = await readRows(sb.out);
    assert.equal(row.method, "stqa-net");
    assert.equal(
      row.settings!.generator!.weights,
      await fileSha256(join(gen, "stqa-vsfa-mini.safetensors")),
    );
    assert.deepEqual(row.settings!.methodOptions, { variant: "untargeted" });
    await save(4);
    await sb.mark();
    const again = await capture(() => evalCommand(args));
    assert.equal(again.code, 1, again.err);
    assertOneLine(
      again.err,
      /made with stqa-net against vsfa-mini with generator weights sha256 [0-9a-f]{12} and config sha256 [0-9a-f]{12}, this run asks for stqa-net against vsfa-mini with generator weights sha256/,
    );
  });
});

Deno.test("eval safety: merge refuses shards made with different options, naming the files", async () => {
  await withSandbox(async (sb) => {
    const r = await capture(() => evalCommand([...BASE, "--out", sb.out, "--shard", "0/2"]));
    assert.equal(r.code, 0, r.err);
    const [row] = await readRows(sb.out);
    const line = (x: EvalRow) => JSON.stringify(x) + "\n";
    // Shard 1 made with eps 4: refused.
    await Deno.writeTextFile(
      join(sb.out, "rows-1-of-2.jsonl"),
      line({ ...row, video: "other", index: 1, seed: 2, eps: 4 }),
    );
    const m = await capture(() => evalCommand(["merge", "--out", sb.out]));
    assert.equal(m.code, 1, m.err);
    assert.match(
      m.err,
      /eval merge: .*: rows-1-of-2\.jsonl was made with eps 4, rows-0-of-2\.jsonl with eps 1; rerun that shard/,
    );
    assert.ok(!listing(sb.out).includes("table.json"), "nothing written");
    // A shard by an earlier eval (no settings): refused too.
    const { settings: _s, ...old } = row;
    await Deno.writeTextFile(
      join(sb.out, "rows-1-of-2.jsonl"),
      line({ ...old, video: "other", index: 1, seed: 2 }),
    );
    const m2 = await capture(() => evalCommand(["merge", "--out", sb.out]));
    assert.equal(m2.code, 1, m2.err);
    assert.match(m2.err, /rows-1-of-2\.jsonl was made by an earlier version of eval/);
    // The same options (another video): merged.
    await Deno.writeTextFile(
      join(sb.out, "rows-1-of-2.jsonl"),
      line({
        ...row,
        video: "other",
        index: 1,
        seed: 2,
        settings: { ...row.settings!, videoPath: "/elsewhere/other.mkv" },
      }),
    );
    const m3 = await capture(() => evalCommand(["merge", "--out", sb.out]));
    assert.equal(m3.code, 0, m3.err);
    assert.equal(JSON.parse(await Deno.readTextFile(join(sb.out, "table.json"))).rows, 2);
    // Options that would change a run mean nothing to merge: bad usage.
    const bad = await capture(() => evalCommand(["merge", "--out", sb.out, "--eps", "4"]));
    assert.equal(bad.code, 2, bad.err);
    assert.match(bad.err, /^--eps: not used by eval merge/);
    // A shard rerun with other options into the same folder is refused like a run.
    const r2 = await capture(() =>
      evalCommand([...BASE, "--out", sb.out, "--shard", "0/2", "--seed", "3"])
    );
    assert.equal(r2.code, 1, r2.err);
    assertOneLine(r2.err, /made with seed 1, this run asks for seed 3/);
  });
});

Deno.test("eval safety: an --out that is a file, or under one, is refused up front in one line", async () => {
  await withSandbox(async (sb) => {
    await Deno.writeTextFile(sb.out, "not a folder\n");
    const r = await capture(() => evalCommand([...BASE, "--out", sb.out]));
    assert.equal(r.code, 1);
    assertOneLine(r.err, /--out is a file, not a folder/);
    const under = await capture(() => evalCommand([...BASE, "--out", join(sb.out, "sub")]));
    assert.equal(under.code, 1);
    assertOneLine(under.err, /cannot create --out under .*out, which is a file/);
    const m = await capture(() => evalCommand(["merge", "--out", sb.out]));
    assert.equal(m.code, 1);
    assert.match(m.err, /--out is a file, not a folder/);
    assert.equal(await Deno.readTextFile(sb.out), "not a folder\n");
  });
  // A rows file with a broken line is refused naming the file and line, with the way out.
  await withSandbox(async (sb) => {
    await Deno.mkdir(sb.out);
    await Deno.writeTextFile(join(sb.out, "rows.jsonl"), "{oops\n{}\n");
    const r = await capture(() => evalCommand([...BASE, "--out", sb.out]));
    assert.equal(r.code, 1);
    assertOneLine(r.err, /rows\.jsonl line 1: not a valid eval row; pass --overwrite/);
  });
  // A rows file that is a FIFO is refused by name instead of hanging the run.
  if (Deno.build.os !== "windows") {
    await withSandbox(async (sb) => {
      await Deno.mkdir(sb.out);
      await new Deno.Command("mkfifo", { args: [join(sb.out, "rows.jsonl")] }).output();
      const r = await capture(() => evalCommand([...BASE, "--out", sb.out]));
      assert.equal(r.code, 1);
      assertOneLine(r.err, /rows\.jsonl: rows file is a FIFO/);
    });
  }
});

Deno.test("eval safety: a video that fails stops the run in one line, rows kept; --keep-going records it and goes on; dot names are made safe", async () => {
  await withSandbox(async (sb) => {
    const videos = join(sb.work, "videos");
    await Deno.mkdir(videos);
    await Deno.copyFile(CLIP_PATH, join(videos, "a.mkv"));
    await Deno.writeTextFile(join(videos, "b.mkv"), "not a video\n");
    await Deno.copyFile(CLIP_PATH, join(videos, "...mkv"));
    await sb.mark();
    const args = ["--dataset", videos, "--victims", "vsfa-mini", "--methods", "random"];
    const listed = await capture(() => resolveEvalVideos(videos).then(() => 0));
    const names = (await resolveEvalVideos(videos)).map((v) => v.name);
    assert.deepEqual([...names].sort(), ["a", "b", "video"]);
    assert.match(listed.err, /eval: video .*\/\.\.\.mkv is named video/);
    const order = (await resolveEvalVideos(videos)).map((v) => v.name);
    const bad = order.indexOf("b");

    const stop = await capture(() => evalCommand([...args, "--out", sb.out]));
    assert.equal(stop.code, 1, stop.err);
    assertOneLine(
      stop.err,
      new RegExp(
        `^eval: b \\(.*b\\.mkv\\) against vsfa-mini: .*; ${bad} new row\\(s\\) kept in .*rows\\.jsonl \\(--keep-going`,
      ),
    );
    assert.equal((await readRows(sb.out)).length, bad);
    assert.ok(!listing(sb.out).some((n) => n.startsWith(".")), `${listing(sb.out)}`);

    const go = await capture(() => evalCommand([...args, "--out", sb.out, "--keep-going"]));
    assert.equal(go.code, 1, go.err);
    assert.match(
      go.err,
      /eval: 1 \(video, victim\) pair\(s\) failed, recorded in .*failures\.jsonl/,
    );
    assert.match(go.err, /^ {2}b \(vsfa-mini\): /m);
    const failures = (await Deno.readTextFile(join(sb.out, "failures.jsonl"))).trim().split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(failures.length, 1);
    assert.equal(failures[0].video, "b");
    assert.equal(failures[0].victim, "vsfa-mini");
    assert.deepEqual(failures[0].methods, ["random"]);
    assert.ok(failures[0].message.length > 0);
    const rows = await readRows(sb.out);
    assert.deepEqual(rows.map((r) => r.video).sort(), ["a", "video"]);
    assert.equal(JSON.parse(await Deno.readTextFile(join(sb.out, "table.json"))).rows, 2);
    assert.ok(!listing(sb.out).some((n) => n.startsWith(".")), `${listing(sb.out)}`);
    // Every written file is one eval writes, inside --out.
    for (const n of listing(sb.out)) {
      assert.match(n, /^(rows\.jsonl|failures\.jsonl|table\.(json|csv|md)|report\.html|examples)$/);
    }
    assert.equal((await readRowFiles(sb.out)).length, 1);
  });
});

Deno.test("eval safety: <format>:<root> datasets get safe, distinct video names", async () => {
  const sb = await makeSandbox();
  try {
    const dir = join(sb.work, "set");
    await Deno.mkdir(dir);
    for (const n of ["a.mkv", "A.mkv", "..mkv"]) await Deno.copyFile(CLIP_PATH, join(dir, n));
    await Deno.writeTextFile(join(dir, "labels.csv"), "path,mos\na.mkv,3\nA.mkv,4\n..mkv,2\n");
    await sb.mark();
    const r = await capture(async () => {
      const v = await resolveEvalVideos(`manifest:${join(dir, "labels.csv")}`);
      assert.deepEqual(v.map((x) => x.name), ["a", "A-2", "video"]);
      return 0;
    });
    assert.match(r.err, /is named A-2/);
    assert.match(r.err, /\.\.mkv is named video/);
    await sb.assertUntouched();
  } finally {
    await sb.dispose();
  }
});

Deno.test("eval safety: Ctrl-C removes eval's temporary folder", async () => {
  await withSandbox(async (sb) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        join(REPO, "cli.ts"),
        "eval",
        ...BASE.map((a) => a === "1" ? "3" : a),
        "--out",
        sb.out,
      ],
      cwd: sb.work,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    let sent = false;
    for (let k = 0; k < 1200 && !sent; k++) {
      await new Promise((r) => setTimeout(r, 50));
      const names = await Array.fromAsync(Deno.readDir(sb.out)).catch(() => []);
      if (names.some((e) => e.name.startsWith(`${WORK_DIR_PREFIX}eval.`))) {
        await new Promise((r) => setTimeout(r, 500));
        child.kill("SIGINT");
        sent = true;
      }
    }
    if (!sent) child.kill("SIGKILL");
    const status = await child.status;
    const err = await stderr;
    assert.ok(sent, `no work folder appeared:\n${err}`);
    assert.equal(status.code, 130, err);
    assert.match(err, /interrupted: partial output removed/);
    assert.ok(!listing(sb.out).some((n) => n.startsWith(WORK_DIR_PREFIX)), `${listing(sb.out)}`);
  });
});
