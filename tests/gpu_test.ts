// The GPU runtime: shader errors name the file and line (the prelude's lines not counted),
// overrides in STQA_SHADER_DIR replace bundled kernels by base name, validation errors name the op, the
// binding limit is enforced with sizes in the message, batching submits once per sync point,
// the pool serves repeated requests without growing, and the op checker itself can fail.

import assert from "assert";
import { join } from "path";
import { pathToFileURL } from "url";
import {
  empty,
  GpuOpError,
  nn,
  poolStats,
  queueStats,
  startGpuProfile,
  stopGpuProfile,
  syncGpu,
  tensor,
  tidy,
  trimPool,
} from "../mod.ts";
import { bindingLimit, getGpu, setBindingLimit } from "../src/gpu/device.ts";
import { kernel } from "../src/gpu/program.ts";
import { dispatch } from "../src/gpu/queue.ts";
import { ELEMENTWISE } from "../src/tensor/ops/_kernels.ts";
import { sizeClass } from "../src/gpu/pool.ts";
import { record } from "../src/tensor/tensor.ts";
import { assertClose, checkOp, initGpu } from "./_helpers.ts";

async function rejects(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error");
}

Deno.test("a shader compile error names the .wgsl file and its own line, after the prelude", async () => {
  await initGpu();
  const dir = await Deno.makeTempDir();
  const file = join(dir, "broken_for_test.wgsl");
  await Deno.writeTextFile(
    file,
    [
      "// line 1",
      "@compute @workgroup_size(1)",
      "fn main() {",
      "  out[0] = undefined_name;",
      "}",
    ].join("\n"),
  );
  try {
    const broken = kernel(pathToFileURL(file), { storage: ["out"], params: false });
    const out = empty([1]);
    dispatch({ op: "test.broken", kernel: broken, entry: "main", workgroups: [1] }, [out.buffer]);
    const err = await rejects(() => out.read());
    if (!(err instanceof GpuOpError)) throw err;
    if (!err.message.includes("op test.broken") || !err.message.includes(`${file}:4:`)) {
      throw new Error(`message lacks op or file:line: ${err.message}`);
    }
    out.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("STQA_SHADER_DIR: a file with the bundled file's base name replaces it", async () => {
  await initGpu();
  const bundled = await Deno.makeTempDir();
  const overrides = await Deno.makeTempDir();
  const body = (value: string) =>
    [
      "@compute @workgroup_size(1)",
      `fn main() { out[0] = ${value}; }`,
    ].join("\n");
  await Deno.writeTextFile(join(bundled, "override_for_test.wgsl"), body("1.0"));
  await Deno.writeTextFile(join(overrides, "override_for_test.wgsl"), body("2.0"));
  Deno.env.set("STQA_SHADER_DIR", overrides);
  try {
    const k = kernel(pathToFileURL(join(bundled, "override_for_test.wgsl")), {
      storage: ["out"],
      params: false,
    });
    const out = empty([1]);
    dispatch({ op: "test.override", kernel: k, entry: "main", workgroups: [1] }, [out.buffer]);
    const [v] = await out.read();
    if (v !== 2) throw new Error(`read ${v}: the override was not used (1 = bundled)`);
    out.dispose();
  } finally {
    Deno.env.delete("STQA_SHADER_DIR");
    await Deno.remove(bundled, { recursive: true });
    await Deno.remove(overrides, { recursive: true });
  }
});

Deno.test("a validation error in a dispatch names the op", async () => {
  await initGpu();
  const a = empty([4]);
  // The unary entry point reads b1 and writes b2: omitting b2 makes the bind group invalid.
  dispatch({
    op: "test.missing_binding",
    kernel: ELEMENTWISE,
    entry: "unary",
    defines: { EXPR: "x" },
    ints: new Array(32).fill(0),
    floats: [0, 0],
    workgroups: [1],
  }, [a.buffer]);
  const err = await rejects(() => a.read());
  if (!(err instanceof GpuOpError) || err.op !== "test.missing_binding") throw err;
  a.dispose();
  // The error is reported once; later work runs normally.
  const b = tensor([1, 2], [2]);
  const values = await nn.add(b, 1).read();
  if (values[0] !== 2 || values[1] !== 3) throw new Error(`unexpected ${values}`);
});

Deno.test("a tensor above the binding limit is refused with both sizes named", async () => {
  const { limits } = getGpu();
  await initGpu();
  const n = limits.maxStorageBufferBindingSize / 4 + 1;
  let message = "";
  try {
    empty([n]);
  } catch (e) {
    message = (e as Error).message;
  }
  if (
    !message.includes(String(n * 4)) ||
    !message.includes(String(limits.maxStorageBufferBindingSize))
  ) {
    throw new Error(`unexpected message: ${message}`);
  }
});

Deno.test("the ops of one step share one submit until a value is read", async () => {
  await initGpu();
  await syncGpu();
  const before = queueStats();
  const x = tensor([1, 2, 3], [3]);
  const y = tidy(() => {
    let t = x;
    for (let i = 0; i < 20; i++) t = nn.mul(nn.add(t, 1), 0.5);
    return t;
  });
  const mid = queueStats();
  if (mid.submits !== before.submits) throw new Error("ops submitted before a read was needed");
  if (mid.dispatches - before.dispatches !== 40) {
    throw new Error(`expected 40 dispatches, got ${mid.dispatches - before.dispatches}`);
  }
  await y.read();
  const after = queueStats();
  // One submit for the kernels, one for the copy to the staging buffer at most.
  if (after.submits - before.submits > 2) {
    throw new Error(`${after.submits - before.submits} submits`);
  }
  x.dispose();
  y.dispose();
});

Deno.test("setBindingLimit lowers the limit every size check reads, and restores it", async () => {
  await initGpu();
  const adapter = getGpu().limits.maxStorageBufferBindingSize;
  assert.equal(bindingLimit(), adapter);
  const before = setBindingLimit(4096);
  try {
    assert.equal(before, null);
    assert.equal(bindingLimit(), 4096);
    empty([1024]).dispose(); // 4096 bytes fit
    assert.throws(() => empty([1025]), /4100 bytes.*4096 bytes/);
    setBindingLimit(adapter * 2); // never above the adapter's
    assert.equal(bindingLimit(), adapter);
    assert.throws(() => setBindingLimit(0), /positive whole number/);
  } finally {
    setBindingLimit(before);
  }
  assert.equal(bindingLimit(), adapter);
});

Deno.test("the GPU profile times every dispatch by op, and refuses misuse", async () => {
  const gpu = await initGpu();
  if (!gpu.hasTimestampQuery) {
    assert.throws(() => startGpuProfile(), /timestamp-query/);
    return;
  }
  await assert.rejects(() => stopGpuProfile(), /no GPU profile is running/);
  const x = tensor(new Float32Array(1 << 16).fill(1), [1 << 16]);
  const before = queueStats();
  startGpuProfile();
  assert.throws(() => startGpuProfile(), /already running/);
  // More dispatches than one batch holds: the profile spans several submits.
  const y = tidy(() => {
    let t = x;
    for (let i = 0; i < 150; i++) t = nn.mul(nn.add(t, 1), 0.5);
    return t;
  });
  await y.read();
  const p = await stopGpuProfile();
  const after = queueStats();
  assert.equal(p.ops.addScalar?.dispatches, 150, JSON.stringify(p.ops));
  assert.equal(p.ops.mulScalar?.dispatches, 150, JSON.stringify(p.ops));
  assert.equal(p.dispatches, after.dispatches - before.dispatches);
  assert.ok(p.ops.addScalar.ms > 0 && p.ops.mulScalar.ms > 0, JSON.stringify(p.ops));
  assert.ok(Math.abs(p.totalMs - p.ops.addScalar.ms - p.ops.mulScalar.ms) < 1e-6);
  // The values are what they are without the profile: t -> (t + 1) / 2 converges to 1.
  assert.ok((await y.read()).every((v) => v === 1));
  x.dispose();
  y.dispose();
});

Deno.test("size classes: powers of two and midpoints, at least 256 bytes", () => {
  const cases: [number, number][] = [[1, 256], [256, 256], [257, 384], [384, 384], [385, 512], [
    1000,
    1024,
  ], [1100, 1536]];
  for (const [n, want] of cases) {
    if (sizeClass(n) !== want) throw new Error(`sizeClass(${n}) = ${sizeClass(n)}, want ${want}`);
  }
});

Deno.test("disposed buffers are reused: repeated work does not grow the pool", async () => {
  await initGpu();
  const x = tensor(Array.from({ length: 300 }, (_, i) => i / 300), [3, 100], {
    requiresGrad: true,
  });
  const step = () =>
    tidy(() => {
      const loss = nn.sum(nn.square(nn.sub(nn.tanh(x), 0.1)));
      loss.backward();
      x.grad!.dispose();
      x.grad = null;
      return null;
    });
  for (let i = 0; i < 3; i++) step();
  await syncGpu();
  const warm = poolStats();
  for (let i = 0; i < 20; i++) step();
  await syncGpu();
  const later = poolStats();
  if (later.created !== warm.created || later.inUse !== warm.inUse) {
    throw new Error(`pool grew: ${JSON.stringify(warm)} -> ${JSON.stringify(later)}`);
  }
  x.dispose();
});

Deno.test("the op checker fails on a wrong gradient (it can fail)", async () => {
  const wrong = (x: import("../mod.ts").Tensor) => {
    const out = nn.square(x);
    // A deliberately wrong backward: d(x^2)/dx taken as x instead of 2x.
    const detached = empty(out.shape);
    dispatch({
      op: "test.copy",
      kernel: ELEMENTWISE,
      entry: "unary",
      defines: { EXPR: "x" },
      ints: [out.size, ...new Array(31).fill(0)],
      floats: [0, 0],
      workgroups: [1],
    }, [out.buffer, detached.buffer]);
    out.dispose();
    return record(detached, "wrong_square", [x], (g) => [nn.mul(g, x)]);
  };
  const err = await rejects(() =>
    checkOp({
      name: "wrong",
      inputs: [{ shape: [5] }],
      gpu: wrong,
      ref: (x) => x.map((v) => v * v),
    })
  );
  if (!err.message.includes("gradient of input 0")) throw err;
  const err2 = await rejects(() =>
    checkOp({
      name: "wrong fwd",
      inputs: [{ shape: [5] }],
      gpu: nn.exp,
      ref: (x) => x.map((v) => v * v),
    })
  );
  if (!err2.message.includes("forward")) throw err2;
});

Deno.test("backward through a shared subgraph visits it once and accumulates", async () => {
  await initGpu();
  const x = tensor([0.5, -1, 2], [3], { requiresGrad: true });
  const values = await tidy(() => {
    const s = nn.exp(x); // used twice below
    const loss = nn.sum(nn.add(nn.mul(s, 2), nn.mul(s, s)));
    loss.backward();
    return x.grad!.read();
  });
  // d/dx (2 e^x + e^{2x}) = 2 e^x + 2 e^{2x}
  const xs = [0.5, -1, 2];
  xs.forEach((v, i) => {
    const want = 2 * Math.exp(v) + 2 * Math.exp(2 * v);
    if (Math.abs(values[i] - want) > 1e-4 * Math.abs(want)) {
      throw new Error(`grad[${i}] = ${values[i]}, want ${want}`);
    }
  });
  x.dispose();
});

Deno.test("an upload into a just-released buffer does not overtake pending reads of it", async () => {
  await initGpu();
  await syncGpu();
  const a = tensor([1, 2, 3, 4], [4]);
  const c = nn.mul(a, 10); // encoded, not yet submitted
  const buffer = a.buffer;
  a.dispose();
  const b = tensor([-1, -1, -1, -1], [4]); // same size class: reuses a's buffer
  if (b.buffer !== buffer) throw new Error("expected the pool to hand back the same buffer");
  const values = await c.read();
  if ([...values].join() !== "10,20,30,40") throw new Error(`read ${values}: upload overtook`);
  if ([...(await b.read())].join() !== "-1,-1,-1,-1") throw new Error("upload lost");
  b.dispose();
  c.dispose();
});

Deno.test("trimPool keeps buffers that pending commands still read", async () => {
  await initGpu();
  await syncGpu();
  const t1 = tensor([0, 1, 2, 3], [4]);
  const t2 = nn.exp(t1); // encoded, reads t1's buffer
  t1.dispose();
  trimPool();
  const values = await t2.read();
  assertClose(values, [1, Math.E, Math.E ** 2, Math.E ** 3], { rtol: 1e-6 });
  t2.dispose();
  trimPool();
  const after = poolStats();
  if (after.free !== 0) throw new Error(`free buffers left after a trim at rest: ${after.free}`);
});
