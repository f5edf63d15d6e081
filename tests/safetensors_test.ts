// safetensors I/O: byte-level round trips, GPU save/load (fresh and into existing tensors),
// clear errors for corrupted files and mismatches, atomic writes, and interop with a file written
// by hand in Python (tests/fixtures/safetensors_py.py).

import assert from "assert";
import { join } from "path";
import { loadSafetensors, nn, saveSafetensors, type Tensor, tensor } from "../mod.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  SafetensorsError,
  safetensorsMetadata,
  type TensorData,
} from "../src/io/safetensors.ts";
import { initGpu, numel, randn, RUN_SEED, withSeed } from "./_helpers.ts";

await initGpu();

function randomTensors(seed: number): Record<string, TensorData> {
  const shapes: Record<string, number[]> = {
    "enc.conv1.weight": [16, 3, 3, 3],
    "enc.conv1.bias": [16],
    "gru.w": [7, 5],
    "odd": [3, 1, 5, 7],
    "scalar": [],
    "empty": [0, 4],
  };
  const out: Record<string, TensorData> = {};
  Object.entries(shapes).forEach(([name, shape], i) => {
    out[name] = { shape, data: Float32Array.from(randn(numel(shape), seed + i)) };
  });
  return out;
}

/** A file with the given header (object or raw text) and data bytes. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function assertDecodeError(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(() => decodeSafetensors(bytes), (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, `expected a SafetensorsError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stqa_safetensors_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("encode/decode round trip is bit-exact, with metadata and a padded header", () => {
  const tensors = randomTensors(RUN_SEED);
  tensors["special"] = {
    shape: [5],
    data: new Float32Array([-0, Infinity, -Infinity, NaN, 1e-45]),
  };
  const meta = { seed: String(RUN_SEED), command: "deno task train --lr 1e-3" };
  const bytes = encodeSafetensors(tensors, meta);
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(headerLength % 8, 0, withSeed("header padded to 8 bytes"));
  const back = decodeSafetensors(bytes);
  assert.deepEqual(back.metadata, meta, withSeed("metadata"));
  assert.deepEqual(
    Object.keys(back.tensors).sort(),
    Object.keys(tensors).sort(),
    withSeed("tensor names"),
  );
  for (const [name, t] of Object.entries(tensors)) {
    assert.deepEqual(back.tensors[name].shape, t.shape, withSeed(`${name} shape`));
    // Object.is: NaN and -0 exact.
    assert.deepEqual(back.tensors[name].data, t.data, withSeed(`${name} data`));
  }
  // Laid out without gaps: the data section is exactly the sum of the tensor sizes.
  const total = Object.values(tensors).reduce((s, t) => s + 4 * t.data.length, 0);
  assert.equal(bytes.length, 8 + headerLength + total, withSeed("file size"));
});

Deno.test("decode reads a file written by hand in Python (unaligned, unordered)", async () => {
  const bytes = await Deno.readFile(new URL("./fixtures/python.safetensors", import.meta.url));
  const expected = JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/python_safetensors.json", import.meta.url)),
  );
  const { tensors, metadata } = decodeSafetensors(bytes);
  assert.deepEqual(metadata, expected.metadata);
  assert.deepEqual(Object.keys(tensors).sort(), Object.keys(expected.tensors).sort());
  for (const [name, e] of Object.entries(expected.tensors as Record<string, TensorData>)) {
    assert.deepEqual(tensors[name].shape, e.shape, name);
    assert.deepEqual(Array.from(tensors[name].data), e.data, name);
  }
  // And through the GPU path.
  const loaded = await loadSafetensors(
    new URL("./fixtures/python.safetensors", import.meta.url).pathname,
  );
  assert.deepEqual(
    Array.from(await loaded["conv.weight"].read()),
    expected.tensors["conv.weight"].data,
  );
  assert.deepEqual([...loaded["scalar"].shape], []);
  Object.values(loaded).forEach((t) => t.dispose());
});

Deno.test("corrupted files give clear errors", () => {
  const good = encodeSafetensors({ a: { shape: [2, 3], data: new Float32Array(6).fill(1) } });
  // Fewer than 8 bytes.
  assertDecodeError(good.slice(0, 5), /5 bytes, too short/);
  // Truncated inside the header: the header length now exceeds the file.
  assertDecodeError(good.slice(0, 20), /header length \d+ exceeds the 12 bytes/);
  // Truncated inside the data.
  assertDecodeError(good.slice(0, good.length - 4), /tensor 'a'.*beyond the data section/);
  // Header length field far beyond the file.
  const huge = good.slice();
  new DataView(huge.buffer).setBigUint64(0, 2n ** 62n, true);
  assertDecodeError(huge, /header length 4611686018427387904 exceeds/);
  // Not JSON, not an object, not UTF-8.
  assertDecodeError(rawFile("{not json"), /not valid JSON/);
  assertDecodeError(rawFile("[1, 2]"), /must be a JSON object/);
  const bad = rawFile("{}  ");
  bad[9] = 0xff;
  assertDecodeError(bad, /not valid UTF-8/);
  // Malformed entries (zod).
  const f4 = new Uint8Array(24);
  assertDecodeError(
    rawFile({ w: { dtype: "F32", shape: "6", data_offsets: [0, 24] } }, f4),
    /tensor 'w': bad header entry: shape/,
  );
  assertDecodeError(
    rawFile({ w: { dtype: "F32", shape: [6], data_offsets: [0] } }, f4),
    /tensor 'w': bad header entry: data_offsets/,
  );
  assertDecodeError(
    rawFile({ w: { dtype: "F32", shape: [-6], data_offsets: [0, 24] } }, f4),
    /tensor 'w': bad header entry/,
  );
  assertDecodeError(rawFile({ __metadata__: { n: 3 } }), /__metadata__ must map strings/);
  // Other dtypes are named.
  assertDecodeError(
    rawFile({ half: { dtype: "F16", shape: [6], data_offsets: [0, 12] } }, f4),
    /tensor 'half' has dtype F16; only F32 is supported/,
  );
  assertDecodeError(
    rawFile({ idx: { dtype: "I64", shape: [3], data_offsets: [0, 24] } }, f4),
    /dtype I64/,
  );
  // Offsets that do not match the shape, run backwards, or overlap.
  assertDecodeError(
    rawFile({ w: { dtype: "F32", shape: [2, 2], data_offsets: [0, 24] } }, f4),
    /tensor 'w': shape \[2,2\] needs 16 bytes of F32, but data_offsets \[0, 24\] span 24/,
  );
  assertDecodeError(
    rawFile({ w: { dtype: "F32", shape: [0], data_offsets: [8, 4] } }, f4),
    /tensor 'w'.*end before they begin/,
  );
  assertDecodeError(
    rawFile({
      a: { dtype: "F32", shape: [4], data_offsets: [0, 16] },
      b: { dtype: "F32", shape: [2], data_offsets: [12, 20] },
    }, f4),
    /tensors 'a' \[0, 16\) and 'b' \[12, 20\) overlap/,
  );
  // Bytes after the last tensor's data (a padded or concatenated file).
  assertDecodeError(
    rawFile({ w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, f4),
    /8 byte\(s\) follow the last tensor's data \(the header declares 16 bytes of data, the file holds 24\); the file is padded/,
  );
  assertDecodeError(
    Uint8Array.from([...good, 0, 0, 0, 0]),
    /4 byte\(s\) follow the last tensor's data/,
  );
  // A sane file of the same kind passes (so the checks above fail for the stated reason).
  const ok = decodeSafetensors(rawFile({
    a: { dtype: "F32", shape: [4], data_offsets: [0, 16] },
    b: { dtype: "F32", shape: [2], data_offsets: [16, 24] },
    e: { dtype: "F32", shape: [0], data_offsets: [16, 16] },
  }, f4));
  assert.deepEqual(Object.keys(ok.tensors).sort(), ["a", "b", "e"]);
});

Deno.test("saveSafetensors / loadSafetensors round trip through the GPU", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "weights.safetensors");
    const src = randomTensors(RUN_SEED + 1);
    const tensors: Record<string, Tensor> = {};
    for (const [name, { shape, data }] of Object.entries(src)) tensors[name] = tensor(data, shape);
    await saveSafetensors(path, tensors, { seed: "7" });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["weights.safetensors"]);
    assert.deepEqual(await safetensorsMetadata(path), { seed: "7" });
    // Fresh tensors.
    const loaded = await loadSafetensors(path);
    for (const [name, { shape, data }] of Object.entries(src)) {
      assert.deepEqual([...loaded[name].shape], shape, withSeed(`${name} shape`));
      assert.deepEqual(await loaded[name].read(), data, withSeed(`${name} data`));
      assert.equal(loaded[name].requiresGrad, false);
    }
    // Into existing tensors (e.g. a model's parameters), which keep their identity.
    const params: Record<string, Tensor> = {};
    for (const [name, { shape }] of Object.entries(src)) {
      params[name] = tensor(new Float32Array(numel(shape)), shape, { requiresGrad: true });
    }
    const before = { ...params };
    const result = await loadSafetensors(path, params);
    assert.equal(result, params);
    for (const [name, { data }] of Object.entries(src)) {
      assert.equal(params[name], before[name]);
      assert.deepEqual(await params[name].read(), data, withSeed(`${name} data, loaded in place`));
    }
    [tensors, loaded, params].forEach((r) => Object.values(r).forEach((t) => t.dispose()));
  });
});

Deno.test("loading into tensors names missing, extra and mismatching tensors, changes nothing", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "m.safetensors");
    const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = tensor([7, 8], [2]);
    const extra = tensor([9], [1]);
    await saveSafetensors(path, { a, b, extra });
    const a2 = tensor([0, 0, 0, 0, 0, 0], [3, 2]);
    const c = tensor([0], [1]);
    await assert.rejects(
      () => loadSafetensors(path, { a: a2, b, c }),
      (e: unknown) => {
        assert.ok(e instanceof SafetensorsError);
        assert.equal(e.file, path);
        assert.ok(e.message.startsWith(`${path}: `), e.message);
        assert.match(
          e.message,
          /tensor 'a' has shape \[2,3\] in the file but \[3,2\] in the model/,
        );
        assert.match(e.message, /tensor 'c' \[1\] is missing from the file/);
        assert.match(e.message, /the file has tensor 'extra' \[1\] not in the model/);
        return true;
      },
    );
    assert.deepEqual(Array.from(await a2.read()), [0, 0, 0, 0, 0, 0]);
    [a, b, extra, a2, c].forEach((t) => t.dispose());
  });
});

Deno.test("errors about a file carry its path (file field and message); bytes have none", async () => {
  await withTempDir(async (dir) => {
    const expectError = async (p: Promise<unknown>, file: string, detail: RegExp) => {
      const e = await p.then(() => null, (err) => err);
      assert.ok(e instanceof SafetensorsError, `expected a SafetensorsError, got ${e}`);
      assert.equal(e.file, file);
      assert.ok(e.message.startsWith(`${file}: `), e.message);
      assert.match(e.detail, detail);
    };
    const missing = join(dir, "none.safetensors");
    await expectError(loadSafetensors(missing), missing, /^no such file$/);
    await expectError(safetensorsMetadata(missing), missing, /^no such file$/);
    const short = join(dir, "short.safetensors");
    await Deno.writeFile(short, new Uint8Array([1, 2, 3]));
    await expectError(loadSafetensors(short), short, /too short for the 8-byte header length/);
    const w = tensor([1, 2], [2]);
    const out = join(dir, "w.safetensors");
    await expectError(
      saveSafetensors(out, { w }, { n: 3 as unknown as string }),
      out,
      /^metadata must map strings to strings: n: expected string, got number$/,
    );
    const blocked = join(dir, "sub");
    await Deno.mkdir(join(blocked, "x"), { recursive: true });
    await expectError(saveSafetensors(blocked, { w }), blocked, /^cannot write: /);
    w.dispose();
    assert.throws(() => decodeSafetensors(new Uint8Array(3)), (e: unknown) => {
      assert.ok(e instanceof SafetensorsError);
      assert.equal(e.file, undefined);
      assert.equal(e.message, e.detail);
      return true;
    });
  });
});

Deno.test("loading into a tensor does not change what already-encoded kernels read", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "x.safetensors");
    const src = tensor([10, 20, 30], [3]);
    await saveSafetensors(path, { x: src });
    const x = tensor([1, 2, 3], [3]);
    const y = nn.mul(x, 2); // encoded, not yet submitted
    await loadSafetensors(path, { x });
    assert.deepEqual(Array.from(await y.read()), [2, 4, 6]);
    assert.deepEqual(Array.from(await x.read()), [10, 20, 30]);
    [src, x, y].forEach((t) => t.dispose());
  });
});

Deno.test("writes are atomic: a failed save leaves the old file and no temporary file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "w.safetensors");
    const w = tensor([1, 2], [2]);
    await saveSafetensors(path, { w });
    const before = await Deno.readFile(path);
    const v = tensor([3, 4, 5], [3]);
    await assert.rejects(
      () => saveSafetensors(path, { w: v }, { n: 3 as unknown as string }),
      /metadata must map strings to strings/,
    );
    await assert.rejects(
      () => saveSafetensors(path, { __metadata__: v }),
      /cannot be a tensor name/,
    );
    assert.deepEqual(await Deno.readFile(path), before);
    // A target that cannot be written (a folder of that name): the rename fails, nothing is left.
    const blocked = join(dir, "sub");
    await Deno.mkdir(join(blocked, "x"), { recursive: true });
    await assert.rejects(() => saveSafetensors(blocked, { w: v }));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "sub",
      "w.safetensors",
    ]);
    // A successful save replaces the file.
    await saveSafetensors(path, { w: v });
    const back = await loadSafetensors(path);
    assert.deepEqual(Array.from(back.w.shape), [3]);
    [w, v, back.w].forEach((t) => t.dispose());
  });
});
