// .ci/run's accounting (`.ci/run --summary <log>`) on the output of a small deno test run and on
// hand-made logs: the last line `N passed, M failed`, a failed `deno task check` and an ignored
// test without a printed reason counted as failures, the exit status.

import assert from "assert";
import { join } from "path";
import { fileURLToPath } from "url";

const CI = fileURLToPath(new URL("../.ci/run", import.meta.url));

/** Runs `.ci/run --summary` on a log; its output lines and exit status. */
async function summary(
  log: string,
  checkStatus = 0,
  testStatus = 0,
): Promise<{ lines: string[]; code: number }> {
  const out = await new Deno.Command("bash", {
    args: [CI, "--summary", log, String(checkStatus), String(testStatus)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { lines: text.trim().split("\n"), code: out.code };
}

const dir = await Deno.makeTempDir({ prefix: "stqa_ci_" });
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* gone */ }
});

Deno.test("ci: a deno test run's passed, failed and ignored tests; a reason must be printed", async () => {
  // Two files: one says why it ignores two tests, the other ignores one silently and fails one.
  await Deno.writeTextFile(
    join(dir, "said_test.ts"),
    `console.warn("said_test: no frobnicator found: frobnicator tests ignored");
Deno.test({ name: "frob 1", ignore: true, fn() {} });
Deno.test("fine", async (t) => { await t.step("step", () => {}); });
Deno.test({ name: "frob 2", ignore: true, fn() {} });
`,
  );
  await Deno.writeTextFile(
    join(dir, "silent_test.ts"),
    `Deno.test({ name: "quiet", ignore: true, fn() {} });
Deno.test("also fine", () => {});
Deno.test("broken", () => { throw new Error("no"); });
`,
  );
  const run = async (files: string[], parallel: boolean) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--no-check", ...(parallel ? ["--parallel"] : []), ...files],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const log = join(dir, `${files.length}-${parallel}.log`);
    await Deno.writeFile(log, new Uint8Array([...out.stdout, ...out.stderr]));
    return { log, code: out.code };
  };
  for (const parallel of [false, true]) {
    const both = await run(["said_test.ts", "silent_test.ts"], parallel);
    assert.notEqual(both.code, 0);
    const s = await summary(both.log, 0, both.code);
    assert.deepEqual(s.lines, [
      "deno task check: ok",
      "ignored: 3 test(s)",
      "  ./said_test.ts: 2, because: said_test: no frobnicator found: frobnicator tests ignored",
      "  ./silent_test.ts: 1, no reason printed (counted as failed)",
      "2 passed, 2 failed",
    ], `parallel ${parallel}`);
    assert.equal(s.code, 1);
    // Ignored with a reason, nothing failed: success; a failed check is one failure.
    const said = await run(["said_test.ts"], parallel);
    assert.equal(said.code, 0);
    const ok = await summary(said.log, 0, said.code);
    assert.equal(ok.lines.at(-1), "1 passed, 0 failed");
    assert.equal(ok.code, 0);
    const check = await summary(said.log, 1, said.code);
    assert.deepEqual(check.lines[0], "deno task check: FAILED (exit 1), counted as 1 failure");
    assert.equal(check.lines.at(-1), "1 passed, 1 failed");
    assert.equal(check.code, 1);
  }
});

Deno.test("ci: no summary, or a failed run without a failed test, is a failure", async () => {
  const none = join(dir, "none.log");
  await Deno.writeTextFile(none, "error: Module not found\n");
  const a = await summary(none, 0, 1);
  assert.equal(a.lines.at(-1), "0 passed, 1 failed");
  assert.equal(a.code, 1);
  const b = await summary(none, 1, 1);
  assert.equal(b.lines.at(-1), "0 passed, 2 failed");
  const odd = join(dir, "odd.log");
  // Colours as deno prints them to a terminal; steps in the passed count.
  await Deno.writeTextFile(
    odd,
    "\x1b[32mok\x1b[0m | 5 passed (2 steps) | 0 failed \x1b[38;5;245m(3s)\x1b[0m\n",
  );
  const c = await summary(odd, 0, 0);
  assert.deepEqual(c.lines.slice(1), ["ignored: 0 test(s)", "5 passed, 0 failed"]);
  assert.equal(c.code, 0);
  const d = await summary(odd, 0, 1);
  assert.deepEqual(d.lines.slice(-2), ["deno test exited with 1", "5 passed, 1 failed"]);
  assert.equal(d.code, 1);
});
