// Issue 12, weights and training: every case runs in a sandbox (tests/_sandbox.ts) with sentinel
// files beside and above the output folder, and checks that nothing outside that folder changed.
//
// - weights files: a symbolic link to /dev/zero, a FIFO or a folder refused by name at once; a
//   symbolic link to a regular file followed; truncated and padded files refused naming the
//   tensor; NaN or infinite weights refused at load naming the file and the tensor (victims,
//   generators, checkpoints);
// - configs: out-of-bounds and too-large victim and generator configs refused before anything is
//   allocated, naming the field and value; the commands turn them, bad JSON and unknown keys into
//   one line with exit code 2;
// - outputs: `train-victim` and `train` check their output stem and checkpoint folder before
//   loading anything; existing weights are replaced only with --overwrite;
// - checkpoints: a truncated, foreign, mismatching or missing checkpoint with --resume is one line
//   naming the file (exit 1), and nothing is deleted.

import assert from "assert";
import { join } from "path";
import { trainCommand } from "../src/cli/train.ts";
import {
  checkGeneratorConfig,
  loadGenerator,
  saveGenerator,
  stqaNetSize,
} from "../src/models/generator_io.ts";
import { StqaNet, StqaNetConfigSchema } from "../src/models/stqa_net.ts";
import { trainVictimCommand } from "../src/cli/train_victim.ts";
import {
  checkVictimConfig,
  createVictim,
  loadVictim,
  saveVictim,
} from "../src/models/victims/mod.ts";
import { ModelConfigError } from "../src/models/victims/victim.ts";
import { getGpu } from "../src/gpu/device.ts";
import { poolStats } from "../src/gpu/pool.ts";
import {
  CheckpointError,
  loadTrainingCheckpoint,
  prepareWeightsOutput,
  readTrainingCheckpoint,
  saveTrainingCheckpoint,
} from "../src/io/checkpoint.ts";
import { Adam } from "../src/optim/optimizers.ts";
import {
  encodeSafetensors,
  loadSafetensors,
  readSafetensorsFile,
  SafetensorsError,
} from "../src/io/safetensors.ts";
import { tensor } from "../src/tensor/tensor.ts";
import { buildTinyProxy, initGpu } from "./_helpers.ts";
import { makeSandbox, type Sandbox } from "./_sandbox.ts";

await initGpu();

/** A tiny proxy dataset, built once for the file (outside every sandbox). */
let proxy: Promise<string> | undefined;
function tinyProxy(): Promise<string> {
  proxy ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "stqa_weights_proxy_" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    await buildTinyProxy(dir);
    return join(dir, "manifest.json");
  })();
  return proxy;
}

/**
 * A valid manifest in `dir` whose clips are all missing: the trainers accept it up front and
 * fail on the clips only when they load them, so a failure about anything else proves that it
 * came first.
 */
async function manifestWithoutClips(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "stqa_weights_manifest_" });
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  const file = join(dir, "manifest.json");
  await Deno.copyFile(await tinyProxy(), file);
  return file;
}

/** A tiny vsfa-mini config (the proxy clips are 3 frames of 32x32). */
const TINY_VICTIM = {
  channels: [4, 6],
  reduced: 5,
  hidden: 3,
  frames: 3,
  height: 32,
  width: 32,
};
/** A tiny STQA-Net config. */
const TINY_NET = { encoder: [4, 6, 8], hidden: 6, decoder: [6, 4] };

async function withSandbox(fn: (sb: Sandbox) => Promise<void>): Promise<void> {
  const sb = await makeSandbox();
  try {
    await fn(sb);
    await sb.assertUntouched();
  } finally {
    await sb.dispose();
  }
}

/** Runs a command in this process, capturing what it prints. */
async function capture(
  run: () => Promise<number>,
): Promise<{ code: number; err: string; out: string }> {
  const err: string[] = [];
  const out: string[] = [];
  const { error, log } = console;
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  try {
    const code = await run();
    return { code, err: err.join("\n"), out: out.join("\n") };
  } finally {
    console.error = error;
    console.log = log;
  }
}

/** Exactly one non-empty line on stderr, no stack trace, matching `pattern`. */
function assertOneLine(err: string, pattern: RegExp): void {
  const lines = err.split("\n").filter((l) => l.trim());
  assert.ok(!/^\s+at /m.test(err) && !/ZodError/.test(err), `a stack trace or ZodError:\n${err}`);
  assert.equal(lines.length, 1, `expected one line, got:\n${err}`);
  assert.match(lines[0], pattern);
}

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<Error> {
  const e = await p.then(() => null, (x) => x);
  assert.ok(e instanceof Error, `expected a rejection matching ${pattern}`);
  assert.match(e.message, pattern);
  assert.ok(!e.message.includes("\n"), `more than one line: ${e.message}`);
  return e;
}

/** A small victim saved as `<dir>/<name>.safetensors` + `.json`. */
async function savedVictim(dir: string, name = "v"): Promise<{ weights: string; json: string }> {
  const v = createVictim("vsfa-mini", { seed: 1, config: TINY_VICTIM });
  try {
    return await saveVictim(v, join(dir, name));
  } finally {
    v.dispose();
  }
}

/** Overwrites float `index` of tensor `name` in a safetensors file with `value`. */
async function poke(file: string, name: string, index: number, value: number): Promise<void> {
  const bytes = await Deno.readFile(file);
  const view = new DataView(bytes.buffer);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  view.setFloat32(8 + n + header[name].data_offsets[0] + 4 * index, value, true);
  await Deno.writeFile(file, bytes);
}

// ---------------------------------------------------------------------------------------------
// Weights files.

Deno.test("weights: a symbolic link to /dev/zero, a FIFO or a folder is refused by name at once", async () => {
  await withSandbox(async (sb) => {
    const { weights } = await savedVictim(sb.out);
    const zero = join(sb.out, "zero.safetensors");
    await Deno.symlink("/dev/zero", zero);
    const t0 = performance.now();
    await rejectsWith(
      loadSafetensors(zero, undefined, { what: "weights file" }),
      /zero\.safetensors: weights file is a character device, not a regular file$/,
    );
    assert.ok(performance.now() - t0 < 2000, "refused without reading");
    // Through loadVictim: the victim's weights replaced by the link, a FIFO, a folder.
    await Deno.remove(weights);
    await Deno.symlink("/dev/zero", weights);
    await rejectsWith(
      loadVictim(weights),
      /^loadVictim: .*v\.safetensors: weights file is a character device, not a regular file$/,
    );
    await Deno.remove(weights);
    const mk = await new Deno.Command("mkfifo", { args: [weights] }).output();
    assert.ok(mk.success, "mkfifo");
    await rejectsWith(loadVictim(weights), /v\.safetensors: weights file is a FIFO \(named pipe\)/);
    await Deno.remove(weights);
    await Deno.mkdir(weights);
    await rejectsWith(
      loadVictim(weights.replace(/\.safetensors$/, "")),
      /v\.safetensors: weights file is a folder, not a regular file$/,
    );
    // A folder given as the victim or generator: named as such.
    await rejectsWith(
      loadVictim(`${sb.out}/`),
      /^loadVictim: .*out\/ is a folder; give a victim's \.safetensors or \.json file/,
    );
    await rejectsWith(
      loadGenerator(sb.out),
      /^loadGenerator: .*out is a folder; give a generator's/,
    );
    // The config beside it as a FIFO would block a reader: refused by name too.
    const { json } = await savedVictim(sb.out, "c");
    await Deno.remove(json);
    await new Deno.Command("mkfifo", { args: [json] }).output();
    await rejectsWith(loadVictim(json), /c\.json: victim config is a FIFO \(named pipe\)/);
  });
});

Deno.test("weights: a symbolic link to a regular file is followed", async () => {
  await withSandbox(async (sb) => {
    const { weights, json } = await savedVictim(sb.work, "real");
    await Deno.mkdir(sb.out);
    await Deno.symlink(weights, join(sb.out, "linked.safetensors"));
    await Deno.symlink(json, join(sb.out, "linked.json"));
    const v = await loadVictim(join(sb.out, "linked.safetensors"));
    assert.equal(v.family, "vsfa-mini");
    v.dispose();
    await sb.mark();
  });
});

Deno.test("weights: truncated, padded and foreign files are refused before their data is read", async () => {
  await withSandbox(async (sb) => {
    await Deno.mkdir(sb.out);
    const good = encodeSafetensors({
      "a.weight": { shape: [4, 4], data: new Float32Array(16).fill(1) },
      "b.bias": { shape: [4], data: new Float32Array(4).fill(2) },
    });
    const file = join(sb.out, "w.safetensors");
    // Truncated: the last tensor's data is cut; the tensor is named.
    await Deno.writeFile(file, good.slice(0, good.length - 4));
    const e = await rejectsWith(
      readSafetensorsFile(file),
      /w\.safetensors: tensor 'b\.bias': data_offsets \[64, 80\] reach beyond the data section \(76 bytes; the file is truncated/,
    );
    assert.ok(e instanceof SafetensorsError && e.file === file);
    // Padded (or two files concatenated).
    await Deno.writeFile(file, Uint8Array.from([...good, ...good]));
    await rejectsWith(
      readSafetensorsFile(file),
      /w\.safetensors: \d+ byte\(s\) follow the last tensor's data .* padded or corrupt$/,
    );
    // A header length that no file of this size can hold (e.g. a video renamed).
    const foreign = good.slice();
    new DataView(foreign.buffer).setBigUint64(0, 2n ** 40n, true);
    await Deno.writeFile(file, foreign);
    await rejectsWith(readSafetensorsFile(file), /header length 1099511627776 exceeds/);
    // The good file still loads (so the checks fail for the stated reasons).
    await Deno.writeFile(file, good);
    const { tensors } = await readSafetensorsFile(file);
    assert.deepEqual(Object.keys(tensors).sort(), ["a.weight", "b.bias"]);
    await sb.mark();
  });
});

Deno.test("weights: NaN or infinite values are refused at load, naming the file and the tensor", async () => {
  await withSandbox(async (sb) => {
    await Deno.mkdir(sb.out);
    // A victim.
    const v = await savedVictim(sb.out);
    await poke(v.weights, "gru.weight_hh", 2, NaN);
    const before = poolStats().inUse;
    await rejectsWith(
      loadVictim(v.weights),
      /^loadVictim: .*v\.safetensors: tensor 'gru\.weight_hh' \[9,3\] holds 1 non-finite value\(s\) \(first: NaN at index 2\)/,
    );
    assert.equal(poolStats().inUse, before, "nothing left allocated");
    // A generator.
    const net = new StqaNet({ seed: 1, config: TINY_NET });
    const g = await saveGenerator(net, join(sb.out, "g"), {
      victim: "vsfa-mini",
      victimFamily: "vsfa-mini",
      jnd: "namm-st",
      eps: 1,
      qMin: 1,
      qMax: 5,
      median: 3,
    });
    net.dispose();
    await poke(g.weights, "dec.out.bias", 1, -Infinity);
    await rejectsWith(
      loadGenerator(g.weights),
      /^loadGenerator: .*g\.safetensors: tensor 'dec\.out\.bias' \[3\] holds 1 non-finite value\(s\) \(first: -Infinity at index 1\)/,
    );
    // A checkpoint: an Adam moment gone bad; the parameters are left as they were.
    const w = tensor([1, 2, 3], [3], { requiresGrad: true });
    const opt = new Adam([w], { lr: 0.1 });
    w.grad = tensor([1, 1, 1], [3]).keep();
    opt.step();
    opt.zeroGrad();
    const ck = join(sb.out, "checkpoint.safetensors");
    await saveTrainingCheckpoint(ck, { w }, opt, { step: 1 });
    await poke(ck, "adam_v.w", 0, Infinity);
    const w2 = tensor([7, 7, 7], [3], { requiresGrad: true });
    const opt2 = new Adam([w2], { lr: 0.1 });
    await rejectsWith(
      loadTrainingCheckpoint(ck, { w: w2 }, opt2),
      /checkpoint\.safetensors: not a usable checkpoint: tensor 'adam_v\.w' \[3\] holds 1 non-finite/,
    );
    assert.deepEqual(Array.from(await w2.read()), [7, 7, 7]);
    [w, w2].forEach((t) => t.dispose());
    opt.dispose();
    opt2.dispose();
    await sb.mark();
  });
});

// ---------------------------------------------------------------------------------------------
// Configs.

Deno.test("configs: out of bounds or too large for memory, refused before any allocation naming the field", () => {
  const before = poolStats();
  assert.throws(
    () => createVictim("vsfa-mini", { config: { hidden: 2 ** 20 } }),
    (e: unknown) =>
      e instanceof ModelConfigError &&
      e.message === "vsfa-mini config: hidden: Number must be less than or equal to 4096",
  );
  assert.throws(
    () => createVictim("vsfa-mini", { config: { hidden: 1e9, reduced: 2.5 } }),
    /vsfa-mini config: reduced: expected integer, got float; hidden: Number must be less/,
  );
  // Each width within bounds, together too large: the field is blamed, with the tensor and limit.
  assert.throws(
    () => createVictim("vsfa-mini", { config: { channels: [4096, 4096, 4096] } }),
    /vsfa-mini config: channels \[4096,4096,4096\]: .*'conv2\.weight' \[4096,4096,3,3\]/,
  );
  assert.throws(
    () => createVictim("simplevqa-mini", { config: { hidden: 4000, channels: [4096, 4096] } }),
    /simplevqa-mini config: channels \[4096,4096\]: /,
  );
  // A batch whose activations cannot fit one GPU buffer (the input alone, [B*T,6,H,W]).
  const limit = getGpu().limits.maxStorageBufferBindingSize;
  const batch = Math.ceil(limit / (4 * 8 * 6 * 512 * 512)) + 1;
  assert.throws(
    () => checkVictimConfig("simplevqa-mini", { height: 512, width: 512 }, { batch }),
    new RegExp(`the input \\[${batch * 8},6,512,512\\] \\(batch ${batch}\\) would take`),
  );
  assert.doesNotThrow(() => checkVictimConfig("simplevqa-mini", { height: 512, width: 512 }));
  // Generators.
  assert.throws(
    () => checkGeneratorConfig({ hidden: 1e9 }),
    /STQA-Net config: hidden 1000000000: 1000000000 is more than 4096$/,
  );
  assert.throws(
    () => checkGeneratorConfig({ hiden: 8 }),
    /Unrecognized key\(s\) in object: 'hiden'/,
  );
  assert.throws(
    () => checkGeneratorConfig({ encoder: [64, 4096, 4096], hidden: 4096 }),
    /STQA-Net config: (encoder|hidden) .*: .*(budget|GPU buffer)/,
  );
  const after = poolStats();
  assert.equal(after.created, before.created, "no GPU buffer was created");
  assert.equal(after.inUse, before.inUse);
});

Deno.test("configs: the size estimates name the same tensors and shapes as the models", () => {
  for (
    const config of [
      {},
      TINY_NET,
      { ...TINY_NET, variant: "two-branch", skips: false, input: "jnd+rgb" },
    ]
  ) {
    const c = StqaNetConfigSchema.parse(config);
    const net = new StqaNet({ seed: 1, config: c });
    const real = Object.fromEntries(
      Object.entries(net.parameters()).map(([k, p]) => [k, [...p.shape]]),
    );
    assert.deepEqual(stqaNetSize(c).shapes, real, JSON.stringify(config));
    net.dispose();
  }
  for (const family of ["vsfa-mini", "simplevqa-mini", "fastvqa-mini"] as const) {
    const v = createVictim(family, { seed: 1 });
    const real = Object.fromEntries(
      Object.entries(v.parameters()).map(([k, p]) => [k, [...p.shape]]),
    );
    assert.deepEqual(checkVictimConfig(family).size.shapes, real, family);
    v.dispose();
  }
});

Deno.test("configs: train-victim and train turn bad --config values into one line, exit 2", async () => {
  await withSandbox(async (sb) => {
    const out = join(sb.out, "v");
    const victim = (config: string) =>
      capture(() => trainVictimCommand(["--model", "vsfa-mini", "--out", out, "--config", config]));
    let r = await victim('{"hidden":1e9}');
    assert.equal(r.code, 2);
    assertOneLine(
      r.err,
      /^train-victim: --config: vsfa-mini config: hidden: Number must be less than or equal to 4096$/,
    );
    r = await victim('{"channels":[4096,4096,4096]}');
    assert.equal(r.code, 2);
    assertOneLine(
      r.err,
      /^train-victim: --config: vsfa-mini config: channels \[4096,4096,4096\]: /,
    );
    r = await victim("{hidden:3}");
    assert.equal(r.code, 2);
    assertOneLine(r.err, /^train-victim: --config: not valid JSON \(.*\): "\{hidden:3\}"$/);
    r = await victim("[1,2]");
    assert.equal(r.code, 2);
    assertOneLine(r.err, /^train-victim: --config: must be a JSON object/);
    r = await victim('{"hiden":3}');
    assert.equal(r.code, 2);
    assertOneLine(
      r.err,
      /^train-victim: --config: vsfa-mini config: Unrecognized key\(s\) in object: 'hiden'$/,
    );
    const gen = (config: string) =>
      capture(() => trainCommand(["--victim", "vsfa-mini", "--out", out, "--config", config]));
    r = await gen('{"hidden":1e9}');
    assert.equal(r.code, 2);
    assertOneLine(
      r.err,
      /^train: --config: STQA-Net config: hidden 1000000000: .* more than 4096$/,
    );
    r = await gen("nope");
    assert.equal(r.code, 2);
    assertOneLine(r.err, /^train: --config: not valid JSON/);
    r = await gen('{"encoder":[1,2]}');
    assert.equal(r.code, 2);
    assertOneLine(r.err, /^train: --config: STQA-Net config: encoder: /);
    // Nothing was created for any of them.
    assert.ok(!(await Deno.stat(sb.out).then(() => true, () => false)), "no output folder");
  });
});

// ---------------------------------------------------------------------------------------------
// Outputs, before training.

Deno.test("outputs: checked before anything is loaded; existing weights are not replaced", async () => {
  const clipless = await manifestWithoutClips();
  await withSandbox(async (sb) => {
    const missing = join(sb.work, "m", "manifest.json");
    await Deno.mkdir(join(sb.work, "m"));
    await Deno.copyFile(clipless, missing);
    await sb.mark();
    const victim = (...extra: string[]) =>
      capture(() =>
        trainVictimCommand([
          "--model",
          "vsfa-mini",
          "--manifest",
          missing,
          "--config",
          JSON.stringify(TINY_VICTIM),
          "--checkpoint-dir",
          join(sb.out, "ck"),
          ...extra,
        ])
      );
    // The stem's folder is a file (the sentinel beside --out).
    let r = await victim("--out", join(sb.work, "sentinel-beside.txt", "v"));
    assert.equal(r.code, 1);
    assertOneLine(
      r.err,
      /^train-victim: .*sentinel-beside\.txt: --out's folder is a file, not a folder$/,
    );
    // A stem that is no file name.
    for (const bad of [`${sb.out}/..`, `${sb.out}/`, join(sb.out, ".hidden")]) {
      r = await victim("--out", bad);
      assert.equal(r.code, 1, bad);
      assertOneLine(r.err, /^train-victim: --out ".*": not a file name stem/);
    }
    // Existing weights: refused, left as they were.
    await Deno.mkdir(sb.out, { recursive: true });
    const weights = join(sb.out, "v.safetensors");
    await Deno.writeTextFile(weights, "earlier weights");
    r = await victim("--out", join(sb.out, "v"));
    assert.equal(r.code, 1);
    assertOneLine(
      r.err,
      /^train-victim: .*v\.safetensors: already exists; not replaced \(pass --overwrite to replace it, or choose another --out\)$/,
    );
    assert.equal(await Deno.readTextFile(weights), "earlier weights");
    // With --overwrite the output passes; the run then fails on the missing clips, later.
    r = await victim("--out", join(sb.out, "v"), "--overwrite");
    assert.equal(r.code, 1);
    assertOneLine(r.err, /manifest\.json: \d+ clip file\(s\) of the train split are missing/);
    assert.equal(await Deno.readTextFile(weights), "earlier weights");
    // <stem>.json a folder; <stem>.safetensors a link out of the folder.
    await Deno.mkdir(join(sb.out, "d.json"));
    r = await victim("--out", join(sb.out, "d"), "--overwrite");
    assert.equal(r.code, 1);
    assertOneLine(r.err, /d\.json: --out names a folder; refused/);
    await Deno.symlink(join(sb.work, "sentinel-beside.txt"), join(sb.out, "l.safetensors"));
    r = await victim("--out", join(sb.out, "l"), "--overwrite");
    assert.equal(r.code, 1);
    assertOneLine(r.err, /l\.safetensors: a symbolic link out of --out's folder .*; refused$/);
    // The checkpoint folder is a file.
    r = await capture(() =>
      trainVictimCommand([
        "--model",
        "vsfa-mini",
        "--manifest",
        missing,
        "--out",
        join(sb.out, "w"),
        "--checkpoint-dir",
        weights,
      ])
    );
    assert.equal(r.code, 1);
    assertOneLine(r.err, /v\.safetensors: --checkpoint-dir is a file, not a folder$/);
    // An unwritable folder (only meaningful when not running as root).
    const ro = join(sb.out, "ro");
    await Deno.mkdir(ro);
    await Deno.chmod(ro, 0o555);
    const root = await Deno.writeTextFile(join(ro, "probe"), "").then(() => true, () => false);
    if (!root) {
      r = await victim("--out", join(ro, "v"));
      assert.equal(r.code, 1);
      assertOneLine(r.err, /ro: cannot write in --out: /);
    }
    await Deno.chmod(ro, 0o755);
    // The generator trainer: the same checks.
    await Deno.writeTextFile(join(sb.out, "g.json"), "{}");
    r = await capture(() =>
      trainCommand([
        "--victim",
        "vsfa-mini",
        "--manifest",
        missing,
        "--config",
        JSON.stringify(TINY_NET),
        "--out",
        join(sb.out, "g"),
        "--checkpoint-dir",
        join(sb.out, "ckg"),
      ])
    );
    assert.equal(r.code, 1);
    assertOneLine(r.err, /^train: .*g\.json: already exists; not replaced \(pass --overwrite/);
    assert.equal(await Deno.readTextFile(join(sb.out, "g.json")), "{}");
    // The library refuses the same way.
    await assert.rejects(
      prepareWeightsOutput(join(sb.out, "v"), {}),
      /v\.safetensors: already exists/,
    );
  });
});

Deno.test("outputs: a missing manifest is refused before any folder is created", async () => {
  await withSandbox(async (sb) => {
    const none = join(sb.work, "none.json");
    const args = ["--manifest", none, "--out", join(sb.out, "v"), "--checkpoint-dir", sb.out];
    let r = await capture(() => trainVictimCommand(["--model", "vsfa-mini", ...args]));
    assert.equal(r.code, 1);
    assertOneLine(
      r.err,
      /^train-victim: .*none\.json: no such file \(build it with `deno task data`\)$/,
    );
    r = await capture(() => trainCommand(["--victim", "vsfa-mini", ...args]));
    assert.equal(r.code, 1);
    assertOneLine(r.err, /^train: .*none\.json: no such file/);
    assert.ok(!(await Deno.stat(sb.out).then(() => true, () => false)), "nothing created");
  });
});

// ---------------------------------------------------------------------------------------------
// Checkpoints with --resume, and a whole tiny run.

Deno.test("train-victim: a tiny run, no replacement without --overwrite, bad checkpoints with --resume", async () => {
  const manifest = await tinyProxy();
  await withSandbox(async (sb) => {
    const ck = join(sb.out, "ck");
    const common = [
      "--model",
      "vsfa-mini",
      "--manifest",
      manifest,
      "--config",
      JSON.stringify(TINY_VICTIM),
      "--steps",
      "2",
      "--batch",
      "2",
      "--checkpoint-dir",
      ck,
      "--out",
      join(sb.out, "v"),
    ];
    let r = await capture(() => trainVictimCommand(common));
    assert.equal(r.code, 0, r.err);
    const files = ["v.safetensors", "v.json"].map((f) => join(sb.out, f));
    const made = await Promise.all(files.map((f) => Deno.readFile(f)));
    const json = JSON.parse(await Deno.readTextFile(files[1]));
    assert.ok(!json.training.command.includes("--overwrite"));
    const v = await loadVictim(files[0]);
    v.dispose();
    // Again: refused, nothing changed.
    r = await capture(() => trainVictimCommand(common));
    assert.equal(r.code, 1);
    assertOneLine(r.err, /v\.safetensors: already exists; not replaced/);
    for (const [i, f] of files.entries()) assert.deepEqual(await Deno.readFile(f), made[i]);
    // With --overwrite: replaced through temporary files, none left behind.
    r = await capture(() => trainVictimCommand([...common, "--overwrite"]));
    assert.equal(r.code, 0, r.err);
    const names = [...Deno.readDirSync(sb.out)].map((e) => e.name).sort();
    assert.deepEqual(names, ["ck", "v.json", "v.safetensors"]);
    assert.deepEqual([...Deno.readDirSync(ck)].map((e) => e.name), ["checkpoint.safetensors"]);

    // --resume from bad checkpoints: one line naming the file, exit 1, nothing deleted.
    const ckpt = join(ck, "checkpoint.safetensors");
    const good = await Deno.readFile(ckpt);
    const resume = async (pattern: RegExp) => {
      const before = [...Deno.readDirSync(sb.out)].map((e) => e.name).sort();
      const r = await capture(() =>
        trainVictimCommand([...common, "--out", join(sb.out, "v2"), "--resume"])
      );
      assert.equal(r.code, 1, r.err);
      assertOneLine(r.err, pattern);
      assert.deepEqual([...Deno.readDirSync(sb.out)].map((e) => e.name).sort(), before);
    };
    await Deno.writeFile(ckpt, good.slice(0, good.length - 10));
    await resume(
      /^train-victim: .*ck\/checkpoint\.safetensors: not a usable checkpoint: tensor '.*': .*truncated/,
    );
    await Deno.writeFile(ckpt, good.slice(0, 5));
    await resume(
      /checkpoint\.safetensors: not a usable checkpoint: the file is 5 bytes, too short/,
    );
    await Deno.writeFile(ckpt, encodeSafetensors({ x: { shape: [1], data: new Float32Array(1) } }));
    await resume(
      /checkpoint\.safetensors: no training state in its metadata \(not a checkpoint\)$/,
    );
    await Deno.writeFile(
      ckpt,
      encodeSafetensors({}, { state: JSON.stringify({ step: 1, losses: "x" }) }),
    );
    await resume(/checkpoint\.safetensors: checkpoint state: .*losses: expected array, got string/);
    await Deno.remove(ckpt);
    await resume(
      /--resume: no checkpoint at .*checkpoint\.safetensors \(start without --resume\)$/,
    );
    await Deno.mkdir(ckpt);
    await resume(/checkpoint\.safetensors: is not a regular file; refused \(--checkpoint-dir\)$/);
    await Deno.remove(ckpt);
    // A checkpoint of another config, and one of other options.
    await Deno.writeFile(ckpt, good);
    r = await capture(() =>
      trainVictimCommand([
        ...common,
        "--config",
        JSON.stringify({ ...TINY_VICTIM, hidden: 4 }),
        "--out",
        join(sb.out, "v2"),
        "--resume",
      ])
    );
    assert.equal(r.code, 1);
    assertOneLine(
      r.err,
      /checkpoint\.safetensors: does not match the model: tensor 'param\.gru\.weight_ih' has shape \[9,5\], the model \[12,5\]/,
    );
    r = await capture(() =>
      trainVictimCommand([...common, "--lr", "0.5", "--out", join(sb.out, "v3"), "--resume"])
    );
    assert.equal(r.code, 1);
    assertOneLine(r.err, /--resume: the checkpoint .* was made with other options \(lr 0\.002\)/);
    assert.deepEqual(await Deno.readFile(ckpt), good, "the checkpoint is untouched");
  });
});

Deno.test("train: a corrupt or missing checkpoint with --resume is one line, before loading", async () => {
  const clipless = await manifestWithoutClips();
  await withSandbox(async (sb) => {
    const ck = join(sb.out, "ck");
    await Deno.mkdir(ck, { recursive: true });
    const ckpt = join(ck, "checkpoint.safetensors");
    await Deno.writeFile(ckpt, new Uint8Array([1, 2, 3]));
    const run = () =>
      capture(() =>
        trainCommand([
          "--victim",
          "vsfa-mini",
          "--manifest",
          clipless,
          "--config",
          JSON.stringify(TINY_NET),
          "--out",
          join(sb.out, "g"),
          "--checkpoint-dir",
          ck,
          "--resume",
        ])
      );
    let r = await run();
    assert.equal(r.code, 1);
    assertOneLine(
      r.err,
      /^train: .*checkpoint\.safetensors: not a usable checkpoint: the file is 3 bytes/,
    );
    await Deno.remove(ckpt);
    r = await run();
    assert.equal(r.code, 1);
    assertOneLine(r.err, /^train: --resume: no checkpoint at .*checkpoint\.safetensors/);
    assert.deepEqual([...Deno.readDirSync(sb.out)].map((e) => e.name), ["ck"]);
    // The error type, for library users.
    await assert.rejects(
      readTrainingCheckpoint(ckpt),
      (e: unknown) => e instanceof CheckpointError && e.file === ckpt,
    );
  });
});
