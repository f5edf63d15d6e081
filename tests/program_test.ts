// Kernels as typed programs: binding declarations written from a kernel's TypeScript declaration,
// the prelude put before every kernel file (and compile errors mapped past it), sources resolved
// by URL (STQA_SHADER_DIR overrides by base name), and a kernel read through fetch (a data: URL,
// the path a package imported from a registry takes) rather than from the local disk.

import { join } from "path";
import { pathToFileURL } from "url";
import { empty, tensor } from "../mod.ts";
import { bindingDeclarations, kernel } from "../src/gpu/program.ts";
import { dispatch } from "../src/gpu/queue.ts";
import { assembleKernel, sourceLine } from "../src/gpu/shaders.ts";
import {
  displayName,
  loadShaders,
  resolveShader,
  shaderFile,
  shaderSource,
} from "../src/gpu/_sources.ts";
import { ELEMENTWISE, RESAMPLE } from "../src/tensor/ops/_kernels.ts";
import { initGpu } from "./_helpers.ts";

function assertEquals<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: got ${a}, want ${e}`);
}

function throwsWith(fn: () => unknown, part: string): void {
  try {
    fn();
  } catch (e) {
    if ((e as Error).message.includes(part)) return;
    throw new Error(`message lacks '${part}': ${(e as Error).message}`);
  }
  throw new Error(`expected an error mentioning '${part}'`);
}

Deno.test("binding declarations: params, then storage by position, with access, type and views", () => {
  const k = kernel(new URL("./fixtures/decl_for_test.wgsl", import.meta.url), {
    storage: [
      { name: "x", access: "read", type: "vec4<f32>" },
      { name: "y", views: { y2: "vec2<f32>" } },
      "z",
    ],
  });
  assertEquals(bindingDeclarations(k), [
    "@group(0) @binding(0) var<uniform> params: Params;",
    "@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;",
    "@group(0) @binding(2) var<storage, read_write> y: array<f32>;",
    "@group(0) @binding(2) var<storage, read_write> y2: array<vec2<f32>>;",
    "@group(0) @binding(3) var<storage, read_write> z: array<f32>;",
  ], "declarations");
  const noParams = kernel(new URL("./fixtures/decl2_for_test.wgsl", import.meta.url), {
    params: false,
    storage: ["a"],
  });
  assertEquals(bindingDeclarations(noParams), [
    "@group(0) @binding(1) var<storage, read_write> a: array<f32>;",
  ], "without params");
  // The resample kernel sees each binding as f32 or as pairs of floats.
  assertEquals(
    bindingDeclarations(RESAMPLE).filter((l) => l.includes("@binding(1)")).length,
    2,
    "resample binding 1 views",
  );
});

Deno.test("a kernel's binding names must be identifiers and distinct, and its file .wgsl", () => {
  throwsWith(
    () => kernel(new URL("./x_for_test.wgsl", import.meta.url), { storage: ["a", "a"] }),
    "'a' is invalid or repeated",
  );
  throwsWith(
    () => kernel(new URL("./x_for_test.wgsl", import.meta.url), { storage: ["params"] }),
    "'params'",
  );
  throwsWith(
    () => kernel(new URL("./x_for_test.wgsl", import.meta.url), { storage: ["1x"] }),
    "'1x'",
  );
  throwsWith(() => shaderFile(new URL("./x_for_test.txt", import.meta.url)), "not name a .wgsl");
});

Deno.test("assembled code: prelude, bindings, kernel file; lines map back to each part", () => {
  const { code, segments } = assembleKernel(ELEMENTWISE, { EXPR: "x" });
  assertEquals(segments.length, 3, "parts");
  if (!segments[0].file.endsWith("prelude.wgsl")) throw new Error(`first: ${segments[0].file}`);
  assertEquals(segments[1].file, "bindings of elementwise.wgsl", "second");
  if (!segments[2].file.endsWith("elementwise.wgsl")) throw new Error(`last: ${segments[2].file}`);
  const lines = code.split("\n");
  const own = shaderSource(ELEMENTWISE.file).text.split("\n");
  // The kernel file's line 1 is at the start of the last segment; every line maps back to itself.
  assertEquals(lines[segments[2].start - 1], own[0], "first line of the kernel file");
  const fillLine = own.findIndex((l) => l.startsWith("fn fill(")) + 1;
  const at = segments[2].start + fillLine - 1;
  assertEquals(sourceLine(segments, at), `${segments[2].file}:${fillLine}`, "mapped line");
  assertEquals(lines[at - 1], own[fillLine - 1], "mapped text");
  if (!code.includes("fn flat_index(") || !code.includes("var<uniform> params: Params;")) {
    throw new Error("the prelude or the bindings are missing from the assembled code");
  }
  // Kernel files no longer declare their own bindings or index helpers.
  if (own.some((l) => l.includes("@binding(") || l.startsWith("fn flat("))) {
    throw new Error("elementwise.wgsl still declares bindings or flat()");
  }
});

Deno.test("an error in an included file names that file and its own line", async () => {
  await initGpu();
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "inc_for_test.wgsl"),
      "// one\nfn helper() -> f32 {\n  return nope;\n}\n",
    );
    await Deno.writeTextFile(
      join(dir, "main_for_test.wgsl"),
      "@compute @workgroup_size(1)\nfn main() { out[0] = helper(); }\n",
    );
    const k = kernel(pathToFileURL(join(dir, "main_for_test.wgsl")), {
      params: false,
      storage: ["out"],
      includes: [pathToFileURL(join(dir, "inc_for_test.wgsl"))],
    });
    const out = empty([1]);
    dispatch({ op: "test.include", kernel: k, entry: "main", workgroups: [1] }, [out.buffer]);
    let message = "";
    try {
      await out.read();
    } catch (e) {
      message = (e as Error).message;
    }
    if (!message.includes(`${join(dir, "inc_for_test.wgsl")}:3:`)) {
      throw new Error(`message does not name the include's line 3: ${message}`);
    }
    out.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a read-only storage binding and more buffers than bindings", async () => {
  await initGpu();
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "copy_for_test.wgsl"),
      [
        "struct Params { n: u32 }",
        "@compute @workgroup_size(64)",
        "fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {",
        "  let i = flat_index(gid, nwg, 64u);",
        "  if (i >= params.n) { return; }",
        "  dst[i] = 2.0 * src[i];",
        "}",
      ].join("\n"),
    );
    const k = kernel(pathToFileURL(join(dir, "copy_for_test.wgsl")), {
      storage: [{ name: "src", access: "read" }, "dst"],
    });
    const x = tensor([1, 2, 3], [3]);
    const y = empty([3]);
    dispatch({ op: "test.copy", kernel: k, entry: "main", ints: [3], workgroups: [1] }, [
      x.buffer,
      y.buffer,
    ]);
    assertEquals([...await y.read()], [2, 4, 6], "doubled");
    throwsWith(
      () =>
        dispatch({ op: "test.extra", kernel: k, entry: "main", ints: [3], workgroups: [1] }, [
          x.buffer,
          y.buffer,
          y.buffer,
        ]),
      "op test.extra: 3 buffers for the 2 storage bindings of copy_for_test.wgsl",
    );
    x.dispose();
    y.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sources: override by base name, names in messages, non-file URLs need loading", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A file as a registry serves it (not registered: nothing tries to fetch it).
    const bundled = {
      url: new URL("https://example.invalid/pkg/src/k_for_test.wgsl"),
      name: "k_for_test.wgsl",
    };
    assertEquals(resolveShader(bundled, dir).href, bundled.url.href, "no override there");
    await Deno.writeTextFile(join(dir, "k_for_test.wgsl"), "// local\n");
    assertEquals(
      resolveShader(bundled, dir).href,
      pathToFileURL(join(dir, "k_for_test.wgsl")).href,
      "override",
    );
    assertEquals(displayName(new URL("file:///tmp/a%20b.wgsl")), "/tmp/a b.wgsl", "file name");
    assertEquals(displayName(bundled.url), bundled.url.href, "URL name");
    // Not loaded ahead (and not a file): its use says how to load it.
    throwsWith(() => shaderSource(bundled), "is not loaded");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a kernel read through fetch (a data: URL, as from a registry) compiles and runs", async () => {
  await initGpu();
  const wgsl = [
    "struct Params { n: u32 }",
    "@compute @workgroup_size(64)",
    "fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {",
    "  let i = flat_index(gid, nwg, 64u);",
    "  if (i >= params.n) { return; }",
    "  out[i] = f32(i) + 0.5;",
    "}",
    // The URL's last path segment names the file (for overrides and messages).
    "// /fetched_for_test.wgsl",
  ].join("\n");
  const url = new URL(`data:text/plain,${encodeURIComponent(wgsl).replaceAll("%2F", "/")}`);
  const k = kernel(url, { storage: ["out"] });
  assertEquals(k.file.name, "fetched_for_test.wgsl", "name");
  throwsWith(() => shaderSource(k.file), "is not loaded");
  await loadShaders();
  const out = empty([4]);
  dispatch({ op: "test.fetched", kernel: k, entry: "main", ints: [4], workgroups: [1] }, [
    out.buffer,
  ]);
  assertEquals([...await out.read()], [0.5, 1.5, 2.5, 3.5], "values");
  out.dispose();
});
