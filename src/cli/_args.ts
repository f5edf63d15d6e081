/**
 * The argument handling every command shares: `node:util` parseArgs for the flags, zod for
 * their values, `--help`, and errors that name the option as typed, followed by the usage text
 * (exit code 2).
 *
 * @module
 */

import { parseArgs } from "util";
import type { z } from "zod";
import { formatZodError } from "../_zod.ts";

/** A flag of {@link parseCommand}: parseArgs' option config. */
export type FlagSpec = { type: "string" | "boolean"; short?: string; multiple?: boolean };

/** What {@link parseCommand} returns: the validated values, or the exit code to return. */
export type ParsedCommand<T> = { ok: true; values: T } | { ok: false; code: number };

/**
 * Parses `args` with `flags`, prints the usage for `--help` (exit 0), validates the values with
 * `schema` (keys as the flags are spelled) and on any problem prints it with the usage on
 * stderr (exit 2).
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { parseCommand } from "./_args.ts";
 * const r = parseCommand(["--steps", "10"], {
 *   usage: "Usage: demo [--steps n]",
 *   flags: { steps: { type: "string" } },
 *   schema: z.object({ steps: z.coerce.number().int().positive().default(5) }).strict(),
 * });
 * if (r.ok) console.log(r.values.steps); // 10
 * ```
 */
export function parseCommand<S extends z.ZodTypeAny>(
  args: string[],
  spec: { usage: string; flags: Record<string, FlagSpec>; schema: S },
): ParsedCommand<z.infer<S>> {
  let raw: Record<string, unknown>;
  try {
    raw = parseArgs({
      args,
      allowPositionals: false,
      strict: true,
      options: { ...spec.flags, help: { type: "boolean", short: "h" } },
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${spec.usage}`);
    return { ok: false, code: 2 };
  }
  if (raw.help) {
    console.log(spec.usage);
    return { ok: false, code: 0 };
  }
  const { help: _help, ...rest } = raw;
  const parsed = spec.schema.safeParse(rest);
  if (!parsed.success) {
    const issues = formatZodError(parsed.error as z.ZodError, { prefix: "--", separator: "\n" });
    console.error(`${issues}\n\n${spec.usage}`);
    return { ok: false, code: 2 };
  }
  return { ok: true, values: parsed.data };
}

/**
 * The command line as a user would retype it (for the JSON beside trained weights).
 *
 * @example
 * ```ts
 * import { commandLine } from "./_args.ts";
 * commandLine("train", ["--victim", "my model"]); // "deno task train --victim 'my model'"
 * ```
 */
export function commandLine(task: string, args: string[]): string {
  const quote = (a: string) => /^[\w./=:,+-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`;
  return `deno task ${task}${args.length ? " " + args.map(quote).join(" ") : ""}`;
}
