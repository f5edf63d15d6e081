// Every command, run as a user runs it (the deno task's own permissions, a fresh process), turns
// each failure of issue 12's list into one clear line on stderr with the right exit code: no
// stack trace, nothing written outside the output folder (sentinels beside and above it).

import assert from "assert";
import { join } from "path";
import { makeSandbox, type Sandbox } from "./_sandbox.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const TASKS: Record<string, string> = JSON.parse(
  await Deno.readTextFile(join(ROOT, "deno.json")),
).tasks;

/** The `deno run` flags of a task, e.g. ["--allow-read", "--allow-run=ffmpeg,ffprobe", ...]. */
function taskFlags(task: string): string[] {
  const words = TASKS[task].split(/\s+/);
  return words.slice(2, words.indexOf("cli.ts"));
}

/** Runs `deno task <task> <args>` as the task runs it; returns the exit code and the output. */
async function runTask(
  task: string,
  args: string[],
  cwd = ROOT,
): Promise<{ code: number; stderr: string; stdout: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...taskFlags(task), join(ROOT, "cli.ts"), task, ...args],
    cwd,
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stderr: dec.decode(r.stderr), stdout: dec.decode(r.stdout) };
}

/** A failure case: the command, its arguments (made in the sandbox), the exit code, the line. */
interface Case {
  name: string;
  task: string;
  args: (sb: Sandbox) => Promise<string[]> | string[];
  code: number;
  message: RegExp;
}

/** Asserts one clear line (bad usage may add the usage text after it) and no stack trace. */
function assertOneLine(c: Case, r: { code: number; stderr: string }): void {
  const lines = r.stderr.split("\n").filter((l) => l.trim());
  assert.equal(r.code, c.code, `${c.name}: exit ${r.code}\n${r.stderr}`);
  assert.ok(!/^\s+at /m.test(r.stderr), `${c.name}: a stack trace reached the user:\n${r.stderr}`);
  assert.ok(!/ZodError|Uncaught|error: Uncaught/.test(r.stderr), `${c.name}:\n${r.stderr}`);
  assert.match(lines[0] ?? "", c.message, `${c.name}: first line:\n${r.stderr}`);
  if (c.code !== 2) assert.equal(lines.length, 1, `${c.name}: more than one line:\n${r.stderr}`);
}

const CASES: Case[] = [
  {
    name: "attack --out <a file>",
    task: "attack",
    args: (sb) => ["--out", join(sb.work, "sentinel-beside.txt")],
    code: 1,
    message: /^attack: .*sentinel-beside\.txt: --out is a file, not a folder$/,
  },
  {
    name: "attack --input <a FIFO>",
    task: "attack",
    args: async (sb) => {
      const fifo = join(sb.work, "in.mkv");
      await new Deno.Command("mkfifo", { args: [fifo] }).output();
      return ["--input", fifo, "--out", sb.out];
    },
    code: 1,
    message: /^attack: .*in\.mkv: input is a FIFO \(named pipe\), not a regular file$/,
  },
  {
    name: "attack --input <missing>",
    task: "attack",
    args: (sb) => ["--input", join(sb.work, "none.mkv"), "--out", sb.out],
    code: 1,
    message: /^attack: .*none\.mkv: no such file or folder$/,
  },
  {
    name: "attack --victim <weights that link to /dev/zero>",
    task: "attack",
    args: async (sb) => {
      await Deno.copyFile(join(ROOT, "data/models/vsfa-mini.json"), join(sb.work, "v.json"));
      await Deno.symlink("/dev/zero", join(sb.work, "v.safetensors"));
      return ["--victim", join(sb.work, "v.safetensors"), "--out", sb.out];
    },
    code: 1,
    message: /v\.safetensors: weights file is a character device, not a regular file/,
  },
  {
    name: "jnd -o <a file>",
    task: "jnd",
    args: (sb) => [
      "--input",
      join(ROOT, "data/samples/astronaut_pan.mkv"),
      "-o",
      join(sb.work, "sentinel-beside.txt"),
    ],
    code: 1,
    message: /sentinel-beside\.txt: --out is a file, not a folder/,
  },
  {
    name: "jnd --input <a FIFO>",
    task: "jnd",
    args: async (sb) => {
      const fifo = join(sb.work, "in.mkv");
      await new Deno.Command("mkfifo", { args: [fifo] }).output();
      return ["--input", fifo, "-o", sb.out];
    },
    code: 1,
    message: /in\.mkv"?: video is a FIFO \(named pipe\), not a regular file/,
  },
  {
    name: "data --out <a file>",
    task: "data",
    args: (sb) => ["--out", join(sb.work, "sentinel-beside.txt")],
    code: 1,
    message: /sentinel-beside\.txt: --out is a file, not a folder/,
  },
  {
    name: "train-victim --config '{\"hidden\":1e9}'",
    task: "train-victim",
    args: (sb) => ["--model", "vsfa-mini", "--config", '{"hidden":1e9}', "--out", `${sb.out}/v`],
    code: 2,
    message: /^train-victim: --config: vsfa-mini config: hidden: /,
  },
  {
    name: "train-victim without the proxy dataset",
    task: "train-victim",
    args: (sb) => ["--model", "vsfa-mini", "--out", join(sb.out, "v")],
    code: 1,
    message: /^train-victim: cache\/proxy\/manifest\.json: no such file \(build it with/,
  },
  {
    name: "train --config '{\"hidden\":1e9}'",
    task: "train",
    args: (sb) => ["--victim", "vsfa-mini", "--config", '{"hidden":1e9}', "--out", `${sb.out}/g`],
    code: 2,
    message: /^train: --config: STQA-Net config: hidden /,
  },
  {
    name: "eval --out <a file>",
    task: "eval",
    args: (sb) => ["--out", join(sb.work, "sentinel-beside.txt")],
    code: 1,
    message: /^eval: .*sentinel-beside\.txt: --out is a file, not a folder/,
  },
  {
    name: "attack --eps -1",
    task: "attack",
    args: () => ["--eps=-1"],
    code: 2,
    message: /--eps/,
  },
];

for (const c of CASES) {
  Deno.test(`one clear line: ${c.name}`, async () => {
    const sb = await makeSandbox();
    try {
      const args = await c.args(sb);
      await sb.mark();
      const r = await runTask(c.task, args, sb.work);
      assertOneLine(c, r);
      await sb.assertUntouched();
    } finally {
      await sb.dispose();
    }
  });
}
