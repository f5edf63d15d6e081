// The command line: usage and exit codes, info, and the attack placeholder's message.

import { main } from "../cli.ts";

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
    const code = await fn();
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("no command prints usage and exits 2; --help exits 0", async () => {
  const none = await capture(() => main([]));
  if (none.code !== 2 || !none.out.includes("Commands:")) throw new Error(JSON.stringify(none));
  const help = await capture(() => main(["--help"]));
  if (help.code !== 0 || !help.out.includes("Commands:")) throw new Error(JSON.stringify(help));
});

Deno.test("an unknown command names itself and exits 2", async () => {
  const r = await capture(() => main(["attak"]));
  if (r.code !== 2 || !r.err.includes("Unknown command 'attak'")) {
    throw new Error(JSON.stringify(r));
  }
});

Deno.test("info prints the adapter, its limits and the ffmpeg version", async () => {
  const r = await capture(() => main(["info"]));
  if (r.code !== 0) throw new Error(JSON.stringify(r));
  for (const key of ["adapter:", "maxStorageBufferBindingSize", "ffmpeg:"]) {
    if (!r.out.includes(key)) throw new Error(`info output lacks ${key}:\n${r.out}`);
  }
});

Deno.test("a command's --help reaches that command", async () => {
  const r = await capture(() => main(["jnd", "--help"]));
  if (r.code !== 0 || !r.out.includes("deno task jnd")) throw new Error(JSON.stringify(r));
});

Deno.test("attack says what it will do and exits non-zero until the generator exists", async () => {
  const r = await capture(() => main(["attack"]));
  if (r.code !== 1 || !r.err.includes("not implemented yet")) throw new Error(JSON.stringify(r));
});
