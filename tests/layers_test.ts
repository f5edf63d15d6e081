// The layers of src/ (docs/architecture.md): no file imports from a layer above its own, and
// src/report only renders (it never reaches the GPU). Imports in JSDoc examples are not code and
// may name the package root.

import assert from "assert";
import { dirname, join, normalize, relative } from "path";

const ROOT = new URL("..", import.meta.url).pathname;
const SRC = join(ROOT, "src");

/** The layers, lowest first; a folder's layer, or `_` for the private helpers at src/_*.ts. */
export const LAYERS: readonly (readonly string[])[] = [
  ["_"],
  ["gpu"],
  ["tensor", "nn", "optim", "io"],
  ["video", "jnd", "metrics", "data"],
  ["models"],
  ["attack", "train"],
  ["eval"],
  ["report"],
  ["cli"],
];

function layerOf(file: string): { name: string; rank: number } {
  const rel = relative(SRC, file).split("/");
  const name = rel.length === 1 ? "_" : rel[0];
  const rank = LAYERS.findIndex((l) => l.includes(name));
  return { name, rank };
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) yield* walk(p);
    else if (e.name.endsWith(".ts")) yield p;
  }
}

/** The relative module specifiers a file imports in code (comments removed). */
export function importsOf(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
  const out: string[] = [];
  for (const m of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.[^"']+)["']/g)) {
    out.push(m[1]);
  }
  return out;
}

Deno.test("layers: importsOf reads code imports, not JSDoc examples", () => {
  const text =
    `/**\n * import { x } from "../../mod.ts";\n */\nimport { a } from "../gpu/device.ts";\n` +
    `import type { B } from "./b.ts";\nexport { c } from "../tensor/c.ts";\n// import "../no.ts"\n`;
  assert.deepEqual(importsOf(text), ["../gpu/device.ts", "./b.ts", "../tensor/c.ts"]);
});

Deno.test("layers: every folder of src/ has a layer", async () => {
  for await (const e of Deno.readDir(SRC)) {
    if (e.isDirectory) {
      assert.ok(layerOf(join(SRC, e.name, "x.ts")).rank >= 0, `src/${e.name} has no layer`);
    }
  }
});

Deno.test("layers: no file under src/ imports from a layer above its own", async () => {
  const violations: string[] = [];
  let files = 0, imports = 0;
  for await (const file of walk(SRC)) {
    files++;
    const from = layerOf(file);
    for (const spec of importsOf(await Deno.readTextFile(file))) {
      imports++;
      const target = normalize(join(dirname(file), spec));
      const where = `src/${relative(SRC, file)} imports ${spec}`;
      if (!target.startsWith(SRC + "/")) {
        violations.push(`${where}: outside src/`);
        continue;
      }
      const to = layerOf(target);
      if (to.rank > from.rank) violations.push(`${where}: ${from.name} -> ${to.name} (up)`);
    }
  }
  assert.ok(files > 50 && imports > 200, `read ${files} files, ${imports} imports`);
  assert.deepEqual(violations, [], violations.join("\n"));
});

Deno.test("layers: src/report renders only (no GPU, tensor, JND or model code)", async () => {
  const forbidden = ["gpu", "tensor", "nn", "optim", "jnd", "models", "train"];
  const violations: string[] = [];
  for await (const file of walk(join(SRC, "report"))) {
    for (const spec of importsOf(await Deno.readTextFile(file))) {
      const to = layerOf(normalize(join(dirname(file), spec)));
      if (forbidden.includes(to.name)) violations.push(`src/${relative(SRC, file)}: ${spec}`);
    }
  }
  assert.deepEqual(violations, [], violations.join("\n"));
});
