// `deno task attack` on the bad media a user brings (issue 14): a corrupt frame in the middle of
// a file, an alpha source, a file with no video stream, a zero-length file and a folder named
// like a video each fail with one line naming the file (and the frame where it applies) and
// leave nothing in --out; 10-bit and 4:2:2 sources are attacked (converted to 8-bit RGB).

import assert from "assert";
import { join } from "path";
import { parseAttackReport } from "../mod.ts";
import { initGpu } from "./_helpers.ts";
import {
  clipFile,
  entries,
  generatorFile,
  runAttack as attack,
  tempDirs,
} from "./_attack_fixtures.ts";

await initGpu();
const tmp = tempDirs("stqa-attack-inputs-");

async function ffmpeg(args: string[]): Promise<void> {
  const r = await new Deno.Command("ffmpeg", {
    args: ["-v", "error", "-y", ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(r.success, new TextDecoder().decode(r.stderr));
}

Deno.test("attack: bad media fail with one line naming the file (and frame) and leave nothing", async () => {
  const dir = await tmp();
  const gen = await generatorFile(dir);
  const good = await clipFile(dir, "good.mkv", 8, 32, 24);
  // A corrupt frame in the middle: bytes overwritten inside the frame data (ffv1's slice CRCs).
  const bytes = await Deno.readFile(good);
  const corrupt = bytes.slice();
  for (let i = 0; i < 64; i++) corrupt[Math.floor(bytes.length * 0.55) + i] ^= 0x5a;
  const bad = join(dir, "corrupt.mkv");
  await Deno.writeFile(bad, corrupt);
  // An alpha source (RGBA PNG frames in a .mov), an audio-only file, a zero-length file and a
  // folder named like a video.
  const alpha = join(dir, "alpha.mov");
  await ffmpeg([
    "-f",
    "lavfi",
    "-i",
    "testsrc2=size=32x24:rate=25,format=rgba",
    "-frames:v",
    "3",
    "-c:v",
    "png",
    alpha,
  ]);
  const audio = join(dir, "audio.mkv");
  await ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", "-c:a", "flac", audio]);
  const empty = join(dir, "empty.mkv");
  await Deno.writeFile(empty, new Uint8Array());
  const folder = join(dir, "folder.mkv");
  await Deno.mkdir(folder);
  const cases: [string, RegExp][] = [
    [bad, /corrupt\.mkv.*(corrupt|truncated).*frame \d/],
    [alpha, /alpha\.mov.*alpha \(transparency\)/],
    [audio, /audio\.mkv.*no video stream/],
    [empty, /empty\.mkv.*empty \(0 bytes\)/],
    [folder, /folder\.mkv.*(directory|folder)/],
  ];
  for (const [input, pattern] of cases) {
    const out = join(dir, "out");
    const r = await attack(["-i", input, "-g", gen, "-o", out]);
    assert.equal(r.code, 1, `${input}: exit ${r.code}\n${r.err}`);
    const lines = r.err.split("\n").filter((l) => l.startsWith("attack: "));
    assert.equal(lines.length, 1, `${input}: one error line expected:\n${r.err}`);
    assert.match(lines[0], pattern);
    // Nothing written for it, not even a temporary folder.
    assert.deepEqual(await entries(out), [], `${input}: left ${await entries(out)}`);
  }
});

Deno.test("attack: 10-bit 4:2:0 and 8-bit 4:2:2 sources are attacked and reported", async () => {
  const dir = await tmp();
  const gen = await generatorFile(dir);
  for (
    const [name, pix, codec] of [["ten.mkv", "yuv420p10le", "ffv1"], [
      "four22.mkv",
      "yuv422p",
      "ffv1",
    ]]
  ) {
    const input = join(dir, name);
    await ffmpeg([
      "-f",
      "lavfi",
      "-i",
      "testsrc2=size=32x24:rate=25",
      "-frames:v",
      "4",
      "-pix_fmt",
      pix,
      "-c:v",
      codec,
      input,
    ]);
    const out = join(dir, "out");
    const r = await attack(["-i", input, "-g", gen, "-o", out]);
    assert.equal(r.code, 0, `${name}: exit ${r.code}\n${r.err}`);
    const stem = name.replace(/\.mkv$/, "");
    const report = parseAttackReport(
      JSON.parse(await Deno.readTextFile(join(out, stem, "report.json"))),
    );
    assert.equal(report.video.frames, 4);
    assert.deepEqual([report.video.width, report.video.height], [32, 24]);
    assert.ok(Number.isFinite(report.attacks[0].score));
  }
});
