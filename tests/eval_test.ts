// `deno task eval` end to end on a tiny proxy dataset (3 videos, 3 frames, 64x64 as the victims
// read them): rows and tables, R and the MSU robustness score against hand computation, the
// random control against FGSM, the skipped stqa-net for a victim without a generator, the round
// trip, shards + merge against a single run, resume after an interrupted write, bad options,
// and each attack boxed by its own JND model.

import assert from "assert";
import { join } from "path";
import { saveGenerator, StqaNet } from "../mod.ts";
import { fgsm } from "../src/attack/baselines/fgsm.ts";
import { randomAttack } from "../src/attack/baselines/random.ts";
import { stqaAttack } from "../src/attack/stqa.ts";
import type { Attack } from "../src/attack/types.ts";
import { evalCommand } from "../src/cli/eval.ts";
import { evaluateVideo } from "../src/eval/evaluate.ts";
import { computeJnd, type JndModel } from "../src/jnd/mod.ts";
import { loadGenerator } from "../src/models/generator_io.ts";
import { loadVictim, readVictimClip } from "../src/models/victims/mod.ts";
import { noGrad, type Tensor, tidy } from "../src/tensor/tensor.ts";
import { krcc, srcc } from "../src/metrics/correlation.ts";
import {
  buildTable,
  type EvalRow,
  labelMedian,
  msuRobustness,
  type TableRow,
  zhangR,
} from "../src/eval/robustness.ts";
import { parsePsnrStats, parseSsimYStats } from "../src/eval/roundtrip.ts";
import { readRows } from "../src/eval/rows.ts";
import { readExamples } from "../src/eval/examples.ts";
import { buildTinyProxy, initGpu } from "./_helpers.ts";

await initGpu();

const root = await Deno.makeTempDir({ prefix: "stqa_eval_" });
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(root, { recursive: true });
  } catch { /* gone */ }
});

await buildTinyProxy(join(root, "data"));
const MANIFEST = join(root, "data", "manifest.json");
const GEN_DIR = join(root, "gen");

/** Saves a tiny random generator against vsfa-mini as `<dir>/<name>`. */
async function saveTinyGenerator(
  dir: string,
  name: string,
  seed: number,
  variant: "untargeted" | "two-branch" | "signed" = "untargeted",
  jnd: JndModel = "namm-st",
) {
  const net = new StqaNet({
    seed,
    config: { encoder: [2, 3, 4], hidden: 3, decoder: [3, 2], variant },
  });
  await saveGenerator(net, join(dir, name), {
    victim: "vsfa-mini",
    victimFamily: "vsfa-mini",
    jnd,
    eps: 1,
    qMin: 1,
    qMax: 5,
    median: 3,
  });
  net.dispose();
}
await saveTinyGenerator(GEN_DIR, "stqa-vsfa-mini", 3);

const COMMON = [
  "--dataset",
  MANIFEST,
  "--split",
  "all",
  "--max-videos",
  "3",
  "--generator-dir",
  GEN_DIR,
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

const TIMING = new Set(["secondsPerVideo", "framesPerSecond"]);
function withoutTiming(t: TableRow[]): Record<string, unknown>[] {
  return t.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !TIMING.has(k))));
}
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

// One full run, shared by the first tests: two victims, three methods (stqa-net only for
// vsfa-mini, which has a generator in GEN_DIR).
const single = join(root, "single");
const singleRun = await capture(() =>
  evalCommand([
    ...COMMON,
    "--victims",
    "vsfa-mini,simplevqa-mini",
    "--methods",
    "random,fgsm,stqa-net",
    "--out",
    single,
  ])
);

Deno.test("eval: a run writes every row and the tables; stqa-net skipped without a generator", async () => {
  assert.equal(singleRun.code, 0, singleRun.err);
  const rows = await readRows(single);
  assert.equal(rows.length, 3 * 3 + 3 * 2);
  assert.equal(
    rows.filter((r) => r.method === "stqa-net" && r.victim === "simplevqa-mini").length,
    0,
  );
  const warnings = singleRun.err.split("\n").filter((l) =>
    /skipping stqa-net for simplevqa-mini/.test(l)
  );
  assert.equal(warnings.length, 1, singleRun.err);
  for (const f of ["table.csv", "table.json", "table.md", "rows.jsonl"]) {
    assert.ok((await Deno.stat(join(single, f))).size > 0, f);
  }
  const json = JSON.parse(await Deno.readTextFile(join(single, "table.json")));
  assert.deepEqual(json.table.map((t: TableRow) => `${t.victim}/${t.method}`), [
    "vsfa-mini/random",
    "vsfa-mini/fgsm",
    "vsfa-mini/stqa-net",
    "simplevqa-mini/random",
    "simplevqa-mini/fgsm",
  ]);
  const csv = (await Deno.readTextFile(join(single, "table.csv"))).trim().split("\n");
  assert.equal(csv.length, 6);
  assert.match(csv[0], /^victim,method,videos,labelled,srccBefore/);
  // Every victim reads the clips at 64x64, 3 frames (the dataset has 3).
  for (const r of rows) assert.deepEqual([r.frames, r.width, r.height], [3, 64, 64]);
});

Deno.test("eval: R and the robustness score match hand computation; JND box holds", async () => {
  const rows = await readRows(single);
  const labels = rows.filter((r) => r.victim === "vsfa-mini" && r.method === "random")
    .map((r) => r.label!);
  const sorted = [...labels].sort((a, b) => a - b);
  assert.equal(rows[0].median, sorted[1]); // 3 labels: the middle one
  assert.equal(labelMedian(labels, { qMin: 1, qMax: 5 }), sorted[1]);
  for (const r of rows) {
    const b = r.cleanScore > r.median ? r.qMin : r.qMax;
    const R = Math.log(Math.abs(r.cleanScore - b) / (Math.abs(r.advScore - r.cleanScore) + 1e-12));
    assert.ok(Math.abs(r.r! - R) < 1e-12, `${r.r} vs ${R}`);
    const s = (r.cleanScore - 1) / 4, s2 = (r.advScore - 1) / 4;
    const rob = Math.log10(Math.max(1 - s, s) / (Math.abs(s - s2) + 1e-6));
    assert.ok(Math.abs(r.robustness! - rob) < 1e-12, `${r.robustness} vs ${rob}`);
    assert.equal(r.absChange, Math.abs(r.advScore - r.cleanScore));
    assert.equal(r.beyondJnd, 0, `${r.method}: JND-box methods stay in the box after quantising`);
    assert.equal(r.settings?.jnd, "namm-st", `${r.method}: the bundled models' JND model`);
    assert.ok(r.meanAbsLevels > 0 || r.method === "stqa-net", `${r.method} |d| ${r.meanAbsLevels}`);
  }
  // Hand values of the helpers.
  assert.ok(Math.abs(zhangR(4, 3, { qMin: 1, qMax: 5, median: 3 }) - Math.log(3)) < 1e-9);
  assert.ok(Math.abs(zhangR(2, 2.5, { qMin: 1, qMax: 5, median: 3 }) - Math.log(6)) < 1e-9);
  assert.ok(
    Math.abs(msuRobustness(4, 3, { qMin: 1, qMax: 5 }) - Math.log10(0.75 / 0.250001)) < 1e-9,
  );
  assert.ok(Math.abs(msuRobustness(2, 2, { qMin: 1, qMax: 5 }) - Math.log10(0.75 / 1e-6)) < 1e-9);
  assert.equal(labelMedian([], { qMin: 0, qMax: 100 }), 50);
  // A clean score exactly on the boundary (here qMax with a median of qMax: the proxy's pristine
  // clips are labelled 5) has no finite R: the row stores null and the table's mean skips it.
  assert.equal(zhangR(5, 4, { qMin: 1, qMax: 5, median: 5 }), -Infinity);
  const g = rows.filter((r) => r.victim === "vsfa-mini" && r.method === "fgsm");
  const edited = g.map((r, k) => ({ ...r, r: k === 0 ? null : r.r }));
  assert.ok(Math.abs(buildTable(edited)[0].meanR! - (g[1].r! + g[2].r!) / 2) < 1e-12);
  assert.equal(buildTable([{ ...g[0], r: null }])[0].meanR, null);
  assert.equal(labelMedian([4, 1, 3, 2], { qMin: 1, qMax: 5 }), 2.5);
});

Deno.test("eval: table numbers equal a recomputation from the rows", async () => {
  const rows = await readRows(single);
  const table: TableRow[] = JSON.parse(await Deno.readTextFile(join(single, "table.json"))).table;
  for (const t of table) {
    const g = rows.filter((r) => r.victim === t.victim && r.method === t.method)
      .sort((a, b) => a.index - b.index);
    const labels = g.map((r) => r.label!);
    assert.equal(t.videos, 3);
    assert.equal(t.labelled, 3);
    const close = (a: number | null, b: number, what: string) =>
      assert.ok(
        a !== null && Math.abs(a - b) < 1e-9,
        `${t.victim}/${t.method} ${what}: ${a} vs ${b}`,
      );
    close(t.before.srcc, srcc(g.map((r) => r.cleanScore), labels), "srcc before");
    close(t.after.srcc, srcc(g.map((r) => r.advScore), labels), "srcc after");
    close(t.after.krcc, krcc(g.map((r) => r.advScore), labels), "krcc after");
    close(t.srccRoundTrip, srcc(g.map((r) => r.rtScore), labels), "srcc round trip");
    close(t.meanAbsChange, mean(g.map((r) => Math.abs(r.advScore - r.cleanScore))), "abs change");
    close(t.meanRelChange, mean(g.map((r) => r.absChange / Math.abs(r.cleanScore))), "rel change");
    close(t.meanR, mean(g.map((r) => r.r!)), "R");
    close(t.meanRobustness, mean(g.map((r) => r.robustness!)), "robustness");
    close(t.ssim, mean(g.map((r) => r.ssim)), "ssim");
    close(t.psnr, mean(g.map((r) => r.psnr!)), "psnr");
    close(t.psnrRoundTrip, mean(g.map((r) => r.rtPsnr!)), "psnr round trip");
    close(t.beyondJnd, mean(g.map((r) => r.beyondJnd)), "beyond JND");
    close(t.secondsPerVideo, mean(g.map((r) => r.seconds)), "seconds");
    close(
      t.meanAbsChangeRoundTrip,
      mean(g.map((r) => Math.abs(r.rtScore - r.cleanRtScore))),
      "abs change round trip",
    );
    // Structure: every row carries it; medians with null as +Infinity, and the share meeting
    // all three targets.
    const median = (v: (number | null | undefined)[]) => {
      assert.ok(v.every((x) => x !== undefined), `${t.victim}/${t.method}: structure fields`);
      const s = v.map((x) => x ?? Infinity).sort((a, b) => a - b);
      return s[1]; // three videos
    };
    const st = t.structure!;
    assert.equal(st.videos, 3);
    for (
      const [got, k] of [
        [st.direction, "structureDirection"],
        [st.phase, "structurePhase"],
        [st.line, "structureLine"],
        [st.noiseDirection, "noiseDirection"],
        [st.noisePhase, "noisePhase"],
        [st.noiseLine, "noiseLine"],
      ] as const
    ) {
      const want = median(g.map((r) => r[k]));
      assert.equal(got, Number.isFinite(want) ? want : null, `${t.victim}/${t.method} ${k}`);
    }
    assert.equal(st.okShare, g.filter((r) => r.structureOk).length / 3);
  }
  // The numbers do not depend on the rows' order (victims are listed in order of appearance).
  const byKey = (t: TableRow[]) =>
    [...t].sort((a, b) => `${a.victim}/${a.method}` < `${b.victim}/${b.method}` ? -1 : 1);
  assert.deepEqual(byKey(buildTable([...rows].reverse())), byKey(buildTable(rows)));
});

Deno.test("eval: the random control changes scores less than FGSM; round trip measured", async () => {
  const rows = await readRows(single);
  for (const victim of ["vsfa-mini", "simplevqa-mini"]) {
    const change = (m: string) =>
      mean(rows.filter((r) => r.victim === victim && r.method === m).map((r) => r.absChange));
    assert.ok(
      change("random") < change("fgsm"),
      `${victim}: random ${change("random")} fgsm ${change("fgsm")}`,
    );
  }
  for (const r of rows) {
    assert.ok(
      r.rtPsnr !== null && Number.isFinite(r.rtPsnr) && r.rtPsnr > 20,
      `rtPsnr ${r.rtPsnr}`,
    );
    assert.ok(r.rtSsim > 0.5 && r.rtSsim <= 1, `rtSsim ${r.rtSsim}`);
    assert.ok(Number.isFinite(r.rtScore) && Number.isFinite(r.cleanRtScore));
    assert.ok(r.psnr !== null && r.psnr > 20 && r.ssim > 0.5);
  }
  // The stats parsers.
  assert.ok(
    Math.abs(parsePsnrStats("n:1 mse_avg:1 mse_y:1.5\nn:2 mse_avg:1 mse_y:0.5\n", 2) - 48.1308) <
      1e-3,
  );
  assert.equal(parsePsnrStats("n:1 mse_avg:0 mse_y:0\n", 1), Infinity);
  assert.throws(() => parsePsnrStats("n:1 mse_y:1\n", 2), /compared 1 frames, expected 2/);
  assert.ok(Math.abs(parseSsimYStats("n:1 Y:0.9 U:1\nn:2 Y:0.8 U:1\n", 2) - 0.85) < 1e-12);
});

Deno.test("eval: shards + merge equal a single run; a rerun resumes after an interrupted write", async () => {
  const out = join(root, "shards");
  const args = [
    ...COMMON,
    "--victims",
    "vsfa-mini",
    "--methods",
    "random,fgsm,stqa-net",
    "--out",
    out,
  ];
  for (const shard of ["0/2", "1/2"]) {
    const r = await capture(() => evalCommand([...args, "--shard", shard]));
    assert.equal(r.code, 0, r.err);
  }
  const files = [...Deno.readDirSync(out)].map((e) => e.name).filter((n) => n.endsWith(".jsonl"))
    .sort();
  assert.deepEqual(files, ["rows-0-of-2.jsonl", "rows-1-of-2.jsonl"]);
  assert.equal((await readRows(join(out), { only: join(out, files[0]) })).length, 2 * 3);
  const m = await capture(() => evalCommand(["merge", "--out", out]));
  assert.equal(m.code, 0, m.err);
  const merged: TableRow[] = JSON.parse(await Deno.readTextFile(join(out, "table.json"))).table;
  const want = buildTable((await readRows(single)).filter((r) => r.victim === "vsfa-mini"));
  assert.deepEqual(withoutTiming(merged), withoutTiming(want));

  // Interrupt shard 0: drop its last row and leave half a line; the rerun adds back exactly the
  // missing row (same numbers), and a second rerun adds nothing.
  const file = join(out, "rows-0-of-2.jsonl");
  const before = (await Deno.readTextFile(file)).trim().split("\n");
  const kept = before.slice(0, -1);
  await Deno.writeTextFile(file, kept.join("\n") + "\n" + before.at(-1)!.slice(0, 40));
  const again = await capture(() => evalCommand([...args, "--shard", "0/2"]));
  assert.equal(again.code, 0, again.err);
  assert.match(again.err, /dropping an unfinished last line/);
  assert.match(again.err, /1 new row\(s\)/);
  const after = (await Deno.readTextFile(file)).trim().split("\n");
  assert.deepEqual(after.slice(0, -1), kept);
  const strip = (s: string) => {
    const { seconds: _s, ...rest } = JSON.parse(s) as EvalRow;
    return rest;
  };
  assert.deepEqual(strip(after.at(-1)!), strip(before.at(-1)!));
  const third = await capture(() => evalCommand([...args, "--shard", "0/2"]));
  assert.equal(third.code, 0, third.err);
  assert.match(third.err, /0 new row\(s\)/);
  assert.equal(await Deno.readTextFile(file), after.join("\n") + "\n");
});

Deno.test("eval: --cross scores one victim's generator with the others; report.html and the upload and cross-victim tables", async () => {
  const out = join(root, "cross");
  const r = await capture(() =>
    evalCommand([
      ...COMMON,
      "--victims",
      "vsfa-mini,simplevqa-mini",
      "--methods",
      "stqa-net",
      "--cross",
      "--out",
      out,
    ])
  );
  assert.equal(r.code, 0, r.err);
  // Only vsfa-mini has a generator in GEN_DIR: stqa-net for vsfa-mini and stqa-net@vsfa-mini
  // for simplevqa-mini; the other two are skipped with a warning each.
  assert.match(r.err, /skipping stqa-net for simplevqa-mini/);
  assert.match(r.err, /skipping stqa-net@simplevqa-mini for vsfa-mini/);
  const rows = await readRows(out);
  const own = rows.filter((x) => x.victim === "vsfa-mini" && x.method === "stqa-net");
  const cross = rows.filter((x) =>
    x.victim === "simplevqa-mini" && x.method === "stqa-net@vsfa-mini"
  );
  assert.equal(rows.length, 6);
  assert.equal(own.length, 3);
  assert.equal(cross.length, 3);
  // Both victims read the same 64x64 frames, so the generator's perturbation is the same: only
  // the scoring victim differs.
  for (const c of cross) {
    const o = own.find((x) => x.video === c.video)!;
    assert.equal(c.psnr, o.psnr);
    assert.equal(c.meanAbsLevels, o.meanAbsLevels);
    assert.notEqual(c.cleanScore, o.cleanScore);
    assert.equal(c.victimPasses, 0);
    assert.equal(c.beyondJnd, 0, "cross-victim generators stay in the JND box after quantising");
  }
  const md = await Deno.readTextFile(join(out, "table.md"));
  assert.match(md, /## After an upload \(x264-420, crf 23\)/);
  assert.match(md, /\| stqa-vsfa-mini \| .* -> .* \| .* -> .* \|/);
  const html = await Deno.readTextFile(join(out, "report.html"));
  for (const id of ["eval-table", "upload-table", "cross-table", "chart-change"]) {
    assert.ok(html.includes(`id="${id}"`), id);
  }
  const table: TableRow[] = JSON.parse(await Deno.readTextFile(join(out, "table.json"))).table;
  assert.deepEqual(table.map((t) => `${t.victim}/${t.method}`), [
    "vsfa-mini/stqa-net",
    "simplevqa-mini/stqa-net@vsfa-mini",
  ]);
  const t = table[1];
  close(t.srccCleanRoundTrip, srcc(cross.map((x) => x.cleanRtScore), cross.map((x) => x.label!)));

  // Examples: the first video per victim, frames 0, 1, 2 of 3; a rerun that adds a method merges
  // its column into the example and keeps the earlier ones as they were.
  const first = await readExamples(out);
  assert.deepEqual(first.map((e) => `${e.index}/${e.victim}/${e.methods}`), [
    "0/simplevqa-mini/stqa-net@vsfa-mini",
    "0/vsfa-mini/stqa-net",
  ]);
  const ex = first[1];
  assert.deepEqual(ex.panels.map((p) => p.frame), [0, 1, 2]);
  assert.equal(ex.scores.clean, own[0].cleanScore);
  assert.equal(ex.scores.methods[0], own[0].advScore);
  assert.ok(ex.frameScores !== null, "vsfa-mini has per-frame scores");
  assert.ok(html.includes('id="examples"'));
  const again = await capture(() =>
    evalCommand([...COMMON, "--victims", "vsfa-mini", "--methods", "random", "--out", out])
  );
  assert.equal(again.code, 0, again.err);
  const merged = (await readExamples(out)).find((e) => e.victim === "vsfa-mini")!;
  assert.deepEqual(merged.methods, ["stqa-net", "random"]);
  assert.deepEqual(merged.panels.map((p) => p.attacks[0]), ex.panels.map((p) => p.attacks[0]));
  assert.equal(merged.scores.methods[0], ex.scores.methods[0]);
  assert.equal(merged.frameScores!.methods.length, 2);
});

Deno.test("eval: stqa-net-signed picks its direction with one victim pass and stays in the JND box", async () => {
  const dir = join(root, "gen-signed");
  await saveTinyGenerator(dir, "stqa-vsfa-mini-signed", 4, "signed");
  const out = join(root, "two-branch");
  const args = [...COMMON, "--generator-dir", dir, "--victims", "vsfa-mini", "--out", out];
  const r = await capture(() => evalCommand([...args, "--methods", "stqa-net-signed"]));
  assert.equal(r.code, 0, r.err);
  const rows = await readRows(out);
  assert.equal(rows.length, 3);
  for (const x of rows) {
    assert.equal(x.method, "stqa-net-signed");
    assert.equal(x.victimPasses, 1);
    assert.equal(x.beyondJnd, 0);
    assert.ok(x.meanAbsLevels > 0);
  }
  // Without a signed generator in the folder (GEN_DIR holds only an untargeted stqa-vsfa-mini),
  // the method is skipped with a warning.
  const wrong = await capture(() =>
    evalCommand([
      ...COMMON,
      "--victims",
      "vsfa-mini",
      "--methods",
      "stqa-net-signed",
      "--out",
      join(root, "signed-missing"),
    ])
  );
  assert.equal(wrong.code, 0, wrong.err);
  assert.match(wrong.err, /skipping stqa-net-signed for vsfa-mini/);
});

Deno.test("eval: --native decodes at the video's own size, not the victim's, and records it", async () => {
  const out = join(root, "native");
  const r = await capture(() =>
    evalCommand([
      ...COMMON,
      "--max-videos",
      "1",
      "--victims",
      "vsfa-mini",
      "--methods",
      "random,fgsm",
      "--native",
      "--out",
      out,
    ])
  );
  assert.equal(r.code, 0, r.err);
  const rows = await readRows(out);
  assert.equal(rows.length, 2);
  // The tiny proxy's clips are 32x32; without --native vsfa-mini reads them at its 64x64.
  for (const x of rows) {
    assert.deepEqual([x.frames, x.width, x.height], [3, 32, 32]);
    assert.equal(x.settings?.methodOptions.native, true);
    assert.equal(x.beyondJnd, 0);
  }
});

function close(a: number | null, b: number) {
  assert.ok(a !== null && Math.abs(a - b) < 1e-9, `${a} vs ${b}`);
}

Deno.test("eval: bad options exit 2 naming the option; a missing dataset fails clearly", async () => {
  const cases: [string[], RegExp][] = [
    [["--methods", "random,bogus"], /--methods/],
    [["--methods", "stqa-net@"], /--methods/],
    [["--shard", "2/2"], /--shard/],
    [["--shard", "x"], /--shard/],
    [["--eps", "-1"], /--eps/],
    [["--max-videos", "0"], /--max-videos/],
    [["--victims", ""], /--victims/],
    [["--frobnicate"], /frobnicate/],
    [["--frames", "0"], /--frames/],
    [["--frames", "some"], /--frames/],
    [["--window", "0"], /--window/],
    [["--window", "1.5"], /--window/],
    [["--mode", "sideways"], /--mode/],
  ];
  for (const [args, re] of cases) {
    const r = await capture(() => evalCommand(args));
    assert.equal(r.code, 2, `${args}: ${r.err}`);
    assert.match(r.err.split("\n\n")[0], re);
  }
  const missing = join(root, "nope", "manifest.json");
  const r = await capture(() => evalCommand(["--dataset", missing, "--out", join(root, "x")]));
  assert.equal(r.code, 1);
  assert.match(r.err, /nope\/manifest\.json: no such file or folder/);
  // No proxy dataset built (relative to the working folder): the message says how to build it.
  const cwd = Deno.cwd();
  Deno.chdir(root);
  try {
    const p = await capture(() => evalCommand(["--dataset", "proxy", "--out", join(root, "y")]));
    assert.equal(p.code, 1);
    assert.match(p.err, /proxy dataset is not built .*deno task data/);
  } finally {
    Deno.chdir(cwd);
  }
  const k = await capture(() => evalCommand(["--dataset", `konvid:${join(root, "nope")}`]));
  assert.equal(k.code, 1);
  assert.match(k.err, /nope/);
  const merge = await capture(() => evalCommand(["merge", "--out", join(root, "empty")]));
  assert.equal(merge.code, 1);
  assert.match(merge.err, /no rows\*\.jsonl/);
});

Deno.test("eval: each attack is boxed by its own JND model's maps (a chou-li generator by chou-li), one map per model", async () => {
  const manifest = JSON.parse(await Deno.readTextFile(MANIFEST));
  const clip = join(root, "data", manifest.clips[0].path);
  const dir = join(root, "gen-chou-li");
  await saveTinyGenerator(dir, "stqa-vsfa-mini", 5, "untargeted", "chou-li");
  const generator = await loadGenerator(join(dir, "stqa-vsfa-mini"));
  const victim = await loadVictim("vsfa-mini");
  const work = await Deno.makeTempDir({ dir: root, prefix: "box_" });
  // Each attack, as the eval runs it, records the maps it was given.
  const given: { name: string; jnd: Tensor; values: Float32Array }[] = [];
  const spy = (a: Attack): Attack => ({
    name: a.name,
    jndBox: a.jndBox,
    jndModel: a.jndModel,
    async run(frames, v, o) {
      given.push({ name: a.name, jnd: o.jnd, values: await o.jnd.read() });
      return await a.run(frames, v, o);
    },
  });
  const rows: EvalRow[] = [];
  try {
    await evaluateVideo(
      { path: clip, name: "a", index: 0, label: null },
      victim,
      [spy(randomAttack), spy(stqaAttack(generator)), spy(fgsm)],
      {
        median: 3,
        workDir: work,
        onRow: (r) => void rows.push(r),
        settings: () => ({
          dataset: MANIFEST,
          split: null,
          videoPath: clip,
          jnd: "namm-st",
          victim: { weights: "0".repeat(64), config: "1".repeat(64) },
          generator: null,
          methodOptions: {},
        }),
      },
    );
    const frames = await readVictimClip(victim, clip);
    const mapsOf = async (model: JndModel) => {
      const j = tidy(() => noGrad(() => computeJnd(frames, { model })));
      const v = await j.read();
      j.dispose();
      return v;
    };
    const chouLi = await mapsOf("chou-li"), nammSt = await mapsOf("namm-st");
    frames.dispose();
    // The first value where two maps differ, or -1.
    const firstDiff = (a: Float32Array, b: Float32Array) =>
      a.length !== b.length ? 0 : a.findIndex((v, i) => v !== b[i]);
    assert.notEqual(firstDiff(chouLi, nammSt), -1, "the two models must differ on this clip");
    assert.deepEqual(given.map((g) => g.name), ["random", "stqa-net", "fgsm"]);
    assert.equal(generator.info.jnd, "chou-li");
    const gen = firstDiff(given[1].values, chouLi);
    assert.equal(gen, -1, `the generator got other maps than chou-li's (value ${gen} differs)`);
    const base = firstDiff(given[0].values, nammSt);
    assert.equal(base, -1, `random got other maps than namm-st's (value ${base} differs)`);
    assert.equal(given[0].jnd, given[2].jnd, "one map per model per clip");
    assert.deepEqual(rows.map((r) => [r.method, r.settings?.jnd]), [
      ["random", "namm-st"],
      ["stqa-net", "chou-li"],
      ["fgsm", "namm-st"],
    ]);
    // Quantised inside its own box, and measured against it.
    for (const r of rows) assert.equal(r.beyondJnd, 0, r.method);
  } finally {
    generator.net.dispose();
    victim.dispose();
  }
});

Deno.test("eval: a rerun resumes the rows of a generator with its own JND model; another one is refused", async () => {
  const dir = join(root, "gen-chou-li-cli");
  await saveTinyGenerator(dir, "stqa-vsfa-mini", 6, "untargeted", "chou-li");
  const out = join(root, "chou-li");
  const args = [...COMMON, "--victims", "vsfa-mini", "--methods", "random,stqa-net", "--out", out];
  const first = await capture(() => evalCommand([...args, "--generator-dir", dir]));
  assert.equal(first.code, 0, first.err);
  const rows = await readRows(out);
  assert.deepEqual(
    [...new Set(rows.map((r) => `${r.method}:${r.settings?.jnd}`))],
    ["random:namm-st", "stqa-net:chou-li"],
  );
  const again = await capture(() => evalCommand([...args, "--generator-dir", dir]));
  assert.equal(again.code, 0, again.err);
  assert.match(again.err, /0 new row\(s\)/);
  // GEN_DIR's generator uses namm-st: the rows of the chou-li one are not mixed with it.
  const other = await capture(() => evalCommand(args));
  assert.equal(other.code, 1);
  assert.match(
    other.err,
    /JND model chou-li for stqa-net against vsfa-mini, this run asks for JND model namm-st/,
  );
});
