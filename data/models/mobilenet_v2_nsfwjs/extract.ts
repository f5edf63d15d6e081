/**
 * Extracts the MobileNetV2 of the npm package `nsfwjs` 4.3.0 (MIT licence, Infinite Red; see
 * LICENSE and SOURCES.md here) into a plain TensorFlow.js model: `model.json` and its one weight
 * shard `group1-shard1of1`, as TensorFlow.js' converter wrote them before nsfwjs wrapped them in
 * JavaScript. The files are committed, so nothing needs the package at run time; this script only
 * documents and reproduces how they were made:
 *
 * ```sh
 * npm pack nsfwjs@4.3.0 && tar xzf nsfwjs-4.3.0.tgz
 * deno run --allow-read --allow-write data/models/mobilenet_v2_nsfwjs/extract.ts package
 * ```
 *
 * nsfwjs ships the model as two CommonJS modules under `dist/models/mobilenet_v2/`:
 * `model.min.js` exports the `model.json` object and `group1-shard1of1.min.js` the shard's bytes
 * as one base64 string. They are loaded with `require` (they contain nothing else) and written out
 * unchanged: the weights stay uint8-quantised, as published; `src/io/tfjs.ts` dequantises them
 * when the victim loads (`min + q * scale` per tensor).
 */

import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { Buffer } from "node:buffer";

const pkg = Deno.args[0];
if (!pkg) {
  console.error("usage: extract.ts <unpacked nsfwjs package folder>");
  Deno.exit(2);
}
const here = new URL(".", import.meta.url).pathname;
const dir = join(resolve(pkg), "dist/models/mobilenet_v2");
const require = createRequire(join(dir, "x.js"));
const version = JSON.parse(await Deno.readTextFile(join(resolve(pkg), "package.json"))).version;
if (version !== "4.3.0") console.error(`warning: nsfwjs ${version}, SOURCES.md describes 4.3.0`);
const model = require(join(dir, "model.min.js"));
const shard = Buffer.from(String(require(join(dir, "group1-shard1of1.min.js"))), "base64");
const paths = model.weightsManifest.flatMap((g: { paths: string[] }) => g.paths);
if (paths.length !== 1 || paths[0] !== "group1-shard1of1") {
  throw new Error(`expected one shard 'group1-shard1of1', the manifest names ${paths}`);
}
await Deno.writeTextFile(join(here, "model.json"), JSON.stringify(model));
await Deno.writeFile(join(here, "group1-shard1of1"), new Uint8Array(shard));
await Deno.copyFile(join(resolve(pkg), "LICENSE"), join(here, "LICENSE"));
console.log(`wrote model.json, group1-shard1of1 (${shard.length} bytes) and LICENSE to ${here}`);
