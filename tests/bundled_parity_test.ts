// The bundled victims with their bundled weights against PyTorch references of the same
// architectures (tests/fixtures/make_bundled_victims_fixture.py, float64) on the first eight
// frames of a sample clip (committed as raw rgb24 bytes, so no decoder is involved): a change to
// an architecture (a pooling removed, a layer's order, the MSCN input) fails here.

import assert from "assert";
import { join } from "path";
import { initGpu, loadVictim, tensor } from "../mod.ts";

const DIR = new URL("./fixtures/bundled_victims/", import.meta.url).pathname;
const fixture = JSON.parse(await Deno.readTextFile(join(DIR, "scores.json")));

await initGpu();

/** rgb24 bytes [T,H,W,3] -> values in [0,1] laid out [T,3,H,W]. */
function planar(bytes: Uint8Array, [t, c, h, w]: number[]): Float32Array {
  const out = new Float32Array(t * c * h * w);
  for (let f = 0; f < t; f++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let k = 0; k < c; k++) {
          out[((f * c + k) * h + y) * w + x] = bytes[((f * h + y) * w + x) * c + k] / 255;
        }
      }
    }
  }
  return out;
}

for (
  const [family, want] of Object.entries(fixture.cases) as [string, {
    frames: string;
    shape: number[];
    score: number;
    frame_scores: number[];
  }][]
) {
  Deno.test(`bundled ${family}: the bundled weights score a sample clip as PyTorch`, async () => {
    const bytes = await Deno.readFile(join(DIR, want.frames));
    const x = tensor(planar(bytes, want.shape), want.shape);
    const victim = await loadVictim(family);
    try {
      const score = (await victim.score(x).read())[0];
      assert.ok(
        Math.abs(score - want.score) <= 1e-4 * Math.abs(want.score),
        `${family}: ${score} vs PyTorch ${want.score}`,
      );
      const q = await victim.frameScores!(x).read();
      want.frame_scores.forEach((v, i) =>
        assert.ok(Math.abs(q[i] - v) <= 1e-4 * Math.abs(v), `frame ${i}: ${q[i]} vs ${v}`)
      );
    } finally {
      victim.dispose();
      x.dispose();
    }
  });
}
