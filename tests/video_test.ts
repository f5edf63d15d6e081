// Video I/O through ffmpeg: probing, decoding to GPU frames, encoding (ffv1, x264-444,
// x264-420), PNG export, and every kind of bad input (each must name the file, and a failed
// write must leave nothing behind). Clips are made on the fly with ffmpeg's lavfi sources and
// from the images in data/sources.

import assert from "assert";
import * as path from "path";
import {
  FfmpegNotFoundError,
  initGpu,
  probeVideo,
  readVideo,
  readVideoChunks,
  rgb24Frames,
  rgb24Tensor,
  type Tensor,
  tensor,
  VideoError,
  writeFramePng,
  writeVideo,
} from "../mod.ts";
import {
  packFrames,
  paddedBytes,
  planarToRgb24,
  rgb24ToPlanar,
  unpackFrames,
} from "../src/video/_convert.ts";
import { poolStats } from "../src/gpu/pool.ts";
import { rng, RUN_SEED, withSeed } from "./_helpers.ts";
import { audioPackets, clipWithAudio } from "./_media.ts";

await initGpu();

const ROOT = path.join(import.meta.dirname!, "..");
const SOURCES = path.join(ROOT, "data", "sources");

/** Runs ffmpeg (from PATH) with an argument array; throws with its stderr on failure. */
async function ffmpeg(args: string[]): Promise<void> {
  const out = await new Deno.Command("ffmpeg", {
    args: ["-nostdin", "-hide_banner", "-loglevel", "error", "-y", ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`ffmpeg ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A lavfi testsrc2 clip. */
async function lavfiClip(file: string, w: number, h: number, frames: number, codec: string[]) {
  await ffmpeg([
    "-f",
    "lavfi",
    "-i",
    `testsrc2=size=${w + (w % 2)}x${h + (h % 2)}:rate=10,format=rgb24,crop=${w}:${h}:0:0`,
    "-frames:v",
    String(frames),
    ...codec,
    file,
  ]);
}

const FFV1 = ["-c:v", "ffv1", "-pix_fmt", "bgr0"];

/** Random 8-bit frames [T,3,H,W] as bytes (planar) and as a tensor of q/255. */
function randomFrames(t: number, h: number, w: number, seed: number) {
  const r = rng(seed);
  const bytes = Uint8Array.from({ length: t * 3 * h * w }, () => Math.floor(r.uniform() * 256));
  const values = Float32Array.from(bytes, (b) => b / 255);
  return { bytes, values, tensor: tensor(values, [t, 3, h, w]) };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stqa_video_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

function assertExact(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, withSeed(`${what}: length`));
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) {
      assert.fail(
        withSeed(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`),
      );
    }
  }
}

function psnr(a: Float32Array, b: Float32Array): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  return 10 * Math.log10(1 / (se / a.length));
}

/**
 * Awaits `p` and checks that it failed with a VideoError naming `file` (and `frame`). `seeded`:
 * the file was made from data drawn from RUN_SEED, so every failure message names the seed.
 */
async function assertVideoError(
  p: Promise<unknown>,
  file: string,
  pattern: RegExp,
  frame?: number | "any",
  seeded = false,
): Promise<VideoError> {
  const msg = (m: string) => (seeded ? withSeed(m) : m);
  const e = await p.then(() => null, (err) => err);
  assert.ok(e instanceof VideoError, msg(`expected a VideoError, got ${e}`));
  assert.equal(e.file, file, seeded ? withSeed(`error names ${e.file}`) : undefined);
  assert.ok(e.message.includes(JSON.stringify(file)), msg(`message names the file: ${e.message}`));
  assert.match(
    e.message,
    pattern,
    seeded ? withSeed(`message ${JSON.stringify(e.message)} does not match ${pattern}`) : undefined,
  );
  if (frame === "any") assert.ok(e.frame !== undefined, msg(`names a frame: ${e.message}`));
  else if (frame !== undefined) assert.equal(e.frame, frame, msg(e.message));
  return e;
}

Deno.test("conversion kernels match the CPU reference (generic, 4-pixel and padded paths)", async () => {
  for (const [t, h, w] of [[2, 3, 5], [3, 4, 8], [1, 7, 1], [2, 6, 10]]) {
    const r = rng(RUN_SEED + 100 + h * w);
    const n = t * h * w * 3;
    const bytes = new Uint8Array(paddedBytes(n));
    for (let i = 0; i < n; i++) bytes[i] = Math.floor(r.uniform() * 256);
    const gpu = unpackFrames(bytes, t, h, w, "gpu");
    assertExact(await gpu.read(), rgb24ToPlanar(bytes, t, h, w), `unpack ${t}x${h}x${w}`);
    // Values off the 8-bit grid, some out of range, to exercise quantisation.
    const values = Float32Array.from({ length: n }, () => r.uniform() * 1.2 - 0.1);
    const x = tensor(values, [t, 3, h, w]);
    for (const [h2, w2] of [[h, w], [h + 1, w], [h, w + 1], [h + 1, w + 1]]) {
      const expected = planarToRgb24(values, t, h, w, h2, w2);
      const got = await packFrames(x, 0, t, { h2, w2 });
      const what = `pack ${t}x${h}x${w} -> ${h2}x${w2}`;
      assert.deepEqual(got, expected, withSeed(what));
      assert.deepEqual(
        await packFrames(x, 0, t, { h2, w2, on: "cpu" }),
        expected,
        withSeed(`cpu ${what}`),
      );
      if (t > 1) {
        const tail = expected.subarray(expected.length / t * (t - 1));
        const last = await packFrames(x, t - 1, 1, { h2, w2 });
        assert.deepEqual(last, tail, withSeed(`${what}: last frame`));
        // The CPU path reads only the chunk's frames, from the right offset.
        assert.deepEqual(
          await packFrames(x, t - 1, 1, { h2, w2, on: "cpu" }),
          tail,
          withSeed(`cpu ${what}: last frame`),
        );
        const frame = expected.length / t;
        assert.deepEqual(
          await packFrames(x, 1, 1, { h2, w2, on: "cpu" }),
          expected.subarray(frame, 2 * frame),
          withSeed(`cpu ${what}: second frame`),
        );
      }
    }
    gpu.dispose();
    x.dispose();
  }
});

Deno.test("probeVideo: size, rate, frame count, duration, pixel format, codec", async () => {
  await withDir(async (dir) => {
    const mp4 = path.join(dir, "a.mp4");
    await lavfiClip(mp4, 64, 48, 7, ["-c:v", "libx264", "-pix_fmt", "yuv420p"]);
    const a = await probeVideo(mp4);
    assert.equal(a.width, 64);
    assert.equal(a.height, 48);
    assert.equal(a.fps, 10);
    assert.equal(a.frameCount, 7);
    assert.equal(a.frameCountSource, "header");
    assert.ok(Math.abs(a.duration! - 0.7) < 1e-6, `duration ${a.duration}`);
    assert.equal(a.pixelFormat, "yuv420p");
    assert.equal(a.codec, "h264");

    const mkv = path.join(dir, "b.mkv");
    await lavfiClip(mkv, 33, 17, 5, FFV1);
    const b = await probeVideo(mkv);
    assert.deepEqual(
      [b.width, b.height, b.fps, b.frameCount, b.frameCountSource, b.codec, b.pixelFormat],
      [33, 17, 10, 5, "packets", "ffv1", "bgr0"],
    );
    const c = await probeVideo(mkv, { countFrames: false });
    assert.equal(c.frameCountSource, "duration");
    assert.equal(c.frameCount, 5);
  });
});

Deno.test("RGB -> ffv1 -> RGB is bit-exact (whole, chunked, CPU and GPU conversion)", async () => {
  await withDir(async (dir) => {
    // Sizes below 3 pixels take ffv1's level 1 (level 3 corrupts them in ffmpeg 5.1).
    for (const [t, h, w] of [[5, 17, 33], [3, 48, 64], [1, 1, 1], [2, 1, 10], [2, 7, 2]]) {
      const src = randomFrames(t, h, w, RUN_SEED + h);
      const file = path.join(dir, `rt_${w}x${h}.mkv`);
      const res = await writeVideo(file, src.tensor, { fps: 10, chunkFrames: 2 });
      assert.deepEqual(
        [res.frames, res.width, res.height, res.padded],
        [t, w, h, false],
        withSeed(`ffv1 ${w}x${h}: written`),
      );
      const info = await probeVideo(file);
      assert.deepEqual(
        [info.width, info.height, info.frameCount, info.codec],
        [w, h, t, "ffv1"],
        withSeed(`ffv1 ${w}x${h}: probed`),
      );
      const back = await readVideo(file);
      assert.deepEqual(back.shape, [t, 3, h, w], withSeed(`ffv1 ${w}x${h}: shape read`));
      assertExact(await back.read(), src.values, `ffv1 ${w}x${h} gpu`);
      const cpu = await readVideo(file, { convertOn: "cpu" });
      assertExact(await cpu.read(), src.values, `ffv1 ${w}x${h} cpu`);
      // Chunked reading: the chunks concatenate to the same frames.
      const hw3 = 3 * h * w;
      let next = 0;
      for await (const chunk of readVideoChunks(file, { chunkFrames: 2 })) {
        assert.equal(chunk.start, next, withSeed(`ffv1 ${w}x${h}: chunk start`));
        const n = chunk.frames.shape[0];
        assert.ok(n >= 1 && n <= 2, withSeed(`ffv1 ${w}x${h}: chunk of ${n} frames`));
        assertExact(
          await chunk.frames.read(),
          src.values.subarray(next * hw3, (next + n) * hw3),
          `ffv1 ${w}x${h}: chunk at ${next}`,
        );
        chunk.frames.dispose();
        next += n;
      }
      assert.equal(next, t, withSeed(`ffv1 ${w}x${h}: frames in chunks`));
      // Breaking out early stops ffmpeg (the test's resource sanitizer sees a leak otherwise).
      for await (const chunk of readVideoChunks(file, { chunkFrames: 1 })) {
        chunk.frames.dispose();
        break;
      }
      for (const x of [src.tensor, back, cpu]) x.dispose();
    }
  });
});

Deno.test("writeVideo: async chunks and CPU quantisation give the same file content", async () => {
  await withDir(async (dir) => {
    const src = randomFrames(5, 12, 10, RUN_SEED + 1);
    const hw3 = 3 * 12 * 10;
    async function* chunks() {
      for (const [a, b] of [[0, 2], [2, 3], [3, 5]]) {
        yield tensor(src.values.subarray(a * hw3, b * hw3), [b - a, 3, 12, 10]);
      }
    }
    const file = path.join(dir, "chunks.mkv");
    const res = await writeVideo(file, chunks(), { fps: 5, disposeInput: true, convertOn: "cpu" });
    assert.equal(res.frames, 5, withSeed("async chunks: frames written"));
    const back = await readVideo(file);
    assertExact(await back.read(), src.values, "async chunks");
    // A single [3,H,W] frame is a one-frame video.
    const one = tensor(src.values.subarray(0, hw3), [3, 12, 10]);
    const f1 = path.join(dir, "one.mkv");
    await writeVideo(f1, one);
    assertExact(await (await readVideo(f1)).read(), src.values.subarray(0, hw3), "one frame");
    assert.deepEqual(await listDir(dir), ["chunks.mkv", "one.mkv"], withSeed("files left"));
  });
});

Deno.test("writeVideo: packed rgb24 chunks give the same file as the tensor (every codec, odd sizes padded)", async () => {
  await withDir(async (dir) => {
    for (const [h, w] of [[12, 10], [17, 33]]) {
      const src = randomFrames(5, h, w, RUN_SEED + 11 + h);
      const hw3 = 3 * h * w;
      // Values between levels too: the bytes must be quantised as the encoder quantises.
      const values = src.values.map((v, i) => i % 7 === 0 ? v + 0.4 / 255 : v);
      const x = tensor(values, [5, 3, h, w]);
      for (const codec of ["ffv1", "x264-444", "x264-420"] as const) {
        const a = path.join(dir, `t-${codec}-${h}.mkv`);
        const b = path.join(dir, `b-${codec}-${h}.mkv`);
        await writeVideo(a, x, { fps: 25, codec, oddSize: "pad" });
        const chunks = [[0, 2], [2, 5]].map(([f, e]) =>
          rgb24Frames(values.subarray(f * hw3, e * hw3), e - f, h, w)
        );
        const res = await writeVideo(b, chunks, { fps: 25, codec, oddSize: "pad" });
        assert.equal(res.frames, 5, withSeed(`${codec} ${w}x${h}: frames written`));
        assert.deepEqual(
          await Deno.readFile(b),
          await Deno.readFile(a),
          withSeed(`${codec} ${w}x${h}: bytes differ from the tensor's file`),
        );
      }
      // The same bytes unpacked on the GPU equal the decoder's frames of the written file.
      const packed = rgb24Frames(values, 5, h, w);
      const up = rgb24Tensor(packed);
      const back = await readVideo(path.join(dir, `t-ffv1-${h}.mkv`));
      assertExact(await up.read(), await back.read(), `rgb24Tensor ${w}x${h}`);
      // A unaligned view (a subarray at an odd offset) is copied, not misread.
      const shifted = new Uint8Array(packed.rgb24.length + 1);
      shifted.set(packed.rgb24, 1);
      const up2 = rgb24Tensor({ ...packed, rgb24: shifted.subarray(1) });
      assertExact(await up2.read(), await back.read(), `rgb24Tensor unaligned ${w}x${h}`);
      for (const t of [x, up, up2, back, src.tensor]) t.dispose();
    }
    // A chunk whose bytes do not match its stated size is refused, naming the file.
    const bad = path.join(dir, "bad.mkv");
    await assertVideoError(
      writeVideo(bad, [{ rgb24: new Uint8Array(10), frames: 1, height: 2, width: 2 }]),
      bad,
      /10 bytes is not 1 frames of 2x2/,
    );
    assert.ok(!(await listDir(dir)).includes("bad.mkv"));
  });
});

Deno.test("writeVideo: the same frames and options give the same bytes (every codec)", async () => {
  await withDir(async (dir) => {
    const src = randomFrames(3, 16, 20, RUN_SEED + 2);
    for (const codec of ["ffv1", "x264-444", "x264-420"] as const) {
      const bytes: Uint8Array[] = [];
      for (const k of [0, 1]) {
        const file = path.join(dir, `${codec}-${k}.mkv`);
        await writeVideo(file, src.tensor, { fps: 25, codec });
        bytes.push(await Deno.readFile(file));
        if (k === 0) await new Promise((r) => setTimeout(r, 1100)); // another second on the clock
      }
      assert.deepEqual(bytes[0], bytes[1], withSeed(`${codec}: two writes differ`));
    }
    src.tensor.dispose();
  });
});

Deno.test("writeVideo: audio copied bit for bit from another file, or cut to a duration", async () => {
  await withDir(async (dir) => {
    const src = path.join(dir, "src.mkv");
    await clipWithAudio(src);
    const original = await audioPackets(src);
    assert.ok(original.length > 5, `${original.length} audio packets`);
    const frames = await readVideo(src);
    const whole = path.join(dir, "whole.mkv");
    await writeVideo(whole, frames, { fps: 25, audio: { from: src } });
    assert.deepEqual(await audioPackets(whole), original);
    const back = await readVideo(whole);
    assertExact(await back.read(), await frames.read(), "video with audio");
    back.dispose();
    // Cut to 0.4 s: a prefix of the packets, about that long.
    const cut = path.join(dir, "cut.mkv");
    await writeVideo(cut, frames, { fps: 25, audio: { from: src, seconds: 0.4 } });
    const part = await audioPackets(cut);
    assert.ok(part.length > 0 && part.length < original.length, `${part.length} packets`);
    assert.deepEqual(part, original.slice(0, part.length));
    // No audio asked for, or none in the source: the output has none.
    const silent = path.join(dir, "silent.mkv");
    await writeVideo(silent, frames, { fps: 25 });
    assert.deepEqual(await audioPackets(silent), []);
    const again = path.join(dir, "again.mkv");
    await writeVideo(again, frames, { fps: 25, audio: { from: silent } });
    assert.deepEqual(await audioPackets(again), []);
    assert.deepEqual(await Deno.readFile(again), await Deno.readFile(silent));
    frames.dispose();
  });
});

Deno.test("quantisation is round-half-to-even with clamping; NaN writes 0", async () => {
  await withDir(async (dir) => {
    const v = [-0.1, 1.7, NaN, 0.2, 10.49 / 255, 10.51 / 255, 0, 1, 254.6 / 255, 0.4 / 255];
    // 1.5/255 and 2.5/255 in float32 times 255 give exactly 1.5 and 2.5 (ties -> 2 and 2).
    v.push(128.3 / 255, Infinity, -Infinity, 3.5e38, 1.5 / 255, 2.5 / 255);
    const expected = [0, 255, 0, 51, 10, 11, 0, 255, 255, 0, 128, 255, 0, 255, 2, 2];
    // Widths 10 (generic kernel) and 16 (the 4-pixel kernel): values in the red plane.
    for (const w of [10, 16]) {
      for (const on of ["gpu", "cpu"] as const) {
        const values = new Float32Array(3 * w);
        values.set(v.slice(0, w));
        const file = path.join(dir, `q_${on}_${w}.mkv`);
        await writeVideo(file, tensor(values, [1, 3, 1, w]), { convertOn: on });
        const back = await (await readVideo(file)).read();
        assert.deepEqual(
          Array.from(back.subarray(0, w), (x) => Math.round(x * 255)),
          expected.slice(0, w),
          `${on} w=${w}`,
        );
      }
    }
  });
});

Deno.test("x264-444 at qp 0 (libx264rgb) is lossless; yuv444p is close", async () => {
  await withDir(async (dir) => {
    const src = randomFrames(3, 16, 24, RUN_SEED + 2);
    const f = path.join(dir, "rgb.mp4");
    await writeVideo(f, src.tensor, { codec: "x264-444", preset: "ultrafast" });
    const info = await probeVideo(f);
    assert.equal(info.codec, "h264", withSeed("x264rgb qp 0: codec"));
    assertExact(await (await readVideo(f)).read(), src.values, "x264rgb qp 0");
    // A smooth clip through yuv444p (BT.601 conversion both ways) at qp 0.
    const clip = path.join(dir, "clip.mkv");
    await lavfiClip(clip, 32, 32, 3, FFV1);
    const frames = await readVideo(clip);
    const f2 = path.join(dir, "yuv.mkv");
    await writeVideo(f2, frames, { codec: "x264-444", rgb: false, qp: 0, preset: "ultrafast" });
    assert.equal((await probeVideo(f2)).pixelFormat, "yuv444p");
    const p = psnr(await (await readVideo(f2)).read(), await frames.read());
    console.log(`  x264-444 yuv444p qp 0 round trip PSNR: ${p.toFixed(2)} dB`);
    assert.ok(p > 40, `PSNR ${p}`);
  });
});

Deno.test("x264-420 at crf 18: round trip PSNR above 35 dB on a panning photo", async () => {
  await withDir(async (dir) => {
    const clip = path.join(dir, "pan.mkv");
    await ffmpeg([
      "-loop",
      "1",
      "-framerate",
      "10",
      "-i",
      path.join(SOURCES, "astronaut.png"),
      "-vf",
      "scale=160:160,crop=96:64:x='t*20':y='t*10'",
      "-frames:v",
      "8",
      ...FFV1,
      clip,
    ]);
    const frames = await readVideo(clip);
    assert.deepEqual(frames.shape, [8, 3, 64, 96]);
    const out = path.join(dir, "upload.mp4");
    const res = await writeVideo(out, frames, { codec: "x264-420", crf: 18, fps: 10 });
    assert.equal(res.padded, false);
    const info = await probeVideo(out);
    assert.deepEqual([info.codec, info.pixelFormat, info.frameCount], ["h264", "yuv420p", 8]);
    const back = await readVideo(out);
    const p = psnr(await back.read(), await frames.read());
    console.log(
      `  x264-420 crf 18 round trip PSNR (astronaut pan, 96x64, 8 frames): ${p.toFixed(2)} dB`,
    );
    assert.ok(p > 35, `PSNR ${p} dB`);
  });
});

Deno.test("readVideo options: start, maxFrames, size, fps", async () => {
  await withDir(async (dir) => {
    const clip = path.join(dir, "c.mkv");
    await lavfiClip(clip, 64, 48, 10, FFV1);
    const all = await (await readVideo(clip)).read();
    const hw3 = 3 * 64 * 48;
    const part = await readVideo(clip, { start: 0.3, maxFrames: 2 });
    assert.deepEqual(part.shape, [2, 3, 48, 64]);
    assertExact(await part.read(), all.subarray(3 * hw3, 5 * hw3), "start 0.3 s, 2 frames");
    const small = await readVideo(clip, { size: { width: 32 }, maxFrames: 1 });
    assert.deepEqual(small.shape, [1, 3, 24, 32]);
    const both = await readVideo(clip, { size: { width: 20, height: 10 }, maxFrames: 1 });
    assert.deepEqual(both.shape, [1, 3, 10, 20]);
    const slow = await readVideo(clip, { fps: 5 });
    assert.deepEqual(slow.shape, [5, 3, 48, 64]);
    await assertVideoError(
      readVideo(clip, { maxFrames: 0 }),
      clip,
      /bad read options: maxFrames: Number must be greater than 0$/,
    );
  });
});

Deno.test("bad options: one message format (field: message) and a VideoError naming the file", async () => {
  await withDir(async (dir) => {
    const clip = path.join(dir, "c.mkv");
    await lavfiClip(clip, 8, 6, 2, FFV1);
    // probeVideo used to throw a bare ZodError here, without the file.
    await assertVideoError(
      probeVideo(clip, { countFrames: "yes" as unknown as boolean }),
      clip,
      /bad probe options: countFrames: expected boolean, got string$/,
    );
    await assertVideoError(
      probeVideo(clip, { bogus: 1 } as unknown as { countFrames: boolean }),
      clip,
      /bad probe options: options: Unrecognized key\(s\) in object: 'bogus'$/,
    );
    const frames = randomFrames(1, 6, 8, RUN_SEED + 10).tensor;
    const png = path.join(dir, "f.png");
    await assertVideoError(
      writeFramePng(png, frames, { frame: 0.5 }),
      png,
      /bad PNG options: frame: expected integer, got float$/,
    );
    const out = path.join(dir, "o.mkv");
    await assertVideoError(
      writeVideo(out, frames, { fps: -1, chunkFrames: 0 }),
      out,
      /bad write options: fps: Number must be greater than 0; chunkFrames: Number must be greater than 0$/,
    );
    frames.dispose();
    assert.deepEqual(await listDir(dir), ["c.mkv"]);
  });
});

Deno.test("writeFramePng: a frame as PNG reads back exactly, even with % in the name", async () => {
  await withDir(async (dir) => {
    const src = randomFrames(3, 9, 13, RUN_SEED + 3);
    const file = path.join(dir, "frame %03d 'x'.png");
    await writeFramePng(file, src.tensor, { frame: 2 });
    const info = await probeVideo(file);
    assert.deepEqual(
      [info.codec, info.width, info.height],
      ["png", 13, 9],
      withSeed("png frame 2: probed"),
    );
    const back = await readVideo(file);
    const hw3 = 3 * 9 * 13;
    assertExact(await back.read(), src.values.subarray(2 * hw3), "png frame 2");
    await assertVideoError(writeFramePng(file, src.tensor, { frame: 3 }), file, /holds 3/, 3);
    assert.deepEqual(await listDir(dir), ["frame %03d 'x'.png"], withSeed("files left"));
  });
});

Deno.test("paths with spaces, quotes and a leading dash", async () => {
  await withDir(async (dir) => {
    const src = randomFrames(2, 8, 8, RUN_SEED + 4);
    const names = [" two  spaces .mkv", `it's "quoted".mkv`, "-dash.mkv", "a:colon.mkv"];
    const cwd = Deno.cwd();
    Deno.chdir(dir);
    try {
      for (const name of names) {
        // Relative paths: "-dash.mkv" must not be taken for an option, "a:colon" not a protocol.
        await writeVideo(name, src.tensor);
        const info = await probeVideo(name);
        assert.equal(info.frameCount, 2, withSeed(`${name}: frames`));
        assertExact(await (await readVideo(name)).read(), src.values, name);
      }
      await writeFramePng("-frame.png", src.tensor);
      assert.equal((await probeVideo("-frame.png")).codec, "png", withSeed("-frame.png: codec"));
    } finally {
      Deno.chdir(cwd);
    }
    assert.deepEqual(await listDir(dir), [...names, "-frame.png"].sort());
  });
});

Deno.test("bad input: missing file, directory, not a video, no video stream", async () => {
  await withDir(async (dir) => {
    const missing = path.join(dir, "nope.mp4");
    await assertVideoError(probeVideo(missing), missing, /no such file/);
    await assertVideoError(readVideo(missing), missing, /no such file/);
    await assertVideoError(readVideo(dir), dir, /is a directory/);
    const text = path.join(dir, "notes.mp4");
    await Deno.writeTextFile(text, "this is not a video\n".repeat(20));
    const e = await assertVideoError(readVideo(text), text, /not a readable video/);
    assert.ok(e.stderr.length > 0, "includes ffprobe's stderr");
    const audio = path.join(dir, "tone.mka");
    await ffmpeg(["-f", "lavfi", "-i", "sine=d=0.2", audio]);
    await assertVideoError(probeVideo(audio), audio, /no video stream/);
    assert.deepEqual(await listDir(dir), ["notes.mp4", "tone.mka"]);
  });
});

Deno.test("bad input: FIFOs, devices, folders named like videos and empty files are refused by name; links followed", async () => {
  await withDir(async (dir) => {
    const real = path.join(dir, "real.mkv");
    await lavfiClip(real, 8, 6, 2, FFV1);
    const link = path.join(dir, "link.mkv");
    await Deno.symlink(real, link);
    const frames = await readVideo(link);
    assert.deepEqual(frames.shape, [2, 3, 6, 8]);
    frames.dispose();
    const fifo = path.join(dir, "pipe.mkv");
    const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(mk.success);
    const folder = path.join(dir, "x.mkv");
    await Deno.mkdir(folder);
    const empty = path.join(dir, "empty.mkv");
    await Deno.writeTextFile(empty, "");
    const dangling = path.join(dir, "dangling.mkv");
    await Deno.symlink(path.join(dir, "gone.mkv"), dangling);
    const cases: [string, RegExp][] = [
      [fifo, /video is a FIFO \(named pipe\), not a regular file$/],
      ["/dev/zero", /video is a character device, not a regular file$/],
      [folder, /is a directory \(a folder\), not a video file$/],
      [empty, /is empty \(0 bytes\), not a video$/],
      [dangling, /video is a symbolic link to a missing file$/],
    ];
    const chunks = async (f: string) => {
      for await (const c of readVideoChunks(f)) c.frames.dispose();
    };
    for (const [file, pattern] of cases) {
      for (const read of [probeVideo, readVideo, chunks]) {
        // A FIFO opened by mistake would block here for ever: the check comes first.
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${file}: still reading after 10 s`)), 10_000);
        });
        try {
          await Promise.race([assertVideoError(read(file), file, pattern), timeout]);
        } finally {
          clearTimeout(timer);
        }
      }
    }
  });
});

Deno.test("bad input: truncated and corrupt files name the frame", async () => {
  await withDir(async (dir) => {
    const src = randomFrames(6, 24, 32, RUN_SEED + 5);
    const good = path.join(dir, "good.mkv");
    await writeVideo(good, src.tensor);
    const bytes = await Deno.readFile(good);
    // Cut in the middle of the frame data.
    const cut = path.join(dir, "cut.mkv");
    await Deno.writeFile(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const e1 = await assertVideoError(readVideo(cut), cut, /truncated|corrupt/, "any", true);
    assert.ok(e1.frame! < 6, withSeed(`cut file: frame ${e1.frame}`));
    // Chunks before the damage are delivered, then the error comes.
    let delivered = 0;
    const e2 = await assertVideoError(
      (async () => {
        for await (const c of readVideoChunks(cut, { chunkFrames: 1 })) {
          delivered += c.frames.shape[0];
          c.frames.dispose();
        }
      })(),
      cut,
      /truncated|corrupt/,
      "any",
      true,
    );
    assert.equal(e2.frame, delivered, withSeed(`cut file in chunks: ${delivered} delivered`));
    // Overwrite bytes inside the frame data: ffv1's slice CRCs catch it.
    const bad = path.join(dir, "bad.mkv");
    const corrupt = bytes.slice();
    for (let i = 0; i < 64; i++) corrupt[Math.floor(bytes.length * 0.5) + i] ^= 0x5a;
    await Deno.writeFile(bad, corrupt);
    const e3 = await assertVideoError(
      readVideo(bad),
      bad,
      /corrupt|truncated|failed/,
      "any",
      true,
    );
    // The damaged frame is named (from ffmpeg's timestamp), not just the count decoded.
    assert.ok(e3.frame! < 6, withSeed(e3.message));
    // strict: false accepts what decodes.
    const lenient = await readVideo(cut, { strict: false });
    assert.ok(
      lenient.shape[0] >= 1 && lenient.shape[0] < 6,
      withSeed(`strict: false read ${lenient.shape[0]} frames of the cut file`),
    );
  });
});

Deno.test("bad input: zero frames", async () => {
  await withDir(async (dir) => {
    const empty = path.join(dir, "empty.y4m");
    await Deno.writeTextFile(empty, "YUV4MPEG2 W64 H48 F10:1 Ip A1:1 C420jpeg\n");
    await assertVideoError(readVideo(empty), empty, /no frames decoded/);
    const clip = path.join(dir, "c.mkv");
    await lavfiClip(clip, 16, 16, 3, FFV1);
    await assertVideoError(readVideo(clip, { start: 5 }), clip, /no frames decoded.*start 5/);
    const out = path.join(dir, "out.mkv");
    await assertVideoError(writeVideo(out, tensor([], [0, 3, 4, 4])), out, /no frames/);
    await assertVideoError(writeVideo(out, []), out, /no frames/);
    assert.deepEqual(await listDir(dir), ["c.mkv", "empty.y4m"]);
  });
});

Deno.test("odd sizes for 4:2:0: refused by default, padded on request", async () => {
  await withDir(async (dir) => {
    const src = randomFrames(2, 17, 33, RUN_SEED + 6);
    const out = path.join(dir, "odd.mp4");
    await assertVideoError(
      writeVideo(out, src.tensor, { codec: "x264-420" }),
      out,
      /even width and height.*33x17.*oddSize: "pad"/,
    );
    assert.deepEqual(await listDir(dir), []);
    const res = await writeVideo(out, src.tensor, { codec: "x264-420", oddSize: "pad" });
    assert.deepEqual([res.width, res.height, res.padded], [34, 18, true]);
    const info = await probeVideo(out);
    assert.deepEqual([info.width, info.height], [34, 18]);
    // ffv1 and x264-444 take odd sizes as they are.
    const r2 = await writeVideo(path.join(dir, "odd.mkv"), src.tensor, { codec: "x264-444" });
    assert.deepEqual([r2.width, r2.height], [33, 17]);
  });
});

Deno.test("failed writes leave nothing: generator error, size change, abort, ffmpeg failure", async () => {
  await withDir(async (dir) => {
    const a = randomFrames(2, 8, 8, RUN_SEED + 7).tensor;
    const b = randomFrames(2, 8, 10, RUN_SEED + 8).tensor;
    const out = path.join(dir, "out.mkv");
    const boom = new Error("generator failed");
    async function* failing() {
      yield a;
      throw boom;
    }
    await assert.rejects(writeVideo(out, failing()), (e) => e === boom);
    await assertVideoError(writeVideo(out, [a, b]), out, /all must be one size/, 2);
    const ctl = new AbortController();
    async function* slow() {
      yield a;
      ctl.abort();
      yield a;
    }
    await assert.rejects(writeVideo(out, slow(), { signal: ctl.signal }));
    // x264 refuses this size: ffmpeg exits with an error, reported with its stderr.
    const wide = tensor(new Float32Array(3 * 2 * 20000), [1, 3, 2, 20000]);
    const mp4 = path.join(dir, "wide.mp4");
    const e = await assertVideoError(
      writeVideo(mp4, wide, { codec: "x264-420" }),
      mp4,
      /ffmpeg failed .* after 1 frame/,
    );
    assert.match(e.stderr, /invalid width x height/);
    // Bad options and containers are refused before anything starts.
    await assertVideoError(
      writeVideo(path.join(dir, "x.mp4"), a),
      path.join(dir, "x.mp4"),
      /ffv1 cannot/,
    );
    await assertVideoError(
      writeVideo(path.join(dir, "x.webm"), a),
      path.join(dir, "x.webm"),
      /extension/,
    );
    await assertVideoError(writeVideo(out, a, { crf: 10 }), out, /lossless/);
    const nodir = path.join(dir, "no", "such", "dir.mkv");
    await assertVideoError(writeVideo(nodir, a), nodir, /does not exist/);
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("a write stopped early releases the [1,3,H,W] view of a [3,H,W] frame", async () => {
  await withDir(async (dir) => {
    const before = poolStats().inUse;
    const base = randomFrames(1, 7, 5, RUN_SEED + 9).tensor;
    const frame = base.reshape([3, 7, 5]);
    base.dispose();
    const out = path.join(dir, "odd.mp4");
    // Refused inside the write loop, after the view was made: the loop stops early.
    await assertVideoError(writeVideo(out, frame, { codec: "x264-420" }), out, /even width/);
    frame.dispose();
    assert.equal(poolStats().inUse, before, "every buffer went back to the pool");
  });
});

Deno.test("a failed write leaves no timer running (ffmpeg exits at once)", async () => {
  // Timers are counted by wrapping the global functions for the duration of this test: one
  // still pending when writeVideo has returned was left behind.
  const pending = new Set<unknown>();
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  const wrappedSet = (fn: () => void, ms?: number) => {
    const id = realSet(() => {
      pending.delete(id);
      fn();
    }, ms);
    pending.add(id);
    return id;
  };
  const wrappedClear = (id?: ReturnType<typeof setTimeout>) => {
    pending.delete(id);
    realClear(id);
  };
  const dir = await Deno.makeTempDir({ prefix: "stqa_video_" });
  const wide = tensor(new Float32Array(3 * 2 * 20000), [1, 3, 2, 20000]);
  const mp4 = path.join(dir, "wide.mp4");
  Object.assign(globalThis, { setTimeout: wrappedSet, clearTimeout: wrappedClear });
  try {
    await assertVideoError(writeVideo(mp4, wide, { codec: "x264-420" }), mp4, /ffmpeg failed/);
    assert.equal(pending.size, 0, "writeVideo left a timer running");
  } finally {
    Object.assign(globalThis, { setTimeout: realSet, clearTimeout: realClear });
    wide.dispose();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("an interrupted write (SIGINT) leaves no partial file", {
  ignore: Deno.build.os === "windows",
}, async () => {
  await withDir(async (dir) => {
    const script = path.join(dir, "writer.ts");
    const mod = new URL("../mod.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { initGpu, tensor, writeVideo } from ${JSON.stringify(mod)};
await initGpu();
async function* forever() {
  for (;;) {
    yield tensor(new Float32Array(3 * 32 * 32).fill(0.5), [1, 3, 32, 32]);
    await new Promise((r) => setTimeout(r, 5));
  }
}
await writeVideo(${JSON.stringify(path.join(dir, "out.mkv"))}, forever(), { disposeInput: true });
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", path.join(ROOT, "deno.json"), script],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Wait until the temporary file exists, then interrupt.
    const deadline = Date.now() + 20000;
    let tmp: string | undefined;
    while (!tmp && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      tmp = (await listDir(dir)).find((n) => n.startsWith(".out.mkv.") && n.endsWith(".tmp"));
    }
    assert.ok(tmp, "the writer started a temporary file");
    child.kill("SIGINT");
    const [status, err] = await Promise.all([child.status, new Response(child.stderr).text()]);
    assert.equal(status.code, 130, err);
    assert.deepEqual(await listDir(dir), ["writer.ts"]);
  });
});

Deno.test("missing ffmpeg / ffprobe: a clear error with the install hint", async () => {
  await withDir(async (dir) => {
    const clip = path.join(dir, "c.mkv");
    await lavfiClip(clip, 16, 16, 2, FFV1);
    const before = { ffprobe: Deno.env.get("FFPROBE"), ffmpeg: Deno.env.get("FFMPEG") };
    const restore = () => {
      for (const [k, v] of Object.entries(before)) {
        if (v === undefined) Deno.env.delete(k.toUpperCase());
        else Deno.env.set(k.toUpperCase(), v);
      }
    };
    try {
      Deno.env.set("FFPROBE", path.join(dir, "no-ffprobe"));
      const e1 = await probeVideo(clip).then(() => null, (e) => e);
      assert.ok(e1 instanceof FfmpegNotFoundError, String(e1));
      assert.match(e1.message, /ffprobe could not be started.*FFPROBE.*apt-get install ffmpeg/s);
      restore();
      Deno.env.set("FFMPEG", path.join(dir, "no-ffmpeg"));
      const out = path.join(dir, "out.mkv");
      const frames: Tensor = tensor(new Float32Array(3 * 16), [1, 3, 4, 4]);
      const e2 = await writeVideo(out, frames).then(() => null, (e) => e);
      assert.ok(e2 instanceof FfmpegNotFoundError, String(e2));
      assert.match(e2.message, /set FFMPEG=/);
      const e3 = await readVideo(clip).then(() => null, (e) => e);
      assert.ok(e3 instanceof FfmpegNotFoundError, String(e3));
    } finally {
      restore();
    }
    assert.deepEqual(await listDir(dir), ["c.mkv"]);
  });
});
