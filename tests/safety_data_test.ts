// Output safety and input checks of `deno task data`, the dataset loaders and the video input
// checks (issue 12). Every test that writes runs in a sandbox (tests/_sandbox.ts) with sentinel
// files beside and above the output folder: nothing outside the named output may change.

import { deepEqual, equal, ok, rejects } from "assert";
import * as path from "path";
import { makeSandbox, type Sandbox } from "./_sandbox.ts";
import {
  buildProxyDataset,
  DatasetError,
  loadGenericManifest,
  loadKonvid,
  loadLiveVqc,
  loadManifest,
  loadYoutubeUgc,
} from "../src/data/mod.ts";
import { dataCommand } from "../src/cli/data.ts";
import {
  checkVideoFile,
  isVideoPath,
  listVideoFiles,
  probeVideo,
  VIDEO_EXTENSIONS,
  VideoError,
} from "../src/video/mod.ts";
import { STALE_AFTER_MS, WORK_DIR_MARKER, WORK_DIR_PREFIX } from "../src/_output.ts";

const CLI = path.join(import.meta.dirname!, "..", "cli.ts");

/** Runs a tool; throws with its stderr on failure. */
async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A small PNG from one of ffmpeg's test sources. */
async function png(file: string, w = 48, h = 40, pattern = "testsrc2"): Promise<void> {
  await run("ffmpeg", [
    "-nostdin",
    "-loglevel",
    "error",
    "-y",
    "-f",
    "lavfi",
    "-i",
    `${pattern}=size=${w}x${h}:rate=1`,
    "-frames:v",
    "1",
    `file:${file}`,
  ]);
}

/** A tiny ffv1 clip. */
async function clip(file: string): Promise<void> {
  await run("ffmpeg", [
    "-nostdin",
    "-loglevel",
    "error",
    "-y",
    "-f",
    "lavfi",
    "-i",
    "testsrc2=size=16x16:rate=10",
    "-frames:v",
    "2",
    "-c:v",
    "ffv1",
    `file:${file}`,
  ]);
}

/** Runs a command with console output captured; returns the exit code and every line. */
async function captured(f: () => Promise<number>): Promise<{ code: number; said: string[] }> {
  const log = console.log;
  const err = console.error;
  const said: string[] = [];
  console.log = (...a: unknown[]) => said.push(a.join(" "));
  console.error = (...a: unknown[]) => said.push(a.join(" "));
  try {
    return { code: await f(), said };
  } finally {
    console.log = log;
    console.error = err;
  }
}

/** Rejects if `p` takes longer than `ms` (a FIFO opened by mistake blocks for ever). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Everything under `dir`, relative, sorted. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = path.join(d, e.name);
      out.push(path.relative(dir, p));
      if (e.isDirectory) await walk(p);
    }
  };
  await walk(dir);
  return out.sort();
}

/** The smallest build: one motion per image, one blur level, 3 frames of 16x16. */
const TINY_ARGS = [
  "--test",
  "1",
  "--val",
  "0",
  "--frames",
  "3",
  "--size",
  "16",
  "--motions",
  "1",
  "--levels",
  "1",
  "--distortions",
  "blur",
  "--quiet",
];

async function withSandbox(fn: (sb: Sandbox) => Promise<void>): Promise<void> {
  const sb = await makeSandbox();
  try {
    await fn(sb);
  } finally {
    await sb.dispose();
  }
}

/** A source folder `<work>/sources` with two ordinary images, plus `extra` names. */
async function sources(sb: Sandbox, extra: string[] = []): Promise<string> {
  const dir = path.join(sb.work, "sources");
  await Deno.mkdir(dir);
  await png(path.join(dir, "alpha.png"), 48, 40, "testsrc2");
  await png(path.join(dir, "beta.png"), 40, 48, "smptebars");
  for (const name of extra) await png(path.join(dir, name), 44, 44, "rgbtestsrc");
  return dir;
}

// ---------------------------------------------------------------------------------------------
// Case 1: source names

Deno.test("data: sources named ...png, ..png, .png and 'a b.png' make safe, distinct clip names inside --out", async () => {
  await withSandbox(async (sb) => {
    const src = await sources(sb, ["...png", "..png", ".png", "a b.png"]);
    await sb.mark();
    const r = await captured(() => dataCommand(["--out", sb.out, "--sources", src, ...TINY_ARGS]));
    equal(r.code, 0, r.said.join("\n"));
    // The mapping is printed for every changed name.
    for (
      const [file, name] of [["...png", "image"], ["..png", "image-2"], [".png", "image-3"], [
        "a b.png",
        "a_b",
      ]]
    ) {
      ok(
        r.said.includes(
          `note: source image ${JSON.stringify(file)} is named ${name} in the dataset`,
        ),
        r.said.join("\n"),
      );
    }
    ok(!r.said.some((l) => /ZodError|^\s+at /.test(l)), r.said.join("\n"));
    const { manifest, items, missing } = await loadManifest(path.join(sb.out, "manifest.json"));
    deepEqual(missing, []);
    deepEqual(manifest.sources.map((s) => [s.file, s.name]), [
      ["...png", "image"],
      ["..png", "image-2"],
      [".png", "image-3"],
      ["a b.png", "a_b"],
      ["alpha.png", "alpha"],
      ["beta.png", "beta"],
    ]);
    equal(items.length, 6 * 2);
    for (const it of items) ok(it.path.startsWith(sb.out + path.sep), it.path);
    const top = (await tree(sb.out)).filter((p) => !p.includes(path.sep));
    deepEqual(top, ["clips", "manifest.json"]);
    deepEqual(
      (await tree(path.join(sb.out, "clips"))).filter((p) => !p.includes(path.sep)),
      ["a_b", "alpha", "beta", "image", "image-2", "image-3"],
    );
    await sb.assertUntouched();
  });
});

Deno.test("data: symbolic links to images are followed; a FIFO named like an image is skipped with a note", async () => {
  await withSandbox(async (sb) => {
    const src = await sources(sb);
    const elsewhere = path.join(sb.work, "elsewhere.png");
    await png(elsewhere, 40, 40, "rgbtestsrc");
    await Deno.symlink(elsewhere, path.join(src, "linked.png"));
    await run("mkfifo", [path.join(src, "pipe.png")]);
    await sb.mark();
    const r = await within(
      captured(() => dataCommand(["--out", sb.out, "--sources", src, ...TINY_ARGS])),
      60_000,
      "data build with a FIFO among the sources",
    );
    equal(r.code, 0, r.said.join("\n"));
    ok(
      r.said.some((l) =>
        l.startsWith("note: skipped ") && l.includes("pipe.png") && /FIFO/.test(l)
      ),
      r.said.join("\n"),
    );
    const { manifest } = await loadManifest(path.join(sb.out, "manifest.json"));
    deepEqual(manifest.sources.map((s) => s.name), ["alpha", "beta", "linked"]);
    await sb.assertUntouched();
  });
});

// ---------------------------------------------------------------------------------------------
// Case 2: the output folder, temporary folders

Deno.test("data: --out that is a file, or under a file, is one line (exit 1) before any work", async () => {
  await withSandbox(async (sb) => {
    const file = path.join(sb.work, "sentinel-beside.txt");
    // The sources do not exist: had any work started, the message would be about them.
    const missing = path.join(sb.work, "no-sources");
    for (
      const [out, want] of [
        [file, `${file}: --out is a file, not a folder`],
        [
          path.join(file, "sub"),
          `${path.join(file, "sub")}: cannot create --out under ${file}, which is a file`,
        ],
      ]
    ) {
      const r = await captured(() =>
        dataCommand(["--out", out, "--sources", missing, ...TINY_ARGS])
      );
      equal(r.code, 1, r.said.join("\n"));
      deepEqual(r.said, [`deno task data: ${want}`]);
    }
    await sb.assertUntouched([]);
  });
});

Deno.test("data: a stale temporary folder of an interrupted build is removed; a failed build leaves none", async () => {
  await withSandbox(async (sb) => {
    const src = await sources(sb);
    await Deno.mkdir(sb.out);
    // A work folder of a run that was killed: its marker has not been touched for longer than
    // a live run lets it go.
    const stale = path.join(sb.out, `${WORK_DIR_PREFIX}clips.abc123`);
    await Deno.mkdir(path.join(stale, "alpha"), { recursive: true });
    const marker = path.join(stale, WORK_DIR_MARKER);
    await Deno.writeTextFile(marker, JSON.stringify({ pid: 999999 }));
    await Deno.writeTextFile(path.join(stale, "alpha", "pristine.mkv"), "half");
    const old = new Date(Date.now() - STALE_AFTER_MS - 60_000);
    await Deno.utime(marker, old, old);
    // A fresh one (a run still going on, elsewhere) is left alone.
    const live = path.join(sb.out, `${WORK_DIR_PREFIX}clips.live01`);
    await Deno.mkdir(live);
    await Deno.writeTextFile(path.join(live, WORK_DIR_MARKER), JSON.stringify({ pid: 999998 }));
    // Not ours: an unmarked folder and a file with the prefix stay.
    const foreign = path.join(sb.out, `${WORK_DIR_PREFIX}mine`);
    await Deno.mkdir(foreign);
    await Deno.writeTextFile(path.join(foreign, "keep.txt"), "keep");
    await sb.mark();
    const r = await captured(() => dataCommand(["--out", sb.out, "--sources", src, ...TINY_ARGS]));
    equal(r.code, 0, r.said.join("\n"));
    ok(r.said.some((l) => /^note: removed 1 stale temporary folder/.test(l)), r.said.join("\n"));
    deepEqual((await tree(sb.out)).filter((p) => !p.includes(path.sep)), [
      `${WORK_DIR_PREFIX}clips.live01`,
      `${WORK_DIR_PREFIX}mine`,
      "clips",
      "manifest.json",
    ]);
    equal(await Deno.readTextFile(path.join(foreign, "keep.txt")), "keep");

    // A build whose ffmpeg fails half-way: an error, and no temporary folder left behind.
    const fake = path.join(sb.root, "fake-ffmpeg.sh");
    await Deno.writeTextFile(
      fake,
      '#!/bin/sh\nfor a in "$@"; do [ "$a" = "-filter_complex" ] && { echo "boom" >&2; exit 1; }; done\n' +
        'exec ffmpeg "$@"\n',
    );
    await Deno.chmod(fake, 0o755);
    const before = Deno.env.get("FFMPEG");
    Deno.env.set("FFMPEG", fake);
    await sb.mark();
    try {
      const out2 = path.join(sb.out, "second");
      const f = await captured(() =>
        dataCommand(["--out", out2, "--sources", src, ...TINY_ARGS, "--seed", "5"])
      );
      equal(f.code, 1, f.said.join("\n"));
      ok(/^deno task data: .*ffmpeg exited with code 1/.test(f.said[0]), f.said.join("\n"));
      deepEqual(await tree(out2), []);
    } finally {
      if (before === undefined) Deno.env.delete("FFMPEG");
      else Deno.env.set("FFMPEG", before);
    }
    await sb.assertUntouched();
  });
});

Deno.test("data: a manifest.json or clips folder that is not a build's is not replaced; a FIFO manifest is refused", async () => {
  await withSandbox(async (sb) => {
    const src = await sources(sb);
    await Deno.mkdir(sb.out);
    const mine = path.join(sb.out, "manifest.json");
    await Deno.writeTextFile(mine, '{"my": "notes"}\n');
    await sb.mark();
    let r = await captured(() => dataCommand(["--out", sb.out, "--sources", src, ...TINY_ARGS]));
    equal(r.code, 2, r.said.join("\n"));
    ok(/manifest\.json exists but is not a proxy manifest; refusing to replace it/.test(r.said[0]));
    equal(await Deno.readTextFile(mine), '{"my": "notes"}\n');
    deepEqual(await tree(sb.out), ["manifest.json"]);
    await sb.assertUntouched();
    await Deno.remove(mine);
    await run("mkfifo", [mine]);
    await sb.mark();
    r = await within(
      captured(() => dataCommand(["--out", sb.out, "--sources", src, ...TINY_ARGS])),
      30_000,
      "data build over a FIFO manifest",
    );
    equal(r.code, 1, r.said.join("\n"));
    ok(
      /manifest is a FIFO \(named pipe\), not a regular file; refusing to replace it/.test(
        r.said[0],
      ),
    );
    deepEqual(await tree(sb.out), ["manifest.json"]);
    ok((await Deno.lstat(mine)).isFifo);
    await sb.assertUntouched();
  });
});

Deno.test("data: a source image too small for a camera motion is refused before anything is written", async () => {
  await withSandbox(async (sb) => {
    const src = await sources(sb);
    await png(path.join(src, "tiny.png"), 8, 8);
    await sb.mark();
    const r = await captured(() => dataCommand(["--out", sb.out, "--sources", src, ...TINY_ARGS]));
    equal(r.code, 2, r.said.join("\n"));
    equal(r.said.length, 1, r.said.join("\n"));
    ok(r.said[0].includes(`${path.join(src, "tiny.png")} is 8x8`), r.said[0]);
    ok(/at least 16 pixels on each side/.test(r.said[0]), r.said[0]);
    deepEqual(await tree(sb.out), []);
    await sb.assertUntouched();
  });
});

Deno.test({
  name: "data: Ctrl-C during a build removes its temporary folder and writes no manifest",
  sanitizeResources: false,
  fn: async () => {
    await withSandbox(async (sb) => {
      const src = await sources(sb, ["gamma.png", "delta.png"]);
      await sb.mark();
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-write",
          "--allow-env",
          "--allow-run",
          CLI,
          "data",
          "--out",
          sb.out,
          "--sources",
          src,
          "--test",
          "1",
          "--val",
          "0",
          "--frames",
          "24",
          "--size",
          "64",
          "--motions",
          "6",
          "--levels",
          "2",
          "--quiet",
          "-j",
          "1",
        ],
        stdout: "null",
        stderr: "piped",
        env: { XDG_RUNTIME_DIR: "/tmp" },
      }).spawn();
      // Wait for the work folder to appear, then interrupt.
      const deadline = Date.now() + 120_000;
      let seen = false;
      while (Date.now() < deadline && !seen) {
        await new Promise((r) => setTimeout(r, 25));
        try {
          for await (const e of Deno.readDir(sb.out)) {
            // The marker is written once the folder is registered for removal on Ctrl-C.
            const marker = path.join(sb.out, e.name, WORK_DIR_MARKER);
            if (e.name.startsWith(WORK_DIR_PREFIX) && await Deno.stat(marker).catch(() => null)) {
              seen = true;
            }
          }
        } catch { /* not made yet */ }
      }
      ok(seen, "the build made a temporary folder");
      child.kill("SIGINT");
      const status = await child.status;
      const stderr = new TextDecoder().decode(
        await new Response(child.stderr).arrayBuffer(),
      );
      equal(status.code, 130, stderr);
      ok(/interrupted: partial output removed/.test(stderr), stderr);
      deepEqual(await tree(sb.out), []);
      await sb.assertUntouched();
    });
  },
});

// ---------------------------------------------------------------------------------------------
// Case 5: label files and manifests

/** Writes files (path -> text) under `dir`. */
async function files(dir: string, map: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(map)) {
    await Deno.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await Deno.writeTextFile(path.join(dir, rel), text);
  }
}

/** Asserts a DatasetError with exactly this message. */
async function refused(p: Promise<unknown>, message: string): Promise<void> {
  await rejects(p, (e: Error) => {
    ok(e instanceof DatasetError, `expected a DatasetError, got ${e}`);
    equal(e.message, message);
    return true;
  });
}

Deno.test("generic manifest: MOS finite and within range, duplicates, paths confined, special files", async () => {
  await withSandbox(async (sb) => {
    const d = sb.work;
    await files(d, { "v/a.mp4": "x", "v/b.mp4": "x", "elsewhere/c.mp4": "x" });
    await Deno.symlink(path.join(d, "elsewhere", "c.mp4"), path.join(d, "v", "link.mp4"));
    await Deno.symlink(path.join(d, "gone.mp4"), path.join(d, "v", "dangling.mp4"));
    await run("mkfifo", [path.join(d, "v", "pipe.mp4")]);
    await Deno.mkdir(path.join(d, "v", "dir.mp4"));
    const csv = path.join(d, "m.csv");
    const write = (rows: string) => Deno.writeTextFile(csv, `path,mos\n${rows}`);

    // Symbolic links to regular files are followed; a dangling one is a missing video.
    await write("v/a.mp4,1\nv/link.mp4,100\nv/dangling.mp4,0\n");
    const ok1 = await loadGenericManifest(csv);
    deepEqual(ok1.items.map((i) => [i.path, i.mos]), [
      [path.join(d, "v/a.mp4"), 1],
      [path.join(d, "v/link.mp4"), 100],
    ]);
    deepEqual(ok1.missing, [path.join(d, "v/dangling.mp4")]);

    for (
      const [rows, message] of [
        ["v/a.mp4,3\nv/b.mp4,-5\n", "row 3: field mos: expected a MOS from 0 to 100, got '-5'"],
        ["v/a.mp4,1e300\n", "row 2: field mos: expected a MOS from 0 to 100, got '1e300'"],
        ["v/a.mp4,NaN\n", "row 2: field mos: expected a number, got 'NaN'"],
        ["v/a.mp4,Infinity\n", "row 2: field mos: expected a number, got 'Infinity'"],
        [
          "v/a.mp4,3\nv/b.mp4,2\n./v/a.mp4,4\n",
          `row 4: field path: './v/a.mp4' is the same video as row 2 (${
            path.join(d, "v/a.mp4")
          }); each video may be listed once`,
        ],
        [
          "v/a.mp4,3\nelsewhere/c.mp4,2\nv/link.mp4,4\n",
          `row 4: field path: 'v/link.mp4' is the same video as row 3 (${
            path.join(d, "v/link.mp4")
          }); each video may be listed once`,
        ],
        [
          "../../etc/passwd,3\n",
          `row 2: field path: must be a path inside ${d} (relative, without '..'), got '../../etc/passwd'`,
        ],
        [
          "/etc/passwd,3\n",
          `row 2: field path: must be a path inside ${d} (relative, without '..'), got '/etc/passwd'`,
        ],
        [
          "v/pipe.mp4,3\n",
          "row 2: field path: 'v/pipe.mp4': video is a FIFO (named pipe), not a regular file",
        ],
        ["v/dir.mp4,3\n", "row 2: field path: 'v/dir.mp4': video is a folder, not a regular file"],
      ]
    ) {
      await write(rows);
      await within(refused(loadGenericManifest(csv), `${csv} ${message}`), 10_000, rows);
    }
    // Another range on request.
    await write("v/a.mp4,4.5\n");
    await refused(
      loadGenericManifest(csv, { mosRange: [1, 4] }),
      `${csv} row 2: field mos: expected a MOS from 1 to 4, got '4.5'`,
    );
    // JSON alike.
    const json = path.join(d, "m.json");
    await Deno.writeTextFile(json, JSON.stringify([{ path: "v/a.mp4", mos: 1e300 }]));
    await refused(
      loadGenericManifest(json),
      `${json} row 1: field mos: expected a MOS from 0 to 100, got 1e+300`,
    );
    await Deno.writeTextFile(json, JSON.stringify([{ path: "../x.mp4", mos: 1 }]));
    await refused(
      loadGenericManifest(json),
      `${json} row 1: field path: must be a path inside ${d} (relative, without '..'), got '../x.mp4'`,
    );
    // A label file that is a FIFO is refused, not opened.
    const fifo = path.join(d, "labels.csv");
    await run("mkfifo", [fifo]);
    await within(
      refused(
        loadGenericManifest(fifo),
        `${fifo}: label file is a FIFO (named pipe), not a regular file`,
      ),
      10_000,
      "FIFO label file",
    );
    await sb.assertUntouched([sb.work]);
  });
});

Deno.test("real-dataset loaders: MOS range, duplicate rows, confined names, special and linked videos", async () => {
  await withSandbox(async (sb) => {
    const k = path.join(sb.work, "konvid");
    await files(k, {
      "KoNViD_1k_attributes.csv": "flickr_id,MOS\n1,3.5\n2,4\n",
      "KoNViD_1k_videos/1.mp4": "x",
      "real/2.mp4": "x",
    });
    // A symbolic link to a video (and to a folder of videos) is followed.
    await Deno.symlink(path.join(k, "real", "2.mp4"), path.join(k, "KoNViD_1k_videos", "2.mp4"));
    const konvid = await loadKonvid(k);
    deepEqual(konvid.items.map((i) => [path.basename(i.path), i.mos]), [["1.mp4", 3.5], [
      "2.mp4",
      4,
    ]]);
    const attrs = path.join(k, "KoNViD_1k_attributes.csv");
    await Deno.writeTextFile(attrs, "flickr_id,MOS\n1,3.5\n2,-5\n");
    await refused(
      loadKonvid(k),
      `${attrs} row 3: field MOS: expected a MOS from 0 to 100, got '-5'`,
    );
    await Deno.writeTextFile(attrs, "flickr_id,MOS\n1,3.5\n2,4\n1,2\n");
    await refused(
      loadKonvid(k),
      `${attrs} row 4: field flickr_id: '1' is the same video as row 2 (${
        path.join(k, "KoNViD_1k_videos", "1.mp4")
      }); each video may be listed once`,
    );
    await Deno.writeTextFile(attrs, "flickr_id,MOS,file_name\n1,3.5,../../etc/passwd\n");
    await refused(
      loadKonvid(k),
      `${attrs} row 2: field file_name: must be a path inside ${
        path.join(k, "KoNViD_1k_videos")
      } (relative, without '..'), got '../../etc/passwd'`,
    );
    await run("mkfifo", [path.join(k, "KoNViD_1k_videos", "3.mp4")]);
    await Deno.writeTextFile(attrs, "flickr_id,MOS\n1,3.5\n3,2\n");
    await within(
      refused(
        loadKonvid(k),
        `${attrs} row 3: field flickr_id: '3': ${
          path.join(k, "KoNViD_1k_videos", "3.mp4")
        } is a FIFO (named pipe), not a regular file`,
      ),
      10_000,
      "FIFO video in KoNViD",
    );

    const l = path.join(sb.work, "livevqc");
    await files(l, {
      "labels.csv": "File,MOS\nA001.mp4,80\nA002.mp4,101\n",
      "Video/A001.mp4": "x",
    });
    await refused(
      loadLiveVqc(l),
      `${path.join(l, "labels.csv")} row 3: field MOS: expected a MOS from 0 to 100, got '101'`,
    );
    deepEqual((await loadLiveVqc(l, { mosRange: [0, 200] })).missing, [
      path.join(l, "Video", "A002.mp4"),
    ]);
    await Deno.writeTextFile(path.join(l, "labels.csv"), "File,MOS\nA001.mp4,80\nA001,70\n");
    await refused(
      loadLiveVqc(l),
      `${path.join(l, "labels.csv")} row 3: field File: 'A001' is the same video as row 2 (${
        path.join(l, "Video", "A001.mp4")
      }); each video may be listed once`,
    );

    const u = path.join(sb.work, "ugc");
    await files(u, { "ugc.csv": "vid,MOS full\nA,4\nB,1e300\n", "original_videos/x/A.mkv": "x" });
    await refused(
      loadYoutubeUgc(u),
      `${path.join(u, "ugc.csv")} row 3: field MOS full: expected a MOS from 0 to 100, got '1e300'`,
    );
    await Deno.writeTextFile(path.join(u, "ugc.csv"), "vid,MOS full\nA,4\nB,3\nA,2\n");
    await refused(
      loadYoutubeUgc(u),
      `${path.join(u, "ugc.csv")} row 4: field vid: 'A' is the same video as row 2 (${
        path.join(u, "original_videos", "x", "A.mkv")
      }); each video may be listed once`,
    );
    await sb.assertUntouched([sb.work]);
  });
});

Deno.test("data check: --mos-range, and a FIFO as --labels, are one line each", async () => {
  await withSandbox(async (sb) => {
    const l = path.join(sb.work, "livevqc");
    await files(l, { "labels.csv": "File,MOS\nA001.mp4,80\n", "Video/A001.mp4": "x" });
    let r = await captured(() => dataCommand(["check", "--format", "live-vqc", "--root", l]));
    equal(r.code, 0, r.said.join("\n"));
    r = await captured(() =>
      dataCommand(["check", "--format", "live-vqc", "--root", l, "--mos-range", "1,5"])
    );
    equal(r.code, 1);
    deepEqual(r.said, [
      `${path.join(l, "labels.csv")} row 2: field MOS: expected a MOS from 1 to 5, got '80'`,
    ]);
    r = await captured(() =>
      dataCommand(["check", "--format", "live-vqc", "--root", l, "--mos-range", "5,1"])
    );
    equal(r.code, 2);
    ok(r.said[0].startsWith("deno task data check: --mos-range: expected two numbers low,high"));
    const fifo = path.join(sb.work, "fifo.csv");
    await run("mkfifo", [fifo]);
    r = await within(
      captured(() => dataCommand(["check", "--format", "live-vqc", "--root", l, "--labels", fifo])),
      10_000,
      "data check with a FIFO label file",
    );
    equal(r.code, 1);
    deepEqual(r.said, [`${fifo}: label file is a FIFO (named pipe), not a regular file`]);
  });
});

Deno.test("proxy manifest: a tampered clip path, a duplicate clip, a FIFO clip or manifest are one line", async () => {
  await withSandbox(async (sb) => {
    const src = await sources(sb);
    await sb.mark();
    const built = await buildProxyDataset({
      sources: src,
      out: sb.out,
      testSources: 1,
      valSources: 0,
      frames: 3,
      size: 16,
      motionsPerImage: 1,
      levels: 1,
      distortions: ["blur"],
    });
    const file = path.join(sb.out, "manifest.json");
    const text = await Deno.readTextFile(file);
    const copy = path.join(sb.out, "copy.json");
    const m = JSON.parse(text);
    m.clips[0].path = "../../etc/passwd";
    await Deno.writeTextFile(copy, JSON.stringify(m));
    await refused(
      loadManifest(copy),
      `${copy}: not a valid proxy manifest: clips.0.path: must be a relative path inside the ` +
        "dataset folder",
    );
    const dup = JSON.parse(text);
    dup.clips[1].path = dup.clips[0].path;
    await Deno.writeTextFile(copy, JSON.stringify(dup));
    await rejects(loadManifest(copy), (e: Error) => {
      ok(e instanceof DatasetError);
      ok(
        e.message.includes(
          `clips.1.path: clip ${dup.clips[0].path} is listed twice (also clips.0)`,
        ),
        e.message,
      );
      ok(!e.message.includes("\n"), e.message);
      return true;
    });
    // A clip replaced by a FIFO is refused by name, not listed missing (nor opened).
    const clipPath = path.join(sb.out, ...built.manifest.clips[0].path.split("/"));
    await Deno.remove(clipPath);
    await run("mkfifo", [clipPath]);
    await within(
      refused(
        loadManifest(file),
        `${file}: clip ${
          built.manifest.clips[0].path
        }: ${clipPath}: clip is a FIFO (named pipe), ` +
          "not a regular file",
      ),
      10_000,
      "FIFO clip",
    );
    const fifo = path.join(sb.out, "fifo.json");
    await run("mkfifo", [fifo]);
    await within(
      refused(loadManifest(fifo), `${fifo}: manifest is a FIFO (named pipe), not a regular file`),
      10_000,
      "FIFO manifest",
    );
    await sb.assertUntouched();
  });
});

// ---------------------------------------------------------------------------------------------
// Cases 4 and 6: video inputs

Deno.test("isVideoPath and listVideoFiles: sorted, links followed, special entries skipped by name", async () => {
  ok(isVideoPath("a/b.MKV"));
  ok(isVideoPath("x.y4m"));
  ok(!isVideoPath("notes.txt"));
  ok(!isVideoPath(".mkv"), "a bare extension is a hidden file's name, not a video name");
  ok(VIDEO_EXTENSIONS.includes(".mp4"));
  await withSandbox(async (sb) => {
    const d = path.join(sb.work, "videos");
    await Deno.mkdir(d);
    await clip(path.join(d, "b.mkv"));
    await clip(path.join(sb.work, "real.mkv"));
    await Deno.symlink(path.join(sb.work, "real.mkv"), path.join(d, "a.mp4"));
    await Deno.symlink(path.join(sb.work, "gone.mkv"), path.join(d, "dangling.mkv"));
    await run("mkfifo", [path.join(d, "pipe.mkv")]);
    await Deno.mkdir(path.join(d, "folder.mkv"));
    await Deno.writeTextFile(path.join(d, "empty.webm"), "");
    await Deno.writeTextFile(path.join(d, "notes.txt"), "not a video");
    const list = await within(listVideoFiles(d), 10_000, "listVideoFiles");
    deepEqual(list.files, [path.join(d, "a.mp4"), path.join(d, "b.mkv")]);
    deepEqual(list.skipped, [
      { name: "dangling.mkv", reason: "a symbolic link to a missing file" },
      { name: "empty.webm", reason: "empty (0 bytes), not a video" },
      { name: "folder.mkv", reason: "a directory (a folder), not a video file" },
      { name: "pipe.mkv", reason: "a FIFO (named pipe), not a regular file" },
    ]);
    await rejects(listVideoFiles(path.join(d, "b.mkv")), /b\.mkv: not a folder/);
    await rejects(listVideoFiles(path.join(d, "none")), /none: no such folder/);
    await sb.assertUntouched([sb.work]);
  });
});

Deno.test("probeVideo and checkVideoFile: FIFOs, devices, folders and empty files refused by name; links followed", async () => {
  await withSandbox(async (sb) => {
    const d = sb.work;
    const real = path.join(d, "real.mkv");
    await clip(real);
    const link = path.join(d, "link.mkv");
    await Deno.symlink(real, link);
    equal((await probeVideo(link)).width, 16);
    ok((await checkVideoFile(link)) > 0);
    const fifo = path.join(d, "pipe.mkv");
    await run("mkfifo", [fifo]);
    const folder = path.join(d, "x.mkv");
    await Deno.mkdir(folder);
    const empty = path.join(d, "empty.mkv");
    await Deno.writeTextFile(empty, "");
    const cases: [string, RegExp][] = [
      [fifo, /video is a FIFO \(named pipe\), not a regular file$/],
      ["/dev/zero", /video is a character device, not a regular file$/],
      [folder, /is a directory \(a folder\), not a video file$/],
      [empty, /is empty \(0 bytes\), not a video$/],
      [path.join(d, "none.mkv"), /no such file$/],
    ];
    for (const [file, pattern] of cases) {
      for (const f of [probeVideo, checkVideoFile]) {
        await within(
          rejects(f(file), (e: Error) => {
            ok(e instanceof VideoError, `${file}: expected a VideoError, got ${e}`);
            ok(e.message.startsWith(`${JSON.stringify(file)}: `), e.message);
            ok(pattern.test(e.message), e.message);
            return true;
          }),
          10_000,
          `${f.name}(${file})`,
        );
      }
    }
    await sb.assertUntouched([sb.work]);
  });
});
