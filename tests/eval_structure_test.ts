// Structure statistics in `deno task eval` (issue #15): a row's figures, luma and chroma, against
// `perturbationStructure` of the whole clip's 8-bit frames, computed here from the frames an
// attack stub gave (quantised here, independently; the chroma planes reduced to the worse one
// here), whether the eval took the clip whole or in windows of 2 or 4 frames; the table's medians
// (null = +Infinity) and shares against numbers worked out by hand (table.csv, table.md,
// report.html); rows written before the fields existed still load.

import assert from "assert";
import { join } from "path";
import type { Attack } from "../src/attack/types.ts";
import { evaluateVideo } from "../src/eval/evaluate.ts";
import {
  buildTable,
  type EvalRow,
  EvalRowSchema,
  medianRatio,
  TABLE_COLUMNS,
  tableCsv,
  tableMarkdown,
} from "../src/eval/robustness.ts";
import { readRows } from "../src/eval/rows.ts";
import { evalReportHtml } from "../src/report/eval_html.ts";
import { perturbationStructure, type StructureStats } from "../src/metrics/structure.ts";
import { loadVictim } from "../src/models/victims/mod.ts";
import { tensor } from "../src/tensor/tensor.ts";
import { initGpu } from "./_helpers.ts";
import { tempDirs } from "./_attack_fixtures.ts";

await initGpu();

const root = await tempDirs("stqa_eval_structure_")();

/** A moving test pattern, `frames` frames of `size` x `size`, lossless. */
async function makeClip(file: string, size: number, frames: number): Promise<string> {
  const r = await new Deno.Command("ffmpeg", {
    args: [
      ...["-v", "error", "-f", "lavfi", "-i", `testsrc2=size=${size}x${size}:rate=25`],
      ...["-frames:v", String(frames), "-c:v", "ffv1", "-y", file],
    ],
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  return file;
}

const CLIP = await makeClip(join(root, "clip.mkv"), 40, 6);

/**
 * An attack that adds `stripe` levels on every fourth column (of every channel, or of red only)
 * plus uniform noise of +-`noise` levels (its own generator, carried from call to call, so that
 * the frames do not depend on the windows), and records the clean and adversarial frames it was
 * given and gave.
 */
function stubAttack(name: string, stripe: number, noise: number, seed: number, redOnly = false) {
  let state = seed >>> 0;
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const clean: Float32Array[] = [];
  const adv: Float32Array[] = [];
  const attack: Attack = {
    name,
    jndBox: false,
    usesCleanScore: false,
    async run(frames) {
      const x = await frames.read();
      const [, , h, w] = frames.shape;
      const striped = (i: number) =>
        (i % w) % 4 === 0 && (!redOnly || Math.floor(i / (h * w)) % 3 === 0);
      const a = x.map((v, i) =>
        v + (striped(i) ? stripe / 255 : 0) + ((2 * uniform() - 1) * noise) / 255
      );
      clean.push(x);
      adv.push(a);
      return { adversarial: tensor(a, [...frames.shape]), victimPasses: 0, seconds: 0 };
    },
  };
  return { attack, clean, adv };
}

const concat = (parts: Float32Array[]) => {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

/**
 * The worse of the Cb and Cr statistics as the rows define it: direction the one further from 1
 * (larger max(r, 1/r); null, infinite, and 0 furthest), phase and line the larger (null: infinite);
 * Cb on a tie.
 */
function worseChroma(cb: StructureStats, cr: StructureStats) {
  const off = (r: number | null) => (r === null || r === 0 ? Infinity : Math.max(r, 1 / r));
  const big = (r: number | null) => r ?? Infinity;
  return {
    direction: off(cr.direction.ratio) > off(cb.direction.ratio)
      ? cr.direction.ratio
      : cb.direction.ratio,
    phase: big(cr.phase.ratio) > big(cb.phase.ratio) ? cr.phase.ratio : cb.phase.ratio,
    line: big(cr.line.ratio) > big(cb.line.ratio) ? cr.line.ratio : cb.line.ratio,
    ok: cb.targets.all && cr.targets.all,
  };
}

/** Rounds to the nearest 8-bit level in [0, 255] (what the eval writes for a non-box attack). */
const to8bit = (v: Float32Array) =>
  Float32Array.from(v, (x) => Math.min(255, Math.max(0, Math.round(x * 255))) / 255);

Deno.test("eval structure: a row's figures equal perturbationStructure of the whole clip's 8-bit frames, whole or in windows", async () => {
  const victim = await loadVictim("vsfa-mini");
  try {
    const h = victim.config.height!, w = victim.config.width!;
    const byWindow: EvalRow[][] = [];
    for (const window of [6, 2, 4]) {
      const stubs = [
        stubAttack("stripes", 3, 1.5, 11),
        stubAttack("noise", 0, 2, 12),
        stubAttack("red-stripes", 3, 1.5, 13, true),
      ];
      const rows: EvalRow[] = [];
      const work = await Deno.makeTempDir({ dir: root, prefix: "work_" });
      await evaluateVideo(
        { path: CLIP, name: "clip", index: 2, label: null },
        victim,
        stubs.map((s) => s.attack),
        {
          median: 3,
          workDir: work,
          frames: "all",
          window,
          seed: 5,
          onRow: (r) => void rows.push(r),
        },
      );
      assert.equal(rows.length, 3);
      for (const [k, row] of rows.entries()) {
        const what = `window ${window}, ${row.method}`;
        const s = stubs[k];
        assert.equal(s.clean.length, Math.ceil(6 / window), `${what}: one call per window`);
        assert.equal(row.seed, 7, `${what}: the row's seed (5 + video index 2)`);
        const clean = concat(s.clean);
        const adv = to8bit(concat(s.adv));
        const ref = perturbationStructure(clean, adv, [6, 3, h, w], { seed: row.seed });
        // The same float64 sums, frame by frame, in the same order: exactly equal.
        assert.equal(row.structureDirection, ref.structure.direction.ratio, `${what}: direction`);
        assert.equal(row.structurePhase, ref.structure.phase.ratio, `${what}: phase`);
        assert.equal(row.structureLine, ref.structure.line.ratio, `${what}: line`);
        assert.equal(row.noiseDirection, ref.structureNoise.direction.ratio, `${what}: noise dir`);
        assert.equal(row.noisePhase, ref.structureNoise.phase.ratio, `${what}: noise phase`);
        assert.equal(row.noiseLine, ref.structureNoise.line.ratio, `${what}: noise line`);
        assert.equal(row.structureOk, ref.structure.targets.all, `${what}: ok`);
        const chroma = worseChroma(ref.chroma.cb, ref.chroma.cr);
        assert.deepEqual(
          [row.chromaDirection, row.chromaPhase, row.chromaLine, row.chromaOk],
          [chroma.direction, chroma.phase, chroma.line, chroma.ok],
          `${what}: chroma`,
        );
        EvalRowSchema.parse(row);
      }
      byWindow.push(rows);
    }
    // The stripes break the phase target, and their figures are not the noise reference's.
    const stripes = byWindow[0][0];
    assert.equal(stripes.structureOk, false);
    assert.ok(stripes.structurePhase === null || stripes.structurePhase! > 1.25);
    assert.ok(stripes.structurePhase !== stripes.noisePhase);
    assert.ok(byWindow[0][1].structurePhase !== stripes.structurePhase);
    // Stripes on red only show in chroma, more than grey ones (the same levels on R, G and B,
    // which reach the chroma only where a channel clips at 0 or 255).
    const red = byWindow[0][2];
    assert.ok(red.chromaPhase === null || red.chromaPhase! > 1.25, `red ${red.chromaPhase}`);
    assert.ok(
      (red.chromaPhase ?? Infinity) > stripes.chromaPhase! + 0.5,
      `red stripes' chroma phase ${red.chromaPhase}, grey ones' ${stripes.chromaPhase}`,
    );
    assert.equal(red.chromaOk, false);
    // Windows do not change the figures (the stub's frames do not depend on them).
    const fields = [
      "structureDirection",
      "structurePhase",
      "structureLine",
      "noiseDirection",
      "noisePhase",
      "noiseLine",
      "structureOk",
      "chromaDirection",
      "chromaPhase",
      "chromaLine",
      "chromaOk",
    ] as const;
    for (const rows of byWindow.slice(1)) {
      for (const [k, row] of rows.entries()) {
        for (const f of fields) assert.equal(row[f], byWindow[0][k][f], `${row.method} ${f}`);
      }
    }
  } finally {
    victim.dispose();
  }
});

/**
 * A complete row; `structure` gives the seven structure fields, or none (an older row); `chroma`
 * the four chroma fields, or none (a row from before chroma).
 */
function row(
  video: number,
  method: string,
  structure?: [number | null, number | null, number | null, number | null, boolean],
  chroma?: [number | null, number | null, number | null, boolean],
): EvalRow {
  const base: EvalRow = {
    video: `v${video}`,
    index: video,
    label: 1 + video,
    victim: "vsfa-mini",
    method,
    frames: 4,
    width: 64,
    height: 64,
    qMin: 1,
    qMax: 5,
    median: 3,
    cleanScore: 3.5,
    advScore: 3,
    absChange: 0.5,
    relChange: 0.5 / 3.5,
    r: 0,
    robustness: 1,
    psnr: 45,
    ssim: 0.99,
    beyondJnd: 0,
    meanAbsLevels: 1,
    seconds: 1,
    victimPasses: 1,
    rtPsnr: 40,
    rtSsim: 0.98,
    rtScore: 3.1,
    cleanRtScore: 3.4,
    eps: 1,
    seed: 1 + video,
  };
  if (!structure) return base;
  const [dir, phase, line, noiseLine, ok] = structure;
  const withChroma = chroma
    ? {
      chromaDirection: chroma[0],
      chromaPhase: chroma[1],
      chromaLine: chroma[2],
      chromaOk: chroma[3],
    }
    : {};
  return {
    ...base,
    ...withChroma,
    structureDirection: dir,
    structurePhase: phase,
    structureLine: line,
    noiseDirection: 1 + video / 100,
    noisePhase: 1.1,
    noiseLine: noiseLine,
    structureOk: ok,
  };
}

Deno.test("eval structure: the table's medians (null as +Infinity) and share, worked out by hand; older rows are left out of them", () => {
  const rows = [
    // fgsm: four videos with the statistics and one older row without; three of the four with
    // the chroma statistics (the fourth from before chroma).
    row(0, "fgsm", [1.0, 1.1, 5, 3, true], [1.1, 1.2, 12, true]),
    row(1, "fgsm", [2.0, null, 40, 4, false], [null, 1.4, 50, false]),
    row(2, "fgsm", [null, 1.3, 7, 5, true], [0.7, null, 20, false]),
    row(3, "fgsm", [0.5, 0.9, null, null, false]),
    row(4, "fgsm"),
    // random: three videos, the medians the middle value; line infinite in two of three (luma
    // and chroma).
    row(0, "random", [1.2, 1.0, null, 2, true], [1.0, 1.1, null, false]),
    row(1, "random", [0.8, 1.05, null, 2.5, true], [0.9, 1.0, null, false]),
    row(2, "random", [1.0, 1.2, 3, null, false], [1.05, 1.1, 4, true]),
    // ifgsm: only older rows.
    row(0, "ifgsm"),
    row(1, "ifgsm"),
  ];
  const table = buildTable([...rows].reverse());
  const line = (m: string) => table.find((t) => t.method === m)!;
  const fg = line("fgsm").structure!;
  assert.equal(line("fgsm").videos, 5);
  assert.equal(fg.videos, 4);
  // direction [0.5, 1, 2, inf]: (1 + 2) / 2; phase [0.9, 1.1, 1.3, inf]: 1.2;
  // line [5, 7, 40, inf]: 23.5; noise line [3, 4, 5, inf]: 4.5; noise dir [1, 1.01, 1.02, 1.03].
  assert.equal(fg.direction, 1.5);
  assert.ok(Math.abs(fg.phase! - 1.2) < 1e-12, `phase ${fg.phase}`);
  assert.equal(fg.line, 23.5);
  assert.equal(fg.noiseLine, 4.5);
  assert.ok(Math.abs(fg.noiseDirection! - 1.015) < 1e-12, `noise dir ${fg.noiseDirection}`);
  assert.equal(fg.noisePhase, 1.1);
  assert.equal(fg.okShare, 0.5);
  const rd = line("random").structure!;
  assert.equal(rd.videos, 3);
  assert.equal(rd.direction, 1.0);
  assert.equal(rd.phase, 1.05);
  assert.equal(rd.line, null, "two of three infinite: the median is infinite");
  assert.equal(rd.noiseLine, 2.5);
  assert.ok(Math.abs(rd.okShare - 2 / 3) < 1e-15);
  assert.equal(line("ifgsm").structure, null);
  // Chroma: fgsm direction [0.7, 1.1, inf], phase [1.2, 1.4, inf], line [12, 20, 50], one of
  // three ok; random direction [0.9, 1, 1.05], phase [1, 1.1, 1.1], line [4, inf, inf].
  assert.deepEqual(line("fgsm").chroma, {
    videos: 3,
    direction: 1.1,
    phase: 1.4,
    line: 20,
    okShare: 1 / 3,
  });
  assert.deepEqual(line("random").chroma, {
    videos: 3,
    direction: 1.0,
    phase: 1.1,
    line: null,
    okShare: 1 / 3,
  });
  assert.equal(line("ifgsm").chroma, null);

  assert.equal(medianRatio([null, null]), null);
  assert.equal(medianRatio([4]), 4);
  assert.throws(() => medianRatio([]), RangeError);

  // CSV: "inf" for an infinite median, empty cells where no row carries the statistics.
  const csv = tableCsv(table).trim().split("\n").map((l) => l.split(","));
  const col = (name: string) => TABLE_COLUMNS.indexOf(name as typeof TABLE_COLUMNS[number]);
  const csvLine = (m: string) => csv.find((c) => c[1] === m)!;
  assert.equal(csvLine("random")[col("structureLine")], "inf");
  assert.equal(csvLine("random")[col("structureVideos")], "3");
  assert.equal(csvLine("fgsm")[col("structurePhase")], String(fg.phase));
  assert.equal(csvLine("fgsm")[col("structureOkShare")], "0.5");
  assert.equal(csvLine("ifgsm")[col("structureVideos")], "0");
  assert.equal(csvLine("ifgsm")[col("structureDirection")], "");
  assert.deepEqual(
    ["chromaVideos", "chromaDirection", "chromaPhase", "chromaLine", "chromaOkShare"].map((c) =>
      csvLine("fgsm")[col(c)]
    ),
    ["3", "1.1", "1.4", "20", String(1 / 3)],
  );
  assert.equal(csvLine("random")[col("chromaLine")], "inf");
  assert.equal(csvLine("ifgsm")[col("chromaVideos")], "0");
  assert.equal(csvLine("ifgsm")[col("chromaLine")], "");
  // Markdown: the medians with the noise's in parentheses, and the share.
  const md = tableMarkdown(table).trim().split("\n");
  const head = md[0].split("|").map((c) => c.trim());
  const mdLine = (m: string) =>
    md.find((l) => l.includes(`| ${m} |`))!.split("|").map((c) => c.trim());
  assert.equal(mdLine("fgsm")[head.indexOf("phase (noise)")], "1.20 (1.10)");
  assert.equal(mdLine("fgsm")[head.indexOf("targets")], "50%");
  assert.equal(mdLine("random")[head.indexOf("line (noise)")], "inf (2.5)");
  assert.equal(mdLine("ifgsm")[head.indexOf("dir (noise)")], "-");
  // The two chroma columns, last.
  assert.deepEqual(head.slice(-3, -1), ["chroma line", "chroma ok"]);
  assert.deepEqual(mdLine("fgsm").slice(-3, -1), ["20.0", "33%"]);
  assert.deepEqual(mdLine("random").slice(-3, -1), ["inf", "33%"]);
  assert.deepEqual(mdLine("ifgsm").slice(-3, -1), ["-", "-"]);
  // report.html's table: the same cells.
  const html = /<table id="eval-table">.*?<\/table>/s.exec(evalReportHtml(table))![0];
  for (const cell of ["phase (noise)", "targets", "1.20 (1.10)", "50%", "inf (2.5)"]) {
    assert.ok(html.includes(`>${cell}<`), `report.html's table shows ${cell}`);
  }
  const htmlRows = [...html.matchAll(/<tr>(.*?)<\/tr>/gs)].map((m) =>
    [...m[1].matchAll(/<t[dh][^>]*>(.*?)<\/t[dh]>/gs)].map((c) => c[1])
  );
  assert.deepEqual(htmlRows[0].slice(-2), ["chroma line", "chroma ok"]);
  const htmlLine = (m: string) => htmlRows.find((r) => r[1] === m)!.slice(-2);
  assert.deepEqual(htmlLine("fgsm"), ["20.0", "33%"]);
  assert.deepEqual(htmlLine("random"), ["inf", "33%"]);
  assert.deepEqual(htmlLine("ifgsm"), ["-", "-"]);
});

Deno.test("eval structure: rows without the fields load (an older rows.jsonl); partial or negative ones are refused", async () => {
  const old = row(0, "fgsm");
  const fresh = row(1, "fgsm", [1, 1.1, null, 3, false]);
  assert.deepEqual(EvalRowSchema.parse(old), old);
  assert.deepEqual(EvalRowSchema.parse(fresh), fresh);
  const dir = await Deno.makeTempDir({ dir: root, prefix: "rows_" });
  await Deno.writeTextFile(
    join(dir, "rows.jsonl"),
    [old, fresh].map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
  const read = await readRows(dir);
  assert.deepEqual(read, [old, fresh]);
  assert.equal(read[0].structureOk, undefined);
  // A row with some of the fields but not all.
  const { structureOk: _, ...partial } = fresh;
  const p = EvalRowSchema.safeParse(partial);
  assert.equal(p.success, false);
  if (!p.success) assert.deepEqual(p.error.issues[0].path, ["structureOk"]);
  const n = EvalRowSchema.safeParse({ ...fresh, structurePhase: -1 });
  assert.equal(n.success, false);
  if (!n.success) assert.deepEqual(n.error.issues[0].path, ["structurePhase"]);
  // Chroma: rows with the structure fields but without the chroma ones (written before chroma)
  // load; some chroma fields without the others, or a negative ratio, do not.
  const chroma = row(2, "fgsm", [1, 1.1, 3, 3, true], [1.3, null, 4, false]);
  assert.deepEqual(EvalRowSchema.parse(chroma), chroma);
  assert.equal(EvalRowSchema.parse(fresh).chromaOk, undefined);
  const { chromaLine: _l, ...noLine } = chroma;
  const c = EvalRowSchema.safeParse(noLine);
  assert.equal(c.success, false);
  if (!c.success) {
    assert.deepEqual(c.error.issues[0].path, ["chromaLine"]);
    assert.match(c.error.issues[0].message, /chroma fields come together/);
  }
  const cn = EvalRowSchema.safeParse({ ...chroma, chromaDirection: -0.5 });
  assert.equal(cn.success, false);
  if (!cn.success) assert.deepEqual(cn.error.issues[0].path, ["chromaDirection"]);
  const both = [old, fresh, chroma];
  await Deno.writeTextFile(
    join(dir, "rows.jsonl"),
    both.map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
  assert.deepEqual(await readRows(dir), both);
});
