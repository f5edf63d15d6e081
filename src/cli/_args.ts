/**
 * The argument handling every command shares: `node:util` parseArgs for the flags, zod for
 * their values, `--help`, and errors that name the option as typed, followed by the usage text
 * (exit code 2); JSON-object options (`--config`), the one-line failure of a command, and the
 * command line recorded beside trained weights.
 *
 * @module
 */

import { parseArgs } from "util";
import { z } from "zod";
import { formatZodError } from "../_zod.ts";

/** A flag of {@link parseCommand}: parseArgs' option config. */
export type FlagSpec = { type: "string" | "boolean"; short?: string; multiple?: boolean };

/** What {@link parseCommand} returns: the validated values, or the exit code to return. */
export type ParsedCommand<T> = { ok: true; values: T } | { ok: false; code: number };

/** What {@link readFlags} returns: the raw values and positionals, or the exit code to return. */
export type ReadFlags =
  | { ok: true; values: Record<string, unknown>; positionals: string[] }
  | { ok: false; code: number };

/** How a command's usage errors are printed. */
export interface UsageOptions {
  /** The usage text printed after an error, and alone for `--help`. */
  usage: string;
  /** Put before an error line, with ": " (e.g. `deno task data`); default nothing. */
  name?: string;
}

/**
 * The parseArgs flags of a zod object schema of flag values: a boolean field (also inside
 * `.optional()` or `.default()`) is a boolean flag, any other a string flag (zod converts and
 * checks the text); `short` gives one-letter aliases.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { flagsOf } from "./_args.ts";
 * const flags = flagsOf(z.object({ out: z.string(), force: z.boolean().default(false) }), {
 *   out: "o",
 * });
 * console.log(flags); // { out: { type: "string", short: "o" }, force: { type: "boolean" } }
 * ```
 */
export function flagsOf(
  schema: z.AnyZodObject,
  short: Record<string, string> = {},
): Record<string, FlagSpec> {
  const flags: Record<string, FlagSpec> = {};
  for (const [name, field] of Object.entries(schema.shape as Record<string, z.ZodTypeAny>)) {
    let t = field;
    while (t instanceof z.ZodOptional || t instanceof z.ZodDefault) t = t._def.innerType;
    const type = t instanceof z.ZodBoolean ? "boolean" : "string";
    flags[name] = short[name] ? { type, short: short[name] } : { type };
  }
  return flags;
}

/**
 * Prints a usage error (`<name>: <message>`, a blank line and the usage) on stderr and returns
 * the exit code of bad usage, 2.
 *
 * @example
 * ```ts
 * import { usageError } from "./_args.ts";
 * const code = usageError("unknown subcommand 'x'", { usage: "Usage: demo", name: "demo" });
 * console.log(code); // 2
 * ```
 */
export function usageError(message: string, options: UsageOptions): number {
  const prefix = options.name ? `${options.name}: ` : "";
  console.error(`${prefix}${message}\n\n${options.usage}`);
  return 2;
}

/**
 * The first half of {@link parseCommand}: parses `args` with `flags` (and `--help`, which
 * prints the usage: exit 0); an unknown flag, a missing value or, unless `positionals`, a
 * positional argument is a usage error (exit 2). For commands whose flags depend on a
 * subcommand: validate the values with {@link checkFlags} once it is known.
 *
 * @example
 * ```ts
 * import { readFlags } from "./_args.ts";
 * const r = readFlags(["check", "--root", "d"], {
 *   usage: "Usage: demo [check] [--root dir]",
 *   flags: { root: { type: "string" } },
 *   positionals: true,
 * });
 * if (r.ok) console.log(r.positionals[0], r.values.root); // "check" "d"
 * ```
 */
export function readFlags(
  args: string[],
  spec: UsageOptions & { flags: Record<string, FlagSpec>; positionals?: boolean },
): ReadFlags {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: spec.positionals ?? false,
      strict: true,
      options: { ...spec.flags, help: { type: "boolean", short: "h" } },
    });
  } catch (e) {
    return { ok: false, code: usageError((e as Error).message, spec) };
  }
  const { help, ...values } = parsed.values as Record<string, unknown>;
  if (help) {
    console.log(spec.usage);
    return { ok: false, code: 0 };
  }
  return { ok: true, values, positionals: parsed.positionals };
}

/**
 * The second half of {@link parseCommand}: validates flag values with `schema` (keys as the
 * flags are spelled); its issues name the option as typed (`--steps: ...`), joined by
 * `separator` (default a new line), and are a usage error (exit 2).
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { checkFlags } from "./_args.ts";
 * const schema = z.object({ steps: z.coerce.number().int().positive() });
 * const r = checkFlags({ steps: "10" }, schema, { usage: "Usage: demo --steps n" });
 * if (r.ok) console.log(r.values.steps); // 10
 * ```
 */
export function checkFlags<S extends z.ZodTypeAny>(
  values: Record<string, unknown>,
  schema: S,
  options: UsageOptions & { separator?: string },
): ParsedCommand<z.infer<S>> {
  const parsed = schema.safeParse(values);
  if (!parsed.success) {
    const issues = formatZodError(parsed.error as z.ZodError, {
      prefix: "--",
      separator: options.separator ?? "\n",
    });
    return { ok: false, code: usageError(issues, options) };
  }
  return { ok: true, values: parsed.data };
}

/**
 * Parses `args` with `flags` (default: {@link flagsOf} `schema`, with the aliases `short`),
 * prints the usage for `--help` (exit 0), validates the values with `schema` (keys as the flags
 * are spelled) and on any problem prints it with the usage on stderr (exit 2): {@link readFlags},
 * then {@link checkFlags}.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { parseCommand } from "./_args.ts";
 * const r = parseCommand(["-s", "10"], {
 *   usage: "Usage: demo [-s, --steps n]",
 *   short: { steps: "s" },
 *   schema: z.object({ steps: z.coerce.number().int().positive().default(5) }).strict(),
 * });
 * if (r.ok) console.log(r.values.steps); // 10
 * ```
 */
export function parseCommand<S extends z.ZodTypeAny>(
  args: string[],
  spec: UsageOptions & {
    schema: S;
    flags?: Record<string, FlagSpec>;
    short?: Record<string, string>;
  },
): ParsedCommand<z.infer<S>> {
  const flags = spec.flags ?? flagsOf(spec.schema as unknown as z.AnyZodObject, spec.short);
  const raw = readFlags(args, { ...spec, flags });
  if (!raw.ok) return raw;
  return checkFlags(raw.values, spec.schema, spec);
}

/**
 * A JSON-object option's text (such as `--config '{"hidden":32}'`) as an object (`{}` when the
 * option is absent), or the one-line problem naming the option.
 *
 * @example
 * ```ts
 * import { jsonObjectOption } from "./_args.ts";
 * console.log(jsonObjectOption('{"hidden":32}', "--config")); // { hidden: 32 }
 * console.log(jsonObjectOption("[1]", "--config")); // "--config: must be a JSON object ..."
 * ```
 */
export function jsonObjectOption(
  text: string | undefined,
  option: string,
): Record<string, unknown> | string {
  if (text === undefined) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return `${option}: not valid JSON (${(e as Error).message}): ${JSON.stringify(text)}`;
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    return `${option}: must be a JSON object such as '{"hidden":32}', got ${JSON.stringify(text)}`;
  }
  return v as Record<string, unknown>;
}

/**
 * Prints a command's failure as one line, `<command>: <message>` (new lines in the message
 * folded into spaces; on a terminal a new line first, to end a progress line), and returns
 * `code`.
 *
 * @example
 * ```ts
 * import { failLine } from "./_args.ts";
 * const code = failLine("train", "the loss is NaN at step 3", 1); // prints "train: the loss ..."
 * console.log(code); // 1
 * ```
 */
export function failLine(command: string, message: string, code: number): number {
  const line = message.replaceAll(/\s*\n\s*/g, " ").trim();
  console.error(`${Deno.stderr.isTerminal() ? "\n" : ""}${command}: ${line}`);
  return code;
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
