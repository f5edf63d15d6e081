// The HTML reports: the PNG encoder against ffmpeg's decoder and the CRC-32 check value, the
// frame conversions against direct computation, escaping and chart elements, and both reports
// (attack and eval) rendered in headless Chromium: every inline image decodes and the key
// elements are there. Without Chromium these last tests are ignored, unless
// STQA_REQUIRE_CHROMIUM=1 (as .ci/run sets), where they fail.

import assert from "assert";
import { join } from "path";
import { attackReportFiles, attackVideo, loadGenerator, loadVictim, readVideo } from "../mod.ts";
import { buildTable, type EvalRow } from "../src/eval/robustness.ts";
import { crossVictimTable, uploadRows } from "../src/eval/transfer.ts";
import type { EvalExample } from "../src/eval/examples.ts";
import { evalReportHtml } from "../src/report/eval_html.ts";
import { escapeHtml, htmlTable, svgBarChart, svgLineChart } from "../src/report/html.ts";
import {
  amplifiedPerturbation,
  crc32,
  cropImage,
  encodePng,
  planarFrame,
  pngDataUri,
  type RgbImage,
} from "../src/video/png.ts";
import { attackPanels, shownFrames } from "../src/attack/panels.ts";
import { initGpu, rng, RUN_SEED, withSeed } from "./_helpers.ts";
import { dumpDom, findChromium, screenshot } from "./_chromium.ts";

await initGpu();
const CHROMIUM = await findChromium();
const REQUIRE = Deno.env.get("STQA_REQUIRE_CHROMIUM") === "1";
if (!CHROMIUM && !REQUIRE) {
  console.warn("report_test: no Chromium found (set CHROMIUM=<binary>): rendering tests ignored");
}
const browserTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({
    name,
    ignore: !CHROMIUM && !REQUIRE,
    fn: async () => {
      if (!CHROMIUM) {
        throw new Error("STQA_REQUIRE_CHROMIUM=1 but no Chromium: apt-get install chromium");
      }
      await fn();
    },
  });

const root = await Deno.makeTempDir({ prefix: "stqa_report_" });
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(root, { recursive: true });
  } catch { /* gone */ }
});

/** Decodes a PNG with ffmpeg; a failure names `what` (when given) before ffmpeg's message. */
async function ffmpegDecodePng(png: Uint8Array, what?: string): Promise<Uint8Array> {
  const file = join(root, `p${crypto.randomUUID()}.png`);
  await Deno.writeFile(file, png);
  const r = await new Deno.Command("ffmpeg", {
    args: ["-v", "error", "-i", file, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(r.stderr);
  assert.ok(r.success, what === undefined ? stderr : `${what}: ${stderr}`);
  return r.stdout;
}

Deno.test("png: CRC-32 check value; encoded images decode to the same bytes in ffmpeg", async () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
  const r = rng(RUN_SEED);
  for (const [w, h] of [[1, 1], [7, 3], [33, 17], [64, 48]]) {
    const data = new Uint8Array(3 * w * h).map(() => Math.floor(r.uniform() * 256));
    const png = encodePng({ width: w, height: h, data });
    assert.deepEqual(
      [...png.subarray(0, 8)],
      [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
      withSeed(`${w}x${h}: PNG signature`),
    );
    const decoded = await ffmpegDecodePng(png, withSeed(`${w}x${h}: ffmpeg decode`));
    assert.deepEqual(decoded, data, withSeed(`${w}x${h}`));
  }
  assert.throws(
    () => encodePng({ width: 2, height: 2, data: new Uint8Array(11) }),
    /2x2 RGB needs 12 bytes, got 11/,
  );
  assert.throws(() => encodePng({ width: 0, height: 2, data: new Uint8Array(0) }), /positive/);
});

Deno.test("png: planar frames, amplified perturbations and crops against direct computation", () => {
  const r = rng(RUN_SEED + 1);
  const [t, h, w] = [3, 5, 4];
  const plane = h * w;
  const clean = new Float32Array(t * 3 * plane).map(() => r.uniform());
  const adv = clean.map((v) => v + (r.uniform() - 0.5) * 0.04);
  const shape = [t, 3, h, w];
  const clip = (v: number) => Math.min(255, Math.max(0, Math.round(v)));
  for (let f = 0; f < t; f++) {
    const img = planarFrame(clean, shape, f);
    const amp = amplifiedPerturbation(clean, adv, shape, f, 7);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < 3; c++) {
          const k = f * 3 * plane + c * plane + y * w + x;
          const at = 3 * (y * w + x) + c;
          const where = `frame ${f} (${x}, ${y}) channel ${c}`;
          assert.equal(img.data[at], clip(255 * clean[k]), withSeed(`planar ${where}`));
          assert.equal(
            amp.data[at],
            clip(128 + 7 * 255 * (adv[k] - clean[k])),
            withSeed(`amplified ${where}`),
          );
        }
      }
    }
  }
  // 8-bit input is taken as levels.
  const u8 = Uint8Array.from([10, 20, 30]);
  assert.deepEqual([...planarFrame(u8, [1, 3, 1, 1], 0).data], [10, 20, 30]);
  assert.deepEqual(
    [...amplifiedPerturbation(u8, Uint8Array.from([12, 20, 27]), [1, 3, 1, 1], 0, 10).data],
    [148, 128, 98],
  );
  assert.throws(() => planarFrame(clean, shape, 3), /no frame 3 of 3/);
  assert.throws(() => planarFrame(clean, [t, 1, h, w], 0), /expected \[T,3,H,W\]/);
  // Crop: the pixels at the offset, clipped to the image.
  const img: RgbImage = planarFrame(clean, shape, 1);
  const c = cropImage(img, { x: 1, y: 2, width: 2, height: 9 });
  assert.deepEqual([c.width, c.height], [2, 3]);
  for (let y = 0; y < 3; y++) {
    for (let x = 0; x < 2; x++) {
      const a = 3 * (y * 2 + x), b = 3 * ((y + 2) * w + x + 1);
      assert.deepEqual(
        [...c.data.subarray(a, a + 3)],
        [...img.data.subarray(b, b + 3)],
        withSeed(`crop pixel (${x}, ${y})`),
      );
    }
  }
  assert.deepEqual(shownFrames(1), [0]);
  assert.deepEqual(shownFrames(2), [0, 1]);
  assert.deepEqual(shownFrames(9), [0, 4, 8]);
});

Deno.test("attackPanels: amplification per report or per run, centre crop of large frames", async () => {
  const r = rng(RUN_SEED + 4);
  const [h, w] = [6, 8];
  const clean = new Float32Array(3 * h * w).map(() => r.uniform());
  const adv = [2, 5].map((lv) => clean.map((v, i) => v + (i % 2 ? lv : -lv) / 255));
  const kept = [{ frame: 0, clean, jnd: new Float32Array(h * w).fill(4 / 255), adversarial: adv }];
  const one = await attackPanels(kept, { width: w, height: h }, { maxAbsLevels: 5 });
  assert.equal(one.amplify, 24); // floor(120 / 5)
  assert.equal(one.crop, undefined);
  assert.equal(one.panels[0].attacks[0].amplify, undefined);
  const perRun = await attackPanels(kept, { width: w, height: h }, {
    maxAbsLevels: [2, 5],
    maxWidth: 4,
    maxHeight: 4,
  });
  assert.deepEqual(perRun.panels[0].attacks.map((a) => a.amplify), [60, 24]);
  assert.deepEqual(perRun.crop, { x: 2, y: 1, width: 4, height: 4 });
  const p = perRun.panels[0];
  const full = planarFrame(clean, [1, 3, h, w], 0);
  assert.deepEqual(
    (p.clean as RgbImage).data,
    cropImage(full, { x: 2, y: 1, width: 4, height: 4 }).data,
    withSeed("clean panel: the centre crop of the frame"),
  );
  const pert = p.attacks[1].perturbation as RgbImage;
  assert.deepEqual([pert.width, pert.height], [4, 4]);
  // Pixel (2,1) of the frame, channel 0: index 1*8+2 = 10, even, so d = -5 levels: 128 - 24*5.
  assert.equal(pert.data[0], 8, withSeed("perturbation panel, pixel (2, 1) channel 0"));
  // The JND heat map of a constant map is one colour.
  const jnd = p.jnd as RgbImage;
  assert.ok(jnd.data.every((v, i) => v === jnd.data[i % 3]));
  // Several frames' heat maps are made together: each equals the map of its frame made alone.
  const frames = [1, 6].map((lv, f) => ({
    frame: f,
    clean,
    jnd: new Float32Array(h * w).map((_, i) => (lv + (i % 3)) / 255),
    adversarial: [adv[0]],
  }));
  const both = await attackPanels(frames, { width: w, height: h }, {
    maxAbsLevels: 2,
    jndMaxLevels: 8,
  });
  for (const [f, k] of frames.entries()) {
    const alone = await attackPanels([k], { width: w, height: h }, {
      maxAbsLevels: 2,
      jndMaxLevels: 8,
    });
    assert.deepEqual((both.panels[f].jnd as RgbImage).data, (alone.panels[0].jnd as RgbImage).data);
  }
  assert.notDeepEqual(
    (both.panels[0].jnd as RgbImage).data,
    (both.panels[1].jnd as RgbImage).data,
  );
});

Deno.test("html: text is escaped; charts carry one element per value", () => {
  assert.equal(escapeHtml(`<b a="1">&'</b>`), "&lt;b a=&quot;1&quot;&gt;&amp;&#39;&lt;/b&gt;");
  const t = htmlTable(["name", "v"], [["<script>x</script>", 1.23456], ["b", null]], {
    digits: 2,
  });
  assert.ok(!t.includes("<script>") && t.includes("&lt;script&gt;"));
  assert.ok(t.includes(">1.23<") && t.includes(">-<"));
  const bars = svgBarChart(["a", "b", "c"], [
    { label: "x", values: [1, -2, null] },
    { label: "y", values: [0.5, 3, 4] },
  ]);
  const values = [...bars.matchAll(/class="bar"[^>]*data-value="([^"]+)"/g)].map((m) => +m[1]);
  assert.deepEqual(values, [1, -2, 0.5, 3, 4]);
  const line = svgLineChart([{ name: "clean", values: [1, 2, 3] }, {
    name: "adv",
    values: [3, 2, 1],
  }]);
  assert.equal([...line.matchAll(/<polyline class="series"/g)].length, 2);
});

// A small eval: two victims, a baseline, the white-box generator and the other victim's.
function syntheticRows(): EvalRow[] {
  const r = rng(RUN_SEED + 2);
  const rows: EvalRow[] = [];
  const victims = ["vsfa-mini", "simplevqa-mini"];
  for (const victim of victims) {
    const other = victims.find((v) => v !== victim)!;
    for (const method of ["random", "fgsm", "stqa-net", `stqa-net@${other}`]) {
      for (let i = 0; i < 6; i++) {
        const label = 1 + 4 * r.uniform();
        const cleanScore = label + 0.3 * (r.uniform() - 0.5);
        const advScore = cleanScore + (method === "random" ? 0.05 : 1) * (r.uniform() - 0.5);
        rows.push({
          video: `v${i}`,
          index: i,
          label,
          victim,
          method,
          frames: 8,
          width: 64,
          height: 64,
          qMin: 1,
          qMax: 5,
          median: 3,
          cleanScore,
          advScore,
          absChange: Math.abs(advScore - cleanScore),
          relChange: Math.abs(advScore - cleanScore) / cleanScore,
          r: 0.5,
          robustness: 1,
          psnr: 38 + r.uniform(),
          ssim: 0.98,
          beyondJnd: 0,
          meanAbsLevels: 2.5,
          seconds: 0.1 + r.uniform(),
          victimPasses: method === "fgsm" ? 1 : 0,
          rtPsnr: 35,
          rtSsim: 0.96,
          rtScore: advScore + 0.1,
          cleanRtScore: cleanScore + 0.05,
          eps: 1,
          seed: 1 + i,
        });
      }
    }
  }
  return rows;
}

Deno.test("transfer: upload and cross-victim tables from the table's lines", () => {
  const table = buildTable(syntheticRows());
  const up = uploadRows(table);
  assert.equal(up.length, table.length);
  for (const [k, u] of up.entries()) {
    assert.equal(
      u.survived,
      table[k].meanAbsChangeRoundTrip / table[k].meanAbsChange,
      withSeed(`upload row ${k}: survived`),
    );
  }
  const cross = crossVictimTable(table)!;
  assert.deepEqual(cross.sources, ["vsfa-mini", "simplevqa-mini"]);
  assert.deepEqual(cross.targets, ["vsfa-mini", "simplevqa-mini"]);
  const find = (victim: string, method: string) =>
    table.find((t) => t.victim === victim && t.method === method)!;
  assert.equal(
    cross.cells[0][0]!.srccAfter,
    find("vsfa-mini", "stqa-net").after.srcc,
    withSeed("cross cell [0][0] srccAfter"),
  );
  assert.equal(
    cross.cells[0][1]!.srccAfter,
    find("simplevqa-mini", "stqa-net@vsfa-mini").after.srcc,
    withSeed("cross cell [0][1] srccAfter"),
  );
  assert.equal(
    cross.cells[1][0]!.meanAbsChange,
    find("vsfa-mini", "stqa-net@simplevqa-mini").meanAbsChange,
    withSeed("cross cell [1][0] meanAbsChange"),
  );
  assert.equal(crossVictimTable(table.filter((t) => !t.method.includes("@"))), null);
});

browserTest("report.html of an eval renders in headless Chromium: tables and charts", async () => {
  const table = buildTable(syntheticRows());
  const file = join(root, "eval.html");
  const r = rng(RUN_SEED + 3);
  const image = (): string =>
    pngDataUri({
      width: 8,
      height: 6,
      data: new Uint8Array(3 * 8 * 6).map(() => Math.floor(256 * r.uniform())),
    });
  const example: EvalExample = {
    version: 1,
    video: "v0",
    index: 0,
    victim: "vsfa-mini",
    methods: ["random", "fgsm"],
    frames: 2,
    width: 8,
    height: 6,
    jndMaxLevels: 32,
    amplify: 8,
    panels: [{
      frame: 0,
      clean: image(),
      jnd: image(),
      attacks: [
        { adversarial: image(), perturbation: image(), amplify: 8 },
        { adversarial: image(), perturbation: image(), amplify: 4 },
      ],
    }],
    scores: { clean: 3, methods: [3.1, 2.2] },
    frameScores: { clean: [3, 3], methods: [[3.1, 3.1], [2.2, 2.2]] },
  };
  await Deno.writeTextFile(
    file,
    evalReportHtml(table, { description: "synthetic rows", examples: [example] }),
  );
  const dom = await dumpDom(CHROMIUM!, file);
  assert.match(dom, /<body data-images="6\/6">/, withSeed("the example's images decode"));
  assert.match(dom, /perturbation x4 \(fgsm\)/);
  assert.equal([...dom.matchAll(/<svg id="example-scores-0".*?<\/svg>/gs)].length, 1);
  const tableBody = /<table id="eval-table">.*?<tbody>(.*?)<\/tbody>/s.exec(dom)![1];
  assert.equal([...tableBody.matchAll(/<tr>/g)].length, table.length);
  for (const id of ["chart-srcc", "chart-change", "chart-psnr", "chart-seconds", "chart-upload"]) {
    assert.ok(dom.includes(`id="${id}"`), id);
  }
  // SRCC chart: per victim, the clean bar and one per own method (3).
  const srcc = /<svg id="chart-srcc".*?<\/svg>/s.exec(dom)![0];
  assert.equal([...srcc.matchAll(/class="bar"/g)].length, 2 * 4);
  assert.match(dom, /id="upload-table"/);
  const cross = /<table id="cross-table">.*?<\/table>/s.exec(dom)![0];
  assert.ok(cross.includes("stqa-vsfa-mini") && cross.includes("stqa-simplevqa-mini"));
  const png = join(root, "eval.png");
  await screenshot(CHROMIUM!, file, png);
  const shot = await Deno.readFile(png);
  assert.deepEqual([...shot.subarray(1, 4)], [0x50, 0x4e, 0x47]);
  assert.ok(shot.length > 20_000, `screenshot of ${shot.length} bytes`);
});

browserTest(
  "report.html of an attack renders in headless Chromium: frames, maps, scores",
  async () => {
    const victim = await loadVictim("vsfa-mini");
    const generator = await loadGenerator("stqa-vsfa-mini");
    try {
      const report = await attackVideo("data/samples/astronaut_pan.mkv", {
        generator,
        victim,
        mode: "both",
        frames: 5,
        size: { width: 64, height: 64 },
        outDir: root,
        name: "clip",
        extraFiles: attackReportFiles,
      });
      const file = join(root, "clip", "report.html");
      const html = await Deno.readTextFile(file);
      assert.ok(!/(src|href)="(https?:)?\/\//.test(html), "no external resources");
      const dom = await dumpDom(CHROMIUM!, file);
      // Frames 0, 2, 4; per frame clean, JND and (adversarial, perturbation) per mode: 6 images.
      assert.match(dom, /<body data-images="18\/18">/);
      // Chromium decoded each image to the bytes ffmpeg decodes from the same PNG.
      const srcs = [...html.matchAll(/src="data:image\/png;base64,([^"]+)"/g)].map((m) => m[1]);
      const sums = [...dom.matchAll(/<img [^>]*data-sum="([^"]+)"/g)].map((m) => m[1]);
      assert.equal(srcs.length, 18);
      assert.equal(sums.length, 18);
      for (const [k, b64] of srcs.entries()) {
        const png = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const want = (await ffmpegDecodePng(png)).reduce((a, v) => a + v, 0);
        assert.equal(sums[k], String(want), `image ${k}`);
      }
      // The first images are frame 0: clean (as decoded and scaled), then the up-adversarial
      // (as written to the lossless adversarial-up.mkv).
      const sumOf = async (path: string, size?: { width: number; height: number }) => {
        const v = await readVideo(path, { maxFrames: 1, size });
        const img = planarFrame(await v.read(), v.shape, 0);
        v.dispose();
        return String(img.data.reduce((a, x) => a + x, 0));
      };
      assert.equal(
        sums[0],
        await sumOf("data/samples/astronaut_pan.mkv", { width: 64, height: 64 }),
      );
      assert.equal(sums[1], await sumOf(join(root, "clip", "adversarial-up.mkv")));
      for (const cls of ["clean", "adversarial", "perturbation", "jnd"]) {
        const n = [...dom.matchAll(new RegExp(`<img class="frame ${cls}"`, "g"))].length;
        assert.equal(n, cls === "clean" || cls === "jnd" ? 3 : 6, cls);
      }
      for (const f of [0, 2, 4]) assert.ok(dom.includes(`<h3>frame ${f}</h3>`), `frame ${f}`);
      const scores = /<svg id="frame-scores".*?<\/svg>/s.exec(dom)![0];
      assert.equal([...scores.matchAll(/<polyline class="series"/g)].length, 3); // clean, up, down
      const summary = /<table id="summary">.*?<\/table>/s.exec(dom)![0];
      assert.ok(summary.includes(report.clean.score.toFixed(3)));
      for (const a of report.attacks) assert.ok(summary.includes(a.score.toFixed(3)), a.mode);
      const png = join(root, "attack.png");
      await screenshot(CHROMIUM!, file, png);
      assert.ok((await Deno.stat(png)).size > 20_000);
    } finally {
      generator.net.dispose();
      victim.dispose();
    }
  },
);
