// The videos people have, as inputs: a corrupt frame in the middle of a file (named, never
// silently dropped or returned as garbage), 10-bit and 4:2:2 sources (read as 8-bit RGB),
// alpha sources (refused with how to convert, or read with alpha: "drop"), files with no video,
// empty files and folders named like videos; and what an output keeps: colour tags written and
// read back, a variable frame rate detected. Clips are made on the fly with ffmpeg's lavfi.

import assert from "assert";
import * as path from "path";
import {
  initGpu,
  probeVideo,
  readVideo,
  readVideoChunks,
  type Tensor,
  VideoError,
  writeVideo,
} from "../mod.ts";

await initGpu();

/** Runs a tool (from PATH) with an argument array; returns stdout, throws with stderr. */
async function tool(name: "ffmpeg" | "ffprobe", args: string[]): Promise<Uint8Array> {
  const head = name === "ffmpeg" ? ["-nostdin", "-hide_banner", "-y"] : [];
  const out = await new Deno.Command(name, {
    args: [...head, "-loglevel", "error", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`${name} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return out.stdout;
}

/** A 64x48 lavfi testsrc2 clip of `frames` frames at 10 fps, encoded with `codec`. */
async function clip(file: string, frames: number, codec: string[], filter = "") {
  const src = `testsrc2=size=64x48:rate=10${filter ? `,${filter}` : ""}`;
  await tool("ffmpeg", ["-f", "lavfi", "-i", src, "-frames:v", String(frames), ...codec, file]);
}

/** ffmpeg's own decode of a file to rgb24 bytes (packed), as floats q/255 in planar order. */
async function ffmpegRgb(file: string, extra: string[] = []): Promise<Float32Array> {
  const raw = await tool("ffmpeg", [
    ...["-i", file, "-map", "0:v:0", ...extra, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
  ]);
  const [w, h] = [64, 48];
  const t = raw.length / (w * h * 3);
  const out = new Float32Array(raw.length);
  for (let f = 0; f < t; f++) {
    for (let p = 0; p < w * h; p++) {
      for (let c = 0; c < 3; c++) out[(f * 3 + c) * w * h + p] = raw[(f * w * h + p) * 3 + c] / 255;
    }
  }
  return out;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stqa_video_inputs_" });
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

/** Awaits `p`; it must fail with a one-line VideoError naming `file` that matches `pattern`. */
async function refused(p: Promise<unknown>, file: string, pattern: RegExp): Promise<VideoError> {
  const e = await p.then(() => null, (err) => err);
  assert.ok(e instanceof VideoError, `expected a VideoError for ${file}, got ${e}`);
  assert.equal(e.file, file);
  const first = e.message.split("\n")[0];
  assert.ok(first.startsWith(`${JSON.stringify(file)}: `), `names the file: ${first}`);
  assert.match(first, pattern);
  return e;
}

async function readChunks(file: string, options = {}): Promise<number> {
  let n = 0;
  for await (const c of readVideoChunks(file, { chunkFrames: 4, ...options })) {
    n += c.frames.shape[0];
    c.frames.dispose();
  }
  return n;
}

/** The video packets of a file: presentation timestamp (s), byte position and size. */
async function packets(file: string): Promise<{ pts: number; pos: number; size: number }[]> {
  const csv = new TextDecoder().decode(
    await tool("ffprobe", [
      ...["-select_streams", "v:0", "-show_entries", "packet=pts_time,pos,size"],
      ...["-of", "json", file],
    ]),
  );
  return (JSON.parse(csv).packets as { pts_time: string; pos: string; size: string }[]).map(
    (p) => ({ pts: Number(p.pts_time), pos: Number(p.pos), size: Number(p.size) }),
  );
}

Deno.test("a corrupt frame in the middle of an h264, MPEG-4 or ffv1 file: refused, naming that frame", async () => {
  await withDir(async (dir) => {
    const cases: [string, string[]][] = [
      ["h264.mp4", ["-c:v", "libx264", "-threads", "1", "-g", "10", "-pix_fmt", "yuv420p"]],
      ["mpeg4.avi", ["-c:v", "mpeg4", "-g", "10"]],
      ["ffv1.mkv", ["-c:v", "ffv1", "-level", "3", "-slicecrc", "1", "-g", "1"]],
    ];
    for (const [name, codec] of cases) {
      const good = path.join(dir, name);
      await clip(good, 30, codec);
      // Damage the middle of frame 10's packet (a key frame for every codec here).
      const pk = (await packets(good)).find((p) => Math.abs(p.pts - 1.0) < 1e-6);
      assert.ok(pk, `${name}: a packet at 1.0 s`);
      const bytes = await Deno.readFile(good);
      const at = pk.pos + Math.floor(pk.size / 2) - 16;
      for (let i = 0; i < 32; i++) bytes[at + i] ^= 0x5a;
      const bad = path.join(dir, `bad-${name}`);
      await Deno.writeFile(bad, bytes);
      const before = await listDir(dir);
      const e = await refused(readVideo(bad), bad, /corrupt/);
      assert.equal(e.frame, 10, `${name}: names frame 10: ${e.message.split("\n")[0]}`);
      assert.match(e.message.split("\n")[0], /\(at frame 10\)$/);
      // In chunks: the frames before the damage come, the damaged one never does.
      let delivered = 0;
      const e2 = await refused(
        (async () => {
          for await (const c of readVideoChunks(bad, { chunkFrames: 2 })) {
            delivered += c.frames.shape[0];
            c.frames.dispose();
          }
        })(),
        bad,
        /corrupt/,
      );
      assert.equal(e2.frame, 10, `${name}: chunks name frame 10`);
      assert.ok(delivered <= 30, `${name}: ${delivered} frames delivered`);
      // Asked for, what decodes is returned: every frame, none dropped silently.
      const lenient = await readVideo(bad, { strict: false });
      assert.equal(lenient.shape[0], 30, `${name}: strict: false reads all 30 frames`);
      lenient.dispose();
      assert.deepEqual(await listDir(dir), before, `${name}: nothing left behind`);
    }
  });
});

Deno.test("10-bit and 4:2:2 sources are read as 8-bit RGB, as ffmpeg converts them", async () => {
  await withDir(async (dir) => {
    const cases: [string, string[], string, number][] = [
      ["p10.mkv", ["-c:v", "libx264", "-pix_fmt", "yuv420p10le"], "yuv420p10le", 10],
      ["p10.nut", ["-c:v", "ffv1", "-pix_fmt", "yuv444p10le"], "yuv444p10le", 10],
      ["p422.mkv", ["-c:v", "libx264", "-pix_fmt", "yuv422p"], "yuv422p", 8],
      ["gbr12.mkv", ["-c:v", "ffv1", "-pix_fmt", "gbrp12le"], "gbrp12le", 12],
    ];
    for (const [name, codec, pixFmt, depth] of cases) {
      const file = path.join(dir, name);
      await clip(file, 6, codec);
      const info = await probeVideo(file);
      assert.deepEqual(
        [info.pixelFormat, info.bitDepth, info.alpha, info.frameCount],
        [pixFmt, depth, false, 6],
        name,
      );
      const frames = await readVideo(file);
      assert.deepEqual(frames.shape, [6, 3, 48, 64], name);
      const want = await ffmpegRgb(file);
      const got = await frames.read();
      frames.dispose();
      assert.equal(got.length, want.length, name);
      for (let i = 0; i < got.length; i++) {
        if (got[i] !== want[i]) assert.fail(`${name}: value ${i} is ${got[i]}, ffmpeg ${want[i]}`);
      }
      assert.equal(await readChunks(file), 6, `${name}: in chunks`);
    }
  });
});

Deno.test('alpha sources: refused with how to convert, or read with alpha: "drop"', async () => {
  await withDir(async (dir) => {
    const cases: [string, string[]][] = [
      ["yuva.mkv", ["-c:v", "ffv1", "-pix_fmt", "yuva420p"]],
      ["rgba.mov", ["-c:v", "png", "-pix_fmt", "rgba"]],
    ];
    for (const [name, codec] of cases) {
      const file = path.join(dir, name);
      await clip(file, 4, codec, "format=rgba");
      const info = await probeVideo(file);
      assert.ok(info.alpha, `${name}: the probe sees the alpha plane (${info.pixelFormat})`);
      const before = await listDir(dir);
      const pattern = /alpha \(transparency\) plane \(pixel format \w+\).*-pix_fmt yuv420p/;
      await refused(readVideo(file), file, pattern);
      await refused(readChunks(file), file, pattern);
      assert.deepEqual(await listDir(dir), before, `${name}: nothing left behind`);
      const frames = await readVideo(file, { alpha: "drop" });
      assert.deepEqual(frames.shape, [4, 3, 48, 64]);
      const want = await ffmpegRgb(file);
      const got = await frames.read();
      frames.dispose();
      assert.deepEqual(Array.from(got.subarray(0, 500)), Array.from(want.subarray(0, 500)));
    }
  });
});

Deno.test("no video stream, a zero-length file, a folder named like a video: one line naming the file", async () => {
  await withDir(async (dir) => {
    const audio = path.join(dir, "tone.mp4");
    await tool("ffmpeg", ["-f", "lavfi", "-i", "sine=d=0.3", "-c:a", "aac", audio]);
    const empty = path.join(dir, "empty.mp4");
    await Deno.writeFile(empty, new Uint8Array(0));
    const folder = path.join(dir, "folder.mkv");
    await Deno.mkdir(folder);
    const cases: [string, RegExp][] = [
      [audio, /has no video stream$/],
      [empty, /is empty \(0 bytes\), not a video$/],
      [folder, /is a directory \(a folder\), not a video file$/],
    ];
    const before = await listDir(dir);
    for (const [file, pattern] of cases) {
      for (const read of [probeVideo, readVideo, readChunks]) {
        const e = await refused(read(file), file, pattern);
        assert.ok(!e.message.includes("\n") || e.stderr, `one line: ${e.message}`);
      }
    }
    assert.deepEqual(await listDir(dir), before, "nothing left behind");
  });
});

Deno.test("probe: a variable frame rate is detected (and its average is the rate); constant rates are not", async () => {
  await withDir(async (dir) => {
    // 10 frames 0.1 s apart, then 10 frames 0.04 s apart: 19 intervals over 1.36 s.
    const vfr = path.join(dir, "vfr.mkv");
    await tool("ffmpeg", [
      ...["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-frames:v", "20"],
      ...["-vf", "settb=1/1000,setpts='if(lt(N,10),N*100,1000+(N-10)*40)'"],
      ...["-vsync", "passthrough", "-enc_time_base:v", "1/1000", "-c:v", "ffv1", vfr],
    ]);
    const v = await probeVideo(vfr);
    assert.equal(v.variableFrameRate, true);
    assert.ok(Math.abs(v.fps - 19 / 1.36) < 1e-9, `average rate ${v.fps}`);
    assert.equal(v.frameCount, 20);
    // Every frame is read once, none duplicated or dropped, and without a timestamp complaint.
    assert.equal(await readChunks(vfr), 20);
    const frames = await readVideo(vfr);
    const want = await ffmpegRgb(vfr, ["-vsync", "passthrough"]);
    assert.deepEqual(
      Array.from((await frames.read()).subarray(-300)),
      Array.from(want.subarray(-300)),
    );
    frames.dispose();
    // Constant rates, also NTSC's 30000/1001 in Matroska's millisecond timestamps.
    const ntsc = path.join(dir, "ntsc.mkv");
    await tool("ffmpeg", [
      ...["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30000/1001", "-frames:v", "12"],
      ...["-c:v", "ffv1", ntsc],
    ]);
    const n = await probeVideo(ntsc);
    assert.deepEqual([n.variableFrameRate, n.fpsFraction], [false, "30000/1001"]);
    const c = path.join(dir, "cfr.mp4");
    await clip(c, 12, ["-c:v", "libx264", "-pix_fmt", "yuv420p"]);
    assert.equal((await probeVideo(c)).variableFrameRate, false);
    // Without counting packets, only the header's rates say it: unknown when they agree.
    assert.equal((await probeVideo(c, { countFrames: false })).variableFrameRate, null);
  });
});

Deno.test("writeVideo colour: tags written are read back by the probe; YUV output converted with them", async () => {
  await withDir(async (dir) => {
    const src = path.join(dir, "src.mkv");
    await clip(src, 4, ["-c:v", "ffv1", "-pix_fmt", "bgr0"]);
    const frames: Tensor = await readVideo(src);
    const values = await frames.read();
    // Default: no tags on RGB output (as before).
    const plain = await writeVideo(path.join(dir, "plain.mkv"), frames);
    assert.deepEqual(plain.colour, { primaries: null, transfer: null, space: null, range: null });
    const p0 = await probeVideo(plain.path);
    assert.deepEqual([p0.colour.primaries, p0.colour.transfer], [null, null]);
    // RGB output keeps primaries and transfer; it has no YUV matrix or range to write.
    const bt2020 = { primaries: "bt2020", transfer: "smpte2084", space: "bt2020nc", range: "tv" };
    const rgb = await writeVideo(path.join(dir, "rgb.mkv"), frames, { colour: bt2020 });
    assert.deepEqual(rgb.colour, { ...bt2020, space: null, range: null });
    const p1 = await probeVideo(rgb.path);
    assert.deepEqual([p1.colour.primaries, p1.colour.transfer], ["bt2020", "smpte2084"]);
    assert.notEqual(p1.colour.space, "bt2020nc");
    const back = await readVideo(rgb.path);
    assert.deepEqual(Array.from(await back.read()), Array.from(values), "pixels unchanged");
    back.dispose();
    // YUV output: all four, and the pixels converted with that matrix (so they read back close).
    const bt709 = { primaries: "bt709", transfer: "bt709", space: "bt709", range: "tv" };
    for (const codec of ["x264-420", "x264-444"] as const) {
      const file = path.join(dir, `${codec}.mp4`);
      const opts = codec === "x264-444" ? { rgb: false } : {};
      const r = await writeVideo(file, frames, { codec, colour: bt709, ...opts });
      assert.deepEqual(r.colour, bt709);
      const p = await probeVideo(file);
      assert.deepEqual(p.colour, bt709, codec);
      const yuv = await readVideo(file);
      const got = await yuv.read();
      yuv.dispose();
      let se = 0;
      for (let i = 0; i < got.length; i++) se += (got[i] - values[i]) ** 2;
      const psnr = 10 * Math.log10(got.length / se);
      assert.ok(psnr > 30, `${codec}: read back at ${psnr.toFixed(1)} dB`);
    }
    const full = await writeVideo(path.join(dir, "full.mkv"), frames, {
      codec: "x264-420",
      colour: { space: "smpte170m", range: "pc" },
    });
    assert.deepEqual((await probeVideo(full.path)).colour.range, "pc");
    // Names ffmpeg would not convert to are refused by name.
    const bad = path.join(dir, "bad.mkv");
    await refused(
      writeVideo(bad, frames, { codec: "x264-420", colour: { space: "ictcp" } }),
      bad,
      /colour\.space/,
    );
    frames.dispose();
  });
});

Deno.test("writeVideo rotation: a display matrix in .mp4/.mov that the probe reads back; refused elsewhere", async () => {
  await withDir(async (dir) => {
    const src = path.join(dir, "src.mkv");
    await clip(src, 3, ["-c:v", "ffv1", "-pix_fmt", "bgr0"]);
    const frames = await readVideo(src);
    const values = await frames.read();
    for (const rotation of [90, 180, 270]) {
      for (const ext of [".mp4", ".mov"]) {
        const file = path.join(dir, `r${rotation}${ext}`);
        const r = await writeVideo(file, frames, { codec: "x264-444", rotation }); // lossless
        assert.equal(r.rotation, rotation);
        const info = await probeVideo(file);
        const quarter = rotation !== 180;
        assert.deepEqual(
          [info.rotation, info.width, info.height],
          [rotation, quarter ? 48 : 64, quarter ? 64 : 48],
          file,
        );
        // As stored: the frames given, bit for bit; upright: turned by the player's rotation.
        const stored = await readVideo(file, { autorotate: false });
        assert.deepEqual(stored.shape, [3, 3, 48, 64]);
        assert.deepEqual(Array.from(await stored.read()), Array.from(values), file);
        stored.dispose();
        const upright = await readVideo(file);
        assert.deepEqual(upright.shape, [3, 3, info.height, info.width]);
        upright.dispose();
      }
    }
    // No rotation: the default output, as before (no second pass, no tag).
    const plain = path.join(dir, "plain.mp4");
    await writeVideo(plain, frames, { codec: "x264-444" });
    assert.equal((await probeVideo(plain)).rotation, 0);
    const before = await listDir(dir);
    const mkv = path.join(dir, "r.mkv");
    await refused(
      writeVideo(mkv, frames, { rotation: 90 }),
      mkv,
      /rotation 90: \.mkv cannot hold a display rotation/,
    );
    const odd = path.join(dir, "odd.mp4");
    await refused(writeVideo(odd, frames, { codec: "x264-444", rotation: 45 }), odd, /rotation/);
    assert.deepEqual(await listDir(dir), before, "nothing left behind");
    frames.dispose();
  });
});
