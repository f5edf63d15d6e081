// The run seed of the randomised tests (tests/_helpers.ts): fixed by default so that a failure is
// reproducible from the log alone, STQA_TEST_SEED for another one or `random`, printed once.

import assert from "assert";
import { fileURLToPath } from "url";
import { DEFAULT_TEST_SEED, parseTestSeed, RUN_SEED, withSeed } from "./_helpers.ts";

Deno.test("test seed: 1 by default, a whole number as given, 'random' from the clock", () => {
  assert.equal(DEFAULT_TEST_SEED, 1);
  assert.equal(parseTestSeed(undefined), 1);
  assert.equal(parseTestSeed(""), 1);
  assert.equal(parseTestSeed("42"), 42);
  assert.equal(parseTestSeed(" 7 "), 7);
  assert.equal(parseTestSeed("0"), 0);
  assert.equal(parseTestSeed("2147483647"), 2147483647);
  assert.equal(parseTestSeed("random", 123), 123);
  assert.equal(parseTestSeed("random", 2147483647 + 5), 5);
  for (const bad of ["x", "-1", "1.5", "1e3", "2147483648", "random1"]) {
    assert.throws(
      () => parseTestSeed(bad),
      (e: Error) =>
        e instanceof RangeError && e.message.includes("STQA_TEST_SEED") &&
        e.message.includes(`'${bad}'`),
      bad,
    );
  }
  assert.equal(withSeed("pixel 3 differs"), `pixel 3 differs (run seed ${RUN_SEED})`);
});

Deno.test("test seed: printed once with the setting that repeats the run; a random one is kept", async () => {
  const helpers = fileURLToPath(new URL("./_helpers.ts", import.meta.url));
  const script = `import { RUN_SEED } from ${JSON.stringify(helpers)};
await import(${JSON.stringify(helpers)} + "?again");
console.log("seed " + RUN_SEED + " " + JSON.stringify(Deno.env.get("STQA_TEST_SEED")));`;
  // A fresh process, as a test run starts (unset and empty are the same setting).
  const run = async (seed: string) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-check", script],
      env: { STQA_TEST_SEED: seed, STQA_TEST_SEED_SHOWN: "" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return text.trim().split("\n");
  };
  assert.deepEqual(await run(""), ["test seed 1: STQA_TEST_SEED=1 repeats this run", 'seed 1 ""']);
  assert.deepEqual(await run("17"), [
    "test seed 17: STQA_TEST_SEED=17 repeats this run",
    'seed 17 "17"',
  ]);
  const r = await run("random");
  const m = /^test seed (\d+) \(drawn at random\): STQA_TEST_SEED=(\d+) repeats this run$/.exec(
    r[0],
  );
  assert.ok(m && m[1] === m[2], r[0]);
  // The second import (another test file of the same run) reads the kept seed and prints nothing.
  assert.deepEqual(r.slice(1), [`seed ${m![1]} "${m![1]}"`]);
});
