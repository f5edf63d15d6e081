// Real-dataset loaders and the CSV parser: small label files in temporary folders laid out as
// the datasets ship, with quoted fields, bad rows (reported by row number and field) and missing
// videos (listed, not skipped).

import { deepEqual, equal, notEqual, ok, rejects, throws } from "assert";
import * as path from "path";
import {
  CsvSyntaxError,
  DatasetError,
  loadDataset,
  loadGenericManifest,
  loadKonvid,
  loadLiveVqc,
  loadYoutubeUgc,
  parseCsv,
} from "../src/data/mod.ts";
import { dataCommand } from "../src/cli/data.ts";
import { exists, isDir, isFile, tempPathBeside, writeFileAtomic } from "../src/_fs.ts";
import { formatZodError, integerArg, numberArg } from "../src/_zod.ts";
import { z } from "zod";

const tmpDirs: string[] = [];

/** Creates a folder with the given files (path -> text; empty text for a stand-in video). */
async function layout(files: Record<string, string>): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "stqa_loaders_" });
  tmpDirs.push(root);
  for (const [rel, text] of Object.entries(files)) {
    const p = path.join(root, rel);
    await Deno.mkdir(path.dirname(p), { recursive: true });
    await Deno.writeTextFile(p, text);
  }
  return root;
}

/** Asserts that a promise rejects with a DatasetError whose message is exactly `message`. */
async function rejectsWith(p: Promise<unknown>, message: string, row?: number, field?: string) {
  await rejects(p, (e: Error) => {
    ok(e instanceof DatasetError, `expected a DatasetError, got ${e}`);
    equal(e.message, message);
    if (row !== undefined) equal(e.row, row);
    if (field !== undefined) equal(e.field, field);
    return true;
  });
}

Deno.test("_fs: atomic writes, temporary paths beside the target, isFile/isDir/exists", async () => {
  const root = await layout({ "a.txt": "old" });
  const target = path.join(root, "a.txt");
  const tmp = tempPathBeside(target);
  equal(path.dirname(tmp), root);
  ok(/^\.a\.txt\.[0-9a-z]+\.tmp$/.test(path.basename(tmp)), tmp);
  notEqual(tempPathBeside(target), tmp);
  await writeFileAtomic(target, "new text");
  equal(await Deno.readTextFile(target), "new text");
  await writeFileAtomic(path.join(root, "b.bin"), new Uint8Array([1, 2, 255]));
  deepEqual([...await Deno.readFile(path.join(root, "b.bin"))], [1, 2, 255]);
  // A rename onto a non-empty folder fails: the error is rethrown, no temporary file is left.
  await Deno.mkdir(path.join(root, "d", "e"), { recursive: true });
  await rejects(writeFileAtomic(path.join(root, "d"), "x"));
  const names: string[] = [];
  for await (const e of Deno.readDir(root)) names.push(e.name);
  deepEqual(names.sort(), ["a.txt", "b.bin", "d"]);
  deepEqual(
    [await isFile(target), await isFile(path.join(root, "d")), await isFile(path.join(root, "z"))],
    [true, false, false],
  );
  deepEqual([await isDir(path.join(root, "d")), await isDir(target)], [true, false]);
  await Deno.symlink(path.join(root, "gone"), path.join(root, "dangling"));
  deepEqual(
    [await exists(path.join(root, "dangling")), await exists(target), await exists("/no/such")],
    [true, true, false],
  );
  equal(await isFile(path.join(root, "dangling")), false);
});

Deno.test("_zod: issues as path.to.field: message; numbers from strings name the value", () => {
  const schema = z.object({ a: z.object({ b: z.number().int() }), s: z.string() }).strict();
  const r = schema.safeParse({ a: { b: 1.5 }, x: 1 });
  ok(!r.success);
  equal(
    formatZodError(r.error),
    "a.b: expected integer, got float; s: Required; Unrecognized key(s) in object: 'x'",
  );
  equal(
    formatZodError(r.error, { prefix: "--", root: "options", separator: "\n" }),
    "--a.b: expected integer, got float\n--s: Required\noptions: Unrecognized key(s) in object: 'x'",
  );
  const args = z.object({ n: integerArg(), f: numberArg() });
  deepEqual(args.parse({ n: "-12", f: "2.5e-1" }), { n: -12, f: 0.25 });
  for (
    const [n, f, want] of [
      ["1.0", "1", 'n: must be a whole number, got "1.0"'],
      ["0x1", "1", 'n: must be a whole number, got "0x1"'],
      ["1", "NaN", 'f: must be a number, got "NaN"'],
      ["1", "1e999", 'f: must be a number, got "1e999"'],
    ]
  ) {
    const bad = args.safeParse({ n, f });
    ok(!bad.success);
    equal(formatZodError(bad.error), want);
  }
});

Deno.test("parseCsv: quoted commas, quotes and line breaks, CRLF, BOM, blank lines", () => {
  const text = '\ufeffname,mos\r\n"a, b.mp4",3.5\r\n\r\n"say ""hi""",4\n"two\nlines",1\nlast,2';
  const rows = parseCsv(text);
  deepEqual(rows.map((r) => r.fields), [
    ["name", "mos"],
    ["a, b.mp4", "3.5"],
    ['say "hi"', "4"],
    ["two\nlines", "1"],
    ["last", "2"],
  ]);
  deepEqual(rows.map((r) => r.line), [1, 2, 4, 5, 7]);
  deepEqual(parseCsv("a,,c\n").map((r) => r.fields), [["a", "", "c"]]);
  deepEqual(parseCsv('""\n').map((r) => r.fields), [[""]]);
  deepEqual(parseCsv("").length, 0);
  throws(() => parseCsv('a,b\n"open,1\n'), (e: Error) => {
    ok(e instanceof CsvSyntaxError);
    equal(e.line, 2);
    ok(/unterminated/.test(e.message));
    return true;
  });
  throws(() => parseCsv('a,"b"x\n'), /unexpected "x" after a closing quote/);
});

Deno.test("loadKonvid: attributes CSV and KoNViD_1k_videos/, missing videos listed", async () => {
  const root = await layout({
    "KoNViD_1k_attributes.csv": 'flickr_id,MOS,SD,"tags, quoted"\n' +
      '3339962845,3.78,0.6,"a, b"\n' +
      "4047519960,2.1,0.5,x\n" +
      "8536919744,4.42,0.4,y\n",
    "KoNViD_1k_videos/3339962845.mp4": "",
    "KoNViD_1k_videos/8536919744.mp4": "",
  });
  const d = await loadKonvid(root);
  deepEqual(d.items.map((i) => [path.basename(i.path), i.mos]), [
    ["3339962845.mp4", 3.78],
    ["8536919744.mp4", 4.42],
  ]);
  deepEqual(d.missing, [path.join(root, "KoNViD_1k_videos", "4047519960.mp4")]);
  deepEqual(await loadDataset("konvid", root), d);
});

Deno.test("loadKonvid: metadata sub-folder, file_name column, other extensions", async () => {
  const root = await layout({
    "KoNViD_1k_metadata/KoNViD_1k_attributes.csv": "flickr_id,MOS,file_name\n" +
      "11,3,11_orig.mp4\n12,2.5,\n",
    "KoNViD_1k_videos/11_orig.mp4": "",
    "KoNViD_1k_videos/12.mkv": "",
  });
  const d = await loadKonvid(root);
  deepEqual(d.items.map((i) => [path.basename(i.path), i.mos, i.name]), [
    ["11_orig.mp4", 3, "11_orig.mp4"],
    ["12.mkv", 2.5, "12"],
  ]);
  deepEqual(d.missing, []);
});

Deno.test("loadKonvid: bad rows and headers are reported by row and field", async () => {
  const head = "flickr_id,MOS\n";
  const good = "1,3\n2,4\n";
  let root = await layout({ "KoNViD_1k_attributes.csv": head + good + "3,abc\n" });
  await rejectsWith(
    loadKonvid(root),
    `${path.join(root, "KoNViD_1k_attributes.csv")} row 4: field MOS: expected a number, got 'abc'`,
    4,
    "MOS",
  );
  root = await layout({ "KoNViD_1k_attributes.csv": head + good + ",3\n" });
  await rejectsWith(
    loadKonvid(root),
    `${
      path.join(root, "KoNViD_1k_attributes.csv")
    } row 4: field flickr_id: expected a name, got an empty field`,
  );
  root = await layout({ "KoNViD_1k_attributes.csv": head + "1,\n" });
  await rejectsWith(
    loadKonvid(root),
    `${path.join(root, "KoNViD_1k_attributes.csv")} row 2: field MOS: expected a number, got ''`,
  );
  root = await layout({ "KoNViD_1k_attributes.csv": head + good + "7\n" });
  await rejectsWith(
    loadKonvid(root),
    `${path.join(root, "KoNViD_1k_attributes.csv")} row 4: field MOS: has 1 fields, the header 2`,
  );
  root = await layout({ "KoNViD_1k_attributes.csv": "flickr_id,score\n1,3\n" });
  await rejectsWith(
    loadKonvid(root),
    `${
      path.join(root, "KoNViD_1k_attributes.csv")
    } row 1: no 'MOS' column (header: flickr_id, score)`,
  );
  root = await layout({ "KoNViD_1k_attributes.csv": 'flickr_id,MOS\n1,3\n"2,4\n' });
  await rejectsWith(
    loadKonvid(root),
    `${path.join(root, "KoNViD_1k_attributes.csv")} row 3: unterminated quoted field`,
  );
  root = await layout({ "readme.txt": "" });
  await rejects(loadKonvid(root), /KoNViD_1k_attributes\.csv not found/);
});

Deno.test("a quoted line break in the header: columns found, rows numbered by line", async () => {
  const konvid = await layout({
    "KoNViD_1k_attributes.csv": '"notes,\nmulti-line",flickr_id,MOS,file_name\n' +
      "x,1,3.5,one.mkv\ny,2,oops,two.mkv\n",
    "KoNViD_1k_videos/one.mkv": "",
  });
  await rejectsWith(
    loadKonvid(konvid),
    `${
      path.join(konvid, "KoNViD_1k_attributes.csv")
    } row 4: field MOS: expected a number, got 'oops'`,
    4,
    "MOS",
  );
  await Deno.writeTextFile(
    path.join(konvid, "KoNViD_1k_attributes.csv"),
    '"notes,\nmulti-line",flickr_id,MOS,file_name\nx,1,3.5,one.mkv\n',
  );
  const k = await loadKonvid(konvid);
  deepEqual(k.items.map((i) => [path.basename(i.path), i.mos]), [["one.mkv", 3.5]]);
  const ugc = await layout({
    "ugc.csv": '"a\nb",vid,MOS full,MOS\n-,A,4.25,1\n',
    "A.mkv": "",
  });
  const u = await loadYoutubeUgc(ugc);
  deepEqual(u.items.map((i) => [path.basename(i.path), i.mos]), [["A.mkv", 4.25]]);
});

Deno.test("loadLiveVqc: label CSV and Video/, names with and without extension", async () => {
  const root = await layout({
    "LiveVQC_labels.csv": "File,MOS\nA001.mp4,80.23\nA002,55.1\nB103.mp4,31\n",
    "Video/A001.mp4": "",
    "Video/A002.mp4": "",
  });
  const d = await loadLiveVqc(root);
  deepEqual(d.items.map((i) => [path.basename(i.path), i.mos]), [
    ["A001.mp4", 80.23],
    ["A002.mp4", 55.1],
  ]);
  deepEqual(d.missing, [path.join(root, "Video", "B103.mp4")]);
  // An explicit label file elsewhere, and a bad MOS.
  const other = await layout({ "x.csv": "video_name,mos\nA001.mp4,n/a\n" });
  await rejectsWith(
    loadLiveVqc(root, { labels: path.join(other, "x.csv") }),
    `${path.join(other, "x.csv")} row 2: field mos: expected a number, got 'n/a'`,
  );
  const empty = await layout({ "Video/A001.mp4": "" });
  await rejects(loadLiveVqc(empty), /no label CSV found/);
  const noName = await layout({ "y.csv": "File,MOS\nA001.mp4,50\n  ,40\n" });
  await rejectsWith(
    loadLiveVqc(root, { labels: path.join(noName, "y.csv") }),
    `${path.join(noName, "y.csv")} row 3: field File: expected a name, got an empty field`,
  );
});

Deno.test("loadYoutubeUgc: MOS sheet as CSV, videos in category/resolution folders", async () => {
  const root = await layout({
    "original_videos_MOS_for_YouTube_UGC_dataset.csv": "vid,category,MOS full,MOS chunk 00\n" +
      "Animation_360P-08c9,Animation,3.71,3.6\n" +
      "Gaming_1080P-0ce6,Gaming,4.2,4.1\n" +
      "Vlog_720P-0000,Vlog,2.9,3\n",
    "original_videos/Animation/360P/Animation_360P-08c9.mkv": "",
    "original_videos/Gaming/1080P/Gaming_1080P-0ce6.mkv": "",
  });
  const d = await loadYoutubeUgc(root);
  deepEqual(d.items.map((i) => [path.basename(i.path), i.mos]), [
    ["Animation_360P-08c9.mkv", 3.71],
    ["Gaming_1080P-0ce6.mkv", 4.2],
  ]);
  ok(d.items[0].path.includes(path.join("Animation", "360P")));
  deepEqual(d.missing, [path.join(root, "original_videos", "Vlog_720P-0000.mkv")]);
  const bad = await layout({ "ugc.csv": "vid,MOS full\nA,4\nB,four\n" });
  await rejectsWith(
    loadYoutubeUgc(bad),
    `${path.join(bad, "ugc.csv")} row 3: field MOS full: expected a number, got 'four'`,
  );
});

Deno.test("loadGenericManifest: CSV and JSON, relative paths, bad rows", async () => {
  const root = await layout({
    "labels.csv": 'path,mos\nclips/a.mp4,3\n"clips/b, c.mp4",4.5\nclips/gone.mp4,1\n',
    "labels.json": JSON.stringify([{ path: "clips/a.mp4", mos: 2, extra: true }]),
    "wrapped.json": JSON.stringify({ items: [{ path: "clips/gone.mp4", mos: 2 }] }),
    "clips/a.mp4": "",
    "clips/b, c.mp4": "",
  });
  const csv = await loadGenericManifest(path.join(root, "labels.csv"));
  deepEqual(csv.items.map((i) => [i.path, i.mos]), [
    [path.join(root, "clips/a.mp4"), 3],
    [path.join(root, "clips/b, c.mp4"), 4.5],
  ]);
  deepEqual(csv.missing, [path.join(root, "clips/gone.mp4")]);
  const json = await loadGenericManifest(path.join(root, "labels.json"));
  deepEqual(json.items.map((i) => [i.path, i.mos]), [[path.join(root, "clips/a.mp4"), 2]]);
  const wrapped = await loadDataset("manifest", path.join(root, "wrapped.json"));
  deepEqual(wrapped.items, []);
  deepEqual(wrapped.missing, [path.join(root, "clips/gone.mp4")]);

  const bad = await layout({
    "m.json": JSON.stringify([{ path: "a.mp4", mos: 1 }, { path: "b.mp4", mos: "3" }]),
    "n.json": JSON.stringify([{ path: "", mos: 1 }]),
    "o.json": '{"path": "a.mp4"}',
    "p.json": "[{",
    "q.csv": "path,mos\na.mp4,1\nb.mp4,1e\n",
  });
  await rejectsWith(
    loadGenericManifest(path.join(bad, "m.json")),
    `${path.join(bad, "m.json")} row 2: field mos: expected number, got string`,
  );
  await rejectsWith(
    loadGenericManifest(path.join(bad, "n.json")),
    `${path.join(bad, "n.json")} row 1: field path: expected a path, got an empty string`,
  );
  await rejects(loadGenericManifest(path.join(bad, "o.json")), /expected an array/);
  await rejects(loadGenericManifest(path.join(bad, "p.json")), /not valid JSON/);
  await rejectsWith(
    loadGenericManifest(path.join(bad, "q.csv")),
    `${path.join(bad, "q.csv")} row 3: field mos: expected a number, got '1e'`,
  );
  await rejects(loadGenericManifest(path.join(bad, "none.csv")), /none\.csv: no such file/);
});

Deno.test("data check: counts, missing videos (exit 1), errors", async () => {
  const root = await layout({
    "KoNViD_1k_attributes.csv": "flickr_id,MOS\n1,3\n2,4\n",
    "KoNViD_1k_videos/1.mp4": "",
  });
  const said: string[] = [];
  const log = console.log;
  const err = console.error;
  console.log = (...a: unknown[]) => said.push(a.join(" "));
  console.error = (...a: unknown[]) => said.push(a.join(" "));
  try {
    equal(await dataCommand(["check", "--format", "konvid", "--root", root]), 1);
    ok(said.some((l) => l === "1 videos with labels, 1 missing"), said.join("\n"));
    ok(said.some((l) => l.startsWith("missing: ") && l.endsWith("2.mp4")), said.join("\n"));
    await Deno.writeTextFile(path.join(root, "KoNViD_1k_videos", "2.mp4"), "");
    equal(await dataCommand(["check", "--format", "konvid", "--root", root]), 0);
    equal(await dataCommand(["check", "--format", "bogus", "--root", root]), 2);
    equal(await dataCommand(["check", "--format", "konvid"]), 2);
    await Deno.writeTextFile(path.join(root, "KoNViD_1k_attributes.csv"), "flickr_id,MOS\n1,x\n");
    said.length = 0;
    equal(await dataCommand(["check", "--format", "konvid", "--root", root]), 1);
    ok(
      said.includes(
        `${
          path.join(root, "KoNViD_1k_attributes.csv")
        } row 2: field MOS: expected a number, got 'x'`,
      ),
    );
  } finally {
    console.log = log;
    console.error = err;
  }
});

Deno.test({
  name: "cleanup",
  fn: async () => {
    for (const d of tmpDirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  },
});
