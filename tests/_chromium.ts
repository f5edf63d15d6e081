// Headless Chromium for the report tests: find the binary, dump a page's DOM after load, and
// take a screenshot, each with a fresh profile (--headless --no-sandbox --disable-gpu).

const CANDIDATES = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];

/** The Chromium binary: $CHROMIUM, or the first of the usual names that runs; null if none. */
export async function findChromium(): Promise<string | null> {
  const env = Deno.env.get("CHROMIUM");
  for (const name of env ? [env] : CANDIDATES) {
    try {
      const r = await new Deno.Command(name, {
        args: ["--version"],
        stdout: "null",
        stderr: "null",
      })
        .output();
      if (r.success) return name;
    } catch { /* not installed */ }
  }
  return null;
}

async function run(bin: string, args: string[]): Promise<string> {
  const profile = await Deno.makeTempDir({ prefix: "stqa_chromium_" });
  try {
    const r = await new Deno.Command(bin, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        `--user-data-dir=${profile}`,
        "--no-first-run",
        "--allow-file-access-from-files",
        ...args,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!r.success) {
      throw new Error(
        `${bin} failed (${r.code}): ${new TextDecoder().decode(r.stderr).slice(-2000)}`,
      );
    }
    return new TextDecoder().decode(r.stdout);
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** The DOM of `file` after its load event (and scripts) ran. */
export function dumpDom(bin: string, file: string): Promise<string> {
  return run(bin, ["--virtual-time-budget=5000", "--dump-dom", `file://${file}`]);
}

/** A PNG screenshot of `file` into `png`. */
export async function screenshot(
  bin: string,
  file: string,
  png: string,
  size = { width: 1300, height: 1800 },
): Promise<void> {
  await run(bin, [
    `--window-size=${size.width},${size.height}`,
    "--hide-scrollbars",
    `--screenshot=${png}`,
    `file://${file}`,
  ]);
}
