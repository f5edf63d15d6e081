// The command line: usage and exit codes, info, the commands' --help, and the main job on its
// bundled defaults.

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

Deno.test("attack and train print their usage for --help", async () => {
  for (const cmd of ["attack", "train"]) {
    const r = await capture(() => main([cmd, "--help"]));
    if (r.code !== 0 || !r.out.includes(`deno task ${cmd}`)) throw new Error(JSON.stringify(r));
  }
});

Deno.test("attack on the bundled defaults: the sample clips, vsfa-mini, stqa-vsfa-mini", async () => {
  const out = await Deno.makeTempDir({ prefix: "stqa_cli_" });
  try {
    const r = await capture(() => main(["attack", "--out", out]));
    if (r.code !== 0) throw new Error(JSON.stringify(r));
    for (const name of ["astronaut_pan", "brick_rotate", "gravel_zoom"]) {
      await Deno.stat(`${out}/${name}/adversarial.mkv`);
      const report = JSON.parse(await Deno.readTextFile(`${out}/${name}/report.json`));
      const a = report.attacks[0];
      if (a.beyondJnd !== 0) throw new Error(`${name}: pixels beyond the JND`);
      if (!r.out.includes(`${name}: 16x128x128 clean`)) throw new Error(r.out);
      // The bundled generator is two-branch: one clean pass picks the branch, toward the
      // score-reversed boundary, and the score as written must move that way (the paper's
      // one-branch generator moved two of the three samples away from their target).
      const clean = report.clean.score;
      const toward = Math.sign(a.target - clean) * a.scoreChange;
      if (!(Math.abs(a.target - clean) > 0 && toward > 0)) {
        throw new Error(
          `${name}: clean ${clean} -> ${a.score}, target ${a.target}: moved away (${toward})`,
        );
      }
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
