// PyTorch checkpoints read without Python (src/io/zip.ts, torch_pickle.ts, torch_checkpoint.ts)
// and `deno task convert`. The fixtures in tests/fixtures/torch_ckpt were written by torch 1.13
// (tests/fixtures/make_torch_checkpoints.py), and expected.json holds the values torch itself
// reads back from each, never values computed by this code.

import assert from "assert";
import { fileURLToPath } from "url";
import { main } from "../cli.ts";
import {
  ALLOWED_CLASSES,
  decodeSafetensors,
  decodeTorchCheckpoint,
  encodeSafetensors,
  PickleDict,
  PickleError,
  readTorchCheckpoint,
  type TensorData,
  TorchCheckpointError,
  torchCheckpointFormat,
  unpickle,
  ZipArchive,
  ZipError,
} from "../src/io/mod.ts";

const DIR = fileURLToPath(new URL("./fixtures/torch_ckpt/", import.meta.url));
const ROOT = fileURLToPath(new URL("../", import.meta.url));
/** The file the os.system fixture would create if its pickle were run. */
const MARKER = "/tmp/stqa_pickle_was_executed";

interface ExpectedTensor {
  dtype: string;
  shape: number[];
  values: number[];
}
interface Expected {
  format: "zip" | "legacy";
  key: string | null;
  strippedPrefix: string | null;
  ignored: string[];
  tensors: Record<string, ExpectedTensor>;
}

const EXPECTED: Record<string, Expected> = JSON.parse(
  await Deno.readTextFile(`${DIR}expected.json`),
);

/** Options a fixture needs (two_parts.pt has no default state_dict). */
const OPTIONS: Record<string, { key?: string }> = { "two_parts.pt": { key: "head" } };

function firstInexact(values: number[]): number {
  return values.findIndex((v) => Math.fround(v) !== v);
}

async function rejects(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error");
}

function throws(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error");
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("torch checkpoints: every good fixture gives back what torch reads from it", async () => {
  const names = Object.keys(EXPECTED);
  assert.ok(names.length >= 15, `only ${names.length} fixtures in expected.json`);
  for (const name of names) {
    const want = EXPECTED[name];
    const got = await readTorchCheckpoint(`${DIR}${name}`, OPTIONS[name] ?? {});
    const where = (k?: string) => `${name}${k ? ` ${k}` : ""}`;
    assert.equal(got.format, want.format, where());
    assert.equal(got.key, want.key ?? undefined, where());
    assert.equal(got.strippedPrefix, want.strippedPrefix ?? undefined, where());
    assert.deepEqual(got.ignored, want.ignored, where());
    assert.deepEqual(Object.keys(got.tensors), Object.keys(want.tensors), where());
    for (const [k, w] of Object.entries(want.tensors)) {
      const t = got.tensors[k];
      assert.equal(t.dtype, w.dtype, where(k));
      assert.deepEqual(t.shape, w.shape, where(k));
      assert.ok(t.data instanceof Float32Array, where(k));
      assert.equal(t.data.length, w.values.length, where(k));
      for (let i = 0; i < w.values.length; i++) {
        if (t.data[i] !== Math.fround(w.values[i])) {
          assert.fail(`${where(k)}[${i}]: ${t.data[i]}, torch says ${w.values[i]}`);
        }
      }
      const inexact = firstInexact(w.values);
      if (inexact < 0) assert.equal(t.rounded, undefined, where(k));
      else {
        assert.equal(t.rounded?.index, inexact, where(k));
        assert.equal(Number(t.rounded?.value), w.values[inexact], where(k));
      }
    }
  }
});

Deno.test("torch checkpoints: the fixtures cover both formats, every dtype and the layouts", () => {
  const formats = new Set(Object.values(EXPECTED).map((e) => e.format));
  assert.deepEqual([...formats].sort(), ["legacy", "zip"]);
  const t = EXPECTED["tensors.pt"].tensors;
  const dtypes = new Set(Object.values(t).map((x) => x.dtype));
  for (
    const d of [
      "float32",
      "float64",
      "float16",
      "bfloat16",
      "int64",
      "int32",
      "int16",
      "int8",
      "uint8",
      "bool",
    ]
  ) assert.ok(dtypes.has(d), d);
  assert.deepEqual(t.transposed.shape, [5, 3]);
  assert.deepEqual(t.scalar.shape, []);
  assert.deepEqual(t.empty.shape, [0, 3]);
  assert.ok(EXPECTED["net.pt"].tensors["bn.num_batches_tracked"].dtype === "int64");
  assert.equal(EXPECTED["big_int.pt"].tensors.big.values[1], 2 ** 24 + 1);
});

Deno.test("torch checkpoints: views of one storage each get their own array", async () => {
  for (const name of ["tensors.pt", "tensors_legacy.pt"]) {
    const { tensors } = await readTorchCheckpoint(`${DIR}${name}`);
    const views = [tensors.view_a, tensors.view_b, tensors.strided];
    assert.equal(new Set(views.map((v) => v.data.buffer)).size, 3, name);
    const before = tensors.view_b.data[0];
    tensors.view_a.data.fill(123);
    assert.equal(tensors.view_b.data[0], before, name);
  }
});

Deno.test("torch checkpoints: the module. prefix is stripped unless kept", async () => {
  const kept = await readTorchCheckpoint(`${DIR}dataparallel.pt`, { keepPrefix: true });
  assert.equal(kept.strippedPrefix, undefined);
  assert.ok(Object.keys(kept.tensors).every((k) => k.startsWith("module.")));
  const stripped = await readTorchCheckpoint(`${DIR}dataparallel_legacy.pt`);
  assert.deepEqual(
    Object.keys(stripped.tensors),
    Object.keys(kept.tensors).map((k) => k.slice("module.".length)),
  );
});

Deno.test("torch checkpoints: the state_dict's key is chosen, or the top level listed", async () => {
  const path = `${DIR}two_parts.pt`;
  const none = await rejects(() => readTorchCheckpoint(path));
  assert.ok(none instanceof TorchCheckpointError);
  assert.equal(none.file, path);
  assert.match(
    none.message,
    new RegExp(
      `^${escape(path)}: found no state_dict: .*top-level keys: encoder \\(dict of 2 ` +
        `tensor\\(s\\)\\), head \\(dict of 1 tensor\\(s\\)\\), epoch \\(int 3\\)$`,
    ),
  );
  const enc = await readTorchCheckpoint(path, { key: "encoder" });
  assert.deepEqual(Object.keys(enc.tensors), ["w", "b"]);
  assert.deepEqual(enc.topLevelKeys, ["encoder", "head", "epoch"]);
  const missing = await rejects(() => readTorchCheckpoint(path, { key: "model" }));
  assert.match(
    missing.message,
    new RegExp(`^${escape(path)}: no top-level key 'model'; top-level`),
  );
  const notDict = await rejects(() => readTorchCheckpoint(path, { key: "epoch" }));
  assert.match(notDict.message, /top-level key 'epoch' holds int 3, not a dict of tensors/);
  // The wrapper's other entries are not the state_dict's.
  const wrapped = await readTorchCheckpoint(`${DIR}wrapped.pt`);
  assert.deepEqual(wrapped.topLevelKeys, ["state_dict", "epoch", "note"]);
});

Deno.test("torch checkpoints: bad files are refused naming the file, the class or the key", async () => {
  await Deno.remove(MARKER).catch(() => {});
  const cases: [string, RegExp][] = [
    ["bad_truncated.pt", /: not a zip archive \(no end of central directory\)/],
    ["bad_crc.pt", /: tensor \S+: entry tensors\/data\/0 fails its CRC-32 check \(stored 0x/],
    [
      "bad_os_system.pt",
      /: refused pickle class os\.system \(only the classes of a state_dict are allowed; nothing is executed\)$/,
    ],
    [
      "bad_truncated_legacy.pt",
      /: tensor \S+ needs \d+ bytes of storage \d+, which has \d+ \(the file is truncated\)$/,
    ],
    ["bad_whole_model.pt", /: refused pickle class torch\.nn\.modules\.container\.Sequential \(/],
  ];
  for (const [name, pattern] of cases) {
    const path = `${DIR}${name}`;
    const e = await rejects(() => readTorchCheckpoint(path));
    assert.ok(e instanceof TorchCheckpointError, `${name}: ${e}`);
    assert.equal(e.file, path);
    assert.ok(e.message.startsWith(`${path}: `), e.message);
    assert.match(e.message, pattern, name);
  }
  // Were the os.system pickle run, it would have created MARKER.
  assert.equal(await Deno.stat(MARKER).then(() => true, () => false), false);
});

Deno.test("torch checkpoints: a bad zip entry is named (truncated, unknown method)", () => {
  const bytes = Deno.readFileSync(`${DIR}bad_os_system.pt`);
  const zip = ZipArchive.open(bytes, { name: "x.pt" });
  const entry = zip.entries[0];
  assert.equal(entry.name, "bad_os_system/data.pkl");
  // The central directory entry of data.pkl: its sizes, then its method.
  const view = new DataView(bytes.buffer);
  const cd = view.getUint32(bytes.length - 22 + 16, true);
  const big = bytes.slice();
  new DataView(big.buffer).setUint32(cd + 20, 100000, true);
  new DataView(big.buffer).setUint32(cd + 24, 100000, true);
  const truncated = throws(() => ZipArchive.open(big, { name: "x.pt" }).read(entry.name));
  assert.ok(truncated instanceof ZipError);
  assert.equal(truncated.message, "x.pt: entry bad_os_system/data.pkl is truncated");
  const method = bytes.slice();
  new DataView(method.buffer).setUint16(cd + 10, 12, true);
  assert.match(
    throws(() => ZipArchive.open(method, { name: "x.pt" }).read(entry.name)).message,
    /^x\.pt: entry bad_os_system\/data\.pkl uses compression method 12; only stored/,
  );
  assert.match(
    throws(() => ZipArchive.open(new Uint8Array(100), { name: "y.zip" })).message,
    /^y\.zip: not a zip archive \(no end of central directory\)$/,
  );
});

Deno.test("zip: ZIP64 and deflated archives hold the same entries as the original", () => {
  const plain = ZipArchive.open(Deno.readFileSync(`${DIR}tensors.pt`));
  const names = plain.entries.map((e) => e.name);
  for (const [file, method] of [["tensors_zip64.pt", 0], ["tensors_deflate.pt", 8]] as const) {
    const zip = ZipArchive.open(Deno.readFileSync(`${DIR}${file}`), { name: file });
    assert.deepEqual(zip.entries.map((e) => e.name), names, file);
    for (const e of zip.entries) {
      assert.equal(e.method, e.size === 0 ? e.method : method, `${file} ${e.name}`);
      assert.deepEqual(zip.read(e.name), plain.read(e.name), `${file} ${e.name}`);
    }
  }
  const z64 = Deno.readFileSync(`${DIR}tensors_zip64.pt`);
  // The 32-bit fields really are saturated: the values come from the ZIP64 records.
  assert.equal(new DataView(z64.buffer).getUint32(z64.length - 22 + 16, true), 0xffffffff);
});

/** A pickle from opcodes: numbers are bytes, strings their Latin-1 bytes. */
function pickle(...parts: (number | string)[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "number") out.push(p);
    else for (const c of p) out.push(c.charCodeAt(0));
  }
  return new Uint8Array(out);
}

Deno.test("torch pickle: classes outside the allow-list are refused at their GLOBAL", () => {
  const refused = [
    "os.system",
    "posix.system",
    "builtins.eval",
    "__builtin__.exec",
    "builtins.getattr",
    "subprocess.check_output",
    "torch.nn.modules.linear.Linear",
    "numpy.core.multiarray._reconstruct",
    "torch._utils._rebuild_qtensor",
    "collections.defaultdict",
  ];
  for (const q of refused) {
    const dot = q.lastIndexOf(".");
    const [module, name] = [q.slice(0, dot), q.slice(dot + 1)];
    assert.ok(!ALLOWED_CLASSES.includes(q), q);
    // protocol 2 GLOBAL, then a string argument, TUPLE1, REDUCE, STOP
    const p2 = pickle(0x80, 2, 0x63, `${module}\n${name}\n`, 0x8c, 2, "ls", 0x85, 0x52, 0x2e);
    const e2 = throws(() => unpickle(p2, { name: "evil.pkl" }));
    assert.ok(e2 instanceof PickleError);
    assert.equal(
      e2.message,
      `evil.pkl: refused pickle class ${q} (only the classes of a state_dict are allowed; ` +
        "nothing is executed)",
    );
    assert.equal(e2.offset, 2); // the GLOBAL itself: no argument was read, nothing called
    // protocol 4 STACK_GLOBAL
    const p4 = pickle(
      0x80,
      4,
      0x8c,
      module.length,
      module,
      0x8c,
      name.length,
      name,
      0x93,
      0x29,
      0x52,
      0x2e,
    );
    assert.match(throws(() => unpickle(p4, { name: "evil.pkl" })).message, /refused pickle class/);
  }
  // Through the checkpoint reader, a legacy-looking file names the file.
  const legacy = pickle(0x80, 2, 0x63, "builtins\neval\n", 0x8c, 1, "1", 0x85, 0x52, 0x2e);
  const e = throws(() => decodeTorchCheckpoint(legacy, { name: "evil.pt" }));
  assert.ok(e instanceof TorchCheckpointError);
  assert.match(e.message, /^evil\.pt: refused pickle class builtins\.eval \(/);
});

Deno.test("torch pickle: unknown opcodes, truncation and bad memo are errors with offsets", () => {
  const inst = pickle(0x80, 2, 0x69, "os\nsystem\n", 0x2e);
  assert.equal(
    throws(() => unpickle(inst, { name: "a.pkl" })).message,
    "a.pkl: unsupported pickle opcode 0x69 (INST) at byte 2",
  );
  assert.equal(
    throws(() => unpickle(pickle(0x80, 2, 0x4e, 0xff), { name: "a.pkl" })).message,
    "a.pkl: unsupported pickle opcode 0xff at byte 3",
  );
  assert.match(
    throws(() => unpickle(pickle(0x80, 2, 0x58, 10, 0, 0, 0, "ab"), { name: "a.pkl" })).message,
    /^a\.pkl: the pickle is truncated at byte 9/,
  );
  assert.match(
    throws(() => unpickle(pickle(0x80, 2, 0x68, 5, 0x2e), { name: "a.pkl" })).message,
    /^a\.pkl: memo index 5 at byte 2 was never set$/,
  );
  // A storage class may be named (for a tensor's storage) but never called.
  assert.match(
    throws(() =>
      unpickle(pickle(0x80, 2, 0x63, "torch\nFloatStorage\n", 0x29, 0x52, 0x2e), { name: "a" })
    ).message,
    /calls torch\.FloatStorage, which is not allowed/,
  );
});

Deno.test("torch pickle: Python's own pickles (protocols 2, 4, 5) read as the values they hold", () => {
  for (const protocol of [2, 4, 5]) {
    const bytes = Deno.readFileSync(`${DIR}values_p${protocol}.pkl`);
    const { value, end } = unpickle(bytes, { name: `values_p${protocol}.pkl` });
    assert.equal(end, bytes.length);
    assert.ok(value instanceof PickleDict && !value.ordered);
    const v = value as PickleDict;
    assert.deepEqual(v.get("ints"), [
      0,
      1,
      -1,
      255,
      256,
      65535,
      65536,
      -(2 ** 31),
      2 ** 31,
      2n ** 53n,
      2n ** 63n,
      -(2n ** 70n),
    ]);
    assert.equal(v.get("float"), 1.5);
    assert.equal(v.get("neg"), -0.25);
    assert.equal(v.get("text"), "h\u00e9llo \u2713");
    assert.deepEqual(v.get("bytes"), new Uint8Array([0, 1, 255]));
    const t = v.get("tuple") as unknown[];
    assert.ok(Object.isFrozen(t) && Object.isFrozen(t[1]) && Object.isFrozen(t[2]));
    assert.deepEqual(t, [1, [2], []]);
    assert.deepEqual(v.get("set"), new Set([3]));
    assert.deepEqual(v.get("frozen"), new Set([4]));
    assert.equal(v.get("none"), null);
    assert.deepEqual(v.get("bools"), [true, false]);
    const od = v.get("od") as PickleDict;
    assert.ok(od instanceof PickleDict && od.ordered);
    assert.deepEqual([...od], [["a", 1], ["b", [2]]]);
    const shared = v.get("shared") as unknown[][];
    assert.equal(shared[0], shared[1]); // one list, memoised
    assert.deepEqual(shared[0], [7, "x"]);
  }
});

Deno.test("torch checkpoints: missing, empty and foreign files are named", async () => {
  const missing = await rejects(() => readTorchCheckpoint(`${DIR}nope.pt`));
  assert.equal(missing.message, `${DIR}nope.pt: no such checkpoint`);
  const folder = await rejects(() => readTorchCheckpoint(DIR));
  assert.match(folder.message, /checkpoint is a folder, not a regular file/);
  assert.equal(
    throws(() => decodeTorchCheckpoint(new Uint8Array(0), { name: "e.pt" })).message,
    "e.pt: the file is empty",
  );
  const st = encodeSafetensors({ w: { shape: [1], data: new Float32Array([1]) } });
  assert.equal(torchCheckpointFormat(st), undefined);
  assert.match(
    throws(() => decodeTorchCheckpoint(st, { name: "w.safetensors" })).message,
    /^w\.safetensors: not a PyTorch checkpoint \(it looks like a safetensors file\)$/,
  );
  // A plain pickle is not a checkpoint: it lacks torch's magic number.
  assert.match(
    throws(() => decodeTorchCheckpoint(pickle(0x80, 2, 0x4b, 7, 0x2e), { name: "p.pkl" }))
      .message,
    /^p\.pkl: a pickle without torch's magic number/,
  );
});

Deno.test("torch checkpoints: the tensors are TensorData for safetensors", async () => {
  const ckpt = await readTorchCheckpoint(`${DIR}net_legacy.pt`);
  const tensors: Record<string, TensorData> = ckpt.tensors;
  const back = decodeSafetensors(encodeSafetensors(tensors)).tensors;
  for (const [k, t] of Object.entries(tensors)) {
    assert.deepEqual(back[k].shape, t.shape);
    assert.deepEqual(back[k].data, t.data);
  }
});

// ---- deno task convert ----

async function capture(
  fn: () => Promise<number>,
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await fn(), out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

async function sha256(path: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(path)));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("convert: a checkpoint into safetensors and a JSON of its source", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "stqa_convert_" });
  try {
    const input = `${DIR}wrapped_legacy.pt`;
    const want = EXPECTED["wrapped_legacy.pt"];
    const r = await capture(() => main(["convert", "--input", input, "--out", `${tmp}/w`]));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /legacy format, 9 tensor\(s\) \(under 'state_dict'\)/);
    const st = decodeSafetensors(await Deno.readFile(`${tmp}/w.safetensors`));
    assert.deepEqual(Object.keys(st.tensors).sort(), Object.keys(want.tensors).sort());
    for (const [k, w] of Object.entries(want.tensors)) {
      assert.deepEqual(st.tensors[k].shape, w.shape, k);
      assert.deepEqual([...st.tensors[k].data], w.values.map(Math.fround), k);
    }
    assert.equal(st.metadata.source, "wrapped_legacy.pt");
    const json = JSON.parse(await Deno.readTextFile(`${tmp}/w.json`));
    assert.equal(json.source.file, "wrapped_legacy.pt");
    assert.equal(json.source.sha256, await sha256(input));
    assert.equal(json.source.format, "legacy");
    assert.equal(json.source.key, "state_dict");
    assert.equal(json.mode, "generic");
    assert.deepEqual(
      json.tensors,
      Object.entries(want.tensors).map(([name, w]) => ({ name, shape: w.shape, dtype: w.dtype })),
    );
    // Existing outputs are kept without --overwrite.
    const again = await capture(() => main(["convert", "-i", input, "-o", `${tmp}/w`]));
    assert.equal(again.code, 1);
    assert.match(again.err, /w\.safetensors: already exists; not replaced \(pass --overwrite/);
    const over = await capture(() =>
      main(["convert", "-i", `${tmp}/w.safetensors`, "-o", `${tmp}/w`, "--overwrite"])
    );
    assert.equal(over.code, 0, over.err);
    const json2 = JSON.parse(await Deno.readTextFile(`${tmp}/w.json`));
    assert.equal(json2.source.format, "safetensors");
    assert.deepEqual(
      json2.tensors.map((t: { name: string }) => t.name).sort(),
      json.tensors.map((t: { name: string }) => t.name).sort(),
    );
    assert.deepEqual((await Array.fromAsync(Deno.readDir(tmp))).map((e) => e.name).sort(), [
      "w.json",
      "w.safetensors",
    ]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("convert: refusals are one line naming the file and the tensor or class", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "stqa_convert_" });
  try {
    const big = await capture(() => main(["convert", "-i", `${DIR}big_int.pt`, "-o", `${tmp}/b`]));
    assert.equal(big.code, 1);
    assert.equal(
      big.err,
      `convert: ${DIR}big_int.pt: integer tensor(s) float32 cannot hold exactly: big (int64: ` +
        "16777217 at index 1); refused",
    );
    const evil = await capture(() =>
      main(["convert", "-i", `${DIR}bad_os_system.pt`, "-o", `${tmp}/b`])
    );
    assert.equal(evil.code, 1);
    assert.match(evil.err, /^convert: .*bad_os_system\.pt: refused pickle class os\.system \(/);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(tmp)), []);
    const missing = await capture(() =>
      main(["convert", "-i", `${tmp}/none.pt`, "-o", `${tmp}/sub/b`])
    );
    assert.equal(missing.code, 1);
    assert.equal(missing.err, `convert: ${tmp}/none.pt: no such file`);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(tmp)), []); // no output folder made
    const usage = await capture(() => main(["convert", "-i", `${DIR}net.pt`]));
    assert.equal(usage.code, 2);
    assert.match(usage.err, /--out: required/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("convert: the deno task runs with its narrow permissions", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "stqa_convert_" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "convert", "-i", `${DIR}tensors_zip64.pt`, "-o", `${tmp}/t`],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, err);
    const st = decodeSafetensors(await Deno.readFile(`${tmp}/t.safetensors`));
    assert.equal(
      Object.keys(st.tensors).length,
      Object.keys(EXPECTED["tensors.pt"].tensors).length,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
