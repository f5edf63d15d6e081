// The streamed attack (attackVideo: decode, JND, generator, quantise, encode and the victim's
// scores chunk by chunk): it equals the whole-clip computation (the scores equal the victim's
// whole-clip scores of the written file, and the written frames equal an attack in one chunk
// covering the whole clip), and its memory does not grow with the video's length (the GPU pool's
// growth and the largest buffer crossing between CPU and GPU are the same for 12 and 36 frames).

import assert from "assert";
import { join } from "path";
import { attackVideo, initGpu, loadGenerator, loadVictim, readVideo } from "../mod.ts";
import { getGpu, setBindingLimit } from "../src/gpu/device.ts";
import { poolStats, trimPool } from "../src/gpu/pool.ts";
import { noGrad, tidy } from "../src/tensor/tensor.ts";
import { clipFile, generatorFile, tempDirs } from "./_attack_fixtures.ts";

await initGpu();

const tmp = tempDirs("stqa_attack_stream_");

Deno.test("attackVideo streamed: scores equal the whole clip's, frames equal one chunk's", async () => {
  const dir = await tmp();
  const frames = 7;
  const input = await clipFile(dir, "clip.mkv", frames, 64, 64);
  const generator = await loadGenerator(await generatorFile(dir));
  const victim = await loadVictim("vsfa-mini");
  try {
    const streamed = await attackVideo(input, {
      generator,
      victim,
      outDir: join(dir, "streamed"),
      chunkFrames: 3,
    });
    const whole = await attackVideo(input, {
      generator,
      victim,
      outDir: join(dir, "whole"),
      chunkFrames: frames,
    });
    // A smaller adapter (binding limit lowered): the chunk is cut to what the generator can
    // bind, the victim splits its work, and the read-back goes in parts; the same result.
    const before = setBindingLimit(200_000);
    let limited;
    try {
      limited = await attackVideo(input, {
        generator,
        victim,
        outDir: join(dir, "limited"),
        chunkFrames: 3,
      });
    } finally {
      setBindingLimit(before);
    }
    assert.equal(streamed.chunkFrames, 3);
    assert.equal(whole.chunkFrames, frames);
    // 2 frames per chunk (the generator's 80 KB per frame); their clean frames, JND maps and
    // adversarial frames (229 KB) pass the limit together: read back one part at a time.
    assert.equal(limited.chunkFrames, 2);
    // The written frames: the same 8-bit values, chunked or in one chunk.
    const a = await readVideo(join(dir, "streamed", "clip", "adversarial.mkv"));
    const b = await readVideo(join(dir, "whole", "clip", "adversarial.mkv"));
    const c = await readVideo(join(dir, "limited", "clip", "adversarial.mkv"));
    const cleanT = await readVideo(input);
    try {
      assert.deepEqual(a.shape, [frames, 3, 64, 64]);
      const [av, bv, cv] = [await a.read(), await b.read(), await c.read()];
      let differ = 0;
      let differLimited = 0;
      for (let i = 0; i < av.length; i++) {
        if (av[i] !== bv[i]) differ++;
        if (cv[i] !== bv[i]) differLimited++;
      }
      assert.equal(differ, 0, `${differ} values differ between 3-frame chunks and one chunk`);
      assert.equal(differLimited, 0, `${differLimited} values differ under a lowered limit`);
      // The victim's scores of the whole clips, clean and adversarial, in one piece.
      const scores = async (x: typeof a) => {
        const [s, f] = tidy(() => noGrad(() => [victim.score(x), victim.frameScores!(x)]));
        const out = { score: (await s.read())[0], frameScores: Array.from(await f.read()) };
        s.dispose();
        f.dispose();
        return out;
      };
      const cleanWhole = await scores(cleanT);
      const advWhole = await scores(a);
      // The attack moved the scores (else equal scores would say little).
      assert.notEqual(advWhole.score, cleanWhole.score);
      // lavapipe gives the same float32 results for a chunk as for the whole clip; 1e-5
      // relative covers an adapter that sums a batch in another order (as
      // tests/victim_stream_test.ts explains), far below what a lost state changes.
      const close = (x: number, y: number, what: string) =>
        assert.ok(Math.abs(x - y) <= 1e-5 * Math.abs(y), `${what}: streamed ${x}, whole ${y}`);
      for (const r of [streamed, whole, limited]) {
        close(r.clean.score, cleanWhole.score, "clean score");
        close(r.attacks[0].score, advWhole.score, "adversarial score");
        assert.equal(r.clean.frameScores!.length, frames);
        r.clean.frameScores!.forEach((q, i) => close(q, cleanWhole.frameScores[i], `clean ${i}`));
        r.attacks[0].frameScores!.forEach((q, i) =>
          close(q, advWhole.frameScores[i], `adversarial ${i}`)
        );
      }
    } finally {
      a.dispose();
      b.dispose();
      c.dispose();
      cleanT.dispose();
    }
  } finally {
    generator.net.dispose();
    victim.dispose();
  }
});

/**
 * While `fn` runs: the GPU pool's growth (bytes of buffers created, from a trimmed pool) and the
 * largest buffer uploaded or read back (what the attack holds on the CPU at once).
 */
async function memoryOf(fn: () => Promise<unknown>): Promise<{ pool: number; largest: number }> {
  const queue = getGpu().device.queue;
  const write = queue.writeBuffer;
  const map = GPUBuffer.prototype.mapAsync;
  let largest = 0;
  queue.writeBuffer = function (this: GPUQueue, buffer: GPUBuffer, ...rest: unknown[]) {
    largest = Math.max(largest, (rest[1] as ArrayBufferView).byteLength);
    return (write as (...a: unknown[]) => undefined).call(this, buffer, ...rest);
  } as GPUQueue["writeBuffer"];
  GPUBuffer.prototype.mapAsync = function (this: GPUBuffer, ...args: unknown[]) {
    largest = Math.max(largest, this.size);
    return (map as (...a: unknown[]) => Promise<undefined>).apply(this, args);
  } as GPUBuffer["mapAsync"];
  trimPool();
  const before = poolStats().totalBytes;
  try {
    await fn();
  } finally {
    queue.writeBuffer = write;
    GPUBuffer.prototype.mapAsync = map;
  }
  const pool = poolStats().totalBytes - before;
  trimPool();
  return { pool, largest };
}

Deno.test("attackVideo streamed: memory does not grow with the video's length", async () => {
  const dir = await tmp();
  const w = 40, h = 24, chunk = 4;
  const generator = await loadGenerator(await generatorFile(dir));
  const victim = await loadVictim("vsfa-mini");
  try {
    const run = async (frames: number) => {
      const input = await clipFile(dir, `clip${frames}.mkv`, frames, w, h);
      return await memoryOf(() =>
        attackVideo(input, { generator, victim, outDir: join(dir, "out"), chunkFrames: chunk })
      );
    };
    await run(8); // compiles the kernels and warms the pool's size classes
    const short = await run(12);
    const long = await run(36);
    // A whole 12-frame clip as float32 is 138 KiB (36 frames: 415 KiB): a pipeline that held the
    // clip would differ by far more than this margin (a few frames of the pool's size classes).
    const frameBytes = 3 * w * h * 4;
    assert.ok(
      Math.abs(long.pool - short.pool) <= 2 * frameBytes,
      `GPU pool grew by ${short.pool} bytes for 12 frames, ${long.pool} for 36`,
    );
    assert.equal(long.largest, short.largest, "largest buffer crossing CPU and GPU");
    // One chunk's read-back: clean frames, JND maps and the output, 7 floats a pixel.
    assert.ok(short.largest <= 3 * chunk * frameBytes, `largest ${short.largest}`);
  } finally {
    generator.net.dispose();
    victim.dispose();
  }
});
