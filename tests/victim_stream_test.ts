// Victims scoring a clip chunk by chunk (`victim.stream()`): for each bundled victim, a random
// clip that fits whole is scored whole and streamed in chunks of several sizes, and the scores
// and per-frame scores agree; a stream that does not carry its state (a fresh stream per chunk)
// is shown to disagree, so the comparison can fail; the GPU memory a stream holds between
// chunks does not grow with the number of chunks; misuse gets one clear line.
//
// Tolerance: 1e-5 relative to the whole-clip value. The stream computes the same function with
// the same float32 kernels, only on other batch sizes (a chunk instead of the whole clip); on
// lavapipe the results are bit-identical, but an adapter may tile or sum a batch in another
// order, and float32 rounding of sums of a few thousand terms stays far below 1e-5 relative,
// while a state that is not carried moves some frame's score by 1e-3 or more (checked below for
// every split).

import assert from "assert";
import { poolStats } from "../src/gpu/pool.ts";
import { loadVictim, type TrainableFamily, type Victim } from "../src/models/victims/mod.ts";
import { noGrad, tensor, tidy } from "../src/tensor/tensor.ts";
import { initGpu, randu, RUN_SEED, withSeed } from "./_helpers.ts";

await initGpu();

const T = 11;
/** Frame sizes: the native size of the fixed-size families, a small non-square one for fastvqa. */
const SIZE: Record<TrainableFamily, { h: number; w: number }> = {
  "vsfa-mini": { h: 64, w: 64 },
  "simplevqa-mini": { h: 64, w: 64 },
  "fastvqa-mini": { h: 52, w: 60 },
  "vsfa-mobilenetv2": { h: 64, w: 72 },
};
const SPLITS: number[][] = [
  [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
  [3, 3, 3, 2],
  [4, 4, 3],
  [11],
  [1, 0, 2, 5, 3], // a first chunk of one frame (held until the next), and an empty chunk
];
const TOLERANCE = 1e-5;

interface Scores {
  score: number;
  frameScores: number[];
}

async function wholeScores(v: Victim, clip: Float32Array, h: number, w: number): Promise<Scores> {
  const [s, fs] = tidy(() =>
    noGrad(() => {
      const x = tensor(clip, [T, 3, h, w]);
      return [v.score(x), v.frameScores!(x)];
    })
  );
  const out = { score: (await s.read())[0], frameScores: Array.from(await fs.read()) };
  s.dispose();
  fs.dispose();
  return out;
}

function chunkOf(clip: Float32Array, start: number, n: number, h: number, w: number) {
  const f = 3 * h * w;
  return tensor(clip.slice(start * f, (start + n) * f), [n, 3, h, w]);
}

/** Streams the clip in chunks of `split`; with `reset`, a fresh stream per chunk (no state). */
async function streamed(
  v: Victim,
  clip: Float32Array,
  split: number[],
  h: number,
  w: number,
  reset = false,
): Promise<Scores> {
  if (reset) {
    const frameScores: number[] = [];
    let start = 0;
    for (const n of split.filter((n) => n > 0)) {
      const s = v.stream();
      const chunk = chunkOf(clip, start, n, h, w);
      s.push(chunk);
      chunk.dispose();
      frameScores.push(...(await s.finish()).frameScores);
      start += n;
    }
    return { score: NaN, frameScores };
  }
  const s = v.stream();
  let start = 0;
  for (const n of split) {
    // Inside a tidy, as a caller might: the stream's state must outlive the caller's scopes.
    tidy(() => {
      const chunk = chunkOf(clip, start, n, h, w);
      s.push(chunk);
    });
    start += n;
  }
  assert.equal(s.frames, T);
  const r = await s.finish();
  assert.equal(r.frames, T);
  return r;
}

function relErr(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
}

const FAMILIES: TrainableFamily[] = [
  "vsfa-mini",
  "simplevqa-mini",
  "fastvqa-mini",
  "vsfa-mobilenetv2",
];

for (const [k, family] of FAMILIES.entries()) {
  Deno.test(`${family}: streamed in chunks of 1, 3, 4, 11 and uneven ones equals the whole clip`, async () => {
    const v = await loadVictim(family);
    const { h, w } = SIZE[family];
    const clip = Float32Array.from(randu(T * 3 * h * w, RUN_SEED * 10 + k));
    const whole = await wholeScores(v, clip, h, w);
    assert.equal(whole.frameScores.length, T);
    for (const split of SPLITS) {
      const r = await streamed(v, clip, split, h, w);
      const what = `${family}, chunks [${split}]`;
      assert.equal(r.frameScores.length, T, what);
      r.frameScores.forEach((q, i) =>
        assert.ok(
          relErr(q, whole.frameScores[i]) <= TOLERANCE,
          withSeed(`${what}: frame ${i} streamed ${q}, whole ${whole.frameScores[i]}`),
        )
      );
      assert.ok(
        relErr(r.score, whole.score) <= TOLERANCE,
        withSeed(`${what}: score streamed ${r.score}, whole ${whole.score}`),
      );
      // The same comparison fails for a stream that forgets its state between chunks.
      if (split.length > 1) {
        const forgetful = await streamed(v, clip, split, h, w, true);
        const worst = Math.max(
          ...forgetful.frameScores.map((q, i) => relErr(q, whole.frameScores[i])),
        );
        assert.ok(
          worst > 100 * TOLERANCE,
          withSeed(`${what}: a stream without state is off by only ${worst}`),
        );
      }
    }
    v.dispose();
  });

  Deno.test(`${family}: a stream's GPU memory does not grow with the number of chunks`, async () => {
    const v = await loadVictim(family);
    const { h, w } = SIZE[family];
    const clip = Float32Array.from(randu(T * 3 * h * w, RUN_SEED * 10 + k + 5));
    // A first pass makes what a victim builds once on first use (vsfa-mobilenetv2 folds its
    // batch norms into its convolutions), which is not the stream's.
    const warm = chunkOf(clip, 0, 1, h, w);
    tidy(() => noGrad(() => v.score(warm)));
    warm.dispose();
    const before = poolStats().inUse;
    const s = v.stream();
    const held: number[] = [];
    for (let i = 0; i < T; i += 2) {
      const chunk = chunkOf(clip, i, Math.min(2, T - i), h, w);
      s.push(chunk);
      chunk.dispose();
      held.push(poolStats().inUse - before);
    }
    // One state tensor (the GRU's hidden state, the previous frame or its features), whatever
    // the number of chunks pushed.
    assert.deepEqual(held, held.map(() => 1), `${family}: buffers held after each chunk`);
    await s.finish();
    assert.equal(poolStats().inUse, before, `${family}: buffers held after finish()`);
    v.dispose();
  });
}

Deno.test("victim streams: misuse gets one clear line, and nothing is held after it", async () => {
  const v = await loadVictim("simplevqa-mini");
  const before = poolStats().inUse;
  const s = v.stream();
  await assert.rejects(
    () => s.finish(),
    /^RangeError: simplevqa-mini stream: no frames were pushed$/,
  );
  const small = tensor(new Float32Array(3 * 4 * 4), [1, 3, 4, 4]);
  assert.throws(() => s.push(small), /simplevqa-mini stream: push after the stream was finished/);
  const a = v.stream();
  const x = tensor(new Float32Array(2 * 3 * 64 * 64).fill(0.5), [2, 3, 64, 64]);
  a.push(x);
  const y = tensor(new Float32Array(3 * 32 * 64), [1, 3, 32, 64]);
  assert.throws(
    () => a.push(y),
    /simplevqa-mini stream: a chunk of 64x32 frames after frames of 64x64 \(frame 2\)/,
  );
  const z = tensor(new Float32Array(2 * 64 * 64), [2, 64, 64]);
  assert.throws(() => a.push(z), /a chunk must be frames \[t,3,H,W\].*got \[2,64,64\]/);
  a.dispose();
  a.dispose();
  assert.throws(() => a.push(x), /push after the stream was disposed/);
  await assert.rejects(() => a.finish(), /finish after the stream was disposed/);
  // A clip of one frame (held for frame 1, which never comes) is scored as the whole clip.
  const one = v.stream();
  const f = tensor(new Float32Array(3 * 64 * 64).fill(0.25), [1, 3, 64, 64]);
  one.push(f);
  const r = await one.finish();
  const whole = tidy(() => noGrad(() => v.score(f)));
  assert.equal(r.frames, 1);
  assert.ok(relErr(r.score, (await whole.read())[0]) <= TOLERANCE);
  [small, x, y, z, f, whole].forEach((t) => t.dispose());
  assert.equal(poolStats().inUse, before);
  v.dispose();
});
