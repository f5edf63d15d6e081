// The published CNN-family victims (VSFA, MDTVSFA) against a PyTorch reference with random
// weights (tests/fixtures/make_published_fixture.py): the same architecture at a reduced width,
// loaded through the real loader from files laid out as the authors' (torchvision's zip-format
// backbone file, the heads in PyTorch's legacy format).

import assert from "assert";
import { join } from "path";
import { initGpu, loadVictim, tensor } from "../mod.ts";
import { VSFA_DEFAULTS } from "../src/models/victims/mod.ts";
import { vsfaSize } from "../src/models/victims/vsfa.ts";

const DIR = new URL("./fixtures/published/", import.meta.url).pathname;
const fixture = JSON.parse(await Deno.readTextFile(join(DIR, "published.json")));
const BACKBONE = join(DIR, "resnet_w8.pth");
const HEAD = { vsfa: join(DIR, "vsfa_head.pt"), mdtvsfa: join(DIR, "mdtvsfa_head.pt") };
const CONFIG = { backbone: fixture.backbone };

await initGpu();

function frames() {
  return tensor(new Float32Array(fixture.frames), fixture.frames_shape);
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i] - want[i]));
    den = Math.max(den, Math.abs(want[i]));
  }
  return num / den;
}

Deno.test("published: the backbone's names and shapes are torchvision resnet50's", () => {
  const ours = Object.entries(vsfaSize("vsfa", VSFA_DEFAULTS).shapes)
    .filter(([k]) => k.startsWith("backbone."))
    .map(([k, v]) => [k.slice("backbone.".length), v] as const);
  const tv = Object.entries(fixture.torchvision_resnet50_shapes as Record<string, number[]>)
    .filter(([k]) => !k.startsWith("fc.") && !k.endsWith("num_batches_tracked"));
  assert.deepEqual(Object.fromEntries(ours), Object.fromEntries(tv));
});

for (const family of ["vsfa", "mdtvsfa"] as const) {
  Deno.test(`published: ${family} matches PyTorch (score, frame scores, input gradient)`, async () => {
    const want = fixture.cases[family];
    const victim = await loadVictim(family, { weights: [BACKBONE, HEAD[family]], config: CONFIG });
    try {
      const x = frames();
      x.requiresGrad = true;
      const score = victim.score(x);
      const got = (await score.read())[0];
      const expected = want.outputs[want.grad_of];
      assert.ok(
        Math.abs(got - expected) <= 1e-4 * Math.abs(expected),
        `${family} score ${got} vs PyTorch ${expected}`,
      );
      score.backward();
      const grad = await x.grad!.read();
      const e = relErr(grad, want.grad);
      assert.ok(e <= 1e-3, `${family} input gradient: max error ${e} of the largest`);
      const q = await victim.frameScores!(frames()).read();
      assert.ok(relErr(q, want.frame_scores) <= 1e-4, `${family} frame scores ${q}`);
      x.dispose();
    } finally {
      victim.dispose();
    }
  });
}

Deno.test("published: mdtvsfa's outputs (relative, mapped, each dataset's aligned)", async () => {
  const want = fixture.cases.mdtvsfa.outputs;
  for (const output of ["relative", "K", "C", "L", "N"]) {
    const victim = await loadVictim("mdtvsfa", {
      weights: [BACKBONE, HEAD.mdtvsfa],
      config: { ...CONFIG, output },
    });
    try {
      const got = (await victim.score(frames()).read())[0];
      assert.ok(
        Math.abs(got - want[output]) <= 1e-4 * Math.abs(want[output]),
        `${output}: ${got} vs ${want[output]}`,
      );
    } finally {
      victim.dispose();
    }
  }
});

Deno.test("published: vsfa's streamed score equals the whole clip's", async () => {
  const victim = await loadVictim("vsfa", { weights: [HEAD.vsfa, BACKBONE], config: CONFIG });
  try {
    const x = frames();
    const whole = (await victim.score(x).read())[0];
    const [, c, h, w] = fixture.frames_shape;
    const f = c * h * w;
    const stream = victim.stream();
    for (const [s, e] of [[0, 1], [1, 4]]) {
      stream.push(tensor(new Float32Array(fixture.frames.slice(s * f, e * f)), [e - s, c, h, w]));
    }
    const r = await stream.finish();
    assert.ok(Math.abs(r.score - whole) <= 1e-5 * Math.abs(whole), `${r.score} vs ${whole}`);
    assert.ok(relErr(r.frameScores, fixture.cases.vsfa.frame_scores) <= 1e-4);
  } finally {
    victim.dispose();
  }
});

Deno.test("published: weight files that do not fit are refused, naming file and tensor", async () => {
  await assert.rejects(
    () => loadVictim("vsfa", { weights: [HEAD.vsfa], config: CONFIG }),
    /no file gave the backbone .*VSFA\.pt .*ResNet-50/,
  );
  await assert.rejects(
    () => loadVictim("vsfa", { config: CONFIG }),
    /vsfa needs its weight files/,
  );
  // The full-width model against the reduced-width files: shapes named with the file.
  await assert.rejects(
    () => loadVictim("vsfa", { weights: [BACKBONE, HEAD.vsfa] }),
    /tensor 'conv1\.weight' of .*resnet_w8\.pth has shape \[8, 3, 7, 7\], but vsfa needs \[64, 3, 7, 7\] for 'backbone\.conv1\.weight'/,
  );
  // MDTVSFA's head for VSFA: its tensors are not VSFA's.
  await assert.rejects(
    () => loadVictim("vsfa", { weights: [BACKBONE, HEAD.mdtvsfa], config: CONFIG }),
    /mdtvsfa_head\.pt has tensor 'dimemsion_reduction\.weight' .*which vsfa does not have.*missing tensors 'ann\.fc0\.weight'/,
  );
  await assert.rejects(
    () => loadVictim("vsfa", { weights: [BACKBONE, BACKBONE, HEAD.vsfa], config: CONFIG }),
    /in two weight files/,
  );
  await assert.rejects(
    () => loadVictim("vsfa", { weights: [join(DIR, "missing.pt")], config: CONFIG }),
    /missing\.pt/,
  );
  await assert.rejects(
    () => loadVictim("vsfa-mini", { weights: [HEAD.vsfa] }),
    /for a published family/,
  );
});

Deno.test("published: deno task convert --victim writes a pair every command loads", async () => {
  const { convertCommand } = await import("../src/cli/convert.ts");
  const dir = await Deno.makeTempDir();
  try {
    const out = join(dir, "mdt");
    const code = await convertCommand([
      "--victim",
      "mdtvsfa",
      "--weights",
      `${BACKBONE},${HEAD.mdtvsfa}`,
      "--config",
      JSON.stringify({ ...CONFIG, output: "K", qMin: 1, qMax: 5 }),
      "--out",
      out,
    ]);
    assert.equal(code, 0);
    const json = JSON.parse(await Deno.readTextFile(`${out}.json`));
    assert.equal(json.family, "mdtvsfa");
    assert.deepEqual(json.converted.sources.map((s: { format: string }) => s.format), [
      "zip",
      "legacy",
    ]);
    const victim = await loadVictim(`${out}.safetensors`);
    try {
      const got = (await victim.score(frames()).read())[0];
      const want = fixture.cases.mdtvsfa.outputs.K;
      assert.ok(Math.abs(got - want) <= 1e-4 * Math.abs(want), `${got} vs ${want}`);
      assert.equal(victim.config.qMax, 5);
    } finally {
      victim.dispose();
    }
    // Files that do not fit: refused, nothing written.
    const bad = join(dir, "bad");
    assert.equal(
      await convertCommand(["--victim", "vsfa", "--weights", HEAD.vsfa, "--out", bad]),
      1,
    );
    assert.equal(await Deno.stat(`${bad}.json`).then(() => true, () => false), false);
    assert.equal(await convertCommand(["--victim", "vsfa", "--out", bad]), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
