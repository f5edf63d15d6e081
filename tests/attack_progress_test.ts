// attackVideo's progress (stages in order, counts monotone up to the frame count), the progress
// line (in place on a terminal, throttled in a log), `deno task attack`'s progress on stderr,
// and the crossings between CPU and GPU per frame (uploads and read-backs of frame-sized data).

import assert from "assert";
import { join } from "path";
import { attackVideo, initGpu, loadGenerator, loadVictim } from "../mod.ts";
import type { AttackProgress } from "../src/attack/video.ts";
import { getGpu } from "../src/gpu/device.ts";
import { formatSeconds, formatStage, ProgressLine } from "../src/_progress.ts";
import { clipFile, generatorFile, tempDirs } from "./_attack_fixtures.ts";

await initGpu();

const tmp = tempDirs("stqa_attack_progress_");

/** The stages in the order they first appear. */
function stagesOf(events: AttackProgress[]): string[] {
  return [...new Set(events.map((e) => e.stage))];
}

/** Checks each stage's counts: contiguous, monotone, from 0 to `frames` of `frames`. */
function checkCounts(events: AttackProgress[], frames: number): void {
  for (const stage of stagesOf(events)) {
    const first = events.findIndex((e) => e.stage === stage);
    const own = events.filter((e) => e.stage === stage);
    assert.ok(
      events.slice(first, first + own.length).every((e) => e.stage === stage),
      `${stage}: its updates are not contiguous`,
    );
    assert.equal(own[0].done, 0, `${stage}: starts at ${own[0].done}`);
    for (let i = 1; i < own.length; i++) {
      assert.ok(own[i].done >= own[i - 1].done, `${stage}: ${own[i - 1].done} then ${own[i].done}`);
    }
    const last = own[own.length - 1];
    assert.deepEqual([last.done, last.total], [frames, frames], `${stage} ends at`);
    for (const e of own) assert.ok(e.total === null || e.done <= e.total, `${stage}: ${e.done}`);
  }
}

Deno.test("attackVideo: onProgress counts every stage from 0 to the frame count, in order", async () => {
  const dir = await tmp();
  const input = await clipFile(dir, "clip.mkv");
  const generator = await loadGenerator(await generatorFile(dir));
  const victim = await loadVictim("vsfa-mini");
  try {
    const events: AttackProgress[] = [];
    const started: string[] = [];
    const report = await attackVideo(input, {
      generator,
      victim,
      outDir: join(dir, "out"),
      chunkFrames: 2,
      onProgress: (p) => events.push({ ...p }),
      onStage: (s) => started.push(s),
    });
    assert.equal(report.video.frames, 5);
    // One streamed pass: each chunk is decoded, attacked, scored and encoded together.
    assert.deepEqual(stagesOf(events), ["attack"]);
    checkCounts(events, 5);
    // The chunks of 2 frames: 2, 4, 5.
    assert.deepEqual(events.filter((e) => e.stage === "attack").map((e) => e.done), [0, 2, 4, 5]);
    assert.deepEqual(started, stagesOf(events)); // onStage: each stage as it starts
  } finally {
    generator.net.dispose();
    victim.dispose();
  }
});

Deno.test("attackVideo: --mode both runs one generator pass and reports each mode", async () => {
  const dir = await tmp();
  const input = await clipFile(dir, "clip.mkv", 4);
  const generator = await loadGenerator(await generatorFile(dir, "two-branch"));
  const victim = await loadVictim("vsfa-mini");
  try {
    const events: AttackProgress[] = [];
    await attackVideo(input, {
      generator,
      victim,
      mode: "both",
      outDir: join(dir, "out"),
      chunkFrames: 3,
      onProgress: (p) => events.push({ ...p }),
    });
    assert.deepEqual(stagesOf(events), ["attack"]);
    checkCounts(events, 4);
    assert.deepEqual(events.filter((e) => e.stage === "attack").map((e) => e.done), [0, 3, 4]);
  } finally {
    generator.net.dispose();
    victim.dispose();
  }
});

/**
 * Counts, while `fn` runs, uploads (`queue.writeBuffer` into buffers that are not uniforms) and
 * read-backs (`mapAsync`) of at least `minBytes` bytes: frame-sized data, not parameters or
 * scores.
 */
async function countCrossings(
  minBytes: number,
  fn: () => Promise<unknown>,
): Promise<{ uploads: number; readBacks: number }> {
  const queue = getGpu().device.queue;
  const write = queue.writeBuffer;
  const map = GPUBuffer.prototype.mapAsync;
  const counts = { uploads: 0, readBacks: 0 };
  queue.writeBuffer = function (this: GPUQueue, buffer: GPUBuffer, ...rest: unknown[]) {
    const data = rest[1] as ArrayBufferView;
    if (!(buffer.usage & GPUBufferUsage.UNIFORM) && data.byteLength >= minBytes) {
      counts.uploads++;
    }
    return (write as (...a: unknown[]) => undefined).call(this, buffer, ...rest);
  } as GPUQueue["writeBuffer"];
  GPUBuffer.prototype.mapAsync = function (this: GPUBuffer, ...args: unknown[]) {
    if (this.size >= minBytes) counts.readBacks++;
    return (map as (...a: unknown[]) => Promise<undefined>).apply(this, args);
  } as GPUBuffer["mapAsync"];
  try {
    await fn();
  } finally {
    queue.writeBuffer = write;
    GPUBuffer.prototype.mapAsync = map;
  }
  return counts;
}

Deno.test("attackVideo: a frame goes up once decoded and once quantised, and comes back once", async () => {
  const dir = await tmp();
  const frames = 6, w = 40, h = 24;
  const input = await clipFile(dir, "clip.mkv", frames, w, h);
  const generator = await loadGenerator(await generatorFile(dir));
  const victim = await loadVictim("vsfa-mini");
  try {
    const counts = await countCrossings(
      3 * w * h, // one frame as rgb24 bytes
      () => attackVideo(input, { generator, victim, outDir: join(dir, "out"), chunkFrames: 2 }),
    );
    // 3 chunks of 2 frames. Up: the decoder's bytes per chunk, and the quantised chunk's bytes
    // once for the victim. Back: the clean frames, JND maps and generator output of each chunk
    // in one read-back; the encoder takes the quantised bytes from the CPU (no read-back):
    // each frame goes up twice and comes back once. (At first: 13 uploads and 12 read-backs
    // here, about 5 and 4 per frame; then 6 and 6.)
    assert.deepEqual(counts, { uploads: 3 + 3, readBacks: 3 });
  } finally {
    generator.net.dispose();
    victim.dispose();
  }
});

Deno.test("formatSeconds: whole seconds, minutes carried (never 6m60s)", () => {
  const cases: [number, string][] = [
    [0, "0s"],
    [42.4, "42s"],
    [59.4, "59s"],
    [59.6, "1m00s"],
    [60, "1m00s"],
    [419.6, "7m00s"],
    [419.4, "6m59s"],
    [725, "12m05s"],
  ];
  for (const [s, want] of cases) assert.equal(formatSeconds(s), want, `${s} s`);
});

Deno.test("ProgressLine: in place on a terminal, a line every few seconds at most in a log", () => {
  let now = 0;
  const tty: string[] = [];
  const a = new ProgressLine({ tty: true, write: (s) => tty.push(s), now: () => now });
  a.update({ stage: "decode", done: 0, total: 10 }, "[1/2] clip");
  now = 2;
  a.update({ stage: "decode", done: 10, total: 10 }, "[1/2] clip");
  a.update({ stage: "attack", done: 0, total: 10 }, "[1/2] clip");
  now = 7;
  a.update({ stage: "attack", done: 5, total: 10 }, "[1/2] clip");
  a.end();
  a.end(); // nothing more to clear
  assert.deepEqual(tty, [
    "\r  [1/2] clip: decode 0/10 frames, 0s\x1b[K",
    "\r  [1/2] clip: decode 10/10 frames, 5.0 fps, 2s, eta 0s\x1b[K",
    "\r  [1/2] clip: attack 0/10 frames, 0s\x1b[K",
    "\r  [1/2] clip: attack 5/10 frames, 1.0 fps, 5s, eta 5s\x1b[K",
    "\r\x1b[K",
  ]);

  now = 0;
  const log: string[] = [];
  const b = new ProgressLine({ tty: false, write: (s) => log.push(s), now: () => now });
  for (let i = 0; i <= 100; i++) {
    now = i * 0.25; // 25 s in all
    b.update({ stage: "attack", done: i, total: 100 }, "clip");
  }
  b.end();
  assert.deepEqual(log.map((l) => l.split(",")[0]), [
    "  clip: attack 0/100 frames",
    "  clip: attack 20/100 frames",
    "  clip: attack 40/100 frames",
    "  clip: attack 60/100 frames",
    "  clip: attack 80/100 frames",
    "  clip: attack 100/100 frames",
  ]);
  assert.ok(log.every((l) => l.endsWith("\n") && !l.includes("\r")));
  assert.equal(
    formatStage({ stage: "decode", done: 30, total: null }, 3),
    "decode 30 frames, 10 fps, 3s",
  );
});

Deno.test("deno task attack: progress on stderr, throttled when stderr is not a terminal", async () => {
  const dir = await tmp();
  const input = await clipFile(dir, "clip.mkv");
  const gen = await generatorFile(dir);
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run",
      cli,
      "attack",
      "--input",
      input,
      "--generator",
      gen,
      "--out",
      join(dir, "out"),
    ],
    stdout: "piped",
    stderr: "piped",
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
  }).output();
  const seconds = (performance.now() - t0) / 1000;
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  const lines = stderr.split("\n").filter((l) => l.startsWith("  [1/1] clip: "));
  assert.ok(lines.length >= 1, `no progress line in:\n${stderr}`);
  assert.match(lines[0], /^ {2}\[1\/1\] clip: attack 0\/5 frames, 0s$/);
  for (const l of lines) assert.match(l, /: attack \d+\/5 /);
  assert.ok(lines.length <= 1 + seconds / 5, `${lines.length} lines in ${seconds} s`);
  assert.ok(!stderr.includes("\r"), "a terminal's \\r in a log");
});
